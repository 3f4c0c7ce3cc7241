/*
 * state_fields.h: the replayed state's JSON (FORMAT.md, "Replay state"),
 * described once. Each record is a list X(type, key, member) in the order
 * the writer writes its members, from which state_write.c makes the
 * writer and state_read.c the reader (its key table, the fast path that
 * expects the keys in this order, and the dispatch by key). Adding a
 * member is one line here; moving or removing one changes the bytes every
 * snapshot holds, and with them STATE_VERSION.
 *
 * The types of a member and what the two sides make of them:
 *   STR          evs_span: a JSON string, read back unescaped; null reads
 *                as empty
 *   JSON         evs_span: any JSON value, byte for byte; written as null
 *                when empty, and null reads as empty
 *   I64, U64     integers (U64 refuses negative numbers)
 *   U32          uint32_t: written as an integer, refused on reading
 *                outside [0, UINT32_MAX] once the record has been read
 *   BOOL         int: true or false (reading: true is 1, false 0)
 *   EXEC_STATUS, PATH_STATUS, STEP_STATUS
 *                the enums, by their names (evs_*_status_name)
 * and, in STATE_FIELDS only, members that are not the execution's:
 *   VERSION      "v": STATE_VERSION; another value is EVS_EFORMAT
 *   FLAG         an int of the replayer itself (r->member)
 *   FAILED       the object FAILED_FIELDS describes
 *   CONTROL      an evs_control_state member of the execution's: the
 *                object CONTROL_FIELDS describes
 *   RECORDS      an array of the replayer's vector `member`, each element
 *                the record the list of that vector describes
 *   STEPS        RECORDS, for the steps (reading sizes their vector once)
 *   GONE         the array of strings of r->gone
 *   COMPACT      whether the state is compact (r->opts.compact)
 */
#ifndef EVS_STATE_FIELDS_H
#define EVS_STATE_FIELDS_H

/* The version of the state's JSON; snapshots of another are not read. */
#define STATE_VERSION 5

/* The whole state. Its scalar members are the execution's
 * (evs_exec_state). */
#define STATE_FIELDS(X)                                                        \
    X(VERSION, "v", v)                                                         \
    X(EXEC_STATUS, "status", status)                                           \
    X(EXEC_STATUS, "status_before_pause", status_before_pause)                 \
    X(STR, "execution_id", execution_id)                                       \
    X(STR, "workflow_name", workflow_name)                                     \
    X(JSON, "inputs", inputs)                                                  \
    X(JSON, "outputs", outputs)                                                \
    X(JSON, "error", error)                                                    \
    X(JSON, "definition", definition)                                          \
    X(STR, "definition_hash", definition_hash)                                 \
    X(STR, "inputs_hash", inputs_hash)                                         \
    X(JSON, "lineage", lineage)                                                \
    X(STR, "continued_as", continued_as)                                       \
    X(I64, "started_at", started_at_us)                                        \
    X(I64, "ended_at", ended_at_us)                                            \
    X(U64, "last_seq", last_seq)                                               \
    X(U64, "history_warning", history_warning_seq)                             \
    X(FLAG, "terminal", terminal)                                              \
    X(FAILED, "failed", failed)                                                \
    X(U64, "takeovers", takeovers)                                             \
    X(U64, "takeover_seq", takeover_seq)                                       \
    X(STR, "runner", runner)                                                   \
    X(CONTROL, "paused", paused)                                               \
    X(CONTROL, "resumed", resumed)                                             \
    X(CONTROL, "terminated", terminated)                                       \
    X(RECORDS, "paths", paths)                                                 \
    X(STEPS, "steps", steps)                                                   \
    X(RECORDS, "each", eaches)                                                 \
    X(RECORDS, "variables", vars)                                              \
    X(RECORDS, "signals", signals)                                             \
    X(RECORDS, "versions", versions)                                           \
    X(RECORDS, "timers", timers)                                               \
    X(RECORDS, "waits", waits)                                                 \
    X(RECORDS, "names", names)                                                 \
    X(GONE, "consumed_ids", gone)                                              \
    X(COMPACT, "compact", compact)

/* `failed`: the failure point (evs_exec_state). */
#define FAILED_FIELDS(X)                                                       \
    X(STR, "path", failed_path)                                                \
    X(STR, "step", failed_step)                                                \
    X(I64, "iteration", failed_iteration)                                      \
    X(U64, "seq", failed_seq)

/* `paused`, `resumed`, `terminated`: who asked, and why
 * (evs_control_state). */
