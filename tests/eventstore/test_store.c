/*
 * test_store.c: the store as a whole: opening the store directory,
 * creating, listing, deleting and cleaning up executions, saving and
 * loading snapshots, the permissions of everything created, and what a
 * failure part way through each of these leaves behind.
 */
#include <criterion/criterion.h>

#include "fault_io.h"
#include "store_int.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static evs_store *st;

static void setup(void)
{
    tu_fresh_store("store", &dir, &st);
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
}

/* A path under the store: dir/name, heap memory. */
static char *spath(const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Counts the entries of a directory whose names begin with `prefix`
 * ("" counts them all, "." and ".." excluded). */
static int count_prefix(const char *path, const char *prefix)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d, "opendir %s: %s", path, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            tu_store_own(e->d_name))
            continue;
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* What the store holds: on files, the entries of its directory (so a
 * leftover temporary or trash entry counts); on another backend, the
 * executions a listing shows. */
static int count_store(void)
{
    evs_exec_listing li;
    int n;

    if (tu_backend_is_file())
        return count_prefix(dir, "");
    cr_assert_eq(evs_exec_list(st, NULL, &li), 0);
    n = (int)li.total;
    evs_exec_list_free(&li);
    return n;
}

static int exists_path(const char *path)
{
    struct stat sb;

    return lstat(path, &sb) == 0;
}

static unsigned perm_of(const char *path)
{
    struct stat sb;

    cr_assert_eq(lstat(path, &sb), 0, "lstat %s: %s", path, strerror(errno));
    return (unsigned)(sb.st_mode & 07777);
}

static evs_snapshot snap_of(const char *wf, const char *status, int64_t created,
                            int64_t updated)
{
    evs_snapshot s;

    memset(&s, 0, sizeof(s));
    s.workflow_name = evs_span_cstr(wf);
    s.status = evs_span_cstr(status);
    s.created_at_us = created;
    s.updated_at_us = updated;
    return s;
}

static int create_with(const char *id, const evs_snapshot *sn, size_t n)
{
    evs_event ev[8];

    cr_assert_leq(n, 8);
    for (size_t i = 0; i < n; i++)
        ev[i] =
            tu_event(i == 0 ? EVS_EV_EXECUTION_STARTED : EVS_EV_STEP_COMPLETED,
                     "s", "{}");
    return evs_exec_create(st, id, strlen(id), sn, ev, n);
}

/* ------------------------------------------------------------------ */
/* Opening the store                                                  */
/* ------------------------------------------------------------------ */

TestSuite(store_open, .init = setup, .fini = teardown);

Test(store_open, creates_a_missing_directory_0700)
{
    TU_FILE_ONLY("the store directory itself");
    char *p = spath("sub");
    evs_store *s2 = NULL;

    cr_assert_not(exists_path(p));
    cr_assert_eq(evs_store_open(tu_loc(p), NULL, &s2), 0);
    cr_assert_not_null(s2);
    cr_assert_eq(perm_of(p), 0700);
    evs_store_close(s2);
    free(p);
}

Test(store_open, refuses_a_world_writable_root_unless_allowed)
{
    TU_FILE_ONLY("the modes of the store directory");
    char *p = spath("open");
    evs_store_opts o;
    evs_store *s2 = NULL;

    cr_assert_eq(mkdir(p, 0700), 0);
    cr_assert_eq(chmod(p, 0777), 0);
    cr_assert_eq(evs_store_open(tu_loc(p), NULL, &s2), EVS_EUNSAFE);
    cr_assert_null(s2);
    evs_store_opts_init(&o);
    o.allow_unsafe_perms = 1;
    cr_assert_eq(evs_store_open(tu_loc(p), &o, &s2), 0);
    cr_assert_not_null(s2);
    evs_store_close(s2);
    free(p);
}

Test(store_open, refuses_a_group_writable_root)
{
    TU_FILE_ONLY("the modes of the store directory");
    char *p = spath("group");
    evs_store *s2 = NULL;

    cr_assert_eq(mkdir(p, 0700), 0);
    cr_assert_eq(chmod(p, 0770), 0);
    cr_assert_eq(evs_store_open(tu_loc(p), NULL, &s2), EVS_EUNSAFE);
    cr_assert_null(s2);
    free(p);
}

Test(store_open, without_create_a_missing_directory_is_enoent)
{
    char *p = spath("missing");
    evs_store_opts o;
    evs_store *s2 = NULL;

    evs_store_opts_init(&o);
    o.create = 0;
    cr_assert_eq(evs_store_open(tu_loc(p), &o, &s2), -ENOENT);
    cr_assert_null(s2);
    cr_assert_not(exists_path(p));
    free(p);
}

