/*
 * evdump_copy.c: `evdump copy SRC DST [EXEC...]`, which copies executions
 * from one store to another, of any two backends (eventstore/BACKENDS.md),
 * and checks each copy.
 *
 * An execution is read through the source's cursor and written to the
 * destination append by append, as the source's log was written (a line
 * carries its append's framing, FORMAT.md §3, so the same bytes need the
 * same appends): the first creates it there, with the source's snapshot
 * header, so that it never exists in the destination without its first
 * events. Then the
 * source's snapshot is saved over it (as a cache of the log: the log is
 * the truth), and both logs are read again side by side: every line of
 * the copy must be the source's, byte for byte. A copy that differs, or
 * that fails half-way, is deleted from the destination, so that an
 * execution there is either a whole, checked copy or absent.
 */
#include "evdump.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct copier {
    evs_store *src, *dst;
    const char *src_name, *dst_name;
    /* One append of the source's, as it is read. */
    evs_event_owned *batch;
    evs_event *views;
    size_t nb, cap;
} copier;

static void batch_clear(copier *c)
{
    for (size_t i = 0; i < c->nb; i++)
        evs_event_free(&c->batch[i]);
    c->nb = 0;
}

/* Adds a copy of ev to the batch. Returns 0 or -ENOMEM. */
static int batch_add(copier *c, const evs_event *ev)
{
    if (c->nb == c->cap) {
        size_t n = c->cap ? c->cap * 2 : 64;
        evs_event_owned *b = realloc(c->batch, n * sizeof(*b));
        evs_event *v;
        if (!b)
            return -ENOMEM;
        c->batch = b;
        if (!(v = realloc(c->views, n * sizeof(*v))))
            return -ENOMEM;
        c->views = v;
        c->cap = n;
    }
    if (evs_event_copy(ev, NULL, &c->batch[c->nb]) != 0)
        return -ENOMEM;
    c->nb++;
    return 0;
}

/* Whether ev belongs to the append the batch holds: the lines of an
 * append of two or more events carry its first sequence and count. */
static int same_append(const copier *c, const evs_event *ev)
{
    const evs_event *f = &c->batch[0].ev;

    return f->batch_count >= 2 && ev->batch_count == f->batch_count &&
           ev->batch_first == f->batch_first;
}

/* Writes the batch: creates `id` in the destination with `snap` (the
 * source's header) when *log is NULL, else appends. Returns 0 or an
 * exit code after reporting. */
static int flush(copier *c, const char *id, const evs_snapshot *snap,
                 evs_log **log, uint64_t *last)
{
    evs_error_info info;
    int rc;

    if (c->nb == 0)
        return 0;
    for (size_t i = 0; i < c->nb; i++)
        c->views[i] = c->batch[i].ev;
    memset(&info, 0, sizeof(info));
    if (!*log) {
        evs_snapshot first;
        /* The header as the source has it (none: the defaults), at the
         * creation's sequence. */
        if (snap)
            first = *snap;
        else
            memset(&first, 0, sizeof(first));
        first.last_event_seq = 0;
        first.state = (evs_span){0};
        rc = evs_exec_create(c->dst, id, strlen(id), snap ? &first : NULL,
                             c->views, c->nb);
        if (rc == -EEXIST)
            return fail("%s: already in %s; nothing was copied for it", id,
                        c->dst_name);
        if (rc == 0)
            rc = evs_log_open(c->dst, id, strlen(id), EVS_LOG_WRITE, log, NULL,
                              &info);
    } else {
        rc = evs_log_append(*log, c->views, c->nb, *last, &info);
    }
    if (rc != 0)
        return fail("%s: writing seq %" PRIu64 "..%" PRIu64 " to %s: %s (%s)",
                    id, *last + 1, *last + c->nb, c->dst_name,
                    info.msg[0] ? info.msg : evs_strerror(rc),
                    evs_err_name(rc));
    *last += c->nb;
    batch_clear(c);
    return 0;
}

/* Reads both logs side by side: 0 when every line of the copy is the
 * source's, byte for byte, and there are as many; else reports. */
