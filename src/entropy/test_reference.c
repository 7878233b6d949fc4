/*
 * test_reference.c - a second, deliberately simple decoder written from
 * docs/CODED_BLOCK.md alone (bit-by-bit canonical Huffman, textbook rANS),
 * sharing no code with src/entropy. Blocks from ec_encode must decode to the
 * original symbols with it, which checks the encoder against the document
 * and, through the same blocks, the fast decoders against both.
 */
#include "entropy/test_util.h"

/* LEB128 varint at b[*pos]. */
static uint64_t rdvar(const uint8_t *b, size_t *pos) {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t c = b[(*pos)++];
        v |= (uint64_t)(c & 127) << shift;
        if (!(c & 128)) return v;
    }
}
/* Table bits, LSB-first from b + start. */
typedef struct bits_in {
    const uint8_t *b;
    uint64_t pos;
} bits_in;
static uint32_t rdbits(bits_in *r, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++, r->pos++) v |= (uint32_t)((r->b[r->pos / 8] >> (r->pos % 8)) & 1) << i;
    return v;
}
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

/* Section 3: canonical Huffman, one bit at a time. Returns 0 on success. */
static int ref_huffman_segment(const uint8_t *lens, int A, const uint8_t *seg, size_t seg_len, uint32_t m, int bits,
                               uint8_t *sym_out) {
    /* canonical codes, DEFLATE style */
    uint32_t count[16] = {0}, next[16] = {0}, code[256] = {0};
    for (int s = 0; s < A; s++) count[lens[s]]++;
    count[0] = 0;
    uint32_t c = 0;
    for (int l = 1; l <= 11; l++) {
        c = (c + count[l - 1]) << 1;
        next[l] = c;
    }
    for (int s = 0; s < A; s++)
        if (lens[s]) code[s] = next[lens[s]]++;
    /* lanes over the segment's bytes: symbols (bits 8) or symbol pairs (bits 4) */
    uint32_t units = bits == 8 ? m : (m + 1) / 2;
    uint32_t per = (units + 3) / 4;
    uint32_t lane_n[4], left = units;
    for (int j = 0; j < 4; j++) {
        lane_n[j] = left < per ? left : per;
        left -= lane_n[j];
    }
    size_t pos = 0, b_len[4];
    for (int j = 0; j < 3; j++) b_len[j] = (size_t)rdvar(seg, &pos);
    b_len[3] = seg_len - pos - b_len[0] - b_len[1] - b_len[2];
    uint32_t k = 0;
    for (int j = 0; j < 4; j++) {
        const uint8_t *lane = seg + pos;
        uint64_t bitpos = 0;
        for (uint32_t i = 0; i < lane_n[j]; i++) {
            uint32_t v = 0;
            int found = -1;
            for (int l = 1; l <= 11 && found < 0; l++) {
                /* next stream bit, LSB-first; codes arrive MSB first */
                if (bitpos / 8 >= b_len[j]) return 1;
                v = v << 1 | ((lane[bitpos / 8] >> (bitpos % 8)) & 1u);
                bitpos++;
                for (int s = 0; s < A; s++)
                    if (lens[s] == l && code[s] == v) {
                        found = s;
                        break;
                    }
            }
            if (found < 0) return 2;
            if (bits == 8) {
                sym_out[k++] = (uint8_t)found;
            } else { /* a byte of the decoded layout: low nibble first */
                sym_out[k++] = (uint8_t)(found & 15);
                if (k < m) sym_out[k++] = (uint8_t)(found >> 4);
                else if (found >> 4) return 4; /* odd count: the high nibble must be 0 */
            }
        }
        if ((bitpos + 7) / 8 != b_len[j]) return 3;
        pos += b_len[j];
    }
    return 0;
}

/* Section 4.1: frequencies from weights, as the document states them. */
static int ref_freqs(const uint32_t *z, int A, uint32_t M, uint32_t *freq) {
    uint64_t W = 0, used = 0;
    for (int s = 0; s < A; s++) W += (uint64_t)z[s] * z[s], used += z[s] > 0;
    if (!used || used > M) return 1;
    uint64_t sum = 0;
    int top = 0;
    for (int s = 0; s < A; s++) {
        uint64_t w = (uint64_t)z[s] * z[s];
        freq[s] = w ? (uint32_t)(1 + (M - used) * w / W) : 0;
        sum += freq[s];
        if (w > (uint64_t)z[top] * z[top]) top = s;
    }
    freq[top] += (uint32_t)(M - sum);
    return 0;
}

/* Section 4.3: rANS, textbook: n_states states, the table of each symbol's
 * class. first = index of the segment's first symbol in the tensor. */
