/*
 * stress.c: issue 7, section 5 (see stress.h). Four processes of eight
 * threads append to executions shared by all of them and to one execution
 * per thread, while a reader process tails every log; then every log must
 * hold sequences 1..n and every acknowledged event exactly once, in its
 * writer's order. Also: a writer killed while it holds the lock is taken
 * over by another process. No Criterion here: a check that fails records
 * its message and the scenario returns -1, for test_stress.c to assert on
 * and for stress_main.c (the ThreadSanitizer driver) to print.
 */
#include "stress.h"

#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROCS 4
#define THREADS 8
#define SHARED 2             /* executions every thread writes to */
#define TARGETS (1 + SHARED) /* a thread's own execution, then these */
#define LOGS (SHARED + PROCS * THREADS)
#define MAX_BATCH 8
#define DEFAULT_EVENTS 1000000

#define HOLD_EVENTS 5
#define DEADLINE_S 30.0

/* What the processes share: acknowledgements, failures, the reader's
 * figures. Lives in a MAP_SHARED mapping made before the forks. */
typedef struct stress_shm {
    atomic_int stop;   /* the reader's last round */
    atomic_int failed; /* first failure claims msg */
    char msg[512];
    /* acked[p][t][k]: events of (p, t) to target k acknowledged. Each
     * slot is written by its thread only, read after the waits. */
    uint64_t acked[PROCS][THREADS][TARGETS];
    uint64_t opens[PROCS];     /* writer opens of shared logs */
    uint64_t conflicts[PROCS]; /* EVS_ECONFLICT retries */
    uint64_t appends[PROCS];   /* successful appends */
    uint64_t rd_rounds, rd_events, rd_refreshes, rd_cursors;
    uint64_t rd_seen[LOGS]; /* last sequence the reader saw */
} stress_shm;

static stress_shm *shm;
static const char *store_dir;
static char last_error[512];

/* The first failure of a scenario wins: later ones are mostly its
 * consequences. Before the mapping exists it goes to last_error. */
static void vfail(const char *fmt, va_list ap)
{
    int expected = 0;

    if (!shm) {
        if (!last_error[0])
            vsnprintf(last_error, sizeof(last_error), fmt, ap);
        return;
    }
    if (atomic_compare_exchange_strong(&shm->failed, &expected, 1))
        vsnprintf(shm->msg, sizeof(shm->msg), fmt, ap);
}

static void fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
}

static void fail_at(int line, const char *what, const char *fmt, ...)
{
    char detail[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    fail("stress.c:%d: %s: %s", line, what, detail);
}

/* For the parent's checks: records the failure, leaves through `out`. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fail_at(__LINE__, #cond, __VA_ARGS__);                             \
            goto out;                                                          \
        }                                                                      \
    } while (0)

const char *stress_error(void)
{
    return last_error;
}

/* Starts a scenario: the shared mapping its children report through. */
static int begin(const char *dir)
{
    void *m;

    store_dir = dir;
    last_error[0] = '\0';
    m = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        fail("mmap: %s", strerror(errno));
        return -1;
    }
    shm = m;
    memset(shm, 0, sizeof(*shm));
    return 0;
}

/* Ends a scenario: 0, or -1 with its first failure in last_error. */
static int end(void)
{
    int failed;

    if (!shm)
        return -1;
    failed = atomic_load(&shm->failed);
    if (failed)
        snprintf(last_error, sizeof(last_error), "%s", shm->msg);
    munmap(shm, sizeof(*shm));
    shm = NULL;
    return failed ? -1 : 0;
}

/* Kills and reaps a child the scenario gives up on. */
static void reap(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static evs_store *open_store(void)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.durability = EVS_SYNC_NONE;
    /* A million events over a few logs: past the history limits, which
     * are not what this measures. */
    o.max_events = o.max_bytes = EVS_LIMIT_NONE;
    if (evs_store_open(store_dir, &o, &s) != 0)
        return NULL;
    return s;
}

