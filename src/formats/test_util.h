/* test_util.h - assertions for the formats tests: those of common/testing.h,
 * each stopping the test at its first failure (these tests' main returns 0
 * at the end instead of calling test_finish). */
#ifndef ELLM_FORMATS_TEST_UTIL_H
#define ELLM_FORMATS_TEST_UTIL_H

#define TESTING_STOP_AT_FIRST_FAILURE
#include "common/testing.h"
#include "entrollm.h"

#endif
