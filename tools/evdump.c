/*
 * evdump.c: the operator's inspection tool: its commands and their help,
 * main, and what only evdump's commands share: text made safe for a
 * terminal, pretty JSON, times and colours. Messages, options, store
 * opening and the result output are the three tools' (common.c).
 *
 * Every command reaches the store only through the public API, so evdump
 * sees exactly what any other client of the library sees.
 */
#include "evdump.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

dump_term g_term;
volatile sig_atomic_t g_stop;

/* ------------------------------------------------------------------ */
/* Help                                                               */
/* ------------------------------------------------------------------ */

static const char help_ls[] =
    "evdump ls STORE [--status S] [--workflow W] [--limit N] [--offset N]\n"
    "          [--json]\n"
    "  Lists executions by creation time, then id: id, status, workflow,\n"
    "  created, updated and last sequence, as recorded in each snapshot.\n"
    "  An execution whose snapshot is missing or damaged shows \"?\" and is\n"
    "  listed only when neither --status nor --workflow is given.\n"
    "  --status S     only executions whose status is S\n"
    "  --workflow W   only executions of workflow W\n"
    "  --limit N      at most N executions (0, the default: all)\n"
    "  --offset N     skip the first N matching executions\n"
    "  --json         one JSON object per line and execution, with id,\n"
    "                 status, workflow_name, created_at, updated_at,\n"
    "                 start_time, end_time (RFC 3339 strings or null),\n"
    "                 last_event_seq and snapshot_ok\n";

static const char help_show[] =
    "evdump show STORE EXEC [--from SEQ] [--to SEQ] [--type T] [--path P]\n"
    "          [--json]\n"
    "evdump show BUNDLE [OPTIONS]\n"
    "  Shows the events of EXEC in order, one row each: sequence, time,\n"
    "  type, path, step and data. On a terminal the data is cut to the\n"
    "  terminal's width; otherwise it is printed in full. Every line read\n"
    "  is verified: damage stops the output with an error (exit 3). What\n"
    "  follows the end of the log is said on stderr: an unfinished append\n"
    "  (its offset, bytes and sequences), or a damaged one (the line that\n"
    "  fails, and exit 1). Given a bundle (evdump archive), shows the\n"
    "  events of its log.\n"
    "  --from SEQ     start at sequence SEQ (default 1)\n"
    "  --to SEQ       stop after sequence SEQ (default: the last)\n"
    "  --type T       only events of type T; repeat for any of several\n"
    "  --path P       only events of path P; repeat for any of several\n"
    "  --json         print each event's line exactly as stored in the\n"
    "                 log (canonical, with its checksum)\n";

static const char help_tail[] =
    "evdump tail STORE EXEC [-n N] [-f] [--json]\n"
    "  Shows the last N events of EXEC, in the format of show, without\n"
    "  reading the whole log, and says on stderr what follows its end, as\n"
    "  show does.\n"
    "  -n, --lines N  how many events (default 10; 0: none)\n"
    "  -f, --follow   then keep printing events as they are appended\n"
    "                 (checked every 100 ms) until SIGINT or SIGTERM,\n"
    "                 which end it with exit status 0 (1 if a damaged\n"
    "                 append followed the end when it started)\n"
    "  --json         print each event's line exactly as stored\n";

static const char help_verify[] =
    "evdump verify STORE [EXEC...]\n"
    "evdump verify BUNDLE...\n"
    "  Checks every line of each log (checksum, sequence, append framing,\n"
    "  execution id, format version) and each snapshot (checksums,\n"
    "  format, last_event_seq not past the end of the log); without EXEC,\n"
    "  every execution in the store. Logs and snapshots are only read\n"
    "  (listing the store may rewrite its .index cache). Prints one line\n"
    "  per problem on stdout:\n"
    "    EXEC: seq SEQ at byte OFFSET: KIND: message\n"
    "  with KIND checksum, syntax, sequence, framing, execution, format or\n"
    "  torn (an unfinished append at the end that a crash left, which the\n"
    "  next writer cuts back). A damaged last append (a line no crash\n"
    "  leaves, FORMAT.md 4) is reported by its bad line, with the\n"
    "  sequences and number of events of the append; the next writer\n"
    "  refuses to cut it. A snapshot problem reads\n"
    "    EXEC: snapshot: KIND: message\n"
    "  with KIND missing, checksum, binding, syntax, version, execution or\n"
    "  stale. Ends with \"N executions, M events, K problems\".\n"
    "  Given bundles (files, as evdump archive writes them), checks each\n"
    "  whole (framing, checksums, compression, manifest, every line of its\n"
    "  log, its snapshot) and prints one line per bundle:\n"
    "    BUNDLE: ok: EXEC, STATUS, N events, ended TIME, ...\n"
    "    BUNDLE: at byte OFFSET: KIND: message\n"
    "  then \"N bundles, K damaged\". A bundle of a newer bundle format is\n"
    "  reported as such (EVS_EFORMAT).\n"
    "  Exit 1 if there is any problem.\n";

