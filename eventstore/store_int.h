/*
 * store_int.h: internals of the event store: the backend vtable that the
 * public API dispatches through, and the handles of the file backend.
 * Never installed; tests include it to reach evs__ functions.
 */
#ifndef EVS_STORE_INT_H
#define EVS_STORE_INT_H

#include "evstore/gc.h"
#include "evstore/recorder.h"
#include "evstore/schedule.h"
#include "evstore/store.h"
#include "formats_shared.h"

#include <pthread.h>

/*
 * An execution a delete has moved out of sight (renamed to
 * .trash-<r>-<id>, FORMAT.md §7) whose files are still to be removed,
 * holding its writer's lock until then.
 */
typedef struct evs__trashed {
    int lock_fd;                /* its log, locked; -1 when it had none
                                   (SQLite: its lock file, locked) */
    int dir_fd;                 /* its directory, open (SQLite: -1) */
    int64_t row;                /* a database backend's key for it */
    int64_t token;              /* PostgreSQL: the fencing token of the
                                   delete's claim of its lease */
    char name[EVS_ID_MAX + 48]; /* its trash name */
} evs__trashed;

/* What the statistics read of one execution (evstore/gc.h). */
typedef struct evs__usage {
    uint64_t events;    /* the log's last complete sequence */
    uint64_t bytes;     /* the log's size */
    uint64_t cut_files; /* torn tails cut back and saved (FORMAT.md §4) */
    uint64_t cut_bytes;
} evs__usage;

/*
 * A backend implements the store. The public functions in api.c check
 * their arguments (ids, flags) and then call through this table, so a
 * SQLite or PostgreSQL backend can be added without changing callers.
 */
