/*
 * evstore/common.h: error codes, spans, allocator and log hooks shared by
 * every layer of evstore.
 *
 * Conventions, as in libuv and LMDB:
 *  - Functions return int: 0 on success, a negative value on failure.
 *    Operating-system failures are -errno; evstore's own codes are the
 *    EVS_E* values below, which never collide with errno values.
 *  - Constructors are `int evs_x_open(..., evs_x **out)` and set *out only
 *    on success. Destructors return void and accept NULL.
 *  - Buffers are (pointer, length) pairs and never depend on a NUL byte.
 */
#ifndef EVSTORE_COMMON_H
#define EVSTORE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EVS_BUILDING_LIBRARY) && defined(__GNUC__)
#define EVS_EXTERN __attribute__((visibility("default")))
#else
#define EVS_EXTERN
#endif

/**
 * Version of the library (not of the on-disk format) these headers
 * declare. meson.build refuses to configure when they differ from the
 * project's version, so the two move together. A program compares them
 * with evs_version_number() to learn which library it runs with.
 */
#define EVS_VERSION_MAJOR 0
#define EVS_VERSION_MINOR 1
#define EVS_VERSION_PATCH 0
#define EVS_VERSION_STRING "0.1.0"
/** EVS_VERSION_* as one number: major * 10000 + minor * 100 + patch. */
#define EVS_VERSION_NUMBER                                                     \
    (EVS_VERSION_MAJOR * 10000 + EVS_VERSION_MINOR * 100 + EVS_VERSION_PATCH)

/**
 * The version of the library the program runs with, as
 * "MAJOR.MINOR.PATCH" (static; never NULL). Thread-safe.
 */
EVS_EXTERN const char *evs_version(void);

/**
 * The same version as one number, MAJOR * 10000 + MINOR * 100 + PATCH
 * (0.1.0 is 100), for comparisons. Thread-safe.
 */
EVS_EXTERN int evs_version_number(void);

/**
 * evstore's own error codes. X(name, value, message).
 * The values sit far below any errno, so a caller can tell them apart from
 * -errno with a single comparison (code <= EVS_ERRNO_FLOOR).
 */
#define EVS_ERRNO_FLOOR (-30000)
#define EVS_ERRNO_MAP(X)                                                       \
    X(ECORRUPT, -30001, "log or snapshot is damaged")                          \
    X(ETORN, -30002, "torn tail: an append was cut short")                     \
    X(ECONFLICT, -30003, "append does not follow the log's last sequence")     \
    X(ENONDET, -30004, "history does not match the workflow (nondeterminism)") \
    X(EVERSION, -30005, "recorded version is outside the allowed range")       \
    X(EPOISONED, -30006, "handle failed a write or sync; reopen it")           \
    X(EFORMAT, -30007, "written in a newer, unknown format version")           \
    X(EBADID, -30008, "invalid execution id")                                  \
    X(ELOCKED, -30009, "execution is locked by another writer")                \
    X(ETOOBIG, -30010, "line exceeds the maximum line size")                   \
    X(EPARSE, -30011, "malformed JSON or event")                               \
    X(ESTALE, -30012, "snapshot is ahead of its log")                          \
    X(EREADONLY, -30013, "handle was opened for reading only")                 \
    X(EUNSAFE, -30014, "unsafe: writable by others, or a second hard link")    \
    X(EHISTORY, -30015, "history breaks a replay rule")                        \
    X(EFINISHED, -30016, "execution has finished")                             \
    X(ESUSPENDED, -30017, "run is suspended: run it again when it is due")     \
    X(EFAILED, -30018, "step or run failed")                                   \
    X(ELIMIT, -30019, "history would pass its hard limit")                     \
    X(ENOBACKEND, -30020,                                                      \
      "the store's backend is not built into this library")                    \
    X(ELEASE, -30021, "writer's lease expired or was taken over; reopen")

enum {
#define EVS_X_(name, value, msg) EVS_##name = (value),
    EVS_ERRNO_MAP(EVS_X_)
#undef EVS_X_
};

/**
 * Returns a static, human-readable message for any code this library
 * returns, evstore's own or -errno. Never NULL. Thread-safe.
 */
EVS_EXTERN const char *evs_strerror(int code);

