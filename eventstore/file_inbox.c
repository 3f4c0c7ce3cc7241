/*
 * file_inbox.c: the request inbox of an execution (FORMAT.md §13). Other
 * processes cannot append to a log whose writer lock is held, so they
 * drop requests, one small JSON file each, into STORE/<id>/inbox/; the
 * lock holder lists them, records each in the log and removes it.
 *
 * A request file appears whole or not at all (temporary file, fsync,
 * rename), so the only damage a lister can meet is a file someone else
 * put there. Such a file is moved aside, never dropped: it may be the
 * only copy of what a person asked for.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

#define INBOX_NAME "inbox"
#define REQ_SUFFIX ".json"
#define REQ_SUFFIX_LEN 5
#define REQ_NAME_LEN (EVS_REQUEST_ID_LEN + REQ_SUFFIX_LEN)
#define BAD_PREFIX "bad-"

/* The largest compact body, and the largest file: body and newline. */
#define REQ_MAX EVS__REQUEST_MAX
#define REQ_FILE_MAX (REQ_MAX + 1)

/* The id's first 48 bits: milliseconds since the epoch. */
int64_t evs__request_time_us(const char *p)
{
    uint64_t ms = 0;

    for (size_t i = 0; i < 13; i++) {
        char c = p[i];
        if (c == '-')
            continue;
        ms = ms << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return (int64_t)ms * 1000;
}

static void nul_name(char name[EVS_ID_MAX + 1], const char *id, size_t len)
{
    memcpy(name, id, len);
    name[len] = '\0';
}

/*
 * Opens the inbox of execution `name` into *ifd. With `create`, the
 * execution must have a log and the inbox is made if it is missing.
 * Whoever created the inbox, it must be durable before a request in it
 * can be, so with `create` the execution's directory is returned open in
 * *edfd for the caller to fsync (evs_request_post does so last, after
 * the request is in place, which keeps that sync off the path by which a
 * runner sees the request); with `edfd` NULL it is fsynced here. Returns
 * 0, 1 (no inbox, without `create`), -ENOENT (no execution) or another
 * error; -ELOOP or -ENOTDIR when the inbox is not a plain directory.
 */
static int open_inbox(evs_store *s, const char *name, int create, int *ifd,
                      int *edfd)
{
    const int dflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    evs_stat st;
    int dfd = -1, fd = -1, rc;

    if (edfd)
        *edfd = -1;

    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0)
        return rc;
    if (create) {
        rc = IO(s)->statat(CTX(s), dfd, EVS__LOG_NAME, &st);
        if (rc == 0 && !S_ISREG(st.mode))
            rc = -ENOENT;
        if (rc != 0)
            goto out;
    }
    rc = IO(s)->openat(CTX(s), dfd, INBOX_NAME, dflags, 0, &fd);
    if (rc == -ENOENT && !create) {
        rc = 1;
        goto out;
    }
    if (rc == -ENOENT) {
        rc = IO(s)->mkdirat(CTX(s), dfd, INBOX_NAME, 0700);
        if (rc == 0 || rc == -EEXIST)
            rc = IO(s)->openat(CTX(s), dfd, INBOX_NAME, dflags, 0, &fd);
    }
    if (rc == 0 && create && edfd) {
        *edfd = dfd;
        dfd = -1;
    } else if (rc == 0 && create) {
        rc = IO(s)->fsync(CTX(s), dfd);
    }
out:
    if (dfd >= 0)
        IO(s)->close(CTX(s), dfd);
    if (rc != 0 && fd >= 0) {
        IO(s)->close(CTX(s), fd);
        fd = -1;
    }
    *ifd = fd;
    return rc;
}

/* Checks that json[0..len) is one JSON object whose compact form is at
 * most REQ_MAX bytes, and returns that form in *out (heap, with room for
 * a newline after it) and its length in *olen. */
int evs__request_compact(evs_store *s, const char *json, size_t len,
                         char **out, size_t *olen)
{
    size_t i = 0, n;
    char *b;

    while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' ||
                       json[i] == '\r'))
        i++;
    if (i == len || json[i] != '{')
        return -EINVAL;
    if (evs_json_check(json, len, EVS_JSON_MINIFY, NULL, &n, NULL) != 0)
        return -EINVAL;
    if (n > REQ_MAX)
        return -EINVAL;
    if (!(b = evs__malloc(s->alloc, n + 1)))
        return -ENOMEM;
    evs_json_check(json, len, EVS_JSON_MINIFY, b, &n, NULL);
    *out = b;
    *olen = n;
    return 0;
}

