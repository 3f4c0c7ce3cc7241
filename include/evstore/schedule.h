/*
 * evstore/schedule.h: schedules, which start an execution of a workflow
 * definition at the times a cron expression or a fixed interval gives.
 * formats/SCHEDULES.md is the specification (the document, the file on
 * disk, the state, the rules for time zones and overlaps); this header
 * is the API.
 *
 * The API follows the layers (docs/ARCHITECTURE.md §1):
 *  - formats: time zones read from TZif bytes, cron expressions and their
 *    next fire times, the schedule document, its state, and the ids and
 *    inputs of fires. Nothing here touches a store or a file.
 *  - eventstore: loading a zone from the system's tzdata, and keeping
 *    schedules in a store (STORE/.schedules/), each locked while it is
 *    changed.
 *  - orchestrator: adding, firing, triggering, pausing and deleting
 *    schedules: what `evrun schedule` and a runner with
 *    evs_orch_opts.schedule_ms call. Firing creates executions with
 *    evs_exec_create; any runner takes them up.
 *
 * Times are microseconds since the Unix epoch (UTC) unless a name says
 * seconds. Threads: the functions on values are thread-safe for distinct
 * values; the store's functions are as thread-safe as the store.
 */
#ifndef EVSTORE_SCHEDULE_H
#define EVSTORE_SCHEDULE_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Time zones (formats)                                               */
/* ------------------------------------------------------------------ */

/** A time zone: its offsets from UTC and when they change. Opaque. */
typedef struct evs_tz evs_tz;

/** Longest zone name kept ("America/Argentina/ComodRivadavia" fits). */
#define EVS_TZ_NAME_MAX 63

/**
 * Makes zone `name` (NUL-terminated, at most EVS_TZ_NAME_MAX bytes) from
 * the bytes of its TZif file (RFC 8536, versions 1 to 4: the 64-bit data
 * and the footer's POSIX TZ rule, which gives the offsets after the last
 * transition). An empty `tzif` with name "UTC" (or "Etc/UTC", "Z") is
 * UTC, which needs no file. *out (set only on success) is freed with
 * evs_tz_free; memory comes from `alloc` (NULL: the C library).
 * Returns 0, -EINVAL (a name too long or empty), EVS_EPARSE (not a TZif
 * file, or a footer rule this library does not read; *err, which may be
 * NULL, says which with kind "timezone"), -ENOMEM.
 */
EVS_EXTERN int evs_tz_parse(const char *name, evs_span tzif,
                            const evs_allocator *alloc, evs_tz **out,
                            evs_error_info *err);

/** The zone's name, as given. Borrowed from z. */
EVS_EXTERN const char *evs_tz_name(const evs_tz *z);

/** The offset from UTC, in seconds, in force at `t_s` (seconds since
 *  the epoch): local time is t_s plus it. */
EVS_EXTERN int32_t evs_tz_offset(const evs_tz *z, int64_t t_s);

/** Frees a zone. Accepts NULL. */
EVS_EXTERN void evs_tz_free(evs_tz *z);

/* ------------------------------------------------------------------ */
/* Cron expressions (formats)                                         */
/* ------------------------------------------------------------------ */

/**
 * A parsed cron expression: the set of each field as bits (minute 0-59,
 * hour 0-23, day of month 1-31, month 1-12, day of week 0-6 with Sunday
 * 0). A plain value; fill it with evs_cron_parse.
 */
typedef struct evs_cron {
    uint64_t minutes;
    uint32_t hours;
    uint32_t days;   /* bit d for day d */
    uint16_t months; /* bit m for month m */
    uint8_t weekdays;
    uint8_t flags; /* EVS_CRON_* */
} evs_cron;

enum {
    /** The day-of-month field began with '*': the day matches by its
     *  weekday alone (cron's rule, formats/SCHEDULES.md §3). */
    EVS_CRON_DOM_STAR = 1u << 0,
    /** The day-of-week field began with '*'. */
    EVS_CRON_DOW_STAR = 1u << 1,
    /** The hour field was exactly '*': an hour a clock repeats when it
     *  goes back fires twice (SCHEDULES.md §4). */
    EVS_CRON_HOUR_STAR = 1u << 2,
};

/**
 * Parses a cron expression: five fields (minute, hour, day of month,
 * month, day of week) separated by blanks, each a list of `*`, `N`,
 * `N-M`, `*` or `N-M` or `N` followed by `/STEP`, months and weekdays
 * also by their English three-letter names; or one of @yearly
 * (@annually), @monthly, @weekly, @daily (@midnight), @hourly
 * (formats/SCHEDULES.md §3). An expression that can never fire (30
 * February) is refused too. A refusal is EVS_EPARSE with err->offset the
 * byte of `expr` where it goes wrong (0-based), kind "cron" and the
 * reason in msg ("minute 60 is out of range 0-59"). `err` may be NULL.
 */
