/* fuzz_gguf.c - libFuzzer target: the GGUF parser, its getters and string
 * arrays, a copy of every key through the writer (which must re-parse to the
 * same keys), and the GGUF model reader on the same bytes as a file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/gguf.h"
#include "formats/source.h"

static void model_reader(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/ellm_fuzz_gguf_%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, size, f);
    fclose(f);
    src_model *m;
    ellm_error err;
    if (src_open_gguf(path, &m, &err) == ELLM_OK) {
        float *buf = NULL;
        for (size_t i = 0; i < m->n_tensors; i++) {
            buf = realloc(buf, m->tensors[i].n_elements * sizeof(float));
            if (buf && src_read_f32(m, i, buf, &err) != ELLM_OK) abort(); /* bounds were checked */
        }
        free(buf);
        src_close(m);
    }
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_ctx g;
    ellm_error err;
    if (gguf_parse(data, size, "fuzz.gguf", &g, &err) != ELLM_OK) return 0;
    uint64_t u;
    double f;
    gguf_str s;
    gguf_writer *w;
    if (gguf_writer_new(&w, &err) != ELLM_OK) abort();
    for (uint64_t i = 0; i < g.n_kv; i++) {
        const gguf_kv *kv = &g.kv[i];
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255), kv->key.ptr);
        (void)gguf_get_u64(&g, key, &u);
        (void)gguf_get_f64(&g, key, &f);
        (void)gguf_get_str(&g, key, &s);
        if (kv->type == GGUF_TYPE_ARRAY && kv->arr_type == GGUF_TYPE_STRING) {
            gguf_str *items;
            if (gguf_str_array(&g, kv, &items, &err) != ELLM_OK) abort(); /* the parser walked them */
            volatile size_t sum = 0;
            for (uint64_t k = 0; k < kv->arr_len; k++) sum += items[k].len ? (uint8_t)items[k].ptr[0] : 0;
            (void)sum;
            free(items);
        }
        gguf_writer_copy_kv(w, &g, kv);
    }
    for (uint64_t i = 0; i < g.n_tensors; i++) (void)ggml_type_name(g.tensors[i].ggml_type);
    uint8_t *buf;
    size_t n;
    if (gguf_writer_to_buffer(w, &buf, &n, &err) != ELLM_OK) abort();
    gguf_ctx back;
    if (gguf_parse(buf, n, "copy", &back, &err) != ELLM_OK || back.n_kv != g.n_kv) abort();
    gguf_free(&back);
    free(buf);
    gguf_writer_free(w);
    gguf_free(&g);
    model_reader(data, size);
    return 0;
}
