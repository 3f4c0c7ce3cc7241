/*
 * file_snapshot.c: the file backend's snapshots: atomic replacement
 * (temporary file, fsync, rename, fsync of the directory) and checked
 * loading. A snapshot is only a cache of the log, so a snapshot that is
 * ahead of its log is refused rather than believed.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/* Snapshots larger than this are refused as damaged rather than read. */
#define SNAP_MAX ((uint64_t)1 << 30)
/* The encoder never writes a longer header line: longer is damage. */
#define HEADER_READ EVS_SNAPSHOT_HEADER_MAX

int evs__file_snapshot_read(evs_store *s, int dirfd, evs_snapshot **out,
                            evs_error_info *info)
{
    char *buf = NULL;
    size_t got;
    evs_stat st;
    int fd, rc;

    rc = evs__open_regular(s, dirfd, EVS__SNAP_NAME, O_RDONLY, 0, &fd, &st);
    if (rc != 0)
        return rc;
    if (st.size > SNAP_MAX) {
        rc = EVS_ECORRUPT;
        evs__error_set(info, rc, "size", "snapshot of %llu bytes is too "
                       "large", (unsigned long long)st.size);
        goto out;
    }
    buf = evs__malloc(s->alloc, st.size ? (size_t)st.size : 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = IO(s)->pread(CTX(s), fd, buf, (size_t)st.size, 0, &got)) != 0)
        goto out;
    rc = evs_snapshot_decode(buf, got, 0, s->alloc, out, info);
out:
    IO(s)->close(CTX(s), fd);
    evs__free(s->alloc, buf);
    return rc;
}

int evs__snapshot_decode_header(evs_store *s, const char *hdr, size_t hlen,
                                evs_snapshot **out)
{
    char *buf = evs__malloc(s->alloc, hlen + 1);
    int rc;

    if (!buf)
        return -ENOMEM;
    memcpy(buf, hdr, hlen);
    buf[hlen] = '\n';
    rc = evs_snapshot_decode(buf, hlen + 1, EVS_SNAPSHOT_HEADER_ONLY,
                             s->alloc, out, NULL);
    evs__free(s->alloc, buf);
    return rc;
}

int evs__file_snapshot_header(evs_store *s, int dirfd, char **hdr,
                              size_t *hlen, evs_stat *st, evs_snapshot **out)
{
    const char *nl = NULL;
    size_t n, got;
    evs_stat sb;
    char *buf;
    int fd, rc;

    if (!st)
        st = &sb;
    rc = evs__open_regular(s, dirfd, EVS__SNAP_NAME, O_RDONLY, 0, &fd, st);
    if (rc != 0)
        return rc;
    n = st->size < HEADER_READ ? (size_t)st->size : HEADER_READ;
    buf = evs__malloc(s->alloc, n ? n : 1);
    if (!buf) {
        IO(s)->close(CTX(s), fd);
        return -ENOMEM;
    }
    rc = IO(s)->pread(CTX(s), fd, buf, n, 0, &got);
    IO(s)->close(CTX(s), fd);
    if (rc == 0 && !(nl = memchr(buf, '\n', got)))
        rc = EVS_ECORRUPT;
    if (rc == 0 && out)
        rc = evs__snapshot_decode_header(s, buf, (size_t)(nl - buf), out);
    if (rc != 0 || !hdr) {
        evs__free(s->alloc, buf);
        return rc;
    }
    *hdr = buf;
    *hlen = (size_t)(nl - buf);
    return 0;
}

int evs__file_snapshot_load(evs_store *s, const char *id, size_t id_len,
                            evs_snapshot **out, evs_error_info *info)
{
    char name[EVS_ID_MAX + 1];
    evs_snapshot *sn = NULL;
    uint64_t last;
    int dfd, rc;

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    evs__error_set_id(info, id, id_len);
    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0)
        return rc;
    rc = evs__file_snapshot_read(s, dfd, &sn, info);
    IO(s)->close(CTX(s), dfd);
    if (rc != 0) {
        if (info && info->code == 0)
            evs__error_refused(info, rc, name, EVS__SNAP_NAME);
        return rc;
    }
    if (!evs__span_eq(sn->id, (evs_span){id, id_len})) {
        rc = EVS_ECORRUPT;
        evs__error_set(info, rc, "execution",
                       "snapshot of %s names another execution", name);
        goto fail;
    }
    if ((rc = evs__log_peek_last(s, id, id_len, &last)) != 0) {
        evs__error_refused(info, rc, name, EVS__LOG_NAME);
        goto fail;
    }
    if (sn->last_event_seq > last) {
        rc = EVS_ESTALE;
        evs__error_set(info, rc, "stale",
                       "snapshot of %s is at sequence %llu but the log "
                       "ends at %llu; rebuild it from the log",
                       name, (unsigned long long)sn->last_event_seq,
                       (unsigned long long)last);
        if (info)
            info->sequence = sn->last_event_seq;
        goto fail;
    }
    *out = sn;
    return 0;
fail:
    evs_snapshot_free(sn);
    return rc;
}

int evs__file_snapshot_save(evs_store *s, const char *id, size_t id_len,
                            const evs_snapshot *snap)
{
    char name[EVS_ID_MAX + 1];
    evs_snapshot sn = *snap, *old;
    evs_stat st;
    char *buf = NULL;
    size_t len;
    uint64_t last;
    int dfd = -1, rc;

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    sn.id.ptr = name;
    sn.id.len = id_len;
    if (sn.updated_at_us == 0)
        sn.updated_at_us = evs_now_us();
    if ((rc = evs__log_peek_last(s, id, id_len, &last)) != 0)
        return rc;
    if (sn.last_event_seq > last)
        return EVS_ESTALE;
    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0)
        return rc;
    /* created_at belongs to the execution, not to one snapshot: keep the
     * one the execution was created with unless the caller sets it. */
    if (sn.created_at_us == 0 &&
        evs__file_snapshot_header(s, dfd, NULL, NULL, NULL, &old) == 0) {
        sn.created_at_us = old->created_at_us;
        evs_snapshot_free(old);
    }
    if ((rc = evs_snapshot_encode(&sn, s->alloc, &buf, &len)) != 0)
        goto out;
    rc = evs__write_atomic(s, dfd, EVS__SNAP_NAME, buf, len, &st);
    if (rc == 0)
        evs__index_note(s, name, buf, len, &st);
out:
    if (dfd >= 0)
        IO(s)->close(CTX(s), dfd);
    evs__free(s->alloc, buf);
    return rc;
}
