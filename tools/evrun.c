/*
 * evrun.c: runs workflow definitions from the command line: its commands
 * and their help, main, and what several commands share (the store as a
 * run opens it, --sync, JSON arguments, the replayer).
 *
 * start, resume and retry run one execution in the foreground until it
 * completes, fails or suspends, and serve is a long-lived runner
 * (evrun_run.c); send, pause, unpause and terminate hand a request to
 * whichever runner owns the execution, through its inbox (evrun_req.c);
 * status and check read executions without running them
 * (evrun_status.c).
 */
#include "evrun.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Help                                                               */
/* ------------------------------------------------------------------ */

static const char help_start[] =
    "evrun start STORE DEF.json [--input JSON|@FILE] [--id ID] [--detach]\n"
    "          [--sync full|batch|none] [--create] [--json]\n"
    "  Creates an execution of the workflow in DEF.json and runs it in the\n"
    "  foreground until it completes, fails or suspends (it waits for an\n"
    "  event, or is paused). Sleeps and retry backoffs are waited out. A\n"
    "  wait for an event suspends, unless its timeout is due by then: the\n"
    "  timeout fires and fails the step. A timeout still to come is\n"
    "  recorded; the runner that resumes the execution fires it once due\n"
    "  (at once if it passed meanwhile). Prints \"ID OUTCOME\", then the\n"
    "  outputs (completed) or the error (failed) as JSON. An execution\n"
    "  that continues as new goes on in its successor, and ID is the last\n"
    "  of the chain. A definition or inputs it refuses exit 3, naming the\n"
    "  step, or --input; inputs that are not JSON are a usage error.\n"
    "  --input JSON   the inputs, a JSON object (@FILE: read from FILE,\n"
    "                 @-: from stdin; default {})\n"
    "  --id ID        the execution's id (default: a new UUIDv7)\n"
    "  --detach       only create it, for a runner (evrun serve) to take;\n"
    "                 prints \"ID created\"\n"
    "  --sync MODE    full (default: every append synced), batch or none\n"
    "  --create       create STORE if it does not exist (its parent must);\n"
    "                 without it a missing STORE is refused (exit 3)\n"
    "  --json         print one JSON object instead: the execution's\n"
    "                 status object (see status) with \"outcome\"\n"
    "                 (completed, failed, terminated, suspended, or\n"
    "                 created with --detach)\n";

static const char help_resume[] =
    "evrun resume STORE EXEC [--definition NEW.json] [--sync MODE] [--json]\n"
    "  Takes over an unfinished execution (replays it, re-arms its timers,\n"
    "  fires those already due, re-runs what was started and never\n"
    "  finished) and runs it as start does; an execution that has ended\n"
    "  reports how. For one that continued as new, the last of its chain is\n"
    "  taken (or reports how the chain ended).\n"
    "  --definition NEW.json\n"
    "                 go on under NEW.json, if it is compatible with the\n"
    "                 history: every step it ran is unchanged or its change\n"
    "                 is gated by a version step, and every version it\n"
    "                 decided lies in the range of NEW.json's version step\n"
    "                 for that change (formats/WORKFLOWS.md 2.7.1). Each\n"
    "                 difference is named; if one refuses it, exit 1\n"
    "  --sync MODE    full (default), batch or none\n"
    "  --json         print one JSON object, as start does, with\n"
    "                 \"findings\" under --definition (each {\"kind\",\n"
    "                 \"refusal\", \"text\"}); \"outcome\" is \"refused\"\n"
    "                 when NEW.json is refused\n";

static const char help_retry[] =
    "evrun retry STORE EXEC --strategy S [--inputs JSON|@FILE]\n"
    "          [--from-step NAME] [--output JSON|@FILE] [--from-seq N]\n"
    "          [--id NEWID] [--detach] [--sync MODE] [--json]\n"
    "  Creates a successor of an execution that has ended, linked to it,\n"
    "  and runs it as resume does (formats/WORKFLOWS.md 4.1 says which\n"
    "  executions each strategy accepts). A retry refused exits 3.\n"
    "  --strategy S   from_start; from_failure (completed steps are not\n"
    "                 run again); with_new_inputs (--inputs, and\n"
    "                 --from-step); skip_failed (--output); from_seq\n"
    "                 (--from-seq; the default when --from-seq is given)\n"
    "  --inputs JSON  with_new_inputs: the new inputs\n"
    "  --from-step NAME\n"
    "                 with_new_inputs: reuse the steps before NAME\n"
    "  --output JSON  skip_failed: the failed step's output (default null)\n"
    "  --from-seq N   from_seq: keep events 1..N\n"
    "  --id NEWID     the successor's id (default: a new UUIDv7)\n"
    "  --detach       only create it; prints \"NEWID created\"\n"
    "  --sync MODE    full (default), batch or none\n"
    "  --json         print one JSON object, as start does\n";

