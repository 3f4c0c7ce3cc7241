/*
 * test_sqlite_powerloss.c: simulated power loss on the SQLite backend,
 * at SQLite's VFS (tests/RELIABILITY.md, section 1b).
 *
 * A workload of executions created, appended to (single, batched and
 * large appends), snapshotted, sent requests, deleted, and a store
 * closed and opened again (a checkpoint, the WAL deleted) runs on a real
 * database through the recording VFS of sqlite_plvfs.h, with
 * wal_autocheckpoint set low so that checkpoints copy the WAL back into
 * the database in the middle of the run. Then, for crash points along
 * the operation log, the files a power loss could leave are rebuilt:
 * what was synced, plus none, all, each prefix, random subsets of the
 * unsynced writes, the last one torn at a 512-byte boundary, the
 * unsynced directory entries dropped, grown files holding zeros or
 * garbage. Each distinct image is opened with evstore and checked
 * against what the workload was told before the crash; a sample is also
 * checked by `evdump verify`.
 *
 * The same VFS, as a mutant that never syncs, shows the checker finds
 * the losses it should. Full disks and I/O faults are in
 * test_sqlite_faults.c.
 *
 * Environment: EVS_SQLPL_IMAGES (distinct images in all, default 3000,
 * split 60/20/20 between EVS_SYNC_FULL, BATCH and NONE), EVS_SQLPL_SEED
 * (first seed), EVS_SQLPL_VERIFY (run evdump verify on one image in this
 * many, default 25), EVS_SQLPL_PREFIXES (prefixes of the unsynced
 * operations per crash point, evenly spaced, default 16),
 * EVS_POWERLOSS_TMP (where images are written, default /dev/shm),
 * EVS_SQLPL_PRINT (violations printed, default 20) and EVS_SQLPL_TRACE=1
 * (print each workload's operation log).
 */
#include <criterion/criterion.h>

#include "pl_common.h"
#include "sqlite_plvfs.h"
#include "sqlite_world.h"
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define DEFAULT_IMAGES 3000

/* The workload: e0, e1 and e3 created, writers of e0 and e1, then
 * `steps` random calls (sqlite_world.h), e2 created and deleted once. */
static void run_workload(sqw_world *W, int steps)
{
    int deleted_once = 0;

    sqw_open_store(W);
    sqw_create(W, 0, 1 + plc_rnd(&W->rs) % 3);
    sqw_create(W, 1, 1);
    sqw_create(W, 3, 1);
    sqw_writer(W, 0);
    sqw_writer(W, 1);
    for (int i = 0; i < steps; i++) {
        int e = (int)(plc_rnd(&W->rs) % 2);
        unsigned r = (unsigned)(plc_rnd(&W->rs) % 100);

        if (r < 45)
            sqw_append(W, e, 1, 0);
        else if (r < 58)
            sqw_append(W, e, 2 + plc_rnd(&W->rs) % 3, 0);
        else if (r < 65)
            sqw_append(W, e, 1, 1);
        else if (r < 70)
            sqw_snap(W, e);
        else if (r < 76 && W->mode != EVS_SYNC_FULL)
            sqw_sync(W, e);
        else if (r < 82)
            sqw_post(W);
        else if (r < 85)
            sqw_remove(W);
        else if (r < 90 && !W->ex[2].exists && !deleted_once)
            sqw_create(W, 2, 2);
        else if (r < 90 && W->ex[2].exists) {
            sqw_delete(W, 2);
            deleted_once = 1;
        } else if (r < 93)
            sqw_reopen(W);
        else
            sqw_append(W, e, 1, 0);
    }
    sqw_close_writers(W);
    evs_store_close(W->s);
    W->s = NULL;
}

/* ------------------------------------------------------------------ */
/* The disk model                                                     */
/* ------------------------------------------------------------------ */

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void buf_size(buf *b, size_t len)
{
    if (len > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < len)
            c *= 2;
        b->p = realloc(b->p, c);
        cr_assert_not_null(b->p);
        b->cap = c;
    }
    if (len > b->len)
        memset(b->p + b->len, 0, len - b->len);
    b->len = len;
}

/* Applies a write (the first `keep` bytes of it) or a truncate. */
static void apply(buf *b, const spl_op *op, uint64_t keep)
{
    if (op->kind == SPL_TRUNC) {
        buf_size(b, op->len);
        return;
    }
    if (keep > op->len)
        keep = op->len;
    if (op->off + keep > b->len)
        buf_size(b, op->off + keep);
    memcpy(b->p + op->off, spl_bytes(op), keep);
}

