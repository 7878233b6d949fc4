/*
 * quant.c - uint8/uint4 quantization (see quant.h and docs/QUANTIZATION.md).
 */
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

const char *ellm_scheme_name(ellm_scheme s) {
    switch (s) {
    case ELLM_SCHEME_AUTO: return "auto";
    case ELLM_SCHEME_UNSIGNED: return "unsigned";
    case ELLM_SCHEME_SYMMETRIC: return "symmetric";
    case ELLM_SCHEME_ASYMMETRIC: return "asymmetric";
    case ELLM_SCHEME_FLOAT: return "float";
    }
    return "unknown";
}

const char *ellm_coder_name(ellm_coder c) {
    switch (c) {
    case ELLM_CODER_AUTO: return "auto";
    case ELLM_CODER_RAW: return "raw";
    case ELLM_CODER_HUFFMAN: return "huffman";
    case ELLM_CODER_RANS: return "rans";
    }
    return "unknown";
}

ellm_scheme ellm_quant_choose_scheme(const float *w, uint64_t n) {
    bool has_pos = false, has_neg = false;
    for (uint64_t i = 0; i < n && !(has_pos && has_neg); i++) {
        has_pos |= w[i] > 0.0f;
        has_neg |= w[i] < 0.0f;
    }
    return (has_pos && has_neg) ? ELLM_SCHEME_ASYMMETRIC : ELLM_SCHEME_UNSIGNED;
}

uint64_t ellm_quant_group_size(ellm_granularity g, uint32_t group_size, uint64_t n, uint64_t row_len) {
    switch (g) {
    case ELLM_GRAN_ROW: return row_len ? row_len : n;
    case ELLM_GRAN_GROUP: return group_size ? group_size : n;
    case ELLM_GRAN_TENSOR: break;
    }
    return n;
}

/* Round half away from zero, as the formulas in docs/QUANTIZATION.md say. */
static inline long round_code(float x) { return lroundf(x); }

/* Scale and zero point of one group for the given scheme. */
static void group_params(const float *w, uint64_t n, ellm_scheme scheme, int bits, float *scale,
                         uint8_t *zero) {
    const int qmax = (1 << bits) - 1;
    float lo = w[0], hi = w[0];
    for (uint64_t i = 1; i < n; i++) {
        lo = fminf(lo, w[i]);
        hi = fmaxf(hi, w[i]);
    }
    float s = 0.0f;
    int z = 0;
    switch (scheme) {
    case ELLM_SCHEME_UNSIGNED: {
        /* The value of largest magnitude maps to qmax; its sign is the scale's,
         * so an all-non-positive group works with w = s*q, s < 0. Any value
         * of the other sign (a mixed group under a forced scheme) clamps to 0. */
        float m = fabsf(hi) >= fabsf(lo) ? hi : lo;
        s = m / (float)qmax;
        z = 0;
        break;
    }
    case ELLM_SCHEME_SYMMETRIC: {
        float m = fmaxf(fabsf(lo), fabsf(hi));
        s = m / (float)((1 << (bits - 1)) - 1);
        z = 1 << (bits - 1);
        break;
    }
    default: { /* asymmetric: the range [min(lo,0), max(hi,0)] so zero is exact */
        lo = fminf(lo, 0.0f);
        hi = fmaxf(hi, 0.0f);
        s = (hi - lo) / (float)qmax;
        z = s > 0 ? (int)round_code(-lo / s) : 0;
        if (z < 0) z = 0;
        if (z > qmax) z = qmax;
        break;
    }
    }
    *scale = s;
    *zero = (uint8_t)z;
}

static void quantize_group(const float *w, uint64_t n, float s, int z, int bits, uint8_t *codes) {
    const long qmax = (1L << bits) - 1;
    if (s == 0.0f) { /* all-zero group: every code is the zero point */
        memset(codes, z, n);
        return;
    }
    const float inv = 1.0f / s;
    for (uint64_t i = 0; i < n; i++) {
        long q = round_code(w[i] * inv) + z;
        codes[i] = (uint8_t)(q < 0 ? 0 : q > qmax ? qmax : q);
    }
}

