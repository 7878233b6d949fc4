/*
 * entropy.c - coded blocks: header, table, segment offsets, stream (layout in
 * docs/CODED_BLOCK.md); encoding on the pool, validation, segment dispatch.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "entropy/ec_internal.h"

double ec_entropy(const uint64_t *hist, int alphabet) {
    double total = 0;
    for (int s = 0; s < alphabet; s++) total += (double)hist[s];
    if (total <= 0) return 0;
    double h = 0;
    for (int s = 0; s < alphabet; s++) {
        if (!hist[s]) continue;
        double p = (double)hist[s] / total;
        h -= p * log2(p);
    }
    return h;
}

void ec_histogram(const uint8_t *symbols, uint64_t n, int alphabet, uint64_t *hist) {
    /* Four sub-histograms hide the store-to-load dependency on runs. */
    uint64_t h[4][256];
    memset(h, 0, sizeof h);
    uint64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        h[0][symbols[i]]++;
        h[1][symbols[i + 1]]++;
        h[2][symbols[i + 2]]++;
        h[3][symbols[i + 3]]++;
    }
    for (; i < n; i++) h[0][symbols[i]]++;
    for (int s = 0; s < alphabet; s++) hist[s] = h[0][s] + h[1][s] + h[2][s] + h[3][s];
}

uint64_t ec_decoded_bytes(int bits, uint64_t n_symbols) {
    return bits == 4 ? n_symbols / 2 + (n_symbols & 1) : n_symbols;
}

/* ------------------------------------------------------------------------ */
/* Tables (docs/CODED_BLOCK.md section 1.1)                                 */
/* ------------------------------------------------------------------------ */

/* Bits LSB-first: bit j is bit j%8 of byte j/8. A NULL buffer only counts. */
typedef struct bitw {
    uint8_t *buf;
    uint64_t pos;
} bitw;
static void bitw_put(bitw *w, uint32_t v, int n) {
    for (int i = 0; i < n; i++, w->pos++)
        if (w->buf && ((v >> i) & 1)) w->buf[w->pos / 8] |= (uint8_t)(1u << (w->pos % 8));
}
typedef struct bitr {
    const uint8_t *buf;
    uint64_t pos, len; /* in bits */
} bitr;
static bool bitr_get(bitr *r, int n, uint32_t *v) {
    if (r->len - r->pos < (uint64_t)n) return false;
    uint32_t x = 0;
    for (int i = 0; i < n; i++, r->pos++) x |= (uint32_t)((r->buf[r->pos / 8] >> (r->pos % 8)) & 1) << i;
    *v = x;
    return true;
}

/* Huffman lengths of the values lo..hi, against the last non-zero length
 * `prev` (0 before the first): "0" prev, "1 0 s" prev + 1 (s = 0) or - 1
 * (s = 1), "1 1 0" and an order-0 exp-Golomb code of r - 1: a run of r
 * zero lengths, "1 1 1 llll" the length l as 4 bits. The tails of small
 * tensors' histograms are sparse: runs of unused values are common. */
static void eg_put(bitw *w, uint32_t z, int k);
static bool eg_get(bitr *r, int k, int max_zeros, uint32_t *z);
static void huf_lens_put(bitw *w, const uint8_t *lens, int lo, int hi) {
    int prev = 0;
    for (int s = lo; s <= hi;) {
        if (!lens[s]) {
            int run = 0;
            while (s <= hi && !lens[s]) run++, s++;
            bitw_put(w, 3, 3); /* 1 1 0 */
            eg_put(w, (uint32_t)(run - 1), 0);
            continue;
        }
        int d = lens[s] - prev;
        if (d == 0) {
            bitw_put(w, 0, 1);
        } else if (d == 1 || d == -1) {
            bitw_put(w, 1, 2);
            bitw_put(w, d < 0, 1);
        } else {
            bitw_put(w, 7, 3);
            bitw_put(w, lens[s], 4);
        }
        prev = lens[s++];
    }
}
static bool huf_lens_get(bitr *r, uint8_t *lens, int lo, int hi) {
    int prev = 0;
    for (int s = lo; s <= hi;) {
        uint32_t b, x;
        if (!bitr_get(r, 1, &b)) return false;
        if (b) {
            if (!bitr_get(r, 1, &b)) return false;
            if (b) {
                if (!bitr_get(r, 1, &b)) return false;
                if (!b) { /* a run of zeros */
                    if (!eg_get(r, 0, 8, &x) || x > (uint32_t)(hi - s)) return false;
                    for (uint32_t i = 0; i <= x; i++) lens[s++] = 0;
                    continue;
                }
                if (!bitr_get(r, 4, &x)) return false;
                prev = (int)x;
            } else {
                if (!bitr_get(r, 1, &x)) return false;
                prev += x ? -1 : 1;
            }
        }
        if (prev < 1 || prev > 15) return false;
        lens[s++] = (uint8_t)prev;
    }
    return true;
}