static const char help_snapshot[] =
    "evdump snapshot STORE EXEC [--json]\n"
    "  Shows the snapshot of EXEC after checking its checksums and that it\n"
    "  is not ahead of the log: one field per line, JSON fields\n"
    "  pretty-printed, \"-\" for what is not set.\n"
    "  --json         one JSON object with every field: times as RFC 3339\n"
    "                 strings or null, JSON fields embedded as JSON (null\n"
    "                 when empty)\n";

static const char help_import[] =
    "evdump import STORE EXEC [FILE|-]\n"
    "  Appends the JSON Lines events of FILE (default, or \"-\": stdin) to\n"
    "  EXEC. Lines may be evstore's or Dive's (id, execution_id, path_id,\n"
    "  sequence, timestamp, event_type, step_name, data), with or without a\n"
    "  checksum; a checksum that is present must match. Blank lines are\n"
    "  skipped and CRLF line endings accepted. The sequences must continue\n"
    "  the log (the first one is its last sequence + 1) with no gap or\n"
    "  duplicate, and execution_id must be empty or EXEC. Ids, times and\n"
    "  data are kept; the lines written are canonical evstore lines.\n"
    "  If EXEC does not exist it is created (the first event must then be\n"
    "  sequence 1) with status \"running\" and, when the first event is an\n"
    "  execution_started with data.workflow_name, that workflow name.\n"
    "  The log is opened as its writer: a torn tail is cut back first (the\n"
    "  cut bytes are saved beside the log) and reported on stderr, and the\n"
    "  import fails if another writer holds the execution.\n"
    "  Events are written in atomic appends of up to 1000 events. At the\n"
    "  first bad line it reports \"line N: reason\" and exits 3: appends\n"
    "  written before that line stay in the log; none of the events of the\n"
    "  append the bad line belongs to is written.\n"
    "  Prints \"imported N events (seq A..B)\" at the end.\n";

static const char help_copy[] =
    "evdump copy SRC DST [EXEC...]\n"
    "  Copies executions (default: every one) from store SRC to store DST,\n"
    "  of any two backends (a directory, sqlite:PATH; DST is created if\n"
    "  missing). Each is written append by append as SRC wrote it (a line\n"
    "  carries its append's framing), its first append creating it in DST\n"
    "  with SRC's snapshot header;\n"
    "  SRC's snapshot is then saved when it is the log's (else one is\n"
    "  replayed from the copy's log), and both logs\n"
    "  are read again: every line of the copy must be SRC's, byte for\n"
    "  byte. A copy that fails or differs is deleted from DST; an\n"
    "  execution already in DST is not copied (its copy fails). SRC is\n"
    "  only read; copying a store that runners are writing copies each\n"
    "  log as it is when it is read.\n"
    "  Prints \"copied EXEC: N events, B bytes, checked\" for each, then\n"
    "  \"N copied, M failed\"; exits 3 if any failed.\n";

static const char help_salvage[] =
    "evdump salvage STORE EXEC [--out FILE]\n"
    "  Exports every line of EXEC's log that can still be read, byte for\n"
    "  byte, and reports each problem on stderr in the form of verify.\n"
    "  Lines with a bad checksum, bad syntax, another execution's id or a\n"
    "  newer format are left out; lines that are only out of sequence or\n"
    "  of a damaged append are exported. So are the lines of the\n"
    "  unfinished or damaged append after the end of the log that check\n"
    "  out, each marked on stderr (\"EXEC: seq SEQ at byte OFFSET:\n"
    "  exported a line of the unfinished append ...\"), as it is not part\n"
    "  of the log. The log is only read.\n"
    "  --out FILE     write to FILE (created with mode 0600, replacing it)\n"
    "                 instead of stdout\n"
    "  Exit 1 if anything was skipped, 0 if the log was clean.\n";

