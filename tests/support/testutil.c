/*
 * testutil.c: helpers shared by the test suites (see testutil.h).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <libpq-fe.h>
#include <pthread.h>

extern char **environ;

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

const char *tu_backend(void)
{
    const char *b = getenv("EVS_TEST_BACKEND");

    if (!b || !*b || strcmp(b, "file") == 0)
        return "file";
    cr_assert(strcmp(b, "sqlite") == 0 || strcmp(b, "postgresql") == 0,
              "EVS_TEST_BACKEND=%s: the backends are file, sqlite and "
              "postgresql",
              b);
    return strcmp(b, "sqlite") == 0 ? "sqlite" : "postgresql";
}

int tu_backend_is_file(void)
{
    return strcmp(tu_backend(), "file") == 0;
}

int tu_backend_is_pg(void)
{
    return strcmp(tu_backend(), "postgresql") == 0;
}

const char *tu_pg_uri(void)
{
    const char *uri = getenv("EVS_TEST_PG_URI");

    cr_assert(uri && *uri, "EVS_TEST_PG_URI is not set: run the test through "
                           "scripts/pg-test-server exec (meson test does)");
    return uri;
}

/* The schemas this process made already (tu_pg_schema). */
static pthread_mutex_t schema_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t schema_made[256];
static size_t schema_n;

void tu_pg_exec(const char *uri, const char *sql)
{
    PGconn *c = PQconnectdb(uri);
    PGresult *r;

    cr_assert(PQstatus(c) == CONNECTION_OK, "connect %s: %s", uri,
              PQerrorMessage(c));
    r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK ||
                  PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

void tu_pg_schema(const char *dir, char *out, size_t cap)
{
    /* FNV-1a of the directory's name: one schema per store directory, so
     * that the tests of a suite, each with its own directory, never see
     * each other's executions. */
    uint64_t h = 1469598103934665603ull;
    char sql[128];
    int made = 0;

    for (const char *p = dir; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(out, cap, "t_%016" PRIx64, h);
    pthread_mutex_lock(&schema_mu);
    for (size_t i = 0; i < schema_n && !made; i++)
        made = schema_made[i] == h;
    if (!made) {
        PGconn *c = PQconnectdb(tu_pg_uri());
        PGresult *r;

        cr_assert(PQstatus(c) == CONNECTION_OK, "connect: %s",
                  PQerrorMessage(c));
        snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", out);
        r = PQexec(c, sql);
        /* Two processes making it at once: the loser's unique violation
         * still leaves the schema there. */
        cr_assert(
            PQresultStatus(r) == PGRES_COMMAND_OK ||
                strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23505") == 0,
            "%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
        schema_made[schema_n++ % 256] = h;
        if (schema_n > 256)
            schema_n = 256;
    }
    pthread_mutex_unlock(&schema_mu);
}

const char *tu_loc(const char *dir)
{
    static char ring[64][4200];
    static unsigned next;
    char schema[40];
    const char *uri;
    char *p;

    if (tu_backend_is_file())
        return dir;
    p = ring[__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % 64];
    cr_assert_lt(strlen(dir), sizeof(ring[0]) - 32, "%s is too long", dir);
    if (!tu_backend_is_pg()) {
        snprintf(p, sizeof(ring[0]), "sqlite:%s/store.db", dir);
        return p;
    }
    tu_pg_schema(dir, schema, sizeof(schema));
    uri = tu_pg_uri();
    snprintf(p, sizeof(ring[0]), "%s%soptions=-csearch_path%%3D%s", uri,
             strchr(uri, '?') ? "&" : "?", schema);
    return p;
}

evs_store *tu_open_store(const char *path, const evs_io *io)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.io = io;
    if (evs_store_open(tu_loc(path), &o, &s) != 0)
        return NULL;
    return s;
}

void tu_fresh_store(const char *tag, char **dir, evs_store **st)
{
    *dir = tu_tmpdir(tag);
    cr_assert_not_null(*dir, "a directory for %s", tag);
    *st = tu_open_store(*dir, NULL);
    cr_assert_not_null(*st, "a store in %s", *dir);
}

void tu_drop_store(char **dir, evs_store **st)
{
    evs_store_close(*st);
    *st = NULL;
    tu_rmtree_free(*dir);
    *dir = NULL;
}

int tu_store_own(const char *name)
{
    return !strcmp(name, ".index") || !strcmp(name, ".writers");
}

void tu_forget_index(const char *store)
{
    char *p = tu_join(store, ".index");

    cr_assert(unlink(p) == 0 || errno == ENOENT, "unlink %s: %s", p,
              strerror(errno));
    free(p);
}

int tu_count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d, "%s", path);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            !tu_store_own(e->d_name))
            n++;
    closedir(d);
    return n;
}

