/*
 * test_parallel.c - ellm_decode_blocks is bit-exact for every coder x width
 * x thread count (1, 2, 3, 7; encoding on the same pool) x segment size
 * (2, 64, 1000, default) x histogram (uniform, bell, one symbol, two symbols,
 * all symbols, extreme skew), with n = 0, 1 and odd lengths; all the blocks of
 * one case are decoded in one call (one job, shuffled segments, large enough
 * for ellm_decode_blocks to use the pool). A corrupted
 * segment in one of several blocks fails with ELLM_E_FORMAT naming that block
 * and never writes outside any output.
 */
#include "decode/decode.h"
#include "entropy/ec_internal.h"
#include "entropy/test_util.h"

#define GUARD 32

typedef struct encoded {
    uint8_t *sym;
    uint64_t n;
    int bits;
    uint8_t *block;
    size_t size;
} encoded;

static void encode_one(encoded *e, ellm_coder coder, int bits, hist_kind kind, uint64_t n, uint32_t seg,
                       ellm_pool *pool, uint64_t seed) {
    e->sym = malloc(n ? n : 1);
    e->n = n;
    e->bits = bits;
    gen_symbols(e->sym, n, bits, kind, seed);
    ellm_error err;
    ellm_status st = ec_encode(coder, bits, e->sym, n, seg, pool, &e->block, &e->size, &err);
    CHECK(st == ELLM_OK, "encode: %s", err.message);
}

/* Encodes the n values below as separate blocks and decodes them all at once. */
static void run_case(ellm_coder coder, int bits, hist_kind kind, uint32_t seg, ellm_pool *pool, int threads) {
    const uint64_t lengths[] = {0, 1, 2 * 1000 + 1, 66001, 3}; /* > 65536 in all: decoded on the pool */
    enum { NB = 5 };
    encoded e[NB];
    ec_view views[NB];
    uint8_t *bufs[NB], *outs[NB];
    const char *names[NB] = {"t0", "t1", "t2", "t3", "t4"};
    for (int i = 0; i < NB; i++) {
        /* the big block (there for the pool) keeps segments >= 64, so tiny
         * segments are tested on the others without slowing the test down */
        uint32_t seg_i = lengths[i] > 10000 && seg && seg < 64 ? 64 : seg;
        encode_one(&e[i], coder, bits, kind, lengths[i], seg_i, pool, 1000u * (unsigned)i + seg + (unsigned)kind);
        ellm_error err;
        CHECK(ec_view_open(e[i].block, e[i].size, names[i], &views[i], &err) == ELLM_OK, "open: %s", err.message);
        uint64_t nb = ec_decoded_bytes(bits, lengths[i]);
        bufs[i] = malloc(nb + 2 * GUARD);
        memset(bufs[i], 0xC3, nb + 2 * GUARD);
        outs[i] = bufs[i] + GUARD;
    }
    ellm_error err;
    ellm_status st = ellm_decode_blocks(views, names, outs, NB, pool, &err);
    CHECK(st == ELLM_OK, "%s/%d/%s seg %u threads %d: %s", ellm_coder_name(coder), bits, hist_names[kind], seg,
          threads, err.message);
    for (int i = 0; i < NB; i++) {
        uint64_t nb = ec_decoded_bytes(bits, lengths[i]);
        uint8_t *want = pack_expected(e[i].sym, e[i].n, bits);
        CHECK(memcmp(outs[i], want, nb) == 0, "%s/%d/%s seg %u threads %d n %llu: output differs",
              ellm_coder_name(coder), bits, hist_names[kind], seg, threads, (unsigned long long)lengths[i]);
        for (int g = 0; g < GUARD; g++)
            if (bufs[i][g] != 0xC3 || outs[i][nb + g] != 0xC3) {
                CHECK(0, "%s/%d/%s seg %u threads %d n %llu: guard written", ellm_coder_name(coder), bits,
                      hist_names[kind], seg, threads, (unsigned long long)lengths[i]);
                break;
            }
        free(want);
        free(bufs[i]);
        ec_view_close(&views[i]);
        free(e[i].block);
        free(e[i].sym);
    }
}