static int check_copy(copier *c, const char *id, uint64_t *events,
                      uint64_t *bytes)
{
    evs_log *a = NULL, *b = NULL;
    evs_cursor *ca = NULL, *cb = NULL;
    evs_error_info info;
    evs_event ea, eb;
    evs_span ra, rb;
    int rc, na, nb, ret = EXIT_ERROR;

    *events = *bytes = 0;
    memset(&info, 0, sizeof(info));
    if ((rc = evs_log_open(c->src, id, strlen(id), 0, &a, NULL,
                           &info)) != 0 ||
        (rc = evs_log_open(c->dst, id, strlen(id), 0, &b, NULL,
                           &info)) != 0 ||
        (rc = evs_cursor_open(a, 1, 0, &ca, &info)) != 0 ||
        (rc = evs_cursor_open(b, 1, 0, &cb, &info)) != 0) {
        fail("%s: reading it back: %s (%s)", id,
             info.msg[0] ? info.msg : evs_strerror(rc), evs_err_name(rc));
        goto out;
    }
    for (;;) {
        na = evs_cursor_next(ca, &ea, &ra, &info);
        if (na < 0) {
            fail("%s: reading %s again: %s (%s)", id, c->src_name,
                 info.msg[0] ? info.msg : evs_strerror(na), evs_err_name(na));
            goto out;
        }
        nb = evs_cursor_next(cb, &eb, &rb, &info);
        if (nb < 0) {
            fail("%s: reading the copy: %s (%s)", id,
                 info.msg[0] ? info.msg : evs_strerror(nb), evs_err_name(nb));
            goto out;
        }
        if (na == 0 && nb == 0)
            break;
        if (na == 0 || nb == 0) {
            fail("%s: the copy has %s events than %s (after %" PRIu64 ")", id,
                 na ? "fewer" : "more", c->src_name, *events);
            goto out;
        }
        if (ra.len != rb.len || memcmp(ra.ptr, rb.ptr, ra.len) != 0) {
            fail("%s: the copy's line of seq %" PRIu64 " is not the source's "
                 "byte for byte",
                 id, ea.sequence);
            goto out;
        }
        (*events)++;
        *bytes += ra.len;
    }
    ret = 0;
out:
    evs_cursor_close(ca);
    evs_cursor_close(cb);
    evs_log_close(a);
    evs_log_close(b);
    return ret;
}

/* Saves a snapshot of `id` in `dst` replayed from its log (tolerant:
 * a history that breaks a replay rule still gets one). */
static int rebuild_snapshot(evs_store *dst, const char *id)
{
    evs_replay_opts ro;
    evs_replay *r = NULL;
    int fs = 0, rc;

    evs_replay_opts_init(&ro);
    ro.tolerant = 1;
    if ((rc = evs_replay_new(&ro, &r)) != 0)
        return rc;
    rc = evs_replay_open(r, dst, id, strlen(id), 0, &fs, NULL);
    if (rc == 0)
        rc = evs_replay_snapshot(r, dst, (evs_span){0});
    evs_replay_free(r);
    return rc;
}

/* Copies execution `id`. Returns 0 or an exit code after reporting; on
 * failure nothing of it is left in the destination. */
