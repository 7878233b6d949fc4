/*
 * cmd_demo.c - `entrollm demo` (also what `entrollm` with no command runs):
 * the whole pipeline on a built-in model with SmolLM-135M's shape and
 * generated weights, then, when the reference data is present, on the real
 * trained stories260K model with text in and out.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/common.h"
#include "formats/synth.h"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm demo [--quick] [--layers L] [--dir DIR] [--keep] [--threads N]\n\n"
            "Writes a model with SmolLM-135M's shape (576 wide, 30 layers, 49152-token vocabulary)\n"
            "and GENERATED (not trained) weights, compresses it to uint8 and uint4 with Huffman\n"
            "coding, verifies both files, loads them with parallel decoding and generates a few\n"
            "tokens; then, if the reference data is found (ELLM_DATA_DIR or ../shared/data),\n"
            "compresses the trained stories260K model and tells a story from the .ellm file.\n\n"
            "Options:\n");
    cli_print_options(out, opts);
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *p = ellm_path_join(dir, e->d_name);
        if (p && ellm_path_is_dir(p)) remove_tree(p);
        else if (p) unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static int compress_one(const char *model, const char *out, int bits, int threads, ellm_compress_report **r) {
    ellm_compress_options o;
    ellm_compress_options_default(&o);
    o.bits = bits;
    o.n_threads = threads;
    ellm_progress progress;
    ellm_progress_init(&progress, bits == 8 ? "compress uint8" : "compress uint4");
    o.progress = ellm_progress_callback;
    o.progress_user = &progress;
    ellm_error err = {0};
    ellm_status s = ellm_compress(model, out, &o, r, &err);
    ellm_progress_finish(&progress);
    return s ? cli_report_error(&err) : EXIT_OK;
}

/* Loads a model, prints load/decode time, generates n tokens greedily from
 * `prompt` (or from BOS when NULL) and prints them as text when possible. */
static int run_model(const char *path, const char *prompt, int n_gen, int threads) {
    ellm_load_options lo;
    ellm_load_options_default(&lo);
    lo.n_threads = threads;
    ellm_model *m;
    ellm_error err = {0};
    if (ellm_model_load(path, &lo, &m, &err)) return cli_report_error(&err);
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    printf("  loaded %s: %s weights, %.1f MiB in memory, load %.3f s (parallel entropy decode %.3f s)\n", path,
           cli_weights_text(&info), (double)info.weight_bytes / (1 << 20), info.load_seconds, info.decode_seconds);
    const ellm_tokenizer *tok = ellm_model_tokenizer(m);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (prompt && tok) {
        if (ellm_tokenize(tok, prompt, strlen(prompt), 1, 0, &ids, &n_ids, &err)) {
            ellm_model_free(m);
            return cli_report_error(&err);
        }
    } else {
        ids = malloc(sizeof *ids);
        ids[0] = tok && ellm_tokenizer_bos(tok) >= 0 ? ellm_tokenizer_bos(tok) : 1;
        n_ids = 1;
    }
    int total = (int)n_ids + n_gen;
    int32_t *seq = malloc(sizeof *seq * (size_t)total);
    float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    memcpy(seq, ids, n_ids * sizeof *seq);
    ellm_sampler_options so = {.temperature = 0, .top_p = 1, .seed = 1};
    ellm_sampler *sampler = ellm_sampler_new(&so, info.vocab_size);
    double t0 = ellm_now();
    ellm_status s = ellm_model_forward(m, seq, (int)n_ids, 0, logits, 0, &err);
    double t_prefill = ellm_now() - t0;
    int n = (int)n_ids;
    double t1 = ellm_now();
    while (!s && n < total) {
        seq[n] = ellm_sample(sampler, logits);
        if (tok && seq[n] == ellm_tokenizer_eos(tok)) break;
        n++;
        if (n < total) s = ellm_model_forward(m, &seq[n - 1], 1, n - 1, logits, 0, &err);
    }
    double t_gen = ellm_now() - t1;
    int generated = n - (int)n_ids;
    if (!s) {
        if (tok) {
            char *text = NULL;
            size_t len = 0;
            if (ellm_detokenize(tok, seq, (size_t)n, &text, &len, &err) == ELLM_OK) printf("  text: %s\n", text);
            free(text);
        } else {
            printf("  token ids:");
            for (int i = 0; i < n; i++) printf(" %d", seq[i]);
            printf("\n");
        }
        printf("  prefill %zu tokens in %.3f s; generated %d tokens at %.1f tokens/s (%d threads)\n", n_ids, t_prefill,
               generated, t_gen > 0 ? generated / t_gen : 0.0, threads ? threads : ellm_cpu_count());
    }
    ellm_sampler_free(sampler);
    free(seq);
    free(logits);
    free(ids);
    ellm_model_free(m);
    return s ? cli_report_error(&err) : EXIT_OK;
}

static int verify_one(const char *path, int threads) {
    ellm_file *f;
    ellm_error err = {0};
    if (ellm_file_open(path, &f, &err)) return cli_report_error(&err);
    double t0 = ellm_now();
    ellm_status s = ellm_file_verify(f, threads, &err);
    ellm_file_close(f);
    if (s) return cli_report_error(&err);
    printf("  verify %s: every checksum and segment OK (%.3f s)\n", path, ellm_now() - t0);
    return EXIT_OK;
}

