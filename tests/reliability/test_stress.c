/*
 * test_stress.c: issue 7, section 5, as Criterion tests. The workload and
 * its checks are in stress.c, shared with the plain driver stress_main.c
 * that runs them under ThreadSanitizer. Size: EVS_STRESS_EVENTS (default
 * 10^6, a few seconds).
 */
#include <criterion/criterion.h>

#include "stress.h"
#include "testutil.h"

static char *dir;

static void setup(void)
{
    dir = tu_tmpdir("stress");
    cr_assert_not_null(dir);
}

static void teardown(void)
{
    tu_rmtree_free(dir);
}

TestSuite(stress, .init = setup, .fini = teardown);

Test(stress, writers_in_four_processes_and_a_tailing_reader_lose_nothing,
     .timeout = 600)
{
    stress_totals tot;

    cr_assert_eq(stress_run(dir, stress_wanted_events(), &tot), 0, "%s",
                 stress_error());
    stress_print(stderr, &tot);
}

Test(stress, a_killed_lock_holder_is_taken_over_by_another_process,
     .timeout = 120)
{
    cr_assert_eq(stress_killed_holder(dir), 0, "%s", stress_error());
}
