"""Inspection from Python (listings, events, replayed states, chains) and
the retry strategies of runs that ended."""
import evstore
import pytest
from conftest import assert_replays


def failing_store(store):
    calls = {"a": 0, "b": 0}
    fail = [True]

    @store.workflow("wf", version="1")
    def wf(ctx, n):
        a = ctx.step("a", lambda: calls.__setitem__("a", calls["a"] + 1) or n)
        b = ctx.step("b", lambda: calls.__setitem__("b", calls["b"] + 1) or (
            _boom() if fail[0] else a + 1), retry=1)
        return {"a": a, "b": b}
    return wf, calls, fail


def _boom():
    raise RuntimeError("b broke")


def test_listing_events_and_state(store):
    wf, calls, fail = failing_store(store)
    with pytest.raises(evstore.RunFailed):
        store.run(wf, id="f", n=1)
    fail[0] = False
    assert store.run(wf, id="ok", n=2) == {"a": 2, "b": 3}
    assert [x["id"] for x in store.list()] == ["f", "ok"]
    assert [x["id"] for x in store.list(status="failed")] == ["f"]
    assert [x["id"] for x in store.list(workflow="wf", limit=1,
                                        offset=1)] == ["ok"]
    created = store.list()[1]["created_at"]
    assert [x["id"] for x in store.list(created_after=created)] == ["ok"]
    assert [x["id"] for x in store.list(created_before=created)] == ["f"]
    evs = list(store.events("ok"))
    assert evs[0]["event_type"] == "execution_started"
    assert evs[0]["data"]["code_version"] == "1"
    assert [e["sequence"] for e in evs] == list(range(1, len(evs) + 1))
    assert [e["sequence"] for e in store.events("ok", 2, 3)] == [2, 3]
    st = store.state("ok")
    assert st["status"] == "completed" and st["outputs"] == {"a": 2, "b": 3}
    assert store.state("ok", at=2)["status"] != "completed"
    assert store.get_run("f").state()["error"]["type"] == \
        "evstore.errors.StepFailed"
    with pytest.raises(evstore.NotFound):
        store.state("nope")


def test_retry_from_failure_runs_only_the_failed_step(store, store_dir):
    wf, calls, fail = failing_store(store)
    with pytest.raises(evstore.RunFailed):
        store.run(wf, id="f", n=1)
    assert calls == {"a": 1, "b": 1}
    fail[0] = False
    run = store.retry("f", strategy="from_failure")
    assert run.result(timeout=10) == {"a": 1, "b": 2}
    assert calls == {"a": 1, "b": 2}  # a was not run again
    assert_replays(store_dir, run.id)
    chain = store.chain("f")
    assert [(x["id"], x["depth"], x["link"]) for x in chain] == \
        [("f", 0, None), (run.id, 1, "from_failure")]
    assert chain[1]["status"] == "completed"
    assert store.state(run.id)["lineage"]["retry_of"] == "f"


def test_the_other_strategies(store):
    wf, calls, fail = failing_store(store)
    with pytest.raises(evstore.RunFailed):
        store.run(wf, id="f", n=1)
    succ = store.retry("f", strategy="skip_failed", output=41, start=False)
    assert isinstance(succ, str)
    assert store.run(wf, id=succ) == {"a": 1, "b": 41}
    assert calls["b"] == 1  # skipped
    fail[0] = False
    run = store.retry("f", strategy="with_new_inputs", inputs={"n": 5},
                      new_id="f-5")
    assert run.id == "f-5" and run.result(timeout=10) == {"a": 5, "b": 6}
    run = store.retry("f", strategy="from_start")
    assert run.result(timeout=10) == {"a": 1, "b": 2}
    with pytest.raises(evstore.Error):
        store.retry("f-5", strategy="no_such_strategy")
