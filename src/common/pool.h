/*
 * pool.h - a persistent thread pool with a low-latency parallel-for.
 *
 * Each handle that computes in parallel (a model, a decoder) owns one pool.
 * ellm_pool_run(pool, n_tasks, fn, ctx) calls fn(ctx, task, thread) for every
 * task in [0, n_tasks), tasks handed out dynamically (an atomic counter), and
 * returns when all are done. The calling thread works too, as thread 0.
 * Workers spin briefly before sleeping, so back-to-back calls (one per matrix
 * product during generation) do not pay a wake-up each time.
 */
#ifndef ELLM_POOL_H
#define ELLM_POOL_H

#include <stdint.h>

#include "entrollm.h"

typedef struct ellm_pool ellm_pool;

typedef void (*ellm_task_fn)(void *ctx, int64_t task, int thread);

/* n_threads <= 0 means all online CPUs. n_threads == 1 runs inline. */
ellm_status ellm_pool_create(int n_threads, ellm_pool **out, ellm_error *err);
void ellm_pool_destroy(ellm_pool *pool);
int ellm_pool_threads(const ellm_pool *pool);

/* Runs fn for tasks 0..n_tasks-1 across the pool; not re-entrant. */
void ellm_pool_run(ellm_pool *pool, int64_t n_tasks, ellm_task_fn fn, void *ctx);

#endif /* ELLM_POOL_H */
