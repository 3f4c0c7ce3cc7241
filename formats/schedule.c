/*
 * schedule.c: schedule documents (formats/SCHEDULES.md §2): parsing and
 * checking one, its next nominal fire, the jitter and the execution id of
 * a fire, the inputs a fire gets, and the state a schedule keeps (§2.2),
 * written and read back. Nothing here touches a store: the eventstore
 * layer keeps schedules, the orchestrator fires them.
 */
#include "formats_int.h"
#include "workflow_int.h"
#include "evstore/schedule.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const overlap_names[] = {"skip", "buffer_one", "allow_all",
                                            "cancel_other", "terminate_other"};

const char *evs_overlap_name(evs_overlap o)
{
    return (unsigned)o < 5 ? overlap_names[o] : "unknown";
}

int evs_overlap_parse(const char *name, evs_overlap *out)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(name, overlap_names[i]) == 0) {
            *out = (evs_overlap)i;
            return 0;
        }
    return -EINVAL;
}

static const char *const result_names[] = {
    "started", "existed", "skipped", "buffered", "dropped", "missed", "failed"};

const char *evs_fire_result_name(evs_fire_result r)
{
    return (unsigned)r < 7 ? result_names[r] : "unknown";
}

/* ------------------------------------------------------------------ */
/* The document                                                       */
/* ------------------------------------------------------------------ */

