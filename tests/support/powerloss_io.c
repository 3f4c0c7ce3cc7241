/*
 * powerloss_io.c: the simulated disk with a page cache for power-loss
 * tests (see powerloss_io.h): the recording I/O table, the crash model
 * that replays the operation log up to a crash point, and the images
 * built from it.
 *
 * The model is strict POSIX, stricter than ext4 or XFS: a file's data
 * and size are durable only after an fsync or fdatasync of that file,
 * and a directory entry (create, rename, unlink) only after an fsync of
 * that directory, independently of any other. Whatever a real file
 * system keeps after a power loss is one of the disks the model can
 * build, so the store must survive all of them.
 */
#include "powerloss_io.h"

#include "evstore/format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Identities reported by fstat/statat: far above any real inode number,
 * and change times far below any real one (nanoseconds in 1970). */
#define VINO_BASE ((uint64_t)1 << 40)
#define VCTIME(seq) ((int64_t)((seq) + 1) * 1000)

/* ------------------------------------------------------------------ */
/* Recording                                                          */
/* ------------------------------------------------------------------ */

typedef struct ent {
    char *name;
    uint32_t node;
} ent;

/* A node of the live shadow tree: what the real directory holds now. */
typedef struct lnode {
    int is_dir;
    ent *e;
    size_t n, cap;
    uint64_t vct; /* sequence of the last operation that changed it */
} lnode;

typedef struct fdslot {
    uint32_t node1; /* node + 1; 0: not a descriptor we follow */
    int append;
} fdslot;

struct pl_rec {
    evs_io io;
    const evs_io *base;
    char *root;
    char *alias, *alias_name; /* pl_rec_alias */
    pl_op *ops;
    size_t nops, opcap;
    char *data;
    size_t dlen, dcap;
    lnode *nodes;
    size_t nnodes, ncap;
    fdslot *fds;
    size_t nfds;
    int tear_w, tear_t;
    int failed;
    char err[256];
};

#define R(ctx) ((pl_rec *)(ctx))
#define BASE(r) ((r)->base)
#define BCTX(r) ((r)->base->ctx)

static void die_oom(void)
{
    fprintf(stderr, "powerloss_io: out of memory\n");
    abort();
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die_oom();
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        die_oom();
    return d;
}

static void fail(pl_rec *r, const char *what, const char *name)
{
    if (!r->failed)
        snprintf(r->err, sizeof(r->err), "%s (%s)", what, name ? name : "");
    r->failed = 1;
}

static uint32_t new_node(pl_rec *r, int is_dir)
{
    if (r->nnodes == r->ncap) {
        r->ncap = r->ncap ? r->ncap * 2 : 64;
        r->nodes = xrealloc(r->nodes, r->ncap * sizeof(*r->nodes));
    }
    memset(&r->nodes[r->nnodes], 0, sizeof(r->nodes[0]));
    r->nodes[r->nnodes].is_dir = is_dir;
    r->nodes[r->nnodes].vct = r->nops;
    return (uint32_t)r->nnodes++;
}

static ent *lookup(lnode *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->e[i].name, name) == 0)
            return &d->e[i];
    return NULL;
}

static void put_ent(lnode *d, const char *name, uint32_t node)
{
    ent *e = lookup(d, name);

    if (e) {
        e->node = node;
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->e = xrealloc(d->e, d->cap * sizeof(*d->e));
    }
    d->e[d->n].name = xstrdup(name);
    d->e[d->n].node = node;
    d->n++;
}

static void del_ent(lnode *d, const char *name)
{
    ent *e = lookup(d, name);

    if (!e)
        return;
    free(e->name);
    *e = d->e[--d->n];
}

