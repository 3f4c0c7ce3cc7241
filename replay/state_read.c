/*
 * state_read.c: reading the replayed state back from its JSON (FORMAT.md,
 * "Replay state"), as state_write.c writes it, by the field lists of
 * state_fields.h. evs_replay_load_state and the snapshot a replayer
 * opens from come here.
 *
 * The reader takes JSON values back byte for byte (json-c would reformat
 * numbers).
 */
#include "replay_int.h"
#include "state_fields.h"

#include <errno.h>
#include <limits.h>

/*
 * A state is read in one pass that checks its JSON as it goes, exactly as
 * strictly as evs_json_check() (the same scanners; nested values go
 * through evs__json_check_value), and fills the state from it. Nothing is
 * copied: the replayer owns the text (the snapshot it was read from, or
 * one copy of the caller's text), its spans point into it, and strings
 * with escapes are unescaped where they stand (unescaping never grows).
 *
 * A state of a million events is hundreds of MiB, most of it the steps'
 * JSON values, so the pass does little per byte: keys are looked up in
 * their canonical order first (one comparison when the writer wrote
 * them), values the state keeps as JSON are checked and pointed at.
 *
 * Errors keep the meaning of "check the text, then read it": a syntax
 * error anywhere makes the load EVS_EPARSE, whatever came before it. A
 * well-formed value the state cannot use (a string where a number must
 * be, an unknown status, a newer version, no memory) is remembered, the
 * first one only, and the rest of the text is still checked, but no
 * longer applied; that error is the result if the text turns out to be
 * JSON.
 */

/* What the readers return on a syntax error: no error code is this. */
#define SYNTAX INT_MIN

typedef struct rd {
    evs_replay *r;
    char *p, *end;
    int err; /* the first error of meaning; 0 while the state applies */
} rd;

/* A key as the writer writes it, "key": (n is its length plus 3). */
typedef struct mkey {
    const char *s;
    size_t n;
} mkey;

#define KEY(k)                                                                 \
    {                                                                          \
        "\"" k "\":", sizeof(k) + 2                                            \
    }

static const evs_span empty = {"", 0};

