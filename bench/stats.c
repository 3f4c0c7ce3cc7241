/*
 * stats.c: evbench's clock, its result rows and the statistics over
 * repetitions (median, minimum, maximum) and within one (quantiles).
 */
#include "evbench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;

    return a < b ? -1 : a > b;
}

double bench_quantile(double *v, size_t n, double q)
{
    double pos, frac;
    size_t lo;

    if (n == 0)
        return NAN;
    qsort(v, n, sizeof(*v), cmp_double);
    pos = q * (double)(n - 1);
    lo = (size_t)pos;
    if (lo + 1 >= n)
        return v[n - 1];
    frac = pos - (double)lo;
    return v[lo] + (v[lo + 1] - v[lo]) * frac;
}

bench_summary bench_summarize(const bench_row *r, int sys)
{
    double tmp[BENCH_MAX_REPEAT];
    bench_summary s;
    int n = r->n[sys];

    s.n = n;
    if (n == 0) {
        s.median = s.min = s.max = NAN;
        return s;
    }
    memcpy(tmp, r->v[sys], (size_t)n * sizeof(double));
    s.median = bench_quantile(tmp, (size_t)n, 0.5);
    s.min = tmp[0];
    s.max = tmp[n - 1];
    return s;
}

double bench_row_median(const bench_row *r, int sys)
{
    return bench_summarize(r, sys).median;
}

bench_row *bench_row_add(bench_ctx *c, const char *scenario, const char *metric,
                         const char *unit, int lower_better)
{
    bench_row *r;

    if (c->nrows == BENCH_MAX_ROWS) {
        /* A fixed set of scenarios makes a fixed number of rows. */
        fprintf(stderr, "evbench: too many result rows\n");
        abort();
    }
    r = &c->rows[c->nrows++];
    memset(r, 0, sizeof(*r));
    snprintf(r->scenario, sizeof(r->scenario), "%s", scenario);
    snprintf(r->metric, sizeof(r->metric), "%s", metric);
    r->unit = unit;
    r->lower_better = lower_better;
    r->met = MET_NONE;
    snprintf(r->target, sizeof(r->target), "—");
    return r;
}

void bench_row_push(bench_row *r, int sys, double value)
{
    if (r && r->n[sys] < BENCH_MAX_REPEAT)
        r->v[sys][r->n[sys]++] = value;
}

void bench_row_target(bench_row *r, const char *fmt, ...)
{
    va_list ap;

    if (!r)
        return;
    va_start(ap, fmt);
    vsnprintf(r->target, sizeof(r->target), fmt, ap);
    va_end(ap);
}

double bench_ratio(const bench_row *r, int sys)
{
    return bench_row_median(r, SYS_EVSTORE) / bench_row_median(r, sys);
}

void bench_row_judge(bench_row *r, int ok)
{
    r->met = ok ? MET_YES : MET_NO;
}
