"""The library's log records, into Python's :mod:`logging`.

A store opened by :class:`evstore.Store` hands the library one hook, a
ctypes callback shared by every store. The library may call it from any
thread (ctypes takes the GIL). It formats the record with the library's
own ``evs_log_format`` as JSON, so no struct is mirrored here, and logs it
on the store's logger: the message reads "execution ID: what happened",
and the record's typed fields (``execution``, ``path``, ``step``,
``sequence``, ``error``, ``code``, ``duration_us``, ``component``) are in
the ``evstore`` attribute of the :class:`logging.LogRecord`.
"""
from __future__ import annotations

import ctypes
import itertools
import json
import logging
import threading
from typing import Dict, Optional

from . import _lib

_LEVELS = {"error": logging.ERROR, "warn": logging.WARNING,
           "info": logging.INFO, "debug": logging.DEBUG}
_JSON = 0  # EVS_LOG_JSON
_CAP = 4096

_loggers: Dict[int, logging.Logger] = {}
_keys = itertools.count(1)
_mutex = threading.Lock()


def _on_record(ctx: Optional[int], rec: Optional[int]) -> None:
    # Nothing may escape into C: a record that cannot be logged is lost.
    try:
        logger = _loggers.get(ctx or 0)
        if logger is None or not rec:
            return
        buf = ctypes.create_string_buffer(_CAP)
        if _lib.lib.evs_log_format(rec, _JSON, buf, _CAP) < 0:
            return
        fields = json.loads(buf.value.decode("utf-8", "replace"))
        level = _LEVELS.get(fields.get("level"), logging.WARNING)
        if not logger.isEnabledFor(level):
            return
        msg = fields.get("msg", "")
        if fields.get("execution"):
            msg = "execution %s: %s" % (fields["execution"], msg)
        logger.log(level, "%s", msg, extra={"evstore": fields})
    except Exception:  # noqa: BLE001 - see above
        pass


HOOK = _lib.LOG_FN(_on_record)


def attach(logger: logging.Logger) -> int:
    """A key for the hook's context that routes records to `logger`."""
    with _mutex:
        key = next(_keys)
        _loggers[key] = logger
    return key


def detach(key: int) -> None:
    """Forgets `key` (after its store has been closed)."""
    with _mutex:
        _loggers.pop(key, None)
