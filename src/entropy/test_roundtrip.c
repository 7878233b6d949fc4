/*
 * test_roundtrip.c - single-thread round trips through ec_encode,
 * ec_view_open and ec_decode_segment for both coders and both widths, every
 * histogram shape, segment sizes 1..default and the degenerate lengths
 * n = 0, 1, 2, odd. Checks the output is bit-exact and that decoding never
 * writes outside the tensor's bytes (guard bytes around the buffer).
 */
#include "entropy/test_util.h"

#define GUARD 64

static void roundtrip(ellm_coder coder, int bits, hist_kind kind, uint64_t n, uint32_t seg) {
    uint8_t *sym = malloc(n ? n : 1);
    gen_symbols(sym, n, bits, kind, n * 31 + seg + (uint64_t)kind);
    uint8_t *block = NULL;
    size_t block_size = 0;
    ellm_error err = {0};
    ellm_status st = ec_encode(coder, bits, sym, n, seg, NULL, &block, &block_size, &err);
    CHECK(st == ELLM_OK, "encode %s/%d/%s n=%llu seg=%u: %s", ellm_coder_name(coder), bits, hist_names[kind],
          (unsigned long long)n, seg, err.message);
    if (st) {
        free(sym);
        return;
    }
    ec_view v;
    st = ec_view_open(block, block_size, "test", &v, &err);
    CHECK(st == ELLM_OK, "open %s/%d/%s n=%llu seg=%u: %s", ellm_coder_name(coder), bits, hist_names[kind],
          (unsigned long long)n, seg, err.message);
    if (!st) {
        uint64_t nb = ec_decoded_bytes(bits, n);
        uint8_t *buf = malloc(nb + 2 * GUARD);
        memset(buf, 0xA5, nb + 2 * GUARD);
        for (uint64_t i = 0; i < v.n_segments; i++) {
            st = ec_decode_segment(&v, i, buf + GUARD, &err);
            CHECK(st == ELLM_OK, "decode %s/%d/%s n=%llu seg=%u segment %llu: %s", ellm_coder_name(coder), bits,
                  hist_names[kind], (unsigned long long)n, seg, (unsigned long long)i, err.message);
        }
        uint8_t *want = pack_expected(sym, n, bits);
        CHECK(memcmp(buf + GUARD, want, nb) == 0, "%s/%d/%s n=%llu seg=%u: output differs", ellm_coder_name(coder),
              bits, hist_names[kind], (unsigned long long)n, seg);
        for (int g = 0; g < GUARD; g++) {
            CHECK(buf[g] == 0xA5 && buf[GUARD + nb + g] == 0xA5, "%s/%d/%s n=%llu seg=%u: guard byte written",
                  ellm_coder_name(coder), bits, hist_names[kind], (unsigned long long)n, seg);
            if (buf[g] != 0xA5 || buf[GUARD + nb + g] != 0xA5) break;
        }
        free(want);
        free(buf);
        ec_view_close(&v);
    }
    free(block);
    free(sym);
}

/* A matrix whose rows (axis 0) or columns (axis 1) come in three spreads,
 * as embedding rows of rare tokens or outlier channels do: rANS should give
 * the classes their own tables, and the block must still decode exactly,
 * whatever the segment size (segments start mid-line). */
