/*
 * schedule.c: adding, firing, triggering, pausing and deleting schedules
 * (evstore/schedule.h; formats/SCHEDULES.md §5). Everything here runs on
 * the caller's thread without an orchestrator: `evrun schedule` calls it,
 * and a runner's look at its schedules (orch_sched.c) calls it on the
 * libuv threadpool.
 *
 * A fire is an execution created whole with evs_exec_create under an id
 * made of the schedule's name and the fire's time. That is what makes a
 * fire happen once: two runners that both decide to start it race for
 * one name, and the loser's -EEXIST means "started"; a runner killed
 * after creating it and before saving the state finds it again the same
 * way. The state is saved once per look, under the schedule's lock.
 */
#include "orch_int.h"
#include "evstore/schedule.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Decisions one look makes at most; the next look goes on. */
#define LOOK_MAX 1000
/* Fires counted one by one when missed; past it the rest are skipped
 * at once. */
#define MISSED_COUNT_MAX 100000

typedef struct look {
    evs_store *s;
    const evs_allocator *a;
    evs_schedule *h;
    evs_sched_spec spec;
    evs_sched_state st;
    evs_tz *tz;
    int64_t now;
    int changed;
    evs_sched_fired *out;
    evs_error_info *err;
} look;

static void look_close(look *l)
{
    evs_tz_free(l->tz);
    evs_schedule_close(l->h);
}

/* Opens schedule `name` with `flags` and reads its document, zone and
 * state into l. */
static int look_open(look *l, evs_store *s, const char *name, unsigned flags,
                     int64_t now, evs_error_info *err)
{
    int rc;

    memset(l, 0, sizeof(*l));
    l->s = s;
    l->a = evs_store_allocator(s);
    l->now = now;
    l->err = err;
    if ((rc = evs_schedule_open(s, name, flags, &l->h)) != 0)
        return rc;
    if ((rc = evs_sched_spec_parse(evs_schedule_spec(l->h), &l->spec, err)) ||
        (rc = evs_tz_load(s, l->spec.timezone, &l->tz, err)))
        goto fail;
    if (evs_sched_state_parse(evs_schedule_state(l->h), &l->st) != 0) {
        evs__error_set(err, rc = EVS_EPARSE, "schedule",
                       "schedule %s: its state is damaged", name);
        goto fail;
    }
    return 0;
fail:
    look_close(l);
    return rc;
}

static int look_save(look *l)
{
    char *json = NULL;
    size_t len;
    int rc;

    if (!l->changed)
        return 0;
    if ((rc = evs_sched_state_write(&l->st, l->a, &json, &len)) == 0)
        rc = evs_schedule_save(l->h, (evs_span){json, len});
    evs__free(l->a, json);
    return rc;
}

/* 1 while execution `id` (or the chain it continued into) has not
 * ended, 0 once it has or when it is gone, or an error. */
static int still_running(evs_store *s, const char *id)
{
    evs__chain c;
    evs_replay *rp = NULL;
    int rc;

    if (!id[0])
        return 0;
    if ((rc = evs__chain_init(&c, evs_span_cstr(id))) != 0)
        return rc;
    rc = evs__chain_last(s, &c, &rp);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0)
        rc = evs_replay_exec(rp)->status < EVS_STATUS_COMPLETED;
    evs_replay_free(rp);
    return rc;
}

/* Creates the execution of fire `fire` into a->exec_id: its definition
 * parsed, its inputs rendered and checked. Sets a->result. Returns 0, or
 * an error of the store that leaves the fire undecided. */