/* The disk after operations [0, k): for every node its durable
 * contents, the durable directory entries, and the pending operations
 * (writes and truncates not yet synced, creates and deletes not yet
 * made durable by a directory sync), in log order. */
typedef struct model {
    buf *node; /* by node */
    size_t nnode;
    uint32_t dir[SPL_NFILES];
    size_t *pend;
    size_t npend, cap, k;
} model;

static buf *node_buf(model *m, uint32_t n)
{
    if (n >= m->nnode) {
        size_t c = m->nnode ? m->nnode * 2 : 16;
        while (c <= n)
            c *= 2;
        m->node = realloc(m->node, c * sizeof(*m->node));
        cr_assert_not_null(m->node);
        memset(m->node + m->nnode, 0, (c - m->nnode) * sizeof(*m->node));
        m->nnode = c;
    }
    return &m->node[n];
}

static void model_advance(model *m, size_t k)
{
    for (; m->k < k; m->k++) {
        const spl_op *op = spl_op_at(m->k);
        size_t j = 0;

        if (op->kind == SPL_SYNC || op->kind == SPL_DIRSYNC) {
            for (size_t i = 0; i < m->npend; i++) {
                const spl_op *p = spl_op_at(m->pend[i]);
                int data = p->kind == SPL_WRITE || p->kind == SPL_TRUNC;
                if (op->kind == SPL_SYNC && data && p->node == op->node) {
                    apply(node_buf(m, p->node), p, p->len);
                } else if (op->kind == SPL_DIRSYNC && !data) {
                    m->dir[p->file] = p->kind == SPL_CREATE ? p->node : 0;
                } else {
                    m->pend[j++] = m->pend[i];
                }
            }
            m->npend = j;
            continue;
        }
        if (m->npend == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 256;
            m->pend = realloc(m->pend, m->cap * sizeof(*m->pend));
            cr_assert_not_null(m->pend);
        }
        m->pend[m->npend++] = m->k;
    }
}

static void model_free(model *m)
{
    for (size_t i = 0; i < m->nnode; i++)
        free(m->node[i].p);
    free(m->node);
    free(m->pend);
    memset(m, 0, sizeof(*m));
}

/* An image: each recorded file's contents, or absent. */
typedef struct image {
    int present[SPL_NFILES];
    uint32_t node[SPL_NFILES];
    buf f[SPL_NFILES];
} image;

/* Builds the image where the pending operations with inc[i] set reached
 * the disk, pending operation `torn` (an index, or -1) only its first
 * `keep` bytes. */
static void image_make(const model *m, const unsigned char *inc, long torn,
                       uint64_t keep, image *im)
{
    uint32_t dir[SPL_NFILES];

    memcpy(dir, m->dir, sizeof(dir));
    for (size_t i = 0; i < m->npend; i++) {
        const spl_op *p = spl_op_at(m->pend[i]);
        if (inc[i] && (p->kind == SPL_CREATE || p->kind == SPL_DELETE))
            dir[p->file] = p->kind == SPL_CREATE ? p->node : 0;
    }
    for (int f = 0; f < SPL_NFILES; f++) {
        uint32_t n = dir[f];
        buf *b = &im->f[f];

        im->present[f] = n != 0;
        im->node[f] = n;
        b->len = 0;
        if (!n)
            continue;
        if (n < m->nnode && m->node[n].len) {
            buf_size(b, m->node[n].len);
            memcpy(b->p, m->node[n].p, m->node[n].len);
        }
        for (size_t i = 0; i < m->npend; i++) {
            const spl_op *p = spl_op_at(m->pend[i]);
            if (!inc[i] || p->node != n ||
                (p->kind != SPL_WRITE && p->kind != SPL_TRUNC))
                continue;
            apply(b, p, (long)i == torn ? keep : p->len);
        }
    }
}

/* Space allocated but never written: each file of the image keeps its
 * durable bytes and takes the size image_make gave it, what lies past
 * its durable end being zeros, or random bytes when `garbage`. */
static void image_fill(const model *m, image *im, int garbage, uint64_t seed)
{
    for (int f = 0; f < SPL_NFILES; f++) {
        uint32_t n = im->node[f];
        buf *b = &im->f[f];
        size_t len = b->len, old;

        if (!im->present[f])
            continue;
        old = n < m->nnode ? m->node[n].len : 0;
        if (old > len)
            old = len;
        if (old)
            memcpy(b->p, m->node[n].p, old);
        for (size_t i = old; i < len; i++)
            b->p[i] = garbage ? (unsigned char)plc_rnd(&seed) : 0;
    }
}