static int copy_one(copier *c, const char *id)
{
    evs_snapshot *snap = NULL;
    evs_log *in = NULL, *out = NULL;
    evs_cursor *cur = NULL;
    evs_error_info info;
    evs_event ev;
    uint64_t last = 0, events, bytes;
    int rc, ret = EXIT_ERROR, made = 0;

    memset(&info, 0, sizeof(info));
    if (evs_exec_exists(c->dst, id, strlen(id)))
        return fail("%s: already in %s; nothing was copied for it", id,
                    c->dst_name);
    if (!evs_exec_exists(c->src, id, strlen(id)))
        return fail("%s: no such execution in %s", id, c->src_name);
    rc = evs_snapshot_load(c->src, id, strlen(id), &snap, &info);
    if (rc != 0 && rc != EVS_ESTALE) {
        /* The log is the truth: the copy's snapshot is made from it. */
        note("%s: its snapshot in %s cannot be used (%s); the copy's is "
             "rebuilt from its log",
             id, c->src_name, info.msg[0] ? info.msg : evs_strerror(rc));
        snap = NULL;
    }
    if ((rc = evs_log_open(c->src, id, strlen(id), 0, &in, NULL,
                           &info)) != 0 ||
        (rc = evs_cursor_open(in, 1, 0, &cur, &info)) != 0) {
        fail("%s: %s: %s (%s)", id, c->src_name,
             info.msg[0] ? info.msg : evs_strerror(rc), evs_err_name(rc));
        goto out;
    }
    for (;;) {
        rc = evs_cursor_next(cur, &ev, NULL, &info);
        if (rc < 0) {
            fail("%s: reading %s: %s (%s)", id, c->src_name,
                 info.msg[0] ? info.msg : evs_strerror(rc), evs_err_name(rc));
            goto out;
        }
        if (c->nb && (rc == 0 || !same_append(c, &ev))) {
            int was = out != NULL;
            if (flush(c, id, snap, &out, &last) != 0)
                goto out;
            made |= !was && out;
        }
        if (rc == 0)
            break;
        if (batch_add(c, &ev) != 0) {
            fail("%s: out of memory", id);
            goto out;
        }
    }
    if (!out) {
        fail("%s: its log in %s is empty; nothing was copied", id,
             c->src_name);
        goto out;
    }
    /* The source's snapshot, when it is the log's; else one rebuilt from
     * the copy's log (a stale source snapshot is replayed past, as a
     * reader of the source would). */
    if (snap && snap->last_event_seq == last)
        rc = evs_snapshot_save_flags(c->dst, id, strlen(id), snap,
                                     EVS_SNAPSHOT_CACHE);
    else
        rc = rebuild_snapshot(c->dst, id);
    if (rc != 0) {
        fail("%s: saving its snapshot in %s: %s (%s)", id, c->dst_name,
             evs_strerror(rc), evs_err_name(rc));
        goto out;
    }
    evs_log_close(out);
    out = NULL;
    if (check_copy(c, id, &events, &bytes) != 0)
        goto out;
    out_printf("copied %s: %" PRIu64 " events, %" PRIu64 " bytes, checked\n",
               id, events, bytes);
    ret = 0;
out:
    batch_clear(c);
    evs_cursor_close(cur);
    evs_log_close(in);
    evs_log_close(out);
    evs_snapshot_free(snap);
    if (ret != 0 && made) {
        rc = evs_exec_delete(c->dst, id, strlen(id));
        if (rc == 0)
            note("%s: the incomplete copy was deleted from %s", id,
                 c->dst_name);
        else
            note("%s: the incomplete copy could not be deleted from %s: %s; "
                 "delete it before copying again",
                 id, c->dst_name, evs_strerror(rc));
    }
    return ret;
}

int cmd_copy(int argc, char **argv)
{
    static const struct option lo[] = {OPT_HELP, OPT_END};
    static copier c;
    evs_store_opts o;
    evs_exec_listing li;
    char **pos;
    int npos, rc, ret = 0, opt;
    size_t copied = 0, failed = 0;

    while ((opt = next_opt("copy", argc, argv, "", lo)) != -1) {
        switch (opt) {
        case 'h': print_help("copy"); return EXIT_OKAY;
        default: return -opt;
        }
    }
    if ((rc = positionals("copy", argc, argv, 2, argc, "SRC DST")) != 0)
        return rc;
    pos = argv + optind;
    npos = argc - optind;
    memset(&c, 0, sizeof(c));
    c.src_name = pos[0];
    c.dst_name = pos[1];
    if ((rc = open_store(pos[0], &c.src)) != 0)
        return rc;
    evs_store_opts_init(&o);
    o.create = 1;
    if ((rc = open_store_opts(pos[1], &o, NULL, &c.dst)) != 0) {
        evs_store_close(c.src);
        return rc;
    }
    memset(&li, 0, sizeof(li));
    if (npos == 2) {
        /* Every execution of the source. */
        if ((rc = evs_exec_list(c.src, NULL, &li)) != 0) {
            ret = fail("listing %s: %s (%s)", pos[0], evs_strerror(rc),
                       evs_err_name(rc));
            goto out;
        }
        for (size_t i = 0; i < li.count && !out_broken(); i++) {
            char id[EVS_ID_MAX + 1];
            memcpy(id, li.items[i].id.ptr, li.items[i].id.len);
            id[li.items[i].id.len] = '\0';
            if (copy_one(&c, id) == 0)
                copied++;
            else
                failed++;
        }
    } else {
        for (int i = 2; i < npos && !out_broken(); i++) {
            if (!evs_id_valid(pos[i], strlen(pos[i]))) {
                ret = usage_error("copy", "'%s' is not an execution id",
                                  pos[i]);
                goto out;
            }
            if (copy_one(&c, pos[i]) == 0)
                copied++;
            else
                failed++;
        }
    }
    out_printf("%zu copied, %zu failed\n", copied, failed);
    ret = failed ? EXIT_ERROR : 0;
out:
    evs_exec_list_free(&li);
    free(c.batch);
    free(c.views);
    evs_store_close(c.dst);
    evs_store_close(c.src);
    return out_finish(ret);
}
