/*
 * histories.h: building event histories for the replay tests, either by
 * hand (ids and timestamps filled in here, applied with evs_replay_apply)
 * or recorded into a real store with the recorder.
 */
#ifndef EVS_TEST_HISTORIES_H
#define EVS_TEST_HISTORIES_H

#include "evstore.h"
#include "evstore/replay.h"

#include <stddef.h>
#include <stdint.h>

/* 2026-11-22T10:15:30.000000Z: hand-made events are 1 ms apart from it. */
#define HIST_T0 INT64_C(1795342530000000)

/* A history: events in sequence order, each owning its strings. */
typedef struct hist {
    evs_event *ev;
    size_t n, cap;
    int hand;   /* 1: ids "e<seq>", execution "x", times from HIST_T0;
                    0: left empty for the recorder to fill in */
    char **mem; /* the strings the events point to */
    size_t nmem, memcap;
} hist;

void hist_init(hist *h, int hand);
void hist_free(hist *h);

/* Adds an event and returns its sequence (n after the add). `path` NULL
 * means "main", `step` NULL no step; `fmt` (printf; NULL: "{}") gives
 * `data`. */
uint64_t hist_add(hist *h, const char *type, const char *path, const char *step,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Drops the events from index n on. */
void hist_truncate(hist *h, size_t n);

/* Records events [from, to) of h into execution `id` of store s: from 0
 * creates the execution with the first event (which must be
 * execution_started) and records the rest with a recorder on a writer
 * log, then flushes. Returns 0 or the first error. */
int hist_record(const hist *h, evs_store *s, const char *id, size_t from,
                size_t to);

/* Applies events [from, to) of h; stops at the first non-zero result and
 * returns it. */
int hist_apply(evs_replay *r, const hist *h, size_t from, size_t to,
               evs_error_info *v);

/* The replayer's state JSON as a NUL-terminated heap string (free());
 * asserts that writing it succeeds. The replayer must use the default
 * allocator. */
char *hist_state(const evs_replay *r, size_t *len);

/* A new replayer with the default options; asserts success. */
evs_replay *hist_replayer(void);
/* The same in the full (0) or the compact (1) mode. */
evs_replay *hist_replayer_mode(int compact);

/* A span equals a C string (for Criterion tests). */
#define assert_span(got, want)                                                 \
    do {                                                                       \
        evs_span g_ = (got);                                                   \
        const char *w_ = (want);                                               \
        size_t n_ = strlen(w_);                                                \
        cr_assert(g_.len == n_ && (n_ == 0 || memcmp(g_.ptr, w_, n_) == 0),    \
                  "%s: got '%.*s', want '%s'", #got, (int)g_.len,              \
                  g_.ptr ? g_.ptr : "", w_);                                   \
    } while (0)

/* Replays the events of execution `id` through sequence `to` (0: all)
 * by hand: a reader log, a cursor and evs_replay_apply for each event,
 * into a new strict replayer. */
evs_replay *hist_replay_by_hand(evs_store *s, const char *id, uint64_t to);

/* Under ASan, a leak check to run at the end of each test (Criterion's
 * children exit without LeakSanitizer's own check). */
void hist_leak_check(void);

#endif
