/* cli.c - see cli.h. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "eval/eval.h"

int cli_exit_code(ellm_status s) {
    switch (s) {
    case ELLM_OK: return EXIT_OK;
    case ELLM_E_ARG: return EXIT_USAGE;
    case ELLM_E_CHECKSUM: return EXIT_VERIFY;
    default: return EXIT_FAIL;
    }
}

int cli_report_error(const ellm_error *err) {
    fprintf(stderr, "entrollm: error: %s\n", err->message[0] ? err->message : ellm_status_name(err->code));
    return cli_exit_code(err->code);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "entrollm %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'entrollm %s --help'.\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

bool cli_parse_int(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        cli_usage_error(cmd, "%s needs an integer in [%ld, %ld], got '%s'", flag, lo, hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_u64(const char *cmd, const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = (s && *s != '-') ? strtoull(s, &end, 10) : 0;
    if (!s || !*s || *s == '-' || *end || errno || v < lo || v > hi) {
        cli_usage_error(cmd, "%s needs an integer in [%llu, %llu], got '%s'", flag,
                        (unsigned long long)lo, (unsigned long long)hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_float(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        cli_usage_error(cmd, "%s needs a number in [%g, %g], got '%s'", flag, lo, hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

/* ---- table-driven option parsing ---------------------------------------- */

static const cli_opt *find_opt(const cli_opt *opts, const char *arg) {
    for (const cli_opt *o = opts; o->name; o++)
        if (strcmp(arg, o->name) == 0 || (o->alias && strcmp(arg, o->alias) == 0)) return o;
    return NULL;
}

/* Stores the value v of option o, given as flag; false after a usage error. */
static bool store_value(const char *cmd, const cli_opt *o, const char *flag, const char *v) {
    switch (o->kind) {
    case CLI_KIND_INT: return cli_parse_int(cmd, flag, v, o->lo, o->hi, o->dest);
    case CLI_KIND_U64: return cli_parse_u64(cmd, flag, v, o->ulo, o->uhi, o->dest);
    case CLI_KIND_FLOAT: return cli_parse_float(cmd, flag, v, o->flo, o->fhi, o->dest);
    case CLI_KIND_STRING:
        if (!*v) {
            cli_usage_error(cmd, "%s needs %s, got an empty string", flag, o->value);
            return false;
        }
        *(const char **)o->dest = v;
        return true;
    case CLI_KIND_FLAG: *(bool *)o->dest = true; return true;
    }
    return false;
}

/* "--ctx needs N, an integer in [4, 1048576]" and the like. */
static int missing_value(const char *cmd, const cli_opt *o, const char *flag) {
    switch (o->kind) {
    case CLI_KIND_INT:
        return cli_usage_error(cmd, "%s needs %s, an integer in [%ld, %ld]", flag, o->value, o->lo, o->hi);
    case CLI_KIND_U64:
        return cli_usage_error(cmd, "%s needs %s, an integer in [%llu, %llu]", flag, o->value,
                               (unsigned long long)o->ulo, (unsigned long long)o->uhi);
    case CLI_KIND_FLOAT:
        return cli_usage_error(cmd, "%s needs %s, a number in [%g, %g]", flag, o->value, o->flo, o->fhi);
    default: return cli_usage_error(cmd, "%s needs %s", flag, o->value);
    }
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, const char **pos, int max_pos,
              int *n_pos) {
    *n_pos = 0;
    bool options_ended = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_ended && cli_is_help(a)) return CLI_HELP;
        if (!options_ended && strcmp(a, "--") == 0) {
            options_ended = true;
            continue;
        }
        if (options_ended || a[0] != '-' || !a[1]) {
            if (*n_pos == max_pos) return cli_usage_error(cmd, "unexpected argument '%s'", a);
            pos[(*n_pos)++] = a;
            continue;
        }
        const cli_opt *o = find_opt(opts, a);
        if (!o) return cli_usage_error(cmd, "unknown option '%s'", a);
        const char *v = NULL;
        if (o->kind != CLI_KIND_FLAG) {
            if (i + 1 == argc || (o->dest2 && i + 2 == argc)) return missing_value(cmd, o, a);
            v = argv[++i];
        }
        if (!store_value(cmd, o, a, v)) return EXIT_USAGE;
        if (o->dest2) {
            const char *v2 = argv[++i];
            if (!*v2) return cli_usage_error(cmd, "%s needs %s, got an empty string", a, o->value);
            *o->dest2 = v2;
        }
        if (o->given) *o->given = true;
    }
    return CLI_GO_ON;
}

/* "  -o, --output FILE": what the help column of o shows on the left. */
static int opt_label(char *buf, size_t size, const cli_opt *o) {
    return snprintf(buf, size, "  %s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "", o->name,
                    o->value ? " " : "", o->value ? o->value : "");
}

void cli_print_options(FILE *out, const cli_opt *opts) {
    /* help starts in column 19, further right for longer labels up to 24
     * characters; a longer label has its help on the next line */
    enum { MIN_COL = 19, MAX_LABEL = 24 };
    char label[256];
    int col = MIN_COL;
    for (const cli_opt *o = opts; o->name; o++) {
        int n = opt_label(label, sizeof label, o);
        if (n <= MAX_LABEL && n + 2 > col) col = n + 2;
    }
    for (const cli_opt *o = opts; o->name; o++) {
        int n = opt_label(label, sizeof label, o);
        fprintf(out, "%s", label);
        if (n + 2 > col) fprintf(out, "\n%*s", col, "");
        else fprintf(out, "%*s", col - n, "");
        const char *h = o->help ? o->help : "";
        for (const char *nl; (nl = strchr(h, '\n')); h = nl + 1) fprintf(out, "%.*s\n%*s", (int)(nl - h), h, col, "");
        fprintf(out, "%s\n", h);
    }
    fprintf(out, "  -h, --help%*sthis help\n", col - 12, "");
}

bool cli_is_help(const char *arg) { return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0; }

ellm_status cli_eval_open(const char *model_path, long threads, ellm_model **model, ellm_lm *lm, ellm_error *err) {
    ellm_progress bar;
    ellm_progress_init(&bar, "loading");
    ellm_status st = ellm_eval_open(model_path, (int)threads, ellm_progress_callback, &bar, model, lm, err);
    ellm_progress_finish(&bar);
    return st;
}

const char *cli_weights_text(const ellm_model_info *info) {
    if (info->mixed_bits) return "mixed 8/4-bit";
    return info->weight_bits == 8 ? "8-bit" : info->weight_bits == 4 ? "4-bit" : "float";
}

const char *cli_human_bytes(uint64_t n, char *buf, size_t size) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, size, "%llu B", (unsigned long long)n);
    else snprintf(buf, size, "%.2f %s", v, units[u]);
    return buf;
}
