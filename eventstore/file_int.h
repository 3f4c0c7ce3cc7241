/*
 * file_int.h: the file backend's handles and the functions its files
 * share. Only eventstore/file_*.c include it.
 */
#ifndef EVS_FILE_INT_H
#define EVS_FILE_INT_H

#include "store_int.h"

typedef struct file_log {
    struct evs_log base;
    int dirfd;          /* the execution's directory */
    int fd;             /* events.jsonl */
    uint64_t unsynced;  /* bytes appended since the last sync; at
                             open, 1 if the log held anything (its
                             durability is not known) */
    int names_unsynced; /* the directory entries may not be durable */
    int64_t last_sync_us;
    char *wbuf; /* encode buffer for appends */
    size_t wcap;
    char *rbuf; /* scratch for tail checks */
    size_t rcap;
    evs_decoder dec;
    evs__tail tail; /* what followed the end at open (or refresh) */
} file_log;

int evs__file_log_open(evs_store *s, const char *id, size_t id_len,
                       unsigned flags, evs_log **out, evs_recovery_info *rec,
                       evs_error_info *info);
void evs__file_log_close(evs_log *l);
int evs__file_log_append(evs_log *l, const evs_event *ev, size_t n,
                         uint64_t expected, unsigned flags,
                         evs_error_info *info);
int evs__file_log_sync(evs_log *l);
int evs__file_log_refresh(evs_log *l);

/* A forward line reader over [.., limit) of a file, in bounded memory. */
typedef struct evs__reader {
    evs_store *s;
    int fd;
    uint64_t limit;  /* never read at or past this offset */
    char *raw, *buf; /* buf is raw aligned to 4 KiB */
    size_t cap;
    uint64_t boff; /* file offset of buf[0] */
    size_t blen, pos;
    size_t chunk;
} evs__reader;

/* Reads from `fd` with the store's I/O, never at or past `limit`. */
void evs__reader_init(evs__reader *r, evs_store *s, int fd, uint64_t limit);
void evs__reader_free(evs__reader *r);
/* Moves to file offset `off`; evs__reader_off is where the next line
 * starts. */
void evs__reader_at(evs__reader *r, uint64_t off);
uint64_t evs__reader_off(const evs__reader *r);
/*
 * Returns the next line, newline included, in *line and *len (borrowed
 * until the next call): 1 with a line, 0 at the limit, EVS_ETOOBIG if no
 * newline comes within max_line bytes (the reader then stays put),
 * EVS_ETORN if the bytes before the limit end without a newline, or
 * -errno.
 */
int evs__reader_line(evs__reader *r, const char **line, size_t *len);
/* Skips past the next newline (for resynchronising after garbage).
 * Returns 1, 0 if the limit came first, or -errno. */
int evs__reader_skip_line(evs__reader *r);

int evs__file_cursor_open(evs_log *l, uint64_t from, uint64_t to,
                          evs_cursor **out, evs_error_info *info);
int evs__file_cursor_next(evs_cursor *c, evs_event *ev, evs_span *raw,
                          evs_error_info *info);
uint64_t evs__file_cursor_offset(const evs_cursor *c);
void evs__file_cursor_close(evs_cursor *c);
int evs__file_log_scan(evs_store *s, const char *id, size_t id_len,
                       evs_scan_fn fn, void *arg);

int evs__file_snapshot_save(evs_store *s, const char *id, size_t id_len,
                            const evs_snapshot *snap, unsigned flags);
int evs__file_snapshot_load(evs_store *s, const char *id, size_t id_len,
                            unsigned flags, evs_snapshot **out,
                            evs_error_info *info);
/* Reads and decodes the whole snapshot in an open execution directory;
 * flags as evs_snapshot_decode's (EVS_SNAPSHOT_STATE_RAW or 0). */
int evs__file_snapshot_read(evs_store *s, int dirfd, unsigned flags,
                            evs_snapshot **out, evs_error_info *info);

/* Reads only the header line of the snapshot in an open execution
 * directory: *hdr (heap, without its newline; not kept when hdr is NULL)
 * and *hlen, the file's stat into *st and the decoded header into *out
 * (each may be NULL). Returns 0, EVS_ECORRUPT (no header line within
 * 64 KiB), what decoding returns, or -errno. */
int evs__file_snapshot_header(evs_store *s, int dirfd, char **hdr, size_t *hlen,
                              evs_stat *st, evs_snapshot **out);

/* Decodes a snapshot header line given without its newline. */
int evs__snapshot_decode_header(evs_store *s, const char *hdr, size_t hlen,
                                evs_snapshot **out);