int evs__file_request_post(evs_store *s, const char *id, size_t id_len,
                           const char *json, size_t len,
                           char out_id[EVS_REQUEST_ID_LEN + 1])
{
    char name[EVS_ID_MAX + 1], uuid[EVS_UUID_LEN + 1], sfx[17];
    char req[REQ_NAME_LEN + 1], tmp[32];
    char *body = NULL;
    size_t blen = 0;
    struct iovec iov;
    int edfd = -1, ifd = -1, fd = -1, rc, made = 0, renamed = 0;

    if ((rc = evs__request_compact(s, json, len, &body, &blen)) != 0)
        return rc;
    body[blen] = '\n';
    nul_name(name, id, id_len);
    if ((rc = open_inbox(s, name, 1, &ifd, &edfd)) != 0)
        goto out;
    if ((rc = evs_uuid7(uuid)) != 0 || (rc = evs__rand_suffix(sfx)) != 0)
        goto out;
    snprintf(req, sizeof(req), "%s" REQ_SUFFIX, uuid);
    snprintf(tmp, sizeof(tmp), EVS__TMP_PREFIX "%s", sfx);
    rc = IO(s)->openat(CTX(s), ifd, tmp,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600, &fd);
    if (rc != 0)
        goto out;
    made = 1;
    iov.iov_base = body;
    iov.iov_len = blen + 1;
    if ((rc = IO(s)->pwritev(CTX(s), fd, &iov, 1, 0)) != 0)
        goto out;
    /* Always synced, whatever the store's durability: a request that a
     * person was told is posted must survive a power loss. */
    if ((rc = IO(s)->fsync(CTX(s), fd)) != 0)
        goto out;
    rc = IO(s)->renameat(CTX(s), ifd, tmp, ifd, req, RENAME_NOREPLACE);
    if (rc != 0)
        goto out;
    renamed = 1;
    /* The request is whole and visible from here on, and a runner may
     * take it at once. What makes it durable follows, before the post
     * returns: its name in the inbox, then the inbox's in the execution's
     * directory. A crash before these ends loses only a request that no
     * caller was told is posted. On ext4 the first sync commits the
     * journal that holds the inbox's creation too, so the second finds
     * nothing left to write when this post made the inbox. */
    if ((rc = IO(s)->fsync(CTX(s), ifd)) != 0)
        goto out;
    if ((rc = IO(s)->fsync(CTX(s), edfd)) != 0)
        goto out;
    if (out_id)
        memcpy(out_id, uuid, EVS_REQUEST_ID_LEN + 1);
out:
    if (fd >= 0)
        IO(s)->close(CTX(s), fd);
    /* A failed post leaves nothing behind, so that the caller may simply
     * post again. */
    if (rc != 0 && renamed)
        IO(s)->unlinkat(CTX(s), ifd, req, 0);
    else if (rc != 0 && made)
        IO(s)->unlinkat(CTX(s), ifd, tmp, 0);
    if (ifd >= 0)
        IO(s)->close(CTX(s), ifd);
    if (edfd >= 0)
        IO(s)->close(CTX(s), edfd);
    evs__free(s->alloc, body);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Listing                                                            */
/* ------------------------------------------------------------------ */

typedef struct inbox_lister {
    evs_store *s;
    const char *exec; /* the execution, for messages */
    int ifd;
    char (*names)[REQ_NAME_LEN + 1];
    size_t nnames, ncap;
    evs_request *items;
    size_t count, icap;
    char *mem; /* arena: ids and bodies */
    size_t used, memcap;
} inbox_lister;

/* Collects the names of finished requests. Nothing is read or moved
 * here: changing a directory while reading it may skip entries. */
static int collect_cb(void *arg, const char *name, size_t len)
{
    inbox_lister *L = arg;

    if (len != REQ_NAME_LEN ||
        memcmp(name + EVS_REQUEST_ID_LEN, REQ_SUFFIX, REQ_SUFFIX_LEN) != 0 ||
        !evs__request_id_valid(name, EVS_REQUEST_ID_LEN))
        return 0; /* temporaries, bad-*, anything foreign */
    if (EVS__GROW(L->s->alloc, &L->names, &L->ncap, L->nnames + 1) != 0)
        return -ENOMEM;
    memcpy(L->names[L->nnames], name, len + 1);
    L->nnames++;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return memcmp(a, b, REQ_NAME_LEN);
}

/* Makes room for `n` more bytes in the arena. */
static int arena_reserve(inbox_lister *L, size_t n)
{
    return EVS__GROW(L->s->alloc, &L->mem, &L->memcap, L->used + n);
}

/* Renames a file that is named like a request but is not one to
 * bad-<name>, and says so through the log hook. */
static void move_aside(inbox_lister *L, const char *name, const char *why)
{
    evs_store *s = L->s;
    char bad[sizeof(BAD_PREFIX) + 17 + REQ_NAME_LEN + 1], sfx[17];
    int rc;

    snprintf(bad, sizeof(bad), BAD_PREFIX "%s", name);
    rc = IO(s)->renameat(CTX(s), L->ifd, name, L->ifd, bad, RENAME_NOREPLACE);
    if (rc == -EEXIST && evs__rand_suffix(sfx) == 0) {
        snprintf(bad, sizeof(bad), BAD_PREFIX "%s-%s", sfx, name);
        rc = IO(s)->renameat(CTX(s), L->ifd, name, L->ifd, bad,
                             RENAME_NOREPLACE);
    }
    if (rc == 0)
        evs__logf(s, EVS_LOG_WARN, EVS_LOG_FIELDS(.execution = L->exec),
                  "request file %s is %s; moved aside to inbox/%s", name, why,
                  bad);
    else if (rc != -ENOENT)
        evs__logf(s, EVS_LOG_ERROR,
                  EVS_LOG_FIELDS(.execution = L->exec, .err = rc),
                  "request file %s is %s, and moving it aside failed: %s",
                  name, why, evs_strerror(rc));
}

/* Reads request `name` into the arena and adds it to the list. Returns
 * 0 (added, gone, or moved aside) or an error. */
static int read_one(inbox_lister *L, const char *name)
{
    evs_store *s = L->s;
    const char *why = NULL;
    evs_request *it;
    evs_stat st;
    size_t got = 0, n, start;
    char *body;
    int fd = -1, rc;

    rc = evs__open_regular(s, L->ifd, name, O_RDONLY, 0, &fd, &st);
    if (rc == -ENOENT)
        return 0; /* removed since the directory was read */
    if (rc == -ELOOP)
        why = "a symbolic link";
    else if (rc == -EINVAL || rc == -ENXIO)
        why = "not a regular file";
    else if (rc == EVS_EUNSAFE)
        why = "linked elsewhere (more than one link)";
    else if (rc != 0)
        return rc;
    if (why) {
        rc = 0;
        goto out;
    }
    if (st.size > REQ_FILE_MAX) {
        why = "larger than a request can be";
        goto out;
    }
    /* The id first, then the body, both in the arena. */
    start = L->used;
    if ((rc = arena_reserve(L, EVS_REQUEST_ID_LEN + st.size)) != 0)
        goto out;
    memcpy(L->mem + L->used, name, EVS_REQUEST_ID_LEN);
    body = L->mem + L->used + EVS_REQUEST_ID_LEN;
    rc = IO(s)->pread(CTX(s), fd, body, st.size, 0, &got);
    if (rc != 0)
        goto out;
    if (got == 0 ||
        evs_json_check(body, got, EVS_JSON_MINIFY, body, &n, NULL) != 0) {
        why = "not valid JSON";
        goto out;
    }
    if (n == 0 || body[0] != '{' || n > REQ_MAX) {
        why =
            n > REQ_MAX ? "larger than a request can be" : "not a JSON object";
        goto out;
    }
    if ((rc = EVS__GROW(s->alloc, &L->items, &L->icap, L->count + 1)) != 0)
        goto out;
    /* Offsets for now: the arena may still move. */
    it = &L->items[L->count++];
    it->id.ptr = (const char *)(uintptr_t)start;
    it->id.len = EVS_REQUEST_ID_LEN;
    it->body.ptr = (const char *)(uintptr_t)(start + EVS_REQUEST_ID_LEN);
    it->body.len = n;
    it->posted_us = evs__request_time_us(name);
    L->used += EVS_REQUEST_ID_LEN + n;
out:
    if (fd >= 0)
        IO(s)->close(CTX(s), fd);
    if (rc == 0 && why)
        move_aside(L, name, why);
    return rc;
}

int evs__file_request_list(evs_store *s, const char *id, size_t id_len,
                           evs_request_listing *out)
{
    char name[EVS_ID_MAX + 1];
    inbox_lister L;
    int rc;

    nul_name(name, id, id_len);
    memset(&L, 0, sizeof(L));
    L.s = s;
    L.exec = name;
    rc = open_inbox(s, name, 0, &L.ifd, NULL);
    if (rc == 1)
        return 0; /* no inbox yet: no requests */
    if (rc != 0)
        return rc;
    if ((rc = IO(s)->listdir(CTX(s), L.ifd, collect_cb, &L)) != 0)
        goto out;
    /* Oldest first: a UUIDv7 begins with its time, in hex. */
    if (L.nnames > 1)
        qsort(L.names, L.nnames, sizeof(*L.names), name_cmp);
    for (size_t i = 0; i < L.nnames && rc == 0; i++)
        rc = read_one(&L, L.names[i]);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < L.count; i++) {
        L.items[i].id.ptr = L.mem + (uintptr_t)L.items[i].id.ptr;
        L.items[i].body.ptr = L.mem + (uintptr_t)L.items[i].body.ptr;
    }
    out->items = L.items;
    out->count = L.count;
    out->mem_ = L.mem;
    out->alloc_ = s->alloc;
    L.items = NULL;
    L.mem = NULL;
out:
    IO(s)->close(CTX(s), L.ifd);
    evs__free(s->alloc, L.names);
    evs__free(s->alloc, L.items);
    evs__free(s->alloc, L.mem);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Removal and the inbox's path                                       */
/* ------------------------------------------------------------------ */

int evs__file_request_remove(evs_store *s, const char *id, size_t id_len,
                             const char *req_id)
{
    char name[EVS_ID_MAX + 1], req[REQ_NAME_LEN + 1];
    int ifd, rc;

    nul_name(name, id, id_len);
    memcpy(req, req_id, EVS_REQUEST_ID_LEN);
    memcpy(req + EVS_REQUEST_ID_LEN, REQ_SUFFIX, REQ_SUFFIX_LEN + 1);
    rc = open_inbox(s, name, 0, &ifd, NULL);
    if (rc == 1 || rc == -ENOENT)
        return 0; /* no inbox, or no execution: the request is gone */
    if (rc != 0)
        return rc;
    rc = IO(s)->unlinkat(CTX(s), ifd, req, 0);
    IO(s)->close(CTX(s), ifd);
    return rc == -ENOENT ? 0 : rc;
}

int evs__file_request_dir(evs_store *s, const char *id, size_t id_len,
                          char *buf, size_t cap, int create)
{
    char name[EVS_ID_MAX + 1];
    int ifd, rc, n;

    nul_name(name, id, id_len);
    n = snprintf(buf, cap, "%s/%s/" INBOX_NAME, s->path, name);
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    if ((rc = open_inbox(s, name, create, &ifd, NULL)) != 0) {
        if (create)
            buf[0] = '\0';
        return rc == 1 ? -ENOENT : rc;
    }
    IO(s)->close(CTX(s), ifd);
    return 0;
}

int evs__file_request_stamp(evs_store *s, const char *id, size_t id_len,
                            uint64_t *ino, int64_t *ctime_ns)
{
    char path[EVS_ID_MAX + sizeof("/" INBOX_NAME)];
    evs_stat st;
    int rc;

    /* Metadata only, nothing opened through the two components
     * (FORMAT.md §13). */
    snprintf(path, sizeof(path), "%.*s/" INBOX_NAME, (int)id_len, id);
    rc = IO(s)->statat(CTX(s), s->dirfd, path, &st);
    if (rc == -ENOENT) {
        *ino = 0;
        *ctime_ns = 0;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (!S_ISDIR(st.mode))
        return -ENOTDIR;
    *ino = st.ino;
    *ctime_ns = st.ctime_ns;
    return 0;
}
