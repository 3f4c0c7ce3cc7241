/*
 * fuzz.h: what the fuzz targets share. Each target file compiles two
 * ways: with EVS_FUZZING (and -fsanitize=fuzzer) its entry point is
 * LLVMFuzzerTestOneInput and a broken invariant aborts, which libFuzzer
 * records as a crash; without it the entry point is fuzz_<name>() and a
 * broken invariant is a Criterion failure, so that test_fuzz_corpus.c
 * can replay the checked-in corpus and the hostile inputs through the
 * very same code in the normal suite.
 */
#ifndef EVS_FUZZ_H
#define EVS_FUZZ_H

#include "evstore.h"
#include "tu_file.h"

#include <stddef.h>
#include <stdint.h>

#ifdef EVS_FUZZING
#define FUZZ_ENTRY(name)                                                       \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#define FUZZ_CHECK(cond, what)                                                 \
    do {                                                                       \
        if (!(cond))                                                           \
            fuzz_die(__FILE__, __LINE__, #cond, (what));                       \
    } while (0)
void fuzz_die(const char *file, int line, const char *cond, const char *what)
    __attribute__((noreturn));
#else
/* A broken invariant is a (non-fatal) Criterion failure naming the input,
 * and ends that input only: the test goes on with the next one, so one
 * finding never hides another. */
#define FUZZ_CHECK(cond, what)                                                 \
    do {                                                                       \
        if (!(cond))                                                           \
            fuzz_fail(__FILE__, __LINE__, #cond, (what));                      \
    } while (0)
#define FUZZ_ENTRY(name) int fuzz_##name(const uint8_t *data, size_t size)
void fuzz_fail(const char *file, int line, const char *cond, const char *what)
    __attribute__((noreturn));
#endif

/* The entry points as the regression test sees them. */
int fuzz_line(const uint8_t *data, size_t size);
int fuzz_recover(const uint8_t *data, size_t size);
int fuzz_snapshot(const uint8_t *data, size_t size);
int fuzz_workflow(const uint8_t *data, size_t size);
int fuzz_evreplay(const uint8_t *data, size_t size);
int fuzz_state(const uint8_t *data, size_t size);

/* Cleanup of what the targets keep between inputs (temporary stores). */
void fuzz_recover_done(void);
void fuzz_evreplay_done(void);

/* Name of the input being run, for failure messages ("" if unknown). */
const char *fuzz_input_name(void);
void fuzz_set_input_name(const char *name);

/*
 * An input whose first byte is FUZZ_FIX_MARK has every checksum framing
 * in the rest recomputed before use, so that the fuzzer, which cannot
 * forge XXH3, still reaches the code behind the checksum. Inputs without
 * it are used byte for byte.
 */
#define FUZZ_FIX_MARK '\x01'

/*
 * Recomputes, in place, the checksum of every line of buf[0..len) that
 * ends (before its newline, or at the end of the buffer) with the
 * framing tail ,"checksum":"<16 bytes>"}.
 */
void fuzz_fix_lines(char *buf, size_t len);

/*
 * Fixes a snapshot file: the body's checksum, the header's body_len and
 * body_checksum (when the header has them in canonical order), then the
 * header's checksum. Returns a heap buffer (free()) and sets *out_len;
 * NULL only when out of memory.
 */
char *fuzz_fix_snapshot(const char *buf, size_t len, size_t *out_len);

/*
 * True when line[0..len) (newline included) is framed as FORMAT.md §2.1
 * requires and its checksum matches, computed here with libxxhash rather
 * than with the library under test.
 */
int fuzz_line_checksum_ok(const char *line, size_t len);

/* evs_io_posix() with fsync and fdatasync made no-ops: recovery syncs
 * whatever the durability mode, and what is fuzzed here is what it
 * reads and cuts, not what reaches the disk. */
const evs_io *fuzz_io_nosync(void);

/* Two spans hold the same bytes. */
int fuzz_span_eq(evs_span a, evs_span b);

/* Silences stdio's stdout and stderr (not file descriptors 1 and 2, so
 * sanitizer and libFuzzer reports still show) until fuzz_unquiet(). */
void fuzz_quiet(void);
void fuzz_unquiet(void);

#endif
