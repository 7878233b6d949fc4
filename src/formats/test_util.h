/* test_util.h - tiny assertion helpers for the formats tests. */
#ifndef ELLM_FORMATS_TEST_UTIL_H
#define ELLM_FORMATS_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "entrollm.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

#define CHECK_OK(expr, err)                                                                   \
    do {                                                                                      \
        ellm_status s_ = (expr);                                                              \
        if (s_ != ELLM_OK) {                                                                  \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, (err).message); \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

/* Expects expr to fail with code and a message containing needle. */
#define CHECK_FAIL(expr, code, needle, err)                                                        \
    do {                                                                                           \
        ellm_status s_ = (expr);                                                                   \
        if (s_ != (code) || !strstr((err).message, (needle))) {                                    \
            fprintf(stderr, "%s:%d: %s: expected status %d with \"%s\", got %d: %s\n", __FILE__,   \
                    __LINE__, #expr, (int)(code), (needle), (int)s_, (err).message);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static inline const char *test_data_dir(void) {
    const char *d = getenv("ELLM_DATA_DIR");
    if (!d || !*d) {
        fprintf(stderr, "ELLM_DATA_DIR is not set: it must name the shared reference data "
                        "directory (CTest sets it)\n");
        exit(1);
    }
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/MANIFEST.md", d);
    FILE *f = fopen(probe, "rb");
    if (!f) {
        fprintf(stderr, "ELLM_DATA_DIR=%s does not hold the reference data (no MANIFEST.md)\n", d);
        exit(1);
    }
    fclose(f);
    return d;
}

#endif
