/*
 * kernels.c - products of integer (or float) weight matrices with float
 * activations, reading the uint8 / packed uint4 codes directly.
 *
 * A weight row is cut into segments over which the quantization group is
 * constant (one segment per row for per-tensor and per-row scales); each
 * segment contributes s_g * sum((q - z_g) * x).
 *
 * Integer path (integer weights, rows and groups in whole blocks of 32):
 * x is quantized to int8 per block of 32 values, x ~ dx_b * x8. A block's
 * sum of q * x8 is an exact integer (AVX2: _mm256_maddubs_epi16 on the codes
 * and the int8 values, then _mm256_madd_epi16), so
 *   sum((q - z) x) = sum_b dx_b * (sum(q x8)_b - z * sum(x8)_b)
 * For uint8 the codes are first recentred to q - 128 (signed) and the product
 * taken as |q - 128| * (x8 * sign(q - 128)), which keeps every pair sum of
 * maddubs below 2^15; the 128 goes into the zero-point term. For uint4 the
 * 16 low nibbles of 16 bytes are the block's even elements and the high
 * nibbles its odd ones, so x8 is stored per block in that order (x8i) and no
 * nibble shuffling is needed.
 *
 * Float path (float weights, or shapes that are not whole blocks): the codes
 * are widened to int32, the zero point subtracted, converted to float and
 * multiplied-added with x.
 *
 * Matrix-vector (one token): rows are split across the pool, each row read
 * once. Matrix-matrix (prefill, batched scoring): a task takes 8 rows and
 * multiplies them with every token while they are in cache (the float path
 * dequantizes them once into per-thread scratch).
 *
 * On aarch64 the same kernels are NEON (kernels_neon.c): SDOT where the
 * target has the dotprod extension, SMULL + SADALP on plain ARMv8-A; the
 * integer block sums are the scalar twins' integers exactly.
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
/* AVX-VNNI (vpdpbusd: unsigned x signed bytes summed by 4 into int32) does in
 * one instruction what maddubs + madd do in two, without 16-bit saturation,
 * so uint8 codes need no recentring. Used inside the AVX2 functions. */
#if ELLM_KERN_AVX2 && defined(__AVXVNNI__)
#define ELLM_KERN_VNNI 1
#else
#define ELLM_KERN_VNNI 0
#endif
/* aarch64: NEON (SDOT with dotprod) in kernels_neon.c; ELLM_KERN_NEON. */
#include "model/kernels_neon.h"
#define ELLM_KERN_SIMD (ELLM_KERN_AVX2 || ELLM_KERN_NEON)
/* What the vectorised uint8 block sums subtract from the codes (the scalar
 * twin and NEON always use 128; the zero-point term takes the difference). */
#define U8_BIAS_SIMD (ELLM_KERN_VNNI ? 0 : 128)

#define MM_ROWS 8      /* rows dequantized per matrix-matrix task */
#define MV_ROWS 16     /* rows per matrix-vector task */

int ellm_kernels_have_simd(void) { return ELLM_KERN_SIMD; }

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

/* ---- integer blocks (int8 activations) -------------------------------------- */

/* sum_b dx_b * sum_i (q_i - bias) * x8_i over nb blocks of 32 starting at
 * element e of the row data (8 bits: bias 128, 4 bits: bias 0). */
static float blocks_u8_scalar(const uint8_t *q, const int8_t *x8, const float *dx, int64_t nb) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        /* Written as sum(q x) - 128 sum(x): GCC 12 at -O3 with AVX-VNNI
         * miscompiles the reduction of (q - 128) * x (wrong vpdpbusd use). */
        int32_t d = 0, sx = 0;
        for (int i = 0; i < ELLM_QBLOCK; i++) {
            d += (int32_t)q[b * ELLM_QBLOCK + i] * x8[b * ELLM_QBLOCK + i];
            sx += x8[b * ELLM_QBLOCK + i];
        }
        acc += dx[b] * (float)(d - 128 * sx);
    }
    return acc;
}

