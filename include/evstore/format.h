/*
 * evstore/format.h: the event model and the codecs of the on-disk format.
 *
 * formats/FORMAT.md is the normative specification; this header is the
 * API to it. Everything here is pure computation: no I/O, no global state,
 * all functions are thread-safe.
 */
#ifndef EVSTORE_FORMAT_H
#define EVSTORE_FORMAT_H

#include "common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The on-disk format version this library writes and reads. */
#define EVS_FORMAT_VERSION 1

/** Default and hard limits for one line, in bytes, newline included. */
#define EVS_LINE_MAX_DEFAULT ((size_t)16 << 20)
#define EVS_LINE_MAX_LIMIT ((size_t)1 << 30)

/** Length of a UUID string (8-4-4-4-12 hex digits). */
#define EVS_UUID_LEN 36

/** Length of an RFC 3339 timestamp with microseconds, e.g.
 *  "2026-11-22T10:15:30.123456Z". */
#define EVS_TIME_LEN 27

/**
 * The event types of FORMAT.md §6, each one's string once: EVS_EV_<NAME>.
 * Dive's types keep their exact strings; the orchestrator's sit beside
 * them.
 */
#define EVS_EV_EXECUTION_STARTED "execution_started"
#define EVS_EV_PATH_STARTED "path_started"
#define EVS_EV_PATH_BRANCHED "path_branched"
#define EVS_EV_STEP_STARTED "step_started"
#define EVS_EV_STEP_COMPLETED "step_completed"
#define EVS_EV_STEP_FAILED "step_failed"
#define EVS_EV_RETRY_SCHEDULED "retry_scheduled"
#define EVS_EV_STEP_SKIPPED "step_skipped"
#define EVS_EV_EACH_COMPLETED "each_completed"
#define EVS_EV_PATH_COMPLETED "path_completed"
#define EVS_EV_PATH_FAILED "path_failed"
#define EVS_EV_PATH_CANCELLED "path_cancelled"
#define EVS_EV_EXECUTION_COMPLETED "execution_completed"
#define EVS_EV_EXECUTION_FAILED "execution_failed"
#define EVS_EV_EXECUTION_TERMINATED "execution_terminated"
#define EVS_EV_EXECUTION_CONTINUE_AS_NEW "execution_continue_as_new"
#define EVS_EV_EXECUTION_PAUSED "execution_paused"
#define EVS_EV_EXECUTION_RESUMED "execution_resumed"
#define EVS_EV_VARIABLE_SET "variable_set"
#define EVS_EV_SIGNAL_RECEIVED "signal_received"
#define EVS_EV_SIGNAL_CONSUMED "signal_consumed"
#define EVS_EV_WAIT_STARTED "wait_started"
#define EVS_EV_WAIT_ENDED "wait_ended"
#define EVS_EV_TIMER_STARTED "timer_started"
#define EVS_EV_TIMER_FIRED "timer_fired"
#define EVS_EV_TIMER_CANCELLED "timer_cancelled"
#define EVS_EV_VERSION_DECISION "version_decision"
#define EVS_EV_STEP_RESET "step_reset"
#define EVS_EV_DEFINITION_CHANGED "definition_changed"
#define EVS_EV_EXECUTION_TAKEN_OVER "execution_taken_over"
#define EVS_EV_STEP_REDISPATCHED "step_redispatched"
#define EVS_EV_HISTORY_WARNING "history_warning"

/**
 * Every type above, in the order of FORMAT.md §6: X(NAME, dive), where
 * EVS_EV_##NAME is its string and `dive` is 1 for Dive's types. Tables
 * of types (the replayer's dispatch, evs_event_type_is_dive) are made
 * from this list, so a new type is its string above and one line here.
 * (The preprocessor cannot define macros, so the strings stay macros of
 * their own, which callers can use as literals.)
 */