static pl_op *push_op(pl_rec *r, int kind)
{
    pl_op *op;

    if (r->nops == r->opcap) {
        r->opcap = r->opcap ? r->opcap * 2 : 256;
        r->ops = xrealloc(r->ops, r->opcap * sizeof(*r->ops));
    }
    op = &r->ops[r->nops++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    return op;
}

/* The node a descriptor refers to, or -1. */
static long fd_node(pl_rec *r, int fd)
{
    if (fd < 0 || (size_t)fd >= r->nfds || r->fds[fd].node1 == 0)
        return -1;
    return (long)r->fds[fd].node1 - 1;
}

static void set_fd(pl_rec *r, int fd, long node, int append)
{
    if (fd < 0)
        return;
    if ((size_t)fd >= r->nfds) {
        size_t n = (size_t)fd + 64;
        r->fds = xrealloc(r->fds, n * sizeof(*r->fds));
        memset(r->fds + r->nfds, 0, (n - r->nfds) * sizeof(*r->fds));
        r->nfds = n;
    }
    r->fds[fd].node1 = node < 0 ? 0 : (uint32_t)node + 1;
    r->fds[fd].append = append;
}

/* The directory node for a dirfd argument, or -1 (not followed). */
static long dir_node(pl_rec *r, int dirfd, const char *name)
{
    long d = fd_node(r, dirfd);

    if (d < 0 || !r->nodes[d].is_dir)
        return -1;
    if (strchr(name, '/') || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0) {
        fail(r, "a name the model cannot follow", name);
        return -1;
    }
    return d;
}

/* dir_node, and the alias of pl_rec_alias: that path (from AT_FDCWD)
 * is followed as the entry alias_name of the root, which *name becomes. */
static long model_dir(pl_rec *r, int dirfd, const char **name)
{
    if (dirfd == AT_FDCWD && r->alias && strcmp(*name, r->alias) == 0) {
        *name = r->alias_name;
        return 0;
    }
    return dir_node(r, dirfd, *name);
}

static int r_openat(void *ctx, int dirfd, const char *name, int flags,
                    mode_t mode, int *fd)
{
    pl_rec *r = R(ctx);
    long d, node;
    const char *real = name;
    ent *e;
    int rc;

    if (dirfd == AT_FDCWD && strcmp(name, r->root) == 0) {
        rc = BASE(r)->openat(BCTX(r), dirfd, name, flags, mode, fd);
        if (rc == 0)
            set_fd(r, *fd, 0, 0);
        return rc;
    }
    d = model_dir(r, dirfd, &name);
    rc = BASE(r)->openat(BCTX(r), dirfd, real, flags, mode, fd);
    if (rc != 0)
        return rc;
    if (d < 0) {
        if (fd_node(r, dirfd) >= 0 || dirfd != AT_FDCWD)
            fail(r, "open through a directory the model does not know", name);
        set_fd(r, *fd, -1, 0);
        return 0;
    }
    e = lookup(&r->nodes[d], name);
    if (e) {
        node = e->node;
        if ((flags & O_TRUNC) && !r->nodes[node].is_dir) {
            pl_op *op = push_op(r, PL_TRUNC);
            op->node = (uint32_t)node;
            op->len = 0;
            r->nodes[node].vct = r->nops - 1;
        }
    } else if (flags & O_CREAT) {
        pl_op *op;
        node = new_node(r, 0);
        op = push_op(r, PL_CREATE);
        op->dir = (uint32_t)d;
        op->node = (uint32_t)node;
        op->name = xstrdup(name);
        r->nodes[node].vct = r->nops - 1;
        put_ent(&r->nodes[d], name, (uint32_t)node);
    } else {
        fail(r, "opened a name the shadow tree does not hold", name);
        node = -1;
    }
    set_fd(r, *fd, node, (flags & O_APPEND) != 0);
    return 0;
}

static int r_close(void *ctx, int fd)
{
    pl_rec *r = R(ctx);

    set_fd(r, fd, -1, 0);
    return BASE(r)->close(BCTX(r), fd);
}

static int r_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off,
                   size_t *got)
{
    return BASE(R(ctx))->pread(BCTX(R(ctx)), fd, buf, len, off, got);
}

