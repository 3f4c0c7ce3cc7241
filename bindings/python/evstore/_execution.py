"""One run executed by this process: opening it, running its workflow's
code (and its successors' after a continue-as-new), recording how the code
ended, and stopping it.

How the code's end is recorded:

- it returned: the run completes with the value (``evs_run_complete``);
- it raised an exception of its own, or :class:`evstore.StepFailed`: the
  run fails with the exception's type and message (``evs_run_fail``), and
  :class:`evstore.RunFailed` is its outcome;
- it raised any other evstore error (a nondeterminism, a store error, a
  suspension, an interruption, a lease lost to another runner on
  PostgreSQL), ``KeyboardInterrupt``, ``SystemExit`` or a cancellation:
  nothing is recorded, and the run goes on where it was when its code
  runs again (after :class:`evstore.LeaseLost`, under the runner that
  took it over).

Stopping (Ctrl-C while waiting for a result, a worker's SIGTERM, a
branch's fatal error) interrupts every blocking call on the run's handles
(``evs_run_interrupt``, repeated: each call takes one request) and makes
every later call raise at once.
"""
from __future__ import annotations

import threading
import time
from ctypes import byref, c_void_p
from typing import TYPE_CHECKING, Any, List, Optional, Set, Tuple

from . import _codec, _lib, errors
from ._handle import Handle, SignalWatch
from ._lib import lib
from .policy import Workflow, current

if TYPE_CHECKING:
    from .context import Branch
    from .store import Store

Outcome = Tuple[str, Any]  # ("value", v), ("error", exc), ("continued", id)


