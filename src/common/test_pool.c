/* test_pool.c - the thread pool runs every task exactly once, for any thread
 * count, job size and job sequence (including thousands of tiny jobs). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"
#include "common/pool.h"

static int failures;

typedef struct count_ctx {
    atomic_int *hits;
    atomic_long sum;
    int n_threads;
    atomic_int bad_thread;
} count_ctx;

static void count_task(void *ctx, int64_t task, int thread) {
    count_ctx *c = ctx;
    atomic_fetch_add(&c->hits[task], 1);
    atomic_fetch_add(&c->sum, (long)task);
    if (thread < 0 || thread >= c->n_threads) atomic_store(&c->bad_thread, 1);
}

static void run_job(ellm_pool *pool, int n_threads, int64_t n) {
    count_ctx c = {.n_threads = n_threads};
    c.hits = calloc((size_t)(n ? n : 1), sizeof *c.hits);
    ellm_pool_run(pool, n, count_task, &c);
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&c.hits[i]) != 1) {
            fprintf(stderr, "FAIL: threads %d, %lld tasks: task %lld ran %d times\n", n_threads, (long long)n,
                    (long long)i, atomic_load(&c.hits[i]));
            failures++;
            break;
        }
    if (atomic_load(&c.sum) != (long)(n * (n - 1) / 2) || atomic_load(&c.bad_thread)) {
        fprintf(stderr, "FAIL: threads %d, %lld tasks: wrong sum or thread index\n", n_threads, (long long)n);
        failures++;
    }
    free(c.hits);
}

int main(void) {
    for (int threads = 1; threads <= 5; threads++) {
        ellm_pool *pool;
        ellm_error err;
        if (ellm_pool_create(threads, &pool, &err) != ELLM_OK) {
            fprintf(stderr, "FAIL: create: %s\n", err.message);
            return 1;
        }
        if (ellm_pool_threads(pool) != threads) failures++;
        int64_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 100003};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) run_job(pool, threads, sizes[i]);
        for (int rep = 0; rep < 5000; rep++) run_job(pool, threads, 1 + rep % 5); /* back-to-back small jobs */
        ellm_pool_destroy(pool);
    }
    ellm_pool *pool;
    ellm_error err;
    if (ellm_pool_create(2000, &pool, &err) != ELLM_E_ARG) failures++;
    printf("test_pool: %s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