static void log_write(pl_rec *r, long node, uint64_t off,
                      const struct iovec *iov, int cnt, size_t limit)
{
    size_t total = 0;
    pl_op *op;

    for (int i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    if (total > limit)
        total = limit;
    if (r->dlen + total > r->dcap) {
        r->dcap = r->dcap ? r->dcap : 65536;
        while (r->dlen + total > r->dcap)
            r->dcap *= 2;
        r->data = xrealloc(r->data, r->dcap);
    }
    op = push_op(r, PL_WRITE);
    op->node = (uint32_t)node;
    op->off = off;
    op->len = total;
    op->data = r->dlen;
    for (int i = 0; i < cnt && total; i++) {
        size_t n = iov[i].iov_len < total ? iov[i].iov_len : total;
        if (n)
            memcpy(r->data + r->dlen, iov[i].iov_base, n);
        r->dlen += n;
        total -= n;
    }
    r->nodes[node].vct = r->nops - 1;
}

static int r_pwritev(void *ctx, int fd, const struct iovec *iov, int cnt,
                     uint64_t off)
{
    pl_rec *r = R(ctx);
    long node = fd_node(r, fd);
    size_t total = 0;
    int rc;

    if (node < 0) {
        fail(r, "write to a descriptor the model does not know", NULL);
        return BASE(r)->pwritev(BCTX(r), fd, iov, cnt, off);
    }
    if (r->fds[fd].append) {
        /* O_APPEND: Linux writes at the end whatever the offset. */
        evs_stat st;
        if ((rc = BASE(r)->fstat(BCTX(r), fd, &st)) != 0)
            return rc;
        off = st.size;
    }
    for (int i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    if (r->tear_w > 0) {
        /* A torn write: the first half reaches the file. */
        size_t half = total / 2, done = 0;
        r->tear_w--;
        for (int i = 0; i < cnt && done < half; i++) {
            struct iovec one = iov[i];
            if (one.iov_len > half - done)
                one.iov_len = half - done;
            if (BASE(r)->pwritev(BCTX(r), fd, &one, 1, off + done) != 0)
                break;
            done += one.iov_len;
        }
        log_write(r, node, off, iov, cnt, done);
        return -EIO;
    }
    rc = BASE(r)->pwritev(BCTX(r), fd, iov, cnt, off);
    if (rc == 0)
        log_write(r, node, off, iov, cnt, total);
    else
        fail(r, "a real write failed; the model does not know its bytes", NULL);
    return rc;
}

static int r_sync(pl_rec *r, int fd)
{
    long node = fd_node(r, fd);
    pl_op *op;

    if (node < 0) {
        fail(r, "sync of a descriptor the model does not know", NULL);
        return 0;
    }
    /* Recorded, not performed: the model decides what is durable. */
    op = push_op(r, PL_SYNC);
    op->node = (uint32_t)node;
    return 0;
}

static int r_fdatasync(void *ctx, int fd)
{
    return r_sync(R(ctx), fd);
}

static int r_fsync(void *ctx, int fd)
{
    return r_sync(R(ctx), fd);
}

static int r_ftruncate(void *ctx, int fd, uint64_t len)
{
    pl_rec *r = R(ctx);
    long node = fd_node(r, fd);
    pl_op *op;
    int rc;

    if (r->tear_t > 0) {
        r->tear_t--;
        return -EIO;
    }
    rc = BASE(r)->ftruncate(BCTX(r), fd, len);
    if (rc != 0)
        return rc;
    if (node < 0) {
        fail(r, "truncate of a descriptor the model does not know", NULL);
        return 0;
    }
    op = push_op(r, PL_TRUNC);
    op->node = (uint32_t)node;
    op->len = len;
    r->nodes[node].vct = r->nops - 1;
    return 0;
}

/* Reports the identity and change time the node has in the model. */
static void virt_stat(pl_rec *r, long node, evs_stat *st)
{
    if (node < 0)
        return;
    st->ino = VINO_BASE + (uint64_t)node;
    st->ctime_ns = VCTIME(r->nodes[node].vct);
}

static int r_fstat(void *ctx, int fd, evs_stat *st)
{
    pl_rec *r = R(ctx);
    int rc = BASE(r)->fstat(BCTX(r), fd, st);

    if (rc == 0)
        virt_stat(r, fd_node(r, fd), st);
    return rc;
}

static int r_statat(void *ctx, int dirfd, const char *path, evs_stat *st)
{
    pl_rec *r = R(ctx);
    long node = fd_node(r, dirfd);
    char comp[256];
    const char *p = path;
    int rc = BASE(r)->statat(BCTX(r), dirfd, path, st);

    if (rc != 0)
        return rc;
    /* Follow "a/b" through the shadow tree. */
    while (node >= 0 && *p) {
        const char *sl = strchr(p, '/');
        size_t n = sl ? (size_t)(sl - p) : strlen(p);
        ent *e;
        if (n >= sizeof(comp) || !r->nodes[node].is_dir) {
            node = -1;
            break;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        e = lookup(&r->nodes[node], comp);
        node = e ? (long)e->node : -1;
        p += n + (sl ? 1 : 0);
    }
    virt_stat(r, node, st);
    return 0;
}

static int r_mkdirat(void *ctx, int dirfd, const char *name, mode_t mode)
{
    pl_rec *r = R(ctx);
    long d;
    uint32_t node;
    pl_op *op;
    const char *real = name;
    int rc;

    if (dirfd == AT_FDCWD && strcmp(name, r->root) == 0)
        return BASE(r)->mkdirat(BCTX(r), dirfd, name, mode);
    d = model_dir(r, dirfd, &name);
    rc = BASE(r)->mkdirat(BCTX(r), dirfd, real, mode);
    if (rc != 0)
        return rc;
    if (d < 0) {
        fail(r, "mkdir in a directory the model does not know", name);
        return 0;
    }
    node = new_node(r, 1);
    op = push_op(r, PL_MKDIR);
    op->dir = (uint32_t)d;
    op->node = node;
    op->name = xstrdup(name);
    r->nodes[node].vct = r->nops - 1;
    put_ent(&r->nodes[d], name, node);
    return 0;
}

static int r_renameat(void *ctx, int od, const char *on, int nd, const char *nn,
                      unsigned flags)
{
    pl_rec *r = R(ctx);
    long d1 = dir_node(r, od, on), d2 = dir_node(r, nd, nn);
    ent *e;
    uint32_t node;
    pl_op *op;
    int rc;

    rc = BASE(r)->renameat(BCTX(r), od, on, nd, nn, flags);
    if (rc != 0)
        return rc;
    if (d1 < 0 || d2 < 0 || d1 != d2) {
        fail(r,
             "rename the model does not follow (unknown directory or "
             "between directories)",
             on);
        return 0;
    }
    e = lookup(&r->nodes[d1], on);
    if (!e) {
        fail(r, "renamed a name the shadow tree does not hold", on);
        return 0;
    }
    node = e->node;
    del_ent(&r->nodes[d1], on);
    put_ent(&r->nodes[d2], nn, node);
    op = push_op(r, PL_RENAME);
    op->dir = (uint32_t)d1;
    op->dir2 = (uint32_t)d2;
    op->node = node;
    op->name = xstrdup(on);
    op->name2 = xstrdup(nn);
    r->nodes[node].vct = r->nops - 1;
    return 0;
}

static int r_unlinkat(void *ctx, int dirfd, const char *name, int flags)
{
    pl_rec *r = R(ctx);
    long d = dir_node(r, dirfd, name);
    ent *e;
    pl_op *op;
    int rc;

    rc = BASE(r)->unlinkat(BCTX(r), dirfd, name, flags);
    if (rc != 0)
        return rc;
    if (d < 0 || !(e = lookup(&r->nodes[d], name))) {
        fail(r, "unlinked a name the model does not know", name);
        return 0;
    }
    op = push_op(r, PL_UNLINK);
    op->dir = (uint32_t)d;
    op->node = e->node;
    op->name = xstrdup(name);
    del_ent(&r->nodes[d], name);
    return 0;
}

static int r_lock(void *ctx, int fd, int op)
{
    return BASE(R(ctx))->lock(BCTX(R(ctx)), fd, op);
}

static int r_listdir(void *ctx, int dirfd, evs_dirent_fn fn, void *arg)
{
    return BASE(R(ctx))->listdir(BCTX(R(ctx)), dirfd, fn, arg);
}

void pl_rec_alias(pl_rec *r, const char *path, const char *name)
{
    r->alias = xstrdup(path);
    r->alias_name = xstrdup(name);
}

pl_rec *pl_rec_new(const char *root)
{
    pl_rec *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->base = evs_io_posix();
    r->root = xstrdup(root);
    new_node(r, 1); /* node 0: the store's directory */
    r->io.ctx = r;
    r->io.openat = r_openat;
    r->io.close = r_close;
    r->io.pread = r_pread;
    r->io.pwritev = r_pwritev;
    r->io.fdatasync = r_fdatasync;
    r->io.fsync = r_fsync;
    r->io.ftruncate = r_ftruncate;
    r->io.fstat = r_fstat;
    r->io.mkdirat = r_mkdirat;
    r->io.renameat = r_renameat;
    r->io.unlinkat = r_unlinkat;
    r->io.lock = r_lock;
    r->io.listdir = r_listdir;
    r->io.statat = r_statat;
    return r;
}

void pl_rec_free(pl_rec *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nops; i++) {
        free((char *)r->ops[i].name);
        free((char *)r->ops[i].name2);
    }
    for (size_t i = 0; i < r->nnodes; i++) {
        for (size_t j = 0; j < r->nodes[i].n; j++)
            free(r->nodes[i].e[j].name);
        free(r->nodes[i].e);
    }
    free(r->ops);
    free(r->data);
    free(r->nodes);
    free(r->fds);
    free(r->root);
    free(r->alias);
    free(r->alias_name);
    free(r);
}

const evs_io *pl_rec_io(pl_rec *r)
{
    return &r->io;
}

size_t pl_rec_nops(const pl_rec *r)
{
    return r->nops;
}

const pl_op *pl_rec_op(const pl_rec *r, size_t i)
{
    return i < r->nops ? &r->ops[i] : NULL;
}

const char *pl_rec_bytes(const pl_rec *r, const pl_op *op)
{
    return r->data + op->data;
}

void pl_rec_tear(pl_rec *r, int n_writes, int m_truncates)
{
    r->tear_w = n_writes;
    r->tear_t = m_truncates;
}

int pl_rec_failed(const pl_rec *r)
{
    return r->failed;
}

const char *pl_rec_error(const pl_rec *r)
{
    return r->failed ? r->err : "";
}

/* ------------------------------------------------------------------ */
/* The crash model                                                    */
/* ------------------------------------------------------------------ */

typedef struct cent {
    const char *name; /* borrowed from the operation log */
    uint32_t node;
} cent;

typedef struct cnode {
    int is_dir;
    char *buf; /* file: durable bytes */
    size_t len, cap;
    cent *e; /* directory: durable entries */
    size_t n, ecap;
    uint64_t vct1; /* 1 + sequence of the last durable change; 0 none */
} cnode;

struct pl_crash {
    const pl_rec *r;
    cnode *nodes;
    size_t nnodes;
    size_t *pend; /* indices of pending operations, in order */
    size_t npend;
};

static void buf_apply(char **buf, size_t *len, size_t *cap, const pl_rec *r,
                      const pl_op *op)
{
    uint64_t end = op->kind == PL_WRITE ? op->off + op->len : op->len;

    if (end > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < end)
            nc *= 2;
        *buf = xrealloc(*buf, nc);
        *cap = nc;
    }
    if (end > *len)
        memset(*buf + *len, 0, (size_t)end - *len);
    if (op->kind == PL_WRITE) {
        if (op->len)
            memcpy(*buf + op->off, r->data + op->data, (size_t)op->len);
        if (end > *len)
            *len = (size_t)end;
    } else {
        *len = (size_t)end;
    }
}

static cent *c_lookup(cent *e, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0)
            return &e[i];
    return NULL;
}

