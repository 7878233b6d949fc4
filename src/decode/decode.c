/*
 * decode.c - every segment of every block is one task of one pool job.
 *
 * Task t decodes global segment perm[t]. The blocks come one after the
 * other, and within each block perm is a fixed-seed Fisher-Yates
 * permutation of its segments: consecutive tasks (taken by different
 * threads) land on unrelated segments of the same tensor, so runs of long or
 * short codes in one region of a tensor spread over all threads, while the
 * threads share one tensor's decode tables at a time (a permutation over all
 * blocks made every task fetch another tensor's tables into its cache). A
 * global segment index is mapped to (block, segment) by binary search in the
 * prefix sums of the blocks' segment counts.
 */
#include "decode/decode.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define DECODE_SHUFFLE_SEED 0x656e74726f6c6c6dull /* "entrollm" */
/* Below this many symbols a job runs on the calling thread: decoding them
 * takes about as long as waking the pool's workers (tens of microseconds). */
#define DECODE_INLINE_SYMBOLS 65536

typedef struct decode_job {
    const ec_view *views;
    uint8_t *const *outs;
    size_t n_views;
    const uint64_t *first; /* first[i] = global index of views[i]'s segment 0; first[n_views] = total */
    const uint64_t *perm;
    atomic_int failed;
    atomic_flag error_taken;
    size_t bad_view;
    ellm_error error; /* the first failure, written by the thread that set error_taken */
} decode_job;

static size_t find_view(const decode_job *j, uint64_t g) {
    size_t lo = 0, hi = j->n_views; /* first[lo] <= g < first[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (j->first[mid] <= g)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static void decode_task(void *ctx, int64_t task, int thread) {
    decode_job *j = ctx;
    if (atomic_load_explicit(&j->failed, memory_order_relaxed)) return;
    uint64_t g = j->perm[task];
    size_t vi = find_view(j, g);
    ellm_error e;
    if (ec_decode_segment(&j->views[vi], g - j->first[vi], j->outs[vi], &e) != ELLM_OK) {
        atomic_store(&j->failed, 1);
        if (!atomic_flag_test_and_set(&j->error_taken)) {
            j->error = e;
            j->bad_view = vi;
        }
    }
}

ellm_status ellm_decode_blocks(const ec_view *views, const char *const *names, uint8_t *const *outs,
                               size_t n_views, ellm_pool *pool, ellm_error *err) {
    if (n_views == 0) return ELLM_OK;
    if (!views || !outs) return ellm_fail(err, ELLM_E_ARG, "ellm_decode_blocks: no views or outputs");
    uint64_t *first = ellm_malloc((n_views + 1) * sizeof *first, err);
    if (!first) return ELLM_E_NOMEM;
    uint64_t total = 0, symbols = 0;
    for (size_t i = 0; i < n_views; i++) {
        first[i] = total;
        symbols += views[i].n_symbols;
        if (views[i].n_segments && (!views[i].tables || !outs[i])) {
            free(first);
            return ellm_fail(err, ELLM_E_ARG, "%s: %s", names && names[i] ? names[i] : "coded block",
                             views[i].tables ? "no output buffer" : "block view is not open");
        }
        total += views[i].n_segments;
    }
    first[n_views] = total;
    if (total == 0) {
        free(first);
        return ELLM_OK;
    }
    if (total > SIZE_MAX / sizeof(uint64_t)) {
        free(first);
        return ellm_fail(err, ELLM_E_NOMEM, "ellm_decode_blocks: %llu segments", (unsigned long long)total);
    }
    uint64_t *perm = ellm_malloc((size_t)total * sizeof *perm, err);
    if (!perm) {
        free(first);
        return ELLM_E_NOMEM;
    }
    for (uint64_t i = 0; i < total; i++) perm[i] = i;
    ellm_rng rng;
    ellm_rng_seed(&rng, DECODE_SHUFFLE_SEED);
    for (size_t v = 0; v < n_views; v++) {
        uint64_t *seg = perm + first[v], count = first[v + 1] - first[v];
        for (uint64_t i = count; i-- > 1;) {
            uint64_t k = ellm_rng_next(&rng) % (i + 1);
            uint64_t t = seg[i];
            seg[i] = seg[k];
            seg[k] = t;
        }
    }
    decode_job job = {.views = views, .outs = outs, .n_views = n_views, .first = first, .perm = perm};
    atomic_init(&job.failed, 0);
    atomic_flag_clear(&job.error_taken);
    ellm_pool_run(symbols < DECODE_INLINE_SYMBOLS ? NULL : pool, (int64_t)total, decode_task, &job);
    ellm_status st = ELLM_OK;
    if (atomic_load(&job.failed)) {
        const char *name = names && names[job.bad_view] ? names[job.bad_view] : "coded block";
        st = ellm_fail(err, job.error.code, "%s: %s", name, job.error.message);
    }
    free(perm);
    free(first);
    return st;
}
