/* test_logic.c - evaluation logic against a fake model with known scores:
 * perplexity windows and statistics, multiple-choice scoring (acc vs
 * acc_norm, k-shot prompts, truncation), GSM8k extraction and generation,
 * parser error paths. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testing.h"
#include "eval/eval.h"
#include "eval/fake_lm.h"

static int g_windows_seen;
static void on_window(void *user, int w, int n, double ppl, double se) {
    (void)user, (void)ppl, (void)se;
    CHECK(w == g_windows_seen + 1 && w <= n);
    g_windows_seen = w;
}

static void test_perplexity(void) {
    fake_lm f;
    ellm_lm lm;
    fake_init(&f, &lm, 64);
    ellm_error err = {0};
    /* Uniform model: perplexity is exactly the vocabulary size. */
    char text[1000];
    for (int i = 0; i < 999; i++) text[i] = (char)('a' + i % 26);
    text[999] = 0;
    ellm_ppl_options o = {.n_ctx = 32, .on_window = on_window};
    ellm_ppl_result r;
    g_windows_seen = 0;
    CHECK(ellm_eval_perplexity(&lm, text, 999, &o, &r, &err) == ELLM_OK);
    /* 1000 tokens (BOS + 999 bytes) -> 31 windows of 32, each scoring 32-16-1 = 15 */
    CHECK(r.windows == 31 && g_windows_seen == 31);
    CHECK(r.tokens_total == 1000);
    CHECK(r.tokens_scored == 31 * 15);
    CHECK_NEAR(r.ppl, FAKE_VOCAB, 1e-9);
    CHECK_NEAR(r.ppl_stderr, 0, 1e-3); /* llama.cpp's E[x^2]-E[x]^2 rounds */
    CHECK(f.last_n == 32 && f.last_first == 17);
    CHECK(f.calls_without_bos == 0 && f.bad_calls == 0);

    /* Known per-token scores: 'a' -> -1, everything else -3. Each window
     * scores window positions 17..31 = text bytes [32w+16, 32w+30]. */
    for (int v = 0; v < FAKE_VOCAB; v++) f.lp[v] = -3;
    f.lp['a' + 3] = -1;
    o.limit = 5;
    g_windows_seen = 0;
    CHECK(ellm_eval_perplexity(&lm, text, 999, &o, &r, &err) == ELLM_OK);
    double sum = 0, sum2 = 0;
    size_t count = 0;
    for (int w = 0; w < 5; w++)
        for (int p = 17; p < 32; p++) {
            char c = text[w * 32 + p - 1]; /* token position p = text byte p-1 */
            double nll = c == 'a' ? 1 : 3;
            sum += nll, sum2 += nll * nll, count++;
        }
    double mean = sum / count, var = sum2 / count - mean * mean;
    CHECK(r.windows == 5 && r.tokens_scored == count);
    CHECK_NEAR(r.mean_nll, mean, 1e-12);
    CHECK_NEAR(r.ppl, exp(mean), 1e-9);
    CHECK_NEAR(r.nll_stderr, sqrt(var / (count - 1)), 1e-12);
    CHECK_NEAR(r.ppl_stderr, exp(mean) * sqrt(var / (count - 1)), 1e-9);

    /* Too short a text is refused (llama.cpp needs 2 * n_ctx tokens). */
    CHECK(ellm_eval_perplexity(&lm, text, 40, &o, &r, &err) == ELLM_E_ARG);
    CHECK(strstr(err.message, "needs at least 64") != NULL);
    /* Context larger than the model's is refused. */
    o.n_ctx = 128;
    CHECK(ellm_eval_perplexity(&lm, text, 999, &o, &r, &err) == ELLM_E_ARG);

    /* Per-document NLL: every token after BOS of every document. */
    for (int v = 0; v < FAKE_VOCAB; v++) f.lp[v] = -2;
    const char *docs = "abc\n<|endoftext|>\n  de \n<|endoftext|>\n";
    CHECK(ellm_eval_doc_nll(&lm, docs, strlen(docs), "<|endoftext|>", 0, NULL, &r, &err) == ELLM_OK);
    CHECK(r.windows == 2 && r.tokens_scored == 5 && r.tokens_total == 7);
    CHECK_NEAR(r.mean_nll, 2, 1e-12);
    /* A document longer than the context is cut to the context. */
    char longdoc[200];
    memset(longdoc, 'a', 199);
    longdoc[199] = 0;
    CHECK(ellm_eval_doc_nll(&lm, longdoc, 199, "<|endoftext|>", 0, NULL, &r, &err) == ELLM_OK);
    CHECK(r.tokens_scored == 63 && r.tokens_total == 200 && f.calls_without_bos == 0 && f.bad_calls == 0);
    CHECK(f.last_n == 64 && f.last_first == 1);
    fake_free(&f);
}

