/*
 * routes_def.c: the definitions directory the server was given (list,
 * get, the file a creation takes its workflow from), the check of a
 * definition against the unfinished executions (evs_orch_check_store,
 * as `evrun check`), and /metrics.
 */
#include "server_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEF_MAX ((size_t)4 << 20)

/* Reads `name` of the definitions directory (a plain file, not a link). */
static int read_def_file(evs_server *sv, const char *name, char **text,
                         size_t *len)
{
    char path[4096];
    struct stat st;
    ssize_t n;
    int fd, rc = 0;

    snprintf(path, sizeof(path), "%s/%s", sv->defs_dir, name);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return -errno;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode) || (size_t)st.st_size > DEF_MAX)
        rc = -EINVAL;
    else if (!(*text = malloc((size_t)st.st_size + 1)))
        rc = -ENOMEM;
    if (rc == 0) {
        n = read(fd, *text, (size_t)st.st_size);
        if (n != (ssize_t)st.st_size) {
            free(*text);
            *text = NULL;
            rc = n < 0 ? -errno : -EIO;
        } else {
            (*text)[n] = '\0';
            *len = (size_t)n;
        }
    }
    close(fd);
    return rc;
}

/* Hears each definition of the directory: its file name and text, and
 * the parsed definition (NULL, with err, when it does not parse).
 * Return non-zero to stop. */
typedef int (*def_fn)(void *arg, const char *file, const char *text,
                      size_t len, const evs_wf_def *d,
                      const evs_error_info *err);

