/*
 * file_settings.c: the file store's settings file, STORE/.settings.json
 * (FORMAT.md §14): read whole and decoded (formats/settings.c), or
 * replaced atomically and durably whatever the store's durability mode,
 * since settings are rare writes that decide what gc deletes.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/* Larger than any settings line can be (ten keys, one path of 4 KiB). */
#define SETTINGS_MAX (64 * 1024)

int evs__file_settings_load(evs_store *s, evs_settings **out,
                            evs_error_info *ei)
{
    char *buf = NULL;
    size_t got = 0;
    evs_stat st;
    int fd = -1, rc;

    rc = evs__open_regular(s, s->dirfd, EVS_SETTINGS_FILE, O_RDONLY, 0, &fd,
                           &st);
    if (rc == -ENOENT)
        return evs_settings_new(s->alloc, out); /* every key's default */
    if (rc != 0) {
        evs__error_refused(ei, rc, ".", EVS_SETTINGS_FILE);
        return evs__error_rc(ei, rc);
    }
    if (st.size > SETTINGS_MAX) {
        rc = EVS_ECORRUPT;
        evs__error_set(ei, rc, "settings",
                       "settings file: %llu bytes, more than a settings "
                       "file holds",
                       (unsigned long long)st.size);
        goto out;
    }
    if (!(buf = evs__malloc(s->alloc, (size_t)st.size + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = IO(s)->pread(CTX(s), fd, buf, (size_t)st.size, 0, &got)) != 0) {
        evs__error_set(ei, rc, "", "reading %s: %s", EVS_SETTINGS_FILE,
                       evs_strerror(rc));
        goto out;
    }
    rc = evs__settings_decode(s->alloc, buf, got, out, ei);
out:
    IO(s)->close(CTX(s), fd);
    evs__free(s->alloc, buf);
    return evs__error_rc(ei, rc);
}

int evs__file_settings_save(evs_store *s, const evs_settings *st,
                            evs_error_info *ei)
{
    char *buf = NULL;
    size_t len;
    int rc;

    if ((rc = evs__settings_encode(st, s->alloc, &buf, &len)) != 0)
        return evs__error_rc(ei, rc);
    rc = evs__write_atomic_flags(s, s->dirfd, EVS_SETTINGS_FILE, buf, len,
                                 NULL, EVS__WRITE_SYNC);
    if (rc != 0)
        evs__error_set(ei, rc, "", "replacing %s: %s", EVS_SETTINGS_FILE,
                       evs_strerror(rc));
    evs__free(s->alloc, buf);
    return evs__error_rc(ei, rc);
}
