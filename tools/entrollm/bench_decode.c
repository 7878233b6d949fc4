/*
 * bench_decode.c - `entrollm bench decode`: entropy-decode speed per thread
 * count (median of R runs), against zstd -19 and xz -9 on the same bytes.
 *
 *   entrollm bench decode FILE.ellm [--threads N] [--repeat R] [--json]
 *   entrollm bench decode --synthetic COUNT --bits 8|4 [--coder huffman|rans]
 *                         [--segment S] [--threads N] [--repeat R] [--json]
 *
 * Synthetic symbols are quantized Gaussians: 8-bit codes of N(128, 20) and
 * 4-bit codes of N(8, 2), rounded and clipped, from a fixed seed. Every
 * decode is checked bit-exact against the symbols before any figure is
 * printed.
 */
#include <jansson.h>
#include <lzma.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "cli.h"
#include "common/common.h"
#include "common/pool.h"
#include "container/container.h"
#include "decode/decode.h"
#include "entropy/entropy.h"

#define BENCH "bench decode"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm bench decode FILE.ellm [--threads N] [--repeat R] [--json] [--no-baselines]\n"
            "       entrollm bench decode --synthetic COUNT --bits 8|4 [--coder huffman|rans]\n"
            "                             [--segment S] [--threads N] [--repeat R] [--json] [--no-baselines]\n\n"
            "Decodes every segment of every entropy-coded tensor (FILE) or of COUNT synthetic\n"
            "symbols (quantized Gaussians: N(128, 20) for 8 bits, N(8, 2) for 4 bits) on 1..N\n"
            "threads and prints decoded symbols per second (median of R runs) and the speedup\n"
            "over one thread. On the same integer bytes (the decoded in-memory layout) it\n"
            "reports the entropy bound and the size and single-thread decode speed of zstd -19\n"
            "and xz -9. Output is checked bit-exact before figures are printed. --threads\n"
            "defaults to this machine's %d CPUs, --segment to %d symbols.\n\n"
            "Options:\n",
            ellm_cpu_count(), EC_DEFAULT_SEGMENT);
    cli_print_options(out, opts);
}

/* What is decoded: one or more coded blocks, their outputs, and the expected
 * bytes (the decoded layout) to check against. */
typedef struct corpus {
    size_t n;
    ec_view *views;
    const char **names;
    uint8_t **outs;
    uint8_t **expect; /* NULL entries: filled by a reference single-thread decode */
    uint64_t symbols, coded_bytes;
    double entropy_bits; /* sum over blocks of H * n */
    int bits;            /* 8, 4, or 0 when mixed */
    ellm_coder coder;    /* or -1 when mixed */
    uint8_t *owned_block; /* the synthetic block */
} corpus;

static void corpus_free(corpus *c) {
    for (size_t i = 0; i < c->n; i++) {
        ec_view_close(&c->views[i]);
        free(c->outs ? c->outs[i] : NULL);
        free(c->expect ? c->expect[i] : NULL);
    }
    free(c->views), free(c->names), free(c->outs), free(c->expect);
    free(c->owned_block);
}

static int corpus_alloc(corpus *c, size_t n) {
    c->n = n;
    c->views = calloc(n ? n : 1, sizeof *c->views);
    c->names = calloc(n ? n : 1, sizeof *c->names);
    c->outs = calloc(n ? n : 1, sizeof *c->outs);
    c->expect = calloc(n ? n : 1, sizeof *c->expect);
    return c->views && c->names && c->outs && c->expect;
}

static double hist_entropy_bits(const uint8_t *data, uint64_t n_symbols, int bits) {
    uint64_t hist[256] = {0};
    if (bits == 8) {
        ec_histogram(data, n_symbols, 256, hist);
    } else {
        for (uint64_t i = 0; i < n_symbols; i++) hist[(data[i / 2] >> (4 * (i & 1))) & 15]++;
    }
    return ec_entropy(hist, bits == 8 ? 256 : 16) * (double)n_symbols;
}

/* CPU time of the whole process (all threads), to tell slow code from a
 * machine busy with other work: wall time >> CPU time / threads means the
 * threads were waiting for a core. */
