/*
 * gguf_model.c - reader for GGUF model files with F32/F16/BF16 tensors.
 *
 * Only the metadata is read into memory (a growing prefix of the file, never
 * the tensor data); tensors are read one at a time later. The llama.cpp
 * hyperparameter keys become an HF-style config; the tokenizer.* keys travel
 * as a metadata-only GGUF blob "tokenizer.gguf".
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "formats/gguf.h"
#include "formats/source.h"

#define GGUF_MAX_META (64u << 20)

typedef struct arch_desc {
    const char *arch, *hf_class, *rope_layout;
} arch_desc;

/* llama.cpp permutes llama/mistral q,k rows into the Meta (interleaved)
 * layout when converting; phi3 and qwen2 keep HF's rotate-half layout. */
static const arch_desc ARCHES[] = {
    {"llama", "LlamaForCausalLM", "interleaved"},
    {"mistral", "MistralForCausalLM", "interleaved"},
    {"phi3", "Phi3ForCausalLM", "half"},
    {"qwen2", "Qwen2ForCausalLM", "half"},
};

/* Reads the metadata of the GGUF at fd: a prefix of the file, doubled until
 * the header, key-values and tensor infos fit. */
static ellm_status read_meta(int fd, const char *path, uint64_t file_size, uint8_t **buf, gguf_ctx *g,
                             ellm_error *err) {
    size_t want = (size_t)ELLM_MIN(file_size, (uint64_t)(4u << 20)), have = 0;
    *buf = NULL;
    for (;;) {
        uint8_t *b = realloc(*buf, want ? want : 1);
        if (!b) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory reading GGUF metadata", path);
        *buf = b;
        ellm_status s = ellm_pread_exact(fd, path, b + have, want - have, have, err);
        if (s) return s;
        have = want;
        bool more = false;
        s = gguf_parse_prefix(b, want, file_size, path, g, &more, err);
        if (!s || !more) return s;
        /* Real metadata is a few MiB (about 10 for a 256k-token vocabulary):
         * a corrupted count must not make us read a whole model into RAM. */
        if (want >= GGUF_MAX_META)
            return ellm_fail(err, ELLM_E_FORMAT,
                             "%s: GGUF metadata runs past %u MiB: the file is corrupted (or its metadata is "
                             "unreasonably large)",
                             path, GGUF_MAX_META >> 20);
        want = (size_t)ELLM_MIN(ELLM_MIN(file_size, (uint64_t)want * 2), (uint64_t)GGUF_MAX_META);
    }
}

static char *key_of(const char *arch, const char *suffix) {
    size_t n = strlen(arch) + strlen(suffix) + 2;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s.%s", arch, suffix);
    return k;
}

/* {arch}.suffix as an unsigned integer; required unless def >= 0. */
static ellm_status get_u(const gguf_ctx *g, const char *path, const char *arch, const char *suffix,
                         int64_t def, int64_t *out, ellm_error *err) {
    char *k = key_of(arch, suffix);
    if (!k) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    uint64_t v;
    ellm_status s = ELLM_OK;
    if (gguf_get_u64(g, k, &v) == 0 && v > 0 && v < ((uint64_t)1 << 40)) *out = (int64_t)v;
    else if (!gguf_find(g, k) && def >= 0) *out = def;
    else if (gguf_find(g, k)) s = ellm_fail(err, ELLM_E_FORMAT, "%s: metadata %s is not a positive integer", path, k);
    else s = ellm_fail(err, ELLM_E_FORMAT, "%s: required metadata %s is missing", path, k);
    free(k);
    return s;
}

static double get_f(const gguf_ctx *g, const char *arch, const char *suffix, double def) {
    char *k = key_of(arch, suffix);
    double v = def;
    if (k && gguf_get_f64(g, k, &v) != 0) v = def;
    free(k);
    return v;
}

