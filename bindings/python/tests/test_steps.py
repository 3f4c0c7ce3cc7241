"""Steps: journaled, replayed without running again, named by occurrence,
checked for JSON, retried by their policy, failed for good as StepFailed;
and the workflow's own end (completed, failed)."""
import json

import evstore
import pytest
from conftest import assert_replays


class Interrupt(BaseException):
    """Stands in for a crash: it ends the code without recording anything
    (as KeyboardInterrupt does)."""


def test_a_rerun_replays_completed_steps_without_calling_them(store,
                                                              store_dir):
    calls = []
    crash = {"after": "b"}

    @store.step
    def a(x):
        calls.append("a")
        return {"x": x, "t": (1, 2)}

    @store.step
    def b(v):
        calls.append("b")
        return v["x"] + 1

    @store.workflow("wf", version="1")
    def wf(ctx, x):
        va = a(x)
        vb = b(va)
        if crash["after"] == "b":
            raise Interrupt()
        vc = ctx.step("c", lambda n: n * 10, vb)
        return [va, vb, vc]

    with pytest.raises(Interrupt):
        store.run(wf, id="r1", x=4)
    assert calls == ["a", "b"]
    crash["after"] = None
    out = store.run(wf, id="r1", x=4)
    # a tuple comes back as a list, live as on replay
    assert out == [{"x": 4, "t": [1, 2]}, 5, 50]
    assert calls == ["a", "b"]  # replayed, not called again
    # Once completed, a run only gives its output.
    assert store.run(wf, id="r1", x=4) == out
    assert calls == ["a", "b"]
    assert_replays(store_dir, "r1")


def test_live_results_are_what_the_replay_gives(store):
    @store.workflow("wf")
    def wf(ctx):
        v = ctx.step("s", lambda: {1: (2, 3)})
        assert v == {"1": [2, 3]}
        return v
    assert store.run(wf, id="r") == {"1": [2, 3]}


def test_a_name_asked_for_again_is_numbered_and_keys_are_stable(store):
    keys = []

    @store.workflow("wf")
    def wf(ctx):
        for i in range(3):
            ctx.step("llm", lambda: keys.append(
                (evstore.step_info().name, evstore.step_info().key,
                 evstore.step_info().attempt)))
        return None

    store.run(wf, id="loop")
    assert keys == [("llm", "loop/main/llm", 1),
                    ("llm#2", "loop/main/llm#2", 1),
                    ("llm#3", "loop/main/llm#3", 1)]
    assert evstore.step_info() is None


def test_arguments_and_results_must_be_json(store):
    @store.workflow("args")
    def args(ctx):
        with pytest.raises(TypeError, match="step 'bad_arg'"):
            ctx.step("bad_arg", lambda s: s, {1, 2})
        return ctx.step("bad_arg", lambda s: s, {1, 2})

    # let through, it fails the run, as any exception of the code does
    with pytest.raises(evstore.RunFailed) as ei:
        store.run(args, id="a")
    assert isinstance(ei.value.__cause__, TypeError)

    @store.workflow("result")
    def result(ctx):
        try:
            ctx.step("bad_out", lambda: object())
        except evstore.NotSerializable as e:
            assert isinstance(e, TypeError)
            assert isinstance(e, evstore.StepFailed)
            assert "step 'bad_out'" in str(e)
            return "caught"
        return "no"

    assert store.run(result, id="b") == "caught"
    # replayed, the recorded failure is the same exception
    assert store.run(result, id="b") == "caught"


def test_retries_then_step_failed_with_the_original_type(store, store_dir):
    attempts = []

    @store.step(max_attempts=3, initial_interval=0.01)
    def flaky():
        attempts.append(evstore.step_info().attempt)
        raise ConnectionError("no answer")

    @store.workflow("wf")
    def wf(ctx):
        try:
            flaky()
        except evstore.StepFailed as e:
            return {"type": e.type, "message": e.message, "step": e.step}

    out = store.run(wf, id="r")
    assert attempts == [1, 2, 3]
    assert out == {"type": "ConnectionError", "message": "no answer",
                   "step": "flaky"}
    types = [e["event_type"] for e in store.events("r")]
    assert types.count("retry_scheduled") == 2
    assert types.count("step_failed") == 3
    assert_replays(store_dir, "r")


