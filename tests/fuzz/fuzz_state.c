/*
 * fuzz_state.c: fuzz target for the replay state reader,
 * evs_replay_load_state(), which reads the `state` JSON of a snapshot in
 * one pass, unescaping strings in place and pointing the state's spans
 * into its own copy of the text.
 *
 * Whatever the bytes, a load must not crash and must return one of its
 * documented codes. What it accepts must hold up:
 *  - the text is JSON: evs_json_check() accepts it, so the single pass is
 *    never laxer than the checker it claims to match;
 *  - every span of the loaded state can be read whole (a span left
 *    pointing outside the text is a sanitizer report), and every path,
 *    step, variable and version is found again by its key;
 *  - the state written back with evs_replay_state_json() is JSON, loads
 *    into a fresh replayer, and that one writes back the same bytes: the
 *    writer's output is canonical, a fixed point of load and write.
 * A refused load leaves a replayer that can still be written out.
 *
 * Inputs are used byte for byte: the state carries no checksum of its own
 * (the snapshot around it does).
 */
#include "fuzz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int known_code(int rc)
{
    return rc == 0 || rc == EVS_EPARSE || rc == EVS_EFORMAT || rc == -ENOMEM;
}

static int json_ok(const char *p, size_t n)
{
    return evs_json_check(p, n, 0, NULL, NULL, NULL) == 0;
}

/* Reads every byte of a span, so that the sanitizers see a span that
 * points where it should not; the sum keeps the reads from being
 * optimised away. */
static unsigned sink;

static void touch(evs_span s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;

    FUZZ_CHECK(s.len == 0 || s.ptr != NULL, "a span with bytes but no pointer");
    for (size_t i = 0; i < s.len; i++)
        sink += p[i];
}

/* Everything the accessors hand out, read whole, and the finders
 * checked against the lists. */
static void walk(const evs_replay *r)
{
    const evs_exec_state *x = evs_replay_exec(r);
    size_t i, n;

    FUZZ_CHECK(x != NULL, "no execution state");
    touch(x->execution_id);
    touch(x->workflow_name);
    touch(x->inputs);
    touch(x->outputs);
    touch(x->error);
    touch(x->definition);
    touch(x->definition_hash);
    touch(x->inputs_hash);
    touch(x->lineage);
    touch(x->continued_as);
    touch(x->failed_path);
    touch(x->failed_step);

    n = evs_replay_path_count(r);
    for (i = 0; i < n; i++) {
        const evs_path_state *p = evs_replay_path(r, i), *f;
        FUZZ_CHECK(p != NULL, "path i < count is missing");
        touch(p->id);
        touch(p->parent);
        touch(p->current_step);
        touch(p->error);
        touch(p->last_output);
        f = evs_replay_find_path(r, p->id);
        FUZZ_CHECK(f != NULL && fuzz_span_eq(f->id, p->id),
                   "a loaded path is not found by its id");
    }
    n = evs_replay_step_count(r);
    for (i = 0; i < n; i++) {
        const evs_step_state *s = evs_replay_step(r, i), *f;
        FUZZ_CHECK(s != NULL, "step i < count is missing");
        touch(s->path_id);
        touch(s->name);
        touch(s->input);
        touch(s->output);
        touch(s->error);
        touch(s->stored_variable);
        touch(s->step_hash);
        touch(s->kind);
        f = evs_replay_find_step(r, s->path_id, s->name, s->iteration);
        FUZZ_CHECK(f != NULL && fuzz_span_eq(f->path_id, s->path_id) &&
                       fuzz_span_eq(f->name, s->name) &&
                       f->iteration == s->iteration,
                   "a loaded step is not found by path, name and iteration");
    }
    n = evs_replay_stepname_count(r);
    for (i = 0; i < n; i++) {
        const evs_stepname_state *s = evs_replay_stepname(r, i), *f;
        FUZZ_CHECK(s != NULL, "step name i < count is missing");
        touch(s->name);
        touch(s->kind);
        touch(s->step_hash);
        touch(s->output);
        f = evs_replay_find_stepname(r, s->name);
        FUZZ_CHECK(f != NULL && fuzz_span_eq(f->name, s->name),
                   "a loaded step name is not found by its name");
    }
    n = evs_replay_each_count(r);
    for (i = 0; i < n; i++) {
        const evs_each_state *e = evs_replay_each(r, i);
        FUZZ_CHECK(e != NULL, "each i < count is missing");
        touch(e->path_id);
        touch(e->name);
    }
    n = evs_replay_var_count(r);
    for (i = 0; i < n; i++) {
        const evs_var_state *v = evs_replay_var(r, i), *f;
        FUZZ_CHECK(v != NULL, "variable i < count is missing");
        touch(v->name);
        touch(v->value);
        f = evs_replay_find_var(r, v->name);
        FUZZ_CHECK(f != NULL && fuzz_span_eq(f->name, v->name),
                   "a loaded variable is not found by its name");
    }
    n = evs_replay_signal_count(r);
    for (i = 0; i < n; i++) {
        const evs_signal_state *s = evs_replay_signal(r, i);
        FUZZ_CHECK(s != NULL, "signal i < count is missing");
        touch(s->id);
        touch(s->name);
        touch(s->payload);
        touch(s->consumed_by_path);
        touch(s->consumed_by_step);
        FUZZ_CHECK(evs_replay_signal_received(r, s->id, NULL) || s->id.len == 0,
                   "a loaded signal is not found by its id");
    }
    n = evs_replay_version_count(r);
    for (i = 0; i < n; i++) {
        const evs_version_state *v = evs_replay_version(r, i), *f;
        FUZZ_CHECK(v != NULL, "version i < count is missing");
        touch(v->change_id);
        f = evs_replay_find_version(r, v->change_id);
        FUZZ_CHECK(f != NULL && fuzz_span_eq(f->change_id, v->change_id),
                   "a loaded version is not found by its change id");
    }
    n = evs_replay_timer_count(r);
    for (i = 0; i < n; i++) {
        const evs_timer_state *t = evs_replay_timer(r, i);
        FUZZ_CHECK(t != NULL, "timer i < count is missing");
        touch(t->timer_id);
        touch(t->path_id);
        touch(t->step);
    }
    n = evs_replay_wait_count(r);
    for (i = 0; i < n; i++) {
        const evs_wait_state *w = evs_replay_wait(r, i);
        FUZZ_CHECK(w != NULL, "wait i < count is missing");
        touch(w->path_id);
        touch(w->step);
        touch(w->signal);
    }
}

