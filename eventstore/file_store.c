/*
 * file_store.c: the file backend's store: opening the store directory,
 * creating and deleting executions, the helpers for safe, atomic file
 * operations that the other file_*.c files share, and the backend's table.
 * Listing is in file_list.c, cleanup in file_cleanup.c.
 *
 * Every path is opened relative to the store's directory fd with
 * O_NOFOLLOW and O_CLOEXEC; names are never concatenated into paths.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

int evs__rand_suffix(char out[17])
{
    uint64_t r;
    ssize_t n;

    do
        n = getrandom(&r, sizeof(r), 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(r))
        return n < 0 ? -errno : -EIO;
    evs__hex64(r, out);
    out[16] = '\0';
    return 0;
}

int evs__open_regular(evs_store *s, int dirfd, const char *name, int flags,
                      mode_t mode, int *fd, evs_stat *out)
{
    evs_stat st;
    int rc, f;

    /* O_NONBLOCK keeps a planted FIFO from blocking the open; it changes
     * nothing for regular files. */
    rc = IO(s)->openat(CTX(s), dirfd, name,
                       flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode, &f);
    if (rc != 0)
        return rc;
    rc = IO(s)->fstat(CTX(s), f, &st);
    if (rc == 0 && !S_ISREG(st.mode))
        rc = -EINVAL;
    if (rc == 0 && st.nlink > 1)
        rc = EVS_EUNSAFE; /* a hard link could alias a file elsewhere */
    if (rc != 0) {
        IO(s)->close(CTX(s), f);
        return rc;
    }
    if (out)
        *out = st;
    *fd = f;
    return 0;
}

/* Says which file evs__open_regular refused and why: the codes alone
 * read as something else (EVS_EUNSAFE's message is about the store
 * directory's permissions). Other errors are left to the caller. */
void evs__error_refused(evs_error_info *info, int rc, const char *id,
                        const char *name)
{
    const char *why = rc == -ELOOP        ? "is a symbolic link"
                      : rc == EVS_EUNSAFE ? "has more than one hard link"
                      : rc == -EINVAL     ? "is not a regular file"
                                          : NULL;

    if (why)
        evs__error_set(info, rc, "unsafe", "%s/%s %s; refused", id, name, why);
}

int evs__open_exec_dir(evs_store *s, const char *id, int *fd)
{
    return IO(s)->openat(CTX(s), s->dirfd, id,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                         fd);
}

int evs__write_atomic(evs_store *s, int dirfd, const char *name,
                      const void *buf, size_t len, evs_stat *st)
{
    return evs__write_atomic_flags(s, dirfd, name, buf, len, st, 0);
}

int evs__write_atomic_flags(evs_store *s, int dirfd, const char *name,
                            const void *buf, size_t len, evs_stat *st,
                            unsigned rename_flags)
{
    char tmp[64], sfx[17];
    struct iovec iov;
    int fd = -1, rc;
    int sync = (evs__sync_meta(s) || (rename_flags & EVS__WRITE_SYNC)) &&
               !(rename_flags & EVS__WRITE_NOSYNC);

    if ((rc = evs__rand_suffix(sfx)) != 0)
        return rc;
    snprintf(tmp, sizeof(tmp), EVS__TMP_PREFIX "%s", sfx);
    rc = IO(s)->openat(CTX(s), dirfd, tmp,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600, &fd);
    if (rc != 0)
        return rc;
    iov.iov_base = (void *)buf;
    iov.iov_len = len;
    rc = IO(s)->pwritev(CTX(s), fd, &iov, 1, 0);
    if (rc == 0 && sync)
        rc = IO(s)->fsync(CTX(s), fd);
    if (rc == 0)
        rc = IO(s)->renameat(CTX(s), dirfd, tmp, dirfd, name,
                             rename_flags &
                                 ~(EVS__WRITE_SYNC | EVS__WRITE_NOSYNC));
    /* After the rename, for the listing index: the rename changed the
     * file's ctime. */
    if (rc == 0 && st && IO(s)->fstat(CTX(s), fd, st) != 0)
        memset(st, 0, sizeof(*st));
    IO(s)->close(CTX(s), fd);
    if (rc != 0) {
        IO(s)->unlinkat(CTX(s), dirfd, tmp, 0);
        return rc;
    }
    /* The rename is durable only once the directory is. */
    return sync ? IO(s)->fsync(CTX(s), dirfd) : 0;
}