static const char help_serve[] =
    "evrun serve STORE [--grace MS] [--adopt MS] [--schedules MS]\n"
    "          [--gc-first MS] [--lease MS] [--max N] [--connections N]\n"
    "          [--sync MODE] [--create]\n"
    "          [--http ADDR:PORT [--token-file F] [--definitions DIR]\n"
    "          [--console DIR]]\n"
    "  Runs every unfinished execution no other runner owns, looks for\n"
    "  new ones, and fires the store's schedules when they are due (see\n"
    "  schedule). Stops on SIGINT or SIGTERM: no new steps start, actions\n"
    "  in flight get the grace time to finish, everything is flushed, then\n"
    "  it exits 0. Prints nothing on stdout.\n"
    "  --grace MS     milliseconds actions get to finish (default 10000)\n"
    "  --adopt MS     look for new executions every MS milliseconds\n"
    "                 (default 1000). On PostgreSQL a runner also hears of\n"
    "                 new work and of requests at once (LISTEN/NOTIFY) and\n"
    "                 claims work from the store's queue\n"
    "  --schedules MS look at the schedules at least every MS milliseconds,\n"
    "                 besides when a fire is due (default 1000; 0: fire\n"
    "                 none). Any number of runners may serve one store:\n"
    "                 each fire starts one execution\n"
    "  --gc-first MS  apply the store's retention policy (evdump config,\n"
    "                 evdump gc) MS milliseconds after the start (default\n"
    "                 1000), then every gc.interval (default 1h; off: never),\n"
    "                 beside the runners, never to what they own; what it\n"
    "                 deletes is noted on stderr\n"
    "  --lease MS     PostgreSQL: how long the runner's hold on an execution\n"
    "                 (or on a schedule it looks at) lasts unrenewed\n"
    "                 (default 30000). It renews its executions' every third\n"
    "                 of it; a runner that dies or stops leaves them, and\n"
    "                 any schedule it held, to the others once it has run\n"
    "                 out. Other backends ignore it\n"
    "  --max N        own at most N executions at once (default: no\n"
    "                 limit), so that runners sharing a store share its\n"
    "                 work; the rest wait for a runner with room\n"
    "  --connections N  PostgreSQL: open at most N connections to the\n"
    "                 server (1 to 64, default 4), besides the one that\n"
    "                 listens; more let more commits wait for the disk at\n"
    "                 once. Other backends ignore it\n"
    "  --sync MODE    full (default), batch or none\n"
    "  --create       create STORE if it does not exist, as start does\n"
    "  --http ADDR:PORT\n"
    "                 also serve the HTTP API (server/README.md) on\n"
    "                 ADDR:PORT ([::1]:PORT for IPv6; port 0: a free one),\n"
    "                 on the runner's loop; where it listens is noted on\n"
    "                 stderr. An address that is not loopback is refused\n"
    "                 without --token-file (exit 3)\n"
    "  --token-file F every route but /healthz and the console's files\n"
    "                 requires the bearer token on F's first line\n"
    "                 (\"Authorization: Bearer TOKEN\")\n"
    "  --definitions DIR\n"
    "                 the workflow definitions (*.json) the API lists,\n"
    "                 checks and creates executions of, by name\n"
    "  --console DIR  static files served under /console/ (default: the\n"
    "                 installed console, if that directory exists)\n";

static const char help_send[] =
    "evrun send STORE EXEC TYPE [JSON|@FILE]\n"
    "  Sends an event of TYPE with payload JSON (@FILE: read from FILE,\n"
    "  @-: from stdin; default null) to the execution. The request is\n"
    "  durable when the command returns; the runner that owns the\n"
    "  execution, or the next one, records it. A request to an execution\n"
    "  that continued as new goes along its chain to the last one, and is\n"
    "  refused (exit 1) only if that one has ended. Options are taken up\n"
    "  to EXEC only, so JSON may begin with '-'. Prints nothing.\n";

static const char help_pause[] =
    "evrun pause STORE EXEC [REASON] [--by WHO] [--reason TEXT]\n"
    "  Requests a pause: no new steps start until unpause. A request is\n"
    "  handled as send's is. The history records who asked and why, and\n"
    "  status shows them. Options may follow EXEC; the first other word\n"
    "  after it is REASON, which may begin with '-'. Prints nothing.\n"
    "  --by WHO       who asks (free text, at most 256 bytes; '' records\n"
    "                 none); default: the user name of the effective uid\n"
    "                 (getpwuid), else $USER\n"
    "  --reason TEXT  why (recorded as a JSON string); the same as REASON\n";

