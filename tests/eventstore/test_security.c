/*
 * test_security.c: what the store refuses (tests/RELIABILITY.md §6):
 * execution ids that could name something other than an execution
 * directory, at every entry point that takes one; a symbolic link, FIFO
 * or hard link planted at every file and directory the store opens or
 * creates, including the temporaries with random names (planted by an
 * I/O table at the moment the store makes them, as a racing attacker
 * would); the modes of everything created under umask 000; and store
 * directories that other users may write to.
 */
#include <criterion/criterion.h>

#include "evstore/orchestrator.h"
#include "store_int.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static char *outside;
static evs_store *st;

static void setup(void)
{
    dir = tu_tmpdir("sec");
    outside = tu_tmpdir("outside");
    cr_assert_not_null(dir);
    cr_assert_not_null(outside);
    st = tu_open_store(dir, NULL);
    cr_assert_not_null(st);
}

static void teardown(void)
{
    evs_store_close(st);
    tu_rmtree_free(dir);
    tu_rmtree_free(outside);
}

TestSuite(sec, .init = setup, .fini = teardown);

static int scan_count(void *arg, const evs_scan_item *it)
{
    (void)it;
    (*(int *)arg)++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Execution ids                                                      */
/* ------------------------------------------------------------------ */

/* Every id-taking function of store.h and replay.h must refuse
 * id[0..len) with EVS_EBADID and create nothing. */
static void check_bad_id(const char *id, size_t len)
{
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL, "{}");
    evs_snapshot sn, *out = NULL;
    evs_request_listing rl;
    evs_replay *rp = NULL;
    evs_log *l = NULL;
    char buf[512];
    int calls = 0;

    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("running");
    cr_assert_eq(evs_exec_create(st, id, len, NULL, &e, 1), EVS_EBADID,
                 "create %zu bytes", len);
    cr_assert_eq(evs_exec_delete(st, id, len), EVS_EBADID);
    cr_assert_eq(evs_log_open(st, id, len, 0, &l, NULL, NULL), EVS_EBADID);
    cr_assert_eq(evs_log_open(st, id, len, EVS_LOG_WRITE, &l, NULL, NULL),
                 EVS_EBADID);
    cr_assert_null(l);
    cr_assert_eq(evs_snapshot_save(st, id, len, &sn), EVS_EBADID);
    cr_assert_eq(evs_snapshot_load(st, id, len, &out, NULL), EVS_EBADID);
    cr_assert_null(out);
    cr_assert_eq(evs_log_scan(st, id, len, scan_count, &calls), EVS_EBADID);
    cr_assert_eq(calls, 0);
    cr_assert_eq(evs_exec_exists(st, id, len), 0);
    /* Requests (the inbox is a directory below the execution's). */
    cr_assert_eq(evs_request_post(st, id, len, "{}", 2, NULL), EVS_EBADID);
    cr_assert_eq(evs_request_list(st, id, len, &rl), EVS_EBADID);
    cr_assert_eq(rl.count, 0);
    evs_request_list_free(&rl);
    cr_assert_eq(evs_request_remove(st, id, len,
                                    "01900000-0000-7000-8000-000000000001", 36),
                 EVS_EBADID);
    cr_assert_eq(evs_request_dir(st, id, len, buf, sizeof(buf)), EVS_EBADID);
    cr_assert_eq(evs_request_dir_peek(st, id, len, buf, sizeof(buf)),
                 EVS_EBADID);
    /* Replay opens by id too. */
    cr_assert_eq(evs_replay_new(NULL, &rp), 0);
    cr_assert_eq(evs_replay_open(rp, st, id, len, 0, NULL, NULL), EVS_EBADID);
    evs_replay_free(rp);
}

Test(sec, bad_execution_ids_are_refused_everywhere)
{
    static const char *bad[] = {"..",       ".",         "a/b", "/x",   "",
                                ".hidden",  "-x",        "a b", "a\\b", "_x",
                                "x\n",      "a/..",      "./a", "a/",   "../a",
                                "\xc3\xa9", "a\xc3\xa9", "a:b", "~a",   "a*",
                                "\x7f",     "a\r",       "a\t"};
    char longid[130];

    /* An existing execution that a path trick could reach. */
    cr_assert_eq(tu_create(st, "a"), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_bad_id(bad[i], strlen(bad[i]));
    /* An embedded NUL: "a" followed by more bytes must not mean "a". */
    check_bad_id("a\0/../x", 7);
    check_bad_id("a\0", 2);
    /* NULL with a length. */
    check_bad_id(NULL, 3);
    memset(longid, 'a', sizeof(longid));
    check_bad_id(longid, 129);
    cr_assert_eq(tu_count_entries(dir), 1, "nothing was created");
    {
        char *a = tu_join(dir, "a");
        cr_assert_eq(tu_count_entries(a), 2,
                     "nothing was created below a/ either");
        free(a);
    }
    cr_assert_eq(tu_count_entries(outside), 0);
    cr_assert_eq(tu_count_events(st, "a"), 1, "nothing was changed");
}

Test(sec, an_id_of_128_bytes_is_fine)
{
    char id[EVS_ID_MAX];
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL, "{}");
    evs_snapshot *out = NULL;
    evs_log *l;

    memset(id, 'z', sizeof(id));
    id[0] = '7';
    id[60] = '.';
    id[61] = '_';
    id[62] = '-';
    cr_assert_eq(evs_exec_create(st, id, sizeof(id), NULL, &e, 1), 0);
    cr_assert(evs_exec_exists(st, id, sizeof(id)));
    cr_assert_eq(
        evs_log_open(st, id, sizeof(id), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(strlen(evs_log_id(l)), EVS_ID_MAX);
    evs_log_close(l);
    cr_assert_eq(evs_snapshot_load(st, id, sizeof(id), &out, NULL), 0);
    cr_assert_eq(out->id.len, EVS_ID_MAX);
    evs_snapshot_free(out);
    cr_assert_eq(evs_exec_delete(st, id, sizeof(id)), 0);
    cr_assert_eq(tu_count_entries(dir), 0);
}

/* ------------------------------------------------------------------ */
/* Symbolic links                                                     */
/* ------------------------------------------------------------------ */

/* The whole content of every file of a flat directory, in name order,
 * as one string: what "nothing changed outside" compares. */
static char *dir_digest(const char *path)
{
    struct dirent **names;
    size_t cap = 1, used = 0;
    char *out = malloc(1);
    int n;

    cr_assert_not_null(out);
    n = scandir(path, &names, NULL, alphasort);
    cr_assert_geq(n, 0);
    for (int i = 0; i < n; i++) {
        char *p = tu_join(path, names[i]->d_name);
        struct stat sb;
        size_t len = 0;
        char *body = NULL;
        char head[512];
        int hl;

        cr_assert_eq(lstat(p, &sb), 0);
        if (S_ISREG(sb.st_mode))
            body = tu_read_file(p, &len);
        hl = snprintf(head, sizeof(head), "[%s %o %lld]", names[i]->d_name,
                      (unsigned)sb.st_mode, (long long)sb.st_size);
        out = realloc(out, cap + (size_t)hl + len);
        cr_assert_not_null(out);
        memcpy(out + used, head, (size_t)hl);
        used += (size_t)hl;
        if (body)
            memcpy(out + used, body, len);
        used += len;
        cap = used + 1;
        free(body);
        free(p);
        free(names[i]);
    }
    free(names);
    out[used] = '\0';
    return out;
}

Test(sec, a_symlinked_log_is_not_followed)
{
    char *lp = tu_path(dir, "x", EVS__LOG_NAME);
    char *target = tu_join(outside, "victim.jsonl");
    char *before, *after;
    evs_log *l = NULL;
    size_t len;
    char *log;
    int calls = 0;

    /* The target holds a valid log of x, so following it would work. */
    cr_assert_eq(tu_create(st, "x"), 0);
    log = tu_read_file(lp, &len);
    cr_assert_not_null(log);
    cr_assert_eq(tu_write_file(target, log, len), 0);
    cr_assert_eq(unlink(lp), 0);
    cr_assert_eq(symlink(target, lp), 0);
    before = dir_digest(outside);

    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL),
                 -ELOOP);
    cr_assert_eq(evs_log_open(st, "x", 1, 0, &l, NULL, NULL), -ELOOP);
    cr_assert_null(l);
    cr_assert_eq(evs_exec_exists(st, "x", 1), 0);
    cr_assert_lt(evs_log_scan(st, "x", 1, scan_count, &calls), 0);
    cr_assert_eq(calls, 0);
    evs_exec_delete(st, "x", 1); /* may refuse; must not write through */

    after = dir_digest(outside);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    free(log);
    free(target);
    free(lp);
}

Test(sec, a_symlinked_execution_directory_is_not_followed)
{
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL, "{}");
    evs_snapshot sn, *out = NULL;
    char *ep = tu_join(dir, "x");
    char *src = tu_join(dir, "src");
    char *before, *after;
    evs_log *l = NULL;
    struct stat sb;
    int calls = 0;

    /* The outside directory holds a valid execution "x", so following the
     * link would work. */
    cr_assert_eq(tu_create(st, "x"), 0);
    cr_assert_eq(rename(ep, src), 0);
    {
        char *a = tu_path(dir, "src", EVS__LOG_NAME);
        char *b = tu_path(dir, "src", EVS__SNAP_NAME);
        char *c = tu_join(outside, EVS__LOG_NAME);
        char *d = tu_join(outside, EVS__SNAP_NAME);
        cr_assert_eq(rename(a, c), 0);
        cr_assert_eq(rename(b, d), 0);
        cr_assert_eq(rmdir(src), 0);
        free(a);
        free(b);
        free(c);
        free(d);
    }
    cr_assert_eq(symlink(outside, ep), 0);
    before = dir_digest(outside);

    cr_assert_lt(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_lt(evs_log_open(st, "x", 1, 0, &l, NULL, NULL), 0);
    cr_assert_null(l);
    cr_assert_eq(evs_exec_exists(st, "x", 1), 0);
    cr_assert_lt(evs_exec_create(st, "x", 1, NULL, &e, 1), 0);
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("completed");
    cr_assert_lt(evs_snapshot_save(st, "x", 1, &sn), 0);
    cr_assert_lt(evs_snapshot_load(st, "x", 1, &out, NULL), 0);
    cr_assert_null(out);
    cr_assert_lt(evs_log_scan(st, "x", 1, scan_count, &calls), 0);
    cr_assert_eq(calls, 0);
    cr_assert_lt(evs_exec_delete(st, "x", 1), 0);
    cr_assert_eq(evs_exec_cleanup(st, INT64_MAX, NULL), 0);

    after = dir_digest(outside);
    cr_assert_str_eq(before, after);
    cr_assert_eq(lstat(ep, &sb), 0);
    cr_assert(S_ISLNK(sb.st_mode), "the link itself is still there");
    cr_assert_eq(tu_count_entries(dir), 1,
                 "no temporary or trash entry is left");
    free(before);
    free(after);
    free(src);
    free(ep);
}

