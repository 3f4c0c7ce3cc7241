/*
 * test_powerloss.c: simulated power loss (tests/RELIABILITY.md, section
 * 1). A workload of executions created, appended to (single and batched
 * appends), snapshotted, sent requests, reopened after a torn write,
 * deleted and cleaned up runs on a real directory through the recording
 * I/O table of powerloss_io.h. Then, for a crash after every recorded
 * operation, disks a power loss could leave are rebuilt from the
 * operation log (durable state alone, with each prefix of the unsynced
 * operations, with random 512-byte and 4 KiB blocks of them, with space
 * allocated but holding zeros or garbage, with unsynced directory
 * operations dropped), and each is recovered and checked against what
 * the workload was told before the crash.
 *
 * Environment: EVS_POWERLOSS_IMAGES sets how many distinct images to
 * check in all (default 6000, shared 60/20/20 between EVS_SYNC_FULL,
 * BATCH and NONE; the slow suite asks for 100000), EVS_POWERLOSS_TMP
 * where to write them (default /dev/shm),
 * EVS_POWERLOSS_SEED the first seed (default: from the clock; it is
 * printed), EVS_POWERLOSS_KEEP=1 keeps the first failing image,
 * EVS_POWERLOSS_PRINT sets how many violations are printed (default 25)
 * and EVS_POWERLOSS_TRACE=1 prints the actions and the operation log.
 */
#include <criterion/criterion.h>

#include "pl_common.h"
#include "powerloss_io.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Settings                                                           */
/* ------------------------------------------------------------------ */

#define DEFAULT_IMAGES 6000

/*
 * Images are written and removed by the thousand: on tmpfs when there is
 * one (EVS_POWERLOSS_TMP, else /dev/shm). On the ext4 disk of the machine
 * this was written on, the same run spent ten times longer, waiting on
 * I/O. The model, not the disk underneath, decides what survives.
 */
static char *scratch_dir(const char *tag)
{
    return tu_scratch_dir("EVS_POWERLOSS_TMP", tag);
}

/* ------------------------------------------------------------------ */
/* What the workload did and was told                                 */
/* ------------------------------------------------------------------ */

enum {
    A_CREATE,
    A_APPEND,
    A_TORN, /* an append whose write was torn; then a reopen */
    A_SYNC,
    A_REOPEN,
    A_SNAP,
    A_LIST,
    A_POST,
    A_REMOVE,
    A_DELETE,
    A_CLEANUP
};

typedef struct act {
    int kind, exec, weak, rc;
    size_t op0, op1;  /* its operations: [op0, op1) */
    uint64_t durable; /* events promised durable once it returned */
    int ver;          /* A_CREATE, A_SNAP: snapshot version */
    int snap_weak;    /* A_CREATE: its snapshot was not synced
                       * (EVS_SNAPSHOT_CACHE); the rest was */
    unsigned deleted; /* A_DELETE, A_CLEANUP: executions it removed */
    int req;          /* A_POST, A_REMOVE */
} act;

typedef struct snapver {
    int64_t updated; /* identifies the version */
    uint64_t last_seq;
    const char *status;
} snapver;

#define MAX_EXEC 8
#define MAX_VER 64
#define MAX_REQ 16

typedef struct exm {
    char id[32];
    int weak_create; /* created by a store in EVS_SYNC_NONE */
    uint64_t n_initial;
    plc_lines lines; /* by sequence, from the start of the append */
    snapver ver[MAX_VER];
    int nver;
    uint64_t last; /* while the workload runs */
    evs_log *l;
    int64_t upd_base;
} exm;

typedef struct reqm {
    int exec;
    char body[64];
    char id[EVS_REQUEST_ID_LEN + 1];
} reqm;

#define MAX_KINDS 32

typedef struct tally {
    size_t rounds, ops, crash_points, images, distinct;
    size_t execs, events, lost, invalid, violations;
    size_t cut, refused, snap_ok, snap_stale, snap_weak_fail, half_created;
    size_t listed, listed_from_index;
    const char *kind[MAX_KINDS]; /* violations by message */
    size_t kind_n[MAX_KINDS];
} tally;

static void note_kind(tally *T, const char *fmt)
{
    for (int i = 0; i < MAX_KINDS; i++) {
        if (!T->kind[i])
            T->kind[i] = fmt;
        if (T->kind[i] == fmt) {
            T->kind_n[i]++;
            return;
        }
    }
}

typedef struct world {
    const char *name;
    evs_durability mode;
    evs_recovery_mode recovery;
    uint64_t seed;
    pl_rec *rec;
    char *dir;
    evs_store *s, *s_full; /* s_full: a second, EVS_SYNC_FULL handle */
    exm ex[MAX_EXEC];
    int nex;
    act *acts;
    size_t nacts, acap;
    reqm req[MAX_REQ];
    int nreq;
    uint64_t rs;
    int setup_failed;
    char setup_err[256];
} world;

/* ------------------------------------------------------------------ */
/* The workload                                                       */
/* ------------------------------------------------------------------ */

