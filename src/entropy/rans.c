/*
 * rans.c - interleaved rANS with frequency tables per class of rows or
 * columns (docs/CODED_BLOCK.md section 4).
 *
 * 32-bit states x in [L, L << 16) with L = 2^16, 16-bit renormalisation,
 * frequencies summing to M = 2^scale_bits (14 when encoding; the decoder
 * accepts 1..15). A segment's symbol i is coded by state i mod n_states
 * with the table of its class; all states share one stream of 16-bit words.
 * The encoder runs backwards over the segment and writes the stream
 * backwards, so the decoder reads forwards:
 *   decode: slot = x mod M; s = symbol of slot;
 *           x = freq[s] * (x >> scale_bits) + slot - start[s];
 *           if x < L: x = (x << 16) | next 16-bit word.
 * The encoder starts every state at L; a correct decode ends with every
 * state back at L and the stream consumed exactly.
 *
 * The table stores small integer weights z, not frequencies: frequencies
 * follow from them by a fixed rule, so a small tensor's table costs a few
 * bits per value (z ~ sqrt(count) / step) while a large one's can be as
 * precise as it likes (z up to 65535).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "entropy/ec_internal.h"

/* ------------------------------------------------------------------------ */
/* Frequencies from weights                                                 */
/* ------------------------------------------------------------------------ */

bool ec_rans_freqs_from_weights(const uint32_t *z, int alphabet, int scale_bits, uint16_t *freq) {
    const uint32_t total = 1u << scale_bits;
    uint64_t sum_w = 0;
    uint32_t used = 0;
    for (int s = 0; s < alphabet; s++) {
        if (z[s] > EC_RANS_MAX_WEIGHT) return false;
        sum_w += (uint64_t)z[s] * z[s];
        used += z[s] != 0;
    }
    if (used == 0 || used > total) return false;
    const uint64_t spare = total - used;
    uint32_t sum = 0;
    int top = -1;
    uint64_t top_w = 0;
    for (int s = 0; s < alphabet; s++) {
        uint64_t w = (uint64_t)z[s] * z[s];
        freq[s] = w ? (uint16_t)(1 + spare * w / sum_w) : 0;
        sum += freq[s];
        if (w > top_w) top_w = w, top = s;
    }
    freq[top] = (uint16_t)(freq[top] + (total - sum)); /* total - sum < used */
    return true;
}

/* ------------------------------------------------------------------------ */
/* Choosing the table                                                       */
/* ------------------------------------------------------------------------ */

/* Length of an order-k exp-Golomb code of z (docs/CODED_BLOCK.md 1.1). */
static inline int eg_bits(uint32_t z, int k) {
    uint32_t x = z + (1u << k);
    int b = 31 - __builtin_clz(x);
    return 2 * b - k + 1;
}

uint64_t ec_rans_weights_bits(const uint32_t *z, int alphabet, int bits, int k) {
    int lo = -1, hi = -1;
    for (int s = 0; s < alphabet; s++)
        if (z[s]) {
            if (lo < 0) lo = s;
            hi = s;
        }
    uint64_t total = 2 * (uint64_t)bits + 4;
    int32_t prev = 0;
    for (int s = lo; s >= 0 && s <= hi; s++) {
        total += (uint64_t)eg_bits(ec_zigzag((int32_t)z[s] - prev), k);
        prev = (int32_t)z[s];
    }
    return total;
}

/* Coded bits of a histogram under frequencies (each used symbol costs
 * scale_bits - log2 freq). */
static double coded_bits(const uint64_t *hist, const uint16_t *freq, int alphabet, int scale_bits) {
    double b = 0;
    for (int s = 0; s < alphabet; s++)
        if (hist[s]) b += (double)hist[s] * (scale_bits - log2((double)freq[s]));
    return b;
}

/* The weights with the fewest table + coded bits for one class: z = the
 * square root of the count times a step chosen from a ladder, so that the
 * largest weight is `top` (a few for small tensors, up to 65535 for large
 * ones). Returns the bits; z and *k receive the choice. */
