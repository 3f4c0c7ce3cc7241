/*
 * main.c: the main() of every Criterion suite. It is Criterion's own
 * (criterion.h shows it) plus one check: a run in which no test ran to a
 * verdict fails. A suite whose tests were all deleted, renamed away or
 * left out by the preprocessor would otherwise pass with nothing tested.
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tests that ran to a verdict (passed, failed or crashed), counted by
 * the runner when it reports the end of the run. */
static size_t ran, skipped;

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    ran = stats->nb_tests - stats->tests_skipped;
    skipped = stats->tests_skipped;
}

int main(int argc, char *argv[])
{
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;

    /* False for --help, --list, --version: nothing is to run. */
    if (criterion_handle_args(argc, argv, true)) {
        result = !criterion_run_all_tests(tests);
        /* On another backend than files (EVS_TEST_BACKEND,
         * testutil.h), say how many tests ran on it and how many are
         * another backend's own (the file backend's, TU_FILE_ONLY, or
         * PostgreSQL's leases). */
        const char *be = getenv("EVS_TEST_BACKEND");
        if (be && *be && strcmp(be, "file") != 0)
            fprintf(stderr,
                    "%s: backend %s: %zu tests ran, %zu skipped as another "
                    "backend's own (TU_FILE_ONLY, PostgreSQL's leases)\n",
                    argv[0], be, ran, skipped);
        if (ran == 0) {
            fprintf(stderr,
                    "%s: no test ran; a registered suite must "
                    "have tests (tests/meson.build)\n",
                    argv[0]);
            result = 1;
        }
    }
    criterion_finalize(tests);
    return result;
}
