/*
 * harness.c: the fixture, recorders, actions, loop scripts and history
 * readers the orchestrator suites share (see harness.h).
 */
#include "harness.h"

#include "formats_shared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT_OF(a) (sizeof(a) / sizeof(*(a)))

char *dir;
evs_store *st;
evs_orch *orch;

static harness_actions_fn suite_actions;

/* What a test allocated, freed at teardown if an assertion cut the test
 * short. */
static char *jpool[256];
static size_t njpool;
static evs_replay *live_rp[16];
static evs_event_owned *live_ev[16];
static size_t live_n[16];

/* ---------------------------------------------------------------- */
/* Spans and definitions                                            */
/* ---------------------------------------------------------------- */

evs_span S(const char *s)
{
    return evs_span_cstr(s);
}

int spans_equal(evs_span a, evs_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

int span_is(evs_span s, const char *lit)
{
    return spans_equal(s, evs_span_cstr(lit));
}

int span_contains(evs_span s, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= s.len; i++)
        if (memcmp(s.ptr + i, needle, n) == 0)
            return 1;
    return 0;
}

void cpy(char *dst, size_t cap, evs_span s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;

    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

char *pooled(char *p)
{
    cr_assert_not_null(p);
    cr_assert_lt(njpool, COUNT_OF(jpool));
    jpool[njpool++] = p;
    return p;
}

const char *J(const char *s)
{
    char *p = pooled(strdup(s));

    for (char *q = p; *q; q++)
        if (*q == '\'')
            *q = '"';
    return p;
}

/* ---------------------------------------------------------------- */
/* Outcomes and the log hook                                        */
/* ---------------------------------------------------------------- */

outcome_rec outs[128];
size_t nouts;
void (*outcome_hook)(const char *id, evs_outcome oc);
char last_log[1024];
char last_warn[1024];

static void on_outcome(void *arg, const char *id, evs_outcome oc, int err)
{
    outcome_rec *r = NULL;

    (void)arg;
    for (size_t i = 0; i < nouts; i++)
        if (strcmp(outs[i].id, id) == 0)
            r = &outs[i];
    if (!r) {
        cr_assert_lt(nouts, COUNT_OF(outs));
        r = &outs[nouts++];
        memset(r, 0, sizeof(*r));
        snprintf(r->id, sizeof(r->id), "%s", id);
    }
    r->oc = oc;
    r->err = err;
    r->reports++;
    if (outcome_hook)
        outcome_hook(id, oc);
}

static void log_hook(void *ctx, const evs_log_record *r)
{
    (void)ctx;
    if (r->level == EVS_LOG_ERROR)
        (void)evs_log_format(r, EVS_LOG_TEXT, last_log, sizeof(last_log));
    if (r->level == EVS_LOG_WARN)
        (void)evs_log_format(r, EVS_LOG_TEXT, last_warn, sizeof(last_warn));
}

const outcome_rec *outcome_of(const char *id)
{
    for (size_t i = 0; i < nouts; i++)
        if (strcmp(outs[i].id, id) == 0)
            return &outs[i];
    return NULL;
}

/* A report is made once per execution; an error goes only with
 * EVS_OUTCOME_ERROR. */
static void expect_reported_once(const outcome_rec *r)
{
    cr_assert_eq(r->reports, 1, "%s: reported %d times", r->id, r->reports);
    if (r->oc != EVS_OUTCOME_ERROR)
        cr_assert_eq(r->err, 0, "%s: outcome %s with error %s", r->id,
                     evs_outcome_name(r->oc), evs_err_name(r->err));
}

void expect_outcome(const char *id, evs_outcome oc)
{
    const outcome_rec *r = outcome_of(id);

    cr_assert_not_null(r, "no outcome reported for %s", id);
    cr_assert_eq(r->oc, oc, "%s: outcome %s, expected %s (err %s; %s)", id,
                 evs_outcome_name(r->oc), evs_outcome_name(oc),
                 evs_err_name(r->err), last_log);
    expect_reported_once(r);
}

size_t outcome_count(evs_outcome oc)
{
    size_t n = 0;

    for (size_t i = 0; i < nouts; i++)
        if (outs[i].oc == oc) {
            expect_reported_once(&outs[i]);
            n++;
        }
    return n;
}

/* ---------------------------------------------------------------- */
/* Actions that record their calls                                  */
/* ---------------------------------------------------------------- */

call_rec calls[MAX_CALLS];
size_t ncalls;
static pthread_mutex_t calls_mu = PTHREAD_MUTEX_INITIALIZER;

void record_call(evs_action_req *req)
{
    const evs_action_call *c = evs_action_req_call(req);
    call_rec *r;

    pthread_mutex_lock(&calls_mu);
    cr_assert_lt(ncalls, MAX_CALLS);
    r = &calls[ncalls++];
    cpy(r->exec, sizeof(r->exec), c->execution_id);
    cpy(r->action, sizeof(r->action), c->action);
    cpy(r->path, sizeof(r->path), c->path_id);
    cpy(r->step, sizeof(r->step), c->step);
    cpy(r->key, sizeof(r->key), c->idempotency_key);
    cpy(r->input, sizeof(r->input), c->input);
    r->attempt = c->attempt;
    r->iteration = c->iteration;
    r->timeout_ms = c->timeout_ms;
    r->thread = pthread_self();
    pthread_mutex_unlock(&calls_mu);
}

static int call_is(const call_rec *c, const char *exec, const char *step,
                   int64_t iter)
{
    return (!exec || strcmp(c->exec, exec) == 0) &&
           strcmp(c->step, step) == 0 &&
           (iter == ANY_ITER || c->iteration == iter);
}

size_t count(const char *exec, const char *step, int64_t iter)
{
    size_t n = 0;

    for (size_t i = 0; i < ncalls; i++)
        if (call_is(&calls[i], exec, step, iter))
            n++;
    return n;
}

size_t count_calls(const char *step)
{
    return count(NULL, step, ANY_ITER);
}

size_t count_key(const char *key)
{
    size_t n = 0;

    for (size_t i = 0; i < ncalls; i++)
        if (strcmp(calls[i].key, key) == 0)
            n++;
    return n;
}

const call_rec *call_of(const char *exec, const char *step, int64_t iter,
                        size_t nth)
{
    for (size_t i = 0; i < ncalls; i++)
        if (call_is(&calls[i], exec, step, iter) && nth-- == 0)
            return &calls[i];
    return NULL;
}

void expect_input(const char *exec, const char *step, int64_t iter, size_t nth,
                  const char *want)
{
    const call_rec *c = call_of(exec, step, iter, nth);

    cr_assert_not_null(c, "%s: no call %zu of %s", exec, nth, step);
    cr_assert_str_eq(c->input, want, "%s: %s's input", exec, step);
}

void expect_path(const char *exec, const char *step, const char *path)
{
    for (size_t i = 0; i < ncalls; i++)
        if (call_is(&calls[i], exec, step, ANY_ITER))
            cr_assert_str_eq(
                calls[i].path, path, "%s: %s (iteration %lld) ran on path %s",
                exec, step, (long long)calls[i].iteration, calls[i].path);
}

static evs_action_req *held[32];
static size_t nheld;
int hold_mode = 1;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

size_t held_count(void)
{
    size_t n;

    pthread_mutex_lock(&held_mu);
    n = nheld;
    pthread_mutex_unlock(&held_mu);
    return n;
}

void hold(evs_action_req *req)
{
    pthread_mutex_lock(&held_mu);
    cr_assert_lt(nheld, COUNT_OF(held));
    held[nheld++] = req;
    pthread_mutex_unlock(&held_mu);
}

void complete_held(const char *out)
{
    evs_action_req *rs[COUNT_OF(held)];
    size_t n;

    pthread_mutex_lock(&held_mu);
    n = nheld;
    memcpy(rs, held, n * sizeof(*rs));
    nheld = 0;
    pthread_mutex_unlock(&held_mu);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(evs_action_complete(rs[i], evs_span_cstr(out)), 0);
}

void t_echo(void *arg, evs_action_req *req)
{
    (void)arg;
    record_call(req);
    evs_action_complete(req, evs_action_req_call(req)->input);
}

void t_hold(void *arg, evs_action_req *req)
{
    (void)arg;
    record_call(req);
    if (hold_mode)
        hold(req);
    else
        evs_action_complete(req, evs_action_req_call(req)->input);
}

/* ---------------------------------------------------------------- */
/* The orchestrator                                                 */
/* ---------------------------------------------------------------- */

void orch_opts_init(evs_orch_opts *o, int stop_when_idle)
{
    evs_orch_opts_init(o);
    o->stop_when_idle = stop_when_idle;
    o->inbox_poll_ms = 50;
    o->on_outcome = on_outcome;
}

evs_orch *orch_new_on(evs_store *s, const evs_orch_opts *o)
{
    evs_orch *made = NULL;

    cr_assert_eq(evs_orch_new(s, o, &made), 0);
    cr_assert_eq(evs_orch_register(made, "t_echo", t_echo, NULL, 0), 0);
    cr_assert_eq(evs_orch_register(made, "t_hold", t_hold, NULL, 0), 0);
    if (suite_actions)
        suite_actions(made);
    return made;
}

void mk_orch_with(const evs_orch_opts *o)
{
    orch = orch_new_on(st, o);
}

void mk_orch(int stop_when_idle)
{
    evs_orch_opts o;

    orch_opts_init(&o, stop_when_idle);
    mk_orch_with(&o);
}

void start(const char *def, const char *inputs, const char *id)
{
    evs_error_info e;
    int rc;

    memset(&e, 0, sizeof(e));
    rc = evs_orch_start(orch, S(def), S(inputs), S(id), NULL, &e);
    cr_assert_eq(rc, 0, "start %s: %s (%s: %s)", id, evs_err_name(rc), e.step,
                 e.msg);
}

void run_orch(void)
{
    cr_assert_eq(evs_orch_run(orch), 0);
    evs_orch_free(orch);
    orch = NULL;
}

void run_new(const char *def, const char *inputs, const char *id,
             evs_outcome oc)
{
    mk_orch(1);
    start(def, inputs, id);
    run_orch();
    expect_outcome(id, oc);
}

void run_resume(const char *id, evs_outcome oc)
{
    int rc;

    mk_orch(1);
    rc = evs_orch_resume(orch, S(id));
    cr_assert_eq(rc, 0, "resume %s: %s (%s)", id, evs_err_name(rc), last_log);
    run_orch();
    expect_outcome(id, oc);
}

static uv_timer_t script_timer;
static script_fn script;
static int script_step;
int script_ticks, script_gave_up;
const char *sid;
const char *wait_for;

static void script_cb(uv_timer_t *t)
{
    int next;

    if (++script_ticks > 4000) {
        script_gave_up = 1;
        evs_orch_stop(orch, 0);
        complete_held("null");
        next = -1;
    } else {
        next = script(script_step);
    }
    if (next < 0) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
    } else {
        script_step = next;
    }
}

