/*
 * schedule_api.c: schedules kept in a store (formats/SCHEDULES.md §7),
 * whatever its backend: the checks of names and flags, the schedule's
 * framed and checksummed line, made and checked here so that every
 * backend keeps the same bytes and refuses the same damage; the backend
 * (evs_backend_ops, store_int.h) keeps the line and the lock. Also
 * loading a time zone from the system's tzdata through the store's I/O
 * table, which no backend changes.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    return n && n <= EVS_SCHED_NAME_MAX && evs_id_valid(name, n);
}

/* Whether the store's backend keeps schedules. */
static int kept(evs_store *s)
{
    return s->ops->sched_create ? 0 : -ENOTSUP;
}

/* Reads the schedule's line through the backend and checks it: framing,
 * checksum, version, kind and members. */
static int sched_read(evs_schedule *h)
{
    evs_store *s = h->s;
    evs_span line, v, spec, state;
    int64_t updated;
    size_t got = 0, body;
    char *buf = NULL;
    int rc;

    if ((rc = s->ops->sched_read(h, &buf, &got)) != 0)
        return rc;
    if (got < 2 || got > EVS__SCHED_MAX || evs__frame_check(buf, got, &body))
        rc = EVS_ECORRUPT;
    line = (evs_span){buf, got ? got - 1 : 0};
    if (rc == 0 &&
        (evs__json_get(line, "kind", &v) != 1 ||
         !evs__span_eq_cstr(v, "\"schedule\"") ||
         evs__json_get(line, "v", &v) != 1 || !evs__span_eq_cstr(v, "1") ||
         evs__json_get(line, "spec", &spec) != 1 ||
         evs__json_get(line, "state", &state) != 1 ||
         evs__json_get(line, "updated_at", &v) != 1 || v.len < 2 ||
         evs_time_parse(v.ptr + 1, v.len - 2, &updated) != 0))
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
    h->updated_us = updated;
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
    if (rc == 0 && b.len > EVS__SCHED_MAX)
        rc = EVS_ETOOBIG;
    if (rc == 0)
        rc = evs__jb_finish(&b, out, len);
    evs__jb_free(&b);
    return rc == EVS_EPARSE ? -EINVAL : rc;
}

int evs_schedule_create(evs_store *s, const char *name, evs_span spec,
                        evs_span state)
{
    int64_t now = evs_now_us();
    char *line = NULL;
    size_t len;
    int rc;

    if (!name_ok(name))
        return -EINVAL;
    if ((rc = kept(s)) != 0)
        return rc;
    if ((rc = sched_line(s, name, spec, state, now, &line, &len)) != 0)
        return rc;
    rc = s->ops->sched_create(s, name, line, len, now);
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
    if ((rc = kept(s)) != 0)
        return rc;
    if (!(h = evs__calloc(s->alloc, sizeof(*h))))
        return -ENOMEM;
    h->s = s;
    h->dirfd = -1;
    h->lockfd = -1;
    snprintf(h->name, sizeof(h->name), "%s", name);
    if ((rc = s->ops->sched_open(h, flags)) == 0)
        rc = sched_read(h);
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
    int64_t now = evs_now_us();
    char *line = NULL;
    size_t len;
    int rc;

    if (!h->locked)
        return EVS_EREADONLY;
    if ((rc = sched_line(s, h->name, h->spec, state, now, &line, &len)) != 0)
        return rc;
    rc = s->ops->sched_write(h, line, len, now);
    evs__free(s->alloc, line);
    return rc != 0 ? rc : sched_read(h);
}

int evs_schedule_remove(evs_schedule *h)
{
    if (!h->locked)
        return EVS_EREADONLY;
    return h->s->ops->sched_remove(h);
}

void evs_schedule_close(evs_schedule *h)
{
    if (!h)
        return;
    h->s->ops->sched_close(h);
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

    if (!len || len > EVS_SCHED_NAME_MAX || !evs_id_valid(name, len))
        return 0;
    if (EVS__GROW(l->alloc_, &l->names, &ls->cap, l->count + 1) != 0) {
        ls->rc = -ENOMEM;
        return 1;
    }
    memcpy(l->names[l->count], name, len);
    l->names[l->count++][len] = '\0';
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

int evs_schedule_list(evs_store *s, evs_schedule_listing *out)
{
    lister ls = {out, 0, 0};
    int rc;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->alloc_ = s->alloc;
    if ((rc = kept(s)) != 0)
        return rc;
    rc = s->ops->sched_list(s, list_cb, &ls);
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
