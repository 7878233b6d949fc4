/*
 * test_sampler.c - greedy picks the first maximum; a draw at temperature T
 * follows softmax(logits / T) (checked by frequencies over many draws); top-p
 * keeps only the nucleus; the same seed gives the same draws; bad options are
 * refused.
 */
#include <math.h>

#include "model/model.h"
#include "model/test_util.h"

static ellm_sampler *make(float t, float p, uint64_t seed, int n) {
    ellm_sampler_options o = {t, p, seed};
    return ellm_sampler_new(&o, n);
}

int main(void) {
    /* greedy: the first of equal maxima */
    float l[6] = {0.1f, 2.0f, -1.0f, 2.0f, 0.5f, 1.9f};
    ellm_sampler *g = make(0, 1, 0, 6);
    CHECK(ellm_sample(g, l) == 1, "greedy");
    ellm_sampler_free(g);

    /* frequencies follow softmax(l / T) */
    const float base[4] = {1.0f, 0.5f, 0.0f, -1.0f};
    const float T = 0.7f;
    double p[4], s = 0;
    for (int i = 0; i < 4; i++) s += p[i] = exp(base[i] / T);
    for (int i = 0; i < 4; i++) p[i] /= s;
    ellm_sampler *a = make(T, 1, 123, 4);
    int count[4] = {0};
    const int N = 40000;
    for (int k = 0; k < N; k++) {
        float x[4];
        memcpy(x, base, sizeof x);
        int32_t id = ellm_sample(a, x);
        CHECK(id >= 0 && id < 4, "sample out of range: %d", id);
        if (id >= 0 && id < 4) count[id]++;
    }
    for (int i = 0; i < 4; i++) {
        double f = (double)count[i] / N, sd = sqrt(p[i] * (1 - p[i]) / N);
        CHECK(fabs(f - p[i]) < 5 * sd, "token %d: frequency %.4f, probability %.4f", i, f, p[i]);
    }
    ellm_sampler_free(a);

    /* top-p 0.7 over probabilities 0.5, 0.3, 0.15, 0.05: only tokens 0 and 1 */
    const float lp[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    ellm_sampler *tp = make(1, 0.7f, 9, 4);
    int seen[4] = {0};
    for (int k = 0; k < 5000; k++) {
        float x[4];
        memcpy(x, lp, sizeof x);
        seen[ellm_sample(tp, x)]++;
    }
    CHECK(seen[2] == 0 && seen[3] == 0 && seen[0] > seen[1] && seen[1] > 0, "top-p: %d %d %d %d", seen[0], seen[1],
          seen[2], seen[3]);
    ellm_sampler_free(tp);

    /* same seed, same draws; another seed, other draws */
    int32_t r1[64], r2[64], r3[64];
    for (int run = 0; run < 3; run++) {
        ellm_sampler *sm = make(1.0f, 0.95f, run == 2 ? 8 : 7, 4);
        for (int k = 0; k < 64; k++) {
            float x[4];
            memcpy(x, base, sizeof x);
            (run == 0 ? r1 : run == 1 ? r2 : r3)[k] = ellm_sample(sm, x);
        }
        ellm_sampler_free(sm);
    }
    CHECK(memcmp(r1, r2, sizeof r1) == 0, "same seed gave different draws");
    CHECK(memcmp(r1, r3, sizeof r1) != 0, "different seeds gave the same 64 draws");

    /* refused options */
    CHECK(make(-1, 1, 0, 4) == NULL, "negative temperature accepted");
    CHECK(make(1, 0, 0, 4) == NULL, "top_p 0 accepted");
    CHECK(make(1, 1.5f, 0, 4) == NULL, "top_p 1.5 accepted");
    CHECK(make(1, 1, 0, 0) == NULL, "empty vocabulary accepted");
    if (t_failures) {
        fprintf(stderr, "%d failures\n", t_failures);
        return 1;
    }
    printf("sampler: greedy, temperature frequencies, top-p nucleus, seeds, refusals\n");
    return 0;
}
