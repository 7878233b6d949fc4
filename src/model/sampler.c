/*
 * sampler.c - next-token choice: greedy (temperature 0), or a draw from
 * softmax(logits / T), optionally restricted to the smallest set of tokens
 * whose probability reaches top_p (nucleus sampling, as llama2.c does it).
 * The random stream is xoshiro256** seeded by the user: same seed, same text.
 */
#include <math.h>
#include <stdlib.h>

#include "common/common.h"
#include "model/model.h"

typedef struct prob_index {
    float p;
    int32_t i;
} prob_index;

struct ellm_sampler {
    ellm_sampler_options o;
    int vocab;
    ellm_rng rng;
    prob_index *cand;
};

ellm_sampler *ellm_sampler_new(const ellm_sampler_options *opts, int vocab_size) {
    if (!opts || vocab_size < 1 || !(opts->temperature >= 0) || !(opts->top_p > 0) || opts->top_p > 1) return NULL;
    ellm_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->o = *opts;
    s->vocab = vocab_size;
    ellm_rng_seed(&s->rng, opts->seed);
    s->cand = malloc((size_t)vocab_size * sizeof *s->cand);
    if (!s->cand) {
        free(s);
        return NULL;
    }
    return s;
}

void ellm_sampler_free(ellm_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s);
}

static int32_t argmax(const float *v, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int cmp_desc(const void *a, const void *b) {
    float pa = ((const prob_index *)a)->p, pb = ((const prob_index *)b)->p;
    if (pa != pb) return pa > pb ? -1 : 1;
    return ((const prob_index *)a)->i - ((const prob_index *)b)->i;
}

int32_t ellm_sample(ellm_sampler *s, float *logits) {
    const int n = s->vocab;
    if (s->o.temperature == 0.0f) return argmax(logits, n);
    /* softmax(logits / T) in place */
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        logits[i] /= s->o.temperature;
        if (logits[i] > mx) mx = logits[i];
    }
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        logits[i] = expf(logits[i] - mx);
        sum += logits[i];
    }
    for (int i = 0; i < n; i++) logits[i] /= sum;
    float coin = (float)ellm_rng_uniform(&s->rng);

    if (s->o.top_p >= 1.0f) {
        float cdf = 0.0f;
        for (int i = 0; i < n; i++) {
            cdf += logits[i];
            if (coin < cdf) return i;
        }
        return n - 1; /* rounding */
    }
    /* Tokens below (1 - p) / (n - 1) cannot be in the nucleus: drop them
     * before sorting (llama2.c's shortcut). */
    const float cutoff = n > 1 ? (1.0f - s->o.top_p) / (float)(n - 1) : 0.0f;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (logits[i] >= cutoff) s->cand[m++] = (prob_index){logits[i], i};
    if (m == 0) return argmax(logits, n);
    qsort(s->cand, (size_t)m, sizeof *s->cand, cmp_desc);
    float cum = 0.0f;
    int last = m - 1;
    for (int i = 0; i < m; i++) {
        cum += s->cand[i].p;
        if (cum > s->o.top_p) {
            last = i;
            break;
        }
    }
    float r = coin * cum, cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += s->cand[i].p;
        if (r < cdf) return s->cand[i].i;
    }
    return s->cand[last].i;
}
