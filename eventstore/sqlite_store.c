/*
 * sqlite_store.c: the SQLite backend's store: opening the database (WAL,
 * the schema and its forward migrations), its prepared statements and
 * transactions, the writers' locks, and creating and deleting
 * executions. eventstore/BACKENDS.md describes the schema and how each
 * promise of store.h is kept.
 */
#include "sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The schema, one step per version: migrations[v] takes a database at
 * version v to v + 1, in the transaction that records the new version.
 * A database of a later version than this list reaches is refused.
 */
static const char *const migrations[EVS__SQ_SCHEMA] = {
    /* 0 -> 1 */
    "CREATE TABLE evs_schema(version INTEGER NOT NULL);"
    "INSERT INTO evs_schema VALUES(0);"
    /* One row per execution: its listing header, its log's end and its
     * inbox's change counter. rid is never reused (AUTOINCREMENT): it is
     * the offset of the execution's lock in the lock file. */
    "CREATE TABLE executions("
    " rid INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " last_seq INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL,"
    " req_gen INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL,"
    " workflow TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " start_time INTEGER NOT NULL,"
    " end_time INTEGER NOT NULL,"
    " snap_seq INTEGER NOT NULL);"
    /* The listing's order, and its filters, each covering the columns a
     * listing returns. */
    "CREATE INDEX executions_created ON executions(created_at, id, status,"
    " workflow, start_time, end_time, updated_at, snap_seq);"
    "CREATE INDEX executions_status ON executions(status, created_at, id,"
    " workflow, start_time, end_time, updated_at, snap_seq);"
    "CREATE INDEX executions_workflow ON executions(workflow, created_at, id,"
    " status, start_time, end_time, updated_at, snap_seq);"
    "CREATE INDEX executions_final ON executions(status, updated_at);"
    /* The whole snapshot, as its file would hold it. */
    "CREATE TABLE snapshots(rid INTEGER PRIMARY KEY, body BLOB NOT NULL);"
    /* The log: each line byte for byte, newline included, at the byte
     * offset it would have in events.jsonl. */
    "CREATE TABLE events(rid INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " off INTEGER NOT NULL, line BLOB NOT NULL, PRIMARY KEY(rid, seq))"
    " WITHOUT ROWID;"
    "CREATE TABLE requests(rid INTEGER NOT NULL, req_id TEXT NOT NULL,"
    " body BLOB NOT NULL, PRIMARY KEY(rid, req_id)) WITHOUT ROWID;"
    "CREATE TABLE settings(k INTEGER PRIMARY KEY CHECK(k = 0),"
    " body BLOB NOT NULL);"
    /* Written by evs_log_sync to have something to commit with a sync. */
    "CREATE TABLE sync_mark(k INTEGER PRIMARY KEY CHECK(k = 0),"
    " n INTEGER NOT NULL);"
    "INSERT INTO sync_mark VALUES(0, 0);",
    /* 1 -> 2: schedules (sqlite_schedule.c). body is the schedule's
     * framed, checksummed line (SCHEDULES.md §7) byte for byte: its
     * document, its state and their checksum; updated_at (µs) is the
     * line's, for a reader of the table. */
    "CREATE TABLE schedules(name TEXT NOT NULL PRIMARY KEY,"
    " body BLOB NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;",
};