static void print_sizes(const char *label, const ellm_compress_report *r) {
    char a[32], b[32], c[32];
    printf("  %-6s params %llu | fp16 %s | plain ints %s | .ellm %s | entropy %.3f, coded %.3f, file %.3f bits/weight\n",
           label, (unsigned long long)r->params, cli_human_bytes(r->fp16_bytes, a, sizeof a),
           cli_human_bytes(r->plain_bytes, b, sizeof b), cli_human_bytes(r->file_bytes, c, sizeof c),
           r->entropy_bits_per_weight, r->coded_bits_per_weight, r->effective_bits_per_weight);
}

static int demo_generated(const char *dir, int layers, int threads) {
    printf("== 1. Built-in model: SmolLM-135M shape, %d layers, GENERATED weights (not trained) ==\n", layers);
    printf("   Its sizes and speeds are real; its text is meaningless because its weights are random.\n");
    char *model = ellm_path_join(dir, "smollm-135m-generated");
    ellm_error err = {0};
    ellm_progress progress;
    ellm_progress_init(&progress, "writing model");
    ellm_status s = ellm_synth(ellm_synth_builtin_config("smollm-135m"), layers, 1234, "bf16", model,
                               ellm_progress_callback, &progress, &err);
    ellm_progress_finish(&progress);
    if (s) {
        free(model);
        return cli_report_error(&err);
    }
    printf("  wrote %s (bf16 safetensors)\n", model);
    int rc = EXIT_OK;
    for (int bits = 8; bits >= 4 && rc == EXIT_OK; bits -= 4) {
        char name[64];
        snprintf(name, sizeof name, "smollm-135m-generated-u%d.ellm", bits);
        char *out = ellm_path_join(dir, name);
        ellm_compress_report *r = NULL;
        rc = compress_one(model, out, bits, threads, &r);
        if (rc == EXIT_OK) {
            print_sizes(bits == 8 ? "uint8" : "uint4", r);
            rc = verify_one(out, threads);
        }
        if (rc == EXIT_OK) rc = run_model(out, NULL, 8, threads);
        ellm_compress_report_free(r);
        free(out);
    }
    free(model);
    return rc;
}

static int demo_stories(const char *dir, int threads) {
    const char *env = getenv("ELLM_DATA_DIR");
    char *data = env ? ellm_strdup(env) : ellm_strdup("../shared/data");
    char *model = ellm_path_join(data, "stories260K/stories260K.bin");
    int rc = EXIT_OK;
    if (!ellm_path_exists(model)) {
        printf("\n(reference data not found at %s: skipping the trained-model part of the demo)\n", data);
    } else {
        printf("\n== 2. A real trained model: stories260K (llama2.c), compressed to uint8 and run from the file ==\n");
        char *out = ellm_path_join(dir, "stories260K-u8.ellm");
        ellm_compress_report *r = NULL;
        rc = compress_one(model, out, 8, threads, &r);
        if (rc == EXIT_OK) print_sizes("uint8", r);
        if (rc == EXIT_OK) rc = run_model(out, "Once upon a time", 60, threads);
        ellm_compress_report_free(r);
        free(out);
    }
    free(model);
    free(data);
    return rc;
}

int cmd_demo(int argc, char **argv) {
    long layers = 30, threads = 0;
    const char *dir_opt = NULL;
    bool quick = false, layers_given = false, keep = false;
    const cli_opt opts[] = {
        {CLI_FLAG("--quick", NULL, &quick, "4 layers instead of 30 (for CI)")},
        {CLI_INT("--layers", NULL, &layers, 1, 30, "L", "number of layers of the generated model (overrides --quick)"),
         .given = &layers_given},
        {CLI_STRING("--dir", NULL, &dir_opt, "DIR", "work directory (default: a new directory under /tmp)")},
        {CLI_FLAG("--keep", NULL, &keep, "keep the work directory")},
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "threads (default: all cores)")},
        {0},
    };
    int n_pos, rc = cli_parse("demo", argc, argv, opts, NULL, 0, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    if (quick && !layers_given) layers = 4;
    char tmpl[] = "/tmp/entrollm-demo-XXXXXX";
    const char *dir = dir_opt;
    if (dir && !ellm_path_is_dir(dir) && mkdir(dir, 0777) != 0) {
        fprintf(stderr, "entrollm demo: cannot create %s\n", dir);
        return EXIT_FAIL;
    }
    if (!dir) {
        dir = mkdtemp(tmpl);
        if (!dir) {
            perror("entrollm demo: cannot create a work directory");
            return EXIT_FAIL;
        }
    }
    printf("entrollm %s demo (CPU features: %s; work directory %s)\n\n", ellm_version(), ellm_cpu_features(), dir);
    rc = demo_generated(dir, (int)layers, (int)threads);
    if (rc == EXIT_OK) rc = demo_stories(dir, (int)threads);
    if (!keep && !dir_opt) remove_tree(dir);
    else printf("\nfiles kept in %s\n", dir);
    return rc;
}
