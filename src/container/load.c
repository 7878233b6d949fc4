/*
 * load.c - from an opened .ellm file to tensors in memory: payload checksums
 * (in parallel), then the paper's parallel segment decoding of every coded
 * tensor at once, written straight into each tensor's final buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "container/container.h"
#include "decode/decode.h"
#include "entropy/entropy.h"

typedef struct checksum_job {
    const ellm_file *f;
    const size_t *indices;
    ellm_status *status;
    ellm_error *errors;
} checksum_job;

static void checksum_task(void *ctx, int64_t task, int thread) {
    checksum_job *j = ctx;
    size_t idx = j->indices ? j->indices[task] : (size_t)task;
    j->status[task] = ellm_file_check_tensor(j->f, idx, &j->errors[task]);
}

/* Checks the payload checksums of the given tensors on the pool. */
static ellm_status check_payloads(const ellm_file *f, const size_t *indices, size_t n, ellm_pool *pool,
                                  ellm_error *err) {
    ellm_status *status = ellm_calloc(n, sizeof *status, err);
    ellm_error *errors = ellm_calloc(n, sizeof *errors, err);
    ellm_status s = ELLM_OK;
    if (!status || !errors) {
        s = ELLM_E_NOMEM;
    } else {
        checksum_job job = {f, indices, status, errors};
        ellm_pool_run(pool, (int64_t)n, checksum_task, &job);
        for (size_t i = 0; i < n && !s; i++)
            if (status[i]) {
                s = status[i];
                if (err) *err = errors[i];
            }
    }
    free(status);
    free(errors);
    return s;
}

/* Copies scales/zeros and sets up the in-memory tensor (data not filled). */
static ellm_status prepare_tensor(const ellm_ftensor *t, ellm_qtensor *q, ellm_error *err) {
    memset(q, 0, sizeof *q);
    q->name = t->name;
    q->n_dims = t->n_dims;
    memcpy(q->shape, t->shape, sizeof q->shape);
    q->n = t->n;
    q->bits = t->bits;
    q->owns_data = 1;
    uint64_t bytes = t->bits == 32 ? t->n * 4 : ec_decoded_bytes(t->bits, t->n);
    q->data = ellm_aligned_alloc(bytes + 64, err); /* slack: kernels may read a vector past the end */
    if (!q->data) return ELLM_E_NOMEM;
    memset(q->data + bytes, 0, 64);
    if (t->bits == 32) return ELLM_OK;
    q->qp.scheme = t->scheme;
    q->qp.bits = t->bits;
    q->qp.granularity = t->granularity;
    q->qp.group_size = t->group_size;
    q->qp.n_groups = t->n_groups;
    q->qp.scales = ellm_malloc(t->n_groups * sizeof(float), err);
    q->qp.zeros = ellm_malloc(t->n_groups, err);
    if (!q->qp.scales || !q->qp.zeros) return ELLM_E_NOMEM;
    for (uint64_t g = 0; g < t->n_groups; g++) {
        uint32_t b = ellm_le32(t->scales + 4 * g); /* payloads are unaligned */
        memcpy(&q->qp.scales[g], &b, 4);
    }
    memcpy(q->qp.zeros, t->zeros, t->n_groups);
    return ELLM_OK;
}

ellm_status ellm_file_load_tensors(const ellm_file *f, const size_t *indices, size_t n, ellm_pool *pool,
                                   int skip_checksums, ellm_qtensor *out, double *decode_seconds,
                                   ellm_error *err) {
    if (!indices) n = f->n_tensors;
    memset(out, 0, n * sizeof *out);
    ellm_status s = skip_checksums ? ELLM_OK : check_payloads(f, indices, n, pool, err);
    ec_view *views = ellm_calloc(n, sizeof *views, err);
    uint8_t **outs = ellm_calloc(n, sizeof *outs, err);
    const char **names = ellm_calloc(n, sizeof *names, err);
    size_t n_coded = 0;
    if (!views || !outs || !names) s = s ? s : ELLM_E_NOMEM;
    for (size_t i = 0; i < n && !s; i++) {
        const ellm_ftensor *t = &f->tensors[indices ? indices[i] : i];
        if ((s = prepare_tensor(t, &out[i], err))) break;
        if (t->coder == ELLM_CODER_RAW) {
            memcpy(out[i].data, t->block, t->block_size);
            continue;
        }
        s = ec_view_open(t->block, t->block_size, t->name, &views[n_coded], err);
        if (!s && (views[n_coded].n_symbols != t->n || views[n_coded].bits != t->bits ||
                   (int)views[n_coded].coder != (int)t->coder)) {
            s = ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s: coded block does not match its directory entry",
                          f->path, t->name);
            ec_view_close(&views[n_coded]);
        }
        if (s) {
            ellm_fail_prefix(err, "%s", f->path);
            break;
        }
        outs[n_coded] = out[i].data;
        names[n_coded] = t->name;
        n_coded++;
    }
    double t0 = ellm_now();
    if (!s && n_coded) s = ellm_decode_blocks(views, names, outs, n_coded, pool, err);
    if (decode_seconds) *decode_seconds = ellm_now() - t0;
    for (size_t i = 0; i < n_coded; i++) ec_view_close(&views[i]);
    free(views);
    free(outs);
    free(names);
    if (s) {
        for (size_t i = 0; i < n; i++) ellm_qtensor_free(&out[i]);
        if (s == ELLM_E_FORMAT && err && !strstr(err->message, f->path)) ellm_fail_prefix(err, "%s", f->path);
    }
    return s;
}

ellm_status ellm_file_verify(ellm_file *f, int n_threads, ellm_error *err) {
    ellm_pool *pool = NULL;
    ellm_status s = ellm_pool_create(n_threads, &pool, err);
    if (s) return s;
    s = check_payloads(f, NULL, f->n_tensors, pool, err);
    /* Decode one tensor at a time (each on all threads) so that verifying a
     * model needs memory for its largest tensor only. */
    for (size_t i = 0; i < f->n_tensors && !s; i++) {
        if (f->tensors[i].coder == ELLM_CODER_RAW) continue;
        ellm_qtensor q;
        s = ellm_file_load_tensors(f, &i, 1, pool, 1, &q, NULL, err);
        if (!s) ellm_qtensor_free(&q);
    }
    ellm_pool_destroy(pool);
    return s;
}
