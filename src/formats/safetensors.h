/*
 * safetensors.h - safetensors parsing and writing.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {str: str}}, then the data (offsets relative to it).
 */
#ifndef ELLM_SAFETENSORS_H
#define ELLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "entrollm.h"

/* ---- reading ------------------------------------------------------------ */

typedef struct st_tensor {
    char *name;
    char dtype[8];        /* "F32", "F16", "BF16", "U8", "I8", ... */
    int n_dims;
    int64_t shape[4];
    uint64_t begin, end;  /* absolute byte offsets in the file */
} st_tensor;

typedef struct st_file {
    size_t n_tensors;
    st_tensor *tensors;
    char *metadata_json;  /* the "__metadata__" object as JSON text, or NULL */
    uint64_t data_start;
    uint64_t file_size;
} st_file;

/* Parses the header of the file at path (reads only the header). Checks that
 * offsets are in order, inside the file, and match dtype x shape. */
ellm_status st_parse_file(const char *path, st_file *out, ellm_error *err);
/* Same from a memory buffer holding the whole file. */
ellm_status st_parse_buffer(const uint8_t *buf, size_t size, const char *name, st_file *out,
                            ellm_error *err);
void st_free(st_file *f);

/* ---- writing ------------------------------------------------------------ */

typedef struct st_writer st_writer;
ellm_status st_writer_new(st_writer **out, ellm_error *err);
void st_writer_free(st_writer *w);
/* Declares a tensor of n_bytes; data is supplied by the callback at write
 * time, in declaration order. dtype as in the safetensors spec. */
ellm_status st_writer_add(st_writer *w, const char *name, const char *dtype, int n_dims,
                          const int64_t *shape, uint64_t n_bytes, ellm_error *err);
void st_writer_set_metadata(st_writer *w, const char *key, const char *value);
typedef ellm_status (*st_tensor_data_fn)(void *user, size_t index, void *dst, size_t n_bytes,
                                         ellm_error *err);
/* Writes atomically (temporary name, then rename). */
ellm_status st_writer_write(st_writer *w, const char *path, st_tensor_data_fn fn, void *user,
                            ellm_error *err);

#endif /* ELLM_SAFETENSORS_H */
