/*
 * file_index.c: the listing index, a cache that lets listing read one
 * file instead of one snapshot per execution (FORMAT.md, "The listing
 * index").
 *
 * Every snapshot write appends the snapshot's header line to STORE/.index
 * together with the inode, ctime and size the snapshot file got. Listing
 * believes an entry only if one stat of "<id>/snapshot.json" still shows
 * that inode, ctime and size; otherwise it reads the snapshot itself. So
 * the index may lag, lose lines in a crash or be deleted outright: the
 * cost is speed, never a wrong listing. It is appended without fsync and
 * rewritten by listing when it has grown stale.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/* An index larger than this is not read (listing falls back), and is
 * rewritten. */
#define INDEX_MAX ((uint64_t)512 << 20)
/* Header lines longer than this are not indexed. */
#define HEADER_MAX 4096

#define PREFIX "{\"v\":1,\"kind\":\"index\",\"id\":\""

typedef struct ix_entry {
    const char *id;
    size_t id_len;
    const char *hdr; /* header line, without its newline */
    size_t hlen;
    uint64_t ino, size;
    int64_t ctime;
    /* Kept misses live in `extra`, which may move while it grows: they
     * are found by offset until the rewrite. */
    int in_extra;
    size_t id_off, hdr_off;
} ix_entry;

struct evs__index {
    const evs_allocator *alloc;
    char *file; /* the index as read */
    ix_entry *e;
    size_t n, cap;
    uint32_t *slot; /* open addressing: entry + 1, 0 empty */
    size_t nslots;
    size_t lines; /* entry lines in the file */
    /* The current entries, for a rewrite: hits point into `file`,
     * misses into `extra`. Lines are only made if a rewrite happens. */
    ix_entry *keep;
    size_t nkeep, ckeep;
    char *extra;
    size_t xlen, xcap;
    size_t misses; /* executions the index did not answer for */
    int failed;
};

/* Appends one entry line for (id, hdr, st) to buf. */
static int put_line(const evs_allocator *a, char **buf, size_t *len,
                    size_t *cap, const char *id, size_t id_len, const char *hdr,
                    size_t hlen, const evs_stat *st)
{
    char head[256];
    size_t need, body;
    int n;

    n = snprintf(head, sizeof(head),
                 "\",\"ino\":%" PRIu64 ",\"ctime\":%" PRId64
                 ",\"size\":%" PRIu64 ",\"header\":",
                 st->ino, st->ctime_ns, st->size);
    need = sizeof(PREFIX) - 1 + id_len + (size_t)n + hlen + 1 +
           EVS__CKSUM_TAIL_LEN;
    if (EVS__GROW(a, buf, cap, *len + need) != 0)
        return -ENOMEM;
    body = *len;
    memcpy(*buf + body, PREFIX, sizeof(PREFIX) - 1);
    body += sizeof(PREFIX) - 1;
    memcpy(*buf + body, id, id_len);
    body += id_len;
    memcpy(*buf + body, head, (size_t)n);
    body += (size_t)n;
    memcpy(*buf + body, hdr, hlen);
    body += hlen;
    (*buf)[body++] = ',';
    *len += evs__frame_seal(*buf + *len, body - *len);
    return 0;
}

void evs__index_note(evs_store *s, const char *id, const char *snap, size_t len,
                     const evs_stat *st)
{
    const char *nl = memchr(snap, '\n', len);
    char *line = NULL;
    size_t llen = 0, lcap = 0;
    struct iovec iov;
    int fd;

    if (!nl || nl - snap > HEADER_MAX || st->ino == 0)
        return;
    if (put_line(s->alloc, &line, &llen, &lcap, id, strlen(id), snap,
                 (size_t)(nl - snap), st) != 0)
        return;
    /* One write with O_APPEND: appenders in other processes cannot
     * interleave inside it, and a torn one fails its checksum. Opened as
     * every other file is: a FIFO in its place must not block the
     * snapshot write that called this, and a hard link must not carry
     * the line to a file elsewhere; either way the index is skipped, and
     * the next listing replaces it. */
    if (evs__open_regular(s, s->dirfd, EVS__INDEX_NAME,
                          O_WRONLY | O_APPEND | O_CREAT, 0600, &fd,
                          NULL) == 0) {
        iov.iov_base = line;
        iov.iov_len = llen;
        if (IO(s)->pwritev(CTX(s), fd, &iov, 1, 0) != 0)
            evs__log(s, EVS_LOG_DEBUG, "listing index: append failed");
        IO(s)->close(CTX(s), fd);
    }
    evs__free(s->alloc, line);
}

static uint64_t id_hash(const char *id, size_t len)
{
    uint64_t h = evs_checksum(id, len);
    return h ? h : 1;
}

