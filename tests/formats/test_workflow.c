/*
 * test_workflow.c: workflow definitions (formats/workflow.c and
 * workflow_eval.c): parsing every member back, every refusal, the hash,
 * conditions, templates, inputs, retry policies and allocation failures.
 */
#include <criterion/criterion.h>

#include "evstore.h"
#include "formats_int.h"
#include "tu_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static evs_wf_def *parse_ok(const char *json)
{
    evs_wf_def *d = NULL;
    evs_error_info e;
    int rc = evs_wf_parse(json, strlen(json), NULL, NULL, NULL, &d, &e);

    cr_assert_eq(rc, 0, "refused (%d): step \"%s\": %s\n%s", rc, e.step, e.msg,
                 json);
    cr_assert_not_null(d);
    return d;
}

static int span_is(evs_span s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

#define assert_span(s, want)                                                   \
    cr_assert(span_is((s), (want)), "got \"%.*s\", want \"%s\"", (int)(s).len, \
              (s).ptr ? (s).ptr : "", (want))

static const char full_def[] =
    "{\n"
    "  \"name\": \"full\",\n"
    "  \"version\": 3,\n"
    "  \"inputs\": {\n"
    "    \"topic\": {\"type\": \"string\", \"required\": true},\n"
    "    \"n\": {\"type\": \"integer\", \"default\": 2},\n"
    "    \"free\": {}\n"
    "  },\n"
    "  \"outputs\": {\"summary\": \"${vars.summary}\"},\n"
    "  \"steps\": [\n"
    "    {\"name\": \"plan\", \"kind\": \"action\", \"action\": \"llm\",\n"
    "     \"params\": {\"q\": \"${inputs.topic}\", \"k\": 1.50},\n"
    "     \"timeout_ms\": 5000, \"store\": \"plan\",\n"
    "     \"retry\": {\"max_attempts\": 5, \"initial_interval_ms\": 200,\n"
    "               \"backoff_coefficient\": 1.5, \"max_interval_ms\": 3000,\n"
    "               \"jitter\": 0.25,\n"
    "               \"non_retryable\": [\"bad_input\", \"auth\"]},\n"
    "     \"next\": [{\"to\": \"search\", \"path\": \"web\"},\n"
    "              {\"to\": \"fetch\", \"path\": \"docs\",\n"
    "               \"when\": {\"eq\": [\"${steps.plan.output.fetch}\", "
    "true]}}],\n"
    "     \"then\": \"gather\"},\n"
    "    {\"name\": \"search\", \"kind\": \"action\",\n"
    "     \"action\": \"exec:search --json\", \"each\": [\"a\", \"b\"],\n"
    "     \"params\": {\"q\": \"${item}\", \"i\": \"${index}\"}},\n"
    "    {\"name\": \"fetch\", \"kind\": \"action\", \"action\": \"tool\",\n"
    "     \"retry\": {}},\n"
    "    {\"name\": \"gather\", \"kind\": \"join\", \"paths\": [\"web\", "
    "\"docs\"],\n"
    "     \"mode\": \"any\", \"store\": \"found\", \"next\": \"nap\"},\n"
    "    {\"name\": \"nap\", \"kind\": \"sleep\", \"duration_ms\": 1500,\n"
    "     \"next\": \"nap2\"},\n"
    "    {\"name\": \"nap2\", \"kind\": \"sleep\",\n"
    "     \"duration_ms\": \"${inputs.n}\", \"next\": \"nap3\"},\n"
    "    {\"name\": \"nap3\", \"kind\": \"sleep\",\n"
    "     \"until\": \"2026-11-22T10:15:30Z\", \"next\": \"approve\"},\n"
    "    {\"name\": \"approve\", \"kind\": \"wait_event\",\n"
    "     \"event\": \"approval\", \"timeout_ms\": 60000, \"store\": "
    "\"verdict\",\n"
    "     \"next\": [{\"to\": \"done\",\n"
    "               \"when\": {\"eq\": [\"${vars.verdict.ok}\", true]}},\n"
    "              {\"to\": \"all\", \"path\": \"rest\"}]},\n"
    "    {\"name\": \"all\", \"kind\": \"join\", \"paths\": \"*\", "
    "\"next\": \"done\"},\n"
    "    {\"name\": \"done\", \"kind\": \"end\"}\n"
    "  ]\n"
    "}\n";

/* The resolvers of the evaluation tests: one variable, one step. */
static int var_fn(void *arg, evs_span name, evs_span *value)
{
    (void)arg;
    if (span_is(name, "v")) {
        *value = evs_span_cstr("{\"ok\": true, \"score\": 0.9}");
        return 0;
    }
    if (span_is(name, "bad")) {
        *value = evs_span_cstr("{oops");
        return 0;
    }
    return -ENOENT;
}

static int step_fn(void *arg, evs_span step, evs_span *value)
{
    (void)arg;
    if (span_is(step, "a")) {
        *value = evs_span_cstr("{\"text\":\"done\",\"n\":[10,20]}");
        return 0;
    }
    return -ENOENT;
}

static const char ctx_inputs[] =
    "{\"n\":1,\"f\":1.5,\"k\":1.50,\"s\":\"hello world\","
    "\"q\":\"say \\\"hi\\\"\\n\",\"list\":[1,\"two\",{\"a\":1}],"
    "\"obj\":{\"a\":1,\"b\":[1,2]},\"t\":true,\"z\":null,\"k\\u0065y\":7}";

static evs_wf_ctx make_ctx(void)
{
    evs_wf_ctx c;

    memset(&c, 0, sizeof(c));
    c.inputs = evs_span_cstr(ctx_inputs);
    c.index = -1;
    c.var = var_fn;
    c.step_output = step_fn;
    return c;
}

/* ------------------------------------------------------------------ */
/* A full definition                                                  */
/* ------------------------------------------------------------------ */

Test(workflow, reads_back_every_member_of_a_full_definition)
{
    evs_wf_def *d = parse_ok(full_def);
    const evs_wf_step *s;
    char compact[sizeof(full_def)];
    size_t n;

    cr_assert_str_eq(d->name, "full");
    cr_assert_eq(d->version, 3);
    cr_assert_eq(strlen(d->hash), 16);

    cr_assert_eq(evs_json_check(full_def, strlen(full_def), EVS_JSON_MINIFY,
                                compact, &n, NULL),
                 0);
    cr_assert(d->json.len == n && memcmp(d->json.ptr, compact, n) == 0);

    cr_assert_eq(d->n_inputs, 3);
    cr_assert_str_eq(d->inputs[0].name, "topic");
    cr_assert_str_eq(d->inputs[0].type, "string");
    cr_assert_eq(d->inputs[0].required, 1);
    cr_assert_eq(d->inputs[0].default_value.len, 0);
    cr_assert_str_eq(d->inputs[1].name, "n");
    cr_assert_str_eq(d->inputs[1].type, "integer");
    cr_assert_eq(d->inputs[1].required, 0);
    assert_span(d->inputs[1].default_value, "2");
    cr_assert_str_eq(d->inputs[2].name, "free");
    cr_assert_str_eq(d->inputs[2].type, "any");
    assert_span(d->outputs, "{\"summary\":\"${vars.summary}\"}");

    cr_assert_eq(d->n_steps, 10);
    for (n = 0; n < d->n_steps; n++)
        cr_assert_eq(d->steps[n].index, n);

    s = &d->steps[0];
    cr_assert_str_eq(s->name, "plan");
    cr_assert_eq(s->kind, EVS_WF_ACTION);
    cr_assert_str_eq(s->action, "llm");
    assert_span(s->params, "{\"q\":\"${inputs.topic}\",\"k\":1.50}");
    cr_assert_eq(s->timeout_ms, 5000);
    cr_assert_str_eq(s->store, "plan");
    cr_assert_eq(s->each.len, 0);
    cr_assert_eq(s->has_retry, 1);
    cr_assert_eq(s->retry.max_attempts, 5);
    cr_assert_eq(s->retry.initial_ms, 200);
    cr_assert_float_eq(s->retry.backoff, 1.5, 1e-12);
    cr_assert_eq(s->retry.max_interval_ms, 3000);
    cr_assert_float_eq(s->retry.jitter, 0.25, 1e-12);
    cr_assert_eq(s->retry.n_non_retryable, 2);
    cr_assert_str_eq(s->retry.non_retryable[0], "bad_input");
    cr_assert_str_eq(s->retry.non_retryable[1], "auth");
    cr_assert_eq(s->n_next, 2);
    cr_assert_str_eq(s->next[0].to, "search");
    cr_assert_str_eq(s->next[0].path, "web");
    cr_assert_null(s->next[0].when);
    cr_assert_str_eq(s->next[1].to, "fetch");
    cr_assert_str_eq(s->next[1].path, "docs");
    cr_assert_not_null(s->next[1].when);
    cr_assert_str_eq(s->then, "gather");
    assert_span(s->raw,
                "{\"name\":\"plan\",\"kind\":\"action\",\"action\":\"llm\","
                "\"params\":{\"q\":\"${inputs.topic}\",\"k\":1.50},"
                "\"timeout_ms\":5000,\"store\":\"plan\","
                "\"retry\":{\"max_attempts\":5,\"initial_interval_ms\":200,"
                "\"backoff_coefficient\":1.5,\"max_interval_ms\":3000,"
                "\"jitter\":0.25,\"non_retryable\":[\"bad_input\",\"auth\"]},"
                "\"next\":[{\"to\":\"search\",\"path\":\"web\"},"
                "{\"to\":\"fetch\",\"path\":\"docs\",\"when\":{\"eq\":"
                "[\"${steps.plan.output.fetch}\",true]}}],"
                "\"then\":\"gather\"}");

    s = &d->steps[1];
    cr_assert_str_eq(s->action, "exec:search --json");
    cr_assert_eq(s->n_argv, 2);
    cr_assert_str_eq(s->argv[0], "search");
    cr_assert_str_eq(s->argv[1], "--json");
    assert_span(s->each, "[\"a\",\"b\"]");
    assert_span(s->params, "{\"q\":\"${item}\",\"i\":\"${index}\"}");
    cr_assert_eq(s->has_retry, 0);
    cr_assert_eq(s->retry.max_attempts, 1);
    cr_assert_eq(s->n_next, 0);
    cr_assert_null(s->next);
    cr_assert_null(s->then);
    cr_assert_null(s->store);
    cr_assert_eq(s->timeout_ms, 0);

    s = &d->steps[2];
    cr_assert_str_eq(s->action, "tool");
    cr_assert_eq(s->params.len, 0);
    /* An empty `retry` object takes Temporal's defaults. */
    cr_assert_eq(s->has_retry, 1);
    cr_assert_eq(s->retry.max_attempts, 0);
    cr_assert_eq(s->retry.initial_ms, 1000);
    cr_assert_float_eq(s->retry.backoff, 2.0, 1e-12);
    cr_assert_eq(s->retry.max_interval_ms, 100000);
    cr_assert_float_eq(s->retry.jitter, 0.0, 1e-12);
    cr_assert_eq(s->retry.n_non_retryable, 0);

    s = &d->steps[3];
    cr_assert_eq(s->kind, EVS_WF_JOIN);
    cr_assert_eq(s->join_mode, EVS_JOIN_ANY);
    cr_assert_eq(s->n_join_paths, 2);
    cr_assert_str_eq(s->join_paths[0], "web");
    cr_assert_str_eq(s->join_paths[1], "docs");
    cr_assert_str_eq(s->store, "found");
    cr_assert_eq(s->n_next, 1);
    cr_assert_str_eq(s->next[0].to, "nap");
    cr_assert_null(s->next[0].path);
    cr_assert_null(s->next[0].when);

    s = &d->steps[4];
    cr_assert_eq(s->kind, EVS_WF_SLEEP);
    assert_span(s->duration, "1500");
    cr_assert_eq(s->until.len, 0);
    assert_span(d->steps[5].duration, "\"${inputs.n}\"");
    assert_span(d->steps[6].until, "\"2026-11-22T10:15:30Z\"");
    cr_assert_eq(d->steps[6].duration.len, 0);

    s = &d->steps[7];
    cr_assert_eq(s->kind, EVS_WF_WAIT_EVENT);
    cr_assert_str_eq(s->event, "approval");
    cr_assert_eq(s->timeout_ms, 60000);
    cr_assert_str_eq(s->store, "verdict");
    cr_assert_eq(s->has_retry, 0);
    cr_assert_eq(s->n_next, 2);
    cr_assert_str_eq(s->next[0].to, "done");
    cr_assert_null(s->next[0].path);
    cr_assert_str_eq(s->next[1].path, "rest");

    s = &d->steps[8];
    cr_assert_eq(s->join_mode, EVS_JOIN_ALL);
    cr_assert_eq(s->n_join_paths, 1);
    cr_assert_str_eq(s->join_paths[0], "*");

    s = &d->steps[9];
    cr_assert_eq(s->kind, EVS_WF_END);
    assert_span(s->raw, "{\"name\":\"done\",\"kind\":\"end\"}");

    cr_assert_eq(evs_wf_find_step(d, evs_span_cstr("approve")), &d->steps[7]);
    cr_assert_null(evs_wf_find_step(d, evs_span_cstr("approv")));
    cr_assert_null(evs_wf_find_step(NULL, evs_span_cstr("plan")));
    evs_wf_free(d);
    evs_wf_free(NULL);
}

Test(workflow, names_every_kind)
{
    cr_assert_str_eq(evs_wf_kind_name(EVS_WF_ACTION), "action");
    cr_assert_str_eq(evs_wf_kind_name(EVS_WF_SLEEP), "sleep");
    cr_assert_str_eq(evs_wf_kind_name(EVS_WF_WAIT_EVENT), "wait_event");
    cr_assert_str_eq(evs_wf_kind_name(EVS_WF_JOIN), "join");
    cr_assert_str_eq(evs_wf_kind_name(EVS_WF_END), "end");
    cr_assert_str_eq(evs_wf_kind_name((evs_wf_kind)42), "unknown");
}

Test(workflow, defaults_version_to_one_and_reads_escaped_names)
{
    evs_wf_def *d = parse_ok(
        "{\"n\\u0061me\":\"w\\u00e9\",\"steps\":[{\"name\":\"a\\u002eb\","
        "\"kind\":\"end\"}]}");

    cr_assert_eq(d->version, 1);
    cr_assert_str_eq(d->name, "w\xc3\xa9");
    cr_assert_str_eq(d->steps[0].name, "a.b");
    cr_assert_eq(d->n_inputs, 0);
    cr_assert_eq(d->outputs.len, 0);
    evs_wf_free(d);
}

static int only_llm(void *arg, const char *name)
{
    ++*(int *)arg;
    return strcmp(name, "llm") == 0;
}

Test(workflow, asks_the_host_about_actions_but_not_about_exec)
{
    const char *ok = "{\"name\":\"w\",\"steps\":["
                     "{\"name\":\"a\",\"kind\":\"action\",\"action\":\"llm\","
                     "\"next\":\"b\"},"
                     "{\"name\":\"b\",\"kind\":\"action\","
                     "\"action\":\"exec:x\"}]}";
    const char *bad = "{\"name\":\"w\",\"steps\":["
                      "{\"name\":\"a\",\"kind\":\"action\",\"action\":\"llm\","
                      "\"next\":\"b\"},"
                      "{\"name\":\"b\",\"kind\":\"action\",\"action\":\"lm\"}"
                      "]}";
    evs_wf_def *d = NULL;
    evs_error_info e;
    int calls = 0;

    cr_assert_eq(evs_wf_parse(ok, strlen(ok), NULL, only_llm, &calls, &d, &e),
                 0, "%s", e.msg);
    cr_assert_eq(calls, 1);
    evs_wf_free(d);
    d = (evs_wf_def *)0x1;
    cr_assert_eq(evs_wf_parse(bad, strlen(bad), NULL, only_llm, &calls, &d, &e),
                 EVS_EPARSE);
    cr_assert_eq(d, (evs_wf_def *)0x1, "*out set on failure");
    cr_assert_str_eq(e.step, "b");
    cr_assert(strstr(e.msg, "unknown action \"lm\""), "%s", e.msg);
}

/* ------------------------------------------------------------------ */
/* Refusals                                                           */
/* ------------------------------------------------------------------ */

typedef struct refusal {
    const char *json;
    const char *step;
    const char *msg;
} refusal;

/* A definition around some steps. */
#define DOC(steps) "{\"name\":\"w\",\"steps\":[" steps "]}"
/* An action step `a` whose extra members are `m`, then an end `b`. */
#define ACT(m)                                                                 \
    DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\"" m "},"          \
        "{\"name\":\"b\",\"kind\":\"end\"}")