static int create(look *l, int64_t fire, int manual, evs_sched_action *a)
{
    evs__creation c;
    evs_wf_def *d = NULL;
    char *inputs = NULL;
    size_t ilen;
    evs_error_info why;
    int rc;

    memset(&c, 0, sizeof(c));
    a->result = EVS_FIRE_FAILED;
    if ((rc = evs_sched_exec_id(l->spec.name, fire, manual, a->exec_id)) ||
        (rc = evs_wf_parse(l->spec.definition.ptr, l->spec.definition.len, l->a,
                           NULL, NULL, &d, &why)) ||
        (rc = evs_sched_render_inputs(&l->spec, l->tz, fire, manual, l->a,
                                      &inputs, &ilen, &why)))
        goto refused;
    rc = evs__creation_make(&c, l->a, d, (evs_span){inputs, ilen},
                            evs_span_cstr(a->exec_id), l->now, &why);
    d = NULL;
    if (rc != 0)
        goto refused;
    rc = evs_exec_create_flags(l->s, c.id, c.id_len, &c.snap, c.ev, 2,
                               EVS_SNAPSHOT_CACHE);
    if (rc == 0 || rc == -EEXIST) {
        a->result = rc == 0 ? EVS_FIRE_STARTED : EVS_FIRE_EXISTED;
        snprintf(l->st.last_exec, sizeof(l->st.last_exec), "%s", a->exec_id);
        l->st.started += rc == 0;
        if (rc == 0 && l->out && l->out->on_start)
            l->out->on_start(l->out->arg, a->exec_id);
        if (rc == 0 && l->out)
            l->out->started++;
        rc = 0;
    }
    goto out;
refused:
    /* A definition or inputs refused: trying again would not help. */
    evs__orch_store_log(l->s, EVS_LOG_ERROR,
                        "schedule %s: the fire of %s is not started: %s%s%s",
                        l->spec.name, a->exec_id, why.step,
                        why.step[0] ? ": " : "", why.msg);
    rc = rc == -ENOMEM ? rc : 0;
out:
    evs_wf_free(d);
    evs__creation_free(&c, l->a);
    evs__free(l->a, inputs);
    return rc;
}

/* Asks the previous fire's execution to end (cancel_other,
 * terminate_other): a terminate request in its inbox. */
static void end_previous(look *l, int64_t fire)
{
    char t[EVS_TIME_LEN + 1], reason[160], by[EVS_BY_MAX + 1];
    int rc;

    evs_time_format(fire, t);
    snprintf(reason, sizeof(reason), "\"schedule %s (%s): the fire of %s\"",
             l->spec.name, evs_overlap_name(l->spec.overlap), t);
    /* Who asks: the schedule (FORMAT.md §6, "Who asked"). */
    snprintf(by, sizeof(by), "schedule:%s", l->spec.name);
    rc = evs_exec_post_by(l->s, evs_span_cstr(l->st.last_exec),
                          evs_span_cstr("terminate"), (evs_span){0},
                          evs_span_cstr(reason), evs_span_cstr(by));
    if (rc != 0 && rc != EVS_EFINISHED && rc != -ENOENT)
        evs__orch_store_log(l->s, EVS_LOG_WARN,
                            "schedule %s: cannot ask %s to end: %s",
                            l->spec.name, l->st.last_exec, evs_strerror(rc));
}

/* Decides fire `fire` under `policy` (SCHEDULES.md §5), noting it. */
static int decide(look *l, int64_t fire, int manual, evs_overlap policy,
                  evs_sched_action *a)
{
    int running = still_running(l->s, l->st.last_exec), rc = 0;

    memset(a, 0, sizeof(*a));
    a->fire_us = fire;
    a->at_us = l->now;
    a->manual = manual;
    if (running < 0)
        return running;
    if (running && policy != EVS_OVERLAP_ALLOW_ALL &&
        policy != EVS_OVERLAP_TERMINATE_OTHER) {
        if (policy == EVS_OVERLAP_SKIP) {
            a->result = EVS_FIRE_SKIPPED;
            l->st.skipped++;
        } else if (policy == EVS_OVERLAP_BUFFER_ONE && l->st.buffered_us) {
            a->result = EVS_FIRE_DROPPED;
            l->st.skipped++;
        } else {
            if (policy == EVS_OVERLAP_CANCEL_OTHER) {
                if (l->st.buffered_us)
                    l->st.skipped++; /* the newer fire waits instead */
                end_previous(l, fire);
            }
            a->result = EVS_FIRE_BUFFERED;
            l->st.buffered_us = fire;
            l->st.buffered_manual = manual;
        }
    } else {
        if (running && policy == EVS_OVERLAP_TERMINATE_OTHER)
            end_previous(l, fire);
        rc = create(l, fire, manual, a);
    }
    if (rc == 0) {
        evs_sched_state_note(&l->st, a);
        l->changed = 1;
        if (l->out)
            l->out->decided++;
    }
    return rc;
}