void script_start(script_fn fn)
{
    script = fn;
    script_step = 0;
    script_ticks = 0;
    script_gave_up = 0;
    uv_timer_init(evs_orch_loop(orch), &script_timer);
    uv_timer_start(&script_timer, script_cb, 5, 5);
}

void run_scripted(int stop_when_idle, const char *def, const char *id,
                  script_fn fn)
{
    mk_orch(stop_when_idle);
    sid = id;
    start(def, "", id);
    script_start(fn);
    run_orch();
    cr_assert(!script_gave_up, "%s: the script gave up", id);
}

int script_stop_inflight(int step)
{
    switch (step) {
    case 0:
        if (held_count() != 1 || (wait_for && !outcome_of(wait_for)))
            return 0;
        evs_orch_stop(orch, 0);
        return 1;
    default:
        if (evs_orch_owned(orch) != 0)
            return 1;
        complete_held("\"late\"");
        return -1;
    }
}

/* ---------------------------------------------------------------- */
/* Reading the history                                              */
/* ---------------------------------------------------------------- */

static evs_replay *rp_new_mode(int compact)
{
    evs_replay_opts o;
    evs_replay *r = NULL;

    evs_replay_opts_init(&o);
    o.compact = compact;
    cr_assert_eq(evs_replay_new(&o, &r), 0);
    for (size_t i = 0; i < COUNT_OF(live_rp); i++)
        if (!live_rp[i]) {
            live_rp[i] = r;
            return r;
        }
    evs_replay_free(r);
    cr_assert_fail("too many replayers");
    return NULL;
}

