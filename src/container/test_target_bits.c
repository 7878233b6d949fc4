/* test_target_bits.c - `compress --target-bits` on the real stories260K:
 * the coded payload stays within the target, every tensor is uint8 or uint4
 * and both occur, the file's directory says what the report says, it loads
 * and its perplexity (llama.cpp windows over a slice of the TinyStories
 * validation stories) lies between the all-uint8 and all-uint4 files';
 * a target at or above the all-uint8 size gives the all-uint8 file; the
 * relative error measure chooses otherwise, within the target too; bad
 * targets fail with ELLM_E_ARG and leave no output file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/testing.h"
#include "container/container.h"
#include "eval/eval.h"

typedef struct variant {
    const char *name;
    int bits;      /* 8 or 4; 0: target_bits */
    double target; /* --target-bits */
    ellm_alloc_error alloc;
    ellm_compress_report *rep;
    double ppl;
    char path[512];
} variant;

static ellm_status compress(const char *model, const char *dir, variant *v, ellm_error *err) {
    snprintf(v->path, sizeof v->path, "%s/%s.ellm", dir, v->name);
    ellm_compress_options o;
    ellm_compress_options_default(&o);
    o.n_threads = 2;
    if (v->bits) o.bits = v->bits;
    else o.target_bits = v->target;
    o.alloc_error = v->alloc;
    return ellm_compress(model, v->path, &o, &v->rep, err);
}

/* Perplexity over the first windows of 256 tokens of the stories. */
static double perplexity(const char *path, const char *text, size_t len) {
    ellm_error err = {0};
    ellm_model *m = NULL;
    ellm_lm lm;
    if (ellm_eval_open(path, 2, NULL, NULL, &m, &lm, &err)) {
        CHECK(0, "%s does not load: %s", path, err.message);
        return NAN;
    }
    ellm_ppl_options po = {.n_ctx = 256, .limit = 6};
    ellm_ppl_result res;
    ellm_status s = ellm_eval_perplexity(&lm, text, len, &po, &res, &err);
    CHECK(s == ELLM_OK && res.windows == 6, "perplexity of %s: %s", path, err.message);
    ellm_eval_close(m, &lm);
    return s ? NAN : res.ppl;
}

/* The mixed file: within the target, both widths, the directory agrees. */
static void check_mixed(const variant *v) {
    const ellm_compress_report *r = v->rep;
    CHECK(r->target_bits == v->target, "report target %g", r->target_bits);
    CHECK(r->coded_bits_per_weight <= v->target && r->payload_bytes * 8 <= (uint64_t)(v->target * (double)r->params),
          "%s: payload %.4f bits/weight over the target %g", v->name, r->coded_bits_per_weight, v->target);
    /* and it uses the budget: within 2% of it */
    CHECK(r->coded_bits_per_weight > 0.98 * v->target, "%s: payload %.4f far below the target", v->name,
          r->coded_bits_per_weight);
    size_t n8 = 0, n4 = 0;
    ellm_error err = {0};
    ellm_file *f = NULL;
    CHECK(ellm_file_open(v->path, &f, &err) == ELLM_OK, "%s", err.message);
    uint64_t payload = 0;
    for (size_t i = 0; f && i < r->n_tensors; i++) {
        const ellm_tensor_report *t = &r->tensors[i];
        const ellm_ftensor *ft = &f->tensors[i];
        n8 += t->bits == 8, n4 += t->bits == 4;
        CHECK(t->bits == 8 || t->bits == 4, "%s: %d bits", t->name, t->bits);
        /* (a group as long as a row reads back as row granularity) */
        CHECK(ft->bits == t->bits && ft->group_size == t->group_size,
              "%s: the file says %d bits, group %llu", t->name, ft->bits, (unsigned long long)ft->group_size);
        CHECK(t->bits == 4 || t->granularity == ELLM_GRAN_TENSOR, "%s: uint8 is per tensor", t->name);
        CHECK(t->granularity != ELLM_GRAN_GROUP ||
                  (t->group_size == 32 || t->group_size == 64 || t->group_size == 128),
              "%s: group %u", t->name, t->group_size);
        payload += ft->payload_size;
    }
    CHECK(payload == r->payload_bytes, "%s: file payload %llu, report %llu", v->name, (unsigned long long)payload,
          (unsigned long long)r->payload_bytes);
    CHECK(n8 > 0 && n4 > 0, "%s: %zu uint8 and %zu uint4 tensors", v->name, n8, n4);
    ellm_file_close(f);
}