/* Several blocks, one of them corrupted in one segment's stream. */
static void test_error_names_block(ellm_coder coder, ellm_pool *pool) {
    enum { NB = 3 };
    encoded e[NB];
    ec_view views[NB];
    uint8_t *outs[NB];
    const char *names[NB] = {"blk.0.attn_q", "blk.0.attn_k", "blk.0.ffn_up"};
    for (int i = 0; i < NB; i++) {
        encode_one(&e[i], coder, 8, HIST_BELL, 50000, 1000, pool, 77u + (unsigned)i);
        /* corrupt block 1: overwrite the stream of its segment 20 */
        if (i == 1) {
            ec_view lv;
            ellm_error lerr;
            CHECK(ec_view_open(e[i].block, e[i].size, "layout", &lv, &lerr) == ELLM_OK, "open: %s", lerr.message);
            const ec_tables *lt = lv.tables;
            uint8_t *stream = e[i].block + (lt->stream - e[i].block);
            uint64_t a = lt->offsets[20], b = lt->offsets[21];
            ec_view_close(&lv);
            for (uint64_t k = a + 16; k < b; k++) stream[k] = (uint8_t)(k * 131);
        }
        ellm_error err;
        CHECK(ec_view_open(e[i].block, e[i].size, names[i], &views[i], &err) == ELLM_OK, "open: %s", err.message);
        outs[i] = malloc(ec_decoded_bytes(8, e[i].n));
    }
    ellm_error err = {0};
    ellm_status st = ellm_decode_blocks(views, names, outs, NB, pool, &err);
    CHECK(st == ELLM_E_FORMAT, "%s: corrupt segment not reported (%s)", ellm_coder_name(coder), ellm_status_name(st));
    CHECK(strstr(err.message, "blk.0.attn_k") && strstr(err.message, "segment 20"),
          "%s: message does not name the block and segment: %s", ellm_coder_name(coder), err.message);
    for (int i = 0; i < NB; i++) {
        ec_view_close(&views[i]);
        free(outs[i]);
        free(e[i].block);
        free(e[i].sym);
    }
}

int main(void) {
    const int thread_counts[] = {1, 2, 3, 7};
    const uint32_t segs[] = {2, 64, 1000, 0};
    const ellm_coder coders[] = {ELLM_CODER_HUFFMAN, ELLM_CODER_RANS};
    for (size_t ti = 0; ti < ELLM_ARRAY_LEN(thread_counts); ti++) {
        ellm_pool *pool;
        ellm_error err;
        if (ellm_pool_create(thread_counts[ti], &pool, &err)) {
            fprintf(stderr, "pool: %s\n", err.message);
            return 1;
        }
        for (int c = 0; c < 2; c++)
            for (int bits = 8; bits >= 4; bits -= 4)
                for (size_t si = 0; si < ELLM_ARRAY_LEN(segs); si++)
                    for (int k = 0; k < HIST_COUNT; k++) run_case(coders[c], bits, (hist_kind)k, segs[si], pool, thread_counts[ti]);
        for (int c = 0; c < 2; c++) test_error_names_block(coders[c], pool);
        ellm_pool_destroy(pool);
    }
    /* NULL pool = calling thread; no views is a no-op; a missing output or
     * an unopened view is an argument error, not a crash. */
    ellm_error err;
    CHECK(ellm_decode_blocks(NULL, NULL, NULL, 0, NULL, &err) == ELLM_OK, "empty call fails");
    {
        encoded e;
        encode_one(&e, ELLM_CODER_HUFFMAN, 8, HIST_BELL, 1000, 0, NULL, 1);
        ec_view v[2] = {{0}, {0}};
        CHECK(ec_view_open(e.block, e.size, "w", &v[0], &err) == ELLM_OK, "open: %s", err.message);
        uint8_t *outs[2] = {NULL, NULL};
        const char *names[2] = {"w", "v"};
        CHECK(ellm_decode_blocks(v, names, outs, 1, NULL, &err) == ELLM_E_ARG, "NULL output accepted");
        v[1] = v[0];
        v[1].tables = NULL;
        uint8_t buf[1000];
        outs[0] = outs[1] = buf;
        CHECK(ellm_decode_blocks(v, names, outs, 2, NULL, &err) == ELLM_E_ARG && strstr(err.message, "v:"),
              "unopened view accepted: %s", err.message);
        ec_view_close(&v[0]);
        free(e.block);
        free(e.sym);
    }
    run_case(ELLM_CODER_HUFFMAN, 4, HIST_BELL, 0, NULL, 1);
    if (test_failures) {
        fprintf(stderr, "%d checks failed\n", test_failures);
        return 1;
    }
    printf("parallel decode: ok\n");
    return 0;
}