evs_replay *rp_new(void)
{
    return rp_new_mode(0);
}

evs_replay *rp_new_compact(void)
{
    return rp_new_mode(1);
}

void rp_free(evs_replay *r)
{
    for (size_t i = 0; i < COUNT_OF(live_rp); i++)
        if (live_rp[i] == r)
            live_rp[i] = NULL;
    evs_replay_free(r);
}

static evs_replay *replay_mode(evs_store *s, const char *id, int compact)
{
    evs_replay *r = rp_new_mode(compact);
    evs_error_info v;
    evs_log *log;
    int rc;

    memset(&v, 0, sizeof(v));
    cr_assert_eq(evs_log_open(s, id, strlen(id), 0, &log, NULL, NULL), 0, "%s",
                 id);
    rc = evs_replay_run(r, log, 0, &v);
    evs_log_close(log);
    cr_assert_eq(rc, 0, "replay %s: %s (seq %llu %s: %s)", id, evs_err_name(rc),
                 (unsigned long long)v.sequence, v.kind ? v.kind : "", v.msg);
    return r;
}

evs_replay *replay_in(evs_store *s, const char *id)
{
    return replay_mode(s, id, 0);
}

evs_replay *replay_of(const char *id)
{
    return replay_mode(st, id, 0);
}

evs_replay *compact_replay_of(const char *id)
{
    return replay_mode(st, id, 1);
}