static const char help_repair[] =
    "evdump repair STORE EXEC\n"
    "  Point-in-time recovery of EXEC's log (formats/FORMAT.md §4): opens\n"
    "  it as its writer, reads it whole, and cuts it at the end of the\n"
    "  last complete append before the first damage, the cut bytes saved\n"
    "  beside the log as cut-OFFSET-R.jsonl (nothing is destroyed). This\n"
    "  is the way past a damaged last append, which a writer otherwise\n"
    "  refuses to cut; look first with verify and salvage, since the\n"
    "  events after the damage leave the log. Prints what was cut and\n"
    "  where the log now ends, or that there was nothing to repair.\n"
    "  Refused while a writer holds EXEC.\n";

static const char help_state[] =
    "evdump state STORE EXEC [--at SEQ] [--json]\n"
    "evdump state BUNDLE [--at SEQ] [--json]\n"
    "  Replays EXEC and shows its state: the execution (status, workflow,\n"
    "  last sequence, start and end, failure point, inputs, outputs,\n"
    "  error, who paused, unpaused or terminated it, when and why, and\n"
    "  whether replay began at the snapshot: \"from snapshot at seq N\"),\n"
    "  then tables of its paths, steps (status, attempts, output\n"
    "  or error), each progress, variables, signals, version decisions,\n"
    "  timers and waits. On a terminal JSON values are cut to its width;\n"
    "  otherwise they are printed in full. Replay starts from the snapshot\n"
    "  when it is valid, not past SEQ and holds the full state, else from\n"
    "  sequence 1 (the snapshots of the orchestrator, evrun among them, hold\n"
    "  compact states). Every line read is verified: damage stops it with\n"
    "  an error (exit 3).\n"
    "  A history that breaks a replay rule (FORMAT.md, \"History rules\") is\n"
    "  replayed tolerantly: the state is shown anyway, each violation is\n"
    "  reported on stderr as \"EXEC: seq SEQ: RULE: message\", and the exit\n"
    "  status is 1. Only the events replayed are checked: when replay\n"
    "  starts from the snapshot, those before it are not.\n"
    "  Given a bundle (evdump archive), replays its log from sequence 1.\n"
    "  --at SEQ       the state as of sequence SEQ (1 up to the last;\n"
    "                 default: the last)\n"
    "  --json         print the canonical state JSON (FORMAT.md 6.2), in\n"
    "                 full, exactly, on one line\n";

static const char help_chain[] =
    "evdump chain STORE EXEC\n"
    "  Shows the lineage of EXEC in both directions: back to the first\n"
    "  execution it continues or retries, then, as a tree, every\n"
    "  continuation (continue-as-new) and every retry (with its strategy)\n"
    "  made from it, with status, start time and number of events. Reads\n"
    "  the lineage of every execution in the store. An execution archived\n"
    "  and deleted (evdump archive --delete) is shown from the store's\n"
    "  record of it, \"archived in EXEC.evb\", and followed all the same.\n";

static const char help_archive[] =
    "evdump archive STORE [EXEC...] --to DIR [--delete] [--force]\n"
    "          [--level N] [--status S] [--ended-before T]\n"
    "  Writes each execution to DIR/EXEC.evb, one compressed,\n"
    "  self-verifying bundle holding its log byte for byte, its snapshot\n"
    "  and a manifest (formats/BUNDLES.md). Each bundle is fsynced, renamed\n"
    "  into place and read back before anything else happens. Executions\n"
    "  are named, or selected from the listing with --status and\n"
    "  --ended-before (then only those that have ended, by their\n"
    "  snapshot). An execution that has not ended (its log does not end\n"
    "  with a terminal event), or that a writer holds, is refused. Prints\n"
    "  one line per execution archived:\n"
    "    archived EXEC -> DIR/EXEC.evb: N events, L log bytes, B bundle\n"
    "    bytes (Rx)[, deleted]\n"
    "  and one line on stderr per execution refused; the others go on.\n"
    "  --to DIR          the directory to write the bundles to (required)\n"
    "  --delete          then delete each execution from the store, under\n"
    "                    its writer lock; the store keeps a record of it\n"
    "                    (STORE/.archived/EXEC.json) so that chain still\n"
    "                    names it\n"
    "  --force           archive executions that have not ended too\n"
    "  --level N         zstd level, 1 to 19 (default 3)\n"
    "  --status S        the executions whose status is S\n"
    "  --ended-before T  the executions that ended before T: an RFC 3339\n"
    "                    time, or an age such as 90d, 12h, 30m or 10s\n"
    "  Exit 3 if any execution was not archived.\n";