EVS_EXTERN int evs_cron_parse(evs_span expr, evs_cron *out,
                              evs_error_info *err);

/**
 * The first time after `after_s` (seconds since the epoch; exclusive) at
 * which `c` fires in zone `z` (NULL: UTC), into *next_s. A local time the
 * zone skips (a clock that goes forward) fires once, at the first instant
 * after the gap; a local time it repeats (a clock that goes back) fires
 * once, at its first occurrence, unless the hour field is `*`
 * (SCHEDULES.md §4). Returns 0, or -ERANGE when there is no fire before
 * the year 9999.
 */
EVS_EXTERN int evs_cron_next(const evs_cron *c, const evs_tz *z,
                             int64_t after_s, int64_t *next_s);

/* ------------------------------------------------------------------ */
/* Schedule documents (formats)                                       */
/* ------------------------------------------------------------------ */

/** What a fire does while the execution of the previous fire runs
 *  (Temporal's overlap policies; SCHEDULES.md §5). */
typedef enum evs_overlap {
    EVS_OVERLAP_SKIP = 0,        /* "skip" (default): this fire is skipped */
    EVS_OVERLAP_BUFFER_ONE,      /* "buffer_one": it starts once the
                                    previous ends; one is kept, later ones
                                    are dropped */
    EVS_OVERLAP_ALLOW_ALL,       /* "allow_all": it starts at once */
    EVS_OVERLAP_CANCEL_OTHER,    /* "cancel_other": the previous is asked
                                    to end (a terminate request); this one
                                    starts once it has ended */
    EVS_OVERLAP_TERMINATE_OTHER, /* "terminate_other": the previous is
                                    asked to end, and this one starts at
                                    once */
} evs_overlap;

/** Name of a policy ("skip", ...); "unknown" out of range. Static. */
EVS_EXTERN const char *evs_overlap_name(evs_overlap o);
/** Sets *out to the policy named `name`. Returns 0 or -EINVAL. */
EVS_EXTERN int evs_overlap_parse(const char *name, evs_overlap *out);

/** Longest schedule name: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`. */
#define EVS_SCHED_NAME_MAX 64

/**
 * A schedule document, parsed (SCHEDULES.md §2). Spans point into the
 * text given to evs_sched_spec_parse, which must outlive the value.
 */
typedef struct evs_sched_spec {
    char name[EVS_SCHED_NAME_MAX + 1];
    int has_cron;                       /* 1: `cron`; 0: `interval_ms` */
    evs_cron cron;                      /* `cron` */
    evs_span cron_text;                 /* its text, as written */
    char timezone[EVS_TZ_NAME_MAX + 1]; /* `timezone`; default "UTC" */
    int64_t interval_ms;                /* `interval_ms`: whole seconds */
    int64_t offset_ms;                  /* `offset_ms`, below interval_ms */
    evs_overlap overlap;                /* `overlap`; default skip */
    int64_t catchup_window_ms;          /* `catchup_window_ms`; default one
                                      hour, at least 1000 */
    int64_t jitter_ms;                  /* `jitter_ms`; default 0 */
    int paused;                         /* `paused`: added paused */
    evs_span note;                      /* `note`: a JSON string, or empty */
    evs_span definition;                /* `definition`: the workflow, JSON */
    evs_span inputs;                    /* `inputs`: a template; empty: {} */
} evs_sched_spec;

/**
 * Parses and checks a schedule document: a JSON object with the members
 * SCHEDULES.md §2 lists and no others. The workflow definition inside is
 * only checked to be an object here (evs_sched_add parses it). A refusal
 * is EVS_EPARSE with kind "schedule" and the reason in err->msg; a bad
 * cron expression is described as evs_cron_parse does (kind "cron"), its
 * offset counted in the expression. Returns 0, EVS_EPARSE.
 */
EVS_EXTERN int evs_sched_spec_parse(evs_span doc, evs_sched_spec *out,
                                    evs_error_info *err);

/**
 * The first nominal fire of `s` after `after_us` (exclusive), into
 * *fire_us: the next time the cron expression gives in zone `z` (which
 * must be the spec's zone; NULL: UTC), or the next multiple of the
 * interval past the epoch, plus its offset. Fires are whole seconds.
 * Returns 0 or -ERANGE.
 */