Test(sec, a_symlinked_snapshot_is_not_read_and_is_replaced_not_written)
{
    char *sp = tu_path(dir, "x", EVS__SNAP_NAME);
    char *target = tu_join(outside, "victim.json");
    evs_snapshot sn, *out = NULL;
    char *before, *after;
    size_t len;
    char *snap;
    struct stat sb;

    cr_assert_eq(tu_create(st, "x"), 0);
    snap = tu_read_file(sp, &len);
    cr_assert_not_null(snap);
    cr_assert_eq(tu_write_file(target, snap, len), 0);
    cr_assert_eq(unlink(sp), 0);
    cr_assert_eq(symlink(target, sp), 0);
    before = dir_digest(outside);

    cr_assert_eq(evs_snapshot_load(st, "x", 1, &out, NULL), -ELOOP);
    cr_assert_null(out);

    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("completed");
    sn.last_event_seq = 1;
    cr_assert_eq(evs_snapshot_save(st, "x", 1, &sn), 0);
    cr_assert_eq(lstat(sp, &sb), 0);
    cr_assert(S_ISREG(sb.st_mode), "the link was replaced by the snapshot");
    cr_assert_eq(evs_snapshot_load(st, "x", 1, &out, NULL), 0);
    cr_assert(evs__span_eq_cstr(out->status, "completed"));
    evs_snapshot_free(out);

    after = dir_digest(outside);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    free(snap);
    free(target);
    free(sp);
}

/* ------------------------------------------------------------------ */
/* FIFOs and hard links                                               */
/* ------------------------------------------------------------------ */

Test(sec, a_fifo_in_place_of_the_log_fails_promptly)
{
    char *lp = tu_path(dir, "x", EVS__LOG_NAME);
    evs_snapshot *out = NULL;
    evs_log *l = NULL;
    int calls = 0;

    cr_assert_eq(tu_create(st, "x"), 0);
    cr_assert_eq(unlink(lp), 0);
    cr_assert_eq(mkfifo(lp, 0600), 0);
    alarm(5); /* a hang is a failure, not a stuck test run */
    cr_assert_lt(evs_log_open(st, "x", 1, 0, &l, NULL, NULL), 0);
    cr_assert_lt(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_null(l);
    cr_assert_eq(evs_exec_exists(st, "x", 1), 0);
    cr_assert_lt(evs_snapshot_load(st, "x", 1, &out, NULL), 0);
    cr_assert_lt(evs_log_scan(st, "x", 1, scan_count, &calls), 0);
    cr_assert_eq(calls, 0);
    alarm(0);
    free(lp);
}

Test(sec, a_fifo_in_place_of_the_snapshot_fails_promptly)
{
    char *sp = tu_path(dir, "x", EVS__SNAP_NAME);
    evs_snapshot *out = NULL;
    evs_exec_listing L;

    cr_assert_eq(tu_create(st, "x"), 0);
    cr_assert_eq(unlink(sp), 0);
    cr_assert_eq(mkfifo(sp, 0600), 0);
    alarm(5);
    cr_assert_lt(evs_snapshot_load(st, "x", 1, &out, NULL), 0);
    cr_assert_null(out);
    cr_assert_eq(evs_exec_list(st, NULL, &L), 0);
    cr_assert_eq(L.count, 1);
    cr_assert_eq(L.items[0].snapshot_ok, 0);
    evs_exec_list_free(&L);
    cr_assert_eq(evs_exec_cleanup(st, INT64_MAX, NULL), 0);
    cr_assert(evs_exec_exists(st, "x", 1));
    alarm(0);
    free(sp);
}

Test(sec, a_hard_linked_log_is_unsafe)
{
    char *lp = tu_path(dir, "x", EVS__LOG_NAME);
    char *alias = tu_join(outside, "alias.jsonl");
    evs_log *l = NULL;
    evs_error_info info;
    size_t len;
    char *before, *after;

    cr_assert_eq(tu_create(st, "x"), 0);
    cr_assert_eq(link(lp, alias), 0);
    before = tu_read_file(alias, &len);
    cr_assert_not_null(before);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, &info),
                 EVS_EUNSAFE);
    cr_assert_eq(info.code, EVS_EUNSAFE);
    cr_assert_eq(evs_log_open(st, "x", 1, 0, &l, NULL, NULL), EVS_EUNSAFE);
    cr_assert_null(l);
    after = tu_read_file(alias, &len);
    cr_assert_str_eq(before, after);
    /* Once the alias is gone the log is usable again. */
    cr_assert_eq(unlink(alias), 0);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    evs_log_close(l);
    free(before);
    free(after);
    free(alias);
    free(lp);
}

Test(sec, a_hard_linked_snapshot_is_unsafe)
{
    char *sp = tu_path(dir, "x", EVS__SNAP_NAME);
    char *alias = tu_join(outside, "alias.json");
    evs_snapshot sn, *out = NULL;
    size_t len;
    char *before, *after;

    cr_assert_eq(tu_create(st, "x"), 0);
    cr_assert_eq(link(sp, alias), 0);
    before = tu_read_file(alias, &len);
    cr_assert_not_null(before);
    cr_assert_eq(evs_snapshot_load(st, "x", 1, &out, NULL), EVS_EUNSAFE);
    cr_assert_null(out);
    /* Saving replaces the name, so the alias keeps the old bytes. */
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("paused");
    cr_assert_eq(evs_snapshot_save(st, "x", 1, &sn), 0);
    after = tu_read_file(alias, &len);
    cr_assert_str_eq(before, after);
    cr_assert_eq(evs_snapshot_load(st, "x", 1, &out, NULL), 0);
    cr_assert(evs__span_eq_cstr(out->status, "paused"));
    evs_snapshot_free(out);
    free(before);
    free(after);
    free(alias);
    free(sp);
}

/* ------------------------------------------------------------------ */
/* Permissions                                                        */
/* ------------------------------------------------------------------ */

static unsigned perm_of(const char *path)
{
    struct stat sb;

    cr_assert_eq(lstat(path, &sb), 0, "lstat %s: %s", path, strerror(errno));
    return (unsigned)(sb.st_mode & 07777);
}

Test(sec, permissions_are_private_under_umask_0)
{
    char *root = tu_join(outside, "store");
    char *ep, *lp, *sp;
    evs_store *s2 = NULL;
    evs_snapshot sn;
    evs_log *l;

    umask(0);
    cr_assert_eq(evs_store_open(root, NULL, &s2), 0);
    cr_assert_eq(perm_of(root), 0700);
    cr_assert_eq(tu_create(s2, "p"), 0);
    ep = tu_join(root, "p");
    lp = tu_path(root, "p", EVS__LOG_NAME);
    sp = tu_path(root, "p", EVS__SNAP_NAME);
    cr_assert_eq(perm_of(ep), 0700);
    cr_assert_eq(perm_of(lp), 0600);
    cr_assert_eq(perm_of(sp), 0600);
    cr_assert_eq(evs_log_open(s2, "p", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(tu_append_n(l, 2), 0);
    evs_log_close(l);
    cr_assert_eq(perm_of(lp), 0600);
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("running");
    sn.last_event_seq = 3;
    cr_assert_eq(evs_snapshot_save(s2, "p", 1, &sn), 0);
    cr_assert_eq(perm_of(sp), 0600);
    cr_assert_eq(tu_count_entries(ep), 2);
    evs_store_close(s2);
    free(ep);
    free(lp);
    free(sp);
    free(root);
}

/* ================================================================== */
/* The audit of tests/RELIABILITY.md §6                               */
/* ================================================================== */

/*
 * The suites below work in a private base directory that holds the store
 * (base/store) and a directory outside it (base/outside) with a victim
 * file, so that "nothing was created or changed outside the store" can
 * be checked on the whole base, the store's parent included.
 */
static char *base, *sroot, *odir, *victim;

#define VICTIM_TEXT "outside the store\n"

static void base_setup(void)
{
    base = tu_tmpdir("secb");
    cr_assert_not_null(base);
    sroot = tu_join(base, "store");
    odir = tu_join(base, "outside");
    victim = tu_join(odir, "victim");
    cr_assert_eq(mkdir(odir, 0700), 0);
    cr_assert_eq(tu_write_file(victim, VICTIM_TEXT, strlen(VICTIM_TEXT)), 0);
    st = NULL;
}

static void base_teardown(void)
{
    evs_store_close(st);
    st = NULL;
    free(sroot);
    free(odir);
    free(victim);
    tu_rmtree_free(base);
}

/* The names in `path` (without "." and ".."), sorted, joined by '|'. */
static char *names_of(const char *path)
{
    struct dirent **names;
    size_t used = 0;
    char *out = malloc(1);
    int n = scandir(path, &names, NULL, alphasort);

    cr_assert_not_null(out);
    cr_assert_geq(n, 0, "scandir %s: %s", path, strerror(errno));
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..") && strcmp(nm, ".writers")) {
            size_t l = strlen(nm);
            out = realloc(out, used + l + 2);
            cr_assert_not_null(out);
            memcpy(out + used, nm, l);
            used += l;
            out[used++] = '|';
            out[used] = '\0';
        }
        free(names[i]);
    }
    free(names);
    return out;
}

static void assert_names(const char *path, const char *want)
{
    char *got = names_of(path);

    cr_assert_str_eq(got, want, "entries of %s", path);
    free(got);
}

static evs_store *open_at(const char *path, const evs_io *io, evs_durability d)
{
    evs_store_opts o;
    evs_store *s = NULL;
    int rc;

    evs_store_opts_init(&o);
    o.io = io;
    o.durability = d;
    rc = evs_store_open(path, &o, &s);
    cr_assert_eq(rc, 0, "open %s: %s", path, evs_strerror(rc));
    return s;
}

/* ------------------------------------------------------------------ */
/* A deadline for calls that could block                              */
/* ------------------------------------------------------------------ */

#define GUARD_SECONDS 30

/*
 * Runs fn(arg) in a child process that SIGALRM ends after GUARD_SECONDS:
 * an open that blocks (on a FIFO, say) then fails the test instead of
 * hanging the run. This is a guard, not a measurement: a call that
 * returns at all returns in milliseconds. fn must not assert; it returns
 * a value, which this returns.
 */
static int guarded(int (*fn)(void *), void *arg)
{
    int p[2], rc = INT_MIN, ws;
    ssize_t n;
    pid_t pid;

    cr_assert_eq(pipe(p), 0);
    fflush(NULL);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        alarm(GUARD_SECONDS);
        rc = fn(arg);
        n = write(p[1], &rc, sizeof(rc));
        _exit(n == (ssize_t)sizeof(rc) ? 0 : 1);
    }
    close(p[1]);
    n = read(p[0], &rc, sizeof(rc));
    close(p[0]);
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cr_assert(!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGALRM,
              "the call blocked: still waiting after %d s", GUARD_SECONDS);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && n == (ssize_t)sizeof(rc),
              "the child failed (wait status %#x)", (unsigned)ws);
    return rc;
}

