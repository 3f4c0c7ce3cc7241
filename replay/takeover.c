/*
 * takeover.c: a runner's identity, and the data of the events a runner
 * records when it takes an execution over (takeover.h).
 */
#include "takeover.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int evs__runner_init(evs__runner *me)
{
    int rc;

    memset(me, 0, sizeof(*me));
    if ((rc = evs_uuid7(me->id)) != 0)
        return rc;
    if (gethostname(me->host, sizeof(me->host) - 1) != 0)
        me->host[0] = '\0';
    me->host[sizeof(me->host) - 1] = '\0';
    me->pid = (long)getpid();
    return 0;
}

void evs__takeover_data(evs__jbuf *d, const evs__runner *me,
                        const evs_exec_state *st, uint64_t from_seq)
{
    EVS__JB_LIT(d, "{\"runner\":");
    evs__jb_quote(d, evs_span_cstr(me->id));
    EVS__JB_LIT(d, ",\"host\":");
    evs__jb_quote(d, evs_span_cstr(me->host));
    EVS__JB_LIT(d, ",\"pid\":");
    evs__jb_int(d, me->pid);
    EVS__JB_LIT(d, ",\"from_seq\":");
    evs__jb_int(d, (int64_t)from_seq);
    if (st->runner.len) {
        EVS__JB_LIT(d, ",\"previous_runner\":");
        evs__jb_quote(d, st->runner);
    }
    EVS__JB_LIT(d, "}");
}

void evs__redispatch_data(evs__jbuf *d, uint32_t attempt, int64_t iteration,
                          evs_span key, uint64_t takeover_seq)
{
    EVS__JB_LIT(d, "{\"attempt\":");
    evs__jb_int(d, attempt);
    if (iteration >= 0) {
        EVS__JB_LIT(d, ",\"iteration\":");
        evs__jb_int(d, iteration);
    }
    EVS__JB_LIT(d, ",\"idempotency_key\":");
    evs__jb_quote(d, key);
    EVS__JB_LIT(d, ",\"takeover_seq\":");
    evs__jb_int(d, (int64_t)takeover_seq);
    EVS__JB_LIT(d, "}");
}