typedef struct evs_backend_ops {
    const char *name;
    int (*open)(evs_store *s, const char *path);
    void (*close)(evs_store *s);
    /* flags: 0 or EVS_SNAPSHOT_CACHE (then n >= 1), for both. */
    int (*exec_create)(evs_store *s, const char *id, size_t id_len,
                       const evs_snapshot *snap, const evs_event *ev, size_t n,
                       unsigned flags);
    /* evs_exec_create_open in one step, checked as exec_create (flags
     * with EVS_CREATE_OWNED); NULL: exec_create, then log_open. */
    int (*exec_create_open)(evs_store *s, const char *id, size_t id_len,
                            const evs_snapshot *snap, const evs_event *ev,
                            size_t n, unsigned flags, evs_log **out);
    int (*exec_exists)(evs_store *s, const char *id, size_t id_len);
    int (*exec_delete)(evs_store *s, const char *id, size_t id_len);
    int (*exec_list)(evs_store *s, const evs_list_filter *f,
                     evs_exec_listing *out);
    int (*exec_cleanup)(evs_store *s, int64_t older_than_us, size_t *deleted);
    int (*snapshot_save)(evs_store *s, const char *id, size_t id_len,
                         const evs_snapshot *snap, unsigned flags);
    int (*snapshot_load)(evs_store *s, const char *id, size_t id_len,
                         unsigned flags, evs_snapshot **out,
                         evs_error_info *info);
    int (*log_open)(evs_store *s, const char *id, size_t id_len, unsigned flags,
                    evs_log **out, evs_recovery_info *rec,
                    evs_error_info *info);
    void (*log_close)(evs_log *l);
    int (*log_append)(evs_log *l, const evs_event *ev, size_t n,
                      uint64_t expected, unsigned flags, evs_error_info *info);
    /* evs_log_append_snapshot in one step, for n >= 1 and a snapshot
     * whose created_at_us is known (not 0); api.c has checked the
     * arguments (snap->last_event_seq within the append). Sets *snap_rc
     * to 0 when the snapshot was written with the append, and leaves it
     * when the append was a retry already in the log (api.c then saves
     * the snapshot). Otherwise, or NULL: the append, then snapshot_save. */
    int (*log_append_snap)(evs_log *l, const evs_event *ev, size_t n,
                           uint64_t expected, unsigned flags,
                           const evs_snapshot *snap, unsigned snap_flags,
                           int *snap_rc, evs_error_info *info);
    /* Gives a writer's lease up after an append with EVS_APPEND_RELEASE
     * that did not already (api.c then marks the handle released). NULL:
     * the lock is held until the close. */
    void (*log_release)(evs_log *l);
    int (*log_sync)(evs_log *l);
    int (*log_refresh)(evs_log *l);
    int (*log_scan)(evs_store *s, const char *id, size_t id_len, evs_scan_fn fn,
                    void *arg);
    int (*cursor_open)(evs_log *l, uint64_t from, uint64_t to, evs_cursor **out,
                       evs_error_info *info);
    int (*cursor_next)(evs_cursor *c, evs_event *ev, evs_span *raw,
                       evs_error_info *info);
    uint64_t (*cursor_offset)(const evs_cursor *c);
    void (*cursor_close)(evs_cursor *c);
    /* The inbox of requests (store.h, "Requests"). api.c has checked the
     * ids (req_id: a valid request id of EVS_REQUEST_ID_LEN bytes) and
     * that json, out and buf are not NULL. request_dir makes the inbox
     * if `create`, else returns -ENOENT when there is none. */
    int (*request_post)(evs_store *s, const char *id, size_t id_len,
                        const char *json, size_t len,
                        char out_id[EVS_REQUEST_ID_LEN + 1]);
    int (*request_list)(evs_store *s, const char *id, size_t id_len,
                        evs_request_listing *out);
    int (*request_remove)(evs_store *s, const char *id, size_t id_len,
                          const char *req_id);
    int (*request_dir)(evs_store *s, const char *id, size_t id_len, char *buf,
                       size_t cap, int create);
    /* The inbox's inode and status-change time, both 0 when there is no
     * inbox: one metadata call, for evs_request_changed. Returns 0 for
     * such a time, or EVS__STAMP_EXACT when the pair is a key and a
     * change counter that every post and removal moves (a database
     * backend), which evs_request_changed then trusts at once. A backend
     * with no directory to watch returns -ENOTSUP from request_dir; its
     * callers poll evs_request_changed instead (orch_inbox.c, run_gate.c). */
    int (*request_stamp)(evs_store *s, const char *id, size_t id_len,
                         uint64_t *ino, int64_t *ctime_ns);
    /* A delete in two halves, for gc: exec_trash takes execution
     * `name`'s writer lock and renames it out of sight (not yet
     * durably), into *t, which keeps the lock; with expect_seq other than
     * UINT64_MAX, only if its log's last complete sequence is expect_seq
     * (EVS_ESTALE otherwise). Returns 0, EVS_ELOCKED, EVS_ESTALE, -ENOENT
     * or -errno, nothing moved on an error. trash_commit makes the
     * renames of t[0..n) durable with one fsync of the store directory,
     * then releases the locks and removes the files (all left for
     * cleanup when the fsync fails, whose error it returns). */
    int (*exec_trash)(evs_store *s, const char *name, uint64_t expect_seq,
                      evs__trashed *t);
    int (*trash_commit)(evs_store *s, evs__trashed *t, size_t n);
    /* The settings file (evstore/settings.h). */
    int (*settings_load)(evs_store *s, evs_settings **out, evs_error_info *ei);
    int (*settings_save)(evs_store *s, const evs_settings *st,
                         evs_error_info *ei);
    /* For the statistics: one execution's usage, and the entries of the
     * archive's record (-1 when there is none). */
    int (*exec_usage)(evs_store *s, const char *name, evs__usage *u);
    int (*archived_count)(evs_store *s, int64_t *n);
    /* A writer's lease (evs_log_renew): NULL for a backend whose writers
     * hold a lock for as long as the handle is open. */
    int (*log_renew)(evs_log *l, int64_t *until_us);
    /* Work discovery (evs_log_claim, evs_watch_*): NULL for a backend
     * without a work queue or notifications (-ENOTSUP). */
    int (*log_claim)(evs_store *s, evs_log **out, evs_error_info *info);
    int (*watch_open)(evs_store *s, evs_watch **out);
    int (*watch_read)(evs_watch *w, evs_watch_fn fn, void *arg);
    void (*watch_close)(evs_watch *w);
    /*
     * Schedules (evstore/schedule.h): schedule_api.c checks names and
     * flags, makes and checks the schedule's framed line (SCHEDULES.md
     * §7); the backend keeps the line under the schedule's name and its
     * lock. NULL sched_create: schedules are not kept (-ENOTSUP).
     * sched_create stores a new schedule's line, -EEXIST when the name
     * is taken. sched_open readies h (h->s, h->name set, the rest -1 or
     * 0) and, with EVS_SCHEDULE_LOCK among flags, takes the lock
     * (EVS_SCHEDULE_WAIT: waiting; EVS_ELOCKED otherwise); -ENOENT when
     * the store has no schedules. sched_read gives the line kept
     * (*buf from the store's allocator) or -ENOENT; sched_write replaces
     * it under the lock (updated_us: the line's time; -ENOENT when it is
     * gone, EVS_ELEASE when the lock was lost); sched_remove deletes it
     * under the lock (the same errors); sched_close drops the lock and
     * what sched_open made (after a failed sched_open too). sched_list
     * calls fn with each name, in any order, stopping at its non-zero
     * return. The backend's calls take the store's own locks.
     */
    int (*sched_create)(evs_store *s, const char *name, const char *line,
                        size_t len, int64_t updated_us);
    int (*sched_open)(evs_schedule *h, unsigned flags);
    int (*sched_read)(evs_schedule *h, char **buf, size_t *len);
    int (*sched_write)(evs_schedule *h, const char *line, size_t len,
                       int64_t updated_us);
    int (*sched_remove)(evs_schedule *h);
    void (*sched_close)(evs_schedule *h);
    int (*sched_list)(evs_store *s,
                      int (*fn)(void *arg, const char *name, size_t len),
                      void *arg);
} evs_backend_ops;

