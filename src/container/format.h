/*
 * format.h - byte-level constants and the header codec of the .ellm format
 * (docs/FORMAT.md is the specification; keep the two in step).
 */
#ifndef ELLM_FORMAT_H
#define ELLM_FORMAT_H

#include <stdint.h>

#include "entrollm.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define ELLM_MAX_NAME 1024
/* Smallest possible directory records (for bounding counts before parsing). */
#define ELLM_MIN_BLOB_RECORD 13
#define ELLM_MIN_TENSOR_RECORD 24
/* Longest LEB128 encoding of a u64. */
#define ELLM_VARINT_MAX 10

/* Unsigned LEB128: 7 bits per byte, least significant group first, high bit
 * set on every byte but the last. Returns the number of bytes written. */
static inline size_t ellm_put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a LEB128 value from [p, end); returns bytes read, 0 if truncated or
 * longer than 10 bytes / overflowing 64 bits. */
static inline size_t ellm_get_varint(const uint8_t *p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (size_t i = 0; i < ELLM_VARINT_MAX && p + i < end; i++) {
        uint64_t b = p[i] & 0x7f;
        if (i == 9 && b > 1) return 0;
        v |= b << (7 * i);
        if (!(p[i] & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

/* Fuzzing builds skip checksum comparisons so that the fuzzer reaches the
 * parsers behind them (the usual libFuzzer convention). */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define ELLM_CHECKSUM_DIFFERS(a, b) ((void)(a), (void)(b), 0)
#else
#define ELLM_CHECKSUM_DIFFERS(a, b) ((a) != (b))
#endif

typedef struct ellm_header {
    uint32_t version;
    uint32_t header_size;
    uint64_t file_size;
    uint64_t meta_offset, meta_size;
    uint64_t dir_offset, dir_size;
    uint64_t n_tensors, n_blobs;
    uint64_t meta_checksum, dir_checksum;
} ellm_header;

/* Writes the 128-byte header, including its own checksum at byte 120. */
void ellm_header_encode(const ellm_header *h, uint8_t *out);
/* Checks magic, header checksum, version and that every section lies inside
 * a file of file_size bytes. */
ellm_status ellm_header_decode(const uint8_t *in, uint64_t file_size, const char *path, ellm_header *h,
                               ellm_error *err);

#endif /* ELLM_FORMAT_H */
