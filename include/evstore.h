/*
 * evstore.h: the public API of evstore's store and replay layers, which
 * needs nothing but a C11 compiler and the C library:
 *
 *   evstore/common.h    errors, spans, allocator and log hooks
 *   evstore/format.h    the event model and the line codec
 *   evstore/snapshot.h  the snapshot record and its codec
 *   evstore/io.h        the I/O vtable
 *   evstore/store.h     the event store: executions, logs, cursors
 *   evstore/settings.h  the settings stored with a store
 *   evstore/gc.h        applying the retention policy; store statistics
 *   evstore/recorder.h  buffered, sequenced recording
 *   evstore/archive.h   archiving executions to bundles, and back
 *   evstore/replay.h    rebuilding state from events
 *   evstore/inspect.h   read-only views of a store as JSON text, for
 *                       bindings (listings, events, states, lineages)
 *   evstore/workflow.h  workflow definitions: parse, check, evaluate
 *   evstore/schedule.h  schedules: cron, time zones, firing executions
 *
 * The orchestrator, which runs workflows durably on libuv, is not part of
 * it: its header needs libuv's, and libuv's headers need POSIX feature
 * macros that strict C11 (gcc -std=c11) leaves off. A program that uses
 * it includes <evstore/orchestrator.h> as well, and compiles with
 * -D_POSIX_C_SOURCE=200809L (or _XOPEN_SOURCE=700, _DEFAULT_SOURCE,
 * _GNU_SOURCE) when it asks for strict C11; see that header. Both link
 * the one library, libevstore (pkg-config evstore).
 */
#ifndef EVSTORE_H
#define EVSTORE_H

#include "evstore/archive.h"
#include "evstore/common.h"
#include "evstore/format.h"
#include "evstore/gc.h"
#include "evstore/inspect.h"
#include "evstore/io.h"
#include "evstore/recorder.h"
#include "evstore/replay.h"
#include "evstore/run.h"
#include "evstore/schedule.h"
#include "evstore/settings.h"
#include "evstore/snapshot.h"
#include "evstore/store.h"
#include "evstore/workflow.h"

#endif /* EVSTORE_H */
