/*
 * quant.h - per-tensor mixed quantization to uint8/uint4 and the in-memory
 * quantized tensor the kernels consume. Formulas: docs/QUANTIZATION.md.
 *
 * Every scheme dequantizes as  w ~= s * (q - z)  with q in [0, 2^b - 1]:
 *   unsigned    (single-sign tensor)  z = 0,  s = m / (2^b - 1), m = the
 *               value of largest magnitude (so s < 0 for a non-positive tensor)
 *   symmetric                         z = 2^(b-1),  s = max|w| / (2^(b-1) - 1)
 *   asymmetric                        s = (max - min) / (2^b - 1),
 *                                     z = clamp(round(-min / s), 0, 2^b - 1)
 * Rounding is round-to-nearest (half away from zero); |w - s(q - z)| <= |s|/2.
 */
#ifndef ELLM_QUANT_H
#define ELLM_QUANT_H

#include <stdint.h>

#include "entrollm.h"

/* Quantization parameters of one tensor. Groups are runs of group_size
 * consecutive elements in row-major order: the whole tensor (tensor
 * granularity), one row (row granularity: group_size = row length) or G. */
typedef struct ellm_qparams {
    ellm_scheme scheme;
    int bits;                  /* 8 or 4 */
    ellm_granularity granularity;
    uint64_t group_size;
    uint64_t n_groups;
    float *scales;             /* n_groups */
    uint8_t *zeros;            /* n_groups zero points (codes) */
} ellm_qparams;

/* The paper's rule: tensors whose values share one sign (all >= 0 or all
 * <= 0) are quantized unsigned; mixed-sign tensors asymmetric. */
ellm_scheme ellm_quant_choose_scheme(const float *w, uint64_t n);

/* Group size for a granularity: tensor -> n, row -> last dimension, group -> G. */
uint64_t ellm_quant_group_size(ellm_granularity g, uint32_t group_size, uint64_t n, uint64_t row_len);

/* Computes the parameters (allocates scales/zeros) and the codes, one byte
 * per element (unpacked). Non-finite weights are an error naming `what`. */
ellm_status ellm_quantize(const float *w, uint64_t n, uint64_t row_len, ellm_scheme scheme, int bits,
                          ellm_granularity gran, uint32_t group_size, const char *what,
                          ellm_qparams *qp, uint8_t *codes, ellm_error *err);
void ellm_qparams_free(ellm_qparams *qp);

/* Dequantizes codes (unpacked, one per byte) back to floats. */
void ellm_dequantize(const ellm_qparams *qp, const uint8_t *codes, uint64_t n, float *out);

/* Packs unpacked 4-bit codes two per byte (element 2k low nibble) and back. */
void ellm_pack_u4(const uint8_t *codes, uint64_t n, uint8_t *packed);
void ellm_unpack_u4(const uint8_t *packed, uint64_t n, uint8_t *codes);

/* A tensor held in memory for inference: integer codes in the decoder's
 * output layout (bits 8: a byte each; bits 4: packed) with their scales, or
 * plain float32 when bits == 32. */
typedef struct ellm_qtensor {
    const char *name;
    int n_dims;
    int64_t shape[4];
    uint64_t n;
    int bits;                  /* 8, 4 or 32 */
    ellm_qparams qp;           /* unused when bits == 32 */
    uint8_t *data;             /* codes, or float32 values when bits == 32 */
    int owns_data;
} ellm_qtensor;

/* Element i of a quantized tensor as float (slow; for tests and exports). */
float ellm_qtensor_get(const ellm_qtensor *t, uint64_t i);
/* Dequantizes rows [row0, row0+n_rows) of a 2-D tensor into out. */
void ellm_qtensor_rows_f32(const ellm_qtensor *t, int64_t row0, int64_t n_rows, float *out);
void ellm_qtensor_free(ellm_qtensor *t);

#endif /* ELLM_QUANT_H */
