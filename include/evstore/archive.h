/*
 * evstore/archive.h: archival of executions to bundles, and back.
 *
 * A bundle is one file, `<execution_id>.evb`, holding one execution's
 * log byte for byte (up to its end, never a torn tail), its snapshot's
 * bytes (if it had a readable one) and a manifest, compressed with zstd
 * and framed so that any bit flip or truncation of the file is detected
 * (formats/BUNDLES.md gives the bytes). It is the unit of cold storage
 * and of moving an execution to another machine: the tools replay and
 * show a bundle directly (`evreplay BUNDLE`, `evdump state BUNDLE`).
 *
 * Lifecycle: evs_archive_exec (store -> bundle, optionally deleting the
 * execution) and evs_archive_restore (bundle -> store); evs_bundle_open
 * -> evs_bundle_info, evs_bundle_log, evs_bundle_next ->
 * evs_bundle_close to read one.
 *
 * Threads: the functions taking a store may be called from any thread
 * sharing it. An evs_bundle belongs to one thread at a time.
 *
 * Memory: buffers come from the store's allocator (or the one passed);
 * zstd's own work memory comes from the C library.
 */
#ifndef EVSTORE_ARCHIVE_H
#define EVSTORE_ARCHIVE_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The bundle format version this library writes and reads. */
#define EVS_BUNDLE_FORMAT 1

/** What a bundle's file name ends with. */
#define EVS_BUNDLE_EXT ".evb"

/** The default zstd level of a bundle (formats/BUNDLES.md, "Level"). */
#define EVS_ARCHIVE_LEVEL_DEFAULT 3

typedef struct evs_bundle evs_bundle;

/**
 * A bundle's manifest, as evs_bundle_info gives it. Spans point into the
 * bundle's memory and live as long as the bundle; strings are
 * unescaped. Times are µs since the epoch, 0 when unknown.
 */
typedef struct evs_bundle_manifest {
    uint32_t format;           /* the bundle format version: 1 */
    evs_span execution_id;     /* the execution archived */
    uint64_t events;           /* events in the log */
    uint64_t last_seq;         /* the log's last sequence */
    uint64_t log_bytes;        /* bytes of the log */
    uint64_t log_checksum;     /* XXH3-64 of them */
    uint64_t snapshot_bytes;   /* bytes of the snapshot file, 0: none */
    uint64_t snapshot_checksum; /* XXH3-64 of them, 0 when none */
    evs_span status;           /* "completed", "failed", ... "running" */
    evs_span workflow_name;    /* "" when unknown */
    int64_t started_at_us;     /* the first event's timestamp */
    int64_t ended_at_us;       /* the terminal event's timestamp, or 0 */
    evs_span lineage;          /* execution_started's lineage (compact
                                  JSON object), empty when none */
    evs_span evstore_version;  /* the library that wrote the bundle */
    int level;                 /* zstd level it was written with */
    uint64_t bundle_bytes;     /* the size of the whole file */
    uint64_t bundle_checksum;  /* XXH3-64 of the whole file but its last
                                  8 bytes (its trailer) */
} evs_bundle_manifest;

/**
 * Options of evs_archive_exec. Call evs_archive_opts_init first
 * (common.h, "Options structs").
 */
typedef struct evs_archive_opts {
    size_t size;      /* set by evs_archive_opts_init */
    int level;        /* zstd level, 1..19; default
                         EVS_ARCHIVE_LEVEL_DEFAULT */
    int delete_after; /* once the bundle is durable and verified, delete
                         the execution from the store; default 0 */
    int force;        /* archive an execution that has not ended
                         (running, waiting or paused); default 0:
                         such an execution is refused with -EBUSY */
} evs_archive_opts;

