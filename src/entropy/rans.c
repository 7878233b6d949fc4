/*
 * rans.c - interleaved rANS (docs/CODED_BLOCK.md, "rANS segments").
 *
 * 32-bit states x in [L, L << 16) with L = 2^16, 16-bit renormalisation,
 * frequencies summing to M = 2^scale_bits (14 when encoding; the decoder
 * accepts 1..15). A segment's
 * symbol i is coded by state i mod 8; all states share one stream of 16-bit
 * words. The encoder runs backwards over the segment and writes the stream
 * backwards, so the decoder reads forwards:
 *   decode: slot = x mod M; s = symbol of slot;
 *           x = freq[s] * (x >> scale_bits) + slot - start[s];
 *           if x < L: x = (x << 16) | next 16-bit word.
 * The encoder starts every state at L; a correct decode ends with every
 * state back at L and the stream consumed exactly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "entropy/ec_internal.h"

/* ------------------------------------------------------------------------ */
/* Frequencies                                                              */
/* ------------------------------------------------------------------------ */

ellm_status ec_rans_normalize(const uint64_t *hist, int alphabet, int scale_bits, uint16_t *freq,
                              ellm_error *err) {
    const uint32_t total_freq = 1u << scale_bits;
    uint64_t total = 0;
    int used = 0;
    for (int s = 0; s < alphabet; s++) {
        total += hist[s];
        used += hist[s] != 0;
    }
    memset(freq, 0, (size_t)alphabet * sizeof *freq);
    if (used == 0) return ELLM_OK;
    if ((uint32_t)used > total_freq)
        return ellm_fail(err, ELLM_E_ARG, "rans: %d symbols do not fit %u frequency slots", used,
                         total_freq);
    int64_t sum = 0;
    for (int s = 0; s < alphabet; s++) {
        if (!hist[s]) continue;
        double f = floor((double)hist[s] * total_freq / (double)total + 0.5);
        if (f < 1) f = 1;
        if (f > total_freq) f = total_freq;
        freq[s] = (uint16_t)f;
        sum += freq[s];
    }
    /* Move the sum to total_freq one step at a time, each step the change
     * that costs the fewest coded bits (count * log2 ratio). */
    while (sum != (int64_t)total_freq) {
        int best = -1;
        double best_cost = INFINITY;
        for (int s = 0; s < alphabet; s++) {
            if (!hist[s]) continue;
            double cost;
            if (sum < (int64_t)total_freq)
                cost = -(double)hist[s] * log2((freq[s] + 1.0) / freq[s]);
            else if (freq[s] > 1)
                cost = (double)hist[s] * log2((double)freq[s] / (freq[s] - 1.0));
            else
                continue;
            if (cost < best_cost) best_cost = cost, best = s;
        }
        if (best < 0) return ellm_fail(err, ELLM_E_INTERNAL, "rans: cannot normalise frequencies");
        if (sum < (int64_t)total_freq)
            freq[best]++, sum++;
        else
            freq[best]--, sum--;
    }
    return ELLM_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoder                                                                  */
/* ------------------------------------------------------------------------ */

uint64_t ec_rans_segment_bound(uint32_t seg_count) {
    /* states, then at most one 16-bit word per symbol */
    return 4 * EC_RANS_STATES + 2 * (uint64_t)seg_count;
}

size_t ec_rans_encode_segment(const uint16_t *freq, int alphabet, int scale_bits, const uint8_t *sym,
                              uint32_t seg_count, uint8_t *dst, uint64_t dst_cap) {
    uint32_t start[256];
    uint32_t cum = 0;
    for (int s = 0; s < alphabet; s++) start[s] = cum, cum += freq[s];
    uint32_t x[EC_RANS_STATES];
    for (int j = 0; j < EC_RANS_STATES; j++) x[j] = EC_RANS_L;
    uint8_t *end = dst + dst_cap, *p = end;
    for (uint32_t i = seg_count; i-- > 0;) {
        uint32_t *xs = &x[i % EC_RANS_STATES];
        unsigned s = sym[i];
        uint32_t f = freq[s];
        uint64_t x_max = (uint64_t)f << (32 - scale_bits);
        if (*xs >= x_max) {
            p -= 2;
            ellm_put_le16(p, (uint16_t)*xs);
            *xs >>= 16;
        }
        *xs = ((*xs / f) << scale_bits) + (*xs % f) + start[s];
    }
    for (int j = EC_RANS_STATES; j-- > 0;) {
        p -= 4;
        ellm_put_le32(p, x[j]);
    }
    size_t n = (size_t)(end - p);
    memmove(dst, p, n);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Decoder                                                                  */
/* ------------------------------------------------------------------------ */

ellm_status ec_rans_tables_build(const uint16_t *freq, int alphabet, int scale_bits, const char *what,
                                 void **tables_out, ellm_error *err) {
    if (scale_bits < 1 || scale_bits > EC_RANS_MAX_SCALE_BITS)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: rans scale %d bits is outside 1..%d", what, scale_bits,
                         EC_RANS_MAX_SCALE_BITS);
    uint64_t sum = 0;
    for (int s = 0; s < alphabet; s++) sum += freq[s];
    if (sum != (1u << scale_bits))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: rans frequencies sum to %llu, not 2^%d", what,
                         (unsigned long long)sum, scale_bits);
    ec_tables *t = ellm_aligned_alloc(sizeof *t, err);
    if (!t) return ELLM_E_NOMEM;
    memset(t, 0, sizeof *t);
    ec_rans_tables *r = &t->u.rans;
    r->scale_bits = scale_bits;
    uint32_t cum = 0;
    for (int s = 0; s < alphabet; s++) {
        memset(r->sym + cum, s, freq[s]);
        r->freq_start[s] = (uint32_t)freq[s] | (cum << 16);
        cum += freq[s];
    }
    *tables_out = t;
    return ELLM_OK;
}

