/*
 * gc.c: applying the store's retention policy (evs_store_gc,
 * evstore/gc.h), which `evdump gc` runs once and `evrun serve` runs
 * every gc.interval.
 *
 * One listing (from the index) gives every execution's status and end;
 * only the expired ones and, when there are any, the kept ones' first
 * events (for their lineage) are read beyond it. Deletions go newest
 * first, so that an execution left alone (locked, out of date) can still
 * protect its ancestors, which come after it; and they go in batches
 * that share one fsync of the store directory, which is what a delete
 * costs most (bench/scen_gc.c).
 */
#include "evstore/archive.h"
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

/* Deletions made durable by one fsync of the store directory. */
#define BATCH 256

typedef struct gc_run {
    evs_store *s;
    const evs_gc_opts *o;
    evs_gc_result *res;
    evs_error_info *ei;
    const char *archive; /* retention.archive, or NULL */
    evs_exec_listing l;
    unsigned char *expired, *kept; /* per listing item */
    int64_t *retain;
    uint32_t *slots; /* id -> item + 1; 0 empty */
    size_t nslots;
    int first_err;
} gc_run;

static const char *const ended[] = {"completed", "failed", "terminated",
                                    "continued"};
static const char *const retention_key[] = {
    EVS_SET_RETENTION_COMPLETED, EVS_SET_RETENTION_FAILED,
    EVS_SET_RETENTION_TERMINATED, EVS_SET_RETENTION_CONTINUED};

void evs_gc_opts_init(evs_gc_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
}

/* ------------------------------------------------------------------ */
/* Ids to listing items                                               */
/* ------------------------------------------------------------------ */

static size_t slot_of(const gc_run *g, evs_span id)
{
    return (size_t)evs_checksum(id.ptr, id.len) & (g->nslots - 1);
}

static int map_build(gc_run *g)
{
    size_t n = g->l.count;

    g->nslots = 16;
    while (g->nslots < n * 2)
        g->nslots *= 2;
    if (!(g->slots = evs__calloc(g->s->alloc, g->nslots * sizeof(*g->slots))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t k = slot_of(g, g->l.items[i].id);
        while (g->slots[k])
            k = (k + 1) & (g->nslots - 1);
        g->slots[k] = (uint32_t)i + 1;
    }
    return 0;
}

/* The listing item of `id`, or SIZE_MAX. */
static size_t map_find(const gc_run *g, evs_span id)
{
    size_t k = slot_of(g, id);

    for (; g->slots[k]; k = (k + 1) & (g->nslots - 1))
        if (evs__span_eq(g->l.items[g->slots[k] - 1].id, id))
            return g->slots[k] - 1;
    return SIZE_MAX;
}

/* ------------------------------------------------------------------ */
/* Lineage                                                            */
/* ------------------------------------------------------------------ */

/* The execution that `id` continues or retries (execution_started's
 * lineage: continued_from, else retry_of; FORMAT.md §6), into origin
 * (NUL-terminated, "" for none). Returns 0 or what reading the log
 * returns. */
static int read_origin(evs_store *s, evs_span id, char origin[EVS_ID_MAX + 1])
{
    static const char *const links[] = {"continued_from", "retry_of"};
    evs_cursor *cur = NULL;
    evs_log *log = NULL;
    evs_span lin, v;
    evs_event ev;
    size_t n;
    int rc;

    origin[0] = '\0';
    if ((rc = evs_log_open(s, id.ptr, id.len, 0, &log, NULL, NULL)) != 0)
        return rc;
    if ((rc = evs_cursor_open(log, 1, 1, &cur, NULL)) == 0 &&
        (rc = evs_cursor_next(cur, &ev, NULL, NULL)) == 1) {
        rc = 0;
        if (evs__span_eq_cstr(ev.event_type, EVS_EV_EXECUTION_STARTED) &&
            evs__json_get(ev.data, "lineage", &lin) == 1)
            for (size_t i = 0; i < 2 && !origin[0]; i++) {
                if (evs__json_get(lin, links[i], &v) != 1 || v.len < 2 ||
                    v.ptr[0] != '"' || v.len - 2 > EVS_ID_MAX * 6)
                    continue;
                char buf[EVS_ID_MAX * 6];
                n = evs__json_unescape(v.ptr + 1, v.len - 2, buf);
                if (n != (size_t)-1 && n <= EVS_ID_MAX) {
                    memcpy(origin, buf, n);
                    origin[n] = '\0';
                }
            }
    }
    evs_cursor_close(cur);
    evs_log_close(log);
    return rc;
}

/*
 * Keeps the expired ancestors of item i, which is kept: up its lineage
 * for as long as the ancestors are expired ones not yet kept (a kept
 * ancestor looks after its own). A lineage that cannot be read keeps
 * nothing more: its execution is kept anyway, and so is its own record.
 */
static void protect_ancestors(gc_run *g, size_t i)
{
    char origin[EVS_ID_MAX + 1];
    size_t hops = 0, up;

    while (hops++ < g->l.count &&
           read_origin(g->s, g->l.items[i].id, origin) == 0 && origin[0]) {
        up = map_find(g, evs_span_cstr(origin));
        if (up == SIZE_MAX || !g->expired[up] || g->kept[up])
            return;
        g->kept[up] = 1;
        i = up;
    }
}

/* ------------------------------------------------------------------ */
/* Deleting                                                           */
/* ------------------------------------------------------------------ */

static void report(gc_run *g, size_t i, evs_gc_action action, int err)
{
    const evs_exec_info *x = &g->l.items[i];
    evs_gc_item it;

    switch (action) {
    case EVS_GC_DELETED: g->res->deleted++; break;
    case EVS_GC_KEPT_LINEAGE: g->res->kept_lineage++; break;
    case EVS_GC_SKIPPED: g->res->skipped++; break;
    case EVS_GC_FAILED:
        g->res->failed++;
        if (!g->first_err)
            g->first_err = err;
        break;
    }
    if (!g->o->on_item)
        return;
    it.id = x->id;
    it.status = x->status;
    it.workflow_name = x->workflow_name;
    it.ended_us = x->end_time_us ? x->end_time_us : x->updated_at_us;
    it.retain_us = g->retain[i];
    it.action = action;
    it.err = err;
    g->o->on_item(g->o->ctx, &it);
}

/*
 * Archives execution `id` into directory `dir`, then deletes it
 * (evs_archive_exec, archive.h): the bundle is written, fsynced, renamed
 * into place and read back before the execution goes, under its writer
 * lock, so that a crash in between leaves the execution or a verified
 * bundle, never neither; the record it leaves in STORE/.archived/ is
 * what lineage names an archived ancestor by. The first failure's
 * detail goes to `ei` (if it holds none yet) and to the log hook.
 */
static int archive_then_delete(evs_store *s, evs_span id, const char *dir,
                               evs_error_info *ei)
{
    char name[EVS_ID_MAX + 1];
    evs_archive_opts ao;
    evs_error_info e;
    int rc;

    memcpy(name, id.ptr, id.len);
    name[id.len] = '\0';
    evs_archive_opts_init(&ao);
    ao.delete_after = 1;
    rc = evs_archive_exec(s, name, dir, &ao, NULL, &e);
    if (rc != 0 && rc != EVS_ELOCKED) {
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.execution = name, .err = rc),
                  "gc: not archived into %s, so not deleted: %s", dir, e.msg);
        if (ei && ei->code == 0)
            *ei = e;
    }
    return rc;
}

