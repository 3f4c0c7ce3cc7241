/*
 * archive.c: archiving an execution of a store to a bundle, and restoring
 * one (evstore/archive.h; formats/BUNDLES.md §4).
 *
 * Archive-then-delete must never lose an execution: the execution goes
 * only once a bundle holding exactly its bytes is durable under its final
 * name and has been read back. Everything happens under the execution's
 * writer lock, so nothing can be appended between the reading and the
 * deleting. The order of the steps is the whole of the crash argument:
 * write the bundle to a temporary name and fsync it, rename it into
 * place and fsync the directory, read it back and compare, record the
 * archival, and only then rename the execution away (evs__trash_exec).
 */
#include "archive_int.h"
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/* The largest log or snapshot archived: a bundle is made in memory. */
#define PART_MAX ((uint64_t)1 << 36)

void evs_archive_opts_init(evs_archive_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->level = EVS_ARCHIVE_LEVEL_DEFAULT;
}

/* Reads what fd holds into *buf, `size` bytes (the store's allocator). */
static int read_fd(evs_store *s, int fd, uint64_t size, char **buf,
                   size_t *len)
{
    size_t got = 0;
    int rc;

    if (!(*buf = evs__malloc(s->alloc, (size_t)size + 1)))
        return -ENOMEM;
    rc = IO(s)->pread(CTX(s), fd, *buf, (size_t)size, 0, &got);
    if (rc == 0 && got != size)
        rc = -EIO; /* shrank under us: no writer may do that */
    if (rc != 0) {
        evs__free(s->alloc, *buf);
        *buf = NULL;
        return rc;
    }
    *len = got;
    return 0;
}

int evs__read_file(evs_store *s, int dirfd, const char *name, uint64_t max,
                   char **buf, size_t *len)
{
    evs_stat st;
    int fd, rc;

    if ((rc = evs__open_regular(s, dirfd, name, O_RDONLY, 0, &fd, &st)) != 0)
        return rc;
    rc = st.size > max ? -EFBIG : read_fd(s, fd, st.size, buf, len);
    IO(s)->close(CTX(s), fd);
    return rc;
}

/* What archiving reads of an execution, under its lock. */
typedef struct source {
    int dfd, fd; /* the execution's directory and its locked log */
    char *log, *snap;
    size_t log_len, snap_len;
    uint64_t torn; /* bytes after the log's end */
    evs__log_facts facts;
    evs_span status;
    char status_buf[16];
} source;

static int source_read(evs_store *s, const char *id, source *src,
                       evs_error_info *ei)
{
    size_t id_len = strlen(id);
    evs_snapshot *sn = NULL;
    evs__tail t;
    evs_stat st;
    int rc;

    if ((rc = evs__open_exec_dir(s, id, &src->dfd)) != 0)
        goto fail;
    rc = evs__open_regular(s, src->dfd, EVS__LOG_NAME, O_RDWR, 0, &src->fd,
                           &st);
    if (rc != 0) {
        evs__error_refused(ei, rc, id, EVS__LOG_NAME);
        goto fail;
    }
    rc = IO(s)->lock(CTX(s), src->fd, EVS_LOCK_TRY);
    if (rc != 0) {
        rc = rc == -EAGAIN ? EVS_ELOCKED : rc;
        evs__error_set(ei, rc, "lock", "%s is open by a writer", id);
        return rc;
    }
    if (st.size > PART_MAX) {
        rc = -EFBIG;
        evs__error_set(ei, rc, "", "the log of %s is too large to archive",
                       id);
        return rc;
    }
    if ((rc = evs__find_tail(s, src->fd, st.size, id, id_len, &t, ei)) != 0)
        return rc;
    src->torn = st.size - t.end;
    if ((rc = read_fd(s, src->fd, t.end, &src->log, &src->log_len)) != 0)
        goto fail;
    rc = evs__log_check(src->log, src->log_len, id, id_len, s->alloc,
                        &src->facts, ei);
    if (rc != 0)
        return rc;
    rc = evs__read_file(s, src->dfd, EVS__SNAP_NAME, PART_MAX, &src->snap,
                        &src->snap_len);
    if (rc == 0)
        rc = evs_snapshot_decode(src->snap, src->snap_len,
                                 EVS_SNAPSHOT_STATE_RAW, s->alloc, &sn, NULL);
    if (rc == 0 && (sn->last_event_seq > src->facts.last_seq ||
                    !evs__span_eq_cstr(sn->id, id)))
        rc = EVS_ESTALE;
    if (rc == 0 && !src->facts.status && sn->status.len &&
        sn->status.len < sizeof(src->status_buf)) {
        memcpy(src->status_buf, sn->status.ptr, sn->status.len);
        src->status = (evs_span){src->status_buf, sn->status.len};
    }
    if (rc != 0 && rc != -ENOENT)
        evs__logf(s, EVS_LOG_WARN, EVS_LOG_FIELDS(.execution = id, .err = rc),
                  "archive: its snapshot is left out of the bundle (%s); "
                  "the log is the truth",
                  evs_strerror(rc));
    if (rc != 0) {
        evs__free(s->alloc, src->snap);
        src->snap = NULL;
        src->snap_len = 0;
    }
    evs_snapshot_free(sn);
    if (src->facts.status)
        src->status = evs_span_cstr(src->facts.status);
    else if (!src->status.len)
        src->status = evs_span_cstr("running");
    return 0;
fail:
    evs__error_set(ei, rc, "", "%s: %s", id, evs_strerror(rc));
    return rc;
}

