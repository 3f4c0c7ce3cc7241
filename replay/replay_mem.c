/*
 * replay_mem.c: the replayer's memory: an arena for the strings and JSON
 * values of the state, growable arrays, and hash indexes into them.
 */
#include "replay_int.h"

#include <errno.h>

#define CHUNK_MIN ((size_t)64 << 10)

int evs__rp_copy(evs_replay *r, evs_span in, evs_span *out)
{
    arena_chunk *c = r->arena;

    if (in.len == 0) {
        out->ptr = "";
        out->len = 0;
        return 0;
    }
    if (!c || c->cap - c->used < in.len) {
        size_t cap = in.len > CHUNK_MIN ? in.len : CHUNK_MIN;
        c = evs__malloc(r->alloc, sizeof(*c) + cap);
        if (!c)
            return -ENOMEM;
        c->next = r->arena;
        c->used = 0;
        c->cap = cap;
        r->arena = c;
    }
    memcpy(c->data + c->used, in.ptr, in.len);
    out->ptr = c->data + c->used;
    out->len = in.len;
    c->used += in.len;
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
    out->len = n;
    return 0;
}

void *evs__rp_grow(evs_replay *r, void **v, size_t *cap, size_t n,
                   size_t size)
{
    size_t nc;
    void *nv;

    if (n < *cap)
        return *v;
    nc = *cap ? *cap * 2 : 16;
    nv = evs__realloc(r->alloc, *v, nc * size);
    if (!nv)
        return NULL;
    *v = nv;
    *cap = nc;
    return nv;
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
    for (i = (size_t)h & mask; m->pos[i]; i = (i + 1) & mask)
        if (m->hash[i] == h && eq(ctx, m->pos[i] - 1))
            return (long)(m->pos[i] - 1);
    return -1;
}

static int rehash(evs_replay *r, index_map *m, size_t cap)
{
    uint64_t *nh = evs__calloc(r->alloc, cap * sizeof(*nh));
    uint32_t *np = evs__calloc(r->alloc, cap * sizeof(*np));

    if (!nh || !np) {
        evs__free(r->alloc, nh);
        evs__free(r->alloc, np);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        size_t j;
        if (!m->pos[i])
            continue;
        for (j = (size_t)m->hash[i] & (cap - 1); np[j]; j = (j + 1) & (cap - 1))
            ;
        nh[j] = m->hash[i];
        np[j] = m->pos[i];
    }
    evs__free(r->alloc, m->hash);
    evs__free(r->alloc, m->pos);
    m->hash = nh;
    m->pos = np;
    m->cap = cap;
    return 0;
}

int evs__rp_insert(evs_replay *r, index_map *m, uint64_t h, size_t pos)
{
    size_t i;
    int rc;

    if ((m->count + 1) * 2 > m->cap &&
        (rc = rehash(r, m, m->cap ? m->cap * 2 : 64)) != 0)
        return rc;
    for (i = (size_t)h & (m->cap - 1); m->pos[i]; i = (i + 1) & (m->cap - 1))
        ;
    m->hash[i] = h;
    m->pos[i] = (uint32_t)pos + 1;
    m->count++;
    return 0;
}

void evs__rp_map_free(evs_replay *r, index_map *m)
{
    evs__free(r->alloc, m->hash);
    evs__free(r->alloc, m->pos);
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
    evs__free(r->alloc, r->paths.v);
    evs__free(r->alloc, r->steps.v);
    evs__free(r->alloc, r->eaches.v);
    evs__free(r->alloc, r->vars.v);
    evs__free(r->alloc, r->signals.v);
    evs__free(r->alloc, r->versions.v);
    evs__free(r->alloc, r->timers.v);
    evs__free(r->alloc, r->waits.v);
    evs__free(r->alloc, r->pend.v);
    evs__rp_map_free(r, &r->path_ix);
    evs__rp_map_free(r, &r->step_ix);
    evs__rp_map_free(r, &r->each_ix);
    evs__rp_map_free(r, &r->var_ix);
    evs__rp_map_free(r, &r->version_ix);
    evs__rp_map_free(r, &r->timer_ix);
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
    r->exec.failed_iteration = -1;
    r->terminal = 0;
    r->nfailed = 0;
    r->nactive = r->nwaiting = 0;
}