static void check_bad_targets(const char *model, const char *dir) {
    const double bad[] = {1.0, 9.0, -1.0, NAN};
    for (size_t i = 0; i < ELLM_ARRAY_LEN(bad); i++) {
        variant v = {.name = "bad", .target = bad[i]};
        ellm_error err = {0};
        ellm_status s = compress(model, dir, &v, &err);
        CHECK(s == ELLM_E_ARG && strstr(err.message, "--target-bits"), "target %g: %d %s", bad[i], s, err.message);
        CHECK(!ellm_path_exists(v.path), "target %g left %s", bad[i], v.path);
        /* below the reachable: the message gives the smallest reachable size */
        if (bad[i] == 1.0)
            CHECK(strstr(err.message, "smallest payload") && strstr(err.message, "bits/weight"), "%s", err.message);
        ellm_compress_report_free(v.rep);
    }
}

int main(void) {
    const char *data = test_data_dir();
    if (!data) return test_finish("test_target_bits");
    char *model = ellm_path_join(data, "stories260K/stories260K.bin");
    char *text_path = ellm_path_join(data, "tinystories/validation_100.txt");
    uint8_t *text = NULL;
    size_t len = 0;
    ellm_error err = {0};
    CHECK(ellm_read_file(text_path, &text, &len, &err) == ELLM_OK, "%s", err.message);
    char dir[] = "/tmp/ellm-target-bits-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");

    variant v[] = {{.name = "u8", .bits = 8},
                   {.name = "t6", .target = 6},
                   {.name = "t5", .target = 5},
                   {.name = "u4", .bits = 4},
                   {.name = "t8", .target = 8},
                   {.name = "t5rel", .target = 5, .alloc = ELLM_ALLOC_RELATIVE}};
    size_t nv = ELLM_ARRAY_LEN(v);
    for (size_t i = 0; i < nv; i++) {
        ellm_status s = compress(model, dir, &v[i], &err);
        CHECK(s == ELLM_OK, "compress %s: %s", v[i].name, err.message);
        if (s) goto out;
    }
    check_mixed(&v[1]);
    check_mixed(&v[2]);
    /* more bits, less error: uint8 < t6 < t5 < uint4 */
    for (size_t i = 0; i + 1 < 4; i++)
        CHECK(v[i].rep->sq_error < v[i + 1].rep->sq_error, "%s %.4g vs %s %.4g", v[i].name, v[i].rep->sq_error,
              v[i + 1].name, v[i + 1].rep->sq_error);
    for (size_t i = 0; i < 4; i++) v[i].ppl = perplexity(v[i].path, (const char *)text, len);
    for (size_t i = 0; i + 1 < 4; i++)
        CHECK(v[i].ppl < v[i + 1].ppl, "perplexity %s %.4f vs %s %.4f", v[i].name, v[i].ppl, v[i + 1].name,
              v[i + 1].ppl);
    printf("perplexity (6 windows of 256): uint8 %.4f, target 6 %.4f, target 5 %.4f, uint4 %.4f\n", v[0].ppl,
           v[1].ppl, v[2].ppl, v[3].ppl);
    /* a target at or above the all-uint8 size: every tensor uint8, the same payload */
    CHECK(v[4].rep->payload_bytes == v[0].rep->payload_bytes && v[4].rep->sq_error == v[0].rep->sq_error,
          "target 8: %llu bytes, all-uint8 %llu", (unsigned long long)v[4].rep->payload_bytes,
          (unsigned long long)v[0].rep->payload_bytes);
    /* the relative measure: within the target too, another choice, and
     * more squared error than the allocation that minimises it */
    check_mixed(&v[5]);
    CHECK(v[5].rep->sq_error > v[2].rep->sq_error, "relative %.4g, sse %.4g", v[5].rep->sq_error,
          v[2].rep->sq_error);
    check_bad_targets(model, dir);
out:
    for (size_t i = 0; i < nv; i++) {
        remove(v[i].path);
        ellm_compress_report_free(v[i].rep);
    }
    rmdir(dir);
    free(text);
    free(model);
    free(text_path);
    return test_finish("test_target_bits");
}
