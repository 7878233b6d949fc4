/*
 * testing.h - assertions shared by the tests (src/<stage>/test_*.c).
 *
 * CHECK records a failure with file:line and a printf-style message and goes
 * on, so one run shows every failure; test_finish() prints the summary line
 * and gives main's exit status. test_data_dir() is the reference data folder
 * (ELLM_DATA_DIR, set by CTest); a test that needs it fails when it is
 * missing: tests never skip.
 */
#ifndef ELLM_TESTING_H
#define ELLM_TESTING_H

#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"

static int test_failures;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            test_failures++;                                              \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);         \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
        }                                                                 \
    } while (0)

static inline int test_finish(const char *name) {
    if (test_failures) fprintf(stderr, "%s: %d failures\n", name, test_failures);
    else printf("%s: all passed\n", name);
    return test_failures ? 1 : 0;
}

/* NULL (and a recorded failure) when the reference data is missing. */
static inline const char *test_data_dir(void) {
    const char *d = getenv("ELLM_DATA_DIR");
    if (!d || !ellm_path_is_dir(d)) {
        CHECK(0, "ELLM_DATA_DIR is not set or not a directory: the reference data (../shared/data) is needed");
        return NULL;
    }
    return d;
}

#endif /* ELLM_TESTING_H */
