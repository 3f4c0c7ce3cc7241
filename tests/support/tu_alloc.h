/*
 * tu_alloc.h: the tests' allocator. An evs_allocator that counts what
 * goes through it (calls, blocks and bytes live, the peak) and fails when
 * told to: call N only, or every call from N on. With it a test walks
 * N = 1, 2, ... over an operation, as SQLite's malloc-failure loop does,
 * and checks that each failure ends cleanly and leaks nothing:
 *
 *     tu_alloc ta;
 *     tu_alloc_init(&ta);
 *     for (n = 1;; n++) {
 *         tu_alloc_fail(&ta, n, TU_FAIL_ONCE);
 *         rc = operation(&ta.a);      (0, or -ENOMEM when ta.failed)
 *         tu_alloc_stop(&ta);
 *         ... undo it; ta.live is back to what it was before ...
 *         if (!ta.failed)
 *             break;                  (every allocation has failed once)
 *     }
 *
 * Each block carries a header with its size and a mark, so the byte
 * counts are exact and a pointer that this allocator did not hand out
 * (freed with the wrong allocator, or twice) aborts the test at once.
 * It is thread-safe. It uses no Criterion, so a fuzz target may use it.
 */
#ifndef EVS_TU_ALLOC_H
#define EVS_TU_ALLOC_H

#include "evstore.h"

#include <pthread.h>
#include <stddef.h>

/* Which calls tu_alloc_fail makes fail. */
typedef enum tu_fail_mode {
    TU_FAIL_ONCE, /* call N only: the next one succeeds again */
    TU_FAIL_FROM  /* call N and every call after it (memory stays short) */
} tu_fail_mode;

typedef struct tu_alloc {
    evs_allocator a; /* what the library is given: &ta.a */
    /* Since tu_alloc_init or the last tu_alloc_fail: */
    long calls;  /* allocations and resizes asked for */
    long failed; /* of them, those refused on purpose */
    /* Since tu_alloc_init (the leak check: back to where it was): */
    long live;    /* blocks allocated and not freed */
    size_t bytes; /* bytes asked for in those blocks */
    size_t peak;  /* the most `bytes` has been */
    /* Private. */
    long fail_at; /* 0: nothing fails */
    tu_fail_mode mode;
    pthread_mutex_t mu;
} tu_alloc;

/* Makes ta an allocator with zero counts that fails nothing. */
void tu_alloc_init(tu_alloc *ta);

/* Restarts `calls` and `failed` at 0 and makes call n (1-based) fail,
 * and with TU_FAIL_FROM every call after it too; n = 1 with
 * TU_FAIL_FROM refuses all memory. n = 0 fails nothing. */
void tu_alloc_fail(tu_alloc *ta, long n, tu_fail_mode mode);

/* Fails nothing from now on; keeps every count. */
void tu_alloc_stop(tu_alloc *ta);

#endif