/* Step `a` with the extra members `m`, going to end `b`. */
#define RETRY(r) ACT(",\"retry\":" r ",\"next\":\"b\"")
#define PARAMS(p) ACT(",\"params\":" p ",\"next\":\"b\"")
#define WHEN(c) ACT(",\"next\":[{\"to\":\"b\",\"when\":" c "}]")

static const refusal refusals[] = {
    /* The document. */
    {"{\"name\":", "", "not valid JSON"},
    {"{\"name\":\"w\xff\",\"steps\":[]}", "", "not valid JSON"},
    {"[1]", "", "a definition is a JSON object"},
    {"{\"name\":\"w\",\"name\":\"v\",\"steps\":[{\"name\":\"a\","
     "\"kind\":\"end\"}]}",
     "", "duplicate member \"name\""},
    {"{\"nmae\":\"w\",\"steps\":[]}", "", "unknown member \"nmae\""},
    {"{\"steps\":[{\"name\":\"a\",\"kind\":\"end\"}]}", "",
     "missing member \"name\""},
    {"{\"name\":5,\"steps\":[]}", "", "\"name\" must be a string"},
    {"{\"name\":\"\",\"steps\":[]}", "", "\"name\" is empty"},
    {"{\"name\":\"w\"}", "", "missing member \"steps\""},
    {"{\"name\":\"w\",\"steps\":[]}", "", "non-empty list"},
    {"{\"name\":\"w\",\"steps\":{}}", "", "non-empty list"},
    {"{\"name\":\"w\",\"version\":0,\"steps\":[{\"name\":\"a\","
     "\"kind\":\"end\"}]}",
     "", "\"version\" must be an integer >= 1"},
    {"{\"name\":\"w\",\"version\":1.5,\"steps\":[{\"name\":\"a\","
     "\"kind\":\"end\"}]}",
     "", "\"version\" must be an integer"},
    {"{\"name\":\"w\",\"version\":\"2\",\"steps\":[{\"name\":\"a\","
     "\"kind\":\"end\"}]}",
     "", "\"version\" must be an integer"},
    {"{\"name\":\"w\",\"outputs\":\"${output}\",\"steps\":[{\"name\":\"a\","
     "\"kind\":\"end\"}]}",
     "", "outputs: malformed reference"},
    /* Step names. */
    {DOC("5"), "", "the step at index 0 is not an object"},
    {DOC("{\"kind\":\"end\"}"), "", "the step at index 0 has no \"name\""},
    {DOC("{\"name\":\"a b\",\"kind\":\"end\"}"), "a b", "invalid step name"},
    {DOC("{\"name\":\"\",\"kind\":\"end\"}"), "", "invalid step name"},
    {DOC("{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaa\",\"kind\":\"end\"}"),
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "invalid step name"},
    {DOC("{\"name\":\"a\\u0000b\",\"kind\":\"end\"}"), "",
     "\"name\" holds a NUL character"},
    {DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
         "\"next\":\"a\"},{\"name\":\"a\",\"kind\":\"end\"}"),
     "a", "duplicate step name"},
    /* Kinds and members. */
    {DOC("{\"name\":\"a\",\"kind\":\"acton\"}"), "a", "unknown kind \"acton\""},
    {DOC("{\"name\":\"a\"}"), "a", "missing member \"kind\""},
    {DOC("{\"name\":\"a\",\"kind\":3}"), "a", "\"kind\" must be a string"},
    {ACT(",\"tiemout_ms\":5"), "a", "unknown member \"tiemout_ms\""},
    {DOC("{\"name\":\"a\",\"kind\":\"end\",\"next\":\"a\"}"), "a",
     "member \"next\" is not allowed in a step of kind end"},
    {DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"duration_ms\":1,"
         "\"action\":\"x\"}"),
     "a", "member \"action\" is not allowed in a step of kind sleep"},
    {DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"duration_ms\":1,"
         "\"each\":[1]}"),
     "a", "member \"each\" is not allowed in a step of kind sleep"},
    {DOC("{\"name\":\"a\",\"kind\":\"wait_event\",\"event\":\"e\","
         "\"retry\":{}}"),
     "a", "member \"retry\" is not allowed in a step of kind wait_event"},
    {DOC("{\"name\":\"a\",\"kind\":\"join\",\"paths\":\"*\","
         "\"timeout_ms\":5}"),
     "a", "member \"timeout_ms\" is not allowed in a step of kind join"},
    {ACT(",\"params\":{\"k\":1,\"k\":2},\"next\":\"b\""), "a",
     "duplicate member \"k\""},
    /* Actions. */
    {DOC("{\"name\":\"a\",\"kind\":\"action\"}"), "a",
     "an action step needs exactly one of \"action\" and \"exec\""},
    {DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"\"}"), "a",
     "\"action\" is empty"},
    {DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"exec: \"}"), "a",
     "\"exec:\" names no program"},
    {DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":[\"x\"]}"), "a",
     "\"action\" must be a string"},
    {ACT(",\"timeout_ms\":\"5\""), "a", "\"timeout_ms\" must be an integer"},
    {ACT(",\"timeout_ms\":-1"), "a", "\"timeout_ms\" must be an integer"},
    {ACT(",\"store\":5"), "a", "\"store\" must be a string"},
    {ACT(",\"store\":\"a.b\""), "a", "variable name \"a.b\" is invalid"},
    {ACT(",\"each\":5"), "a", "\"each\" must be an array"},
    {ACT(",\"each\":\"items\""), "a", "\"each\" must be an array"},
    {ACT(",\"each\":\"${item}\""), "a", "each: \"${item}\" used outside"},
    /* Sleeps and waits. */
    {DOC("{\"name\":\"a\",\"kind\":\"sleep\"}"), "a",
     "exactly one of \"duration_ms\" and \"until\""},
    {DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"duration_ms\":1,"
         "\"until\":\"2026-01-01T00:00:00Z\"}"),
     "a", "exactly one of \"duration_ms\" and \"until\""},
    {DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"duration_ms\":\"5s\"}"), "a",
     "\"duration_ms\" must be an integer or one \"${...}\" reference"},
    {DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"duration_ms\":-5}"), "a",
     "\"duration_ms\" must be an integer >= 0"},
    {DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"until\":\"tomorrow\"}"), "a",
     "\"until\" is not an RFC 3339 time"},
    {DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"until\":5}"), "a",
     "\"until\" must be a string"},
    {DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"until\":\"${inputs.t\"}"), "a",
     "until: unterminated \"${\""},
    {DOC("{\"name\":\"a\",\"kind\":\"wait_event\"}"), "a",
     "a wait_event step needs \"event\""},
    {DOC("{\"name\":\"a\",\"kind\":\"wait_event\",\"event\":\"\"}"), "a",
     "\"event\" is empty"},
    /* Edges. */
    {ACT(",\"next\":\"nowhere\""), "a", "\"next\" names no step \"nowhere\""},
    {ACT(",\"next\":5"), "a", "\"next\" must be a step name or a non-empty"},
    {ACT(",\"next\":[]"), "a", "\"next\" must be a step name or a non-empty"},
    {ACT(",\"next\":[{\"to\":\"c\"}]"), "a", "an edge goes to no step \"c\""},
    {ACT(",\"next\":[{\"path\":\"p\"}]"), "a", "an edge needs \"to\""},
    {ACT(",\"next\":[{\"to\":\"b\",\"wehn\":true}]"), "a",
     "unknown member \"wehn\" in an edge"},
    {ACT(",\"next\":[\"b\"]"), "a", "an edge must be an object"},
    {ACT(",\"next\":[{\"to\":\"b\"},{\"to\":\"b\"}]"), "a",
     "two edges create the branch \"b\""},
    {ACT(",\"next\":[{\"to\":\"b\",\"path\":\"p\"},{\"to\":\"a\","
         "\"path\":\"p\"}]"),
     "a", "two edges create the branch \"p\""},
    {ACT(",\"next\":[{\"to\":\"b\",\"path\":\"p q\"}]"), "a",
     "path name \"p q\" is invalid"},
    {ACT(",\"next\":\"b\",\"then\":\"b\""), "a",
     "\"then\" needs \"next\" to be a list of edges"},
    {ACT(",\"next\":[{\"to\":\"b\"}],\"then\":\"c\""), "a",
     "\"then\" names no step \"c\""},
    {DOC("{\"name\":\"a\",\"kind\":\"end\"},{\"name\":\"orphan\","
         "\"kind\":\"end\"}"),
     "orphan", "not reachable from the first step \"a\""},
    {DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
         "\"next\":[{\"to\":\"b\"}],\"then\":\"a\"},"
         "{\"name\":\"b\",\"kind\":\"end\"},"
         "{\"name\":\"c\",\"kind\":\"action\",\"action\":\"x\","
         "\"next\":\"b\"}"),
     "c", "not reachable"},
    /* Joins. */
    {DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
         "\"next\":[{\"to\":\"b\",\"path\":\"p\"}],\"then\":\"j\"},"
         "{\"name\":\"b\",\"kind\":\"end\"},"
         "{\"name\":\"j\",\"kind\":\"join\",\"paths\":[\"p\",\"q\"]}"),
     "j", "joins the path \"q\", which no edge creates"},
    {DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
         "\"next\":\"j\"},"
         "{\"name\":\"j\",\"kind\":\"join\",\"paths\":[\"j\"]}"),
     "j", "joins the path \"j\", which no edge creates"},
    {DOC("{\"name\":\"j\",\"kind\":\"join\"}"), "j",
     "a join step needs \"paths\""},
    {DOC("{\"name\":\"j\",\"kind\":\"join\",\"paths\":[]}"), "j",
     "\"paths\" must be \"*\" or a non-empty list"},
    {DOC("{\"name\":\"j\",\"kind\":\"join\",\"paths\":\"all\"}"), "j",
     "\"paths\" must be \"*\" or a non-empty list"},
    {DOC("{\"name\":\"j\",\"kind\":\"join\",\"paths\":[\"p\",\"p\"]}"), "j",
     "\"paths\" names \"p\" twice"},
    {DOC("{\"name\":\"j\",\"kind\":\"join\",\"paths\":\"*\","
         "\"mode\":\"first\"}"),
     "j", "unknown join mode \"first\""},
    /* Conditions. */
    {WHEN("{\"equals\":[1,1]}"), "a", "unknown condition operator \"equals\""},
    {WHEN("{\"eq\":[1]}"), "a", "\"eq\" takes an array of two operands"},
    {WHEN("{\"lt\":[1,2,3]}"), "a", "\"lt\" takes an array of two operands"},
    {WHEN("{\"in\":5}"), "a", "\"in\" takes an array of two operands"},
    {WHEN("{\"eq\":[1,1],\"ne\":[1,2]}"), "a",
     "a condition is true, false or an object with one operator"},
    {WHEN("{}"), "a", "an object with one operator"},
    {WHEN("\"true\""), "a", "an object with one operator"},
    {WHEN("{\"exists\":\"inputs.x\"}"), "a",
     "\"exists\" takes one \"${...}\" reference"},
    {WHEN("{\"exists\":\"${inputs.x} \"}"), "a",
     "\"exists\" takes one \"${...}\" reference"},
    {WHEN("{\"and\":[]}"), "a", "\"and\" takes a non-empty array"},
    {WHEN("{\"or\":true}"), "a", "\"or\" takes a non-empty array"},
    {WHEN("{\"not\":{\"eq\":[1]}}"), "a", "\"eq\" takes an array"},
    {WHEN("{\"and\":[true,{\"xor\":[]}]}"), "a",
     "unknown condition operator \"xor\""},
    {WHEN("{\"eq\":[\"${input.x}\",1]}"), "a",
     "condition: malformed reference \"${input.x}\": an unknown root"},
    {WHEN("{\"eq\":[\"${item}\",1]}"), "a", "condition: \"${item}\" used"},
    /* Templates. */
    {PARAMS("{\"q\":\"${inputs.topic\"}"), "a", "params: unterminated \"${\""},
    {PARAMS("[\"${foo.x}\"]"), "a",
     "params: malformed reference "
     "\"${foo.x}\": an unknown root"},
    {PARAMS("\"${inputs..a}\""), "a", "an empty segment"},
    {PARAMS("\"${inputs.a.}\""), "a", "an empty segment"},
    {PARAMS("\"${}\""), "a", "an empty reference"},
    {PARAMS("\"${vars}\""), "a", "needs a variable name"},
    {PARAMS("\"${index.x}\""), "a", "${index} takes no path"},
    {PARAMS("\"${steps.a}\""), "a", "${steps.NAME.output...}"},
    {PARAMS("\"${steps.a.out}\""), "a", "${steps.NAME.output...}"},
    {PARAMS("\"${steps.nope.output}\""), "a",
     "\"${steps.nope.output}\" names no step"},
    {PARAMS("{\"x\":{\"y\":\"${item.q}\"}}"), "a",
     "params: \"${item.q}\" used outside the params of an `each` step"},
    {PARAMS("\"${index}\""), "a", "\"${index}\" used outside"},
    {PARAMS("\"${inputs.${x}}\""), "a", "'{' or '$' inside a reference"},
    /* Retry policies. */
    {RETRY("{\"initial_interval_ms\":-1}"), "a",
     "retry.initial_interval_ms must not be negative"},
    {RETRY("{\"max_interval_ms\":-1}"), "a",
     "retry.max_interval_ms must not be negative"},
    {RETRY("{\"initial_interval_ms\":500,\"max_interval_ms\":100}"), "a",
     "retry.max_interval_ms is below initial_interval_ms"},
    {RETRY("{\"backoff_coefficient\":0.5}"), "a",
     "retry.backoff_coefficient must be at least 1"},
    {RETRY("{\"backoff_coefficient\":\"2\"}"), "a",
     "\"retry.backoff_coefficient\" must be a number"},
    {RETRY("{\"jitter\":1.5}"), "a", "retry.jitter must be between 0 and 1"},
    {RETRY("{\"jitter\":-0.1}"), "a", "retry.jitter must be between 0 and 1"},
    {RETRY("{\"max_attempts\":-1}"), "a",
     "\"retry.max_attempts\" must be an integer from 0 to 4294967295"},
    {RETRY("{\"max_attempts\":2.5}"), "a", "retry.max_attempts"},
    {RETRY("{\"max_attempts\":4294967296}"), "a", "retry.max_attempts"},
    {RETRY("{\"maxAttempts\":3}"), "a",
     "unknown member \"maxAttempts\" in \"retry\""},
    {RETRY("{\"non_retryable\":\"auth\"}"), "a",
     "retry.non_retryable must be a list of error types"},
    {RETRY("{\"non_retryable\":[\"\"]}"), "a",
     "retry.non_retryable holds an empty type"},
    {RETRY("{\"non_retryable\":[5]}"), "a",
     "\"retry.non_retryable\" must be a string"},
    {RETRY("3"), "a", "\"retry\" must be an object"},
    /* Inputs. */
    {"{\"name\":\"w\",\"inputs\":[],\"steps\":[{\"name\":\"a\","
     "\"kind\":\"end\"}]}",
     "", "\"inputs\" must be an object"},
    {"{\"name\":\"w\",\"inputs\":{\"x\":{\"type\":\"str\"}},\"steps\":["
     "{\"name\":\"a\",\"kind\":\"end\"}]}",
     "", "input \"x\" has an unknown type \"str\""},
    {"{\"name\":\"w\",\"inputs\":{\"x\":{\"required\":true,\"default\":1}},"
     "\"steps\":[{\"name\":\"a\",\"kind\":\"end\"}]}",
     "", "input \"x\" is required and has a default"},
    {"{\"name\":\"w\",\"inputs\":{\"x\":{\"type\":\"integer\","
     "\"default\":1.5}},\"steps\":[{\"name\":\"a\",\"kind\":\"end\"}]}",
     "", "the default of input \"x\" is not of type integer"},
    {"{\"name\":\"w\",\"inputs\":{\"x\":{\"required\":\"yes\"}},\"steps\":["
     "{\"name\":\"a\",\"kind\":\"end\"}]}",
     "", "input \"x\": \"required\" must be a boolean"},
    {"{\"name\":\"w\",\"inputs\":{\"x\":{\"typ\":\"string\"}},\"steps\":["
     "{\"name\":\"a\",\"kind\":\"end\"}]}",
     "", "unknown member \"typ\" in an input"},
    {"{\"name\":\"w\",\"inputs\":{\"a.b\":{}},\"steps\":["
     "{\"name\":\"a\",\"kind\":\"end\"}]}",
     "", "input name \"a.b\" is invalid"},
    {"{\"name\":\"w\",\"inputs\":{\"x\":5},\"steps\":["
     "{\"name\":\"a\",\"kind\":\"end\"}]}",
     "", "an input must be an object"},
};

