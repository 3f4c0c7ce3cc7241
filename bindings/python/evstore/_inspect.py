"""Inspection (listings, events, replayed states, chains) and retries.

Both go through C functions that take and give strings when the library
has them:

- ``evs_inspect_list``, ``evs_inspect_events``, ``evs_inspect_state`` and
  ``evs_inspect_chain`` (``include/evstore/inspect.h``);
- ``evs_run_retry(store, id, strategy, options_json, out_id, err)``.

STOPGAP, until the library has them: the same views come from
``evdump ... --json`` and retries from ``evrun retry --detach``, run as
subprocesses. Each is found through ``EVSTORE_EVDUMP`` / ``EVSTORE_EVRUN``,
else beside the library in a build tree (``build/tools/``), else on
``PATH``. Only this file knows which way it goes.
"""
from __future__ import annotations

import json
import os
import re
from ctypes import byref, c_void_p, create_string_buffer
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from . import _lib, errors
from ._lib import lib

if TYPE_CHECKING:
    from .store import Store


def _parse_many(text: str) -> List[Any]:
    """A JSON array, or JSON values one per line."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _c_call(store: "Store", name: str, *args: Any) -> str:
    """Calls a C inspection function that gives a JSON buffer."""
    out = c_void_p()
    err = _lib.ErrorInfo()
    rc = getattr(lib, name)(store._ptr, *args, byref(out), byref(err))
    if rc != 0:
        raise errors.make(rc, err)
    return _lib.take_buffer(store._ptr, out)


# -- the stopgap: the tools ---------------------------------------------

def tool(name: str) -> str:
    """The path of tool `name` ("evdump", "evrun"): see the module's doc."""
    env = os.environ.get("EVSTORE_" + name.upper())
    if env:
        return env
    if os.sep in _lib.path:
        here = os.path.join(os.path.dirname(os.path.realpath(_lib.path)),
                            "tools", name)
        if os.access(here, os.X_OK):
            return here
    import shutil
    found = shutil.which(name)
    if found:
        return found
    raise errors.NotFound(
        "%s not found (set EVSTORE_%s to its path, or put it on PATH): "
        "this library has no C function for it yet" % (name, name.upper()))


def _run_tool(store: "Store", name: str, args: List[str]) -> str:
    import subprocess
    argv = [tool(name)] + args
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True)
    if p.returncode != 0:
        msg = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])
        text = msg[-1]
        if re.search(r"no execution|no such|not found", text):
            raise errors.NotFound(text)
        raise errors.Error(text)
    return p.stdout


def _evdump(store: "Store", args: List[str]) -> str:
    return _run_tool(store, "evdump", args)


# -- the views ------------------------------------------------------------

def list_executions(store: "Store", filters: Dict[str, Any]
                    ) -> List[Dict[str, Any]]:
    """The listing's rows matching `filters` (evs_inspect_list's members:
    status, workflow, created_after, created_before, offset, limit; None
    values are left out)."""
    f = {k: v for k, v in filters.items() if v is not None}
    if _lib.has("evs_inspect_list"):
        doc = json.loads(_c_call(store, "evs_inspect_list",
                                 json.dumps(f).encode()))
        return doc["items"]
    args = ["ls", store.path, "--json"]
    for opt in ("status", "workflow"):
        if opt in f:
            args += ["--" + opt, str(f[opt])]
    rows = _parse_many(_evdump(store, args))
    after, before = f.get("created_after"), f.get("created_before")
    if after is not None or before is not None:  # evdump ls has no option
        rows = [r for r in rows if r.get("created_at") and
                (after is None or _us(r["created_at"]) >= _us(after)) and
                (before is None or _us(r["created_at"]) < _us(before))]
    offset = f.get("offset") or 0
    limit = f.get("limit") or 0
    return rows[offset:offset + limit] if limit else rows[offset:]


def _us(t: Any) -> int:
    """A time (µs since the epoch, or RFC 3339) in µs."""
    if isinstance(t, int):
        return t
    import datetime
    d = datetime.datetime.fromisoformat(str(t).replace("Z", "+00:00"))
    return int(round(d.timestamp() * 1_000_000))


