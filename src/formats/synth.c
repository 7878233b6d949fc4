/*
 * synth.c - models with generated weights in real architectures' shapes.
 * See synth.h.
 */
#include "formats/synth.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "common/pool.h"
#include "formats/safetensors.h"
#include "formats/source.h"

/* ---- built-in configs ---------------------------------------------------- */

typedef struct builtin {
    const char *name, *json;
} builtin;

/* smollm-135m: HuggingFaceTB/SmolLM-135M. smollm-1.7b: SmolLM-1.7B(-Instruct)
 * (same shape as ../shared/data/hf/smollm2-1.7b-resaved, v1 rope_theta and
 * context). phi3-mini-4k and mistral-7b: the hyperparameter table of
 * data/hf/README.md (phi3 from the Phi-3-mini-4k GGUF metadata; Mistral
 * v0.2 from Mistral's params). qwen2-0.5b: the published Qwen2-0.5B-Instruct
 * config (not verified against a file here). */
static const builtin BUILTINS[] = {
    {"smollm-135m",
     "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 576, "
     "\"intermediate_size\": 1536, \"num_hidden_layers\": 30, \"num_attention_heads\": 9, "
     "\"num_key_value_heads\": 3, \"vocab_size\": 49152, \"max_position_embeddings\": 2048, "
     "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": true, "
     "\"hidden_act\": \"silu\", \"bos_token_id\": 0, \"eos_token_id\": 0, \"torch_dtype\": \"bfloat16\"}"},
    {"smollm-1.7b",
     "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 2048, "
     "\"intermediate_size\": 8192, \"num_hidden_layers\": 24, \"num_attention_heads\": 32, "
     "\"num_key_value_heads\": 32, \"vocab_size\": 49152, \"max_position_embeddings\": 2048, "
     "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": true, "
     "\"hidden_act\": \"silu\", \"bos_token_id\": 1, \"eos_token_id\": 2, \"torch_dtype\": \"bfloat16\"}"},
    {"phi3-mini-4k",
     "{\"architectures\": [\"Phi3ForCausalLM\"], \"model_type\": \"phi3\", \"hidden_size\": 3072, "
     "\"intermediate_size\": 8192, \"num_hidden_layers\": 32, \"num_attention_heads\": 32, "
     "\"num_key_value_heads\": 32, \"vocab_size\": 32064, \"max_position_embeddings\": 4096, "
     "\"original_max_position_embeddings\": 4096, \"sliding_window\": 2047, \"rope_scaling\": null, "
     "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false, "
     "\"hidden_act\": \"silu\", \"bos_token_id\": 1, \"eos_token_id\": 32000, \"pad_token_id\": 32000, "
     "\"torch_dtype\": \"bfloat16\"}"},
    {"mistral-7b",
     "{\"architectures\": [\"MistralForCausalLM\"], \"model_type\": \"mistral\", \"hidden_size\": 4096, "
     "\"intermediate_size\": 14336, \"num_hidden_layers\": 32, \"num_attention_heads\": 32, "
     "\"num_key_value_heads\": 8, \"head_dim\": 128, \"vocab_size\": 32000, "
     "\"max_position_embeddings\": 32768, \"sliding_window\": null, \"rms_norm_eps\": 1e-05, "
     "\"rope_theta\": 1000000.0, \"tie_word_embeddings\": false, \"hidden_act\": \"silu\", "
     "\"bos_token_id\": 1, \"eos_token_id\": 2, \"torch_dtype\": \"bfloat16\"}"},
    {"qwen2-0.5b",
     "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\", \"hidden_size\": 896, "
     "\"intermediate_size\": 4864, \"num_hidden_layers\": 24, \"num_attention_heads\": 14, "
     "\"num_key_value_heads\": 2, \"vocab_size\": 151936, \"max_position_embeddings\": 32768, "
     "\"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"tie_word_embeddings\": true, "
     "\"hidden_act\": \"silu\", \"bos_token_id\": 151643, \"eos_token_id\": 151645, "
     "\"torch_dtype\": \"bfloat16\"}"},
};

