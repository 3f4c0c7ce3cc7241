/*
 * test_inspect.c: the JSON views of evstore/inspect.h over a small store
 * made by hand (ids, times and snapshots all known): the listing with
 * its filters and pages, a range of events, a state as of a sequence and
 * a lineage chain, each to the byte; refused filters; a missing
 * execution; a damaged log; and every allocation failing in turn. Every
 * string handed out is checked to be JSON.
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;
static evs_store *st;

static void setup(void)
{
    tu_fresh_store("inspect", &dir, &st);
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
}

TestSuite(inspect, .init = setup, .fini = teardown, .timeout = 60);

/* 2025-11-24T16:00:00Z. An execution made at second k has its events at
 * T0 + k s + seq ms, and its snapshot made at T0 + k s. */
#define T0 INT64_C(1764000000000000)
#define SEC INT64_C(1000000)

/* One event: type, step (NULL: none), data. */
typedef struct spec {
    const char *type, *step, *data;
} spec;

/* events[0..n) of execution `id` from sequence `seq`, made at second k:
 * ids "<id>-<seq>", path "main". ids[] holds the id strings. */
static void fill(evs_event *ev, char ids[][40], const char *id, int k,
                 uint64_t seq, const spec *sp, size_t n)
{
    for (size_t i = 0; i < n; i++, seq++) {
        ev[i] = tu_event(sp[i].type, sp[i].step, sp[i].data);
        snprintf(ids[i], 40, "%s-%" PRIu64, id, seq);
        ev[i].id = evs_span_cstr(ids[i]);
        ev[i].timestamp_us = T0 + k * SEC + (int64_t)seq * 1000;
    }
}

/* Creates execution `id` at second k with the events sp[0..n) and a
 * snapshot: workflow `wf`, `status`, started at second k, updated half a
 * second later. */
static void create(const char *id, int k, const char *wf, const char *status,
                   const spec *sp, size_t n)
{
    evs_event ev[8];
    char ids[8][40];
    evs_snapshot sn;

    cr_assert_leq(n, 8);
    fill(ev, ids, id, k, 1, sp, n);
    memset(&sn, 0, sizeof(sn));
    sn.workflow_name = evs_span_cstr(wf);
    sn.status = evs_span_cstr(status);
    sn.start_time_us = T0 + k * SEC;
    sn.created_at_us = T0 + k * SEC;
    sn.updated_at_us = T0 + k * SEC + SEC / 2;
    cr_assert_eq(evs_exec_create(st, id, strlen(id), &sn, ev, n), 0, "%s", id);
}

/* Appends sp[0..n) to `id` (made at second k) as one append. */
static void append(const char *id, int k, const spec *sp, size_t n)
{
    evs_event ev[8];
    char ids[8][40];
    evs_log *l;

    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    fill(ev, ids, id, k, evs_log_last_seq(l) + 1, sp, n);
    cr_assert_eq(evs_log_append(l, ev, n, evs_log_last_seq(l), NULL), 0);
    evs_log_close(l);
}

static const spec started = {"execution_started", NULL,
                             "{\"workflow_name\":\"wf\",\"inputs\":{\"q\":1}}"};

/* Execution "a", made at second 1: six events in four appends, the
 * third of two events. */
static void make_a(void)
{
    static const spec s2[] = {{"step_started", "s1", "{\"attempt\":1}"}};
    static const spec s3[] = {
        {"step_completed", "s1", "{\"output\":\"x\\ny\"}"},
        {"step_started", "s2", "{\"attempt\":1}"}};
    static const spec s5[] = {{"step_completed", "s2", "{\"output\":2}"}};
    static const spec s6[] = {
        {"execution_completed", NULL, "{\"outputs\":{\"r\":2}}"}};

    create("a", 1, "wf", "completed", &started, 1);
    append("a", 1, s2, 1);
    append("a", 1, s3, 2);
    append("a", 1, s5, 1);
    append("a", 1, s6, 1);
}

/* Asserts that s is one JSON document, and returns it. */
static char *json(char *s)
{
    cr_assert_not_null(s);
    cr_assert_eq(evs_json_check(s, strlen(s), 0, NULL, NULL, NULL), 0,
                 "not JSON: %s", s);
    return s;
}

