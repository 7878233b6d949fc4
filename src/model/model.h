/*
 * model.h - Llama-family inference on integer weights (internal interface).
 *
 * Pieces, each in its own file:
 *   config.c   the HF-style config JSON -> ellm_llm_config (architectures and
 *              rope scalings we run; everything else refused by name)
 *   names.c    one table mapping every source's tensor names (HF, llama2.c /
 *              Meta, GGUF) to the roles the forward pass uses
 *   kernels.c  matrix-vector / matrix-matrix products reading uint8, uint4 or
 *              float weights with their scales and zero points (AVX2 + scalar)
 *   forward.c  RMSNorm, RoPE, grouped-query attention, SwiGLU, KV cache
 *   sampler.c  greedy, temperature, top-p
 *   model.c    the public ellm_model_* API: loading from .ellm or a source
 *   export.c   writing a model as an HF folder or a GGUF file
 * The forward pass is in docs/INFERENCE.md.
 */
#ifndef ELLM_MODEL_H
#define ELLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/pool.h"
#include "entrollm.h"
#include "quant/quant.h"

/* ---- hyperparameters ---------------------------------------------------- */

typedef enum ellm_rope_layout {
    ELLM_ROPE_INTERLEAVED = 0, /* pairs (2i, 2i+1): llama2.c, Meta, GGUF llama */
    ELLM_ROPE_HALF = 1         /* pairs (i, i + d/2): Hugging Face rotate_half */
} ellm_rope_layout;

typedef enum ellm_rope_scaling {
    ELLM_ROPE_SCALING_NONE = 0,
    ELLM_ROPE_SCALING_LINEAR = 1,   /* positions divided by factor */
    ELLM_ROPE_SCALING_LLAMA3 = 2,   /* Llama 3.1 frequency-dependent scaling */
    ELLM_ROPE_SCALING_LONGROPE = 3  /* Phi-3 LongRoPE: short/long per-dimension factors */
} ellm_rope_scaling;

typedef struct ellm_llm_config {
    char arch[16];            /* "llama", "mistral", "phi3", "qwen2" */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim;
    int vocab_size, max_ctx;
    float norm_eps;
    float rope_theta;
    ellm_rope_layout rope_layout;
    ellm_rope_scaling rope_scaling;
    float rope_factor;        /* linear / llama3 */
    float llama3_low_freq_factor, llama3_high_freq_factor;
    int original_max_ctx;     /* llama3 / longrope */
    int n_rope_factors;       /* longrope: head_dim/2 entries each */
    float *rope_short_factor, *rope_long_factor;
    float rope_attn_factor;   /* longrope: multiplies cos and sin */
    int sliding_window;       /* 0 = full causal attention */
    int tie_embeddings;       /* -1 unknown (decided by the tensors present) */
    int bos_id, eos_id;       /* -1 if the config does not say */
} ellm_llm_config;

/* Parses an HF-style config.json text. `what` names its origin in messages. */
ellm_status ellm_llm_config_parse(const char *json_text, const char *what, ellm_llm_config *c,
                                  ellm_error *err);
void ellm_llm_config_free(ellm_llm_config *c);

/* ---- tensor names ------------------------------------------------------- */

typedef enum ellm_role {
    ELLM_ROLE_TOK_EMBD, ELLM_ROLE_OUTPUT_NORM, ELLM_ROLE_OUTPUT,
    /* per layer */
    ELLM_ROLE_ATTN_NORM, ELLM_ROLE_FFN_NORM,
    ELLM_ROLE_WQ, ELLM_ROLE_WK, ELLM_ROLE_WV, ELLM_ROLE_WQKV, ELLM_ROLE_WO,
    ELLM_ROLE_BQ, ELLM_ROLE_BK, ELLM_ROLE_BV,
    ELLM_ROLE_W_GATE, ELLM_ROLE_W_UP, ELLM_ROLE_W_GATE_UP, ELLM_ROLE_W_DOWN,
    ELLM_ROLE_COUNT
} ellm_role;

typedef enum ellm_naming {
    ELLM_NAMING_HF = 0,    /* model.layers.N.self_attn.q_proj.weight */
    ELLM_NAMING_META = 1,  /* layers.N.attention.wq.weight (llama2.c, Meta) */
    ELLM_NAMING_GGUF = 2,  /* blk.N.attn_q.weight */
    ELLM_NAMING_COUNT
} ellm_naming;

/* Parses a tensor name: role and layer (-1 for global tensors). Returns 0 on
 * success, -1 for names no table knows (e.g. rotary inv_freq buffers). */
int ellm_role_parse(const char *name, ellm_role *role, int *layer, ellm_naming *naming);
/* Writes the name of (role, layer) in a naming; returns 0, or -1 when that
 * naming has no such tensor (e.g. fused qkv in Meta naming). */