static const char *const stmt_sql[SQ_NSTMT] = {
    [SQ_BEGIN_W] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_EXEC_GET] =
        "SELECT rid, last_seq, bytes, req_gen FROM executions WHERE id = ?1",
    [SQ_EXEC_ROW] = "SELECT last_seq, bytes FROM executions WHERE rid = ?1",
    [SQ_EXEC_ADD] =
        "INSERT INTO executions(id, last_seq, bytes, status, workflow,"
        " created_at, updated_at, start_time, end_time, snap_seq)"
        " VALUES(?1, ?10, ?11, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [SQ_EXEC_END] = "UPDATE executions SET last_seq = ?2, bytes = ?3"
                    " WHERE rid = ?1 AND last_seq = ?4",
    [SQ_EXEC_DEL] = "DELETE FROM executions WHERE rid = ?1",
    [SQ_EVENT_ADD] =
        "INSERT INTO events(rid, seq, off, line) VALUES(?1, ?2, ?3, ?4)",
    [SQ_EVENTS_DEL] = "DELETE FROM events WHERE rid = ?1",
    [SQ_EVENTS_GET] = "SELECT seq, off, line FROM events WHERE rid = ?1"
                      " AND seq >= ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
    [SQ_SNAP_GET] = "SELECT s.body, e.last_seq, e.created_at FROM"
                    " executions e LEFT JOIN snapshots s ON s.rid = e.rid"
                    " WHERE e.rid = ?1",
    [SQ_SNAP_SET] = "UPDATE executions SET status = ?2, workflow = ?3,"
                    " created_at = ?4, updated_at = ?5, start_time = ?6,"
                    " end_time = ?7, snap_seq = ?8 WHERE rid = ?1",
    [SQ_SNAPBODY_PUT] =
        "INSERT OR REPLACE INTO snapshots(rid, body) VALUES(?1, ?2)",
    [SQ_SNAPBODY_DEL] = "DELETE FROM snapshots WHERE rid = ?1",
    [SQ_REQ_ADD] = "INSERT INTO requests(rid, req_id, body) VALUES(?1, ?2, ?3)",
    [SQ_REQ_LIST] =
        "SELECT req_id, body FROM requests WHERE rid = ?1 ORDER BY req_id",
    [SQ_REQ_DEL] = "DELETE FROM requests WHERE rid = ?1 AND req_id = ?2",
    [SQ_REQS_DEL] = "DELETE FROM requests WHERE rid = ?1",
    [SQ_REQ_GEN] = "UPDATE executions SET req_gen = req_gen + 1 WHERE rid = ?1",
    [SQ_SYNC_MARK] = "UPDATE sync_mark SET n = n + 1",
    [SQ_SET_GET] = "SELECT body FROM settings WHERE k = 0",
    [SQ_SET_PUT] = "INSERT OR REPLACE INTO settings(k, body) VALUES(0, ?1)",
    [SQ_FINAL_LIST] =
        "SELECT rid, id FROM executions WHERE status IN ('completed',"
        " 'failed', 'terminated', 'continued') AND updated_at < ?1",
    [SQ_COUNT_ALL] = "SELECT count(*) FROM executions",
};

int evs__sq_err(evs_store *s, int src, const char *what)
{
    sq_store *q = evs__sq(s);
    const char *msg = q && q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(src);
    int rc;

    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: rc = -EBUSY; break;
    case SQLITE_FULL: rc = -ENOSPC; break;
    case SQLITE_NOMEM: rc = -ENOMEM; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: rc = EVS_ECORRUPT; break;
    case SQLITE_CONSTRAINT: rc = -EEXIST; break;
    case SQLITE_READONLY:
    case SQLITE_PERM: rc = -EACCES; break;
    case SQLITE_CANTOPEN: rc = -ENOENT; break;
    default: rc = -EIO; break;
    }
    if (rc == -EEXIST)
        return rc;
    if (!q || !q->lock_path)
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "store sqlite: SQLite: %s: %s", what, msg);
    else if (rc == -ENOSPC)
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "store sqlite:%.*s: the disk is full: %s failed (%s)",
                  q->path_len, q->lock_path, what, msg);
    else
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "store sqlite:%.*s: SQLite: %s: %s", q->path_len,
                  q->lock_path, what, msg);
    return rc;
}

sqlite3_stmt *evs__sq_stmt(evs_store *s, int which)
{
    sq_store *q = evs__sq(s);
    int rc;

    if (!q->st[which]) {
        rc = sqlite3_prepare_v3(q->db, stmt_sql[which], -1,
                                SQLITE_PREPARE_PERSISTENT, &q->st[which], NULL);
        if (rc != SQLITE_OK) {
            evs__sq_err(s, rc, stmt_sql[which]);
            return NULL;
        }
    }
    sqlite3_reset(q->st[which]);
    sqlite3_clear_bindings(q->st[which]);
    return q->st[which];
}

int evs__sq_done(evs_store *s, sqlite3_stmt *st, const char *what)
{
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : evs__sq_err(s, rc, what);
}