static float blocks_u4_scalar(const uint8_t *p, const int8_t *x8, const float *dx, int64_t nb) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int32_t d = 0;
        for (int i = 0; i < ELLM_QBLOCK / 2; i++) {
            uint8_t byte = p[b * (ELLM_QBLOCK / 2) + i];
            d += (byte & 15) * x8[b * ELLM_QBLOCK + 2 * i] + (byte >> 4) * x8[b * ELLM_QBLOCK + 2 * i + 1];
        }
        acc += dx[b] * (float)d;
    }
    return acc;
}

#if ELLM_KERN_AVX2
/* 8 int32 sums of (u - U8_BIAS_SIMD) * s over 32 byte pairs (u8 codes). */
static inline __m256i dot32_u8(__m256i u, __m256i s) {
#if ELLM_KERN_VNNI
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
    const __m256i w = _mm256_xor_si256(u, _mm256_set1_epi8((char)0x80)); /* q - 128, signed */
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(s, w)), _mm256_set1_epi16(1));
#endif
}

/* 8 int32 sums of c * s over 32 byte pairs, c in [0, 15]. */
static inline __m256i dot32_u4(__m256i c, __m256i s) {
#if ELLM_KERN_VNNI
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), c, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(c, s), _mm256_set1_epi16(1));
#endif
}

static float blocks_u8_avx2(const uint8_t *q, const int8_t *x8, const float *dx, int64_t nb) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i p0 = dot32_u8(_mm256_loadu_si256((const __m256i *)(q + b * 32)),
                              _mm256_loadu_si256((const __m256i *)(x8 + b * 32)));
        __m256i p1 = dot32_u8(_mm256_loadu_si256((const __m256i *)(q + b * 32 + 32)),
                              _mm256_loadu_si256((const __m256i *)(x8 + b * 32 + 32)));
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dx[b]), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(dx[b + 1]), a1);
    }
    for (; b < nb; b++) {
        __m256i p0 = dot32_u8(_mm256_loadu_si256((const __m256i *)(q + b * 32)),
                              _mm256_loadu_si256((const __m256i *)(x8 + b * 32)));
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dx[b]), a0);
    }
    return hsum256(_mm256_add_ps(a0, a1));
}

/* x8i: each block's int8 values reordered as (even elements, odd elements). */
static float blocks_u4_avx2(const uint8_t *p, const int8_t *x8i, const float *dx, int64_t nb) {
    const __m256i m = _mm256_set1_epi8(15);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        /* 32 bytes = two blocks: bytes 0-15 block b, 16-31 block b+1 */
        __m256i raw = _mm256_loadu_si256((const __m256i *)(p + b * 16));
        __m256i lo = _mm256_and_si256(raw, m), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m);
        __m256i c0 = _mm256_permute2x128_si256(lo, hi, 0x20), c1 = _mm256_permute2x128_si256(lo, hi, 0x31);
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(x8i + b * 32));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(x8i + b * 32 + 32));
        __m256i p0 = dot32_u4(c0, x0);
        __m256i p1 = dot32_u4(c1, x1);
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dx[b]), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(dx[b + 1]), a1);
    }
    for (; b < nb; b++) {
        __m128i raw = _mm_loadu_si128((const __m128i *)(p + b * 16));
        const __m128i m128 = _mm_set1_epi8(15);
        __m256i c0 = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m128), _mm_and_si128(raw, m128));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(x8i + b * 32));
        __m256i p0 = dot32_u4(c0, x0);
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dx[b]), a0);
    }
    return hsum256(_mm256_add_ps(a0, a1));
}

/* Four tokens against one row: the same sums as blocks_*_avx2 for each token
 * (same accumulators, same order, so results are bit-identical), with the
 * weight blocks loaded and prepared once for the four. */