static void file_close(evs_store *s);

static int file_open(evs_store *s, const char *path)
{
    evs_stat st;
    int rc, fd, made = 0;

    s->wfd = -1;
    rc = IO(s)->openat(CTX(s), AT_FDCWD, path,
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &fd);
    if (rc == -ENOENT && s->opts.create) {
        rc = IO(s)->mkdirat(CTX(s), AT_FDCWD, path, 0700);
        if (rc != 0 && rc != -EEXIST)
            return rc;
        made = rc == 0;
        rc = IO(s)->openat(CTX(s), AT_FDCWD, path,
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &fd);
    }
    if (rc != 0)
        return rc;
    rc = IO(s)->fstat(CTX(s), fd, &st);
    if (rc == 0 && (st.mode & 022) && !s->opts.allow_unsafe_perms)
        rc = EVS_EUNSAFE;
    /* Kept for evs_request_dir, whose caller needs a path to watch. */
    if (rc == 0) {
        size_t n = strlen(path) + 1;
        if ((s->path = evs__malloc(s->alloc, n)) != NULL)
            memcpy(s->path, path, n);
        else
            rc = -ENOMEM;
    }
    if (rc == 0 && (rc = -pthread_mutex_init(&s->wmu, NULL)) != 0) {
        evs__free(s->alloc, s->path);
        s->path = NULL;
    }
    if (rc == 0 && (rc = -pthread_mutex_init(&s->ixmu, NULL)) != 0) {
        pthread_mutex_destroy(&s->wmu);
        evs__free(s->alloc, s->path);
        s->path = NULL;
    }
    if (rc != 0) {
        IO(s)->close(CTX(s), fd);
        return rc;
    }
    s->dirfd = fd;
    /* A store made here starts with a complete (empty) listing index,
     * so that its listings never need to read its directory. */
    if (made && (rc = evs__index_create(s)) != 0) {
        file_close(s);
        return rc;
    }
    return 0;
}

static void file_close(evs_store *s)
{
    evs__writer_leave(s);
    pthread_mutex_destroy(&s->wmu);
    evs__index_free(s, s->ix);
    s->ix = NULL;
    pthread_mutex_destroy(&s->ixmu);
    if (s->dirfd >= 0)
        IO(s)->close(CTX(s), s->dirfd);
    s->dirfd = -1;
    evs__free(s->alloc, s->path);
    s->path = NULL;
}

typedef struct remover {
    evs_store *s;
    int dfd;
    int depth; /* levels of subdirectories still allowed below dfd */
} remover;

/* Removes one entry. Best effort: whatever stays makes the final rmdir
 * fail, which the caller reports. */
static int unlink_cb(void *arg, const char *name, size_t len)
{
    remover *r = arg;
    evs_store *s = r->s;
    int rc;

    (void)len;
    rc = IO(s)->unlinkat(CTX(s), r->dfd, name, 0);
    /* unlink(2) of a directory fails with EISDIR on Linux, EPERM in
     * POSIX. */
    if ((rc == -EISDIR || rc == -EPERM) && r->depth > 0)
        evs__remove_dir_at(s, r->dfd, name, r->depth - 1);
    return 0;
}

/* Removes everything in the directory `name` of `parent`, then the
 * directory. Returns the rmdir result. */
int evs__remove_dir_at(evs_store *s, int parent, const char *name, int depth)
{
    remover r;
    int rc;

    rc = IO(s)->openat(CTX(s), parent, name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                       &r.dfd);
    if (rc != 0)
        return rc;
    r.s = s;
    r.depth = depth;
    rc = IO(s)->listdir(CTX(s), r.dfd, unlink_cb, &r);
    IO(s)->close(CTX(s), r.dfd);
    if (rc != 0)
        return rc;
    return IO(s)->unlinkat(CTX(s), parent, name, AT_REMOVEDIR);
}

/* Removes the directory `name` of the store and what it holds. */
int evs__remove_tree(evs_store *s, const char *name)
{
    return evs__remove_dir_at(s, s->dirfd, name, EVS__REMOVE_DEPTH);
}

/* Whether directory `name` of the store has a log: 0 yes, -ENOENT (a
 * directory without one), or another error (no such directory...). */