/* An open schedule (evstore/schedule.h): what every backend's holds. */
struct evs_schedule {
    evs_store *s;
    char name[EVS_SCHED_NAME_MAX + 1];
    int locked;    /* the lock is held: changes allowed */
    int dirfd;     /* files: STORE/.schedules; else -1 */
    int lockfd;    /* files, SQLite: the lock's descriptor; else -1 */
    int64_t fence; /* PostgreSQL: the lock's fencing token; else 0 */
    char *buf;     /* the line */
    size_t len;
    char *prev; /* the line before the last save: what was borrowed */
    evs_span spec, state;
    int64_t updated_us;
};

/* The largest schedule line (SCHEDULES.md §7): its document, its state
 * and their framing. */
#define EVS__SCHED_MAX ((size_t)16 << 20)

/* A watch: what every backend's begins with. */
struct evs_watch {
    evs_store *store;
    int fd;
};

extern const evs_backend_ops evs__file_backend;

/* ---- Backend seam: what more than one backend uses (issue 18) ---- */

/* The SQLite backend (sqlite_*.c; eventstore/BACKENDS.md), chosen by a
 * location "sqlite:PATH" (evs_store_open). */
extern const evs_backend_ops evs__sqlite_backend;

/* The PostgreSQL backend (pg_*.c; eventstore/BACKENDS.md), chosen by a
 * location "postgresql://..." or "postgres://..." (libpq's syntax). */
extern const evs_backend_ops evs__pg_backend;

/* evs_store_opts.lease_ms when 0 (store.h). */
#define EVS__LEASE_MS_DEFAULT 30000u
/* evs_store_opts.connections: the default and the most. */
#define EVS__CONNECTIONS_DEFAULT 4u
#define EVS__CONNECTIONS_MAX 64u

/* request_stamp's answer for an exact change counter (above). */
#define EVS__STAMP_EXACT 1

/*
 * Encodes events[0..n) as the lines of one append starting at sequence
 * `first`, into *buf (grown as needed). Fills empty ids, zero timestamps
 * and the execution id. Returns 0, -EINVAL (info says which event and
 * why), EVS_ETOOBIG or -ENOMEM. (file_log.c)
 */
int evs__encode_append(evs_store *s, const char *id, size_t id_len,
                       const evs_event *events, size_t n, uint64_t first,
                       char **buf, size_t *cap, size_t *len,
                       evs_error_info *info);
/* evs__encode_append with the line encoder's flags
 * (EVS__LINE_DATA_COMPACT). */
int evs__encode_append_flags(evs_store *s, const char *id, size_t id_len,
                             const evs_event *events, size_t n, uint64_t first,
                             unsigned line_flags, char **buf, size_t *cap,
                             size_t *len, evs_error_info *info);

/*
 * A creation's bytes, made before anything is written so that a bad event
 * or snapshot leaves nothing behind: the lines of events[0..n) in *log,
 * *len (none when n is 0), and the snapshot `snap` (NULL: a minimal
 * "running" one) with its defaults filled in *sn (id, last_event_seq n,
 * created_at and updated_at now when 0), encoded in *sbuf, *slen. `id`
 * must outlive *sn. Both buffers are the caller's to free on success;
 * nothing is left on failure. (file_store.c)
 */
int evs__create_encode(evs_store *s, const char *id, size_t id_len,
                       const evs_snapshot *snap, const evs_event *ev, size_t n,
                       evs_snapshot *sn, char **log, size_t *len, char **sbuf,
                       size_t *slen);

/*
 * What every backend's append does first, holding l->mu: refuses a
 * poisoned handle (EVS_EPOISONED); checks the expected sequence, taking
 * a retry whose events are already in the log with the same ids as done
 * (returns 1: succeed without writing) and refusing any other mismatch
 * (EVS_ECONFLICT); encodes the lines into *buf (EVS__APPEND_DATA_COMPACT
 * among flags: data checked already); applies the hard history limit.
 * Returns 0 with buf[0..*len) to write, 1, or an error with info filled.
 * (file_log.c)
 */
int evs__append_prepare(evs_log *l, const evs_event *ev, size_t n,
                        uint64_t expected, unsigned flags, char **buf,
                        size_t *cap, size_t *len, evs_error_info *info);

/* The hard limit (store.h, "History limits") for an append of n events
 * and `len` bytes to l: 0, or EVS_ELIMIT with info filled and the log
 * hook told. (file_log.c) */
