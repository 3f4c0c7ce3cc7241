/*
 * file_inbox.c: the request inbox of an execution (FORMAT.md §13). Other
 * processes cannot append to a log whose writer lock is held, so they
 * drop requests, one small file each, into STORE/<id>/inbox/; the lock
 * holder lists them, records each in the log and removes it.
 *
 * A request file is one checksummed line that names its own request id
 * (<uuid>.req). It is renamed into place before it is synced, so that a
 * runner may take it at once; the post returns once the file and the
 * names are synced. A crash before then may leave the file torn or
 * empty: its checksum says so. Files of the earlier form (<uuid>.json,
 * the bare object, synced before the rename) are still read. A file that
 * is not a request is moved aside, never dropped: it may be the only
 * copy of what a person asked for.
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
/* A request's file name: its id, then ".req" (framed) or ".json" (the
 * earlier form, the bare object). */
#define REQ_SUFFIX ".req"
#define OLD_SUFFIX ".json"
#define REQ_NAME_MAX (EVS_REQUEST_ID_LEN + sizeof(OLD_SUFFIX) - 1)
#define BAD_PREFIX "bad-"

enum { NOT_REQ, REQ_FRAMED, REQ_OLD };

/* Which form of request file `name` (len bytes) names, if any. */
static int req_form(const char *name, size_t len)
{
    const char *sfx = name + EVS_REQUEST_ID_LEN;

    if (len < EVS_REQUEST_ID_LEN ||
        !evs__request_id_valid(name, EVS_REQUEST_ID_LEN))
        return NOT_REQ;
    if (len == EVS_REQUEST_ID_LEN + sizeof(REQ_SUFFIX) - 1 &&
        memcmp(sfx, REQ_SUFFIX, sizeof(REQ_SUFFIX) - 1) == 0)
        return REQ_FRAMED;
    if (len == EVS_REQUEST_ID_LEN + sizeof(OLD_SUFFIX) - 1 &&
        memcmp(sfx, OLD_SUFFIX, sizeof(OLD_SUFFIX) - 1) == 0)
        return REQ_OLD;
    return NOT_REQ;
}

/* The framed form: this, the id, the rest of the prefix, the compact
 * body, a comma, then the checksum tail (FORMAT.md §2's framing). */
#define FRAME_HEAD "{\"v\":1,\"kind\":\"request\",\"id\":\""
#define FRAME_BODY "\",\"body\":"
#define FRAME_OVER                                                             \
    (sizeof(FRAME_HEAD) - 1 + EVS_REQUEST_ID_LEN + sizeof(FRAME_BODY) - 1 +   \
     1 + EVS__CKSUM_TAIL_LEN)

/* The largest compact body, and the largest file of each form (the
 * earlier: the body and a newline). */
#define REQ_MAX EVS__REQUEST_MAX
#define REQ_FILE_MAX (REQ_MAX + FRAME_OVER)
#define OLD_FILE_MAX (REQ_MAX + 1)

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
    char req[REQ_NAME_MAX + 1], tmp[32];
    char *body = NULL, *line = NULL;
    size_t blen = 0, n;
    struct iovec iov;
    int edfd = -1, ifd = -1, fd = -1, rc, made = 0, renamed = 0;

    if ((rc = evs__request_compact(s, json, len, &body, &blen)) != 0)
        return rc;
    nul_name(name, id, id_len);
    if ((rc = open_inbox(s, name, 1, &ifd, &edfd)) != 0)
        goto out;
    if ((rc = evs_uuid7(uuid)) != 0 || (rc = evs__rand_suffix(sfx)) != 0)
        goto out;
    /* The line: its id inside, so that no other request's bytes can pass
     * for it, and its checksum. */
    if (!(line = evs__malloc(s->alloc, blen + FRAME_OVER))) {
        rc = -ENOMEM;
        goto out;
    }
    n = (size_t)snprintf(line, FRAME_OVER, FRAME_HEAD "%s" FRAME_BODY, uuid);
    memcpy(line + n, body, blen);
    n += blen;
    line[n++] = ',';
    n = evs__frame_seal(line, n);
    snprintf(req, sizeof(req), "%s" REQ_SUFFIX, uuid);
    snprintf(tmp, sizeof(tmp), EVS__TMP_PREFIX "%s", sfx);
    rc = IO(s)->openat(CTX(s), ifd, tmp,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600, &fd);
    if (rc != 0)
        goto out;
    made = 1;
    iov.iov_base = line;
    iov.iov_len = n;
    if ((rc = IO(s)->pwritev(CTX(s), fd, &iov, 1, 0)) != 0)
        goto out;
    rc = IO(s)->renameat(CTX(s), ifd, tmp, ifd, req, RENAME_NOREPLACE);
    if (rc != 0)
        goto out;
    renamed = 1;
    /* Visible from here on, and a runner may take it at once: it checks
     * the line whole. What makes it durable follows, always, whatever
     * the store's durability (a request that a person was told is
     * posted must survive a power loss), before the post returns: the
     * file, its name in the inbox, then the inbox's in the execution's
     * directory. A crash before these end loses, or leaves torn, only a
     * request that no caller was told is posted. On ext4 the inbox's
     * sync commits the journal that holds the inbox's creation too, so
     * the last finds nothing left to write when this post made it. */
    if ((rc = IO(s)->fsync(CTX(s), fd)) != 0)
        goto out;
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
    evs__free(s->alloc, line);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Listing                                                            */
