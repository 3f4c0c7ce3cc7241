"""The store, the workflows registered with it, and runs."""
from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time
import weakref
from ctypes import byref, c_void_p, cast, create_string_buffer
from os import PathLike, fspath
from typing import (Any, Callable, Dict, Iterator, List, Optional, TypeVar,
                    Union, overload)

from . import _codec, _inspect, _lib, _log, errors
from ._execution import Execution
from ._lib import lib
from .policy import Retry, RetryLike, StepFunction, Workflow, make_step

F = TypeVar("F", bound=Callable[..., Any])

_DURABILITY = {"full": 0, "batch": 1, "none": 2}
_MODES = ("block", "suspend")


def _local_parent(location: str) -> Optional[str]:
    """The local directory a store at `location` is made in (its
    directory's parent, or a SQLite database's directory), or None for a
    PostgreSQL database, which has none."""
    if location.startswith(("postgresql://", "postgres://")):
        return None
    if location.startswith("sqlite:"):
        return os.path.dirname(os.path.abspath(location[len("sqlite:"):]))
    return os.path.dirname(os.path.abspath(location))


class Store:
    """A store directory, opened (created if missing unless
    ``create=False``), with the workflows registered with it.

    The location may also be ``sqlite:PATH`` or a PostgreSQL URI, as for
    ``evs_store_open`` (``include/evstore/store.h``). On PostgreSQL a run
    holds its execution by a lease, which the C library renews from a
    thread of its own while the run is open, however long its code waits
    between two steps; a run whose lease was lost all the same (its
    process stopped for longer than the lease, and another runner took
    it over) raises :class:`evstore.LeaseLost` at its next call and
    writes nothing more.

    Options:

    - ``durability``: ``"full"`` (default: every step's outcome is synced
      before its call returns), ``"batch"`` or ``"none"`` (a process crash
      loses nothing, a power loss may; ``include/evstore/store.h``);
    - ``mode``: ``"block"`` (default: sleeps and waits wait in the calling
      thread) or ``"suspend"`` (they end the code with
      :class:`evstore.Suspended`, and :meth:`recover` or the worker runs it
      again when it is due);
    - ``poll_interval``: how often (seconds) a waiting call looks at the
      run's inbox, and how soon Ctrl-C ends it; default 0.05;
    - ``retry``: the retry policy of steps that give none (a
      :class:`evstore.Retry`, a dict or an int of attempts); without it a
      step runs once;
    - ``history_limits``: the runs' own history limits, a dict of
      ``warn_events``, ``warn_bytes``, ``max_events``, ``max_bytes``
      (``formats/RUNS.md``): they lower the store's hard limit; a run that
      reaches it fails, and the call raises :class:`evstore.HistoryLimit`;
    - ``create``, ``allow_unsafe_perms``: as ``evs_store_opts``;
    - ``logger``: where the library's log records go (a torn tail cut
      back, a request file moved aside): default the ``"evstore"`` logger;
      ``None`` drops them. Each record's typed fields (execution, step,
      sequence, error, ...) are in its ``evstore`` attribute, a dict.
    """

    def __init__(self, path: Union[str, "PathLike[str]"], *,
                 durability: str = "full", mode: str = "block",
                 poll_interval: float = 0.05, retry: RetryLike = None,
                 history_limits: Optional[Dict[str, int]] = None,
                 create: bool = True, allow_unsafe_perms: bool = False,
                 logger: Optional[logging.Logger] = logging.getLogger(
                     "evstore")):
        if durability not in _DURABILITY:
            raise errors.InvalidArgument(
                "durability is one of %s, not %r"
                % (", ".join(_DURABILITY), durability))
        if mode not in _MODES:
            raise errors.InvalidArgument("mode is block or suspend, not %r"
                                         % mode)
        self.path = fspath(path)
        self.mode = mode
        self.durability = durability
        self.poll_ms = max(1, int(round(poll_interval * 1000)))
        self.default_retry: Optional[Retry] = Retry.of(retry)
        self.history_limits = dict(history_limits or {})
        buf = create_string_buffer(_lib.STORE_OPTS_BUFFER)
        lib.evs_store_opts_init(buf)
        head = _lib.StoreOptsHead.from_buffer(buf)
        head.durability = _DURABILITY[durability]
        head.create = 1 if create else 0
        head.allow_unsafe_perms = 1 if allow_unsafe_perms else 0
        self._log_key = _log.attach(logger) if logger is not None else 0
        if self._log_key:
            head.log_fn = cast(_log.HOOK, c_void_p).value
            head.log_ctx = self._log_key
        parent = _local_parent(self.path)
        if create and parent and not os.path.isdir(parent):
            os.makedirs(parent, exist_ok=True)
        ptr = c_void_p()
        rc = lib.evs_store_open(self.path.encode(), buf, byref(ptr))
        if rc != 0:
            _log.detach(self._log_key)
            raise errors.error_class(rc)("store %s: %s" % (
                self.path, _lib.text(lib.evs_strerror(rc))), rc)
        self._p: int = ptr.value or 0
        self._workflows: Dict[str, Workflow] = {}
        self._active: Dict[str, Execution] = {}
        self._lock = threading.Lock()
        self._options: Dict[str, bytes] = {}
        self._held = 1  # the store's own, and one per run handle open
        self._closing = False
        ref = weakref.ref(self)
        atexit.register(lambda: (ref() or _Closed).close(timeout=2.0))

    # -- registering ---------------------------------------------------

    def workflow(self, name: Optional[str] = None, version: str = ""
                 ) -> Callable[[Callable[..., Any]], Workflow]:
        """Registers a workflow: ``@store.workflow("research",
        version="1")`` over ``def research(ctx, topic): ...`` (or ``async
        def``). Its inputs are its keyword arguments after `ctx`; its
        return value (JSON) is the run's output. The version is recorded
        with each run begun under it; a run begun under another still
        replays with this code (``ctx.version`` tells which it was)."""
        if callable(name):  # @store.workflow without arguments
            return self.workflow()(name)  # type: ignore[return-value]

        def register(fn: Callable[..., Any]) -> Workflow:
            wf = Workflow(self, fn, name or fn.__name__, version)
            self._workflows[wf.name] = wf
            return wf
        return register

    @overload
    def step(self, fn: F) -> StepFunction: ...

    @overload
    def step(self, fn: None = None, *, name: Optional[str] = None,
             retry: RetryLike = None, **policy: Any
             ) -> Callable[[F], StepFunction]: ...

    def step(self, fn: Any = None, *, name: Optional[str] = None,
             retry: RetryLike = None, **policy: Any) -> Any:
        """Makes a function a step (:class:`evstore.StepFunction`), named
        after it unless `name` says: ``@store.step`` or
        ``@store.step(max_attempts=3, initial_interval=0.5,
        non_retryable=[ValueError])`` (the arguments of
        :class:`evstore.Retry`)."""
        return make_step(fn, name, retry, policy)

    # -- running -------------------------------------------------------

    def start(self, workflow: Union[str, Workflow], id: Optional[str] = None,
              inputs: Optional[Dict[str, Any]] = None, **kwargs: Any
              ) -> "Run":
        """Starts run `id` (None: a new UUIDv7) of `workflow` with inputs
        `inputs` and keyword arguments, in a thread of its own, and returns
        its :class:`Run`. A run that exists resumes (its history replayed)
        when no other process runs it (else :class:`evstore.Locked`); one
        this process runs already is returned; one that has ended only
        gives its outcome. Without inputs, an existing run keeps its
        own."""
        ex = self._execution(workflow, id, inputs, kwargs)
        if id:
            with self._lock:
                live = self._active.get(id)
            if live is not None:
                return Run(self, live)
        return self._launch(ex, ex.open())

    def enqueue(self, workflow: Union[str, Workflow], id: Optional[str] = None,
                inputs: Optional[Dict[str, Any]] = None, **kwargs: Any
                ) -> "Run":
        """Creates run `id` of `workflow` (as :meth:`start`) without running
        its code here: a worker (``python -m evstore worker``), or
        :meth:`recover` in any process, runs it. Its :class:`Run` watches
        the store."""
        ex = self._execution(workflow, id, inputs, kwargs)
        if ex.open():
            ex.release()
        return Run(self, None, ex.id)

    def run(self, workflow: Union[str, Workflow], id: Optional[str] = None,
            inputs: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Any:
        """As :meth:`start`, but runs the code in this thread and returns
        the run's output (or raises :class:`evstore.RunFailed`, ...).
        Ctrl-C ends a wait at once (``KeyboardInterrupt``); the run goes on
        where it was when run again."""
        ex = self._execution(workflow, id, inputs, kwargs)
        aio = sys.modules.get("asyncio")
        if ex.workflow is not None and ex.workflow.is_async and aio:
            try:
                aio.get_running_loop()
            except RuntimeError:
                pass
            else:
                raise RuntimeError(
                    "workflow %r is async and an event loop runs in this "
                    "thread: await store.run_async(...)" % ex.workflow.name)
        ex.drive(ex.open())
        return ex.result()

    async def run_async(self, workflow: Union[str, Workflow],
                        id: Optional[str] = None,
                        inputs: Optional[Dict[str, Any]] = None,
                        **kwargs: Any) -> Any:
        """As :meth:`run`, on the running event loop: an ``async``
        workflow's code runs on it, and the library's calls in threads, so
        that the loop never waits on a sync."""
        from .aio import drive_async
        ex = self._execution(workflow, id, inputs, kwargs)
        return await drive_async(ex)

    def get_run(self, id: str) -> "Run":
        """A :class:`Run` for run `id`, whoever runs it."""
        with self._lock:
            live = self._active.get(id)
        return Run(self, live, id)

    def recoverable(self, workflow: Optional[str] = None
                    ) -> List[Dict[str, Any]]:
        """The runs (of `workflow`, or of any) that have not ended and that
        no process runs, oldest first, as the library lists them: dicts of
        ``id``, ``workflow``, ``version``, ``status``, ``due`` and
        ``wake_at``."""
        out = c_void_p()
        err = _lib.ErrorInfo()
        rc = lib.evs_run_recoverable(self._ptr, _lib.enc(workflow),
                                     byref(out), byref(err))
        if rc != 0:
            raise errors.make(rc, err)
        return json.loads(_lib.take_buffer(self._ptr, out) or "[]")

    def recover(self, mode: Optional[str] = None) -> List["Run"]:
        """Runs again, each in a thread of its own, the runs that a crash
        (or a suspension) left unfinished and whose workflow is registered
        here: in block mode all of them (those that wait, wait in their
        thread), in suspend mode those that are due now. Returns their
        :class:`Run` handles."""
        mode = mode or self.mode
        runs = []
        for item in self.recoverable():
            if mode == "suspend" and not item.get("due"):
                continue
            if item.get("workflow") not in self._workflows:
                continue
            with self._lock:
                if item["id"] in self._active:
                    continue
            ex = Execution(self, item["id"], None, None, mode)
            try:
                opened = ex.open()
            except errors.Locked:
                continue  # taken meanwhile, by another process
            runs.append(self._launch(ex, opened))
        return runs

    def _execution(self, workflow: Union[str, Workflow], id: Optional[str],
                   inputs: Optional[Dict[str, Any]],
                   kwargs: Dict[str, Any]) -> Execution:
        wf = self._resolve(workflow)
        given = dict(inputs or {}, **kwargs)
        enc = _codec.dumps(given, "the inputs of workflow %r" % wf.name) \
            if inputs is not None or kwargs else None
        return Execution(self, id, wf, enc)

    def _resolve(self, workflow: Union[str, Workflow]) -> Workflow:
        if isinstance(workflow, Workflow):
            return workflow
        wf = self._workflows.get(workflow)
        if wf is None:
            raise errors.NotFound("no workflow %r is registered with store %s"
                                  % (workflow, self.path))
        return wf

    def _launch(self, ex: Execution, opened: bool) -> "Run":
        if opened or (ex.outcome is not None and
                      ex.outcome[0] == "continued"):
            if opened:
                self._adopt(ex)
            threading.Thread(target=ex.drive, args=(opened,), daemon=True,
                             name="evstore run %s" % ex.id).start()
        else:
            ex.ended.set()
        return Run(self, ex)

    def _adopt(self, ex: Execution) -> None:
        with self._lock:
            self._active[ex.id] = ex

    def _forget(self, ex: Execution) -> None:
        with self._lock:
            for k in [k for k, v in self._active.items() if v is ex]:
                del self._active[k]

    def run_options(self, mode: Optional[str]) -> bytes:
        """The options evs_run_open takes for runs in `mode`."""
        mode = mode or self.mode
        opts = self._options.get(mode)
        if opts is None:
            d: Dict[str, Any] = {"mode": mode, "poll_ms": self.poll_ms}
            if self.default_retry is not None:
                d["retry"] = json.loads(self.default_retry.policy_json())
            if self.history_limits:
                d["history_limits"] = self.history_limits
            opts = self._options[mode] = json.dumps(d).encode()
        return opts

    # -- requests ------------------------------------------------------

    def send(self, id: str, event: str, payload: Any = None) -> None:
        """Sends event `event` with `payload` (JSON) to run `id`, durably:
        a ``ctx.wait_event(event)`` takes it, now or when the run reaches
        one. A run that continued as new gets it in its last successor."""
        data = _codec.dumps(payload, "the payload of event %r" % event)
        err = _lib.ErrorInfo()
        rc = lib.evs_run_send(self._ptr, id.encode(), event.encode(), data,
                              byref(err))
        if rc != 0:
            raise errors.make(rc, err)

    def _request(self, id: str, kind: str, reason: Optional[str],
                 by: Optional[str] = None) -> None:
        err = _lib.ErrorInfo()
        rc = lib.evs_run_request_by(self._ptr, id.encode(), kind.encode(),
                                    _lib.enc(by), _lib.enc(reason),
                                    byref(err))
        if rc != 0:
            raise errors.make(rc, err)

    def pause(self, id: str, reason: Optional[str] = None, *,
              by: Optional[str] = None) -> None:
        """Asks run `id` to pause: its next call waits for the unpause (or
        suspends). `by` says who asks (free text, at most 256 bytes; None:
        not recorded) and `reason` why; the state keeps both
        (``state(id)["paused"]``)."""
        self._request(id, "pause", reason, by)

    def unpause(self, id: str, reason: Optional[str] = None, *,
                by: Optional[str] = None) -> None:
        """Asks a paused run to go on, recording `by` and `reason` as
        :meth:`pause` does (``state(id)["resumed"]``)."""
        self._request(id, "unpause", reason, by)

    def terminate(self, id: str, reason: Optional[str] = None, *,
                  by: Optional[str] = None) -> None:
        """Asks run `id` to end, terminated: its next call raises
        :class:`evstore.Terminated`. `by` and `reason` are recorded as
        :meth:`pause` records them (``state(id)["terminated"]``)."""
        self._request(id, "terminate", reason, by)

    def retry(self, id: str, strategy: str = "from_failure", *,
              inputs: Optional[Dict[str, Any]] = None,
              from_step: Optional[str] = None, output: Any = None,
              from_seq: Optional[int] = None, new_id: Optional[str] = None,
              start: bool = True) -> Union["Run", str]:
        """Creates the successor of run `id`, which has ended (failed,
        completed or terminated), by `strategy` (``formats/WORKFLOWS.md``
        §4.1): ``"from_failure"`` (steps that completed do not run again;
        the failed one does), ``"from_start"``, ``"with_new_inputs"``
        (`inputs`, and `from_step`), ``"skip_failed"`` (the failed step
        gives `output`) or ``"from_seq"`` (`from_seq`). With `start`, runs
        it (:meth:`start`) and returns its :class:`Run`; else returns its
        id."""
        succ = _inspect.retry(self, id, strategy, inputs=inputs,
                              from_step=from_step, output=output,
                              from_seq=from_seq, new_id=new_id)
        if not start:
            return succ
        ex = Execution(self, succ, None, None)
        return self._launch(ex, ex.open())

    # -- inspecting ----------------------------------------------------

    def list(self, status: Optional[str] = None,
             workflow: Optional[str] = None,
             created_after: Optional[Union[int, str]] = None,
             created_before: Optional[Union[int, str]] = None,
             offset: Optional[int] = None, limit: Optional[int] = None
             ) -> List[Dict[str, Any]]:
        """The executions of the store (runs and definitions' executions),
        by creation time, as their snapshots show them (``evdump ls``):
        dicts of ``id``, ``status``, ``workflow_name``, ``created_at``,
        ``updated_at``, ``start_time``, ``end_time`` (RFC 3339 strings or
        None), ``last_event_seq`` and ``snapshot_ok``. Times to filter by
        are µs since the epoch or RFC 3339 strings."""
        return _inspect.list_executions(self, {
            "status": status, "workflow": workflow,
            "created_after": created_after,
            "created_before": created_before, "offset": offset,
            "limit": limit})

    def events(self, id: str, from_seq: Optional[int] = None,
               to_seq: Optional[int] = None) -> Iterator[Dict[str, Any]]:
        """The events of execution `id`, checked, as dicts (the log's
        envelope: ``sequence``, ``timestamp``, ``event_type``, ``path_id``,
        ``step_name``, ``data``...)."""
        return _inspect.events(self, id, from_seq, to_seq)

    def state(self, id: str, at: Optional[int] = None) -> Dict[str, Any]:
        """The replayed state of execution `id` as of sequence `at` (None:
        its end), checked strictly (``evdump state``; FORMAT.md §6.2):
        status, inputs, outputs, error, lineage, continued_as, paths,
        steps..."""
        return _inspect.state(self, id, at)

    def chain(self, id: str) -> List[Dict[str, Any]]:
        """The lineage of `id` as ``evdump chain`` shows it: from the first
        execution it continues or retries, down through everything that
        continues or retries any of them, depth first: dicts of ``id``,
        ``status``, ``started_at``, ``last_event_seq``, ``depth``,
        ``origin`` (what it continues or retries) and ``link``
        (``"continued"``, or the retry's strategy)."""
        return _inspect.chain(self, id)

    # -- closing -------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Stops the runs this process runs (their calls interrupted; each
        goes on where it was when run again), waits up to `timeout`
        seconds for their threads, and closes the store; or, while a
        thread still runs a step's code, leaves that to the last run handle
        to close."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            live = list(self._active.values())
        for ex in live:
            ex.stop(wait=0)
        deadline = time.monotonic() + timeout
        for ex in live:
            ex.stop(wait=max(0.0, deadline - time.monotonic()))
            ex.ended.wait(max(0.0, deadline - time.monotonic()))
        self._unhold()  # the store's own hold

    @property
    def _ptr(self) -> int:
        """The evs_store, or InvalidArgument once closed."""
        p = self._p
        if not p:
            raise errors.InvalidArgument("store %s is closed" % self.path)
        return p

    def _hold(self) -> None:
        with self._lock:
            if not self._p:
                raise errors.InvalidArgument("store %s is closed" % self.path)
            self._held += 1

    def _unhold(self) -> None:
        with self._lock:
            self._held -= 1
            ptr = self._p if self._held == 0 else 0
            if ptr:
                self._p = 0
        if ptr:
            lib.evs_store_close(ptr)
            _log.detach(self._log_key)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<evstore.Store %s>" % self.path


