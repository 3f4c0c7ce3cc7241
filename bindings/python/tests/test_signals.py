"""Ctrl-C: a child blocked in ctx.wait_event gets SIGINT and ends at once
with KeyboardInterrupt; its run has lost nothing, is free to be taken, and
goes on when run again."""
import signal
import time

import pytest
from conftest import spawn, wait_for


@pytest.mark.parametrize("how", ["run", "async", "start"])
def test_ctrl_c_ends_a_wait_and_the_run_goes_on_after(store, store_dir, how):
    p = spawn(["-m", "wait_app", store_dir, "r", how])
    try:
        assert p.stdout.readline().strip() == "waiting", p.stderr.read()
        wait_for(lambda: store.get_run("r").status() == "waiting",
                 what="the wait")
        t = time.monotonic()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=10)
        took = time.monotonic() - t
    finally:
        p.kill()
    assert took < 2.0, took
    assert p.returncode in (-signal.SIGINT, 1, 130), err
    assert "KeyboardInterrupt" in err, err
    # not locked, not lost: recoverable, and still waiting
    assert [r["id"] for r in store.recoverable()] == ["r"]
    assert store.get_run("r").status() == "waiting"
    p = spawn(["-m", "wait_app", store_dir, "r", how])
    try:
        assert p.stdout.readline().strip() == "waiting"
        store.send("r", "go", {"ok": True})
        out, err = p.communicate(timeout=20)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert out.strip() == "result {'ok': True}", out
    steps = [e["step_name"] for e in store.events("r")
             if e["event_type"] == "step_started"]
    assert steps == ["before", "go"]  # the step ran once, one wait