/* A step_completed event of step "work"; `data` is borrowed. */
static evs_event work_event(const char *data)
{
    evs_event e = {
        .path_id = evs_span_cstr("main"),
        .event_type = evs_span_cstr(EVS_EV_STEP_COMPLETED),
        .step_name = evs_span_cstr("work"),
        .data = evs_span_cstr(data),
    };

    return e;
}

/* Creates execution `id` holding its execution_started event. */
static int create_exec(evs_store *s, const char *id)
{
    evs_event e = {
        .path_id = evs_span_cstr("main"),
        .event_type = evs_span_cstr(EVS_EV_EXECUTION_STARTED),
        .data = evs_span_cstr("{\"workflow_name\":\"stress\","
                              "\"inputs\":{}}"),
    };

    return evs_exec_create(s, id, strlen(id), NULL, &e, 1);
}

/* Log i: the shared executions first, then one per (process, thread). */
static void log_name(int i, char *buf, size_t cap)
{
    if (i < SHARED)
        snprintf(buf, cap, "shared-%d", i);
    else
        snprintf(buf, cap, "own-%d-%d", (i - SHARED) / THREADS,
                 (i - SHARED) % THREADS);
}

/* The log that target k of thread (p, t) writes to. */
static int target_log(int p, int t, int k)
{
    return k == 0 ? SHARED + p * THREADS + t : k - 1;
}

/* Parses data {"p":P,"t":T,"c":C}; 0 on success. */
static int parse_data(evs_span d, int *p, int *t, long long *c)
{
    char buf[96];
    int used = -1;

    if (d.len >= sizeof(buf))
        return -1;
    memcpy(buf, d.ptr, d.len);
    buf[d.len] = '\0';
    if (sscanf(buf, "{\"p\":%d,\"t\":%d,\"c\":%lld}%n", p, t, c, &used) != 3 ||
        used != (int)d.len)
        return -1;
    if (*p < 0 || *p >= PROCS || *t < 0 || *t >= THREADS || *c < 0)
        return -1;
    return 0;
}

/*
 * Checks the events of one log as they come: sequences follow on, each
 * event belongs to this execution, is well formed, and carries the next
 * counter of its writer. next[p][t] is that writer's next counter here.
 * Returns 0, or -1 after fail().
 */
