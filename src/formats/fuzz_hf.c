/* fuzz_hf.c - libFuzzer target: the Hugging Face folder reader. The input is
 * split into config.json, model.safetensors.index.json (absent when its
 * length is 0) and one shard named "model-00001-of-00001.safetensors" (or
 * model.safetensors without an index); accepted folders have every tensor
 * read back. Layout: u16 config length, u16 index length, then the bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "formats/source.h"

static void put(const char *dir, const char *name, const uint8_t *d, size_t n) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    fwrite(d, 1, n, f);
    fclose(f);
}

static void rm(const char *dir, const char *name) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    size_t lc = ellm_le16(data), li = ellm_le16(data + 2);
    data += 4;
    size -= 4;
    if (lc > size || li > size - lc) return 0;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/ellm_fuzz_hf_%d", (int)getpid());
    mkdir(dir, 0700);
    const char *shard = li ? "model-00001-of-00001.safetensors" : "model.safetensors";
    put(dir, "config.json", data, lc);
    if (li) put(dir, "model.safetensors.index.json", data + lc, li);
    put(dir, shard, data + lc + li, size - lc - li);
    src_model *m;
    ellm_error err;
    if (src_open(dir, NULL, &m, &err) == ELLM_OK) {
        float *buf = NULL;
        for (size_t i = 0; i < m->n_tensors; i++) {
            buf = realloc(buf, m->tensors[i].n_elements * sizeof(float));
            if (src_read_f32(m, i, buf, &err) != ELLM_OK) abort(); /* bounds were checked */
        }
        free(buf);
        src_close(m);
    }
    rm(dir, "config.json");
    rm(dir, "model.safetensors.index.json");
    rm(dir, shard);
    rmdir(dir);
    return 0;
}
