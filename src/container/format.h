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
/* Fixed part of a tensor directory record, after its name; n_dims x i64
 * shape entries follow. */
#define ELLM_TENSOR_FIXED_BYTES 72
/* Blob record after its name: offset, size, checksum. */
#define ELLM_BLOB_FIXED_BYTES 24

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
