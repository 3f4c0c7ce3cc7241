/*
 * archive_bundle.c: the bytes of a bundle (formats/BUNDLES.md): writing
 * one, and reading one back with every check, so that no bit flip and
 * no truncation of the file goes unnoticed. Pure computation on buffers,
 * but for evs_bundle_open, which reads a file through the POSIX I/O
 * table.
 */
#include "archive_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <zstd.h>

static const unsigned char magic[8] = {0x89, 'E', 'V', 'B', '\r', '\n', 0x1a,
                                       '\n'};

/* A bundle is read whole; one larger than this is refused, not read. */
#define BUNDLE_MAX ((uint64_t)1 << 40)

struct evs_bundle {
    const evs_allocator *alloc;
    char *content; /* manifest, log and snapshot, decompressed */
    size_t manifest_len, log_len, snap_len;
    char *strings; /* the manifest's unescaped strings */
    evs_bundle_manifest m;
    evs_decoder dec;
};

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void jb_hex(evs__jbuf *b, uint64_t v)
{
    char h[16];

    evs__hex64(v, h);
    EVS__JB_LIT(b, "\"");
    evs__jb_raw(b, h, 16);
    EVS__JB_LIT(b, "\"");
}

/* The manifest line (formats/BUNDLES.md §3), framed as FORMAT.md §2.1;
 * log_ck and snap_ck are the XXH3-64 of the log and the snapshot. */
static int manifest_encode(const evs__bundle_src *src, uint64_t log_ck,
                           uint64_t snap_ck, evs__jbuf *b)
{
    const evs__log_facts *f = src->facts;

    EVS__JB_LIT(b, "{\"v\":1,\"kind\":\"bundle\",\"format\":");
    evs__jb_int(b, EVS_BUNDLE_FORMAT);
    EVS__JB_LIT(b, ",\"execution_id\":");
    evs__jb_quote(b, (evs_span){src->id, src->id_len});
    EVS__JB_LIT(b, ",\"events\":");
    evs__jb_int(b, (int64_t)f->events);
    EVS__JB_LIT(b, ",\"last_seq\":");
    evs__jb_int(b, (int64_t)f->last_seq);
    EVS__JB_LIT(b, ",\"log_bytes\":");
    evs__jb_int(b, (int64_t)src->log.len);
    EVS__JB_LIT(b, ",\"log_checksum\":");
    jb_hex(b, log_ck);
    EVS__JB_LIT(b, ",\"snapshot_bytes\":");
    evs__jb_int(b, (int64_t)src->snap.len);
    EVS__JB_LIT(b, ",\"snapshot_checksum\":");
    if (src->snap.len)
        jb_hex(b, snap_ck);
    else
        EVS__JB_LIT(b, "null");
    EVS__JB_LIT(b, ",\"status\":");
    evs__jb_quote(b, src->status);
    EVS__JB_LIT(b, ",\"workflow_name\":");
    if (f->workflow.len)
        evs__jb_raw(b, f->workflow.ptr, f->workflow.len);
    else
        EVS__JB_LIT(b, "\"\"");
    EVS__JB_LIT(b, ",\"started_at\":");
    evs__jb_time(b, f->started_us);
    EVS__JB_LIT(b, ",\"ended_at\":");
    evs__jb_time(b, f->ended_us);
    EVS__JB_LIT(b, ",\"lineage\":");
    evs__jb_json(b, f->lineage);
    EVS__JB_LIT(b, ",\"evstore\":");
    evs__jb_quote(b, evs_span_cstr(evs_version()));
    EVS__JB_LIT(b, ",\"level\":");
    evs__jb_int(b, src->level);
    EVS__JB_LIT(b, ",");
    if (!evs__jb_reserve(b, EVS__CKSUM_TAIL_LEN))
        return b->err;
    b->len = evs__frame_seal(b->p, b->len);
    return b->err;
}

