/*
 * stress.h: the workload of issue 7, section 5 (tests/RELIABILITY.md),
 * free of Criterion so that the same code runs from the Criterion suite
 * (test_stress.c) and from a plain driver (stress_main.c), which is what
 * runs under ThreadSanitizer: Criterion 2.4.1 does not start under it.
 *
 * Both scenarios fork. They must be called from a process that has no
 * other thread, with an empty store directory each. They return 0, or -1
 * after recording the first failure, which stress_error() tells.
 */
#ifndef EVS_TEST_STRESS_H
#define EVS_TEST_STRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct stress_totals {
    uint64_t acked;     /* events acknowledged */
    uint64_t appends;   /* successful appends */
    uint64_t seqs;      /* sequences checked in the final read */
    uint64_t opens;     /* writer opens of the shared logs */
    uint64_t handoffs;  /* changes of writer process in them */
    uint64_t conflicts; /* EVS_ECONFLICT retried */
    uint64_t rd_rounds, rd_refreshes, rd_cursors, rd_events;
    double seconds; /* from the first fork to the writers' end */
} stress_totals;

/* EVS_STRESS_EVENTS, or 10^6; at least 4 events per writer thread. */
uint64_t stress_wanted_events(void);

/* Four writer processes of eight threads append about `events` events
 * to shared and own executions in store `dir` while a reader process
 * tails them; then every log is read whole and checked against the
 * acknowledgements. Fills *tot on success. */
int stress_run(const char *dir, uint64_t events, stress_totals *tot);

/* Prints the totals of a successful stress_run() as one line. */
void stress_print(FILE *f, const stress_totals *tot);

/* A writer killed with SIGKILL while it holds the lock of execution "k"
 * is taken over by a waiting open in another process, then by a retried
 * non-waiting open in this one. */
int stress_killed_holder(const char *dir);

/* The first failure of the last scenario run, or "" if none. Borrowed,
 * valid until the next scenario starts. */
const char *stress_error(void);

#endif
