/*
 * file_list.c: listing the executions of a file store (evs_exec_list).
 *
 * A trusted listing index (file_index.c) is the listing, without a look
 * at the store's directory. The handle keeps it, parsed, for its next
 * listing, which then reads only the lines appended since. Rows are
 * filtered on what the index read from each header's bytes when it
 * loaded them (decoded where they are not plain).
 *
 * An index that is not trusted is rebuilt: the directory is read, with
 * the index answering for each execution whose snapshot it still matches
 * (one stat) and the snapshot's header read and decoded for the others.
 *
 * Either way each execution that passes the filter is counted and
 * becomes a row holding its id and its header line; for a page only the
 * rows up to its end are kept, in a heap. Only the rows of the page are
 * decoded in full, once sorted.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/* One execution listed: its sort key, id and header line, pointing into
 * the index (which outlives the rows) or into `own`. hdr NULL: no
 * snapshot could be read. */
typedef struct row {
    int64_t created;
    const char *id;
    size_t id_len;
    const char *hdr;
    size_t hlen;
    char *own;
} row;

typedef struct lister {
    evs_store *s;
    evs__index *ix; /* the listing index; NULL if it could not load */
    size_t seen;    /* executions met, filtered or not */
    const evs_list_filter *f;
    int filtered;
    size_t matched; /* executions that passed the filter */
    evs__index_key status_k, workflow_k; /* the filter's */
    /* The rows kept: every match, or when only the first `keep` in order
     * are wanted (a page), those, as a heap whose root is the last. */
    size_t keep;
    row *rows;
    size_t count, cap;
} lister;

static int match_time(const evs_list_filter *f, int64_t created)
{
    return (!f->created_after_us || created >= f->created_after_us) &&
           (!f->created_before_us || created < f->created_before_us);
}

static int match(const evs_list_filter *f, int64_t created, evs_span status,
                 evs_span workflow)
{
    if (f->status.len && !evs__span_eq(f->status, status))
        return 0;
    if (f->workflow_name.len && !evs__span_eq(f->workflow_name, workflow))
        return 0;
    return match_time(f, created);
}

/* Reads the header of execution `name`'s snapshot. Returns 0, 1 when
 * `name` is not an execution directory (skip it), 2 when the directory
 * could not be opened (*dir_err says why), or an error about the
 * snapshot. */
static int read_header(evs_store *s, const char *name, char **hdr, size_t *hlen,
                       evs_stat *st, int *dir_err)
{
    int dfd, rc;

    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0) {
        /* Vanished (deleted meanwhile), or not a directory: no
         * execution. Any other failure fails the listing: an execution
         * is never left out of a listing that succeeds. */
        *dir_err = rc;
        return rc == -ENOENT || rc == -ENOTDIR || rc == -ELOOP ? 1 : 2;
    }
    rc = evs__file_snapshot_header(s, dfd, hdr, hlen, st, NULL);
    IO(s)->close(CTX(s), dfd);
    return rc;
}

static int row_cmp(const void *pa, const void *pb)
{
    const row *a = pa, *b = pb;
    size_t n;
    int c;

    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    n = a->id_len < b->id_len ? a->id_len : b->id_len;
    c = memcmp(a->id, b->id, n);
    if (c)
        return c;
    return a->id_len < b->id_len ? -1 : a->id_len > b->id_len;
}

/* Moves the row at i down the heap of rows[0..n) (the largest at the
 * root) to where it belongs. */
static void sift_down(row *rows, size_t n, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        row t;
        if (c >= n)
            return;
        if (c + 1 < n && row_cmp(&rows[c + 1], &rows[c]) > 0)
            c++;
        if (row_cmp(&rows[c], &rows[i]) <= 0)
            return;
        t = rows[c];
        rows[c] = rows[i];
        rows[i] = t;
        i = c;
    }
}

static void sift_up(row *rows, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        row t;
        if (row_cmp(&rows[p], &rows[i]) >= 0)
            return;
        t = rows[p];
        rows[p] = rows[i];
        rows[i] = t;
        i = p;
    }
}

/* Adds a row for execution id[0..len) with header hdr[0..hlen) (NULL:
 * none), created at `created`: among the rows kept, or not at all when
 * only a page is wanted and L->keep rows come before it. With `copy`,
 * the row keeps copies of both (they will not outlive the call). */
static int add_row(lister *L, const char *id, size_t len, const char *hdr,
                   size_t hlen, int64_t created, int copy)
{
    row *r, cand;

    L->matched++;
    memset(&cand, 0, sizeof(cand));
    cand.created = created;
    cand.id = id;
    cand.id_len = len;
    if (L->keep && L->count == L->keep) {
        if (row_cmp(&cand, &L->rows[0]) >= 0)
            return 0;
        evs__free(L->s->alloc, L->rows[0].own);
        r = &L->rows[0]; /* replaces the root, then sinks */
    } else {
        if (EVS__GROW(L->s->alloc, &L->rows, &L->cap, L->count + 1) != 0)
            return -ENOMEM;
        r = &L->rows[L->count];
    }
    *r = cand;
    if (copy) {
        /* On failure the listing fails: a root replaced holds no copy
         * to free, and is never read. */
        if (!(r->own = evs__malloc(L->s->alloc, len + hlen + 1)))
            return -ENOMEM;
        memcpy(r->own, id, len);
        if (hdr)
            memcpy(r->own + len, hdr, hlen);
        id = r->own;
        hdr = hdr ? r->own + len : NULL;
    }
    r->id = id;
    r->hdr = hdr;
    r->hlen = hdr ? hlen : 0;
    if (!L->keep)
        L->count++;
    else if (r == &L->rows[L->count])
        sift_up(L->rows, L->count++);
    else
        sift_down(L->rows, L->count, 0);
    return 0;
}

