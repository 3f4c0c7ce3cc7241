/*
 * test_archive_crash.c: archive-then-delete (evs_archive_exec with
 * delete_after, include/evstore/archive.h) interrupted at every point,
 * by a simulated power loss and by real kills (tests/RELIABILITY.md,
 * section 7). Whatever the crash leaves, every execution is still in
 * the store with all its bytes, or in a bundle under its final name
 * that verifies and holds exactly those bytes; a file under a bundle's
 * final name always verifies; and archiving again finishes the job.
 *
 * Environment: EVS_ARCHIVE_KILLS sets the number of killed runs
 * (default 40), EVS_POWERLOSS_TMP where images and stores go (default
 * /dev/shm).
 */
#include <criterion/criterion.h>

#include "powerloss_io.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NEXEC 3

/* Execution `id`, ended: started, a batch of three, a single event,
 * completed, and a snapshot. */
static void make_ended(evs_store *s, const char *id)
{
    evs_event e[3];
    evs_snapshot sn;
    evs_log *l = NULL;

    e[0] = tu_event(EVS_EV_EXECUTION_STARTED, "",
                    "{\"workflow_name\":\"wf\",\"inputs\":{}}");
    cr_assert_eq(evs_exec_create(s, id, strlen(id), NULL, e, 1), 0);
    cr_assert_eq(evs_log_open(s, id, strlen(id), EVS_LOG_WRITE, &l, NULL,
                              NULL),
                 0);
    for (int i = 0; i < 3; i++)
        e[i] = tu_event(EVS_EV_STEP_STARTED, "s", "{\"attempt\":1}");
    cr_assert_eq(evs_log_append(l, e, 3, 1, NULL), 0);
    e[0] = tu_event(EVS_EV_STEP_COMPLETED, "s", "{\"output\":[1,2,3]}");
    cr_assert_eq(evs_log_append(l, e, 1, 4, NULL), 0);
    e[0] = tu_event(EVS_EV_EXECUTION_COMPLETED, "", "{\"outputs\":{}}");
    cr_assert_eq(evs_log_append(l, e, 1, 5, NULL), 0);
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("completed");
    sn.last_event_seq = 6;
    cr_assert_eq(evs_snapshot_save(s, id, strlen(id), &sn), 0);
    evs_log_close(l);
}

typedef struct original {
    char id[16];
    char *log;
    size_t len;
} original;

static void remember(const char *dir, original *o, const char *id)
{
    char *p = tu_path(dir, id, "events.jsonl");

    snprintf(o->id, sizeof(o->id), "%s", id);
    o->log = tu_read_file(p, &o->len);
    cr_assert_not_null(o->log);
    free(p);
}

typedef struct verdict {
    size_t in_store, in_bundle, both;
} verdict;

/*
 * The invariant, on store `s` at `dir` whose bundles go to `bdir`: each
 * execution is in the store whole, or in a verified bundle holding its
 * log; a file under a bundle's name verifies. Then archiving again
 * (with delete) leaves every execution in its bundle and none in the
 * store. `where` names the case in failures.
 */
static void check(evs_store *s, const char *dir, const char *bdir,
                  const original *orig, size_t n, verdict *v, const char *where)
{
    evs_archive_opts o;
    evs_error_info ei;

    evs_archive_opts_init(&o);
    o.delete_after = 1;
    for (size_t i = 0; i < n; i++) {
        char name[400], *bp, *lp, *log;
        size_t len;
        evs_bundle *b = NULL;
        int in_store, in_bundle, rc;

        snprintf(name, sizeof(name), "%s.evb", orig[i].id);
        bp = tu_join(bdir, name);
        in_store = evs_exec_exists(s, orig[i].id, strlen(orig[i].id));
        if (in_store) {
            lp = tu_path(dir, orig[i].id, "events.jsonl");
            log = tu_read_file(lp, &len);
            cr_assert(log && len == orig[i].len &&
                          memcmp(log, orig[i].log, len) == 0,
                      "%s: %s: the log in the store changed", where,
                      orig[i].id);
            free(log);
            free(lp);
        }
        rc = evs_bundle_open(bp, NULL, &b, &ei);
        in_bundle = rc == 0;
        cr_assert(rc == 0 || rc == -ENOENT,
                  "%s: %s: a file under the bundle's name that does not "
                  "verify: %s",
                  where, orig[i].id, ei.msg);
        if (in_bundle)
            cr_assert(evs_bundle_log(b).len == orig[i].len &&
                          memcmp(evs_bundle_log(b).ptr, orig[i].log,
                                 orig[i].len) == 0,
                      "%s: %s: the bundle holds another log", where,
                      orig[i].id);
        evs_bundle_close(b);
        cr_assert(in_store || in_bundle, "%s: %s is lost: neither in the "
                  "store nor in a bundle", where, orig[i].id);
        v->in_store += in_store && !in_bundle;
        v->in_bundle += in_bundle && !in_store;
        v->both += in_store && in_bundle;
        if (in_store) {
            rc = evs_archive_exec(s, orig[i].id, bdir, &o, NULL, &ei);
            cr_assert_eq(rc, 0, "%s: %s: archiving again: %s", where,
                         orig[i].id, ei.msg);
            cr_assert_eq(evs_bundle_verify(bp, NULL, NULL), 0);
            cr_assert_not(evs_exec_exists(s, orig[i].id, strlen(orig[i].id)));
        }
        free(bp);
    }
}

