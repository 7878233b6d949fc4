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

/* Huffman: a code length (0..11) for each of the 256 unit (byte) values,
 * two per byte (value 2k in the low nibble); rANS: a u16 frequency for each
 * of the 2^bits symbols. */
static size_t table_bytes(ellm_coder coder, int bits) {
    return coder == ELLM_CODER_HUFFMAN ? EC_UNIT_ALPHABET / 2 : 2u << bits;
}
static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

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

    uint8_t table[512];
    uint8_t lens[256] = {0};
    uint32_t rcode[256] = {0};
    uint16_t freq[256] = {0};
    int param;
    ellm_status st;
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
        if (!st) {
            ec_huf_stream_codes(lens, EC_UNIT_ALPHABET, rcode);
            memset(table, 0, EC_UNIT_ALPHABET / 2);
            for (int s = 0; s < EC_UNIT_ALPHABET; s++) table[s / 2] |= (uint8_t)(lens[s] << (4 * (s & 1)));
        }
        param = EC_HUF_MAX_LEN;
    } else {
        st = ec_rans_normalize(hist, alphabet, EC_RANS_SCALE_BITS, freq, err);
        for (int s = 0; s < alphabet; s++) ellm_put_le16(table + 2 * s, freq[s]);
        param = EC_RANS_SCALE_BITS;
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
            stream_bytes += EC_HUF_LANE_HEADER;
            for (int l = 0; l < EC_HUF_LANES; l++) stream_bytes += job.lane_bytes[EC_HUF_LANES * i + (uint64_t)l];
        } else {
            stream_bytes += job.seg_size[i];
        }
    }
    seg_offset[n_seg] = stream_bytes;

    /* The block: header, table, offsets, stream, padding. */
    size_t head = align8(EC_HEADER_BYTES + table_bytes(coder, bits));
    size_t offsets_bytes = 8 * ((size_t)n_seg + 1);
    size_t total = head + offsets_bytes + (size_t)stream_bytes + EC_STREAM_PAD;
    b = ellm_malloc(total, err);
    if (!b) {
        st = ELLM_E_NOMEM;
        goto done;
    }
    memset(b, 0, head);
    memcpy(b, EC_MAGIC, 4);
    b[4] = EC_VERSION;
    b[5] = (uint8_t)coder;
    b[6] = (uint8_t)bits;
    b[7] = (uint8_t)param;
    ellm_put_le64(b + 8, n);
    ellm_put_le32(b + 16, seg);
    ellm_put_le32(b + 20, 0);
    ellm_put_le64(b + 24, n_seg);
    memcpy(b + EC_HEADER_BYTES, table, table_bytes(coder, bits));
    uint8_t *offs = b + head, *stream = b + head + offsets_bytes;
    for (uint64_t i = 0; i <= n_seg; i++) ellm_put_le64(offs + 8 * i, seg_offset[i]);
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
    if (!block || block_size < EC_HEADER_BYTES)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: coded block of %zu bytes is shorter than its %d-byte header",
                         what, block_size, EC_HEADER_BYTES);
    if (memcmp(block, EC_MAGIC, 4) != 0)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: coded block has a bad magic (byte 0)", what);
    if (block[4] != EC_VERSION)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: coded block version %u is not %d (byte 4)", what, block[4],
                         EC_VERSION);
    ellm_coder coder = (ellm_coder)block[5];
    int bits = block[6], param = block[7];
    uint64_t n = ellm_le64(block + 8);
    uint32_t seg = ellm_le32(block + 16);
    uint64_t n_seg = ellm_le64(block + 24);
    if (coder != ELLM_CODER_HUFFMAN && coder != ELLM_CODER_RANS)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: unknown coder %d (byte 5)", what, (int)coder);
    if (bits != 8 && bits != 4)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: symbol width %d is not 8 or 4 (byte 6)", what, bits);
    if (ellm_le32(block + 20) != 0)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: reserved header bytes 20..23 are not zero", what);
    if (seg == 0 || (bits == 4 && (seg & 1)))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: segment size %u is invalid for %d-bit symbols (byte 16)",
                         what, seg, bits);
    uint64_t want_seg = n ? (n - 1) / seg + 1 : 0;
    if (n_seg != want_seg)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: %llu segments for %llu symbols of %u per segment (byte 24)",
                         what, (unsigned long long)n_seg, (unsigned long long)n, seg);
    size_t head = align8(EC_HEADER_BYTES + table_bytes(coder, bits));
    /* n_seg <= n, and n can be anything: bound the offsets table by the size first. */
    if (n_seg >= block_size / 8 || head + 8 * (n_seg + 1) + EC_STREAM_PAD > block_size)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: coded block of %zu bytes is too short for %llu segment offsets",
                         what, block_size, (unsigned long long)n_seg);
    for (size_t i = EC_HEADER_BYTES + table_bytes(coder, bits); i < head; i++)
        if (block[i])
            return ellm_fail(err, ELLM_E_FORMAT, "%s: table padding byte %zu is not zero", what, i);
    const uint8_t *offs = block + head;
    const uint8_t *stream = offs + 8 * (n_seg + 1);
    uint64_t stream_bytes = block_size - (size_t)(stream - block) - EC_STREAM_PAD;

    void *tables = NULL;
    ellm_status st;
    if (coder == ELLM_CODER_HUFFMAN) {
        if (param != EC_HUF_MAX_LEN)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: huffman length limit %d is not %d (byte 7)", what, param,
                             EC_HUF_MAX_LEN);
        uint8_t lens[EC_UNIT_ALPHABET];
        int used = 0;
        for (int s = 0; s < EC_UNIT_ALPHABET; s++) {
            lens[s] = (block[EC_HEADER_BYTES + s / 2] >> (4 * (s & 1))) & 15;
            if (lens[s] > param)
                return ellm_fail(err, ELLM_E_FORMAT, "%s: code length %u of symbol %d exceeds the limit %d (byte %d)",
                                 what, lens[s], s, param, EC_HEADER_BYTES + s / 2);
            used += lens[s] != 0;
        }
        if (n && !used) return ellm_fail(err, ELLM_E_FORMAT, "%s: %llu symbols but no code lengths", what,
                                         (unsigned long long)n);
        st = ec_huf_tables_build(lens, what, &tables, err);
    } else {
        uint16_t freq[256];
        const int alphabet = 1 << bits;
        int any = 0;
        for (int s = 0; s < alphabet; s++) {
            freq[s] = ellm_le16(block + EC_HEADER_BYTES + 2 * s);
            any |= freq[s] != 0;
        }
        if (n == 0 && !any) {
            ec_tables *t = ellm_aligned_alloc(sizeof *t, err);
            if (!t) return ELLM_E_NOMEM;
            memset(t, 0, sizeof *t);
            t->u.rans.scale_bits = param;
            tables = t;
            st = ELLM_OK;
        } else {
            st = ec_rans_tables_build(freq, alphabet, param, what, &tables, err);
        }
    }
    if (st) return st;
    ec_tables *t = tables;
    t->offsets = offs;
    t->stream = stream;
    t->stream_bytes = stream_bytes;
    t->block_end = block + block_size;
    *v = (ec_view){.coder = coder, .bits = bits, .n_symbols = n, .segment_symbols = seg,
                   .n_segments = n_seg, .block = block, .block_size = block_size, .tables = tables};

    /* Offsets: start at 0, never decrease, end at the stream's length; every
     * segment within its coder's size bounds. */
    if (ellm_le64(offs) != 0) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: first segment offset is not 0 (byte %zu)", what, head);
        goto fail;
    }
    if (ellm_le64(offs + 8 * n_seg) != stream_bytes) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: segments end at stream byte %llu but the stream has %llu bytes",
                       what, (unsigned long long)ellm_le64(offs + 8 * n_seg), (unsigned long long)stream_bytes);
        goto fail;
    }
    uint64_t prev = 0;
    for (uint64_t i = 0; i < n_seg; i++) {
        uint64_t next = ellm_le64(offs + 8 * (i + 1));
        uint32_t count = ec_segment_count(v, i);
        uint64_t size = next - prev;
        bool ok = next >= prev && next <= stream_bytes;
        if (ok && coder == ELLM_CODER_HUFFMAN)
            ok = ec_huf_segment_lanes_ok(stream + prev, (size_t)size, ec_unit_count(bits, count));
        else if (ok)
            ok = size >= 4 * EC_RANS_STATES && size <= ec_rans_segment_bound(count);
        if (!ok) {
            st = ellm_fail(err, ELLM_E_FORMAT,
                           "%s: segment %llu: offsets %llu..%llu (table byte %llu) are out of order, out of the "
                           "stream's %llu bytes or inconsistent with its %u symbols",
                           what, (unsigned long long)i, (unsigned long long)prev, (unsigned long long)next,
                           (unsigned long long)(head + 8 * (i + 1)), (unsigned long long)stream_bytes, count);
            goto fail;
        }
        prev = next;
    }
    return ELLM_OK;
fail:
    ec_view_close(v);
    return st;
}

void ec_view_close(ec_view *v) {
    if (!v) return;
    free(v->tables);
    v->tables = NULL;
}

ellm_status ec_decode_segment(const ec_view *v, uint64_t segment, uint8_t *out, ellm_error *err) {
    if (!v->tables || segment >= v->n_segments)
        return ellm_fail(err, ELLM_E_ARG, "segment %llu of a block with %llu segments",
                         (unsigned long long)segment, (unsigned long long)v->n_segments);
    const ec_tables *t = v->tables;
    uint64_t start = ellm_le64(t->offsets + 8 * segment);
    uint64_t end = ellm_le64(t->offsets + 8 * (segment + 1));
    const uint8_t *seg = t->stream + start;
    if (v->coder == ELLM_CODER_HUFFMAN)
        return ec_huf_decode_segment(v, segment, seg, (size_t)(end - start), out, err);
    return ec_rans_decode_segment(v, segment, seg, (size_t)(end - start), out, err);
}
