/*
 * evstore/settings.h: the settings stored with a store.
 *
 * A store keeps a few settings of its own in STORE/.settings.json, one
 * checksummed line replaced atomically (formats/FORMAT.md §14): how long
 * ended executions are kept (retention, applied by evs_store_gc in
 * evstore/gc.h), where they are archived before deletion, how often a
 * runner applies that policy, and the history limits. Every key has a
 * default; the file holds only the keys that were set.
 *
 * Keys (the value's text form; formats/FORMAT.md §14 is normative):
 *
 *   retention.completed   a duration after the execution ended ("7d",
 *   retention.failed      "90d", "12h", "30m", "45s": a decimal number
 *   retention.terminated  and one unit, s m h or d, at most 36500d) or
 *   retention.continued   "forever" (the default): keep it
 *   retention.archive     an absolute directory to archive executions
 *                         into before deleting them; "" (the default):
 *                         none
 *   gc.interval           how often `evrun serve` applies the policy: a
 *                         duration, or "off" (also "0"); default "1h"
 *   limits.warn_events    history limits: a decimal count of events or
 *   limits.warn_bytes     bytes, 0 for none; defaults 10240 events,
 *   limits.max_events     10485760 bytes (10 MiB), 51200 events,
 *   limits.max_bytes      52428800 bytes (50 MiB). A warning threshold
 *                         may not exceed its hard limit (when both are
 *                         set above 0). evs_store_open applies them to
 *                         the limits its options leave at 0
 *                         (evstore/store.h).
 *
 * Lifecycle: evs_settings_load (or evs_settings_new) -> evs_settings_get
 * / evs_settings_set / evs_settings_duration / evs_settings_count ->
 * evs_settings_save -> evs_settings_free.
 *
 * Threads: an evs_settings belongs to one thread at a time. Loading and
 * saving may run from any thread. Two processes that set keys at the
 * same time each replace the whole file: the last save wins.
 */
#ifndef EVSTORE_SETTINGS_H
#define EVSTORE_SETTINGS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evs_store evs_store;
typedef struct evs_settings evs_settings;

/** The name of the settings file in the store's directory. */
#define EVS_SETTINGS_FILE ".settings.json"

/** The retention key of each ended status, and the others. */
#define EVS_SET_RETENTION_COMPLETED "retention.completed"
#define EVS_SET_RETENTION_FAILED "retention.failed"
#define EVS_SET_RETENTION_TERMINATED "retention.terminated"
#define EVS_SET_RETENTION_CONTINUED "retention.continued"
#define EVS_SET_RETENTION_ARCHIVE "retention.archive"
#define EVS_SET_GC_INTERVAL "gc.interval"
#define EVS_SET_LIMITS_WARN_EVENTS "limits.warn_events"
#define EVS_SET_LIMITS_WARN_BYTES "limits.warn_bytes"
#define EVS_SET_LIMITS_MAX_EVENTS "limits.max_events"
#define EVS_SET_LIMITS_MAX_BYTES "limits.max_bytes"

/** A duration that means "keep for ever" (retention) or "off"
 *  (gc.interval), as evs_settings_duration gives it. */
#define EVS_DURATION_NEVER INT64_MAX

/** One known key: its name, its default's text and one line saying
 *  what it is. All static. */
typedef struct evs_setting_key {
    const char *name;
    const char *default_value;
    const char *doc;
} evs_setting_key;

/**
 * The known keys, in the order the file and `evdump config` list them:
 * the i-th (0-based) or NULL past the last. Thread-safe.
 */
EVS_EXTERN const evs_setting_key *evs_setting_key_at(size_t i);

/**
 * Makes settings with every key at its default, on `alloc` (NULL: the C
 * library's). Returns 0 and sets *out (free it with evs_settings_free),
 * or -ENOMEM, -EINVAL (out is NULL).
 */
EVS_EXTERN int evs_settings_new(const evs_allocator *alloc,
                                evs_settings **out);

/**
 * Reads the settings of store `s`, on the store's allocator. A store
 * without a settings file has every key at its default. A file that is
 * there but damaged (framing, checksum, syntax, a bad value, a key given
 * twice, anything after its one line) is refused with EVS_ECORRUPT, and
 * one written in a newer format (a `v` above 1, or a key this library
 * does not know) with EVS_EFORMAT: never are defaults used in place of
 * a file that cannot be read. `ei` (may be NULL) says what and where
 * (kind "settings").
 * Returns 0 and sets *out (free it with evs_settings_free), or
 * EVS_ECORRUPT, EVS_EFORMAT, -ELOOP / -EINVAL / EVS_EUNSAFE (not a
 * regular file with one link, FORMAT.md §1), -ENOMEM or -errno.
 */
EVS_EXTERN int evs_settings_load(evs_store *s, evs_settings **out,
                                 evs_error_info *ei);

/**
 * The value of `key`: its text as set, or its default's text when unset
 * (*is_set, which may be NULL, tells which). *value is borrowed until
 * the next evs_settings_set or evs_settings_free on `st`.
 * Returns 0, or -ENOENT for a key that is not known (`ei`, may be NULL,
 * names it).
 */
EVS_EXTERN int evs_settings_get(const evs_settings *st, const char *key,
                                const char **value, int *is_set,
                                evs_error_info *ei);

/**
 * Sets `key` to `value` (NUL-terminated), after checking it; NULL unsets
 * it (back to its default). The value is kept in its canonical text
 * ("007d" becomes "7d", "0" of gc.interval becomes "off"). Nothing is
 * written until evs_settings_save. On an error `st` is unchanged.
 * Returns 0, -ENOENT (unknown key), -EINVAL (a bad value; `ei`, may be
 * NULL, says why and what is accepted) or -ENOMEM.
 */
EVS_EXTERN int evs_settings_set(evs_settings *st, const char *key,
                                const char *value, evs_error_info *ei);

/**
 * A duration key (retention.* but archive, gc.interval) in
 * microseconds: EVS_DURATION_NEVER for "forever" and "off".
 * Returns 0, -ENOENT (unknown key) or -EINVAL (not a duration key).
 */
EVS_EXTERN int evs_settings_duration(const evs_settings *st, const char *key,
                                     int64_t *us);

/**
 * A count key (limits.*): 0 for none. Returns 0, -ENOENT (unknown key)
 * or -EINVAL (not a count key).
 */
EVS_EXTERN int evs_settings_count(const evs_settings *st, const char *key,
                                  uint64_t *v);

/**
 * Replaces the store's settings file with `st`, atomically and durably
 * whatever the store's durability mode: a temporary file, fsync, rename
 * over STORE/.settings.json, fsync of the store's directory. A crash
 * leaves the old file or the new one, never a mix. Settings with every
 * key unset still write a file (an empty one, which reads back the
 * same).
 * Returns 0, -ENOMEM or -errno (nothing replaced).
 */
EVS_EXTERN int evs_settings_save(evs_store *s, const evs_settings *st,
                                 evs_error_info *ei);

/** Frees settings. Accepts NULL. */
EVS_EXTERN void evs_settings_free(evs_settings *st);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_SETTINGS_H */
