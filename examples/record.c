/*
 * record.c: the README's "Using the library", whole. It records the
 * history of one execution ("run-42") by hand with the recorder, then
 * brings the store's listing up to date, so that `evdump ls STORE` shows
 * it completed with its last sequence.
 *
 * The part between the README markers is the README's snippet, byte for
 * byte (scripts/check-readme compares them). It includes only
 * <evstore.h>, so it builds under strict C11 without libuv's headers.
 *
 * Usage: record STORE_DIR
 */
/* README: record: begin */
#include <evstore.h>

#include <stdio.h>
#include <string.h>

/* An event on the main path; the recorder gives it its sequence, id and
 * time. */
static evs_event event(const char *type, const char *step, const char *data)
{
    evs_event e;

    memset(&e, 0, sizeof(e));
    e.path_id = evs_span_cstr("main");
    e.event_type = evs_span_cstr(type);
    e.step_name = evs_span_cstr(step);
    e.data = evs_span_cstr(data);
    return e;
}

/* What follows execution_started: {type, step, data}. */
static const char *const rest[][3] = {
    {EVS_EV_STEP_STARTED, "summarize", "{\"attempt\":1}"},
    {EVS_EV_STEP_COMPLETED, "summarize",
     "{\"output\":\"...\",\"stored_variable\":\"summary\"}"},
    {EVS_EV_EXECUTION_COMPLETED, "", "{\"outputs\":{\"summary\":\"...\"}}"},
};

static int record(const char *dir, evs_error_info *err)
{
    evs_store *st = NULL;
    evs_log *log = NULL;
    evs_recorder *rec = NULL;
    evs_replay *r = NULL;
    evs_event e;
    int rc;

    /* A history begins with execution_started (FORMAT.md §6.1): the
     * execution is created holding it, atomically, and listed at once. */
    e = event(EVS_EV_EXECUTION_STARTED, "",
              "{\"workflow_name\":\"summarize\",\"inputs\":{\"url\":\"u\"}}");
    if ((rc = evs_store_open(dir, NULL, &st)) != 0 ||
        (rc = evs_exec_create(st, "run-42", 6, NULL, &e, 1)) != 0 ||
        (rc = evs_log_open(st, "run-42", 6, EVS_LOG_WRITE, &log, NULL, NULL)) !=
            0 ||
        (rc = evs_recorder_open(log, NULL, &rec)) != 0)
        goto out;

    /* Then each step, started before it ends, and the end. */
    for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
        e = event(rest[i][0], rest[i][1], rest[i][2]);
        if ((rc = evs_recorder_record(rec, &e, NULL)) != 0)
            goto out;
    }
    if ((rc = evs_recorder_flush(rec)) != 0) /* one atomic, fsynced append */
        goto out;

    /* The listing reads snapshots, and the recorder writes none: replay
     * the log (which checks the history) and save its snapshot. */
    if ((rc = evs_replay_new(NULL, &r)) == 0 &&
        (rc = evs_replay_run(r, log, 0, err)) == 0)
        rc = evs_replay_snapshot(r, st, (evs_span){0});
out:
    evs_replay_free(r);
    evs_recorder_close(rec);
    evs_log_close(log);
    evs_store_close(st);
    return rc; /* 0, or -errno or an EVS_E* code */
}
/* README: record: end */

int main(int argc, char **argv)
{
    evs_error_info err;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: record STORE_DIR\n");
        return 2;
    }
    evs_error_info_clear(&err);
    if ((rc = record(argv[1], &err)) != 0) {
        fprintf(stderr, "record: %s (%s)\n", evs_strerror(rc),
                evs_err_name(rc));
        if (rc == EVS_EHISTORY) /* err.kind is the rule (FORMAT.md §6.1) */
            fprintf(stderr, "record: seq %llu breaks rule %s: %s\n",
                    (unsigned long long)err.sequence, err.kind, err.msg);
        return 1;
    }
    printf("recorded run-42 in %s\n", argv[1]);
    return 0;
}