/** What evs_archive_exec and evs_archive_restore did. */
typedef struct evs_archive_info {
    char execution_id[EVS_ID_MAX + 1]; /* the execution */
    uint64_t events;          /* events in the log */
    uint64_t last_seq;        /* its last sequence */
    uint64_t log_bytes;       /* bytes of the log */
    uint64_t snapshot_bytes;  /* bytes of the snapshot, 0: none */
    uint64_t bundle_bytes;    /* bytes of the bundle file */
    uint64_t bundle_checksum; /* its checksum (evs_bundle_manifest) */
    char status[16];          /* the execution's status */
    int deleted;              /* the execution was deleted */
    int existed;              /* archive: an identical, verified bundle
                                 was already there and was kept */
} evs_archive_info;

/**
 * Fills *o with the defaults above and o->size with sizeof(*o). `o` must
 * not be NULL. Thread-safe.
 */
EVS_EXTERN void evs_archive_opts_init(evs_archive_opts *o);

/**
 * Archives execution `id` (NUL-terminated) of `s` into `dir/<id>.evb`.
 *
 * Takes the execution's writer lock (EVS_ELOCKED if a writer holds it)
 * and keeps it until the end, so nothing is appended between reading and
 * deleting. Reads the log up to its end (a torn tail is not part of the
 * log, and is left in place) and the snapshot (kept only if it decodes
 * and is not ahead of the log). An execution whose log does not end with
 * a terminal event (completed, failed, terminated, continued) is refused
 * with -EBUSY unless opts->force is set.
 *
 * The bundle is written to a temporary name in `dir`, fsynced, renamed to
 * `<id>.evb` without replacing anything, and `dir` is fsynced; then it is
 * read back and verified against the bytes read from the store. If
 * `<id>.evb` already exists it is kept when it verifies and holds exactly
 * these bytes (info->existed; an archive interrupted before its delete
 * runs again this way), and refused with -EEXIST otherwise.
 *
 * With opts->delete_after, the store then records the archival
 * (STORE/.archived/<id>.json, written atomically, so that lineages still
 * resolve: evs_archived_get) and deletes the execution as
 * evs_exec_delete does, still under the lock. Deleting an execution
 * whose log has a torn tail is refused with EVS_ETORN (open it as its
 * writer first, which cuts the tail to a file beside the log); it is
 * archived all the same without delete_after. The record and the
 * delete come only after the bundle was read back. A crash at any
 * point leaves the execution, or a
 * verified bundle under its final name and the record, never neither,
 * and never a partial bundle under the final name (a temporary one,
 * `dir/.tmp-<r>-<id>.evb`, may be left; nothing removes it).
 *
 * `opts` may be NULL (defaults); `info` and `ei` may be NULL.
 * Returns 0, EVS_EBADID, -ENOENT, EVS_ELOCKED, -EBUSY (not ended),
 * -EEXIST (another bundle of that name), EVS_ETORN, EVS_ECORRUPT (the
 * log or the written bundle does not check out), -EINVAL (bad options),
 * -ENOMEM or -errno; `ei` says what and where.
 */
EVS_EXTERN int evs_archive_exec(evs_store *s, const char *id, const char *dir,
                                const evs_archive_opts *opts,
                                evs_archive_info *info, evs_error_info *ei);

/**
 * Restores the bundle at `path` into `s`: verifies it whole, then
 * creates the execution through the store's creation protocol
 * (FORMAT.md §10: a temporary directory, fsyncs, a rename that replaces
 * nothing, a fsync of the store), its log and snapshot byte for byte the
 * bundle's, and notes the snapshot in the listing index as a creation
 * does. An execution without a snapshot in the bundle gets none. Then
 * removes the store's archival record of `id`, if any.
 *
 * `info` and `ei` may be NULL. Returns 0, -EEXIST (the execution exists;
 * nothing is changed), what evs_bundle_open returns, or -errno.
 */
EVS_EXTERN int evs_archive_restore(evs_store *s, const char *path,
                                   evs_archive_info *info, evs_error_info *ei);

/**
 * What the store remembers of an archived and deleted execution
 * (STORE/.archived/<id>.json). Spans point into the record's memory.
 */
