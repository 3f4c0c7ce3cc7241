"""What a workflow's code is given: :class:`Context`, its steps, sleeps,
waits, versions and parallel branches (:class:`Future`).

A branch is a path of its own (``evs_run_branch``), run by a thread of its
own with a Context on it; a join (``evs_run_join``) waits for branches and
gives their outputs. On a re-run, the same calls reopen the recorded
branches, whose steps replay, and the join gives its recorded outcome.
"""
from __future__ import annotations

import contextvars
import datetime as _dt
import inspect
import sys
import threading
from ctypes import byref, c_void_p, create_string_buffer
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence

from . import _codec, _lib, errors
from ._handle import Handle
from ._lib import lib
from .policy import Retry, RetryLike, current, step_options, unwrap


class StepInfo:
    """The step whose body runs now (:func:`evstore.step_info`)."""

    __slots__ = ("_h", "run_id")

    def __init__(self, handle: Handle, run_id: str):
        self._h = handle
        self.run_id = run_id

    @property
    def key(self) -> str:
        """The step's idempotency key, ``<run id>/<path>/<step>``: the same
        for every attempt and every re-run. Give it to the service the step
        calls, so that it can tell a repeated call."""
        return self._h.key()

    @property
    def name(self) -> str:
        """The step's recorded name (``"search#2"``)."""
        return self._h.step_name()

    @property
    def attempt(self) -> int:
        """The attempt, 1 for the first."""
        return self._h.attempt()


_step_info: contextvars.ContextVar[Optional[StepInfo]] = \
    contextvars.ContextVar("evstore_step", default=None)


def step_info() -> Optional[StepInfo]:
    """The step whose body runs in this thread or task, or None."""
    return _step_info.get()


def cancelled(exc: BaseException) -> bool:
    """Whether `exc` is asyncio's cancellation (asyncio, slow to import,
    is imported only by code that uses it)."""
    aio = sys.modules.get("asyncio")
    return aio is not None and isinstance(exc, aio.CancelledError)


def millis(seconds: Optional[float], what: str) -> int:
    """Seconds as the library's whole milliseconds."""
    if seconds is None:
        return 0
    ms = int(round(float(seconds) * 1000))
    if ms < 0:
        raise errors.InvalidArgument("%s must not be negative" % what)
    return ms


def epoch_us(when: Any) -> int:
    """A datetime (naive: local time) or seconds since the epoch, in µs."""
    if isinstance(when, _dt.datetime):
        when = when.timestamp()
    return int(round(float(when) * 1_000_000))


class _Base:
    """What the synchronous and asynchronous contexts share: the run's
    identity, and the arguments of each call checked and encoded the same
    way."""

    def __init__(self, execution: Any, handle: Handle, path: str):
        self._ex = execution
        self._h = handle
        self.path = path

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._ex.id

    @property
    def workflow(self) -> str:
        """The workflow's name."""
        return self._ex.workflow.name

    @property
    def version(self) -> str:
        """The code version the run was started under (a run begun under
        another version replays all the same: see ``patched``)."""
        return self._ex.version

    @property
    def inputs(self) -> Dict[str, Any]:
        """The run's inputs."""
        return self._ex.inputs_value

    @property
    def is_replaying(self) -> bool:
        """True while the code is behind the history: its calls replay.
        (Logging only what runs live is its use.)"""
        return bool(lib.evs_run_replaying(self._h.ptr))

    def _prepare(self, name: str, fn: Callable[..., Any], args: Sequence[Any],
                 kwargs: Dict[str, Any], retry: RetryLike) -> tuple:
        body, policy = unwrap(fn, retry)
        # No policy of its own: the run's, given to the library at open
        # (its non-retryable types are told apart here).
        opts = step_options(policy)
        return (body, policy or self._ex.store.default_retry, name.encode(),
                _codec.step_input(name, args, kwargs), opts)

    def _retryable(self, policy: Optional[Retry], exc: BaseException) -> bool:
        return policy.retryable(exc) if policy is not None else True

    # The calls that are one C call each, on handle `h`: the synchronous
    # context makes them in its thread, the asynchronous one in its path's.

    @staticmethod
    def _sleep(h: Handle, seconds: float) -> None:
        h.check(h.call(lib.evs_run_sleep, millis(seconds, "a sleep")))

    @staticmethod
    def _sleep_until(h: Handle, when: Any) -> None:
        h.check(h.call(lib.evs_run_sleep_until, epoch_us(when)))

    @staticmethod
    def _wait_event(h: Handle, name: str, timeout: Optional[float]) -> Any:
        ms = max(millis(timeout, "a timeout"), 1) if timeout is not None \
            else 0
        h.check(h.call(lib.evs_run_wait_event, name.encode(), ms))
        return h.result()

    @staticmethod
    def _patched(h: Handle, change_id: str) -> bool:
        rc = h.call(lib.evs_run_patched, change_id.encode())
        if rc < 0:
            raise h.failure(rc)
        return rc == 1

    @staticmethod
    def _continue_as_new(h: Handle, inputs: Dict[str, Any]) -> NoReturn:
        buf = create_string_buffer(_lib.ID_MAX + 1)
        enc = _codec.dumps(inputs, "the inputs of the successor") \
            if inputs else None
        h.check(h.call(lib.evs_run_continue_as_new, enc, buf))
        raise errors.ContinuedAsNew(buf.value.decode())


