/*
 * archive_record.c: what a store remembers of an execution it archived
 * and deleted, STORE/.archived/<id>.json (formats/BUNDLES.md §5): one
 * checksummed line naming the bundle, so that a lineage that passes
 * through the execution still resolves (evs_inspect_chain names it as
 * archived). Written atomically; removed by a restore.
 */
#include "archive_int.h"
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/* A record is one short line; a longer file is damage. */
#define RECORD_MAX ((uint64_t)1 << 20)

/* Opens STORE/.archived, making it (durably) when `create`. */
static int open_dir(evs_store *s, int create, int *fd)
{
    int rc;

    if (create) {
        /* Synced in every durability mode, as the delete that follows
         * the record is: lineage must not lose an ancestor's record
         * while the ancestor's deletion stays. */
        rc = IO(s)->mkdirat(CTX(s), s->dirfd, EVS__ARCHIVED_DIR, 0700);
        if (rc == 0)
            rc = IO(s)->fsync(CTX(s), s->dirfd);
        if (rc != 0 && rc != -EEXIST)
            return rc;
    }
    return IO(s)->openat(CTX(s), s->dirfd, EVS__ARCHIVED_DIR,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                         fd);
}

static void record_name(const char *id, char out[EVS_ID_MAX + 8])
{
    snprintf(out, EVS_ID_MAX + 8, "%s.json", id);
}

int evs__archived_put(evs_store *s, const evs__archived_src *src,
                      evs_error_info *ei)
{
    const evs_bundle_manifest *m = src->m;
    char name[EVS_ID_MAX + 8], h[16];
    evs__jbuf b = {0};
    int dfd = -1, rc;

    b.alloc = s->alloc;
    EVS__JB_LIT(&b, "{\"v\":1,\"kind\":\"archived\",\"id\":");
    evs__jb_quote(&b, evs_span_cstr(src->id));
    EVS__JB_LIT(&b, ",\"bundle\":");
    evs__jb_str(&b, "\"");
    evs__jb_str(&b, src->id);
    evs__jb_str(&b, EVS_BUNDLE_EXT "\"");
    EVS__JB_LIT(&b, ",\"dir\":");
    evs__jb_quote(&b, evs_span_cstr(src->dir));
    EVS__JB_LIT(&b, ",\"bundle_checksum\":\"");
    evs__hex64(m->bundle_checksum, h);
    evs__jb_raw(&b, h, 16);
    EVS__JB_LIT(&b, "\",\"status\":");
    evs__jb_quote(&b, m->status);
    EVS__JB_LIT(&b, ",\"started_at\":");
    evs__jb_time(&b, m->started_at_us);
    EVS__JB_LIT(&b, ",\"ended_at\":");
    evs__jb_time(&b, m->ended_at_us);
    EVS__JB_LIT(&b, ",\"archived_at\":");
    evs__jb_time(&b, evs_now_us());
    EVS__JB_LIT(&b, ",\"last_seq\":");
    evs__jb_int(&b, (int64_t)m->last_seq);
    EVS__JB_LIT(&b, ",\"lineage\":");
    evs__jb_json(&b, m->lineage);
    EVS__JB_LIT(&b, ",");
    if (evs__jb_reserve(&b, EVS__CKSUM_TAIL_LEN))
        b.len = evs__frame_seal(b.p, b.len);
    if ((rc = b.err) != 0)
        goto out;
    record_name(src->id, name);
    if ((rc = open_dir(s, 1, &dfd)) == 0)
        rc = evs__write_atomic_flags(s, dfd, name, b.p, b.len, NULL,
                                     EVS__WRITE_SYNC);
out:
    if (rc != 0)
        evs__error_set(ei, rc, "", "recording the archival of %s: %s", src->id,
                       evs_strerror(rc));
    if (dfd >= 0)
        IO(s)->close(CTX(s), dfd);
    evs__jb_free(&b);
    return rc;
}

int evs__archived_remove(evs_store *s, const char *id)
{
    char name[EVS_ID_MAX + 8];
    int dfd, rc;

    if ((rc = open_dir(s, 0, &dfd)) != 0)
        return rc == -ENOENT ? 0 : rc;
    record_name(id, name);
    rc = IO(s)->unlinkat(CTX(s), dfd, name, 0);
    if (rc == 0 && evs__sync_meta(s))
        rc = IO(s)->fsync(CTX(s), dfd);
    IO(s)->close(CTX(s), dfd);
    return rc == -ENOENT ? 0 : rc;
}