evs_replay *snapshot_replay(const evs_snapshot *sn)
{
    evs_replay *r = rp_new_compact();

    cr_assert_eq(evs_replay_load_state(r, sn->state.ptr, sn->state.len), 0);
    return r;
}

void expect_same_state(const evs_replay *a, const evs_replay *b,
                       const char *what)
{
    char *x = NULL, *y = NULL;
    size_t xn = 0, yn = 0;
    int same;

    cr_assert_eq(evs_replay_state_json(a, &x, &xn), 0);
    if (evs_replay_state_json(b, &y, &yn) != 0) {
        free(x);
        cr_assert_fail("%s: no state JSON", what);
    }
    same = xn == yn && memcmp(x, y, xn) == 0;
    free(x);
    free(y);
    cr_assert(same, "%s: the states differ", what);
}

const evs_step_state *step_of(const evs_replay *r, const char *path,
                              const char *name, int64_t iter)
{
    return evs_replay_find_step(r, S(path), S(name), iter);
}

static void ev_release(evs_event_owned *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        evs_event_free(&v[i]);
    free(v);
}

evlist events_of(const char *id)
{
    evlist l = {0};
    evs_log *log;
    evs_cursor *c;
    evs_event ev;
    size_t cap = 0;
    int rc;

    cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &log, NULL, NULL), 0, "%s",
                 id);
    cr_assert_eq(evs_cursor_open(log, 1, 0, &c, NULL), 0);
    while ((rc = evs_cursor_next(c, &ev, NULL, NULL)) == 1) {
        if (l.n == cap) {
            cap = cap ? cap * 2 : 64;
            l.v = realloc(l.v, cap * sizeof(*l.v));
            cr_assert_not_null(l.v);
        }
        cr_assert_eq(evs_event_copy(&ev, NULL, &l.v[l.n]), 0);
        l.n++;
    }
    evs_cursor_close(c);
    evs_log_close(log);
    cr_assert_eq(rc, 0);
    for (size_t i = 0; i < COUNT_OF(live_ev); i++)
        if (!live_ev[i]) {
            live_ev[i] = l.v;
            live_n[i] = l.n;
            return l;
        }
    ev_release(l.v, l.n);
    cr_assert_fail("too many event lists");
    return (evlist){0};
}

void evlist_free(evlist *l)
{
    for (size_t i = 0; i < COUNT_OF(live_ev); i++)
        if (live_ev[i] == l->v)
            live_ev[i] = NULL;
    ev_release(l->v, l->n);
    l->v = NULL;
    l->n = 0;
}

const evs_event *evf(const evlist *l, const char *type, const char *step,
                     const char *path, size_t nth)
{
    for (size_t i = 0; i < l->n; i++) {
        const evs_event *e = &l->v[i].ev;
        if (!span_is(e->event_type, type) ||
            (step && !span_is(e->step_name, step)) ||
            (path && !span_is(e->path_id, path)))
            continue;
        if (nth-- == 0)
            return e;
    }
    return NULL;
}

size_t evcount(const evlist *l, const char *type, const char *step,
               const char *path)
{
    size_t n = 0;

    while (evf(l, type, step, path, n))
        n++;
    return n;
}

void expect_order(const evs_event *const *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert_not_null(e[i], "event %zu of %zu is missing", i + 1, n);
        if (i)
            cr_assert_lt(e[i - 1]->sequence, e[i]->sequence,
                         "%.*s (seq %llu) is not before %.*s (seq %llu)",
                         (int)e[i - 1]->event_type.len,
                         e[i - 1]->event_type.ptr,
                         (unsigned long long)e[i - 1]->sequence,
                         (int)e[i]->event_type.len, e[i]->event_type.ptr,
                         (unsigned long long)e[i]->sequence);
    }
}

