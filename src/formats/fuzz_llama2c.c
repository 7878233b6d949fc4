/* fuzz_llama2c.c - libFuzzer target: the llama2.c header validator (version 0
 * and 1) on arbitrary bytes and claimed file sizes; accepted small layouts are
 * written out (header, then zeros) and opened with the full reader, the rest
 * of the input serving as the tokenizer file.
 * Input: u64 claimed file size, header bytes (28 for version 0, 256 for
 * version 1), tokenizer bytes. */
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
    if (size < 8 + LLAMA2C_HEADER_BYTES) return 0;
    uint64_t file_size = ellm_le64(data);
    const uint8_t *hdr = data + 8;
    size_t avail = size - 8;
    size_t hlen = ellm_le32(hdr) == 0x616b3432u ? LLAMA2C_V1_HEADER_BYTES : LLAMA2C_HEADER_BYTES;
    uint8_t header[LLAMA2C_V1_HEADER_BYTES] = {0};
    memcpy(header, hdr, avail < hlen ? avail : hlen);
    if (llama2c_parse_header(header, hlen, file_size, "fuzz.bin", &c, &err) != ELLM_OK) return 0;
    if (file_size > (1u << 20) || file_size < hlen) return 0;
    const uint8_t *tok_bytes = avail > hlen ? hdr + hlen : NULL;
    size_t tok_len = avail > hlen ? avail - hlen : 0;
    char model[64], tok[64];
    snprintf(model, sizeof model, "/tmp/ellm_fuzz_l2c_%d.bin", (int)getpid());
    snprintf(tok, sizeof tok, "/tmp/ellm_fuzz_l2c_%d.tok", (int)getpid());
    FILE *f = fopen(model, "wb"), *t = fopen(tok, "wb");
    if (!f || !t) abort();
    fwrite(header, 1, hlen, f);
    for (uint64_t i = hlen; i < file_size; i++) fputc(0, f);
    if (tok_len) fwrite(tok_bytes, 1, tok_len, t);
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
