"""The web console (server/console/) in a real browser: Debian's chromium,
headless, driven through the DevTools protocol over a pipe (cdp.py).

A store is made with the demo's executions (scripts/demo's research agent,
examples/agent/agent.json, its searches made quick): demo-1 run to its
end, demo-2 left waiting for its approval, and broken-1, a workflow whose
second step fails for good. `evrun serve --http 127.0.0.1:0 --console
server/console` serves it, and the tests load the console, open
executions, check the graph, the timeline and the replayed state against
what the API says, pause and unpause demo-2 from the page and check its
history through the API, and take screenshots (EVS_CONSOLE_SHOTS, else
the test's temporary directory).

The tests share the store, the server and the browser (module scope) and
run in the file's order: demo-2 is paused and unpaused, then approved
from the page and followed to its end; broken-1 is retried as broken-2.

chromium missing is a failure, not a skip: scripts/setup-deps installs
it. Every wait is for a condition in the page or the API, with a limit.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "support"))
import evserve  # noqa: E402  (tests/support/evserve.py)

import cdp

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EVRUN = os.environ.get("EVSTORE_EVRUN") or os.path.join(
    TOP, "build", "tools", "evrun")
CONSOLE = os.path.join(TOP, "server", "console")
AGENT = os.path.join(TOP, "examples", "agent", "agent.json")

BROKEN = {"name": "broken", "version": 1,
          "steps": [{"name": "first", "kind": "action", "action": "echo",
                     "params": {"x": 1}, "next": "boom"},
                    {"name": "boom", "kind": "action", "action": "fail",
                     "params": {"times": 1, "fatal": True}, "next": "last"},
                    {"name": "last", "kind": "action", "action": "echo",
                     "params": {"x": 2}}]}


def evrun(*args, want=0, env=None):
    r = subprocess.run([EVRUN] + list(args), cwd=TOP, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == want, "evrun %s: exit %d\n%s%s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr)
    return r.stdout


def make_store(tmp):
    """The demo's executions, as scripts/demo makes them (quicker)."""
    store = os.path.join(tmp, "store")
    os.mkdir(store, 0o700)
    env = dict(os.environ, EVS_DEMO_SEARCH_SECS="0",
               EVS_DEMO_LOG=os.path.join(tmp, "side-effects.log"))
    topic = '{"topic":"durable execution"}'
    evrun("start", store, AGENT, "--input", topic, "--id", "demo-1",
          want=4, env=env)
    evrun("send", store, "demo-1", "approval",
          '{"approved":true,"by":"alice"}', env=env)
    evrun("resume", store, "demo-1", env=env)
    evrun("start", store, AGENT, "--input", topic, "--id", "demo-2",
          want=4, env=env)
    broken = os.path.join(tmp, "broken.json")
    with open(broken, "w") as f:
        json.dump(BROKEN, f)
    r = subprocess.run([EVRUN, "start", store, broken, "--id", "broken-1"],
                       cwd=TOP, capture_output=True, text=True, timeout=60)
    assert "failed" in r.stdout, r.stdout + r.stderr
    return store, env


class Server:
    """`evrun serve STORE --http 127.0.0.1:0 --console server/console`."""

    def __init__(self, store, env, token=None, tmp=None):
        args = [EVRUN, "serve", store, "--adopt", "50",
                "--http", "127.0.0.1:0", "--console", CONSOLE]
        self.token = token
        if token:
            tf = os.path.join(tmp, "token")
            with open(tf, "w") as f:
                f.write(token + "\n")
            args += ["--token-file", tf]
        self.proc, self.port = evserve.start(args, cwd=TOP, env=env)
        self.url = "http://127.0.0.1:%d" % self.port

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = {"Authorization": "Bearer " + self.token} if self.token else {}
        c.request("GET", path, headers=h)
        r = c.getresponse()
        body = r.read()
        c.close()
        assert r.status == 200, (path, r.status, body)
        return json.loads(body)

    def events(self, eid):
        return self.get("/v1/executions/%s/events?limit=1000" % eid)["events"]

    def stop(self):
        return evserve.stop(self.proc)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("console"))
    shots = os.environ.get("EVS_CONSOLE_SHOTS") or os.path.join(tmp, "shots")
    os.makedirs(shots, exist_ok=True)
    store, env = make_store(tmp)
    srv = Server(store, env)
    browser = None
    try:
        browser = cdp.Browser(os.path.join(tmp, "profile"))
        browser.debug_expr = DEBUG
        yield {"srv": srv, "b": browser, "shots": shots, "tmp": tmp,
               "store": store, "env": env}
        assert browser.errors == [], browser.errors
    finally:
        if browser:
            browser.close()
        assert srv.stop() == 0