EVS_EXTERN int evs_sched_next(const evs_sched_spec *s, const evs_tz *z,
                              int64_t after_us, int64_t *fire_us);

/** The delay of fire `fire_us` of schedule `s`, in [0, jitter_ms): the
 *  same for every runner and every look (SCHEDULES.md §6). */
EVS_EXTERN int64_t evs_sched_jitter_ms(const evs_sched_spec *s,
                                       int64_t fire_us);

/**
 * The id of the execution that fire `fire_us` of schedule `name` starts:
 * "<name>-YYYYMMDDTHHMMSSZ" (UTC), with "-manual" after it for a fire
 * triggered by hand. Written NUL-terminated to out. Returns 0, or
 * -EINVAL (not a schedule name, or a time outside years 0-9999).
 */
EVS_EXTERN int evs_sched_exec_id(const char *name, int64_t fire_us, int manual,
                                 char out[EVS_ID_MAX + 1]);

/**
 * Renders the inputs of one fire: the spec's `inputs` template (WORKFLOWS.md
 * §7) with `${schedule.name}`, `${schedule.time}` (the nominal fire time,
 * RFC 3339 UTC), `${schedule.local_time}` (the same in the zone `z`, with
 * its offset), `${schedule.timezone}` and `${schedule.manual}`. *out
 * (compact JSON and a NUL, from `alloc`; free with evs_free) is set only
 * on success. Returns 0, or what evs_wf_render returns.
 */
EVS_EXTERN int evs_sched_render_inputs(const evs_sched_spec *s, const evs_tz *z,
                                       int64_t fire_us, int manual,
                                       const evs_allocator *alloc, char **out,
                                       size_t *out_len, evs_error_info *err);

/* ------------------------------------------------------------------ */
/* Schedule state (formats)                                           */
/* ------------------------------------------------------------------ */

/** What became of one fire (SCHEDULES.md §5). */
typedef enum evs_fire_result {
    EVS_FIRE_STARTED = 0, /* its execution was created */
    EVS_FIRE_EXISTED,     /* its execution was there already (another
                             runner, or this one before a crash) */
    EVS_FIRE_SKIPPED,     /* skipped: the previous one runs */
    EVS_FIRE_BUFFERED,    /* waits for the previous one to end */
    EVS_FIRE_DROPPED,     /* buffer_one: one was waiting already */
    EVS_FIRE_MISSED,      /* older than the catch-up window */
    EVS_FIRE_FAILED,      /* its execution could not be created */
} evs_fire_result;

/** Name of a result ("started", ...); "unknown" out of range. Static. */
EVS_EXTERN const char *evs_fire_result_name(evs_fire_result r);

/** One fire, as the state remembers it. */
typedef struct evs_sched_action {
    int64_t fire_us; /* nominal fire time */
    int64_t at_us;   /* when it was decided */
    evs_fire_result result;
    int manual;                   /* triggered by hand */
    char exec_id[EVS_ID_MAX + 1]; /* started, existed, failed: its id */
} evs_sched_action;

/** How many recent fires the state keeps. */
#define EVS_SCHED_RECENT 10

/**
 * What a schedule has done: the state its file keeps beside the
 * document (SCHEDULES.md §2.2). A plain value.
 */
typedef struct evs_sched_state {
    int64_t since_us; /* fires after this only: added or unpaused */
    int64_t done_us;  /* every fire at or before it is decided */
    int paused;
    char note[256];      /* why it was paused, as the pause gave it */
    int64_t buffered_us; /* a fire that waits; 0: none */
    int buffered_manual;
    char last_exec[EVS_ID_MAX + 1]; /* the execution last started; "" */
    uint64_t started, skipped, missed;
    evs_sched_action recent[EVS_SCHED_RECENT]; /* oldest first */
    size_t nrecent;
} evs_sched_state;

/** Parses a state as evs_sched_state_write wrote it. Returns 0 or
 *  EVS_EPARSE (not such a state). */
EVS_EXTERN int evs_sched_state_parse(evs_span json, evs_sched_state *out);

/** Writes st as one compact JSON object: *out (a NUL after it, from
 *  `alloc`; free with evs_free). Returns 0 or -ENOMEM. */
EVS_EXTERN int evs_sched_state_write(const evs_sched_state *st,
                                     const evs_allocator *alloc, char **out,
                                     size_t *out_len);

/** Appends an action to st->recent, dropping the oldest when full. */
EVS_EXTERN void evs_sched_state_note(evs_sched_state *st,
                                     const evs_sched_action *a);