/* Sets PRAGMA synchronous to `level` (1 NORMAL, 2 FULL) if it is not. */
static int set_sync(evs_store *s, int level)
{
    sq_store *q = evs__sq(s);
    int rc;

    if (q->sync_level == level)
        return 0;
    rc = sqlite3_exec(q->db,
                      level == 2 ? "PRAGMA synchronous=FULL"
                                 : "PRAGMA synchronous=NORMAL",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return evs__sq_err(s, rc, "PRAGMA synchronous");
    q->sync_level = level;
    return 0;
}

int evs__sq_begin(evs_store *s, int sync)
{
    int rc = set_sync(s, sync ? 2 : 1);

    if (rc == 0)
        rc = evs__sq_done(s, evs__sq_stmt(s, SQ_BEGIN_W), "BEGIN IMMEDIATE");
    return rc;
}

int evs__sq_end(evs_store *s, int rc)
{
    sq_store *q = evs__sq(s);

    if (rc == 0) {
        rc = evs__sq_done(s, evs__sq_stmt(s, SQ_COMMIT), "COMMIT");
        if (rc == 0)
            return 0;
    }
    /* A failed statement or commit: nothing of the transaction stays. */
    if (!sqlite3_get_autocommit(q->db))
        evs__sq_done(s, evs__sq_stmt(s, SQ_ROLLBACK), "ROLLBACK");
    return rc;
}

int evs__sq_exec_get(evs_store *s, const char *id, size_t id_len, int64_t *rid,
                     uint64_t *last_seq, uint64_t *bytes, int64_t *req_gen)
{
    sqlite3_stmt *st = evs__sq_stmt(s, SQ_EXEC_GET);
    int rc;

    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, (int)id_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *rid = sqlite3_column_int64(st, 0);
        if (last_seq)
            *last_seq = (uint64_t)sqlite3_column_int64(st, 1);
        if (bytes)
            *bytes = (uint64_t)sqlite3_column_int64(st, 2);
        if (req_gen)
            *req_gen = sqlite3_column_int64(st, 3);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : evs__sq_err(s, rc, "execution");
    }
    sqlite3_reset(st);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Writers' locks                                                     */
/* ------------------------------------------------------------------ */

int evs__sq_lock_file(evs_store *s, int *fd)
{
    sq_store *q = evs__sq(s);

    *fd = open(q->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    return *fd >= 0 ? 0 : -errno;
}

/*
 * An open-file-description lock on byte `rid` of the lock file: held by
 * this descriptor alone (not by the process, so two handles in one
 * process exclude each other), released when it is closed or its process
 * dies.
 */
int evs__sq_lock_on(int fd, int64_t rid, int wait)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)rid;
    fl.l_len = 1;
    while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) != 0) {
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EACCES ? EVS_ELOCKED : -errno;
    }
    return 0;
}

