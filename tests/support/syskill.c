/*
 * syskill.c: kills a child with SIGKILL at the entry of its Nth syscall
 * (see syskill.h). A tracer loop over waitpid(__WALL) that handles every
 * kind of ptrace stop: syscall stops (told apart by
 * PTRACE_GET_SYSCALL_INFO, not by counting entries and exits, which
 * execve and signals would confuse), the first SIGSTOP of each new
 * thread (swallowed), group-stops (resumed), PTRACE_EVENT stops (clone:
 * a new thread; exec) and signal-delivery stops (the signal is passed
 * on, so the child behaves as it would untraced).
 */
#include "syskill.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_IOV 1024

void sk_opts_init(sk_opts *o)
{
    memset(o, 0, sizeof(*o));
}

typedef struct tracee {
    pid_t tid;
    int fresh; /* auto-attached: its first SIGSTOP is not the child's */
} tracee;

typedef struct tracer {
    const sk_opts *o;
    sk_result *r;
    pid_t pid; /* the child: thread-group leader */
    tracee *t;
    size_t n, cap;
    int counting; /* exec mode: not before the execve */
    int kill_sent;
    pid_t tearing; /* the thread whose torn write is under way */
} tracer;

static tracee *find(tracer *T, pid_t tid)
{
    for (size_t i = 0; i < T->n; i++)
        if (T->t[i].tid == tid)
            return &T->t[i];
    return NULL;
}

static tracee *add(tracer *T, pid_t tid, int fresh)
{
    if (T->n == T->cap) {
        size_t nc = T->cap ? T->cap * 2 : 16;
        tracee *nt = realloc(T->t, nc * sizeof(*nt));

        if (!nt)
            return NULL;
        T->t = nt;
        T->cap = nc;
    }
    T->t[T->n].tid = tid;
    T->t[T->n].fresh = fresh;
    T->r->threads++;
    return &T->t[T->n++];
}

static void drop(tracer *T, pid_t tid)
{
    tracee *t = find(T, tid);

    if (t)
        *t = T->t[--T->n];
}

/* Resumes a stopped tracee up to its next syscall stop. A tracee that
 * died meanwhile (ESRCH) reports its death to waitpid. */
static void resume(pid_t tid, int sig)
{
    ptrace(PTRACE_SYSCALL, tid, NULL, (void *)(long)sig);
}

static void kill_child(tracer *T)
{
    kill(T->pid, SIGKILL);
    T->kill_sent = 1;
    T->r->killed = 1;
}

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Where a write to fd of tid begins: off, unless it is -1 (the file
 * position) or the file is O_APPEND (its end). -1 if unknown. */
static long long write_pos(pid_t tid, int fd, long long off,
                           const struct stat *sb)
{
    char path[64], buf[256];
    long long pos = -1;
    unsigned flags = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)tid, fd);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(buf, sizeof(buf), f)) {
        sscanf(buf, "pos: %lld", &pos);
        sscanf(buf, "flags: %o", &flags);
    }
    fclose(f);
    if (flags & O_APPEND)
        return (long long)sb->st_size;
    return off >= 0 ? off : pos;
}

/*
 * Arms a tear of the vectored write tid is entering: cuts its iovec
 * array, in the child's memory, to a page-aligned prefix chosen from the
 * seed and N. Returns 1 if armed, 0 to kill at the entry instead (not a
 * vectored write to a regular file, no page boundary inside it, or the
 * choice was "nothing written").
 */
