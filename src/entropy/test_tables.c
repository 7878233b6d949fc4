/*
 * test_tables.c - the coders' tables:
 *  - package-merge code lengths satisfy Kraft with equality, respect the
 *    limit, equal plain Huffman's cost when the limit does not bind, and are
 *    optimal under the limit (checked against exhaustive search on small
 *    alphabets);
 *  - canonical codes are prefix-free and ordered by (length, symbol);
 *  - rANS frequencies sum to 2^14, keep every used symbol >= 1 and cost
 *    close to the entropy;
 *  - ec_encode rejects bad arguments.
 */
#include "entropy/ec_internal.h"
#include "entropy/test_util.h"

static uint64_t cost(const uint64_t *hist, const uint8_t *lens, int alphabet) {
    uint64_t c = 0;
    for (int s = 0; s < alphabet; s++) c += hist[s] * lens[s];
    return c;
}

static uint64_t kraft(const uint8_t *lens, int alphabet, int max_len) {
    uint64_t k = 0;
    for (int s = 0; s < alphabet; s++)
        if (lens[s]) k += 1ull << (max_len - lens[s]);
    return k;
}

/* Unlimited Huffman cost by repeated merging of the two lightest nodes (the
 * sum of internal node weights); *height gets the longest code length. */
static uint64_t huffman_cost_height(const uint64_t *hist, int alphabet, int *height) {
    uint64_t w[512];
    int h[512];
    int n = 0;
    for (int s = 0; s < alphabet; s++)
        if (hist[s]) w[n] = hist[s], h[n++] = 0;
    *height = n == 1;
    if (n < 2) return n ? w[0] : 0; /* one symbol: 1 bit each */
    uint64_t total = 0;
    while (n > 1) {
        /* move the two smallest to the front (quadratic is fine here) */
        for (int r = 0; r < 2; r++) {
            int m = r;
            for (int i = r; i < n; i++)
                if (w[i] < w[m]) m = i;
            uint64_t t = w[r];
            int th = h[r];
            w[r] = w[m], h[r] = h[m];
            w[m] = t, h[m] = th;
        }
        uint64_t merged = w[0] + w[1];
        int mh = ELLM_MAX(h[0], h[1]) + 1;
        total += merged;
        w[0] = merged, h[0] = mh;
        w[1] = w[n - 1], h[1] = h[n - 1];
        n--;
    }
    *height = h[0];
    return total;
}
static uint64_t huffman_cost(const uint64_t *hist, int alphabet) {
    int height;
    return huffman_cost_height(hist, alphabet, &height);
}

/* Minimum cost over all length vectors in 1..max_len with Kraft <= 1. */
static uint64_t brute_best(const uint64_t *hist, int alphabet, int max_len) {
    uint8_t lens[8];
    uint64_t best = UINT64_MAX;
    int total = 1;
    for (int s = 0; s < alphabet; s++) total *= max_len;
    for (int code = 0; code < total; code++) {
        int c = code;
        for (int s = 0; s < alphabet; s++) lens[s] = (uint8_t)(1 + c % max_len), c /= max_len;
        if (kraft(lens, alphabet, max_len) > (1ull << max_len)) continue;
        uint64_t x = cost(hist, lens, alphabet);
        if (x < best) best = x;
    }
    return best;
}

