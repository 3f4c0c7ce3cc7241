/*
 * cursor_check.c: what every backend's cursor checks of each line it
 * returns (FORMAT.md §3): its checksum and form, that it is of this
 * execution, that it carries the next sequence, and that it sits in its
 * append as the framing says. The file cursor reads lines from the file,
 * the database cursors from rows; both hand each one here.
 */
#include "store_int.h"

#include <errno.h>

void evs__linecheck_init(evs__linecheck *k, const evs_allocator *a,
                         uint64_t from, int mid_group_ok)
{
    memset(k, 0, sizeof(*k));
    evs_decoder_init(&k->dec, a);
    k->next_seq = from;
    k->mid_group_ok = mid_group_ok;
}

void evs__linecheck_free(evs__linecheck *k)
{
    evs_decoder_free(&k->dec);
}

int evs__cursor_damage(evs_error_info *info, const evs_log *l, uint64_t seq,
                       int code, const char *kind, uint64_t off,
                       const char *what)
{
    evs__error_set(info, code, kind, "%s: %s at sequence %llu, byte offset %llu",
                   l->id, what, (unsigned long long)seq,
                   (unsigned long long)off);
    if (info) {
        evs__error_set_id(info, l->id, l->id_len);
        info->sequence = seq;
        info->offset = off;
    }
    return code;
}

int evs__linecheck_next(evs__linecheck *k, const evs_log *l, const char *line,
                        size_t len, uint64_t off, evs_event *ev,
                        evs_error_info *info)
{
    int rc = evs_line_decode(&k->dec, line, len, 0, ev, NULL);

    if (rc == -ENOMEM) {
        evs__error_set(info, rc, "", "out of memory");
        return rc;
    }
    if (rc != 0 || len == 0 || line[len - 1] != '\n')
        return evs__cursor_damage(info, l, k->next_seq,
                                  rc == EVS_EFORMAT ? rc : EVS_ECORRUPT,
                                  rc == EVS_ECORRUPT  ? "checksum"
                                  : rc == EVS_EFORMAT ? "format"
                                                      : "syntax",
                                  off,
                                  rc == EVS_ECORRUPT  ? "checksum mismatch"
                                  : rc == EVS_EFORMAT ? "newer format version"
                                                      : "malformed line");
    if (!evs__span_eq(ev->execution_id, (evs_span){l->id, l->id_len}))
        return evs__cursor_damage(info, l, k->next_seq, EVS_ECORRUPT,
                                  "execution", off,
                                  "line of another execution");
    if (ev->sequence != k->next_seq)
        return evs__cursor_damage(info, l, k->next_seq, EVS_ECORRUPT,
                                  "sequence", off, "sequence out of order");
    if (k->grp_end >= ev->sequence) {
        if (ev->batch_first != k->grp_first)
            return evs__cursor_damage(info, l, k->next_seq, EVS_ECORRUPT,
                                      "framing", off,
                                      "append cut short before this line");
    } else if (ev->batch_first != ev->sequence && !k->mid_group_ok) {
        return evs__cursor_damage(info, l, k->next_seq, EVS_ECORRUPT,
                                  "framing", off,
                                  "line of an append whose start is missing");
    }
    k->mid_group_ok = 0;
    if (ev->batch_count > 1) {
        k->grp_first = ev->batch_first;
        k->grp_end = ev->batch_first + ev->batch_count - 1;
    }
    k->next_seq++;
    return 0;
}