void tu_nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int tu_thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
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

evs_snapshot tu_snapshot_at(uint64_t seq, const char *status)
{
    evs_snapshot sn;

    memset(&sn, 0, sizeof(sn));
    sn.workflow_name = evs_span_cstr("wf");
    sn.status = evs_span_cstr(status);
    sn.created_at_us = 1700000000000000LL;
    sn.last_event_seq = seq;
    return sn;
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

int tu_make_exec(evs_store *s, const char *id, size_t n)
{
    evs_log *l;
    int rc = tu_create(s, id);

    if (rc == 0)
        rc = evs_log_open(s, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL);
    if (rc == 0) {
        rc = tu_append_n(l, n);
        evs_log_close(l);
    }
    return rc;
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

void tu_fill_fixed(evs_store *s, const char *id)
{
    evs_event ev[3];
    evs_log *w;
    char ids[3][40];

    for (int i = 0; i < 3; i++) {
        ev[i] =
            tu_event(i ? EVS_EV_STEP_COMPLETED : EVS_EV_EXECUTION_STARTED,
                     i ? "s" : "", i ? "{\"n\":[1,2.50,\"\\u00e9\"]}" : "{}");
        snprintf(ids[i], sizeof(ids[i]),
                 "0190a000-0000-7000-8000-00000000000%d", i + 1);
        ev[i].id = evs_span_cstr(ids[i]);
        ev[i].timestamp_us = 1795342530000000 + i;
    }
    cr_assert_eq(evs_exec_create(s, id, strlen(id), NULL, ev, 1), 0);
    cr_assert_eq(evs_log_open(s, id, strlen(id), EVS_LOG_WRITE, &w, NULL, NULL),
                 0);
    cr_assert_eq(evs_log_append(w, ev + 1, 2, 1, NULL), 0, "a batch of two");
    evs_log_close(w);
}

char *tu_log_lines(evs_store *s, const char *id, size_t *len)
{
    evs_cursor *c;
    evs_log *l;
    evs_event ev;
    evs_span raw;
    size_t n = 0, cap = 65536;
    char *buf = calloc(1, cap);
    int rc;

    cr_assert_not_null(buf);
    cr_assert_eq(evs_log_open(s, id, strlen(id), 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    uint64_t seq = 0, end_of_append = 0;

    while ((rc = evs_cursor_next(c, &ev, &raw, NULL)) == 1) {
        cr_assert_eq(evs_cursor_offset(c), n + raw.len, "offsets as a file's");
        seq = ev.sequence;
        end_of_append =
            ev.batch_count > 1 ? ev.batch_first + ev.batch_count - 1 : seq;
        if (n + raw.len + 1 > cap) {
            cap = (n + raw.len + 1) * 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        memcpy(buf + n, raw.ptr, raw.len);
        n += raw.len;
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(seq, end_of_append, "the last append is whole");
    cr_assert_eq(evs_log_size(l), n);
    evs_cursor_close(c);
    evs_log_close(l);
    *len = n;
    return buf;
}

int tu_count_problems(void *arg, const evs_scan_item *it)
{
    size_t *n = arg;

    if (it->is_problem)
        (*n)++;
    return 0;
}

static void report(tu_fail_fn *fail, void *ctx, const char *id, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static void report(tu_fail_fn *fail, void *ctx, const char *id, const char *fmt,
                   ...)
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
        report(fail, ctx, id,
               "second recovery differs: cut %" PRIu64
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
        report(fail, ctx, id,
               "the event appended after recovery does not "
               "read back (%s)",
               evs_err_name(rc));
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
    fprintf(stderr, "%s: seed 0x%" PRIx64 " (%s=0x%" PRIx64 " repeats it)\n",
            what, seed, env, seed);
    return seed;
}

char *tu_read_or_empty(const char *path)
{
    size_t n;
    char *s = tu_read_file(path, &n);

    if (!s)
        s = strdup("");
    cr_assert_not_null(s);
    return s;
}

/* Puts `input` in a pipe and returns its read end, close-on-exec (the
 * child gets it as its stdin, dup2'ed); its write end is closed. */
static int input_pipe(const char *input)
{
    size_t len = strlen(input);
    int pfd[2];

    cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
    cr_assert_leq(len, (size_t)fcntl(pfd[1], F_GETPIPE_SZ),
                  "%zu bytes of input do not fit in a pipe", len);
    cr_assert_eq(write(pfd[1], input, len), (ssize_t)len);
    close(pfd[1]);
    return pfd[0];
}

/* Opens a pseudo-terminal: its master end, close-on-exec; its slave's
 * name in name[cap]. */
static int open_pty(char *name, size_t cap)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

    cr_assert_geq(master, 0);
    cr_assert_eq(grantpt(master), 0);
    cr_assert_eq(unlockpt(master), 0);
    cr_assert_eq(ptsname_r(master, name, cap), 0);
    return master;
}

pid_t tu_spawn(const char *bin_env, const tu_spawn_io *io,
               const char *const *args)
{
    static const tu_spawn_io none;
    const int wr = O_WRONLY | O_CREAT | O_TRUNC;
    const char *argv[64];
    char pts[256];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int in_fd = -1, out_fds[2] = {-1, -1}, master = -1;
    pid_t pid;
    size_t n = 0;

    if (!io)
        io = &none;
    argv[n++] = getenv(bin_env);
    cr_assert_not_null(argv[0], "%s is set by meson", bin_env);
    for (; args[n - 1]; n++) {
        cr_assert_lt(n, 63, "too many arguments for %s", bin_env);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1", 0);
    cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
    cr_assert_eq(posix_spawnattr_init(&attr), 0);
    if (io->tty) {
        /* The child's setsid comes before its file actions, so the
         * terminal it opens becomes its controlling one. */
        master = open_pty(pts, sizeof(pts));
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
        posix_spawn_file_actions_addopen(&fa, 0, pts, O_RDWR, 0);
        posix_spawn_file_actions_adddup2(&fa, 0, 1);
        posix_spawn_file_actions_adddup2(&fa, 0, 2);
        goto spawn;
    }
    if (io->input) {
        in_fd = input_pipe(io->input);
        posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, io->in ? io->in : "/dev/null",
                                         O_RDONLY, 0);
    }
    if (io->out_pipe) {
        cr_assert_eq(pipe2(out_fds, O_CLOEXEC), 0);
        posix_spawn_file_actions_adddup2(&fa, out_fds[1], 1);
    } else {
        posix_spawn_file_actions_addopen(
            &fa, 1, io->out ? io->out : "/dev/null", wr, 0600);
    }
    posix_spawn_file_actions_addopen(&fa, 2, io->err ? io->err : "/dev/null",
                                     wr, 0600);
spawn:
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, &attr, (char **)argv, environ),
                 0, "cannot start %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (in_fd >= 0)
        close(in_fd);
    if (io->out_pipe) {
        close(out_fds[1]);
        *io->out_pipe = out_fds[0];
    }
    if (io->tty)
        *io->tty = master;
    return pid;
}

pid_t tu_spawn_tool(const char *bin_env, const char *dir, const char *tag,
                    const char *const *args)
{
    char out[1024], err[1024];
    tu_spawn_io io = {.out = out, .err = err};

    snprintf(out, sizeof(out), "%s/%s.out", dir, tag);
    snprintf(err, sizeof(err), "%s/%s.err", dir, tag);
    return tu_spawn(bin_env, &io, args);
}

int tu_wait_exit(pid_t pid)
{
    int ws;

    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    if (WIFEXITED(ws))
        return WEXITSTATUS(ws);
    return 128 + WTERMSIG(ws);
}

tu_result tu_run_tool(const char *bin_env, const char *dir, const char *tag,
                      const char *const *args)
{
    char path[1024];
    tu_result r;

    r.status = tu_wait_exit(tu_spawn_tool(bin_env, dir, tag, args));
    snprintf(path, sizeof(path), "%s/%s.out", dir, tag);
    r.out = tu_read_or_empty(path);
    snprintf(path, sizeof(path), "%s/%s.err", dir, tag);
    r.err = tu_read_or_empty(path);
    return r;
}

void tu_result_free(tu_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}
