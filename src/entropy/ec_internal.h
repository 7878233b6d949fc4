/*
 * ec_internal.h - shared between the coders of src/entropy (not a stage
 * interface). The byte layout of a coded block is in docs/CODED_BLOCK.md.
 */
#ifndef ELLM_EC_INTERNAL_H
#define ELLM_EC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "entropy/entropy.h"

/* Block header. */
#define EC_MAGIC "ELCB"
#define EC_VERSION 3
/* magic, version, coder, bits, limit / rANS parameters; then varints n and S */
#define EC_FIXED_HEADER 8

/* Huffman codes bytes of the decoded layout ("units"): with bits 8 a byte is
 * one symbol, with bits 4 it is the pair of symbols 2k, 2k+1 as the layout
 * stores them. So both widths use a 256-letter alphabet, the decoder writes
 * whole bytes, and pairs cost less Huffman redundancy per symbol than single
 * nibbles. (rANS codes symbols: it is within 1% of the entropy on nibbles
 * already, and its table, 2 bytes per letter, stays small for small tensors.) */
#define EC_UNIT_ALPHABET 256

/* Huffman: every segment's units are cut into EC_HUF_LANES contiguous runs
 * ("lanes"), each an independent bit stream, so one thread decodes four
 * streams at once. A segment's data starts with the byte lengths of lanes
 * 0..EC_HUF_LANES-2 (LEB128 varints). */
#define EC_HUF_LANES 4
/* The lane lengths are LEB128 varints (each < 2^32: at most 5 bytes). */
#define EC_HUF_LANE_HEADER_MAX (5 * (EC_HUF_LANES - 1))

/* rANS: 1, 2, 4 or 8 interleaved 32-bit states per segment (the encoder
 * uses 8 on large tensors for speed, 1 on small ones, where 4 bytes per
 * state matter), 16-bit renormalisation, frequencies summing to
 * 1 << scale_bits (at most 2^15: one renormalisation per symbol always
 * suffices). Up to EC_RANS_MAX_CLASSES frequency tables, one per class of
 * rows or columns (docs/CODED_BLOCK.md 4.2). */
#define EC_RANS_MAX_STATES 8
#define EC_RANS_SCALE_BITS 14
#define EC_RANS_MAX_SCALE_BITS 15
#define EC_RANS_L (1u << 16)
#define EC_RANS_MAX_CLASSES 4
/* Tensors with at least this many symbols get 8 states. */
#define EC_RANS_MANY_STATES_MIN 65536
/* Table weights are below 2^16. */
#define EC_RANS_MAX_WEIGHT 65535u

static inline uint64_t ec_load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}
static inline void ec_store64(uint8_t *p, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

/* LEB128: 7 bits per byte, least significant group first, high bit set on
 * every byte but the last. */
static inline size_t ec_varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}
static inline size_t ec_varint_put(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) p[n++] = (uint8_t)(v | 0x80), v >>= 7;
    p[n++] = (uint8_t)v;
    return n;
}
/* Reads a varint from [*p, end) and advances *p. False if it runs past end,
 * does not fit 64 bits or is not in its shortest form (a last byte of 0
 * after others). */
static inline bool ec_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    const uint8_t *q = *p;
    uint64_t r = 0;
    for (int shift = 0; q < end && shift < 64; shift += 7) {
        uint8_t b = *q++;
        if (shift == 63 && b > 1) return false;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift) return false;
            *p = q;
            *v = r;
            return true;
        }
    }
    return false;
}

/* Zigzag map of a table delta: d >= 0 -> 2d, d < 0 -> -2d - 1
 * (docs/CODED_BLOCK.md 4.2). */
static inline uint32_t ec_zigzag(int32_t d) { return d >= 0 ? 2u * (uint32_t)d : 2u * (uint32_t)(-d) - 1; }

/* Coded units (bytes) of a segment of count symbols. */
static inline uint32_t ec_unit_count(int bits, uint32_t count) {
    return bits == 8 ? count : count / 2 + (count & 1);
}

