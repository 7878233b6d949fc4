/* cmd_bench.c - `entrollm bench WHAT`: dispatches to the benchmark programs.
 * Benchmarks print figures (and --json); they are not timed tests. */
#include <string.h>

#include "cli.h"

int bench_decode_main(int argc, char **argv);
int bench_generate_main(int argc, char **argv);
int bench_latency_main(int argc, char **argv);
int bench_tokenize_main(int argc, char **argv);

static void usage(FILE *out) {
    fprintf(out, "Usage: entrollm bench WHAT [ARGS...]   (entrollm bench WHAT --help)\n\n"
                 "  decode     entropy-decode speed per thread count, against zstd -19 and xz -9\n"
                 "  generate   prefill and generation tokens/s, float vs uint8 vs uint4\n"
                 "  latency    the paper's Table II: decode, prefill, per-token, first-token times\n"
                 "  tokenize   tokenizer encoding speed per tokenizer kind\n");
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    struct {
        const char *name;
        int (*fn)(int, char **);
    } benches[] = {{"decode", bench_decode_main},
                   {"generate", bench_generate_main},
                   {"latency", bench_latency_main},
                   {"tokenize", bench_tokenize_main}};
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++) {
        if (strcmp(argv[1], benches[i].name) == 0) return benches[i].fn(argc - 1, argv + 1);
    }
    return cli_usage_error("bench", "unknown benchmark '%s' (decode, generate, latency, tokenize)", argv[1]);
}
