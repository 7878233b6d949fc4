/*
 * source.h - the model readers' common output: a source model.
 *
 * Every reader (llama2.c checkpoint, Hugging Face folder, GGUF) produces the
 * same thing: a list of float tensors that can be read one at a time (so that
 * compression streams tensor by tensor and never holds the whole model), the
 * model's hyperparameters as an HF-style config JSON, and the tokenizer files
 * as named blobs that travel into the .ellm file unchanged.
 *
 * Shapes are in row-major order, outermost first, as safetensors and PyTorch
 * write them: a linear layer's weight is shape {out_features, in_features}.
 * (GGUF stores dimensions innermost first; the GGUF reader reverses them.)
 */
#ifndef ELLM_SOURCE_H
#define ELLM_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "entrollm.h"

#define ELLM_MAX_DIMS 4

typedef enum ellm_dtype {
    ELLM_DTYPE_F32 = 0,
    ELLM_DTYPE_F16 = 1,
    ELLM_DTYPE_BF16 = 2
} ellm_dtype;

const char *ellm_dtype_name(ellm_dtype d);
size_t ellm_dtype_size(ellm_dtype d);

typedef struct src_tensor {
    char *name;             /* the source's own name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    int n_dims;
    int64_t shape[ELLM_MAX_DIMS];
    uint64_t n_elements;
    ellm_dtype dtype;
    int file_index;         /* which of src_model.files holds it */
    uint64_t offset;        /* absolute byte offset in that file */
    uint64_t n_bytes;
} src_tensor;

/* A named file carried into the .ellm file: tokenizer and config files.
 * Names used: "tokenizer.json", "tokenizer_config.json", "tokenizer.model"
 * (SentencePiece protobuf), "tokenizer.bin" (llama2.c format),
 * "tokenizer.gguf" (a GGUF file holding only the tokenizer.* metadata),
 * "generation_config.json", "chat_template.jinja". */
typedef struct src_blob {
    char *name;
    uint8_t *data;
    size_t size;
} src_blob;

typedef struct src_model {
    char *path;           /* what the user gave */
    const char *format;   /* "llama2c", "hf", "gguf" */

    /* HF-style config.json text. For llama2.c and GGUF sources the reader
     * writes one from the header/metadata. Extra keys of our own:
     *   "entrollm_rope_layout": "interleaved" (llama2.c/Meta/GGUF-llama q,k
     *   rows: rotation pairs (2i, 2i+1)) or "half" (HF: pairs (i, i+d/2)). */
    char *config_json;

    size_t n_tensors;
    src_tensor *tensors;

    size_t n_blobs;
    src_blob *blobs;

    size_t n_files;
    char **files;         /* paths of the data files */
    int *fds;             /* open descriptors, read with pread */

    uint64_t source_checksum; /* XXH3-64 over the data files' bytes, in order */
    uint64_t source_bytes;
} src_model;

/* Detects the format of `path` (a directory, or a *.safetensors /
 * config.json / *.safetensors.index.json file in one = HF folder; GGUF magic;
 * else llama2.c) and opens it. tokenizer_path may be NULL (then a tokenizer
 * is looked for beside the model); when given, it replaces the tokenizer the
 * model carries, as blob src_tokenizer_blob_name(tokenizer_path).
 * src_read_f32 may be called from several threads at once (pread). */
ellm_status src_open(const char *path, const char *tokenizer_path, src_model **out, ellm_error *err);
void src_close(src_model *m);

/* Reads tensor `index` converted to float32 into out (n_elements floats).
 * scratch may be NULL or a buffer of at least n_bytes for the raw data. */
ellm_status src_read_f32(src_model *m, size_t index, float *out, ellm_error *err);

/* Half-precision widening used by src_read_f32: F16C when the build has it
 * (8 at a time), else the scalar twin (ellm_f16_to_f32). Both give the same
 * bits for every non-NaN input. */
void src_f16_to_f32(const uint16_t *in, float *out, size_t n);
void src_f16_to_f32_scalar(const uint16_t *in, float *out, size_t n);
void src_bf16_to_f32(const uint16_t *in, float *out, size_t n);
/* Narrowing, round to nearest even: F16C when available, else the scalar
 * twin (ellm_f32_to_f16); bf16 identical to ellm_f32_to_bf16. */
void src_f32_to_f16(const float *in, uint16_t *out, size_t n);
void src_f32_to_f16_scalar(const float *in, uint16_t *out, size_t n);
void src_f32_to_bf16(const float *in, uint16_t *out, size_t n);

/* Finds a tensor by name; -1 if absent. */
long src_find(const src_model *m, const char *name);
/* Finds a blob by name; NULL if absent. */
const src_blob *src_find_blob(const src_model *m, const char *name);

/* Format-specific openers (used by src_open; exposed for tests). */
ellm_status src_open_llama2c(const char *path, const char *tokenizer_path, src_model **out, ellm_error *err);
ellm_status src_open_hf(const char *dir, src_model **out, ellm_error *err);
ellm_status src_open_gguf(const char *path, src_model **out, ellm_error *err);

/* Blob name for a tokenizer file: *.json -> "tokenizer.json", *.model ->
 * "tokenizer.model", *.gguf -> "tokenizer.gguf", else "tokenizer.bin". */
const char *src_tokenizer_blob_name(const char *path);

/* Helpers for readers. */
src_model *src_model_new(const char *path, const char *format, ellm_error *err);
ellm_status src_add_file(src_model *m, const char *path, int *index, ellm_error *err);
ellm_status src_add_tensor(src_model *m, const src_tensor *t, ellm_error *err); /* copies name */
ellm_status src_add_blob(src_model *m, const char *name, const uint8_t *data, size_t size, ellm_error *err);
ellm_status src_add_blob_file(src_model *m, const char *name, const char *path, ellm_error *err);
/* Checks every tensor lies inside its file and its byte size matches its
 * shape and dtype; computes source_checksum. Readers call it last. */
ellm_status src_finish(src_model *m, ellm_error *err);

#endif /* ELLM_SOURCE_H */