/* ------------------------------------------------------------------ */

typedef struct inbox_lister {
    evs_store *s;
    const char *exec; /* the execution, for messages */
    int ifd;
    char (*names)[REQ_NAME_MAX + 1];
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

    if (req_form(name, len) == NOT_REQ)
        return 0; /* temporaries, bad-*, anything foreign */
    if (EVS__GROW(L->s->alloc, &L->names, &L->ncap, L->nnames + 1) != 0)
        return -ENOMEM;
    memcpy(L->names[L->nnames], name, len + 1);
    L->nnames++;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    /* By id; one id under both names sorts the same either way. */
    int c = memcmp(a, b, EVS_REQUEST_ID_LEN);
    return c ? c : strcmp(a, b);
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
    char bad[sizeof(BAD_PREFIX) + 17 + REQ_NAME_MAX + 1], sfx[17];
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

/* Checks a framed request file's bytes buf[0..*len): one line, its
 * checksum right and its id the one its name gives. Then moves its body
 * to the start of buf, with its length in *len, and returns NULL; else
 * says what is wrong. */
static const char *unframe(const char *name, char *buf, size_t *len)
{
    const size_t head = sizeof(FRAME_HEAD) - 1 + EVS_REQUEST_ID_LEN +
                        sizeof(FRAME_BODY) - 1;
    size_t body;
    int rc;

    if (*len == 0)
        return "empty (a post that did not end)";
    if (memchr(buf, '\n', *len) != buf + *len - 1)
        return "not one whole line (a post that did not end?)";
    if ((rc = evs__frame_check(buf, *len, &body)) != 0)
        return rc == EVS_ECORRUPT ? "damaged (its checksum does not match)"
                                  : "not a request line";
    if (body < head + 1 ||
        memcmp(buf, FRAME_HEAD, sizeof(FRAME_HEAD) - 1) != 0 ||
        memcmp(buf + sizeof(FRAME_HEAD) - 1, name, EVS_REQUEST_ID_LEN) != 0 ||
        memcmp(buf + sizeof(FRAME_HEAD) - 1 + EVS_REQUEST_ID_LEN, FRAME_BODY,
               sizeof(FRAME_BODY) - 1) != 0)
        return "not this request's line (another id inside)";
    /* The body ends with the comma before the checksum. */
    *len = body - head - 1;
    memmove(buf, buf + head, *len);
    return NULL;
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
    int fd = -1, rc, form;

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
    form = req_form(name, strlen(name));
    if (st.size > (form == REQ_FRAMED ? REQ_FILE_MAX : OLD_FILE_MAX)) {
        why = "larger than a request can be";
        goto out;
    }
    /* The id first, then the file, both in the arena; the body is then
     * moved to follow the id. */
    start = L->used;
    if ((rc = arena_reserve(L, EVS_REQUEST_ID_LEN + st.size)) != 0)
        goto out;
    memcpy(L->mem + L->used, name, EVS_REQUEST_ID_LEN);
    body = L->mem + L->used + EVS_REQUEST_ID_LEN;
    rc = IO(s)->pread(CTX(s), fd, body, st.size, 0, &got);
    if (rc != 0)
        goto out;
    if (form == REQ_FRAMED && (why = unframe(name, body, &got)) != NULL)
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
    char name[EVS_ID_MAX + 1], req[REQ_NAME_MAX + 1];
    int ifd, rc;

    nul_name(name, id, id_len);
    rc = open_inbox(s, name, 0, &ifd, NULL);
    if (rc == 1 || rc == -ENOENT)
        return 0; /* no inbox, or no execution: the request is gone */
    if (rc != 0)
        return rc;
    /* Under the name of either form. */
    snprintf(req, sizeof(req), "%.*s" REQ_SUFFIX, EVS_REQUEST_ID_LEN, req_id);
    rc = IO(s)->unlinkat(CTX(s), ifd, req, 0);
    if (rc == -ENOENT) {
        snprintf(req, sizeof(req), "%.*s" OLD_SUFFIX, EVS_REQUEST_ID_LEN,
                 req_id);
        rc = IO(s)->unlinkat(CTX(s), ifd, req, 0);
    }
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
