/*
 * forward.c - the Llama-family forward pass over bound weights: RMSNorm,
 * rotary embeddings (interleaved or rotate_half pairing; linear, Llama 3 and
 * LongRoPE scalings), grouped-query attention with an optional sliding
 * window, SwiGLU, KV cache. Batched: n tokens go through each matrix product
 * together (matrix-matrix), which is what makes prefill and perplexity fast.
 *
 * The arithmetic follows llama2.c's run.c (and HF's float32 path) operation
 * for operation where it matters for bit-exact greedy output: RMSNorm
 * w * (x / sqrt(mean(x^2) + eps)), frequencies 1 / theta^(2i/d) in float,
 * softmax with the maximum subtracted.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/model.h"

/* ---- binding -------------------------------------------------------------- */

static const char *role_label(ellm_role r) {
    static const char *const names[ELLM_ROLE_COUNT] = {
        "token embedding", "final norm", "output head", "attention norm", "ffn norm", "q projection",
        "k projection", "v projection", "fused qkv projection", "output projection", "q bias", "k bias",
        "v bias", "gate projection", "up projection", "fused gate_up projection", "down projection"};
    return names[r];
}

static ellm_status check_shape(const ellm_qtensor *t, int64_t rows, int64_t cols, ellm_error *err) {
    int ok = cols < 0 ? (t->n_dims == 1 && t->shape[0] == rows)
                      : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (ok) return ellm_kernels_check_tensor(t, err);
    char got[96] = "", want[64];
    for (int i = 0; i < t->n_dims && i < 4; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? " x " : "", (long long)t->shape[i]);
    if (cols < 0) snprintf(want, sizeof want, "%lld", (long long)rows);
    else snprintf(want, sizeof want, "%lld x %lld", (long long)rows, (long long)cols);
    return ellm_fail(err, ELLM_E_FORMAT, "tensor %s: shape [%s], the config needs [%s]", t->name ? t->name : "?", got,
                     want);
}

/* 1-D tensors (norm weights, biases: a few KiB) are converted to float once. */
static ellm_status to_vec(ellm_llm *m, const ellm_qtensor *t, const float **out, ellm_error *err) {
    float *v = ellm_malloc((size_t)t->n * sizeof(float), err);
    if (!v) return ELLM_E_NOMEM;
    float **nv = realloc(m->vecs, (m->n_vecs + 1) * sizeof *nv);
    if (!nv) {
        free(v);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    m->vecs = nv;
    m->vecs[m->n_vecs++] = v;
    ellm_row_dequant(t, 0, v, 0);
    *out = v;
    return ELLM_OK;
}

static void compute_inv_freq(const ellm_llm_config *c, const float *factor, float *out) {
    const int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        float f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        if (c->rope_scaling == ELLM_ROPE_SCALING_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_scaling == ELLM_ROPE_SCALING_LLAMA3) {
            const float pi = 3.14159265358979f;
            float wavelen = 2.0f * pi / f;
            float low_wl = (float)c->original_max_ctx / c->llama3_low_freq_factor;
            float high_wl = (float)c->original_max_ctx / c->llama3_high_freq_factor;
            if (wavelen > low_wl) {
                f /= c->rope_factor;
            } else if (wavelen >= high_wl) {
                float smooth = ((float)c->original_max_ctx / wavelen - c->llama3_low_freq_factor) /
                               (c->llama3_high_freq_factor - c->llama3_low_freq_factor);
                f = (1.0f - smooth) * f / c->rope_factor + smooth * f;
            }
        } else if (c->rope_scaling == ELLM_ROPE_SCALING_LONGROPE) {
            f = 1.0f / (factor[i] * powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim));
        }
        out[i] = f;
    }
}

