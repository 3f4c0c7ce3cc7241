/*
 * test_inbox.c: the request inbox of an execution (FORMAT.md §13):
 * posting, listing, removing, what a listing does with files it did not
 * expect, I/O and allocation failures, posting while another process
 * holds the writer lock, and deleting an execution that has requests.
 */
#include <criterion/criterion.h>

#include "fault_io.h"
#include "store_int.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *dir;
static evs_store *st;
static fault_io fio;
static int hook_warns;
static char hook_msg[1024];

static void hook(void *ctx, const evs_log_record *r)
{
    (void)ctx;
    if (r->level <= EVS_LOG_WARN) {
        hook_warns++;
        cr_assert_geq(evs_log_format(r, EVS_LOG_TEXT, hook_msg,
                                     sizeof(hook_msg)),
                      0);
    }
}

static evs_store *open_store(const evs_io *io, const evs_allocator *a,
                             evs_durability dur)
{
    evs_store_opts o;
    evs_store *s = NULL;

    evs_store_opts_init(&o);
    o.io = io;
    o.alloc = a;
    o.durability = dur;
    o.log_fn = hook;
    cr_assert_eq(evs_store_open(tu_loc(dir), &o, &s), 0);
    return s;
}

/* A store on the fault-injecting I/O (disarmed) with execution "x". */
static void setup(void)
{
    dir = tu_tmpdir("inbox");
    cr_assert_not_null(dir);
    fault_io_init(&fio);
    hook_warns = 0;
    hook_msg[0] = '\0';
    st = open_store(&fio.io, NULL, EVS_SYNC_FULL);
    cr_assert_eq(tu_create(st, "x"), 0);
}

static void teardown(void)
{
    evs_store_close(st);
    tu_rmtree_free(dir);
}

TestSuite(inbox, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

/* dir/x/inbox/name (name may be ""), heap memory. */
static char *ipath(const char *exec, const char *name)
{
    size_t n = strlen(dir) + strlen(exec) + strlen(name) + 16;
    char *p = malloc(n);

    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s/inbox%s%s", dir, exec, *name ? "/" : "", name);
    return p;
}

/* Entries of a directory whose names begin with `prefix`; -1 if it
 * cannot be opened. */
static int count_prefix(const char *path, const char *prefix)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Entries of exec's inbox whose names begin with `prefix`, -1 when there
 * is no inbox. On a backend without files (EVS_TEST_BACKEND), the
 * requests a listing shows for "", and 0 for any other prefix: nothing
 * but requests can be there. */
static int inbox_count(const char *exec, const char *prefix)
{
    char *p;
    int n;

    if (!tu_backend_is_file()) {
        evs_request_listing l;
        cr_assert_eq(evs_request_list(st, exec, strlen(exec), &l), 0);
        n = *prefix ? 0 : (int)l.count;
        evs_request_list_free(&l);
        return n;
    }
    p = ipath(exec, "");
    n = count_prefix(p, prefix);
    free(p);
    return n;
}

static int post(evs_store *s, const char *exec, const char *json,
                char out[EVS_REQUEST_ID_LEN + 1])
{
    return evs_request_post(s, exec, strlen(exec), json, strlen(json), out);
}

static void list_ok(evs_store *s, const char *exec, evs_request_listing *l)
{
    int rc = evs_request_list(s, exec, strlen(exec), l);

    cr_assert_eq(rc, 0, "list: %s", evs_strerror(rc));
}

static int span_is(evs_span sp, const char *s)
{
    return sp.len == strlen(s) && memcmp(sp.ptr, s, sp.len) == 0;
}

/* Writes a file into x's inbox, making the inbox if needed. */
static void plant(const char *name, const char *content)
{
    char *p = ipath("x", "");

    mkdir(p, 0700);
    free(p);
    p = ipath("x", name);
    cr_assert_eq(tu_write_file(p, content, strlen(content)), 0);
    free(p);
}

/* A valid request id that evstore did not make. */
#define PLANTED_ID "00000001-0000-7000-8000-000000000001"

/* ------------------------------------------------------------------ */
/* Posting, listing, removing                                         */
/* ------------------------------------------------------------------ */

Test(inbox, a_posted_request_is_listed_with_its_compact_body)
{
    const char *json = " { \"type\" : \"signal\",\n \"name\": \"go\", "
                       "\"data\": [1, 2.50, \"a b\"] } ";
    const char *compact =
        "{\"type\":\"signal\",\"name\":\"go\",\"data\":[1,2.50,\"a b\"]}";
    char id[EVS_REQUEST_ID_LEN + 1], fname[64], *p, *content;
    evs_request_listing l;
    int64_t before = evs_now_us(), after;
    struct stat sb;
    size_t len;

    memset(id, 'z', sizeof(id));
    cr_assert_eq(post(st, "x", json, id), 0);
    after = evs_now_us();
    cr_assert_eq(strlen(id), EVS_REQUEST_ID_LEN);
    cr_assert_eq(id[14], '7', "a UUIDv7: %s", id);

    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 1);
    cr_assert(span_is(l.items[0].id, id));
    cr_assert(span_is(l.items[0].body, compact), "body %.*s",
              (int)l.items[0].body.len, l.items[0].body.ptr);
    cr_assert_geq(l.items[0].posted_us, before / 1000 * 1000);
    cr_assert_leq(l.items[0].posted_us, after);
    evs_request_list_free(&l);
    cr_assert_null(l.items);
    cr_assert_eq(l.count, 0);

    /* On disk: one checksummed line naming the request and holding the
     * compact body, 0600, in a 0700 inbox (FORMAT.md §13). */
    TU_FILE_ONLY_REST();
    snprintf(fname, sizeof(fname), "%s.req", id);
    p = ipath("x", fname);
    content = tu_read_file(p, &len);
    cr_assert_not_null(content);
    {
        char head[128];
        size_t body_len;
        int hl = snprintf(head, sizeof(head),
                          "{\"v\":1,\"kind\":\"request\",\"id\":\"%s\","
                          "\"body\":%s,",
                          id, compact);
        cr_assert_eq(evs__frame_check(content, len, &body_len), 0);
        cr_assert_eq(body_len, (size_t)hl);
        cr_assert_eq(memcmp(content, head, (size_t)hl), 0, "%.*s",
                     (int)len, content);
    }
    cr_assert_eq(content[len - 1], '\n');
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    free(content);
    free(p);
    p = ipath("x", "");
    cr_assert_eq(lstat(p, &sb), 0);
    cr_assert(S_ISDIR(sb.st_mode));
    cr_assert_eq(sb.st_mode & 0777, 0700);
    free(p);
    cr_assert_eq(inbox_count("x", ""), 1, "no temporary file is left");
}

