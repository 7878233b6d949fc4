/*
 * test_corrupt.c - corrupted coded blocks give ELLM_E_FORMAT (from
 * ec_view_open or ec_decode_segment), never a crash, an out-of-bounds read
 * (the block is copied into an exactly sized allocation, so ASan sees any
 * overread) or a write outside the tensor's bytes (guard bytes).
 *
 * Cases: every single-bit flip of small blocks, every truncation, offsets
 * made non-monotonic / out of range, table entries breaking Kraft or the
 * frequency sum, header fields changed, random garbage behind a valid header.
 */
#include "entropy/ec_internal.h"
#include "entropy/test_util.h"

#define GUARD 32

typedef struct outcome {
    int opened, decoded_all, other_error;
} outcome;

/* Opens and decodes every segment of a copy of the block; checks guards. */
static outcome try_block(const uint8_t *data, size_t size, const char *label) {
    outcome r = {0};
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    ec_view v;
    ellm_error err = {0};
    ellm_status st = ec_view_open(copy, size, label, &v, &err);
    if (st != ELLM_OK) {
        if (st != ELLM_E_FORMAT) r.other_error = 1;
        CHECK(st == ELLM_E_FORMAT, "%s: open returned %s: %s", label, ellm_status_name(st), err.message);
        free(copy);
        return r;
    }
    r.opened = 1;
    uint64_t nb = ec_decoded_bytes(v.bits, v.n_symbols);
    uint8_t *buf = malloc(nb + 2 * GUARD);
    memset(buf, 0x5A, nb + 2 * GUARD);
    int all = 1;
    for (uint64_t i = 0; i < v.n_segments; i++) {
        st = ec_decode_segment(&v, i, buf + GUARD, &err);
        if (st != ELLM_OK) {
            all = 0;
            CHECK(st == ELLM_E_FORMAT, "%s: segment %llu returned %s: %s", label, (unsigned long long)i,
                  ellm_status_name(st), err.message);
            if (st != ELLM_E_FORMAT) r.other_error = 1;
        }
    }
    r.decoded_all = all;
    for (int g = 0; g < GUARD; g++)
        if (buf[g] != 0x5A || buf[GUARD + nb + g] != 0x5A) {
            CHECK(0, "%s: decoder wrote outside the tensor", label);
            break;
        }
    free(buf);
    ec_view_close(&v);
    free(copy);
    return r;
}

static uint8_t *make_block(ellm_coder coder, int bits, hist_kind kind, uint64_t n, uint32_t seg, size_t *size) {
    uint8_t *sym = malloc(n ? n : 1);
    gen_symbols(sym, n, bits, kind, 99 + n);
    uint8_t *block = NULL;
    ellm_error err;
    ellm_status st = ec_encode(coder, bits, sym, n, seg, NULL, &block, size, &err);
    CHECK(st == ELLM_OK, "encode: %s", err.message);
    free(sym);
    return block;
}

/* Where the parts of a valid block are (from ec_view_open). */
typedef struct layout {
    size_t n_at, s_at, table_at, sizes_at, stream_at;
    uint64_t n_seg;
    uint64_t off[64];
} layout;
static layout block_layout(const uint8_t *b, size_t size) {
    layout L = {0};
    ec_view v;
    ellm_error err;
    CHECK(ec_view_open(b, size, "layout", &v, &err) == ELLM_OK, "layout: %s", err.message);
    const ec_tables *t = v.tables;
    L.n_at = EC_FIXED_HEADER;
    L.s_at = L.n_at + ec_varint_size(v.n_symbols);
    L.table_at = L.s_at + ec_varint_size(v.segment_symbols);
    L.stream_at = (size_t)(t->stream - b);
    L.n_seg = v.n_segments;
    CHECK(L.n_seg < 64, "layout: %llu segments", (unsigned long long)L.n_seg);
    L.sizes_at = L.stream_at;
    for (uint64_t i = 0; i <= L.n_seg && i < 64; i++) L.off[i] = t->offsets[i];
    for (uint64_t i = 0; i + 1 < L.n_seg; i++) L.sizes_at -= ec_varint_size(L.off[i + 1] - L.off[i]);
    ec_view_close(&v);
    return L;
}