static void image_digest(const image *im, uint64_t out[2])
{
    XXH3_state_t *st = XXH3_createState();
    XXH128_hash_t h;

    cr_assert_not_null(st);
    XXH3_128bits_reset(st);
    for (int f = 0; f < SPL_NFILES; f++) {
        uint64_t hdr[2] = {(uint64_t)im->present[f], im->f[f].len};
        XXH3_128bits_update(st, hdr, sizeof(hdr));
        if (im->f[f].len)
            XXH3_128bits_update(st, im->f[f].p, im->f[f].len);
    }
    h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    out[0] = h.low64;
    out[1] = h.high64;
}

static void image_write(const image *im, const char *dir)
{
    for (int f = 0; f < SPL_NFILES; f++) {
        char path[4400];
        FILE *fp;

        if (!im->present[f])
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, spl_file_name(f));
        fp = fopen(path, "wb");
        cr_assert_not_null(fp, "%s: %s", path, strerror(errno));
        if (im->f[f].len)
            cr_assert_eq(fwrite(im->f[f].p, 1, im->f[f].len, fp), im->f[f].len);
        cr_assert_eq(fclose(fp), 0);
        chmod(path, 0600);
    }
}

static void image_free(image *im)
{
    for (int f = 0; f < SPL_NFILES; f++)
        free(im->f[f].p);
}

/* ------------------------------------------------------------------ */
/* Checking an image                                                  */
/* ------------------------------------------------------------------ */

typedef struct tally {
    long images, cuts, lost, invalid, other, verified, not_opened;
    long events_read, promised;
    long rounds, ops, checkpoints, wal_deletes; /* of the workloads */
    long by_kind[8];                            /* images, by kinds[] */
} tally;

static const char *const kinds[8] = {"durable",    "all",         "prefix",
                                     "torn",       "subset",      "no-dir-ops",
                                     "fill-zeros", "fill-garbage"};

typedef struct checker {
    const sqw_world *W;
    tally *T;
    size_t k;         /* the crash point */
    const char *kind; /* the image's kind */
    long print;
    int bad; /* violations in this image */
} checker;