int evs__bundle_encode(const evs__bundle_src *src, const evs_allocator *alloc,
                       char **out, size_t *len, uint64_t *checksum)
{
    evs__jbuf mb = {0};
    ZSTD_CCtx *cc = NULL;
    ZSTD_inBuffer in[3];
    ZSTD_outBuffer ob;
    unsigned char *p = NULL;
    uint64_t content, ck;
    uint64_t log_ck = evs_checksum(src->log.ptr, src->log.len);
    uint64_t snap_ck = evs_checksum(src->snap.ptr, src->snap.len);
    size_t bound, r, total;
    int rc;

    mb.alloc = alloc;
    if ((rc = manifest_encode(src, log_ck, snap_ck, &mb)) != 0)
        goto out;
    content = (uint64_t)mb.len + src->log.len + src->snap.len;
    bound = ZSTD_compressBound((size_t)content);
    if (ZSTD_isError(bound) || bound > SIZE_MAX - 2 * EVS__BUNDLE_HDR) {
        rc = -EFBIG;
        goto out;
    }
    total = EVS__BUNDLE_HDR + bound + EVS__BUNDLE_TRAILER;
    if (!(p = evs__malloc(alloc, total)) || !(cc = ZSTD_createCCtx())) {
        rc = -ENOMEM;
        goto out;
    }
    rc = -EIO;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel,
                                            src->level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cc, content)))
        goto out;
    in[0] = (ZSTD_inBuffer){mb.p, mb.len, 0};
    in[1] = (ZSTD_inBuffer){src->log.ptr, src->log.len, 0};
    in[2] = (ZSTD_inBuffer){src->snap.ptr, src->snap.len, 0};
    ob = (ZSTD_outBuffer){p + EVS__BUNDLE_HDR, bound, 0};
    for (int i = 0; i < 3; i++) {
        ZSTD_EndDirective e = i == 2 ? ZSTD_e_end : ZSTD_e_continue;
        do {
            r = ZSTD_compressStream2(cc, &ob, &in[i], e);
            if (ZSTD_isError(r))
                goto out;
        } while (e == ZSTD_e_end ? r != 0 : in[i].pos < in[i].size);
    }
    memcpy(p, magic, sizeof(magic));
    put_u32(p + 8, EVS_BUNDLE_FORMAT);
    put_u32(p + 12, EVS__BUNDLE_HDR);
    put_u64(p + 16, mb.len);
    put_u64(p + 24, src->log.len);
    put_u64(p + 32, src->snap.len);
    put_u64(p + 40, ob.pos);
    /* The content's own checksum: a second, 64-bit check of what zstd's
     * 32-bit frame checksum covers, independent of the compressor. */
    ck = evs_checksum(mb.p, mb.len) ^ log_ck * 3 ^ snap_ck * 5;
    put_u64(p + 48, ck);
    put_u64(p + 56, evs_checksum(p, 56));
    total = EVS__BUNDLE_HDR + ob.pos;
    ck = evs_checksum(p, total);
    put_u64(p + total, ck);
    *out = (char *)p;
    *len = total + EVS__BUNDLE_TRAILER;
    *checksum = ck;
    p = NULL;
    rc = 0;
out:
    ZSTD_freeCCtx(cc);
    evs__free(alloc, p);
    evs__jb_free(&mb);
    return rc;
}

