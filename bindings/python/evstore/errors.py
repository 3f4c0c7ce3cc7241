"""Exceptions: one class per code of the library, never a bare integer.

Every class carries what the library said (``evs_error_info``,
``include/evstore/common.h``): ``code`` (the negative integer),
``name`` (``"EVS_ENONDET"``, ``"ENOENT"``...), ``message``,
``execution_id``, ``sequence``, ``step`` and ``kind``.

Most derive from :class:`Error`, an ``Exception``. The few that stop a
workflow's code rather than report a failure, :class:`Suspended`,
:class:`Interrupted`, :class:`Cancelled` and :class:`ContinuedAsNew`, derive
from ``BaseException`` as ``KeyboardInterrupt`` does, so that an
``except Exception`` in a workflow does not swallow them.
"""
from __future__ import annotations

import errno as _errno
import json
from typing import Any, Dict, Optional, Type

from . import _lib


class _Detail:
    """What every evstore exception carries."""

    code: int = 0
    name: str = ""
    message: str = ""
    execution_id: str = ""
    sequence: int = 0
    step: str = ""
    kind: str = ""

    def _fill(self, code: int, message: str, execution_id: str = "",
              sequence: int = 0, step: str = "", kind: str = "") -> None:
        self.code = code
        self.name = code_name(code) if code else ""
        self.message = message
        self.execution_id = execution_id
        self.sequence = sequence
        self.step = step
        self.kind = kind

    def __str__(self) -> str:
        if self.name:
            return "%s (%s)" % (self.message, self.name)
        return self.message


class Error(_Detail, Exception):
    """A failure the library reported (base of every evstore error)."""

    def __init__(self, message: str = "", code: int = 0, **detail: Any):
        Exception.__init__(self, message)
        self._fill(code, message, **detail)


class _Stop(_Detail, BaseException):
    """A code that stops a workflow's code rather than reports a failure."""

    def __init__(self, message: str = "", code: int = 0, **detail: Any):
        BaseException.__init__(self, message)
        self._fill(code, message, **detail)


# The library's own codes (common.h, EVS_ERRNO_MAP).
class Corrupt(Error):
    """EVS_ECORRUPT: a log or snapshot is damaged."""


class Torn(Error):
    """EVS_ETORN: a torn tail, an append cut short."""


class Conflict(Error):
    """EVS_ECONFLICT: another workflow or other inputs under this run id,
    or an execution that is not a run."""


class NonDeterminism(Error):
    """EVS_ENONDET: the code asked for another step than the history's next
    one (``sequence`` and ``step`` name the recorded one); nothing was
    written."""


class VersionOutOfRange(Error):
    """EVS_EVERSION: a recorded version is outside the allowed range."""


class Poisoned(Error):
    """EVS_EPOISONED: a write or sync failed; the run must be reopened."""


class UnknownFormat(Error):
    """EVS_EFORMAT: written in a newer, unknown format version."""


class BadId(Error, ValueError):
    """EVS_EBADID: not a valid execution id."""


class Locked(Error):
    """EVS_ELOCKED: another handle or process runs this run."""


class TooBig(Error, ValueError):
    """EVS_ETOOBIG: a line exceeds the maximum line size."""


class ParseError(Error, ValueError):
    """EVS_EPARSE: malformed JSON, options or event."""


class Stale(Error):
    """EVS_ESTALE: a snapshot is ahead of its log."""


class ReadOnly(Error):
    """EVS_EREADONLY: a handle was opened for reading only."""


class Unsafe(Error):
    """EVS_EUNSAFE: the store is writable by others (see
    ``allow_unsafe_perms``)."""


class BrokenHistory(Error):
    """EVS_EHISTORY: a history breaks a replay rule (``kind`` names it)."""


class Finished(Error):
    """EVS_EFINISHED: the execution has ended."""


class Failed(Error):
    """EVS_EFAILED: a step or a run failed.

    ``type`` and ``message`` are the recorded error's (for a step, those of
    the exception its body raised last), ``error`` the recorded error
    whole, as a dict."""

    type: str = ""
    error: Optional[Dict[str, Any]] = None

    def __init__(self, message: str = "", code: int = 0,
                 error: Optional[Dict[str, Any]] = None, **detail: Any):
        err = error if isinstance(error, dict) else {}
        self.type = str(err.get("type", "error"))
        self.error = err or None
        Error.__init__(self, str(err.get("message", message)) or message,
                       code, **detail)

    def __str__(self) -> str:
        what = "step %s" % self.step if self.step else "run"
        return "%s failed: %s: %s" % (what, self.type, self.message)