static double process_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- baselines -------------------------------------------------------- */

typedef struct baseline {
    uint64_t bytes;
    double decode_seconds; /* median, one thread */
    double cpu_seconds;    /* median CPU time of those decodes */
    int ok;
} baseline;

static baseline bench_zstd(const uint8_t *data, size_t n, int threads, int repeat) {
    baseline b = {0};
    size_t cap = ZSTD_compressBound(n);
    uint8_t *dst = malloc(cap), *back = malloc(n ? n : 1);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!dst || !back || !cc) goto out;
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 19);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_nbWorkers, threads > 1 ? threads : 0);
    size_t z = ZSTD_compress2(cc, dst, cap, data, n);
    if (ZSTD_isError(z)) goto out;
    b.bytes = z;
    double *t = calloc(2 * (size_t)repeat, sizeof *t);
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    int good = t && dc;
    for (int r = 0; good && r < repeat; r++) {
        double c0 = process_cpu_seconds(), t0 = ellm_now();
        size_t d = ZSTD_decompressDCtx(dc, back, n, dst, z);
        t[r] = ellm_now() - t0;
        t[repeat + r] = process_cpu_seconds() - c0;
        good = !ZSTD_isError(d) && d == n && memcmp(back, data, n) == 0;
    }
    if (good) b.decode_seconds = median(t, repeat), b.cpu_seconds = median(t + repeat, repeat), b.ok = 1;
    ZSTD_freeDCtx(dc);
    free(t);
out:
    ZSTD_freeCCtx(cc);
    free(dst), free(back);
    return b;
}

static baseline bench_xz(const uint8_t *data, size_t n, int threads, int repeat) {
    baseline b = {0};
    size_t cap = lzma_stream_buffer_bound(n);
    uint8_t *dst = malloc(cap), *back = malloc(n ? n : 1);
    if (!dst || !back) goto out;
    /* xz -9, multi-threaded compression (blocks of 3 x the 64 MiB dictionary,
     * as xz -T does); decoding below is single-threaded. */
    lzma_mt mt = {0};
    mt.threads = (uint32_t)(threads > 0 ? threads : 1);
    mt.preset = 9;
    mt.check = LZMA_CHECK_CRC64;
    lzma_stream s = LZMA_STREAM_INIT;
    if (lzma_stream_encoder_mt(&s, &mt) != LZMA_OK) goto out;
    s.next_in = data, s.avail_in = n, s.next_out = dst, s.avail_out = cap;
    lzma_ret ret = lzma_code(&s, LZMA_FINISH);
    while (ret == LZMA_OK) ret = lzma_code(&s, LZMA_FINISH);
    size_t z = cap - s.avail_out;
    lzma_end(&s);
    if (ret != LZMA_STREAM_END) goto out;
    b.bytes = z;
    double *t = calloc(2 * (size_t)repeat, sizeof *t);
    int good = t != NULL;
    for (int r = 0; good && r < repeat; r++) {
        uint64_t memlimit = UINT64_MAX;
        size_t in_pos = 0, out_pos = 0;
        double c0 = process_cpu_seconds(), t0 = ellm_now();
        lzma_ret d = lzma_stream_buffer_decode(&memlimit, 0, NULL, dst, &in_pos, z, back, &out_pos, n);
        t[r] = ellm_now() - t0;
        t[repeat + r] = process_cpu_seconds() - c0;
        good = d == LZMA_OK && out_pos == n && memcmp(back, data, n) == 0;
    }
    if (good) b.decode_seconds = median(t, repeat), b.cpu_seconds = median(t + repeat, repeat), b.ok = 1;
    free(t);
out:
    free(dst), free(back);
    return b;
}

/* ---- loading the corpus ----------------------------------------------- */