static void done(char *s)
{
    evs_free(evs_store_allocator(st), s);
}

/* Asserts a failure: code rc, *out NULL, and err filled with that code
 * and a one-line message. */
static void assert_failed(int got, int rc, char *out, const evs_error_info *e)
{
    cr_assert_eq(got, rc, "%d (%s), not %d: %s", got, evs_err_name(got), rc,
                 e->msg);
    cr_assert_null(out);
    cr_assert_eq(e->code, rc);
    cr_assert_neq(e->msg[0], '\0', "no message");
    cr_assert_null(strchr(e->msg, '\n'), "%s", e->msg);
}

/* ------------------------------------------------------------------ */
/* The listing                                                        */
/* ------------------------------------------------------------------ */

/* Four executions made at seconds 1 to 4; "d" has a damaged snapshot. */
static void make_four(void)
{
    char *p;

    make_a();
    create("b", 2, "other", "running", &started, 1);
    create("c", 3, "wf", "failed", &started, 1);
    create("d", 4, "wf", "running", &started, 1);
    p = tu_path(dir, "d", "snapshot.json");
    cr_assert_eq(tu_write_file(p, "{", 1), 0);
    free(p);
    tu_forget_index(dir);
}

#define ROW(id, st, wf, k, end, seq)                                           \
    "{\"id\":\"" id "\",\"status\":\"" st "\",\"workflow_name\":\"" wf         \
    "\",\"created_at\":\"2025-11-24T16:00:0" #k ".000000Z\","                  \
    "\"updated_at\":\"2025-11-24T16:00:0" #k ".500000Z\","                     \
    "\"start_time\":\"2025-11-24T16:00:0" #k ".000000Z\",\"end_time\":" end    \
    ",\"last_event_seq\":" #seq ",\"snapshot_ok\":true}"
#define ROW_A ROW("a", "completed", "wf", 1, "null", 1)
#define ROW_B ROW("b", "running", "other", 2, "null", 1)
#define ROW_C ROW("c", "failed", "wf", 3, "null", 1)
#define ROW_D                                                                  \
    "{\"id\":\"d\",\"status\":null,\"workflow_name\":null,"                    \
    "\"created_at\":null,\"updated_at\":null,\"start_time\":null,"             \
    "\"end_time\":null,\"last_event_seq\":null,\"snapshot_ok\":false}"

/* The listing with `filter`, which must succeed. */
static void assert_list(const char *filter, const char *want)
{
    evs_error_info e;
    char *out = NULL;
    int rc = evs_inspect_list(st, filter, &out, &e);

    cr_assert_eq(rc, 0, "%s: %s", filter ? filter : "NULL", e.msg);
    cr_assert_str_eq(json(out), want, "filter %s", filter ? filter : "NULL");
    done(out);
}

Test(inspect, list_gives_every_row_as_evdump_ls_json_does)
{
    make_four();
    /* The snapshot-less row sorts first: its creation time is 0. */
    assert_list(NULL, "{\"total\":4,\"items\":[" ROW_D "," ROW_A "," ROW_B
                      "," ROW_C "]}");
    assert_list("", "{\"total\":4,\"items\":[" ROW_D "," ROW_A "," ROW_B
                    "," ROW_C "]}");
    assert_list(" { } ", "{\"total\":4,\"items\":[" ROW_D "," ROW_A "," ROW_B
                         "," ROW_C "]}");
}

