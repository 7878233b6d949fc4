/*
 * fake_lm.h - a deterministic stand-in model for the evaluation tests.
 *
 * Byte-level: token = byte + 3, BOS = 1, EOS = 2, vocab 259. The
 * log-probability of a token depends only on the token (a fixed table the
 * test sets), so expected scores can be computed by hand. Every call is
 * checked against the ellm_lm contract and recorded. Generation follows a
 * script: after the prompt, the i-th generated token is script[i].
 */
#ifndef ELLM_FAKE_LM_H
#define ELLM_FAKE_LM_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "eval/eval.h"

#define FAKE_VOCAB 259

typedef struct fake_lm {
    int n_ctx;
    double lp[FAKE_VOCAB];   /* log-probability of each token (as the next one) */
    /* contract violations seen (must stay 0) */
    int bad_calls;
    int calls_without_bos;
    /* last calls */
    size_t last_n, last_first;
    char *last_text;         /* last text tokenized */
    size_t logprob_calls;
    /* generation script */
    const char *script;
    size_t prompt_len;       /* length of the sequence at the first next_logits call */
} fake_lm;

static ellm_status fake_tokenize(void *ctx, const char *text, size_t len, int add_bos, int32_t **ids,
                                 size_t *n_ids, ellm_error *err) {
    fake_lm *f = ctx;
    free(f->last_text);
    f->last_text = malloc(len + 1);
    memcpy(f->last_text, text, len);
    f->last_text[len] = 0;
    int32_t *out = malloc((len + 1) * sizeof *out);
    if (!out) return ellm_fail(err, ELLM_E_NOMEM, "fake: oom");
    size_t n = 0;
    if (add_bos) out[n++] = 1;
    for (size_t i = 0; i < len; i++) out[n++] = (int32_t)(unsigned char)text[i] + 3;
    *ids = out;
    *n_ids = n;
    return ELLM_OK;
}

static size_t fake_piece(void *ctx, int32_t id, const char **piece) {
    static const char bytes[256] = {
#define B(i) (char)(i)
        B(0), B(1), B(2), B(3), B(4), B(5), B(6), B(7), B(8), B(9), B(10), B(11), B(12), B(13), B(14), B(15),
        B(16), B(17), B(18), B(19), B(20), B(21), B(22), B(23), B(24), B(25), B(26), B(27), B(28), B(29), B(30), B(31),
        ' ', '!', '"', '#', '$', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
        '@', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
        'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', '[', '\\', ']', '^', '_',
        '`', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
        'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '{', '|', '}', '~', B(127),
#undef B
    };
    (void)ctx;
    if (id < 3 || id >= 3 + 128) {
        *piece = "";
        return 0;
    }
    *piece = &bytes[id - 3];
    return 1;
}

static ellm_status fake_logprobs(void *ctx, const int32_t *tokens, size_t n, size_t first, double *out,
                                 ellm_error *err) {
    fake_lm *f = ctx;
    if (first < 1 || first > n || n > (size_t)f->n_ctx) {
        f->bad_calls++;
        return ellm_fail(err, ELLM_E_ARG, "fake: bad call n=%zu first=%zu", n, first);
    }
    if (tokens[0] != 1) f->calls_without_bos++;
    f->last_n = n;
    f->last_first = first;
    f->logprob_calls++;
    for (size_t i = first; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= FAKE_VOCAB) {
            f->bad_calls++;
            return ellm_fail(err, ELLM_E_ARG, "fake: token out of range");
        }
        out[i - first] = f->lp[tokens[i]];
    }
    return ELLM_OK;
}

static ellm_status fake_next_logits(void *ctx, const int32_t *tokens, size_t n, float *logits,
                                    ellm_error *err) {
    fake_lm *f = ctx;
    if (n < 1 || n > (size_t)f->n_ctx) {
        f->bad_calls++;
        return ellm_fail(err, ELLM_E_ARG, "fake: bad next_logits n=%zu", n);
    }
    (void)tokens;
    if (f->prompt_len == 0) f->prompt_len = n;
    size_t i = n - f->prompt_len;
    int32_t next = 2; /* EOS when the script runs out */
    if (f->script && i < strlen(f->script)) next = (int32_t)(unsigned char)f->script[i] + 3;
    for (int v = 0; v < FAKE_VOCAB; v++) logits[v] = 0;
    logits[next] = 5;
    return ELLM_OK;
}

static void fake_init(fake_lm *f, ellm_lm *lm, int n_ctx) {
    memset(f, 0, sizeof *f);
    f->n_ctx = n_ctx;
    for (int v = 0; v < FAKE_VOCAB; v++) f->lp[v] = -log((double)FAKE_VOCAB);
    memset(lm, 0, sizeof *lm);
    lm->ctx = f;
    lm->n_ctx = n_ctx;
    lm->vocab_size = FAKE_VOCAB;
    lm->bos = 1;
    lm->eos = 2;
    lm->tokenize = fake_tokenize;
    lm->piece = fake_piece;
    lm->logprobs = fake_logprobs;
    lm->next_logits = fake_next_logits;
}

static void fake_free(fake_lm *f) { free(f->last_text); }

#endif /* ELLM_FAKE_LM_H */
