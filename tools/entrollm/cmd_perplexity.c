/* cmd_perplexity.c - `entrollm perplexity MODEL TEXTFILE`. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"
#include "eval/eval.h"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm perplexity MODEL TEXTFILE [options]\n"
            "\n"
            "Perplexity of MODEL (.ellm file or source model) over a UTF-8 text file, in\n"
            "llama.cpp's convention: the whole file is tokenized with BOS, cut into\n"
            "non-overlapping windows of N tokens (the tail is dropped), each window's first\n"
            "token set to BOS, and only the later half of each window scored (positions\n"
            "N/2+1 .. N-1). WikiText-2 raw files are read as they are. Prints the running\n"
            "estimate [window]PPL +/- stderr, then \"Final estimate: PPL = x +/- y\".\n"
            "\n"
            "Options:\n");
    cli_print_options(out, opts);
}

typedef struct header {
    const char *model, *text;
    const char *weights;
} header;

static void on_window(void *user, int w, int n, double ppl, double se) {
    const header *h = user;
    if (w == 1)
        printf("perplexity of %s (%s weights) over %s, llama.cpp windows\n", h->model, h->weights, h->text);
    printf("[%d]%.4f +/- %.4f%s", w, ppl, se, w == n ? "\n" : ",");
    fflush(stdout);
}

int cmd_perplexity(int argc, char **argv) {
    const char *docs = NULL;
    long ctx = 0, limit = 0, threads = 0;
    bool json = false;
    const cli_opt opts[] = {
        {CLI_INT("--ctx", NULL, &ctx, 4, 1 << 20, "N", "window length in tokens (default min(512, model context))")},
        {CLI_INT("--limit", NULL, &limit, 1, 1 << 30, "K", "score only the first K windows")},
        {CLI_STRING("--docs", NULL, &docs, "SEP",
                    "instead: teacher-forced mean NLL over the documents separated\n"
                    "by SEP (e.g. '<|endoftext|>'), each tokenized with BOS, cut to the\n"
                    "model's context, every token after BOS scored (--limit counts\n"
                    "documents)")},
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "threads (default: all cores)")},
        {CLI_FLAG("--json", NULL, &json,
                  "print one JSON object on stdout: perplexity, stderr,\n"
                  "tokens_scored, ctx, windows, mean_nll, ...")},
        {0},
    };
    const char *pos[2];
    int n_pos, rc = cli_parse("perplexity", argc, argv, opts, pos, 2, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    if (n_pos < 2) return cli_usage_error("perplexity", "needs MODEL and TEXTFILE");
    const char *model_path = pos[0], *text_path = pos[1];
    if (docs && ctx) return cli_usage_error("perplexity", "--ctx does not apply with --docs");

    ellm_error err = {0};
    uint8_t *text = NULL;
    size_t len = 0;
    if (ellm_read_file(text_path, &text, &len, &err) != ELLM_OK) return cli_report_error(&err);
    ellm_model *model = NULL;
    ellm_lm lm;
    if (cli_eval_open(model_path, threads, &model, &lm, &err) != ELLM_OK) {
        free(text);
        return cli_report_error(&err);
    }
    ellm_progress bar;
    ellm_model_info info;
    ellm_model_get_info(model, &info);
    ellm_ppl_result r;
    ellm_status st;
    ellm_progress_init(&bar, docs ? "documents" : "perplexity");
    ellm_eval_progress prog = {ellm_progress_callback, &bar};
    double t0 = ellm_now();
    if (docs) {
        st = ellm_eval_doc_nll(&lm, (const char *)text, len, docs, (int)limit, &prog, &r, &err);
    } else {
        ellm_ppl_options o = {.n_ctx = (int)ctx, .limit = (int)limit, .progress = prog};
        header h = {model_path, text_path, cli_weights_text(&info)};
        if (!json) {
            o.on_window = on_window;
            o.window_user = &h;
        }
        st = ellm_eval_perplexity(&lm, (const char *)text, len, &o, &r, &err);
    }
    double seconds = ellm_now() - t0;
    ellm_progress_finish(&bar);
    free(text);
    if (st != ELLM_OK) {
        ellm_eval_close(model, &lm);
        return cli_report_error(&err);
    }
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:f, s:f, s:f, s:f, s:I, s:I, s:i, s:i, s:f}", "model", model_path,
                              "text", text_path, "mode", docs ? "documents" : "windows", "weight_bits",
                              info.weight_bits, "perplexity", r.ppl, "stderr", r.ppl_stderr, "mean_nll", r.mean_nll,
                              "mean_nll_stderr", r.nll_stderr, "tokens_scored", (json_int_t)r.tokens_scored,
                              "tokens_total", (json_int_t)r.tokens_total, "ctx", r.n_ctx,
                              docs ? "documents" : "windows", r.windows, "seconds", seconds);
        char *s = json_dumps(o, JSON_INDENT(1));
        puts(s);
        free(s);
        json_decref(o);
    } else if (docs) {
        printf("mean NLL over %d documents of %s (%s weights): %.4f +/- %.4f nats/token, %llu tokens "
               "scored\nPPL = %.4f +/- %.5f\n",
               r.windows, text_path, cli_weights_text(&info), r.mean_nll, r.nll_stderr,
               (unsigned long long)r.tokens_scored, r.ppl, r.ppl_stderr);
    } else {
        printf("%llu tokens, %d windows of %d, %llu tokens scored, mean NLL %.4f nats/token, %.1f s\n",
               (unsigned long long)r.tokens_total, r.windows, r.n_ctx, (unsigned long long)r.tokens_scored,
               r.mean_nll, seconds);
        printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_stderr);
    }
    ellm_eval_close(model, &lm);
    return EXIT_OK;
}
