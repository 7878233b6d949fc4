/*
 * llama2c.h - llama2.c checkpoint header validation (used by the reader and
 * by the fuzz target, which feeds it arbitrary bytes).
 */
#ifndef ELLM_LLAMA2C_H
#define ELLM_LLAMA2C_H

#include <stddef.h>
#include <stdint.h>

#include "entrollm.h"
#include "formats/source.h"

#define LLAMA2C_HEADER_BYTES 28     /* version 0 */
#define LLAMA2C_V1_HEADER_BYTES 256 /* version 1 */

typedef struct llama2c_config {
    int version;           /* 0 (legacy) or 1 (magic "ak42", float32) */
    uint64_t data_offset;  /* 28 or 256 */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared_classifier; /* header vocab_size > 0: output = token embedding */
    uint64_t file_size;
} llama2c_config;

/* Validates the first n bytes (at least 28; 37 for version 1) of a file of
 * file_size bytes as a llama2.c header: positive, bounded dimensions, heads
 * dividing dim, and file_size exactly what the header implies. Version 2
 * (Q8_0) is refused as unsupported. path is used in messages. */
ellm_status llama2c_parse_header(const uint8_t *buf, size_t n, uint64_t file_size, const char *path,
                                 llama2c_config *c, ellm_error *err);

#endif /* ELLM_LLAMA2C_H */
