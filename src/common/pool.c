/*
 * pool.c - persistent worker threads and a parallel-for (see pool.h).
 *
 * Dispatch: the caller publishes a job (fn, ctx, n_tasks) and bumps a
 * generation counter; workers waiting on the counter wake, take task indices
 * from an atomic counter until none remain, and each decrements `active` when
 * it leaves. Workers spin for a short while before blocking on a condition
 * variable, so tight sequences of jobs keep them hot.
 */
#include "common/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/common.h"

#define ELLM_POOL_SPIN_ITERS 20000

struct ellm_pool {
    int n_threads;
    pthread_t *workers;

    /* Current job. Written by the caller before generation is bumped. */
    ellm_task_fn fn;
    void *ctx;
    int64_t n_tasks;
    atomic_int_fast64_t next_task;
    atomic_int active;          /* workers still inside the current job */
    atomic_uint_fast64_t generation;
    atomic_bool stop;

    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

typedef struct worker_arg {
    ellm_pool *pool;
    int thread;
} worker_arg;

static void run_tasks(ellm_pool *p, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static uint64_t wait_for_generation(ellm_pool *p, uint64_t seen) {
    for (int i = 0; i < ELLM_POOL_SPIN_ITERS; i++) {
        uint64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen || atomic_load(&p->stop)) return g;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    pthread_mutex_lock(&p->mutex);
    uint64_t g;
    while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
           !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
    return g;
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    ellm_pool *p = wa.pool;
    uint64_t seen = 0;
    for (;;) {
        seen = wait_for_generation(p, seen);
        if (atomic_load(&p->stop)) break;
        run_tasks(p, wa.thread);
        atomic_fetch_sub_explicit(&p->active, 1, memory_order_acq_rel);
    }
    return NULL;
}

ellm_status ellm_pool_create(int n_threads, ellm_pool **out, ellm_error *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = ellm_cpu_count();
    if (n_threads > 1024) return ellm_fail(err, ELLM_E_ARG, "thread count %d is too large", n_threads);
    ellm_pool *p = ellm_calloc(1, sizeof *p, err);
    if (!p) return ELLM_E_NOMEM;
    p->n_threads = n_threads;
    atomic_init(&p->next_task, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->generation, 0);
    atomic_init(&p->stop, false);
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n_threads > 1) {
        p->workers = ellm_calloc((size_t)n_threads - 1, sizeof(pthread_t), err);
        if (!p->workers) {
            ellm_pool_destroy(p);
            return ELLM_E_NOMEM;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa) *wa = (worker_arg){p, i};
            if (!wa || pthread_create(&p->workers[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                p->n_threads = i; /* only i-1 workers exist */
                ellm_pool_destroy(p);
                return ellm_fail(err, ELLM_E_INTERNAL, "cannot start worker thread %d", i);
            }
        }
    }
    *out = p;
    return ELLM_OK;
}

void ellm_pool_destroy(ellm_pool *p) {
    if (!p) return;
    if (p->workers) {
        pthread_mutex_lock(&p->mutex);
        atomic_store(&p->stop, true);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
        for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i - 1], NULL);
        free(p->workers);
    }
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    free(p);
}

int ellm_pool_threads(const ellm_pool *p) { return p ? p->n_threads : 1; }

void ellm_pool_run(ellm_pool *p, int64_t n_tasks, ellm_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->active, p->n_threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);

    run_tasks(p, 0);
    while (atomic_load_explicit(&p->active, memory_order_acquire) > 0) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#else
        sched_yield();
#endif
    }
}
