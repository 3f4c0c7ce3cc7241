/*
 * run_steps.c: the C side of bench/py_steps.py, the cost of a step from
 * Python beside the same from C. One run of N trivial sequential steps
 * (evs_run_step, input "[]", output "1", each named "s", so "s", "s#2",
 * ...), in a store opened with durability full or none; prints the time
 * of each step, from the return of the one before (the first from the
 * open's), in nanoseconds, one per line.
 *
 * Usage: run_steps STORE RUN_ID N full|none
 */
#define _POSIX_C_SOURCE 200809L

#include <evstore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int trivial(void *arg, evs_run *r, const char *input)
{
    (void)arg;
    (void)input;
    return evs_run_step_output(r, "1");
}

int main(int argc, char **argv)
{
    evs_store_opts o;
    evs_store *st = NULL;
    evs_run *r = NULL;
    evs_error_info err;
    long long *ns, t;
    long n;
    int rc;

    if (argc != 5 || (n = strtol(argv[3], NULL, 10)) <= 0 ||
        (strcmp(argv[4], "full") != 0 && strcmp(argv[4], "none") != 0)) {
        fprintf(stderr, "usage: run_steps STORE RUN_ID N full|none\n");
        return 2;
    }
    ns = calloc((size_t)n, sizeof(*ns));
    evs_store_opts_init(&o);
    o.durability = strcmp(argv[4], "full") == 0 ? EVS_SYNC_FULL
                                                 : EVS_SYNC_NONE;
    if (!ns || (rc = evs_store_open(argv[1], &o, &st)) != 0) {
        fprintf(stderr, "run_steps: cannot open the store %s\n", argv[1]);
        return 1;
    }
    rc = evs_run_open(st, argv[2], "bench", "1", NULL, NULL, &r, &err);
    t = now_ns();
    for (long i = 0; rc == 0 && i < n; i++) {
        rc = evs_run_step(r, "s", "[]", NULL, trivial, NULL, NULL, &err);
        ns[i] = now_ns() - t;
        t += ns[i];
    }
    if (rc == 0)
        rc = evs_run_complete(r, NULL, &err);
    evs_run_close(r);
    evs_store_close(st);
    if (rc != 0) {
        fprintf(stderr, "run_steps: %s (%s)\n", err.msg, evs_err_name(rc));
        return 1;
    }
    for (long i = 0; i < n; i++)
        printf("%lld\n", ns[i]);
    free(ns);
    return 0;
}
