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
/* Smallest possible directory records (for bounding counts before parsing):
 * a name of three 1-byte varints, then for a blob a 1-byte size and a u32
 * checksum; for a tensor the kind byte, one 1-byte dimension, a 1-byte group
 * size, the u16 entropy, a 1-byte payload size and a u32 checksum. */
#define ELLM_MIN_BLOB_RECORD 8
#define ELLM_MIN_TENSOR_RECORD 13
/* entropy_bits is stored as a u16 in units of 1/ELLM_ENTROPY_UNIT bit. */
#define ELLM_ENTROPY_UNIT 4096
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

/* The checksum stored for a payload or blob: the low 32 bits of XXH3-64. */
static inline uint32_t ellm_checksum32(const void *data, size_t n) { return (uint32_t)XXH3_64bits(data, n); }

/* The tensor record's kind byte (docs/FORMAT.md, "Tensor record"):
 * bits 0-1 n_dims - 1, bits 2-3 scheme, bits 4-5 coder, bits 6-7 bits code. */
enum { ELLM_BITS_CODE_8 = 0, ELLM_BITS_CODE_4 = 1, ELLM_BITS_CODE_F32 = 2 };

static inline uint8_t ellm_kind_pack(int n_dims, int scheme, int coder, int bits) {
    int code = bits == 8 ? ELLM_BITS_CODE_8 : bits == 4 ? ELLM_BITS_CODE_4 : ELLM_BITS_CODE_F32;
    return (uint8_t)(((n_dims - 1) & 3) | (scheme & 3) << 2 | (coder & 3) << 4 | code << 6);
}

/* Splits a kind byte; *bits is 0 for the unused code 3. */
static inline void ellm_kind_unpack(uint8_t k, int *n_dims, int *scheme, int *coder, int *bits) {
    static const int bits_of[4] = {8, 4, 32, 0};
    *n_dims = (k & 3) + 1;
    *scheme = (k >> 2) & 3;
    *coder = (k >> 4) & 3;
    *bits = bits_of[k >> 6];
}

/* The 64-byte header. meta_offset is header_size; dir_offset is
 * file_size - dir_size; payloads fill the bytes between, back to back. */
typedef struct ellm_header {
    uint32_t version;
    uint32_t header_size;
    uint64_t file_size;
    uint32_t meta_size, dir_size;
    uint32_t n_tensors, n_blobs;
    uint64_t meta_checksum, dir_checksum;
} ellm_header;

/* Writes the 64-byte header, including its own checksum at byte 56. */
void ellm_header_encode(const ellm_header *h, uint8_t *out);
/* Checks magic, version, header checksum, header size, file size and that
 * metadata and directory fit in a file of file_size bytes. */
ellm_status ellm_header_decode(const uint8_t *in, uint64_t file_size, const char *path, ellm_header *h,
                               ellm_error *err);

#endif /* ELLM_FORMAT_H */