static void violation(checker *C, long *count, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void violation(checker *C, long *count, const char *fmt, ...)
{
    va_list ap;

    (*count)++;
    C->bad++;
    if (C->print-- > 0) {
        fprintf(stderr,
                "sqlite powerloss: seed %" PRIx64 " mode %d, crash "
                "after op %zu, image %s: ",
                C->W->seed, (int)C->W->mode, C->k, C->kind);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}

/* What the workload was promised about exec e at crash point k. */
typedef struct expect {
    uint64_t promised; /* events that must be there */
    int must_exist, may_exist, must_be_gone;
    int64_t snap_min; /* the last synced snapshot acknowledged, or 0 */
} expect;

static expect expect_at(const sqw_world *W, int e, size_t k)
{
    expect x = {0, 0, 0, 0, 0};

    for (size_t i = 0; i < W->nacts; i++) {
        const sqw_act *a = &W->acts[i];
        int done = a->op1 <= k, started = a->op0 < k;

        if (a->exec != e || a->rc != 0)
            continue;
        if (a->kind == SQW_CREATE && started) {
            x.may_exist = 1;
            x.must_be_gone = 0;
            x.snap_min = 0;
            x.promised = 0;
        }
        if (a->kind == SQW_DELETE && started) {
            x.must_exist = 0;
            x.promised = 0;
            if (done && W->mode != EVS_SYNC_NONE)
                x.must_be_gone = 1;
            continue;
        }
        if (!done)
            continue;
        if (a->durable > x.promised)
            x.promised = a->durable;
        if (x.promised > 0)
            x.must_exist = 1;
        if ((a->kind == SQW_SNAP || a->kind == SQW_CREATE) && a->snap_synced)
            x.snap_min = a->updated;
    }
    return x;
}

/* Whether a snapshot with this updated_at was being written before k. */
static int snap_known(const sqw_world *W, int e, size_t k, int64_t updated)
{
    for (size_t i = 0; i < W->nacts; i++) {
        const sqw_act *a = &W->acts[i];
        if (a->exec == e && (a->kind == SQW_SNAP || a->kind == SQW_CREATE) &&
            a->op0 < k && a->updated == updated)
            return 1;
    }
    return 0;
}

static void check_exec(checker *C, evs_store *s, int e, int listed)
{
    const sqw_world *W = C->W;
    const sqw_exm *xm = &W->ex[e];
    expect x = expect_at(W, e, C->k);
    int exists = evs_exec_exists(s, xm->id, strlen(xm->id));
    evs_snapshot *sn = NULL;
    evs_cursor *c = NULL;
    evs_log *l = NULL;
    evs_error_info ei;
    uint64_t n = 0;
    size_t problems = 0;
    int rc;

    C->T->promised += (long)x.promised;
    if (exists && !x.may_exist)
        violation(C, &C->T->invalid, "%s exists, never created", xm->id);
    if (exists && x.must_be_gone)
        violation(C, &C->T->other, "%s exists after its delete returned",
                  xm->id);
    if (!exists) {
        if (x.must_exist)
            violation(C, &C->T->lost, "%s is gone, %" PRIu64 " events promised",
                      xm->id, x.promised);
        if (listed)
            violation(C, &C->T->other, "%s listed but does not exist", xm->id);
        return;
    }
    if (!listed)
        violation(C, &C->T->other, "%s exists but is not listed", xm->id);
    rc = evs_log_open(s, xm->id, strlen(xm->id), 0, &l, NULL, &ei);
    if (rc != 0) {
        violation(C, &C->T->other, "%s: reader open: %s (%s)", xm->id,
                  evs_strerror(rc), ei.msg);
        return;
    }
    rc = evs_cursor_open(l, 1, UINT64_MAX, &c, &ei);
    while (rc == 0) {
        evs_event ev;
        evs_span raw;
        const plc_line *ln;

        rc = evs_cursor_next(c, &ev, &raw, &ei);
        if (rc != 1)
            break;
        rc = 0;
        n++;
        ln = ev.sequence < xm->lines.n ? &xm->lines.v[ev.sequence] : NULL;
        if (ev.sequence != n || !ln || !ln->raw || ln->op0 >= C->k ||
            ln->len != raw.len || memcmp(ln->raw, raw.ptr, raw.len) != 0) {
            violation(C, &C->T->invalid,
                      "%s: event at sequence %" PRIu64 " (%" PRIu64
                      " read) was never written before the crash",
                      xm->id, ev.sequence, n);
            break;
        }
    }
    if (rc < 0)
        violation(C, &C->T->other, "%s: reading: %s (%s)", xm->id,
                  evs_strerror(rc), ei.msg);
    evs_cursor_close(c);
    C->T->events_read += (long)n;
    if (n < x.promised)
        violation(C, &C->T->lost,
                  "%s: %" PRIu64 " events, %" PRIu64 " promised", xm->id, n,
                  x.promised);
    if (evs_log_last_seq(l) != n)
        violation(C, &C->T->other,
                  "%s: last_seq %" PRIu64 ", %" PRIu64 " events read", xm->id,
                  evs_log_last_seq(l), n);
    evs_log_close(l);
    rc = evs_log_scan(s, xm->id, strlen(xm->id), tu_count_problems, &problems);
    if (rc != 0 || problems)
        violation(C, &C->T->other, "%s: scan: %s, %zu problems", xm->id,
                  evs_strerror(rc), problems);
    rc = evs_snapshot_load(s, xm->id, strlen(xm->id), &sn, &ei);
    if (rc == 0) {
        if (!snap_known(W, e, C->k, sn->updated_at_us))
            violation(C, &C->T->invalid, "%s: a snapshot never saved", xm->id);
        else if (sn->updated_at_us < x.snap_min)
            violation(C, &C->T->lost,
                      "%s: snapshot older than the last synced save", xm->id);
        evs_snapshot_free(sn);
    } else if (!(rc == EVS_ESTALE && W->mode != EVS_SYNC_FULL)) {
        violation(C, &C->T->other, "%s: snapshot: %s (%s)", xm->id,
                  evs_strerror(rc), ei.msg);
    }
}

static void check_requests(checker *C, evs_store *s)
{
    const sqw_world *W = C->W;
    const sqw_exm *xm = &W->ex[3];
    evs_request_listing rl;
    int seen[SQW_MAX_REQ] = {0};
    int rc;

    if (!evs_exec_exists(s, xm->id, strlen(xm->id))) {
        /* A post is synced whatever the mode, and with it the
         * execution's creation. */
        for (size_t i = 0; i < W->nacts; i++)
            if (W->acts[i].kind == SQW_POST && W->acts[i].op1 <= C->k) {
                violation(C, &C->T->lost,
                          "%s is gone, a request posted "
                          "to it was acknowledged",
                          xm->id);
                break;
            }
        return;
    }
    memset(&rl, 0, sizeof(rl));
    rc = evs_request_list(s, xm->id, strlen(xm->id), &rl);
    if (rc != 0) {
        violation(C, &C->T->other, "requests: %s", evs_strerror(rc));
        return;
    }
    for (size_t i = 0; i < rl.count; i++) {
        int r = -1;
        for (int j = 0; j < W->nreq; j++)
            if (rl.items[i].id.len == EVS_REQUEST_ID_LEN &&
                memcmp(rl.items[i].id.ptr, W->req[j], EVS_REQUEST_ID_LEN) == 0)
                r = j;
        if (r < 0) {
            violation(C, &C->T->invalid, "request %.*s never posted",
                      (int)rl.items[i].id.len, rl.items[i].id.ptr);
            continue;
        }
        seen[r] = 1;
    }
    evs_request_list_free(&rl);
    for (size_t i = 0; i < W->nacts; i++) {
        const sqw_act *a = &W->acts[i];
        int removing = 0;
        if (a->kind != SQW_POST || a->op1 > C->k || seen[a->req])
            continue;
        for (size_t j = 0; j < W->nacts; j++)
            if (W->acts[j].kind == SQW_REMOVE && W->acts[j].req == a->req &&
                W->acts[j].op0 < C->k)
                removing = 1;
        if (!removing)
            violation(C, &C->T->lost, "acknowledged request %s missing",
                      W->req[a->req]);
    }
}

/* After the checks: a writer opens and appends, and it reads back. */
static void check_append(checker *C, evs_store *s)
{
    const sqw_exm *xm = &C->W->ex[0];
    evs_event ev = tu_event("step_started", "after", "{\"after\":1}");
    evs_log *l = NULL;
    uint64_t last;
    int rc;

    if (!evs_exec_exists(s, xm->id, strlen(xm->id)))
        return;
    rc = evs_log_open(s, xm->id, strlen(xm->id), EVS_LOG_WRITE, &l, NULL, NULL);
    if (rc != 0) {
        violation(C, &C->T->other, "writer open: %s", evs_strerror(rc));
        return;
    }
    last = evs_log_last_seq(l);
    rc = evs_log_append(l, &ev, 1, last, NULL);
    evs_log_close(l);
    if (rc != 0 || tu_count_events(s, xm->id) != (long)last + 1)
        violation(C, &C->T->other, "append after recovery: %s",
                  evs_strerror(rc));
}

static void check_image(checker *C, const char *dir, int verify)
{
    const sqw_world *W = C->W;
    char loc[4400];
    evs_store_opts o;
    evs_store *s = NULL;
    evs_exec_listing ls;
    int listed[SQW_NEXEC] = {0};
    int rc;

    snprintf(loc, sizeof(loc), "sqlite:%s/store.db", dir);
    if (verify) {
        /* First, before the library touches the image. */
        const char *args[] = {"verify", loc, NULL};
        tu_result r = tu_run_tool("EVDUMP", dir, "verify", args);
        if (r.status != 0)
            violation(C, &C->T->other, "evdump verify: exit %d: %s", r.status,
                      r.err);
        C->T->verified++;
        tu_result_free(&r);
    }
    evs_store_opts_init(&o);
    o.create = 0;
    o.durability = W->mode;
    rc = evs_store_open(loc, &o, &s);
    if (rc != 0) {
        /* No database at all: only before the first creation was
         * promised. */
        C->T->not_opened++;
        for (int e = 0; e < SQW_NEXEC; e++)
            if (expect_at(W, e, C->k).must_exist)
                violation(C, &C->T->lost,
                          "the store does not open (%s), "
                          "%s was promised",
                          evs_strerror(rc), W->ex[e].id);
        return;
    }
    memset(&ls, 0, sizeof(ls));
    rc = evs_exec_list(s, NULL, &ls);
    if (rc != 0)
        violation(C, &C->T->other, "listing: %s", evs_strerror(rc));
    for (size_t i = 0; rc == 0 && i < ls.count; i++) {
        int e = -1;
        for (int j = 0; j < SQW_NEXEC; j++)
            if (ls.items[i].id.len == strlen(W->ex[j].id) &&
                memcmp(ls.items[i].id.ptr, W->ex[j].id, ls.items[i].id.len) ==
                    0)
                e = j;
        if (e < 0)
            violation(C, &C->T->invalid, "listed an unknown execution");
        else if (listed[e]++)
            violation(C, &C->T->other, "%s listed twice", W->ex[e].id);
    }
    evs_exec_list_free(&ls);
    for (int e = 0; e < SQW_NEXEC; e++)
        check_exec(C, s, e, listed[e]);
    check_requests(C, s);
    check_append(C, s);
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* Crash points and images                                            */
/* ------------------------------------------------------------------ */

typedef struct imager {
    checker *C;
    plc_dedup *D;
    model *m;
    image im;
    unsigned char *inc;
    size_t inc_cap;
    long verify_every;
    size_t prefixes;
    char *scratch;
} imager;

/* fill: 0, or 1 (zeros) or 2 (garbage) for image_fill. */
static void try_image(imager *I, const char *kind, long torn, uint64_t keep,
                      int fill, uint64_t seed)
{
    uint64_t key[2];
    char *dir;

    image_make(I->m, I->inc, torn, keep, &I->im);
    if (fill)
        image_fill(I->m, &I->im, fill == 2, seed);
    image_digest(&I->im, key);
    if (!plc_dedup_add(I->D, key))
        return;
    dir = tu_join(I->scratch, "img");
    cr_assert_eq(mkdir(dir, 0700), 0, "%s: %s", dir, strerror(errno));
    image_write(&I->im, dir);
    I->C->kind = kind;
    I->C->bad = 0;
    I->C->T->images++;
    for (int i = 0; i < 8; i++)
        if (strcmp(kind, kinds[i]) == 0)
            I->C->T->by_kind[i]++;
    /* evdump verify of an image without a database would only say so
     * (exit 3); the store's own open is checked below for those. */
    check_image(I->C, dir,
                I->im.present[SPL_DB] && I->verify_every > 0 &&
                    I->C->T->images % I->verify_every == 0);
    tu_rmtree_free(dir);
}

static void fill(imager *I, size_t upto, int value)
{
    memset(I->inc, 0, I->m->npend);
    memset(I->inc, value, upto);
}

/* The last pending write among the first `upto` pending operations. */
static long last_write(const model *m, size_t upto)
{
    for (size_t i = upto; i-- > 0;)
        if (spl_op_at(m->pend[i])->kind == SPL_WRITE)
            return (long)i;
    return -1;
}

static void images_at(imager *I, uint64_t *rs)
{
    model *m = I->m;
    size_t np = m->npend;
    size_t steps;

    if (np + 1 > I->inc_cap) {
        I->inc_cap = (np + 1) * 2;
        I->inc = realloc(I->inc, I->inc_cap);
        cr_assert_not_null(I->inc);
    }
    fill(I, 0, 0);
    try_image(I, "durable", -1, 0, 0, 0);
    if (np == 0)
        return;
    fill(I, np, 1);
    try_image(I, "all", -1, 0, 0, 0);
    /* Each prefix (at most I->prefixes, evenly spaced). */
    steps = np - 1 < I->prefixes ? np - 1 : I->prefixes;
    for (size_t j = 1; j <= steps; j++) {
        size_t p = j * (np - 1) / steps;
        if (p == 0)
            continue;
        fill(I, p, 1);
        try_image(I, "prefix", -1, 0, 0, 0);
    }
    /* A prefix whose last write is torn at a 512-byte boundary. */
    for (int d = 0; d < 3; d++) {
        size_t p = d == 0 ? np : 1 + plc_rnd(rs) % np;
        long w = last_write(m, p);
        const spl_op *op;
        uint64_t keep;
        if (w < 0)
            continue;
        op = spl_op_at(m->pend[w]);
        fill(I, (size_t)w + 1, 1);
        keep =
            op->len > 512 ? 512 * (plc_rnd(rs) % ((op->len + 511) / 512)) : 0;
        try_image(I, "torn", w, keep, 0, 0);
    }
    /* Random subsets: SQLite assumes unsynced writes may reach the disk
     * in any order. */
    for (int d = 0; d < 3; d++) {
        for (size_t i = 0; i < np; i++)
            I->inc[i] = plc_rnd(rs) % 2;
        try_image(I, "subset", -1, 0, 0, 0);
    }
    /* Every unsynced write, no unsynced directory entry. */
    for (size_t i = 0; i < np; i++) {
        int kind = spl_op_at(m->pend[i])->kind;
        I->inc[i] = kind == SPL_WRITE || kind == SPL_TRUNC;
    }
    try_image(I, "no-dir-ops", -1, 0, 0, 0);
    /* Files grown by the pending writes, whose data never came: zeros,
     * or garbage. */
    fill(I, np, 1);
    try_image(I, "fill-zeros", -1, 0, 1, 0);
    try_image(I, "fill-garbage", -1, 0, 2, plc_rnd(rs));
}

/* Counts what the workload's log crossed: syncs of the database file
 * once the WAL was in use (only a checkpoint writes the database then)
 * and deletes of the WAL (the last connection's close). */
static void count_ops(tally *T)
{
    int wal_used = 0;

    T->rounds++;
    if (getenv("EVS_SQLPL_TRACE"))
        for (size_t i = 0; i < spl_nops(); i++) {
            const spl_op *op = spl_op_at(i);
            fprintf(stderr,
                    "op %zu: kind %d file %d node %u off %" PRIu64
                    " len %" PRIu64 "\n",
                    i, op->kind, op->file, op->node, op->off, op->len);
        }
    T->ops += (long)spl_nops();
    for (size_t i = 0; i < spl_nops(); i++) {
        const spl_op *op = spl_op_at(i);
        if (op->file == SPL_WAL && op->kind == SPL_WRITE)
            wal_used = 1;
        else if (op->file == SPL_DB && op->kind == SPL_SYNC && wal_used)
            T->checkpoints++;
        else if (op->file == SPL_WAL && op->kind == SPL_DELETE)
            T->wal_deletes++;
    }
}

/* Runs rounds of the workload in `mode` until `target` distinct images
 * were checked (or 40 rounds). */
static void run_mode(evs_durability mode, long target, int drop_syncs, tally *T)
{
    uint64_t seed = tu_seed("EVS_SQLPL_SEED", "sqlite powerloss");
    long print = tu_env_long("EVS_SQLPL_PRINT", 20);
    long verify_every = tu_env_long("EVS_SQLPL_VERIFY", 25);
    plc_dedup D = {0};

    sqw_install();
    for (int round = 0; round < 40 && T->images < target; round++) {
        sqw_world W;
        checker C = {0};
        imager I = {0};
        model m = {0};
        size_t nops, stride, want;
        uint64_t rs;

        sqw_init(&W, mode, seed + (uint64_t)round * 7919);
        rs = W.seed ^ 0x5a5a;
        cr_assert_eq(spl_record(W.db), 0);
        spl_drop_syncs(drop_syncs);
        run_workload(&W, 70);
        spl_stop();
        nops = spl_nops();
        count_ops(T);
        /* Crash points spread over the whole log, as many as the images
         * still wanted need at some 8 distinct images each. */
        want = (size_t)(target - T->images) / 8 + 1;
        if (want > nops + 1)
            want = nops + 1;
        stride = (nops + 1) / want;
        C.W = &W;
        C.T = T;
        C.print = print;
        I.C = &C;
        I.D = &D;
        I.m = &m;
        I.verify_every = verify_every;
        I.prefixes = (size_t)tu_env_long("EVS_SQLPL_PREFIXES", 16);
        I.scratch = tu_scratch_dir("EVS_POWERLOSS_TMP", "sqlpl-img");
        for (size_t k = plc_rnd(&rs) % stride; k <= nops && T->images < target;
             k += stride) {
            model_advance(&m, k);
            C.k = k;
            T->cuts++;
            images_at(&I, &rs);
        }
        print = C.print;
        tu_rmtree_free(I.scratch);
        image_free(&I.im);
        free(I.inc);
        model_free(&m);
        sqw_free(&W);
    }
    plc_dedup_free(&D);
}

static long share(long percent)
{
    long all = tu_env_long("EVS_SQLPL_IMAGES", DEFAULT_IMAGES);
    return all * percent / 100 > 50 ? all * percent / 100 : 50;
}

static void report(const char *what, const tally *T)
{
    fprintf(stderr,
            "sqlite powerloss %s: %ld workloads (%ld operations, %ld "
            "checkpoints, %ld WAL deletes); %ld distinct images at %ld "
            "crash points, %ld read by evdump verify, %ld without a "
            "database; %ld events read, %ld promised; %ld lost, %ld "
            "invalid, %ld other\n",
            what, T->rounds, T->ops, T->checkpoints, T->wal_deletes, T->images,
            T->cuts, T->verified, T->not_opened, T->events_read, T->promised,
            T->lost, T->invalid, T->other);
    fprintf(stderr, "sqlite powerloss %s: images by kind:", what);
    for (int i = 0; i < 8; i++)
        fprintf(stderr, " %s %ld", kinds[i], T->by_kind[i]);
    fputc('\n', stderr);
}

static void expect_clean(const char *what, const tally *T, long target)
{
    report(what, T);
    cr_expect_geq(T->images, target, "%s: only %ld distinct images", what,
                  T->images);
    cr_expect_gt(T->events_read, 0, "%s: no event was ever read", what);
    cr_expect_gt(T->checkpoints, 0, "%s: no checkpoint was crossed", what);
    cr_expect_gt(T->wal_deletes, 0, "%s: the WAL was never deleted", what);
    cr_expect_gt(T->promised, 0, "%s: nothing was ever promised", what);
    cr_expect_eq(T->lost, 0, "%s: acknowledged data lost", what);
    cr_expect_eq(T->invalid, 0, "%s: invalid data accepted", what);
    cr_expect_eq(T->other, 0, "%s: other violations", what);
}

/* ------------------------------------------------------------------ */
/* Tests                                                              */
/* ------------------------------------------------------------------ */

/* Runs `percent` of EVS_SQLPL_IMAGES in `mode` and expects nothing
 * wrong. */
static void run_clean(evs_durability mode, long percent, const char *what)
{
    tally T = {0};
    long target = share(percent);

    run_mode(mode, target, 0, &T);
    expect_clean(what, &T, target);
}

Test(sqlite_powerloss, full_loses_nothing_acknowledged)
{
    run_clean(EVS_SYNC_FULL, 60, "EVS_SYNC_FULL");
}

Test(sqlite_powerloss, batch_keeps_what_was_synced)
{
    run_clean(EVS_SYNC_BATCH, 20, "EVS_SYNC_BATCH");
}

Test(sqlite_powerloss, none_keeps_what_was_synced)
{
    run_clean(EVS_SYNC_NONE, 20, "EVS_SYNC_NONE");
}

/* The harness can fail: with every sync of the database's files dropped
 * (a backend that acknowledges what it never synced), the images lose
 * acknowledged events and the checker says so. */
Test(sqlite_powerloss, harness_catches_dropped_syncs)
{
    tally T = {0};

    run_mode(EVS_SYNC_FULL, 300, 1, &T);
    report("mutant without syncs", &T);
    cr_assert_gt(T.lost, 0, "the checker found no loss with syncs dropped");
}

/* ------------------------------------------------------------------ */
/* The model itself                                                   */
/* ------------------------------------------------------------------ */

static void raw_exec(sqlite3 *h, const char *sql)
{
    char *err = NULL;

    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, &err), SQLITE_OK, "%s: %s",
                 sql, err ? err : "");
}

/* Rows of table t in the image built from m with inc (all pending
 * operations when `all`, none otherwise, the last write kept to `keep`
 * bytes when torn), opened with plain SQLite; -1 with no database. */
static long rows_in(const model *m, int all, int torn, uint64_t keep)
{
    unsigned char *inc = calloc(m->npend + 1, 1);
    char *scratch = tu_scratch_dir("EVS_POWERLOSS_TMP", "sqlpl-model");
    char path[4400];
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    image im;
    long n = -1;

    cr_assert_not_null(inc);
    memset(&im, 0, sizeof(im));
    memset(inc, all, m->npend);
    image_make(m, inc, torn ? last_write(m, m->npend) : -1, keep, &im);
    image_write(&im, scratch);
    snprintf(path, sizeof(path), "%s/store.db", scratch);
    if (im.present[SPL_DB] &&
        sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "SELECT count(*) FROM t", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    image_free(&im);
    free(inc);
    tu_rmtree_free(scratch);
    return n;
}

/* A commit synced survives; one not synced is lost from the durable
 * image, there in the image where every pending write reached the
 * disk, and lost again when its last WAL write is torn. A new WAL's
 * name is durable only once its directory is synced. */
Test(sqlite_powerloss_model, synced_kept_unsynced_lost_torn_detected)
{
    char *dir = tu_scratch_dir("EVS_POWERLOSS_TMP", "sqlpl-model-run");
    char db[4200];
    sqlite3 *h = NULL;
    model m = {0};
    size_t wal_created = 0, k;

    sqw_install();
    snprintf(db, sizeof(db), "%s/store.db", dir);
    cr_assert_eq(spl_record(db), 0);
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    raw_exec(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
    raw_exec(h, "PRAGMA synchronous=OFF; INSERT INTO t VALUES(2)");
    spl_stop();
    sqlite3_close(h);

    for (k = 0; k < spl_nops(); k++)
        if (spl_op_at(k)->kind == SPL_CREATE && spl_op_at(k)->file == SPL_WAL)
            wal_created = k + 1;
    cr_assert_gt(wal_created, 0, "no WAL was made");
    model_advance(&m, wal_created);
    cr_expect_eq(m.dir[SPL_WAL], 0,
                 "a new WAL's name durable before any "
                 "directory sync");
    model_advance(&m, spl_nops());
    cr_expect_neq(m.dir[SPL_WAL], 0,
                  "the WAL's name not durable after its "
                  "first sync");
    cr_expect_eq(rows_in(&m, 0, 0, 0), 1, "the synced commit, alone");
    cr_expect_eq(rows_in(&m, 1, 0, 0), 2, "every pending write reached");
    cr_expect_eq(rows_in(&m, 1, 1, 0), 1, "the unsynced commit torn");
    model_free(&m);
    tu_rmtree_free(dir);
}