int ellm_role_name(ellm_naming naming, ellm_role role, int layer, char *buf, size_t size);
int ellm_role_is_layer(ellm_role role);

/* ---- kernels ------------------------------------------------------------ */

/* Activations quantized for the integer products: int8 in blocks of 32
 * consecutive values, each block with a float scale (max |x| / 127). */
#define ELLM_QBLOCK 32
typedef struct ellm_qacts {
    int64_t in;
    int8_t *x8;    /* n_tok x in, natural order */
    int8_t *x8i;   /* n_tok x in, each block reordered (even elements, then odd) for packed uint4 */
    float *dx;     /* n_tok x in/32 block scales */
    float *dxs;    /* dx * (sum of the block's int8 values) */
    float *xsum;   /* n_tok: sum of dxs over the vector */
    size_t cap;    /* elements allocated */
} ellm_qacts;

/* Per-thread scratch for the products (dequantized row blocks). */
typedef struct ellm_kernels {
    ellm_pool *pool;
    int n_threads;
    int force_scalar;         /* use the portable path even where AVX2 or NEON exists */
    int exact;                /* float activations for integer weights too (slower) */
    size_t scratch_floats;    /* per thread */
    float *scratch;           /* n_threads * scratch_floats */
    ellm_qacts qa;
} ellm_kernels;

/* max_in: the longest row (input dimension) any product will see. */
ellm_status ellm_kernels_init(ellm_kernels *k, ellm_pool *pool, int64_t max_in, int force_scalar,
                              ellm_error *err);
void ellm_kernels_free(ellm_kernels *k);
/* True when this build has a vectorised path. */
int ellm_kernels_have_simd(void);

/* y[t][r] = sum_c W[row0 + r][c] * x[t][c] for t < n_tok, r < n_rows, where
 * W is a 2-D tensor {out, in} of bits 8, 4 or 32 and every granularity.
 * x is n_tok x in (row stride in), y is n_tok x y_stride. Rows are split
 * across the pool.
 *
 * Integer weights whose rows and groups are whole blocks of 32 (every real
 * model) take the integer path: x is quantized to int8 per block of 32
 * (ellm_quantize_acts) and each block's product is an exact integer sum,
 * scaled by the block's and the group's scales - as llama.cpp multiplies its
 * quantized weights with Q8 activations. One token or many, each (row, token)
 * is the same computation, so batched and token-by-token results are
 * identical. Float weights, odd shapes and k->exact use float activations. */
ellm_status ellm_matmul(ellm_kernels *k, const ellm_qtensor *w, int64_t row0, int64_t n_rows,
                        const float *x, int n_tok, float *y, int64_t y_stride, ellm_error *err);

/* Several products sharing the activations x (q, k and v; gate and up) in
 * one hand-off to the pool: out i gets W_i[row0_i ..+n_rows_i] x. */
#define ELLM_MATMUL_MAX_OUTS 4
typedef struct ellm_mm_out {
    const ellm_qtensor *w;
    int64_t row0, n_rows;
    float *y;
    int64_t y_stride;
} ellm_mm_out;
ellm_status ellm_matmul_multi(ellm_kernels *k, const ellm_mm_out *outs, int n_outs, const float *x, int n_tok,
                              ellm_error *err);

/* Runs fn over n_tasks tasks on the pool, or on the calling thread when the
 * work (multiply-adds) is too small to be worth the hand-off. */
#define ELLM_PARALLEL_MIN_WORK (1u << 16)
void ellm_kernels_run(ellm_kernels *k, int64_t n_tasks, uint64_t work, ellm_task_fn fn, void *ctx);

/* Whether w takes the integer path (see ellm_matmul). */
int ellm_matmul_uses_int8(const ellm_kernels *k, const ellm_qtensor *w);

/* Quantizes n_tok vectors of `in` floats (in a multiple of 32) into qa,
 * growing it. Exposed for tests: dequantized x is dx[b] * x8[i]. */
ellm_status ellm_quantize_acts(ellm_qacts *qa, const float *x, int n_tok, int64_t in, ellm_error *err);
void ellm_qacts_free(ellm_qacts *qa);

/* Dequantizes row r of a 2-D tensor (an embedding lookup). */
void ellm_row_dequant(const ellm_qtensor *w, int64_t r, float *out, int force_scalar);

/* Checks that a tensor's parameters are usable by the kernels (bits,
 * group sizes, scales present); names the tensor on failure. */
ellm_status ellm_kernels_check_tensor(const ellm_qtensor *w, ellm_error *err);

/* ---- weights and the forward pass ---------------------------------------- */

typedef struct ellm_layer {
    const float *attn_norm, *ffn_norm;   /* dim floats */
    const ellm_qtensor *wq, *wk, *wv, *wqkv, *wo;
    const float *bq, *bk, *bv;           /* NULL when absent */
    const ellm_qtensor *w_gate, *w_up, *w_gate_up, *w_down;
    float *k_cache, *v_cache;            /* [cache_cap][kv_dim] */
} ellm_layer;

