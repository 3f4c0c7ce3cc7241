/*
 * settings.c: the store's settings (evstore/settings.h): the known keys
 * with their defaults and checks, the values' canonical text, and the
 * settings file's one checksummed line (FORMAT.md §14), encoded and
 * decoded. Reading and replacing the file is the store's
 * (eventstore/file_settings.c).
 */
#include "formats_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* What a key's value is. */
enum kind { K_RETENTION, K_PATH, K_INTERVAL, K_COUNT };

typedef struct key_def {
    evs_setting_key pub;
    enum kind kind;
} key_def;

static const key_def keys[] = {
    {{EVS_SET_RETENTION_COMPLETED, "forever",
      "keep completed executions this long after they end"},
     K_RETENTION},
    {{EVS_SET_RETENTION_FAILED, "forever",
      "keep failed executions this long after they end"},
     K_RETENTION},
    {{EVS_SET_RETENTION_TERMINATED, "forever",
      "keep terminated executions this long after they end"},
     K_RETENTION},
    {{EVS_SET_RETENTION_CONTINUED, "forever",
      "keep executions that continued as new this long after they end"},
     K_RETENTION},
    {{EVS_SET_RETENTION_ARCHIVE, "",
      "archive executions into this directory before deleting them"},
     K_PATH},
    {{EVS_SET_GC_INTERVAL, "1h", "how often evrun serve applies retention"},
     K_INTERVAL},
    {{EVS_SET_LIMITS_WARN_EVENTS, "10240",
      "events after which a history is warned about (0: never)"},
     K_COUNT},
    {{EVS_SET_LIMITS_WARN_BYTES, "10485760",
      "bytes after which a history is warned about (0: never)"},
     K_COUNT},
    {{EVS_SET_LIMITS_MAX_EVENTS, "51200",
      "events past which an append is refused (0: no limit)"},
     K_COUNT},
    {{EVS_SET_LIMITS_MAX_BYTES, "52428800",
      "bytes past which an append is refused (0: no limit)"},
     K_COUNT},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* The longest duration: 100 years of days, far inside int64 µs. */
#define DAYS_MAX 36500
#define PATH_MAX_LEN 4095

struct evs_settings {
    const evs_allocator *alloc;
    char *val[NKEYS]; /* canonical text, NULL when unset */
};

const evs_setting_key *evs_setting_key_at(size_t i)
{
    return i < NKEYS ? &keys[i].pub : NULL;
}

static int key_index(const char *key, size_t len)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strlen(keys[i].pub.name) == len &&
            memcmp(keys[i].pub.name, key, len) == 0)
            return (int)i;
    return -1;
}

/* Parses "<decimal><unit>" into µs and its canonical text. */
static int parse_duration(const char *v, int64_t *us, char canon[32])
{
    static const struct {
        char unit;
        int64_t us;
    } units[] = {{'s', 1000000LL},
                 {'m', 60LL * 1000000},
                 {'h', 3600LL * 1000000},
                 {'d', 86400LL * 1000000}};
    uint64_t n = 0;
    size_t i = 0;

    while (v[i] >= '0' && v[i] <= '9') {
        if (n > DAYS_MAX * 86400ULL)
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
        i++;
    }
    if (i == 0 || v[i] == '\0' || v[i + 1] != '\0')
        return -1;
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (units[u].unit != v[i])
            continue;
        if (n > (uint64_t)DAYS_MAX * 86400000000ULL / (uint64_t)units[u].us)
            return -1;
        *us = (int64_t)n * units[u].us;
        snprintf(canon, 32, "%" PRIu64 "%c", n, v[i]);
        return 0;
    }
    return -1;
}

static int parse_count(const char *v, uint64_t *out)
{
    const char *p = v, *end = v + strlen(v);

    if (evs__take_u64(&p, end, out) != 0 || p != end)
        return -1;
    return 0;
}

/*
 * Checks `v` as a value of key i and writes its canonical text into
 * canon (room for PATH_MAX_LEN + 1). Returns 0 or -EINVAL with `ei`
 * saying what is accepted.
 */