Test(store_open, a_regular_file_is_not_a_store)
{
    TU_FILE_ONLY("a store is a directory");
    char *p = spath("file");
    evs_store *s2 = NULL;

    cr_assert_eq(tu_write_file(p, "x", 1), 0);
    cr_assert_eq(evs_store_open(tu_loc(p), NULL, &s2), -ENOTDIR);
    cr_assert_null(s2);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Creating executions                                                */
/* ------------------------------------------------------------------ */

/*
 * Options are read up to their `size` (common.h, "Options structs"): a
 * struct that evs_store_opts_init did not fill in is refused, and a
 * newer caller's larger struct is taken if what this library does not
 * know of it is unset.
 */
Test(store_open, options_are_read_up_to_their_size)
{
    char *p = spath("sized");
    struct {
        evs_store_opts o;
        uint64_t later; /* a field of newer headers */
    } newer;
    evs_store_opts o;
    evs_store *s2 = NULL;

    memset(&o, 0, sizeof(o));
    o.durability = EVS_SYNC_NONE;
    cr_assert_eq(evs_store_open(tu_loc(p), &o, &s2), -EINVAL);
    evs_store_opts_init(&o);
    cr_assert_eq(o.size, sizeof(o));
    o.size = offsetof(evs_store_opts, io); /* shorter than any version */
    cr_assert_eq(evs_store_open(tu_loc(p), &o, &s2), -EINVAL);
    cr_assert_null(s2);

    memset(&newer, 0, sizeof(newer));
    evs_store_opts_init(&newer.o);
    newer.o.size = sizeof(newer);
    newer.o.durability = EVS_SYNC_NONE;
    newer.later = 1;
    cr_assert_eq(evs_store_open(tu_loc(p), &newer.o, &s2), -EINVAL);
    newer.later = 0;
    cr_assert_eq(evs_store_open(tu_loc(p), &newer.o, &s2), 0);
    cr_assert_eq(evs_store_get_opts(s2)->size, sizeof(evs_store_opts));
    cr_assert_eq(evs_store_get_opts(s2)->durability, EVS_SYNC_NONE);
    evs_store_close(s2);
    free(p);
}

TestSuite(exec_create, .init = setup, .fini = teardown);

Test(exec_create, makes_the_directory_with_log_and_snapshot)
{
    TU_FILE_ONLY("the files of an execution directory");
    char *lp = tu_path(dir, "run-1", EVS__LOG_NAME);
    char *sp = tu_path(dir, "run-1", EVS__SNAP_NAME);
    char *ep = spath("run-1");

    cr_assert_not(evs_exec_exists(st, "run-1", 5));
    cr_assert_eq(tu_create(st, "run-1"), 0);
    cr_assert(evs_exec_exists(st, "run-1", 5));
    cr_assert(exists_path(lp));
    cr_assert(exists_path(sp));
    cr_assert_eq(count_prefix(ep, ""), 2, "only the log and the snapshot");
    cr_assert_eq(count_store(), 1, "no temporary entry is left");
    free(lp);
    free(sp);
    free(ep);
}

Test(exec_create, a_second_create_is_eexist)
{
    cr_assert_eq(tu_create(st, "dup"), 0);
    cr_assert_eq(tu_create(st, "dup"), -EEXIST);
    cr_assert_eq(tu_count_events(st, "dup"), 1);
    cr_assert_eq(count_store(), 1);
}

/* The lines of execution id's log, concatenated (heap memory). */
static char *log_lines(const char *id, size_t *len)
{
    evs_log *l;
    evs_cursor *c;
    evs_event ev;
    evs_span raw;
    char *all = NULL;
    size_t n = 0;

    cr_assert_eq(evs_log_open(st, id, strlen(id), 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    while (evs_cursor_next(c, &ev, &raw, NULL) == 1) {
        all = realloc(all, n + raw.len + 1);
        cr_assert_not_null(all);
        memcpy(all + n, raw.ptr, raw.len);
        n += raw.len;
    }
    evs_cursor_close(c);
    evs_log_close(l);
    *len = n;
    return all;
}

Test(exec_create, create_open_gives_the_new_log_s_writer)
{
    evs_event ev[3], more = tu_event(EVS_EV_STEP_COMPLETED, "s", "{}");
    char ids[3][16];
    char *a, *b;
    size_t alen, blen;
    uint64_t size;
    evs_log *l = NULL, *other = NULL;

    for (int i = 0; i < 3; i++) {
        ev[i] = tu_event(i ? EVS_EV_STEP_COMPLETED : EVS_EV_EXECUTION_STARTED,
                         "s", "{\"k\":1}");
        snprintf(ids[i], sizeof(ids[i]), "ev-%d", i);
        ev[i].id = evs_span_cstr(ids[i]);
        ev[i].timestamp_us = 1700000000000000 + i;
    }
    cr_assert_eq(evs_exec_create_open(st, "co", 2, NULL, ev, 3,
                                      EVS_SNAPSHOT_CACHE, &l, NULL),
                 0);
    cr_assert_not_null(l);
    cr_assert_eq(evs_log_last_seq(l), 3);
    cr_assert_str_eq(evs_log_id(l), "co");
    /* The writer holds the execution: no other writer, no delete. */
    cr_assert_eq(evs_log_open(st, "co", 2, EVS_LOG_WRITE, &other, NULL, NULL),
                 EVS_ELOCKED);
    cr_assert_eq(evs_exec_delete(st, "co", 2), EVS_ELOCKED);
    /* Its end is the creation's: the next append goes after it. */
    more.id = evs_span_cstr("ev-3");
    more.timestamp_us = 1700000000000003;
    cr_assert_eq(evs_log_append(l, &more, 1, 3, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 4);
    size = evs_log_size(l);
    evs_log_close(l);
    cr_assert_eq(evs_log_open(st, "co", 2, EVS_LOG_WRITE, &other, NULL, NULL),
                 0, "closed, the writer gave the execution up");
    cr_assert_eq(evs_log_last_seq(other), 4);
    cr_assert_eq(evs_log_size(other), size);
    evs_log_close(other);
    a = log_lines("co", &alen);
    cr_assert_eq(alen, size);
    /* The same lines, byte for byte, as a creation and then an open. */
    cr_assert_eq(evs_exec_delete(st, "co", 2), 0);
    cr_assert_eq(evs_exec_create(st, "co", 2, NULL, ev, 3), 0);
    cr_assert_eq(evs_log_open(st, "co", 2, EVS_LOG_WRITE, &other, NULL, NULL),
                 0);
    cr_assert_eq(evs_log_append(other, &more, 1, 3, NULL), 0);
    evs_log_close(other);
    b = log_lines("co", &blen);
    cr_assert_eq(alen, blen);
    cr_assert_eq(memcmp(a, b, alen), 0);
    free(a);
    free(b);
}

Test(exec_create, create_open_refuses_what_create_refuses)
{
    evs_event ev = tu_event(EVS_EV_EXECUTION_STARTED, "s", "{}");
    evs_log *l = (evs_log *)&l;

    cr_assert_eq(evs_exec_create_open(st, "bad id", 6, NULL, &ev, 1, 0, &l,
                                      NULL),
                 EVS_EBADID);
    cr_assert_eq(evs_exec_create_open(st, "x", 1, NULL, &ev, 1, 0, NULL, NULL),
                 -EINVAL);
    cr_assert_eq(evs_exec_create_open(st, "x", 1, NULL, &ev, 1, 1u << 20, &l,
                                      NULL),
                 -EINVAL);
    cr_assert_null(l);
    cr_assert_eq(evs_exec_create_open(st, "x", 1, NULL, NULL, 0,
                                      EVS_SNAPSHOT_CACHE, &l, NULL),
                 -EINVAL);
    cr_assert_eq(tu_create(st, "dup"), 0);
    cr_assert_eq(evs_exec_create_open(st, "dup", 3, NULL, &ev, 1, 0, &l, NULL),
                 -EEXIST);
    cr_assert_null(l);
    cr_assert_eq(tu_count_events(st, "dup"), 1, "the first left as it was");
    cr_assert_eq(count_store(), 1);
}

Test(exec_create, events_get_sequences_and_uuid7_ids)
{
    evs_event ev[5];
    evs_log *l;
    evs_cursor *c;
    evs_event got;
    char ids[5][EVS_UUID_LEN + 1];

    for (int i = 0; i < 5; i++)
        ev[i] = tu_event(i ? "step_completed" : "execution_started", "s",
                         "{\"k\":1}");
    ev[2].id = evs_span_cstr("my-own-id");
    cr_assert_eq(evs_exec_create(st, "seqs", 4, NULL, ev, 5), 0);
    cr_assert_eq(evs_log_open(st, "seqs", 4, 0, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_last_seq(l), 5);
    cr_assert_eq(evs_cursor_open(l, 1, 0, &c, NULL), 0);
    for (uint64_t i = 1; i <= 5; i++) {
        cr_assert_eq(evs_cursor_next(c, &got, NULL, NULL), 1);
        cr_assert_eq(got.sequence, i);
        cr_assert(evs__span_eq_cstr(got.execution_id, "seqs"));
        cr_assert_neq(got.timestamp_us, 0);
        if (i == 3) {
            cr_assert(evs__span_eq_cstr(got.id, "my-own-id"));
            snprintf(ids[i - 1], sizeof(ids[0]), "-");
            continue;
        }
        cr_assert_eq(got.id.len, EVS_UUID_LEN);
        cr_assert_eq(got.id.ptr[14], '7', "UUID version 7: %.*s",
                     (int)got.id.len, got.id.ptr);
        cr_assert(strchr("89ab", got.id.ptr[19]) != NULL, "RFC variant");
        memcpy(ids[i - 1], got.id.ptr, EVS_UUID_LEN);
        ids[i - 1][EVS_UUID_LEN] = '\0';
    }
    cr_assert_eq(evs_cursor_next(c, &got, NULL, NULL), 0);
    evs_cursor_close(c);
    evs_log_close(l);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (ids[i][0] != '-' && ids[j][0] != '-')
                cr_assert_str_neq(ids[i], ids[j]);
}

Test(exec_create, default_snapshot_is_running_at_the_last_sequence)
{
    evs_snapshot *sn = NULL;
    evs_event ev[3];
    int64_t before = evs_now_us();

    for (int i = 0; i < 3; i++)
        ev[i] = tu_event("step_started", "s", "{}");
    cr_assert_eq(evs_exec_create(st, "snap", 4, NULL, ev, 3), 0);
    cr_assert_eq(evs_snapshot_load(st, "snap", 4, &sn, NULL), 0);
    cr_assert(evs__span_eq_cstr(sn->status, "running"));
    cr_assert(evs__span_eq_cstr(sn->id, "snap"));
    cr_assert_eq(sn->last_event_seq, 3);
    cr_assert_geq(sn->created_at_us, before);
    cr_assert_leq(sn->created_at_us, evs_now_us());
    evs_snapshot_free(sn);
}

Test(exec_create, a_given_snapshot_gets_id_and_last_event_seq)
{
    evs_snapshot in = snap_of("wf", "waiting", 1700000000000000LL, 0);
    evs_snapshot *sn = NULL;

    in.id = evs_span_cstr("someone-else");
    in.last_event_seq = 99;
    cr_assert_eq(create_with("given", &in, 2), 0);
    cr_assert_eq(evs_snapshot_load(st, "given", 5, &sn, NULL), 0);
    cr_assert(evs__span_eq_cstr(sn->id, "given"));
    cr_assert(evs__span_eq_cstr(sn->status, "waiting"));
    cr_assert(evs__span_eq_cstr(sn->workflow_name, "wf"));
    cr_assert_eq(sn->last_event_seq, 2);
    cr_assert_eq(sn->created_at_us, 1700000000000000LL);
    cr_assert_eq(sn->updated_at_us, 1700000000000000LL);
    evs_snapshot_free(sn);
}

Test(exec_create, with_no_events_makes_an_empty_log)
{
    cr_assert_eq(evs_exec_create(st, "empty", 5, NULL, NULL, 0), 0);
    cr_assert(evs_exec_exists(st, "empty", 5));
    cr_assert_eq(tu_count_events(st, "empty"), 0);
}

Test(exec_create, a_bad_event_leaves_nothing_behind)
{
    evs_event ev[3];

    ev[0] = tu_event("execution_started", NULL, "{}");
    ev[1] = tu_event("step_started", "s", "{}");
    ev[2] = tu_event("step_started", "s", "{not json");
    cr_assert_eq(evs_exec_create(st, "bad", 3, NULL, ev, 3), -EINVAL);
    ev[2] = tu_event("", "s", "{}");
    cr_assert_eq(evs_exec_create(st, "bad", 3, NULL, ev, 3), -EINVAL);
    ev[2] = tu_event("step_started", "s", "{}");
    ev[2].execution_id = evs_span_cstr("other");
    cr_assert_eq(evs_exec_create(st, "bad", 3, NULL, ev, 3), -EINVAL);
    cr_assert_not(evs_exec_exists(st, "bad", 3));
    cr_assert_eq(count_store(), 0, "no directory, no .tmp-*");
}

Test(exec_create, a_bad_snapshot_leaves_nothing_behind)
{
    evs_snapshot in = snap_of("wf", "running", 0, 0);

    in.workflow_data = evs_span_cstr("{\"a\":");
    cr_assert_eq(create_with("badsnap", &in, 1), -EINVAL);
    in = snap_of("wf\xff", "running", 0, 0);
    cr_assert_eq(create_with("badsnap", &in, 1), -EINVAL);
    cr_assert_not(evs_exec_exists(st, "badsnap", 7));
    cr_assert_eq(count_store(), 0, "no directory, no .tmp-*");
}

/* ------------------------------------------------------------------ */
/* Listing                                                            */
/* ------------------------------------------------------------------ */

TestSuite(exec_list, .init = setup, .fini = teardown);

#define NLIST 30
#define T0 1750000000000000LL

static const char *list_status[] = {"running", "completed", "failed", "paused"};
static const char *list_wf[] = {"wf-a", "wf-b", "wf-c"};

typedef struct row {
    char id[16];
    int st, wf;
    int64_t created;
} row;

static row rows[NLIST];

/* 30 executions, created in a scrambled order, with created_at values
 * that repeat so the order must fall back on the id. */
static void make_rows(void)
{
    for (int k = 0; k < NLIST; k++) {
        int i = (k * 7) % NLIST; /* 7 is prime to 30: a permutation */
        row *r = &rows[i];
        evs_snapshot sn;

        snprintf(r->id, sizeof(r->id), "ex-%02d", (i * 13) % NLIST);
        r->st = i % 4;
        r->wf = i % 3;
        r->created = T0 + (int64_t)(i % 10) * 1000;
        sn = snap_of(list_wf[r->wf], list_status[r->st], r->created, 0);
        cr_assert_eq(create_with(r->id, &sn, 1), 0);
    }
}

static int row_cmp(const void *pa, const void *pb)
{
    const row *a = pa, *b = pb;

    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    return strcmp(a->id, b->id);
}

static const row *find_row(evs_span id)
{
    for (int i = 0; i < NLIST; i++)
        if (evs__span_eq_cstr(id, rows[i].id))
            return &rows[i];
    return NULL;
}

/* Checks a listing against the rows that satisfy `keep`, in order. */
static void check_listing(const evs_exec_listing *L, int (*keep)(const row *))
{
    row want[NLIST];
    size_t n = 0;

    for (int i = 0; i < NLIST; i++)
        if (keep(&rows[i]))
            want[n++] = rows[i];
    qsort(want, n, sizeof(*want), row_cmp);
    cr_assert_gt(n, 0, "the filter must select something");
    cr_assert_eq(L->count, n);
    cr_assert_eq(L->total, n);
    for (size_t i = 0; i < n; i++) {
        const evs_exec_info *it = &L->items[i];
        cr_assert(evs__span_eq_cstr(it->id, want[i].id),
                  "item %zu: %.*s "
                  "instead of %s",
                  i, (int)it->id.len, it->id.ptr, want[i].id);
        cr_assert_eq(it->snapshot_ok, 1);
        cr_assert_eq(it->created_at_us, want[i].created);
        cr_assert(evs__span_eq_cstr(it->status, list_status[want[i].st]));
        cr_assert(evs__span_eq_cstr(it->workflow_name, list_wf[want[i].wf]));
        cr_assert_eq(it->last_event_seq, 1);
    }
}

static int keep_all(const row *r)
{
    (void)r;
    return 1;
}

static int keep_completed(const row *r)
{
    return r->st == 1;
}

static int keep_wf_b(const row *r)
{
    return r->wf == 1;
}

static int keep_range(const row *r)
{
    return r->created >= T0 + 3000 && r->created < T0 + 7000;
}

static int keep_failed_wf_c_range(const row *r)
{
    return r->st == 2 && r->wf == 2 && r->created >= T0 + 2000;
}

Test(exec_list, unfiltered_lists_everything_in_created_then_id_order)
{
    evs_exec_listing L;

    make_rows();
    cr_assert_eq(evs_exec_list(st, NULL, &L), 0);
    check_listing(&L, keep_all);
    evs_exec_list_free(&L);
}

Test(exec_list, filters_by_status_workflow_and_created_range)
{
    evs_list_filter f;
    evs_exec_listing L;

    make_rows();
    memset(&f, 0, sizeof(f));
    f.status = evs_span_cstr("completed");
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    check_listing(&L, keep_completed);
    evs_exec_list_free(&L);

    memset(&f, 0, sizeof(f));
    f.workflow_name = evs_span_cstr("wf-b");
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    check_listing(&L, keep_wf_b);
    evs_exec_list_free(&L);

    memset(&f, 0, sizeof(f));
    f.created_after_us = T0 + 3000;
    f.created_before_us = T0 + 7000;
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    check_listing(&L, keep_range);
    evs_exec_list_free(&L);

    memset(&f, 0, sizeof(f));
    f.status = evs_span_cstr("failed");
    f.workflow_name = evs_span_cstr("wf-c");
    f.created_after_us = T0 + 2000;
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    check_listing(&L, keep_failed_wf_c_range);
    evs_exec_list_free(&L);

    memset(&f, 0, sizeof(f));
    f.status = evs_span_cstr("no-such-status");
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    cr_assert_eq(L.count, 0);
    cr_assert_eq(L.total, 0);
    evs_exec_list_free(&L);
}

Test(exec_list, pages_cover_every_execution_once_in_order)
{
    row want[NLIST];
    int seen[NLIST] = {0};
    size_t pos = 0;

    make_rows();
    memcpy(want, rows, sizeof(want));
    qsort(want, NLIST, sizeof(*want), row_cmp);
    for (size_t off = 0; off < NLIST + 7; off += 7) {
        evs_list_filter f;
        evs_exec_listing L;
        size_t expect = off < NLIST ? NLIST - off : 0;

        if (expect > 7)
            expect = 7;
        memset(&f, 0, sizeof(f));
        f.offset = off;
        f.limit = 7;
        cr_assert_eq(evs_exec_list(st, &f, &L), 0);
        cr_assert_eq(L.total, NLIST);
        cr_assert_eq(L.count, expect, "page at %zu", off);
        for (size_t i = 0; i < L.count; i++, pos++) {
            const row *r = find_row(L.items[i].id);
            cr_assert_not_null(r);
            cr_assert(evs__span_eq_cstr(L.items[i].id, want[pos].id),
                      "position %zu", pos);
            seen[r - rows]++;
        }
        evs_exec_list_free(&L);
    }
    cr_assert_eq(pos, NLIST);
    for (int i = 0; i < NLIST; i++)
        cr_assert_eq(seen[i], 1, "%s seen %d times", rows[i].id, seen[i]);
}

Test(exec_list, a_filtered_page_reports_the_filtered_total)
{
    evs_list_filter f;
    evs_exec_listing L;
    row want[NLIST];
    size_t n = 0;

    make_rows();
    for (int i = 0; i < NLIST; i++)
        if (rows[i].wf == 0)
            want[n++] = rows[i];
    qsort(want, n, sizeof(*want), row_cmp);
    memset(&f, 0, sizeof(f));
    f.workflow_name = evs_span_cstr("wf-a");
    f.offset = 3;
    f.limit = 4;
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    cr_assert_eq(L.total, n);
    cr_assert_eq(L.count, 4);
    for (size_t i = 0; i < 4; i++)
        cr_assert(evs__span_eq_cstr(L.items[i].id, want[3 + i].id));
    evs_exec_list_free(&L);

    f.offset = n; /* past the end: nothing, but the same total */
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    cr_assert_eq(L.total, n);
    cr_assert_eq(L.count, 0);
    evs_exec_list_free(&L);
}

Test(exec_list, an_execution_is_listed_right_after_create)
{
    evs_exec_listing L;

    cr_assert_eq(evs_exec_list(st, NULL, &L), 0);
    cr_assert_eq(L.count, 0);
    evs_exec_list_free(&L);
    cr_assert_eq(tu_create(st, "fresh"), 0);
    cr_assert_eq(evs_exec_list(st, NULL, &L), 0);
    cr_assert_eq(L.count, 1);
    cr_assert(evs__span_eq_cstr(L.items[0].id, "fresh"));
    cr_assert(evs__span_eq_cstr(L.items[0].status, "running"));
    cr_assert_eq(L.items[0].snapshot_ok, 1);
    cr_assert_eq(L.items[0].last_event_seq, 1);
    evs_exec_list_free(&L);
}

/* Flips a bit in the workflow name inside a snapshot file, which keeps
 * its syntax and breaks its checksum; and forgets the index, which would
 * otherwise list what the writer noted (tu_forget_index). */
static void damage_snapshot(const char *id, const char *wf)
{
    char *p = tu_path(dir, id, EVS__SNAP_NAME);
    size_t len;
    char *buf = tu_read_file(p, &len);
    const char *at;

    cr_assert_not_null(buf);
    at = memmem(buf, len, wf, strlen(wf));
    cr_assert_not_null(at);
    cr_assert_eq(tu_flip_bit(p, at - buf, 0), 0);
    free(buf);
    free(p);
    tu_forget_index(dir);
}

Test(exec_list, a_damaged_snapshot_is_listed_only_unfiltered)
{
    TU_FILE_ONLY("damages a snapshot file");
    evs_snapshot sn = snap_of("wf-z", "running", T0, 0);
    evs_list_filter f;
    evs_exec_listing L;
    int found = 0;

    make_rows();
    cr_assert_eq(create_with("hurt", &sn, 1), 0);
    damage_snapshot("hurt", "wf-z");
    cr_assert_eq(evs_exec_list(st, NULL, &L), 0);
    cr_assert_eq(L.count, NLIST + 1);
    cr_assert_eq(L.total, NLIST + 1);
    for (size_t i = 0; i < L.count; i++) {
        if (!evs__span_eq_cstr(L.items[i].id, "hurt")) {
            cr_assert_eq(L.items[i].snapshot_ok, 1);
            continue;
        }
        found++;
        cr_assert_eq(L.items[i].snapshot_ok, 0);
        cr_assert_eq(L.items[i].status.len, 0);
        cr_assert_eq(L.items[i].workflow_name.len, 0);
        cr_assert_eq(L.items[i].created_at_us, 0);
    }
    cr_assert_eq(found, 1);
    evs_exec_list_free(&L);

    /* Pagination alone is not a filter. */
    memset(&f, 0, sizeof(f));
    f.limit = 100;
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    cr_assert_eq(L.total, NLIST + 1);
    evs_exec_list_free(&L);

    /* Any condition leaves it out, even one its old status matched. */
    f.status = evs_span_cstr("running");
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    for (size_t i = 0; i < L.count; i++)
        cr_assert_not(evs__span_eq_cstr(L.items[i].id, "hurt"));
    cr_assert_eq(L.total, 8); /* i % 4 == 0 for i in 0..29 */
    evs_exec_list_free(&L);

    memset(&f, 0, sizeof(f));
    f.created_before_us = T0 + 100000;
    cr_assert_eq(evs_exec_list(st, &f, &L), 0);
    cr_assert_eq(L.total, NLIST);
    evs_exec_list_free(&L);
}

Test(exec_list, a_missing_snapshot_is_listed_as_not_ok)
{
    TU_FILE_ONLY("removes a snapshot file");
    char *p;
    evs_exec_listing L;

    cr_assert_eq(tu_create(st, "nosnap"), 0);
    p = tu_path(dir, "nosnap", EVS__SNAP_NAME);
    cr_assert_eq(unlink(p), 0);
    free(p);
    cr_assert_eq(evs_exec_list(st, NULL, &L), 0);
    cr_assert_eq(L.count, 1);
    cr_assert(evs__span_eq_cstr(L.items[0].id, "nosnap"));
    cr_assert_eq(L.items[0].snapshot_ok, 0);
    evs_exec_list_free(&L);
}

/* ------------------------------------------------------------------ */
/* Deleting and cleaning up                                           */
/* ------------------------------------------------------------------ */

TestSuite(exec_delete, .init = setup, .fini = teardown);

Test(exec_delete, removes_the_execution)
{
    evs_log *l;
    char *ep = spath("gone");

    cr_assert_eq(tu_create(st, "gone"), 0);
    cr_assert_eq(tu_create(st, "kept"), 0);
    cr_assert_eq(evs_exec_delete(st, "gone", 4), 0);
    cr_assert_not(evs_exec_exists(st, "gone", 4));
    cr_assert_not(exists_path(ep));
    cr_assert_eq(evs_exec_delete(st, "gone", 4), -ENOENT);
    cr_assert_eq(evs_log_open(st, "gone", 4, 0, &l, NULL, NULL), -ENOENT);
    cr_assert(evs_exec_exists(st, "kept", 4));
    cr_assert_eq(count_prefix(dir, EVS__TRASH_PREFIX), 0);
    cr_assert_eq(count_store(), 1);
    free(ep);
}

Test(exec_delete, is_refused_while_a_writer_is_open)
{
    evs_log *w;

    cr_assert_eq(tu_create(st, "busy"), 0);
    cr_assert_eq(evs_log_open(st, "busy", 4, EVS_LOG_WRITE, &w, NULL, NULL), 0);
    cr_assert_eq(evs_exec_delete(st, "busy", 4), EVS_ELOCKED);
    cr_assert(evs_exec_exists(st, "busy", 4));
    /* The writer is undisturbed. */
    cr_assert_eq(tu_append_n(w, 3), 0);
    evs_log_close(w);
    cr_assert_eq(tu_count_events(st, "busy"), 4);
    cr_assert_eq(count_prefix(dir, EVS__TRASH_PREFIX), 0);
    cr_assert_eq(evs_exec_delete(st, "busy", 4), 0);
    cr_assert_not(evs_exec_exists(st, "busy", 4));
    cr_assert_eq(count_store(), 0);
}

Test(exec_delete, a_reader_does_not_block_it)
{
    evs_log *r;

    cr_assert_eq(tu_create(st, "read"), 0);
    cr_assert_eq(evs_log_open(st, "read", 4, 0, &r, NULL, NULL), 0);
    cr_assert_eq(evs_exec_delete(st, "read", 4), 0);
    cr_assert_not(evs_exec_exists(st, "read", 4));
    evs_log_close(r);
    cr_assert_eq(count_store(), 0);
}

TestSuite(exec_cleanup, .init = setup, .fini = teardown);

static void make_dir_with_file(const char *name)
{
    char *p = spath(name);
    char *f = tu_path(dir, name, "junk");

    cr_assert_eq(mkdir(p, 0700), 0);
    cr_assert_eq(tu_write_file(f, "junk", 4), 0);
    free(f);
    free(p);
}

Test(exec_cleanup, deletes_only_old_finished_unlocked_executions)
{
    const int64_t T = T0 + 1000000;
    static const struct {
        const char *id, *status;
        int64_t updated;
        int gone;
    } cases[] = {
        {"old-completed", "completed", T - 1, 1},
        {"old-failed", "failed", T0, 1},
        {"old-terminated", "terminated", T0, 1},
        {"old-continued", "continued", T0, 1},
        {"old-running", "running", T0, 0},
        {"old-paused", "paused", T0, 0},
        {"old-waiting", "waiting", T0, 0},
        {"new-completed", "completed", T, 0},
        {"newer-failed", "failed", T + 5, 0},
        {"old-locked", "completed", T0, 0},
    };
    const size_t ncases = sizeof(cases) / sizeof(cases[0]);
    evs_log *w;
    size_t deleted = 99;
    char *tmp = spath(".tmp-0123456789abcdef-other");

    for (size_t i = 0; i < ncases; i++) {
        evs_snapshot sn = snap_of("wf", cases[i].status, T0, cases[i].updated);
        cr_assert_eq(create_with(cases[i].id, &sn, 2), 0);
    }
    /* What interrupted deletes and creations leave is the file
     * backend's (a database leaves nothing behind). */
    if (tu_backend_is_file()) {
        make_dir_with_file(".trash-0123456789abcdef-old");
        make_dir_with_file(".trash-fedcba9876543210-older");
        make_dir_with_file(".tmp-0123456789abcdef-other");
    }
    cr_assert_eq(
        evs_log_open(st, "old-locked", 10, EVS_LOG_WRITE, &w, NULL, NULL), 0);

    cr_assert_eq(evs_exec_cleanup(st, T, &deleted), 0);
    cr_assert_eq(deleted, 4);
    for (size_t i = 0; i < ncases; i++)
        cr_assert_eq(evs_exec_exists(st, cases[i].id, strlen(cases[i].id)),
                     !cases[i].gone, "%s", cases[i].id);
    if (tu_backend_is_file()) {
        cr_assert_eq(count_prefix(dir, EVS__TRASH_PREFIX), 0);
        cr_assert(exists_path(tmp), "another process's create is left alone");
        cr_assert_eq(count_prefix(dir, EVS__TMP_PREFIX), 1);
    }

    /* The locked one goes once its writer is done. */
    cr_assert_eq(tu_append_n(w, 1), 0);
    evs_log_close(w);
    cr_assert_eq(evs_exec_cleanup(st, T, &deleted), 0);
    cr_assert_eq(deleted, 1);
    cr_assert_not(evs_exec_exists(st, "old-locked", 10));
    cr_assert_eq(evs_exec_cleanup(st, T, NULL), 0);
    cr_assert(exists_path(tmp) == tu_backend_is_file());
    cr_assert_eq(count_store(), tu_backend_is_file() ? 6 : 5);
    free(tmp);
}

Test(exec_cleanup, removes_a_temporary_directory_only_once_it_is_old)
{
    TU_FILE_ONLY("temporary directories of interrupted creations");
    char *stale = spath(".tmp-0123456789abcdef-stale");
    char *fresh = spath(".tmp-fedcba9876543210-fresh");
    struct timespec ts[2];
    size_t deleted = 99;

    make_dir_with_file(".tmp-0123456789abcdef-stale");
    make_dir_with_file(".tmp-fedcba9876543210-fresh");
    /* An interrupted create of two hours ago. */
    ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 2 * 3600;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    cr_assert_eq(utimensat(AT_FDCWD, stale, ts, 0), 0);
    cr_assert_eq(evs_exec_cleanup(st, INT64_MAX, &deleted), 0);
    cr_assert_eq(deleted, 0, "temporary directories are not executions");
    cr_assert_not(exists_path(stale));
    cr_assert(exists_path(fresh));
    free(stale);
    free(fresh);
}

/* Sets the times of `path` (not followed) to `ago` seconds ago. */
static void age_path(const char *path, time_t ago)
{
    struct timespec ts[2];

    ts[0].tv_sec = ts[1].tv_sec = time(NULL) - ago;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0,
                 "utimensat %s: %s", path, strerror(errno));
}

/* What a killed writer leaves: a snapshot's temporary file in the
 * execution's directory, an index rewrite's in the store's, a post's in
 * the inbox. Old ones go; fresh ones may be a writer's at work. */
Test(exec_cleanup, removes_temporary_files_only_once_they_are_old)
{
    TU_FILE_ONLY("temporary files of interrupted writes");
    const char *names[] = {"run/.tmp-0123456789abcdef", ".tmp-0123456789abcdef",
                           "run/inbox/.tmp-0123456789abcdef"};
    const char *fresh[] = {"run/.tmp-fedcba9876543210", ".tmp-fedcba9876543210",
                           "run/inbox/.tmp-fedcba9876543210"};
    evs_snapshot sn = snap_of("wf", "running", T0, T0);
    char *inbox = spath("run/inbox");
    size_t deleted = 99;

    cr_assert_eq(create_with("run", &sn, 1), 0);
    cr_assert_eq(mkdir(inbox, 0700), 0);
    for (size_t i = 0; i < 3; i++) {
        char *o = spath(names[i]), *f = spath(fresh[i]);

        cr_assert_eq(tu_write_file(o, "{\"half", 6), 0);
        cr_assert_eq(tu_write_file(f, "{\"half", 6), 0);
        age_path(o, 2 * 3600);
        free(o);
        free(f);
    }
    cr_assert_eq(evs_exec_cleanup(st, INT64_MAX, &deleted), 0);
    cr_assert_eq(deleted, 0, "a running execution is never deleted");
    for (size_t i = 0; i < 3; i++) {
        char *o = spath(names[i]), *f = spath(fresh[i]);

        cr_assert_not(exists_path(o), "%s was left", names[i]);
        cr_assert(exists_path(f), "%s, a fresh one, was removed", fresh[i]);
        free(o);
        free(f);
    }
    cr_assert(evs_exec_exists(st, "run", 3));
    free(inbox);
}

Test(exec_cleanup, leaves_executions_with_damaged_snapshots)
{
    TU_FILE_ONLY("damages a snapshot file");
    evs_snapshot sn = snap_of("wf-x", "completed", T0, T0);
    size_t deleted = 99;

    cr_assert_eq(create_with("hurt", &sn, 1), 0);
    damage_snapshot("hurt", "wf-x");
    cr_assert_eq(evs_exec_cleanup(st, T0 + 1, &deleted), 0);
    cr_assert_eq(deleted, 0);
    cr_assert(evs_exec_exists(st, "hurt", 4));
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                          */
/* ------------------------------------------------------------------ */

TestSuite(snapshot, .init = setup, .fini = teardown);

Test(snapshot, save_then_load_gives_back_every_field)
{
    evs_snapshot in, *out = NULL;

    cr_assert_eq(tu_make_exec(st, "rt", 6), 0);

    memset(&in, 0, sizeof(in));
    in.id = evs_span_cstr("ignored");
    in.workflow_name = evs_span_cstr("summarise \"docs\"");
    in.workflow_hash = evs_span_cstr("abc123");
    in.inputs_hash = evs_span_cstr("def456");
    in.status = evs_span_cstr("completed");
    in.start_time_us = T0 + 1;
    in.end_time_us = T0 + 2;
    in.created_at_us = T0;
    in.updated_at_us = T0 + 3;
    in.last_event_seq = 7;
    in.workflow_data = evs_span_cstr("{\"steps\":[1,2,3]}");
    in.inputs = evs_span_cstr("{\"q\":\"why\"}");
    in.outputs = evs_span_cstr("[\"a\",null]");
    in.error = evs_span_cstr("\"boom\"");
    in.lineage = evs_span_cstr("{\"retry_of\":\"x\"}");
    in.state = evs_span_cstr("{\"paths\":{}}");
    cr_assert_eq(evs_snapshot_save(st, "rt", 2, &in), 0);
    cr_assert_eq(evs_snapshot_load(st, "rt", 2, &out, NULL), 0);
    cr_assert(evs__span_eq_cstr(out->id, "rt"));
    cr_assert(evs__span_eq(out->workflow_name, in.workflow_name));
    cr_assert(evs__span_eq(out->workflow_hash, in.workflow_hash));
    cr_assert(evs__span_eq(out->inputs_hash, in.inputs_hash));
    cr_assert(evs__span_eq(out->status, in.status));
    cr_assert_eq(out->start_time_us, in.start_time_us);
    cr_assert_eq(out->end_time_us, in.end_time_us);
    cr_assert_eq(out->created_at_us, in.created_at_us);
    cr_assert_eq(out->updated_at_us, in.updated_at_us);
    cr_assert_eq(out->last_event_seq, 7);
    cr_assert(evs__span_eq(out->workflow_data, in.workflow_data));
    cr_assert(evs__span_eq(out->inputs, in.inputs));
    cr_assert(evs__span_eq(out->outputs, in.outputs));
    cr_assert(evs__span_eq(out->error, in.error));
    cr_assert(evs__span_eq(out->lineage, in.lineage));
    cr_assert(evs__span_eq(out->state, in.state));
    evs_snapshot_free(out);
}

Test(snapshot, save_past_the_end_of_the_log_is_stale)
{
    evs_snapshot in = snap_of("wf", "running", T0, T0), *out = NULL;

    cr_assert_eq(create_with("ahead", &in, 3), 0);
    in.last_event_seq = 4;
    cr_assert_eq(evs_snapshot_save(st, "ahead", 5, &in), EVS_ESTALE);
    cr_assert_eq(evs_snapshot_load(st, "ahead", 5, &out, NULL), 0);
    cr_assert_eq(out->last_event_seq, 3, "the old snapshot is kept");
    evs_snapshot_free(out);
    in.last_event_seq = 3;
    cr_assert_eq(evs_snapshot_save(st, "ahead", 5, &in), 0);
}

/* Events 2 .. 1 + n of execution `id`, with ids of their own (so that
 * the same append may be retried). */
static void tail_events(evs_event *ev, char (*ids)[32], size_t n,
                        const char *tag)
{
    for (size_t i = 0; i < n; i++) {
        ev[i] = tu_event(EVS_EV_STEP_COMPLETED, "s", "{\"k\":2}");
        snprintf(ids[i], sizeof(ids[i]), "%s-%zu", tag, i);
        ev[i].id = evs_span_cstr(ids[i]);
    }
}

/* A new execution `id` of one event (its snapshot "running"), its
 * writer, and n events to append after it. */
static evs_log *writer_on_new(const char *id, evs_event *ev, char (*ids)[32],
                              size_t n)
{
    evs_snapshot in = snap_of("wf", "running", T0, T0);
    evs_log *l;

    cr_assert_eq(create_with(id, &in, 1), 0);
    cr_assert_eq(evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL,
                              NULL),
                 0);
    tail_events(ev, ids, n, id);
    return l;
}

Test(snapshot, an_append_with_its_snapshot_writes_both)
{
    evs_snapshot in = snap_of("wf", "running", T0, T0), *out = NULL;
    evs_exec_listing ls = {0};
    evs_list_filter f = {.status = evs_span_cstr("completed")};
    evs_event ev[2];
    char ids[2][32];
    evs_log *l;
    int src = -1;

    l = writer_on_new("as", ev, ids, 2);
    in = snap_of("wf", "completed", T0, T0 + 5);
    in.last_event_seq = 3;
    in.end_time_us = T0 + 4;
    in.outputs = evs_span_cstr("{\"done\":true}");
    in.state = evs_span_cstr("{\"paths\":{}}");
    cr_assert_eq(
        evs_log_append_snapshot(l, ev, 2, 1, 0, &in, EVS_SNAPSHOT_CACHE, &src,
                                NULL),
        0);
    cr_assert_eq(src, 0);
    cr_assert_eq(evs_log_last_seq(l), 3);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(st, "as"), 3);
    cr_assert_eq(evs_snapshot_load(st, "as", 2, &out, NULL), 0);
    cr_assert(evs__span_eq_cstr(out->status, "completed"));
    cr_assert_eq(out->last_event_seq, 3);
    cr_assert_eq(out->end_time_us, T0 + 4);
    cr_assert_eq(out->created_at_us, T0);
    cr_assert_eq(out->updated_at_us, T0 + 5);
    cr_assert(evs__span_eq(out->outputs, in.outputs));
    evs_snapshot_free(out);
    /* The listing's columns moved with it. */
    cr_assert_eq(evs_exec_list(st, &f, &ls), 0);
    cr_assert_eq(ls.count, 1);
    cr_assert(evs__span_eq_cstr(ls.items[0].id, "as"));
    cr_assert_eq(ls.items[0].end_time_us, T0 + 4);
    evs_exec_list_free(&ls);

    /* A snapshot without created_at keeps the execution's. */
    cr_assert_eq(evs_log_open(st, "as", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    tail_events(ev, ids, 1, "as2");
    in.created_at_us = 0;
    in.updated_at_us = 0;
    in.last_event_seq = 4;
    cr_assert_eq(evs_log_append_snapshot(l, ev, 1, 3, 0, &in, 0, &src, NULL),
                 0);
    cr_assert_eq(src, 0);
    evs_log_close(l);
    cr_assert_eq(evs_snapshot_load(st, "as", 2, &out, NULL), 0);
    cr_assert_eq(out->last_event_seq, 4);
    cr_assert_eq(out->created_at_us, T0);
    cr_assert_gt(out->updated_at_us, T0 + 5, "an updated_at of 0 is now");
    evs_snapshot_free(out);
}

Test(snapshot, an_append_with_its_snapshot_retried_saves_the_snapshot)
{
    evs_snapshot in = snap_of("wf", "running", T0, T0), *out = NULL;
    evs_event ev[2];
    char ids[2][32];
    evs_log *l;
    int src = -1;

    l = writer_on_new("rs", ev, ids, 2);
    cr_assert_eq(evs_log_append(l, ev, 2, 1, NULL), 0);
    evs_log_close(l);
    /* The same events again (a writer that did not learn the first
     * append's outcome), now with the snapshot: acknowledged, nothing
     * appended twice, and the snapshot saved. */
    cr_assert_eq(evs_log_open(st, "rs", 2, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    in = snap_of("wf", "failed", T0, T0 + 9);
    in.last_event_seq = 3;
    cr_assert_eq(evs_log_append_snapshot(l, ev, 2, 1, 0, &in, 0, &src, NULL),
                 0);
    cr_assert_eq(src, 0);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(st, "rs"), 3);
    cr_assert_eq(evs_snapshot_load(st, "rs", 2, &out, NULL), 0);
    cr_assert(evs__span_eq_cstr(out->status, "failed"));
    cr_assert_eq(out->last_event_seq, 3);
    evs_snapshot_free(out);
}

Test(snapshot, an_append_with_its_snapshot_refused_saves_neither)
{
    evs_snapshot in = snap_of("wf", "running", T0, T0), *out = NULL;
    evs_error_info info;
    evs_event ev[2];
    char ids[2][32];
    evs_log *l, *r;
    int src = -1;

    l = writer_on_new("rf", ev, ids, 2);
    in = snap_of("wf", "completed", T0, T0 + 5);
    /* A snapshot past the append's end: refused before anything. */
    in.last_event_seq = 4;
    memset(&info, 0, sizeof(info));
    cr_assert_eq(evs_log_append_snapshot(l, ev, 2, 1, 0, &in, 0, &src, &info),
                 -EINVAL);
    cr_assert_eq(src, 1, "no snapshot tried");
    cr_assert(strstr(info.msg, "rf: a snapshot at sequence 4 after an "
                               "append ending at 3"),
              "%s", info.msg);
    in.last_event_seq = 3;
    cr_assert_eq(evs_log_append_snapshot(l, ev, 2, 1, 0, NULL, 0, &src, NULL),
                 -EINVAL);
    cr_assert_eq(evs_log_append_snapshot(l, ev, 2, 1, 0, &in, 1u << 9, &src,
                                         NULL),
                 -EINVAL);
    cr_assert_eq(evs_log_append_snapshot(l, ev, 2, 1, 1u << 9, &in, 0, &src,
                                         NULL),
                 -EINVAL);
    cr_assert_eq(evs_log_last_seq(l), 1, "nothing appended");
    /* The log's end elsewhere: a conflict, and no snapshot. */
    src = -1;
    cr_assert_eq(evs_log_append_snapshot(l, ev, 2, 2, 0, &in, 0, &src, NULL),
                 EVS_ECONFLICT);
    cr_assert_eq(src, 1);
    evs_log_close(l);
    /* A reader cannot. */
    cr_assert_eq(evs_log_open(st, "rf", 2, 0, &r, NULL, NULL), 0);
    cr_assert_eq(evs_log_append_snapshot(r, ev, 2, 1, 0, &in, 0, &src, NULL),
                 EVS_EREADONLY);
    evs_log_close(r);
    cr_assert_eq(tu_count_events(st, "rf"), 1);
    cr_assert_eq(evs_snapshot_load(st, "rf", 2, &out, NULL), 0);
    cr_assert(evs__span_eq_cstr(out->status, "running"), "the old one");
    cr_assert_eq(out->last_event_seq, 1);
    evs_snapshot_free(out);
}

Test(snapshot, the_last_append_gives_the_writer_up)
{
    evs_snapshot in = snap_of("wf", "running", T0, T0);
    evs_error_info info;
    evs_event ev[2];
    char ids[2][32];
    evs_log *l, *other;
    evs_cursor *c;
    evs_event got;
    int src = -1;

    l = writer_on_new("gu", ev, ids, 2);
    /* A failed last append gives nothing up. */
    cr_assert_eq(evs_log_append_flags(l, ev, 1, 7, EVS_APPEND_RELEASE, NULL),
                 EVS_ECONFLICT);
    cr_assert_eq(evs_log_append_flags(l, ev, 1, 1, 0, NULL), 0);
    in = snap_of("wf", "completed", T0, T0 + 5);
    in.last_event_seq = 3;
    cr_assert_eq(evs_log_append_snapshot(l, ev + 1, 1, 2, EVS_APPEND_RELEASE,
                                         &in, 0, &src, NULL),
                 0);
    cr_assert_eq(src, 0);
    /* Written, and the handle a writer's no more: it reads still. */
    memset(&info, 0, sizeof(info));
    cr_assert_eq(evs_log_append(l, ev, 1, 3, &info), EVS_EREADONLY);
    cr_assert(strstr(info.msg, "gu: this writer gave the execution up"), "%s",
              info.msg);
    cr_assert_eq(evs_log_append_flags(l, ev, 1, 3, 1u << 9, NULL), -EINVAL);
    cr_assert_eq(evs_cursor_open(l, 3, 0, &c, NULL), 0);
    cr_assert_eq(evs_cursor_next(c, &got, NULL, NULL), 1);
    cr_assert(evs__span_eq_cstr(got.id, "gu-1"));
    evs_cursor_close(c);
    evs_log_close(l);
    cr_assert_eq(tu_count_events(st, "gu"), 3);
    /* The next writer takes it. */
    cr_assert_eq(
        evs_log_open(st, "gu", 2, EVS_LOG_WRITE, &other, NULL, NULL), 0);
    cr_assert_eq(evs_log_last_seq(other), 3);
    evs_log_close(other);
}

Test(snapshot, save_for_a_missing_execution_is_enoent)
{
    evs_snapshot in = snap_of("wf", "running", T0, T0);
    evs_snapshot *out = NULL;

    cr_assert_eq(evs_snapshot_save(st, "nobody", 6, &in), -ENOENT);
    cr_assert_eq(evs_snapshot_load(st, "nobody", 6, &out, NULL), -ENOENT);
    cr_assert_eq(count_store(), 0);
}

Test(snapshot, a_snapshot_ahead_of_its_log_loads_as_stale)
{
    TU_FILE_ONLY("puts back an old log file");
    evs_snapshot in = snap_of("wf", "running", T0, T0), *out = NULL;
    evs_error_info info;
    char *sp = tu_path(dir, "lost", EVS__SNAP_NAME);
    size_t len;
    char *saved;

    /* A snapshot taken at sequence 5 ... */
    cr_assert_eq(create_with("lost", &in, 5), 0);
    saved = tu_read_file(sp, &len);
    cr_assert_not_null(saved);
    /* ... of a log that then lost its last three events. */
    cr_assert_eq(evs_exec_delete(st, "lost", 4), 0);
    cr_assert_eq(create_with("lost", &in, 2), 0);
    cr_assert_eq(tu_write_file(sp, saved, len), 0);
    cr_assert_eq(evs_snapshot_load(st, "lost", 4, &out, &info), EVS_ESTALE);
    cr_assert_null(out);
    cr_assert_eq(info.code, EVS_ESTALE);
    cr_assert_eq(info.sequence, 5);
    cr_assert_str_eq(info.execution_id, "lost");
    free(saved);
    free(sp);
}

Test(snapshot, a_damaged_snapshot_is_corrupt)
{
    TU_FILE_ONLY("damages a snapshot file");
    evs_snapshot in = snap_of("wf-damaged", "running", T0, T0), *out = NULL;
    evs_error_info info;

    cr_assert_eq(create_with("dmg", &in, 1), 0);
    damage_snapshot("dmg", "wf-damaged");
    cr_assert_eq(evs_snapshot_load(st, "dmg", 3, &out, &info), EVS_ECORRUPT);
    cr_assert_null(out);
    cr_assert_eq(info.code, EVS_ECORRUPT);
    /* Saving a good one repairs it. */
    cr_assert_eq(evs_snapshot_save(st, "dmg", 3, &in), 0);
    cr_assert_eq(evs_snapshot_load(st, "dmg", 3, &out, NULL), 0);
    cr_assert(evs__span_eq_cstr(out->workflow_name, "wf-damaged"));
    evs_snapshot_free(out);
}

Test(snapshot, a_snapshot_of_another_execution_is_corrupt)
{
    TU_FILE_ONLY("copies a snapshot file");
    evs_snapshot in = snap_of("wf", "running", T0, T0), *out = NULL;
    char *a = tu_path(dir, "a", EVS__SNAP_NAME);
    char *b = tu_path(dir, "b", EVS__SNAP_NAME);
    size_t len;
    char *buf;

    cr_assert_eq(create_with("a", &in, 1), 0);
    cr_assert_eq(create_with("b", &in, 1), 0);
    buf = tu_read_file(a, &len);
    cr_assert_not_null(buf);
    cr_assert_eq(tu_write_file(b, buf, len), 0);
    cr_assert_eq(evs_snapshot_load(st, "b", 1, &out, NULL), EVS_ECORRUPT);
    cr_assert_null(out);
    free(buf);
    free(a);
    free(b);
}

Test(snapshot, is_replaced_by_rename_and_leaves_no_temporary_file)
{
    TU_FILE_ONLY("the rename of a snapshot file");
    evs_snapshot in = snap_of("wf", "running", T0, T0), *out = NULL;
    char *sp = tu_path(dir, "atom", EVS__SNAP_NAME);
    char *ep = spath("atom");
    struct stat a, b;
    char *orig, *held;
    size_t olen;
    ssize_t got;
    int fd;

    cr_assert_eq(create_with("atom", &in, 2), 0);
    orig = tu_read_file(sp, &olen);
    cr_assert_not_null(orig);
    /* Holding the first file open keeps its inode from being reused. */
    fd = open(sp, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fstat(fd, &a), 0);
    for (int i = 0; i < 5; i++) {
        in.status = evs_span_cstr(i % 2 ? "running" : "paused");
        in.last_event_seq = (uint64_t)(i % 3);
        cr_assert_eq(evs_snapshot_save(st, "atom", 4, &in), 0);
    }
    cr_assert_eq(stat(sp, &b), 0);
    cr_assert_neq(a.st_ino, b.st_ino,
                  "a new file, not one rewritten in "
                  "place");
    held = malloc(olen + 1);
    cr_assert_not_null(held);
    got = pread(fd, held, olen + 1, 0);
    cr_assert_eq(got, (ssize_t)olen);
    cr_assert_eq(memcmp(held, orig, olen), 0, "the old file is untouched");
    close(fd);
    cr_assert_eq(count_prefix(ep, ""), 2);
    cr_assert_eq(count_prefix(ep, EVS__TMP_PREFIX), 0);
    cr_assert_eq(evs_snapshot_load(st, "atom", 4, &out, NULL), 0);
    cr_assert(evs__span_eq_cstr(out->status, "paused"));
    cr_assert_eq(out->last_event_seq, 1);
    evs_snapshot_free(out);
    free(held);
    free(orig);
    free(sp);
    free(ep);
}

/* ------------------------------------------------------------------ */
/* Permissions                                                        */
/* ------------------------------------------------------------------ */

TestSuite(perms, .init = setup, .fini = teardown);

Test(perms, files_0600_and_directories_0700_under_umask_0)
{
    TU_FILE_ONLY("the modes of the files (test_sqlite checks the database file)");
    evs_snapshot in = snap_of("wf", "running", T0, T0);
    char *root = spath("u0");
    char *ep, *lp, *sp;
    evs_store *s2 = NULL;

    umask(0);
    cr_assert_eq(evs_store_open(tu_loc(root), NULL, &s2), 0);
    cr_assert_eq(perm_of(root), 0700);
    cr_assert_eq(tu_create(s2, "p"), 0);
    ep = tu_path(root, "p", "");
    lp = tu_path(root, "p", EVS__LOG_NAME);
    sp = tu_path(root, "p", EVS__SNAP_NAME);
    cr_assert_eq(perm_of(ep), 0700);
    cr_assert_eq(perm_of(lp), 0600);
    cr_assert_eq(perm_of(sp), 0600);
    cr_assert_eq(evs_snapshot_save(s2, "p", 1, &in), 0);
    cr_assert_eq(perm_of(sp), 0600, "a replaced snapshot too");
    evs_store_close(s2);
    free(ep);
    free(lp);
    free(sp);
    free(root);
}

/* ------------------------------------------------------------------ */
/* Failures part way                                                  */
/* ------------------------------------------------------------------ */

TestSuite(store_faults, .init = setup, .fini = teardown);

/* Makes the store use `f` from now on. */
static void reopen_with(fault_io *f)
{
    evs_store_close(st);
    fault_io_init(f);
    st = tu_open_store(dir, &f->io);
    cr_assert_not_null(st);
}

Test(store_faults, a_create_that_fails_anywhere_leaves_all_or_nothing)
{
    TU_FILE_ONLY("faults injected through evs_io");
    static fault_io f;
    evs_event ev[3];
    long n;

    for (int i = 0; i < 3; i++)
        ev[i] = tu_event(i ? "step_started" : "execution_started", "s", "{}");
    reopen_with(&f);
    for (n = 1;; n++) {
        evs_snapshot *sn = NULL;
        int rc;

        fault_io_arm(&f, FIO_MUTATING, n, -EIO, 0);
        rc = evs_exec_create(st, "c", 1, NULL, ev, 3);
        fault_io_disarm(&f);
        cr_assert_eq(count_prefix(dir, EVS__TMP_PREFIX), 0,
                     "call %ld: a temporary directory was left", n);
        if (rc == 0 && f.fired == 0)
            break; /* past the last call */
        /* A failed open of the existence check is harmless: the rename
         * that publishes the directory refuses to replace anything. */
        cr_assert(rc == 0 || rc == -EIO, "call %ld: %s", n, evs_err_name(rc));
        if (evs_exec_exists(st, "c", 1)) {
            /* After the rename only the store directory's fsync may
             * fail: then the execution is there, whole. */
            cr_assert_eq(tu_count_events(st, "c"), 3, "call %ld", n);
            cr_assert_eq(evs_snapshot_load(st, "c", 1, &sn, NULL), 0);
            cr_assert_eq(sn->last_event_seq, 3);
            evs_snapshot_free(sn);
            cr_assert_eq(evs_exec_delete(st, "c", 1), 0);
        } else {
            cr_assert_neq(rc, 0, "call %ld: created nothing", n);
        }
        cr_assert_eq(count_store(), 0, "call %ld", n);
    }
    cr_assert_geq(n, 6, "the loop went through every step");
    cr_assert_eq(tu_count_events(st, "c"), 3);
}

/* The syncs a call makes, counted by fault_io (armed never to fire). */
static long syncs_of_create(fault_io *f, const char *id, unsigned flags)
{
    evs_event ev = tu_event("execution_started", "s", "{}");
    long n;

    fault_io_arm(f, FIO_FSYNC | FIO_FDATASYNC, LONG_MAX, -EIO, 0);
    cr_assert_eq(evs_exec_create_flags(st, id, strlen(id), NULL, &ev, 1, flags),
                 0);
    n = f->calls;
    fault_io_disarm(f);
    return n;
}

static long syncs_of_save(fault_io *f, const char *id, unsigned flags)
{
    evs_snapshot sn;
    long n;

    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("completed");
    sn.last_event_seq = 1;
    fault_io_arm(f, FIO_FSYNC | FIO_FDATASYNC, LONG_MAX, -EIO, 0);
    cr_assert_eq(evs_snapshot_save_flags(st, id, strlen(id), &sn, flags), 0);
    n = f->calls;
    fault_io_disarm(f);
    return n;
}

Test(store_faults, a_snapshot_that_is_a_cache_is_written_without_syncs)
{
    TU_FILE_ONLY("counts fsyncs through evs_io");
    static fault_io f;
    evs_event ev = tu_event("execution_started", "s", "{}");
    evs_snapshot *sn = NULL;

    reopen_with(&f);
    /* The handle's first change registers it as a writer (a sync of its
     * own, once): make it before counting. */
    cr_assert_eq(evs_exec_create(st, "first", 5, NULL, &ev, 1), 0);
    /* Log, snapshot file, new directory (by the snapshot's write), store
     * directory; a cached snapshot drops its file's sync only. */
    cr_assert_eq(syncs_of_create(&f, "synced", 0), 4);
    cr_assert_eq(syncs_of_create(&f, "cached", EVS_SNAPSHOT_CACHE), 3);
    cr_assert_eq(syncs_of_save(&f, "synced", 0), 2);
    cr_assert_eq(syncs_of_save(&f, "cached", EVS_SNAPSHOT_CACHE), 0);
    /* Either way what was written reads back. */
    cr_assert_eq(evs_snapshot_load(st, "cached", 6, &sn, NULL), 0);
    cr_assert_eq(sn->last_event_seq, 1);
    cr_assert(evs__span_eq_cstr(sn->status, "completed"));
    evs_snapshot_free(sn);
    /* A cache needs events to be a cache of; unknown flags are refused. */
    cr_assert_eq(evs_exec_create_flags(st, "none", 4, NULL, NULL, 0,
                                       EVS_SNAPSHOT_CACHE),
                 -EINVAL);
    cr_assert_eq(evs_exec_create_flags(st, "bad", 3, NULL, &ev, 1, 1u << 7),
                 -EINVAL);
    cr_assert_eq(evs_exec_exists(st, "none", 4), 0);
    cr_assert_eq(evs_exec_exists(st, "bad", 3), 0);
}

Test(store_faults, a_delete_that_fails_anywhere_leaves_all_or_nothing)
{
    TU_FILE_ONLY("faults injected through evs_io");
    static fault_io f;
    long n;
    int gone = 0;

    reopen_with(&f);
    for (n = 1; !gone; n++) {
        int rc;

        if (!evs_exec_exists(st, "d", 1))
            cr_assert_eq(tu_create(st, "d"), 0);
        fault_io_arm(&f, FIO_MUTATING, n, -EIO, 0);
        rc = evs_exec_delete(st, "d", 1);
        fault_io_disarm(&f);
        if (rc == 0 && f.fired == 0)
            gone = 1;
        if (evs_exec_exists(st, "d", 1))
            cr_assert_eq(tu_count_events(st, "d"), 1, "call %ld", n);
        else
            cr_assert_eq(count_prefix(dir, "d"), 0);
        /* Whatever an interrupted delete left, cleanup removes. */
        cr_assert_eq(evs_exec_cleanup(st, 0, NULL), 0);
        cr_assert_eq(count_prefix(dir, EVS__TRASH_PREFIX), 0, "call %ld", n);
    }
    cr_assert_geq(n, 3);
    cr_assert_eq(count_store(), 0);
}

Test(store_faults, a_snapshot_save_that_fails_anywhere_keeps_old_or_new)
{
    TU_FILE_ONLY("faults injected through evs_io");
    static fault_io f;
    evs_snapshot in = snap_of("wf", "running", T0, T0);
    char *ep = spath("s");
    long n;

    cr_assert_eq(create_with("s", &in, 2), 0);
    reopen_with(&f);
    in.status = evs_span_cstr("completed");
    in.last_event_seq = 2;
    for (n = 1;; n++) {
        evs_snapshot *out = NULL;
        int rc;

        fault_io_arm(&f, FIO_MUTATING, n, -EIO, 0);
        rc = evs_snapshot_save(st, "s", 1, &in);
        fault_io_disarm(&f);
        cr_assert_eq(count_prefix(ep, EVS__TMP_PREFIX), 0, "call %ld", n);
        cr_assert_eq(evs_snapshot_load(st, "s", 1, &out, NULL), 0, "call %ld",
                     n);
        if (rc == 0 && f.fired == 0) {
            cr_assert(evs__span_eq_cstr(out->status, "completed"));
            evs_snapshot_free(out);
            break;
        }
        /* A fault in the listing index's update (best effort, after the
         * save is complete) leaves a successful save. */
        cr_assert(rc == -EIO ||
                      (rc == 0 && evs__span_eq_cstr(out->status, "completed")),
                  "call %ld: %s", n, evs_err_name(rc));
        cr_assert(evs__span_eq_cstr(out->status, "running") ||
                  evs__span_eq_cstr(out->status, "completed"));
        if (evs__span_eq_cstr(out->status, "completed")) {
            /* Put the old one back for the next round. */
            evs_snapshot old = snap_of("wf", "running", T0, T0);
            cr_assert_eq(evs_snapshot_save(st, "s", 1, &old), 0);
        }
        evs_snapshot_free(out);
    }
    cr_assert_geq(n, 4);
    free(ep);
}

Test(snapshot, save_without_created_at_keeps_the_creation_time)
{
    evs_snapshot in = snap_of("wf", "running", T0, T0), *out = NULL;

    cr_assert_eq(create_with("keep", &in, 2), 0);
    in.created_at_us = 0;
    in.updated_at_us = 0;
    in.status = evs_span_cstr("completed");
    in.last_event_seq = 2;
    cr_assert_eq(evs_snapshot_save(st, "keep", 4, &in), 0);
    cr_assert_eq(evs_snapshot_load(st, "keep", 4, &out, NULL), 0);
    cr_assert_eq(out->created_at_us, T0);
    cr_assert_gt(out->updated_at_us, T0, "updated_at is set to now");
    cr_assert(evs__span_eq_cstr(out->status, "completed"));
    evs_snapshot_free(out);
}

/* ------------------------------------------------------------------ */
/* The listing index                                                  */
/* ------------------------------------------------------------------ */

TestSuite(listing_index, .init = setup, .fini = teardown);

/* Opens made by one listing, counted through the fault-injecting I/O
 * (armed at a call that never comes). */
static long opens_in_listing(fault_io *f, const evs_list_filter *flt,
                             evs_exec_listing *out)
{
    fault_io_arm(f, FIO_OPEN, 1L << 40, -EIO, 0);
    cr_assert_eq(evs_exec_list(st, flt, out), 0);
    fault_io_disarm(f);
    return f->calls;
}

static void make_execs(int n)
{
    char id[16];

    for (int i = 0; i < n; i++) {
        evs_snapshot sn = snap_of(i % 3 ? "wf" : "other",
                                  i % 4 ? "running" : "failed", T0 + i, T0 + i);
        snprintf(id, sizeof(id), "e%03d", i);
        cr_assert_eq(create_with(id, &sn, 1), 0);
    }
}

Test(listing_index, a_listing_reads_the_index_not_every_snapshot)
{
    TU_FILE_ONLY("the file store listing index");
    static fault_io f;
    evs_exec_listing l;
    evs_list_filter flt;
    long opens;

    make_execs(40);
    reopen_with(&f);
    memset(&flt, 0, sizeof(flt));
    flt.status = evs_span_cstr("failed");
    opens = opens_in_listing(&f, &flt, &l);
    cr_assert_eq(l.total, 10);
    /* The index, the writers' markers' directory and the one marker
     * there (this handle's): none per execution. */
    cr_assert_leq(opens, 3, "%ld opens for 40 executions", opens);
    evs_exec_list_free(&l);
}

Test(listing_index, a_missing_index_is_rebuilt_and_the_listing_stays_right)
{
    TU_FILE_ONLY("the file store listing index");
    static fault_io f;
    evs_exec_listing l;
    long opens;
    char *idx = spath(".index");

    make_execs(20);
    cr_assert_eq(unlink(idx), 0);
    free(idx);
    reopen_with(&f);
    opens = opens_in_listing(&f, NULL, &l);
    cr_assert_eq(l.total, 20);
    cr_assert_geq(opens, 40, "without an index every snapshot is read");
    evs_exec_list_free(&l);
    opens = opens_in_listing(&f, NULL, &l);
    cr_assert_eq(l.total, 20);
    cr_assert_leq(opens, 2, "the first listing rebuilt the index");
    evs_exec_list_free(&l);
}

Test(listing_index, a_snapshot_changed_behind_its_back_is_read_itself)
{
    TU_FILE_ONLY("the file store listing index");
    evs_exec_listing l;
    evs_list_filter flt;
    evs_snapshot sn = snap_of("wf", "completed", T0, T0 + 5), *got;
    char *idx = spath(".index"), *saved;
    size_t len;

    make_execs(8);
    /* Save a new status, then put the index back as it was: the index
     * now says "running" for e001 while its snapshot says "completed". */
    saved = tu_read_file(idx, &len);
    cr_assert_not_null(saved);
    sn.last_event_seq = 1;
    cr_assert_eq(evs_snapshot_save(st, "e001", 4, &sn), 0);
    cr_assert_eq(tu_write_file(idx, saved, len), 0);
    memset(&flt, 0, sizeof(flt));
    flt.status = evs_span_cstr("completed");
    cr_assert_eq(evs_exec_list(st, &flt, &l), 0);
    cr_assert_eq(l.count, 1);
    cr_assert(evs__span_eq_cstr(l.items[0].id, "e001"));
    evs_exec_list_free(&l);
    cr_assert_eq(evs_snapshot_load(st, "e001", 4, &got, NULL), 0);
    cr_assert(evs__span_eq_cstr(got->status, "completed"));
    evs_snapshot_free(got);
    free(saved);
    free(idx);
}

/* Calls of the kinds in `mask` made by one listing. */
static long calls_in_listing(fault_io *f, unsigned mask,
                             const evs_list_filter *flt, evs_exec_listing *out)
{
    fault_io_arm(f, mask, 1L << 40, -EIO, 0);
    cr_assert_eq(evs_exec_list(st, flt, out), 0);
    fault_io_disarm(f);
    return f->calls;
}

/* Markers in STORE/.writers (FORMAT.md §12). */
static int markers(void)
{
    char *w = spath(".writers");
    int n = tu_count_entries(w);

    free(w);
    return n;
}

Test(listing_index, a_trusted_index_is_the_listing_without_a_look_at_the_store)
{
    TU_FILE_ONLY("the file store listing index");
    static fault_io f;
    evs_exec_listing l;

    make_execs(30);
    reopen_with(&f);
    /* Rebuilt once (the store was not made by the library, so its
     * index was never complete), then believed. */
    cr_assert_geq(calls_in_listing(&f, FIO_STAT, NULL, &l), 30);
    evs_exec_list_free(&l);
    /* The index's own: a stat of its name and one of the file the
     * handle kept open; none per execution. */
    cr_assert_leq(calls_in_listing(&f, FIO_STAT, NULL, &l), 2,
                  "no stat of any execution");
    cr_assert_eq(l.total, 30);
    for (size_t i = 0; i < l.count; i++)
        cr_assert(l.items[i].snapshot_ok);
    evs_exec_list_free(&l);
    /* A change made since is in it: a delete and a new status. */
    {
        evs_snapshot sn = snap_of("wf", "completed", T0 + 7, T0 + 100);
        evs_list_filter flt;
        sn.last_event_seq = 1;
        cr_assert_eq(evs_snapshot_save(st, "e007", 4, &sn), 0);
        cr_assert_eq(evs_exec_delete(st, "e008", 4), 0);
        memset(&flt, 0, sizeof(flt));
        flt.status = evs_span_cstr("completed");
        cr_assert_leq(calls_in_listing(&f, FIO_STAT, &flt, &l), 2);
        cr_assert_eq(l.total, 1);
        cr_assert(evs__span_eq_cstr(l.items[0].id, "e007"));
        evs_exec_list_free(&l);
        cr_assert_leq(calls_in_listing(&f, FIO_STAT, NULL, &l), 2);
        cr_assert_eq(l.total, 29);
        evs_exec_list_free(&l);
    }
}

Test(listing_index, a_writer_that_died_makes_the_listing_read_the_store)
{
    TU_FILE_ONLY("the file store listing index and writers' markers");
    char *idx = spath(".index"), *saved;
    evs_exec_listing l;
    evs_list_filter flt;
    size_t len;
    pid_t pid;
    int status, found = 0;

    make_execs(6);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0); /* complete now */
    evs_exec_list_free(&l);
    saved = tu_read_file(idx, &len);
    cr_assert_not_null(saved);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* Another process creates one and dies without closing; then
         * its line is taken out, as if it had died between the two. */
        evs_store *o = tu_open_store(dir, NULL);
        evs_snapshot sn = snap_of("wf", "failed", T0 + 50, T0 + 50);
        evs_event ev = tu_event("execution_started", "s", "{}");
        _exit(o && evs_exec_create(o, "late", 4, &sn, &ev, 1) == 0 ? 0 : 1);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(tu_write_file(idx, saved, len), 0);
    cr_assert_eq(markers(), 2, "this handle's and the dead one's");
    memset(&flt, 0, sizeof(flt));
    flt.status = evs_span_cstr("failed");
    cr_assert_eq(evs_exec_list(st, &flt, &l), 0);
    for (size_t i = 0; i < l.count; i++)
        found += evs__span_eq_cstr(l.items[i].id, "late");
    cr_assert_eq(found, 1, "the dead writer's change is listed");
    cr_assert_eq(l.count, 3, "e000, e004 and late");
    evs_exec_list_free(&l);
    cr_assert_eq(markers(), 1, "the dead marker is gone, ours stays");
    /* The rebuilt index has it, and is trusted again. */
    cr_assert_eq(evs_exec_list(st, &flt, &l), 0);
    cr_assert_eq(l.count, 3);
    evs_exec_list_free(&l);
    free(saved);
    free(idx);
}

Test(listing_index, a_change_the_index_was_not_told_of_is_found_on_disk)
{
    TU_FILE_ONLY("the file store listing index");
    static fault_io f;
    evs_snapshot sn = snap_of("wf", "completed", T0 + 3, T0 + 100);
    evs_exec_listing l;
    evs_list_filter flt;

    make_execs(5);
    reopen_with(&f);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0); /* complete now */
    evs_exec_list_free(&l);
    /* The second write of the save is the index's line: it fails after
     * the snapshot is in place, and the save still succeeds. */
    sn.last_event_seq = 1;
    fault_io_arm(&f, FIO_WRITE, 2, -EIO, 0);
    cr_assert_eq(evs_snapshot_save(st, "e003", 4, &sn), 0);
    cr_assert_eq(f.fired, 1);
    fault_io_disarm(&f);
    cr_assert_eq(markers(), 1, "the handle's marker, given up");
    memset(&flt, 0, sizeof(flt));
    flt.status = evs_span_cstr("completed");
    cr_assert_eq(evs_exec_list(st, &flt, &l), 0);
    cr_assert_eq(l.count, 1);
    cr_assert(evs__span_eq_cstr(l.items[0].id, "e003"));
    evs_exec_list_free(&l);
    cr_assert_eq(markers(), 0, "buried once the index was rebuilt");
}

Test(listing_index, a_change_by_a_handle_that_cannot_register_is_refused)
{
    TU_FILE_ONLY("the file store's writers' markers");
    static fault_io f;
    evs_event ev = tu_event("execution_started", "s", "{}");
    char *w = spath(".writers");

    reopen_with(&f);
    /* The first rename of a handle's first change is its marker's: if
     * it fails, the change is not made, and nothing is left. */
    fault_io_arm(&f, FIO_RENAME, 1, -EIO, 0);
    cr_assert_eq(evs_exec_create(st, "r", 1, NULL, &ev, 1), -EIO);
    fault_io_disarm(&f);
    cr_assert_eq(f.fired, 1);
    cr_assert_not(evs_exec_exists(st, "r", 1));
    cr_assert_eq(tu_count_entries(w), 0, "no marker, no temporary one");
    /* The next change registers and is made. */
    cr_assert_eq(evs_exec_create(st, "r", 1, NULL, &ev, 1), 0);
    cr_assert_eq(markers(), 1);
    free(w);
}

Test(listing_index, torn_and_damaged_index_lines_are_ignored)
{
    TU_FILE_ONLY("the file store listing index");
    evs_exec_listing l;
    char *idx = spath(".index");
    long long size;

    make_execs(12);
    size = tu_file_size(idx);
    cr_assert_gt(size, 100);
    cr_assert_eq(tu_flip_bit(idx, size / 2, 3), 0);
    cr_assert_eq(tu_truncate(idx, size - 40), 0);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
    cr_assert_eq(l.total, 12);
    for (size_t i = 0; i < l.count; i++)
        cr_assert(l.items[i].snapshot_ok);
    evs_exec_list_free(&l);
    free(idx);
}

/* The ids of a listing's items, one string "id,id,...". */
static void ids_of(const evs_exec_listing *l, char *buf, size_t cap)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < l->count; i++) {
        int k = snprintf(buf + n, cap - n, "%.*s,", (int)l->items[i].id.len,
                         l->items[i].id.ptr);
        cr_assert(k > 0 && (size_t)k < cap - n);
        n += (size_t)k;
    }
}

Test(listing_index, a_handle_reads_only_what_was_appended_since_its_last_listing)
{
    TU_FILE_ONLY("the file store listing index");
    static fault_io f;
    evs_exec_listing l;
    evs_list_filter flt;
    evs_store *other;
    long long before, size;
    char *idx = spath(".index");

    make_execs(30);
    reopen_with(&f);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0); /* rebuilds it */
    evs_exec_list_free(&l);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0); /* reads it whole */
    evs_exec_list_free(&l);
    size = tu_file_size(idx);
    /* Nothing appended since: nothing read. */
    before = f.read_bytes;
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
    cr_assert_eq(f.read_bytes, before, "the index was read again");
    cr_assert_eq(l.total, 30);
    evs_exec_list_free(&l);
    /* Another handle changes three executions: only their lines are
     * read, and the listing shows each change. */
    other = tu_open_store(dir, NULL);
    cr_assert_not_null(other);
    {
        evs_snapshot sn = snap_of("wf", "completed", T0 + 5, T0 + 99);
        evs_event ev = tu_event("execution_started", "s", "{}");
        evs_snapshot nw = snap_of("wf", "completed", T0 - 1, T0 - 1);
        sn.last_event_seq = 1;
        cr_assert_eq(evs_snapshot_save(other, "e005", 4, &sn), 0);
        cr_assert_eq(evs_exec_delete(other, "e006", 4), 0);
        cr_assert_eq(evs_exec_create(other, "new", 3, &nw, &ev, 1), 0);
    }
    memset(&flt, 0, sizeof(flt));
    flt.status = evs_span_cstr("completed");
    before = f.read_bytes;
    cr_assert_eq(evs_exec_list(st, &flt, &l), 0);
    cr_assert_gt(f.read_bytes, before);
    cr_assert_eq(f.read_bytes - before, tu_file_size(idx) - size,
                 "read %lld bytes for %lld appended",
                 f.read_bytes - before, tu_file_size(idx) - size);
    cr_assert_eq(l.total, 2);
    cr_assert(evs__span_eq_cstr(l.items[0].id, "new"), "created earliest");
    cr_assert(evs__span_eq_cstr(l.items[1].id, "e005"));
    evs_exec_list_free(&l);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
    cr_assert_eq(l.total, 30, "one deleted, one created");
    for (size_t i = 0; i < l.count; i++)
        cr_assert(!evs__span_eq_cstr(l.items[i].id, "e006"));
    evs_exec_list_free(&l);
    evs_store_close(other);
    free(idx);
}

