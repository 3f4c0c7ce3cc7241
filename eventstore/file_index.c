/*
 * file_index.c: the listing index, which lets a listing read one file
 * instead of one snapshot per execution (FORMAT.md §12, "The listing
 * index").
 *
 * Every change a listing shows appends one line, after the change is
 * made: a creation or a snapshot replacement the snapshot's header with
 * the inode, ctime and size the snapshot file got, a delete a "gone"
 * line. A listing believes the whole index without looking at a single
 * execution when it is trusted: written complete (its first line is a
 * base line, written by a listing that read every execution), undamaged,
 * and appended to since only by writers that are alive or left cleanly
 * (file_writers.c). Otherwise each entry is checked by one stat of its
 * snapshot, every other execution is read, and the index is rewritten
 * complete, durably, so the next listing can trust it. Appends and the
 * rewrite's final step take the index's lock, and the rewrite carries
 * over every line appended after it read the index.
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

#define KIND "{\"v\":1,\"kind\":\"index"
#define PREFIX KIND "\",\"id\":\""
#define BARE KIND "-bare\",\"id\":\""
#define GONE KIND "-gone\",\"id\":\""
#define BASE KIND "-base\","

/* What an entry says of its execution. */
enum { E_FULL, E_BARE, E_GONE };

typedef struct ix_entry {
    int kind; /* E_FULL, E_BARE or E_GONE */
    evs__index_row r; /* its id and header line (without its newline) */
    uint64_t ino, size;
    int64_t ctime;
    /* Kept misses live in `extra`, which may move while it grows: they
     * are found by offset until the rewrite. */
    int in_extra;
    size_t id_off, hdr_off;
} ix_entry;

struct evs__index {
    const evs_allocator *alloc;
    /* The file as read: one chunk per load, which never moves (entries
     * point into it). The file stays open, so that its inode number
     * cannot name another file while this index is kept. */
    char **chunk;
    size_t nchunk, cchunk;
    int fd;
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
    int based;       /* its first line is a base line: complete when made */
    int damaged;     /* a line failed its checksum or was not understood */
    uint64_t ino;    /* the file read (0: none), and its bytes read */
    uint64_t loaded;
};

/*
 * The string member `key` (as ,"key":) of a header line, when it is
 * plain: 1 with *v set to its bytes, 0 for null, -1 when it is anything
 * else (an escape inside, or not found). The header is canonical, so the
 * first ,"key": is the member itself (a quote inside a string is always
 * escaped).
 */
static int peek_str(const char *hdr, size_t hlen, const char *key, evs_span *v)
{
    size_t kl = strlen(key);
    const char *p = memmem(hdr, hlen, key, kl), *end = hdr + hlen, *q;

    *v = (evs_span){0};
    if (!p)
        return -1;
    p += kl;
    if ((size_t)(end - p) >= 4 && memcmp(p, "null", 4) == 0)
        return 0;
    if (p >= end || *p != '"' || !(q = memchr(p + 1, '"', (size_t)(end - p - 1))))
        return -1;
    if (memchr(p + 1, '\\', (size_t)(q - p - 1)))
        return -1;
    v->ptr = p + 1;
    v->len = (size_t)(q - p - 1);
    return 1;
}

/* Reads what a listing filters on from a header's bytes, once, when the
 * entry is loaded; r->plain stays 0 when the bytes do not say (the
 * header is then decoded). */
static void peek_row(evs__index_row *r)
{
    evs_span v;
    int c;

    if ((c = peek_str(r->hdr, r->hlen, ",\"created_at\":", &v)) < 0 ||
        (c == 1 && evs_time_parse(v.ptr, v.len, &r->created) != 0) ||
        peek_str(r->hdr, r->hlen, ",\"status\":", &r->status) < 0 ||
        peek_str(r->hdr, r->hlen, ",\"workflow_name\":", &r->workflow) < 0)
        return;
    evs__index_key_make(r->status, &r->status_k);
    evs__index_key_make(r->workflow, &r->workflow_k);
    r->plain = 1;
}