/* rANS frequencies of the values lo..hi: 4 bits k, then for each value the
 * difference to the previous frequency (0 before lo), zigzag-mapped
 * (d >= 0: 2d, d < 0: -2d-1) and written as an order-k exp-Golomb code:
 * with x = z + 2^k and b = floor(log2 x), b - k zero bits, a one bit, then
 * the low b bits of x. */
static void eg_put(bitw *w, uint32_t z, int k) {
    uint32_t x = z + (1u << k);
    int b = 31 - __builtin_clz(x);
    bitw_put(w, 0, b - k);
    bitw_put(w, 1, 1);
    bitw_put(w, x, b);
}
static uint32_t zigzag(int32_t d) { return d >= 0 ? 2u * (uint32_t)d : 2u * (uint32_t)(-d) - 1; }
static void rans_freqs_put(bitw *w, const uint16_t *freq, int lo, int hi, int k) {
    bitw_put(w, (uint32_t)k, 4);
    int32_t prev = 0;
    for (int s = lo; s <= hi; s++) {
        eg_put(w, zigzag(freq[s] - prev), k);
        prev = freq[s];
    }
}
/* An order-k exp-Golomb code with at most max_zeros leading zeros and
 * at most 24 bits after its one bit. */
static bool eg_get(bitr *r, int k, int max_zeros, uint32_t *z) {
    uint32_t b, low;
    int zeros = 0;
    for (;;) {
        if (!bitr_get(r, 1, &b)) return false;
        if (b) break;
        if (++zeros > max_zeros) return false;
    }
    int nb = zeros + k;
    if (nb > 24 || !bitr_get(r, nb, &low)) return false;
    *z = ((1u << nb) | low) - (1u << k);
    return true;
}
static bool rans_freqs_get(bitr *r, uint16_t *freq, int lo, int hi) {
    uint32_t k, z;
    if (!bitr_get(r, 4, &k)) return false;
    int32_t prev = 0;
    for (int s = lo; s <= hi; s++) {
        if (!eg_get(r, (int)k, 20, &z)) return false; /* frequencies are < 2^16 */
        int32_t d = (z & 1) ? -(int32_t)(z / 2) - 1 : (int32_t)(z / 2);
        prev += d;
        if (prev < 0 || prev > 0xffff) return false;
        freq[s] = (uint16_t)prev;
    }
    return true;
}

/* Table bytes of a block with these lengths / frequencies: first and last
 * used value, then the bits, zero-padded to a byte. buf NULL only counts. */
static size_t table_put(ellm_coder coder, const uint8_t *lens, const uint16_t *freq, int alphabet, int k,
                        uint8_t *buf) {
    int lo = -1, hi = -1;
    for (int s = 0; s < alphabet; s++)
        if (coder == ELLM_CODER_HUFFMAN ? lens[s] != 0 : freq[s] != 0) {
            if (lo < 0) lo = s;
            hi = s;
        }
    if (lo < 0) return 0; /* no symbols: no table */
    bitw w = {.buf = buf ? buf + 2 : NULL, .pos = 0};
    if (buf) buf[0] = (uint8_t)lo, buf[1] = (uint8_t)hi;
    if (coder == ELLM_CODER_HUFFMAN) huf_lens_put(&w, lens, lo, hi);
    else rans_freqs_put(&w, freq, lo, hi, k);
    return 2 + (size_t)((w.pos + 7) / 8);
}