Test(listing_index, an_index_rewritten_by_another_handle_is_read_anew)
{
    TU_FILE_ONLY("the file store listing index");
    evs_exec_listing l;
    evs_store *other;
    evs_list_filter flt;
    char *idx = spath(".index");
    struct stat a, b;

    make_execs(12);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0); /* rebuilds it */
    evs_exec_list_free(&l);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0); /* keeps it */
    evs_exec_list_free(&l);
    cr_assert_eq(stat(idx, &a), 0);
    /* Another handle finds the index gone, rebuilds it (a new file),
     * then changes a status: the first handle's next listing must read
     * the new file, not the one it kept. */
    cr_assert_eq(unlink(idx), 0);
    other = tu_open_store(dir, NULL);
    cr_assert_not_null(other);
    cr_assert_eq(evs_exec_list(other, NULL, &l), 0);
    evs_exec_list_free(&l);
    /* The kept file is open, so its inode number is not the new one's
     * (a freed one is soon reused: the reason it is kept open). */
    cr_assert_eq(stat(idx, &b), 0);
    cr_assert_neq(a.st_ino, b.st_ino);
    {
        evs_snapshot sn = snap_of("wf", "terminated", T0 + 3, T0 + 50);
        sn.last_event_seq = 1;
        cr_assert_eq(evs_snapshot_save(other, "e003", 4, &sn), 0);
    }
    memset(&flt, 0, sizeof(flt));
    flt.status = evs_span_cstr("terminated");
    cr_assert_eq(evs_exec_list(st, &flt, &l), 0);
    cr_assert_eq(l.total, 1);
    cr_assert(evs__span_eq_cstr(l.items[0].id, "e003"));
    evs_exec_list_free(&l);
    evs_store_close(other);
    free(idx);
}

