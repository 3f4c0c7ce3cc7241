/*
 * fuzz_workflow.c: fuzz target for the definition parser, evs_wf_parse(),
 * and for what a parsed definition is then used for.
 *
 * Whatever the bytes, parsing must not crash and must return 0 or
 * EVS_EPARSE. A definition that parses must hold up the way the
 * orchestrator uses it: its compact form parses again to the same hash;
 * every step is found by name; every template of every step (params,
 * each, duration, until) and the outputs render, with a dummy context,
 * to valid JSON or fail with a documented code; every edge condition
 * evaluates to 0 or 1; the retry policy gives sane delays; and the
 * declared inputs check a few input objects.
 */
#include "fuzz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char inputs_json[] =
    "{\"a\":1,\"b\":\"x\",\"url\":\"https://example.org\",\"topic\":\"cats\","
    "\"list\":[1,{\"c\":2},\"s\"],\"texts\":[{\"id\":\"a1\",\"body\":\"Hi\"}],"
    "\"obj\":{\"k\":\"v\",\"n\":null},\"t\":true,\"f\":1.5e3,"
    "\"ref\":\"${inputs.a}\",\"until\":\"2026-11-22T10:15:30Z\"}";

/* Resolves every name to something, except names starting with 'z'
 * (missing) and "bad" (a resolver that hands back broken JSON). */
static int var(void *arg, evs_span name, evs_span *value)
{
    (void)arg;
    if (name.len && name.ptr[0] == 'z')
        return -ENOENT;
    if (name.len == 3 && memcmp(name.ptr, "bad", 3) == 0) {
        *value = evs_span_cstr("{\"unterminated\":");
        return 0;
    }
    *value = evs_span_cstr("{\"body\":\"<html>\",\"query\":\"q\",\"approved\":"
                           "true,\"by\":\"ana\",\"n\":[1,2,3],\"text\":\"t\"}");
    return 0;
}

static int step_output(void *arg, evs_span step, evs_span *value)
{
    (void)arg;
    if (step.len && step.ptr[0] == 'z')
        return -ENOENT;
    *value = evs_span_cstr("{\"summary\":\"ok\",\"approved\":true,"
                           "\"by\":\"ana\",\"a\":[1,2],"
                           "\"s\":\"${inputs.a}\"}");
    return 0;
}

/* Accepts every action but those starting with '!', so that both the
 * accepted and the refused branch of the check are reached. */
static int has_action(void *arg, const char *name)
{
    (void)arg;
    return name[0] != '!';
}

static void render(const evs_wf_ctx *c, evs_span tmpl)
{
    evs_error_info err;
    char *out = NULL;
    size_t len = 0;
    int rc;

    rc = evs_wf_render(c, tmpl, NULL, &out, &len, &err);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == EVS_EPARSE || rc == -ENOMEM,
               "render failed with an undocumented code");
    if (rc != 0) {
        FUZZ_CHECK(out == NULL, "a failed render set its output");
        return;
    }
    FUZZ_CHECK(out != NULL && out[len] == '\0',
               "rendered JSON is not NUL-terminated");
    FUZZ_CHECK(evs_json_check(out, len, 0, NULL, NULL, NULL) == 0,
               "render produced invalid JSON");
    free(out);
}

