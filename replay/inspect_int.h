/*
 * inspect_int.h: what the files of the JSON views (evstore/inspect.h)
 * share: how a view begins and ends, and a time member.
 */
#ifndef EVS_INSPECT_INT_H
#define EVS_INSPECT_INT_H

#include "evstore/inspect.h"
#include "formats_shared.h"

/* The start of every view: clears *err and *out (out may be NULL), and
 * refuses a NULL store or out (-EINVAL) and, when `id` is not NULL or
 * `need_id` is set, an id that is not valid (EVS_EBADID); err's
 * execution_id gets a valid id. Returns 0 or the code, err filled. */
int evs__inspect_begin(evs_store *s, const char *id, int need_id, char **out,
                       evs_error_info *err);

/* The end of every view: with rc 0, hands b's text over to *out, NUL-
 * terminated (or fails with -ENOMEM); with a failure, frees b. A NULL b
 * says that *out was set already (on success only). A failure
 * that left err without a message gets "WHAT: <evs_strerror(rc)>".
 * Returns 0 or the failure's code. */
int evs__inspect_end(evs__jbuf *b, int rc, char **out, evs_error_info *err,
                     const char *what);

/* A time as the views write it: RFC 3339 in quotes, or null for 0. */
void evs__inspect_time(evs__jbuf *b, int64_t us);

#endif /* EVS_INSPECT_INT_H */
