/*
 * test_util.h - helpers shared by the model tests: checks, the data
 * directory, the stories260K reference ids.
 */
#ifndef ELLM_MODEL_TEST_UTIL_H
#define ELLM_MODEL_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "entrollm.h"

static int t_failures = 0;
#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fprintf(stderr, "\n");                               \
            t_failures++;                                        \
        }                                                        \
    } while (0)
/* $ELLM_DATA_DIR/rel, or exit(1) with a clear message when it is not set. */
static inline char *t_data_path(const char *rel) {
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

static inline void t_die(const char *what, const ellm_error *err) {
    fprintf(stderr, "FAIL: %s: %s\n", what, err->message);
    exit(1);
}

/* The ids line of stories260K/reference-greedy-once-upon-a-time.txt. */
static inline int32_t *t_reference_ids(size_t *n) {
    char *path = t_data_path("stories260K/reference-greedy-once-upon-a-time.txt");
    uint8_t *text;
    size_t size;
    ellm_error err;
    if (ellm_read_file(path, &text, &size, &err)) t_die("reference ids", &err);
    free(path);
    char *p = strstr((char *)text, "# ids:");
    if (!p) {
        fprintf(stderr, "FAIL: reference file has no '# ids:' line\n");
        exit(1);
    }
    p += 6;
    int32_t *ids = malloc(size * sizeof *ids);
    *n = 0;
    for (;;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        ids[(*n)++] = (int32_t)v;
        p = end;
    }
    free(text);
    return ids;
}

#endif
