"""Parallel branches (ctx.step_future, ctx.branch) and their joins
(all, any, race), live and replayed; threads running runs at once."""
import threading
import time

import evstore
import pytest
from conftest import assert_replays


class Crash(BaseException):
    pass


def nap(ms, value):
    time.sleep(ms / 1000.0)
    return value


def test_all_runs_branches_at_once_and_replays_them(store, store_dir):
    calls = []
    lock = threading.Lock()
    crash = [True]

    def search(q):
        with lock:
            calls.append(q)
        time.sleep(0.1)
        return q.upper()

    @store.workflow("wf")
    def wf(ctx, queries):
        t = time.monotonic()
        found = ctx.all([ctx.step_future("search", search, q)
                         for q in queries])
        took = time.monotonic() - t
        if crash[0]:
            raise Crash()
        return {"found": found, "took": took}

    with pytest.raises(Crash):
        store.run(wf, id="r", queries=["a", "b", "c"])
    assert sorted(calls) == ["a", "b", "c"]
    crash[0] = False
    out = store.run(wf, id="r", queries=["a", "b", "c"])
    assert out["found"] == ["A", "B", "C"]
    assert sorted(calls) == ["a", "b", "c"]  # replayed, not called again
    paths = {e["path_id"] for e in store.events("r")}
    assert {"main/search", "main/search#2", "main/search#3"} <= paths
    assert_replays(store_dir, "r")


def test_branches_run_in_parallel(store):
    @store.workflow("wf")
    def wf(ctx):
        t = time.monotonic()
        ctx.all([ctx.step_future("nap", nap, 150, i) for i in range(4)])
        return time.monotonic() - t

    assert store.run(wf, id="r") < 0.5


def test_any_takes_the_first_to_complete_and_cancels_the_rest(store,
                                                              store_dir):
    def fail():
        raise RuntimeError("x broke")

    @store.workflow("wf")
    def wf(ctx):
        return ctx.any([ctx.step_future("x", fail),
                        ctx.step_future("y", nap, 30, "y"),
                        ctx.step_future("z", nap, 1500, "z")])

    t = time.monotonic()
    assert store.run(wf, id="r") == "y"
    assert time.monotonic() - t < 1.4
    st = assert_replays(store_dir, "r")
    assert '"main/z"' in st.stdout and '"cancelled"' in st.stdout


def test_race_fails_when_the_first_to_end_failed(store):
    def fail():
        time.sleep(0.01)
        raise ValueError("it broke")

    @store.workflow("wf")
    def wf(ctx):
        try:
            ctx.race([ctx.step_future("slow", nap, 500, 1),
                      ctx.step_future("bad", fail)])
        except evstore.JoinFailed as e:
            return {"type": e.type, "cause": e.cause}

    out = store.run(wf, id="r")
    assert out["type"] == "join_failed"
    assert out["cause"]["type"] == "evstore.errors.StepFailed" or \
        out["cause"]["type"] == "ValueError"
    assert "it broke" in out["cause"]["message"]


def test_a_branch_runs_several_steps_and_sleeps(store, store_dir):
    def worker(bctx, n):
        a = bctx.step("one", lambda: n)
        bctx.sleep(0.01)
        return bctx.step("two", lambda: a * 10)

    @store.workflow("wf")
    def wf(ctx):
        fs = [ctx.branch("w", worker, i) for i in (1, 2)]
        first = fs[0].result()  # a join of it alone
        return [first] + ctx.all(fs)

    assert store.run(wf, id="r") == [10, 10, 20]
    assert_replays(store_dir, "r")


def test_an_exception_in_a_branch_never_hangs_the_join(store):
    def broken(bctx):
        bctx.step("ok", lambda: 1)
        raise ZeroDivisionError("in the branch's own code")

    @store.workflow("wf")
    def wf(ctx):
        ctx.all([ctx.branch("b", broken)])

    with pytest.raises(evstore.RunFailed) as ei:
        store.run(wf, id="r")
    assert "ZeroDivisionError" in str(ei.value) or \
        "in the branch's own code" in str(ei.value)


def test_nondeterminism_in_a_branch_reaches_the_workflow(store, store_dir):
    name = ["a"]
    crash = [True]

    def body(bctx):
        bctx.step(name[0], lambda: 1)
        if crash[0]:
            raise Crash()  # the branch's thread dies: so does the run here

    @store.workflow("wf")
    def wf(ctx):
        return ctx.all([ctx.branch("b", body)])

    with pytest.raises(Crash):
        store.run(wf, id="r")
    name[0], crash[0] = "other", False
    with pytest.raises(evstore.NonDeterminism) as ei:
        store.run(wf, id="r")
    assert ei.value.step == "a"
    name[0] = "a"
    assert store.run(wf, id="r") == [1]
    assert_replays(store_dir, "r")


def test_threads_run_runs_at_once(store, store_dir):
    @store.workflow("wf")
    def wf(ctx, n):
        total = 0
        for i in range(5):
            total += ctx.step("add", lambda: i * n)
        return total

    runs = [store.start(wf, id="t%d" % n, n=n) for n in range(8)]
    assert [r.result(timeout=30) for r in runs] == [10 * n for n in range(8)]
    for n in range(8):
        assert_replays(store_dir, "t%d" % n)


def test_start_returns_the_run_this_process_runs(store):
    gate = threading.Event()

    @store.workflow("wf")
    def wf(ctx):
        return ctx.step("wait", lambda: gate.wait(5))

    r1 = store.start(wf, id="same")
    r2 = store.start(wf, id="same")
    gate.set()
    assert r1.result(timeout=10) is True
    assert r2.result(timeout=10) is True
