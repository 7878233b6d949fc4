/* test_data.c - the evaluation parsers on the real, unchanged files in
 * $ELLM_DATA_DIR: HellaSwag (llama.cpp text form, 10042 tasks), GSM8k test
 * and train (1319 / 7473 questions, every reference answer a number),
 * WikiText-2 raw, and the story-ending task built from TinyStories. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/testing.h"
#include "eval/eval.h"

static void test_hellaswag(void) {
    char *p = test_data_path("hellaswag/hellaswag_val_full.txt");
    ellm_mc_set s;
    ellm_error err = {0};
    ellm_status st = ellm_mc_load(p, &s, &err);
    if (st != ELLM_OK) fprintf(stderr, "%s\n", err.message);
    CHECK(st == ELLM_OK);
    CHECK(s.n == 10042);
    size_t per_label[4] = {0};
    for (size_t i = 0; i < s.n; i++) {
        CHECK(s.tasks[i].label >= 0 && s.tasks[i].label <= 3);
        per_label[s.tasks[i].label]++;
        for (int e = 0; e < 4; e++) CHECK(s.tasks[i].endings[e] != NULL);
    }
    for (int l = 0; l < 4; l++) CHECK(per_label[l] > 2000); /* gold labels are balanced */
    if (s.n > 1) {
        CHECK(strcmp(s.tasks[0].context, "Roof shingle removal: A man is sitting on a roof. he") == 0);
        CHECK(s.tasks[0].label == 3);
        CHECK(strcmp(s.tasks[0].endings[3], "starts pulling up roofing on a roof.") == 0);
        CHECK(strcmp(s.tasks[1].endings[3], "stands and lifts the weight over her head.") == 0);
    }
    ellm_mc_free(&s);
    free(p);
}

static void test_gsm8k(void) {
    ellm_error err = {0};
    ellm_gsm_set test, train;
    char *pt = test_data_path("gsm8k/test.jsonl"), *pr = test_data_path("gsm8k/train.jsonl");
    ellm_status st = ellm_gsm_load(pt, &test, &err);
    if (st != ELLM_OK) fprintf(stderr, "%s\n", err.message);
    CHECK(st == ELLM_OK && test.n == 1319);
    st = ellm_gsm_load(pr, &train, &err);
    if (st != ELLM_OK) fprintf(stderr, "%s\n", err.message);
    CHECK(st == ELLM_OK && train.n == 7473);
    /* ellm_gsm_load refuses an answer without a number; spot-check targets */
    if (test.n == 1319) {
        CHECK(strcmp(test.items[0].target, "18") == 0);
        CHECK(strcmp(test.items[1].target, "3") == 0);
        CHECK(strncmp(test.items[0].question, "Janet\xe2\x80\x99s ducks lay 16 eggs", 23) == 0);
    }
    /* every exemplar built from train ends with its answer */
    for (size_t i = 0; i < train.n; i++) {
        char *ex = ellm_gsm_exemplar(&train.items[i]);
        CHECK(ex != NULL);
        if (!ex) break;
        char pred[64];
        CHECK(ellm_gsm_extract_prediction(ex, pred, sizeof pred) && strcmp(pred, train.items[i].target) == 0);
        CHECK(strstr(ex, "<<") == NULL && strstr(ex, "####") == NULL);
        free(ex);
    }
    ellm_gsm_free(&test);
    ellm_gsm_free(&train);
    free(pt), free(pr);
}

static void test_wikitext(void) {
    char *p = test_data_path("wikitext2/wiki.test.raw");
    uint8_t *data;
    size_t size;
    ellm_error err = {0};
    CHECK(ellm_read_file(p, &data, &size, &err) == ELLM_OK);
    CHECK(size == 1290590);
    size_t lines = 0;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    CHECK(lines == 4358);
    free(data);
    free(p);
}

static void test_story_task(void) {
    char *p = test_data_path("tinystories/validation_100.txt");
    uint8_t *data;
    size_t size;
    ellm_error err = {0};
    CHECK(ellm_read_file(p, &data, &size, &err) == ELLM_OK);
    char *out = NULL;
    size_t len = 0, n = 0;
    ellm_status st = ellm_build_story_task((const char *)data, size, 1, 1, 0, &out, &len, &n, &err);
    if (st != ELLM_OK) fprintf(stderr, "%s\n", err.message);
    CHECK(st == ELLM_OK && n == 100);
    ellm_mc_set s;
    CHECK(ellm_mc_parse_text(out, len, "story task", &s, &err) == ELLM_OK && s.n == n);
    size_t per_label[4] = {0};
    for (size_t i = 0; i < s.n; i++) {
        const ellm_mc_task *t = &s.tasks[i];
        per_label[t->label]++;
        for (int e = 0; e < 4; e++) CHECK(strlen(t->endings[e]) > 0);
        /* the gold ending is a sentence of the text; the context starts a story */
        CHECK(strstr((const char *)data, t->endings[t->label]) != NULL);
    }
    for (int l = 0; l < 4; l++) CHECK(per_label[l] >= 10);
    ellm_mc_free(&s);
    free(out);
    /* three cuts per story: more tasks, each gold ending right after its context */
    st = ellm_build_story_task((const char *)data, size, 1, 3, 0, &out, &len, &n, &err);
    CHECK(st == ELLM_OK && n > 250 && n <= 300);
    CHECK(ellm_mc_parse_text(out, len, "story task", &s, &err) == ELLM_OK && s.n == n);
    for (size_t i = 0; i < s.n; i++) {
        const ellm_mc_task *t = &s.tasks[i];
        CHECK(strstr((const char *)data, t->endings[t->label]) != NULL);
        if (i > 0 && strcmp(s.tasks[i - 1].context, t->context) == 0) CHECK(0); /* distinct cuts */
    }
    ellm_mc_free(&s);
    free(out);
    free(data);
    free(p);
}

int main(void) {
    test_hellaswag();
    test_gsm8k();
    test_wikitext();
    test_story_task();
    return test_finish("eval data parsers");
}
