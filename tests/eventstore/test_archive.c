/*
 * test_archive.c: bundles and archival (include/evstore/archive.h,
 * formats/BUNDLES.md): round trips byte for byte, every bit flip and
 * every truncation of a bundle detected, a newer bundle format refused,
 * the refusals of archive and restore, the archival record and the
 * lineage that passes through it, and archive-then-delete with each I/O
 * call failing in turn.
 */
#include <criterion/criterion.h>

#include "archive_int.h"
#include "fault_io.h"
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_dir, *g_out;
static evs_store *g_st;

static void setup(void)
{
    tu_fresh_store("archive", &g_dir, &g_st);
    g_out = tu_tmpdir("archive-out");
    cr_assert_not_null(g_out);
}

static void teardown(void)
{
    tu_drop_store(&g_dir, &g_st);
    tu_rmtree_free(g_out);
}

TestSuite(archive, .init = setup, .fini = teardown);

/* Execution `id`: started (with a lineage naming `origin` when not
 * NULL), a batch of three steps, a single event, and, when `end`, an
 * execution_completed (6 events; else 5); then a snapshot saying its
 * status. */
static void make_exec(evs_store *s, const char *id, const char *origin,
                      int end)
{
    char start[256];
    evs_event e[3];
    evs_snapshot sn;
    evs_log *l = NULL;

    if (origin)
        snprintf(start, sizeof(start),
                 "{\"workflow_name\":\"wf \\\"x\\\"\",\"inputs\":{},"
                 "\"lineage\":{\"continued_from\":\"%s\"}}",
                 origin);
    else
        snprintf(start, sizeof(start),
                 "{\"workflow_name\":\"wf \\\"x\\\"\",\"inputs\":{}}");
    e[0] = tu_event(EVS_EV_EXECUTION_STARTED, "", start);
    cr_assert_eq(evs_exec_create(s, id, strlen(id), NULL, e, 1), 0);
    cr_assert_eq(evs_log_open(s, id, strlen(id), EVS_LOG_WRITE, &l, NULL,
                              NULL),
                 0);
    for (int i = 0; i < 3; i++)
        e[i] = tu_event(EVS_EV_STEP_STARTED, "s", "{\"attempt\":1}");
    cr_assert_eq(evs_log_append(l, e, 3, 1, NULL), 0);
    e[0] = tu_event(EVS_EV_VARIABLE_SET, "", "{\"name\":\"v\",\"value\":1}");
    cr_assert_eq(evs_log_append(l, e, 1, 4, NULL), 0);
    if (end) {
        e[0] = tu_event(EVS_EV_EXECUTION_COMPLETED, "", "{\"outputs\":{}}");
        cr_assert_eq(evs_log_append(l, e, 1, 5, NULL), 0);
    }
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr(end ? "completed" : "running");
    sn.workflow_name = evs_span_cstr("wf");
    sn.last_event_seq = evs_log_last_seq(l);
    cr_assert_eq(evs_snapshot_save(s, id, strlen(id), &sn), 0);
    evs_log_close(l);
}

static char *file_of(const char *dir, const char *id, const char *name,
                     size_t *len)
{
    char *p = tu_path(dir, id, name), *b;

    cr_assert_not_null(p);
    b = tu_read_file(p, len);
    free(p);
    return b;
}

static char *bundle_path(const char *id)
{
    char name[EVS_ID_MAX + 8];

    snprintf(name, sizeof(name), "%s.evb", id);
    return tu_join(g_out, name);
}