void evs__index_key_make(evs_span v, evs__index_key *k)
{
    memset(k, 0, sizeof(*k));
    k->len = v.len > UINT32_MAX ? UINT32_MAX : (uint32_t)v.len;
    if (!v.len)
        return;
    k->h = evs_checksum(v.ptr, v.len);
    memcpy(k->head, v.ptr, v.len < EVS__KEY_HEAD ? v.len : EVS__KEY_HEAD);
}

int evs__index_key_eq(const evs__index_key *a, evs_span abytes,
                      const evs__index_key *b, evs_span bbytes)
{
    if (a->len != b->len || a->h != b->h ||
        memcmp(a->head, b->head, EVS__KEY_HEAD) != 0)
        return 0;
    /* A string no longer than the head is equal now; a longer one whose
     * length, hash and head are is confirmed on its bytes. */
    return a->len <= EVS__KEY_HEAD || evs__span_eq(abytes, bbytes);
}

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

/* A line of `prefix`, then id (may be NULL) and a closing quote. */
static size_t small_line(char *buf, const char *prefix, const char *id)
{
    size_t n = strlen(prefix), il = id ? strlen(id) : 0;

    memcpy(buf, prefix, n);
    if (id) {
        memcpy(buf + n, id, il);
        n += il;
        memcpy(buf + n, "\",", 2);
        n += 2;
    }
    return evs__frame_seal(buf, n);
}

#define SMALL_MAX (sizeof(GONE) + EVS_ID_MAX + 2 + EVS__CKSUM_TAIL_LEN)

/*
 * Appends line[0..len) to the index, under its lock, to the file that
 * `.index` names once the lock is held (a rewrite may have replaced the
 * one opened). One write with O_APPEND. Opened as every other file is: a
 * FIFO in its place must not block the change that called this, and a
 * hard link must not carry the line elsewhere. When the line cannot be
 * appended, the handle gives up its writer's marker, which then reads as
 * a dead writer's: the index is not believed until a listing has rebuilt
 * it from the executions, which include this change.
 */
static void append_line(evs_store *s, const char *line, size_t len)
{
    struct iovec iov;
    evs_stat st, now;
    int fd, rc = -EAGAIN;

    for (int tries = 0; tries < 16 && rc == -EAGAIN; tries++) {
        rc = evs__open_regular(s, s->dirfd, EVS__INDEX_NAME,
                               O_WRONLY | O_APPEND | O_CREAT, 0600, &fd, &st);
        if (rc != 0)
            break;
        rc = IO(s)->lock(CTX(s), fd, EVS_LOCK_WAIT);
        if (rc == 0 &&
            (IO(s)->statat(CTX(s), s->dirfd, EVS__INDEX_NAME, &now) != 0 ||
             now.ino != st.ino))
            rc = -EAGAIN; /* replaced or removed meanwhile: again */
        if (rc == 0) {
            iov.iov_base = (void *)line;
            iov.iov_len = len;
            rc = IO(s)->pwritev(CTX(s), fd, &iov, 1, 0);
        }
        IO(s)->close(CTX(s), fd);
    }
    if (rc != 0) {
        evs__logf(s, EVS_LOG_WARN, EVS_LOG_FIELDS(.err = rc),
                  "listing index: a change could not be noted (%s); the "
                  "next listing rebuilds the index",
                  evs_strerror(rc));
        evs__writer_abandon(s);
    }
}

void evs__index_note(evs_store *s, const char *id, const char *snap, size_t len,
                     const evs_stat *st)
{
    const char *nl = memchr(snap, '\n', len);
    char *line = NULL;
    size_t llen = 0, lcap = 0;

    if (!nl || nl - snap > HEADER_MAX || st->ino == 0 ||
        put_line(s->alloc, &line, &llen, &lcap, id, strlen(id), snap,
                 (size_t)(nl - snap), st) != 0) {
        /* Not worth indexing, or no memory for it: the execution is at
         * least known to be there, and listing reads its snapshot. */
        evs__free(s->alloc, line);
        evs__index_note_bare(s, id);
        return;
    }
    append_line(s, line, llen);
    evs__free(s->alloc, line);
}

void evs__index_note_bare(evs_store *s, const char *id)
{
    char buf[SMALL_MAX];

    append_line(s, buf, small_line(buf, BARE, id));
}

