/*
 * pg_watch.c: the PostgreSQL backend's change notifications (evs_watch,
 * store.h): a connection of its own that LISTENs on the store's channel.
 * A post (PG_REQ_ADD), a creation offered to runners (PG_EXEC_ADD) and
 * an unfinished execution released (PG_RELEASE) each NOTIFY it in their
 * own statement, so a notification is sent at their commit and never for
 * work that was rolled back. The payload is a kind letter and the
 * execution's id.
 */
#include "pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct pg_watch {
    struct evs_watch base;
    PGconn *conn;
} pg_watch;

int evs__pg_watch_open(evs_store *s, evs_watch **out)
{
    pg_store *q = evs__pg(s);
    char *chan = NULL, sql[64];
    pg_watch *w;
    PGresult *r;
    int rc = 0;

    if (!(w = evs__calloc(s->alloc, sizeof(*w))))
        return -ENOMEM;
    w->base.store = s;
    w->conn = PQconnectdb(q->conninfo);
    if (!w->conn) {
        evs__free(s->alloc, w);
        return -ENOMEM;
    }
    if (PQstatus(w->conn) != CONNECTION_OK) {
        rc = -ECONNREFUSED;
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "store %s: cannot connect to listen: %.*s", q->where,
                  evs__pg_msg_len(PQerrorMessage(w->conn)),
                  PQerrorMessage(w->conn));
        goto fail;
    }
    PQsetNoticeProcessor(w->conn, NULL, NULL);
    if (!(chan = PQescapeIdentifier(w->conn, q->chan, strlen(q->chan)))) {
        rc = -ENOMEM;
        goto fail;
    }
    snprintf(sql, sizeof(sql), "LISTEN %s", chan);
    PQfreemem(chan);
    r = PQexec(w->conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = -EIO;
        evs__logf(s, EVS_LOG_ERROR, EVS_LOG_FIELDS(.err = rc),
                  "store %s: cannot listen: %.*s", q->where,
                  evs__pg_msg_len(PQresultErrorMessage(r)),
                  PQresultErrorMessage(r));
    }
    PQclear(r);
    if (rc != 0)
        goto fail;
    if (PQsetnonblocking(w->conn, 1) != 0 ||
        (w->base.fd = PQsocket(w->conn)) < 0) {
        rc = -EIO;
        goto fail;
    }
    *out = &w->base;
    return 0;
fail:
    PQfinish(w->conn);
    evs__free(s->alloc, w);
    return rc;
}

int evs__pg_watch_read(evs_watch *base, evs_watch_fn fn, void *arg)
{
    pg_watch *w = (pg_watch *)base;
    PGnotify *n;
    int count = 0;

    if (PQstatus(w->conn) != CONNECTION_OK || PQconsumeInput(w->conn) != 1 ||
        PQstatus(w->conn) != CONNECTION_OK)
        return -ECONNRESET;
    while ((n = PQnotifies(w->conn)) != NULL) {
        const char *p = n->extra;
        size_t len = p ? strlen(p) : 0;

        /* Only what this backend's statements send is passed on. */
        if (len >= 2 && (p[0] == EVS_WATCH_REQUEST || p[0] == EVS_WATCH_FREE) &&
            evs_id_valid(p + 1, len - 1)) {
            fn(arg, p[0], p + 1, len - 1);
            count++;
        }
        PQfreemem(n);
    }
    /* The server ended the session (shut down, or the session was
     * terminated): what it sent before is read above, then no more. */
    if (PQstatus(w->conn) != CONNECTION_OK)
        return count ? count : -ECONNRESET;
    return count;
}

void evs__pg_watch_close(evs_watch *base)
{
    pg_watch *w = (pg_watch *)base;

    PQfinish(w->conn);
    evs__free(base->store->alloc, w);
}
