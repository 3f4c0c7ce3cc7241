/*
 * file_schedule.c: the file backend's schedules (formats/SCHEDULES.md
 * §7): each schedule's line in STORE/.schedules/<name>.json, replaced
 * atomically, and beside it <name>.lock, the file whose OFD lock whoever
 * changes the schedule holds. schedule_api.c makes and checks the line.
 *
 * The lock is on a file of its own because the schedule's file is
 * replaced by rename, which would leave a lock on the old inode. A lock
 * file is removed with its schedule, so whoever takes a lock checks that
 * the name still leads to the file it locked, and tries again otherwise.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

#define SCHED_DIR ".schedules"

/* Opens STORE/.schedules, made (durably) when `create`. */
static int sched_dir(evs_store *s, int create, int *fd)
{
    int rc =
        IO(s)->openat(CTX(s), s->dirfd, SCHED_DIR,
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, fd);

    if (rc != -ENOENT || !create)
        return rc;
    rc = IO(s)->mkdirat(CTX(s), s->dirfd, SCHED_DIR, 0700);
    if (rc != 0 && rc != -EEXIST)
        return rc;
    if (rc == 0 && evs__sync_meta(s) && (rc = IO(s)->fsync(CTX(s), s->dirfd)))
        return rc;
    return IO(s)->openat(CTX(s), s->dirfd, SCHED_DIR,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                         fd);
}

/* Takes the lock of schedule `name` in dfd: *fd is its lock file. */
static int lock_take(evs_store *s, int dfd, const char *name, int wait, int *fd)
{
    char lname[EVS_SCHED_NAME_MAX + 8];
    evs_stat st, now;
    int rc, f;

    snprintf(lname, sizeof(lname), "%s.lock", name);
    for (int tries = 0; tries < 16; tries++) {
        rc = evs__open_regular(s, dfd, lname, O_RDWR | O_CREAT, 0600, &f, &st);
        if (rc != 0)
            return rc;
        rc = IO(s)->lock(CTX(s), f, wait ? EVS_LOCK_WAIT : EVS_LOCK_TRY);
        if (rc == 0)
            rc = IO(s)->statat(CTX(s), dfd, lname, &now);
        if (rc == 0 && now.ino == st.ino) {
            *fd = f;
            return 0;
        }
        IO(s)->close(CTX(s), f);
        if (rc == -EAGAIN || rc == -EACCES)
            return EVS_ELOCKED;
        if (rc != 0 && rc != -ENOENT)
            return rc;
        /* Removed or replaced while we waited: the new one counts. */
    }
    return EVS_ELOCKED;
}

int evs__file_sched_create(evs_store *s, const char *name, const char *line,
                           size_t len, int64_t updated_us)
{
    char fname[EVS_SCHED_NAME_MAX + 8];
    int dfd = -1, lfd = -1, rc;

    (void)updated_us; /* the line's own */
    snprintf(fname, sizeof(fname), "%s.json", name);
    /* Linked under its name only if no schedule has it. */
    if ((rc = sched_dir(s, 1, &dfd)) == 0 &&
        (rc = lock_take(s, dfd, name, 1, &lfd)) == 0)
        rc = evs__write_atomic_flags(s, dfd, fname, line, len, NULL,
                                     RENAME_NOREPLACE);
    if (lfd >= 0)
        IO(s)->close(CTX(s), lfd);
    if (dfd >= 0)
        IO(s)->close(CTX(s), dfd);
    return rc;
}

int evs__file_sched_open(evs_schedule *h, unsigned flags)
{
    evs_store *s = h->s;
    int rc;

    if ((rc = sched_dir(s, 0, &h->dirfd)) != 0)
        return rc;
    if (flags & EVS_SCHEDULE_LOCK) {
        rc = lock_take(s, h->dirfd, h->name, flags & EVS_SCHEDULE_WAIT,
                       &h->lockfd);
        h->locked = rc == 0;
    }
    return rc;
}

