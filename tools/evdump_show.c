/*
 * evdump_show.c: `evdump show` and `evdump tail`, which print events in
 * the same two forms: aligned rows for people, or the log's own lines.
 *
 * Both read through cursors, so every line printed has been verified,
 * and tail seeks to its start instead of scanning the log.
 */
#include "evdump.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Column widths of the human form; longer values push the row right. */
#define TYPE_W 20
#define PATH_W 10
#define STEP_W 14
/* A data preview keeps at least this many columns, however narrow the
 * terminal. */
#define DATA_MIN 16

typedef struct printer {
    int json;
    int seq_w;
    /* filters: an event is shown if it matches any of each list given */
    char **types;
    size_t ntypes;
    char **paths;
    size_t npaths;
} printer;

static int digits(uint64_t v)
{
    int n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static int span_in(evs_span s, char **list, size_t n)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == s.len && memcmp(list[i], s.ptr, s.len) == 0)
            return 1;
    return 0;
}

static const char *type_color(evs_span t)
{
    static const char failed[] = "_failed", done[] = "_completed";

    if (t.len >= sizeof(failed) - 1 &&
        memcmp(t.ptr + t.len - (sizeof(failed) - 1), failed,
               sizeof(failed) - 1) == 0)
        return c_red();
    if (t.len >= sizeof(done) - 1 &&
        memcmp(t.ptr + t.len - (sizeof(done) - 1), done, sizeof(done) - 1) == 0)
        return c_green();
    return c_cyan();
}

/* Writes a padded cell and returns the columns it took. */
static size_t cell(evs_span v, size_t width, const char *color)
{
    size_t n;

    if (v.len == 0)
        v = evs_span_cstr("-");
    out_printf("%s", color);
    n = out_text(v, 0);
    out_printf("%s", *color ? c_off() : "");
    for (; n < width; n++)
        out_write(" ", 1);
    out_write("  ", 2);
    return n + 2;
}

static int is_type(evs_span t, const char *name)
{
    return t.len == strlen(name) && memcmp(t.ptr, name, t.len) == 0;
}

/* What a takeover record says, in words (FORMAT.md §6): a runner took
 * the execution over, or an attempt in flight then was dispatched
 * again. 0 if ev is neither (or its data is not an object). */
static int takeover_text(const evs_event *ev, char *buf, size_t cap)
{
    json_tokener *tok;
    json_object *o;
    int n = 0;

    if (!is_type(ev->event_type, EVS_EV_EXECUTION_TAKEN_OVER) &&
        !is_type(ev->event_type, EVS_EV_STEP_REDISPATCHED))
        return 0;
    if (!(tok = json_tokener_new()))
        return 0;
    o = json_tokener_parse_ex(tok, ev->data.ptr, (int)ev->data.len);
    json_tokener_free(tok);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return 0;
    }
    if (ev->event_type.ptr[0] == 'e') {
        json_object *prev;
        n = snprintf(buf, cap,
                     "runner %s (host %s, pid %lld) took over after seq %lld",
                     dump_member(o, "runner"), dump_member(o, "host"), (long long)dump_member_int(o, "pid"),
                     (long long)dump_member_int(o, "from_seq"));
        if (n > 0 && (size_t)n < cap &&
            json_object_object_get_ex(o, "previous_runner", &prev))
            snprintf(buf + n, cap - (size_t)n, " from runner %s",
                     dump_member(o, "previous_runner"));
    } else {
        n = snprintf(buf, cap,
                     "attempt %lld dispatched again by the takeover at seq "
                     "%lld, key %s",
                     (long long)dump_member_int(o, "attempt"), (long long)dump_member_int(o, "takeover_seq"),
                     dump_member(o, "idempotency_key"));
    }
    json_object_put(o);
    return n > 0;
}

static void print_event(const printer *p, const evs_event *ev, evs_span raw)
{
    char t[40], why[512];
    size_t cols, max = 0;

    if (p->json) {
        out_write(raw.ptr, raw.len);
        return;
    }
    fmt_time(ev->timestamp_us, 0, t);
    out_printf("%*" PRIu64 "  %s%s%s  ", p->seq_w, ev->sequence, c_dim(), t,
               c_off());
    cols = (size_t)p->seq_w + 2 + strlen(t) + 2;
    cols += cell(ev->event_type, TYPE_W, type_color(ev->event_type));
    cols += cell(ev->path_id, PATH_W, "");
    cols += cell(ev->step_name, STEP_W, "");
    if (g_term.width)
        max = (size_t)g_term.width > cols + DATA_MIN
                  ? (size_t)g_term.width - cols
                  : DATA_MIN;
    if (takeover_text(ev, why, sizeof(why))) {
        out_printf("%s", c_bold());
        out_text(evs_span_cstr(why), max);
        out_printf("%s", c_off());
    } else {
        out_text(ev->data, max);
    }
    out_write("\n", 1);
}

