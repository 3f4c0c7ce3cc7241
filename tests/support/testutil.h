/*
 * testutil.h: helpers shared by the test suites: temporary stores, file
 * surgery (truncate, flip a bit), and event builders.
 */
#ifndef EVS_TEST_UTIL_H
#define EVS_TEST_UTIL_H

#include "evstore.h"

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

/* Starts the tool whose path is in environment variable `bin_env`
 * (EVRUN, EVDUMP, ...) with args (NULL-terminated), stdin from /dev/null,
 * stdout and stderr into dir/TAG.out and dir/TAG.err. Asserts it started. */
pid_t tu_spawn_tool(const char *bin_env, const char *dir, const char *tag,
                    const char *const *args);

/* Waits for pid: its exit status, or 128 + the signal that killed it. */
int tu_wait_exit(pid_t pid);

#endif