typedef struct batch {
    evs__trashed t[BATCH];
    size_t item[BATCH];
    size_t n;
} batch;

/* Makes the batch's deletions durable, then reports them. */
static void flush(gc_run *g, batch *b)
{
    int rc = g->s->ops->trash_commit(g->s, b->t, b->n);

    for (size_t k = 0; k < b->n; k++)
        report(g, b->item[k], rc == 0 ? EVS_GC_DELETED : EVS_GC_FAILED, rc);
    if (rc == EVS_ELEASE) /* a database's batch: rolled back whole */
        evs__log(g->s, EVS_LOG_WARN,
                 "gc: %zu deletions not done: a writer claimed one of "
                 "them meanwhile; they are left for the next gc",
                 b->n);
    else if (rc != 0)
        evs__log(g->s, EVS_LOG_ERROR,
                 "gc: syncing the store directory after %zu deletions "
                 "failed (%s): they may come back after a crash, and are "
                 "left for cleanup",
                 b->n, evs_strerror(rc));
    b->n = 0;
}

/* Deletes expired item i, or says why not. */
static void dispose(gc_run *g, batch *b, size_t i)
{
    const evs_exec_info *x = &g->l.items[i];
    char name[EVS_ID_MAX + 1];
    int rc;

    if (g->kept[i]) {
        report(g, i, EVS_GC_KEPT_LINEAGE, 0);
        return;
    }
    if (g->o->dry_run) {
        report(g, i, EVS_GC_DELETED, 0);
        return;
    }
    if (g->archive) {
        rc = archive_then_delete(g->s, x->id, g->archive, g->ei);
        /* A writer at work on it: left for the next gc, as below. */
        report(g, i,
               rc == 0               ? EVS_GC_DELETED
               : rc == EVS_ELOCKED ? EVS_GC_SKIPPED
                                     : EVS_GC_FAILED,
               rc);
        return;
    }
    memcpy(name, x->id.ptr, x->id.len);
    name[x->id.len] = '\0';
    rc = g->s->ops->exec_trash(g->s, name, x->last_event_seq, &b->t[b->n]);
    if (rc == 0) {
        b->item[b->n++] = i;
        if (b->n == BATCH)
            flush(g, b);
        return;
    }
    if (rc == EVS_ELOCKED || rc == EVS_ESTALE || rc == -ENOENT) {
        /* Left as it is: what it descends from stays with it. */
        report(g, i, EVS_GC_SKIPPED, rc);
        if (!g->archive)
            protect_ancestors(g, i);
        return;
    }
    report(g, i, EVS_GC_FAILED, rc);
    if (!g->archive)
        protect_ancestors(g, i);
}

/* ------------------------------------------------------------------ */
/* The policy                                                         */
/* ------------------------------------------------------------------ */

