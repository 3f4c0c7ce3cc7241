/*
 * evrun_sched.c: `evrun schedule STORE ACTION ...`, which manages the
 * store's schedules (evstore/schedule.h, formats/SCHEDULES.md): add one
 * from its document, list them, describe one (its next fires, and its
 * last ones with their executions), pause, unpause, trigger and delete
 * one. `evrun serve` fires them.
 */
#include "evrun.h"
#include "evstore/schedule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The time in `us` as RFC 3339, or "-" for none. */
static const char *when(int64_t us, char buf[EVS_TIME_LEN + 1])
{
    if (!us || evs_time_format(us, buf) != 0)
        return "-";
    return buf;
}

/* Reports a schedule's refusal or error: its kind, the byte of a cron
 * expression, the step of a definition. */
static int sched_fail(const char *name, int rc, const evs_error_info *err)
{
    if (rc == -ENOENT && (!err || !err->msg[0]))
        return fail("no schedule '%s'", name);
    if (rc == -EEXIST && (!err || !err->msg[0]))
        return fail("schedule '%s' exists already", name);
    if (rc == EVS_ELOCKED)
        return fail("schedule '%s' is being changed by another process", name);
    if (err && err->msg[0] && strcmp(err->kind, "cron") == 0)
        return fail("%s: cron expression, at byte %llu: %s", name,
                    (unsigned long long)err->offset, err->msg);
    if (err && err->msg[0])
        return fail("%s: %s%s%s", name, err->step, err->step[0] ? ": " : "",
                    err->msg);
    return fail_rc(rc, "schedule %s", name);
}

static int sched_open(evs_store *s, const char *name, evs_schedule **h,
                      evs_sched_spec *spec, evs_sched_state *st, evs_tz **tz)
{
    evs_error_info err;
    int rc;

    evs_error_info_clear(&err);
    if ((rc = evs_schedule_open(s, name, 0, h)) != 0)
        return sched_fail(name, rc, NULL);
    if ((rc = evs_sched_spec_parse(evs_schedule_spec(*h), spec, &err)) != 0 ||
        (rc = evs_sched_state_parse(evs_schedule_state(*h), st)) != 0 ||
        (rc = evs_tz_load(s, spec->timezone, tz, &err)) != 0) {
        evs_schedule_close(*h);
        *h = NULL;
        return sched_fail(name, rc, &err);
    }
    return 0;
}

/* "cron 30 2 * * * Europe/Berlin" or "every 60s". */
static void what_fires(const evs_sched_spec *sp, char *buf, size_t cap)
{
    if (sp->has_cron)
        snprintf(buf, cap, "cron '%.*s' %s", (int)sp->cron_text.len,
                 sp->cron_text.ptr, sp->timezone);
    else if (sp->offset_ms)
        snprintf(buf, cap, "every %llds +%llds",
                 (long long)(sp->interval_ms / 1000),
                 (long long)(sp->offset_ms / 1000));
    else
        snprintf(buf, cap, "every %llds", (long long)(sp->interval_ms / 1000));
}

/* The next fire after the schedule's decided ones and `now`. */
static int64_t next_fire(const evs_sched_spec *sp, const evs_sched_state *st,
                         const evs_tz *tz, int64_t after)
{
    int64_t from = st->done_us > st->since_us ? st->done_us : st->since_us, f;

    if (after > from)
        from = after;
    return evs_sched_next(sp, tz, from, &f) == 0 ? f : 0;
}

static int do_add(evs_store *s, const char *file)
{
    evs_error_info err;
    evs_sched_spec sp;
    char *buf;
    size_t len;
    int rc;

    if (!(buf = read_file(file, &len)))
        return fail_rc(-errno, "cannot read %s", file);
    rc = evs_sched_add(s, (evs_span){buf, len}, evs_now_us(), &err);
    if (rc == 0 && evs_sched_spec_parse((evs_span){buf, len}, &sp, NULL) == 0)
        out_printf("%s added\n", sp.name);
    else if (rc != 0)
        rc = sched_fail(file, rc, &err);
    free(buf);
    return rc ? EXIT_ERROR : EXIT_OKAY;
}