Test(inspect, list_filters_by_status_workflow_and_creation_time)
{
    make_four();
    assert_list("{\"status\":\"running\"}",
                "{\"total\":1,\"items\":[" ROW_B "]}");
    assert_list("{\"workflow\":\"wf\"}",
                "{\"total\":2,\"items\":[" ROW_A "," ROW_C "]}");
    assert_list("{\"workflow\":\"wf\",\"status\":\"failed\"}",
                "{\"total\":1,\"items\":[" ROW_C "]}");
    /* A key and a value written with escapes are read unescaped. */
    assert_list("{\"st\\u0061tus\":\"c\\u006fmpleted\"}",
                "{\"total\":1,\"items\":[" ROW_A "]}");
    /* Times as microseconds, or as RFC 3339 in any offset. */
    assert_list("{\"created_after\":1764000002000000}",
                "{\"total\":2,\"items\":[" ROW_B "," ROW_C "]}");
    assert_list("{\"created_after\":\"2025-11-24T16:00:02Z\","
                "\"created_before\":\"2025-11-24T17:00:03+01:00\"}",
                "{\"total\":1,\"items\":[" ROW_B "]}");
    assert_list("{\"created_before\":1764000002000000}",
                "{\"total\":1,\"items\":[" ROW_A "]}");
    /* Null, the empty string and 0 set no condition. */
    assert_list("{\"status\":null,\"workflow\":\"\",\"created_after\":0,"
                "\"limit\":null}",
                "{\"total\":4,\"items\":[" ROW_D "," ROW_A "," ROW_B "," ROW_C
                "]}");
    assert_list("{\"status\":\"paused\"}", "{\"total\":0,\"items\":[]}");
}

Test(inspect, list_pages_with_offset_and_limit_and_counts_every_match)
{
    make_four();
    assert_list("{\"limit\":2}",
                "{\"total\":4,\"items\":[" ROW_D "," ROW_A "]}");
    assert_list("{\"offset\":2,\"limit\":1}",
                "{\"total\":4,\"items\":[" ROW_B "]}");
    assert_list("{\"offset\":3,\"limit\":10}",
                "{\"total\":4,\"items\":[" ROW_C "]}");
    assert_list("{\"offset\":4}", "{\"total\":4,\"items\":[]}");
    assert_list("{\"workflow\":\"wf\",\"offset\":1,\"limit\":0}",
                "{\"total\":2,\"items\":[" ROW_C "]}");
}

Test(inspect, list_refuses_a_bad_filter_naming_what_is_wrong)
{
    static const struct {
        const char *filter, *says;
    } bad[] = {
        {"{", "not JSON (at byte 1)"},
        {"{\"status\":\"x\"} x", "not JSON"},
        {"\"status\"", "not a JSON object"},
        {"[]", "not a JSON object"},
        {"{\"colour\":\"red\"}", "unknown member \"colour\""},
        {"{\"status\":\"x\",\"Status\":\"y\"}", "unknown member \"Status\""},
        {"{\"limit\":1,\"limit\":2}", "\"limit\" given twice"},
        {"{\"status\":1}", "\"status\" must be a string"},
        {"{\"workflow\":[\"wf\"]}", "\"workflow\" must be a string"},
        {"{\"limit\":-1}", "\"limit\" must be a non-negative integer"},
        {"{\"offset\":1.5}", "\"offset\" must be a non-negative integer"},
        {"{\"limit\":\"5\"}", "\"limit\" must be a non-negative integer"},
        {"{\"created_after\":\"yesterday\"}", "\"created_after\" must be"},
        {"{\"created_before\":true}", "\"created_before\" must be"},
    };

    make_four();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        evs_error_info e;
        char *out = (char *)"untouched";
        int rc = evs_inspect_list(st, bad[i].filter, &out, &e);

        assert_failed(rc, EVS_EPARSE, out, &e);
        cr_assert_str_eq(e.kind, "filter");
        cr_assert(strstr(e.msg, bad[i].says), "%s: %s", bad[i].filter, e.msg);
    }
}

/* ------------------------------------------------------------------ */
/* Events                                                             */
/* ------------------------------------------------------------------ */

/* The lines first..last of `id`'s log, as a JSON array: what evdump show
 * --json prints, joined. Heap memory. */
static char *log_array(const char *id, uint64_t first, uint64_t last)
{
    char *p = tu_path(dir, id, "events.jsonl"), *file, *out, *w;
    const char *line;
    size_t len;
    uint64_t seq = 1;

    file = tu_read_file(p, &len);
    cr_assert_not_null(file);
    out = w = malloc(len + 3);
    *w++ = '[';
    for (line = file; *line; seq++) {
        const char *nl = strchr(line, '\n');
        if (seq >= first && seq <= last) {
            if (w > out + 1)
                *w++ = ',';
            memcpy(w, line, (size_t)(nl - line));
            w += nl - line;
        }
        line = nl + 1;
    }
    *w++ = ']';
    *w = '\0';
    free(file);
    free(p);
    return out;
}

