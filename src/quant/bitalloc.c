/* bitalloc.c - greedy bit allocation across tensors (see bitalloc.h). */
#include "quant/bitalloc.h"

#include <math.h>

#include "common/common.h"

/* The best move: tensor, candidate and its gain (error drop per added
 * byte; INFINITY when it adds no bytes). */
typedef struct move {
    size_t tensor;
    int cand;
    double gain;
} move;

static bool better(double gain, const move *best) { return best->cand < 0 || gain > best->gain; }

static move best_move(const uint64_t *bytes, const double *error, size_t n_tensors, size_t n_cands,
                      const int *choice, uint64_t used, uint64_t budget) {
    move best = {0, -1, 0};
    for (size_t t = 0; t < n_tensors; t++) {
        size_t cur = t * n_cands + (size_t)choice[t];
        for (size_t c = 0; c < n_cands; c++) {
            size_t k = t * n_cands + c;
            if (bytes[k] == ELLM_BITALLOC_NONE || !(error[k] < error[cur])) continue;
            if (bytes[k] > bytes[cur] && bytes[k] - bytes[cur] > budget - used) continue; /* does not fit */
            double gain = bytes[k] <= bytes[cur] ? INFINITY : (error[cur] - error[k]) / (double)(bytes[k] - bytes[cur]);
            if (better(gain, &best)) best = (move){t, (int)c, gain};
        }
    }
    return best;
}

ellm_status ellm_bitalloc(const uint64_t *bytes, const double *error, size_t n_tensors, size_t n_cands,
                          uint64_t budget, int *choice, uint64_t *used_out, ellm_error *err) {
    if (n_cands == 0 || n_cands > 64)
        return ellm_fail(err, ELLM_E_ARG, "bit allocation: %zu candidates per tensor", n_cands);
    uint64_t used = 0;
    for (size_t t = 0; t < n_tensors; t++) {
        const uint64_t *b = bytes + t * n_cands;
        const double *e = error + t * n_cands;
        int best = -1;
        for (size_t c = 0; c < n_cands; c++) {
            if (b[c] == ELLM_BITALLOC_NONE) continue;
            if (!isfinite(e[c]) || e[c] < 0)
                return ellm_fail(err, ELLM_E_ARG, "bit allocation: tensor %zu candidate %zu: error %g", t, c, e[c]);
            if (best < 0 || b[c] < b[best] || (b[c] == b[best] && e[c] < e[best])) best = (int)c;
        }
        if (best < 0) return ellm_fail(err, ELLM_E_ARG, "bit allocation: tensor %zu has no candidate", t);
        choice[t] = best;
        if (!ellm_add_u64(used, b[best], &used))
            return ellm_fail(err, ELLM_E_ARG, "bit allocation: total size overflows");
    }
    if (used > budget)
        return ellm_fail(err, ELLM_E_ARG,
                         "the smallest choice for every tensor needs %llu bytes, more than the budget of %llu",
                         (unsigned long long)used, (unsigned long long)budget);
    for (;;) {
        move m = best_move(bytes, error, n_tensors, n_cands, choice, used, budget);
        if (m.cand < 0) break;
        used = used - bytes[m.tensor * n_cands + (size_t)choice[m.tensor]] + bytes[m.tensor * n_cands + (size_t)m.cand];
        choice[m.tensor] = m.cand;
    }
    if (used_out) *used_out = used;
    return ELLM_OK;
}