static ellm_mc_task make_task(const char *ctx, const char *e0, const char *e1, const char *e2,
                              const char *e3, int label) {
    ellm_mc_task t = {ellm_strdup(ctx), {ellm_strdup(e0), ellm_strdup(e1), ellm_strdup(e2), ellm_strdup(e3)}, label};
    return t;
}

static void test_multiple_choice(void) {
    fake_lm f;
    ellm_lm lm;
    fake_init(&f, &lm, 256);
    ellm_error err = {0};
    for (int v = 0; v < FAKE_VOCAB; v++) f.lp[v] = -5;
    f.lp[' ' + 3] = -1;
    f.lp['x' + 3] = -1;
    f.lp['a' + 3] = -0.1;
    /* ending sums (incl. the " " before the ending): "xx" -3 (best sum),
     * 30 x 'a' -4 (best per byte: -4/30), "zzz" -16, "b" -6 */
    const char *aaa = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    ellm_mc_set set = {4, calloc(4, sizeof(ellm_mc_task))};
    set.tasks[0] = make_task("First context.", "xx", aaa, "zzz", "b", 0);
    set.tasks[1] = make_task("Second context.", "xx", aaa, "zzz", "b", 1);
    set.tasks[2] = make_task("Third context.", "zzz", "b", "xx", aaa, 2);
    set.tasks[3] = make_task("Fourth context.", "b", "zzz", aaa, "xx", 0);
    ellm_mc_options o = {0};
    ellm_mc_result r;
    CHECK(ellm_eval_multiple_choice(&lm, &set, &o, &r, &err) == ELLM_OK);
    /* acc picks "xx": right in tasks 0 and 2; acc_norm picks the a's: right in 1 only */
    CHECK(r.n == 4 && r.correct == 2 && r.correct_norm == 1);
    CHECK_NEAR(r.acc, 0.5, 1e-12);
    CHECK_NEAR(r.acc_norm, 0.25, 1e-12);
    CHECK_NEAR(r.acc_stderr, sqrt(0.25 / 3), 1e-12);
    CHECK_NEAR(r.acc_norm_stderr, sqrt(0.25 * 0.75 / 3), 1e-12);
    CHECK(f.bad_calls == 0 && f.calls_without_bos == 0);
    /* The last call scored " xx" after BOS + context: 3 tokens. */
    CHECK(f.last_n - f.last_first == 3);
    CHECK(strcmp(f.last_text, "Fourth context. xx") == 0);

    /* k-shot: exemplars are other tasks with their gold ending, then a blank line. */
    o.shots = 2;
    o.limit = 1;
    CHECK(ellm_eval_multiple_choice(&lm, &set, &o, &r, &err) == ELLM_OK);
    CHECK(r.n == 1);
    CHECK(strstr(f.last_text, "First context.") == strstr(f.last_text, "\n\nFirst context. ") + 2);
    int exemplars = (strstr(f.last_text, "Second context. " "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n\n") != NULL) +
                    (strstr(f.last_text, "Third context. xx\n\n") != NULL) +
                    (strstr(f.last_text, "Fourth context. b\n\n") != NULL);
    CHECK(exemplars == 2);
    /* Same seed, same prompt; the score of the ending does not depend on shots. */
    char *first_prompt = ellm_strdup(f.last_text);
    CHECK(ellm_eval_multiple_choice(&lm, &set, &o, &r, &err) == ELLM_OK);
    CHECK(strcmp(first_prompt, f.last_text) == 0);
    free(first_prompt);
    /* Too many shots for the set is an argument error. */
    o.shots = 4;
    CHECK(ellm_eval_multiple_choice(&lm, &set, &o, &r, &err) == ELLM_E_ARG);

    /* A context longer than the model's is cut on the left; BOS stays. */
    fake_lm g;
    ellm_lm small;
    fake_init(&g, &small, 16);
    for (int v = 0; v < FAKE_VOCAB; v++) g.lp[v] = f.lp[v];
    o.shots = 0;
    o.limit = 0;
    CHECK(ellm_eval_multiple_choice(&small, &set, &o, &r, &err) == ELLM_E_ARG); /* " "+30 a's > 16 */
    ellm_mc_set short_set = {1, calloc(1, sizeof(ellm_mc_task))};
    short_set.tasks[0] = make_task("A long context that does not fit sixteen tokens.", "x", "aaaaaaaaaaa", "zz", "b", 1);
    CHECK(ellm_eval_multiple_choice(&small, &short_set, &o, &r, &err) == ELLM_OK);
    CHECK(r.truncated == 1 && r.correct == 0 && r.correct_norm == 1);
    CHECK(g.bad_calls == 0 && g.calls_without_bos == 0 && g.last_n == 16);
    ellm_mc_free(&short_set);
    ellm_mc_free(&set);
    fake_free(&f);
    fake_free(&g);
}

