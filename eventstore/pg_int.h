/*
 * pg_int.h: the PostgreSQL backend's handles and the functions its files
 * share. Only eventstore/pg_*.c include it. eventstore/BACKENDS.md gives
 * the schema, the lease and fencing of writers, and how each promise of
 * store.h is kept.
 */
#ifndef EVS_PG_INT_H
#define EVS_PG_INT_H

#include "store_int.h"

#include <libpq-fe.h>
#include <sys/types.h>

/* The schema version this library writes and reads (BACKENDS.md). */
#define EVS__PG_SCHEMA 4

/* The server's clock in microseconds, in SQL: leases (of writers and of
 * schedules) are measured by the one clock every runner shares. */
#define PG_NOW_US "(extract(epoch FROM clock_timestamp()) * 1000000)::int8"

/* In a statement's RETURNING: its own commit does not wait for the WAL
 * to be flushed (synchronous_commit off for that transaction alone),
 * without the two round trips of a SET before and after it. For what
 * may be lost in a server crash: a lease renewed or released. */
#define PG_COMMIT_OFF "set_config('synchronous_commit', 'off', true)"

/* The statements, prepared on the connection at first use. */
enum {
    PG_EXEC_GET,   /* id -> rid, last_seq, bytes, req_gen */
    PG_EXEC_ADD,   /* the row and the first lines, one statement -> rid */
    PG_APPEND,     /* the lines and the new end, fenced, one statement */
    PG_APPEND_SNAP, /* PG_APPEND and the snapshot (as PG_SNAP_SET) */
    PG_LEASE_GET,  /* rid -> fence, lease still held, last_seq */
    PG_CLAIM,      /* id, owner, lease -> rid, fence, last_seq, bytes */
    PG_CLAIM_NEXT, /* owner, lease -> rid, fence, last_seq, bytes, id */
    PG_HOLDER,     /* id -> owner, lease's time left */
    PG_RENEW,      /* rid, fence, lease -> lease_until */
    PG_RELEASE,    /* rid, fence, channel */
    PG_EXEC_DEL,   /* rid, fence: the row, its events and requests */
    PG_EVENTS_GET, /* rid, from, to, limit -> seq, off, line */
    PG_SNAP_GET,   /* rid -> snapshot, last_seq, created_at */
    PG_SNAP_SET,
    PG_REQ_ADD,
    PG_REQ_LIST,   /* id -> req_id, body (NULLs: none; no row: no id) */
    PG_REQ_DEL,
    PG_SET_GET,
    PG_SET_PUT,
    PG_FINAL_LIST,
    PG_SYNC,  /* a commit that waits for the WAL to be flushed */
    PG_LIST0, /* the listing's 8 shapes (pg_data.c) */
    /* Schedules (pg_schedule.c, whose evs__pg_sched_sql gives their
     * SQL). */
    PG_SCHED0 = PG_LIST0 + 8,
    PG_SCHED_ADD = PG_SCHED0, /* name, line, updated_at */
    PG_SCHED_GET,             /* name -> line */
    PG_SCHED_CLAIM,           /* name, owner, lease -> fence */
    PG_SCHED_PUT,             /* name, fence, line, updated_at, lease */
    PG_SCHED_DEL,             /* name, fence */
    PG_SCHED_RELEASE,         /* name, fence */
    PG_SCHED_LIST,            /* -> name */
    PG_NSTMT
};

/* A connection of the store's pool, and what the server holds for it:
 * its prepared statements and its synchronous_commit. */
typedef struct pg_conn {
    PGconn *conn;     /* NULL until first used, or after it was lost */
    evs_store *s;
    pid_t pid;        /* the process that made the connection */
    int sync;         /* synchronous_commit in force: 1 on, 0 off,
                           -1 not known (a new connection) */
    struct pg_conn *next; /* in the idle list */
    unsigned char prepared[PG_NSTMT];
} pg_conn;

/* The store's state (evs_store.be). Its threads share a pool of up to
 * `nconns` connections (evs_store_opts.connections): a statement, or a
 * transaction, takes one for its time (evs__pg_get .. evs__pg_put), so
 * that one thread's commit waiting for the WAL's flush does not hold up
 * another's statement, and the server's group commit can gather them. */
typedef struct pg_store {
    pthread_mutex_t mu; /* the idle list */
    pthread_cond_t cv;  /* a connection was put back */
    pg_conn *conns;     /* nconns of them, connected at first use */
    pg_conn *idle;
    unsigned nconns;
    char *where;      /* the location for messages, password hidden */
    char *conninfo;   /* the location as given, to connect again */
    int64_t lease_us; /* a writer's lease (evs_store_opts.lease_ms) */
    char chan[24];    /* the store's notification channel: "evs_" and
                           the hash of its schema's name (evs_watch) */
} pg_store;