Test(listing_index, a_damaged_line_appended_after_a_listing_is_not_believed)
{
    TU_FILE_ONLY("the file store listing index");
    static fault_io f;
    evs_exec_listing l;
    evs_list_filter flt;
    char *idx = spath(".index");
    const char junk[] = "{\"v\":1,\"kind\":\"index-gone\",\"id\":\"e001\","
                        "\"crc\":\"0000000000000000\"}\n";
    int fd;

    make_execs(10);
    reopen_with(&f);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0);
    evs_exec_list_free(&l);
    cr_assert_eq(evs_exec_list(st, NULL, &l), 0); /* kept now */
    evs_exec_list_free(&l);
    /* A line whose checksum is wrong says e001 is gone: it must not be
     * taken, and the listing must look at the store instead. */
    fd = open(idx, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
    close(fd);
    memset(&flt, 0, sizeof(flt));
    cr_assert_geq(calls_in_listing(&f, FIO_STAT, &flt, &l), 10,
                  "the store was not read");
    cr_assert_eq(l.total, 10);
    evs_exec_list_free(&l);
    free(idx);
}

Test(listing_index, every_page_is_the_same_rows_as_the_whole_listing)
{
    evs_exec_listing all, page;
    evs_list_filter flt;
    char id[16], want[2048], got[2048];

    /* Many executions created at the same instant: ties go by id. */
    for (int i = 0; i < 60; i++) {
        evs_snapshot sn = snap_of(i % 2 ? "wf" : "other",
                                  i % 3 ? "running" : "failed",
                                  T0 + (i * 7) % 11, T0);
        snprintf(id, sizeof(id), "p%02d", (i * 37) % 60);
        cr_assert_eq(create_with(id, &sn, 1), 0);
    }
    for (int filtered = 0; filtered < 2; filtered++) {
        memset(&flt, 0, sizeof(flt));
        if (filtered)
            flt.status = evs_span_cstr("running");
        cr_assert_eq(evs_exec_list(st, &flt, &all), 0);
        for (size_t off = 0; off <= all.total + 1; off += 3) {
            for (size_t lim = 1; lim <= 25; lim += 4) {
                evs_exec_listing sl = all;
                flt.offset = off;
                flt.limit = lim;
                cr_assert_eq(evs_exec_list(st, &flt, &page), 0);
                cr_assert_eq(page.total, all.total);
                sl.items = all.items + (off < all.count ? off : all.count);
                sl.count = off < all.count ? all.count - off : 0;
                if (sl.count > lim)
                    sl.count = lim;
                ids_of(&sl, want, sizeof(want));
                ids_of(&page, got, sizeof(got));
                cr_assert_str_eq(got, want, "offset %zu limit %zu", off, lim);
                evs_exec_list_free(&page);
            }
        }
        flt.offset = 0;
        flt.limit = 0;
        evs_exec_list_free(&all);
    }
}