static int load_synthetic(corpus *c, uint64_t count, int bits, ellm_coder coder, uint32_t seg, int threads,
                          ellm_error *err) {
    if (!corpus_alloc(c, 1)) return ellm_fail(err, ELLM_E_NOMEM, "out of memory"), 0;
    uint8_t *sym = malloc(count ? count : 1);
    if (!sym) return ellm_fail(err, ELLM_E_NOMEM, "out of memory for %llu symbols", (unsigned long long)count), 0;
    ellm_rng r;
    ellm_rng_seed(&r, 20260501);
    const double mean = bits == 8 ? 128 : 8, sd = bits == 8 ? 20 : 2;
    const long hi = (1L << bits) - 1;
    for (uint64_t i = 0; i < count; i++) {
        long v = lround(mean + sd * ellm_rng_normal(&r));
        sym[i] = (uint8_t)(v < 0 ? 0 : v > hi ? hi : v);
    }
    ellm_pool *pool = NULL;
    if (ellm_pool_create(threads, &pool, err)) return free(sym), 0;
    uint8_t *block = NULL;
    size_t block_size = 0;
    ellm_status st = ec_encode(coder, bits, sym, count, seg, pool, &block, &block_size, err);
    ellm_pool_destroy(pool);
    if (st) return free(sym), 0;
    uint64_t hist[256];
    ec_histogram(sym, count, 256, hist);
    c->entropy_bits = ec_entropy(hist, 1 << bits) * (double)count;
    /* expected bytes in the decoded layout */
    uint64_t nb = ec_decoded_bytes(bits, count);
    uint8_t *want = malloc(nb ? nb : 1);
    if (!want) return free(sym), free(block), ellm_fail(err, ELLM_E_NOMEM, "out of memory"), 0;
    if (bits == 8) {
        memcpy(want, sym, count);
    } else {
        memset(want, 0, nb);
        for (uint64_t i = 0; i < count; i++) want[i / 2] |= (uint8_t)(sym[i] << (4 * (i & 1)));
    }
    free(sym);
    c->owned_block = block;
    if (ec_view_open(block, block_size, "synthetic", &c->views[0], err)) return free(want), 0;
    c->names[0] = "synthetic";
    c->outs[0] = malloc(nb ? nb : 1);
    c->expect[0] = want;
    c->symbols = count;
    c->coded_bytes = block_size;
    c->bits = bits;
    c->coder = coder;
    return c->outs[0] != NULL || !ellm_fail(err, ELLM_E_NOMEM, "out of memory");
}

static int load_file(corpus *c, ellm_file *f, ellm_error *err) {
    size_t n = 0;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const ellm_ftensor *t = &f->tensors[i];
        n += (t->coder == ELLM_CODER_HUFFMAN || t->coder == ELLM_CODER_RANS) && (t->bits == 8 || t->bits == 4);
    }
    if (!corpus_alloc(c, n)) return ellm_fail(err, ELLM_E_NOMEM, "out of memory"), 0;
    c->bits = -1;
    c->coder = (ellm_coder)-1;
    size_t k = 0;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const ellm_ftensor *t = &f->tensors[i];
        if (!((t->coder == ELLM_CODER_HUFFMAN || t->coder == ELLM_CODER_RANS) && (t->bits == 8 || t->bits == 4)))
            continue;
        if (ellm_file_check_tensor(f, i, err)) return 0;
        if (ec_view_open(t->block, t->block_size, t->name, &c->views[k], err)) return 0;
        c->names[k] = t->name;
        if (c->views[k].n_symbols != t->n || c->views[k].bits != t->bits) {
            return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s: coded block does not match its directory entry",
                             f->path, t->name), 0;
        }
        c->outs[k] = malloc(ec_decoded_bytes(t->bits, t->n) + 1);
        if (!c->outs[k]) return ellm_fail(err, ELLM_E_NOMEM, "out of memory for %s", t->name), 0;
        c->symbols += t->n;
        c->coded_bytes += t->block_size;
        c->bits = c->bits == -1 || c->bits == t->bits ? t->bits : 0;
        c->coder = (int)c->coder == -1 || c->coder == t->coder ? t->coder : (ellm_coder)-2;
        k++;
    }
    c->n = k;
    if (k == 0) return ellm_fail(err, ELLM_E_ARG, "%s: no entropy-coded integer tensors", f->path), 0;
    /* Reference: a single-thread decode, checked segment by segment. */
    for (size_t i = 0; i < k; i++) {
        if (ellm_decode_blocks(&c->views[i], &c->names[i], &c->outs[i], 1, NULL, err)) return 0;
        uint64_t nb = ec_decoded_bytes(c->views[i].bits, c->views[i].n_symbols);
        c->expect[i] = malloc(nb + 1);
        if (!c->expect[i]) return ellm_fail(err, ELLM_E_NOMEM, "out of memory"), 0;
        memcpy(c->expect[i], c->outs[i], nb);
        c->entropy_bits += hist_entropy_bits(c->outs[i], c->views[i].n_symbols, c->views[i].bits);
    }
    return 1;
}

