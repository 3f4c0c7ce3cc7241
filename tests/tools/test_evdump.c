/*
 * test_evdump.c: drives the real evdump binary (path in $EVDUMP) against
 * stores built with the library: listing, showing, verifying damage,
 * snapshots, imports of our lines and Dive's, tail and follow, salvage,
 * and the command-line contract (exit codes, usage errors, help).
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *dir; /* the store */
static char *io;  /* scratch for the child's stdin, stdout, stderr */
static evs_store *st;

static void setup(void)
{
    cr_assert_not_null(getenv("EVDUMP"), "EVDUMP must name the binary");
    dir = tu_tmpdir("evdump");
    io = tu_tmpdir("evdump-io");
    cr_assert_not_null(dir);
    cr_assert_not_null(io);
    st = tu_open_store(dir, NULL);
    cr_assert_not_null(st);
}

static void teardown(void)
{
    evs_store_close(st);
    tu_rmtree_free(dir);
    tu_rmtree_free(io);
}

TestSuite(evdump, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------------ */
/* Running the binary                                                 */
/* ------------------------------------------------------------------ */

typedef struct result {
    int status; /* exit status, or 128 + signal */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
} result;

static char *io_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];

    snprintf(p, 512, "%s/%s", io, name);
    return p;
}

/* Starts evdump with argv (NULL-terminated, without the program name),
 * stdin from `in` (NULL: /dev/null), stdout and stderr into files. */
static pid_t start(const char *in, const char *out, const char *err,
                   const char *const *args)
{
    tu_spawn_io sio = {.in = in, .out = out, .err = err};

    return tu_spawn("EVDUMP", &sio, args);
}

static result run_args(const char *in, const char *const *args)
{
    result r;
    char out[512], err[512];

    snprintf(out, sizeof(out), "%s/out", io);
    snprintf(err, sizeof(err), "%s/err", io);
    r.status = tu_wait_exit(start(in, out, err, args));
    r.out = tu_read_file(out, &r.out_len);
    r.err = tu_read_file(err, &r.err_len);
    cr_assert_not_null(r.out);
    cr_assert_not_null(r.err);
    return r;
}

#define EVDUMP_IN(in, ...)                                                     \
    run_args(in, (const char *const[]){__VA_ARGS__, NULL})
#define EVDUMP(...) EVDUMP_IN(NULL, __VA_ARGS__)

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The n-th line (0-based) of s, as a heap string without its newline. */
static char *nth_line(const char *s, size_t n)
{
    const char *e;

    while (n-- > 0) {
        s = strchr(s, '\n');
        if (!s)
            return NULL;
        s++;
    }
    e = strchr(s, '\n');
    if (!e)
        e = s + strlen(s);
    return strndup(s, (size_t)(e - s));
}

/* Asserts that stderr is exactly one line beginning with "evdump: ". */
static void assert_one_error_line(const result *r)
{
    cr_assert_eq(strncmp(r->err, "evdump: ", 8), 0, "stderr: %s", r->err);
    cr_assert_eq(count_lines(r->err), 1, "stderr: %s", r->err);
}

/* ------------------------------------------------------------------ */
/* Building stores                                                    */
/* ------------------------------------------------------------------ */

/* Creates `id` with an execution_started event of `workflow`, the given
 * status and creation time (seconds after a fixed instant). */
static void make_exec(const char *id, const char *workflow, const char *status,
                      int created_s)
{
    char data[128];
    evs_snapshot sn;
    evs_event e;

    snprintf(data, sizeof(data), "{\"workflow_name\":\"%s\",\"inputs\":{}}",
             workflow);
    e = tu_event(EVS_EV_EXECUTION_STARTED, NULL, data);
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr(status);
    sn.workflow_name = evs_span_cstr(workflow);
    sn.created_at_us = 1764000000000000LL + created_s * 1000000LL;
    sn.updated_at_us = sn.created_at_us + 500000;
    cr_assert_eq(evs_exec_create(st, id, strlen(id), &sn, &e, 1), 0);
}

static evs_log *writer(const char *id)
{
    evs_log *l;

    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    return l;
}

/* Creates `id` with 1 + n events, each appended alone. */
static void make_run(const char *id, size_t n)
{
    evs_log *l;

    cr_assert_eq(tu_create(st, id), 0);
    l = writer(id);
    cr_assert_eq(tu_append_n(l, n), 0);
    evs_log_close(l);
}

/* Appends events of a few types and paths, some in one append. */
static void append_mixed(evs_log *l)
{
    evs_event b[3];
    evs_event e;

    e = tu_event(EVS_EV_PATH_STARTED, NULL, "{\"current_step\":\"a\"}");
    cr_assert_eq(evs_log_append(l, &e, 1, evs_log_last_seq(l), NULL), 0);
    b[0] = tu_event(EVS_EV_STEP_STARTED, "a", "{\"attempt\":1}");
    b[1] = tu_event(EVS_EV_STEP_COMPLETED, "a",
                    "{\"output\":\"x\\ny\",\"stored_variable\":\"v\"}");
    b[2] = tu_event(EVS_EV_PATH_BRANCHED, "a",
                    "{\"new_paths\":[{\"id\":\"side\","
                    "\"current_step\":\"b\"}]}");
    cr_assert_eq(evs_log_append(l, b, 3, evs_log_last_seq(l), NULL), 0);
    b[0] = tu_event(EVS_EV_STEP_STARTED, "b", "{\"attempt\":1}");
    b[0].path_id = evs_span_cstr("side");
    b[1] = tu_event(EVS_EV_STEP_FAILED, "b", "{\"error\":\"boom\"}");
    b[1].path_id = evs_span_cstr("side");
    cr_assert_eq(evs_log_append(l, b, 2, evs_log_last_seq(l), NULL), 0);
    e = tu_event(EVS_EV_EXECUTION_COMPLETED, NULL, "{}");
    cr_assert_eq(evs_log_append(l, &e, 1, evs_log_last_seq(l), NULL), 0);
}

static char *log_path(const char *id)
{
    return tu_path(dir, id, "events.jsonl");
}

/* Byte offset of line n (1-based) of a file's contents. */
static long long line_offset(const char *buf, size_t n)
{
    const char *p = buf;

    while (--n > 0) {
        p = strchr(p, '\n');
        cr_assert_not_null(p);
        p++;
    }
    return (long long)(p - buf);
}

static char *read_log(const char *id, size_t *len)
{
    char *p = log_path(id);
    char *buf = tu_read_file(p, len);

    free(p);
    cr_assert_not_null(buf);
    return buf;
}

/* Writes text into a scratch file and returns its path. */
static const char *scratch_file(const char *name, const char *text)
{
    const char *p = io_path(name);

    cr_assert_eq(tu_write_file(p, text, strlen(text)), 0);
    return p;
}

/* Every event of `id` via a cursor, as "seq|id|ts|type|path|step|data"
 * lines: what a round trip must keep. */
static char *events_digest(evs_store *s, const char *id)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc;

    cr_assert_eq(evs_log_open(s, id, strlen(id), 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    while ((rc = evs_cursor_next(c, &ev, NULL, NULL)) == 1)
        fprintf(f, "%llu|%.*s|%lld|%.*s|%.*s|%.*s|%.*s\n",
                (unsigned long long)ev.sequence, (int)ev.id.len, ev.id.ptr,
                (long long)ev.timestamp_us, (int)ev.event_type.len,
                ev.event_type.ptr, (int)ev.path_id.len, ev.path_id.ptr,
                (int)ev.step_name.len, ev.step_name.ptr, (int)ev.data.len,
                ev.data.ptr);
    cr_assert_eq(rc, 0);
    evs_cursor_close(c);
    evs_log_close(l);
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------------ */
/* ls                                                                 */
/* ------------------------------------------------------------------ */

static void make_four(void)
{
    /* Created out of name order, so order by creation time shows. */
    make_exec("zeta", "research", "running", 1);
    make_exec("alpha", "research", "completed", 2);
    make_exec("mid", "billing", "failed", 3);
    make_exec("beta", "billing", "running", 4);
}

/* The first word of each output line after the header. */
static void assert_ids(const char *out, int header, const char *const *ids,
                       size_t n)
{
    cr_assert_eq(count_lines(out), n + (size_t)header, "output:\n%s", out);
    for (size_t i = 0; i < n; i++) {
        char *line = nth_line(out, i + (size_t)header);
        size_t w = strcspn(line, " ");
        cr_assert(w == strlen(ids[i]) && strncmp(line, ids[i], w) == 0,
                  "row %zu is '%s', expected %s", i, line, ids[i]);
        free(line);
    }
}

Test(evdump, ls_lists_executions_by_creation_time_with_every_column)
{
    static const char *const want[] = {"zeta", "alpha", "mid", "beta"};
    result r;
    char *row;

    make_four();
    r = EVDUMP("ls", dir);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_eq(r.err_len, 0);
    row = nth_line(r.out, 0);
    cr_assert(strstr(row, "ID") && strstr(row, "STATUS") &&
                  strstr(row, "WORKFLOW") && strstr(row, "CREATED") &&
                  strstr(row, "UPDATED") && strstr(row, "LAST SEQ"),
              "header: %s", row);
    free(row);
    assert_ids(r.out, 1, want, 4);
    row = nth_line(r.out, 3); /* mid */
    cr_assert(strstr(row, " failed ") && strstr(row, " billing "), "row: %s",
              row);
    /* 1764000003 s is 2025-11-24T16:00:03Z; updated half a second on. */
    cr_assert(strstr(row, "2025-11-24T16:00:03Z"), "row: %s", row);
    cr_assert_eq(row[strlen(row) - 1], '1', "last seq: %s", row);
    free(row);
    result_free(&r);
}

Test(evdump, ls_filters_by_status_and_by_workflow)
{
    static const char *const running[] = {"zeta", "beta"};
    static const char *const billing[] = {"mid", "beta"};
    static const char *const both[] = {"beta"};
    result r;

    make_four();
    r = EVDUMP("ls", dir, "--status", "running");
    cr_assert_eq(r.status, 0);
    assert_ids(r.out, 1, running, 2);
    result_free(&r);
    r = EVDUMP("ls", "--workflow", "billing", dir);
    cr_assert_eq(r.status, 0);
    assert_ids(r.out, 1, billing, 2);
    result_free(&r);
    r = EVDUMP("ls", dir, "--workflow", "billing", "--status", "running",
               "--json");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 1);
    cr_assert(strstr(r.out, "\"id\":\"beta\""), "%s", r.out);
    result_free(&r);
    r = EVDUMP("ls", dir, "--status", "paused");
    cr_assert_eq(r.status, 0);
    assert_ids(r.out, 1, both, 0);
    result_free(&r);
}

Test(evdump, ls_limit_and_offset_page_through_the_listing)
{
    static const char *const page1[] = {"zeta", "alpha"};
    static const char *const last[] = {"beta"};
    result r;

    make_four();
    r = EVDUMP("ls", dir, "--limit", "2", "--json");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 2, "%s", r.out);
    cr_assert(strstr(r.out, "\"id\":\"zeta\"") &&
                  strstr(r.out, "\"id\":\"alpha\"") &&
                  !strstr(r.out, "\"id\":\"mid\""),
              "%s", r.out);
    result_free(&r);
    r = EVDUMP("ls", dir, "--limit", "2");
    cr_assert_eq(r.status, 0);
    /* header, two rows, and a note of how many were shown */
    cr_assert_eq(count_lines(r.out), 4, "%s", r.out);
    cr_assert(strstr(r.out, "2 of 4 executions shown"), "%s", r.out);
    {
        char *a = nth_line(r.out, 1), *b = nth_line(r.out, 2);
        cr_assert_eq(strncmp(a, page1[0], 4), 0, "%s", a);
        cr_assert_eq(strncmp(b, page1[1], 5), 0, "%s", b);
        free(a);
        free(b);
    }
    result_free(&r);
    r = EVDUMP("ls", dir, "--offset", "2", "--limit", "2", "--json");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 2);
    cr_assert(strstr(r.out, "\"id\":\"mid\"") <
                      strstr(r.out, "\"id\":\"beta\"") &&
                  strstr(r.out, "\"id\":\"mid\""),
              "%s", r.out);
    cr_assert_null(strstr(r.out, "zeta"));
    result_free(&r);
    r = EVDUMP("ls", dir, "--offset", "3");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 3, "%s", r.out); /* header, row, note */
    {
        char *a = nth_line(r.out, 1);
        cr_assert_eq(strncmp(a, last[0], 4), 0, "%s", a);
        free(a);
    }
    result_free(&r);
    r = EVDUMP("ls", dir, "--offset", "9", "--json");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.out_len, 0, "%s", r.out);
    result_free(&r);
}