def test_a_retry_succeeds(store):
    attempts = []

    def sometimes(n):
        attempts.append(n)
        if len(attempts) < 2:
            raise RuntimeError("not yet")
        return n * 2

    @store.workflow("wf")
    def wf(ctx):
        return ctx.step("s", sometimes, 21,
                        retry=evstore.Retry(max_attempts=5,
                                            initial_interval=0.01))

    assert store.run(wf, id="r") == 42
    assert attempts == [21, 21]


class Refused(Exception):
    pass


class NotAllowed(Refused):
    pass


@pytest.mark.parametrize("non_retryable", [[Refused], ["NotAllowed"],
                                           ["test_steps.NotAllowed"]])
def test_non_retryable_types_fail_at_once(store, non_retryable):
    attempts = []

    @store.step(max_attempts=5, initial_interval=0.01,
                non_retryable=non_retryable)
    def pay():
        attempts.append(1)
        raise NotAllowed("card refused")

    @store.workflow("wf")
    def wf(ctx):
        pay()

    with pytest.raises(evstore.RunFailed) as ei:
        store.run(wf, id="r")
    assert len(attempts) == 1
    # the workflow let StepFailed through: the run failed with it
    assert ei.value.type == "evstore.errors.StepFailed"
    assert "test_steps.NotAllowed: card refused" in ei.value.message
    assert isinstance(ei.value.__cause__, evstore.StepFailed)


def test_the_stores_retry_policy_applies_to_steps_without_one(store_dir):
    s = evstore.Store(store_dir, retry={"max_attempts": 2,
                                        "initial_interval": 0.01})
    attempts = []

    def once_fails():
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first")
        return "ok"

    @s.workflow("wf")
    def wf(ctx):
        return ctx.step("s", once_fails)

    assert s.run(wf, id="r") == "ok"
    assert len(attempts) == 2
    s.close()


def test_an_exception_of_the_workflow_fails_the_run(store, store_dir):
    @store.workflow("wf")
    def wf(ctx):
        ctx.step("a", lambda: 1)
        raise KeyError("missing")

    with pytest.raises(evstore.RunFailed) as ei:
        store.run(wf, id="r")
    assert ei.value.type == "KeyError"
    assert isinstance(ei.value.__cause__, KeyError)
    # opened again, the run has ended: the same outcome
    with pytest.raises(evstore.RunFailed, match="missing"):
        store.run(wf, id="r")
    assert store.get_run("r").status() == "failed"
    assert_replays(store_dir, "r")


def test_a_result_that_is_not_json_fails_the_run(store):
    @store.workflow("wf")
    def wf(ctx):
        return {1, 2}

    with pytest.raises(evstore.RunFailed, match="not JSON"):
        store.run(wf, id="r")


def test_steps_outside_a_workflow_are_plain_functions(store):
    @store.step(max_attempts=2)
    def double(x):
        return x * 2

    @evstore.step
    def triple(x):
        return x * 3

    assert double(2) == 4 and triple(2) == 6
    assert double.name == "double" and double.__doc__ is None


def test_async_bodies_run_in_a_sync_workflow(store):
    async def fetch(x):
        return x + 1

    @store.workflow("wf")
    def wf(ctx):
        return ctx.step("fetch", fetch, 1)

    assert store.run(wf, id="r") == 2


def test_a_run_at_its_history_limit_raises_history_limit(store_dir):
    s = evstore.Store(store_dir, poll_interval=0.01,
                      history_limits={"max_events": 20})
    try:
        @s.workflow("wf")
        def wf(ctx):
            for i in range(100):
                ctx.step("s", lambda n: n, i)
            return "done"

        with pytest.raises(evstore.HistoryLimit) as ei:
            s.run(wf, id="capped")
        e = ei.value
        assert isinstance(e, evstore.Failed)
        assert e.type == "history_limit"
        assert "limit of 20 events" in e.message
        assert e.execution_id == "capped"
    finally:
        s.close()
    state = json.loads(assert_replays(store_dir, "capped").stdout)
    assert state["status"] == "failed"
    assert state["error"]["type"] == "history_limit"
