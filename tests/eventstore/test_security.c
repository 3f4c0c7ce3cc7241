/*
 * test_security.c: what the store refuses: execution ids that could name
 * something other than an execution directory, symbolic links, FIFOs and
 * hard links planted where its files should be, and permissions that
 * would let other users read or change an execution.
 */
#include <criterion/criterion.h>

#include "store_int.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);

    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int scan_count(void *arg, const evs_scan_item *it)
{
    (void)it;
    (*(int *)arg)++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Execution ids                                                      */
/* ------------------------------------------------------------------ */

/* Every id-taking function must refuse id[0..len) with EVS_EBADID. */
static void check_bad_id(const char *id, size_t len)
{
    evs_event e = tu_event(EVS_EV_EXECUTION_STARTED, NULL, "{}");
    evs_snapshot sn, *out = NULL;
    evs_log *l = NULL;
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
}

static int entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        /* ".index" is the store's listing cache (FORMAT.md). */
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            strcmp(e->d_name, ".index"))
            n++;
    closedir(d);
    return n;
}

Test(sec, bad_execution_ids_are_refused_everywhere)
{
    static const char *bad[] = {"..", ".", "a/b", "/x", "", ".hidden",
                                "-x", "a b", "a\\b", "_x", "x\n"};
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
    cr_assert_eq(entries(dir), 1, "nothing was created");
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
    cr_assert_eq(evs_log_open(st, id, sizeof(id), EVS_LOG_WRITE, &l, NULL,
                              NULL),
                 0);
    cr_assert_eq(strlen(evs_log_id(l)), EVS_ID_MAX);
    evs_log_close(l);
    cr_assert_eq(evs_snapshot_load(st, id, sizeof(id), &out, NULL), 0);
    cr_assert_eq(out->id.len, EVS_ID_MAX);
    evs_snapshot_free(out);
    cr_assert_eq(evs_exec_delete(st, id, sizeof(id)), 0);
    cr_assert_eq(entries(dir), 0);
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
        char *p = join(path, names[i]->d_name);
        struct stat sb;
        size_t len = 0;
        char *body = NULL;
        char head[512];
        int hl;

        cr_assert_eq(lstat(p, &sb), 0);
        if (S_ISREG(sb.st_mode))
            body = tu_read_file(p, &len);
        hl = snprintf(head, sizeof(head), "[%s %o %lld]",
                      names[i]->d_name, (unsigned)sb.st_mode,
                      (long long)sb.st_size);
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
    char *target = join(outside, "victim.jsonl");
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
    char *ep = join(dir, "x");
    char *src = join(dir, "src");
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
        char *c = join(outside, EVS__LOG_NAME);
        char *d = join(outside, EVS__SNAP_NAME);
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
    cr_assert_eq(entries(dir), 1, "no temporary or trash entry is left");
    free(before);
    free(after);
    free(src);
    free(ep);
}

Test(sec, a_symlinked_snapshot_is_not_read_and_is_replaced_not_written)
{
    char *sp = tu_path(dir, "x", EVS__SNAP_NAME);
    char *target = join(outside, "victim.json");
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
    char *alias = join(outside, "alias.jsonl");
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
    char *alias = join(outside, "alias.json");
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
    char *root = join(outside, "store");
    char *ep, *lp, *sp;
    evs_store *s2 = NULL;
    evs_snapshot sn;
    evs_log *l;

    umask(0);
    cr_assert_eq(evs_store_open(root, NULL, &s2), 0);
    cr_assert_eq(perm_of(root), 0700);
    cr_assert_eq(tu_create(s2, "p"), 0);
    ep = join(root, "p");
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
    cr_assert_eq(entries(ep), 2);
    evs_store_close(s2);
    free(ep);
    free(lp);
    free(sp);
    free(root);
}