static void assert_events(const char *id, uint64_t from, uint64_t to,
                          uint64_t first, uint64_t last)
{
    evs_error_info e;
    char *out = NULL, *want = log_array(id, first, last);
    int rc = evs_inspect_events(st, id, from, to, &out, &e);

    cr_assert_eq(rc, 0, "%" PRIu64 "..%" PRIu64 ": %s", from, to, e.msg);
    cr_assert_str_eq(json(out), want, "%" PRIu64 "..%" PRIu64, from, to);
    done(out);
    free(want);
}

/* Asserts that `got` begins with the line whose body (up to the comma
 * before its checksum) is `body`, the checksum computed here. */
static void assert_line(const char *got, const char *body)
{
    char want[512];

    snprintf(want, sizeof(want), "%s\"checksum\":\"%016" PRIx64 "\"}", body,
             evs_checksum(body, strlen(body)));
    cr_assert_eq(strncmp(got, want, strlen(want)), 0, "got %s\nwant %s", got,
                 want);
}

Test(inspect, events_are_the_log_lines_as_evdump_show_json_prints_them)
{
    evs_error_info e;
    char *out = NULL;

    make_a();
    cr_assert_eq(evs_inspect_events(st, "a", 0, 0, &out, &e), 0, "%s", e.msg);
    json(out);
    assert_line(out + 1, "{\"v\":1,\"id\":\"a-1\",\"execution_id\":\"a\","
                         "\"path_id\":\"main\",\"sequence\":1,\"timestamp\":"
                         "\"2025-11-24T16:00:01.001000Z\",\"event_type\":"
                         "\"execution_started\",\"step_name\":\"\",\"data\":"
                         "{\"workflow_name\":\"wf\",\"inputs\":{\"q\":1}},");
    /* The first line of the append of two carries its batch. */
    assert_line(strstr(out, "{\"v\":1,\"id\":\"a-3\""),
                "{\"v\":1,\"id\":\"a-3\",\"execution_id\":\"a\","
                "\"path_id\":\"main\",\"sequence\":3,\"batch\":[3,2],"
                "\"timestamp\":\"2025-11-24T16:00:01.003000Z\","
                "\"event_type\":\"step_completed\",\"step_name\":\"s1\","
                "\"data\":{\"output\":\"x\\ny\"},");
    done(out);
    assert_events("a", 0, 0, 1, 6);
    assert_events("a", 1, 6, 1, 6);
    assert_events("a", 3, 4, 3, 4);
    assert_events("a", 4, 0, 4, 6);
    assert_events("a", 0, 2, 1, 2);
    assert_events("a", 6, 99, 6, 6);
    assert_events("a", 5, 5, 5, 5);
}

Test(inspect, events_past_the_end_are_empty_and_a_reversed_range_refused)
{
    evs_error_info e;
    char *out = NULL;

    make_a();
    cr_assert_eq(evs_inspect_events(st, "a", 7, 0, &out, &e), 0, "%s", e.msg);
    cr_assert_str_eq(json(out), "[]");
    done(out);
    out = NULL;
    cr_assert_eq(evs_inspect_events(st, "a", 9, 12, &out, &e), 0);
    cr_assert_str_eq(json(out), "[]");
    done(out);
    out = NULL;
    assert_failed(evs_inspect_events(st, "a", 4, 3, &out, &e), -EINVAL, out,
                  &e);
    cr_assert(strstr(e.msg, "before"), "%s", e.msg);
}

/* ------------------------------------------------------------------ */
/* State                                                              */
/* ------------------------------------------------------------------ */

/* The state of a's events 1..at, replayed here event by event. */
static char *replayed(uint64_t at)
{
    evs_replay *r;
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    char *js, *copy;
    size_t len;

    cr_assert_eq(evs_replay_new(NULL, &r), 0);
    cr_assert_eq(evs_log_open(st, "a", 1, 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 1, at, &c, NULL), 0);
    while (evs_cursor_next(c, &ev, NULL, NULL) == 1)
        cr_assert_eq(evs_replay_apply(r, &ev, NULL), 0);
    evs_cursor_close(c);
    evs_log_close(l);
    cr_assert_eq(evs_replay_state_json(r, &js, &len), 0);
    cr_assert_eq(strlen(js), len, "NUL-terminated");
    copy = strdup(js);
    evs_free(NULL, js);
    evs_replay_free(r);
    return copy;
}

