/*
 * main.c - the entrollm command-line program: dispatches to one subcommand.
 * Each subcommand lives in its own cmd_*.c file and only parses arguments,
 * calls the library and prints.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Subcommands: name, one-line help. Each is int cmd_NAME(int argc, char **argv)
 * in tools/entrollm/cmd_*.c, called with argv[0] = NAME. */
#define CLI_COMMANDS(X)                                                                         \
    X(compress, "quantize + entropy-code a model into a .ellm file")                             \
    X(info, "describe a .ellm file: metadata and every tensor")                                  \
    X(verify, "check every checksum and decode every segment of a .ellm file")                   \
    X(decompress, "write a .ellm file's decoded integers (or floats) as safetensors")            \
    X(export, "write a model as a Hugging Face folder or a GGUF file")                           \
    X(synth, "write a model with generated weights in the shape of a config.json")               \
    X(run, "generate text from a prompt")                                                        \
    X(chat, "chat with an instruction model using its chat template")                            \
    X(tokenize, "show the token ids or pieces of a text")                                        \
    X(detokenize, "turn token ids back into text")                                               \
    X(perplexity, "perplexity over a text file (llama.cpp convention)")                          \
    X(hellaswag, "HellaSwag multiple-choice accuracy")                                           \
    X(gsm8k, "GSM8k k-shot chain-of-thought accuracy")                                           \
    X(report, "the paper's tables: sizes, perplexity, accuracy for fp16/uint8/uint4")            \
    X(bench, "benchmarks: bench decode | generate | latency | tokenize")                        \
    X(demo, "the built-in demo (what `entrollm` alone runs)")

#define DECLARE_CMD(name, help) int cmd_##name(int argc, char **argv);
CLI_COMMANDS(DECLARE_CMD)

typedef struct cli_command {
    const char *name;
    cli_cmd_fn fn;
    const char *help;
} cli_command;

static void usage(FILE *out, const cli_command *cmds, size_t n) {
    fprintf(out,
            "entrollm %s - small, fast language models for edge devices\n\n"
            "Usage: entrollm COMMAND [ARGS...]   (entrollm COMMAND --help for details)\n\n"
            "Commands:\n",
            ellm_version());
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-11s %s\n", cmds[i].name, cmds[i].help);
    fprintf(out,
            "\nWith no command, the demo runs: a model with SmolLM-135M's shape and generated\n"
            "(not trained) weights is compressed to uint8 and uint4 and decoded (see `entrollm demo --help`).\n"
            "\nExit codes: 0 success, 1 failure, 2 usage error, 3 verification failed.\n");
}

int main(int argc, char **argv) {
#define TABLE_ENTRY(name, help) {#name, cmd_##name, help},
    const cli_command cmds[] = {CLI_COMMANDS(TABLE_ENTRY)};
    const size_t n = sizeof cmds / sizeof cmds[0];
    if (argc < 2) {
        char *demo_argv[] = {"demo", NULL};
        return cmd_demo(1, demo_argv);
    }
    if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        usage(stdout, cmds, n);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("entrollm %s\n", ellm_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "entrollm: unknown command '%s'\nTry 'entrollm --help'.\n", argv[1]);
    return EXIT_USAGE;
}
