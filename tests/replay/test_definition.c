/*
 * test_definition.c: per-step hashes of a definition, and checking a
 * history against a changed definition.
 */
#include <criterion/criterion.h>

#include "evstore.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static evs_replay *rp;
static uint64_t seq;

static void apply(const char *type, const char *step, const char *data)
{
    evs_event e;

    memset(&e, 0, sizeof(e));
    e.id = evs_span_cstr("x");
    e.execution_id = evs_span_cstr("def");
    e.path_id = evs_span_cstr("main");
    e.sequence = ++seq;
    e.timestamp_us = 1;
    e.event_type = evs_span_cstr(type);
    e.step_name = evs_span_cstr(step);
    e.data = evs_span_cstr(data);
    cr_assert_eq(evs_replay_apply(rp, &e, NULL), 0, "%s", type);
}

static void hash_of(const char *step, char out[EVS_STEP_HASH_LEN + 1])
{
    cr_assert_eq(evs_replay_step_hash(step, strlen(step), out), 0);
}

/* Starts a step the way the orchestrator will: with its kind and hash. */
static void run_step(const char *name, const char *kind, const char *json)
{
    char h[EVS_STEP_HASH_LEN + 1], data[256];

    hash_of(json, h);
    snprintf(data, sizeof(data),
             "{\"attempt\":1,\"kind\":\"%s\","
             "\"step_hash\":\"%s\"}",
             kind, h);
    apply("step_started", name, data);
    apply("step_completed", name, "{\"output\":1}");
}

static void setup(void)
{
    seq = 0;
    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    apply("execution_started", "", "{\"workflow_name\":\"w\"}");
    run_step("plan", "action",
             "{\"name\":\"plan\",\"kind\":\"action\","
             "\"action\":\"llm\",\"params\":{\"t\":0}}");
    run_step("nap", "sleep",
             "{\"name\":\"nap\",\"kind\":\"sleep\","
             "\"duration\":\"5s\"}");
}

static void teardown(void)
{
    evs_replay_free(rp);
}

TestSuite(definition, .init = setup, .fini = teardown);

typedef struct found {
    char step[32][32];
    evs_step_change change[32];
    size_t n;
} found;

static int collect(void *arg, const evs_step_diff *d)
{
    found *f = arg;

    snprintf(f->step[f->n], sizeof(f->step[0]), "%.*s", (int)d->step.len,
             d->step.ptr);
    f->change[f->n++] = d->change;
    return 0;
}

static size_t check(const char *def, found *f)
{
    size_t n = 99;

    memset(f, 0, sizeof(*f));
    cr_assert_eq(
        evs_replay_check_definition(rp, def, strlen(def), collect, f, &n), 0);
    cr_assert_eq(n, f->n);
    return n;
}

Test(definition, hash_ignores_formatting_and_member_order)
{
    char a[17], b[17], c[17];

    hash_of(
        "{\"name\":\"s\",\"kind\":\"action\",\"params\":{\"a\":1,\"b\":[1,2]}}",
        a);
    hash_of(
        "{ \"params\" : { \"b\" : [1, 2], \"a\" : 1 },\n \"kind\":\"action\","
        " \"name\": \"s\" }",
        b);
    hash_of(
        "{\"name\":\"s\",\"kind\":\"action\",\"params\":{\"a\":1,\"b\":[2,1]}}",
        c);
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c, "array order counts");
    cr_assert_eq(evs_replay_step_hash("{\"a\":", 5, a), EVS_EPARSE);
}

Test(definition, the_same_definition_is_compatible)
{
    found f;

    cr_assert_eq(
        check("{\"name\":\"w\",\"steps\":["
              "{\"kind\":\"action\",\"name\":\"plan\",\"params\":{\"t\":0},"
              "\"action\":\"llm\"},"
              "{\"name\":\"nap\",\"kind\":\"sleep\",\"duration\":\"5s\"},"
              "{\"name\":\"new\",\"kind\":\"end\"}]}",
              &f),
        0, "a reordered step and an added step change nothing");
}

Test(definition, removed_kind_changed_and_changed_steps_are_named)
{
    found f;

    cr_assert_eq(check("{\"steps\":[{\"name\":\"plan\",\"kind\":\"action\","
                       "\"action\":\"llm\",\"params\":{\"t\":1}}]}",
                       &f),
                 2);
    cr_assert_str_eq(f.step[0], "plan");
    cr_assert_eq(f.change[0], EVS_STEP_CHANGED);
    cr_assert_str_eq(f.step[1], "nap");
    cr_assert_eq(f.change[1], EVS_STEP_REMOVED);

    cr_assert_eq(check("{\"steps\":[{\"name\":\"plan\",\"kind\":\"action\","
                       "\"action\":\"llm\",\"params\":{\"t\":0}},"
                       "{\"name\":\"nap\",\"kind\":\"wait_event\"}]}",
                       &f),
                 1);
    cr_assert_str_eq(f.step[0], "nap");
    cr_assert_eq(f.change[0], EVS_STEP_KIND_CHANGED);
}

Test(definition, a_bad_definition_is_refused)
{
    size_t n;

    cr_assert_eq(evs_replay_check_definition(rp, "{}", 2, NULL, NULL, &n),
                 EVS_EPARSE);
    cr_assert_eq(
        evs_replay_check_definition(rp, "{\"steps\":[{}]}", 14, NULL, NULL, &n),
        EVS_EPARSE);
    cr_assert_eq(evs_replay_check_definition(rp, "[", 1, NULL, NULL, &n),
                 EVS_EPARSE);
}
