"""evstore: durable workflows and agents in Python, on the evstore C library.

A workflow is a function; each side effect it has runs in a named step,
whose result is in the run's event log, synced, before the step returns.
Run again after a crash (or on purpose) with the same run id, the same code
replays: each step the history holds gives back its recorded result without
running, and the code goes on live from where the history ends. There is no
server and no database: a store is a directory.

    import evstore

    store = evstore.Store("./agent-store")

    @store.step(max_attempts=3, initial_interval=0.5)
    def search(query: str) -> list:
        ...

    @store.workflow("research", version="1")
    def research(ctx, topic: str) -> dict:
        found = ctx.all([ctx.step_future("search", search, q)
                         for q in (topic, topic + " history")])
        approval = ctx.wait_event("approval", timeout=3600)
        return {"found": found, "approved_by": approval["by"]}

    run = store.start("research", id="r-42", topic="durable execution")
    store.send("r-42", "approval", {"by": "alice"})
    print(run.result(timeout=10))

``python -m evstore worker STORE --app module:store`` runs a store's
unfinished runs until SIGTERM. The C API is ``include/evstore/run.h``;
``formats/RUNS.md`` gives the events each call records.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from ._lib import lib as _clib
from ._lib import text as _text
from .context import Context, Future, StepInfo, step_info
from .errors import (AlreadyExists, BadId, BrokenHistory, Busy, Cancelled,
                     Conflict, ContinuedAsNew, Corrupt, Error, Failed,
                     Finished, HistoryLimit, Interrupted, InvalidArgument,
                     JoinFailed,
                     LeaseLost, Locked, NoBackend, NonDeterminism, NotFound,
                     NotSerializable,
                     OutOfMemory, ParseError, Poisoned, ReadOnly, RunFailed,
                     Stale, StepFailed, Suspended, Terminated, Timeout,
                     TooBig, TooManyEvents, Torn, UnknownFormat, Unsafe,
                     VersionOutOfRange)
from .policy import Retry, RetryLike, StepFunction, Workflow, make_step
from .store import Run, Store

__version__ = "0.1.0"

#: The version of the C library loaded ("MAJOR.MINOR.PATCH").
library_version: str = _text(_clib.evs_version())


def __getattr__(name: str) -> Any:
    # AsyncContext comes with asyncio, imported only when asked for.
    if name == "AsyncContext":
        from .aio import AsyncContext
        return AsyncContext
    raise AttributeError("module 'evstore' has no attribute %r" % name)


def step(fn: Optional[Callable[..., Any]] = None, *,
         name: Optional[str] = None, retry: RetryLike = None,
         **policy: Any) -> Any:
    """Makes a function a step, as :meth:`Store.step` does (no store
    needed): ``@evstore.step`` or ``@evstore.step(max_attempts=3)``."""
    return make_step(fn, name, retry, policy)


__all__ = [
    "Store", "Run", "Context", "AsyncContext", "Future", "StepInfo",
    "StepFunction", "Workflow", "Retry", "step", "step_info",
    "library_version",
    "Error", "Failed", "StepFailed", "JoinFailed", "RunFailed",
    "NotSerializable", "NonDeterminism", "Conflict", "NotFound", "Locked",
    "Finished", "Terminated", "Suspended", "Interrupted", "Cancelled",
    "ContinuedAsNew", "Timeout", "InvalidArgument", "Busy", "AlreadyExists",
    "Corrupt", "Torn", "VersionOutOfRange", "Poisoned", "UnknownFormat",
    "BadId", "TooBig", "ParseError", "Stale", "ReadOnly", "Unsafe",
    "BrokenHistory", "OutOfMemory", "TooManyEvents", "HistoryLimit",
    "NoBackend", "LeaseLost",
]