static void test_mc_parsers(void) {
    ellm_error err = {0};
    ellm_mc_set s;
    const char *ok = "Ctx one\n2\ne0\ne1\ne2\ne3\r\nCtx two\r\n0\r\na\r\nb\r\nc\r\nd\r\n";
    CHECK(ellm_mc_parse_text(ok, strlen(ok), "t.txt", &s, &err) == ELLM_OK);
    CHECK(s.n == 2 && s.tasks[0].label == 2 && s.tasks[1].label == 0);
    CHECK(strcmp(s.tasks[1].context, "Ctx two") == 0 && strcmp(s.tasks[1].endings[3], "d") == 0);
    ellm_mc_free(&s);
    const char *truncated = "Ctx one\n2\ne0\ne1\ne2\ne3\nCtx two\n1\na\n";
    CHECK(ellm_mc_parse_text(truncated, strlen(truncated), "t.txt", &s, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "t.txt") && strstr(err.message, "truncated"));
    const char *bad_label = "Ctx\n4\na\nb\nc\nd\n";
    CHECK(ellm_mc_parse_text(bad_label, strlen(bad_label), "t.txt", &s, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "line 2") != NULL);
    CHECK(ellm_mc_parse_text("", 0, "t.txt", &s, &err) == ELLM_E_FORMAT);

    /* lm-eval-harness preprocessing of the original .jsonl */
    char *p = ellm_hellaswag_preprocess("  Making a cake [title] Mix flour. [step] Add  eggs.  ");
    CHECK(p && strcmp(p, "Making a cake. Mix flour. Add eggs.") == 0);
    free(p);
    const char *jl =
        "{\"ind\": 4, \"activity_label\": \"Removing ice from car\", \"ctx_a\": \"Then, the man writes over the snow.\", "
        "\"ctx_b\": \"THEN, the man\", \"ctx\": \"ignored\", \"endings\": [\" [header] e0\", \"e1\", \"e2\", \"e3\"], \"label\": 3}\n"
        "\n"
        "{\"activity_label\": \"Baking\", \"ctx\": \"She [title] mixes.\", \"endings\": [\"a\",\"b\",\"c\",\"d\"], \"label\": \"1\"}\n";
    CHECK(ellm_mc_parse_jsonl(jl, strlen(jl), "h.jsonl", &s, &err) == ELLM_OK);
    CHECK(s.n == 2);
    if (s.n == 2) {
        CHECK(strcmp(s.tasks[0].context, "Removing ice from car: Then, the man writes over the snow. Then, the man") == 0);
        CHECK(strcmp(s.tasks[0].endings[0], " e0") == 0 && s.tasks[0].label == 3); /* as lm-eval: strip first */
        CHECK(strcmp(s.tasks[1].context, "Baking: She. mixes.") == 0 && s.tasks[1].label == 1);
    }
    ellm_mc_free(&s);
    const char *jbad = "{\"ctx\": \"x\", \"endings\": [\"a\", \"b\", \"c\"], \"label\": 0}\n";
    CHECK(ellm_mc_parse_jsonl(jbad, strlen(jbad), "h.jsonl", &s, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "line 1") != NULL);
    const char *jlabel = "{\"ctx\": \"x\", \"endings\": [\"a\", \"b\", \"c\", \"d\"], \"label\": \"\"}\n";
    CHECK(ellm_mc_parse_jsonl(jlabel, strlen(jlabel), "h.jsonl", &s, &err) == ELLM_E_FORMAT);
    CHECK(ellm_mc_parse_jsonl("{not json\n", 10, "h.jsonl", &s, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "h.jsonl: line 1: not a JSON object") != NULL, "%s", err.message);
}