/* Writes v as a varint of exactly `len` bytes (padding with 0x80 groups
 * would be non-minimal: callers pick values of that length). */
static void put_varint_len(uint8_t *p, uint64_t v, size_t len) {
    CHECK(ec_varint_size(v) == len, "test value %llu is not %zu varint bytes", (unsigned long long)v, len);
    ec_varint_put(p, v);
}

static void test_flips_and_truncations(ellm_coder coder, int bits, hist_kind kind) {
    size_t size;
    uint8_t *block = make_block(coder, bits, kind, 301, 64, &size);
    if (!block) return;
    char label[96];
    snprintf(label, sizeof label, "%s/%d/%s intact", ellm_coder_name(coder), bits, hist_names[kind]);
    outcome ok = try_block(block, size, label);
    CHECK(ok.opened && ok.decoded_all, "%s: intact block fails", label);

    uint8_t *m = malloc(size);
    int detected = 0, flips = 0, table_flips = 0, table_detected = 0;
    layout L = block_layout(block, size);
    for (size_t i = 0; i < size; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, block, size);
            m[i] ^= (uint8_t)(1u << bit);
            snprintf(label, sizeof label, "%s/%d/%s flip byte %zu bit %d", ellm_coder_name(coder), bits,
                     hist_names[kind], i, bit);
            outcome r = try_block(m, size, label);
            flips++;
            detected += !r.opened || !r.decoded_all;
            if (i >= L.table_at && i < L.sizes_at && kind != HIST_ONE) {
                table_flips++;
                table_detected += !r.opened || !r.decoded_all;
            }
            if (i >= L.n_at && i < L.table_at && kind != HIST_ONE) CHECK(!r.opened || !r.decoded_all, "%s: n/S flip accepted", label);
            if (i < 7 || (i == 7 && coder == ELLM_CODER_HUFFMAN))
                CHECK(!r.opened, "%s: magic/version/coder/bits flip accepted", label);
            /* rANS byte 7 (scale, states, classes): every scale gives valid
             * frequencies from the weights; the segments then fail */
            if (i == 7 && coder == ELLM_CODER_RANS && kind != HIST_ONE)
                CHECK(!r.opened || !r.decoded_all, "%s: rans parameter flip accepted", label);
        }
    /* A changed code length or frequency nearly always breaks Kraft / the
     * sum or the table's own structure; a flip inside a run length or the
     * range can shift lengths into another complete code (the container's
     * checksums catch those). */
    CHECK(table_detected * 10 >= table_flips * 9, "%s/%d/%s: only %d of %d table bit flips detected",
          ellm_coder_name(coder), bits, hist_names[kind], table_detected, table_flips);
    /* Stream flips: a code close to the entropy has little redundancy, so
     * many corrupted streams are valid streams of other symbols. rANS's
     * final-state and length checks catch about half with the single state
     * of a small block; Huffman codes resynchronise, so only a flip that
     * changes the number of bits a lane uses is caught here (about a
     * quarter). The container's checksums catch the rest. */
    int want = coder == ELLM_CODER_RANS ? flips / 2 : flips / 5;
    CHECK(detected > want, "%s/%d/%s: only %d of %d bit flips detected", ellm_coder_name(coder), bits,
          hist_names[kind], detected, flips);
    for (size_t cut = 0; cut < size; cut++) {
        snprintf(label, sizeof label, "%s/%d/%s truncated to %zu", ellm_coder_name(coder), bits, hist_names[kind], cut);
        outcome r = try_block(block, cut, label);
        /* The block's size is given by its container: a cut that keeps the
         * header, table and sizes whole shortens the last segment, which
         * then does not decode consistently. */
        CHECK(!r.opened || !r.decoded_all, "%s: truncated block decodes", label);
    }
    free(m);
    free(block);
}