static void assert_state(uint64_t at, uint64_t as_of, const char *status)
{
    evs_error_info e;
    char *out = NULL, *want = replayed(as_of), need[64];

    cr_assert_eq(evs_inspect_state(st, "a", at, &out, &e), 0, "%s", e.msg);
    cr_assert_str_eq(json(out), want, "at %" PRIu64, at);
    snprintf(need, sizeof(need), "{\"v\":5,\"status\":\"%s\"", status);
    cr_assert_eq(strncmp(out, need, strlen(need)), 0, "%s", out);
    snprintf(need, sizeof(need), ",\"last_seq\":%" PRIu64 ",", as_of);
    cr_assert_not_null(strstr(out, need), "%s", out);
    done(out);
    free(want);
}

Test(inspect, state_is_the_replayed_state_as_of_a_sequence)
{
    make_a();
    assert_state(0, 6, "completed");
    assert_state(6, 6, "completed");
    assert_state(3, 3, "running");
    assert_state(1, 1, "running");
}

Test(inspect, state_past_the_end_is_refused_with_the_last_sequence)
{
    evs_error_info e;
    char *out = NULL;

    make_a();
    assert_failed(evs_inspect_state(st, "a", 7, &out, &e), -EINVAL, out, &e);
    cr_assert(strstr(e.msg, "last sequence 6"), "%s", e.msg);
    cr_assert_str_eq(e.execution_id, "a");
}

Test(inspect, state_of_a_history_that_breaks_a_rule_names_the_rule)
{
    static const spec bad[] = {{"step_completed", "nope", "{}"}};
    evs_error_info e;
    char *out = NULL;

    create("h", 1, "wf", "running", &started, 1);
    append("h", 1, bad, 1);
    assert_failed(evs_inspect_state(st, "h", 0, &out, &e), EVS_EHISTORY, out,
                  &e);
    cr_assert_str_eq(e.kind, "step-not-started");
    cr_assert_eq(e.sequence, 2);
    /* As of before it, the state is there. */
    cr_assert_eq(evs_inspect_state(st, "h", 1, &out, &e), 0, "%s", e.msg);
    done(json(out));
}

/* ------------------------------------------------------------------ */
/* Chains                                                             */
/* ------------------------------------------------------------------ */

/* An execution started at second k whose lineage is `lineage`. */
static void linked(const char *id, int k, const char *lineage)
{
    char data[256];
    spec s = {"execution_started", NULL, data};

    snprintf(data, sizeof(data), "{\"workflow_name\":\"wf\",\"lineage\":%s}",
             lineage);
    create(id, k, "wf", "running", &s, 1);
}

/* r1 retried as r2 (from_start), which continued as r3; r1 retried
 * again as r4 (no strategy named); x stands alone; o retries one that
 * is gone. */
static void make_chain(void)
{
    static const spec cont[] = {
        {"execution_continue_as_new", NULL, "{\"successor\":\"r3\"}"}};

    linked("r1", 1, "{}");
    linked("r2", 2, "{\"retry_of\":\"r1\",\"strategy\":\"from_start\"}");
    append("r2", 2, cont, 1);
    linked("r3", 3, "{\"continued_from\":\"r2\"}");
    linked("r4", 4, "{\"retry_of\":\"r1\"}");
    linked("x", 5, "{}");
    linked("o", 6, "{\"retry_of\":\"gone\",\"strategy\":\"from_failure\"}");
}

#define NODE(id, st, k, seq, depth, origin, link)                              \
    "{\"id\":\"" id "\",\"status\":\"" st "\",\"started_at\":"                 \
    "\"2025-11-24T16:00:0" #k ".001000Z\",\"last_event_seq\":" #seq            \
    ",\"depth\":" #depth ",\"origin\":" origin ",\"link\":" link           \
    ",\"archived\":null}"