Test(listing_index, long_names_that_share_their_first_bytes_are_told_apart)
{
    static const char *wf[] = {"a-workflow-with-a-long-name-1",
                               "a-workflow-with-a-long-name-2", "a-workflow",
                               "a-workflow-"};
    static const char *stv[] = {"waiting-for-a-long-time-1",
                                "waiting-for-a-long-time-2"};
    evs_exec_listing l;
    evs_list_filter flt;
    char id[16];

    for (int i = 0; i < 24; i++) {
        evs_snapshot sn = snap_of(wf[i % 4], stv[i % 2], T0 + i, T0 + i);
        snprintf(id, sizeof(id), "n%02d", i);
        cr_assert_eq(create_with(id, &sn, 1), 0);
    }
    /* Twice: the second listing reads the index it kept. */
    for (int pass = 0; pass < 2; pass++) {
        for (int w = 0; w < 4; w++) {
            for (int s = 0; s < 2; s++) {
                memset(&flt, 0, sizeof(flt));
                flt.workflow_name = evs_span_cstr(wf[w]);
                flt.status = evs_span_cstr(stv[s]);
                cr_assert_eq(evs_exec_list(st, &flt, &l), 0);
                /* i % 4 == w and i % 2 == s: 6 when w and s agree in
                 * parity, else none. */
                cr_assert_eq(l.total, w % 2 == s ? 6u : 0u,
                             "%s / %s: %zu", wf[w], stv[s], l.total);
                for (size_t k = 0; k < l.count; k++) {
                    cr_assert(evs__span_eq_cstr(l.items[k].workflow_name,
                                                wf[w]));
                    cr_assert(evs__span_eq_cstr(l.items[k].status, stv[s]));
                }
                evs_exec_list_free(&l);
            }
        }
    }
}
