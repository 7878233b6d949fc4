/*
 * kernels_neon.c - ARM NEON versions of the hot kernels of kernels.c (see
 * kernels_neon.h for what each computes and kernels.c for how they are used).
 *
 * Integer blocks: a block of 32 uint8 codes is recentred to q - 128 (an int8,
 * by flipping the top bit) and multiplied with the int8 activations as
 * signed x signed bytes, which is exact for every int8 pair:
 *   - ARMv8.2-A dotprod: SDOT sums four byte products into each int32 lane,
 *     two SDOTs per block;
 *   - ARMv8.0-A: SMULL/SMULL2 give int16 products (|p| <= 2^14) and SADALP
 *     adds their pairs into int32 lanes.
 * uint4 codes (0..15) are already valid int8 and need no recentring; the low
 * nibbles of a block's 16 bytes are its even elements and the high nibbles
 * its odd ones, matching the x8i order of the activations, so no shuffle is
 * needed. Without dotprod, four products of a code and an int8 (|p| <= 1920)
 * share an int16 lane (SMULL + 3 SMLAL) before SADALP.
 * Each block's four int32 lanes are converted to float (exact: |lane| < 2^24)
 * and multiplied-added with the block's scale, alternating two accumulators.
 */
#include "model/kernels_neon.h"

#if ELLM_KERN_NEON
#include <arm_neon.h>

/* ---- integer blocks ----------------------------------------------------- */

/* A block of 32 uint8 codes as q - 128 in two int8 vectors. */
typedef struct u8_block {
    int8x16_t w0, w1;
} u8_block;

static inline u8_block load_u8(const uint8_t *q) {
    const uint8x16_t top = vdupq_n_u8(0x80);
    return (u8_block){vreinterpretq_s8_u8(veorq_u8(vld1q_u8(q), top)),
                      vreinterpretq_s8_u8(veorq_u8(vld1q_u8(q + 16), top))};
}

/* A block of 32 uint4 codes from 16 packed bytes: even elements (low
 * nibbles), odd elements (high nibbles). */
typedef struct u4_block {
    int8x16_t lo, hi;
} u4_block;

static inline u4_block load_u4(const uint8_t *p) {
    uint8x16_t raw = vld1q_u8(p);
    return (u4_block){vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(15))), vreinterpretq_s8_u8(vshrq_n_u8(raw, 4))};
}

/* Four int32 lanes summing to sum_i (q_i - 128) * x_i over the block. */
static inline int32x4_t dot32_u8(u8_block w, const int8_t *x) {
    int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
#if ELLM_KERN_DOTPROD
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w.w0, x0), w.w1, x1);
#else
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w.w0), vget_low_s8(x0)));
    s = vpadalq_s16(s, vmull_high_s8(w.w0, x0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w.w1), vget_low_s8(x1)));
    return vpadalq_s16(s, vmull_high_s8(w.w1, x1));
#endif
}

/* Four int32 lanes summing to sum_i c_i * x_i over the block (x in x8i order). */
static inline int32x4_t dot32_u4(u4_block c, const int8_t *x) {
    int8x16_t xe = vld1q_s8(x), xo = vld1q_s8(x + 16);
#if ELLM_KERN_DOTPROD
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), c.lo, xe), c.hi, xo);
#else
    int16x8_t p = vmull_s8(vget_low_s8(c.lo), vget_low_s8(xe));
    p = vmlal_high_s8(p, c.lo, xe);
    p = vmlal_s8(p, vget_low_s8(c.hi), vget_low_s8(xo));
    p = vmlal_high_s8(p, c.hi, xo);
    return vpaddlq_s16(p);
#endif
}

static inline float32x4_t scale_add(float32x4_t acc, int32x4_t sum, float d) {
    return vfmaq_n_f32(acc, vcvtq_f32_s32(sum), d);
}

float ellm_blocks_u8_neon(const uint8_t *q, const int8_t *x8, const float *dx, int64_t nb) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        a0 = scale_add(a0, dot32_u8(load_u8(q + b * 32), x8 + b * 32), dx[b]);
        a1 = scale_add(a1, dot32_u8(load_u8(q + b * 32 + 32), x8 + b * 32 + 32), dx[b + 1]);
    }
    if (b < nb) a0 = scale_add(a0, dot32_u8(load_u8(q + b * 32), x8 + b * 32), dx[b]);
    return vaddvq_f32(vaddq_f32(a0, a1));
}