static const char help_restore[] =
    "evdump restore BUNDLE STORE\n"
    "  Checks BUNDLE whole and brings its execution back into STORE, its\n"
    "  log and snapshot byte for byte, created atomically as any\n"
    "  execution is, and removes the store's record of its archival.\n"
    "  Refused if the store has an execution of that id. Prints\n"
    "    restored EXEC from BUNDLE: N events, status S\n";

static const char help_config[] =
    "evdump config STORE [KEY [VALUE]] [--unset KEY] [--json]\n"
    "  Reads or sets the store's settings (STORE/.settings.json, FORMAT.md\n"
    "  14). Without KEY, prints every setting and its value, marking those\n"
    "  at their default; with KEY, prints its value; with KEY VALUE, checks\n"
    "  VALUE, saves it (atomically and durably) and prints it. Keys:\n"
    "    retention.completed, retention.failed, retention.terminated,\n"
    "    retention.continued   how long an ended execution of that status\n"
    "                          is kept after it ended: 7d, 12h, 30m, 45s,\n"
    "                          or forever (the default)\n"
    "    retention.archive     an absolute directory to archive into before\n"
    "                          deleting ('' , the default: none)\n"
    "    gc.interval           how often evrun serve runs gc: a duration or\n"
    "                          off (default 1h)\n"
    "    limits.warn_events, limits.warn_bytes, limits.max_events,\n"
    "    limits.max_bytes      history limits, 0 for none (defaults 10240,\n"
    "                          10485760, 51200, 52428800)\n"
    "  A damaged settings file, or one of a newer format, is refused\n"
    "  (exit 3); an unknown key or a bad value is a usage error (exit 2).\n"
    "  --unset KEY    return KEY to its default\n"
    "  --json         one JSON object: {KEY: {value, default}} for all,\n"
    "                 {key, value, default} for one\n";

static const char help_gc[] =
    "evdump gc STORE [--dry-run] [--now TIME] [--json]\n"
    "  Applies the store's retention policy (see config): deletes each\n"
    "  ended execution (completed, failed, terminated, continued) whose end\n"
    "  is older than its status's retention. Executions that have not\n"
    "  ended, or whose snapshot cannot be read, are never touched; one a\n"
    "  writer holds, or whose log has moved past its snapshot, is skipped.\n"
    "  An expired execution that a kept one continues or retries is kept,\n"
    "  so that the kept one's chain still resolves. With\n"
    "  retention.archive set, each is archived into that directory (as\n"
    "  evdump archive --delete does) before it is deleted, and one that\n"
    "  cannot be archived is not. Prints one line per expired execution,\n"
    "  newest first (deleted, would delete, kept (lineage), skipped,\n"
    "  failed), then \"N executions, M expired: ...\".\n"
    "  --dry-run      print what would be deleted; delete nothing\n"
    "  --now TIME     measure ages at TIME (RFC 3339) instead of now\n"
    "  --json         one JSON object per expired execution (id, action:\n"
    "                 delete, kept_lineage, skipped or failed, status,\n"
    "                 workflow_name, ended_at, error), then a summary\n"
    "                 object with \"summary\":true and the counts\n";

static const char help_stats[] =
    "evdump stats STORE [--top N] [--json]\n"
    "  Shows the store's statistics: executions by status and by workflow,\n"
    "  events and bytes of the logs in total and per execution (p50, p99,\n"
    "  max), the largest histories, archived executions (entries of\n"
    "  STORE/.archived), torn tails cut back (cut-*.jsonl files), and\n"
    "  snapshots behind their log. Only reads.\n"
    "  --top N        how many of the largest histories (default 10)\n"
    "  --json         one JSON object\n";

