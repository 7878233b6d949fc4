/* lm.c - an ellm_model behind the ellm_lm interface, and small statistics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "eval/eval.h"

/* The model keeps the keys/values of the tokens it has run; `cached` records
 * which tokens those were, so a call that shares a prefix with the previous
 * one (the context of four HellaSwag endings, the prompt of a generation
 * step) only runs the tokens after it. */
typedef struct model_lm {
    ellm_model *model;
    const ellm_tokenizer *tok;
    int vocab;
    int n_ctx;
    int chunk;        /* tokens per forward call */
    int32_t *cached;  /* n_ctx tokens whose KV entries are valid at [0, n_cached) */
    size_t n_cached;
    float *logits;    /* chunk * vocab */
} model_lm;

double ellm_log_softmax_at(const float *logits, int n, int32_t target) {
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[target] - mx - log(sum);
}

static ellm_status mlm_tokenize(void *ctx, const char *text, size_t len, int add_bos, int32_t **ids,
                                size_t *n_ids, ellm_error *err) {
    model_lm *m = ctx;
    return ellm_tokenize(m->tok, text, len, add_bos, 0, ids, n_ids, err);
}

static size_t mlm_piece(void *ctx, int32_t id, const char **piece) {
    model_lm *m = ctx;
    return ellm_token_piece(m->tok, id, piece);
}

/* Runs tokens[start..end) (start <= n_cached) and calls back with the logits
 * of every position p >= need_from; positions before need_from only fill the
 * cache. */
typedef void (*logits_fn)(void *user, size_t pos, const float *logits);

static ellm_status mlm_run(model_lm *m, const int32_t *tokens, size_t end, size_t need_from,
                           logits_fn fn, void *user, ellm_error *err) {
    if (end == 0 || end > (size_t)m->n_ctx)
        return ellm_fail(err, ELLM_E_ARG, "evaluation: %zu tokens do not fit the context of %d",
                         end, m->n_ctx);
    size_t lcp = 0;
    while (lcp < m->n_cached && lcp < end && m->cached[lcp] == tokens[lcp]) lcp++;
    /* Start no later than the first position whose logits are needed: its
     * logits come only from running it (re-running a cached token rewrites
     * the same keys/values). */
    size_t start = ELLM_MIN(lcp, need_from);
    if (start == 0) ellm_model_reset(m->model);
    m->n_cached = start;
    for (size_t p = start; p < end;) {
        size_t n = ELLM_MIN((size_t)m->chunk, end - p);
        /* Positions before need_from need no logits: run them without. */
        int want = p + n > need_from;
        ellm_status st = ellm_model_forward(m->model, tokens + p, (int)n, (int)p,
                                            want ? m->logits : NULL, want, err);
        if (st != ELLM_OK) {
            m->n_cached = 0;
            return st;
        }
        memcpy(m->cached + p, tokens + p, n * sizeof *tokens);
        m->n_cached = p + n;
        if (want)
            for (size_t i = 0; i < n; i++)
                if (p + i >= need_from) fn(user, p + i, m->logits + i * (size_t)m->vocab);
        p += n;
    }
    return ELLM_OK;
}

typedef struct lp_user {
    const model_lm *m;
    const int32_t *tokens;
    size_t first;
    double *out;
} lp_user;

static void lp_collect(void *user, size_t pos, const float *logits) {
    lp_user *u = user;
    /* logits at pos predict tokens[pos + 1] */
    u->out[pos + 1 - u->first] = ellm_log_softmax_at(logits, u->m->vocab, u->tokens[pos + 1]);
}

static ellm_status mlm_logprobs(void *ctx, const int32_t *tokens, size_t n, size_t first, double *out,
                                ellm_error *err) {
    model_lm *m = ctx;
    if (first < 1 || first > n)
        return ellm_fail(err, ELLM_E_ARG, "evaluation: cannot score from token %zu of %zu", first, n);
    if (n > (size_t)m->n_ctx)
        return ellm_fail(err, ELLM_E_ARG, "evaluation: %zu tokens do not fit the context of %d", n, m->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->vocab)
            return ellm_fail(err, ELLM_E_ARG, "evaluation: token %d at %zu outside the vocabulary (%d)",
                             tokens[i], i, m->vocab);
    if (first == n) return ELLM_OK;
    lp_user u = {m, tokens, first, out};
    /* The last token's logits predict nothing we score: run up to n - 1. */
    return mlm_run(m, tokens, n - 1, first - 1, lp_collect, &u, err);
}

