"""The worker (python -m evstore worker STORE --app module:store): it runs
the runs made elsewhere (store.enqueue) and due runs, and stops on SIGTERM,
leaving a run it was running to go on later."""
import signal
import time

from conftest import assert_replays, spawn, wait_for


def worker(store_dir):
    p = spawn(["-m", "evstore", "worker", store_dir, "--app",
               "wait_app:store", "--poll", "0.02"], EVS_APP_STORE=store_dir)
    assert p.stdout.readline().startswith("evstore worker: store ")
    return p


def stop(p):
    t = time.monotonic()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    return out, time.monotonic() - t


def test_the_worker_runs_enqueued_runs_and_their_events(store, store_dir):
    store.workflow("wait")(lambda ctx: None)  # to name it; never run here
    run = store.enqueue("wait", id="w1")
    p = worker(store_dir)
    try:
        wait_for(lambda: run.status() == "waiting", what="the worker")
        store.send("w1", "go", {"n": 1})
        assert run.result(timeout=20) == {"n": 1}
        out, took = stop(p)
    finally:
        p.kill()
    assert "running w1" in out and "w1: completed" in out, out
    assert took < 5
    assert_replays(store_dir, "w1")


def test_sigterm_leaves_a_waiting_run_to_the_next_worker(store, store_dir):
    store.workflow("wait")(lambda ctx: None)
    run = store.enqueue("wait", id="w2")
    p = worker(store_dir)
    try:
        wait_for(lambda: run.status() == "waiting", what="the worker")
        stop(p)
    finally:
        p.kill()
    assert [r["id"] for r in store.recoverable()] == ["w2"]
    store.send("w2", "go", 2)
    p = worker(store_dir)
    try:
        assert run.result(timeout=20) == 2
        stop(p)
    finally:
        p.kill()
    steps = [e["step_name"] for e in store.events("w2")
             if e["event_type"] == "step_started"]
    assert steps == ["before", "go"]