#define EVS_EVENT_TYPE_MAP(X)                                                  \
    X(EXECUTION_STARTED, 1)                                                    \
    X(PATH_STARTED, 1)                                                         \
    X(PATH_BRANCHED, 1)                                                        \
    X(STEP_STARTED, 1)                                                         \
    X(STEP_COMPLETED, 1)                                                       \
    X(STEP_FAILED, 1)                                                          \
    X(RETRY_SCHEDULED, 0)                                                      \
    X(STEP_SKIPPED, 0)                                                         \
    X(EACH_COMPLETED, 0)                                                       \
    X(PATH_COMPLETED, 1)                                                       \
    X(PATH_FAILED, 1)                                                          \
    X(PATH_CANCELLED, 0)                                                       \
    X(EXECUTION_COMPLETED, 1)                                                  \
    X(EXECUTION_FAILED, 1)                                                     \
    X(EXECUTION_TERMINATED, 0)                                                 \
    X(EXECUTION_CONTINUE_AS_NEW, 1)                                            \
    X(EXECUTION_PAUSED, 0)                                                     \
    X(EXECUTION_RESUMED, 0)                                                    \
    X(VARIABLE_SET, 0)                                                         \
    X(SIGNAL_RECEIVED, 1)                                                      \
    X(SIGNAL_CONSUMED, 0)                                                      \
    X(WAIT_STARTED, 0)                                                         \
    X(WAIT_ENDED, 0)                                                           \
    X(TIMER_STARTED, 0)                                                        \
    X(TIMER_FIRED, 0)                                                          \
    X(TIMER_CANCELLED, 0)                                                      \
    X(VERSION_DECISION, 1)                                                     \
    X(STEP_RESET, 0)                                                           \
    X(DEFINITION_CHANGED, 0)                                                   \
    X(EXECUTION_TAKEN_OVER, 0)                                                 \
    X(STEP_REDISPATCHED, 0)                                                     \
    X(HISTORY_WARNING, 0)

/**
 * One event, as a borrowed view. Every span is borrowed from whoever
 * produced the view (a cursor's buffer, a decoded line, the caller).
 *
 * String fields (`id`, `execution_id`, `path_id`, `event_type`,
 * `step_name`) hold the *unescaped* text. `data` holds raw, compact JSON
 * text: any JSON value, "{}" when the event has no data.
 *
 * `timestamp_us` is microseconds since the Unix epoch, UTC.
 * `batch_first`/`batch_count` describe the append the event was written
 * in (see FORMAT.md, "Atomic appends"); decoders fill them in, encoders
 * take them from the caller, and a count of 0 or 1 means "alone".
 */
typedef struct evs_event {
    evs_span id;
    evs_span execution_id;
    evs_span path_id;
    uint64_t sequence;
    int64_t timestamp_us;
    evs_span event_type;
    evs_span step_name;
    evs_span data;
    uint64_t batch_first;
    uint64_t batch_count;
} evs_event;

/**
 * An owned copy of an event: the view plus the memory behind it.
 * Made by evs_event_copy(), freed by evs_event_free().
 */
typedef struct evs_event_owned {
    evs_event ev;
    /* private: one allocation holds every span */
    char *buf_;
    const evs_allocator *alloc_;
} evs_event_owned;

/**
 * Copies every span of `ev` into one allocation owned by `out`.
 * `alloc` may be NULL for the default allocator.
 * Returns 0 or -ENOMEM; on failure *out is left empty and needs no free.
 */
EVS_EXTERN int evs_event_copy(const evs_event *ev, const evs_allocator *alloc,
                              evs_event_owned *out);

/** Frees what evs_event_copy() allocated. Accepts NULL and empty copies. */
EVS_EXTERN void evs_event_free(evs_event_owned *o);

/** True when `type` is one of Dive's event types (EVS_EVENT_TYPE_MAP). */
EVS_EXTERN bool evs_event_type_is_dive(evs_span type);

/** True when `type` ends an execution: execution_completed, _failed,
 *  _terminated or _continue_as_new (FORMAT.md §6). Thread-safe. */
EVS_EXTERN bool evs_event_type_is_terminal(evs_span type);

/* ------------------------------------------------------------------ */
/* Checksums                                                          */
/* ------------------------------------------------------------------ */