/* ------------------------------------------------------------------ */
/* An I/O table that plants, and audits                               */
/* ------------------------------------------------------------------ */

enum { PL_SYMLINK, PL_FIFO, PL_HARDLINK, PL_KINDS };
static const char *const pl_name[PL_KINDS] = {"symbolic link", "FIFO",
                                              "hard link"};

enum { AT_OPEN = 1, AT_MKDIR = 2, AT_RENAME = 4 };

/*
 * Wraps the POSIX table. Armed, it plants `kind` at the first name that
 * starts with `prefix` which the store is about to create with a call of
 * the kinds in `at` (open with O_CREAT, mkdir, the target of a rename),
 * right before the call: a temporary's random name cannot be guessed, but
 * a racing process may still win, and this is that race, won every time.
 *
 * It also audits: a read, write, truncation or listing of the victim or
 * of the outside directory, or a call relative to the outside directory,
 * is an escape; and it records the mode of everything the store creates.
 * It lives in shared memory so that a guarded child's counts are seen.
 */
typedef struct plant_io {
    evs_io io;
    const evs_io *base;
    const char *prefix;
    unsigned at;
    int kind;
    int link_dir; /* a symbolic link points at the outside dir */
    int armed;
    int planted;
    int plant_errno;
    char planted_name[256];
    dev_t vdev, odev;
    ino_t vino, oino;
    int escapes;
    char escape_what[128];
    int files, dirs, bad_modes;
    char bad_what[256];
} plant_io;

static plant_io *pio;

#define PIO(ctx) ((plant_io *)(ctx))
#define B(ctx) (PIO(ctx)->base)

static void plant(plant_io *p, int dirfd, const char *name)
{
    int rc;

    if (!p->armed || p->planted ||
        strncmp(name, p->prefix, strlen(p->prefix)) != 0)
        return;
    if (p->kind == PL_SYMLINK)
        rc = symlinkat(p->link_dir ? odir : victim, dirfd, name);
    else if (p->kind == PL_FIFO)
        rc = mkfifoat(dirfd, name, 0600);
    else
        rc = linkat(AT_FDCWD, victim, dirfd, name, 0);
    p->planted++;
    p->plant_errno = rc != 0 ? errno : 0;
    snprintf(p->planted_name, sizeof(p->planted_name), "%s", name);
}

static int forbidden(plant_io *p, int fd)
{
    struct stat sb;

    if (fd < 0 || fstat(fd, &sb) != 0)
        return 0;
    return (sb.st_dev == p->vdev && sb.st_ino == p->vino) ||
           (sb.st_dev == p->odev && sb.st_ino == p->oino);
}

static void escape(plant_io *p, int fd, const char *what)
{
    if (forbidden(p, fd)) {
        p->escapes++;
        snprintf(p->escape_what, sizeof(p->escape_what), "%s", what);
    }
}

static int p_openat(void *ctx, int dirfd, const char *name, int flags,
                    mode_t mode, int *fd)
{
    plant_io *p = ctx;
    struct stat sb;
    int rc;

    if ((p->at & AT_OPEN) && (flags & O_CREAT))
        plant(p, dirfd, name);
    escape(p, dirfd, "an open inside the outside directory");
    rc = B(ctx)->openat(B(ctx)->ctx, dirfd, name, flags, mode, fd);
    if (rc == 0 && (flags & O_CREAT) && fstat(*fd, &sb) == 0) {
        p->files++;
        if ((sb.st_mode & 07777) != 0600) {
            p->bad_modes++;
            snprintf(p->bad_what, sizeof(p->bad_what), "file %s: %o", name,
                     (unsigned)(sb.st_mode & 07777));
        }
    }
    return rc;
}

static int p_close(void *ctx, int fd)
{
    return B(ctx)->close(B(ctx)->ctx, fd);
}

static int p_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off,
                   size_t *got)
{
    escape(PIO(ctx), fd, "a read");
    return B(ctx)->pread(B(ctx)->ctx, fd, buf, len, off, got);
}

static int p_pwritev(void *ctx, int fd, const struct iovec *iov, int cnt,
                     uint64_t off)
{
    escape(PIO(ctx), fd, "a write");
    return B(ctx)->pwritev(B(ctx)->ctx, fd, iov, cnt, off);
}

static int p_fdatasync(void *ctx, int fd)
{
    return B(ctx)->fdatasync(B(ctx)->ctx, fd);
}

static int p_fsync(void *ctx, int fd)
{
    return B(ctx)->fsync(B(ctx)->ctx, fd);
}

static int p_ftruncate(void *ctx, int fd, uint64_t len)
{
    escape(PIO(ctx), fd, "a truncation");
    return B(ctx)->ftruncate(B(ctx)->ctx, fd, len);
}

static int p_fstat(void *ctx, int fd, evs_stat *st_)
{
    return B(ctx)->fstat(B(ctx)->ctx, fd, st_);
}

static int p_mkdirat(void *ctx, int dirfd, const char *name, mode_t mode)
{
    plant_io *p = ctx;
    struct stat sb;
    int rc;

    if (p->at & AT_MKDIR)
        plant(p, dirfd, name);
    escape(p, dirfd, "a mkdir inside the outside directory");
    rc = B(ctx)->mkdirat(B(ctx)->ctx, dirfd, name, mode);
    if (rc == 0 && fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        p->dirs++;
        if ((sb.st_mode & 07777) != 0700) {
            p->bad_modes++;
            snprintf(p->bad_what, sizeof(p->bad_what), "directory %s: %o", name,
                     (unsigned)(sb.st_mode & 07777));
        }
    }
    return rc;
}

static int p_renameat(void *ctx, int od, const char *on, int nd, const char *nn,
                      unsigned flags)
{
    plant_io *p = ctx;

    if (p->at & AT_RENAME)
        plant(p, nd, nn);
    escape(p, od, "a rename inside the outside directory");
    escape(p, nd, "a rename into the outside directory");
    return B(ctx)->renameat(B(ctx)->ctx, od, on, nd, nn, flags);
}

static int p_unlinkat(void *ctx, int dirfd, const char *name, int flags)
{
    escape(PIO(ctx), dirfd, "an unlink inside the outside directory");
    return B(ctx)->unlinkat(B(ctx)->ctx, dirfd, name, flags);
}

static int p_lock(void *ctx, int fd, int op)
{
    return B(ctx)->lock(B(ctx)->ctx, fd, op);
}

static int p_listdir(void *ctx, int dirfd, evs_dirent_fn fn, void *arg)
{
    escape(PIO(ctx), dirfd, "a listing of the outside directory");
    return B(ctx)->listdir(B(ctx)->ctx, dirfd, fn, arg);
}

static int p_statat(void *ctx, int dirfd, const char *path, evs_stat *st_)
{
    return B(ctx)->statat(B(ctx)->ctx, dirfd, path, st_);
}

/* Makes the shared table (disarmed) and notes the victim's and the
 * outside directory's inodes. */
static plant_io *pio_new(void)
{
    plant_io *p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct stat sb;

    cr_assert_neq(p, MAP_FAILED);
    memset(p, 0, sizeof(*p));
    p->base = evs_io_posix();
    p->prefix = "";
    p->io = (evs_io){
        .ctx = p,
        .openat = p_openat,
        .close = p_close,
        .pread = p_pread,
        .pwritev = p_pwritev,
        .fdatasync = p_fdatasync,
        .fsync = p_fsync,
        .ftruncate = p_ftruncate,
        .fstat = p_fstat,
        .mkdirat = p_mkdirat,
        .renameat = p_renameat,
        .unlinkat = p_unlinkat,
        .lock = p_lock,
        .listdir = p_listdir,
        .statat = p_statat,
    };
    cr_assert_eq(stat(victim, &sb), 0);
    p->vdev = sb.st_dev;
    p->vino = sb.st_ino;
    cr_assert_eq(stat(odir, &sb), 0);
    p->odev = sb.st_dev;
    p->oino = sb.st_ino;
    return p;
}

static void plant_setup(void)
{
    base_setup();
    pio = pio_new();
}

static void plant_teardown(void)
{
    base_teardown();
    munmap(pio, sizeof(*pio));
    pio = NULL;
}

/* Asserts that `path` is still what was planted there. */
static void assert_planted(const char *path, int kind)
{
    struct stat sb;

    cr_assert_eq(lstat(path, &sb), 0, "the planted %s at %s is gone",
                 pl_name[kind], path);
    if (kind == PL_SYMLINK)
        cr_assert(S_ISLNK(sb.st_mode), "%s is no longer a link", path);
    else if (kind == PL_FIFO)
        cr_assert(S_ISFIFO(sb.st_mode), "%s is no longer a FIFO", path);
    else
        cr_assert(S_ISREG(sb.st_mode) && sb.st_nlink == 2,
                  "%s is no longer the victim's second link", path);
}

/* The victim's content is what it was. */
static void assert_victim(const char *want)
{
    size_t len;
    char *v = tu_read_file(victim, &len);

    cr_assert_not_null(v, "the victim is gone");
    cr_assert_eq(len, strlen(want), "the victim was written to");
    cr_assert_str_eq(v, want, "the victim was written to");
    free(v);
}

/* ------------------------------------------------------------------ */
/* Plantings at the temporaries and targets with random names         */
/* ------------------------------------------------------------------ */

/* What one planting case does, around the call under attack. */
typedef struct plant_case {
    const char *what;
    const char *prefix;
    unsigned at;
    int link_dir;
    void (*prep)(void);              /* the state to start from */
    int (*op)(void *);               /* the call, in a guarded child */
    void (*check)(int kind, int rc); /* afterwards, in the parent */
} plant_case;

/* Runs a case once per kind of planting, each on a fresh store. */
static void run_plant_case(const plant_case *c)
{
    for (int k = 0; k < PL_KINDS; k++) {
        char *before, *after;
        int rc;

        st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
        c->prep();
        before = dir_digest(odir);
        pio->prefix = c->prefix;
        pio->at = c->at;
        pio->kind = k;
        pio->link_dir = c->link_dir;
        pio->planted = 0;
        pio->escapes = 0;
        pio->armed = 1;
        rc = guarded(c->op, NULL);
        pio->armed = 0;
        cr_assert_eq(pio->planted, 1, "%s, %s: nothing was planted", c->what,
                     pl_name[k]);
        cr_assert_eq(pio->plant_errno, 0, "planting: %s",
                     strerror(pio->plant_errno));
        c->check(k, rc);
        cr_assert_eq(pio->escapes, 0, "%s, %s: %s of what is outside", c->what,
                     pl_name[k], pio->escape_what);
        after = dir_digest(odir);
        cr_assert_str_eq(before, after, "%s, %s: the outside changed", c->what,
                         pl_name[k]);
        assert_names(base, "outside|store|");
        free(before);
        free(after);
        evs_store_close(st);
        st = NULL;
        tu_rmtree_free(strdup(sroot));
    }
}