def events(store: "Store", id: str, from_seq: Optional[int],
           to_seq: Optional[int]) -> Iterator[Dict[str, Any]]:
    if _lib.has("evs_inspect_events"):
        text = _c_call(store, "evs_inspect_events", id.encode(),
                       from_seq or 0, to_seq or 0)
    else:
        args = ["show", store.path, id, "--json"]
        if from_seq is not None:
            args += ["--from", str(from_seq)]
        if to_seq is not None:
            args += ["--to", str(to_seq)]
        text = _evdump(store, args)
    return iter(_parse_many(text))


def state(store: "Store", id: str, at: Optional[int]) -> Dict[str, Any]:
    if _lib.has("evs_inspect_state"):
        return json.loads(_c_call(store, "evs_inspect_state", id.encode(),
                                  at or 0))
    args = ["state", store.path, id, "--json"]
    if at is not None:
        args += ["--at", str(at)]
    return json.loads(_evdump(store, args))


def chain(store: "Store", id: str) -> List[Dict[str, Any]]:
    if _lib.has("evs_inspect_chain"):
        return json.loads(_c_call(store, "evs_inspect_chain", id.encode()))
    return _chain_from_states(store, id)


def _chain_from_states(store: "Store", id: str) -> List[Dict[str, Any]]:
    """STOPGAP: evs_inspect_chain's array, from every execution's replayed
    state: from the first execution the lineage of `id` reaches, down
    through what continues or retries any of them, depth first."""
    import datetime
    origin: Dict[str, str] = {}
    row: Dict[str, Dict[str, Any]] = {}
    order = []
    for item in list_executions(store, {}):
        try:
            st = state(store, item["id"], None)
        except errors.Error:
            if item["id"] == id:
                raise
            continue
        lineage = st.get("lineage") or {}
        started = st.get("started_at")
        row[item["id"]] = {
            "id": item["id"], "status": st.get("status"),
            "started_at": datetime.datetime.fromtimestamp(
                started / 1e6, datetime.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ") if started else None,
            "last_event_seq": st.get("last_seq"), "depth": 0,
            "origin": lineage.get("continued_from") or
            lineage.get("retry_of"),
            "link": "continued" if lineage.get("continued_from") else
            (lineage.get("strategy") or "retry")
            if lineage.get("retry_of") else None}
        if row[item["id"]]["origin"]:
            origin[item["id"]] = row[item["id"]]["origin"]
        order.append(item["id"])
    if id not in row:
        raise errors.NotFound("no execution %r in store %s"
                              % (id, store.path))
    first, seen = id, {id}
    while origin.get(first) in row and origin[first] not in seen:
        first = origin[first]
        seen.add(first)
    out: List[Dict[str, Any]] = []

    def walk(x: str, depth: int) -> None:
        if depth > 1001:
            return
        out.append(dict(row[x], depth=depth))
        for c in order:
            if origin.get(c) == x and c != first:
                walk(c, depth + 1)
    walk(first, 0)
    return out


# -- retries --------------------------------------------------------------

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
    if _lib.has("evs_run_retry"):
        buf = create_string_buffer(_lib.ID_MAX + 1)
        err = _lib.ErrorInfo()
        rc = lib.evs_run_retry(store._ptr, id.encode(), strategy.encode(),
                               json.dumps(opts).encode(), buf, byref(err))
        if rc != 0:
            raise errors.make(rc, err)
        return buf.value.decode()
    # STOPGAP: evrun retry, which creates the successor and, with
    # --detach, runs nothing.
    args = ["retry", store.path, id, "--strategy", strategy, "--detach",
            "--sync", store.durability]
    if inputs is not None:
        args += ["--inputs", json.dumps(inputs)]
    if from_step is not None:
        args += ["--from-step", from_step]
    if output is not None:
        args += ["--output", json.dumps(output)]
    if from_seq is not None:
        args += ["--from-seq", str(from_seq)]
    if new_id is not None:
        args += ["--id", new_id]
    out = _run_tool(store, "evrun", args)
    m = re.match(r"(\S+) created", out.strip().splitlines()[-1]
                 if out.strip() else "")
    if not m:
        raise errors.Error("evrun retry said %r" % out.strip())
    return m.group(1)