static void source_free(evs_store *s, source *src)
{
    if (src->fd >= 0)
        IO(s)->close(CTX(s), src->fd);
    if (src->dfd >= 0)
        IO(s)->close(CTX(s), src->dfd);
    evs__free(s->alloc, src->log);
    evs__free(s->alloc, src->snap);
}

/* Reads DIR/name back and checks that it holds the source's bytes
 * (evs__bundle_holds); *len gets its size, *ck its checksum. Returns 0,
 * -ENOENT, EVS_ECORRUPT (another bundle, or a damaged one) or -errno. */
static int read_back(evs_store *s, int ddfd, const char *name,
                     const evs__bundle_src *bs, uint64_t *len, uint64_t *ck,
                     evs_error_info *ei)
{
    char *buf = NULL;
    size_t n = 0;
    int rc;

    rc = evs__read_file(s, ddfd, name, (uint64_t)1 << 40, &buf, &n);
    if (rc == 0)
        rc = evs__bundle_holds(buf, n, bs, s->alloc, ck, ei);
    evs__free(s->alloc, buf);
    *len = n;
    return rc;
}

/* Writes the bundle to a temporary name in ddfd, fsyncs it, renames it
 * to `name` (replacing nothing) and fsyncs ddfd. Bundles are synced in
 * every durability mode: the execution may be deleted next. */
static int write_bundle(evs_store *s, int ddfd, const char *name,
                        const char *buf, size_t len)
{
    char tmp[EVS_ID_MAX + 48], sfx[17];
    struct iovec iov = {(void *)buf, len};
    int fd = -1, rc;

    if ((rc = evs__rand_suffix(sfx)) != 0)
        return rc;
    snprintf(tmp, sizeof(tmp), EVS__TMP_PREFIX "%s-%s", sfx, name);
    rc = IO(s)->openat(CTX(s), ddfd, tmp,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600, &fd);
    if (rc != 0)
        return rc;
    rc = IO(s)->pwritev(CTX(s), fd, &iov, 1, 0);
    if (rc == 0)
        rc = IO(s)->fsync(CTX(s), fd);
    IO(s)->close(CTX(s), fd);
    if (rc == 0)
        rc = IO(s)->renameat(CTX(s), ddfd, tmp, ddfd, name, RENAME_NOREPLACE);
    if (rc != 0) {
        IO(s)->unlinkat(CTX(s), ddfd, tmp, 0);
        return rc;
    }
    return IO(s)->fsync(CTX(s), ddfd);
}

/* The manifest of the bundle of src, from what the archive read. */
static void manifest_of(const char *id, const source *src, uint64_t bytes,
                        uint64_t ck, evs_bundle_manifest *m)
{
    memset(m, 0, sizeof(*m));
    m->format = EVS_BUNDLE_FORMAT;
    m->execution_id = evs_span_cstr(id);
    m->events = src->facts.events;
    m->last_seq = src->facts.last_seq;
    m->log_bytes = src->log_len;
    m->snapshot_bytes = src->snap_len;
    m->status = src->status;
    m->started_at_us = src->facts.started_us;
    m->ended_at_us = src->facts.ended_us;
    m->lineage = src->facts.lineage;
    m->bundle_bytes = bytes;
    m->bundle_checksum = ck;
}