Test(evdump, ls_json_prints_one_parseable_object_per_execution)
{
    static const char *const ids[] = {"zeta", "alpha", "mid", "beta"};
    static const char *const status[] = {"running", "completed", "failed",
                                         "running"};
    result r;

    make_four();
    r = EVDUMP("ls", "--json", dir);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 4);
    for (size_t i = 0; i < 4; i++) {
        char *line = nth_line(r.out, i);
        struct json_object *o = json_tokener_parse(line), *v;

        cr_assert_not_null(o, "not JSON: %s", line);
        cr_assert(json_object_object_get_ex(o, "id", &v));
        cr_assert_str_eq(json_object_get_string(v), ids[i]);
        cr_assert(json_object_object_get_ex(o, "status", &v));
        cr_assert_str_eq(json_object_get_string(v), status[i]);
        cr_assert(json_object_object_get_ex(o, "workflow_name", &v));
        cr_assert_str_eq(json_object_get_string(v),
                         i < 2 ? "research" : "billing");
        cr_assert(json_object_object_get_ex(o, "last_event_seq", &v));
        cr_assert_eq(json_object_get_int64(v), 1);
        cr_assert(json_object_object_get_ex(o, "created_at", &v));
        cr_assert(json_object_is_type(v, json_type_string));
        {
            int64_t us;
            const char *t = json_object_get_string(v);
            cr_assert_eq(evs_time_parse(t, strlen(t), &us), 0);
            cr_assert_eq(us, 1764000000000000LL + (int64_t)(i + 1) * 1000000LL);
        }
        cr_assert(json_object_object_get_ex(o, "end_time", &v));
        cr_assert(json_object_is_type(v, json_type_null));
        cr_assert(json_object_object_get_ex(o, "snapshot_ok", &v));
        cr_assert(json_object_get_boolean(v));
        json_object_put(o);
        free(line);
    }
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* show                                                               */
/* ------------------------------------------------------------------ */

Test(evdump, show_json_lines_are_byte_identical_to_the_log)
{
    evs_log *l;
    result r;
    char *file;
    size_t len;

    cr_assert_eq(tu_create(st, "run-1"), 0);
    l = writer("run-1");
    append_mixed(l);
    evs_log_close(l);
    file = read_log("run-1", &len);
    r = EVDUMP("show", dir, "run-1", "--json");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_eq(r.out_len, len);
    cr_assert_eq(memcmp(r.out, file, len), 0);
    result_free(&r);

    /* A range is the matching slice of the file. */
    r = EVDUMP("show", dir, "run-1", "--json", "--from", "3", "--to", "6");
    cr_assert_eq(r.status, 0);
    {
        long long a = line_offset(file, 3), b = line_offset(file, 7);
        cr_assert_eq(r.out_len, (size_t)(b - a));
        cr_assert_eq(memcmp(r.out, file + a, r.out_len), 0);
    }
    result_free(&r);
    free(file);
}

Test(evdump, show_filters_by_type_and_path)
{
    evs_log *l;
    result r;

    cr_assert_eq(tu_create(st, "run-1"), 0);
    l = writer("run-1");
    append_mixed(l);
    evs_log_close(l);

    r = EVDUMP("show", dir, "run-1", "--json", "--type", "step_started");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 2);
    cr_assert(strstr(r.out, "\"sequence\":3,"));
    cr_assert(strstr(r.out, "\"sequence\":6,"));
    result_free(&r);

    r = EVDUMP("show", dir, "run-1", "--json", "--path", "side");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 2);
    cr_assert(strstr(r.out, "\"sequence\":6,") &&
              strstr(r.out, "\"sequence\":7,"));
    result_free(&r);

    r = EVDUMP("show", dir, "run-1", "--json", "--path", "main", "--type",
               "step_started", "--type", "path_branched", "--from", "4");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 1, "%s", r.out);
    cr_assert(strstr(r.out, "\"sequence\":5,"));
    result_free(&r);
}

Test(evdump, show_prints_aligned_rows_with_full_data_when_not_a_terminal)
{
    evs_log *l;
    result r;
    char *row;
    char ts[EVS_TIME_LEN + 1];
    size_t col_type = 0;

    cr_assert_eq(tu_create(st, "run-1"), 0);
    l = writer("run-1");
    append_mixed(l);
    evs_log_close(l);
    r = EVDUMP("show", dir, "run-1");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 8, "%s", r.out);
    cr_assert_null(strchr(r.out, '\033'), "no colour into a file");
    for (size_t i = 0; i < 8; i++) {
        char seq[8];
        row = nth_line(r.out, i);
        snprintf(seq, sizeof(seq), "%zu", i + 1);
        cr_assert_eq(strncmp(row + strspn(row, " "), seq, strlen(seq)), 0,
                     "row: %s", row);
        /* the type column starts at the same place on every row */
        {
            const char *t = strstr(row, "Z  ");
            cr_assert_not_null(t, "row: %s", row);
            if (i == 0)
                col_type = (size_t)(t - row);
            cr_assert_eq((size_t)(t - row), col_type, "row: %s", row);
        }
        free(row);
    }
    row = nth_line(r.out, 3); /* the step_completed of the batch */
    cr_assert(strstr(row, "step_completed") && strstr(row, " main ") &&
                  strstr(row, " a "),
              "row: %s", row);
    cr_assert(strstr(row, "{\"output\":\"x\\ny\",\"stored_variable\":\"v\"}"),
              "row: %s", row);
    free(row);
    /* The time column is the event's own time. */
    {
        evs_log *rl;
        evs_cursor *c;
        evs_event ev;
        cr_assert_eq(evs_log_open(st, "run-1", 5, 0, &rl, NULL, NULL), 0);
        cr_assert_eq(evs_cursor_open(rl, 7, 7, &c, NULL), 0);
        cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 1);
        cr_assert_eq(evs_time_format(ev.timestamp_us, ts), 0);
        evs_cursor_close(c);
        evs_log_close(rl);
    }
    row = nth_line(r.out, 6);
    cr_assert(strstr(row, ts) && strstr(row, "step_failed") &&
                  strstr(row, " side ") && strstr(row, "{\"error\":\"boom\"}"),
              "row: %s", row);
    free(row);
    result_free(&r);
}

Test(evdump, show_stops_at_damage_with_exit_3_naming_sequence_and_offset)
{
    char *file, *p, want[160];
    size_t len;
    long long off;
    result r;

    make_run("bad", 8);
    file = read_log("bad", &len);
    off = line_offset(file, 5);
    p = log_path("bad");
    cr_assert_eq(
        tu_flip_bit(
            p, off + (strstr(file + off, "\"output\"") - (file + off)) + 12, 1),
        0);
    r = EVDUMP("show", dir, "bad", "--json");
    cr_assert_eq(r.status, 3, "stderr: %s", r.err);
    cr_assert_eq(r.out_len, (size_t)off, "the four good lines come first");
    cr_assert_eq(memcmp(r.out, file, (size_t)off), 0);
    assert_one_error_line(&r);
    snprintf(want, sizeof(want), "sequence 5, byte offset %lld", off);
    cr_assert(strstr(r.err, want) && strstr(r.err, "bad") &&
                  strstr(r.err, "checksum"),
              "stderr: %s", r.err);
    result_free(&r);
    free(p);
    free(file);
}

Test(evdump, show_of_missing_store_or_execution_exits_3_without_creating)
{
    char missing[600];
    result r;

    snprintf(missing, sizeof(missing), "%s/nostore", dir);
    r = EVDUMP("show", missing, "run-1");
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "nostore"), "%s", r.err);
    cr_assert_eq(access(missing, F_OK), -1, "the store was created");
    result_free(&r);

    r = EVDUMP("ls", missing);
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert_eq(access(missing, F_OK), -1, "the store was created");
    result_free(&r);

    r = EVDUMP("show", dir, "nope");
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "nope"), "%s", r.err);
    result_free(&r);

    /* The commands that tell a missing execution from a refused log
     * (fail_unreadable) say it is missing. */
    r = EVDUMP("chain", dir, "nope");
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "no execution 'nope'"), "%s", r.err);
    result_free(&r);
    r = EVDUMP("verify", dir, "nope");
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err, "no execution 'nope'"), "%s", r.err);
    result_free(&r);
}

Test(evdump, show_ends_quietly_when_the_reader_goes_away)
{
    int fd;
    pid_t pid;
    char buf[100];

    make_run("big", 3000);
    pid = tu_spawn("EVDUMP",
                   &(tu_spawn_io){.out_pipe = &fd, .err = io_path("err")},
                   (const char *const[]){"show", dir, "big", "--json", NULL});
    /* Like `| head -c 100`: read a little, then go away. */
    cr_assert_eq(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    close(fd);
    cr_assert_eq(tu_wait_exit(pid), 0);
    cr_assert_eq(tu_file_size(io_path("err")), 0);
}

/* ------------------------------------------------------------------ */
/* verify                                                             */
/* ------------------------------------------------------------------ */

Test(evdump, verify_of_a_clean_store_exits_0_with_a_summary)
{
    evs_log *l;
    result r;

    make_run("a", 5);
    cr_assert_eq(tu_create(st, "b"), 0);
    l = writer("b");
    append_mixed(l);
    evs_log_close(l);
    r = EVDUMP("verify", dir);
    cr_assert_eq(r.status, 0, "out: %s err: %s", r.out, r.err);
    cr_assert_str_eq(r.out, "2 executions, 14 events, 0 problems\n");
    result_free(&r);
    r = EVDUMP("verify", dir, "b");
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.out, "1 executions, 8 events, 0 problems\n");
    result_free(&r);
}