#define RANS_STEP(j, SYM_OUT)                                                 \
    do {                                                                      \
        uint32_t slot_ = x##j & mask;                                         \
        uint32_t s_ = sym[slot_];                                             \
        uint32_t e_ = freq_start[s_];                                         \
        SYM_OUT = (uint8_t)s_;                                                \
        x##j = (e_ & 0xffffu) * (x##j >> scale) + slot_ - (e_ >> 16);         \
        uint32_t w_ = ellm_le16(p);                                           \
        uint32_t need_ = x##j < EC_RANS_L; /* arithmetic, not a branch */     \
        x##j = (x##j << (need_ << 4)) | (w_ & (0u - need_));                  \
        p += need_ << 1;                                                      \
    } while (0)

/* The decode loop, inlined once for the usual scale (a constant shift and
 * mask) and once for any other. */
static inline __attribute__((always_inline)) ellm_status
rans_decode(const ec_rans_tables *r, const unsigned scale, int bits, uint64_t segment, const uint8_t *seg,
            size_t seg_bytes, uint32_t count, const uint8_t *block_end, uint8_t *o, ellm_error *err) {
    const uint8_t *sym = r->sym;
    const uint32_t *freq_start = r->freq_start;
    const uint32_t mask = (1u << scale) - 1;
    uint32_t x0 = ellm_le32(seg), x1 = ellm_le32(seg + 4), x2 = ellm_le32(seg + 8), x3 = ellm_le32(seg + 12);
    uint32_t x4 = ellm_le32(seg + 16), x5 = ellm_le32(seg + 20), x6 = ellm_le32(seg + 24), x7 = ellm_le32(seg + 28);
    const uint8_t *p = seg + 4 * EC_RANS_STATES;
    const uint8_t *lim = block_end - 2 * EC_RANS_STATES; /* a round reads <= 16 bytes */
    uint32_t rounds = count / EC_RANS_STATES;
    if (bits == 8) {
        for (uint32_t i = 0; i < rounds; i++) {
            if (ELLM_UNLIKELY(p > lim)) goto past_end;
            RANS_STEP(0, o[0]); RANS_STEP(1, o[1]); RANS_STEP(2, o[2]); RANS_STEP(3, o[3]);
            RANS_STEP(4, o[4]); RANS_STEP(5, o[5]); RANS_STEP(6, o[6]); RANS_STEP(7, o[7]);
            o += 8;
        }
    } else {
        for (uint32_t i = 0; i < rounds; i++) {
            if (ELLM_UNLIKELY(p > lim)) goto past_end;
            uint8_t s0, s1, s2, s3, s4, s5, s6, s7;
            RANS_STEP(0, s0); RANS_STEP(1, s1); RANS_STEP(2, s2); RANS_STEP(3, s3);
            RANS_STEP(4, s4); RANS_STEP(5, s5); RANS_STEP(6, s6); RANS_STEP(7, s7);
            o[0] = (uint8_t)(s0 | s1 << 4), o[1] = (uint8_t)(s2 | s3 << 4);
            o[2] = (uint8_t)(s4 | s5 << 4), o[3] = (uint8_t)(s6 | s7 << 4);
            o += 4;
        }
    }
    /* Tail: fewer than 8 symbols, states 0.. in order. */
    uint32_t tail = count % EC_RANS_STATES;
    if (tail) {
        if (ELLM_UNLIKELY(p > lim)) goto past_end;
        uint8_t s[EC_RANS_STATES] = {0};
        if (tail > 0) RANS_STEP(0, s[0]);
        if (tail > 1) RANS_STEP(1, s[1]);
        if (tail > 2) RANS_STEP(2, s[2]);
        if (tail > 3) RANS_STEP(3, s[3]);
        if (tail > 4) RANS_STEP(4, s[4]);
        if (tail > 5) RANS_STEP(5, s[5]);
        if (tail > 6) RANS_STEP(6, s[6]);
        if (bits == 8) {
            memcpy(o, s, tail);
        } else {
            for (uint32_t k = 0; k < tail; k += 2) o[k / 2] = (uint8_t)(s[k] | (k + 1 < tail ? s[k + 1] << 4 : 0));
        }
    }
    size_t used = (size_t)(p - seg);
    if (used != seg_bytes)
        return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: rans decoding used %zu of the segment's %zu bytes",
                         (unsigned long long)segment, used, seg_bytes);
    if ((x0 != EC_RANS_L) | (x1 != EC_RANS_L) | (x2 != EC_RANS_L) | (x3 != EC_RANS_L) |
        (x4 != EC_RANS_L) | (x5 != EC_RANS_L) | (x6 != EC_RANS_L) | (x7 != EC_RANS_L))
        return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: rans states do not end at their initial value",
                         (unsigned long long)segment);
    return ELLM_OK;
past_end:
    return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: rans stream runs past the end of the block",
                     (unsigned long long)segment);
}

ellm_status ec_rans_decode_segment(const ec_view *v, uint64_t segment, const uint8_t *seg,
                                   size_t seg_bytes, uint8_t *out, ellm_error *err) {
    const ec_tables *t = v->tables;
    const ec_rans_tables *r = &t->u.rans;
    uint32_t count = ec_segment_count(v, segment);
    if (seg_bytes < 4 * EC_RANS_STATES)
        return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: %zu bytes cannot hold the %d rans states",
                         (unsigned long long)segment, seg_bytes, EC_RANS_STATES);
    uint8_t *o = out + ec_segment_out_offset(v, segment);
    if (r->scale_bits == EC_RANS_SCALE_BITS)
        return rans_decode(r, EC_RANS_SCALE_BITS, v->bits, segment, seg, seg_bytes, count, t->block_end, o, err);
    return rans_decode(r, (unsigned)r->scale_bits, v->bits, segment, seg, seg_bytes, count, t->block_end, o, err);
}
