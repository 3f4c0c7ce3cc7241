#!/usr/bin/env python3
"""py_steps.py: what a step costs from Python (bindings/python), beside the
same from C, measured in the same repetitions.

Each repetition runs, in a fresh store and in turn (the order alternating
between repetitions), one run of N trivial sequential steps from C
(build/bench/run_steps: evs_run_step, input "[]", output "1") and the same
from Python (ctx.step("s", lambda: 1) in a workflow, in this process), with
durability "none" (unsynced) and "full" (synced; fewer steps). A step's time
runs from the return of the step before to its own return: what the
code waits between two steps. The first step of each run is left out.
Prints, for each durability, the p50/p90/p99 of both, median [min-max]
over the repetitions, and Python's p50 less C's.

Usage: python3 bench/py_steps.py [--build DIR] [--reps N] [--steps N]
                                 [--durable-steps N] [--dir DIR]
"""
import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pct(sorted_ns, p):
    return sorted_ns[min(len(sorted_ns) - 1, int(p / 100.0 * len(sorted_ns)))]


def summary(ns):
    s = sorted(ns[1:])
    return {"p50": pct(s, 50) / 1e3, "p90": pct(s, 90) / 1e3,
            "p99": pct(s, 99) / 1e3}


def c_run(build, store, n, durability):
    out = subprocess.run([os.path.join(build, "bench", "run_steps"), store,
                          "r", str(n), durability], check=True,
                         capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def py_run(evstore, store, n, durability):
    s = evstore.Store(store, durability=durability)
    ns = []

    def one():
        return 1

    @s.workflow("bench", version="1")
    def bench(ctx):
        t = time.perf_counter_ns()
        for _ in range(n):
            ctx.step("s", one)
            t2 = time.perf_counter_ns()
            ns.append(t2 - t)
            t = t2

    s.run(bench, id="r")
    s.close()
    return ns


def fmt(values):
    return "%.1f [%.1f-%.1f]" % (statistics.median(values), min(values),
                                 max(values))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(TOP, "build"))
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--durable-steps", type=int, default=300)
    p.add_argument("--dir", help="where the stores go (default: a "
                   "temporary directory under the build directory)")
    args = p.parse_args()
    os.environ.setdefault("EVSTORE_LIBRARY",
                          os.path.join(args.build, "libevstore.so"))
    sys.path.insert(0, os.path.join(TOP, "bindings", "python"))
    import evstore

    work = tempfile.mkdtemp(dir=args.dir or args.build,
                            prefix="py-steps-")
    res = {}
    try:
        for rep in range(args.reps):
            for durability, n in (("none", args.steps),
                                  ("full", args.durable_steps)):
                order = [("C", c_run), ("Python", py_run)]
                if rep % 2:
                    order.reverse()
                for lang, fn in order:
                    store = os.path.join(work, "%s-%s-%d" % (lang,
                                                             durability, rep))
                    ns = fn(args.build if lang == "C" else evstore, store, n,
                            durability)
                    res.setdefault((durability, lang), []).append(summary(ns))
                    shutil.rmtree(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("Python %s (%s), library %s, %d repetitions, load average %s" % (
        platform.python_version(), sys.executable, evstore._lib.path,
        args.reps, " ".join("%.2f" % x for x in os.getloadavg())))
    print()
    print("| durability | steps | metric | C (µs) | Python (µs) | Python - C "
          "(µs) |")
    print("|---|---|---|---|---|---|")
    for durability, n in (("none", args.steps), ("full", args.durable_steps)):
        c, py = res[(durability, "C")], res[(durability, "Python")]
        for m in ("p50", "p90", "p99"):
            diff = [b[m] - a[m] for a, b in zip(c, py)]
            print("| %s | %d | %s | %s | %s | %s |" % (
                "unsynced" if durability == "none" else "durable", n, m,
                fmt([x[m] for x in c]), fmt([x[m] for x in py]), fmt(diff)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