ellm_status ellm_llm_bind(ellm_llm *m, const ellm_qtensor *tensors, size_t n_tensors, ellm_pool *pool,
                          int force_scalar, ellm_error *err) {
    ellm_llm_config *c = &m->cfg;
    const int L = c->n_layers;
    const int64_t dim = c->dim, qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    const int64_t hid = c->hidden_dim;
    m->layers = ellm_calloc((size_t)L, sizeof *m->layers, err);
    const ellm_qtensor **found = ellm_calloc((size_t)(L + 1) * ELLM_ROLE_COUNT, sizeof *found, err);
    if (!m->layers || !found) {
        free(found);
        return ELLM_E_NOMEM;
    }
#define SLOT(role, layer) found[(size_t)((layer) + 1) * ELLM_ROLE_COUNT + (role)]
    ellm_status st = ELLM_OK;
    for (size_t i = 0; i < n_tensors; i++) {
        const char *name = tensors[i].name ? tensors[i].name : "";
        ellm_role role;
        int layer;
        if (ellm_role_parse(name, &role, &layer, NULL) != 0) {
            /* Buffers some exporters leave behind carry nothing we need. */
            if (strstr(name, "rotary_emb.inv_freq")) continue;
            st = ellm_fail(err, ELLM_E_UNSUPPORTED, "tensor %s: not a tensor of a %s model (unknown name)", name, c->arch);
            goto done;
        }
        if (ellm_role_is_layer(role) != (layer >= 0) || layer >= L) {
            st = ellm_fail(err, ELLM_E_FORMAT, "tensor %s: layer %d is outside the config's %d layers", name, layer, L);
            goto done;
        }
        if (SLOT(role, layer)) {
            st = ellm_fail(err, ELLM_E_FORMAT, "tensor %s: the model has two %s tensors for layer %d", name,
                           role_label(role), layer);
            goto done;
        }
        SLOT(role, layer) = &tensors[i];
    }

    /* Global tensors. */
    m->tok_embd = SLOT(ELLM_ROLE_TOK_EMBD, -1);
    m->output = SLOT(ELLM_ROLE_OUTPUT, -1);
    const ellm_qtensor *onorm = SLOT(ELLM_ROLE_OUTPUT_NORM, -1);
    if (!m->tok_embd || !onorm) {
        st = ellm_fail(err, ELLM_E_FORMAT, "model has no %s tensor", m->tok_embd ? "final norm" : "token embedding");
        goto done;
    }
    if ((st = check_shape(m->tok_embd, c->vocab_size, dim, err)) || (st = check_shape(onorm, dim, -1, err)) ||
        (st = to_vec(m, onorm, &m->output_norm, err)))
        goto done;
    if (!m->output) {
        if (c->tie_embeddings == 0) {
            st = ellm_fail(err, ELLM_E_FORMAT, "model has no output head tensor and its config does not tie embeddings");
            goto done;
        }
        m->output = m->tok_embd;
    } else if ((st = check_shape(m->output, c->vocab_size, dim, err))) {
        goto done;
    }

    for (int l = 0; l < L; l++) {
        ellm_layer *ly = &m->layers[l];
        const ellm_qtensor *t;
#define NEED(role)                                                                                   \
    if (!(t = SLOT(role, l))) {                                                                      \
        st = ellm_fail(err, ELLM_E_FORMAT, "model has no %s tensor for layer %d", role_label(role), l); \
        goto done;                                                                                   \
    }
        NEED(ELLM_ROLE_ATTN_NORM);
        if ((st = check_shape(t, dim, -1, err)) || (st = to_vec(m, t, &ly->attn_norm, err))) goto done;
        NEED(ELLM_ROLE_FFN_NORM);
        if ((st = check_shape(t, dim, -1, err)) || (st = to_vec(m, t, &ly->ffn_norm, err))) goto done;
        if ((t = SLOT(ELLM_ROLE_WQKV, l))) {
            ly->wqkv = t;
            if ((st = check_shape(t, qd + 2 * kvd, dim, err))) goto done;
        } else {
            NEED(ELLM_ROLE_WQ);
            ly->wq = t;
            NEED(ELLM_ROLE_WK);
            ly->wk = t;
            NEED(ELLM_ROLE_WV);
            ly->wv = t;
            if ((st = check_shape(ly->wq, qd, dim, err)) || (st = check_shape(ly->wk, kvd, dim, err)) ||
                (st = check_shape(ly->wv, kvd, dim, err)))
                goto done;
        }
        NEED(ELLM_ROLE_WO);
        ly->wo = t;
        if ((st = check_shape(t, dim, qd, err))) goto done;
        if ((t = SLOT(ELLM_ROLE_BQ, l)) && ((st = check_shape(t, qd, -1, err)) || (st = to_vec(m, t, &ly->bq, err))))
            goto done;
        if ((t = SLOT(ELLM_ROLE_BK, l)) && ((st = check_shape(t, kvd, -1, err)) || (st = to_vec(m, t, &ly->bk, err))))
            goto done;
        if ((t = SLOT(ELLM_ROLE_BV, l)) && ((st = check_shape(t, kvd, -1, err)) || (st = to_vec(m, t, &ly->bv, err))))
            goto done;
        const ellm_qtensor *up = SLOT(ELLM_ROLE_W_UP, l);
        if ((t = SLOT(ELLM_ROLE_W_GATE_UP, l)) ||
            (!SLOT(ELLM_ROLE_W_GATE, l) && up && up->n_dims == 2 && up->shape[0] == 2 * hid && (t = up))) {
            ly->w_gate_up = t; /* GGUF names Phi-3's fused gate+up "ffn_up" */
            if ((st = check_shape(t, 2 * hid, dim, err))) goto done;
        } else {
            NEED(ELLM_ROLE_W_GATE);
            ly->w_gate = t;
            NEED(ELLM_ROLE_W_UP);
            ly->w_up = t;
            if ((st = check_shape(ly->w_gate, hid, dim, err)) || (st = check_shape(ly->w_up, hid, dim, err))) goto done;
        }
        NEED(ELLM_ROLE_W_DOWN);
        ly->w_down = t;
        if ((st = check_shape(t, dim, hid, err))) goto done;
#undef NEED
    }

    int64_t max_in = ELLM_MAX(ELLM_MAX(dim, qd), hid);
    if ((st = ellm_kernels_init(&m->kern, pool, max_in, force_scalar, err))) goto done;
    m->inv_freq = ellm_malloc((size_t)c->head_dim * sizeof(float), err);
    if (!m->inv_freq) {
        st = ELLM_E_NOMEM;
        goto done;
    }
    m->inv_freq_long = m->inv_freq + c->head_dim / 2;
    compute_inv_freq(c, c->rope_short_factor, m->inv_freq);
    compute_inv_freq(c, c->rope_long_factor, m->inv_freq_long);
done:
#undef SLOT
    free(found);
    return st;
}

