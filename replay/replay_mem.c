/*
 * replay_mem.c: the replayer's memory: an arena for the strings and JSON
 * values of the state, growable arrays, and hash indexes into them.
 */
#include "replay_int.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

/* Arena chunks start small, so that a small state takes little memory,
 * and double up to CHUNK_MAX, so that a large one is a few dozen
 * allocations instead of thousands. */
#define CHUNK_MIN ((size_t)64 << 10)
#define CHUNK_MAX ((size_t)16 << 20)

/* The state of a long history is hundreds of MiB that replay fills once,
 * front to back: faulting it in 4 KiB pages cost a seventh of replay's
 * time (P5). Blocks this large ask the kernel for transparent huge pages
 * (only advice: with THP off, or another allocator, nothing changes; an
 * error is of no consequence). Only the C library's allocator is
 * advised: memory of a caller's allocator is the caller's business. */
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)

static void advise_large(const evs_replay *r, void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~(HUGE_PAGE - 1);

    if (r->alloc == NULL && n >= HUGE_MIN && b > a)
        (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
    (void)r;
    (void)p;
    (void)n;
#endif
}

int evs__rp_copy(evs_replay *r, evs_span in, evs_span *out)
{
    arena_chunk *c = r->arena;

    if (in.len == 0) {
        out->ptr = "";
        out->len = 0;
        return 0;
    }
    if (!c || c->cap - c->used < in.len) {
        size_t cap = c ? c->cap * 2 : CHUNK_MIN;
        if (cap > CHUNK_MAX)
            cap = CHUNK_MAX;
        if (cap < in.len)
            cap = in.len;
        c = evs__malloc(r->alloc, sizeof(*c) + cap);
        if (!c)
            return -ENOMEM;
        advise_large(r, c, sizeof(*c) + cap);
        c->next = r->arena;
        c->used = 0;
        c->cap = cap;
        r->arena = c;
    }
    memcpy(c->data + c->used, in.ptr, in.len);
    out->ptr = c->data + c->used;
    out->len = in.len;
    c->used += in.len;
    r->arena_bytes += in.len;
    return 0;
}

int evs__rp_copy_str(evs_replay *r, evs_span v, evs_span *out)
{
    arena_chunk *c;
    evs_span body;
    size_t n;
    int rc;

    if (v.len < 2 || v.ptr[0] != '"' || v.ptr[v.len - 1] != '"')
        return EVS_EPARSE;
    body.ptr = v.ptr + 1;
    body.len = v.len - 2;
    if (!memchr(body.ptr, '\\', body.len))
        return evs__rp_copy(r, body, out);
    /* Unescaping never grows: copy, then unescape in place. */
    if ((rc = evs__rp_copy(r, body, out)) != 0)
        return rc;
    n = evs__json_unescape(body.ptr, body.len, (char *)out->ptr);
    if (n == (size_t)-1)
        return EVS_EPARSE;
    c = r->arena;
    c->used -= out->len - n;
    r->arena_bytes -= out->len - n;
    out->len = n;
    return 0;
}

void *evs__rp_grow(evs_replay *r, void **v, size_t *cap, size_t n, size_t size)
{
    size_t nc;
    void *nv;

    if (n < *cap)
        return *v;
    nc = *cap ? *cap * 2 : 16;
    nv = evs__realloc(r->alloc, *v, nc * size);
    if (!nv)
        return NULL;
    advise_large(r, nv, nc * size);
    *v = nv;
    *cap = nc;
    return nv;
}

void evs__rp_reserve(evs_replay *r, void **v, size_t *cap, size_t want,
                     size_t size)
{
    void *nv;

    /* Only untouched address space is spent on a guess that is too
     * large, and only the C library's allocator promises that. */
    if (r->alloc != NULL || want <= *cap || want > SIZE_MAX / size)
        return;
    if ((nv = evs__realloc(r->alloc, *v, want * size)) == NULL)
        return;
    advise_large(r, nv, want * size);
    *v = nv;
    *cap = want;
}

uint64_t evs__rp_hash(evs_span a, evs_span b, int64_t n)
{
    uint64_t h = evs_checksum(a.ptr ? a.ptr : "", a.len);

    h ^= evs_checksum(b.ptr ? b.ptr : "", b.len) * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t)n * 0xff51afd7ed558ccdull;
    return h ? h : 1;
}