const char *ellm_synth_builtin_config(const char *name) {
    for (size_t i = 0; i < ELLM_ARRAY_LEN(BUILTINS); i++)
        if (strcmp(BUILTINS[i].name, name) == 0) return BUILTINS[i].json;
    return NULL;
}

const char *const *ellm_synth_builtin_names(void) {
    static const char *const names[] = {"smollm-135m", "smollm-1.7b", "phi3-mini-4k", "mistral-7b", "qwen2-0.5b",
                                        NULL};
    return names;
}

/* ---- the tensor list of an architecture ----------------------------------- */

typedef enum init_kind { INIT_NORMAL, INIT_NORM_WEIGHT } init_kind;

typedef struct syn_tensor {
    char name[96];
    int n_dims;
    int64_t shape[2];
    init_kind init;
} syn_tensor;

typedef struct syn_model {
    syn_tensor *t;
    size_t n, cap;
} syn_model;

static bool add(syn_model *m, const char *name, int64_t rows, int64_t cols, init_kind init) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        syn_tensor *t = realloc(m->t, cap * sizeof *t);
        if (!t) return false;
        m->t = t;
        m->cap = cap;
    }
    syn_tensor *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->init = init;
    return true;
}

typedef struct hparams {
    const char *arch;
    int64_t hidden, inter, layers, heads, kv_heads, head_dim, vocab;
    bool tied;
} hparams;

static ellm_status get_int(json_t *cfg, const char *key, int64_t def, int64_t max, int64_t *out, ellm_error *err) {
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        if (def < 0) return ellm_fail(err, ELLM_E_FORMAT, "config.json: required key \"%s\" is missing", key);
        *out = def;
        return ELLM_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > max)
        return ellm_fail(err, ELLM_E_FORMAT, "config.json: \"%s\" must be an integer in [1, %lld]", key,
                         (long long)max);
    *out = json_integer_value(v);
    return ELLM_OK;
}

static ellm_status read_hparams(json_t *cfg, hparams *h, ellm_error *err) {
    const char *mt = json_string_value(json_object_get(cfg, "model_type"));
    if (!mt) return ellm_fail(err, ELLM_E_FORMAT, "config.json: \"model_type\" is missing");
    const char *known[] = {"llama", "mistral", "phi3", "qwen2"};
    h->arch = NULL;
    for (size_t i = 0; i < ELLM_ARRAY_LEN(known); i++)
        if (strcmp(mt, known[i]) == 0) h->arch = known[i];
    if (!h->arch)
        return ellm_fail(err, ELLM_E_UNSUPPORTED,
                         "config.json: model_type \"%s\" is not supported (llama, mistral, phi3, qwen2 are)", mt);
    ellm_status s = get_int(cfg, "hidden_size", -1, 1 << 16, &h->hidden, err);
    if (!s) s = get_int(cfg, "intermediate_size", -1, 1 << 18, &h->inter, err);
    if (!s) s = get_int(cfg, "num_hidden_layers", -1, 1000, &h->layers, err);
    if (!s) s = get_int(cfg, "num_attention_heads", -1, 1 << 10, &h->heads, err);
    if (!s) s = get_int(cfg, "num_key_value_heads", h->heads, h->heads, &h->kv_heads, err);
    if (!s) s = get_int(cfg, "vocab_size", -1, 1 << 22, &h->vocab, err);
    if (!s && h->hidden % h->heads && !json_object_get(cfg, "head_dim"))
        s = ellm_fail(err, ELLM_E_FORMAT, "config.json: hidden_size %lld is not a multiple of num_attention_heads %lld",
                      (long long)h->hidden, (long long)h->heads);
    if (!s) s = get_int(cfg, "head_dim", h->hidden / h->heads, 1 << 12, &h->head_dim, err);
    if (!s && h->heads % h->kv_heads)
        s = ellm_fail(err, ELLM_E_FORMAT, "config.json: num_attention_heads %lld is not a multiple of "
                      "num_key_value_heads %lld", (long long)h->heads, (long long)h->kv_heads);
    if (s) return s;
    h->tied = json_is_true(json_object_get(cfg, "tie_word_embeddings"));
    return ELLM_OK;
}