static int arm_tear(tracer *T, pid_t tid,
                    const struct __ptrace_syscall_info *si)
{
    struct iovec iov[MAX_IOV];
    long nr = (long)si->entry.nr;
    int fd = (int)si->entry.args[0];
    uint64_t cnt = si->entry.args[2], total = 0, first, want, left, k;
    long long off = -1, pos;
    long page = sysconf(_SC_PAGESIZE);
    struct iovec loc, rem;
    struct stat sb;
    char path[64];

    if (nr == SYS_pwritev || nr == SYS_pwritev2)
        off = (long long)si->entry.args[3];
    else if (nr != SYS_writev)
        return 0;
    if (cnt == 0 || cnt > MAX_IOV || page <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)tid, fd);
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0;
    if ((pos = write_pos(tid, fd, off, &sb)) < 0)
        return 0;
    loc.iov_base = iov;
    loc.iov_len = cnt * sizeof(*iov);
    rem.iov_base = (void *)(uintptr_t)si->entry.args[1];
    rem.iov_len = loc.iov_len;
    if (process_vm_readv(tid, &loc, 1, &rem, 1, 0) != (ssize_t)loc.iov_len)
        return 0;
    for (uint64_t i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    first = (uint64_t)page - (uint64_t)pos % (uint64_t)page;
    if (first >= total)
        return 0;
    /* Prefixes: first, first + page, ... below total; or none. */
    k = mix(T->o->tear_seed ^ mix(T->o->kill_at)) %
        ((total - first - 1) / (uint64_t)page + 2);
    if (k == 0)
        return 0;
    want = first + (k - 1) * (uint64_t)page;
    left = want;
    for (uint64_t i = 0; i < cnt; i++) {
        if (iov[i].iov_len > left)
            iov[i].iov_len = left;
        left -= iov[i].iov_len;
    }
    if (process_vm_writev(tid, &loc, 1, &rem, 1, 0) != (ssize_t)loc.iov_len)
        return 0;
    T->r->torn_of = total;
    return 1;
}

static void on_syscall_stop(tracer *T, pid_t tid)
{
    struct __ptrace_syscall_info si;

    memset(&si, 0, sizeof(si));
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof(si), &si) <= 0) {
        resume(tid, 0);
        return;
    }
    if (si.op == PTRACE_SYSCALL_INFO_EXIT && tid == T->tearing) {
        T->r->torn_len = si.exit.is_error ? 0 : (uint64_t)si.exit.rval;
        T->tearing = 0;
        kill_child(T);
        return;
    }
    if (si.op != PTRACE_SYSCALL_INFO_ENTRY || !T->counting) {
        resume(tid, 0);
        return;
    }
    T->r->syscalls++;
    if (T->o->kill_at == 0 || T->r->syscalls != T->o->kill_at) {
        resume(tid, 0);
        return;
    }
    T->r->killed_nr = (long)si.entry.nr;
    if (T->o->tear && arm_tear(T, tid, &si)) {
        /* Only this thread runs on, through its write, to its exit
         * stop; every other one stays in the stop it reaches next. */
        T->tearing = tid;
        resume(tid, 0);
        return;
    }
    /* A tracee in a syscall-entry stop that gets SIGKILL never runs the
     * syscall: the kernel skips it when a fatal signal is pending. */
    kill_child(T);
}

static void on_stop(tracer *T, tracee *t, int st)
{
    pid_t tid = t->tid;
    int sig = WSTOPSIG(st), ev = (unsigned)st >> 16;
    unsigned long msg = 0;
    siginfo_t si;

    if (T->tearing && tid != T->tearing)
        return; /* held: it dies with the kill */
    if (sig == (SIGTRAP | 0x80)) {
        on_syscall_stop(T, tid);
        return;
    }
    if (sig == SIGTRAP && ev != 0) {
        ptrace(PTRACE_GETEVENTMSG, tid, NULL, &msg);
        if (ev == PTRACE_EVENT_CLONE && !find(T, (pid_t)msg))
            add(T, (pid_t)msg, 1);
        if (ev == PTRACE_EVENT_EXEC) {
            /* A thread other than the leader that execs takes the
             * leader's id; its old id vanishes without a report. */
            if ((pid_t)msg != tid)
                drop(T, (pid_t)msg);
            T->counting = 1;
        }
        resume(tid, 0);
        return;
    }
    if (sig == SIGSTOP && t->fresh) {
        t->fresh = 0;
        resume(tid, 0);
        return;
    }
    /* A stopping signal is first a signal-delivery stop (with siginfo),
     * then, if passed on, a group-stop in each thread (without). Under
     * PTRACE_TRACEME a group-stop cannot be kept: resuming it lets the
     * thread run on, as strace does without PTRACE_SEIZE. */
    if (ptrace(PTRACE_GETSIGINFO, tid, NULL, &si) != 0 && errno == EINVAL) {
        T->r->group_stops++;
        resume(tid, 0);
        return;
    }
    T->r->signals++;
    resume(tid, sig);
}

