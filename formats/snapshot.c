/*
 * snapshot.c: the snapshot codec (FORMAT.md, "The snapshot file"):
 * encoding, and the copying and freeing of decoded snapshots. Decoding is
 * in snapshot_decode.c.
 *
 * A snapshot is two checksummed lines. The header holds the small fields
 * that listing needs and binds the body to itself with the body's length
 * and XXH3-64; the body holds the large JSON fields.
 */
#include "snapshot_int.h"

#include <assert.h>
#include <errno.h>

/* ------------------------------------------------------------------ */
/* Encoding                                                           */
/* ------------------------------------------------------------------ */

/*
 * Length of `j` once its insignificant whitespace is removed, that is the
 * length evs_json_check() with EVS_JSON_MINIFY will produce for valid
 * JSON. Knowing it up front lets the encoder size its one allocation
 * exactly and minify each field straight into its final place. Invalid
 * JSON gets some length here and is refused by evs_json_check() later.
 */
static size_t json_compact_len(evs_span j)
{
    const char *p = j.ptr, *end = j.ptr + j.len;
    size_t ws = 0;

    while (p < end) {
        char c = *p;
        if (c == '"') {
            if ((p = skip_string(p, end)) == NULL)
                break;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            ws++;
        p++;
    }
    return j.len - ws;
}

int evs_snapshot_encode(const evs_snapshot *s, const evs_allocator *alloc,
                        char **out, size_t *out_len)
{
    size_t qlen[N_STR], jlen[N_JSON];
    char tbuf[N_TIME][EVS_TIME_LEN + 1];
    size_t hdr_len, body_len, slack = 0, n;
    char *buf = NULL, *p, *body;
    uint64_t body_sum;
    int rc;

    if (s == NULL || out == NULL || out_len == NULL)
        return -EINVAL;
    if (s->id.len == 0 || s->id.ptr == NULL ||
        !evs_id_valid(s->id.ptr, s->id.len))
        return -EINVAL;

    /* Validate and size everything before allocating, so that a bad
     * field costs no allocation. */
    for (int i = 0; i < N_STR; i++) {
        evs_span sp = span_at(s, str_fields[i]);
        if (sp.len == 0) {
            qlen[i] = 2;
            continue;
        }
        if (sp.ptr == NULL || sp.len > SPAN_LEN_MAX)
            return -EINVAL;
        qlen[i] = evs_json_quote(sp, NULL, 0);
        if (qlen[i] == (size_t)-1)
            return -EINVAL;
    }
    for (int i = 0; i < N_TIME; i++) {
        int64_t us = time_at(s, time_fields[i]);
        if (us != 0 && evs_time_format(us, tbuf[i]) != 0)
            return -EINVAL;
    }
    for (int i = 0; i < N_JSON; i++) {
        evs_span sp = span_at(s, json_fields[i]);
        if (sp.len == 0) {
            jlen[i] = null_lit.n;
            continue;
        }
        if (sp.ptr == NULL || sp.len > SPAN_LEN_MAX)
            return -EINVAL;
        jlen[i] = json_compact_len(sp);
        /* evs_json_check() may use all of out[0..len) while minifying;
         * what lies after a field is either later fields or this slack. */
        if (sp.len - jlen[i] > slack)
            slack = sp.len - jlen[i];
    }

    body_len = 1 + EVS__CKSUM_TAIL_LEN; /* the comma, then the tail */
    for (int i = 0; i < N_JSON; i++)
        body_len += json_fields[i].key.n + jlen[i];

    hdr_len = hdr_open.n + 1 + hdr_kind.n;
    for (int i = 0; i < N_STR; i++)
        hdr_len += str_fields[i].key.n + qlen[i];
    for (int i = 0; i < N_TIME; i++) {
        hdr_len += time_fields[i].key.n;
        hdr_len += time_at(s, time_fields[i]) ? EVS_TIME_LEN + 2 : null_lit.n;
    }
    hdr_len += seq_key.n + evs__u64_digits(s->last_event_seq);
    hdr_len += blen_key.n + evs__u64_digits(body_len);
    hdr_len += bsum_key.n + 16 + 1;
    hdr_len += 1 + EVS__CKSUM_TAIL_LEN;
    /* Readers of headers alone (listing) read at most this much. */
    if (hdr_len > EVS_SNAPSHOT_HEADER_MAX)
        return -EINVAL;

    buf = evs__malloc(alloc, hdr_len + body_len + slack);
    if (buf == NULL) {
        rc = -ENOMEM;
        goto out;
    }

    /* The body goes first, in its final place, because the header
     * carries its length and checksum. */
    body = buf + hdr_len;
    p = body;
    for (int i = 0; i < N_JSON; i++) {
        evs_span sp = span_at(s, json_fields[i]);
        p = put_lit(p, json_fields[i].key);
        if (sp.len == 0) {
            p = put_lit(p, null_lit);
            continue;
        }
        rc = evs_json_check(sp.ptr, sp.len, EVS_JSON_MINIFY, p, &n, NULL);
        if (rc != 0 || n != jlen[i]) {
            rc = -EINVAL;
            goto out;
        }
        p += n;
    }
    *p++ = ',';
    n = evs__frame_seal(body, (size_t)(p - body));
    assert(n == body_len); /* the sizes above are exact */
    body_sum = evs_checksum(body, body_len);

    p = put_lit(buf, hdr_open);
    *p++ = (char)('0' + EVS_FORMAT_VERSION);
    p = put_lit(p, hdr_kind);
    for (int i = 0; i < N_STR; i++) {
        evs_span sp = span_at(s, str_fields[i]);
        p = put_lit(p, str_fields[i].key);
        if (sp.len == 0)
            p = put(p, "\"\"", 2);
        else
            p += evs_json_quote(sp, p, qlen[i]);
    }
    for (int i = 0; i < N_TIME; i++) {
        p = put_lit(p, time_fields[i].key);
        if (time_at(s, time_fields[i]) == 0) {
            p = put_lit(p, null_lit);
            continue;
        }
        *p++ = '"';
        p = put(p, tbuf[i], EVS_TIME_LEN);
        *p++ = '"';
    }
    p = put_lit(p, seq_key);
    p = evs__put_u64(p, s->last_event_seq);
    p = put_lit(p, blen_key);
    p = evs__put_u64(p, body_len);
    p = put_lit(p, bsum_key);
    evs__hex64(body_sum, p);
    p += 16;
    *p++ = '"';
    *p++ = ',';
    n = evs__frame_seal(buf, (size_t)(p - buf));
    assert(n == hdr_len);

    *out = buf;
    *out_len = hdr_len + body_len;
    buf = NULL;
    rc = 0;
out:
    evs__free(alloc, buf);
    return rc;
}

int evs_snapshot_copy(const evs_snapshot *src, const evs_allocator *alloc,
                      evs_snapshot **out)
{
    snap_block *blk;
    size_t size = sizeof(*blk);
    char *o;

    for (int i = 0; i < N_STR; i++)
        size += span_ref((evs_snapshot *)src, str_fields[i])->len;
    for (int i = 0; i < N_JSON; i++)
        size += span_ref((evs_snapshot *)src, json_fields[i])->len;
    blk = evs__malloc(alloc, size);
    if (blk == NULL)
        return -ENOMEM;
    blk->alloc = alloc != NULL ? *alloc : *evs_default_allocator();
    blk->run = NULL;
    blk->snap = *src;
    o = blk->bytes;
    for (int i = 0; i < N_STR + N_JSON; i++) {
        evs_span *sp = span_ref(&blk->snap, i < N_STR ? str_fields[i]
                                                      : json_fields[i - N_STR]);
        if (sp->len > 0) {
            memcpy(o, sp->ptr, sp->len);
            sp->ptr = o;
            o += sp->len;
        } else {
            sp->ptr = NULL;
        }
    }
    *out = &blk->snap;
    return 0;
}

int evs__snapshot_libc(const evs_snapshot *s)
{
    const snap_block *blk =
        (const snap_block *)(const void *)((const char *)s -
                                           offsetof(snap_block, snap));
    const evs_allocator *d = evs_default_allocator();

    return blk->alloc.realloc == d->realloc && blk->alloc.free == d->free &&
           blk->alloc.ctx == d->ctx;
}

void evs_snapshot_free(evs_snapshot *s)
{
    snap_block *blk;

    if (s == NULL)
        return;
    blk = (snap_block *)((char *)s - offsetof(snap_block, snap));
    blk->alloc.free(blk->alloc.ctx, blk);
}