Test(archive, round_trip_is_byte_for_byte)
{
    size_t ll, sl, ll2, sl2;
    char *log = NULL, *snap = NULL, *log2, *snap2, *bp = bundle_path("b");
    evs_archive_opts o;
    evs_archive_info ai;
    evs_error_info ei;
    evs_bundle *b = NULL;
    const evs_bundle_manifest *m;
    evs_exec_listing lst;
    evs_event ev;
    uint64_t pos = 0;
    int n = 0;

    make_exec(g_st, "a", NULL, 1);
    make_exec(g_st, "b", "a", 1);
    log = file_of(g_dir, "b", "events.jsonl", &ll);
    snap = file_of(g_dir, "b", "snapshot.json", &sl);
    cr_assert(log && snap);

    evs_archive_opts_init(&o);
    o.delete_after = 1;
    cr_assert_eq(evs_archive_exec(g_st, "b", g_out, &o, &ai, &ei), 0, "%s",
                 ei.msg);
    cr_assert_eq(ai.events, 6);
    cr_assert_eq(ai.last_seq, 6);
    cr_assert_eq(ai.log_bytes, ll);
    cr_assert_eq(ai.snapshot_bytes, sl);
    cr_assert_eq(ai.bundle_bytes, (uint64_t)tu_file_size(bp));
    cr_assert_str_eq(ai.status, "completed");
    cr_assert(ai.deleted);
    cr_assert_not(evs_exec_exists(g_st, "b", 1));

    /* The bundle holds the bytes and says what they are. */
    cr_assert_eq(evs_bundle_open(bp, NULL, &b, &ei), 0, "%s", ei.msg);
    m = evs_bundle_info(b);
    cr_assert(evs__span_eq_cstr(m->execution_id, "b"));
    cr_assert(evs__span_eq_cstr(m->status, "completed"));
    cr_assert(evs__span_eq_cstr(m->workflow_name, "wf \"x\""));
    cr_assert(evs__span_eq_cstr(m->lineage, "{\"continued_from\":\"a\"}"));
    cr_assert(evs__span_eq_cstr(m->evstore_version, evs_version()));
    cr_assert_eq(m->format, 1);
    cr_assert_eq(m->level, EVS_ARCHIVE_LEVEL_DEFAULT);
    cr_assert_neq(m->ended_at_us, 0);
    cr_assert(evs__span_eq(evs_bundle_log(b), (evs_span){log, ll}));
    cr_assert(evs__span_eq(evs_bundle_snapshot(b), (evs_span){snap, sl}));
    while (evs_bundle_next(b, &pos, &ev, NULL) == 1)
        cr_assert_eq(ev.sequence, (uint64_t)++n);
    cr_assert_eq(n, 6);
    evs_bundle_close(b);

    /* Back into the store, byte for byte, and listed again. */
    cr_assert_eq(evs_archive_restore(g_st, bp, &ai, &ei), 0, "%s", ei.msg);
    cr_assert_eq(ai.events, 6);
    log2 = file_of(g_dir, "b", "events.jsonl", &ll2);
    snap2 = file_of(g_dir, "b", "snapshot.json", &sl2);
    cr_assert(ll2 == ll && memcmp(log, log2, ll) == 0);
    cr_assert(sl2 == sl && memcmp(snap, snap2, sl) == 0);
    cr_assert_eq(tu_count_events(g_st, "b"), 6);
    cr_assert_eq(evs_exec_list(g_st, NULL, &lst), 0);
    cr_assert_eq(lst.count, 2);
    evs_exec_list_free(&lst);
    free(log);
    free(snap);
    free(log2);
    free(snap2);
    free(bp);
}

Test(archive, an_execution_without_a_snapshot_comes_back_without_one)
{
    char *p = tu_path(g_dir, "a", "snapshot.json"), *bp = bundle_path("a");
    evs_archive_opts o;
    evs_archive_info ai;

    make_exec(g_st, "a", NULL, 1);
    cr_assert_eq(unlink(p), 0);
    evs_archive_opts_init(&o);
    o.delete_after = 1;
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, &o, &ai, NULL), 0);
    cr_assert_eq(ai.snapshot_bytes, 0);
    cr_assert_eq(evs_archive_restore(g_st, bp, NULL, NULL), 0);
    cr_assert_eq(access(p, F_OK), -1);
    cr_assert_eq(tu_count_events(g_st, "a"), 6);
    free(p);
    free(bp);
}

/* The bytes of a small bundle of execution "a". */
static char *small_bundle(size_t *len)
{
    char *bp = bundle_path("a"), *buf;

    make_exec(g_st, "a", NULL, 1);
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, NULL, NULL, NULL), 0);
    buf = tu_read_file(bp, len);
    cr_assert_not_null(buf);
    free(bp);
    return buf;
}