Test(evdump, verify_reports_a_flipped_byte_with_execution_sequence_offset)
{
    char *file, *p, want[200];
    size_t len;
    long long off;
    result r;

    make_run("ok", 3);
    make_run("run-7", 9);
    file = read_log("run-7", &len);
    off = line_offset(file, 6);
    p = log_path("run-7");
    cr_assert_eq(
        tu_flip_bit(
            p, off + (strstr(file + off, "\"output\"") - (file + off)) + 12, 1),
        0);
    r = EVDUMP("verify", dir);
    cr_assert_eq(r.status, 1, "out: %s err: %s", r.out, r.err);
    snprintf(want, sizeof(want), "run-7: seq 6 at byte %lld: checksum: ", off);
    cr_assert(strstr(r.out, want), "want '%s' in:\n%s", want, r.out);
    cr_assert_eq(count_lines(r.out), 2, "%s", r.out);
    /* 4 + 10 events, one of them damaged */
    cr_assert(strstr(r.out, "2 executions, 13 events, 1 problems\n"), "%s",
              r.out);
    result_free(&r);
    /* Asking for the clean one alone finds nothing. */
    r = EVDUMP("verify", dir, "ok");
    cr_assert_eq(r.status, 0);
    result_free(&r);
    free(p);
    free(file);
}

/* Appends three events in one append and cuts the last line short. */
static long long make_torn(const char *id, size_t before)
{
    evs_log *l;
    evs_event b[3];
    char *p;
    long long good;

    make_run(id, before);
    p = log_path(id);
    good = tu_file_size(p);
    l = writer(id);
    for (int i = 0; i < 3; i++)
        b[i] = tu_event(EVS_EV_STEP_COMPLETED, "t", "{\"output\":\"torn\"}");
    cr_assert_eq(evs_log_append(l, b, 3, evs_log_last_seq(l), NULL), 0);
    evs_log_close(l);
    cr_assert_eq(tu_truncate(p, tu_file_size(p) - 20), 0);
    free(p);
    return good;
}

Test(evdump, verify_reports_a_torn_tail_as_kind_torn)
{
    char want[160];
    long long good;
    result r;

    good = make_torn("t1", 4);
    r = EVDUMP("verify", dir, "t1");
    cr_assert_eq(r.status, 1, "out: %s", r.out);
    snprintf(want, sizeof(want), "t1: seq 6 at byte %lld: torn: ", good);
    cr_assert(strstr(r.out, want), "want '%s' in:\n%s", want, r.out);
    cr_assert(strstr(r.out, "1 executions, 5 events, 1 problems\n"), "%s",
              r.out);
    result_free(&r);
    /* verify only reads: the tail is still there. */
    r = EVDUMP("verify", dir, "t1");
    cr_assert_eq(r.status, 1);
    result_free(&r);
}

Test(evdump, verify_reports_damaged_and_missing_snapshots)
{
    char *p;
    result r;

    make_run("s1", 2);
    make_run("s2", 2);
    p = tu_path(dir, "s1", "snapshot.json");
    cr_assert_eq(tu_flip_bit(p, 20, 2), 0);
    free(p);
    p = tu_path(dir, "s2", "snapshot.json");
    cr_assert_eq(unlink(p), 0);
    free(p);
    r = EVDUMP("verify", dir, "s1", "s2");
    cr_assert_eq(r.status, 1, "out: %s err: %s", r.out, r.err);
    cr_assert(strstr(r.out, "s1: snapshot: "), "%s", r.out);
    cr_assert(strstr(r.out, "s2: snapshot: missing: "), "%s", r.out);
    cr_assert(strstr(r.out, "2 executions, 6 events, 2 problems\n"), "%s",
              r.out);
    result_free(&r);
}

Test(evdump, verify_reports_a_stale_snapshot)
{
    evs_snapshot sn;
    evs_event b[3];
    evs_log *l;
    char *p;
    result r;

    /* A snapshot at sequence 8, then the append of 6..8 is torn: the
     * snapshot is ahead of the log. */
    make_run("st", 4);
    l = writer("st");
    for (int i = 0; i < 3; i++)
        b[i] = tu_event(EVS_EV_STEP_COMPLETED, "t", "{}");
    cr_assert_eq(evs_log_append(l, b, 3, 5, NULL), 0);
    evs_log_close(l);
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("running");
    sn.last_event_seq = 8;
    cr_assert_eq(evs_snapshot_save(st, "st", 2, &sn), 0);
    p = log_path("st");
    cr_assert_eq(tu_truncate(p, tu_file_size(p) - 5), 0);
    free(p);
    r = EVDUMP("verify", dir, "st");
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.out, "st: seq 6 at byte "), "%s", r.out);
    cr_assert(strstr(r.out, ": torn: "), "%s", r.out);
    cr_assert(strstr(r.out, "st: snapshot: stale: "), "%s", r.out);
    cr_assert(strstr(r.out, "1 executions, 5 events, 2 problems\n"), "%s",
              r.out);
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* snapshot                                                           */
/* ------------------------------------------------------------------ */

Test(evdump, snapshot_json_has_every_field_with_json_embedded)
{
    evs_snapshot sn;
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL,
                           "{\"workflow_name\":\"wf\",\"inputs\":{}}");
    struct json_object *o, *v, *w;
    result r;
    static const char *const keys[] = {
        "id",         "workflow_name",  "workflow_hash", "inputs_hash",
        "status",     "start_time",     "end_time",      "created_at",
        "updated_at", "last_event_seq", "workflow_data", "inputs",
        "outputs",    "error",          "lineage",       "state"};

    memset(&sn, 0, sizeof(sn));
    sn.workflow_name = evs_span_cstr("wf");
    sn.workflow_hash = evs_span_cstr("h1");
    sn.status = evs_span_cstr("paused");
    sn.start_time_us = 1764000000123456LL;
    sn.inputs = evs_span_cstr("{\"q\":[1,2,{\"deep\":\"x\"}]}");
    sn.state = evs_span_cstr("{\"paths\":{}}");
    cr_assert_eq(evs_exec_create(st, "snap", 4, &sn, &e, 1), 0);

    r = EVDUMP("snapshot", dir, "snap", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 1);
    o = json_tokener_parse(r.out);
    cr_assert_not_null(o, "%s", r.out);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_assert(json_object_object_get_ex(o, keys[i], &v), "no %s", keys[i]);
    json_object_object_get_ex(o, "id", &v);
    cr_assert_str_eq(json_object_get_string(v), "snap");
    json_object_object_get_ex(o, "status", &v);
    cr_assert_str_eq(json_object_get_string(v), "paused");
    json_object_object_get_ex(o, "start_time", &v);
    cr_assert_str_eq(json_object_get_string(v), "2025-11-24T16:00:00.123456Z");
    json_object_object_get_ex(o, "end_time", &v);
    cr_assert(json_object_is_type(v, json_type_null));
    json_object_object_get_ex(o, "last_event_seq", &v);
    cr_assert_eq(json_object_get_int64(v), 1);
    json_object_object_get_ex(o, "inputs", &v);
    cr_assert(json_object_is_type(v, json_type_object));
    cr_assert(json_object_object_get_ex(v, "q", &w));
    cr_assert_eq(json_object_array_length(w), 3);
    json_object_object_get_ex(o, "outputs", &v);
    cr_assert(json_object_is_type(v, json_type_null));
    json_object_object_get_ex(o, "state", &v);
    cr_assert(json_object_is_type(v, json_type_object));
    json_object_put(o);
    result_free(&r);

    /* The human form: aligned fields, JSON pretty-printed. */
    r = EVDUMP("snapshot", dir, "snap");
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "status          paused\n"), "%s", r.out);
    cr_assert(strstr(r.out, "inputs          {\n"
                            "                  \"q\": [\n"
                            "                    1,\n"),
              "%s", r.out);
    cr_assert(strstr(r.out, "end_time        -\n"), "%s", r.out);
    result_free(&r);
}

Test(evdump, snapshot_of_a_damaged_snapshot_exits_3)
{
    char *p;
    result r;

    make_run("s1", 1);
    p = tu_path(dir, "s1", "snapshot.json");
    cr_assert_eq(tu_flip_bit(p, 20, 2), 0);
    free(p);
    r = EVDUMP("snapshot", dir, "s1");
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "s1"), "%s", r.err);
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* import                                                             */
/* ------------------------------------------------------------------ */

Test(evdump, import_of_our_own_lines_round_trips_ids_sequences_and_data)
{
    evs_store *b;
    char *bdir, *da, *db;
    const char *dump;
    evs_log *l;
    result r;
    evs_snapshot *sn;

    cr_assert_eq(tu_create(st, "run-1"), 0);
    l = writer("run-1");
    append_mixed(l);
    cr_assert_eq(tu_append_n(l, 1200), 0);
    evs_log_close(l);
    r = EVDUMP("show", dir, "run-1", "--json");
    cr_assert_eq(r.status, 0);
    dump = io_path("dump.jsonl");
    cr_assert_eq(tu_write_file(dump, r.out, r.out_len), 0);
    result_free(&r);

    bdir = tu_tmpdir("evdump-b");
    r = EVDUMP("import", bdir, "run-1", dump);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "imported 1208 events (seq 1..1208)\n");
    result_free(&r);

    b = tu_open_store(bdir, NULL);
    cr_assert_not_null(b);
    da = events_digest(st, "run-1");
    db = events_digest(b, "run-1");
    cr_assert_str_eq(da, db);
    cr_assert_eq(evs_snapshot_load(b, "run-1", 5, &sn, NULL), 0);
    cr_assert(sn->status.len == 7 && memcmp(sn->status.ptr, "running", 7) == 0);
    cr_assert(sn->workflow_name.len == 4 &&
              memcmp(sn->workflow_name.ptr, "test", 4) == 0);
    evs_snapshot_free(sn);
    free(da);
    free(db);
    evs_store_close(b);

    /* The same lines again continue nothing: refused at line 1. */
    r = EVDUMP_IN(dump, "import", bdir, "run-1", "-");
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "line 1:") && strstr(r.err, "duplicate"), "%s",
              r.err);
    result_free(&r);
    r = EVDUMP("verify", bdir);
    cr_assert_eq(r.status, 0, "%s", r.out);
    result_free(&r);
    tu_rmtree_free(bdir);
}

