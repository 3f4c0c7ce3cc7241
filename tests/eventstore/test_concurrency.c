/*
 * test_concurrency.c: many writers and readers on one execution, as
 * threads and as processes: appends stay contiguous and exactly-once,
 * readers only ever see complete appends, and a killed writer leaves no
 * stale lock.
 */
#include <criterion/criterion.h>

#include "store_int.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static evs_store *st;

static void setup(void)
{
    tu_fresh_store("conc", &dir, &st);
    cr_assert_eq(tu_create(st, "x"), 0);
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
}

TestSuite(conc, .init = setup, .fini = teardown);

/* An event whose data names its writer and its number. */
static evs_event tagged(char *data, size_t cap, int who, int i)
{
    snprintf(data, cap, "{\"w\":%d,\"i\":%d}", who, i);
    return tu_event(EVS_EV_STEP_COMPLETED, "work", data);
}

/*
 * Reads the whole log and checks it: sequences 1..n without gaps, the
 * first event the execution_started of setup, then for every writer
 * w < writers exactly `per` events numbered 0..per-1 in order.
 */
static void check_log(int writers, int per)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    int *next = calloc((size_t)writers, sizeof(int));
    uint64_t seq = 0;
    int rc;

    cr_assert_not_null(next);
    cr_assert_eq(evs_log_open(st, "x", 1, 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 1 + (uint64_t)writers * (uint64_t)per);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    while ((rc = evs_cursor_next(c, &ev, NULL, NULL)) == 1) {
        int w, i;

        seq++;
        cr_assert_eq(ev.sequence, seq);
        if (seq == 1) {
            cr_assert(evs__span_eq_cstr(ev.event_type, "execution_started"));
            continue;
        }
        cr_assert_eq(sscanf(ev.data.ptr, "{\"w\":%d,\"i\":%d}", &w, &i), 2,
                     "data %.*s", (int)ev.data.len, ev.data.ptr);
        cr_assert(w >= 0 && w < writers);
        cr_assert_eq(i, next[w], "writer %d: event %d where %d was due", w, i,
                     next[w]);
        next[w]++;
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(seq, 1 + (uint64_t)writers * (uint64_t)per);
    for (int w = 0; w < writers; w++)
        cr_assert_eq(next[w], per, "writer %d: %d events", w, next[w]);
    evs_cursor_close(c);
    evs_log_close(l);
    free(next);
}

/* ------------------------------------------------------------------ */
/* A reader that runs while the others write                          */
/* ------------------------------------------------------------------ */

typedef struct reader {
    pthread_t th;
    atomic_int stop;
    int err; /* first failure, or 0 */
    char msg[320];
    long rounds;
    uint64_t max_seen;
} reader;

static void *reader_main(void *arg)
{
    reader *r = arg;
    evs_log *l;
    int rc;

    rc = evs_log_open(st, "x", 1, 0, &l, NULL, NULL);
    if (rc != 0) {
        r->err = rc;
        snprintf(r->msg, sizeof(r->msg), "open: %s", evs_err_name(rc));
        return NULL;
    }
    /* One more round after the writers stop, so the last one sees all. */
    for (int last = 0; !last;) {
        evs_cursor *c;
        evs_event ev;
        evs_error_info info;
        uint64_t want, seq = 0, prev_end = evs_log_last_seq(l);

        last = atomic_load(&r->stop);
        if ((rc = evs_log_refresh(l)) != 0) {
            snprintf(r->msg, sizeof(r->msg), "refresh: %s", evs_err_name(rc));
            break;
        }
        want = evs_log_last_seq(l);
        if (want < prev_end) {
            rc = -ERANGE;
            snprintf(r->msg, sizeof(r->msg),
                     "log went back from %llu to "
                     "%llu",
                     (unsigned long long)prev_end, (unsigned long long)want);
            break;
        }
        if ((rc = evs_cursor_open(l, 1, 0, &c, &info)) != 0) {
            snprintf(r->msg, sizeof(r->msg), "cursor: %s", info.msg);
            break;
        }
        while ((rc = evs_cursor_next(c, &ev, NULL, &info)) == 1) {
            if (ev.sequence != ++seq)
                break;
        }
        evs_cursor_close(c);
        if (rc < 0) {
            snprintf(r->msg, sizeof(r->msg), "read at %llu: %s (%s)",
                     (unsigned long long)seq, evs_err_name(rc), info.msg);
            break;
        }
        if (rc == 1 || seq != want) {
            rc = -ERANGE;
            snprintf(r->msg, sizeof(r->msg), "read %llu events of %llu",
                     (unsigned long long)seq, (unsigned long long)want);
            break;
        }
        r->rounds++;
        r->max_seen = want;
    }
    r->err = rc;
    evs_log_close(l);
    return NULL;
}

static void reader_start(reader *r)
{
    memset(r, 0, sizeof(*r));
    atomic_init(&r->stop, 0);
    cr_assert_eq(pthread_create(&r->th, NULL, reader_main, r), 0);
}

static void reader_finish(reader *r, uint64_t final_seq)
{
    atomic_store(&r->stop, 1);
    cr_assert_eq(pthread_join(r->th, NULL), 0);
    cr_assert_eq(r->err, 0, "reader: %s", r->msg);
    cr_assert_geq(r->rounds, 1);
    cr_log_info("reader: %ld rounds", r->rounds);
    cr_assert_eq(r->max_seen, final_seq);
}

/* ------------------------------------------------------------------ */
/* Threads sharing one writer                                         */
/* ------------------------------------------------------------------ */

#define SHARED_THREADS 8
#define SHARED_PER 500

typedef struct shared_arg {
    evs_log *l;
    int who;
    int err;
    long conflicts;
} shared_arg;

static void *shared_main(void *arg)
{
    shared_arg *a = arg;
    char data[64];

    for (int i = 0; i < SHARED_PER; i++) {
        evs_event e = tagged(data, sizeof(data), a->who, i);
        int rc;

        do {
            uint64_t expected = evs_log_last_seq(a->l);
            rc = evs_log_append(a->l, &e, 1, expected, NULL);
            if (rc == EVS_ECONFLICT)
                a->conflicts++;
        } while (rc == EVS_ECONFLICT);
        if (rc != 0) {
            a->err = rc;
            return NULL;
        }
    }
    return NULL;
}

Test(conc, threads_sharing_one_writer_append_each_event_once)
{
    pthread_t th[SHARED_THREADS];
    shared_arg args[SHARED_THREADS];
    evs_log *l;
    reader r;

    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    reader_start(&r);
    for (int t = 0; t < SHARED_THREADS; t++) {
        args[t] = (shared_arg){l, t, 0, 0};
        cr_assert_eq(pthread_create(&th[t], NULL, shared_main, &args[t]), 0);
    }
    for (int t = 0; t < SHARED_THREADS; t++) {
        cr_assert_eq(pthread_join(th[t], NULL), 0);
        cr_assert_eq(args[t].err, 0, "thread %d: %s", t,
                     evs_err_name(args[t].err));
    }
    cr_assert_eq(evs_log_last_seq(l), 1 + SHARED_THREADS * SHARED_PER);
    cr_assert_eq(evs_log_durable_seq(l), 1 + SHARED_THREADS * SHARED_PER);
    reader_finish(&r, 1 + SHARED_THREADS * SHARED_PER);
    evs_log_close(l);
    check_log(SHARED_THREADS, SHARED_PER);
}

/* ------------------------------------------------------------------ */
/* Threads with writers of their own                                  */
/* ------------------------------------------------------------------ */

#define OWN_THREADS 4
#define OWN_ROUNDS 50
#define OWN_BATCH 8

typedef struct own_arg {
    int who;
    int err;
    char msg[320];
} own_arg;

/* Opens the writer (waiting for the lock), appends one batch of
 * OWN_BATCH events numbered from `first`, closes. */
static int append_batch(evs_store *s, int who, int first, char *msg, size_t cap)
{
    char data[OWN_BATCH][64];
    evs_event ev[OWN_BATCH];
    evs_error_info info;
    evs_log *l;
    int rc;

    for (int k = 0; k < OWN_BATCH; k++)
        ev[k] = tagged(data[k], sizeof(data[k]), who, first + k);
    rc = evs_log_open(s, "x", 1, EVS_LOG_WRITE | EVS_LOG_WAIT, &l, NULL, &info);
    if (rc != 0) {
        snprintf(msg, cap, "open: %s", info.msg);
        return rc;
    }
    rc = evs_log_append(l, ev, OWN_BATCH, evs_log_last_seq(l), &info);
    if (rc != 0)
        snprintf(msg, cap, "append: %s", info.msg);
    evs_log_close(l);
    return rc;
}

static void *own_main(void *arg)
{
    own_arg *a = arg;

    for (int r = 0; r < OWN_ROUNDS && a->err == 0; r++)
        a->err =
            append_batch(st, a->who, r * OWN_BATCH, a->msg, sizeof(a->msg));
    return NULL;
}

Test(conc, threads_with_their_own_waiting_writers_stay_contiguous)
{
    pthread_t th[OWN_THREADS];
    own_arg args[OWN_THREADS];
    reader r;

    reader_start(&r);
    for (int t = 0; t < OWN_THREADS; t++) {
        memset(&args[t], 0, sizeof(args[t]));
        args[t].who = t;
        cr_assert_eq(pthread_create(&th[t], NULL, own_main, &args[t]), 0);
    }
    for (int t = 0; t < OWN_THREADS; t++) {
        cr_assert_eq(pthread_join(th[t], NULL), 0);
        cr_assert_eq(args[t].err, 0, "thread %d: %s", t, args[t].msg);
    }
    reader_finish(&r, 1 + OWN_THREADS * OWN_ROUNDS * OWN_BATCH);
    check_log(OWN_THREADS, OWN_ROUNDS * OWN_BATCH);
}

Test(conc, a_second_writer_without_wait_is_locked_out)
{
    evs_log *a, *b = NULL;
    evs_error_info info;

    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &a, NULL, NULL), 0);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &b, NULL, &info),
                 EVS_ELOCKED);
    cr_assert_null(b);
    cr_assert_eq(info.code, EVS_ELOCKED);
    cr_assert_str_eq(info.execution_id, "x");
    /* Readers are never locked out. */
    cr_assert_eq(evs_log_open(st, "x", 1, 0, &b, NULL, NULL), 0);
    evs_log_close(b);
    evs_log_close(a);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &b, NULL, NULL), 0);
    evs_log_close(b);
}

