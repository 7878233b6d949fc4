/* cmd_compress.c - `entrollm compress`: a model in, a .ellm file out. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm compress MODEL -o OUT.ellm [options]\n"
            "\n"
            "Quantizes every weight tensor of MODEL to uint8 or uint4 (scheme chosen per tensor),\n"
            "entropy-codes the integers in independently decodable segments and writes one\n"
            "checksummed .ellm file. MODEL is a Hugging Face folder (config.json + *.safetensors),\n"
            "a GGUF file (F32/F16/BF16) or a llama2.c checkpoint.\n"
            "\n"
            "Options:\n");
    cli_print_options(out, opts);
}

static bool parse_scheme(const char *s, ellm_scheme *out) {
    const char *names[] = {"unsigned", "symmetric", "asymmetric"};
    if (strcmp(s, "auto") == 0) {
        *out = ELLM_SCHEME_AUTO;
        return true;
    }
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (ellm_scheme)i;
            return true;
        }
    return false;
}

static bool parse_coder(const char *s, ellm_coder *out) {
    const struct {
        const char *name;
        ellm_coder coder;
    } coders[] = {{"huffman", ELLM_CODER_HUFFMAN}, {"rans", ELLM_CODER_RANS}, {"raw", ELLM_CODER_RAW},
                  {"auto", ELLM_CODER_AUTO}};
    for (size_t i = 0; i < ELLM_ARRAY_LEN(coders); i++)
        if (strcmp(s, coders[i].name) == 0) {
            *out = coders[i].coder;
            return true;
        }
    return false;
}

/* tensor | row | group:N (N even) into o; false after a usage error. */
static bool parse_granularity(const char *s, ellm_compress_options *o) {
    long n;
    if (strcmp(s, "tensor") == 0) o->granularity = ELLM_GRAN_TENSOR;
    else if (strcmp(s, "row") == 0) o->granularity = ELLM_GRAN_ROW;
    else if (strncmp(s, "group:", 6) == 0) {
        if (!cli_parse_int("compress", "--granularity group:", s + 6, 2, 1 << 30, &n)) return false;
        if (n % 2) {
            cli_usage_error("compress", "group size must be even, got %ld", n);
            return false;
        }
        o->granularity = ELLM_GRAN_GROUP;
        o->group_size = (uint32_t)n;
    } else {
        cli_usage_error("compress", "--granularity must be tensor, row or group:N, got '%s'", s);
        return false;
    }
    return true;
}

static bool parse_keep(const char *s, unsigned *out) {
    *out = 0;
    if (strcmp(s, "none") == 0) return true;
    char *copy = ellm_strdup(s), *save = NULL;
    bool ok = copy != NULL;
    for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && ok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "norms") == 0) *out |= ELLM_KEEP_NORMS;
        else if (strcmp(tok, "embeddings") == 0) *out |= ELLM_KEEP_EMBEDDINGS;
        else if (strcmp(tok, "output") == 0) *out |= ELLM_KEEP_OUTPUT;
        else if (strcmp(tok, "biases") == 0) *out |= ELLM_KEEP_BIASES;
        else ok = false;
    }
    free(copy);
    return ok;
}

static json_t *shape_json(const int64_t *shape, int n_dims) {
    json_t *a = json_array();
    for (int d = 0; d < n_dims; d++) json_array_append_new(a, json_integer(shape[d]));
    return a;
}

static const char *granularity_name(ellm_granularity g) {
    return g == ELLM_GRAN_ROW ? "row" : g == ELLM_GRAN_GROUP ? "group" : "tensor";
}

/* How many tensors the bit allocation put at each width. */
typedef struct alloc_counts {
    size_t u8, u4, u4_grouped; /* u4_grouped: of u4, those with groups */
} alloc_counts;

static alloc_counts count_choices(const ellm_compress_report *r) {
    alloc_counts c = {0};
    for (size_t i = 0; i < r->n_tensors; i++) {
        const ellm_tensor_report *t = &r->tensors[i];
        if (t->bits == 8) c.u8++;
        if (t->bits == 4) c.u4++;
        if (t->bits == 4 && t->granularity == ELLM_GRAN_GROUP) c.u4_grouped++;
    }
    return c;
}