static int check_event(const char *id, const evs_event *ev, uint64_t want_seq,
                       long long next[PROCS][THREADS])
{
    int p, t;
    long long c;

    if (ev->sequence != want_seq) {
        fail("%s: sequence %llu where %llu was due", id,
             (unsigned long long)ev->sequence, (unsigned long long)want_seq);
        return -1;
    }
    if (!evs__span_eq_cstr(ev->execution_id, id)) {
        fail("%s seq %llu: execution_id %.*s", id, (unsigned long long)want_seq,
             (int)ev->execution_id.len, ev->execution_id.ptr);
        return -1;
    }
    if (want_seq == 1) {
        if (!evs__span_eq_cstr(ev->event_type, EVS_EV_EXECUTION_STARTED)) {
            fail("%s: first event is %.*s", id, (int)ev->event_type.len,
                 ev->event_type.ptr);
            return -1;
        }
        return 0;
    }
    if (!evs__span_eq_cstr(ev->event_type, EVS_EV_STEP_COMPLETED) ||
        !evs__span_eq_cstr(ev->step_name, "work") ||
        parse_data(ev->data, &p, &t, &c) != 0) {
        fail("%s seq %llu: malformed event %.*s %.*s", id,
             (unsigned long long)want_seq, (int)ev->event_type.len,
             ev->event_type.ptr, (int)ev->data.len, ev->data.ptr);
        return -1;
    }
    if (c != next[p][t]) {
        fail("%s seq %llu: writer (%d, %d) counter %lld where %lld was due", id,
             (unsigned long long)want_seq, p, t, c, next[p][t]);
        return -1;
    }
    next[p][t]++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Writers                                                            */
/* ------------------------------------------------------------------ */

/* A shared execution as one process sees it: one writer handle, used by
 * every thread of the process that is appending to it at the moment, and
 * closed by the last of them so that other processes get their turn. */
typedef struct session {
    pthread_mutex_t m;
    evs_log *l;
    int users;
} session;

typedef struct proc_ctx {
    evs_store *s;
    int p;
    uint64_t per_thread;
    session sess[SHARED];
    atomic_ullong opens, conflicts, appends;
} proc_ctx;

typedef struct thread_arg {
    proc_ctx *pc;
    int t;
} thread_arg;

static int append_retry(proc_ctx *pc, evs_log *l, const evs_event *ev, size_t n,
                        const char *id)
{
    evs_error_info info;
    int rc;

    memset(&info, 0, sizeof(info));
    while ((rc = evs_log_append(l, ev, n, evs_log_last_seq(l), &info)) ==
           EVS_ECONFLICT)
        atomic_fetch_add(&pc->conflicts, 1);
    if (rc != 0) {
        fail("append to %s: %s (%s)", id, evs_err_name(rc), info.msg);
        return rc;
    }
    atomic_fetch_add(&pc->appends, 1);
    return 0;
}

static int shared_append(proc_ctx *pc, int k, const evs_event *ev, size_t n)
{
    session *se = &pc->sess[k];
    char id[32];
    int rc = 0;

    log_name(k, id, sizeof(id));
    pthread_mutex_lock(&se->m);
    se->users++;
    if (!se->l) {
        evs_error_info info;

        memset(&info, 0, sizeof(info));
        rc = evs_log_open(pc->s, id, strlen(id), EVS_LOG_WRITE | EVS_LOG_WAIT,
                          &se->l, NULL, &info);
        if (rc != 0) {
            fail("open %s: %s (%s)", id, evs_err_name(rc), info.msg);
            se->l = NULL;
        } else {
            atomic_fetch_add(&pc->opens, 1);
        }
    }
    pthread_mutex_unlock(&se->m);
    if (rc == 0)
        rc = append_retry(pc, se->l, ev, n, id);
    pthread_mutex_lock(&se->m);
    if (--se->users == 0 && se->l) {
        evs_log_close(se->l);
        se->l = NULL;
    }
    pthread_mutex_unlock(&se->m);
    return rc;
}

static void *writer_main(void *arg)
{
    thread_arg *a = arg;
    proc_ctx *pc = a->pc;
    int p = pc->p, t = a->t;
    uint64_t rem[TARGETS], cnt[TARGETS] = {0};
    char data[MAX_BATCH][96], own_id[32];
    evs_event ev[MAX_BATCH];
    evs_log *own = NULL;
    unsigned rng = (unsigned)(p * 7919 + t * 104729 + 1);
    int rc;

    rem[0] = pc->per_thread / 2;
    rem[1] = pc->per_thread / 4;
    rem[2] = pc->per_thread - rem[0] - rem[1];
    log_name(target_log(p, t, 0), own_id, sizeof(own_id));
    rc = evs_log_open(pc->s, own_id, strlen(own_id), EVS_LOG_WRITE, &own, NULL,
                      NULL);
    if (rc != 0) {
        fail("open %s: %s", own_id, evs_err_name(rc));
        return NULL;
    }
    for (unsigned round = 0; rem[0] + rem[1] + rem[2] > 0; round++) {
        int k = (int)(round % TARGETS);
        uint64_t n;

        if (rem[k] == 0)
            continue;
        rng = rng * 1103515245u + 12345u;
        n = 1 + (rng >> 16) % MAX_BATCH;
        if (n > rem[k])
            n = rem[k];
        for (uint64_t i = 0; i < n; i++) {
            snprintf(data[i], sizeof(data[i]), "{\"p\":%d,\"t\":%d,\"c\":%llu}",
                     p, t, (unsigned long long)(cnt[k] + i));
            ev[i] = work_event(data[i]);
        }
        if (k == 0)
            rc = append_retry(pc, own, ev, n, own_id);
        else
            rc = shared_append(pc, k - 1, ev, n);
        if (rc != 0)
            break;
        cnt[k] += n;
        rem[k] -= n;
        shm->acked[p][t][k] = cnt[k];
    }
    evs_log_close(own);
    return NULL;
}

static _Noreturn void writer_process(int p, uint64_t per_thread)
{
    proc_ctx pc;
    pthread_t th[THREADS];
    thread_arg args[THREADS];
    int started = 0;

    memset(&pc, 0, sizeof(pc));
    pc.p = p;
    pc.per_thread = per_thread;
    for (int k = 0; k < SHARED; k++)
        pthread_mutex_init(&pc.sess[k].m, NULL);
    pc.s = open_store();
    if (!pc.s) {
        fail("writer %d: cannot open the store", p);
        _exit(10);
    }
    for (int t = 0; t < THREADS; t++) {
        args[t].pc = &pc;
        args[t].t = t;
        if (pthread_create(&th[t], NULL, writer_main, &args[t]) != 0) {
            fail("writer %d: pthread_create", p);
            break;
        }
        started++;
    }
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    for (int k = 0; k < SHARED; k++) {
        if (pc.sess[k].l || pc.sess[k].users)
            fail("writer %d: session %d left open", p, k);
        pthread_mutex_destroy(&pc.sess[k].m);
    }
    shm->opens[p] = atomic_load(&pc.opens);
    shm->conflicts[p] = atomic_load(&pc.conflicts);
    shm->appends[p] = atomic_load(&pc.appends);
    evs_store_close(pc.s);
    _exit(atomic_load(&shm->failed) ? 11 : 0);
}

/* ------------------------------------------------------------------ */
/* The reader                                                         */
/* ------------------------------------------------------------------ */

typedef struct tail {
    char id[32];
    evs_log *l;
    uint64_t seen;
    long long next[PROCS][THREADS];
} tail;

/* Reads whatever log `tl` gained since the last call. 0 or -1. */
static int tail_one(tail *tl)
{
    evs_cursor *c;
    evs_event ev;
    evs_error_info info;
    uint64_t last;
    int rc;

    memset(&info, 0, sizeof(info));
    if ((rc = evs_log_refresh(tl->l)) != 0) {
        fail("reader: refresh %s: %s", tl->id, evs_err_name(rc));
        return -1;
    }
    shm->rd_refreshes++;
    last = evs_log_last_seq(tl->l);
    if (last < tl->seen) {
        fail("reader: %s went back from %llu to %llu", tl->id,
             (unsigned long long)tl->seen, (unsigned long long)last);
        return -1;
    }
    if (last == tl->seen)
        return 0;
    if ((rc = evs_cursor_open(tl->l, tl->seen + 1, last, &c, &info)) != 0) {
        fail("reader: cursor %s from %llu: %s (%s)", tl->id,
             (unsigned long long)tl->seen + 1, evs_err_name(rc), info.msg);
        return -1;
    }
    shm->rd_cursors++;
    while ((rc = evs_cursor_next(c, &ev, NULL, &info)) == 1) {
        if (check_event(tl->id, &ev, tl->seen + 1, tl->next) != 0) {
            evs_cursor_close(c);
            return -1;
        }
        tl->seen++;
        shm->rd_events++;
    }
    evs_cursor_close(c);
    if (rc != 0) {
        fail("reader: %s after seq %llu: %s (%s, offset %llu)", tl->id,
             (unsigned long long)tl->seen, evs_err_name(rc), info.msg,
             (unsigned long long)info.offset);
        return -1;
    }
    if (tl->seen != last) {
        fail("reader: %s: read to %llu of %llu", tl->id,
             (unsigned long long)tl->seen, (unsigned long long)last);
        return -1;
    }
    return 0;
}

static _Noreturn void reader_process(void)
{
    evs_store *s = open_store();
    tail *tails = calloc(LOGS, sizeof(*tails));
    int rc = 0;

    if (!s || !tails) {
        fail("reader: setup");
        _exit(20);
    }
    for (int i = 0; i < LOGS; i++) {
        log_name(i, tails[i].id, sizeof(tails[i].id));
        if (evs_log_open(s, tails[i].id, strlen(tails[i].id), 0, &tails[i].l,
                         NULL, NULL) != 0) {
            fail("reader: open %s", tails[i].id);
            _exit(21);
        }
    }
    /* One more round after the writers stop, so the last one sees all. */
    for (int last = 0; !last && rc == 0;) {
        last = atomic_load(&shm->stop);
        for (int i = 0; i < LOGS && rc == 0; i++)
            rc = tail_one(&tails[i]);
        shm->rd_rounds++;
    }
    for (int i = 0; i < LOGS; i++) {
        shm->rd_seen[i] = tails[i].seen;
        evs_log_close(tails[i].l);
    }
    free(tails);
    evs_store_close(s);
    _exit(rc == 0 ? 0 : 22);
}

/* ------------------------------------------------------------------ */
/* The workload                                                       */
/* ------------------------------------------------------------------ */

uint64_t stress_wanted_events(void)
{
    const char *e = getenv("EVS_STRESS_EVENTS");
    unsigned long long n = e ? strtoull(e, NULL, 10) : DEFAULT_EVENTS;

    return n < PROCS * THREADS * 4 ? PROCS * THREADS * 4 : n;
}

/* Reaps a child of the run: 0 if it exited with status 0. */
static int wait_ok(pid_t pid, const char *what)
{
    int status = 0, rc = -1;

    CHECK(waitpid(pid, &status, 0) == pid, "%s: waitpid: %s", what,
          strerror(errno));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %#x", what,
          status);
    rc = 0;
out:
    return rc;
}