static int check_value(size_t i, const char *v, char *canon,
                       evs_error_info *ei)
{
    const char *name = keys[i].pub.name;
    size_t len = strlen(v);
    uint64_t n;
    int64_t us;

    switch (keys[i].kind) {
    case K_RETENTION:
        if (strcmp(v, "forever") == 0) {
            memcpy(canon, "forever", sizeof("forever"));
            return 0;
        }
        if (parse_duration(v, &us, canon) == 0)
            return 0;
        evs__error_set(ei, -EINVAL, "settings",
                       "%s: '%.64s' is not a duration: give a number and "
                       "a unit (s, m, h or d; at most %dd), or 'forever'",
                       name, v, DAYS_MAX);
        return -EINVAL;
    case K_INTERVAL:
        if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0) {
            memcpy(canon, "off", sizeof("off"));
            return 0;
        }
        if (parse_duration(v, &us, canon) == 0 && us > 0)
            return 0;
        evs__error_set(ei, -EINVAL, "settings",
                       "%s: '%.64s' is not an interval: give a number and "
                       "a unit (s, m, h or d), or 'off'",
                       name, v);
        return -EINVAL;
    case K_COUNT:
        if (parse_count(v, &n) == 0) {
            snprintf(canon, 32, "%" PRIu64, n);
            return 0;
        }
        evs__error_set(ei, -EINVAL, "settings",
                       "%s: '%.64s' is not a count: give a decimal number "
                       "(0: none)",
                       name, v);
        return -EINVAL;
    case K_PATH:
        if (len == 0) {
            canon[0] = '\0';
            return 0;
        }
        if (v[0] != '/' || len > PATH_MAX_LEN || !evs__utf8_valid(v, len)) {
            evs__error_set(ei, -EINVAL, "settings",
                           "%s: give an absolute directory (beginning with "
                           "'/', at most %d bytes of UTF-8), or '' for none",
                           name, PATH_MAX_LEN);
            return -EINVAL;
        }
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)v[k] < 0x20 || v[k] == 0x7f) {
                evs__error_set(ei, -EINVAL, "settings",
                               "%s: a directory with a control character "
                               "is refused",
                               name);
                return -EINVAL;
            }
        memcpy(canon, v, len + 1);
        return 0;
    }
    return -EINVAL;
}

/* The count of key `name`, set or default. */
static uint64_t count_of(const evs_settings *st, const char *name)
{
    int i = key_index(name, strlen(name));
    const char *v = st->val[i] ? st->val[i] : keys[i].pub.default_value;
    uint64_t n = 0;

    parse_count(v, &n);
    return n;
}

/* A warning threshold above its hard limit would never warn before the
 * limit refuses: refused, whichever of the two is set last. */
static int check_limits(const evs_settings *st, evs_error_info *ei)
{
    static const char *const pairs[][2] = {
        {EVS_SET_LIMITS_WARN_EVENTS, EVS_SET_LIMITS_MAX_EVENTS},
        {EVS_SET_LIMITS_WARN_BYTES, EVS_SET_LIMITS_MAX_BYTES}};

    for (size_t i = 0; i < 2; i++) {
        uint64_t w = count_of(st, pairs[i][0]), m = count_of(st, pairs[i][1]);
        if (w && m && w > m) {
            evs__error_set(ei, -EINVAL, "settings",
                           "%s (%" PRIu64 ") may not exceed %s (%" PRIu64 ")",
                           pairs[i][0], w, pairs[i][1], m);
            return -EINVAL;
        }
    }
    return 0;
}

int evs_settings_new(const evs_allocator *alloc, evs_settings **out)
{
    evs_settings *st;

    if (!out)
        return -EINVAL;
    if (!(st = evs__calloc(alloc, sizeof(*st))))
        return -ENOMEM;
    st->alloc = alloc;
    *out = st;
    return 0;
}

void evs_settings_free(evs_settings *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        evs__free(st->alloc, st->val[i]);
    evs__free(st->alloc, st);
}

static int unknown_key(const char *key, evs_error_info *ei)
{
    evs__error_set(ei, -ENOENT, "settings",
                   "unknown setting '%.64s' (evdump config lists them)", key);
    return -ENOENT;
}

