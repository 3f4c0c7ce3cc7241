"""Fixtures of the Python suites: a fresh store per test, the tools, and
child processes running the apps under tests/apps/.

The package is the tree's (bindings/python); the library is the one
EVSTORE_LIBRARY names (meson sets it to the build's), else the tree's
build/libevstore.so. evdump is EVSTORE_EVDUMP, else build/tools/evdump.
"""
import os
import subprocess
import sys
import time

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(TESTS)
TOP = os.path.dirname(os.path.dirname(PKG))
APPS = os.path.join(TESTS, "apps")
sys.path.insert(0, PKG)
sys.path.insert(0, APPS)

import evstore  # noqa: E402

EVDUMP = os.environ.get("EVSTORE_EVDUMP") or os.path.join(
    TOP, "build", "tools", "evdump")


@pytest.fixture
def store_dir(tmp_path):
    return str(tmp_path / "store")


@pytest.fixture
def store(store_dir):
    s = evstore.Store(store_dir, poll_interval=0.01)
    yield s
    s.close()


def child_env(**extra):
    """The environment of a child Python: the tree's package, the apps,
    and the library the suite runs with."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [PKG, APPS] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["EVSTORE_LIBRARY"] = evstore._lib.path
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def spawn(args, **env):
    """A child `python args...`, its output piped."""
    return subprocess.Popen([sys.executable] + list(args),
                            env=child_env(**env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(pred, timeout=10.0, what="the condition"):
    """Polls pred() until true; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.01)
    pytest.fail("timed out waiting for %s" % what)


def evdump(*args):
    return subprocess.run([EVDUMP] + [str(a) for a in args],
                          capture_output=True, text=True)


def assert_replays(store_dir, run_id):
    """The run's history replays strictly (evdump state exits 0)."""
    p = evdump("state", store_dir, run_id, "--json")
    assert p.returncode == 0, p.stderr
    return p


def assert_verified(store_dir):
    """evdump verify finds no problem in the store."""
    p = evdump("verify", store_dir)
    assert p.returncode == 0, p.stdout + p.stderr
    assert " 0 problems" in p.stdout, p.stdout
