/*
 * report.c: evbench's output: the final table (Markdown, so that it can
 * go into bench/RESULTS.md as it is), the notes, the machine it ran on,
 * and the same results as JSON for scripts.
 */
#include "evbench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef EVBENCH_BUILDTYPE
#define EVBENCH_BUILDTYPE "unknown"
#endif

typedef struct machine {
    char date[64];
    long nproc;
    char cpu[128];
    char kernel[160];
    char fs[32];
} machine;

static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0xEF53: return "ext2/3/4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    case 0x2FC12FC1: return "zfs";
    case 0x65735546: return "fuse";
    case 0x6969: return "nfs";
    default: return NULL;
    }
}

static void machine_get(bench_ctx *c, machine *m)
{
    struct utsname u;
    struct statfs sf;
    time_t now = time(NULL);
    struct tm tm;
    char line[256];
    FILE *f;

    memset(m, 0, sizeof(*m));
    gmtime_r(&now, &tm);
    strftime(m->date, sizeof(m->date), "%Y-%m-%d %H:%M:%S UTC", &tm);
    m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(m->cpu, sizeof(m->cpu), "unknown");
    if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
        while (fgets(line, sizeof(line), f)) {
            char *colon = strchr(line, ':');

            if (strncmp(line, "model name", 10) == 0 && colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(m->cpu, sizeof(m->cpu), "%s", colon);
                break;
            }
        }
        fclose(f);
    }
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof(m->kernel), "%.40s %.100s", u.sysname,
                 u.release);
    snprintf(m->fs, sizeof(m->fs), "unknown");
    if (statfs(c->root, &sf) == 0) {
        const char *n = fs_name((long)sf.f_type);

        if (n)
            snprintf(m->fs, sizeof(m->fs), "%s", n);
        else
            snprintf(m->fs, sizeof(m->fs), "0x%lx", (unsigned long)sf.f_type);
    }
}

/* Three significant digits; events/s get k and M. */
static void fmt_val(char *out, size_t cap, double v, const char *unit)
{
    if (isnan(v))
        snprintf(out, cap, "—");
    else if (strcmp(unit, "events/s") == 0 && v >= 1e6)
        snprintf(out, cap, "%.2f M", v / 1e6);
    else if (strcmp(unit, "events/s") == 0 && v >= 1e3)
        snprintf(out, cap, "%.0f k", v / 1e3);
    else if (fabs(v) >= 100)
        snprintf(out, cap, "%.0f", v);
    else if (fabs(v) >= 10)
        snprintf(out, cap, "%.1f", v);
    else
        snprintf(out, cap, "%.2f", v);
}

static void fmt_summary(char *out, size_t cap, const bench_row *r, int sys)
{
    bench_summary s = bench_summarize(r, sys);
    char a[24], b[24], m[24];

    if (s.n == 0) {
        snprintf(out, cap, "—");
        return;
    }
    fmt_val(m, sizeof(m), s.median, r->unit);
    fmt_val(a, sizeof(a), s.min, r->unit);
    fmt_val(b, sizeof(b), s.max, r->unit);
    snprintf(out, cap, "%s [%s–%s]", m, a, b);
}

static void fmt_ratio(char *out, size_t cap, double v)
{
    if (isnan(v) || isinf(v))
        snprintf(out, cap, "—");
    else
        snprintf(out, cap, "%.2f×", v);
}