/* Each of the n refusals in rs is refused as it says, with the host's
 * actions known through has_action (may be NULL), and *out left alone;
 * and without an error struct too. */
static void expect_refusals(const refusal *rs, size_t n,
                            evs_wf_has_action_fn has_action)
{
    for (size_t i = 0; i < n; i++) {
        const refusal *r = &rs[i];
        evs_wf_def *d = (evs_wf_def *)0x1;
        evs_error_info e;
        int rc;

        memset(&e, 'x', sizeof(e));
        rc = evs_wf_parse(r->json, strlen(r->json), NULL, has_action, NULL, &d,
                          &e);
        cr_assert_eq(rc, EVS_EPARSE, "#%zu accepted (%d): %s", i, rc, r->json);
        cr_assert_eq(d, (evs_wf_def *)0x1, "#%zu: *out set", i);
        /* The one error struct, filled whole (common.h). */
        cr_assert_eq(e.code, EVS_EPARSE, "#%zu: code %d", i, e.code);
        cr_assert_str_eq(e.kind, "definition", "#%zu", i);
        cr_assert_str_eq(e.execution_id, "", "#%zu", i);
        cr_assert_eq(e.sequence, 0, "#%zu", i);
        cr_assert_eq(e.offset, UINT64_MAX, "#%zu", i);
        cr_assert_str_eq(e.step, r->step,
                         "#%zu: step \"%s\", want \"%s\" "
                         "(%s)",
                         i, e.step, r->step, e.msg);
        cr_assert(strstr(e.msg, r->msg) != NULL,
                  "#%zu: message \"%s\" lacks \"%s\"", i, e.msg, r->msg);
        cr_assert_eq(evs_wf_parse(r->json, strlen(r->json), NULL, has_action,
                                  NULL, &d, NULL),
                     EVS_EPARSE);
    }
}

Test(workflow, refuses_each_fault_naming_the_step_and_the_reason)
{
    expect_refusals(refusals, sizeof(refusals) / sizeof(refusals[0]), NULL);
}

Test(workflow, accepts_what_the_refusals_border_on)
{
    static const char *const ok[] = {
        /* A string `next`, self loops, `then` back to the branching step. */
        ACT(",\"next\":\"b\""),
        ACT(",\"next\":[{\"to\":\"a\",\"path\":\"again\",\"when\":false},"
            "{\"to\":\"b\"}],\"then\":\"b\""),
        /* Escapes and interpolation are not references. */
        PARAMS("{\"p\":\"$${inputs..x} $ $$ ${inputs.x}${vars.y.0}\"}"),
        PARAMS("\"${steps.a.output}\""),
        RETRY("{\"max_attempts\":0,\"initial_interval_ms\":0,"
              "\"backoff_coefficient\":1,\"jitter\":1}"),
        WHEN("{\"not\":{\"or\":[{\"in\":[\"x\",\"${inputs.l}\"]},"
             "{\"exists\":\"${vars.v}\"}]}}"),
        DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"until\":\"${inputs.t}\"}"),
        DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"duration_ms\":0}"),
        DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
            "\"each\":\"${inputs.list}\",\"params\":\"${item}\"}"),
        DOC("{\"name\":\"a\",\"kind\":\"join\",\"paths\":\"*\"}"),
    };
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        evs_wf_free(parse_ok(ok[i]));
}

Test(workflow, names_the_step_that_holds_a_duplicate_member)
{
    const char *j = DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
                        "\"next\":\"b\"},"
                        "{\"name\":\"b\",\"kind\":\"action\",\"action\":\"x\","
                        "\"retry\":{\"jitter\":0,\"jitter\":1}}");
    evs_wf_def *d = NULL;
    evs_error_info e;

    cr_assert_eq(evs_wf_parse(j, strlen(j), NULL, NULL, NULL, &d, &e),
                 EVS_EPARSE);
    cr_assert_str_eq(e.step, "b");
    cr_assert(strstr(e.msg, "duplicate member \"jitter\""), "%s", e.msg);

    /* Escaped names are compared unescaped. */
    j = DOC("{\"name\":\"a\",\"kind\":\"end\",\"kin\\u0064\":\"end\"}");
    cr_assert_eq(evs_wf_parse(j, strlen(j), NULL, NULL, NULL, &d, &e),
                 EVS_EPARSE);
    cr_assert_str_eq(e.step, "a");
    cr_assert(strstr(e.msg, "duplicate member \"kind\""), "%s", e.msg);
}

/* ------------------------------------------------------------------ */
/* exec steps                                                         */
/* ------------------------------------------------------------------ */

/* An exec step `a` with the members m (then an end). */
#define EXEC(m)                                                                \
    "{\"name\":\"w\",\"steps\":[{\"name\":\"a\",\"kind\":\"action\"" m         \
    ",\"next\":\"b\"},{\"name\":\"b\",\"kind\":\"end\"}]}"

