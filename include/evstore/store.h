/*
 * evstore/store.h: the event store.
 *
 * A store is a directory. Each execution lives in its own subdirectory
 * holding an append-only, sequenced, checksummed event log (events.jsonl)
 * and an atomically replaced snapshot (snapshot.json). FORMAT.md gives the
 * bytes; this header gives the API. A store may also live in one SQLite
 * database (location "sqlite:PATH"), with the same lines byte for byte
 * and the same promises; eventstore/BACKENDS.md says how each is kept
 * there, and where this header speaks of files it describes the file
 * backend.
 *
 * Lifecycle: evs_store_open -> evs_exec_create / evs_log_open ->
 * evs_log_append, evs_cursor_* -> evs_log_close -> evs_store_close.
 *
 * Threads: an evs_store may be shared by threads. An evs_log may be shared
 * too; its calls are serialised by a mutex. A cursor belongs to one thread.
 *
 * Processes: one writer per execution, enforced with an open-file-
 * description lock on its log, so a killed writer leaves no stale lock.
 * Readers take no lock and never modify a file.
 */
#ifndef EVSTORE_STORE_H
#define EVSTORE_STORE_H

#include "format.h"
#include "io.h"
#include "snapshot.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evs_store evs_store;
typedef struct evs_log evs_log;
typedef struct evs_cursor evs_cursor;

/**
 * Durability of appends. Whatever the mode, a crash never leaves a log
 * that reads back wrong: at worst it loses a suffix of appends.
 *
 *  EVS_SYNC_FULL   (default) fdatasync before evs_log_append returns. A
 *                  crash, even a power loss, loses nothing acknowledged.
 *  EVS_SYNC_BATCH  fdatasync once `sync_bytes` bytes or `sync_interval_ms`
 *                  milliseconds have accumulated since the last sync
 *                  (checked at each append), at evs_log_sync() and at
 *                  close. A process crash loses nothing; a power loss or
 *                  OS crash can lose the appends since the last sync.
 *  EVS_SYNC_NONE   never syncs by itself (evs_log_sync() still does). A
 *                  process crash loses nothing; a power loss or OS crash
 *                  can lose everything the OS had not yet written back.
 */
typedef enum evs_durability {
    EVS_SYNC_FULL = 0,
    EVS_SYNC_BATCH = 1,
    EVS_SYNC_NONE = 2
} evs_durability;

/**
 * What a writer's open does with damage at the end of the log.
 *
 *  EVS_RECOVER_TAIL  (default) cut back only a torn tail: the bytes after
 *                    the last complete append, when no complete append
 *                    follows them. Damage with complete appends after it
 *                    is left alone and reported as EVS_ECORRUPT by
 *                    whoever reads it.
 *  EVS_RECOVER_POINT_IN_TIME  also cut at the first damage found while
 *                    checking the end of the log, dropping any complete
 *                    appends after it. For stores run with a weaker
 *                    durability mode, where a power loss may leave later
 *                    blocks on disk without earlier ones.
 *
 * Whatever is cut is first saved, byte for byte, to a file next to the log
 * (FORMAT.md, "Recovery"), and reported in evs_recovery_info and the log
 * hook. Nothing is thrown away.
 */
typedef enum evs_recovery_mode {
    EVS_RECOVER_TAIL = 0,
    EVS_RECOVER_POINT_IN_TIME = 1
} evs_recovery_mode;

/**
 * History limits (FORMAT.md §3.1). Every execution's history is held to
 * a warning threshold and a hard limit, each in events and in bytes of
 * its log; the store's options give them for every execution, and a
 * definition (WORKFLOWS.md §1, `history_limits`) or a run's options
 * (RUNS.md) may lower them for its own.
 *
 * Past a warning threshold, the layer that owns the execution (the
 * orchestrator, a run) records one `history_warning` event and logs it;
 * the store itself only keeps the numbers. The hard limit is the
 * store's: an append that would take the log past it (more than
 * max_events events, or more than max_bytes bytes) is refused with
 * EVS_ELIMIT, naming the execution, unless its last event ends the
 * execution (execution_completed, _failed, _terminated or
 * _continue_as_new), which may pass the limit by at most
 * EVS_LIMIT_RESERVE_EVENTS events and EVS_LIMIT_RESERVE_BYTES bytes: an
 * execution at its limit can always record its end. The orchestrator and
 * the run layer stop before the limit and fail the execution with the
 * error type "history_limit".
 *
 * In evs_store_opts, 0 means the default below and EVS_LIMIT_NONE no
 * limit (no warning).
 */
#define EVS_LIMIT_NONE UINT64_MAX
#define EVS_LIMIT_WARN_EVENTS_DEFAULT 10240u
#define EVS_LIMIT_WARN_BYTES_DEFAULT ((uint64_t)10 << 20)
#define EVS_LIMIT_MAX_EVENTS_DEFAULT 51200u
#define EVS_LIMIT_MAX_BYTES_DEFAULT ((uint64_t)50 << 20)
/** How far an append that ends the execution may pass the hard limit. */
#define EVS_LIMIT_RESERVE_EVENTS 1024u
#define EVS_LIMIT_RESERVE_BYTES ((uint64_t)1 << 20)