static void c_put(cent **e, size_t *n, size_t *cap, const char *name,
                  uint32_t node)
{
    cent *x = c_lookup(*e, *n, name);

    if (x) {
        x->node = node;
        return;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *e = xrealloc(*e, *cap * sizeof(**e));
    }
    (*e)[*n].name = name;
    (*e)[*n].node = node;
    (*n)++;
}

static void c_del(cent *e, size_t *n, const char *name)
{
    cent *x = c_lookup(e, *n, name);

    if (x)
        *x = e[--*n];
}

/* Applies a directory operation to an entry list. Returns the node whose
 * change time it changes, or -1 when it changed nothing (a rename whose
 * source this disk does not hold). */
static long dir_apply(cent **e, size_t *n, size_t *cap, const pl_op *op)
{
    cent *x;
    uint32_t node;

    switch (op->kind) {
    case PL_CREATE:
    case PL_MKDIR: c_put(e, n, cap, op->name, op->node); return op->node;
    case PL_RENAME:
        if (!(x = c_lookup(*e, *n, op->name)))
            return -1;
        node = x->node;
        c_del(*e, n, op->name);
        c_put(e, n, cap, op->name2, node);
        return node;
    case PL_UNLINK: c_del(*e, n, op->name); return -1;
    }
    return -1;
}

