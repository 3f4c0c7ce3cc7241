/*
 * replay.c: the README's "Replaying an execution", whole. It opens an
 * execution's replayed state (from its snapshot when that is usable,
 * then the events after it), prints the execution's status and each
 * step, and saves a fresh snapshot so that the next open costs only the
 * tail.
 *
 * The part between the README markers is the README's snippet, byte for
 * byte (scripts/check-readme compares them).
 *
 * Usage: replay STORE_DIR EXECUTION_ID
 */
/* README: replay: begin */
#include <evstore.h>

#include <stdio.h>
#include <string.h>

static int show(evs_store *st, const char *id, evs_error_info *err)
{
    evs_replay *r = NULL;
    const evs_exec_state *x;
    int from_snapshot, rc;

    /* Strict: an event that breaks a history rule stops the replay, and
     * *err says which rule, as it says what is wrong with a damaged log. */
    if ((rc = evs_replay_new(NULL, &r)) != 0 ||
        (rc = evs_replay_open(r, st, id, strlen(id), 0, &from_snapshot, err)) !=
            0)
        goto out;

    x = evs_replay_exec(r); /* status, outputs, failure point */
    printf("%s: %s at seq %llu%s\n", id, evs_exec_status_name(x->status),
           (unsigned long long)x->last_seq,
           from_snapshot ? " (from its snapshot)" : "");
    for (size_t i = 0; i < evs_replay_step_count(r); i++) {
        const evs_step_state *s = evs_replay_step(r, i);
        printf("  %.*s/%.*s: %s after %u attempt(s), output %.*s\n",
               (int)s->path_id.len, s->path_id.ptr, (int)s->name.len,
               s->name.ptr, evs_step_status_name(s->status), s->attempts,
               (int)s->output.len, s->output.ptr);
    }

    /* The next open costs only the events after this snapshot. */
    rc = evs_replay_snapshot(r, st, (evs_span){0});
out:
    evs_replay_free(r);
    return rc;
}
/* README: replay: end */

int main(int argc, char **argv)
{
    evs_store_opts so;
    evs_store *st = NULL;
    evs_error_info err;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: replay STORE_DIR EXECUTION_ID\n");
        return 2;
    }
    evs_error_info_clear(&err);
    evs_store_opts_init(&so);
    so.create = 0; /* a mistyped store is an error, not a new store */
    /* The library's log records, as JSON lines on stderr: */
/* README: log_sink: begin */
    static const evs_log_sink sink = {EVS_LOG_JSON, EVS_LOG_INFO, NULL};
    so.log_fn = evs_log_stderr;
    so.log_ctx = (void *)&sink;
/* README: log_sink: end */
    if ((rc = evs_store_open(argv[1], &so, &st)) == 0)
        rc = show(st, argv[2], &err);
    evs_store_close(st);
    if (rc != 0) {
        fprintf(stderr, "replay: %s (%s)\n", evs_strerror(rc),
                evs_err_name(rc));
        if (rc == EVS_EHISTORY) /* err.kind is the rule (FORMAT.md §6.1) */
            fprintf(stderr, "replay: seq %llu breaks rule %s: %s\n",
                    (unsigned long long)err.sequence, err.kind, err.msg);
        else if (err.msg[0])
            fprintf(stderr, "replay: %s\n", err.msg);
        return 1;
    }
    return 0;
}
