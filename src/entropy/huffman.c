/*
 * huffman.c - length-limited canonical Huffman: code lengths by
 * package-merge (optimal under the length limit), canonical code
 * assignment, the segment encoder and the fast segment decoders.
 *
 * Stream convention (docs/CODED_BLOCK.md): bits are packed LSB-first into
 * bytes; a code of length l with canonical value c is emitted with its most
 * significant bit first, i.e. as the l-bit bit-reversal of c added at the
 * current bit position. The decoder therefore looks up the next 11 stream
 * bits (as the low bits of a little-endian word) in a 2^11-entry table.
 *
 * Both widths code bytes (bits 4: the pair of nibbles the decoded layout
 * keeps in one byte), so one decoder serves both and writes whole bytes.
 *
 * Decoder: each segment holds EC_HUF_LANES independent lane streams; one
 * thread decodes the four lanes interleaved so that the load -> shift chains
 * of the lanes overlap. Bits live in a 64-bit word with a sentinel bit above
 * the valid bits, so the number of bits consumed is clz(word) and a refill is
 * branchless: p += clz >> 3; word = (load64(p) | 1 << 63) >> (clz & 7). After
 * a refill at least 56 bits are valid: five codes of <= 11 bits.
 */
#include <stdlib.h>
#include <string.h>

#include "entropy/ec_internal.h"

/* ------------------------------------------------------------------------ */
/* Code lengths: package-merge                                              */
/* ------------------------------------------------------------------------ */

typedef struct pm_node {
    uint64_t weight;
    int32_t left, right; /* children for a package; left = -1 - leaf for a leaf */
} pm_node;

typedef struct pm_leaf {
    uint64_t weight;
    int symbol;
} pm_leaf;

static int leaf_cmp(const void *a, const void *b) {
    const pm_leaf *x = a, *y = b;
    if (x->weight != y->weight) return x->weight < y->weight ? -1 : 1;
    return x->symbol - y->symbol;
}

ellm_status ec_huffman_lengths(const uint64_t *hist, int alphabet, int max_len, uint8_t *lens,
                               ellm_error *err) {
    if (alphabet < 1 || alphabet > 256)
        return ellm_fail(err, ELLM_E_ARG, "huffman: alphabet %d out of range", alphabet);
    if (max_len < 1 || max_len > 15)
        return ellm_fail(err, ELLM_E_ARG, "huffman: length limit %d out of range", max_len);
    memset(lens, 0, (size_t)alphabet);
    pm_leaf leaves[256];
    int n = 0;
    for (int s = 0; s < alphabet; s++)
        if (hist[s]) leaves[n++] = (pm_leaf){hist[s], s};
    if (n == 0) return ELLM_OK;
    if (n == 1) {
        lens[leaves[0].symbol] = 1;
        return ELLM_OK;
    }
    if ((uint64_t)n > (1ull << max_len))
        return ellm_fail(err, ELLM_E_ARG, "huffman: %d symbols cannot have codes of <= %d bits", n,
                         max_len);
    qsort(leaves, (size_t)n, sizeof leaves[0], leaf_cmp);

    /* Node pool: the n leaves, then at most n - 1 packages per level. */
    size_t cap = (size_t)n * (size_t)max_len + 1;
    pm_node *nodes = ellm_malloc(cap * sizeof *nodes, err);
    int32_t *cur = ellm_malloc(2 * (size_t)n * sizeof *cur, err);
    int32_t *next = ellm_malloc(2 * (size_t)n * sizeof *next, err);
    int32_t *stack = ellm_malloc(((size_t)n * (size_t)max_len * 2 + 2) * sizeof *stack, err);
    if (!nodes || !cur || !next || !stack) {
        free(nodes), free(cur), free(next), free(stack);
        return ELLM_E_NOMEM;
    }
    size_t used = 0;
    for (int i = 0; i < n; i++) nodes[used++] = (pm_node){leaves[i].weight, -1 - i, 0};
    int n_cur = n;
    for (int i = 0; i < n; i++) cur[i] = i;

    /* Each level: package adjacent pairs of the previous list, merge with
     * the leaves (leaves first on equal weight). */
    for (int level = 1; level < max_len; level++) {
        int n_pkg = n_cur / 2;
        size_t pkg_base = used;
        for (int k = 0; k < n_pkg; k++) {
            const pm_node *a = &nodes[cur[2 * k]], *b = &nodes[cur[2 * k + 1]];
            nodes[used++] = (pm_node){a->weight + b->weight, cur[2 * k], cur[2 * k + 1]};
        }
        int i = 0, k = 0, m = 0;
        while (i < n || k < n_pkg) {
            if (k >= n_pkg || (i < n && nodes[i].weight <= nodes[pkg_base + (size_t)k].weight))
                next[m++] = i++;
            else
                next[m++] = (int32_t)(pkg_base + (size_t)k++);
        }
        int32_t *t = cur;
        cur = next;
        next = t;
        n_cur = m;
    }
    /* The first 2n - 2 items of the final list; each occurrence of a leaf
     * inside them adds one to its code length. */
    int top = 0;
    for (int i = 0; i < 2 * n - 2; i++) stack[top++] = cur[i];
    uint32_t depth[256] = {0};
    while (top > 0) {
        const pm_node *node = &nodes[stack[--top]];
        if (node->left < 0) {
            depth[-1 - node->left]++;
        } else {
            stack[top++] = node->left;
            stack[top++] = node->right;
        }
    }
    for (int i = 0; i < n; i++) lens[leaves[i].symbol] = (uint8_t)depth[i];
    free(nodes), free(cur), free(next), free(stack);
    return ELLM_OK;
}

