/*
 * evdump_ls.c: `evdump ls` (the listing, from each execution's snapshot
 * header: a table, or the library's JSON rows, evstore/inspect.h) and
 * `evdump snapshot` (one snapshot, checked and in full).
 */
#include "evdump.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* ls                                                                 */
/* ------------------------------------------------------------------ */

static const char *status_color(evs_span st)
{
    if (st.len == 9 && memcmp(st.ptr, "completed", 9) == 0)
        return c_green();
    if ((st.len == 6 && memcmp(st.ptr, "failed", 6) == 0) ||
        (st.len == 10 && memcmp(st.ptr, "terminated", 10) == 0))
        return c_red();
    if (st.len == 7 && memcmp(st.ptr, "running", 7) == 0)
        return c_cyan();
    return "";
}

/* Appends "key":"v" to the JSON object being built at buf[0..*n), after a
 * comma unless it is the first member. Returns -1 when v is not UTF-8. */
static int put_str(char *buf, size_t *n, const char *key, evs_span v)
{
    size_t q;

    *n += (size_t)sprintf(buf + *n, "%s\"%s\":", *n > 1 ? "," : "", key);
    if ((q = evs_json_quote(v, buf + *n, v.len * 6 + 2)) == (size_t)-1)
        return -1;
    *n += q;
    return 0;
}

/* Prints the rows of evs_inspect_list's compact `items` (p: past its
 * '['), one a line. A row is a flat object: it ends at the first '}'
 * outside a string. */
static void print_rows(const char *p)
{
    while (*p == '{' && !out_broken()) {
        const char *row = p;
        int quoted = 0;

        for (p++; quoted || *p != '}'; p++) {
            if (quoted && *p == '\\')
                p++;
            else if (*p == '"')
                quoted = !quoted;
        }
        p++;
        out_write(row, (size_t)(p - row));
        out_write("\n", 1);
        p += *p == ',';
    }
}

/* The listing as JSON lines, the rows the library writes
 * (evs_inspect_list). */
static int ls_json(evs_store *st, const char *store, const evs_list_filter *f)
{
    evs_error_info info;
    char *filter, *js = NULL;
    size_t n = 1;
    int rc;

    filter = malloc(6 * (f->status.len + f->workflow_name.len) + 128);
    if (!filter)
        return fail("out of memory");
    filter[0] = '{';
    if ((f->status.len && put_str(filter, &n, "status", f->status)) ||
        (f->workflow_name.len &&
         put_str(filter, &n, "workflow", f->workflow_name))) {
        /* No snapshot holds text that is not UTF-8: nothing matches. */
        free(filter);
        return EXIT_OKAY;
    }
    /* Past INT64_MAX (what the filter takes) a count changes nothing. */
    sprintf(filter + n, "%s\"offset\":%zu,\"limit\":%zu}", n > 1 ? "," : "",
            f->offset < INT64_MAX ? f->offset : INT64_MAX,
            f->limit < INT64_MAX ? f->limit : INT64_MAX);
    rc = evs_inspect_list(st, filter, &js, &info);
    free(filter);
    if (rc != 0)
        return fail("listing %s: %s (%s)", store, evs_strerror(rc),
                    evs_err_name(rc));
    print_rows(strstr(js, "\"items\":[") + 9);
    evs_free(evs_store_allocator(st), js);
    return EXIT_OKAY;
}

enum { COL_ID, COL_STATUS, COL_WF, COL_CREATED, COL_UPDATED, COL_SEQ, NCOL };

/* The text of one cell; numbers and times go through `tmp`. */
static evs_span ls_cell(const evs_exec_info *it, int col, char tmp[40])
{
    static const evs_span unknown = {"?", 1}, none = {"-", 1};

    if (col == COL_ID)
        return it->id;
    if (!it->snapshot_ok)
        return unknown;
    switch (col) {
    case COL_STATUS: return it->status.len ? it->status : none;
    case COL_WF: return it->workflow_name.len ? it->workflow_name : none;
    case COL_CREATED:
        fmt_time(it->created_at_us, 1, tmp);
        return evs_span_cstr(tmp);
    case COL_UPDATED:
        fmt_time(it->updated_at_us, 1, tmp);
        return evs_span_cstr(tmp);
    default:
        snprintf(tmp, 40, "%" PRIu64, it->last_event_seq);
        return evs_span_cstr(tmp);
    }
}