static const char dive_lines[] =
    "{\"id\":\"5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e01\",\"execution_id\":"
    "\"dive-1\",\"path_id\":\"main\",\"sequence\":1,\"timestamp\":"
    "\"2025-03-04T10:11:12.123456789-05:00\",\"event_type\":"
    "\"execution_started\",\"data\":{\"inputs\":{\"topic\":"
    "\"a \\u003cb\\u003e \\u0026 c\"},\"workflow_name\":\"research\"}}\n"
    "{\"id\":\"5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e02\",\"execution_id\":"
    "\"dive-1\",\"path_id\":\"main\",\"sequence\":2,\"timestamp\":"
    "\"2025-03-04T10:11:12.2-05:00\",\"event_type\":\"path_started\","
    "\"data\":{\"current_step\":\"search\"}}\r\n"
    "\n"
    "{\"id\":\"5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e03\",\"execution_id\":"
    "\"dive-1\",\"path_id\":\"main\",\"sequence\":3,\"timestamp\":"
    "\"2025-03-04T10:11:13-05:00\",\"event_type\":\"step_started\","
    "\"step_name\":\"search\"}\n"
    "   \n"
    "{\"id\":\"5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e04\",\"execution_id\":"
    "\"dive-1\",\"path_id\":\"main\",\"sequence\":4,\"timestamp\":"
    "\"2025-03-04T10:11:14.5-05:00\",\"event_type\":\"step_completed\","
    "\"step_name\":\"search\",\"data\":{\"output\":\"found 3 papers\","
    "\"stored_variable\":\"papers\"}}\n"
    "{\"id\":\"5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e05\",\"execution_id\":"
    "\"dive-1\",\"sequence\":5,\"timestamp\":\"2025-03-04T15:11:15Z\","
    "\"event_type\":\"execution_completed\"}";

Test(evdump, import_of_dive_lines_creates_the_execution)
{
    evs_snapshot *sn;
    result r;
    char *got;
    const char *want =
        "1|5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e01|1741101072123456|"
        "execution_started|main||"
        "{\"inputs\":{\"topic\":\"a \\u003cb\\u003e \\u0026 c\"},"
        "\"workflow_name\":\"research\"}\n"
        "2|5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e02|1741101072200000|"
        "path_started|main||{\"current_step\":\"search\"}\n"
        "3|5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e03|1741101073000000|"
        "step_started|main|search|{}\n"
        "4|5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e04|1741101074500000|"
        "step_completed|main|search|{\"output\":\"found 3 papers\","
        "\"stored_variable\":\"papers\"}\n"
        "5|5f0c6a1e-7d3b-4c2a-9e61-1b2f3c4d5e05|1741101075000000|"
        "execution_completed|||{}\n";

    r = EVDUMP_IN(scratch_file("dive.jsonl", dive_lines), "import", dir,
                  "dive-1");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "imported 5 events (seq 1..5)\n");
    result_free(&r);
    got = events_digest(st, "dive-1");
    cr_assert_str_eq(got, want);
    free(got);
    cr_assert_eq(evs_snapshot_load(st, "dive-1", 6, &sn, NULL), 0);
    cr_assert(sn->workflow_name.len == 8 &&
              memcmp(sn->workflow_name.ptr, "research", 8) == 0);
    cr_assert(sn->status.len == 7 && memcmp(sn->status.ptr, "running", 7) == 0);
    evs_snapshot_free(sn);
    /* What was written is canonical: our lines, with checksums. */
    r = EVDUMP("verify", dir, "dive-1");
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_assert_str_eq(r.out, "1 executions, 5 events, 0 problems\n");
    result_free(&r);
}

/* Dive-style lines seq first..last of execution `id`, skipping `skip`. */
static char *gen_lines(const char *id, unsigned first, unsigned last,
                       unsigned skip)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    for (unsigned s = first; s <= last; s++) {
        if (s == skip)
            continue;
        fprintf(f,
                "{\"id\":\"ev-%u\",\"execution_id\":\"%s\",\"path_id\":"
                "\"main\",\"sequence\":%u,\"timestamp\":"
                "\"2025-03-04T10:11:12.5+01:00\",\"event_type\":"
                "\"step_completed\",\"step_name\":\"s\",\"data\":"
                "{\"n\":%u}}\n",
                s, id, s, s);
    }
    fclose(f);
    return buf;
}

Test(evdump, import_refuses_a_sequence_gap_naming_the_line_and_keeps_batches)
{
    char *lines = gen_lines("gap", 1, 1500, 1201);
    result r;

    r = EVDUMP_IN(scratch_file("gap.jsonl", lines), "import", dir, "gap");
    cr_assert_eq(r.status, 3, "out: %s err: %s", r.out, r.err);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "line 1201:") && strstr(r.err, "gap"), "%s", r.err);
    cr_assert_eq(r.out_len, 0, "%s", r.out);
    result_free(&r);
    /* The first full batch is in; nothing of the one with the bad line. */
    cr_assert_eq(tu_count_events(st, "gap"), 1000);
    free(lines);

    /* A gap inside the first batch: nothing written, nothing created. */
    lines = gen_lines("gap2", 1, 10, 4);
    r = EVDUMP_IN(scratch_file("gap2.jsonl", lines), "import", dir, "gap2");
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err, "line 4:"), "%s", r.err);
    cr_assert_eq(evs_exec_exists(st, "gap2", 4), 0);
    result_free(&r);
    free(lines);
}

Test(evdump, import_refuses_another_execution_and_bad_lines)
{
    char *lines;
    result r;

    make_run("x", 2);
    lines = gen_lines("other", 4, 6, 0);
    r = EVDUMP_IN(scratch_file("o.jsonl", lines), "import", dir, "x");
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "line 1:") && strstr(r.err, "other"), "%s", r.err);
    result_free(&r);
    free(lines);
    cr_assert_eq(tu_count_events(st, "x"), 3);

    r = EVDUMP_IN(scratch_file("j.jsonl", "{\"id\":\"a\",\"sequence\":4,\n"),
                  "import", dir, "x");
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "line 1:"), "%s", r.err);
    result_free(&r);

    /* An existing execution continues at its last sequence + 1. */
    lines = gen_lines("x", 4, 6, 0);
    r = EVDUMP_IN(scratch_file("ok.jsonl", lines), "import", dir, "x");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "imported 3 events (seq 4..6)\n");
    result_free(&r);
    free(lines);
    cr_assert_eq(tu_count_events(st, "x"), 6);
}

Test(evdump, import_repairs_a_torn_tail_before_appending)
{
    char *lines, *p;
    long long good;
    result r;

    good = make_torn("torn", 4); /* seq 1..5 complete, 6..8 torn */
    lines = gen_lines("torn", 6, 9, 0);
    r = EVDUMP_IN(scratch_file("t.jsonl", lines), "import", dir, "torn");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "imported 4 events (seq 6..9)\n");
    cr_assert(strstr(r.err, "torn tail"), "stderr: %s", r.err);
    result_free(&r);
    free(lines);
    p = log_path("torn");
    cr_assert_gt(tu_file_size(p), good);
    free(p);
    cr_assert_eq(tu_count_events(st, "torn"), 9);
    r = EVDUMP("verify", dir, "torn");
    cr_assert_eq(r.status, 0, "%s", r.out);
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* tail                                                               */
/* ------------------------------------------------------------------ */

Test(evdump, tail_prints_the_last_n_events)
{
    char *file;
    size_t len;
    result r;

    make_run("t", 30);
    file = read_log("t", &len);
    r = EVDUMP("tail", dir, "t", "-n", "4", "--json");
    cr_assert_eq(r.status, 0);
    {
        long long a = line_offset(file, 28);
        cr_assert_eq(r.out_len, len - (size_t)a);
        cr_assert_eq(memcmp(r.out, file + a, r.out_len), 0);
    }
    result_free(&r);
    r = EVDUMP("tail", dir, "t");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 10);
    {
        char *first = nth_line(r.out, 0);
        cr_assert_eq(strncmp(first + strspn(first, " "), "22  ", 4), 0, "%s",
                     first);
        free(first);
    }
    result_free(&r);
    r = EVDUMP("tail", dir, "t", "-n", "100", "--json");
    cr_assert_eq(r.out_len, len);
    result_free(&r);
    free(file);
}

/* Waits until `path` holds at least `n` lines; a generous bound only
 * keeps a broken build from hanging the suite. */
static int wait_lines(const char *path, size_t n)
{
    for (int i = 0; i < 3000; i++) {
        size_t len;
        char *buf = tu_read_file(path, &len);
        size_t got = buf ? count_lines(buf) : 0;
        free(buf);
        if (got >= n)
            return 1;
        usleep(10 * 1000);
    }
    return 0;
}

Test(evdump, tail_follow_prints_appends_made_after_it_started)
{
    const char *out = io_path("follow.out"), *err = io_path("follow.err");
    evs_log *l;
    evs_event e;
    size_t len;
    char *buf, *line;
    pid_t pid;

    make_run("f", 5);
    pid = start(NULL, out, err,
                (const char *const[]){"tail", dir, "f", "-n", "2", "-f",
                                      "--json", NULL});
    cr_assert(wait_lines(out, 2), "tail did not print the first lines");
    l = writer("f");
    e = tu_event(EVS_EV_SIGNAL_RECEIVED, "wait", "{\"signal\":\"go\"}");
    cr_assert_eq(evs_log_append(l, &e, 1, 6, NULL), 0);
    cr_assert(wait_lines(out, 3), "tail -f missed the append");
    cr_assert_eq(tu_append_n(l, 2), 0);
    cr_assert(wait_lines(out, 5), "tail -f missed later appends");
    evs_log_close(l);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    cr_assert_eq(tu_wait_exit(pid), 0);
    buf = tu_read_file(out, &len);
    cr_assert_eq(count_lines(buf), 5, "%s", buf);
    line = nth_line(buf, 2);
    cr_assert(strstr(line, "\"sequence\":7,") &&
                  strstr(line, "\"signal_received\""),
              "%s", line);
    free(line);
    line = nth_line(buf, 4);
    cr_assert(strstr(line, "\"sequence\":9,"), "%s", line);
    free(line);
    free(buf);
    cr_assert_eq(tu_file_size(err), 0);
}

/* ------------------------------------------------------------------ */
/* salvage                                                            */
/* ------------------------------------------------------------------ */

Test(evdump, salvage_exports_every_line_but_a_damaged_one)
{
    char *file, *p, *got, want[160];
    const char *outp = io_path("salvaged.jsonl");
    size_t len, glen;
    long long a, b;
    result r;

    make_run("dmg", 9);
    file = read_log("dmg", &len);
    a = line_offset(file, 5);
    b = line_offset(file, 6);
    p = log_path("dmg");
    cr_assert_eq(tu_flip_bit(p, a + 30, 1), 0);
    free(p);
    r = EVDUMP("salvage", dir, "dmg", "--out", outp);
    cr_assert_eq(r.status, 1, "stderr: %s", r.err);
    cr_assert_eq(r.out_len, 0);
    snprintf(want, sizeof(want), "dmg: seq 5 at byte %lld: ", a);
    cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    result_free(&r);
    got = tu_read_file(outp, &glen);
    cr_assert_not_null(got);
    cr_assert_eq(glen, len - (size_t)(b - a));
    cr_assert_eq(memcmp(got, file, (size_t)a), 0);
    cr_assert_eq(memcmp(got + a, file + b, len - (size_t)b), 0);
    free(got);
    free(file);
}