static int is_data(int kind)
{
    return kind == PL_WRITE || kind == PL_TRUNC;
}

/* The directory a metadata operation belongs to. */
static uint32_t op_dir(const pl_op *op)
{
    return op->dir;
}

static void bump(uint64_t *vct1, uint64_t seq)
{
    if (seq + 1 > *vct1)
        *vct1 = seq + 1;
}

pl_crash *pl_crash_at(const pl_rec *r, size_t k)
{
    pl_crash *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    if (k > r->nops)
        k = r->nops;
    c->r = r;
    c->nnodes = r->nnodes;
    c->nodes = calloc(c->nnodes ? c->nnodes : 1, sizeof(*c->nodes));
    c->pend = malloc((k ? k : 1) * sizeof(*c->pend));
    if (!c->nodes || !c->pend) {
        pl_crash_free(c);
        return NULL;
    }
    for (size_t i = 0; i < c->nnodes; i++)
        c->nodes[i].is_dir = r->nodes[i].is_dir;
    for (size_t i = 0; i < k; i++) {
        const pl_op *op = &r->ops[i];
        cnode *nd;
        size_t w = 0;

        if (op->kind != PL_SYNC) {
            c->pend[c->npend++] = i;
            continue;
        }
        /* A sync makes durable what is pending for that one node: data
         * for a file, entries for a directory. */
        nd = &c->nodes[op->node];
        for (size_t j = 0; j < c->npend; j++) {
            const pl_op *p = &r->ops[c->pend[j]];
            if (!nd->is_dir && is_data(p->kind) && p->node == op->node) {
                buf_apply(&nd->buf, &nd->len, &nd->cap, r, p);
                bump(&nd->vct1, c->pend[j]);
            } else if (nd->is_dir && !is_data(p->kind) &&
                       op_dir(p) == op->node) {
                long ch = dir_apply(&nd->e, &nd->n, &nd->ecap, p);
                if (ch >= 0)
                    bump(&c->nodes[ch].vct1, c->pend[j]);
            } else {
                c->pend[w++] = c->pend[j];
            }
        }
        c->npend = w;
    }
    return c;
}