ellm_status ellm_quantize(const float *w, uint64_t n, uint64_t row_len, ellm_scheme scheme, int bits,
                          ellm_granularity gran, uint32_t group_size, const char *what,
                          ellm_qparams *qp, uint8_t *codes, ellm_error *err) {
    memset(qp, 0, sizeof *qp);
    if (bits != 8 && bits != 4)
        return ellm_fail(err, ELLM_E_ARG, "%s: bits must be 8 or 4, got %d", what, bits);
    if (scheme < ELLM_SCHEME_AUTO || scheme > ELLM_SCHEME_ASYMMETRIC)
        return ellm_fail(err, ELLM_E_ARG, "%s: cannot quantize with scheme %d", what, (int)scheme);
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(w[i]))
            return ellm_fail(err, ELLM_E_FORMAT, "%s: weight %llu is not finite (%g)", what,
                             (unsigned long long)i, (double)w[i]);
    if (scheme == ELLM_SCHEME_AUTO) scheme = ellm_quant_choose_scheme(w, n);
    uint64_t gs = ellm_quant_group_size(gran, group_size, n, row_len);
    if (gs == 0) gs = 1;
    if (gran == ELLM_GRAN_GROUP && (group_size == 0 || group_size % 2))
        return ellm_fail(err, ELLM_E_ARG, "%s: group size must be even and > 0, got %u", what, group_size);
    qp->scheme = scheme;
    qp->bits = bits;
    qp->granularity = gran;
    qp->group_size = gs;
    qp->n_groups = n ? (n + gs - 1) / gs : 0;
    qp->scales = ellm_calloc(qp->n_groups, sizeof(float), err);
    qp->zeros = ellm_calloc(qp->n_groups, 1, err);
    if (!qp->scales || !qp->zeros) {
        ellm_qparams_free(qp);
        return ELLM_E_NOMEM;
    }
    for (uint64_t g = 0; g < qp->n_groups; g++) {
        uint64_t start = g * gs, len = ELLM_MIN(gs, n - start);
        group_params(w + start, len, scheme, bits, &qp->scales[g], &qp->zeros[g]);
        quantize_group(w + start, len, qp->scales[g], qp->zeros[g], bits, codes + start);
    }
    return ELLM_OK;
}

void ellm_qparams_free(ellm_qparams *qp) {
    free(qp->scales);
    free(qp->zeros);
    qp->scales = NULL;
    qp->zeros = NULL;
}

void ellm_dequantize(const ellm_qparams *qp, const uint8_t *codes, uint64_t n, float *out) {
    for (uint64_t g = 0; g < qp->n_groups; g++) {
        uint64_t start = g * qp->group_size, len = ELLM_MIN(qp->group_size, n - start);
        float s = qp->scales[g];
        int z = qp->zeros[g];
        for (uint64_t i = 0; i < len; i++) out[start + i] = s * (float)((int)codes[start + i] - z);
    }
}

void ellm_pack_u4(const uint8_t *codes, uint64_t n, uint8_t *packed) {
    for (uint64_t i = 0; i + 1 < n; i += 2) packed[i / 2] = (uint8_t)((codes[i] & 15) | (codes[i + 1] << 4));
    if (n & 1) packed[n / 2] = codes[n - 1] & 15;
}

void ellm_unpack_u4(const uint8_t *packed, uint64_t n, uint8_t *codes) {
    for (uint64_t i = 0; i < n; i++) codes[i] = (packed[i / 2] >> ((i & 1) * 4)) & 15;
}

static inline int qtensor_code(const ellm_qtensor *t, uint64_t i) {
    return t->bits == 8 ? t->data[i] : (t->data[i / 2] >> ((i & 1) * 4)) & 15;
}

float ellm_qtensor_get(const ellm_qtensor *t, uint64_t i) {
    if (t->bits == 32) return ((const float *)t->data)[i];
    uint64_t g = i / t->qp.group_size;
    return t->qp.scales[g] * (float)(qtensor_code(t, i) - t->qp.zeros[g]);
}

void ellm_qtensor_rows_f32(const ellm_qtensor *t, int64_t row0, int64_t n_rows, float *out) {
    uint64_t cols = t->n_dims >= 2 ? (uint64_t)t->shape[t->n_dims - 1] : t->n;
    uint64_t first = (uint64_t)row0 * cols, count = (uint64_t)n_rows * cols;
    for (uint64_t k = 0; k < count; k++) out[k] = ellm_qtensor_get(t, first + k);
}

void ellm_qtensor_free(ellm_qtensor *t) {
    if (!t) return;
    if (t->owns_data) {
        free(t->data);
        ellm_qparams_free(&t->qp);
    }
    t->data = NULL;
}