int evs__file_sched_read(evs_schedule *h, char **out, size_t *len)
{
    evs_store *s = h->s;
    char fname[EVS_SCHED_NAME_MAX + 8];
    evs_stat st;
    size_t got;
    int fd, rc;
    char *buf;

    snprintf(fname, sizeof(fname), "%s.json", h->name);
    rc = evs__open_regular(s, h->dirfd, fname, O_RDONLY, 0, &fd, &st);
    if (rc == -ENOENT && h->lockfd >= 0) {
        /* The lock file an open made for nothing goes. */
        snprintf(fname, sizeof(fname), "%s.lock", h->name);
        IO(s)->unlinkat(CTX(s), h->dirfd, fname, 0);
    }
    if (rc != 0)
        return rc;
    if (st.size < 2 || st.size > EVS__SCHED_MAX) {
        IO(s)->close(CTX(s), fd);
        return EVS_ECORRUPT;
    }
    if (!(buf = evs__malloc(s->alloc, (size_t)st.size))) {
        IO(s)->close(CTX(s), fd);
        return -ENOMEM;
    }
    rc = IO(s)->pread(CTX(s), fd, buf, (size_t)st.size, 0, &got);
    IO(s)->close(CTX(s), fd);
    if (rc == 0 && got != st.size)
        rc = EVS_ECORRUPT;
    if (rc != 0) {
        evs__free(s->alloc, buf);
        return rc;
    }
    *out = buf;
    *len = got;
    return 0;
}

int evs__file_sched_write(evs_schedule *h, const char *line, size_t len,
                          int64_t updated_us)
{
    char fname[EVS_SCHED_NAME_MAX + 8];

    (void)updated_us; /* the line's own */
    snprintf(fname, sizeof(fname), "%s.json", h->name);
    return evs__write_atomic(h->s, h->dirfd, fname, line, len, NULL);
}

int evs__file_sched_remove(evs_schedule *h)
{
    evs_store *s = h->s;
    char fname[EVS_SCHED_NAME_MAX + 8];
    int rc;

    snprintf(fname, sizeof(fname), "%s.json", h->name);
    if ((rc = IO(s)->unlinkat(CTX(s), h->dirfd, fname, 0)) != 0)
        return rc;
    snprintf(fname, sizeof(fname), "%s.lock", h->name);
    IO(s)->unlinkat(CTX(s), h->dirfd, fname, 0);
    return evs__sync_meta(s) ? IO(s)->fsync(CTX(s), h->dirfd) : 0;
}

void evs__file_sched_close(evs_schedule *h)
{
    if (h->lockfd >= 0)
        IO(h->s)->close(CTX(h->s), h->lockfd);
    if (h->dirfd >= 0)
        IO(h->s)->close(CTX(h->s), h->dirfd);
    h->lockfd = h->dirfd = -1;
    h->locked = 0;
}

/* The names of schedules' files, <name>.json, handed on without the
 * suffix; every other name is not a schedule's. */
typedef struct lister {
    int (*fn)(void *arg, const char *name, size_t len);
    void *arg;
} lister;

static int list_cb(void *arg, const char *name, size_t len)
{
    lister *ls = arg;

    if (len < 6 || len - 5 > EVS_SCHED_NAME_MAX ||
        memcmp(name + len - 5, ".json", 5) != 0 || !evs_id_valid(name, len - 5))
        return 0;
    return ls->fn(ls->arg, name, len - 5);
}

int evs__file_sched_list(evs_store *s,
                         int (*fn)(void *arg, const char *name, size_t len),
                         void *arg)
{
    lister ls = {fn, arg};
    int dfd, rc;

    if ((rc = sched_dir(s, 0, &dfd)) != 0)
        return rc == -ENOENT ? 0 : rc;
    rc = IO(s)->listdir(CTX(s), dfd, list_cb, &ls);
    IO(s)->close(CTX(s), dfd);
    return rc;
}
