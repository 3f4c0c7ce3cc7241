/*
 * routes.c: the execution routes of the HTTP API, each the threadpool
 * half of a job (server.c): list, get, create and batch, the requests
 * (pause, unpause, terminate, an event), restart and retry, the replayed
 * state and the lineage. Each calls the library function the tools call
 * (evstore/inspect.h's views, evs_exec_start, evs_orch_post_by,
 * evs_exec_retry_json) and turns its answer into the API's.
 */
#include "server_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses the job's body as a JSON object (an empty body is {}). NULL
 * after answering 400. */
static json_object *body_object(srv_job *j)
{
    json_tokener *tok;
    json_object *o;
    enum json_tokener_error e;

    if (j->body_len == 0)
        return json_object_new_object();
    if (!(tok = json_tokener_new())) {
        evs__srv_job_error(j, 500, "ENOMEM", "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, j->body, (int)j->body_len);
    e = json_tokener_get_error(tok);
    if (e == json_tokener_success &&
        json_tokener_get_parse_end(tok) != j->body_len) {
        json_object_put(o);
        o = NULL;
        e = json_tokener_error_parse_unexpected;
    }
    if (e != json_tokener_success || !json_object_is_type(o, json_type_object)) {
        evs__srv_job_error(j, 400, "EPARSE",
                           "the body is not a JSON object%s%s",
                           e != json_tokener_success ? ": " : "",
                           e != json_tokener_success
                               ? json_tokener_error_desc(e)
                               : "");
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* Member `key` of o as a string: 1 (set *out), 0 absent or null, -1
 * another type (400 answered). */
static int member_str(srv_job *j, json_object *o, const char *key,
                      const char **out)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        evs__srv_job_error(j, 400, "EPARSE", "\"%s\" must be a string", key);
        return -1;
    }
    *out = json_object_get_string(v);
    return 1;
}

/* Takes id (NUL-terminated) into the list of executions to take at once
 * (evs__srv_created_done). Memory is not worth failing an answer for. */
static void note_created(srv_job *j, const char *id)
{
    char **v = realloc(j->created, (j->n_created + 1) * sizeof(*v));

    if (!v)
        return;
    j->created = v;
    if ((v[j->n_created] = strdup(id)))
        j->n_created++;
}

void evs__srv_created_done(srv_job *j)
{
    evs_orch *o = j->sv->opts.orch;

    /* A runner's adoption poll would take them too; this only spares
     * the wait. Whatever it says (another runner took it meanwhile) is
     * no concern of the answer. */
    for (size_t i = 0; o && !j->sv->stopping && i < j->n_created; i++)
        (void)evs_orch_resume(o, evs_span_cstr(j->created[i]));
}

/* Appends a view the library wrote (and frees it). */
static void take_view(srv_job *j, char *text)
{
    evs__jb_str(&j->out, text);
    evs_free(evs_store_allocator(j->sv->store), text);
}

/* ------------------------------------------------------------------ */
/* Listing                                                            */
/* ------------------------------------------------------------------ */

/* A cursor is "<created_at µs>_<id>" of the last row of a page: the next
 * page holds the rows after it in the listing's order (created_at, then
 * id), so rows created or deleted meanwhile shift nothing. */
static int cursor_parse(const char *c, int64_t *us, const char **id)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(c, &end, 10);
    if (errno || end == c || *end != '_' || v <= 0 ||
        !evs_id_valid(end + 1, strlen(end + 1)))
        return -1;
    *us = v;
    *id = end + 1;
    return 0;
}

static int add_filter_str(srv_job *j, json_object *f, const char *param,
                          const char *member)
{
    char v[512];
    int rc = evs__srv_query(j->query, param, v, sizeof(v));

    if (rc < 0) {
        evs__srv_job_error(j, 400, "EPARSE", "bad value of %s", param);
        return -1;
    }
    if (rc > 0 && v[0]) {
        /* A time may be given in microseconds since the epoch. */
        size_t n = strspn(v, "0123456789");
        if (strncmp(member, "created_", 8) == 0 && n == strlen(v) && n < 19)
            json_object_object_add(f, member,
                                   json_object_new_int64(atoll(v)));
        else
            json_object_object_add(f, member, json_object_new_string(v));
    }
    return 0;
}

void evs__srv_exec_list(srv_job *j)
{
    evs_server *sv = j->sv;
    json_object *f = json_object_new_object(), *page = NULL, *items, *last;
    char cur[EVS_ID_MAX + 40], *text = NULL;
    const char *cur_id = NULL;
    int64_t cur_us = 0;
    uint64_t limit = 100, ties = 64;
    evs_error_info err;
    int rc, has_cursor;
    size_t n, skip = 0, take;

    if (!f) {
        evs__srv_job_error(j, 500, "ENOMEM", "out of memory");
        return;
    }
    if (add_filter_str(j, f, "status", "status") ||
        add_filter_str(j, f, "workflow", "workflow") ||
        add_filter_str(j, f, "created_after", "created_after") ||
        add_filter_str(j, f, "created_before", "created_before"))
        goto out;
    if (evs__srv_query_u64(j->query, "limit", &limit) != 0 || limit == 0 ||
        limit > sv->opts.page_max) {
        evs__srv_job_error(j, 400, "EINVAL",
                           "limit must be an integer in 1..%zu",
                           sv->opts.page_max);
        goto out;
    }
    has_cursor = evs__srv_query(j->query, "cursor", cur, sizeof(cur));
    if (has_cursor < 0 ||
        (has_cursor > 0 && cursor_parse(cur, &cur_us, &cur_id) != 0)) {
        evs__srv_job_error(j, 400, "EINVAL", "bad cursor");
        goto out;
    }
    if (has_cursor) {
        /* The cursor's time, unless the filter's is later. */
        json_object *ca = NULL;
        int64_t us = 0;
        if (json_object_object_get_ex(f, "created_after", &ca) &&
            json_object_is_type(ca, json_type_int)) {
            us = json_object_get_int64(ca);
        } else if (ca) {
            const char *s = json_object_get_string(ca);
            if (evs_time_parse(s, strlen(s), &us) != 0) {
                evs__srv_job_error(j, 400, "EPARSE",
                                   "created_after is not an RFC 3339 time");
                goto out;
            }
        }
        if (us < cur_us)
            json_object_object_add(f, "created_after",
                                   json_object_new_int64(cur_us));
    }
    /* Rows created in the cursor's microsecond come again and are
     * skipped: the page asks for that many more, and asks again, for all
     * of them, in the rare case they are more. */
    for (;;) {
        const char *fj;
        json_object_object_add(f, "limit",
                               json_object_new_int64(
                                   (int64_t)(has_cursor ? limit + 1 + ties
                                                        : limit + 1)));
        fj = json_object_to_json_string_ext(f, JSON_C_TO_STRING_PLAIN);
        rc = evs_inspect_list(sv->store, fj, &text, &err);
        if (rc != 0) {
            evs__srv_job_fail(j, rc, &err);
            goto out;
        }
        json_object_put(page);
        page = json_tokener_parse(text);
        evs_free(evs_store_allocator(sv->store), text);
        text = NULL;
        if (!page || !json_object_object_get_ex(page, "items", &items)) {
            evs__srv_job_error(j, 500, "EIO", "the listing is not readable");
            goto out;
        }
        n = json_object_array_length(items);
        skip = 0;
        while (has_cursor && skip < n) {
            json_object *it = json_object_array_get_idx(items, skip), *v;
            const char *ca, *id;
            int64_t us = 0;
            json_object_object_get_ex(it, "created_at", &v);
            ca = json_object_get_string(v);
            json_object_object_get_ex(it, "id", &v);
            id = json_object_get_string(v);
            if (ca && evs_time_parse(ca, strlen(ca), &us) == 0 &&
                us > cur_us)
                break;
            if (us == cur_us && strcmp(id, cur_id) > 0)
                break;
            skip++;
        }
        if (!has_cursor || skip < n || n < limit + 1 + ties)
            break;
        ties *= 16;
    }
    take = n - skip > limit ? limit : n - skip;
    EVS__JB_LIT(&j->out, "{\"items\":[");
    last = NULL;
    for (size_t i = 0; i < take; i++) {
        last = json_object_array_get_idx(items, skip + i);
        if (i)
            EVS__JB_LIT(&j->out, ",");
        evs__jb_str(&j->out, json_object_to_json_string_ext(
                                 last, JSON_C_TO_STRING_PLAIN));
    }
    EVS__JB_LIT(&j->out, "],\"next_cursor\":");
    if (n - skip > limit && last) {
        json_object *v;
        const char *ca, *id;
        int64_t us = 0;
        json_object_object_get_ex(last, "created_at", &v);
        ca = json_object_get_string(v);
        json_object_object_get_ex(last, "id", &v);
        id = json_object_get_string(v);
        if (ca && evs_time_parse(ca, strlen(ca), &us) == 0) {
            snprintf(cur, sizeof(cur), "%lld_%s", (long long)us, id);
            EVS__JB_LIT(&j->out, "\"");
            evs__jb_str(&j->out, cur);
            EVS__JB_LIT(&j->out, "\"");
        } else {
            /* A row without a snapshot has no time to go on from. */
            EVS__JB_LIT(&j->out, "null");
        }
    } else {
        EVS__JB_LIT(&j->out, "null");
    }
    if (!has_cursor) {
        json_object *t;
        json_object_object_get_ex(page, "total", &t);
        EVS__JB_LIT(&j->out, ",\"total\":");
        evs__jb_int(&j->out, json_object_get_int64(t));
    }
    EVS__JB_LIT(&j->out, "}\n");
out:
    json_object_put(page);
    json_object_put(f);
}

/* ------------------------------------------------------------------ */
/* One execution                                                      */
/* ------------------------------------------------------------------ */

void evs__srv_exec_get(srv_job *j)
{
    evs_error_info err;
    char *text;
    int rc = evs_inspect_status(j->sv->store, j->id, &text, &err);

    if (rc != 0) {
        evs__srv_job_fail(j, rc, &err);
        return;
    }
    take_view(j, text);
    EVS__JB_LIT(&j->out, "\n");
}

void evs__srv_exec_state(srv_job *j)
{
    evs_error_info err;
    uint64_t at = 0;
    char *text;
    int rc;

    if (evs__srv_query_u64(j->query, "at", &at) != 0) {
        evs__srv_job_error(j, 400, "EINVAL", "at must be a sequence");
        return;
    }
    if ((rc = evs_inspect_state(j->sv->store, j->id, at, &text, &err)) != 0) {
        evs__srv_job_fail(j, rc, &err);
        return;
    }
    EVS__JB_LIT(&j->out, "{\"id\":");
    evs__jb_quote(&j->out, evs_span_cstr(j->id));
    EVS__JB_LIT(&j->out, ",\"at\":");
    evs__jb_int(&j->out, (int64_t)at);
    EVS__JB_LIT(&j->out, ",\"state\":");
    take_view(j, text);
    EVS__JB_LIT(&j->out, "}\n");
}

void evs__srv_exec_lineage(srv_job *j)
{
    evs_error_info err;
    char *text;
    int rc = evs_inspect_chain(j->sv->store, j->id, &text, &err);

    if (rc != 0) {
        evs__srv_job_fail(j, rc, &err);
        return;
    }
    EVS__JB_LIT(&j->out, "{\"chain\":");
    take_view(j, text);
    EVS__JB_LIT(&j->out, "}\n");
}

/* ------------------------------------------------------------------ */
/* Creating                                                           */
/* ------------------------------------------------------------------ */

/* Whether existing execution `id` was created from definition text `def`
 * with `inputs` (as creation normalises them): 1 yes, 0 no, <0 error. */
static int same_creation(evs_server *sv, const char *id, evs_span def,
                         evs_span inputs)
{
    const evs_allocator *a = evs_store_allocator(sv->store);
    evs_snapshot *snap = NULL;
    evs_wf_def *d = NULL;
    char *norm = NULL, hex[17];
    size_t nlen;
    uint64_t h;
    int rc;

    if ((rc = evs_snapshot_load(sv->store, id, strlen(id), &snap, NULL)) ||
        (rc = evs_wf_parse(def.ptr, def.len, a, NULL, NULL, &d, NULL)) ||
        (rc = evs_wf_check_inputs(d, inputs, a, &norm, &nlen, NULL)) ||
        (rc = evs_json_hash(norm, nlen, a, &h)))
        goto out;
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)h);
    rc = evs__span_eq(snap->workflow_hash, evs_span_cstr(d->hash)) &&
         evs__span_eq(snap->inputs_hash, evs_span_cstr(hex));