typedef struct last_user {
    float *dst;
    int vocab;
} last_user;

static void copy_last(void *user, size_t pos, const float *logits) {
    last_user *u = user;
    (void)pos;
    memcpy(u->dst, logits, (size_t)u->vocab * sizeof(float));
}

static ellm_status mlm_next_logits(void *ctx, const int32_t *tokens, size_t n, float *logits,
                                   ellm_error *err) {
    model_lm *m = ctx;
    if (n < 1) return ellm_fail(err, ELLM_E_ARG, "evaluation: empty token sequence");
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->vocab)
            return ellm_fail(err, ELLM_E_ARG, "evaluation: token %d at %zu outside the vocabulary (%d)",
                             tokens[i], i, m->vocab);
    last_user u = {logits, m->vocab};
    return mlm_run(m, tokens, n, n - 1, copy_last, &u, err);
}

ellm_status ellm_lm_from_model(ellm_model *model, ellm_lm *lm, ellm_error *err) {
    memset(lm, 0, sizeof *lm);
    ellm_model_info info;
    ellm_model_get_info(model, &info);
    const ellm_tokenizer *tok = ellm_model_tokenizer(model);
    if (!tok) return ellm_fail(err, ELLM_E_ARG, "evaluation: the model has no tokenizer");
    if (info.vocab_size <= 0 || info.max_ctx <= 0)
        return ellm_fail(err, ELLM_E_FORMAT, "evaluation: model reports vocab %d, context %d",
                         info.vocab_size, info.max_ctx);
    model_lm *m = ellm_calloc(1, sizeof *m, err);
    if (!m) return ELLM_E_NOMEM;
    m->model = model;
    m->tok = tok;
    m->vocab = info.vocab_size;
    m->n_ctx = info.max_ctx;
    /* Enough tokens per call for the matrix-matrix kernels, with the logits
     * buffer held to about 32 MiB whatever the vocabulary. */
    size_t chunk = ((size_t)32 << 20) / ((size_t)m->vocab * sizeof(float));
    m->chunk = (int)ELLM_MAX((size_t)1, ELLM_MIN(chunk, (size_t)128));
    m->cached = ellm_malloc((size_t)m->n_ctx * sizeof *m->cached, err);
    m->logits = ellm_malloc((size_t)m->chunk * m->vocab * sizeof *m->logits, err);
    if (!m->cached || !m->logits) {
        free(m->cached);
        free(m->logits);
        free(m);
        return ELLM_E_NOMEM;
    }
    lm->ctx = m;
    lm->n_ctx = m->n_ctx;
    lm->vocab_size = m->vocab;
    lm->bos = ellm_tokenizer_bos(tok);
    lm->eos = ellm_tokenizer_eos(tok);
    lm->tokenize = mlm_tokenize;
    lm->piece = mlm_piece;
    lm->logprobs = mlm_logprobs;
    lm->next_logits = mlm_next_logits;
    return ELLM_OK;
}

void ellm_lm_release(ellm_lm *lm) {
    if (!lm || !lm->ctx) return;
    model_lm *m = lm->ctx;
    free(m->cached);
    free(m->logits);
    free(m);
    memset(lm, 0, sizeof *lm);
}

ellm_status ellm_eval_open(const char *path, int n_threads, ellm_progress_fn progress, void *progress_user,
                           ellm_model **model, ellm_lm *lm, ellm_error *err) {
    *model = NULL;
    memset(lm, 0, sizeof *lm);
    ellm_load_options lo;
    ellm_load_options_default(&lo);
    lo.n_threads = n_threads;
    lo.progress = progress;
    lo.progress_user = progress_user;
    ellm_status st = ellm_model_load(path, &lo, model, err);
    if (st != ELLM_OK) return st;
    st = ellm_lm_from_model(*model, lm, err);
    if (st != ELLM_OK) {
        ellm_model_free(*model);
        *model = NULL;
    }
    return st;
}

void ellm_eval_close(ellm_model *model, ellm_lm *lm) {
    ellm_lm_release(lm);
    ellm_model_free(model);
}

/* ---- statistics ---------------------------------------------------------- */

double ellm_stderr_binary(size_t k, size_t n) {
    if (n < 2) return 0;
    double p = (double)k / (double)n;
    return sqrt(p * (1 - p) / (double)(n - 1));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double ellm_median(const double *v, size_t n) {
    if (n == 0) return 0;
    double *c = malloc(n * sizeof *c);
    if (!c) return v[n / 2];
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    double med = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return med;
}
