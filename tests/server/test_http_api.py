"""The HTTP API (server/README.md) as a client sees it: every route, its
filters and pagination, its errors, the token, the bounds, concurrent
requests while the runner works, and a follower (Server-Sent Events)
kept to the end of a running execution.

Each test starts `evrun serve STORE --http 127.0.0.1:0` (EVSTORE_EVRUN,
else build/tools/evrun), reads the port it notes on stderr, and stops it
with SIGTERM at the end (killed if it does not stop in 20 s: that fails
the test). Only loopback addresses are ever sent to.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "support"))
import evserve  # noqa: E402  (tests/support/evserve.py)

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EVRUN = os.environ.get("EVSTORE_EVRUN") or os.path.join(
    TOP, "build", "tools", "evrun")

DEFS = {
    "hello": {"name": "hello", "version": 1,
              "inputs": {"n": {"type": "number"}},
              "steps": [{"name": "a", "kind": "action", "action": "echo",
                         "params": {"n": "${inputs.n}"}, "next": "b"},
                        {"name": "b", "kind": "action", "action": "echo",
                         "params": {"done": True}}]},
    "slow": {"name": "slow", "version": 1,
             "steps": [{"name": "nap", "kind": "action", "action": "sleep",
                        "params": {"ms": 1500}, "next": "after"},
                       {"name": "after", "kind": "action", "action": "echo",
                        "params": {"ok": 1}}]},
    "broken": {"name": "broken", "version": 1,
               "steps": [{"name": "first", "kind": "action",
                          "action": "echo", "params": {}, "next": "boom"},
                         {"name": "boom", "kind": "action", "action": "fail",
                          "params": {"times": 1, "fatal": True},
                          "next": "last"},
                         {"name": "last", "kind": "action", "action": "echo",
                          "params": {"x": 1}}]},
    "approval": {"name": "approval", "version": 1,
                 "steps": [{"name": "ask", "kind": "wait_event",
                            "event": "go", "store": "answer", "next": "done"},
                           {"name": "done", "kind": "action",
                            "action": "echo", "params": {"ok": True}}]},
}


class Server:
    """An `evrun serve --http` child and a client for it."""

    def __init__(self, tmp_path, token=None, extra=()):
        self.store = str(tmp_path / "store")
        self.defs = str(tmp_path / "defs")
        os.makedirs(self.defs, exist_ok=True)
        for name, d in DEFS.items():
            with open(os.path.join(self.defs, name + ".json"), "w") as f:
                json.dump(d, f)
        args = [EVRUN, "serve", self.store, "--create", "--adopt", "50",
                "--http", "127.0.0.1:0", "--definitions", self.defs]
        self.token = token
        if token is not None:
            tf = str(tmp_path / "token")
            with open(tf, "w") as f:
                f.write(token + "\n")
            args += ["--token-file", tf]
        args += list(extra)
        self.proc, self.port = evserve.start(args)

    def request(self, method, path, body=None, token=None, headers=None,
                raw=None):
        """(status, parsed JSON or text, headers)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        tok = self.token if token is None else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        ctype = r.getheader("Content-Type") or ""
        doc = json.loads(text) if ctype.startswith("application/json") \
            else text
        return r.status, doc, r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body if body is not None
                            else {}, **kw)

    def wait_doc(self, path, ready, timeout=20):
        """GETs path until ready(doc) holds; returns the last doc."""
        deadline = time.time() + timeout
        doc = None
        while time.time() < deadline:
            st, doc, _ = self.get(path)
            if st == 200 and ready(doc):
                break
            time.sleep(0.05)
        return doc

    def wait_status(self, eid, want, timeout=20):
        deadline = time.time() + timeout
        doc = None
        while time.time() < deadline:
            st, doc, _ = self.get("/v1/executions/" + eid)
            if st == 200 and doc["status"] in want:
                return doc
            time.sleep(0.05)
        raise AssertionError("%s never reached %s: %r" % (eid, want, doc))

    def wait_listed(self, query, n, timeout=20):
        """Waits until the listing (from snapshots, which a runner writes
        just after an execution's last event) has n rows for query."""
        deadline = time.time() + timeout
        doc = None
        while time.time() < deadline:
            st, doc, _ = self.get("/v1/executions?" + query)
            if st == 200 and doc["total"] == n:
                return doc
            time.sleep(0.05)
        raise AssertionError("listing %s never had %d: %r" % (query, n, doc))

    def stop(self):
        return evserve.stop(self.proc)


