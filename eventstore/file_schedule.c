/*
 * file_schedule.c: schedules kept in a store (formats/SCHEDULES.md §7):
 * one checksummed line per schedule in STORE/.schedules/<name>.json,
 * replaced atomically, and beside it <name>.lock, the file whose OFD lock
 * whoever changes the schedule holds; and loading a time zone from the
 * system's tzdata through the store's I/O table.
 *
 * The lock is on a file of its own because the schedule's file is
 * replaced by rename, which would leave a lock on the old inode. A lock
 * file is removed with its schedule, so whoever takes a lock checks that
 * the name still leads to the file it locked, and tries again otherwise.
 */
#include "file_int.h"
#include "evstore/schedule.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

#define SCHED_DIR ".schedules"
/* A schedule's line: its document, its state and their framing. */
#define SCHED_MAX ((size_t)16 << 20)

struct evs_schedule {
    evs_store *s;
    int dirfd;  /* STORE/.schedules */
    int lockfd; /* -1: read only */
    char name[EVS_SCHED_NAME_MAX + 1];
    char *buf; /* the file */
    size_t len;
    char *prev; /* the file before the last save: what was borrowed */
    evs_span spec, state;
    int64_t updated_us;
};

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    return n && n <= EVS_SCHED_NAME_MAX && evs_id_valid(name, n);
}

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

/* Reads the schedule's file into h. */
static int sched_read(evs_schedule *h)
{
    evs_store *s = h->s;
    char fname[EVS_SCHED_NAME_MAX + 8];
    evs_span line, v, spec, state;
    evs_stat st;
    size_t got, body;
    int fd, rc;
    char *buf;

    snprintf(fname, sizeof(fname), "%s.json", h->name);
    if ((rc = evs__open_regular(s, h->dirfd, fname, O_RDONLY, 0, &fd, &st)))
        return rc;
    if (st.size < 2 || st.size > SCHED_MAX) {
        IO(s)->close(CTX(s), fd);
        return EVS_ECORRUPT;
    }
    if (!(buf = evs__malloc(s->alloc, (size_t)st.size))) {
        IO(s)->close(CTX(s), fd);
        return -ENOMEM;
    }
    rc = IO(s)->pread(CTX(s), fd, buf, (size_t)st.size, 0, &got);
    IO(s)->close(CTX(s), fd);
    if (rc == 0 && (got != st.size || evs__frame_check(buf, got, &body) != 0))
        rc = EVS_ECORRUPT;
    line = (evs_span){buf, got - 1};
    if (rc == 0 &&
        (evs__json_get(line, "kind", &v) != 1 ||
         !evs__span_eq_cstr(v, "\"schedule\"") ||
         evs__json_get(line, "v", &v) != 1 || !evs__span_eq_cstr(v, "1") ||
         evs__json_get(line, "spec", &spec) != 1 ||
         evs__json_get(line, "state", &state) != 1 ||
         evs__json_get(line, "updated_at", &v) != 1 || v.len < 2 ||
         evs_time_parse(v.ptr + 1, v.len - 2, &h->updated_us) != 0))
        rc = EVS_ECORRUPT;
    if (rc != 0) {
        evs__free(s->alloc, buf);
        return rc;
    }
    evs__free(s->alloc, h->prev);
    h->prev = h->buf;
    h->buf = buf;
    h->len = got;
    h->spec = spec;
    h->state = state;
    return 0;
}

/* The line of a schedule, framed: *out from the store's allocator. */
static int sched_line(evs_store *s, const char *name, evs_span spec,
                      evs_span state, int64_t now, char **out, size_t *len)
{
    evs__jbuf b = {.alloc = s->alloc};
    char *tail;
    int rc;

    EVS__JB_LIT(&b, "{\"v\":1,\"kind\":\"schedule\",\"name\":");
    evs__jb_quote(&b, evs_span_cstr(name));
    EVS__JB_LIT(&b, ",\"updated_at\":");
    evs__jb_time(&b, now);
    EVS__JB_LIT(&b, ",\"spec\":");
    if ((rc = evs__jb_minify(&b, spec)) == 0) {
        EVS__JB_LIT(&b, ",\"state\":");
        rc = evs__jb_minify(&b, state);
    }
    EVS__JB_LIT(&b, ",");
    if (rc == 0 && !(tail = evs__jb_reserve(&b, EVS__CKSUM_TAIL_LEN)))
        rc = -ENOMEM;
    if (rc == 0)
        b.len = evs__frame_seal(b.p, b.len);
    if (rc == 0 && b.len > SCHED_MAX)
        rc = EVS_ETOOBIG;
    if (rc == 0)
        rc = evs__jb_finish(&b, out, len);
    evs__jb_free(&b);
    return rc == EVS_EPARSE ? -EINVAL : rc;
}