static void fill_info(evs_archive_info *info, const evs_bundle_manifest *m)
{
    memset(info, 0, sizeof(*info));
    snprintf(info->execution_id, sizeof(info->execution_id), "%.*s",
             (int)m->execution_id.len, m->execution_id.ptr);
    info->events = m->events;
    info->last_seq = m->last_seq;
    info->log_bytes = m->log_bytes;
    info->snapshot_bytes = m->snapshot_bytes;
    info->bundle_bytes = m->bundle_bytes;
    info->bundle_checksum = m->bundle_checksum;
    snprintf(info->status, sizeof(info->status), "%.*s", (int)m->status.len,
             m->status.ptr);
}

int evs_archive_exec(evs_store *s, const char *id, const char *dir,
                     const evs_archive_opts *opts, evs_archive_info *info,
                     evs_error_info *ei)
{
    evs_archive_opts o;
    source src = {.dfd = -1, .fd = -1};
    evs__bundle_src bs;
    evs_bundle_manifest m;
    evs__archived_src rec;
    char name[EVS_ID_MAX + 8], *buf = NULL;
    size_t len = 0;
    uint64_t ck = 0, blen = 0;
    int ddfd = -1, rc, existed = 0, deleted = 0;

    evs_error_info_clear(ei);
    if (s && (rc = evs__file_only(s, "archival", ei)) != 0)
        return rc;
    evs_archive_opts_init(&o);
    if (!s || !dir || (opts && evs__opts_read(&o, sizeof(o), opts,
                                              EVS__OPTS_SIZE(evs_archive_opts,
                                                             force)) != 0) ||
        o.level < 1 || o.level > 19)
        return evs__error_rc(ei, -EINVAL);
    if (!id || !evs_id_valid(id, strlen(id)))
        return evs__error_rc(ei, EVS_EBADID);
    evs__error_set_id(ei, id, strlen(id));
    if ((rc = source_read(s, id, &src, ei)) != 0)
        goto out;
    if (!src.facts.status && !o.force) {
        rc = -EBUSY;
        evs__error_set(ei, rc, "status",
                       "%s has not ended (status %.*s); archiving it needs "
                       "force",
                       id, (int)src.status.len, src.status.ptr);
        goto out;
    }
    if (src.torn && o.delete_after) {
        rc = EVS_ETORN;
        evs__error_set(ei, rc, "torn",
                       "%s has a torn tail of %llu bytes; open it as its "
                       "writer to cut it back before deleting it",
                       id, (unsigned long long)src.torn);
        goto out;
    }
    bs = (evs__bundle_src){id,
                           strlen(id),
                           {src.log, src.log_len},
                           {src.snap, src.snap_len},
                           &src.facts,
                           src.status,
                           o.level};
    rc = IO(s)->openat(CTX(s), AT_FDCWD, dir,
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &ddfd);
    if (rc != 0) {
        evs__error_set(ei, rc, "", "%s: %s", dir, evs_strerror(rc));
        goto out;
    }
    snprintf(name, sizeof(name), "%s" EVS_BUNDLE_EXT, id);
    /* A bundle already there is kept if it is this one: an archive that
     * was interrupted before its delete is run again. */
    rc = read_back(s, ddfd, name, &bs, &blen, &ck, NULL);
    if (rc == 0) {
        existed = 1;
    } else if (rc != -ENOENT) {
        rc = -EEXIST;
        evs__error_set(ei, rc, "bundle",
                       "%s/%s exists and is not a bundle of these bytes; "
                       "refused",
                       dir, name);
        goto out;
    } else {
        if ((rc = evs__bundle_encode(&bs, s->alloc, &buf, &len, &ck)) != 0) {
            evs__error_set(ei, rc, "", "making the bundle of %s: %s", id,
                           evs_strerror(rc));
            goto out;
        }
        if ((rc = write_bundle(s, ddfd, name, buf, len)) != 0) {
            evs__error_set(ei, rc, "", "writing %s/%s: %s", dir, name,
                           evs_strerror(rc));
            goto out;
        }
        /* Read back from the file: what is on disk is checked, and its
         * content compared with the bytes read from the store. */
        if ((rc = read_back(s, ddfd, name, &bs, &blen, &ck, ei)) != 0) {
            evs__error_set(ei, rc, ei && ei->kind[0] ? ei->kind : "bundle",
                           "%s/%s did not read back as written: %s", dir, name,
                           evs_strerror(rc));
            goto out;
        }
    }
    manifest_of(id, &src, blen, ck, &m);
    if (o.delete_after) {
        rec = (evs__archived_src){id, dir, &m};
        if ((rc = evs__archived_put(s, &rec, ei)) != 0)
            goto out;
        rc = evs__trash_exec(s, id, src.dfd, src.fd);
        src.dfd = src.fd = -1;
        if (rc != 0) {
            evs__error_set(ei, rc, "", "deleting %s after archiving it: %s", id,
                           evs_strerror(rc));
            goto out;
        }
        deleted = 1;
    }
    evs__logf(s, EVS_LOG_INFO, EVS_LOG_FIELDS(.execution = id),
              "archived to %s/%s (%llu events, %zu log bytes, %llu bundle "
              "bytes)%s%s",
              dir, name, (unsigned long long)src.facts.events, src.log_len,
              (unsigned long long)blen, existed ? ", bundle already there" : "",
              deleted ? ", execution deleted" : "");
    if (info) {
        fill_info(info, &m);
        info->deleted = deleted;
        info->existed = existed;
    }
out:
    if (ddfd >= 0)
        IO(s)->close(CTX(s), ddfd);
    evs__free(s->alloc, buf);
    source_free(s, &src);
    return evs__error_rc(ei, rc);
}