/* Reads log i whole after the run and checks it against the
 * acknowledgements; adds to tot->seqs and tot->handoffs. 0 or -1. */
static int final_check(evs_store *s, int i, stress_totals *tot)
{
    char id[32];
    evs_log *l = NULL;
    evs_cursor *c = NULL;
    evs_event ev;
    evs_error_info info;
    long long next[PROCS][THREADS];
    uint64_t seq = 0, want = 1;
    int rc, prev_p = -1, ret = -1;

    memset(next, 0, sizeof(next));
    memset(&info, 0, sizeof(info));
    log_name(i, id, sizeof(id));
    rc = evs_log_open(s, id, strlen(id), 0, &l, NULL, NULL);
    CHECK(rc == 0, "open %s: %s", id, evs_err_name(rc));
    rc = evs_cursor_open(l, 1, 0, &c, &info);
    CHECK(rc == 0, "cursor %s: %s (%s)", id, evs_err_name(rc), info.msg);
    while ((rc = evs_cursor_next(c, &ev, NULL, &info)) == 1) {
        int p, t;
        long long cnt;

        if (check_event(id, &ev, seq + 1, next) != 0)
            goto out;
        seq++;
        if (seq > 1 && parse_data(ev.data, &p, &t, &cnt) == 0) {
            tot->handoffs += prev_p >= 0 && p != prev_p;
            prev_p = p;
        }
    }
    CHECK(rc == 0, "%s after %llu: %s (%s)", id, (unsigned long long)seq,
          evs_err_name(rc), info.msg);
    CHECK(seq == evs_log_last_seq(l), "%s: read %llu, last_seq %llu", id,
          (unsigned long long)seq, (unsigned long long)evs_log_last_seq(l));
    for (int p = 0; p < PROCS; p++)
        for (int t = 0; t < THREADS; t++) {
            uint64_t acked = 0;

            for (int k = 0; k < TARGETS; k++)
                if (target_log(p, t, k) == i)
                    acked = shm->acked[p][t][k];
            CHECK((uint64_t)next[p][t] == acked,
                  "%s: writer (%d, %d) has %lld events, %llu acked", id, p, t,
                  next[p][t], (unsigned long long)acked);
            want += acked;
        }
    CHECK(seq == want, "%s: %llu events, %llu expected", id,
          (unsigned long long)seq, (unsigned long long)want);
    CHECK(shm->rd_seen[i] == seq, "%s: the reader saw %llu of %llu", id,
          (unsigned long long)shm->rd_seen[i], (unsigned long long)seq);
    tot->seqs += seq;
    ret = 0;
out:
    evs_cursor_close(c);
    evs_log_close(l);
    return ret;
}

