/* bench_latency.c - `entrollm bench latency MODEL`: the paper's Table II. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/common.h"
#include "eval/eval.h"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm bench latency MODEL [options]\n"
            "\n"
            "The paper's Table II. For a .ellm file: its times as stored (e.g. Huffman-coded) and\n"
            "those of the same quantized weights stored plainly (RAW coder, written to a temporary\n"
            "file and read the same way). For a source model: uint8 and uint4 files are built\n"
            "with each coder (Huffman, RAW) in a temporary directory and all four measured.\n"
            "Each run loads the model (open, checksums, parallel decode), runs one forward pass\n"
            "over a P-token prompt (prefill) and generates N tokens greedily; the medians of R\n"
            "runs are printed:\n"
            "  decode     parallel entropy decode of all tensors (0 for plain files)\n"
            "  load       the whole ellm_model_load (file open, checksums, decode, binding)\n"
            "  prefill    the P-token forward pass\n"
            "  per token  mean generation step over the N tokens\n"
            "  TTFT       time to first token: load + prefill\n"
            "\n"
            "Options:\n");
    cli_print_options(out, opts);
}

static bool is_ellm(const char *path) {
    FILE *f = fopen(path, "rb");
    char magic[8] = {0};
    bool yes = f && fread(magic, 1, 8, f) == 8 && memcmp(magic, "ENTROLLM", 8) == 0;
    if (f) fclose(f);
    return yes;
}

typedef struct variant {
    char path[4096];
    bool temporary;
    char label[32];
} variant;

static void remove_temps(variant *v, int n, const char *dir) {
    for (int i = 0; i < n; i++)
        if (v[i].temporary) unlink(v[i].path);
    if (dir) rmdir(dir);
}

int bench_latency_main(int argc, char **argv) {
    long prompt = 128, gen = 64, repeat = 10, threads = 0;
    bool json = false;
    const cli_opt opts[] = {
        {CLI_INT("--prompt-tokens", NULL, &prompt, 1, 1 << 20, "P", "prompt length (default 128)")},
        {CLI_INT("--gen-tokens", NULL, &gen, 1, 1 << 20, "N", "generated tokens (default 64)")},
        {CLI_INT("--repeat", NULL, &repeat, 1, 1000, "R", "runs per row (default 10)")},
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "threads (default: all cores)")},
        {CLI_FLAG("--json", NULL, &json, "print one JSON object on stdout")},
        {0},
    };
    const char *model = NULL;
    int n_pos, rc = cli_parse("bench latency", argc, argv, opts, &model, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    if (!model) return cli_usage_error("bench latency", "needs MODEL (.ellm file or source model)");
    if (!ellm_path_exists(model)) {
        fprintf(stderr, "entrollm: error: %s: no such file or directory\n", model);
        return EXIT_FAIL;
    }

    const char *tmp_root = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[3072];
    int dl = snprintf(dir, sizeof dir, "%s/entrollm-latency-XXXXXX", tmp_root);
    if (dl < 0 || (size_t)dl >= sizeof dir || !mkdtemp(dir)) {
        fprintf(stderr, "entrollm: error: cannot create a temporary directory under %s\n", tmp_root);
        return EXIT_FAIL;
    }
    variant vars[4];
    int n_vars = 0;
    ellm_error err = {0};
    ellm_status st = ELLM_OK;
    memset(vars, 0, sizeof vars);
    if (is_ellm(model)) {
        snprintf(vars[0].path, sizeof vars[0].path, "%s", model);
        snprintf(vars[0].label, sizeof vars[0].label, "as stored");
        snprintf(vars[1].path, sizeof vars[1].path, "%s/plain.ellm", dir);
        vars[1].temporary = true;
        snprintf(vars[1].label, sizeof vars[1].label, "plain twin");
        n_vars = 2;
        if (!json) fprintf(stderr, "storing the same weights plainly in %s\n", vars[1].path);
        st = ellm_eval_store_raw(model, vars[1].path, (int)threads, &err);
    } else {
        const int bits[2] = {8, 4};
        const ellm_coder coders[2] = {ELLM_CODER_HUFFMAN, ELLM_CODER_RAW};
        for (int b = 0; b < 2 && st == ELLM_OK; b++)
            for (int c = 0; c < 2 && st == ELLM_OK; c++) {
                variant *v = &vars[n_vars++];
                snprintf(v->path, sizeof v->path, "%s/uint%d-%s.ellm", dir, bits[b], ellm_coder_name(coders[c]));
                v->temporary = true;
                snprintf(v->label, sizeof v->label, "compressed");
                ellm_compress_options o;
                ellm_compress_options_default(&o);
                o.bits = bits[b];
                o.coder = coders[c];
                o.n_threads = (int)threads;
                if (!json) fprintf(stderr, "compressing %s to uint%d/%s\n", model, bits[b], ellm_coder_name(coders[c]));
                st = ellm_compress(model, v->path, &o, NULL, &err);
            }
    }
    if (st != ELLM_OK) {
        remove_temps(vars, n_vars, dir);
        return cli_report_error(&err);
    }

    ellm_latency_row rows[4];
    ellm_progress bar;
    for (int i = 0; i < n_vars && st == ELLM_OK; i++) {
        ellm_progress_init(&bar, "latency");
        ellm_latency_options o = {.prompt_tokens = (int)prompt, .gen_tokens = (int)gen, .repeat = (int)repeat,
                                  .n_threads = (int)threads, .progress = {ellm_progress_callback, &bar}};
        st = ellm_eval_latency(vars[i].path, &o, &rows[i], &err);
        ellm_progress_finish(&bar);
    }
    remove_temps(vars, n_vars, dir);
    if (st != ELLM_OK) return cli_report_error(&err);

    int n_threads = threads ? (int)threads : ellm_cpu_count();
    if (json) {
        json_t *arr = json_array();
        for (int i = 0; i < n_vars; i++) {
            const ellm_latency_row *r = &rows[i];
            json_array_append_new(
                arr, json_pack("{s:i, s:s, s:I, s:f, s:f, s:f, s:f, s:f}", "weight_bits", r->weight_bits, "coder",
                               ellm_coder_name(r->coder), "file_bytes", (json_int_t)r->file_bytes, "decode_ms",
                               1e3 * r->decode_s, "load_ms", 1e3 * r->load_s, "prefill_ms", 1e3 * r->prefill_s,
                               "per_token_ms", 1e3 * r->per_token_s, "ttft_ms", 1e3 * r->ttft_s));
        }
        json_t *o = json_pack("{s:s, s:i, s:s, s:i, s:i, s:i, s:b, s:o}", "model", model, "threads", n_threads,
                              "cpu_features", ellm_cpu_features(), "prompt_tokens", (int)prompt, "gen_tokens",
                              (int)gen, "repeat", (int)repeat, "weights_generated", rows[0].weights_generated,
                              "rows", arr);
        char *s = json_dumps(o, JSON_INDENT(1));
        puts(s);
        free(s);
        json_decref(o);
        return EXIT_OK;
    }
    printf("Latency of %s: medians of %ld runs, %ld-token prompt, %ld generated tokens\n", model, repeat, prompt, gen);
    printf("threads %d, CPU features used: %s\n\n", n_threads, ellm_cpu_features());
    printf("%-7s %-8s %11s %10s %10s %11s %11s %10s\n", "weights", "coder", "file", "decode ms", "load ms",
           "prefill ms", "ms/token", "TTFT ms");
    for (int i = 0; i < n_vars; i++) {
        const ellm_latency_row *r = &rows[i];
        char size[32], w[16];
        if (r->weight_bits == 32) snprintf(w, sizeof w, "float");
        else snprintf(w, sizeof w, "uint%d", r->weight_bits);
        printf("%-7s %-8s %11s %10.3f %10.3f %11.3f %11.4f %10.3f\n", w, ellm_coder_name(r->coder),
               cli_human_bytes(r->file_bytes, size, sizeof size), 1e3 * r->decode_s, 1e3 * r->load_s,
               1e3 * r->prefill_s, 1e3 * r->per_token_s, 1e3 * r->ttft_s);
    }
    if (rows[0].weights_generated)
        printf("\nNOTE: the weights of this model are GENERATED, not trained (timings only; its output is "
               "meaningless).\n");
    printf("\n(decode: parallel entropy decode alone; load: open + checksums + decode + binding;\n"
           " TTFT = load + prefill. The machine's other load adds noise: compare rows of one run.)\n");
    return EXIT_OK;
}