int evs__past_limit(evs_log *l, const evs_event *ev, size_t n, size_t len,
                    evs_error_info *info);

/* Whether ev is the execution_started of a durable function's run: its
 * data names a code_version, copied to version (cap bytes, NUL-ended;
 * may be NULL). (api.c) */
int evs__is_run_start(const evs_event *ev, char *version, size_t cap);

/* Whether a snapshot status ends the execution for cleanup: completed,
 * failed, terminated or continued. (file_cleanup.c) */
int evs__status_final(evs_span st);

/* The largest compact request body (store.h, evs_request_post). */
#define EVS__REQUEST_MAX ((size_t)1 << 20)

/* Checks that json[0..len) is one JSON object whose compact form is at
 * most EVS__REQUEST_MAX bytes, and returns that form in *out (heap, with
 * room for a newline after it) and its length in *olen. Returns 0,
 * -EINVAL or -ENOMEM. (file_inbox.c) */
int evs__request_compact(evs_store *s, const char *json, size_t len,
                         char **out, size_t *olen);

/* The time a request id (a UUIDv7) was made, in microseconds. */
int64_t evs__request_time_us(const char *req_id);

/* For what only the file backend does (archival: it moves execution
 * directories to bundles): 0 on a file store, else -ENOTSUP with ei
 * saying that `what` needs a file store. */
int evs__file_only(evs_store *s, const char *what, evs_error_info *ei);

/*
 * Reading a database backend's log back (db_rows.c): rows of (sequence,
 * byte offset, line) copied out of the database a chunk at a time, so
 * that no statement stays open between calls, and the cursor and scan
 * that check each line as a file's line is checked.
 */
typedef struct evs__row {
    uint64_t seq, off;
    size_t pos, len; /* in evs__rows.buf */
} evs__row;

typedef struct evs__rows {
    char *buf;
    size_t cap, used;
    evs__row *row;
    size_t rcap, n, i;
} evs__rows;

/* A chunk: at most this many rows, and no more once this many bytes. */
#define EVS__CHUNK_ROWS 256
#define EVS__CHUNK_BYTES ((size_t)1 << 20)

/* A backend's read of the lines of execution row `rid` from sequence
 * `from` to `to`, in order, at most a chunk's worth, into r (emptied
 * first, r->n = r->i = r->used = 0; rows added with evs__rows_push). */
typedef int (*evs__fetch_fn)(evs_store *s, int64_t rid, uint64_t from,
                             uint64_t to, evs__rows *r);

/* Adds one row; 0 or -ENOMEM. */
int evs__rows_push(evs_store *s, evs__rows *r, uint64_t seq, uint64_t off,
                   const void *p, size_t len);
void evs__rows_free(evs_store *s, evs__rows *r);

/* A cursor over log l (whose last_seq and end bound it), reading row
 * rid through `fetch`: the backend's cursor_open. evs__dbc_next,
 * _offset and _close are its cursor_next, cursor_offset and
 * cursor_close. */
int evs__dbc_open(evs_log *l, int64_t rid, evs__fetch_fn fetch, uint64_t from,
                  uint64_t to, evs_cursor **out, evs_error_info *info);
int evs__dbc_next(evs_cursor *c, evs_event *ev, evs_span *raw,
                  evs_error_info *info);
uint64_t evs__dbc_offset(const evs_cursor *c);
void evs__dbc_close(evs_cursor *c);

/* A writer's check of the log's end: its last line is there, checks out
 * and ends where the row says the log ends (l->end). Damage is never
 * accepted: 0 or EVS_ECORRUPT (info filled) or an error. */
int evs__dbc_check_end(evs_log *l, int64_t rid, evs__fetch_fn fetch,
                       evs_error_info *info);

/* evs_log_scan over execution row rid, whose log ends at `last`. */
int evs__db_scan(evs_store *s, const char *id, size_t id_len, int64_t rid,
                 uint64_t last, evs__fetch_fn fetch, evs_scan_fn fn, void *arg);

/* A database backend's snapshot bytes buf[0..len) (a decoding buffer
 * from evs__snapshot_buf, consumed) decoded and checked as a file's: its
 * state JSON (unless EVS_SNAPSHOT_STATE_RAW), its id, and not ahead of
 * the log's end `last` (EVS_ESTALE). (db_rows.c) */
int evs__db_snapshot_decode(const char *id, size_t id_len, char *buf,
                            size_t len, uint64_t last, unsigned flags,
                            evs_snapshot **out, evs_error_info *info);

/* Whether a request row (id rq[0..rl), body b[0..bl)) is one a post could
 * have written; one that is not is reported to the log hook. */
int evs__db_request_ok(evs_store *s, const char *id, size_t id_len,
                       const char *rq, size_t rl, const char *b, size_t bl);

