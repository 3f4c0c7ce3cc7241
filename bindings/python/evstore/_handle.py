"""A run handle (``evs_run *``, the root's or a branch's) and the calls made
on it, turning return codes into values and exceptions.

Steps use the two-phase calls (``evs_run_step_begin``, then
``evs_run_step_end`` or ``_fail``), so the body of a step is Python code
run between two C calls: an exception it raises never crosses C.

A call that waits (a sleep, a wait for an event, a backoff, a pause, a
join) returns -EINTR when a signal the process catches arrives, or when
:meth:`Execution.stop` asks (``evs_run_interrupt``); the call is then
made again, which goes on with what is left, unless the run is being
stopped in this process (:class:`evstore.Interrupted`) or, in the main
thread, the signal's Python handler raises (Ctrl-C:
``KeyboardInterrupt``).

A signal that arrives while such a call is not napping (while it saves
the run's snapshot, or looks at its inbox) would not end it. So while a
workflow runs in the main thread, the interpreter's wakeup fd
(``signal.set_wakeup_fd``) is a socket a thread of ours reads
(:class:`SignalWatch`): a signal's byte there makes it interrupt the main
thread's call until that call returns.
"""
from __future__ import annotations

import ctypes
import signal
import socket
import threading
import time
from ctypes import byref
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from . import _codec, _lib, errors
from ._lib import STEP_REPLAYED, STEP_RETRY, STEP_RUN, lib

if TYPE_CHECKING:
    from ._execution import Execution

def _signal_checker() -> Callable[[], int]:
    """PyErr_CheckSignals: runs the Python handlers of the signals that
    came (raising what they raise); not CPython: the interpreter's own
    check does it."""
    try:
        fn = ctypes.pythonapi.PyErr_CheckSignals
    except AttributeError:
        return lambda: 0
    fn.restype = ctypes.c_int
    fn.argtypes = []
    return fn  # type: ignore[no-any-return]


_check_signals = _signal_checker()


class SignalWatch:
    """The reader of the wakeup fd (see the module's doc); one per process,
    made when first armed."""

    _one: "Optional[SignalWatch]" = None

    def __init__(self) -> None:
        self.r, self.w = socket.socketpair()
        self.w.setblocking(False)
        self.lock = threading.Lock()
        self.handle: Optional["Handle"] = None
        self.seq = 0
        threading.Thread(target=self._watch, name="evstore signals",
                         daemon=True).start()

    @classmethod
    def arm(cls) -> Optional[int]:
        """Makes the wakeup fd ours, from the main thread, unless another
        is set (asyncio's, the application's). Returns the fd it replaced
        (-1: none), for disarm; None when not armed."""
        if cls._one is None:
            cls._one = SignalWatch()
        fd = cls._one.w.fileno()
        try:
            old = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
        except ValueError:  # not the main thread
            return None
        if old not in (-1, fd):
            signal.set_wakeup_fd(old)
            return None
        return old

    @staticmethod
    def disarm(old: Optional[int]) -> None:
        if old is not None:
            signal.set_wakeup_fd(old)

    def enter(self, h: "Handle") -> None:
        with self.lock:
            self.handle = h
            self.seq += 1

    def leave(self) -> None:
        with self.lock:
            self.handle = None

    def _watch(self) -> None:
        while self.r.recv(64):
            with self.lock:
                seq = self.seq
            # Until the call that was running returns (10 s at most).
            for _ in range(5000):
                with self.lock:
                    if self.handle is None or self.seq != seq:
                        break
                    lib.evs_run_interrupt(self.handle.ptr)
                time.sleep(0.002)


_NOT_SERIALIZABLE = "%s.%s" % (errors.NotSerializable.__module__,
                               errors.NotSerializable.__qualname__)


