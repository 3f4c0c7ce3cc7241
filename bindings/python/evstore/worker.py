"""The worker: runs a store's unfinished runs until SIGTERM.

``python -m evstore worker STORE --app module:store`` imports the module
(from the current directory, or ``PYTHONPATH``), takes its
:class:`evstore.Store` (the attribute named after the colon, ``store`` by
default) for the workflows registered with it, and then, until SIGTERM or
SIGINT, runs every run of those workflows that has not ended and that no
process runs, as soon as it is due: after a crash, once a sleep, a retry's
backoff or a wait's timeout comes, once an event it waits for arrives.
Runs are opened in suspend mode, so that a waiting run holds no thread: its
code runs again (replaying up to where it was) when it is due.

On SIGTERM no new run starts, blocking calls are interrupted, code that is
running gets the grace time to reach its next durable call, and the worker
exits 0. A step cut off then runs again, with the same idempotency key,
when the run is next taken.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from . import errors
from .store import Run, Store


def load_app(spec: str) -> Store:
    """The Store named by "module:attribute" ("module" alone: its
    ``store``)."""
    mod_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(mod_name)
    obj = getattr(module, attr or "store", None)
    if not isinstance(obj, Store):
        raise SystemExit("evstore worker: %s is not an evstore.Store" % spec)
    return obj


def _wake_in(items: List[Dict[str, Any]]) -> Optional[float]:
    """Seconds until the earliest wake_at of runs not yet due."""
    now = time.time()
    best = None
    for it in items:
        at = it.get("wake_at")
        if it.get("due") or not at:
            continue
        try:
            t = _dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            continue
        wait = t.timestamp() - now
        if best is None or wait < best:
            best = wait
    return best


def serve(store: Store, poll: float = 0.5, grace: float = 10.0,
          mode: str = "suspend", stop: Optional[threading.Event] = None,
          say: Any = print) -> int:
    """Runs `store`'s due runs until `stop` is set (by SIGTERM or SIGINT
    when called from the main thread). Returns the exit status, 0."""
    stopped = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
    names = ", ".join(sorted(store._workflows)) or "none"
    say("evstore worker: store %s, workflows: %s" % (store.path, names),
        flush=True)
    running: List[Run] = []
    while not stopped.is_set():
        try:
            items = store.recoverable()
            for run in store.recover(mode=mode):
                say("evstore worker: running %s" % run.id, flush=True)
                running.append(run)
        except errors.Error as e:
            say("evstore worker: %s" % e, file=sys.stderr, flush=True)
            items = []
        _report(running, say)
        wake = _wake_in(items)
        stopped.wait(poll if wake is None else max(0.01, min(poll, wake)))
    say("evstore worker: stopping", flush=True)
    store.close(timeout=grace)
    _report(running, say)
    return 0


def _report(running: List[Run], say: Any) -> None:
    """Says how the code of each run that ended here ended."""
    for run in [r for r in running if r.done()]:
        running.remove(run)
        say("evstore worker: %s: %s" % (run.id, _ended(run)), flush=True)


def _ended(run: Run) -> str:
    """How the code of a run this worker ran ended, in a few words."""
    ex = run._ex
    kind, value = ex.outcome if ex is not None and ex.outcome else \
        ("error", None)
    if kind == "value":
        return "completed"
    if isinstance(value, errors.Suspended):
        return "suspended (waits)"
    if isinstance(value, errors.Interrupted):
        return "interrupted"
    return "%s: %s" % (type(value).__name__, value)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m evstore",
        description="Runs the workflows of an evstore store.")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run unfinished and due runs until "
                       "SIGTERM", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("store", help="the store directory")
    w.add_argument("--app", required=True,
                   help="module:attribute of the evstore.Store with the "
                   "workflows")
    w.add_argument("--poll", type=float, default=0.5,
                   help="seconds between looks at the store (default 0.5)")
    w.add_argument("--grace", type=float, default=10.0,
                   help="seconds running code gets on SIGTERM (default 10)")
    w.add_argument("--block", action="store_true",
                   help="run waiting runs in threads that block, instead "
                   "of suspending them")
    args = p.parse_args(argv)
    app = load_app(args.app)
    store = app
    if not os.path.exists(args.store) or \
            not os.path.samefile(args.store, app.path):
        store = Store(args.store, durability=app.durability, mode=app.mode,
                      poll_interval=app.poll_ms / 1000.0,
                      retry=app.default_retry)
        store._workflows.update(app._workflows)
    return serve(store, poll=args.poll, grace=args.grace,
                 mode="block" if args.block else "suspend")
