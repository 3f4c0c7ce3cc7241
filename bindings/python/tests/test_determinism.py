"""Nondeterminism is detected and leaves the log as it was; patched
guards a change; versions are recorded and never refuse a run."""
import evstore
import pytest
from conftest import assert_replays


class Crash(BaseException):
    pass


def test_another_step_order_is_nondeterminism_and_writes_nothing(
        store, store_dir):
    order = ["a", "b"]

    @store.workflow("wf")
    def wf(ctx):
        for name in order:
            ctx.step(name, lambda: name)
        raise Crash()

    with pytest.raises(Crash):
        store.run(wf, id="r")
    before = list(store.events("r"))
    order[:] = ["a", "c"]
    with pytest.raises(evstore.NonDeterminism) as ei:
        store.run(wf, id="r")
    e = ei.value
    assert e.name == "EVS_ENONDET" and e.code == -30004
    assert e.step == "b"  # the recorded step
    assert e.sequence > 0 and e.execution_id == "r"
    assert "c" in e.message
    assert list(store.events("r")) == before  # nothing written
    # the original code goes on
    order[:] = ["a", "b"]
    with pytest.raises(Crash):
        store.run(wf, id="r")
    assert_replays(store_dir, "r")


def test_completing_while_the_history_holds_more_is_nondeterminism(store):
    steps = 2

    @store.workflow("wf")
    def wf(ctx):
        for i in range(steps):
            ctx.step("s", lambda: i)
        if steps == 2:
            raise Crash()
        return "done"

    with pytest.raises(Crash):
        store.run(wf, id="r")
    steps = 1
    with pytest.raises(evstore.NonDeterminism):
        store.run(wf, id="r")
    steps = 2  # the run was left as it was


def test_patched_is_false_for_runs_past_it_and_true_for_new_ones(store):
    code = {"patch": False}
    seen = []

    @store.workflow("wf")
    def wf(ctx):
        ctx.step("a", lambda: 1)
        if code["patch"]:
            seen.append(ctx.patched("fast-path"))
        ctx.step("b", lambda: 2)
        if ctx.run_id == "old" and not code["patch"]:
            raise Crash()
        return ctx.version

    with pytest.raises(Crash):
        store.run(wf, id="old")
    code["patch"] = True
    store.run(wf, id="old")  # went past the change without it
    store.run(wf, id="new")
    assert seen == [False, True]


def test_a_version_is_recorded_and_never_refuses(store_dir):
    s1 = evstore.Store(store_dir)

    @s1.workflow("wf", version="1")
    def v1(ctx):
        ctx.step("a", lambda: 1)
        raise Crash()

    with pytest.raises(Crash):
        s1.run(v1, id="r")
    s1.close()
    s2 = evstore.Store(store_dir)

    @s2.workflow("wf", version="2")
    def v2(ctx):
        ctx.step("a", lambda: 1)
        return ctx.version

    assert s2.run(v2, id="r") == "1"  # begun under 1, replayed by 2
    assert s2.run(v2, id="fresh") == "2"
    s2.close()
