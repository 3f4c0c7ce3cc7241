/*
 * evdump_admin.c: the commands that look after a store rather than one
 * execution: `evdump config` (the store's settings, evstore/settings.h),
 * `evdump gc` (its retention policy, evs_store_gc) and `evdump stats`
 * (evs_store_stats_get, evstore/gc.h).
 */
#include "evdump.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* config                                                             */
/* ------------------------------------------------------------------ */

static void config_row(const evs_settings *st, const evs_setting_key *k,
                       int json, int first)
{
    const char *v = "";
    int set = 0;

    evs_settings_get(st, k->name, &v, &set, NULL);
    if (json) {
        out_printf("%s", first ? "{" : ",");
        out_json_str(evs_span_cstr(k->name));
        out_printf(":{\"value\":");
        out_json_str(evs_span_cstr(v));
        out_printf(",\"default\":%s}", set ? "false" : "true");
        return;
    }
    out_printf("%-22s %s%s%s\n", k->name, v[0] ? v : "''",
               set ? "" : "  ", set ? "" : "(default)");
}

int cmd_config(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"unset", no_argument, NULL, OPT_UNSET},
        OPT_HELP,
        OPT_END};
    evs_settings *st = NULL;
    evs_store *s = NULL;
    evs_error_info ei;
    const evs_setting_key *k;
    const char *key = NULL, *val = NULL;
    int c, json = 0, unset = 0, rc, nargs;

    while ((c = next_opt("config", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("config"); return EXIT_OKAY;
        case OPT_JSON: json = 1; break;
        case OPT_UNSET: unset = 1; break;
        default: return -c;
        }
    }
    if ((rc = positionals("config", argc, argv, 1, 3, "STORE KEY VALUE")) != 0)
        return rc;
    nargs = argc - optind;
    if (nargs >= 2)
        key = argv[optind + 1];
    if (nargs == 3)
        val = argv[optind + 2];
    if (unset && (!key || val))
        return usage_error("config", "--unset takes one KEY and no VALUE");
    if ((rc = open_store(argv[optind], &s)) != 0)
        return rc;
    if ((rc = evs_settings_load(s, &st, &ei)) != 0) {
        rc = fail_evs(rc, &ei, "reading the store's settings");
        goto out;
    }
    if (key && (val || unset)) {
        if ((rc = evs_settings_set(st, key, val, &ei)) != 0) {
            rc = rc == -ENOENT || rc == -EINVAL
                     ? usage_error("config", "%s", ei.msg)
                     : fail_evs(rc, &ei, "setting");
            goto out;
        }
        if ((rc = evs_settings_save(s, st, &ei)) != 0) {
            rc = fail_evs(rc, &ei, "saving the store's settings");
            goto out;
        }
    }
    if (key) {
        const char *v;
        int set;
        if ((rc = evs_settings_get(st, key, &v, &set, &ei)) != 0) {
            rc = usage_error("config", "%s", ei.msg);
            goto out;
        }
        if (json) {
            out_printf("{\"key\":");
            out_json_str(evs_span_cstr(key));
            out_printf(",\"value\":");
            out_json_str(evs_span_cstr(v));
            out_printf(",\"default\":%s}\n", set ? "false" : "true");
        } else {
            out_printf("%s\n", v);
        }
        rc = EXIT_OKAY;
        goto out;
    }
    for (size_t i = 0; (k = evs_setting_key_at(i)) != NULL; i++)
        config_row(st, k, json, i == 0);
    if (json)
        out_printf("}\n");
    rc = EXIT_OKAY;
out:
    evs_settings_free(st);
    evs_store_close(s);
    return out_finish(rc);
}

/* ------------------------------------------------------------------ */
/* gc                                                                 */
/* ------------------------------------------------------------------ */

typedef struct gc_print {
    int json, dry_run;
} gc_print;

static const char *action_name(evs_gc_action a, int dry_run)
{
    switch (a) {
    case EVS_GC_DELETED: return dry_run ? "would delete" : "deleted";
    case EVS_GC_KEPT_LINEAGE: return "kept (lineage)";
    case EVS_GC_SKIPPED: return "skipped";
    case EVS_GC_FAILED: return "failed";
    }
    return "?";
}

static const char *action_json(evs_gc_action a)
{
    static const char *const names[] = {"delete", "kept_lineage", "skipped",
                                        "failed"};
    return (unsigned)a < 4 ? names[a] : "?";
}

