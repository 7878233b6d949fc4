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
#define EC_VERSION 2
/* magic, version, coder, bits, limit / scale_bits; then varints n and S */
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

/* rANS: EC_RANS_STATES interleaved 32-bit states per segment, 16-bit
 * renormalisation, frequencies summing to 1 << scale_bits (at most 2^15:
 * one renormalisation per symbol always suffices). */
#define EC_RANS_STATES 8
#define EC_RANS_SCALE_BITS 14
#define EC_RANS_MAX_SCALE_BITS 15
#define EC_RANS_L (1u << 16)

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
ellm_status ec_huf_decode_segment(const ec_view *v, uint64_t segment, const uint8_t *seg,
                                  size_t seg_bytes, uint8_t *out, ellm_error *err);
/* Reads and validates a segment's lane lengths: they add up to its byte
 * length and each lane holds between 1 and EC_HUF_MAX_LEN bits per unit.
 * On success lane_bytes[] has every lane's length and *data the offset of
 * lane 0 in the segment. */
bool ec_huf_segment_lanes(const uint8_t *seg, size_t seg_bytes, uint32_t units, size_t lane_bytes[EC_HUF_LANES],
                          size_t *data);

/* ---- rANS (rans.c) ---- */

/* Normalises a histogram to frequencies summing to 1 << scale_bits, every
 * used symbol >= 1. */
ellm_status ec_rans_normalize(const uint64_t *hist, int alphabet, int scale_bits, uint16_t *freq,
                              ellm_error *err);
/* Most bytes a segment of seg_count symbols can take. */
uint64_t ec_rans_segment_bound(uint32_t seg_count);
size_t ec_rans_encode_segment(const uint16_t *freq, int alphabet, int scale_bits, const uint8_t *sym,
                              uint32_t seg_count, uint8_t *dst, uint64_t dst_cap);
/* Checks frequencies (sum 2^scale_bits) and builds decode tables. */
ellm_status ec_rans_tables_build(const uint16_t *freq, int alphabet, int scale_bits, const char *what,
                                 void **tables, ellm_error *err);
ellm_status ec_rans_decode_segment(const ec_view *v, uint64_t segment, const uint8_t *seg,
                                   size_t seg_bytes, uint8_t *out, ellm_error *err);

/* What ec_view.tables points to: where the parts of the block are, and the
 * coder's decode tables. */
typedef struct ec_huf_tables {
    /* One symbol per lookup: bits 0-3 code length, bits 8-15 symbol. */
    uint16_t single[1u << EC_HUF_MAX_LEN];
    int used_symbols;
    int only_symbol; /* the symbol when used_symbols == 1 */
} ec_huf_tables;

typedef struct ec_rans_tables {
    /* symbol of every slot of [0, 1 << scale_bits) */
    uint8_t sym[1u << EC_RANS_MAX_SCALE_BITS];
    /* per symbol: low 16 bits frequency, high 16 bits cumulative start */
    uint32_t freq_start[256];
    int scale_bits;
} ec_rans_tables;

typedef struct ec_tables {
    uint64_t *offsets; /* n_segments + 1 byte offsets into stream (malloc'd) */
    const uint8_t *stream;
    uint64_t stream_bytes;
    const uint8_t *block_end;
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
