/*
 * syskill.h: real kills at exact points. Runs a function, or a program,
 * in a forked child under ptrace, counts the system calls the child
 * enters (all its threads), and kills it with SIGKILL at the entry of the
 * Nth: syscalls 1..N-1 were entered (in a single-threaded child: have
 * completed), syscall N never runs. No timing is involved: the same N
 * lands on the same syscall of a deterministic, single-threaded child.
 *
 * What is traced: the child and every thread it starts (clone with
 * CLONE_THREAD). Processes it forks (fork, vfork, posix_spawn, uv_spawn)
 * are not traced, their syscalls are not counted, and the kill does not
 * reach them: a SIGKILL of a runner does not kill the actions it started
 * either, and those orphans finishing on their own is part of what a
 * crash test of a runner must face. Syscalls made through the vDSO
 * (clock_gettime, gettimeofday) are no syscalls and are not counted.
 *
 * The tracer waits with waitpid(-1, __WALL): the caller must have no other
 * child it expects to reap while a run is in progress.
 *
 * A tear (sk_opts.tear): when the Nth syscall is a vectored write
 * (writev, pwritev, pwritev2) to a regular file that crosses a page
 * boundary, the kill may instead land in the middle of it: the write is
 * cut to a page-aligned prefix (as Linux's copy loop stops at a page
 * boundary when a fatal signal is pending), runs, and the child is killed
 * at its exit, before it sees the result. Which prefix (none included) is
 * chosen from the seed and N.
 *
 * Linux only, 64-bit (a file offset is one syscall argument).
 */
#ifndef EVS_TEST_SYSKILL_H
#define EVS_TEST_SYSKILL_H

#include <stdint.h>

typedef struct sk_opts {
    uint64_t kill_at;   /* kill at the entry of this syscall (1-based);
                           0: never, run to the end and count */
    int tear;           /* 1: a write the kill lands on may be torn */
    uint64_t tear_seed; /* picks the prefix of a torn write */
    int one_cpu;        /* 1: the tracer and the child share one CPU for
                           the run (ptrace stops are then about a third
                           cheaper; the child's threads no longer run in
                           parallel, so leave it 0 for those) */
} sk_opts;

/** Fills *o with the defaults: never kill, no tear. */
void sk_opts_init(sk_opts *o);

typedef struct sk_result {
    uint64_t syscalls;    /* syscall entries counted (kill_at when killed) */
    int killed;           /* 1 if the child was killed at kill_at */
    long killed_nr;       /* the syscall it was killed at (or in), else -1 */
    uint64_t torn_len;    /* a torn write: bytes it wrote (0: not torn) */
    uint64_t torn_of;     /* ... of how many it was asked to write */
    int status;           /* the child's exit status, or 128 + signal */
    unsigned threads;     /* threads traced, the first one included */
    unsigned signals;     /* signals passed on to the child */
    unsigned group_stops; /* group-stops met (and resumed) */
} sk_result;

/**
 * Runs fn(arg) in a forked child that exits with _exit(fn(arg)) (so no
 * atexit handler, stdio flush or leak check runs in it). Syscalls are
 * counted from fn's start. Fills *r. Returns 0, or -errno if the child
 * could not be started or traced.
 */
int sk_run_fn(int (*fn)(void *), void *arg, const sk_opts *o, sk_result *r);

/** A program to run: execve(path, argv, envp ? envp : environ), with
 *  stdin, stdout and stderr opened on the given files (NULL: inherited;
 *  out and err are created or truncated). */
typedef struct sk_exec {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *in, *out, *err;
} sk_exec;

/**
 * Runs a program in a forked child. Syscalls are counted from its
 * execve on (the loader's included); the child's own set-up before it is
 * not counted. An execve that fails makes the child exit 127. Returns as
 * sk_run_fn.
 */
int sk_run_exec(const sk_exec *x, const sk_opts *o, sk_result *r);

/** The name of syscall `nr` for the figures ("nr-123" for one not in
 *  the table). Static storage; not thread-safe for unknown numbers. */
const char *sk_syscall_name(long nr);

#endif
