/*
 * cmd_export.c - `entrollm export MODEL --to hf DIR | --to gguf FILE`: writes
 * a model (a source, or a .ellm file dequantized) in another format.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"
#include "model/model.h"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm export MODEL --to hf DIR [options]\n"
            "       entrollm export MODEL --to gguf FILE [options]\n\n"
            "Writes MODEL (a .ellm file, a Hugging Face folder, a GGUF file or a llama2.c checkpoint)\n"
            "as float32 weights in another format. Quantized (.ellm) weights are dequantized,\n"
            "w = s * (q - z).\n"
            "  hf    DIR/config.json, DIR/model.safetensors with Hugging Face tensor names and the\n"
            "        rotate_half layout of q/k rows (llama2.c/Meta/GGUF weights are permuted as HF's\n"
            "        convert script does), and the tokenizer files the model carries.\n"
            "  gguf  one GGUF file with llama.cpp tensor names and metadata keys (q/k rows\n"
            "        interleaved for llama/mistral), with the tokenizer when the model carries a\n"
            "        GGUF or llama2.c vocabulary.\n\nOptions:\n");
    cli_print_options(out, opts);
}

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *to = NULL, *out = NULL, *tokenizer = NULL;
    long threads = 0;
    bool json = false;
    const cli_opt opts[] = {
        {CLI_STRING("--to", NULL, &to, "hf|gguf DEST", "the format, then its folder (hf) or file (gguf); required"),
         .dest2 = &out},
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "threads for decoding a .ellm file (default: all cores)")},
        {CLI_STRING("--tokenizer", NULL, &tokenizer, "FILE",
                    "tokenizer for a llama2.c checkpoint without one beside it")},
        {CLI_FLAG("--json", NULL, &json, "print one JSON object describing the export")},
        {0},
    };
    int n_pos, rc = cli_parse("export", argc, argv, opts, &model, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    if (to && strcmp(to, "hf") != 0 && strcmp(to, "gguf") != 0)
        return cli_usage_error("export", "unknown format '%s' (hf, gguf)", to);
    if (!model) return cli_usage_error("export", "missing MODEL");
    if (!to) return cli_usage_error("export", "missing --to hf DIR or --to gguf FILE");

    ellm_error err = {0};
    ellm_load_options lo;
    ellm_load_options_default(&lo);
    lo.n_threads = (int)threads;
    lo.tokenizer_path = tokenizer;
    ellm_model *m;
    double t0 = ellm_now();
    if (ellm_model_load(model, &lo, &m, &err)) return cli_report_error(&err);
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    ellm_status st = strcmp(to, "hf") == 0 ? ellm_model_export_hf(m, out, &err) : ellm_model_export_gguf(m, out, &err);
    double secs = ellm_now() - t0;
    char arch[16];
    snprintf(arch, sizeof arch, "%s", info.arch);
    info.arch = arch; /* the model is freed below */
    ellm_model_free(m);
    if (st) return cli_report_error(&err);
    if (json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:f}", "model", model, "format", to, "output", out,
                              "arch", info.arch, "source_weight_bits", info.weight_bits, "weights_generated",
                              info.generated_weights, "seconds", secs);
        char *s = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
        json_decref(j);
    } else {
        printf("exported %s (%s, %s weights%s) to %s %s as float32 in %.2f s\n", model, info.arch,
               cli_weights_text(&info), info.weight_bits < 32 ? ", dequantized" : "", strcmp(to, "hf") == 0 ? "HF folder" : "GGUF",
               out, secs);
        if (info.generated_weights) printf("note: the weights are generated (not trained)\n");
    }
    return EXIT_OK;
}
