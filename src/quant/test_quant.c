/* test_quant.c - quantization schemes: error bound, zero mapping, auto rule, packing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/testing.h"
#include "quant/quant.h"


/* Quantizes, dequantizes, and checks every element against |s|/2 of its group. */
static void check_bound(const char *what, const float *w, uint64_t n, uint64_t row_len,
                        ellm_scheme scheme, int bits, ellm_granularity gran, uint32_t g) {
    ellm_qparams qp;
    ellm_error err;
    uint8_t *codes = malloc(n ? n : 1);
    float *back = malloc((n ? n : 1) * sizeof(float));
    ellm_status s = ellm_quantize(w, n, row_len, scheme, bits, gran, g, what, &qp, codes, &err);
    CHECK(s == ELLM_OK, "%s: quantize failed: %s", what, err.message);
    if (s != ELLM_OK) goto out;
    ellm_dequantize(&qp, codes, n, back);
    for (uint64_t i = 0; i < n; i++) {
        CHECK(codes[i] <= (1u << bits) - 1, "%s: code %u out of range", what, codes[i]);
        float sc = fabsf(qp.scales[i / qp.group_size]);
        float e = fabsf(back[i] - w[i]);
        CHECK(e <= sc * 0.5f * (1 + 1e-5f) + 1e-30f, "%s[%llu]: error %g > s/2 = %g (w=%g scheme %s bits %d)",
              what, (unsigned long long)i, (double)e, (double)(sc / 2), (double)w[i],
              ellm_scheme_name(qp.scheme), bits);
        if (w[i] == 0.0f) CHECK(back[i] == 0.0f, "%s: zero not exact (%g)", what, (double)back[i]);
    }
    ellm_qparams_free(&qp);
out:
    free(codes);
    free(back);
}

static void test_bounds(void) {
    ellm_rng rng;
    ellm_rng_seed(&rng, 42);
    enum { ROWS = 37, COLS = 64, N = ROWS * COLS };
    static float mixed[N], pos[N], neg[N];
    for (int i = 0; i < N; i++) {
        mixed[i] = (float)(0.02 * ellm_rng_normal(&rng));
        pos[i] = fabsf(mixed[i]);
        neg[i] = -pos[i];
    }
    mixed[5] = 0.0f;
    pos[7] = 0.0f;
    int bits_list[] = {8, 4};
    ellm_scheme schemes[] = {ELLM_SCHEME_AUTO, ELLM_SCHEME_SYMMETRIC, ELLM_SCHEME_ASYMMETRIC};
    ellm_granularity grans[] = {ELLM_GRAN_TENSOR, ELLM_GRAN_ROW, ELLM_GRAN_GROUP};
    for (int b = 0; b < 2; b++)
        for (int s = 0; s < 3; s++)
            for (int g = 0; g < 3; g++) {
                check_bound("mixed", mixed, N, COLS, schemes[s], bits_list[b], grans[g], 32);
                check_bound("pos", pos, N, COLS, schemes[s], bits_list[b], grans[g], 32);
                check_bound("neg", neg, N, COLS, schemes[s], bits_list[b], grans[g], 32);
            }
    /* group size that does not divide n: the last group is short */
    check_bound("tail-group", mixed, N - 3, COLS, ELLM_SCHEME_AUTO, 4, ELLM_GRAN_GROUP, 50);
    /* unsigned on its own domain */
    check_bound("pos-unsigned", pos, N, COLS, ELLM_SCHEME_UNSIGNED, 8, ELLM_GRAN_TENSOR, 0);
    check_bound("neg-unsigned", neg, N, COLS, ELLM_SCHEME_UNSIGNED, 4, ELLM_GRAN_TENSOR, 0);
}

static void test_auto_rule(void) {
    float pos[] = {0.0f, 1.0f, 2.0f}, neg[] = {-1.0f, 0.0f, -3.0f}, mix[] = {-1.0f, 2.0f};
    float zeros[] = {0.0f, 0.0f};
    CHECK(ellm_quant_choose_scheme(pos, 3) == ELLM_SCHEME_UNSIGNED, "all >= 0 must be unsigned");
    CHECK(ellm_quant_choose_scheme(neg, 3) == ELLM_SCHEME_UNSIGNED, "all <= 0 must be unsigned");
    CHECK(ellm_quant_choose_scheme(mix, 2) == ELLM_SCHEME_ASYMMETRIC, "mixed must be asymmetric");
    CHECK(ellm_quant_choose_scheme(zeros, 2) == ELLM_SCHEME_UNSIGNED, "all-zero is single-sign");
}