static void print_json(const ellm_compress_report *r, const char *out_path, ellm_alloc_error alloc_error) {
    json_t *tensors = json_array();
    for (size_t i = 0; i < r->n_tensors; i++) {
        const ellm_tensor_report *t = &r->tensors[i];
        json_t *o = json_pack("{s:s, s:o, s:I, s:s, s:i, s:s, s:f, s:f, s:I, s:I, s:f, s:f}", "name", t->name,
                              "shape", shape_json(t->shape, t->n_dims), "params", (json_int_t)t->n_params, "scheme",
                              ellm_scheme_name(t->scheme), "bits", t->bits, "coder", ellm_coder_name(t->coder),
                              "entropy_bits", t->entropy_bits, "coded_bits_per_weight", t->coded_bits_per_weight,
                              "coded_bytes", (json_int_t)t->coded_bytes, "meta_bytes", (json_int_t)t->meta_bytes,
                              "max_abs_error", (double)t->max_abs_error, "scale_max", (double)t->scale_max);
        if (t->kept_reason) json_object_set_new(o, "kept", json_string(t->kept_reason));
        else {
            json_object_set_new(o, "granularity", json_string(granularity_name(t->granularity)));
            json_object_set_new(o, "group_size", json_integer((json_int_t)t->group_size));
            json_object_set_new(o, "sq_error", json_real(t->sq_error));
        }
        json_array_append_new(tensors, o);
    }
    json_t *root = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:o}", "output", out_path, "params",
        (json_int_t)r->params, "file_bytes", (json_int_t)r->file_bytes, "payload_bytes",
        (json_int_t)r->payload_bytes, "fp16_bytes", (json_int_t)r->fp16_bytes, "plain_bytes",
        (json_int_t)r->plain_bytes, "tokenizer_bytes", (json_int_t)r->tokenizer_bytes, "entropy_bits_per_weight",
        r->entropy_bits_per_weight, "coded_bits_per_weight", r->coded_bits_per_weight, "effective_bits_per_weight",
        r->effective_bits_per_weight, "payload_over_entropy_bits",
        r->coded_bits_per_weight - r->entropy_bits_per_weight, "seconds", r->seconds, "tensors", tensors);
    json_object_set_new(root, "weights_generated", json_boolean(r->weights_generated));
    json_object_set_new(root, "sq_error", json_real(r->sq_error));
    if (r->target_bits > 0) {
        json_object_set_new(root, "target_bits", json_real(r->target_bits));
        json_object_set_new(root, "alloc_error", json_string(alloc_error == ELLM_ALLOC_RELATIVE ? "relative" : "sse"));
        alloc_counts c = count_choices(r);
        json_object_set_new(root, "tensors_uint8", json_integer((json_int_t)c.u8));
        json_object_set_new(root, "tensors_uint4", json_integer((json_int_t)c.u4));
        json_object_set_new(root, "tensors_uint4_grouped", json_integer((json_int_t)c.u4_grouped));
    }
    char *text = json_dumps(root, JSON_INDENT(1));
    puts(text);
    free(text);
    json_decref(root);
}