class Handle:
    """One ``evs_run *`` and its error detail; used by one thread at a
    time (the root's, or a branch's)."""

    __slots__ = ("ptr", "err", "execution")

    def __init__(self, ptr: int, execution: "Execution",
                 held: bool = False):
        self.ptr = ptr
        self.err = _lib.ErrorInfo()
        self.execution = execution
        if not held:  # the store stays open while the handle is
            execution.store._hold()

    # -- calling -------------------------------------------------------

    def call(self, fn: Any, *args: Any) -> int:
        """fn(handle, *args, &err), called again after an interruption
        that does not stop the run (see the module's doc)."""
        ex = self.execution
        while True:
            if ex.stopping:
                raise ex.stop_error(self, errors.make(
                    errors.EINTR, None, errors.Interrupted))
            watch = ex.watch if self is ex.root else None
            ex.enter()
            if watch is not None:
                watch.enter(self)
            try:
                rc = fn(self.ptr, *args, byref(self.err))
            finally:
                if watch is not None:
                    watch.leave()
                ex.leave()
            if rc != errors.EINTR:
                return rc
            if threading.current_thread() is threading.main_thread():
                _check_signals()  # raises what the signal's handler raises
            if ex.stopping:
                raise ex.stop_error(self, self.failure(rc))

    def failure(self, rc: int) -> BaseException:
        """The exception for a code a call on this handle returned, as the
        workflow's code sees it."""
        if rc == errors.EFINISHED:
            return errors.make(rc, self.err, errors.Terminated)
        if rc == errors.EFAILED:
            return self.step_failed(rc)
        if rc == errors.ETIMEDOUT:
            return errors.make(rc, self.err, errors.Timeout,
                               _lib.text(lib.evs_run_error(self.ptr)))
        return errors.make(rc, self.err)

    def step_failed(self, rc: int) -> BaseException:
        """StepFailed (JoinFailed for a join, NotSerializable for a result
        that was not JSON) from the recorded error."""
        recorded = _lib.text(lib.evs_run_error(self.ptr))
        typ = (_codec.loads(recorded.encode()) or {}).get("type")
        cls = (errors.JoinFailed if typ == "join_failed" else
               errors.NotSerializable if typ == _NOT_SERIALIZABLE else
               errors.StepFailed)
        exc = errors.make(rc, self.err, cls, recorded)
        if isinstance(exc, errors.StepFailed) and not exc.step:
            exc.step = self.step_name()
        return exc

    def check(self, rc: int) -> None:
        if rc != 0:
            raise self.failure(rc)

    # -- steps ---------------------------------------------------------

    def begin(self, name: bytes, inp: Optional[bytes],
              options: Optional[bytes]) -> Tuple[bool, Any]:
        """Begins a step: (False, None) to run its body now, (True, output)
        when the history holds its output."""
        rc = self.call(lib.evs_run_step_begin, name, inp, options)
        if rc == STEP_RUN:
            return False, None
        if rc == STEP_REPLAYED:
            return True, _codec.loads(lib.evs_run_result(self.ptr))
        raise self.failure(rc)

    def end(self, name: str, value: Any) -> Any:
        """Ends the open step with `value`; returns it as a replay would.
        A value that is not JSON fails the step for good, and raises
        NotSerializable."""
        try:
            out = _codec.dumps(value, "the result of step %r" % name, name)
        except errors.NotSerializable as e:
            self.fail(e, False)
            raise AssertionError("unreachable")  # fail() raised
        self.check(lib.evs_run_step_end(self.ptr, out, byref(self.err)))
        return _codec.roundtrip(value, out)

    def fail(self, exc: BaseException, retryable: bool) -> None:
        """Ends the open step with the failure `exc`. Returns when the
        policy retries it (begin it again); raises StepFailed otherwise."""
        typ, message = _codec.error_of(exc)
        rc = lib.evs_run_step_fail(self.ptr, typ.encode(), message.encode(),
                                   1 if retryable else 0, byref(self.err))
        if rc == STEP_RETRY:
            return
        raise self.failure(rc) from exc

    def key(self) -> str:
        return _lib.text(lib.evs_run_step_key(self.ptr))

    def step_name(self) -> str:
        return _lib.text(lib.evs_run_step_name(self.ptr))

    def attempt(self) -> int:
        return int(lib.evs_run_step_attempt(self.ptr))

    def result(self) -> Any:
        return _codec.loads(lib.evs_run_result(self.ptr))

    # -- reading -------------------------------------------------------

    def string(self, fn: Any) -> str:
        return _lib.text(fn(self.ptr))

    def close(self) -> None:
        if self.ptr:
            lib.evs_run_close(self.ptr)
            self.ptr = 0
            self.execution.store._unhold()