int evs_schedule_create(evs_store *s, const char *name, evs_span spec,
                        evs_span state)
{
    char fname[EVS_SCHED_NAME_MAX + 8];
    char *line = NULL;
    size_t len;
    int dfd = -1, lfd = -1, rc;

    if (!name_ok(name))
        return -EINVAL;
    /* Schedules are files beside the executions (BACKENDS.md). */
    if ((rc = evs__file_only(s, "a schedule", NULL)) != 0)
        return rc;
    if ((rc = sched_line(s, name, spec, state, evs_now_us(), &line, &len)))
        return rc;
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
    evs__free(s->alloc, line);
    return rc;
}

int evs_schedule_open(evs_store *s, const char *name, unsigned flags,
                      evs_schedule **out)
{
    evs_schedule *h;
    int rc;

    if (!name_ok(name) || !out ||
        (flags & ~(unsigned)(EVS_SCHEDULE_LOCK | EVS_SCHEDULE_WAIT)) ||
        (flags == EVS_SCHEDULE_WAIT))
        return -EINVAL;
    if ((rc = evs__file_only(s, "a schedule", NULL)) != 0)
        return rc;
    if (!(h = evs__calloc(s->alloc, sizeof(*h))))
        return -ENOMEM;
    h->s = s;
    h->lockfd = -1;
    snprintf(h->name, sizeof(h->name), "%s", name);
    if ((rc = sched_dir(s, 0, &h->dirfd)) != 0) {
        evs__free(s->alloc, h);
        return rc;
    }
    if (flags & EVS_SCHEDULE_LOCK)
        rc =
            lock_take(s, h->dirfd, name, flags & EVS_SCHEDULE_WAIT, &h->lockfd);
    if (rc == 0)
        rc = sched_read(h);
    if (rc == -ENOENT && h->lockfd >= 0) {
        /* The lock file this open made for nothing goes. */
        char lname[EVS_SCHED_NAME_MAX + 8];
        snprintf(lname, sizeof(lname), "%s.lock", name);
        IO(s)->unlinkat(CTX(s), h->dirfd, lname, 0);
    }
    if (rc != 0) {
        evs_schedule_close(h);
        return rc;
    }
    *out = h;
    return 0;
}

const char *evs_schedule_name(const evs_schedule *h)
{
    return h->name;
}

evs_span evs_schedule_spec(const evs_schedule *h)
{
    return h->spec;
}

evs_span evs_schedule_state(const evs_schedule *h)
{
    return h->state;
}

int64_t evs_schedule_updated_us(const evs_schedule *h)
{
    return h->updated_us;
}

int evs_schedule_save(evs_schedule *h, evs_span state)
{
    evs_store *s = h->s;
    char fname[EVS_SCHED_NAME_MAX + 8], *line = NULL;
    int64_t now = evs_now_us();
    size_t len;
    int rc;

    if (h->lockfd < 0)
        return EVS_EREADONLY;
    if ((rc = sched_line(s, h->name, h->spec, state, now, &line, &len)) != 0)
        return rc;
    snprintf(fname, sizeof(fname), "%s.json", h->name);
    rc = evs__write_atomic(s, h->dirfd, fname, line, len, NULL);
    evs__free(s->alloc, line);
    return rc != 0 ? rc : sched_read(h);
}

int evs_schedule_remove(evs_schedule *h)
{
    evs_store *s = h->s;
    char fname[EVS_SCHED_NAME_MAX + 8];
    int rc;

    if (h->lockfd < 0)
        return EVS_EREADONLY;
    snprintf(fname, sizeof(fname), "%s.json", h->name);
    if ((rc = IO(s)->unlinkat(CTX(s), h->dirfd, fname, 0)) != 0)
        return rc;
    snprintf(fname, sizeof(fname), "%s.lock", h->name);
    IO(s)->unlinkat(CTX(s), h->dirfd, fname, 0);
    return evs__sync_meta(s) ? IO(s)->fsync(CTX(s), h->dirfd) : 0;
}

void evs_schedule_close(evs_schedule *h)
{
    if (!h)
        return;
    if (h->lockfd >= 0)
        IO(h->s)->close(CTX(h->s), h->lockfd);
    if (h->dirfd >= 0)
        IO(h->s)->close(CTX(h->s), h->dirfd);
    evs__free(h->s->alloc, h->buf);
    evs__free(h->s->alloc, h->prev);
    evs__free(h->s->alloc, h);
}

