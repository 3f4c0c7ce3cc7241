"""A run that waits for an event: `python -m wait_app STORE RUN_ID [HOW]`
runs it and prints its result: HOW is "run" (store.run, in the main
thread; the default), "async" (its async twin, by store.run) or "start"
(store.start, then run.result() in the main thread). The tests interrupt
it (Ctrl-C), hold its lock, and run it again. A worker takes it as
`--app wait_app:store` with the store in $EVS_APP_STORE."""
import os
import sys

import evstore

store = evstore.Store(os.environ.get("EVS_APP_STORE") or sys.argv[1],
                      poll_interval=0.02)


@store.workflow("wait")
def wait(ctx):
    ctx.step("before", lambda: "x")
    print("waiting", flush=True)
    return ctx.wait_event("go")


@store.workflow("await")
async def await_(ctx):
    await ctx.step("before", lambda: "x")
    print("waiting", flush=True)
    return await ctx.wait_event("go")


if __name__ == "__main__":
    how = sys.argv[3] if len(sys.argv) > 3 else "run"
    if how == "start":
        out = store.start("wait", id=sys.argv[2]).result()
    else:
        out = store.run("await" if how == "async" else "wait",
                        id=sys.argv[2])
    print("result", out, flush=True)