/* Lists one execution from header line hdr[0..hlen), decoding it: 0 when
 * it is added or filtered out, 1 when the header does not decode (then
 * read the snapshot), or -ENOMEM. With `copy`, the row keeps copies. */
static int from_header(lister *L, const char *name, size_t len,
                       const char *hdr, size_t hlen, int copy)
{
    evs_snapshot *sn = NULL;
    int64_t created;
    int rc;

    rc = evs__snapshot_decode_header(L->s, hdr, hlen, &sn);
    if (rc != 0)
        return rc == -ENOMEM ? rc : 1;
    created = sn->created_at_us;
    rc = match(L->f, created, sn->status, sn->workflow_name);
    evs_snapshot_free(sn);
    return rc ? add_row(L, name, len, hdr, hlen, created, copy) : 0;
}

/* Lists execution `name` (NUL-terminated) from its snapshot on disk,
 * noting what was read in the index being rebuilt (when L->ix). */
static int from_disk(lister *L, const char *name, size_t len)
{
    evs_store *s = L->s;
    char *raw = NULL;
    size_t hlen;
    evs_stat st;
    int dir_err = 0, rc;

    rc = read_header(s, name, &raw, &hlen, &st, &dir_err);
    if (rc == 1)
        return 0;
    if (rc == 2)
        return dir_err;
    if (rc == 0) {
        rc = from_header(L, name, len, raw, hlen, 1);
        if (rc == 0 && L->ix)
            evs__index_keep(L->ix, name, len, raw, hlen, &st);
    }
    evs__free(s->alloc, raw);
    if (rc == -ENOMEM)
        return rc;
    if (rc != 0) {
        /* A husk is not an execution (evs__is_husk); any other is
         * listed without what its snapshot would say. */
        if (evs__is_husk(s, name))
            return 0;
        if (L->ix)
            evs__index_keep_bare(L->ix, name, len);
        return L->filtered ? 0 : add_row(L, name, len, NULL, 0, 0, 1);
    }
    return 0;
}

/* One entry of a trusted index (evs__index_each), filtered on what the
 * index read from its header's bytes, which the index line's checksum
 * covered (decoded when they were not plain); one without a header (the
 * index knows the execution is there, not what its snapshot says) is
 * read from disk. */
static int index_cb(void *arg, const evs__index_row *r)
{
    lister *L = arg;
    char name[EVS_ID_MAX + 1]; /* the index's ids are not terminated */
    int rc;

    L->seen++;
    /* On the row's keys: the rows are read in order, the header bytes
     * they point to are all over the index. */
    if (r->hlen && r->plain) {
        const evs_list_filter *f = L->f;
        if ((f->status.len && !evs__index_key_eq(&r->status_k, r->status,
                                                 &L->status_k, f->status)) ||
            (f->workflow_name.len &&
             !evs__index_key_eq(&r->workflow_k, r->workflow, &L->workflow_k,
                                f->workflow_name)) ||
            !match_time(f, r->created))
            return 0;
        return add_row(L, r->id, r->id_len, r->hdr, r->hlen, r->created, 0);
    }
    if (r->hlen && (rc = from_header(L, r->id, r->id_len, r->hdr, r->hlen,
                                     0)) != 1)
        return rc;
    memcpy(name, r->id, r->id_len);
    name[r->id_len] = '\0';
    return from_disk(L, name, r->id_len);
}

/* One entry of the store's directory, when the index is not trusted:
 * the index answers for it with one stat, else its snapshot is read. */
static int list_cb(void *arg, const char *name, size_t len)
{
    lister *L = arg;
    const char *hdr;
    size_t hlen;
    int rc;

    if (!evs_id_valid(name, len))
        return 0; /* temporary, trash and foreign entries */
    L->seen++;
    if (L->ix && evs__index_lookup(L->s, L->ix, name, len, &hdr, &hlen)) {
        evs__index_keep(L->ix, name, len, hdr, hlen, NULL);
        /* The index outlives the rows, but not the directory's name. */
        if ((rc = from_header(L, name, len, hdr, hlen, 1)) != 1)
            return rc;
    }
    return from_disk(L, name, len);
}

/* The arena of a listing's strings: each item's id, workflow name and
 * status, one after the other. */
static int put(char **mem, size_t *used, evs_span in, evs_span *out)
{
    memcpy(*mem + *used, in.ptr, in.len);
    out->ptr = *mem + *used;
    out->len = in.len;
    *used += in.len;
    return 0;
}