static int trace(pid_t pid, int counting, const sk_opts *o, sk_result *r)
{
    tracer T;
    int st, rc = 0;
    pid_t tid;

    memset(&T, 0, sizeof(T));
    T.o = o;
    T.r = r;
    T.pid = pid;
    T.counting = counting;
    /* The child stops itself once it is traceable. */
    if (waitpid(pid, &st, __WALL) != pid) {
        rc = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, &st, __WALL);
        return rc;
    }
    if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP) {
        r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return -EPERM;
    }
    if (ptrace(PTRACE_SETOPTIONS, pid, NULL,
               (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD |
                              PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC)) != 0) {
        rc = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, &st, __WALL);
        return rc;
    }
    if (!add(&T, pid, 0)) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, __WALL);
        return -ENOMEM;
    }
    resume(pid, 0);
    while (T.n > 0) {
        tracee *t;

        tid = waitpid(-1, &st, __WALL);
        if (tid < 0) {
            if (errno == EINTR)
                continue;
            if (errno != ECHILD)
                rc = -errno;
            break;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (tid == pid)
                r->status =
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            drop(&T, tid);
            continue;
        }
        if (!WIFSTOPPED(st))
            continue;
        /* A new thread's first stop can come before its creator's
         * PTRACE_EVENT_CLONE. */
        if (!(t = find(&T, tid)) && !(t = add(&T, tid, 1))) {
            rc = -ENOMEM;
            kill_child(&T);
            continue;
        }
        if (T.kill_sent)
            continue; /* SIGKILL wakes it from any stop; it dies */
        on_stop(&T, t, st);
    }
    free(T.t);
    return rc;
}

static void result_init(sk_result *r)
{
    memset(r, 0, sizeof(*r));
    r->killed_nr = -1;
    r->status = -1;
}

/* one_cpu: pins the tracer, and so the child it forks, to the CPU it
 * runs on; *old gets the mask to restore. Returns 1 if pinned. */
static int pin(const sk_opts *o, cpu_set_t *old)
{
    cpu_set_t one;
    int cpu;

    if (!o->one_cpu || sched_getaffinity(0, sizeof(*old), old) != 0 ||
        (cpu = sched_getcpu()) < 0)
        return 0;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof(one), &one) == 0;
}

static void unpin(int pinned, const cpu_set_t *old)
{
    if (pinned)
        sched_setaffinity(0, sizeof(*old), old);
}

/* Forks a child that makes itself traceable, stops, and then runs
 * body(arg), which never returns; traces it to its end. `counting` as
 * trace's: 1 counts syscalls from the body's start, 0 from its execve. */
static int run_traced(void (*body)(const void *), const void *arg, int counting,
                      const sk_opts *o, sk_result *r)
{
    cpu_set_t old;
    pid_t pid;
    int pinned, rc;

    result_init(r);
    fflush(NULL);
    pinned = pin(o, &old);
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        unpin(pinned, &old);
        return rc;
    }
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
            _exit(126);
        raise(SIGSTOP);
        body(arg);
        _exit(127); /* not reached */
    }
    rc = trace(pid, counting, o, r);
    unpin(pinned, &old);
    return rc;
}

typedef struct fn_call {
    int (*fn)(void *);
    void *arg;
} fn_call;

static void run_fn_body(const void *arg)
{
    const fn_call *c = arg;

    _exit(c->fn(c->arg));
}

