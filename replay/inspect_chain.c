/*
 * inspect_chain.c: the lineage of an execution as JSON
 * (evs_inspect_chain), which `evdump chain` prints: the executions it
 * continues or retries (each names its origin in execution_started's
 * `lineage`), back to the first, then down through every continuation
 * and every retry made of any of them.
 *
 * Forward links to retries are not stored with the origin (retrying
 * never touches it), so they are found by reading the lineage of every
 * execution in the store: one compact replay of each, from its snapshot.
 * An execution archived and deleted (evstore/archive.h) is read from the
 * store's record of it, so that a lineage through it still resolves.
 */
#include "inspect_int.h"
#include "lineage.h"

#include "evstore/archive.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A lineage that goes deeper than this loops (damage): the walk shows
 * the executions at the next depth and goes no further. */
#define DEPTH_MAX 1000

typedef struct node {
    char id[EVS_ID_MAX + 1];
    char origin[EVS_ID_MAX + 1]; /* continued_from or retry_of, or "" */
    char link[64];               /* "continued", the strategy, "retry" */
    char status[16];
    char archived[EVS_ID_MAX + 8]; /* its bundle's name, or "" */
    int64_t started_us;
    uint64_t last_seq;
} node;

/* String member `key` of the lineage object `lin`, unescaped and cut to
 * fit `out`; "" when it has none. */
static void lineage_member(evs_span lin, const char *key, char *out, size_t cap)
{
    const char *p, *end;
    size_t n = 0;
    evs_span v;
    char c[4];
    int k;

    out[0] = '\0';
    if (evs__json_get(lin, key, &v) != 1 || v.len < 2 || v.ptr[0] != '"')
        return;
    for (p = v.ptr + 1, end = v.ptr + v.len - 1; p < end; n += (size_t)k) {
        if (*p != '\\') {
            c[0] = *p++;
            k = 1;
        } else if ((k = evs__json_unescape_one(&p, end, c)) < 0) {
            break;
        }
        if (n + (size_t)k >= cap)
            break;
        memcpy(out + n, c, (size_t)k);
    }
    out[n] = '\0';
}

static void links(evs_span lineage, node *nd);

/* Reads execution `id` into *nd. Only the execution's own record is
 * read, so a compact replay may start from the orchestrator's snapshot.
 * Returns 0 or what evs_replay_open returns, *err filled. */
static int load(evs_store *s, evs_span id, node *nd, evs_error_info *err)
{
    const evs_exec_state *x;
    evs_replay *r = NULL;
    int rc;

    memset(nd, 0, sizeof(*nd));
    if ((rc = evs__compact_replayer(s, &r)) == 0 &&
        (rc = evs_replay_open(r, s, id.ptr, id.len, 0, NULL, err)) == 0) {
        x = evs_replay_exec(r);
        memcpy(nd->id, id.ptr, id.len);
        snprintf(nd->status, sizeof(nd->status), "%s",
                 evs_exec_status_name(x->status));
        nd->started_us = x->started_at_us;
        nd->last_seq = x->last_seq;
        links(x->lineage, nd);
    }
    evs_replay_free(r);
    return rc;
}

/* Fills *nd from one lineage object: its origin and how it links. */
static void links(evs_span lineage, node *nd)
{
    lineage_member(lineage, "continued_from", nd->origin, sizeof(nd->origin));
    if (nd->origin[0]) {
        memcpy(nd->link, "continued", sizeof("continued"));
    } else {
        lineage_member(lineage, "retry_of", nd->origin, sizeof(nd->origin));
        lineage_member(lineage, "strategy", nd->link, sizeof(nd->link));
        if (nd->origin[0] && !nd->link[0])
            memcpy(nd->link, "retry", sizeof("retry"));
    }
}

/* Reads the store's record of archived execution `id` into *nd.
 * Returns 0 or what evs_archived_get returns. */
static int load_archived(evs_store *s, const char *id, node *nd)
{
    evs_archived a;
    int rc;

    memset(nd, 0, sizeof(*nd));
    if ((rc = evs_archived_get(s, id, &a, NULL)) != 0)
        return rc;
    snprintf(nd->id, sizeof(nd->id), "%s", id);
    snprintf(nd->status, sizeof(nd->status), "%.*s", (int)a.status.len,
             a.status.ptr);
    snprintf(nd->archived, sizeof(nd->archived), "%.*s", (int)a.bundle.len,
             a.bundle.ptr);
    nd->started_us = a.started_at_us;
    nd->last_seq = a.last_seq;
    links(a.lineage, nd);
    evs_archived_free(&a);
    return 0;
}

static size_t find(const node *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return i;
    return n;
}

static void str_or_null(evs__jbuf *b, const char *s)
{
    if (s[0])
        evs__jb_quote(b, evs_span_cstr(s));
    else
        EVS__JB_LIT(b, "null");
}

