/*
 * pl_common.c: the pieces both power-loss harnesses share (pl_common.h).
 */
#include "pl_common.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t plc_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

char *plc_data(uint64_t *rs, size_t size, uint64_t tag)
{
    char *d = malloc(size + 64);
    int n;

    cr_assert_not_null(d);
    n = snprintf(d, 64, "{\"tag\":%" PRIu64 ",\"pad\":\"", tag);
    for (size_t i = 0; i < size; i++)
        d[n + i] = (char)('a' + plc_rnd(rs) % 26);
    memcpy(d + n + size, "\"}", 3);
    return d;
}

evs_event *plc_events(uint64_t *rs, uint64_t seed, int e, uint64_t first,
                      size_t n, int big, size_t (*pick)(uint64_t *rs))
{
    static const char *types[] = {"step_started", "step_completed",
                                  "signal_received"};
    evs_event *ev = calloc(n, sizeof(*ev));

    cr_assert_not_null(ev);
    for (size_t i = 0; i < n; i++) {
        char *id = malloc(64);
        cr_assert_not_null(id);
        snprintf(id, 64, "ev-%" PRIx64 "-%d-%" PRIu64, seed, e, first + i);
        ev[i].id = evs_span_cstr(id);
        ev[i].event_type = evs_span_cstr(
            first + i == 1 ? "execution_started" : types[plc_rnd(rs) % 3]);
        ev[i].step_name = evs_span_cstr("step");
        ev[i].path_id = evs_span_cstr("main");
        ev[i].timestamp_us = 1800000000000000LL + (int64_t)(first + i);
        ev[i].data = evs_span_cstr(plc_data(
            rs, big ? 3000 + plc_rnd(rs) % 6000 : pick(rs), first + i));
    }
    return ev;
}

void plc_free_events(evs_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)ev[i].id.ptr);
        free((char *)ev[i].data.ptr);
    }
    free(ev);
}

int plc_keep_lines(plc_lines *ls, evs_log *l, uint64_t first, size_t n,
                   size_t op0)
{
    evs_cursor *c = NULL;
    evs_event ev;
    evs_span raw;
    int rc;

    if ((rc = evs_cursor_open(l, first, first + n - 1, &c, NULL)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = first + i;
        plc_line *ln;

        if ((rc = evs_cursor_next(c, &ev, &raw, NULL)) != 1) {
            rc = rc == 0 ? -ENODATA : rc;
            break;
        }
        rc = 0;
        if (seq >= ls->cap) {
            size_t nc = ls->cap ? ls->cap * 2 : 64;
            while (nc <= seq)
                nc *= 2;
            ls->v = realloc(ls->v, nc * sizeof(*ls->v));
            cr_assert_not_null(ls->v);
            memset(ls->v + ls->cap, 0, (nc - ls->cap) * sizeof(*ls->v));
            ls->cap = nc;
        }
        ln = &ls->v[seq];
        free(ln->raw);
        ln->raw = malloc(raw.len);
        cr_assert_not_null(ln->raw);
        memcpy(ln->raw, raw.ptr, raw.len);
        ln->len = raw.len;
        ln->op0 = op0;
        if (seq >= ls->n)
            ls->n = seq + 1;
    }
    evs_cursor_close(c);
    return rc;
}

void plc_lines_free(plc_lines *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        free(ls->v[i].raw);
    free(ls->v);
    memset(ls, 0, sizeof(*ls));
}

/* Open addressing; the all-zero key marks an empty slot, so a zero
 * digest is stored with its lowest bit set. */
int plc_dedup_add(plc_dedup *d, const uint64_t key[2])
{
    size_t mask, i;

    if ((d->n + 1) * 2 > d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 4096;
        uint64_t(*nk)[2] = calloc(nc, sizeof(*nk));
        cr_assert_not_null(nk);
        for (size_t j = 0; j < d->cap; j++) {
            if (!d->k[j][0] && !d->k[j][1])
                continue;
            for (i = d->k[j][0] & (nc - 1); nk[i][0] || nk[i][1];
                 i = (i + 1) & (nc - 1))
                ;
            nk[i][0] = d->k[j][0];
            nk[i][1] = d->k[j][1];
        }
        free(d->k);
        d->k = nk;
        d->cap = nc;
    }
    mask = d->cap - 1;
    for (i = key[0] & mask; d->k[i][0] || d->k[i][1]; i = (i + 1) & mask)
        if (d->k[i][0] == key[0] && d->k[i][1] == key[1])
            return 0;
    d->k[i][0] = key[0] | (key[0] == 0 && key[1] == 0);
    d->k[i][1] = key[1];
    d->n++;
    return 1;
}

void plc_dedup_free(plc_dedup *d)
{
    free(d->k);
    memset(d, 0, sizeof(*d));
}
