/*
 * stress_main.c: the stress scenarios of stress.c (issue 7, section 5)
 * run from a plain main(), without Criterion, which does not start under
 * ThreadSanitizer. Exits 0 if both pass, 1 otherwise. The stores go in a
 * fresh directory under EVS_TEST_TMP (or /tmp), removed after a pass and
 * kept after a failure for a look. Size: EVS_STRESS_EVENTS.
 */
#include "stress.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int remove_entry(const char *path, const struct stat *sb, int type,
                        struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *base = getenv("EVS_TEST_TMP");
    char root[4096], run_dir[4200], holder_dir[4200];
    stress_totals tot;
    int failed = 0;

    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: stress_driver (size: EVS_STRESS_EVENTS)\n");
        return 2;
    }
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(root, sizeof(root), "%s/evs-stress-driver-XXXXXX", base);
    if (!mkdtemp(root)) {
        perror(root);
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
    if (failed)
        fprintf(stderr, "stores kept in %s\n", root);
    else
        nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed;
}