Test(inbox, many_requests_are_listed_oldest_first)
{
    char ids[60][EVS_REQUEST_ID_LEN + 1], json[64];
    evs_request_listing l;

    for (int i = 0; i < 60; i++) {
        snprintf(json, sizeof(json), "{\"i\":%d}", i);
        cr_assert_eq(post(st, "x", json, ids[i]), 0);
    }
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 60);
    for (int i = 0; i < 60; i++) {
        snprintf(json, sizeof(json), "{\"i\":%d}", i);
        cr_assert(span_is(l.items[i].id, ids[i]), "item %d", i);
        cr_assert(span_is(l.items[i].body, json), "item %d", i);
        if (i > 0) {
            cr_assert_lt(memcmp(l.items[i - 1].id.ptr, l.items[i].id.ptr,
                                EVS_REQUEST_ID_LEN),
                         0);
            cr_assert_leq(l.items[i - 1].posted_us, l.items[i].posted_us);
        }
    }
    evs_request_list_free(&l);
}

Test(inbox, an_execution_without_an_inbox_has_no_requests)
{
    evs_request_listing l;

    memset(&l, 0xab, sizeof(l));
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 0);
    cr_assert_null(l.items);
    evs_request_list_free(&l);
    TU_FILE_ONLY_REST();
    cr_assert_eq(inbox_count("x", ""), -1, "listing creates no inbox");
}

Test(inbox, a_removed_request_is_no_longer_listed_and_removing_twice_is_fine)
{
    char a[EVS_REQUEST_ID_LEN + 1], b[EVS_REQUEST_ID_LEN + 1];
    evs_request_listing l;

    cr_assert_eq(post(st, "x", "{\"n\":1}", a), 0);
    cr_assert_eq(post(st, "x", "{\"n\":2}", b), 0);
    cr_assert_eq(evs_request_remove(st, "x", 1, a, strlen(a)), 0);
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 1);
    cr_assert(span_is(l.items[0].id, b));
    evs_request_list_free(&l);

    cr_assert_eq(evs_request_remove(st, "x", 1, a, strlen(a)), 0);
    cr_assert_eq(evs_request_remove(st, "x", 1, b, strlen(b)), 0);
    cr_assert_eq(evs_request_remove(st, "x", 1, b, strlen(b)), 0);
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 0);
    evs_request_list_free(&l);
    cr_assert_eq(inbox_count("x", ""), 0);

    /* A request of an execution that is gone is gone too. */
    cr_assert_eq(evs_request_remove(st, "nope", 4, a, strlen(a)), 0);
    cr_assert_eq(tu_create(st, "y"), 0);
    cr_assert_eq(evs_request_remove(st, "y", 1, a, strlen(a)), 0);
}

Test(inbox, bad_ids_are_refused)
{
    static const char *bad_req[] = {
        "",
        "not-a-uuid",
        "01900000-0000-7000-8000-00000000000",   /* 35 */
        "01900000-0000-7000-8000-0000000000012", /* 37 */
        "01900000-0000-7000-8000-00000000000A",  /* upper case */
        "01900000-0000-4000-8000-000000000001",  /* version 4 */
        "01900000-0000-7000-c000-000000000001",  /* variant */
        "01900000_0000-7000-8000-000000000001",
        "../x/inbox/0000-0000-7000-8000-000000",
    };
    evs_request_listing l;
    char buf[256];

    cr_assert_eq(post(st, "", "{}", NULL), EVS_EBADID);
    cr_assert_eq(post(st, "../x", "{}", NULL), EVS_EBADID);
    cr_assert_eq(post(st, ".x", "{}", NULL), EVS_EBADID);
    cr_assert_eq(evs_request_post(st, NULL, 0, "{}", 2, NULL), EVS_EBADID);
    cr_assert_eq(evs_request_post(st, "x/inbox", 7, "{}", 2, NULL), EVS_EBADID);
    cr_assert_eq(evs_request_list(st, "x/y", 3, &l), EVS_EBADID);
    cr_assert_eq(l.count, 0);
    cr_assert_eq(evs_request_remove(st, "", 0, PLANTED_ID, 36), EVS_EBADID);
    cr_assert_eq(evs_request_dir(st, "..", 2, buf, sizeof(buf)), EVS_EBADID);
    cr_assert_eq(evs_request_remove(st, "x", 1, NULL, 0), -EINVAL);
    for (size_t i = 0; i < sizeof(bad_req) / sizeof(bad_req[0]); i++)
        cr_assert_eq(
            evs_request_remove(st, "x", 1, bad_req[i], strlen(bad_req[i])),
            -EINVAL, "%s", bad_req[i]);
    /* A valid id whose length is given wrong. */
    cr_assert_eq(evs_request_remove(st, "x", 1, PLANTED_ID, 35), -EINVAL);
    cr_assert_eq(evs_request_list(st, "x", 1, NULL), -EINVAL);
    cr_assert_eq(inbox_count("x", ""), tu_backend_is_file() ? -1 : 0,
                 "nothing was created");
}