float ellm_blocks_u4_neon(const uint8_t *p, const int8_t *x8i, const float *dx, int64_t nb) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        a0 = scale_add(a0, dot32_u4(load_u4(p + b * 16), x8i + b * 32), dx[b]);
        a1 = scale_add(a1, dot32_u4(load_u4(p + b * 16 + 16), x8i + b * 32 + 32), dx[b + 1]);
    }
    if (b < nb) a0 = scale_add(a0, dot32_u4(load_u4(p + b * 16), x8i + b * 32), dx[b]);
    return vaddvq_f32(vaddq_f32(a0, a1));
}

/* Four tokens against one row: per token the same operations in the same
 * order as the one-token functions (bit-identical results), with each weight
 * block loaded and prepared once for the four. */
void ellm_blocks_u8_neon_x4(const uint8_t *q, const int8_t *const x8[4], const float *const dx[4], int64_t nb,
                            float out[4]) {
    float32x4_t a0[4], a1[4];
    for (int t = 0; t < 4; t++) a0[t] = a1[t] = vdupq_n_f32(0.0f);
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        u8_block w0 = load_u8(q + b * 32), w1 = load_u8(q + b * 32 + 32);
        for (int t = 0; t < 4; t++) {
            a0[t] = scale_add(a0[t], dot32_u8(w0, x8[t] + b * 32), dx[t][b]);
            a1[t] = scale_add(a1[t], dot32_u8(w1, x8[t] + b * 32 + 32), dx[t][b + 1]);
        }
    }
    if (b < nb) {
        u8_block w0 = load_u8(q + b * 32);
        for (int t = 0; t < 4; t++) a0[t] = scale_add(a0[t], dot32_u8(w0, x8[t] + b * 32), dx[t][b]);
    }
    for (int t = 0; t < 4; t++) out[t] = vaddvq_f32(vaddq_f32(a0[t], a1[t]));
}

void ellm_blocks_u4_neon_x4(const uint8_t *p, const int8_t *const x8i[4], const float *const dx[4], int64_t nb,
                            float out[4]) {
    float32x4_t a0[4], a1[4];
    for (int t = 0; t < 4; t++) a0[t] = a1[t] = vdupq_n_f32(0.0f);
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        u4_block c0 = load_u4(p + b * 16), c1 = load_u4(p + b * 16 + 16);
        for (int t = 0; t < 4; t++) {
            a0[t] = scale_add(a0[t], dot32_u4(c0, x8i[t] + b * 32), dx[t][b]);
            a1[t] = scale_add(a1[t], dot32_u4(c1, x8i[t] + b * 32 + 32), dx[t][b + 1]);
        }
    }
    if (b < nb) {
        u4_block c0 = load_u4(p + b * 16);
        for (int t = 0; t < 4; t++) a0[t] = scale_add(a0[t], dot32_u4(c0, x8i[t] + b * 32), dx[t][b]);
    }
    for (int t = 0; t < 4; t++) out[t] = vaddvq_f32(vaddq_f32(a0[t], a1[t]));
}

/* ---- float segments ------------------------------------------------------ */

/* Element e of packed uint4 codes (element 2k: low nibble of byte k). */
static inline int u4_at(const uint8_t *p, uint64_t e) { return (p[e >> 1] >> ((e & 1) * 4)) & 15; }

/* 16 codes minus z as four float vectors (exact: small integers). */
static inline void cvt16(uint8x16_t c, int32x4_t zv, float32x4_t f[4]) {
    uint16x8_t lo = vmovl_u8(vget_low_u8(c)), hi = vmovl_high_u8(c);
    f[0] = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(lo))), zv));
    f[1] = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vmovl_high_u16(lo)), zv));
    f[2] = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(hi))), zv));
    f[3] = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vmovl_high_u16(hi)), zv));
}

/* 16 packed bytes -> 32 codes in element order (lo0 hi0 lo1 hi1 ...). */
static inline void unpack32(const uint8_t *p, uint8x16_t *c0, uint8x16_t *c1) {
    uint8x16_t raw = vld1q_u8(p);
    uint8x16_t lo = vandq_u8(raw, vdupq_n_u8(15)), hi = vshrq_n_u8(raw, 4);
    *c0 = vzip1q_u8(lo, hi);
    *c1 = vzip2q_u8(lo, hi);
}

/* acc[k] += f[k] * x[4k..4k+3] */
static inline void fma16(float32x4_t acc[4], const float32x4_t f[4], const float *x) {
    for (int k = 0; k < 4; k++) acc[k] = vfmaq_f32(acc[k], f[k], vld1q_f32(x + 4 * k));
}

