/*
 * bench_generate.c - `entrollm bench generate`: prefill and generation speed
 * and peak memory of float, uint8 and uint4 weights of the same model, on 1
 * and N threads (medians of repeats).
 *
 *   entrollm bench generate [MODEL] [--threads N] [--tokens N] [--prompt-tokens P]
 *                           [--repeat R] [--keep DIR] [--json]
 *
 * Without MODEL a model of SmolLM-135M's shape with generated (not trained)
 * weights is written by ellm_synth into a temporary folder and compressed
 * with ellm_compress at 8 and 4 bits (per-tensor scales, Huffman). With a
 * source MODEL (HF folder, GGUF, llama2.c) that model is compressed instead;
 * with a .ellm MODEL only that file is measured.
 *
 * Every (weights, threads) configuration runs in its own child process, so
 * that its peak resident memory is its own. Token ids are fixed pseudo-random
 * ids; generation is greedy and never stops early. Prefill = one batched
 * forward pass of P tokens; generation = N single-token passes after it.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "common/common.h"
#include "formats/synth.h"
#include "model/model.h"

#define BENCH "bench generate"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm bench generate [MODEL] [--threads N] [--tokens N] [--prompt-tokens P]\n"
            "                               [--repeat R] [--keep DIR] [--json]\n\n"
            "Measures prefill and generation tokens/s and peak memory for float, uint8 and uint4\n"
            "weights of the same model, on 1 thread and on N threads (median of R runs).\n"
            "Without MODEL: a model of SmolLM-135M's shape with GENERATED (not trained) weights,\n"
            "made with `entrollm synth` and compressed with `entrollm compress` (uint8, uint4) in a\n"
            "temporary folder. With a source MODEL (HF folder, GGUF, llama2.c) that model is\n"
            "compressed instead; with a .ellm MODEL only that file is measured.\n"
            "This machine has %d CPUs.\n\n"
            "Options:\n",
            ellm_cpu_count());
    cli_print_options(out, opts);
}

typedef struct variant {
    const char *label;   /* "float", "uint8", "uint4" */
    char *path;
} variant;

typedef struct measure {
    int ok;
    char error[512];
    double load_s, decode_s, prefill_tps, gen_tps, ms_per_token;
    uint64_t weight_bytes, peak_rss;
    int weight_bits, generated;
} measure;