#define NODE_R1 NODE("r1", "running", 1, 1, 0, "null", "null")
#define NODE_R2 NODE("r2", "continued", 2, 2, 1, "\"r1\"", "\"from_start\"")
#define NODE_R3 NODE("r3", "running", 3, 1, 2, "\"r2\"", "\"continued\"")
#define NODE_R4 NODE("r4", "running", 4, 1, 1, "\"r1\"", "\"retry\"")
#define CHAIN_R "[" NODE_R1 "," NODE_R2 "," NODE_R3 "," NODE_R4 "]"

static void assert_chain(const char *id, const char *want)
{
    evs_error_info e;
    char *out = NULL;

    cr_assert_eq(evs_inspect_chain(st, id, &out, &e), 0, "%s: %s", id, e.msg);
    cr_assert_str_eq(json(out), want, "chain of %s", id);
    done(out);
}

Test(inspect, chain_is_the_whole_lineage_from_any_member)
{
    make_chain();
    assert_chain("r1", CHAIN_R);
    assert_chain("r2", CHAIN_R);
    assert_chain("r3", CHAIN_R);
    assert_chain("r4", CHAIN_R);
    assert_chain("x", "[" NODE("x", "running", 5, 1, 0, "null", "null") "]");
    /* The first names an origin that is not in the store. */
    assert_chain("o", "[" NODE("o", "running", 6, 1, 0, "\"gone\"",
                               "\"from_failure\"") "]");
}

Test(inspect, chain_leaves_out_a_member_that_cannot_be_read)
{
    char *p;

    make_chain();
    p = tu_path(dir, "r2", "events.jsonl");
    cr_assert_eq(tu_flip_bit(p, 20, 0), 0);
    free(p);
    /* r2 is gone from r1's chain, and r3 starts one of its own. */
    assert_chain("r1", "[" NODE_R1 "," NODE_R4 "]");
    assert_chain("r3", "[" NODE("r3", "running", 3, 1, 0, "\"r2\"",
                                "\"continued\"") "]");
}

/* ------------------------------------------------------------------ */
/* What is not there, and damage                                      */
/* ------------------------------------------------------------------ */

Test(inspect, a_missing_or_invalid_execution_is_refused_with_a_message)
{
    evs_error_info e;
    char *out = NULL;

    make_a();
    assert_failed(evs_inspect_events(st, "nope", 0, 0, &out, &e), -ENOENT, out,
                  &e);
    cr_assert_str_eq(e.execution_id, "nope");
    assert_failed(evs_inspect_state(st, "nope", 0, &out, &e), -ENOENT, out, &e);
    cr_assert_str_eq(e.execution_id, "nope");
    assert_failed(evs_inspect_chain(st, "nope", &out, &e), -ENOENT, out, &e);
    cr_assert_str_eq(e.execution_id, "nope");
    assert_failed(evs_inspect_events(st, "../a", 0, 0, &out, &e), EVS_EBADID,
                  out, &e);
    assert_failed(evs_inspect_state(st, "", 0, &out, &e), EVS_EBADID, out, &e);
    assert_failed(evs_inspect_chain(st, NULL, &out, &e), EVS_EBADID, out, &e);
    assert_failed(evs_inspect_list(NULL, NULL, &out, &e), -EINVAL, out, &e);
    cr_assert_eq(evs_inspect_events(st, "a", 0, 0, NULL, &e), -EINVAL);
    /* err may be NULL. */
    cr_assert_eq(evs_inspect_state(st, "nope", 0, &out, NULL), -ENOENT);
    cr_assert_null(out);
}

