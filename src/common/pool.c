/*
 * pool.c - persistent worker threads and a parallel-for (see pool.h).
 *
 * A job is published in one of two slots (alternating) and announced through
 * one atomic "ticket" word: generation in the high 32 bits, index of the next
 * unclaimed task in the low 32. Threads claim tasks by compare-and-swap on the
 * ticket, so a claim can only succeed for the job currently announced; the
 * caller returns once the job's tasks are all *done*, without waiting for
 * every worker to show up. That matters on a loaded machine: a worker that is
 * descheduled when a job starts simply misses it instead of stalling it.
 *
 * Why a slot is safe to reuse two generations later: a thread reads a slot's
 * function only after claiming one of its tasks, and the caller publishes
 * generation g+2 (same slot) only after job g+1 ended, which started only
 * after every task of job g was done.
 *
 * Workers spin briefly, then sleep on a condition variable; back-to-back
 * jobs (one per matrix product during generation) find them awake.
 */
#include "common/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/common.h"

#define POOL_SPIN_ITERS 20000
#define POOL_MAX_TASKS 0xffffffffll

typedef struct pool_job {
    ellm_task_fn fn;
    void *ctx;
    atomic_int_fast64_t n_tasks; /* atomic: read before a claim, possibly while rewritten */
    atomic_int_fast64_t done;
} pool_job;

struct ellm_pool {
    int n_threads;
    pthread_t *workers;
    pool_job slots[2];
    atomic_uint_fast64_t ticket; /* generation << 32 | next task */
    atomic_bool stop;
    atomic_int sleepers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

typedef struct worker_arg {
    ellm_pool *pool;
    int thread;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t ticket_gen(uint64_t t) { return t >> 32; }

/* Claims and runs tasks of generation gen until none are left. */
static void run_tasks(ellm_pool *p, uint64_t gen, int thread) {
    pool_job *job = &p->slots[gen & 1];
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        if (ticket_gen(t) != gen) return;
        int64_t task = (int64_t)(t & 0xffffffffu);
        /* A stale n_tasks (the slot rewritten for a later job) is harmless:
         * the ticket then names another generation and the CAS fails. */
        if (task >= atomic_load_explicit(&job->n_tasks, memory_order_relaxed)) return;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        job->fn(job->ctx, task, thread);
        atomic_fetch_add_explicit(&job->done, 1, memory_order_release);
        t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    }
}

/* Waits until the ticket announces a generation other than seen (or stop). */
static uint64_t wait_for_job(ellm_pool *p, uint64_t seen) {
    for (int i = 0; i < POOL_SPIN_ITERS; i++) {
        uint64_t g = ticket_gen(atomic_load_explicit(&p->ticket, memory_order_acquire));
        if (g != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) return g;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add(&p->sleepers, 1);
    uint64_t g;
    /* seq_cst load after the seq_cst sleepers increment pairs with the
     * caller's seq_cst ticket store then sleepers load: no lost wake-up. */
    while ((g = ticket_gen(atomic_load(&p->ticket))) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->mutex);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mutex);
    return g;
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    ellm_pool *p = wa.pool;
    uint64_t seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        if (atomic_load(&p->stop)) break;
        run_tasks(p, seen, wa.thread);
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
    atomic_init(&p->ticket, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->sleepers, 0);
    for (int i = 0; i < 2; i++) {
        atomic_init(&p->slots[i].done, 0);
        atomic_init(&p->slots[i].n_tasks, 0);
    }
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

/* Runs a job too large for one ticket (over 2^32 tasks) in chunks. */
typedef struct chunk_ctx {
    ellm_task_fn fn;
    void *ctx;
    int64_t base;
} chunk_ctx;

static void chunk_task(void *ctx, int64_t task, int thread) {
    chunk_ctx *c = ctx;
    c->fn(c->ctx, c->base + task, thread);
}

void ellm_pool_run(ellm_pool *p, int64_t n_tasks, ellm_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    if (n_tasks > POOL_MAX_TASKS) {
        for (int64_t base = 0; base < n_tasks; base += POOL_MAX_TASKS) {
            chunk_ctx c = {fn, ctx, base};
            ellm_pool_run(p, ELLM_MIN(POOL_MAX_TASKS, n_tasks - base), chunk_task, &c);
        }
        return;
    }
    uint64_t gen = ticket_gen(atomic_load_explicit(&p->ticket, memory_order_relaxed)) + 1;
    pool_job *job = &p->slots[gen & 1];
    job->fn = fn;
    job->ctx = ctx;
    atomic_store_explicit(&job->n_tasks, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&job->done, 0, memory_order_relaxed);
    atomic_store(&p->ticket, gen << 32);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    run_tasks(p, gen, 0);
    /* Wait for tasks other threads claimed; yield now and then so that a
     * worker sharing this core can finish its task. */
    for (unsigned spins = 0; atomic_load_explicit(&job->done, memory_order_acquire) < n_tasks; spins++) {
        if (spins % 1024 == 1023) sched_yield();
        else cpu_relax();
    }
}