/* ------------------------------------------------------------------ */
/* Processes                                                          */
/* ------------------------------------------------------------------ */

#define PROCS 4
#define PROC_ROUNDS 50

/* A child's whole life: its own store handle, then rounds of
 * open-append-close. Exit status 0 on success. */
static void child_main(int who)
{
    char msg[320];
    evs_store *s = tu_open_store(dir, NULL);
    int rc = 0;

    if (!s)
        _exit(10);
    for (int r = 0; r < PROC_ROUNDS && rc == 0; r++)
        rc = append_batch(s, who, r * OWN_BATCH, msg, sizeof(msg));
    if (rc != 0) {
        fprintf(stderr, "child %d: %s\n", who, msg);
        _exit(11);
    }
    evs_store_close(s);
    _exit(0);
}

Test(conc, processes_with_waiting_writers_stay_contiguous)
{
    pid_t pid[PROCS];
    reader r;

    /* The children are forked before the reader thread starts: a fork
     * while another thread holds a lock of the C library's allocator
     * (ASan's), of SQLite's or of libpq's leaves the child waiting for
     * it for ever. The reader still runs while they write. */
    for (int p = 0; p < PROCS; p++) {
        pid[p] = fork();
        cr_assert_geq(pid[p], 0);
        if (pid[p] == 0)
            child_main(p);
    }
    reader_start(&r);
    for (int p = 0; p < PROCS; p++) {
        int status;
        cr_assert_eq(waitpid(pid[p], &status, 0), pid[p]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child %d: status %#x", p, status);
    }
    reader_finish(&r, 1 + PROCS * PROC_ROUNDS * OWN_BATCH);
    check_log(PROCS, PROC_ROUNDS * OWN_BATCH);
}

/* A killed writer's lease on PostgreSQL (BACKENDS.md, "Leases and
 * fencing"): it holds until it runs out, which the next writer waits
 * for (EVS_LOG_WAIT) where a lock would have gone with the process. */
#define KILLED_LEASE_MS 3000

/* How a writer opens after another was killed: at once where the lock
 * went with the process; on PostgreSQL once the lease has run out. */
static unsigned after_kill_flags(void)
{
    return tu_backend_is_pg() ? EVS_LOG_WRITE | EVS_LOG_WAIT : EVS_LOG_WRITE;
}

/* Forks a child that opens the writer, appends `n` batches, tells the
 * parent through a pipe, then either waits to be killed (forever == 0)
 * or keeps appending until it is. */
static pid_t spawn_writer(int n, int forever)
{
    int pfd[2];
    pid_t pid;
    char c;

    cr_assert_eq(pipe(pfd), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        evs_store_opts o;
        evs_store *s = NULL;
        char data[OWN_BATCH][64];
        evs_event ev[OWN_BATCH];
        evs_log *l;
        int i = 0;

        close(pfd[0]);
        evs_store_opts_init(&o);
        o.lease_ms = KILLED_LEASE_MS; /* only PostgreSQL has leases */
        if (evs_store_open(tu_loc(dir), &o, &s) != 0 ||
            evs_log_open(s, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL))
            _exit(10);
        for (;; i++) {
            if (i == n && write(pfd[1], "k", 1) != 1)
                _exit(11);
            if (i >= n && !forever)
                pause();
            for (int k = 0; k < OWN_BATCH; k++)
                ev[k] = tagged(data[k], sizeof(data[k]), 0, i * OWN_BATCH + k);
            if (evs_log_append(l, ev, OWN_BATCH, evs_log_last_seq(l), NULL) !=
                0)
                _exit(12);
        }
    }
    close(pfd[1]);
    cr_assert_eq(read(pfd[0], &c, 1), 1, "the child got the lock");
    close(pfd[0]);
    return pid;
}

Test(conc, a_killed_writer_leaves_no_stale_lock)
{
    evs_log *l = NULL;
    int status;
    pid_t pid = spawn_writer(3, 0);

    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL),
                 EVS_ELOCKED);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    cr_assert_eq(evs_log_open(st, "x", 1, after_kill_flags(), &l, NULL, NULL),
                 0);
    cr_assert_eq(evs_log_last_seq(l), 1 + 3 * OWN_BATCH);
    evs_log_close(l);
    check_log(1, 3 * OWN_BATCH);
}

