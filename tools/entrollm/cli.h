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

/* "12.3 MiB" style sizes into buf. */
const char *cli_human_bytes(uint64_t n, char *buf, size_t buf_size);

#endif /* ELLM_CLI_H */
