/*
 * tu_file.h: files and directories for tests: a private temporary
 * directory, reading and writing a whole file, and file surgery
 * (truncate, flip a bit). They use no Criterion and assert nothing: each
 * says how it failed, so that the fuzz targets, which also build without
 * Criterion, share them with the suites.
 */
#ifndef EVS_TU_FILE_H
#define EVS_TU_FILE_H

#include <stddef.h>

/* Makes a fresh, empty directory (0700) named evs-TAG-XXXXXX under
 * $EVS_TEST_TMP (meson sets it; /tmp if unset) and returns its path in
 * heap memory, for tu_rmtree_free. NULL on failure. */
char *tu_tmpdir(const char *tag);

/* Removes a directory tree (not following symbolic links) and frees the
 * path from tu_tmpdir. Accepts NULL. */
void tu_rmtree_free(char *path);

/* Path of a file inside an execution: dir/exec/name, heap memory; NULL
 * when out of memory. */
char *tu_path(const char *dir, const char *exec, const char *name);

/* Reads a whole file into heap memory (free()), NUL-terminated past its
 * end; *len gets its size. NULL if it cannot be read. */
char *tu_read_file(const char *path, size_t *len);

/* Replaces a file's content (creating it 0600). Returns 0 or -errno. */
int tu_write_file(const char *path, const void *buf, size_t len);

/* Size of a file, or -1. */
long long tu_file_size(const char *path);

/* Truncates a file to len bytes. Returns 0 or -errno. */
int tu_truncate(const char *path, long long len);

/* Flips bit `bit` (0-7) of byte `off` in a file. Returns 0 or -errno. */
int tu_flip_bit(const char *path, long long off, int bit);

#endif
