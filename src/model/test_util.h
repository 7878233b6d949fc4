/*
 * test_util.h - helpers shared by the model tests: the stories260K
 * reference ids (assertions and the data directory: common/testing.h).
 */
#ifndef ELLM_MODEL_TEST_UTIL_H
#define ELLM_MODEL_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/testing.h"
#include "entrollm.h"

/* The model tests' names for the shared helpers. */
#define t_failures test_failures
#define t_data_path test_data_path
#define t_die test_die

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