/* The JSON-lines reader both .jsonl parsers use: blank lines skipped but
 * counted, every object passed once in order, a bad line named, the
 * callback's failure returned as it is. */
typedef struct jsonl_seen {
    int n, stop_at;
    size_t lines[4];
    const char *a[4];
} jsonl_seen;

static ellm_status on_jsonl(void *user, const json_t *o, const char *what, size_t line_no, ellm_error *err) {
    jsonl_seen *s = user;
    if (s->n == s->stop_at) return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: line %zu: stop", what, line_no);
    s->lines[s->n] = line_no;
    s->a[s->n++] = ellm_json_string(o, "a") ? "string" : "other";
    return ELLM_OK;
}

static void test_jsonl_reader(void) {
    const char *good = "{\"a\": \"x\"}\n\n  \r\n{\"a\": 5}";
    ellm_error err = {0};
    jsonl_seen s = {.stop_at = -1};
    CHECK(ellm_jsonl_each(good, strlen(good), "t.jsonl", on_jsonl, &s, &err) == ELLM_OK);
    CHECK(s.n == 2 && s.lines[0] == 1 && s.lines[1] == 4, "%d objects, lines %zu %zu", s.n, s.lines[0], s.lines[1]);
    CHECK(s.n == 2 && !strcmp(s.a[0], "string") && !strcmp(s.a[1], "other"));
    const char *bad = "{\"a\": \"x\"}\n[1, 2]\n{\"a\": \"y\"}\n";
    s = (jsonl_seen){.stop_at = -1};
    CHECK(ellm_jsonl_each(bad, strlen(bad), "t.jsonl", on_jsonl, &s, &err) == ELLM_E_FORMAT && s.n == 1);
    CHECK(strstr(err.message, "t.jsonl: line 2: not a JSON object") != NULL, "%s", err.message);
    s = (jsonl_seen){.stop_at = 1};
    CHECK(ellm_jsonl_each(good, strlen(good), "t.jsonl", on_jsonl, &s, &err) == ELLM_E_UNSUPPORTED && s.n == 1);
    CHECK(strstr(err.message, "t.jsonl: line 4: stop") != NULL, "%s", err.message);
    s = (jsonl_seen){.stop_at = -1};
    CHECK(ellm_jsonl_each("", 0, "t.jsonl", on_jsonl, &s, &err) == ELLM_OK && s.n == 0);
}

static void test_story_task(void) {
    ellm_error err = {0};
    const char *text =
        "Tom had a dog. The dog was big. They played all day. Tom was happy!\n<|endoftext|>\n"
        "Sue saw a bird. \"Hello,\" said Sue. The bird sang a song.\n<|endoftext|>\n"
        "Max liked cake. He ate it fast. Then he felt sick.\n<|endoftext|>\n"
        "Lily had a red ball. She threw it high? It flew over the tree.\n<|endoftext|>\n"
        "One sentence only.\n<|endoftext|>\n";
    char *out = NULL, *out2 = NULL;
    size_t len = 0, len2 = 0, n = 0, n2 = 0;
    CHECK(ellm_build_story_task(text, strlen(text), 7, 1, 0, &out, &len, &n, &err) == ELLM_OK);
    CHECK(n == 4);
    CHECK(ellm_build_story_task(text, strlen(text), 7, 1, 0, &out2, &len2, &n2, &err) == ELLM_OK);
    CHECK(len == len2 && memcmp(out, out2, len) == 0); /* deterministic */
    ellm_mc_set s;
    CHECK(ellm_mc_parse_text(out, len, "story", &s, &err) == ELLM_OK);
    if (s.n != 4) fprintf(stderr, "%s\n---\n%.*s", err.message, (int)len, out);
    CHECK(s.n == 4);
    for (size_t i = 0; i < s.n; i++) {
        const ellm_mc_task *t = &s.tasks[i];
        /* the gold ending follows the context in the source text */
        size_t cl = strlen(t->context);
        char *joined = malloc(cl + strlen(t->endings[t->label]) + 2);
        if (!joined) abort();
        sprintf(joined, "%s %s", t->context, t->endings[t->label]);
        CHECK(strstr(text, joined) != NULL);
        free(joined);
        for (int e = 0; e < 4; e++) {
            CHECK(strchr(t->endings[e], '\n') == NULL && t->endings[e][0]);
            if (e != t->label) CHECK(strstr(text, t->context) != NULL && strcmp(t->endings[e], t->endings[t->label]) != 0);
        }
    }
    ellm_mc_free(&s);
    free(out), free(out2);
    CHECK(ellm_build_story_task("just one.", 9, 1, 1, 0, &out, &len, &n, &err) == ELLM_E_ARG);
    CHECK(ellm_build_story_task("A b. C\0d. E f.", 15, 1, 1, 0, &out, &len, &n, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "offset 6") != NULL);
    CHECK(ellm_build_story_task(text, strlen(text), 7, 0, 0, &out, &len, &n, &err) == ELLM_E_ARG);
}