static void gc_item(void *ctx, const evs_gc_item *it)
{
    const gc_print *p = ctx;
    char t[40];

    if (p->json) {
        out_member_str("id", it->id, 1);
        out_member_str("action", evs_span_cstr(action_json(it->action)), 0);
        out_member_str("status", it->status, 0);
        out_member_str("workflow_name", it->workflow_name, 0);
        out_member_time("ended_at", it->ended_us);
        out_printf(",\"error\":");
        if (it->err)
            out_json_str(evs_span_cstr(evs_err_name(it->err)));
        else
            out_printf("null");
        out_printf("}\n");
        return;
    }
    fmt_time(it->ended_us, 1, t);
    out_printf("%-14s %.*s  %.*s  ended %s", action_name(it->action, p->dry_run),
               (int)it->id.len, it->id.ptr, (int)it->status.len, it->status.ptr,
               t);
    if (it->err)
        out_printf("  (%s)", evs_strerror(it->err));
    out_printf("\n");
}

int cmd_gc(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"now", required_argument, NULL, OPT_NOW},
        OPT_HELP,
        OPT_END};
    evs_gc_result res;
    evs_error_info ei;
    evs_store *s = NULL;
    evs_gc_opts o;
    gc_print p = {0, 0};
    int c, rc;

    evs_gc_opts_init(&o);
    while ((c = next_opt("gc", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("gc"); return EXIT_OKAY;
        case OPT_JSON: p.json = 1; break;
        case OPT_DRY_RUN: p.dry_run = o.dry_run = 1; break;
        case OPT_NOW:
            if (evs_time_parse(optarg, strlen(optarg), &o.now_us) != 0 ||
                o.now_us <= 0)
                return usage_error("gc",
                                   "--now '%s' is not an RFC 3339 time",
                                   optarg);
            break;
        default: return -c;
        }
    }
    if ((rc = positionals("gc", argc, argv, 1, 1, "STORE")) != 0)
        return rc;
    if ((rc = open_store(argv[optind], &s)) != 0)
        return rc;
    o.on_item = gc_item;
    o.ctx = &p;
    rc = evs_store_gc(s, &o, &res, &ei);
    if (p.json) {
        out_printf("{\"summary\":true,\"dry_run\":%s,\"executions\":%zu,"
                   "\"expired\":%zu,\"deleted\":%zu,\"kept_lineage\":%zu,"
                   "\"skipped\":%zu,\"failed\":%zu}\n",
                   p.dry_run ? "true" : "false", res.executions, res.expired,
                   res.deleted, res.kept_lineage, res.skipped, res.failed);
    } else {
        out_printf("%zu executions, %zu expired: %zu %s, %zu kept for "
                   "lineage, %zu skipped, %zu failed\n",
                   res.executions, res.expired, res.deleted,
                   p.dry_run ? "would be deleted" : "deleted",
                   res.kept_lineage, res.skipped, res.failed);
    }
    rc = rc ? fail_evs(rc, &ei, "gc") : EXIT_OKAY;
    evs_store_close(s);
    return out_finish(rc);
}

/* ------------------------------------------------------------------ */
/* stats                                                              */
/* ------------------------------------------------------------------ */

static void counts_json(const char *key, const evs_stats_count *v, size_t n)
{
    out_printf(",\"%s\":{", key);
    for (size_t i = 0; i < n; i++) {
        out_printf("%s", i ? "," : "");
        out_json_str(v[i].name);
        out_printf(":%" PRIu64, v[i].count);
    }
    out_printf("}");
}

