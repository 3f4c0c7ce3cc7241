"""async def workflows and steps under asyncio: replayed without running
again, asyncio.gather recorded as parallel branches, and the event loop
never blocked by the library's calls."""
import asyncio
import threading
import time

import evstore
import pytest
from conftest import assert_replays, wait_for


class Crash(BaseException):
    pass


def test_an_async_workflow_replays_and_gathers_on_branches(store,
                                                           store_dir):
    calls = []
    crash = [True]

    @store.step
    async def search(q):
        calls.append(q)
        await asyncio.sleep(0.1)
        return q.upper()

    @store.step(max_attempts=3, initial_interval=0.01)
    def flaky(n):  # a synchronous step: runs in a thread
        calls.append("flaky")
        if calls.count("flaky") == 1:
            raise ConnectionError("once")
        return n

    @store.workflow("research")
    async def research(ctx, topics):
        t = time.monotonic()
        found = await asyncio.gather(*[search(q) for q in topics])
        took = time.monotonic() - t
        n = await flaky(7)
        await ctx.sleep(0.01)
        if crash[0]:
            raise Crash()
        return {"found": found, "n": n, "parallel": took < 0.25}

    with pytest.raises(Crash):
        store.run(research, id="a", topics=["x", "y", "z"])
    assert sorted(calls) == ["flaky", "flaky", "x", "y", "z"]
    crash[0] = False
    out = store.run(research, id="a", topics=["x", "y", "z"])
    assert out == {"found": ["X", "Y", "Z"], "n": 7, "parallel": True}
    assert sorted(calls) == ["flaky", "flaky", "x", "y", "z"]
    paths = [e["path_id"] for e in store.events("a")
             if e["event_type"] == "path_started"]
    assert paths == ["main", "main/search", "main/search#2",
                     "main/search#3"]
    assert_replays(store_dir, "a")


def test_tasks_with_several_steps_are_branches(store, store_dir):
    async def one(ctx, i):
        a = await ctx.step("fetch", lambda: i)
        await ctx.sleep(0.01)
        return await ctx.step("parse", lambda: a * 10)

    @store.workflow("wf")
    async def wf(ctx):
        return await asyncio.gather(one(ctx, 1), one(ctx, 2))

    assert store.run(wf, id="r") == [10, 20]
    assert store.run(wf, id="r") == [10, 20]
    assert_replays(store_dir, "r")


def test_the_event_loop_is_not_blocked(store):
    ticks = []

    @store.workflow("wf")
    async def wf(ctx):
        async def ticker():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)
        t = asyncio.create_task(ticker())
        await ctx.sleep(0.3)  # in the path's thread, not on the loop
        t.cancel()
        return len(ticks)

    async def main():
        return await store.run_async(wf, id="r")

    assert asyncio.run(main()) >= 10


def test_an_async_step_failure_is_step_failed(store):
    @store.step(max_attempts=2, initial_interval=0.01)
    async def broken():
        raise ValueError("bad value")

    @store.workflow("wf")
    async def wf(ctx):
        try:
            await broken()
        except evstore.StepFailed as e:
            return [e.type, e.message]

    assert store.run(wf, id="r") == ["ValueError", "bad value"]


def test_a_failed_task_fails_its_branch_and_the_run(store, store_dir):
    async def bad(ctx):
        await ctx.step("ok", lambda: 1)
        raise RuntimeError("in a task")

    @store.workflow("wf")
    async def wf(ctx):
        await asyncio.gather(bad(ctx), ctx.step("fine", lambda: 2))

    with pytest.raises(evstore.RunFailed, match="in a task"):
        store.run(wf, id="r")
    assert_replays(store_dir, "r")


def test_sync_workflows_run_on_a_loop_too(store):
    @store.workflow("wf")
    def wf(ctx):
        return ctx.step("s", lambda: threading.current_thread().name)

    async def main():
        return await store.run_async(wf, id="r")

    assert asyncio.run(main()) != "MainThread"


def test_async_waits_events_and_continues_as_new(store):
    @store.workflow("wf")
    async def wf(ctx, n):
        if n == 1:
            await ctx.continue_as_new(n=2)
        return [n, await ctx.wait_event("go"), await ctx.patched("p")]

    run = store.start(wf, id="c", n=1)
    wait_for(lambda: any(x["id"] == "c.c2" for x in store.list()),
             what="the successor")
    store.send("c.c2", "go", 5)
    assert run.result(timeout=10) == [2, 5, True]


def test_store_run_refuses_an_async_workflow_inside_a_loop(store):
    @store.workflow("wf")
    async def wf(ctx):
        return 1

    async def main():
        with pytest.raises(RuntimeError, match="run_async"):
            store.run(wf, id="r")
        return await store.run_async(wf, id="r")

    assert asyncio.run(main()) == 1
