/*
 * evstore/gc.h: applying the store's retention policy (evstore/settings.h)
 * and the store's statistics.
 *
 * evs_store_gc deletes the ended executions (completed, failed,
 * terminated, continued as new) whose end lies further back than their
 * status's retention, as evs_exec_delete deletes one: under its writer
 * lock, moved out of sight, the move made durable, then removed. What it
 * never does:
 *  - touch an execution that has not ended (running, waiting, paused), or
 *    whose snapshot cannot be read (its status is then unknown);
 *  - touch one whose writer lock is held (a runner or writer at work on
 *    it), or whose log has moved past its snapshot (the decision was made
 *    on an out-of-date record): both are skipped, to the next gc;
 *  - break the lineage of a kept execution: an expired execution that a
 *    kept one continues or retries, directly or through others
 *    (execution_started's lineage: continued_from, retry_of), is kept,
 *    so that `evdump chain` of the kept one still resolves.
 *
 * With retention.archive set, each execution is archived into that
 * directory before it is deleted (evs_archive_exec, evstore/archive.h):
 * a crash in between leaves the execution or a verified bundle, and the
 * record an archived execution leaves in the store lets a kept
 * execution's lineage name it as archived; so ancestors are not kept
 * back then. An execution whose archiving fails is not deleted.
 *
 * Threads: evs_store_gc and evs_store_stats_get may run on any thread,
 * beside any other use of the store, in this process or others.
 */
#ifndef EVSTORE_GC_H
#define EVSTORE_GC_H

#include "settings.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What gc did with one expired execution. */
typedef enum evs_gc_action {
    EVS_GC_DELETED = 0,      /* deleted (in a dry run: would be) */
    EVS_GC_KEPT_LINEAGE = 1, /* kept: a kept execution continues or
                                retries it */
    EVS_GC_SKIPPED = 2,      /* left for the next gc: `err` is
                                EVS_ELOCKED (a writer holds it),
                                EVS_ESTALE (its log is not where its
                                snapshot says) or -ENOENT (gone) */
    EVS_GC_FAILED = 3        /* deleting failed with `err`; it may be
                                gone (evs_exec_exists tells) */
} evs_gc_action;

/** One expired execution, as gc reports it. Borrowed for the call. */
typedef struct evs_gc_item {
    evs_span id;
    evs_span status;
    evs_span workflow_name;
    int64_t ended_us;  /* its end time (its last update when it has none) */
    int64_t retain_us; /* its status's retention */
    evs_gc_action action;
    int err;
} evs_gc_item;

typedef void (*evs_gc_fn)(void *ctx, const evs_gc_item *it);

typedef struct evs_gc_opts {
    size_t size;     /* set by evs_gc_opts_init */
    int64_t now_us;  /* the time ages are measured at; 0 (default): now */
    int dry_run;     /* report, delete nothing; default 0 */
    const evs_settings *settings; /* the policy; NULL (default): the
                                     store's, read with evs_settings_load */
    evs_gc_fn on_item; /* called for each expired execution, newest
                          first, after what was done with it; may be NULL */
    void *ctx;
} evs_gc_opts;

/** What one gc did. */
typedef struct evs_gc_result {
    size_t executions;   /* listed */
    size_t expired;      /* ended, and past their retention */
    size_t deleted;      /* deleted (dry run: would be) */
    size_t kept_lineage; /* expired, kept for a kept one's lineage */
    size_t skipped;      /* expired, left for the next gc */
    size_t failed;       /* expired, deleting failed */
} evs_gc_result;

/** Fills *o with the defaults and o->size (common.h, "Options
 *  structs"). `o` must not be NULL. */
EVS_EXTERN void evs_gc_opts_init(evs_gc_opts *o);

/**
 * Applies the retention policy to store `s` (see above). The listing
 * comes from the store's listing index (evs_exec_list), so a gc reads one
 * snapshot header per execution at most and opens only the executions it
 * deletes, and the executions it keeps when lineage has to be checked
 * (their first event). Deletions share one fsync of the store directory
 * per batch of up to 256.
 * `o` may be NULL (the defaults); `res` (may be NULL) gets the counts;
 * `ei` (may be NULL) details a failure.
 * Returns 0 when every expired execution was dealt with (skipped ones
 * included), the settings' refusal (EVS_ECORRUPT, EVS_EFORMAT: nothing
 * is deleted on a guess), -ENOENT or -ENOTDIR (retention.archive names
 * no directory; nothing deleted), -EINVAL (bad options), or the first
 * deletion's (or archiving's) failure (the others were still tried).
 */
EVS_EXTERN int evs_store_gc(evs_store *s, const evs_gc_opts *o,
                            evs_gc_result *res, evs_error_info *ei);

/* ------------------------------------------------------------------ */
/* Statistics                                                         */
/* ------------------------------------------------------------------ */

/** A name and how many times it was met. Spans into the stats' memory. */
typedef struct evs_stats_count {
    evs_span name;
    uint64_t count;
} evs_stats_count;

/** One execution among the largest. Spans into the stats' memory. */
typedef struct evs_stats_exec {
    evs_span id;
    evs_span status;
    evs_span workflow_name;
    uint64_t events; /* its log's last sequence */
    uint64_t bytes;  /* its log's size */
} evs_stats_exec;

typedef struct evs_store_stats {
    uint64_t executions;
    uint64_t unreadable;        /* snapshot missing or damaged: status "?" */
    evs_stats_count *by_status; /* most first, then by name */
    size_t n_status;
    evs_stats_count *by_workflow; /* most first, then by name */
    size_t n_workflow;
    uint64_t events, bytes;       /* in all logs */
    uint64_t events_p50, events_p99, events_max; /* per execution */
    uint64_t bytes_p50, bytes_p99, bytes_max;
    evs_stats_exec *largest; /* by bytes, largest first */
    size_t n_largest;
    int64_t archived;        /* entries of STORE/.archived/; -1: no such
                                directory */
    uint64_t cut_files;      /* cut-*.jsonl files (torn tails cut back) */
    uint64_t cut_bytes;      /* their bytes */
    uint64_t cut_executions; /* executions with at least one */
    uint64_t stale_snapshots; /* snapshot behind its log */
    uint64_t unreadable_logs; /* a log that could not be read */
    /* private */
    void *mem_;
    const evs_allocator *alloc_;
} evs_store_stats;

/**
 * Gathers the statistics of store `s` into *out: the listing (from the
 * index) for statuses and workflows, and for each execution one look at
 * its directory (cut files) and at the end of its log (events, bytes,
 * whether the snapshot is behind it). `top` is how many of the largest
 * histories to keep (0: none). Free *out with evs_store_stats_free
 * (also after an error, which leaves it empty).
 * Returns 0, -EINVAL (out is NULL), -ENOMEM or -errno.
 */
EVS_EXTERN int evs_store_stats_get(evs_store *s, size_t top,
                                   evs_store_stats *out);

/** Frees what evs_store_stats_get put in *st and empties it. Accepts
 *  NULL and empty (zeroed) stats. */
EVS_EXTERN void evs_store_stats_free(evs_store_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_GC_H */