int evs__sq_lock(evs_store *s, int64_t rid, int wait, int *fd)
{
    int rc = evs__sq_lock_file(s, fd);

    if (rc == 0 && (rc = evs__sq_lock_on(*fd, rid, wait)) != 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Opening                                                            */
/* ------------------------------------------------------------------ */

/*
 * fork() while another thread is inside SQLite would leave the child
 * with SQLite's global mutexes (its allocator's, its VFS's) held by a
 * thread it does not have, and the child's first SQLite call would wait
 * for ever. These handlers take them around every fork, in the order
 * SQLite nests them, so a child may open stores of its own.
 */
static const int fork_mutexes[] = {
    SQLITE_MUTEX_STATIC_MAIN, SQLITE_MUTEX_STATIC_VFS1, SQLITE_MUTEX_STATIC_LRU,
    SQLITE_MUTEX_STATIC_PMEM, SQLITE_MUTEX_STATIC_PRNG, SQLITE_MUTEX_STATIC_MEM,
};
#define N_FORK_MUTEXES (sizeof(fork_mutexes) / sizeof(fork_mutexes[0]))

static void fork_prepare(void)
{
    for (size_t i = 0; i < N_FORK_MUTEXES; i++)
        sqlite3_mutex_enter(sqlite3_mutex_alloc(fork_mutexes[i]));
}

static void fork_release(void)
{
    for (size_t i = N_FORK_MUTEXES; i-- > 0;)
        sqlite3_mutex_leave(sqlite3_mutex_alloc(fork_mutexes[i]));
}

static int fork_rc;

static void fork_setup(void)
{
    fork_rc =
        sqlite3_initialize() == SQLITE_OK &&
                pthread_atfork(fork_prepare, fork_release, fork_release) == 0
            ? 0
            : -ENOMEM;
}

/* Reads the schema version (0 for a new, empty database). */
static int schema_version(evs_store *s, int *v)
{
    sq_store *q = evs__sq(s);
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(q->db,
                            "SELECT count(*) FROM sqlite_master WHERE"
                            " type = 'table' AND name = 'evs_schema'",
                            -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_int(st, 0) == 0) {
        sqlite3_finalize(st);
        *v = 0;
        return 0;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(q->db, "SELECT version FROM evs_schema", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *v = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_CORRUPT; /* the table without its row */
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : evs__sq_err(s, rc, "reading the schema");
}

/* Brings the schema to EVS__SQ_SCHEMA, refusing a newer one. */
static int migrate(evs_store *s, const char *path)
{
    sq_store *q = evs__sq(s);
    char sql[64];
    int v = 0, rc;

    if ((rc = evs__sq_begin(s, 1)) != 0)
        return rc;
    rc = schema_version(s, &v);
    if (rc == 0 && v > EVS__SQ_SCHEMA) {
        rc = EVS_EFORMAT;
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "store sqlite:%s: schema version %d is newer than this "
                  "library's %d; open it with a newer evstore",
                  path, v, EVS__SQ_SCHEMA);
    }
    for (; rc == 0 && v < EVS__SQ_SCHEMA; v++) {
        int src = sqlite3_exec(q->db, migrations[v], NULL, NULL, NULL);
        snprintf(sql, sizeof(sql), "UPDATE evs_schema SET version = %d", v + 1);
        if (src == SQLITE_OK)
            src = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
        if (src != SQLITE_OK)
            rc = evs__sq_err(s, src, "migrating the schema");
        else if (v > 0)
            evs__logf(s, EVS_LOG_INFO, NULL,
                      "store sqlite:%s: schema migrated to version %d", path,
                      v + 1);
    }
    return evs__sq_end(s, rc);
}

/* Makes the directory that is to hold the database, one level as the
 * file backend makes a store's directory (0700), when it is missing. */
/* Syncs the directory that holds `path` (its first `len` bytes name
 * it; 0: the current one), so a name made in it lasts a power loss. */
static int sync_parent_of(const char *path, size_t len)
{
    char dir[4096];
    int fd, rc = 0;

    if (len >= sizeof(dir))
        return -ENAMETOOLONG;
    memcpy(dir, len ? path : ".", len ? len : 1);
    dir[len ? len : 1] = '\0';
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -errno;
    if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* The length of the directory part of path ("a/b/c" -> 3; none: 0). */
static size_t dir_len(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? (slash == path ? 1 : (size_t)(slash - path)) : 0;
}

/* Makes the database's directory (one level) when missing, and makes
 * its name durable in its own parent. */
static int make_parent(evs_store *s, const char *path)
{
    size_t n = dir_len(path);
    char *dir;
    int rc = 0;

    if (n <= 1)
        return 0;
    if (!(dir = evs__malloc(s->alloc, n + 1)))
        return -ENOMEM;
    memcpy(dir, path, n);
    dir[n] = '\0';
    if (mkdir(dir, 0700) == 0)
        rc = sync_parent_of(dir, dir_len(dir));
    evs__free(s->alloc, dir);
    return rc;
}

/* Makes the database file, private, before SQLite does (its -wal and
 * -shm files take the database's mode), and checks an existing one. */
static int check_file(evs_store *s, const char *path)
{
    struct stat sb;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT && s->opts.create) {
        int rc = make_parent(s, path);
        if (rc != 0)
            return rc;
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  0600);
        /* SQLite syncs the directory when it makes the WAL, not for a
         * database it did not make: the new name is synced here. */
        if (fd >= 0 && (rc = sync_parent_of(path, dir_len(path))) != 0) {
            close(fd);
            return rc;
        }
    }
    if (fd < 0)
        return errno == ELOOP ? -ELOOP : -errno;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return -errno;
    }
    close(fd);
    if (!S_ISREG(sb.st_mode))
        return S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
    if (sb.st_nlink != 1 || ((sb.st_mode & 022) && !s->opts.allow_unsafe_perms))
        return EVS_EUNSAFE;
    return 0;
}

static void sq_close(evs_store *s)
{
    sq_store *q = evs__sq(s);

    if (!q)
        return;
    for (size_t i = 0; i < SQ_NSTMT; i++)
        sqlite3_finalize(q->st[i]);
    for (size_t i = 0; i < sizeof(q->list_st) / sizeof(q->list_st[0]); i++)
        sqlite3_finalize(q->list_st[i]);
    sqlite3_close_v2(q->db);
    pthread_mutex_destroy(&q->mu);
    evs__free(s->alloc, q->lock_path);
    evs__free(s->alloc, q);
    s->be = NULL;
}

static int sq_open(evs_store *s, const char *path)
{
    static const char lock_sfx[] = "-evslock";
    size_t n = strlen(path);
    sq_store *q;
    int rc, src;

    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, fork_setup);
    if (fork_rc != 0)
        return fork_rc;
    if ((rc = check_file(s, path)) != 0)
        return rc;
    if (!(q = evs__calloc(s->alloc, sizeof(*q))))
        return -ENOMEM;
    pthread_mutex_init(&q->mu, NULL);
    s->be = q;
    if (!(q->lock_path = evs__malloc(s->alloc, n + sizeof(lock_sfx)))) {
        rc = -ENOMEM;
        goto fail;
    }
    memcpy(q->lock_path, path, n);
    q->path_len = (int)n;
    memcpy(q->lock_path + n, lock_sfx, sizeof(lock_sfx));
    src = sqlite3_open_v2(path, &q->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                              SQLITE_OPEN_NOFOLLOW,
                          NULL);
    if (src != SQLITE_OK) {
        rc = evs__sq_err(s, src, "open");
        goto fail;
    }
    sqlite3_extended_result_codes(q->db, 1);
    /* Other processes' writers are waited for, not failed on. */
    sqlite3_busy_timeout(q->db, 60000);
    src = sqlite3_exec(q->db,
                       "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=OFF;"
                       " PRAGMA synchronous=FULL",
                       NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = evs__sq_err(s, src, "setting WAL mode");
        goto fail;
    }
    q->sync_level = 2;
    if ((rc = migrate(s, path)) != 0)
        goto fail;
    return 0;
fail:
    sq_close(s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Executions                                                         */
/* ------------------------------------------------------------------ */

/* Inserts the lines buf[0..len) (complete lines) as sequences first...
 * of execution rid, at byte offset `off`. */
static int insert_lines(evs_store *s, int64_t rid, uint64_t first, uint64_t off,
                        const char *buf, size_t len)
{
    size_t pos = 0;
    int rc = 0;

    while (pos < len && rc == 0) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (buf + pos)) + 1 : len - pos;
        sqlite3_stmt *st = evs__sq_stmt(s, SQ_EVENT_ADD);

        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, rid);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)first++);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)(off + pos));
        sqlite3_bind_blob(st, 4, buf + pos, (int)ll, SQLITE_STATIC);
        rc = evs__sq_done(s, st, "inserting an event");
        pos += ll;
    }
    return rc;
}

