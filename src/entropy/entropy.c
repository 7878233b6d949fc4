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

/* Order-k exp-Golomb codes (docs/CODED_BLOCK.md 1.1): with x = z + 2^k and
 * b = floor(log2 x), b - k zero bits, a one bit, then the low b bits of x. */
static void eg_put(bitw *w, uint32_t z, int k) {
    uint32_t x = z + (1u << k);
    int b = 31 - __builtin_clz(x);
    bitw_put(w, 0, b - k);
    bitw_put(w, 1, 1);
    bitw_put(w, x, b);
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

/* Huffman table: first and last used value, then the lengths' bits. */
static size_t huf_table_put(const uint8_t *lens, uint8_t *buf) {
    int lo = -1, hi = -1;
    for (int s = 0; s < EC_UNIT_ALPHABET; s++)
        if (lens[s]) {
            if (lo < 0) lo = s;
            hi = s;
        }
    if (lo < 0) return 0; /* no symbols: no table */
    bitw w = {.buf = buf ? buf + 2 : NULL, .pos = 0};
    if (buf) buf[0] = (uint8_t)lo, buf[1] = (uint8_t)hi;
    huf_lens_put(&w, lens, lo, hi);
    return 2 + (size_t)((w.pos + 7) / 8);
}

/* rANS table (docs/CODED_BLOCK.md 4.1-4.2): with classes, a varint
 * 2 * line + axis; then bits: per class lo and hi (`bits` bits each), k (4
 * bits) and the zigzag deltas of the weights lo..hi as order-k exp-Golomb
 * codes; then the class of every line. buf NULL only counts. */
static size_t rans_table_put(const ec_rans_choice *c, int bits, uint64_t n, uint8_t *buf) {
    if (!n) return 0;
    const ec_rans_model *m = &c->model;
    size_t pos = 0;
    uint8_t var[10];
    if (m->n_classes > 1) {
        size_t vb = ec_varint_put(var, m->line * 2 + (uint64_t)m->axis);
        if (buf) memcpy(buf, var, vb);
        pos = vb;
    }
    bitw w = {.buf = buf ? buf + pos : NULL, .pos = 0};
    const int alphabet = 1 << bits;
    for (int k = 0; k < m->n_classes; k++) {
        const uint32_t *z = c->z[k];
        int lo = -1, hi = -1;
        for (int s = 0; s < alphabet; s++)
            if (z[s]) {
                if (lo < 0) lo = s;
                hi = s;
            }
        bitw_put(&w, (uint32_t)lo, bits);
        bitw_put(&w, (uint32_t)hi, bits);
        bitw_put(&w, (uint32_t)c->k[k], 4);
        int32_t prev = 0;
        for (int s = lo; s <= hi; s++) {
            eg_put(&w, ec_zigzag((int32_t)z[s] - prev), c->k[k]);
            prev = (int32_t)z[s];
        }
    }
    const int cb = ec_rans_class_bits(m->n_classes);
    for (uint64_t l = 0; cb && l < m->n_lines; l++) bitw_put(&w, m->cls[l], cb);
    return pos + (size_t)((w.pos + 7) / 8);
}

/* Reads a rANS table into m (frequencies and, with classes, the malloc'd
 * class map) and advances *p. NULL on success, else what is wrong. */
static const char *rans_table_get(const uint8_t **p, const uint8_t *end, int bits, uint64_t n, ec_rans_model *m) {
    const int alphabet = 1 << bits;
    if (m->n_classes > 1) {
        uint64_t g;
        if (!ec_varint_get(p, end, &g)) return "bad class geometry varint";
        m->axis = (int)(g & 1);
        m->line = g >> 1;
        if (m->line == 0 || m->line > n) return "class line length is 0 or longer than the tensor";
        m->n_lines = m->axis == 0 ? (n - 1) / m->line + 1 : m->line;
    }
    bitr r = {.buf = *p, .pos = 0, .len = 8 * (uint64_t)(end - *p)};
    for (int c = 0; c < m->n_classes; c++) {
        uint32_t lo, hi, k, z[256] = {0};
        if (!bitr_get(&r, bits, &lo) || !bitr_get(&r, bits, &hi) || !bitr_get(&r, 4, &k)) return "truncated";
        if (lo > hi) return "first value above the last";
        int32_t prev = 0;
        for (uint32_t s = lo; s <= hi; s++) {
            uint32_t zz;
            if (!eg_get(&r, (int)k, 20, &zz)) return "malformed or truncated weight";
            prev += (zz & 1) ? -(int32_t)(zz / 2) - 1 : (int32_t)(zz / 2);
            if (prev < 0 || prev > (int32_t)EC_RANS_MAX_WEIGHT) return "weight outside 0..65535";
            z[s] = (uint32_t)prev;
        }
        if (!z[lo] || !z[hi]) return "first or last value unused";
        if (!ec_rans_freqs_from_weights(z, alphabet, m->scale_bits, m->freq[c]))
            return "more used values than frequency slots";
    }
    const int cb = ec_rans_class_bits(m->n_classes);
    if (cb) {
        if (m->n_lines > (r.len - r.pos) / (uint64_t)cb) return "class map truncated";
        m->cls = malloc((size_t)m->n_lines);
        if (!m->cls) return "out of memory for the class map";
        for (uint64_t l = 0; l < m->n_lines; l++) {
            uint32_t c = 0;
            if (!bitr_get(&r, cb, &c) || (int)c >= m->n_classes) return "class map names a class the block does not have";
            m->cls[l] = (uint8_t)c;
        }
    }
    for (uint32_t x; r.pos % 8;)
        if (!bitr_get(&r, 1, &x) || x) return "fill bits are not zero";
    *p += r.pos / 8;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Encoder                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct encode_job {
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
    const ec_rans_model *model;
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
    (void)thread;
    encode_job *j = ctx;
    uint64_t first;
    uint32_t units = job_segment(j, task, &first);
    ec_huf_lane_bytes(j->lens, j->symbols + first, units, j->lane_bytes + EC_HUF_LANES * task);
}

static void huf_encode_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    encode_job *j = ctx;
    uint64_t first;
    uint32_t units = job_segment(j, task, &first);
    ec_huf_encode_segment(j->lens, j->rcode, j->symbols + first, units, j->lane_bytes + EC_HUF_LANES * task,
                          j->stream + j->seg_offset[task]);
}

static void rans_encode_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    encode_job *j = ctx;
    uint64_t first;
    uint32_t count = job_segment(j, task, &first);
    uint64_t bound = ec_rans_segment_bound(j->model, count);
    uint8_t *dst = malloc(bound);
    if (!dst) {
        atomic_store(&j->failed, 1);
        return;
    }
    j->seg_size[task] = ec_rans_encode_segment(j->model, j->symbols + first, first, count, dst, bound);
    j->seg_data[task] = dst;
}

