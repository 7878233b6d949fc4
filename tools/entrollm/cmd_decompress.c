/* cmd_decompress.c - `entrollm decompress`: a .ellm file out as safetensors. */
#include <string.h>

#include "cli.h"
#include "common/common.h"

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm decompress FILE.ellm -o OUT.safetensors [--dequantize f32|f16] [--threads N]\n\n"
            "Decodes every tensor (in parallel) and writes a safetensors file (atomically).\n"
            "Default: the integers themselves (U8; uint4 unpacked one per byte) under each tensor's\n"
            "name, with NAME.scales (F32) and NAME.zeros (U8) per group: w = scales * (q - zeros).\n"
            "--dequantize f32|f16 writes the float weights instead, loadable by other tools.\n\n"
            "Options:\n");
    cli_print_options(out, opts);
}

int cmd_decompress(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *dequantize = NULL;
    long threads = 0;
    const cli_opt opts[] = {
        {CLI_STRING("--output", "-o", &out, "FILE", "output .safetensors file (required; written atomically)")},
        {CLI_STRING("--dequantize", NULL, &dequantize, "f32|f16",
                    "write the dequantized float weights instead of the integers")},
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "threads (default: all cores)")},
        {0},
    };
    int n_pos, rc = cli_parse("decompress", argc, argv, opts, &in, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    ellm_export_dtype dtype = ELLM_EXPORT_INTEGERS;
    if (dequantize && strcmp(dequantize, "f32") == 0) dtype = ELLM_EXPORT_F32;
    else if (dequantize && strcmp(dequantize, "f16") == 0) dtype = ELLM_EXPORT_F16;
    else if (dequantize) return cli_usage_error("decompress", "--dequantize must be f32 or f16");
    if (!in) return cli_usage_error("decompress", "missing FILE.ellm");
    if (!out) return cli_usage_error("decompress", "missing -o OUT.safetensors");
    ellm_file *f;
    ellm_error err = {0};
    if (ellm_file_open(in, &f, &err)) return cli_report_error(&err);
    double t0 = ellm_now();
    ellm_status s = ellm_file_decompress(f, out, dtype, (int)threads, &err);
    ellm_file_close(f);
    if (s) return cli_report_error(&err);
    printf("wrote %s (%s) in %.2f s\n", out,
           dtype == ELLM_EXPORT_INTEGERS ? "integers + scales + zero points"
           : dtype == ELLM_EXPORT_F32    ? "dequantized f32 weights"
                                         : "dequantized f16 weights",
           ellm_now() - t0);
    return EXIT_OK;
}