Test(archive, every_bit_flip_is_detected)
{
    size_t len, flips = 0;
    char *buf = small_bundle(&len);
    evs_error_info ei;
    evs_bundle *b;

    cr_assert_eq(evs_bundle_decode(buf, len, NULL, &b, NULL), 0);
    evs_bundle_close(b);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            int rc;
            buf[i] ^= (char)(1 << bit);
            b = NULL;
            rc = evs_bundle_decode(buf, len, NULL, &b, &ei);
            cr_assert_eq(rc, EVS_ECORRUPT,
                         "flip of bit %d of byte %zu: %s (%s)", bit, i,
                         evs_err_name(rc), ei.msg);
            cr_assert_null(b);
            cr_assert(ei.kind[0] && ei.msg[0]);
            buf[i] ^= (char)(1 << bit);
            flips++;
        }
    }
    cr_assert_eq(flips, len * 8);
    fprintf(stderr, "archive: every bit of a %zu-byte bundle flipped (%zu "
                    "flips): all refused\n",
            len, flips);
    free(buf);
}

/* The archive's own read-back check (evs__bundle_holds) is as strict:
 * every flip is refused, and the intact bundle holds the log. */
Test(archive, every_bit_flip_fails_the_read_back_check)
{
    size_t len;
    char *buf = small_bundle(&len);
    evs_bundle *b = NULL;
    evs__bundle_src src;
    uint64_t ck = 0;

    cr_assert_eq(evs_bundle_decode(buf, len, NULL, &b, NULL), 0);
    memset(&src, 0, sizeof(src));
    src.log = evs_bundle_log(b);
    src.snap = evs_bundle_snapshot(b);
    cr_assert_eq(evs__bundle_holds(buf, len, &src, NULL, &ck, NULL), 0);
    cr_assert_eq(ck, evs_bundle_info(b)->bundle_checksum);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (char)(1 << bit);
            cr_assert_eq(evs__bundle_holds(buf, len, &src, NULL, &ck, NULL),
                         EVS_ECORRUPT, "flip of bit %d of byte %zu", bit, i);
            buf[i] ^= (char)(1 << bit);
        }
    }
    for (size_t n = 0; n < len; n++)
        cr_assert_neq(evs__bundle_holds(buf, n, &src, NULL, &ck, NULL), 0);
    src.log.len--;
    cr_assert_eq(evs__bundle_holds(buf, len, &src, NULL, &ck, NULL),
                 EVS_ECORRUPT);
    evs_bundle_close(b);
    free(buf);
}