/* Segment sizes are checked against plausible bounds when the block is
 * opened; a size that is plausible but wrong fails when decoding. */
static void expect_open_fails(const uint8_t *b, size_t size, const char *label) {
    outcome r = try_block(b, size, label);
    CHECK(!r.opened || !r.decoded_all, "%s: accepted", label);
}

static void test_structure(ellm_coder coder, int bits) {
    size_t size;
    uint8_t *block = make_block(coder, bits, HIST_BELL, 5000, 1000, &size);
    if (!block) return;
    uint8_t *m = malloc(size);
    layout L = block_layout(block, size);
    char label[96];
#define MUTATE(desc, stmt)                                                               \
    do {                                                                                 \
        memcpy(m, block, size);                                                          \
        stmt;                                                                            \
        snprintf(label, sizeof label, "%s/%d: %s", ellm_coder_name(coder), bits, desc); \
        expect_open_fails(m, size, label);                                               \
    } while (0)
    MUTATE("bad magic", m[0] = 'X');
    MUTATE("version 4", m[4] = 4);
    MUTATE("coder 0", m[5] = 0);
    MUTATE("coder 9", m[5] = 9);
    MUTATE("bits 5", m[6] = 5);
    /* earlier versions are refused with a message saying so */
    for (uint8_t old = 1; old < EC_VERSION; old++) {
        memcpy(m, block, size);
        m[4] = old;
        ec_view v;
        ellm_error err = {0};
        CHECK(ec_view_open(m, size, "old", &v, &err) == ELLM_E_FORMAT && strstr(err.message, "re-compress"),
              "version %u block: %s", old, err.message);
    }
    /* Huffman tables are the same for both widths: a swapped width may pass
     * ec_view_open, but then no segment decodes consistently. */
    memcpy(m, block, size);
    m[6] = bits == 8 ? 4 : 8;
    snprintf(label, sizeof label, "%s/%d: bits swapped", ellm_coder_name(coder), bits);
    outcome swapped = try_block(m, size, label);
    /* (a 4-bit rANS block read as 8-bit is a valid block of unpacked
     * symbols: the container's bits field and checksums catch that) */
    if (coder == ELLM_CODER_HUFFMAN || bits == 8)
        CHECK(!swapped.opened || !swapped.decoded_all, "%s: accepted", label);
    /* n = 5000 and S = 1000 are 2-byte varints */
    MUTATE("segment size 0 (non-minimal varint)", (m[L.s_at] = 0x80, m[L.s_at + 1] = 0));
    MUTATE("segment size changed", put_varint_len(m + L.s_at, 999, 2));
    if (bits == 4) MUTATE("segment size odd", put_varint_len(m + L.s_at, 1001, 2));
    MUTATE("symbol count + 1000", put_varint_len(m + L.n_at, 6000, 2));
    MUTATE("symbol count - 1000", put_varint_len(m + L.n_at, 4000, 2));
    MUTATE("symbol count unterminated", memset(m + L.n_at, 0xff, size - L.n_at));
    MUTATE("segment 0 size + 1", put_varint_len(m + L.sizes_at, L.off[1] + 1, ec_varint_size(L.off[1])));
    MUTATE("segment 0 size - 1", put_varint_len(m + L.sizes_at, L.off[1] - 1, ec_varint_size(L.off[1])));
    MUTATE("segment 0 size beyond stream", (m[L.sizes_at] = 0xff, m[L.sizes_at + 1] = 0x7f));
    if (coder == ELLM_CODER_HUFFMAN) {
        MUTATE("length limit 12", m[7] = 12);
        MUTATE("value range reversed", (m[L.table_at] = 200, m[L.table_at + 1] = 100));
        MUTATE("last value + 1", m[L.table_at + 1] += 1);
        MUTATE("first value - 1", m[L.table_at] -= 1);
        MUTATE("no lengths", memset(m + L.table_at + 2, 0, L.sizes_at - L.table_at - 2));
        MUTATE("lengths all 1", memset(m + L.table_at + 2, 0xff, L.sizes_at - L.table_at - 2));
        MUTATE("lane length beyond segment", put_varint_len(m + L.stream_at, 16383, 2));
    } else {
        /* byte 7: scale_bits in bits 0-3 (1..15), then states and classes */
        MUTATE("scale 0", m[7] &= 0xf0);
        MUTATE("scale - 1", m[7] -= 1);
        MUTATE("states x 2", m[7] ^= 0x10);
        MUTATE("classes 2", m[7] |= 0x40);
        /* the table's bit string: lo and hi (`bits` bits each), k (4 bits) */
        if (bits == 8) {
            MUTATE("value range reversed", (m[L.table_at] = 200, m[L.table_at + 1] = 100));
            MUTATE("exp-Golomb order changed", m[L.table_at + 2] ^= 1);
        } else {
            MUTATE("value range reversed", m[L.table_at] = (uint8_t)(9 | 1 << 4));
            MUTATE("exp-Golomb order changed", m[L.table_at + 1] ^= 1);
        }
        MUTATE("all weights zero", memset(m + L.table_at, 0, L.sizes_at - L.table_at));
        MUTATE("weight bits all ones", memset(m + L.table_at + 3, 0xff, L.sizes_at - L.table_at - 3));
    }
#undef MUTATE
    free(m);
    free(block);
}

