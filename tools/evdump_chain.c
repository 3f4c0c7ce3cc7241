/*
 * evdump_chain.c: `evdump chain`, the lineage of an execution in both
 * directions: the executions it continues or retries, back to the
 * first, then every continuation and every retry made of any of them,
 * as an indented tree. The library walks the store and gives the tree
 * as JSON (evs_inspect_chain, evstore/inspect.h); this prints it.
 */
#include "evdump.h"

#include <json-c/json.h>
#include <string.h>

/* A string member of a JSON object, or "" (absent, null, another
 * type): evdump.h. */
const char *dump_member(json_object *o, const char *key)
{
    json_object *v;

    if (json_object_object_get_ex(o, key, &v) &&
        json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return "";
}

int64_t dump_member_int(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* Prints one execution of the chain, indented by its depth; the one
 * asked about (`mark`) is marked with "<-". */
static void print_node(json_object *o, const char *mark)
{
    const char *id = dump_member(o, "id"), *how = dump_member(o, "link");
    const char *at = dump_member(o, "started_at");
    const char *arch = dump_member(o, "archived");
    int depth = (int)dump_member_int(o, "depth");
    int64_t us = 0;
    char t[40];

    if (evs_time_parse(at, strlen(at), &us) != 0)
        us = 0;
    fmt_time(us, 1, t);
    out_printf("%*s%s%-*s  %-10s %s  %llu events%s%s%s%s%s%s\n", depth * 2,
               "", depth ? "└ " : "", 40 - depth * 2, id,
               dump_member(o, "status"), t,
               (unsigned long long)dump_member_int(o, "last_event_seq"),
               how[0] ? "  (" : "", how, how[0] ? ")" : "",
               arch[0] ? "  archived in " : "", arch,
               strcmp(id, mark) == 0 ? "  <-" : "");
}

int cmd_chain(int argc, char **argv)
{
    static const struct option lo[] = {OPT_HELP, OPT_END};
    evs_error_info info;
    evs_store *st = NULL;
    json_object *chain = NULL, *first;
    const char *store, *id;
    char *js = NULL;
    int c, rc;

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
    if ((rc = evs_inspect_chain(st, id, &js, &info)) != 0) {
        rc = fail_exec(rc, &info, store, id);
        goto out;
    }
    chain = json_tokener_parse(js);
    if (!json_object_is_type(chain, json_type_array) ||
        json_object_array_length(chain) == 0) {
        rc = fail("%s: reading its chain: out of memory", id);
        goto out;
    }
    first = json_object_array_get_idx(chain, 0);
    if (*dump_member(first, "origin"))
        out_printf("(%s continues or retries %s, which is not in the "
                   "store)\n",
                   dump_member(first, "id"), dump_member(first, "origin"));
    for (size_t i = 0; i < json_object_array_length(chain); i++)
        print_node(json_object_array_get_idx(chain, i), id);
    rc = EXIT_OKAY;
out:
    json_object_put(chain);
    evs_free(evs_store_allocator(st), js);
    evs_store_close(st);
    return out_finish(rc);
}