/* The exp-Golomb order giving the shortest rANS table. */
static int rans_best_k(const uint16_t *freq, int alphabet, size_t *bytes) {
    int best = 0;
    size_t best_bytes = SIZE_MAX;
    for (int k = 0; k < 16; k++) {
        size_t b = table_put(ELLM_CODER_RANS, NULL, freq, alphabet, k, NULL);
        if (b < best_bytes) best_bytes = b, best = k;
    }
    *bytes = best_bytes;
    return best;
}

/* ------------------------------------------------------------------------ */
/* Encoder                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct encode_job {
    ellm_coder coder;
    int bits;
    const uint8_t *symbols;
    uint64_t n;
    uint32_t seg_syms;
    /* Huffman: sizes first (lane_bytes), then every segment straight into
     * its place in the block (stream + seg_offset). */
    const uint8_t *lens;
    const uint32_t *rcode;
    uint32_t *lane_bytes; /* EC_HUF_LANES per segment */
    const uint64_t *seg_offset;
    uint8_t *stream;
    /* rANS: the size is known only after coding: each segment into its own
     * buffer, gathered afterwards. */
    const uint16_t *freq;
    int scale_bits;
    uint8_t **seg_data;
    size_t *seg_size;
    atomic_int failed;
} encode_job;

static uint32_t job_segment(const encode_job *j, int64_t task, uint64_t *first) {
    *first = (uint64_t)task * j->seg_syms;
    return (uint32_t)ELLM_MIN((uint64_t)j->seg_syms, j->n - *first);
}

/* Huffman jobs run over units (bytes): symbols is the byte string to code
 * (packed pairs for bits 4), n its length and seg_syms units per segment.
 * rANS jobs run over the symbols themselves. */
static void huf_size_task(void *ctx, int64_t task, int thread) {
    encode_job *j = ctx;
    uint64_t first;
    uint32_t units = job_segment(j, task, &first);
    ec_huf_lane_bytes(j->lens, j->symbols + first, units, j->lane_bytes + EC_HUF_LANES * task);
}

static void huf_encode_task(void *ctx, int64_t task, int thread) {
    encode_job *j = ctx;
    uint64_t first;
    uint32_t units = job_segment(j, task, &first);
    ec_huf_encode_segment(j->lens, j->rcode, j->symbols + first, units, j->lane_bytes + EC_HUF_LANES * task,
                          j->stream + j->seg_offset[task]);
}

static void rans_encode_task(void *ctx, int64_t task, int thread) {
    encode_job *j = ctx;
    uint64_t first;
    uint32_t count = job_segment(j, task, &first);
    uint64_t bound = ec_rans_segment_bound(count);
    uint8_t *dst = malloc(bound);
    if (!dst) {
        atomic_store(&j->failed, 1);
        return;
    }
    j->seg_size[task] = ec_rans_encode_segment(j->freq, 1 << j->bits, j->scale_bits, j->symbols + first, count, dst,
                                               bound);
    j->seg_data[task] = dst;
}