typedef struct evs_archived {
    evs_span id;              /* the execution */
    evs_span bundle;          /* the bundle's file name, "<id>.evb" */
    evs_span dir;             /* the directory it was written to, as
                                 given to evs_archive_exec */
    uint64_t bundle_checksum; /* its checksum */
    evs_span status;          /* the execution's status */
    int64_t started_at_us;    /* 0 when unknown */
    int64_t ended_at_us;      /* 0 when unknown */
    int64_t archived_at_us;   /* when it was archived */
    uint64_t last_seq;        /* its last sequence */
    evs_span lineage;         /* its lineage object, empty when none */
    /* private */
    void *mem_;
    const evs_allocator *alloc_;
} evs_archived;

/**
 * Reads the archival record of `id`. Fills *out, freed with
 * evs_archived_free (also after an error, which leaves it empty).
 * A record whose execution exists again (a crash between writing the
 * record and deleting) is still returned; the execution is the truth.
 * Returns 0, EVS_EBADID, -ENOENT (no record), EVS_ECORRUPT, EVS_EFORMAT
 * or -errno.
 */
EVS_EXTERN int evs_archived_get(evs_store *s, const char *id,
                                evs_archived *out, evs_error_info *ei);

/** Frees what evs_archived_get put in *a and empties it. Accepts NULL. */
EVS_EXTERN void evs_archived_free(evs_archived *a);

/* ------------------------------------------------------------------ */
/* Reading bundles                                                    */
/* ------------------------------------------------------------------ */

/**
 * Opens the bundle at `path` (NUL-terminated): reads it whole and checks
 * everything formats/BUNDLES.md requires (framing, checksums, the zstd
 * frame, the manifest, every line of the log, the snapshot). On success
 * *out owns the bundle's contents, from `alloc` (NULL: the C library's).
 *
 * Returns 0, -ENOENT or another -errno, EVS_EFORMAT (written in a newer
 * bundle format; ei->msg says which), EVS_ECORRUPT (damaged or not a
 * bundle; ei->kind says what: "magic", "header", "length", "checksum",
 * "compression", "manifest", "log", "snapshot"; ei->offset where, in the
 * file or, for "log", in the log) or -ENOMEM. `ei` may be NULL.
 */
EVS_EXTERN int evs_bundle_open(const char *path, const evs_allocator *alloc,
                               evs_bundle **out, evs_error_info *ei);

/** evs_bundle_open of a bundle's bytes buf[0..len), which are copied
 *  from as needed and not kept. Same checks and returns. */
EVS_EXTERN int evs_bundle_decode(const void *buf, size_t len,
                                 const evs_allocator *alloc, evs_bundle **out,
                                 evs_error_info *ei);

/** Checks the bundle at `path` as evs_bundle_open does, keeping
 *  nothing. `m` (may be NULL) gets the scalar fields of its manifest
 *  (its spans are left empty). Same returns. */
EVS_EXTERN int evs_bundle_verify(const char *path, evs_bundle_manifest *m,
                                 evs_error_info *ei);

/** The bundle's manifest. Borrowed from the bundle. */
EVS_EXTERN const evs_bundle_manifest *evs_bundle_info(const evs_bundle *b);

/** The log's bytes. Borrowed from the bundle. */
EVS_EXTERN evs_span evs_bundle_log(const evs_bundle *b);

/** The snapshot file's bytes, empty when the bundle has none.
 *  Borrowed from the bundle. */
EVS_EXTERN evs_span evs_bundle_snapshot(const evs_bundle *b);

/**
 * Reads the event of the log line at byte `*pos` (start with 0) into
 * *ev and moves *pos to the next line. The views in *ev (and *raw, the
 * line with its newline, if not NULL) are borrowed until the next call
 * on the bundle. Returns 1 with an event, 0 at the end, -EINVAL (a
 * `pos` that is not a line's start), -ENOMEM.
 */
EVS_EXTERN int evs_bundle_next(evs_bundle *b, uint64_t *pos, evs_event *ev,
                               evs_span *raw);

/** Frees a bundle and everything it lent. Accepts NULL. */
EVS_EXTERN void evs_bundle_close(evs_bundle *b);

#ifdef __cplusplus
}
#endif
#endif /* EVSTORE_ARCHIVE_H */