typedef struct ellm_llm {
    ellm_llm_config cfg;
    const ellm_qtensor *tok_embd, *output; /* output = tok_embd when tied */
    const float *output_norm;
    ellm_layer *layers;
    ellm_kernels kern;
    int cache_cap;                         /* positions allocated in the KV cache */
    int n_cached;                          /* positions filled */
    /* activation buffers, grown on demand */
    int act_tokens;
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2;
    float *scores;                         /* n_threads * cache_cap */
    float *inv_freq, *inv_freq_long;       /* head_dim/2 rotary frequencies */
    float **vecs;                          /* norms and biases converted to float at bind */
    size_t n_vecs;
} ellm_llm;

/* Binds tensors (by the name table) to the roles of cfg, checks every shape
 * and creates scratch. tensors stay owned by the caller. */
ellm_status ellm_llm_bind(ellm_llm *m, const ellm_qtensor *tensors, size_t n_tensors,
                          ellm_pool *pool, int force_scalar, ellm_error *err);
void ellm_llm_free(ellm_llm *m);
void ellm_llm_reset(ellm_llm *m);
/* As ellm_model_forward. */
ellm_status ellm_llm_forward(ellm_llm *m, const int32_t *tokens, int n_tokens, int pos,
                             float *logits, int all_logits, ellm_error *err);

/* ---- the public handle ---------------------------------------------------- */

typedef struct ellm_owned_blob {
    char *name;
    uint8_t *data;
    size_t size;
} ellm_owned_blob;

struct ellm_model {
    ellm_llm llm;
    ellm_pool *pool;
    ellm_qtensor *tensors;      /* every tensor of the model, names owned */
    size_t n_tensors;
    char *config_json;          /* the HF-style config text */
    ellm_owned_blob *blobs;     /* tokenizer and config files carried along */
    size_t n_blobs;
    ellm_tokenizer *tok;        /* NULL when the model carries no tokenizer */
    char *path;
    char format[16];            /* "ellm", "llama2c", "hf", "gguf" */
    int generated_weights;      /* config says the weights are synthetic */
    ellm_model_info info;
};

/* ---- generation ------------------------------------------------------------ */

/* Called with every generated token (stop tokens excluded) and the bytes to
 * print for it (empty without a tokenizer). Return non-zero to stop. */
typedef int (*ellm_token_fn)(void *user, int32_t id, const char *piece, size_t len);

typedef struct ellm_gen_params {
    int max_new_tokens;              /* upper bound; stops earlier at a stop token or the context's end */
    ellm_sampler_options sampler;
    ellm_token_fn on_token;          /* may be NULL */
    void *user;
} ellm_gen_params;

typedef enum ellm_gen_stop {
    ELLM_GEN_STOP_LENGTH = 0,   /* max_new_tokens reached */
    ELLM_GEN_STOP_TOKEN = 1,    /* a stop token (EOS, end of turn; BOS for llama2.c) was sampled */
    ELLM_GEN_STOP_CONTEXT = 2,  /* the context is full */
    ELLM_GEN_STOP_CALLER = 3    /* on_token asked to stop */
} ellm_gen_stop;

typedef struct ellm_gen_result {
    int n_prompt;          /* prompt tokens */
    int n_prefilled;       /* prompt tokens computed (the rest were in the KV cache) */
    int n_generated;       /* tokens generated (stop token excluded) */
    int n_gen_forwards;    /* single-token forward passes after the prefill */
    double prefill_seconds;/* the prefill forward: time to the first token's logits */
    double gen_seconds;    /* sampling + the single-token forward passes */
    ellm_gen_stop stop;
    int32_t last_token;    /* the last sampled token (the stop token when stopped by one) */
} ellm_gen_result;

/* Runs the prompt (reusing the first n_cached tokens already in the KV cache,
 * which must equal the prompt's first tokens) and samples until a stop.
 * After it returns, the KV cache holds prompt + generated tokens except the
 * last sampled one. */
ellm_status ellm_generate(ellm_model *m, const int32_t *prompt, int n_prompt, int n_cached,
                          const ellm_gen_params *p, ellm_gen_result *res, ellm_error *err);

/* ---- export -------------------------------------------------------------- */

/* Writes a loaded model as an HF folder (config.json, model.safetensors with
 * HF names and rotate_half q/k rows, tokenizer files) or a GGUF file (llama.cpp
 * names, interleaved q/k rows). Weights are written as float32 (dequantized
 * for .ellm models). */
ellm_status ellm_model_export_hf(const ellm_model *m, const char *dir, ellm_error *err);
ellm_status ellm_model_export_gguf(const ellm_model *m, const char *path, ellm_error *err);

#endif /* ELLM_MODEL_H */
