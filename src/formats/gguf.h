/*
 * gguf.h - GGUF v2/v3 parsing (metadata key-values and tensor infos) and
 * writing. Used by the GGUF model reader, by the tokenizer loader (vocabulary
 * GGUFs and the "tokenizer.gguf" blob) and by `export --to gguf`.
 *
 * The parser works on a memory buffer (a mmap of the file, or a blob) and
 * validates every length and offset against the buffer's size, so truncated
 * or corrupted files are reported, never read out of bounds.
 */
#ifndef ELLM_GGUF_H
#define ELLM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entrollm.h"

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12
} gguf_type;

/* ggml tensor types we read; every other type is refused by name. */
enum {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_BF16 = 30
};

typedef struct gguf_str {
    const char *ptr; /* not NUL-terminated; points into the buffer */
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    gguf_type type;
    /* scalar value (for non-array, non-string types) */
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
    } v;
    gguf_str str;          /* for GGUF_TYPE_STRING */
    gguf_type arr_type;    /* for GGUF_TYPE_ARRAY */
    uint64_t arr_len;
    const uint8_t *arr_data; /* raw little-endian elements (for string arrays: the first length prefix) */
} gguf_kv;

typedef struct gguf_tensor_info {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];       /* GGUF order: innermost dimension first */
    uint32_t ggml_type;
    uint64_t offset;      /* relative to the data section */
} gguf_tensor_info;

typedef struct gguf_ctx {
    const uint8_t *buf;
    size_t size;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor_info *tensors;
    uint64_t alignment;
    uint64_t data_offset; /* absolute offset of the tensor data section */
} gguf_ctx;

/* Parses header, metadata and tensor infos. `name` is used in messages. */
ellm_status gguf_parse(const uint8_t *buf, size_t size, const char *name, gguf_ctx *ctx, ellm_error *err);
/* Same on the first `avail` bytes of a file of total_size bytes (tensor data
 * is checked against total_size). When it fails only because the metadata
 * runs past `avail`, *need_more is set: retry with a longer prefix. This is
 * how the model reader parses a large GGUF without mapping or loading it. */
ellm_status gguf_parse_prefix(const uint8_t *buf, size_t avail, uint64_t total_size, const char *name,
                              gguf_ctx *ctx, bool *need_more, ellm_error *err);
void gguf_free(gguf_ctx *ctx);

const gguf_kv *gguf_find(const gguf_ctx *ctx, const char *key);
/* Typed getters: return 0 on success, -1 if missing or of another type
 * (integers of any width/sign convert when the value fits). */
int gguf_get_u64(const gguf_ctx *ctx, const char *key, uint64_t *out);
int gguf_get_f64(const gguf_ctx *ctx, const char *key, double *out);
int gguf_get_str(const gguf_ctx *ctx, const char *key, gguf_str *out);
/* Array of strings: *items receives a malloc'd array of kv->arr_len strings
 * pointing into the buffer (free() it); O(n) once, then O(1) per item. */
ellm_status gguf_str_array(const gguf_ctx *ctx, const gguf_kv *kv, gguf_str **items, ellm_error *err);

/* "F32", "Q4_K", ...; "unknown" for ids ggml does not define. */
const char *ggml_type_name(uint32_t type);
/* Bytes of n elements of a ggml type; false for unknown types, partial
 * blocks or overflow. */
bool gguf_tensor_bytes(uint32_t type, uint64_t n, uint64_t *bytes);

/* ---- writing ------------------------------------------------------------ */

typedef struct gguf_writer gguf_writer;
ellm_status gguf_writer_new(gguf_writer **out, ellm_error *err);
void gguf_writer_free(gguf_writer *w);
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, int v);
/* Arrays: n elements of a scalar type (data little-endian, scalar_size each),
 * or n strings (lens[i] bytes each; lens NULL = NUL-terminated). */
void gguf_writer_set_array(gguf_writer *w, const char *key, gguf_type elem_type, const void *data,
                           uint64_t n);
void gguf_writer_set_str_array(gguf_writer *w, const char *key, const char *const *items,
                               const size_t *lens, uint64_t n);
/* Copies a key-value from a parsed file unchanged (any type, arrays too). */
void gguf_writer_copy_kv(gguf_writer *w, const gguf_ctx *src, const gguf_kv *kv);
/* Adds a tensor; data is copied later by gguf_writer_write through the
 * callback, so large tensors are written one at a time.
 * shape is row-major outermost first (it is reversed into GGUF order). */
void gguf_writer_add_tensor(gguf_writer *w, const char *name, int n_dims, const int64_t *shape,
                            uint32_t ggml_type);
typedef ellm_status (*gguf_tensor_data_fn)(void *user, size_t index, void *dst, size_t n_bytes,
                                           ellm_error *err);
/* Writes the file atomically (temporary name, then rename). */
ellm_status gguf_writer_write(gguf_writer *w, const char *path, gguf_tensor_data_fn fn, void *user,
                              ellm_error *err);
/* Serialises only the metadata (no tensors) into a malloc'd buffer: this is
 * how GGUF tokenizer metadata travels into .ellm files as "tokenizer.gguf". */
ellm_status gguf_writer_to_buffer(gguf_writer *w, uint8_t **buf, size_t *size, ellm_error *err);

#endif /* ELLM_GGUF_H */