long evs__rp_find(const index_map *m, uint64_t h,
                  int (*eq)(const void *ctx, size_t pos), const void *ctx)
{
    size_t mask, i;

    if (!m->cap)
        return -1;
    mask = m->cap - 1;
    for (i = (size_t)h & mask; m->slot[i].pos; i = (i + 1) & mask)
        if (m->slot[i].hash == h && eq(ctx, m->slot[i].pos - 1))
            return (long)(m->slot[i].pos - 1);
    return -1;
}

static void put_slot(index_slot *slot, size_t cap, uint64_t h, uint32_t pos)
{
    size_t i;

    for (i = (size_t)h & (cap - 1); slot[i].pos; i = (i + 1) & (cap - 1))
        ;
    slot[i].hash = h;
    slot[i].pos = pos;
}

static int rehash(evs_replay *r, index_map *m, size_t cap)
{
    index_slot *ns = evs__calloc(r->alloc, cap * sizeof(*ns));

    if (!ns)
        return -ENOMEM;
    advise_large(r, ns, cap * sizeof(*ns));
    for (size_t i = 0; i < m->cap; i++)
        if (m->slot[i].pos)
            put_slot(ns, cap, m->slot[i].hash, m->slot[i].pos);
    evs__free(r->alloc, m->slot);
    m->slot = ns;
    m->cap = cap;
    return 0;
}

int evs__rp_insert(evs_replay *r, index_map *m, uint64_t h, size_t pos)
{
    int rc;

    if ((m->count + 1) * 2 > m->cap &&
        (rc = rehash(r, m, m->cap ? m->cap * 2 : 64)) != 0)
        return rc;
    put_slot(m->slot, m->cap, h, (uint32_t)pos + 1);
    m->count++;
    return 0;
}

void evs__rp_map_free(evs_replay *r, index_map *m)
{
    evs__free(r->alloc, m->slot);
    memset(m, 0, sizeof(*m));
}

void evs__rp_reset(evs_replay *r)
{
    arena_chunk *c = r->arena, *next;

    for (; c; c = next) {
        next = c->next;
        evs__free(r->alloc, c);
    }
    r->arena = NULL;
    r->arena_bytes = 0;
    r->gc_next = 0;
    evs_snapshot_free(r->snapshot);
    r->snapshot = NULL;
    evs__free(r->alloc, r->paths.v);
    evs__free(r->alloc, r->steps.v);
    evs__free(r->alloc, r->eaches.v);
    evs__free(r->alloc, r->vars.v);
    evs__free(r->alloc, r->signals.v);
    evs__free(r->alloc, r->versions.v);
    evs__free(r->alloc, r->timers.v);
    evs__free(r->alloc, r->waits.v);
    evs__free(r->alloc, r->pend.v);
    evs__free(r->alloc, r->names.v);
    evs__free(r->alloc, r->gone.v);
    for (size_t i = 0; i < r->groups.n; i++)
        evs__free(r->alloc, r->groups.v[i].pos);
    evs__free(r->alloc, r->groups.v);
    evs__rp_map_free(r, &r->path_ix);
    evs__rp_map_free(r, &r->step_ix);
    evs__rp_map_free(r, &r->each_ix);
    evs__rp_map_free(r, &r->var_ix);
    evs__rp_map_free(r, &r->version_ix);
    evs__rp_map_free(r, &r->timer_ix);
    evs__rp_map_free(r, &r->group_ix);
    evs__rp_map_free(r, &r->name_ix);
    evs__rp_map_free(r, &r->gone_ix);
    memset(&r->exec, 0, sizeof(r->exec));
    memset(&r->paths, 0, sizeof(r->paths));
    memset(&r->steps, 0, sizeof(r->steps));
    memset(&r->eaches, 0, sizeof(r->eaches));
    memset(&r->vars, 0, sizeof(r->vars));
    memset(&r->signals, 0, sizeof(r->signals));
    memset(&r->versions, 0, sizeof(r->versions));
    memset(&r->timers, 0, sizeof(r->timers));
    memset(&r->waits, 0, sizeof(r->waits));
    memset(&r->pend, 0, sizeof(r->pend));
    memset(&r->names, 0, sizeof(r->names));
    memset(&r->gone, 0, sizeof(r->gone));
    memset(&r->groups, 0, sizeof(r->groups));
    r->exec.failed_iteration = -1;
    r->terminal = 0;
    r->nfailed = 0;
    r->nactive = r->nwaiting = 0;
}
