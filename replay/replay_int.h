/*
 * replay_int.h: the replayer's internals, shared by the files of replay/.
 */
#ifndef EVS_REPLAY_INT_H
#define EVS_REPLAY_INT_H

#include "evstore/replay.h"
#include "formats_shared.h"

/* Copies of strings and JSON values live in an arena of chunks that never
 * move, so the spans handed out stay valid until the replayer is freed or
 * reloaded. */
typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
} arena_chunk;

/* An index from a 64-bit key hash to positions in one of the state
 * arrays; collisions are resolved by comparing the element itself. A
 * slot holds both, so that a probe touches one cache line. */
typedef struct index_slot {
    uint64_t hash;
    uint32_t pos; /* position + 1; 0 marks an empty slot */
} index_slot;

typedef struct index_map {
    index_slot *slot;
    size_t cap, count;
} index_map;

#define DEFINE_VEC(name, type)                                                 \
    typedef struct name {                                                      \
        type *v;                                                               \
        size_t n, cap;                                                         \
    } name

DEFINE_VEC(path_vec, evs_path_state);
DEFINE_VEC(step_vec, evs_step_state);
DEFINE_VEC(each_vec, evs_each_state);
DEFINE_VEC(var_vec, evs_var_state);
DEFINE_VEC(signal_vec, evs_signal_state);
DEFINE_VEC(version_vec, evs_version_state);
DEFINE_VEC(timer_vec, evs_timer_state);
DEFINE_VEC(wait_vec, evs_wait_state);
DEFINE_VEC(pos_vec, size_t);
DEFINE_VEC(name_vec, evs_stepname_state);
DEFINE_VEC(span_vec, evs_span);

/* The iterations of one `each` step on one path: where iteration i's
 * step is (position + 1; 0 if it has none yet), for i < EVS__ITER_DENSE.
 * Iterations are looked up far more than other steps and are most of
 * them, so they are kept out of the step index: this small array stays
 * in the cache where the index's slot for a step would not. An iteration
 * past EVS__ITER_DENSE (a hostile history could name any) goes to the
 * step index like a plain step, so memory stays bounded by the events. */
#define EVS__ITER_DENSE 65536
typedef struct iter_group {
    evs_span path_id, name;
    uint32_t *pos;
    size_t n, cap;
} iter_group;

DEFINE_VEC(group_vec, iter_group);

struct evs_replay {
    evs_replay_opts opts;
    const evs_allocator *alloc;
    arena_chunk *arena;
    size_t arena_bytes; /* copied into the arena since it was made */
    size_t gc_next;     /* compact mode: collect past this (replay_gc.c) */
    /* The snapshot the state was loaded from, kept whole: the loaded
     * state's strings and JSON values point into its `state` text
     * (evs__rp_load_state_snapshot). Freed with the arena. */
    evs_snapshot *snapshot;
    evs_exec_state exec;
    path_vec paths;
    step_vec steps;
    each_vec eaches;
    var_vec vars;
    signal_vec signals;
    version_vec versions;
    timer_vec timers;
    wait_vec waits;
    pos_vec pend;   /* positions in waits of the pending ones */
    name_vec names; /* one record per step name */
    /* Compact mode: the ids of the consumed signals, which went from
     * `signals`, in the order they were consumed. */
    span_vec gone;
    group_vec groups; /* iterations of `each` steps, by (path, name) */
    index_map path_ix, step_ix, each_ix, var_ix, version_ix, timer_ix, group_ix,
        name_ix, gone_ix;
    int terminal;             /* a terminal event was applied */
    size_t nfailed;           /* steps failed for good */
    size_t nactive, nwaiting; /* paths by status, for the exec status */
};

/*
 * Loads the state of an empty replayer from sn->state as
 * evs_replay_load_state does (same checks, results and errors), taking
 * ownership of sn, which must come from evs_snapshot_load (or decode or
 * copy: one heap block). When the replayer and sn both use the C
 * library's allocator nothing is copied: the state's spans point into
 * sn->state, which the load changes (escaped strings are unescaped in
 * place) and which the replayer keeps until it is reset or freed.
 * Otherwise the state is copied into the replayer's arena, as
 * evs_replay_load_state does, and sn freed. On failure sn is freed at
 * once. evs_replay_open reads snapshots this way (state_read.c).
 */
int evs__rp_load_state_snapshot(evs_replay *r, evs_snapshot *sn);