class StepFailed(Failed):
    """A step failed for good: its attempts are spent, or its error's type
    is non-retryable. ``type`` is the original exception's type name
    (``"ValueError"``, ``"myapp.RateLimited"``), ``message`` its message,
    ``step`` the step's recorded name."""


class JoinFailed(StepFailed):
    """A join of branches failed (``ctx.all``, ``any``, ``race``):
    ``cause`` is the failed branch's error (a dict)."""

    @property
    def cause(self) -> Optional[Dict[str, Any]]:
        return (self.error or {}).get("cause")

    def __str__(self) -> str:
        cause = self.cause or {}
        if cause:
            return "join %s failed: %s: %s" % (
                self.step, cause.get("type", "error"),
                cause.get("message", ""))
        return StepFailed.__str__(self)


class NotSerializable(StepFailed, TypeError):
    """A step's arguments or result, or a workflow's inputs or result, are
    not JSON-serialisable; the message names the step."""

    @classmethod
    def of(cls, message: str, step: str = "") -> "NotSerializable":
        """The error for `message` about step `step`, as recorded."""
        return cls(message, _CODES["EVS_EFAILED"],
                   {"type": "%s.%s" % (cls.__module__, cls.__qualname__),
                    "message": message}, step=step)

    def __str__(self) -> str:
        return self.message


class RunFailed(Failed):
    """The run ended failed: ``type`` and ``message`` are its recorded
    error (for an exception the workflow raised, its type name and
    message)."""


class Suspended(_Stop):
    """EVS_ESUSPENDED: in suspend mode, the run waits (a sleep, an event, a
    backoff, a pause); its code runs again when it is due
    (:meth:`evstore.Store.recover`, the worker)."""


class Interrupted(_Stop):
    """-EINTR: a blocking call was interrupted (the run is being stopped in
    this process). Nothing is lost: the run goes on where it was when its
    code runs again."""


class Cancelled(_Stop):
    """-ECANCELED: the branch was cancelled (a join was decided without it,
    or the run ended)."""


class Terminated(Finished):
    """The run was terminated (``store.terminate``, ``evrun terminate``):
    raised by every call of its code from then on (which must stop), and
    by :meth:`evstore.Run.result`."""


class ContinuedAsNew(_Stop):
    """Raised by ``ctx.continue_as_new`` to end the run's code: the run has
    ended in its successor, whose id is ``successor``, and whose code the
    runner runs next."""

    def __init__(self, successor: str):
        _Stop.__init__(self, "continued as new in %s" % successor)
        self.successor = successor


# -errno codes the API returns, by name.
class NotFound(Error, LookupError):
    """-ENOENT: no such run, execution or store."""


class InvalidArgument(Error, ValueError):
    """-EINVAL: a bad name, mode, strategy or option."""


class Busy(Error):
    """-EBUSY: a step is open on this path (calls on one path are
    sequential), or an interrupted call must be called again first."""


class Timeout(Failed):
    """-ETIMEDOUT: a wait for an event timed out, recorded as the wait's
    failure (``type`` ``"timeout"``): let through, it fails the run as a
    step failed for good does."""


class AlreadyExists(Error):
    """-EEXIST: the execution exists already."""


class OutOfMemory(Error, MemoryError):
    """-ENOMEM."""


class HistoryLimit(Failed):
    """EVS_ELIMIT: the history reached its hard limit (the store's
    ``max_events``/``max_bytes``, or the run's ``history_limits``); the run
    was failed with the error type ``history_limit``, and the message
    names the limit and the size."""

    def __init__(self, message: str = "", code: int = 0,
                 error: Optional[Dict[str, Any]] = None, **detail: Any):
        Failed.__init__(self, message, code,
                        error or {"type": "history_limit",
                                  "message": message}, **detail)


class NoBackend(Error):
    """EVS_ENOBACKEND: the store's location names a backend this library
    was built without."""


class LeaseLost(Error):
    """EVS_ELEASE: a PostgreSQL writer's lease ran out or another writer
    claimed the execution; the append was refused and the log must be
    opened again. A run keeps its lease by itself while it is open (the C
    library renews it from a thread of its own, however long the code
    waits between steps); it raises this only when its process was
    stopped or cut off from the server for longer than the lease and
    another runner took the run over. Nothing more was written: the code
    stops, and the run goes on under its new owner."""


