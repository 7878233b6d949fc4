/*
 * testing.h - assertions shared by the tests (src/<stage>/test_*.c).
 *
 * CHECK(cond) or CHECK(cond, "printf format", ...) records a failure with
 * file:line, the condition and the message, and goes on, so one run shows
 * every failure; test_finish() prints the summary line and gives main's exit
 * status. REQUIRE is CHECK for preconditions the rest of a test cannot run
 * without: it ends the test (exit status 1) at once. A file that defines
 * TESTING_STOP_AT_FIRST_FAILURE before including this header makes every
 * CHECK a REQUIRE (the formats tests, whose main returns 0 at the end).
 *
 * test_data_dir() / test_data_path() give the reference data (ELLM_DATA_DIR,
 * set by CTest); a test that needs it fails when it is missing: tests never
 * skip.
 */
#ifndef ELLM_TESTING_H
#define ELLM_TESTING_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static int test_failures;

/* Prints "FAIL file:line: cond: message" and counts the failure. fmt starts
 * with ": " (see CHECK); a bare ": " means no message. */
__attribute__((format(printf, 4, 5))) static inline void test_fail_at(const char *file, int line, const char *cond,
                                                                     const char *fmt, ...) {
    test_failures++;
    fprintf(stderr, "FAIL %s:%d: %s", file, line, cond);
    if (strcmp(fmt, ": ") != 0) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

#ifdef TESTING_STOP_AT_FIRST_FAILURE
#define TEST_AFTER_FAILURE_() exit(1)
#else
#define TEST_AFTER_FAILURE_() ((void)0)
#endif

/* The message, when given, must start with a string literal. */
#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            test_fail_at(__FILE__, __LINE__, #cond, ": " __VA_ARGS__);   \
            TEST_AFTER_FAILURE_();                                        \
        }                                                                 \
    } while (0)

#define REQUIRE(cond, ...)                                                \
    do {                                                                  \
        if (!(cond)) {                                                    \
            test_fail_at(__FILE__, __LINE__, #cond, ": " __VA_ARGS__);   \
            exit(1);                                                      \
        }                                                                 \
    } while (0)

/* |a - b| <= tol, printing both values when not. */
#define CHECK_NEAR(a, b, tol)                                                                          \
    do {                                                                                               \
        double a_ = (a), b_ = (b);                                                                     \
        if (!(fabs(a_ - b_) <= (tol))) {                                                               \
            test_fail_at(__FILE__, __LINE__, #a " ~ " #b, ": %.9g, expected %.9g (+/- %g)", a_, b_,    \
                         (double)(tol));                                                               \
            TEST_AFTER_FAILURE_();                                                                     \
        }                                                                                              \
    } while (0)

/* expr (an ellm_status, filling the ellm_error err) must succeed. */
#define CHECK_OK(expr, err)                                                                            \
    do {                                                                                               \
        ellm_status s_ = (expr);                                                                       \
        if (s_ != ELLM_OK) {                                                                           \
            test_fail_at(__FILE__, __LINE__, #expr, ": %s: %s", ellm_status_name(s_), (err).message); \
            TEST_AFTER_FAILURE_();                                                                     \
        }                                                                                              \
    } while (0)

/* expr must fail with status code and a message containing needle. */
#define CHECK_FAIL(expr, code, needle, err)                                                              \
    do {                                                                                                 \
        ellm_status s_ = (expr);                                                                         \
        if (s_ != (code) || !strstr((err).message, (needle))) {                                          \
            test_fail_at(__FILE__, __LINE__, #expr, ": expected status %d with \"%s\", got %d: %s",      \
                         (int)(code), (needle), (int)s_, (err).message);                                 \
            TEST_AFTER_FAILURE_();                                                                       \
        }                                                                                                \
    } while (0)

/* Ends the test (exit status 1) after an operation it cannot go on without failed. */
static inline void test_die(const char *what, const ellm_error *err) {
    fprintf(stderr, "FAIL: %s: %s\n", what, err->message);
    exit(1);
}

static inline int test_finish(const char *name) {
    if (test_failures) fprintf(stderr, "%s: %d failures\n", name, test_failures);
    else printf("%s: all passed\n", name);
    return test_failures ? 1 : 0;
}

/* NULL (and a recorded failure) when the reference data is missing. */
static inline const char *test_data_dir(void) {
    const char *d = getenv("ELLM_DATA_DIR");
    if (!d || !*d || !ellm_path_is_dir(d)) {
        CHECK(0, "ELLM_DATA_DIR is not set or not a directory: the reference data (../shared/data) is needed");
        return NULL;
    }
    return d;
}

/* $ELLM_DATA_DIR/rel (to free), or ends the test with a clear message when
 * the variable is not set or the file is missing. */
static inline char *test_data_path(const char *rel) {
    const char *dir = getenv("ELLM_DATA_DIR");
    if (!dir || !*dir) {
        fprintf(stderr, "FAIL: ELLM_DATA_DIR is not set (it must name the shared reference data directory)\n");
        exit(1);
    }
    char *p = ellm_path_join(dir, rel);
    if (!p || !ellm_path_exists(p)) {
        fprintf(stderr, "FAIL: reference data %s is missing\n", p ? p : rel);
        exit(1);
    }
    return p;
}

#endif /* ELLM_TESTING_H */