Test(archive, every_truncation_and_extension_is_detected)
{
    size_t len;
    char *buf = small_bundle(&len), *more;
    evs_error_info ei;
    evs_bundle *b = NULL;

    for (size_t n = 0; n < len; n++) {
        cr_assert_eq(evs_bundle_decode(buf, n, NULL, &b, &ei), EVS_ECORRUPT,
                     "cut to %zu of %zu bytes", n, len);
        cr_assert_null(b);
    }
    more = malloc(len + 1);
    cr_assert_not_null(more);
    memcpy(more, buf, len);
    more[len] = '\n';
    cr_assert_eq(evs_bundle_decode(more, len + 1, NULL, &b, &ei),
                 EVS_ECORRUPT);
    cr_assert_str_eq(ei.kind, "length");
    free(more);
    free(buf);
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

Test(archive, a_newer_bundle_format_is_refused_clearly)
{
    size_t len;
    unsigned char *buf = (unsigned char *)small_bundle(&len);
    char *bp = bundle_path("new");
    evs_error_info ei;
    evs_bundle *b = NULL;

    put_le(buf + 8, 2, 4);
    put_le(buf + 56, evs_checksum(buf, 56), 8);
    cr_assert_eq(evs_bundle_decode(buf, len, NULL, &b, &ei), EVS_EFORMAT);
    cr_assert_null(b);
    cr_assert(strstr(ei.msg, "bundle format 2"), "%s", ei.msg);
    cr_assert(strstr(ei.msg, "reads bundle format 1"), "%s", ei.msg);
    /* Through a file, and by restore, too; nothing is created. */
    cr_assert_eq(tu_write_file(bp, buf, len), 0);
    cr_assert_eq(evs_bundle_verify(bp, NULL, &ei), EVS_EFORMAT);
    cr_assert_eq(evs_exec_delete(g_st, "a", 1), 0);
    cr_assert_eq(evs_archive_restore(g_st, bp, NULL, &ei), EVS_EFORMAT);
    cr_assert_not(evs_exec_exists(g_st, "a", 1));
    free(buf);
    free(bp);
}

Test(archive, restore_over_an_existing_execution_is_refused)
{
    char *bp = bundle_path("a"), *before, *after;
    size_t l1, l2;
    evs_error_info ei;
    evs_log *l = NULL;

    make_exec(g_st, "a", NULL, 1);
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, NULL, NULL, NULL), 0);
    before = file_of(g_dir, "a", "events.jsonl", &l1);
    cr_assert_eq(evs_archive_restore(g_st, bp, NULL, &ei), -EEXIST);
    cr_assert(strstr(ei.msg, "already exists"), "%s", ei.msg);
    cr_assert_str_eq(ei.execution_id, "a");
    after = file_of(g_dir, "a", "events.jsonl", &l2);
    cr_assert(l1 == l2 && memcmp(before, after, l1) == 0);
    cr_assert_eq(evs_log_open(g_st, "a", 1, 0, &l, NULL, NULL), 0);
    evs_log_close(l);
    free(before);
    free(after);
    free(bp);
}

Test(archive, a_running_execution_is_refused_unless_forced)
{
    char *bp = bundle_path("r");
    evs_archive_opts o;
    evs_archive_info ai;
    evs_error_info ei;

    make_exec(g_st, "r", NULL, 0);
    evs_archive_opts_init(&o);
    o.delete_after = 1;
    cr_assert_eq(evs_archive_exec(g_st, "r", g_out, &o, NULL, &ei), -EBUSY);
    cr_assert(strstr(ei.msg, "has not ended"), "%s", ei.msg);
    cr_assert(evs_exec_exists(g_st, "r", 1));
    cr_assert_eq(access(bp, F_OK), -1);
    o.force = 1;
    cr_assert_eq(evs_archive_exec(g_st, "r", g_out, &o, &ai, &ei), 0);
    cr_assert_str_eq(ai.status, "running");
    cr_assert_not(evs_exec_exists(g_st, "r", 1));
    free(bp);
}

Test(archive, an_execution_open_by_a_writer_is_refused)
{
    evs_log *l = NULL;
    evs_error_info ei;

    make_exec(g_st, "a", NULL, 1);
    cr_assert_eq(evs_log_open(g_st, "a", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, NULL, NULL, &ei),
                 EVS_ELOCKED);
    evs_log_close(l);
    cr_assert_eq(tu_count_entries(g_out), 0);
}

Test(archive, a_damaged_log_is_not_archived)
{
    char *p = tu_path(g_dir, "a", "events.jsonl");
    evs_archive_opts o;
    evs_error_info ei;

    make_exec(g_st, "a", NULL, 1);
    cr_assert_eq(tu_flip_bit(p, 40, 1), 0); /* inside the first line */
    evs_archive_opts_init(&o);
    o.delete_after = 1;
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, &o, NULL, &ei),
                 EVS_ECORRUPT);
    cr_assert_eq(ei.sequence, 1);
    cr_assert_eq(ei.offset, 0);
    cr_assert(evs_exec_exists(g_st, "a", 1));
    cr_assert_eq(tu_count_entries(g_out), 0);
    free(p);
}