static double choose_weights(const uint64_t *hist, int alphabet, int bits, int scale_bits, uint32_t *z_out,
                             int *k_out) {
    static const uint32_t tops[] = {1,   2,   3,   4,    5,    6,    7,    8,    10,    12,   14,  16,
                                    20,  24,  28,  32,   40,   48,   56,   64,   80,    96,   128, 160,
                                    192, 256, 384, 512,  768,  1024, 1536, 2048, 4096,  8192, 16384,
                                    32768, 65535};
    uint64_t cmax = 0;
    for (int s = 0; s < alphabet; s++) cmax = hist[s] > cmax ? hist[s] : cmax;
    double best = INFINITY;
    for (size_t t = 0; t < sizeof tops / sizeof tops[0]; t++) {
        double step = (double)tops[t] / sqrt((double)cmax);
        uint32_t z[256];
        for (int s = 0; s < alphabet; s++) {
            double w = hist[s] ? floor(sqrt((double)hist[s]) * step + 0.5) : 0;
            z[s] = hist[s] ? (uint32_t)(w < 1 ? 1 : w > EC_RANS_MAX_WEIGHT ? EC_RANS_MAX_WEIGHT : w) : 0;
        }
        uint16_t f[256];
        if (!ec_rans_freqs_from_weights(z, alphabet, scale_bits, f)) continue;
        double cb = coded_bits(hist, f, alphabet, scale_bits);
        for (int k = 0; k < 16; k++) {
            double total = cb + (double)ec_rans_weights_bits(z, alphabet, bits, k);
            if (total < best) {
                best = total;
                *k_out = k;
                memcpy(z_out, z, (size_t)alphabet * sizeof *z);
            }
        }
        if (tops[t] * tops[t] >= cmax * 4 && tops[t] >= 64) break; /* finer steps change nothing */
    }
    return best;
}

/* ---- classes of rows or columns ---- */

/* Tensors up to this size try classes; beyond it one table is within a
 * fraction of a percent and the search would cost compression time. */
#define CLASS_MAX_SYMBOLS (1u << 22)
#define CLASS_MAX_LINES 16384
#define CLASS_ROUNDS 6

typedef struct class_search {
    int alphabet, bits, scale_bits;
    uint64_t n_lines;
    const uint32_t *line_hist; /* n_lines x alphabet */
} class_search;

/* Histogram of every class under an assignment. */
static void class_hists(const class_search *cs, const uint8_t *cls, int n_classes,
                        uint64_t hist[EC_RANS_MAX_CLASSES][256]) {
    memset(hist, 0, sizeof(uint64_t) * EC_RANS_MAX_CLASSES * 256);
    for (uint64_t l = 0; l < cs->n_lines; l++)
        for (int s = 0; s < cs->alphabet; s++) hist[cls[l]][s] += cs->line_hist[l * (uint64_t)cs->alphabet + (uint64_t)s];
}

/* Starts from classes of equal size by the lines' spread around the mean,
 * then moves every line to the class that codes it in the fewest bits
 * (estimated with smoothed class histograms) until nothing moves. */
