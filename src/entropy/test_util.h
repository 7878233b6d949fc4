/*
 * test_util.h - helpers for the entropy and decode tests: symbol generators
 * with the histograms the tests need (assertions: common/testing.h).
 */
#ifndef ELLM_ENTROPY_TEST_UTIL_H
#define ELLM_ENTROPY_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/testing.h"
#include "entropy/entropy.h"

typedef enum {
    HIST_UNIFORM,
    HIST_BELL,
    HIST_ONE,
    HIST_TWO,
    HIST_ALL, /* every symbol of the alphabet at least once, skewed */
    HIST_SKEW, /* geometric: probabilities 2^-1, 2^-2, ... (codes hit the length limit) */
    HIST_COUNT
} hist_kind;

static const char *const hist_names[HIST_COUNT] = {"uniform", "bell", "one", "two", "all", "skew"};

/* n symbols < 2^bits with the given histogram shape, deterministic in seed. */
static inline void gen_symbols(uint8_t *s, uint64_t n, int bits, hist_kind kind, uint64_t seed) {
    ellm_rng r;
    ellm_rng_seed(&r, seed);
    const int alphabet = 1 << bits;
    for (uint64_t i = 0; i < n; i++) {
        int v = 0;
        switch (kind) {
        case HIST_UNIFORM: v = (int)(ellm_rng_next(&r) % (uint64_t)alphabet); break;
        case HIST_BELL: {
            double mean = bits == 8 ? 128 : 8, sd = bits == 8 ? 20 : 2;
            v = (int)lround(mean + sd * ellm_rng_normal(&r));
            v = v < 0 ? 0 : v >= alphabet ? alphabet - 1 : v;
            break;
        }
        case HIST_ONE: v = alphabet == 256 ? 77 : 9; break;
        case HIST_TWO: v = (ellm_rng_next(&r) % 3) ? 3 : alphabet - 1; break;
        case HIST_ALL:
            v = i < (uint64_t)alphabet ? (int)i : (int)((ellm_rng_next(&r) % 4 == 0) ? ellm_rng_next(&r) % (uint64_t)alphabet : 5);
            break;
        case HIST_SKEW: {
            uint64_t x = ellm_rng_next(&r);
            int z = x ? __builtin_ctzll(x) : 63;
            v = z >= alphabet ? alphabet - 1 : z;
            break;
        }
        default: break;
        }
        s[i] = (uint8_t)v;
    }
}

/* Packs unpacked symbols the way decoded bits-4 output is laid out. */
static inline uint8_t *pack_expected(const uint8_t *s, uint64_t n, int bits) {
    uint64_t nb = ec_decoded_bytes(bits, n);
    uint8_t *p = calloc(nb ? nb : 1, 1);
    if (!p) return NULL;
    if (bits == 8) {
        memcpy(p, s, n);
    } else {
        for (uint64_t i = 0; i < n; i++) p[i / 2] |= (uint8_t)(s[i] << (4 * (i & 1)));
    }
    return p;
}

#endif
