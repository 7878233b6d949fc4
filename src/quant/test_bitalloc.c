/* test_bitalloc.c - the greedy bit allocation (bitalloc.h): budgets hold,
 * a hand-made case picks what marginal analysis says, at the budgets of
 * Lagrangian solutions it finds the exact optimum (checked by brute force),
 * every result is locally optimal (no single move that fits lowers the
 * error), and bad inputs are refused. */
#include <math.h>
#include <string.h>

#include "common/testing.h"
#include "quant/bitalloc.h"

#define MAXT 6
#define MAXC 4

static double total_error(const double *e, size_t nt, size_t nc, const int *choice) {
    double s = 0;
    for (size_t t = 0; t < nt; t++) s += e[t * nc + (size_t)choice[t]];
    return s;
}

static uint64_t total_bytes(const uint64_t *b, size_t nt, size_t nc, const int *choice) {
    uint64_t s = 0;
    for (size_t t = 0; t < nt; t++) s += b[t * nc + (size_t)choice[t]];
    return s;
}

/* The least total error within the budget, trying every combination. */
static double brute_force(const uint64_t *b, const double *e, size_t nt, size_t nc, uint64_t budget) {
    int choice[MAXT] = {0};
    double best = INFINITY;
    for (;;) {
        bool ok = true;
        for (size_t t = 0; t < nt; t++) ok = ok && b[t * nc + (size_t)choice[t]] != ELLM_BITALLOC_NONE;
        if (ok && total_bytes(b, nt, nc, choice) <= budget) best = fmin(best, total_error(e, nt, nc, choice));
        size_t t = 0;
        while (t < nt && ++choice[t] == (int)nc) choice[t++] = 0;
        if (t == nt) return best;
    }
}

static void test_hand_made(void) {
    /* tensor 0 gains 9 per byte by going to 20 bytes, tensor 1 only 0.5 */
    const uint64_t b[] = {10, 20, 10, 20};
    const double e[] = {100, 10, 50, 45};
    int choice[2];
    uint64_t used;
    ellm_error err = {0};
    CHECK(ellm_bitalloc(b, e, 2, 2, 29, choice, &used, &err) == ELLM_OK && choice[0] == 0 && choice[1] == 0 &&
              used == 20, "budget 29: nothing fits beyond the smallest");
    CHECK(ellm_bitalloc(b, e, 2, 2, 30, choice, &used, &err) == ELLM_OK && choice[0] == 1 && choice[1] == 0 &&
              used == 30, "budget 30: the steep tensor first");
    CHECK(ellm_bitalloc(b, e, 2, 2, 1000, choice, &used, &err) == ELLM_OK && choice[0] == 1 && choice[1] == 1 &&
              used == 40, "a large budget takes every upgrade");
    CHECK(ellm_bitalloc(b, e, 2, 2, 19, choice, &used, &err) == ELLM_E_ARG && strstr(err.message, "20 bytes"),
          "a budget below the smallest total fails naming it: %s", err.message);
    /* a missing candidate is never chosen; a candidate that is smaller and
     * better at once is taken even with no room left */
    const uint64_t b2[] = {ELLM_BITALLOC_NONE, 12, 10, 8, 9, 16};
    const double e2[] = {0, 5, 1, 7, 3, 2};
    int c2[2];
    CHECK(ellm_bitalloc(b2, e2, 2, 3, 20, c2, &used, &err) == ELLM_OK && c2[0] == 2 && c2[1] == 1 && used == 19,
          "got %d %d used %llu", c2[0], c2[1], (unsigned long long)used);
    const uint64_t none[] = {ELLM_BITALLOC_NONE, ELLM_BITALLOC_NONE};
    CHECK(ellm_bitalloc(none, e, 1, 2, 100, choice, &used, &err) == ELLM_E_ARG, "a tensor without candidates");
    const double bad[] = {NAN, 1};
    CHECK(ellm_bitalloc(b, bad, 1, 2, 100, choice, &used, &err) == ELLM_E_ARG, "a NaN error is refused");
}

/* Random tensors whose candidates lie on a convex curve (each further byte
 * buys less error, as uint4 -> uint4 groups -> uint8 does), budgets of
 * Lagrangian solutions: the greedy walk must hit the exact optimum there. */