static void test_exact_codes(void) {
    /* Symmetric 8-bit: zero maps to 128, max|w| to 255 or 1. */
    float w[] = {-1.0f, 0.0f, 1.0f, 0.5f};
    uint8_t c[8];
    ellm_qparams qp;
    ellm_error err;
    CHECK(ellm_quantize(w, 4, 4, ELLM_SCHEME_SYMMETRIC, 8, ELLM_GRAN_TENSOR, 0, "sym", &qp, c, &err) == ELLM_OK,
          "sym: %s", err.message);
    CHECK(c[0] == 1 && c[1] == 128 && c[2] == 255 && c[3] == 192, "sym codes %u %u %u %u", c[0], c[1], c[2], c[3]);
    CHECK(qp.zeros[0] == 128 && fabsf(qp.scales[0] - 1.0f / 127) < 1e-9f, "sym params");
    ellm_qparams_free(&qp);
    /* Unsigned 4-bit on a non-positive tensor: s < 0, the most negative value -> 15. */
    float n4[] = {0.0f, -1.5f, -0.75f};
    CHECK(ellm_quantize(n4, 3, 3, ELLM_SCHEME_UNSIGNED, 4, ELLM_GRAN_TENSOR, 0, "uns", &qp, c, &err) == ELLM_OK,
          "uns: %s", err.message);
    CHECK(c[0] == 0 && c[1] == 15 && (c[2] == 7 || c[2] == 8), "unsigned neg codes %u %u %u", c[0], c[1], c[2]);
    CHECK(qp.scales[0] < 0, "scale of a non-positive tensor is negative");
    ellm_qparams_free(&qp);
    /* Asymmetric: min -> 0, max -> 15, zero exact. */
    float a[] = {-0.5f, 0.0f, 1.0f};
    CHECK(ellm_quantize(a, 3, 3, ELLM_SCHEME_ASYMMETRIC, 4, ELLM_GRAN_TENSOR, 0, "asym", &qp, c, &err) == ELLM_OK,
          "asym: %s", err.message);
    CHECK(c[0] == 0 && c[2] == 15 && c[1] == qp.zeros[0] && qp.zeros[0] == 5, "asym codes %u %u %u z=%u", c[0],
          c[1], c[2], qp.zeros[0]);
    ellm_qparams_free(&qp);
    /* All-zero tensor quantizes to zeros and back exactly. */
    float z[5] = {0};
    CHECK(ellm_quantize(z, 5, 5, ELLM_SCHEME_AUTO, 8, ELLM_GRAN_TENSOR, 0, "zeros", &qp, c, &err) == ELLM_OK,
          "zeros");
    float back[5];
    ellm_dequantize(&qp, c, 5, back);
    for (int i = 0; i < 5; i++) CHECK(back[i] == 0.0f, "zeros back");
    ellm_qparams_free(&qp);
}

static void test_errors(void) {
    float w[] = {1.0f, NAN};
    uint8_t c[2];
    ellm_qparams qp;
    ellm_error err;
    CHECK(ellm_quantize(w, 2, 2, ELLM_SCHEME_AUTO, 8, ELLM_GRAN_TENSOR, 0, "t.weight", &qp, c, &err) == ELLM_E_FORMAT,
          "NaN must be refused");
    CHECK(strstr(err.message, "t.weight") != NULL, "message names the tensor: %s", err.message);
    float ok[] = {1.0f, 2.0f};
    CHECK(ellm_quantize(ok, 2, 2, ELLM_SCHEME_AUTO, 5, ELLM_GRAN_TENSOR, 0, "t", &qp, c, &err) == ELLM_E_ARG,
          "bits 5 must be refused");
    CHECK(ellm_quantize(ok, 2, 2, ELLM_SCHEME_AUTO, 4, ELLM_GRAN_GROUP, 3, "t", &qp, c, &err) == ELLM_E_ARG,
          "odd group must be refused");
}

static void test_pack(void) {
    uint8_t codes[9] = {1, 2, 3, 4, 5, 6, 7, 15, 9}, packed[5], back[9];
    ellm_pack_u4(codes, 9, packed);
    CHECK(packed[0] == 0x21 && packed[3] == 0xF7 && packed[4] == 0x09, "packing layout");
    ellm_unpack_u4(packed, 9, back);
    CHECK(memcmp(codes, back, 9) == 0, "unpack(pack(x)) == x");
    ellm_qtensor t = {.n = 9, .bits = 4, .data = packed};
    float sc = 2.0f;
    uint8_t zp = 3;
    t.qp = (ellm_qparams){.bits = 4, .group_size = 9, .n_groups = 1, .scales = &sc, .zeros = &zp};
    CHECK(ellm_qtensor_get(&t, 7) == 2.0f * (15 - 3), "qtensor_get on packed data");
}

int main(void) {
    test_bounds();
    test_auto_rule();
    test_exact_codes();
    test_errors();
    test_pack();
    return test_finish("test_quant");
}
