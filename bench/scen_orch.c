/*
 * scen_orch.c: P9, the orchestrator.
 *
 * Throughput: N executions of a linear 3-step workflow (three `action`
 * steps calling "noop", a C action that completes at once with its input)
 * are started together on one orchestrator with its own loop and
 * stop_when_idle, and run to completion: workflows/s from the first
 * evs_orch_start to the return of evs_orch_run, once with a store in
 * EVS_SYNC_FULL and once in EVS_SYNC_NONE.
 *
 * Durable, the floor is the raw I/O of the same appends: after each run
 * the logs are read back to count the appends (batches) the orchestrator
 * really made per workflow, and 16 threads (the libuv threadpool's size
 * here, set as evrun sets it: all the parallelism the orchestrator's
 * writes get) each
 * write those appends' bytes to a file of their own with fdatasync after
 * each; floor workflows/s is that append rate divided by the appends per
 * workflow. Without sync, appends alone cost nothing next to creating
 * files, so the floor is the layout's: 16 threads making, per workflow,
 * the directories, files and renames of an execution (a temporary
 * directory with the log and a snapshot, renamed into place; the
 * appends; the final snapshot by rename), with the raw system calls.
 * The same layout floor with every sync is in the notes. There is no
 * SQLite peer. The same workflows on the SQLite and PostgreSQL backends,
 * PostgreSQL beside raw libpq, are scen_orch_db.c's rows, after the
 * file store's.
 *
 * A warm-up run goes through an I/O table that counts the store's system
 * calls per workflow (and the syncs made on the loop thread), for the
 * notes. Every store of the scenario is kept until it ends: on this
 * machine's ext4 (no journal), inode allocation steps over recently freed
 * inodes one at a time, so removing a repetition's files would slow the
 * next one down.
 *
 * Latency: executions of `wait_event` -> `action` are started and left
 * waiting. For each, a forked child takes it over (evs_orch_resume) and
 * runs it, and this process posts the event through the inbox
 * (evs_orch_post). The latency is the timestamp of the action step's
 * step_started in the log minus the wall-clock time just before the post;
 * the notes split it at the return of the post and at the timestamp of
 * signal_received.
 */
#include "evbench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define WARM_WORKFLOWS 8

const char p9_wf_three[] =
    "{\"name\":\"p9\",\"steps\":["
    "{\"name\":\"a\",\"kind\":\"action\",\"action\":\"noop\","
    "\"params\":{\"step\":1},\"next\":\"b\"},"
    "{\"name\":\"b\",\"kind\":\"action\",\"action\":\"noop\","
    "\"params\":{\"step\":2},\"next\":\"c\"},"
    "{\"name\":\"c\",\"kind\":\"action\",\"action\":\"noop\","
    "\"params\":{\"step\":3}}]}";

/* ------------------------------------------------------------------ */
/* Running workflows                                                  */
/* ------------------------------------------------------------------ */

static void on_outcome(void *arg, const char *id, evs_outcome oc, int err)
{
    p9_outcomes *r = arg;

    if (oc == EVS_OUTCOME_COMPLETED)
        r->completed++;
    else if (oc == EVS_OUTCOME_SUSPENDED)
        r->suspended++;
    else if (r->other++ == 0)
        snprintf(r->first_bad, sizeof(r->first_bad), "%s: %s (%s)", id,
                 evs_outcome_name(oc), evs_err_name(err));
    if (r->stop && oc != EVS_OUTCOME_SUSPENDED)
        evs_orch_stop(r->stop, 0);
}

/* The no-op action: done at once, on the loop thread, with its input. */
static void noop_action(void *arg, evs_action_req *req)
{
    (void)arg;
    evs_action_complete(req, evs_action_req_call(req)->input);
}

int p9_open_store(bench_ctx *c, const char *path, evs_durability d,
                  const evs_io *io, evs_store **out)
{
    evs_store_opts o;
    int rc;

    evs_store_opts_init(&o);
    o.durability = d;
    if (io)
        o.io = io;
    rc = evs_store_open(path, &o, out);
    if (rc != 0)
        return bench_evs_fail(c, rc, "evs_store_open");
    return 0;
}

int p9_orch_make(evs_store *st, p9_outcomes *oc, int stop_when_idle,
                 evs_orch **out)
{
    evs_orch_opts oo;
    int rc;

    evs_orch_opts_init(&oo);
    oo.stop_when_idle = stop_when_idle;
    oo.on_outcome = on_outcome;
    oo.arg = oc;
    rc = evs_orch_new(st, &oo, out);
    if (rc == 0 &&
        (rc = evs_orch_register(*out, "noop", noop_action, NULL, 0)) != 0) {
        evs_orch_free(*out);
        *out = NULL;
    }
    return rc;
}