static void test_lengths(void) {
    ellm_error err;
    uint8_t lens[256];
    uint64_t hist[256];

    /* empty and one-symbol histograms */
    memset(hist, 0, sizeof hist);
    CHECK(ec_huffman_lengths(hist, 256, 11, lens, &err) == ELLM_OK, "empty: %s", err.message);
    CHECK(kraft(lens, 256, 11) == 0, "empty histogram has lengths");
    hist[42] = 1000;
    CHECK(ec_huffman_lengths(hist, 256, 11, lens, &err) == ELLM_OK, "one: %s", err.message);
    CHECK(lens[42] == 1 && kraft(lens, 256, 11) == 1u << 10, "one symbol must get length 1");

    /* more symbols than 2^limit cannot be coded */
    for (int s = 0; s < 256; s++) hist[s] = 1;
    CHECK(ec_huffman_lengths(hist, 256, 7, lens, &err) == ELLM_E_ARG, "256 symbols in 7 bits accepted");
    CHECK(ec_huffman_lengths(hist, 256, 8, lens, &err) == ELLM_OK, "256 symbols in 8 bits: %s", err.message);
    for (int s = 0; s < 256; s++) CHECK(lens[s] == 8, "uniform 256 must be 8 bits, symbol %d has %d", s, lens[s]);

    /* Fibonacci weights: unlimited Huffman would need 40+ bits. */
    uint64_t a = 1, b = 1;
    for (int s = 0; s < 48; s++) {
        hist[s] = a;
        uint64_t t = a + b;
        a = b, b = t;
    }
    CHECK(ec_huffman_lengths(hist, 48, 11, lens, &err) == ELLM_OK, "fibonacci: %s", err.message);
    int maxl = 0;
    for (int s = 0; s < 48; s++) maxl = ELLM_MAX(maxl, lens[s]);
    CHECK(maxl == 11, "fibonacci lengths should reach the limit, max %d", maxl);
    CHECK(kraft(lens, 48, 11) == 1u << 11, "fibonacci: Kraft sum %llu", (unsigned long long)kraft(lens, 48, 11));
    CHECK(cost(hist, lens, 48) >= huffman_cost(hist, 48), "limited code beats unlimited Huffman?");

    /* Random histograms: Kraft equality, limit, optimality. */
    ellm_rng r;
    ellm_rng_seed(&r, 7);
    for (int trial = 0; trial < 300; trial++) {
        int alphabet = trial % 2 ? 256 : 16;
        int used = 2 + (int)(ellm_rng_next(&r) % (uint64_t)(alphabet - 1));
        memset(hist, 0, sizeof hist);
        int shape = trial % 3;
        for (int k = 0; k < used; k++) {
            int s = (int)(ellm_rng_next(&r) % (uint64_t)alphabet);
            uint64_t w = shape == 0 ? 1 + ellm_rng_next(&r) % 1000
                       : shape == 1 ? 1ull << (ellm_rng_next(&r) % 40)
                                    : (uint64_t)(1e6 * exp(-0.5 * pow((s - alphabet / 2) / (alphabet / 12.0), 2))) + 1;
            hist[s] += w;
        }
        CHECK(ec_huffman_lengths(hist, alphabet, EC_HUF_MAX_LEN, lens, &err) == ELLM_OK, "trial %d: %s", trial,
              err.message);
        int n_used = 0;
        maxl = 0;
        for (int s = 0; s < alphabet; s++) {
            n_used += hist[s] != 0;
            CHECK((hist[s] != 0) == (lens[s] != 0), "trial %d: symbol %d used=%d len=%d", trial, s, hist[s] != 0,
                  lens[s]);
            maxl = ELLM_MAX(maxl, lens[s]);
        }
        CHECK(maxl <= EC_HUF_MAX_LEN, "trial %d: length %d over the limit", trial, maxl);
        if (n_used >= 2)
            CHECK(kraft(lens, alphabet, EC_HUF_MAX_LEN) == 1u << EC_HUF_MAX_LEN, "trial %d: incomplete code", trial);
        int height;
        uint64_t hc = huffman_cost_height(hist, alphabet, &height), pc = cost(hist, lens, alphabet);
        CHECK(pc >= hc, "trial %d: cost %llu below Huffman's %llu", trial, (unsigned long long)pc,
              (unsigned long long)hc);
        /* Equal to unlimited Huffman whenever the limit does not bind. */
        if (height <= EC_HUF_MAX_LEN)
            CHECK(pc == hc, "trial %d: cost %llu, Huffman %llu", trial, (unsigned long long)pc, (unsigned long long)hc);
        /* Within 1 bit/symbol of the entropy bound (and above it). */
        double total = 0;
        for (int s = 0; s < alphabet; s++) total += (double)hist[s];
        double h = ec_entropy(hist, alphabet) * total;
        CHECK((double)pc >= h * (1 - 1e-12) && (double)pc <= h + total * 1.0 + 1, "trial %d: cost %.0f vs entropy %.0f",
              trial, (double)pc, h);
    }

    /* Optimality under a binding limit: exhaustive search on small alphabets. */
    for (int trial = 0; trial < 200; trial++) {
        int alphabet = 3 + trial % 5, limit = 2 + trial % 3;
        if ((1 << limit) < alphabet) limit = 3;
        for (int s = 0; s < alphabet; s++) hist[s] = 1 + (ellm_rng_next(&r) % 2 ? ellm_rng_next(&r) % 1000 : ellm_rng_next(&r) % 5);
        CHECK(ec_huffman_lengths(hist, alphabet, limit, lens, &err) == ELLM_OK, "small %d: %s", trial, err.message);
        uint64_t best = brute_best(hist, alphabet, limit);
        CHECK(cost(hist, lens, alphabet) == best, "small trial %d (alphabet %d, limit %d): cost %llu, optimum %llu",
              trial, alphabet, limit, (unsigned long long)cost(hist, lens, alphabet), (unsigned long long)best);
    }
}

