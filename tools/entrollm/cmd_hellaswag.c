/* cmd_hellaswag.c - `entrollm hellaswag MODEL FILE`, and building the
 * story-ending task file. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"
#include "eval/eval.h"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm hellaswag MODEL FILE [options]\n"
            "       entrollm hellaswag --build-story-task STORIES.txt -o OUT.txt [--seed S] [--per-story C]\n"
            "\n"
            "Multiple-choice accuracy of MODEL (.ellm file or source model). Every ending is\n"
            "scored by the log-likelihood of its tokens given the context (lm-eval-harness):\n"
            "acc takes the most likely ending, acc_norm the most likely per byte of the ending;\n"
            "both with their standard errors. FILE is llama.cpp's text form (six lines per task:\n"
            "context, gold label 0..3, four endings; e.g. hellaswag_val_full.txt) or the original\n"
            "HellaSwag .jsonl (preprocessed as lm-eval-harness does).\n"
            "\n"
            "The second form writes the story-ending task: for each story of a TinyStories text\n"
            "(stories separated by <|endoftext|>) the context is its first k sentences (k >= 2,\n"
            "drawn), the gold ending sentence k+1, and three distractors are sentences of three\n"
            "other stories; deterministic for a seed. The output is in the six-line form.\n"
            "--per-story C draws C distinct cuts per story (default 1), for more tasks.\n"
            "\n"
            "Options:\n");
    cli_print_options(out, opts);
}

static int build_story_task(const char *in, const char *out_path, uint64_t seed, int per_story, size_t limit,
                            bool json) {
    ellm_error err = {0};
    uint8_t *text;
    size_t len;
    if (ellm_read_file(in, &text, &len, &err) != ELLM_OK) return cli_report_error(&err);
    char *task = NULL;
    size_t task_len = 0, n = 0;
    ellm_status st = ellm_build_story_task((const char *)text, len, seed, per_story, limit, &task, &task_len, &n, &err);
    free(text);
    if (st != ELLM_OK) return cli_report_error(&err);
    ellm_outfile of;
    if ((st = ellm_outfile_open(&of, out_path, &err)) == ELLM_OK &&
        (st = ellm_outfile_write(&of, task, task_len, &err)) == ELLM_OK)
        st = ellm_outfile_commit(&of, &err);
    if (st != ELLM_OK) ellm_outfile_abort(&of);
    free(task);
    if (st != ELLM_OK) return cli_report_error(&err);
    if (json) {
        json_t *j = json_pack("{s:s, s:I, s:I}", "output", out_path, "tasks", (json_int_t)n, "seed", (json_int_t)seed);
        char *s = json_dumps(j, 0);
        puts(s);
        free(s);
        json_decref(j);
    } else printf("wrote %zu story-ending tasks to %s (seed %llu)\n", n, out_path, (unsigned long long)seed);
    return EXIT_OK;
}

int cmd_hellaswag(int argc, char **argv) {
    const char *story_src = NULL, *out_path = NULL;
    long shots = 0, limit = 0, threads = 0, per_story = 1;
    uint64_t seed = 1;
    bool json = false;
    const cli_opt opts[] = {
        {CLI_INT("--shots", NULL, &shots, 0, 64, "K",
                 "prepend K exemplars (other tasks with their gold ending; default 0)")},
        {CLI_INT("--limit", NULL, &limit, 1, 1L << 30, "K",
                 "only the first K tasks (stories with --build-story-task)")},
        {CLI_U64("--seed", NULL, &seed, 0, UINT64_MAX, "S", "seed for exemplars / the story task (default 1)")},
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "threads (default: all cores)")},
        {CLI_FLAG("--json", NULL, &json, "print one JSON object on stdout: acc, acc_norm, n, stderrs")},
        {CLI_STRING("--build-story-task", NULL, &story_src, "STORIES.txt",
                    "write the story-ending task of a TinyStories text")},
        {CLI_STRING("--output", "-o", &out_path, "FILE", "output of --build-story-task (written atomically)")},
        {CLI_INT("--per-story", NULL, &per_story, 1, ELLM_STORY_MAX_CUTS, "C", "distinct cuts per story (default 1)")},
        {0},
    };
    const char *pos[2];
    int n_pos, rc = cli_parse("hellaswag", argc, argv, opts, pos, 2, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    const char *model_path = n_pos > 0 ? pos[0] : NULL, *file = n_pos > 1 ? pos[1] : NULL;
    if (story_src) {
        if (!out_path) return cli_usage_error("hellaswag", "--build-story-task needs -o OUT.txt");
        if (model_path) return cli_usage_error("hellaswag", "--build-story-task takes no model");
        if (shots) return cli_usage_error("hellaswag", "--shots does not apply to --build-story-task");
        return build_story_task(story_src, out_path, seed, (int)per_story, (size_t)limit, json);
    }
    if (out_path || per_story != 1)
        return cli_usage_error("hellaswag", "-o and --per-story only apply with --build-story-task");
    if (!model_path || !file) return cli_usage_error("hellaswag", "needs MODEL and FILE");

    ellm_error err = {0};
    ellm_mc_set set;
    if (ellm_mc_load(file, &set, &err) != ELLM_OK) return cli_report_error(&err);
    if ((size_t)shots >= set.n) {
        ellm_mc_free(&set);
        return cli_usage_error("hellaswag", "--shots %ld needs more than %zu tasks in %s", shots, set.n, file);
    }
    ellm_model *model = NULL;
    ellm_lm lm;
    if (cli_eval_open(model_path, threads, &model, &lm, &err) != ELLM_OK) {
        ellm_mc_free(&set);
        return cli_report_error(&err);
    }
    ellm_progress bar;
    ellm_model_info info;
    ellm_model_get_info(model, &info);
    ellm_progress_init(&bar, "hellaswag");
    ellm_mc_options o = {.shots = (int)shots, .limit = (size_t)limit, .seed = seed,
                         .progress = {ellm_progress_callback, &bar}};
    ellm_mc_result r;
    double t0 = ellm_now();
    ellm_status st = ellm_eval_multiple_choice(&lm, &set, &o, &r, &err);
    double seconds = ellm_now() - t0;
    int n_ctx = lm.n_ctx;
    ellm_progress_finish(&bar);
    ellm_eval_close(model, &lm);
    ellm_mc_free(&set);
    if (st != ELLM_OK) return cli_report_error(&err);
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:I, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:f}", "model",
                              model_path, "file", file, "weight_bits", info.weight_bits, "shots", (int)shots, "n",
                              (json_int_t)r.n, "acc", r.acc, "acc_stderr", r.acc_stderr, "acc_norm", r.acc_norm,
                              "acc_norm_stderr", r.acc_norm_stderr, "correct", (json_int_t)r.correct,
                              "correct_norm", (json_int_t)r.correct_norm, "truncated", (json_int_t)r.truncated,
                              "seconds", seconds);
        char *s = json_dumps(j, JSON_INDENT(1));
        puts(s);
        free(s);
        json_decref(j);
    } else {
        printf("%s (%s weights) on %s, %ld-shot, %zu tasks (chance 25%%):\n", model_path, cli_weights_text(&info),
               file, shots, r.n);
        printf("acc      = %6.2f%% +/- %.2f%%  (%zu correct)\n", 100 * r.acc, 100 * r.acc_stderr, r.correct);
        printf("acc_norm = %6.2f%% +/- %.2f%%  (%zu correct)\n", 100 * r.acc_norm, 100 * r.acc_norm_stderr,
               r.correct_norm);
        if (r.truncated)
            printf("%zu task(s) longer than the context of %d tokens were cut on the left\n", r.truncated,
                   n_ctx);
        printf("%.1f s\n", seconds);
    }
    return EXIT_OK;
}
