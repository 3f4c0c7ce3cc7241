/*
 * file_stats.c: what the store's statistics (eventstore/stats.c) read of
 * one execution's directory: its log's size and last sequence, and the
 * bytes recovery cut from torn tails (cut-*.jsonl, FORMAT.md §4); and
 * how many entries the archive's record directory holds.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#define IO(s) ((s)->io)
#define CTX(s) ((s)->io->ctx)

/* The directory the archive records archived executions in. */
#define ARCHIVED_DIR ".archived"

typedef struct cut_count {
    evs_store *s;
    int dfd;
    evs__usage *u;
} cut_count;

static int count_cut(void *arg, const char *name, size_t len)
{
    cut_count *c = arg;
    evs_stat st;

    if (len < 10 || memcmp(name, "cut-", 4) != 0 ||
        memcmp(name + len - 6, ".jsonl", 6) != 0)
        return 0;
    c->u->cut_files++;
    if (IO(c->s)->statat(CTX(c->s), c->dfd, name, &st) == 0 &&
        S_ISREG(st.mode))
        c->u->cut_bytes += st.size;
    return 0;
}

int evs__file_exec_usage(evs_store *s, const char *name, evs__usage *u)
{
    cut_count c;
    evs__tail t;
    evs_stat st;
    int dfd, fd = -1, rc;

    memset(u, 0, sizeof(*u));
    if ((rc = evs__open_exec_dir(s, name, &dfd)) != 0)
        return rc;
    c.s = s;
    c.dfd = dfd;
    c.u = u;
    if ((rc = IO(s)->listdir(CTX(s), dfd, count_cut, &c)) != 0)
        goto out;
    if ((rc = evs__open_regular(s, dfd, EVS__LOG_NAME, O_RDONLY, 0, &fd,
                                &st)) != 0)
        goto out;
    u->bytes = st.size;
    memset(&t, 0, sizeof(t));
    rc = evs__find_tail(s, fd, st.size, name, strlen(name), &t, NULL);
    u->events = t.last_seq;
out:
    if (fd >= 0)
        IO(s)->close(CTX(s), fd);
    IO(s)->close(CTX(s), dfd);
    return rc;
}

static int count_entry(void *arg, const char *name, size_t len)
{
    (void)len;
    if (name[0] != '.')
        (*(int64_t *)arg)++;
    return 0;
}

int evs__file_archived_count(evs_store *s, int64_t *n)
{
    int dfd, rc;

    *n = -1;
    rc = IO(s)->openat(CTX(s), s->dirfd, ARCHIVED_DIR,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                       &dfd);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    *n = 0;
    rc = IO(s)->listdir(CTX(s), dfd, count_entry, n);
    IO(s)->close(CTX(s), dfd);
    return rc;
}