static int log_present(evs_store *s, const char *name)
{
    int dfd, fd, rc;

    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0)
        return rc == -ENOENT ? -ENOTDIR : rc;
    rc = evs__open_regular(s, dfd, EVS__LOG_NAME, O_RDONLY, 0, &fd, NULL);
    if (rc == 0)
        IO(s)->close(CTX(s), fd);
    IO(s)->close(CTX(s), dfd);
    return rc;
}

/* Whether `name` is a directory that is not an execution: no log in it.
 * Creations build under temporary names, so such a directory is never
 * one in progress. */
int evs__is_husk(evs_store *s, const char *name)
{
    return log_present(s, name) == -ENOENT;
}

/* Builds execution `name` from its files' bytes: the log log[0..len) and
 * the snapshot snap[0..slen) (none when slen is 0), under a temporary
 * name renamed into place without replacing anything (FORMAT.md §10).
 * flags: EVS_SNAPSHOT_CACHE writes the snapshot without its own syncs. */
int evs__create_exec_raw(evs_store *s, const char *name, const char *log,
                         size_t len, const char *snap, size_t slen,
                         unsigned flags)
{
    char tmp[EVS_ID_MAX + 48], sfx[17];
    evs_stat sst;
    struct iovec iov;
    int dfd = -1, fd = -1, rc, made = 0;

    if (evs_exec_exists(s, name, strlen(name)))
        return -EEXIST;
    if ((rc = evs__writer_enter(s)) != 0)
        return rc;
    /* A directory of that name without a log is what a power loss can
     * leave of a creation made without syncs (the rename reached the
     * disk, the files did not): no execution, so it gives way. */
    if (evs__is_husk(s, name) && evs__remove_tree(s, name) == 0)
        evs__index_note_gone(s, name);
    if ((rc = evs__rand_suffix(sfx)) != 0)
        goto out;
    snprintf(tmp, sizeof(tmp), EVS__TMP_PREFIX "%s-%s", sfx, name);
    if ((rc = IO(s)->mkdirat(CTX(s), s->dirfd, tmp, 0700)) != 0)
        goto out;
    made = 1;
    rc =
        IO(s)->openat(CTX(s), s->dirfd, tmp,
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, &dfd);
    if (rc != 0)
        goto out;
    rc = IO(s)->openat(CTX(s), dfd, EVS__LOG_NAME,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600, &fd);
    if (rc != 0)
        goto out;
    if (len) {
        iov.iov_base = (void *)log;
        iov.iov_len = len;
        if ((rc = IO(s)->pwritev(CTX(s), fd, &iov, 1, 0)) != 0)
            goto out;
    }
    if (evs__sync_meta(s) && (rc = IO(s)->fsync(CTX(s), fd)) != 0)
        goto out;
    if (slen && (rc = evs__write_atomic_flags(
                     s, dfd, EVS__SNAP_NAME, snap, slen, &sst,
                     flags & EVS_SNAPSHOT_CACHE ? EVS__WRITE_NOSYNC : 0)) != 0)
        goto out;
    /* The log's name in the new directory is durable only once the
     * directory is; a synced snapshot write did that already. */
    if (evs__sync_meta(s) && (!slen || (flags & EVS_SNAPSHOT_CACHE)) &&
        (rc = IO(s)->fsync(CTX(s), dfd)) != 0)
        goto out;
    /* The directory appears under its real name whole, or not at all. */
    rc = IO(s)->renameat(CTX(s), s->dirfd, tmp, s->dirfd, name,
                         RENAME_NOREPLACE);
    if (rc != 0)
        goto out;
    made = 0;
    if (evs__sync_meta(s))
        rc = IO(s)->fsync(CTX(s), s->dirfd);
    /* Noted whether or not the sync held: the execution is there. */
    if (slen)
        evs__index_note(s, name, snap, slen, &sst);
    else
        evs__index_note_bare(s, name);
out:
    if (fd >= 0)
        IO(s)->close(CTX(s), fd);
    if (dfd >= 0)
        IO(s)->close(CTX(s), dfd);
    if (made)
        evs__remove_tree(s, tmp);
    return rc;
}

