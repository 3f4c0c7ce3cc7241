/*
 * evstore.h: the whole public API of evstore.
 *
 *   evstore/common.h    errors, spans, allocator and log hooks
 *   evstore/format.h    the event model and the line codec
 *   evstore/snapshot.h  the snapshot record and its codec
 *   evstore/io.h        the I/O vtable
 *   evstore/store.h     the event store: executions, logs, cursors
 *   evstore/recorder.h  buffered, sequenced recording
 *   evstore/replay.h    rebuilding state from events
 *   evstore/workflow.h  workflow definitions: parse, check, evaluate
 *   evstore/orchestrator.h  running workflows durably on libuv (needs
 *                       libuv's headers)
 */
#ifndef EVSTORE_H
#define EVSTORE_H

#include "evstore/common.h"
#include "evstore/format.h"
#include "evstore/io.h"
#include "evstore/recorder.h"
#include "evstore/replay.h"
#include "evstore/snapshot.h"
#include "evstore/store.h"
#include "evstore/workflow.h"
#include "evstore/orchestrator.h"

#endif /* EVSTORE_H */