static char *in_store(const char *a, const char *b)
{
    char *p = tu_join(sroot, a), *q;

    if (!b)
        return p;
    q = tu_join(p, b);
    free(p);
    return q;
}

static int status_is(const char *id, const char *want)
{
    evs_snapshot *sn = NULL;
    int rc = evs_snapshot_load(st, id, strlen(id), &sn, NULL), ok;

    ok = rc == 0 && evs__span_eq_cstr(sn->status, want);
    evs_snapshot_free(sn);
    return ok;
}

static void prep_x(void)
{
    cr_assert_eq(tu_create(st, "x"), 0);
}

static void prep_nothing(void)
{
}

/* -- the snapshot's temporary --------------------------------------- */

static int op_save(void *arg)
{
    evs_snapshot sn;

    (void)arg;
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("completed");
    sn.last_event_seq = 1;
    return evs_snapshot_save(st, "x", 1, &sn);
}

static void check_save(int kind, int rc)
{
    char *p = in_store("x", pio->planted_name);

    cr_assert_eq(rc, -EEXIST, "%s: %s", pl_name[kind], evs_strerror(rc));
    cr_assert(status_is("x", "running"), "the old snapshot stays");
    assert_planted(p, kind);
    free(p);
}

Test(sec_plant, a_planted_snapshot_temporary_is_never_opened)
{
    const plant_case c = {
        "snapshot temporary", ".tmp-", AT_OPEN, 0, prep_x, op_save, check_save};
    run_plant_case(&c);
}

/* -- the directory an execution is created in ----------------------- */

static int op_create_y(void *arg)
{
    (void)arg;
    return tu_create(st, "y");
}

static void check_create(int kind, int rc)
{
    char *p = in_store(pio->planted_name, NULL);

    cr_assert_eq(rc, -EEXIST, "%s: %s", pl_name[kind], evs_strerror(rc));
    cr_assert_eq(evs_exec_exists(st, "y", 1), 0);
    assert_planted(p, kind);
    cr_assert_eq(tu_count_entries(sroot), 1, "only the planted name is there");
    free(p);
}

Test(sec_plant, a_planted_creation_directory_is_never_built_in)
{
    const plant_case c = {"creation directory", ".tmp-",     AT_MKDIR,    1,
                          prep_nothing,         op_create_y, check_create};
    run_plant_case(&c);
}

/* -- the files of an execution being created ------------------------ */

static void check_create_files(int kind, int rc)
{
    cr_assert_eq(rc, -EEXIST, "%s: %s", pl_name[kind], evs_strerror(rc));
    cr_assert_eq(evs_exec_exists(st, "y", 1), 0);
    /* The half-built directory, plant and all, is removed: the plant is
     * unlinked, never followed. */
    cr_assert_eq(tu_count_entries(sroot), 0, "nothing is left of the creation");
}

Test(sec_plant, a_planted_log_in_a_creation_directory_is_never_opened)
{
    const plant_case c = {
        "log of a creation", EVS__LOG_NAME, AT_OPEN,           0,
        prep_nothing,        op_create_y,   check_create_files};
    run_plant_case(&c);
}

Test(sec_plant, a_planted_snapshot_temporary_of_a_creation_is_never_opened)
{
    const plant_case c = {"snapshot temporary of a creation",
                          ".tmp-",
                          AT_OPEN,
                          0,
                          prep_nothing,
                          op_create_y,
                          check_create_files};
    run_plant_case(&c);
}

/* -- snapshot.json itself, when it is replaced ------------------------ */

static void check_replaced(int kind, int rc)
{
    char *sp = in_store("x", EVS__SNAP_NAME);
    struct stat sb;

    cr_assert_eq(rc, 0, "%s: %s", pl_name[kind], evs_strerror(rc));
    /* The rename replaced the planted name, which is gone with its
     * link: the victim keeps its bytes and its single name. */
    cr_assert_eq(lstat(sp, &sb), 0);
    cr_assert(S_ISREG(sb.st_mode) && sb.st_nlink == 1, "%s", pl_name[kind]);
    cr_assert(status_is("x", "completed"));
    cr_assert_eq(stat(victim, &sb), 0);
    cr_assert_eq(sb.st_nlink, 1);
    free(sp);
}

static void prep_x_no_snapshot(void)
{
    char *sp = in_store("x", EVS__SNAP_NAME);

    prep_x();
    cr_assert_eq(unlink(sp), 0);
    free(sp);
}

Test(sec_plant, a_planted_snapshot_is_replaced_not_written_through)
{
    const plant_case c = {"snapshot.json",    EVS__SNAP_NAME, AT_RENAME,     0,
                          prep_x_no_snapshot, op_save,        check_replaced};
    run_plant_case(&c);
}

/* -- the name a deleted execution is moved to ------------------------ */

static int op_delete_x(void *arg)
{
    (void)arg;
    return evs_exec_delete(st, "x", 1);
}

static void check_delete(int kind, int rc)
{
    char *p = in_store(pio->planted_name, NULL);

    cr_assert_eq(rc, -EEXIST, "%s: %s", pl_name[kind], evs_strerror(rc));
    cr_assert(evs_exec_exists(st, "x", 1), "x was not deleted");
    cr_assert_eq(tu_count_events(st, "x"), 1);
    assert_planted(p, kind);
    free(p);
}

Test(sec_plant, a_planted_trash_name_is_never_renamed_over)
{
    const plant_case c = {"trash name", ".trash-",   AT_RENAME,   1,
                          prep_x,       op_delete_x, check_delete};
    run_plant_case(&c);
}

/* -- the file a torn tail is saved to -------------------------------- */

#define FRAGMENT "{\"v\":1,\"id\":\"torn"

static long long torn_size;

static void prep_torn(void)
{
    char *lp = in_store("x", EVS__LOG_NAME);
    int fd;

    prep_x();
    fd = open(lp, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, FRAGMENT, strlen(FRAGMENT)),
                 (ssize_t)strlen(FRAGMENT));
    close(fd);
    torn_size = tu_file_size(lp);
    free(lp);
}

static int op_writer_open(void *arg)
{
    evs_log *l = NULL;
    int rc;

    (void)arg;
    rc = evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL);
    evs_log_close(l);
    return rc;
}

static void check_cut(int kind, int rc)
{
    char *lp = in_store("x", EVS__LOG_NAME);
    char *p = in_store("x", pio->planted_name);
    evs_recovery_info rec;
    evs_log *l = NULL;

    cr_assert_eq(rc, -EEXIST, "%s: %s", pl_name[kind], evs_strerror(rc));
    cr_assert_eq(tu_file_size(lp), torn_size,
                 "nothing is cut before it is saved");
    assert_planted(p, kind);
    /* With the planted name gone, recovery goes ahead. */
    cr_assert_eq(unlink(p), 0);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, &rec, NULL), 0);
    cr_assert_eq(rec.cut_bytes, strlen(FRAGMENT));
    evs_log_close(l);
    free(lp);
    free(p);
}

Test(sec_plant, a_planted_cut_file_is_never_written)
{
    const plant_case c = {"cut file", "cut-",         AT_OPEN,  0,
                          prep_torn,  op_writer_open, check_cut};
    run_plant_case(&c);
}

/* -- the inbox, its temporaries and its request names ---------------- */

static int op_post(void *arg)
{
    (void)arg;
    return evs_request_post(st, "x", 1, "{\"kind\":\"pause\"}", 16, NULL);
}

static size_t request_count(void)
{
    evs_request_listing l;
    size_t n;

    cr_assert_eq(evs_request_list(st, "x", 1, &l), 0);
    n = l.count;
    evs_request_list_free(&l);
    return n;
}

static void prep_posted(void)
{
    prep_x();
    cr_assert_eq(op_post(NULL), 0);
}

static void check_post_tmp(int kind, int rc)
{
    char *p = in_store("x/inbox", pio->planted_name);

    cr_assert_eq(rc, -EEXIST, "%s: %s", pl_name[kind], evs_strerror(rc));
    cr_assert_eq(request_count(), 1, "only the first request is there");
    assert_planted(p, kind);
    free(p);
}

Test(sec_plant, a_planted_request_temporary_is_never_opened)
{
    const plant_case c = {"request temporary", ".tmp-", AT_OPEN,       0,
                          prep_posted,         op_post, check_post_tmp};
    run_plant_case(&c);
}

static int count_with_prefix(const char *path, const char *prefix)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d, "%s", path);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void check_post_name(int kind, int rc)
{
    char *ib = in_store("x", "inbox");
    char *p = tu_join(ib, pio->planted_name);
    char *bad;
    size_t n;

    cr_assert_eq(rc, -EEXIST, "%s: %s", pl_name[kind], evs_strerror(rc));
    cr_assert_eq(count_with_prefix(ib, ".tmp-"), 0,
                 "the failed post removed its temporary");
    assert_planted(p, kind);
    /* The planted name looks like a request; a listing moves it aside
     * as what it is, and never reads through it. */
    n = request_count();
    cr_assert_eq(n, 0);
    n = strlen(ib) + strlen(pio->planted_name) + 8;
    bad = malloc(n);
    cr_assert_not_null(bad);
    snprintf(bad, n, "%s/bad-%s", ib, pio->planted_name);
    assert_planted(bad, kind);
    free(bad);
    free(p);
    free(ib);
}

Test(sec_plant, a_planted_request_name_is_never_renamed_over)
{
    /* Request ids begin with the time in hex: "01..." until 2527. */
    const plant_case c = {"request name", "0",     AT_RENAME,      0,
                          prep_x,         op_post, check_post_name};
    run_plant_case(&c);
}

static void check_inbox_dir(int kind, int rc)
{
    char *p = in_store("x", "inbox");

    /* O_DIRECTORY | O_NOFOLLOW: a link is "not a directory" too. */
    cr_assert_eq(rc, -ENOTDIR, "%s: %s", pl_name[kind], evs_strerror(rc));
    assert_planted(p, kind);
    free(p);
}

Test(sec_plant, a_planted_inbox_is_never_used)
{
    const plant_case c = {"inbox", "inbox", AT_MKDIR,       1,
                          prep_x,  op_post, check_inbox_dir};
    run_plant_case(&c);
}

#define PLANTED_REQ "01900000-0000-7000-8000-000000000001.json"

static void prep_bad_request(void)
{
    char *ib = in_store("x", "inbox"), *p;

    prep_x();
    cr_assert_eq(mkdir(ib, 0700), 0);
    p = tu_join(ib, PLANTED_REQ);
    cr_assert_eq(tu_write_file(p, "{bad", 4), 0);
    free(p);
    free(ib);
}

static int op_list_requests(void *arg)
{
    evs_request_listing l;
    int rc;

    (void)arg;
    rc = evs_request_list(st, "x", 1, &l);
    if (rc == 0)
        rc = (int)l.count;
    evs_request_list_free(&l);
    return rc;
}

