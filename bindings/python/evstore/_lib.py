"""The C library, loaded with ctypes, and the signatures of what is called.

Only the functions of ``include/evstore/run.h`` (strings in, JSON out) and a
few of ``common.h`` and ``store.h`` are bound. The one struct mirrored whole
is ``evs_error_info``, small and stable; of ``evs_store_opts`` only the
leading fields are, up to the log hook, over a buffer that
``evs_store_opts_init`` fills (``common.h``, "Options structs": fields are
only ever added at the end).

Where the library is found, first match wins:

1. ``EVSTORE_LIBRARY``, a path to ``libevstore.so``;
2. ``build/libevstore.so`` of the source tree, when the package is run from
   ``bindings/python`` of a checkout;
3. ``libevstore.so`` inside the package, where an install from a built tree
   puts a copy (``bindings/python/evstore_build.py``);
4. ``ctypes.util.find_library("evstore")`` (an installed library).
"""
from __future__ import annotations

import ctypes
import os
from ctypes import (POINTER, Structure, c_char, c_char_p, c_int, c_int64,
                    c_size_t, c_uint32, c_uint64, c_void_p)
from pathlib import Path
from typing import Optional

ID_MAX = 128

# What evs_run_step_begin asks of its caller (run.h).
STEP_RUN = 0
STEP_REPLAYED = 1
STEP_RETRY = 2


class ErrorInfo(Structure):
    """``evs_error_info`` of ``include/evstore/common.h``."""

    _fields_ = [
        ("code", c_int),
        ("execution_id", c_char * (ID_MAX + 1)),
        ("sequence", c_uint64),
        ("offset", c_uint64),
        ("kind", c_char_p),
        ("step", c_char * 128),
        ("msg", c_char * 256),
    ]


class StoreOptsHead(Structure):
    """The scalar fields that begin ``evs_store_opts`` (``store.h``)."""

    _fields_ = [
        ("size", c_size_t),
        ("durability", c_int),
        ("sync_bytes", c_uint64),
        ("sync_interval_ms", c_uint32),
        ("max_line", c_size_t),
        ("recovery", c_int),
        ("create", c_int),
        ("allow_unsafe_perms", c_int),
        ("alloc", c_void_p),
        ("log_fn", c_void_p),
        ("log_ctx", c_void_p),
    ]


# evs_log_fn (common.h): the record is passed on as an opaque pointer, to
# evs_log_format.
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)


# Room for evs_store_opts as it is and as it may grow: evs_store_opts_init
# writes its own size into the buffer, which is what the library reads.
STORE_OPTS_BUFFER = 1024


def _tree_library() -> Optional[Path]:
    """``build/libevstore.so`` of the checkout this package sits in."""
    top = Path(__file__).resolve().parent.parent.parent.parent
    if not (top / "include" / "evstore" / "run.h").is_file():
        return None
    lib = top / "build" / "libevstore.so"
    return lib if lib.exists() else None


def find_library() -> str:
    """The path or name of ``libevstore`` to load (see the module's doc).

    Raises ImportError, saying where it looked, when there is none.
    """
    env = os.environ.get("EVSTORE_LIBRARY")
    if env:
        if not os.path.exists(env):
            raise ImportError(
                "evstore: EVSTORE_LIBRARY names %s, which does not exist"
                % env)
        return env
    tree = _tree_library()
    if tree is not None:
        return str(tree)
    bundled = Path(__file__).resolve().parent / "libevstore.so"
    if bundled.exists():
        return str(bundled)
    import ctypes.util  # slow to import: only when needed
    name = ctypes.util.find_library("evstore")
    if name:
        return name
    raise ImportError(
        "evstore: libevstore.so not found: set EVSTORE_LIBRARY to its path, "
        "build the source tree (meson setup build && ninja -C build), or "
        "install the library (meson install) where the linker finds it")


def _load() -> ctypes.CDLL:
    path = find_library()
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise ImportError("evstore: cannot load %s: %s" % (path, e)) from e


lib = _load()
path = getattr(lib, "_name", "")

_ERR = POINTER(ErrorInfo)
_RUNP = POINTER(c_void_p)