class Context(_Base):
    """A workflow's view of its run. Every side effect belongs in a
    :meth:`step`; what the code decides must depend only on its inputs and
    on what the calls return, so that a re-run takes the same path."""

    def step(self, name: str, fn: Callable[..., Any], *args: Any,
             retry: RetryLike = None, **kwargs: Any) -> Any:
        """Runs ``fn(*args, **kwargs)`` as step `name`, or gives back its
        recorded result without running it.

        Arguments and result must be JSON-serialisable (else
        :class:`evstore.NotSerializable`, a TypeError naming the step). The
        result is returned as JSON gives it back (tuples become lists), the
        same live as on replay. `retry` (a :class:`evstore.Retry`, a dict
        of its arguments or an int of attempts) overrides the step's or
        the store's policy. An exception the body raises is recorded
        (type and message) and retried after a durable backoff while the
        policy allows; then :class:`evstore.StepFailed` is raised here. A
        name asked for again is numbered: ``llm``, ``llm#2``...
        """
        body, policy, bname, inp, opts = self._prepare(name, fn, args,
                                                       kwargs, retry)
        h = self._h
        while True:
            replayed, value = h.begin(bname, inp, opts)
            if replayed:
                return value
            token = _step_info.set(StepInfo(h, self._ex.id))
            try:
                out = body(*args, **kwargs)
                if inspect.iscoroutine(out):
                    import asyncio
                    out = asyncio.run(out)
            except Exception as e:
                h.fail(e, self._retryable(policy, e))
                continue
            finally:
                _step_info.reset(token)
            return h.end(name, out)

    def sleep(self, seconds: float) -> None:
        """A durable sleep: a re-run after a crash waits only for what is
        left of it."""
        self._sleep(self._h, seconds)

    def sleep_until(self, when: Any) -> None:
        """Sleeps until `when` (a datetime, or seconds since the epoch)."""
        self._sleep_until(self._h, when)

    def wait_event(self, name: str, timeout: Optional[float] = None) -> Any:
        """Waits for an event `name` sent to the run (:meth:`Store.send`,
        ``evrun send``) and returns its payload. An event sent before the
        wait is kept until a wait takes it, once. With `timeout` (seconds,
        counted from the wait's first run) raises :class:`evstore.Timeout`
        when it passes."""
        return self._wait_event(self._h, name, timeout)

    def patched(self, change_id: str) -> bool:
        """Whether the run takes the patched path of change `change_id`:
        True for a run that reaches this point on code that has it, False
        for one whose history went past it without, the same ever after."""
        return self._patched(self._h, change_id)

    def continue_as_new(self, **inputs: Any) -> NoReturn:
        """Ends the run in a linked successor (``<id>.c2``, ...), whose code
        runs from the start with `inputs` (none given: the same inputs),
        carrying the events not yet taken. Does not return."""
        self._continue_as_new(self._h, inputs)

    # -- branches ------------------------------------------------------

    def branch(self, name: str, fn: Callable[..., Any], *args: Any,
               **kwargs: Any) -> "Future":
        """Runs ``fn(ctx, *args, **kwargs)`` on branch `name`, a path of its
        own, in a thread of its own, with a Context `ctx` on that path; join
        it with :meth:`all`, :meth:`any`, :meth:`race` or
        :meth:`Future.result`. As in the C API, a branch's value is the
        output of its last step."""
        out = c_void_p()
        rc = self._h.call(lib.evs_run_branch, name.encode(), byref(out))
        self._h.check(rc)
        recorded = self._h.step_name()
        fut = Future(self, Handle(out.value or 0, self._ex), recorded)
        self._ex.adopt(fut)
        threading.Thread(target=fut._main, args=(fn, args, kwargs),
                         name="evstore %s %s/%s" % (self._ex.id, self.path,
                                                    recorded),
                         daemon=True).start()
        return fut

    def step_future(self, name: str, fn: Callable[..., Any], *args: Any,
                    retry: RetryLike = None, **kwargs: Any) -> "Future":
        """Starts step `name` on a branch of its own (named `name` too), to
        run beside others: ``ctx.all([ctx.step_future("search", search, q)
        for q in queries])``."""
        self._prepare(name, fn, args, kwargs, retry)  # checked here, now

        def one(bctx: Context) -> Any:
            return bctx.step(name, fn, *args, retry=retry, **kwargs)
        return self.branch(name, one)

    def all(self, futures: Sequence["Future"]) -> List[Any]:
        """Waits for every branch; their values, in order. Raises
        :class:`evstore.JoinFailed` as soon as one fails."""
        futures = list(futures)
        if not futures:
            return []
        out = self._join(b"all", futures)
        return [out[f.name] for f in futures]

    def any(self, futures: Sequence["Future"]) -> Any:
        """The value of the first branch to complete (the others are
        cancelled). Raises :class:`evstore.JoinFailed` when all fail."""
        return next(iter(self._join(b"any", list(futures)).values()))

    def race(self, futures: Sequence["Future"]) -> Any:
        """The outcome of the first branch to end, either way: its value,
        or :class:`evstore.JoinFailed` (the others are cancelled)."""
        return next(iter(self._join(b"race", list(futures)).values()))

    def _join(self, mode: bytes, futures: List["Future"]) -> Dict[str, Any]:
        if not futures:
            raise errors.InvalidArgument("a join needs at least one branch")
        for f in futures:
            if f._ctx is not self:
                raise errors.InvalidArgument(
                    "branch %s is not a branch of this path" % f.name)
        arr = (c_void_p * len(futures))(*[f._h.ptr for f in futures])
        rc = self._h.call(lib.evs_run_join, mode, arr, len(futures))
        self._h.check(rc)
        out = self._h.result() or {}
        for f in futures:
            if f.name in out:
                f._value = out[f.name]
                f._has_value = True
        return out