class _Closed:
    @staticmethod
    def close(timeout: float = 0) -> None:
        pass


class Run:
    """A run: its id, and its outcome once it has ended. Returned by
    :meth:`Store.start`, :meth:`Store.recover` and :meth:`Store.get_run`."""

    def __init__(self, store: Store, execution: Optional[Execution],
                 id: Optional[str] = None):
        self.store = store
        self._ex = execution
        self.id: str = execution.first_id if execution is not None \
            else (id or "")

    @property
    def current_id(self) -> str:
        """The run's last successor this process knows of (continue-as-new),
        or its id."""
        return self._ex.id if self._ex is not None else self.id

    def done(self) -> bool:
        """True once the code this process runs for it has ended."""
        return self._ex is None or self._ex.ended.is_set()

    def result(self, timeout: Optional[float] = None) -> Any:
        """Waits (up to `timeout` seconds: else ``TimeoutError``) for the
        run to end, and returns its output, following its successors;
        raises :class:`evstore.RunFailed` or :class:`evstore.Terminated`
        when it ended so; :class:`evstore.Interrupted` when its code was
        stopped here. A run another process (or a worker) runs, or that
        suspended here, is watched in the store until it ends. Ctrl-C
        interrupts the run here (it goes on where it was when run again)
        and raises KeyboardInterrupt."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ex = self._ex
        if ex is not None:
            try:
                if not ex.ended.wait(timeout):
                    raise TimeoutError("run %s has not ended after %gs"
                                       % (self.id, timeout or 0))
            except KeyboardInterrupt:
                ex.stop()
                raise
            assert ex.outcome is not None
            kind, value = ex.outcome
            if not (kind == "error" and isinstance(value, errors.Suspended)):
                return ex.result()
        return self._watch(deadline)

    def _watch(self, deadline: Optional[float]) -> Any:
        # The replayed state, not the listing: a snapshot may lag behind
        # the log (a crash between a run's last append and its snapshot).
        rid = self.current_id
        while True:
            st = self.store.state(rid)
            status = st.get("status")
            if status == "continued" and st.get("continued_as"):
                rid = st["continued_as"]
                continue
            if status == "completed":
                return st.get("outputs")
            if status == "failed":
                raise errors.RunFailed("", errors.EFAILED,
                                       st.get("error") or {},
                                       execution_id=rid)
            if status == "terminated":
                raise errors.Terminated("run %s was terminated" % rid,
                                        errors.EFINISHED, execution_id=rid)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("run %s has not ended" % rid)
            time.sleep(0.05)

    def status(self) -> str:
        """The run's replayed status: ``"running"``, ``"waiting"``,
        ``"paused"``, ``"completed"``, ``"failed"``, ``"terminated"`` or
        ``"continued"``."""
        return str(self.store.state(self.current_id).get("status"))

    def events(self) -> Iterator[Dict[str, Any]]:
        """The run's events (:meth:`Store.events`)."""
        return self.store.events(self.current_id)

    def state(self) -> Dict[str, Any]:
        """The run's replayed state (:meth:`Store.state`)."""
        return self.store.state(self.current_id)

    def send(self, event: str, payload: Any = None) -> None:
        """Sends it an event (:meth:`Store.send`)."""
        self.store.send(self.id, event, payload)

    def interrupt(self, wait: float = 5.0) -> None:
        """Stops the code this process runs for it (it goes on where it was
        when run again)."""
        if self._ex is not None:
            self._ex.stop(wait)

    def __repr__(self) -> str:
        return "<evstore.Run %s>" % self.id