static void print_table(const ellm_compress_report *r, const char *out_path, bool quiet, ellm_alloc_error alloc_error) {
    if (!quiet) {
        printf("%-44s %-16s %-10s %4s %-9s %-7s %8s %8s\n", "tensor", "shape", "scheme", "bits", "gran", "coder",
               "entropy", "coded");
        for (size_t i = 0; i < r->n_tensors; i++) {
            const ellm_tensor_report *t = &r->tensors[i];
            char shape[64] = "";
            for (int d = 0; d < t->n_dims; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "x" : "",
                         (long long)t->shape[d]);
            char gran[32];
            if (t->kept_reason) snprintf(gran, sizeof gran, "-");
            else if (t->granularity == ELLM_GRAN_GROUP) snprintf(gran, sizeof gran, "group:%u", t->group_size);
            else snprintf(gran, sizeof gran, "%s", granularity_name(t->granularity));
            printf("%-44s %-16s %-10s %4d %-9s %-7s %8.3f %8.3f%s%s\n", t->name, shape, ellm_scheme_name(t->scheme),
                   t->bits, gran, ellm_coder_name(t->coder), t->entropy_bits, t->coded_bits_per_weight,
                   t->kept_reason ? "  kept: " : "", t->kept_reason ? t->kept_reason : "");
        }
        printf("(entropy: bits/weight of the integers; coded: bits/weight of the stored tensor,\n"
               " including its scales, zero points, code table and segment offsets)\n\n");
    }
    char a[32], b[32], c[32], d[32];
    printf("wrote %s in %.2f s\n", out_path, r->seconds);
    if (r->weights_generated) printf("NOTE: the source model's weights are generated (not trained).\n");
    printf("parameters           %llu\n", (unsigned long long)r->params);
    printf("size as fp16         %s\n", cli_human_bytes(r->fp16_bytes, a, sizeof a));
    printf("size as plain ints   %s (uncoded integers + scales)\n", cli_human_bytes(r->plain_bytes, b, sizeof b));
    printf("coded payload        %s\n", cli_human_bytes(r->payload_bytes, c, sizeof c));
    printf("whole file           %s (tokenizer and config files: %llu bytes)\n",
           cli_human_bytes(r->file_bytes, d, sizeof d), (unsigned long long)r->tokenizer_bytes);
    printf("entropy bound        %.4f bits/weight (per-tensor entropies weighted by size)\n",
           r->entropy_bits_per_weight);
    printf("coded payload        %.4f bits/weight (%+.4f over the bound)\n", r->coded_bits_per_weight,
           r->coded_bits_per_weight - r->entropy_bits_per_weight);
    printf("effective (file)     %.4f bits/weight\n", r->effective_bits_per_weight);
    if (r->target_bits > 0) {
        alloc_counts c = count_choices(r);
        printf("target               %.4f bits/weight of coded payload: reached %.4f with %zu tensors uint8, "
               "%zu uint4 (%zu of them in groups), least %s error\n",
               r->target_bits, r->coded_bits_per_weight, c.u8, c.u4, c.u4_grouped,
               alloc_error == ELLM_ALLOC_RELATIVE ? "relative" : "squared");
        printf("squared error        %.6g (sum over weights of (w - dequantized w)^2)\n", r->sq_error);
    }
}

/* The options of compress as cli_parse leaves them, before convert_options. */
typedef struct compress_args {
    const char *alloc_error, *scheme, *granularity, *coder, *keep; /* NULL: not given */
    long bits, segment, threads;
    double target_bits;
    bool bits_given, target_given;
} compress_args;

/* Checks what cli_parse cannot and stores the options in o: EXIT_USAGE
 * after a usage error, else CLI_GO_ON. */
static int convert_options(const compress_args *a, ellm_compress_options *o) {
    if (a->bits_given && a->bits != 4 && a->bits != 8)
        return cli_usage_error("compress", "--bits must be 8 or 4, got %ld", a->bits);
    o->bits = (int)a->bits;
    if (a->target_given && !(a->target_bits > 0))
        return cli_usage_error("compress", "--target-bits must be above 0, got %g", a->target_bits);
    o->target_bits = a->target_bits;
    if (a->alloc_error && strcmp(a->alloc_error, "sse") == 0) o->alloc_error = ELLM_ALLOC_SSE;
    else if (a->alloc_error && strcmp(a->alloc_error, "relative") == 0) o->alloc_error = ELLM_ALLOC_RELATIVE;
    else if (a->alloc_error) return cli_usage_error("compress", "--alloc-error must be sse or relative");
    if (a->scheme && !parse_scheme(a->scheme, &o->scheme))
        return cli_usage_error("compress", "--scheme must be auto, unsigned, symmetric or asymmetric");
    if (a->granularity && !parse_granularity(a->granularity, o)) return EXIT_USAGE;
    if (a->coder && !parse_coder(a->coder, &o->coder))
        return cli_usage_error("compress", "--coder must be huffman, rans, raw or auto, got '%s'", a->coder);
    if (a->segment % 2) return cli_usage_error("compress", "--segment must be even, got %ld", a->segment);
    o->segment_symbols = (uint32_t)a->segment;
    o->n_threads = (int)a->threads;
    if (a->keep && !parse_keep(a->keep, &o->keep))
        return cli_usage_error("compress", "--keep takes none or a comma list of norms,embeddings,output,biases");
    if (a->bits_given && o->target_bits > 0)
        return cli_usage_error("compress",
                               "--target-bits chooses the bits of each tensor: give it or --bits, not both");
    if (a->alloc_error && !(o->target_bits > 0))
        return cli_usage_error("compress", "--alloc-error only applies with --target-bits");
    return CLI_GO_ON;
}

