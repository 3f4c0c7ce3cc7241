"""``async def`` workflows and steps, under asyncio.

The code runs on the event loop; the library's calls run in threads, one
per path (a thread of its own makes a path's calls in the order the code
asks for them), so that the loop never waits on a sync, a sleep or a wait.

Concurrent steps are branches. A durable call awaited in the task that
runs the workflow goes to the run's main path; one awaited in another task
(``asyncio.gather`` wraps each coroutine in one; so do ``create_task`` and
``wait_for``) goes to a branch of the path of the task that created it,
opened at the task's first durable call and named after it, and ended when
the task ends. Tasks must reach their first durable call in an order that
depends only on the code (``gather`` starts them in order): that order
names the branches.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from concurrent.futures import ThreadPoolExecutor
from ctypes import byref, c_void_p
from typing import Any, Callable, List, NoReturn, Optional

from ._execution import Execution
from ._handle import Handle
from ._lib import lib
from .context import Branch, StepInfo, _Base, _step_info
from .policy import RetryLike, current


class _Path:
    """A path's handle, the thread its calls run in, and the task that owns
    it."""

    def __init__(self, handle: Handle, path: str,
                 task: Optional["asyncio.Task[Any]"]):
        self.h = handle
        self.path = path
        self.task = task
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="evstore " +
                                       path)
        self.branch: Optional[Branch] = None

    def run(self, fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        """fn(*args) in the path's thread, awaitable."""
        return asyncio.get_running_loop().run_in_executor(
            self.pool, fn, *args)


_task_path: contextvars.ContextVar[Optional[_Path]] = \
    contextvars.ContextVar("evstore_path", default=None)


class AsyncContext(_Base):
    """An ``async`` workflow's view of its run: as
    :class:`evstore.Context`, with coroutines (``await ctx.step(...)``)."""

    def __init__(self, execution: Execution, root: _Path):
        _Base.__init__(self, execution, root.h, "main")
        self._root = root
        self._paths: List[_Path] = [root]
        self._ends: List["asyncio.Future[Any]"] = []

    async def _path(self, name: str) -> _Path:
        """The path of the current task (see the module's doc)."""
        task = asyncio.current_task()
        parent = _task_path.get() or self._root
        if parent.task is task:
            return parent
        out = c_void_p()
        h = parent.h
        await parent.run(lambda: h.check(
            h.call(lib.evs_run_branch, name.encode(), byref(out))))
        recorded = await parent.run(h.step_name)
        path = _Path(Handle(out.value or 0, self._ex), parent.path + "/" +
                     recorded, task)
        path.branch = Branch(path.h, recorded)
        self._ex.adopt(path.branch)
        self._paths.append(path)
        _task_path.set(path)
        if task is not None:
            task.add_done_callback(functools.partial(self._task_done, path))
        return path

    def _task_done(self, path: _Path, task: "asyncio.Task[Any]") -> None:
        exc: Optional[BaseException]
        if task.cancelled():
            exc = asyncio.CancelledError()
        else:
            exc = task.exception()
        assert path.branch is not None
        self._ends.append(path.run(path.branch.end, exc))

    async def step(self, name: str, fn: Callable[..., Any], *args: Any,
                   retry: RetryLike = None, **kwargs: Any) -> Any:
        """As :meth:`evstore.Context.step`; `fn` may be ``async``. A
        synchronous body runs in a thread of the loop's default executor.
        """
        body, policy, bname, inp, opts = self._prepare(name, fn, args,
                                                       kwargs, retry)
        p = await self._path(name)
        h = p.h
        loop = asyncio.get_running_loop()
        while True:
            replayed, value = await p.run(h.begin, bname, inp, opts)
            if replayed:
                return value
            token = _step_info.set(StepInfo(h, self._ex.id))
            try:
                if inspect.iscoroutinefunction(body):
                    out = await body(*args, **kwargs)
                else:
                    out = await loop.run_in_executor(
                        None, contextvars.copy_context().run,
                        functools.partial(body, *args, **kwargs))
                    if inspect.isawaitable(out):
                        out = await out
            except Exception as e:
                await p.run(h.fail, e, self._retryable(policy, e))
                continue
            finally:
                _step_info.reset(token)
            return await p.run(h.end, name, out)

    async def sleep(self, seconds: float) -> None:
        """As :meth:`evstore.Context.sleep`."""
        p = await self._path("sleep")
        await p.run(self._sleep, p.h, seconds)

    async def sleep_until(self, when: Any) -> None:
        """As :meth:`evstore.Context.sleep_until`."""
        p = await self._path("sleep")
        await p.run(self._sleep_until, p.h, when)

    async def wait_event(self, name: str,
                         timeout: Optional[float] = None) -> Any:
        """As :meth:`evstore.Context.wait_event`."""
        p = await self._path(name)
        return await p.run(self._wait_event, p.h, name, timeout)

    async def patched(self, change_id: str) -> bool:
        """As :meth:`evstore.Context.patched`."""
        p = await self._path(change_id)
        return await p.run(self._patched, p.h, change_id)

    async def continue_as_new(self, **inputs: Any) -> NoReturn:
        """As :meth:`evstore.Context.continue_as_new` (on the main path
        only)."""
        await self._root.run(self._continue_as_new, self._root.h, inputs)
        raise AssertionError("unreachable")

    async def _finish(self) -> None:
        """Waits for the branches' ends to be recorded."""
        while self._ends:
            ends, self._ends = self._ends, []
            await asyncio.gather(*ends, return_exceptions=True)

    def _shutdown(self) -> None:
        for p in self._paths:
            p.pool.shutdown(wait=False)


async def run_code_async(ex: Execution) -> None:
    """Runs an async workflow's code on the running loop, and records how it
    ended (Execution.settle)."""
    assert ex.root is not None and ex.workflow is not None
    root = _Path(ex.root, "main", asyncio.current_task())
    ctx = AsyncContext(ex, root)
    token = current.set(ctx)
    path_token = _task_path.set(root)
    value: Any = None
    exc: Optional[BaseException] = None
    try:
        value = await ex.workflow.fn(ctx, **ex.inputs_value)
    except BaseException as e:
        exc = e
    finally:
        current.reset(token)
        _task_path.reset(path_token)
    try:
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
            ex.stop()  # Ctrl-C: the loop cancelled the code
        await asyncio.shield(ctx._finish())
        await asyncio.shield(root.run(ex.settle, value, exc))
    finally:
        ctx._shutdown()
    if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
        raise exc


async def drive_async(ex: Execution) -> Any:
    """Execution.drive on the running loop: a synchronous workflow's code
    runs in a thread; an async one's on the loop."""
    loop = asyncio.get_running_loop()
    opened = await loop.run_in_executor(None, ex.open)
    if ex.workflow is None or not ex.workflow.is_async:
        await loop.run_in_executor(None, ex.drive, opened)
        return ex.result()
    try:
        while True:
            if opened:
                ex.store._adopt(ex)
                await run_code_async(ex)
            if not ex._next():
                break
            opened = await loop.run_in_executor(None, ex.open)
    finally:
        ex.ended.set()
        ex.store._forget(ex)
    return ex.result()