class Execution:
    """A run this process executes."""

    # Seconds that threads still running a run's code get to let it go
    # when it stops.
    GRACE = 5.0

    def __init__(self, store: "Store", run_id: Optional[str],
                 workflow: Optional[Workflow], inputs: Optional[bytes],
                 mode: Optional[str] = None):
        self.store = store
        self.id = run_id or ""
        self.first_id = self.id
        self.workflow = workflow
        self.version = ""
        self.inputs_value: Any = {}
        self._inputs = inputs
        self._options = store.run_options(mode)
        self.root: Optional[Handle] = None
        self.watch: Optional[SignalWatch] = None  # in the main thread
        self.stopping = False
        self.fatal: Optional[BaseException] = None
        self.outcome: Optional[Outcome] = None
        self.ended = threading.Event()
        self._busy = 0
        self._lock = threading.Lock()
        self._handles: Set[Handle] = set()
        self._futures: List["Branch"] = []

    # -- opening ---------------------------------------------------------

    def open(self) -> bool:
        """Opens (creates, or resumes) the run: True when its code must
        run; False when it has ended (``outcome`` says how)."""
        out = c_void_p()
        err = _lib.ErrorInfo()
        wf = self.workflow
        self.store._hold()  # for the handle, if one is opened
        rc = lib.evs_run_open(
            self.store._ptr, _lib.enc(self.id or None),
            _lib.enc(wf.name) if wf is not None else None,
            _lib.enc(wf.version) if wf is not None else None,
            self._inputs, self._options, byref(out), byref(err))
        if rc not in (0, errors.EFINISHED):
            self.store._unhold()
            raise errors.make(rc, err)
        h = Handle(out.value or 0, self, held=True)
        self.root = h
        self._handles.add(h)
        self.id = h.string(lib.evs_run_id)
        self.first_id = self.first_id or self.id
        self.version = h.string(lib.evs_run_version)
        if rc == errors.EFINISHED:
            self.outcome = self._ended_outcome(h)
            self.close_handle(h)
            return False
        recorded = h.string(lib.evs_run_workflow)
        if wf is None or wf.name != recorded:
            wf = self.store._workflows.get(recorded)
            if wf is None:
                self.close_handle(h)
                raise errors.NotFound(
                    "run %s is of workflow %r, which is not registered with "
                    "this store" % (self.id, recorded), execution_id=self.id)
            self.workflow = wf
        self.inputs_value = _codec.loads(lib.evs_run_inputs(h.ptr)) or {}
        return True

    def _ended_outcome(self, h: Handle) -> Outcome:
        status = h.string(lib.evs_run_status)
        if status == "completed":
            return ("value", _codec.loads(lib.evs_run_output(h.ptr)))
        if status == "continued":
            return ("continued", h.string(lib.evs_run_continued_as))
        if status == "failed":
            return ("error", errors.make(
                errors.EFAILED, None, errors.RunFailed,
                h.string(lib.evs_run_error)))
        return ("error", errors.Terminated(
            "run %s was terminated" % self.id, errors.EFINISHED,
            execution_id=self.id))

    # -- running ---------------------------------------------------------

    def drive(self, opened: bool) -> None:
        """Runs the code of the opened run, and of its successors, in this
        thread (an async workflow on an event loop of its own)."""
        try:
            while True:
                if opened:
                    self.store._adopt(self)
                    if self.workflow is not None and self.workflow.is_async:
                        import asyncio

                        from .aio import run_code_async
                        asyncio.run(run_code_async(self))
                    else:
                        self._run_code_watched()
                if not self._next():
                    return
                opened = self.open()
        finally:
            self.ended.set()
            self.store._forget(self)

    def _next(self) -> bool:
        """After a continue-as-new, moves to the successor: True."""
        if self.outcome is None or self.outcome[0] != "continued":
            return False
        self.id = self.outcome[1]
        self._inputs = None
        self.outcome = None
        self.stopping = False
        return True

    def _run_code_watched(self) -> None:
        """run_code, with the signal watch in the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return self.run_code()
        old = SignalWatch.arm()
        self.watch = SignalWatch._one if old is not None else None
        try:
            self.run_code()
        finally:
            self.watch = None
            SignalWatch.disarm(old)

    def run_code(self) -> None:
        from .context import Context
        assert self.root is not None and self.workflow is not None
        ctx = Context(self, self.root, "main")
        token = current.set(ctx)
        try:
            value = self.workflow.fn(ctx, **self.inputs_value)
        except BaseException as e:
            self.settle(None, e)
        else:
            self.settle(value, None)
        finally:
            current.reset(token)

    def settle(self, value: Any, exc: Optional[BaseException]) -> None:
        """Records how the code ended (see the module's doc), then lets the
        run go."""
        try:
            self.outcome = self._record(value, exc)
        except BaseException as e:
            self.outcome = ("error", e)
        finally:
            self.release()

    def _record(self, value: Any, exc: Optional[BaseException]) -> Outcome:
        root = self.root
        assert root is not None and self.workflow is not None
        if exc is None:
            try:
                out = _codec.dumps(value, "the result of workflow %r"
                                   % self.workflow.name)
            except errors.NotSerializable as e:
                exc = e
            else:
                rc = lib.evs_run_complete(root.ptr, out, byref(root.err))
                if rc == 0:
                    return ("value", _codec.roundtrip(value, out))
                return ("error", self._refused(rc))
        if isinstance(exc, errors.ContinuedAsNew):
            return ("continued", exc.successor)
        if isinstance(exc, errors.Failed) or (
                isinstance(exc, Exception) and
                not isinstance(exc, errors.Error)):
            typ, message = _codec.error_of(exc)
            rc = lib.evs_run_fail(root.ptr, typ.encode(), message.encode(),
                                  byref(root.err))
            if rc != 0:
                return ("error", self._refused(rc))
            failed = errors.RunFailed(message, errors.EFAILED,
                                      {"type": typ, "message": message},
                                      execution_id=self.id)
            failed.__cause__ = exc
            return ("error", failed)
        return ("error", exc)

    def _refused(self, rc: int) -> BaseException:
        """Why the run could not be ended as its code asked."""
        assert self.root is not None
        if rc == errors.EFINISHED:
            return self._ended_outcome(self.root)[1]
        return errors.make(rc, self.root.err)

    def result(self) -> Any:
        """The outcome: the value, or raises the error."""
        assert self.outcome is not None
        kind, v = self.outcome
        if kind == "error":
            raise v
        return v

    # -- branches and handles ------------------------------------------

    def adopt(self, fut: "Branch") -> None:
        with self._lock:
            self._futures.append(fut)
            self._handles.add(fut._h)

    def close_handle(self, h: Handle) -> None:
        with self._lock:
            self._handles.discard(h)
            h.close()

    def release(self) -> None:
        """Lets the run go: stops branches still live, drops the branches'
        handles (a thread still running closes its own when it ends), and
        closes the root's (the last close saves the snapshot and releases
        the run's lock)."""
        futures, self._futures = self._futures, []
        live = [f for f in futures if not f.ended.is_set()]
        if live:
            self.stop()
            if not self._ended():
                # The run goes on when run again: the branches' threads
                # get the grace to let it go (a cancelled loser of a join
                # that ended the run is not waited for).
                deadline = time.monotonic() + self.GRACE
                for f in live:
                    f.ended.wait(max(0.0, deadline - time.monotonic()))
        for f in futures:
            f.release()
        if self.root is not None:
            self.close_handle(self.root)

    # -- stopping --------------------------------------------------------

    def _ended(self) -> bool:
        """Whether the outcome recorded is an end of the run."""
        if self.outcome is None:
            return False
        kind, value = self.outcome
        return kind != "error" or isinstance(value, (errors.RunFailed,
                                                     errors.Terminated))

    def enter(self) -> None:
        with self._lock:
            self._busy += 1

    def leave(self) -> None:
        with self._lock:
            self._busy -= 1

    def stop(self, wait: float = 5.0) -> bool:
        """Stops the run in this process: every blocking call on its handles
        returns (within the poll interval) and every later one raises.
        True once none is blocked; False if one still was after `wait`
        seconds."""
        self.stopping = True
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                if self._busy == 0:
                    return True
                for h in self._handles:
                    lib.evs_run_interrupt(h.ptr)
                    break
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)

    def stop_error(self, h: Handle, exc: BaseException) -> BaseException:
        """What a call on `h` raises once the run is stopping: the error
        that stopped it, on the root; Interrupted elsewhere."""
        if h is self.root and self.fatal is not None:
            return self.fatal
        return exc

    def fatal_error(self, exc: BaseException) -> None:
        """A branch met an error its run cannot go on with (a
        nondeterminism, a store error): the root raises it."""
        with self._lock:
            if self.fatal is None:
                self.fatal = exc
        self.stop()
