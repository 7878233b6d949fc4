/*
 * kernels.c - products of integer (or float) weight matrices with float
 * activations, reading the uint8 / packed uint4 codes directly.
 *
 * A weight row is cut into segments over which the quantization group is
 * constant (one segment per row for per-tensor and per-row scales); each
 * segment contributes s_g * sum((q - z_g) * x). The codes are widened to
 * int32, the zero point subtracted exactly in integers, converted to float
 * and multiplied-added into the sum - no float copy of the matrix exists.
 *
 * Matrix-vector (one token): rows are split across the pool, each row read
 * once. Matrix-matrix (prefill, batched scoring): a task dequantizes a block
 * of 8 rows into per-thread scratch (8 rows of floats, in L1/L2) and then
 * multiplies it with every token, 4 rows at a time, so each weight is decoded
 * once per call however many tokens there are.
 *
 * Every vectorised function has a scalar twin; `force_scalar` selects it at
 * run time (tests compare the two) and ELLM_FORCE_SCALAR builds have only it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/model.h"

#if defined(__AVX2__) && defined(__FMA__) && !defined(ELLM_FORCE_SCALAR)
#define ELLM_KERN_AVX2 1
#include <immintrin.h>
#else
#define ELLM_KERN_AVX2 0
#endif

#define MM_ROWS 8      /* rows dequantized per matrix-matrix task */
#define MV_ROWS 16     /* rows per matrix-vector task */

int ellm_kernels_have_simd(void) { return ELLM_KERN_AVX2; }

/* ---- scalar segments ------------------------------------------------------ */

static float seg_u8_scalar(const uint8_t *q, int z, const float *x, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += (float)((int)q[i] - z) * x[i];
    return acc;
}

/* Elements [e, e+n) of packed uint4 codes (element 2k: low nibble of byte k). */
static inline int u4_at(const uint8_t *p, uint64_t e) { return (p[e >> 1] >> ((e & 1) * 4)) & 15; }

static float seg_u4_scalar(const uint8_t *packed, uint64_t e, int z, const float *x, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += (float)(u4_at(packed, e + (uint64_t)i) - z) * x[i];
    return acc;
}

static float dot_f32_scalar(const float *a, const float *b, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

static void deq_u8_scalar(const uint8_t *q, int z, float s, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = s * (float)((int)q[i] - z);
}

static void deq_u4_scalar(const uint8_t *packed, uint64_t e, int z, float s, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = s * (float)(u4_at(packed, e + (uint64_t)i) - z);
}

/* ---- AVX2 segments -------------------------------------------------------- */

#if ELLM_KERN_AVX2
static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* 8 codes (low 8 bytes of b) minus z, as floats. */
static inline __m256 cvt8(__m128i b, __m256i zv) {
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(b), zv));
}

