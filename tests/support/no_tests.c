/*
 * no_tests.c: a Criterion suite without a test, which must fail: the
 * check of main.c (tests/meson.build registers it with should_fail).
 */
#include <criterion/criterion.h>

TestSuite(no_tests);
