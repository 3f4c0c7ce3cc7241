/*
 * testutil.h: helpers shared by the test suites: stores, event builders,
 * recovery checks, seeds and running the tools.
 * The counting and failing allocator (tu_alloc.h) and the file helpers
 * that need no Criterion (tu_file.h) are included here.
 */
#ifndef EVS_TEST_UTIL_H
#define EVS_TEST_UTIL_H

#include "evstore.h"
#include "tu_alloc.h"
#include "tu_file.h"

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

/*
 * Backends (eventstore/BACKENDS.md). The store suites run once on the
 * file backend and once more with EVS_TEST_BACKEND=sqlite (meson suite
 * `sqlite`, tests/meson.build), where a store "in directory DIR" is the
 * database sqlite:DIR/store.db, and once more with
 * EVS_TEST_BACKEND=postgresql (suite `postgresql`, on a private server
 * that scripts/pg-test-server starts for each test program), where it is
 * a schema of its own. Tests name their stores by directory and open
 * them through tu_loc, so each runs on any backend.
 */

/* The backend under test: "file" (default), "sqlite" or "postgresql". */
const char *tu_backend(void);

/* True when the backend under test is the file backend. */
int tu_backend_is_file(void);

/* True when it is PostgreSQL (EVS_TEST_BACKEND=postgresql). */
int tu_backend_is_pg(void);

/* The location of the store kept in directory `dir` for the backend
 * under test: `dir` itself, "sqlite:DIR/store.db", or the test server's
 * URI (EVS_TEST_PG_URI, scripts/pg-test-server) with search_path set to
 * a schema of the directory's own (tu_pg_schema), made when missing. The
 * string lives in a ring of buffers, valid until some 64 later calls. */
const char *tu_loc(const char *dir);

/* The test server's URI (EVS_TEST_PG_URI); asserts it is set. */
const char *tu_pg_uri(void);

/* The PostgreSQL schema of store directory `dir` ("t_" and a hash of its
 * name) in out[0..cap), made in the test server's database if this
 * process has not made it yet. */
void tu_pg_schema(const char *dir, char *out, size_t cap);

/* Runs one SQL command on the database at `uri` (its own connection);
 * asserts it succeeds. */
void tu_pg_exec(const char *uri, const char *sql);

/*
 * A test of the file backend's files themselves (it damages, lists or
 * times the files of a file store, or injects faults through evs_io,
 * which the SQLite backend does not use): on another backend it is
 * skipped with a message saying why, and main.c reports how many were.
 * Call it first in the test. The shared tests are all the others.
 */
#define TU_FILE_ONLY(why)                                                      \
    do {                                                                       \
        if (!tu_backend_is_file())                                             \
            cr_skip_test("file backend only: %s", (why));                      \
    } while (0)

/*
 * The checks that follow in a test are of the file backend's files (what
 * it left on disk); on another backend the test ends here, having checked
 * what came before, which is the behaviour every backend shares.
 */
#define TU_FILE_ONLY_REST()                                                    \
    do {                                                                       \
        if (!tu_backend_is_file())                                             \
            return;                                                            \
    } while (0)

/* Opens the store kept in directory `path` (tu_loc) with default options
 * (and the given io, may be NULL). */
evs_store *tu_open_store(const char *path, const evs_io *io);

/* A suite's fresh store (its .init): *dir made by tu_tmpdir(tag), *st
 * opened there with default options. Asserts it got both. */
void tu_fresh_store(const char *tag, char **dir, evs_store **st);

/* Closes *st and removes *dir (a suite's .fini); both become NULL. */
void tu_drop_store(char **dir, evs_store **st);

/* Entries of directory `path` but ".", ".." and a store's listing cache
 * ".index" (FORMAT.md). Asserts it can read the directory. */
int tu_count_entries(const char *path);
/* True for the names a file store keeps for itself beside its
 * executions (FORMAT.md §1): the listing index and the writers'
 * markers. Counts of a store's entries leave them out. */
int tu_store_own(const char *name);
/* Removes STORE/.index, as an operator does after changing an
 * execution's files by hand: a listing believes a complete index
 * without looking at the executions (FORMAT.md §12), so a test that
 * damages a snapshot and wants the listing to see it says so. */
void tu_forget_index(const char *store);

/* Sleeps `ms` milliseconds, all of them (a signal does not cut it). */
void tu_nap_ms(long ms);

/* The threads of this process (/proc/self/task). */
int tu_thread_count(void);

/* A fresh directory for stores made and removed by the thousand: under
 * the directory in environment variable `env` if set, else on /dev/shm
 * (tmpfs) when there is one, else as tu_tmpdir. Asserts it got one. */
char *tu_scratch_dir(const char *env, const char *tag);

/* "a/b", heap memory. Asserts it got the memory. */
char *tu_join(const char *a, const char *b);

/* `text` with every `mark` in it replaced by `with`, heap memory; *n
 * gets how many were replaced. Asserts it got the memory. */
char *tu_replace(const char *text, const char *mark, const char *with,
                 size_t *n);

/* An event view with the given type, step and data (NUL-terminated). */
evs_event tu_event(const char *type, const char *step, const char *data);

/* Creates execution `id` with one execution_started event. */
int tu_create(evs_store *s, const char *id);