int p9_run_batch(bench_ctx *c, evs_store *st, const char *def, size_t n,
                 evs_outcome want, p9_exec_id *ids, double *secs)
{
    evs_orch *o = NULL;
    p9_outcomes oc;
    evs_error_info we;
    uint64_t t0;
    size_t started = 0, got;
    int rc = -1, err;

    memset(&oc, 0, sizeof(oc));
    if ((err = p9_orch_make(st, &oc, 1, &o)) != 0)
        return bench_evs_fail(c, err, "evs_orch_new");
    t0 = bench_now_ns();
    for (; started < n; started++) {
        err = evs_orch_start(o, evs_span_cstr(def), (evs_span){0},
                             (evs_span){0}, ids[started], &we);
        if (err != 0) {
            bench_fail(c, "evs_orch_start: %s (%s) %s", evs_strerror(err),
                       evs_err_name(err), we.msg);
            break;
        }
    }
    /* With a failed start, still run what was started, so that it is
     * released. */
    err = evs_orch_run(o);
    *secs = (double)(bench_now_ns() - t0) / 1e9;
    if (err != 0) {
        bench_fail(c, "evs_orch_run: %s", evs_strerror(err));
        goto out;
    }
    if (started < n)
        goto out;
    if (oc.other) {
        bench_fail(c,
                   "%zu executions did not end as expected; the first: "
                   "%s",
                   oc.other, oc.first_bad);
        goto out;
    }
    got = want == EVS_OUTCOME_COMPLETED ? oc.completed : oc.suspended;
    if (got != n) {
        bench_fail(c, "%zu of %zu executions ended as %s", got, n,
                   evs_outcome_name(want));
        goto out;
    }
    rc = 0;
out:
    evs_orch_free(o);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reading the logs back                                              */
/* ------------------------------------------------------------------ */

static int appends_add(p9_appends *a, evs_span raw, int new_append)
{
    if (new_append) {
        if (a->n + 2 > a->ncap) {
            size_t nc = a->ncap ? a->ncap * 2 : 16;
            size_t *no = realloc(a->off, nc * sizeof(*no));

            if (!no)
                return -ENOMEM;
            a->off = no;
            a->ncap = nc;
        }
        a->off[a->n++] = a->len;
    }
    if (a->len + raw.len > a->cap) {
        size_t nc = (a->len + raw.len) * 2;
        char *nb = realloc(a->buf, nc);

        if (!nb)
            return -ENOMEM;
        a->buf = nb;
        a->cap = nc;
    }
    memcpy(a->buf + a->len, raw.ptr, raw.len);
    a->len += raw.len;
    a->off[a->n] = a->len;
    return 0;
}

static void appends_free(p9_appends *a)
{
    free(a->buf);
    free(a->off);
    memset(a, 0, sizeof(*a));
}

static int span_is(evs_span s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

int p9_count_log(bench_ctx *c, evs_store *st, const char *id, const char *step,
                 p9_log_count *lc, p9_appends *keep)
{
    evs_error_info info;
    evs_log *l = NULL;
    evs_cursor *cur = NULL;
    evs_event ev;
    evs_span raw;
    int rc;

    memset(lc, 0, sizeof(*lc));
    memset(&info, 0, sizeof(info));
    rc = evs_log_open(st, id, strlen(id), 0, &l, NULL, &info);
    if (rc == 0)
        rc = evs_cursor_open(l, 1, 0, &cur, &info);
    while (rc == 0 && (rc = evs_cursor_next(cur, &ev, &raw, &info)) == 1) {
        int first = ev.batch_count <= 1 || ev.sequence == ev.batch_first;

        rc = 0;
        lc->events++;
        lc->appends += (uint64_t)first;
        lc->ended = span_is(ev.event_type, "execution_completed");
        if (!lc->signal_us && span_is(ev.event_type, "signal_received"))
            lc->signal_us = ev.timestamp_us;
        if (step && span_is(ev.step_name, step) &&
            span_is(ev.event_type, "step_started"))
            lc->step_started_us = ev.timestamp_us;
        if (keep && appends_add(keep, raw, first) != 0) {
            rc = -ENOMEM;
            snprintf(info.msg, sizeof(info.msg), "out of memory");
        }
    }
    evs_cursor_close(cur);
    evs_log_close(l);
    if (rc != 0)
        return bench_fail(c, "reading %s back: %s (%s)", id,
                          info.msg[0] ? info.msg : evs_strerror(rc),
                          evs_err_name(rc));
    return 0;
}

int p9_count_logs(bench_ctx *c, evs_store *st, p9_exec_id *ids, size_t n,
                  uint64_t *events, uint64_t *nappends)
{
    p9_log_count lc;

    *events = *nappends = 0;
    for (size_t i = 0; i < n; i++) {
        if (p9_count_log(c, st, ids[i], NULL, &lc, NULL) != 0)
            return -1;
        if (!lc.ended)
            return bench_fail(c,
                              "%s: the log does not end with "
                              "execution_completed",
                              ids[i]);
        *events += lc.events;
        *nappends += lc.appends;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Throughput                                                         */
/* ------------------------------------------------------------------ */

int p9_throughput_once(bench_ctx *c, const char *path, evs_durability d,
                       const evs_io *io, size_t n, p9_tp_result *res,
                       p9_appends *keep, size_t *snap_len)
{
    char spath[4600];
    evs_store *st = NULL;
    p9_exec_id *ids;
    uint64_t events, nappends;
    struct stat sb;
    p9_log_count lc;
    double secs;
    int rc = -1;

    ids = calloc(n, sizeof(*ids));
    if (!ids)
        return bench_fail(c, "out of memory");
    if (p9_open_store(c, path, d, io, &st) != 0)
        goto out;
    if (p9_run_batch(c, st, p9_wf_three, n, EVS_OUTCOME_COMPLETED, ids,
                     &secs) != 0)
        goto out;
    if (p9_count_logs(c, st, ids, n, &events, &nappends) != 0)
        goto out;
    if (keep) {
        if (p9_count_log(c, st, ids[0], NULL, &lc, keep) != 0)
            goto out;
        /* STORE/<id>/snapshot.json (formats/FORMAT.md §1) */
        snprintf(spath, sizeof(spath), "%s/%s/snapshot.json", path, ids[0]);
        if (snap_len)
            *snap_len = stat(spath, &sb) == 0 ? (size_t)sb.st_size : 2048;
    }
    res->wf_s = (double)n / secs;
    res->events = (double)events / (double)n;
    res->appends = (double)nappends / (double)n;
    rc = 0;
out:
    evs_store_close(st);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The scenario                                                       */
/* ------------------------------------------------------------------ */

static double median(double *v, size_t n)
{
    return bench_quantile(v, n, 0.5);
}

/* Every execution an orchestrator owns holds two descriptors (its log
 * and its directory), and one being created a few more: n workflows at
 * once need about 3n. Raises the soft limit to the hard one, and lowers
 * n to what fits. */
static size_t fit_fds(bench_ctx *c, size_t n)
{
    struct rlimit rl;
    size_t fit;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return n;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = rl;

        want.rlim_cur =
            rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    fit = rl.rlim_cur > 512 ? (size_t)(rl.rlim_cur - 256) / 3 : 64;
    if (n > fit) {
        bench_note(c,
                   "P9: %zu workflows at once lowered to %zu to fit "
                   "RLIMIT_NOFILE (%llu)",
                   n, fit, (unsigned long long)rl.rlim_cur);
        n = fit;
    }
    return n;
}

int scen_p9(bench_ctx *c)
{
    /* Before the first use of the threadpool in this process. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    enum { AP_D, LAY_D, LAY_N, NFLOOR };
    size_t nd = c->sz.p9_durable, nn = c->sz.p9_nosync;
    size_t nl = c->sz.p9_latency;
    /* Each repetition leaves thousands of files until the end, and
     * removing files is slow on this machine (ext4 mounted with
     * discard): three repetitions at most, as for conc. */
    size_t reps = c->repeat < 3 ? (size_t)c->repeat : 3;
    bench_row *rd, *rn, *re, *r50, *r99;
    char dir[4200], path[4400];
    p9_appends a = {0};
    char *snap = NULL;
    size_t snap_len = 0;
    p9_tp_result warm, d_last = {0}, n_last = {0};
    double ap_d[BENCH_MAX_REPEAT], ap_n[BENCH_MAX_REPEAT];
    double fl[NFLOOR][BENCH_MAX_REPEAT];
    double warm_io[7], apw;
    p9_lat_run L = {0}, one;
    p9_floor_run fr;
    p9_io_counts ioc;
    int rc = -1;

    bench_path(dir, sizeof(dir), c->root, "p9");
    if (mkdir(dir, 0700) != 0)
        return bench_fail(c, "mkdir %s: %s", dir, strerror(errno));
    nd = fit_fds(c, nd);
    nn = fit_fds(c, nn);
    L.lat = calloc(nl * reps, sizeof(double));
    L.post = calloc(nl * reps, sizeof(double));
    L.pick = calloc(nl * reps, sizeof(double));
    L.step = calloc(nl * reps, sizeof(double));
    if (!L.lat || !L.post || !L.pick || !L.step) {
        bench_fail(c, "out of memory");
        goto out;
    }

    /* The warm-up: a few durable workflows through the counting table;
     * it also gives the floors one workflow's appends and snapshot. */
    bench_progress(c, 1, "p9: warm-up");
    bench_path(path, sizeof(path), dir, "warm");
    if (p9_throughput_once(c, path, EVS_SYNC_FULL, p9_io_counting(),
                           WARM_WORKFLOWS, &warm, &a, &snap_len) != 0)
        goto out;
    p9_io_counted(&ioc);
    warm_io[0] = (double)ioc.syncs;
    warm_io[1] = (double)ioc.loop_syncs;
    warm_io[2] = (double)ioc.opens;
    warm_io[3] = (double)ioc.mkdirs;
    warm_io[4] = (double)ioc.renames;
    warm_io[5] = (double)ioc.writes;
    warm_io[6] = (double)ioc.loop_calls;
    for (int k = 0; k < 7; k++)
        warm_io[k] /= WARM_WORKFLOWS;
    if (a.n < 2 || !(snap = malloc(snap_len))) {
        bench_fail(c, "warm-up: %zu appends read back", a.n);
        goto out;
    }
    memset(snap, 'x', snap_len);

    rd = bench_row_add(c, "P9", "3-step workflows, durable", "workflows/s", 0);
    rn = bench_row_add(c, "P9", "3-step workflows, no sync", "workflows/s", 0);
    re = bench_row_add(c, "P9", "3-step workflows, no sync", "events/s", 0);
    r50 = bench_row_add(c, "P9",
                        "event from another process to the next "
                        "step_started: p50",
                        "µs", 1);
    r99 = bench_row_add(c, "P9",
                        "event from another process to the next "
                        "step_started: p99",
                        "µs", 1);
    memset(&fr, 0, sizeof(fr));
    fr.a = &a;
    fr.snap = snap;
    fr.snap_len = snap_len;
    for (size_t rep = 0; rep < reps; rep++) {
        int r1 = (int)rep + 1;

        /* Durable: the floors, then evstore. */
        bench_progress(c, 1, "p9 rep %d/%zu: floors, durable", r1, reps);
        fr.layout = 0;
        fr.sync = 1;
        if ((fl[AP_D][rep] = p9_floor_rate(c, &fr, nd * a.n)) < 0)
            goto out;
        fr.layout = 1;
        snprintf(fr.dir, sizeof(fr.dir), "%s/floor-durable-%d", dir, r1);
        if ((fl[LAY_D][rep] = p9_floor_rate(c, &fr, nd)) < 0)
            goto out;
        bench_progress(c, 1, "p9 rep %d/%zu: %zu durable workflows", r1, reps,
                       nd);
        snprintf(path, sizeof(path), "%s/durable-%d", dir, r1);
        if (p9_throughput_once(c, path, EVS_SYNC_FULL, NULL, nd, &d_last, NULL,
                               NULL) != 0)
            goto out;
        ap_d[rep] = d_last.appends;
        bench_row_push(rd, SYS_EVSTORE, d_last.wf_s);

        /* No sync: the layout floor, then evstore. */
        bench_progress(c, 1, "p9 rep %d/%zu: floor, no sync", r1, reps);
        fr.sync = 0;
        snprintf(fr.dir, sizeof(fr.dir), "%s/floor-nosync-%d", dir, r1);
        if ((fl[LAY_N][rep] = p9_floor_rate(c, &fr, nn)) < 0)
            goto out;
        bench_progress(c, 1, "p9 rep %d/%zu: %zu workflows, no sync", r1, reps,
                       nn);
        snprintf(path, sizeof(path), "%s/nosync-%d", dir, r1);
        if (p9_throughput_once(c, path, EVS_SYNC_NONE, NULL, nn, &n_last, NULL,
                               NULL) != 0)
            goto out;
        ap_n[rep] = n_last.appends;
        bench_row_push(rn, SYS_EVSTORE, n_last.wf_s);
        bench_row_push(re, SYS_EVSTORE, n_last.wf_s * n_last.events);
        bench_row_push(rn, SYS_FLOOR, fl[LAY_N][rep]);
        bench_row_push(re, SYS_FLOOR, fl[LAY_N][rep] * n_last.events);

        /* Latency. */
        bench_progress(c, 1, "p9 rep %d/%zu: latency", r1, reps);
        snprintf(path, sizeof(path), "%s/latency-%d", dir, r1);
        one.lat = L.lat + rep * nl;
        one.post = L.post + rep * nl;
        one.pick = L.pick + rep * nl;
        one.step = L.step + rep * nl;
        if (p9_latency_run(c, path, nl, &one) != 0)
            goto out;
        bench_row_push(r50, SYS_EVSTORE, bench_quantile(one.lat, nl, 0.5));
        bench_row_push(r99, SYS_EVSTORE, bench_quantile(one.lat, nl, 0.99));
    }
    /* The same workflows on the database backends; one repetition in
     * --quick, which only checks that they run. */
    if (p9_backends(c, nd, nn, c->quick ? 1 : reps) != 0)
        goto out;
    /* The durable floor in workflows: the append rate over the appends a
     * workflow really took. */
    apw = median(ap_d, reps);
    for (size_t rep = 0; rep < reps; rep++)
        bench_row_push(rd, SYS_FLOOR, fl[AP_D][rep] / apw);
    bench_row_target(rd, "≥ 1000 workflows/s");
    bench_row_judge(rd, bench_row_median(rd, SYS_EVSTORE) >= 1000);
    bench_row_target(rn, "≥ 30000 workflows/s");
    bench_row_judge(rn, bench_row_median(rn, SYS_EVSTORE) >= 30000);

    bench_note(c,
               "P9: %zu durable and %zu unsynced 3-step workflows "
               "started at once per repetition (%zu repetitions) on one "
               "orchestrator (own loop, stop_when_idle), a no-op C action "
               "completing on the loop thread; from the first "
               "evs_orch_start to the end of evs_orch_run",
               nd, nn, reps);
    bench_note(c,
               "P9: read back from the logs, per workflow: %.2f appends "
               "(%.1f events) durable, %.2f appends (%.1f events) no sync, "
               "the creation's included; one workflow's appends are %zu "
               "bytes",
               apw, d_last.events, median(ap_n, reps), n_last.events, a.len);
    bench_note(c,
               "P9 warm-up through a counting I/O table, per durable "
               "workflow: %.1f syncs (fsync+fdatasync), %.1f of them on the "
               "loop thread; %.1f opens, %.1f mkdirs, %.1f renames, %.1f "
               "writes; %.1f of these calls on the loop thread",
               warm_io[0], warm_io[1], warm_io[2], warm_io[3], warm_io[4],
               warm_io[5], warm_io[6]);
    bench_note(c,
               "P9 durable floor: %d threads (the threadpool size the "
               "orchestrator runs with here) each writing one workflow's "
               "appends in turn with "
               "fdatasync after each, %.0f appends/s, divided by %.2f "
               "appends per workflow",
               P9_FLOOR_THREADS, median(fl[AP_D], reps), apw);
    bench_note(c,
               "P9 layout floor (%d threads, raw calls: temp directory "
               "with log and snapshot by rename, renamed into place; the "
               "other appends; final snapshot by rename): "
               "%.0f workflows/s with its 7 syncs, %.0f without (the "
               "no-sync rows' floor)",
               P9_FLOOR_THREADS, median(fl[LAY_D], reps),
               median(fl[LAY_N], reps));
    bench_note(c,
               "P9 latency: %zu executions per repetition wait on an "
               "event; a forked runner (evs_orch_resume, EVS_SYNC_FULL) "
               "takes each over, then this process calls evs_orch_post; "
               "medians over all: evs_orch_post returns after %.0f µs, "
               "signal_received is stamped at %.0f µs, step_started %.0f "
               "µs after it",
               nl, median(L.post, nl * reps), median(L.pick, nl * reps),
               median(L.step, nl * reps));
    rc = 0;
out:
    if (!c->keep)
        floor_rm_rf(dir);
    appends_free(&a);
    free(snap);
    free(L.lat);
    free(L.post);
    free(L.pick);
    free(L.step);
    return rc;
}
