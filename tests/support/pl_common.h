/*
 * pl_common.h: what the power-loss harnesses of the file backend
 * (test_powerloss.c) and of SQLite (test_sqlite_powerloss.c) share: the
 * seeded generator, the workload's events, the bytes each append is
 * known to have written, and the set of image digests already checked.
 * They assert (Criterion) on allocation failure.
 */
#ifndef EVS_TEST_PL_COMMON_H
#define EVS_TEST_PL_COMMON_H

#include "evstore.h"

#include <stddef.h>
#include <stdint.h>

/* splitmix64: the next number of the sequence seeded by *s. */
uint64_t plc_rnd(uint64_t *s);

/* Event data, a JSON object of about `size` bytes whose bytes differ from
 * block to block, tagged `tag`; heap memory. */
char *plc_data(uint64_t *rs, size_t size, uint64_t tag);

/* n events of execution number e from sequence `first` (the first of a
 * log is execution_started), ids made from `seed`, e and the sequence;
 * each event's data is 3-9 KiB when `big`, else pick(rs) bytes. Free
 * with plc_free_events. */
evs_event *plc_events(uint64_t *rs, uint64_t seed, int e, uint64_t first,
                      size_t n, int big, size_t (*pick)(uint64_t *rs));
void plc_free_events(evs_event *ev, size_t n);

/* The bytes of each line an append wrote, by sequence ([0] unused), and
 * the first operation of the call that wrote it. */
typedef struct plc_line {
    char *raw;
    size_t len;
    size_t op0;
} plc_line;

typedef struct plc_lines {
    plc_line *v;
    size_t n, cap; /* v[0..n) are set (or empty) */
} plc_lines;

/* Keeps the bytes `l` holds for sequences [first, first+n), read back
 * through a cursor, as written by the call that began at op0. Returns 0
 * or the cursor's error (1 would be a line missing: -ENODATA). */
int plc_keep_lines(plc_lines *ls, evs_log *l, uint64_t first, size_t n,
                   size_t op0);
void plc_lines_free(plc_lines *ls);

/* A set of 128-bit image digests, to check each distinct image once. */
typedef struct plc_dedup {
    uint64_t (*k)[2];
    size_t n, cap;
} plc_dedup;

/* Adds a digest; 1 if it was new, 0 if it was there. */
int plc_dedup_add(plc_dedup *d, const uint64_t key[2]);
void plc_dedup_free(plc_dedup *d);

#endif