/* Each *.json file of the directory, in name order. */
static int each_def(evs_server *sv, def_fn fn, void *arg)
{
    struct dirent **names = NULL;
    int n, rc = 0;

    if (!sv->defs_dir)
        return 0;
    if ((n = scandir(sv->defs_dir, &names, NULL, alphasort)) < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        const char *f = names[i]->d_name;
        size_t fl = strlen(f), len = 0;
        char *text = NULL;
        evs_wf_def *d = NULL;
        evs_error_info err;

        if (rc == 0 && f[0] != '.' && fl > 5 &&
            strcmp(f + fl - 5, ".json") == 0 &&
            read_def_file(sv, f, &text, &len) == 0) {
            evs_error_info_clear(&err);
            evs_wf_parse(text, len, NULL, NULL, NULL, &d, &err);
            rc = fn(arg, f, text, len, d, &err);
            evs_wf_free(d);
            free(text);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

typedef struct def_find {
    const char *name;
    char *text;
    size_t len;
    char file[256];
} def_find;

static int find_one(void *arg, const char *file, const char *text, size_t len,
                    const evs_wf_def *d, const evs_error_info *err)
{
    def_find *f = arg;

    (void)err;
    if (!d || strcmp(d->name, f->name) != 0)
        return 0;
    if (!(f->text = malloc(len + 1)))
        return -ENOMEM;
    memcpy(f->text, text, len + 1);
    f->len = len;
    snprintf(f->file, sizeof(f->file), "%s", file);
    return 1;
}

/* Finds the definition of workflow `name`: f->text (malloc'd) and
 * f->file. Returns 0, -ENOENT or -errno. */
static int def_find_one(evs_server *sv, const char *name, def_find *f)
{
    int rc;

    memset(f, 0, sizeof(*f));
    f->name = name;
    if ((rc = each_def(sv, find_one, f)) < 0)
        return rc;
    return f->text ? 0 : -ENOENT;
}

int evs__srv_def_read(evs_server *sv, const char *name, char **text,
                      size_t *len)
{
    def_find f;
    int rc = def_find_one(sv, name, &f);

    if (rc != 0)
        return rc;
    *text = f.text;
    *len = f.len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* list, get                                                          */
/* ------------------------------------------------------------------ */

static void def_summary(evs__jbuf *b, const char *file, const evs_wf_def *d)
{
    EVS__JB_LIT(b, "{\"name\":");
    evs__jb_quote(b, evs_span_cstr(d->name));
    EVS__JB_LIT(b, ",\"version\":");
    evs__jb_int(b, d->version);
    EVS__JB_LIT(b, ",\"hash\":\"");
    evs__jb_str(b, d->hash);
    EVS__JB_LIT(b, "\",\"steps\":");
    evs__jb_int(b, (int64_t)d->n_steps);
    EVS__JB_LIT(b, ",\"file\":");
    evs__jb_quote(b, evs_span_cstr(file));
}

typedef struct def_listing {
    evs__jbuf ok, bad;
    size_t n_ok, n_bad;
} def_listing;

static int list_one(void *arg, const char *file, const char *text, size_t len,
                    const evs_wf_def *d, const evs_error_info *err)
{
    def_listing *l = arg;

    (void)text;
    (void)len;
    if (d) {
        if (l->n_ok++)
            EVS__JB_LIT(&l->ok, ",");
        def_summary(&l->ok, file, d);
        EVS__JB_LIT(&l->ok, "}");
    } else {
        if (l->n_bad++)
            EVS__JB_LIT(&l->bad, ",");
        EVS__JB_LIT(&l->bad, "{\"file\":");
        evs__jb_quote(&l->bad, evs_span_cstr(file));
        EVS__JB_LIT(&l->bad, ",\"step\":");
        evs__jb_quote(&l->bad, evs_span_cstr(err->step));
        EVS__JB_LIT(&l->bad, ",\"message\":");
        evs__jb_quote(&l->bad, evs_span_cstr(err->msg));
        EVS__JB_LIT(&l->bad, "}");
    }
    return 0;
}

void evs__srv_def_list(srv_job *j)
{
    def_listing l;
    int rc;

    memset(&l, 0, sizeof(l));
    if ((rc = each_def(j->sv, list_one, &l)) != 0) {
        evs__srv_job_fail(j, rc, NULL);
        goto out;
    }
    EVS__JB_LIT(&j->out, "{\"definitions\":[");
    evs__jb_raw(&j->out, l.ok.p ? l.ok.p : "", l.ok.len);
    EVS__JB_LIT(&j->out, "],\"refused\":[");
    evs__jb_raw(&j->out, l.bad.p ? l.bad.p : "", l.bad.len);
    EVS__JB_LIT(&j->out, "]}\n");
    if (l.ok.err || l.bad.err)
        j->out.err = -ENOMEM;
out:
    evs__jb_free(&l.ok);
    evs__jb_free(&l.bad);
}

void evs__srv_def_get(srv_job *j)
{
    evs_wf_def *d = NULL;
    def_find f;
    int rc = def_find_one(j->sv, j->name, &f);

    if (rc == -ENOENT) {
        evs__srv_job_error(j, 404, "not_found",
                           "no definition of workflow '%s'", j->name);
        return;
    }
    if (rc == 0)
        rc = evs_wf_parse(f.text, f.len, NULL, NULL, NULL, &d, NULL);
    if (rc != 0) {
        evs__srv_job_fail(j, rc, NULL);
    } else {
        def_summary(&j->out, f.file, d);
        EVS__JB_LIT(&j->out, ",\"definition\":");
        evs__jb_raw(&j->out, d->json.ptr, d->json.len);
        EVS__JB_LIT(&j->out, "}\n");
    }
    evs_wf_free(d);
    free(f.text);
}

/* ------------------------------------------------------------------ */
/* check                                                              */
/* ------------------------------------------------------------------ */

typedef struct def_check {
    evs__jbuf findings; /* of the execution being checked */
    evs__jbuf *out;
    size_t n_findings, checked, would_break, errors, skipped;
} def_check;

static int check_finding(void *arg, const evs_def_finding *f)
{
    def_check *c = arg;
    char text[512];

    evs_def_finding_describe(f, text, sizeof(text));
    if (c->n_findings++)
        EVS__JB_LIT(&c->findings, ",");
    EVS__JB_LIT(&c->findings, "{\"kind\":");
    evs__jb_str(&c->findings,
                f->kind == EVS_DEF_VERSION ? "\"version\"" : "\"step\"");
    EVS__JB_LIT(&c->findings, ",\"refusal\":");
    if (f->code) {
        EVS__JB_LIT(&c->findings, "\"");
        evs__jb_str(&c->findings, evs_err_name(f->code));
        EVS__JB_LIT(&c->findings, "\"");
    } else {
        EVS__JB_LIT(&c->findings, "null");
    }
    EVS__JB_LIT(&c->findings, ",\"text\":");
    evs__jb_quote(&c->findings, evs_span_cstr(text));
    EVS__JB_LIT(&c->findings, "}");
    return 0;
}

static int check_exec(void *arg, const char *id, int checked, int rc)
{
    def_check *c = arg;
    const char *verdict;

    if (!checked) {
        c->skipped++;
        return 0;
    }
    if (rc == 0) {
        verdict = "compatible";
    } else if (rc == EVS_ENONDET || rc == EVS_EVERSION) {
        verdict = "refused";
        c->would_break++;
    } else {
        verdict = "error";
        c->errors++;
    }
    if (c->checked++)
        EVS__JB_LIT(c->out, ",");
    EVS__JB_LIT(c->out, "{\"id\":");
    evs__jb_quote(c->out, evs_span_cstr(id));
    EVS__JB_LIT(c->out, ",\"verdict\":\"");
    evs__jb_str(c->out, verdict);
    EVS__JB_LIT(c->out, "\",\"findings\":[");
    evs__jb_raw(c->out, c->findings.p ? c->findings.p : "", c->findings.len);
    EVS__JB_LIT(c->out, "]}");
    c->findings.len = 0;
    c->n_findings = 0;
    return c->findings.err;
}

/* The body is a definition, or {"workflow": NAME} for the directory's. */
void evs__srv_def_check(srv_job *j)
{
    evs_server *sv = j->sv;
    evs_wf_def *d = NULL;
    evs_error_info err;
    def_check c;
    char *text = NULL;
    const char *def = j->body;
    size_t len = j->body_len;
    int rc;

    memset(&c, 0, sizeof(c));
    c.out = &j->out;
    /* {"workflow": NAME} names one of the directory's. */
    {
        json_object *o = json_tokener_parse(j->body), *w;
        if (o && json_object_is_type(o, json_type_object) &&
            !json_object_object_get_ex(o, "steps", NULL) &&
            json_object_object_get_ex(o, "workflow", &w) &&
            json_object_is_type(w, json_type_string)) {
            rc = evs__srv_def_read(sv, json_object_get_string(w), &text,
                                   &len);
            if (rc != 0) {
                evs__srv_job_error(j, 404, "not_found",
                                   "no definition of workflow '%s'",
                                   json_object_get_string(w));
                json_object_put(o);
                return;
            }
            def = text;
        }
        json_object_put(o);
    }
    evs_error_info_clear(&err);
    if ((rc = evs_wf_parse(def, len, NULL, NULL, NULL, &d, &err)) != 0) {
        evs__srv_job_error(j, 400, "EPARSE", "the definition is refused: "
                                             "%s%s%s",
                           err.step, err.step[0] ? ": " : "", err.msg);
        goto out;
    }
    EVS__JB_LIT(&j->out, "{\"workflow_name\":");
    evs__jb_quote(&j->out, evs_span_cstr(d->name));
    EVS__JB_LIT(&j->out, ",\"executions\":[");
    rc = evs_orch_check_store(sv->store, d, check_finding, check_exec, &c);
    if (rc != 0) {
        evs__srv_job_fail(j, rc, NULL);
        goto out;
    }
    EVS__JB_LIT(&j->out, "],\"checked\":");
    evs__jb_int(&j->out, (int64_t)c.checked);
    EVS__JB_LIT(&j->out, ",\"would_break\":");
    evs__jb_int(&j->out, (int64_t)c.would_break);
    EVS__JB_LIT(&j->out, ",\"skipped\":");
    evs__jb_int(&j->out, (int64_t)c.skipped);
    EVS__JB_LIT(&j->out, "}\n");
out:
    evs__jb_free(&c.findings);
    evs_wf_free(d);
    free(text);
}

/* ------------------------------------------------------------------ */
/* /metrics                                                           */
/* ------------------------------------------------------------------ */

/* A label value as the text format quotes it: \\, \" and \n escaped. */
static void label(evs__jbuf *b, evs_span v)
{
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        if (c == '\\' || c == '"')
            evs__jb_raw(b, "\\", 1);
        if (c == '\n')
            EVS__JB_LIT(b, "\\n");
        else
            evs__jb_raw(b, &c, 1);
    }
}

static void metric_head(evs__jbuf *b, const char *name, const char *type,
                        const char *help)
{
    EVS__JB_LIT(b, "# HELP ");
    evs__jb_str(b, name);
    EVS__JB_LIT(b, " ");
    evs__jb_str(b, help);
    EVS__JB_LIT(b, "\n# TYPE ");
    evs__jb_str(b, name);
    EVS__JB_LIT(b, " ");
    evs__jb_str(b, type);
    EVS__JB_LIT(b, "\n");
}

static void metric_u64(evs__jbuf *b, const char *name, uint64_t v)
{
    evs__jb_str(b, name);
    EVS__JB_LIT(b, " ");
    evs__jb_int(b, (int64_t)v);
    EVS__JB_LIT(b, "\n");
}

/* One sample per count: name{key="<its name>"} <its count>. */
static void metric_counts(evs__jbuf *b, const char *name, const char *key,
                          const evs_stats_count *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        evs__jb_str(b, name);
        EVS__JB_LIT(b, "{");
        evs__jb_str(b, key);
        EVS__JB_LIT(b, "=\"");
        label(b, c[i].name);
        EVS__JB_LIT(b, "\"} ");
        evs__jb_int(b, (int64_t)c[i].count);
        EVS__JB_LIT(b, "\n");
    }
}

/* What the store holds, on the threadpool; the server's own counters
 * are added on the loop (metrics_done), which alone writes them. */
void evs__srv_metrics(srv_job *j)
{
    evs__jbuf *b = &j->out;
    evs_store_stats st;
    int rc;

    memset(&st, 0, sizeof(st));
    j->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if ((rc = evs_store_stats_get(j->sv->store, 0, &st)) != 0) {
        evs__srv_job_fail(j, rc, NULL);
        return;
    }
    metric_head(b, "evstore_executions", "gauge",
                "Executions in the store.");
    metric_u64(b, "evstore_executions", st.executions);
    metric_head(b, "evstore_executions_by_status", "gauge",
                "Executions in the store by the status their snapshot "
                "records.");
    metric_counts(b, "evstore_executions_by_status", "status", st.by_status,
                  st.n_status);
    metric_head(b, "evstore_executions_by_workflow", "gauge",
                "Executions in the store by workflow.");
    metric_counts(b, "evstore_executions_by_workflow", "workflow",
                  st.by_workflow, st.n_workflow);
    metric_head(b, "evstore_events", "gauge",
                "Events appended to every log of the store.");
    metric_u64(b, "evstore_events", st.events);
    metric_head(b, "evstore_log_bytes", "gauge",
                "Bytes of every log of the store.");
    metric_u64(b, "evstore_log_bytes", st.bytes);
    metric_head(b, "evstore_unreadable_snapshots", "gauge",
                "Executions whose snapshot is missing or damaged.");
    metric_u64(b, "evstore_unreadable_snapshots", st.unreadable);
    metric_head(b, "evstore_stale_snapshots", "gauge",
                "Snapshots behind their log.");
    metric_u64(b, "evstore_stale_snapshots", st.stale_snapshots);
    metric_head(b, "evstore_cut_tails", "gauge",
                "Torn tails cut back and kept beside their log.");
    metric_u64(b, "evstore_cut_tails", st.cut_files);
    evs_store_stats_free(&st);
    j->done = evs__srv_metrics_done;
}

void evs__srv_metrics_done(srv_job *j)
{
    evs_server *sv = j->sv;
    evs__jbuf *b = &j->out;

    if (j->status != 200)
        return;
    /* This request is counted once answered: not in its own figures. */
    metric_head(b, "evstore_http_requests_total", "counter",
                "HTTP requests answered, by route and status.");
    for (int r = 0; r < SRV_ROUTE_COUNT; r++)
        for (int c = 0; c < SRV_CODE_COUNT; c++)
            if (sv->served[r][c]) {
                EVS__JB_LIT(b, "evstore_http_requests_total{route=\"");
                evs__jb_str(b, evs__srv_route_names[r]);
                EVS__JB_LIT(b, "\",code=\"");
                evs__jb_int(b, evs__srv_codes[c]);
                EVS__JB_LIT(b, "\"} ");
                evs__jb_int(b, (int64_t)sv->served[r][c]);
                EVS__JB_LIT(b, "\n");
            }
    metric_head(b, "evstore_http_request_duration_seconds", "histogram",
                "From a request read whole to its answer sent (a stream: "
                "its last piece), by route.");
    for (int r = 0; r < SRV_ROUTE_COUNT; r++) {
        uint64_t cum = 0;
        char num[32];

        for (int k = 0; k <= SRV_BUCKETS; k++)
            cum += sv->latency[r][k];
        if (!cum)
            continue;
        cum = 0;
        for (int k = 0; k <= SRV_BUCKETS; k++) {
            cum += sv->latency[r][k];
            EVS__JB_LIT(b, "evstore_http_request_duration_seconds_bucket"
                           "{route=\"");
            evs__jb_str(b, evs__srv_route_names[r]);
            EVS__JB_LIT(b, "\",le=\"");
            if (k == SRV_BUCKETS)
                EVS__JB_LIT(b, "+Inf");
            else {
                snprintf(num, sizeof(num), "%g", evs__srv_buckets[k]);
                evs__jb_str(b, num);
            }
            EVS__JB_LIT(b, "\"} ");
            evs__jb_int(b, (int64_t)cum);
            EVS__JB_LIT(b, "\n");
        }
        EVS__JB_LIT(b, "evstore_http_request_duration_seconds_sum{route=\"");
        evs__jb_str(b, evs__srv_route_names[r]);
        EVS__JB_LIT(b, "\"} ");
        snprintf(num, sizeof(num), "%.6f", sv->latency_sum[r]);
        evs__jb_str(b, num);
        EVS__JB_LIT(b, "\nevstore_http_request_duration_seconds_count"
                       "{route=\"");
        evs__jb_str(b, evs__srv_route_names[r]);
        EVS__JB_LIT(b, "\"} ");
        evs__jb_int(b, (int64_t)cum);
        EVS__JB_LIT(b, "\n");
    }
    metric_head(b, "evstore_http_request_body_bytes_total", "counter",
                "Bytes of request bodies received.");
    metric_u64(b, "evstore_http_request_body_bytes_total", sv->body_bytes_in);
    metric_head(b, "evstore_http_response_bytes_total", "counter",
                "Bytes of answers sent, streams included (headers not).");
    metric_u64(b, "evstore_http_response_bytes_total", sv->bytes_out);
    metric_head(b, "evstore_http_connections", "gauge",
                "HTTP connections open.");
    metric_u64(b, "evstore_http_connections", sv->conns);
    metric_head(b, "evstore_http_streams", "gauge",
                "History streams and followers open.");
    {
        size_t n = 0;
        for (srv_stream *s = sv->streams; s; s = evs__srv_stream_next(s))
            n++;
        metric_u64(b, "evstore_http_streams", n);
    }
    metric_head(b, "evstore_http_followers_total", "counter",
                "Followers (Server-Sent Events) started.");
    metric_u64(b, "evstore_http_followers_total", sv->followers);
    metric_head(b, "evstore_http_events_streamed_total", "counter",
                "Events sent by history streams and followers.");
    metric_u64(b, "evstore_http_events_streamed_total", sv->events_streamed);
    metric_head(b, "evstore_orchestrator_owned", "gauge",
                "Executions the runner beside the server owns.");
    metric_u64(b, "evstore_orchestrator_owned",
               sv->opts.orch ? evs_orch_owned(sv->opts.orch) : 0);
}
