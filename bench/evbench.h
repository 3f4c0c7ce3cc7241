/*
 * evbench.h: what the parts of evbench share: the run context and its
 * options, result rows, statistics, the event generator, the raw-syscall
 * floor helpers and the SQLite peer.
 *
 * evbench measures evstore only through its public API (evstore.h). Every
 * figure is measured beside the physical floor (raw syscalls doing the
 * same I/O) and beside SQLite fed the same events at the same durability,
 * interleaved within each repetition, because this machine is shared and
 * only ratios taken in the same run mean anything. The rows of evstore on
 * its SQLite and PostgreSQL backends sit beside the raw engine doing the
 * same work (peer_sqlite.c, peer_pg.c), in the SQLite column with the
 * peer named in the row.
 */
#ifndef EVBENCH_H
#define EVBENCH_H

#include <evstore.h>
#include <evstore/orchestrator.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define BENCH_MAX_REPEAT 64
#define BENCH_MAX_ROWS 64
#define BENCH_MAX_NOTES 48

/* The three things every scenario measures, in the order each repetition
 * runs them. */
enum { SYS_FLOOR = 0, SYS_EVSTORE = 1, SYS_SQLITE = 2, SYS_N = 3 };

/* How a row's target is judged (for information only). */
enum { MET_NONE = -1, MET_NO = 0, MET_YES = 1 };

/* One line of the final table: one metric of one scenario. */
typedef struct bench_row {
    char scenario[16];
    char metric[80];
    const char *unit;
    int lower_better;
    double v[SYS_N][BENCH_MAX_REPEAT];
    int n[SYS_N];
    char target[96];
    int met;
    /* What the SQLite column holds when it is another peer (NULL: the
     * SQLite peer), e.g. "libpq" for raw PostgreSQL. */
    const char *peer;
} bench_row;

/* Sizes of the data sets and loops, chosen by --quick. */
typedef struct bench_sizes {
    size_t p1_events;     /* single durable appends per repetition */
    size_t p2_batches;    /* 1000-event appends per repetition */
    size_t p3_events;     /* single unsynced appends per repetition */
    size_t log_events;    /* events of the P4/P6 log */
    size_t p6_iters;      /* "last 100 events" reads per repetition */
    size_t p8_execs;      /* executions to list */
    double p8_budget_s;   /* seconds of setup allowed for P8 */
    uint64_t p10_bytes;   /* size of the P10 log */
    size_t conc_per_exec; /* durable appends per execution */
    size_t conc_one;      /* appends to the single execution */
    size_t p9_durable;    /* durable workflows started at once */
    size_t p9_nosync;     /* unsynced workflows started at once */
    size_t p9_latency;    /* executions for the cross-process latency */
    size_t p11_runs;      /* 100-step runs per repetition and durability */
    size_t arch_execs;    /* executions archived and restored */
    size_t arch_events;   /* events of each (and a completion) */
    size_t api_events;    /* events of each long history the API reads */
    size_t api_iters;     /* calls of each kind per repetition */
} bench_sizes;

/* Scenario bits, in the order they run. */
enum {
    SC_P1 = 1u << 0,
    SC_P2 = 1u << 1,
    SC_P3 = 1u << 2,
    SC_P4 = 1u << 3,
    SC_P6 = 1u << 4,
    SC_P8 = 1u << 5,
    SC_P10 = 1u << 6,
    SC_CONC = 1u << 7,
    SC_P5 = 1u << 8,
    SC_P7 = 1u << 9,
    SC_P9 = 1u << 10,
    SC_P11 = 1u << 11,
    SC_ARCH = 1u << 12,
    SC_GC = 1u << 13,
    SC_API = 1u << 14,
    SC_P9DB = 1u << 15,
};

/* The PostgreSQL server of the run (pg_server.c). */
enum { BENCH_PG_UNTRIED = 0, BENCH_PG_READY, BENCH_PG_NOT_RUN };
#define BENCH_PG_SCHEMAS 16