typedef struct evs_store_opts {
    size_t size;                /* set by evs_store_opts_init (common.h,
                                    "Options structs") */
    evs_durability durability;  /* default EVS_SYNC_FULL */
    uint64_t sync_bytes;        /* EVS_SYNC_BATCH; default 1 MiB */
    uint32_t sync_interval_ms;  /* EVS_SYNC_BATCH; default 100 */
    size_t max_line;            /* default EVS_LINE_MAX_DEFAULT (16 MiB) */
    evs_recovery_mode recovery; /* default EVS_RECOVER_TAIL */
    int create;                 /* create the directory if missing (0700;
                                    SQLite: the database file;
                                    PostgreSQL: the tables); default 1 */
    int allow_unsafe_perms;     /* accept a root writable by group or
                                    others; default 0 */
    const evs_allocator *alloc; /* default: the C library */
    evs_log_fn log_fn;          /* structured records (common.h); default:
                                    none. evs_log_stderr is a ready one */
    void *log_ctx;
    const evs_io *io; /* default: evs_io_posix() */
    /* History limits (above): EVS_LIMIT_NONE is none; 0 (what
     * evs_store_opts_init sets) takes the store's settings file's
     * limits.* (evstore/settings.h; 0 there is none), else the default.
     * evs_store_get_opts shows the values that hold. */
    uint64_t warn_events; /* default 10,240 */
    uint64_t warn_bytes;  /* default 10 MiB */
    uint64_t max_events;  /* default 51,200 */
    uint64_t max_bytes;   /* default 50 MiB */
    /* PostgreSQL: how long a writer's lease lasts after its claim or its
     * last renewal (evs_log_renew, or an append made once half of it
     * has passed), in milliseconds; default 30,000. Other backends
     * ignore it (their writers hold a lock). */
    uint32_t lease_ms;
    /* PostgreSQL: the most connections the handle opens to the server,
     * each made when first needed and shared by the handle's threads (a
     * statement or transaction takes one for its time, so one thread's
     * commit waiting for the server's disk does not hold up another's
     * statement); 1 to 64, default 4. A watch (evs_watch_open) has its
     * own besides. Other backends ignore it. */
    uint32_t connections;
} evs_store_opts;

/**
 * Fills *o with the defaults above and o->size with sizeof(*o). Always
 * call it before setting fields, so fields added later start sensible
 * (common.h, "Options structs"). `o` must not be NULL. Thread-safe.
 */
EVS_EXTERN void evs_store_opts_init(evs_store_opts *o);

/**
 * Opens the store at location `path` (NUL-terminated), which names its
 * backend (eventstore/BACKENDS.md):
 *
 *  - a directory path: the file backend (FORMAT.md), created (0700) if
 *    missing and `create` is set;
 *  - "sqlite:PATH": the SQLite backend, the whole store in database file
 *    PATH (made 0600, with its directory, one level, if missing and
 *    `create` is set); a directory whose name begins with "sqlite:" is
 *    written "./sqlite:...";
 *  - "postgresql://..." or "postgres://..." (libpq's URI syntax,
 *    "postgresql:///DB?host=/socket/dir" for a Unix socket): the
 *    PostgreSQL backend, the store in the tables of the connection's
 *    schema (its search_path), made there when missing and `create` is
 *    set. Its writers hold leases, not locks (lease_ms, evs_log_renew).
 *
 * `opts` may be NULL for the defaults; it is copied (up to opts->size,
 * common.h). Options that only the file backend uses (io) are ignored by
 * the others.
 *
 * Returns 0 and sets *out, or: -ENOENT (missing and create == 0),
 * -ENOTDIR, EVS_EUNSAFE (group- or world-writable and not allowed),
 * -EINVAL (bad options, opts not filled in by evs_store_opts_init, or
 * "sqlite:" with no path, a PostgreSQL URI libpq cannot read; the log
 * hook says why), EVS_ENOBACKEND (a backend not built in), EVS_EFORMAT
 * (a SQLite or PostgreSQL schema newer than this library's; the log hook
 * says which), EVS_ECORRUPT (not a database), -ECONNREFUSED (no
 * PostgreSQL server could be reached or it refused the connection; the
 * log hook gives libpq's reason), -ENOMEM, or another -errno.
 */
EVS_EXTERN int evs_store_open(const char *path, const evs_store_opts *opts,
                              evs_store **out);

/** The options the store runs with (after defaults). Borrowed. */
EVS_EXTERN const evs_store_opts *evs_store_get_opts(const evs_store *s);

/** The allocator the store runs with (never NULL: the C library's when
 *  none was given): what frees the buffers its calls return. */
EVS_EXTERN const evs_allocator *evs_store_allocator(const evs_store *s);

/* ------------------------------------------------------------------ */
/* Executions                                                         */
/* ------------------------------------------------------------------ */

/**
 * Creates execution `id` atomically: its directory, its log holding
 * `events[0..n)` (sequences 1..n; n may be 0) and its snapshot `snap`
 * (which may be NULL for a minimal one with status "running") appear
 * together or not at all, even across a crash. It is listed as soon as
 * this returns. The directory is built under a temporary name and renamed
 * into place, and everything is fsynced unless the store runs
 * EVS_SYNC_NONE. Under EVS_SYNC_NONE a power loss may leave the
 * directory without its files: such a directory has no log, so it is no
 * execution (evs_exec_exists is false; a listing may still show it from
 * its snapshot, with no log to open), a later create of that id replaces
 * it, and cleanup removes it. On an error after the rename (a
 * failed sync of the store directory) the execution may exist;
 * evs_exec_exists() tells.
 *
 * Event ids left empty are filled with new UUIDv7s; timestamps left 0
 * are set to now; execution_id may be empty or must equal `id`.
 * `snap->id` is ignored and `snap->last_event_seq` is set to n.
 *
 * Returns 0, EVS_EBADID, -EEXIST, -EINVAL (bad event), EVS_ETOOBIG, or
 * another -errno.
 */
EVS_EXTERN int evs_exec_create(evs_store *s, const char *id, size_t id_len,
                               const evs_snapshot *snap,
                               const evs_event *events, size_t n);

/**
 * evs_exec_create with flags. 0 is evs_exec_create. EVS_SNAPSHOT_CACHE
 * (snapshot.h) says the snapshot can be rebuilt from `events` (n must
 * then be at least 1): it is written without a sync of its own, which
 * saves two of the four syncs of a creation (the log, the new directory
 * and the store directory are still synced; FORMAT.md §10).
 * Returns what evs_exec_create does, and -EINVAL for unknown flags or
 * EVS_SNAPSHOT_CACHE with no events.
 */
