/*
 * event.c: owned copies of event views, and the list of Dive's event
 * types.
 */
#include "formats_int.h"

#include <errno.h>

#define TYPE(name, dive) {EVS_EV_##name, dive},
static const struct {
    const char *name;
    bool dive;
} types[] = {EVS_EVENT_TYPE_MAP(TYPE)};
#undef TYPE

bool evs_event_type_is_dive(evs_span type)
{
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (types[i].dive && evs__span_eq_cstr(type, types[i].name))
            return true;
    return false;
}

bool evs_event_type_is_terminal(evs_span type)
{
    /* Every terminal type begins so; most events are not, and the
     * prefix tells them apart at once. */
    static const char pre[] = "execution_";

    if (type.len <= sizeof(pre) - 1 ||
        memcmp(type.ptr, pre, sizeof(pre) - 1) != 0)
        return false;
    return evs__span_eq_cstr(type, EVS_EV_EXECUTION_COMPLETED) ||
           evs__span_eq_cstr(type, EVS_EV_EXECUTION_FAILED) ||
           evs__span_eq_cstr(type, EVS_EV_EXECUTION_TERMINATED) ||
           evs__span_eq_cstr(type, EVS_EV_EXECUTION_CONTINUE_AS_NEW);
}

static void copy_span(char **p, evs_span *dst, evs_span src)
{
    if (src.len)
        memcpy(*p, src.ptr, src.len);
    dst->ptr = *p;
    dst->len = src.len;
    *p += src.len;
}

int evs_event_copy(const evs_event *ev, const evs_allocator *alloc,
                   evs_event_owned *out)
{
    size_t total = ev->id.len + ev->execution_id.len + ev->path_id.len +
                   ev->event_type.len + ev->step_name.len + ev->data.len;
    char *buf, *p;

    memset(out, 0, sizeof(*out));
    buf = evs__malloc(alloc, total);
    if (!buf)
        return -ENOMEM;
    out->ev = *ev;
    p = buf;
    copy_span(&p, &out->ev.id, ev->id);
    copy_span(&p, &out->ev.execution_id, ev->execution_id);
    copy_span(&p, &out->ev.path_id, ev->path_id);
    copy_span(&p, &out->ev.event_type, ev->event_type);
    copy_span(&p, &out->ev.step_name, ev->step_name);
    copy_span(&p, &out->ev.data, ev->data);
    out->buf_ = buf;
    out->alloc_ = alloc;
    return 0;
}

void evs_event_free(evs_event_owned *o)
{
    if (!o || !o->buf_)
        return;
    evs__free(o->alloc_, o->buf_);
    memset(o, 0, sizeof(*o));
}
