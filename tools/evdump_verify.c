/*
 * evdump_verify.c: `evdump verify`, which reports every problem in logs
 * and snapshots, and `evdump salvage`, which exports what still checks
 * out. Both rest on evs_log_scan, which reads a log tolerantly without
 * changing it; neither ever writes to the store.
 */
#include "evdump.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct scan_state {
    const char *id;
    int salvage; /* export events, problems to stderr */
    uint64_t events;
    uint64_t after_end; /* lines of an unfinished append after the end */
    uint64_t problems;
} scan_state;

/* "EXEC: seq S at byte B: KIND: message", the form the help promises. */
static void format_problem(const scan_state *x, const evs_scan_item *it,
                           char *buf, size_t cap)
{
    char at[48] = "";

    if (it->offset != UINT64_MAX)
        snprintf(at, sizeof(at), " at byte %" PRIu64, it->offset);
    snprintf(buf, cap, "%s: seq %" PRIu64 "%s: %s: %s", x->id, it->sequence, at,
             it->kind && it->kind[0] ? it->kind : "damage",
             it->msg && it->msg[0] ? it->msg : evs_strerror(it->code));
}

static int scan_cb(void *arg, const evs_scan_item *it)
{
    scan_state *x = arg;
    char line[512];

    if (!it->is_problem) {
        if (it->after_end)
            x->after_end++;
        else
            x->events++;
        if (x->salvage) {
            out_write(it->raw.ptr, it->raw.len);
            /* It checks out, but its append never completed (or is
             * damaged): say so, line by line. */
            if (it->after_end)
                note("%s: seq %" PRIu64 " at byte %" PRIu64 ": exported a "
                     "line of the unfinished append after the end "
                     "(sequences %" PRIu64 "..%" PRIu64 "), which is not "
                     "part of the log",
                     x->id, it->ev->sequence, it->offset, it->append_first,
                     it->append_first + it->append_count - 1);
        }
        return out_broken() ? 1 : 0;
    }
    x->problems++;
    format_problem(x, it, line, sizeof(line));
    if (x->salvage)
        note("%s", line);
    else
        out_printf("%s%s%s\n", c_red(), line, c_off());
    return out_broken() ? 1 : 0;
}

/* A problem that is not a line of the log: a missing log or snapshot. */
static void other_problem(scan_state *x, const char *what, const char *kind,
                          const char *msg)
{
    x->problems++;
    out_printf("%s%s: %s: %s: %s%s\n", c_red(), x->id, what, kind, msg,
               c_off());
}

/* Verifies one execution. Returns 0, or EXIT_ERROR after reporting a
 * failure that is not damage (the caller goes on with the others). */
static int verify_one(evs_store *st, scan_state *x)
{
    size_t len = strlen(x->id);
    evs_snapshot *sn = NULL;
    evs_error_info info;
    int rc, err = 0;

    rc = evs_log_scan(st, x->id, len, scan_cb, x);
    if (rc == -ENOENT)
        other_problem(x, "log", "missing", "no events.jsonl");
    else if (rc < 0)
        err = fail_on_exec(st, NULL, x->id, rc, "reading the log");
    if (out_broken())
        return 0;

    rc = evs_snapshot_load(st, x->id, len, &sn, &info);
    evs_snapshot_free(sn);
    switch (rc) {
    case 0: break;
    case -ENOENT:
        other_problem(x, "snapshot", "missing", "no snapshot.json");
        break;
    case EVS_ECORRUPT:
    case EVS_ESTALE:
    case EVS_EFORMAT:
    case EVS_EPARSE:
        other_problem(x, "snapshot",
                      info.kind[0]       ? info.kind
                      : rc == EVS_ESTALE ? "stale"
                                         : "damage",
                      info.msg[0] ? info.msg : evs_strerror(rc));
        break;
    default:
        err = fail("%s: reading the snapshot: %s (%s)", x->id, evs_strerror(rc),
                   evs_err_name(rc));
    }
    return err;
}

int cmd_verify(int argc, char **argv)
{
    static const struct option lo[] = {OPT_HELP, OPT_END};
    evs_exec_listing l;
    evs_store *st = NULL;
    uint64_t events = 0, problems = 0;
    size_t nexec = 0, nids;
    int c, rc, err = 0, explicit;

    memset(&l, 0, sizeof(l));
    while ((c = next_opt("verify", argc, argv, "", lo)) != -1) {
        if (c == 'h') {
            print_help("verify");
            return EXIT_OKAY;
        }
        return -c;
    }
    if (optind >= argc)
        return usage_error("verify", "missing STORE");
    if (is_bundle_path(argv[optind]))
        return verify_bundles(argc, argv, optind);
    if ((rc = open_store(argv[optind], &st)) != 0)
        return rc;
    /* Without EXEC arguments, every execution the listing finds. */
    explicit = argc - optind > 1;
    if (!explicit) {
        rc = evs_exec_list(st, NULL, &l);
        if (rc != 0) {
            rc = fail("listing %s: %s (%s)", argv[optind], evs_strerror(rc),
                      evs_err_name(rc));
            goto out;
        }
    }
    nids = explicit ? (size_t)(argc - optind - 1) : l.count;
    for (size_t k = 0; k < nids && !out_broken(); k++) {
        char id[EVS_ID_MAX + 1];
        scan_state x;

        memset(&x, 0, sizeof(x));
        x.id = id;
        if (!explicit) {
            snprintf(id, sizeof(id), "%.*s", (int)l.items[k].id.len,
                     l.items[k].id.ptr);
        } else {
            x.id = argv[optind + 1 + k];
            if (!evs_id_valid(x.id, strlen(x.id))) {
                err = fail("'%s' is not a valid execution id", x.id);
                continue;
            }
            if (!evs_exec_exists(st, x.id, strlen(x.id))) {
                err =
                    fail_on_exec(st, argv[optind], x.id, 0, "reading the log");
                continue;
            }
        }
        if (verify_one(st, &x) != 0)
            err = EXIT_ERROR;
        nexec++;
        events += x.events;
        problems += x.problems;
    }
    out_printf("%s%zu executions, %" PRIu64 " events, %" PRIu64 " problems%s\n",
               problems ? c_red() : c_green(), nexec, events, problems,
               c_off());
    rc = err ? EXIT_ERROR : problems ? EXIT_DAMAGE : EXIT_OKAY;
out:
    evs_exec_list_free(&l);
    evs_store_close(st);
    return rc;
}