int evs_settings_get(const evs_settings *st, const char *key,
                     const char **value, int *is_set, evs_error_info *ei)
{
    int i;

    evs_error_info_clear(ei);
    if (!st || !key || (i = key_index(key, strlen(key))) < 0)
        return unknown_key(key ? key : "", ei);
    if (value)
        *value = st->val[i] ? st->val[i] : keys[i].pub.default_value;
    if (is_set)
        *is_set = st->val[i] != NULL;
    return 0;
}

int evs_settings_set(evs_settings *st, const char *key, const char *value,
                     evs_error_info *ei)
{
    char canon[PATH_MAX_LEN + 1], *old, *nv = NULL;
    size_t len;
    int i, rc;

    evs_error_info_clear(ei);
    if (!st || !key || (i = key_index(key, strlen(key))) < 0)
        return unknown_key(key ? key : "", ei);
    if (value) {
        if ((rc = check_value((size_t)i, value, canon, ei)) != 0)
            return rc;
        len = strlen(canon);
        if (!(nv = evs__malloc(st->alloc, len + 1)))
            return -ENOMEM;
        memcpy(nv, canon, len + 1);
    }
    old = st->val[i];
    st->val[i] = nv;
    if ((rc = check_limits(st, ei)) != 0) {
        st->val[i] = old;
        evs__free(st->alloc, nv);
        return rc;
    }
    evs__free(st->alloc, old);
    return 0;
}

static int typed(const evs_settings *st, const char *key, enum kind a,
                 enum kind b, const char **v)
{
    int i;

    if (!st || !key || (i = key_index(key, strlen(key))) < 0)
        return -ENOENT;
    if (keys[i].kind != a && keys[i].kind != b)
        return -EINVAL;
    *v = st->val[i] ? st->val[i] : keys[i].pub.default_value;
    return 0;
}

int evs_settings_duration(const evs_settings *st, const char *key, int64_t *us)
{
    char canon[32];
    const char *v;
    int rc;

    if ((rc = typed(st, key, K_RETENTION, K_INTERVAL, &v)) != 0)
        return rc;
    if (strcmp(v, "forever") == 0 || strcmp(v, "off") == 0) {
        *us = EVS_DURATION_NEVER;
        return 0;
    }
    return parse_duration(v, us, canon) == 0 ? 0 : -EINVAL;
}

int evs_settings_count(const evs_settings *st, const char *key, uint64_t *v)
{
    const char *t;
    int rc;

    if ((rc = typed(st, key, K_COUNT, K_COUNT, &t)) != 0)
        return rc;
    return parse_count(t, v) == 0 ? 0 : -EINVAL;
}

/* ------------------------------------------------------------------ */
/* The file's line                                                    */
/* ------------------------------------------------------------------ */

#define HEAD "{\"v\":1,\"kind\":\"settings\",\"values\":{"

int evs__settings_encode(const evs_settings *st, const evs_allocator *alloc,
                         char **out, size_t *len)
{
    evs__jbuf b = {0};
    int first = 1;

    b.alloc = alloc;
    EVS__JB_LIT(&b, HEAD);
    for (size_t i = 0; i < NKEYS; i++) {
        if (!st->val[i])
            continue;
        if (!first)
            EVS__JB_LIT(&b, ",");
        first = 0;
        evs__jb_quote(&b, evs_span_cstr(keys[i].pub.name));
        EVS__JB_LIT(&b, ":");
        if (keys[i].kind == K_COUNT)
            evs__jb_str(&b, st->val[i]);
        else
            evs__jb_quote(&b, evs_span_cstr(st->val[i]));
    }
    EVS__JB_LIT(&b, "},");
    if (evs__jb_reserve(&b, EVS__CKSUM_TAIL_LEN) != NULL)
        b.len = evs__frame_seal(b.p, b.len);
    return evs__jb_finish(&b, out, len);
}

