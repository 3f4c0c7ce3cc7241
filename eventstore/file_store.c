/*
 * file_store.c: the file backend's store: opening the store directory,
 * creating, deleting, listing and cleaning up executions, and the helpers
 * for safe, atomic file operations that the other file_*.c files share.
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
        evs__error_set(info, rc, "unsafe", "%s/%s %s; refused", id, name,
                       why);
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
    char tmp[64], sfx[17];
    struct iovec iov;
    int fd = -1, rc;

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
    if (rc == 0 && evs__sync_meta(s))
        rc = IO(s)->fsync(CTX(s), fd);
    if (rc == 0)
        rc = IO(s)->renameat(CTX(s), dirfd, tmp, dirfd, name, 0);
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
    return evs__sync_meta(s) ? IO(s)->fsync(CTX(s), dirfd) : 0;
}

static int file_open(evs_store *s, const char *path)
{
    evs_stat st;
    int rc, fd;

    rc = IO(s)->openat(CTX(s), AT_FDCWD, path,
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &fd);
    if (rc == -ENOENT && s->opts.create) {
        rc = IO(s)->mkdirat(CTX(s), AT_FDCWD, path, 0700);
        if (rc != 0 && rc != -EEXIST)
            return rc;
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
    if (rc != 0) {
        IO(s)->close(CTX(s), fd);
        return rc;
    }
    s->dirfd = fd;
    return 0;
}

static void file_close(evs_store *s)
{
    if (s->dirfd >= 0)
        IO(s)->close(CTX(s), s->dirfd);
    s->dirfd = -1;
    evs__free(s->alloc, s->path);
    s->path = NULL;
}

/*
 * An execution's directory holds files and, since requests, the inbox/
 * directory (FORMAT.md §13), which may hold anything a sender planted
 * there. Removal therefore descends into subdirectories, a few levels
 * deep, opening each with O_NOFOLLOW: a symbolic link is removed, never
 * followed.
 */
#define REMOVE_DEPTH 4

typedef struct remover {
    evs_store *s;
    int dfd;
    int depth; /* levels of subdirectories still allowed below dfd */
} remover;

static int remove_dir_at(evs_store *s, int parent, const char *name,
                         int depth);

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
        remove_dir_at(s, r->dfd, name, r->depth - 1);
    return 0;
}

/* Removes everything in the directory `name` of `parent`, then the
 * directory. Returns the rmdir result. */
