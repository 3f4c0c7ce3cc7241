/*
 * lineage.c: chains of executions that continued as new (walking them,
 * naming successors, recognising one's own successor after a crash),
 * and posting a request to whichever member of a chain goes on.
 */
#include "lineage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int evs__compact_replayer(evs_store *s, evs_replay **out)
{
    evs_replay_opts ro;

    evs_replay_opts_init(&ro);
    ro.alloc = evs_store_allocator(s);
    ro.compact = 1;
    return evs_replay_new(&ro, out);
}

int evs__chain_init(evs__chain *c, evs_span id)
{
    memset(c, 0, sizeof(*c));
    if (id.len == 0 || id.len > EVS_ID_MAX || !evs_id_valid(id.ptr, id.len))
        return EVS_EBADID;
    memcpy(c->id, id.ptr, id.len);
    c->id_len = id.len;
    memcpy(c->mark, id.ptr, id.len);
    c->power = 1;
    return 0;
}

int evs__chain_next(evs__chain *c, const evs_replay *rp)
{
    const evs_exec_state *x = evs_replay_exec(rp);
    evs_span next = x->continued_as;

    if (x->status != EVS_STATUS_CONTINUED || next.len == 0)
        return 0;
    if (next.len > EVS_ID_MAX || !evs_id_valid(next.ptr, next.len))
        return EVS_EHISTORY;
    /* Brent: the mark moves to where we are after 1, 2, 4, ... steps; a
     * loop brings the walk back to it. */
    if (c->steps == c->power) {
        memcpy(c->mark, c->id, c->id_len + 1);
        c->power *= 2;
        c->steps = 0;
    }
    memcpy(c->prev, c->id, c->id_len + 1);
    memcpy(c->id, next.ptr, next.len);
    c->id[next.len] = '\0';
    c->id_len = next.len;
    c->steps++;
    return strcmp(c->id, c->mark) == 0 ? EVS_EHISTORY : 1;
}

int evs__chain_last(evs_store *s, evs__chain *c, evs_replay **out)
{
    evs_replay *rp = NULL;
    int rc;

    *out = NULL;
    do {
        evs_replay_free(rp);
        if ((rc = evs__compact_replayer(s, &rp)) != 0)
            return rc;
        rc = evs_replay_open(rp, s, c->id, c->id_len, 0, NULL, NULL);
        if (rc == 0)
            rc = evs__chain_next(c, rp);
    } while (rc == 1);
    if (rc != 0) {
        evs_replay_free(rp);
        return rc;
    }
    *out = rp;
    return 0;
}

void evs__successor_id(const char *id, char out[EVS_ID_MAX + 1])
{
    const char *dot = strrchr(id, '.');
    size_t base = strlen(id);
    unsigned long long n = 1;
    char sfx[24];
    int sl;

    if (dot && dot[1] == 'c' && dot[2] >= '1' && dot[2] <= '9') {
        char *end;
        unsigned long long v = strtoull(dot + 2, &end, 10);
        if (*end == '\0') {
            n = v;
            base = (size_t)(dot - id);
        }
    }
    sl = snprintf(sfx, sizeof(sfx), ".c%llu", n + 1);
    if (base + (size_t)sl <= EVS_ID_MAX) {
        snprintf(out, EVS_ID_MAX + 1, "%.*s%s", (int)base, id, sfx);
        return;
    }
    snprintf(out, EVS_ID_MAX + 1, "%.*s-%016llx%s",
             (int)(EVS_ID_MAX - 17 - (size_t)sl), id,
             (unsigned long long)evs_checksum(id, base), sfx);
}

int evs__is_successor_of(evs_store *s, const char *succ, const char *pred)
{
    evs_replay *rp = NULL;
    evs_span lin, from;
    int ours = 0;

    if (evs__compact_replayer(s, &rp) == 0 &&
        evs_replay_open(rp, s, succ, strlen(succ), 1, NULL, NULL) == 0) {
        lin = evs_replay_exec(rp)->lineage;
        ours = lin.len && evs__json_get(lin, "continued_from", &from) == 1 &&
               from.len == strlen(pred) + 2 &&
               memcmp(from.ptr + 1, pred, strlen(pred)) == 0;
    }
    evs_replay_free(rp);
    return ours;
}