/* Starts the buffered fire once the execution before it has ended. */
static int run_buffered(look *l)
{
    evs_sched_action a;
    int running, rc;

    if (!l->st.buffered_us)
        return 0;
    if ((running = still_running(l->s, l->st.last_exec)) != 0)
        return running < 0 ? running : 0;
    memset(&a, 0, sizeof(a));
    a.fire_us = l->st.buffered_us;
    a.at_us = l->now;
    a.manual = l->st.buffered_manual;
    if ((rc = create(l, a.fire_us, a.manual, &a)) != 0)
        return rc;
    l->st.buffered_us = 0;
    l->st.buffered_manual = 0;
    evs_sched_state_note(&l->st, &a);
    l->changed = 1;
    return 0;
}

/* Skips the fires older than the catch-up window; *f becomes the first
 * fire inside it. */
static int skip_missed(look *l, int64_t *f)
{
    int64_t oldest = l->now - l->spec.catchup_window_ms * 1000, first = *f;
    uint64_t n = 0;
    evs_sched_action a;
    int rc;

    if (*f >= oldest)
        return 0;
    while (*f < oldest && n < MISSED_COUNT_MAX) {
        n++;
        l->st.done_us = *f;
        if ((rc = evs_sched_next(&l->spec, l->tz, *f, f)) != 0)
            return rc;
    }
    if (*f < oldest) { /* too many to count: the rest at once */
        l->st.done_us = oldest - 1;
        if ((rc = evs_sched_next(&l->spec, l->tz, oldest - 1, f)) != 0)
            return rc;
    }
    l->st.missed += n;
    memset(&a, 0, sizeof(a));
    a.fire_us = first;
    a.at_us = l->now;
    a.result = EVS_FIRE_MISSED;
    evs_sched_state_note(&l->st, &a);
    l->changed = 1;
    return 0;
}

static int fire_due(look *l)
{
    int64_t f, from;
    size_t n = 0;
    int rc;

    l->out->next_due_us = 0;
    if (l->st.paused)
        return 0;
    if ((rc = run_buffered(l)) != 0)
        return rc;
    for (;;) {
        from = l->st.done_us > l->st.since_us ? l->st.done_us : l->st.since_us;
        if ((rc = evs_sched_next(&l->spec, l->tz, from, &f)) != 0)
            return rc == -ERANGE ? 0 : rc; /* no fire left */
        if ((rc = skip_missed(l, &f)) != 0)
            return rc == -ERANGE ? 0 : rc;
        if (f + evs_sched_jitter_ms(&l->spec, f) * 1000 > l->now) {
            l->out->next_due_us = f + evs_sched_jitter_ms(&l->spec, f) * 1000;
            break;
        }
        if (n++ == LOOK_MAX) {
            l->out->next_due_us = l->now;
            break;
        }
        {
            evs_sched_action a;
            if ((rc = decide(l, f, 0, l->spec.overlap, &a)) != 0)
                return rc;
        }
        l->st.done_us = f;
    }
    /* A fire waiting on the one before looks again soon. */
    if (l->st.buffered_us &&
        (!l->out->next_due_us || l->out->next_due_us > l->now + 1000000))
        l->out->next_due_us = l->now + 1000000;
    return 0;
}

int evs_sched_fire_due(evs_store *s, const char *name, int64_t now_us,
                       evs_sched_fired *out, evs_error_info *err)
{
    evs_sched_fired none;
    look l;
    int rc, rc2;

    if (!out) {
        memset(&none, 0, sizeof(none));
        out = &none;
    }
    out->started = out->decided = 0;
    out->next_due_us = 0;
    evs_error_info_clear(err);
    if ((rc = look_open(&l, s, name, EVS_SCHEDULE_LOCK, now_us, err)) != 0)
        return evs__error_rc(err, rc);
    l.out = out;
    rc = fire_due(&l);
    /* What was decided before an error is kept. */
    rc2 = look_save(&l);
    look_close(&l);
    return evs__error_rc(err, rc ? rc : rc2);
}

