/*
 * tok_ellm.c - the tokenizer a .ellm file carries: its blobs (tokenizer.json,
 * tokenizer.model, tokenizer.gguf or tokenizer.bin, and the config files).
 * ellm_file_open has checked every blob against its checksum already.
 */
#include <stdlib.h>
#include <string.h>

#include "container/container.h"
#include "tokenizer/tok_internal.h"

ellm_status tok_load_ellm(const char *path, ellm_tokenizer **out, ellm_error *err) {
    *out = NULL;
    ellm_file *f;
    ellm_status st = ellm_file_open(path, &f, err);
    if (st) return st;
    ellm_blob_ref *refs = ellm_calloc(f->n_blobs ? f->n_blobs : 1, sizeof *refs, err);
    if (!refs) {
        ellm_file_close(f);
        return ELLM_E_NOMEM;
    }
    for (size_t i = 0; i < f->n_blobs; i++) {
        const ellm_fblob *b = &f->blobs[i];
        refs[i].name = b->name;
        refs[i].data = b->data;
        refs[i].size = (size_t)b->size;
    }
    if (!st) st = ellm_tokenizer_from_blobs(refs, f->n_blobs, path, out, err);
    free(refs);
    ellm_file_close(f);
    return st;
}
