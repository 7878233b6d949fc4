/*
 * kernels_neon.h - the ARM NEON twins of the vectorised kernels in kernels.c
 * (private to src/model; kernels.c dispatches to them).
 *
 * Built when the target is aarch64 with NEON (every 64-bit ARM core) and the
 * build is not scalar-only. With __ARM_FEATURE_DOTPROD (ARMv8.2-A+dotprod:
 * Cortex-A55/A76 and later, Apple M1, Graviton2) the integer block sums use
 * SDOT; otherwise they widen with SMULL/SMLAL and add pairs with SADALP.
 * Both give exactly the integers of the scalar twins.
 *
 * The functions mean what their scalar twins in kernels.c mean:
 *   blocks_*   sum_b dx[b] * sum_i (code_i - bias) * x8_i over nb blocks of
 *              32; bias 128 for uint8 (as the scalar twin), 0 for uint4,
 *              whose activations come in the x8i order (even, then odd
 *              elements of each block)
 *   *_x4       the same for four activation vectors, each result bit-equal
 *              to the one-vector function's
 *   seg_*      float sum (code_i - z) * x_i;   dot_f32 / dot4_f32: float dots
 *   deq_*      out_i = s * (code_i - z)  (bit-equal to the scalar twins)
 */
#ifndef ELLM_MODEL_KERNELS_NEON_H
#define ELLM_MODEL_KERNELS_NEON_H

#include <stdint.h>

#if defined(__aarch64__) && defined(__ARM_NEON) && !defined(ELLM_FORCE_SCALAR)
#define ELLM_KERN_NEON 1
#else
#define ELLM_KERN_NEON 0
#endif
#if ELLM_KERN_NEON && defined(__ARM_FEATURE_DOTPROD)
#define ELLM_KERN_DOTPROD 1
#else
#define ELLM_KERN_DOTPROD 0
#endif

#if ELLM_KERN_NEON
float ellm_blocks_u8_neon(const uint8_t *q, const int8_t *x8, const float *dx, int64_t nb);
float ellm_blocks_u4_neon(const uint8_t *p, const int8_t *x8i, const float *dx, int64_t nb);
void ellm_blocks_u8_neon_x4(const uint8_t *q, const int8_t *const x8[4], const float *const dx[4], int64_t nb,
                            float out[4]);
void ellm_blocks_u4_neon_x4(const uint8_t *p, const int8_t *const x8i[4], const float *const dx[4], int64_t nb,
                            float out[4]);
float ellm_seg_u8_neon(const uint8_t *q, int z, const float *x, int64_t n);
float ellm_seg_u4_neon(const uint8_t *packed, uint64_t e, int z, const float *x, int64_t n);
float ellm_dot_f32_neon(const float *a, const float *b, int64_t n);
void ellm_dot4_f32_neon(const float *const w[4], const float *x, int64_t n, float out[4]);
void ellm_deq_u8_neon(const uint8_t *q, int z, float s, int64_t n, float *out);
void ellm_deq_u4_neon(const uint8_t *packed, uint64_t e, int z, float s, int64_t n, float *out);
#endif

#endif