int stress_run(const char *dir, uint64_t events, stress_totals *tot)
{
    uint64_t per_thread = events / (PROCS * THREADS);
    uint64_t total = per_thread * PROCS * THREADS;
    pid_t reader = -1, writer[PROCS];
    evs_store *s = NULL;
    double t0, t1;
    int rc;

    memset(tot, 0, sizeof(*tot));
    for (int p = 0; p < PROCS; p++)
        writer[p] = -1;
    if (begin(dir) != 0)
        goto out;
    s = open_store();
    CHECK(s != NULL, "cannot open the store %s", dir);
    for (int i = 0; i < LOGS; i++) {
        char id[32];

        log_name(i, id, sizeof(id));
        rc = create_exec(s, id);
        CHECK(rc == 0, "create %s: %s", id, evs_err_name(rc));
    }
    fflush(NULL);

    t0 = now_s();
    reader = fork();
    if (reader == 0)
        reader_process();
    CHECK(reader > 0, "fork: %s", strerror(errno));
    for (int p = 0; p < PROCS; p++) {
        writer[p] = fork();
        if (writer[p] == 0)
            writer_process(p, per_thread);
        CHECK(writer[p] > 0, "fork: %s", strerror(errno));
    }
    for (int p = 0; p < PROCS; p++) {
        rc = wait_ok(writer[p], "writer");
        writer[p] = -1;
        if (rc != 0)
            goto out;
    }
    t1 = now_s();
    atomic_store(&shm->stop, 1);
    rc = wait_ok(reader, "reader");
    reader = -1;
    if (rc != 0 || atomic_load(&shm->failed))
        goto out;

    for (int i = 0; i < LOGS; i++)
        if (final_check(s, i, tot) != 0)
            goto out;
    for (int p = 0; p < PROCS; p++) {
        for (int t = 0; t < THREADS; t++)
            for (int k = 0; k < TARGETS; k++)
                tot->acked += shm->acked[p][t][k];
        tot->opens += shm->opens[p];
        tot->conflicts += shm->conflicts[p];
        tot->appends += shm->appends[p];
    }
    CHECK(tot->acked == total, "%llu events acknowledged, %llu expected",
          (unsigned long long)tot->acked, (unsigned long long)total);
    CHECK(tot->seqs == total + LOGS, "%llu sequences, %llu expected",
          (unsigned long long)tot->seqs, (unsigned long long)(total + LOGS));
    CHECK(shm->rd_rounds >= 2, "the reader made %llu rounds",
          (unsigned long long)shm->rd_rounds);
    CHECK(tot->handoffs > 0, "the shared logs never changed writer process");
    tot->rd_rounds = shm->rd_rounds;
    tot->rd_refreshes = shm->rd_refreshes;
    tot->rd_cursors = shm->rd_cursors;
    tot->rd_events = shm->rd_events;
    tot->seconds = t1 - t0;
out:
    reap(reader);
    for (int p = 0; p < PROCS; p++)
        reap(writer[p]);
    evs_store_close(s);
    return end();
}

