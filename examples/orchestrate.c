/*
 * orchestrate.c: the README's orchestrator in C, whole. A host with its
 * own libuv loop runs a one-step workflow whose action, "llm", is a C
 * function; the orchestrator records every decision and outcome, so a
 * crash at any moment is recovered by the next run's evs_orch_recover.
 *
 * The part between the README markers is the README's snippet, byte for
 * byte (scripts/check-readme compares them). Under strict C11 it builds
 * with -D_POSIX_C_SOURCE=200809L, which libuv's headers need
 * (evstore/orchestrator.h); it links libevstore and libuv.
 *
 * Usage: orchestrate STORE_DIR
 * Prints the execution's id and outcome; exits 0 once it has completed.
 */
/* README: orchestrate: begin */
#include <evstore.h>
#include <evstore/orchestrator.h>

#include <stdio.h>
#include <string.h>

/* What the host keeps of the run. */
struct host {
    int action_rc; /* the first failed evs_action_complete, or 0 */
    int completed; /* the started execution completed */
    char id[EVS_ID_MAX + 1];
};

static const char definition[] =
    "{\"name\":\"summarize\",\"inputs\":{\"topic\":{\"type\":\"string\"}},"
    "\"steps\":[{\"name\":\"draft\",\"kind\":\"action\",\"action\":\"llm\","
    "\"params\":{\"topic\":\"${inputs.topic}\"},\"store\":\"draft\"}]}";

/* The action "llm". This one answers at once; a real one starts the work
 * and completes the request later, from any thread. c->idempotency_key
 * is the same for every attempt of the step: the host deduplicates on
 * it. */
static void call_llm(void *arg, evs_action_req *req)
{
    struct host *h = arg;
    const evs_action_call *c = evs_action_req_call(req);
    int rc;

    (void)c; /* c->input: the step's params, rendered, as JSON */
    rc = evs_action_complete(req, evs_span_cstr("{\"text\":\"...\"}"));
    if (rc != 0 && h->action_rc == 0)
        h->action_rc = rc;
}

static void on_outcome(void *arg, const char *id, evs_outcome oc, int err)
{
    struct host *h = arg;

    printf("%s: %s\n", id, evs_outcome_name(oc));
    if (strcmp(id, h->id) == 0 && oc == EVS_OUTCOME_COMPLETED && err == 0)
        h->completed = 1;
}

static int orchestrate(evs_store *st, uv_loop_t *loop, struct host *h)
{
    evs_orch *o;
    evs_orch_opts oo;
    evs_error_info why;
    int rc;

    evs_orch_opts_init(&oo);
    oo.loop = loop;        /* the host's loop; NULL: evs_orch_run() */
    oo.stop_when_idle = 1; /* let go once nothing can go on */
    oo.on_outcome = on_outcome;
    oo.arg = h;
    if ((rc = evs_orch_new(st, &oo, &o)) != 0)
        return rc;
    if ((rc = evs_orch_register(o, "llm", call_llm, h, 0)) != 0 ||
        (rc = evs_orch_recover(o, NULL)) != 0 || /* take over unfinished
                                                     runs */
        (rc = evs_orch_start(o, evs_span_cstr(definition),
                             evs_span_cstr("{\"topic\":\"durability\"}"),
                             (evs_span){0}, h->id, &why)) != 0) {
        if (rc == EVS_EPARSE)
            fprintf(stderr, "refused: %s%s%s\n", why.step,
                    why.step[0] ? ": " : "", why.msg);
        evs_orch_stop(o, 0); /* nothing more to run: close its handles */
    }
    uv_run(loop, UV_RUN_DEFAULT); /* the host's loop, with the run on it */
    evs_orch_free(o);
    return rc;
}
/* README: orchestrate: end */

int main(int argc, char **argv)
{
    evs_store *st = NULL;
    uv_loop_t loop;
    struct host h;
    int rc, lrc;

    if (argc != 2) {
        fprintf(stderr, "usage: orchestrate STORE_DIR\n");
        return 2;
    }
    memset(&h, 0, sizeof(h));
    if ((rc = uv_loop_init(&loop)) != 0) {
        fprintf(stderr, "orchestrate: uv_loop_init: %s\n", uv_strerror(rc));
        return 1;
    }
    if ((rc = evs_store_open(argv[1], NULL, &st)) == 0)
        rc = orchestrate(st, &loop, &h);
    evs_store_close(st);
    if ((lrc = uv_loop_close(&loop)) != 0 && rc == 0) {
        fprintf(stderr, "orchestrate: uv_loop_close: %s\n", uv_strerror(lrc));
        return 1;
    }
    if (rc != 0 || h.action_rc != 0) {
        rc = rc ? rc : h.action_rc;
        fprintf(stderr, "orchestrate: %s (%s)\n", evs_strerror(rc),
                evs_err_name(rc));
        return 1;
    }
    if (!h.completed) {
        fprintf(stderr, "orchestrate: %s did not complete\n", h.id);
        return 1;
    }
    return 0;
}