static int sfail(evs_error_info *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int sfail(evs_error_info *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    evs__error_vset(err, EVS_EPARSE, "schedule", fmt, ap);
    va_end(ap);
    return EVS_EPARSE;
}

/* The JSON string v, unescaped, into buf[0..cap) with a NUL. */
static int take_str(evs_span v, char *buf, size_t cap)
{
    size_t n;

    if (v.len < 2 || v.ptr[0] != '"' || v.len - 2 >= cap)
        return -1;
    n = evs__json_unescape(v.ptr + 1, v.len - 2, buf);
    if (n == (size_t)-1 || memchr(buf, '\0', n))
        return -1;
    buf[n] = '\0';
    return 0;
}

static int take_ms(evs_span v, int64_t min, int64_t *out)
{
    int64_t x;

    if (evs__json_int(v, &x) != 0 || x < min || x > INT64_C(31622400000000))
        return -1;
    *out = x;
    return 0;
}

static int name_ok(const char *n)
{
    size_t len = strlen(n);

    return len && len <= EVS_SCHED_NAME_MAX && evs_id_valid(n, len);
}

/* The members of a document, in the order SCHEDULES.md §2 lists them. */
enum {
    M_NAME,
    M_CRON,
    M_TIMEZONE,
    M_INTERVAL,
    M_OFFSET,
    M_OVERLAP,
    M_CATCHUP,
    M_JITTER,
    M_PAUSED,
    M_NOTE,
    M_DEFINITION,
    M_INPUTS,
    M_COUNT
};

static const char *const members[M_COUNT] = {
    "name",      "cron",    "timezone",          "interval_ms",
    "offset_ms", "overlap", "catchup_window_ms", "jitter_ms",
    "paused",    "note",    "definition",        "inputs"};

static int collect(evs_span doc, evs_span *v, evs_error_info *err)
{
    evs__jit it;
    evs_span k, x;
    int rc, i;

    if (evs__json_iter_begin(&it, doc, '{') != 0)
        return sfail(err, "a schedule is a JSON object");
    while ((rc = evs__json_obj_next(&it, &k, &x)) == 1) {
        for (i = 0; i < M_COUNT; i++)
            if (evs__wf_key_eq(k, members[i], strlen(members[i])))
                break;
        if (i == M_COUNT)
            return sfail(err, "unknown member \"%.*s\"",
                         (int)(k.len > 64 ? 64 : k.len), k.ptr);
        if (v[i].len)
            return sfail(err, "member \"%s\" is given twice", members[i]);
        v[i] = x;
    }
    return rc < 0 ? sfail(err, "a schedule is a JSON object") : 0;
}

/* The cron expression v (a JSON string): a refusal's offset counts in
 * the expression. */
static int take_cron(evs_span v, evs_sched_spec *s, evs_error_info *err)
{
    char text[256];

    if (take_str(v, text, sizeof(text)) != 0)
        return sfail(err, "\"cron\" must be a string of at most 255 bytes");
    s->has_cron = 1;
    s->cron_text = (evs_span){v.ptr + 1, v.len - 2};
    return evs_cron_parse(evs_span_cstr(text), &s->cron, err);
}

static int take_times(const evs_span *v, evs_sched_spec *s, evs_error_info *err)
{
    if (v[M_INTERVAL].len &&
        (take_ms(v[M_INTERVAL], 1000, &s->interval_ms) != 0 ||
         s->interval_ms % 1000 != 0))
        return sfail(err, "\"interval_ms\" must be a whole number of "
                          "seconds, at least 1000");
    if (v[M_OFFSET].len &&
        (!v[M_INTERVAL].len || take_ms(v[M_OFFSET], 0, &s->offset_ms) != 0 ||
         s->offset_ms % 1000 != 0 || s->offset_ms >= s->interval_ms))
        return sfail(err, "\"offset_ms\" goes with \"interval_ms\": whole "
                          "seconds below the interval");
    if (v[M_CATCHUP].len &&
        take_ms(v[M_CATCHUP], 1000, &s->catchup_window_ms) != 0)
        return sfail(err, "\"catchup_window_ms\" must be an integer of at "
                          "least 1000 (at most a year)");
    if (v[M_JITTER].len && take_ms(v[M_JITTER], 0, &s->jitter_ms) != 0)
        return sfail(err, "\"jitter_ms\" must be an integer of at least 0 "
                          "(at most a year)");
    return 0;
}

int evs_sched_spec_parse(evs_span doc, evs_sched_spec *s, evs_error_info *err)
{
    evs_span v[M_COUNT];
    char buf[64];
    int rc;

    evs_error_info_clear(err);
    memset(v, 0, sizeof(v));
    memset(s, 0, sizeof(*s));
    snprintf(s->timezone, sizeof(s->timezone), "UTC");
    s->catchup_window_ms = 3600000;
    if (!doc.len || evs_json_check(doc.ptr, doc.len, 0, NULL, NULL, NULL))
        return evs__error_rc(err, sfail(err, "a schedule is a JSON object"));
    if ((rc = collect(doc, v, err)) != 0)
        return evs__error_rc(err, rc);
    if (!v[M_NAME].len || take_str(v[M_NAME], s->name, sizeof(s->name)) ||
        !name_ok(s->name))
        rc = sfail(err, "\"name\" must be [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    else if (!!v[M_CRON].len == !!v[M_INTERVAL].len)
        rc = sfail(err, "a schedule has exactly one of \"cron\" and "
                        "\"interval_ms\"");
    else if (v[M_CRON].len && (rc = take_cron(v[M_CRON], s, err)) != 0)
        ;
    else if (v[M_TIMEZONE].len &&
             (take_str(v[M_TIMEZONE], s->timezone, sizeof(s->timezone)) ||
              !s->timezone[0]))
        rc = sfail(err, "\"timezone\" must be a zone name (\"Europe/Berlin\")");
    else if ((rc = take_times(v, s, err)) != 0)
        ;
    else if (v[M_OVERLAP].len && (take_str(v[M_OVERLAP], buf, sizeof(buf)) ||
                                  evs_overlap_parse(buf, &s->overlap)))
        rc = sfail(err, "\"overlap\" must be skip, buffer_one, allow_all, "
                        "cancel_other or terminate_other");
    else if (v[M_PAUSED].len && !evs__wf_is_bool(v[M_PAUSED]))
        rc = sfail(err, "\"paused\" must be true or false");
    else if (v[M_NOTE].len && v[M_NOTE].ptr[0] != '"')
        rc = sfail(err, "\"note\" must be a string");
    else if (!v[M_DEFINITION].len || v[M_DEFINITION].ptr[0] != '{')
        rc = sfail(err, "\"definition\" must be a workflow definition (a "
                        "JSON object)");
    if (rc != 0)
        return evs__error_rc(err, rc);
    s->paused = v[M_PAUSED].len && v[M_PAUSED].ptr[0] == 't';
    s->note = v[M_NOTE];
    s->definition = v[M_DEFINITION];
    s->inputs = v[M_INPUTS];
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

int evs_sched_next(const evs_sched_spec *s, const evs_tz *z, int64_t after_us,
                   int64_t *fire_us)
{
    int64_t next;
    int rc;

    if (!s->has_cron) {
        int64_t every = s->interval_ms * 1000, off = s->offset_ms * 1000;
        *fire_us = (floor_div(after_us - off, every) + 1) * every + off;
        return 0;
    }
    if ((rc = evs_cron_next(&s->cron, z, floor_div(after_us, 1000000),
                            &next)) != 0)
        return rc;
    *fire_us = next * 1000000;
    return 0;
}

int64_t evs_sched_jitter_ms(const evs_sched_spec *s, int64_t fire_us)
{
    char buf[EVS_SCHED_NAME_MAX + 1 + 8];
    size_t n = strlen(s->name);

    if (s->jitter_ms <= 0)
        return 0;
    memcpy(buf, s->name, n + 1);
    for (int i = 0; i < 8; i++)
        buf[n + 1 + i] = (char)((uint64_t)fire_us >> (8 * i));
    return (int64_t)(evs_checksum(buf, n + 9) % (uint64_t)s->jitter_ms);
}

int evs_sched_exec_id(const char *name, int64_t fire_us, int manual,
                      char out[EVS_ID_MAX + 1])
{
    char t[EVS_TIME_LEN + 1];

    if (!name_ok(name) || evs_time_format(fire_us, t) != 0)
        return -EINVAL;
    /* "2026-12-07T10:15:00.000000Z" -> "20261207T101500Z" */
    snprintf(out, EVS_ID_MAX + 1, "%s-%.4s%.2s%.2sT%.2s%.2s%.2sZ%s", name, t,
             t + 5, t + 8, t + 11, t + 14, t + 17, manual ? "-manual" : "");
    return 0;
}

/* The fire time in zone z, RFC 3339 with the zone's offset. */
static void local_time(const evs_tz *z, int64_t fire_us, char out[32])
{
    int64_t s = floor_div(fire_us, 1000000), y, day, sec;
    int32_t off = evs_tz_offset(z, s);
    unsigned m, d;
    int32_t a = off < 0 ? -off : off;

    s += off;
    day = floor_div(s, 86400);
    sec = s - day * 86400;
    evs__civil_from_days(day, &y, &m, &d);
    snprintf(out, 32, "%04d-%02u-%02uT%02d:%02d:%02d%c%02d:%02d", (int)y, m, d,
             (int)(sec / 3600), (int)(sec % 3600 / 60), (int)(sec % 60),
             off < 0 ? '-' : '+', (int)(a / 3600), (int)(a % 3600 / 60));
}

int evs_sched_render_inputs(const evs_sched_spec *s, const evs_tz *z,
                            int64_t fire_us, int manual,
                            const evs_allocator *alloc, char **out,
                            size_t *out_len, evs_error_info *err)
{
    evs__jbuf b = {.alloc = alloc};
    char local[32];
    evs_wf_ctx c;
    int rc;

    local_time(z, fire_us, local);
    EVS__JB_LIT(&b, "{\"name\":");
    evs__jb_quote(&b, evs_span_cstr(s->name));
    EVS__JB_LIT(&b, ",\"time\":");
    evs__jb_time(&b, fire_us);
    EVS__JB_LIT(&b, ",\"local_time\":");
    evs__jb_quote(&b, evs_span_cstr(local));
    EVS__JB_LIT(&b, ",\"timezone\":");
    evs__jb_quote(&b, evs_span_cstr(s->timezone));
    EVS__JB_LIT(&b, ",\"manual\":");
    evs__jb_str(&b, manual ? "true}" : "false}");
    if (b.err) {
        evs__jb_free(&b);
        evs_error_info_clear(err);
        return evs__error_rc(err, -ENOMEM);
    }
    memset(&c, 0, sizeof(c));
    c.index = -1;
    c.schedule = (evs_span){b.p, b.len};
    rc = evs_wf_render(&c, s->inputs.len ? s->inputs : evs_span_cstr("{}"),
                       alloc, out, out_len, err);
    evs__jb_free(&b);
    return rc;
}

int evs__sched_check_inputs(evs_span tmpl, char *msg, size_t cap,
                            const evs_allocator *alloc)
{
    evs__wf_refck ck;
    char *scratch;
    int rc;

    if (!tmpl.len)
        return 0;
    if (!(scratch = evs__malloc(alloc, tmpl.len + 1)))
        return -ENOMEM;
    memset(&ck, 0, sizeof(ck));
    ck.schedule = EVS__REF_SCHEDULE_ONLY;
    ck.scratch = scratch;
    ck.msg = msg;
    ck.cap = cap;
    rc = evs__wf_tmpl_check(&ck, tmpl) != 0 ? EVS_EPARSE : 0;
    evs__free(alloc, scratch);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The state                                                          */
/* ------------------------------------------------------------------ */

void evs_sched_state_note(evs_sched_state *st, const evs_sched_action *a)
{
    if (st->nrecent == EVS_SCHED_RECENT) {
        memmove(st->recent, st->recent + 1,
                (EVS_SCHED_RECENT - 1) * sizeof(*st->recent));
        st->nrecent--;
    }
    st->recent[st->nrecent++] = *a;
}

static void put_u64(evs__jbuf *b, const char *key, uint64_t v)
{
    char num[24];

    evs__jb_str(b, key);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    evs__jb_str(b, num);
}

int evs_sched_state_write(const evs_sched_state *st, const evs_allocator *alloc,
                          char **out, size_t *out_len)
{
    evs__jbuf b = {.alloc = alloc};
    int rc;

    EVS__JB_LIT(&b, "{\"since\":");
    evs__jb_time(&b, st->since_us);
    EVS__JB_LIT(&b, ",\"done\":");
    evs__jb_time(&b, st->done_us);
    evs__jb_str(&b, st->paused ? ",\"paused\":true" : ",\"paused\":false");
    EVS__JB_LIT(&b, ",\"note\":");
    evs__jb_quote(&b, evs_span_cstr(st->note));
    EVS__JB_LIT(&b, ",\"buffered\":");
    evs__jb_time(&b, st->buffered_us);
    evs__jb_str(&b, st->buffered_manual ? ",\"buffered_manual\":true"
                                        : ",\"buffered_manual\":false");
    EVS__JB_LIT(&b, ",\"last_exec\":");
    evs__jb_quote(&b, evs_span_cstr(st->last_exec));
    put_u64(&b, ",\"started\":", st->started);
    put_u64(&b, ",\"skipped\":", st->skipped);
    put_u64(&b, ",\"missed\":", st->missed);
    EVS__JB_LIT(&b, ",\"recent\":[");
    for (size_t i = 0; i < st->nrecent; i++) {
        const evs_sched_action *a = &st->recent[i];

        EVS__JB_LIT(&b, "{\"fire\":");
        evs__jb_time(&b, a->fire_us);
        EVS__JB_LIT(&b, ",\"at\":");
        evs__jb_time(&b, a->at_us);
        EVS__JB_LIT(&b, ",\"result\":\"");
        evs__jb_str(&b, evs_fire_result_name(a->result));
        evs__jb_str(&b,
                    a->manual ? "\",\"manual\":true" : "\",\"manual\":false");
        EVS__JB_LIT(&b, ",\"exec\":");
        evs__jb_quote(&b, evs_span_cstr(a->exec_id));
        evs__jb_str(&b, i + 1 < st->nrecent ? "}," : "}");
    }
    EVS__JB_LIT(&b, "]}");
    if ((rc = evs__jb_finish(&b, out, out_len)) != 0)
        evs__jb_free(&b);
    return rc;
}

/* Member `key` of obj: a time (null: 0). */
static int get_time(evs_span obj, const char *key, int64_t *us)
{
    evs_span v;

    *us = 0;
    if (evs__json_get(obj, key, &v) != 1)
        return -1;
    if (v.len == 4 && memcmp(v.ptr, "null", 4) == 0)
        return 0;
    if (v.len < 2 || v.ptr[0] != '"')
        return -1;
    return evs_time_parse(v.ptr + 1, v.len - 2, us) != 0 ? -1 : 0;
}

static int get_bool(evs_span obj, const char *key, int *b)
{
    evs_span v;

    if (evs__json_get(obj, key, &v) != 1 || !evs__wf_is_bool(v))
        return -1;
    *b = v.ptr[0] == 't';
    return 0;
}

static int get_str(evs_span obj, const char *key, char *buf, size_t cap)
{
    evs_span v;

    return evs__json_get(obj, key, &v) == 1 ? take_str(v, buf, cap) : -1;
}

static int get_u64(evs_span obj, const char *key, uint64_t *out)
{
    evs_span v;
    int64_t x;

    if (evs__json_get(obj, key, &v) != 1 || evs__json_int(v, &x) || x < 0)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

static int action_parse(evs_span v, evs_sched_action *a)
{
    char res[16];
    int r;

    memset(a, 0, sizeof(*a));
    if (get_time(v, "fire", &a->fire_us) || get_time(v, "at", &a->at_us) ||
        get_str(v, "result", res, sizeof(res)) ||
        get_bool(v, "manual", &a->manual) ||
        get_str(v, "exec", a->exec_id, sizeof(a->exec_id)))
        return -1;
    for (r = 0; r < 7 && strcmp(res, result_names[r]) != 0; r++)
        ;
    if (r == 7)
        return -1;
    a->result = (evs_fire_result)r;
    return 0;
}

int evs_sched_state_parse(evs_span json, evs_sched_state *st)
{
    evs__jit it;
    evs_span recent, v;
    int rc;

    memset(st, 0, sizeof(*st));
    if (!json.len || evs_json_check(json.ptr, json.len, 0, NULL, NULL, NULL) ||
        get_time(json, "since", &st->since_us) ||
        get_time(json, "done", &st->done_us) ||
        get_bool(json, "paused", &st->paused) ||
        get_str(json, "note", st->note, sizeof(st->note)) ||
        get_time(json, "buffered", &st->buffered_us) ||
        get_bool(json, "buffered_manual", &st->buffered_manual) ||
        get_str(json, "last_exec", st->last_exec, sizeof(st->last_exec)) ||
        get_u64(json, "started", &st->started) ||
        get_u64(json, "skipped", &st->skipped) ||
        get_u64(json, "missed", &st->missed) ||
        evs__json_get(json, "recent", &recent) != 1 ||
        evs__json_iter_begin(&it, recent, '[') != 0)
        return EVS_EPARSE;
    while ((rc = evs__json_arr_next(&it, &v)) == 1) {
        evs_sched_action a;

        if (action_parse(v, &a) != 0)
            return EVS_EPARSE;
        evs_sched_state_note(st, &a);
    }
    return rc < 0 ? EVS_EPARSE : 0;
}
