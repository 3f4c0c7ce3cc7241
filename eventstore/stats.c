/*
 * stats.c: the store's statistics (evs_store_stats_get, evstore/gc.h),
 * which `evdump stats` prints: counts by status and workflow from the
 * listing index, and for each execution what its directory shows (the
 * backend's exec_usage: the log's size and last sequence, cut tails).
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>

typedef evs_stats_count tally;

typedef struct per_exec {
    size_t item;
    uint64_t events, bytes;
} per_exec;

/* Adds one to name's count in *v (a short list: statuses, workflows). */
static int tally_add(const evs_allocator *a, tally **v, size_t *n, size_t *cap,
                     evs_span name)
{
    for (size_t i = 0; i < *n; i++)
        if (evs__span_eq((*v)[i].name, name)) {
            (*v)[i].count++;
            return 0;
        }
    if (EVS__GROW(a, v, cap, *n + 1) != 0)
        return -ENOMEM;
    (*v)[*n].name = name;
    (*v)[*n].count = 1;
    (*n)++;
    return 0;
}

static int span_cmp(evs_span a, evs_span b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;

    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int tally_cmp(const void *pa, const void *pb)
{
    const tally *a = pa, *b = pb;

    if (a->count != b->count)
        return a->count < b->count ? 1 : -1;
    return span_cmp(a->name, b->name);
}

static int u64_cmp(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;

    return (a > b) - (a < b);
}

static int bytes_desc(const void *pa, const void *pb)
{
    const per_exec *a = pa, *b = pb;

    if (a->bytes != b->bytes)
        return a->bytes < b->bytes ? 1 : -1;
    return (a->item > b->item) - (a->item < b->item);
}

/* The value at quantile q (0..1) of sorted v[0..n): nearest rank. */
static uint64_t quantile(const uint64_t *v, size_t n, double q)
{
    size_t r;

    if (n == 0)
        return 0;
    r = (size_t)(q * (double)n + 0.999999);
    r = r ? r - 1 : 0;
    return v[r < n ? r : n - 1];
}

/* The private memory of a stats: the listing its spans point into. */
typedef struct stats_mem {
    evs_exec_listing l;
} stats_mem;

void evs_store_stats_free(evs_store_stats *st)
{
    stats_mem *m;

    if (!st)
        return;
    if ((m = st->mem_) != NULL)
        evs_exec_list_free(&m->l);
    evs__free(st->alloc_, st->by_status);
    evs__free(st->alloc_, st->by_workflow);
    evs__free(st->alloc_, st->largest);
    evs__free(st->alloc_, m);
    memset(st, 0, sizeof(*st));
}

int evs_store_stats_get(evs_store *s, size_t top, evs_store_stats *out)
{
    const evs_allocator *a;
    tally *ts = NULL, *tw = NULL;
    size_t ns = 0, cs = 0, nw = 0, cw = 0, n;
    uint64_t *ev = NULL, *by = NULL;
    per_exec *pe = NULL;
    stats_mem *m;
    char name[EVS_ID_MAX + 1];
    int rc;

    if (!s || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    a = s->alloc;
    out->alloc_ = a;
    if (!(m = evs__calloc(a, sizeof(*m))))
        return -ENOMEM;
    out->mem_ = m;
    if ((rc = evs_exec_list(s, NULL, &m->l)) != 0)
        goto out;
    n = m->l.count;
    out->executions = n;
    pe = evs__calloc(a, (n ? n : 1) * sizeof(*pe));
    ev = evs__calloc(a, (n ? n : 1) * sizeof(*ev));
    by = evs__calloc(a, (n ? n : 1) * sizeof(*by));
    if (!pe || !ev || !by) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const evs_exec_info *x = &m->l.items[i];
        evs__usage u;

        if (!x->snapshot_ok)
            out->unreadable++;
        if ((rc = tally_add(a, &ts, &ns, &cs,
                            x->snapshot_ok ? x->status
                                           : evs_span_cstr("?"))) != 0 ||
            (x->snapshot_ok &&
             (rc = tally_add(a, &tw, &nw, &cw, x->workflow_name)) != 0))
            goto out;
        memcpy(name, x->id.ptr, x->id.len);
        name[x->id.len] = '\0';
        if (s->ops->exec_usage(s, name, &u) != 0) {
            out->unreadable_logs++;
            memset(&u, 0, sizeof(u));
        } else if (x->snapshot_ok && x->last_event_seq < u.events) {
            out->stale_snapshots++;
        }
        pe[i] = (per_exec){i, u.events, u.bytes};
        ev[i] = u.events;
        by[i] = u.bytes;
        out->events += u.events;
        out->bytes += u.bytes;
        out->cut_files += u.cut_files;
        out->cut_bytes += u.cut_bytes;
        out->cut_executions += u.cut_files > 0;
    }
    /* qsort of a NULL array is undefined, even of 0 elements. */
    if (n) {
        qsort(ev, n, sizeof(*ev), u64_cmp);
        qsort(by, n, sizeof(*by), u64_cmp);
    }
    out->events_p50 = quantile(ev, n, 0.50);
    out->events_p99 = quantile(ev, n, 0.99);
    out->events_max = n ? ev[n - 1] : 0;
    out->bytes_p50 = quantile(by, n, 0.50);
    out->bytes_p99 = quantile(by, n, 0.99);
    out->bytes_max = n ? by[n - 1] : 0;
    if (ns)
        qsort(ts, ns, sizeof(*ts), tally_cmp);
    if (nw)
        qsort(tw, nw, sizeof(*tw), tally_cmp);
    out->by_status = ts;
    out->n_status = ns;
    out->by_workflow = tw;
    out->n_workflow = nw;
    ts = tw = NULL;
    top = top < n ? top : n;
    if (top) {
        qsort(pe, n, sizeof(*pe), bytes_desc);
        if (!(out->largest = evs__calloc(a, top * sizeof(*out->largest)))) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t k = 0; k < top; k++) {
            const evs_exec_info *x = &m->l.items[pe[k].item];
            out->largest[k] = (evs_stats_exec){x->id, x->status,
                                               x->workflow_name, pe[k].events,
                                               pe[k].bytes};
        }
        out->n_largest = top;
    }
    rc = s->ops->archived_count(s, &out->archived);
out:
    evs__free(a, ts);
    evs__free(a, tw);
    evs__free(a, pe);
    evs__free(a, ev);
    evs__free(a, by);
    if (rc != 0)
        evs_store_stats_free(out);
    return rc;
}