EVS_EXTERN int evs_exec_create_flags(evs_store *s, const char *id,
                                     size_t id_len, const evs_snapshot *snap,
                                     const evs_event *events, size_t n,
                                     unsigned flags);

/**
 * A flag of evs_exec_create_flags: the caller opens the new execution as
 * its writer right after (evs_log_open with EVS_LOG_WRITE), as a runner
 * starting it does. On a backend with a work queue (PostgreSQL) the
 * queue then does not offer it to other runners (evs_log_claim) for a
 * lease's time (lease_ms), and they are not told of it (evs_watch); a
 * creator that dies first leaves it to them once that time is out.
 * Without it, a new unfinished execution is offered at once: what an
 * execution created for a runner to take wants. Other backends ignore
 * it.
 */
#define EVS_CREATE_OWNED (1u << 8)

/**
 * Creates execution `id` as evs_exec_create_flags does, and opens its log
 * as its writer (evs_log_open with EVS_LOG_WRITE): what a runner starting
 * an execution does. `flags` as evs_exec_create_flags'; EVS_CREATE_OWNED
 * is implied. On PostgreSQL the creation claims the writer's lease in its
 * own statement: one round trip and one commit instead of the two of a
 * creation and an open (and no read of the log's end, which it has just
 * written). Elsewhere it is the creation, then the open. `info` (may be
 * NULL) details a failure of the open.
 *
 * Returns 0 and sets *out (the log ends at sequence n), what
 * evs_exec_create_flags returns (nothing created, *out NULL), or an error
 * of evs_log_open, with *out NULL and the execution created: open it
 * again, or let a runner adopt it.
 */
EVS_EXTERN int evs_exec_create_open(evs_store *s, const char *id,
                                    size_t id_len, const evs_snapshot *snap,
                                    const evs_event *events, size_t n,
                                    unsigned flags, evs_log **out,
                                    evs_error_info *info);

/** True if execution `id` exists (its directory and log are there). */
EVS_EXTERN int evs_exec_exists(evs_store *s, const char *id, size_t id_len);

/**
 * Deletes execution `id`: the directory is first renamed out of sight
 * (atomic, fsynced), then its files are removed. Refused with
 * EVS_ELOCKED while a writer has the log open. On an error after the
 * rename (a failed sync of the store directory) the execution may
 * already be gone; evs_exec_exists() tells.
 * Returns 0, EVS_EBADID, -ENOENT, EVS_ELOCKED, EVS_ELEASE (PostgreSQL:
 * another writer claimed the execution after the delete's claim ran out;
 * nothing was deleted) or another -errno.
 */
EVS_EXTERN int evs_exec_delete(evs_store *s, const char *id, size_t id_len);

/**
 * Whether execution `id` is a durable-function run (evstore/run.h): its
 * execution_started records a `code_version` (formats/RUNS.md §1). Reads
 * its first event, without a lock. `version` (may be NULL) gets the
 * recorded code version, NUL-terminated, cut to `cap` bytes.
 * Returns 1 (a run), 0 (not a run: a definition's execution, or one
 * recorded by hand), or what opening and reading the log return
 * (EVS_EBADID, -ENOENT, EVS_ECORRUPT...).
 */
EVS_EXTERN int evs_exec_code_version(evs_store *s, const char *id,
                                     size_t id_len, char *version, size_t cap);

/** One row of a listing. Spans point into the listing's memory. */
typedef struct evs_exec_info {
    evs_span id;
    evs_span workflow_name;
    evs_span status;
    int64_t start_time_us;
    int64_t end_time_us;
    int64_t created_at_us;
    int64_t updated_at_us;
    uint64_t last_event_seq; /* as of the snapshot */
    int snapshot_ok;         /* 0 if the snapshot was missing or damaged:
                                 the other fields are then empty */
} evs_exec_info;

/** Filter for evs_exec_list. Empty spans and 0 times match anything. */
typedef struct evs_list_filter {
    evs_span status;
    evs_span workflow_name;
    int64_t created_after_us;  /* created_at >= this */
    int64_t created_before_us; /* created_at < this */
    size_t offset;
    size_t limit; /* 0: no limit */
} evs_list_filter;

typedef struct evs_exec_listing {
    evs_exec_info *items;
    size_t count;
    size_t total; /* matches before offset and limit */
    /* private */
    void *mem_;
    const evs_allocator *alloc_;
} evs_exec_listing;

/**
 * Lists executions that match `f` (NULL: all) in a stable order: by
 * created_at, then id. Executions whose snapshot is missing or damaged
 * are listed (snapshot_ok = 0) only when the filter has no status,
 * workflow or time condition. Fills *out, which the caller frees with
 * evs_exec_list_free(). The listing comes from the listing index
 * (STORE/.index, FORMAT.md §12) alone, without reading the store's
 * directory or any snapshot, when the index can be trusted: complete when
 * written, and every writer since alive or closed cleanly. After a
 * writer was killed or power was lost it is read from the directory
 * instead (one stat per execution, and the snapshot where the index is
 * behind), and the index is rebuilt durably, so a listing may write that
 * one file. Changing an execution's files by hand is not seen until
 * STORE/.index is removed. A handle keeps the trusted index it read,
 * parsed, until it closes (about the size of STORE/.index in memory, and
 * one descriptor): its next listing reads only what was appended since,
 * so a handle kept open (a console, a server) lists far faster than a
 * new one. A page (a limit) keeps only offset + limit rows while it
 * counts the others.
 * Returns 0, -ENOMEM or -errno.
 */