# What a failed wait shows of the page.
DEBUG = """JSON.stringify({
  hash: location.hash,
  result: (document.querySelector('#action-result') || {}).textContent,
  dialog: document.querySelector('#ask').open,
  ask: document.querySelector('#ask-body').textContent,
  errors: [...document.querySelectorAll('.error')].map(e => e.textContent),
  requests: performance.getEntriesByType('resource').slice(-10)
    .map(e => e.name.replace(location.origin, '') + ' ' +
              Math.round(e.startTime) + '+' + Math.round(e.duration)),
  now: Math.round(performance.now())}, null, 1)"""


def js(v):
    return json.dumps(v)


def open_exec(w, eid):
    """Opens execution `eid` and waits until its page shows it: the
    header, the graph, the events and the state at the last sequence."""
    b, srv = w["b"], w["srv"]
    last = srv.get("/v1/executions/" + eid)["last_event_seq"]
    b.navigate("about:blank")  # a fresh page, even if it showed eid
    b.navigate("%s/console/#/e/%s" % (srv.url, eid))
    b.wait_for("document.querySelector('#exec-head h2') && "
               "document.querySelector('#exec-head h2').textContent"
               ".includes(%s)" % js(eid), "the header of " + eid)
    b.wait_for("document.querySelectorAll('#graph-svg .node').length > 0",
               "the graph of " + eid)
    b.wait_for("document.querySelectorAll('#event-rows tr.ev').length >= %d"
               % last, "the events of " + eid)
    b.wait_for("document.querySelector('#state-json').dataset.seq === '%d'"
               % last, "the state at the end of " + eid)


def node_states(b):
    return b.eval("Object.fromEntries([...document.querySelectorAll("
                  "'#graph-svg .node')].map(n => [n.dataset.step, "
                  "n.dataset.state]))")


def bars(b):
    return b.eval("[...document.querySelectorAll('#timeline .tl-bar')]"
                  ".map(x => [x.dataset.path, x.dataset.step, "
                  "x.dataset.state, Number(x.dataset.attempts)])")


