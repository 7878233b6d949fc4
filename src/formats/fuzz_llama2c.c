/* fuzz_llama2c.c - libFuzzer target: the llama2.c header validator on
 * arbitrary bytes and claimed file sizes; accepted small layouts are written
 * out and opened with the full reader, the rest of the input serving as the
 * tokenizer file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "formats/llama2c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    llama2c_config c;
    ellm_error err;
    (void)llama2c_parse_header(data, size, size, "fuzz.bin", &c, &err);
    if (size < 36) return 0;
    /* bytes 28..35: the claimed file size */
    uint64_t file_size = ellm_le64(data + 28);
    if (llama2c_parse_header(data, 28, file_size, "fuzz.bin", &c, &err) != ELLM_OK) return 0;
    if (file_size > (1u << 20)) return 0;
    char model[64], tok[64];
    snprintf(model, sizeof model, "/tmp/ellm_fuzz_l2c_%d.bin", (int)getpid());
    snprintf(tok, sizeof tok, "/tmp/ellm_fuzz_l2c_%d.tok", (int)getpid());
    FILE *f = fopen(model, "wb"), *t = fopen(tok, "wb");
    if (!f || !t) abort();
    fwrite(data, 1, 28, f);
    for (uint64_t i = 28; i < file_size; i++) fputc(0, f);
    fwrite(data + 36, 1, size - 36, t);
    fclose(f);
    fclose(t);
    src_model *m;
    if (src_open_llama2c(model, tok, &m, &err) == ELLM_OK) {
        float *buf = NULL;
        for (size_t i = 0; i < m->n_tensors; i++) {
            buf = realloc(buf, m->tensors[i].n_elements * sizeof(float));
            if (src_read_f32(m, i, buf, &err) != ELLM_OK) abort();
        }
        free(buf);
        src_close(m);
    }
    unlink(model);
    unlink(tok);
    return 0;
}