Test(inbox, bodies_that_are_not_json_objects_are_refused)
{
    static const char *bad[] = {
        "",
        " ",
        "{",
        "{\"a\":}",
        "{\"a\":1}}",
        "{\"a\":1} x",
        "[1,2]",
        "\"str\"",
        "1",
        "null",
        "true",
        "{\"a\":\"\x01\"}",
        "{\"a\":\"\xff\"}",
    };
    char id[EVS_REQUEST_ID_LEN + 1];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(post(st, "x", bad[i], id), -EINVAL, "[%zu] %s", i, bad[i]);
    cr_assert_eq(evs_request_post(st, "x", 1, NULL, 0, id), -EINVAL);
    /* A NUL inside the buffer is not JSON either. */
    cr_assert_eq(evs_request_post(st, "x", 1, "{}\0", 3, id), -EINVAL);
    cr_assert_eq(inbox_count("x", ""), tu_backend_is_file() ? -1 : 0,
                 "refused before any I/O");
}

Test(inbox, a_body_over_one_mebibyte_is_refused_but_one_of_exactly_that_is_not)
{
    size_t max = (size_t)1 << 20, pad = 100;
    char *json = malloc(max + pad + 2), id[EVS_REQUEST_ID_LEN + 1];
    evs_request_listing l;

    cr_assert_not_null(json);
    /* {"a":"xxx...x"}: 8 bytes of syntax. */
    memcpy(json, "{\"a\":\"", 6);
    memset(json + 6, 'x', max - 8);
    memcpy(json + max - 2, "\"}", 3);
    cr_assert_eq(strlen(json), max);
    cr_assert_eq(post(st, "x", json, id), 0);

    /* Whitespace does not count: the compact form is what is stored. */
    memmove(json + pad, json, max + 1);
    memset(json, ' ', pad);
    cr_assert_eq(post(st, "x", json, NULL), 0);

    /* One more byte of content does. */
    memcpy(json + pad + max - 2, "x\"}", 4);
    cr_assert_eq(post(st, "x", json, NULL), -EINVAL);

    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 2);
    cr_assert(span_is(l.items[0].id, id));
    cr_assert_eq(l.items[0].body.len, max);
    cr_assert_eq(l.items[1].body.len, max);
    cr_assert_eq(memcmp(l.items[1].body.ptr, l.items[0].body.ptr, max), 0);
    evs_request_list_free(&l);
    free(json);
}

Test(inbox, an_execution_that_does_not_exist_has_no_inbox)
{
    TU_FILE_ONLY("evs_request_dir names a directory (test_sqlite: ENOTSUP)");
    evs_request_listing l;
    char buf[256], *p;

    cr_assert_eq(post(st, "nope", "{}", NULL), -ENOENT);
    cr_assert_eq(evs_request_list(st, "nope", 4, &l), -ENOENT);
    cr_assert_eq(l.count, 0);
    cr_assert_eq(evs_request_dir(st, "nope", 4, buf, sizeof(buf)), -ENOENT);

    /* A directory without a log is not an execution either. */
    p = malloc(strlen(dir) + 16);
    cr_assert_not_null(p);
    sprintf(p, "%s/ghost", dir);
    cr_assert_eq(mkdir(p, 0700), 0);
    cr_assert_eq(post(st, "ghost", "{}", NULL), -ENOENT);
    cr_assert_eq(count_prefix(p, ""), 0, "nothing made in it");
    free(p);
}

Test(inbox, posting_syncs_even_when_the_store_does_not)
{
    TU_FILE_ONLY("counts fsyncs through evs_io");
    evs_store *s;
    char id[EVS_REQUEST_ID_LEN + 1];

    evs_store_close(st);
    st = NULL;
    s = open_store(&fio.io, NULL, EVS_SYNC_NONE);
    /* Count the fsyncs without failing any. */
    fault_io_arm(&fio, FIO_FSYNC | FIO_FDATASYNC, 1000000, -EIO, 0);
    cr_assert_eq(post(s, "x", "{\"first\":true}", id), 0);
    /* The file, the inbox and the execution's directory (new inbox). */
    cr_assert_eq(fio.calls, 3);
    fio.calls = 0;
    cr_assert_eq(post(s, "x", "{\"second\":true}", id), 0);
    cr_assert_geq(fio.calls, 2);
    fault_io_disarm(&fio);
    st = s;
}

/* An I/O table that notes, in order, each fsync and each rename, with
 * the inode synced (0 for a regular file, the directory's otherwise). */
static struct {
    evs_io io;
    char kind[16];
    ino_t ino[16];
    size_t n;
} seen;

static int seen_fsync(void *ctx, int fd)
{
    struct stat sb;

    (void)ctx;
    cr_assert_eq(fstat(fd, &sb), 0);
    if (seen.n < sizeof(seen.kind) - 1) {
        seen.kind[seen.n] = S_ISREG(sb.st_mode) ? 'F' : 'D';
        seen.ino[seen.n++] = S_ISREG(sb.st_mode) ? 0 : sb.st_ino;
    }
    return evs_io_posix()->fsync(evs_io_posix()->ctx, fd);
}

static int seen_rename(void *ctx, int od, const char *on, int nd,
                       const char *nn, unsigned flags)
{
    (void)ctx;
    if (seen.n < sizeof(seen.kind) - 1)
        seen.kind[seen.n++] = 'R';
    return evs_io_posix()->renameat(evs_io_posix()->ctx, od, on, nd, nn,
                                    flags);
}

/* What the noted calls of a post to `exec` were: F (the request file),
 * R (its rename), I (the inbox), E (the execution's directory), ? (any
 * other directory). */
static void seen_ops(const char *exec, char out[16])
{
    struct stat in, ex;
    char *p = ipath(exec, "");

    cr_assert_eq(stat(p, &in), 0);
    *strrchr(p, '/') = '\0';
    cr_assert_eq(stat(p, &ex), 0);
    free(p);
    for (size_t i = 0; i < seen.n; i++)
        out[i] = seen.kind[i] != 'D'      ? seen.kind[i]
                 : seen.ino[i] == in.st_ino ? 'I'
                 : seen.ino[i] == ex.st_ino ? 'E'
                                            : '?';
    out[seen.n] = '\0';
}