typedef struct bench_pg {
    int state;
    int fsync_on;    /* the server flushes its WAL to the disk */
    char uri[2048];  /* the server's URI, without a schema */
    char dir[1024];  /* the private server's directory; "" if not ours */
    char server[96]; /* which server it is, for the notes */
    char why[320];   /* why the PostgreSQL rows are not run */
    char wanted[64]; /* the scenarios whose PostgreSQL rows did not run */
    char tag[32];    /* evbench_<pid>: the schemas' prefix */
    char schemas[BENCH_PG_SCHEMAS][64]; /* made by this run */
    size_t nschemas;
} bench_pg;

typedef struct bench_ctx {
    /* options */
    int quick;
    int repeat;
    int keep;
    int progress; /* stderr is a terminal */
    uint64_t seed;
    size_t p8_execs_forced; /* --p8-execs, 0 if not given */
    const char *pg_opt;     /* --pg: a server URI or "off"; NULL if not given */
    unsigned scenarios;
    const char *json_path;
    bench_sizes sz;

    /* where the data goes */
    char root[4096];  /* the fresh data directory */
    char store[4200]; /* root/store: the evstore store */
    char floor[4200]; /* root/floor: the floor's files */
    char sql[4200];   /* root/sqlite: SQLite's databases */

    /* what is being done now, for the progress line and errors */
    const char *cur_scenario;

    /* results */
    bench_row rows[BENCH_MAX_ROWS];
    size_t nrows;
    char notes[BENCH_MAX_NOTES][320];
    size_t nnotes;

    /* the shared 1 M-event log of P4 and P6 */
    int log_ready;
    uint64_t log_last_seq;
    uint64_t log_bytes;
    double log_setup_s;

    /* P8's store of executions (root/p8store), kept for api when both
     * run: how many it holds, and how many of them "failed". */
    int list_ready;
    size_t list_made, list_failed;

    bench_pg pg;
} bench_ctx;

/* ------------------------------------------------------------------ */
/* evbench.c: context, errors, progress                               */
/* ------------------------------------------------------------------ */