static void argv_is(const evs_wf_step *s, const char *const *want)
{
    size_t n = 0;

    while (want[n])
        n++;
    cr_assert_eq(s->n_argv, n, "%zu arguments, want %zu", s->n_argv, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(s->argv[i], want[i], "argument %zu", i);
    cr_assert_null(s->argv[n]);
}

/* `exec` gives the program and its arguments as a list, taken as
 * written: an argument may hold blanks, or be empty. The string form is
 * split on blanks, at parse time. */
Test(workflow, reads_the_argv_of_exec_steps_in_both_forms)
{
    evs_wf_def *d;
    evs_error_info e;
    int calls = 0;

    d = parse_ok(EXEC(",\"exec\":[\"./run me\",\"a b\",\"\",\"${x}\"]"));
    cr_assert_str_eq(d->steps[0].action, "exec:");
    argv_is(&d->steps[0],
            (const char *const[]){"./run me", "a b", "", "${x}", NULL});
    cr_assert_eq(d->steps[1].n_argv, 0);
    cr_assert_null(d->steps[1].argv);
    evs_wf_free(d);
    d = parse_ok(EXEC(",\"action\":\"exec:\\t prog  a\\tb \""));
    cr_assert_str_eq(d->steps[0].action, "exec:\t prog  a\tb ");
    argv_is(&d->steps[0], (const char *const[]){"prog", "a", "b", NULL});
    evs_wf_free(d);
    /* The host is not asked about exec steps. */
    const char *j = EXEC(",\"exec\":[\"llm\"]");
    cr_assert_eq(evs_wf_parse(j, strlen(j), NULL, only_llm, &calls, &d, &e), 0,
                 "%s", e.msg);
    cr_assert_eq(calls, 0);
    evs_wf_free(d);
}

Test(workflow, refuses_malformed_exec_lists)
{
    static const refusal bad[] = {
        {EXEC(",\"exec\":[]"), "a",
         "\"exec\" must be a non-empty list of strings"},
        {EXEC(",\"exec\":\"prog a\""), "a",
         "\"exec\" must be a non-empty list of strings"},
        {EXEC(",\"exec\":[\"prog\",5]"), "a",
         "\"exec\" must be a non-empty list of strings"},
        {EXEC(",\"exec\":[\"\",\"a\"]"), "a",
         "\"exec\" must start with a program"},
        {EXEC(",\"exec\":[\"a\\u0000b\"]"), "a",
         "\"exec\" holds a NUL character"},
        {EXEC(",\"exec\":[\"prog\"],\"action\":\"x\""), "a",
         "an action step needs exactly one of \"action\" and \"exec\""},
        {DOC("{\"name\":\"a\",\"kind\":\"sleep\",\"duration_ms\":1,"
             "\"exec\":[\"x\"]}"),
         "a", "member \"exec\" is not allowed in a step of kind sleep"},
    };
    expect_refusals(bad, sizeof(bad) / sizeof(*bad), NULL);
}

/* ------------------------------------------------------------------ */
/* The step graph: loops and reachability                             */
/* ------------------------------------------------------------------ */

/* The orchestrator's view of actions: echo is instant, x and fail are
 * actions that may wait or fail, anything else is unknown. */
static int host_actions(void *arg, const char *name)
{
    (void)arg;
    if (strcmp(name, "echo") == 0)
        return EVS_WF_ACTION_INSTANT;
    return strcmp(name, "x") == 0 || strcmp(name, "fail") == 0;
}

static int parse_host(const char *json, evs_wf_def **d, evs_error_info *e)
{
    *d = NULL;
    return evs_wf_parse(json, strlen(json), NULL, host_actions, NULL, d, e);
}

/* Step NAME, an echo, whose members M follow. */
#define ECHO_STEP(name, m)                                                     \
    "{\"name\":\"" name "\",\"kind\":\"action\",\"action\":\"echo\"" m "}"

/* Issue 14, defect 8: a loop of steps that never wait, along edges that
 * are always taken, went round at full speed for ever (2,000 executions
 * and 2.9 GB in seconds). It is refused, naming the step the loop goes
 * back to and the way round. */
Test(workflow, refuses_a_loop_that_can_never_wait_or_end)
{
    static const refusal spins[] = {
        {DOC(ECHO_STEP("a", ",\"next\":\"a\"")), "a",
         "this loop can never wait or end: a -> a"},
        /* Through a version step; after a first step that may wait. */
        {DOC("{\"name\":\"first\",\"kind\":\"action\",\"action\":\"x\","
             "\"next\":\"a\"}," ECHO_STEP(
                 "a",
                 ",\"next\":\"v\"") ","
                                    "{\"name\":\"v\",\"kind\":\"version\","
                                    "\"change_id\":\"c\","
                                    "\"min\":-1,\"max\":1,\"next\":\"a\"}"),
         "a", "a -> v -> a"},
        /* An edge list whose edge back is always taken: `when` absent or
         * true. The other edge branches off; the loop goes on. */
        {DOC(ECHO_STEP("a", ",\"next\":[{\"to\":\"a\",\"when\":true},"
                            "{\"to\":\"b\",\"when\":{\"exists\":\"${vars.x}\"}}"
                            "]") ",{\"name\":\"b\",\"kind\":\"end\"}"),
         "a", "a -> a"},
        {DOC(ECHO_STEP("a", ",\"next\":[{\"to\":\"a\",\"path\":\"again\"}]")),
         "a", "a -> a"},
        /* `then` is taken whenever the step branches for sure. */
        {DOC(ECHO_STEP("a",
                       ",\"next\":[{\"to\":\"w\",\"path\":\"p\"}],"
                       "\"then\":\"a\"") ",{\"name\":\"w\",\"kind\":\"wait_"
                                         "event\",\"event\":\"e\"}"),
         "a", "a -> a"},
        {DOC(ECHO_STEP("a",
                       ",\"next\":[{\"to\":\"w\"},{\"to\":\"z\"}],"
                       "\"then\":\"a\"") ",{\"name\":\"w\",\"kind\":\"wait_"
                                         "event\",\"event\":\"e\"},"
                                         "{\"name\":\"z\",\"kind\":\"end\"}"),
         "a", "a -> a"},
        /* Continuing as new goes round in successors. */
        {DOC(ECHO_STEP("a", ",\"next\":\"c\"") ",{\"name\":\"c\",\"kind\":"
                                               "\"continue_as_new\"}"),
         "a", "a -> c -> a"},
        {DOC("{\"name\":\"first\",\"kind\":\"action\",\"action\":\"x\","
             "\"next\":\"a\"}," ECHO_STEP(
                 "a", ",\"next\":\"c\"") ","
                                         "{\"name\":\"c\",\"kind\":\"continue_"
                                         "as_new\","
                                         "\"start_at\":\"a\"}"),
         "a", "a -> c -> a"},
        /* A sleep of no time does not pace anything. */
        {DOC(ECHO_STEP("a", ",\"next\":\"s\"") ",{\"name\":\"s\",\"kind\":"
                                               "\"sleep\",\"duration_ms\":0,"
                                               "\"next\":\"a\"}"),
         "a", "a -> s -> a"},
    };
    static const char *const ok[] = {
        /* Something on the loop may wait: a sleep, an event, an action
         * of the host (or exec), a join. */
        DOC(ECHO_STEP("a", ",\"next\":\"s\"") ",{\"name\":\"s\",\"kind\":"
                                              "\"sleep\",\"duration_ms\":10,"
                                              "\"next\":\"a\"}"),
        DOC(ECHO_STEP("a",
                      ",\"next\":\"s\"") ",{\"name\":\"s\",\"kind\":\"sleep\","
                                         "\"duration_ms\":\"${inputs.d}\","
                                         "\"next\":\"a\"}"),
        DOC(ECHO_STEP("a", ",\"next\":\"w\"") ",{\"name\":\"w\",\"kind\":"
                                              "\"wait_event\",\"event\":\"e\","
                                              "\"next\":\"a\"}"),
        DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
            "\"next\":\"a\"}"),
        DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"fail\","
            "\"next\":\"a\"}"),
        DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"exec:x\","
            "\"next\":\"a\"}"),
        DOC(ECHO_STEP("a", ",\"next\":\"j\"") ",{\"name\":\"j\",\"kind\":"
                                              "\"join\",\"paths\":\"*\","
                                              "\"next\":\"a\"}"),
        /* An edge of the loop that may not be taken. */
        DOC(ECHO_STEP("a", ",\"store\":\"x\",\"next\":[{\"to\":\"a\",\"when\":"
                           "{\"not\":{\"exists\":\"${vars.x.p.p.p}\"}}}]")),
        DOC(ECHO_STEP("a",
                      ",\"next\":[{\"to\":\"a\",\"when\":false},"
                      "{\"to\":\"b\"}]") ",{\"name\":\"b\",\"kind\":\"end\"}"),
        /* `then` after a branch that may not happen. */
        DOC(ECHO_STEP("a", ",\"next\":[{\"to\":\"w\",\"path\":\"p\","
                           "\"when\":{\"exists\":\"${vars.go}\"}}],"
                           "\"then\":\"a\"") ",{\"name\":\"w\",\"kind\":\"wait_"
                                             "event\",\"event\":\"e\"}"),
        /* One edge always taken, without a path: the path moves on, and
         * takes `then` only when the other edge matches too. */
        DOC(ECHO_STEP(
            "a",
            ",\"next\":[{\"to\":\"b\"},{\"to\":\"w\",\"when\":"
            "{\"exists\":\"${vars.go}\"}}],\"then\":\"a\"") ",{\"name\":\"b\","
                                                            "\"kind\":\"end\"},"
                                                            "{\"name\":\"w\","
                                                            "\"kind\":\"wait_"
                                                            "event\",\"event\":"
                                                            "\"e\"}"),
        /* Instant steps without a loop. */
        DOC(ECHO_STEP("a", ",\"next\":\"b\"") "," ECHO_STEP("b", "")),
        DOC(ECHO_STEP(
            "a",
            ",\"next\":\"c\"") ",{\"name\":\"c\",\"kind\":\"continue_as_new\","
                               "\"start_at\":\"z\"}," ECHO_STEP("z", "")),
    };
    evs_wf_def *d;
    evs_error_info e;
    size_t i;

    expect_refusals(spins, sizeof(spins) / sizeof(*spins), host_actions);
    for (i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
        cr_assert_eq(parse_host(ok[i], &d, &e), 0, "#%zu refused: %s: %s\n%s",
                     i, e.step, e.msg, ok[i]);
        evs_wf_free(d);
    }
    /* Without the host's word, no action counts as instant. */
    evs_wf_free(parse_ok(spins[0].json));
}

Test(workflow, a_long_loop_is_named_by_its_first_steps)
{
    char buf[16384];
    size_t n = 0;
    evs_wf_def *d;
    evs_error_info e;
    int i;

    /* 200 echo steps in a ring: the message names the way round from
     * the first step, cut to fit. */
    n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                          "{\"name\":\"w\",\"steps\":[");
    for (i = 0; i < 200; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                              "%s{\"name\":\"s%d\",\"kind\":\"action\","
                              "\"action\":\"echo\",\"next\":\"s%d\"}",
                              i ? "," : "", i, (i + 1) % 200);
    cr_assert_lt(n + 3, sizeof(buf));
    snprintf(buf + n, sizeof(buf) - n, "]}");
    cr_assert_eq(parse_host(buf, &d, &e), EVS_EPARSE);
    cr_assert_str_eq(e.step, "s0");
    cr_assert(strstr(e.msg, "this loop can never wait or end: s0 -> s1 -> "
                            "s2"),
              "%s", e.msg);
}

/* A step that only a continue_as_new's start_at leads to is where the
 * successor starts: reachable (it was refused as unreachable). */
Test(workflow, a_step_reached_only_through_start_at_is_reachable)
{
    const char *j =
        DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
            "\"next\":\"roll\"},"
            "{\"name\":\"roll\",\"kind\":\"continue_as_new\","
            "\"start_at\":\"later\"},"
            "{\"name\":\"later\",\"kind\":\"action\",\"action\":\"x\","
            "\"next\":\"done\"},"
            "{\"name\":\"done\",\"kind\":\"end\"}");
    evs_wf_def *d = parse_ok(j);

    cr_assert_str_eq(d->steps[1].start_at, "later");
    evs_wf_free(d);
    /* A step no edge, then and start_at leads to is still refused. */
    j = DOC("{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
            "\"next\":\"roll\"},"
            "{\"name\":\"roll\",\"kind\":\"continue_as_new\"},"
            "{\"name\":\"later\",\"kind\":\"end\"}");
    cr_assert_eq(evs_wf_parse(j, strlen(j), NULL, NULL, NULL, &d, NULL),
                 EVS_EPARSE);
}