@pytest.fixture
def srv(tmp_path):
    s = Server(tmp_path)
    yield s
    assert s.stop() == 0


@pytest.fixture
def tsrv(tmp_path):
    s = Server(tmp_path, token="s3cret-token")
    yield s
    assert s.stop() == 0


def error_of(doc):
    assert set(doc) == {"error"}
    assert set(doc["error"]) == {"code", "message"}
    assert doc["error"]["message"]
    return doc["error"]["code"]


# ---------------------------------------------------------------- auth

def test_token_missing_wrong_and_right(tsrv):
    st, doc, r = tsrv.get("/v1/executions", token="")
    assert st == 401 and error_of(doc) == "unauthorized"
    assert r.getheader("WWW-Authenticate").startswith("Bearer")
    st, doc, _ = tsrv.get("/v1/executions", token="s3cret-tokeN")
    assert st == 401 and "wrong" in doc["error"]["message"]
    st, doc, _ = tsrv.get("/v1/executions", token="s3cret-token-longer")
    assert st == 401
    st, doc, _ = tsrv.get("/v1/executions")
    assert st == 200 and doc["items"] == []
    # Every route but /healthz asks for it, writes too.
    for method, path in [("GET", "/metrics"), ("GET", "/v1/definitions"),
                         ("POST", "/v1/executions"),
                         ("GET", "/v1/executions/x/events"),
                         ("POST", "/v1/executions/x/pause")]:
        st, _, _ = tsrv.request(method, path, token="")
        assert st == 401, path
    st, doc, _ = tsrv.get("/healthz", token="")
    assert st == 200 and doc == {"ok": True}


def test_non_loopback_without_token_is_refused(tmp_path):
    p = subprocess.run([EVRUN, "serve", str(tmp_path / "st"), "--create",
                        "--http", "0.0.0.0:0"], capture_output=True,
                       timeout=30)
    assert p.returncode == 3
    assert b"without a token" in p.stderr
    assert p.stderr.count(b"\n") == 1
    p = subprocess.run([EVRUN, "serve", str(tmp_path / "st"), "--create",
                        "--http", "[::]:0"], capture_output=True, timeout=30)
    assert p.returncode == 3 and b"without a token" in p.stderr


def test_non_loopback_with_token_starts(tmp_path):
    tf = tmp_path / "tok"
    tf.write_text("abc\n")
    p = subprocess.Popen([EVRUN, "serve", str(tmp_path / "st"), "--create",
                          "--http", "0.0.0.0:0", "--token-file", str(tf)],
                         stderr=subprocess.PIPE)
    line = p.stderr.readline()
    assert b"serving the HTTP API on http://0.0.0.0:" in line
    port = int(re.search(rb":(\d+)/", line).group(1))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/v1/executions")
    assert c.getresponse().status == 401
    c.close()
    p.send_signal(signal.SIGTERM)
    assert p.wait(20) == 0
    p.stderr.close()


def test_bad_options_are_usage_errors(tmp_path):
    for args in (["--http", "nonsense"], ["--http", "127.0.0.1:70000"],
                 ["--token-file", "x"]):
        p = subprocess.run([EVRUN, "serve", str(tmp_path / "st"),
                            "--create"] + args, capture_output=True,
                           timeout=30)
        assert p.returncode == 2, args
    empty = tmp_path / "empty"
    empty.write_text("\n")
    p = subprocess.run([EVRUN, "serve", str(tmp_path / "st"), "--create",
                        "--http", "127.0.0.1:0", "--token-file", str(empty)],
                       capture_output=True, timeout=30)
    assert p.returncode == 3 and b"holds no token" in p.stderr


# ---------------------------------------------------------------- errors

def test_unknown_routes_methods_and_bad_ids(srv):
    st, doc, _ = srv.get("/v2/executions")
    assert st == 404 and error_of(doc) == "not_found"
    st, doc, r = srv.request("DELETE", "/v1/executions")
    assert st == 405 and error_of(doc) == "method_not_allowed"
    st, doc, r = srv.get("/v1/executions/x/pause")
    assert st == 405 and r.getheader("Allow") == "POST"
    for bad in ["-leading-dash", "a" * 129, "sp%20ace", "%2e%2e"]:
        st, doc, _ = srv.get("/v1/executions/" + bad)
        assert st in (400, 404), bad
        if st == 400:
            assert error_of(doc) == "EBADID"
    st, doc, _ = srv.get("/v1/executions/-x")
    assert st == 400 and error_of(doc) == "EBADID"
    st, doc, _ = srv.post("/v1/executions/-x/pause")
    assert st == 400
    st, doc, _ = srv.get("/v1/executions/nosuch")
    assert st == 404 and error_of(doc) == "not_found"
    st, doc, _ = srv.get("/v1/executions/nosuch/events")
    assert st == 404
    st, doc, _ = srv.get("/v1/executions/nosuch/follow")
    assert st == 404
    st, doc, _ = srv.post("/v1/executions/nosuch/pause")
    assert st == 404


