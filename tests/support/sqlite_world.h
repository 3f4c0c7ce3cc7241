/*
 * sqlite_world.h: the workload of the SQLite backend's power-loss and
 * fault tests (tests/RELIABILITY.md, section 1b): a store on a database
 * recorded by sqlite_plvfs.h, four executions, and what each call did
 * and was told (its range of recorded operations, what it promised
 * durable). Every helper asserts (Criterion) that its call succeeded.
 */
#ifndef EVS_TEST_SQLITE_WORLD_H
#define EVS_TEST_SQLITE_WORLD_H

#include "evstore.h"
#include "pl_common.h"

#include <stddef.h>
#include <stdint.h>

#define SQW_NEXEC 4 /* e0, e1 appended to; e2 created and deleted; e3 inbox */
#define SQW_MAX_VER 64
#define SQW_MAX_REQ 32

/* ------------------------------------------------------------------ */
/* What the workload did and was told                                 */
/* ------------------------------------------------------------------ */

enum {
    SQW_CREATE,
    SQW_APPEND,
    SQW_SYNC,
    SQW_SNAP,
    SQW_POST,
    SQW_REMOVE,
    SQW_DELETE
};

typedef struct sqw_act {
    int kind, exec, rc;
    size_t op0, op1;  /* its operations: [op0, op1) */
    uint64_t durable; /* events of exec promised durable once it returned */
    int64_t updated;  /* SQW_SNAP, SQW_CREATE: the snapshot's updated_at */
    int snap_synced;  /* SQW_SNAP, SQW_CREATE: a synced snapshot */
    int req;          /* SQW_POST, SQW_REMOVE: index in sqw_world.req */
} sqw_act;

typedef struct sqw_exm {
    char id[32];
    plc_lines lines; /* by sequence, from the first op of their call */
    uint64_t last;
    int exists; /* in the live run */
    evs_log *l;
    int64_t upd_base;
    int nver;
} sqw_exm;

typedef struct sqw_world {
    evs_durability mode;
    uint64_t seed, rs;
    char *dir;
    char db[4200], loc[4300];
    evs_store *s;
    sqw_exm ex[SQW_NEXEC];
    sqw_act *acts;
    size_t nacts, cap;
    char req[SQW_MAX_REQ][EVS_REQUEST_ID_LEN + 1];
    int nreq;
} sqw_world;

/* Registers the recording VFS (sqlite_plvfs.h) as the default one and
 * makes every new connection checkpoint its WAL at 12 pages; once per
 * process. */
void sqw_install(void);

/* A world in a new scratch directory (EVS_POWERLOSS_TMP), its database
 * DIR/store.db, executions e0..e3 named after the seed; sqw_free removes
 * the directory and frees what the world holds. */
void sqw_init(sqw_world *W, evs_durability mode, uint64_t seed);
void sqw_free(sqw_world *W);

/* n events of execution e from sequence `first` (3-9 KiB each when
 * big); free with plc_free_events. */
evs_event *sqw_events(sqw_world *W, int e, uint64_t first, size_t n, int big);
/* Keeps the bytes execution e's log holds for [first, first+n), read
 * back through `l`, as written by the call that began at op0. */
void sqw_keep_lines(sqw_world *W, int e, evs_log *l, uint64_t first, size_t n,
                    size_t op0);
/* Snapshot version `ver` of an execution (updated_at = upd_base + ver). */
evs_snapshot sqw_snap_make(sqw_exm *x, int ver);

/* The workload's calls, each recorded as an sqw_act. */
void sqw_open_store(sqw_world *W); /* W->mode, BATCH every 1,500 bytes */
void sqw_create(sqw_world *W, int e, size_t n);
void sqw_writer(sqw_world *W, int e);
void sqw_append(sqw_world *W, int e, size_t n, int big);
void sqw_sync(sqw_world *W, int e);
void sqw_snap(sqw_world *W, int e); /* half of them EVS_SNAPSHOT_CACHE */
void sqw_post(sqw_world *W);        /* to e3 */
void sqw_remove(sqw_world *W);      /* a request of e3, at random */
void sqw_delete(sqw_world *W, int e);
void sqw_close_writers(sqw_world *W);
/* The store closed and opened again (a checkpoint, the WAL deleted),
 * and the writers of e0 and e1 with it. */
void sqw_reopen(sqw_world *W);

#endif
