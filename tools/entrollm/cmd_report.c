/* cmd_report.c - `entrollm report SOURCE_MODEL -o DIR`: Table I and Figure 4. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/common.h"
#include "eval/eval.h"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: entrollm report SOURCE_MODEL -o DIR [options]\n"
            "\n"
            "The paper's Table I and Figure 4 for a float model: SOURCE_MODEL is compressed to\n"
            "uint8 and uint4 (DIR/model-uint8.ellm, DIR/model-uint4.ellm), and the float source and\n"
            "both files are evaluated on the data given. Written: DIR/report.md (the table and\n"
            "how each figure was measured), DIR/report.json (the same figures), DIR/figure4.svg\n"
            "(histograms of the quantized values per bit width, from the files' decoded integers).\n"
            "Rows: fp16 / uint8 / uint4 with parameters, effective bits per weight, size, entropy,\n"
            "and perplexity, HellaSwag acc/acc_norm and GSM8k accuracy where data is given.\n"
            "\n"
            "Options:\n"
            "  -o, --output DIR     output directory (created if needed; required)\n"
            "  --text FILE          perplexity text (llama.cpp windows; WikiText-2 raw works)\n"
            "  --ctx N              perplexity window (default min(512, model context))\n"
            "  --hellaswag FILE     multiple-choice tasks (llama.cpp text form or HellaSwag .jsonl)\n"
            "  --shots K            HellaSwag exemplars (default 0)\n"
            "  --gsm8k FILE         GSM8k test .jsonl\n"
            "  --train FILE         GSM8k train .jsonl for the 8 exemplars\n"
            "  --gsm8k-shots K      GSM8k exemplars (default 8)\n"
            "  --max-tokens N       GSM8k tokens generated per answer (default 256)\n"
            "  --limit K            windows / tasks / questions per evaluation (default all)\n"
            "  --threads N          threads (default: all cores)\n"
            "  --json               print report.json's content on stdout\n"
            "  -h, --help           this help\n");
}

static void on_stage(void *user, const char *what) {
    (void)user;
    fprintf(stderr, "report: %s\n", what);
}

int cmd_report(int argc, char **argv) {
    const char *source = NULL;
    ellm_report_options o = {.gsm8k_shots = 8, .gsm8k_max_tokens = 256};
    long n;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **file_opt = NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            file_opt = &o.out_dir;
        } else if (strcmp(a, "--text") == 0) {
            file_opt = &o.text_path;
        } else if (strcmp(a, "--hellaswag") == 0) {
            file_opt = &o.hellaswag_path;
        } else if (strcmp(a, "--gsm8k") == 0) {
            file_opt = &o.gsm8k_path;
        } else if (strcmp(a, "--train") == 0) {
            file_opt = &o.train_path;
        } else if (strcmp(a, "--ctx") == 0) {
            if (!cli_parse_int("report", a, v, 4, 1 << 20, &n)) return EXIT_USAGE;
            o.n_ctx = (int)n, i++;
        } else if (strcmp(a, "--shots") == 0) {
            if (!cli_parse_int("report", a, v, 0, 64, &n)) return EXIT_USAGE;
            o.hellaswag_shots = (int)n, i++;
        } else if (strcmp(a, "--gsm8k-shots") == 0) {
            if (!cli_parse_int("report", a, v, 0, 64, &n)) return EXIT_USAGE;
            o.gsm8k_shots = (int)n, i++;
        } else if (strcmp(a, "--max-tokens") == 0) {
            if (!cli_parse_int("report", a, v, 1, 1 << 20, &n)) return EXIT_USAGE;
            o.gsm8k_max_tokens = (int)n, i++;
        } else if (strcmp(a, "--limit") == 0) {
            if (!cli_parse_int("report", a, v, 1, 1L << 30, &n)) return EXIT_USAGE;
            o.limit = (size_t)n, i++;
        } else if (strcmp(a, "--threads") == 0) {
            if (!cli_parse_int("report", a, v, 1, 1024, &n)) return EXIT_USAGE;
            o.n_threads = (int)n, i++;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("report", "unknown option '%s'", a);
        } else if (!source) {
            source = a;
        } else {
            return cli_usage_error("report", "unexpected argument '%s'", a);
        }
        if (file_opt) {
            if (!v) return cli_usage_error("report", "%s needs a path", a);
            *file_opt = v;
            i++;
        }
    }
    if (!source) return cli_usage_error("report", "needs SOURCE_MODEL");
    if (!o.out_dir) return cli_usage_error("report", "needs -o DIR");
    if (o.gsm8k_path && o.gsm8k_shots > 0 && !o.train_path)
        return cli_usage_error("report", "--gsm8k with %d shots needs --train TRAIN.jsonl (or --gsm8k-shots 0)",
                               o.gsm8k_shots);
    const char *inputs[] = {o.text_path, o.hellaswag_path, o.gsm8k_path, o.train_path};
    for (size_t i = 0; i < 4; i++)
        if (inputs[i] && access(inputs[i], R_OK) != 0) {
            fprintf(stderr, "entrollm: error: %s: cannot read\n", inputs[i]);
            return EXIT_FAIL;
        }
    ellm_progress bar;
    ellm_progress_init(&bar, "report");
    o.progress = (ellm_eval_progress){ellm_progress_callback, &bar};
    o.on_stage = on_stage;
    ellm_report_row rows[3];
    ellm_error err = {0};
    ellm_status st = ellm_eval_report(source, &o, rows, &err);
    ellm_progress_finish(&bar);
    if (st != ELLM_OK) return cli_report_error(&err);
    char *js = ellm_path_join(o.out_dir, "report.json");
    if (json) {
        uint8_t *text;
        size_t len;
        if (js && ellm_read_file(js, &text, &len, &err) == ELLM_OK) {
            fwrite(text, 1, len, stdout);
            free(text);
        }
        free(js);
        return EXIT_OK;
    }
    printf("%-6s %12s %10s %12s %10s", "model", "params", "bits/w", "size", "entropy");
    if (o.text_path) printf(" %18s", "perplexity");
    if (o.hellaswag_path) printf(" %15s %15s", "acc", "acc_norm");
    if (o.gsm8k_path) printf(" %15s", "GSM8k");
    printf("\n");
    for (int i = 0; i < 3; i++) {
        const ellm_report_row *r = &rows[i];
        char size[32];
        printf("%-6s %12llu %10.3f %12s", r->name, (unsigned long long)r->params, r->effective_bits,
               cli_human_bytes(r->size_bytes, size, sizeof size));
        if (r->bits == 16) printf(" %10s", "-");
        else printf(" %10.3f", r->entropy_bits);
        if (o.text_path) printf(" %9.4f +/- %.4f", r->ppl.ppl, r->ppl.ppl_stderr);
        if (o.hellaswag_path)
            printf(" %6.2f%% +/- %4.2f %6.2f%% +/- %4.2f", 100 * r->hellaswag.acc, 100 * r->hellaswag.acc_stderr,
                   100 * r->hellaswag.acc_norm, 100 * r->hellaswag.acc_norm_stderr);
        if (o.gsm8k_path) printf(" %6.2f%% +/- %4.2f", 100 * r->gsm8k.accuracy, 100 * r->gsm8k.accuracy_stderr);
        printf("\n");
    }
    printf("\nwrote %s/report.md, %s, %s/figure4.svg\n", o.out_dir, js ? js : "report.json", o.out_dir);
    free(js);
    return EXIT_OK;
}