int evs_sched_trigger(evs_store *s, const char *name, int64_t now_us,
                      int overlap, evs_fire_result *result,
                      char exec_id[EVS_ID_MAX + 1], evs_error_info *err)
{
    evs_sched_fired out;
    evs_sched_action a;
    look l;
    int rc;

    evs_error_info_clear(err);
    if ((rc = look_open(&l, s, name, EVS_SCHEDULE_LOCK | EVS_SCHEDULE_WAIT,
                        now_us, err)) != 0)
        return evs__error_rc(err, rc);
    memset(&out, 0, sizeof(out));
    l.out = &out;
    rc = decide(&l, now_us / 1000000 * 1000000, 1,
                overlap < 0 ? l.spec.overlap : (evs_overlap)overlap, &a);
    if (rc == 0 && a.result == EVS_FIRE_EXISTED)
        rc = -EEXIST;
    if (rc == 0)
        rc = look_save(&l);
    if (result)
        *result = a.result;
    if (exec_id)
        snprintf(exec_id, EVS_ID_MAX + 1, "%s", a.exec_id);
    look_close(&l);
    return evs__error_rc(err, rc);
}

int evs_sched_pause(evs_store *s, const char *name, int paused,
                    const char *note, int64_t now_us)
{
    look l;
    int rc;

    if ((rc = look_open(&l, s, name, EVS_SCHEDULE_LOCK | EVS_SCHEDULE_WAIT,
                        now_us, NULL)) != 0)
        return rc;
    if (paused) {
        l.st.paused = 1;
        snprintf(l.st.note, sizeof(l.st.note), "%s", note ? note : "");
    } else if (l.st.paused) {
        /* What fell due in the pause is not caught up. */
        l.st.paused = 0;
        l.st.note[0] = '\0';
        l.st.since_us = now_us;
        if (l.st.done_us < now_us)
            l.st.done_us = now_us;
    }
    l.changed = 1;
    rc = look_save(&l);
    look_close(&l);
    return rc;
}

int evs_sched_delete(evs_store *s, const char *name)
{
    evs_schedule *h;
    int rc;

    if ((rc = evs_schedule_open(s, name, EVS_SCHEDULE_LOCK | EVS_SCHEDULE_WAIT,
                                &h)) != 0)
        return rc;
    rc = evs_schedule_remove(h);
    evs_schedule_close(h);
    return rc;
}

int evs_sched_add(evs_store *s, evs_span doc, int64_t now_us,
                  evs_error_info *err)
{
    const evs_allocator *a = evs_store_allocator(s);
    evs_sched_spec spec;
    evs_sched_state st;
    evs_tz *tz = NULL;
    evs_wf_def *d = NULL;
    char *inputs = NULL, *checked = NULL, *state = NULL, msg[200];
    size_t ilen, clen, slen;
    int64_t fire;
    int rc;

    evs_error_info_clear(err);
    if ((rc = evs_sched_spec_parse(doc, &spec, err)) ||
        (rc = evs_tz_load(s, spec.timezone, &tz, err)) ||
        (rc = evs_wf_parse(spec.definition.ptr, spec.definition.len, a, NULL,
                           NULL, &d, err)))
        goto out;
    if ((rc = evs__sched_check_inputs(spec.inputs, msg, sizeof(msg), a))) {
        if (rc == EVS_EPARSE)
            evs__error_set(err, rc, "template", "\"inputs\": %s", msg);
        goto out;
    }
    /* The inputs of its next fire must be ones the definition takes. */
    if ((rc = evs_sched_next(&spec, tz, now_us, &fire)) == -ERANGE) {
        evs__error_set(err, rc = EVS_EPARSE, "schedule",
                       "it never fires (none before the year 9999)");
        goto out;
    }
    if (rc != 0 ||
        (rc = evs_sched_render_inputs(&spec, tz, fire, 0, a, &inputs, &ilen,
                                      err)) ||
        (rc = evs_wf_check_inputs(d, (evs_span){inputs, ilen}, a, &checked,
                                  &clen, err)))
        goto out;
    memset(&st, 0, sizeof(st));
    st.since_us = st.done_us = now_us;
    st.paused = spec.paused;
    if ((rc = evs_sched_state_write(&st, a, &state, &slen)) == 0)
        rc = evs_schedule_create(s, spec.name, doc, (evs_span){state, slen});
out:
    evs_tz_free(tz);
    evs_wf_free(d);
    evs__free(a, inputs);
    evs__free(a, checked);
    evs__free(a, state);
    return evs__error_rc(err, rc);
}