/* A request listing built row by row (db_rows.c): evs__db_req_add adds a
 * row that evs__db_request_ok accepts (0, or -ENOMEM); evs__db_req_done
 * hands the listing to *out when rc is 0, else frees it, and returns
 * rc. */
typedef struct evs__db_reqs {
    evs_request *items;
    size_t count, icap;
    char *mem;
    size_t mcap, used;
} evs__db_reqs;
int evs__db_req_add(evs_store *s, evs__db_reqs *b, const char *id,
                    size_t id_len, const char *rq, size_t rl, const char *body,
                    size_t bl);
int evs__db_req_done(evs_store *s, evs__db_reqs *b, int rc,
                     evs_request_listing *out);

/* request_dir and archived_count for a backend with no directories: no
 * inbox to watch (-ENOTSUP), no archive (-1). */
int evs__db_request_dir(evs_store *s, const char *id, size_t id_len, char *buf,
                        size_t cap, int create);
int evs__db_archived_count(evs_store *s, int64_t *n);

/*
 * A database backend's writer's flushes (SQLite's synced commits,
 * PostgreSQL's synchronous_commit): bytes committed since the last
 * flush and when that was. (db_rows.c)
 */
typedef struct evs__db_sync {
    uint64_t unsynced;
    int64_t last_sync_us;
} evs__db_sync;

/* At open: a writer's first flush covers what the log held at open, as
 * with files (store.h, evs_log_durable_seq). Sets l->durable_seq. */
void evs__db_sync_open(evs__db_sync *y, evs_log *l);
/* Whether an append of len bytes with `flags` is committed with a flush:
 * every one in FULL, the one that finds a batch's worth of bytes or time
 * since the last in BATCH, none in NONE or with EVS_APPEND_NO_SYNC. */
int evs__db_sync_wanted(const evs__db_sync *y, evs_store *s, unsigned flags,
                        size_t len);
/* After a committed append of n events and len bytes that expected
 * `expected`: the log's end, and the flush state. */
void evs__db_appended(evs__db_sync *y, evs_log *l, int sync, uint64_t expected,
                      size_t n, size_t len);
/* Whether a closing writer still has commits to flush (BATCH). */
int evs__db_close_unsynced(const evs__db_sync *y, evs_log *l);
/* Poisons l with rc (logged); returns rc. */
int evs__db_poison(evs_log *l, int rc);
/* The snapshot a writer's append carries (evs_log_append_snapshot): *sn
 * is *snap with the log's id and, when 0, updated_at now; *buf (freed
 * by the caller with the store's allocator) its encoding. */
int evs__db_snap_encode(evs_log *l, const evs_snapshot *snap,
                        evs_snapshot *sn, char **buf, size_t *len);
/* evs_log_sync: flush() commits with a flush when anything is unsynced;
 * a failure poisons the handle. Takes l->mu. */
int evs__db_log_sync(evs_log *l, evs__db_sync *y, int (*flush)(evs_store *));
/* A backend's look-up of an execution's row and its log's end, taking
 * its own locks: 0 or -ENOENT or an error. */
typedef int (*evs__db_lookup_fn)(evs_store *s, const char *id, size_t id_len,
                                 int64_t *rid, uint64_t *last, uint64_t *end);
/* evs_log_refresh of a reader of row rid. Takes l->mu. */
int evs__db_log_refresh(evs_log *l, int64_t rid, evs__db_lookup_fn lookup);
/* evs_log_scan of execution id: its row found by lookup, read by fetch. */
int evs__db_log_scan(evs_store *s, const char *id, size_t id_len,
                     evs__db_lookup_fn lookup, evs__fetch_fn fetch,
                     evs_scan_fn fn, void *arg);
/* request_stamp's answer from a look-up's rc, row and change counter. */
int evs__db_request_stamp(int rc, int64_t rid, int64_t gen, uint64_t *ino,
                          int64_t *ctime_ns);

/* ---- end of the backend seam ---- */

struct evs_store {
    const evs_backend_ops *ops;
    evs_store_opts opts;
    const evs_io *io;
    const evs_allocator *alloc;
    int dirfd;  /* the store's directory; every path is relative to it */
    char *path; /* the path it was opened with, for evs_request_dir */
    /* This handle's writer's marker (file_writers.c): its descriptor,
     * holding the lock, or -1 before the first change; its name. */
    pthread_mutex_t wmu;
    int wfd;
    char wname[32];
    /* The listing index as the last listing read it (file_list.c), kept
     * so that the next reads only what was appended since; NULL while a
     * listing holds it. Guarded by ixmu. */
    pthread_mutex_t ixmu;
    struct evs__index *ix;
    void *be; /* a backend's own state (SQLite: its connection) */
};