EVS_EXTERN int evs_exec_list(evs_store *s, const evs_list_filter *f,
                             evs_exec_listing *out);

/** Frees what evs_exec_list() put in *l, with the store's allocator, and
 *  empties it. Accepts NULL and empty (also zeroed) listings. */
EVS_EXTERN void evs_exec_list_free(evs_exec_listing *l);

/**
 * Deletes every execution whose snapshot status is "completed", "failed",
 * "terminated" or "continued" and whose updated_at is before
 * `older_than_us`. Executions locked by a writer are skipped. Sets
 * *deleted (may be NULL) to how many were deleted.
 * Also removes what interrupted writers left, once it is an hour old:
 * `.tmp-*` creation directories and index files in the store directory,
 * `.tmp-*` snapshots in execution directories and requests in inboxes;
 * and `.trash-*` directories of interrupted deletes.
 * Returns 0 or the first error met (those deleted before it stay deleted).
 */
EVS_EXTERN int evs_exec_cleanup(evs_store *s, int64_t older_than_us,
                                size_t *deleted);

/* ------------------------------------------------------------------ */
/* Snapshots                                                          */
/* ------------------------------------------------------------------ */

/**
 * Replaces the snapshot of execution `id` atomically: temporary file,
 * fsync, rename, fsync of the directory (the fsyncs are skipped under
 * EVS_SYNC_NONE). `snap->id` is ignored; a created_at of 0 keeps the
 * current snapshot's, and an updated_at of 0 is set to now.
 * Refused with EVS_ESTALE if snap->last_event_seq is past the log's end.
 * Returns 0, EVS_EBADID, -ENOENT, EVS_ESTALE, -EINVAL or -errno.
 */
EVS_EXTERN int evs_snapshot_save(evs_store *s, const char *id, size_t id_len,
                                 const evs_snapshot *snap);

/**
 * evs_snapshot_save with flags. 0 is evs_snapshot_save.
 * EVS_SNAPSHOT_CACHE (snapshot.h): the snapshot is a cache of the log,
 * written and renamed into place without any fsync; a power loss may
 * leave the previous snapshot or a damaged one, which readers detect.
 * Returns what evs_snapshot_save does, and -EINVAL for unknown flags.
 */
EVS_EXTERN int evs_snapshot_save_flags(evs_store *s, const char *id,
                                       size_t id_len, const evs_snapshot *snap,
                                       unsigned flags);

/**
 * Loads and checks the snapshot of `id`: checksums, fields, and that
 * `state` is JSON. On success *out is owned by the caller
 * (evs_snapshot_free). Returns 0, -ENOENT (no snapshot),
 * EVS_ECORRUPT, EVS_EPARSE, EVS_EFORMAT, EVS_ESTALE (its last_event_seq is past the
 * end of the log: a crash lost appends after the snapshot was written;
 * rebuild it) or -errno. `info` may be NULL.
 */
EVS_EXTERN int evs_snapshot_load(evs_store *s, const char *id, size_t id_len,
                                 evs_snapshot **out, evs_error_info *info);

/**
 * evs_snapshot_load with flags. 0 is evs_snapshot_load, which also
 * checks that `state` is JSON (evs_json_check; EVS_EPARSE if not).
 * EVS_SNAPSHOT_STATE_RAW (snapshot.h) hands `state` on without that
 * pass over it (its checksums are checked all the same), for a caller
 * that checks it as it parses it, as evs_replay_open does. Other flags
 * give -EINVAL.
 */
EVS_EXTERN int evs_snapshot_load_flags(evs_store *s, const char *id,
                                       size_t id_len, unsigned flags,
                                       evs_snapshot **out,
                                       evs_error_info *info);

/* ------------------------------------------------------------------ */
/* Logs                                                               */
/* ------------------------------------------------------------------ */

enum {
    /** Open as the writer: take the execution's lock and repair a torn
     *  tail. Without it the log is opened read-only and never modified. */
    EVS_LOG_WRITE = 1u << 0,
    /** With EVS_LOG_WRITE: wait for the lock instead of failing with
     *  EVS_ELOCKED. */
    EVS_LOG_WAIT = 1u << 1,
};

/**
 * What an open found after the end of the log and, for a writer, what it
 * repaired. The tail_* and bad_* members describe the bytes after the
 * last complete append as the open found them (FORMAT.md §4, "The
 * tail"), for a reader as for a writer, before any cut: an unfinished
 * append, either torn (a crash's leftover, which a writer cuts) or
 * damaged (a line fails in a way no crash leaves, which a writer refuses
 * to cut: its open fails with EVS_ECORRUPT and this struct still says
 * what it found).
 */
typedef struct evs_recovery_info {
    uint64_t last_seq;   /* last sequence after recovery (on a
                            refusal: of the end found) */
    uint64_t end_offset; /* log size after recovery (on a refusal: the
                            end found) */
    uint64_t cut_bytes;  /* bytes cut from the end (0: clean) */
    uint64_t cut_offset; /* where the cut began */
    uint64_t cut_events; /* complete lines that were cut */
    char saved_as[64];   /* name of the file the cut bytes were
                                 saved to, "" if nothing was cut */
    uint64_t tail_bytes; /* bytes after the end (0: nothing follows) */
    uint64_t tail_first; /* first sequence of the unfinished append */
    uint64_t tail_count; /* its events, as its lines' "batch" gives
                            them, else the lines there are */
    uint64_t tail_lines; /* its lines that check out */
    int tail_damaged;    /* 1: damaged, not torn (see above) */
    uint64_t bad_sequence; /* the first line of the tail that does not
                              check out: the sequence it stands at, */
    uint64_t bad_offset;   /* its byte offset (UINT64_MAX: none), */
    const char *bad_kind;  /* and why ("checksum", "syntax", "framing",
                              "execution", ...; static, "" if none) */
} evs_recovery_info;