static void test_gsm8k_extraction(void) {
    char b[64];
    struct { const char *in, *want; } norm[] = {
        {"1,000", "1000"}, {"$5", "5"}, {"5.0", "5"}, {"5.50", "5.5"}, {"-3.", "-3"}, {"+2", "2"},
        {"0.50", "0.5"}, {"-0", "0"}, {"007", "7"}, {" 18 ", "18"}, {"-$1,234.500", "-1234.5"},
        {"$-7", "-7"}, {".5", "0.5"}, {"10", "10"}, {"0", "0"},
    };
    for (size_t i = 0; i < sizeof norm / sizeof norm[0]; i++) {
        bool ok = ellm_gsm_normalize(norm[i].in, strlen(norm[i].in), b, sizeof b);
        CHECK(ok && strcmp(b, norm[i].want) == 0);
        if (!ok || strcmp(b, norm[i].want)) fprintf(stderr, "  normalize('%s') = '%s'\n", norm[i].in, b);
    }
    CHECK(!ellm_gsm_normalize("abc", 3, b, sizeof b));
    CHECK(!ellm_gsm_normalize("", 0, b, sizeof b));
    CHECK(!ellm_gsm_normalize("1.2.3", 5, b, sizeof b));

    CHECK(ellm_gsm_extract_reference("She makes 9 * 2 = $<<9*2=18>>18.\n#### 18", b, sizeof b) && !strcmp(b, "18"));
    CHECK(ellm_gsm_extract_reference("x\n#### 1,250", b, sizeof b) && !strcmp(b, "1250"));
    CHECK(ellm_gsm_extract_reference("#### 3\n#### -4", b, sizeof b) && !strcmp(b, "-4"));
    CHECK(!ellm_gsm_extract_reference("no marker 5", b, sizeof b));
    CHECK(!ellm_gsm_extract_reference("#### none", b, sizeof b));

    struct { const char *in, *want; } pred[] = {
        {" She has 3 apples, then 5. The answer is 8.", "8"},
        {"The answer is $1,000. Extra 7 words 9", "1000"},
        {"the ANSWER is 12.50 dollars", "12.5"},
        {"First 3, then 4, finally 42", "42"},
        {"The answer is 5. ... The answer is 6.", "6"},
        {"The answer is unknown, but 3 and -2", "3"}, /* first number after the marker */
        {"It costs $5.00.", "5"},
    };
    for (size_t i = 0; i < sizeof pred / sizeof pred[0]; i++) {
        bool ok = ellm_gsm_extract_prediction(pred[i].in, b, sizeof b);
        CHECK(ok && strcmp(b, pred[i].want) == 0);
        if (!ok || strcmp(b, pred[i].want)) fprintf(stderr, "  predict('%s') = '%s'\n", pred[i].in, b);
    }
    CHECK(!ellm_gsm_extract_prediction("no numbers here", b, sizeof b));

    ellm_gsm_item it = {"How many?", "He has 2 + 3 = <<2+3=5>>5 apples.\nThen 5 * 2 = <<5*2=10>>10.\n#### 10", "10"};
    char *ex = ellm_gsm_exemplar(&it);
    CHECK(ex && strcmp(ex, "Question: How many?\nAnswer: He has 2 + 3 = 5 apples. Then 5 * 2 = 10. The answer is 10.") == 0);
    if (ex && strcmp(ex, "Question: How many?\nAnswer: He has 2 + 3 = 5 apples. Then 5 * 2 = 10. The answer is 10.")) fprintf(stderr, "  exemplar: %s\n", ex);
    free(ex);
}