static int bad(evs_error_info *ei, const char *kind, uint64_t off,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int bad(evs_error_info *ei, const char *kind, uint64_t off,
               const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    evs__error_vset(ei, EVS_ECORRUPT, kind, fmt, ap);
    va_end(ap);
    if (ei)
        ei->offset = off;
    return EVS_ECORRUPT;
}

/* Reads 16 lower-case hex digits in a JSON string token. */
int evs__ar_hex(evs_span obj, const char *key, uint64_t *v)
{
    evs_span t;

    *v = 0;
    if (evs__json_get(obj, key, &t) != 1)
        return -1;
    if (evs__json_is_null(t))
        return 0;
    if (t.len != 18 || t.ptr[0] != '"' || t.ptr[17] != '"')
        return -1;
    for (size_t i = 1; i < 17; i++) {
        char c = t.ptr[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint64_t)d;
    }
    return 0;
}

int evs__ar_u64(evs_span obj, const char *key, uint64_t *v)
{
    const char *p;
    evs_span t;

    if (evs__json_get(obj, key, &t) != 1)
        return -1;
    p = t.ptr;
    return evs__take_u64(&p, t.ptr + t.len, v) == 0 && p == t.ptr + t.len ? 0
                                                                         : -1;
}

int evs__ar_time(evs_span obj, const char *key, int64_t *us)
{
    evs_span t;

    *us = 0;
    if (evs__json_get(obj, key, &t) != 1)
        return -1;
    if (evs__json_is_null(t))
        return 0;
    if (t.len < 2 || t.ptr[0] != '"')
        return -1;
    return evs_time_parse(t.ptr + 1, t.len - 2, us) == 0 ? 0 : -1;
}

/* A string member, unescaped into b; *off and *len say where. */
int evs__ar_str(evs_span obj, const char *key, evs__jbuf *b,
                      size_t *off, size_t *len)
{
    evs_span t;

    if (evs__json_get(obj, key, &t) != 1 || t.len < 2 || t.ptr[0] != '"')
        return -1;
    *off = b->len;
    if (evs__jb_unescape(b, (evs_span){t.ptr + 1, t.len - 2}) != 0)
        return -1;
    *len = b->len - *off;
    return 0;
}

/* Reads the manifest line into b->m. The spans are made once every
 * string is in b->strings, which may move while it grows. */
static int manifest_decode(evs_bundle *bd, evs_error_info *ei)
{
    evs_span line = {bd->content, bd->manifest_len}, obj, t;
    evs_bundle_manifest *m = &bd->m;
    evs__jbuf sb = {0};
    size_t body, o[4], l[4], lo = 0, ll = 0;
    uint64_t v;
    const char *why = NULL;
    int rc;

    sb.alloc = bd->alloc;
    if (line.len == 0 || line.ptr[line.len - 1] != '\n' ||
        memchr(line.ptr, '\n', line.len) != line.ptr + line.len - 1 ||
        evs__frame_check(line.ptr, line.len, &body) != 0)
        return bad(ei, "manifest", 0, "bundle manifest is damaged");
    obj = (evs_span){line.ptr, line.len - 1};
    if (evs__ar_u64(obj, "v", &v) != 0 || v != 1 ||
        evs__json_get(obj, "kind", &t) != 1 ||
        !evs__span_eq_cstr(t, "\"bundle\""))
        return bad(ei, "manifest", 0, "bundle manifest is not one");
    if (evs__ar_u64(obj, "format", &v) || v != EVS_BUNDLE_FORMAT)
        why = "format";
    else if (evs__ar_str(obj, "execution_id", &sb, &o[0], &l[0]))
        why = "execution_id";
    else if (evs__ar_u64(obj, "events", &m->events))
        why = "events";
    else if (evs__ar_u64(obj, "last_seq", &m->last_seq))
        why = "last_seq";
    else if (evs__ar_u64(obj, "log_bytes", &m->log_bytes))
        why = "log_bytes";
    else if (evs__ar_hex(obj, "log_checksum", &m->log_checksum))
        why = "log_checksum";
    else if (evs__ar_u64(obj, "snapshot_bytes", &m->snapshot_bytes))
        why = "snapshot_bytes";
    else if (evs__ar_hex(obj, "snapshot_checksum", &m->snapshot_checksum))
        why = "snapshot_checksum";
    else if (evs__ar_str(obj, "status", &sb, &o[1], &l[1]))
        why = "status";
    else if (evs__ar_str(obj, "workflow_name", &sb, &o[2], &l[2]))
        why = "workflow_name";
    else if (evs__ar_time(obj, "started_at", &m->started_at_us))
        why = "started_at";
    else if (evs__ar_time(obj, "ended_at", &m->ended_at_us))
        why = "ended_at";
    else if (evs__json_get(obj, "lineage", &t) != 1)
        why = "lineage";
    else if (evs__ar_str(obj, "evstore", &sb, &o[3], &l[3]))
        why = "evstore";
    else if (evs__ar_u64(obj, "level", &v) || v > 100)
        why = "level";
    if (!why && !evs__json_is_null(t)) {
        lo = sb.len;
        evs__jb_raw(&sb, t.ptr, t.len);
        ll = t.len;
    }
    if (!why && (rc = sb.err) != 0)
        goto fail;
    if (why) {
        rc = bad(ei, "manifest", 0, "bundle manifest: bad or missing \"%s\"",
                 why);
        goto fail;
    }
    m->level = (int)v;
    m->format = EVS_BUNDLE_FORMAT;
    bd->strings = sb.p;
    m->execution_id = (evs_span){sb.p + o[0], l[0]};
    m->status = (evs_span){sb.p + o[1], l[1]};
    m->workflow_name = (evs_span){sb.p + o[2], l[2]};
    m->evstore_version = (evs_span){sb.p + o[3], l[3]};
    m->lineage = (evs_span){ll ? sb.p + lo : NULL, ll};
    return 0;
fail:
    evs__jb_free(&sb);
    return rc;
}

/* Checks the framing: magic, header, version, length, trailer. */
static int check_frame(const unsigned char *p, size_t len, uint64_t *hl,
                       evs_error_info *ei)
{
    uint32_t version, hlen;
    uint64_t payload, want;

    if (len < sizeof(magic) || memcmp(p, magic, sizeof(magic)) != 0) {
        if (memcmp(p, magic, len < sizeof(magic) ? len : sizeof(magic)) == 0)
            return bad(ei, "length", len,
                       "bundle cut short: %zu bytes, not even a header", len);
        return bad(ei, "magic", 0, "not a bundle (no bundle magic number)");
    }
    if (len < 16)
        return bad(ei, "length", len,
                   "bundle cut short: %zu bytes, not even a header", len);
    version = get_u32(p + 8);
    hlen = get_u32(p + 12);
    if (hlen < EVS__BUNDLE_HDR || hlen > EVS__BUNDLE_HDR_MAX || hlen % 8)
        return bad(ei, "header", 12, "bundle header is damaged (length %u)",
                   hlen);
    if (len < hlen)
        return bad(ei, "length", len,
                   "bundle cut short: %zu bytes, inside its header", len);
    if (evs_checksum(p, hlen - 8) != get_u64(p + hlen - 8))
        return bad(ei, "header", 0, "bundle header checksum does not match");
    if (version > EVS_BUNDLE_FORMAT) {
        evs__error_set(ei, EVS_EFORMAT, "format",
                       "bundle written in bundle format %u; this library "
                       "reads bundle format %d",
                       version, EVS_BUNDLE_FORMAT);
        return EVS_EFORMAT;
    }
    if (version != EVS_BUNDLE_FORMAT || hlen != EVS__BUNDLE_HDR)
        return bad(ei, "header", 8, "bundle header is damaged (version %u)",
                   version);
    payload = get_u64(p + 40);
    if (payload > BUNDLE_MAX)
        return bad(ei, "header", 40, "bundle header is damaged");
    want = hlen + payload + EVS__BUNDLE_TRAILER;
    if (len != want)
        return bad(ei, "length", len < want ? len : want,
                   "bundle is %zu bytes; its header says %llu (%s)", len,
                   (unsigned long long)want,
                   len < want ? "cut short" : "bytes after its end");
    if (evs_checksum(p, len - 8) != get_u64(p + len - 8))
        return bad(ei, "checksum", len - 8,
                   "bundle checksum does not match: the file is damaged");
    *hl = hlen;
    return 0;
}

int evs__bundle_parse(const void *buf, size_t len, const evs_allocator *alloc,
                      evs_bundle **out, evs_error_info *ei)
{
    const unsigned char *p = buf;
    evs_bundle *bd = NULL;
    evs__log_facts f;
    evs_snapshot *sn = NULL;
    uint64_t hl, content, ck;
    size_t payload, r;
    int rc;

    evs_error_info_clear(ei);
    if ((rc = check_frame(p, len, &hl, ei)) != 0)
        return rc;
    if (!(bd = evs__calloc(alloc, sizeof(*bd))))
        return -ENOMEM;
    bd->alloc = alloc;
    evs_decoder_init(&bd->dec, alloc);
    content = get_u64(p + 16) + get_u64(p + 24) + get_u64(p + 32);
    payload = len - (size_t)hl - EVS__BUNDLE_TRAILER;
    if (content < get_u64(p + 16) || content > BUNDLE_MAX ||
        ZSTD_getFrameContentSize(p + hl, payload) != content ||
        ZSTD_findFrameCompressedSize(p + hl, payload) != payload) {
        rc = bad(ei, "compression", hl, "bundle's compressed frame is damaged");
        goto out;
    }
    bd->manifest_len = (size_t)get_u64(p + 16);
    bd->log_len = (size_t)get_u64(p + 24);
    bd->snap_len = (size_t)get_u64(p + 32);
    if (!(bd->content = evs__malloc(alloc, (size_t)content + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    r = ZSTD_decompress(bd->content, (size_t)content, p + hl, payload);
    if (ZSTD_isError(r) || r != content) {
        rc = bad(ei, "compression", hl,
                 "bundle's compressed frame is damaged: %s",
                 ZSTD_isError(r) ? ZSTD_getErrorName(r) : "wrong size");
        goto out;
    }
    ck = evs_checksum(bd->content, bd->manifest_len);
    ck ^= evs_checksum(bd->content + bd->manifest_len, bd->log_len) * 3;
    ck ^= evs_checksum(bd->content + bd->manifest_len + bd->log_len,
                       bd->snap_len) * 5;
    if (ck != get_u64(p + 48)) {
        rc = bad(ei, "checksum", 48, "bundle content checksum does not match");
        goto out;
    }
    if ((rc = manifest_decode(bd, ei)) != 0)
        goto out;
    if (ei)
        evs__error_set_id(ei, bd->m.execution_id.ptr, bd->m.execution_id.len);
    bd->m.bundle_bytes = len;
    bd->m.bundle_checksum = get_u64(p + len - 8);
    if (!evs_id_valid(bd->m.execution_id.ptr, bd->m.execution_id.len) ||
        bd->m.log_bytes != bd->log_len ||
        bd->m.snapshot_bytes != bd->snap_len ||
        bd->m.log_checksum !=
            evs_checksum(bd->content + bd->manifest_len, bd->log_len) ||
        (bd->snap_len &&
         bd->m.snapshot_checksum !=
             evs_checksum(evs_bundle_snapshot(bd).ptr, bd->snap_len))) {
        rc = bad(ei, "manifest", 0,
                 "bundle manifest does not describe its content");
        goto out;
    }
    {
        rc = evs__log_check(evs_bundle_log(bd).ptr, bd->log_len,
                            bd->m.execution_id.ptr, bd->m.execution_id.len,
                            alloc, &f, ei);
        if (rc != 0)
            goto out;
        if (f.events != bd->m.events || f.last_seq != bd->m.last_seq) {
            rc = bad(ei, "manifest", 0,
                     "bundle manifest counts %llu events to %llu; the log "
                     "holds %llu to %llu",
                     (unsigned long long)bd->m.events,
                     (unsigned long long)bd->m.last_seq,
                     (unsigned long long)f.events,
                     (unsigned long long)f.last_seq);
            goto out;
        }
    }
    if (bd->snap_len) {
        evs_span sp = evs_bundle_snapshot(bd);
        rc = evs_snapshot_decode(sp.ptr, sp.len, 0, alloc, &sn, ei);
        if (rc == 0 && (!evs__span_eq(sn->id, bd->m.execution_id) ||
                        sn->last_event_seq > bd->m.last_seq))
            rc = EVS_ECORRUPT;
        if (rc != 0) {
            rc = bad(ei, "snapshot", 0,
                     "bundle's snapshot is damaged or not the log's");
            goto out;
        }
    }
    *out = bd;
    bd = NULL;
out:
    evs_snapshot_free(sn);
    evs_bundle_close(bd);
    return rc;
}

/* Decompresses the next want.len bytes of the frame through `out` (a
 * window of `cap` bytes) and compares them with `want`, or, when
 * want.ptr is NULL, collects them into `keep` (want.len bytes). *last
 * gets zstd's last answer (0: the frame is done, checksum included).
 * Returns 0, 1 (they differ) or -1 (the frame is damaged). */
static int stream_compare(ZSTD_DCtx *dc, ZSTD_inBuffer *in, char *out,
                          size_t cap, evs_span want, char *keep, size_t *last)
{
    size_t done = 0;

    while (done < want.len) {
        size_t n = want.len - done < cap ? want.len - done : cap;
        ZSTD_outBuffer ob = {keep ? keep + done : out, n, 0};

        while (ob.pos < n) {
            size_t before = ob.pos, in_before = in->pos;
            size_t r = ZSTD_decompressStream(dc, &ob, in);
            if (ZSTD_isError(r) || (ob.pos == before && in->pos == in_before))
                return -1;
            *last = r;
        }
        if (!keep && memcmp(out, want.ptr + done, n) != 0)
            return 1;
        done += n;
    }
    return 0;
}

int evs__bundle_holds(const void *buf, size_t len, const evs__bundle_src *src,
                      const evs_allocator *alloc, uint64_t *checksum,
                      evs_error_info *ei)
{
    const unsigned char *p = buf;
    ZSTD_DCtx *dc = NULL;
    ZSTD_inBuffer in;
    ZSTD_outBuffer end;
    char *win = NULL, *man = NULL, tail;
    size_t body, mlen, payload, last = 1;
    uint64_t hl;
    int rc, c;

    if ((rc = check_frame(p, len, &hl, ei)) != 0)
        return rc;
    mlen = (size_t)get_u64(p + 16);
    if (get_u64(p + 24) != src->log.len || get_u64(p + 32) != src->snap.len ||
        mlen > EVS__BUNDLE_MANIFEST_MAX)
        return bad(ei, "bundle", 16, "the bundle holds other bytes");
    payload = len - (size_t)hl - EVS__BUNDLE_TRAILER;
    in = (ZSTD_inBuffer){p + hl, payload, 0};
    if (!(dc = ZSTD_createDCtx()) ||
        !(win = evs__malloc(alloc, EVS__BUNDLE_WINDOW)) ||
        !(man = evs__malloc(alloc, mlen + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    /* The manifest only has to be one (the library or level that wrote
     * it may differ); the log and the snapshot must be these bytes. */
    c = stream_compare(dc, &in, win, EVS__BUNDLE_WINDOW, (evs_span){NULL, mlen},
                       man, &last);
    if (c == 0 && (mlen == 0 || man[mlen - 1] != '\n' ||
                   evs__frame_check(man, mlen, &body) != 0))
        c = 1;
    if (c == 0)
        c = stream_compare(dc, &in, win, EVS__BUNDLE_WINDOW, src->log, NULL,
                           &last);
    if (c == 0)
        c = stream_compare(dc, &in, win, EVS__BUNDLE_WINDOW, src->snap, NULL,
                           &last);
    /* The frame ends here: its checksum checked, nothing after it. */
    if (c == 0 && last != 0) {
        end = (ZSTD_outBuffer){&tail, 1, 0};
        last = ZSTD_decompressStream(dc, &end, &in);
        if (end.pos != 0)
            c = 1;
    }
    if (c == 0 && (last != 0 || in.pos != in.size))
        c = -1;
    if (c < 0)
        rc = bad(ei, "compression", hl, "bundle's compressed frame is damaged");
    else if (c > 0)
        rc = bad(ei, "bundle", hl, "the bundle holds other bytes");
    else
        *checksum = get_u64(p + len - 8);
out:
    evs__free(alloc, man);
    evs__free(alloc, win);
    ZSTD_freeDCtx(dc);
    return rc;
}

int evs_bundle_decode(const void *buf, size_t len, const evs_allocator *alloc,
                      evs_bundle **out, evs_error_info *ei)
{
    if ((!buf && len) || !out)
        return -EINVAL;
    return evs__bundle_parse(buf ? buf : "", len, alloc, out, ei);
}

/* Reads a whole file by path through the POSIX table. */
static int read_path(const char *path, const evs_allocator *alloc, char **buf,
                     size_t *len, evs_error_info *ei)
{
    const evs_io *io = evs_io_posix();
    evs_stat st;
    size_t got = 0;
    int fd, rc;

    rc = io->openat(io->ctx, AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK,
                    0, &fd);
    if (rc != 0) {
        evs__error_set(ei, rc, "", "%s: %s", path, evs_strerror(rc));
        return rc;
    }
    if ((rc = io->fstat(io->ctx, fd, &st)) == 0 && (st.mode & 0170000) != 0100000)
        rc = -EINVAL;
    if (rc == 0 && st.size > BUNDLE_MAX)
        rc = -EFBIG;
    if (rc == 0 && !(*buf = evs__malloc(alloc, (size_t)st.size + 1)))
        rc = -ENOMEM;
    if (rc == 0 &&
        (rc = io->pread(io->ctx, fd, *buf, (size_t)st.size, 0, &got)) != 0)
        evs__free(alloc, *buf);
    io->close(io->ctx, fd);
    if (rc != 0) {
        evs__error_set(ei, rc, "", "%s: %s", path,
                       rc == -EINVAL ? "not a regular file" : evs_strerror(rc));
        return rc;
    }
    *len = got;
    return 0;
}

int evs_bundle_open(const char *path, const evs_allocator *alloc,
                    evs_bundle **out, evs_error_info *ei)
{
    char *buf = NULL;
    size_t len;
    int rc;

    if (!path || !out)
        return -EINVAL;
    if ((rc = read_path(path, alloc, &buf, &len, ei)) != 0)
        return rc;
    rc = evs__bundle_parse(buf, len, alloc, out, ei);
    evs__free(alloc, buf);
    return rc;
}

int evs_bundle_verify(const char *path, evs_bundle_manifest *m,
                      evs_error_info *ei)
{
    evs_bundle *b;
    int rc;

    if ((rc = evs_bundle_open(path, NULL, &b, ei)) != 0)
        return rc;
    if (m) {
        *m = b->m;
        m->execution_id = m->status = m->workflow_name = m->lineage =
            m->evstore_version = (evs_span){NULL, 0};
    }
    evs_bundle_close(b);
    return 0;
}

const evs_bundle_manifest *evs_bundle_info(const evs_bundle *b)
{
    return &b->m;
}

evs_span evs_bundle_log(const evs_bundle *b)
{
    return (evs_span){b->content + b->manifest_len, b->log_len};
}

evs_span evs_bundle_snapshot(const evs_bundle *b)
{
    if (!b->snap_len)
        return (evs_span){NULL, 0};
    return (evs_span){b->content + b->manifest_len + b->log_len, b->snap_len};
}

int evs_bundle_next(evs_bundle *b, uint64_t *pos, evs_event *ev, evs_span *raw)
{
    evs_span log = evs_bundle_log(b);
    const char *line, *nl;
    size_t n;
    int rc;

    if (!pos || !ev || *pos > log.len ||
        (*pos > 0 && log.ptr[*pos - 1] != '\n'))
        return -EINVAL;
    if (*pos == log.len)
        return 0;
    line = log.ptr + *pos;
    if (!(nl = memchr(line, '\n', log.len - *pos)))
        return -EINVAL; /* the log was checked whole at open */
    n = (size_t)(nl - line) + 1;
    if ((rc = evs_line_decode(&b->dec, line, n, 0, ev, NULL)) != 0)
        return rc;
    if (raw)
        *raw = (evs_span){line, n};
    *pos += n;
    return 1;
}

void evs_bundle_close(evs_bundle *b)
{
    if (!b)
        return;
    evs_decoder_free(&b->dec);
    evs__free(b->alloc, b->content);
    evs__free(b->alloc, b->strings);
    evs__free(b->alloc, b);
}
