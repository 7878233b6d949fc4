/* cmd_gsm8k.c - `entrollm gsm8k MODEL TEST.jsonl --train TRAIN.jsonl`. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"
#include "eval/eval.h"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm gsm8k MODEL TEST.jsonl --train TRAIN.jsonl [options]\n"
            "\n"
            "GSM8k accuracy of MODEL (.ellm file or source model) by k-shot chain of thought.\n"
            "The prompt is K exemplars from the training split, each\n"
            "  \"Question: <question>\\nAnswer: <reasoning> The answer is <N>.\"\n"
            "(the reference reasoning with its <<calculator>> annotations removed, lines joined)\n"
            "separated by blank lines, then \"Question: <test question>\\nAnswer:\". The model\n"
            "generates greedily until \"Question:\", a blank line, end of text or --max-tokens.\n"
            "Its answer is the first number after the last \"The answer is\", else the last number\n"
            "it wrote; it counts when it equals the reference \"#### N\" after normalising both\n"
            "(commas, '$', '+' and trailing zeros of a fraction dropped: 1,000 = 1000, 5.0 = 5).\n"
            "Prompts longer than the context are cut on the left (BOS kept).\n"
            "\n"
            "Options:\n");
    cli_print_options(out, opts);
}

static void on_item(void *user, size_t i, const char *generated, const char *pred, const char *target, int ok) {
    (void)user;
    printf("--- question %zu: predicted '%s', reference '%s' %s\n%s\n", i + 1, pred, target,
           ok ? "CORRECT" : "wrong", generated);
}

int cmd_gsm8k(int argc, char **argv) {
    const char *train_path = NULL;
    long shots = 8, limit = 0, threads = 0, max_tokens = 256;
    uint64_t seed = 1;
    bool json = false, verbose = false;
    const cli_opt opts[] = {
        {CLI_STRING("--train", NULL, &train_path, "FILE",
                    "training split for the exemplars (required when --shots > 0)")},
        {CLI_INT("--shots", NULL, &shots, 0, 64, "K", "exemplars (default 8)")},
        {CLI_INT("--limit", NULL, &limit, 1, 1L << 30, "K", "only the first K test questions")},
        {CLI_INT("--max-tokens", NULL, &max_tokens, 1, 1 << 20, "N",
                 "tokens generated per answer (default 256, at most half the context)")},
        {CLI_U64("--seed", NULL, &seed, 0, UINT64_MAX, "S",
                 "picks the exemplars (default 1; the same for every question)")},
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "threads (default: all cores)")},
        {CLI_FLAG("--verbose", "-v", &verbose, "print every generated answer")},
        {CLI_FLAG("--json", NULL, &json, "print one JSON object on stdout: accuracy, n, ...")},
        {0},
    };
    const char *pos[2];
    int n_pos, rc = cli_parse("gsm8k", argc, argv, opts, pos, 2, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    const char *model_path = n_pos > 0 ? pos[0] : NULL, *test_path = n_pos > 1 ? pos[1] : NULL;
    if (!model_path || !test_path) return cli_usage_error("gsm8k", "needs MODEL and TEST.jsonl");
    if (shots > 0 && !train_path) return cli_usage_error("gsm8k", "--shots %ld needs --train TRAIN.jsonl", shots);

    ellm_error err = {0};
    ellm_gsm_set test = {0}, train = {0};
    if (ellm_gsm_load(test_path, &test, &err) != ELLM_OK) return cli_report_error(&err);
    if (train_path && ellm_gsm_load(train_path, &train, &err) != ELLM_OK) {
        ellm_gsm_free(&test);
        return cli_report_error(&err);
    }
    ellm_model *model = NULL;
    ellm_lm lm;
    if (cli_eval_open(model_path, threads, &model, &lm, &err) != ELLM_OK) {
        ellm_gsm_free(&test), ellm_gsm_free(&train);
        return cli_report_error(&err);
    }
    ellm_progress bar;
    ellm_model_info info;
    ellm_model_get_info(model, &info);
    ellm_progress_init(&bar, "gsm8k");
    ellm_gsm_options o = {.shots = (int)shots, .limit = (size_t)limit, .max_tokens = (int)max_tokens,
                          .seed = seed, .progress = {ellm_progress_callback, &bar}};
    if (verbose && !json) o.on_item = on_item;
    ellm_gsm_result r;
    double t0 = ellm_now();
    ellm_status st = ellm_eval_gsm8k(&lm, &test, &train, &o, &r, &err);
    double seconds = ellm_now() - t0;
    int n_ctx = lm.n_ctx;
    ellm_progress_finish(&bar);
    ellm_eval_close(model, &lm);
    ellm_gsm_free(&test), ellm_gsm_free(&train);
    if (st != ELLM_OK) return cli_report_error(&err);
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:f, s:f, s:I, s:I, s:i, s:f}", "model", model_path,
                              "test", test_path, "weight_bits", info.weight_bits, "shots", (int)shots, "n",
                              (json_int_t)r.n, "correct", (json_int_t)r.correct, "accuracy", r.accuracy,
                              "accuracy_stderr", r.accuracy_stderr, "truncated", (json_int_t)r.truncated,
                              "generated_tokens", (json_int_t)r.generated_tokens, "ctx", n_ctx, "seconds", seconds);
        char *s = json_dumps(j, JSON_INDENT(1));
        puts(s);
        free(s);
        json_decref(j);
    } else {
        printf("%s (%s weights) on %s, %ld-shot chain of thought, %zu questions:\n", model_path,
               cli_weights_text(&info), test_path, shots, r.n);
        printf("accuracy = %.2f%% +/- %.2f%%  (%zu correct)\n", 100 * r.accuracy, 100 * r.accuracy_stderr, r.correct);
        if (r.truncated)
            printf("%zu prompt(s) longer than the context of %d tokens were cut on the left\n", r.truncated, n_ctx);
        printf("%zu tokens generated in %.1f s\n", r.generated_tokens, seconds);
    }
    return EXIT_OK;
}