static const tool_command commands[] = {
    {"ls", cmd_ls, "list executions", help_ls},
    {"show", cmd_show, "show the events of an execution", help_show},
    {"tail", cmd_tail, "show the last events, and follow new ones", help_tail},
    {"verify", cmd_verify, "check logs and snapshots for damage", help_verify},
    {"snapshot", cmd_snapshot, "show an execution's snapshot", help_snapshot},
    {"state", cmd_state, "replay an execution and show its state", help_state},
    {"chain", cmd_chain, "show the lineage: continuations and retries",
     help_chain},
    {"import", cmd_import, "append JSONL events (evstore's or Dive's)",
     help_import},
    {"copy", cmd_copy, "copy executions to another store, of any backend",
     help_copy},
    {"repair", cmd_repair, "cut a damaged log back to its last good append",
     help_repair},
    {"salvage", cmd_salvage, "export every event that can still be read",
     help_salvage},
    {"archive", cmd_archive, "write executions to bundles, and delete them",
     help_archive},
    {"restore", cmd_restore, "bring an execution back from its bundle",
     help_restore},
    {"config", cmd_config, "read or set the store's settings", help_config},
    {"gc", cmd_gc, "delete ended executions past their retention", help_gc},
    {"stats", cmd_stats, "show the store's statistics", help_stats},
    {"help", tool_cmd_help, "show this help, or a command's", NULL},
};

static const char help_exit[] =
    "Exit status:\n"
    "  0  success (also when the reader of the output goes away)\n"
    "  1  verify or salvage found damage; show or tail found a damaged\n"
    "     append after the end of the log; state replayed a history that\n"
    "     breaks a replay rule\n"
    "  2  usage error: unknown command or option, missing or bad argument\n"
    "  3  any other error: store or execution not found, I/O error, damage\n"
    "     met by show, tail or state, a bad line in an import\n"
    "Errors are one line on stderr beginning with \"evdump: \".\n";

static const char help_head[] =
    "Usage: evdump COMMAND ARGS... [OPTIONS]\n"
    "\n"
    "Inspects, verifies, imports and salvages the executions of an evstore\n"
    "store. STORE is the store's directory, sqlite:PATH for a store in one\n"
    "SQLite database, or a postgresql:// URI for a store in PostgreSQL\n"
    "(eventstore/BACKENDS.md); evdump never creates it.\n"
    "\n"
    "Commands:\n";

static const char help_common[] =
    "Options may come before or after the arguments; \"--\" ends them.\n"
    "Every command takes -h, --help (its own help); evdump --version\n"
    "prints the version of the library.\n"
    "Every command takes --allow-unsafe-perms: open a store directory that\n"
    "group or others may write to, which is refused otherwise (exit 3).\n"
    "Colour is used only when stdout is a terminal and NO_COLOR is unset\n"
    "or empty. Data previews are cut to the terminal's width only when\n"
    "stdout is a terminal.\n" TOOL_LOG_HELP;

/* ------------------------------------------------------------------ */
/* Terminal-safe text                                                 */
/* ------------------------------------------------------------------ */

/* Length of the UTF-8 sequence starting with byte c, or 1 for a byte
 * that cannot start one (shown as is: the terminal shows a replacement). */
static size_t u8len(unsigned char c)
{
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    if (c >= 0xe0)
        return c <= 0xef ? 3 : 1;
    if (c >= 0xc2)
        return 2;
    return 1;
}

/* Walks `s` one displayed unit at a time: a control character becomes a
 * six-column \uXXXX escape, anything else one column per code point. */
