/*
 * scen_concurrency.c: durable appends to many executions at once.
 *
 * 64 executions each get `conc_per_exec` durable single-event appends,
 * from 1, 4, 16 and 64 threads (thread t owns the executions e with
 * e % threads == t, and appends to them in turn). The figure is events/s
 * over the whole run, next to one execution's throughput: the same number
 * of events appended to a single execution by one thread. The floor is
 * write + fdatasync per event on one file per execution; evstore one
 * writer's log per execution (EVS_SYNC_FULL); SQLite one database in WAL
 * mode with synchronous=FULL and one connection per thread.
 */
#include "evbench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEXEC 64
#define CONC_DB "conc.db"

typedef struct conc_run {
    bench_ctx *c;
    int sys;
    int nthreads;
    int nexec;         /* 1: the single-execution baseline */
    size_t per_exec;   /* appends per execution */
    bench_workload *w; /* lines encoded for the floor */
    evs_store *st;
    pthread_barrier_t start, stop;
    uint64_t seq[NEXEC]; /* events already in each execution */
    const char *ids[NEXEC];
} conc_run;

typedef struct conc_thread {
    conc_run *run;
    int tid;
    pthread_t th;
    int err;
} conc_thread;

/* The event the i-th append to execution e writes. */
static size_t ev_index(const conc_run *r, int e, size_t i)
{
    return (size_t)e * r->per_exec + i;
}

static void *conc_main(void *arg)
{
    conc_thread *t = arg;
    conc_run *r = t->run;
    bench_ctx *c = r->c;
    int mine[NEXEC], nmine = 0, fds[NEXEC];
    evs_log *logs[NEXEC];
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    evs_error_info info;
    int err = 0;

    for (int e = t->tid; e < r->nexec; e += r->nthreads) {
        fds[nmine] = -1;
        logs[nmine] = NULL;
        mine[nmine++] = e;
    }
    /* Open everything before the clock starts. */
    for (int k = 0; k < nmine && !err; k++) {
        char name[64];
        const char *id = r->ids[mine[k]];

        if (r->sys == SYS_FLOOR) {
            snprintf(name, sizeof(name), "%s.jsonl", id);
            fds[k] = floor_open(c->floor, name, O_WRONLY | O_CREAT | O_APPEND);
            if (fds[k] < 0)
                err = bench_fail(c, "floor: open %s: %s", name,
                                 strerror(-fds[k]));
        } else if (r->sys == SYS_EVSTORE) {
            int rc = evs_log_open(r->st, id, strlen(id), EVS_LOG_WRITE,
                                  &logs[k], NULL, &info);
            if (rc != 0)
                err = bench_fail(c, "evs_log_open: %s", info.msg);
        }
    }
    if (!err && r->sys == SYS_SQLITE)
        err = sq_open(c, CONC_DB, "FULL", &db, &ins);
    pthread_barrier_wait(&r->start);
    for (size_t i = 0; i < r->per_exec && !err; i++) {
        for (int k = 0; k < nmine && !err; k++) {
            int e = mine[k];
            size_t x = ev_index(r, e, i);
            int rc;

            if (r->sys == SYS_FLOOR) {
                rc = floor_write_all(fds[k], r->w->lines + r->w->line_off[x],
                                     r->w->line_len[x]);
                if (rc == 0)
                    rc = floor_fdatasync(fds[k]);
                if (rc != 0)
                    err = bench_fail(c, "floor: write: %s", strerror(-rc));
            } else if (r->sys == SYS_EVSTORE) {
                rc = evs_log_append(logs[k], &r->w->ev[x], 1, r->seq[e], &info);
                if (rc != 0)
                    err = bench_fail(c, "evs_log_append: %s", info.msg);
            } else {
                err = sq_insert(c, ins, r->ids[e], r->seq[e] + 1, &r->w->ev[x]);
            }
            r->seq[e]++;
        }
    }
    pthread_barrier_wait(&r->stop);
    for (int k = 0; k < nmine; k++) {
        if (fds[k] >= 0)
            close(fds[k]);
        evs_log_close(logs[k]);
    }
    sq_close(c, db, NULL, 0);
    t->err = err;
    return NULL;
}

/* Runs one configuration and returns its events/s, or a negative value
 * on error. */
static double conc_once(conc_run *r)
{
    conc_thread th[NEXEC];
    uint64_t t0, t1;
    int started = 0, err = 0;

    pthread_barrier_init(&r->start, NULL, (unsigned)r->nthreads + 1);
    pthread_barrier_init(&r->stop, NULL, (unsigned)r->nthreads + 1);
    for (int i = 0; i < r->nthreads; i++) {
        th[i].run = r;
        th[i].tid = i;
        th[i].err = 0;
        if (pthread_create(&th[i].th, NULL, conc_main, &th[i]) != 0) {
            /* Cannot meet the barriers without all threads: give up. */
            fprintf(stderr, "evbench: pthread_create failed\n");
            exit(1);
        }
        started++;
    }
    pthread_barrier_wait(&r->start);
    t0 = bench_now_ns();
    pthread_barrier_wait(&r->stop);
    t1 = bench_now_ns();
    for (int i = 0; i < started; i++) {
        pthread_join(th[i].th, NULL);
        err |= th[i].err;
    }
    pthread_barrier_destroy(&r->start);
    pthread_barrier_destroy(&r->stop);
    if (err)
        return -1;
    return (double)r->nexec * (double)r->per_exec / ((double)(t1 - t0) / 1e9);
}

