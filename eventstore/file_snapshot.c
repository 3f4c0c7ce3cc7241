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

/* Reads of a large snapshot go this many bytes at a time, so that each
 * piece is checksummed while the cache still holds it. */
#define SNAP_CHUNK ((size_t)1 << 20)

/*
 * The file is read once into a buffer sized by fstat, and decoded where
 * it was read: the body's fields, most of all the replay state that is
 * most of a large snapshot, are never copied. It is read in pieces, each
 * checksummed as it arrives (evs__snapshot_buf_filled), so that checking
 * the sums costs no pass over memory of its own. The state is handed on
 * unlooked-into when the caller asks (EVS_SNAPSHOT_STATE_RAW: the replay
 * layer, which checks it as it parses it, so that looking at it here too
 * would cost a second pass over the largest field for nothing). The
 * checksums and every other field are checked as always.
 */
int evs__file_snapshot_read(evs_store *s, int dirfd, unsigned flags,
                            evs_snapshot **out, evs_error_info *info)
{
    char *buf = NULL;
    size_t got, off = 0, size;
    evs_stat st;
    int fd, rc;

    rc = evs__open_regular(s, dirfd, EVS__SNAP_NAME, O_RDONLY, 0, &fd, &st);
    if (rc != 0)
        return rc;
    if (st.size > SNAP_MAX) {
        rc = EVS_ECORRUPT;
        evs__error_set(info, rc, "size",
                       "snapshot of %llu bytes is too "
                       "large",
                       (unsigned long long)st.size);
        goto out;
    }
    size = (size_t)st.size;
    buf = evs__snapshot_buf(s->alloc, size);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    while (off < size) {
        size_t n = size - off < SNAP_CHUNK ? size - off : SNAP_CHUNK;
        if ((rc = IO(s)->pread(CTX(s), fd, buf + off, n, off, &got)) != 0)
            goto out;
        off += got;
        evs__snapshot_buf_filled(buf, off);
        if (got < n)
            break; /* the file ends early: decoding will say so */
    }
    rc = evs__snapshot_decode_buf(buf, off, flags, out, info);
    if (rc == 0)
        buf = NULL; /* it is *out now */
    /* A caller that does not parse the state itself gets one that is
     * JSON: checksums catch damage, not a writer's bug. */
    if (rc == 0 && !(flags & EVS_SNAPSHOT_STATE_RAW) && (*out)->state.len &&
        evs_json_check((*out)->state.ptr, (*out)->state.len, 0, NULL, NULL,
                       NULL) != 0) {
        evs_snapshot_free(*out);
        *out = NULL;
        rc = EVS_EPARSE;
        evs__error_set(info, rc, "syntax", "snapshot state is not JSON");
    }
out:
    IO(s)->close(CTX(s), fd);
    evs__snapshot_buf_free(buf);
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
    rc = evs_snapshot_decode(buf, hlen + 1, EVS_SNAPSHOT_HEADER_ONLY, s->alloc,
                             out, NULL);
    evs__free(s->alloc, buf);
    return rc;
}

int evs__file_snapshot_header(evs_store *s, int dirfd, char **hdr, size_t *hlen,
                              evs_stat *st, evs_snapshot **out)
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
                            unsigned flags, evs_snapshot **out,
                            evs_error_info *info)
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
    rc = evs__file_snapshot_read(s, dfd, flags, &sn, info);
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
                            const evs_snapshot *snap, unsigned flags)
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
    if ((rc = evs__writer_enter(s)) != 0 ||
        (rc = evs__open_exec_dir(s, name, &dfd)) != 0)
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
    rc = evs__write_atomic_flags(
        s, dfd, EVS__SNAP_NAME, buf, len, &st,
        flags & EVS_SNAPSHOT_CACHE ? EVS__WRITE_NOSYNC : 0);
    /* On an error the rename may have been made (a failed sync of the
     * directory): the index then only says the execution is there, and
     * a listing reads its snapshot. */
    if (rc == 0)
        evs__index_note(s, name, buf, len, &st);
    else
        evs__index_note_bare(s, name);
out:
    if (dfd >= 0)
        IO(s)->close(CTX(s), dfd);
    evs__free(s->alloc, buf);
    return rc;
}