static float seg_u8_avx2(const uint8_t *q, int z, const float *x, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    const __m256i zv = _mm256_set1_epi32(z);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m128i b0 = _mm_loadu_si128((const __m128i *)(q + i));
        __m128i b1 = _mm_loadu_si128((const __m128i *)(q + i + 16));
        a0 = _mm256_fmadd_ps(cvt8(b0, zv), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(cvt8(_mm_srli_si128(b0, 8), zv), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(cvt8(b1, zv), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(cvt8(_mm_srli_si128(b1, 8), zv), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(cvt8(_mm_loadl_epi64((const __m128i *)(q + i)), zv), _mm256_loadu_ps(x + i), a0);
    float acc = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) acc += (float)((int)q[i] - z) * x[i];
    return acc;
}

/* 16 packed bytes -> 32 codes in element order: lo0 hi0 lo1 hi1 ... */
static inline void unpack32(const uint8_t *p, __m128i *c0, __m128i *c1) {
    const __m128i m = _mm_set1_epi8(15);
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    *c0 = _mm_unpacklo_epi8(lo, hi);
    *c1 = _mm_unpackhi_epi8(lo, hi);
}

static float seg_u4_avx2(const uint8_t *packed, uint64_t e, int z, const float *x, int64_t n) {
    float acc = 0.0f;
    if ((e & 1) && n > 0) { /* peel to an even element: a byte boundary */
        acc += (float)(u4_at(packed, e) - z) * x[0];
        e++, x++, n--;
    }
    const uint8_t *p = packed + (e >> 1);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    const __m256i zv = _mm256_set1_epi32(z);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m128i c0, c1;
        unpack32(p + i / 2, &c0, &c1);
        a0 = _mm256_fmadd_ps(cvt8(c0, zv), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(cvt8(_mm_srli_si128(c0, 8), zv), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(cvt8(c1, zv), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(cvt8(_mm_srli_si128(c1, 8), zv), _mm256_loadu_ps(x + i + 24), a3);
    }
    acc += hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) acc += (float)(u4_at(p, (uint64_t)i) - z) * x[i];
    return acc;
}

static float dot_f32_avx2(const float *a, const float *b, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    float acc = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) acc += a[i] * b[i];
    return acc;
}

/* Four rows against one vector: x is loaded once for four products. */
static void dot4_f32_avx2(const float *const w[4], const float *x, int64_t n, float out[4]) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w[0] + i), xv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w[1] + i), xv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w[2] + i), xv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w[3] + i), xv, a3);
    }
    out[0] = hsum256(a0), out[1] = hsum256(a1), out[2] = hsum256(a2), out[3] = hsum256(a3);
    for (; i < n; i++)
        for (int r = 0; r < 4; r++) out[r] += w[r][i] * x[i];
}

static void deq_u8_avx2(const uint8_t *q, int z, float s, int64_t n, float *out) {
    const __m256i zv = _mm256_set1_epi32(z);
    const __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(sv, cvt8(_mm_loadl_epi64((const __m128i *)(q + i)), zv)));
    for (; i < n; i++) out[i] = s * (float)((int)q[i] - z);
}

static void deq_u4_avx2(const uint8_t *packed, uint64_t e, int z, float s, int64_t n, float *out) {
    if ((e & 1) && n > 0) {
        *out++ = s * (float)(u4_at(packed, e) - z);
        e++, n--;
    }
    const uint8_t *p = packed + (e >> 1);
    const __m256i zv = _mm256_set1_epi32(z);
    const __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m128i c0, c1;
        unpack32(p + i / 2, &c0, &c1);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(sv, cvt8(c0, zv)));
        _mm256_storeu_ps(out + i + 8, _mm256_mul_ps(sv, cvt8(_mm_srli_si128(c0, 8), zv)));
        _mm256_storeu_ps(out + i + 16, _mm256_mul_ps(sv, cvt8(c1, zv)));
        _mm256_storeu_ps(out + i + 24, _mm256_mul_ps(sv, cvt8(_mm_srli_si128(c1, 8), zv)));
    }
    for (; i < n; i++) out[i] = s * (float)(u4_at(p, (uint64_t)i) - z);
}
#endif

/* ---- dispatch ------------------------------------------------------------- */

static inline float seg_u8(const uint8_t *q, int z, const float *x, int64_t n, int scalar) {
#if ELLM_KERN_AVX2
    if (!scalar) return seg_u8_avx2(q, z, x, n);
#endif
    (void)scalar;
    return seg_u8_scalar(q, z, x, n);
}

static inline float seg_u4(const uint8_t *p, uint64_t e, int z, const float *x, int64_t n, int scalar) {
#if ELLM_KERN_AVX2
    if (!scalar) return seg_u4_avx2(p, e, z, x, n);
#endif
    (void)scalar;
    return seg_u4_scalar(p, e, z, x, n);
}