/*
 * Prints the events [from, to] of `l` that pass the filters; *last gets
 * the last sequence read. Returns 0 or an exit code after reporting.
 */
static int print_range(const printer *p, evs_log *l, uint64_t from, uint64_t to,
                       uint64_t *last)
{
    evs_error_info info;
    evs_cursor *c;
    evs_event ev;
    evs_span raw;
    int rc;

    rc = evs_cursor_open(l, from, to, &c, &info);
    if (rc != 0)
        return fail_evs(rc, &info, evs_log_id(l));
    while ((rc = evs_cursor_next(c, &ev, &raw, &info)) == 1) {
        if (last)
            *last = ev.sequence;
        if (span_in(ev.event_type, p->types, p->ntypes) &&
            span_in(ev.path_id, p->paths, p->npaths))
            print_event(p, &ev, raw);
        if (out_broken())
            break;
    }
    evs_cursor_close(c);
    if (rc < 0)
        return fail_evs(rc, &info, evs_log_id(l));
    return 0;
}

/* print_range over the log of a bundle. */
static int print_bundle(printer *p, const char *path, uint64_t from,
                        uint64_t to)
{
    evs_bundle *b = NULL;
    uint64_t pos = 0;
    evs_event ev;
    evs_span raw;
    int rc;

    if ((rc = open_bundle(path, &b)) != 0)
        return rc;
    p->seq_w = digits(evs_bundle_info(b)->last_seq);
    if (p->seq_w < 3)
        p->seq_w = 3;
    while ((rc = evs_bundle_next(b, &pos, &ev, &raw)) == 1 && !out_broken()) {
        if (ev.sequence < from || (to && ev.sequence > to))
            continue;
        if (span_in(ev.event_type, p->types, p->ntypes) &&
            span_in(ev.path_id, p->paths, p->npaths))
            print_event(p, &ev, raw);
    }
    evs_bundle_close(b);
    if (rc < 0)
        return fail("%s: reading the log: %s (%s)", path, evs_strerror(rc),
                    evs_err_name(rc));
    return 0;
}

/* Opens the store and a reader of the execution; reports failures.
 * *rec gets what follows the end of the log. */
static int open_reader(const char *store, const char *id, evs_store **st,
                       evs_log **l, evs_recovery_info *rec)
{
    evs_error_info info;
    int rc;

    if ((rc = open_store(store, st)) != 0)
        return rc;
    rc = evs_log_open(*st, id, strlen(id), 0, l, rec, &info);
    if (rc != 0) {
        rc = fail_exec(rc, &info, store, id);
        evs_store_close(*st);
        *st = NULL;
    }
    return rc;
}

/*
 * Says on stderr what follows the end of the log, if anything (FORMAT.md
 * §4, "The tail"): an unfinished append (which a writer may still be
 * writing, or which the next writer cuts back), or a damaged one, which
 * is damage. Returns EXIT_DAMAGE for a damaged one, else 0.
 */
static int note_tail(const char *id, const evs_recovery_info *rec)
{
    unsigned long long first = rec->tail_first,
                       last = rec->tail_first + rec->tail_count - 1;

    if (rec->tail_bytes == 0)
        return 0;
    if (!rec->tail_damaged) {
        note("%s: an unfinished append follows the end, at byte %" PRIu64
             ": %" PRIu64 " bytes, %" PRIu64 " of its lines complete "
             "(sequences %llu..%llu); it is not part of the log",
             id, rec->end_offset, rec->tail_bytes, rec->tail_lines, first,
             last);
        return 0;
    }
    note("%s: a damaged append follows the end, at byte %" PRIu64
         " (sequences %llu..%llu, %" PRIu64 " of its lines check out): "
         "the line of sequence %" PRIu64 " at byte %" PRIu64 " fails (%s); "
         "it is not part of the log, and `evdump verify` details it",
         id, rec->end_offset, first, last, rec->tail_lines, rec->bad_sequence,
         rec->bad_offset, rec->bad_kind);
    return EXIT_DAMAGE;
}