Test(conc, a_writer_killed_while_appending_leaves_a_usable_log)
{
    evs_log *l = NULL;
    int status;
    uint64_t last;
    pid_t pid = spawn_writer(20, 1);

    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(evs_log_open(st, "x", 1, after_kill_flags(), &l, NULL, NULL),
                 0);
    last = evs_log_last_seq(l);
    cr_assert_geq(last, 1 + 20 * OWN_BATCH);
    cr_assert_eq((last - 1) % OWN_BATCH, 0, "whole appends only: %llu",
                 (unsigned long long)last);
    evs_log_close(l);
    check_log(1, (int)(last - 1));
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(tu_append_n(l, 1), 0);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(st, "x"), (long)last + 1);
}

/* ------------------------------------------------------------------ */
/* Racing creates                                                     */
/* ------------------------------------------------------------------ */

#define RACERS 8

typedef struct racer {
    pthread_barrier_t *go;
    int who;
    int rc;
} racer;

static void *racer_main(void *arg)
{
    racer *a = arg;
    char data[64];
    evs_event e = tagged(data, sizeof(data), a->who, 0);

    pthread_barrier_wait(a->go);
    a->rc = evs_exec_create(st, "race", 4, NULL, &e, 1);
    return NULL;
}

Test(conc, racing_creates_of_one_id_have_exactly_one_winner)
{
    pthread_barrier_t go;
    pthread_t th[RACERS];
    racer args[RACERS];
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    int wins = 0, winner = -1, w, i;

    for (int round = 0; round < 5; round++) {
        cr_assert_eq(pthread_barrier_init(&go, NULL, RACERS), 0);
        for (int t = 0; t < RACERS; t++) {
            args[t] = (racer){&go, t, 1};
            cr_assert_eq(pthread_create(&th[t], NULL, racer_main, &args[t]), 0);
        }
        wins = 0;
        for (int t = 0; t < RACERS; t++) {
            cr_assert_eq(pthread_join(th[t], NULL), 0);
            if (args[t].rc == 0) {
                wins++;
                winner = t;
            } else {
                cr_assert_eq(args[t].rc, -EEXIST, "racer %d: %s", t,
                             evs_err_name(args[t].rc));
            }
        }
        pthread_barrier_destroy(&go);
        cr_assert_eq(wins, 1, "round %d: %d winners", round, wins);
        /* The log is the winner's, whole. */
        cr_assert_eq(evs_log_open(st, "race", 4, 0, &l, NULL, NULL), 0);
        cr_assert_eq(evs_log_last_seq(l), 1);
        cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
        cr_assert_eq(evs_cursor_next(c, &ev, NULL, NULL), 1);
        cr_assert_eq(sscanf(ev.data.ptr, "{\"w\":%d,\"i\":%d}", &w, &i), 2);
        cr_assert_eq(w, winner);
        evs_cursor_close(c);
        evs_log_close(l);
        cr_assert_eq(evs_exec_delete(st, "race", 4), 0);
        if (tu_backend_is_file()) /* what is left on disk */
            cr_assert_eq(tu_count_entries(dir), 1,
                         "only x: no .tmp-* or .trash-*");
    }
}