/* ------------------------------------------------------------------ */
/* Power loss                                                         */
/* ------------------------------------------------------------------ */

static void try_image(const pl_crash *c, const pl_choice *ch, const char *kind,
                      size_t k, const original *orig, verdict *v,
                      size_t *images)
{
    evs_store_opts so;
    evs_store *s = NULL;
    pl_image *im = NULL;
    char *dir, *bdir, where[96];

    cr_assert_eq(pl_image_make(c, ch, &im), 0);
    dir = tu_scratch_dir("EVS_POWERLOSS_TMP", "arimg");
    cr_assert_eq(pl_image_write(im, dir), 0);
    bdir = tu_join(dir, ".bundles");
    mkdir(bdir, 0700); /* made before the crash points checked */
    evs_store_opts_init(&so);
    so.io = pl_image_io(im);
    so.create = 0;
    cr_assert_eq(evs_store_open(dir, &so, &s), 0);
    snprintf(where, sizeof(where), "crash after op %zu (%s)", k, kind);
    check(s, dir, bdir, orig, NEXEC, v, where);
    evs_store_close(s);
    pl_image_free(im);
    free(bdir);
    tu_rmtree_free(dir);
    ++*images;
}

Test(archive_crash, power_loss_at_any_point_loses_no_execution)
{
    static const int contents[] = {PL_FILL_ZEROS, PL_FILL_GARBAGE,
                                   PL_TAIL_ZEROS, PL_TAIL_GARBAGE};
    char *root = tu_scratch_dir("EVS_POWERLOSS_TMP", "arrec"), *bdir;
    original orig[NEXEC];
    evs_archive_opts o;
    evs_store_opts so;
    evs_error_info ei;
    evs_store *s = NULL;
    const evs_io *io;
    verdict v = {0, 0, 0};
    size_t k0, kn, images = 0;
    pl_rec *rec;
    int fd;

    rec = pl_rec_new(root);
    cr_assert_not_null(rec);
    bdir = tu_join(root, ".bundles");
    pl_rec_alias(rec, bdir, ".bundles");
    io = pl_rec_io(rec);
    evs_store_opts_init(&so);
    so.io = io;
    cr_assert_eq(evs_store_open(root, &so, &s), 0);
    for (int i = 0; i < NEXEC; i++) {
        char id[8];
        snprintf(id, sizeof(id), "x%d", i);
        make_ended(s, id);
        remember(root, &orig[i], id);
    }
    cr_assert_eq(io->mkdirat(io->ctx, AT_FDCWD, bdir, 0700), 0);
    cr_assert_eq(io->openat(io->ctx, AT_FDCWD, root, O_RDONLY | O_DIRECTORY,
                            0, &fd),
                 0);
    cr_assert_eq(io->fsync(io->ctx, fd), 0);
    io->close(io->ctx, fd);
    /* From here on every execution is durable: none may be lost. */
    k0 = pl_rec_nops(rec);
    evs_archive_opts_init(&o);
    o.delete_after = 1;
    for (int i = 0; i < NEXEC; i++)
        cr_assert_eq(evs_archive_exec(s, orig[i].id, bdir, &o, NULL, &ei), 0,
                     "%s", ei.msg);
    kn = pl_rec_nops(rec);
    cr_assert_not(pl_rec_failed(rec), "%s", pl_rec_error(rec));
    evs_store_close(s);

    for (size_t k = k0; k <= kn; k++) {
        pl_crash *c = pl_crash_at(rec, k);
        size_t np = pl_crash_npending(c);
        unsigned char *inc = calloc(np + 1, 1);
        pl_choice ch = {inc, PL_WHOLE, 0, 0};

        cr_assert(c && inc);
        try_image(c, &ch, "durable", k, orig, &v, &images);
        for (size_t j = 1; j <= np; j++) {
            for (size_t i = 0; i < np; i++)
                inc[i] = i < j;
            try_image(c, &ch, "prefix", k, orig, &v, &images);
        }
        ch.include = NULL;
        ch.contents = PL_BLOCKS;
        ch.block = 512;
        ch.seed = k;
        try_image(c, &ch, "blocks-512", k, orig, &v, &images);
        for (size_t i = 0; i < sizeof(contents) / sizeof(contents[0]); i++) {
            ch.contents = contents[i];
            try_image(c, &ch, "fill", k, orig, &v, &images);
        }
        free(inc);
        pl_crash_free(c);
    }
    fprintf(stderr,
            "archive power loss: %zu operations of archive-then-delete, %zu "
            "images; executions found in the store only: %zu, in a bundle "
            "only: %zu, in both: %zu, lost: 0\n",
            kn - k0, images, v.in_store, v.in_bundle, v.both);
    /* Every outcome was met: before the bundle, between, after. */
    cr_assert(v.in_store > 0 && v.in_bundle > 0 && v.both > 0);
    for (int i = 0; i < NEXEC; i++)
        free(orig[i].log);
    pl_rec_free(rec);
    free(bdir);
    tu_rmtree_free(root);
}