static void check_bad_name(int kind, int rc)
{
    char *ib = in_store("x", "inbox");
    char *p = tu_join(ib, pio->planted_name);
    char *names;

    cr_assert_eq(rc, 0, "%s: %d", pl_name[kind], rc);
    assert_planted(p, kind);
    /* Moved aside to the other name instead: bad-<r>-<name>. */
    cr_assert_eq(count_with_prefix(ib, "bad-"), 2);
    cr_assert_eq(count_with_prefix(ib, PLANTED_REQ), 0);
    names = names_of(ib);
    cr_assert(strstr(names, "-" PLANTED_REQ "|"), "%s", names);
    free(names);
    free(p);
    free(ib);
}

Test(sec_plant, a_planted_bad_name_is_never_renamed_over)
{
    const plant_case c = {"bad- name",      "bad-",           AT_RENAME,     0,
                          prep_bad_request, op_list_requests, check_bad_name};
    run_plant_case(&c);
}

/* -- the listing index's temporary ---------------------------------- */

static void prep_no_index(void)
{
    char *p = in_store(EVS__INDEX_NAME, NULL);

    prep_x();
    cr_assert_eq(unlink(p), 0); /* so that a listing rewrites it */
    free(p);
}

static int op_list(void *arg)
{
    evs_exec_listing L;
    int rc;

    (void)arg;
    rc = evs_exec_list(st, NULL, &L);
    if (rc == 0)
        rc = (int)L.count;
    evs_exec_list_free(&L);
    return rc;
}

static void check_index_tmp(int kind, int rc)
{
    char *p = in_store(pio->planted_name, NULL);
    char *ix = in_store(EVS__INDEX_NAME, NULL);
    struct stat sb;

    cr_assert_eq(rc, 1, "%s: the listing goes on without the index",
                 pl_name[kind]);
    assert_planted(p, kind);
    cr_assert_eq(lstat(ix, &sb), -1, "no index was renamed into place");
    free(p);
    free(ix);
}

Test(sec_plant, a_planted_index_temporary_is_never_opened)
{
    const plant_case c = {"index temporary", ".tmp-", AT_OPEN,        0,
                          prep_no_index,     op_list, check_index_tmp};
    run_plant_case(&c);
}

/* ------------------------------------------------------------------ */
/* Plantings at the names that are always the same                    */
/* ------------------------------------------------------------------ */

/* Puts `kind` at `path`: a symbolic link to `target`, a FIFO, or a hard
 * link of `target`. */
static void plant_at(const char *path, int kind, const char *target)
{
    int rc = kind == PL_SYMLINK ? symlink(target, path)
             : kind == PL_FIFO  ? mkfifo(path, 0600)
                                : link(target, path);

    cr_assert_eq(rc, 0, "planting a %s at %s: %s", pl_name[kind], path,
                 strerror(errno));
}

/* An index line that claims "x" is completed, and that the store would
 * believe: it names the inode, ctime and size x's snapshot has now. */
static char *crafted_index(size_t *len)
{
    char *sp = in_store("x", EVS__SNAP_NAME);
    char *snap = NULL, *line, *nl;
    size_t slen, body, cap;
    evs_snapshot sn;
    struct stat sb;
    int n;

    cr_assert_eq(stat(sp, &sb), 0);
    memset(&sn, 0, sizeof(sn));
    sn.id = evs_span_cstr("x");
    sn.status = evs_span_cstr("completed");
    sn.workflow_name = evs_span_cstr("forged");
    sn.created_at_us = 1;
    sn.updated_at_us = 1;
    sn.last_event_seq = 1;
    cr_assert_eq(evs_snapshot_encode(&sn, NULL, &snap, &slen), 0);
    nl = memchr(snap, '\n', slen);
    cr_assert_not_null(nl);
    cap = slen + 512;
    line = malloc(cap);
    cr_assert_not_null(line);
    n = snprintf(line, cap,
                 "{\"v\":1,\"kind\":\"index\",\"id\":\"x\",\"ino\":%" PRIu64
                 ",\"ctime\":%" PRId64 ",\"size\":%" PRIu64 ",\"header\":"
                 "%.*s,",
                 (uint64_t)sb.st_ino,
                 (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec,
                 (uint64_t)sb.st_size, (int)(nl - snap), snap);
    cr_assert_lt((size_t)n + EVS__CKSUM_TAIL_LEN, cap);
    body = (size_t)n;
    *len = evs__frame_seal(line, body);
    line[*len] = '\0';
    free(snap);
    free(sp);
    return line;
}

/* The status the listing gives x, as 1 "running", 2 "completed", 3
 * anything else, 4 x missing; or the listing's error. */
static int listed_status_of_x(void)
{
    evs_exec_listing L;
    int rc = evs_exec_list(st, NULL, &L);

    if (rc != 0)
        return rc;
    rc = 4;
    for (size_t i = 0; i < L.count; i++) {
        if (!evs__span_eq_cstr(L.items[i].id, "x"))
            continue;
        rc = evs__span_eq_cstr(L.items[i].status, "running")     ? 1
             : evs__span_eq_cstr(L.items[i].status, "completed") ? 2
                                                                 : 3;
    }
    evs_exec_list_free(&L);
    return rc;
}

/* Creates y, saves x's snapshot, then lists: every call that appends to
 * or reads the index. Returns the listing's answer for x. */
static int op_index_users(void *arg)
{
    evs_snapshot sn;
    int rc;

    (void)arg;
    if ((rc = tu_create(st, "y")) != 0)
        return rc;
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("running");
    sn.last_event_seq = 1;
    if ((rc = evs_snapshot_save(st, "x", 1, &sn)) != 0)
        return rc;
    return listed_status_of_x();
}

Test(sec_plant, the_index_is_never_followed_shared_or_waited_on)
{
    char *ix;

    for (int k = 0; k < PL_KINDS; k++) {
        char *line, *before, *after;
        size_t len;
        struct stat sb;

        st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
        ix = in_store(EVS__INDEX_NAME, NULL);
        prep_x();
        line = crafted_index(&len);
        /* Control: as the store's own index, the line is believed. */
        cr_assert_eq(tu_write_file(ix, line, len), 0);
        cr_assert_eq(listed_status_of_x(), 2, "the crafted line is valid");
        cr_assert_eq(unlink(ix), 0);
        /* Outside the store, it must be neither believed nor added to,
         * and a FIFO must not block the calls that append to it. */
        cr_assert_eq(tu_write_file(victim, line, len), 0);
        plant_at(ix, k, victim);
        before = dir_digest(odir);
        pio->escapes = 0;
        cr_assert_eq(guarded(op_index_users, NULL), 1, "%s", pl_name[k]);
        cr_assert_eq(pio->escapes, 0, "%s: %s of the victim", pl_name[k],
                     pio->escape_what);
        after = dir_digest(odir);
        cr_assert_str_eq(before, after, "%s: the victim changed", pl_name[k]);
        assert_victim(line);
        /* The listing replaced the planted name with an index of its
         * own, which later listings believe. */
        cr_assert_eq(lstat(ix, &sb), 0);
        cr_assert(S_ISREG(sb.st_mode) && sb.st_nlink == 1,
                  "%s: the index was replaced", pl_name[k]);
        cr_assert_eq(listed_status_of_x(), 1);
        cr_assert_eq(sb.st_mode & 07777, 0600);
        free(before);
        free(after);
        free(line);
        free(ix);
        evs_store_close(st);
        st = NULL;
        tu_rmtree_free(strdup(sroot));
        cr_assert_eq(tu_write_file(victim, VICTIM_TEXT, strlen(VICTIM_TEXT)),
                     0);
    }
}

/* -- the inbox ------------------------------------------------------- */

static int op_inbox_calls(void *arg)
{
    evs_request_listing l;
    char buf[1024];
    int rc;

    (void)arg;
    /* Each must fail with ENOTDIR; the first that does not says which. */
    if ((rc = evs_request_post(st, "x", 1, "{}", 2, NULL)) != -ENOTDIR)
        return 100;
    if ((rc = evs_request_list(st, "x", 1, &l)) != -ENOTDIR)
        return 101;
    evs_request_list_free(&l);
    if ((rc = evs_request_dir(st, "x", 1, buf, sizeof(buf))) != -ENOTDIR)
        return 102;
    if ((rc = evs_request_dir_peek(st, "x", 1, buf, sizeof(buf))) != -ENOTDIR)
        return 103;
    if ((rc = evs_request_remove(st, "x", 1,
                                 "01900000-0000-7000-8000-000000000001", 36)) !=
        -ENOTDIR)
        return 104;
    return 0;
}

Test(sec_plant, a_fifo_or_a_file_in_place_of_the_inbox_is_refused_promptly)
{
    /* (A symbolic link there: test_inbox.c.) */
    for (int k = PL_FIFO; k < PL_KINDS; k++) {
        char *ib;

        st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
        prep_x();
        ib = in_store("x", "inbox");
        plant_at(ib, k, victim);
        pio->escapes = 0;
        cr_assert_eq(guarded(op_inbox_calls, NULL), 0, "%s: see op_inbox_calls",
                     pl_name[k]);
        cr_assert_eq(pio->escapes, 0);
        assert_planted(ib, k);
        assert_victim(VICTIM_TEXT);
        /* The execution still deletes whole, and only the link goes. */
        cr_assert_eq(evs_exec_delete(st, "x", 1), 0);
        assert_names(sroot, ".index|");
        assert_victim(VICTIM_TEXT);
        free(ib);
        evs_store_close(st);
        st = NULL;
        tu_rmtree_free(strdup(sroot));
    }
}

Test(sec_plant, a_fifo_or_link_named_like_a_request_is_moved_aside_unread)
{
    for (int k = 0; k < PL_KINDS; k++) {
        char *ib, *p, *bad;

        st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
        prep_x();
        ib = in_store("x", "inbox");
        cr_assert_eq(mkdir(ib, 0700), 0);
        p = tu_join(ib, PLANTED_REQ);
        bad = tu_join(ib, "bad-" PLANTED_REQ);
        cr_assert_eq(tu_write_file(victim, "{\"secret\":1}\n", 13), 0);
        plant_at(p, k, victim);
        pio->escapes = 0;
        cr_assert_eq(guarded(op_list_requests, NULL), 0, "%s", pl_name[k]);
        cr_assert_eq(pio->escapes, 0, "%s: %s", pl_name[k], pio->escape_what);
        assert_planted(bad, k);
        assert_victim("{\"secret\":1}\n");
        free(p);
        free(bad);
        free(ib);
        evs_store_close(st);
        st = NULL;
        tu_rmtree_free(strdup(sroot));
    }
}

Test(sec_plant, removing_a_request_that_is_a_link_removes_only_the_link)
{
    char *ib, *p;

    st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
    prep_x();
    ib = in_store("x", "inbox");
    cr_assert_eq(mkdir(ib, 0700), 0);
    p = tu_join(ib, PLANTED_REQ);
    for (int k = 0; k < PL_KINDS; k += 2) { /* symbolic and hard links */
        struct stat sb;
        plant_at(p, k, victim);
        cr_assert_eq(evs_request_remove(st, "x", 1, PLANTED_REQ, 36), 0);
        cr_assert_eq(lstat(p, &sb), -1, "%s: removed", pl_name[k]);
        cr_assert_eq(stat(victim, &sb), 0);
        cr_assert_eq(sb.st_nlink, 1);
        assert_victim(VICTIM_TEXT);
    }
    cr_assert_eq(pio->escapes, 0);
    free(p);
    free(ib);
}

/* -- an execution's directory ---------------------------------------- */

static int op_exec_calls(void *arg)
{
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL, "{}");
    evs_snapshot *sn = NULL;
    evs_exec_listing L;
    evs_log *l = NULL;
    size_t n = 0;

    (void)arg;
    if (evs_log_open(st, "x", 1, 0, &l, NULL, NULL) != -ENOTDIR)
        return 100;
    if (evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL) != -ENOTDIR)
        return 101;
    if (evs_exec_exists(st, "x", 1))
        return 102;
    if (evs_snapshot_load(st, "x", 1, &sn, NULL) != -ENOTDIR)
        return 103;
    if (evs_exec_create(st, "x", 1, NULL, &e, 1) != -EEXIST)
        return 104;
    if (evs_exec_delete(st, "x", 1) != -ENOTDIR)
        return 105;
    if (evs_request_post(st, "x", 1, "{}", 2, NULL) != -ENOTDIR)
        return 106;
    if (evs_exec_list(st, NULL, &L) != 0)
        return 107;
    n = L.count;
    evs_exec_list_free(&L);
    if (n != 0)
        return 108;
    if (evs_exec_cleanup(st, INT64_MAX, &n) != 0 || n != 0)
        return 109;
    return 0;
}

