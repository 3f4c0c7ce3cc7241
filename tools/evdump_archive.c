/*
 * evdump_archive.c: `evdump archive`, `evdump restore` and the bundle
 * half of `evdump verify`: executions to bundles and back
 * (evstore/archive.h, formats/BUNDLES.md), one line per execution or
 * bundle, and a failure of one never stopping the others.
 */
#include "evdump.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* "2026-01-01T00:00:00Z" (any RFC 3339 time), or an age: a number and
 * s, m, h or d, meaning that long before now. */
static int parse_when(const char *arg, int64_t *us)
{
    static const struct {
        char unit;
        int64_t us;
    } units[] = {{'s', 1000000LL},
                 {'m', 60000000LL},
                 {'h', 3600000000LL},
                 {'d', 86400000000LL}};
    size_t n = strlen(arg);
    uint64_t v = 0;

    if (evs_time_parse(arg, n, us) == 0)
        return 0;
    if (n < 2)
        return -1;
    for (size_t i = 0; i + 1 < n; i++) {
        if (arg[i] < '0' || arg[i] > '9' || v > 100000000)
            return -1;
        v = v * 10 + (uint64_t)(arg[i] - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (arg[n - 1] == units[i].unit) {
            *us = evs_now_us() - (int64_t)v * units[i].us;
            return 0;
        }
    }
    return -1;
}

static int is_terminal(evs_span status)
{
    static const char *const ended[] = {"completed", "failed", "terminated",
                                        "continued"};

    for (size_t i = 0; i < sizeof(ended) / sizeof(ended[0]); i++)
        if (status.len == strlen(ended[i]) &&
            memcmp(status.ptr, ended[i], status.len) == 0)
            return 1;
    return 0;
}

/* Archives one execution and prints its line; returns 0 or 1. */
static int archive_one(evs_store *st, const char *id, const char *dir,
                       const evs_archive_opts *o)
{
    evs_archive_info ai;
    evs_error_info info;
    int rc;

    rc = evs_archive_exec(st, id, dir, o, &ai, &info);
    if (rc != 0) {
        note("%s: not archived: %s (%s)", id,
             info.msg[0] ? info.msg : evs_strerror(rc), evs_err_name(rc));
        return 1;
    }
    out_printf("archived %s -> %s/%s%s: %" PRIu64 " events, %" PRIu64
               " log bytes, %" PRIu64 " bundle bytes (%.1fx)%s%s\n",
               id, dir, id, EVS_BUNDLE_EXT, ai.events, ai.log_bytes,
               ai.bundle_bytes,
               ai.bundle_bytes ? (double)(ai.log_bytes + ai.snapshot_bytes) /
                                     (double)ai.bundle_bytes
                               : 0.0,
               ai.existed ? ", bundle already there" : "",
               ai.deleted ? ", deleted" : "");
    return 0;
}

int cmd_archive(int argc, char **argv)
{
    static const struct option lo[] = {
        {"to", required_argument, NULL, OPT_TO},
        {"delete", no_argument, NULL, OPT_DELETE},
        {"force", no_argument, NULL, OPT_FORCE},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"status", required_argument, NULL, OPT_STATUS},
        {"ended-before", required_argument, NULL, OPT_ENDED_BEFORE},
        OPT_HELP,
        OPT_END};
    evs_archive_opts o;
    evs_exec_listing l;
    evs_list_filter f;
    evs_store *st = NULL;
    const char *dir = NULL, *status = NULL;
    int64_t before = 0;
    uint64_t level;
    size_t done = 0, failed = 0;
    int c, rc, filtered = 0;

    memset(&l, 0, sizeof(l));
    evs_archive_opts_init(&o);
    while ((c = next_opt("archive", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("archive"); return EXIT_OKAY;
        case OPT_TO: dir = optarg; break;
        case OPT_DELETE: o.delete_after = 1; break;
        case OPT_FORCE: o.force = 1; break;
        case OPT_LEVEL:
            if ((rc = parse_num("archive", "--level", optarg, 1, 19, &level)))
                return rc;
            o.level = (int)level;
            break;
        case OPT_STATUS:
            status = optarg;
            filtered = 1;
            break;
        case OPT_ENDED_BEFORE:
            if (parse_when(optarg, &before) != 0)
                return usage_error("archive",
                                   "--ended-before needs an RFC 3339 time "
                                   "or an age such as 30d, got '%s'",
                                   optarg);
            filtered = 1;
            break;
        default: return -c;
        }
    }
    if (optind >= argc)
        return usage_error("archive", "missing STORE");
    if (!dir || !*dir)
        return usage_error("archive", "--to DIR is required");
    if (filtered == (argc - optind > 1))
        return usage_error("archive",
                           filtered ? "give executions or --status and "
                                      "--ended-before, not both"
                                    : "give executions, or select them with "
                                      "--status and --ended-before");
    if ((rc = open_store(argv[optind], &st)) != 0)
        return rc;
    if (!filtered) {
        for (int i = optind + 1; i < argc && !out_broken(); i++, done++)
            failed += (size_t)archive_one(st, argv[i], dir, &o);
    } else {
        memset(&f, 0, sizeof(f));
        f.status = evs_span_cstr(status);
        if ((rc = evs_exec_list(st, &f, &l)) != 0) {
            rc = fail("listing %s: %s (%s)", argv[optind], evs_strerror(rc),
                      evs_err_name(rc));
            goto out;
        }
        for (size_t k = 0; k < l.count && !out_broken(); k++) {
            const evs_exec_info *x = &l.items[k];
            char id[EVS_ID_MAX + 1];

            /* By the snapshot's account; the archive checks the log. */
            if (before && (!is_terminal(x->status) || !x->end_time_us ||
                           x->end_time_us >= before))
                continue;
            if (!status && !is_terminal(x->status))
                continue;
            snprintf(id, sizeof(id), "%.*s", (int)x->id.len, x->id.ptr);
            failed += (size_t)archive_one(st, id, dir, &o);
            done++;
        }
    }
    if (failed)
        note("%zu of %zu executions not archived", failed, done);
    rc = failed ? EXIT_ERROR : EXIT_OKAY;
out:
    evs_exec_list_free(&l);
    evs_store_close(st);
    return rc;
}

int cmd_restore(int argc, char **argv)
{
    static const struct option lo[] = {OPT_HELP, OPT_END};
    evs_archive_info ai;
    evs_error_info info;
    evs_store *st = NULL;
    int c, rc;

    while ((c = next_opt("restore", argc, argv, "", lo)) != -1) {
        if (c == 'h') {
            print_help("restore");
            return EXIT_OKAY;
        }
        return -c;
    }
    if ((rc = positionals("restore", argc, argv, 2, 2, "BUNDLE STORE")) != 0)
        return rc;
    if ((rc = open_store(argv[optind + 1], &st)) != 0)
        return rc;
    rc = evs_archive_restore(st, argv[optind], &ai, &info);
    if (rc != 0) {
        rc = fail("%s: not restored: %s (%s)", argv[optind],
                  info.msg[0] ? info.msg : evs_strerror(rc), evs_err_name(rc));
    } else {
        out_printf("restored %s from %s: %" PRIu64 " events, status %s\n",
                   ai.execution_id, argv[optind], ai.events, ai.status);
        rc = EXIT_OKAY;
    }
    evs_store_close(st);
    return rc;
}

int verify_bundles(int argc, char **argv, int first)
{
    size_t bad = 0, n = 0;
    int err = 0;

    for (int i = first; i < argc && !out_broken(); i++, n++) {
        evs_error_info info;
        evs_bundle *b = NULL;
        const evs_bundle_manifest *m;
        char t[40];
        int rc;

        evs_error_info_clear(&info);
        rc = evs_bundle_open(argv[i], NULL, &b, &info);
        if (rc != 0) {
            if (rc == EVS_ECORRUPT || rc == EVS_EFORMAT)
                bad++;
            else
                err = 1;
            if (info.offset != UINT64_MAX)
                out_printf("%s: at byte %" PRIu64 ": %s: %s (%s)\n", argv[i],
                           info.offset, info.kind[0] ? info.kind : "error",
                           info.msg[0] ? info.msg : evs_strerror(rc),
                           evs_err_name(rc));
            else
                out_printf("%s: %s (%s)\n", argv[i],
                           info.msg[0] ? info.msg : evs_strerror(rc),
                           evs_err_name(rc));
            continue;
        }
        m = evs_bundle_info(b);
        fmt_time(m->ended_at_us, 1, t);
        out_printf("%s: ok: %.*s, %.*s, %" PRIu64 " events, ended %s, %" PRIu64
                   " log bytes%s in %" PRIu64 " bytes\n",
                   argv[i], (int)m->execution_id.len, m->execution_id.ptr,
                   (int)m->status.len, m->status.ptr, m->events, t,
                   m->log_bytes, m->snapshot_bytes ? " and a snapshot" : "",
                   m->bundle_bytes);
        evs_bundle_close(b);
    }
    out_printf("%s%zu bundles, %zu damaged%s\n", bad ? c_red() : c_green(), n,
               bad, c_off());
    return err ? EXIT_ERROR : bad ? EXIT_DAMAGE : EXIT_OKAY;
}