int sk_run_fn(int (*fn)(void *), void *arg, const sk_opts *o, sk_result *r)
{
    const fn_call c = {fn, arg};

    return run_traced(run_fn_body, &c, 1, o, r);
}

static int reopen(int fd, const char *path, int flags)
{
    int nfd;

    if (!path)
        return 0;
    if ((nfd = open(path, flags, 0600)) < 0)
        return -1;
    if (nfd != fd && (dup2(nfd, fd) < 0 || close(nfd) != 0))
        return -1;
    return 0;
}

static void run_exec_body(const void *arg)
{
    const sk_exec *x = arg;

    if (reopen(0, x->in, O_RDONLY) != 0 ||
        reopen(1, x->out, O_WRONLY | O_CREAT | O_TRUNC) != 0 ||
        reopen(2, x->err, O_WRONLY | O_CREAT | O_TRUNC) != 0)
        _exit(127);
    execve(x->path, x->argv, x->envp ? x->envp : environ);
    _exit(127);
}

int sk_run_exec(const sk_exec *x, const sk_opts *o, sk_result *r)
{
    return run_traced(run_exec_body, x, 0, o, r);
}

/* Names of the syscalls the figures show: file I/O, memory, threads,
 * processes and event loops; those this arch has. */
static const struct {
    long nr;
    const char *name;
} names[] = {
#ifdef SYS_read
    {SYS_read, "read"},
#endif
#ifdef SYS_write
    {SYS_write, "write"},
#endif
#ifdef SYS_pread64
    {SYS_pread64, "pread64"},
#endif
#ifdef SYS_pwrite64
    {SYS_pwrite64, "pwrite64"},
#endif
#ifdef SYS_readv
    {SYS_readv, "readv"},
#endif
#ifdef SYS_writev
    {SYS_writev, "writev"},
#endif
#ifdef SYS_preadv
    {SYS_preadv, "preadv"},
#endif
#ifdef SYS_pwritev
    {SYS_pwritev, "pwritev"},
#endif
#ifdef SYS_preadv2
    {SYS_preadv2, "preadv2"},
#endif
#ifdef SYS_pwritev2
    {SYS_pwritev2, "pwritev2"},
#endif
#ifdef SYS_open
    {SYS_open, "open"},
#endif
#ifdef SYS_openat
    {SYS_openat, "openat"},
#endif
#ifdef SYS_close
    {SYS_close, "close"},
#endif
#ifdef SYS_stat
    {SYS_stat, "stat"},
#endif
#ifdef SYS_fstat
    {SYS_fstat, "fstat"},
#endif
#ifdef SYS_lstat
    {SYS_lstat, "lstat"},
#endif
#ifdef SYS_newfstatat
    {SYS_newfstatat, "newfstatat"},
#endif
#ifdef SYS_statx
    {SYS_statx, "statx"},
#endif
#ifdef SYS_lseek
    {SYS_lseek, "lseek"},
#endif
#ifdef SYS_fsync
    {SYS_fsync, "fsync"},
#endif
#ifdef SYS_fdatasync
    {SYS_fdatasync, "fdatasync"},
#endif
#ifdef SYS_sync_file_range
    {SYS_sync_file_range, "sync_file_range"},
#endif
#ifdef SYS_ftruncate
    {SYS_ftruncate, "ftruncate"},
#endif
#ifdef SYS_rename
    {SYS_rename, "rename"},
#endif
#ifdef SYS_renameat
    {SYS_renameat, "renameat"},
#endif
#ifdef SYS_renameat2
    {SYS_renameat2, "renameat2"},
#endif
#ifdef SYS_unlink
    {SYS_unlink, "unlink"},
#endif
#ifdef SYS_unlinkat
    {SYS_unlinkat, "unlinkat"},
#endif
#ifdef SYS_mkdir
    {SYS_mkdir, "mkdir"},
#endif
#ifdef SYS_mkdirat
    {SYS_mkdirat, "mkdirat"},
#endif
#ifdef SYS_rmdir
    {SYS_rmdir, "rmdir"},
#endif
#ifdef SYS_getdents64
    {SYS_getdents64, "getdents64"},
#endif
#ifdef SYS_fcntl
    {SYS_fcntl, "fcntl"},
#endif
#ifdef SYS_flock
    {SYS_flock, "flock"},
#endif
#ifdef SYS_ioctl
    {SYS_ioctl, "ioctl"},
#endif
#ifdef SYS_mmap
    {SYS_mmap, "mmap"},
#endif
#ifdef SYS_munmap
    {SYS_munmap, "munmap"},
#endif
#ifdef SYS_mprotect
    {SYS_mprotect, "mprotect"},
#endif
#ifdef SYS_madvise
    {SYS_madvise, "madvise"},
#endif
#ifdef SYS_brk
    {SYS_brk, "brk"},
#endif
#ifdef SYS_mremap
    {SYS_mremap, "mremap"},
#endif
#ifdef SYS_clone
    {SYS_clone, "clone"},
#endif
#ifdef SYS_clone3
    {SYS_clone3, "clone3"},
#endif
#ifdef SYS_fork
    {SYS_fork, "fork"},
#endif
#ifdef SYS_vfork
    {SYS_vfork, "vfork"},
#endif
#ifdef SYS_execve
    {SYS_execve, "execve"},
#endif
#ifdef SYS_wait4
    {SYS_wait4, "wait4"},
#endif
#ifdef SYS_waitid
    {SYS_waitid, "waitid"},
#endif
#ifdef SYS_exit
    {SYS_exit, "exit"},
#endif
#ifdef SYS_exit_group
    {SYS_exit_group, "exit_group"},
#endif
#ifdef SYS_kill
    {SYS_kill, "kill"},
#endif
#ifdef SYS_tgkill
    {SYS_tgkill, "tgkill"},
#endif
#ifdef SYS_rt_sigaction
    {SYS_rt_sigaction, "rt_sigaction"},
#endif
#ifdef SYS_rt_sigprocmask
    {SYS_rt_sigprocmask, "rt_sigprocmask"},
#endif
#ifdef SYS_rt_sigreturn
    {SYS_rt_sigreturn, "rt_sigreturn"},
#endif
#ifdef SYS_sigaltstack
    {SYS_sigaltstack, "sigaltstack"},
#endif
#ifdef SYS_futex
    {SYS_futex, "futex"},
#endif
#ifdef SYS_set_robust_list
    {SYS_set_robust_list, "set_robust_list"},
#endif
#ifdef SYS_rseq
    {SYS_rseq, "rseq"},
#endif
#ifdef SYS_set_tid_address
    {SYS_set_tid_address, "set_tid_address"},
#endif
#ifdef SYS_epoll_create1
    {SYS_epoll_create1, "epoll_create1"},
#endif
#ifdef SYS_epoll_ctl
    {SYS_epoll_ctl, "epoll_ctl"},
#endif
#ifdef SYS_epoll_wait
    {SYS_epoll_wait, "epoll_wait"},
#endif
#ifdef SYS_epoll_pwait
    {SYS_epoll_pwait, "epoll_pwait"},
#endif
#ifdef SYS_poll
    {SYS_poll, "poll"},
#endif
#ifdef SYS_ppoll
    {SYS_ppoll, "ppoll"},
#endif
#ifdef SYS_eventfd2
    {SYS_eventfd2, "eventfd2"},
#endif
#ifdef SYS_pipe
    {SYS_pipe, "pipe"},
#endif
#ifdef SYS_pipe2
    {SYS_pipe2, "pipe2"},
#endif
#ifdef SYS_dup
    {SYS_dup, "dup"},
#endif
#ifdef SYS_dup2
    {SYS_dup2, "dup2"},
#endif
#ifdef SYS_dup3
    {SYS_dup3, "dup3"},
#endif
#ifdef SYS_socketpair
    {SYS_socketpair, "socketpair"},
#endif
#ifdef SYS_inotify_init1
    {SYS_inotify_init1, "inotify_init1"},
#endif
#ifdef SYS_inotify_add_watch
    {SYS_inotify_add_watch, "inotify_add_watch"},
#endif
#ifdef SYS_inotify_rm_watch
    {SYS_inotify_rm_watch, "inotify_rm_watch"},
#endif
#ifdef SYS_getrandom
    {SYS_getrandom, "getrandom"},
#endif
#ifdef SYS_getpid
    {SYS_getpid, "getpid"},
#endif
#ifdef SYS_gettid
    {SYS_gettid, "gettid"},
#endif
#ifdef SYS_getppid
    {SYS_getppid, "getppid"},
#endif
#ifdef SYS_sched_yield
    {SYS_sched_yield, "sched_yield"},
#endif
#ifdef SYS_sched_getaffinity
    {SYS_sched_getaffinity, "sched_getaffinity"},
#endif
#ifdef SYS_prlimit64
    {SYS_prlimit64, "prlimit64"},
#endif
#ifdef SYS_nanosleep
    {SYS_nanosleep, "nanosleep"},
#endif
#ifdef SYS_clock_nanosleep
    {SYS_clock_nanosleep, "clock_nanosleep"},
#endif
#ifdef SYS_clock_gettime
    {SYS_clock_gettime, "clock_gettime"},
#endif
#ifdef SYS_uname
    {SYS_uname, "uname"},
#endif
#ifdef SYS_access
    {SYS_access, "access"},
#endif
#ifdef SYS_faccessat
    {SYS_faccessat, "faccessat"},
#endif
#ifdef SYS_faccessat2
    {SYS_faccessat2, "faccessat2"},
#endif
#ifdef SYS_readlink
    {SYS_readlink, "readlink"},
#endif
#ifdef SYS_readlinkat
    {SYS_readlinkat, "readlinkat"},
#endif
#ifdef SYS_getcwd
    {SYS_getcwd, "getcwd"},
#endif
#ifdef SYS_setsid
    {SYS_setsid, "setsid"},
#endif
#ifdef SYS_setpgid
    {SYS_setpgid, "setpgid"},
#endif
#ifdef SYS_prctl
    {SYS_prctl, "prctl"},
#endif
#ifdef SYS_arch_prctl
    {SYS_arch_prctl, "arch_prctl"},
#endif
#ifdef SYS_timerfd_create
    {SYS_timerfd_create, "timerfd_create"},
#endif
#ifdef SYS_timerfd_settime
    {SYS_timerfd_settime, "timerfd_settime"},
#endif
#ifdef SYS_signalfd4
    {SYS_signalfd4, "signalfd4"},
#endif
#ifdef SYS_fallocate
    {SYS_fallocate, "fallocate"},
#endif
#ifdef SYS_getuid
    {SYS_getuid, "getuid"},
#endif
#ifdef SYS_geteuid
    {SYS_geteuid, "geteuid"},
#endif
#ifdef SYS_getgid
    {SYS_getgid, "getgid"},
#endif
#ifdef SYS_getegid
    {SYS_getegid, "getegid"},
#endif
#ifdef SYS_umask
    {SYS_umask, "umask"},
#endif
#ifdef SYS_fchmod
    {SYS_fchmod, "fchmod"},
#endif
#ifdef SYS_fchmodat
    {SYS_fchmodat, "fchmodat"},
#endif
#ifdef SYS_utimensat
    {SYS_utimensat, "utimensat"},
#endif
#ifdef SYS_process_vm_readv
    {SYS_process_vm_readv, "process_vm_readv"},
#endif
#ifdef SYS_chdir
    {SYS_chdir, "chdir"},
#endif
#ifdef SYS_fchdir
    {SYS_fchdir, "fchdir"},
#endif
};

const char *sk_syscall_name(long nr)
{
    static char buf[32];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].nr == nr)
            return names[i].name;
    snprintf(buf, sizeof(buf), "nr-%ld", nr);
    return buf;
}
