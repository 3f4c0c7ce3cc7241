/*
 * evdump_import.c: `evdump import`, which appends JSON Lines events
 * (evstore's own or Dive's) to an execution, creating it if needed.
 *
 * The input is streamed, not loaded: every line is decoded and checked
 * (sequence, execution id, and that it can be written as a canonical
 * line) before it joins a batch, and a batch is appended atomically only
 * once all its lines passed. So a bad line never gets any part of its
 * batch into the log, while batches before it stay.
 */
#include "evdump.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* An append holds at most this many events or about this many bytes. */
#define BATCH_EVENTS 1000
#define BATCH_BYTES ((size_t)8 << 20)

typedef struct importer {
    evs_store *st;
    const char *store;
    const char *id;
    size_t id_len;
    const char *src;  /* input name for messages */
    int exists;       /* the execution is there */
    evs_log *log;     /* its writer, once opened */
    uint64_t next;    /* the sequence the next line must carry */
    uint64_t first;   /* first sequence imported, 0 if none yet */
    uint64_t written; /* events appended so far */
    size_t max_line;
    evs_event_owned batch[BATCH_EVENTS];
    evs_event views[BATCH_EVENTS];
    size_t nb;
    size_t bytes;
    char *enc; /* scratch for the encoding check */
    size_t enc_cap;
} importer;

static void batch_clear(importer *im)
{
    for (size_t i = 0; i < im->nb; i++)
        evs_event_free(&im->batch[i]);
    im->nb = 0;
    im->bytes = 0;
}

/* What has been written so far, for the end of an error message. */
static void written_note(const importer *im, char *buf, size_t cap)
{
    if (im->written == 0)
        snprintf(buf, cap, "nothing was written");
    else
        snprintf(buf, cap,
                 "the %" PRIu64 " events written before it (seq %" PRIu64
                 "..%" PRIu64 ") stay in the log",
                 im->written, im->first, im->first + im->written - 1);
}

