/* cmd_report.c - `entrollm report SOURCE_MODEL -o DIR`: Table I and Figure 4. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/common.h"
#include "eval/eval.h"

static void usage(FILE *out, const cli_opt *opts) {
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
            "Options:\n");
    cli_print_options(out, opts);
}

static void on_stage(void *user, const char *what) {
    (void)user;
    fprintf(stderr, "report: %s\n", what);
}

int cmd_report(int argc, char **argv) {
    const char *source = NULL;
    ellm_report_options o = {0};
    long ctx = 0, shots = 0, gsm8k_shots = 8, max_tokens = 256, limit = 0, threads = 0;
    bool json = false;
    const cli_opt opts[] = {
        {CLI_STRING("--output", "-o", &o.out_dir, "DIR", "output directory (created if needed; required)")},
        {CLI_STRING("--text", NULL, &o.text_path, "FILE", "perplexity text (llama.cpp windows; WikiText-2 raw works)")},
        {CLI_INT("--ctx", NULL, &ctx, 4, 1 << 20, "N", "perplexity window (default min(512, model context))")},
        {CLI_STRING("--hellaswag", NULL, &o.hellaswag_path, "FILE",
                    "multiple-choice tasks (llama.cpp text form or HellaSwag .jsonl)")},
        {CLI_INT("--shots", NULL, &shots, 0, 64, "K", "HellaSwag exemplars (default 0)")},
        {CLI_STRING("--gsm8k", NULL, &o.gsm8k_path, "FILE", "GSM8k test .jsonl")},
        {CLI_STRING("--train", NULL, &o.train_path, "FILE", "GSM8k train .jsonl for the 8 exemplars")},
        {CLI_INT("--gsm8k-shots", NULL, &gsm8k_shots, 0, 64, "K", "GSM8k exemplars (default 8)")},
        {CLI_INT("--max-tokens", NULL, &max_tokens, 1, 1 << 20, "N",
                 "GSM8k tokens generated per answer (default 256)")},
        {CLI_INT("--limit", NULL, &limit, 1, 1L << 30, "K",
                 "windows / tasks / questions per evaluation (default all)")},
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "threads (default: all cores)")},
        {CLI_FLAG("--json", NULL, &json, "print report.json's content on stdout")},
        {0},
    };
    int n_pos, rc = cli_parse("report", argc, argv, opts, &source, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    o.n_ctx = (int)ctx;
    o.hellaswag_shots = (int)shots;
    o.gsm8k_shots = (int)gsm8k_shots;
    o.gsm8k_max_tokens = (int)max_tokens;
    o.limit = (size_t)limit;
    o.n_threads = (int)threads;
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