static void refine_classes(const class_search *cs, const double *spread, int n_classes, uint8_t *cls) {
    uint64_t *order = malloc(cs->n_lines * sizeof *order);
    if (!order) {
        memset(cls, 0, cs->n_lines);
        return;
    }
    /* lines by spread (a shell sort: qsort's comparator could not see
     * `spread` without global state) */
    for (uint64_t l = 0; l < cs->n_lines; l++) order[l] = l;
    for (uint64_t gap = cs->n_lines / 2; gap > 0; gap /= 2)
        for (uint64_t i = gap; i < cs->n_lines; i++) {
            uint64_t t = order[i], j = i;
            while (j >= gap && spread[order[j - gap]] > spread[t]) order[j] = order[j - gap], j -= gap;
            order[j] = t;
        }
    for (uint64_t r = 0; r < cs->n_lines; r++) cls[order[r]] = (uint8_t)(r * (uint64_t)n_classes / cs->n_lines);
    free(order);
    uint64_t hist[EC_RANS_MAX_CLASSES][256];
    double cost[EC_RANS_MAX_CLASSES][256];
    for (int round = 0; round < CLASS_ROUNDS; round++) {
        class_hists(cs, cls, n_classes, hist);
        for (int c = 0; c < n_classes; c++) {
            uint64_t total = 0;
            for (int s = 0; s < cs->alphabet; s++) total += hist[c][s];
            for (int s = 0; s < cs->alphabet; s++)
                cost[c][s] = -log2(((double)hist[c][s] + 0.5) / ((double)total + 0.5 * cs->alphabet));
        }
        uint64_t moved = 0;
        for (uint64_t l = 0; l < cs->n_lines; l++) {
            const uint32_t *h = cs->line_hist + l * (uint64_t)cs->alphabet;
            int best_c = cls[l];
            double best = INFINITY;
            for (int c = 0; c < n_classes; c++) {
                double b = 0;
                for (int s = 0; s < cs->alphabet; s++) b += h[s] * cost[c][s];
                if (b < best - 1e-9) best = b, best_c = c;
            }
            moved += best_c != cls[l];
            cls[l] = (uint8_t)best_c;
        }
        if (!moved) break;
    }
}

/* Renumbers classes so that the used ones are 0..k-1; returns k. */
static int compact_classes(const class_search *cs, uint8_t *cls, int n_classes) {
    int map[EC_RANS_MAX_CLASSES], k = 0;
    for (int c = 0; c < n_classes; c++) map[c] = -1;
    for (uint64_t l = 0; l < cs->n_lines; l++) {
        if (map[cls[l]] < 0) map[cls[l]] = k++;
        cls[l] = (uint8_t)map[cls[l]];
    }
    return k;
}

/* Line histograms of one axis: rows (a line = row_len consecutive symbols)
 * or columns (a line = every row_len-th symbol). */
static uint32_t *line_histograms(const uint8_t *symbols, uint64_t n, uint64_t row_len, int axis, int alphabet,
                                 uint64_t n_lines, double *spread) {
    uint32_t *lh = calloc(n_lines * (uint64_t)alphabet, sizeof *lh);
    if (!lh) return NULL;
    double mean = 0;
    for (uint64_t i = 0; i < n; i++) mean += symbols[i];
    mean /= (double)n;
    for (uint64_t l = 0; l < n_lines; l++) spread[l] = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = axis == 0 ? i / row_len : i % row_len;
        lh[l * (uint64_t)alphabet + symbols[i]]++;
        spread[l] += fabs((double)symbols[i] - mean);
    }
    return lh;
}

/* Fills the model's tables for an assignment and returns its bits (tables,
 * class map, geometry varint, coded symbols). */
static double classes_cost(const class_search *cs, const uint8_t *cls, int n_classes, ec_rans_choice *c) {
    uint64_t hist[EC_RANS_MAX_CLASSES][256];
    class_hists(cs, cls, n_classes, hist);
    double total = (double)cs->n_lines * ec_rans_class_bits(n_classes);
    for (int k = 0; k < n_classes; k++) {
        total += choose_weights(hist[k], cs->alphabet, cs->bits, cs->scale_bits, c->z[k], &c->k[k]);
        if (!ec_rans_freqs_from_weights(c->z[k], cs->alphabet, cs->scale_bits, c->model.freq[k])) return INFINITY;
    }
    return total;
}