static int remove_dir_at(evs_store *s, int parent, const char *name,
                         int depth)
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
static int remove_tree(evs_store *s, const char *name)
{
    return remove_dir_at(s, s->dirfd, name, REMOVE_DEPTH);
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
static int is_husk(evs_store *s, const char *name)
{
    return log_present(s, name) == -ENOENT;
}

static int file_exec_create(evs_store *s, const char *id, size_t id_len,
                            const evs_snapshot *snap, const evs_event *ev,
                            size_t n)
{
    char tmp[EVS_ID_MAX + 48], sfx[17], name[EVS_ID_MAX + 1];
    char *buf = NULL, *sbuf = NULL;
    size_t cap = 0, len = 0, slen;
    evs_snapshot sn;
    evs_stat sst;
    struct iovec iov;
    int dfd = -1, fd = -1, rc, made = 0;

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    if (snap) {
        sn = *snap;
    } else {
        memset(&sn, 0, sizeof(sn));
        sn.status = evs_span_cstr("running");
    }
    sn.id.ptr = name;
    sn.id.len = id_len;
    sn.last_event_seq = n;
    if (sn.created_at_us == 0)
        sn.created_at_us = evs_now_us();
    if (sn.updated_at_us == 0)
        sn.updated_at_us = sn.created_at_us;

    /* Encode everything before touching the disk: a bad event or
     * snapshot then leaves nothing behind. */
    if (n) {
        rc = evs__encode_append(s, id, id_len, ev, n, 1, &buf, &cap, &len,
                                NULL);
        if (rc != 0)
            goto out;
    }
    rc = evs_snapshot_encode(&sn, s->alloc, &sbuf, &slen);
    if (rc != 0)
        goto out;

    if (evs_exec_exists(s, id, id_len)) {
        rc = -EEXIST;
        goto out;
    }
    /* A directory of that name without a log is what a power loss can
     * leave of a creation made without syncs (the rename reached the
     * disk, the files did not): no execution, so it gives way. */
    if (is_husk(s, name))
        remove_tree(s, name);
    if ((rc = evs__rand_suffix(sfx)) != 0)
        goto out;
    snprintf(tmp, sizeof(tmp), EVS__TMP_PREFIX "%s-%s", sfx, name);
    if ((rc = IO(s)->mkdirat(CTX(s), s->dirfd, tmp, 0700)) != 0)
        goto out;
    made = 1;
    rc = IO(s)->openat(CTX(s), s->dirfd, tmp,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                       &dfd);
    if (rc != 0)
        goto out;
    rc = IO(s)->openat(CTX(s), dfd, EVS__LOG_NAME,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600, &fd);
    if (rc != 0)
        goto out;
    if (len) {
        iov.iov_base = buf;
        iov.iov_len = len;
        if ((rc = IO(s)->pwritev(CTX(s), fd, &iov, 1, 0)) != 0)
            goto out;
    }
    if (evs__sync_meta(s) && (rc = IO(s)->fsync(CTX(s), fd)) != 0)
        goto out;
    if ((rc = evs__write_atomic(s, dfd, EVS__SNAP_NAME, sbuf, slen, &sst)) !=
        0)
        goto out;
    /* The directory appears under its real name whole, or not at all. */
    rc = IO(s)->renameat(CTX(s), s->dirfd, tmp, s->dirfd, name,
                         RENAME_NOREPLACE);
    if (rc != 0)
        goto out;
    made = 0;
    if (evs__sync_meta(s))
        rc = IO(s)->fsync(CTX(s), s->dirfd);
    if (rc == 0)
        evs__index_note(s, name, sbuf, slen, &sst);
out:
    if (fd >= 0)
        IO(s)->close(CTX(s), fd);
    if (dfd >= 0)
        IO(s)->close(CTX(s), dfd);
    if (made)
        remove_tree(s, tmp);
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

/* Moves execution `name` out of sight and removes it, unless a writer
 * holds its lock. */
static int delete_exec(evs_store *s, const char *name)
{
    char trash[EVS_ID_MAX + 48], sfx[17];
    int dfd = -1, fd = -1, rc;

    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0)
        return rc;
    rc = evs__open_regular(s, dfd, EVS__LOG_NAME, O_RDWR, 0, &fd, NULL);
    if (rc == 0) {
        /* Hold the writer's lock through the rename, so no writer can be
         * appending to what is being deleted. */
        rc = IO(s)->lock(CTX(s), fd, EVS_LOCK_TRY);
        if (rc == -EAGAIN)
            rc = EVS_ELOCKED;
    } else if (rc == -ENOENT) {
        rc = 0; /* a directory without a log: remove it all the same */
    }
    if (rc != 0)
        goto out;
    if ((rc = evs__rand_suffix(sfx)) != 0)
        goto out;
    snprintf(trash, sizeof(trash), EVS__TRASH_PREFIX "%s-%s", sfx, name);
    rc = IO(s)->renameat(CTX(s), s->dirfd, name, s->dirfd, trash,
                         RENAME_NOREPLACE);
    if (rc != 0)
        goto out;
    rc = IO(s)->fsync(CTX(s), s->dirfd);
    if (fd >= 0) {
        IO(s)->close(CTX(s), fd);
        fd = -1;
    }
    IO(s)->close(CTX(s), dfd);
    dfd = -1;
    if (rc == 0) {
        /* Gone from the namespace; what remains is garbage that a later
         * cleanup also removes if this is interrupted. */
        remove_tree(s, trash);
    }
out:
    if (fd >= 0)
        IO(s)->close(CTX(s), fd);
    if (dfd >= 0)
        IO(s)->close(CTX(s), dfd);
    return rc;
}

static int file_exec_delete(evs_store *s, const char *id, size_t id_len)
{
    char name[EVS_ID_MAX + 1];

    memcpy(name, id, id_len);
    name[id_len] = '\0';
    return delete_exec(s, name);
}

/* ------------------------------------------------------------------ */
/* Listing                                                            */
/* ------------------------------------------------------------------ */

typedef struct lister {
    evs_store *s;
    evs__index *ix;   /* the listing index; NULL if it could not load */
    size_t seen;      /* executions met, filtered or not */
    const evs_list_filter *f;
    int filtered;
    evs_exec_info *items;
    size_t count, cap;
    char *mem;      /* arena for the strings */
    size_t used, memcap;
    int err;
} lister;

/* Copies a span into the arena; the spans are fixed up after the arena
 * stops moving, so store offsets for now. */
static int arena_put(lister *L, evs_span in, evs_span *out)
{
    if (EVS__GROW(L->s->alloc, &L->mem, &L->memcap, L->used + in.len) != 0)
        return -ENOMEM;
    if (in.len)
        memcpy(L->mem + L->used, in.ptr, in.len);
    out->ptr = (const char *)(uintptr_t)L->used; /* offset, fixed later */
    out->len = in.len;
    L->used += in.len;
    return 0;
}

static int match(const evs_list_filter *f, const evs_snapshot *sn)
{
    if (f->status.len && !evs__span_eq(f->status, sn->status))
        return 0;
    if (f->workflow_name.len &&
        !evs__span_eq(f->workflow_name, sn->workflow_name))
        return 0;
    if (f->created_after_us && sn->created_at_us < f->created_after_us)
        return 0;
    if (f->created_before_us && sn->created_at_us >= f->created_before_us)
        return 0;
    return 1;
}

/* Reads the header of execution `name`'s snapshot. Returns 0, 1 when
 * `name` is not an execution directory (skip it), 2 when the directory
 * could not be opened (*dir_err says why), or an error about the
 * snapshot. */
static int read_header(evs_store *s, const char *name, char **hdr,
                       size_t *hlen, evs_stat *st, int *dir_err)
{
    int dfd, rc;

    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0) {
        /* Vanished (deleted meanwhile), or not a directory: no
         * execution. Any other failure fails the listing: an execution
         * is never left out of a listing that succeeds. */
        *dir_err = rc;
        return rc == -ENOENT || rc == -ENOTDIR || rc == -ELOOP ? 1 : 2;
    }
    rc = evs__file_snapshot_header(s, dfd, hdr, hlen, st, NULL);
    IO(s)->close(CTX(s), dfd);
    return rc;
}

