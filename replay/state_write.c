/*
 * state_write.c: the replayed state as canonical JSON (FORMAT.md, "Replay
 * state"), made from the field lists of state_fields.h. Snapshots carry
 * it, so that opening a long execution costs only the events after its
 * snapshot; state_read.c reads it back.
 *
 * The writer emits every member, in the lists' order, with JSON values
 * copied byte for byte; equal states therefore give equal bytes, which
 * is what the snapshot-plus-tail property test compares.
 */
#include "replay_int.h"
#include "state_fields.h"

#include <errno.h>

typedef evs__jbuf wbuf;

#define LIT(b, s) EVS__JB_LIT(b, s)

static void w_bool(wbuf *b, int v)
{
    if (v)
        LIT(b, "true");
    else
        LIT(b, "false");
}

static void w_name(wbuf *b, const char *name)
{
    evs__jb_quote(b, evs_span_cstr(name));
}

/*
 * The code the lists expand to uses three names of the function it is
 * in: `b` (the buffer), `o` (the record, or the execution's state at the
 * top) and `first_` (no member written yet), and at the top `r` (the
 * replayer). Each member writes its key, ,"key": past the first, then
 * its value by its type.
 */
#define W_FIELD(T, k, m)                                                       \
    if (first_)                                                                \
        LIT(b, "\"" k "\":");                                                  \
    else                                                                       \
        LIT(b, ",\"" k "\":");                                                 \
    first_ = 0;                                                                \
    W_##T(m);

#define W_STR(m) evs__jb_quote(b, o->m)
#define W_JSON(m) evs__jb_json(b, o->m)
#define W_I64(m) evs__jb_int(b, o->m)
#define W_U64(m) evs__jb_int(b, (int64_t)o->m)
#define W_U32(m) evs__jb_int(b, (int64_t)o->m)
#define W_BOOL(m) w_bool(b, o->m)
#define W_EXEC_STATUS(m) w_name(b, evs_exec_status_name(o->m))
#define W_PATH_STATUS(m) w_name(b, evs_path_status_name(o->m))
#define W_STEP_STATUS(m) w_name(b, evs_step_status_name(o->m))
#define W_VERSION(m) evs__jb_int(b, STATE_VERSION)
#define W_FLAG(m) w_bool(b, r->m)
#define W_FAILED(m) w_failed(b, o)
#define W_CONTROL(m) w_control(b, &o->m)
#define W_RECORDS(m)                                                           \
    LIT(b, "[");                                                               \
    for (size_t i_ = 0; i_ < r->m.n; i_++) {                                   \
        if (i_)                                                                \
            LIT(b, ",");                                                       \
        w_##m(b, &r->m.v[i_]);                                                 \
    }                                                                          \
    LIT(b, "]")
#define W_STEPS(m) W_RECORDS(m)
#define W_GONE(m)                                                              \
    LIT(b, "[");                                                               \
    for (size_t i_ = 0; i_ < r->m.n; i_++) {                                   \
        if (i_)                                                                \
            LIT(b, ",");                                                       \
        evs__jb_quote(b, r->m.v[i_]);                                          \
    }                                                                          \
    LIT(b, "]")
#define W_COMPACT(m) w_bool(b, r->opts.compact)

/* static void w_<name>(wbuf *b, const type *o): one record, an object. */
#define DEFINE_WRITER(name, type, FIELDS)                                      \
    static void w_##name(wbuf *b, const type *o)                               \
    {                                                                          \
        int first_ = 1;                                                        \
                                                                               \
        LIT(b, "{");                                                           \
        FIELDS(W_FIELD)                                                        \
        LIT(b, "}");                                                           \
    }

DEFINE_WRITER(failed, evs_exec_state, FAILED_FIELDS)
DEFINE_WRITER(control, evs_control_state, CONTROL_FIELDS)
DEFINE_WRITER(paths, evs_path_state, PATH_FIELDS)
DEFINE_WRITER(steps, evs_step_state, STEP_FIELDS)
DEFINE_WRITER(eaches, evs_each_state, EACH_FIELDS)
DEFINE_WRITER(vars, evs_var_state, VAR_FIELDS)
DEFINE_WRITER(signals, evs_signal_state, SIGNAL_FIELDS)
DEFINE_WRITER(versions, evs_version_state, VERSION_FIELDS)
DEFINE_WRITER(timers, evs_timer_state, TIMER_FIELDS)
DEFINE_WRITER(waits, evs_wait_state, WAIT_FIELDS)
DEFINE_WRITER(names, evs_stepname_state, NAME_FIELDS)

int evs_replay_state_json(const evs_replay *r, char **out, size_t *out_len)
{
    const evs_exec_state *o = &r->exec;
    wbuf buf = {r->alloc, NULL, 0, 0, 0}, *b = &buf;
    int first_ = 1;

    LIT(b, "{");
    STATE_FIELDS(W_FIELD)
    LIT(b, "}");
    if (evs__jb_finish(b, out, out_len) != 0) {
        evs__jb_free(b);
        return -ENOMEM;
    }
    return 0;
}