int evs__create_encode(evs_store *s, const char *id, size_t id_len,
                       const evs_snapshot *snap, const evs_event *ev, size_t n,
                       evs_snapshot *sn, char **log, size_t *len, char **sbuf,
                       size_t *slen)
{
    size_t cap = 0;
    int rc = 0;

    if (snap) {
        *sn = *snap;
    } else {
        memset(sn, 0, sizeof(*sn));
        sn->status = evs_span_cstr("running");
    }
    sn->id.ptr = id;
    sn->id.len = id_len;
    sn->last_event_seq = n;
    if (sn->created_at_us == 0)
        sn->created_at_us = evs_now_us();
    if (sn->updated_at_us == 0)
        sn->updated_at_us = sn->created_at_us;
    *log = *sbuf = NULL;
    *len = 0;
    if (n)
        rc = evs__encode_append(s, id, id_len, ev, n, 1, log, &cap, len, NULL);
    if (rc == 0)
        rc = evs_snapshot_encode(sn, s->alloc, sbuf, slen);
    if (rc != 0) {
        evs__free(s->alloc, *log);
        *log = NULL;
    }
    return rc;
}

static int file_exec_create(evs_store *s, const char *id, size_t id_len,
                            const evs_snapshot *snap, const evs_event *ev,
                            size_t n, unsigned flags)
{
    char name[EVS_ID_MAX + 1];
    char *buf, *sbuf;
    size_t len, slen;
    evs_snapshot sn;
    int rc;

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    rc = evs__create_encode(s, name, id_len, snap, ev, n, &sn, &buf, &len,
                            &sbuf, &slen);
    if (rc != 0)
        return rc;
    rc = evs__create_exec_raw(s, name, buf, len, sbuf, slen, flags);
    evs__free(s->alloc, buf);
    evs__free(s->alloc, sbuf);
    return rc;
}

static int file_exec_exists(evs_store *s, const char *id, size_t id_len)
{
    char name[EVS_ID_MAX + 1];

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    return log_present(s, name) == 0;
}

/* The last complete sequence of the log open as fd, of `size` bytes. */
static int tail_seq(evs_store *s, int fd, uint64_t size, const char *name,
                    uint64_t *seq)
{
    evs__tail t;
    int rc;

    memset(&t, 0, sizeof(t));
    rc = evs__find_tail(s, fd, size, name, strlen(name), &t, NULL);
    *seq = t.last_seq;
    return rc;
}

/* Renames execution `name` (directory dfd; its log fd, held under the
 * writer's lock, or -1 when it has none) to a trash name, noting both
 * descriptors in *t for evs__exec_trash_commit. On failure closes them. */
static int trash_rename(evs_store *s, const char *name, int dfd, int fd,
                        evs__trashed *t)
{
    char sfx[17];
    int rc;

    if ((rc = evs__writer_enter(s)) != 0 || (rc = evs__rand_suffix(sfx)) != 0)
        goto out;
    snprintf(t->name, sizeof(t->name), EVS__TRASH_PREFIX "%s-%s", sfx, name);
    rc = IO(s)->renameat(CTX(s), s->dirfd, name, s->dirfd, t->name,
                         RENAME_NOREPLACE);
    if (rc != 0) {
        t->name[0] = '\0';
        goto out;
    }
    t->lock_fd = fd;
    t->dir_fd = dfd;
    return 0;
out:
    if (fd >= 0)
        IO(s)->close(CTX(s), fd);
    IO(s)->close(CTX(s), dfd);
    return rc;
}

int evs__trash_exec(evs_store *s, const char *name, int dfd, int fd)
{
    evs__trashed t;
    int rc;

    t.name[0] = '\0';
    if ((rc = trash_rename(s, name, dfd, fd, &t)) != 0)
        return rc;
    return evs__exec_trash_commit(s, &t, 1);
}

int evs__exec_trash(evs_store *s, const char *name, uint64_t expect_seq,
                    evs__trashed *t)
{
    uint64_t seq = 0;
    evs_stat st;
    int dfd = -1, fd = -1, rc;

    t->lock_fd = -1;
    t->dir_fd = -1;
    t->name[0] = '\0';
    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0)
        return rc;
    rc = evs__open_regular(s, dfd, EVS__LOG_NAME, O_RDWR, 0, &fd, &st);
    if (rc == 0) {
        /* Hold the writer's lock through the rename, so no writer can be
         * appending to what is being deleted. */
        rc = IO(s)->lock(CTX(s), fd, EVS_LOCK_TRY);
        if (rc == -EAGAIN)
            rc = EVS_ELOCKED;
        /* Under the lock the log cannot grow (the size opening saw is
         * still its size): if it does not end where the caller's
         * decision saw it, the decision is out of date. */
        if (rc == 0 && expect_seq != UINT64_MAX &&
            (rc = tail_seq(s, fd, st.size, name, &seq)) == 0 &&
            seq != expect_seq)
            rc = EVS_ESTALE;
    } else if (rc == -ENOENT && expect_seq == UINT64_MAX) {
        rc = 0; /* a directory without a log: remove it all the same */
    }
    if (rc != 0) {
        if (fd >= 0)
            IO(s)->close(CTX(s), fd);
        IO(s)->close(CTX(s), dfd);
        return rc;
    }
    return trash_rename(s, name, dfd, fd, t);
}

