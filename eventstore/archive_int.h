/*
 * archive_int.h: what the files of archival share (archive_bundle.c, the
 * bundle's bytes; archive_log.c, checking a log held in memory;
 * archive.c, archiving and restoring; archive_record.c, the store's
 * records of archived executions). Tests include it too.
 */
#ifndef EVS_ARCHIVE_INT_H
#define EVS_ARCHIVE_INT_H

#include "evstore/archive.h"
#include "store_int.h"

/* The fixed header of format 1 (formats/BUNDLES.md §2). */
#define EVS__BUNDLE_HDR 64
#define EVS__BUNDLE_TRAILER 8
/* A header longer than this is damage, whatever the version. */
#define EVS__BUNDLE_HDR_MAX 4096

/* What checking a log in memory found (archive_log.c). Spans point into
 * the log's bytes. */
typedef struct evs__log_facts {
    uint64_t events, last_seq;
    int64_t started_us, ended_us; /* first event; terminal event, or 0 */
    const char *status;           /* static: the terminal event's status,
                                     NULL when the log has not ended */
    evs_span workflow;            /* execution_started's workflow_name as
                                     a JSON string token, or empty */
    evs_span lineage;             /* its lineage object, or empty */
} evs__log_facts;

/*
 * Checks log[0..len) of execution id as a reader of a whole log does
 * (FORMAT.md §2-§3): every line complete, its checksum, its execution,
 * sequences from 1 without gaps, appends framed and complete at the end.
 * Returns 0 with *f filled, EVS_ECORRUPT (ei: kind "log", the sequence
 * expected and the byte offset in the log), EVS_EFORMAT or -ENOMEM.
 */
int evs__log_check(const char *log, size_t len, const char *id, size_t id_len,
                   const evs_allocator *alloc, evs__log_facts *f,
                   evs_error_info *ei);

/* What a bundle is made of. */
typedef struct evs__bundle_src {
    const char *id;
    size_t id_len;
    evs_span log, snap; /* snap empty: none */
    const evs__log_facts *facts;
    evs_span status; /* what the manifest says */
    int level;
} evs__bundle_src;

/* Encodes a bundle into *out (from alloc), *len bytes; *checksum gets
 * its trailer. Returns 0, -ENOMEM or -EIO (zstd failed). */
int evs__bundle_encode(const evs__bundle_src *src, const evs_allocator *alloc,
                       char **out, size_t *len, uint64_t *checksum);

/* Whether the bundle buf[0..len) holds exactly the log and snapshot of
 * src, checked without keeping its content: its framing and checksums
 * (formats/BUNDLES.md §2.1, 1-4), a manifest line that checks out, then
 * the decompressed log and snapshot compared with src's as they come,
 * and zstd's own checksum at the frame's end. Returns 0 with *checksum
 * set to the bundle's trailer, EVS_ECORRUPT (ei->kind "bundle" when it
 * is another execution's or another state's), EVS_EFORMAT or -ENOMEM. */
int evs__bundle_holds(const void *buf, size_t len, const evs__bundle_src *src,
                      const evs_allocator *alloc, uint64_t *checksum,
                      evs_error_info *ei);
/* The window evs__bundle_holds decompresses through, and the longest
 * manifest it accepts. */
#define EVS__BUNDLE_WINDOW ((size_t)256 << 10)
#define EVS__BUNDLE_MANIFEST_MAX ((size_t)64 << 20)

/* evs_bundle_decode, buf not NULL. */
int evs__bundle_parse(const void *buf, size_t len, const evs_allocator *alloc,
                      evs_bundle **out, evs_error_info *ei);

/* Reads the whole file `name` of dirfd through the store's I/O table
 * into *buf (from the store's allocator). Refuses what is not a regular
 * file. Returns 0, -EFBIG (beyond `max`) or -errno. */
int evs__read_file(evs_store *s, int dirfd, const char *name, uint64_t max,
                   char **buf, size_t *len);

/* Members of a trusted (checksum-verified) JSON object, for the
 * manifest and the records: 16 hex digits in a string (null reads as
 * 0), a canonical unsigned integer, an RFC 3339 string (null reads as
 * 0), a string unescaped into b (at *off, *len bytes). Each returns 0,
 * or -1 when the member is missing or not of its kind. */
int evs__ar_hex(evs_span obj, const char *key, uint64_t *v);
int evs__ar_u64(evs_span obj, const char *key, uint64_t *v);
int evs__ar_time(evs_span obj, const char *key, int64_t *us);
int evs__ar_str(evs_span obj, const char *key, evs__jbuf *b, size_t *off,
                size_t *len);

/* The store's record of an archived execution (archive_record.c). */
#define EVS__ARCHIVED_DIR ".archived"

typedef struct evs__archived_src {
    const char *id;
    const char *dir;
    const evs_bundle_manifest *m;
} evs__archived_src;

/* Writes STORE/.archived/<id>.json atomically and durably. */
int evs__archived_put(evs_store *s, const evs__archived_src *src,
                      evs_error_info *ei);
/* Removes it (and syncs .archived/); no record is not an error. */
int evs__archived_remove(evs_store *s, const char *id);

#endif /* EVS_ARCHIVE_INT_H */
