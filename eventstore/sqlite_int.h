/*
 * sqlite_int.h: the SQLite backend's handles and the functions its files
 * share. Only eventstore/sqlite_*.c include it. eventstore/BACKENDS.md
 * gives the schema and how each promise of store.h is kept.
 */
#ifndef EVS_SQLITE_INT_H
#define EVS_SQLITE_INT_H

#include "store_int.h"

#include <sqlite3.h>

/* The schema version this library writes and reads (BACKENDS.md). */
#define EVS__SQ_SCHEMA 2

/* The prepared statements, made on first use and kept (sqlite_store.c). */
enum {
    SQ_BEGIN_W, /* BEGIN IMMEDIATE */
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_EXEC_GET, /* id -> rid, last_seq, bytes, req_gen */
    SQ_EXEC_ROW, /* rid -> last_seq, bytes */
    SQ_EXEC_ADD,
    SQ_EXEC_END, /* set last_seq, bytes where rid and last_seq */
    SQ_EXEC_DEL,
    SQ_EVENT_ADD,
    SQ_EVENTS_DEL,
    SQ_EVENTS_GET, /* rid, seq range, limit -> seq, off, line */
    SQ_SNAP_GET,
    SQ_SNAP_SET,
    SQ_SNAPBODY_PUT,
    SQ_SNAPBODY_DEL,
    SQ_REQ_ADD,
    SQ_REQ_LIST,
    SQ_REQ_DEL,
    SQ_REQS_DEL,
    SQ_REQ_GEN,
    SQ_SYNC_MARK,
    SQ_SET_GET,
    SQ_SET_PUT,
    SQ_FINAL_LIST,
    SQ_COUNT_ALL,
    SQ_NSTMT
};

/* The store's state (evs_store.be): one connection, shared by the
 * store's threads under `mu`, which also orders its transactions. */
typedef struct sq_store {
    sqlite3 *db;
    pthread_mutex_t mu;
    char *lock_path; /* the sidecar lock file: PATH-evslock */
    int path_len;    /* its first path_len bytes are PATH, the database */
    int sync_level;  /* PRAGMA synchronous now in force (1 or 2) */
    sqlite3_stmt *st[SQ_NSTMT];
    sqlite3_stmt *list_st[8]; /* the listing's variants (sqlite_list.c) */
} sq_store;

/* A log: the common fields, its row and its writer's lock. */
typedef struct sq_log {
    struct evs_log base;
    int64_t rid;     /* executions.rid */
    int lock_fd;     /* a writer's lock file descriptor, else -1 */
    evs__db_sync sy; /* a writer's flushes */
    char *wbuf;
    size_t wcap;
} sq_log;

static inline sq_store *evs__sq(evs_store *s)
{
    return (sq_store *)s->be;
}

/* The statement `which`, reset and with its bindings cleared; NULL
 * (with the error logged) when it cannot be prepared. Under q->mu. */
sqlite3_stmt *evs__sq_stmt(evs_store *s, int which);

/* SQLite's result code as one of ours: -EBUSY, -ENOSPC (SQLITE_FULL: a
 * write found no space), -EIO, EVS_ECORRUPT, -ENOMEM, -EEXIST (a
 * constraint), else -EIO; logs one line naming the store ("store
 * sqlite:PATH: ...") with `what` and SQLite's message, which for -ENOSPC
 * says the disk is full. An fsync that fails with ENOSPC reaches us as
 * SQLite's I/O error, without its errno: -EIO. */
int evs__sq_err(evs_store *s, int src, const char *what);

/* Runs a statement that returns no rows (step to DONE, then reset). */
int evs__sq_done(evs_store *s, sqlite3_stmt *st, const char *what);

/* BEGIN IMMEDIATE with PRAGMA synchronous set first to FULL (sync != 0)
 * or NORMAL; evs__sq_end commits (rc == 0) or rolls back, and returns
 * rc or the commit's error. */
int evs__sq_begin(evs_store *s, int sync);
int evs__sq_end(evs_store *s, int rc);

/* Whether the store's durability asks metadata writes (creation,
 * snapshots) to be synced: all but EVS_SYNC_NONE. */
#define SQ_SYNC_META(s) ((s)->opts.durability != EVS_SYNC_NONE)

/* Looks execution id up: 0 with its rid (and last_seq, bytes, request
 * counter; each may be NULL), or -ENOENT. Under q->mu. */
int evs__sq_exec_get(evs_store *s, const char *id, size_t id_len, int64_t *rid,
                     uint64_t *last_seq, uint64_t *bytes, int64_t *req_gen);

/* The writer's lock on execution row rid: opens the lock file (a new
 * open file description, so two handles of one process exclude each
 * other too) and locks byte rid; `wait` blocks. 0 with *fd, EVS_ELOCKED,
 * or -errno. evs__sq_lock_on takes it on an open descriptor. */
