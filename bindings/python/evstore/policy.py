"""Retry policies, and what the decorators make: steps and workflows."""
from __future__ import annotations

import contextvars
import functools
import inspect
import json
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, Optional,
                    Tuple, Type, Union)

from . import _codec

if TYPE_CHECKING:
    from .store import Run, Store

# The context of the workflow whose code runs in this thread or task, for
# the steps that @store.step makes (None outside a workflow).
current: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "evstore_context", default=None)


class Retry:
    """A step's retry policy (``formats/WORKFLOWS.md`` §6), in seconds.

    ``max_attempts``: attempts in all, the first included (0: unlimited;
    without a policy a step runs once). ``initial_interval`` (default 1 s),
    ``backoff_coefficient`` (default 2.0), ``max_interval`` (default 100 x
    initial) and ``jitter`` (0 to 1) shape the durable backoff between
    attempts. ``non_retryable``: exception types (a subclass matches too)
    or type names (as recorded: ``"ValueError"``, ``"myapp.Refused"``)
    that fail the step at once.
    """

    __slots__ = ("max_attempts", "initial_interval", "backoff_coefficient",
                 "max_interval", "jitter", "non_retryable", "_json",
                 "_types", "_names")

    def __init__(self, max_attempts: Optional[int] = None,
                 initial_interval: Optional[float] = None,
                 backoff_coefficient: Optional[float] = None,
                 max_interval: Optional[float] = None,
                 jitter: Optional[float] = None,
                 non_retryable: Iterable[Union[Type[BaseException], str]] = ()
                 ) -> None:
        self.max_attempts = max_attempts
        self.initial_interval = initial_interval
        self.backoff_coefficient = backoff_coefficient
        self.max_interval = max_interval
        self.jitter = jitter
        self.non_retryable = tuple(non_retryable)
        self._types = tuple(t for t in self.non_retryable
                            if isinstance(t, type))
        self._names = frozenset(t for t in self.non_retryable
                                if isinstance(t, str))
        policy: Dict[str, Any] = {}
        if max_attempts is not None:
            policy["max_attempts"] = int(max_attempts)
        if initial_interval is not None:
            policy["initial_interval_ms"] = _ms(initial_interval)
        if backoff_coefficient is not None:
            policy["backoff_coefficient"] = float(backoff_coefficient)
        if max_interval is not None:
            policy["max_interval_ms"] = _ms(max_interval)
        if jitter is not None:
            policy["jitter"] = float(jitter)
        self._json = json.dumps(policy, separators=(",", ":"))

    @classmethod
    def of(cls, value: "RetryLike") -> Optional["Retry"]:
        """A Retry from a Retry, a dict of its arguments, an int
        (max_attempts) or None."""
        if value is None or isinstance(value, Retry):
            return value
        if isinstance(value, dict):
            return cls(**value)
        if isinstance(value, int):
            return cls(max_attempts=value)
        raise TypeError("a retry policy is a Retry, a dict or an int, not %s"
                        % type(value).__name__)

    def policy_json(self) -> str:
        """The policy as the library takes it (a ``retry`` object)."""
        return self._json

    def retryable(self, exc: BaseException) -> bool:
        """Whether a failure of type `exc` may be retried by this policy."""
        if self._types and isinstance(exc, self._types):
            return False
        if self._names:
            name = _codec.error_of(exc)[0]
            if name in self._names or type(exc).__name__ in self._names:
                return False
        return True

    def __repr__(self) -> str:
        return "Retry(%s)" % self._json


RetryLike = Union[Retry, Dict[str, Any], int, None]


def _ms(seconds: float) -> int:
    return int(round(float(seconds) * 1000))


def step_options(retry: Optional[Retry]) -> Optional[bytes]:
    """A step's options for evs_run_step_begin (None: the run's)."""
    if retry is None:
        return None
    return ('{"retry":%s}' % retry.policy_json()).encode()


class StepFunction:
    """A function made a step by ``@store.step``: called inside a workflow
    it runs as a durable step named after it (its result journaled, its
    failures retried by its policy); called anywhere else it is the plain
    function. In an ``async`` workflow the call gives an awaitable."""

    def __init__(self, fn: Callable[..., Any], name: Optional[str],
                 retry: Optional[Retry]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.retry = retry
        self.is_async = inspect.iscoroutinefunction(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ctx = current.get()
        if ctx is None:
            return self.fn(*args, **kwargs)
        return ctx.step(self.name, self, *args, **kwargs)

    def __repr__(self) -> str:
        return "<evstore step %s>" % self.name


def unwrap(fn: Callable[..., Any],
           retry: RetryLike) -> Tuple[Callable[..., Any], Optional[Retry]]:
    """The body and policy of a step given `fn` (maybe a StepFunction,
    whose policy applies unless `retry` overrides it)."""
    policy = Retry.of(retry)
    if isinstance(fn, StepFunction):
        return fn.fn, policy if policy is not None else fn.retry
    if not callable(fn):
        raise TypeError("a step's body must be callable, not %s"
                        % type(fn).__name__)
    return fn, policy


class Workflow:
    """A workflow registered with ``@store.workflow``. Calling it calls the
    function; :meth:`start` and :meth:`run` run it durably."""

    def __init__(self, store: "Store", fn: Callable[..., Any], name: str,
                 version: str) -> None:
        functools.update_wrapper(self, fn)
        self.store = store
        self.fn = fn
        self.name = name
        self.version = version
        self.is_async = inspect.iscoroutinefunction(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def start(self, id: Optional[str] = None, **inputs: Any) -> "Run":
        """Starts (or resumes) a run of this workflow: see Store.start."""
        return self.store.start(self, id=id, **inputs)

    def run(self, id: Optional[str] = None, **inputs: Any) -> Any:
        """Runs it in this thread until it ends: see Store.run."""
        return self.store.run(self, id=id, **inputs)

    def __repr__(self) -> str:
        return "<evstore workflow %s version %r>" % (self.name, self.version)



def make_step(fn: Optional[Callable[..., Any]], name: Optional[str],
              retry: RetryLike, policy: Dict[str, Any]) -> Any:
    """What ``@step`` and ``@step(...)`` make (Store.step says more)."""
    if retry is not None and policy:
        raise TypeError("give a retry policy either as retry= or as the "
                        "arguments of Retry, not both")
    r = Retry.of(retry) if retry is not None else \
        (Retry(**policy) if policy else None)

    def make(f: Callable[..., Any]) -> StepFunction:
        return StepFunction(f, name, r)
    return make(fn) if fn is not None else make