static int do_list(evs_store *s, int json)
{
    evs_schedule_listing l;
    int64_t now = evs_now_us();
    int rc, ex = EXIT_OKAY;

    if ((rc = evs_schedule_list(s, &l)) != 0)
        return fail_rc(rc, "listing the schedules");
    if (!json && l.count)
        out_printf("%-24s %-7s %-13s %-28s %s\n", "NAME", "STATE", "OVERLAP",
                   "NEXT", "FIRES");
    for (size_t i = 0; i < l.count; i++) {
        evs_schedule *h = NULL;
        evs_sched_spec sp;
        evs_sched_state st;
        evs_tz *tz = NULL;
        char t[EVS_TIME_LEN + 1], what[400];
        int64_t next;

        if (sched_open(s, l.names[i], &h, &sp, &st, &tz) != 0) {
            ex = EXIT_ERROR;
            continue;
        }
        next = st.paused ? 0 : next_fire(&sp, &st, tz, now);
        what_fires(&sp, what, sizeof(what));
        if (json) {
            out_member_str("name", evs_span_cstr(sp.name), 1);
            out_member_str("state",
                           evs_span_cstr(st.paused ? "paused" : "active"), 0);
            out_member_str("overlap",
                           evs_span_cstr(evs_overlap_name(sp.overlap)), 0);
            out_member_str("fires", evs_span_cstr(what), 0);
            out_member_time("next", next);
            out_member_u64("started", st.started);
            out_write("}\n", 2);
        } else {
            out_printf("%-24s %-7s %-13s %-28s %s\n", sp.name,
                       st.paused ? "paused" : "active",
                       evs_overlap_name(sp.overlap), when(next, t), what);
        }
        evs_tz_free(tz);
        evs_schedule_close(h);
    }
    evs_schedule_list_free(&l);
    return ex;
}

/* The status of execution `id` now, from its snapshot ("gone" when it
 * has none). */
static void exec_status(evs_store *s, const char *id, char *buf, size_t cap)
{
    evs_snapshot *sn = NULL;

    if (!id[0]) {
        snprintf(buf, cap, "-");
    } else if (evs_snapshot_load(s, id, strlen(id), &sn, NULL) == 0) {
        snprintf(buf, cap, "%.*s", (int)sn->status.len, sn->status.ptr);
        evs_snapshot_free(sn);
    } else {
        snprintf(buf, cap, "%s",
                 evs_exec_exists(s, id, strlen(id)) ? "unknown" : "gone");
    }
}

static int do_describe(evs_store *s, const char *name, uint64_t nnext, int json)
{
    evs_schedule *h = NULL;
    evs_sched_spec sp;
    evs_sched_state st;
    evs_tz *tz = NULL;
    char t[EVS_TIME_LEN + 1], what[400], status[32];
    int64_t f = evs_now_us();
    int ex;

    if ((ex = sched_open(s, name, &h, &sp, &st, &tz)) != 0)
        return ex;
    what_fires(&sp, what, sizeof(what));
    if (json) {
        out_member_str("name", evs_span_cstr(sp.name), 1);
        out_member_str("state", evs_span_cstr(st.paused ? "paused" : "active"),
                       0);
        out_member_str("note", evs_span_cstr(st.note), 0);
        out_member_str("overlap", evs_span_cstr(evs_overlap_name(sp.overlap)),
                       0);
        out_member_str("fires", evs_span_cstr(what), 0);
        out_member_u64("catchup_window_ms", (uint64_t)sp.catchup_window_ms);
        out_member_u64("jitter_ms", (uint64_t)sp.jitter_ms);
        out_member_u64("started", st.started);
        out_member_u64("skipped", st.skipped);
        out_member_u64("missed", st.missed);
        out_member_time("buffered", st.buffered_us);
        out_printf(",\"next\":[");
        for (uint64_t i = 0; i < nnext && !st.paused; i++) {
            if (!(f = next_fire(&sp, &st, tz, f)))
                break;
            out_printf("%s", i ? "," : "");
            out_json_time(f);
        }
        out_printf("],\"recent\":[");
        for (size_t i = 0; i < st.nrecent; i++) {
            const evs_sched_action *a = &st.recent[i];
            exec_status(s, a->exec_id, status, sizeof(status));
            out_printf("%s", i ? "," : "");
            out_member_time("fire", a->fire_us);
            out_member_time("at", a->at_us);
            out_member_str("result",
                           evs_span_cstr(evs_fire_result_name(a->result)), 0);
            out_printf(",\"manual\":%s", a->manual ? "true" : "false");
            out_member_str("execution", evs_span_cstr(a->exec_id), 0);
            out_member_str("status", evs_span_cstr(status), 0);
            out_write("}", 1);
        }
        out_write("]}\n", 3);
    } else {
        out_printf("schedule   %s (%s%s%s)\n", sp.name,
                   st.paused ? "paused" : "active", st.note[0] ? ": " : "",
                   st.note);
        out_printf("fires      %s\n", what);
        out_printf("overlap    %s; catch-up window %llds; jitter %lldms\n",
                   evs_overlap_name(sp.overlap),
                   (long long)(sp.catchup_window_ms / 1000),
                   (long long)sp.jitter_ms);
        out_printf("counts     %llu started, %llu skipped, %llu missed\n",
                   (unsigned long long)st.started,
                   (unsigned long long)st.skipped,
                   (unsigned long long)st.missed);
        if (st.buffered_us)
            out_printf("buffered   %s\n", when(st.buffered_us, t));
        out_printf("next fires\n");
        for (uint64_t i = 0; i < nnext && !st.paused; i++) {
            if (!(f = next_fire(&sp, &st, tz, f)))
                break;
            out_printf("  %s\n", when(f, t));
        }
        out_printf("last fires\n");
        for (size_t i = 0; i < st.nrecent; i++) {
            const evs_sched_action *a = &st.recent[i];
            exec_status(s, a->exec_id, status, sizeof(status));
            out_printf("  %s %-8s%s %s %s\n", when(a->fire_us, t),
                       evs_fire_result_name(a->result),
                       a->manual ? " (manual)" : "",
                       a->exec_id[0] ? a->exec_id : "-", status);
        }
    }
    evs_tz_free(tz);
    evs_schedule_close(h);
    return EXIT_OKAY;
}