# (name, restype, argtypes); every function is bound before use, so that a
# library too old for the package fails at import, with the name missing.
_SIGNATURES = [
    ("evs_version", c_char_p, []),
    ("evs_strerror", c_char_p, [c_int]),
    ("evs_err_name", c_char_p, [c_int]),
    ("evs_error_info_clear", None, [_ERR]),
    ("evs_free", None, [c_void_p, c_void_p]),
    ("evs_log_format", c_int, [c_void_p, c_int, c_void_p, c_size_t]),
    ("evs_store_opts_init", None, [c_void_p]),
    ("evs_store_open", c_int, [c_char_p, c_void_p, POINTER(c_void_p)]),
    ("evs_store_allocator", c_void_p, [c_void_p]),
    ("evs_store_close", None, [c_void_p]),
    ("evs_run_open", c_int, [c_void_p, c_char_p, c_char_p, c_char_p,
                             c_char_p, c_char_p, _RUNP, _ERR]),
    ("evs_run_close", None, [c_void_p]),
    ("evs_run_step_begin", c_int, [c_void_p, c_char_p, c_char_p, c_char_p,
                                   _ERR]),
    ("evs_run_step_end", c_int, [c_void_p, c_char_p, _ERR]),
    ("evs_run_step_fail", c_int, [c_void_p, c_char_p, c_char_p, c_int,
                                  _ERR]),
    ("evs_run_step_attempt", c_uint32, [c_void_p]),
    ("evs_run_step_key", c_char_p, [c_void_p]),
    ("evs_run_step_name", c_char_p, [c_void_p]),
    ("evs_run_step_replayed", c_int, [c_void_p]),
    ("evs_run_sleep", c_int, [c_void_p, c_int64, _ERR]),
    ("evs_run_sleep_until", c_int, [c_void_p, c_int64, _ERR]),
    ("evs_run_wait_event", c_int, [c_void_p, c_char_p, c_int64, _ERR]),
    ("evs_run_patched", c_int, [c_void_p, c_char_p, _ERR]),
    ("evs_run_branch", c_int, [c_void_p, c_char_p, _RUNP, _ERR]),
    ("evs_run_branch_end", c_int, [c_void_p, _ERR]),
    ("evs_run_branch_fail", c_int, [c_void_p, c_char_p, c_char_p, _ERR]),
    ("evs_run_join", c_int, [c_void_p, c_char_p, POINTER(c_void_p),
                             c_size_t, _ERR]),
    ("evs_run_complete", c_int, [c_void_p, c_char_p, _ERR]),
    ("evs_run_fail", c_int, [c_void_p, c_char_p, c_char_p, _ERR]),
    ("evs_run_continue_as_new", c_int, [c_void_p, c_char_p, c_char_p,
                                        _ERR]),
    ("evs_run_continued_as", c_char_p, [c_void_p]),
    ("evs_run_send", c_int, [c_void_p, c_char_p, c_char_p, c_char_p, _ERR]),
    ("evs_run_request", c_int, [c_void_p, c_char_p, c_char_p, c_char_p,
                                _ERR]),
    ("evs_run_request_by", c_int, [c_void_p, c_char_p, c_char_p, c_char_p,
                                   c_char_p, _ERR]),
    ("evs_run_recoverable", c_int, [c_void_p, c_char_p, POINTER(c_void_p),
                                    _ERR]),
    ("evs_run_interrupt", None, [c_void_p]),
    ("evs_run_id", c_char_p, [c_void_p]),
    ("evs_run_workflow", c_char_p, [c_void_p]),
    ("evs_run_version", c_char_p, [c_void_p]),
    ("evs_run_inputs", c_char_p, [c_void_p]),
    ("evs_run_status", c_char_p, [c_void_p]),
    ("evs_run_output", c_char_p, [c_void_p]),
    ("evs_run_result", c_char_p, [c_void_p]),
    ("evs_run_error", c_char_p, [c_void_p]),
    ("evs_run_replaying", c_int, [c_void_p]),
    # A retry of an ended run with its options as JSON
    # (include/evstore/orchestrator.h), and the JSON views of a store
    # (include/evstore/inspect.h).
    ("evs_exec_retry_json", c_int, [c_void_p, c_char_p, c_char_p, c_char_p,
                                    c_char_p, _ERR]),
    ("evs_inspect_list", c_int, [c_void_p, c_char_p, POINTER(c_void_p),
                                 _ERR]),
    ("evs_inspect_events", c_int, [c_void_p, c_char_p, c_uint64, c_uint64,
                                   POINTER(c_void_p), _ERR]),
    ("evs_inspect_state", c_int, [c_void_p, c_char_p, c_uint64,
                                  POINTER(c_void_p), _ERR]),
    ("evs_inspect_chain", c_int, [c_void_p, c_char_p, POINTER(c_void_p),
                                  _ERR]),
]


def _bind(table, required: bool) -> None:
    for name, restype, argtypes in table:
        try:
            fn = getattr(lib, name)
        except AttributeError:
            if required:
                raise ImportError(
                    "evstore: %s lacks %s: the library is older than this "
                    "package" % (path, name)) from None
            continue
        fn.restype = restype
        fn.argtypes = argtypes


_bind(_SIGNATURES, True)


def has(name: str) -> bool:
    """Whether the loaded library exports function `name`."""
    return hasattr(lib, name)


def text(b: Optional[bytes]) -> str:
    """A borrowed C string as str ("" for NULL)."""
    return b.decode("utf-8", "replace") if b else ""


def enc(s: Optional[str]) -> Optional[bytes]:
    """A str as a C string (None stays NULL)."""
    return None if s is None else s.encode("utf-8")


def take_buffer(store: int, p: c_void_p) -> str:
    """The text of a ``char **out`` buffer the store allocated; frees it."""
    if not p.value:
        return ""
    try:
        return ctypes.string_at(p.value).decode("utf-8")
    finally:
        lib.evs_free(lib.evs_store_allocator(store), p)