/* NAME_bytes (null when the baseline did not run) and NAME_decode_* speeds in root. */
static void baseline_json(json_t *root, const char *name, const baseline *b, uint64_t raw_bytes, uint64_t symbols) {
    char key[64];
    snprintf(key, sizeof key, "%s_bytes", name);
    if (!b->ok) {
        json_object_set_new(root, key, json_null());
        return;
    }
    json_object_set_new(root, key, json_integer((json_int_t)b->bytes));
    snprintf(key, sizeof key, "%s_decode_bytes_per_second", name);
    json_object_set_new(root, key, json_real((double)raw_bytes / b->decode_seconds));
    snprintf(key, sizeof key, "%s_decode_symbols_per_second", name);
    json_object_set_new(root, key, json_real((double)symbols / b->decode_seconds));
    snprintf(key, sizeof key, "%s_decode_symbols_per_cpu_second", name);
    json_object_set_new(root, key, json_real((double)symbols / b->cpu_seconds));
}

/* ---- the benchmark ----------------------------------------------------- */

int bench_decode_main(int argc, char **argv) {
    const char *coder_name = "huffman";
    uint64_t synthetic = 0;
    long bits = 0, threads = ellm_cpu_count(), repeat = 5, seg = 0;
    bool json = false, have_synth = false, no_baselines = false;
    const cli_opt opts[] = {
        {CLI_U64("--synthetic", NULL, &synthetic, 0, 1ull << 34, "COUNT",
                 "decode COUNT synthetic symbols instead of a file"),
         .given = &have_synth},
        {CLI_INT("--bits", NULL, &bits, 4, 8, "B", "8 or 4: the synthetic symbols' width")},
        {CLI_STRING("--coder", NULL, &coder_name, "C", "huffman (default) or rans, for --synthetic")},
        {CLI_INT("--segment", NULL, &seg, 1, 1L << 30, "S", "symbols per segment for --synthetic")},
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "largest thread count (default: all CPUs)")},
        {CLI_INT("--repeat", NULL, &repeat, 1, 1000, "R", "timed runs per thread count (default 5)")},
        {CLI_FLAG("--no-baselines", NULL, &no_baselines, "skip zstd and xz (they take a while on large inputs)")},
        {CLI_FLAG("--json", NULL, &json, "one JSON object on stdout")},
        {0},
    };
    const char *path = NULL;
    int n_pos, rc = cli_parse(BENCH, argc, argv, opts, &path, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    if (bits != 0 && bits != 4 && bits != 8) return cli_usage_error(BENCH, "--bits must be 8 or 4, not %ld", bits);
    if (strcmp(coder_name, "huffman") && strcmp(coder_name, "rans"))
        return cli_usage_error(BENCH, "--coder must be huffman or rans, not '%s'", coder_name);
    bool baselines = !no_baselines;
    if (have_synth == (path != NULL)) return cli_usage_error(BENCH, "give either FILE.ellm or --synthetic COUNT");
    if (have_synth && !bits) return cli_usage_error(BENCH, "--synthetic needs --bits 8|4");
    if (!have_synth && (bits || seg || strcmp(coder_name, "huffman")))
        return cli_usage_error(BENCH, "--bits, --coder and --segment apply to --synthetic only");

    ellm_error err = {0};
    corpus c = {0};
    ellm_file *f = NULL;
    int ok;
    if (have_synth) {
        ellm_coder coder = strcmp(coder_name, "rans") ? ELLM_CODER_HUFFMAN : ELLM_CODER_RANS;
        ok = load_synthetic(&c, synthetic, (int)bits, coder, (uint32_t)seg, (int)threads, &err);
    } else {
        ok = ellm_file_open(path, &f, &err) == ELLM_OK && load_file(&c, f, &err);
    }
    if (!ok) {
        corpus_free(&c);
        ellm_file_close(f);
        return cli_report_error(&err);
    }

    /* Timed decodes for 1..threads. */
    double *sps = calloc((size_t)threads + 1, sizeof *sps), *times = calloc((size_t)repeat, sizeof *times);
    double *cpu = calloc((size_t)threads + 1, sizeof *cpu), *cpu_times = calloc((size_t)repeat, sizeof *cpu_times);
    rc = EXIT_OK;
    for (long t = 1; t <= threads && rc == EXIT_OK; t++) {
        ellm_pool *pool = NULL;
        if (ellm_pool_create((int)t, &pool, &err)) {
            rc = cli_report_error(&err);
            break;
        }
        for (size_t i = 0; i < c.n; i++) memset(c.outs[i], 0, ec_decoded_bytes(c.views[i].bits, c.views[i].n_symbols));
        /* one untimed warm-up run, then R timed ones */
        for (long r = -1; r < repeat && rc == EXIT_OK; r++) {
            double c0 = process_cpu_seconds(), t0 = ellm_now();
            ellm_status st = ellm_decode_blocks(c.views, c.names, c.outs, c.n, pool, &err);
            double dt = ellm_now() - t0, dc = process_cpu_seconds() - c0;
            if (st) rc = cli_report_error(&err);
            if (r >= 0) times[r] = dt, cpu_times[r] = dc;
        }
        ellm_pool_destroy(pool);
        for (size_t i = 0; i < c.n && rc == EXIT_OK; i++)
            if (memcmp(c.outs[i], c.expect[i], ec_decoded_bytes(c.views[i].bits, c.views[i].n_symbols))) {
                fprintf(stderr, "entrollm: bench decode: %s: %ld-thread decode differs from the input\n", c.names[i], t);
                rc = EXIT_VERIFY;
            }
        if (rc == EXIT_OK) {
            sps[t] = (double)c.symbols / median(times, (int)repeat);
            cpu[t] = median(cpu_times, (int)repeat);
        }
    }

    /* Baselines on the decoded bytes, concatenated. */
    baseline zs = {0}, xz = {0};
    uint64_t raw_bytes = 0;
    for (size_t i = 0; i < c.n; i++) raw_bytes += ec_decoded_bytes(c.views[i].bits, c.views[i].n_symbols);
    if (rc == EXIT_OK && baselines) {
        uint8_t *all = malloc(raw_bytes ? raw_bytes : 1);
        if (all) {
            uint64_t pos = 0;
            for (size_t i = 0; i < c.n; i++) {
                uint64_t nb = ec_decoded_bytes(c.views[i].bits, c.views[i].n_symbols);
                memcpy(all + pos, c.expect[i], nb);
                pos += nb;
            }
            if (isatty(fileno(stderr))) /* progress note, terminals only */
                fprintf(stderr, "compressing %llu bytes with zstd -19 and xz -9 ...\n", (unsigned long long)raw_bytes);
            zs = bench_zstd(all, raw_bytes, (int)threads, (int)repeat);
            xz = bench_xz(all, raw_bytes, (int)threads, (int)ELLM_MIN(repeat, 3));
            free(all);
        }
    }

    if (rc == EXIT_OK) {
        const char *bits_s = c.bits == 8 ? "8" : c.bits == 4 ? "4" : "mixed";
        const char *coder_s = (int)c.coder >= 0 ? ellm_coder_name(c.coder) : "mixed";
        double entropy_bytes = c.entropy_bits / 8;
        if (json) {
            json_t *runs = json_array();
            for (long t = 1; t <= threads; t++)
                json_array_append_new(runs, json_pack("{s:i, s:f, s:f, s:f, s:f}", "threads", (int)t, "symbols_per_second",
                                                      sps[t], "speedup", sps[t] / sps[1], "cpu_seconds", cpu[t],
                                                      "symbols_per_cpu_second", cpu[t] > 0 ? (double)c.symbols / cpu[t] : 0.0));
            json_t *root = json_pack(
                "{s:s, s:I, s:o, s:s, s:I, s:I, s:f, s:f, s:o, s:s, s:i}", "source", have_synth ? "synthetic" : path,
                "symbols", (json_int_t)c.symbols, "bits", c.bits == 8 || c.bits == 4 ? json_integer(c.bits) : json_null(),
                "coder", coder_s, "raw_bytes", (json_int_t)raw_bytes,
                "coded_bytes", (json_int_t)c.coded_bytes, "entropy_bits", c.symbols ? c.entropy_bits / (double)c.symbols : 0.0,
                "entropy_bytes", entropy_bytes, "runs", runs, "cpu_features", ellm_cpu_features(), "repeat", (int)repeat);
            if (have_synth) json_object_set_new(root, "segment_symbols", json_integer(c.views[0].segment_symbols));
            baseline_json(root, "zstd", &zs, raw_bytes, c.symbols);
            baseline_json(root, "xz", &xz, raw_bytes, c.symbols);
            char *s = json_dumps(root, JSON_COMPACT);
            printf("%s\n", s);
            free(s);
            json_decref(root);
        } else {
            printf("%s: %llu symbols, %s-bit, coder %s, %zu block%s, CPU features: %s\n",
                   have_synth ? "synthetic (quantized Gaussian)" : path, (unsigned long long)c.symbols, bits_s, coder_s,
                   c.n, c.n == 1 ? "" : "s", ellm_cpu_features());
            printf("\n%8s %16s %9s %22s\n", "threads", "Msymbols/s", "speedup", "Msymbols/CPU-second");
            for (long t = 1; t <= threads; t++)
                printf("%8ld %16.1f %8.2fx %22.1f\n", t, sps[t] / 1e6, sps[t] / sps[1],
                       cpu[t] > 0 ? (double)c.symbols / cpu[t] / 1e6 : 0.0);
            double n = (double)(c.symbols ? c.symbols : 1);
            printf("\n%-16s %14s %12s %20s %18s\n", "", "bytes", "bits/symbol", "decode Msym/s (1T)", "Msym/CPU-second");
            printf("%-16s %14llu %12.4f\n", "plain integers", (unsigned long long)raw_bytes, 8.0 * (double)raw_bytes / n);
            printf("%-16s %14.0f %12.4f\n", "entropy bound", entropy_bytes, c.entropy_bits / n);
            printf("%-16s %14llu %12.4f %20.1f %18.1f\n", coder_s, (unsigned long long)c.coded_bytes,
                   8.0 * (double)c.coded_bytes / n, sps[1] / 1e6, cpu[1] > 0 ? n / cpu[1] / 1e6 : 0.0);
            if (zs.ok)
                printf("%-16s %14llu %12.4f %20.1f %18.1f\n", "zstd -19", (unsigned long long)zs.bytes,
                       8.0 * (double)zs.bytes / n, n / zs.decode_seconds / 1e6, n / zs.cpu_seconds / 1e6);
            if (xz.ok)
                printf("%-16s %14llu %12.4f %20.1f %18.1f\n", "xz -9", (unsigned long long)xz.bytes,
                       8.0 * (double)xz.bytes / n, n / xz.decode_seconds / 1e6, n / xz.cpu_seconds / 1e6);
            printf("\n(median of %ld runs after one warm-up; Msymbols/CPU-second counts the CPU time of all\n"
                   " threads, so it stays meaningful when other processes share the cores; coded size\n"
                   " includes every block's header, table and segment offsets)\n", repeat);
        }
    }
    free(sps), free(times), free(cpu), free(cpu_times);
    corpus_free(&c);
    ellm_file_close(f);
    return rc;
}