void pl_crash_free(pl_crash *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nnodes; i++) {
        free(c->nodes[i].buf);
        free(c->nodes[i].e);
    }
    free(c->nodes);
    free(c->pend);
    free(c);
}

size_t pl_crash_npending(const pl_crash *c)
{
    return c->npend;
}

const pl_op *pl_crash_pending_op(const pl_crash *c, size_t i)
{
    return i < c->npend ? &c->r->ops[c->pend[i]] : NULL;
}

/* ------------------------------------------------------------------ */
/* Images                                                             */
/* ------------------------------------------------------------------ */

typedef struct ifile {
    char *path;
    int is_dir;
    uint32_t node;
    long link_to; /* index of the first entry of the same file, or -1 */
    char *buf;
    size_t len;
    uint64_t vct1;
    uint64_t real_ino;
    int64_t real_ctime;
} ifile;

struct pl_image {
    evs_io io;
    const evs_io *base;
    size_t snapshot_opens;
    ifile *f;
    size_t n, cap;
    uint64_t digest[2];
};

/* splitmix64: small, seedable, good enough to pick blocks. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill_garbage(char *p, size_t n, uint64_t *rs)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = next_rand(rs);
        /* Some newlines, so that the garbage is cut into "lines" a
         * reader has to reject one by one. */
        p[i] = (v % 37 == 0) ? '\n' : (char)(v >> 8);
    }
}

/* Builds the contents of one file from its old and new versions. */
static void make_contents(const pl_choice *ch, const char *old, size_t olen,
                          const char *nw, size_t nlen, uint64_t *rs, char **out,
                          size_t *olen_out)
{
    size_t max = olen > nlen ? olen : nlen, size = nlen, extra = 0;
    char *b;

    switch (ch->contents) {
    case PL_TAIL_ZEROS: extra = (nlen / 4096 + 1) * 4096 - nlen; break;
    case PL_TAIL_GARBAGE: extra = 1 + (size_t)(next_rand(rs) % 3000); break;
    }
    b = xrealloc(NULL, max + extra);
    memset(b, 0, max + extra);
    switch (ch->contents) {
    case PL_BLOCKS: {
        size_t bs = ch->block ? ch->block : 512;
        size_t lo = olen < nlen ? olen : nlen, last_new = lo;
        for (size_t at = 0; at < max; at += bs) {
            size_t end = at + bs < max ? at + bs : max;
            int use_new = (int)(next_rand(rs) & 1);
            const char *src = use_new ? nw : old;
            size_t slen = use_new ? nlen : olen;
            if (at < slen)
                memcpy(b + at, src + at, (end < slen ? end : slen) - at);
            if (use_new && end > lo && at < nlen)
                last_new = end < nlen ? end : nlen;
        }
        /* The size is metadata, written apart from the data: the old
         * one, the new one, or just enough for the new blocks that
         * made it. It never cuts into what both versions hold. */
        switch (next_rand(rs) % 3) {
        case 0: size = olen; break;
        case 1: size = nlen; break;
        default: size = last_new > olen ? last_new : olen;
        }
        break;
    }
    case PL_FILL_ZEROS:
    case PL_FILL_GARBAGE:
        if (olen && nlen)
            memcpy(b, old, olen < nlen ? olen : nlen);
        if (ch->contents == PL_FILL_GARBAGE && nlen > olen)
            fill_garbage(b + olen, nlen - olen, rs);
        size = nlen;
        break;
    case PL_TAIL_GARBAGE:
        memcpy(b, nw, nlen);
        fill_garbage(b + nlen, extra, rs);
        size = nlen + extra;
        break;
    default: /* PL_WHOLE, PL_TAIL_ZEROS */
        memcpy(b, nw, nlen);
        size = nlen + extra;
    }
    *out = b;
    *olen_out = size;
}

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= s[i];
        *h *= 0x100000001b3ULL;
    }
}

static void add_file(pl_image *im, const char *path, int is_dir, uint32_t node)
{
    ifile *f;

    if (im->n == im->cap) {
        im->cap = im->cap ? im->cap * 2 : 32;
        im->f = xrealloc(im->f, im->cap * sizeof(*im->f));
    }
    f = &im->f[im->n++];
    memset(f, 0, sizeof(*f));
    f->path = xstrdup(path);
    f->is_dir = is_dir;
    f->node = node;
    f->link_to = -1;
}