void ellm_llm_free(ellm_llm *m) {
    if (!m) return;
    if (m->layers)
        for (int l = 0; l < m->cfg.n_layers; l++) {
            free(m->layers[l].k_cache);
            free(m->layers[l].v_cache);
        }
    free(m->layers);
    for (size_t i = 0; i < m->n_vecs; i++) free(m->vecs[i]);
    free(m->vecs);
    free(m->x);
    free(m->scores);
    free(m->inv_freq);
    ellm_kernels_free(&m->kern);
    ellm_llm_config_free(&m->cfg);
    memset(m, 0, sizeof *m);
}

void ellm_llm_reset(ellm_llm *m) { m->n_cached = 0; }

/* ---- buffers -------------------------------------------------------------- */

static ellm_status ensure_cache(ellm_llm *m, int need, ellm_error *err) {
    if (need <= m->cache_cap) return ELLM_OK;
    int cap = ELLM_MAX(need, ELLM_MIN(m->cfg.max_ctx, ELLM_MAX(64, 2 * m->cache_cap)));
    const size_t kvd = (size_t)m->cfg.n_kv_heads * (size_t)m->cfg.head_dim;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        ellm_layer *ly = &m->layers[l];
        float *k = realloc(ly->k_cache, (size_t)cap * kvd * sizeof(float));
        if (k) ly->k_cache = k;
        float *v = k ? realloc(ly->v_cache, (size_t)cap * kvd * sizeof(float)) : NULL;
        if (v) ly->v_cache = v;
        if (!k || !v)
            return ellm_fail(err, ELLM_E_NOMEM, "out of memory growing the KV cache to %d positions", cap);
    }
    float *s = realloc(m->scores, (size_t)m->kern.n_threads * (size_t)cap * sizeof(float));
    if (!s) return ellm_fail(err, ELLM_E_NOMEM, "out of memory growing the KV cache to %d positions", cap);
    m->scores = s;
    m->cache_cap = cap;
    return ELLM_OK;
}