typedef struct ref_rans {
    int scale, n_states, n_classes, axis;
    uint64_t line;
    uint8_t *cls;
    uint32_t freq[4][256];
} ref_rans;
static int ref_rans_segment(const ref_rans *R, int A, const uint8_t *seg, size_t seg_len, uint64_t first, uint32_t m,
                            uint8_t *sym_out) {
    uint32_t x[8];
    if (seg_len < 4 * (size_t)R->n_states) return 4;
    for (int j = 0; j < R->n_states; j++) x[j] = rd32(seg + 4 * j);
    size_t p = 4 * (size_t)R->n_states;
    const uint32_t M = 1u << R->scale, L = 1u << 16;
    for (uint32_t k = 0; k < m; k++) {
        uint64_t g = first + k;
        int c = R->n_classes == 1 ? 0 : R->cls[R->axis == 0 ? g / R->line : g % R->line];
        const uint32_t *freq = R->freq[c];
        uint32_t start[257];
        start[0] = 0;
        for (int s = 0; s < A; s++) start[s + 1] = start[s] + freq[s];
        uint32_t *xs = &x[k % (uint32_t)R->n_states];
        uint32_t slot = *xs % M;
        int s = 0;
        while (!(start[s] <= slot && slot < start[s + 1])) s++;
        *xs = freq[s] * (*xs >> R->scale) + slot - start[s];
        if (*xs < L) {
            if (p + 2 > seg_len) return 1;
            *xs = (*xs << 16) | rd16(seg + p);
            p += 2;
        }
        sym_out[k] = (uint8_t)s;
    }
    for (int j = 0; j < R->n_states; j++)
        if (x[j] != L) return 2;
    return p == seg_len ? 0 : 3;
}

/* Section 4.2: the rANS table. */
static int ref_rans_table(const uint8_t *b, size_t *pos, int bits, uint64_t n, ref_rans *R) {
    if (R->n_classes > 1) {
        uint64_t g = rdvar(b, pos);
        R->axis = (int)(g & 1);
        R->line = g >> 1;
        if (!R->line || R->line > n) return 1;
    }
    bits_in r = {b + *pos, 0};
    const int A = 1 << bits;
    for (int c = 0; c < R->n_classes; c++) {
        int lo = (int)rdbits(&r, bits), hi = (int)rdbits(&r, bits), k = (int)rdbits(&r, 4);
        if (lo > hi) return 2;
        uint32_t z[256] = {0};
        int32_t prev = 0;
        for (int s = lo; s <= hi; s++) {
            int zeros = 0;
            while (!rdbits(&r, 1)) zeros++;
            uint32_t x = (1u << (zeros + k)) | rdbits(&r, zeros + k);
            uint32_t zz = x - (1u << k);
            prev += (zz % 2) ? -(int32_t)(zz / 2) - 1 : (int32_t)(zz / 2);
            z[s] = (uint32_t)prev;
        }
        if (ref_freqs(z, A, 1u << R->scale, R->freq[c])) return 3;
    }
    if (R->n_classes > 1) {
        uint64_t lines = R->axis == 0 ? (n + R->line - 1) / R->line : R->line;
        R->cls = malloc(lines);
        for (uint64_t l = 0; l < lines; l++) R->cls[l] = (uint8_t)rdbits(&r, R->n_classes == 2 ? 1 : 2);
    }
    *pos += (size_t)((r.pos + 7) / 8);
    return 0;
}

/* Section 1: the layout. Decodes the whole block into unpacked symbols. */
static int ref_decode(const uint8_t *b, size_t size, uint8_t *sym, uint64_t n_expect) {
    if (size < 10 || memcmp(b, "ELCB", 4) || b[4] != 3) return 10;
    int coder = b[5], bits = b[6], param = b[7];
    size_t pos = 8;
    uint64_t n = rdvar(b, &pos);
    uint32_t S = (uint32_t)rdvar(b, &pos);
    uint64_t n_seg = n ? (n + S - 1) / S : 0;
    if (n != n_expect) return 11;
    int A = coder == 1 ? 256 : 1 << bits; /* Huffman codes bytes of the decoded layout */
    uint8_t lens[256] = {0};
    ref_rans R = {.scale = param & 15, .n_states = 1 << ((param >> 4) & 3), .n_classes = 1 + (param >> 6)};
    if (n && coder == 1) { /* section 1.1 */
        int lo = b[pos], hi = b[pos + 1];
        if (lo > hi || hi >= A) return 13;
        bits_in r = {b + pos + 2, 0};
        int prev = 0;
        for (int s = lo; s <= hi;) {
            if (rdbits(&r, 1)) {
                if (rdbits(&r, 1)) {
                    if (!rdbits(&r, 1)) { /* run of zero lengths: order-0 exp-Golomb of run - 1 */
                        int zeros = 0;
                        while (!rdbits(&r, 1)) zeros++;
                        uint32_t run = (1u << zeros) | rdbits(&r, zeros); /* (x - 1) + 1 */
                        if (run > (uint32_t)(hi - s + 1)) return 16;
                        s += (int)run; /* lens[] is already 0 */
                        continue;
                    }
                    prev = (int)rdbits(&r, 4);
                } else {
                    prev += rdbits(&r, 1) ? -1 : 1;
                }
            }
            lens[s++] = (uint8_t)prev;
        }
        pos += 2 + (size_t)((r.pos + 7) / 8);
    } else if (n) {
        if (ref_rans_table(b, &pos, bits, n, &R)) return 17;
    }
    uint64_t seg_size[4096];
    if (n_seg > 4096) return 14;
    uint64_t total = 0;
    for (uint64_t i = 0; i + 1 < n_seg; i++) total += seg_size[i] = rdvar(b, &pos);
    const uint8_t *stream = b + pos;
    if (pos + total > size) return 12;
    if (n_seg) seg_size[n_seg - 1] = size - pos - total; /* no padding: the block ends with the stream */
    uint64_t a = 0;
    int rc = 0;
    for (uint64_t i = 0; i < n_seg && !rc; i++) {
        uint32_t m = (uint32_t)((i + 1) * S <= n ? S : n - i * S);
        int r = coder == 1 ? ref_huffman_segment(lens, A, stream + a, (size_t)seg_size[i], m, bits, sym + i * S)
                           : ref_rans_segment(&R, A, stream + a, (size_t)seg_size[i], i * S, m, sym + i * S);
        if (r) rc = 20 + r;
        a += seg_size[i];
    }
    free(R.cls);
    return rc;
}

