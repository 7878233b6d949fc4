/*
 * cli.h - helpers shared by the subcommands of the entrollm program.
 *
 * Exit codes (documented in README.md):
 *   0  success
 *   1  the operation failed (I/O, bad or unsupported input)
 *   2  usage error (unknown option, bad flag value)
 *   3  verification failed (checksum mismatch or undecodable segment)
 */
#ifndef ELLM_CLI_H
#define ELLM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "entrollm.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_VERIFY = 3 };

/* Every subcommand: int cmd_NAME(int argc, char **argv), argv[0] = NAME. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

/* Prints "entrollm: <message>" to stderr and returns the exit code for s. */
int cli_report_error(const ellm_error *err);
int cli_exit_code(ellm_status s);
/* Prints "entrollm CMD: message\nTry 'entrollm CMD --help'." and returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing: the whole string must be a number within [lo, hi].
 * On failure prints a usage error naming the flag and returns false. */
bool cli_parse_int(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out);
bool cli_parse_float(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out);
bool cli_parse_u64(const char *cmd, const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* True if arg is "-h" or "--help". */
bool cli_is_help(const char *arg);

/* ---- table-driven option parsing ----------------------------------------
 *
 * A command lists its options once, in a table that serves both the parser
 * and the help text:
 *
 *     long ctx = 0;
 *     bool json = false;
 *     const cli_opt opts[] = {
 *         {CLI_INT("--ctx", NULL, &ctx, 4, 1 << 20, "N", "window length in tokens")},
 *         {CLI_FLAG("--json", NULL, &json, "print one JSON object on stdout")},
 *         {0},
 *     };
 *     const char *pos[2];
 *     int n_pos, rc = cli_parse("perplexity", argc, argv, opts, pos, 2, &n_pos);
 *     if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
 *
 * Each entry is written inside braces so that it can take more fields, e.g.
 * {CLI_U64("--seed", NULL, &seed, 0, UINT64_MAX, "S", "random seed"), .given = &seed_given}.
 * A destination keeps its value unless the option is given, so defaults are
 * the values the variables start with. Numbers are parsed as strictly as
 * cli_parse_int etc.; a value may start with '-' (it is the next argument
 * whatever it looks like). "--" ends the options: every later argument is
 * positional (`tokenize MODEL -- -x`). */
typedef enum { CLI_KIND_FLAG, CLI_KIND_INT, CLI_KIND_U64, CLI_KIND_FLOAT, CLI_KIND_STRING } cli_kind;

typedef struct cli_opt {
    const char *name;  /* "--threads"; NULL ends a table */
    const char *alias; /* a second spelling ("-t") or NULL */
    cli_kind kind;
    void *dest;        /* bool, long, uint64_t, double or const char * (by kind) */
    long lo, hi;       /* CLI_KIND_INT bounds */
    uint64_t ulo, uhi; /* CLI_KIND_U64 bounds */
    double flo, fhi;   /* CLI_KIND_FLOAT bounds */
    const char *value; /* the value's name in help and messages ("N", "FILE"); NULL for flags */
    const char *help;  /* one line of help; '\n' continues it on the next line */
    bool *given;       /* optional: set to true when the option appears */
    /* optional, CLI_KIND_STRING only: the option takes a second argument,
     * stored here (`--to hf DIR`: .value = "hf|gguf DIR", .dest2 = &out) */
    const char **dest2;
} cli_opt;

/* dest must point to the type of its kind: a wrong pointer is a compile-time warning. */
#define CLI_DEST_(type, p) ((void *)(1 ? (p) : (type *)0))
#define CLI_FLAG(name_, alias_, dest_, help_) \
    .name = (name_), .alias = (alias_), .kind = CLI_KIND_FLAG, .dest = CLI_DEST_(bool, dest_), .help = (help_)
#define CLI_INT(name_, alias_, dest_, lo_, hi_, value_, help_)                                                \
    .name = (name_), .alias = (alias_), .kind = CLI_KIND_INT, .dest = CLI_DEST_(long, dest_), .lo = (lo_), \
    .hi = (hi_), .value = (value_), .help = (help_)
#define CLI_U64(name_, alias_, dest_, lo_, hi_, value_, help_)                                                    \
    .name = (name_), .alias = (alias_), .kind = CLI_KIND_U64, .dest = CLI_DEST_(uint64_t, dest_), .ulo = (lo_), \
    .uhi = (hi_), .value = (value_), .help = (help_)
#define CLI_FLOAT(name_, alias_, dest_, lo_, hi_, value_, help_)                                                  \
    .name = (name_), .alias = (alias_), .kind = CLI_KIND_FLOAT, .dest = CLI_DEST_(double, dest_), .flo = (lo_), \
    .fhi = (hi_), .value = (value_), .help = (help_)
#define CLI_STRING(name_, alias_, dest_, value_, help_)                                                     \
    .name = (name_), .alias = (alias_), .kind = CLI_KIND_STRING, .dest = CLI_DEST_(const char *, dest_), \
    .value = (value_), .help = (help_)

/* What cli_parse returns besides the exit codes: go on, or print the usage and exit 0. */
enum { CLI_GO_ON = -1, CLI_HELP = -2 };

/* Parses argv[1..argc-1] against opts (ended by an entry whose name is
 * NULL). Arguments that are not options ("-" is not one) are collected in
 * order into pos[0..max_pos-1], their number in *n_pos; so are all the
 * arguments after "--". Returns CLI_GO_ON;
 * CLI_HELP at -h/--help; or EXIT_USAGE after printing a usage error naming
 * the option (unknown option, missing value, number malformed or out of
 * range, empty string) or the surplus argument. */
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, const char **pos, int max_pos,
              int *n_pos);

/* The options' help lines ("  -o, --output FILE  help"), aligned, then "-h, --help". */
void cli_print_options(FILE *out, const cli_opt *opts);

/* ellm_eval_open (eval/eval.h) with a "loading" progress bar on stderr when
 * it is a terminal: how the evaluation commands open MODEL. */
struct ellm_lm;
ellm_status cli_eval_open(const char *model_path, long threads, ellm_model **model, struct ellm_lm *lm,
                          ellm_error *err);

/* The model's weights for messages: "8-bit", "4-bit", "float" or, for
 * files with both widths, "mixed 8/4-bit". */
const char *cli_weights_text(const ellm_model_info *info);

/* "12.3 MiB" style sizes into buf. */
const char *cli_human_bytes(uint64_t n, char *buf, size_t buf_size);

#endif /* ELLM_CLI_H */