int evs_archived_get(evs_store *s, const char *id, evs_archived *out,
                     evs_error_info *ei)
{
    char name[EVS_ID_MAX + 8], *buf = NULL;
    evs__jbuf sb = {0};
    size_t len = 0, body, o[4], l[4];
    evs_span obj, t;
    uint64_t v;
    int dfd = -1, rc;

    evs_error_info_clear(ei);
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    /* Only a file store archives: no other has records. */
    if (evs__file_only(s, "archival", NULL) != 0)
        return -ENOENT;
    if (!s || !id || !evs_id_valid(id, strlen(id)))
        return evs__error_rc(ei, EVS_EBADID);
    if ((rc = open_dir(s, 0, &dfd)) == 0) {
        record_name(id, name);
        rc = evs__read_file(s, dfd, name, RECORD_MAX, &buf, &len);
        IO(s)->close(CTX(s), dfd);
    }
    if (rc != 0) {
        evs__error_set(ei, rc, "", "%s has no archival record%s%s",
                       id, rc == -ENOENT ? "" : ": ",
                       rc == -ENOENT ? "" : evs_strerror(rc));
        return rc;
    }
    sb.alloc = s->alloc;
    rc = EVS_ECORRUPT;
    if (len == 0 || buf[len - 1] != '\n' ||
        memchr(buf, '\n', len) != buf + len - 1 ||
        evs__frame_check(buf, len, &body) != 0)
        goto bad;
    obj = (evs_span){buf, len - 1};
    if (evs__ar_u64(obj, "v", &v) != 0)
        goto bad;
    if (v != 1) {
        rc = EVS_EFORMAT;
        evs__error_set(ei, rc, "format",
                       "archival record of %s written in format %llu; this "
                       "library reads format 1",
                       id, (unsigned long long)v);
        goto out;
    }
    if (evs__json_get(obj, "kind", &t) != 1 ||
        !evs__span_eq_cstr(t, "\"archived\"") ||
        evs__ar_str(obj, "id", &sb, &o[0], &l[0]) ||
        evs__ar_str(obj, "bundle", &sb, &o[1], &l[1]) ||
        evs__ar_str(obj, "dir", &sb, &o[2], &l[2]) ||
        evs__ar_hex(obj, "bundle_checksum", &out->bundle_checksum) ||
        evs__ar_str(obj, "status", &sb, &o[3], &l[3]) ||
        evs__ar_time(obj, "started_at", &out->started_at_us) ||
        evs__ar_time(obj, "ended_at", &out->ended_at_us) ||
        evs__ar_time(obj, "archived_at", &out->archived_at_us) ||
        evs__ar_u64(obj, "last_seq", &out->last_seq) ||
        evs__json_get(obj, "lineage", &t) != 1)
        goto bad;
    v = sb.len;
    if (!evs__json_is_null(t))
        evs__jb_raw(&sb, t.ptr, t.len);
    if ((rc = sb.err) != 0)
        goto out;
    out->id = (evs_span){sb.p + o[0], l[0]};
    if (!evs__span_eq_cstr(out->id, id)) {
        rc = EVS_ECORRUPT;
        goto bad;
    }
    out->bundle = (evs_span){sb.p + o[1], l[1]};
    out->dir = (evs_span){sb.p + o[2], l[2]};
    out->status = (evs_span){sb.p + o[3], l[3]};
    out->lineage = (evs_span){sb.p + v, sb.len - (size_t)v};
    out->mem_ = sb.p;
    out->alloc_ = s->alloc;
    sb.p = NULL;
    rc = 0;
    goto out;
bad:
    evs__error_set(ei, rc, "checksum", "the archival record of %s is damaged",
                   id);
out:
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        evs__error_set_id(ei, id, strlen(id));
    }
    evs__jb_free(&sb);
    evs__free(s->alloc, buf);
    return rc;
}

void evs_archived_free(evs_archived *a)
{
    if (!a)
        return;
    evs__free(a->alloc_, a->mem_);
    memset(a, 0, sizeof(*a));
}
