/*
 * entrollm.h - the one public header of the entrollm library.
 *
 * entrollm quantizes a trained language model's weights to uint8/uint4,
 * entropy-codes the integers losslessly in independently decodable segments,
 * stores everything in one checksummed .ellm file, decodes it on many threads
 * and runs Llama-family inference from it.
 *
 * Conventions
 *  - Every handle is opaque. A handle may be used by one thread at a time;
 *    different handles are independent (the library has no global mutable
 *    state).
 *  - Every function that can fail returns an ellm_status and, when `err` is
 *    not NULL, fills it with a message naming the file, tensor or byte offset
 *    at fault.
 *  - Sizes are size_t/uint64_t, token ids int32_t.
 */
#ifndef ENTROLLM_H
#define ENTROLLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ELLM_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------- */
/* Errors                                                                    */
/* ------------------------------------------------------------------------- */

typedef enum ellm_status {
    ELLM_OK = 0,
    ELLM_E_IO = 1,          /* cannot open/read/write a file */
    ELLM_E_FORMAT = 2,      /* input is malformed, truncated or inconsistent */
    ELLM_E_CHECKSUM = 3,    /* a checksum does not match: data is corrupted */
    ELLM_E_UNSUPPORTED = 4, /* valid input we do not handle (dtype, arch...) */
    ELLM_E_ARG = 5,         /* bad argument or option value */
    ELLM_E_NOMEM = 6,       /* allocation failed */
    ELLM_E_INTERNAL = 7     /* a bug: an invariant did not hold */
} ellm_status;

typedef struct ellm_error {
    ellm_status code;
    char message[1024];
} ellm_error;

const char *ellm_version(void);
const char *ellm_status_name(ellm_status s);

/* ------------------------------------------------------------------------- */
/* Quantization and coding choices                                           */
/* ------------------------------------------------------------------------- */

typedef enum ellm_scheme {
    ELLM_SCHEME_AUTO = -1,      /* only as an option: pick per tensor */
    ELLM_SCHEME_UNSIGNED = 0,   /* single-sign tensor: w = s*q, q in [0, 2^b-1] */
    ELLM_SCHEME_SYMMETRIC = 1,  /* w = s*(q - 2^(b-1)), s = max|w| / (2^(b-1)-1) */
    ELLM_SCHEME_ASYMMETRIC = 2, /* w = s*(q - z), s = (max-min)/(2^b-1) */
    ELLM_SCHEME_FLOAT = 3       /* kept in float (not quantized) */
} ellm_scheme;

typedef enum ellm_granularity {
    ELLM_GRAN_TENSOR = 0, /* one scale (and zero) per tensor (the default) */
    ELLM_GRAN_ROW = 1,    /* one per output row (outermost dimension) */
    ELLM_GRAN_GROUP = 2   /* one per G consecutive weights */
} ellm_granularity;

typedef enum ellm_coder {
    ELLM_CODER_AUTO = -1,   /* only as an option: per tensor, the smallest of the three */
    ELLM_CODER_RAW = 0,     /* integers stored plainly (packed for uint4) */
    ELLM_CODER_HUFFMAN = 1, /* canonical length-limited Huffman */
    ELLM_CODER_RANS = 2     /* interleaved rANS */
} ellm_coder;

const char *ellm_scheme_name(ellm_scheme s);
const char *ellm_coder_name(ellm_coder c);

/* Which tensors stay in float. */
enum {
    ELLM_KEEP_NONE = 0,
    ELLM_KEEP_NORMS = 1u << 0,      /* RMSNorm/LayerNorm weights */
    ELLM_KEEP_EMBEDDINGS = 1u << 1, /* token embedding table */
    ELLM_KEEP_OUTPUT = 1u << 2,     /* separate output head */
    ELLM_KEEP_BIASES = 1u << 3      /* bias vectors (Qwen2 q/k/v) */
};

/* ------------------------------------------------------------------------- */
/* Compression                                                               */
/* ------------------------------------------------------------------------- */

/* What bit allocation (target_bits) minimises, summed over tensors. */
typedef enum ellm_alloc_error {
    ELLM_ALLOC_SSE = 0,      /* sum of (w - dequant(q))^2 (the default) */
    ELLM_ALLOC_RELATIVE = 1  /* each tensor's sum divided by its mean square weight */
} ellm_alloc_error;

typedef void (*ellm_progress_fn)(void *user, const char *what, uint64_t done, uint64_t total);

