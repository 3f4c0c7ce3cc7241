/*
 * scen_archive.c: archival (include/evstore/archive.h) beside the zstd
 * command.
 *
 *  ARCH  archive and restore throughput in MB/s of log, and the
 *        compression ratio. evstore archives every execution of a set of
 *        ended executions to its own bundle (evs_archive_exec: read under
 *        the lock, every line checked, compressed, written, fsynced,
 *        renamed, read back and compared) and restores each into a fresh
 *        store (evs_archive_restore: the bundle checked whole, the
 *        execution created atomically). The floor column is the `zstd`
 *        command at the same level on the same bytes in the same units:
 *        a copy of each log, one file each, compressed by one `zstd -N`
 *        to one .zst file each and decompressed by one `zstd -d`, each
 *        writing its output files (without fsync, which zstd does not
 *        do). The ratio of the logs laid end to end, which shares
 *        redundancy between executions, is given in a note. SQLite has
 *        no part here.
 */
#include "evbench.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Builds the ended executions a0, a1, ... in the bench's store and
 * copies their logs to root/arch-logs/a<i>, and end to end to
 * root/arch-all. */
static int arch_setup(bench_ctx *c, uint64_t *bytes)
{
    bench_workload w = {0};
    bench_gen g;
    evs_error_info info;
    evs_store *st = NULL;
    evs_log *l = NULL;
    evs_event end;
    char id[32], path[4300], *buf = NULL;
    int rc = -1, err, out = -1;

    *bytes = 0;
    bench_path(path, sizeof(path), c->root, "arch-logs");
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        bench_fail(c, "%s: %s", path, strerror(errno));
        goto fail;
    }
    bench_path(path, sizeof(path), c->root, "arch-all");
    if ((out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        bench_fail(c, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (bench_store_open(c, EVS_SYNC_NONE, &st) != 0)
        goto fail;
    bench_gen_init(&g, c->seed + 11);
    memset(&end, 0, sizeof(end));
    end.event_type = evs_span_cstr(EVS_EV_EXECUTION_COMPLETED);
    end.data = evs_span_cstr("{\"outputs\":{}}");
    for (size_t e = 0; e < c->sz.arch_execs; e++) {
        size_t seq = 0, n;
        struct stat sb;
        int fd, one;

        bench_progress(c, 0, "arch setup: %zu/%zu executions", e,
                       c->sz.arch_execs);
        snprintf(id, sizeof(id), "a%zu", e);
        err = evs_exec_create(st, id, strlen(id), NULL, NULL, 0);
        if (err == 0)
            err = evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL,
                               &info);
        while (err == 0 && seq < c->sz.arch_events) {
            n = c->sz.arch_events - seq < 500 ? c->sz.arch_events - seq : 500;
            if (bench_gen_fill(&g, &w, n) != 0) {
                bench_fail(c, "generating events: out of memory");
                goto fail;
            }
            err = evs_log_append(l, w.ev, n, seq, &info);
            seq += n;
        }
        if (err == 0)
            err = evs_log_append(l, &end, 1, seq, &info);
        evs_log_close(l);
        l = NULL;
        if (err != 0) {
            bench_evs_fail(c, err, "making the executions to archive");
            goto fail;
        }
        /* The same bytes, for the zstd command. */
        snprintf(path, sizeof(path), "%s/%s/events.jsonl", c->store, id);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0 ||
            !(buf = realloc(buf, (size_t)sb.st_size + 1)) ||
            read(fd, buf, (size_t)sb.st_size) != sb.st_size ||
            floor_write_all(out, buf, (size_t)sb.st_size) != 0) {
            bench_fail(c, "copying %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto fail;
        }
        close(fd);
        snprintf(path, sizeof(path), "%s/arch-logs/%s", c->root, id);
        one = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (one < 0 || floor_write_all(one, buf, (size_t)sb.st_size) != 0) {
            bench_fail(c, "%s: %s", path, strerror(errno));
            if (one >= 0)
                close(one);
            goto fail;
        }
        close(one);
        *bytes += (uint64_t)sb.st_size;
    }
    rc = 0;
fail:
    if (out >= 0)
        close(out);
    free(buf);
    evs_store_close(st);
    bench_workload_free(&w);
    return rc;
}

/* Runs the zstd command with args; returns 0 when it exits 0. */
static int run_zstd(bench_ctx *c, char *const *args)
{
    pid_t pid;
    int st, err;

    if (!args)
        return bench_fail(c, "out of memory");
    err = posix_spawnp(&pid, "zstd", NULL, NULL, args, environ);
    if (err != 0)
        return bench_fail(c, "cannot run zstd: %s", strerror(err));
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return bench_fail(c, "zstd failed");
    return 0;
}

static long long file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The bytes of the .zst files zstd wrote for the executions. */
static uint64_t zst_bytes(bench_ctx *c, const char *zdir)
{
    char path[4400];
    uint64_t n = 0;

    for (size_t e = 0; e < c->sz.arch_execs; e++) {
        snprintf(path, sizeof(path), "%s/a%zu.zst", zdir, e);
        n += (uint64_t)file_size(path);
    }
    return n;
}

/* argv of `zstd FLAGS... --output-dir-flat OUT DIR/a<i><ext>...`, or
 * NULL when out of memory. */
static char **zstd_args(bench_ctx *c, const char *flag, const char *level,
                        const char *out, const char *dir, const char *ext)
{
    size_t n = c->sz.arch_execs, k = 0;
    char **v = calloc(n + 8, sizeof(*v));

    if (!v)
        return NULL;
    v[k++] = strdup("zstd");
    v[k++] = strdup("-q");
    v[k++] = strdup("-f");
    v[k++] = strdup(flag ? flag : level);
    v[k++] = strdup("--output-dir-flat");
    v[k++] = strdup(out);
    for (size_t e = 0; e < n; e++) {
        char path[4400];
        snprintf(path, sizeof(path), "%s/a%zu%s", dir, e, ext);
        v[k++] = strdup(path);
    }
    for (size_t i = 0; i < k; i++) {
        if (!v[i]) {
            for (size_t j = 0; j < k; j++)
                free(v[j]);
            free(v);
            return NULL;
        }
    }
    return v;
}

static void free_args(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int scen_arch(bench_ctx *c)
{
    char logs[4300], zdir[4300], back[4300], dir[4300], rstore[4300];
    char all[4300], allz[4300], level_opt[8], id[32], bundle[4400];
    char **zc = NULL, **zd = NULL;
    evs_archive_opts ao;
    evs_archive_info ai;
    evs_error_info info;
    evs_store *st = NULL, *rs = NULL;
    bench_row *ra, *rr, *rc_ratio;
    uint64_t bytes, bundle_bytes, t0;
    double secs;
    int rc = -1, err;

    if (arch_setup(c, &bytes) != 0)
        goto out;
    bench_path(logs, sizeof(logs), c->root, "arch-logs");
    bench_path(zdir, sizeof(zdir), c->root, "arch-zst");
    bench_path(back, sizeof(back), c->root, "arch-back");
    bench_path(all, sizeof(all), c->root, "arch-all");
    bench_path(allz, sizeof(allz), c->root, "arch-all.zst");
    bench_path(dir, sizeof(dir), c->root, "arch-bundles");
    bench_path(rstore, sizeof(rstore), c->root, "arch-restored");
    snprintf(level_opt, sizeof(level_opt), "-%d", EVS_ARCHIVE_LEVEL_DEFAULT);
    zc = zstd_args(c, NULL, level_opt, zdir, logs, "");
    zd = zstd_args(c, "-d", level_opt, back, zdir, ".zst");
    if (mkdir(zdir, 0700) != 0 && errno != EEXIST)
        goto out;
    if (mkdir(back, 0700) != 0 && errno != EEXIST)
        goto out;
    evs_archive_opts_init(&ao);
    if (bench_store_open(c, EVS_SYNC_FULL, &st) != 0)
        goto out;
    ra = bench_row_add(c, "ARCH", "archive, MB/s of log (floor: zstd -3)",
                       "MB/s", 0);
    rr = bench_row_add(c, "ARCH", "restore, MB/s of log (floor: zstd -d)",
                       "MB/s", 0);
    rc_ratio = bench_row_add(c, "ARCH", "compression ratio (log / bundle)",
                             "x", 0);
    for (int rep = 0; rep < c->repeat; rep++) {
        bench_progress(c, 1, "arch rep %d/%d: zstd", rep + 1, c->repeat);
        t0 = bench_now_ns();
        if (run_zstd(c, zc) != 0)
            goto out;
        secs = (double)(bench_now_ns() - t0) / 1e9;
        bench_row_push(ra, SYS_FLOOR, (double)bytes / secs / 1e6);
        bench_row_push(rc_ratio, SYS_FLOOR,
                       (double)bytes / (double)zst_bytes(c, zdir));
        t0 = bench_now_ns();
        if (run_zstd(c, zd) != 0)
            goto out;
        secs = (double)(bench_now_ns() - t0) / 1e9;
        bench_row_push(rr, SYS_FLOOR, (double)bytes / secs / 1e6);

        bench_progress(c, 1, "arch rep %d/%d: evstore", rep + 1, c->repeat);
        floor_rm_rf(dir);
        floor_rm_rf(rstore);
        if (mkdir(dir, 0700) != 0) {
            bench_fail(c, "%s: %s", dir, strerror(errno));
            goto out;
        }
        bundle_bytes = 0;
        t0 = bench_now_ns();
        for (size_t e = 0; e < c->sz.arch_execs; e++) {
            snprintf(id, sizeof(id), "a%zu", e);
            err = evs_archive_exec(st, id, dir, &ao, &ai, &info);
            if (err != 0) {
                bench_fail(c, "archiving %s: %s", id, info.msg);
                goto out;
            }
            bundle_bytes += ai.bundle_bytes;
        }
        secs = (double)(bench_now_ns() - t0) / 1e9;
        bench_row_push(ra, SYS_EVSTORE, (double)bytes / secs / 1e6);
        bench_row_push(rc_ratio, SYS_EVSTORE,
                       (double)bytes / (double)bundle_bytes);
        {
            evs_store_opts o;
            evs_store_opts_init(&o);
            if ((err = evs_store_open(rstore, &o, &rs)) != 0) {
                bench_evs_fail(c, err, "opening the store to restore into");
                goto out;
            }
        }
        t0 = bench_now_ns();
        for (size_t e = 0; e < c->sz.arch_execs; e++) {
            snprintf(bundle, sizeof(bundle), "%s/a%zu%s", dir, e,
                     EVS_BUNDLE_EXT);
            err = evs_archive_restore(rs, bundle, NULL, &info);
            if (err != 0) {
                bench_fail(c, "restoring %s: %s", bundle, info.msg);
                goto out;
            }
        }
        secs = (double)(bench_now_ns() - t0) / 1e9;
        bench_row_push(rr, SYS_EVSTORE, (double)bytes / secs / 1e6);
        evs_store_close(rs);
        rs = NULL;
    }
    {
        char *za[] = {"zstd", "-q", "-f", level_opt, all, "-o", allz, NULL};
        if (run_zstd(c, za) != 0)
            goto out;
        bench_note(c,
                   "ARCH: the logs laid end to end, one file, compress %.1fx "
                   "with zstd %s (redundancy shared between executions, "
                   "which one bundle per execution cannot use)",
                   (double)bytes / (double)file_size(allz), level_opt);
    }
    bench_row_target(ra, "≥ 0.8× zstd -%d", EVS_ARCHIVE_LEVEL_DEFAULT);
    bench_row_judge(ra, bench_ratio(ra, SYS_FLOOR) >= 0.8);
    bench_note(c,
               "ARCH: %zu ended executions of %zu events, %.1f MiB of log; "
               "evstore archives each to its own bundle at level %d (read "
               "under the lock, every line checked, compressed, fsynced, "
               "renamed, read back) and restores each into a fresh store; "
               "the floor is one zstd command on a copy of each log, one "
               ".zst file each (no fsync)",
               c->sz.arch_execs, c->sz.arch_events + 1,
               (double)bytes / 1048576.0, EVS_ARCHIVE_LEVEL_DEFAULT);
    rc = 0;
out:
    evs_store_close(rs);
    evs_store_close(st);
    free_args(zc);
    free_args(zd);
    if (!c->keep) {
        floor_rm_rf(dir);
        floor_rm_rf(rstore);
        floor_rm_rf(logs);
        floor_rm_rf(zdir);
        floor_rm_rf(back);
        floor_unlink(c->root, "arch-all");
        floor_unlink(c->root, "arch-all.zst");
        if (bench_store_open(c, EVS_SYNC_NONE, &st) == 0) {
            for (size_t e = 0; e < c->sz.arch_execs; e++) {
                snprintf(id, sizeof(id), "a%zu", e);
                evs_exec_delete(st, id, strlen(id));
            }
            evs_store_close(st);
        }
    }
    return rc;
}
