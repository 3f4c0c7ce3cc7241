"""The kill test's app (tests/test_kill.py): a tool-using agent as a run,
as examples/agent_loop.c is, for `python -m evstore worker STORE --app
agent_app:store`.

Each turn a stand-in model (scripted replies, no network) names the tools
to call; one tool runs as a step, several as parallel branches; "fetch"
fails its first attempt and is retried after a durable backoff; when the
model names none, the run waits for an "approval" event. With the tool log
$EVS_TOOL_LOG, each step body first appends "START <key> <attempt>", and
the code appends "DONE <key>" once a step it ran has completed, i.e. once
its ctx.step returned: so no START of a key may ever follow its DONE.
"""
import os
import time

import evstore

store = evstore.Store(os.environ["EVS_APP_STORE"], poll_interval=0.01)
LOG = os.environ.get("EVS_TOOL_LOG")

SCRIPT = [["search"], ["fetch", "calc"], ["search"], []]
FOUND = {"search": ["Durable functions, 2019"], "fetch": "(the paper)",
         "calc": 42}
RETRY = evstore.Retry(max_attempts=3, initial_interval=0.02)


def note(line):
    """Appends a line to the tool log, synced."""
    if not LOG:
        return
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def logged(ctx, name, fn, *args, **kwargs):
    """ctx.step with the tool log."""
    ran = []

    def body(*a):
        info = evstore.step_info()
        ran.append(info.key)
        note("START %s %d" % (info.key, info.attempt))
        return fn(*a)

    out = ctx.step(name, body, *args, **kwargs)
    if ran:
        note("DONE %s" % ran[-1])
    return out


def model(turn):
    time.sleep(0.01)
    return SCRIPT[min(turn, len(SCRIPT) - 1)]


def tool(name):
    time.sleep(0.015)
    if name == "fetch" and evstore.step_info().attempt == 1:
        raise ConnectionError("no answer")
    return {"tool": name, "result": FOUND[name]}


@store.workflow("agent", version="1")
def agent(ctx, question):
    results = []
    for turn in range(len(SCRIPT)):
        tools = logged(ctx, "model", model, turn)
        if not tools:
            break
        if len(tools) == 1:
            results = [logged(ctx, tools[0], tool, tools[0], retry=RETRY)]
        else:
            results = ctx.all([
                ctx.branch(t, lambda b, t=t: logged(b, t, tool, t,
                                                    retry=RETRY))
                for t in tools])
        ctx.sleep(0.02)  # the model's rate limit, durable
    return {"question": question, "answer": results,
            "approval": ctx.wait_event("approval")}