/* ------------------------------------------------------------------ */
/* Zones and schedules in a store (eventstore)                         */
/* ------------------------------------------------------------------ */

/**
 * Loads zone `name` ("Europe/Berlin") from the system's tzdata: the
 * directory in the environment variable TZDIR if set, else
 * /usr/share/zoneinfo, read through the store's I/O table. "UTC",
 * "Etc/UTC" and "Z" need no file. A name must be relative, of
 * `[A-Za-z0-9_+-]` words joined by '/', none of them "." or "..".
 * Returns 0, -EINVAL (not such a name), -ENOENT (no such zone; err
 * says where it was looked for), or what evs_tz_parse returns.
 */
EVS_EXTERN int evs_tz_load(evs_store *s, const char *name, evs_tz **out,
                           evs_error_info *err);

/** A schedule kept in a store, open: read, or locked to change it. */
typedef struct evs_schedule evs_schedule;

/* Schedules are kept by every backend (eventstore/BACKENDS.md): files in
 * STORE/.schedules with an OFD lock per schedule, or a row of a
 * `schedules` table, locked by an OFD lock (SQLite) or a lease with a
 * fencing token (PostgreSQL). Each keeps the same checksummed line. A
 * backend that keeps none returns -ENOTSUP from evs_schedule_create,
 * evs_schedule_open and evs_schedule_list. */

enum {
    /** Take the schedule's lock (fail with EVS_ELOCKED if another
     *  holds it). Without it the schedule is only read. */
    EVS_SCHEDULE_LOCK = 1u << 0,
    /** With EVS_SCHEDULE_LOCK: wait for the lock. */
    EVS_SCHEDULE_WAIT = 1u << 1,
};

/**
 * Adds schedule `name` to the store with document `spec` and state
 * `state` (both JSON, kept as given, compact), durably and only if no
 * schedule has the name: on files, written to a temporary file, fsynced,
 * linked under its name with RENAME_NOREPLACE, then the directory
 * fsynced; on a database, one synced insert. Returns 0, -EEXIST, -EINVAL
 * (not a schedule name; not JSON), EVS_ETOOBIG (over 16 MiB), -ENOTSUP
 * (the backend keeps no schedules) or -errno.
 */
EVS_EXTERN int evs_schedule_create(evs_store *s, const char *name,
                                   evs_span spec, evs_span state);

/**
 * Opens schedule `name`: reads and checks its line (checksum and
 * framing). With EVS_SCHEDULE_LOCK, holds its lock until close, which
 * every change takes: an OFD lock on files and SQLite, so a killed holder
 * leaves none; on PostgreSQL a lease of the store's lease_ms, renewed by
 * each save, which a killed holder keeps until it runs out.
 * *out is set only on success. Returns 0, -ENOENT, -EINVAL (not a
 * schedule name, or bad flags), EVS_ELOCKED, EVS_ECORRUPT, -ENOTSUP,
 * -ENOMEM or -errno.
 */
EVS_EXTERN int evs_schedule_open(evs_store *s, const char *name, unsigned flags,
                                 evs_schedule **out);

/** The schedule's name, document and state, and when it was last
 *  written. Borrowed until close or the second save after the call (a
 *  save reads the file again and keeps the text read before it). */
EVS_EXTERN const char *evs_schedule_name(const evs_schedule *h);
EVS_EXTERN evs_span evs_schedule_spec(const evs_schedule *h);
EVS_EXTERN evs_span evs_schedule_state(const evs_schedule *h);
EVS_EXTERN int64_t evs_schedule_updated_us(const evs_schedule *h);

/**
 * Replaces the schedule's state (its document stays) atomically and
 * durably: on files, temporary file, fsync, rename, directory fsync; on
 * a database, one synced transaction (syncs skipped under
 * EVS_SYNC_NONE). Needs the lock. Returns 0, EVS_EREADONLY (not locked),
 * -EINVAL (not JSON), -ENOENT (deleted meanwhile), EVS_ELEASE
 * (PostgreSQL: the lease ran out and another took it; nothing written)
 * or -errno.
 */
EVS_EXTERN int evs_schedule_save(evs_schedule *h, evs_span state);

/**
 * Deletes the schedule (on files its file, then its lock file; on a
 * database its row), durably. Needs the lock; the handle is then only to
 * be closed. Executions it started stay. Returns 0, EVS_EREADONLY,
 * EVS_ELEASE (as for a save) or -errno.
 */
EVS_EXTERN int evs_schedule_remove(evs_schedule *h);