out:
    evs_free(a, norm);
    evs_wf_free(d);
    evs_snapshot_free(snap);
    return rc;
}

/*
 * Creates one execution from a request object {workflow, inputs, id}
 * and writes its answer object to j->out: {"id","created":true|false,
 * "execution":STATUS} or an error document. Returns the HTTP status.
 */
static int create_one(srv_job *j, json_object *req)
{
    evs_server *sv = j->sv;
    const char *wf = NULL, *id = NULL;
    json_object *in = NULL;
    char *def = NULL, out_id[EVS_ID_MAX + 1], *status = NULL;
    const char *inputs = "";
    size_t dlen = 0, mark = j->out.len;
    evs_error_info err;
    int rc, created = 1, code = 201;

    if (member_str(j, req, "workflow", &wf) < 0 ||
        member_str(j, req, "id", &id) < 0)
        return j->status;
    if (!wf) {
        evs__srv_job_error(j, 400, "EPARSE", "\"workflow\" is required");
        return 400;
    }
    if (id && !evs_id_valid(id, strlen(id))) {
        evs__srv_job_error(j, 400, "EBADID", "\"id\" is not a valid "
                                             "execution id");
        return 400;
    }
    if (json_object_object_get_ex(req, "inputs", &in) && in) {
        if (!json_object_is_type(in, json_type_object)) {
            evs__srv_job_error(j, 400, "EPARSE",
                               "\"inputs\" must be an object");
            return 400;
        }
        inputs = json_object_to_json_string_ext(in, JSON_C_TO_STRING_PLAIN);
    }
    if ((rc = evs__srv_def_read(sv, wf, &def, &dlen)) != 0) {
        if (rc == -ENOENT || rc == EVS_EBADID)
            evs__srv_job_error(j, 404, "not_found",
                               "no definition of workflow '%s'%s", wf,
                               sv->defs_dir ? ""
                                            : " (the server was given no "
                                              "definitions)");
        else
            evs__srv_job_fail(j, rc, NULL);
        return j->status;
    }
    rc = evs_exec_start(sv->store, (evs_span){def, dlen},
                        evs_span_cstr(inputs), evs_span_cstr(id), out_id,
                        &err);
    if (rc == -EEXIST) {
        /* Idempotent on the id: the same creation again is answered as
         * the first was; another one under that id is a conflict. */
        int same = same_creation(sv, id, (evs_span){def, dlen},
                                 evs_span_cstr(inputs));
        if (same <= 0) {
            evs__srv_job_error(j, 409, "EEXIST",
                               "execution %s exists, %s", id,
                               same == 0 ? "created with another workflow "
                                           "or other inputs"
                                         : "and cannot be compared");
            goto out;
        }
        snprintf(out_id, sizeof(out_id), "%s", id);
        created = 0;
        code = 200;
        rc = 0;
    }
    if (rc != 0) {
        evs__srv_job_fail(j, rc, &err);
        goto out;
    }
    if (created)
        note_created(j, out_id);
    rc = evs_inspect_status(sv->store, out_id, &status, &err);
    j->out.len = mark;
    EVS__JB_LIT(&j->out, "{\"id\":");
    evs__jb_quote(&j->out, evs_span_cstr(out_id));
    EVS__JB_LIT(&j->out, ",\"created\":");
    evs__jb_str(&j->out, created ? "true" : "false");
    EVS__JB_LIT(&j->out, ",\"execution\":");
    if (rc == 0)
        take_view(j, status);
    else
        EVS__JB_LIT(&j->out, "null");
    EVS__JB_LIT(&j->out, "}");
out:
    free(def);
    return j->status = rc == 0 ? code : j->status;
}