/**
 * Opens the log of execution `id`. `flags` are EVS_LOG_*. `rec` (may be
 * NULL) reports what follows the end of the log and what a writer's open
 * repaired (evs_recovery_info); `info` (may be NULL) details a failure.
 *
 * Opening finds the end of the log from its last bytes, without reading
 * the whole file: the last sequence is then known in O(1). A writer cuts
 * a torn tail back (saving it); a damaged last append is not cut
 * (FORMAT.md §4): the writer's open fails with EVS_ECORRUPT, info giving
 * the sequence and byte offset of the first line that does not check
 * out, unless the store runs point-in-time recovery, which cuts it. A
 * reader's open succeeds either way and reads the log up to its end.
 *
 * A writer owns the execution until it closes the log: on files and
 * SQLite by a lock that its process's death releases; on PostgreSQL by
 * a lease (evs_log_renew), which another writer takes over once it has
 * run out, refusing every later append of the writer that lost it.
 *
 * Returns 0 and sets *out, or EVS_EBADID, -ENOENT, EVS_ELOCKED (writer
 * only: another writer's lock, or lease, holds), EVS_ECORRUPT (damage at
 * the end that recovery may not cut), EVS_EFORMAT, -ELOOP (a symbolic
 * link) or -errno.
 */
EVS_EXTERN int evs_log_open(evs_store *s, const char *id, size_t id_len,
                            unsigned flags, evs_log **out,
                            evs_recovery_info *rec, evs_error_info *info);

/**
 * Claims work: opens, as its writer (as evs_log_open with
 * EVS_LOG_WRITE does), one unfinished execution that no writer holds and
 * that is no durable function's run (whose host runs it, run.h). On
 * PostgreSQL this takes the next execution of the store's work queue:
 * one statement claims the one free the longest (created, its lease run
 * out, or released, longest ago: new work does not starve work a dead
 * runner left), skipping rows another claim is
 * taking at that moment (FOR UPDATE SKIP LOCKED), so runners claiming at
 * once never take the same one and never wait for each other. "Unfinished"
 * is the status of its snapshot, which may lag the log: the claimant
 * replays the history, which says.
 *
 * `flags` must be 0; `info` (may be NULL) details a failure. Returns 0
 * and sets *out, -ENOENT when no execution may be claimed now, -ENOTSUP
 * on a backend without a work queue (files, SQLite: list the executions
 * and open each instead), EVS_ECORRUPT (the claimed log's end does not
 * check out; the claim is given up) or another error of evs_log_open.
 */
EVS_EXTERN int evs_log_claim(evs_store *s, unsigned flags, evs_log **out,
                             evs_error_info *info);

/**
 * Change notifications (PostgreSQL's LISTEN/NOTIFY): a watch is a
 * connection of its own that hears, as each commit happens, of requests
 * posted to the store's executions and of executions that runners may
 * claim (created without EVS_CREATE_OWNED, or released unfinished by
 * their writer). A runner polls its descriptor for reading (uv_poll) and
 * then reads what came; so it neither polls every execution's inbox nor
 * waits a poll's interval for new work. A notification is a hint, never
 * the work itself: the inbox and the queue are read after it. A watch
 * whose connection is lost hears nothing more (evs_watch_read says so):
 * notifications sent meanwhile are lost, so after opening a new one, read
 * every inbox and the queue once.
 */
typedef struct evs_watch evs_watch;

enum {
    EVS_WATCH_REQUEST = 'r', /* a request was posted to the execution */
    EVS_WATCH_FREE = 'f'     /* the execution may be claimed */
};

/** What a watch heard: `kind` (EVS_WATCH_*) of execution id[0..id_len)
 *  (not NUL-terminated, borrowed for the call). */
typedef void (*evs_watch_fn)(void *arg, int kind, const char *id,
                             size_t id_len);

/**
 * Opens a watch on store `s`. Returns 0 and sets *out, -ENOTSUP on a
 * backend without notifications (files: watch each inbox's directory,
 * evs_request_dir; SQLite: poll evs_request_changed), -ECONNREFUSED, or
 * another -errno. A watch is used by one thread at a time.
 */
EVS_EXTERN int evs_watch_open(evs_store *s, evs_watch **out);

/** The descriptor to poll for reading. It stays the same for the watch's
 *  life; do not close it or read from it. */
EVS_EXTERN int evs_watch_fd(const evs_watch *w);

/**
 * Reads what arrived, without blocking, calling fn for each
 * notification in commit order. Returns how many there were (0 if none),
 * or -ECONNRESET when the connection was lost: close the watch (after
 * stopping the poll of its descriptor) and open another.
 */
EVS_EXTERN int evs_watch_read(evs_watch *w, evs_watch_fn fn, void *arg);

/** Closes a watch (NULL: nothing). */
EVS_EXTERN void evs_watch_close(evs_watch *w);

/** The execution id of the log, NUL-terminated. Borrowed. */
EVS_EXTERN const char *evs_log_id(const evs_log *l);

/** Last sequence in the log (as of open, the last append, or the last
 *  evs_log_refresh for a reader); 0 for an empty log. O(1). */
EVS_EXTERN uint64_t evs_log_last_seq(evs_log *l);

/** Last sequence known to be durable: fsynced by this handle (a
 *  writer's first sync also covers what the log held when it was
 *  opened, which until then is not counted: it may have been written
 *  without a sync). A reader counts everything present at open. */
EVS_EXTERN uint64_t evs_log_durable_seq(evs_log *l);

/** Size in bytes of the complete part of the log. */
EVS_EXTERN uint64_t evs_log_size(evs_log *l);