static inline float dot_f32(const float *a, const float *b, int64_t n, int scalar) {
#if ELLM_KERN_AVX2
    if (!scalar) return dot_f32_avx2(a, b, n);
#endif
    (void)scalar;
    return dot_f32_scalar(a, b, n);
}

static inline void dot4_f32(const float *const w[4], const float *x, int64_t n, float out[4], int scalar) {
#if ELLM_KERN_AVX2
    if (!scalar) {
        dot4_f32_avx2(w, x, n, out);
        return;
    }
#endif
    (void)scalar;
    for (int r = 0; r < 4; r++) out[r] = dot_f32_scalar(w[r], x, n);
}

/* Row r of W (in = row length) times x: the sum over group segments. */
static float row_dot(const ellm_qtensor *w, int64_t r, int64_t in, const float *x, int scalar) {
    uint64_t e0 = (uint64_t)r * (uint64_t)in;
    if (w->bits == 32) return dot_f32((const float *)w->data + e0, x, in, scalar);
    const uint64_t G = w->qp.group_size;
    float acc = 0.0f;
    for (uint64_t e = e0, end = e0 + (uint64_t)in; e < end;) {
        uint64_t g = e / G;
        uint64_t seg_end = ELLM_MIN((g + 1) * G, end);
        int64_t n = (int64_t)(seg_end - e);
        const float *xs = x + (e - e0);
        int z = w->qp.zeros[g];
        float d = w->bits == 8 ? seg_u8(w->data + e, z, xs, n, scalar) : seg_u4(w->data, e, z, xs, n, scalar);
        acc += w->qp.scales[g] * d;
        e = seg_end;
    }
    return acc;
}

void ellm_row_dequant(const ellm_qtensor *w, int64_t r, float *out, int scalar) {
    const int64_t in = w->shape[w->n_dims - 1];
    uint64_t e0 = (uint64_t)r * (uint64_t)in;
    if (w->bits == 32) {
        memcpy(out, (const float *)w->data + e0, (size_t)in * sizeof(float));
        return;
    }
    const uint64_t G = w->qp.group_size;
    for (uint64_t e = e0, end = e0 + (uint64_t)in; e < end;) {
        uint64_t g = e / G;
        uint64_t seg_end = ELLM_MIN((g + 1) * G, end);
        int64_t n = (int64_t)(seg_end - e);
        float *o = out + (e - e0);
        int z = w->qp.zeros[g];
        float s = w->qp.scales[g];
#if ELLM_KERN_AVX2
        if (!scalar) {
            if (w->bits == 8) deq_u8_avx2(w->data + e, z, s, n, o);
            else deq_u4_avx2(w->data, e, z, s, n, o);
        } else
#endif
        {
            if (w->bits == 8) deq_u8_scalar(w->data + e, z, s, n, o);
            else deq_u4_scalar(w->data, e, z, s, n, o);
        }
        e = seg_end;
    }
    (void)scalar;
}

/* ---- parallel products ---------------------------------------------------- */

typedef struct mm_job {
    ellm_kernels *k;
    const ellm_qtensor *w;
    int64_t row0, n_rows, in;
    const float *x;
    int n_tok;
    float *y;
    int64_t y_stride;
} mm_job;

static void matvec_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const mm_job *j = ctx;
    int64_t r0 = task * MV_ROWS, r1 = ELLM_MIN(r0 + MV_ROWS, j->n_rows);
    for (int64_t r = r0; r < r1; r++) j->y[r] = row_dot(j->w, j->row0 + r, j->in, j->x, j->k->force_scalar);
}