int cmd_compress(int argc, char **argv) {
    ellm_compress_options o;
    ellm_compress_options_default(&o);
    const char *model = NULL, *out = NULL;
    compress_args a = {.bits = o.bits, .segment = o.segment_symbols, .threads = o.n_threads,
                       .target_bits = o.target_bits};
    bool json = false, quiet = false;
    const cli_opt opts[] = {
        {CLI_STRING("--output", "-o", &out, "FILE", "output .ellm file (required; written atomically)")},
        {CLI_INT("--bits", NULL, &a.bits, 4, 8, "8|4", "integer width (default 8)"), .given = &a.bits_given},
        {CLI_FLOAT("--target-bits", NULL, &a.target_bits, 0, 8, "B",
                   "instead of --bits: choose per tensor uint8 or uint4 (and,\n"
                   "with tensor granularity, uint4 with groups of 128/64/32\n"
                   "weights) so that the coded payload is at most B bits/weight\n"
                   "with the least total squared quantization error; 0 < B <= 8,\n"
                   "and B below what the smallest choices reach is an error (exit 2)"),
         .given = &a.target_given},
        {CLI_STRING("--alloc-error", NULL, &a.alloc_error, "E",
                    "what --target-bits minimises: sse (default: the sum of squared\n"
                    "dequantization errors) or relative (each tensor's sum divided\n"
                    "by its mean square weight); see docs/QUANTIZATION.md")},
        {CLI_STRING("--scheme", NULL, &a.scheme, "S",
                    "auto|unsigned|symmetric|asymmetric (default auto: a tensor\n"
                    "whose values share one sign is unsigned, else asymmetric)")},
        {CLI_STRING("--granularity", NULL, &a.granularity, "G",
                    "tensor|row|group:N  scales per tensor (default), per row or\n"
                    "per N consecutive weights (N even)")},
        {CLI_STRING("--coder", NULL, &a.coder, "C",
                    "auto|huffman|rans|raw (default auto: per tensor the smallest\n"
                    "of raw, Huffman, rANS; on tensors of 64K+ weights a slower\n"
                    "decoder only if >= 1% smaller; raw = plain integers)")},
        {CLI_INT("--segment", NULL, &a.segment, 2, 1 << 30, "S",
                 "symbols per segment (even; default chosen by the coder)")},
        {CLI_STRING("--keep", NULL, &a.keep, "LIST",
                    "keep tensors in float: none or a comma list of\n"
                    "norms,embeddings,output,biases (default none)")},
        {CLI_STRING("--tokenizer", NULL, &o.tokenizer_path, "FILE",
                    "tokenizer for a llama2.c checkpoint (default: tok512.bin or\n"
                    "tokenizer.bin beside it)")},
        {CLI_INT("--threads", NULL, &a.threads, 1, 1024, "N", "threads (default: all cores)")},
        {CLI_FLAG("--json", NULL, &json, "print one JSON object on stdout instead of the table")},
        {CLI_FLAG("--quiet", "-q", &quiet, "print only the totals")},
        {0},
    };
    int n_pos, rc = cli_parse("compress", argc, argv, opts, &model, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    rc = convert_options(&a, &o);
    if (rc != CLI_GO_ON) return rc;
    if (!model) return cli_usage_error("compress", "missing MODEL");
    if (!out) return cli_usage_error("compress", "missing -o OUT.ellm");

    ellm_progress progress;
    ellm_progress_init(&progress, "compressing");
    o.progress = ellm_progress_callback;
    o.progress_user = &progress;
    ellm_compress_report *r = NULL;
    ellm_error err = {0};
    ellm_status s = ellm_compress(model, out, &o, &r, &err);
    ellm_progress_finish(&progress);
    if (s) return cli_report_error(&err);
    if (json) print_json(r, out, o.alloc_error);
    else print_table(r, out, quiet, o.alloc_error);
    ellm_compress_report_free(r);
    return EXIT_OK;
}