/* ------------------------------------------------------------------ */
/* The hash                                                           */
/* ------------------------------------------------------------------ */

static void hash_of(const char *json, char out[17])
{
    evs_wf_def *d = parse_ok(json);

    memcpy(out, d->hash, 17);
    evs_wf_free(d);
}

Test(workflow, hash_ignores_formatting_and_member_order)
{
    const char *a = "{\"name\":\"w\",\"version\":2,\"steps\":["
                    "{\"name\":\"s\",\"kind\":\"action\",\"action\":\"x\","
                    "\"params\":{\"a\":1,\"b\":[1,2]},\"next\":\"e\"},"
                    "{\"name\":\"e\",\"kind\":\"end\"}]}";
    const char *b =
        "{ \"steps\" : [\n"
        "   { \"next\": \"e\", \"params\": {\"b\": [1, 2], \"a\": 1},\n"
        "     \"action\": \"x\", \"kind\": \"action\", \"name\": \"s\" },\n"
        "   {\"kind\": \"end\", \"name\": \"e\"}\n"
        " ],\n"
        " \"version\": 2, \"name\": \"w\" }\n";
    const char *c = "{\"name\":\"w\",\"version\":2,\"steps\":["
                    "{\"name\":\"s\",\"kind\":\"action\",\"action\":\"x\","
                    "\"params\":{\"a\":2,\"b\":[1,2]},\"next\":\"e\"},"
                    "{\"name\":\"e\",\"kind\":\"end\"}]}";
    const char *arr = "{\"name\":\"w\",\"version\":2,\"steps\":["
                      "{\"name\":\"s\",\"kind\":\"action\",\"action\":\"x\","
                      "\"params\":{\"a\":1,\"b\":[2,1]},\"next\":\"e\"},"
                      "{\"name\":\"e\",\"kind\":\"end\"}]}";
    char ha[17], hb[17], hc[17], harr[17];
    char sa[EVS_STEP_HASH_LEN + 1], sb[EVS_STEP_HASH_LEN + 1];
    evs_wf_def *da, *db;

    hash_of(a, ha);
    hash_of(b, hb);
    hash_of(c, hc);
    hash_of(arr, harr);
    cr_assert_str_eq(ha, hb);
    cr_assert_str_neq(ha, hc);
    cr_assert_str_neq(ha, harr);

    /* A step's raw text hashes the same under either formatting. */
    da = parse_ok(a);
    db = parse_ok(b);
    cr_assert_eq(
        evs_replay_step_hash(da->steps[0].raw.ptr, da->steps[0].raw.len, sa),
        0);
    cr_assert_eq(
        evs_replay_step_hash(db->steps[0].raw.ptr, db->steps[0].raw.len, sb),
        0);
    cr_assert_str_eq(sa, sb);
    evs_wf_free(da);
    evs_wf_free(db);
}

/* ------------------------------------------------------------------ */
/* Conditions                                                         */
/* ------------------------------------------------------------------ */

/* Parses a definition whose one edge has `cond` and evaluates it. */
static int cond_value(const char *cond)
{
    char json[2048];
    evs_wf_def *d;
    evs_wf_ctx c = make_ctx();
    int r = -7, rc;

    snprintf(json, sizeof(json), WHEN("%s"), cond);
    d = parse_ok(json);
    cr_assert_not_null(d->steps[0].next[0].when);
    rc = evs_wf_cond_eval(d->steps[0].next[0].when, &c, &r);
    cr_assert_eq(rc, 0, "%s: rc %d", cond, rc);
    evs_wf_free(d);
    return r;
}

typedef struct truth {
    const char *cond;
    int want;
} truth;

static const truth truths[] = {
    {"true", 1},
    {"false", 0},
    /* eq and ne: structural, numbers by value. */
    {"{\"eq\":[1,1]}", 1},
    {"{\"eq\":[1,1.0]}", 1},
    {"{\"eq\":[1,1e0]}", 1},
    {"{\"eq\":[-0,0]}", 1},
    {"{\"eq\":[\"${inputs.n}\",1.0]}", 1},
    {"{\"eq\":[\"${inputs.k}\",1.5]}", 1},
    {"{\"eq\":[\"${inputs.n}\",2]}", 0},
    {"{\"eq\":[9007199254740993,9007199254740992]}", 0},
    {"{\"eq\":[\"${inputs.obj}\",{\"b\":[1,2],\"a\":1}]}", 1},
    {"{\"eq\":[\"${inputs.obj}\",{\"a\":1}]}", 0},
    {"{\"eq\":[{\"a\":1},\"${inputs.obj}\"]}", 0},
    {"{\"eq\":[\"${inputs.obj}\",{\"a\":1,\"b\":[2,1]}]}", 0},
    {"{\"eq\":[\"${inputs.obj}\",{\"a\":1,\"c\":[1,2]}]}", 0},
    {"{\"eq\":[[1,2],[1,2]]}", 1},
    {"{\"eq\":[[1,2],[1,2,3]]}", 0},
    {"{\"eq\":[[],[]]}", 1},
    {"{\"eq\":[{},{}]}", 1},
    {"{\"eq\":[\"a\",\"a\"]}", 1},
    {"{\"eq\":[\"\\u0061\",\"a\"]}", 1},
    {"{\"eq\":[\"a\",\"b\"]}", 0},
    {"{\"eq\":[\"1\",1]}", 0},
    {"{\"eq\":[\"${inputs.z}\",null]}", 1},
    {"{\"eq\":[\"${inputs.t}\",true]}", 1},
    {"{\"eq\":[true,false]}", 0},
    {"{\"eq\":[null,false]}", 0},
    {"{\"eq\":[\"${inputs.nope}\",null]}", 0},
    {"{\"eq\":[\"${inputs.nope}\",\"${inputs.nope}\"]}", 0},
    {"{\"eq\":[\"n=${inputs.n}\",\"n=1\"]}", 1},
    {"{\"ne\":[1,2]}", 1},
    {"{\"ne\":[1,1.0]}", 0},
    {"{\"ne\":[\"${inputs.nope}\",1]}", 0},
    {"{\"ne\":[{\"a\":[1]},{\"a\":[1]}]}", 0},
    /* Orders: two numbers or two strings, else false. */
    {"{\"lt\":[1,2]}", 1},
    {"{\"lt\":[2,1]}", 0},
    {"{\"lt\":[1,1]}", 0},
    {"{\"le\":[1,1.0]}", 1},
    {"{\"le\":[2,1]}", 0},
    {"{\"gt\":[\"${inputs.f}\",1]}", 1},
    {"{\"gt\":[1,\"${inputs.f}\"]}", 0},
    {"{\"ge\":[1.5,\"${inputs.f}\"]}", 1},
    {"{\"ge\":[-2,-1]}", 0},
    {"{\"lt\":[-1e3,-999]}", 1},
    {"{\"lt\":[\"a\",\"b\"]}", 1},
    {"{\"lt\":[\"b\",\"a\"]}", 0},
    {"{\"lt\":[\"a\",\"ab\"]}", 1},
    {"{\"gt\":[\"\\u00e9\",\"z\"]}", 1},
    {"{\"le\":[\"b\",\"b\"]}", 1},
    {"{\"lt\":[1,\"2\"]}", 0},
    {"{\"ge\":[\"2\",1]}", 0},
    {"{\"lt\":[null,1]}", 0},
    {"{\"ge\":[[1],[1]]}", 0},
    {"{\"lt\":[\"${inputs.nope}\",5]}", 0},
    {"{\"ge\":[\"${inputs.nope}\",5]}", 0},
    {"{\"le\":[5,\"${vars.nope}\"]}", 0},
    /* in: membership, or substring. */
    {"{\"in\":[\"two\",\"${inputs.list}\"]}", 1},
    {"{\"in\":[1.0,\"${inputs.list}\"]}", 1},
    {"{\"in\":[{\"a\":1},\"${inputs.list}\"]}", 1},
    {"{\"in\":[3,\"${inputs.list}\"]}", 0},
    {"{\"in\":[\"world\",\"${inputs.s}\"]}", 1},
    {"{\"in\":[\"\",\"${inputs.s}\"]}", 1},
    {"{\"in\":[\"xyz\",\"${inputs.s}\"]}", 0},
    {"{\"in\":[\"hello world!\",\"${inputs.s}\"]}", 0},
    {"{\"in\":[1,\"abc\"]}", 0},
    {"{\"in\":[\"a\",{\"a\":1}]}", 0},
    {"{\"in\":[\"${inputs.nope}\",\"${inputs.list}\"]}", 0},
    {"{\"in\":[1,\"${inputs.nope}\"]}", 0},
    /* exists. */
    {"{\"exists\":\"${inputs.n}\"}", 1},
    {"{\"exists\":\"${inputs.nope}\"}", 0},
    {"{\"exists\":\"${inputs.z}\"}", 1},
    {"{\"exists\":\"${inputs.list.2.a}\"}", 1},
    {"{\"exists\":\"${inputs.list.3}\"}", 0},
    {"{\"exists\":\"${inputs.list.01}\"}", 0},
    {"{\"exists\":\"${inputs.n.x}\"}", 0},
    {"{\"exists\":\"${inputs.key}\"}", 1},
    {"{\"exists\":\"${vars.v.ok}\"}", 1},
    {"{\"exists\":\"${vars.nope}\"}", 0},
    {"{\"exists\":\"${steps.a.output.text}\"}", 1},
    {"{\"exists\":\"${steps.b.output}\"}", 0},
    /* Values of variables and of steps. */
    {"{\"eq\":[\"${vars.v.score}\",0.9]}", 1},
    {"{\"gt\":[\"${vars.v.score}\",0.5]}", 1},
    {"{\"eq\":[\"${vars.v.ok}\",true]}", 1},
    {"{\"eq\":[\"${steps.a.output.n.1}\",20]}", 1},
    {"{\"in\":[\"on\",\"${steps.a.output.text}\"]}", 1},
    /* and, or, not. */
    {"{\"and\":[true,{\"eq\":[1,1]}]}", 1},
    {"{\"and\":[true,false]}", 0},
    {"{\"and\":[{\"exists\":\"${inputs.nope}\"},true]}", 0},
    {"{\"or\":[false,false]}", 0},
    {"{\"or\":[false,{\"exists\":\"${inputs.n}\"}]}", 1},
    {"{\"not\":{\"exists\":\"${inputs.nope}\"}}", 1},
    {"{\"not\":true}", 0},
    {"{\"not\":{\"eq\":[\"${inputs.nope}\",1]}}", 1},
    {"{\"and\":[{\"or\":[false,{\"not\":false}]},"
     "{\"not\":{\"and\":[true,false]}}]}",
     1},
    {"{\"or\":[{\"and\":[true,{\"lt\":[2,1]}]},{\"not\":{\"or\":[true]}}]}", 0},
};

Test(workflow, evaluates_conditions_per_their_truth_tables)
{
    size_t i;

    for (i = 0; i < sizeof(truths) / sizeof(truths[0]); i++)
        cr_assert_eq(cond_value(truths[i].cond), truths[i].want,
                     "%s should be %d", truths[i].cond, truths[i].want);
}

Test(workflow, evaluates_a_missing_condition_as_true)
{
    evs_wf_ctx c = make_ctx();
    int r = 0;

    cr_assert_eq(evs_wf_cond_eval(NULL, &c, &r), 0);
    cr_assert_eq(r, 1);
}

Test(workflow, reports_a_resolver_value_that_is_not_json)
{
    char json[512];
    evs_wf_def *d;
    evs_wf_ctx c = make_ctx();
    int r = -7;

    snprintf(json, sizeof(json), WHEN("%s"), "{\"eq\":[\"${vars.bad.x}\",1]}");
    d = parse_ok(json);
    cr_assert_eq(evs_wf_cond_eval(d->steps[0].next[0].when, &c, &r),
                 EVS_EPARSE);
    cr_assert_eq(r, -7);
    evs_wf_free(d);
}

/* ------------------------------------------------------------------ */
/* Templates                                                          */
/* ------------------------------------------------------------------ */

static void render_is(const evs_wf_ctx *c, const char *tmpl, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    evs_error_info e;
    int rc = evs_wf_render(c, evs_span_cstr(tmpl), NULL, &out, &len, &e);

    cr_assert_eq(rc, 0, "%s: rc %d: %s", tmpl, rc, e.msg);
    cr_assert_eq(len, strlen(out));
    cr_assert_str_eq(out, want, "%s", tmpl);
    free(out);
}

