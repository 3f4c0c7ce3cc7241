/*
 * testutil.c: helpers shared by the test suites (see testutil.h).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <spawn.h>
#include <sys/wait.h>
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