/* Byte 7 of a rANS block: scale_bits (bits 0-3), log2 of the states (bits
 * 4-5), classes - 1 (bits 6-7). */
static uint8_t rans_param_byte(const ec_rans_model *m) {
    int log_states = m->n_states == 8 ? 3 : m->n_states == 4 ? 2 : m->n_states == 2 ? 1 : 0;
    return (uint8_t)(m->scale_bits | log_states << 4 | (m->n_classes - 1) << 6);
}

ellm_status ec_encode(ellm_coder coder, int bits, const uint8_t *symbols, uint64_t n,
                      uint32_t segment_symbols, ellm_pool *pool, uint8_t **block,
                      size_t *block_size, ellm_error *err) {
    return ec_encode_rows(coder, bits, symbols, n, 0, segment_symbols, pool, block, block_size, err);
}

ellm_status ec_encode_rows(ellm_coder coder, int bits, const uint8_t *symbols, uint64_t n, uint64_t row_len,
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
    uint64_t hist[256];
    ec_histogram(symbols, n, 256, hist);
    for (int s = 1 << bits; s < 256; s++)
        if (hist[s])
            return ellm_fail(err, ELLM_E_ARG, "ec_encode: symbol %d does not fit in %d bits", s, bits);

    uint8_t lens[256] = {0};
    uint32_t rcode[256] = {0};
    ec_rans_choice *rc = NULL;
    uint8_t param;
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
        rc = ellm_malloc(sizeof *rc, err);
        st = rc ? ec_rans_choose(symbols, hist, n, bits, row_len, rc, err) : ELLM_E_NOMEM; /* hist: of the symbols */
        param = rc ? rans_param_byte(&rc->model) : 0;
    }
    if (st) {
        if (rc) free(rc->model.cls);
        free(rc);
        free(packed);
        return st;
    }

    uint64_t n_seg = n ? (n - 1) / seg + 1 : 0;
    encode_job job = {.bits = bits, .symbols = units, .n = n_units, .seg_syms = seg_units,
                      .lens = lens, .rcode = rcode, .model = rc ? &rc->model : NULL};
    atomic_init(&job.failed, 0);
    uint64_t *seg_offset = NULL;
    uint8_t *b = NULL;
    if (n_seg > SIZE_MAX / 64) {
        st = ellm_fail(err, ELLM_E_ARG, "ec_encode: too many segments");
        goto done;
    }
    seg_offset = ellm_malloc(((size_t)n_seg + 1) * sizeof *seg_offset, err);
    if (!seg_offset) {
        st = ELLM_E_NOMEM;
        goto done;
    }

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

    /* The block: header, table, segment sizes, stream. */
    size_t head = EC_FIXED_HEADER + ec_varint_size(n) + ec_varint_size(seg);
    size_t tbytes = coder == ELLM_CODER_HUFFMAN ? huf_table_put(lens, NULL) : rans_table_put(rc, bits, n, NULL);
    size_t offsets_bytes = 0;
    for (uint64_t i = 0; i + 1 < n_seg; i++) offsets_bytes += ec_varint_size(seg_offset[i + 1] - seg_offset[i]);
    size_t total = head + tbytes + offsets_bytes + (size_t)stream_bytes;
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
    b[7] = param;
    size_t pos = EC_FIXED_HEADER;
    pos += ec_varint_put(b + pos, n);
    pos += ec_varint_put(b + pos, seg);
    pos += coder == ELLM_CODER_HUFFMAN ? huf_table_put(lens, b + pos) : rans_table_put(rc, bits, n, b + pos);
    for (uint64_t i = 0; i + 1 < n_seg; i++) pos += ec_varint_put(b + pos, seg_offset[i + 1] - seg_offset[i]);
    uint8_t *stream = b + pos;
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
    if (rc) free(rc->model.cls);
    free(rc);
    free(b);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                               */