Test(evdump, salvage_of_a_clean_log_copies_it_and_skips_a_torn_tail)
{
    char *file;
    size_t len;
    long long good;
    result r;

    make_run("c", 6);
    file = read_log("c", &len);
    r = EVDUMP("salvage", dir, "c");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(r.out_len, len);
    cr_assert_eq(memcmp(r.out, file, len), 0);
    cr_assert_eq(r.err_len, 0);
    result_free(&r);
    free(file);

    /* The torn append's two complete lines are exported too, each
     * marked on stderr as not part of the log. */
    good = make_torn("tt", 3);
    file = read_log("tt", &len);
    r = EVDUMP("salvage", dir, "tt");
    cr_assert_eq(r.status, 1);
    cr_assert_eq(r.out_len, (size_t)line_offset(file, 7),
                 "the log and the torn append's complete lines");
    cr_assert_eq(memcmp(r.out, file, r.out_len), 0);
    cr_assert(strstr(r.err, ": torn: "), "%s", r.err);
    cr_assert(strstr(r.err, "tt: seq 5 at byte"), "%s", r.err);
    cr_assert(strstr(r.err, "tt: seq 6 at byte"), "%s", r.err);
    cr_assert(strstr(r.err, "exported 4 events of the log and 2 of an "
                            "unfinished append"),
              "%s", r.err);
    cr_assert(good < line_offset(file, 7));
    result_free(&r);
    free(file);
}

/* The last append: three events, complete, with one byte of its second
 * line (sequence 7) flipped, which no crash does (FORMAT.md §4). */
static void make_damaged_last(const char *id, long long *end, long long *bad,
                              char **file, size_t *len)
{
    evs_log *l;
    evs_event b[3];
    char *p;

    make_run(id, 4);
    l = writer(id);
    for (int i = 0; i < 3; i++)
        b[i] = tu_event(EVS_EV_STEP_COMPLETED, "t", "{\"output\":\"ok\"}");
    cr_assert_eq(evs_log_append(l, b, 3, evs_log_last_seq(l), NULL), 0);
    evs_log_close(l);
    *file = read_log(id, len);
    *end = line_offset(*file, 6);
    *bad = line_offset(*file, 7);
    p = log_path(id);
    cr_assert_eq(tu_flip_bit(p, *bad + 40, 3), 0);
    free(p);
}

Test(evdump, verify_names_the_bad_line_of_a_damaged_last_append)
{
    char *file, want[160];
    long long end, bad;
    size_t len;
    result r;

    make_damaged_last("dl", &end, &bad, &file, &len);
    r = EVDUMP("verify", dir, "dl");
    cr_assert_eq(r.status, 1, "out: %s", r.out);
    snprintf(want, sizeof(want), "dl: seq 7 at byte %lld: checksum: ", bad);
    cr_assert(strstr(r.out, want), "want '%s' in:\n%s", want, r.out);
    cr_assert(strstr(r.out, "(sequences 6..8, 3 events)"), "%s", r.out);
    cr_assert_null(strstr(r.out, ": torn: "), "not torn: %s", r.out);
    cr_assert(strstr(r.out, "1 executions, 5 events, 1 problems\n"), "%s",
              r.out);
    result_free(&r);

    /* A writer refuses it, naming the place: import fails, changing
     * nothing. */
    r = EVDUMP_IN(scratch_file("dl.jsonl", ""), "import", dir, "dl");
    cr_assert_eq(r.status, 3, "%s", r.err);
    snprintf(want, sizeof(want), "byte offset %lld", bad);
    cr_assert(strstr(r.err, want), "%s", r.err);
    result_free(&r);
    {
        size_t now_len;
        char *now = read_log("dl", &now_len);
        cr_assert_eq(now_len, len);
        free(now);
    }
    free(file);
}

/* repair: point-in-time recovery, the way past a damaged last append.
 * The append is cut (saved beside the log), the log verifies clean and a
 * writer opens it again; a second repair has nothing to do. */
Test(evdump, repair_cuts_a_damaged_last_append_back_and_saves_it)
{
    char *file, *cut, want[200];
    long long end, bad;
    size_t len, now_len;
    result r;

    make_damaged_last("dr", &end, &bad, &file, &len);
    r = EVDUMP("repair", dir, "dr");
    cr_assert_eq(r.status, 0, "%s", r.err);
    snprintf(want, sizeof(want),
             "dr: cut %lld bytes at byte %lld (2 complete lines among "
             "them), saved beside the log as cut-%lld-",
             (long long)len - end, end, end);
    cr_assert_eq(strncmp(r.out, want, strlen(want)), 0, "want '%s' in:\n%s",
                 want, r.out);
    cr_assert(strstr(r.out, "; the log now ends at sequence 5\n"), "%s", r.out);
    /* The cut bytes are the damaged append, byte for byte. */
    {
        char name[96];
        size_t clen;

        cr_assert_eq(sscanf(strstr(r.out, "cut-"), "%95[^;]", name), 1);
        cut = tu_path(dir, "dr", name);
        free(read_log("dr", &now_len));
        cr_assert_eq(now_len, (size_t)end);
        {
            char *bytes = tu_read_file(cut, &clen);
            cr_assert_not_null(bytes, "%s", cut);
            cr_assert_eq(clen, len - (size_t)end);
            free(bytes);
        }
        free(cut);
    }
    result_free(&r);
    r = EVDUMP("verify", dir, "dr");
    cr_assert_eq(r.status, 0, "%s", r.out);
    result_free(&r);
    r = EVDUMP("repair", dir, "dr");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "dr: nothing to repair; the log ends at sequence "
                            "5\n");
    result_free(&r);
    r = EVDUMP("repair", dir, "nope");
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    result_free(&r);
    free(file);
}

Test(evdump, salvage_exports_the_good_lines_of_a_damaged_last_append)
{
    char *file, want[160];
    long long end, bad, after;
    size_t len;
    result r;

    make_damaged_last("ds", &end, &bad, &file, &len);
    after = line_offset(file, 8);
    r = EVDUMP("salvage", dir, "ds");
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert_eq(r.out_len, len - (size_t)(after - bad));
    cr_assert_eq(memcmp(r.out, file, (size_t)bad), 0);
    cr_assert_eq(memcmp(r.out + bad, file + after, len - (size_t)after), 0);
    snprintf(want, sizeof(want), "ds: seq 6 at byte %lld: exported a line of "
             "the unfinished append", end);
    cr_assert(strstr(r.err, want), "%s", r.err);
    snprintf(want, sizeof(want), "ds: seq 8 at byte %lld: exported", after);
    cr_assert(strstr(r.err, want), "%s", r.err);
    snprintf(want, sizeof(want), "ds: seq 7 at byte %lld: checksum: ", bad);
    cr_assert(strstr(r.err, want), "%s", r.err);
    result_free(&r);
    free(file);
}

Test(evdump, show_and_tail_say_what_follows_the_end)
{
    char *file, want[200];
    long long end, bad, good;
    size_t len;
    result r;

    /* A damaged last append: the log is printed to its end, the damage
     * named on stderr, exit 1. */
    make_damaged_last("dv", &end, &bad, &file, &len);
    r = EVDUMP("show", dir, "dv", "--json");
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert_eq(r.out_len, (size_t)end);
    cr_assert_eq(memcmp(r.out, file, (size_t)end), 0);
    snprintf(want, sizeof(want), "dv: a damaged append follows the end, at "
             "byte %lld (sequences 6..8, 2 of its lines check out): the "
             "line of sequence 7 at byte %lld fails (checksum)", end, bad);
    cr_assert(strstr(r.err, want), "want '%s' in %s", want, r.err);
    result_free(&r);
    r = EVDUMP("tail", dir, "dv", "-n", "1", "--json");
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert_eq(r.out_len, (size_t)(end - line_offset(file, 5)),
                 "the last event of the log, sequence 5");
    cr_assert(strstr(r.err, want), "%s", r.err);
    result_free(&r);
    free(file);

    /* A torn one (a writer may still be writing it): exit 0. */
    good = make_torn("tv", 4);
    file = read_log("tv", &len);
    snprintf(want, sizeof(want), "tv: an unfinished append follows the end, "
             "at byte %lld: %lld bytes, 2 of its lines complete (sequences "
             "6..8)", good, (long long)len - good);
    r = EVDUMP("show", dir, "tv", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(r.out_len, (size_t)good);
    cr_assert(strstr(r.err, want), "want '%s' in %s", want, r.err);
    result_free(&r);
    r = EVDUMP("tail", dir, "tv");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, want), "%s", r.err);
    result_free(&r);
    free(file);

    /* Nothing follows the end of a clean log: nothing is said. */
    make_run("cv", 2);
    r = EVDUMP("show", dir, "cv");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.err_len, 0, "%s", r.err);
    result_free(&r);
}

/* ------------------------------------------------------------------ */
/* The command line                                                   */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* config, gc, stats                                                  */
/* ------------------------------------------------------------------ */

Test(evdump, config_sets_gets_and_unsets_and_refuses_bad_input)
{
    char *file = tu_join(dir, EVS_SETTINGS_FILE), *before, *t;
    result r;
    size_t n;

    r = EVDUMP("config", dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 10);
    cr_assert(strstr(r.out, "retention.completed    forever  (default)\n"),
              "%s", r.out);
    result_free(&r);
    cr_assert_eq(access(file, F_OK), -1, "reading writes nothing");

    r = EVDUMP("config", dir, "retention.failed", "090d");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "90d\n");
    result_free(&r);
    r = EVDUMP("config", dir, "retention.failed", "--json");
    cr_assert_str_eq(r.out, "{\"key\":\"retention.failed\",\"value\":"
                            "\"90d\",\"default\":false}\n");
    result_free(&r);
    r = EVDUMP("config", dir);
    cr_assert(strstr(r.out, "retention.failed       90d\n"), "%s", r.out);
    result_free(&r);

    before = tu_read_file(file, &n);
    cr_assert_not_null(before);
    r = EVDUMP("config", dir, "retention.failed", "90 days");
    cr_assert_eq(r.status, 2);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "not a duration"), "%s", r.err);
    result_free(&r);
    r = EVDUMP("config", dir, "retention.running", "1d");
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "unknown setting 'retention.running'"), "%s",
              r.err);
    result_free(&r);
    t = tu_read_file(file, &n);
    cr_assert_str_eq(t, before, "a refused value changes nothing");
    free(t);

    r = EVDUMP("config", dir, "--unset", "retention.failed");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "forever\n");
    result_free(&r);

    /* A damaged file is refused, never taken for the defaults. */
    before[10] ^= 1;
    cr_assert_eq(tu_write_file(file, before, strlen(before)), 0);
    r = EVDUMP("config", dir);
    cr_assert_eq(r.status, 3);
    /* The store's open says what it does without the file (the default
     * history limits), then config why it fails. */
    cr_assert_eq(count_lines(r.err), 2, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "evdump: the settings file cannot be read, so "
                            "the default history limits hold: ") == r.err,
              "%s", r.err);
    cr_assert(strstr(r.err, "\nevdump: reading the store's settings: "
                            "settings file: "),
              "%s", r.err);
    result_free(&r);
    r = EVDUMP("gc", dir);
    cr_assert_eq(r.status, 3);
    result_free(&r);
    free(before);
    free(file);
}