Test(sec_plant, a_fifo_or_a_file_in_place_of_an_execution_is_refused_promptly)
{
    /* (A symbolic link there: a_symlinked_execution_directory_...) */
    for (int k = PL_FIFO; k < PL_KINDS; k++) {
        char *ep;

        st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
        ep = in_store("x", NULL);
        plant_at(ep, k, victim);
        pio->escapes = 0;
        cr_assert_eq(guarded(op_exec_calls, NULL), 0, "%s: see op_exec_calls",
                     pl_name[k]);
        cr_assert_eq(pio->escapes, 0);
        assert_planted(ep, k);
        assert_victim(VICTIM_TEXT);
        /* The listing made an index (of no execution). */
        assert_names(sroot, ".index|x|");
        free(ep);
        evs_store_close(st);
        st = NULL;
        tu_rmtree_free(strdup(sroot));
    }
}

/* -- the log ----------------------------------------------------------- */

static int op_fifo_log_calls(void *arg)
{
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL, "{}");
    evs_replay *rp = NULL;
    int rc;

    (void)arg;
    if (evs_exec_delete(st, "x", 1) >= 0)
        return 100;
    if (evs_request_post(st, "x", 1, "{}", 2, NULL) != -ENOENT)
        return 101;
    if (evs_exec_create(st, "x", 1, NULL, &e, 1) != -EEXIST)
        return 102;
    if (evs_replay_new(NULL, &rp) != 0)
        return 103;
    rc = evs_replay_open(rp, st, "x", 1, 0, NULL, NULL);
    evs_replay_free(rp);
    if (rc >= 0)
        return 104;
    return 0;
}

Test(sec_plant, a_fifo_log_fails_deletion_requests_creation_and_replay)
{
    char *lp, *ib;
    struct stat sb;

    st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
    prep_x();
    lp = in_store("x", EVS__LOG_NAME);
    ib = in_store("x", "inbox");
    cr_assert_eq(unlink(lp), 0);
    plant_at(lp, PL_FIFO, NULL);
    cr_assert_eq(guarded(op_fifo_log_calls, NULL), 0, "see op_fifo_log_calls");
    assert_planted(lp, PL_FIFO);
    cr_assert_eq(lstat(ib, &sb), -1, "no inbox for what has no log");
    free(lp);
    free(ib);
}

Test(sec_plant, a_linked_log_takes_no_requests_and_is_not_deleted_through)
{
    char *lp = NULL, *ib = NULL, *alias = tu_join(odir, "alias");
    struct stat sb;
    size_t len;
    char *log, *now;

    st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
    prep_x();
    lp = in_store("x", EVS__LOG_NAME);
    ib = in_store("x", "inbox");
    log = tu_read_file(lp, &len);
    cr_assert_not_null(log);

    /* A symbolic link to a copy of the log: no such execution. */
    cr_assert_eq(rename(lp, alias), 0);
    plant_at(lp, PL_SYMLINK, alias);
    cr_assert_eq(evs_request_post(st, "x", 1, "{}", 2, NULL), -ENOENT);
    cr_assert_eq(lstat(ib, &sb), -1, "no inbox was made");
    cr_assert_eq(evs_exec_delete(st, "x", 1), -ELOOP);
    assert_planted(lp, PL_SYMLINK);

    /* A hard link: the execution is there, but not to be deleted (or
     * written) while another name shares its log. */
    cr_assert_eq(unlink(lp), 0);
    cr_assert_eq(link(alias, lp), 0);
    cr_assert_eq(evs_exec_delete(st, "x", 1), EVS_EUNSAFE);
    cr_assert_eq(lstat(lp, &sb), 0);
    cr_assert_eq(sb.st_nlink, 2);
    now = tu_read_file(alias, &len);
    cr_assert_not_null(now);
    cr_assert_str_eq(now, log);
    cr_assert_eq(pio->escapes, 0);
    free(now);
    free(log);
    free(lp);
    free(ib);
    free(alias);
}

Test(sec_plant, deleting_an_execution_removes_links_in_it_not_their_targets)
{
    char *a, *b, *c;
    size_t deleted = 0;

    st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
    prep_x();
    cr_assert_eq(tu_create(st, "z"), 0);
    cr_assert_eq(evs_request_post(st, "x", 1, "{}", 2, NULL), 0);
    a = in_store("x", "to-dir");
    b = in_store("x/inbox", "to-dir");
    c = in_store("x/inbox", "to-file");
    cr_assert_eq(symlink(odir, a), 0);
    cr_assert_eq(symlink(odir, b), 0);
    cr_assert_eq(link(victim, c), 0);
    cr_assert_eq(evs_exec_delete(st, "x", 1), 0);
    assert_names(sroot, ".index|z|");
    /* An interrupted delete: the trash is cleaned up the same way. */
    free(a);
    a = in_store(".trash-0123456789abcdef-z", NULL);
    free(b);
    b = in_store("z", "to-dir");
    cr_assert_eq(symlink(odir, b), 0);
    {
        char *z = in_store("z", NULL);
        cr_assert_eq(rename(z, a), 0);
        free(z);
    }
    cr_assert_eq(evs_exec_cleanup(st, 0, &deleted), 0);
    assert_names(sroot, ".index|");
    assert_names(odir, "victim|");
    assert_victim(VICTIM_TEXT);
    cr_assert_eq(pio->escapes, 0, "%s", pio->escape_what);
    free(a);
    free(b);
    free(c);
}

/* The library says what it refused, whatever the code reads as. */
Test(sec_plant, a_refused_log_or_snapshot_is_named_in_the_error)
{
    static const char *const why[PL_KINDS] = {"is a symbolic link",
                                              "is not a regular file",
                                              "has more than one hard link"};
    static const int code[PL_KINDS] = {-ELOOP, -EINVAL, EVS_EUNSAFE};

    for (int k = 0; k < PL_KINDS; k++) {
        const char *names[2] = {EVS__LOG_NAME, EVS__SNAP_NAME};
        for (int f = 0; f < 2; f++) {
            char *p, *alias = tu_join(odir, "alias");
            evs_error_info info;
            evs_snapshot *sn = NULL;
            evs_log *l = NULL;
            int rc;

            st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
            prep_x();
            p = in_store("x", names[f]);
            if (k == PL_HARDLINK) {
                cr_assert_eq(link(p, alias), 0);
            } else {
                cr_assert_eq(rename(p, alias), 0);
                plant_at(p, k, alias);
            }
            rc = f == 0 ? evs_log_open(st, "x", 1, 0, &l, NULL, &info)
                        : evs_snapshot_load(st, "x", 1, &sn, &info);
            cr_assert_eq(rc, code[k], "%s %s: %s", names[f], pl_name[k],
                         evs_strerror(rc));
            cr_assert_eq(info.code, code[k]);
            cr_assert(strstr(info.msg, names[f]) && strstr(info.msg, why[k]),
                      "%s %s: \"%s\"", names[f], pl_name[k], info.msg);
            cr_assert(strstr(info.msg, "x/"), "names the execution: %s",
                      info.msg);
            free(p);
            evs_store_close(st);
            st = NULL;
            tu_rmtree_free(strdup(sroot));
            unlink(alias);
            free(alias);
        }
    }
}

/* -- the snapshot ------------------------------------------------------ */

/* Creates `id` as completed long ago: what cleanup deletes. */
static void create_old_completed(const char *id)
{
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL, "{}");
    evs_snapshot sn;

    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("completed");
    sn.created_at_us = 1000000;
    sn.updated_at_us = 1000000;
    cr_assert_eq(evs_exec_create(st, id, strlen(id), &sn, &e, 1), 0);
}

Test(sec_plant, cleanup_and_listing_never_take_the_word_of_a_linked_snapshot)
{
    char *xs, *ws, *alias = tu_join(odir, "alias");
    evs_list_filter f;
    evs_exec_listing L;
    size_t deleted = 0;

    st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
    /* z is the control: a real old, completed snapshot, so deleted. */
    create_old_completed("z");
    /* x: its snapshot a symbolic link to a completed one outside. */
    create_old_completed("x");
    xs = in_store("x", EVS__SNAP_NAME);
    {
        size_t len;
        char *snap = tu_read_file(xs, &len);
        cr_assert_not_null(snap);
        cr_assert_eq(tu_write_file(victim, snap, len), 0);
        cr_assert_eq(unlink(xs), 0);
        free(snap);
    }
    plant_at(xs, PL_SYMLINK, victim);
    /* w: its genuine snapshot shares its inode with a file outside. */
    create_old_completed("w");
    ws = in_store("w", EVS__SNAP_NAME);
    cr_assert_eq(link(ws, alias), 0);

    memset(&f, 0, sizeof(f));
    f.status = evs_span_cstr("completed");
    /* From the snapshots themselves, not from what the writer noted in
     * the index. */
    tu_forget_index(sroot);
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    cr_assert_eq(L.count, 1, "only z is listed as completed");
    cr_assert(evs__span_eq_cstr(L.items[0].id, "z"));
    evs_exec_list_free(&L);
    cr_assert_eq(evs_exec_list(st, NULL, &L), 0);
    cr_assert_eq(L.count, 3);
    for (size_t i = 0; i < L.count; i++)
        cr_assert_eq(L.items[i].snapshot_ok,
                     evs__span_eq_cstr(L.items[i].id, "z"));
    evs_exec_list_free(&L);

    cr_assert_eq(evs_exec_cleanup(st, evs_now_us(), &deleted), 0);
    cr_assert_eq(deleted, 1);
    cr_assert_not(evs_exec_exists(st, "z", 1));
    cr_assert(evs_exec_exists(st, "x", 1), "kept: no trustworthy status");
    cr_assert(evs_exec_exists(st, "w", 1), "kept: no trustworthy status");
    assert_planted(xs, PL_SYMLINK);
    cr_assert_eq(pio->escapes, 0, "%s", pio->escape_what);
    free(xs);
    free(ws);
    free(alias);
}