class TooManyEvents(Error):
    """-E2BIG: more events wait to be taken than a continuation carries."""


_BY_NAME: Dict[str, Type[BaseException]] = {
    "EVS_ECORRUPT": Corrupt, "EVS_ETORN": Torn, "EVS_ECONFLICT": Conflict,
    "EVS_ENONDET": NonDeterminism, "EVS_EVERSION": VersionOutOfRange,
    "EVS_EPOISONED": Poisoned, "EVS_EFORMAT": UnknownFormat,
    "EVS_EBADID": BadId, "EVS_ELOCKED": Locked, "EVS_ETOOBIG": TooBig,
    "EVS_EPARSE": ParseError, "EVS_ESTALE": Stale,
    "EVS_EREADONLY": ReadOnly, "EVS_EUNSAFE": Unsafe,
    "EVS_EHISTORY": BrokenHistory, "EVS_EFINISHED": Finished,
    "EVS_ESUSPENDED": Suspended, "EVS_EFAILED": Failed,
    "EVS_ELIMIT": HistoryLimit, "EVS_ENOBACKEND": NoBackend,
    "EVS_ELEASE": LeaseLost,
    "ENOENT": NotFound, "EINVAL": InvalidArgument, "EBUSY": Busy,
    "ETIMEDOUT": Timeout, "EEXIST": AlreadyExists, "ENOMEM": OutOfMemory,
    "EINTR": Interrupted, "ECANCELED": Cancelled, "E2BIG": TooManyEvents,
}

# The codes as integers, by name (EVS_E* from the library, -E* from errno).
_CODES: Dict[str, int] = {
    "EINTR": -_errno.EINTR, "ECANCELED": -_errno.ECANCELED,
    "ETIMEDOUT": -_errno.ETIMEDOUT, "EBUSY": -_errno.EBUSY,
    "EINVAL": -_errno.EINVAL, "ENOENT": -_errno.ENOENT,
}
for _code in range(-30001, -30030, -1):
    _n = _lib.text(_lib.lib.evs_err_name(_code))
    if _n.startswith("EVS_E") and _n != "EVS_EUNKNOWN":
        _CODES[_n] = _code

EINTR = _CODES["EINTR"]
ECANCELED = _CODES["ECANCELED"]
ETIMEDOUT = _CODES["ETIMEDOUT"]
EBUSY = _CODES["EBUSY"]
EFAILED = _CODES["EVS_EFAILED"]
EFINISHED = _CODES["EVS_EFINISHED"]
ESUSPENDED = _CODES["EVS_ESUSPENDED"]
ELOCKED = _CODES["EVS_ELOCKED"]
ENONDET = _CODES["EVS_ENONDET"]


def code_name(code: int) -> str:
    """The name of a code: the library's (evs_err_name), or, for an errno
    value it does not name (it lacks -ETIMEDOUT, -ECANCELED and -E2BIG,
    which run.h returns), the errno module's."""
    name = _lib.text(_lib.lib.evs_err_name(code))
    if name == "EVS_EUNKNOWN" and 0 < -code < 4096:
        return _errno.errorcode.get(-code, name)
    return name


def error_class(code: int) -> Type[BaseException]:
    """The exception class for a code (:class:`Error` when none is
    named)."""
    return _BY_NAME.get(code_name(code), Error)


def make(code: int, info: Optional[_lib.ErrorInfo] = None,
         cls: Optional[Type[BaseException]] = None,
         error_json: Optional[str] = None) -> BaseException:
    """The exception for `code`, with the detail in `info` (may be None:
    the message is then evs_strerror's). `cls` overrides the class;
    `error_json` is a recorded error ({"type","message",...}) for the
    classes that carry one."""
    message = ""
    detail: Dict[str, Any] = {}
    if info is not None and info.code == code:
        message = _lib.text(info.msg)
        detail = {
            "execution_id": _lib.text(info.execution_id),
            "sequence": int(info.sequence),
            "step": _lib.text(info.step),
            "kind": _lib.text(info.kind),
        }
    if not message:
        message = _lib.text(_lib.lib.evs_strerror(code))
    klass = cls or error_class(code)
    if issubclass(klass, Failed):
        recorded = None
        if error_json:
            try:
                recorded = json.loads(error_json)
            except ValueError:
                recorded = None
        return klass(message, code, recorded, **detail)
    return klass(message, code, **detail)