Test(evdump, gc_dry_run_prints_and_deletes_nothing_then_gc_deletes)
{
    result r;

    make_exec("old", "wf", "completed", 0);
    make_exec("young", "wf", "completed", 86400 * 25);
    make_exec("run", "wf", "running", 0);
    r = EVDUMP("config", dir, "retention.completed", "7d");
    result_free(&r);
    /* 2025-12-24: "old" ended 30 days before, "young" 5. */
    r = EVDUMP("gc", dir, "--dry-run", "--now", "2025-12-24T16:00:00Z");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "would delete   old  completed  ended "
                            "2025-11-24T16:00:00Z\n"),
              "%s", r.out);
    cr_assert(strstr(r.out, "3 executions, 1 expired: 1 would be deleted"),
              "%s", r.out);
    result_free(&r);
    cr_assert(evs_exec_exists(st, "old", 3));

    r = EVDUMP("gc", dir, "--json", "--now", "2025-12-24T16:00:00Z");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 2, "%s", r.out);
    cr_assert(strstr(r.out, "{\"id\":\"old\",\"action\":\"delete\","),
              "%s", r.out);
    cr_assert(strstr(r.out, "\"expired\":1,\"deleted\":1,"), "%s", r.out);
    result_free(&r);
    cr_assert_not(evs_exec_exists(st, "old", 3));
    cr_assert(evs_exec_exists(st, "young", 5));
    cr_assert(evs_exec_exists(st, "run", 3));

    r = EVDUMP("gc", dir, "--now", "yesterday");
    cr_assert_eq(r.status, 2);
    result_free(&r);
}

Test(evdump, gc_refuses_an_archive_directory_that_is_not_there)
{
    result r;

    make_exec("old", "wf", "failed", 0);
    r = EVDUMP("config", dir, "retention.failed", "1d");
    result_free(&r);
    r = EVDUMP("config", dir, "retention.archive", "/srv/archive");
    cr_assert_eq(r.status, 0, "%s", r.err);
    result_free(&r);
    r = EVDUMP("gc", dir);
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "retention.archive names /srv/archive"), "%s",
              r.err);
    result_free(&r);
    cr_assert(evs_exec_exists(st, "old", 3));
}

Test(evdump, stats_counts_statuses_workflows_events_and_cuts)
{
    char *cut = tu_path(dir, "b", "cut-10-0123456789abcdef.jsonl");
    result r;

    make_exec("a", "alpha", "completed", 0);
    make_exec("b", "alpha", "failed", 1);
    make_exec("c", "beta", "completed", 2);
    cr_assert_eq(tu_write_file(cut, "xyz", 3), 0);
    r = EVDUMP("stats", dir, "--json", "--top", "1");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"executions\":3,"), "%s", r.out);
    cr_assert(strstr(r.out, "\"by_status\":{\"completed\":2,\"failed\":1}"),
              "%s", r.out);
    cr_assert(strstr(r.out, "\"by_workflow\":{\"alpha\":2,\"beta\":1}"),
              "%s", r.out);
    cr_assert(strstr(r.out, "\"events\":{\"total\":3,\"p50\":1,"), "%s",
              r.out);
    cr_assert(strstr(r.out, "\"archived\":null,\"cut_files\":1,"
                            "\"cut_bytes\":3,\"cut_executions\":1,"
                            "\"stale_snapshots\":0"),
              "%s", r.out);
    result_free(&r);
    r = EVDUMP("stats", dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "executions: 3\n"), "%s", r.out);
    cr_assert(strstr(r.out, "torn tails cut: 1 files, 3 bytes, in 1 "
                            "executions\n"),
              "%s", r.out);
    result_free(&r);
    free(cut);
}

Test(evdump, usage_errors_exit_2_with_a_hint)
{
    const char *const *cases[] = {
        (const char *const[]){NULL},
        (const char *const[]){"frobnicate", NULL},
        (const char *const[]){"ls", NULL},
        (const char *const[]){"ls", dir, "--limit", "x", NULL},
        (const char *const[]){"ls", dir, "--limit", "-1", NULL},
        (const char *const[]){"ls", dir, "--offset", "99999999999999999999999",
                              NULL},
        (const char *const[]){"ls", dir, "--limit", NULL},
        (const char *const[]){"ls", dir, "--bogus", NULL},
        (const char *const[]){"ls", dir, "extra", NULL},
        (const char *const[]){"show", dir, NULL},
        (const char *const[]){"show", dir, "u", "--from", "0", NULL},
        (const char *const[]){"show", dir, "u", "--to", "1x", NULL},
        (const char *const[]){"show", dir, "u", "--from", "3", "--to", "2",
                              NULL},
        (const char *const[]){"tail", dir, "u", "-n", NULL},
        (const char *const[]){"tail", dir, "u", "-n", "ten", NULL},
        (const char *const[]){"tail", dir, "u", "-x", NULL},
        (const char *const[]){"verify", NULL},
        (const char *const[]){"snapshot", dir, NULL},
        (const char *const[]){"import", dir, NULL},
        (const char *const[]){"import", dir, "u", "a", "b", NULL},
        (const char *const[]){"salvage", dir, "u", "--out", NULL},
        (const char *const[]){"config", dir, "k", "v", "w", NULL},
        (const char *const[]){"config", dir, "--unset", NULL},
        (const char *const[]){"config", dir, "gc.interval", "soon", NULL},
        (const char *const[]){"gc", dir, "extra", NULL},
        (const char *const[]){"stats", dir, "--top", "x", NULL},
    };

    make_run("u", 1);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result r = run_args(NULL, cases[i]);

        cr_assert_eq(r.status, 2, "case %zu: status %d, stderr: %s", i,
                     r.status, r.err);
        assert_one_error_line(&r);
        cr_assert(strstr(r.err, "--help"), "case %zu: %s", i, r.err);
        cr_assert_eq(r.out_len, 0, "case %zu: %s", i, r.out);
        result_free(&r);
    }
}

Test(evdump, help_exits_0_and_covers_every_command_option_and_exit_code)
{
    static const char *const cmds[] = {"ls",       "show",   "tail",   "verify",
                                       "snapshot", "import", "salvage"};
    static const char *const opts[] = {
        "--status", "--workflow", "--limit",  "--offset", "--json",
        "--from",   "--to",       "--type",   "--path",   "--lines",
        "--follow", "--out",      "NO_COLOR", "--version"};
    result r;

    r = EVDUMP("--help");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.err_len, 0);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "evdump %s STORE", cmds[i]);
        cr_assert(strstr(r.out, want), "no %s in --help", cmds[i]);
    }
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        cr_assert(strstr(r.out, opts[i]), "no %s in --help", opts[i]);
    for (int code = 0; code <= 3; code++) {
        char want[16];
        snprintf(want, sizeof(want), "  %d  ", code);
        cr_assert(strstr(r.out, want), "exit code %d undocumented", code);
    }
    result_free(&r);

    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char want[64];
        r = EVDUMP(cmds[i], "--help");
        cr_assert_eq(r.status, 0, "%s --help", cmds[i]);
        snprintf(want, sizeof(want), "Usage: evdump %s STORE", cmds[i]);
        cr_assert_eq(strncmp(r.out, want, strlen(want)), 0, "%s", r.out);
        cr_assert(strstr(r.out, "Exit status:"), "%s", r.out);
        result_free(&r);
    }
    r = EVDUMP("import", "--help");
    cr_assert(strstr(r.out, "stay in the log"), "%s", r.out);
    result_free(&r);
    r = EVDUMP("help", "tail");
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "-f, --follow"), "%s", r.out);
    result_free(&r);
}

Test(evdump, options_may_come_before_or_after_the_arguments)
{
    result a, b;

    make_run("o", 12);
    a = EVDUMP("tail", "-n", "3", "--json", dir, "o");
    b = EVDUMP("tail", dir, "o", "--json", "-n", "3");
    cr_assert_eq(a.status, 0);
    cr_assert_eq(b.status, 0);
    cr_assert_eq(count_lines(a.out), 3);
    cr_assert_str_eq(a.out, b.out);
    result_free(&a);
    result_free(&b);
}

/* ------------------------------------------------------------------ */
/* state                                                              */
/* ------------------------------------------------------------------ */

/* An agent-like history touching every part of the replayed state:
 * {type, path, step, data} per event, each appended alone. */
static const char *const agent_history[][4] = {
    {"execution_started", "main", "",
     "{\"workflow_name\":\"research\",\"inputs\":{\"q\":\"revenue\"}}"},
    {"step_started", "main", "plan", "{\"attempt\":1}"},
    {"step_completed", "main", "plan",
     "{\"output\":{\"steps\":3},\"stored_variable\":\"plan\"}"},
    {"path_branched", "main", "plan",
     "{\"new_paths\":[{\"id\":\"side\",\"current_step\":\"fetch\"}]}"},
    {"step_started", "side", "fetch", "{\"attempt\":1}"},
    {"step_failed", "side", "fetch",
     "{\"error\":{\"type\":\"timeout\",\"message\":\"slow\"}}"},
    {"retry_scheduled", "side", "fetch", "{\"delay_ms\":1000,\"attempt\":2}"},
    {"step_started", "side", "fetch", "{\"attempt\":2}"},
    {"step_completed", "side", "fetch",
     "{\"output\":\"page\",\"stored_variable\":\"page\"}"},
    {"step_started", "main", "each_item", "{\"iteration\":0,\"count\":2}"},
    {"step_completed", "main", "each_item",
     "{\"iteration\":0,\"output\":\"i0\"}"},
    {"signal_received", "main", "approve",
     "{\"signal\":\"approval\",\"payload\":{\"ok\":true}}"},
    {"wait_started", "main", "approve", "{\"signal\":\"approval\"}"},
    {"wait_ended", "main", "approve", "{\"signal_seq\":12}"},
    {"timer_started", "main", "nap",
     "{\"timer_id\":\"t1\",\"fire_at\":\"2026-11-22T10:20:00.000000Z\"}"},
    {"timer_fired", "main", "nap", "{\"timer_id\":\"t1\"}"},
    {"version_decision", "main", "",
     "{\"change_id\":\"new-prompt\",\"version\":2,\"min\":1,\"max\":3}"},
    {"variable_set", "main", "", "{\"name\":\"note\",\"value\":\"hello\"}"},
    {"path_completed", "side", "", "{}"},
};
#define AGENT_EVENTS (sizeof(agent_history) / sizeof(agent_history[0]))