/* A log: the common fields, its row and, for a writer, its claim. */
typedef struct pg_log {
    struct evs_log base;
    int64_t rid;       /* executions.rid */
    int64_t fence;     /* the fencing token of the writer's claim, else 0 */
    evs__db_sync sy;   /* a writer's flushes */
    char *wbuf, *abuf; /* the lines; the statement's arrays */
    size_t wcap, acap;
} pg_log;

static inline pg_store *evs__pg(evs_store *s)
{
    return (pg_store *)s->be;
}

/* A statement's parameters, each sent in binary. */
#define PG_MAXP 20
typedef struct pg_params {
    int n;
    const char *val[PG_MAXP];
    int len[PG_MAXP];
    int fmt[PG_MAXP];
    uint64_t be[PG_MAXP];
} pg_params;

void evs__pg_i64(pg_params *p, int64_t v);
void evs__pg_bytes(pg_params *p, const void *b, size_t len);
void evs__pg_bool(pg_params *p, int v);

/* The length of the first line of libpq's message m, for "%.*s". */
int evs__pg_msg_len(const char *m);

/* Takes a connection of the store's pool, waiting while all are in use
 * (never NULL: it connects at its first statement), and puts it back. */
pg_conn *evs__pg_get(evs_store *s);
void evs__pg_put(pg_conn *db);

/* Runs statement `which` with p (may be NULL: none) on db, connecting
 * again first when the connection was lost, at synchronous_commit `sync`
 * (1 on, 0 off, -1 whatever is in force; a change is sent with the
 * statement, in one round trip). Returns its result (binary columns;
 * PQclear it), or NULL with *rc set and the error logged with `what`:
 * -EEXIST (a unique key), -ENOSPC, -ENOMEM, -ECONNRESET (the connection
 * dropped: the statement may or may not have committed), -EACCES, -EIO. */
PGresult *evs__pg_run(pg_conn *db, int which, const pg_params *p, int sync,
                      const char *what, int *rc);

/* evs__pg_run for a statement whose rows are not wanted: 0 or *rc;
 * *changed (may be NULL) gets the rows it changed. */
int evs__pg_do(pg_conn *db, int which, const pg_params *p, int sync,
               const char *what, uint64_t *changed);

/* BEGIN (at synchronous_commit `sync`) and COMMIT or ROLLBACK: evs__pg_end
 * commits when rc is 0, else rolls back, and returns rc or the commit's
 * error. The statements between run on the same db. */
int evs__pg_begin(pg_conn *db, int sync);
int evs__pg_end(pg_conn *db, int rc);

/* A result's int8 and bytea/text columns (binary format). */
int64_t evs__pg_col_i64(const PGresult *r, int row, int col);
const char *evs__pg_col(const PGresult *r, int row, int col, size_t *len);

/* Whether metadata writes (creation, snapshots) wait for a flush: all but
 * EVS_SYNC_NONE. */
#define PG_SYNC_META(s) ((s)->opts.durability != EVS_SYNC_NONE)

/* Looks execution id up on db: 0 with its rid (and last_seq, bytes,
 * request counter; each may be NULL), or -ENOENT. */
int evs__pg_exec_get(pg_conn *db, const char *id, size_t id_len, int64_t *rid,
                     uint64_t *last_seq, uint64_t *bytes, int64_t *req_gen);

/* Claims execution id's lease for a writer (or a delete): 0 with its
 * rid, new fencing token and log end, EVS_ELOCKED (another holds a live
 * lease; *held_ms its time left, may be NULL), -ENOENT or an error.
 * `wait` retries until the lease is free. */
int evs__pg_claim(evs_store *s, const char *id, size_t id_len, int wait,
                  int64_t *rid, int64_t *fence, uint64_t *last_seq,
                  uint64_t *bytes, int64_t *held_ms);

/* Gives a claim up (the lease ends now), if it is still this one's.
 * Errors are logged only. */
void evs__pg_release(evs_store *s, int64_t rid, int64_t fence);

/* Creates execution id (evs_backend_ops.exec_create) in one statement;
 * with `owner` (may be NULL) also claims its lease, as the first writer:
 * *rid (may be NULL) its row, *bytes (may be NULL) its log's size. */
int evs__pg_exec_add(evs_store *s, const char *id, size_t id_len,
                     const evs_snapshot *snap, const evs_event *ev, size_t n,
                     unsigned flags, const char *owner, int64_t *rid,
                     uint64_t *bytes);

/* pg_lease.c: the deletes, which claim the lease first (evs_backend_ops). */
int evs__pg_exec_trash(evs_store *s, const char *name, uint64_t expect_seq,
                       evs__trashed *t);
int evs__pg_trash_commit(evs_store *s, evs__trashed *t, size_t n);
int evs__pg_exec_delete(evs_store *s, const char *id, size_t id_len);
int evs__pg_exec_cleanup(evs_store *s, int64_t older_than_us, size_t *deleted);