static void blocks_u8_avx2_x4(const uint8_t *q, const int8_t *const x8[4], const float *const dx[4], int64_t nb,
                              float out[4]) {
    __m256 a0[4], a1[4];
    for (int t = 0; t < 4; t++) a0[t] = a1[t] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(q + b * 32));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(q + b * 32 + 32));
        for (int t = 0; t < 4; t++) {
            __m256i p0 = dot32_u8(w0, _mm256_loadu_si256((const __m256i *)(x8[t] + b * 32)));
            __m256i p1 = dot32_u8(w1, _mm256_loadu_si256((const __m256i *)(x8[t] + b * 32 + 32)));
            a0[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dx[t][b]), a0[t]);
            a1[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(dx[t][b + 1]), a1[t]);
        }
    }
    for (; b < nb; b++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(q + b * 32));
        for (int t = 0; t < 4; t++) {
            __m256i p0 = dot32_u8(w0, _mm256_loadu_si256((const __m256i *)(x8[t] + b * 32)));
            a0[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dx[t][b]), a0[t]);
        }
    }
    for (int t = 0; t < 4; t++) out[t] = hsum256(_mm256_add_ps(a0[t], a1[t]));
}

static void blocks_u4_avx2_x4(const uint8_t *p, const int8_t *const x8i[4], const float *const dx[4], int64_t nb,
                              float out[4]) {
    const __m256i m = _mm256_set1_epi8(15);
    __m256 a0[4], a1[4];
    for (int t = 0; t < 4; t++) a0[t] = a1[t] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i raw = _mm256_loadu_si256((const __m256i *)(p + b * 16));
        __m256i lo = _mm256_and_si256(raw, m), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m);
        __m256i c0 = _mm256_permute2x128_si256(lo, hi, 0x20), c1 = _mm256_permute2x128_si256(lo, hi, 0x31);
        for (int t = 0; t < 4; t++) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(x8i[t] + b * 32));
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(x8i[t] + b * 32 + 32));
            __m256i p0 = dot32_u4(c0, x0);
            __m256i p1 = dot32_u4(c1, x1);
            a0[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dx[t][b]), a0[t]);
            a1[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(dx[t][b + 1]), a1[t]);
        }
    }
    for (; b < nb; b++) {
        const __m128i m128 = _mm_set1_epi8(15);
        __m128i raw = _mm_loadu_si128((const __m128i *)(p + b * 16));
        __m256i c0 = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m128), _mm_and_si128(raw, m128));
        for (int t = 0; t < 4; t++) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(x8i[t] + b * 32));
            __m256i p0 = dot32_u4(c0, x0);
            a0[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dx[t][b]), a0[t]);
        }
    }
    for (int t = 0; t < 4; t++) out[t] = hsum256(_mm256_add_ps(a0[t], a1[t]));
}
#endif

/* ---- dispatch ------------------------------------------------------------- */

/* The vectorised twins of this build. */
#if ELLM_KERN_AVX2
#define seg_u8_simd seg_u8_avx2
#define seg_u4_simd seg_u4_avx2
#define dot_f32_simd dot_f32_avx2
#define dot4_f32_simd dot4_f32_avx2
#define deq_u8_simd deq_u8_avx2
#define deq_u4_simd deq_u4_avx2
#define blocks_u8_simd blocks_u8_avx2
#define blocks_u4_simd blocks_u4_avx2
#define blocks_u8_simd_x4 blocks_u8_avx2_x4
#define blocks_u4_simd_x4 blocks_u4_avx2_x4
#elif ELLM_KERN_NEON
#define seg_u8_simd ellm_seg_u8_neon
#define seg_u4_simd ellm_seg_u4_neon
#define dot_f32_simd ellm_dot_f32_neon
#define dot4_f32_simd ellm_dot4_f32_neon
#define deq_u8_simd ellm_deq_u8_neon
#define deq_u4_simd ellm_deq_u4_neon
#define blocks_u8_simd ellm_blocks_u8_neon
#define blocks_u4_simd ellm_blocks_u4_neon
#define blocks_u8_simd_x4 ellm_blocks_u8_neon_x4
#define blocks_u4_simd_x4 ellm_blocks_u4_neon_x4
#endif