def test_bodies_over_the_bound_and_headers_over_the_bound(srv):
    # The answer comes before the body is read: the body is not sent.
    import socket
    with socket.create_connection(("127.0.0.1", srv.port), 10) as so:
        so.sendall(b"POST /v1/executions HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % (2 << 20))
        head = so.recv(4096)
    assert head.startswith(b"HTTP/1.1 413 ")
    # Just over the bound, sent whole.
    big = b'{"workflow":"hello","inputs":{"pad":"' + b"x" * (1 << 20) + \
        b'"}}'
    try:
        st, _, _ = srv.request("POST", "/v1/executions", raw=big)
        assert st == 413
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server answered and closed before taking it all
    # At the bound's side: a body that fits is read.
    st, doc, _ = srv.request("POST", "/v1/executions",
                             raw=b'{"workflow":"hello","inputs":{"pad":"' +
                             b"x" * 1000 + b'"}}')
    assert st == 201
    st, doc, _ = srv.get("/v1/executions",
                         headers={"X-Pad": "y" * (20 << 10)})
    assert st == 431 and error_of(doc) == "header_too_large"
    # The server still answers afterwards.
    assert srv.get("/healthz")[0] == 200


def test_bad_bodies(srv):
    for raw in [b"{", b"[1]", b'{"workflow": 3}', b'{"a":1} x']:
        st, doc, _ = srv.request("POST", "/v1/executions", raw=raw)
        assert st == 400, raw
        error_of(doc)
    st, doc, _ = srv.post("/v1/executions", {"workflow": "nope"})
    assert st == 404 and "nope" in doc["error"]["message"]
    st, doc, _ = srv.post("/v1/executions", {"workflow": "hello",
                                             "id": "bad id"})
    assert st == 400 and error_of(doc) == "EBADID"
    st, doc, _ = srv.post("/v1/executions", {"workflow": "hello",
                                             "inputs": {"n": "text"}})
    assert st == 400 and error_of(doc) == "EPARSE"


def test_console_files(tmp_path):
    con = tmp_path / "console"
    con.mkdir()
    (con / "index.html").write_text("<!doctype html><title>evstore</title>")
    (con / "app.js").write_text("console.log(1);")
    (con / ".hidden").write_text("secret")
    (tmp_path / "outside.txt").write_text("outside")
    os.symlink(str(tmp_path / "outside.txt"), str(con / "link.txt"))
    s = Server(tmp_path, token="t0k", extra=["--console", str(con)])
    try:
        st, text, r = s.get("/console/")
        assert st == 200 and "<title>evstore</title>" in text
        assert r.getheader("Content-Type").startswith("text/html")
        st, text, r = s.get("/console/app.js")
        assert st == 200 and r.getheader("Content-Type").startswith(
            "text/javascript")
        for bad in ["/console/.hidden", "/console/link.txt",
                    "/console/../outside.txt", "/console/%2e%2e/outside.txt",
                    "/console/nope.css", "/console/a/b"]:
            st, doc, _ = s.get(bad)
            assert st == 404, bad
        # The console's files without the token (a browser cannot send
        # it with a page); the API still wants it.
        st, text, _ = s.get("/console/", token="")
        assert st == 200 and "<title>evstore</title>" in text
        st, _, _ = s.get("/v1/executions", token="")
        assert st == 401
    finally:
        assert s.stop() == 0


# ---------------------------------------------------------------- create

def test_create_is_idempotent_on_the_id(srv):
    st, doc, _ = srv.post("/v1/executions", {"workflow": "hello",
                                             "id": "h1", "inputs": {"n": 7}})
    assert st == 201 and doc["created"] is True and doc["id"] == "h1"
    assert doc["execution"]["workflow_name"] == "hello"
    assert doc["execution"]["inputs"] == {"n": 7}
    st, doc, _ = srv.post("/v1/executions", {"workflow": "hello",
                                             "id": "h1", "inputs": {"n": 7}})
    assert st == 200 and doc["created"] is False and doc["id"] == "h1"
    st, doc, _ = srv.post("/v1/executions", {"workflow": "hello",
                                             "id": "h1", "inputs": {"n": 8}})
    assert st == 409 and error_of(doc) == "EEXIST"
    st, doc, _ = srv.post("/v1/executions", {"workflow": "slow", "id": "h1"})
    assert st == 409
    done = srv.wait_status("h1", {"completed"})
    assert done["outputs"] == {"done": True}
    # Without an id: a new UUIDv7 each time.
    a = srv.post("/v1/executions", {"workflow": "hello",
                                    "inputs": {"n": 1}})[1]["id"]
    b = srv.post("/v1/executions", {"workflow": "hello",
                                    "inputs": {"n": 1}})[1]["id"]
    assert a != b and len(a) == 36


def test_batch_create(srv):
    st, doc, _ = srv.post("/v1/executions/batch", {"executions": [
        {"workflow": "hello", "id": "b1", "inputs": {"n": 1}},
        {"workflow": "hello", "id": "b2", "inputs": {"n": 2}},
        {"workflow": "missing", "id": "b3"},
        "not an object",
        {"workflow": "hello", "id": "b1", "inputs": {"n": 1}}]})
    assert st == 200
    res = doc["results"]
    assert [r.get("id") for r in res] == ["b1", "b2", None, None, "b1"]
    assert res[0]["created"] and res[1]["created"]
    assert error_of(res[2]) == "not_found"
    assert error_of(res[3]) == "EPARSE"
    assert res[4]["created"] is False
    for eid in ("b1", "b2"):
        srv.wait_status(eid, {"completed"})
    st, doc, _ = srv.post("/v1/executions/batch", {"executions": {}})
    assert st == 400
    st, doc, _ = srv.post("/v1/executions/batch", {"executions": [{}] * 1001})
    assert st == 413


# ---------------------------------------------------------------- listing

def test_list_filters_and_pagination(srv):
    ids = []
    for i in range(7):
        wf = "hello" if i % 2 == 0 else "broken"
        st, doc, _ = srv.post("/v1/executions", {
            "workflow": wf, "id": "L%d" % i,
            **({"inputs": {"n": i}} if wf == "hello" else {})})
        assert st == 201
        ids.append("L%d" % i)
    for i, eid in enumerate(ids):
        srv.wait_status(eid, {"completed"} if i % 2 == 0 else {"failed"})
    srv.wait_listed("status=completed", 4)
    srv.wait_listed("status=failed", 3)
    st, doc, _ = srv.get("/v1/executions")
    assert st == 200 and doc["total"] == 7
    assert [it["id"] for it in doc["items"]] == ids
    assert doc["next_cursor"] is None
    st, doc, _ = srv.get("/v1/executions?status=failed")
    assert [it["id"] for it in doc["items"]] == ["L1", "L3", "L5"]
    assert all(it["status"] == "failed" for it in doc["items"])
    st, doc, _ = srv.get("/v1/executions?workflow=hello&status=completed")
    assert [it["id"] for it in doc["items"]] == ["L0", "L2", "L4", "L6"]
    # Pages of 2, by cursor, see each execution once, in order.
    seen, cursor, pages = [], None, 0
    while True:
        q = "/v1/executions?limit=2" + ("&cursor=" + cursor if cursor else "")
        st, doc, _ = srv.get(q)
        assert st == 200 and len(doc["items"]) <= 2
        seen += [it["id"] for it in doc["items"]]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and pages == 4
    # A filtered page.
    st, doc, _ = srv.get("/v1/executions?status=completed&limit=3")
    assert [it["id"] for it in doc["items"]] == ["L0", "L2", "L4"]
    st, doc2, _ = srv.get("/v1/executions?status=completed&limit=3&cursor=" +
                          doc["next_cursor"])
    assert [it["id"] for it in doc2["items"]] == ["L6"]
    # A created range.
    first = srv.get("/v1/executions/L0")[1]["start_time"]
    st, doc, _ = srv.get("/v1/executions?created_before=" + first)
    assert doc["items"] == []
    st, doc, _ = srv.get("/v1/executions?created_after=2999-01-01T00:00:00Z")
    assert doc["items"] == []
    for bad in ["limit=0", "limit=x", "limit=100000", "cursor=zzz",
                "cursor=12_-bad", "created_after=yesterday"]:
        st, doc, _ = srv.get("/v1/executions?" + bad)
        assert st == 400, bad
        error_of(doc)


# ---------------------------------------------------------------- one

def test_get_shows_failure_point_and_lineage(srv):
    srv.post("/v1/executions", {"workflow": "broken", "id": "f1"})
    doc = srv.wait_status("f1", {"failed"})
    assert doc["failed_at"]["step"] == "boom"
    assert doc["failed_at"]["path"] == "main"
    assert doc["error"] is not None and doc["outputs"] is None
    assert doc["lineage"] == {}
    # retry from the failure: a linked successor in which `first` is not
    # run again (`boom` fails its first attempt again: fatal).
    st, doc, _ = srv.post("/v1/executions/f1/retry",
                          {"strategy": "from_failure", "new_id": "f1r"})
    assert st == 201 and doc["id"] == "f1r" and doc["retry_of"] == "f1"
    done = srv.wait_status("f1r", {"failed"})
    assert done["lineage"]["retry_of"] == "f1"
    assert done["failed_at"]["step"] == "boom"
    st, ev, _ = srv.get("/v1/executions/f1r/events?type=step_started")
    started = [e["step_name"] for e in ev["events"]]
    assert started.count("first") == 1  # inherited, not run again
    st, doc, _ = srv.get("/v1/executions/f1r/lineage")
    assert [(c["id"], c["depth"], c["link"]) for c in doc["chain"]] == [
        ("f1", 0, None), ("f1r", 1, "from_failure")]
    # The same id again is a conflict; a strategy that does not exist
    # or does not apply is bad input.
    st, doc, _ = srv.post("/v1/executions/f1/retry",
                          {"strategy": "from_failure", "new_id": "f1r"})
    assert st == 409
    st, doc, _ = srv.post("/v1/executions/f1/retry", {"strategy": "sideways"})
    assert st == 400
    st, doc, _ = srv.post("/v1/executions/f1/retry", {})
    assert st == 400
    st, doc, _ = srv.post("/v1/executions/f1r/retry",
                          {"strategy": "skip_failed", "output": None,
                           "new_id": "f1s"})
    assert st == 201
    assert srv.wait_status("f1s", {"completed"})["outputs"] == {"x": 1}
    st, doc, _ = srv.post("/v1/executions/f1s/retry",
                          {"strategy": "from_failure"})
    assert st == 400  # it completed: nothing failed


def test_every_retry_strategy(srv):
    srv.post("/v1/executions", {"workflow": "broken", "id": "s0"})
    srv.wait_status("s0", {"failed"})
    cases = [
        ("restart", None, {"new_id": "s-restart"}),
        ("retry", "from_start", {"new_id": "s-start"}),
        ("retry", "from_failure", {"new_id": "s-fail"}),
        ("retry", "skip_failed", {"new_id": "s-skip",
                                  "output": {"skipped": True}}),
        ("retry", "with_new_inputs", {"new_id": "s-new", "inputs": {}}),
        ("retry", "from_seq", {"new_id": "s-seq", "from_seq": 3}),
    ]
    for route, strategy, body in cases:
        if strategy:
            body = dict(body, strategy=strategy)
        st, doc, _ = srv.post("/v1/executions/s0/" + route, body)
        assert st == 201, (route, strategy, doc)
        assert doc["strategy"] == (strategy or "from_start")
        assert doc["execution"]["lineage"]["retry_of"] == "s0"
    assert srv.wait_status("s-skip", {"completed"})["outputs"] == {"x": 1}
    srv.wait_status("s-fail", {"failed"})
    # from_start and restart run the fatal failure again.
    srv.wait_status("s-restart", {"failed"})
    srv.wait_status("s-start", {"failed"})


# ---------------------------------------------------------------- requests

def test_pause_unpause_event_and_terminate(srv):
    srv.post("/v1/executions", {"workflow": "approval", "id": "p1"})
    srv.wait_status("p1", {"waiting", "running"})
    st, doc, _ = srv.post("/v1/executions/p1/pause",
                          {"reason": "looking into it"})
    assert st == 200 and doc == {"id": "p1", "request": "pause",
                                 "accepted": True}
    srv.wait_status("p1", {"paused"})
    st, ev, _ = srv.get("/v1/executions/p1/events?type=execution_paused")
    assert len(ev["events"]) == 1
    assert "looking into it" in json.dumps(ev["events"][0]["data"])
    st, doc, _ = srv.post("/v1/executions/p1/unpause")
    assert st == 200
    ev = srv.wait_doc("/v1/executions/p1/events?type=execution_resumed",
                      lambda d: d["events"])
    assert len(ev["events"]) == 1
    st, doc, _ = srv.post("/v1/executions/p1/signal",
                          {"type": "go", "payload": {"yes": 1}})
    assert st == 200
    done = srv.wait_status("p1", {"completed"})
    assert done["outputs"] == {"ok": True}
    # An execution that ended refuses requests with 409.
    st, doc, _ = srv.post("/v1/executions/p1/terminate", {"reason": "late"})
    assert st == 409 and error_of(doc) == "EFINISHED"
    st, doc, _ = srv.post("/v1/executions/p1/signal", {"payload": 1})
    assert st == 400
    srv.post("/v1/executions", {"workflow": "approval", "id": "p2"})
    srv.wait_status("p2", {"waiting", "running"})
    st, doc, _ = srv.post("/v1/executions/p2/terminate", {"reason": "no"})
    assert st == 200, doc
    assert srv.wait_status("p2", {"terminated"})["status"] == "terminated"


def test_requests_record_who_asked_and_why(srv):
    srv.post("/v1/executions", {"workflow": "approval", "id": "w1"})
    srv.wait_status("w1", {"waiting", "running"})
    # by and reason from the body; a reason may be any JSON.
    st, doc, _ = srv.post("/v1/executions/w1/pause",
                          {"by": "alice", "reason": {"ticket": 42}})
    assert st == 200, doc
    got = srv.wait_status("w1", {"paused"})
    assert got["paused"]["by"] == "alice"
    assert got["paused"]["reason"] == {"ticket": 42}
    assert got["paused"]["step"] == "ask"
    assert got["paused"]["at"] and got["paused"]["seq"] > 0
    assert got["resumed"] is None and got["terminated"] is None
    st, ev, _ = srv.get("/v1/executions/w1/events?type=execution_paused")
    assert ev["events"][0]["data"] == {"reason": {"ticket": 42},
                                       "by": "alice"}
    # No by: the caller's address stands for it.
    st, doc, _ = srv.post("/v1/executions/w1/unpause",
                          {"reason": "fixed"})
    assert st == 200, doc
    got = srv.wait_doc("/v1/executions/w1", lambda d: d["resumed"])
    assert got["resumed"]["by"] == "api:127.0.0.1"
    assert got["resumed"]["reason"] == "fixed"
    assert got["resumed"]["seq"] > got["paused"]["seq"]
    # The last pause stays after its unpause.
    assert got["paused"]["by"] == "alice"
    st, doc, _ = srv.post("/v1/executions/w1/terminate",
                          {"by": "bob", "reason": "enough"})
    assert st == 200, doc
    got = srv.wait_status("w1", {"terminated"})
    assert got["terminated"]["by"] == "bob"
    assert got["terminated"]["reason"] == "enough"
    assert got["terminated"]["seq"] == got["last_event_seq"]
    # A bad by is refused, and nothing is posted.
    srv.post("/v1/executions", {"workflow": "approval", "id": "w2"})
    srv.wait_status("w2", {"waiting", "running"})
    for bad in ({"by": 7}, {"by": ""}, {"by": "x" * 257}):
        st, doc, _ = srv.post("/v1/executions/w2/pause", bad)
        assert st == 400, (bad, doc)
    st, got, _ = srv.get("/v1/executions/w2")
    assert got["status"] != "paused" and got["paused"] is None


# ---------------------------------------------------------------- history

def test_history_filters_state_and_definitions(srv):
    srv.post("/v1/executions", {"workflow": "hello", "id": "h",
                                "inputs": {"n": 3}})
    doc = srv.wait_status("h", {"completed"})
    last = doc["last_event_seq"]
    st, ev, _ = srv.get("/v1/executions/h/events")
    seqs = [e["sequence"] for e in ev["events"]]
    assert st == 200 and seqs == list(range(1, last + 1))
    assert ev["next_from"] is None
    st, ev, _ = srv.get("/v1/executions/h/events?from=2&to=4")
    assert [e["sequence"] for e in ev["events"]] == [2, 3, 4]
    st, ev, _ = srv.get("/v1/executions/h/events?type=step_completed")
    assert [e["step_name"] for e in ev["events"]] == ["a", "b"]
    st, ev, _ = srv.get(
        "/v1/executions/h/events?type=step_started,step_completed&limit=3")
    assert [e["event_type"] for e in ev["events"]] == [
        "step_started", "step_completed", "step_started"]
    assert ev["next_from"] == ev["events"][-1]["sequence"] + 1
    st, ev, _ = srv.get("/v1/executions/h/events?path=main")
    assert len(ev["events"]) == last
    st, ev, _ = srv.get("/v1/executions/h/events?path=elsewhere")
    assert ev["events"] == []
    st, ev, _ = srv.get("/v1/executions/h/events?from=%d" % (last + 5))
    assert st == 200 and ev["events"] == []
    st, doc, _ = srv.get("/v1/executions/h/events?from=5&to=2")
    assert st == 400
    # The replayed state at a sequence, and at the end.
    st, doc, _ = srv.get("/v1/executions/h/state?at=2")
    assert st == 200 and doc["at"] == 2
    assert doc["state"]["status"] == "running"
    st, doc, _ = srv.get("/v1/executions/h/state")
    assert doc["state"]["status"] == "completed"
    st, doc, _ = srv.get("/v1/executions/h/state?at=%d" % (last + 1))
    assert st == 400
    # Definitions: list, get, check.
    st, doc, _ = srv.get("/v1/definitions")
    assert sorted(d["name"] for d in doc["definitions"]) == sorted(DEFS)
    st, doc, _ = srv.get("/v1/definitions/hello")
    assert doc["definition"]["steps"][0]["name"] == "a"
    st, doc, _ = srv.get("/v1/definitions/nothing")
    assert st == 404
    st, doc, _ = srv.post("/v1/definitions/check", {"workflow": "hello"})
    assert st == 200 and doc["checked"] == 0 and doc["would_break"] == 0


def test_definition_check_names_what_breaks(srv):
    srv.post("/v1/executions", {"workflow": "approval", "id": "w1"})
    srv.wait_status("w1", {"waiting", "running"})
    changed = json.loads(json.dumps(DEFS["approval"]))
    changed["steps"][0]["event"] = "other"
    st, doc, _ = srv.post("/v1/definitions/check", changed)
    assert st == 200 and doc["checked"] == 1 and doc["would_break"] == 1
    ex = doc["executions"][0]
    assert ex["id"] == "w1" and ex["verdict"] == "refused"
    assert ex["findings"][0]["refusal"] == "EVS_ENONDET"  # as evrun check
    st, doc, _ = srv.post("/v1/definitions/check", DEFS["approval"])
    assert doc["executions"][0]["verdict"] == "compatible"
    st, doc, _ = srv.post("/v1/definitions/check", {"name": "x"})
    assert st == 400
    srv.post("/v1/executions/w1/terminate")


# ---------------------------------------------------------------- live

def read_sse(port, path, token=None, timeout=30):
    """The events of a follower until the server ends it: [(id, data)]."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type") == "text/event-stream"
    events, cur = [], {}
    for raw in r:
        line = raw.decode().rstrip("\n")
        if not line:
            if cur:
                events.append(cur)
            cur = {}
            continue
        if line.startswith(":"):
            continue
        k, _, v = line.partition(": ")
        cur[k] = v
    c.close()
    return events


def test_follow_a_running_execution_to_its_end(srv):
    st, doc, _ = srv.post("/v1/executions", {"workflow": "slow", "id": "sse"})
    assert st == 201
    events = read_sse(srv.port, "/v1/executions/sse/follow")
    end = events[-1]
    assert end["event"] == "end"
    assert json.loads(end["data"])["reason"] == "ended"
    data = [json.loads(e["data"]) for e in events[:-1]]
    seqs = [d["sequence"] for d in data]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [int(e["id"]) for e in events[:-1]] == seqs
    assert data[-1]["event_type"] == "execution_completed"
    # It was followed while it ran: the sleep's completion came after.
    types = [d["event_type"] for d in data]
    assert types.index("step_started") < types.index("step_completed")
    assert srv.get("/v1/executions/sse")[1]["last_event_seq"] == seqs[-1]
    # An ended execution is replayed to its end at once; from= and
    # type= filter as for the history.
    again = read_sse(srv.port, "/v1/executions/sse/follow?from=3"
                     "&type=step_completed")
    assert [json.loads(e["data"])["step_name"] for e in again[:-1]] == [
        "nap", "after"]


def test_a_follower_that_leaves_does_not_harm_the_server(srv):
    import socket
    srv.post("/v1/executions", {"workflow": "approval", "id": "gone"})
    srv.wait_status("gone", {"waiting", "running"})
    for _ in range(3):
        so = socket.create_connection(("127.0.0.1", srv.port), 10)
        so.sendall(b"GET /v1/executions/gone/follow HTTP/1.1\r\n"
                   b"Host: x\r\n\r\n")
        assert so.recv(4096).startswith(b"HTTP/1.1 200")
        so.close()
    # New events go to nobody, in several writes (the first to a closed
    # socket is answered with a reset, the next fails with EPIPE); the
    # server and its runner go on.
    for req in ("pause", "unpause", "pause", "unpause"):
        time.sleep(0.3)
        assert srv.post("/v1/executions/gone/" + req)[0] == 200
    time.sleep(0.3)
    srv.post("/v1/executions/gone/signal", {"type": "go", "payload": 1})
    assert srv.wait_status("gone", {"completed"})["status"] == "completed"
    time.sleep(0.3)
    assert srv.proc.poll() is None
    assert srv.get("/healthz")[0] == 200


def test_concurrent_requests_while_runners_work(srv):
    errors = []

    def creator(k):
        try:
            for i in range(5):
                st, doc, _ = srv.post("/v1/executions", {
                    "workflow": "hello", "id": "c%d-%d" % (k, i),
                    "inputs": {"n": i}})
                if st != 201:
                    errors.append((st, doc))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    def reader():
        try:
            for _ in range(15):
                for path in ("/v1/executions?limit=5", "/metrics",
                             "/v1/definitions"):
                    st, _, _ = srv.get(path)
                    if st != 200:
                        errors.append((path, st))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=creator, args=(k,)) for k in range(4)]
    ts += [threading.Thread(target=reader) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert errors == []
    for k in range(4):
        for i in range(5):
            doc = srv.wait_status("c%d-%d" % (k, i), {"completed"})
            assert doc["outputs"] == {"done": True}
    srv.wait_listed("workflow=hello&status=completed", 20)


# ---------------------------------------------------------------- metrics

def test_metrics_parse_and_count_a_known_workload(srv):
    parser = pytest.importorskip("prometheus_client.parser")
    for i in range(3):
        srv.post("/v1/executions", {"workflow": "hello", "id": "m%d" % i,
                                    "inputs": {"n": i}})
    srv.post("/v1/executions", {"workflow": "broken", "id": "mf"})
    for i in range(3):
        srv.wait_status("m%d" % i, {"completed"})
    srv.wait_status("mf", {"failed"})
    srv.wait_listed("status=completed", 3)
    srv.wait_listed("status=failed", 1)
    srv.get("/v1/executions/nosuch")
    st, text, r = srv.get("/metrics")
    assert st == 200 and r.getheader("Content-Type").startswith("text/plain")
    fams = {f.name: f for f in parser.text_string_to_metric_families(text)}
    val = {}
    for f in fams.values():
        for s in f.samples:
            val[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert val[("evstore_executions", ())] == 4
    assert val[("evstore_executions_by_status",
                (("status", "completed"),))] == 3
    assert val[("evstore_executions_by_status", (("status", "failed"),))] == 1
    assert val[("evstore_executions_by_workflow",
                (("workflow", "hello"),))] == 3
    events = sum(srv.get("/v1/executions/" + e)[1]["last_event_seq"]
                 for e in ("m0", "m1", "m2", "mf"))
    assert val[("evstore_events", ())] == events
    assert val[("evstore_log_bytes", ())] > 0
    req = "evstore_http_requests_total"
    assert val[(req, (("code", "201"), ("route", "executions.create")))] == 4
    assert val[(req, (("code", "404"), ("route", "executions.get")))] == 1
    assert fams["evstore_http_requests"].type == "counter"
    # The duration histogram counts each answer once, by route.
    hist = "evstore_http_request_duration_seconds"
    assert fams[hist].type == "histogram"
    assert val[(hist + "_count", (("route", "executions.create"),))] == 4
    assert val[(hist + "_bucket", (("le", "+Inf"),
                                   ("route", "executions.create")))] == 4
    buckets = sorted((float(s.labels["le"]), s.value)
                     for s in fams[hist].samples
                     if s.name == hist + "_bucket" and
                     s.labels["route"] == "executions.create")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert val[(hist + "_sum", (("route", "executions.create"),))] > 0