def test_list_counts_filter_and_search(world):
    b, srv = world["b"], world["srv"]
    b.navigate(srv.url + "/console/")
    b.wait_for("document.querySelectorAll('#exec-rows tr[data-id]').length "
               "=== 3", "three rows")
    ids = b.eval("[...document.querySelectorAll('#exec-rows tr[data-id]')]"
                 ".map(r => r.dataset.id).sort()")
    assert ids == ["broken-1", "demo-1", "demo-2"]
    # The counts are the API's totals, per status.
    b.wait_for("document.querySelector('#counts [data-status=failed]')",
               "the counts")
    counts = b.eval("Object.fromEntries([...document.querySelectorAll("
                    "'#counts .count')].map(c => [c.dataset.status, "
                    "Number(c.dataset.count)]))")
    for status, n in counts.items():
        q = "" if status == "all" else "&status=" + status
        assert srv.get("/v1/executions?limit=1" + q)["total"] == n, status
    assert (counts["all"], counts["completed"], counts["waiting"],
            counts["failed"]) == (3, 1, 1, 1)
    # The status filter asks the API for that status only.
    b.eval("(() => { const f = document.querySelector('#status-filter');"
           " f.value = 'waiting'; f.dispatchEvent(new Event('change')); })()")
    b.wait_for("[...document.querySelectorAll('#exec-rows tr[data-id]')]"
               ".map(r => r.dataset.id).join() === 'demo-2'",
               "the waiting execution only")
    b.eval("(() => { const f = document.querySelector('#status-filter');"
           " f.value = ''; f.dispatchEvent(new Event('change')); })()")
    b.wait_for("document.querySelectorAll('#exec-rows tr[data-id]').length "
               "=== 3", "all rows again")
    # Search by id: typing narrows the page; Enter opens the execution.
    b.eval("(() => { const s = document.querySelector('#search');"
           " s.value = 'broken'; s.dispatchEvent(new Event('input')); })()")
    b.wait_for("[...document.querySelectorAll('#exec-rows tr[data-id]')]"
               ".map(r => r.dataset.id).join() === 'broken-1'",
               "the search's match")
    b.screenshot(os.path.join(world["shots"], "list.png"))
    # Cursor pages (#/?limit=N sets the page size): the API's pages in
    # turn, then back.
    listing = srv.get("/v1/executions?limit=1000")["items"]
    want = [r["id"] for r in listing]
    b.navigate("about:blank")
    b.navigate(srv.url + "/console/#/?limit=2")

    def page_ids():
        return b.wait_for("document.querySelector('#page-info').textContent"
                          " && [...document.querySelectorAll('#exec-rows "
                          "tr[data-id]')].map(r => r.dataset.id)",
                          "a page of rows")

    b.wait_for("document.querySelector('#page-info').textContent"
               ".startsWith('page 1')", "page 1")
    assert page_ids() == want[:2]
    assert not b.eval("document.querySelector('#next').disabled")
    b.eval("document.querySelector('#next').click()")
    b.wait_for("document.querySelector('#page-info').textContent"
               ".startsWith('page 2')", "page 2")
    assert page_ids() == want[2:4]
    assert b.eval("document.querySelector('#next').disabled") == \
        (len(want) <= 4)
    b.eval("document.querySelector('#prev').click()")
    b.wait_for("document.querySelector('#page-info').textContent"
               ".startsWith('page 1')", "page 1 again")
    assert page_ids() == want[:2]
    b.navigate(srv.url + "/console/")
    b.eval("(() => { const s = document.querySelector('#search');"
           " s.value = 'demo-1'; s.dispatchEvent(new KeyboardEvent("
           "'keydown', {key: 'Enter'})); })()")
    b.wait_for("location.hash === '#/e/demo-1'", "demo-1 opened by search")


def test_graph_and_timeline(world):
    b, srv = world["b"], world["srv"]
    open_exec(world, "demo-1")
    with open(AGENT) as f:
        agent = json.load(f)
    states = node_states(b)
    # Every step of the definition, coloured by what the history says:
    # the approval went to summarize, so `rejected` never ran.
    assert sorted(states) == sorted(s["name"] for s in agent["steps"])
    assert states == {"plan": "completed", "search": "completed",
                      "gather": "completed", "approve": "completed",
                      "summarize": "completed", "rejected": "pending"}
    edges = b.eval("[...document.querySelectorAll('#graph-svg .edge')]"
                   ".map(e => e.dataset.from + '>' + e.dataset.to).sort()")
    assert edges == sorted(["plan>search", "plan>gather", "gather>approve",
                            "approve>summarize", "approve>rejected"])
    fill = b.eval("getComputedStyle(document.querySelector("
                  "'#graph-svg .node[data-step=plan] rect')).fill")
    pending = b.eval("getComputedStyle(document.querySelector("
                     "'#graph-svg .node[data-step=rejected] rect')).fill")
    assert fill != pending
    # The timeline: a bar for each step each path started, per the API.
    started = {}
    for e in srv.events("demo-1"):
        if e["event_type"] == "step_started":
            k = (e["path_id"], e["step_name"])
            started[k] = started.get(k, 0) + 1
    got = bars(b)
    assert sorted((p, s) for p, s, _, _ in got) == sorted(started)
    for p, s, state, attempts in got:
        assert state == "completed", (p, s)
        assert attempts == started[(p, s)]
    rows = b.eval("[...document.querySelectorAll('#timeline .tl-row"
                  "[data-path]')].map(r => r.dataset.path).sort()")
    assert rows == sorted({p for p, _ in started})
    b.screenshot(os.path.join(world["shots"], "execution.png"))