/**
 * Appends events[0..n) atomically: after a crash either all of them are
 * in the log or none is. `expected_last_seq` is the sequence the caller
 * believes is last; the events get expected_last_seq+1 ...
 * (ev->sequence must be 0 or equal to that).
 *
 * If the log already holds sequences expected_last_seq+1 .. +n with the
 * same event ids (a retried append), it returns 0 without writing.
 * Any other mismatch is EVS_ECONFLICT.
 *
 * Empty event ids are filled with UUIDv7s (such an append is not safe to
 * retry); timestamps left 0 are set to now; execution_id must be empty or
 * equal the log's; `data` must be valid JSON (it is minified if needed).
 *
 * In EVS_SYNC_FULL the events are durable when it returns 0. After a
 * failed write or sync, the unacknowledged bytes are cut back if possible
 * and every later call on the handle returns EVS_EPOISONED.
 *
 * An append that would take the log past the store's hard limit
 * (max_events, max_bytes; "History limits" above) is refused with
 * EVS_ELIMIT and writes nothing: info names the execution (kind
 * "limit") and says which limit and how far, unless its last event ends
 * the execution and it stays within the reserve. A retried append
 * (above) is acknowledged whatever the limit.
 *
 * On PostgreSQL the append is one statement that also checks the
 * writer's lease (evs_log_renew): the claim's fencing token still the
 * execution's and the lease not run out. Otherwise nothing is written
 * and it returns EVS_ELEASE (then EVS_EPOISONED: reopen the log). An
 * append whose connection drops before the answer is -ECONNRESET (the
 * handle poisoned): it is wholly in or wholly out, and the same append
 * retried on a new handle, with the same event ids and expected
 * sequence, is acknowledged either way.
 *
 * Returns 0, EVS_ECONFLICT, EVS_EREADONLY, EVS_EPOISONED, EVS_ETOOBIG,
 * EVS_ELIMIT, EVS_ELEASE, -EINVAL (bad event; info->msg says which and
 * why), -ENOMEM or -errno.
 */
EVS_EXTERN int evs_log_append(evs_log *l, const evs_event *events, size_t n,
                              uint64_t expected_last_seq, evs_error_info *info);

/** evs_log_append_flags: write the append, but do not sync it, whatever
 *  the durability mode. */
#define EVS_APPEND_NO_SYNC 1u

/** evs_log_append_flags: the writer's last append. Once it succeeds the
 *  writer gives the execution up, as evs_log_close would: on PostgreSQL
 *  its lease is released (in the append's own statement when it is
 *  evs_log_append_snapshot's with an ended status, so that the next
 *  writer need not wait and the close has nothing left to send);
 *  elsewhere the lock is held until the close. The handle's later
 *  appends are refused with EVS_EREADONLY; it still reads. A failed
 *  append gives nothing up. */
#define EVS_APPEND_RELEASE 2u

/**
 * evs_log_append with flags (0: the same). With EVS_APPEND_NO_SYNC the
 * append is written and not synced: a process crash keeps it (the page
 * cache has it), a power loss may not, and it is durable once a later
 * synced append or evs_log_sync returns (evs_log_durable_seq says when).
 * It suits a record that only says what is about to happen (a durable
 * function's step_started before its body runs), whose loss with the
 * outcome that would follow it loses nothing acknowledged.
 * With EVS_APPEND_RELEASE (above) it is the writer's last append.
 * Returns as evs_log_append, or -EINVAL for an unknown flag.
 */
EVS_EXTERN int evs_log_append_flags(evs_log *l, const evs_event *events,
                                    size_t n, uint64_t expected_last_seq,
                                    unsigned flags, evs_error_info *info);

/**
 * evs_log_append_flags, then evs_snapshot_save_flags of the log's
 * execution with `snap` and `snap_flags` (EVS_SNAPSHOT_CACHE or 0): the
 * usual end of a writer's turn, an append and the snapshot of the state
 * it reached. snap->last_event_seq must be at most expected_last_seq +
 * n (-EINVAL otherwise, before anything is written); snap->id is
 * ignored, and times left 0 are taken as evs_snapshot_save takes them.
 *
 * On PostgreSQL both are one fenced statement, on SQLite one
 * transaction: the snapshot is committed with the events, as durable as
 * they are, and a failed append saves no snapshot (created_at_us must be
 * known: with 0 it is two steps). On files it is the two calls, in that
 * order; the snapshot is saved only once the append succeeded. With
 * EVS_APPEND_RELEASE in `flags`, the lease goes once both are done.
 *
 * Returns what the append returns. *snap_rc (may be NULL) gets what
 * saving the snapshot returned (0, or an error: the events are in the
 * log, the previous snapshot stands, and a later save or a replay makes
 * it up), or 1 when the append failed and no snapshot was tried.
 */
EVS_EXTERN int evs_log_append_snapshot(evs_log *l, const evs_event *events,
                                       size_t n, uint64_t expected_last_seq,
                                       unsigned flags,
                                       const evs_snapshot *snap,
                                       unsigned snap_flags, int *snap_rc,
                                       evs_error_info *info);

/** Makes every append so far durable (fdatasync), including those of
 *  earlier writers; a writer's first call also syncs the directory
 *  entries of the execution and its log (for an execution created under
 *  EVS_SYNC_NONE). Returns 0, EVS_EPOISONED or -errno (the handle is
 *  then poisoned). */
EVS_EXTERN int evs_log_sync(evs_log *l);

/**
 * For a reader: picks up appends made since open or the last refresh.
 * Only complete appends are taken. Returns 0, EVS_ECORRUPT (the log
 * shrank or changed under the reader) or -errno.
 */
EVS_EXTERN int evs_log_refresh(evs_log *l);