int scen_conc(bench_ctx *c)
{
    static const int threads[] = {1, 4, 16, 64};
    static const char *const names[SYS_N] = {"floor", "evstore", "SQLite"};
    char idbuf[NEXEC + 1][16];
    bench_workload w = {0};
    conc_run run;
    evs_store *st = NULL;
    sqlite3 *db = NULL;
    bench_row *rows[5];
    size_t per = c->sz.conc_per_exec, total = per * NEXEC;
    size_t one = c->sz.conc_one < total ? c->sz.conc_one : total;
    /* Durable appends from many threads are the slowest part of a run on
     * a busy disk: three repetitions at most. */
    int repeat = c->repeat < 3 ? c->repeat : 3;
    uint64_t one_seq[SYS_N] = {0, 0, 0};
    uint64_t seqs[SYS_N][NEXEC];
    int rc = -1, err;

    memset(seqs, 0, sizeof(seqs));
    memset(idbuf, 0, sizeof(idbuf));
    if (bench_workload_make(&w, c->seed + 64, total) != 0 ||
        bench_workload_encode(&w, "c-e00", 1) != 0) {
        bench_fail(c, "generating events: out of memory");
        goto out;
    }
    if (bench_store_open(c, EVS_SYNC_FULL, &st) != 0)
        goto out;
    for (int e = 0; e <= NEXEC; e++) {
        if (e < NEXEC)
            snprintf(idbuf[e], sizeof(idbuf[e]), "c-e%02d", e);
        else
            snprintf(idbuf[e], sizeof(idbuf[e]), "c-one");
    }
    for (int e = 0; e <= NEXEC; e++) {
        err = evs_exec_create(st, idbuf[e], strlen(idbuf[e]), NULL, NULL, 0);
        if (err != 0) {
            bench_evs_fail(c, err, "evs_exec_create");
            goto out;
        }
    }
    /* The schema exists before the threads connect. */
    if (sq_open(c, CONC_DB, "FULL", &db, NULL) != 0)
        goto out;
    sq_close(c, db, NULL, 0);
    rows[0] = bench_row_add(c, "conc", "1 execution, 1 thread, durable",
                            "events/s", 0);
    for (int k = 0; k < 4; k++) {
        char metric[80];

        snprintf(metric, sizeof(metric),
                 "64 executions, %d thread%s, "
                 "durable",
                 threads[k], threads[k] > 1 ? "s" : "");
        rows[k + 1] = bench_row_add(c, "conc", metric, "events/s", 0);
    }
    for (int rep = 0; rep < repeat; rep++) {
        for (int s = 0; s < SYS_N; s++) {
            double v;

            memset(&run, 0, sizeof(run));
            run.c = c;
            run.sys = s;
            run.w = &w;
            run.st = st;
            /* one execution: all the events, in order */
            bench_progress(c, 1, "conc rep %d/%d: %s, 1 execution", rep + 1,
                           repeat, names[s]);
            run.nthreads = 1;
            run.nexec = 1;
            run.per_exec = one;
            run.ids[0] = idbuf[NEXEC];
            run.seq[0] = one_seq[s];
            if ((v = conc_once(&run)) < 0)
                goto out;
            one_seq[s] = run.seq[0];
            bench_row_push(rows[0], s, v);
            for (int k = 0; k < 4; k++) {
                bench_progress(c, 1, "conc rep %d/%d: %s, %d threads", rep + 1,
                               repeat, names[s], threads[k]);
                run.nthreads = threads[k];
                run.nexec = NEXEC;
                run.per_exec = per;
                for (int e = 0; e < NEXEC; e++) {
                    run.ids[e] = idbuf[e];
                    run.seq[e] = seqs[s][e];
                }
                if ((v = conc_once(&run)) < 0)
                    goto out;
                memcpy(seqs[s], run.seq, sizeof(seqs[s]));
                bench_row_push(rows[k + 1], s, v);
            }
        }
    }
    for (int k = 0; k < 4; k++)
        bench_row_target(rows[k + 1], "(info) %.2f× one execution",
                         bench_row_median(rows[k + 1], SYS_EVSTORE) /
                             bench_row_median(rows[0], SYS_EVSTORE));
    bench_note(c,
               "conc: %zu durable appends per configuration (%zu to "
               "the single execution), %d repetitions; each system appends "
               "to its own files, evstore executions and SQLite rows; "
               "SQLite's connections retry a busy lock every 10-100 µs",
               total, one, repeat);
    rc = 0;
out:
    for (int e = 0; e <= NEXEC && st && !c->keep && idbuf[e][0]; e++) {
        char name[64];

        evs_exec_delete(st, idbuf[e], strlen(idbuf[e]));
        snprintf(name, sizeof(name), "%s.jsonl", idbuf[e]);
        floor_unlink(c->floor, name);
    }
    evs_store_close(st);
    sq_close(c, NULL, CONC_DB, !c->keep);
    bench_workload_free(&w);
    return rc;
}
