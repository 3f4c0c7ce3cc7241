/*
 * stress_main.c: the stress scenarios of stress.c (issue 7, section 5)
 * run from a plain main(), without Criterion, which does not start under
 * ThreadSanitizer. Exits 0 if both pass, 1 otherwise. The stores go in a
 * fresh directory under EVS_TEST_TMP (or /tmp), removed after a pass and
 * kept after a failure for a look. Size: EVS_STRESS_EVENTS.
 */
#include "stress.h"

#include "tu_file.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    char *root, run_dir[4200], holder_dir[4200];
    stress_totals tot;
    int failed = 0;

    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: stress_driver (size: EVS_STRESS_EVENTS)\n");
        return 2;
    }
    if (!(root = tu_tmpdir("stress-driver"))) {
        perror("a directory under EVS_TEST_TMP");
        return 1;
    }
    snprintf(run_dir, sizeof(run_dir), "%s/run", root);
    snprintf(holder_dir, sizeof(holder_dir), "%s/holder", root);

    if (stress_run(run_dir, stress_wanted_events(), &tot) == 0) {
        stress_print(stdout, &tot);
    } else {
        fprintf(stderr, "FAIL stress run: %s\n", stress_error());
        failed = 1;
    }
    if (stress_killed_holder(holder_dir) == 0) {
        printf("stress: a killed lock holder was taken over by another "
               "process\n");
    } else {
        fprintf(stderr, "FAIL killed lock holder: %s\n", stress_error());
        failed = 1;
    }
    if (failed) {
        fprintf(stderr, "stores kept in %s\n", root);
        free(root);
    } else {
        tu_rmtree_free(root);
    }
    return failed;
}