static int cmp_cent(const void *a, const void *b)
{
    return strcmp(((const cent *)a)->name, ((const cent *)b)->name);
}

/* Working state of one node while an image is made. */
typedef struct wnode {
    cent *e;
    size_t n, cap;
    char *nbuf; /* durable + included writes */
    size_t nlen, ncap;
    int touched; /* an included write or truncate */
    uint64_t vct1;
    int visited;
    long first; /* image entry of a file already placed */
} wnode;

static void walk(pl_image *im, const pl_crash *c, wnode *w, uint32_t dir,
                 const char *prefix, int depth)
{
    wnode *d = &w[dir];
    char path[4096];

    if (depth > 16 || d->visited)
        return; /* a loop cannot come from one-directory renames */
    d->visited = 1;
    if (d->n > 1)
        qsort(d->e, d->n, sizeof(*d->e), cmp_cent);
    for (size_t i = 0; i < d->n; i++) {
        uint32_t node = d->e[i].node;
        int n = snprintf(path, sizeof(path), "%s%s%s", prefix,
                         *prefix ? "/" : "", d->e[i].name);
        if (n < 0 || (size_t)n >= sizeof(path))
            continue; /* deeper than any store makes */
        if (c->nodes[node].is_dir) {
            if (w[node].visited)
                continue;
            add_file(im, path, 1, node);
            walk(im, c, w, node, path, depth + 1);
        } else {
            add_file(im, path, 0, node);
            if (w[node].first >= 0)
                im->f[im->n - 1].link_to = w[node].first;
            else
                w[node].first = (long)im->n - 1;
        }
    }
}

static int i_openat(void *ctx, int dirfd, const char *name, int flags,
                    mode_t mode, int *fd);
static int i_fsync(void *ctx, int fd);
static int i_fstat(void *ctx, int fd, evs_stat *st);
static int i_statat(void *ctx, int dirfd, const char *path, evs_stat *st);

int pl_image_make(const pl_crash *c, const pl_choice *ch, pl_image **out)
{
    const pl_rec *r = c->r;
    pl_image *im = calloc(1, sizeof(*im));
    wnode *w = calloc(c->nnodes ? c->nnodes : 1, sizeof(*w));
    uint64_t rs = ch->seed ^ 0x5eed5eed5eedULL, h1 = 0xcbf29ce484222325ULL;
    uint64_t h2 = 0;

    if (!im || !w) {
        free(im);
        free(w);
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        const cnode *cn = &c->nodes[i];
        w[i].first = -1;
        w[i].vct1 = cn->vct1;
        if (cn->is_dir) {
            w[i].cap = cn->n + 4;
            w[i].e = xrealloc(NULL, w[i].cap * sizeof(cent));
            if (cn->n)
                memcpy(w[i].e, cn->e, cn->n * sizeof(cent));
            w[i].n = cn->n;
        } else {
            w[i].ncap = cn->len + 1;
            w[i].nbuf = xrealloc(NULL, w[i].ncap);
            if (cn->len)
                memcpy(w[i].nbuf, cn->buf, cn->len);
            w[i].nlen = cn->len;
        }
    }
    /* The pending operations that reached the disk, in order. */
    for (size_t i = 0; i < c->npend; i++) {
        const pl_op *op = &r->ops[c->pend[i]];
        if (ch->include && !ch->include[i])
            continue;
        if (is_data(op->kind)) {
            wnode *f = &w[op->node];
            buf_apply(&f->nbuf, &f->nlen, &f->ncap, r, op);
            f->touched = 1;
            bump(&f->vct1, c->pend[i]);
        } else {
            wnode *d = &w[op_dir(op)];
            long chg = dir_apply(&d->e, &d->n, &d->cap, op);
            if (chg >= 0)
                bump(&w[chg].vct1, c->pend[i]);
        }
    }
    walk(im, c, w, 0, "", 0);
    for (size_t i = 0; i < im->n; i++) {
        ifile *f = &im->f[i];
        const cnode *cn = &c->nodes[f->node];
        wnode *wn = &w[f->node];
        f->vct1 = wn->vct1;
        if (!f->is_dir && f->link_to < 0) {
            if (wn->touched)
                make_contents(ch, cn->buf, cn->len, wn->nbuf, wn->nlen, &rs,
                              &f->buf, &f->len);
            else {
                f->buf = xrealloc(NULL, cn->len + 1);
                if (cn->len)
                    memcpy(f->buf, cn->buf, cn->len);
                f->len = cn->len;
            }
        }
        fnv(&h1, f->path, strlen(f->path) + 1);
        fnv(&h1, &f->is_dir, sizeof(f->is_dir));
        fnv(&h1, &f->node, sizeof(f->node));
        fnv(&h1, &f->vct1, sizeof(f->vct1));
        fnv(&h1, &f->link_to, sizeof(f->link_to));
        fnv(&h1, &f->len, sizeof(f->len));
        h2 = (h2 ^ evs_checksum(f->buf ? f->buf : "", f->len)) *
                 0x9e3779b97f4a7c15ULL +
             i;
    }
    im->digest[0] = h1;
    im->digest[1] = h2;
    for (size_t i = 0; i < c->nnodes; i++) {
        free(w[i].e);
        free(w[i].nbuf);
    }
    free(w);
    im->base = evs_io_posix();
    im->io = *im->base;
    im->io.ctx = im;
    im->io.openat = i_openat;
    im->io.fsync = i_fsync;
    im->io.fdatasync = i_fsync;
    im->io.fstat = i_fstat;
    im->io.statat = i_statat;
    *out = im;
    return 0;
}