def test_slider_shows_state_at_sequence(world):
    b, srv = world["b"], world["srv"]
    open_exec(world, "demo-1")
    events = srv.events("demo-1")
    # The sequence where the first search completed: plan done, one
    # search done and the other still running, gather waiting on them.
    seq = next(e["sequence"] for e in events
               if e["event_type"] == "step_completed"
               and e["step_name"] == "search")
    b.eval("(() => { const s = document.querySelector('#seq-slider');"
           " s.value = %d; s.dispatchEvent(new Event('input')); })()" % seq)
    b.wait_for("document.querySelector('#state-json').dataset.seq === '%d'"
               " && document.querySelector('#state-diff').dataset.seq === "
               "'%d'" % (seq, seq), "the state at %d" % seq)
    shown = json.loads(b.eval("document.querySelector('#state-json')"
                              ".textContent"))
    want = srv.get("/v1/executions/demo-1/state?at=%d" % seq)["state"]
    assert shown == want
    assert shown["last_seq"] == seq
    # What changed: the step that completed at seq, as the API's states
    # before and after it say.
    before = srv.get("/v1/executions/demo-1/state?at=%d" % (seq - 1))["state"]
    changed = [i for i, (x, y) in enumerate(zip(before["steps"],
                                                shown["steps"])) if x != y]
    assert changed, "the step's status changed at %d" % seq
    diff = b.eval("[...document.querySelectorAll('#state-diff li code')]"
                  ".map(c => c.textContent)")
    for i in changed:
        assert "steps[%d].status" % i in diff, diff
    # The graph and the timeline show that moment too.
    states = node_states(b)
    assert states["plan"] == "completed"
    assert states["search"] == "running"  # one path's search still runs
    assert states["summarize"] == "pending"
    got = {(p, s): st for p, s, st, _ in bars(b)}
    done = next(e["path_id"] for e in events if e["sequence"] == seq)
    assert got[(done, "search")] == "completed"
    assert ("main", "summarize") not in got
    assert b.eval("document.querySelector('#seq-label').textContent"
                  ".includes('step_completed search')")
    b.screenshot(os.path.join(world["shots"], "slider.png"))
    docs = os.environ.get("EVS_CONSOLE_DOCS_SHOT")
    if docs:
        r = b.call("Page.captureScreenshot", {"format": "png"})
        import base64
        with open(docs, "wb") as f:
            f.write(base64.b64decode(r["data"]))


def test_event_json_expands_on_click(world):
    b, _ = world["b"], world["srv"]
    open_exec(world, "demo-1")
    assert b.eval("document.querySelectorAll('#event-rows tr.ev-json')"
                  ".length") == 0
    b.eval("document.querySelector('#event-rows tr[data-seq=\"1\"]')"
           ".click()")
    text = b.wait_for("document.querySelector('#event-rows tr.ev-json pre')"
                      " && document.querySelector('#event-rows tr.ev-json "
                      "pre').textContent", "the expanded event")
    doc = json.loads(text)
    assert doc["event_type"] == "execution_started"
    assert doc["data"]["workflow_name"] == "research_agent"
    b.eval("document.querySelector('#event-rows tr[data-seq=\"1\"]')"
           ".click()")
    b.wait_for("!document.querySelector('#event-rows tr.ev-json')",
               "the event folded again")


def confirm_dialog(b, reason=None, by=None):
    b.wait_for("document.querySelector('#ask').open", "the dialog")
    if reason is not None:
        b.eval("document.querySelector('#ask [name=reason]').value = %s"
               % js(reason))
    if by is not None:
        b.eval("document.querySelector('#ask [name=by]').value = %s"
               % js(by))
    b.eval("document.querySelector('#ask-ok').click()")
    b.wait_for("!document.querySelector('#ask').open", "the dialog closed")