/* -- the store directory itself --------------------------------------- */

static int op_open_root(void *arg)
{
    evs_store *s = NULL;
    int rc = evs_store_open(arg, NULL, &s);

    evs_store_close(s);
    return rc;
}

Test(sec_plant, a_store_path_that_is_a_fifo_or_a_file_is_refused_promptly)
{
    for (int k = PL_FIFO; k < PL_KINDS; k++) {
        plant_at(sroot, k, victim);
        cr_assert_eq(guarded(op_open_root, sroot), -ENOTDIR, "%s", pl_name[k]);
        assert_planted(sroot, k);
        assert_victim(VICTIM_TEXT);
        cr_assert_eq(unlink(sroot), 0);
    }
}

Test(sec_plant, a_symlinked_store_path_is_judged_by_the_directory_it_names)
{
    /* The store's own path is the caller's to choose, links and all; the
     * permission check applies to where it leads. */
    evs_store *s = NULL;

    cr_assert_eq(symlink(odir, sroot), 0);
    cr_assert_eq(chmod(odir, 0777), 0);
    cr_assert_eq(evs_store_open(sroot, NULL, &s), EVS_EUNSAFE);
    cr_assert_null(s);
    cr_assert_eq(chmod(odir, 0700), 0);
    cr_assert_eq(evs_store_open(sroot, NULL, &s), 0);
    evs_store_close(s);
}

TestSuite(sec_plant, .init = plant_setup, .fini = plant_teardown);

/* ------------------------------------------------------------------ */
/* Ids: the alphabet, and the orchestrator's entry points              */
/* ------------------------------------------------------------------ */

TestSuite(sec_id, .init = base_setup, .fini = base_teardown);

static int ascii_alnum(int b)
{
    return (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') ||
           (b >= 'a' && b <= 'z');
}

Test(sec_id, the_id_alphabet_is_exactly_the_one_format_md_gives)
{
    int made = 0;

    /* FORMAT.md §1: [A-Za-z0-9][A-Za-z0-9._-]{0,127}. Every byte, first
     * and then second. */
    st = open_at(sroot, NULL, EVS_SYNC_NONE);
    for (int b = 0; b < 256; b++) {
        char one[2] = {(char)b, 0}, two[3] = {'a', (char)b, 0};
        int first_ok = ascii_alnum(b);
        int rest_ok = first_ok || b == '.' || b == '_' || b == '-';
        evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL, "{}");
        struct stat sb;
        char *p;
        int rc;

        rc = evs_exec_create(st, one, 1, NULL, &e, 1);
        cr_assert_eq(rc, first_ok ? 0 : EVS_EBADID, "first byte %#x: %s",
                     (unsigned)b, evs_strerror(rc));
        if (first_ok) {
            p = tu_join(sroot, one);
            cr_assert_eq(lstat(p, &sb), 0);
            cr_assert(S_ISDIR(sb.st_mode));
            free(p);
            made++;
        }
        rc = evs_exec_create(st, two, 2, NULL, &e, 1);
        cr_assert_eq(rc, rest_ok ? 0 : EVS_EBADID, "second byte %#x: %s",
                     (unsigned)b, evs_strerror(rc));
        if (rest_ok) {
            p = tu_join(sroot, two);
            cr_assert_eq(lstat(p, &sb), 0, "a%c", b);
            cr_assert(S_ISDIR(sb.st_mode));
            cr_assert(evs_exec_exists(st, two, 2));
            free(p);
            made++;
        }
    }
    cr_assert_eq(made, 62 + 65);
    cr_assert_eq(tu_count_entries(sroot), made, "nothing else was made");
    assert_names(base, "outside|store|");
    cr_assert_eq(tu_count_entries(odir), 1);
}

Test(sec_id, dots_after_the_first_byte_make_plain_names_not_paths)
{
    static const char *ids[] = {"a.",    "a..",  "a...", "a..b",
                                "a.-._", "0..0", "Z.._"};
    struct stat sb;

    st = open_at(sroot, NULL, EVS_SYNC_FULL);
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char *p = tu_join(sroot, ids[i]),
             *lp = tu_path(sroot, ids[i], EVS__LOG_NAME);
        cr_assert_eq(tu_create(st, ids[i]), 0, "%s", ids[i]);
        cr_assert_eq(lstat(p, &sb), 0, "%s is a name in the store", ids[i]);
        cr_assert(S_ISDIR(sb.st_mode));
        cr_assert_eq(lstat(lp, &sb), 0);
        cr_assert_eq(tu_count_events(st, ids[i]), 1);
        free(p);
        free(lp);
    }
    cr_assert_eq(tu_count_entries(sroot), 7);
    assert_names(base, "outside|store|");
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        cr_assert_eq(evs_exec_delete(st, ids[i], strlen(ids[i])), 0);
    cr_assert_eq(tu_count_entries(sroot), 0);
}

/* Bad ids as spans: with NUL bytes, with lengths that cut or overrun. */
typedef struct bad_span {
    const char *p;
    size_t len;
} bad_span;

static char long_id[EVS_ID_MAX + 2];

static size_t bad_spans(bad_span *out)
{
    static const char *const plain[] = {
        "..",     ".",      "a/b",          "/x",      "../store/done",
        "done/",  "./done", "done/../done", ".hidden", "-x",
        "_x",     "x\n",    "a\\b",         "a b",     "\xc3\xa9",
        "done\r",
    };
    size_t n = 0;

    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        out[n++] = (bad_span){plain[i], strlen(plain[i])};
    out[n++] = (bad_span){"done\0", 5};
    out[n++] = (bad_span){"done\0/../x", 10};
    memset(long_id, 'd', sizeof(long_id));
    out[n++] = (bad_span){long_id, EVS_ID_MAX + 1};
    return n;
}

static const char echo_def[] =
    "{\"name\":\"e\",\"steps\":[{\"name\":\"a\",\"kind\":\"action\","
    "\"action\":\"echo\",\"params\":1}]}";
static const char wait_def[] =
    "{\"name\":\"w\",\"steps\":[{\"name\":\"w\",\"kind\":\"wait_event\","
    "\"event\":\"go\"}]}";

static evs_orch *new_orch(void)
{
    evs_orch_opts oo;
    evs_orch *o = NULL;

    evs_orch_opts_init(&oo);
    oo.stop_when_idle = 1;
    oo.inbox_poll_ms = 50;
    cr_assert_eq(evs_orch_new(st, &oo, &o), 0);
    return o;
}

static void run_to_idle(evs_orch *o)
{
    cr_assert_eq(evs_orch_run(o), 0);
    evs_orch_free(o);
}

static void start_one(const char *def, const char *id)
{
    evs_orch *o = new_orch();
    evs_error_info we;

    cr_assert_eq(evs_orch_start(o, evs_span_cstr(def), (evs_span){0},
                                evs_span_cstr(id), NULL, &we),
                 0, "%s: %s", id, we.msg);
    run_to_idle(o);
}

Test(sec_id, the_orchestrators_entry_points_refuse_bad_ids)
{
    bad_span bad[32];
    size_t nbad = bad_spans(bad);
    char out_id[EVS_ID_MAX + 1];
    evs_error_info why;
    evs_retry_opts ro;
    evs_error_info we;
    evs_orch *o;
    char *before;

    st = open_at(sroot, NULL, EVS_SYNC_FULL);
    start_one(echo_def, "done");
    before = names_of(sroot);

    o = new_orch();
    for (size_t i = 0; i < nbad; i++) {
        evs_span id = {bad[i].p, bad[i].len};
        cr_assert_eq(evs_orch_start(o, evs_span_cstr(echo_def), (evs_span){0},
                                    id, out_id, &we),
                     EVS_EBADID, "start %zu", i);
        cr_assert_eq(evs_orch_resume(o, id), EVS_EBADID, "resume %zu", i);
        cr_assert_eq(evs_orch_resume_with(o, id, evs_span_cstr(echo_def), NULL,
                                          NULL, NULL),
                     EVS_EBADID, "resume_with %zu", i);
        cr_assert_eq(evs_orch_post(st, id, evs_span_cstr("pause"),
                                   (evs_span){0}, (evs_span){0}),
                     EVS_EBADID, "post %zu", i);
        evs_retry_opts_init(&ro);
        cr_assert_eq(evs_exec_retry(st, id, &ro, out_id, &why), EVS_EBADID,
                     "retry %zu", i);
        /* The successor's id too. */
        ro.new_id = id;
        cr_assert_eq(
            evs_exec_retry(st, evs_span_cstr("done"), &ro, out_id, &why),
            EVS_EBADID, "retry --id %zu", i);
    }
    /* Empty means "make one up" where an id is optional, and is refused
     * where one is needed. */
    cr_assert_eq(evs_orch_resume(o, (evs_span){"", 0}), EVS_EBADID);
    cr_assert_eq(evs_orch_post(st, (evs_span){"", 0}, evs_span_cstr("pause"),
                               (evs_span){0}, (evs_span){0}),
                 EVS_EBADID);
    cr_assert_eq(evs_orch_owned(o), 0);
    run_to_idle(o);
    {
        char *after = names_of(sroot);
        cr_assert_str_eq(before, after, "nothing was created");
        free(after);
    }
    assert_names(base, "outside|store|");
    assert_names(odir, "victim|");

    /* The control: a good successor id is taken. */
    evs_retry_opts_init(&ro);
    ro.new_id = evs_span_cstr("done.r1");
    cr_assert_eq(evs_exec_retry(st, evs_span_cstr("done"), &ro, out_id, &why),
                 0, "%s", why.msg);
    cr_assert_str_eq(out_id, "done.r1");
    cr_assert(evs_exec_exists(st, "done.r1", 7));
    free(before);
}