int evs__request_body(evs__jbuf *b, evs_span kind, evs_span type,
                      evs_span payload, evs_span by)
{
    if (payload.len &&
        evs_json_check(payload.ptr, payload.len, 0, NULL, NULL, NULL) != 0)
        return -EINVAL;
    if (by.len && (by.len > EVS_BY_MAX || !evs__utf8_valid(by.ptr, by.len)))
        return -EINVAL;
    EVS__JB_LIT(b, "{\"kind\":");
    evs__jb_quote(b, kind);
    if (type.len) {
        EVS__JB_LIT(b, ",\"type\":");
        evs__jb_quote(b, type);
    }
    if (payload.len) {
        EVS__JB_LIT(b, ",\"payload\":");
        evs__jb_json(b, payload);
    }
    if (by.len) {
        EVS__JB_LIT(b, ",\"by\":");
        evs__jb_quote(b, by);
    }
    EVS__JB_LIT(b, "}");
    return b->err ? -ENOMEM : 0;
}

void evs__request_control_data(evs__jbuf *d, evs_span body)
{
    evs_span v;

    EVS__JB_LIT(d, "{\"reason\":");
    if (evs__json_get(body, "payload", &v) == 1)
        evs__jb_json(d, v);
    else
        EVS__JB_LIT(d, "null");
    EVS__JB_LIT(d, ",\"by\":");
    /* A body from elsewhere whose `by` is no string, or is longer than a
     * poster may write (each byte escaped), records none. */
    if (evs__json_get(body, "by", &v) == 1 && v.len >= 2 && v.ptr[0] == '"' &&
        v.len <= 6 * EVS_BY_MAX + 2)
        evs__jb_raw(d, v.ptr, v.len);
    else
        EVS__JB_LIT(d, "null");
    EVS__JB_LIT(d, "}");
}

/*
 * Whether execution c->id goes on for certain, as its log's last event
 * shows: 1 when that event is not terminal (so it has neither ended nor
 * continued as new: nothing may follow a terminal event, FORMAT.md §6.1),
 * 0 when it may not or cannot be read (the walk of the chain decides and
 * says why). One open of the log and one line read, instead of a replay:
 * a post is on the path by which an event reaches its runner.
 */
static int goes_on(evs_store *s, const evs__chain *c)
{
    evs_log *l = NULL;
    evs_cursor *cur = NULL;
    evs_event ev;
    uint64_t last;
    int on = 0;

    if (evs_log_open(s, c->id, c->id_len, 0, &l, NULL, NULL) != 0)
        return 0;
    last = evs_log_last_seq(l);
    if (last && evs_cursor_open(l, last, last, &cur, NULL) == 0 &&
        evs_cursor_next(cur, &ev, NULL, NULL) == 1)
        on = !evs_event_type_is_terminal(ev.event_type);
    evs_cursor_close(cur);
    evs_log_close(l);
    return on;
}

int evs_exec_post(evs_store *store, evs_span id, evs_span kind, evs_span type,
                  evs_span payload)
{
    return evs_exec_post_by(store, id, kind, type, payload, (evs_span){0});
}

int evs_exec_post_by(evs_store *store, evs_span id, evs_span kind,
                     evs_span type, evs_span payload, evs_span by)
{
    static const char *const kinds[] = {"event", "pause", "unpause",
                                        "terminate"};
    evs_replay *rp = NULL;
    evs__jbuf b = {.alloc = evs_store_allocator(store)};
    evs__chain c;
    size_t k;
    int rc, ended;

    for (k = 0; k < sizeof(kinds) / sizeof(*kinds); k++)
        if (kind.len == strlen(kinds[k]) &&
            memcmp(kind.ptr, kinds[k], kind.len) == 0)
            break;
    if (k == sizeof(kinds) / sizeof(*kinds) || (k == 0 && type.len == 0) ||
        (k == 0 && by.len))
        return -EINVAL;
    if ((rc = evs__chain_init(&c, id)) != 0)
        return rc;
    /* The body first: a bad payload is told as such, whatever the run. */
    if ((rc = evs__request_body(&b, kind, type, payload, by)) != 0)
        goto out;
    if (goes_on(store, &c)) {
        rc = evs_request_post(store, c.id, c.id_len, b.p, b.len, NULL);
        goto out;
    }
    /* An execution that continued as new is reached through its chain:
     * the request goes to the member that goes on. Refused once that has
     * ended, as the log shows now; a runner that ends it before taking
     * the request drops it. */
    if ((rc = evs__chain_last(store, &c, &rp)) != 0)
        goto out;
    ended = evs_replay_exec(rp)->status >= EVS_STATUS_COMPLETED;
    evs_replay_free(rp);
    rc = ended ? EVS_EFINISHED
               : evs_request_post(store, c.id, c.id_len, b.p, b.len, NULL);
out:
    evs__jb_free(&b);
    return rc;
}