void evs__srv_exec_create(srv_job *j)
{
    json_object *req = body_object(j);

    if (!req)
        return;
    j->status = create_one(j, req);
    if (!j->out.err)
        EVS__JB_LIT(&j->out, "\n");
    json_object_put(req);
}

void evs__srv_exec_batch(srv_job *j)
{
    json_object *req = body_object(j), *list;
    size_t n;

    if (!req)
        return;
    if (!json_object_object_get_ex(req, "executions", &list) ||
        !json_object_is_type(list, json_type_array)) {
        evs__srv_job_error(j, 400, "EPARSE",
                           "\"executions\" must be an array");
        goto out;
    }
    n = json_object_array_length(list);
    if (n > j->sv->opts.max_batch) {
        evs__srv_job_error(j, 413, "too_many",
                           "a batch creates at most %zu executions",
                           j->sv->opts.max_batch);
        goto out;
    }
    /* Each item on its own: one refused does not stop the others, and
     * its answer takes its place in "results". */
    EVS__JB_LIT(&j->out, "{\"results\":[");
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(list, i);
        evs__jbuf whole, one = {0};
        size_t l;

        if (i)
            EVS__JB_LIT(&j->out, ",");
        if (!json_object_is_type(it, json_type_object)) {
            evs__jb_str(&j->out, "{\"error\":{\"code\":\"EPARSE\","
                                 "\"message\":\"not an object\"}}");
            continue;
        }
        /* create_one writes its answer, or an error document, into a
         * buffer of its own, which then takes its place in the array. */
        whole = j->out;
        j->out = one;
        create_one(j, it);
        one = j->out;
        j->out = whole;
        if (one.err)
            j->out.err = one.err;
        for (l = one.len; l && one.p[l - 1] == '\n'; l--)
            ;
        evs__jb_raw(&j->out, one.p, l);
        evs__jb_free(&one);
    }
    EVS__JB_LIT(&j->out, "]}\n");
    j->status = 200;