static inline float hsum4x4(const float32x4_t a[4]) {
    return vaddvq_f32(vaddq_f32(vaddq_f32(a[0], a[1]), vaddq_f32(a[2], a[3])));
}

float ellm_seg_u8_neon(const uint8_t *q, int z, const float *x, int64_t n) {
    const int32x4_t zv = vdupq_n_s32(z);
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t f[4];
        cvt16(vld1q_u8(q + i), zv, f);
        fma16(acc, f, x + i);
    }
    float s = hsum4x4(acc);
    for (; i < n; i++) s += (float)((int)q[i] - z) * x[i];
    return s;
}

float ellm_seg_u4_neon(const uint8_t *packed, uint64_t e, int z, const float *x, int64_t n) {
    float s = 0.0f;
    if ((e & 1) && n > 0) { /* peel to an even element: a byte boundary */
        s += (float)(u4_at(packed, e) - z) * x[0];
        e++, x++, n--;
    }
    const uint8_t *p = packed + (e >> 1);
    const int32x4_t zv = vdupq_n_s32(z);
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint8x16_t c0, c1;
        unpack32(p + i / 2, &c0, &c1);
        float32x4_t f[4];
        cvt16(c0, zv, f);
        fma16(acc, f, x + i);
        cvt16(c1, zv, f);
        fma16(acc, f, x + i + 16);
    }
    s += hsum4x4(acc);
    for (; i < n; i++) s += (float)(u4_at(p, (uint64_t)i) - z) * x[i];
    return s;
}

float ellm_dot_f32_neon(const float *a, const float *b, int64_t n) {
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++) acc[k] = vfmaq_f32(acc[k], vld1q_f32(a + i + 4 * k), vld1q_f32(b + i + 4 * k));
    for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], vld1q_f32(a + i), vld1q_f32(b + i));
    float s = hsum4x4(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Four rows against one vector: x is loaded once for four products; two
 * accumulators per row keep eight FMA chains in flight. */
void ellm_dot4_f32_neon(const float *const w[4], const float *x, int64_t n, float out[4]) {
    float32x4_t a[4], b[4];
    for (int r = 0; r < 4; r++) a[r] = b[r] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4);
        for (int r = 0; r < 4; r++) {
            a[r] = vfmaq_f32(a[r], vld1q_f32(w[r] + i), x0);
            b[r] = vfmaq_f32(b[r], vld1q_f32(w[r] + i + 4), x1);
        }
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t x0 = vld1q_f32(x + i);
        for (int r = 0; r < 4; r++) a[r] = vfmaq_f32(a[r], vld1q_f32(w[r] + i), x0);
    }
    for (int r = 0; r < 4; r++) out[r] = vaddvq_f32(vaddq_f32(a[r], b[r]));
    for (; i < n; i++)
        for (int r = 0; r < 4; r++) out[r] += w[r][i] * x[i];
}

/* ---- dequantization -------------------------------------------------------- */

static inline void store16(float *out, const float32x4_t f[4], float s) {
    for (int k = 0; k < 4; k++) vst1q_f32(out + 4 * k, vmulq_n_f32(f[k], s));
}

void ellm_deq_u8_neon(const uint8_t *q, int z, float s, int64_t n, float *out) {
    const int32x4_t zv = vdupq_n_s32(z);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t f[4];
        cvt16(vld1q_u8(q + i), zv, f);
        store16(out + i, f, s);
    }
    for (; i < n; i++) out[i] = s * (float)((int)q[i] - z);
}

void ellm_deq_u4_neon(const uint8_t *packed, uint64_t e, int z, float s, int64_t n, float *out) {
    if ((e & 1) && n > 0) {
        *out++ = s * (float)(u4_at(packed, e) - z);
        e++, n--;
    }
    const uint8_t *p = packed + (e >> 1);
    const int32x4_t zv = vdupq_n_s32(z);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint8x16_t c0, c1;
        unpack32(p + i / 2, &c0, &c1);
        float32x4_t f[4];
        cvt16(c0, zv, f);
        store16(out + i, f, s);
        cvt16(c1, zv, f);
        store16(out + i + 16, f, s);
    }
    for (; i < n; i++) out[i] = s * (float)(u4_at(p, (uint64_t)i) - z);
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int ellm_kernels_neon_not_built;
#endif