/* Removes trashed execution t: its log and snapshot by name through the
 * directory it still has open, then the directory; only when something
 * else is left (an inbox, cut tails) is the directory read. */
static void remove_trashed(evs_store *s, evs__trashed *t)
{
    IO(s)->unlinkat(CTX(s), t->dir_fd, EVS__LOG_NAME, 0);
    IO(s)->unlinkat(CTX(s), t->dir_fd, EVS__SNAP_NAME, 0);
    if (IO(s)->unlinkat(CTX(s), s->dirfd, t->name, AT_REMOVEDIR) != 0)
        evs__remove_tree(s, t->name);
}

int evs__exec_trash_commit(evs_store *s, evs__trashed *t, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    rc = IO(s)->fsync(CTX(s), s->dirfd);
    for (size_t i = 0; i < n; i++) {
        /* Out of sight whether or not the sync held. */
        evs__index_note_gone(s, t[i].name + sizeof(EVS__TRASH_PREFIX) + 16);
        if (t[i].lock_fd >= 0)
            IO(s)->close(CTX(s), t[i].lock_fd);
        t[i].lock_fd = -1;
        /* Gone from the namespace once the fsync held; what remains is
         * garbage that a later cleanup also removes if this is
         * interrupted, or if the fsync failed (the renames may then
         * not be durable, so nothing is removed). */
        if (rc == 0)
            remove_trashed(s, &t[i]);
        IO(s)->close(CTX(s), t[i].dir_fd);
        t[i].dir_fd = -1;
    }
    return rc;
}

/* Moves execution `name` out of sight and removes it, unless a writer
 * holds its lock. */
int evs__delete_exec(evs_store *s, const char *name)
{
    evs__trashed t;
    int rc;

    if ((rc = evs__exec_trash(s, name, UINT64_MAX, &t)) != 0)
        return rc;
    return evs__exec_trash_commit(s, &t, 1);
}

static int file_exec_delete(evs_store *s, const char *id, size_t id_len)
{
    char name[EVS_ID_MAX + 1];

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    return evs__delete_exec(s, name);
}

const evs_backend_ops evs__file_backend = {
    "file",
    file_open,
    file_close,
    file_exec_create,
    NULL, /* exec_create_open: the creation, then the open */
    file_exec_exists,
    file_exec_delete,
    evs__file_exec_list,
    evs__file_exec_cleanup,
    evs__file_snapshot_save,
    evs__file_snapshot_load,
    evs__file_log_open,
    evs__file_log_close,
    evs__file_log_append,
    NULL, /* log_append_snap: the append, then the snapshot */
    NULL, /* log_release: the lock is held until the close */
    evs__file_log_sync,
    evs__file_log_refresh,
    evs__file_log_scan,
    evs__file_cursor_open,
    evs__file_cursor_next,
    evs__file_cursor_offset,
    evs__file_cursor_close,
    evs__file_request_post,
    evs__file_request_list,
    evs__file_request_remove,
    evs__file_request_dir,
    evs__file_request_stamp,
    evs__exec_trash,
    evs__exec_trash_commit,
    evs__file_settings_load,
    evs__file_settings_save,
    evs__file_exec_usage,
    evs__file_archived_count,
    NULL, /* log_renew: a writer holds its lock while open */
    NULL, /* log_claim: no work queue; runners list and lock */
    NULL, /* watch_open, watch_read, watch_close: no notifications */
    NULL,
    NULL,
    evs__file_sched_create,
    evs__file_sched_open,
    evs__file_sched_read,
    evs__file_sched_write,
    evs__file_sched_remove,
    evs__file_sched_close,
    evs__file_sched_list,
};
