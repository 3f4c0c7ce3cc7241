/*
 * evreplay_session.c: the history held in memory and the state at any
 * point of it.
 *
 * The events are read once, with a cursor, into owned copies. One
 * tolerant replay over them finds every violation of the history rules
 * (so they can be shown as the user steps over them, whatever the order
 * of the moves) and takes the checkpoints: the state as JSON every K
 * events, or less often when the state is large (see CK_RATIO). Going
 * back, or far forward, then costs one evs_replay_load_state and the
 * events since that checkpoint instead of a replay from the start.
 */
#include "evreplay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A checkpoint waits for events adding up to 1/CK_RATIO of the last
 * one's size. */
#define CK_RATIO 8

const evs_event *session_event(const session *s, uint64_t seq)
{
    if (seq == 0 || seq > s->n)
        return NULL;
    return &s->ev[seq - 1].ev;
}

evs_span event_path(const evs_event *e)
{
    return e->path_id.len ? e->path_id : evs_span_cstr("main");
}

static int new_replayer(evs_violation_fn fn, void *arg, evs_replay **out)
{
    evs_replay_opts o;

    evs_replay_opts_init(&o);
    o.tolerant = 1; /* a damaged history can still be stepped through */
    o.on_violation = fn;
    o.arg = arg;
    return evs_replay_new(&o, out);
}

/* ------------------------------------------------------------------ */
/* Loading                                                            */
/* ------------------------------------------------------------------ */

static int collect_violation(void *arg, const evs_error_info *v)
{
    session *s = arg;
    violation_rec *vr;

    grow((void **)&s->viol, &s->viol_cap, s->nviol, sizeof(*s->viol));
    vr = &s->viol[s->nviol++];
    vr->seq = v->sequence;
    vr->rule = v->kind ? v->kind : "?";
    vr->msg = xstrdup(v->msg);
    return 0;
}

/* Drops every other checkpoint and doubles the interval. */
static void thin_checkpoints(session *s)
{
    size_t j = 0;

    s->ck_every *= 2;
    s->ck_bytes = 0;
    for (size_t i = 0; i < s->nck; i++) {
        if (s->ck[i].seq % s->ck_every != 0) {
            evs_free(NULL, s->ck[i].json);
            continue;
        }
        s->ck_bytes += s->ck[i].len;
        s->ck[j++] = s->ck[i];
    }
    s->nck = j;
}

static int take_checkpoint(session *s)
{
    checkpoint c;
    int rc;

    c.seq = s->pos;
    if ((rc = evs_replay_state_json(s->r, &c.json, &c.len)) != 0)
        return rc;
    grow((void **)&s->ck, &s->ck_cap, s->nck, sizeof(*s->ck));
    s->ck[s->nck++] = c;
    s->ck_bytes += c.len;
    while (s->ck_bytes > s->ck_budget && s->nck > 0)
        thin_checkpoints(s);
    return 0;
}

static int clamp_width(size_t len, int lo, int hi)
{
    if (len < (size_t)lo)
        return lo;
    return len > (size_t)hi ? hi : (int)len;
}

static void measure(session *s, const evs_event *e)
{
    int w;

    w = clamp_width(e->event_type.len, 4, 26);
    if (w > s->w_type)
        s->w_type = w;
    w = clamp_width(event_path(e).len, 4, 16);
    if (w > s->w_path)
        s->w_path = w;
    w = clamp_width(e->step_name.len, 1, 20);
    if (w > s->w_step)
        s->w_step = w;
}

/* Keeps a copy of event `ev` as the next of the history. Returns 0, or
 * an exit code after reporting. */
static int keep_event(session *s, const evs_event *ev)
{
    grow((void **)&s->ev, &s->ev_cap, s->n, sizeof(*s->ev));
    if (evs_event_copy(ev, NULL, &s->ev[s->n]) != 0) {
        note("out of memory");
        return EXIT_OPEN;
    }
    measure(s, &s->ev[s->n].ev);
    s->n++;
    return 0;
}

/* Reads the events of the bundle, which was checked whole when opened. */
static int read_bundle(session *s)
{
    uint64_t pos = 0;
    evs_event ev;
    int rc;

    while ((rc = evs_bundle_next(s->bundle, &pos, &ev, NULL)) == 1)
        if ((rc = keep_event(s, &ev)) != 0)
            return rc;
    if (rc < 0) {
        note("cannot read the bundle: %s (%s)", evs_strerror(rc),
             evs_err_name(rc));
        return EXIT_OPEN;
    }
    return 0;
}

/* Reads every event that can be read. Damage stops the reading with a
 * warning: what came before it can still be debugged. */
static int read_events(session *s, const char *store_desc)
{
    evs_log *log = NULL;
    evs_cursor *c = NULL;
    evs_error_info info;
    evs_event ev;
    int rc, status = EXIT_OPEN;
    const char *id = s->exec_id;

    evs_error_info_clear(&info);
    rc = evs_log_open(s->store, id, strlen(id), 0, &log, NULL, &info);
    if (rc != 0) {
        fail_exec(rc, &info, store_desc, id);
        goto out;
    }
    if (evs_log_last_seq(log) > 0) {
        rc = evs_cursor_open(log, 1, 0, &c, &info);
        if (rc != 0) {
            note("cannot read execution '%s': %s (%s)", id,
                 info.msg[0] ? info.msg : evs_strerror(rc), evs_err_name(rc));
            goto out;
        }
        while ((rc = evs_cursor_next(c, &ev, NULL, &info)) == 1)
            if (keep_event(s, &ev) != 0)
                goto out;
        if (rc == EVS_ECORRUPT || rc == EVS_EFORMAT) {
            note("warning: the log of '%s' is damaged at seq %" PRIu64
                 ", byte %" PRIu64 ": %s; only events 1..%zu are "
                 "loaded",
                 id, info.sequence, info.offset,
                 info.msg[0] ? info.msg : evs_strerror(rc), s->n);
        } else if (rc != 0) {
            note("cannot read execution '%s': %s (%s)", id, evs_strerror(rc),
                 evs_err_name(rc));
            goto out;
        }
    }
    status = 0;
out:
    evs_cursor_close(c);
    evs_log_close(log);
    return status;
}

