"""quickstart.py: the README's "Python" example, whole: a durable research
workflow with a stand-in model and a stand-in search tool (no network).

    python3 examples/python/quickstart.py

starts run "r-42" in the store ./agent-store ($AGENT_STORE if set), sends
it its approval, and prints its result. Run it again: the run has
completed, and only its result is given back.

The part between the README markers is the README's snippet, byte for byte
(scripts/check-readme compares them).
"""
# README: quickstart: begin
import os

import evstore

store = evstore.Store(os.environ.get("AGENT_STORE", "./agent-store"))


def call_llm(prompt: str) -> dict:
    """A stand-in for a model: a real one answers differently each time,
    which is why it runs in a step (a re-run gets the recorded answer)."""
    if prompt.startswith("plan"):
        return {"queries": ["durable execution", "event sourcing"]}
    return {"summary": "notes on " + prompt[len("summarize "):]}


@store.step(max_attempts=3, initial_interval=0.5)
def search(query: str) -> list:
    """A tool. A real one would hand evstore.step_info().key to its API:
    the key is the same when the step runs again after a crash."""
    return [query + ": a paper", query + ": a blog post"]


@store.workflow("research", version="1")
def research(ctx: evstore.Context, topic: str) -> dict:
    plan = ctx.step("plan", call_llm, "plan research on " + topic)
    found = ctx.all([ctx.step_future("search", search, q)
                     for q in plan["queries"]])
    approval = ctx.wait_event("approval", timeout=3600)
    notes = ctx.step("summarize", call_llm, "summarize %d finds" %
                     sum(len(f) for f in found))
    return {"summary": notes["summary"], "approved_by": approval["by"]}


if __name__ == "__main__":
    run = store.start("research", id="r-42", topic="durable execution")
    if not run.done():  # a human approves, from anywhere (evrun send too)
        store.send("r-42", "approval", {"by": "alice"})
    print(run.result(timeout=30))
# README: quickstart: end