static int slot_put(evs_store *s, evs__index *ix, size_t pos)
{
    ix_entry *e = &ix->e[pos];
    size_t mask, i;

    if ((ix->n + 1) * 2 > ix->nslots) {
        size_t nc = ix->nslots ? ix->nslots * 2 : 1024;
        uint32_t *ns = evs__calloc(s->alloc, nc * sizeof(*ns));
        if (!ns)
            return -ENOMEM;
        for (size_t k = 0; k < ix->nslots; k++) {
            ix_entry *o;
            if (!ix->slot[k])
                continue;
            o = &ix->e[ix->slot[k] - 1];
            for (i = id_hash(o->id, o->id_len) & (nc - 1); ns[i];
                 i = (i + 1) & (nc - 1))
                ;
            ns[i] = ix->slot[k];
        }
        evs__free(s->alloc, ix->slot);
        ix->slot = ns;
        ix->nslots = nc;
    }
    mask = ix->nslots - 1;
    for (i = id_hash(e->id, e->id_len) & mask; ix->slot[i];
         i = (i + 1) & mask) {
        ix_entry *o = &ix->e[ix->slot[i] - 1];
        if (o->id_len == e->id_len && memcmp(o->id, e->id, e->id_len) == 0) {
            *o = *e; /* a later line supersedes */
            ix->n--;
            return 0;
        }
    }
    ix->slot[i] = (uint32_t)pos + 1;
    return 0;
}

static ix_entry *slot_get(evs__index *ix, const char *id, size_t len)
{
    size_t mask, i;

    if (!ix->nslots)
        return NULL;
    mask = ix->nslots - 1;
    for (i = id_hash(id, len) & mask; ix->slot[i]; i = (i + 1) & mask) {
        ix_entry *e = &ix->e[ix->slot[i] - 1];
        if (e->id_len == len && memcmp(e->id, id, len) == 0)
            return e;
    }
    return NULL;
}

/* Reads `key` then a decimal number at *p. */
static int read_u64(const char **p, const char *end, const char *key,
                    uint64_t *v)
{
    size_t kl = strlen(key);

    if ((size_t)(end - *p) < kl || memcmp(*p, key, kl) != 0)
        return -1;
    *p += kl;
    return evs__take_u64(p, end, v);
}

/* Parses one verified line into an entry pointing into the line. */
static int parse_line(const char *line, size_t body, ix_entry *e)
{
    const char *p = line + sizeof(PREFIX) - 1, *end = line + body, *q;
    uint64_t ct;

    if (body < sizeof(PREFIX) || memcmp(line, PREFIX, sizeof(PREFIX) - 1))
        return -1;
    q = memchr(p, '"', (size_t)(end - p));
    if (!q || !evs_id_valid(p, (size_t)(q - p)))
        return -1;
    e->id = p;
    e->id_len = (size_t)(q - p);
    p = q + 1;
    if (read_u64(&p, end, ",\"ino\":", &e->ino) ||
        read_u64(&p, end, ",\"ctime\":", &ct) ||
        read_u64(&p, end, ",\"size\":", &e->size) ||
        (size_t)(end - p) < sizeof(",\"header\":") ||
        memcmp(p, ",\"header\":", sizeof(",\"header\":") - 1) != 0)
        return -1;
    p += sizeof(",\"header\":") - 1;
    e->ctime = (int64_t)ct;
    e->hdr = p;
    e->hlen = (size_t)(end - 1 - p); /* the body ends with a comma */
    return e->hlen > 0 && p[0] == '{' ? 0 : -1;
}

int evs__index_load(evs_store *s, evs__index **out)
{
    evs__index *ix;
    evs_stat st;
    size_t got;
    int fd, rc;

    ix = evs__calloc(s->alloc, sizeof(*ix));
    if (!ix)
        return -ENOMEM;
    ix->alloc = s->alloc;
    *out = ix;
    if (evs__open_regular(s, s->dirfd, EVS__INDEX_NAME, O_RDONLY, 0, &fd,
                          &st) != 0)
        return 0; /* none yet, or not a plain file: list without it */
    rc = 0;
    if (st.size > INDEX_MAX || st.size == 0)
        goto out;
    ix->file = evs__malloc(s->alloc, (size_t)st.size);
    if (!ix->file) {
        rc = -ENOMEM;
        goto out;
    }
    if (IO(s)->pread(CTX(s), fd, ix->file, (size_t)st.size, 0, &got) != 0)
        goto out;
    for (size_t off = 0; off < got;) {
        const char *line = ix->file + off;
        const char *nl = memchr(line, '\n', got - off);
        size_t len, body;
        ix_entry e;

        if (!nl)
            break;
        len = (size_t)(nl - line) + 1;
        off += len;
        /* Torn or damaged lines are skipped: the index is a cache and
         * the snapshot itself is read for any execution it misses. */
        memset(&e, 0, sizeof(e));
        if (evs__frame_check(line, len, &body) != 0 ||
            parse_line(line, body, &e) != 0)
            continue;
        ix->lines++;
        if ((rc = EVS__GROW(s->alloc, &ix->e, &ix->cap, ix->n + 1)) != 0)
            goto out;
        ix->e[ix->n] = e;
        if ((rc = slot_put(s, ix, ix->n)) != 0)
            goto out;
        ix->n++;
    }
out:
    IO(s)->close(CTX(s), fd);
    return rc;
}