static void test_exact_at_lagrangian_budgets(ellm_rng *rng) {
    int exact = 0;
    for (int trial = 0; trial < 300; trial++) {
        size_t nt = 2 + (uint32_t)ellm_rng_next(rng) % (MAXT - 1), nc = 2 + (uint32_t)ellm_rng_next(rng) % (MAXC - 1);
        uint64_t b[MAXT * MAXC];
        double e[MAXT * MAXC];
        for (size_t t = 0; t < nt; t++) {
            uint64_t bytes = 10 + (uint32_t)ellm_rng_next(rng) % 100;
            double err = 1000 * ellm_rng_uniform(rng) + 100, slope = 1 + 10 * ellm_rng_uniform(rng);
            for (size_t c = 0; c < nc; c++) {
                b[t * nc + c] = bytes;
                e[t * nc + c] = err;
                uint64_t step = 1 + (uint32_t)ellm_rng_next(rng) % 50;
                bytes += step;
                err = fmax(0, err - slope * (double)step);
                slope *= 0.2 + 0.6 * ellm_rng_uniform(rng); /* strictly flatter: convex */
            }
        }
        /* the Lagrangian solution for a random price of a byte */
        double lambda = pow(10, -2 + 3 * ellm_rng_uniform(rng));
        int lag[MAXT];
        for (size_t t = 0; t < nt; t++) {
            lag[t] = 0;
            for (size_t c = 1; c < nc; c++)
                if (e[t * nc + c] + lambda * (double)b[t * nc + c] <
                    e[t * nc + lag[t]] + lambda * (double)b[t * nc + lag[t]])
                    lag[t] = (int)c;
        }
        uint64_t budget = total_bytes(b, nt, nc, lag);
        int choice[MAXT];
        uint64_t used;
        ellm_error err = {0};
        CHECK(ellm_bitalloc(b, e, nt, nc, budget, choice, &used, &err) == ELLM_OK, "%s", err.message);
        CHECK(used <= budget && used == total_bytes(b, nt, nc, choice), "budget %llu used %llu",
              (unsigned long long)budget, (unsigned long long)used);
        double got = total_error(e, nt, nc, choice), best = brute_force(b, e, nt, nc, budget);
        CHECK(fabs(got - best) <= 1e-9 * (1 + best), "trial %d: greedy %.9g, optimum %.9g", trial, got, best);
        exact += fabs(got - best) <= 1e-9 * (1 + best);
    }
    CHECK(exact == 300, "%d of 300 exact", exact);
}

/* Arbitrary candidates and budgets: within budget, never worse than the
 * optimum (sanity of the brute force), and locally optimal. */
static void test_local_optimality(ellm_rng *rng) {
    for (int trial = 0; trial < 300; trial++) {
        size_t nt = 1 + (uint32_t)ellm_rng_next(rng) % MAXT, nc = 1 + (uint32_t)ellm_rng_next(rng) % MAXC;
        uint64_t b[MAXT * MAXC], least = 0, most = 0;
        double e[MAXT * MAXC];
        for (size_t t = 0; t < nt; t++) {
            uint64_t lo = UINT64_MAX, hi = 0;
            for (size_t c = 0; c < nc; c++) {
                bool missing = c > 0 && (uint32_t)ellm_rng_next(rng) % 5 == 0;
                uint64_t bytes = missing ? ELLM_BITALLOC_NONE : 1 + (uint32_t)ellm_rng_next(rng) % 64;
                b[t * nc + c] = bytes;
                e[t * nc + c] = 100 * ellm_rng_uniform(rng);
                if (!missing) lo = ELLM_MIN(lo, bytes), hi = ELLM_MAX(hi, bytes);
            }
            least += lo, most += hi;
        }
        uint64_t budget = least + (uint32_t)ellm_rng_next(rng) % (most - least + 1);
        int choice[MAXT];
        uint64_t used;
        ellm_error err = {0};
        CHECK(ellm_bitalloc(b, e, nt, nc, budget, choice, &used, &err) == ELLM_OK, "%s", err.message);
        CHECK(used <= budget && used == total_bytes(b, nt, nc, choice), "over budget");
        double got = total_error(e, nt, nc, choice);
        CHECK(got >= brute_force(b, e, nt, nc, budget) - 1e-9, "better than the optimum?");
        for (size_t t = 0; t < nt; t++)
            for (size_t c = 0; c < nc; c++) {
                size_t k = t * nc + c, cur = t * nc + (size_t)choice[t];
                if (b[k] == ELLM_BITALLOC_NONE) continue;
                bool fits = used - b[cur] + b[k] <= budget;
                CHECK(!(fits && e[k] < e[cur]), "trial %d: tensor %zu could still move to %zu", trial, t, c);
            }
    }
}

int main(void) {
    ellm_rng rng;
    ellm_rng_seed(&rng, 42);
    test_hand_made();
    test_exact_at_lagrangian_budgets(&rng);
    test_local_optimality(&rng);
    return test_finish("test_bitalloc");
}