static void write_node(evs__jbuf *b, const node *nd, size_t depth)
{
    EVS__JB_LIT(b, "{\"id\":");
    evs__jb_quote(b, evs_span_cstr(nd->id));
    EVS__JB_LIT(b, ",\"status\":");
    evs__jb_quote(b, evs_span_cstr(nd->status));
    EVS__JB_LIT(b, ",\"started_at\":");
    evs__inspect_time(b, nd->started_us);
    EVS__JB_LIT(b, ",\"last_event_seq\":");
    evs__jb_int(b, (int64_t)nd->last_seq);
    EVS__JB_LIT(b, ",\"depth\":");
    evs__jb_int(b, (int64_t)depth);
    EVS__JB_LIT(b, ",\"origin\":");
    str_or_null(b, nd->origin);
    EVS__JB_LIT(b, ",\"link\":");
    str_or_null(b, nd->link);
    EVS__JB_LIT(b, ",\"archived\":");
    str_or_null(b, nd->archived);
    EVS__JB_LIT(b, "}");
}

/* A node of the walk and where the search for its next child goes on;
 * its depth is its place on the stack. */
typedef struct frame {
    size_t node, next;
} frame;

/* Writes the tree below v[root], depth first, each node's children in
 * the order of v. Returns 0 or -ENOMEM. */
static int write_tree(evs__jbuf *b, const node *v, size_t n, size_t root)
{
    frame *st = NULL;
    size_t cap = 0, top = 0, i;
    int rc = 0;

    EVS__JB_LIT(b, "[");
    write_node(b, &v[root], 0);
    if (EVS__GROW(b->alloc, &st, &cap, 1) != 0)
        return -ENOMEM;
    st[top++] = (frame){root, 0};
    while (top > 0) {
        frame *f = &st[top - 1];

        for (i = top - 1 > DEPTH_MAX ? n : f->next; i < n; i++)
            if (strcmp(v[i].origin, v[f->node].id) == 0)
                break;
        if (i == n) {
            top--;
            continue;
        }
        f->next = i + 1;
        EVS__JB_LIT(b, ",");
        write_node(b, &v[i], top);
        if (EVS__GROW(b->alloc, &st, &cap, top + 1) != 0) {
            rc = -ENOMEM;
            break;
        }
        st[top++] = (frame){i, 0};
    }
    EVS__JB_LIT(b, "]");
    evs__free(b->alloc, st);
    return rc;
}

int evs_inspect_chain(evs_store *s, const char *id, char **out,
                      evs_error_info *err)
{
    evs__jbuf b = {0};
    evs_exec_listing l;
    node *v = NULL, asked;
    size_t n = 0, cap = 0, root, up, hops;
    int rc;

    memset(&l, 0, sizeof(l));
    if ((rc = evs__inspect_begin(s, id, 1, out, err)) != 0)
        return rc;
    b.alloc = evs_store_allocator(s);
    /* The one asked about must be there: its failure is the call's. The
     * others are left out when they cannot be read (damaged, refused, or
     * gone since the listing). */
    if ((rc = load(s, evs_span_cstr(id), &asked, err)) == -ENOENT &&
        load_archived(s, id, &asked) == 0)
        rc = 0;
    if (rc != 0)
        goto out;
    if ((rc = evs_exec_list(s, NULL, &l)) != 0) {
        evs__error_set(err, rc, "", "listing the store: %s", evs_strerror(rc));
        goto out;
    }
    if (EVS__GROW(b.alloc, &v, &cap, l.count + 1) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < l.count; i++) {
        if (evs__span_eq_cstr(l.items[i].id, id)) {
            v[n++] = asked;
            continue;
        }
        rc = load(s, l.items[i].id, &v[n], NULL);
        if (rc == -ENOMEM)
            goto out;
        n += rc == 0;
    }
    /* Created since the listing: last, as the listing would have it. */
    if ((root = find(v, n, id)) == n)
        v[n++] = asked;
    /* Back to the first of the lineage (no further than there are
     * executions, should it loop). */
    for (hops = 0; v[root].origin[0] && hops < n; hops++) {
        if ((up = find(v, n, v[root].origin)) == n) {
            /* Not in the store: archived, or the lineage ends here. */
            if (EVS__GROW(b.alloc, &v, &cap, n + 1) != 0) {
                rc = -ENOMEM;
                goto out;
            }
            if (load_archived(s, v[root].origin, &v[n]) != 0)
                break;
            n++;
        }
        root = up;
    }
    rc = write_tree(&b, v, n, root);
out:
    evs__free(b.alloc, v);
    evs_exec_list_free(&l);
    return evs__inspect_end(&b, rc, out, err, "reading the lineage");
}