void pl_image_free(pl_image *im)
{
    if (!im)
        return;
    for (size_t i = 0; i < im->n; i++) {
        free(im->f[i].path);
        free(im->f[i].buf);
    }
    free(im->f);
    free(im);
}

void pl_image_digest(const pl_image *im, uint64_t out[2])
{
    out[0] = im->digest[0];
    out[1] = im->digest[1];
}

size_t pl_image_count(const pl_image *im)
{
    return im->n;
}

const char *pl_image_file(const pl_image *im, const char *path, size_t *len)
{
    for (size_t i = 0; i < im->n; i++) {
        const ifile *f = &im->f[i];
        if (f->is_dir || strcmp(f->path, path) != 0)
            continue;
        if (f->link_to >= 0)
            f = &im->f[f->link_to];
        *len = f->len;
        return f->buf ? f->buf : "";
    }
    return NULL;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int pl_image_write(pl_image *im, const char *dir)
{
    char path[4608];
    struct stat sb;
    int rc = 0;

    for (size_t i = 0; i < im->n && rc == 0; i++) {
        ifile *f = &im->f[i];
        snprintf(path, sizeof(path), "%s/%s", dir, f->path);
        if (f->is_dir) {
            if (mkdir(path, 0700) != 0)
                rc = -errno;
            continue;
        }
        if (f->link_to >= 0) {
            char first[4608];
            snprintf(first, sizeof(first), "%s/%s", dir,
                     im->f[f->link_to].path);
            if (link(first, path) != 0)
                rc = -errno;
            continue;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = -errno;
            break;
        }
        rc = write_all(fd, f->buf, f->len);
        if (rc == 0 && fstat(fd, &sb) == 0) {
            f->real_ino = (uint64_t)sb.st_ino;
            f->real_ctime =
                (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec;
        }
        close(fd);
    }
    return rc;
}

const evs_io *pl_image_io(pl_image *im)
{
    return &im->io;
}

size_t pl_image_snapshot_opens(const pl_image *im)
{
    return im->snapshot_opens;
}

static int i_openat(void *ctx, int dirfd, const char *name, int flags,
                    mode_t mode, int *fd)
{
    pl_image *im = ctx;

    if (strcmp(name, "snapshot.json") == 0)
        im->snapshot_opens++;
    return im->base->openat(im->base->ctx, dirfd, name, flags, mode, fd);
}

static int i_fsync(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    return 0;
}

/* Gives a file of the image the identity it had in the recorded run,
 * and its change time there as long as nothing has changed it since. */
static void i_virt(pl_image *im, evs_stat *st)
{
    for (size_t i = 0; i < im->n; i++) {
        const ifile *f = &im->f[i];
        if (f->is_dir || f->link_to >= 0 || f->real_ino != st->ino)
            continue;
        st->ino = VINO_BASE + f->node;
        if (st->ctime_ns == f->real_ctime && f->vct1)
            st->ctime_ns = VCTIME(f->vct1 - 1);
        return;
    }
}

static int i_fstat(void *ctx, int fd, evs_stat *st)
{
    pl_image *im = ctx;
    int rc = im->base->fstat(im->base->ctx, fd, st);

    if (rc == 0 && !S_ISDIR(st->mode))
        i_virt(im, st);
    return rc;
}

static int i_statat(void *ctx, int dirfd, const char *path, evs_stat *st)
{
    pl_image *im = ctx;
    int rc = im->base->statat(im->base->ctx, dirfd, path, st);

    if (rc == 0 && !S_ISDIR(st->mode))
        i_virt(im, st);
    return rc;
}
