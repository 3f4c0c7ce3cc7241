/*
 * file_cleanup.c: cleaning up a file store (evs_exec_cleanup): deleting
 * finished executions older than a cutoff, and removing what interrupted
 * writers left: temporaries, trash of interrupted deletes, and husks of
 * creations cut by a power loss.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/* Temporaries younger than this may belong to a writer at work. */
#define TMP_AGE_US (3600LL * 1000000)

/* Names read from a directory, to act on once the reading is over:
 * removing entries while reading a directory may skip others. */
typedef struct name_list {
    evs_store *s;
    char (*names)[EVS_ID_MAX + 48];
    size_t count, cap;
} name_list;

typedef struct cleaner {
    evs_store *s;
    int64_t older_than;
    int64_t tmp_cutoff; /* temporaries changed before this are left over */
    size_t deleted;
    int first_err;
} cleaner;

int evs__status_final(evs_span st)
{
    return evs__span_eq_cstr(st, "completed") ||
           evs__span_eq_cstr(st, "failed") ||
           evs__span_eq_cstr(st, "terminated") ||
           evs__span_eq_cstr(st, "continued");
}

static int collect_cb(void *arg, const char *name, size_t len)
{
    name_list *L = arg;

    if (len >= EVS_ID_MAX + 48)
        return 0;
    if (EVS__GROW(L->s->alloc, &L->names, &L->cap, L->count + 1) != 0)
        return -ENOMEM;
    memcpy(L->names[L->count], name, len + 1);
    L->count++;
    return 0;
}

static int is_tmp(const char *name)
{
    return strncmp(name, EVS__TMP_PREFIX, strlen(EVS__TMP_PREFIX)) == 0;
}

/*
 * Removes entry `name` of dfd, a temporary (.tmp-*) that a killed or
 * failed writer left, if it has not changed since the cutoff: younger
 * ones may be in use by a writer in another process. A directory (an
 * interrupted creation) goes with its contents; anything else is
 * unlinked, never followed. Best effort.
 */
static void remove_old_tmp(cleaner *C, int dfd, const char *name)
{
    evs_store *s = C->s;
    evs_stat st;

    if (IO(s)->statat(CTX(s), dfd, name, &st) != 0 ||
        st.mtime_us >= C->tmp_cutoff)
        return;
    if (S_ISDIR(st.mode))
        evs__remove_dir_at(s, dfd, name, EVS__REMOVE_DEPTH);
    else
        IO(s)->unlinkat(CTX(s), dfd, name, 0);
}

/* Removes the old temporaries in directory dfd: snapshots (and, in an
 * inbox, requests) whose writer was killed before its rename. */
static void sweep_tmp(cleaner *C, int dfd)
{
    name_list L = {C->s, NULL, 0, 0};

    if (IO(C->s)->listdir(CTX(C->s), dfd, collect_cb, &L) == 0)
        for (size_t i = 0; i < L.count; i++)
            if (is_tmp(L.names[i]))
                remove_old_tmp(C, dfd, L.names[i]);
    evs__free(C->s->alloc, L.names);
}

static void clean_one(cleaner *C, const char *name)
{
    evs_store *s = C->s;
    evs_snapshot *sn = NULL;
    size_t len = strlen(name);
    int dfd, ifd, rc;

    if (strncmp(name, EVS__TRASH_PREFIX, strlen(EVS__TRASH_PREFIX)) == 0) {
        evs__remove_tree(s, name); /* an interrupted delete */
        return;
    }
    if (is_tmp(name)) {
        /* An interrupted creation (a directory) or listing-index rewrite
         * (a file). */
        remove_old_tmp(C, s->dirfd, name);
        return;
    }
    if (strcmp(name, EVS__WRITERS_DIR) == 0) {
        /* Writers' markers cut before their rename; dead markers
         * themselves go when a listing has rebuilt the index. */
        if (IO(s)->openat(CTX(s), s->dirfd, name,
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                          &dfd) == 0) {
            sweep_tmp(C, dfd);
            IO(s)->close(CTX(s), dfd);
        }
        return;
    }
    if (!evs_id_valid(name, len))
        return;
    if (evs__is_husk(s, name)) {
        /* What a power loss left of a creation; a listing may have
         * shown it from its snapshot. */
        if (evs__writer_enter(s) == 0 && evs__remove_tree(s, name) == 0)
            evs__index_note_gone(s, name);
        return;
    }
    if (evs__open_exec_dir(s, name, &dfd) != 0)
        return;
    sweep_tmp(C, dfd);
    if (IO(s)->openat(CTX(s), dfd, "inbox",
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                      &ifd) == 0) {
        sweep_tmp(C, ifd);
        IO(s)->close(CTX(s), ifd);
    }
    rc = evs__file_snapshot_header(s, dfd, NULL, NULL, NULL, &sn);
    IO(s)->close(CTX(s), dfd);
    if (rc != 0)
        return; /* no trustworthy status: never delete on a guess */
    if (evs__status_final(sn->status) && sn->updated_at_us < C->older_than) {
        rc = evs__delete_exec(s, name);
        if (rc == 0)
            C->deleted++;
        else if (rc != EVS_ELOCKED && rc != -ENOENT && !C->first_err)
            C->first_err = rc;
    }
    evs_snapshot_free(sn);
}

int evs__file_exec_cleanup(evs_store *s, int64_t older_than_us, size_t *deleted)
{
    name_list L = {s, NULL, 0, 0};
    cleaner C;
    int rc;

    memset(&C, 0, sizeof(C));
    C.s = s;
    C.older_than = older_than_us;
    C.tmp_cutoff = evs_now_us() - TMP_AGE_US;
    rc = IO(s)->listdir(CTX(s), s->dirfd, collect_cb, &L);
    if (rc == 0) {
        for (size_t i = 0; i < L.count; i++)
            clean_one(&C, L.names[i]);
        rc = C.first_err;
    }
    evs__free(s->alloc, L.names);
    *deleted = C.deleted;
    return rc;
}
