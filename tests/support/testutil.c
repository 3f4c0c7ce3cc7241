/*
 * testutil.c: helpers shared by the test suites (see testutil.h).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

extern char **environ;

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("EVS_TEST_TMP");
    char *path;
    size_t n;

    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    n = strlen(base) + strlen(tag) + 32;
    path = malloc(n);
    if (!path)
        return NULL;
    snprintf(path, n, "%s/evs-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

void tu_rmtree_free(char *path)
{
    if (!path)
        return;
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

char *tu_scratch_dir(const char *env, const char *tag)
{
    const char *base = getenv(env);
    char *p;
    size_t n;

    if (!base || !*base)
        base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : NULL;
    if (!base) {
        p = tu_tmpdir(tag);
        cr_assert_not_null(p, "a directory for %s", tag);
        return p;
    }
    n = strlen(base) + strlen(tag) + 32;
    p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/evs-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        free(p);
        p = tu_tmpdir(tag);
        cr_assert_not_null(p, "a directory for %s", tag);
    }
    return p;
}

char *tu_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);

    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

evs_store *tu_open_store(const char *path, const evs_io *io)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.io = io;
    if (evs_store_open(path, &o, &s) != 0)
        return NULL;
    return s;
}

char *tu_replace(const char *text, const char *mark, const char *with,
                 size_t *n)
{
    size_t ml = strlen(mark), wl = strlen(with), count = 0;
    const char *s, *q;
    char *out, *p;

    for (s = text; (q = strstr(s, mark)); s = q + ml)
        count++;
    out = malloc(strlen(text) + count * wl + 1);
    cr_assert_not_null(out);
    p = out;
    for (s = text; (q = strstr(s, mark)); s = q + ml) {
        memcpy(p, s, (size_t)(q - s));
        p += q - s;
        memcpy(p, with, wl);
        p += wl;
    }
    strcpy(p, s);
    *n = count;
    return out;
}

char *tu_path(const char *dir, const char *exec, const char *name)
{
    size_t n = strlen(dir) + strlen(exec) + strlen(name) + 3;
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s/%s/%s", dir, exec, name);
    return p;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

int tu_write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ssize_t w;

    if (fd < 0)
        return -errno;
    w = write(fd, buf, len);
    close(fd);
    return w == (ssize_t)len ? 0 : -EIO;
}

long long tu_file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

int tu_truncate(const char *path, long long len)
{
    return truncate(path, (off_t)len) == 0 ? 0 : -errno;
}

int tu_flip_bit(const char *path, long long off, int bit)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    int rc = -EIO;

    if (fd < 0)
        return -errno;
    if (pread(fd, &c, 1, off) == 1) {
        c ^= (unsigned char)(1u << bit);
        if (pwrite(fd, &c, 1, off) == 1)
            rc = 0;
    }
    close(fd);
    return rc;
}

evs_event tu_event(const char *type, const char *step, const char *data)
{
    evs_event e;

    memset(&e, 0, sizeof(e));
    e.event_type = evs_span_cstr(type);
    e.step_name = evs_span_cstr(step);
    e.path_id = evs_span_cstr("main");
    e.data = evs_span_cstr(data);
    return e;
}

int tu_create(evs_store *s, const char *id)
{
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL,
                           "{\"workflow_name\":\"test\",\"inputs\":{}}");

    return evs_exec_create(s, id, strlen(id), NULL, &e, 1);
}

int tu_append_n(evs_log *l, size_t n)
{
    char data[96];

    for (size_t i = 0; i < n; i++) {
        evs_event e;
        int rc;

        snprintf(data, sizeof(data), "{\"output\":\"step %zu\",\"n\":%zu}", i,
                 i);
        e = tu_event(EVS_EV_STEP_COMPLETED, "work", data);
        rc = evs_log_append(l, &e, 1, evs_log_last_seq(l), NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

long tu_count_events(evs_store *s, const char *id)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    long n = 0;
    int rc;

    rc = evs_log_open(s, id, strlen(id), 0, &l, NULL, NULL);
    if (rc != 0)
        return rc;
    rc = evs_cursor_open(l, 1, 0, &c, NULL);
    if (rc == 0) {
        while ((rc = evs_cursor_next(c, &ev, NULL, NULL)) == 1)
            n++;
        evs_cursor_close(c);
    }
    evs_log_close(l);
    return rc < 0 ? rc : n;
}

int tu_count_problems(void *arg, const evs_scan_item *it)
{
    size_t *n = arg;

    if (it->is_problem)
        (*n)++;
    return 0;
}

static void report(tu_fail_fn *fail, void *ctx, const char *id,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(tu_fail_fn *fail, void *ctx, const char *id,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fail(ctx, id, fmt, ap);
    va_end(ap);
}

void tu_check_recovered(evs_store *s, const char *dir, const char *id,
                        uint64_t last, const char *evid, tu_fail_fn *fail,
                        void *ctx)
{
    char *lp = tu_path(dir, id, "events.jsonl"), *b1, *b2 = NULL;
    size_t len1 = 0, len2 = 0, problems = 0;
    evs_recovery_info rec;
    evs_error_info info;
    evs_log *l = NULL;
    evs_cursor *c = NULL;
    evs_event ev, got;
    int rc;

    cr_assert_not_null(lp);
    rc = evs_log_scan(s, id, strlen(id), tu_count_problems, &problems);
    if (rc != 0 || problems)
        report(fail, ctx, id, "evs_log_scan after recovery: %s, %zu problems",
               evs_err_name(rc), problems);

    b1 = tu_read_file(lp, &len1);
    memset(&rec, 0, sizeof(rec));
    rc = evs_log_open(s, id, strlen(id), EVS_LOG_WRITE, &l, &rec, &info);
    if (rc != 0) {
        report(fail, ctx, id, "second recovery: %s (%s)", evs_err_name(rc),
               info.msg);
        goto out;
    }
    b2 = tu_read_file(lp, &len2);
    if (rec.cut_bytes != 0 || rec.last_seq != last || !b1 || !b2 ||
        len1 != len2 || memcmp(b1, b2, len1) != 0)
        report(fail, ctx, id, "second recovery differs: cut %" PRIu64
               " bytes, last_seq %" PRIu64 " (first: %" PRIu64 ")",
               rec.cut_bytes, rec.last_seq, last);

    ev = tu_event("step_started", "after", "{\"after\":true}");
    ev.id = evs_span_cstr(evid);
    rc = evs_log_append(l, &ev, 1, last, &info);
    if (rc != 0) {
        report(fail, ctx, id, "append after recovery: %s (%s)",
               evs_err_name(rc), info.msg);
        goto out;
    }
    rc = evs_cursor_open(l, last + 1, 0, &c, &info);
    if (rc == 0)
        rc = evs_cursor_next(c, &got, NULL, &info);
    if (rc != 1 || got.sequence != last + 1 || got.id.len != strlen(evid) ||
        memcmp(got.id.ptr, evid, got.id.len) != 0)
        report(fail, ctx, id, "the event appended after recovery does not "
               "read back (%s)", evs_err_name(rc));
    evs_cursor_close(c);
out:
    evs_log_close(l);
    free(lp);
    free(b1);
    free(b2);
}

void tu_assert_private_tree(const char *path, int *files, int *dirs)
{
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);

    cr_assert_geq(n, 0, "%s", path);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..")) {
            char *p = tu_join(path, nm);
            struct stat sb;
            cr_assert_eq(lstat(p, &sb), 0);
            if (S_ISDIR(sb.st_mode)) {
                cr_assert_eq(sb.st_mode & 07777, 0700, "%s: %o", p,
                             (unsigned)(sb.st_mode & 07777));
                (*dirs)++;
                tu_assert_private_tree(p, files, dirs);
            } else {
                cr_assert(S_ISREG(sb.st_mode), "%s", p);
                cr_assert_eq(sb.st_mode & 07777, 0600, "%s: %o", p,
                             (unsigned)(sb.st_mode & 07777));
                (*files)++;
            }
            free(p);
        }
        free(names[i]);
    }
    free(names);
}

long tu_env_long(const char *name, long dflt)
{
    const char *v = getenv(name);

    return v && *v ? strtol(v, NULL, 0) : dflt;
}

uint64_t tu_seed(const char *env, const char *what)
{
    const char *v = getenv(env);
    uint64_t seed;

    if (v && *v)
        seed = strtoull(v, NULL, 0);
    else
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    fprintf(stderr, "%s: seed 0x%" PRIx64 " (%s=0x%" PRIx64
            " repeats it)\n", what, seed, env, seed);
    return seed;
}

pid_t tu_spawn_tool(const char *bin_env, const char *dir, const char *tag,
                    const char *const *args)
{
    const char *argv[64];
    char out[1024], err[1024];
    posix_spawn_file_actions_t fa;
    pid_t pid;
    size_t n = 0;

    argv[n++] = getenv(bin_env);
    cr_assert_not_null(argv[0], "%s is set by meson", bin_env);
    while (args[n - 1] && n < 63) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    snprintf(out, sizeof(out), "%s/%s.out", dir, tag);
    snprintf(err, sizeof(err), "%s/%s.err", dir, tag);
    cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, (char **)argv,
                             environ),
                 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

int tu_wait_exit(pid_t pid)
{
    int ws;

    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    if (WIFEXITED(ws))
        return WEXITSTATUS(ws);
    return 128 + WTERMSIG(ws);
}
