/*
 * container.h - the .ellm file: writing (streaming, tensor by tensor) and
 * reading (mmap, checksums, parallel decode into in-memory tensors).
 * The byte layout is specified in docs/FORMAT.md.
 */
#ifndef ELLM_CONTAINER_H
#define ELLM_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "common/pool.h"
#include "entrollm.h"
#include "quant/quant.h"

#define ELLM_MAGIC "ENTROLLM"
#define ELLM_FORMAT_VERSION 2
#define ELLM_HEADER_SIZE 64

/* One tensor as recorded in the directory. Pointers point into the mmap and
 * carry no alignment: payloads lie back to back, so read through them with
 * ellm_le32/memcpy only. */
typedef struct ellm_ftensor {
    char *name;
    int n_dims;
    int64_t shape[4];
    uint64_t n;
    ellm_scheme scheme;       /* ELLM_SCHEME_FLOAT for kept tensors */
    int bits;                 /* 8 or 4; 32 for float-kept tensors */
    ellm_granularity granularity; /* derived from group_size (FORMAT.md) */
    uint64_t group_size;      /* 1..n; 0 for float */
    uint64_t n_groups;
    ellm_coder coder;
    double entropy_bits;      /* of the integers, measured at compression, to 1/4096 bit; 32 for float */
    uint64_t payload_offset;  /* absolute; implied by the sizes before it */
    uint64_t payload_size;
    uint32_t payload_checksum; /* low 32 bits of XXH3-64 of the payload */
    /* Inside the payload (all offsets relative to payload_offset):
     * scales: n_groups little-endian f32 at 0; zeros: n_groups uint8 after
     * them; the coded block (or raw data) at block_offset = 5 * n_groups. */
    uint64_t block_offset;
    uint64_t block_size;
    const uint8_t *scales;    /* unaligned bytes: decode with ellm_le32 */
    const uint8_t *zeros;
    const uint8_t *block;
} ellm_ftensor;

typedef struct ellm_fblob {
    char *name;
    uint64_t offset, size;
    /* XXH3-64 of the bytes, computed on open once it matched the stored
     * low 32 bits (so a later re-check of the bytes compares with it). */
    uint64_t checksum;
    const uint8_t *data;
} ellm_fblob;

struct ellm_file {
    char *path;
    ellm_mmap map;
    uint32_t version;
    uint64_t meta_size, dir_size; /* bytes of metadata JSON and directory */
    char *metadata_json;      /* NUL-terminated copy */
    size_t n_tensors;
    ellm_ftensor *tensors;
    size_t n_blobs;
    ellm_fblob *blobs;
};

/* Finds a tensor/blob by name (-1 / NULL if absent). */
long ellm_file_find(const ellm_file *f, const char *name);
const ellm_fblob *ellm_file_blob(const ellm_file *f, const char *name);

/* Checks one payload's checksum (ELLM_E_CHECKSUM names tensor and offset). */
ellm_status ellm_file_check_tensor(const ellm_file *f, size_t index, ellm_error *err);

/* Decodes tensors into in-memory form: integer tensors get their codes in the
 * kernel layout (copied for RAW, entropy-decoded in parallel otherwise);
 * float tensors are copied. Checks each payload checksum first unless
 * skip_checksums. out[i] for every i in indices (or all tensors when
 * indices == NULL; then n = f->n_tensors). */
ellm_status ellm_file_load_tensors(const ellm_file *f, const size_t *indices, size_t n,
                                   ellm_pool *pool, int skip_checksums, ellm_qtensor *out,
                                   double *decode_seconds, ellm_error *err);

/* ---- writing ------------------------------------------------------------ */

typedef struct ellm_writer ellm_writer;

ellm_status ellm_writer_open(const char *path, const char *metadata_json, ellm_writer **out,
                             ellm_error *err);
/* Blobs come first: adding one after a tensor fails with ELLM_E_ARG (the
 * reader finds payloads by summing sizes, blobs before tensors). */
ellm_status ellm_writer_add_blob(ellm_writer *w, const char *name, const uint8_t *data, size_t size,
                                 ellm_error *err);

typedef struct ellm_wtensor {
    const char *name;
    int n_dims;
    const int64_t *shape;
    ellm_scheme scheme;
    int bits;                 /* 8, 4, or 32 (float kept) */
    const ellm_qparams *qp;   /* NULL for float */
    ellm_coder coder;
    double entropy_bits;
    const uint8_t *block;     /* coded block, raw codes (kernel layout), or float32 data */
    uint64_t block_size;
} ellm_wtensor;

ellm_status ellm_writer_add_tensor(ellm_writer *w, const ellm_wtensor *t, ellm_error *err);
/* Writes directory and header, then renames the file into place. Frees w. */
ellm_status ellm_writer_finish(ellm_writer *w, uint64_t *file_bytes, ellm_error *err);
/* Deletes the partial file. Frees w. */
void ellm_writer_abort(ellm_writer *w);

#endif /* ELLM_CONTAINER_H */