/* True when the header's `key` is certainly not the string `want`: the
 * header is canonical, so the first ,"key": is the member itself (a quote
 * inside a string is always escaped), and a plain `want` compares byte
 * for byte. Anything unusual answers "maybe" and the header is decoded. */
static int differs(const char *hdr, size_t hlen, const char *key,
                   evs_span want)
{
    size_t kl = strlen(key);
    const char *p = memmem(hdr, hlen, key, kl), *end = hdr + hlen;

    if (!want.len || !p)
        return 0;
    for (size_t i = 0; i < want.len; i++)
        if (want.ptr[i] == '"' || want.ptr[i] == '\\' ||
            (unsigned char)want.ptr[i] < 0x20)
            return 0;
    p += kl;
    if ((size_t)(end - p) < want.len + 2 || p[0] != '"')
        return 1;
    return memcmp(p + 1, want.ptr, want.len) != 0 || p[want.len + 1] != '"';
}

static int quick_reject(const evs_list_filter *f, const char *hdr,
                        size_t hlen)
{
    return differs(hdr, hlen, ",\"status\":", f->status) ||
           differs(hdr, hlen, ",\"workflow_name\":", f->workflow_name);
}

static int list_cb(void *arg, const char *name, size_t len)
{
    lister *L = arg;
    evs_store *s = L->s;
    evs_snapshot *sn = NULL;
    evs_exec_info *it;
    evs_span idsp = {name, len};
    const char *hdr;
    char *raw = NULL;
    size_t hlen;
    evs_stat st;
    int rc = -1;

    if (!evs_id_valid(name, len))
        return 0; /* temporary, trash and foreign entries */
    L->seen++;
    /* The index answers with one stat; else read the snapshot. */
    if (L->ix && evs__index_lookup(s, L->ix, name, len, &hdr, &hlen)) {
        evs__index_keep(L->ix, name, len, hdr, hlen, NULL);
        if (quick_reject(L->f, hdr, hlen))
            return 0;
        rc = evs__snapshot_decode_header(s, hdr, hlen, &sn);
    }
    if (rc != 0 && rc != -ENOMEM) {
        int dir_err = 0;
        rc = read_header(s, name, &raw, &hlen, &st, &dir_err);
        if (rc == 1)
            return 0;
        if (rc == 2)
            return dir_err;
        if (rc == 0) {
            rc = evs__snapshot_decode_header(s, raw, hlen, &sn);
            if (rc == 0 && L->ix)
                evs__index_keep(L->ix, name, len, raw, hlen, &st);
        }
        evs__free(s->alloc, raw);
    }
    if (rc == -ENOMEM)
        return rc;
    if (rc != 0) {
        sn = NULL;
        if (L->filtered || is_husk(s, name))
            return 0; /* a husk is not an execution (is_husk) */
    } else if (!match(L->f, sn)) {
        evs_snapshot_free(sn);
        return 0;
    }
    if (EVS__GROW(s->alloc, &L->items, &L->cap, L->count + 1) != 0) {
        evs_snapshot_free(sn);
        return -ENOMEM;
    }
    it = &L->items[L->count];
    memset(it, 0, sizeof(*it));
    rc = arena_put(L, idsp, &it->id);
    if (rc == 0 && sn) {
        it->snapshot_ok = 1;
        it->start_time_us = sn->start_time_us;
        it->end_time_us = sn->end_time_us;
        it->created_at_us = sn->created_at_us;
        it->updated_at_us = sn->updated_at_us;
        it->last_event_seq = sn->last_event_seq;
        rc = arena_put(L, sn->workflow_name, &it->workflow_name);
        if (rc == 0)
            rc = arena_put(L, sn->status, &it->status);
    }
    evs_snapshot_free(sn);
    if (rc != 0)
        return rc;
    L->count++;
    return 0;
}