static void ws(rd *d)
{
    while (d->p < d->end && (unsigned char)*d->p <= ' ' &&
           (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

/* The next byte is c (no whitespace skipped). */
static int at(const rd *d, char c)
{
    return d->p < d->end && *d->p == c;
}

/*
 * Checks the value at d->p, which sits `depth` containers deep, moves
 * past it and sets *v to its text. Strings, numbers and literals are
 * scanned here; objects and arrays by the formats layer's checker.
 */
static int value(rd *d, size_t depth, evs_span *v)
{
    const unsigned char *p = (const unsigned char *)d->p;
    const unsigned char *end = (const unsigned char *)d->end;
    const char *q;
    int bad;

    if (p == end)
        return SYNTAX;
    switch (*p) {
    case '"': bad = evs__json_scan_string(&p, end); break;
    case '{':
    case '[':
        q = evs__json_check_value(d->p, d->end, depth);
        bad = q == NULL;
        p = (const unsigned char *)q;
        break;
    case 't': bad = evs__json_scan_lit(&p, end, "true", 4); break;
    case 'f': bad = evs__json_scan_lit(&p, end, "false", 5); break;
    case 'n': bad = evs__json_scan_lit(&p, end, "null", 4); break;
    default:
        if (*p != '-' && !evs__is_digit(*p))
            return SYNTAX;
        bad = evs__json_scan_number(&p, end);
        break;
    }
    if (bad)
        return SYNTAX;
    v->ptr = d->p;
    v->len = (size_t)((const char *)p - d->p);
    d->p = (char *)p;
    return 0;
}

/* Whether p[0..n) is q[0..n), for 4 <= n (a key's text): a few word
 * compares instead of a call. */
static inline int same(const char *p, const char *q, size_t n)
{
    uint64_t a, b;
    uint32_t x, y, z, w;
    size_t i;

    if (n < 8) {
        memcpy(&x, p, 4);
        memcpy(&y, q, 4);
        memcpy(&z, p + n - 4, 4);
        memcpy(&w, q + n - 4, 4);
        return x == y && z == w;
    }
    for (i = 0; i + 8 < n; i += 8) {
        memcpy(&a, p + i, 8);
        memcpy(&b, q + i, 8);
        if (a != b)
            return 0;
    }
    memcpy(&a, p + n - 8, 8);
    memcpy(&b, q + n - 8, 8);
    return a == b;
}

/*
 * Which of keys[0..n) k (a key's raw text, still escaped, as the writer's
 * plain keys are compared) is, or -1; *next as for member().
 */
static int lookup(const mkey *keys, int n, evs_span k, int *next)
{
    for (int i = 0; i < n; i++)
        if (keys[i].n - 3 == k.len &&
            memcmp(keys[i].s + 1, k.ptr, k.len) == 0) {
            *next = i + 1;
            return i;
        }
    return -1;
}

/* member() past its quick cases: a key read as a string and looked up
 * in the whole table. */
static int __attribute__((noinline))
member_key(rd *d, const mkey *keys, int n, int *next, int *idx)
{
    const unsigned char *p;
    evs_span k;

    ws(d);
    p = (const unsigned char *)d->p;
    if (!at(d, '"') ||
        evs__json_scan_string(&p, (const unsigned char *)d->end) != 0)
        return SYNTAX;
    k.ptr = d->p + 1;
    k.len = (size_t)((const char *)p - d->p) - 2;
    d->p = (char *)p;
    ws(d);
    if (!at(d, ':'))
        return SYNTAX;
    d->p++;
    ws(d);
    *idx = lookup(keys, n, k, next);
    return 1;
}

/*
 * The next member of an object whose '{' has been read: 1 with *idx the
 * index of its key in keys[0..n) (-1 for a key not there) and d->p on its
 * value; 0 past the closing '}'. *first is set for the first call.
 *
 * Writers put every member in one order, so the key after the last one
 * found (*next) is tried first, as the exact text "key": (the keys are
 * plain ASCII, so that text is a valid string and its colon); anything
 * else takes the general way.
 */
static inline int member(rd *d, int *first, const mkey *keys, int n, int *next,
                         int *idx)
{
    int i = *next;

    ws(d);
    if (at(d, '}')) {
        d->p++;
        return 0;
    }
    if (!*first) {
        if (!at(d, ','))
            return SYNTAX;
        d->p++; /* whitespace after it fails the quick way: no loss */
    }
    *first = 0;
    if (i < n && (size_t)(d->end - d->p) >= keys[i].n &&
        same(d->p, keys[i].s, keys[i].n)) {
        d->p += keys[i].n;
        *next = i + 1;
        *idx = i;
        ws(d);
        return 1;
    }
    return member_key(d, keys, n, next, idx);
}

/* The next element of an array whose '[' has been read, as member(). */
static int element(rd *d, int *first)
{
    ws(d);
    if (at(d, ']')) {
        d->p++;
        return 0;
    }
    if (!*first) {
        if (!at(d, ','))
            return SYNTAX;
        d->p++;
        ws(d);
    }
    *first = 0;
    return 1;
}

static int is_null(evs_span v)
{
    return v.len == 4 && memcmp(v.ptr, "null", 4) == 0;
}

/* Notes an error of meaning (the first one only). */
static void fail(rd *d, int rc)
{
    if (d->err == 0)
        d->err = rc;
}

/* Each getter checks the value and, while the state applies, sets its
 * target; a member that is absent leaves its target alone. */

/* A string, unescaped, or null (empty). */
static int g_str(rd *d, size_t depth, evs_span *out)
{
    evs_span v;
    char *s;
    size_t n;

    if (value(d, depth, &v) != 0)
        return SYNTAX;
    if (d->err)
        return 0;
    if (is_null(v)) {
        *out = empty;
        return 0;
    }
    if (v.ptr[0] != '"') {
        fail(d, EVS_EPARSE);
        return 0;
    }
    s = (char *)v.ptr + 1;
    n = v.len - 2;
    if (n == 0) {
        *out = empty;
        return 0;
    }
    /* The scan accepted every escape, so unescaping cannot fail. */
    if (memchr(s, '\\', n) != NULL)
        n = evs__json_unescape(s, n, s);
    out->ptr = s;
    out->len = n;
    return 0;
}

/* Any JSON value, as it is written; null is empty. */
static int g_json(rd *d, size_t depth, evs_span *out)
{
    evs_span v;

    if (value(d, depth, &v) != 0)
        return SYNTAX;
    if (!d->err)
        *out = is_null(v) ? empty : v;
    return 0;
}

/*
 * An integer. The common case, a JSON integer of at most 18 digits (which
 * cannot overflow), is read as it is scanned; anything else (a fraction,
 * an exponent, a longer number, another value) takes the general way:
 * checked by value(), read by evs__json_int() (which refuses all but
 * integers that fit int64). `nonneg` refuses negative numbers.
 */
static int g_int(rd *d, size_t depth, int64_t *out, int nonneg)
{
    const char *p = d->p, *s;
    uint64_t x = 0;
    int neg = 0;
    evs_span v;
    int64_t y;

    if (p < d->end && *p == '-') {
        neg = 1;
        p++;
    }
    s = p;
    if (p < d->end && *p == '0')
        p++; /* no leading zeros: what follows is not part of it */
    else
        while (p < d->end && evs__is_digit((unsigned char)*p))
            x = x * 10 + (uint64_t)(*p++ - '0'); /* wraps past 19 digits */
    if (p == s || p - s > 18 ||
        (p < d->end && (*p == '.' || *p == 'e' || *p == 'E'))) {
        if (value(d, depth, &v) != 0)
            return SYNTAX;
        if (d->err)
            return 0;
        if (evs__json_int(v, &y) != 0 || (nonneg && y < 0))
            fail(d, EVS_EPARSE);
        else
            *out = y;
        return 0;
    }
    d->p = (char *)p;
    if (d->err)
        return 0;
    y = neg ? -(int64_t)x : (int64_t)x;
    if (nonneg && y < 0)
        fail(d, EVS_EPARSE);
    else
        *out = y;
    return 0;
}

static int g_i64(rd *d, size_t depth, int64_t *out)
{
    return g_int(d, depth, out, 0);
}

static int g_u64(rd *d, size_t depth, uint64_t *out)
{
    int64_t x;
    int rc;

    if ((rc = g_int(d, depth, &x, 1)) == 0 && !d->err)
        *out = (uint64_t)x;
    return rc;
}

/* true is 1, any other value 0. */
static int g_bool(rd *d, size_t depth, int *out)
{
    evs_span v;

    if (value(d, depth, &v) != 0)
        return SYNTAX;
    if (d->err)
        return 0;
    if (v.len == 4 && memcmp(v.ptr, "true", 4) == 0)
        *out = 1;
    else if (v.len == 5 && memcmp(v.ptr, "false", 5) == 0)
        *out = 0;
    else
        fail(d, EVS_EPARSE);
    return 0;
}

static int g_enum(rd *d, size_t depth, const char *(*name)(int), int n,
                  int *out)
{
    evs_span v;

    if (value(d, depth, &v) != 0)
        return SYNTAX;
    if (d->err)
        return 0;
    for (int i = 0; i < n; i++) {
        const char *s = name(i);
        size_t l = strlen(s);
        if (v.len == l + 2 && memcmp(v.ptr + 1, s, l) == 0) {
            *out = i;
            return 0;
        }
    }
    fail(d, EVS_EPARSE);
    return 0;
}

/* A member the state does not know: checked, and skipped. */
static int g_skip(rd *d, size_t depth)
{
    evs_span v;

    return value(d, depth, &v);
}

static const char *exec_name(int i)
{
    return evs_exec_status_name((evs_exec_status)i);
}

static const char *path_name(int i)
{
    return evs_path_status_name((evs_path_status)i);
}

static const char *step_name(int i)
{
    return evs_step_status_name((evs_step_status)i);
}

/*
 * Starts reading an object that sits `depth` containers deep: 1 when the
 * value at d->p is one (its '{' is read), 0 when it is some other value
 * (checked, skipped, and an error of meaning).
 */
static int open_obj(rd *d, size_t depth)
{
    if (at(d, '{')) {
        d->p++;
        return 1;
    }
    if (g_skip(d, depth) != 0)
        return SYNTAX;
    fail(d, EVS_EPARSE);
    return 0;
}

/*
 * Reads the array at d->p (a member of the state, one container deep):
 * fn reads each element. With `objects`, an element must be an object,
 * whose '{' is read before fn reads its members (three deep); otherwise
 * fn reads the element itself (two deep).
 */
static int each_elem(rd *d, int (*fn)(rd *d), int objects)
{
    int first = 1, rc;

    if (!at(d, '[')) {
        if (g_skip(d, 1) != 0)
            return SYNTAX;
        fail(d, EVS_EPARSE);
        return 0;
    }
    d->p++;
    while ((rc = element(d, &first)) == 1) {
        if (objects && (rc = open_obj(d, 2)) < 0)
            return rc;
        if ((!objects || rc == 1) && (rc = fn(d)) != 0)
            return rc;
    }
    return rc;
}

static int each_obj(rd *d, int (*fn)(rd *d))
{
    return each_elem(d, fn, 1);
}

/* Reads the members of the object whose '{' was just read, the switch
 * that follows taking each one's value by its key's index; rc (0 to
 * start with) ends the loop on a syntax error. */
#define MEMBERS(keys)                                                          \
    int first_ = 1, next_ = 0, more_ = 0, i_ = -1;                             \
    while (rc == 0 && (more_ = member(d, &first_, keys,                        \
                                      (int)(sizeof(keys) / sizeof(keys[0])),   \
                                      &next_, &i_)) == 1)                      \
        switch (i_)

#define END_MEMBERS                                                            \
    if (rc == 0 && more_ < 0)                                                  \
        rc = SYNTAX;                                                           \
    if (rc != 0)                                                               \
    return rc

/*
 * The code the field lists expand to: the members of one object, read
 * into `o` (a pointer to the record; the execution's state at the top)
 * with `rc` (0 to start with) in the function that holds it. Each member
 * has an index (i_<member>) into a key table made from the same list,
 * which member() tries in order first; the switch takes each value by
 * its type. A U32 member is read into an int64_t of its own
 * (u32_<member>) and checked once the record is read (READ_END), as a
 * range error of meaning.
 */
#define READ_MEMBERS(FIELDS, depth)                                            \
    enum { FIELDS(R_INDEX) n_keys_ };                                          \
    static const mkey keys_[] = {FIELDS(R_KEY)};                               \
    const size_t depth_ = (depth);                                             \
    FIELDS(R_DECL)                                                             \
    MEMBERS(keys_)                                                             \
    {                                                                          \
        FIELDS(R_CASE)                                                         \
    default: rc = g_skip(d, depth_); break;                                    \
    }                                                                          \
    END_MEMBERS

/* After READ_MEMBERS: returns 0 unless the record applies. */
#define READ_END(FIELDS)                                                       \
    if (d->err)                                                                \
        return 0;                                                              \
    FIELDS(R_POST)

#define R_INDEX(T, k, m) i_##m,
#define R_KEY(T, k, m) KEY(k),
#define R_CASE(T, k, m)                                                        \
    case i_##m:                                                                \
        R_##T(m);                                                              \
        break;
#define R_DECL(T, k, m) D_##T(m)
#define R_POST(T, k, m) P_##T(m)

#define R_STR(m) rc = g_str(d, depth_, &o->m)
#define R_JSON(m) rc = g_json(d, depth_, &o->m)
#define R_I64(m) rc = g_i64(d, depth_, &o->m)
#define R_U64(m) rc = g_u64(d, depth_, &o->m)
#define R_U32(m) rc = g_i64(d, depth_, &u32_##m)
#define R_BOOL(m) rc = g_bool(d, depth_, &o->m)
#define R_ENUM(m, type, names, n)                                              \
    do {                                                                       \
        int e_ = (int)o->m;                                                    \
        rc = g_enum(d, depth_, names, n, &e_);                                 \
        o->m = (type)e_;                                                       \
    } while (0)
#define R_EXEC_STATUS(m)                                                       \
    R_ENUM(m, evs_exec_status, exec_name, EVS_STATUS_CONTINUED + 1)
#define R_PATH_STATUS(m)                                                       \
    R_ENUM(m, evs_path_status, path_name, EVS_PATH_CANCELLED + 1)
#define R_STEP_STATUS(m)                                                       \
    R_ENUM(m, evs_step_status, step_name, EVS_STEP_CANCELLED + 1)
/* The top's own: `ver` and `compact` are load_all's. */
#define R_VERSION(m)                                                           \
    if ((rc = g_i64(d, depth_, &ver)) == 0 && !d->err && ver != STATE_VERSION) \
    fail(d, EVS_EFORMAT)
#define R_FLAG(m) rc = g_bool(d, depth_, &d->r->m)
#define R_FAILED(m) rc = rd_failed(d)
#define R_CONTROL(m) rc = rd_control(d, &o->m)
#define R_RECORDS(m) rc = each_obj(d, rd_##m)
#define R_STEPS(m)                                                             \
    reserve_steps(d);                                                          \
    rc = each_obj(d, rd_##m)
#define R_GONE(m) rc = each_elem(d, rd_gone, 0)
#define R_COMPACT(m) rc = g_bool(d, depth_, &compact)

#define D_U32(m) int64_t u32_##m = 0;
#define P_U32(m)                                                               \
    if (u32_##m < 0 || u32_##m > UINT32_MAX) {                                 \
        fail(d, EVS_EPARSE); /* no replay counts that far */                   \
        return 0;                                                              \
    }                                                                          \
    o->m = (uint32_t)u32_##m;
#define D_STR(m)
#define D_JSON(m)
#define D_I64(m)
#define D_U64(m)
#define D_BOOL(m)
#define D_EXEC_STATUS(m)
#define D_PATH_STATUS(m)
#define D_STEP_STATUS(m)
#define D_VERSION(m)
#define D_FLAG(m)
#define D_FAILED(m)
#define D_CONTROL(m)
#define D_RECORDS(m)
#define D_STEPS(m)
#define D_GONE(m)
#define D_COMPACT(m)
#define P_STR(m)
#define P_JSON(m)
#define P_I64(m)
#define P_U64(m)
#define P_BOOL(m)
#define P_EXEC_STATUS(m)
#define P_PATH_STATUS(m)
#define P_STEP_STATUS(m)

/* The depth of an element's members: the state, its array, the
 * element. */
#define ELEM_DEPTH 3

/* The steps' count of failures for good follows them in. */
static int add_step(evs_replay *r, const evs_step_state *s)
{
    int rc = evs__rp_add_step(r, s);

    if (rc == 0 && s->status == EVS_STEP_FAILED)
        r->nfailed++;
    return rc;
}

/* Signals and waits have no index of their own. */
static int add_signal(evs_replay *r, const evs_signal_state *s)
{
    if (!evs__rp_grow(r, (void **)&r->signals.v, &r->signals.cap, r->signals.n,
                      sizeof(*s)))
        return -ENOMEM;
    r->signals.v[r->signals.n++] = *s;
    return 0;
}

static int add_wait(evs_replay *r, const evs_wait_state *w)
{
    if (!evs__rp_grow(r, (void **)&r->waits.v, &r->waits.cap, r->waits.n,
                      sizeof(*w)))
        return -ENOMEM;
    r->waits.v[r->waits.n++] = *w;
    return w->ended_seq ? 0 : evs__rp_note_pending(r, r->waits.n - 1);
}

/*
 * static int rd_<name>(rd *d): one element of an array of records, whose
 * '{' has been read: a record zeroed, then changed by `init`, read, and
 * given to add(r, &record) if it applies (its error is the load's).
 */
#define DEFINE_READER(name, type, FIELDS, init, add)                           \
    static int rd_##name(rd *d)                                                \
    {                                                                          \
        type e, *o = &e;                                                       \
        int rc = 0;                                                            \
                                                                               \
        memset(&e, 0, sizeof(e));                                              \
        init;                                                                  \
        READ_MEMBERS(FIELDS, ELEM_DEPTH);                                      \
        READ_END(FIELDS)                                                       \
        if ((rc = add(d->r, &e)) != 0)                                         \
            fail(d, rc);                                                       \
        return 0;                                                              \
    }

DEFINE_READER(paths, evs_path_state, PATH_FIELDS, (void)0, evs__rp_add_path)
DEFINE_READER(steps, evs_step_state, STEP_FIELDS, e.iteration = -1, add_step)
DEFINE_READER(eaches, evs_each_state, EACH_FIELDS, (void)0, evs__rp_add_each)
DEFINE_READER(vars, evs_var_state, VAR_FIELDS, (void)0, evs__rp_add_var)
DEFINE_READER(signals, evs_signal_state, SIGNAL_FIELDS, (void)0, add_signal)
DEFINE_READER(versions, evs_version_state, VERSION_FIELDS, (void)0,
              evs__rp_add_version)
DEFINE_READER(timers, evs_timer_state, TIMER_FIELDS, (void)0, evs__rp_add_timer)
DEFINE_READER(waits, evs_wait_state, WAIT_FIELDS, (void)0, add_wait)
DEFINE_READER(names, evs_stepname_state, NAME_FIELDS, (void)0,
              evs__rp_add_stepname)

/* One string of `consumed_ids`. */
static int rd_gone(rd *d)
{
    evs_span id;
    int rc;

    if ((rc = g_str(d, 2, &id)) != 0)
        return rc;
    if (!d->err && (rc = evs__rp_add_gone(d->r, id)) != 0)
        fail(d, rc);
    return 0;
}

/* `failed`, whose members sit two deep. */
static int rd_failed(rd *d)
{
    evs_exec_state *o = &d->r->exec;
    int rc;

    if ((rc = open_obj(d, 1)) <= 0)
        return rc;
    rc = 0;
    READ_MEMBERS(FAILED_FIELDS, 2);
    return 0;
}

/* `paused`, `resumed` or `terminated`, whose members sit two deep. */
static int rd_control(rd *d, evs_control_state *o)
{
    int rc;

    if ((rc = open_obj(d, 1)) <= 0)
        return rc;
    rc = 0;
    READ_MEMBERS(CONTROL_FIELDS, 2);
    return 0;
}

/*
 * The smallest step the writer writes; the steps are most of a large
 * state, so the text left when they start, divided by this, bounds their
 * number: the vector is sized once (the bound is seldom more than three
 * times the count, and what is not used is only address space) instead
 * of being copied at every doubling, which for 464k steps cost an eighth
 * of the load. Only large states bother. Each member counts as
 * ,"key":value with the shortest value of its type, less the first
 * member's comma.
 */
#define MIN_STR "\"\""
#define MIN_JSON "null"
#define MIN_I64 "0"
#define MIN_U64 "0"
#define MIN_U32 "0"
#define MIN_STEP_STATUS "\"failed\""
#define MIN_TEXT(T, k, m) ",\"" k "\":" MIN_##T
#define STEP_TEXT_MIN (sizeof("{" STEP_FIELDS(MIN_TEXT) "},") - 2)
#define RESERVE_MIN ((size_t)1 << 20)

static void reserve_steps(rd *d)
{
    evs_replay *r = d->r;
    size_t left = (size_t)(d->end - d->p);

    if (left >= RESERVE_MIN && !d->err)
        evs__rp_reserve(r, (void **)&r->steps.v, &r->steps.cap,
                        r->steps.n + left / STEP_TEXT_MIN, sizeof(*r->steps.v));
}

/* The whole state: an object, then only whitespace. */
static int load_all(rd *d)
{
    evs_exec_state *o = &d->r->exec;
    int64_t ver = -1;
    int compact = 0, rc = 0;

    ws(d);
    if (!at(d, '{'))
        return SYNTAX; /* JSON or not, it is no state */
    d->p++;
    READ_MEMBERS(STATE_FIELDS, 1);
    ws(d);
    if (d->p != d->end)
        return SYNTAX;
    if (d->err)
        return d->err;
    if (ver < 0)
        return EVS_EPARSE;
    /* A full replayer cannot have back what a compact state dropped; a
     * compact one drops from a full state what it would have dropped
     * while replaying it. */
    if (compact && !d->r->opts.compact)
        return EVS_EFORMAT;
    if (!compact && d->r->opts.compact)
        return evs__rp_drop(d->r, EVS__DROP_ALL);
    return 0;
}

/* Loads the state from text[0..len), which the replayer already owns
 * and which the load may change (escapes are undone in place). */
static int load_owned(evs_replay *r, char *text, size_t len)
{
    rd d = {r, text, text + len, 0};
    int rc = load_all(&d);

    if (rc == SYNTAX)
        rc = EVS_EPARSE;
    if (rc != 0)
        evs__rp_reset(r);
    return rc;
}

int evs_replay_load_state(evs_replay *r, const char *json, size_t len)
{
    evs_span text;
    int rc;

    evs__rp_reset(r);
    if (len == 0)
        return EVS_EPARSE;
    /* One copy, into the arena, which the state's spans then point
     * into: it lives as long as they do. */
    if ((rc = evs__rp_copy(r, (evs_span){json, len}, &text)) != 0)
        return rc;
    return load_owned(r, (char *)text.ptr, len);
}

int evs__rp_load_state_snapshot(evs_replay *r, evs_snapshot *sn)
{
    int rc;

    /* Kept only when both sides use the C library's memory: a replayer
     * with an allocator of its own has all its memory from it, and one
     * does not come to depend on the store's allocator (whose context
     * may end with the store). */
    if ((r->alloc != NULL && r->alloc != evs_default_allocator()) ||
        !evs__snapshot_libc(sn)) {
        rc = evs_replay_load_state(r, sn->state.ptr, sn->state.len);
        evs_snapshot_free(sn);
        return rc;
    }
    evs__rp_reset(r);
    r->snapshot = sn;
    if (sn->state.len == 0) {
        evs__rp_reset(r);
        return EVS_EPARSE;
    }
    return load_owned(r, (char *)sn->state.ptr, sn->state.len);
}