class Branch:
    """A branch's handle, closed by the last of its two users: the code that
    runs on the branch (a thread, or an asyncio task) and the execution, at
    the run's end."""

    def __init__(self, handle: Handle, name: str):
        self._h = handle
        self.name = name  # the branch's recorded name ("search#2")
        self._lock = threading.Lock()
        self._refs = 2
        self.ended = threading.Event()

    def end(self, exc: Optional[BaseException]) -> None:
        """Ends the branch as its code ended (`exc` None: it returned), then
        drops the code's reference. A failure of its own (an exception of
        the code, a step failed for good) fails the branch; an error the
        run cannot go on with (a nondeterminism, a store error) stops the
        run, whose root raises it; a stop or a cancellation ends nothing."""
        h = self._h
        ex = h.execution
        rc = 0
        try:
            if exc is None:
                rc = lib.evs_run_branch_end(h.ptr, byref(h.err))
            elif isinstance(exc, (errors.Cancelled, errors.Interrupted,
                                  errors.Suspended)) or cancelled(exc):
                pass
            elif isinstance(exc, errors.Failed):
                rc = self._fail(exc.type, exc.message)
            elif isinstance(exc, errors.Error) or \
                    not isinstance(exc, Exception):
                ex.fatal_error(exc)
            else:
                rc = self._fail(*_codec.error_of(exc))
            if rc not in (0, errors.ECANCELED):
                ex.fatal_error(h.failure(rc))
        finally:
            self.release()
            self.ended.set()

    def _fail(self, typ: str, message: str) -> int:
        return lib.evs_run_branch_fail(self._h.ptr, typ.encode(),
                                       message.encode(), byref(self._h.err))

    def release(self) -> None:
        """Drops a reference; the last closes the branch's handle."""
        with self._lock:
            self._refs -= 1
            last = self._refs == 0
        if last:
            self._h.execution.close_handle(self._h)


class Future(Branch):
    """A branch of a synchronous workflow (``ctx.branch``,
    ``ctx.step_future``): its thread runs its code; :meth:`result` joins it
    alone."""

    def __init__(self, ctx: Context, handle: Handle, name: str):
        Branch.__init__(self, handle, name)
        self._ctx = ctx
        self._value: Any = None
        self._has_value = False

    def result(self) -> Any:
        """The branch's value (a join of it alone, the first time)."""
        if not self._has_value:
            self._ctx.all([self])
        return self._value

    def _main(self, fn: Callable[..., Any], args: Sequence[Any],
              kwargs: Dict[str, Any]) -> None:
        ctx = Context(self._h.execution, self._h,
                      self._ctx.path + "/" + self.name)
        current.set(ctx)
        exc: Optional[BaseException] = None
        try:
            fn(ctx, *args, **kwargs)
        except BaseException as e:
            exc = e
        self.end(exc)

    def __repr__(self) -> str:
        return "<evstore branch %s>" % self.name