#define CONTROL_FIELDS(X)                                                      \
    X(U64, "seq", seq)                                                         \
    X(I64, "at", at_us)                                                        \
    X(STR, "by", by)                                                           \
    X(JSON, "reason", reason)                                                  \
    X(STR, "step", step)

/* An element of `paths` (evs_path_state). */
#define PATH_FIELDS(X)                                                         \
    X(STR, "id", id)                                                           \
    X(STR, "parent", parent)                                                   \
    X(PATH_STATUS, "status", status)                                           \
    X(U32, "pending", pending)                                                 \
    X(STR, "current_step", current_step)                                       \
    X(JSON, "error", error)                                                    \
    X(U64, "started_seq", started_seq)                                         \
    X(U64, "ended_seq", ended_seq)                                             \
    X(JSON, "last_output", last_output)                                        \
    X(U64, "last_output_seq", last_output_seq)

/* An element of `steps` (evs_step_state). */
#define STEP_FIELDS(X)                                                         \
    X(STR, "path", path_id)                                                    \
    X(STR, "name", name)                                                       \
    X(I64, "iteration", iteration)                                             \
    X(STEP_STATUS, "status", status)                                           \
    X(U32, "attempts", attempts)                                               \
    X(JSON, "input", input)                                                    \
    X(JSON, "output", output)                                                  \
    X(JSON, "error", error)                                                    \
    X(STR, "stored_variable", stored_variable)                                 \
    X(STR, "step_hash", step_hash)                                             \
    X(STR, "kind", kind)                                                       \
    X(I64, "retry_at", retry_at_us)                                            \
    X(U64, "started_seq", started_seq)                                         \
    X(U64, "ended_seq", ended_seq)                                             \
    X(U32, "dispatches", dispatches)                                           \
    X(JSON, "redispatched_by", redispatched_by)

/* An element of `each` (evs_each_state). */
#define EACH_FIELDS(X)                                                         \
    X(STR, "path", path_id)                                                    \
    X(STR, "name", name)                                                       \
    X(I64, "count", count)                                                     \
    X(I64, "done", done)                                                       \
    X(JSON, "output", output)                                                  \
    X(U64, "ended_seq", ended_seq)

/* An element of `variables` (evs_var_state). */
#define VAR_FIELDS(X)                                                          \
    X(STR, "name", name)                                                       \
    X(JSON, "value", value)                                                    \
    X(U64, "set_seq", set_seq)

/* An element of `signals` (evs_signal_state). */
#define SIGNAL_FIELDS(X)                                                       \
    X(STR, "id", id)                                                           \
    X(STR, "name", name)                                                       \
    X(JSON, "payload", payload)                                                \
    X(U64, "received_seq", received_seq)                                       \
    X(U64, "consumed_seq", consumed_seq)                                       \
    X(STR, "path", consumed_by_path)                                           \
    X(STR, "step", consumed_by_step)

/* An element of `versions` (evs_version_state). */
#define VERSION_FIELDS(X)                                                      \
    X(STR, "change_id", change_id)                                             \
    X(I64, "version", version)                                                 \
    X(I64, "min", min)                                                         \
    X(I64, "max", max)                                                         \
    X(U64, "seq", seq)

/* An element of `timers` (evs_timer_state). */
#define TIMER_FIELDS(X)                                                        \
    X(STR, "id", timer_id)                                                     \
    X(STR, "path", path_id)                                                    \
    X(STR, "step", step)                                                       \
    X(I64, "fire_at", fire_at_us)                                              \
    X(U64, "started_seq", started_seq)                                         \
    X(U64, "fired_seq", fired_seq)                                             \
    X(BOOL, "cancelled", cancelled)

/* An element of `waits` (evs_wait_state). */
#define WAIT_FIELDS(X)                                                         \
    X(STR, "path", path_id)                                                    \
    X(STR, "step", step)                                                       \
    X(STR, "signal", signal)                                                   \
    X(I64, "timeout_at", timeout_at_us)                                        \
    X(U64, "started_seq", started_seq)                                         \
    X(U64, "ended_seq", ended_seq)                                             \
    X(BOOL, "timed_out", timed_out)                                            \
    X(U64, "signal_seq", signal_seq)

/* An element of `names` (evs_stepname_state). */
#define NAME_FIELDS(X)                                                         \
    X(STR, "name", name)                                                       \
    X(STR, "kind", kind)                                                       \
    X(STR, "step_hash", step_hash)                                             \
    X(U64, "started_seq", started_seq)                                         \
    X(JSON, "output", output)                                                  \
    X(U64, "output_seq", output_seq)

#endif /* EVS_STATE_FIELDS_H */
