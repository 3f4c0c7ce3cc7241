/*
 * evdump_chain.c: `evdump chain`, the lineage of an execution in both
 * directions: the executions it continues or retries (each names its
 * origin in execution_started's `lineage`), back to the first, then
 * forward through every continuation (`continued_as`) and every retry
 * made of any of them.
 *
 * Forward links to retries are not stored with the origin (retrying
 * never touches it), so they are found by reading the lineage of every
 * execution in the store: one replay of each, from its snapshot.
 */
#include "evdump.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    char id[EVS_ID_MAX + 1];
    char origin[EVS_ID_MAX + 1]; /* continued_from or retry_of */
    char how[32];                /* "continued", or the retry strategy */
    char status[16];
    int64_t started_us;
    uint64_t last_seq;
} node;

typedef struct graph {
    node *v;
    size_t n, cap;
} graph;

static void span_str(evs_span s, char *out, size_t cap)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;

    if (n)
        memcpy(out, s.ptr, n);
    out[n] = '\0';
}

/* A string member of a JSON object's text, or "". */
static void member(json_object *o, const char *key, char *out, size_t cap)
{
    json_object *v;

    out[0] = '\0';
    if (o && json_object_object_get_ex(o, key, &v) &&
        json_object_is_type(v, json_type_string))
        snprintf(out, cap, "%s", json_object_get_string(v));
}

static int load(evs_store *st, evs_span id, node *nd)
{
    evs_replay_opts ro;
    evs_replay *r = NULL;
    const evs_exec_state *x;
    int rc;

    memset(nd, 0, sizeof(*nd));
    /* Only the execution's own record is read: a compact replay can
     * start from the orchestrator's snapshot. */
    evs_replay_opts_init(&ro);
    ro.compact = 1;
    if ((rc = evs_replay_new(&ro, &r)) != 0)
        return rc;
    rc = evs_replay_open(r, st, id.ptr, id.len, 0, NULL, NULL);
    if (rc == 0) {
        x = evs_replay_exec(r);
        span_str(id, nd->id, sizeof(nd->id));
        snprintf(nd->status, sizeof(nd->status), "%s",
                 evs_exec_status_name(x->status));
        nd->started_us = x->started_at_us;
        nd->last_seq = x->last_seq;
        if (x->lineage.len && x->lineage.len < 4096) {
            char buf[4096];
            json_object *jo;
            memcpy(buf, x->lineage.ptr, x->lineage.len);
            buf[x->lineage.len] = '\0';
            jo = json_tokener_parse(buf);
            member(jo, "continued_from", nd->origin, sizeof(nd->origin));
            if (nd->origin[0]) {
                snprintf(nd->how, sizeof(nd->how), "continued");
            } else {
                member(jo, "retry_of", nd->origin, sizeof(nd->origin));
                member(jo, "strategy", nd->how, sizeof(nd->how));
                if (nd->origin[0] && !nd->how[0])
                    snprintf(nd->how, sizeof(nd->how), "retry");
            }
            json_object_put(jo);
        }
    }
    evs_replay_free(r);
    return rc;
}

static const node *find(const graph *g, const char *id)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->v[i].id, id) == 0)
            return &g->v[i];
    return NULL;
}

/* Prints `nd` and, indented below it, what continues or retries it; the
 * execution asked about (`mark`) is marked with "<-". */
static void print_tree(const graph *g, const node *nd, int depth,
                       const char *mark)
{
    char t[40];

    fmt_time(nd->started_us, 1, t);
    out_printf("%*s%s%-*s  %-10s %s  %llu events%s%s%s%s\n", depth * 2, "",
               depth ? "└ " : "", 40 - depth * 2, nd->id, nd->status, t,
               (unsigned long long)nd->last_seq, nd->how[0] ? "  (" : "",
               nd->how, nd->how[0] ? ")" : "",
               strcmp(nd->id, mark) == 0 ? "  <-" : "");
    if (depth > 1000) /* a lineage that loops: damage, not ours */
        return;
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->v[i].origin, nd->id) == 0)
            print_tree(g, &g->v[i], depth + 1, mark);
}

int cmd_chain(int argc, char **argv)
{
    static const struct option lo[] = {OPT_HELP, OPT_END};
    evs_exec_listing l;
    evs_store *st = NULL;
    const char *store, *id;
    const node *root;
    graph g = {0};
    int c, rc;

    memset(&l, 0, sizeof(l));
    while ((c = next_opt("chain", argc, argv, "", lo)) != -1) {
        if (c == 'h') {
            print_help("chain");
            return EXIT_OKAY;
        }
        return -c;
    }
    if ((rc = positionals("chain", argc, argv, 2, 2, "STORE EXEC")) != 0)
        return rc;
    store = argv[optind];
    id = argv[optind + 1];
    if ((rc = open_store(store, &st)) != 0)
        return rc;
    if (!evs_id_valid(id, strlen(id))) {
        rc = fail("'%s' is not a valid execution id", id);
        goto out;
    }
    if ((rc = evs_exec_list(st, NULL, &l)) != 0) {
        rc = fail_evs(rc, NULL, "cannot list the store");
        goto out;
    }
    g.v = calloc(l.count ? l.count : 1, sizeof(*g.v));
    if (!g.v) {
        rc = fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < l.count; i++)
        if (load(st, l.items[i].id, &g.v[g.n]) == 0)
            g.n++;
    if (!(root = find(&g, id))) {
        /* Missing, or there but refused (a linked log). */
        rc = fail_on_exec(st, store, id, 0, "reading the log");
        goto out;
    }
    /* Back to the first of the lineage. */
    for (size_t hops = 0; root->origin[0] && hops < g.n; hops++) {
        const node *up = find(&g, root->origin);
        if (!up)
            break;
        root = up;
    }
    if (root->origin[0])
        out_printf("(%s continues or retries %s, which is not in the "
                   "store)\n",
                   root->id, root->origin);
    print_tree(&g, root, 0, id);
    rc = EXIT_OKAY;
out:
    free(g.v);
    evs_exec_list_free(&l);
    evs_store_close(st);
    return out_finish(rc);
}
