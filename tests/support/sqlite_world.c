/*
 * sqlite_world.c: the workload of the SQLite power-loss and fault tests
 * (sqlite_world.h).
 */
#include "sqlite_world.h"

#include "sqlite_plvfs.h"
#include "testutil.h"

#include <criterion/criterion.h>

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every connection checkpoints once the WAL holds this many pages
 * (SQLite's default is 1,000), so the workload crosses checkpoints and
 * WAL restarts, not only the checkpoint of the last close. SQLite sets
 * its default after running the auto-extensions of a new connection, so
 * the extension installs an authorizer that sets it at every statement
 * prepared (and allows everything).
 */
static int small_checkpoints_auth(void *db, int action, const char *a,
                                  const char *b, const char *c, const char *d)
{
    (void)action;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    sqlite3_wal_autocheckpoint(db, 12);
    return SQLITE_OK;
}

static int small_checkpoints(sqlite3 *db, char **err,
                             const struct sqlite3_api_routines *api)
{
    (void)err;
    (void)api;
    return sqlite3_set_authorizer(db, small_checkpoints_auth, db);
}

void sqw_install(void)
{
    static int done;

    if (done)
        return;
    cr_assert_eq(spl_install(), 0, "registering the recording VFS");
    cr_assert_eq(sqlite3_auto_extension((void (*)(void))small_checkpoints),
                 SQLITE_OK);
    done = 1;
}

static sqw_act *begin(sqw_world *W, int kind, int exec)
{
    sqw_act *a;

    if (W->nacts == W->cap) {
        W->cap = W->cap ? W->cap * 2 : 64;
        W->acts = realloc(W->acts, W->cap * sizeof(*W->acts));
        cr_assert_not_null(W->acts);
    }
    a = &W->acts[W->nacts++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->exec = exec;
    a->req = -1;
    a->op0 = spl_nops();
    return a;
}

static void end(sqw_act *a, int rc)
{
    a->rc = rc;
    a->op1 = spl_nops();
}

static size_t pick_size(uint64_t *rs)
{
    switch (plc_rnd(rs) % 6) {
    case 0: return 400 + plc_rnd(rs) % 800;
    default: return plc_rnd(rs) % 120;
    }
}

evs_event *sqw_events(sqw_world *W, int e, uint64_t first, size_t n, int big)
{
    return plc_events(&W->rs, W->seed, e, first, n, big, pick_size);
}

/* Keeps the bytes the log holds for sequences [first, first+n) of exec
 * e, read back through `l` (reads write nothing that is recorded). */
void sqw_keep_lines(sqw_world *W, int e, evs_log *l, uint64_t first, size_t n,
                    size_t op0)
{
    int rc = plc_keep_lines(&W->ex[e].lines, l, first, n, op0);

    cr_assert_eq(rc, 0, "reading back an append: %s", evs_strerror(rc));
}

evs_snapshot sqw_snap_make(sqw_exm *x, int ver)
{
    evs_snapshot sn;

    memset(&sn, 0, sizeof(sn));
    sn.workflow_name = evs_span_cstr("sqlpl");
    sn.status = evs_span_cstr("running");
    sn.start_time_us = x->upd_base;
    sn.created_at_us = x->upd_base;
    sn.updated_at_us = x->upd_base + ver;
    sn.last_event_seq = x->last;
    sn.outputs = evs_span_cstr("{\"ok\":true}");
    return sn;
}

void sqw_open_store(sqw_world *W)
{
    evs_store_opts o;

    evs_store_opts_init(&o);
    o.durability = W->mode;
    o.sync_bytes = 1500; /* BATCH syncs every few appends */
    o.sync_interval_ms = 60000;
    cr_assert_eq(evs_store_open(W->loc, &o, &W->s), 0, "open %s", W->loc);
}

void sqw_create(sqw_world *W, int e, size_t n)
{
    sqw_exm *x = &W->ex[e];
    evs_event *ev = sqw_events(W, e, 1, n, 0);
    evs_snapshot sn;
    evs_log *l;
    sqw_act *a;
    int rc;

    x->upd_base = 1700000000000000LL + (int64_t)e * 1000000;
    x->last = n;
    x->nver = 1;
    sn = sqw_snap_make(x, 0);
    a = begin(W, SQW_CREATE, e);
    rc = evs_exec_create(W->s, x->id, strlen(x->id), &sn, ev, n);
    end(a, rc);
    plc_free_events(ev, n);
    cr_assert_eq(rc, 0, "create %s: %s", x->id, evs_strerror(rc));
    a->snap_synced = W->mode != EVS_SYNC_NONE;
    a->durable = W->mode != EVS_SYNC_NONE ? n : 0;
    a->updated = sn.updated_at_us;
    x->exists = 1;
    cr_assert_eq(evs_log_open(W->s, x->id, strlen(x->id), 0, &l, NULL, NULL),
                 0);
    sqw_keep_lines(W, e, l, 1, n, a->op0);
    evs_log_close(l);
}

void sqw_writer(sqw_world *W, int e)
{
    sqw_exm *x = &W->ex[e];
    int rc = evs_log_open(W->s, x->id, strlen(x->id), EVS_LOG_WRITE, &x->l,
                          NULL, NULL);
    cr_assert_eq(rc, 0, "writer of %s: %s", x->id, evs_strerror(rc));
}

void sqw_append(sqw_world *W, int e, size_t n, int big)
{
    sqw_exm *x = &W->ex[e];
    evs_event *ev = sqw_events(W, e, x->last + 1, n, big);
    sqw_act *a = begin(W, SQW_APPEND, e);
    int rc = evs_log_append(x->l, ev, n, x->last, NULL);

    end(a, rc);
    plc_free_events(ev, n);
    cr_assert_eq(rc, 0, "append to %s: %s", x->id, evs_strerror(rc));
    a->durable = evs_log_durable_seq(x->l);
    if (W->mode == EVS_SYNC_FULL)
        cr_assert_eq(a->durable, x->last + n,
                     "EVS_SYNC_FULL append acknowledged before durable");
    sqw_keep_lines(W, e, x->l, x->last + 1, n, a->op0);
    x->last += n;
}

void sqw_sync(sqw_world *W, int e)
{
    sqw_exm *x = &W->ex[e];
    sqw_act *a = begin(W, SQW_SYNC, e);
    int rc = evs_log_sync(x->l);

    end(a, rc);
    cr_assert_eq(rc, 0, "sync of %s: %s", x->id, evs_strerror(rc));
    a->durable = evs_log_durable_seq(x->l);
    cr_assert_eq(a->durable, x->last, "evs_log_sync left %s short", x->id);
}

void sqw_snap(sqw_world *W, int e)
{
    sqw_exm *x = &W->ex[e];
    int cache = plc_rnd(&W->rs) % 2;
    evs_snapshot sn;
    sqw_act *a;
    int rc;

    if (x->nver >= SQW_MAX_VER)
        return;
    sn = sqw_snap_make(x, x->nver++);
    a = begin(W, SQW_SNAP, e);
    rc = evs_snapshot_save_flags(W->s, x->id, strlen(x->id), &sn,
                                 cache ? EVS_SNAPSHOT_CACHE : 0);
    end(a, rc);
    cr_assert_eq(rc, 0, "snapshot of %s: %s", x->id, evs_strerror(rc));
    a->updated = sn.updated_at_us;
    a->snap_synced = !cache && W->mode != EVS_SYNC_NONE;
}

void sqw_post(sqw_world *W)
{
    sqw_exm *x = &W->ex[3];
    char body[64];
    sqw_act *a;
    int rc;

    if (W->nreq >= SQW_MAX_REQ)
        return;
    snprintf(body, sizeof(body), "{\"n\":%d}", W->nreq);
    a = begin(W, SQW_POST, 3);
    rc = evs_request_post(W->s, x->id, strlen(x->id), body, strlen(body),
                          W->req[W->nreq]);
    end(a, rc);
    cr_assert_eq(rc, 0, "post: %s", evs_strerror(rc));
    a->req = W->nreq++;
}

void sqw_remove(sqw_world *W)
{
    sqw_exm *x = &W->ex[3];
    int r;
    sqw_act *a;
    int rc;

    if (W->nreq == 0)
        return;
    r = (int)(plc_rnd(&W->rs) % (uint64_t)W->nreq);
    a = begin(W, SQW_REMOVE, 3);
    rc = evs_request_remove(W->s, x->id, strlen(x->id), W->req[r],
                            EVS_REQUEST_ID_LEN);
    end(a, rc);
    cr_assert_eq(rc, 0, "remove: %s", evs_strerror(rc));
    a->req = r;
}

void sqw_delete(sqw_world *W, int e)
{
    sqw_exm *x = &W->ex[e];
    sqw_act *a = begin(W, SQW_DELETE, e);
    int rc = evs_exec_delete(W->s, x->id, strlen(x->id));

    end(a, rc);
    cr_assert_eq(rc, 0, "delete %s: %s", x->id, evs_strerror(rc));
    x->exists = 0;
}

void sqw_close_writers(sqw_world *W)
{
    for (int e = 0; e < SQW_NEXEC; e++) {
        evs_log_close(W->ex[e].l);
        W->ex[e].l = NULL;
    }
}

/* The store closed and opened again: its last connection's close
 * checkpoints the WAL into the database and deletes the WAL. */
void sqw_reopen(sqw_world *W)
{
    sqw_close_writers(W);
    evs_store_close(W->s);
    W->s = NULL;
    sqw_open_store(W);
    sqw_writer(W, 0);
    sqw_writer(W, 1);
}

void sqw_init(sqw_world *W, evs_durability mode, uint64_t seed)
{
    memset(W, 0, sizeof(*W));
    W->mode = mode;
    W->seed = W->rs = seed;
    W->dir = tu_scratch_dir("EVS_POWERLOSS_TMP", "sqlpl-run");
    snprintf(W->db, sizeof(W->db), "%s/store.db", W->dir);
    snprintf(W->loc, sizeof(W->loc), "sqlite:%s", W->db);
    for (int e = 0; e < SQW_NEXEC; e++)
        snprintf(W->ex[e].id, sizeof(W->ex[e].id), "e%d-%" PRIx64, e,
                 seed & 0xffff);
}

void sqw_free(sqw_world *W)
{
    for (int e = 0; e < SQW_NEXEC; e++)
        plc_lines_free(&W->ex[e].lines);
    free(W->acts);
    tu_rmtree_free(W->dir);
}