/**
 * Returns the symbolic name of a code, such as "EVS_ECORRUPT" or "ENOENT".
 * Never NULL; unknown codes give "EVS_EUNKNOWN". Thread-safe.
 */
EVS_EXTERN const char *evs_err_name(int code);

/** A borrowed byte span. `ptr` may be NULL only when `len` is 0. */
typedef struct evs_span {
    const char *ptr;
    size_t len;
} evs_span;

/** Makes a span of a NUL-terminated string (NULL gives the empty span). */
EVS_EXTERN evs_span evs_span_cstr(const char *s);

/** Execution ids are at most this many bytes. */
#define EVS_ID_MAX 128

/**
 * Detail for a failure: the one struct every function that explains its
 * failures fills in, whatever failed (a file of the store, a history
 * rule, a definition, a template, inputs, a retry). May always be NULL.
 * Only meaningful after the function returned an error.
 *
 * `kind` says what went wrong, as a static string:
 *  - a failure of the store's files: "checksum", "sequence", "syntax",
 *    "torn", "format", "lock", ..., or "" (out of memory, a system call);
 *  - a broken history rule (EVS_EHISTORY): the rule's name as
 *    formats/FORMAT.md §6.1 gives it: "first-event", "sequence",
 *    "after-terminal", "step-not-started", "unknown-path", ...;
 *  - a refused definition (EVS_EPARSE): "definition";
 *  - refused inputs (EVS_EPARSE): "inputs";
 *  - a refused listing filter (EVS_EPARSE, evs_inspect_list): "filter";
 *  - a template that cannot be rendered: "template";
 *  - a retry refused by evs_exec_retry: "retry";
 *  - a definition check (evs_orch_check_definition): "step" or
 *    "version";
 *  - an append refused by a history limit (EVS_ELIMIT): "limit", with
 *    the execution in `execution_id` and the sequence the append would
 *    have begun at in `sequence`.
 */
typedef struct evs_error_info {
    int code;                          /* same value the function returned */
    char execution_id[EVS_ID_MAX + 1]; /* "" when not about one execution */
    uint64_t sequence;                 /* sequence involved, 0 if none */
    uint64_t offset;                   /* byte offset in the file,
                                          UINT64_MAX if none */
    const char *kind;                  /* static, never NULL once filled:
                                          above, or "" */
    char step[128];                    /* the step at fault, for
                                          definitions, templates, inputs,
                                          retries and definition checks;
                                          "" when none */
    char msg[256];                     /* one line, no trailing newline */
} evs_error_info;

/** Clears *info to "no error" (offset UINT64_MAX, empty strings, step
 *  included). NULL: no-op. */
EVS_EXTERN void evs_error_info_clear(evs_error_info *info);

/**
 * Allocator hook. All memory the library allocates goes through the
 * allocator of the handle or call it is for: a store's
 * (evs_store_opts.alloc) serves the store, its logs and everything made
 * on it, an orchestrator included; a replayer's (evs_replay_opts.alloc)
 * serves the replayer; calls that take an allocator use it; and the
 * scratch memory of calls that take no store and no allocator (such as
 * evs_orch_check_definition) comes from the default. The one
 * exception is libuv's own memory (the orchestrator's loop, handles and
 * subprocesses inside libuv), which goes through libuv's allocator
 * (uv_replace_allocator, process-wide).
 * `realloc(ctx, NULL, n)` allocates; `free(ctx, NULL)` is a no-op. The
 * functions must be thread-safe if the handles using them are shared;
 * a store's allocator is called from the threads that use the store and
 * from an orchestrator's (its threadpool flushes, and actions
 * completing from any thread).
 */
typedef struct evs_allocator {
    void *ctx;
    void *(*realloc)(void *ctx, void *ptr, size_t size);
    void (*free)(void *ctx, void *ptr);
} evs_allocator;

/** The default allocator (the C library's). */
EVS_EXTERN const evs_allocator *evs_default_allocator(void);

/**
 * Frees a buffer the library returned (a `char **out` of evs_wf_render,
 * evs_wf_check_inputs, evs_replay_state_json, evs_snapshot_encode, ...)
 * through `alloc`, the allocator it was allocated with, as the function's
 * comment names it (NULL: the C library's). NULL `p`: no-op. Thread-safe
 * as the allocator is.
 */