int evs__sq_put_snapshot(evs_store *s, int64_t rid, const char *buf, size_t len)
{
    sqlite3_stmt *st = evs__sq_stmt(s, SQ_SNAPBODY_PUT);

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_STATIC);
    return evs__sq_done(s, st, "storing a snapshot");
}

int evs__sq_add_lines(evs_store *s, int64_t rid, uint64_t last, uint64_t bytes,
                      const char *buf, size_t len, size_t n)
{
    sqlite3_stmt *st;
    int rc = insert_lines(s, rid, last + 1, bytes, buf, len);

    if (rc != 0)
        return rc == -EEXIST ? EVS_ECONFLICT : rc;
    if (!(st = evs__sq_stmt(s, SQ_EXEC_END)))
        return -EIO;
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(last + n));
    sqlite3_bind_int64(st, 3, (sqlite3_int64)(bytes + len));
    sqlite3_bind_int64(st, 4, (sqlite3_int64)last);
    if ((rc = evs__sq_done(s, st, "ending the log")) != 0)
        return rc;
    /* The row guards the end: another writer moved it (none can while
     * the lock is held; this is the last line of defence). */
    return sqlite3_changes(evs__sq(s)->db) == 1 ? 0 : EVS_ECONFLICT;
}

/* EVS_SNAPSHOT_CACHE changes nothing here: the snapshot is written in
 * the transaction that makes the log, whose sync it shares. */
