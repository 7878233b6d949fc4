/* bench_tokenize.c - `entrollm bench tokenize`: encoding speed per tokenizer
 * kind on a real text (WikiText-2's wiki.test.raw by default). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm bench tokenize [MODEL...] [options]\n"
            "\n"
            "Encodes a text file with each tokenizer (the whole file in one call, no BOS) and\n"
            "reports tokens per second and MB per second (median of the repeats), the load\n"
            "time, and whether decoding the ids gives the file back byte for byte.\n"
            "MODEL is anything `entrollm tokenize` accepts. Without MODEL, the tokenizers of\n"
            "the reference data (ELLM_DATA_DIR, else ../shared/data) are used: one per kind\n"
            "and loader (SentencePiece .model and tokenizer.json, byte-level BPE\n"
            "tokenizer.json and GGUF, llama2.c .bin).\n"
            "\n"
            "Options:\n");
    cli_print_options(out, opts);
}

typedef struct result {
    const char *label, *path;
    const char *kind;
    size_t tokens;
    double load_s, median_s;
    int lossless;
} result;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_one(const char *label, const char *path, const uint8_t *text, size_t len, int repeat,
                     result *r) {
    ellm_error err = {0};
    ellm_tokenizer *t;
    double t0 = ellm_now();
    if (ellm_tokenizer_load(path, &t, &err)) return cli_report_error(&err);
    r->load_s = ellm_now() - t0;
    r->label = label;
    r->path = path;
    r->kind = ellm_tokenizer_kind_name(t);
    double times[64];
    int32_t *ids = NULL;
    size_t n = 0;
    for (int i = 0; i < repeat; i++) {
        free(ids);
        t0 = ellm_now();
        if (ellm_tokenize(t, (const char *)text, len, 0, 0, &ids, &n, &err)) {
            ellm_tokenizer_free(t);
            return cli_report_error(&err);
        }
        times[i] = ellm_now() - t0;
    }
    qsort(times, (size_t)repeat, sizeof times[0], cmp_double);
    r->median_s = times[repeat / 2];
    r->tokens = n;
    char *back;
    size_t blen;
    r->lossless = 0;
    if (ellm_detokenize(t, ids, n, &back, &blen, &err) == ELLM_OK) {
        r->lossless = blen == len && !memcmp(back, text, len);
        free(back);
    }
    free(ids);
    ellm_tokenizer_free(t);
    return EXIT_OK;
}

int bench_tokenize_main(int argc, char **argv) {
    const char *text_path = NULL;
    long repeat = 3;
    bool json = false;
    const cli_opt opts[] = {
        {CLI_STRING("--text", NULL, &text_path, "FILE",
                    "text to encode (default: DATA/wikitext2/wiki.test.raw, 1.3 MB)")},
        {CLI_INT("--repeat", NULL, &repeat, 1, 64, "N",
                 "timed encodings per tokenizer (default 3; the median is reported)")},
        {CLI_FLAG("--json", NULL, &json, "print one JSON object: text, bytes, cpu, results[]")},
        {0},
    };
    const char *models[32];
    int n_models, rc = cli_parse("bench tokenize", argc, argv, opts, models, (int)ELLM_ARRAY_LEN(models), &n_models);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    const char *env = getenv("ELLM_DATA_DIR");
    const char *data = env && *env ? env : "../shared/data";
    static const struct {
        const char *label, *rel;
    } defaults[] = {
        {"Llama 2 tokenizer.model (SentencePiece BPE, scores)", "llama2_tokenizer/tokenizer.model"},
        {"Phi-3.5 tokenizer.json (SentencePiece-style BPE, merges)", "hf/phi-3.5-mini-instruct/tokenizer.json"},
        {"SmolLM2 tokenizer.json (byte-level BPE)", "hf/smollm2-1.7b-resaved/tokenizer.json"},
        {"GPT-2 vocabulary GGUF (byte-level BPE)", "vocab/ggml-vocab-gpt-2.gguf"},
        {"Llama 2 tokenizer.bin (llama2.c)", "llama2_tokenizer/tokenizer.bin"},
        {"stories260K tok512.bin (llama2.c)", "stories260K/tok512.bin"},
    };
    char *owned[ELLM_ARRAY_LEN(defaults) + 1] = {0};
    const char *labels[32];
    if (n_models == 0) {
        for (size_t i = 0; i < ELLM_ARRAY_LEN(defaults); i++) {
            owned[i] = ellm_path_join(data, defaults[i].rel);
            models[n_models] = owned[i];
            labels[n_models++] = defaults[i].label;
        }
    } else {
        for (int i = 0; i < n_models; i++) labels[i] = models[i];
    }
    char *default_text = NULL;
    if (!text_path) text_path = default_text = ellm_path_join(data, "wikitext2/wiki.test.raw");
    ellm_error err = {0};
    uint8_t *text;
    size_t len;
    rc = EXIT_OK;
    if (ellm_read_file(text_path, &text, &len, &err)) {
        rc = cli_report_error(&err);
        goto done;
    }
    result res[32];
    memset(res, 0, sizeof res);
    if (!json) {
        printf("text: %s (%zu bytes); cpu: %s; median of %ld encodings, one thread\n\n", text_path, len,
               ellm_cpu_features(), repeat);
        printf("%-58s %-8s %9s %8s %11s %8s %8s\n", "tokenizer", "kind", "tokens", "load s", "tokens/s", "MB/s",
               "lossless");
    }
    for (int i = 0; i < n_models; i++) {
        rc = bench_one(labels[i], models[i], text, len, (int)repeat, &res[i]);
        if (rc) break;
        if (!json) {
            printf("%-58s %-8s %9zu %8.3f %11.0f %8.2f %8s\n", labels[i], res[i].kind, res[i].tokens, res[i].load_s,
                   (double)res[i].tokens / res[i].median_s, (double)len / res[i].median_s / 1e6,
                   res[i].lossless ? "yes" : "no");
            fflush(stdout);
        }
    }
    if (!rc && json) {
        json_t *o = json_object(), *arr = json_array();
        json_object_set_new(o, "text", json_string(text_path));
        json_object_set_new(o, "bytes", json_integer((json_int_t)len));
        json_object_set_new(o, "cpu", json_string(ellm_cpu_features()));
        json_object_set_new(o, "repeat", json_integer(repeat));
        for (int i = 0; i < n_models; i++) {
            json_t *r = json_object();
            json_object_set_new(r, "tokenizer", json_string(res[i].label));
            json_object_set_new(r, "path", json_string(res[i].path));
            json_object_set_new(r, "kind", json_string(res[i].kind));
            json_object_set_new(r, "tokens", json_integer((json_int_t)res[i].tokens));
            json_object_set_new(r, "load_seconds", json_real(res[i].load_s));
            json_object_set_new(r, "encode_seconds_median", json_real(res[i].median_s));
            json_object_set_new(r, "tokens_per_second", json_real((double)res[i].tokens / res[i].median_s));
            json_object_set_new(r, "mb_per_second", json_real((double)len / res[i].median_s / 1e6));
            json_object_set_new(r, "lossless", json_boolean(res[i].lossless));
            json_array_append_new(arr, r);
        }
        json_object_set_new(o, "results", arr);
        char *s = json_dumps(o, JSON_COMPACT);
        if (s) printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    free(text);
done:
    for (size_t i = 0; i < ELLM_ARRAY_LEN(owned); i++) free(owned[i]);
    free(default_text);
    return rc;
}