static void test_gsm8k_eval(void) {
    ellm_error err = {0};
    const char *train_jl =
        "{\"question\": \"Q1?\", \"answer\": \"1 + 1 = <<1+1=2>>2\\n#### 2\"}\n"
        "{\"question\": \"Q2?\", \"answer\": \"2 * 3 = <<2*3=6>>6\\n#### 6\"}\n"
        "{\"question\": \"Q3?\", \"answer\": \"so 7\\n#### 7\"}\n";
    const char *test_jl =
        "{\"question\": \"How much?\", \"answer\": \"#### 1,000\"}\n"
        "{\"question\": \"How many?\", \"answer\": \"#### 5\"}\n";
    ellm_gsm_set train, test;
    CHECK(ellm_gsm_parse(train_jl, strlen(train_jl), "train", &train, &err) == ELLM_OK && train.n == 3);
    CHECK(ellm_gsm_parse(test_jl, strlen(test_jl), "test", &test, &err) == ELLM_OK && test.n == 2);
    CHECK(!strcmp(test.items[0].target, "1000"));
    fake_lm f;
    ellm_lm lm;
    fake_init(&f, &lm, 512);
    /* The model writes its reasoning, the answer and goes on to a new question. */
    f.script = " It is 10 times 100. The answer is $1,000.\n\nQuestion: What";
    ellm_gsm_options o = {.shots = 2, .max_tokens = 100, .limit = 1};
    ellm_gsm_result r;
    CHECK(ellm_eval_gsm8k(&lm, &test, &train, &o, &r, &err) == ELLM_OK);
    CHECK(r.n == 1 && r.correct == 1);
    /* The prompt: 2 exemplars then the question. */
    CHECK(strstr(f.last_text, "Question: How much?\nAnswer:") != NULL);
    CHECK(strstr(f.last_text, "The answer is ") != NULL && strstr(f.last_text, ".\n\nQuestion: How much?") != NULL);
    CHECK(strncmp(f.last_text, "Question: Q", 11) == 0);
    /* The generation stopped at the blank line: fewer tokens than the script. */
    CHECK(r.generated_tokens == strlen(" It is 10 times 100. The answer is $1,000.\n\n"));
    /* Wrong answer, and the generation cap. */
    f.prompt_len = 0;
    f.script = " The answer is 6 and more and more and more";
    o.max_tokens = 10;
    o.limit = 2;
    CHECK(ellm_eval_gsm8k(&lm, &test, &train, &o, &r, &err) == ELLM_OK);
    CHECK(r.n == 2 && r.correct == 0 && r.generated_tokens <= 20);
    o.shots = 4; /* more than train holds */
    CHECK(ellm_eval_gsm8k(&lm, &test, &train, &o, &r, &err) == ELLM_E_ARG);
    CHECK(f.bad_calls == 0);
    fake_free(&f);
    ellm_gsm_free(&train);
    ellm_gsm_free(&test);
    const char *bad = "{\"question\": \"Q?\", \"answer\": \"no final line\"}\n";
    CHECK(ellm_gsm_parse(bad, strlen(bad), "bad.jsonl", &train, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "bad.jsonl: line 1") != NULL);
    const char *notjson = "{\"question\": 5}\n";
    CHECK(ellm_gsm_parse(notjson, strlen(notjson), "bad.jsonl", &train, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "bad.jsonl: line 1: expected {\"question\": string") != NULL, "%s", err.message);
    const char *garbage = "\n{\"question\": \"Q?\", \"answer\": \"#### 1\"}\n{oops\n";
    CHECK(ellm_gsm_parse(garbage, strlen(garbage), "bad.jsonl", &train, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "bad.jsonl: line 3: not a JSON object") != NULL, "%s", err.message);
}

static void test_stats(void) {
    double v[] = {5, 1, 4, 2, 3};
    CHECK_NEAR(ellm_median(v, 5), 3, 0);
    CHECK_NEAR(ellm_median(v, 4), 3, 0); /* {1,2,4,5} */
    CHECK_NEAR(ellm_stderr_binary(1, 2), sqrt(0.25), 1e-15);
    CHECK(ellm_stderr_binary(0, 1) == 0);
    float logits[3] = {1, 2, 3};
    double lse = log(exp(1) + exp(2) + exp(3));
    CHECK_NEAR(ellm_log_softmax_at(logits, 3, 0), 1 - lse, 1e-12);
    float big[2] = {1000, 1000};
    CHECK_NEAR(ellm_log_softmax_at(big, 2, 1), -log(2), 1e-12);
}

int main(void) {
    test_stats();
    test_perplexity();
    test_multiple_choice();
    test_mc_parsers();
    test_jsonl_reader();
    test_story_task();
    test_gsm8k_extraction();
    test_gsm8k_eval();
    return test_finish("eval logic");
}