ellm_status ec_encode(ellm_coder coder, int bits, const uint8_t *symbols, uint64_t n,
                      uint32_t segment_symbols, ellm_pool *pool, uint8_t **block,
                      size_t *block_size, ellm_error *err) {
    *block = NULL;
    *block_size = 0;
    if (coder != ELLM_CODER_HUFFMAN && coder != ELLM_CODER_RANS)
        return ellm_fail(err, ELLM_E_ARG, "ec_encode: coder %d is not an entropy coder", (int)coder);
    if (bits != 8 && bits != 4) return ellm_fail(err, ELLM_E_ARG, "ec_encode: bits %d is not 8 or 4", bits);
    if (n && !symbols) return ellm_fail(err, ELLM_E_ARG, "ec_encode: no symbols");
    uint32_t seg = segment_symbols ? segment_symbols : EC_DEFAULT_SEGMENT;
    if (bits == 4 && (seg & 1)) {
        if (seg == UINT32_MAX) seg--;
        else seg++;
    }
    const int alphabet = 1 << bits;
    uint64_t hist[256];
    ec_histogram(symbols, n, 256, hist);
    for (int s = alphabet; s < 256; s++)
        if (hist[s])
            return ellm_fail(err, ELLM_E_ARG, "ec_encode: symbol %d does not fit in %d bits", s, bits);

    uint8_t lens[256] = {0};
    uint32_t rcode[256] = {0};
    uint16_t freq[256] = {0};
    int param, k = 0;
    ellm_status st = ELLM_OK;
    /* Huffman codes bytes of the decoded layout ("units"): with bits 4, the
     * packed pairs. rANS codes the symbols (its table stays 2^bits long). */
    uint8_t *packed = NULL;
    const uint8_t *units = symbols;
    uint64_t n_units = n;
    uint32_t seg_units = seg;
    if (bits == 4 && coder == ELLM_CODER_HUFFMAN) {
        n_units = ec_decoded_bytes(4, n);
        seg_units = seg / 2;
        packed = ellm_malloc(n_units ? (size_t)n_units : 1, err);
        if (!packed) return ELLM_E_NOMEM;
        for (uint64_t i = 0; i + 1 < n; i += 2) packed[i / 2] = (uint8_t)(symbols[i] | symbols[i + 1] << 4);
        if (n & 1) packed[n / 2] = symbols[n - 1];
        units = packed;
        ec_histogram(units, n_units, 256, hist);
    }
    if (coder == ELLM_CODER_HUFFMAN) {
        st = ec_huffman_lengths(hist, EC_UNIT_ALPHABET, EC_HUF_MAX_LEN, lens, err);
        if (!st) ec_huf_stream_codes(lens, EC_UNIT_ALPHABET, rcode);
        param = EC_HUF_MAX_LEN;
    } else {
        /* The precision with the fewest table + coded bits: small tensors
         * gain more from a shorter table than they lose to coarser
         * frequencies. */
        param = EC_RANS_SCALE_BITS;
        double best = INFINITY;
        for (int sb = EC_RANS_SCALE_BITS; sb >= 1 && n; sb--) {
            uint16_t f[256];
            ellm_error scratch;
            if (ec_rans_normalize(hist, alphabet, sb, f, &scratch)) break; /* more symbols than slots */
            size_t tb;
            int kk = rans_best_k(f, alphabet, &tb);
            double bits_total = 8.0 * (double)tb;
            for (int s = 0; s < alphabet; s++)
                if (hist[s]) bits_total += (double)hist[s] * (sb - log2((double)f[s]));
            if (bits_total < best) {
                best = bits_total;
                param = sb;
                k = kk;
                memcpy(freq, f, sizeof f);
            }
        }
    }
    if (st) {
        free(packed);
        return st;
    }

    uint64_t n_seg = n ? (n - 1) / seg + 1 : 0;
    if (n_seg > SIZE_MAX / 64) {
        free(packed);
        return ellm_fail(err, ELLM_E_ARG, "ec_encode: too many segments");
    }
    encode_job job = {.coder = coder, .bits = bits, .symbols = units, .n = n_units, .seg_syms = seg_units,
                      .lens = lens, .rcode = rcode, .freq = freq, .scale_bits = param};
    atomic_init(&job.failed, 0);
    uint64_t *seg_offset = ellm_malloc(((size_t)n_seg + 1) * sizeof *seg_offset, err);
    if (!seg_offset) {
        free(packed);
        return ELLM_E_NOMEM;
    }
    uint8_t *b = NULL;

    /* Segment sizes. */
    if (coder == ELLM_CODER_HUFFMAN) {
        job.lane_bytes = ellm_malloc(((size_t)n_seg + 1) * EC_HUF_LANES * sizeof *job.lane_bytes, err);
        if (!job.lane_bytes) {
            st = ELLM_E_NOMEM;
            goto done;
        }
        ellm_pool_run(pool, (int64_t)n_seg, huf_size_task, &job);
    } else {
        job.seg_data = ellm_calloc((size_t)n_seg + 1, sizeof *job.seg_data, err);
        job.seg_size = ellm_calloc((size_t)n_seg + 1, sizeof *job.seg_size, err);
        if (!job.seg_data || !job.seg_size) {
            st = ELLM_E_NOMEM;
            goto done;
        }
        ellm_pool_run(pool, (int64_t)n_seg, rans_encode_task, &job);
        if (atomic_load(&job.failed)) {
            st = ellm_fail(err, ELLM_E_NOMEM, "ec_encode: out of memory encoding segments");
            goto done;
        }
    }
    uint64_t stream_bytes = 0;
    for (uint64_t i = 0; i < n_seg; i++) {
        seg_offset[i] = stream_bytes;
        if (coder == ELLM_CODER_HUFFMAN) {
            stream_bytes += ec_huf_lane_header_bytes(job.lane_bytes + EC_HUF_LANES * i);
            for (int l = 0; l < EC_HUF_LANES; l++) stream_bytes += job.lane_bytes[EC_HUF_LANES * i + (uint64_t)l];
        } else {
            stream_bytes += job.seg_size[i];
        }
    }
    seg_offset[n_seg] = stream_bytes;

    /* The block: header, table, segment sizes, stream, padding. */
    size_t head = EC_FIXED_HEADER + ec_varint_size(n) + ec_varint_size(seg);
    const int table_alphabet = coder == ELLM_CODER_HUFFMAN ? EC_UNIT_ALPHABET : alphabet;
    size_t tbytes = table_put(coder, lens, freq, table_alphabet, k, NULL);
    size_t offsets_bytes = 0;
    for (uint64_t i = 0; i + 1 < n_seg; i++) offsets_bytes += ec_varint_size(seg_offset[i + 1] - seg_offset[i]);
    size_t total = head + tbytes + offsets_bytes + (size_t)stream_bytes + EC_STREAM_PAD;
    b = ellm_malloc(total, err);
    if (!b) {
        st = ELLM_E_NOMEM;
        goto done;
    }
    memset(b, 0, head + tbytes);
    memcpy(b, EC_MAGIC, 4);
    b[4] = EC_VERSION;
    b[5] = (uint8_t)coder;
    b[6] = (uint8_t)bits;
    b[7] = (uint8_t)param;
    size_t pos = EC_FIXED_HEADER;
    pos += ec_varint_put(b + pos, n);
    pos += ec_varint_put(b + pos, seg);
    pos += table_put(coder, lens, freq, table_alphabet, k, b + pos);
    for (uint64_t i = 0; i + 1 < n_seg; i++) pos += ec_varint_put(b + pos, seg_offset[i + 1] - seg_offset[i]);
    uint8_t *stream = b + pos;
    memset(stream + stream_bytes, 0, EC_STREAM_PAD);
    if (coder == ELLM_CODER_HUFFMAN) {
        job.seg_offset = seg_offset;
        job.stream = stream;
        ellm_pool_run(pool, (int64_t)n_seg, huf_encode_task, &job);
    } else {
        for (uint64_t i = 0; i < n_seg; i++) memcpy(stream + seg_offset[i], job.seg_data[i], job.seg_size[i]);
    }
    *block = b;
    *block_size = total;
    b = NULL;
    st = ELLM_OK;
done:
    if (job.seg_data)
        for (uint64_t i = 0; i < n_seg; i++) free(job.seg_data[i]);
    free(job.seg_data);
    free(job.seg_size);
    free(job.lane_bytes);
    free(seg_offset);
    free(packed);
    free(b);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                               */
/* ------------------------------------------------------------------------ */

ellm_status ec_view_open(const uint8_t *block, size_t block_size, const char *what, ec_view *v,
                         ellm_error *err) {
    memset(v, 0, sizeof *v);
    if (!what) what = "coded block";
    if (!block || block_size < EC_FIXED_HEADER + 2 + EC_STREAM_PAD)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: coded block of %zu bytes is shorter than its header and padding",
                         what, block_size);
    if (memcmp(block, EC_MAGIC, 4) != 0)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: coded block has a bad magic (byte 0)", what);
    if (block[4] != EC_VERSION)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: coded block version %u is not %d (byte 4)%s", what, block[4], EC_VERSION,
                         block[4] == 1 ? ": version 1 blocks are no longer read, re-compress the model" : "");
    ellm_coder coder = (ellm_coder)block[5];
    int bits = block[6], param = block[7];
    if (coder != ELLM_CODER_HUFFMAN && coder != ELLM_CODER_RANS)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: unknown coder %d (byte 5)", what, (int)coder);
    if (bits != 8 && bits != 4)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: symbol width %d is not 8 or 4 (byte 6)", what, bits);
    if (coder == ELLM_CODER_HUFFMAN && param != EC_HUF_MAX_LEN)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: huffman length limit %d is not %d (byte 7)", what, param,
                         EC_HUF_MAX_LEN);
    if (coder == ELLM_CODER_RANS && (param < 1 || param > EC_RANS_MAX_SCALE_BITS))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: rans scale_bits %d is not in 1..%d (byte 7)", what, param,
                         EC_RANS_MAX_SCALE_BITS);
    /* Everything up to the stream must leave the 16 padding bytes, which
     * are zero. */
    const uint8_t *end = block + block_size - EC_STREAM_PAD;
    for (int i = 0; i < EC_STREAM_PAD; i++)
        if (end[i])
            return ellm_fail(err, ELLM_E_FORMAT, "%s: padding byte %zu of the coded block is not zero", what,
                             block_size - EC_STREAM_PAD + (size_t)i);
    const uint8_t *p = block + EC_FIXED_HEADER;
    uint64_t n, seg64;
    if (!ec_varint_get(&p, end, &n))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: bad symbol count varint (byte %d)", what, EC_FIXED_HEADER);
    size_t at = (size_t)(p - block);
    if (!ec_varint_get(&p, end, &seg64))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: bad segment size varint (byte %zu)", what, at);
    if (seg64 == 0 || seg64 > UINT32_MAX || (bits == 4 && (seg64 & 1)))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: segment size %llu is invalid for %d-bit symbols (byte %zu)",
                         what, (unsigned long long)seg64, bits, at);
    uint32_t seg = (uint32_t)seg64;
    uint64_t n_seg = n ? (n - 1) / seg + 1 : 0;

    /* Table: none when n = 0, else first and last value and the bits. */
    uint8_t lens[EC_UNIT_ALPHABET] = {0};
    uint16_t freq[256] = {0};
    const int alphabet = coder == ELLM_CODER_HUFFMAN ? EC_UNIT_ALPHABET : 1 << bits;
    size_t table_at = (size_t)(p - block);
    if (n) {
        if (end - p < 2 || p[0] > p[1] || p[1] >= alphabet)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: table value range %d..%d is invalid (byte %zu)", what,
                             end - p < 2 ? -1 : p[0], end - p < 2 ? -1 : p[1], table_at);
        int lo = p[0], hi = p[1];
        bitr r = {.buf = p + 2, .pos = 0, .len = 8 * (uint64_t)(end - p - 2)};
        bool ok = coder == ELLM_CODER_HUFFMAN ? huf_lens_get(&r, lens, lo, hi) : rans_freqs_get(&r, freq, lo, hi);
        /* the rest of the last byte is zero */
        for (uint32_t x; ok && r.pos % 8;) ok = bitr_get(&r, 1, &x) && x == 0;
        if (!ok)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: %s table at byte %zu is malformed or truncated", what,
                             coder == ELLM_CODER_HUFFMAN ? "code length" : "frequency", table_at);
        p += 2 + r.pos / 8;
    }
    void *tables = NULL;
    ellm_status st;
    if (coder == ELLM_CODER_HUFFMAN) {
        int used = 0;
        for (int s = 0; s < EC_UNIT_ALPHABET; s++) {
            if (lens[s] > EC_HUF_MAX_LEN)
                return ellm_fail(err, ELLM_E_FORMAT, "%s: code length %u of symbol %d exceeds the limit %d (table at byte %zu)",
                                 what, lens[s], s, EC_HUF_MAX_LEN, table_at);
            used += lens[s] != 0;
        }
        if (n && !used) return ellm_fail(err, ELLM_E_FORMAT, "%s: %llu symbols but no code lengths", what,
                                         (unsigned long long)n);
        st = ec_huf_tables_build(lens, what, &tables, err);
    } else if (n == 0) {
        ec_tables *t = ellm_aligned_alloc(sizeof *t, err);
        if (!t) return ELLM_E_NOMEM;
        memset(t, 0, sizeof *t);
        t->u.rans.scale_bits = param;
        tables = t;
        st = ELLM_OK;
    } else {
        st = ec_rans_tables_build(freq, alphabet, param, what, &tables, err);
    }
    if (st) return st;
    ec_tables *t = tables;
    *v = (ec_view){.coder = coder, .bits = bits, .n_symbols = n, .segment_symbols = seg,
                   .n_segments = n_seg, .block = block, .block_size = block_size, .tables = tables};

    /* Segment sizes: n_seg - 1 varints (each segment is at least one byte,
     * so there cannot be more segments than bytes), the last segment is the
     * rest of the stream. */
    size_t sizes_at = (size_t)(p - block);
    if (n_seg > (uint64_t)(end - p)) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: coded block of %zu bytes is too short for %llu segments", what,
                       block_size, (unsigned long long)n_seg);
        goto fail;
    }
    t->offsets = ellm_malloc(((size_t)n_seg + 1) * sizeof *t->offsets, err);
    if (!t->offsets) {
        st = ELLM_E_NOMEM;
        goto fail;
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i + 1 < n_seg; i++) {
        uint64_t size;
        if (!ec_varint_get(&p, end, &size) || size > (uint64_t)(end - p) || sum + size > (uint64_t)(end - p)) {
            st = ellm_fail(err, ELLM_E_FORMAT, "%s: size of segment %llu (byte %zu) is malformed or too large", what,
                           (unsigned long long)i, (size_t)(p - block));
            goto fail;
        }
        t->offsets[i] = sum;
        sum += size;
    }
    const uint8_t *stream = p;
    uint64_t stream_bytes = (uint64_t)(end - p);
    if (sum > stream_bytes) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: segment sizes from byte %zu exceed the stream's %llu bytes", what,
                       sizes_at, (unsigned long long)stream_bytes);
        goto fail;
    }
    if (n_seg) t->offsets[n_seg - 1] = sum;
    t->offsets[n_seg] = stream_bytes;
    if (n_seg == 0 && stream_bytes != 0) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: %llu stream bytes in a block without symbols", what,
                       (unsigned long long)stream_bytes);
        goto fail;
    }
    t->stream = stream;
    t->stream_bytes = stream_bytes;
    t->block_end = block + block_size;

    /* Every segment within its coder's size bounds. */
    for (uint64_t i = 0; i < n_seg; i++) {
        uint64_t size = t->offsets[i + 1] - t->offsets[i];
        uint32_t count = ec_segment_count(v, i);
        bool ok;
        if (coder == ELLM_CODER_HUFFMAN) {
            size_t lb[EC_HUF_LANES], data;
            ok = ec_huf_segment_lanes(stream + t->offsets[i], (size_t)size, ec_unit_count(bits, count), lb, &data);
        } else {
            ok = size >= 4 * EC_RANS_STATES && size <= ec_rans_segment_bound(count);
        }
        if (!ok) {
            st = ellm_fail(err, ELLM_E_FORMAT,
                           "%s: segment %llu: its %llu bytes at stream byte %llu (block byte %zu) are inconsistent "
                           "with its %u symbols",
                           what, (unsigned long long)i, (unsigned long long)size, (unsigned long long)t->offsets[i],
                           (size_t)(stream - block) + (size_t)t->offsets[i], count);
            goto fail;
        }
    }
    return ELLM_OK;
fail:
    ec_view_close(v);
    return st;
}

void ec_view_close(ec_view *v) {
    if (!v) return;
    if (v->tables) free(((ec_tables *)v->tables)->offsets);
    free(v->tables);
    v->tables = NULL;
}

ellm_status ec_decode_segment(const ec_view *v, uint64_t segment, uint8_t *out, ellm_error *err) {
    if (!v->tables || segment >= v->n_segments)
        return ellm_fail(err, ELLM_E_ARG, "segment %llu of a block with %llu segments",
                         (unsigned long long)segment, (unsigned long long)v->n_segments);
    const ec_tables *t = v->tables;
    uint64_t start = t->offsets[segment];
    uint64_t end = t->offsets[segment + 1];
    const uint8_t *seg = t->stream + start;
    if (v->coder == ELLM_CODER_HUFFMAN)
        return ec_huf_decode_segment(v, segment, seg, (size_t)(end - start), out, err);
    return ec_rans_decode_segment(v, segment, seg, (size_t)(end - start), out, err);
}