EVS_EXTERN void evs_free(const evs_allocator *alloc, void *p);

/**
 * Options structs (evs_store_opts, evs_recorder_opts, ...) begin with
 * `size_t size`, the size of the struct as the caller's headers define
 * it, which the struct's `*_opts_init` sets: always call it before
 * setting fields. Fields are only ever added at the end, so the library
 * reads just the first `size` bytes, as SQLite reads an
 * sqlite3_io_methods up to its iVersion: a caller built against older
 * headers gets the defaults for fields it does not know, and a binding
 * that mirrors the struct keeps working as it grows. A caller built
 * against newer headers may pass a larger struct to an older library as
 * long as the fields the library does not know are zero (unset); if one
 * is set, or `size` is smaller than the struct's first version (it was
 * not filled in by `*_opts_init`), the function taking the options
 * returns -EINVAL.
 */

/** Log levels for the optional log hook. */
typedef enum evs_log_level {
    EVS_LOG_ERROR = 0,
    EVS_LOG_WARN = 1,
    EVS_LOG_INFO = 2,
    EVS_LOG_DEBUG = 3
} evs_log_level;

/**
 * One structured log record. The library never prints; it reports
 * noteworthy things (a torn tail cut back, a request it could not read,
 * an execution given up) as records to the log hook. Every pointer is
 * borrowed for the call only. A field that does not apply is NULL, 0 or
 * -1 as its comment says; `msg` is always set, one sentence without a
 * trailing newline, and repeats none of the typed fields it need not.
 */
typedef struct evs_log_record {
    int64_t time_us;       /* when: microseconds since the Unix epoch */
    evs_log_level level;   /* how serious */
    const char *component; /* "store", "orchestrator", "run", ... */
    const char *msg;       /* what happened */
    const char *execution; /* the execution's id, or NULL */
    const char *path;      /* the path's id, or NULL */
    const char *step;      /* the step's name, or NULL */
    uint64_t sequence;     /* the sequence it concerns, or 0 */
    int err;               /* an error code (evs_err_name names it), or 0 */
    int64_t duration_us;   /* how long it took, or -1 */
} evs_log_record;

/**
 * Log hook: receives each record. May be called from any thread that uses
 * the handle (and from an orchestrator's threadpool, or a run's lease
 * renewal thread: run.h), so it must be thread-safe if those are
 * several. evs_log_stderr is a ready one.
 */
typedef void (*evs_log_fn)(void *ctx, const evs_log_record *rec);

/** How evs_log_format writes a record. */
typedef enum evs_log_style {
    /** One JSON object: {"time":"<RFC 3339>","level":"warn",
     * "component":"store","msg":"...","execution":"...",...}; fields that
     * do not apply are left out. */
    EVS_LOG_JSON = 0,
    /** logfmt: time=... level=warn component=store msg="..." execution=...;
     * values with a blank, '"', '=' or a control character are quoted. */
    EVS_LOG_LOGFMT = 1,
    /** For a person: "warning: <msg> (execution X, sequence N, EVS_E...)". */
    EVS_LOG_TEXT = 2
} evs_log_style;

/**
 * Writes `rec` in `style` into buf[0..cap), NUL-terminated and without a
 * trailing newline, cutting it short (still valid JSON or logfmt: the
 * message is shortened first) if it does not fit. Returns the length
 * written, or -EINVAL for a bad style, NULL argument or cap < 256.
 * Thread-safe.
 */
EVS_EXTERN int evs_log_format(const evs_log_record *rec, evs_log_style style,
                              char *buf, size_t cap);

/**
 * A ready log hook: writes each record at or above a level to stderr as one
 * line, in one write(2) (so lines of threads do not interleave). `ctx`
 * points to an evs_log_sink that outlives the handle, or is NULL for JSON
 * lines of warnings and errors.
 */
typedef struct evs_log_sink {
    evs_log_style style;     /* EVS_LOG_JSON, LOGFMT or TEXT */
    evs_log_level max_level; /* records above it (less serious) are dropped */
    const char *prefix;      /* EVS_LOG_TEXT: put before each line, as
                                "evrun: "; may be NULL */
} evs_log_sink;

EVS_EXTERN void evs_log_stderr(void *ctx, const evs_log_record *rec);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_COMMON_H */