/** XXH3-64 of a buffer, the checksum every line and snapshot uses. */
EVS_EXTERN uint64_t evs_checksum(const void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Canonical line codec                                               */
/* ------------------------------------------------------------------ */

/**
 * Upper bound of the encoded size of `ev`, newline included. Exact enough
 * to size a buffer; never smaller than evs_line_encode() needs.
 */
EVS_EXTERN size_t evs_line_encoded_max(const evs_event *ev);

/**
 * Writes `ev` as one canonical, checksummed line (FORMAT.md) into
 * buf[0..cap). The line ends with '\n'. `ev->data` must be valid JSON; it
 * is checked and written without insignificant whitespace in one pass. An
 * empty `data` is written as {}.
 *
 * On success returns 0 and sets *out_len. Returns -EINVAL for an empty
 * id, execution_id or event_type, a zero sequence, invalid UTF-8 in a
 * string field, or `data` that is not compact JSON; -ENOBUFS when cap is
 * too small (nothing useful is left in buf).
 */
EVS_EXTERN int evs_line_encode(const evs_event *ev, char *buf, size_t cap,
                               size_t *out_len);

/** Decoding options for evs_line_decode(). */
enum {
    /** Also accept lines that are not canonical evstore lines: Dive's,
     *  or any JSON object with the event fields in any order (unknown
     *  members ignored, a duplicated event field refused). A line that
     *  starts with {"v": is always held to the canonical rules. Slower:
     *  the line is checked strictly and its fields read with json-c. */
    EVS_DECODE_FOREIGN = 1u << 0,
};

/**
 * Scratch space for decoding. Escaped string fields and foreign lines are
 * decoded into it; the views a decode returns borrow from it and from the
 * line. Initialise with evs_decoder_init(), free with evs_decoder_free().
 * One decoder per thread.
 */
typedef struct evs_decoder {
    char *buf;
    size_t cap;
    const evs_allocator *alloc;
    void *priv; /* json-c state for foreign lines */
    /* private: the last whole second decoded, to skip re-parsing it */
    int64_t ts_secs_;
    char ts_key_[19];
    int ts_valid_;
} evs_decoder;

/**
 * Makes *d an empty decoder whose scratch comes from `alloc` (NULL: the
 * C library's; the allocator must outlive the decoder). Allocates
 * nothing and cannot fail; `d` must not be NULL.
 */
EVS_EXTERN void evs_decoder_init(evs_decoder *d, const evs_allocator *alloc);

/**
 * Frees the decoder's scratch and json-c state, which ends the views
 * that decodes returned, and leaves *d zeroed (evs_decoder_init again to
 * reuse it). Accepts NULL.
 */
EVS_EXTERN void evs_decoder_free(evs_decoder *d);

/**
 * Decodes one line (with or without its trailing '\n') into `ev`.
 *
 * A canonical line is checked in full: the framing, the checksum and the
 * envelope. `data` is not scanned: it is returned as a raw span, which the
 * checksum vouches for. With EVS_DECODE_FOREIGN, a line that is not
 * canonical is parsed instead: its `data` is its own text with the
 * insignificant whitespace removed (numbers and escapes kept byte for
 * byte), `{}` when absent or null; its execution_id may come back empty
 * (the importer fills it in); batch_first/count describe it as alone.
 *
 * The views in `ev` borrow from `line` and from `d`, until the next call
 * with the same decoder.
 *
 * Returns 0, or:
 *  EVS_ECORRUPT  the checksum does not match (info->kind "checksum");
 *  EVS_EPARSE    the line is not a well-formed event (kind "syntax");
 *  EVS_EFORMAT   a valid line of a newer format version;
 *  -ENOMEM.
 * `info` may be NULL; its offset field is left for the caller to fill.
 */
EVS_EXTERN int evs_line_decode(evs_decoder *d, const char *line, size_t len,
                               unsigned flags, evs_event *ev,
                               evs_error_info *info);

/* ------------------------------------------------------------------ */
/* JSON text                                                          */
/* ------------------------------------------------------------------ */

enum {
    /** Write a compact copy (insignificant whitespace removed). */
    EVS_JSON_MINIFY = 1u << 0,
};

/** Maximum nesting depth evs_json_check() accepts. */
#define EVS_JSON_DEPTH_MAX 512

/**
 * Checks that buf[0..len) is exactly one JSON value (RFC 8259): strict
 * syntax, valid UTF-8, no control characters inside strings, nesting at
 * most EVS_JSON_DEPTH_MAX. Leading and trailing whitespace is allowed.
 *
 * With EVS_JSON_MINIFY, also writes the value without insignificant
 * whitespace into out[0..len) (never longer than the input) and sets
 * *out_len; `out` may equal `buf`. Without it, `out` and `out_len` may be
 * NULL.
 *
 * With EVS_JSON_MINIFY and `out` NULL, only *out_len is computed. Minify
 * writes nothing past out[*out_len].
 *
 * Lone surrogate escapes (\ud800) are accepted: RFC 8259 allows them
 * syntactically and evstore never decodes `data`.
 *
 * Returns 0, or EVS_EPARSE with *err_off (if not NULL) set to the offset
 * of the first byte that cannot be part of a valid document: for invalid
 * UTF-8, the lead byte of a byte that can never start a sequence, or the
 * second byte of an overlong form, surrogate or code point above
 * U+10FFFF; for a bad escape, the byte after the backslash. On failure
 * with EVS_JSON_MINIFY the contents of `out` are unspecified (in place,
 * `buf` may be partly rewritten) and *out_len is not set.
 */
EVS_EXTERN int evs_json_check(const char *buf, size_t len, unsigned flags,
                              char *out, size_t *out_len, size_t *err_off);

/**
 * Hashes a JSON value so that formatting does not matter: the value is
 * checked, minified, and its object members sorted by key (recursively)
 * before XXH3-64 is taken. Array order and the text of strings and
 * numbers count as written. Definitions use it to hash each step.
 * Returns 0 and sets *hash, EVS_EPARSE (not valid JSON) or -ENOMEM.
 */
EVS_EXTERN int evs_json_hash(const char *buf, size_t len,
                             const evs_allocator *alloc, uint64_t *hash);

/**
 * Writes `s` as a JSON string literal, quotes included, escaping '"', '\\'
 * and control characters. Returns the number of bytes written, or the
 * number needed when cap is too small (nothing is then written), or
 * (size_t)-1 when `s` is not valid UTF-8 (`buf` may then be partly
 * written).
 */
EVS_EXTERN size_t evs_json_quote(evs_span s, char *buf, size_t cap);

/* ------------------------------------------------------------------ */
/* Identifiers and time                                               */
/* ------------------------------------------------------------------ */

/**
 * True when id[0..len) is a valid execution id:
 * [A-Za-z0-9][A-Za-z0-9._-]{0,127}. An embedded NUL is invalid.
 */
EVS_EXTERN bool evs_id_valid(const char *id, size_t len);

/**
 * Writes a new UUIDv7 (RFC 9562) into out[0..EVS_UUID_LEN] and a NUL at
 * out[EVS_UUID_LEN]. Within one process ids are strictly increasing, also
 * within the same millisecond. Random bits come from getrandom().
 * Returns 0 or -errno. Thread-safe.
 */
EVS_EXTERN int evs_uuid7(char out[EVS_UUID_LEN + 1]);

/** Current wall-clock time in microseconds since the epoch, UTC. */
EVS_EXTERN int64_t evs_now_us(void);

/**
 * Formats `us` (µs since the epoch, UTC) as RFC 3339 with microseconds
 * ("2026-11-22T10:15:30.123456Z") into out[0..EVS_TIME_LEN] plus a NUL.
 * Years 0000..9999 only. Returns 0 or -EINVAL (out of range).
 */
EVS_EXTERN int evs_time_format(int64_t us, char out[EVS_TIME_LEN + 1]);

/**
 * Parses an RFC 3339 timestamp: any number of fraction digits (those past
 * microseconds are truncated), 'Z' or a numeric offset, 'T' or 't' or ' '.
 * A leap second (:60) reads as :59.999999 of the same minute. An offset
 * may carry the result outside the years evs_time_format() accepts.
 * Returns 0 and sets *us, or EVS_EPARSE.
 */
EVS_EXTERN int evs_time_parse(const char *s, size_t len, int64_t *us);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_FORMAT_H */