/* ------------------------------------------------------------------------ */

/* Reads byte 7 of a rANS block into m. */
static bool rans_param_get(uint8_t param, ec_rans_model *m) {
    memset(m, 0, sizeof *m);
    m->scale_bits = param & 15;
    m->n_states = 1 << ((param >> 4) & 3);
    m->n_classes = 1 + (param >> 6);
    return m->scale_bits >= 1 && m->scale_bits <= EC_RANS_MAX_SCALE_BITS;
}

/* Parses and checks the table; builds the coder's decode tables. */
static ellm_status open_tables(const uint8_t *block, const uint8_t **p, const uint8_t *end, ellm_coder coder,
                               int bits, int param, uint64_t n, const char *what, void **tables, ellm_error *err) {
    size_t table_at = (size_t)(*p - block);
    if (coder == ELLM_CODER_HUFFMAN) {
        uint8_t lens[EC_UNIT_ALPHABET] = {0};
        if (n) {
            if (end - *p < 2 || (*p)[0] > (*p)[1])
                return ellm_fail(err, ELLM_E_FORMAT, "%s: table value range at byte %zu is invalid or truncated",
                                 what, table_at);
            int lo = (*p)[0], hi = (*p)[1];
            bitr r = {.buf = *p + 2, .pos = 0, .len = 8 * (uint64_t)(end - *p - 2)};
            bool ok = huf_lens_get(&r, lens, lo, hi);
            for (uint32_t x; ok && r.pos % 8;) ok = bitr_get(&r, 1, &x) && x == 0; /* fill bits zero */
            if (!ok)
                return ellm_fail(err, ELLM_E_FORMAT, "%s: code length table at byte %zu is malformed or truncated",
                                 what, table_at);
            *p += 2 + r.pos / 8;
        }
        int used = 0;
        for (int s = 0; s < EC_UNIT_ALPHABET; s++) {
            if (lens[s] > EC_HUF_MAX_LEN)
                return ellm_fail(err, ELLM_E_FORMAT,
                                 "%s: code length %u of symbol %d exceeds the limit %d (table at byte %zu)", what,
                                 lens[s], s, EC_HUF_MAX_LEN, table_at);
            used += lens[s] != 0;
        }
        if (n && !used)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: %llu symbols but no code lengths", what, (unsigned long long)n);
        return ec_huf_tables_build(lens, what, tables, err);
    }
    ec_rans_model m;
    rans_param_get((uint8_t)param, &m);
    if (n == 0) {
        if (m.n_classes != 1)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: an empty rans block with %d classes (byte 7)", what,
                             m.n_classes);
        for (int s = 0; s < (1 << bits); s++) m.freq[0][s] = 0;
        m.freq[0][0] = (uint16_t)(1u << m.scale_bits); /* never used: a valid table for the builder */
    } else {
        const char *why = rans_table_get(p, end, bits, n, &m);
        if (why) {
            free(m.cls);
            return ellm_fail(err, ELLM_E_FORMAT, "%s: rans table at byte %zu: %s", what, table_at, why);
        }
    }
    ellm_status st = ec_rans_tables_build(&m, 1 << bits, what, tables, err);
    free(m.cls); /* NULL when moved into the tables */
    return st;
}