/* The state written back: JSON, and a fixed point of load and write in
 * the same mode. */
static void write_back(const evs_replay *r, const evs_replay_opts *o)
{
    evs_replay *r2 = NULL;
    char *out = NULL, *out2 = NULL;
    size_t len = 0, len2 = 0;
    int rc;

    rc = evs_replay_state_json(r, &out, &len);
    FUZZ_CHECK(rc == 0 || rc == -ENOMEM, "state_json: undocumented code");
    if (rc != 0)
        return;
    FUZZ_CHECK(json_ok(out, len), "the state written back is not JSON");
    rc = evs_replay_new(o, &r2);
    FUZZ_CHECK(rc == 0, "out of memory");
    rc = evs_replay_load_state(r2, out, len);
    FUZZ_CHECK(rc == 0 || rc == -ENOMEM,
               "the state written back does not load again");
    if (rc == 0) {
        rc = evs_replay_state_json(r2, &out2, &len2);
        FUZZ_CHECK(rc == 0 || rc == -ENOMEM, "state_json: undocumented code");
        if (rc == 0) {
            FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0,
                       "the state written back loads to another state");
            free(out2);
        }
    }
    evs_replay_free(r2);
    free(out);
}

/* Loads the text into a replayer of one mode: a full one, or a compact
 * one (which also drops, from a full state, what it would not keep). */
static void load_in(const char *text, size_t size, int compact)
{
    evs_replay_opts o;
    evs_replay *r = NULL;
    char *out = NULL;
    size_t len = 0;
    int rc;

    evs_replay_opts_init(&o);
    o.compact = compact;
    rc = evs_replay_new(&o, &r);
    FUZZ_CHECK(rc == 0, "out of memory");
    rc = evs_replay_load_state(r, text, size);
    FUZZ_CHECK(known_code(rc), "undocumented return code");
    if (rc == 0) {
        FUZZ_CHECK(json_ok(text, size), "accepted text that is not JSON");
        walk(r);
        write_back(r, &o);
    } else {
        /* Whatever was half loaded is gone and nothing dangles. */
        walk(r);
        rc = evs_replay_state_json(r, &out, &len);
        FUZZ_CHECK(rc == 0 || rc == -ENOMEM,
                   "a refused load leaves a replayer that cannot be written");
        if (rc == 0)
            FUZZ_CHECK(json_ok(out, len),
                       "a refused load leaves a state written as non-JSON");
        free(out);
    }
    evs_replay_free(r);
}

FUZZ_ENTRY(state)
{
    load_in((const char *)data, size, 0);
    load_in((const char *)data, size, 1);
    return 0;
}