static void stats_json(const evs_store_stats *t)
{
    out_printf("{\"executions\":%" PRIu64 ",\"unreadable_snapshots\":%" PRIu64,
               t->executions, t->unreadable);
    counts_json("by_status", t->by_status, t->n_status);
    counts_json("by_workflow", t->by_workflow, t->n_workflow);
    out_printf(",\"events\":{\"total\":%" PRIu64 ",\"p50\":%" PRIu64
               ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "}",
               t->events, t->events_p50, t->events_p99, t->events_max);
    out_printf(",\"bytes\":{\"total\":%" PRIu64 ",\"p50\":%" PRIu64
               ",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "}",
               t->bytes, t->bytes_p50, t->bytes_p99, t->bytes_max);
    out_printf(",\"largest\":[");
    for (size_t i = 0; i < t->n_largest; i++) {
        const evs_stats_exec *x = &t->largest[i];
        out_printf("%s", i ? "," : "");
        out_member_str("id", x->id, 1);
        out_member_str("status", x->status, 0);
        out_member_str("workflow_name", x->workflow_name, 0);
        out_member_u64("events", x->events);
        out_member_u64("bytes", x->bytes);
        out_printf("}");
    }
    out_printf("],\"archived\":");
    if (t->archived < 0)
        out_printf("null");
    else
        out_printf("%" PRId64, t->archived);
    out_printf(",\"cut_files\":%" PRIu64 ",\"cut_bytes\":%" PRIu64
               ",\"cut_executions\":%" PRIu64 ",\"stale_snapshots\":%" PRIu64
               ",\"unreadable_logs\":%" PRIu64 "}\n",
               t->cut_files, t->cut_bytes, t->cut_executions,
               t->stale_snapshots, t->unreadable_logs);
}

static void counts_text(const char *title, const evs_stats_count *v, size_t n)
{
    out_printf("%s:\n", title);
    for (size_t i = 0; i < n; i++)
        out_printf("  %-30.*s %" PRIu64 "\n", (int)v[i].name.len, v[i].name.ptr,
                   v[i].count);
}

static void stats_text(const evs_store_stats *t)
{
    out_printf("executions: %" PRIu64 "", t->executions);
    if (t->unreadable)
        out_printf(" (%" PRIu64 " with a missing or damaged snapshot)",
                   t->unreadable);
    out_printf("\n");
    counts_text("by status", t->by_status, t->n_status);
    counts_text("by workflow", t->by_workflow, t->n_workflow);
    out_printf("events: %" PRIu64 " in all; per execution p50 %" PRIu64
               ", p99 %" PRIu64 ", max %" PRIu64 "\n",
               t->events, t->events_p50, t->events_p99, t->events_max);
    out_printf("bytes:  %" PRIu64 " in all; per execution p50 %" PRIu64
               ", p99 %" PRIu64 ", max %" PRIu64 "\n",
               t->bytes, t->bytes_p50, t->bytes_p99, t->bytes_max);
    if (t->n_largest)
        out_printf("largest histories:\n");
    for (size_t i = 0; i < t->n_largest; i++) {
        const evs_stats_exec *x = &t->largest[i];
        out_printf("  %-40.*s %-10.*s %" PRIu64 " events, %" PRIu64
                   " bytes\n",
                   (int)x->id.len, x->id.ptr, (int)x->status.len, x->status.ptr,
                   x->events, x->bytes);
    }
    if (t->archived < 0)
        out_printf("archived: none (no .archived directory)\n");
    else
        out_printf("archived: %" PRId64 "\n", t->archived);
    out_printf("torn tails cut: %" PRIu64 " files, %" PRIu64
               " bytes, in %" PRIu64 " executions\n",
               t->cut_files, t->cut_bytes, t->cut_executions);
    out_printf("snapshots behind their log: %" PRIu64 "\n", t->stale_snapshots);
    if (t->unreadable_logs)
        out_printf("logs that could not be read: %" PRIu64 "\n",
                   t->unreadable_logs);
}

int cmd_stats(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"top", required_argument, NULL, OPT_LIMIT},
        OPT_HELP,
        OPT_END};
    evs_store_stats t;
    evs_store *s = NULL;
    uint64_t top = 10;
    int c, json = 0, rc;

    while ((c = next_opt("stats", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("stats"); return EXIT_OKAY;
        case OPT_JSON: json = 1; break;
        case OPT_LIMIT:
            if ((rc = parse_num("stats", "--top", optarg, 0, 1000000, &top)))
                return rc;
            break;
        default: return -c;
        }
    }
    if ((rc = positionals("stats", argc, argv, 1, 1, "STORE")) != 0)
        return rc;
    if ((rc = open_store(argv[optind], &s)) != 0)
        return rc;
    if ((rc = evs_store_stats_get(s, (size_t)top, &t)) != 0) {
        rc = fail_rc(rc, "%s: gathering statistics", argv[optind]);
        goto out;
    }
    if (json)
        stats_json(&t);
    else
        stats_text(&t);
    evs_store_stats_free(&t);
    rc = EXIT_OKAY;
out:
    evs_store_close(s);
    return out_finish(rc);
}