void stress_print(FILE *f, const stress_totals *tot)
{
    fprintf(f,
            "stress: %d processes x %d threads, %d logs (%d shared): "
            "%llu events acknowledged in %llu appends, %.1f s "
            "(%.0f events/s); %llu sequences checked, 0 gaps, "
            "0 duplicates, 0 out of order; %llu writer opens of shared "
            "logs, %llu changes of writer process in them, %llu conflicts "
            "retried; reader: %llu rounds, "
            "%llu refreshes, %llu cursors, %llu events, 0 corrupt\n",
            PROCS, THREADS, LOGS, SHARED, (unsigned long long)tot->acked,
            (unsigned long long)tot->appends, tot->seconds,
            (double)tot->acked / tot->seconds, (unsigned long long)tot->seqs,
            (unsigned long long)tot->opens, (unsigned long long)tot->handoffs,
            (unsigned long long)tot->conflicts,
            (unsigned long long)tot->rd_rounds,
            (unsigned long long)tot->rd_refreshes,
            (unsigned long long)tot->rd_cursors,
            (unsigned long long)tot->rd_events);
}

/* ------------------------------------------------------------------ */
/* A lock holder killed                                               */
/* ------------------------------------------------------------------ */

/* n appends of one event each; 0 or the first error. */
static int append_singles(evs_log *l, int n)
{
    char data[64];
    int rc = 0;

    for (int i = 0; i < n && rc == 0; i++) {
        evs_event e;

        snprintf(data, sizeof(data), "{\"single\":%d}", i);
        e = work_event(data);
        rc = evs_log_append(l, &e, 1, evs_log_last_seq(l), NULL);
    }
    return rc;
}