def action_ok(b, what):
    """Waits for the answer to an action the page sent; it must be a
    success."""
    b.wait_for("document.querySelector('#action-result').dataset.outcome",
               what)
    r = b.eval("[document.querySelector('#action-result').dataset.outcome,"
               " document.querySelector('#action-result').textContent]")
    assert r[0] == "ok", r[1]


def test_pause_and_unpause_from_the_page(world):
    b, srv = world["b"], world["srv"]
    open_exec(world, "demo-2")
    assert b.eval("document.querySelector('#exec-head').dataset.status") \
        == "waiting"
    assert node_states(b)["approve"] == "waiting"
    # A cancelled confirmation sends nothing.
    b.eval("document.querySelector('[data-action=pause]').click()")
    b.wait_for("document.querySelector('#ask').open", "the dialog")
    b.eval("document.querySelector('#ask-cancel').click()")
    b.wait_for("!document.querySelector('#ask').open", "the dialog closed")
    assert not any(e["event_type"] == "execution_paused"
                   for e in srv.events("demo-2"))
    # Pause, with a reason and who asks.
    b.eval("document.querySelector('[data-action=pause]').click()")
    confirm_dialog(b, reason="checked from the console test", by="ops-ann")
    action_ok(b, "the pause's answer")
    b.wait_for("document.querySelector('#exec-head').dataset.status === "
               "'paused'", "demo-2 paused on the page", timeout=60)
    paused = [e for e in srv.events("demo-2")
              if e["event_type"] == "execution_paused"]
    assert len(paused) == 1
    assert paused[0]["data"].get("reason") == "checked from the console test"
    assert paused[0]["data"].get("by") == "ops-ann"
    assert srv.get("/v1/executions/demo-2")["status"] == "paused"
    # The page says who paused it, at which step, and why.
    b.wait_for("document.querySelector('#controls [data-kind=paused]')",
               "who paused it, on the page")
    line = b.eval("document.querySelector('#controls [data-kind=paused]')"
                  ".textContent")
    assert "by ops-ann" in line, line
    assert "at step approve" in line, line
    assert "checked from the console test" in line, line
    assert b.eval("document.querySelector('[data-action=pause]').disabled")
    b.screenshot(os.path.join(world["shots"], "paused.png"))
    # Unpause.
    b.eval("document.querySelector('[data-action=unpause]').click()")
    confirm_dialog(b)
    b.wait_for("document.querySelector('#exec-head').dataset.status === "
               "'waiting'", "demo-2 waiting again on the page", timeout=60)
    hist = srv.events("demo-2")
    kinds = [e["event_type"] for e in hist]
    assert kinds.count("execution_resumed") == 1
    assert kinds.index("execution_resumed") > kinds.index("execution_paused")
    assert srv.get("/v1/executions/demo-2")["status"] == "waiting"
    # The dialog remembered who: the unpause is by the same operator.
    resumed = [e for e in hist if e["event_type"] == "execution_resumed"]
    assert resumed[0]["data"].get("by") == "ops-ann"
    b.wait_for("document.querySelector('#controls [data-kind=resumed]')"
               " && document.querySelector('#controls [data-kind=resumed]')"
               ".textContent.includes('by ops-ann')",
               "who unpaused it, on the page")
    # The page's events table has them too.
    b.wait_for("[...document.querySelectorAll('#event-rows tr.ev')]"
               ".some(r => r.textContent.includes('execution_resumed'))",
               "the resume in the events table")