static void check_step(const evs_wf_def *d, const evs_wf_step *s)
{
    evs_wf_ctx c;
    int res, rc;

    FUZZ_CHECK(s->name && evs_wf_find_step(d, evs_span_cstr(s->name)) == s,
               "a step is not found by its name");
    FUZZ_CHECK(s->raw.ptr >= d->json.ptr &&
                   s->raw.ptr + s->raw.len <= d->json.ptr + d->json.len,
               "a step's raw text is not inside the definition");
    memset(&c, 0, sizeof(c));
    c.inputs = evs_span_cstr(inputs_json);
    c.index = -1;
    c.var = var;
    c.step_output = step_output;
    if (s->params.len)
        render(&c, s->params);
    if (s->each.len) {
        render(&c, s->each);
        /* The params of each iteration see the item and its index. */
        c.item = evs_span_cstr("{\"id\":\"a1\",\"body\":\"Hello\",\"n\":[0]}");
        c.index = 0;
        if (s->params.len)
            render(&c, s->params);
        c.item = evs_span_cstr("\"plain\"");
        c.index = 7;
        if (s->params.len)
            render(&c, s->params);
        c.item = (evs_span){NULL, 0};
        c.index = -1;
    }
    if (s->duration.len)
        render(&c, s->duration);
    if (s->until.len)
        render(&c, s->until);
    for (size_t i = 0; i < s->n_next; i++) {
        const evs_wf_edge *e = &s->next[i];
        FUZZ_CHECK(e->to && evs_wf_find_step(d, evs_span_cstr(e->to)),
                   "an edge leads to no step");
        res = -1;
        rc = evs_wf_cond_eval(e->when, &c, &res);
        FUZZ_CHECK(rc == 0 || rc == EVS_EPARSE || rc == -ENOMEM,
                   "condition failed with an undocumented code");
        FUZZ_CHECK(rc != 0 || res == 0 || res == 1,
                   "condition is neither true nor false");
    }
    if (s->then)
        FUZZ_CHECK(evs_wf_find_step(d, evs_span_cstr(s->then)) != NULL,
                   "then names no step");
    if (s->has_retry) {
        static const double rnd[] = {0.0, 0.5, 0.999999, -1.0, 2.0};
        for (uint32_t a = 0; a < 70; a += 3) {
            for (size_t k = 0; k < sizeof(rnd) / sizeof(rnd[0]); k++) {
                int64_t ms = evs_wf_retry_delay_ms(&s->retry, a, rnd[k]);
                FUZZ_CHECK(ms >= 0, "a retry delay is negative");
            }
            (void)evs_wf_retry_allows(&s->retry, a, evs_span_cstr("x"), 1);
        }
    }
}

static void check_inputs(const evs_wf_def *d, const char *in)
{
    evs_error_info err;
    char *out = NULL;
    size_t len = 0;
    int rc;

    rc = evs_wf_check_inputs(d, evs_span_cstr(in), NULL, &out, &len, &err);
    FUZZ_CHECK(rc == 0 || rc == EVS_EPARSE || rc == -ENOMEM,
               "input check failed with an undocumented code");
    if (rc != 0)
        return;
    FUZZ_CHECK(out && out[len] == '\0' && len > 1 && out[0] == '{' &&
                   evs_json_check(out, len, 0, NULL, NULL, NULL) == 0,
               "checked inputs are not a JSON object");
    free(out);
}

static void check(const char *buf, size_t len)
{
    evs_wf_def *d = NULL, *again = NULL;
    evs_error_info err;
    evs_wf_ctx c;
    int rc;

    rc = evs_wf_parse(buf, len, NULL, has_action, NULL, &d, &err);
    FUZZ_CHECK(rc == 0 || rc == EVS_EPARSE || rc == -ENOMEM,
               "parse failed with an undocumented code");
    if (rc != 0) {
        FUZZ_CHECK(d == NULL, "a refused definition was handed out");
        FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL &&
                       memchr(err.step, '\0', sizeof(err.step)) != NULL,
                   "error strings are not terminated");
        return;
    }
    FUZZ_CHECK(d->name && d->n_steps > 0 && d->steps,
               "a parsed definition has no name or steps");
    FUZZ_CHECK(d->json.ptr[d->json.len] == '\0' &&
                   memchr(d->json.ptr, '\0', d->json.len) == NULL,
               "compact form is not one NUL-terminated string");
    FUZZ_CHECK(strlen(d->hash) == 16, "hash is not 16 hex digits");

    /* The compact form is the same definition. */
    rc = evs_wf_parse(d->json.ptr, d->json.len, NULL, has_action, NULL, &again,
                      &err);
    FUZZ_CHECK(rc == 0, "the compact form of a definition does not parse");
    FUZZ_CHECK(strcmp(again->hash, d->hash) == 0 &&
                   again->n_steps == d->n_steps && again->version == d->version,
               "the compact form parses to another definition");
    evs_wf_free(again);

    for (size_t i = 0; i < d->n_steps; i++) {
        FUZZ_CHECK(d->steps[i].index == i, "step index is wrong");
        check_step(d, &d->steps[i]);
    }
    memset(&c, 0, sizeof(c));
    c.inputs = evs_span_cstr(inputs_json);
    c.index = -1;
    c.var = var;
    c.step_output = step_output;
    if (d->outputs.len)
        render(&c, d->outputs);
    check_inputs(d, "{}");
    check_inputs(d, inputs_json);
    check_inputs(d, "{\"a\":\"1\",\"list\":{},\"obj\":[],\"t\":0}");
    check_inputs(d, "[]");
    evs_wf_free(d);
}

FUZZ_ENTRY(workflow)
{
    char *buf = malloc(size ? size : 1);

    FUZZ_CHECK(buf != NULL, "out of memory");
    memcpy(buf, data, size);
    check(buf, size);
    free(buf);
    return 0;
}
