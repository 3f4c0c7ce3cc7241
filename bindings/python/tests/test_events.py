"""Sleeps, waits for events, requests (pause, unpause, terminate),
suspend mode and recovery, continue-as-new, and the errors of the API."""
import logging
import os
import time

import evstore
import pytest
from conftest import assert_replays, wait_for


class Crash(BaseException):
    pass


def test_a_sleep_is_durable_and_waits_only_for_what_is_left(store,
                                                            store_dir):
    @store.workflow("wf")
    def wf(ctx):
        ctx.sleep(0.5)
        return "woke"

    t = time.monotonic()
    run = store.start(wf, id="s")
    wait_for(lambda: run.status() == "waiting", what="the sleep")
    time.sleep(0.2)
    run.interrupt()  # the code stops here; the sleep stays recorded
    with pytest.raises(evstore.Interrupted):
        run.result(timeout=10)  # within a poll interval, however loaded
    assert store.get_run("s").status() == "waiting"
    assert store.run(wf, id="s") == "woke"  # sleeps what is left
    took = time.monotonic() - t
    assert took >= 0.49, took
    # The one timer, recorded once: the second run waited for it, not
    # for a new sleep of its own.
    timers = [e for e in store.events("s")
              if e["event_type"] == "timer_started"]
    assert len(timers) == 1, timers
    assert_replays(store_dir, "s")


def test_an_event_sent_before_the_wait_is_taken_once(store, store_dir):
    @store.workflow("wf")
    def wf(ctx):
        first = ctx.wait_event("approval")
        second = ctx.wait_event("approval", timeout=0.05)
        return [first, second]

    run = store.enqueue(wf, id="w")
    store.send("w", "approval", {"by": "alice"})
    with pytest.raises(evstore.RunFailed) as ei:
        store.run(wf, id="w")
    # the second wait timed out: raised as Timeout, recorded as such
    assert isinstance(ei.value.__cause__, evstore.Timeout)
    assert run.status() == "failed"
    assert_replays(store_dir, "w")


def test_a_blocking_wait_gets_an_event_sent_while_it_waits(store):
    @store.workflow("wf")
    def wf(ctx):
        return ctx.wait_event("go")

    run = store.start(wf, id="w")
    wait_for(lambda: run.status() == "waiting", what="the wait")
    store.send("w", "go", [1, 2])
    assert run.result(timeout=10) == [1, 2]


def test_a_timeout_can_be_caught(store):
    @store.workflow("wf")
    def wf(ctx):
        try:
            return ctx.wait_event("never", timeout=0.02)
        except evstore.Timeout:
            return "timed out"

    assert store.run(wf, id="t") == "timed out"
    assert store.run(wf, id="t") == "timed out"  # and replays so


def test_suspend_mode_and_recover(store_dir):
    s = evstore.Store(store_dir, mode="suspend", poll_interval=0.01)
    calls = []

    @s.workflow("wf")
    def wf(ctx):
        calls.append("code")
        ctx.step("a", lambda: calls.append("a"))
        ctx.sleep(0.1)
        return ctx.wait_event("go")

    with pytest.raises(evstore.Suspended):
        s.run(wf, id="r")
    assert [r["id"] for r in s.recoverable()] == ["r"]
    assert s.recover() == []  # not due yet
    time.sleep(0.15)
    runs = s.recover()
    assert [r.id for r in runs] == ["r"]
    wait_for(runs[0].done, what="the suspension")
    s.send("r", "go", "ok")
    runs = s.recover()
    assert runs[0].result(timeout=10) == "ok"
    assert calls.count("a") == 1 and calls.count("code") == 3
    s.close()


def test_pause_unpause_and_terminate(store):
    @store.workflow("wf")
    def wf(ctx):
        for i in range(1000):
            ctx.step("tick", lambda: i)
            time.sleep(0.005)
        return "all"

    run = store.start(wf, id="p")
    store.pause("p", "a break", by="ann")
    wait_for(lambda: run.status() == "paused", what="the pause")
    n = len(list(run.events()))
    time.sleep(0.1)
    assert len(list(run.events())) == n  # nothing while paused
    paused = run.state()["paused"]
    assert paused["by"] == "ann" and paused["reason"] == "a break"
    store.unpause("p", by="bo")
    store.terminate("p", "enough")
    with pytest.raises(evstore.Terminated):
        run.result(timeout=10)
    assert run.status() == "terminated"
    state = run.state()
    assert state["resumed"]["by"] == "bo"
    assert state["resumed"]["reason"] is None
    assert state["terminated"]["by"] == ""  # not said
    assert state["terminated"]["reason"] == "enough"
    with pytest.raises(evstore.Finished):
        store.send("p", "x")


