/*
 * file_writers.c: the writers' markers that let a listing trust the
 * listing index (FORMAT.md §12).
 *
 * A store handle that changes what a listing shows (creates, replaces a
 * snapshot, deletes) first puts a marker in STORE/.writers and holds an
 * open-file-description lock on it until it closes. The kernel drops the
 * lock when the process dies, so a marker that nobody holds is the mark
 * of a writer that died, maybe between a change and its index line, or
 * of a power loss that may have lost index lines: the index is then not
 * believed until a listing has rebuilt it from the executions themselves
 * and buried the dead markers. A marker is made under a temporary name
 * and renamed once locked, so no reader ever sees an unlocked live one.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

#define MARK_PREFIX "w-"

/* Opens STORE/.writers, making it (durably) when `create`. */
static int open_dir(evs_store *s, int create, int *fd)
{
    int rc = IO(s)->openat(CTX(s), s->dirfd, EVS__WRITERS_DIR,
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                           fd);

    if (rc != -ENOENT || !create)
        return rc;
    rc = IO(s)->mkdirat(CTX(s), s->dirfd, EVS__WRITERS_DIR, 0700);
    if (rc == 0)
        rc = IO(s)->fsync(CTX(s), s->dirfd);
    if (rc != 0 && rc != -EEXIST)
        return rc;
    return IO(s)->openat(CTX(s), s->dirfd, EVS__WRITERS_DIR,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                         fd);
}

static int enter_locked(evs_store *s)
{
    char sfx[17], tmp[32], name[32];
    int dfd = -1, fd = -1, rc;

    if ((rc = evs__rand_suffix(sfx)) != 0)
        return rc;
    snprintf(tmp, sizeof(tmp), EVS__TMP_PREFIX "%s", sfx);
    snprintf(name, sizeof(name), MARK_PREFIX "%s", sfx);
    if ((rc = open_dir(s, 1, &dfd)) != 0)
        return rc;
    rc = IO(s)->openat(CTX(s), dfd, tmp,
                       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600,
                       &fd);
    if (rc == 0)
        rc = IO(s)->lock(CTX(s), fd, EVS_LOCK_TRY);
    if (rc == 0)
        rc = IO(s)->renameat(CTX(s), dfd, tmp, dfd, name, 0);
    /* In every durability mode: a marker lost in a power loss would let
     * the index be believed with lines lost beside it. Once per handle. */
    if (rc == 0)
        rc = IO(s)->fsync(CTX(s), dfd);
    if (rc != 0) {
        if (fd >= 0) {
            IO(s)->unlinkat(CTX(s), dfd, tmp, 0);
            IO(s)->unlinkat(CTX(s), dfd, name, 0);
            IO(s)->close(CTX(s), fd);
        }
        IO(s)->close(CTX(s), dfd);
        return rc;
    }
    IO(s)->close(CTX(s), dfd);
    s->wfd = fd;
    memcpy(s->wname, name, sizeof(name));
    return 0;
}

int evs__writer_enter(evs_store *s)
{
    int rc = 0;

    pthread_mutex_lock(&s->wmu);
    if (s->wfd < 0)
        rc = enter_locked(s);
    pthread_mutex_unlock(&s->wmu);
    if (rc != 0)
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "cannot register as a writer of the store (%s): the change "
                  "is refused, as the listing index could not be trusted "
                  "after it",
                  evs_strerror(rc));
    return rc;
}

void evs__writer_abandon(evs_store *s)
{
    pthread_mutex_lock(&s->wmu);
    if (s->wfd >= 0)
        IO(s)->close(CTX(s), s->wfd); /* the marker stays, unlocked */
    s->wfd = -1;
    pthread_mutex_unlock(&s->wmu);
}

void evs__writer_leave(evs_store *s)
{
    int fd, dfd;

    if (s->wfd < 0)
        return;
    /* The index lines this handle appended go to disk before its marker
     * goes: otherwise a power loss could keep the marker's removal and
     * lose the lines. A failure keeps the marker, which then reads as a
     * dead writer and makes the next listing rebuild the index. */
    if (evs__open_regular(s, s->dirfd, EVS__INDEX_NAME, O_WRONLY, 0, &fd,
                          NULL) == 0) {
        int rc = IO(s)->fdatasync(CTX(s), fd);
        IO(s)->close(CTX(s), fd);
        if (rc != 0) {
            evs__writer_abandon(s);
            return;
        }
    }
    if (open_dir(s, 0, &dfd) == 0) {
        IO(s)->unlinkat(CTX(s), dfd, s->wname, 0);
        IO(s)->close(CTX(s), dfd);
    }
    IO(s)->close(CTX(s), s->wfd);
    s->wfd = -1;
}

typedef struct census {
    evs_store *s;
    int dfd;
    evs__dead *dead;
    int err;
} census;

static int census_cb(void *arg, const char *name, size_t len)
{
    census *c = arg;
    evs_store *s = c->s;
    evs__dead *d = c->dead;
    int fd, rc;

    if (len < sizeof(MARK_PREFIX) || memcmp(name, MARK_PREFIX, 2) != 0 ||
        len >= sizeof(d->names[0]))
        return 0; /* temporary names: markers being made */
    rc = IO(s)->openat(CTX(s), c->dfd, name,
                       O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0, &fd);
    if (rc == -ENOENT)
        return 0; /* its writer closed meanwhile */
    if (rc != 0) {
        c->err = rc;
        return 1;
    }
    rc = IO(s)->lock(CTX(s), fd, EVS_LOCK_TRY);
    IO(s)->close(CTX(s), fd);
    if (rc == -EAGAIN)
        return 0; /* alive */
    if (rc != 0) {
        c->err = rc;
        return 1;
    }
    /* Nobody held it: a writer died. Only a bounded number are named
     * for burial; any more are found by the next listing. */
    d->count++;
    if (d->n < EVS__DEAD_MAX)
        memcpy(d->names[d->n++], name, len + 1);
    return 0;
}

int evs__writers_census(evs_store *s, evs__dead *dead)
{
    census c;
    int rc;

    memset(dead, 0, sizeof(*dead));
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.dead = dead;
    if ((rc = open_dir(s, 0, &c.dfd)) != 0)
        return rc == -ENOENT ? 0 : rc; /* no writer ever registered */
    rc = IO(s)->listdir(CTX(s), c.dfd, census_cb, &c);
    IO(s)->close(CTX(s), c.dfd);
    return c.err ? c.err : rc;
}

void evs__writers_bury(evs_store *s, const evs__dead *dead)
{
    int dfd, fd;

    if (dead->n == 0 || open_dir(s, 0, &dfd) != 0)
        return;
    for (size_t i = 0; i < dead->n; i++) {
        if (IO(s)->openat(CTX(s), dfd, dead->names[i],
                          O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0,
                          &fd) != 0)
            continue;
        /* Dead markers stay dead: nobody can take one over. The lock is
         * taken again all the same, to be sure of what is removed. */
        if (IO(s)->lock(CTX(s), fd, EVS_LOCK_TRY) == 0)
            IO(s)->unlinkat(CTX(s), dfd, dead->names[i], 0);
        IO(s)->close(CTX(s), fd);
    }
    IO(s)->close(CTX(s), dfd);
}
