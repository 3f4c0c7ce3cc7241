/*
 * demo_agent.c: records an agent-like execution into a store, the way an
 * agent framework embedding evstore would, then reads it back.
 *
 * The run plans, calls two tools on parallel paths, waits for an approval
 * signal and summarises. Every event goes through the recorder on a
 * writer's log; the snapshot is written at creation and at the end.
 *
 * Usage: demo_agent STORE_DIR
 */
#include "evstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "demo_agent: %s: %s (%s)\n", what, evs_strerror(rc),
                evs_err_name(rc));
        exit(1);
    }
    return rc;
}

static void rec(evs_recorder *r, const char *path, const char *type,
                const char *step, const char *data)
{
    evs_event e;

    memset(&e, 0, sizeof(e));
    e.path_id = evs_span_cstr(path);
    e.event_type = evs_span_cstr(type);
    e.step_name = evs_span_cstr(step);
    e.data = evs_span_cstr(data);
    check(evs_recorder_record(r, &e, NULL), type);
}

int main(int argc, char **argv)
{
    const char *inputs = "{\"question\":\"Is our p99 latency within "
                         "budget this week?\"}";
    char id[EVS_UUID_LEN + 1], started[256];
    evs_store *st;
    evs_log *log;
    evs_recorder *r;
    evs_snapshot snap;
    evs_cursor *cur;
    evs_event ev;
    evs_recovery_info ri;
    int n = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: demo_agent STORE_DIR\n");
        return 2;
    }
    check(evs_store_open(argv[1], NULL, &st), "opening the store");
    check(evs_uuid7(id), "making an id");

    /* The execution exists, listed as running, from this point on. */
    memset(&snap, 0, sizeof(snap));
    snap.workflow_name = evs_span_cstr("latency-review");
    snap.status = evs_span_cstr("running");
    snap.inputs = evs_span_cstr(inputs);
    snap.start_time_us = evs_now_us();
    snprintf(started, sizeof(started),
             "{\"workflow_name\":\"latency-review\",\"inputs\":%s}", inputs);
    {
        evs_event first;
        memset(&first, 0, sizeof(first));
        first.path_id = evs_span_cstr("main");
        first.event_type = evs_span_cstr(EVS_EV_EXECUTION_STARTED);
        first.data = evs_span_cstr(started);
        check(evs_exec_create(st, id, strlen(id), &snap, &first, 1),
              "creating the execution");
    }

    check(evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &log, &ri, NULL),
          "opening the log");
    check(evs_recorder_open(log, NULL, &r), "making a recorder");

    rec(r, "main", EVS_EV_PATH_STARTED, "", "{\"current_step\":\"plan\"}");
    rec(r, "main", EVS_EV_STEP_STARTED, "plan", "{\"attempt\":1}");
    rec(r, "main", EVS_EV_STEP_COMPLETED, "plan",
        "{\"output\":{\"tools\":[\"metrics.query\",\"incidents.search\"]},"
        "\"stored_variable\":\"plan\"}");
    rec(r, "main", EVS_EV_PATH_BRANCHED, "plan",
        "{\"new_paths\":[{\"id\":\"metrics\",\"current_step\":\"query\"},"
        "{\"id\":\"incidents\",\"current_step\":\"search\"}]}");
    /* The plan is durable before the tools run. */
    check(evs_recorder_flush(r), "flushing");

    rec(r, "metrics", EVS_EV_STEP_STARTED, "query", "{\"attempt\":1}");
    rec(r, "incidents", EVS_EV_STEP_STARTED, "search", "{\"attempt\":1}");
    rec(r, "incidents", EVS_EV_STEP_COMPLETED, "search",
        "{\"output\":{\"open\":1,\"titles\":[\"cache stampede on /search\"]},"
        "\"stored_variable\":\"incidents\"}");
    rec(r, "metrics", EVS_EV_STEP_FAILED, "query",
        "{\"error\":{\"type\":\"Timeout\",\"message\":\"metrics backend "
        "took 30s\",\"retryable\":true}}");
    rec(r, "metrics", EVS_EV_STEP_STARTED, "query", "{\"attempt\":2}");
    rec(r, "metrics", EVS_EV_STEP_COMPLETED, "query",
        "{\"output\":{\"p99_ms\":212,\"budget_ms\":250},"
        "\"stored_variable\":\"latency\"}");
    rec(r, "metrics", EVS_EV_PATH_COMPLETED, "", "{}");
    rec(r, "incidents", EVS_EV_PATH_COMPLETED, "", "{}");
    rec(r, "main", EVS_EV_SIGNAL_RECEIVED, "approve",
        "{\"signal\":\"approval\",\"payload\":{\"by\":\"oncall\","
        "\"approved\":true}}");
    rec(r, "main", EVS_EV_STEP_STARTED, "summarize", "{\"attempt\":1}");
    rec(r, "main", EVS_EV_STEP_COMPLETED, "summarize",
        "{\"output\":\"p99 is 212 ms against a 250 ms budget; one open "
        "incident (cache stampede on /search).\","
        "\"stored_variable\":\"summary\"}");
    rec(r, "main", EVS_EV_EXECUTION_COMPLETED, "",
        "{\"outputs\":{\"within_budget\":true}}");
    check(evs_recorder_flush(r), "flushing");

    snap.status = evs_span_cstr("completed");
    snap.end_time_us = evs_now_us();
    snap.outputs = evs_span_cstr("{\"within_budget\":true}");
    snap.last_event_seq = evs_recorder_flushed_seq(r);
    check(evs_snapshot_save(st, id, strlen(id), &snap), "saving a snapshot");
    evs_recorder_close(r);

    /* Read it back, verifying every line. */
    check(evs_cursor_open(log, 1, 0, &cur, NULL), "opening a cursor");
    while (evs_cursor_next(cur, &ev, NULL, NULL) == 1)
        n++;
    evs_cursor_close(cur);
    printf("recorded execution %s: %d events, last sequence %llu\n", id, n,
           (unsigned long long)evs_log_last_seq(log));
    evs_log_close(log);
    evs_store_close(st);
    return 0;
}