/* pg_log.c */
int evs__pg_log_open(evs_store *s, const char *id, size_t id_len,
                     unsigned flags, evs_log **out, evs_recovery_info *rec,
                     evs_error_info *info);
void evs__pg_log_close(evs_log *l);
int evs__pg_log_append(evs_log *l, const evs_event *ev, size_t n,
                       uint64_t expected, unsigned flags, evs_error_info *info);
void evs__pg_log_release(evs_log *l);
int evs__pg_log_append_snap(evs_log *l, const evs_event *ev, size_t n,
                            uint64_t expected, unsigned flags,
                            const evs_snapshot *snap, unsigned snap_flags,
                            int *snap_rc, evs_error_info *info);
int evs__pg_log_sync(evs_log *l);
int evs__pg_log_refresh(evs_log *l);
int evs__pg_log_renew(evs_log *l, int64_t *until_us);
int evs__pg_log_scan(evs_store *s, const char *id, size_t id_len,
                     evs_scan_fn fn, void *arg);
int evs__pg_cursor_open(evs_log *l, uint64_t from, uint64_t to,
                        evs_cursor **out, evs_error_info *info);
/* The lines of `lines`, `len` bytes, n of them, as the two arrays of
 * PG_EXEC_ADD and PG_APPEND (offsets from `off`, the lines) in *buf:
 * the first *alen bytes, the second the next *blen. */
int evs__pg_line_arrays(evs_store *s, const char *lines, size_t len, size_t n,
                        uint64_t off, char **buf, size_t *cap, size_t *alen,
                        size_t *blen);

int evs__pg_log_claim(evs_store *s, evs_log **out, evs_error_info *info);
int evs__pg_exec_create_open(evs_store *s, const char *id, size_t id_len,
                             const evs_snapshot *snap, const evs_event *ev,
                             size_t n, unsigned flags, evs_log **out);

/* pg_watch.c: LISTEN/NOTIFY (evs_watch). */
int evs__pg_watch_open(evs_store *s, evs_watch **out);
int evs__pg_watch_read(evs_watch *w, evs_watch_fn fn, void *arg);
void evs__pg_watch_close(evs_watch *w);

/* pg_data.c: listing, snapshots, requests, settings, usage. */
const char *evs__pg_list_sql(unsigned shape, char *buf, size_t cap);
int evs__pg_exec_list(evs_store *s, const evs_list_filter *f,
                      evs_exec_listing *out);
/* Adds the parameters of a snapshot's columns, in the order of the
 * executions table (status .. snap_seq, then its bytes buf[0..len)). */
void evs__pg_snapshot_params(pg_params *p, const evs_snapshot *sn,
                             const char *buf, size_t len);
int evs__pg_snapshot_save(evs_store *s, const char *id, size_t id_len,
                          const evs_snapshot *snap, unsigned flags);
int evs__pg_snapshot_load(evs_store *s, const char *id, size_t id_len,
                          unsigned flags, evs_snapshot **out,
                          evs_error_info *info);
int evs__pg_request_post(evs_store *s, const char *id, size_t id_len,
                         const char *json, size_t len,
                         char out_id[EVS_REQUEST_ID_LEN + 1]);
int evs__pg_request_list(evs_store *s, const char *id, size_t id_len,
                         evs_request_listing *out);
int evs__pg_request_remove(evs_store *s, const char *id, size_t id_len,
                           const char *req_id);
int evs__pg_request_stamp(evs_store *s, const char *id, size_t id_len,
                          uint64_t *ino, int64_t *ctime_ns);
int evs__pg_settings_load(evs_store *s, evs_settings **out, evs_error_info *ei);
int evs__pg_settings_save(evs_store *s, const evs_settings *st,
                          evs_error_info *ei);
int evs__pg_exec_usage(evs_store *s, const char *name, evs__usage *u);

/* pg_schedule.c: schedules (evs_backend_ops, store_int.h), and the SQL
 * of statement `which` (PG_SCHED0 ..). */
const char *evs__pg_sched_sql(int which);
int evs__pg_sched_create(evs_store *s, const char *name, const char *line,
                         size_t len, int64_t updated_us);
int evs__pg_sched_open(evs_schedule *h, unsigned flags);
int evs__pg_sched_read(evs_schedule *h, char **buf, size_t *len);
int evs__pg_sched_write(evs_schedule *h, const char *line, size_t len,
                        int64_t updated_us);
int evs__pg_sched_remove(evs_schedule *h);
void evs__pg_sched_close(evs_schedule *h);
int evs__pg_sched_list(evs_store *s,
                       int (*fn)(void *arg, const char *name, size_t len),
                       void *arg);

#endif /* EVS_PG_INT_H */
