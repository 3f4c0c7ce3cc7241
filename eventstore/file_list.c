/*
 * file_list.c: listing the executions of a file store (evs_exec_list),
 * from the listing index where it is current and from each snapshot's
 * header line where it is not, with the filter applied as early as the
 * header allows. A trusted index (file_index.c) is listed without looking
 * at the directory at all.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

typedef struct lister {
    evs_store *s;
    evs__index *ix; /* the listing index; NULL if it could not load */
    size_t seen;    /* executions met, filtered or not */
    const evs_list_filter *f;
    int filtered;
    evs_exec_info *items;
    size_t count, cap;
    char *mem; /* arena for the strings */
    size_t used, memcap;
    int err;
} lister;

/* Copies a span into the arena; the spans are fixed up after the arena
 * stops moving, so store offsets for now. */
static int arena_put(lister *L, evs_span in, evs_span *out)
{
    if (EVS__GROW(L->s->alloc, &L->mem, &L->memcap, L->used + in.len) != 0)
        return -ENOMEM;
    if (in.len)
        memcpy(L->mem + L->used, in.ptr, in.len);
    out->ptr = (const char *)(uintptr_t)L->used; /* offset, fixed later */
    out->len = in.len;
    L->used += in.len;
    return 0;
}

static int match(const evs_list_filter *f, const evs_snapshot *sn)
{
    if (f->status.len && !evs__span_eq(f->status, sn->status))
        return 0;
    if (f->workflow_name.len &&
        !evs__span_eq(f->workflow_name, sn->workflow_name))
        return 0;
    if (f->created_after_us && sn->created_at_us < f->created_after_us)
        return 0;
    if (f->created_before_us && sn->created_at_us >= f->created_before_us)
        return 0;
    return 1;
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

/* True when the header's `key` is certainly not the string `want`: the
 * header is canonical, so the first ,"key": is the member itself (a quote
 * inside a string is always escaped), and a plain `want` compares byte
 * for byte. Anything unusual answers "maybe" and the header is decoded. */
static int differs(const char *hdr, size_t hlen, const char *key, evs_span want)
{
    size_t kl = strlen(key);
    const char *p = memmem(hdr, hlen, key, kl), *end = hdr + hlen;

    if (!want.len || !p)
        return 0;
    for (size_t i = 0; i < want.len; i++)
        if (want.ptr[i] == '"' || want.ptr[i] == '\\' ||
            (unsigned char)want.ptr[i] < 0x20)
            return 0;
    p += kl;
    if ((size_t)(end - p) < want.len + 2 || p[0] != '"')
        return 1;
    return memcmp(p + 1, want.ptr, want.len) != 0 || p[want.len + 1] != '"';
}

static int quick_reject(const evs_list_filter *f, const char *hdr, size_t hlen)
{
    return differs(hdr, hlen, ",\"status\":", f->status) ||
           differs(hdr, hlen, ",\"workflow_name\":", f->workflow_name);
}

/* Adds execution name[0..len) to the listing, with what its snapshot's
 * header says (sn, consumed) or nothing (NULL: none could be read). */
static int add_item(lister *L, const char *name, size_t len, evs_snapshot *sn)
{
    evs_store *s = L->s;
    evs_span idsp = {name, len};
    evs_exec_info *it;
    int rc;

    if (EVS__GROW(s->alloc, &L->items, &L->cap, L->count + 1) != 0) {
        evs_snapshot_free(sn);
        return -ENOMEM;
    }
    it = &L->items[L->count];
    memset(it, 0, sizeof(*it));
    rc = arena_put(L, idsp, &it->id);
    if (rc == 0 && sn) {
        it->snapshot_ok = 1;
        it->start_time_us = sn->start_time_us;
        it->end_time_us = sn->end_time_us;
        it->created_at_us = sn->created_at_us;
        it->updated_at_us = sn->updated_at_us;
        it->last_event_seq = sn->last_event_seq;
        rc = arena_put(L, sn->workflow_name, &it->workflow_name);
        if (rc == 0)
            rc = arena_put(L, sn->status, &it->status);
    }
    evs_snapshot_free(sn);
    if (rc != 0)
        return rc;
    L->count++;
    return 0;
}

/* Lists execution name[0..len) from its snapshot on disk, noting what
 * was read in the index being rebuilt (when L->ix). */
static int from_disk(lister *L, const char *name, size_t len)
{
    evs_store *s = L->s;
    evs_snapshot *sn = NULL;
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
        rc = evs__snapshot_decode_header(s, raw, hlen, &sn);
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
        return L->filtered ? 0 : add_item(L, name, len, NULL);
    }
    if (!match(L->f, sn)) {
        evs_snapshot_free(sn);
        return 0;
    }
    return add_item(L, name, len, sn);
}