/* Reads execution `id` whole: its number of events, or a negative error
 * (EVS_ECORRUPT too if a sequence is out of place). */
static long count_events(evs_store *s, const char *id)
{
    evs_log *l = NULL;
    evs_cursor *c = NULL;
    evs_event ev;
    long n = 0;
    int rc;

    rc = evs_log_open(s, id, strlen(id), 0, &l, NULL, NULL);
    if (rc == 0)
        rc = evs_cursor_open(l, 1, 0, &c, NULL);
    while (rc == 0 && (rc = evs_cursor_next(c, &ev, NULL, NULL)) == 1) {
        n++;
        rc = ev.sequence == (uint64_t)n ? 0 : EVS_ECORRUPT;
    }
    evs_cursor_close(c);
    evs_log_close(l);
    return rc < 0 ? rc : n;
}

/* The holder: opens "k" for writing, appends HOLD_EVENTS events in one
 * append, tells the parent through the pipe, then sleeps holding the
 * lock until it is killed. */
static _Noreturn void hold_lock(const int pfd[2])
{
    char data[HOLD_EVENTS][64];
    evs_event ev[HOLD_EVENTS];
    evs_store *s;
    evs_log *l;

    close(pfd[0]);
    s = open_store();
    if (!s || evs_log_open(s, "k", 1, EVS_LOG_WRITE, &l, NULL, NULL))
        _exit(10);
    for (int i = 0; i < HOLD_EVENTS; i++) {
        snprintf(data[i], sizeof(data[i]), "{\"holder\":%d}", i);
        ev[i] = work_event(data[i]);
    }
    if (evs_log_append(l, ev, HOLD_EVENTS, evs_log_last_seq(l), NULL))
        _exit(11);
    if (write(pfd[1], "k", 1) != 1)
        _exit(12);
    for (;;)
        pause();
}

