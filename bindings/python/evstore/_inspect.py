"""Inspection (listings, events, replayed states, chains) and retries.

All go through the library's functions that take and give strings, so
that no C structure is mirrored here:

- ``evs_inspect_list``, ``evs_inspect_events``, ``evs_inspect_state`` and
  ``evs_inspect_chain`` (``include/evstore/inspect.h``);
- ``evs_exec_retry_json`` (``include/evstore/orchestrator.h``).
"""
from __future__ import annotations

import json
from ctypes import byref, c_void_p, create_string_buffer
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from . import _lib, errors
from ._lib import lib

if TYPE_CHECKING:
    from .store import Store


def _c_call(store: "Store", name: str, *args: Any) -> str:
    """Calls a C inspection function that gives a JSON buffer."""
    out = c_void_p()
    err = _lib.ErrorInfo()
    rc = getattr(lib, name)(store._ptr, *args, byref(out), byref(err))
    if rc != 0:
        raise errors.make(rc, err)
    return _lib.take_buffer(store._ptr, out)


def list_executions(store: "Store", filters: Dict[str, Any]
                    ) -> List[Dict[str, Any]]:
    """The listing's rows matching `filters` (evs_inspect_list's members:
    status, workflow, created_after, created_before, offset, limit; None
    values are left out)."""
    f = {k: v for k, v in filters.items() if v is not None}
    doc = json.loads(_c_call(store, "evs_inspect_list",
                             json.dumps(f).encode()))
    return doc["items"]


def events(store: "Store", id: str, from_seq: Optional[int],
           to_seq: Optional[int]) -> Iterator[Dict[str, Any]]:
    """The events of `id` from `from_seq` to `to_seq` (None: its ends)."""
    text = _c_call(store, "evs_inspect_events", id.encode(), from_seq or 0,
                   to_seq or 0)
    return iter(json.loads(text))


def state(store: "Store", id: str, at: Optional[int]) -> Dict[str, Any]:
    """The replayed state of `id` as of sequence `at` (None: its end)."""
    return json.loads(_c_call(store, "evs_inspect_state", id.encode(),
                              at or 0))


def chain(store: "Store", id: str) -> List[Dict[str, Any]]:
    """The lineage chain `id` belongs to, as `evdump chain` shows it."""
    return json.loads(_c_call(store, "evs_inspect_chain", id.encode()))


def retry(store: "Store", id: str, strategy: str, *,
          inputs: Optional[Dict[str, Any]], from_step: Optional[str],
          output: Any, from_seq: Optional[int],
          new_id: Optional[str]) -> str:
    """Creates the successor of run `id` by `strategy`; returns its id."""
    opts: Dict[str, Any] = {}
    if inputs is not None:
        opts["inputs"] = inputs
    if from_step is not None:
        opts["from_step"] = from_step
    if output is not None:
        opts["output"] = output
    if from_seq is not None:
        opts["from_seq"] = from_seq
    if new_id is not None:
        opts["new_id"] = new_id
    buf = create_string_buffer(_lib.ID_MAX + 1)
    err = _lib.ErrorInfo()
    rc = lib.evs_exec_retry_json(store._ptr, id.encode(), strategy.encode(),
                                 json.dumps(opts).encode(), buf, byref(err))
    if rc != 0:
        raise errors.make(rc, err)
    return buf.value.decode()