evs_span jget(evs_span obj, const char *key)
{
    evs_span v = {0};

    cr_assert_eq(evs__json_get(obj, key, &v), 1, "no %s in %.*s", key,
                 (int)obj.len, obj.ptr);
    return v;
}

int64_t jint(evs_span v)
{
    int64_t n = 0;

    cr_assert_eq(evs__json_int(v, &n), 0, "not an integer: %.*s", (int)v.len,
                 v.ptr);
    return n;
}

evs_span dget(const evs_event *e, const char *key)
{
    cr_assert_not_null(e);
    return jget(e->data, key);
}

int64_t dint(const evs_event *e, const char *key)
{
    return jint(dget(e, key));
}

int64_t dtime(const evs_event *e, const char *key)
{
    evs_span v = dget(e, key);
    int64_t us = 0;

    cr_assert(v.len > 2 && v.ptr[0] == '"', "%s is not a string: %.*s", key,
              (int)v.len, v.ptr);
    cr_assert_eq(evs_time_parse(v.ptr + 1, v.len - 2, &us), 0);
    return us;
}

size_t exec_count(void)
{
    evs_exec_listing l;
    size_t n;

    cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
    n = l.count;
    evs_exec_list_free(&l);
    return n;
}

size_t inbox_count(const char *id, char *first_id)
{
    evs_request_listing l;
    size_t n;

    cr_assert_eq(evs_request_list(st, id, strlen(id), &l), 0);
    n = l.count;
    if (n && first_id)
        cpy(first_id, EVS_REQUEST_ID_LEN + 1, l.items[0].id);
    evs_request_list_free(&l);
    return n;
}

uint64_t last_seq_of(const char *id)
{
    long n = tu_count_events(st, id);

    cr_assert_gt(n, 0, "%s: %ld", id, n);
    return (uint64_t)n;
}

/* ---------------------------------------------------------------- */
/* Fixture                                                          */
/* ---------------------------------------------------------------- */

static evs_durability suite_durability;

void harness_setup(const char *tag, harness_actions_fn actions,
                   evs_durability durability)
{
    evs_store_opts so;

    dir = tu_tmpdir(tag);
    cr_assert_not_null(dir);
    evs_store_opts_init(&so);
    so.durability = durability;
    so.log_fn = log_hook;
    cr_assert_eq(evs_store_open(tu_loc(dir), &so, &st), 0);
    suite_durability = durability;
    suite_actions = actions;
    last_log[0] = '\0';
    last_warn[0] = '\0';
    nouts = 0;
    outcome_hook = NULL;
    ncalls = 0;
    nheld = 0;
    hold_mode = 1;
    sid = NULL;
    wait_for = NULL;
}

void harness_store_opts(evs_store_opts *so)
{
    evs_store_opts_init(so);
    so->durability = suite_durability;
    so->log_fn = log_hook;
}

void harness_store_reopen(const evs_store_opts *so)
{
    cr_assert_null(orch, "the store is reopened between runs");
    evs_store_close(st);
    st = NULL;
    cr_assert_eq(evs_store_open(tu_loc(dir), so, &st), 0);
}

void harness_store_limits(uint64_t warn_events, uint64_t warn_bytes,
                          uint64_t max_events, uint64_t max_bytes)
{
    evs_store_opts so;

    harness_store_opts(&so);
    so.warn_events = warn_events;
    so.warn_bytes = warn_bytes;
    so.max_events = max_events;
    so.max_bytes = max_bytes;
    harness_store_reopen(&so);
}

void harness_teardown(void)
{
    for (size_t i = 0; i < COUNT_OF(live_rp); i++) {
        evs_replay_free(live_rp[i]);
        live_rp[i] = NULL;
    }
    for (size_t i = 0; i < COUNT_OF(live_ev); i++) {
        if (live_ev[i])
            ev_release(live_ev[i], live_n[i]);
        live_ev[i] = NULL;
    }
    evs_orch_free(orch);
    orch = NULL;
    evs_store_close(st);
    tu_rmtree_free(dir);
    for (size_t i = 0; i < njpool; i++)
        free(jpool[i]);
    njpool = 0;
}