static void ls_table(const evs_exec_listing *l)
{
    static const char *const head[NCOL] = {"ID",      "STATUS",  "WORKFLOW",
                                           "CREATED", "UPDATED", "LAST SEQ"};
    size_t w[NCOL];
    char tmp[40];

    for (int c = 0; c < NCOL; c++)
        w[c] = strlen(head[c]);
    for (size_t i = 0; i < l->count; i++)
        for (int c = 0; c < NCOL; c++) {
            size_t n = text_cols(ls_cell(&l->items[i], c, tmp));
            if (n > w[c])
                w[c] = n;
        }
    out_printf("%s", c_bold());
    for (int c = 0; c < NCOL - 1; c++)
        out_printf("%-*s  ", (int)w[c], head[c]);
    out_printf("%*s%s\n", (int)w[COL_SEQ], head[COL_SEQ], c_off());
    for (size_t i = 0; i < l->count && !out_broken(); i++) {
        const evs_exec_info *it = &l->items[i];
        for (int c = 0; c < NCOL - 1; c++) {
            evs_span cell = ls_cell(it, c, tmp);
            const char *on = c == COL_STATUS ? status_color(cell)
                             : c == COL_CREATED || c == COL_UPDATED ? c_dim()
                                                                    : "";
            out_printf("%s", on);
            out_text(cell, 0);
            out_printf("%s", *on ? c_off() : "");
            for (size_t n = text_cols(cell); n < w[c] + 2; n++)
                out_write(" ", 1);
        }
        out_printf("%*s\n", (int)w[COL_SEQ], ls_cell(it, COL_SEQ, tmp).ptr);
    }
    if (l->count < l->total)
        out_printf("%s%zu of %zu executions shown%s\n", c_dim(), l->count,
                   l->total, c_off());
}

int cmd_ls(int argc, char **argv)
{
    static const struct option lo[] = {
        {"status", required_argument, NULL, OPT_STATUS},
        {"workflow", required_argument, NULL, OPT_WORKFLOW},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"offset", required_argument, NULL, OPT_OFFSET},
        {"json", no_argument, NULL, OPT_JSON},
        OPT_HELP,
        OPT_END};
    evs_list_filter f;
    evs_exec_listing l;
    evs_store *st = NULL;
    uint64_t v;
    int c, json = 0, rc;

    memset(&f, 0, sizeof(f));
    while ((c = next_opt("ls", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("ls"); return EXIT_OKAY;
        case OPT_STATUS: f.status = evs_span_cstr(optarg); break;
        case OPT_WORKFLOW: f.workflow_name = evs_span_cstr(optarg); break;
        case OPT_LIMIT:
        case OPT_OFFSET:
            rc = parse_num("ls", c == OPT_LIMIT ? "--limit" : "--offset",
                           optarg, 0, SIZE_MAX, &v);
            if (rc)
                return rc;
            if (c == OPT_LIMIT)
                f.limit = (size_t)v;
            else
                f.offset = (size_t)v;
            break;
        case OPT_JSON: json = 1; break;
        default: return -c;
        }
    }
    if (optind >= argc)
        return usage_error("ls", "missing STORE");
    if (argc - optind > 1)
        return usage_error("ls", "unexpected argument '%s'", argv[optind + 1]);
    if ((rc = open_store(argv[optind], &st)) != 0)
        return rc;
    if (json) {
        rc = ls_json(st, argv[optind], &f);
        goto out;
    }
    rc = evs_exec_list(st, &f, &l);
    if (rc != 0) {
        rc = fail("listing %s: %s (%s)", argv[optind], evs_strerror(rc),
                  evs_err_name(rc));
        goto out;
    }
    ls_table(&l);
    evs_exec_list_free(&l);
out:
    evs_store_close(st);
    return rc;
}