Test(archive, a_torn_tail_is_left_out_and_stops_a_delete)
{
    char *p = tu_path(g_dir, "a", "events.jsonl"), *log, *with_tail;
    char *bp = bundle_path("a");
    static const char tail[] = "{\"v\":1,\"id\":\"half";
    size_t len;
    evs_archive_opts o;
    evs_archive_info ai;
    evs_error_info ei;
    evs_bundle *b = NULL;

    make_exec(g_st, "a", NULL, 1);
    log = tu_read_file(p, &len);
    cr_assert_not_null(log);
    with_tail = malloc(len + sizeof(tail));
    cr_assert_not_null(with_tail);
    memcpy(with_tail, log, len);
    memcpy(with_tail + len, tail, sizeof(tail) - 1);
    cr_assert_eq(tu_write_file(p, with_tail, len + sizeof(tail) - 1), 0);
    evs_archive_opts_init(&o);
    o.delete_after = 1;
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, &o, NULL, &ei), EVS_ETORN);
    cr_assert(strstr(ei.msg, "torn tail"), "%s", ei.msg);
    cr_assert(evs_exec_exists(g_st, "a", 1));
    cr_assert_eq(tu_count_entries(g_out), 0);
    o.delete_after = 0;
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, &o, &ai, &ei), 0, "%s",
                 ei.msg);
    cr_assert_eq(ai.log_bytes, len);
    cr_assert_eq(evs_bundle_open(bp, NULL, &b, &ei), 0, "%s", ei.msg);
    cr_assert(evs__span_eq(evs_bundle_log(b), (evs_span){log, len}));
    evs_bundle_close(b);
    free(log);
    free(with_tail);
    free(bp);
    free(p);
}

Test(archive, an_identical_bundle_is_kept_and_another_refused)
{
    evs_archive_opts o;
    evs_archive_info ai;
    evs_error_info ei;
    evs_event e = tu_event(EVS_EV_VARIABLE_SET, "", "{\"name\":\"w\"}");
    evs_log *l = NULL;

    make_exec(g_st, "a", NULL, 0);
    evs_archive_opts_init(&o);
    o.force = 1;
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, &o, &ai, NULL), 0);
    cr_assert_not(ai.existed);
    /* Run again (an interrupted archive-then-delete): kept, then deleted. */
    o.delete_after = 1;
    cr_assert_eq(evs_log_open(g_st, "a", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    evs_log_close(l);
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, &o, &ai, &ei), 0, "%s",
                 ei.msg);
    cr_assert(ai.existed);
    cr_assert(ai.deleted);
    /* Another execution "a" with other events: its bundle is refused. */
    make_exec(g_st, "a", NULL, 0);
    cr_assert_eq(evs_log_open(g_st, "a", 1, EVS_LOG_WRITE, &l, NULL, NULL), 0);
    cr_assert_eq(evs_log_append(l, &e, 1, 5, NULL), 0);
    evs_log_close(l);
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, &o, &ai, &ei), -EEXIST);
    cr_assert(evs_exec_exists(g_st, "a", 1));
}

Test(archive, the_record_names_an_archived_execution_until_restored)
{
    char *bp = bundle_path("a");
    evs_archive_opts o;
    evs_archived rec;
    evs_error_info ei;

    make_exec(g_st, "a", "zero", 1);
    cr_assert_eq(evs_archived_get(g_st, "a", &rec, &ei), -ENOENT);
    evs_archive_opts_init(&o);
    o.delete_after = 1;
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, &o, NULL, NULL), 0);
    cr_assert_eq(evs_archived_get(g_st, "a", &rec, &ei), 0, "%s", ei.msg);
    cr_assert(evs__span_eq_cstr(rec.bundle, "a.evb"));
    cr_assert(evs__span_eq_cstr(rec.dir, g_out));
    cr_assert(evs__span_eq_cstr(rec.status, "completed"));
    cr_assert(evs__span_eq_cstr(rec.lineage, "{\"continued_from\":\"zero\"}"));
    cr_assert_eq(rec.last_seq, 6);
    cr_assert_neq(rec.archived_at_us, 0);
    evs_archived_free(&rec);
    cr_assert_eq(evs_archive_restore(g_st, bp, NULL, NULL), 0);
    cr_assert_eq(evs_archived_get(g_st, "a", &rec, &ei), -ENOENT);
    evs_archived_free(&rec);
    free(bp);
}