void bench_report_table(bench_ctx *c, const char *cmdline)
{
    machine m;

    machine_get(c, &m);
    printf("\n| scenario | metric | evstore (median [min–max]) | floor | "
           "SQLite (or the peer named) | ×floor | ×SQLite (or ×peer) | "
           "target |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < c->nrows; i++) {
        const bench_row *r = &c->rows[i];
        char ev[128], fl[128], sq[128], sqn[160], xf[32], xs[32];

        fmt_summary(ev, sizeof(ev), r, SYS_EVSTORE);
        fmt_summary(fl, sizeof(fl), r, SYS_FLOOR);
        fmt_summary(sq, sizeof(sq), r, SYS_SQLITE);
        /* The peer named when it is not SQLite. */
        snprintf(sqn, sizeof(sqn), "%.16s%s%s", r->peer ? r->peer : "",
                 r->peer ? ": " : "", sq);
        fmt_ratio(xf, sizeof(xf), bench_ratio(r, SYS_FLOOR));
        fmt_ratio(xs, sizeof(xs), bench_ratio(r, SYS_SQLITE));
        printf("| %s | %s (%s%s) | %s | %s | %s | %s | %s | %s%s |\n",
               r->scenario, r->metric, r->unit,
               r->lower_better ? ", lower is better" : "", ev, fl, sqn, xf, xs,
               r->target,
               r->met == MET_YES  ? ": met"
               : r->met == MET_NO ? ": **missed**"
                                  : "");
    }
    printf("\n×floor and ×SQLite are evstore's median divided by theirs, "
           "in the metric's unit; in a row whose SQLite column names "
           "another peer (libpq: raw PostgreSQL), ×SQLite is over that "
           "peer.\nTargets are for information only.\n");
    if (c->nnotes) {
        printf("\nNotes:\n");
        for (size_t i = 0; i < c->nnotes; i++)
            printf("- %s\n", c->notes[i]);
    }
    printf("\nRun: `%s` (%d repetitions%s, seed %llu), %s\n", cmdline,
           c->repeat, c->quick ? ", quick sizes" : "",
           (unsigned long long)c->seed, m.date);
    printf("Machine: %ld CPUs, %s, %s; data directory on %s\n", m.nproc, m.cpu,
           m.kernel, m.fs);
    printf("Versions: evstore %s (%s build), SQLite %s\n", EVS_VERSION_STRING,
           EVBENCH_BUILDTYPE, sqlite3_libversion());
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */
/* ------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
}

static void json_sys(FILE *f, const bench_row *r, int sys)
{
    bench_summary s = bench_summarize(r, sys);

    fputs("{\"median\":", f);
    json_num(f, s.median);
    fputs(",\"min\":", f);
    json_num(f, s.min);
    fputs(",\"max\":", f);
    json_num(f, s.max);
    fputs(",\"samples\":[", f);
    for (int i = 0; i < r->n[sys]; i++) {
        if (i)
            fputc(',', f);
        json_num(f, r->v[sys][i]);
    }
    fputs("]}", f);
}

int bench_report_json(bench_ctx *c, const char *path, const char *cmdline)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    machine m;
    int bad;

    if (!f)
        return bench_fail(c, "cannot write %s", path);
    machine_get(c, &m);
    fputs("{\"evbench\":1,\"command\":", f);
    json_str(f, cmdline);
    fputs(",\"date\":", f);
    json_str(f, m.date);
    fprintf(f, ",\"quick\":%s,\"repeat\":%d,\"seed\":%llu,",
            c->quick ? "true" : "false", c->repeat,
            (unsigned long long)c->seed);
    fprintf(f, "\"machine\":{\"nproc\":%ld,\"cpu\":", m.nproc);
    json_str(f, m.cpu);
    fputs(",\"kernel\":", f);
    json_str(f, m.kernel);
    fputs(",\"filesystem\":", f);
    json_str(f, m.fs);
    fputs("},\"versions\":{\"evstore\":", f);
    json_str(f, EVS_VERSION_STRING);
    fputs(",\"build\":", f);
    json_str(f, EVBENCH_BUILDTYPE);
    fputs(",\"sqlite\":", f);
    json_str(f, sqlite3_libversion());
    fputs("},\"results\":[", f);
    for (size_t i = 0; i < c->nrows; i++) {
        const bench_row *r = &c->rows[i];

        fputs(i ? ",\n{" : "\n{", f);
        fputs("\"scenario\":", f);
        json_str(f, r->scenario);
        fputs(",\"metric\":", f);
        json_str(f, r->metric);
        fputs(",\"unit\":", f);
        json_str(f, r->unit);
        fprintf(f, ",\"lower_is_better\":%s,\"evstore\":",
                r->lower_better ? "true" : "false");
        json_sys(f, r, SYS_EVSTORE);
        fputs(",\"floor\":", f);
        json_sys(f, r, SYS_FLOOR);
        fputs(",\"sqlite\":", f);
        json_sys(f, r, SYS_SQLITE);
        /* In rows of another peer, "sqlite" holds that peer's figures. */
        fputs(",\"peer\":", f);
        json_str(f, r->peer ? r->peer : "sqlite");
        fputs(",\"ratio_floor\":", f);
        json_num(f, bench_ratio(r, SYS_FLOOR));
        fputs(",\"ratio_sqlite\":", f);
        json_num(f, bench_ratio(r, SYS_SQLITE));
        fputs(",\"target\":", f);
        json_str(f, r->target);
        fprintf(f, ",\"target_met\":%s}",
                r->met == MET_YES  ? "true"
                : r->met == MET_NO ? "false"
                                   : "null");
    }
    fputs("\n],\"notes\":[", f);
    for (size_t i = 0; i < c->nnotes; i++) {
        fputs(i ? ",\n" : "\n", f);
        json_str(f, c->notes[i]);
    }
    fputs("\n]}\n", f);
    bad = ferror(f);
    if (f != stdout)
        bad |= fclose(f) != 0;
    else
        fflush(f);
    if (bad)
        return bench_fail(c, "writing %s failed", path);
    return 0;
}