static bool build_tensors(const hparams *h, syn_model *m) {
    bool ok = add(m, "model.embed_tokens.weight", h->vocab, h->hidden, INIT_NORMAL);
    const int64_t q = h->heads * h->head_dim, kv = h->kv_heads * h->head_dim, d = h->hidden;
    const bool phi3 = strcmp(h->arch, "phi3") == 0, qwen2 = strcmp(h->arch, "qwen2") == 0;
    char n[96];
#define P(fmt) (snprintf(n, sizeof n, "model.layers.%lld." fmt, (long long)l), n)
    for (int64_t l = 0; l < h->layers && ok; l++) {
        ok = ok && add(m, P("input_layernorm.weight"), d, 0, INIT_NORM_WEIGHT);
        if (phi3) {
            ok = ok && add(m, P("self_attn.qkv_proj.weight"), q + 2 * kv, d, INIT_NORMAL);
        } else {
            ok = ok && add(m, P("self_attn.q_proj.weight"), q, d, INIT_NORMAL);
            ok = ok && add(m, P("self_attn.k_proj.weight"), kv, d, INIT_NORMAL);
            ok = ok && add(m, P("self_attn.v_proj.weight"), kv, d, INIT_NORMAL);
            if (qwen2) {
                ok = ok && add(m, P("self_attn.q_proj.bias"), q, 0, INIT_NORMAL);
                ok = ok && add(m, P("self_attn.k_proj.bias"), kv, 0, INIT_NORMAL);
                ok = ok && add(m, P("self_attn.v_proj.bias"), kv, 0, INIT_NORMAL);
            }
        }
        ok = ok && add(m, P("self_attn.o_proj.weight"), d, q, INIT_NORMAL);
        ok = ok && add(m, P("post_attention_layernorm.weight"), d, 0, INIT_NORM_WEIGHT);
        if (phi3) {
            ok = ok && add(m, P("mlp.gate_up_proj.weight"), 2 * h->inter, d, INIT_NORMAL);
        } else {
            ok = ok && add(m, P("mlp.gate_proj.weight"), h->inter, d, INIT_NORMAL);
            ok = ok && add(m, P("mlp.up_proj.weight"), h->inter, d, INIT_NORMAL);
        }
        ok = ok && add(m, P("mlp.down_proj.weight"), d, h->inter, INIT_NORMAL);
    }
#undef P
    ok = ok && add(m, "model.norm.weight", d, 0, INIT_NORM_WEIGHT);
    if (!h->tied) ok = ok && add(m, "lm_head.weight", h->vocab, d, INIT_NORMAL);
    return ok;
}

/* ---- generating the data ----------------------------------------------- */

typedef enum syn_dtype { SYN_F32, SYN_F16, SYN_BF16 } syn_dtype;

typedef struct gen_ctx {
    const syn_model *m;
    uint64_t seed;
    syn_dtype dtype;
    ellm_progress_fn progress;
    void *user;
    uint64_t done, total; /* elements */
    ellm_pool *pool;
} gen_ctx;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* Values are generated in blocks of SYN_BLOCK elements, each from its own
 * stream seeded by (seed, tensor name, block index): the output does not
 * depend on the thread count, and a tensor does not depend on which other
 * tensors exist (e.g. on --layers). */
#define SYN_BLOCK 65536

