/*
 * test_log.c: structured log records as JSON lines, logfmt and text
 * (evs_log_format), and the stderr hook's level filter.
 */
#include "evstore/common.h"
#include "evstore/format.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

static evs_log_record full_record(void)
{
    evs_log_record r = {
        .time_us = 1765000000123456LL, /* 2025-12-06T05:46:40.123456Z */
        .level = EVS_LOG_WARN,
        .component = "store",
        .msg = "cut a torn tail of 12 bytes",
        .execution = "ex-1",
        .path = "p0",
        .step = "fetch page",
        .sequence = 42,
        .err = EVS_ETORN,
        .duration_us = 1500,
    };
    return r;
}

/* Parses buf as one JSON object, failing the test otherwise. */
static json_object *parse_obj(const char *buf)
{
    enum json_tokener_error e;
    json_object *o = json_tokener_parse_verbose(buf, &e);

    cr_assert_not_null(o, "not JSON (%s): %s", json_tokener_error_desc(e),
                       buf);
    cr_assert(json_object_is_type(o, json_type_object), "%s", buf);
    return o;
}

static const char *get_str(json_object *o, const char *k)
{
    json_object *v;

    cr_assert(json_object_object_get_ex(o, k, &v), "no member %s", k);
    return json_object_get_string(v);
}

static int64_t get_int(json_object *o, const char *k)
{
    json_object *v;

    cr_assert(json_object_object_get_ex(o, k, &v), "no member %s", k);
    cr_assert(json_object_is_type(v, json_type_int), "%s is not a number", k);
    return json_object_get_int64(v);
}

Test(log, json_has_every_typed_field)
{
    evs_log_record r = full_record();
    char buf[1024];
    json_object *o;

    cr_assert_gt(evs_log_format(&r, EVS_LOG_JSON, buf, sizeof(buf)), 0);
    o = parse_obj(buf);
    cr_assert_str_eq(get_str(o, "time"), "2025-12-06T05:46:40.123456Z");
    cr_assert_str_eq(get_str(o, "level"), "warn");
    cr_assert_str_eq(get_str(o, "component"), "store");
    cr_assert_str_eq(get_str(o, "msg"), "cut a torn tail of 12 bytes");
    cr_assert_str_eq(get_str(o, "execution"), "ex-1");
    cr_assert_str_eq(get_str(o, "path"), "p0");
    cr_assert_str_eq(get_str(o, "step"), "fetch page");
    cr_assert_eq(get_int(o, "sequence"), 42);
    cr_assert_str_eq(get_str(o, "error"), "EVS_ETORN");
    cr_assert_eq(get_int(o, "code"), EVS_ETORN);
    cr_assert_eq(get_int(o, "duration_us"), 1500);
    json_object_put(o);
}

Test(log, json_leaves_out_what_does_not_apply)
{
    evs_log_record r = {.time_us = 0,
                        .level = EVS_LOG_ERROR,
                        .component = "orchestrator",
                        .msg = "m",
                        .duration_us = -1};
    char buf[1024];
    json_object *o, *v;

    cr_assert_gt(evs_log_format(&r, EVS_LOG_JSON, buf, sizeof(buf)), 0);
    o = parse_obj(buf);
    cr_assert_eq(json_object_object_length(o), 4, "%s", buf);
    cr_assert_not(json_object_object_get_ex(o, "execution", &v));
    cr_assert_not(json_object_object_get_ex(o, "duration_us", &v));
    cr_assert_str_eq(get_str(o, "level"), "error");
    json_object_put(o);
}

Test(log, json_escapes_quotes_controls_and_bad_utf8)
{
    evs_log_record r = full_record();
    char buf[1024];
    json_object *o;

    r.msg = "a \"quoted\" back\\slash\nnew\x01 line \xff end \xc3\xa9";
    cr_assert_gt(evs_log_format(&r, EVS_LOG_JSON, buf, sizeof(buf)), 0);
    cr_assert_null(strchr(buf, '\n'), "one line: %s", buf);
    o = parse_obj(buf);
    cr_assert_str_eq(get_str(o, "msg"),
                     "a \"quoted\" back\\slash\nnew\x01 line \xef\xbf\xbd end "
                     "\xc3\xa9");
    json_object_put(o);
}

Test(log, a_long_message_is_shortened_and_the_line_stays_whole)
{
    evs_log_record r = full_record();
    char big[8192], buf[1024];
    int n;
    json_object *o;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    r.msg = big;
    n = evs_log_format(&r, EVS_LOG_JSON, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_assert_lt(n, (int)sizeof(buf));
    cr_assert_eq(strlen(buf), (size_t)n);
    o = parse_obj(buf);
    cr_assert_lt(strlen(get_str(o, "msg")), sizeof(big) - 1);
    cr_assert_str_eq(get_str(o, "execution"), "ex-1", "fields are kept");
    cr_assert_eq(get_int(o, "sequence"), 42);
    json_object_put(o);

    /* The same in logfmt: the quotes are closed. */
    n = evs_log_format(&r, EVS_LOG_LOGFMT, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_assert_not_null(strstr(buf, " execution=ex-1"), "%s", buf);
}

Test(log, logfmt_quotes_only_what_needs_it)
{
    evs_log_record r = full_record();
    char buf[1024];

    cr_assert_gt(evs_log_format(&r, EVS_LOG_LOGFMT, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "time=2025-12-06T05:46:40.123456Z level=warn "
                          "component=store msg=\"cut a torn tail of 12 bytes\" "
                          "execution=ex-1 path=p0 step=\"fetch page\" "
                          "sequence=42 error=EVS_ETORN code=-30002 "
                          "duration_us=1500");
    r.msg = "a=b \"c\"";
    r.step = "";
    cr_assert_gt(evs_log_format(&r, EVS_LOG_LOGFMT, buf, sizeof(buf)), 0);
    cr_assert_not_null(strstr(buf, " msg=\"a=b \\\"c\\\"\" "), "%s", buf);
    cr_assert_not_null(strstr(buf, " step=\"\" "), "%s", buf);
}

Test(log, text_reads_as_a_sentence)
{
    evs_log_record r = full_record();
    char buf[1024];

    cr_assert_gt(evs_log_format(&r, EVS_LOG_TEXT, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "warning: execution ex-1: cut a torn tail of 12 "
                          "bytes (path p0, step fetch page, sequence 42, "
                          "EVS_ETORN, 1.500 ms)");
    r.level = EVS_LOG_ERROR;
    r.execution = r.path = r.step = NULL;
    r.sequence = 0;
    r.err = 0;
    r.duration_us = -1;
    r.msg = "said \"no\"";
    cr_assert_gt(evs_log_format(&r, EVS_LOG_TEXT, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "said \"no\"");
}

Test(log, bad_arguments_are_refused)
{
    evs_log_record r = full_record();
    char buf[1024];

    cr_assert_eq(evs_log_format(NULL, EVS_LOG_JSON, buf, sizeof(buf)),
                 -EINVAL);
    cr_assert_eq(evs_log_format(&r, (evs_log_style)7, buf, sizeof(buf)),
                 -EINVAL);
    cr_assert_eq(evs_log_format(&r, EVS_LOG_JSON, buf, 100), -EINVAL);
}
