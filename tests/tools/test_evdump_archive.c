/*
 * test_evdump_archive.c: the real evdump and evreplay binaries ($EVDUMP,
 * $EVREPLAY) on bundles: evdump archive, restore and verify, show and
 * state of a bundle, evreplay of a bundle, chain through an archived
 * execution; their output lines and exit statuses.
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir, *out, *io;
static evs_store *st;

static void setup(void)
{
    cr_assert_not_null(getenv("EVDUMP"), "EVDUMP must name the binary");
    tu_fresh_store("evdump-arch", &dir, &st);
    out = tu_tmpdir("evdump-arch-out");
    io = tu_tmpdir("evdump-arch-io");
    cr_assert(out && io);
}

static void teardown(void)
{
    tu_drop_store(&dir, &st);
    tu_rmtree_free(out);
    tu_rmtree_free(io);
}

TestSuite(evdump_archive, .init = setup, .fini = teardown, .timeout = 60);

/* Execution `id` with a start, a step and, when `end`, a completion;
 * started as a continuation of `origin` when not NULL. */
static void make(const char *id, const char *origin, int end)
{
    char data[160];
    evs_event e;
    evs_log *l = NULL;

    snprintf(data, sizeof(data),
             "{\"workflow_name\":\"wf\",\"inputs\":{},\"lineage\":{%s%s%s}}",
             origin ? "\"continued_from\":\"" : "", origin ? origin : "",
             origin ? "\"" : "");
    e = tu_event(EVS_EV_EXECUTION_STARTED, "", data);
    cr_assert_eq(evs_exec_create(st, id, strlen(id), NULL, &e, 1), 0);
    cr_assert_eq(
        evs_log_open(st, id, strlen(id), EVS_LOG_WRITE, &l, NULL, NULL), 0);
    e = tu_event(EVS_EV_VARIABLE_SET, "", "{\"name\":\"x\",\"value\":41}");
    cr_assert_eq(evs_log_append(l, &e, 1, 1, NULL), 0);
    if (end) {
        e = tu_event(EVS_EV_EXECUTION_COMPLETED, "", "{\"outputs\":{}}");
        cr_assert_eq(evs_log_append(l, &e, 1, 2, NULL), 0);
    }
    evs_log_close(l);
}

static tu_result evdump(const char *tag, const char *const *args)
{
    return tu_run_tool("EVDUMP", io, tag, args);
}

static char *bundle(const char *id)
{
    char name[64];

    snprintf(name, sizeof(name), "%s.evb", id);
    return tu_join(out, name);
}