/**
 * Renews a writer's lease on its execution (PostgreSQL; eventstore/
 * BACKENDS.md, "Leases and fencing"): it then lasts the store's lease_ms
 * from now, by the database server's clock. Every append renews it too;
 * a writer that may go longer than lease_ms without appending (a run
 * waiting on a timer, a slow step) calls this from a timer, every third
 * of lease_ms or so. A lease that ran out is renewed when no other
 * writer has claimed the execution since; once one has, this returns
 * EVS_ELEASE (-ENOENT: the execution was deleted), the store logs why
 * ("lease renewal refused") and the handle refuses every append.
 *
 * `until_us` (may be NULL) gets the lease's new end, in microseconds
 * since the epoch by the server's clock. On the file and SQLite
 * backends a writer holds a lock for as long as the log is open: this
 * returns 0 and sets *until_us to INT64_MAX.
 *
 * Returns 0, EVS_EREADONLY (a reader, or on PostgreSQL a writer that
 * gave the execution up: EVS_APPEND_RELEASE), EVS_ELEASE, -ENOENT,
 * EVS_EPOISONED or -errno (-ECONNRESET: the server could not be
 * reached; the lease stands until it runs out). Thread-safe on one handle.
 */
EVS_EXTERN int evs_log_renew(evs_log *l, int64_t *until_us);

/** Closes the log; a writer syncs first in EVS_SYNC_BATCH mode and
 *  releases its lock (or lease). Accepts NULL. */
EVS_EXTERN void evs_log_close(evs_log *l);

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

/*
 * Each execution has an inbox (STORE/<id>/inbox/, FORMAT.md §13) through
 * which other processes hand requests (an external event or signal,
 * pause, resume, terminate) to the process that holds the execution's
 * writer lock. A request is one small file, written atomically and
 * durably. The writer lists the inbox, records each request in the log as
 * an event whose id is the request id, and removes the request once that
 * event is durable. A crash in between leaves the request in place, and
 * the writer must recognise it (FORMAT.md §13 gives the orchestrator's
 * rules: the event carries the request's id).
 *
 * None of these functions takes the writer lock. They may be called from
 * any thread and any process.
 */

/** Length of a request id: a UUIDv7 (36 characters). */
#define EVS_REQUEST_ID_LEN 36

/** One pending request. Spans point into the list's memory. */
typedef struct evs_request {
    evs_span id;       /* UUIDv7, also the file name stem */
    evs_span body;     /* the JSON object that was posted, compact */
    int64_t posted_us; /* from the id's timestamp */
} evs_request;

typedef struct evs_request_listing {
    evs_request *items; /* oldest first: ordered by id */
    size_t count;
    /* private */
    void *mem_;
    const evs_allocator *alloc_;
} evs_request_listing;

/**
 * Posts a request to execution `id`'s inbox. `json[0..len)` must be one
 * JSON object (checked with evs_json_check); it is stored compacted, and
 * the compact form may be at most 1 MiB. On a store of files it is
 * written as one checksummed line naming the request to a temporary file,
 * renamed to inbox/<request id>.req, and then the file, the inbox
 * directory and the execution's directory are fsynced, so the request is
 * durable when this returns 0, whatever the store's durability mode:
 * requests come from people and are rare. The inbox is created on first
 * use (0700). The runner may take the request as soon as it is renamed,
 * while the syncs run; one torn by a crash before they end is told by its
 * checksum (FORMAT.md §13).
 *
 * `out_id` (may be NULL) receives the new request's id, NUL-terminated.
 * On an error nothing is left in the inbox.
 *
 * Returns 0, EVS_EBADID, -ENOENT (no such execution), -EINVAL (`json` is
 * NULL, not a JSON object, or too big), -ELOOP or -ENOTDIR (inbox is not
 * a plain directory), -ENOMEM or another -errno.
 */
EVS_EXTERN int evs_request_post(evs_store *s, const char *id, size_t id_len,
                                const char *json, size_t len,
                                char out_id[EVS_REQUEST_ID_LEN + 1]);

/**
 * Lists the pending requests of execution `id`, oldest first (by id).
 * Entries that are not finished requests (temporary files, other names)
 * are skipped. A file named like a request that is not one (its body is
 * not a JSON object, it is larger than a request can be, a symbolic link,
 * not a regular file, or has more than one link) is reported through the
 * log hook and renamed to inbox/bad-<name>: never silently dropped, never
 * returned. An execution without an inbox has no requests.
 *
 * Fills *out, which is owned by the caller: free it with
 * evs_request_list_free() (also after an error, which leaves it empty).
 * Returns 0, EVS_EBADID, -EINVAL (`out` is NULL), -ENOENT (no such
 * execution), -ENOMEM or -errno.
 */
EVS_EXTERN int evs_request_list(evs_store *s, const char *id, size_t id_len,
                                evs_request_listing *out);

/** Frees a list filled by evs_request_list and empties it. Accepts NULL
 *  and empty lists. */
EVS_EXTERN void evs_request_list_free(evs_request_listing *l);

/**
 * Removes request `req_id[0..req_len)` of execution `id`, once the event
 * recording it is durable. Removing a request that is gone (or whose
 * execution or inbox is gone) is not an error. The directory is not
 * fsynced: a request that comes back after a crash is recognised by its
 * id, which its event carries.
 * Returns 0, EVS_EBADID, -EINVAL (not a request id) or -errno.
 */
EVS_EXTERN int evs_request_remove(evs_store *s, const char *id, size_t id_len,
                                  const char *req_id, size_t req_len);

/**
 * Writes the path of execution `id`'s inbox directory, NUL-terminated,
 * to buf[0..cap), for a file watcher such as uv_fs_event. The path is the
 * one the store was opened with followed by "/<id>/inbox", so a relative
 * store path gives a path relative to the current directory. Creates the
 * inbox (durably, as evs_request_post does) if it is missing.
 * Returns 0, EVS_EBADID, -EINVAL (`buf` is NULL), -ENOENT (no such
 * execution), -ENAMETOOLONG (cap too small), -ELOOP, -ENOTDIR, -ENOTSUP
 * (a backend whose inbox is no directory, such as SQLite's: poll
 * evs_request_changed instead) or -errno.
 */
