"""JSON in and out of the library: what a step takes and gives, what a
workflow takes and returns.

A value given to the library is encoded strictly (no NaN, no Infinity, as
the library's checker refuses them) and a value a live step returns is
handed back as the replay would give it: decoded from the JSON recorded,
so that tuples become lists and keys strings the first time as every time
after, and the code takes the same path either way.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional, Sequence, Tuple

from .errors import NotSerializable

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                            separators=(",", ":"))
_decode = json.JSONDecoder().decode

# Types whose values come back from JSON as they went in (floats too: their
# repr round-trips): returned as they are.
_PLAIN = frozenset((str, int, bool, float, type(None)))


def dumps(value: Any, what: str, step: str = "") -> bytes:
    """`value` as compact JSON (UTF-8 bytes), or NotSerializable naming
    `what` ("the result of step 'plan'")."""
    try:
        return _encoder.encode(value).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as e:
        raise NotSerializable.of(
            "%s is not JSON-serialisable: %s" % (what, e), step) from e


def loads(text: Optional[bytes]) -> Any:
    """The value of JSON text the library returned (None for NULL)."""
    if not text:
        return None
    return _decode(text.decode("utf-8"))


def roundtrip(value: Any, encoded: bytes) -> Any:
    """What the replay of `encoded` (the JSON of `value`) gives."""
    if type(value) in _PLAIN:
        return value
    return loads(encoded)


def step_input(name: str, args: Sequence[Any],
               kwargs: Dict[str, Any]) -> bytes:
    """A step's recorded input: its arguments, as a list, or as
    {"args": [...], "kwargs": {...}} when it has keyword arguments."""
    value: Any = list(args) if not kwargs else {"args": list(args),
                                                "kwargs": kwargs}
    return dumps(value, "an argument of step %r" % name, name)


def error_of(exc: BaseException) -> Tuple[str, str]:
    """The (type, message) recorded for an exception: its class's name,
    qualified by its module unless built in, and its text."""
    cls = type(exc)
    mod = getattr(cls, "__module__", "")
    name = cls.__qualname__
    if mod and mod != "builtins":
        name = "%s.%s" % (mod, name)
    message = str(exc)
    if len(message) > 4000:
        message = message[:4000] + "..."
    return name, message