/* Symbols of a rows x cols matrix whose rows (axis 0) or columns (axis 1)
 * have three different spreads: the encoder gives them classes. */
static void class_symbols(uint8_t *sym, uint64_t rows, uint64_t cols, int axis, int bits, uint64_t seed) {
    ellm_rng r;
    ellm_rng_seed(&r, seed);
    const double top = (1 << bits) - 1, mid = (top + 1) / 2;
    for (uint64_t i = 0; i < rows * cols; i++) {
        uint64_t line = axis == 0 ? i / cols : i % cols;
        double spread = (bits == 8 ? 3.0 : 0.5) * (double)(1 + 4 * (line % 3));
        double u = ((double)(ellm_rng_next(&r) >> 11) + 0.5) / 9007199254740992.0;
        double v = ((double)(ellm_rng_next(&r) >> 11) + 0.5) / 9007199254740992.0;
        double g = floor(mid + spread * sqrt(-2 * log(u)) * cos(6.283185307179586 * v) + 0.5);
        sym[i] = (uint8_t)(g < 0 ? 0 : g > top ? top : g);
    }
}

int main(void) {
    const ellm_coder coders[] = {ELLM_CODER_HUFFMAN, ELLM_CODER_RANS};
    const uint64_t sizes[] = {0, 1, 7, 100, 2001, 30001};
    const uint32_t segs[] = {2, 64, 1000, 0};
    for (int c = 0; c < 2; c++)
        for (int bits = 8; bits >= 4; bits -= 4)
            for (int k = 0; k < HIST_COUNT; k++)
                for (size_t ni = 0; ni < ELLM_ARRAY_LEN(sizes); ni++)
                    for (size_t si = 0; si < ELLM_ARRAY_LEN(segs); si++) {
                        uint64_t n = sizes[ni];
                        if (n > 5000 && segs[si] < 64) continue;
                        uint8_t *sym = malloc(n + 1), *back = malloc(n + 1), *block;
                        size_t size;
                        ellm_error err;
                        gen_symbols(sym, n, bits, (hist_kind)k, 17 * n + segs[si]);
                        if (ec_encode(coders[c], bits, sym, n, segs[si], NULL, &block, &size, &err)) {
                            CHECK(0, "encode: %s", err.message);
                            free(sym), free(back);
                            continue;
                        }
                        int r = ref_decode(block, size, back, n);
                        CHECK(r == 0 && memcmp(sym, back, n) == 0,
                              "%s/%d/%s n=%llu seg=%u: the reference decoder %s (code %d)", ellm_coder_name(coders[c]),
                              bits, hist_names[k], (unsigned long long)n, segs[si], r ? "fails" : "disagrees", r);
                        free(block), free(sym), free(back);
                    }
    /* Blocks with classes of rows and of columns, segments starting
     * mid-line. */
    for (int bits = 8; bits >= 4; bits -= 4)
        for (int axis = 0; axis < 2; axis++)
            for (size_t si = 0; si < ELLM_ARRAY_LEN(segs); si++) {
                const uint64_t rows = si % 2 ? 120 : 310, cols = si % 2 ? 70 : 230, n = rows * cols; /* 1 and 8 states */
                uint8_t *sym = malloc(n), *back = malloc(n), *block;
                size_t size;
                ellm_error err;
                class_symbols(sym, rows, cols, axis, bits, 7 + si);
                if (ec_encode_rows(ELLM_CODER_RANS, bits, sym, n, cols, segs[si] < 64 ? 64 : segs[si], NULL, &block,
                                   &size, &err)) {
                    CHECK(0, "encode: %s", err.message);
                    free(sym), free(back);
                    continue;
                }
                CHECK(block[7] >> 6, "%d-bit axis %d: no classes chosen", bits, axis);
                int r = ref_decode(block, size, back, n);
                CHECK(r == 0 && memcmp(sym, back, n) == 0, "classes %d-bit axis %d seg=%u: the reference decoder %s (code %d)",
                      bits, axis, segs[si], r ? "fails" : "disagrees", r);
                free(block), free(sym), free(back);
            }
    if (test_failures) {
        fprintf(stderr, "%d checks failed\n", test_failures);
        return 1;
    }
    printf("reference decoder agrees: ok\n");
    return 0;
}