static ellm_status ensure_acts(ellm_llm *m, int n, ellm_error *err) {
    if (n <= m->act_tokens) return ELLM_OK;
    const ellm_llm_config *c = &m->cfg;
    const size_t dim = (size_t)c->dim, qd = (size_t)c->n_heads * (size_t)c->head_dim;
    const size_t kvd = (size_t)c->n_kv_heads * (size_t)c->head_dim, hid = (size_t)c->hidden_dim;
    const size_t per = 3 * dim + 2 * qd + 2 * kvd + 2 * hid;
    float *buf = realloc(m->x, (size_t)n * per * sizeof(float));
    if (!buf) return ellm_fail(err, ELLM_E_NOMEM, "out of memory for activations of %d tokens", n);
    size_t N = (size_t)n;
    m->x = buf;
    m->xb = m->x + N * dim;
    m->xb2 = m->xb + N * dim;
    m->q = m->xb2 + N * dim;
    m->att = m->q + N * qd;
    m->k = m->att + N * qd;
    m->v = m->k + N * kvd;
    m->hb = m->v + N * kvd;
    m->hb2 = m->hb + N * hid;
    m->act_tokens = n;
    return ELLM_OK;
}

/* ---- the layers ----------------------------------------------------------- */

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int i = 0; i < n; i++) o[i] = w[i] * (ss * x[i]);
}

/* Rotates n_heads heads of vec (head_dim each) to position p. */
static void rope(float *vec, int n_heads, int head_dim, ellm_rope_layout layout, const float *cosv,
                 const float *sinv) {
    const int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * (size_t)head_dim;
        for (int i = 0; i < half; i++) {
            int a = layout == ELLM_ROPE_INTERLEAVED ? 2 * i : i;
            int b = layout == ELLM_ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
            float v0 = v[a], v1 = v[b];
            v[a] = v0 * cosv[i] - v1 * sinv[i];
            v[b] = v0 * sinv[i] + v1 * cosv[i];
        }
    }
}

typedef struct attn_job {
    ellm_llm *m;
    int layer, pos, n_tok;
} attn_job;

/* One (token, head): softmax(q k^T / sqrt(d)) v over the visible positions. */
static void attn_task(void *ctx, int64_t task, int thread) {
    const attn_job *j = ctx;
    ellm_llm *m = j->m;
    const ellm_llm_config *c = &m->cfg;
    const int hd = c->head_dim, t = (int)(task / c->n_heads), h = (int)(task % c->n_heads);
    const int kvh = h / (c->n_heads / c->n_kv_heads);
    const size_t kvd = (size_t)c->n_kv_heads * (size_t)hd;
    const int p = j->pos + t;
    const int lo = c->sliding_window > 0 ? ELLM_MAX(0, p - c->sliding_window + 1) : 0;
    const float *q = m->q + (size_t)t * (size_t)c->n_heads * hd + (size_t)h * hd;
    const ellm_layer *ly = &m->layers[j->layer];
    float *sc = m->scores + (size_t)thread * (size_t)m->cache_cap;
    const float sq = sqrtf((float)hd);
    float mx = -INFINITY;
    for (int s = lo; s <= p; s++) {
        const float *k = ly->k_cache + (size_t)s * kvd + (size_t)kvh * hd;
        float d = 0.0f;
        for (int i = 0; i < hd; i++) d += q[i] * k[i];
        d /= sq;
        sc[s - lo] = d;
        if (d > mx) mx = d;
    }
    float sum = 0.0f;
    for (int s = 0; s <= p - lo; s++) {
        sc[s] = expf(sc[s] - mx);
        sum += sc[s];
    }
    float *out = m->att + (size_t)t * (size_t)c->n_heads * hd + (size_t)h * hd;
    memset(out, 0, (size_t)hd * sizeof(float));
    for (int s = lo; s <= p; s++) {
        const float a = sc[s - lo] / sum;
        const float *v = ly->v_cache + (size_t)s * kvd + (size_t)kvh * hd;
        for (int i = 0; i < hd; i++) out[i] += a * v[i];
    }
}