/* ------------------------------------------------------------------------ */
/* Canonical codes                                                          */
/* ------------------------------------------------------------------------ */

void ec_huf_codes(const uint8_t *lens, int alphabet, uint16_t *codes) {
    uint32_t count[EC_HUF_MAX_LEN + 2] = {0}, next[EC_HUF_MAX_LEN + 2] = {0};
    for (int s = 0; s < alphabet; s++) count[lens[s]]++;
    count[0] = 0;
    uint32_t code = 0;
    for (int l = 1; l <= EC_HUF_MAX_LEN; l++) {
        code = (code + count[l - 1]) << 1;
        next[l] = code;
    }
    for (int s = 0; s < alphabet; s++) codes[s] = lens[s] ? (uint16_t)next[lens[s]]++ : 0;
}

static uint32_t reverse_bits(uint32_t v, int n) {
    uint32_t r = 0;
    for (int i = 0; i < n; i++) r |= ((v >> i) & 1u) << (n - 1 - i);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Encoder                                                                  */
/* ------------------------------------------------------------------------ */

uint64_t ec_huf_segment_bound(uint32_t seg_count) {
    return EC_HUF_LANE_HEADER_MAX + ((uint64_t)seg_count * EC_HUF_MAX_LEN + 7) / 8 + EC_HUF_LANES;
}

void ec_huf_stream_codes(const uint8_t *lens, int alphabet, uint32_t *rcode) {
    uint16_t codes[256];
    ec_huf_codes(lens, alphabet, codes);
    for (int s = 0; s < alphabet; s++) rcode[s] = lens[s] ? reverse_bits(codes[s], lens[s]) : 0;
}

void ec_huf_lane_bytes(const uint8_t *lens, const uint8_t *sym, uint32_t units,
                       uint32_t lane_bytes[EC_HUF_LANES]) {
    uint32_t lane_count[EC_HUF_LANES];
    ec_huf_lane_split(units, lane_count);
    for (int j = 0; j < EC_HUF_LANES; j++) {
        uint64_t total = 0;
        for (uint32_t i = 0; i < lane_count[j]; i++) total += lens[sym[i]];
        lane_bytes[j] = (uint32_t)((total + 7) / 8);
        sym += lane_count[j];
    }
}

/* Writes one lane into exactly [dst, dst + nbytes): 8-byte stores while 8
 * bytes remain, then byte by byte, so parallel encoders writing neighbouring
 * lanes and segments of one block never touch each other's bytes. */
static void encode_lane(const uint8_t *lens, const uint32_t *rcode, const uint8_t *sym, uint32_t n,
                        uint8_t *dst, size_t nbytes) {
    uint8_t *p = dst, *const end = dst + nbytes;
    uint64_t acc = 0;
    unsigned fill = 0; /* < 8 between flushes */
    uint32_t i = 0;
    for (; i + 4 <= n && end - p >= 8; i += 4) { /* 4 codes: at most 7 + 44 bits */
        for (int k = 0; k < 4; k++) {
            unsigned s = sym[i + (uint32_t)k];
            acc |= (uint64_t)rcode[s] << fill;
            fill += lens[s];
        }
        ec_store64(p, acc);
        p += fill >> 3;
        acc >>= fill & ~7u;
        fill &= 7;
    }
    for (; i < n; i++) {
        unsigned s = sym[i];
        acc |= (uint64_t)rcode[s] << fill;
        fill += lens[s];
        for (; fill >= 8; fill -= 8, acc >>= 8) *p++ = (uint8_t)acc;
    }
    if (fill) *p++ = (uint8_t)acc; /* the last byte, zero-padded */
}

size_t ec_huf_lane_header_bytes(const uint32_t lane_bytes[EC_HUF_LANES]) {
    size_t n = 0;
    for (int j = 0; j < EC_HUF_LANES - 1; j++) n += ec_varint_size(lane_bytes[j]);
    return n;
}

void ec_huf_encode_segment(const uint8_t *lens, const uint32_t *rcode, const uint8_t *sym, uint32_t units,
                           const uint32_t lane_bytes[EC_HUF_LANES], uint8_t *dst) {
    uint32_t lane_count[EC_HUF_LANES];
    ec_huf_lane_split(units, lane_count);
    size_t pos = 0;
    for (int j = 0; j < EC_HUF_LANES - 1; j++) pos += ec_varint_put(dst + pos, lane_bytes[j]);
    for (int j = 0; j < EC_HUF_LANES; j++) {
        encode_lane(lens, rcode, sym, lane_count[j], dst + pos, lane_bytes[j]);
        pos += lane_bytes[j];
        sym += lane_count[j];
    }
}

/* ------------------------------------------------------------------------ */
/* Decode tables                                                            */
/* ------------------------------------------------------------------------ */

#define HUF_MASK ((1u << EC_HUF_MAX_LEN) - 1)

ellm_status ec_huf_tables_build(const uint8_t *lens, const char *what, void **tables_out, ellm_error *err) {
    const int alphabet = EC_UNIT_ALPHABET;
    /* Kraft sum in units of 2^-EC_HUF_MAX_LEN. */
    uint64_t kraft = 0;
    int used = 0, only = 0;
    for (int s = 0; s < alphabet; s++) {
        if (lens[s] > EC_HUF_MAX_LEN)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: huffman code length %u of symbol %d exceeds %d",
                             what, lens[s], s, EC_HUF_MAX_LEN);
        if (lens[s]) {
            kraft += 1ull << (EC_HUF_MAX_LEN - lens[s]);
            used++;
            only = s;
        }
    }
    const uint64_t full = 1ull << EC_HUF_MAX_LEN;
    if (used == 1 && lens[only] != 1)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: the only used symbol %d has code length %u, not 1",
                         what, only, lens[only]);
    if (used >= 2 && kraft != full)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: huffman code lengths are not a complete prefix code (Kraft sum %llu/%llu)",
                         what, (unsigned long long)kraft, (unsigned long long)full);
    ec_tables *t = ellm_aligned_alloc(sizeof *t, err);
    if (!t) return ELLM_E_NOMEM;
    memset(t, 0, sizeof *t);
    ec_huf_tables *h = &t->u.huf;
    h->used_symbols = used;
    h->only_symbol = only;
    if (used >= 2) {
        uint16_t codes[256];
        ec_huf_codes(lens, alphabet, codes);
        for (int s = 0; s < alphabet; s++) {
            int l = lens[s];
            if (!l) continue;
            uint32_t r = reverse_bits(codes[s], l);
            for (uint32_t k = 0; k < (1u << (EC_HUF_MAX_LEN - l)); k++)
                h->single[r | (k << l)] = (uint16_t)(l | (s << 8));
        }
    }
    *tables_out = t;
    return ELLM_OK;
}

