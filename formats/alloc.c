/*
 * alloc.c: the allocator hook (common.h) as the library uses it: the
 * default allocator, allocation through a caller's hook, evs_free for the
 * buffers the library returns, and the one growth helper of the
 * library's growable arrays and buffers.
 */
#include "formats_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *libc_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n);
}

static void libc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static const evs_allocator libc_allocator = {NULL, libc_realloc, libc_free};

const evs_allocator *evs_default_allocator(void)
{
    return &libc_allocator;
}

void *evs__realloc(const evs_allocator *a, void *p, size_t n)
{
    if (!a)
        a = &libc_allocator;
    return a->realloc(a->ctx, p, n ? n : 1);
}

void *evs__malloc(const evs_allocator *a, size_t n)
{
    return evs__realloc(a, NULL, n);
}

void *evs__calloc(const evs_allocator *a, size_t n)
{
    void *p = evs__realloc(a, NULL, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void evs__free(const evs_allocator *a, void *p)
{
    if (!p)
        return;
    if (!a)
        a = &libc_allocator;
    a->free(a->ctx, p);
}

void evs_free(const evs_allocator *alloc, void *p)
{
    evs__free(alloc, p);
}

/* The first capacity of an array that has none: 256 bytes' worth. */
#define GROW_FIRST_BYTES 256

int evs__grow(const evs_allocator *alloc, void *p, size_t *cap, size_t need,
              size_t elem)
{
    size_t nc;
    void *old, *np;

    if (*cap >= need)
        return 0;
    nc = *cap ? *cap : (elem < GROW_FIRST_BYTES ? GROW_FIRST_BYTES / elem : 1);
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return -ENOMEM;
        nc *= 2;
    }
    if (nc > SIZE_MAX / elem)
        return -ENOMEM;
    /* Through memcpy, so that `p` may point at any object pointer type. */
    memcpy(&old, p, sizeof(old));
    if (!(np = evs__realloc(alloc, old, nc * elem)))
        return -ENOMEM;
    memcpy(p, &np, sizeof(np));
    *cap = nc;
    return 0;
}