static ellm_status build_config(const gguf_ctx *g, const char *path, const arch_desc *ad, src_model *m,
                                ellm_error *err) {
    const char *a = ad->arch;
    int64_t hidden, inter, layers, heads, kv_heads, ctx_len, head_dim, vocab = 0;
    ellm_status s = get_u(g, path, a, "embedding_length", -1, &hidden, err);
    if (!s) s = get_u(g, path, a, "feed_forward_length", -1, &inter, err);
    if (!s) s = get_u(g, path, a, "block_count", -1, &layers, err);
    if (!s) s = get_u(g, path, a, "attention.head_count", -1, &heads, err);
    if (!s) s = get_u(g, path, a, "attention.head_count_kv", heads, &kv_heads, err);
    if (!s) s = get_u(g, path, a, "context_length", 2048, &ctx_len, err);
    if (!s) s = get_u(g, path, a, "attention.key_length", hidden / heads, &head_dim, err);
    if (s) return s;
    if (heads % kv_heads != 0)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: %lld attention heads are not a multiple of %lld kv heads",
                         path, (long long)heads, (long long)kv_heads);
    const gguf_kv *toks = gguf_find(g, "tokenizer.ggml.tokens");
    if (toks && toks->type == GGUF_TYPE_ARRAY) vocab = (int64_t)toks->arr_len;
    else if (get_u(g, path, a, "vocab_size", 0, &vocab, err)) return err->code;
    long emb = src_find(m, "token_embd.weight");
    if (emb < 0) return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor token_embd.weight is missing", path);
    /* As in HF configs, vocab_size is the embedding's row count; a tokenizer
     * may define fewer tokens (padded embeddings), never more. */
    if (vocab > m->tensors[emb].shape[0])
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: the tokenizer has %lld tokens but token_embd.weight has only %lld rows", path,
                         (long long)vocab, (long long)m->tensors[emb].shape[0]);
    vocab = m->tensors[emb].shape[0];

    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", ad->hf_class));
    json_object_set_new(o, "model_type", json_string(a));
    json_object_set_new(o, "hidden_size", json_integer(hidden));
    json_object_set_new(o, "intermediate_size", json_integer(inter));
    json_object_set_new(o, "num_hidden_layers", json_integer(layers));
    json_object_set_new(o, "num_attention_heads", json_integer(heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(kv_heads));
    json_object_set_new(o, "head_dim", json_integer(head_dim));
    json_object_set_new(o, "vocab_size", json_integer(vocab));
    json_object_set_new(o, "max_position_embeddings", json_integer(ctx_len));
    json_object_set_new(o, "rms_norm_eps", json_real(get_f(g, a, "attention.layer_norm_rms_epsilon", 1e-5)));
    json_object_set_new(o, "rope_theta", json_real(get_f(g, a, "rope.freq_base", 10000.0)));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(src_find(m, "output.weight") < 0));
    uint64_t id;
    if (gguf_get_u64(g, "tokenizer.ggml.bos_token_id", &id) == 0)
        json_object_set_new(o, "bos_token_id", json_integer((json_int_t)id));
    if (gguf_get_u64(g, "tokenizer.ggml.eos_token_id", &id) == 0)
        json_object_set_new(o, "eos_token_id", json_integer((json_int_t)id));
    int64_t rope_dims;
    if (get_u(g, path, a, "rope.dimension_count", head_dim, &rope_dims, err) == ELLM_OK && rope_dims != head_dim)
        json_object_set_new(o, "partial_rotary_factor", json_real((double)rope_dims / (double)head_dim));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "entrollm_rope_layout", json_string(ad->rope_layout));
    m->config_json = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    return m->config_json ? ELLM_OK : ellm_fail(err, ELLM_E_NOMEM, "out of memory");
}