static size_t text_walk(evs_span s, size_t max_cols, int emit)
{
    static const char ell[] = "\xe2\x80\xa6"; /* U+2026 */
    size_t cols = 0, i = 0;

    if (max_cols && text_cols(s) <= max_cols)
        max_cols = 0;
    while (i < s.len) {
        unsigned char c = (unsigned char)s.ptr[i];
        size_t n = u8len(c), w;
        unsigned cp = 0;
        int ctl = 0;

        if (i + n > s.len)
            n = 1;
        if (c < 0x20 || c == 0x7f) {
            ctl = 1;
            cp = c;
        } else if (c == 0xc2 && n == 2 && (unsigned char)s.ptr[i + 1] < 0xa0) {
            ctl = 1;
            cp = (unsigned char)s.ptr[i + 1] & 0x3f;
            cp |= 0x80;
        }
        w = ctl ? 6 : 1;
        if (max_cols && cols + w > max_cols - 1) {
            if (emit)
                out_write(ell, sizeof(ell) - 1);
            return cols + 1;
        }
        if (emit) {
            if (ctl)
                out_printf("\\u%04x", cp);
            else
                out_write(s.ptr + i, n);
        }
        cols += w;
        i += n;
    }
    return cols;
}

size_t text_cols(evs_span s)
{
    return text_walk(s, 0, 0);
}

size_t out_text(evs_span s, size_t max_cols)
{
    return text_walk(s, max_cols, 1);
}

static void indent_to(int n)
{
    out_write("\n", 1);
    for (int i = 0; i < n; i++)
        out_write(" ", 1);
}

/* The input is compact JSON from the library, so strings are the only
 * thing to step over; whitespace outside them is dropped. */
void out_json_pretty(evs_span js, int indent)
{
    int depth = 0;
    size_t i = 0;

    while (i < js.len) {
        char c = js.ptr[i];

        if (c == '"') {
            size_t j = i + 1;
            while (j < js.len && js.ptr[j] != '"')
                j += js.ptr[j] == '\\' ? 2 : 1;
            if (j >= js.len)
                j = js.len - 1; /* unterminated: never read past it */
            out_text((evs_span){js.ptr + i, j + 1 - i}, 0);
            i = j + 1;
            continue;
        }
        if (c == '{' || c == '[') {
            char close = c == '{' ? '}' : ']';
            out_write(&c, 1);
            if (i + 1 < js.len && js.ptr[i + 1] == close) {
                out_write(&close, 1);
                i += 2;
                continue;
            }
            depth++;
            indent_to(indent + 2 * depth);
        } else if (c == '}' || c == ']') {
            depth--;
            indent_to(indent + 2 * (depth > 0 ? depth : 0));
            out_write(&c, 1);
        } else if (c == ',') {
            out_write(",", 1);
            indent_to(indent + 2 * depth);
        } else if (c == ':') {
            out_write(": ", 2);
        } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            out_write(&c, 1);
        }
        i++;
    }
}

void fmt_time(int64_t us, int secs, char buf[40])
{
    if (us == 0 || evs_time_format(us, buf) != 0) {
        snprintf(buf, 40, us == 0 ? "-" : "%" PRId64 "us", us);
        return;
    }
    if (secs)
        memcpy(buf + 19, "Z", 2);
}

const char *c_dim(void)
{
    return g_term.color ? "\033[2m" : "";
}

const char *c_red(void)
{
    return g_term.color ? "\033[31m" : "";
}

const char *c_green(void)
{
    return g_term.color ? "\033[32m" : "";
}

const char *c_cyan(void)
{
    return g_term.color ? "\033[36m" : "";
}

const char *c_bold(void)
{
    return g_term.color ? "\033[1m" : "";
}

const char *c_off(void)
{
    return g_term.color ? "\033[0m" : "";
}

/* ------------------------------------------------------------------ */
/* main                                                               */
/* ------------------------------------------------------------------ */

static void setup_terminal(void)
{
    const char *nc = getenv("NO_COLOR");
    struct winsize ws;

    memset(&g_term, 0, sizeof(g_term));
    if (!isatty(STDOUT_FILENO))
        return;
    g_term.color = !(nc && *nc);
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        g_term.width = ws.ws_col;
    else
        g_term.width = 80;
}

int main(int argc, char **argv)
{
    static const tool_def evdump = {"evdump",
                                    help_head,
                                    help_common,
                                    NULL,
                                    help_exit,
                                    commands,
                                    sizeof(commands) / sizeof(commands[0])};
    static char outbuf[1 << 16];

    /* A closed pipe shows up as EPIPE on a write, which ends the output
     * quietly (out_finish). */
    signal(SIGPIPE, SIG_IGN);
    setup_terminal();
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    return tool_main(&evdump, argc, argv);
}
