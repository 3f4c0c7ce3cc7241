"""A worker (python -m evstore worker) killed with SIGKILL at random
moments, 50 times in all (EVS_PY_KILLS; EVS_PY_KILL_SEED repeats a
schedule), over runs of the demo's research agent (examples/python/
agent.py, through tests/apps/agent_app.py, its work sped up), in two stores
at once; then let finish and stopped with SIGTERM. For every run:

  - no step body began once its completion was durable (no START of a key
    after its DONE in the tool log), each completion was noted once, and
    a step's attempts never went back;
  - every key noted is "<run>/<path>/<step>" of a step the history
    completed, and every step the history completed ran here;
  - the run completed with the expected output, and its history replays
    strictly (evdump state); evdump verify finds the store clean.
"""
import os
import random
import signal
import threading
import time

import evstore
from conftest import assert_replays, assert_verified, spawn, wait_for

KILLS = int(os.environ.get("EVS_PY_KILLS", "50"))
SEED = int(os.environ.get("EVS_PY_KILL_SEED", str(int(time.time()))))
BATCH = 6
PACE = "0.02"  # the agent's stand-ins work 6 to 20 ms
OUTPUT = {"topic": "q", "pages": ["https://example.org/q/0",
                                  "https://example.org/q-history/0"],
          "summary": "2 sources on q, approved by alice"}


def completed(s, ids):
    """Whether every run has completed: the listing first (one call), and
    the replayed state for those it does not show completed (a snapshot
    lags behind its log when a worker died between the two)."""
    rows = {x["id"]: x["status"] for x in s.list()}
    return all(rows.get(r) == "completed" or
               s.get_run(r).status() == "completed" for r in ids)


def worker(store_dir, log):
    p = spawn(["-m", "evstore", "worker", store_dir, "--app",
               "agent_app:store", "--poll", "0.02"],
              EVS_APP_STORE=store_dir, EVS_TOOL_LOG=log,
              EVS_AGENT_PACE=PACE)
    return p


def kill_sequence(store_dir, log, kills, rng, ids, failures):
    s = evstore.Store(store_dir)
    # runs are made here, and run by the workers only
    s.workflow("research", version="1")(lambda ctx, topic: None)
    n = 0
    try:
        while n < kills:
            if completed(s, ids):
                for _ in range(BATCH):  # more work for the kills
                    rid = "r%d" % len(ids)
                    s.enqueue("research", id=rid, topic="q")
                    s.send(rid, "approval", {"by": "alice"})
                    ids.append(rid)
            p = worker(store_dir, log)
            line = p.stdout.readline()  # the store and the workflows
            while line and not line.startswith("evstore worker: running"):
                line = p.stdout.readline()  # a run taken: kill in its midst
            if not line:
                p.kill()
                failures.append("worker said %r: %s" % (line,
                                                        p.stderr.read()))
                return
            time.sleep(rng.uniform(0, 0.12))
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
            n += 1
        # the last worker lets every run finish, and stops on SIGTERM
        p = worker(store_dir, log)
        p.stdout.readline()  # its SIGTERM handler is in place
        try:
            wait_for(lambda: completed(s, ids), timeout=60,
                     what="every run to complete")
        except BaseException:
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=20)
            failures.append("not completed: %s; recoverable %s; worker: "
                            "%s %s" % ([(x["id"], x["status"])
                                        for x in s.list()],
                                       s.recoverable(), out, err))
            return
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
        if p.returncode != 0:
            failures.append("worker exit %s on SIGTERM: %s" % (p.returncode,
                                                             err))
    except BaseException as e:
        failures.append(repr(e))
    finally:
        s.close()


def check_log(log, ids, store_dir):
    s = evstore.Store(store_dir)
    started = {}
    done = set()
    with open(log) as f:
        for line in f:
            parts = line.split()
            key = parts[1]
            assert key not in done, "%s began again after its DONE" % key
            if parts[0] == "START":
                attempt = int(parts[2])
                assert attempt >= started.get(key, 0), line
                started[key] = attempt
            else:
                assert parts[0] == "DONE" and key in started, line
                done.add(key)
    for rid in ids:
        completed = {"%s/%s/%s" % (rid, e["path_id"], e["step_name"])
                     for e in s.events(rid)
                     if e["event_type"] == "step_completed"
                     and not e["step_name"].startswith(("approval",
                                                        "join"))}
        mine = {k for k in started if k.startswith(rid + "/")}
        assert mine == completed, (rid, mine ^ completed)
        assert {k for k in done if k.startswith(rid + "/")} <= completed
        st = assert_replays(store_dir, rid)
        assert '"status":"completed"' in st.stdout
    s.close()
    return len(done)


def test_a_worker_killed_at_random_loses_no_step_and_repeats_none(
        tmp_path):
    rng = random.Random(SEED)
    failures = []
    seqs = []
    for i in range(2):
        store_dir = str(tmp_path / ("store%d" % i))
        log = str(tmp_path / ("tools%d.log" % i))
        ids = []
        seqs.append((store_dir, log, ids))
        t = threading.Thread(target=kill_sequence, args=(
            store_dir, log, KILLS // 2 + (KILLS % 2 if i == 0 else 0),
            random.Random(rng.random()), ids, failures))
        t.start()
        seqs[-1] += (t,)
    for store_dir, log, ids, t in seqs:
        t.join()
    assert not failures, (SEED, failures)
    for store_dir, log, ids, _ in seqs:
        check_log(log, ids, store_dir)
        assert_verified(store_dir)
        s = evstore.Store(store_dir)
        for rid in ids:
            out = evstore.Run(s, None, rid).result(timeout=5)
            assert out == OUTPUT, (SEED, rid, out)
        s.close()
