/*
 * scen_orch_latency.c: P9's latency (scen_orch.c): executions of
 * `wait_event` -> `action` are started and left waiting; for each, a
 * forked child takes it over and runs it while this process posts the
 * event through the inbox, and the latency is read from the log.
 */
#include "evbench.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char wf_wait[] =
    "{\"name\":\"p9-wait\",\"steps\":["
    "{\"name\":\"wait\",\"kind\":\"wait_event\",\"event\":\"go\","
    "\"next\":\"act\"},"
    "{\"name\":\"act\",\"kind\":\"action\",\"action\":\"noop\","
    "\"params\":{\"step\":2}}]}";

/* ------------------------------------------------------------------ */
/* Latency of an event from another process                           */
/* ------------------------------------------------------------------ */

typedef struct ready_timer {
    uv_timer_t h;
    int fd;
} ready_timer;

static void ready_closed(uv_handle_t *h)
{
    (void)h;
}

/* Fires on the child's first loop iteration: the runner owns the
 * execution and watches its inbox, so the parent may post now. */
static void ready_cb(uv_timer_t *h)
{
    ready_timer *r = h->data;
    char b = 'r';

    if (write(r->fd, &b, 1) != 1)
        _exit(5);
    close(r->fd);
    uv_close((uv_handle_t *)h, ready_closed);
}

/* The child: runs execution `id` until it ends. Never returns. */
static void runner_child(const char *store_path, const char *id, int fd)
{
    evs_store *st = NULL;
    evs_orch *o = NULL;
    p9_outcomes oc;
    ready_timer rt;
    int rc;

    /* A runner that hangs must not hang the benchmark. */
    alarm(30);
    memset(&oc, 0, sizeof(oc));
    if (evs_store_open(store_path, NULL, &st) != 0 ||
        p9_orch_make(st, &oc, 0, &o) != 0)
        _exit(2);
    oc.stop = o;
    if (evs_orch_resume(o, evs_span_cstr(id)) != 0)
        _exit(3);
    rt.fd = fd;
    uv_timer_init(evs_orch_loop(o), &rt.h);
    rt.h.data = &rt;
    uv_timer_start(&rt.h, ready_cb, 0, 0);
    rc = evs_orch_run(o);
    evs_orch_free(o);
    evs_store_close(st);
    _exit(rc == 0 && oc.completed == 1 && oc.other == 0 ? 0 : 4);
}

/* Has execution `id` taken over by a child and posts its event; *t_post
 * is the wall-clock time just before the post, *t_done just after. */
static int latency_once(bench_ctx *c, evs_store *st, const char *path,
                        const char *id, int64_t *t_post, int64_t *t_done)
{
    int fds[2], status = 0, rc = -1;
    pid_t pid;
    char b;
    ssize_t got;

    if (pipe(fds) != 0)
        return bench_fail(c, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return bench_fail(c, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        runner_child(path, id, fds[1]);
    }
    close(fds[1]);
    do
        got = read(fds[0], &b, 1);
    while (got < 0 && errno == EINTR);
    close(fds[0]);
    if (got != 1) {
        bench_fail(c, "the runner of %s did not start", id);
        kill(pid, SIGKILL);
        goto wait;
    }
    *t_post = evs_now_us();
    rc = evs_orch_post(st, evs_span_cstr(id), evs_span_cstr("event"),
                       evs_span_cstr("go"), evs_span_cstr("{\"ok\":true}"));
    *t_done = evs_now_us();
    if (rc != 0) {
        bench_evs_fail(c, rc, "evs_orch_post");
        rc = -1;
        kill(pid, SIGKILL);
    }
wait:
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = bench_fail(c, "the runner of %s failed (status 0x%x)", id,
                        (unsigned)status);
    return rc;
}

int p9_latency_run(bench_ctx *c, const char *path, size_t n, p9_lat_run *out)
{
    evs_store *st = NULL;
    p9_exec_id *ids;
    int64_t *t_post = NULL, *t_done = NULL;
    p9_log_count lc;
    double secs;
    int rc = -1;

    ids = calloc(n, sizeof(*ids));
    t_post = calloc(n, sizeof(*t_post));
    t_done = calloc(n, sizeof(*t_done));
    if (!ids || !t_post || !t_done) {
        bench_fail(c, "out of memory");
        goto out;
    }
    if (p9_open_store(c, path, EVS_SYNC_FULL, NULL, &st) != 0)
        goto out;
    if (p9_run_batch(c, st, wf_wait, n, EVS_OUTCOME_SUSPENDED, ids, &secs) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        bench_progress(c, 0, "p9: latency %zu/%zu", i + 1, n);
        if (latency_once(c, st, path, ids[i], &t_post[i], &t_done[i]) != 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (p9_count_log(c, st, ids[i], "act", &lc, NULL) != 0)
            goto out;
        if (!lc.ended || !lc.step_started_us || !lc.signal_us) {
            bench_fail(c,
                       "%s: no signal_received or step_started of "
                       "'act', or not completed",
                       ids[i]);
            goto out;
        }
        out->lat[i] = (double)(lc.step_started_us - t_post[i]);
        out->post[i] = (double)(t_done[i] - t_post[i]);
        out->pick[i] = (double)(lc.signal_us - t_post[i]);
        out->step[i] = (double)(lc.step_started_us - lc.signal_us);
    }
    rc = 0;
out:
    evs_store_close(st);
    free(ids);
    free(t_post);
    free(t_done);
    return rc;
}