/* Fields every backend's log starts with. */
struct evs_log {
    const evs_backend_ops *ops;
    evs_store *store;
    char id[EVS_ID_MAX + 1];
    size_t id_len;
    pthread_mutex_t mu;
    unsigned flags;
    int poisoned; /* the error that poisoned it, or 0 */
    int released; /* a writer that gave its lease (or lock) up with its
                     last append (EVS_APPEND_RELEASE): appends refused */
    uint64_t last_seq;
    uint64_t durable_seq;
    uint64_t end; /* bytes of complete appends */
};

struct evs_cursor {
    const evs_backend_ops *ops;
    evs_log *log;
};

/* What a cursor checks of each line it returns, whatever its backend
 * (cursor_check.c): the state kept from one line to the next. */
typedef struct evs__linecheck {
    uint64_t next_seq;           /* the sequence the next line must carry */
    uint64_t grp_first, grp_end; /* the append being read; grp_end 0: none */
    int mid_group_ok;            /* the first line may be inside an append */
    evs_decoder dec;
} evs__linecheck;

/* Starts the checks at sequence `from`; mid_group_ok when the first line
 * may be inside an append (a cursor that does not start at 1). */
void evs__linecheck_init(evs__linecheck *k, const evs_allocator *a,
                         uint64_t from, int mid_group_ok);
void evs__linecheck_free(evs__linecheck *k);
/* Decodes line[0..len) (with its newline), found at byte offset `off`,
 * into *ev and checks that it is log l's next line: checksum and form,
 * execution, sequence, append framing. Returns 0 and moves on, or the
 * error (set in info, naming the sequence expected and `off`) with the
 * state unchanged. */
int evs__linecheck_next(evs__linecheck *k, const evs_log *l, const char *line,
                        size_t len, uint64_t off, evs_event *ev,
                        evs_error_info *info);
/* Sets info to damage of log l at sequence seq and byte offset off:
 * "<id>: <what> at sequence S, byte offset O". Returns code. */
int evs__cursor_damage(evs_error_info *info, const evs_log *l, uint64_t seq,
                       int code, const char *kind, uint64_t off,
                       const char *what);

/* File names inside an execution directory (FORMAT.md, "On disk"). */
#define EVS__LOG_NAME "events.jsonl"
#define EVS__SNAP_NAME "snapshot.json"
#define EVS__TMP_PREFIX ".tmp-"
#define EVS__TRASH_PREFIX ".trash-"

/* True for a request id as evs_request_post makes them: a UUIDv7 as
 * evs_uuid7 writes it. Only such names are requests, so nothing else in
 * an inbox can be mistaken for one. */
int evs__request_id_valid(const char *p, size_t len);

/* Logging through the store's hook as component "store"; never prints.
 * evs__logf gives the record's typed fields (EVS_LOG_FIELDS, may be
 * NULL); evs__log has none. */