/* ------------------------------------------------------------------ */
/* Real kills                                                         */
/* ------------------------------------------------------------------ */

#define KILL_EXECS 12

Test(archive_crash, a_killed_archive_loses_no_execution)
{
    long runs = tu_env_long("EVS_ARCHIVE_KILLS", 40);
    uint64_t seed = tu_seed("EVS_ARCHIVE_SEED", "archive kills");
    verdict v = {0, 0, 0};

    for (long r = 0; r < runs; r++) {
        char *dir = tu_scratch_dir("EVS_POWERLOSS_TMP", "arkill");
        char *bdir = tu_join(dir, ".bundles");
        original orig[KILL_EXECS];
        evs_store *s = tu_open_store(dir, NULL);
        struct timespec ts;
        char where[64];
        pid_t pid;
        int st;

        cr_assert_not_null(s);
        cr_assert_eq(mkdir(bdir, 0700), 0);
        for (int i = 0; i < KILL_EXECS; i++) {
            char id[8];
            snprintf(id, sizeof(id), "k%d", i);
            make_ended(s, id);
            remember(dir, &orig[i], id);
        }
        evs_store_close(s);
        pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            evs_archive_opts o;
            evs_store *cs = tu_open_store(dir, NULL);

            evs_archive_opts_init(&o);
            o.delete_after = 1;
            for (int i = 0; cs && i < KILL_EXECS; i++)
                evs_archive_exec(cs, orig[i].id, bdir, &o, NULL, NULL);
            _exit(0);
        }
        /* Somewhere from before the first archive to after the last. */
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)((seed >> 33) % 40000) * 1000;
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        s = tu_open_store(dir, NULL);
        cr_assert_not_null(s);
        snprintf(where, sizeof(where), "kill %ld", r);
        check(s, dir, bdir, orig, KILL_EXECS, &v, where);
        evs_store_close(s);
        for (int i = 0; i < KILL_EXECS; i++)
            free(orig[i].log);
        free(bdir);
        tu_rmtree_free(dir);
    }
    fprintf(stderr,
            "archive kills: %ld runs of %d executions; found in the store "
            "only: %zu, in a bundle only: %zu, in both: %zu, lost: 0\n",
            runs, KILL_EXECS, v.in_store, v.in_bundle, v.both);
    cr_assert_gt(v.in_store + v.in_bundle + v.both, 0);
}