/* Forks a holder and waits until it has the lock: its pid, or -1. */
static pid_t spawn_holder(void)
{
    int pfd[2] = {-1, -1}, ok = 0;
    pid_t pid = -1;
    char c;

    CHECK(pipe(pfd) == 0, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid = fork();
    if (pid == 0)
        hold_lock(pfd);
    CHECK(pid > 0, "fork: %s", strerror(errno));
    close(pfd[1]);
    pfd[1] = -1;
    CHECK(read(pfd[0], &c, 1) == 1, "the holder did not get the lock");
    ok = 1;
out:
    for (int i = 0; i < 2; i++)
        if (pfd[i] >= 0)
            close(pfd[i]);
    if (!ok) {
        reap(pid);
        pid = -1;
    }
    return pid;
}

static int kill_holder(pid_t pid)
{
    int status = 0, rc = -1;

    CHECK(kill(pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
          "holder status %#x", status);
    rc = 0;
out:
    return rc;
}

/* The taker: blocks in a waiting writer's open of "k", sends the last
 * sequence it found through the pipe and appends 3 events. */
static _Noreturn void take_over(const int pfd[2])
{
    evs_store *s;
    evs_log *l;
    uint64_t got;

    close(pfd[0]);
    s = open_store();
    if (!s || evs_log_open(s, "k", 1, EVS_LOG_WRITE | EVS_LOG_WAIT, &l, NULL,
                           NULL) != 0)
        _exit(10);
    got = evs_log_last_seq(l);
    if (append_singles(l, 3) != 0)
        _exit(11);
    if (write(pfd[1], &got, sizeof(got)) != (ssize_t)sizeof(got))
        _exit(12);
    evs_log_close(l);
    evs_store_close(s);
    _exit(0);
}

int stress_killed_holder(const char *dir)
{
    evs_store *s = NULL;
    evs_log *l = NULL;
    evs_recovery_info rec;
    pid_t holder = -1, taker = -1, w;
    int pfd[2] = {-1, -1}, status = 0, rc;
    uint64_t last = 0;
    long n;
    double t0;

    if (begin(dir) != 0)
        goto out;
    s = open_store();
    CHECK(s != NULL, "cannot open the store %s", dir);
    rc = create_exec(s, "k");
    CHECK(rc == 0, "create k: %s", evs_err_name(rc));

    /* 1. A waiting writer in another process gets the lock once the
     *    holder is killed, and appends after the holder's events. */
    if ((holder = spawn_holder()) < 0)
        goto out;
    rc = evs_log_open(s, "k", 1, EVS_LOG_WRITE, &l, NULL, NULL);
    CHECK(rc == EVS_ELOCKED, "open beside the holder: %s", evs_err_name(rc));
    CHECK(pipe(pfd) == 0, "pipe: %s", strerror(errno));
    fflush(NULL);
    taker = fork();
    if (taker == 0)
        take_over(pfd);
    CHECK(taker > 0, "fork: %s", strerror(errno));
    close(pfd[1]);
    pfd[1] = -1;
    if (kill_holder(holder) != 0)
        goto out;
    holder = -1;
    t0 = now_s();
    while ((w = waitpid(taker, &status, WNOHANG)) == 0 &&
           now_s() - t0 < DEADLINE_S)
        usleep(1000);
    CHECK(w != 0,
          "the waiting writer did not get the lock within %.0f s "
          "of the holder's death",
          DEADLINE_S);
    CHECK(w == taker, "waitpid: %s", strerror(errno));
    taker = -1;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "taker status %#x",
          status);
    CHECK(read(pfd[0], &last, sizeof(last)) == (ssize_t)sizeof(last),
          "no word from the taker");
    CHECK(last == 1 + HOLD_EVENTS,
          "the taker found %llu events, not the "
          "holder's acknowledged ones",
          (unsigned long long)last);
    n = count_events(s, "k");
    CHECK(n == 1 + HOLD_EVENTS + 3, "k holds %ld events", n);

    /* 2. The same with a retry loop of non-waiting opens in this
     *    process: EVS_ELOCKED while the holder lives, then the lock. */
    if ((holder = spawn_holder()) < 0)
        goto out;
    rc = evs_log_open(s, "k", 1, EVS_LOG_WRITE, &l, NULL, NULL);
    CHECK(rc == EVS_ELOCKED, "open beside the second holder: %s",
          evs_err_name(rc));
    if (kill_holder(holder) != 0)
        goto out;
    holder = -1;
    t0 = now_s();
    memset(&rec, 0, sizeof(rec));
    while ((rc = evs_log_open(s, "k", 1, EVS_LOG_WRITE, &l, &rec, NULL)) ==
               EVS_ELOCKED &&
           now_s() - t0 < DEADLINE_S)
        usleep(1000);
    CHECK(rc == 0, "open after the holder's death: %s", evs_err_name(rc));
    CHECK(rec.cut_bytes == 0, "a whole append was cut (%llu bytes)",
          (unsigned long long)rec.cut_bytes);
    CHECK(evs_log_last_seq(l) == 1 + 2 * HOLD_EVENTS + 3, "last_seq %llu",
          (unsigned long long)evs_log_last_seq(l));
    rc = append_singles(l, 2);
    CHECK(rc == 0, "append after the takeover: %s", evs_err_name(rc));
    evs_log_close(l);
    l = NULL;
    n = count_events(s, "k");
    CHECK(n == 1 + 2 * HOLD_EVENTS + 3 + 2, "k holds %ld events", n);
out:
    for (int i = 0; i < 2; i++)
        if (pfd[i] >= 0)
            close(pfd[i]);
    evs_log_close(l);
    reap(holder);
    reap(taker);
    evs_store_close(s);
    return end();
}