/* Turns rows r[0..n) into out's items, decoding their headers. */
static int finish_rows(evs_store *s, const row *r, size_t n,
                       evs_exec_listing *out)
{
    evs_exec_info *items = NULL;
    char *mem = NULL;
    size_t need = 1, used = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        need += r[i].id_len + r[i].hlen; /* the header bounds its strings */
    if ((n && !(items = evs__calloc(s->alloc, n * sizeof(*items)))) ||
        !(mem = evs__malloc(s->alloc, need))) {
        evs__free(s->alloc, items);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        evs_exec_info *it = &items[i];
        evs_snapshot *sn = NULL;
        put(&mem, &used, (evs_span){r[i].id, r[i].id_len}, &it->id);
        it->workflow_name = it->status = (evs_span){"", 0};
        if (!r[i].hdr)
            continue;
        rc = evs__snapshot_decode_header(s, r[i].hdr, r[i].hlen, &sn);
        if (rc != 0) {
            rc = rc == -ENOMEM ? rc : 0; /* was read: cannot happen */
            continue;
        }
        it->snapshot_ok = 1;
        it->start_time_us = sn->start_time_us;
        it->end_time_us = sn->end_time_us;
        it->created_at_us = sn->created_at_us;
        it->updated_at_us = sn->updated_at_us;
        it->last_event_seq = sn->last_event_seq;
        put(&mem, &used, sn->workflow_name, &it->workflow_name);
        put(&mem, &used, sn->status, &it->status);
        evs_snapshot_free(sn);
    }
    if (rc != 0) {
        evs__free(s->alloc, items);
        evs__free(s->alloc, mem);
        return rc;
    }
    out->items = items;
    out->count = n;
    out->mem_ = mem;
    out->alloc_ = s->alloc;
    return 0;
}

/* Pages no deeper than this are kept in a heap while listing; a deeper
 * one sorts every match. */
#define HEAP_MAX 4096

/* The listing index this handle's last listing read, taken so that no
 * other listing uses it meanwhile (NULL: none, or another has it). */
static evs__index *index_take(evs_store *s)
{
    evs__index *ix;

    pthread_mutex_lock(&s->ixmu);
    ix = s->ix;
    s->ix = NULL;
    pthread_mutex_unlock(&s->ixmu);
    return ix;
}

/* Keeps a trusted index for the next listing (or frees it, when another
 * listing kept one meanwhile). */
static void index_give_back(evs_store *s, evs__index *ix)
{
    pthread_mutex_lock(&s->ixmu);
    if (!s->ix) {
        s->ix = ix;
        ix = NULL;
    }
    pthread_mutex_unlock(&s->ixmu);
    evs__index_free(s, ix);
}

int evs__file_exec_list(evs_store *s, const evs_list_filter *f,
                        evs_exec_listing *out)
{
    lister L;
    evs__dead dead;
    size_t start, n;
    int rc, kept = 0;

    memset(&L, 0, sizeof(L));
    memset(&dead, 0, sizeof(dead));
    L.s = s;
    L.f = f;
    L.filtered = f->status.len || f->workflow_name.len || f->created_after_us ||
                 f->created_before_us;
    evs__index_key_make(f->status, &L.status_k);
    evs__index_key_make(f->workflow_name, &L.workflow_k);
    if (f->limit && f->offset < HEAP_MAX && f->limit <= HEAP_MAX - f->offset)
        L.keep = f->offset + f->limit;
    L.ix = index_take(s);
    if (evs__index_load(s, &L.ix) == -ENOMEM) {
        evs__index_free(s, L.ix);
        L.ix = NULL;
    }
    /* A trusted index is the listing (and is kept for the next, unless
     * this one rewrote it); otherwise the directory is, and the index is
     * rebuilt from it, after which the markers of the writers that had
     * died before it was read can go. */
    if (L.ix && evs__index_trusted(s, L.ix, &dead) == 1) {
        rc = evs__index_each(L.ix, index_cb, &L);
        kept = rc != 0 || evs__index_finish(s, L.ix, L.seen, 0) != 1;
    } else {
        rc = IO(s)->listdir(CTX(s), s->dirfd, list_cb, &L);
        if (rc == 0 && L.ix && evs__index_finish(s, L.ix, L.seen, 1) == 1)
            evs__writers_bury(s, &dead);
    }
    if (rc == 0) {
        if (L.count > 1)
            qsort(L.rows, L.count, sizeof(*L.rows), row_cmp);
        start = f->offset < L.count ? f->offset : L.count;
        n = L.count - start;
        if (f->limit && n > f->limit)
            n = f->limit;
        rc = finish_rows(s, L.rows + start, n, out);
        out->total = L.matched;
    }
    for (size_t i = 0; i < L.count; i++)
        evs__free(s->alloc, L.rows[i].own);
    evs__free(s->alloc, L.rows);
    if (kept)
        index_give_back(s, L.ix);
    else
        evs__index_free(s, L.ix);
    return rc;
}
