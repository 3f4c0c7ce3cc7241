/*
 * evrun_status.c: what evrun reads without running anything: status
 * (one execution, as its log has it now, and the JSON object that
 * describes an execution, which start, resume and retry print too), and
 * check (a new definition against every unfinished execution of its
 * workflow, with the findings that resume --definition prints as well).
 */
#include "evrun.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Findings of a definition check                                     */
/* ------------------------------------------------------------------ */

int hold_finding(void *arg, const evs_def_finding *f)
{
    findings *fs = arg;

    if (fs->n == fs->cap) {
        size_t nc = fs->cap ? fs->cap * 2 : 8;
        finding *nv = realloc(fs->v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        fs->v = nv;
        fs->cap = nc;
    }
    fs->v[fs->n].code = f->code;
    fs->v[fs->n].version = f->kind == EVS_DEF_VERSION;
    evs_def_finding_describe(f, fs->v[fs->n].text, sizeof(fs->v->text));
    fs->n++;
    return 0;
}

void print_findings(const findings *fs, int accepted, int json)
{
    for (size_t i = 0; i < fs->n; i++)
        if (fs->v[i].code)
            note("%s: %s", fs->id, fs->v[i].text);
        else if (!json)
            out_printf("%s: %s%s\n", fs->id, fs->v[i].text,
                       accepted ? ": allowed" : "");
}

void findings_json(const findings *fs)
{
    out_write(",\"findings\":[", 13);
    for (size_t i = 0; i < fs->n; i++) {
        const finding *f = &fs->v[i];

        out_printf("%s{\"kind\":\"%s\",\"refusal\":", i ? "," : "",
                   f->version ? "version" : "step");
        if (f->code)
            out_printf("\"%s\"", evs_err_name(f->code));
        else
            out_write("null", 4);
        out_write(",\"text\":", 8);
        out_json_str(evs_span_cstr(f->text));
        out_write("}", 1);
    }
    out_write("]", 1);
}

void findings_free(findings *fs)
{
    free(fs->v);
    fs->v = NULL;
    fs->n = fs->cap = 0;
}

/* ------------------------------------------------------------------ */
/* status                                                             */
/* ------------------------------------------------------------------ */

void exec_json_open(const char *id, const char *outcome, const evs_replay *rp)
{
    char *text = NULL;
    const char *rest;
    size_t len = 0;

    out_member_str("id", evs_span_cstr(id), 1);
    if (outcome)
        out_member_str("outcome", evs_span_cstr(outcome), 0);
    if (!rp)
        return;
    /* The library's status object (evstore/inspect.h), the API's too,
     * after its id and without its closing brace. */
    if (evs_replay_status_json(rp, NULL, &text, &len) != 0 ||
        !(rest = strstr(text, ",\"status\":"))) {
        note("%s: out of memory", id);
        evs_free(NULL, text);
        return;
    }
    out_write(rest, len - (size_t)(rest - text) - 1);
    evs_free(NULL, text);
}

/* A count of the library's status object: its members are unique and a
 * string's quotes are escaped, so `,"NAME":` is found only as the
 * member. */
static size_t status_count(const char *json, const char *name)
{
    char key[32];
    const char *p;

    snprintf(key, sizeof(key), ",\"%s\":", name);
    p = json ? strstr(json, key) : NULL;
    return p ? (size_t)strtoull(p + strlen(key), NULL, 10) : 0;
}

/* One line of who paused, unpaused or terminated an execution, when and
 * why: "paused     2026-... by alice at step fetch: \"maintenance\"". */
static void control_line(const char *label, const evs_control_state *c)
{
    char t[EVS_TIME_LEN + 1];

    if (!c->seq)
        return;
    evs_time_format(c->at_us, t);
    out_printf("%-10s %s by ", label, t);
    if (!c->by.len)
        out_printf("(not recorded)");
    /* Free text from whoever asked: no control byte reaches the
     * terminal. */
    for (size_t i = 0; i < c->by.len; i++)
        out_printf("%c", (unsigned char)c->by.ptr[i] < 0x20 ||
                                 c->by.ptr[i] == 0x7f
                             ? '?'
                             : c->by.ptr[i]);
    if (c->step.len)
        out_printf(" at step %.*s", (int)c->step.len, c->step.ptr);
    if (c->reason.len)
        out_printf(": %.*s", (int)c->reason.len, c->reason.ptr);
    out_printf(" (sequence %llu)\n", (unsigned long long)c->seq);
}

static void status_text(const char *id, const evs_replay *rp)
{
    const evs_exec_state *x = evs_replay_exec(rp);
    char *json = NULL;
    struct {
        size_t live_paths, waits, timers;
    } p;

    /* The counts as the status object (evstore/inspect.h) has them. */
    if (evs_replay_status_json(rp, NULL, &json, NULL) != 0)
        note("%s: out of memory; counts shown as 0", id);
    p.live_paths = status_count(json, "live_paths");
    p.waits = status_count(json, "pending_waits");
    p.timers = status_count(json, "pending_timers");
    evs_free(NULL, json);
    out_printf("execution  %s\nworkflow   %.*s\nstatus     %s\n"
               "events     %llu\npaths      %zu live\n"
               "waiting    %zu events, %zu timers\n",
               id, (int)x->workflow_name.len, x->workflow_name.ptr,
               evs_exec_status_name(x->status), (unsigned long long)x->last_seq,
               p.live_paths, p.waits, p.timers);
    if (x->outputs.len)
        out_printf("outputs    %.*s\n", (int)x->outputs.len, x->outputs.ptr);
    if (x->error.len)
        out_printf("error      %.*s\n", (int)x->error.len, x->error.ptr);
    if (x->failed_seq) {
        out_printf("failed at  path %.*s, step %.*s", (int)x->failed_path.len,
                   x->failed_path.ptr, (int)x->failed_step.len,
                   x->failed_step.ptr);
        if (x->failed_iteration >= 0)
            out_printf(", iteration %lld", (long long)x->failed_iteration);
        out_printf(", sequence %llu\n", (unsigned long long)x->failed_seq);
    }
    control_line("paused", &x->paused);
    control_line("unpaused", &x->resumed);
    control_line("terminated", &x->terminated);
}

/* Parses the options of status and check, which take only --json:
 * 0, an exit status, or -1 after printing the help. */
static int json_only_opts(int argc, char **argv, int *json)
{
    static const struct option lo[] = {OPT_JSON_ENTRY, OPT_HELP, OPT_END};
    int c;

    while ((c = next_opt(argv[0], argc, argv, "", lo)) != -1) {
        if (c == 'h') {
            print_help(argv[0]);
            return -1;
        }
        if (c != OPT_JSON)
            return -c;
        *json = 1;
    }
    return 0;
}

int cmd_status(int argc, char **argv)
{
    const char *store, *id;
    int json = 0, ex, rc;
    evs_store *s = NULL;
    evs_replay *rp = NULL;
    evs_error_info info;

    if ((ex = json_only_opts(argc, argv, &json)) != 0)
        return ex < 0 ? EXIT_OKAY : ex;
    if ((ex = positionals("status", argc, argv, 2, 2, "STORE EXEC")) != 0)
        return ex;
    store = argv[optind];
    id = argv[optind + 1];
    if ((ex = open_store(store, &s)) != 0)
        return ex;
    evs_error_info_clear(&info);
    if ((rc = replay_new(&rp)) != 0 ||
        (rc = evs_replay_open(rp, s, id, strlen(id), 0, NULL, &info)) != 0) {
        if (rc == EVS_EHISTORY)
            ex =
                fail_rc(rc, "%s: sequence %llu breaks rule %s: %s", id,
                        (unsigned long long)info.sequence, info.kind, info.msg);
        else if (rc == -ENOENT || rc == EVS_EBADID || !info.msg[0])
            ex = fail_on_exec(s, store, id, rc, "reading the log");
        else
            ex = fail_evs(rc, &info, id);
        goto out;
    }
    if (json) {
        exec_json_open(id, NULL, rp);
        out_write("}\n", 2);
    } else {
        status_text(id, rp);
    }
    ex = EXIT_OKAY;
out:
    evs_replay_free(rp);
    evs_store_close(s);
    return ex;
}

/* ------------------------------------------------------------------ */
/* check                                                              */
/* ------------------------------------------------------------------ */

/* Parses the definition as resume --definition parses it: with evrun's
 * actions, so an action it does not have is refused here too. */
static int check_parse(evs_store *s, const char *path, evs_span text,
                       evs_wf_def **def)
{
    evs_orch_opts oo;
    evs_orch *o = NULL;
    evs_error_info we;
    int rc;

    evs_orch_opts_init(&oo);
    if ((rc = evs_orch_new(s, &oo, &o)) != 0)
        return fail_rc(rc, "cannot start the orchestrator");
    rc = evs_orch_parse(o, text, def, &we);
    evs_orch_stop(o, 0);
    evs_orch_run(o);
    evs_orch_free(o);
    if (rc == EVS_EPARSE)
        return fail_definition(path, &we);
    if (rc != 0)
        return fail_rc(rc, "cannot parse %s", path);
    return 0;
}

/* The tally of a check. */
typedef struct check_tally {
    size_t checked, bad, errors;
} check_tally;

/* What a check carries from one execution to the next. `fs` comes
 * first: hold_finding is handed the whole as its findings. */
typedef struct check_run {
    findings fs;
    int json;
    check_tally t;
} check_run;

/* Reports one execution evs_orch_check_store checked (its findings are
 * held in c->fs), or one it could not replay. */
static int check_one(void *arg, const char *id, int checked, int rc)
{
    check_run *c = arg;
    const char *verdict;

    if (!checked) {
        note("%s: cannot be replayed; skipped", id);
        return 0;
    }
    c->fs.id = id;
    if (c->json && c->t.checked)
        out_write(",", 1);
    c->t.checked++;
    print_findings(&c->fs, rc == 0, c->json);
    if (rc == 0) {
        verdict = "compatible";
    } else if (rc == EVS_ENONDET || rc == EVS_EVERSION) {
        note("%s: resume --definition would refuse it (%s)", id,
             evs_err_name(rc));
        verdict = "refused";
        c->t.bad++;
    } else {
        fail_rc(rc, "%s: cannot be checked", id);
        verdict = "error";
        c->t.errors++;
    }
    if (c->json) {
        out_member_str("id", evs_span_cstr(id), 1);
        out_member_str("verdict", evs_span_cstr(verdict), 0);
        findings_json(&c->fs);
        out_write("}", 1);
    } else if (rc == 0) {
        out_printf("%s: compatible\n", id);
    }
    c->fs.n = 0;
    return 0;
}

int cmd_check(int argc, char **argv)
{
    evs_store *s = NULL;
    evs_wf_def *def = NULL;
    check_tally t = {0, 0, 0};
    check_run c;
    const char *path;
    char *dbuf = NULL;
    size_t dlen;
    int json = 0, ex;

    memset(&c, 0, sizeof(c));
    if ((ex = json_only_opts(argc, argv, &json)) != 0)
        return ex < 0 ? EXIT_OKAY : ex;
    if ((ex = positionals("check", argc, argv, 2, 2, "STORE DEF.json")) != 0)
        return ex;
    path = argv[optind + 1];
    if (!(dbuf = read_file(path, &dlen)))
        return fail_rc(-errno, "cannot read %s", path);
    if ((ex = run_store_open(argv[optind], EVS_SYNC_FULL, 0, 0, &s)) != 0 ||
        (ex = check_parse(s, path, (evs_span){dbuf, dlen}, &def)) != 0)
        goto out;
    if (json) {
        out_member_str("workflow_name", evs_span_cstr(def->name), 1);
        out_write(",\"executions\":[", 15);
    }
    /* The check resume --definition makes, on each unfinished execution
     * of the workflow: the library's loop, the HTTP API's too. */
    c.json = json;
    ex = evs_orch_check_store(s, def, hold_finding, check_one, &c);
    findings_free(&c.fs);
    if (ex != 0) {
        ex = fail_rc(ex, "cannot list %s", argv[optind]);
        goto out;
    }
    t = c.t;
    if (json) {
        out_write("]", 1);
        out_member_u64("checked", t.checked);
        out_member_u64("would_break", t.bad);
        out_write("}\n", 2);
    } else {
        out_printf("%zu unfinished executions of %s checked, %zu would "
                   "break\n",
                   t.checked, def->name, t.bad);
    }
    ex = t.errors ? EXIT_ERROR : t.bad ? EXIT_FAILED : EXIT_OKAY;
out:
    evs_store_close(s);
    evs_wf_free(def);
    free(dbuf);
    return ex;
}
