/*
 * sqlite_plvfs.h: a recording SQLite VFS for power-loss and full-disk
 * tests of the SQLite backend (tests/RELIABILITY.md, section 1b).
 *
 * spl_install registers a shim over SQLite's "unix" VFS as the default
 * VFS of the test process, so the store (which opens its database with
 * the default VFS) goes through it without any change to the library.
 * Every file passes through to "unix" untouched, except the files of
 * the one database being recorded (spl_record): its main file, -wal and
 * -journal. Of those, each write (with its bytes), truncate, sync,
 * creation and deletion is appended to an operation log, in the order
 * the process made them. The -shm file is not recorded: SQLite rebuilds
 * it from the WAL after a crash.
 *
 * Directory entries follow os_unix.c: a name created or deleted is
 * durable only after an fsync of the directory, which "unix" makes at
 * the first sync of a journal or WAL opened with SQLITE_OPEN_CREATE and
 * at a delete asked to sync its directory; the log records those as
 * SPL_DIRSYNC. Syncs are performed as well as recorded (the model, not
 * the real disk, decides what survives).
 *
 * Faults: spl_drop_syncs makes xSync succeed without doing or recording
 * anything (a mutant backend that never syncs, to show the checker
 * catches it); spl_disk_limit makes writes that would grow the recorded
 * files past a number of new bytes fail with SQLITE_FULL, as "unix" does
 * when write(2) fails with ENOSPC; spl_sync_enospc makes syncs fail as
 * when fsync(2) does; spl_fail fails the Nth write, truncate or sync
 * (and, if asked, every one after), for a sweep of each call in turn.
 *
 * Not thread-safe beyond one store used from one thread at a time.
 */
#ifndef EVS_TEST_SQLITE_PLVFS_H
#define EVS_TEST_SQLITE_PLVFS_H

#include <stddef.h>
#include <stdint.h>

/* The recorded files, by name. */
enum { SPL_DB = 0, SPL_WAL, SPL_JOURNAL, SPL_NFILES };

/* Kinds of recorded operation. */
enum {
    SPL_WRITE = 1, /* node, off, len, bytes */
    SPL_TRUNC,     /* node, len (the new size) */
    SPL_SYNC,      /* node */
    SPL_CREATE,    /* file (SPL_DB...), node: the name now names node */
    SPL_DELETE,    /* file, node: the name is gone */
    SPL_DIRSYNC    /* the directory's entries are durable */
};

typedef struct spl_op {
    int kind;
    int file;      /* SPL_DB, SPL_WAL or SPL_JOURNAL */
    uint32_t node; /* the file's identity (1...), like an inode */
    uint64_t off, len;
    size_t data; /* SPL_WRITE: offset of the bytes in the log's arena */
} spl_op;

/* Registers the shim as the default VFS (once per process). 0, or -1
 * when SQLite has no "unix" VFS or refuses. */
int spl_install(void);

/* Starts recording the files of database `db_path` (a path in a new,
 * empty directory, given as the store will give it), forgetting any
 * earlier log; faults are cleared. 0 or -1 (no memory, path too long). */
int spl_record(const char *db_path);

/* Stops recording: later calls pass through unrecorded. */
void spl_stop(void);

/* The log so far: operations [0, spl_nops()). */
size_t spl_nops(void);
const spl_op *spl_op_at(size_t i);
const unsigned char *spl_bytes(const spl_op *op);

/* The file names of the recorded database, for building images:
 * "store.db", "store.db-wal", "store.db-journal" when db_path ends in
 * "/store.db". */
const char *spl_file_name(int file);

/* Mutant: syncs do nothing and are not recorded, while on. */
void spl_drop_syncs(int on);

/* Full disk: once the recorded files have grown by `bytes` more bytes
 * than when this is called, a write that would grow them fails with
 * SQLITE_FULL and writes nothing. A negative value lifts the limit.
 * spl_full_count says how many writes were refused. */
void spl_disk_limit(int64_t bytes);
uint64_t spl_full_count(void);

/* The next `n` syncs of the recorded files fail as "unix" reports an
 * fsync(2) that failed with ENOSPC (a file system that allocates at
 * writeback): SQLITE_IOERR_FSYNC with errno ENOSPC, nothing synced. */
void spl_sync_enospc(int n);

/* Fault sweep: the recorded files' writes, truncates and syncs are
 * counted from spl_record (spl_calls); call number `at` (from 1) fails,
 * and every later one too when `forever`, without doing anything: a
 * write with SQLITE_FULL when `full`, else SQLITE_IOERR_WRITE; a
 * truncate with SQLITE_IOERR_TRUNCATE; a sync with SQLITE_IOERR_FSYNC.
 * at 0 fails nothing. */
void spl_fail(uint64_t at, int forever, int full);
uint64_t spl_calls(void);

#endif