int cmd_show(int argc, char **argv)
{
    static const struct option lo[] = {
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"type", required_argument, NULL, OPT_TYPE},
        {"path", required_argument, NULL, OPT_PATH},
        {"json", no_argument, NULL, OPT_JSON},
        OPT_HELP,
        OPT_END};
    printer p;
    evs_recovery_info rec;
    evs_store *st = NULL;
    evs_log *l = NULL;
    uint64_t from = 1, to = 0;
    int c, rc;

    memset(&p, 0, sizeof(p));
    /* The filter lists are never longer than the arguments. */
    p.types = calloc((size_t)argc + 1, sizeof(char *));
    p.paths = calloc((size_t)argc + 1, sizeof(char *));
    if (!p.types || !p.paths) {
        rc = fail("out of memory");
        goto out;
    }
    while ((c = next_opt("show", argc, argv, "", lo)) != -1) {
        rc = 0;
        switch (c) {
        case 'h': print_help("show"); goto out;
        case OPT_FROM:
            rc = parse_num("show", "--from", optarg, 1, UINT64_MAX, &from);
            break;
        case OPT_TO:
            rc = parse_num("show", "--to", optarg, 1, UINT64_MAX, &to);
            break;
        case OPT_TYPE: p.types[p.ntypes++] = optarg; break;
        case OPT_PATH: p.paths[p.npaths++] = optarg; break;
        case OPT_JSON: p.json = 1; break;
        default: rc = -c;
        }
        if (rc)
            goto out;
    }
    rc = EXIT_USAGE;
    if (to && to < from) {
        usage_error("show", "--to %" PRIu64 " is before --from %" PRIu64, to,
                    from);
        goto out;
    }
    if (argc - optind == 1 && is_bundle_path(argv[optind])) {
        rc = print_bundle(&p, argv[optind], from, to);
        goto out;
    }
    if (positionals("show", argc, argv, 2, 2, "STORE EXEC") != 0)
        goto out;
    if ((rc = open_reader(argv[optind], argv[optind + 1], &st, &l, &rec)) !=
        0)
        goto out;
    p.seq_w = digits(evs_log_last_seq(l));
    if (p.seq_w < 3)
        p.seq_w = 3;
    rc = print_range(&p, l, from, to, NULL);
    out_flush();
    if (rc == 0)
        rc = note_tail(evs_log_id(l), &rec);
out:
    evs_log_close(l);
    evs_store_close(st);
    free(p.types);
    free(p.paths);
    return rc;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Polls the log for appends until a signal comes or the output breaks. */
static int follow(printer *p, evs_log *l, uint64_t printed)
{
    struct sigaction sa;
    int rc = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: the signal cuts the sleep short. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!g_stop && !out_broken()) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        uint64_t last;

        nanosleep(&ts, NULL);
        if (g_stop)
            break;
        rc = evs_log_refresh(l);
        if (rc != 0)
            return fail("%s: following the log: %s (%s)", evs_log_id(l),
                        evs_strerror(rc), evs_err_name(rc));
        last = evs_log_last_seq(l);
        if (last <= printed)
            continue;
        if (digits(last) > p->seq_w)
            p->seq_w = digits(last);
        rc = print_range(p, l, printed + 1, last, &printed);
        if (rc != 0)
            return rc;
        out_flush();
    }
    return 0;
}

int cmd_tail(int argc, char **argv)
{
    static const struct option lo[] = {{"lines", required_argument, NULL, 'n'},
                                       {"follow", no_argument, NULL, 'f'},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       OPT_HELP,
                                       OPT_END};
    printer p;
    evs_recovery_info rec;
    evs_store *st = NULL;
    evs_log *l = NULL;
    uint64_t n = 10, last, printed;
    int c, rc, fol = 0, damage;

    memset(&p, 0, sizeof(p));
    while ((c = next_opt("tail", argc, argv, "n:f", lo)) != -1) {
        switch (c) {
        case 'h': print_help("tail"); return EXIT_OKAY;
        case 'n':
            if ((rc = parse_num("tail", "-n", optarg, 0, UINT64_MAX, &n)))
                return rc;
            break;
        case 'f': fol = 1; break;
        case OPT_JSON: p.json = 1; break;
        default: return -c;
        }
    }
    if ((rc = positionals("tail", argc, argv, 2, 2, "STORE EXEC")) != 0)
        return rc;
    if ((rc = open_reader(argv[optind], argv[optind + 1], &st, &l, &rec)) != 0)
        return rc;
    last = evs_log_last_seq(l);
    p.seq_w = digits(last);
    if (p.seq_w < 3)
        p.seq_w = 3;
    printed = last > n ? last - n : 0;
    if (printed < last)
        rc = print_range(&p, l, printed + 1, last, &printed);
    out_flush();
    damage = rc == 0 ? note_tail(evs_log_id(l), &rec) : 0;
    if (rc == 0 && fol)
        rc = follow(&p, l, last);
    if (rc == 0)
        rc = damage;
    evs_log_close(l);
    evs_store_close(st);
    return rc;
}