static double median(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One configuration, in the calling (child) process. */
static void run_config(const char *path, int threads, int n_prompt, int n_gen, int repeats, measure *r) {
    memset(r, 0, sizeof *r);
    ellm_error err = {0};
    ellm_load_options lo;
    ellm_load_options_default(&lo);
    lo.n_threads = threads;
    lo.max_ctx = n_prompt + n_gen + 1;
    ellm_model *m;
    if (ellm_model_load(path, &lo, &m, &err)) {
        snprintf(r->error, sizeof r->error, "%.500s", err.message);
        return;
    }
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    r->load_s = info.load_seconds;
    r->decode_s = info.decode_seconds;
    r->weight_bytes = info.weight_bytes;
    r->weight_bits = info.weight_bits;
    r->generated = info.generated_weights;
    if (info.max_ctx < n_prompt + n_gen + 1) {
        snprintf(r->error, sizeof r->error, "the model's context (%d) is shorter than %d tokens", info.max_ctx,
                 n_prompt + n_gen + 1);
        ellm_model_free(m);
        return;
    }
    int32_t *prompt = malloc((size_t)n_prompt * sizeof *prompt);
    float *logits = malloc((size_t)info.vocab_size * sizeof *logits);
    double *pre = calloc((size_t)repeats + 1, sizeof *pre), *gen = calloc((size_t)repeats + 1, sizeof *gen);
    ellm_rng rng;
    ellm_rng_seed(&rng, 42);
    for (int i = 0; i < n_prompt; i++) prompt[i] = (int32_t)(ellm_rng_next(&rng) % (uint64_t)info.vocab_size);
    /* run 0 warms caches and page tables and is not counted */
    for (int rep = 0; rep <= repeats; rep++) {
        ellm_model_reset(m);
        double t0 = ellm_now();
        if (ellm_model_forward(m, prompt, n_prompt, 0, logits, 0, &err)) break;
        double t1 = ellm_now();
        for (int i = 0; i < n_gen; i++) {
            int32_t next = 0;
            for (int v = 1; v < info.vocab_size; v++)
                if (logits[v] > logits[next]) next = v;
            if (ellm_model_forward(m, &next, 1, n_prompt + i, logits, 0, &err)) break;
        }
        double t2 = ellm_now();
        pre[rep] = n_prompt / (t1 - t0);
        gen[rep] = n_gen / (t2 - t1);
    }
    if (err.code) {
        snprintf(r->error, sizeof r->error, "%.500s", err.message);
    } else {
        r->prefill_tps = median(pre + 1, repeats);
        r->gen_tps = median(gen + 1, repeats);
        r->ms_per_token = 1000.0 / r->gen_tps;
        r->ok = 1;
    }
    r->peak_rss = ellm_peak_rss();
    free(prompt), free(logits), free(pre), free(gen);
    ellm_model_free(m);
}

/* Runs run_config in a child so its peak memory is its own. */
static void run_isolated(const char *path, int threads, int n_prompt, int n_gen, int repeats, measure *r) {
    int fds[2];
    fflush(NULL);
    if (pipe(fds) != 0) {
        run_config(path, threads, n_prompt, n_gen, repeats, r);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        measure res;
        run_config(path, threads, n_prompt, n_gen, repeats, &res);
        ssize_t w = write(fds[1], &res, sizeof res);
        _exit(w == (ssize_t)sizeof res ? 0 : 1);
    }
    close(fds[1]);
    memset(r, 0, sizeof *r);
    if (pid < 0 || read(fds[0], r, sizeof *r) != (ssize_t)sizeof *r) {
        r->ok = 0;
        snprintf(r->error, sizeof r->error, "the measuring process failed");
    }
    close(fds[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
}

static void progress_cb(void *user, const char *what, uint64_t done, uint64_t total) {
    ellm_progress_callback(user, what, done, total);
}

int bench_generate_main(int argc, char **argv) {
    const char *keep = NULL;
    long threads = ellm_cpu_count(), n_gen = 64, n_prompt = 64, repeats = 3;
    bool json = false;
    const cli_opt opts[] = {
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "the larger thread count (default: all CPUs)")},
        {CLI_INT("--tokens", NULL, &n_gen, 1, 100000, "N", "generated tokens per run (default 64)")},
        {CLI_INT("--prompt-tokens", NULL, &n_prompt, 1, 100000, "P", "prompt tokens per run (default 64)")},
        {CLI_INT("--repeat", NULL, &repeats, 1, 1000, "R", "timed runs per configuration (default 3)")},
        {CLI_STRING("--keep", NULL, &keep, "DIR", "write the generated model and .ellm files to DIR and keep them")},
        {CLI_FLAG("--json", NULL, &json, "one JSON object on stdout")},
        {0},
    };
    const char *model = NULL;
    int n_pos, rc = cli_parse(BENCH, argc, argv, opts, &model, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;

    ellm_error err = {0};
    char tmpl[] = "/tmp/entrollm-bench-XXXXXX";
    const char *dir = keep;
    if (!dir) {
        if (!mkdtemp(tmpl)) {
            fprintf(stderr, "entrollm: cannot create a temporary directory\n");
            return EXIT_FAIL;
        }
        dir = tmpl;
    } else if (!ellm_path_is_dir(dir) && mkdir(dir, 0777) != 0) {
        fprintf(stderr, "entrollm: cannot create %s\n", dir);
        return EXIT_FAIL;
    }
    rc = EXIT_OK;
    bool generated = false;
    char *synth_dir = NULL;
    variant vars[3] = {{"float", NULL}, {"uint8", NULL}, {"uint4", NULL}};
    size_t n_vars = 0;
    ellm_progress prog;

    if (model && !ellm_path_is_dir(model)) {
        /* a .ellm file is measured alone */
        FILE *fp = fopen(model, "rb");
        char magic[8] = {0};
        if (fp) {
            size_t got = fread(magic, 1, 8, fp);
            (void)got;
            fclose(fp);
        }
        if (memcmp(magic, "ENTROLLM", 8) == 0) {
            vars[0] = (variant){"ellm", ellm_strdup(model)};
            n_vars = 1;
        }
    }
    if (n_vars == 0) {
        const char *source = model;
        if (!source) {
            synth_dir = ellm_path_join(dir, "smollm-135m-generated");
            ellm_progress_init(&prog, "synth");
            if (!json) fprintf(stderr, "writing a SmolLM-135M-shaped model with generated weights to %s\n", synth_dir);
            if (ellm_synth(ellm_synth_builtin_config("smollm-135m"), 0, 1, "bf16", synth_dir, progress_cb, &prog,
                           &err)) {
                ellm_progress_finish(&prog);
                rc = cli_report_error(&err);
                goto done;
            }
            ellm_progress_finish(&prog);
            source = synth_dir;
            generated = true;
        }
        vars[0].path = ellm_strdup(source);
        n_vars = 1;
        for (int b = 8; b >= 4; b -= 4) {
            char name[32];
            snprintf(name, sizeof name, "bench-uint%d.ellm", b);
            char *out = ellm_path_join(dir, name);
            ellm_compress_options co;
            ellm_compress_options_default(&co);
            co.bits = b;
            ellm_progress_init(&prog, b == 8 ? "compress uint8" : "compress uint4");
            co.progress = progress_cb;
            co.progress_user = &prog;
            if (!json) fprintf(stderr, "compressing to %s\n", out);
            ellm_status st = ellm_compress(source, out, &co, NULL, &err);
            ellm_progress_finish(&prog);
            if (st) {
                free(out);
                rc = cli_report_error(&err);
                goto done;
            }
            vars[n_vars++].path = out;
        }
    }

    const int thread_counts[2] = {1, (int)threads};
    const int n_tc = threads > 1 ? 2 : 1;
    measure res[3][2];
    for (size_t v = 0; v < n_vars; v++)
        for (int t = 0; t < n_tc; t++) {
            if (!json) fprintf(stderr, "measuring %s on %d thread%s...\n", vars[v].label, thread_counts[t],
                               thread_counts[t] > 1 ? "s" : "");
            run_isolated(vars[v].path, thread_counts[t], (int)n_prompt, (int)n_gen, (int)repeats, &res[v][t]);
            if (!res[v][t].ok) {
                fprintf(stderr, "entrollm: %s, %d threads: %s\n", vars[v].label, thread_counts[t], res[v][t].error);
                rc = EXIT_FAIL;
                goto done;
            }
        }

    const int tl = n_tc - 1; /* the largest thread count */
    generated = generated || res[0][0].generated;
    double s8 = n_vars == 3 ? res[1][tl].gen_tps / res[0][tl].gen_tps : 0;
    double s4 = n_vars == 3 ? res[2][tl].gen_tps / res[0][tl].gen_tps : 0;
    if (json) {
        json_t *rows = json_array();
        for (size_t v = 0; v < n_vars; v++)
            for (int t = 0; t < n_tc; t++) {
                const measure *r = &res[v][t];
                json_array_append_new(
                    rows, json_pack("{s:s, s:s, s:i, s:i, s:f, s:f, s:I, s:I, s:f, s:f, s:f}", "weights", vars[v].label,
                                    "path", vars[v].path, "bits", r->weight_bits, "threads", thread_counts[t],
                                    "load_seconds", r->load_s, "decode_seconds", r->decode_s, "weight_bytes",
                                    (json_int_t)r->weight_bytes, "peak_rss_bytes", (json_int_t)r->peak_rss,
                                    "prefill_tokens_per_second", r->prefill_tps, "generation_tokens_per_second",
                                    r->gen_tps, "ms_per_token", r->ms_per_token));
            }
        json_t *o = json_pack("{s:s, s:b, s:s, s:i, s:i, s:i, s:o}", "model",
                              model ? model : "SmolLM-135M shape (built-in config)", "weights_generated",
                              generated, "cpu_features", ellm_cpu_features(), "prompt_tokens", (int)n_prompt,
                              "generated_tokens", (int)n_gen, "repeats", (int)repeats, "rows", rows);
        if (n_vars == 3) {
            json_object_set_new(o, "uint8_generation_speedup", json_real(s8));
            json_object_set_new(o, "uint4_generation_speedup", json_real(s4));
            json_object_set_new(o, "speedup_threads", json_integer(thread_counts[tl]));
        }
        char *text = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
        json_decref(o);
    } else {
        if (!model) printf("bench generate: SmolLM-135M shape, GENERATED weights (not trained)\n");
        else printf("bench generate: %s%s\n", model, generated ? " (GENERATED weights, not trained)" : "");
        printf("prompt %ld tokens, %ld generated tokens, median of %ld runs; CPU features: %s\n\n", n_prompt, n_gen,
               repeats, ellm_cpu_features());
        printf("%-7s %4s %7s %8s %9s %11s %9s %13s %11s %9s\n", "weights", "bits", "threads", "load s", "decode s",
               "weights MiB", "peak MiB", "prefill tok/s", "gen tok/s", "ms/token");
        for (size_t v = 0; v < n_vars; v++)
            for (int t = 0; t < n_tc; t++) {
                const measure *r = &res[v][t];
                printf("%-7s %4d %7d %8.3f %9.3f %11.1f %9.1f %13.1f %11.2f %9.2f\n", vars[v].label, r->weight_bits,
                       thread_counts[t], r->load_s, r->decode_s, r->weight_bytes / 1048576.0,
                       r->peak_rss / 1048576.0, r->prefill_tps, r->gen_tps, r->ms_per_token);
            }
        if (n_vars == 3)
            printf("\ngeneration speed vs float on %d thread%s: uint8 %.2fx (target 1.5x), uint4 %.2fx (target 2x)\n",
                   thread_counts[tl], thread_counts[tl] > 1 ? "s" : "", s8, s4);
    }

done:
    if (!keep) {
        for (size_t v = 1; v < n_vars; v++)
            if (vars[v].path) unlink(vars[v].path);
        if (synth_dir) {
            char *p = ellm_path_join(synth_dir, "model.safetensors");
            char *c = ellm_path_join(synth_dir, "config.json");
            if (p) unlink(p);
            if (c) unlink(c);
            free(p), free(c);
            rmdir(synth_dir);
        }
        rmdir(dir);
    }
    for (size_t v = 0; v < 3; v++) free(vars[v].path);
    free(synth_dir);
    return rc;
}