/* Units per lane: ceil(units / 4) each, the last lanes take what is left. */
static inline void ec_huf_lane_split(uint32_t units, uint32_t lane_count[EC_HUF_LANES]) {
    uint32_t per = units / EC_HUF_LANES + (units % EC_HUF_LANES != 0);
    uint32_t left = units;
    for (int j = 0; j < EC_HUF_LANES; j++) {
        lane_count[j] = left < per ? left : per;
        left -= lane_count[j];
    }
}

/* ---- Huffman (huffman.c) ---- */

/* Canonical codes (MSB-first values) from lengths. */
void ec_huf_codes(const uint8_t *lens, int alphabet, uint16_t *codes);
/* The codes as written to the stream: canonical codes bit-reversed. */
void ec_huf_stream_codes(const uint8_t *lens, int alphabet, uint32_t *rcode);
/* Exact byte length of each lane of a segment of `units` bytes. */
void ec_huf_lane_bytes(const uint8_t *lens, const uint8_t *units_data, uint32_t units,
                       uint32_t lane_bytes[EC_HUF_LANES]);
/* Bytes of a segment's lane-length varints. */
size_t ec_huf_lane_header_bytes(const uint32_t lane_bytes[EC_HUF_LANES]);
/* Encodes one segment into exactly its ec_huf_lane_header_bytes +
 * sum(lane_bytes) bytes at dst. */
void ec_huf_encode_segment(const uint8_t *lens, const uint32_t *rcode, const uint8_t *units_data, uint32_t units,
                           const uint32_t lane_bytes[EC_HUF_LANES], uint8_t *dst);
/* Checks lengths (Kraft, max length) and builds decode tables (malloc'd). */
ellm_status ec_huf_tables_build(const uint8_t *lens, const char *what, void **tables, ellm_error *err);
/* readable_end: reads up to there are safe (at least EC_STREAM_PAD bytes
 * past the segment's end). */
ellm_status ec_huf_decode_segment(const ec_view *v, uint64_t segment, const uint8_t *seg,
                                  size_t seg_bytes, const uint8_t *readable_end, uint8_t *out, ellm_error *err);
/* Reads and validates a segment's lane lengths: they add up to its byte
 * length and each lane holds between 1 and EC_HUF_MAX_LEN bits per unit.
 * On success lane_bytes[] has every lane's length and *data the offset of
 * lane 0 in the segment. */
bool ec_huf_segment_lanes(const uint8_t *seg, size_t seg_bytes, uint32_t units, size_t lane_bytes[EC_HUF_LANES],
                          size_t *data);

/* ---- rANS (rans.c) ---- */

/* What a rANS table describes (docs/CODED_BLOCK.md 4). */
typedef struct ec_rans_model {
    int scale_bits;   /* every class's frequencies sum to 2^scale_bits */
    int n_states;     /* interleaved states per segment: 1, 2, 4 or 8 */
    int n_classes;    /* frequency tables, 1..EC_RANS_MAX_CLASSES */
    int axis;         /* n_classes > 1: 0 = one class per line of `line`
                       * symbols (rows), 1 = one class per position within
                       * the line (columns) */
    uint64_t line;    /* symbols per line (n_classes > 1) */
    uint64_t n_lines; /* entries of cls: ceil(n / line) rows or line columns */
    uint8_t *cls;     /* class of every line (malloc'd; NULL with one class) */
    uint16_t freq[EC_RANS_MAX_CLASSES][256];
} ec_rans_model;

static inline int ec_rans_class_bits(int n_classes) { return n_classes <= 1 ? 0 : n_classes == 2 ? 1 : 2; }

/* Frequencies from a table's weights z (docs/CODED_BLOCK.md 4.1): used
 * symbols (z > 0) get 1 + floor((M - used) * z^2 / sum z^2), the symbol with
 * the largest weight (the first of equals) also what is left of M = 2^scale.
 * False if no symbol or more symbols than M are used. */
