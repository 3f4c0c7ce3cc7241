/*
 * testutil.h: helpers shared by the test suites: temporary stores, file
 * surgery (truncate, flip a bit), event builders and running the tools.
 * The counting and failing allocator is in tu_alloc.h, included here.
 */
#ifndef EVS_TEST_UTIL_H
#define EVS_TEST_UTIL_H

#include "evstore.h"
#include "tu_alloc.h"

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

/* Makes a fresh, empty directory (0700) for a test store and returns its
 * path (static storage per call site is not needed: it is heap memory
 * freed by tu_rmtree_free). */
char *tu_tmpdir(const char *tag);

/* Removes a directory tree and frees the path from tu_tmpdir. */
void tu_rmtree_free(char *path);

/* Opens a store with default options (and the given io, may be NULL). */
evs_store *tu_open_store(const char *path, const evs_io *io);

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

/* Path of a file inside an execution: dir/exec/name, heap memory. */
char *tu_path(const char *dir, const char *exec, const char *name);

/* Reads a whole file into heap memory; *len gets its size. NULL if it
 * cannot be read. */
char *tu_read_file(const char *path, size_t *len);

/* Replaces a file's content. Returns 0 or -errno. */
int tu_write_file(const char *path, const void *buf, size_t len);

/* Size of a file, or -1. */
long long tu_file_size(const char *path);

/* Truncates a file to len bytes. */
int tu_truncate(const char *path, long long len);

/* Flips bit `bit` (0-7) of byte `off` in a file. */
int tu_flip_bit(const char *path, long long off, int bit);

/* An event view with the given type, step and data (NUL-terminated). */
evs_event tu_event(const char *type, const char *step, const char *data);

/* Creates execution `id` with one execution_started event. */
int tu_create(evs_store *s, const char *id);

/* Appends `n` single-event appends of step events to a writer log.
 * Returns 0 or the first error. */
int tu_append_n(evs_log *l, size_t n);

/* Reads every event of `id` with a cursor; returns the count, or a
 * negative error. */
long tu_count_events(evs_store *s, const char *id);

/* An evs_log_scan callback: counts the items that are problems in the
 * size_t that arg points to. */
int tu_count_problems(void *arg, const evs_scan_item *it);

/* Reports a failed check about execution `id` (printf-like): a checker
 * that counts what it finds rather than asserting. */
typedef void tu_fail_fn(void *ctx, const char *id, const char *fmt,
                        va_list ap);

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

/* Starts the tool whose path is in environment variable `bin_env`
 * (EVRUN, EVDUMP, ...) with args (NULL-terminated), stdin from /dev/null,
 * stdout and stderr into dir/TAG.out and dir/TAG.err. Asserts it started. */
pid_t tu_spawn_tool(const char *bin_env, const char *dir, const char *tag,
                    const char *const *args);

/* Waits for pid: its exit status, or 128 + the signal that killed it. */
int tu_wait_exit(pid_t pid);

#endif