static void roundtrip_classes(int bits, int axis, uint64_t rows, uint64_t cols, uint32_t seg) {
    uint64_t n = rows * cols;
    uint8_t *sym = malloc(n);
    ellm_rng r;
    ellm_rng_seed(&r, 1000 * rows + cols + (uint64_t)axis);
    const double mid = bits == 8 ? 128 : 8, spreads[3] = {bits == 8 ? 2 : 0.4, bits == 8 ? 10 : 1.2, bits == 8 ? 30 : 3};
    for (uint64_t i = 0; i < n; i++) {
        uint64_t line = axis == 0 ? i / cols : i % cols;
        double u = ((double)(ellm_rng_next(&r) >> 11) + 0.5) / 9007199254740992.0;
        double v = ((double)(ellm_rng_next(&r) >> 11) + 0.5) / 9007199254740992.0;
        double g = mid + spreads[(line * 7) % 3] * sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
        double top = (1 << bits) - 1;
        sym[i] = (uint8_t)(g < 0 ? 0 : g > top ? top : g + 0.5 > top ? top : floor(g + 0.5));
    }
    uint8_t *block = NULL, *plain = NULL;
    size_t size = 0, plain_size = 0;
    ellm_error err = {0};
    ellm_status st = ec_encode_rows(ELLM_CODER_RANS, bits, sym, n, cols, seg, NULL, &block, &size, &err);
    CHECK(st == ELLM_OK, "encode classes: %s", err.message);
    st = st ? st : ec_encode(ELLM_CODER_RANS, bits, sym, n, seg, NULL, &plain, &plain_size, &err);
    if (st) {
        free(sym);
        free(block);
        return;
    }
    CHECK(block[7] >> 6 != 0, "%d-bit %llux%llu axis %d: no classes chosen", bits, (unsigned long long)rows,
          (unsigned long long)cols, axis);
    CHECK(size < plain_size * 97 / 100, "%d-bit %llux%llu axis %d: classes %zu bytes vs one table %zu", bits,
          (unsigned long long)rows, (unsigned long long)cols, axis, size, plain_size);
    ec_view v;
    st = ec_view_open(block, size, "classes", &v, &err);
    CHECK(st == ELLM_OK, "open classes: %s", err.message);
    if (!st) {
        uint64_t nb = ec_decoded_bytes(bits, n);
        uint8_t *buf = malloc(nb + 2 * GUARD);
        memset(buf, 0xA5, nb + 2 * GUARD);
        for (uint64_t i = v.n_segments; i-- > 0;) { /* any order */
            st = ec_decode_segment(&v, i, buf + GUARD, &err);
            CHECK(st == ELLM_OK, "decode classes segment %llu: %s", (unsigned long long)i, err.message);
        }
        uint8_t *want = pack_expected(sym, n, bits);
        CHECK(memcmp(buf + GUARD, want, nb) == 0, "%d-bit %llux%llu axis %d seg %u: classes output differs", bits,
              (unsigned long long)rows, (unsigned long long)cols, axis, seg);
        for (int g = 0; g < GUARD; g++)
            if (buf[g] != 0xA5 || buf[GUARD + nb + g] != 0xA5) {
                CHECK(0, "classes: guard byte written");
                break;
            }
        free(want);
        free(buf);
        ec_view_close(&v);
    }
    free(block);
    free(plain);
    free(sym);
}

int main(void) {
    const ellm_coder coders[] = {ELLM_CODER_HUFFMAN, ELLM_CODER_RANS};
    const int widths[] = {8, 4};
    const uint64_t sizes[] = {0, 1, 2, 3, 7, 8, 9, 31, 33, 101, 1001, 4097, 70001};
    const uint32_t segs[] = {1, 2, 3, 64, 1000, 0};
    for (int c = 0; c < 2; c++)
        for (int w = 0; w < 2; w++)
            for (int k = 0; k < HIST_COUNT; k++)
                for (size_t ni = 0; ni < ELLM_ARRAY_LEN(sizes); ni++)
                    for (size_t si = 0; si < ELLM_ARRAY_LEN(segs); si++) {
                        if (sizes[ni] > 5000 && segs[si] < 64) continue; /* keep the test fast */
                        roundtrip(coders[c], widths[w], (hist_kind)k, sizes[ni], segs[si]);
                    }
    for (int bits = 8; bits >= 4; bits -= 4)
        for (int axis = 0; axis < 2; axis++) {
            roundtrip_classes(bits, axis, 96, 64, 0);
            roundtrip_classes(bits, axis, 96, 64, 1000); /* segments start mid-row */
            roundtrip_classes(bits, axis, 300, 258, 4098); /* 8 states: the unrolled loop, chunked classes */
            roundtrip_classes(bits, axis, 300, 258, 0);
            roundtrip_classes(bits, axis, 257, 1031, 10002);
        }
    /* A long segment exercises the interleaved fast loops for many rounds. */
    for (int c = 0; c < 2; c++)
        for (int w = 0; w < 2; w++) roundtrip(coders[c], widths[w], HIST_BELL, 1u << 20, 1u << 19);
    if (test_failures) {
        fprintf(stderr, "%d checks failed\n", test_failures);
        return 1;
    }
    printf("entropy round trips: ok\n");
    return 0;
}