Test(inbox, a_request_is_renamed_then_it_and_its_directories_synced)
{
    evs_store *s;
    char ops[16], id[EVS_REQUEST_ID_LEN + 1];
    TU_FILE_ONLY("the order of the inbox's files' syncs and rename");

    /* The rename shows the request to a runner before any sync (its
     * checksum tells a torn one); the syncs that make it durable come
     * after, off the runner's path: the file's, the inbox's and then the
     * execution's, all before the post returns: for the post that makes
     * the inbox and for one that finds it (whose maker may not have
     * synced it). */
    memset(&seen, 0, sizeof(seen));
    seen.io = *evs_io_posix();
    seen.io.fsync = seen_fsync;
    seen.io.renameat = seen_rename;
    evs_store_close(st);
    st = NULL;
    s = open_store(&seen.io, NULL, EVS_SYNC_NONE);
    st = s;
    cr_assert_eq(post(s, "x", "{\"first\":true}", id), 0);
    seen_ops("x", ops);
    cr_assert_str_eq(ops, "RFIE");
    seen.n = 0;
    cr_assert_eq(post(s, "x", "{\"second\":true}", id), 0);
    seen_ops("x", ops);
    cr_assert_str_eq(ops, "RFIE");
}

Test(inbox, request_dir_names_the_inbox_and_creates_it)
{
    TU_FILE_ONLY("evs_request_dir names a directory (test_sqlite: ENOTSUP)");
    char buf[512], want[512];
    struct stat sb;

    snprintf(want, sizeof(want), "%s/x/inbox", dir);
    cr_assert_eq(evs_request_dir(st, "x", 1, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, want);
    cr_assert_eq(lstat(buf, &sb), 0);
    cr_assert(S_ISDIR(sb.st_mode));
    cr_assert_eq(sb.st_mode & 0777, 0700);
    /* Again, now that it exists; then with exactly no room to spare. */
    cr_assert_eq(evs_request_dir(st, "x", 1, buf, strlen(want) + 1), 0);
    cr_assert_str_eq(buf, want);
    cr_assert_eq(evs_request_dir(st, "x", 1, buf, strlen(want)), -ENAMETOOLONG);
    cr_assert_eq(evs_request_dir(st, "x", 1, buf, 0), -ENAMETOOLONG);
    cr_assert_eq(evs_request_dir(st, "x", 1, NULL, 10), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* Files the inbox did not expect                                     */
/* ------------------------------------------------------------------ */

Test(inbox, temporaries_and_foreign_names_are_skipped_and_left_alone)
{
    TU_FILE_ONLY("plants files in the inbox directory");
    char id[EVS_REQUEST_ID_LEN + 1];
    evs_request_listing l;

    cr_assert_eq(post(st, "x", "{\"real\":1}", id), 0);
    plant(".tmp-0123456789abcdef", "{\"half\":");
    plant(".tmp-fedcba9876543210", "{\"whole\":1}\n");
    plant("notes.txt", "{\"foreign\":1}\n");
    plant("01900000-0000-7000-8000-00000000000A.json", "{\"upper\":1}\n");
    plant("01900000-0000-7000-8000-000000000001.txt", "{\"ext\":1}\n");
    plant("01900000-0000-7000-8000-000000000001.json.old", "{}\n");
    plant("bad-" PLANTED_ID ".json", "{\"earlier\":1}\n");
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 1);
    cr_assert(span_is(l.items[0].id, id));
    cr_assert(span_is(l.items[0].body, "{\"real\":1}"));
    evs_request_list_free(&l);
    cr_assert_eq(inbox_count("x", ""), 8, "every other file is untouched");
    cr_assert_eq(hook_warns, 0);
}

Test(inbox, a_request_file_someone_else_wrote_is_read_like_ours)
{
    TU_FILE_ONLY("plants files in the inbox directory");
    evs_request_listing l;

    /* Whitespace, no newline: still a JSON object. */
    plant(PLANTED_ID ".json", "{ \"by\" : \"hand\" }");
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 1);
    cr_assert(span_is(l.items[0].id, PLANTED_ID));
    cr_assert(span_is(l.items[0].body, "{\"by\":\"hand\"}"));
    cr_assert_eq(l.items[0].posted_us, 0x000000010000LL * 1000);
    evs_request_list_free(&l);
    cr_assert_eq(evs_request_remove(st, "x", 1, PLANTED_ID, 36), 0);
    cr_assert_eq(inbox_count("x", ""), 0);
}

Test(inbox, a_corrupt_request_is_moved_aside_and_reported_not_returned)
{
    TU_FILE_ONLY("plants files in the inbox directory");
    static const char *bad[] = {
        "{\"torn\":", "[1,2]\n", "\"text\"\n", "", "\xff\xfe\n",
    };
    char name[64], good[EVS_REQUEST_ID_LEN + 1], *p, *content;
    evs_request_listing l;
    size_t len;

    cr_assert_eq(post(st, "x", "{\"good\":1}", good), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(name, sizeof(name),
                 "01900000-0000-7000-8000-00000000000%zu.json", i);
        plant(name, bad[i]);
    }
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 1);
    cr_assert(span_is(l.items[0].id, good));
    evs_request_list_free(&l);
    cr_assert_eq(hook_warns, 5);
    cr_assert_not_null(strstr(hook_msg, "execution x"), "%s", hook_msg);
    cr_assert_not_null(strstr(hook_msg, "bad-"), "%s", hook_msg);

    /* Every one kept, byte for byte, under bad-<name>. */
    cr_assert_eq(inbox_count("x", "bad-"), 5);
    cr_assert_eq(inbox_count("x", ""), 6);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(name, sizeof(name),
                 "bad-01900000-0000-7000-8000-00000000000%zu.json", i);
        p = ipath("x", name);
        content = tu_read_file(p, &len);
        cr_assert_not_null(content, "%s", name);
        cr_assert_eq(len, strlen(bad[i]));
        cr_assert_eq(memcmp(content, bad[i], len), 0);
        free(content);
        free(p);
    }

    /* Listing again finds nothing new to report. */
    hook_warns = 0;
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 1);
    evs_request_list_free(&l);
    cr_assert_eq(hook_warns, 0);

    /* A second bad file of the same name does not replace the first. */
    plant("01900000-0000-7000-8000-000000000000.json", "{\"again\":");
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 1);
    evs_request_list_free(&l);
    cr_assert_eq(hook_warns, 1);
    cr_assert_eq(inbox_count("x", "bad-"), 6);
}