void evs__index_note_gone(evs_store *s, const char *id)
{
    char buf[SMALL_MAX];

    append_line(s, buf, small_line(buf, GONE, id));
}

int evs__index_create(evs_store *s)
{
    char buf[SMALL_MAX];

    return evs__write_atomic_flags(s, s->dirfd, EVS__INDEX_NAME, buf,
                                   small_line(buf, BASE, NULL), NULL,
                                   EVS__WRITE_SYNC);
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
            for (i = id_hash(o->r.id, o->r.id_len) & (nc - 1); ns[i];
                 i = (i + 1) & (nc - 1))
                ;
            ns[i] = ix->slot[k];
        }
        evs__free(s->alloc, ix->slot);
        ix->slot = ns;
        ix->nslots = nc;
    }
    mask = ix->nslots - 1;
    for (i = id_hash(e->r.id, e->r.id_len) & mask; ix->slot[i];
         i = (i + 1) & mask) {
        ix_entry *o = &ix->e[ix->slot[i] - 1];
        if (o->r.id_len == e->r.id_len &&
            memcmp(o->r.id, e->r.id, e->r.id_len) == 0) {
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
        if (e->r.id_len == len && memcmp(e->r.id, id, len) == 0)
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

static int starts(const char *line, size_t body, const char *prefix)
{
    size_t n = strlen(prefix);

    return body >= n && memcmp(line, prefix, n) == 0;
}

/* Parses one verified line into an entry pointing into the line.
 * Returns 0, 1 for a base line, or -1 for a line not understood. */
static int parse_line(const char *line, size_t body, ix_entry *e)
{
    const char *p, *end = line + body, *q;
    uint64_t ct;

    if (body == sizeof(BASE) - 1 && starts(line, body, BASE))
        return 1;
    if (starts(line, body, PREFIX))
        e->kind = E_FULL, p = line + sizeof(PREFIX) - 1;
    else if (starts(line, body, BARE))
        e->kind = E_BARE, p = line + sizeof(BARE) - 1;
    else if (starts(line, body, GONE))
        e->kind = E_GONE, p = line + sizeof(GONE) - 1;
    else
        return -1;
    q = memchr(p, '"', (size_t)(end - p));
    if (!q || !evs_id_valid(p, (size_t)(q - p)))
        return -1;
    e->r.id = p;
    e->r.id_len = (size_t)(q - p);
    p = q + 1;
    if (e->kind != E_FULL)
        return p + 1 == end && *p == ',' ? 0 : -1;
    if (read_u64(&p, end, ",\"ino\":", &e->ino) ||
        read_u64(&p, end, ",\"ctime\":", &ct) ||
        read_u64(&p, end, ",\"size\":", &e->size) ||
        (size_t)(end - p) < sizeof(",\"header\":") ||
        memcmp(p, ",\"header\":", sizeof(",\"header\":") - 1) != 0)
        return -1;
    p += sizeof(",\"header\":") - 1;
    e->ctime = (int64_t)ct;
    e->r.hdr = p;
    e->r.hlen = (size_t)(end - 1 - p); /* the body ends with a comma */
    if (e->r.hlen == 0 || p[0] != '{')
        return -1;
    peek_row(&e->r);
    return 0;
}

/* Reads the bytes appended to the index since ix->loaded into a chunk
 * of their own, and takes in their whole lines. Returns 0 or -ENOMEM
 * (then the index must not be used). */
static int load_tail(evs_store *s, evs__index *ix, uint64_t size)
{
    char *buf;
    size_t got, want = (size_t)(size - ix->loaded);
    int rc;

    if (want == 0)
        return 0;
    if ((rc = EVS__GROW(s->alloc, &ix->chunk, &ix->cchunk, ix->nchunk + 1)) != 0)
        return rc;
    if (!(buf = evs__malloc(s->alloc, want)))
        return -ENOMEM;
    ix->chunk[ix->nchunk++] = buf;
    if (IO(s)->pread(CTX(s), ix->fd, buf, want, ix->loaded, &got) != 0) {
        ix->damaged = 1;
        return 0;
    }
    for (size_t off = 0; off < got;) {
        const char *line = buf + off;
        const char *nl = memchr(line, '\n', got - off);
        size_t len, body;
        ix_entry e;
        int kind;

        if (!nl)
            break; /* an append still being written: not there yet */
        len = (size_t)(nl - line) + 1;
        /* Damaged lines are skipped, and the index is then not trusted:
         * each entry is checked, and every execution it misses read. */
        memset(&e, 0, sizeof(e));
        kind = evs__frame_check(line, len, &body) == 0
                   ? parse_line(line, body, &e)
                   : -1;
        if (ix->loaded == 0 && kind == 1)
            ix->based = 1;
        if (kind < 0) {
            ix->damaged = 1;
        } else if (kind == 0) {
            /* (A base line further on: a rewrite carried a whole index
             * over.) */
            if ((rc = EVS__GROW(s->alloc, &ix->e, &ix->cap, ix->n + 1)) != 0)
                return rc;
            ix->e[ix->n] = e;
            if ((rc = slot_put(s, ix, ix->n)) != 0)
                return rc;
            ix->n++;
            ix->lines++;
        }
        off += len;
        ix->loaded += len;
    }
    return 0;
}

/* Whether an index kept from an earlier listing still reads the file
 * `.index` names, which has only grown since (appends): then *held is
 * that file's stat. */
static int still_current(evs_store *s, const evs__index *ix, evs_stat *held)
{
    evs_stat now;

    return ix->fd >= 0 && !ix->damaged &&
           IO(s)->statat(CTX(s), s->dirfd, EVS__INDEX_NAME, &now) == 0 &&
           IO(s)->fstat(CTX(s), ix->fd, held) == 0 && now.ino == held->ino &&
           held->ino == ix->ino && held->size >= ix->loaded &&
           held->size <= INDEX_MAX;
}

int evs__index_load(evs_store *s, evs__index **ixp)
{
    evs__index *ix = *ixp;
    evs_stat st;

    if (ix && still_current(s, ix, &st)) {
        /* Only what was appended since is read. What the last listing
         * noted for a rewrite is forgotten. */
        ix->nkeep = ix->xlen = ix->misses = 0;
        ix->failed = 0;
        return load_tail(s, ix, st.size);
    }
    evs__index_free(s, ix);
    *ixp = ix = evs__calloc(s->alloc, sizeof(*ix));
    if (!ix)
        return -ENOMEM;
    ix->alloc = s->alloc;
    ix->fd = -1;
    if (evs__open_regular(s, s->dirfd, EVS__INDEX_NAME, O_RDONLY, 0, &ix->fd,
                          &st) != 0) {
        ix->fd = -1;
        return 0; /* none yet, or not a plain file: list without it */
    }
    ix->ino = st.ino;
    if (st.size > INDEX_MAX || st.size == 0) {
        ix->damaged = st.size != 0;
        return 0;
    }
    return load_tail(s, ix, st.size);
}

int evs__index_lookup(evs_store *s, evs__index *ix, const char *id,
                      size_t id_len, const char **hdr, size_t *hlen)
{
    char path[EVS_ID_MAX + sizeof("/" EVS__SNAP_NAME)];
    ix_entry *e = slot_get(ix, id, id_len);
    evs_stat st;

    if (!e || e->kind != E_FULL)
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
    *hdr = e->r.hdr;
    *hlen = e->r.hlen;
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

static int keep_entry(evs__index *ix, const ix_entry *e)
{
    if (EVS__GROW(ix->alloc, &ix->keep, &ix->ckeep, ix->nkeep + 1) != 0) {
        ix->failed = 1;
        return 0;
    }
    ix->keep[ix->nkeep++] = *e;
    return 0;
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
        if (ix->failed)
            return 0;
        if (hlen > HEADER_MAX || st->ino == 0)
            return evs__index_keep_bare(ix, id, id_len);
        a = extra_put(ix, id, id_len);
        b = extra_put(ix, hdr, hlen);
        if (a < 0 || b < 0) {
            ix->failed = 1;
            return 0;
        }
        e.kind = E_FULL;
        e.in_extra = 1;
        e.id_off = (size_t)a;
        e.hdr_off = (size_t)b;
        e.r.id_len = id_len;
        e.r.hlen = hlen;
        e.ino = st->ino;
        e.ctime = st->ctime_ns;
        e.size = st->size;
    } else {
        ix_entry *x = slot_get(ix, id, id_len);
        if (!x)
            return 0;
        e = *x;
    }
    return keep_entry(ix, &e);
}

int evs__index_keep_bare(evs__index *ix, const char *id, size_t id_len)
{
    ix_entry e;
    long a;

    memset(&e, 0, sizeof(e));
    ix->misses++;
    if (ix->failed || (a = extra_put(ix, id, id_len)) < 0) {
        ix->failed = 1;
        return 0;
    }
    e.kind = E_BARE;
    e.in_extra = 1;
    e.id_off = (size_t)a;
    e.r.id_len = id_len;
    return keep_entry(ix, &e);
}

int evs__index_trusted(evs_store *s, evs__index *ix, evs__dead *dead)
{
    int rc;

    memset(dead, 0, sizeof(*dead));
    if (!ix->based || ix->damaged || ix->failed)
        return 0;
    if ((rc = evs__writers_census(s, dead)) != 0)
        return rc;
    return dead->count == 0;
}

int evs__index_each(evs__index *ix, evs__index_fn fn, void *arg)
{
    int rc;

    for (size_t i = 0; i < ix->n; i++) {
        const ix_entry *e = &ix->e[i];
        if (e->kind == E_GONE)
            continue;
        rc = fn(arg, &e->r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The lines of entries e[0..n), after a base line, into *out. */
static int make_file(evs__index *ix, const ix_entry *ents, size_t n, char **out,
                     size_t *olen, size_t *ocap)
{
    char small[SMALL_MAX], id[EVS_ID_MAX + 1];

    if (EVS__GROW(ix->alloc, out, ocap, SMALL_MAX) != 0)
        return -ENOMEM;
    *olen = small_line(*out, BASE, NULL);
    for (size_t i = 0; i < n; i++) {
        ix_entry e = ents[i];
        evs_stat st;
        size_t k;
        if (e.in_extra) {
            /* `extra` no longer moves. */
            e.r.id = ix->extra + e.id_off;
            e.r.hdr = ix->extra + e.hdr_off;
        }
        if (e.kind == E_GONE)
            continue;
        if (e.kind == E_BARE) {
            memcpy(id, e.r.id, e.r.id_len);
            id[e.r.id_len] = '\0';
            k = small_line(small, BARE, id);
            if (EVS__GROW(ix->alloc, out, ocap, *olen + k) != 0)
                return -ENOMEM;
            memcpy(*out + *olen, small, k);
            *olen += k;
            continue;
        }
        memset(&st, 0, sizeof(st));
        st.ino = e.ino;
        st.ctime_ns = e.ctime;
        st.size = e.size;
        if (put_line(ix->alloc, out, olen, ocap, e.r.id, e.r.id_len, e.r.hdr,
                     e.r.hlen,
                     &st) != 0)
            return -ENOMEM;
    }
    return 0;
}

/*
 * Replaces the index with out[0..olen) followed by whatever was appended
 * to it since it was read: under the index's lock, so no append falls
 * between, and only if `.index` still names the file that was read (one
 * removed or replaced meanwhile says a writer or another listing knew
 * better). Durable: a complete index is what lets the dead writers'
 * markers be removed.
 */
static int replace_file(evs_store *s, evs__index *ix, char **out, size_t *olen,
                        size_t *ocap)
{
    char tmp[32], sfx[17];
    struct iovec iov;
    evs_stat st, now;
    size_t got;
    int fd = -1, tfd = -1, rc;
    unsigned how = 0;

    /* There was none it could read. The new one goes in only if there
     * still is none (an append made one meanwhile: its line would be
     * lost), or in place of what is there if that is no index (a link,
     * a FIFO: nothing could append to it). */
    if (!ix->ino) {
        rc = IO(s)->statat(CTX(s), s->dirfd, EVS__INDEX_NAME, &now);
        if (rc == 0 && S_ISREG(now.mode) && now.nlink == 1)
            return -EAGAIN;
        if (rc != 0 && rc != -ENOENT)
            return rc;
        how = rc == -ENOENT ? RENAME_NOREPLACE : 0;
        goto write;
    }
    rc = evs__open_regular(s, s->dirfd, EVS__INDEX_NAME, O_RDWR, 0600, &fd,
                           &st);
    if (rc == 0)
        rc = IO(s)->lock(CTX(s), fd, EVS_LOCK_WAIT);
    if (rc == 0 &&
        (IO(s)->statat(CTX(s), s->dirfd, EVS__INDEX_NAME, &now) != 0 ||
         now.ino != st.ino || (ix->ino && st.ino != ix->ino)))
        rc = -EAGAIN;
    if (rc != 0)
        goto out;
    /* Under the lock the file holds only whole appends. */
    if (IO(s)->fstat(CTX(s), fd, &st) != 0 || st.size < ix->loaded ||
        st.size > INDEX_MAX) {
        rc = -EAGAIN;
        goto out;
    }
    if (st.size > ix->loaded) {
        size_t more = (size_t)(st.size - ix->loaded);
        if (EVS__GROW(ix->alloc, out, ocap, *olen + more) != 0) {
            rc = -ENOMEM;
            goto out;
        }
        rc = IO(s)->pread(CTX(s), fd, *out + *olen, more, ix->loaded, &got);
        if (rc != 0 || got != more) {
            rc = rc ? rc : -EAGAIN;
            goto out;
        }
        *olen += more;
    }
write:
    if ((rc = evs__rand_suffix(sfx)) != 0)
        goto out;
    snprintf(tmp, sizeof(tmp), EVS__TMP_PREFIX "%s", sfx);
    rc = IO(s)->openat(CTX(s), s->dirfd, tmp,
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600, &tfd);
    if (rc != 0)
        goto out;
    iov.iov_base = *out;
    iov.iov_len = *olen;
    rc = IO(s)->pwritev(CTX(s), tfd, &iov, 1, 0);
    if (rc == 0)
        rc = IO(s)->fsync(CTX(s), tfd);
    if (rc == 0)
        rc = IO(s)->renameat(CTX(s), s->dirfd, tmp, s->dirfd, EVS__INDEX_NAME,
                             how);
    if (rc != 0)
        IO(s)->unlinkat(CTX(s), s->dirfd, tmp, 0);
    else
        rc = IO(s)->fsync(CTX(s), s->dirfd);
out:
    if (tfd >= 0)
        IO(s)->close(CTX(s), tfd);
    if (fd >= 0)
        IO(s)->close(CTX(s), fd);
    return rc;
}

int evs__index_finish(evs_store *s, evs__index *ix, size_t listed, int rebuilt)
{
    /* Rewritten from every listing that had to read the directory (the
     * index was not trusted), so that the next one can trust it; from a
     * trusted index alone when it holds many lines later ones
     * superseded. */
    int bloated = ix->lines > 2 * listed + 1024;
    char *out = NULL;
    size_t olen = 0, ocap = 0;
    int rc;

    if (ix->failed)
        return 0;
    if (rebuilt) {
        rc = make_file(ix, ix->keep, ix->nkeep, &out, &olen, &ocap);
    } else {
        if (!bloated)
            return 0;
        rc = make_file(ix, ix->e, ix->n, &out, &olen, &ocap);
    }
    if (rc == 0)
        rc = replace_file(s, ix, &out, &olen, &ocap);
    evs__free(ix->alloc, out);
    return rc == 0;
}

void evs__index_free(evs_store *s, evs__index *ix)
{
    if (!ix)
        return;
    if (ix->fd >= 0)
        IO(s)->close(CTX(s), ix->fd);
    for (size_t i = 0; i < ix->nchunk; i++)
        evs__free(s->alloc, ix->chunk[i]);
    evs__free(s->alloc, ix->chunk);
    evs__free(s->alloc, ix->e);
    evs__free(s->alloc, ix->slot);
    evs__free(s->alloc, ix->keep);
    evs__free(s->alloc, ix->extra);
    evs__free(s->alloc, ix);
}