Test(evdump_archive, archives_each_and_goes_on_past_a_refusal)
{
    char *ba = bundle("a"), *br = bundle("r");
    tu_result r;

    make("a", NULL, 1);
    make("r", NULL, 0);
    r = evdump("arch", (const char *const[]){"archive", dir, "r", "a", "--to",
                                             out, "--delete", NULL});
    cr_assert_eq(r.status, 3, "%s", r.err);
    cr_assert(strstr(r.out, "archived a -> "), "%s", r.out);
    cr_assert(strstr(r.out, "3 events"), "%s", r.out);
    cr_assert(strstr(r.out, ", deleted\n"), "%s", r.out);
    cr_assert(strstr(r.err, "r: not archived: r has not ended"), "%s", r.err);
    cr_assert(strstr(r.err, "1 of 2 executions not archived"), "%s", r.err);
    cr_assert_not(evs_exec_exists(st, "a", 1));
    cr_assert(evs_exec_exists(st, "r", 1));
    cr_assert_eq(access(br, F_OK), -1);
    tu_result_free(&r);
    /* Forced, it goes. */
    r = evdump("arch2", (const char *const[]){"archive", dir, "r", "--to", out,
                                              "--force", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(access(br, F_OK), 0);
    tu_result_free(&r);
    free(ba);
    free(br);
}

Test(evdump_archive, selects_ended_executions_by_status)
{
    tu_result r;
    evs_snapshot sn;

    make("a", NULL, 1);
    make("b", NULL, 1);
    make("r", NULL, 0);
    memset(&sn, 0, sizeof(sn));
    sn.status = evs_span_cstr("completed");
    sn.last_event_seq = 3;
    cr_assert_eq(evs_snapshot_save(st, "a", 1, &sn), 0);
    cr_assert_eq(evs_snapshot_save(st, "b", 1, &sn), 0);
    r = evdump("sel", (const char *const[]){"archive", dir, "--status",
                                            "completed", "--to", out, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "archived a -> ") && strstr(r.out, "archived b -> "),
              "%s", r.out);
    cr_assert_null(strstr(r.out, "archived r"), "%s", r.out);
    tu_result_free(&r);
    r = evdump("sel2", (const char *const[]){"archive", dir, "--ended-before",
                                             "1d", "--to", out, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "");
    tu_result_free(&r);
}

Test(evdump_archive, usage_errors)
{
    tu_result r;

    make("a", NULL, 1);
    r = evdump("u1", (const char *const[]){"archive", dir, "a", NULL});
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "--to DIR is required"), "%s", r.err);
    tu_result_free(&r);
    r = evdump("u2", (const char *const[]){"archive", dir, NULL});
    cr_assert_eq(r.status, 2);
    tu_result_free(&r);
    r = evdump("u3", (const char *const[]){"archive", dir, "a", "--status",
                                           "completed", "--to", out, NULL});
    cr_assert_eq(r.status, 2);
    tu_result_free(&r);
    r = evdump("u4", (const char *const[]){"archive", dir, "--ended-before",
                                           "yesterday", "--to", out, NULL});
    cr_assert_eq(r.status, 2);
    tu_result_free(&r);
    r = evdump("u5", (const char *const[]){"archive", dir, "a", "--to", out,
                                           "--level", "20", NULL});
    cr_assert_eq(r.status, 2);
    tu_result_free(&r);
}

Test(evdump_archive, verify_show_state_restore_and_chain)
{
    char *ba = bundle("b"), *bad = tu_join(out, "bad.evb");
    size_t len;
    char *bytes;
    tu_result r;

    make("a", NULL, 1);
    make("b", "a", 1);
    make("c", "b", 1);
    r = evdump("a1", (const char *const[]){"archive", dir, "b", "--to", out,
                                           "--delete", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_result_free(&r);

    r = evdump("v", (const char *const[]){"verify", ba, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, ": ok: b, completed, 3 events"), "%s", r.out);
    cr_assert(strstr(r.out, "1 bundles, 0 damaged"), "%s", r.out);
    tu_result_free(&r);
    bytes = tu_read_file(ba, &len);
    cr_assert_not_null(bytes);
    bytes[len / 2] ^= 0x10;
    cr_assert_eq(tu_write_file(bad, bytes, len), 0);
    r = evdump("v2", (const char *const[]){"verify", ba, bad, NULL});
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.out, "bad.evb: at byte "), "%s", r.out);
    cr_assert(strstr(r.out, "(EVS_ECORRUPT)"), "%s", r.out);
    cr_assert(strstr(r.out, "2 bundles, 1 damaged"), "%s", r.out);
    tu_result_free(&r);
    r = evdump("s", (const char *const[]){"show", bad, NULL});
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err, "bad.evb: "), "%s", r.err);
    tu_result_free(&r);

    r = evdump("sh", (const char *const[]){"show", ba, "--json", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"sequence\":3,") &&
                  strstr(r.out, "execution_completed"),
              "%s", r.out);
    tu_result_free(&r);
    r = evdump("st", (const char *const[]){"state", ba, "--json", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"status\":\"completed\""), "%s", r.out);
    cr_assert(strstr(r.out, "\"execution_id\":\"b\""), "%s", r.out);
    tu_result_free(&r);
    r = evdump("st2", (const char *const[]){"state", ba, "--at", "2", "--json",
                                            NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"status\":\"running\""), "%s", r.out);
    tu_result_free(&r);

    r = evdump("ch", (const char *const[]){"chain", dir, "c", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "archived in b.evb"), "%s", r.out);
    cr_assert(strstr(r.out, "a ") == r.out, "%s", r.out);
    tu_result_free(&r);

    r = evdump("re", (const char *const[]){"restore", ba, dir, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "restored b from "), "%s", r.out);
    tu_result_free(&r);
    cr_assert_eq(tu_count_events(st, "b"), 3);
    r = evdump("re2", (const char *const[]){"restore", ba, dir, NULL});
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err, "already exists"), "%s", r.err);
    tu_result_free(&r);
    free(bytes);
    free(ba);
    free(bad);
}

Test(evdump_archive, evreplay_steps_through_a_bundle)
{
    char *ba = bundle("a");
    tu_result r;

    cr_assert_not_null(getenv("EVREPLAY"), "EVREPLAY must name the binary");
    make("a", NULL, 1);
    r = evdump("a1",
               (const char *const[]){"archive", dir, "a", "--to", out, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_result_free(&r);
    r = tu_run_tool("EVREPLAY", io, "rp",
                    (const char *const[]){ba, "-c", "goto 3", "--batch",
                                          NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "execution_completed"), "%s", r.out);
    tu_result_free(&r);
    free(ba);
}
