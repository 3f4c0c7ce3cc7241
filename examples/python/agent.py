"""agent.py: a tool-using research agent as a durable workflow in Python
(bindings/python; scripts/demo runs it, killed in the middle of a tool call).

A stand-in model (scripted and deterministic: no network) plans the
research; search tools run in parallel, one per query; the best pages are
fetched, one at a time; a human approves the draft (an "approval" event);
the model writes the summary. Every model call and every tool call is a
step, whose result is in the run's log, synced, before the call returns.

Killed at any moment and started again with the same RUN_ID, the program
replays the run: the calls that completed give back their recorded results
without running again, a call that was running when the process died runs
again with the same idempotency key, and the code goes on live from there.

With --log FILE each tool call appends "START <key> <attempt>" before its
work, and the code "DONE <key>" once the call has completed durably: the
side effects a real tool would have, for scripts/demo to show.

Usage: python3 examples/python/agent.py STORE RUN_ID [--topic T] [--log FILE]
The run waits for its approval, which anyone may send, before or during
the wait:  build/tools/evrun send STORE RUN_ID approval '{"by":"alice"}'
"""
import argparse
import json
import os
import sys
import time

import evstore

LOG = None  # the side-effect log (--log)
# Scales the stand-ins' work (1: as the demo shows it; the tests run it
# faster).
PACE = float(os.environ.get("EVS_AGENT_PACE", "1"))
# The tools' retry policy: a flaky network is tried again after a durable
# backoff.
FLAKY = evstore.Retry(max_attempts=3, initial_interval=0.2 * PACE)


def note(line: str) -> None:
    """Appends a line to the side-effect log, synced."""
    if LOG is None:
        return
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def say(ctx: evstore.Context, text: str) -> None:
    """Prints progress, but not while the code replays its history."""
    if not ctx.is_replaying:
        print("%s: %s" % (ctx.run_id, text), flush=True)


def model(task: str, material: dict) -> dict:
    """The stand-in model. A real one answers differently from one call to
    the next: which is why it runs in a step, and a re-run gets the
    recorded answer."""
    time.sleep(0.3 * PACE)
    if task == "plan":
        topic = material["topic"]
        return {"queries": [topic, topic + " history", topic + " in practice"]}
    if task == "draft":
        return {"draft": "%d sources on %s" % (len(material["pages"]),
                                               material["topic"])}
    return {"summary": "%s, approved by %s" % (material["draft"],
                                              material["by"])}


def search(query: str) -> list:
    """A search tool (a stand-in): the hits for a query."""
    time.sleep(0.8 * PACE)
    return [{"url": "https://example.org/%s/%d" % (query.replace(" ", "-"),
                                                   i), "score": 10 - i}
            for i in range(2)]


def fetch(url: str) -> dict:
    """A fetch tool (a stand-in): a page's text. Its first attempt fails,
    as a flaky network does."""
    time.sleep(1.0 * PACE)
    if evstore.step_info().attempt == 1:
        raise ConnectionError("no answer from %s" % url)
    return {"url": url, "text": "(the page at %s)" % url}


def step(ctx: evstore.Context, name: str, fn, *args, **options):
    """ctx.step with the side-effect log: a body that runs notes "START key
    attempt" first; a step it ran notes "DONE key" once its result is
    durable. A real tool hands the key (evstore.step_info().key) to what it
    calls: it is the same when the step runs again after a crash."""
    ran = []

    def body(*a):
        info = evstore.step_info()
        ran.append(info.key)
        note("START %s %d" % (info.key, info.attempt))
        return fn(*a)

    out = ctx.step(name, body, *args, **options)
    if ran:
        note("DONE %s" % ran[-1])
    return out


def research(ctx: evstore.Context, topic: str) -> dict:
    """The agent: plan, search in parallel (a branch per query), fetch the
    best pages, draft, wait for a human's approval, summarize."""
    plan = step(ctx, "plan", model, "plan", {"topic": topic})
    say(ctx, "planned %d searches" % len(plan["queries"]))
    hits = ctx.all([ctx.branch("search", step, "search", search, q)
                    for q in plan["queries"]])
    best = sorted((h for found in hits for h in found),
                  key=lambda h: -h["score"])[:2]
    say(ctx, "searched; fetching %d pages" % len(best))
    pages = [step(ctx, "fetch", fetch, h["url"], retry=FLAKY) for h in best]
    draft = step(ctx, "draft", model, "draft", {"topic": topic,
                                                "pages": pages})
    say(ctx, "draft ready; waiting for the approval event")
    approval = ctx.wait_event("approval", timeout=3600)
    summary = step(ctx, "summarize", model, "summarize",
                   {"draft": draft["draft"], "by": approval["by"]})
    return {"topic": topic, "pages": [p["url"] for p in pages],
            "summary": summary["summary"]}


def main() -> int:
    global LOG
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("store")
    p.add_argument("run_id")
    p.add_argument("--topic", default="durable execution")
    p.add_argument("--log", help="the side-effect log")
    args = p.parse_args()
    LOG = args.log
    store = evstore.Store(args.store)
    store.workflow("research", version="1")(research)
    try:
        out = store.run("research", id=args.run_id, topic=args.topic)
    except evstore.RunFailed as e:
        print("%s failed: %s" % (args.run_id, e), file=sys.stderr)
        return 1
    print("%s completed: %s" % (args.run_id, json.dumps(out)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