int evs__index_lookup(evs_store *s, evs__index *ix, const char *id,
                      size_t id_len, const char **hdr, size_t *hlen)
{
    char path[EVS_ID_MAX + sizeof("/" EVS__SNAP_NAME)];
    ix_entry *e = slot_get(ix, id, id_len);
    evs_stat st;

    if (!e)
        return 0;
    memcpy(path, id, id_len);
    memcpy(path + id_len, "/" EVS__SNAP_NAME, sizeof("/" EVS__SNAP_NAME));
    /* A metadata-only check: nothing is opened through this path, and
     * any mismatch (another file, a link, a rewrite) means reading the
     * snapshot the safe way. */
    if (IO(s)->statat(CTX(s), s->dirfd, path, &st) != 0 || st.ino != e->ino ||
        st.ctime_ns != e->ctime || st.size != e->size || !S_ISREG(st.mode) ||
        st.nlink != 1)
        return 0;
    *hdr = e->hdr;
    *hlen = e->hlen;
    return 1;
}

/* Copies bytes into `extra`; returns their offset, or -1. Offsets (not
 * pointers) because `extra` may move while it grows. */
static long extra_put(evs__index *ix, const char *p, size_t n)
{
    long at;

    if (EVS__GROW(ix->alloc, &ix->extra, &ix->xcap, ix->xlen + n) != 0)
        return -1;
    memcpy(ix->extra + ix->xlen, p, n);
    at = (long)ix->xlen;
    ix->xlen += n;
    return at;
}

int evs__index_keep(evs__index *ix, const char *id, size_t id_len,
                    const char *hdr, size_t hlen, const evs_stat *st)
{
    ix_entry e;

    memset(&e, 0, sizeof(e));
    if (st) {
        /* The caller read the snapshot itself: keep copies. */
        long a, b;
        ix->misses++;
        if (ix->failed || hlen > HEADER_MAX || st->ino == 0)
            return 0;
        a = extra_put(ix, id, id_len);
        b = extra_put(ix, hdr, hlen);
        if (a < 0 || b < 0) {
            ix->failed = 1;
            return 0;
        }
        e.in_extra = 1;
        e.id_off = (size_t)a;
        e.hdr_off = (size_t)b;
        e.id_len = id_len;
        e.hlen = hlen;
        e.ino = st->ino;
        e.ctime = st->ctime_ns;
        e.size = st->size;
    } else {
        ix_entry *x = slot_get(ix, id, id_len);
        if (!x)
            return 0;
        e = *x;
    }
    if (EVS__GROW(ix->alloc, &ix->keep, &ix->ckeep, ix->nkeep + 1) != 0) {
        ix->failed = 1;
        return 0;
    }
    ix->keep[ix->nkeep++] = e;
    return 0;
}

void evs__index_finish(evs_store *s, evs__index *ix, size_t listed)
{
    char tmp[32], sfx[17];
    struct iovec iov;
    int fd;

    /* Rewrite when the index missed a fair share of the executions, or
     * holds many lines that later ones superseded; the rewrite holds one
     * line per execution. */
    int missed =
        ix->misses > 0 && (ix->misses >= 64 || ix->misses * 16 >= listed);

    char *out = NULL;
    size_t olen = 0, ocap = 0;

    if (ix->failed || (!missed && ix->lines <= 2 * listed + 1024))
        return;
    for (size_t i = 0; i < ix->nkeep; i++) {
        ix_entry e = ix->keep[i];
        evs_stat st;
        if (e.in_extra) {
            /* `extra` no longer moves. */
            e.id = ix->extra + e.id_off;
            e.hdr = ix->extra + e.hdr_off;
        }
        memset(&st, 0, sizeof(st));
        st.ino = e.ino;
        st.ctime_ns = e.ctime;
        st.size = e.size;
        if (put_line(ix->alloc, &out, &olen, &ocap, e.id, e.id_len, e.hdr,
                     e.hlen, &st) != 0) {
            evs__free(ix->alloc, out);
            return;
        }
    }
    if (evs__rand_suffix(sfx) != 0)
        goto out;
    snprintf(tmp, sizeof(tmp), EVS__TMP_PREFIX "%s", sfx);
    if (IO(s)->openat(CTX(s), s->dirfd, tmp,
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0600, &fd) != 0)
        goto out;
    iov.iov_base = out;
    iov.iov_len = olen;
    /* No fsync: a lost or torn index only costs speed. */
    if (IO(s)->pwritev(CTX(s), fd, &iov, 1, 0) != 0 ||
        IO(s)->renameat(CTX(s), s->dirfd, tmp, s->dirfd, EVS__INDEX_NAME, 0) !=
            0)
        IO(s)->unlinkat(CTX(s), s->dirfd, tmp, 0);
    IO(s)->close(CTX(s), fd);
out:
    evs__free(ix->alloc, out);
}

void evs__index_free(evs_store *s, evs__index *ix)
{
    if (!ix)
        return;
    evs__free(s->alloc, ix->file);
    evs__free(s->alloc, ix->e);
    evs__free(s->alloc, ix->slot);
    evs__free(s->alloc, ix->keep);
    evs__free(s->alloc, ix->extra);
    evs__free(s->alloc, ix);
}