bool ec_huf_segment_lanes(const uint8_t *seg, size_t seg_bytes, uint32_t units, size_t lane_bytes[EC_HUF_LANES],
                          size_t *data) {
    uint32_t lane_count[EC_HUF_LANES];
    ec_huf_lane_split(units, lane_count);
    const uint8_t *p = seg, *end = seg + seg_bytes;
    uint64_t nb[EC_HUF_LANES];
    for (int j = 0; j < EC_HUF_LANES - 1; j++)
        if (!ec_varint_get(&p, end, &nb[j])) return false;
    uint64_t left = (uint64_t)(end - p);
    for (int j = 0; j < EC_HUF_LANES; j++) {
        if (j == EC_HUF_LANES - 1) nb[j] = left;
        /* every code has 1..EC_HUF_MAX_LEN bits */
        if (nb[j] > left || nb[j] < (lane_count[j] + 7ull) / 8 ||
            nb[j] > ((uint64_t)lane_count[j] * EC_HUF_MAX_LEN + 7) / 8)
            return false;
        left -= nb[j];
        lane_bytes[j] = (size_t)nb[j];
    }
    *data = (size_t)(p - seg);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Decoders                                                                 */
/* ------------------------------------------------------------------------ */

#define TOP_BIT (1ull << 63)

typedef struct lane {
    const uint8_t *start, *p;
    uint64_t b;         /* stream bits, sentinel above the valid ones */
    size_t bytes;       /* lane length in the block */
    uint32_t count;     /* units (bytes) */
    uint8_t *out;       /* next output byte */
    uint8_t *out_start;
} lane;

static inline uint64_t lane_consumed_bits(const lane *l) {
    return (uint64_t)(l->p - l->start) * 8 + (uint64_t)__builtin_clzll(l->b);
}

/* Refill with a bounds check before the load: false if the lane would read
 * past lim (= readable end - 8), which only a corrupt stream does. */
static inline bool refill_checked(const uint8_t **p, uint64_t *b, const uint8_t *lim) {
    unsigned c = (unsigned)__builtin_clzll(*b);
    const uint8_t *np = *p + (c >> 3);
    if (ELLM_UNLIKELY(np > lim)) return false;
    *p = np;
    *b = (ec_load64(np) | TOP_BIT) >> (c & 7);
    return true;
}

/* The lane consumed exactly its bytes (the last one zero-padded). */
static ellm_status lane_check_end(const lane *l, int j, const ec_view *v, uint64_t segment,
                                  ellm_error *err) {
    uint64_t used = lane_consumed_bits(l);
    if ((used + 7) / 8 != l->bytes)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "segment %llu lane %d: decoding %u symbols used %llu bits, the lane holds %zu bytes",
                         (unsigned long long)segment, j, l->count,
                         (unsigned long long)used, l->bytes);
    return ELLM_OK;
}

