/* cmd_compress.c - `entrollm compress`: a model in, a .ellm file out. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: entrollm compress MODEL -o OUT.ellm [options]\n"
            "\n"
            "Quantizes every weight tensor of MODEL to uint8 or uint4 (scheme chosen per tensor),\n"
            "entropy-codes the integers in independently decodable segments and writes one\n"
            "checksummed .ellm file. MODEL is a Hugging Face folder (config.json + *.safetensors),\n"
            "a GGUF file (F32/F16/BF16) or a llama2.c checkpoint.\n"
            "\n"
            "Options:\n"
            "  -o, --output FILE        output .ellm file (required; written atomically)\n"
            "  --bits 8|4               integer width (default 8)\n"
            "  --target-bits B          instead of --bits: choose per tensor uint8 or uint4 (and, with\n"
            "                           tensor granularity, uint4 with groups of 128/64/32 weights)\n"
            "                           so that the coded payload is at most B bits/weight with the\n"
            "                           least total squared quantization error; 0 < B <= 8, and B\n"
            "                           below what the smallest choices reach is an error (exit 2)\n"
            "  --alloc-error E          what --target-bits minimises: sse (default: the sum of squared\n"
            "                           dequantization errors) or relative (each tensor's sum divided\n"
            "                           by its mean square weight); see docs/QUANTIZATION.md\n"
            "  --scheme S               auto|unsigned|symmetric|asymmetric (default auto: a tensor\n"
            "                           whose values share one sign is unsigned, else asymmetric)\n"
            "  --granularity G          tensor|row|group:N  scales per tensor (default), per row or\n"
            "                           per N consecutive weights (N even)\n"
            "  --coder C                auto|huffman|rans|raw (default auto: per tensor the smallest\n"
            "                           of raw, Huffman, rANS; on tensors of 64K+ weights a slower\n"
            "                           decoder only if >= 1%% smaller; raw = plain integers)\n"
            "  --segment S              symbols per segment (even; default chosen by the coder)\n"
            "  --keep LIST              keep tensors in float: none or a comma list of\n"
            "                           norms,embeddings,output,biases (default none)\n"
            "  --tokenizer FILE         tokenizer for a llama2.c checkpoint (default: tok512.bin or\n"
            "                           tokenizer.bin beside it)\n"
            "  --threads N              threads (default: all cores)\n"
            "  --json                   print one JSON object on stdout instead of the table\n"
            "  -q, --quiet              print only the totals\n"
            "  -h, --help               this help\n");
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

int cmd_compress(int argc, char **argv) {
    ellm_compress_options o;
    ellm_compress_options_default(&o);
    const char *model = NULL, *out = NULL;
    bool json = false, quiet = false, bits_given = false, alloc_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (cli_is_help(a)) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!v) return cli_usage_error("compress", "%s needs a file name", a);
            out = v;
            i++;
        } else if (strcmp(a, "--bits") == 0) {
            if (!cli_parse_int("compress", a, v, 4, 8, &n)) return EXIT_USAGE;
            if (n != 4 && n != 8) return cli_usage_error("compress", "--bits must be 8 or 4, got %ld", n);
            o.bits = (int)n;
            bits_given = true;
            i++;
        } else if (strcmp(a, "--target-bits") == 0) {
            double b;
            if (!cli_parse_float("compress", a, v, 0, 8, &b)) return EXIT_USAGE;
            if (!(b > 0)) return cli_usage_error("compress", "--target-bits must be above 0, got %s", v);
            o.target_bits = b;
            i++;
        } else if (strcmp(a, "--alloc-error") == 0) {
            if (v && strcmp(v, "sse") == 0) o.alloc_error = ELLM_ALLOC_SSE;
            else if (v && strcmp(v, "relative") == 0) o.alloc_error = ELLM_ALLOC_RELATIVE;
            else return cli_usage_error("compress", "--alloc-error must be sse or relative");
            alloc_given = true;
            i++;
        } else if (strcmp(a, "--scheme") == 0) {
            if (!v || !parse_scheme(v, &o.scheme))
                return cli_usage_error("compress", "--scheme must be auto, unsigned, symmetric or asymmetric");
            i++;
        } else if (strcmp(a, "--granularity") == 0) {
            if (!v) return cli_usage_error("compress", "--granularity needs a value");
            if (strcmp(v, "tensor") == 0) o.granularity = ELLM_GRAN_TENSOR;
            else if (strcmp(v, "row") == 0) o.granularity = ELLM_GRAN_ROW;
            else if (strncmp(v, "group:", 6) == 0) {
                if (!cli_parse_int("compress", "--granularity group:", v + 6, 2, 1 << 30, &n)) return EXIT_USAGE;
                if (n % 2) return cli_usage_error("compress", "group size must be even, got %ld", n);
                o.granularity = ELLM_GRAN_GROUP;
                o.group_size = (uint32_t)n;
            } else return cli_usage_error("compress", "--granularity must be tensor, row or group:N, got '%s'", v);
            i++;
        } else if (strcmp(a, "--coder") == 0) {
            if (!v) return cli_usage_error("compress", "--coder needs a value");
            if (strcmp(v, "huffman") == 0) o.coder = ELLM_CODER_HUFFMAN;
            else if (strcmp(v, "rans") == 0) o.coder = ELLM_CODER_RANS;
            else if (strcmp(v, "raw") == 0) o.coder = ELLM_CODER_RAW;
            else if (strcmp(v, "auto") == 0) o.coder = ELLM_CODER_AUTO;
            else return cli_usage_error("compress", "--coder must be huffman, rans, raw or auto, got '%s'", v);
            i++;
        } else if (strcmp(a, "--segment") == 0) {
            if (!cli_parse_int("compress", a, v, 2, 1 << 30, &n)) return EXIT_USAGE;
            if (n % 2) return cli_usage_error("compress", "--segment must be even, got %ld", n);
            o.segment_symbols = (uint32_t)n;
            i++;
        } else if (strcmp(a, "--keep") == 0) {
            if (!v || !parse_keep(v, &o.keep))
                return cli_usage_error("compress", "--keep takes none or a comma list of norms,embeddings,output,biases");
            i++;
        } else if (strcmp(a, "--tokenizer") == 0) {
            if (!v) return cli_usage_error("compress", "--tokenizer needs a file name");
            o.tokenizer_path = v;
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            if (!cli_parse_int("compress", a, v, 1, 1024, &n)) return EXIT_USAGE;
            o.n_threads = (int)n;
            i++;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("compress", "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            return cli_usage_error("compress", "unexpected argument '%s'", a);
        }
    }
    if (bits_given && o.target_bits > 0)
        return cli_usage_error("compress",
                               "--target-bits chooses the bits of each tensor: give it or --bits, not both");
    if (alloc_given && !(o.target_bits > 0))
        return cli_usage_error("compress", "--alloc-error only applies with --target-bits");
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