/* A snapshot of workflow "wf" at sequence `seq` with `status`, created
 * at 1700000000000000 µs, the rest empty (`status` must outlive it). */
evs_snapshot tu_snapshot_at(uint64_t seq, const char *status);

/* Appends `n` single-event appends of step events to a writer log.
 * Returns 0 or the first error. */
int tu_append_n(evs_log *l, size_t n);

/* tu_create, then tu_append_n(n) through a writer it closes: execution
 * `id` with 1 + n events. Returns 0 or the first error. */
int tu_make_exec(evs_store *s, const char *id, size_t n);

/* Reads every event of `id` with a cursor; returns the count, or a
 * negative error. */
long tu_count_events(evs_store *s, const char *id);

/* Creates `id` with an execution_started event, then appends two step
 * events in one append, all with fixed ids, times and data: the same
 * bytes on every backend. */
void tu_fill_fixed(evs_store *s, const char *id);

/* The lines of `id`'s log as a reader returns them (heap, *len bytes),
 * asserting the cursor's offsets are a file's and the log's size their
 * sum. */
char *tu_log_lines(evs_store *s, const char *id, size_t *len);

/* An evs_log_scan callback: counts the items that are problems in the
 * size_t that arg points to. */
int tu_count_problems(void *arg, const evs_scan_item *it);

/* Reports a failed check about execution `id` (printf-like): a checker
 * that counts what it finds rather than asserting. */
typedef void tu_fail_fn(void *ctx, const char *id, const char *fmt, va_list ap);

/* The checks after a recovery that left `last` events in execution `id`
 * of store s, whose directory is `dir` (no writer of it open): a scan
 * finds no problem, a second recovery cuts nothing, keeps `last` and
 * leaves every byte of the log as it was, and an event with id `evid`
 * appended then reads back. Each check that fails goes to
 * fail(ctx, id, ...). */
void tu_check_recovered(evs_store *s, const char *dir, const char *id,
                        uint64_t last, const char *evid, tu_fail_fn *fail,
                        void *ctx);

/* Asserts that every directory below `path` is 0700 and every other
 * entry a regular file of mode 0600, lstat'ed (a link is no regular
 * file); adds the directories and files met to *dirs and *files. */
void tu_assert_private_tree(const char *path, int *files, int *dirs);

/* The value of environment variable `name` (strtol, any base), or dflt
 * when it is unset or empty. */
long tu_env_long(const char *name, long dflt);

/* The first seed of a randomised test: environment variable `env` if
 * set, else from the clock and the pid. Prints it to stderr with `what`
 * and how to repeat it. */
uint64_t tu_seed(const char *env, const char *what);

/* Heap memory with the file's content, NUL-terminated, or "" when it
 * cannot be read. Asserts it got the memory. */
char *tu_read_or_empty(const char *path);

/*
 * Running the tools. Meson puts the path of each tool in an environment
 * variable (EVRUN, EVDUMP, EVREPLAY); the helpers take the variable's
 * name and args without the program's name, NULL-terminated. A tool
 * started here stops at its first undefined behaviour under UBSan
 * (UBSAN_OPTIONS halt_on_error=1, unless the caller set UBSAN_OPTIONS),
 * so that it fails the test rather than only printing.
 */

/* Where tu_spawn connects a tool's standard streams. Fields left zero
 * mean /dev/null. */
typedef struct tu_spawn_io {
    const char *in;    /* stdin from this file */
    const char *input; /* or: these bytes (NUL-terminated), through a pipe
                          closed after them; no more than a pipe holds
                          (64 KiB), as they are written before the start */
    const char *out;   /* stdout into this file (created 0600, emptied) */
    const char *err;   /* stderr into this file (likewise) */
    int *out_pipe;     /* or: stdout into a pipe, whose read end goes to
                          *out_pipe for the caller to read and close */
    int *tty;          /* or: all three on a new pseudo-terminal, which
                          is the tool's controlling terminal (it leads a
                          new session); its master end goes to *tty for
                          the caller to talk through and close */
} tu_spawn_io;

/* Starts the tool in environment variable `bin_env` with args and the
 * streams io says (NULL: all /dev/null). Asserts it started. The caller
 * reaps it (tu_wait_exit). */
pid_t tu_spawn(const char *bin_env, const tu_spawn_io *io,
               const char *const *args);

/* tu_spawn with stdin from /dev/null, stdout and stderr into dir/TAG.out
 * and dir/TAG.err. */
pid_t tu_spawn_tool(const char *bin_env, const char *dir, const char *tag,
                    const char *const *args);

/* Waits for pid: its exit status, or 128 + the signal that killed it. */
int tu_wait_exit(pid_t pid);

/* A finished tool: how it ended (as tu_wait_exit) and all it wrote to
 * stdout and stderr ("" for nothing), heap memory for tu_result_free. */
typedef struct tu_result {
    int status;
    char *out;
    char *err;
} tu_result;

/* Runs a tool to its end: tu_spawn_tool(bin_env, dir, tag, args), then
 * reads back dir/TAG.out and dir/TAG.err. */
tu_result tu_run_tool(const char *bin_env, const char *dir, const char *tag,
                      const char *const *args);

/* Frees what a tu_result holds and empties it. */
void tu_result_free(tu_result *r);

#endif