static ellm_status read_past_block(uint64_t segment, ellm_error *err) {
    return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: huffman stream runs past the end of the block",
                     (unsigned long long)segment);
}

/* Rounds (a refill and <= 55 bits of codes) a lane can run, whatever its
 * bits, before a refill could read past the block: round r refills at
 * p <= start + floor(55 r / 8) and reads 8 bytes there. */
static uint64_t safe_rounds(const lane *l, const uint8_t *block_end) {
    uint64_t avail = (uint64_t)(block_end - l->p) - 8; /* p + 8 <= block_end always */
    return avail * 8 / 55 + 1;
}

/* All lanes interleaved, five units per lane per refill. Lanes
 * 0..EC_HUF_LANES-2 hold `per` units each, so lane j writes at o + j per. */
#if EC_HUF_LANES != 4
#error "the decoders below interleave exactly four lanes"
#endif
#define FOR_LANES(X) X(0) X(1) X(2) X(3)
/* Table entries keep bits 4-5 zero, so "& 63" is the shift count itself
 * (and compiles to a bare shrx, which masks the count to 6 bits anyway). */
#define LANE_VARS(j) const uint8_t *p##j = ln[j].p; uint64_t b##j = ln[j].b;
#define LANE_SAVE(j) ln[j].p = p##j, ln[j].b = b##j;
#define LANE_REFILL(j)                                          \
    {                                                           \
        unsigned c_ = (unsigned)__builtin_clzll(b##j);          \
        p##j += c_ >> 3;                                        \
        b##j = (ec_load64(p##j) | TOP_BIT) >> (c_ & 7);         \
    }
#define LANE_DEC(j, k)                                          \
    {                                                           \
        uint16_t e_ = tab[b##j & HUF_MASK];                     \
        b##j >>= (e_ & 63u);                                    \
        o[(j) * per + (k)] = (uint8_t)(e_ >> 8);                \
    }
#define LANE_DEC0(j) LANE_DEC(j, 0)
#define LANE_DEC1(j) LANE_DEC(j, 1)
#define LANE_DEC2(j) LANE_DEC(j, 2)
#define LANE_DEC3(j) LANE_DEC(j, 3)
#define LANE_DEC4(j) LANE_DEC(j, 4)

static ellm_status decode_lanes(const ec_huf_tables *h, lane *ln, const uint8_t *block_end, uint64_t segment,
                           ellm_error *err) {
    const uint16_t *tab = h->single;
    uint64_t rounds = ln[0].count;
    for (int j = 1; j < EC_HUF_LANES; j++) rounds = ELLM_MIN(rounds, ln[j].count);
    rounds /= 5;
    for (int j = 0; j < EC_HUF_LANES; j++) rounds = ELLM_MIN(rounds, safe_rounds(&ln[j], block_end));
    FOR_LANES(LANE_VARS)
    uint8_t *o = ln[0].out;
    const size_t per = (size_t)(ln[1].out - ln[0].out);
    uint8_t *const o_end = o + 5 * rounds;
    while (o != o_end) {
        FOR_LANES(LANE_REFILL)
        FOR_LANES(LANE_DEC0)
        FOR_LANES(LANE_DEC1)
        FOR_LANES(LANE_DEC2)
        FOR_LANES(LANE_DEC3)
        FOR_LANES(LANE_DEC4)
        o += 5;
    }
    FOR_LANES(LANE_SAVE)
    for (int j = 0; j < EC_HUF_LANES; j++) ln[j].out += 5 * rounds;
    /* Tails, one lane at a time, checking every refill. */
    const uint8_t *lim = block_end - 8;
    for (int j = 0; j < EC_HUF_LANES; j++) {
        lane *l = &ln[j];
        uint32_t left = l->count - (uint32_t)(l->out - l->out_start);
        while (left) {
            if (!refill_checked(&l->p, &l->b, lim)) return read_past_block(segment, err);
            uint32_t k = ELLM_MIN(left, 5u);
            for (uint32_t i = 0; i < k; i++) {
                uint16_t e = tab[l->b & HUF_MASK];
                l->b >>= (e & 63u);
                *l->out++ = (uint8_t)(e >> 8);
            }
            left -= k;
        }
    }
    return ELLM_OK;
}

/* One used symbol: every code is the single bit 0. */
static ellm_status decode_one_symbol(const ec_huf_tables *h, lane *ln, uint64_t segment, ellm_error *err) {
    for (int j = 0; j < EC_HUF_LANES; j++) {
        lane *l = &ln[j];
        if (l->bytes != (l->count + 7) / 8)
            return ellm_fail(err, ELLM_E_FORMAT, "segment %llu lane %d: %zu bytes for %u one-bit codes",
                             (unsigned long long)segment, j, l->bytes, l->count);
        for (size_t i = 0; i < l->bytes; i++)
            if (l->start[i])
                return ellm_fail(err, ELLM_E_FORMAT, "segment %llu lane %d: code bit 1 in a one-symbol code",
                                 (unsigned long long)segment, j);
        memset(l->out_start, h->only_symbol, l->count);
    }
    return ELLM_OK;
}

ellm_status ec_huf_decode_segment(const ec_view *v, uint64_t segment, const uint8_t *seg,
                                  size_t seg_bytes, const uint8_t *readable_end, uint8_t *out, ellm_error *err) {
    const ec_tables *t = v->tables;
    const ec_huf_tables *h = &t->u.huf;
    uint32_t units = ec_unit_count(v->bits, ec_segment_count(v, segment));
    size_t lane_bytes[EC_HUF_LANES], data;
    if (!ec_huf_segment_lanes(seg, seg_bytes, units, lane_bytes, &data))
        return ellm_fail(err, ELLM_E_FORMAT, "segment %llu: lane lengths do not fit the segment's %zu bytes",
                         (unsigned long long)segment, seg_bytes);
    uint32_t lane_count[EC_HUF_LANES];
    ec_huf_lane_split(units, lane_count);
    lane ln[EC_HUF_LANES];
    const uint8_t *p = seg + data;
    uint8_t *o = out + ec_segment_out_offset(v, segment);
    for (int j = 0; j < EC_HUF_LANES; j++) {
        size_t nb = lane_bytes[j];
        ln[j] = (lane){.start = p, .p = p, .bytes = nb, .count = lane_count[j], .out = o, .out_start = o};
        ln[j].b = ec_load64(p) | TOP_BIT; /* p + 8 <= readable_end: EC_STREAM_PAD bytes follow the segment */
        p += nb, o += lane_count[j];
    }
    if (h->used_symbols == 1) return decode_one_symbol(h, ln, segment, err);
    ellm_status st = decode_lanes(h, ln, readable_end, segment, err);
    for (int j = 0; j < EC_HUF_LANES && !st; j++) st = lane_check_end(&ln[j], j, v, segment, err);
    return st;
}