static void matmul_task(void *ctx, int64_t task, int thread) {
    const mm_job *j = ctx;
    const int scalar = j->k->force_scalar;
    int64_t r0 = task * MM_ROWS, nr = ELLM_MIN((int64_t)MM_ROWS, j->n_rows - r0);
    const float *rows[MM_ROWS];
    float *scratch = j->k->scratch + (size_t)thread * j->k->scratch_floats;
    for (int64_t i = 0; i < nr; i++) {
        int64_t r = j->row0 + r0 + i;
        if (j->w->bits == 32) {
            rows[i] = (const float *)j->w->data + (uint64_t)r * (uint64_t)j->in;
        } else {
            float *dst = scratch + (size_t)i * (size_t)j->in;
            ellm_row_dequant(j->w, r, dst, scalar);
            rows[i] = dst;
        }
    }
    for (int t = 0; t < j->n_tok; t++) {
        const float *xt = j->x + (size_t)t * (size_t)j->in;
        float *yt = j->y + (size_t)t * (size_t)j->y_stride + r0;
        int64_t i = 0;
        for (; i + 4 <= nr; i += 4) dot4_f32(rows + i, xt, j->in, yt + i, scalar);
        for (; i < nr; i++) yt[i] = dot_f32(rows[i], xt, j->in, scalar);
    }
}

void ellm_matmul(ellm_kernels *k, const ellm_qtensor *w, int64_t row0, int64_t n_rows, const float *x,
                 int n_tok, float *y, int64_t y_stride) {
    mm_job j = {k, w, row0, n_rows, w->shape[w->n_dims - 1], x, n_tok, y, y_stride};
    if (n_tok == 1)
        ellm_pool_run(k->pool, (n_rows + MV_ROWS - 1) / MV_ROWS, matvec_task, &j);
    else
        ellm_pool_run(k->pool, (n_rows + MM_ROWS - 1) / MM_ROWS, matmul_task, &j);
}

ellm_status ellm_kernels_check_tensor(const ellm_qtensor *w, ellm_error *err) {
    const char *name = w->name ? w->name : "(unnamed)";
    if (w->bits != 8 && w->bits != 4 && w->bits != 32)
        return ellm_fail(err, ELLM_E_UNSUPPORTED, "tensor %s: %d-bit weights are not supported (8, 4 or 32)", name,
                         w->bits);
    if (!w->data) return ellm_fail(err, ELLM_E_INTERNAL, "tensor %s: no data", name);
    if (w->bits == 32) return ELLM_OK;
    const ellm_qparams *qp = &w->qp;
    if (!qp->scales || !qp->zeros || qp->group_size == 0 || qp->n_groups != (w->n + qp->group_size - 1) / qp->group_size)
        return ellm_fail(err, ELLM_E_FORMAT, "tensor %s: group size %llu and %llu groups do not cover %llu elements",
                         name, (unsigned long long)qp->group_size, (unsigned long long)qp->n_groups,
                         (unsigned long long)w->n);
    int max_code = (1 << w->bits) - 1;
    for (uint64_t g = 0; g < qp->n_groups; g++) {
        if (qp->zeros[g] > max_code)
            return ellm_fail(err, ELLM_E_FORMAT, "tensor %s: zero point %d of group %llu exceeds %d", name,
                             qp->zeros[g], (unsigned long long)g, max_code);
        if (!isfinite(qp->scales[g]))
            return ellm_fail(err, ELLM_E_FORMAT, "tensor %s: scale of group %llu is not finite", name,
                             (unsigned long long)g);
    }
    return ELLM_OK;
}

ellm_status ellm_kernels_init(ellm_kernels *k, ellm_pool *pool, int64_t max_in, int force_scalar,
                              ellm_error *err) {
    memset(k, 0, sizeof *k);
    k->pool = pool;
    k->n_threads = ellm_pool_threads(pool);
    k->force_scalar = force_scalar || !ELLM_KERN_AVX2;
    k->scratch_floats = (size_t)MM_ROWS * (size_t)max_in;
    k->scratch = ellm_aligned_alloc((size_t)k->n_threads * k->scratch_floats * sizeof(float), err);
    return k->scratch ? ELLM_OK : ELLM_E_NOMEM;
}

void ellm_kernels_free(ellm_kernels *k) {
    free(k->scratch);
    k->scratch = NULL;
}