/* Arena and index helpers (replay_mem.c). */
int evs__rp_copy(evs_replay *r, evs_span in, evs_span *out);
/* Copies the unescaped text of JSON string value v (with its quotes). */
int evs__rp_copy_str(evs_replay *r, evs_span v, evs_span *out);
void evs__rp_reset(evs_replay *r);
void *evs__rp_grow(evs_replay *r, void **v, size_t *cap, size_t n, size_t size);
/* Makes room for `want` elements at once when that is more than *cap, so
 * that a vector whose size can be guessed is not copied as it doubles
 * (a hint: it does nothing with a caller's allocator, and a failure is
 * left to the growth that follows). */
void evs__rp_reserve(evs_replay *r, void **v, size_t *cap, size_t want,
                     size_t size);
uint64_t evs__rp_hash(evs_span a, evs_span b, int64_t n);
/* Finds the position of an element whose hash is h and for which eq
 * returns true; -1 if none. */
long evs__rp_find(const index_map *m, uint64_t h,
                  int (*eq)(const void *ctx, size_t pos), const void *ctx);
int evs__rp_insert(evs_replay *r, index_map *m, uint64_t h, size_t pos);
void evs__rp_map_free(evs_replay *r, index_map *m);

/* Lookups shared by apply and load (replay.c). */
long evs__rp_path_pos(const evs_replay *r, evs_span id);
long evs__rp_step_pos(const evs_replay *r, evs_span path, evs_span name,
                      int64_t iter);
/* Adds an element at the end of a vector and to its index. */
int evs__rp_add_path(evs_replay *r, const evs_path_state *p);
int evs__rp_add_step(evs_replay *r, const evs_step_state *s);
int evs__rp_add_each(evs_replay *r, const evs_each_state *e);
int evs__rp_add_var(evs_replay *r, const evs_var_state *v);
int evs__rp_add_version(evs_replay *r, const evs_version_state *v);
int evs__rp_add_timer(evs_replay *r, const evs_timer_state *t);
/* Records that waits.v[pos] is pending (state loading). */
int evs__rp_note_pending(evs_replay *r, size_t pos);
int evs__rp_add_stepname(evs_replay *r, const evs_stepname_state *n);
int evs__rp_add_gone(evs_replay *r, evs_span id);
long evs__rp_each_pos(const evs_replay *r, evs_span path, evs_span name);
long evs__rp_stepname_pos(const evs_replay *r, evs_span name);
long evs__rp_var_pos(const evs_replay *r, evs_span name);
long evs__rp_version_pos(const evs_replay *r, evs_span id);
long evs__rp_timer_pos(const evs_replay *r, evs_span id);
/* Every change of a path's status goes through here, which keeps count
 * of the live paths by status: the execution's status follows them. */
void evs__rp_set_path_status(evs_replay *r, evs_path_state *p,
                             evs_path_status st);

/* A wait, timer or scheduled retry starts (+1) or stops (-1) holding a
 * path: the path is WAITING while anything holds it. */
void evs__rp_hold(evs_replay *r, evs_path_state *p, int delta);

/* Appends *item to a state vector, and to its index when ix is not
 * NULL. Returns -ENOMEM from the calling function on failure. */
#define ADD(r, vec, item, ix, h)                                               \
    do {                                                                       \
        if (!evs__rp_grow((r), (void **)&(r)->vec.v, &(r)->vec.cap,            \
                          (r)->vec.n, sizeof(*(r)->vec.v)))                    \
            return -ENOMEM;                                                    \
        if ((ix) && evs__rp_insert((r), (ix), (h), (r)->vec.n) != 0)           \
            return -ENOMEM;                                                    \
        (r)->vec.v[(r)->vec.n++] = *(item);                                    \
    } while (0)

/* Compact mode: what goes from the state (replay_index.c). Each drops
 * what has ended of its kind and rebuilds the indexes of what stays, in
 * the same order, so that dropping at once or bit by bit ends in the
 * same state. */
#define EVS__DROP_STEPS                                                        \
    1                       /* of ended paths, unless failed for good;
                               and the `each` records of ended paths */
#define EVS__DROP_WAITS 2   /* ended waits */
#define EVS__DROP_TIMERS 4  /* fired or cancelled timers */
#define EVS__DROP_SIGNALS 8 /* consumed signals (their ids to `gone`) */
#define EVS__DROP_ALL 15
int evs__rp_drop(evs_replay *r, int what);

/* Compact mode's memory (replay_gc.c): moves the state into a fresh
 * arena and frees the old one; _maybe does so once the arena holds more
 * than twice what the state held after the last collection. */
int evs__rp_gc(evs_replay *r);
void evs__rp_gc_maybe(evs_replay *r);

/* Recomputes RUNNING/WAITING from the paths. */
void evs__rp_settle(evs_replay *r);

#endif /* EVS_REPLAY_INT_H */