ellm_status ec_rans_choose(const uint8_t *symbols, const uint64_t *hist, uint64_t n, int bits, uint64_t row_len,
                           ec_rans_choice *c, ellm_error *err) {
    const int alphabet = 1 << bits;
    memset(c, 0, sizeof *c);
    c->model.scale_bits = EC_RANS_SCALE_BITS;
    c->model.n_states = n >= EC_RANS_MANY_STATES_MIN ? EC_RANS_MAX_STATES : 1;
    c->model.n_classes = 1;
    if (!n) return ELLM_OK;
    double best = choose_weights(hist, alphabet, bits, c->model.scale_bits, c->z[0], &c->k[0]);
    const double one_table = best;
    if (!ec_rans_freqs_from_weights(c->z[0], alphabet, c->model.scale_bits, c->model.freq[0]))
        return ellm_fail(err, ELLM_E_INTERNAL, "rans: no frequencies for %llu symbols", (unsigned long long)n);
    if (!row_len || n % row_len || n > CLASS_MAX_SYMBOLS) return ELLM_OK;

    ec_rans_choice *trial = malloc(sizeof *trial);
    uint8_t *cls = malloc(n / row_len > row_len ? n / row_len : row_len);
    double *spread = malloc((n / row_len > row_len ? n / row_len : row_len) * sizeof *spread);
    ellm_status st = ELLM_OK;
    if (!trial || !cls || !spread) {
        st = ellm_fail(err, ELLM_E_NOMEM, "rans: out of memory choosing classes");
        goto done;
    }
    for (int axis = 0; axis < 2; axis++) {
        class_search cs = {.alphabet = alphabet, .bits = bits, .scale_bits = c->model.scale_bits,
                           .n_lines = axis == 0 ? n / row_len : row_len};
        if (cs.n_lines < 4 || cs.n_lines > CLASS_MAX_LINES) continue;
        uint32_t *lh = line_histograms(symbols, n, row_len, axis, alphabet, cs.n_lines, spread);
        if (!lh) {
            st = ellm_fail(err, ELLM_E_NOMEM, "rans: out of memory choosing classes");
            goto done;
        }
        cs.line_hist = lh;
        for (int k = 2; k <= EC_RANS_MAX_CLASSES; k++) {
            refine_classes(&cs, spread, k, cls);
            int used = compact_classes(&cs, cls, k);
            if (used < 2) break;
            memset(trial, 0, sizeof *trial);
            trial->model = c->model;
            double cost = classes_cost(&cs, cls, used, trial);
            cost += 8.0 * (double)ec_varint_size(row_len * 2 + (uint64_t)axis);
            /* Lines that gain nothing from two classes (i.i.d. weights)
             * will not from more: stop searching this axis. */
            if (cost >= one_table && k == 2) break;
            if (cost < best) {
                best = cost;
                uint8_t *keep = malloc(cs.n_lines);
                if (!keep) {
                    free(lh);
                    st = ellm_fail(err, ELLM_E_NOMEM, "rans: out of memory choosing classes");
                    goto done;
                }
                memcpy(keep, cls, cs.n_lines);
                free(c->model.cls);
                *c = *trial;
                c->model.n_classes = used;
                c->model.axis = axis;
                c->model.line = row_len;
                c->model.n_lines = cs.n_lines;
                c->model.cls = keep;
            }
        }
        free(lh);
    }
done:
    free(trial);
    free(cls);
    free(spread);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Encoder                                                                  */
/* ------------------------------------------------------------------------ */

uint64_t ec_rans_segment_bound(const ec_rans_model *m, uint32_t seg_count) {
    /* states, then at most one 16-bit word per symbol */
    return 4 * (uint64_t)m->n_states + 2 * (uint64_t)seg_count;
}

/* Class of symbol g of the tensor. */
static inline int class_of(const ec_rans_model *m, uint64_t g) {
    if (m->n_classes <= 1) return 0;
    return m->cls[m->axis == 0 ? g / m->line : g % m->line];
}

size_t ec_rans_encode_segment(const ec_rans_model *m, const uint8_t *sym, uint64_t first, uint32_t seg_count,
                              uint8_t *dst, uint64_t dst_cap) {
    static const int alphabet = 256;
    uint32_t start[EC_RANS_MAX_CLASSES][256];
    for (int c = 0; c < m->n_classes; c++) {
        uint32_t cum = 0;
        for (int s = 0; s < alphabet; s++) start[c][s] = cum, cum += m->freq[c][s];
    }
    const int scale_bits = m->scale_bits;
    uint32_t x[EC_RANS_MAX_STATES];
    for (int j = 0; j < m->n_states; j++) x[j] = EC_RANS_L;
    uint8_t *end = dst + dst_cap, *p = end;
    for (uint32_t i = seg_count; i-- > 0;) {
        uint32_t *xs = &x[i % (uint32_t)m->n_states];
        int c = class_of(m, first + i);
        unsigned s = sym[i];
        uint32_t f = m->freq[c][s];
        uint64_t x_max = (uint64_t)f << (32 - scale_bits);
        if (*xs >= x_max) {
            p -= 2;
            ellm_put_le16(p, (uint16_t)*xs);
            *xs >>= 16;
        }
        *xs = ((*xs / f) << scale_bits) + (*xs % f) + start[c][s];
    }
    for (int j = m->n_states; j-- > 0;) {
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

ellm_status ec_rans_tables_build(ec_rans_model *m, int alphabet, const char *what, void **tables_out,
                                 ellm_error *err) {
    const int scale_bits = m->scale_bits;
    if (scale_bits < 1 || scale_bits > EC_RANS_MAX_SCALE_BITS)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: rans scale %d bits is outside 1..%d", what, scale_bits,
                         EC_RANS_MAX_SCALE_BITS);
    for (int c = 0; c < m->n_classes; c++) {
        uint64_t sum = 0;
        for (int s = 0; s < alphabet; s++) sum += m->freq[c][s];
        if (sum != (1u << scale_bits))
            return ellm_fail(err, ELLM_E_FORMAT, "%s: rans frequencies of class %d sum to %llu, not 2^%d", what, c,
                             (unsigned long long)sum, scale_bits);
    }
    ec_tables *t = ellm_aligned_alloc(sizeof *t, err);
    if (!t) return ELLM_E_NOMEM;
    memset(t, 0, sizeof *t);
    ec_rans_tables *r = &t->u.rans;
    const size_t slots = (size_t)1 << scale_bits;
    r->sym = ellm_malloc((size_t)m->n_classes * slots, err);
    if (!r->sym) {
        free(t);
        return ELLM_E_NOMEM;
    }
    for (int c = 0; c < m->n_classes; c++) {
        uint32_t cum = 0;
        for (int s = 0; s < alphabet; s++) {
            memset(r->sym + (size_t)c * slots + cum, s, m->freq[c][s]);
            r->freq_start[c][s] = (uint32_t)m->freq[c][s] | (cum << 16);
            cum += m->freq[c][s];
        }
    }
    r->model = *m;
    m->cls = NULL; /* moved */
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

static ellm_status past_end(uint64_t segment, ellm_error *err) {
    return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: rans stream runs past the end of its bytes",
                     (unsigned long long)segment);
}
static ellm_status end_checks(uint64_t segment, size_t used, size_t seg_bytes, const uint32_t *x, int n_states,
                              ellm_error *err) {
    if (used != seg_bytes)
        return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: rans decoding used %zu of the segment's %zu bytes",
                         (unsigned long long)segment, used, seg_bytes);
    for (int j = 0; j < n_states; j++)
        if (x[j] != EC_RANS_L)
            return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: rans states do not end at their initial value",
                             (unsigned long long)segment);
    return ELLM_OK;
}