/* Prints an error for the current scenario and returns -1. */
int bench_fail(bench_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* bench_fail for an evstore return code. */
int bench_evs_fail(bench_ctx *c, int rc, const char *what);
/* Shows a transient progress line on a terminal (stderr); no-op
 * otherwise. Rate-limited, except when `force` is set. */
void bench_progress(bench_ctx *c, int force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bench_progress_clear(bench_ctx *c);
/* Adds a line to the notes printed under the table. */
void bench_note(bench_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Joins dir and name into out (the bench's own paths, never evstore's). */
void bench_path(char *out, size_t cap, const char *dir, const char *name);

/* ------------------------------------------------------------------ */
/* stats.c: clocks, samples and summaries                             */
/* ------------------------------------------------------------------ */

/* Monotonic time in nanoseconds. */
uint64_t bench_now_ns(void);
/* Sorts v[0..n) in place and returns the q-quantile (0 <= q <= 1),
 * interpolated between neighbours; NaN for n == 0. */
double bench_quantile(double *v, size_t n, double q);

typedef struct bench_summary {
    double median, min, max;
    int n;
} bench_summary;

bench_summary bench_summarize(const bench_row *r, int sys);
/* Adds a row to the context and returns it. */
bench_row *bench_row_add(bench_ctx *c, const char *scenario, const char *metric,
                         const char *unit, int lower_better);
void bench_row_push(bench_row *r, int sys, double value);
/* Median of one system's samples, NaN when it has none. */
double bench_row_median(const bench_row *r, int sys);
/* evstore's median over another system's (NaN if either is missing). */
double bench_ratio(const bench_row *r, int sys);
/* Records whether the row's target is met (shown, never enforced). */
void bench_row_judge(bench_row *r, int ok);
/* Sets the target text of a row. */
void bench_row_target(bench_row *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ */
/* data.c: the event generator                                        */
/* ------------------------------------------------------------------ */

typedef struct bench_rng {
    uint64_t s;
} bench_rng;

void bench_rng_seed(bench_rng *r, uint64_t seed);
uint64_t bench_rng_next(bench_rng *r);
/* Uniform in [0, n). */
uint64_t bench_rng_below(bench_rng *r, uint64_t n);

/* A block of memory that never moves once handed out. */
typedef struct bench_arena_blk bench_arena_blk;

/*
 * A batch of generated events with the memory behind them. Events leave
 * execution_id and sequence empty (the store assigns them); ids and
 * timestamps are filled in, so every system gets exactly the same bytes.
 */
typedef struct bench_workload {
    size_t n;
    evs_event *ev;
    bench_arena_blk *blocks;
    uint64_t data_bytes; /* sum of the data spans */
    size_t large;        /* events with a 64 KiB..1 MiB output */
    /* Lines as evstore writes them, for the floor (bench_workload_encode) */
    char *lines;
    size_t *line_off, *line_len;
    uint64_t line_bytes;
} bench_workload;

/* The generator: a fixed-seed stream of agent-like events. */
typedef struct bench_gen {
    bench_rng rng;
    uint64_t count;
    int64_t t_us;
    unsigned large_every; /* one large output in this many; 0 none */
} bench_gen;

void bench_gen_init(bench_gen *g, uint64_t seed);
/* Replaces w's events with the next n events of the stream. Returns 0 or
 * -ENOMEM. */
int bench_gen_fill(bench_gen *g, bench_workload *w, size_t n);
/* bench_gen_init + bench_gen_fill. */
int bench_workload_make(bench_workload *w, uint64_t seed, size_t n);
/*
 * Encodes every event as the exact line evstore writes for it in
 * execution `exec_id`, with sequences from 1, in appends of `batch`
 * events (1: single-event appends). The floor writes these bytes.
 */
int bench_workload_encode(bench_workload *w, const char *exec_id, size_t batch);
/* Percentiles of the encoded line sizes, large outputs left out. */
void bench_workload_line_sizes(const bench_workload *w, size_t *p5, size_t *p50,
                               size_t *p95);
void bench_workload_free(bench_workload *w);

/* Fills a snapshot of an agent-like execution for listing, with its
 * strings in buf[0..cap). Returns its status. */
const char *bench_gen_snapshot(bench_rng *r, evs_snapshot *sn, char *buf,
                               size_t cap, int64_t created_us);

/* ------------------------------------------------------------------ */
/* floor.c: raw-syscall helpers                                       */
/* ------------------------------------------------------------------ */

/* open(2) of dir/name with extra flags; returns the fd or -errno. */
int floor_open(const char *dir, const char *name, int flags);
int floor_write_all(int fd, const void *buf, size_t len);
/* writev(2) of iov[0..n), in as many calls as IOV_MAX and short writes
 * need. */
int floor_writev_all(int fd, const struct iovec *iov, int n);
int floor_fdatasync(int fd);
/* Page-aligned allocation (docs/ARCHITECTURE.md §6), freed with free(). */
void *floor_alloc_aligned(size_t len);
/* Removes a tree (the data directory); best effort. */
void floor_rm_rf(const char *path);
/* Unlinks dir/name; best effort. */
void floor_unlink(const char *dir, const char *name);

/* ------------------------------------------------------------------ */
/* peer_sqlite.c: the SQLite peer                                     */
/* ------------------------------------------------------------------ */

/*
 * Opens (creating) the database `name` in the bench's SQLite directory in
 * WAL mode with the given `synchronous` setting ("FULL", "NORMAL",
 * "OFF"), creates the events table (primary key (execution_id,
 * sequence)) and prepares *ins, the insert of one event. `ins` may be
 * NULL.
 */
int sq_open(bench_ctx *c, const char *name, const char *sync, sqlite3 **db,
            sqlite3_stmt **ins);
/* Inserts one event (steps and resets `ins`). */
int sq_insert(bench_ctx *c, sqlite3_stmt *ins, const char *exec_id,
              uint64_t seq, const evs_event *ev);
int sq_exec(bench_ctx *c, sqlite3 *db, const char *sql);
int sq_prepare(bench_ctx *c, sqlite3 *db, const char *sql, sqlite3_stmt **st);
/* Steps an ordered SELECT of every column of an execution's events,
 * touching every column of every row; *rows and *bytes say how many. */
int sq_read_rows(bench_ctx *c, sqlite3_stmt *st, uint64_t *rows,
                 uint64_t *bytes);
/* Closes a database and its statements; removes its files if `drop`. */
void sq_close(bench_ctx *c, sqlite3 *db, const char *name, int drop);

/* ------------------------------------------------------------------ */
/* pg_server.c: the PostgreSQL server                                 */
/* ------------------------------------------------------------------ */

/*
 * Makes sure the run has a PostgreSQL server (--pg URI, else PGHOST's,
 * else a private one started with scripts/pg-test-server start
 * --durable), once per run, and notes its durability settings. Returns 0,
 * or -1 when the PostgreSQL rows cannot run (c->pg.why says why; the
 * other rows still run, and bench_pg_finish notes it).
 */
int bench_pg_ensure(bench_ctx *c);
/* The location of a fresh schema evbench_<pid>_<name> of the run's
 * server (dropped first if an earlier call made it): the server's URI
 * with options=-csearch_path=SCHEMA. -1 when PostgreSQL does not run
 * (the scenario then skips its PostgreSQL rows) or on an error. */
int bench_pg_loc(bench_ctx *c, const char *name, char *out, size_t cap);
/* bench_pg_ensure for a scenario: 0 when PostgreSQL runs, else 1 after
 * noting that the scenario's PostgreSQL rows did not run. */
int bench_pg_want(bench_ctx *c);
/* bench_pg_want and bench_pg_loc, then the bench's store options
 * (bench_store_open_at) with durability d on that location: 0 with *out
 * open, 1 when PostgreSQL does not run in this run (noted for the
 * scenario; skip its PostgreSQL rows), -1 on an error. */
int bench_pg_open(bench_ctx *c, const char *name, evs_durability d, char *loc,
                  size_t cap, evs_store **out);
/* Drops the run's schemas (on a server not evbench's own, unless --keep),
 * stops a private server, and notes PostgreSQL rows not run. */
void bench_pg_finish(bench_ctx *c);

/* ------------------------------------------------------------------ */
/* peer_pg.c: the raw libpq peer                                      */
/* ------------------------------------------------------------------ */

struct bench_append_job;

/* Binary parameters of one statement, with their own growing buffer. */
typedef struct pq_params {
    int n;
    const char *val[16];
    int len[16], fmt[16];
    size_t off[16]; /* val[i] = buf + off[i], set by pq_params_done */
    char *buf;
    size_t used, cap;
} pq_params;

/* Connects to `loc` with synchronous_commit on (sync) or off; *out. */
int pq_open(bench_ctx *c, const char *loc, int sync, PGconn **out);
/* Runs a statement without parameters (commands only). */
int pq_exec(bench_ctx *c, PGconn *db, const char *sql);
/* Prepares `sql` as statement `name`. */
int pq_prepare(bench_ctx *c, PGconn *db, const char *name, const char *sql);
/* Parameters: an int8, bytes (text or bytea alike), a bytea[] of n
 * elements (element i at base + off[i], len[i] bytes). Each returns 0 or
 * -ENOMEM; pq_params_done points val[] into the buffer. */
void pq_params_reset(pq_params *p);
int pq_param_i64(pq_params *p, int64_t v);
int pq_param_bytes(pq_params *p, const void *b, size_t len);
int pq_param_bytea_array(pq_params *p, const char *base, const size_t *off,
                         const size_t *len, size_t n);
void pq_params_done(pq_params *p);
void pq_params_free(pq_params *p);
/* Runs prepared statement `name` with p, binary results; the result
 * (tuples or command) or NULL after bench_fail. */
PGresult *pq_run(bench_ctx *c, PGconn *db, const char *name,
                 const pq_params *p);
/* Reads every column of every row of a binary result, as a reader would;
 * returns the rows. */
uint64_t pq_read_rows(const PGresult *r, uint64_t *bytes);
/*
 * The raw peer of P1 and P2: the workload's encoded lines inserted into
 * a table (id, seq, line bytea) of the schema at `loc` as execution
 * `exec_no`, `batch` lines per transaction (one INSERT; an unnest of
 * arrays when batch > 1, as the backend's append), at
 * synchronous_commit on (j->sync) or off.
 */
int pq_append(bench_ctx *c, const char *loc, struct bench_append_job *j,
              int64_t exec_no);

/* ------------------------------------------------------------------ */
/* scenarios                                                          */
/* ------------------------------------------------------------------ */

/* scen_append.c */
int scen_p1(bench_ctx *c);
int scen_p2(bench_ctx *c);
int scen_p3(bench_ctx *c);

/* How one system is driven through a workload (P1-P3, and P11's single
 * appends). */
typedef struct bench_append_job {
    bench_workload *w;
    size_t batch; /* events per call (per transaction for SQLite) */
    int sync;     /* durable: fdatasync / EVS_SYNC_FULL / FULL */
    double *lat;  /* per-call latency in µs, or NULL */
    double secs;  /* out: the whole loop */
} bench_append_job;

/* The floor: the workload's encoded lines written to the floor's file
 * `name` (O_APPEND), `batch` per write or writev, fdatasync after each
 * with `sync`; the file is removed after. */
int bench_floor_append(bench_ctx *c, bench_append_job *j, const char *name);
/* evstore: evs_log_append of the workload, `batch` events per call, to a
 * fresh execution `id` of `st` (its durability is the store's), deleted
 * after. */
int bench_evs_append(bench_ctx *c, evs_store *st, bench_append_job *j,
                     const char *id);
/* scen_read.c */
int scen_p4(bench_ctx *c);
int scen_p6(bench_ctx *c);
/* Builds the shared 1 M-event log once per run; removes it. */
int bench_log_ensure(bench_ctx *c);
void bench_log_drop(bench_ctx *c);
/* scen_memory.c */
int scen_p10(bench_ctx *c);
/* scen_list.c */
int scen_p8(bench_ctx *c);
/*
 * Creates up to `want` executions as P8 lists them (snapshots only, ids
 * UUIDv7-like, created one second apart, about one in ten "failed") in
 * `st` and, when not NULL, in `stq` (evstore on SQLite), `stp` (evstore
 * on PostgreSQL), the raw SQLite database `db` and the raw PostgreSQL
 * connection `pq` (their executions tables), stopping at `budget_s`
 * seconds of setup (0: no limit). Sets *made and *failed (how many have
 * status "failed"). Returns 0 or -1.
 */
int bench_list_populate(bench_ctx *c, evs_store *st, evs_store *stq,
                        evs_store *stp, sqlite3 *db, PGconn *pq, size_t want,
                        double budget_s, size_t *made, size_t *failed);
/* The directory of P8's store. */
#define BENCH_LIST_DIR "p8store"
/* scen_api.c: the HTTP API (evstore/server.h) beside the C API, on P8's
 * store when P8 ran and left it (bench_ctx.list_ready), else on a store
 * of its own made the same way. */
int scen_api(bench_ctx *c);
/* scen_gc.c: gc of 100 k ended executions (as many as P8 lists, and
 * --p8-execs sets it too). */
int scen_gc(bench_ctx *c);
/* scen_concurrency.c */
int scen_conc(bench_ctx *c);
/* scen_replay.c: P5 and P7 share one agent-like history
 * (scen_replay_hist.c), dropped after the last of them that runs. */
int scen_p5(bench_ctx *c);
int scen_p7(bench_ctx *c);
/* scen_orch.c, with its parts in scen_orch_floor.c and
 * scen_orch_latency.c */
int scen_p9(bench_ctx *c);
/* P9's rows on the database backends alone (scen_orch_db.c). */
int scen_p9db(bench_ctx *c);
/* scen_run.c */
int scen_p11(bench_ctx *c);
/* scen_archive.c */
int scen_arch(bench_ctx *c);

/* Opens the bench's store with the given durability. */
int bench_store_open(bench_ctx *c, evs_durability d, evs_store **out);
/* The same options for a store at `where` (a scenario's own). */
int bench_store_open_at(bench_ctx *c, const char *where, evs_durability d,
                        evs_store **out);
/* The same options on the SQLite backend (eventstore/BACKENDS.md):
 * sqlite:ROOT/evs-sqlite.db, for the rows that measure it beside the raw
 * SQLite peer. */
int bench_sqlite_store_open(bench_ctx *c, evs_durability d, evs_store **out);

/* ------------------------------------------------------------------ */
/* scen_replay_hist.c: the history of P5 and P7                       */
/* ------------------------------------------------------------------ */

/* The execution in the bench's store, and the SQLite database holding the
 * same events. */
#define BENCH_HIST_ID "p5hist"
#define BENCH_HIST_DB "replay.db"

/* What a replay of the history must find. */
typedef struct bench_hist_counts {
    uint64_t paths, steps, eaches, vars, signals, versions, timers, waits;
} bench_hist_counts;

/* The history shared by P5 and P7, made once per run. */
typedef struct bench_hist {
    int ready;
    uint64_t events;
    uint64_t bytes;
    bench_hist_counts want;
    uint64_t failures, large;
    double setup_s;
    /* P7's snapshot (scen_replay.c) */
    int snap_ready;
    size_t state_len;
    uint64_t snap_bytes;
    /* The compact state at the end of the history, as JSON, which every
     * open from the snapshot must give again. */
    char *state;
} bench_hist;

extern bench_hist g_hist;

/* Makes the history once per run (in the bench's store and in SQLite);
 * 0 or -1. */
int bench_hist_ensure(bench_ctx *c);
/* Removes the history through `st` (may be NULL when the scenario could
 * not open the store: the run's directory is removed at the end). */
void bench_hist_drop(bench_ctx *c, evs_store *st);
/* Replays the history strictly, in full or compact mode; *out is the
 * replayer (the caller frees it). Checks where it started. */
int bench_hist_replay(bench_ctx *c, evs_store *st, int want_snapshot,
                      int compact, evs_replay **out);
/* Checks that a replay of the whole history holds what it was written
 * with, in full or compact mode. */
int bench_hist_check(bench_ctx *c, const evs_replay *r, int compact);

/* ------------------------------------------------------------------ */
/* scen_orch*.c: the parts of P9                                      */
/* ------------------------------------------------------------------ */

/* The threadpool size P9 runs the orchestrator with (as evrun does), and
 * the floors' threads to match. */
#define P9_FLOOR_THREADS 16

typedef char p9_exec_id[EVS_ID_MAX + 1];

/* What on_outcome saw during one evs_orch_run. */
typedef struct p9_outcomes {
    size_t completed, suspended, other;
    char first_bad[EVS_ID_MAX + 64];
    evs_orch *stop; /* stop this orchestrator when one ends */
} p9_outcomes;

/* The appends of one log: their bytes, for the floor. */
typedef struct p9_appends {
    char *buf;
    size_t len, cap;
    size_t *off; /* append i is buf[off[i] .. off[i + 1]) */
    size_t n, ncap;
} p9_appends;

/* What reading one log back found. */
typedef struct p9_log_count {
    uint64_t events, appends;
    int ended;               /* the last event is execution_completed */
    int64_t signal_us;       /* of the first signal_received, or 0 */
    int64_t step_started_us; /* of the step asked for, or 0 */
} p9_log_count;

/* scen_orch.c: running workflows and reading their logs back. */

/* Opens the store at `path` with durability d, through the I/O table io
 * if not NULL. */
int p9_open_store(bench_ctx *c, const char *path, evs_durability d,
                  const evs_io *io, evs_store **out);
/* An orchestrator on its own loop, reporting its outcomes to oc, with
 * the action "noop" (done at once, on the loop thread, with its input). */
int p9_orch_make(evs_store *st, p9_outcomes *oc, int stop_when_idle,
                 evs_orch **out);
/* Starts n executions of `def` and runs the orchestrator until it is
 * idle; *secs is the time from the first start to the end of the run.
 * Every execution must end as `want`. */
int p9_run_batch(bench_ctx *c, evs_store *st, const char *def, size_t n,
                 evs_outcome want, p9_exec_id *ids, double *secs);
/* The throughput scenario's workflow: three no-op actions in a row. */
extern const char p9_wf_three[];

/* What a throughput run measured. */
typedef struct p9_tp_result {
    double wf_s;            /* workflows/s */
    double events, appends; /* per workflow */
} p9_tp_result;

/* One throughput run of n workflows in a fresh store at `path` (any
 * location), through the I/O table io if not NULL. With `keep`, the
 * first execution's appends are added to it and, when snap_len is not
 * NULL, the size of its last snapshot file goes to *snap_len. */
int p9_throughput_once(bench_ctx *c, const char *path, evs_durability d,
                       const evs_io *io, size_t n, p9_tp_result *res,
                       p9_appends *keep, size_t *snap_len);
/* Sums the events and appends of the logs ids[0..n), which must all have
 * completed. */
int p9_count_logs(bench_ctx *c, evs_store *st, p9_exec_id *ids, size_t n,
                  uint64_t *events, uint64_t *nappends);
/* scen_orch_db.c: P9 on the SQLite and PostgreSQL backends, `reps`
 * repetitions of nd durable and nn unsynced workflows; PostgreSQL also
 * with four runners and beside raw libpq doing the same appends. */
int p9_backends(bench_ctx *c, size_t nd, size_t nn, size_t reps);

/* Reads execution `id` back: its events and appends (an append of n > 1
 * events carries "batch":[first, n] on each line), whether it completed,
 * and when step `step` (may be NULL) started. With `keep`, the appends'
 * bytes are added to it. */
int p9_count_log(bench_ctx *c, evs_store *st, const char *id, const char *step,
                 p9_log_count *lc, p9_appends *keep);

/* scen_orch_floor.c: the counting I/O table and the floors. */

/* What the counting table counted since p9_io_counting. */
typedef struct p9_io_counts {
    unsigned long syncs, loop_syncs, loop_calls, opens, mkdirs, renames, writes;
} p9_io_counts;

/* The POSIX table with counters in front, for the warm-up; its counters
 * start at 0, and the calling thread is the loop's. */
const evs_io *p9_io_counting(void);
void p9_io_counted(p9_io_counts *out);

typedef struct p9_floor_run {
    bench_ctx *c;
    const p9_appends *a;
    size_t snap_len; /* bytes of a snapshot (layout floor) */
    const char *snap;
    char dir[4400];    /* where the layout floor makes its files */
    size_t per_thread; /* appends, or workflows, per thread */
    int layout;        /* 0: appends alone; 1: the layout */
    int sync;
    pthread_barrier_t start;
} p9_floor_run;

/*
 * Runs a floor on P9_FLOOR_THREADS threads, `total` units (appends, or
 * workflows for the layout) shared among them, and returns units/s, or a
 * negative value on error. The layout floor works in `dir`, which it
 * creates.
 */
double p9_floor_rate(bench_ctx *c, p9_floor_run *r, size_t total);

/* scen_orch_latency.c: the latency of an event from another process. */

/* Latencies of an event from another process, in µs: lat[0..n) in
 * total; post[], pick[] and step[] its parts (the post call; from its
 * start to signal_received; from there to step_started). */
typedef struct p9_lat_run {
    double *lat, *post, *pick, *step;
} p9_lat_run;

/* n waiting executions in a fresh store at `path`, each run by a child
 * after its event is posted. */
int p9_latency_run(bench_ctx *c, const char *path, size_t n, p9_lat_run *out);

/* ------------------------------------------------------------------ */
/* http_client.c: GET over one keep-alive loopback connection         */
/* ------------------------------------------------------------------ */

typedef struct bench_http {
    int fd; /* -1 between connections */
    uint16_t port;
    char *in; /* bytes received, in[in_pos..in_len) not yet parsed */
    size_t in_len, in_pos, in_cap;
    int io_errno;
    /* The last answer: its status and body (chunks joined),
     * NUL-terminated; valid until the next request. */
    int status;
    char *body;
    size_t body_len, body_cap;
    unsigned long reconnects; /* idle connections the server had closed */
    char err[256];            /* why the last call failed */
} bench_http;

/* Connects to 127.0.0.1:port. Returns 0, or -1 with h->err set (h must
 * still be closed). */
int bench_http_connect(bench_http *h, uint16_t port);
/* Sends GET `target` (a path with its query) and reads the whole
 * answer; a connection the server had closed while idle is opened again
 * once. Returns 0 (whatever the status), or -1 with h->err set. */
int bench_http_get(bench_http *h, const char *target);
/* Closes the connection and frees the buffers; accepts NULL. */
void bench_http_close(bench_http *h);

/* ------------------------------------------------------------------ */
/* report.c: table, JSON, machine                                     */
/* ------------------------------------------------------------------ */

void bench_report_table(bench_ctx *c, const char *cmdline);
int bench_report_json(bench_ctx *c, const char *path, const char *cmdline);

/* Reads every event of execution `id` with a verifying cursor and sets
 * *events; `what` names the system in a failure. Returns 0 or -1. */
int bench_read_all(bench_ctx *c, evs_store *st, const char *id,
                   const char *what, uint64_t *events);

#endif /* EVBENCH_H */