int evs_archive_restore(evs_store *s, const char *path, evs_archive_info *info,
                        evs_error_info *ei)
{
    const evs_bundle_manifest *m;
    evs_bundle *b = NULL;
    char id[EVS_ID_MAX + 1], *buf = NULL;
    size_t len = 0;
    evs_span log, snap;
    evs_stat st;
    int fd, rc;

    evs_error_info_clear(ei);
    if (!s || !path)
        return evs__error_rc(ei, -EINVAL);
    if ((rc = evs__file_only(s, "restoring from an archive", ei)) != 0)
        return rc;
    /* The path is the user's: a symbolic link to a bundle is followed. */
    rc = IO(s)->openat(CTX(s), AT_FDCWD, path,
                       O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0, &fd);
    if (rc == 0) {
        rc = IO(s)->fstat(CTX(s), fd, &st);
        if (rc == 0 && !S_ISREG(st.mode))
            rc = -EINVAL;
        if (rc == 0)
            rc = read_fd(s, fd, st.size, &buf, &len);
        IO(s)->close(CTX(s), fd);
    }
    if (rc != 0) {
        evs__error_set(ei, rc, "", "%s: %s", path,
                       rc == -EINVAL ? "not a regular file" : evs_strerror(rc));
        goto out;
    }
    if ((rc = evs__bundle_parse(buf, len, s->alloc, &b, ei)) != 0)
        goto out;
    m = evs_bundle_info(b);
    memcpy(id, m->execution_id.ptr, m->execution_id.len);
    id[m->execution_id.len] = '\0';
    log = evs_bundle_log(b);
    snap = evs_bundle_snapshot(b);
    rc = evs__create_exec_raw(s, id, log.ptr, log.len, snap.ptr, snap.len,
                              0);
    if (rc != 0) {
        evs__error_set(ei, rc, "",
                       rc == -EEXIST ? "%s already exists in the store; "
                                       "restore refused, nothing changed"
                                     : "restoring %s: %s",
                       id, evs_strerror(rc));
        evs__error_set_id(ei, id, strlen(id));
        goto out;
    }
    if (evs__archived_remove(s, id) != 0)
        evs__logf(s, EVS_LOG_WARN, EVS_LOG_FIELDS(.execution = id),
                  "restored, but its archival record could not be removed");
    evs__logf(s, EVS_LOG_INFO, EVS_LOG_FIELDS(.execution = id),
              "restored from %s (%llu events)", path,
              (unsigned long long)m->events);
    if (info)
        fill_info(info, m);
out:
    evs_bundle_close(b);
    evs__free(s->alloc, buf);
    return evs__error_rc(ei, rc);
}