out:
    json_object_put(req);
}

/* ------------------------------------------------------------------ */
/* Requests to a running execution                                    */
/* ------------------------------------------------------------------ */

/* A control request's `reason`: a string, recorded as that string, or
 * any other JSON value, recorded as it is; into *out (owned, NUL-
 * terminated, NULL if none). Returns 0, or -1 after answering. */
static int reason_of(srv_job *j, json_object *req, char **out)
{
    json_object *v;
    const char *text;
    size_t n;

    *out = NULL;
    if (!json_object_object_get_ex(req, "reason", &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        *out =
            strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        goto out;
    }
    text = json_object_get_string(v);
    n = evs_json_quote(evs_span_cstr(text), NULL, 0);
    if (n == (size_t)-1) {
        evs__srv_job_error(j, 400, "EPARSE", "the reason is not UTF-8");
        return -1;
    }
    if ((*out = malloc(n + 1))) {
        evs_json_quote(evs_span_cstr(text), *out, n);
        (*out)[n] = '\0';
    }
out:
    if (!*out) {
        evs__srv_job_error(j, 500, "ENOMEM", "out of memory");
        return -1;
    }
    return 0;
}

void evs__srv_exec_request(srv_job *j)
{
    json_object *req = body_object(j), *payload = NULL;
    const char *type = NULL, *kind = j->name, *by = j->caller;
    char *reason = NULL;
    evs_span t = {0}, p = {0};
    int rc;

    if (!req)
        return;
    if (strcmp(kind, "event") == 0) {
        if (member_str(j, req, "type", &type) < 0)
            goto out;
        if (!type || !type[0]) {
            evs__srv_job_error(j, 400, "EPARSE", "\"type\" is required");
            goto out;
        }
        t = evs_span_cstr(type);
        if (json_object_object_get_ex(req, "payload", &payload))
            p = evs_span_cstr(json_object_to_json_string_ext(
                payload, JSON_C_TO_STRING_PLAIN));
        by = "";
    } else {
        /* Who asks: the body's claim, else the caller's address. */
        if (member_str(j, req, "by", &by) < 0 || reason_of(j, req, &reason))
            goto out;
        if (strlen(by) > EVS_BY_MAX || !by[0]) {
            evs__srv_job_error(j, 400, "EPARSE",
                               "\"by\" must be 1 to %d bytes", EVS_BY_MAX);
            goto out;
        }
        if (reason)
            p = evs_span_cstr(reason);
    }
    rc = evs_orch_post_by(j->sv->store, evs_span_cstr(j->id),
                          evs_span_cstr(kind), t, p, evs_span_cstr(by));
    if (rc == EVS_EFINISHED) {
        evs__srv_job_error(j, 409, "EFINISHED",
                           "execution %s has ended; request refused", j->id);
        goto out;
    }
    if (rc != 0) {
        evs__srv_job_fail(j, rc, NULL);
        goto out;
    }
    EVS__JB_LIT(&j->out, "{\"id\":");
    evs__jb_quote(&j->out, evs_span_cstr(j->id));
    EVS__JB_LIT(&j->out, ",\"request\":");
    evs__jb_quote(&j->out, evs_span_cstr(kind));
    EVS__JB_LIT(&j->out, ",\"accepted\":true}\n");
    j->status = 200;
out:
    free(reason);
    json_object_put(req);
}

/* ------------------------------------------------------------------ */
/* Restart and retry                                                  */
/* ------------------------------------------------------------------ */

void evs__srv_exec_retry(srv_job *j)
{
    json_object *req = body_object(j);
    const char *sname = "from_start", *opts;
    char new_id[EVS_ID_MAX + 1], *status = NULL, strategy[32];
    evs_error_info err;
    int rc;

    if (!req)
        return;
    if (j->route == SRV_EXEC_RETRY) {
        if (member_str(j, req, "strategy", &sname) < 0)
            goto out;
        if (!json_object_object_get_ex(req, "strategy", NULL)) {
            evs__srv_job_error(j, 400, "EPARSE",
                               "\"strategy\" is required: from_start, "
                               "from_failure, with_new_inputs, skip_failed "
                               "or from_seq");
            goto out;
        }
    }
    /* Copied: the member goes with its object. */
    snprintf(strategy, sizeof(strategy), "%s", sname);
    json_object_object_del(req, "strategy");
    /* restart is from_start; its body may name the successor's id. */
    opts = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    rc = evs_exec_retry_json(j->sv->store, j->id, strategy, opts, new_id,
                             &err);
    if (rc != 0) {
        evs__srv_job_fail(j, rc, &err);
        goto out;
    }
    note_created(j, new_id);
    EVS__JB_LIT(&j->out, "{\"id\":");
    evs__jb_quote(&j->out, evs_span_cstr(new_id));
    EVS__JB_LIT(&j->out, ",\"retry_of\":");
    evs__jb_quote(&j->out, evs_span_cstr(j->id));
    EVS__JB_LIT(&j->out, ",\"strategy\":");
    evs__jb_quote(&j->out, evs_span_cstr(strategy));
    EVS__JB_LIT(&j->out, ",\"execution\":");
    if (evs_inspect_status(j->sv->store, new_id, &status, NULL) == 0)
        take_view(j, status);
    else
        EVS__JB_LIT(&j->out, "null");
    EVS__JB_LIT(&j->out, "}\n");
    j->status = 201;
out:
    json_object_put(req);
}
