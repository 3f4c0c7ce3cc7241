/*
 * snapshot_int.h: what the snapshot encoder (snapshot.c) and decoder
 * (snapshot_decode.c) share: the layout of a decoded snapshot's one
 * allocation, and the canonical fields of the format, in order (FORMAT.md,
 * "The snapshot file"). Private to those two files.
 */
#ifndef EVS_SNAPSHOT_INT_H
#define EVS_SNAPSHOT_INT_H

#include "formats_int.h"

#include <stddef.h>
#include <stdint.h>

/*
 * A decoded snapshot is one allocation: this block, whose `snap` is what
 * the caller sees, followed by the bytes its spans point to. The allocator
 * is copied by value so that a caller's evs_allocator may live on the
 * stack; evs_snapshot_free() finds the block again with offsetof().
 */
typedef struct sum_run sum_run;

typedef struct snap_block {
    evs_allocator alloc;
    sum_run *run; /* a read buffer's running checksums, or NULL */
    evs_snapshot snap;
    char bytes[];
} snap_block;

typedef struct lit {
    const char *s;
    size_t n;
} lit;

#define LIT(x)                                                                 \
    {                                                                          \
        x, sizeof(x) - 1                                                       \
    }

/* A key in canonical order, with the separator before it, and where its
 * value lives in evs_snapshot. */
typedef struct field {
    lit key;
    size_t off;
} field;

#define FIELD(k, m)                                                            \
    {                                                                          \
        LIT(k), offsetof(evs_snapshot, m)                                      \
    }

#define N_STR 5
#define N_TIME 4
#define N_JSON 6

static const lit hdr_open = LIT("{\"v\":");
static const lit hdr_kind = LIT(",\"kind\":\"snapshot\"");
static const field str_fields[N_STR] = {
    FIELD(",\"id\":", id),
    FIELD(",\"workflow_name\":", workflow_name),
    FIELD(",\"workflow_hash\":", workflow_hash),
    FIELD(",\"inputs_hash\":", inputs_hash),
    FIELD(",\"status\":", status),
};
static const field time_fields[N_TIME] = {
    FIELD(",\"start_time\":", start_time_us),
    FIELD(",\"end_time\":", end_time_us),
    FIELD(",\"created_at\":", created_at_us),
    FIELD(",\"updated_at\":", updated_at_us),
};
static const lit seq_key = LIT(",\"last_event_seq\":");
static const lit blen_key = LIT(",\"body_len\":");
static const lit bsum_key = LIT(",\"body_checksum\":\"");
static const field json_fields[N_JSON] = {
    FIELD("{\"workflow_data\":", workflow_data),
    FIELD(",\"inputs\":", inputs),
    FIELD(",\"outputs\":", outputs),
    FIELD(",\"error\":", error),
    FIELD(",\"lineage\":", lineage),
    FIELD(",\"state\":", state),
};
static const lit null_lit = LIT("null");

/* Spans larger than this cannot be real; refusing them keeps every size
 * sum below SIZE_MAX without checking each addition. */
#define SPAN_LEN_MAX (SIZE_MAX / 32)

static inline evs_span span_at(const evs_snapshot *s, field f)
{
    return *(const evs_span *)((const char *)s + f.off);
}

static inline evs_span *span_ref(evs_snapshot *s, field f)
{
    return (evs_span *)((char *)s + f.off);
}

static inline int64_t time_at(const evs_snapshot *s, field f)
{
    return *(const int64_t *)((const char *)s + f.off);
}

static inline char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static inline char *put_lit(char *p, lit l)
{
    return put(p, l.s, l.n);
}

/*
 * Skips a string at p (on its opening quote); returns its end or NULL.
 * Large states are mostly long strings, so this jumps from quote to quote
 * with memchr and only then looks back for escaping backslashes.
 */
static inline const char *skip_string(const char *p, const char *end)
{
    const char *start = ++p, *q;

    while ((q = memchr(p, '"', (size_t)(end - p))) != NULL) {
        const char *b = q;
        while (b > start && b[-1] == '\\')
            b--;
        if ((q - b) % 2 == 0)
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

#endif /* EVS_SNAPSHOT_INT_H */