/*
 * An execution's directory holds files and, since requests, the inbox/
 * directory (FORMAT.md §13), which may hold anything a sender planted
 * there. Removal therefore descends into subdirectories, a few levels
 * deep, opening each with O_NOFOLLOW: a symbolic link is removed, never
 * followed.
 */
#define EVS__REMOVE_DEPTH 4

/* Removes everything in the directory `name` of `parent`, then the
 * directory, descending `depth` levels. Returns the rmdir result. */
int evs__remove_dir_at(evs_store *s, int parent, const char *name, int depth);

/* Removes the directory `name` of the store and what it holds. */
int evs__remove_tree(evs_store *s, const char *name);

/* Whether `name` is a directory of the store that is not an execution:
 * no log in it (what a power loss left of a creation). */
int evs__is_husk(evs_store *s, const char *name);

/* Deletes execution `name` (NUL-terminated): under its writer lock, moved
 * to a trash name, then removed. Returns 0, EVS_ELOCKED, -ENOENT or an
 * error. */
int evs__delete_exec(evs_store *s, const char *name);

/* The second half of evs__delete_exec, for a caller that holds the
 * writer lock on fd (-1: the execution has no log): renames execution
 * `name` (directory dfd) to a trash name, fsyncs the store, removes it.
 * Closes dfd and fd whatever happens. Returns 0 or an error. */
int evs__trash_exec(evs_store *s, const char *name, int dfd, int fd);

/* Creates execution `name` (NUL-terminated, valid) from its files'
 * bytes: the log log[0..len) and the snapshot snap[0..slen), none when
 * slen is 0, as FORMAT.md §10 says; notes the snapshot in the listing
 * index. flags: 0 or EVS_SNAPSHOT_CACHE (the snapshot without syncs of
 * its own). Returns 0, -EEXIST or -errno. */
int evs__create_exec_raw(evs_store *s, const char *name, const char *log,
                         size_t len, const char *snap, size_t slen,
                         unsigned flags);

/* The two halves of a delete, so that many share one fsync of the store
 * directory (store_int.h, evs__trashed). */
int evs__exec_trash(evs_store *s, const char *name, uint64_t expect_seq,
                    evs__trashed *t);
int evs__exec_trash_commit(evs_store *s, evs__trashed *t, size_t n);

/* The statistics' look at an execution and at the archive's record
 * (file_stats.c). */
int evs__file_exec_usage(evs_store *s, const char *name, evs__usage *u);
int evs__file_archived_count(evs_store *s, int64_t *n);

/* The settings file (file_settings.c). */
int evs__file_settings_load(evs_store *s, evs_settings **out,
                            evs_error_info *ei);
int evs__file_settings_save(evs_store *s, const evs_settings *st,
                            evs_error_info *ei);

/* file_schedule.c: schedules (evs_backend_ops, store_int.h). */
int evs__file_sched_create(evs_store *s, const char *name, const char *line,
                           size_t len, int64_t updated_us);
int evs__file_sched_open(evs_schedule *h, unsigned flags);
int evs__file_sched_read(evs_schedule *h, char **buf, size_t *len);
int evs__file_sched_write(evs_schedule *h, const char *line, size_t len,
                          int64_t updated_us);
int evs__file_sched_remove(evs_schedule *h);
void evs__file_sched_close(evs_schedule *h);
int evs__file_sched_list(evs_store *s,
                         int (*fn)(void *arg, const char *name, size_t len),
                         void *arg);

/* The backend's inbox of requests (file_inbox.c). */
int evs__file_request_post(evs_store *s, const char *id, size_t id_len,
                           const char *json, size_t len,
                           char out_id[EVS_REQUEST_ID_LEN + 1]);
int evs__file_request_list(evs_store *s, const char *id, size_t id_len,
                           evs_request_listing *out);
int evs__file_request_remove(evs_store *s, const char *id, size_t id_len,
                             const char *req_id);
int evs__file_request_stamp(evs_store *s, const char *id, size_t id_len,
                            uint64_t *ino, int64_t *ctime_ns);
int evs__file_request_dir(evs_store *s, const char *id, size_t id_len,
                          char *buf, size_t cap, int create);

/* The backend's listing (file_list.c) and cleanup (file_cleanup.c). */
int evs__file_exec_list(evs_store *s, const evs_list_filter *f,
                        evs_exec_listing *out);
int evs__file_exec_cleanup(evs_store *s, int64_t older_than_us,
                           size_t *deleted);

#endif /* EVS_FILE_INT_H */