static void add_bias(float *y, const float *b, int n_tok, size_t n) {
    if (!b) return;
    for (int t = 0; t < n_tok; t++)
        for (size_t i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

/* n_tokens (at most FORWARD_CHUNK) through the layers; checks done by the caller. */
static ellm_status forward_chunk(ellm_llm *m, const int32_t *tokens, int n_tokens, int pos, float *logits,
                                 int all_logits, int long_rope, ellm_error *err) {
    const ellm_llm_config *c = &m->cfg;
    ellm_status st;
    if ((st = ensure_acts(m, n_tokens, err))) return st;

    const int T = n_tokens, dim = c->dim, hd = c->head_dim, hid = c->hidden_dim;
    const size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    ellm_kernels *K = &m->kern;

    for (int t = 0; t < T; t++) ellm_row_dequant(m->tok_embd, tokens[t], m->x + (size_t)t * dim, K->force_scalar);

    /* Rotary table for these positions. LongRoPE takes the long factors once
     * the sequence outgrows the original context, as HF's Phi-3 does. */
    const float *inv = long_rope ? m->inv_freq_long : m->inv_freq;
    const int half = hd / 2;
    float *cs = ellm_malloc((size_t)T * (size_t)hd * sizeof(float), err);
    if (!cs) return ELLM_E_NOMEM;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float val = (float)(pos + t) * inv[i];
            cs[(size_t)t * hd + i] = cosf(val) * c->rope_attn_factor;
            cs[(size_t)t * hd + half + i] = sinf(val) * c->rope_attn_factor;
        }

#define MM(...)                                        \
    do {                                               \
        if ((st = ellm_matmul(__VA_ARGS__, err))) goto fail; \
    } while (0)
    for (int l = 0; l < c->n_layers; l++) {
        ellm_layer *ly = &m->layers[l];
        for (int t = 0; t < T; t++)
            rmsnorm(m->xb + (size_t)t * dim, m->x + (size_t)t * dim, ly->attn_norm, dim, c->norm_eps);
        {
            const int fused = ly->wqkv != NULL;
            const ellm_mm_out qkv[3] = {
                {fused ? ly->wqkv : ly->wq, 0, (int64_t)qd, m->q, (int64_t)qd},
                {fused ? ly->wqkv : ly->wk, fused ? (int64_t)qd : 0, (int64_t)kvd, m->k, (int64_t)kvd},
                {fused ? ly->wqkv : ly->wv, fused ? (int64_t)(qd + kvd) : 0, (int64_t)kvd, m->v, (int64_t)kvd}};
            if ((st = ellm_matmul_multi(K, qkv, 3, m->xb, T, err))) goto fail;
        }
        add_bias(m->q, ly->bq, T, qd);
        add_bias(m->k, ly->bk, T, kvd);
        add_bias(m->v, ly->bv, T, kvd);
        for (int t = 0; t < T; t++) {
            const float *cosv = cs + (size_t)t * hd, *sinv = cosv + half;
            rope(m->q + (size_t)t * qd, c->n_heads, hd, c->rope_layout, cosv, sinv);
            rope(m->k + (size_t)t * kvd, c->n_kv_heads, hd, c->rope_layout, cosv, sinv);
            memcpy(ly->k_cache + (size_t)(pos + t) * kvd, m->k + (size_t)t * kvd, kvd * sizeof(float));
            memcpy(ly->v_cache + (size_t)(pos + t) * kvd, m->v + (size_t)t * kvd, kvd * sizeof(float));
        }
        attn_job aj = {m, l, pos, T};
        ellm_kernels_run(K, (int64_t)T * c->n_heads, (uint64_t)T * (uint64_t)(pos + T) * qd, attn_task, &aj);
        MM(K, ly->wo, 0, dim, m->att, T, m->xb2, dim);
        for (size_t i = 0; i < (size_t)T * dim; i++) m->x[i] += m->xb2[i];

        for (int t = 0; t < T; t++)
            rmsnorm(m->xb + (size_t)t * dim, m->x + (size_t)t * dim, ly->ffn_norm, dim, c->norm_eps);
        {
            const int fused = ly->w_gate_up != NULL;
            const ellm_mm_out gu[2] = {{fused ? ly->w_gate_up : ly->w_gate, 0, hid, m->hb, hid},
                                       {fused ? ly->w_gate_up : ly->w_up, fused ? hid : 0, hid, m->hb2, hid}};
            if ((st = ellm_matmul_multi(K, gu, 2, m->xb, T, err))) goto fail;
        }
        for (size_t i = 0; i < (size_t)T * hid; i++) {
            float g = m->hb[i];
            g *= 1.0f / (1.0f + expf(-g));
            m->hb[i] = g * m->hb2[i];
        }
        MM(K, ly->w_down, 0, dim, m->hb, T, m->xb2, dim);
        for (size_t i = 0; i < (size_t)T * dim; i++) m->x[i] += m->xb2[i];
    }
    m->n_cached = pos + T;

    if (logits) {
        int first = all_logits ? 0 : T - 1;
        int n = T - first;
        for (int t = first; t < T; t++)
            rmsnorm(m->xb + (size_t)(t - first) * dim, m->x + (size_t)t * dim, m->output_norm, dim, c->norm_eps);
        MM(K, m->output, 0, c->vocab_size, m->xb, n, logits, c->vocab_size);
    }
#undef MM
fail:
    free(cs);
    if (st) m->n_cached = ELLM_MIN(m->n_cached, pos); /* the cache past pos is not valid */
    return st;
}

/* Long prompts go through in chunks, so activation memory stays bounded
 * (the KV cache carries the context from one chunk to the next). Results do
 * not depend on the chunking. */
#define FORWARD_CHUNK 256

ellm_status ellm_llm_forward(ellm_llm *m, const int32_t *tokens, int n_tokens, int pos, float *logits,
                             int all_logits, ellm_error *err) {
    const ellm_llm_config *c = &m->cfg;
    if (n_tokens < 1 || !tokens) return ellm_fail(err, ELLM_E_ARG, "forward: no tokens given");
    if (pos < 0 || pos > m->n_cached)
        return ellm_fail(err, ELLM_E_ARG, "forward: position %d is past the %d positions in the KV cache", pos,
                         m->n_cached);
    if ((int64_t)pos + n_tokens > c->max_ctx)
        return ellm_fail(err, ELLM_E_ARG, "forward: positions %d..%d exceed the context of %d", pos,
                         pos + n_tokens - 1, c->max_ctx);
    for (int t = 0; t < n_tokens; t++)
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
            return ellm_fail(err, ELLM_E_ARG, "forward: token id %d (at %d) is outside the vocabulary of %d", tokens[t],
                             t, c->vocab_size);
    ellm_status st = ensure_cache(m, pos + n_tokens, err);
    if (st) return st;
    /* LongRoPE takes the long factors once the sequence outgrows the
     * original context, for every position of the call, as HF's Phi-3 does. */
    const int long_rope = c->rope_scaling == ELLM_ROPE_SCALING_LONGROPE && pos + n_tokens > c->original_max_ctx;
    for (int done = 0; done < n_tokens && !st;) {
        int n = ELLM_MIN(FORWARD_CHUNK, n_tokens - done);
        int last = done + n == n_tokens;
        float *out = NULL;
        if (logits && all_logits) out = logits + (size_t)done * (size_t)c->vocab_size;
        else if (logits && last) out = logits;
        st = forward_chunk(m, tokens + done, n, pos + done, out, all_logits, long_rope, err);
        done += n;
    }
    return st;
}