/* The fast loop: 8 states, one class. Inlined once for the usual scale (a
 * constant shift and mask) and once for any other. Reads at most 16 bytes
 * per round, checked against readable_end once per round. */
static inline __attribute__((always_inline)) ellm_status
rans_decode8(const ec_rans_tables *r, const unsigned scale, int bits, uint64_t segment, const uint8_t *seg,
             size_t seg_bytes, uint32_t count, const uint8_t *readable_end, uint8_t *o, ellm_error *err) {
    const uint8_t *sym = r->sym;
    const uint32_t *freq_start = r->freq_start[0];
    const uint32_t mask = (1u << scale) - 1;
    uint32_t x0 = ellm_le32(seg), x1 = ellm_le32(seg + 4), x2 = ellm_le32(seg + 8), x3 = ellm_le32(seg + 12);
    uint32_t x4 = ellm_le32(seg + 16), x5 = ellm_le32(seg + 20), x6 = ellm_le32(seg + 24), x7 = ellm_le32(seg + 28);
    const uint8_t *p = seg + 4 * EC_RANS_MAX_STATES;
    const uint8_t *lim = readable_end - 2 * EC_RANS_MAX_STATES; /* a round reads <= 16 bytes */
    uint32_t rounds = count / EC_RANS_MAX_STATES;
    if (bits == 8) {
        for (uint32_t i = 0; i < rounds; i++) {
            if (ELLM_UNLIKELY(p > lim)) return past_end(segment, err);
            RANS_STEP(0, o[0]); RANS_STEP(1, o[1]); RANS_STEP(2, o[2]); RANS_STEP(3, o[3]);
            RANS_STEP(4, o[4]); RANS_STEP(5, o[5]); RANS_STEP(6, o[6]); RANS_STEP(7, o[7]);
            o += 8;
        }
    } else {
        for (uint32_t i = 0; i < rounds; i++) {
            if (ELLM_UNLIKELY(p > lim)) return past_end(segment, err);
            uint8_t s0, s1, s2, s3, s4, s5, s6, s7;
            RANS_STEP(0, s0); RANS_STEP(1, s1); RANS_STEP(2, s2); RANS_STEP(3, s3);
            RANS_STEP(4, s4); RANS_STEP(5, s5); RANS_STEP(6, s6); RANS_STEP(7, s7);
            o[0] = (uint8_t)(s0 | s1 << 4), o[1] = (uint8_t)(s2 | s3 << 4);
            o[2] = (uint8_t)(s4 | s5 << 4), o[3] = (uint8_t)(s6 | s7 << 4);
            o += 4;
        }
    }
    /* Tail: fewer than 8 symbols, states 0.. in order. */
    uint32_t tail = count % EC_RANS_MAX_STATES;
    if (tail) {
        if (ELLM_UNLIKELY(p > lim)) return past_end(segment, err);
        uint8_t s[EC_RANS_MAX_STATES] = {0};
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
    const uint32_t x[8] = {x0, x1, x2, x3, x4, x5, x6, x7};
    return end_checks(segment, (size_t)(p - seg), seg_bytes, x, 8, err);
}

/* Classes of the symbols [first, first + count) of the tensor. */
static void fill_classes(const ec_rans_model *m, uint64_t first, uint32_t count, uint8_t *cb) {
    if (m->axis == 0) {
        uint64_t row = first / m->line, left = m->line - first % m->line;
        for (uint32_t k = 0; k < count;) {
            uint32_t run = (uint32_t)ELLM_MIN((uint64_t)(count - k), left);
            memset(cb + k, m->cls[row], run);
            k += run, row++, left = m->line;
        }
    } else {
        uint64_t col = first % m->line;
        for (uint32_t k = 0; k < count;) {
            uint32_t run = (uint32_t)ELLM_MIN((uint64_t)(count - k), m->line - col);
            memcpy(cb + k, m->cls + col, run);
            k += run, col = 0;
        }
    }
}

#define RANS_STEP_C(j, k, SYM_OUT)                                            \
    do {                                                                      \
        uint32_t c_ = c8[k]; /* the class of symbol k of this round */       \
        uint32_t slot_ = x##j & mask;                                         \
        uint32_t s_ = sym[(c_ << scale) + slot_];                             \
        uint32_t e_ = freq_start[(c_ << 8) + s_];                             \
        SYM_OUT = (uint8_t)s_;                                                \
        x##j = (e_ & 0xffffu) * (x##j >> scale) + slot_ - (e_ >> 16);         \
        uint32_t w_ = ellm_le16(p);                                           \
        uint32_t need_ = x##j < EC_RANS_L;                                    \
        x##j = (x##j << (need_ << 4)) | (w_ & (0u - need_));                  \
        p += need_ << 1;                                                      \
    } while (0)

/* 8 states with classes: the same unrolled loop, each symbol's tables
 * picked by its class, classes written for CLASS_CHUNK symbols at a time. */
#define CLASS_CHUNK 4096
static ellm_status rans_decode8_classes(const ec_rans_tables *r, int bits, uint64_t segment, uint64_t first,
                                        const uint8_t *seg, size_t seg_bytes, uint32_t count,
                                        const uint8_t *readable_end, uint8_t *o, ellm_error *err) {
    const ec_rans_model *m = &r->model;
    const unsigned scale = (unsigned)m->scale_bits;
    const uint8_t *sym = r->sym;
    const uint32_t *freq_start = &r->freq_start[0][0];
    const uint32_t mask = (1u << scale) - 1;
    uint32_t x0 = ellm_le32(seg), x1 = ellm_le32(seg + 4), x2 = ellm_le32(seg + 8), x3 = ellm_le32(seg + 12);
    uint32_t x4 = ellm_le32(seg + 16), x5 = ellm_le32(seg + 20), x6 = ellm_le32(seg + 24), x7 = ellm_le32(seg + 28);
    const uint8_t *p = seg + 4 * EC_RANS_MAX_STATES;
    const uint8_t *lim = readable_end - 2 * EC_RANS_MAX_STATES;
    uint8_t cb[CLASS_CHUNK];
    for (uint32_t done = 0; done < count;) {
        uint32_t chunk = ELLM_MIN(count - done, (uint32_t)CLASS_CHUNK); /* a multiple of 8 but the last */
        fill_classes(m, first + done, chunk, cb);
        uint32_t rounds = chunk / 8;
        for (uint32_t i = 0; i < rounds; i++) {
            if (ELLM_UNLIKELY(p > lim)) return past_end(segment, err);
            const uint8_t *c8 = cb + 8 * i;
            uint8_t s0, s1, s2, s3, s4, s5, s6, s7;
            RANS_STEP_C(0, 0, s0); RANS_STEP_C(1, 1, s1); RANS_STEP_C(2, 2, s2); RANS_STEP_C(3, 3, s3);
            RANS_STEP_C(4, 4, s4); RANS_STEP_C(5, 5, s5); RANS_STEP_C(6, 6, s6); RANS_STEP_C(7, 7, s7);
            if (bits == 8) {
                o[0] = s0, o[1] = s1, o[2] = s2, o[3] = s3, o[4] = s4, o[5] = s5, o[6] = s6, o[7] = s7;
                o += 8;
            } else {
                o[0] = (uint8_t)(s0 | s1 << 4), o[1] = (uint8_t)(s2 | s3 << 4);
                o[2] = (uint8_t)(s4 | s5 << 4), o[3] = (uint8_t)(s6 | s7 << 4);
                o += 4;
            }
        }
        uint32_t tail = chunk % 8; /* only in the segment's last chunk */
        if (tail) {
            if (ELLM_UNLIKELY(p > lim)) return past_end(segment, err);
            const uint8_t *c8 = cb + 8 * rounds;
            uint8_t t[EC_RANS_MAX_STATES] = {0};
            if (tail > 0) RANS_STEP_C(0, 0, t[0]);
            if (tail > 1) RANS_STEP_C(1, 1, t[1]);
            if (tail > 2) RANS_STEP_C(2, 2, t[2]);
            if (tail > 3) RANS_STEP_C(3, 3, t[3]);
            if (tail > 4) RANS_STEP_C(4, 4, t[4]);
            if (tail > 5) RANS_STEP_C(5, 5, t[5]);
            if (tail > 6) RANS_STEP_C(6, 6, t[6]);
            if (bits == 8) memcpy(o, t, tail);
            else
                for (uint32_t k = 0; k < tail; k += 2) o[k / 2] = (uint8_t)(t[k] | (k + 1 < tail ? t[k + 1] << 4 : 0));
        }
        done += chunk;
    }
    const uint32_t x[8] = {x0, x1, x2, x3, x4, x5, x6, x7};
    return end_checks(segment, (size_t)(p - seg), seg_bytes, x, 8, err);
}

/* Any number of states and classes, one symbol at a time; every word read
 * is checked against the segment's end. Small tensors use this. */
static ellm_status rans_decode_any(const ec_rans_tables *r, int bits, uint64_t segment, uint64_t first,
                                   const uint8_t *seg, size_t seg_bytes, uint32_t count, uint8_t *o,
                                   ellm_error *err) {
    const ec_rans_model *m = &r->model;
    const unsigned scale = (unsigned)m->scale_bits;
    const uint32_t mask = (1u << scale) - 1;
    const int ns = m->n_states;
    uint32_t x[EC_RANS_MAX_STATES];
    for (int j = 0; j < ns; j++) x[j] = ellm_le32(seg + 4 * j);
    const uint8_t *p = seg + 4 * ns, *end = seg + seg_bytes;
    /* position of symbol `first` in its line, for the class lookups */
    uint64_t line = m->n_classes > 1 ? m->line : UINT64_MAX;
    uint64_t row = m->n_classes > 1 ? first / line : 0, col = m->n_classes > 1 ? first % line : 0;
    int j = 0;
    for (uint32_t k = 0; k < count; k++) {
        int c = m->n_classes <= 1 ? 0 : m->cls[m->axis == 0 ? row : col];
        uint32_t slot = x[j] & mask;
        uint32_t s = r->sym[((size_t)c << scale) + slot];
        uint32_t e = r->freq_start[c][s];
        x[j] = (e & 0xffffu) * (x[j] >> scale) + slot - (e >> 16);
        if (x[j] < EC_RANS_L) {
            if (ELLM_UNLIKELY(end - p < 2)) return past_end(segment, err);
            x[j] = (x[j] << 16) | ellm_le16(p);
            p += 2;
        }
        if (bits == 8) o[k] = (uint8_t)s;
        else if (k & 1) o[k / 2] |= (uint8_t)(s << 4);
        else o[k / 2] = (uint8_t)s;
        if (++j == ns) j = 0;
        if (++col == line) col = 0, row++;
    }
    return end_checks(segment, (size_t)(p - seg), seg_bytes, x, ns, err);
}

ellm_status ec_rans_decode_segment(const ec_view *v, uint64_t segment, const uint8_t *seg, size_t seg_bytes,
                                   const uint8_t *readable_end, uint8_t *out, ellm_error *err) {
    const ec_tables *t = v->tables;
    const ec_rans_tables *r = &t->u.rans;
    const ec_rans_model *m = &r->model;
    uint32_t count = ec_segment_count(v, segment);
    if (seg_bytes < 4 * (size_t)m->n_states)
        return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: %zu bytes cannot hold the %d rans states",
                         (unsigned long long)segment, seg_bytes, m->n_states);
    uint8_t *o = out + ec_segment_out_offset(v, segment);
    if (m->n_states == EC_RANS_MAX_STATES && m->n_classes > 1)
        return rans_decode8_classes(r, v->bits, segment, segment * v->segment_symbols, seg, seg_bytes, count,
                                    readable_end, o, err);
    if (m->n_states != EC_RANS_MAX_STATES)
        return rans_decode_any(r, v->bits, segment, segment * v->segment_symbols, seg, seg_bytes, count, o, err);
    if (m->scale_bits == EC_RANS_SCALE_BITS)
        return rans_decode8(r, EC_RANS_SCALE_BITS, v->bits, segment, seg, seg_bytes, count, readable_end, o, err);
    return rans_decode8(r, (unsigned)m->scale_bits, v->bits, segment, seg, seg_bytes, count, readable_end, o, err);
}