def test_send_event_and_live_update(world):
    """demo-2 waits for its approval: sent from the page, the execution
    runs on in the server's runner, and the open page follows it to its
    end without being reloaded."""
    b, srv = world["b"], world["srv"]
    open_exec(world, "demo-2")
    b.eval("window.__samePage = true")  # gone if the page reloads
    b.eval("document.querySelector('[data-action=send-event]').click()")
    b.wait_for("document.querySelector('#ask').open", "the event dialog")
    # The dialog fills in the event the wait is for.
    assert b.eval("document.querySelector('#ask [name=type]').value") \
        == "approval"
    b.eval("document.querySelector('#ask [name=payload]').value = %s"
           % js('{"approved": true, "by": "console"}'))
    b.eval("document.querySelector('#ask-ok').click()")
    action_ok(b, "the event's answer")
    b.wait_for("document.querySelector('#exec-head').dataset.status === "
               "'completed'", "demo-2 completed on the page", timeout=60)
    assert b.eval("window.__samePage === true")
    got = srv.get("/v1/executions/demo-2")
    assert got["status"] == "completed"
    assert got["outputs"]["approved_by"] == "console"
    b.wait_for("document.querySelector('#graph-svg .node[data-step="
               "summarize]').dataset.state === 'completed'",
               "summarize completed in the graph")
    assert node_states(b)["rejected"] == "pending"
    b.wait_for("document.querySelectorAll('#event-rows tr.ev').length === "
               "%d" % got["last_event_seq"], "every event in the table")
    b.screenshot(os.path.join(world["shots"], "completed-live.png"))


def test_failed_execution(world):
    b, srv = world["b"], world["srv"]
    open_exec(world, "broken-1")
    assert node_states(b) == {"first": "completed", "boom": "failed",
                              "last": "pending"}
    assert b.eval("document.querySelector('#exec-head').dataset.status") \
        == "failed"
    # Pause and terminate make no sense for an execution that ended.
    assert b.eval("document.querySelector('[data-action=pause]').disabled")
    assert b.eval("document.querySelector('[data-action=terminate]')"
                  ".disabled")
    # A retry from its failure, chosen in the dialog, links a new one.
    b.eval("document.querySelector('[data-action=retry]').click()")
    b.wait_for("document.querySelector('#ask').open", "the retry dialog")
    b.eval("document.querySelector('#ask [name=new_id]').value = "
           "'broken-2'")
    b.eval("document.querySelector('#ask-ok').click()")
    action_ok(b, "the retry's answer")
    got = srv.get("/v1/executions/broken-2")
    assert got["lineage"].get("retry_of") == "broken-1", got
    b.wait_for("[...document.querySelectorAll('#lineage li')].map(l => "
               "l.dataset.id).includes('broken-2')",
               "broken-2 in the lineage")


def test_token_asked_once_and_kept(world, tmp_path):
    """A server with a token: the page asks for it, keeps it in
    sessionStorage and sends it as a bearer token. The console's files
    are served without it."""
    token = "console-test-token"
    srv = Server(world["store"], world["env"], token=token,
                 tmp=str(tmp_path))
    b = cdp.Browser(str(tmp_path / "profile"))
    b.debug_expr = DEBUG
    try:
        b.navigate(srv.url + "/console/")
        b.wait_for("document.querySelector('#ask').open && document"
                   ".querySelector('#ask [name=token]')", "the token's "
                   "question")
        b.eval("document.querySelector('#ask [name=token]').value = "
               "'wrong'")
        b.eval("document.querySelector('#ask-ok').click()")
        b.wait_for("document.querySelector('#ask').open && document"
                   ".querySelector('#ask-body').textContent.includes("
                   "'refused')", "the question again, the token refused")
        b.eval("document.querySelector('#ask [name=token]').value = %s"
               % js(token))
        b.eval("document.querySelector('#ask-ok').click()")
        n = srv.get("/v1/executions")["total"]
        b.wait_for("document.querySelectorAll('#exec-rows tr[data-id]')"
                   ".length === %d" % n, "the rows, with the token")
        assert b.eval("sessionStorage.getItem('evstore.token')") == token
        # Kept: another view asks no more.
        b.eval("location.hash = '#/e/demo-1'")
        b.wait_for("document.querySelectorAll('#graph-svg .node').length",
                   "demo-1's graph")
        assert not b.eval("document.querySelector('#ask').open")
        assert b.errors == [], b.errors
    finally:
        b.close()
        assert srv.stop() == 0