/* The framed line for request `id` with body `body`, checksummed, into
 * buf (FORMAT.md §13). */
static void framed(char *buf, size_t cap, const char *id, const char *body)
{
    int n = snprintf(buf, cap,
                     "{\"v\":1,\"kind\":\"request\",\"id\":\"%s\","
                     "\"body\":%s,",
                     id, body);
    cr_assert(n > 0 && (size_t)n + EVS__CKSUM_TAIL_LEN < cap);
    buf[evs__frame_seal(buf, (size_t)n)] = '\0';
}

Test(inbox, a_torn_damaged_or_foreign_request_line_is_moved_aside)
{
    TU_FILE_ONLY("plants files in the inbox directory");
    char whole[256], flipped[256], other[256], torn[256], two[600];
    char name[64], good[EVS_REQUEST_ID_LEN + 1];
    const char *bad[6];
    evs_request_listing l;
    size_t n = 0;

    /* A whole line of its own id is a request like a posted one. */
    framed(whole, sizeof(whole), PLANTED_ID, "{\"by\":\"hand\"}");
    plant(PLANTED_ID ".req", whole);
    cr_assert_eq(post(st, "x", "{\"good\":1}", good), 0);
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 2);
    cr_assert(span_is(l.items[0].id, PLANTED_ID));
    cr_assert(span_is(l.items[0].body, "{\"by\":\"hand\"}"));
    cr_assert(span_is(l.items[1].id, good));
    evs_request_list_free(&l);
    cr_assert_eq(hook_warns, 0);
    cr_assert_eq(evs_request_remove(st, "x", 1, PLANTED_ID, 36), 0);

    /* What a crash between the rename and the file's sync can leave, a
     * flipped bit, and another request's line under this one's name. */
    strcpy(torn, whole);
    torn[strlen(torn) / 2] = '\0';
    strcpy(flipped, whole);
    flipped[30] ^= 0x04;
    framed(other, sizeof(other), "01900000-0000-7000-8000-0000000000ff",
           "{\"by\":\"hand\"}");
    snprintf(two, sizeof(two), "%s%s", whole, whole);
    bad[n++] = "";
    bad[n++] = torn;
    bad[n++] = flipped;
    bad[n++] = other;
    bad[n++] = two;
    bad[n++] = "{\"by\":\"hand\"}\n"; /* the earlier form, under .req */
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name),
                 "01900000-0000-7000-8000-00000000000%zu.req", i);
        plant(name, bad[i]);
    }
    hook_warns = 0;
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 1, "only the posted one");
    cr_assert(span_is(l.items[0].id, good));
    evs_request_list_free(&l);
    cr_assert_eq(hook_warns, (int)n);
    cr_assert_eq(inbox_count("x", "bad-"), (int)n, "every one kept");
}

Test(inbox, links_directories_and_oversized_files_are_moved_aside)
{
    TU_FILE_ONLY("plants files in the inbox directory");
    char *target = malloc(strlen(dir) + 32), *p, *q;
    char *big = malloc(((size_t)1 << 20) + 16);
    evs_request_listing l;
    size_t len;

    cr_assert_not_null(target);
    cr_assert_not_null(big);
    sprintf(target, "%s/outside.json", dir);
    cr_assert_eq(tu_write_file(target, "{\"secret\":1}\n", 13), 0);
    plant("keep", "");
    p = ipath("x", "01900000-0000-7000-8000-000000000001.json");
    cr_assert_eq(symlink(target, p), 0);
    free(p);
    p = ipath("x", "01900000-0000-7000-8000-000000000002.json");
    cr_assert_eq(link(target, p), 0);
    free(p);
    p = ipath("x", "01900000-0000-7000-8000-000000000003.json");
    cr_assert_eq(mkdir(p, 0700), 0);
    free(p);
    /* 1 MiB of object and a newline and one byte more. */
    memset(big, ' ', ((size_t)1 << 20) + 2);
    big[0] = '{';
    big[((size_t)1 << 20) + 1] = '}';
    big[((size_t)1 << 20) + 2] = '\0';
    plant("01900000-0000-7000-8000-000000000004.json", big);

    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 0);
    evs_request_list_free(&l);
    cr_assert_eq(hook_warns, 4);
    cr_assert_eq(inbox_count("x", "bad-"), 4);
    cr_assert_eq(inbox_count("x", "0"), 0);

    /* The link was moved, not followed: the target is as it was. */
    q = tu_read_file(target, &len);
    cr_assert_not_null(q);
    cr_assert_eq(len, 13);
    free(q);

    /* And the execution still deletes whole. */
    cr_assert_eq(evs_exec_delete(st, "x", 1), 0);
    cr_assert_eq(count_prefix(dir, ".trash-"), 0);
    cr_assert_eq(count_prefix(dir, "x"), 0);
    free(target);
    free(big);
}

