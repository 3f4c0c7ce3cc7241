/*
 * powerloss_io.h: a simulated disk with a page cache, for power-loss
 * tests (tests/RELIABILITY.md, section 1).
 *
 * Recording: pl_rec wraps the POSIX I/O table. The store runs for real
 * on a temporary directory through it, and every call that changes what
 * is on disk (write, truncate, fsync, fdatasync, create, mkdir, rename,
 * unlink) is appended to an operation log with its bytes. Files and
 * directories are followed by identity (a node, like an inode) through
 * renames and unlinks, so the log says which file each write went to
 * whatever names it had. Syncs are recorded, not performed: durability
 * is what the model computes, not what the real disk does.
 *
 * Crashing: pl_crash_at(rec, k) is the disk after the first k operations
 * of the log, as the simulated disk holds it: for every file the
 * durable image, which changes only at an fsync or fdatasync of that
 * file, and the writes and truncates since; for every directory the
 * durable entries, which change only at an fsync of that directory, and
 * the creates, renames and unlinks since. These unsynced operations are
 * "pending". A pl_choice says which pending operations reached the disk
 * and how (whole, or by blocks mixing old and new contents, or as space
 * allocated but holding zeros or garbage); pl_image_make builds that
 * disk in memory and pl_image_write writes it to a fresh directory.
 *
 * Checking: pl_image_io is the table to open the written image with. It
 * passes everything to POSIX except that syncs do nothing (the image is
 * thrown away) and fstat/statat report the inode numbers and change
 * times the files had in the recorded run, so that the listing index
 * (FORMAT.md §12), which trusts (inode, ctime, size), behaves as it
 * would after a real power loss.
 *
 * Nothing here is thread-safe; a store using these tables must be used
 * from one thread.
 */
#ifndef EVS_TEST_POWERLOSS_IO_H
#define EVS_TEST_POWERLOSS_IO_H

#include "evstore/io.h"

#include <stddef.h>
#include <stdint.h>

/* Kinds of recorded operation. */
enum {
    PL_WRITE = 1, /* node, off, len, bytes */
    PL_TRUNC,     /* node, len */
    PL_SYNC,      /* node: fsync or fdatasync of a file or directory */
    PL_CREATE,    /* dir, name, node: a new regular file */
    PL_MKDIR,     /* dir, name, node: a new directory */
    PL_RENAME,    /* dir, name -> dir2, name2; node is the one moved */
    PL_UNLINK     /* dir, name; node is the one unlinked */
};

typedef struct pl_op {
    int kind;
    uint32_t node, dir, dir2;
    const char *name, *name2; /* owned by the recorder */
    uint64_t off, len;
    size_t data; /* PL_WRITE: offset of the bytes in the recorder's arena */
} pl_op;

typedef struct pl_rec pl_rec;

/* Starts recording for a store at `root`, an existing empty directory;
 * the store must be opened with exactly this path string. NULL on
 * allocation failure. */
pl_rec *pl_rec_new(const char *root);
void pl_rec_free(pl_rec *r);

/* Follows `path` (opened or made from AT_FDCWD by that exact string) as
 * the entry `name` of the root, where it must be: for a directory the
 * store is given by path, such as the one bundles are archived to
 * (STORE/.bundles; the store ignores names that start with a dot). */
void pl_rec_alias(pl_rec *r, const char *path, const char *name);

/* The table to give the store (opts.io). Valid until pl_rec_free. */
const evs_io *pl_rec_io(pl_rec *r);

/* Number of operations recorded so far: crash points are 0..this. */
size_t pl_rec_nops(const pl_rec *r);
const pl_op *pl_rec_op(const pl_rec *r, size_t i);
/* The bytes of a PL_WRITE. */
const char *pl_rec_bytes(const pl_rec *r, const pl_op *op);

/* Fault injection for workloads that need a torn tail on the real disk:
 * the next `n` pwritev calls write the first half of their bytes and
 * fail with -EIO; the next `m` ftruncate calls fail with -EIO and do
 * nothing. */
void pl_rec_tear(pl_rec *r, int n_writes, int m_truncates);

/* Non-zero once a call was made that the model cannot follow (an
 * unknown descriptor, a name the shadow tree does not know, a rename
 * between directories); pl_rec_error says which. Check it. */
int pl_rec_failed(const pl_rec *r);
const char *pl_rec_error(const pl_rec *r);

/* ------------------------------------------------------------------ */

typedef struct pl_crash pl_crash;

/* The simulated disk after operations [0, k). NULL on allocation
 * failure. */
pl_crash *pl_crash_at(const pl_rec *r, size_t k);
void pl_crash_free(pl_crash *c);

/* Pending (unsynced) operations, in log order: index i of a pl_choice's
 * `include` is pl_crash_pending_op(c, i). */
size_t pl_crash_npending(const pl_crash *c);
const pl_op *pl_crash_pending_op(const pl_crash *c, size_t i);

/* How file contents are built from the durable image ("old") and the
 * durable image plus the included pending writes ("new"). */
enum {
    PL_WHOLE = 0,    /* new */
    PL_BLOCKS,       /* block by block old or new, at random; the size
                         is the old one, the new one, or the end of the
                         last new block */
    PL_FILL_ZEROS,   /* old bytes, new size: allocated, never written */
    PL_FILL_GARBAGE, /* old bytes, new size, the rest random bytes */
    PL_TAIL_ZEROS,   /* new, then zeros up to past the next 4 KiB */
    PL_TAIL_GARBAGE  /* new, then random bytes (some newlines) */
};

typedef struct pl_choice {
    /* One flag per pending operation: it reached the disk. NULL: all. */
    const unsigned char *include;
    int contents;  /* PL_WHOLE ... */
    size_t block;  /* PL_BLOCKS: 512 or 4096 */
    uint64_t seed; /* for PL_BLOCKS and garbage */
} pl_choice;

typedef struct pl_image pl_image;

/* Builds the disk `ch` describes, in memory. Files that no included
 * directory entry reaches are lost, as on a real disk. */
int pl_image_make(const pl_crash *c, const pl_choice *ch, pl_image **out);
void pl_image_free(pl_image *im);

/* A 128-bit digest of the image (names, contents, identities), to count
 * distinct images. */
void pl_image_digest(const pl_image *im, uint64_t out[2]);

/* Number of files and directories in the image, and the contents of the
 * file at `path` (relative, "a/b"), or NULL. */
size_t pl_image_count(const pl_image *im);
const char *pl_image_file(const pl_image *im, const char *path, size_t *len);

/* Writes the image into `dir`, an existing empty directory. 0 or
 * -errno. */
int pl_image_write(pl_image *im, const char *dir);

/* The table to open the written image with (see above). Valid until
 * pl_image_free. */
const evs_io *pl_image_io(pl_image *im);

/* How many times a store opened a file named snapshot.json through
 * pl_image_io: a listing answered by the listing index opens none. */
size_t pl_image_snapshot_opens(const pl_image *im);

#endif