def test_continue_as_new_hands_the_run_to_its_successor(store, store_dir):
    @store.workflow("loop")
    def loop(ctx, n):
        ctx.step("work", lambda: n)
        if n < 3:
            ctx.continue_as_new(n=n + 1)
        return {"last": n, "mail": ctx.wait_event("mail")}

    run = store.start(loop, id="c", n=1)
    wait_for(lambda: any(x["id"] == "c.c3" and x["status"] == "waiting"
                         for x in store.list()), what="the last successor")
    store.send("c", "mail", "hi")  # reaches the last of the chain
    assert run.result(timeout=10) == {"last": 3, "mail": "hi"}
    assert run.current_id == "c.c3"
    assert [x["id"] for x in store.list()] == ["c", "c.c2", "c.c3"]
    for rid in ("c", "c.c2", "c.c3"):
        assert_replays(store_dir, rid)
    chain = store.chain("c.c2")
    assert [(x["id"], x["depth"], x["origin"], x["link"]) for x in chain] \
        == [("c", 0, None, None), ("c.c2", 1, "c", "continued"),
            ("c.c3", 2, "c.c2", "continued")]
    # opened again, the first run follows its chain to the outcome
    assert store.run(loop, id="c", n=1) == {"last": 3, "mail": "hi"}


def test_errors_are_named_after_the_librarys_codes(store, store_dir):
    @store.workflow("wf")
    def wf(ctx):
        return ctx.wait_event("go")

    @store.workflow("other")
    def other(ctx):
        return None

    store.enqueue(wf, id="x", a=1)
    with pytest.raises(evstore.Conflict) as ei:
        store.run(wf, id="x", a=2)  # other inputs
    assert ei.value.name == "EVS_ECONFLICT" and ei.value.code == -30003
    with pytest.raises(evstore.Conflict):
        store.run(other, id="x")  # another workflow
    with pytest.raises(evstore.NotFound):
        store.send("nope", "go")
    with pytest.raises(evstore.BadId):
        store.send("../x", "go")
    with pytest.raises(evstore.InvalidArgument):
        store.pause("x", None) or store._request("x", "stop", None)
    with pytest.raises(evstore.NotFound):
        store.run("unregistered")
    with pytest.raises(evstore.InvalidArgument):
        evstore.Store(store_dir, durability="sometimes")

    @store.workflow("badname")
    def badname(ctx):
        ctx.step("no spaces", lambda: 1)

    with pytest.raises(evstore.InvalidArgument, match="step name"):
        store.run(badname, id="b")
    for cls in (evstore.NonDeterminism, evstore.Locked, evstore.Corrupt):
        assert issubclass(cls, evstore.Error)
    assert not issubclass(evstore.Suspended, Exception)


def test_a_location_makes_only_its_own_directories(tmp_path, monkeypatch):
    """A SQLite location makes the database's directories, not one named
    after the location; a PostgreSQL URI makes none (its store is in the
    database)."""
    monkeypatch.chdir(tmp_path)
    s = evstore.Store("sqlite:" + str(tmp_path / "a" / "b" / "store.db"))
    s.close()
    assert (tmp_path / "a" / "b" / "store.db").exists()
    # No server answers here: the open fails, having made nothing.
    with pytest.raises(evstore.Error):
        evstore.Store("postgresql:///nodb?host=" + str(tmp_path / "none"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_run_another_process_holds_is_locked(store, store_dir):
    from conftest import spawn
    p = spawn(["-m", "wait_app", store_dir, "held"])
    try:
        wait_for(lambda: any(r["id"] == "held" and r["status"] == "waiting"
                             for r in store.list()), what="the child")
        @store.workflow("wait")
        def wait(ctx):
            ctx.step("before", lambda: "x")
            return ctx.wait_event("go")

        with pytest.raises(evstore.Locked):
            store.run(wait, id="held")
        assert store.recoverable() == []  # owned: not recoverable
    finally:
        p.kill()
        p.wait()
    assert [r["id"] for r in store.recoverable()] == ["held"]


def test_library_log_records_reach_python_logging(store_dir, caplog):
    """A torn tail that the library cuts back when the run is opened again
    is logged on the "evstore" logger, its typed fields attached."""
    s = evstore.Store(store_dir, mode="suspend", poll_interval=0.01)

    @s.workflow("wf")
    def wf(ctx):
        ctx.step("a", lambda: 1)
        return ctx.wait_event("go")

    with pytest.raises(evstore.Suspended):
        s.run(wf, id="torn")
    with open(os.path.join(store_dir, "torn", "events.jsonl"), "ab") as f:
        f.write(b'{"v":1,"id":"half')
    s.send("torn", "go", "ok")
    with caplog.at_level(logging.WARNING, logger="evstore"):
        assert s.run(wf, id="torn") == "ok"
    cuts = [r for r in caplog.records if "torn tail" in r.getMessage()]
    assert len(cuts) == 1, [r.getMessage() for r in caplog.records]
    rec = cuts[0]
    assert rec.name == "evstore" and rec.levelno == logging.WARNING
    assert rec.getMessage().startswith("execution torn: cut a torn tail")
    assert rec.evstore["execution"] == "torn"
    assert rec.evstore["component"] == "store"
    s.close()

    # logger=None: nothing is logged.
    caplog.clear()
    s = evstore.Store(store_dir, logger=None, mode="suspend")
    wf = s.workflow("wf")(wf.fn)
    with pytest.raises(evstore.Suspended):
        s.run(wf, id="torn2")
    with open(os.path.join(store_dir, "torn2", "events.jsonl"), "ab") as f:
        f.write(b'{"v":1')
    with caplog.at_level(logging.DEBUG, logger="evstore"):
        with pytest.raises(evstore.Suspended):
            s.run(wf, id="torn2")
    assert caplog.records == []
    s.close()