Test(inbox, a_symlinked_inbox_is_refused)
{
    TU_FILE_ONLY("a symbolic link for the inbox directory");
    char *other = malloc(strlen(dir) + 16), *p;
    evs_request_listing l;
    char buf[512];

    cr_assert_not_null(other);
    sprintf(other, "%s/elsewhere", dir);
    cr_assert_eq(mkdir(other, 0700), 0);
    p = ipath("x", "");
    cr_assert_eq(symlink(other, p), 0);
    cr_assert_lt(post(st, "x", "{}", NULL), 0);
    cr_assert_lt(evs_request_list(st, "x", 1, &l), 0);
    cr_assert_lt(evs_request_dir(st, "x", 1, buf, sizeof(buf)), 0);
    cr_assert_lt(evs_request_remove(st, "x", 1, PLANTED_ID, 36), 0);
    cr_assert_eq(count_prefix(other, ""), 0, "nothing written through it");

    /* A file in its place is refused too. */
    cr_assert_eq(unlink(p), 0);
    cr_assert_eq(tu_write_file(p, "{}", 2), 0);
    cr_assert_eq(post(st, "x", "{}", NULL), -ENOTDIR);
    cr_assert_eq(evs_request_list(st, "x", 1, &l), -ENOTDIR);
    free(p);
    free(other);
}

/* ------------------------------------------------------------------ */
/* Deleting and listing executions                                    */
/* ------------------------------------------------------------------ */