Test(sec_id, calls_on_owned_executions_never_match_a_bad_id)
{
    static const bad_span near[] = {
        {"w\0", 2}, {"w/", 2}, {"./w", 3},         {"w\n", 2}, {"W", 1},
        {"", 0},    {"w.", 2}, {"../store/w", 10}, {"w ", 2},  {"ww", 2},
    };
    evs_orch *o;
    long before;
    int64_t v;

    st = open_at(sroot, NULL, EVS_SYNC_FULL);
    start_one(wait_def, "w");
    before = tu_count_events(st, "w");
    o = new_orch();
    cr_assert_eq(evs_orch_resume(o, evs_span_cstr("w")), 0);
    cr_assert_eq(evs_orch_owned(o), 1);
    cr_assert_not_null(evs_orch_state(o, evs_span_cstr("w")), "the control");
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        evs_span id = {near[i].p, near[i].len};
        cr_assert_eq(evs_orch_send(o, id, evs_span_cstr("go"), (evs_span){0}),
                     -ENOENT, "send %zu", i);
        cr_assert_eq(evs_orch_pause(o, id, (evs_span){0}), -ENOENT);
        cr_assert_eq(evs_orch_unpause(o, id), -ENOENT);
        cr_assert_eq(evs_orch_terminate(o, id, (evs_span){0}), -ENOENT);
        cr_assert_eq(evs_orch_get_version(o, id, evs_span_cstr("c"), 1, 2, &v),
                     -ENOENT);
        cr_assert_eq(evs_orch_continue_as_new(o, id, (evs_span){0}), -ENOENT);
        cr_assert_null(evs_orch_state(o, id), "state %zu", i);
    }
    evs_orch_stop(o, 0);
    run_to_idle(o);
    cr_assert_eq(tu_count_events(st, "w"), before, "nothing was recorded");
    assert_names(sroot, ".index|w|");
}

Test(sec_id, a_replayed_history_cannot_name_where_its_snapshot_goes)
{
    /* evs_replay_snapshot saves under the execution_id of the history it
     * was given; a history fed by hand may claim anything. */
    static const char *const forged[] = {"../outside/x", "..", "a/b",
                                         ".hidden"};
    char *before;

    st = open_at(sroot, NULL, EVS_SYNC_FULL);
    cr_assert_eq(tu_create(st, "x"), 0);
    before = names_of(sroot);
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL,
                               "{\"workflow_name\":\"f\"}");
        evs_snapshot *sn = NULL;
        evs_replay *rp = NULL;
        int rc;

        e.execution_id = evs_span_cstr(forged[i]);
        e.id = evs_span_cstr("e1");
        e.sequence = 1;
        e.timestamp_us = 1000000;
        cr_assert_eq(evs_replay_new(NULL, &rp), 0);
        cr_assert_eq(evs_replay_apply(rp, &e, NULL), 0);
        rc = evs_replay_snapshot(rp, st, (evs_span){0});
        cr_assert_eq(rc, EVS_EBADID, "%s: %s", forged[i], evs_strerror(rc));
        /* Prepared for another thread: saving it is the caller's, and
         * the id it carries is not trusted there either. */
        cr_assert_eq(evs_replay_snapshot_prepare(rp, (evs_span){0}, &sn), 0);
        cr_assert(evs__span_eq_cstr(sn->id, forged[i]));
        cr_assert_eq(evs_snapshot_save(st, sn->id.ptr, sn->id.len, sn),
                     EVS_EBADID);
        evs_snapshot_free(sn);
        evs_replay_free(rp);
    }
    {
        char *after = names_of(sroot);
        cr_assert_str_eq(before, after);
        free(after);
    }
    assert_names(base, "outside|store|");
    assert_names(odir, "victim|");
    free(before);
}

/* ------------------------------------------------------------------ */
/* Modes under umask 000                                              */
/* ------------------------------------------------------------------ */

TestSuite(sec_perm, .init = plant_setup, .fini = plant_teardown);

Test(sec_perm, everything_the_store_creates_is_private_under_umask_0)
{
    evs_request_listing rl;
    evs_exec_listing L;
    evs_snapshot sn;
    evs_log *l;
    struct stat sb;
    char *ix, *p;
    int files = 0, dirs = 0, fd;

    umask(0);
    /* The root, an execution, appends and a snapshot. */
    st = open_at(sroot, &pio->io, EVS_SYNC_FULL);
    cr_assert_eq(stat(sroot, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0700);
    cr_assert_eq(tu_make_exec(st, "x", 2), 0);
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("running");
    sn.last_event_seq = 3;
    cr_assert_eq(evs_snapshot_save(st, "x", 1, &sn), 0);
    /* The inbox, requests, and one moved aside. */
    cr_assert_eq(evs_request_post(st, "x", 1, "{}", 2, NULL), 0);
    cr_assert_eq(evs_request_post(st, "x", 1, "{\"a\":1}", 7, NULL), 0);
    p = in_store("x/inbox", PLANTED_REQ);
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "[]", 2), 2);
    close(fd);
    free(p);
    cr_assert_eq(evs_request_list(st, "x", 1, &rl), 0);
    cr_assert_eq(rl.count, 2);
    evs_request_list_free(&rl);
    /* A cut tail, saved beside the log. */
    p = in_store("x", EVS__LOG_NAME);
    fd = open(p, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, FRAGMENT, strlen(FRAGMENT)),
                 (ssize_t)strlen(FRAGMENT));
    close(fd);
    free(p);
    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    evs_log_close(l);
    /* A deletion, and an index the listing rewrites. */
    cr_assert_eq(tu_create(st, "y"), 0);
    cr_assert_eq(evs_exec_delete(st, "y", 1), 0);
    ix = in_store(EVS__INDEX_NAME, NULL);
    cr_assert_eq(unlink(ix), 0);
    cr_assert_eq(evs_exec_list(st, NULL, &L), 0);
    evs_exec_list_free(&L);
    cr_assert_eq(lstat(ix, &sb), 0, "the listing rewrote the index");
    free(ix);

    /* Everything made on the way, temporaries included... */
    cr_assert_eq(pio->bad_modes, 0, "%s", pio->bad_what);
    cr_assert_geq(pio->files, 12,
                  "events x2, snapshot temporaries x4, "
                  "index x5, requests x2, cut, index "
                  "temporary: %d",
                  pio->files);
    cr_assert_geq(pio->dirs, 4, "root, creation x2, inbox: %d", pio->dirs);
    /* ... and what is left. */
    tu_assert_private_tree(sroot, &files, &dirs);
    cr_assert_eq(dirs, 3, "x, its inbox and the writers' markers");
    cr_assert_eq(files, 8,
                 "index, log, snapshot, cut, 2 requests, "
                 "bad-, this handle's marker, and nothing else: %d",
                 files);
    cr_assert_eq(count_with_prefix(sroot, ".tmp-"), 0);
}

Test(sec_perm, what_the_orchestrator_creates_is_private_under_umask_0)
{
    char out_id[EVS_ID_MAX + 1];
    evs_error_info why;
    evs_retry_opts ro;
    evs_orch *o;
    int files = 0, dirs = 0;

    umask(0);
    st = open_at(sroot, NULL, EVS_SYNC_FULL);
    start_one(wait_def, "w");
    cr_assert_eq(evs_orch_post(st, evs_span_cstr("w"), evs_span_cstr("event"),
                               evs_span_cstr("go"), (evs_span){0}),
                 0);
    o = new_orch();
    cr_assert_eq(evs_orch_resume(o, evs_span_cstr("w")), 0);
    run_to_idle(o);
    evs_retry_opts_init(&ro);
    ro.new_id = evs_span_cstr("w2");
    cr_assert_eq(evs_exec_retry(st, evs_span_cstr("w"), &ro, out_id, &why), 0,
                 "%s", why.msg);
    tu_assert_private_tree(sroot, &files, &dirs);
    cr_assert_geq(dirs, 3, "w, its inbox, w2");
    cr_assert_geq(files, 5, "index, logs and snapshots");
}

/* ------------------------------------------------------------------ */
/* The store directory's own mode                                     */
/* ------------------------------------------------------------------ */

TestSuite(sec_root, .init = base_setup, .fini = base_teardown);

/* Opens root `p` (mode `mode`) with the given options; checks the mode
 * is left as it was. */
static int open_mode(const char *p, mode_t mode, int create, int allow)
{
    evs_store_opts o;
    evs_store *s = NULL;
    struct stat sb;
    int rc;

    evs_store_opts_init(&o);
    o.create = create;
    o.allow_unsafe_perms = allow;
    rc = evs_store_open(p, &o, &s);
    if (rc == 0) {
        cr_assert_not_null(s);
        if (allow && (mode & 0300) == 0300)
            cr_assert_eq(tu_create(s, "x"), 0, "the store works");
    } else {
        cr_assert_null(s);
    }
    evs_store_close(s);
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, mode, "the mode is left alone");
    return rc;
}

Test(sec_root, a_root_others_may_write_is_refused_unless_the_caller_allows_it)
{
    static const mode_t unsafe[] = {0770, 0777,  0757,  0775, 0722,
                                    0702, 0720,  0730,  0703, 0760,
                                    0706, 01777, 02770, 0727, 0672};
    static const mode_t safe[] = {0700, 0750,  0755, 0705,  0711, 0500,
                                  0550, 01700, 0740, 02750, 0600};

    for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
        char name[32], *p;

        snprintf(name, sizeof(name), "u%04o", (unsigned)unsafe[i]);
        p = tu_join(base, name);
        cr_assert_eq(mkdir(p, 0700), 0);
        cr_assert_eq(chmod(p, unsafe[i]), 0);
        cr_assert_eq(open_mode(p, unsafe[i], 1, 0), EVS_EUNSAFE, "%04o",
                     (unsigned)unsafe[i]);
        cr_assert_eq(open_mode(p, unsafe[i], 0, 0), EVS_EUNSAFE, "%04o",
                     (unsigned)unsafe[i]);
        cr_assert_eq(tu_count_entries(p), 0,
                     "%04o: nothing made in a refused root",
                     (unsigned)unsafe[i]);
        cr_assert_eq(open_mode(p, unsafe[i], 0, 1), 0, "%04o allowed",
                     (unsigned)unsafe[i]);
        free(p);
    }
    for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++) {
        char name[32], *p;
        int rc;

        snprintf(name, sizeof(name), "s%04o", (unsigned)safe[i]);
        p = tu_join(base, name);
        cr_assert_eq(mkdir(p, 0700), 0);
        cr_assert_eq(chmod(p, safe[i]), 0);
        rc = open_mode(p, safe[i], 0, 0);
        /* 0600 has no search permission: refused by the kernel for
         * others, but not for the store's reasons. */
        if (safe[i] & 0100)
            cr_assert_eq(rc, 0, "%04o: %s", (unsigned)safe[i],
                         evs_strerror(rc));
        else
            cr_assert_neq(rc, EVS_EUNSAFE, "%04o", (unsigned)safe[i]);
        cr_assert_eq(chmod(p, 0700), 0);
        free(p);
    }
}

Test(sec_root, a_root_the_store_creates_is_private_even_under_umask_0)
{
    evs_store *s = NULL;
    struct stat sb;

    umask(0);
    cr_assert_eq(evs_store_open(sroot, NULL, &s), 0);
    evs_store_close(s);
    s = NULL;
    cr_assert_eq(stat(sroot, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0700);
    /* And the check does not apply to the store only once: a root made
     * writable since is refused on the next open. */
    cr_assert_eq(chmod(sroot, 0770), 0);
    cr_assert_eq(evs_store_open(sroot, NULL, &s), EVS_EUNSAFE);
    cr_assert_null(s);
}