/* ------------------------------------------------------------------ */
/* Listing                                                            */
/* ------------------------------------------------------------------ */

typedef struct lister {
    evs_schedule_listing *l;
    size_t cap;
    int rc;
} lister;

static int list_cb(void *arg, const char *name, size_t len)
{
    lister *ls = arg;
    evs_schedule_listing *l = ls->l;

    if (len < 6 || len - 5 > EVS_SCHED_NAME_MAX ||
        memcmp(name + len - 5, ".json", 5) != 0 || !evs_id_valid(name, len - 5))
        return 0;
    if (EVS__GROW(l->alloc_, &l->names, &ls->cap, l->count + 1) != 0) {
        ls->rc = -ENOMEM;
        return 1;
    }
    memcpy(l->names[l->count], name, len - 5);
    l->names[l->count++][len - 5] = '\0';
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

int evs_schedule_list(evs_store *s, evs_schedule_listing *out)
{
    lister ls = {out, 0, 0};
    int dfd, rc;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->alloc_ = s->alloc;
    if ((rc = evs__file_only(s, "a schedule", NULL)) != 0)
        return rc;
    if ((rc = sched_dir(s, 0, &dfd)) != 0)
        return rc == -ENOENT ? 0 : rc;
    rc = IO(s)->listdir(CTX(s), dfd, list_cb, &ls);
    IO(s)->close(CTX(s), dfd);
    if (ls.rc)
        rc = ls.rc;
    if (rc != 0) {
        evs_schedule_list_free(out);
        return rc;
    }
    if (out->count)
        qsort(out->names, out->count, sizeof(*out->names), by_name);
    return 0;
}

void evs_schedule_list_free(evs_schedule_listing *l)
{
    if (!l)
        return;
    evs__free(l->alloc_, l->names);
    l->names = NULL;
    l->count = 0;
}

/* ------------------------------------------------------------------ */
/* Time zones                                                         */
/* ------------------------------------------------------------------ */

/* Words of [A-Za-z0-9_+-] joined by '/', none "." or "..": a name that
 * stays inside the zone directory. */
static int zone_name_ok(const char *n)
{
    size_t len = strlen(n), word = 0;

    if (!len || len > EVS_TZ_NAME_MAX || n[0] == '/' || n[len - 1] == '/')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)n[i];
        if (c == '/') {
            if (!word)
                return 0;
            word = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '_' || c == '+' || c == '-' ||
                   c == '.') {
            word++;
        } else {
            return 0;
        }
    }
    return strstr(n, "..") == NULL;
}

int evs_tz_load(evs_store *s, const char *name, evs_tz **out,
                evs_error_info *err)
{
    const char *dir = getenv("TZDIR");
    char path[1024];
    evs_stat st;
    size_t got = 0;
    char *buf = NULL;
    int fd = -1, rc;

    evs_error_info_clear(err);
    if (!name || !zone_name_ok(name)) {
        evs__error_set(err, -EINVAL, "timezone",
                       "\"%s\" is not a zone name (\"Europe/Berlin\")",
                       name ? name : "");
        return -EINVAL;
    }
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0 ||
        strcmp(name, "Z") == 0)
        return evs_tz_parse(name, (evs_span){0}, s->alloc, out, err);
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    /* The zone directory is the system's, not the store's: its links
     * (US/Eastern) are followed. */
    rc = IO(s)->openat(CTX(s), AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0, &fd);
    if (rc == 0)
        rc = IO(s)->fstat(CTX(s), fd, &st);
    if (rc == 0 && (!S_ISREG(st.mode) || st.size > (1u << 20)))
        rc = -ENOENT;
    if (rc == 0 && !(buf = evs__malloc(s->alloc, (size_t)st.size + 1)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = IO(s)->pread(CTX(s), fd, buf, (size_t)st.size, 0, &got);
    if (fd >= 0)
        IO(s)->close(CTX(s), fd);
    if (rc == 0)
        rc = evs_tz_parse(name, (evs_span){buf, got}, s->alloc, out, err);
    else if (rc == -ENOENT || rc == -ENOTDIR || rc == -EISDIR)
        evs__error_set(err, rc = -ENOENT, "timezone",
                       "no zone \"%s\" in %s (tzdata)", name, dir);
    else
        evs__error_set(err, rc, "timezone", "zone %s: %s", path,
                       evs_strerror(rc));
    evs__free(s->alloc, buf);
    return evs__error_rc(err, rc);
}