static int line_error(const importer *im, size_t lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int line_error(const importer *im, size_t lineno, const char *fmt, ...)
{
    char why[512], done[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    written_note(im, done, sizeof(done));
    return fail("%s: line %zu: %s; %s", im->src, lineno, why, done);
}

/* The workflow name a new execution is listed under: data.workflow_name
 * of an execution_started first event, as Dive records it. */
static char *workflow_name_of(const evs_event *ev)
{
    struct json_tokener *tok;
    struct json_object *o, *v;
    char *name = NULL;

    if (ev->event_type.len != strlen(EVS_EV_EXECUTION_STARTED) ||
        memcmp(ev->event_type.ptr, EVS_EV_EXECUTION_STARTED,
               ev->event_type.len) != 0 ||
        ev->data.len > INT32_MAX)
        return NULL;
    tok = json_tokener_new();
    if (!tok)
        return NULL;
    o = json_tokener_parse_ex(tok, ev->data.ptr, (int)ev->data.len);
    if (o && json_object_object_get_ex(o, "workflow_name", &v) &&
        json_object_is_type(v, json_type_string))
        name = strdup(json_object_get_string(v));
    json_object_put(o);
    json_tokener_free(tok);
    return name;
}

static int open_writer(importer *im)
{
    evs_recovery_info rec;
    evs_error_info info;
    int rc;

    rc = evs_log_open(im->st, im->id, im->id_len, EVS_LOG_WRITE, &im->log, &rec,
                      &info);
    if (rc != 0)
        return fail_exec(rc, &info, im->store, im->id);
    if (rec.cut_bytes)
        note("%s: repaired a torn tail first: cut %" PRIu64 " bytes at "
             "byte %" PRIu64 ", removing sequences %" PRIu64 "..%" PRIu64
             " (%" PRIu64 " lines of an unfinished append), saved beside "
             "the log as %s",
             im->id, rec.cut_bytes, rec.cut_offset, rec.tail_first,
             rec.tail_first + rec.tail_count - 1, rec.cut_events,
             rec.saved_as);
    return 0;
}

/* Appends the batch in one atomic append (or creates the execution with
 * it). Returns 0 or an exit code after reporting. */
static int flush(importer *im)
{
    evs_error_info info;
    uint64_t first;
    int rc;

    if (im->nb == 0)
        return 0;
    for (size_t i = 0; i < im->nb; i++)
        im->views[i] = im->batch[i].ev;
    first = im->views[0].sequence;
    if (!im->exists) {
        evs_snapshot snap;
        char *wf = workflow_name_of(&im->views[0]);

        memset(&snap, 0, sizeof(snap));
        snap.status = evs_span_cstr("running");
        snap.workflow_name = evs_span_cstr(wf);
        rc = evs_exec_create(im->st, im->id, im->id_len, &snap, im->views,
                             im->nb);
        free(wf);
        if (rc == -EEXIST)
            return fail("%s: created by someone else during the import; "
                        "nothing was written",
                        im->id);
        if (rc != 0)
            return fail("%s: creating the execution: %s (%s)", im->id,
                        evs_strerror(rc), evs_err_name(rc));
        im->exists = 1;
    } else {
        if (!im->log && (rc = open_writer(im)) != 0)
            return rc;
        rc = evs_log_append(im->log, im->views, im->nb, first - 1, &info);
        if (rc != 0) {
            char done[160];
            written_note(im, done, sizeof(done));
            return fail("%s: appending seq %" PRIu64 "..%" PRIu64 ": %s "
                        "(%s); %s",
                        im->id, first, first + im->nb - 1,
                        info.msg[0] ? info.msg : evs_strerror(rc),
                        evs_err_name(rc), done);
        }
    }
    if (im->first == 0)
        im->first = first;
    im->written += im->nb;
    batch_clear(im);
    return 0;
}

/* Checks one decoded event and adds it to the batch. */
static int take(importer *im, size_t lineno, const evs_event *ev)
{
    evs_event e = *ev;
    size_t need, len;
    int rc;

    if (ev->execution_id.len &&
        (ev->execution_id.len != im->id_len ||
         memcmp(ev->execution_id.ptr, im->id, im->id_len) != 0))
        return line_error(
            im, lineno, "execution_id '%.*s' is not '%s'",
            (int)(ev->execution_id.len > 64 ? 64 : ev->execution_id.len),
            ev->execution_id.ptr, im->id);
    if (ev->sequence != im->next) {
        if (!im->exists && im->next == 1)
            return line_error(im, lineno,
                              "sequence %" PRIu64 ": a new execution must "
                              "begin at sequence 1",
                              ev->sequence);
        return line_error(
            im, lineno, "sequence %" PRIu64 " %s (expected %" PRIu64 ")",
            ev->sequence,
            ev->sequence < im->next ? "is a duplicate" : "leaves a gap",
            im->next);
    }
    /* Encode it as the append will, with the widest batch field it can
     * get, so the append cannot refuse it later. */
    e.execution_id.ptr = im->id;
    e.execution_id.len = im->id_len;
    e.batch_first = e.sequence;
    e.batch_count = BATCH_EVENTS;
    need = evs_line_encoded_max(&e);
    if (need > im->enc_cap) {
        char *nb = realloc(im->enc, need);
        if (!nb)
            return fail("out of memory");
        im->enc = nb;
        im->enc_cap = need;
    }
    rc = evs_line_encode(&e, im->enc, im->enc_cap, &len);
    if (rc != 0)
        return line_error(im, lineno,
                          "cannot be written as an evstore "
                          "event: %s",
                          evs_strerror(rc));
    if (len > im->max_line)
        return line_error(im, lineno,
                          "the event needs a line of %zu bytes, "
                          "over the store's maximum of %zu",
                          len, im->max_line);
    if (evs_event_copy(&e, NULL, &im->batch[im->nb]) != 0)
        return fail("out of memory");
    /* The batch field is the append's business. */
    im->batch[im->nb].ev.batch_first = 0;
    im->batch[im->nb].ev.batch_count = 0;
    im->nb++;
    im->bytes += len;
    im->next++;
    if (im->nb == BATCH_EVENTS || im->bytes >= BATCH_BYTES)
        return flush(im);
    return 0;
}

static int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t')
            return 0;
    return 1;
}

static int run(importer *im, FILE *in)
{
    evs_decoder dec;
    evs_error_info info;
    evs_event ev;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = 0;

    evs_decoder_init(&dec, NULL);
    while ((got = getline(&line, &cap, in)) >= 0) {
        size_t n = (size_t)got;

        lineno++;
        if (n && line[n - 1] == '\n')
            n--;
        if (n && line[n - 1] == '\r')
            n--;
        if (is_blank(line, n))
            continue;
        rc = evs_line_decode(&dec, line, n, EVS_DECODE_FOREIGN, &ev, &info);
        if (rc == -ENOMEM) {
            rc = fail("out of memory");
            break;
        }
        if (rc != 0) {
            rc = line_error(im, lineno, "%s",
                            info.msg[0] ? info.msg : evs_strerror(rc));
            break;
        }
        if ((rc = take(im, lineno, &ev)) != 0)
            break;
    }
    if (rc == 0 && ferror(in))
        rc = fail("reading %s: %s", im->src, strerror(errno));
    if (rc == 0)
        rc = flush(im);
    free(line);
    evs_decoder_free(&dec);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    static const struct option lo[] = {OPT_HELP, OPT_END};
    const char *path = NULL;
    importer *im;
    FILE *in = stdin;
    int c, rc;

    while ((c = next_opt("import", argc, argv, "", lo)) != -1) {
        if (c == 'h') {
            print_help("import");
            return EXIT_OKAY;
        }
        return -c;
    }
    if ((rc = positionals("import", argc, argv, 2, 3, "STORE EXEC")) != 0)
        return rc;
    im = calloc(1, sizeof(*im));
    if (!im)
        return fail("out of memory");
    im->store = argv[optind];
    im->id = argv[optind + 1];
    im->id_len = strlen(im->id);
    im->src = "stdin";
    if (argc - optind == 3 && strcmp(argv[optind + 2], "-") != 0)
        path = im->src = argv[optind + 2];
    if (!evs_id_valid(im->id, im->id_len)) {
        rc = fail("'%s' is not a valid execution id", im->id);
        goto out;
    }
    if ((rc = open_store(im->store, &im->st)) != 0)
        goto out;
    im->max_line = evs_store_get_opts(im->st)->max_line;
    im->exists = evs_exec_exists(im->st, im->id, im->id_len);
    if (!im->exists) {
        /* Missing, or there but refused (a log that is a link or a
         * FIFO): only a missing one is created. */
        evs_error_info info;
        rc = probe_exec(im->st, im->id, &info);
        if (rc != 0 && rc != -ENOENT) {
            rc = fail_exec(rc, &info, im->store, im->id);
            goto out;
        }
    }
    im->next = 1;
    if (im->exists) {
        if ((rc = open_writer(im)) != 0)
            goto out;
        im->next = evs_log_last_seq(im->log) + 1;
    }
    if (path) {
        in = fopen(path, "re");
        if (!in) {
            in = stdin;
            rc = fail("cannot read %s: %s", im->src, strerror(errno));
            goto out;
        }
    }
    rc = run(im, in);
    if (rc == 0 && !im->exists)
        rc = fail("%s: no events in %s; the execution was not created", im->id,
                  im->src);
    if (rc == 0 && im->written)
        out_printf("imported %" PRIu64 " events (seq %" PRIu64 "..%" PRIu64
                   ")\n",
                   im->written, im->first, im->first + im->written - 1);
    else if (rc == 0)
        out_printf("imported 0 events\n");
out:
    if (in != stdin)
        fclose(in);
    batch_clear(im);
    free(im->enc);
    evs_log_close(im->log);
    evs_store_close(im->st);
    free(im);
    return rc;
}