/* Marks the ended executions past their status's retention. Returns how
 * many. */
static size_t mark_expired(gc_run *g, const int64_t keep[4], int64_t now)
{
    size_t n = 0;

    for (size_t i = 0; i < g->l.count; i++) {
        const evs_exec_info *x = &g->l.items[i];
        int64_t end = x->end_time_us ? x->end_time_us : x->updated_at_us;

        if (!x->snapshot_ok)
            continue; /* no trustworthy status: never on a guess */
        for (size_t k = 0; k < 4; k++) {
            if (!evs__span_eq_cstr(x->status, ended[k]))
                continue;
            g->retain[i] = keep[k];
            if (keep[k] != EVS_DURATION_NEVER && end > 0 &&
                now - end >= keep[k]) {
                g->expired[i] = 1;
                n++;
            }
        }
    }
    return n;
}

static int load_policy(gc_run *g, int64_t keep[4], evs_settings **own)
{
    const evs_settings *st = g->o->settings;
    const char *dir;
    int rc;

    if (!st) {
        if ((rc = evs_settings_load(g->s, own, g->ei)) != 0)
            return rc;
        st = *own;
    }
    for (size_t k = 0; k < 4; k++)
        if ((rc = evs_settings_duration(st, retention_key[k], &keep[k])) != 0)
            return rc;
    if ((rc = evs_settings_get(st, EVS_SET_RETENTION_ARCHIVE, &dir, NULL,
                               g->ei)) != 0)
        return rc;
    g->archive = dir[0] ? dir : NULL;
    if (g->archive && !g->o->dry_run) {
        /* A directory that is not there would fail every execution
         * alike: said once, before anything is touched. */
        int fd = -1;

        rc = g->s->io->openat(g->s->io->ctx, AT_FDCWD, g->archive,
                              O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &fd);
        if (rc != 0) {
            evs__error_set(g->ei, rc, "settings",
                           "retention.archive names %s: %s; nothing is "
                           "deleted",
                           g->archive, evs_strerror(rc));
            return rc;
        }
        g->s->io->close(g->s->io->ctx, fd);
    }
    return 0;
}

int evs_store_gc(evs_store *s, const evs_gc_opts *opts, evs_gc_result *res,
                 evs_error_info *ei)
{
    evs_settings *own = NULL;
    evs_gc_result dummy;
    evs_gc_opts o;
    batch *b = NULL;
    gc_run g;
    int64_t keep[4], now;
    size_t n, oldest = SIZE_MAX;
    int rc;

    evs_error_info_clear(ei);
    memset(&g, 0, sizeof(g));
    res = res ? res : &dummy;
    memset(res, 0, sizeof(*res));
    evs_gc_opts_init(&o);
    if (!s || (opts && evs__opts_read(&o, sizeof(o), opts,
                                      EVS__OPTS_SIZE(evs_gc_opts, ctx)) != 0))
        return -EINVAL;
    g.s = s;
    g.o = &o;
    g.res = res;
    g.ei = ei;
    now = o.now_us ? o.now_us : evs_now_us();
    if ((rc = load_policy(&g, keep, &own)) != 0)
        goto out;
    if ((rc = evs_exec_list(s, NULL, &g.l)) != 0) {
        evs__error_set(ei, rc, "", "listing the store: %s", evs_strerror(rc));
        goto out;
    }
    res->executions = g.l.count;
    n = g.l.count ? g.l.count : 1;
    g.expired = evs__calloc(s->alloc, n);
    g.kept = evs__calloc(s->alloc, n);
    g.retain = evs__calloc(s->alloc, n * sizeof(*g.retain));
    b = evs__malloc(s->alloc, sizeof(*b));
    if (!g.expired || !g.kept || !g.retain || !b) {
        rc = -ENOMEM;
        goto out;
    }
    b->n = 0;
    if ((res->expired = mark_expired(&g, keep, now)) == 0)
        goto out;
    if ((rc = map_build(&g)) != 0)
        goto out;
    /* An archived ancestor leaves a record lineage can name; a deleted
     * one would not, so without archival the kept executions keep their
     * expired ancestors. Only one created after the oldest expired
     * execution can descend from one (a successor or a retry is created
     * after its origin). */
    for (size_t i = 0; i < g.l.count && !g.archive; i++) {
        if (g.expired[i] && oldest == SIZE_MAX)
            oldest = i;
        if (!g.expired[i] && oldest != SIZE_MAX)
            protect_ancestors(&g, i);
    }
    for (size_t i = g.l.count; i-- > 0;)
        if (g.expired[i])
            dispose(&g, b, i);
    flush(&g, b);
    rc = g.first_err;
    if (rc != 0 && ei && ei->code == 0)
        evs__error_set(ei, rc, "", "deleting expired executions: %s",
                       evs_strerror(rc));
out:
    evs__free(s->alloc, b);
    evs__free(s->alloc, g.slots);
    evs__free(s->alloc, g.expired);
    evs__free(s->alloc, g.kept);
    evs__free(s->alloc, g.retain);
    evs_exec_list_free(&g.l);
    evs_settings_free(own);
    return evs__error_rc(ei, rc);
}