static const char help_unpause[] =
    "evrun unpause STORE EXEC [--by WHO] [--reason TEXT]\n"
    "  Requests that a paused execution go on, as send's request is\n"
    "  handled, recording who asked and why as pause does. Prints\n"
    "  nothing.\n"
    "  --by WHO       who asks; default: the user name, as for pause\n"
    "  --reason TEXT  why (recorded as a JSON string)\n";

static const char help_terminate[] =
    "evrun terminate STORE EXEC [REASON] [--by WHO] [--reason TEXT]\n"
    "  Requests that the execution end as terminated, as send's request is\n"
    "  handled, recording who asked and why as pause does. Options may\n"
    "  follow EXEC; the first other word after it is REASON, which may\n"
    "  begin with '-'. Prints nothing.\n"
    "  --by WHO       who asks; default: the user name, as for pause\n"
    "  --reason TEXT  why (recorded as a JSON string); the same as REASON\n";

static const char help_status[] =
    "evrun status STORE EXEC [--json]\n"
    "  Shows the status of EXEC, as its log has it now: workflow, status,\n"
    "  events, live paths, pending waits and timers, outputs, error,\n"
    "  where it failed, and who paused, unpaused or terminated it, when\n"
    "  and why.\n"
    "  --json         one JSON object: id, status, workflow_name,\n"
    "                 last_event_seq, start_time, end_time (RFC 3339 or\n"
    "                 null), live_paths, pending_waits, pending_timers,\n"
    "                 outputs, error (JSON or null), failed_at\n"
    "                 ({path, step, iteration, seq} or null), inputs,\n"
    "                 lineage ({} for none), continued_as (or null), and\n"
    "                 paused, resumed and terminated ({at, by, reason,\n"
    "                 step, seq} or null: the last pause, unpause and the\n"
    "                 termination, who asked and why), the names evdump\n"
    "                 ls --json and snapshot --json use\n";

static const char help_check[] =
    "evrun check STORE DEF.json [--json]\n"
    "  Makes the check of resume --definition on every unfinished\n"
    "  execution of the workflow DEF.json defines, without running\n"
    "  anything, and names each difference and refusal (exit 1 if any\n"
    "  execution would be refused).\n"
    "  --json         one JSON object: workflow_name, checked,\n"
    "                 would_break, and executions: each {id, verdict\n"
    "                 (compatible, refused or error), findings}\n";

static const char help_schedule[] =
    "evrun schedule STORE ACTION [NAME|FILE] [--next N] [--overlap P]\n"
    "          [--json]\n"
    "  Manages the store's schedules (formats/SCHEDULES.md), which serve\n"
    "  fires: each fire creates an execution named NAME-YYYYMMDDTHHMMSSZ\n"
    "  after its time.\n"
    "  list           the schedules: state, overlap policy, next fire\n"
    "  add FILE       adds the schedule FILE describes (@- or -: stdin); a\n"
    "                 bad cron expression is refused with its byte (exit 3)\n"
    "  describe NAME  its document, counts, next fires and last fires with\n"
    "                 their executions and their status now\n"
    "  pause NAME [NOTE]\n"
    "                 no fires until unpause; fires due meanwhile are not\n"
    "                 caught up\n"
    "  unpause NAME   fires again from now on\n"
    "  trigger NAME   fires now by hand (NAME-TIME-manual) under its\n"
    "                 overlap policy; prints \"ID RESULT\"; exit 1 when it\n"
    "                 did not start (skipped, dropped)\n"
    "  delete NAME    deletes it: it fires no more (its executions stay)\n"
    "  --next N       describe: how many next fires (default 5)\n"
    "  --overlap P    trigger: skip, buffer_one, allow_all, cancel_other or\n"
    "                 terminate_other instead of the schedule's policy\n"
    "  --json         list: one object per line; describe: one object\n";

static const tool_command commands[] = {
    {"start", cmd_start, "create an execution and run it", help_start},
    {"resume", cmd_resume, "take over an execution and run it", help_resume},
    {"retry", cmd_retry, "run a successor of an execution that ended",
     help_retry},
    {"serve", cmd_serve, "run every unfinished execution until stopped",
     help_serve},
    {"send", cmd_send, "send an event to an execution", help_send},
    {"pause", cmd_pause, "pause an execution", help_pause},
    {"unpause", cmd_unpause, "let a paused execution go on", help_unpause},
    {"terminate", cmd_terminate, "end an execution", help_terminate},
    {"status", cmd_status, "show an execution's status", help_status},
    {"check", cmd_check, "check a new definition against the executions",
     help_check},
    {"schedule", cmd_schedule, "add, list, pause or trigger schedules",
     help_schedule},
    {"help", tool_cmd_help, "show this help, or a command's", NULL},
};