bool ec_rans_freqs_from_weights(const uint32_t *z, int alphabet, int scale_bits, uint16_t *freq);
/* Chooses the model (weights, states, classes) for the symbols, whose
 * histogram the caller has made (hist[256]). row_len (0 = unknown) lets it
 * try classes of rows and columns. */
typedef struct ec_rans_choice {
    ec_rans_model model;
    uint32_t z[EC_RANS_MAX_CLASSES][256];
    int k[EC_RANS_MAX_CLASSES]; /* exp-Golomb orders of the weight deltas */
} ec_rans_choice;
ellm_status ec_rans_choose(const uint8_t *symbols, const uint64_t *hist, uint64_t n, int bits, uint64_t row_len,
                           ec_rans_choice *c, ellm_error *err);
/* Bits of one class's weight table (lo, hi, k and the deltas). */
uint64_t ec_rans_weights_bits(const uint32_t *z, int alphabet, int bits, int k);
/* Most bytes a segment of seg_count symbols can take. */
uint64_t ec_rans_segment_bound(const ec_rans_model *m, uint32_t seg_count);
/* Codes symbols [first, first + seg_count) of the tensor (sym points at
 * symbol `first`) into the end of dst and moves them to its start;
 * returns the byte count. */
size_t ec_rans_encode_segment(const ec_rans_model *m, const uint8_t *sym, uint64_t first, uint32_t seg_count,
                              uint8_t *dst, uint64_t dst_cap);
/* Builds the decode tables (the model's cls is moved into them). */
ellm_status ec_rans_tables_build(ec_rans_model *m, int alphabet, const char *what, void **tables,
                                 ellm_error *err);
ellm_status ec_rans_decode_segment(const ec_view *v, uint64_t segment, const uint8_t *seg,
                                   size_t seg_bytes, const uint8_t *readable_end, uint8_t *out,
                                   ellm_error *err);

/* What ec_view.tables points to: where the parts of the block are, and the
 * coder's decode tables. */
typedef struct ec_huf_tables {
    /* One symbol per lookup: bits 0-3 code length, bits 8-15 symbol. */
    uint16_t single[1u << EC_HUF_MAX_LEN];
    int used_symbols;
    int only_symbol; /* the symbol when used_symbols == 1 */
} ec_huf_tables;

typedef struct ec_rans_tables {
    ec_rans_model model; /* owns model.cls */
    uint8_t *sym;        /* n_classes blocks of 2^scale_bits: the symbol of every slot (malloc'd) */
    /* per class and symbol: low 16 bits frequency, high 16 bits cumulative start */
    uint32_t freq_start[EC_RANS_MAX_CLASSES][256];
} ec_rans_tables;

typedef struct ec_tables {
    uint64_t *offsets; /* n_segments + 1 byte offsets into stream (malloc'd) */
    const uint8_t *stream;
    uint64_t stream_bytes;
    /* The block has no padding: segments that end less than EC_STREAM_PAD
     * bytes before the stream's end are decoded from this copy of the
     * stream's tail, followed by EC_STREAM_PAD zero bytes, so the fast
     * loops' reads past a segment's end stay in memory we own. */
    uint8_t *tail;     /* malloc'd; NULL for an empty stream */
    uint64_t tail_from; /* stream offset of tail[0] */
    union {
        ec_huf_tables huf;
        ec_rans_tables rans;
    } u;
} ec_tables;

/* Segment geometry shared by both decoders. */
static inline uint32_t ec_segment_count(const ec_view *v, uint64_t segment) {
    uint64_t first = segment * v->segment_symbols;
    uint64_t left = v->n_symbols - first;
    return left < v->segment_symbols ? (uint32_t)left : v->segment_symbols;
}
static inline uint64_t ec_segment_out_offset(const ec_view *v, uint64_t segment) {
    uint64_t first = segment * v->segment_symbols;
    return v->bits == 8 ? first : first / 2;
}

#endif /* ELLM_EC_INTERNAL_H */