/* Lists one execution from the header line hdr[0..hlen) the index has
 * for it. */
static int from_header(lister *L, const char *name, size_t len,
                       const char *hdr, size_t hlen)
{
    evs_snapshot *sn = NULL;
    int rc;

    if (quick_reject(L->f, hdr, hlen))
        return 0;
    rc = evs__snapshot_decode_header(L->s, hdr, hlen, &sn);
    if (rc != 0)
        return rc == -ENOMEM ? rc : from_disk(L, name, len);
    if (!match(L->f, sn)) {
        evs_snapshot_free(sn);
        return 0;
    }
    return add_item(L, name, len, sn);
}

/* One entry of a trusted index (evs__index_each); one without a header
 * (the index knows the execution is there, not what its snapshot says)
 * is read from disk. */
static int index_cb(void *arg, const char *id, size_t len, const char *hdr,
                    size_t hlen)
{
    lister *L = arg;
    char name[EVS_ID_MAX + 1]; /* the index's ids are not terminated */

    memcpy(name, id, len);
    name[len] = '\0';
    L->seen++;
    return hlen ? from_header(L, name, len, hdr, hlen)
                : from_disk(L, name, len);
}

/* One entry of the store's directory, when the index is not trusted:
 * the index answers for it with one stat, else its snapshot is read. */
static int list_cb(void *arg, const char *name, size_t len)
{
    lister *L = arg;
    const char *hdr;
    size_t hlen;

    if (!evs_id_valid(name, len))
        return 0; /* temporary, trash and foreign entries */
    L->seen++;
    if (L->ix && evs__index_lookup(L->s, L->ix, name, len, &hdr, &hlen)) {
        evs__index_keep(L->ix, name, len, hdr, hlen, NULL);
        return from_header(L, name, len, hdr, hlen);
    }
    return from_disk(L, name, len);
}

static int info_cmp(const void *pa, const void *pb)
{
    const evs_exec_info *a = pa, *b = pb;
    size_t n;
    int c;

    if (a->created_at_us != b->created_at_us)
        return a->created_at_us < b->created_at_us ? -1 : 1;
    n = a->id.len < b->id.len ? a->id.len : b->id.len;
    c = memcmp(a->id.ptr, b->id.ptr, n);
    if (c)
        return c;
    return a->id.len < b->id.len ? -1 : a->id.len > b->id.len;
}

static void fix_span(evs_span *sp, const char *base)
{
    sp->ptr = sp->len ? base + (uintptr_t)sp->ptr : "";
}

int evs__file_exec_list(evs_store *s, const evs_list_filter *f,
                        evs_exec_listing *out)
{
    lister L;
    evs__dead dead;
    size_t start, n;
    int rc;

    memset(&L, 0, sizeof(L));
    memset(&dead, 0, sizeof(dead));
    L.s = s;
    L.f = f;
    L.filtered = f->status.len || f->workflow_name.len || f->created_after_us ||
                 f->created_before_us;
    if (evs__index_load(s, &L.ix) == -ENOMEM) {
        evs__index_free(s, L.ix);
        L.ix = NULL;
    }
    /* A trusted index is the listing; otherwise the directory is, and
     * the index is rebuilt from it, after which the markers of the
     * writers that had died before it was read can go. */
    if (L.ix && evs__index_trusted(s, L.ix, &dead) == 1) {
        rc = evs__index_each(L.ix, index_cb, &L);
        if (rc == 0)
            evs__index_finish(s, L.ix, L.seen, 0);
    } else {
        rc = IO(s)->listdir(CTX(s), s->dirfd, list_cb, &L);
        if (rc == 0 && L.ix && evs__index_finish(s, L.ix, L.seen, 1) == 1)
            evs__writers_bury(s, &dead);
    }
    evs__index_free(s, L.ix);
    if (rc != 0)
        goto fail;
    /* The arena has stopped moving: turn offsets into pointers. */
    for (size_t i = 0; i < L.count; i++) {
        fix_span(&L.items[i].id, L.mem);
        fix_span(&L.items[i].workflow_name, L.mem);
        fix_span(&L.items[i].status, L.mem);
    }
    if (L.count > 1)
        qsort(L.items, L.count, sizeof(*L.items), info_cmp);
    start = f->offset < L.count ? f->offset : L.count;
    n = L.count - start;
    if (f->limit && n > f->limit)
        n = f->limit;
    if (start && n)
        memmove(L.items, L.items + start, n * sizeof(*L.items));
    out->items = L.items;
    out->count = n;
    out->total = L.count;
    out->mem_ = L.mem;
    out->alloc_ = s->alloc;
    return 0;
fail:
    evs__free(s->alloc, L.items);
    evs__free(s->alloc, L.mem);
    return rc;
}