void evs__logf(evs_store *s, evs_log_level lvl, const evs_log_record *f,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void evs__log(evs_store *s, evs_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Opens `name` in dirfd with O_NOFOLLOW, O_CLOEXEC and O_NONBLOCK, and
 * checks it is a regular file with one link. Fills *st (may be NULL)
 * with what it found. */
int evs__open_regular(evs_store *s, int dirfd, const char *name, int flags,
                      mode_t mode, int *fd, evs_stat *st);

/* Fills info with which file (id/name) evs__open_regular refused and
 * why, when rc is one of its refusals (-ELOOP, -EINVAL, EVS_EUNSAFE);
 * leaves info alone for other codes. */
void evs__error_refused(evs_error_info *info, int rc, const char *id,
                        const char *name);

/* Opens the directory of execution id (O_DIRECTORY | O_NOFOLLOW). */
int evs__open_exec_dir(evs_store *s, const char *id, int *fd);

/* Writes a file atomically in dirfd: temp file, fsync, rename over
 * `name`, fsync of dirfd. The fsyncs are skipped when the store runs
 * EVS_SYNC_NONE (evs__sync_meta). */
int evs__write_atomic(evs_store *s, int dirfd, const char *name,
                      const void *buf, size_t len, evs_stat *st);
/* The same with the rename's flags: RENAME_NOREPLACE links the file only
 * if `name` is free (-EEXIST otherwise, the temporary file removed).
 * EVS__WRITE_SYNC among them fsyncs in every durability mode. */
#define EVS__WRITE_SYNC (1u << 30)
/* EVS__WRITE_NOSYNC: no fsync in any mode (a cache's replacement). */
#define EVS__WRITE_NOSYNC (1u << 29)
int evs__write_atomic_flags(evs_store *s, int dirfd, const char *name,
                            const void *buf, size_t len, evs_stat *st,
                            unsigned rename_flags);

/*
 * The listing index (file_index.c; FORMAT.md, "The listing index"): a
 * cache of every execution's snapshot header, checked against the
 * snapshot's inode, ctime and size before it is believed.
 */
#define EVS__INDEX_NAME ".index"

/* The writers' markers (FORMAT.md §12; file_writers.c). */
#define EVS__WRITERS_DIR ".writers"
/* Registers the handle as a writer, once: called before any change a
 * listing would show. Returns 0 or -errno (the change must then not be
 * made). */
int evs__writer_enter(evs_store *s);
/* At close: syncs the index, then removes the handle's marker. */
void evs__writer_leave(evs_store *s);
/* Gives the marker up without removing it, so that it reads as a dead
 * writer's: for a change the index could not be told of. The next
 * change registers again. */
void evs__writer_abandon(evs_store *s);
/* Markers whose writer died, found by evs__writers_census. */
#define EVS__DEAD_MAX 64
typedef struct evs__dead {
    size_t count;                     /* dead markers seen */
    size_t n;                         /* of them named below */
    char names[EVS__DEAD_MAX][32];
} evs__dead;
/* Looks for dead writers; 0 with dead->count 0 when every marker is
 * held, or -errno when it could not tell. */
int evs__writers_census(evs_store *s, evs__dead *dead);
/* Removes the markers named in *dead (after the index was rebuilt). */
void evs__writers_bury(evs_store *s, const evs__dead *dead);

/* What the writers note in the index, after the change is made (and
 * whether or not its sync succeeded: the change is visible). Each
 * appends one line under the index's lock; when a line cannot be
 * appended the handle abandons its marker (evs__writer_abandon), so a
 * stale index is never believed.
 * evs__index_note: execution id's snapshot is now `snap` (its whole
 * bytes; only the header line is kept), written as described by *st.
 * evs__index_note_bare: execution id exists, with no snapshot a listing
 * can read. evs__index_note_gone: execution id is deleted. */
void evs__index_note(evs_store *s, const char *id, const char *snap, size_t len,
                     const evs_stat *st);
void evs__index_note_bare(evs_store *s, const char *id);
void evs__index_note_gone(evs_store *s, const char *id);
/* Writes a new, empty and complete index: for a store just made. */
int evs__index_create(evs_store *s);

typedef struct evs__index evs__index;

/* Loads the index into *ixp. An index there already (kept from an
 * earlier listing; NULL: none) is brought up to date by reading only
 * what was appended to it since, when `.index` still names the file it
 * read; otherwise it is freed and the file read whole. Never fails for a
 * missing or damaged index (it is then empty and not trusted). Returns 0
 * or -ENOMEM (then free *ixp). A loaded index keeps the file open. */
int evs__index_load(evs_store *s, evs__index **ixp);

/* 1 when the index can be believed without looking at the executions:
 * complete when written (a base line), undamaged since, and every writer
 * that appended to it alive or gone cleanly (no dead marker, which
 * *dead then lists: rebuild, then bury them). 0 otherwise, -errno when
 * the markers could not be read. */
int evs__index_trusted(evs_store *s, evs__index *ix, evs__dead *dead);

/* A string a listing filters on, as an index row keeps it: its length,
 * hash and first bytes. */
#define EVS__KEY_HEAD 12
typedef struct evs__index_key {
    uint64_t h;
    uint32_t len;
    char head[EVS__KEY_HEAD];
} evs__index_key;

/* Makes the key of v. */
void evs__index_key_make(evs_span v, evs__index_key *k);
/* Whether the strings with keys a and b are equal: their bytes, abytes
 * and bbytes, are read only when they are longer than the head. */
int evs__index_key_eq(const evs__index_key *a, evs_span abytes,
                      const evs__index_key *b, evs_span bbytes);

/* One current entry of the index: an execution's id and header line
 * (not terminated; hlen 0: no snapshot a listing can read) and, when
 * `plain`, what a listing filters on, read from the header's bytes
 * (which the index line's checksum covers) when it was loaded: its
 * created_at (0 for null), status and workflow name (ptr NULL: null). */
typedef struct evs__index_row {
    const char *id;
    size_t id_len;
    const char *hdr;
    size_t hlen;
    int plain;
    int64_t created;
    evs_span status, workflow;
    /* The same two as keys held in the row, so that a filter reads the
     * header's bytes (all over the index) only to confirm a long one. */
    evs__index_key status_k, workflow_k;
} evs__index_row;

/* Walks a trusted index's current entries. */
typedef int (*evs__index_fn)(void *arg, const evs__index_row *r);
int evs__index_each(evs__index *ix, evs__index_fn fn, void *arg);

/* The header line recorded for id if the snapshot on disk still matches
 * it (one stat of "<id>/snapshot.json"): 1 with *hdr and *hlen set (borrowed
 * from the index), 0 otherwise. */
int evs__index_lookup(evs_store *s, evs__index *ix, const char *id,
                      size_t id_len, const char **hdr, size_t *hlen);

/* Remembers a current entry for a rewrite; the index is rewritten by
 * evs__index_finish when it holds many stale or missing entries. */
int evs__index_keep(evs__index *ix, const char *id, size_t id_len,
                    const char *hdr, size_t hlen, const evs_stat *st);
/* The same for an execution with no snapshot a listing can read. */
int evs__index_keep_bare(evs__index *ix, const char *id, size_t id_len);
/* After a listing: rewrites the index (durably, with a base line) when
 * `rebuilt` (the index was not trusted, so every execution was listed
 * from the directory, with evs__index_keep), or when a trusted index
 * holds many superseded lines. Returns 1 when a complete index was
 * written. */
int evs__index_finish(evs_store *s, evs__index *ix, size_t listed,
                      int rebuilt);
void evs__index_free(evs_store *s, evs__index *ix);

/* Whether creations and replacements are fsynced: always, except in
 * EVS_SYNC_NONE, whose user accepts losing unsynced work to a power
 * loss. Atomicity (rename) holds in every mode. */
static inline int evs__sync_meta(const evs_store *s)
{
    return s->opts.durability != EVS_SYNC_NONE;
}

/* A random suffix of 16 hex digits and a NUL, for temporary names. */
int evs__rand_suffix(char out[17]);

/* The last sequence of execution id's log, found as a reader would. */
int evs__log_peek_last(evs_store *s, const char *id, size_t id_len,
                       uint64_t *last_seq);

/*
 * The end-of-log finder shared by readers, writers and evs_log_scan:
 * from the file's last bytes, finds the end of the last complete append.
 */
typedef struct evs__tail {
    uint64_t end;         /* end of the last complete append */
    uint64_t last_seq;    /* its last sequence, 0 if none */
    uint64_t lines_after; /* complete, valid lines after `end` */
    /* What follows `end` (FORMAT.md §4, "The tail"), when anything does:
     * the unfinished append and its first damage. */
    uint64_t size;        /* the file's size when it was looked at */
    uint64_t app_first;   /* first sequence of the unfinished append */
    uint64_t app_count;   /* its events: its lines' batch, else the lines
                             there are */
    int damaged;          /* a line fails in a way no crash leaves */
    uint64_t bad_seq;     /* the first such line: the sequence it stands */
    uint64_t bad_offset;  /* at, its offset (UINT64_MAX: none) */
    uint64_t bad_len;     /* and its length */
    const char *bad_kind; /* "checksum", "syntax", ...; "" when none */
} evs__tail;

int evs__find_tail(evs_store *s, int fd, uint64_t size, const char *id,
                   size_t id_len, evs__tail *t, evs_error_info *info);

/*
 * One piece of the tail after the end of the log, for evs__walk_tail's
 * callback: a line that checks out (ev and raw set), or bytes that do
 * not (ev NULL): `explained` when a crash can leave them (FORMAT.md §4),
 * with the kind of failure.
 */
typedef struct evs__tail_piece {
    const evs_event *ev;
    evs_span raw;
    uint64_t offset, len;
    uint64_t seq; /* the sequence it stands at */
    int explained;
    const char *kind;
    const char *why;
} evs__tail_piece;

typedef int (*evs__tail_fn)(void *arg, const evs__tail_piece *p);

/*
 * Reads the bytes [t->end, size) of the log forwards, line by line, and
 * fills t's description of them (app_*, damaged, bad_*, lines_after);
 * calls fn (may be NULL) for each piece, in file order, stopping with
 * its non-zero return. t->end and t->last_seq must be set. Returns 0,
 * fn's value, or -errno.
 */
int evs__walk_tail(evs_store *s, int fd, uint64_t size, const char *id,
                   size_t id_len, evs__tail *t, evs__tail_fn fn, void *arg);

/*
 * An internal flag of log_append, beside EVS_APPEND_NO_SYNC: the `data`
 * of every event is the compact JSON that evs_json_check accepted and
 * wrote (EVS_JSON_MINIFY), so the encoder copies it instead of checking
 * it again (EVS__LINE_DATA_COMPACT). The recorder checks `data` when an
 * event is recorded and keeps it so; evs_log_append_flags refuses the
 * flag, so no public caller can bring unchecked data past the check.
 */
#define EVS__APPEND_DATA_COMPACT (1u << 15)

/* evs_log_append_flags without its check of `flags`, which may hold
 * EVS__APPEND_DATA_COMPACT. */
int evs__log_append_flags(evs_log *l, const evs_event *events, size_t n,
                          uint64_t expected_last_seq, unsigned flags,
                          evs_error_info *info);

/* evs_log_append_snapshot without its check of `flags` (as above). */
int evs__log_append_snapshot(evs_log *l, const evs_event *events, size_t n,
                             uint64_t expected_last_seq, unsigned flags,
                             const evs_snapshot *snap, unsigned snap_flags,
                             int *snap_rc, evs_error_info *info);

#endif /* EVS_STORE_INT_H */