Test(inspect, damage_in_an_earlier_append_fails_events_state_and_chain)
{
    char *p = tu_path(dir, "a", "events.jsonl"), *file, *at;
    uint64_t off;
    size_t len;
    evs_error_info e;
    char *out = NULL;

    make_a();
    file = tu_read_file(p, &len);
    cr_assert_not_null(file);
    /* Line 3 (the append of two), in its data; appends follow it. */
    at = strchr(strchr(file, '\n') + 1, '\n') + 1;
    off = (uint64_t)(at - file);
    cr_assert_eq(tu_flip_bit(p, (long long)(strstr(at, "x\\ny") - file), 1), 0);
    free(file);
    free(p);

    assert_failed(evs_inspect_events(st, "a", 0, 0, &out, &e), EVS_ECORRUPT,
                  out, &e);
    cr_assert_eq(e.sequence, 3);
    cr_assert_eq(e.offset, off);
    cr_assert_str_eq(e.kind, "checksum");
    cr_assert_str_eq(e.execution_id, "a");
    /* Not skipped: a range that reaches it fails, one before it reads. */
    assert_failed(evs_inspect_events(st, "a", 3, 3, &out, &e), EVS_ECORRUPT,
                  out, &e);
    assert_events("a", 1, 2, 1, 2);

    assert_failed(evs_inspect_state(st, "a", 0, &out, &e), EVS_ECORRUPT, out,
                  &e);
    cr_assert_eq(e.sequence, 3);
    cr_assert_eq(e.offset, off);
    cr_assert_eq(evs_inspect_state(st, "a", 2, &out, &e), 0, "%s", e.msg);
    done(json(out));
    out = NULL;

    assert_failed(evs_inspect_chain(st, "a", &out, &e), EVS_ECORRUPT, out, &e);
    cr_assert_eq(e.sequence, 3);
}

/* ------------------------------------------------------------------ */
/* Allocation failures                                                */
/* ------------------------------------------------------------------ */

typedef int view_fn(evs_store *s, char **out, evs_error_info *e);

static int list_view(evs_store *s, char **out, evs_error_info *e)
{
    return evs_inspect_list(s, "{\"workflow\":\"wf\",\"limit\":5}", out, e);
}

static int events_view(evs_store *s, char **out, evs_error_info *e)
{
    return evs_inspect_events(s, "a", 2, 0, out, e);
}

static int state_view(evs_store *s, char **out, evs_error_info *e)
{
    return evs_inspect_state(s, "a", 4, out, e);
}

static int chain_view(evs_store *s, char **out, evs_error_info *e)
{
    return evs_inspect_chain(s, "r3", out, e);
}

Test(inspect, every_allocation_failure_is_enomem_and_leaks_nothing)
{
    static view_fn *const views[] = {list_view, events_view, state_view,
                                     chain_view};
    static const char *const names[] = {"list", "events", "state", "chain"};
    tu_alloc ta;
    evs_store_opts o;
    evs_store *s;

    make_a();
    make_chain();
    tu_alloc_init(&ta);
    evs_store_opts_init(&o);
    o.alloc = &ta.a;
    /* Each try on a handle of its own, closed before counting: a handle
     * may keep what it read (a file store keeps its listing index), and
     * must free it when it closes. `warm`: a first call without failures
     * filled what the handle keeps, so the failures hit the warm path. */
    for (int warm = 0; warm < 2; warm++) {
        for (size_t v = 0; v < sizeof(views) / sizeof(views[0]); v++) {
            char *want = NULL;
            evs_error_info e;
            long n;

            cr_assert_eq(evs_store_open(dir, &o, &s), 0);
            cr_assert_eq(views[v](s, &want, &e), 0, "%s: %s", names[v],
                         e.msg);
            evs_store_close(s);
            json(want);
            cr_assert_eq(ta.live, 1, "%s: the store left memory behind",
                         names[v]);
            for (n = 1;; n++) {
                char *out = NULL;
                int rc;

                cr_assert_eq(evs_store_open(dir, &o, &s), 0);
                if (warm) {
                    char *first = NULL;
                    cr_assert_eq(views[v](s, &first, &e), 0);
                    evs_free(&ta.a, first);
                }
                tu_alloc_fail(&ta, n, TU_FAIL_ONCE);
                rc = views[v](s, &out, &e);
                tu_alloc_stop(&ta);
                evs_store_close(s);
                if (rc == 0) {
                    cr_assert_str_eq(json(out), want, "%s, n=%ld", names[v],
                                     n);
                    evs_free(&ta.a, out);
                } else {
                    assert_failed(rc, -ENOMEM, out, &e);
                    cr_assert(ta.failed, "%s, n=%ld", names[v], n);
                }
                cr_assert_eq(ta.live, 1, "%s, n=%ld (warm %d): a leak",
                             names[v], n, warm);
                if (!ta.failed)
                    break;
            }
            cr_assert_gt(n, 3, "%s: several allocations were tried",
                         names[v]);
            evs_free(&ta.a, want);
            cr_assert_eq(ta.live, 0);
        }
    }
}