EVS_EXTERN int evs_request_dir(evs_store *s, const char *id, size_t id_len,
                               char *buf, size_t cap);

/**
 * As evs_request_dir, without creating anything (and so without a sync):
 * writes the inbox's path to buf and returns 0 if the inbox exists, or
 * -ENOENT if it does not yet (the path is written all the same; the
 * first post creates it). A runner watches the execution's directory
 * until then. Returns also EVS_EBADID, -ENAMETOOLONG, -ENOTSUP (as
 * evs_request_dir), -errno.
 */
EVS_EXTERN int evs_request_dir_peek(evs_store *s, const char *id, size_t id_len,
                                    char *buf, size_t cap);

/** What evs_request_changed remembers of an inbox. Zero it to begin. */
typedef struct evs_inbox_watch {
    uint64_t ino;
    int64_t ctime_ns;
    int64_t checked_us;
} evs_inbox_watch;

/**
 * Whether execution `id`'s inbox may hold requests that the caller's
 * last listing did not see, at the cost of one metadata call (no
 * directory is opened or read): 1 when it may (list it now with
 * evs_request_list: the watch is updated as of this call), 0 when
 * nothing was posted or removed since the last call that returned 1
 * (and that listing saw everything). The inbox's status-change time
 * is trusted only once it is older than the kernel clock's tick
 * (FORMAT.md §13); until then every call returns 1. On a backend whose
 * inbox is a table (SQLite), a change counter moved by every post and
 * removal is compared instead, trusted at once. For a writer that looks
 * at its inbox between steps, without watching it.
 * Returns 1, 0, EVS_EBADID, -EINVAL (w is NULL), -ENOTDIR (the inbox is
 * not a directory) or -errno.
 */
EVS_EXTERN int evs_request_changed(evs_store *s, const char *id, size_t id_len,
                                   evs_inbox_watch *w);

/* ------------------------------------------------------------------ */
/* Cursors                                                            */
/* ------------------------------------------------------------------ */

/**
 * Opens a cursor over sequences [from, to] of `l` (to == 0 or past the
 * end: up to the last sequence at open). Finding `from` costs O(log n)
 * reads; no full scan. Memory stays bounded by a buffer of the largest
 * line read, at most the store's max_line.
 * The cursor borrows `l`, which must outlive it.
 * Returns 0, -EINVAL (from == 0), EVS_ECORRUPT, -ENOMEM or -errno.
 */
EVS_EXTERN int evs_cursor_open(evs_log *l, uint64_t from, uint64_t to,
                               evs_cursor **out, evs_error_info *info);

/**
 * Reads the next event into *ev. Every line is verified: checksum,
 * sequence (one more than the last) and append framing. The views in
 * *ev are borrowed until the next call or close. If `raw` is not NULL it
 * is set to the line's bytes (newline included), also borrowed.
 *
 * Returns 1 with an event, 0 at the end, or EVS_ECORRUPT (with sequence
 * and offset in info), EVS_EFORMAT, -ENOMEM or -errno. After an error the
 * cursor stays at the failed line.
 */
EVS_EXTERN int evs_cursor_next(evs_cursor *c, evs_event *ev, evs_span *raw,
                               evs_error_info *info);

/** Byte offset of the next line the cursor will read. */
EVS_EXTERN uint64_t evs_cursor_offset(const evs_cursor *c);

/** Closes a cursor, which ends the views its last event lent. Its log
 *  stays open. Accepts NULL. Not with another call on the same cursor. */
EVS_EXTERN void evs_cursor_close(evs_cursor *c);

/* ------------------------------------------------------------------ */
/* Verification and salvage                                           */
/* ------------------------------------------------------------------ */

/** One finding of evs_log_scan: a valid event or a problem. */
typedef struct evs_scan_item {
    int is_problem;
    /* for an event: */
    const evs_event *ev;
    evs_span raw;
    /* for a problem: */
    int code;          /* EVS_ECORRUPT, EVS_ETORN, EVS_EFORMAT */
    const char *kind;  /* "checksum", "sequence", "syntax", "torn",
                             "framing", "format", "execution" */
    uint64_t sequence; /* the sequence expected at that point */
    uint64_t offset;   /* byte offset of the damage (of an event: of
                              its line) */
    uint64_t length;   /* bytes affected */
    const char *msg;   /* one line */
    /* for both, after the end of the log (FORMAT.md §4, "The tail"): */
    int after_end;         /* 1: an item of the unfinished append after
                              the last complete one: an event there
                              checks out but is not part of the log */
    uint64_t append_first; /* that append's first sequence */
    uint64_t append_count; /* and its events (as evs_recovery_info's
                              tail_count) */
} evs_scan_item;

/** Return non-zero to stop the scan; evs_log_scan then returns it. */
typedef int (*evs_scan_fn)(void *arg, const evs_scan_item *item);

/**
 * Reads the whole log tolerantly, without modifying it, and reports every
 * line that checks out and every problem, in file order: a damaged line
 * is reported and the scan goes on at the next line. After the end of
 * the log, a torn tail is reported as one problem of kind "torn"
 * (EVS_ETORN) and a damaged one by each line that does not check out
 * (EVS_ECORRUPT, its own kind); either way the tail's lines that check
 * out follow as events with `after_end` set. This is what `evdump
 * verify` and salvage use.
 * The log is opened read-only by this call.
 * Returns 0, the callback's non-zero value, or -errno.
 */
EVS_EXTERN int evs_log_scan(evs_store *s, const char *id, size_t id_len,
                            evs_scan_fn fn, void *arg);

/** Closes the store. All logs and cursors must be closed first.
 *  Accepts NULL. */
EVS_EXTERN void evs_store_close(evs_store *s);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_STORE_H */