typedef struct ellm_compress_options {
    int bits;                     /* 8 or 4 */
    ellm_scheme scheme;           /* ELLM_SCHEME_AUTO or a fixed scheme */
    ellm_granularity granularity; /* tensor, row or group */
    uint32_t group_size;          /* G for ELLM_GRAN_GROUP */
    ellm_coder coder;             /* AUTO (default: per tensor the smallest), HUFFMAN, RANS or RAW */
    uint32_t segment_symbols;     /* symbols per segment; 0 = choose */
    unsigned keep;                /* ELLM_KEEP_* flags */
    int n_threads;                /* worker threads; 0 = all cores */
    const char *tokenizer_path;   /* tokenizer file for llama2.c sources */
    ellm_progress_fn progress;    /* may be NULL */
    void *progress_user;
    /* Bit allocation (docs/QUANTIZATION.md): when > 0, `bits` is ignored and
     * each tensor gets uint8 or uint4 (at `granularity`; when that is
     * tensor, also uint4 with groups of 128, 64 or 32) so that the coded
     * payload is at most target_bits bits per weight with the least total
     * squared quantization error. 0 = off. */
    double target_bits;
    ellm_alloc_error alloc_error; /* what the allocation minimises */
} ellm_compress_options;

void ellm_compress_options_default(ellm_compress_options *opts);

/* What `compress` measured, per tensor and in total. */
typedef struct ellm_tensor_report {
    char name[256];
    int n_dims;
    int64_t shape[4];
    uint64_t n_params;
    ellm_scheme scheme;
    int bits;               /* 8, 4; 16/32 for float-kept tensors */
    ellm_coder coder;
    double entropy_bits;    /* empirical entropy of the integers, bits/symbol */
    uint64_t coded_bytes;   /* coded payload incl. segment table */
    uint64_t meta_bytes;    /* scales, zeros, code table */
    double coded_bits_per_weight; /* (coded+meta)*8 / n_params */
    float max_abs_error;    /* max |w - dequant(q)| */
    float scale_max;        /* largest scale: the error bound is scale/2 */
    const char *kept_reason;/* non-NULL when the tensor stays in float */
    ellm_granularity granularity;
    uint32_t group_size;    /* weights per scale (0 for float-kept tensors) */
    double sq_error;        /* sum of (w - dequant(q))^2 over the tensor */
} ellm_tensor_report;

typedef struct ellm_compress_report {
    uint64_t params;
    uint64_t file_bytes;
    uint64_t payload_bytes;     /* sum of every tensor's coded data + meta */
    uint64_t fp16_bytes;        /* params * 2 */
    uint64_t plain_bytes;       /* params * bits/8 + meta: uncoded integers */
    uint64_t tokenizer_bytes;
    double entropy_bits_per_weight;   /* size-weighted mean entropy */
    double coded_bits_per_weight;     /* payload*8 / params */
    double effective_bits_per_weight; /* file*8 / params */
    size_t n_tensors;
    ellm_tensor_report *tensors;
    double seconds;
    int weights_generated;      /* the source says its weights were generated, not trained */
    double target_bits;         /* options.target_bits (0: one width for all tensors) */
    double sq_error;            /* sum of every tensor's sq_error */
} ellm_compress_report;

ellm_status ellm_compress(const char *source_path, const char *out_path,
                          const ellm_compress_options *opts,
                          ellm_compress_report **report, ellm_error *err);
void ellm_compress_report_free(ellm_compress_report *r);

/* ------------------------------------------------------------------------- */
/* .ellm files                                                               */
/* ------------------------------------------------------------------------- */

typedef struct ellm_file ellm_file;

/* Opens (mmaps) a .ellm file, checks the header and directory checksums. */
ellm_status ellm_file_open(const char *path, ellm_file **out, ellm_error *err);
void ellm_file_close(ellm_file *f);

/* Checks every payload checksum and decodes every segment of every tensor. */
ellm_status ellm_file_verify(ellm_file *f, int n_threads, ellm_error *err);

/* Metadata as a JSON text (owned by the file handle). */
const char *ellm_file_metadata_json(const ellm_file *f);
size_t ellm_file_tensor_count(const ellm_file *f);

typedef struct ellm_tensor_info {
    const char *name;
    int n_dims;
    int64_t shape[4];
    uint64_t n_params;
    ellm_scheme scheme;
    int bits;
    ellm_granularity granularity;
    uint32_t group_size;
    ellm_coder coder;
    uint32_t segment_symbols;
    uint64_t n_segments;
    int rans_states;       /* rANS: interleaved states per segment (else 0) */
    int rans_classes;      /* rANS: frequency tables, one per class of lines (else 0) */
    int rans_class_axis;   /* rANS with classes: 0 = classes of rows, 1 = of columns */
    uint64_t coded_bytes;  /* coded stream + segment table */
    uint64_t meta_bytes;   /* scales, zeros, code table */
    double entropy_bits;   /* recorded at compression */
} ellm_tensor_info;

ellm_status ellm_file_tensor_info(const ellm_file *f, size_t index, ellm_tensor_info *info);

/* Writes the decoded integers (uint8, uint4 unpacked to uint8) with their
 * scales and zero points, or dequantized f32/f16 weights, as safetensors. */
typedef enum ellm_export_dtype {
    ELLM_EXPORT_INTEGERS = 0,
    ELLM_EXPORT_F32 = 1,
    ELLM_EXPORT_F16 = 2
} ellm_export_dtype;