static int sq_exec_create(evs_store *s, const char *id, size_t id_len,
                          const evs_snapshot *snap, const evs_event *ev,
                          size_t n, unsigned flags)
{
    sq_store *q = evs__sq(s);
    char *buf, *sbuf;
    size_t len, slen;
    sqlite3_stmt *st;
    evs_snapshot sn;
    int64_t rid;
    int rc;

    (void)flags;
    /* Everything encoded before the transaction: a bad event or
     * snapshot leaves nothing behind. */
    if ((rc = evs__create_encode(s, id, id_len, snap, ev, n, &sn, &buf, &len,
                                 &sbuf, &slen)) != 0)
        return rc;
    pthread_mutex_lock(&q->mu);
    if ((rc = evs__sq_begin(s, SQ_SYNC_META(s))) == 0) {
        if (!(st = evs__sq_stmt(s, SQ_EXEC_ADD))) {
            rc = -EIO;
        } else {
            sqlite3_bind_text(st, 1, id, (int)id_len, SQLITE_STATIC);
            evs__sq_bind_snapshot(st, &sn, sbuf, slen);
            sqlite3_bind_int64(st, 10, (sqlite3_int64)n);
            sqlite3_bind_int64(st, 11, (sqlite3_int64)len);
            rc = evs__sq_done(s, st, "creating an execution");
        }
        rid = sqlite3_last_insert_rowid(q->db);
        if (rc == 0)
            rc = evs__sq_put_snapshot(s, rid, sbuf, slen);
        if (rc == 0 && n)
            rc = insert_lines(s, rid, 1, 0, buf, len);
        rc = evs__sq_end(s, rc);
    }
    pthread_mutex_unlock(&q->mu);
    evs__free(s->alloc, buf);
    evs__free(s->alloc, sbuf);
    return rc;
}

static int sq_exec_exists(evs_store *s, const char *id, size_t id_len)
{
    sq_store *q = evs__sq(s);
    int64_t rid;
    int rc;

    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, id, id_len, &rid, NULL, NULL, NULL);
    pthread_mutex_unlock(&q->mu);
    return rc == 0;
}

int evs__sq_delete_rows(evs_store *s, int64_t rid)
{
    static const int del[4] = {SQ_EVENTS_DEL, SQ_REQS_DEL, SQ_SNAPBODY_DEL,
                               SQ_EXEC_DEL};
    int rc = 0;

    for (int i = 0; i < 4 && rc == 0; i++) {
        sqlite3_stmt *st = evs__sq_stmt(s, del[i]);
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, rid);
        rc = evs__sq_done(s, st, "deleting an execution");
    }
    return rc;
}

/*
 * The first half of a delete: the writer's lock of execution `name`,
 * held until trash_commit, which deletes its rows. Nothing is moved out
 * of sight in between: the rows go in one transaction, durable when it
 * commits.
 */
static int sq_exec_trash(evs_store *s, const char *name, uint64_t expect_seq,
                         evs__trashed *t)
{
    sq_store *q = evs__sq(s);
    uint64_t last = 0;
    int64_t rid = 0;
    int fd = -1, rc;

    t->lock_fd = -1;
    t->dir_fd = -1;
    t->row = 0;
    t->name[0] = '\0';
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, name, strlen(name), &rid, NULL, NULL, NULL);
    pthread_mutex_unlock(&q->mu);
    if (rc != 0)
        return rc;
    if ((rc = evs__sq_lock(s, rid, 0, &fd)) != 0)
        return rc;
    /* Under the lock the log cannot grow; read its end again (the row
     * may have gone, or be another execution's of the same name). */
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_exec_get(s, name, strlen(name), &t->row, &last, NULL, NULL);
    pthread_mutex_unlock(&q->mu);
    if (rc == 0 && t->row != rid)
        rc = -ENOENT;
    if (rc == 0 && expect_seq != UINT64_MAX && last != expect_seq)
        rc = EVS_ESTALE;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    t->lock_fd = fd;
    snprintf(t->name, sizeof(t->name), "%s", name);
    return 0;
}