static void test_canonical(void) {
    uint8_t lens[256] = {0};
    uint16_t codes[256];
    uint64_t hist[256];
    ellm_rng r;
    ellm_rng_seed(&r, 3);
    for (int s = 0; s < 256; s++) hist[s] = ellm_rng_next(&r) % 100000;
    ellm_error err;
    CHECK(ec_huffman_lengths(hist, 256, 11, lens, &err) == ELLM_OK, "%s", err.message);
    ec_huf_codes(lens, 256, codes);
    for (int s = 0; s < 256; s++)
        for (int t = 0; t < 256; t++) {
            if (s == t || !lens[s] || !lens[t] || lens[s] > lens[t]) continue;
            /* no code is a prefix of another */
            CHECK((codes[t] >> (lens[t] - lens[s])) != codes[s], "code %d is a prefix of code %d", s, t);
            /* canonical order: shorter codes, then lower symbols, have lower values */
            uint32_t cs = (uint32_t)codes[s] << (lens[t] - lens[s]);
            if (lens[s] < lens[t] || s < t) CHECK(cs < codes[t], "codes %d and %d not in canonical order", s, t);
        }
    /* The deflate example: lengths (3,3,3,3,3,2,4,4) give 010..110, 00, 1110, 1111. */
    const uint8_t dl[8] = {3, 3, 3, 3, 3, 2, 4, 4};
    const uint16_t want[8] = {2, 3, 4, 5, 6, 0, 14, 15};
    ec_huf_codes(dl, 8, codes);
    for (int s = 0; s < 8; s++) CHECK(codes[s] == want[s], "deflate example symbol %d: %u", s, codes[s]);
}