/** Closes the handle, dropping its lock. Accepts NULL. */
EVS_EXTERN void evs_schedule_close(evs_schedule *h);

/** The names of a store's schedules, in byte order. */
typedef struct evs_schedule_listing {
    char (*names)[EVS_SCHED_NAME_MAX + 1];
    size_t count;
    /* private */
    const evs_allocator *alloc_;
} evs_schedule_listing;

/** Lists the schedules (none when the store has none). Free *out with
 *  evs_schedule_list_free. Returns 0, -ENOMEM or -errno. */
EVS_EXTERN int evs_schedule_list(evs_store *s, evs_schedule_listing *out);
EVS_EXTERN void evs_schedule_list_free(evs_schedule_listing *l);

/* ------------------------------------------------------------------ */
/* Managing and firing schedules (orchestrator)                       */
/* ------------------------------------------------------------------ */

/**
 * Adds the schedule described by `doc` (SCHEDULES.md §2): the document
 * is parsed, its zone loaded, its definition parsed (evs_wf_parse: the
 * actions are not checked, no runner being known) and its inputs rendered
 * for its next fire and checked against the definition's inputs; then it
 * is kept with a state whose fires start after `now_us`. A refusal
 * describes itself in *err (kind "schedule", "cron", "timezone",
 * "definition", "inputs" or "template"). Returns 0, EVS_EPARSE, -EEXIST,
 * -ENOENT (no such zone), or what evs_schedule_create returns.
 */
EVS_EXTERN int evs_sched_add(evs_store *s, evs_span doc, int64_t now_us,
                             evs_error_info *err);

/** What one look at a schedule did. */
typedef struct evs_sched_fired {
    size_t started;      /* executions created (EVS_FIRE_STARTED) */
    size_t decided;      /* fires decided, whatever became of them */
    int64_t next_due_us; /* when it next has something to do (a fire
                            with its jitter); 0: nothing (paused, or no
                            fire left); now+1 s while a fire waits on a
                            previous execution */
    /* Called with the id of each execution created, on the calling
     * thread; may be NULL. */
    void (*on_start)(void *arg, const char *exec_id);
    void *arg;
} evs_sched_fired;

/**
 * Fires what is due of schedule `name` at `now_us` (the caller's clock:
 * tests give theirs), under its lock (EVS_ELOCKED: another runner looks
 * at it now): fires older than the catch-up window are missed, the
 * others (their jitter passed) are started, skipped, buffered or dropped
 * by the overlap policy, a buffered fire starts once the previous
 * execution has ended, and the state is saved (SCHEDULES.md §5). An
 * execution is created whole with evs_exec_create under the id
 * evs_sched_exec_id gives, so a fire whose execution exists (another
 * runner, or a crash before the state was saved) is taken as started
 * and never started twice. *out (may be NULL) says what it did.
 * Returns 0, EVS_ELOCKED, -ENOENT, EVS_ECORRUPT, EVS_EPARSE (the kept
 * document or state no longer parses) or an I/O error.
 */
EVS_EXTERN int evs_sched_fire_due(evs_store *s, const char *name,
                                  int64_t now_us, evs_sched_fired *out,
                                  evs_error_info *err);

/**
 * Fires schedule `name` now, by hand, as a fire of nominal time `now_us`
 * (its id ends in "-manual"), under `overlap` (-1: the schedule's own
 * policy). Paused or not. *result gets what became of it and exec_id
 * (may be NULL) its execution's id. Waits for the lock. Returns 0,
 * -ENOENT, -EEXIST (a fire triggered in the same second), or what
 * evs_sched_fire_due returns.
 */
EVS_EXTERN int evs_sched_trigger(evs_store *s, const char *name, int64_t now_us,
                                 int overlap, evs_fire_result *result,
                                 char exec_id[EVS_ID_MAX + 1],
                                 evs_error_info *err);

/**
 * Pauses (`paused` 1, with `note`, a reason kept in the state, cut to
 * 255 bytes) or unpauses (0) schedule `name`. While paused nothing
 * fires; fires that fall in the pause are not caught up after it: an
 * unpause at `now_us` starts the schedule's fires after `now_us`.
 * Returns 0, -ENOENT, or what evs_schedule_save returns.
 */
EVS_EXTERN int evs_sched_pause(evs_store *s, const char *name, int paused,
                               const char *note, int64_t now_us);

/** Deletes schedule `name` (waiting for its lock): it fires no more.
 *  Returns 0, -ENOENT, or what evs_schedule_remove returns. */
EVS_EXTERN int evs_sched_delete(evs_store *s, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_SCHEDULE_H */