static int damaged(evs_error_info *ei, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int damaged(evs_error_info *ei, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    evs__error_vset(ei, code, "settings", fmt, ap);
    va_end(ap);
    return code;
}

/* Reads one member of "values" into st. Returns 0 or the refusal. */
static int take_value(evs_settings *st, evs_span key, evs_span val,
                      evs_error_info *ei)
{
    evs__jbuf t = {0};
    char *text = NULL, canon[PATH_MAX_LEN + 1];
    int i = key_index(key.ptr, key.len), rc;

    t.alloc = st->alloc;
    if (i < 0)
        return damaged(ei, EVS_EFORMAT,
                       "settings file: setting '%.*s' is unknown to this "
                       "library (written by a newer one?)",
                       (int)(key.len > 64 ? 64 : key.len), key.ptr);
    if (st->val[i])
        return damaged(ei, EVS_ECORRUPT, "settings file: '%s' given twice",
                       keys[i].pub.name);
    if (keys[i].kind == K_COUNT) {
        if (val.len == 0 || val.ptr[0] == '"')
            goto bad;
        evs__jb_raw(&t, val.ptr, val.len);
    } else {
        if (val.len < 2 || val.ptr[0] != '"')
            goto bad;
        if ((rc = evs__jb_unescape(&t, (evs_span){val.ptr + 1, val.len - 2})))
            goto bad_rc;
    }
    if ((rc = evs__jb_finish(&t, &text, NULL)) != 0)
        goto bad_rc;
    if (strlen(text) > PATH_MAX_LEN ||
        check_value((size_t)i, text, canon, NULL) != 0 ||
        strcmp(text, canon) != 0) {
        evs__free(st->alloc, text);
        goto bad;
    }
    st->val[i] = text;
    return 0;
bad_rc:
    evs__jb_free(&t);
    if (rc == -ENOMEM)
        return rc;
bad:
    evs__jb_free(&t);
    return damaged(ei, EVS_ECORRUPT,
                   "settings file: '%s' has a value that is not one",
                   keys[i].pub.name);
}

int evs__settings_decode(const evs_allocator *alloc, const char *buf,
                         size_t len, evs_settings **out, evs_error_info *ei)
{
    evs_settings *st = NULL;
    evs_span obj, v, key, val;
    const char *nl = memchr(buf, '\n', len);
    size_t body;
    int64_t ver;
    evs__jit it;
    int rc, more;

    if (!nl || (size_t)(nl - buf) + 1 != len)
        return damaged(ei, EVS_ECORRUPT,
                       "settings file: not one line ending in a newline");
    if ((rc = evs__frame_check(buf, len, &body)) != 0)
        return damaged(ei, EVS_ECORRUPT, "settings file: %s",
                       rc == EVS_ECORRUPT ? "checksum does not match"
                                          : "checksum framing is broken");
    /* The framing holds, so the object is the line without its newline;
     * check it strictly before reading it as trusted JSON. */
    if (evs_json_check(buf, len - 1, 0, NULL, NULL, NULL) != 0)
        return damaged(ei, EVS_ECORRUPT, "settings file: not valid JSON");
    obj = (evs_span){buf, len - 1};
    if (evs__json_get(obj, "v", &v) != 1 || evs__json_int(v, &ver) != 0 ||
        ver < 1)
        return damaged(ei, EVS_ECORRUPT, "settings file: no version");
    if (ver != 1)
        return damaged(ei, EVS_EFORMAT,
                       "settings file: written in format %" PRId64
                       "; this library reads format 1",
                       ver);
    if (len < sizeof(HEAD) - 1 || memcmp(buf, HEAD, sizeof(HEAD) - 1) != 0)
        return damaged(ei, EVS_ECORRUPT,
                       "settings file: does not begin as a settings line");
    if (evs__json_get(obj, "values", &v) != 1 ||
        evs__json_iter_begin(&it, v, '{') != 0 ||
        (size_t)(v.ptr + v.len - buf) + 1 != body)
        return damaged(ei, EVS_ECORRUPT,
                       "settings file: no values before the checksum");
    if ((rc = evs_settings_new(alloc, &st)) != 0)
        return rc;
    while ((more = evs__json_obj_next(&it, &key, &val)) == 1)
        if ((rc = take_value(st, key, val, ei)) != 0)
            goto fail;
    if (more < 0) {
        rc = damaged(ei, EVS_ECORRUPT, "settings file: malformed values");
        goto fail;
    }
    if (check_limits(st, NULL) != 0) {
        rc = damaged(ei, EVS_ECORRUPT,
                     "settings file: a warning limit exceeds its hard limit");
        goto fail;
    }
    *out = st;
    return 0;
fail:
    evs_settings_free(st);
    return rc;
}
