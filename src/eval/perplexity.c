/* perplexity.c - perplexity in llama.cpp's convention, and per-document NLL. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "eval/eval.h"

/* Running sums of the negative log-likelihood and its square. */
typedef struct nll_acc {
    double sum, sum2;
    uint64_t count;
} nll_acc;

static void acc_add(nll_acc *a, const double *lp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        a->sum -= lp[i];
        a->sum2 += lp[i] * lp[i];
    }
    a->count += n;
}

/* mean NLL, its standard error (sample variance / (count-1), as llama.cpp),
 * perplexity and perplexity's standard error (first-order: ppl * se). */
static void acc_result(const nll_acc *a, ellm_ppl_result *r) {
    r->tokens_scored = a->count;
    if (a->count == 0) {
        r->mean_nll = r->nll_stderr = r->ppl_stderr = 0;
        r->ppl = 1;
        return;
    }
    double mean = a->sum / (double)a->count;
    double var = a->sum2 / (double)a->count - mean * mean;
    r->mean_nll = mean;
    r->nll_stderr = (var > 0 && a->count > 1) ? sqrt(var / (double)(a->count - 1)) : 0;
    r->ppl = exp(mean);
    r->ppl_stderr = r->ppl * r->nll_stderr;
}

static void report_progress(const ellm_eval_progress *p, const char *what, uint64_t done,
                            uint64_t total) {
    if (p && p->fn) p->fn(p->user, what, done, total);
}

ellm_status ellm_eval_perplexity(const ellm_lm *lm, const char *text, size_t len,
                                 const ellm_ppl_options *opts, ellm_ppl_result *res,
                                 ellm_error *err) {
    memset(res, 0, sizeof *res);
    int n_ctx = opts->n_ctx ? opts->n_ctx : ELLM_MIN(512, lm->n_ctx);
    if (n_ctx < 4 || n_ctx > lm->n_ctx)
        return ellm_fail(err, ELLM_E_ARG, "perplexity: context %d outside [4, %d] (the model's context)",
                         n_ctx, lm->n_ctx);
    int32_t *tokens = NULL;
    size_t n_tokens = 0;
    ellm_status st = lm->tokenize(lm->ctx, text, len, 1, &tokens, &n_tokens, err);
    if (st != ELLM_OK) return ellm_fail_prefix(err, "perplexity: tokenizing the text");
    res->tokens_total = n_tokens;
    res->n_ctx = n_ctx;
    if (n_tokens < 2 * (size_t)n_ctx) {
        free(tokens);
        return ellm_fail(err, ELLM_E_ARG,
                         "perplexity: the text has %zu tokens; a context of %d needs at least %d",
                         n_tokens, n_ctx, 2 * n_ctx);
    }
    int n_windows = (int)(n_tokens / (size_t)n_ctx);
    if (opts->limit > 0 && opts->limit < n_windows) n_windows = opts->limit;
    const size_t first = (size_t)n_ctx / 2 + 1; /* first scored position in a window */
    double *lp = ellm_malloc((size_t)n_ctx * sizeof *lp, err);
    int32_t *window = ellm_malloc((size_t)n_ctx * sizeof *window, err);
    if (!lp || !window) {
        free(lp), free(window), free(tokens);
        return ELLM_E_NOMEM;
    }
    nll_acc acc = {0};
    for (int w = 0; w < n_windows && st == ELLM_OK; w++) {
        memcpy(window, tokens + (size_t)w * n_ctx, (size_t)n_ctx * sizeof *window);
        if (lm->bos >= 0) window[0] = lm->bos;
        st = lm->logprobs(lm->ctx, window, (size_t)n_ctx, first, lp, err);
        if (st != ELLM_OK) {
            ellm_fail_prefix(err, "perplexity: window %d", w + 1);
            break;
        }
        acc_add(&acc, lp, (size_t)n_ctx - first);
        acc_result(&acc, res);
        if (opts->on_window) opts->on_window(opts->window_user, w + 1, n_windows, res->ppl, res->ppl_stderr);
        report_progress(&opts->progress, "perplexity", (uint64_t)w + 1, (uint64_t)n_windows);
    }
    res->windows = n_windows;
    res->n_ctx = n_ctx;
    acc_result(&acc, res);
    free(lp), free(window), free(tokens);
    return st;
}

/* Next document in text[*pos..len) up to `sep` (trimmed); false at the end. */
static bool next_doc(const char *text, size_t len, const char *sep, size_t *pos, const char **doc,
                     size_t *doc_len) {
    size_t sep_len = strlen(sep);
    while (*pos < len) {
        const char *start = text + *pos;
        size_t rest = len - *pos;
        const char *hit = NULL;
        for (size_t i = 0; sep_len && i + sep_len <= rest; i++)
            if (memcmp(start + i, sep, sep_len) == 0) {
                hit = start + i;
                break;
            }
        size_t n = hit ? (size_t)(hit - start) : rest;
        *pos += n + (hit ? sep_len : 0);
        while (n && (unsigned char)start[0] <= ' ') start++, n--;
        while (n && (unsigned char)start[n - 1] <= ' ') n--;
        if (n) {
            *doc = start;
            *doc_len = n;
            return true;
        }
    }
    return false;
}

ellm_status ellm_eval_doc_nll(const ellm_lm *lm, const char *text, size_t len, const char *separator,
                              int limit_docs, const ellm_eval_progress *progress,
                              ellm_ppl_result *res, ellm_error *err) {
    memset(res, 0, sizeof *res);
    if (!separator || !*separator)
        return ellm_fail(err, ELLM_E_ARG, "perplexity: empty document separator");
    size_t n_docs = 0, pos = 0;
    const char *doc;
    size_t doc_len;
    while (next_doc(text, len, separator, &pos, &doc, &doc_len)) n_docs++;
    if (limit_docs > 0 && (size_t)limit_docs < n_docs) n_docs = (size_t)limit_docs;
    if (n_docs == 0) return ellm_fail(err, ELLM_E_ARG, "perplexity: the text holds no document");

    double *lp = ellm_malloc((size_t)lm->n_ctx * sizeof *lp, err);
    if (!lp) return ELLM_E_NOMEM;
    nll_acc acc = {0};
    ellm_status st = ELLM_OK;
    pos = 0;
    for (size_t d = 0; d < n_docs && st == ELLM_OK; d++) {
        next_doc(text, len, separator, &pos, &doc, &doc_len);
        int32_t *tokens = NULL;
        size_t n = 0;
        st = lm->tokenize(lm->ctx, doc, doc_len, 1, &tokens, &n, err);
        if (st != ELLM_OK) {
            ellm_fail_prefix(err, "perplexity: document %zu", d + 1);
            break;
        }
        res->tokens_total += n;
        /* tokens[0] is BOS (when the tokenizer has one); a document longer
         * than the context is cut to its first n_ctx tokens, and every token
         * after the first is scored given all before it. */
        size_t wn = ELLM_MIN(n, (size_t)lm->n_ctx);
        if (wn >= 2) {
            st = lm->logprobs(lm->ctx, tokens, wn, 1, lp, err);
            if (st != ELLM_OK) {
                free(tokens);
                ellm_fail_prefix(err, "perplexity: document %zu", d + 1);
                break;
            }
            acc_add(&acc, lp, wn - 1);
        }
        free(tokens);
        report_progress(progress, "documents", d + 1, n_docs);
    }
    res->windows = (int)n_docs;
    res->n_ctx = lm->n_ctx;
    acc_result(&acc, res);
    free(lp);
    return st;
}