Test(archive, a_damaged_record_is_reported)
{
    char *p;
    evs_archive_opts o;
    evs_archived rec;
    evs_error_info ei;

    make_exec(g_st, "a", NULL, 1);
    evs_archive_opts_init(&o);
    o.delete_after = 1;
    cr_assert_eq(evs_archive_exec(g_st, "a", g_out, &o, NULL, NULL), 0);
    p = tu_path(g_dir, ".archived", "a.json");
    cr_assert_eq(tu_flip_bit(p, 30, 0), 0);
    cr_assert_eq(evs_archived_get(g_st, "a", &rec, &ei), EVS_ECORRUPT);
    cr_assert_null(rec.mem_);
    free(p);
}

Test(archive, the_chain_names_an_archived_ancestor)
{
    evs_archive_opts o;
    char *js = NULL;
    evs_error_info ei;

    make_exec(g_st, "a", NULL, 1);
    make_exec(g_st, "b", "a", 1);
    make_exec(g_st, "c", "b", 1);
    evs_archive_opts_init(&o);
    o.delete_after = 1;
    cr_assert_eq(evs_archive_exec(g_st, "b", g_out, &o, NULL, NULL), 0);
    cr_assert_eq(evs_inspect_chain(g_st, "c", &js, &ei), 0, "%s", ei.msg);
    /* a, then b (archived), then c: the walk goes on through b. */
    cr_assert(strstr(js, "{\"id\":\"a\""), "%s", js);
    cr_assert(strstr(js, "{\"id\":\"b\",\"status\":\"completed\""), "%s", js);
    cr_assert(strstr(js, "\"archived\":\"a.evb\"") == NULL, "%s", js);
    cr_assert(strstr(js, "\"archived\":\"b.evb\""), "%s", js);
    cr_assert(strstr(js, "\"archived\":null"), "%s", js);
    cr_assert(strstr(js, "{\"id\":\"a\"") < strstr(js, "{\"id\":\"b\"") &&
                  strstr(js, "{\"id\":\"b\"") < strstr(js, "{\"id\":\"c\""),
              "%s", js);
    evs_free(NULL, js);
}

/* Archive-then-delete with the Nth I/O call failing, for every N: the
 * execution stays, or a bundle that verifies holds it; never neither. */
Test(archive, a_failing_call_at_any_point_leaves_the_execution_or_a_bundle)
{
    char *bp = bundle_path("a");
    evs_archive_opts o;
    fault_io f;
    evs_store *s;
    long n, failures = 0;

    evs_archive_opts_init(&o);
    o.delete_after = 1;
    fault_io_init(&f);
    for (n = 1;; n++) {
        int rc, exists, bundled;

        make_exec(g_st, "a", NULL, 1);
        s = tu_open_store(g_dir, &f.io);
        cr_assert_not_null(s);
        fault_io_arm(&f, FIO_ALL, n, -EIO, 0);
        rc = evs_archive_exec(s, "a", g_out, &o, NULL, NULL);
        fault_io_disarm(&f);
        evs_store_close(s);
        exists = evs_exec_exists(g_st, "a", 1);
        bundled = evs_bundle_verify(bp, NULL, NULL) == 0;
        cr_assert(exists || bundled, "call %ld: neither (rc %s)", n,
                  evs_err_name(rc));
        if (exists)
            cr_assert_eq(tu_count_events(g_st, "a"), 6, "call %ld", n);
        if (rc == 0) {
            cr_assert_not(exists, "call %ld", n);
            cr_assert(bundled, "call %ld", n);
        }
        if (f.fired == 0)
            break;
        failures++;
        if (exists)
            evs_exec_delete(g_st, "a", 1);
        unlink(bp);
    }
    fprintf(stderr,
            "archive fault sweep: each of %ld I/O calls of archive-then-"
            "delete failed in turn; lost: 0\n",
            failures);
    cr_assert_gt(failures, 15, "only %ld calls", failures);
    free(bp);
}