Test(inbox, an_execution_with_requests_deletes_cleanly)
{
    TU_FILE_ONLY("plants files in the inbox directory");
    evs_exec_listing el;

    cr_assert_eq(tu_create(st, "y"), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(post(st, "x", "{\"pending\":true}", NULL), 0);
    plant(".tmp-0123456789abcdef", "{");
    plant(PLANTED_ID ".json", "{bad");
    plant("sub", "");
    {
        char *p = ipath("x", "adir");
        cr_assert_eq(mkdir(p, 0700), 0);
        free(p);
        p = ipath("x", "adir/inner");
        cr_assert_eq(tu_write_file(p, "x", 1), 0);
        free(p);
    }

    /* Listing executions does not see the inbox. */
    cr_assert_eq(evs_exec_list(st, NULL, &el), 0);
    cr_assert_eq(el.count, 2);
    cr_assert(span_is(el.items[0].id, "x") || span_is(el.items[1].id, "x"));
    cr_assert(el.items[0].snapshot_ok && el.items[1].snapshot_ok);
    evs_exec_list_free(&el);

    cr_assert_eq(evs_exec_delete(st, "x", 1), 0);
    cr_assert_eq(evs_exec_exists(st, "x", 1), 0);
    cr_assert_eq(count_prefix(dir, ".trash-"), 0, "removed, not left");
    cr_assert_eq(count_prefix(dir, "x"), 0);
    cr_assert_eq(post(st, "x", "{}", NULL), -ENOENT);

    cr_assert_eq(evs_exec_list(st, NULL, &el), 0);
    cr_assert_eq(el.count, 1);
    cr_assert(span_is(el.items[0].id, "y"));
    evs_exec_list_free(&el);

    /* The id can be used again, with an empty inbox. */
    cr_assert_eq(tu_create(st, "x"), 0);
    {
        evs_request_listing l;
        list_ok(st, "x", &l);
        cr_assert_eq(l.count, 0);
        evs_request_list_free(&l);
    }
}

/* Sets a directory's times to two hours ago. */
static void age(const char *path)
{
    struct timespec ts[2];

    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= 7200;
    ts[1] = ts[0];
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

Test(inbox, cleanup_removes_finished_executions_and_leftovers_with_inboxes)
{
    TU_FILE_ONLY("leftover files of interrupted writers");
    evs_snapshot sn;
    char *p = malloc(strlen(dir) + 128);
    size_t deleted = 0;

    cr_assert_not_null(p);
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("completed");
    sn.created_at_us = sn.updated_at_us = evs_now_us() - 3600000000LL;
    cr_assert_eq(evs_snapshot_save(st, "x", 1, &sn), 0);
    cr_assert_eq(post(st, "x", "{\"late\":1}", NULL), 0);

    /* An interrupted delete and an interrupted create, each holding an
     * inbox with a request in it. */
    for (int k = 0; k < 2; k++) {
        sprintf(p, "%s/%s", dir,
                k ? ".tmp-0123456789abcdef-c" : ".trash-0123456789abcdef-t");
        cr_assert_eq(mkdir(p, 0700), 0);
        strcat(p, "/inbox");
        cr_assert_eq(mkdir(p, 0700), 0);
        strcat(p, "/" PLANTED_ID ".json");
        cr_assert_eq(tu_write_file(p, "{}\n", 3), 0);
    }
    sprintf(p, "%s/.tmp-0123456789abcdef-c", dir);
    age(p);

    cr_assert_eq(evs_exec_cleanup(st, evs_now_us(), &deleted), 0);
    cr_assert_eq(deleted, 1);
    cr_assert_eq(count_prefix(dir, "x"), 0);
    cr_assert_eq(count_prefix(dir, ".trash-"), 0);
    cr_assert_eq(count_prefix(dir, ".tmp-"), 0);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Other processes                                                    */
/* ------------------------------------------------------------------ */

Test(inbox, another_process_posts_while_this_one_holds_the_writer_lock)
{
    char id[EVS_REQUEST_ID_LEN + 1];
    evs_request_listing l;
    evs_log *w = NULL;
    int pfd[2], status;
    pid_t pid;

    cr_assert_eq(evs_log_open(st, "x", 1, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    cr_assert_eq(pipe(pfd), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        evs_store *s = NULL;
        evs_log *l2 = NULL;
        char cid[EVS_REQUEST_ID_LEN + 1];

        close(pfd[0]);
        if (evs_store_open(tu_loc(dir), NULL, &s) != 0)
            _exit(10);
        /* The lock really is held elsewhere. */
        if (evs_log_open(s, "x", 1, EVS_LOG_WRITE, &l2, NULL, NULL) !=
            EVS_ELOCKED)
            _exit(11);
        if (post(s, "x", "{\"from\":\"child\"}", cid) != 0)
            _exit(12);
        if (write(pfd[1], cid, EVS_REQUEST_ID_LEN) != EVS_REQUEST_ID_LEN)
            _exit(13);
        evs_store_close(s);
        _exit(0);
    }
    close(pfd[1]);
    cr_assert_eq(read(pfd[0], id, EVS_REQUEST_ID_LEN), EVS_REQUEST_ID_LEN);
    id[EVS_REQUEST_ID_LEN] = '\0';
    close(pfd[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %d",
              WEXITSTATUS(status));

    /* The lock holder records the request as an event with its id, then
     * removes it. */
    list_ok(st, "x", &l);
    cr_assert_eq(l.count, 1);
    cr_assert(span_is(l.items[0].id, id));
    cr_assert(span_is(l.items[0].body, "{\"from\":\"child\"}"));
    {
        evs_event ev = tu_event(EVS_EV_SIGNAL_RECEIVED, "", "{}");
        ev.id = l.items[0].id;
        ev.data = l.items[0].body;
        cr_assert_eq(evs_log_append(w, &ev, 1, evs_log_last_seq(w), NULL), 0);
    }
    cr_assert_eq(
        evs_request_remove(st, "x", 1, l.items[0].id.ptr, l.items[0].id.len),
        0);
    evs_request_list_free(&l);
    evs_log_close(w);
    cr_assert_eq(inbox_count("x", ""), 0);
    cr_assert_eq(tu_count_events(st, "x"), 2);
}

/* ------------------------------------------------------------------ */
/* Failures                                                           */
/* ------------------------------------------------------------------ */

static const int errs[] = {-EIO, -ENOSPC, FIO_SHORT};
#define NERRS (sizeof(errs) / sizeof(errs[0]))

/* Lists x with the plain POSIX I/O and returns how many requests it has,
 * checking that `want` (may be NULL) is there or not. */
static size_t clean_count(const char *want, int *found)
{
    evs_store *s = open_store(NULL, NULL, EVS_SYNC_FULL);
    evs_request_listing l;
    size_t n;

    list_ok(s, "x", &l);
    n = l.count;
    *found = 0;
    for (size_t i = 0; want && i < l.count; i++)
        if (span_is(l.items[i].id, want))
            *found = 1;
    evs_request_list_free(&l);
    evs_store_close(s);
    return n;
}

/* Posts under fault n into x, fresh (no inbox yet) or not, and checks
 * the outcome with the plain I/O. Returns whether a fault fired. */
static int faulty_post(long n, int err, int fresh)
{
    char id[EVS_REQUEST_ID_LEN + 1] = "";
    size_t have, now;
    int rc, found;

    if (fresh) {
        cr_assert_eq(evs_exec_delete(st, "x", 1), 0);
        cr_assert_eq(tu_create(st, "x"), 0);
    }
    have = clean_count(NULL, &found);
    fault_io_arm(&fio, FIO_ALL, n, err, 0);
    rc = post(st, "x", "{\"try\":true}", id);
    fault_io_disarm(&fio);
    now = clean_count(rc == 0 ? id : NULL, &found);
    if (rc == 0) {
        cr_assert(found, "n=%ld fresh=%d: posted but not listed", n, fresh);
        cr_assert_eq(now, have + 1, "n=%ld fresh=%d", n, fresh);
    } else {
        cr_assert_eq(now, have,
                     "n=%ld fresh=%d err=%d: a failed post is "
                     "listed",
                     n, fresh, err);
    }
    cr_assert_leq(inbox_count("x", ".tmp-"), 0, "n=%ld", n);
    if (fio.fired == 0)
        cr_assert_eq(rc, 0, "n=%ld fresh=%d", n, fresh);
    return fio.fired != 0;
}

Test(inbox, a_failed_post_leaves_nothing_and_a_successful_one_is_listed)
{
    TU_FILE_ONLY("faults injected through evs_io");
    for (size_t e = 0; e < NERRS; e++) {
        long n;
        for (n = 1;; n++) {
            int a = faulty_post(n, errs[e], 1);
            int b = faulty_post(n, errs[e], 0);
            if (!a && !b)
                break;
            cr_assert_lt(n, 100, "the loop ends");
        }
        cr_assert_gt(n, 8, "every step of a post was made to fail");
    }
}

Test(inbox, a_failed_list_or_remove_loses_nothing)
{
    TU_FILE_ONLY("faults injected through evs_io");
    char ids[4][EVS_REQUEST_ID_LEN + 1];

    for (size_t e = 0; e < NERRS; e++) {
        for (long n = 1;; n++) {
            evs_request_listing l;
            int rc, rrc, found;
            size_t now;

            /* Four requests and one bad file, every run. */
            evs_exec_delete(st, "x", 1);
            cr_assert_eq(tu_create(st, "x"), 0);
            for (int i = 0; i < 4; i++)
                cr_assert_eq(post(st, "x", "{\"keep\":1}", ids[i]), 0);
            plant(PLANTED_ID ".json", "{oops");

            fault_io_arm(&fio, FIO_ALL, n, errs[e], 0);
            rc = evs_request_list(st, "x", 1, &l);
            if (rc == 0) {
                cr_assert_eq(l.count, 4, "n=%ld", n);
                for (int i = 0; i < 4; i++)
                    cr_assert(span_is(l.items[i].id, ids[i]));
            } else {
                cr_assert_eq(l.count, 0);
                cr_assert_null(l.items);
            }
            evs_request_list_free(&l);
            rrc = evs_request_remove(st, "x", 1, ids[0], EVS_REQUEST_ID_LEN);
            fault_io_disarm(&fio);

            /* Nothing lost: the bad file is either still in place or
             * moved aside, the requests are all there but the one that
             * was removed. */
            now = clean_count(ids[0], &found);
            cr_assert_eq(now, rrc == 0 ? 3 : 4, "n=%ld", n);
            cr_assert_eq(found, rrc != 0);
            cr_assert_eq(inbox_count("x", "bad-") +
                             inbox_count("x", "00000001-"),
                         1, "n=%ld", n);
            if (fio.fired == 0)
                break;
            cr_assert_lt(n, 100, "the loop ends");
        }
    }
}

Test(inbox, listing_survives_every_allocation_failure)
{
    char ids[40][EVS_REQUEST_ID_LEN + 1], body[1200];
    tu_alloc fa;
    evs_store *s;
    long base, n;

    tu_alloc_init(&fa);
    s = open_store(NULL, &fa.a, EVS_SYNC_FULL);
    /* Enough names, items and bytes that every array grows. */
    memset(body, 'b', sizeof(body));
    memcpy(body, "{\"pad\":\"", 8);
    memcpy(body + sizeof(body) - 3, "\"}", 3);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(post(s, "x", body, ids[i]), 0);
    base = fa.live;
    for (n = 1;; n++) {
        evs_request_listing l;
        int rc;

        tu_alloc_fail(&fa, n, TU_FAIL_ONCE);
        rc = evs_request_list(s, "x", 1, &l);
        tu_alloc_stop(&fa);
        if (rc == 0) {
            cr_assert_eq(l.count, 40, "n=%ld", n);
            for (int i = 0; i < 40; i++) {
                cr_assert(span_is(l.items[i].id, ids[i]));
                cr_assert(span_is(l.items[i].body, body));
            }
        } else {
            cr_assert_eq(rc, -ENOMEM, "n=%ld: %d", n, rc);
            cr_assert_eq(l.count, 0);
            cr_assert_null(l.items);
        }
        evs_request_list_free(&l);
        cr_assert_eq(fa.live, base, "n=%ld: a leak", n);
        if (!fa.failed)
            break;
        cr_assert_eq(rc, -ENOMEM);
    }
    cr_assert_gt(n, 4, "several allocations were tried");

    /* Posting: the one allocation fails cleanly too. */
    tu_alloc_fail(&fa, 1, TU_FAIL_ONCE);
    cr_assert_eq(post(s, "x", "{\"no\":\"memory\"}", NULL), -ENOMEM);
    tu_alloc_stop(&fa);
    cr_assert_eq(fa.live, base);
    cr_assert_eq(inbox_count("x", ""), 40);
    evs_store_close(s);
}

/* ------------------------------------------------------------------ */
/* The request functions dispatch through the backend table           */
/* ------------------------------------------------------------------ */

static int other_calls;

static int other_post(evs_store *s, const char *id, size_t id_len,
                      const char *json, size_t len,
                      char out_id[EVS_REQUEST_ID_LEN + 1])
{
    (void)s, (void)id, (void)id_len, (void)json, (void)len;
    if (out_id)
        memcpy(out_id, "0190a3e1-0000-7000-8000-000000000001",
               EVS_REQUEST_ID_LEN + 1);
    other_calls++;
    return 0;
}

static int other_list(evs_store *s, const char *id, size_t id_len,
                      evs_request_listing *out)
{
    (void)s, (void)id, (void)id_len, (void)out;
    other_calls += 10;
    return 0;
}

static int other_remove(evs_store *s, const char *id, size_t id_len,
                        const char *req_id)
{
    (void)s, (void)id, (void)id_len, (void)req_id;
    other_calls += 100;
    return 0;
}

static int other_dir(evs_store *s, const char *id, size_t id_len, char *buf,
                     size_t cap, int create)
{
    (void)s, (void)id, (void)id_len;
    snprintf(buf, cap, "%s", create ? "made" : "peeked");
    other_calls += 1000;
    return 0;
}

/* A second backend implements requests as it implements everything else,
 * and api.c still checks the arguments before it is called. */
Test(inbox, requests_go_through_the_backend_table)
{
    const evs_backend_ops *file = st->ops;
    evs_backend_ops other = *file;
    evs_request_listing l;
    char rid[EVS_REQUEST_ID_LEN + 1], path[16];

    other.request_post = other_post;
    other.request_list = other_list;
    other.request_remove = other_remove;
    other.request_dir = other_dir;
    st->ops = &other;
    cr_assert_eq(evs_request_post(st, "nowhere", 7, "{}", 2, rid), 0);
    cr_assert_str_eq(rid, "0190a3e1-0000-7000-8000-000000000001");
    cr_assert_eq(evs_request_list(st, "nowhere", 7, &l), 0);
    cr_assert_eq(evs_request_remove(st, "nowhere", 7, rid, strlen(rid)), 0);
    cr_assert_eq(evs_request_dir(st, "nowhere", 7, path, sizeof(path)), 0);
    cr_assert_str_eq(path, "made");
    cr_assert_eq(evs_request_dir_peek(st, "nowhere", 7, path, sizeof(path)), 0);
    cr_assert_str_eq(path, "peeked");
    cr_assert_eq(other_calls, 2111);
    cr_assert_eq(evs_request_post(st, "../x", 4, "{}", 2, rid), EVS_EBADID);
    cr_assert_eq(evs_request_remove(st, "nowhere", 7, "x", 1), -EINVAL);
    cr_assert_eq(other_calls, 2111);
    st->ops = file;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

Test(inbox, a_watch_says_when_the_inbox_may_have_changed)
{
    TU_FILE_ONLY("the directory time stamps (test_sqlite tests the change counter)");
    evs_inbox_watch w;

    memset(&w, 0, sizeof(w));
    cr_assert_eq(tu_create(st, "e1"), 0);
    /* No inbox yet: the first look says list, the next says nothing new. */
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 1);
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 0);
    /* The first post makes the inbox. */
    cr_assert_eq(evs_request_post(st, "e1", 2, "{}", 2, NULL), 0);
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 1);
    /* A time as recent as the listing is not trusted... */
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 1);
    /* ...until it is older than a clock tick. */
    nap_ms(80);
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 1);
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 0);
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 0);
    /* Another post, or a removal, is seen. */
    cr_assert_eq(evs_request_post(st, "e1", 2, "{\"a\":1}", 7, NULL), 0);
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 1);
    nap_ms(80);
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 1);
    cr_assert_eq(evs_request_changed(st, "e1", 2, &w), 0);
    cr_assert_eq(evs_request_changed(st, "../x", 4, &w), EVS_EBADID);
    cr_assert_eq(evs_request_changed(st, "e1", 2, NULL), -EINVAL);
}