ellm_status ellm_file_decompress(ellm_file *f, const char *out_path, ellm_export_dtype dtype,
                                 int n_threads, ellm_error *err);

/* ------------------------------------------------------------------------- */
/* Tokenizers                                                                */
/* ------------------------------------------------------------------------- */

typedef struct ellm_tokenizer ellm_tokenizer;

/* Loads a tokenizer from any place a user has one: a model (.ellm, HF folder,
 * GGUF, llama2.c checkpoint with its tokenizer beside it) or a tokenizer-only
 * file (vocabulary GGUF, tokenizer.json, tokenizer.model, llama2.c .bin). */
ellm_status ellm_tokenizer_load(const char *path, ellm_tokenizer **out, ellm_error *err);
void ellm_tokenizer_free(ellm_tokenizer *t);

int32_t ellm_tokenizer_vocab_size(const ellm_tokenizer *t);
int32_t ellm_tokenizer_bos(const ellm_tokenizer *t); /* -1 if none */
int32_t ellm_tokenizer_eos(const ellm_tokenizer *t); /* -1 if none */

/* Encodes `len` bytes of UTF-8 text. *ids is malloc'd; free() it.
 * add_bos: prepend BOS when the tokenizer has one. Special tokens written in
 * the text are recognised only when parse_special is non-zero. */
ellm_status ellm_tokenize(const ellm_tokenizer *t, const char *text, size_t len, int add_bos,
                          int parse_special, int32_t **ids, size_t *n_ids, ellm_error *err);

/* Decodes ids to text. *text is malloc'd and NUL-terminated; free() it. */
ellm_status ellm_detokenize(const ellm_tokenizer *t, const int32_t *ids, size_t n_ids,
                            char **text, size_t *len, ellm_error *err);

/* The bytes of one token's piece as it appears in output (byte tokens give
 * their byte). Returns the length; *piece points into the tokenizer. */
size_t ellm_token_piece(const ellm_tokenizer *t, int32_t id, const char **piece);

/* ------------------------------------------------------------------------- */
/* Models and inference                                                      */
/* ------------------------------------------------------------------------- */

typedef struct ellm_model ellm_model;

typedef struct ellm_load_options {
    int n_threads;           /* 0 = all cores */
    int max_ctx;             /* cap on context length; 0 = model's own */
    const char *tokenizer_path; /* for llama2.c sources without one beside */
    ellm_progress_fn progress;
    void *progress_user;
} ellm_load_options;

void ellm_load_options_default(ellm_load_options *opts);

/* Loads a .ellm file (decoded in parallel) or a source model (float). */
ellm_status ellm_model_load(const char *path, const ellm_load_options *opts,
                            ellm_model **out, ellm_error *err);
void ellm_model_free(ellm_model *m);

typedef struct ellm_model_info {
    const char *arch;     /* "llama", "phi3", "mistral", "qwen2" */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim;
    int vocab_size, max_ctx;
    int weight_bits;      /* 32 for float sources, 8 or 4 for .ellm (with mixed_bits: the width holding most weights) */
    int mixed_bits;       /* both 8- and 4-bit tensors (compress --target-bits) */
    double load_seconds;  /* open + parallel decode */
    double decode_seconds;/* parallel entropy decode alone */
    uint64_t weight_bytes;/* bytes of weights held in memory */
    int generated_weights;/* the model's weights are synthetic (not trained) */
} ellm_model_info;

void ellm_model_get_info(const ellm_model *m, ellm_model_info *info);
const ellm_tokenizer *ellm_model_tokenizer(const ellm_model *m);

/* Resets the KV cache. */
void ellm_model_reset(ellm_model *m);

/* Runs n_tokens tokens at positions pos..pos+n_tokens-1 through the model,
 * filling the KV cache. If logits is not NULL it receives vocab_size floats
 * per token when all_logits != 0, else only the last token's. */
ellm_status ellm_model_forward(ellm_model *m, const int32_t *tokens, int n_tokens, int pos,
                               float *logits, int all_logits, ellm_error *err);

typedef struct ellm_sampler_options {
    float temperature; /* 0 = greedy */
    float top_p;       /* 1 = off */
    uint64_t seed;
} ellm_sampler_options;

typedef struct ellm_sampler ellm_sampler;
ellm_sampler *ellm_sampler_new(const ellm_sampler_options *opts, int vocab_size);
void ellm_sampler_free(ellm_sampler *s);
int32_t ellm_sample(ellm_sampler *s, float *logits /* modified */);

/* Renders a chat with the model's template. roles are "system", "user",
 * "assistant". *out is malloc'd. add_generation_prompt opens the assistant turn. */
typedef struct ellm_chat_message {
    const char *role;
    const char *content;
} ellm_chat_message;

ellm_status ellm_chat_render(const ellm_model *m, const ellm_chat_message *msgs, size_t n,
                             int add_generation_prompt, char **out, ellm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* ENTROLLM_H */