static act *begin(world *W, int kind, int exec, int weak)
{
    act *a;

    if (W->nacts == W->acap) {
        W->acap = W->acap ? W->acap * 2 : 64;
        W->acts = realloc(W->acts, W->acap * sizeof(*W->acts));
        cr_assert_not_null(W->acts);
    }
    a = &W->acts[W->nacts++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->exec = exec;
    a->weak = weak;
    a->req = -1;
    a->op0 = pl_rec_nops(W->rec);
    return a;
}

static void end(world *W, act *a, int rc)
{
    a->rc = rc;
    a->op1 = pl_rec_nops(W->rec);
}

static void setup_fail(world *W, const char *what, int rc)
{
    if (!W->setup_failed)
        snprintf(W->setup_err, sizeof(W->setup_err), "%s: %s", what,
                 evs_strerror(rc));
    W->setup_failed = 1;
}

static size_t pick_size(uint64_t *rs)
{
    switch (plc_rnd(rs) % 8) {
    case 0: return 3000 + plc_rnd(rs) % 6000; /* spans 4 KiB blocks */
    case 1:
    case 2: return 400 + plc_rnd(rs) % 800; /* spans 512-byte blocks */
    default: return plc_rnd(rs) % 120;
    }
}

/* Builds n events for exec e from sequence `first`; frees with
 * plc_free_events. */
static evs_event *make_events(world *W, int e, uint64_t first, size_t n,
                              int big)
{
    return plc_events(&W->rs, W->seed, e, first, n, big, pick_size);
}

/* Keeps the bytes the log holds for sequences [first, first+n) of exec
 * e, read back through a cursor of `l`. */
static void keep_lines(world *W, int e, evs_log *l, uint64_t first, size_t n,
                       size_t op0)
{
    int rc = plc_keep_lines(&W->ex[e].lines, l, first, n, op0);

    if (rc != 0)
        setup_fail(W, "reading back an append", rc);
}

static evs_snapshot make_snap(exm *x, int ver, const char *status)
{
    evs_snapshot sn;

    memset(&sn, 0, sizeof(sn));
    sn.workflow_name = evs_span_cstr("powerloss");
    sn.status = evs_span_cstr(status);
    sn.start_time_us = x->upd_base;
    sn.created_at_us = x->upd_base;
    sn.updated_at_us = x->upd_base + ver;
    sn.last_event_seq = x->last;
    sn.outputs = evs_span_cstr("{\"ok\":true}");
    return sn;
}

static void note_version(exm *x, int ver, const evs_snapshot *sn)
{
    if (ver < MAX_VER) {
        x->ver[ver].updated = sn->updated_at_us;
        x->ver[ver].last_seq = sn->last_event_seq;
        x->ver[ver].status = sn->status.ptr;
        if (ver >= x->nver)
            x->nver = ver + 1;
    }
}

static evs_store *store_for(world *W, int strong)
{
    return strong && W->s_full ? W->s_full : W->s;
}

static int is_weak(world *W, evs_store *s)
{
    return s == W->s && W->mode == EVS_SYNC_NONE;
}

static void w_create(world *W, int e, size_t n, int strong, int64_t upd)
{
    exm *x = &W->ex[e];
    evs_store *s = store_for(W, strong);
    evs_event *ev = make_events(W, e, 1, n, 0);
    evs_snapshot sn;
    evs_log *l;
    act *a;
    int rc;

    x->upd_base = upd;
    x->last = n;
    x->n_initial = n;
    x->weak_create = is_weak(W, s);
    sn = make_snap(x, 0, "running");
    a = begin(W, A_CREATE, e, x->weak_create);
    a->ver = 0;
    a->durable = n;
    /* Half the creations write their snapshot as a cache of the log
     * (what the orchestrator does): the execution and its events are
     * as durable as ever, its snapshot may be lost or damaged. */
    a->snap_weak = !x->weak_create && plc_rnd(&W->rs) % 2;
    rc = evs_exec_create_flags(s, x->id, strlen(x->id), &sn, ev, n,
                               a->snap_weak ? EVS_SNAPSHOT_CACHE : 0);
    end(W, a, rc);
    plc_free_events(ev, n);
    if (rc != 0) {
        setup_fail(W, "evs_exec_create", rc);
        return;
    }
    note_version(x, 0, &sn);
    x->nver = 1;
    if (n) {
        rc = evs_log_open(s, x->id, strlen(x->id), 0, &l, NULL, NULL);
        if (rc != 0) {
            setup_fail(W, "evs_log_open", rc);
            return;
        }
        keep_lines(W, e, l, 1, n, a->op0);
        evs_log_close(l);
    }
}

static void w_open(world *W, int e)
{
    exm *x = &W->ex[e];
    int rc = evs_log_open(W->s, x->id, strlen(x->id), EVS_LOG_WRITE, &x->l,
                          NULL, NULL);
    if (rc != 0)
        setup_fail(W, "evs_log_open for writing", rc);
}

static void w_append(world *W, int e, size_t n, int big)
{
    exm *x = &W->ex[e];
    evs_event *ev = make_events(W, e, x->last + 1, n, big);
    act *a = begin(W, A_APPEND, e, W->mode != EVS_SYNC_FULL);
    int rc = evs_log_append(x->l, ev, n, x->last, NULL);

    end(W, a, rc);
    plc_free_events(ev, n);
    if (rc != 0) {
        setup_fail(W, "evs_log_append", rc);
        return;
    }
    a->durable = evs_log_durable_seq(x->l);
    if (W->mode == EVS_SYNC_FULL && a->durable != x->last + n)
        setup_fail(W, "EVS_SYNC_FULL append acknowledged before durable", 0);
    keep_lines(W, e, x->l, x->last + 1, n, a->op0);
    x->last += n;
}

static void w_sync(world *W, int e)
{
    exm *x = &W->ex[e];
    act *a = begin(W, A_SYNC, e, 0);
    int rc = evs_log_sync(x->l);

    end(W, a, rc);
    if (rc != 0)
        setup_fail(W, "evs_log_sync", rc);
    a->durable = evs_log_durable_seq(x->l);
}

/* Closes and reopens the writer. In EVS_SYNC_BATCH close syncs; in
 * EVS_SYNC_NONE nothing is promised by it. */
static void w_reopen(world *W, int e)
{
    exm *x = &W->ex[e];
    act *a = begin(W, A_REOPEN, e, W->mode == EVS_SYNC_NONE);
    uint64_t last = x->last;
    int rc;

    evs_log_close(x->l);
    x->l = NULL;
    rc = evs_log_open(W->s, x->id, strlen(x->id), EVS_LOG_WRITE, &x->l, NULL,
                      NULL);
    end(W, a, rc);
    if (rc != 0) {
        setup_fail(W, "reopening a writer", rc);
        return;
    }
    a->durable = W->mode == EVS_SYNC_NONE ? 0 : last;
}

/* An append whose write is torn (half of it reaches the file) and whose
 * clean-up truncate fails too, so the torn bytes stay; then a reopen,
 * whose recovery cuts them back. */
static void w_torn(world *W, int e)
{
    exm *x = &W->ex[e];
    size_t n = 1 + plc_rnd(&W->rs) % 3;
    evs_event *ev = make_events(W, e, x->last + 1, n, 0);
    evs_recovery_info ri;
    act *a = begin(W, A_TORN, e, 0);
    int rc;

    pl_rec_tear(W->rec, 1, 1);
    rc = evs_log_append(x->l, ev, n, x->last, NULL);
    pl_rec_tear(W->rec, 0, 0);
    plc_free_events(ev, n);
    if (rc == 0) {
        end(W, a, rc);
        setup_fail(W, "a torn append was acknowledged", 0);
        return;
    }
    evs_log_close(x->l);
    x->l = NULL;
    memset(&ri, 0, sizeof(ri));
    rc = evs_log_open(W->s, x->id, strlen(x->id), EVS_LOG_WRITE, &x->l, &ri,
                      NULL);
    end(W, a, rc);
    if (rc != 0) {
        setup_fail(W, "reopening after a torn append", rc);
        return;
    }
    if (ri.last_seq != x->last || ri.cut_bytes == 0)
        setup_fail(W, "recovery after a torn append did not cut it", 0);
    a->rc = -1; /* the append itself failed */
    a->durable = W->mode == EVS_SYNC_FULL ? x->last : 0;
}

static void w_snap(world *W, int e, const char *status)
{
    exm *x = &W->ex[e];
    int ver = x->nver;
    evs_snapshot sn;
    act *a;
    int rc;

    if (ver >= MAX_VER)
        return;
    unsigned flags = plc_rnd(&W->rs) % 2 ? EVS_SNAPSHOT_CACHE : 0;

    sn = make_snap(x, ver, status);
    /* A cache's save is as weak as any save in EVS_SYNC_NONE. */
    a = begin(W, A_SNAP, e, W->mode == EVS_SYNC_NONE || flags);
    a->ver = ver;
    rc = evs_snapshot_save_flags(W->s, x->id, strlen(x->id), &sn, flags);
    end(W, a, rc);
    if (rc != 0) {
        setup_fail(W, "evs_snapshot_save", rc);
        return;
    }
    note_version(x, ver, &sn);
}

static void w_list(world *W)
{
    evs_exec_listing L;
    act *a = begin(W, A_LIST, -1, 0);
    int rc = evs_exec_list(W->s, NULL, &L);

    end(W, a, rc);
    if (rc != 0)
        setup_fail(W, "evs_exec_list", rc);
    else
        evs_exec_list_free(&L);
}

static void w_post(world *W, int e)
{
    reqm *q;
    act *a;
    int rc;

    if (W->nreq >= MAX_REQ)
        return;
    q = &W->req[W->nreq];
    q->exec = e;
    snprintf(q->body, sizeof(q->body), "{\"kind\":\"pause\",\"n\":%d}",
             W->nreq);
    a = begin(W, A_POST, e, 0);
    a->req = W->nreq;
    rc = evs_request_post(W->s, W->ex[e].id, strlen(W->ex[e].id), q->body,
                          strlen(q->body), q->id);
    end(W, a, rc);
    if (rc != 0) {
        setup_fail(W, "evs_request_post", rc);
        return;
    }
    W->nreq++;
}

static void w_remove(world *W, int r)
{
    reqm *q = &W->req[r];
    act *a = begin(W, A_REMOVE, q->exec, 0);
    int rc;

    a->req = r;
    rc = evs_request_remove(W->s, W->ex[q->exec].id, strlen(W->ex[q->exec].id),
                            q->id, EVS_REQUEST_ID_LEN);
    end(W, a, rc);
    if (rc != 0)
        setup_fail(W, "evs_request_remove", rc);
}

static void w_delete(world *W, int e)
{
    exm *x = &W->ex[e];
    act *a = begin(W, A_DELETE, e, 0);
    int rc = evs_exec_delete(W->s, x->id, strlen(x->id));

    end(W, a, rc);
    a->deleted = 1u << e;
    if (rc != 0)
        setup_fail(W, "evs_exec_delete", rc);
}

static void w_cleanup(world *W, int64_t older)
{
    act *a = begin(W, A_CLEANUP, -1, 0);
    size_t n = 0;
    int rc = evs_exec_cleanup(W->s, older, &n);

    end(W, a, rc);
    if (rc != 0)
        setup_fail(W, "evs_exec_cleanup", rc);
    for (int e = 0; e < W->nex; e++)
        if (W->ex[e].nver &&
            !evs_exec_exists(W->s, W->ex[e].id, strlen(W->ex[e].id)))
            a->deleted |= 1u << e;
    /* Only what this call removed: not what was deleted before. */
    for (size_t i = 0; i + 1 < W->nacts; i++)
        if (W->acts[i].kind == A_DELETE)
            a->deleted &= ~W->acts[i].deleted;
}

static evs_store *open_store(world *W, evs_durability mode)
{
    evs_store_opts o;
    evs_store *s = NULL;
    int rc;

    evs_store_opts_init(&o);
    o.durability = mode;
    o.sync_bytes = 1500;
    o.sync_interval_ms = 1u << 30; /* syncs come from sync_bytes only */
    o.io = pl_rec_io(W->rec);
    rc = evs_store_open(W->dir, &o, &s);
    if (rc != 0)
        setup_fail(W, "evs_store_open", rc);
    return s;
}

/*
 * The workload. Executions: 0 and 1 are appended to throughout, 2 is
 * created, finished and cleaned up, 3 is created and deleted, 4 receives
 * requests. In EVS_SYNC_NONE, 0 and 4 are created through a second,
 * EVS_SYNC_FULL handle so that evs_log_sync's promise can be checked on
 * an execution whose creation was durable; 1 is created in
 * EVS_SYNC_NONE.
 */
static void run_workload(world *W)
{
    const int64_t recent = 1900000000000000LL, old = 1000000000000000LL;
    int steps, torn = 0;

    W->dir = scratch_dir("plrec");
    cr_assert_not_null(W->dir);
    W->rec = pl_rec_new(W->dir);
    cr_assert_not_null(W->rec);
    W->rs = W->seed;
    W->nex = 5;
    for (int e = 0; e < W->nex; e++)
        snprintf(W->ex[e].id, sizeof(W->ex[e].id), "x%d-%04x", e,
                 (unsigned)(W->seed & 0xffff));
    W->s = open_store(W, W->mode);
    if (W->mode == EVS_SYNC_NONE)
        W->s_full = open_store(W, EVS_SYNC_FULL);
    if (W->setup_failed)
        return;

    w_create(W, 0, 1, 1, recent + 0 * 1000);
    w_create(W, 1, 3, 0, recent + 1 * 1000);
    w_create(W, 4, 1, 1, recent + 4 * 1000);
    w_open(W, 0);
    w_open(W, 1);
    steps = 22 + (int)(plc_rnd(&W->rs) % 10);
    for (int i = 0; i < steps && !W->setup_failed; i++) {
        int e = (int)(plc_rnd(&W->rs) % 2), r = (int)(plc_rnd(&W->rs) % 100);
        if (r < 35)
            w_append(W, e, 1, 0);
        else if (r < 55)
            w_append(W, e, 2 + plc_rnd(&W->rs) % 3, 0);
        else if (r < 62)
            w_append(W, e, 1 + plc_rnd(&W->rs) % 2, 1);
        else if (r < 72)
            w_snap(W, e, "running");
        else if (r < 76)
            w_list(W);
        else if (r < 82 && W->mode != EVS_SYNC_FULL)
            w_sync(W, e);
        else if (r < 85)
            w_reopen(W, e);
        else if (r < 90 && W->mode == EVS_SYNC_FULL && torn < 2) {
            w_torn(W, e);
            torn++;
        } else if (r < 95)
            w_post(W, 4);
        else if (W->nreq > 0)
            w_remove(W, (int)(plc_rnd(&W->rs) % (uint64_t)W->nreq));
        else
            w_append(W, e, 1, 0);
    }
    if (W->mode != EVS_SYNC_FULL) {
        w_sync(W, 0);
        w_sync(W, 1);
    }
    /* Execution 2: created, finished long ago, then cleaned up. */
    w_create(W, 2, 2, 1, old);
    w_open(W, 2);
    w_append(W, 2, 2, 0);
    w_snap(W, 2, "completed");
    evs_log_close(W->ex[2].l);
    W->ex[2].l = NULL;
    /* Execution 3: created and deleted. */
    w_create(W, 3, 1, 1, recent + 3 * 1000);
    w_delete(W, 3);
    w_cleanup(W, (old + recent) / 2);
    w_append(W, 0, 1, 0);
    w_list(W);
    for (int e = 0; e < W->nex; e++) {
        evs_log_close(W->ex[e].l);
        W->ex[e].l = NULL;
    }
    if (pl_rec_failed(W->rec))
        setup_fail(W, pl_rec_error(W->rec), 0);
}

/* EVS_POWERLOSS_TRACE=1: prints the actions and the operation log, to
 * read a violation against. */
static void trace_world(const world *W)
{
    static const char *an[] = {"create", "append",   "torn+reopen", "sync",
                               "reopen", "snapshot", "list",        "post",
                               "remove", "delete",   "cleanup"};
    static const char *on[] = {"?",      "write", "trunc",  "sync",
                               "create", "mkdir", "rename", "unlink"};

    if (!getenv("EVS_POWERLOSS_TRACE"))
        return;
    for (size_t i = 0; i < W->nacts; i++) {
        const act *a = &W->acts[i];
        fprintf(stderr,
                "action %zu: %s exec %d ops [%zu,%zu) rc %d "
                "durable %" PRIu64 " ver %d\n",
                i, an[a->kind], a->exec, a->op0, a->op1, a->rc, a->durable,
                a->ver);
    }
    for (size_t i = 0; i < pl_rec_nops(W->rec); i++) {
        const pl_op *op = pl_rec_op(W->rec, i);
        fprintf(stderr,
                "op %zu: %s node %u dir %u %s%s%s off %" PRIu64 " len %" PRIu64
                "\n",
                i, on[op->kind], op->node, op->dir, op->name ? op->name : "",
                op->name2 ? " -> " : "", op->name2 ? op->name2 : "", op->off,
                op->len);
    }
}

static void free_world(world *W)
{
    for (int e = 0; e < W->nex; e++) {
        evs_log_close(W->ex[e].l);
        plc_lines_free(&W->ex[e].lines);
    }
    evs_store_close(W->s);
    evs_store_close(W->s_full);
    pl_rec_free(W->rec);
    tu_rmtree_free(W->dir);
    free(W->acts);
    memset(W, 0, sizeof(*W));
}

/* ------------------------------------------------------------------ */
/* What must hold after a crash after operation k                     */
/* ------------------------------------------------------------------ */

typedef struct expect {
    int may_exist, must_exist;
    uint64_t required; /* sequences 1..required, byte for byte */
    int allowed[MAX_VER];
    int snap_may_fail; /* damaged or missing: weak writes */
    int stale_ok;      /* ahead of the log: appends lost in a weak mode */
    int weak;          /* whole-ness is not promised */
} expect;

static void expect_at(const world *W, int e, size_t k, expect *x)
{
    int created = 0, create_started = 0, del_started = 0, del_done = 0;
    int strong_ver = -1, strong_ver_op = -1;

    memset(x, 0, sizeof(*x));
    for (size_t i = 0; i < W->nacts; i++) {
        const act *a = &W->acts[i];
        int done = a->op1 <= k, started = a->op0 < k;
        if ((a->kind == A_DELETE || a->kind == A_CLEANUP) &&
            (a->deleted & (1u << e))) {
            del_started |= started;
            del_done |= done;
            continue;
        }
        if (a->exec != e)
            continue;
        switch (a->kind) {
        case A_CREATE:
            create_started = started;
            created = done;
            if (done && !a->weak && !a->snap_weak) {
                strong_ver = 0;
                strong_ver_op = (int)i;
            }
            if (started && a->snap_weak)
                x->snap_may_fail = 1;
            break;
        case A_APPEND:
        case A_SYNC:
        case A_REOPEN:
        case A_TORN:
            if (done && a->durable > x->required)
                x->required = a->durable;
            break;
        case A_SNAP:
            if (done && a->rc == 0 && !a->weak) {
                strong_ver = a->ver;
                strong_ver_op = (int)i;
            }
            if (started && a->weak)
                x->snap_may_fail = 1;
            break;
        }
    }
    x->weak = W->ex[e].weak_create;
    x->may_exist = create_started && !del_done;
    x->must_exist = created && !x->weak && !del_started;
    if (!created && !x->weak)
        x->required = W->ex[e].n_initial; /* whole, if there at all */
    if (x->weak) {
        x->required = 0;
        x->snap_may_fail = 1;
    }
    /* Snapshots: the last one acknowledged by a synced save, and any
     * save started after it. */
    for (size_t i = 0; i < W->nacts; i++) {
        const act *a = &W->acts[i];
        if (a->exec != e || (a->kind != A_SNAP && a->kind != A_CREATE) ||
            a->op0 >= k || a->ver >= MAX_VER)
            continue;
        if ((int)i >= strong_ver_op || strong_ver < 0)
            x->allowed[a->ver] = 1;
    }
    x->stale_ok = W->mode != EVS_SYNC_FULL;
}

/* ------------------------------------------------------------------ */
/* Checking one image                                                 */
/* ------------------------------------------------------------------ */

typedef struct checker {
    world *W;
    tally *T;
    size_t k;
    const char *kind;
    int garbage;         /* the image has garbage where writes were lost */
    const evs_io *io;    /* the image's I/O table */
    int printed;
    int kept;
    int failed_here;
} checker;

/* A tu_fail_fn: ctx is the checker. */
static void vviolation(void *ctx, const char *exec, const char *fmt, va_list ap)
{
    checker *C = ctx;
    char msg[512];

    C->T->violations++;
    C->failed_here = 1;
    note_kind(C->T, fmt);
    if (C->printed >= tu_env_long("EVS_POWERLOSS_PRINT", 25))
        return;
    C->printed++;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    fprintf(stderr,
            "powerloss VIOLATION [%s seed=0x%" PRIx64 " crash after op %zu "
            "of %zu, image %s, execution %s]: %s\n",
            C->W->name, C->W->seed, C->k, pl_rec_nops(C->W->rec), C->kind,
            exec ? exec : "-", msg);
}

static void violation(checker *C, const char *exec, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void violation(checker *C, const char *exec, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vviolation(C, exec, fmt, ap);
    va_end(ap);
}

static int find_ver(const exm *x, int64_t updated)
{
    for (int v = 0; v < x->nver; v++)
        if (x->ver[v].updated == updated)
            return v;
    return -1;
}

/* How read_all reads. */
enum {
    RD_WRITER = 1,  /* after recovery: counts events and losses */
    RD_TOLERANT = 2 /* a reader before point-in-time recovery: it may
                        stop at damage (EVS_ECORRUPT), never read past */
};

/* Reads every event of an open log and compares it with what was
 * written. Returns the number of events read, or -1 after an error. */
static long read_all(checker *C, int e, evs_log *l, const expect *x, int how)
{
    const exm *m = &C->W->ex[e];
    evs_cursor *c = NULL;
    evs_error_info info;
    evs_event ev;
    evs_span raw;
    long n = 0;
    int rc;

    if (evs_log_last_seq(l) == 0)
        return 0;
    rc = evs_cursor_open(l, 1, 0, &c, &info);
    if (rc != 0) {
        if (!(how & RD_TOLERANT) || rc != EVS_ECORRUPT)
            violation(C, m->id, "cursor open: %s (%s)", evs_err_name(rc),
                      info.msg);
        return -1;
    }
    while ((rc = evs_cursor_next(c, &ev, &raw, &info)) == 1) {
        uint64_t seq = ev.sequence;
        const plc_line *ln = seq < m->lines.n ? &m->lines.v[seq] : NULL;
        n++;
        if (how & RD_WRITER)
            C->T->events++;
        if (!ln || !ln->raw || ln->op0 >= C->k || ln->len != raw.len ||
            memcmp(ln->raw, raw.ptr, raw.len) != 0) {
            C->T->invalid++;
            if ((how & RD_WRITER) && seq <= x->required)
                C->T->lost++;
            violation(C, m->id,
                      "sequence %" PRIu64 " reads back as bytes that no "
                      "append started before the crash wrote",
                      seq);
        }
    }
    evs_cursor_close(c);
    if (rc != 0) {
        if (!(how & RD_TOLERANT) || rc != EVS_ECORRUPT)
            violation(C, m->id, "cursor stopped: %s (%s)", evs_err_name(rc),
                      info.msg);
        return -1;
    }
    return n;
}

typedef struct listed {
    int found;
    evs_exec_info info;
} listed;

static void check_snapshot(checker *C, evs_store *s, int e, const expect *x,
                           uint64_t last, const listed *li)
{
    const exm *m = &C->W->ex[e];
    evs_snapshot *sn = NULL;
    evs_error_info info;
    int rc, v;

    rc = evs_snapshot_load(s, m->id, strlen(m->id), &sn, &info);
    if (rc == 0)
        C->T->snap_ok++;
    else if (rc == EVS_ESTALE)
        C->T->snap_stale++;
    if (rc == 0) {
        v = find_ver(m, sn->updated_at_us);
        if (v < 0 || !x->allowed[v])
            violation(C, m->id,
                      "snapshot version %d is neither the last synced one "
                      "nor one being written",
                      v);
        else if (sn->last_event_seq != m->ver[v].last_seq ||
                 sn->last_event_seq > last)
            violation(C, m->id,
                      "snapshot version %d has last_event_seq "
                      "%" PRIu64,
                      v, sn->last_event_seq);
        if (li->found && (!li->info.snapshot_ok ||
                          li->info.updated_at_us != sn->updated_at_us ||
                          li->info.last_event_seq != sn->last_event_seq))
            violation(C, m->id,
                      "listing shows another snapshot than the one that "
                      "loads (listed ok=%d updated=%" PRId64 ")",
                      li->info.snapshot_ok, li->info.updated_at_us);
        evs_snapshot_free(sn);
        return;
    }
    if (rc == EVS_ESTALE && x->stale_ok)
        return;
    if (x->snap_may_fail && (rc == EVS_ECORRUPT || rc == EVS_EPARSE ||
                             rc == -ENOENT || rc == EVS_ESTALE)) {
        if (rc != EVS_ESTALE)
            C->T->snap_weak_fail++;
        return;
    }
    violation(C, m->id, "snapshot does not load: %s (%s)", evs_err_name(rc),
              info.msg);
}

static void check_requests(checker *C, evs_store *s, int e)
{
    const world *W = C->W;
    const exm *m = &W->ex[e];
    evs_request_listing L;
    int rc, must[MAX_REQ] = {0}, seen[MAX_REQ] = {0};

    for (size_t i = 0; i < W->nacts; i++) {
        const act *a = &W->acts[i];
        if (a->exec != e || a->req < 0)
            continue;
        if (a->kind == A_POST && a->op1 <= C->k && a->rc == 0)
            must[a->req] = 1;
        if (a->kind == A_REMOVE && a->op0 < C->k)
            must[a->req] = 0;
    }
    memset(&L, 0, sizeof(L));
    rc = evs_request_list(s, m->id, strlen(m->id), &L);
    if (rc != 0) {
        violation(C, m->id, "evs_request_list: %s", evs_err_name(rc));
        evs_request_list_free(&L);
        return;
    }
    for (size_t i = 0; i < L.count; i++) {
        int r = -1;
        for (int q = 0; q < W->nreq; q++)
            if (W->req[q].exec == e &&
                strlen(W->req[q].body) == L.items[i].body.len &&
                memcmp(W->req[q].body, L.items[i].body.ptr,
                       L.items[i].body.len) == 0)
                r = q;
        if (r < 0) {
            violation(C, m->id, "a request nobody posted is listed");
            continue;
        }
        seen[r] = 1;
    }
    for (int q = 0; q < W->nreq; q++)
        if (must[q] && !seen[q])
            violation(C, m->id, "acknowledged request %d is lost", q);
    evs_request_list_free(&L);
}

/* A writer's open of execution id with point-in-time recovery, through
 * a second store on the image; *pit is closed by the caller. */
static int open_pit(checker *C, const char *dir, const char *id,
                    evs_store **pit, evs_log **l, evs_recovery_info *rec,
                    evs_error_info *info)
{
    evs_store_opts o;
    int rc;

    evs_store_opts_init(&o);
    o.recovery = EVS_RECOVER_POINT_IN_TIME;
    o.io = C->io;
    o.create = 0;
    rc = evs_store_open(dir, &o, pit);
    if (rc != 0)
        return rc;
    memset(rec, 0, sizeof(*rec));
    return evs_log_open(*pit, id, strlen(id), EVS_LOG_WRITE, l, rec, info);
}

static void check_exec(checker *C, evs_store *s, const char *dir, int e,
                       const listed *li)
{
    const world *W = C->W;
    const exm *m = &W->ex[e];
    const char *id = m->id;
    size_t idl = strlen(id);
    evs_recovery_info rec;
    evs_error_info info;
    evs_log *l = NULL, *rd = NULL;
    evs_store *pit = NULL;
    uint64_t last, rd_last = 0;
    char evid[64];
    expect x;
    long n;
    int rc, exists, rd_ok = 0;

    expect_at(W, e, C->k, &x);
    exists = evs_exec_exists(s, id, idl);
    if (!exists) {
        if (x.must_exist) {
            C->T->lost += x.required;
            violation(C, id,
                      "an acknowledged execution is gone "
                      "(%" PRIu64 " acknowledged events lost)",
                      x.required);
        }
        /* A directory without its log: under EVS_SYNC_NONE a power loss
         * may leave one (store.h, evs_exec_create). It is no execution:
         * it may still be listed from its snapshot, but it does not
         * exist, and creating the id again replaces it. Under the other
         * modes it must never happen. */
        if (li->found) {
            if (!x.weak) {
                violation(C, id,
                          "listed, but has no log (the directory of "
                          "a creation is there without its files)");
            } else {
                C->T->half_created++;
                rc = evs_exec_create(s, id, idl, NULL, NULL, 0);
                if (rc != 0)
                    violation(C, id,
                              "a creation's husk is not replaced by "
                              "a new creation: %s",
                              evs_err_name(rc));
            }
        }
        return;
    }
    C->T->execs++;
    if (!x.may_exist)
        violation(C, id,
                  "exists, but was never created or its deletion "
                  "was acknowledged");
    if (!li->found)
        violation(C, id, "exists but is not listed");

    /* A reader, before any writer repairs: it must take a torn tail for
     * not yet written and, in EVS_SYNC_FULL, see no damage. In the weak
     * modes it may meet damage (point-in-time recovery is for that),
     * but must never return an event that was not written. */
    rc = evs_log_open(s, id, idl, 0, &rd, NULL, &info);
    if (rc != 0) {
        if (W->recovery == EVS_RECOVER_TAIL || rc != EVS_ECORRUPT)
            violation(C, id, "reader open: %s (%s)", evs_err_name(rc),
                      info.msg);
    } else {
        rd_ok = 1;
        rd_last = evs_log_last_seq(rd);
        read_all(C, e, rd, &x,
                 W->recovery == EVS_RECOVER_TAIL ? 0 : RD_TOLERANT);
        evs_log_close(rd);
    }

    memset(&rec, 0, sizeof(rec));
    rc = evs_log_open(s, id, idl, EVS_LOG_WRITE, &l, &rec, &info);
    if (rc == EVS_ECORRUPT && C->garbage && rec.tail_damaged &&
        W->recovery == EVS_RECOVER_TAIL) {
        /* Garbage where a write was lost is no crash's leftover on the
         * file systems FORMAT.md §4 trusts, so the writer refuses to cut
         * it (it may be an acknowledged append damaged later); the
         * operator's point-in-time recovery does, and must lose nothing
         * acknowledged. The refusal names a place after the end. */
        if (rec.bad_offset < rec.end_offset || info.offset != rec.bad_offset)
            violation(C, id, "refused a damaged tail at byte %" PRIu64
                      " before the end %" PRIu64, info.offset,
                      rec.end_offset);
        C->T->refused++;
        rc = open_pit(C, dir, id, &pit, &l, &rec, &info);
    }
    if (rc != 0) {
        violation(C, id, "writer open (recovery): %s (%s)", evs_err_name(rc),
                  info.msg);
        if (x.must_exist)
            C->T->lost += x.required;
        evs_store_close(pit);
        return;
    }
    last = evs_log_last_seq(l);
    if (rec.cut_bytes)
        C->T->cut++;
    if (rec.last_seq != last)
        violation(C, id,
                  "recovery reports last_seq %" PRIu64
                  " but the log says %" PRIu64,
                  rec.last_seq, last);
    if (W->recovery == EVS_RECOVER_TAIL && rd_ok && rd_last != last)
        violation(C, id,
                  "a reader saw %" PRIu64 " events, recovery kept "
                  "%" PRIu64,
                  rd_last, last);
    n = read_all(C, e, l, &x, RD_WRITER);
    if (n >= 0 && (uint64_t)n != last)
        violation(C, id, "read %ld events, last_seq is %" PRIu64, n, last);
    if (last < x.required) {
        C->T->lost += x.required - last;
        violation(C, id,
                  "%" PRIu64 " acknowledged events lost (log ends at "
                  "%" PRIu64 ", %" PRIu64 " were promised)",
                  x.required - last, last, x.required);
    }
    evs_log_close(l);
    l = NULL;
    evs_store_close(pit);

    check_snapshot(C, s, e, &x, last, li);
    if (e == 4)
        check_requests(C, s, e);

    /* A scan finds no problem, a second recovery finds nothing to do
     * and changes nothing, and appending works afterwards. */
    snprintf(evid, sizeof(evid), "after-crash-%" PRIu64, last + 1);
    tu_check_recovered(s, dir, id, last, evid, vviolation, C);
}

static void check_image(checker *C, pl_image *im, const char *dir)
{
    world *W = C->W;
    evs_store_opts o;
    evs_store *s = NULL;
    evs_exec_listing L;
    listed li[MAX_EXEC];
    size_t opens;
    int rc;

    memset(li, 0, sizeof(li));
    evs_store_opts_init(&o);
    o.recovery = W->recovery;
    o.io = pl_image_io(im);
    o.create = 0;
    C->io = o.io;
    rc = evs_store_open(dir, &o, &s);
    if (rc != 0) {
        violation(C, NULL, "the store does not open: %s", evs_err_name(rc));
        return;
    }
    /* Listing first, as a reader would right after the crash. */
    opens = pl_image_snapshot_opens(im);
    rc = evs_exec_list(s, NULL, &L);
    if (rc == 0) {
        /* Rows the listing index answered (with one stat, no open). */
        size_t read = pl_image_snapshot_opens(im) - opens;
        C->T->listed += L.count;
        C->T->listed_from_index += L.count > read ? L.count - read : 0;
    }
    if (rc != 0) {
        violation(C, NULL, "evs_exec_list: %s", evs_err_name(rc));
    } else {
        for (size_t i = 0; i < L.count; i++) {
            int e = -1;
            for (int j = 0; j < W->nex; j++)
                if (strlen(W->ex[j].id) == L.items[i].id.len &&
                    memcmp(W->ex[j].id, L.items[i].id.ptr, L.items[i].id.len) ==
                        0)
                    e = j;
            if (e < 0) {
                violation(C, NULL, "an unknown execution is listed");
                continue;
            }
            if (li[e].found)
                violation(C, W->ex[e].id, "listed twice");
            li[e].found = 1;
            li[e].info = L.items[i];
            li[e].info.id.ptr = NULL; /* the listing is freed below */
            li[e].info.status.ptr = NULL;
            li[e].info.workflow_name.ptr = NULL;
        }
        evs_exec_list_free(&L);
    }
    for (int e = 0; e < W->nex; e++)
        check_exec(C, s, dir, e, &li[e]);
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* Images for each crash point                                        */
/* ------------------------------------------------------------------ */

typedef struct imager {
    checker *C;
    pl_crash *crash;
    plc_dedup *D;
    unsigned char *inc;
    size_t npend;
} imager;

static void try_image(imager *I, const char *kind, int contents, size_t block,
                      uint64_t seed, int all)
{
    checker *C = I->C;
    pl_choice ch;
    pl_image *im = NULL;
    uint64_t dg[2];
    char *dir;
    int rc;

    memset(&ch, 0, sizeof(ch));
    ch.include = all ? NULL : I->inc;
    ch.contents = contents;
    ch.block = block;
    ch.seed = seed;
    rc = pl_image_make(I->crash, &ch, &im);
    cr_assert_eq(rc, 0);
    C->T->images++;
    pl_image_digest(im, dg);
    if (!plc_dedup_add(I->D, dg)) {
        pl_image_free(im);
        return;
    }
    C->T->distinct++;
    dir = scratch_dir("plimg");
    cr_assert_not_null(dir);
    rc = pl_image_write(im, dir);
    cr_assert_eq(rc, 0, "writing an image: %s", strerror(-rc));
    C->kind = kind;
    C->garbage = contents == PL_FILL_GARBAGE || contents == PL_TAIL_GARBAGE;
    C->failed_here = 0;
    check_image(C, im, dir);
    pl_image_free(im);
    if (C->failed_here && !C->kept && getenv("EVS_POWERLOSS_KEEP")) {
        fprintf(stderr, "powerloss: kept the failing image in %s\n", dir);
        C->kept = 1;
        free(dir);
        return;
    }
    tu_rmtree_free(dir);
}

static int is_meta(const pl_op *op)
{
    return op->kind != PL_WRITE && op->kind != PL_TRUNC;
}

#define MAX_PREFIXES 24

static void images_at(checker *C, plc_dedup *D, size_t k, uint64_t *rs)
{
    imager I;
    size_t P, step;

    memset(&I, 0, sizeof(I));
    I.C = C;
    I.D = D;
    I.crash = pl_crash_at(C->W->rec, k);
    cr_assert_not_null(I.crash);
    P = I.npend = pl_crash_npending(I.crash);
    I.inc = calloc(P + 1, 1);
    cr_assert_not_null(I.inc);
    C->k = k;
    C->T->crash_points++;

    /* The durable state alone. */
    try_image(&I, "durable", PL_WHOLE, 0, 0, 0);
    /* Each prefix of the unsynced operations (the whole of them is what
     * a process crash leaves). */
    step = P > MAX_PREFIXES ? P / MAX_PREFIXES : 1;
    for (size_t j = 1; j <= P; j += step) {
        for (size_t i = 0; i < P; i++)
            I.inc[i] = i < j;
        try_image(&I, "prefix", PL_WHOLE, 0, 0, 0);
    }
    try_image(&I, "all", PL_WHOLE, 0, 0, 1);
    if (P == 0)
        goto out;
    /* Random blocks of the unsynced writes, with all or a random part
     * of the unsynced directory operations. */
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < P; i++)
            I.inc[i] = r == 0 || !is_meta(pl_crash_pending_op(I.crash, i))
                           ? 1
                           : (unsigned char)(plc_rnd(rs) & 1);
        try_image(&I, "blocks-512", PL_BLOCKS, 512, plc_rnd(rs), 0);
        try_image(&I, "blocks-4k", PL_BLOCKS, 4096, plc_rnd(rs), 0);
        for (size_t i = 0; i < P; i++)
            I.inc[i] = (unsigned char)(plc_rnd(rs) & 1);
        try_image(&I, "subset", PL_WHOLE, 0, 0, 0);
    }
    /* Space allocated, data never written; or garbage after the end. */
    try_image(&I, "fill-zeros", PL_FILL_ZEROS, 0, plc_rnd(rs), 1);
    try_image(&I, "fill-garbage", PL_FILL_GARBAGE, 0, plc_rnd(rs), 1);
    try_image(&I, "tail-zeros", PL_TAIL_ZEROS, 0, plc_rnd(rs), 1);
    try_image(&I, "tail-garbage", PL_TAIL_GARBAGE, 0, plc_rnd(rs), 1);
    /* Unsynced creates, renames and unlinks dropped: all, then each. */
    for (size_t i = 0; i < P; i++)
        I.inc[i] = !is_meta(pl_crash_pending_op(I.crash, i));
    try_image(&I, "no-dir-ops", PL_WHOLE, 0, 0, 0);
    for (size_t m = 0, tried = 0; m < P && tried < MAX_PREFIXES; m++) {
        if (!is_meta(pl_crash_pending_op(I.crash, m)))
            continue;
        for (size_t i = 0; i < P; i++)
            I.inc[i] = i != m;
        try_image(&I, "drop-one-dir-op", PL_WHOLE, 0, 0, 0);
        tried++;
    }
out:
    free(I.inc);
    pl_crash_free(I.crash);
}

/* Runs rounds of workload and crash images until `target` distinct
 * images have been checked. */
static void run_world(const char *name, evs_durability mode, long target,
                      tally *T)
{
    uint64_t seed0, rs;
    plc_dedup D = {NULL, 0, 0};
    struct timespec t0, t1;
    char what[64];
    checker C;

    snprintf(what, sizeof(what), "powerloss %s", name);
    seed0 = tu_seed("EVS_POWERLOSS_SEED", what);
    memset(T, 0, sizeof(*T));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t round = 0; T->distinct < (size_t)target; round++) {
        world W;
        memset(&W, 0, sizeof(W));
        W.name = name;
        W.mode = mode;
        W.recovery = mode == EVS_SYNC_FULL ? EVS_RECOVER_TAIL
                                           : EVS_RECOVER_POINT_IN_TIME;
        W.seed = seed0 + round;
        run_workload(&W);
        cr_assert(!W.setup_failed, "%s seed 0x%" PRIx64 ": workload: %s", name,
                  W.seed, W.setup_err);
        trace_world(&W);
        memset(&C, 0, sizeof(C));
        C.W = &W;
        C.T = T;
        rs = W.seed * 7919;
        for (size_t k = 0; k <= pl_rec_nops(W.rec); k++)
            images_at(&C, &D, k, &rs);
        T->rounds++;
        T->ops += pl_rec_nops(W.rec);
        fprintf(stderr,
                "powerloss %s: round %" PRIu64 " seed 0x%" PRIx64
                ": %zu operations\n",
                name, round, W.seed, pl_rec_nops(W.rec));
        free_world(&W);
        if (round > 1000)
            break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    plc_dedup_free(&D);
    for (int i = 0; i < MAX_KINDS && T->kind[i]; i++)
        fprintf(stderr, "powerloss %s: %zu violations \"%s\"\n", name,
                T->kind_n[i], T->kind[i]);
    fprintf(stderr,
            "powerloss %s: first seed 0x%" PRIx64 ", %zu rounds, %zu "
            "operations, %zu crash points, %zu images (%zu distinct), "
            "%zu executions and %zu events checked; acknowledged events "
            "lost: %zu; invalid events accepted: %zu; violations of any "
            "kind: %zu; %zu recoveries cut a torn tail, %zu refused a "
            "damaged one (then cut point-in-time); snapshots: %zu "
            "loaded, %zu stale, %zu damaged or missing after unsynced "
            "writes; %zu half-created EVS_SYNC_NONE executions; %zu rows "
            "listed, %zu of them from the listing index; %.1f s\n",
            name, seed0, T->rounds, T->ops, T->crash_points, T->images,
            T->distinct, T->execs, T->events, T->lost, T->invalid,
            T->violations, T->cut, T->refused, T->snap_ok, T->snap_stale, T->snap_weak_fail,
            T->half_created, T->listed, T->listed_from_index,
            (double)(t1.tv_sec - t0.tv_sec) +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static long share(int percent)
{
    long total = tu_env_long("EVS_POWERLOSS_IMAGES", DEFAULT_IMAGES);
    return total * percent / 100;
}

/* ------------------------------------------------------------------ */
/* The model itself                                                   */
/* ------------------------------------------------------------------ */

typedef struct mini {
    char *dir;
    pl_rec *rec;
    const evs_io *io;
    int root, fd;
} mini;

static void mini_open(mini *m)
{
    m->dir = scratch_dir("plmodel");
    cr_assert_not_null(m->dir);
    m->rec = pl_rec_new(m->dir);
    cr_assert_not_null(m->rec);
    m->io = pl_rec_io(m->rec);
    cr_assert_eq(m->io->openat(m->io->ctx, AT_FDCWD, m->dir,
                               O_RDONLY | O_DIRECTORY, 0, &m->root),
                 0);
}

static void mini_write(mini *m, int fd, const char *s, uint64_t off)
{
    struct iovec iov = {(void *)s, strlen(s)};
    cr_assert_eq(m->io->pwritev(m->io->ctx, fd, &iov, 1, off), 0);
}

static pl_image *mini_image(mini *m, size_t k, const pl_choice *ch)
{
    pl_crash *c = pl_crash_at(m->rec, k);
    pl_image *im = NULL;
    cr_assert_not_null(c);
    cr_assert_eq(pl_image_make(c, ch, &im), 0);
    pl_crash_free(c);
    return im;
}

static void mini_close(mini *m)
{
    m->io->close(m->io->ctx, m->root);
    cr_assert(!pl_rec_failed(m->rec), "%s", pl_rec_error(m->rec));
    pl_rec_free(m->rec);
    tu_rmtree_free(m->dir);
}

static const unsigned char none_included[256];
static const pl_choice durable_only = {none_included, PL_WHOLE, 0, 0};
static const pl_choice everything = {NULL, PL_WHOLE, 0, 0};

Test(powerloss_model, a_write_is_durable_only_after_fsync_of_its_file)
{
    mini m;
    pl_image *im;
    const char *b;
    size_t len, k_written, k_synced;
    int fd;

    mini_open(&m);
    cr_assert_eq(m.io->openat(m.io->ctx, m.root, "f", O_RDWR | O_CREAT | O_EXCL,
                              0600, &fd),
                 0);
    cr_assert_eq(m.io->fsync(m.io->ctx, m.root), 0);
    mini_write(&m, fd, "hello", 0);
    k_written = pl_rec_nops(m.rec);
    cr_assert_eq(m.io->fdatasync(m.io->ctx, fd), 0);
    k_synced = pl_rec_nops(m.rec);
    m.io->close(m.io->ctx, fd);

    im = mini_image(&m, k_written, &durable_only);
    b = pl_image_file(im, "f", &len);
    cr_assert_not_null(b, "the synced create keeps the file");
    cr_assert_eq(len, 0, "the unsynced write is lost");
    pl_image_free(im);

    im = mini_image(&m, k_written, &everything);
    b = pl_image_file(im, "f", &len);
    cr_assert(b && len == 5 && memcmp(b, "hello", 5) == 0);
    pl_image_free(im);

    im = mini_image(&m, k_synced, &durable_only);
    b = pl_image_file(im, "f", &len);
    cr_assert(b && len == 5 && memcmp(b, "hello", 5) == 0,
              "fdatasync made it durable");
    pl_image_free(im);
    mini_close(&m);
}

Test(powerloss_model, a_new_name_is_durable_only_after_fsync_of_its_directory)
{
    mini m;
    pl_image *im;
    const char *b;
    size_t len, k_renamed;
    int fd;

    mini_open(&m);
    cr_assert_eq(m.io->openat(m.io->ctx, m.root, "tmp",
                              O_WRONLY | O_CREAT | O_EXCL, 0600, &fd),
                 0);
    mini_write(&m, fd, "new", 0);
    cr_assert_eq(m.io->fsync(m.io->ctx, fd), 0);
    cr_assert_eq(m.io->renameat(m.io->ctx, m.root, "tmp", m.root, "dst", 0), 0);
    k_renamed = pl_rec_nops(m.rec);
    cr_assert_eq(m.io->fsync(m.io->ctx, m.root), 0);
    m.io->close(m.io->ctx, fd);

    im = mini_image(&m, k_renamed, &durable_only);
    cr_assert_eq(pl_image_count(im), 0,
                 "an fsync of the file does not make its name durable");
    pl_image_free(im);

    im = mini_image(&m, k_renamed + 1, &durable_only);
    cr_assert_eq(pl_image_count(im), 1);
    cr_assert_null(pl_image_file(im, "tmp", &len));
    b = pl_image_file(im, "dst", &len);
    cr_assert(b && len == 3 && memcmp(b, "new", 3) == 0,
              "the renamed file keeps the data synced under its old name");
    pl_image_free(im);
    mini_close(&m);
}

Test(powerloss_model, blocks_mix_old_and_new_contents_and_fill_leaves_zeros)
{
    mini m;
    pl_image *im;
    pl_choice ch = {NULL, PL_BLOCKS, 512, 0};
    char big[2049];
    const char *b;
    size_t len, k;
    int fd, mixed = 0, zeros = 0;

    mini_open(&m);
    cr_assert_eq(m.io->openat(m.io->ctx, m.root, "f", O_RDWR | O_CREAT | O_EXCL,
                              0600, &fd),
                 0);
    cr_assert_eq(m.io->fsync(m.io->ctx, m.root), 0);
    memset(big, 'x', 2048);
    big[2048] = '\0';
    mini_write(&m, fd, big, 0);
    k = pl_rec_nops(m.rec);
    m.io->close(m.io->ctx, fd);
    for (uint64_t seed = 1; seed < 64; seed++) {
        ch.seed = seed;
        im = mini_image(&m, k, &ch);
        b = pl_image_file(im, "f", &len);
        cr_assert_not_null(b);
        cr_assert(len == 0 || len == 2048 || len % 512 == 0);
        for (size_t i = 0; i + 512 <= len; i += 512)
            if (b[i] == 0)
                mixed = 1;
        pl_image_free(im);
    }
    cr_assert(mixed, "some images lose some blocks of a write");
    ch.contents = PL_FILL_ZEROS;
    im = mini_image(&m, k, &ch);
    b = pl_image_file(im, "f", &len);
    cr_assert_eq(len, 2048);
    for (size_t i = 0; i < len; i++)
        zeros += b[i] == 0;
    cr_assert_eq(zeros, 2048);
    pl_image_free(im);
    mini_close(&m);
}

/* ------------------------------------------------------------------ */
/* The store under power loss                                         */
/* ------------------------------------------------------------------ */

static void expect_clean(const char *name, const tally *T, long target)
{
    cr_expect_eq(T->lost, 0, "%s: %zu acknowledged events lost", name, T->lost);
    cr_expect_eq(T->invalid, 0, "%s: %zu invalid events accepted", name,
                 T->invalid);
    cr_expect_eq(T->violations, 0, "%s: %zu violations (see above)", name,
                 T->violations);
    cr_expect_geq(T->distinct, (size_t)target, "%s: only %zu distinct images",
                  name, T->distinct);
    cr_expect_gt(T->events, 0);
}

Test(powerloss, full_sync_loses_no_acknowledged_event_at_any_crash_point)
{
    tally T;
    long target = share(60);

    run_world("full", EVS_SYNC_FULL, target, &T);
    expect_clean("full", &T, target);
}

Test(powerloss, batch_sync_loses_only_appends_after_the_last_sync)
{
    tally T;
    long target = share(20);

    run_world("batch", EVS_SYNC_BATCH, target, &T);
    expect_clean("batch", &T, target);
}

Test(powerloss, no_sync_loses_only_what_was_never_synced)
{
    tally T;
    long target = share(20);

    run_world("none", EVS_SYNC_NONE, target, &T);
    expect_clean("none", &T, target);
}

/* ------------------------------------------------------------------ */
/* Findings, each reduced to its smallest workload                    */
/* ------------------------------------------------------------------ */

typedef struct opened {
    pl_image *im;
    char *dir;
    evs_store *s;
} opened;

/* Opens what the disk holds durably after operation k: nothing that was
 * not synced reached it. */
static void open_durable(world *W, size_t k, opened *o)
{
    pl_crash *c = pl_crash_at(W->rec, k);
    unsigned char *inc;
    pl_choice ch;
    evs_store_opts so;

    cr_assert_not_null(c);
    inc = calloc(pl_crash_npending(c) + 1, 1);
    cr_assert_not_null(inc);
    memset(&ch, 0, sizeof(ch));
    ch.include = inc;
    cr_assert_eq(pl_image_make(c, &ch, &o->im), 0);
    free(inc);
    pl_crash_free(c);
    o->dir = scratch_dir("plfind");
    cr_assert_not_null(o->dir);
    cr_assert_eq(pl_image_write(o->im, o->dir), 0);
    evs_store_opts_init(&so);
    so.recovery = EVS_RECOVER_POINT_IN_TIME;
    so.io = pl_image_io(o->im);
    cr_assert_eq(evs_store_open(o->dir, &so, &o->s), 0);
}

static void close_durable(opened *o)
{
    evs_store_close(o->s);
    pl_image_free(o->im);
    tu_rmtree_free(o->dir);
}

/* Last sequence of execution e after a writer's recovery, or -1 when the
 * execution is gone. */
static long recovered_last(opened *o, const char *id)
{
    evs_log *l;
    long last;

    if (evs_log_open(o->s, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL))
        return -1;
    last = (long)evs_log_last_seq(l);
    evs_log_close(l);
    return last;
}

static void small_world(world *W, evs_durability mode, int nex)
{
    memset(W, 0, sizeof(*W));
    W->name = "finding";
    W->mode = mode;
    W->seed = 42;
    W->rs = 42;
    W->dir = scratch_dir("plfind");
    cr_assert_not_null(W->dir);
    W->rec = pl_rec_new(W->dir);
    cr_assert_not_null(W->rec);
    W->nex = nex;
    for (int e = 0; e < nex; e++)
        snprintf(W->ex[e].id, sizeof(W->ex[e].id), "x%d", e);
    W->s = open_store(W, mode);
    if (mode == EVS_SYNC_NONE)
        W->s_full = open_store(W, EVS_SYNC_FULL);
    cr_assert(!W->setup_failed, "%s", W->setup_err);
}

/* After W's set-up, the log of execution 0 has said 4 events are durable
 * (evs_log_sync returned 0): a power loss must keep them. */
static void sync_claim_survives(world *W)
{
    uint64_t claimed;
    opened o;
    long got;

    cr_assert(!W->setup_failed, "%s", W->setup_err);
    claimed = evs_log_durable_seq(W->ex[0].l);
    cr_assert_eq(claimed, 4);
    open_durable(W, pl_rec_nops(W->rec), &o);
    got = recovered_last(&o, W->ex[0].id);
    cr_expect_geq(got, (long)claimed,
                  "evs_log_sync() returned 0 and evs_log_durable_seq() "
                  "said %" PRIu64 ", but after a power loss the log ends "
                  "at %ld (-1: the execution is gone)",
                  claimed, got);
    close_durable(&o);
}

/*
 * EVS_SYNC_NONE: appends, close, reopen, evs_log_sync(). The sync is a
 * no-op (the new handle has nothing "unsynced" of its own) and
 * evs_log_durable_seq() counts what was present at open as durable,
 * though nothing ever synced it: a power loss then loses events the API
 * called durable.
 */
Test(powerloss, log_sync_after_a_reopen_makes_earlier_appends_durable)
{
    world W;

    small_world(&W, EVS_SYNC_NONE, 1);
    w_create(&W, 0, 1, 1, 1900000000000000LL); /* durable creation */
    w_open(&W, 0);
    w_append(&W, 0, 3, 0);
    w_reopen(&W, 0);
    w_sync(&W, 0);
    sync_claim_survives(&W);
    free_world(&W);
}

/*
 * EVS_SYNC_NONE: an execution created without sync, appended to, then
 * evs_log_sync(). The fdatasync covers the log's bytes, but neither the
 * execution's directory entry nor the log's name in it was ever synced:
 * after a power loss the execution is gone with the events the API
 * called durable.
 */
Test(powerloss, log_sync_makes_appends_durable_in_an_unsynced_execution)
{
    world W;

    small_world(&W, EVS_SYNC_NONE, 1);
    w_create(&W, 0, 1, 0, 1900000000000000LL);
    w_open(&W, 0);
    w_append(&W, 0, 3, 0);
    w_sync(&W, 0);
    sync_claim_survives(&W);
    free_world(&W);
}

/*
 * EVS_SYNC_NONE: create x0 (no sync), then delete x1, which fsyncs the
 * store directory in every mode. That makes x0's rename into place
 * durable while nothing inside x0 is: after a power loss x0 is a
 * directory without its log, listed but neither absent nor usable
 * (evs_log_open: ENOENT; evs_exec_create: EEXIST).
 */
Test(powerloss, an_unsynced_creation_appears_whole_or_not_at_all)
{
    world W;
    opened o;
    evs_exec_listing L;
    int listed = 0, exists;

    small_world(&W, EVS_SYNC_NONE, 2);
    w_create(&W, 1, 1, 0, 1900000000000000LL);
    w_create(&W, 0, 2, 0, 1900000000000000LL);
    w_delete(&W, 1);
    cr_assert(!W.setup_failed, "%s", W.setup_err);
    open_durable(&W, pl_rec_nops(W.rec), &o);
    cr_assert_eq(evs_exec_list(o.s, NULL, &L), 0);
    for (size_t i = 0; i < L.count; i++)
        listed |=
            L.items[i].id.len == 2 && memcmp(L.items[i].id.ptr, "x0", 2) == 0;
    evs_exec_list_free(&L);
    exists = evs_exec_exists(o.s, "x0", 2);
    cr_expect(!listed || exists,
              "after a power loss x0 is listed but has no log");
    close_durable(&o);
    free_world(&W);
}

/* ------------------------------------------------------------------ */
/* The settings file                                                  */
/* ------------------------------------------------------------------ */

/* What a store's settings read back as on the disk `ch` gives after the
 * first k operations: the value of retention.failed, or NULL when the
 * settings cannot be read (the answer then names why). */
static char *settings_after(mini *m, size_t k, const pl_choice *ch, int *rc)
{
    pl_image *im = mini_image(m, k, ch);
    char *dir = scratch_dir("plset"), *out = NULL;
    evs_settings *set = NULL;
    evs_store_opts o;
    evs_store *s = NULL;
    const char *v;

    cr_assert_not_null(dir);
    cr_assert_eq(pl_image_write(im, dir), 0);
    evs_store_opts_init(&o);
    o.io = pl_image_io(im);
    o.create = 0;
    cr_assert_eq(evs_store_open(dir, &o, &s), 0);
    *rc = evs_settings_load(s, &set, NULL);
    if (*rc == 0 &&
        evs_settings_get(set, EVS_SET_RETENTION_FAILED, &v, NULL, NULL) == 0)
        out = strdup(v);
    evs_settings_free(set);
    evs_store_close(s);
    pl_image_free(im);
    tu_rmtree_free(dir);
    return out;
}

Test(powerloss, a_settings_replacement_leaves_the_old_file_or_the_new)
{
    static const int contents[] = {PL_WHOLE, PL_BLOCKS, PL_FILL_ZEROS,
                                   PL_FILL_GARBAGE, PL_TAIL_ZEROS,
                                   PL_TAIL_GARBAGE};
    evs_settings *set = NULL;
    evs_store_opts o;
    evs_store *s = NULL;
    size_t k0, k1, checked = 0;
    mini m;
    int rc;

    mini_open(&m);
    evs_store_opts_init(&o);
    o.io = m.io;
    o.durability = EVS_SYNC_NONE; /* settings are synced all the same */
    cr_assert_eq(evs_store_open(m.dir, &o, &s), 0);
    cr_assert_eq(evs_settings_new(NULL, &set), 0);
    cr_assert_eq(evs_settings_set(set, EVS_SET_RETENTION_FAILED, "1d", NULL), 0);
    cr_assert_eq(evs_settings_save(s, set, NULL), 0);
    k0 = pl_rec_nops(m.rec);
    cr_assert_eq(evs_settings_set(set, EVS_SET_RETENTION_FAILED, "90d", NULL),
                 0);
    cr_assert_eq(evs_settings_save(s, set, NULL), 0);
    k1 = pl_rec_nops(m.rec);
    evs_settings_free(set);
    evs_store_close(s);

    for (size_t k = k0; k <= k1; k++) {
        pl_crash *c = pl_crash_at(m.rec, k);
        size_t P = pl_crash_npending(c);
        unsigned char inc[64];

        cr_assert_lt(P, sizeof(inc));
        pl_crash_free(c);
        for (size_t j = 0; j <= P; j++)
            for (size_t t = 0; t < sizeof(contents) / sizeof(contents[0]);
                 t++)
                for (uint64_t seed = 1; seed <= 3; seed++) {
                    pl_choice ch = {inc, contents[t], 512, seed};
                    char *v;

                    for (size_t i = 0; i < P; i++)
                        inc[i] = i < j;
                    v = settings_after(&m, k, &ch, &rc);
                    cr_assert_eq(rc, 0,
                                 "crash after op %zu, %zu of %zu pending, "
                                 "contents %d: %s",
                                 k, j, P, contents[t], evs_err_name(rc));
                    cr_assert(v && (strcmp(v, "1d") == 0 ||
                                    strcmp(v, "90d") == 0),
                              "crash after op %zu: %s", k, v ? v : "?");
                    if (k == k1 && j == 0)
                        cr_assert_str_eq(v, "90d", "the save was durable");
                    free(v);
                    checked++;
                }
    }
    cr_assert_gt(checked, 0);
    mini_close(&m);
}
