/* cmd_decompress.c - `entrollm decompress`: a .ellm file out as safetensors. */
#include <string.h>

#include "cli.h"
#include "common/common.h"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: entrollm decompress FILE.ellm -o OUT.safetensors [--dequantize f32|f16] [--threads N]\n\n"
            "Decodes every tensor (in parallel) and writes a safetensors file (atomically).\n"
            "Default: the integers themselves (U8; uint4 unpacked one per byte) under each tensor's\n"
            "name, with NAME.scales (F32) and NAME.zeros (U8) per group: w = scales * (q - zeros).\n"
            "--dequantize f32|f16 writes the float weights instead, loadable by other tools.\n");
}

int cmd_decompress(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    ellm_export_dtype dtype = ELLM_EXPORT_INTEGERS;
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!v) return cli_usage_error("decompress", "%s needs a file name", a);
            out = v;
            i++;
        } else if (strcmp(a, "--dequantize") == 0) {
            if (v && strcmp(v, "f32") == 0) dtype = ELLM_EXPORT_F32;
            else if (v && strcmp(v, "f16") == 0) dtype = ELLM_EXPORT_F16;
            else return cli_usage_error("decompress", "--dequantize must be f32 or f16");
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            if (!cli_parse_int("decompress", a, v, 1, 1024, &threads)) return EXIT_USAGE;
            i++;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("decompress", "unknown option '%s'", a);
        } else if (!in) {
            in = a;
        } else {
            return cli_usage_error("decompress", "unexpected argument '%s'", a);
        }
    }
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