static void render_fails(const evs_wf_ctx *c, const char *tmpl, int want,
                         const char *msg)
{
    char *out = (char *)0x1;
    size_t len = 77;
    evs_error_info e;
    int rc = evs_wf_render(c, evs_span_cstr(tmpl), NULL, &out, &len, &e);

    cr_assert_eq(rc, want, "%s: rc %d, want %d", tmpl, rc, want);
    cr_assert_eq(out, (char *)0x1);
    cr_assert_eq(len, 77);
    cr_assert_eq(e.code, rc);
    cr_assert_str_eq(e.kind, "template");
    cr_assert_str_eq(e.step, "");
    cr_assert(strstr(e.msg, msg), "%s: message \"%s\" lacks \"%s\"", tmpl,
              e.msg, msg);
}

Test(workflow, renders_a_whole_reference_as_the_value_with_its_type)
{
    evs_wf_ctx c = make_ctx();

    render_is(&c,
              "{\"a\":\"${inputs.n}\",\"b\":\"${inputs.obj}\","
              "\"c\":\"${inputs.z}\",\"d\":\"${inputs.t}\","
              "\"e\":\"${inputs.s}\",\"f\":\"${inputs.k}\"}",
              "{\"a\":1,\"b\":{\"a\":1,\"b\":[1,2]},\"c\":null,\"d\":true,"
              "\"e\":\"hello world\",\"f\":1.50}");
    render_is(&c, "\"${inputs.list.1}\"", "\"two\"");
    render_is(&c, "[\"${inputs.list.2}\", 5, \"lit\", {\"k\": [true]}]",
              "[{\"a\":1},5,\"lit\",{\"k\":[true]}]");
    render_is(&c, "\"${inputs}\"", ctx_inputs);
    render_is(&c, "\"${vars.v}\"", "{\"ok\":true,\"score\":0.9}");
    render_is(&c, "\"${steps.a.output.n}\"", "[10,20]");
    render_is(&c, "\"${inputs.key}\"", "7");
    render_is(&c, "\"${inputs.q}\"", "\"say \\\"hi\\\"\\n\"");
    render_is(&c, "", "null");
    render_is(&c, " 42 ", "42");

    /* Inputs as the caller wrote them, spaces and all. */
    c.inputs = evs_span_cstr("{ \"a\" : [ 1 , { \"b\" : 2 } ] }");
    render_is(&c, "\"${inputs.a}\"", "[1,{\"b\":2}]");
    render_is(&c, "\"${inputs.a.1.b}\"", "2");
    c.inputs.len = 0;
    render_is(&c, "\"${inputs}\"", "{}");
}

Test(workflow, interpolates_references_inside_longer_strings)
{
    evs_wf_ctx c = make_ctx();

    render_is(&c,
              "\"n=${inputs.n}, s=${inputs.s}, o=${inputs.obj}, "
              "z=${inputs.z}, t=${inputs.t}\"",
              "\"n=1, s=hello world, o={\\\"a\\\":1,\\\"b\\\":[1,2]}, "
              "z=null, t=true\"");
    render_is(&c, "\"<${inputs.q}>\"", "\"<say \\\"hi\\\"\\n>\"");
    render_is(&c, "\"${inputs.n}${inputs.n}\"", "\"11\"");
    render_is(&c, "\" ${inputs.n}\"", "\" 1\"");
    render_is(&c, "\"${inputs.k}x\"", "\"1.50x\"");
    /* Strings without references are kept as written. */
    render_is(&c, "\"a\\u00e9\\n\"", "\"a\\u00e9\\n\"");
}

Test(workflow, keeps_escaped_and_lone_dollars_literal)
{
    evs_wf_ctx c = make_ctx();

    render_is(&c, "\"cost $${inputs.n} and ${inputs.n}\"",
              "\"cost ${inputs.n} and 1\"");
    render_is(&c, "\"$${inputs.n}\"", "\"${inputs.n}\"");
    render_is(&c, "\"$$\"", "\"$$\"");
    render_is(&c, "\"$\"", "\"$\"");
    render_is(&c, "\"US$ 5 {x}\"", "\"US$ 5 {x}\"");
    render_is(&c, "\"$$${inputs.n}\"", "\"$${inputs.n}\"");
    /* An escaped dollar sign still starts a reference. */
    render_is(&c, "\"\\u0024{inputs.n}\"", "1");
}

Test(workflow, gives_enoent_for_a_reference_to_nothing)
{
    evs_wf_ctx c = make_ctx();

    render_fails(&c, "{\"a\":\"${inputs.nope}\"}", -ENOENT, "inputs.nope");
    render_fails(&c, "\"x ${inputs.list.7} y\"", -ENOENT, "inputs.list.7");
    render_fails(&c, "\"${vars.gone.a}\"", -ENOENT, "vars.gone.a");
    render_fails(&c, "\"${steps.b.output}\"", -ENOENT, "steps.b.output");
    render_fails(&c, "\"${item}\"", -ENOENT, "${item}");
    render_fails(&c, "\"${index}\"", -ENOENT, "${index}");
    c.var = NULL;
    c.step_output = NULL;
    render_fails(&c, "\"${vars.v}\"", -ENOENT, "vars.v");
    render_fails(&c, "\"${steps.a.output}\"", -ENOENT, "steps.a.output");
}

Test(workflow, refuses_templates_that_are_not_json_or_malformed)
{
    evs_wf_ctx c = make_ctx();

    render_fails(&c, "{\"a\":", EVS_EPARSE, "not valid JSON");
    render_fails(&c, "\"${inputs.n\"", EVS_EPARSE, "unterminated");
    render_fails(&c, "\"${nope}\"", EVS_EPARSE, "unknown root");
    render_fails(&c, "\"${vars.bad}\"", EVS_EPARSE, "not valid JSON");
}

Test(workflow, renders_item_and_index_in_each_params)
{
    evs_wf_def *d = parse_ok(full_def);
    evs_wf_ctx c = make_ctx();
    char *out;
    size_t len;

    c.item = evs_span_cstr("{\"q\": \"a\", \"n\": [1, 2]}");
    c.index = 3;
    render_is(&c,
              "{\"q\":\"${item.q}\",\"i\":\"${index}\",\"all\":\"${item}\","
              "\"s\":\"#${index}: ${item.q}\",\"n\":\"${item.n.0}\"}",
              "{\"q\":\"a\",\"i\":3,\"all\":{\"q\":\"a\",\"n\":[1,2]},"
              "\"s\":\"#3: a\",\"n\":1}");
    c.item = evs_span_cstr("\"b\"");
    c.index = 0;
    cr_assert_eq(evs_wf_render(&c, d->steps[1].params, NULL, &out, &len, NULL),
                 0);
    cr_assert_str_eq(out, "{\"q\":\"b\",\"i\":0}");
    free(out);
    cr_assert_eq(evs_wf_render(&c, d->steps[0].params, NULL, &out, &len, NULL),
                 -ENOENT);
    c.inputs = evs_span_cstr("{\"topic\":\"cats\"}");
    cr_assert_eq(evs_wf_render(&c, d->steps[0].params, NULL, &out, &len, NULL),
                 0);
    cr_assert_str_eq(out, "{\"q\":\"cats\",\"k\":1.50}");
    free(out);
    evs_wf_free(d);
}

/* ------------------------------------------------------------------ */
/* Inputs                                                             */
/* ------------------------------------------------------------------ */

static const char inputs_def[] =
    "{\"name\":\"w\",\"inputs\":{"
    "\"topic\":{\"type\":\"string\",\"required\":true},"
    "\"n\":{\"type\":\"integer\",\"default\":2},"
    "\"flag\":{\"type\":\"boolean\",\"default\":false},"
    "\"x\":{\"type\":\"number\"},"
    "\"o\":{\"type\":\"object\",\"default\":{\"k\": [1]}},"
    "\"l\":{\"type\":\"array\"},"
    "\"any\":{}},"
    "\"steps\":[{\"name\":\"a\",\"kind\":\"end\"}]}";

static void inputs_are(const evs_wf_def *d, const char *in, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    evs_error_info e;
    int rc = evs_wf_check_inputs(d, evs_span_cstr(in), NULL, &out, &len, &e);

    cr_assert_eq(rc, 0, "%s: %d %s", in, rc, e.msg);
    cr_assert_eq(len, strlen(want));
    cr_assert_str_eq(out, want);
    free(out);
}

static void inputs_refused(const evs_wf_def *d, const char *in, const char *msg)
{
    char *out = (char *)0x1;
    evs_error_info e;
    int rc = evs_wf_check_inputs(d, evs_span_cstr(in), NULL, &out, NULL, &e);

    cr_assert_eq(rc, EVS_EPARSE, "%s accepted", in);
    cr_assert_eq(out, (char *)0x1);
    cr_assert_eq(e.code, EVS_EPARSE);
    cr_assert_str_eq(e.kind, "inputs");
    cr_assert(strstr(e.msg, msg), "%s: \"%s\" lacks \"%s\"", in, e.msg, msg);
}

Test(workflow, fills_in_defaults_and_keeps_undeclared_inputs)
{
    evs_wf_def *d = parse_ok(inputs_def);

    inputs_are(d, "{\"topic\":\"cats\"}",
               "{\"topic\":\"cats\",\"n\":2,\"flag\":false,\"o\":{\"k\":[1]}}");
    inputs_are(d, "{ \"extra\" : [1, 2], \"n\": 5, \"topic\": \"t\" }",
               "{\"extra\":[1,2],\"n\":5,\"topic\":\"t\",\"flag\":false,"
               "\"o\":{\"k\":[1]}}");
    inputs_are(d,
               "{\"topic\":\"t\",\"n\":-7,\"flag\":true,\"x\":1.5e3,"
               "\"o\":{},\"l\":[],\"any\":null}",
               "{\"topic\":\"t\",\"n\":-7,\"flag\":true,\"x\":1.5e3,"
               "\"o\":{},\"l\":[],\"any\":null}");
    inputs_are(d, "{\"t\\u006fpic\":\"t\",\"x\":3}",
               "{\"t\\u006fpic\":\"t\",\"x\":3,\"n\":2,\"flag\":false,"
               "\"o\":{\"k\":[1]}}");
    evs_wf_free(d);

    d = parse_ok(DOC("{\"name\":\"a\",\"kind\":\"end\"}"));
    inputs_are(d, "", "{}");
    inputs_are(d, "{\"a\":1}", "{\"a\":1}");
    evs_wf_free(d);

    d = parse_ok("{\"name\":\"w\",\"inputs\":{\"n\":{\"default\":1}},"
                 "\"steps\":[{\"name\":\"a\",\"kind\":\"end\"}]}");
    inputs_are(d, "", "{\"n\":1}");
    evs_wf_free(d);
}

Test(workflow, refuses_missing_required_inputs_and_wrong_types)
{
    evs_wf_def *d = parse_ok(inputs_def);

    inputs_refused(d, "{}", "input \"topic\" is required");
    inputs_refused(d, "", "input \"topic\" is required");
    inputs_refused(d, "{\"n\":1}", "input \"topic\" is required");
    inputs_refused(d, "{\"topic\":5}",
                   "input \"topic\" must be of type "
                   "string");
    inputs_refused(d, "{\"topic\":null}", "must be of type string");
    inputs_refused(d, "{\"topic\":\"t\",\"n\":1.5}",
                   "input \"n\" must be of type integer");
    inputs_refused(d, "{\"topic\":\"t\",\"n\":1.0}", "type integer");
    inputs_refused(d, "{\"topic\":\"t\",\"n\":1e3}", "type integer");
    inputs_refused(d, "{\"topic\":\"t\",\"n\":\"2\"}", "type integer");
    inputs_refused(d, "{\"topic\":\"t\",\"flag\":1}", "type boolean");
    inputs_refused(d, "{\"topic\":\"t\",\"x\":\"1\"}", "type number");
    inputs_refused(d, "{\"topic\":\"t\",\"o\":[]}", "type object");
    inputs_refused(d, "{\"topic\":\"t\",\"l\":{}}", "type array");
    inputs_refused(d, "[1]", "not a JSON object");
    inputs_refused(d, "{\"topic\":", "not a JSON object");
    inputs_refused(d, "{\"topic\":\"a\",\"topic\":\"b\"}",
                   "duplicate member \"topic\"");
    evs_wf_free(d);
}

/* A strict definition whose step `a` has extra members `m`. */
#define STRICT(m)                                                              \
    "{\"name\":\"w\",\"strict_inputs\":true,\"inputs\":{"                      \
    "\"url\":{\"type\":\"string\",\"required\":true},"                         \
    "\"n\":{\"type\":\"integer\",\"default\":2}},\"steps\":["                  \
    "{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\"" m "},"              \
    "{\"name\":\"b\",\"kind\":\"sleep\",\"duration_ms\":1}]}"

/* With strict_inputs, a reference to an input that is not declared is
 * refused at parse time, wherever a template may hold one; it used to
 * fail only when the step ran. */