int evs__sq_lock(evs_store *s, int64_t rid, int wait, int *fd);
int evs__sq_lock_on(int fd, int64_t rid, int wait);
int evs__sq_lock_file(evs_store *s, int *fd);

/* Deletes the rows of execution rid (under q->mu, in a transaction). */
int evs__sq_delete_rows(evs_store *s, int64_t rid);

/* Stores snapshot bytes buf[0..len) for execution rid (in a
 * transaction). */
int evs__sq_put_snapshot(evs_store *s, int64_t rid, const char *buf,
                         size_t len);

/* Appends the complete lines buf[0..len), n events, to execution rid,
 * whose log ends at sequence `last` and byte `bytes`, in the caller's
 * transaction. Returns 0, EVS_ECONFLICT (the end moved) or an error. */
int evs__sq_add_lines(evs_store *s, int64_t rid, uint64_t last, uint64_t bytes,
                      const char *buf, size_t len, size_t n);

/* sqlite_log.c */
int evs__sq_log_open(evs_store *s, const char *id, size_t id_len,
                     unsigned flags, evs_log **out, evs_recovery_info *rec,
                     evs_error_info *info);
void evs__sq_log_close(evs_log *l);
int evs__sq_log_append(evs_log *l, const evs_event *ev, size_t n,
                       uint64_t expected, unsigned flags, evs_error_info *info);
int evs__sq_log_sync(evs_log *l);
int evs__sq_log_refresh(evs_log *l);
int evs__sq_log_scan(evs_store *s, const char *id, size_t id_len,
                     evs_scan_fn fn, void *arg);
int evs__sq_cursor_open(evs_log *l, uint64_t from, uint64_t to,
                        evs_cursor **out, evs_error_info *info);

/* sqlite_data.c: listing, snapshots, requests, settings, usage. */
int evs__sq_exec_list(evs_store *s, const evs_list_filter *f,
                      evs_exec_listing *out);
/* Sets execution rid's listing columns from sn and its snapshot to
 * buf[0..len), in the caller's transaction, under q->mu. */
int evs__sq_snapshot_write(evs_store *s, int64_t rid, const evs_snapshot *sn,
                           const char *buf, size_t len);
int evs__sq_log_append_snap(evs_log *l, const evs_event *ev, size_t n,
                            uint64_t expected, unsigned flags,
                            const evs_snapshot *snap, unsigned snap_flags,
                            int *snap_rc, evs_error_info *info);
int evs__sq_snapshot_save(evs_store *s, const char *id, size_t id_len,
                          const evs_snapshot *snap, unsigned flags);
int evs__sq_snapshot_load(evs_store *s, const char *id, size_t id_len,
                          unsigned flags, evs_snapshot **out,
                          evs_error_info *info);
/* Binds the snapshot columns (?2..?8 of SQ_SNAP_SET and SQ_EXEC_ADD) of
 * the encoded snapshot `sn`, whose bytes are buf[0..len). */
void evs__sq_bind_snapshot(sqlite3_stmt *st, const evs_snapshot *sn,
                           const char *buf, size_t len);
int evs__sq_request_post(evs_store *s, const char *id, size_t id_len,
                         const char *json, size_t len,
                         char out_id[EVS_REQUEST_ID_LEN + 1]);
int evs__sq_request_list(evs_store *s, const char *id, size_t id_len,
                         evs_request_listing *out);
int evs__sq_request_remove(evs_store *s, const char *id, size_t id_len,
                           const char *req_id);
int evs__sq_request_stamp(evs_store *s, const char *id, size_t id_len,
                          uint64_t *ino, int64_t *ctime_ns);
int evs__sq_settings_load(evs_store *s, evs_settings **out, evs_error_info *ei);
int evs__sq_settings_save(evs_store *s, const evs_settings *st,
                          evs_error_info *ei);
int evs__sq_exec_usage(evs_store *s, const char *name, evs__usage *u);

/* sqlite_schedule.c: schedules (evs_backend_ops, store_int.h). */
int evs__sq_sched_create(evs_store *s, const char *name, const char *line,
                         size_t len, int64_t updated_us);
int evs__sq_sched_open(evs_schedule *h, unsigned flags);
int evs__sq_sched_read(evs_schedule *h, char **buf, size_t *len);
int evs__sq_sched_write(evs_schedule *h, const char *line, size_t len,
                        int64_t updated_us);
int evs__sq_sched_remove(evs_schedule *h);
void evs__sq_sched_close(evs_schedule *h);
int evs__sq_sched_list(evs_store *s,
                       int (*fn)(void *arg, const char *name, size_t len),
                       void *arg);

#endif /* EVS_SQLITE_INT_H */