static inline float seg_u8(const uint8_t *q, int z, const float *x, int64_t n, int scalar) {
#if ELLM_KERN_SIMD
    if (!scalar) return seg_u8_simd(q, z, x, n);
#endif
    (void)scalar;
    return seg_u8_scalar(q, z, x, n);
}

static inline float seg_u4(const uint8_t *p, uint64_t e, int z, const float *x, int64_t n, int scalar) {
#if ELLM_KERN_SIMD
    if (!scalar) return seg_u4_simd(p, e, z, x, n);
#endif
    (void)scalar;
    return seg_u4_scalar(p, e, z, x, n);
}

static inline float dot_f32(const float *a, const float *b, int64_t n, int scalar) {
#if ELLM_KERN_SIMD
    if (!scalar) return dot_f32_simd(a, b, n);
#endif
    (void)scalar;
    return dot_f32_scalar(a, b, n);
}

static inline void dot4_f32(const float *const w[4], const float *x, int64_t n, float out[4], int scalar) {
#if ELLM_KERN_SIMD
    if (!scalar) {
        dot4_f32_simd(w, x, n, out);
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

/* A group's share s * sum((q - z) x), from its block sum d (codes less
 * `bias`) and the activations' sum xs. One expression for every caller, so
 * that the one-token, four-token and general paths round alike. */
static inline float group_dot(float s, float d, int bias, int z, float xs) {
    return s * (d + (float)(bias - z) * xs);
}

/* sum_b dx_b * sum_i (code_i - bias) * x8_i over nb blocks from element e of
 * the weights; x8 in natural order, x8i in the uint4 order (the scalar twin
 * reads x8 only). */
static inline float blocks_dot(const ellm_qtensor *w, uint64_t e, const int8_t *x8, const int8_t *x8i,
                               const float *dx, int64_t nb, int scalar) {
#if ELLM_KERN_SIMD
    if (!scalar)
        return w->bits == 8 ? blocks_u8_simd(w->data + e, x8, dx, nb) : blocks_u4_simd(w->data + e / 2, x8i, dx, nb);
#endif
    (void)x8i, (void)scalar;
    return w->bits == 8 ? blocks_u8_scalar(w->data + e, x8, dx, nb) : blocks_u4_scalar(w->data + e / 2, x8, dx, nb);
}

static inline int u8_bias(int scalar) { return scalar ? 128 : U8_BIAS_SIMD; }

/* Row r against token t's quantized activations (integer path). */
static float row_dot_int(const ellm_qtensor *w, int64_t r, int64_t in, const ellm_qacts *qa, int t, int scalar) {
    const uint64_t G = w->qp.group_size, e0 = (uint64_t)r * (uint64_t)in;
    const int64_t nbr = in / ELLM_QBLOCK;
    const int8_t *x8 = qa->x8 + (size_t)t * (size_t)in;
    const int8_t *x8i = qa->x8i + (size_t)t * (size_t)in;
    const float *dx = qa->dx + (size_t)t * (size_t)nbr, *dxs = qa->dxs + (size_t)t * (size_t)nbr;
    const int bias = w->bits == 8 ? u8_bias(scalar) : 0;
    float acc = 0.0f;
    for (uint64_t e = e0, end = e0 + (uint64_t)in; e < end;) {
        uint64_t g = e / G;
        uint64_t seg_end = ELLM_MIN((g + 1) * G, end);
        int64_t b0 = (int64_t)(e - e0) / ELLM_QBLOCK, nb = (int64_t)(seg_end - e) / ELLM_QBLOCK;
        float d = blocks_dot(w, e, x8 + b0 * 32, x8i + b0 * 32, dx + b0, nb, scalar);
        float xs;
        if (nb == nbr) {
            xs = qa->xsum[t];
        } else {
            xs = 0.0f;
            for (int64_t b = b0; b < b0 + nb; b++) xs += dxs[b];
        }
        acc += group_dot(w->qp.scales[g], d, bias, (int)w->qp.zeros[g], xs);
        e = seg_end;
    }
    return acc;
}

ellm_status ellm_quantize_acts(ellm_qacts *qa, const float *x, int n_tok, int64_t in, ellm_error *err) {
    size_t n = (size_t)n_tok * (size_t)in, nb = n / ELLM_QBLOCK;
    if (n > qa->cap) {
        ellm_qacts_free(qa);
        qa->x8 = ellm_aligned_alloc(n, err);
        qa->x8i = ellm_aligned_alloc(n, err);
        qa->dx = ellm_aligned_alloc(nb * sizeof(float), err);
        qa->dxs = ellm_aligned_alloc(nb * sizeof(float), err);
        qa->xsum = ellm_aligned_alloc((size_t)n_tok * sizeof(float), err);
        if (!qa->x8 || !qa->x8i || !qa->dx || !qa->dxs || !qa->xsum) {
            ellm_qacts_free(qa);
            return ELLM_E_NOMEM;
        }
        qa->cap = n;
    }
    qa->in = in;
    for (size_t b = 0; b < nb; b++) {
        const float *v = x + b * ELLM_QBLOCK;
        float amax = 0.0f;
        for (int i = 0; i < ELLM_QBLOCK; i++) amax = fmaxf(amax, fabsf(v[i]));
        const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        int8_t *q = qa->x8 + b * ELLM_QBLOCK, *qi = qa->x8i + b * ELLM_QBLOCK;
        int32_t sum = 0;
        for (int i = 0; i < ELLM_QBLOCK; i++) {
            q[i] = (int8_t)lrintf(v[i] * id);
            sum += q[i];
        }
        for (int i = 0; i < ELLM_QBLOCK / 2; i++) {
            qi[i] = q[2 * i];
            qi[ELLM_QBLOCK / 2 + i] = q[2 * i + 1];
        }
        qa->dx[b] = d;
        qa->dxs[b] = d * (float)sum;
    }
    const size_t nbr = (size_t)in / ELLM_QBLOCK;
    for (int t = 0; t < n_tok; t++) {
        float s = 0.0f;
        for (size_t b = 0; b < nbr; b++) s += qa->dxs[(size_t)t * nbr + b];
        qa->xsum[t] = s;
    }
    return ELLM_OK;
}

void ellm_qacts_free(ellm_qacts *qa) {
    free(qa->x8);
    free(qa->x8i);
    free(qa->dx);
    free(qa->dxs);
    free(qa->xsum);
    memset(qa, 0, sizeof *qa);
}

int ellm_matmul_uses_int8(const ellm_kernels *k, const ellm_qtensor *w) {
    const int64_t in = w->shape[w->n_dims - 1];
    return !k->exact && w->bits != 32 && in % ELLM_QBLOCK == 0 && w->qp.group_size % ELLM_QBLOCK == 0;
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
#if ELLM_KERN_SIMD
        if (!scalar) {
            if (w->bits == 8) deq_u8_simd(w->data + e, z, s, n, o);
            else deq_u4_simd(w->data, e, z, s, n, o);
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

/* Rows [r0, r1) for tokens t..t+3 when a row is one quantization group
 * (per-tensor and per-row scales): each weight block is prepared once for
 * four tokens. Returns 0 when this shape needs the general path. */
static int rows_x4(const mm_job *j, int64_t r0, int64_t r1, int t) {
#if ELLM_KERN_SIMD
    const ellm_qtensor *w = j->w;
    const ellm_qacts *qa = &j->k->qa;
    const int64_t in = j->in, nbr = in / ELLM_QBLOCK;
    const uint64_t G = w->qp.group_size;
    if (j->k->force_scalar || (G % (uint64_t)in != 0 && G != (uint64_t)in)) return 0;
    const int8_t *xs[4];
    const float *dx[4];
    for (int i = 0; i < 4; i++) {
        xs[i] = (w->bits == 8 ? qa->x8 : qa->x8i) + (size_t)(t + i) * (size_t)in;
        dx[i] = qa->dx + (size_t)(t + i) * (size_t)nbr;
    }
    const int bias = w->bits == 8 ? U8_BIAS_SIMD : 0;
    for (int64_t r = r0; r < r1; r++) {
        const uint64_t e = (uint64_t)(j->row0 + r) * (uint64_t)in, g = e / G;
        float d[4];
        if (w->bits == 8) blocks_u8_simd_x4(w->data + e, xs, dx, nbr, d);
        else blocks_u4_simd_x4(w->data + e / 2, xs, dx, nbr, d);
        for (int i = 0; i < 4; i++)
            j->y[(size_t)(t + i) * (size_t)j->y_stride + (size_t)r] =
                group_dot(w->qp.scales[g], d[i], bias, (int)w->qp.zeros[g], qa->xsum[t + i]);
    }
    return 1;
#else
    (void)j, (void)r0, (void)r1, (void)t;
    return 0;
#endif
}

/* Rows [r0, r1) for token t when a row is one quantization group: the
 * segment bookkeeping of row_dot_int (a division, group bounds) done once
 * for all rows instead of per row. Returns 0 when the shape needs it. */
static int rows_x1(const mm_job *j, int64_t r0, int64_t r1, int t) {
    const ellm_qtensor *w = j->w;
    const ellm_qacts *qa = &j->k->qa;
    const int64_t in = j->in, nbr = in / ELLM_QBLOCK;
    const uint64_t G = w->qp.group_size;
    if (G % (uint64_t)in != 0) return 0;
    const int scalar = j->k->force_scalar, bias = w->bits == 8 ? u8_bias(scalar) : 0;
    const int8_t *x8 = qa->x8 + (size_t)t * (size_t)in, *x8i = qa->x8i + (size_t)t * (size_t)in;
    const float *dx = qa->dx + (size_t)t * (size_t)nbr, xs = qa->xsum[t];
    float *y = j->y + (size_t)t * (size_t)j->y_stride;
    for (int64_t r = r0; r < r1; r++) {
        const uint64_t e = (uint64_t)(j->row0 + r) * (uint64_t)in, g = e / G;
        y[r] = group_dot(w->qp.scales[g], blocks_dot(w, e, x8, x8i, dx, nbr, scalar), bias, (int)w->qp.zeros[g], xs);
    }
    return 1;
}

/* Integer path, any number of tokens: 8 rows stay in cache for all tokens. */
static void int_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const mm_job *j = ctx;
    int64_t r0 = task * MM_ROWS, r1 = ELLM_MIN(r0 + MM_ROWS, j->n_rows);
    int t = 0;
    for (; t + 4 <= j->n_tok; t += 4)
        if (!rows_x4(j, r0, r1, t)) break;
    for (; t < j->n_tok; t++) {
        if (rows_x1(j, r0, r1, t)) continue;
        float *yt = j->y + (size_t)t * (size_t)j->y_stride;
        for (int64_t r = r0; r < r1; r++)
            yt[r] = row_dot_int(j->w, j->row0 + r, j->in, &j->k->qa, t, j->k->force_scalar);
    }
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

/* Runs a contiguous range of row tasks: the pool hands out a few chunks per
 * thread rather than one 8-row task at a time, so threads do not trade the
 * task counter and neighbouring output cache lines after every 8 rows. */
typedef struct chunk_job {
    ellm_task_fn fn;
    void *ctx;
    int64_t n_tasks, per_chunk;
} chunk_job;

static void chunk_task(void *ctx, int64_t chunk, int thread) {
    const chunk_job *c = ctx;
    int64_t t0 = chunk * c->per_chunk, t1 = ELLM_MIN(t0 + c->per_chunk, c->n_tasks);
    for (int64_t t = t0; t < t1; t++) c->fn(c->ctx, t, thread);
}

void ellm_kernels_run(ellm_kernels *k, int64_t n_tasks, uint64_t work, ellm_task_fn fn, void *ctx) {
    /* Handing a small product to other threads costs more than it saves. */
    int n_threads = ellm_pool_threads(k->pool);
    if (work < ELLM_PARALLEL_MIN_WORK || n_threads == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    /* 4 chunks per thread keep the load even when a thread is late. */
    int64_t n_chunks = ELLM_MIN(n_tasks, (int64_t)n_threads * 4);
    chunk_job c = {fn, ctx, n_tasks, (n_tasks + n_chunks - 1) / n_chunks};
    ellm_pool_run(k->pool, (n_tasks + c.per_chunk - 1) / c.per_chunk, chunk_task, &c);
}

/* Several products of the same activations in one hand-off to the pool. */
typedef struct multi_job {
    mm_job jobs[ELLM_MATMUL_MAX_OUTS];
    ellm_task_fn fns[ELLM_MATMUL_MAX_OUTS];
    int64_t first[ELLM_MATMUL_MAX_OUTS + 1]; /* first task of each product */
    int n;
} multi_job;

static void multi_task(void *ctx, int64_t task, int thread) {
    multi_job *mj = ctx;
    int i = 0;
    while (task >= mj->first[i + 1]) i++;
    mj->fns[i](&mj->jobs[i], task - mj->first[i], thread);
}

ellm_status ellm_matmul_multi(ellm_kernels *k, const ellm_mm_out *outs, int n_outs, const float *x, int n_tok,
                              ellm_error *err) {
    if (n_outs < 1 || n_outs > ELLM_MATMUL_MAX_OUTS)
        return ellm_fail(err, ELLM_E_INTERNAL, "matmul: %d products in one call", n_outs);
    multi_job mj;
    mj.n = n_outs;
    mj.first[0] = 0;
    uint64_t work = 0;
    int quantized = 0;
    const int64_t in = outs[0].w->shape[outs[0].w->n_dims - 1];
    for (int i = 0; i < n_outs; i++) {
        const ellm_mm_out *o = &outs[i];
        if (o->w->shape[o->w->n_dims - 1] != in)
            return ellm_fail(err, ELLM_E_INTERNAL, "matmul: products of different input sizes in one call");
        mj.jobs[i] = (mm_job){k, o->w, o->row0, o->n_rows, in, x, n_tok, o->y, o->y_stride};
        int64_t per;
        if (ellm_matmul_uses_int8(k, o->w)) {
            if (!quantized) {
                ellm_status st = ellm_quantize_acts(&k->qa, x, n_tok, in, err);
                if (st) return st;
                quantized = 1;
            }
            mj.fns[i] = int_task, per = MM_ROWS;
        } else if (n_tok == 1) {
            mj.fns[i] = matvec_task, per = MV_ROWS;
        } else {
            mj.fns[i] = matmul_task, per = MM_ROWS;
        }
        mj.first[i + 1] = mj.first[i] + (o->n_rows + per - 1) / per;
        work += (uint64_t)o->n_rows * (uint64_t)in * (uint64_t)n_tok;
    }
    ellm_kernels_run(k, mj.first[n_outs], work, multi_task, &mj);
    return ELLM_OK;
}

ellm_status ellm_matmul(ellm_kernels *k, const ellm_qtensor *w, int64_t row0, int64_t n_rows, const float *x,
                        int n_tok, float *y, int64_t y_stride, ellm_error *err) {
    ellm_mm_out o = {w, row0, n_rows, y, y_stride};
    return ellm_matmul_multi(k, &o, 1, x, n_tok, err);
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
    k->force_scalar = force_scalar || !ELLM_KERN_SIMD;
    k->scratch_floats = (size_t)MM_ROWS * (size_t)max_in;
    k->scratch = ellm_aligned_alloc((size_t)k->n_threads * k->scratch_floats * sizeof(float), err);
    return k->scratch ? ELLM_OK : ELLM_E_NOMEM;
}

void ellm_kernels_free(ellm_kernels *k) {
    free(k->scratch);
    k->scratch = NULL;
    ellm_qacts_free(&k->qa);
}
