/*
 * tu_alloc.c: the tests' counting and failing allocator (see tu_alloc.h).
 */
#include "tu_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARK_LIVE 0x7a110cedu
#define MARK_FREED 0xdeadb10cu

/* In front of every block: its size and whether it is ours and live. The
 * union keeps the block after it aligned for any type. */
typedef union header {
    struct {
        size_t size;
        uint32_t mark;
    } h;
    max_align_t align;
} header;

static header *header_of(void *p, const char *what)
{
    header *h = (header *)p - 1;

    if (h->h.mark != MARK_LIVE) {
        fprintf(stderr,
                "tu_alloc: %s of %p, which is not a live block of "
                "this allocator (%s)\n",
                what, p, h->h.mark == MARK_FREED ? "freed already" : "foreign");
        abort();
    }
    return h;
}

/* Frees a block; called with the lock held. */
static void release(tu_alloc *ta, void *p)
{
    header *h = header_of(p, "free");

    ta->live--;
    ta->bytes -= h->h.size;
    h->h.mark = MARK_FREED;
    free(h);
}

static void *ta_realloc(void *ctx, void *p, size_t n)
{
    tu_alloc *ta = ctx;
    header *h = NULL;
    size_t old = 0;
    void *q = NULL;

    pthread_mutex_lock(&ta->mu);
    if (n == 0) {
        /* What realloc(p, 0) may do: free p. Not a call that fails. */
        if (p)
            release(ta, p);
        goto out;
    }
    ta->calls++;
    if (ta->fail_at &&
        (ta->calls == ta->fail_at ||
         (ta->mode == TU_FAIL_FROM && ta->calls > ta->fail_at))) {
        ta->failed++;
        goto out;
    }
    if (p) {
        h = header_of(p, "realloc");
        old = h->h.size;
    }
    if (n > SIZE_MAX - sizeof(header) || !(h = realloc(h, sizeof(header) + n)))
        goto out;
    h->h.size = n;
    h->h.mark = MARK_LIVE;
    if (!p)
        ta->live++;
    ta->bytes += n - old;
    if (ta->bytes > ta->peak)
        ta->peak = ta->bytes;
    q = h + 1;
out:
    pthread_mutex_unlock(&ta->mu);
    return q;
}

static void ta_free(void *ctx, void *p)
{
    tu_alloc *ta = ctx;

    if (!p)
        return;
    pthread_mutex_lock(&ta->mu);
    release(ta, p);
    pthread_mutex_unlock(&ta->mu);
}

void tu_alloc_init(tu_alloc *ta)
{
    memset(ta, 0, sizeof(*ta));
    ta->a.ctx = ta;
    ta->a.realloc = ta_realloc;
    ta->a.free = ta_free;
    pthread_mutex_init(&ta->mu, NULL);
}

void tu_alloc_fail(tu_alloc *ta, long n, tu_fail_mode mode)
{
    pthread_mutex_lock(&ta->mu);
    ta->calls = 0;
    ta->failed = 0;
    ta->fail_at = n;
    ta->mode = mode;
    pthread_mutex_unlock(&ta->mu);
}

void tu_alloc_stop(tu_alloc *ta)
{
    pthread_mutex_lock(&ta->mu);
    ta->fail_at = 0;
    pthread_mutex_unlock(&ta->mu);
}