/* ------------------------------------------------------------------ */
/* snapshot                                                           */
/* ------------------------------------------------------------------ */

#define LABEL_W 16

static void snap_label(const char *name)
{
    out_printf("%s%-*s%s", c_bold(), LABEL_W, name, c_off());
}

static void snap_str(const char *name, evs_span v)
{
    snap_label(name);
    out_text(v.len ? v : evs_span_cstr("-"), 0);
    out_write("\n", 1);
}

static void snap_time(const char *name, int64_t us)
{
    char buf[40];

    fmt_time(us, 0, buf);
    snap_label(name);
    out_printf("%s%s%s\n", c_dim(), buf, c_off());
}

static void snap_json(const char *name, evs_span v)
{
    snap_label(name);
    if (v.len == 0)
        out_write("-", 1);
    else
        out_json_pretty(v, LABEL_W);
    out_write("\n", 1);
}

static void snap_show(const evs_snapshot *s)
{
    snap_str("id", s->id);
    snap_str("workflow_name", s->workflow_name);
    snap_str("workflow_hash", s->workflow_hash);
    snap_str("inputs_hash", s->inputs_hash);
    snap_label("status");
    out_printf("%s", status_color(s->status));
    out_text(s->status.len ? s->status : evs_span_cstr("-"), 0);
    out_printf("%s\n", c_off());
    snap_time("start_time", s->start_time_us);
    snap_time("end_time", s->end_time_us);
    snap_time("created_at", s->created_at_us);
    snap_time("updated_at", s->updated_at_us);
    snap_label("last_event_seq");
    out_printf("%" PRIu64 "\n", s->last_event_seq);
    snap_json("workflow_data", s->workflow_data);
    snap_json("inputs", s->inputs);
    snap_json("outputs", s->outputs);
    snap_json("error", s->error);
    snap_json("lineage", s->lineage);
    snap_json("state", s->state);
}

static void snap_json_doc(const evs_snapshot *s)
{
    out_member_str("id", s->id, 1);
    out_member_str("workflow_name", s->workflow_name, 0);
    out_member_str("workflow_hash", s->workflow_hash, 0);
    out_member_str("inputs_hash", s->inputs_hash, 0);
    out_member_str("status", s->status, 0);
    out_member_time("start_time", s->start_time_us);
    out_member_time("end_time", s->end_time_us);
    out_member_time("created_at", s->created_at_us);
    out_member_time("updated_at", s->updated_at_us);
    out_member_u64("last_event_seq", s->last_event_seq);
    out_member_json("workflow_data", s->workflow_data);
    out_member_json("inputs", s->inputs);
    out_member_json("outputs", s->outputs);
    out_member_json("error", s->error);
    out_member_json("lineage", s->lineage);
    out_member_json("state", s->state);
    out_write("}\n", 2);
}

int cmd_snapshot(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, OPT_JSON}, OPT_HELP, OPT_END};
    evs_snapshot *sn = NULL;
    evs_error_info info;
    evs_store *st = NULL;
    const char *store, *id;
    int c, json = 0, rc;

    while ((c = next_opt("snapshot", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("snapshot"); return EXIT_OKAY;
        case OPT_JSON: json = 1; break;
        default: return -c;
        }
    }
    if ((rc = positionals("snapshot", argc, argv, 2, 2, "STORE EXEC")) != 0)
        return rc;
    store = argv[optind];
    id = argv[optind + 1];
    if ((rc = open_store(store, &st)) != 0)
        return rc;
    rc = evs_snapshot_load(st, id, strlen(id), &sn, &info);
    if (rc == -ENOENT && evs_exec_exists(st, id, strlen(id)))
        rc = fail("execution '%s' has no snapshot", id);
    else if (rc != 0)
        rc = fail_exec(rc, &info, store, id);
    else if (json)
        snap_json_doc(sn);
    else
        snap_show(sn);
    evs_snapshot_free(sn);
    evs_store_close(st);
    return rc;
}