static void append_rows(evs_log *l, const char *const (*rows)[4], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        evs_event e = tu_event(rows[i][0], rows[i][2], rows[i][3]);
        e.path_id = evs_span_cstr(rows[i][1]);
        cr_assert_eq(evs_log_append(l, &e, 1, evs_log_last_seq(l), NULL), 0,
                     "event %zu", i + 1);
    }
}

static void make_agent(const char *id)
{
    evs_event e = tu_event(agent_history[0][0], NULL, agent_history[0][3]);
    evs_log *l;

    cr_assert_eq(evs_exec_create(st, id, strlen(id), NULL, &e, 1), 0);
    l = writer(id);
    append_rows(l, agent_history + 1, AGENT_EVENTS - 1);
    evs_log_close(l);
}

/* Whether some line of `out` begins with these cells, in order, each
 * followed by at least one space or the end of the line. */
static int has_row(const char *out, const char *const *cells, size_t n)
{
    for (const char *line = out; *line;) {
        const char *end = strchr(line, '\n'), *p = line;
        size_t k;

        if (!end)
            end = line + strlen(line);
        for (k = 0; k < n; k++) {
            size_t w = strlen(cells[k]);
            p += strspn(p, " ");
            if (p + w > end || strncmp(p, cells[k], w) != 0 ||
                (p + w < end && p[w] != ' '))
                break;
            p += w;
        }
        if (k == n)
            return 1;
        line = *end ? end + 1 : end;
    }
    return 0;
}

#define HAS_ROW(out, ...)                                                      \
    has_row((out), (const char *const[]){__VA_ARGS__},                         \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

/* The library's canonical state JSON of `id` as of `at` (0: the end). */
static char *library_state(const char *id, uint64_t at, int tolerant)
{
    evs_replay_opts o;
    evs_replay *r;
    char *js, *copy;
    size_t len;

    evs_replay_opts_init(&o);
    o.tolerant = tolerant;
    cr_assert_eq(evs_replay_new(&o, &r), 0);
    cr_assert_eq(evs_replay_open(r, st, id, strlen(id), at, NULL, NULL), 0);
    cr_assert_eq(evs_replay_state_json(r, &js, &len), 0);
    copy = strndup(js, len);
    free(js);
    evs_replay_free(r);
    return copy;
}

Test(evdump, state_shows_the_execution_and_every_table_at_the_end)
{
    result r;

    make_agent("agent");
    r = EVDUMP("state", dir, "agent");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
    cr_assert_null(strchr(r.out, '\033'), "no colour into a file");
    cr_assert(HAS_ROW(r.out, "execution", "agent"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "status", "running"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "workflow", "research"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "last", "seq", "19"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "ended", "-"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "failure", "-"), "the retry cleared it: %s",
              r.out);
    cr_assert(HAS_ROW(r.out, "inputs", "{\"q\":\"revenue\"}"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "replayed", "from", "seq", "1,", "19"), "%s",
              r.out);
    cr_assert_null(strstr(r.out, "from snapshot"), "%s", r.out);

    cr_assert(HAS_ROW(r.out, "Paths", "(2)"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "main", "-", "active", "each_item", "1", "-"),
              "%s", r.out);
    cr_assert(HAS_ROW(r.out, "side", "main", "completed", "fetch", "4", "19"),
              "%s", r.out);
    cr_assert(HAS_ROW(r.out, "Steps", "(3)"), "%s", r.out);
    /* path, step, iteration, status, attempts, started, ended, variable,
     * output */
    cr_assert(HAS_ROW(r.out, "main", "plan", "-", "completed", "1", "2", "3",
                      "plan", "{\"steps\":3}"),
              "%s", r.out);
    cr_assert(HAS_ROW(r.out, "side", "fetch", "-", "completed", "2", "8", "9",
                      "page", "\"page\""),
              "%s", r.out);
    cr_assert(HAS_ROW(r.out, "main", "each_item", "0", "completed", "1", "10",
                      "11", "-", "\"i0\""),
              "%s", r.out);
    cr_assert(HAS_ROW(r.out, "Each", "(1)"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "main", "each_item", "1", "2"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "Variables", "(3)"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "page", "9", "\"page\""), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "note", "18", "\"hello\""), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "Signals", "(1)"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "12", "approval", "consumed", "14", "main",
                      "approve", "{\"ok\":true}"),
              "%s", r.out);
    cr_assert(HAS_ROW(r.out, "Versions", "(1)"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "new-prompt", "2", "1", "3", "17"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "Timers", "(1)"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "t1", "main", "nap", "fired", "15", "16",
                      "2026-11-22T10:20:00.000000Z"),
              "%s", r.out);
    cr_assert(HAS_ROW(r.out, "Waits", "(1)"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "main", "approve", "approval", "ended", "13", "14",
                      "12", "-"),
              "%s", r.out);
    result_free(&r);
}

Test(evdump, state_at_shows_the_state_as_of_that_sequence)
{
    result r;

    make_agent("agent");
    r = EVDUMP("state", dir, "agent", "--at", "6");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(HAS_ROW(r.out, "last", "seq", "6"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "failure", "side/fetch", "at", "seq", "6"), "%s",
              r.out);
    cr_assert(HAS_ROW(r.out, "side", "fetch", "-", "failed", "1", "5", "6", "-",
                      "{\"type\":\"timeout\",\"message\":\"slow\"}"),
              "the error stands in for the output: %s", r.out);
    cr_assert(HAS_ROW(r.out, "Variables", "(1)"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "Signals", "(0)"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "Timers", "(0)"), "%s", r.out);
    result_free(&r);

    r = EVDUMP("state", "--at", "7", dir, "agent");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(HAS_ROW(r.out, "failure", "-"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "side", "fetch", "-", "retrying", "1"), "%s",
              r.out);
    cr_assert(HAS_ROW(r.out, "side", "main", "waiting"), "%s", r.out);
    result_free(&r);
}

Test(evdump, state_json_is_the_library_state_json_on_one_line)
{
    const uint64_t ats[] = {0, 1, 6, 14, AGENT_EVENTS};
    result r;

    make_agent("agent");
    for (size_t i = 0; i < sizeof(ats) / sizeof(ats[0]); i++) {
        char at[24], *want = library_state("agent", ats[i], 0);

        snprintf(at, sizeof(at), "%llu", (unsigned long long)ats[i]);
        r = ats[i] ? EVDUMP("state", dir, "agent", "--json", "--at", at)
                   : EVDUMP("state", dir, "agent", "--json");
        cr_assert_eq(r.status, 0, "at %s: %s", at, r.err);
        cr_assert_eq(count_lines(r.out), 1, "%s", r.out);
        cr_assert_eq(r.out[r.out_len - 1], '\n');
        cr_assert_eq(r.out_len, strlen(want) + 1, "at %s:\n%s\n%s", at, r.out,
                     want);
        cr_assert_eq(memcmp(r.out, want, strlen(want)), 0, "at %s:\n%s\n%s", at,
                     r.out, want);
        free(want);
        result_free(&r);
    }
}

Test(evdump, state_says_when_it_started_from_the_snapshot)
{
    static const char *const more[][4] = {
        {"variable_set", "main", "", "{\"name\":\"late\",\"value\":1}"},
        {"variable_set", "main", "", "{\"name\":\"late\",\"value\":2}"},
    };
    evs_replay *rp;
    evs_log *l;
    char *want;
    result r;
    int fs = 0;

    make_agent("agent");
    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    cr_assert_eq(evs_replay_open(rp, st, "agent", 5, 0, NULL, NULL), 0);
    cr_assert_eq(evs_replay_snapshot(rp, st, (evs_span){NULL, 0}), 0);
    evs_replay_free(rp);
    l = writer("agent");
    append_rows(l, more, 2);
    evs_log_close(l);
    /* The library does start from it. */
    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    cr_assert_eq(evs_replay_open(rp, st, "agent", 5, 0, &fs, NULL), 0);
    cr_assert_eq(fs, 1);
    evs_replay_free(rp);

    r = EVDUMP("state", dir, "agent");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(HAS_ROW(r.out, "replayed", "from", "snapshot", "at", "seq", "19,",
                      "then", "2", "events"),
              "%s", r.out);
    cr_assert(HAS_ROW(r.out, "last", "seq", "21"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "late", "21", "2"), "%s", r.out);
    result_free(&r);

    /* Before the snapshot, replay starts at sequence 1. */
    r = EVDUMP("state", dir, "agent", "--at", "10");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(HAS_ROW(r.out, "replayed", "from", "seq", "1,", "10"), "%s",
              r.out);
    result_free(&r);

    /* The JSON form says nothing about where replay began. */
    want = library_state("agent", 0, 0);
    r = EVDUMP("state", dir, "agent", "--json");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.out_len, strlen(want) + 1);
    cr_assert_eq(memcmp(r.out, want, strlen(want)), 0, "%s", r.out);
    result_free(&r);
    free(want);
}

Test(evdump, state_of_a_history_breaking_a_rule_shows_it_and_exits_1)
{
    char *want, *line;
    result r;

    /* Three step_completed events of a step that never started. */
    make_run("u", 3);
    r = EVDUMP("state", dir, "u");
    cr_assert_eq(r.status, 1, "stderr: %s", r.err);
    cr_assert(HAS_ROW(r.out, "last", "seq", "4"), "%s", r.out);
    cr_assert(HAS_ROW(r.out, "status", "running"), "%s", r.out);
    /* one line per violation, then a summary */
    cr_assert_eq(count_lines(r.err), 4, "stderr: %s", r.err);
    for (size_t i = 0; i < 3; i++) {
        char seq[64];
        line = nth_line(r.err, i);
        snprintf(seq, sizeof(seq),
                 "evdump: u: seq %zu: step-not-started: ", i + 2);
        cr_assert_eq(strncmp(line, seq, strlen(seq)), 0, "%s", line);
        free(line);
    }
    line = nth_line(r.err, 3);
    cr_assert(strncmp(line, "evdump: ", 8) == 0 && strstr(line, "3 replay"),
              "%s", line);
    free(line);
    result_free(&r);

    want = library_state("u", 0, 1);
    r = EVDUMP("state", dir, "u", "--json");
    cr_assert_eq(r.status, 1);
    cr_assert_eq(r.out_len, strlen(want) + 1, "%s\n%s", r.out, want);
    cr_assert_eq(memcmp(r.out, want, strlen(want)), 0);
    result_free(&r);
    free(want);

    /* As of sequence 1, nothing is broken yet. */
    r = EVDUMP("state", dir, "u", "--at", "1");
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_eq(r.err_len, 0);
    result_free(&r);
}