/* Valid header, table and offsets; the stream bytes are random. Decoding must
 * fail cleanly (or, rarely, succeed) without touching memory it should not. */
static void test_garbage_streams(ellm_coder coder, int bits) {
    size_t size;
    uint8_t *block = make_block(coder, bits, HIST_BELL, 20000, 2000, &size);
    if (!block) return;
    layout L = block_layout(block, size);
    uint64_t n_seg = L.n_seg;
    size_t stream = L.stream_at;
    ellm_rng r;
    ellm_rng_seed(&r, 5);
    int failures = 0;
    for (int trial = 0; trial < 20; trial++) {
        for (size_t i = stream; i < size; i++) {
            /* keep Huffman lane tables plausible half of the time */
            block[i] = (uint8_t)ellm_rng_next(&r);
        }
        if (coder == ELLM_CODER_HUFFMAN && trial % 2)
            for (uint64_t s = 0; s < n_seg; s++)
                for (int j = 0; j < EC_HUF_LANES - 1; j++)
                    ec_varint_put(block + stream + L.off[s] + 2 * j, 128 + (uint32_t)(ellm_rng_next(&r) % 272));
        char label[64];
        snprintf(label, sizeof label, "%s/%d garbage %d", ellm_coder_name(coder), bits, trial);
        outcome o = try_block(block, size, label);
        failures += !o.opened || !o.decoded_all;
    }
    CHECK(failures >= 18, "%s/%d: only %d of 20 garbage streams rejected", ellm_coder_name(coder), bits, failures);
    free(block);
}

int main(void) {
    const ellm_coder coders[] = {ELLM_CODER_HUFFMAN, ELLM_CODER_RANS};
    for (int c = 0; c < 2; c++)
        for (int bits = 8; bits >= 4; bits -= 4) {
            test_flips_and_truncations(coders[c], bits, HIST_BELL);
            test_flips_and_truncations(coders[c], bits, HIST_ONE);
            test_structure(coders[c], bits);
            test_garbage_streams(coders[c], bits);
        }
    /* Tiny and empty inputs. */
    uint8_t zero[64] = {0};
    for (size_t n = 0; n <= sizeof zero; n++) try_block(zero, n, "zeros");
    if (test_failures) {
        fprintf(stderr, "%d checks failed\n", test_failures);
        return 1;
    }
    printf("entropy corruption: ok\n");
    return 0;
}