static void test_rans_freqs(void) {
    ellm_error err;
    uint32_t z[256];
    uint16_t freq[256];
    ellm_rng r;
    ellm_rng_seed(&r, 11);
    for (int trial = 0; trial < 200; trial++) {
        int alphabet = trial % 2 ? 256 : 16;
        int scale = 8 + trial % 8; /* 8..15 */
        memset(z, 0, sizeof z);
        int any = 0;
        for (int s = 0; s < alphabet; s++)
            if (ellm_rng_next(&r) % 3) z[s] = trial % 4 == 0 ? 1 : 1 + (uint32_t)(ellm_rng_next(&r) % 65535), any = 1;
        bool ok = ec_rans_freqs_from_weights(z, alphabet, scale, freq);
        CHECK(ok == (any != 0), "trial %d: weights %s", trial, ok ? "accepted without a used symbol" : "refused");
        if (!ok) continue;
        uint32_t sum = 0;
        for (int s = 0; s < alphabet; s++) {
            sum += freq[s];
            CHECK((z[s] != 0) == (freq[s] != 0), "trial %d symbol %d: weight %u freq %u", trial, s, z[s], freq[s]);
        }
        CHECK(sum == 1u << scale, "trial %d: frequencies sum to %u", trial, sum);
    }
    /* The worked example of docs/CODED_BLOCK.md 4.1. */
    uint32_t ex[4] = {1, 2, 0, 3};
    CHECK(ec_rans_freqs_from_weights(ex, 4, 4, freq), "example refused");
    CHECK(freq[0] == 1 && freq[1] == 4 && freq[2] == 0 && freq[3] == 11, "example gives %u %u %u %u", freq[0],
          freq[1], freq[2], freq[3]);
    /* More used symbols than slots, a weight above 65535, no used symbol. */
    uint32_t many[256];
    for (int s = 0; s < 256; s++) many[s] = 1;
    CHECK(!ec_rans_freqs_from_weights(many, 256, 7, freq), "256 symbols in 128 slots accepted");
    many[3] = 65536;
    CHECK(!ec_rans_freqs_from_weights(many, 256, 14, freq), "weight 65536 accepted");
    memset(many, 0, sizeof many);
    CHECK(!ec_rans_freqs_from_weights(many, 256, 14, freq), "no used symbol accepted");

    /* The chosen table codes a large bell-shaped tensor within 0.01 bits
     * per symbol of its entropy, and a small one's table stays small. */
    const uint64_t n = 1u << 20;
    uint8_t *sym = malloc(n);
    CHECK(sym != NULL, "out of memory");
    if (!sym) return;
    for (uint64_t i = 0; i < n; i++) {
        double u = ((double)(ellm_rng_next(&r) >> 11) + 0.5) / 9007199254740992.0;
        double v = ((double)(ellm_rng_next(&r) >> 11) + 0.5) / 9007199254740992.0;
        double g = 128 + 20 * sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
        sym[i] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
    }
    ec_rans_choice *c = malloc(sizeof *c);
    uint64_t hist[256];
    ec_histogram(sym, n, 256, hist);
    CHECK(c && ec_rans_choose(sym, hist, n, 8, 0, c, &err) == ELLM_OK, "choose: %s", err.message);
    if (c) {
        double bits = 0;
        for (int s = 0; s < 256; s++)
            if (hist[s]) bits += (double)hist[s] * (c->model.scale_bits - log2(c->model.freq[0][s]));
        double h = ec_entropy(hist, 256);
        CHECK(bits / (double)n - h < 0.01, "rans table costs %.4f bits/symbol over the entropy %.4f",
              bits / (double)n - h, h);
        CHECK(c->model.n_states == 8 && c->model.n_classes == 1, "large i.i.d. tensor: %d states %d classes",
              c->model.n_states, c->model.n_classes);
        /* 4096 symbols: one state, and a table of well under 100 bytes */
        ec_histogram(sym, 4096, 256, hist);
        CHECK(ec_rans_choose(sym, hist, 4096, 8, 0, c, &err) == ELLM_OK, "choose: %s", err.message);
        CHECK(c->model.n_states == 1, "small tensor: %d states", c->model.n_states);
        uint64_t tb = ec_rans_weights_bits(c->z[0], 256, 8, c->k[0]);
        CHECK(tb < 8 * 100, "table of a 4096-symbol bell tensor takes %llu bits", (unsigned long long)tb);
        free(c->model.cls);
    }
    free(c);
    free(sym);
}

static void test_encode_args(void) {
    ellm_error err;
    uint8_t sym[4] = {1, 2, 16, 3}, *block = NULL;
    size_t size;
    CHECK(ec_encode(ELLM_CODER_HUFFMAN, 4, sym, 4, 0, NULL, &block, &size, &err) == ELLM_E_ARG,
          "symbol 16 accepted at 4 bits");
    CHECK(ec_encode(ELLM_CODER_RANS, 4, sym, 4, 0, NULL, &block, &size, &err) == ELLM_E_ARG,
          "symbol 16 accepted at 4 bits (rans)");
    CHECK(ec_encode(ELLM_CODER_HUFFMAN, 6, sym, 4, 0, NULL, &block, &size, &err) == ELLM_E_ARG, "6 bits accepted");
    CHECK(ec_encode(ELLM_CODER_RAW, 8, sym, 4, 0, NULL, &block, &size, &err) == ELLM_E_ARG, "raw accepted");
    CHECK(block == NULL, "block set on failure");
    /* odd segment sizes are rounded up to even at 4 bits */
    uint8_t s4[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(ec_encode(ELLM_CODER_HUFFMAN, 4, s4, 10, 3, NULL, &block, &size, &err) == ELLM_OK, "%s", err.message);
    ec_view v;
    CHECK(ec_view_open(block, size, "t", &v, &err) == ELLM_OK, "%s", err.message);
    CHECK(v.segment_symbols == 4, "segment 3 at 4 bits became %u", v.segment_symbols);
    ec_view_close(&v);
    free(block);
}

int main(void) {
    test_lengths();
    test_canonical();
    test_rans_freqs();
    test_encode_args();
    if (test_failures) {
        fprintf(stderr, "%d checks failed\n", test_failures);
        return 1;
    }
    printf("entropy tables: ok\n");
    return 0;
}