Test(workflow, strict_inputs_refuses_references_to_undeclared_inputs)
{
    static const refusal typos[] = {
        {STRICT(",\"params\":{\"u\":\"${inputs.ur}\"}"), "a",
         "params: \"${inputs.ur}\" names no declared input (the definition "
         "has strict_inputs)"},
        {STRICT(",\"params\":\"at ${inputs.url} and ${inputs.typo.x}\""), "a",
         "\"${inputs.typo.x}\" names no declared input"},
        {STRICT(",\"each\":\"${inputs.items}\""), "a",
         "each: \"${inputs.items}\" names no declared input"},
        {STRICT(",\"next\":[{\"to\":\"b\",\"when\":{\"not\":"
                "{\"exists\":\"${inputs.flag}\"}}}]"),
         "a", "condition: \"${inputs.flag}\" names no declared input"},
        {"{\"name\":\"w\",\"strict_inputs\":true,"
         "\"outputs\":{\"o\":\"${inputs.x}\"},"
         "\"steps\":[{\"name\":\"a\",\"kind\":\"end\"}]}",
         "", "outputs: \"${inputs.x}\" names no declared input"},
        {"{\"name\":\"w\",\"strict_inputs\":true,\"steps\":["
         "{\"name\":\"s\",\"kind\":\"sleep\","
         "\"until\":\"${inputs.when}\"}]}",
         "s", "until: \"${inputs.when}\" names no declared input"},
        {"{\"name\":\"w\",\"strict_inputs\":1,\"steps\":["
         "{\"name\":\"a\",\"kind\":\"end\"}]}",
         "", "\"strict_inputs\" must be a boolean"},
    };
    evs_wf_def *d;

    expect_refusals(typos, sizeof(typos) / sizeof(*typos), NULL);
    /* Declared inputs, paths into them and the whole object pass. */
    d = parse_ok(STRICT(",\"params\":{\"u\":\"${inputs.url}\","
                        "\"all\":\"${inputs}\",\"c\":\"${inputs.n.x}\"},"
                        "\"next\":[{\"to\":\"b\",\"when\":"
                        "{\"exists\":\"${inputs.n}\"}}]"));
    cr_assert_eq(d->strict_inputs, 1);
    evs_wf_free(d);
    /* Without it (the default, or false) nothing changes. */
    d = parse_ok(PARAMS("{\"u\":\"${inputs.ur}\"}"));
    cr_assert_eq(d->strict_inputs, 0);
    evs_wf_free(d);
    d = parse_ok("{\"name\":\"w\",\"strict_inputs\":false,\"steps\":["
                 "{\"name\":\"a\",\"kind\":\"action\",\"action\":\"x\","
                 "\"params\":\"${inputs.any}\"}]}");
    evs_wf_free(d);
}

/* With strict_inputs only declared inputs are accepted at start; without
 * it undeclared ones are kept. */
Test(workflow, strict_inputs_refuses_undeclared_inputs_at_start)
{
    evs_wf_def *d = parse_ok(STRICT(",\"next\":\"b\""));

    inputs_are(d, "{\"url\":\"u\"}", "{\"url\":\"u\",\"n\":2}");
    inputs_are(d, "{\"n\":3,\"url\":\"u\"}", "{\"n\":3,\"url\":\"u\"}");
    inputs_refused(d, "{\"url\":\"u\",\"urll\":\"v\"}",
                   "input \"urll\" is not declared (the definition has "
                   "strict_inputs)");
    inputs_refused(d, "{\"typo\":1}", "input \"typo\" is not declared");
    evs_wf_free(d);
    d = parse_ok("{\"name\":\"w\",\"strict_inputs\":true,\"steps\":["
                 "{\"name\":\"a\",\"kind\":\"end\"}]}");
    inputs_are(d, "", "{}");
    inputs_refused(d, "{\"a\":1}", "input \"a\" is not declared");
    evs_wf_free(d);
}

/* ------------------------------------------------------------------ */
/* Retry policies                                                     */
/* ------------------------------------------------------------------ */

Test(workflow, retry_delay_backs_off_and_stops_at_the_cap)
{
    evs_wf_retry r;

    memset(&r, 0, sizeof(r));
    r.initial_ms = 1000;
    r.backoff = 2.0;
    r.max_interval_ms = 10000;
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 0, 0.5), 1000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 1, 0.5), 1000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 2, 0.5), 2000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 3, 0.5), 4000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 4, 0.5), 8000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 5, 0.5), 10000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 60, 0.5), 10000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, UINT32_MAX, 0.5), 10000);

    r.backoff = 1.5;
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 3, 0), 2250);
    r.backoff = 1.0;
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 1000, 0), 1000);

    /* No cap set: Temporal's 100 x initial. */
    r.backoff = 10.0;
    r.max_interval_ms = 0;
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 3, 0), 100000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 4, 0), 100000);

    r.initial_ms = INT64_MAX / 2;
    r.max_interval_ms = INT64_MAX;
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 40, 0), INT64_MAX);
    cr_assert_eq(evs_wf_retry_delay_ms(NULL, 3, 0), 0);
}

Test(workflow, retry_jitter_stays_within_its_bounds)
{
    evs_wf_retry r;
    int64_t d;
    int i;

    memset(&r, 0, sizeof(r));
    r.initial_ms = 1000;
    r.backoff = 2.0;
    r.max_interval_ms = 60000;
    r.jitter = 0.5;
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 3, 0.0), 4000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 3, 0.5), 3000);
    for (i = 0; i < 1000; i++) {
        d = evs_wf_retry_delay_ms(&r, 3, i / 1000.0);
        cr_assert_geq(d, 2000, "rnd %d/1000: %lld", i, (long long)d);
        cr_assert_leq(d, 4000, "rnd %d/1000: %lld", i, (long long)d);
    }
    /* Out-of-range random numbers are clamped, never widen the range. */
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 3, -3.0), 4000);
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 3, 7.0), 2000);
    r.jitter = 1.0;
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 1, 0.75), 250);
    /* At the cap, jitter scales the capped value. */
    r.jitter = 0.5;
    cr_assert_eq(evs_wf_retry_delay_ms(&r, 30, 0.5), 45000);
}

Test(workflow, retry_allows_until_the_attempts_run_out)
{
    evs_wf_def *d = parse_ok(full_def);
    const evs_wf_retry *r = &d->steps[0].retry;
    evs_span t = evs_span_cstr("timeout");

    /* max_attempts 5: attempts 1..4 may be followed by another. */
    cr_assert_eq(evs_wf_retry_allows(r, 1, t, 1), 1);
    cr_assert_eq(evs_wf_retry_allows(r, 4, t, 1), 1);
    cr_assert_eq(evs_wf_retry_allows(r, 5, t, 1), 0);
    cr_assert_eq(evs_wf_retry_allows(r, 6, t, 1), 0);
    cr_assert_eq(evs_wf_retry_allows(r, 1, t, 0), 0);
    cr_assert_eq(evs_wf_retry_allows(r, 1, evs_span_cstr("auth"), 1), 0);
    cr_assert_eq(evs_wf_retry_allows(r, 1, evs_span_cstr("bad_input"), 1), 0);
    cr_assert_eq(evs_wf_retry_allows(r, 1, evs_span_cstr("aut"), 1), 1);
    cr_assert_eq(evs_wf_retry_allows(r, 1, evs_span_cstr(""), 1), 1);
    cr_assert_eq(evs_wf_retry_delay_ms(r, 1, 0), 200);
    cr_assert_eq(evs_wf_retry_delay_ms(r, 3, 0), 450);
    cr_assert_eq(evs_wf_retry_delay_ms(r, 20, 0), 3000);
    cr_assert_eq(evs_wf_retry_delay_ms(r, 20, 0.4), 2700);

    /* An empty `retry` object: unlimited. */
    r = &d->steps[2].retry;
    cr_assert_eq(evs_wf_retry_allows(r, 1, t, 1), 1);
    cr_assert_eq(evs_wf_retry_allows(r, 1000000, t, 1), 1);
    cr_assert_eq(evs_wf_retry_allows(r, UINT32_MAX, t, 1), 1);
    cr_assert_eq(evs_wf_retry_allows(r, 5, t, 0), 0);
    cr_assert_eq(evs_wf_retry_delay_ms(r, 2, 0), 2000);

    /* No `retry`: the step runs once. */
    r = &d->steps[7].retry;
    cr_assert_eq(d->steps[7].has_retry, 0);
    cr_assert_eq(evs_wf_retry_allows(r, 1, t, 1), 0);
    cr_assert_eq(evs_wf_retry_allows(NULL, 1, t, 1), 0);
    evs_wf_free(d);
}

/* ------------------------------------------------------------------ */
/* Allocation                                                         */
/* ------------------------------------------------------------------ */

/* A definition big enough to need several blocks of the arena. */
static char *big_def(void)
{
    size_t cap = 1 << 16, len;
    char *s = malloc(cap);
    int i;

    cr_assert_not_null(s);
    len = (size_t)snprintf(s, cap, "{\"name\":\"big\",\"steps\":[");
    for (i = 0; i < 60; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"name\":\"s%d\",\"kind\":\"action\","
                                "\"action\":\"x\",\"params\":{\"i\":%d,"
                                "\"q\":\"${inputs.q}\"},\"retry\":{"
                                "\"non_retryable\":[\"a\",\"b\"]},"
                                "\"next\":[{\"to\":\"s%d\",\"path\":\"p\","
                                "\"when\":{\"and\":[{\"gt\":[\"${inputs.n}\","
                                "%d]},true]}},{\"to\":\"e\"}],\"then\":\"e\"},",
                                i, i, i + 1 < 60 ? i + 1 : 0, i);
    snprintf(s + len, cap - len, "{\"name\":\"e\",\"kind\":\"end\"}]}");
    return s;
}

static void parse_loop(const char *json)
{
    evs_wf_def *d;
    evs_error_info e;
    tu_alloc c;
    int rc, n;

    tu_alloc_init(&c);
    for (n = 1;; n++) {
        tu_alloc_fail(&c, n, TU_FAIL_ONCE);
        d = NULL;
        rc = evs_wf_parse(json, strlen(json), &c.a, NULL, NULL, &d, &e);
        if (rc == 0) {
            cr_assert_gt(c.live, 0);
            cr_assert_str_eq(d->name, d->n_steps == 10 ? "full" : "big");
            evs_wf_free(d);
            cr_assert_eq(c.live, 0);
            break;
        }
        cr_assert_eq(rc, -ENOMEM, "allocation %d: rc %d (%s)", n, rc, e.msg);
        cr_assert_null(d);
        cr_assert_eq(e.code, -ENOMEM);
        cr_assert_str_eq(e.kind, "");
        cr_assert_str_eq(e.step, "");
        cr_assert_str_eq(e.msg, "out of memory");
        cr_assert_eq(c.live, 0, "allocation %d: %ld leaked", n, c.live);
    }
    cr_assert_gt(n, 2);
    cr_assert_lt(n, 5000);
}

Test(workflow, parse_survives_every_allocation_failure)
{
    char *big = big_def();

    parse_loop(full_def);
    parse_loop(big);
    free(big);
}

/* evs_free gives a buffer the library returned back to the allocator it
 * was made with: the counting allocator sees the block go; NULL is the C
 * library's allocator, and a NULL buffer is nothing to free. */
Test(workflow, evs_free_returns_a_returned_buffer_to_its_allocator)
{
    evs_wf_ctx c = make_ctx();
    evs_wf_def *d = parse_ok(inputs_def);
    char *out = NULL, *in = NULL;
    size_t len;
    tu_alloc k;
    long calls;

    tu_alloc_init(&k);
    cr_assert_eq(evs_wf_render(&c, evs_span_cstr("{\"a\":\"${inputs.s}\"}"),
                               &k.a, &out, &len, NULL),
                 0);
    cr_assert_eq(evs_wf_check_inputs(d, evs_span_cstr("{\"topic\":\"t\"}"),
                                     &k.a, &in, &len, NULL),
                 0);
    cr_assert_eq(k.live, 2, "the two results, nothing else");
    calls = k.calls;
    evs_free(&k.a, out);
    cr_assert_eq(k.live, 1);
    evs_free(&k.a, in);
    cr_assert_eq(k.live, 0);
    cr_assert_eq(k.bytes, 0);
    evs_free(&k.a, NULL);
    cr_assert_eq(k.live, 0);
    cr_assert_eq(k.calls, calls, "freeing asks for no memory");

    /* NULL: the C library's, as the buffer was made with (a mismatch
     * would show under the sanitizers). */
    cr_assert_eq(
        evs_wf_render(&c, evs_span_cstr("[1]"), NULL, &out, &len, NULL), 0);
    evs_free(NULL, out);
    evs_free(NULL, NULL);
    evs_wf_free(d);
}

