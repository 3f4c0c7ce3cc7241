/*
 * fault_io.h: an I/O vtable for tests that wraps the POSIX one and makes
 * a chosen call fail: the Nth call of the selected kinds fails once, or
 * from then on, with an errno value or as a short (torn) write.
 */
#ifndef EVS_TEST_FAULT_IO_H
#define EVS_TEST_FAULT_IO_H

#include "evstore/io.h"

enum {
    FIO_OPEN = 1u << 0,
    FIO_READ = 1u << 1,
    FIO_WRITE = 1u << 2,
    FIO_FDATASYNC = 1u << 3,
    FIO_FSYNC = 1u << 4,
    FIO_TRUNCATE = 1u << 5,
    FIO_STAT = 1u << 6,
    FIO_MKDIR = 1u << 7,
    FIO_RENAME = 1u << 8,
    FIO_UNLINK = 1u << 9,
    FIO_LOCK = 1u << 10,
    FIO_LISTDIR = 1u << 11,
    FIO_CLOSE = 1u << 12,
    FIO_ALL = (1u << 13) - 1,
    /* The calls that change what is on disk. */
    FIO_MUTATING = FIO_OPEN | FIO_WRITE | FIO_FDATASYNC | FIO_FSYNC |
                   FIO_TRUNCATE | FIO_MKDIR | FIO_RENAME | FIO_UNLINK,
};

/* As an error value: write half of the bytes, then fail with -EIO. */
#define FIO_SHORT 1

typedef struct fault_io {
    evs_io io; /* install this one: opts.io = &f.io */
    const evs_io *base;
    unsigned mask; /* kinds of call that count */
    long nth;      /* 1-based call that fails; 0: disarmed */
    int err;       /* negative errno, or FIO_SHORT */
    int persist;   /* keep failing after the first failure */
    long calls;    /* counted calls so far */
    long fired;    /* failures injected */
    long long read_bytes; /* bytes read by every pread so far, counted or
                             not */
} fault_io;

void fault_io_init(fault_io *f);
void fault_io_arm(fault_io *f, unsigned mask, long nth, int err, int persist);
void fault_io_disarm(fault_io *f);

#endif