static int do_trigger(evs_store *s, const char *name, int overlap)
{
    char id[EVS_ID_MAX + 1] = "";
    evs_fire_result r = EVS_FIRE_FAILED;
    evs_error_info err;
    int rc;

    rc = evs_sched_trigger(s, name, evs_now_us(), overlap, &r, id, &err);
    if (rc == -EEXIST)
        return fail("schedule %s was triggered this second already (%s)", name,
                    id);
    if (rc != 0)
        return sched_fail(name, rc, &err);
    out_printf("%s %s\n", id[0] ? id : name, evs_fire_result_name(r));
    return r == EVS_FIRE_STARTED || r == EVS_FIRE_BUFFERED ? EXIT_OKAY
                                                           : EXIT_FAILED;
}

int cmd_schedule(int argc, char **argv)
{
    static const struct option lo[] = {
        {"next", required_argument, NULL, OPT_NEXT},
        {"overlap", required_argument, NULL, OPT_OVERLAP},
        OPT_JSON_ENTRY,
        OPT_HELP,
        OPT_END};
    static const char *const actions[] = {
        "list", "add", "describe", "pause", "unpause", "trigger", "delete"};
    const char *action, *arg = NULL;
    uint64_t nnext = 5;
    evs_overlap ov;
    int overlap = -1, json = 0, ex = 0, c, rc, a, want;
    evs_store *s = NULL;

    while ((c = next_opt("schedule", argc, argv, "", lo)) != -1) {
        switch (c) {
        case 'h': print_help("schedule"); return EXIT_OKAY;
        case OPT_NEXT:
            ex = parse_num("schedule", "--next", optarg, 0, 1000, &nnext);
            break;
        case OPT_OVERLAP:
            if (evs_overlap_parse(optarg, &ov) != 0)
                return usage_error("schedule",
                                   "--overlap takes skip, buffer_one, "
                                   "allow_all, cancel_other or "
                                   "terminate_other, got '%s'",
                                   optarg);
            overlap = (int)ov;
            break;
        case OPT_JSON: json = 1; break;
        default: return -c;
        }
        if (ex)
            return ex;
    }
    if ((ex = positionals("schedule", argc, argv, 2, 4, "STORE ACTION")) != 0)
        return ex;
    action = argv[optind + 1];
    for (a = 0; a < 7 && strcmp(action, actions[a]) != 0; a++)
        ;
    if (a == 7)
        return usage_error("schedule",
                           "unknown action '%s' (list, add, describe, pause, "
                           "unpause, trigger, delete)",
                           action);
    /* list takes nothing more; pause a NOTE besides the name. */
    want = a == 0 ? 2 : a == 3 ? 4 : 3;
    if ((ex = positionals("schedule", argc, argv, a == 0 ? 2 : 3, want,
                          a == 1 ? "STORE ACTION FILE"
                                 : "STORE ACTION NAME")) != 0)
        return ex;
    if (argc - optind > 2)
        arg = argv[optind + 2];
    if ((ex = open_store(argv[optind], &s)) != 0)
        return ex;
    switch (a) {
    case 0: ex = do_list(s, json); break;
    case 1: ex = do_add(s, arg); break;
    case 2: ex = do_describe(s, arg, nnext, json); break;
    case 5: ex = do_trigger(s, arg, overlap); break;
    default:
        if (a == 6)
            rc = evs_sched_delete(s, arg);
        else
            rc = evs_sched_pause(s, arg, a == 3,
                                 argc - optind > 3 ? argv[optind + 3] : NULL,
                                 evs_now_us());
        ex = rc ? sched_fail(arg, rc, NULL) : EXIT_OKAY;
        break;
    }
    evs_store_close(s);
    return ex;
}