typedef struct block_job {
    const syn_tensor *t;
    syn_dtype dtype;
    void *dst;
    uint64_t n, tensor_seed;
    int64_t first_block; /* tasks are blocks first_block, first_block+1, ... */
} block_job;

static void gen_block(void *ctx, int64_t task, int thread) {
    (void)thread;
    const block_job *j = ctx;
    const int64_t block = j->first_block + task;
    const uint64_t begin = (uint64_t)block * SYN_BLOCK, end = ELLM_MIN(begin + SYN_BLOCK, j->n);
    ellm_rng rng;
    ellm_rng_seed(&rng, j->tensor_seed + 0x9e3779b97f4a7c15ull * (uint64_t)(block + 1));
    const float sigma = 0.02f, base = j->t->init == INIT_NORM_WEIGHT ? 1.0f : 0.0f;
    enum { SUB = 4096 }; /* even, so Box-Muller pairs never straddle */
    float vals[SUB];
    for (uint64_t at = begin; at < end; at += SUB) {
        const size_t n = (size_t)ELLM_MIN((uint64_t)SUB, end - at);
        for (size_t i = 0; i < n; i += 2) {
            /* Box-Muller on two 24-bit uniforms from one draw, both outputs
             * used; u1 is in (0, 1] so the log is finite. */
            uint64_t r = ellm_rng_next(&rng);
            float u1 = ((float)(uint32_t)(r >> 40) + 1.0f) * 0x1.0p-24f;
            float u2 = (float)(uint32_t)(r & 0xffffff) * 0x1.0p-24f;
            float rad = sigma * sqrtf(-2.0f * logf(u1)), a = 6.2831853f * u2;
            vals[i] = base + rad * cosf(a);
            if (i + 1 < n) vals[i + 1] = base + rad * sinf(a);
        }
        if (j->dtype == SYN_F32) memcpy((float *)j->dst + at, vals, n * 4);
        else if (j->dtype == SYN_F16) src_f32_to_f16(vals, (uint16_t *)j->dst + at, n);
        else src_f32_to_bf16(vals, (uint16_t *)j->dst + at, n);
    }
}

static ellm_status generate(void *user, size_t index, void *dst, size_t n_bytes, ellm_error *err) {
    gen_ctx *g = user;
    const syn_tensor *t = &g->m->t[index];
    block_job j = {.t = t, .dtype = g->dtype, .dst = dst,
                   .n = (uint64_t)t->shape[0] * (uint64_t)(t->n_dims == 2 ? t->shape[1] : 1),
                   .tensor_seed = g->seed ^ fnv1a(t->name)};
    const int64_t n_blocks = (int64_t)((j.n + SYN_BLOCK - 1) / SYN_BLOCK), slice = 128;
    /* In slices of blocks, so that progress moves within a large tensor. */
    for (int64_t b = 0; b < n_blocks; b += slice) {
        j.first_block = b;
        int64_t nb = ELLM_MIN(slice, n_blocks - b);
        ellm_pool_run(g->pool, nb, gen_block, &j);
        if (g->progress)
            g->progress(g->user, "synth", g->done + ELLM_MIN(j.n, (uint64_t)(b + nb) * SYN_BLOCK), g->total);
    }
    g->done += j.n;
    (void)n_bytes;
    (void)err;
    return ELLM_OK;
}