static int info_cmp(const void *pa, const void *pb)
{
    const evs_exec_info *a = pa, *b = pb;
    size_t n;
    int c;

    if (a->created_at_us != b->created_at_us)
        return a->created_at_us < b->created_at_us ? -1 : 1;
    n = a->id.len < b->id.len ? a->id.len : b->id.len;
    c = memcmp(a->id.ptr, b->id.ptr, n);
    if (c)
        return c;
    return a->id.len < b->id.len ? -1 : a->id.len > b->id.len;
}

static void fix_span(evs_span *sp, const char *base)
{
    sp->ptr = sp->len ? base + (uintptr_t)sp->ptr : "";
}

static int file_exec_list(evs_store *s, const evs_list_filter *f,
                          evs_exec_listing *out)
{
    lister L;
    size_t start, n;
    int rc;

    memset(&L, 0, sizeof(L));
    L.s = s;
    L.f = f;
    L.filtered = f->status.len || f->workflow_name.len ||
                 f->created_after_us || f->created_before_us;
    if (evs__index_load(s, &L.ix) == -ENOMEM) {
        evs__index_free(s, L.ix);
        L.ix = NULL;
    }
    rc = IO(s)->listdir(CTX(s), s->dirfd, list_cb, &L);
    if (rc != 0) {
        evs__index_free(s, L.ix);
        goto fail;
    }
    if (L.ix) {
        evs__index_finish(s, L.ix, L.seen);
        evs__index_free(s, L.ix);
    }
    /* The arena has stopped moving: turn offsets into pointers. */
    for (size_t i = 0; i < L.count; i++) {
        fix_span(&L.items[i].id, L.mem);
        fix_span(&L.items[i].workflow_name, L.mem);
        fix_span(&L.items[i].status, L.mem);
    }
    if (L.count > 1)
        qsort(L.items, L.count, sizeof(*L.items), info_cmp);
    start = f->offset < L.count ? f->offset : L.count;
    n = L.count - start;
    if (f->limit && n > f->limit)
        n = f->limit;
    if (start && n)
        memmove(L.items, L.items + start, n * sizeof(*L.items));
    out->items = L.items;
    out->count = n;
    out->total = L.count;
    out->mem_ = L.mem;
    out->alloc_ = s->alloc;
    return 0;
fail:
    evs__free(s->alloc, L.items);
    evs__free(s->alloc, L.mem);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Cleanup                                                            */
/* ------------------------------------------------------------------ */

/* Temporaries younger than this may belong to a writer at work. */
#define TMP_AGE_US (3600LL * 1000000)

/* Names read from a directory, to act on once the reading is over:
 * removing entries while reading a directory may skip others. */
typedef struct name_list {
    evs_store *s;
    char (*names)[EVS_ID_MAX + 48];
    size_t count, cap;
} name_list;

typedef struct cleaner {
    evs_store *s;
    int64_t older_than;
    int64_t tmp_cutoff; /* temporaries changed before this are left over */
    size_t deleted;
    int first_err;
} cleaner;

static int is_final(evs_span st)
{
    return evs__span_eq_cstr(st, "completed") ||
           evs__span_eq_cstr(st, "failed") ||
           evs__span_eq_cstr(st, "terminated") ||
           evs__span_eq_cstr(st, "continued");
}

static int collect_cb(void *arg, const char *name, size_t len)
{
    name_list *L = arg;

    if (len >= EVS_ID_MAX + 48)
        return 0;
    if (EVS__GROW(L->s->alloc, &L->names, &L->cap, L->count + 1) != 0)
        return -ENOMEM;
    memcpy(L->names[L->count], name, len + 1);
    L->count++;
    return 0;
}

static int is_tmp(const char *name)
{
    return strncmp(name, EVS__TMP_PREFIX, strlen(EVS__TMP_PREFIX)) == 0;
}

/*
 * Removes entry `name` of dfd, a temporary (.tmp-*) that a killed or
 * failed writer left, if it has not changed since the cutoff: younger
 * ones may be in use by a writer in another process. A directory (an
 * interrupted creation) goes with its contents; anything else is
 * unlinked, never followed. Best effort.
 */
static void remove_old_tmp(cleaner *C, int dfd, const char *name)
{
    evs_store *s = C->s;
    evs_stat st;

    if (IO(s)->statat(CTX(s), dfd, name, &st) != 0 ||
        st.mtime_us >= C->tmp_cutoff)
        return;
    if (S_ISDIR(st.mode))
        remove_dir_at(s, dfd, name, REMOVE_DEPTH);
    else
        IO(s)->unlinkat(CTX(s), dfd, name, 0);
}

/* Removes the old temporaries in directory dfd: snapshots (and, in an
 * inbox, requests) whose writer was killed before its rename. */
static void sweep_tmp(cleaner *C, int dfd)
{
    name_list L = {C->s, NULL, 0, 0};

    if (IO(C->s)->listdir(CTX(C->s), dfd, collect_cb, &L) == 0)
        for (size_t i = 0; i < L.count; i++)
            if (is_tmp(L.names[i]))
                remove_old_tmp(C, dfd, L.names[i]);
    evs__free(C->s->alloc, L.names);
}

static void clean_one(cleaner *C, const char *name)
{
    evs_store *s = C->s;
    evs_snapshot *sn = NULL;
    size_t len = strlen(name);
    int dfd, ifd, rc;

    if (strncmp(name, EVS__TRASH_PREFIX, strlen(EVS__TRASH_PREFIX)) == 0) {
        remove_tree(s, name); /* an interrupted delete */
        return;
    }
    if (is_tmp(name)) {
        /* An interrupted creation (a directory) or listing-index rewrite
         * (a file). */
        remove_old_tmp(C, s->dirfd, name);
        return;
    }
    if (!evs_id_valid(name, len))
        return;
    if (is_husk(s, name)) {
        remove_tree(s, name); /* what a power loss left of a creation */
        return;
    }
    if (evs__open_exec_dir(s, name, &dfd) != 0)
        return;
    sweep_tmp(C, dfd);
    if (IO(s)->openat(CTX(s), dfd, "inbox",
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                      &ifd) == 0) {
        sweep_tmp(C, ifd);
        IO(s)->close(CTX(s), ifd);
    }
    rc = evs__file_snapshot_header(s, dfd, NULL, NULL, NULL, &sn);
    IO(s)->close(CTX(s), dfd);
    if (rc != 0)
        return; /* no trustworthy status: never delete on a guess */
    if (is_final(sn->status) && sn->updated_at_us < C->older_than) {
        rc = delete_exec(s, name);
        if (rc == 0)
            C->deleted++;
        else if (rc != EVS_ELOCKED && rc != -ENOENT && !C->first_err)
            C->first_err = rc;
    }
    evs_snapshot_free(sn);
}

static int file_exec_cleanup(evs_store *s, int64_t older_than_us,
                             size_t *deleted)
{
    name_list L = {s, NULL, 0, 0};
    cleaner C;
    int rc;

    memset(&C, 0, sizeof(C));
    C.s = s;
    C.older_than = older_than_us;
    C.tmp_cutoff = evs_now_us() - TMP_AGE_US;
    rc = IO(s)->listdir(CTX(s), s->dirfd, collect_cb, &L);
    if (rc == 0) {
        for (size_t i = 0; i < L.count; i++)
            clean_one(&C, L.names[i]);
        rc = C.first_err;
    }
    evs__free(s->alloc, L.names);
    *deleted = C.deleted;
    return rc;
}

const evs_backend_ops evs__file_backend = {
    "file",
    file_open,
    file_close,
    file_exec_create,
    file_exec_exists,
    file_exec_delete,
    file_exec_list,
    file_exec_cleanup,
    evs__file_snapshot_save,
    evs__file_snapshot_load,
    evs__file_log_open,
    evs__file_log_close,
    evs__file_log_append,
    evs__file_log_sync,
    evs__file_log_refresh,
    evs__file_log_scan,
    evs__file_cursor_open,
    evs__file_cursor_next,
    evs__file_cursor_offset,
    evs__file_cursor_close,
};