static int sq_trash_commit(evs_store *s, evs__trashed *t, size_t n)
{
    sq_store *q = evs__sq(s);
    int rc;

    if (n == 0)
        return 0;
    pthread_mutex_lock(&q->mu);
    rc = evs__sq_begin(s, 1);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = evs__sq_delete_rows(s, t[i].row);
    rc = evs__sq_end(s, rc);
    pthread_mutex_unlock(&q->mu);
    for (size_t i = 0; i < n; i++) {
        if (t[i].lock_fd >= 0)
            close(t[i].lock_fd);
        t[i].lock_fd = -1;
    }
    return rc;
}

static int sq_exec_delete(evs_store *s, const char *id, size_t id_len)
{
    char name[EVS_ID_MAX + 1];
    evs__trashed t;
    int rc;

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    if ((rc = sq_exec_trash(s, name, UINT64_MAX, &t)) != 0)
        return rc;
    return sq_trash_commit(s, &t, 1);
}

/* Deletes finished executions last updated before the cutoff, each
 * under its writer's lock (skipped when a writer has it). */
static int sq_exec_cleanup(evs_store *s, int64_t older_than_us, size_t *deleted)
{
    sq_store *q = evs__sq(s);
    evs__trashed *t = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st;
    int rc = 0, src;

    *deleted = 0;
    pthread_mutex_lock(&q->mu);
    if (!(st = evs__sq_stmt(s, SQ_FINAL_LIST))) {
        pthread_mutex_unlock(&q->mu);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, older_than_us);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 1);
        if ((rc = EVS__GROW(s->alloc, &t, &cap, n + 1)) != 0)
            break;
        t[n].row = sqlite3_column_int64(st, 0);
        snprintf(t[n].name, sizeof(t[n].name), "%s", id ? id : "");
        n++;
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = evs__sq_err(s, src, "listing finished executions");
    sqlite3_reset(st);
    pthread_mutex_unlock(&q->mu);
    for (size_t i = 0; i < n && rc == 0; i++) {
        evs__trashed one;
        int r = sq_exec_trash(s, t[i].name, UINT64_MAX, &one);
        if (r == EVS_ELOCKED || r == -ENOENT)
            continue; /* a writer has it, or it went meanwhile */
        if (r == 0 && one.row != t[i].row) {
            close(one.lock_fd); /* another execution of that name */
            continue;
        }
        if (r == 0)
            r = sq_trash_commit(s, &one, 1);
        if (r == 0)
            (*deleted)++;
        else
            rc = r;
    }
    evs__free(s->alloc, t);
    return rc;
}

const evs_backend_ops evs__sqlite_backend = {
    "sqlite",
    sq_open,
    sq_close,
    sq_exec_create,
    NULL, /* exec_create_open: the creation, then the open */
    sq_exec_exists,
    sq_exec_delete,
    evs__sq_exec_list,
    sq_exec_cleanup,
    evs__sq_snapshot_save,
    evs__sq_snapshot_load,
    evs__sq_log_open,
    evs__sq_log_close,
    evs__sq_log_append,
    evs__sq_log_append_snap,
    NULL, /* log_release: the lock is held until the close */
    evs__sq_log_sync,
    evs__sq_log_refresh,
    evs__sq_log_scan,
    evs__sq_cursor_open,
    evs__dbc_next,
    evs__dbc_offset,
    evs__dbc_close,
    evs__sq_request_post,
    evs__sq_request_list,
    evs__sq_request_remove,
    evs__db_request_dir,
    evs__sq_request_stamp,
    sq_exec_trash,
    sq_trash_commit,
    evs__sq_settings_load,
    evs__sq_settings_save,
    evs__sq_exec_usage,
    evs__db_archived_count,
    NULL, /* log_renew: a writer holds its lock while open */
    NULL, /* log_claim: no work queue; runners list and lock */
    NULL, /* watch_open, watch_read, watch_close: no notifications */
    NULL,
    NULL,
    evs__sq_sched_create,
    evs__sq_sched_open,
    evs__sq_sched_read,
    evs__sq_sched_write,
    evs__sq_sched_remove,
    evs__sq_sched_close,
    evs__sq_sched_list,
};