static const char help_head[] =
    "Usage: evrun COMMAND STORE ARGS... [OPTIONS]\n"
    "\n"
    "Runs workflow definitions (formats/WORKFLOWS.md) durably in an\n"
    "evstore store: STORE is the store's directory, sqlite:PATH for a\n"
    "store in one SQLite database, or a postgresql:// URI for a store in\n"
    "PostgreSQL (eventstore/BACKENDS.md). Only start and serve\n"
    "create it, and only with --create, so that a mistyped path is not\n"
    "taken for a new, empty store.\n"
    "\n"
    "Commands:\n";

static const char help_common[] =
    "Options may come before or after the arguments (send: up to EXEC;\n"
    "pause, unpause and terminate: their own up to REASON); \"--\" ends\n"
    "them. Every command takes -h,\n"
    "--help (its own help); evrun --version prints the version of the\n"
    "library. Every command takes --allow-unsafe-perms: open a store\n"
    "directory that group or others may write to, which is refused\n"
    "otherwise (exit 3). With --json, stdout holds that one JSON object\n"
    "and nothing else; messages go to stderr.\n" TOOL_LOG_HELP;

static const char help_more[] =
    "Built-in actions: echo (output = input), fail ({\"times\":N,\n"
    "\"fatal\":bool}: fails the first N attempts), sleep ({\"ms\":N}).\n"
    "An action \"exec:PROGRAM ARGS...\" (split on blanks), or\n"
    "\"exec\": [\"PROGRAM\", \"ARG\", ...] (each argument as written), runs\n"
    "PROGRAM: a relative path from the working directory, a bare name\n"
    "from PATH (see orchestrator/README.md for its stdin and stdout).\n";

static const char help_exit[] =
    "Exit status (as evdump's and evreplay's):\n"
    "  0  completed (or request accepted)\n"
    "  1  failed or terminated; a request refused (the execution has\n"
    "     ended); check found an execution the definition would break\n"
    "  2  usage error: unknown command or option, a missing or malformed\n"
    "     argument (only then is --help suggested)\n"
    "  3  any other error: a definition, inputs or retry refused, store\n"
    "     or execution not found, I/O error\n"
    "  4  suspended: it waits for an event, or is paused\n"
    "Errors are one line on stderr beginning with \"evrun: \".\n";

/* ------------------------------------------------------------------ */
/* What the commands share                                            */
/* ------------------------------------------------------------------ */

int parse_sync(const char *cmd, const char *v, evs_durability *d)
{
    if (strcmp(v, "full") == 0)
        *d = EVS_SYNC_FULL;
    else if (strcmp(v, "batch") == 0)
        *d = EVS_SYNC_BATCH;
    else if (strcmp(v, "none") == 0)
        *d = EVS_SYNC_NONE;
    else
        return usage_error(cmd,
                           "--sync takes full, batch or none, got "
                           "'%s'",
                           v);
    return 0;
}

uint32_t g_lease_ms;
uint32_t g_connections;

int run_store_open(const char *path, evs_durability d, int create,
                   int can_create, evs_store **s)
{
    evs_store_opts so;

    evs_store_opts_init(&so);
    so.durability = d;
    so.create = create;
    if (g_lease_ms)
        so.lease_ms = g_lease_ms;
    if (g_connections)
        so.connections = g_connections;
    return open_store_opts(path, &so, can_create ? "; --create makes it" : NULL,
                           s);
}

int json_arg(const char *cmd, const char *opt, const char *arg, char **buf,
             evs_span *out)
{
    const char *file = arg[0] == '@' ? arg + 1 : NULL;
    size_t len = 0, off = 0;

    if (file) {
        if (!(*buf = read_file(file, &len)))
            return fail_rc(-errno, "%s: cannot read %s", opt, file);
        *out = (evs_span){*buf, len};
    } else {
        *out = evs_span_cstr(arg);
    }
    if (out->len &&
        evs_json_check(out->ptr, out->len, 0, NULL, NULL, &off) != 0)
        return usage_error(cmd, "%s%s%s is not JSON (at byte %zu)", opt,
                           file ? " @" : "", file ? file : "", off);
    return 0;
}

int fail_definition(const char *path, const evs_error_info *we)
{
    return fail("%s: %s%s%s", path, we->step, we->step[0] ? ": " : "", we->msg);
}

int replay_new(evs_replay **rp)
{
    evs_replay_opts o;

    evs_replay_opts_init(&o);
    o.compact = 1;
    return evs_replay_new(&o, rp);
}

int main(int argc, char **argv)
{
    static const tool_def evrun = {"evrun",
                                   help_head,
                                   help_common,
                                   help_more,
                                   help_exit,
                                   commands,
                                   sizeof(commands) / sizeof(commands[0])};

    /* Appends and snapshots of executions run on the libuv threadpool,
     * and a durable run waits on fsync there: more threads than libuv's
     * default 4 let more executions sync at once. A value set by the
     * user wins. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    return tool_main(&evrun, argc, argv);
}