static ellm_status make_dir(const char *dir, ellm_error *err) {
    if (ellm_path_is_dir(dir)) return ELLM_OK;
    if (mkdir(dir, 0777) != 0) return ellm_fail(err, ELLM_E_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    return ELLM_OK;
}

static ellm_status write_text(const char *path, const char *text, ellm_error *err) {
    ellm_outfile o;
    ellm_status s = ellm_outfile_open(&o, path, err);
    if (s) return s;
    s = ellm_outfile_write(&o, text, strlen(text), err);
    if (!s) s = ellm_outfile_write(&o, "\n", 1, err);
    if (!s) return ellm_outfile_commit(&o, err);
    ellm_outfile_abort(&o);
    return s;
}

ellm_status ellm_synth(const char *config_json_text, int n_layers_override, uint64_t seed, const char *dtype,
                       const char *out_dir, ellm_progress_fn progress, void *user, ellm_error *err) {
    syn_dtype dt;
    const char *st_dtype;
    if (strcmp(dtype, "f32") == 0) dt = SYN_F32, st_dtype = "F32";
    else if (strcmp(dtype, "f16") == 0) dt = SYN_F16, st_dtype = "F16";
    else if (strcmp(dtype, "bf16") == 0) dt = SYN_BF16, st_dtype = "BF16";
    else return ellm_fail(err, ELLM_E_ARG, "synth: dtype \"%s\" is not f32, f16 or bf16", dtype);
    if (n_layers_override < 0 || n_layers_override > 1000)
        return ellm_fail(err, ELLM_E_ARG, "synth: layer count %d is not in [0, 1000]", n_layers_override);

    json_error_t je;
    json_t *cfg = json_loads(config_json_text, JSON_REJECT_DUPLICATES, &je);
    if (!cfg) return ellm_fail(err, ELLM_E_FORMAT, "config.json: not valid JSON: %s (line %d, column %d)", je.text,
                               je.line, je.column);
    syn_model m = {0};
    st_writer *w = NULL;
    char *cfg_text = NULL, *cfg_path = NULL, *st_path = NULL;
    ellm_status s = ELLM_OK;
    if (!json_is_object(cfg)) {
        s = ellm_fail(err, ELLM_E_FORMAT, "config.json: not a JSON object");
        goto done;
    }
    if (n_layers_override > 0) json_object_set_new(cfg, "num_hidden_layers", json_integer(n_layers_override));
    hparams h = {0};
    s = read_hparams(cfg, &h, err);
    if (s) goto done;
    char note[160];
    snprintf(note, sizeof note, "generated, not trained: entrollm synth seed %llu, N(0, 0.02) weights",
             (unsigned long long)seed);
    json_object_set_new(cfg, "entrollm_weights", json_string(note));
    json_object_set_new(cfg, "torch_dtype", json_string(dt == SYN_F32 ? "float32" : dt == SYN_F16 ? "float16" : "bfloat16"));
    if (!build_tensors(&h, &m)) {
        s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        goto done;
    }
    s = st_writer_new(&w, err);
    uint64_t total = 0;
    size_t es = dt == SYN_F32 ? 4 : 2;
    for (size_t i = 0; i < m.n && !s; i++) {
        uint64_t n = (uint64_t)m.t[i].shape[0] * (uint64_t)(m.t[i].n_dims == 2 ? m.t[i].shape[1] : 1);
        total += n;
        s = st_writer_add(w, m.t[i].name, st_dtype, m.t[i].n_dims, m.t[i].shape, n * es, err);
    }
    if (s) goto done;
    st_writer_set_metadata(w, "format", "pt");
    st_writer_set_metadata(w, "entrollm", note);
    cfg_text = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    cfg_path = ellm_path_join(out_dir, "config.json");
    st_path = ellm_path_join(out_dir, "model.safetensors");
    if (!cfg_text || !cfg_path || !st_path) {
        s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        goto done;
    }
    s = make_dir(out_dir, err);
    gen_ctx g = {.m = &m, .seed = seed, .dtype = dt, .progress = progress, .user = user, .total = total};
    if (!s) s = ellm_pool_create(0, &g.pool, err);
    if (!s) s = st_writer_write(w, st_path, generate, &g, err);
    if (g.pool) ellm_pool_destroy(g.pool);
    if (!s) s = write_text(cfg_path, cfg_text, err);
done:
    free(cfg_text);
    free(cfg_path);
    free(st_path);
    st_writer_free(w);
    free(m.t);
    json_decref(cfg);
    return s;
}