/* The padded copy of the stream's tail (see ec_tables.tail). */
static ellm_status copy_tail(ec_tables *t, uint64_t n_seg, ellm_error *err) {
    if (!n_seg) return ELLM_OK;
    uint64_t i = n_seg - 1;
    while (i > 0 && t->offsets[i] + EC_STREAM_PAD > t->stream_bytes) i--;
    t->tail_from = t->offsets[i];
    size_t len = (size_t)(t->stream_bytes - t->tail_from);
    t->tail = ellm_malloc(len + EC_STREAM_PAD, err);
    if (!t->tail) return ELLM_E_NOMEM;
    memcpy(t->tail, t->stream + t->tail_from, len);
    memset(t->tail + len, 0, EC_STREAM_PAD);
    return ELLM_OK;
}

ellm_status ec_view_open(const uint8_t *block, size_t block_size, const char *what, ec_view *v,
                         ellm_error *err) {
    memset(v, 0, sizeof *v);
    if (!what) what = "coded block";
    if (!block || block_size < EC_FIXED_HEADER + 2)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: coded block of %zu bytes is shorter than its header", what,
                         block_size);
    if (memcmp(block, EC_MAGIC, 4) != 0)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: coded block has a bad magic (byte 0)", what);
    if (block[4] != EC_VERSION)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: coded block version %u is not %d (byte 4)%s", what, block[4],
                         EC_VERSION,
                         block[4] < EC_VERSION ? ": blocks of earlier versions are no longer read, re-compress the model"
                                               : "");
    ellm_coder coder = (ellm_coder)block[5];
    int bits = block[6], param = block[7];
    if (coder != ELLM_CODER_HUFFMAN && coder != ELLM_CODER_RANS)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: unknown coder %d (byte 5)", what, (int)coder);
    if (bits != 8 && bits != 4)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: symbol width %d is not 8 or 4 (byte 6)", what, bits);
    if (coder == ELLM_CODER_HUFFMAN && param != EC_HUF_MAX_LEN)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: huffman length limit %d is not %d (byte 7)", what, param,
                         EC_HUF_MAX_LEN);
    ec_rans_model pm;
    if (coder == ELLM_CODER_RANS && !rans_param_get((uint8_t)param, &pm))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: rans scale_bits %d is not in 1..%d (byte 7)", what, param & 15,
                         EC_RANS_MAX_SCALE_BITS);
    const uint8_t *end = block + block_size;
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

    void *tables = NULL;
    ellm_status st = open_tables(block, &p, end, coder, bits, param, n, what, &tables, err);
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

    /* Every segment within its coder's size bounds. */
    for (uint64_t i = 0; i < n_seg; i++) {
        uint64_t size = t->offsets[i + 1] - t->offsets[i];
        uint32_t count = ec_segment_count(v, i);
        bool ok;
        if (coder == ELLM_CODER_HUFFMAN) {
            size_t lb[EC_HUF_LANES], data;
            ok = ec_huf_segment_lanes(stream + t->offsets[i], (size_t)size, ec_unit_count(bits, count), lb, &data);
        } else {
            const ec_rans_model *m = &t->u.rans.model;
            ok = size >= 4 * (uint64_t)m->n_states && size <= ec_rans_segment_bound(m, count);
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
    st = copy_tail(t, n_seg, err);
    if (st) goto fail;
    return ELLM_OK;
fail:
    ec_view_close(v);
    return st;
}

void ec_view_rans_layout(const ec_view *v, int *n_states, int *n_classes, int *axis) {
    *n_states = *n_classes = *axis = 0;
    if (v->coder != ELLM_CODER_RANS || !v->tables) return;
    const ec_rans_model *m = &((const ec_tables *)v->tables)->u.rans.model;
    *n_states = m->n_states;
    *n_classes = m->n_classes;
    *axis = m->n_classes > 1 ? m->axis : 0;
}

void ec_view_close(ec_view *v) {
    if (!v) return;
    ec_tables *t = v->tables;
    if (t) {
        free(t->offsets);
        free(t->tail);
        if (v->coder == ELLM_CODER_RANS) {
            free(t->u.rans.sym);
            free(t->u.rans.model.cls);
        }
    }
    free(t);
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
    const uint8_t *readable_end = t->stream + t->stream_bytes;
    if (end + EC_STREAM_PAD > t->stream_bytes) { /* near the block's end: read the padded copy */
        seg = t->tail + (start - t->tail_from);
        readable_end = t->tail + (t->stream_bytes - t->tail_from) + EC_STREAM_PAD;
    }
    if (v->coder == ELLM_CODER_HUFFMAN)
        return ec_huf_decode_segment(v, segment, seg, (size_t)(end - start), readable_end, out, err);
    return ec_rans_decode_segment(v, segment, seg, (size_t)(end - start), readable_end, out, err);
}