/* general.architecture and every tokenizer.* key, re-serialised. */
static ellm_status tokenizer_blob(const gguf_ctx *g, src_model *m, ellm_error *err) {
    gguf_writer *w;
    ellm_status s = gguf_writer_new(&w, err);
    if (s) return s;
    bool any = false;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        bool tok = kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0;
        bool arch = kv->key.len == 20 && memcmp(kv->key.ptr, "general.architecture", 20) == 0;
        if (tok || arch) gguf_writer_copy_kv(w, g, kv);
        any |= tok;
    }
    uint8_t *buf = NULL;
    size_t size = 0;
    if (any) s = gguf_writer_to_buffer(w, &buf, &size, err);
    gguf_writer_free(w);
    if (!s && any) s = src_add_blob(m, "tokenizer.gguf", buf, size, err);
    free(buf);
    return s;
}

ellm_status src_open_gguf(const char *path, src_model **out, ellm_error *err) {
    *out = NULL;
    uint64_t file_size;
    ellm_status s = ellm_file_size(path, &file_size, err);
    if (s) return s;
    src_model *m = src_model_new(path, "gguf", err);
    if (!m) return ELLM_E_NOMEM;
    int fi;
    uint8_t *buf = NULL;
    gguf_ctx g = {0};
    s = src_add_file(m, path, &fi, err);
    if (!s) s = read_meta(m->fds[fi], path, file_size, &buf, &g, err);
    if (s) goto done;

    gguf_str arch_s;
    const arch_desc *ad = NULL;
    if (gguf_get_str(&g, "general.architecture", &arch_s) != 0) {
        s = ellm_fail(err, ELLM_E_FORMAT, "%s: general.architecture is missing", path);
        goto done;
    }
    for (size_t i = 0; i < ELLM_ARRAY_LEN(ARCHES); i++)
        if (arch_s.len == strlen(ARCHES[i].arch) && memcmp(arch_s.ptr, ARCHES[i].arch, arch_s.len) == 0)
            ad = &ARCHES[i];
    if (!ad) {
        s = ellm_fail(err, ELLM_E_UNSUPPORTED,
                      "%s: architecture \"%.*s\" is not supported (llama, mistral, phi3, qwen2 are)", path,
                      (int)ELLM_MIN(arch_s.len, 64), arch_s.ptr);
        goto done;
    }
    if (g.n_tensors == 0) {
        s = ellm_fail(err, ELLM_E_FORMAT, "%s: a GGUF without tensors (vocabulary only?) is not a model", path);
        goto done;
    }
    for (uint64_t i = 0; i < g.n_tensors && !s; i++) {
        const gguf_tensor_info *ti = &g.tensors[i];
        char name[512];
        snprintf(name, sizeof name, "%.*s", (int)ELLM_MIN(ti->name.len, sizeof name - 1), ti->name.ptr);
        src_tensor t = {.name = name, .n_dims = (int)ti->n_dims, .file_index = fi,
                        .offset = g.data_offset + ti->offset};
        switch (ti->ggml_type) {
        case GGML_TYPE_F32: t.dtype = ELLM_DTYPE_F32; break;
        case GGML_TYPE_F16: t.dtype = ELLM_DTYPE_F16; break;
        case GGML_TYPE_BF16: t.dtype = ELLM_DTYPE_BF16; break;
        default:
            s = ellm_fail(err, ELLM_E_UNSUPPORTED,
                          "%s: tensor %s has type %s: already-quantized GGUF files are not supported; give an "
                          "F32/F16/BF16 model",
                          path, name, ggml_type_name(ti->ggml_type));
            continue;
        }
        t.n_elements = 1;
        for (int d = 0; d < t.n_dims; d++) {
            t.shape[d] = (int64_t)ti->ne[t.n_dims - 1 - d]; /* GGUF is innermost first */
            t.n_elements *= ti->ne[t.n_dims - 1 - d];
        }
        t.n_bytes = t.n_elements * ellm_dtype_size(t.dtype);
        s = src_add_tensor(m, &t, err);
    }
    if (!s) s = build_config(&g, path, ad, m, err);
    if (!s) s = tokenizer_blob(&g, m, err);
    if (!s) s = src_finish(m, err);
done:
    gguf_free(&g);
    free(buf);
    if (s) {
        src_close(m);
        return s;
    }
    *out = m;
    return ELLM_OK;
}