int session_load(session *s, evs_store *st, evs_bundle *b, const char *id,
                 uint64_t ck_every, size_t ck_budget, const char *store_desc)
{
    uint64_t v;
    size_t since = 0;
    int rc;

    memset(s, 0, sizeof(*s));
    s->store = st;
    s->bundle = b;
    s->exec_id = xstrdup(id);
    s->ck_every = ck_every;
    s->ck_budget = ck_budget;
    s->bp_next = 1;
    s->w_type = 4;
    s->w_path = 4;
    s->w_step = 1;
    if ((rc = b ? read_bundle(s) : read_events(s, store_desc)) != 0)
        return rc;
    s->w_seq = 1;
    for (v = s->n; v >= 10; v /= 10)
        s->w_seq++;

    if (new_replayer(collect_violation, s, &s->r) != 0)
        goto oom;
    for (size_t i = 0; i < s->n; i++) {
        const evs_event *e = &s->ev[i].ev;
        if ((rc = evs_replay_apply(s->r, e, NULL)) != 0) {
            note("cannot replay seq %zu: %s", i + 1, evs_strerror(rc));
            return EXIT_OPEN;
        }
        s->pos = i + 1;
        since += e->data.len + e->event_type.len + e->step_name.len +
                 e->path_id.len + e->id.len + 64;
        /* A state that grows with the history would make checkpoints
         * every K events cost O(n^2); taking one only once the events
         * since the last add up to an eighth of its size keeps the load
         * linear, and a move back replays at most that many bytes. */
        if (s->ck_every && s->pos % s->ck_every == 0 &&
            since >= (s->nck ? s->ck[s->nck - 1].len / CK_RATIO : 0)) {
            if (take_checkpoint(s) != 0)
                goto oom;
            since = 0;
        }
    }
    /* The working replayer reports nothing: violations are shown from
     * the list, however the position was reached. */
    evs_replay_free(s->r);
    s->r = NULL;
    s->pos = 0;
    if (new_replayer(NULL, NULL, &s->r) != 0)
        goto oom;
    return 0;
oom:
    note("out of memory");
    return EXIT_OPEN;
}

void session_free(session *s)
{
    for (size_t i = 0; i < s->n; i++)
        evs_event_free(&s->ev[i]);
    free(s->ev);
    for (size_t i = 0; i < s->nck; i++)
        evs_free(NULL, s->ck[i].json);
    free(s->ck);
    for (size_t i = 0; i < s->nviol; i++)
        free(s->viol[i].msg);
    free(s->viol);
    breakpoints_free(s);
    evs_replay_free(s->r);
    free(s->exec_id);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------ */
/* Positions                                                          */
/* ------------------------------------------------------------------ */

/* Index of the last checkpoint at or before `seq`, or -1. */
static long checkpoint_before(const session *s, uint64_t seq)
{
    size_t lo = 0, hi = s->nck;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ck[mid].seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo - 1;
}

int session_state_at(const session *s, uint64_t seq, evs_replay **out)
{
    evs_replay *r = NULL;
    long k = checkpoint_before(s, seq);
    uint64_t from = 0;
    int rc;

    if ((rc = new_replayer(NULL, NULL, &r)) != 0)
        return rc;
    if (k >= 0) {
        rc = evs_replay_load_state(r, s->ck[k].json, s->ck[k].len);
        if (rc != 0)
            goto fail;
        from = s->ck[k].seq;
    }
    for (uint64_t q = from + 1; q <= seq; q++)
        if ((rc = evs_replay_apply(r, &s->ev[q - 1].ev, NULL)) != 0)
            goto fail;
    *out = r;
    return 0;
fail:
    evs_replay_free(r);
    return rc;
}

int session_apply_next(session *s)
{
    int rc;

    if (s->pos >= s->n)
        return -ERANGE;
    if ((rc = evs_replay_apply(s->r, &s->ev[s->pos].ev, NULL)) != 0)
        return rc;
    s->pos++;
    return 0;
}

int session_seek(session *s, uint64_t seq)
{
    evs_replay *r;
    long k;
    int rc;

    if (seq > s->n)
        return -ERANGE;
    k = checkpoint_before(s, seq);
    /* Forward from here unless a checkpoint is closer. */
    if (seq >= s->pos && (k < 0 || s->ck[k].seq <= s->pos)) {
        while (s->pos < seq)
            if ((rc = session_apply_next(s)) != 0)
                return rc;
        return 0;
    }
    if ((rc = session_state_at(s, seq, &r)) != 0)
        return rc;
    evs_replay_free(s->r);
    s->r = r;
    s->pos = seq;
    return 0;
}

size_t session_violations_at(const session *s, uint64_t seq, size_t *first)
{
    size_t lo = 0, hi = s->nviol, n = 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->viol[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    while (lo + n < s->nviol && s->viol[lo + n].seq == seq)
        n++;
    return n;
}
