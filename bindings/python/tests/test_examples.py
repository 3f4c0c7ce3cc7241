"""The Python examples run as the README and scripts/demo run them:
examples/python/quickstart.py (the README's example, whole) and
examples/python/agent.py (the demo's agent), its tools logged."""
import json
import os

from conftest import TOP, assert_replays, assert_verified, spawn

EXAMPLES = os.path.join(TOP, "examples", "python")


def test_the_quickstart_completes_and_then_gives_its_result(tmp_path,
                                                            store):
    for _ in range(2):
        p = spawn([os.path.join(EXAMPLES, "quickstart.py")],
                  AGENT_STORE=str(tmp_path / "agent-store"))
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out == "{'summary': 'notes on 4 finds', " \
            "'approved_by': 'alice'}\n"
    assert_replays(str(tmp_path / "agent-store"), "r-42")


def test_the_demo_agent_waits_for_its_approval(tmp_path, store, store_dir):
    log = str(tmp_path / "effects.log")
    p = spawn([os.path.join(EXAMPLES, "agent.py"), store_dir, "a1", "--log",
               log], EVS_AGENT_PACE="0.05")
    lines = []
    for line in p.stdout:
        lines.append(line)
        if "waiting for the approval event" in line:
            break
    store.send("a1", "approval", {"by": "alice"})
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert lines[0] == "a1: planned 3 searches\n"
    assert out.startswith("a1 completed: ")
    result = json.loads(out[len("a1 completed: "):])
    assert result["summary"] == "2 sources on durable execution, " \
        "approved by alice"
    with open(log) as f:
        effects = f.read().split("\n")
    assert "START a1/main/search#3/search 1" in effects
    assert "START a1/main/fetch 2" in effects  # its first attempt failed
    assert "DONE a1/main/summarize" in effects
    assert_replays(store_dir, "a1")
    assert_verified(store_dir)
