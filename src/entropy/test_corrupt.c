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

static size_t head_bytes(const uint8_t *b) {
    size_t t = b[5] == ELLM_CODER_HUFFMAN ? 128 : 2u << b[6];
    return (EC_HEADER_BYTES + t + 7) & ~(size_t)7;
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
    int detected = 0, flips = 0;
    size_t table_end = EC_HEADER_BYTES + (coder == ELLM_CODER_HUFFMAN ? 128u : 2u << bits);
    for (size_t i = 0; i < size; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, block, size);
            m[i] ^= (uint8_t)(1u << bit);
            snprintf(label, sizeof label, "%s/%d/%s flip byte %zu bit %d", ellm_coder_name(coder), bits,
                     hist_names[kind], i, bit);
            outcome r = try_block(m, size, label);
            flips++;
            detected += !r.opened || !r.decoded_all;
            /* a changed code length or frequency always breaks Kraft / the sum
             * (with one used symbol, only its length must stay 1) */
            if (i >= EC_HEADER_BYTES && i < table_end && kind != HIST_ONE)
                CHECK(!r.opened, "%s: table flip accepted", label);
            if (i < 8) CHECK(!r.opened, "%s: magic/version/coder/bits flip accepted", label);
        }
    /* Stream flips: rANS's final-state and length checks catch nearly all;
     * Huffman codes resynchronise, so only a flip that changes the number of
     * bits a lane uses is caught here (the container's checksums catch the
     * rest). */
    int want = coder == ELLM_CODER_RANS ? flips * 9 / 10 : flips / 2;
    CHECK(detected > want, "%s/%d/%s: only %d of %d bit flips detected", ellm_coder_name(coder), bits,
          hist_names[kind], detected, flips);
    for (size_t cut = 0; cut < size; cut++) {
        snprintf(label, sizeof label, "%s/%d/%s truncated to %zu", ellm_coder_name(coder), bits, hist_names[kind], cut);
        outcome r = try_block(block, cut, label);
        CHECK(!r.opened, "%s: truncated block opens", label);
    }
    free(m);
    free(block);
}

static void expect_open_fails(const uint8_t *b, size_t size, const char *label) {
    outcome r = try_block(b, size, label);
    CHECK(!r.opened, "%s: accepted", label);
}

static void test_structure(ellm_coder coder, int bits) {
    size_t size;
    uint8_t *block = make_block(coder, bits, HIST_BELL, 5000, 1000, &size);
    if (!block) return;
    uint8_t *m = malloc(size);
    size_t head = head_bytes(block);
    uint64_t n_seg = ellm_le64(block + 24);
    char label[96];
#define MUTATE(desc, stmt)                                                               \
    do {                                                                                 \
        memcpy(m, block, size);                                                          \
        stmt;                                                                            \
        snprintf(label, sizeof label, "%s/%d: %s", ellm_coder_name(coder), bits, desc); \
        expect_open_fails(m, size, label);                                               \
    } while (0)
    MUTATE("bad magic", m[0] = 'X');
    MUTATE("version 2", m[4] = 2);
    MUTATE("coder 0", m[5] = 0);
    MUTATE("coder 9", m[5] = 9);
    MUTATE("bits 5", m[6] = 5);
    /* Huffman tables are the same for both widths: a swapped width may pass
     * ec_view_open, but then no segment decodes consistently. */
    memcpy(m, block, size);
    m[6] = bits == 8 ? 4 : 8;
    snprintf(label, sizeof label, "%s/%d: bits swapped", ellm_coder_name(coder), bits);
    outcome swapped = try_block(m, size, label);
    CHECK(!swapped.opened || !swapped.decoded_all, "%s: accepted", label);
    MUTATE("reserved", m[20] = 1);
    MUTATE("segment size 0", ellm_put_le32(m + 16, 0));
    MUTATE("segment size changed", ellm_put_le32(m + 16, 999));
    MUTATE("symbol count + 1000", ellm_put_le64(m + 8, 6000));
    MUTATE("symbol count huge", ellm_put_le64(m + 8, UINT64_MAX));
    MUTATE("segments huge", (ellm_put_le64(m + 8, UINT64_MAX), ellm_put_le64(m + 24, UINT64_MAX / 1000 + 1)));
    MUTATE("segments + 1", ellm_put_le64(m + 24, n_seg + 1));
    MUTATE("offset 0 not zero", ellm_put_le64(m + head, 4));
    MUTATE("offsets decreasing", ellm_put_le64(m + head + 16, ellm_le64(m + head + 8) - 1 - ellm_le64(m + head + 8) / 2));
    MUTATE("offset beyond stream", ellm_put_le64(m + head + 8, UINT64_MAX - 3));
    MUTATE("last offset short", ellm_put_le64(m + head + 8 * n_seg, ellm_le64(m + head + 8 * n_seg) - 1));
    if (coder == ELLM_CODER_HUFFMAN) {
        MUTATE("length limit 12", m[7] = 12);
        /* the length of the most common byte (symbol 128, or the pair 8,8 =
         * 0x88 at 4 bits): low nibble of table byte value / 2 */
        uint8_t *mid = m + EC_HEADER_BYTES + (bits == 8 ? 128 : 0x88) / 2;
        MUTATE("code length 12", *mid = (uint8_t)((*mid & 0xf0) | 12));
        MUTATE("Kraft sum > 1", *mid -= 1);
        MUTATE("Kraft sum < 1", *mid += 1);
        MUTATE("no lengths", memset(m + EC_HEADER_BYTES, 0, 128));
        MUTATE("byte after the table", m[EC_HEADER_BYTES + 128] = 1);
        MUTATE("lane length beyond segment", ellm_put_le32(m + head + 8 * (n_seg + 1), 0x7fffffff));
    } else {
        MUTATE("scale 16", m[7] = 16);
        MUTATE("scale 0", m[7] = 0);
        uint8_t *mid = m + EC_HEADER_BYTES + 2 * (bits == 8 ? 128 : 8);
        MUTATE("freq sum + 1", ellm_put_le16(mid, (uint16_t)(ellm_le16(mid) + 1)));
        MUTATE("all freqs zero", memset(m + EC_HEADER_BYTES, 0, 2u << bits));
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
    size_t head = head_bytes(block);
    uint64_t n_seg = ellm_le64(block + 24);
    size_t stream = head + 8 * (n_seg + 1);
    ellm_rng r;
    ellm_rng_seed(&r, 5);
    int failures = 0;
    for (int trial = 0; trial < 20; trial++) {
        for (size_t i = stream; i + EC_STREAM_PAD < size; i++) {
            /* keep Huffman lane tables plausible half of the time */
            block[i] = (uint8_t)ellm_rng_next(&r);
        }
        if (coder == ELLM_CODER_HUFFMAN && trial % 2)
            for (uint64_t s = 0; s < n_seg; s++)
                for (int j = 0; j < EC_HUF_LANES - 1; j++)
                    ellm_put_le32(block + stream + ellm_le64(block + head + 8 * s) + 4 * j, 100 + (uint32_t)(ellm_rng_next(&r) % 300));
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