int cmd_salvage(int argc, char **argv)
{
    static const struct option lo[] = {
        {"out", required_argument, NULL, OPT_OUT}, OPT_HELP, OPT_END};
    const char *outpath = NULL, *id;
    evs_store *st = NULL;
    scan_state x;
    struct stat sb;
    FILE *f = NULL;
    int c, rc, fd;

    while ((c = next_opt("salvage", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("salvage"); return EXIT_OKAY;
        case OPT_OUT: outpath = optarg; break;
        default: return -c;
        }
    }
    if ((rc = positionals("salvage", argc, argv, 2, 2, "STORE EXEC")) != 0)
        return rc;
    if (outpath && !*outpath)
        return usage_error("salvage", "--out needs a file name");
    id = argv[optind + 1];
    if ((rc = open_store(argv[optind], &st)) != 0)
        return rc;
    if (!evs_id_valid(id, strlen(id))) {
        rc = fail("'%s' is not a valid execution id", id);
        goto out;
    }
    if (!evs_exec_exists(st, id, strlen(id))) {
        rc = fail_on_exec(st, argv[optind], id, 0, "reading the log");
        goto out;
    }
    if (outpath) {
        /* Histories may be private: the copy is as closed as the log. */
        fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        /* A file that was there keeps its mode through O_TRUNC: close
         * it as a new one would be (not a terminal or pipe named by
         * path, whose mode is not ours to change). */
        if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
            (sb.st_mode & 077) && fchmod(fd, 0600) != 0) {
            close(fd);
            fd = -1;
        }
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
            rc = fail("cannot write %s: %s", outpath, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        out_to(f, outpath);
    }
    memset(&x, 0, sizeof(x));
    x.id = id;
    x.salvage = 1;
    rc = evs_log_scan(st, id, strlen(id), scan_cb, &x);
    if (rc < 0) {
        rc = fail_on_exec(st, argv[optind], id, rc, "reading the log");
        goto out;
    }
    rc = EXIT_OKAY;
    if (x.problems) {
        note("%s: exported %" PRIu64 " events of the log and %" PRIu64
             " of an unfinished append after its end; %" PRIu64 " problems",
             id, x.events, x.after_end, x.problems);
        rc = EXIT_DAMAGE;
    }
out:
    evs_store_close(st);
    return rc;
}

/* ------------------------------------------------------------------ */
/* repair                                                             */
/* ------------------------------------------------------------------ */

int cmd_repair(int argc, char **argv)
{
    static const struct option lo[] = {OPT_HELP, OPT_END};
    evs_store_opts so;
    evs_store *st = NULL;
    evs_log *l = NULL;
    evs_recovery_info rec;
    evs_error_info info;
    const char *id;
    int c, rc;

    while ((c = next_opt("repair", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("repair"); return EXIT_OKAY;
        default: return -c;
        }
    }
    if ((rc = positionals("repair", argc, argv, 2, 2, "STORE EXEC")) != 0)
        return rc;
    id = argv[optind + 1];
    evs_store_opts_init(&so);
    so.create = 0;
    so.recovery = EVS_RECOVER_POINT_IN_TIME;
    if ((rc = open_store_opts(argv[optind], &so, NULL, &st)) != 0)
        return rc;
    if (!evs_id_valid(id, strlen(id))) {
        rc = fail("'%s' is not a valid execution id", id);
        goto out;
    }
    rc = evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, &rec, &info);
    if (rc != 0) {
        rc = fail_exec(rc, &info, argv[optind], id);
        goto out;
    }
    if (rec.cut_bytes)
        out_printf("%s: cut %" PRIu64 " bytes at byte %" PRIu64 " (%" PRIu64
                   " complete lines among them), saved beside the log as "
                   "%s; the log now ends at sequence %" PRIu64 "\n",
                   id, rec.cut_bytes, rec.cut_offset, rec.cut_events,
                   rec.saved_as, rec.last_seq);
    else
        out_printf("%s: nothing to repair; the log ends at sequence %" PRIu64
                   "\n",
                   id, rec.last_seq);
    rc = EXIT_OKAY;
out:
    evs_log_close(l);
    evs_store_close(st);
    return rc;
}