Test(workflow, evaluation_survives_every_allocation_failure)
{
    evs_wf_def *d, *cd;
    evs_wf_ctx c = make_ctx();
    tu_alloc cnt, k;
    const char *tmpl = "{\"a\":\"${inputs.obj}\",\"b\":\"x=${inputs.q} "
                       "${inputs.list}\",\"c\":[\"${inputs.s}\"]}";
    char *out;
    size_t len;
    int rc, n, r;
    long live;

    tu_alloc_init(&cnt);
    tu_alloc_init(&k);
    for (n = 1;; n++) {
        tu_alloc_fail(&k, n, TU_FAIL_ONCE);
        out = NULL;
        rc = evs_wf_render(&c, evs_span_cstr(tmpl), &k.a, &out, &len, NULL);
        if (rc == 0) {
            cr_assert_str_eq(out, "{\"a\":{\"a\":1,\"b\":[1,2]},"
                                  "\"b\":\"x=say \\\"hi\\\"\\n "
                                  "[1,\\\"two\\\",{\\\"a\\\":1}]\","
                                  "\"c\":[\"hello world\"]}");
            evs_free(&k.a, out);
            cr_assert_eq(k.live, 0);
            break;
        }
        cr_assert_eq(rc, -ENOMEM);
        cr_assert_eq(k.live, 0);
    }
    cr_assert_gt(n, 2);

    d = parse_ok(inputs_def);
    for (n = 1;; n++) {
        tu_alloc_fail(&k, n, TU_FAIL_ONCE);
        rc = evs_wf_check_inputs(d, evs_span_cstr("{\"topic\":\"t\"}"), &k.a,
                                 &out, &len, NULL);
        if (rc == 0) {
            cr_assert_str_eq(out, "{\"topic\":\"t\",\"n\":2,\"flag\":false,"
                                  "\"o\":{\"k\":[1]}}");
            evs_free(&k.a, out);
            cr_assert_eq(k.live, 0);
            break;
        }
        cr_assert_eq(rc, -ENOMEM);
        cr_assert_eq(k.live, 0);
    }
    evs_wf_free(d);

    /* A condition allocates through its definition's allocator. */
    rc = evs_wf_parse(WHEN("{\"in\":[\"wor\",\"x ${inputs.s}\"]}"),
                      strlen(WHEN("{\"in\":[\"wor\",\"x ${inputs.s}\"]}")),
                      &cnt.a, NULL, NULL, &cd, NULL);
    cr_assert_eq(rc, 0);
    live = cnt.live;
    for (n = 1;; n++) {
        tu_alloc_fail(&cnt, n, TU_FAIL_ONCE);
        r = -7;
        rc = evs_wf_cond_eval(cd->steps[0].next[0].when, &c, &r);
        cr_assert_eq(cnt.live, live);
        if (!cnt.failed) {
            cr_assert_eq(rc, 0);
            cr_assert_eq(r, 1);
            break;
        }
        cr_assert_eq(rc, -ENOMEM, "allocation %d: rc %d", n, rc);
        cr_assert_eq(r, -7);
    }
    cr_assert_gt(n, 2);
    evs_wf_free(cd);
    cr_assert_eq(cnt.live, 0);
}

/* ------------------------------------------------------------------ */
/* Loop bounds, task or service, continue_as_new thresholds           */
/* ------------------------------------------------------------------ */

/* `s` with ' for ", in a buffer of the caller's. */
static const char *dq(const char *s, char *buf, size_t cap)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < cap; i++)
        buf[i] = s[i] == '\'' ? '"' : s[i];
    buf[i] = '\0';
    return buf;
}

static int service_of(const char *sq)
{
    char b[2048];
    evs_wf_def *d = parse_ok(dq(sq, b, sizeof(b)));
    int r = evs_wf_is_service(NULL, d);

    evs_wf_free(d);
    return r;
}

Test(workflow, classifies_task_or_service_on_the_seeds_indicators)
{
    /* Every loop bounded, an end, no wait in a loop: a task. */
    cr_assert_eq(
        service_of("{'name':'t','steps':["
                   "{'name':'a','kind':'action','action':'x','next':["
                   "{'to':'a','max_passes':5,'when':{'lt':['${vars.n}',5]}},"
                   "{'to':'e','when':{'ge':['${vars.n}',5]}}]},"
                   "{'name':'e','kind':'end'}]}"),
        0);
    /* No loop at all: a task. */
    cr_assert_eq(service_of("{'name':'t','steps':["
                            "{'name':'a','kind':'action','action':'x'}]}"),
                 0);
    /* The same loop unbounded: a service. */
    cr_assert_eq(service_of("{'name':'s','steps':["
                            "{'name':'a','kind':'action','action':'x','next':["
                            "{'to':'a','when':{'lt':['${vars.n}',5]}},"
                            "{'to':'e','when':{'ge':['${vars.n}',5]}}]},"
                            "{'name':'e','kind':'end'}]}"),
                 1);
    /* A wait for a signal inside a loop, even a bounded one: a service. */
    cr_assert_eq(
        service_of("{'name':'s','steps':["
                   "{'name':'a','kind':'action','action':'x','next':'w'},"
                   "{'name':'w','kind':'wait_event','event':'go','next':["
                   "{'to':'a','max_passes':3,'when':{'lt':['${vars.n}',5]}},"
                   "{'to':'e','when':{'ge':['${vars.n}',5]}}]},"
                   "{'name':'e','kind':'end'}]}"),
        1);
    /* A wait outside the bounded loop: still a task. */
    cr_assert_eq(
        service_of("{'name':'t','steps':["
                   "{'name':'w','kind':'wait_event','event':'go','next':'a'},"
                   "{'name':'a','kind':'action','action':'x','next':["
                   "{'to':'a','max_passes':3,'when':{'lt':['${vars.n}',5]}},"
                   "{'to':'e','when':{'ge':['${vars.n}',5]}}]},"
                   "{'name':'e','kind':'end'}]}"),
        0);
    /* No end: every move is always made, so no path ever completes. */
    cr_assert_eq(service_of("{'name':'s','steps':["
                            "{'name':'a','kind':'action','action':'x','next':["
                            "{'to':'a','max_passes':3}]}]}"),
                 1);
    /* An inner bounded loop in an unbounded outer one: a service. */
    cr_assert_eq(
        service_of("{'name':'s','steps':["
                   "{'name':'a','kind':'action','action':'x','next':'b'},"
                   "{'name':'b','kind':'action','action':'x','next':["
                   "{'to':'b','max_passes':2,'when':{'lt':['${vars.k}',2]}},"
                   "{'to':'a','when':{'lt':['${vars.m}',3]}}]}]}"),
        1);
}

Test(workflow, refuses_a_max_passes_that_is_not_a_positive_integer_or_branches)
{
    static const char *const bad[] = {
        "{'name':'b','steps':[{'name':'a','kind':'action','action':'x',"
        "'next':[{'to':'a','max_passes':0,'when':{'lt':[1,2]}}]}]}",
        "{'name':'b','steps':[{'name':'a','kind':'action','action':'x',"
        "'next':[{'to':'a','max_passes':'3','when':{'lt':[1,2]}}]}]}",
        "{'name':'b','steps':[{'name':'a','kind':'action','action':'x',"
        "'next':[{'to':'a','max_passes':2.5,'when':{'lt':[1,2]}}]}]}",
        "{'name':'b','steps':[{'name':'a','kind':'action','action':'x',"
        "'next':[{'to':'a','path':'p','max_passes':3,'when':{'lt':[1,2]}}]}]}",
        "{'name':'b','continue_as_new':{'profile':'daily'},"
        "'steps':[{'name':'a','kind':'action','action':'x'}]}",
        "{'name':'b','continue_as_new':{'age_ms':-1},"
        "'steps':[{'name':'a','kind':'action','action':'x'}]}",
        "{'name':'b','continue_as_new':{'hours':1},"
        "'steps':[{'name':'a','kind':'action','action':'x'}]}",
    };
    char b[1024];

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        evs_wf_def *d = NULL;
        evs_error_info e;
        const char *j = dq(bad[i], b, sizeof(b));
        cr_assert_eq(evs_wf_parse(j, strlen(j), NULL, NULL, NULL, &d, &e),
                     EVS_EPARSE, "accepted: %s", j);
        cr_assert_null(d);
    }
}

Test(workflow, reads_max_passes_and_the_continue_as_new_thresholds)
{
    char b[1024];
    evs_wf_def *d = parse_ok(
        dq("{'name':'b','continue_as_new':{'profile':'service','bytes':7},"
           "'steps':[{'name':'a','kind':'action','action':'x',"
           "'next':[{'to':'a','max_passes':3,'when':{'lt':[1,2]}}]}]}",
           b, sizeof(b)));

    cr_assert_eq(d->steps[0].next[0].max_passes, 3);
    cr_assert_eq(d->cont.events, 1000);
    cr_assert_eq(d->cont.age_ms, 86400000);
    cr_assert_eq(d->cont.bytes, 7);
    evs_wf_free(d);
    d = parse_ok(dq("{'name':'b','steps':[{'name':'a','kind':'action',"
                    "'action':'x'}]}",
                    b, sizeof(b)));
    cr_assert_eq(d->cont.events, -1);
    cr_assert_eq(d->cont.bytes, -1);
    cr_assert_eq(d->cont.age_ms, -1);
    evs_wf_free(d);
}

/* ---------------------------------------------------------------- */
/* history_limits                                                   */
/* ---------------------------------------------------------------- */

Test(workflow, reads_history_limits)
{
    char b[1024];
    evs_wf_def *d = parse_ok(
        dq("{'name':'b','history_limits':{'warn_events':10,'max_events':20,"
           "'warn_bytes':1000,'max_bytes':5000},"
           "'steps':[{'name':'a','kind':'action','action':'x'}]}",
           b, sizeof(b)));

    cr_assert_eq(d->limits.warn_events, 10);
    cr_assert_eq(d->limits.max_events, 20);
    cr_assert_eq(d->limits.warn_bytes, 1000);
    cr_assert_eq(d->limits.max_bytes, 5000);
    evs_wf_free(d);
    d = parse_ok(dq("{'name':'b','history_limits':{'max_bytes':9},"
                    "'steps':[{'name':'a','kind':'action','action':'x'}]}",
                    b, sizeof(b)));
    cr_assert_eq(d->limits.max_bytes, 9);
    cr_assert_eq(d->limits.warn_events, -1);
    cr_assert_eq(d->limits.warn_bytes, -1);
    cr_assert_eq(d->limits.max_events, -1);
    evs_wf_free(d);
    d = parse_ok(dq("{'name':'b','steps':[{'name':'a','kind':'action',"
                    "'action':'x'}]}",
                    b, sizeof(b)));
    cr_assert_eq(d->limits.max_events, -1);
    cr_assert_eq(d->limits.max_bytes, -1);
    evs_wf_free(d);
}

Test(workflow, refuses_bad_history_limits_saying_which_member)
{
    static const struct {
        const char *limits, *why;
    } bad[] = {
        {"{'max_events':0}", "\"history_limits.max_events\" must be an "
                             "integer >= 1"},
        {"{'warn_bytes':-5}", "\"history_limits.warn_bytes\" must be an "
                              "integer >= 1"},
        {"{'max_bytes':'1M'}", "\"history_limits.max_bytes\" must be an "
                               "integer >= 1"},
        {"{'max_events':1.5}", "\"history_limits.max_events\" must be an "
                               "integer >= 1"},
        {"{'hard':10}", "unknown member \"hard\" in \"history_limits\""},
        {"[10]", "\"history_limits\" must be an object"},
        {"{'warn_events':30,'max_events':20}",
         "\"history_limits.warn_events\" exceeds "
         "\"history_limits.max_events\""},
        {"{'warn_bytes':30,'max_bytes':20}",
         "\"history_limits.warn_bytes\" exceeds \"history_limits.max_bytes\""},
    };
    char def[512], b[1024];

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        evs_wf_def *d = NULL;
        evs_error_info e;
        const char *j;
        snprintf(def, sizeof(def),
                 "{'name':'b','history_limits':%s,"
                 "'steps':[{'name':'a','kind':'action','action':'x'}]}",
                 bad[i].limits);
        j = dq(def, b, sizeof(b));
        cr_assert_eq(evs_wf_parse(j, strlen(j), NULL, NULL, NULL, &d, &e),
                     EVS_EPARSE, "accepted: %s", j);
        cr_assert_null(d);
        cr_assert_str_eq(e.kind, "definition");
        cr_assert_str_eq(e.step, "");
        cr_assert_str_eq(e.msg, bad[i].why, "%s: %s", j, e.msg);
    }
}