Test(evdump, state_of_damage_or_a_missing_execution_exits_3)
{
    char *file, *p;
    size_t len;
    long long off;
    result r;

    make_agent("agent");
    file = read_log("agent", &len);
    off = line_offset(file, 8);
    p = log_path("agent");
    cr_assert_eq(tu_flip_bit(p, off + 40, 2), 0);
    r = EVDUMP("state", dir, "agent");
    cr_assert_eq(r.status, 3, "stderr: %s", r.err);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "agent") && strstr(r.err, "sequence 8"), "%s",
              r.err);
    result_free(&r);
    free(p);
    free(file);

    r = EVDUMP("state", dir, "nope");
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    cr_assert(strstr(r.err, "nope"), "%s", r.err);
    cr_assert_eq(r.out_len, 0);
    result_free(&r);
}

Test(evdump, state_usage_errors_exit_2_including_a_bad_at)
{
    const char *const *cases[] = {
        (const char *const[]){"state", NULL},
        (const char *const[]){"state", dir, NULL},
        (const char *const[]){"state", dir, "c", "extra", NULL},
        (const char *const[]){"state", dir, "c", "--at", NULL},
        (const char *const[]){"state", dir, "c", "--at", "0", NULL},
        (const char *const[]){"state", dir, "c", "--at", "x", NULL},
        (const char *const[]){"state", dir, "c", "--at", "-2", NULL},
        (const char *const[]){"state", dir, "c", "--at", "2", NULL},
        (const char *const[]){"state", dir, "c", "--json", "--at", "99", NULL},
        (const char *const[]){"state", dir, "c", "--bogus", NULL},
    };

    cr_assert_eq(tu_create(st, "c"), 0); /* one event */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result r = run_args(NULL, cases[i]);

        cr_assert_eq(r.status, 2, "case %zu: status %d, stderr: %s", i,
                     r.status, r.err);
        assert_one_error_line(&r);
        cr_assert(strstr(r.err, "state --help"), "case %zu: %s", i, r.err);
        cr_assert_eq(r.out_len, 0, "case %zu: %s", i, r.out);
        result_free(&r);
    }
}

Test(evdump, state_help_documents_at_json_and_the_tolerant_exit_1)
{
    result r;

    r = EVDUMP("state", "--help");
    cr_assert_eq(r.status, 0);
    cr_assert_eq(strncmp(r.out, "Usage: evdump state STORE EXEC", 30), 0, "%s",
                 r.out);
    cr_assert(strstr(r.out, "--at SEQ") && strstr(r.out, "--json") &&
                  strstr(r.out, "from snapshot at") &&
                  strstr(r.out, "tolerantly") && strstr(r.out, "status is 1"),
              "%s", r.out);
    cr_assert(strstr(r.out, "Exit status:"), "%s", r.out);
    result_free(&r);
    r = EVDUMP("--help");
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "evdump state STORE EXEC") &&
                  strstr(r.out, "  state "),
              "%s", r.out);
    result_free(&r);
}

Test(evdump, show_says_in_words_who_took_over_and_what_ran_again)
{
    evs_log *l;
    evs_event b[3];
    result r;
    char *row;

    cr_assert_eq(tu_create(st, "tk"), 0);
    l = writer("tk");
    b[0] = tu_event(EVS_EV_STEP_STARTED, "a", "{\"attempt\":1}");
    b[1] = tu_event(EVS_EV_EXECUTION_TAKEN_OVER, NULL,
                    "{\"runner\":\"R2\",\"host\":\"h2\",\"pid\":42,"
                    "\"from_seq\":2,\"previous_runner\":\"R1\"}");
    b[2] = tu_event(EVS_EV_STEP_REDISPATCHED, "a",
                    "{\"attempt\":1,\"idempotency_key\":\"tk/main/a/-1\","
                    "\"takeover_seq\":3}");
    cr_assert_eq(evs_log_append(l, b, 1, evs_log_last_seq(l), NULL), 0);
    cr_assert_eq(evs_log_append(l, b + 1, 2, evs_log_last_seq(l), NULL), 0);
    evs_log_close(l);
    r = EVDUMP("show", dir, "tk");
    cr_assert_eq(r.status, 0, "%s", r.err);
    row = nth_line(r.out, 2);
    cr_assert(strstr(row, "execution_taken_over") &&
                  strstr(row, "runner R2 (host h2, pid 42) took over after "
                              "seq 2 from runner R1"),
              "row: %s", row);
    free(row);
    row = nth_line(r.out, 3);
    cr_assert(strstr(row, "step_redispatched") && strstr(row, " a ") &&
                  strstr(row, "attempt 1 dispatched again by the takeover at "
                              "seq 3, key tk/main/a/-1"),
              "row: %s", row);
    free(row);
    result_free(&r);
    /* The log's own lines, unchanged, with --json. */
    r = EVDUMP("show", "--json", dir, "tk");
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "\"from_seq\":2"), "%s", r.out);
    result_free(&r);
}

/* `show --json` of `id` in store `s`: the lines as the store has them. */
static char *show_json(const char *s, const char *id)
{
    result r = EVDUMP("show", s, id, "--json");
    char *out;

    cr_assert_eq(r.status, 0, "%s: %s", s, r.err);
    out = strdup(r.out);
    result_free(&r);
    return out;
}

Test(evdump, copy_between_backends_keeps_every_line_byte_for_byte)
{
    TU_FILE_ONLY("copies from a store of files to SQLite and back");
    char *bdir = tu_tmpdir("evdump-copy"), sq[4200], *a, *b;
    evs_store *back;
    evs_snapshot *sn;
    evs_log *l;
    result r;

    /* Appends of one and of several events, a long history, a status. */
    make_exec("one", "wf", "completed", 1);
    cr_assert_eq(tu_create(st, "mixed"), 0);
    l = writer("mixed");
    append_mixed(l);
    cr_assert_eq(tu_append_n(l, 1500), 0);
    evs_log_close(l);
    snprintf(sq, sizeof(sq), "sqlite:%s/copy.db", bdir);

    r = EVDUMP("copy", dir, sq);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "copied mixed: 1508 events") &&
                  strstr(r.out, "2 copied, 0 failed"),
              "%s", r.out);
    result_free(&r);
    {
        char *fb = tu_join(bdir, "files");
        r = EVDUMP("copy", sq, fb, "mixed", "one");
        cr_assert_eq(r.status, 0, "%s", r.err);
        result_free(&r);
        for (int i = 0; i < 2; i++) {
            const char *id = i ? "one" : "mixed";
            a = show_json(dir, id);
            b = show_json(fb, id);
            cr_assert_str_eq(a, b, "%s differs after two copies", id);
            free(b);
            b = show_json(sq, id);
            cr_assert_str_eq(a, b, "%s differs in SQLite", id);
            free(a);
            free(b);
        }
        back = tu_open_store(fb, NULL);
        cr_assert_not_null(back);
        cr_assert_eq(evs_snapshot_load(back, "one", 3, &sn, NULL), 0);
        cr_assert(sn->status.len == 9 &&
                  memcmp(sn->status.ptr, "completed", 9) == 0);
        cr_assert(sn->workflow_name.len == 2 &&
                  memcmp(sn->workflow_name.ptr, "wf", 2) == 0);
        evs_snapshot_free(sn);
        evs_store_close(back);

        /* Already there: refused, and what is there is left alone. */
        a = show_json(fb, "one");
        r = EVDUMP("copy", dir, fb, "one");
        cr_assert_eq(r.status, 3);
        cr_assert(strstr(r.err, "one: already in"), "%s", r.err);
        result_free(&r);
        b = show_json(fb, "one");
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
        free(fb);
    }
    /* A source that is no store, and a bad id. */
    r = EVDUMP("copy", "/nonexistent/store", sq);
    cr_assert_eq(r.status, 3);
    assert_one_error_line(&r);
    result_free(&r);
    r = EVDUMP("copy", dir, sq, "../x");
    cr_assert_eq(r.status, 2);
    result_free(&r);
    tu_rmtree_free(bdir);
}

Test(evdump, copy_of_a_damaged_log_leaves_nothing_behind)
{
    TU_FILE_ONLY("damages a log file");
    char *bdir = tu_tmpdir("evdump-copy"), *lp, *dst;
    evs_store *d;
    evs_log *l;
    size_t len;
    char *buf;
    result r;

    cr_assert_eq(tu_create(st, "hurt"), 0);
    l = writer("hurt");
    cr_assert_eq(tu_append_n(l, 3000), 0);
    evs_log_close(l);
    /* A flipped bit far into the log: the first appends are read and
     * written before the damage is met. */
    buf = read_log("hurt", &len);
    lp = log_path("hurt");
    cr_assert_eq(tu_flip_bit(lp, (long long)len - 5000, 2), 0);
    dst = tu_join(bdir, "dst");
    r = EVDUMP("copy", dir, dst, "hurt");
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.out, "0 copied, 1 failed"), "%s", r.out);
    cr_assert(strstr(r.err, "incomplete copy was deleted"), "%s", r.err);
    result_free(&r);
    d = tu_open_store(dst, NULL);
    cr_assert_not_null(d);
    cr_assert_not(evs_exec_exists(d, "hurt", 4), "a partial copy is left");
    evs_store_close(d);
    free(buf);
    free(lp);
    free(dst);
    tu_rmtree_free(bdir);
}

Test(evdump, copy_rebuilds_a_snapshot_the_source_cannot_give)
{
    TU_FILE_ONLY("removes a snapshot file");
    char *bdir = tu_tmpdir("evdump-copy"), *dst, *sp;
    evs_store *d;
    evs_snapshot *sn;
    uint64_t last;
    evs_log *l;
    result r;

    cr_assert_eq(tu_create(st, "nosnap"), 0);
    l = writer("nosnap");
    append_mixed(l);
    last = evs_log_last_seq(l);
    evs_log_close(l);
    sp = tu_path(dir, "nosnap", "snapshot.json");
    cr_assert_eq(unlink(sp), 0);
    dst = tu_join(bdir, "dst");
    r = EVDUMP("copy", dir, dst, "nosnap");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "rebuilt from its log"), "%s", r.err);
    result_free(&r);
    d = tu_open_store(dst, NULL);
    cr_assert_not_null(d);
    cr_assert_eq(evs_snapshot_load(d, "nosnap", 6, &sn, NULL), 0);
    cr_assert_eq(sn->last_event_seq, last, "the snapshot is the log's end");
    cr_assert(sn->status.len == 9 && memcmp(sn->status.ptr, "completed", 9) == 0,
              "%.*s", (int)sn->status.len, sn->status.ptr);
    evs_snapshot_free(sn);
    evs_store_close(d);
    free(sp);
    free(dst);
    tu_rmtree_free(bdir);
}
