"""A small client of the Chrome DevTools Protocol over a pipe.

Chromium started with --remote-debugging-pipe reads the protocol's
commands on its file descriptor 3 and writes answers and events on 4,
each message JSON ended by a NUL byte: no WebSocket is needed, so the
Python standard library is enough. One page target is created and
attached to (flattened sessions); every call waits for its answer with a
time limit, and a page's uncaught exceptions and console errors are kept
so that a test can fail on them.
"""
import base64
import fcntl
import json
import os
import shutil
import subprocess
import threading
import time


def find_chromium():
    """The chromium binary: CHROMIUM if set, else Debian's on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


class CdpError(Exception):
    pass


class Browser:
    """Headless chromium and one page of it."""

    def __init__(self, profile_dir, width=1280, height=900):
        exe = find_chromium()
        if not exe:
            raise CdpError("chromium is not installed (scripts/setup-deps "
                           "installs Debian's chromium)")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        args = [exe, "--headless", "--remote-debugging-pipe",
                "--user-data-dir=" + profile_dir, "--no-first-run",
                "--no-default-browser-check", "--disable-gpu",
                "--disable-extensions", "--disable-background-networking",
                "--disable-sync", "--disable-component-update",
                "--disable-dev-shm-usage", "--hide-scrollbars",
                "--mute-audio", "--window-size=%d,%d" % (width, height),
                "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")

        def child_fds():
            # The pipe's ends become fds 3 and 4 (dup2 clears
            # close-on-exec on the copies; the originals keep it).
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        os.makedirs(profile_dir, exist_ok=True)
        self.log_path = os.path.join(profile_dir, "chromium.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     preexec_fn=child_fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._answers = {}
        self._closed = False
        self.errors = []  # the page's exceptions and console errors
        self.debug_expr = None  # its value is shown when a wait fails
        self.extra_headers = {}  # url substring -> headers (add_headers)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"})
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target["targetId"],
                                  "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height,
                   "deviceScaleFactor": 1, "mobile": False})

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cv:
                    self._closed = True
                    self._cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cv:
                        self._answers[msg["id"]] = msg
                        self._cv.notify_all()
                else:
                    self._event(msg)

    def _event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Fetch.requestPaused":
            req = p["request"]
            headers = dict(req.get("headers", {}))
            for part, extra in self.extra_headers.items():
                if part in req["url"]:
                    headers.update(extra)
            # Answered from the reader thread: sent without waiting.
            self._send("Fetch.continueRequest",
                       {"requestId": p["requestId"],
                        "headers": [{"name": k, "value": v}
                                    for k, v in headers.items()]},
                       msg.get("sessionId"))
            return
        if m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            ex = d.get("exception", {})
            self.errors.append("exception: %s" % (ex.get("description") or
                                                   d.get("text")))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning"):
            self.errors.append("console.%s: %s" % (p["type"], " ".join(
                str(a.get("value", a.get("description", "")))
                for a in p.get("args", []))))

    def _send(self, method, params, session):
        with self._cv:
            self._next_id += 1
            mid = self._next_id
            msg = {"id": mid, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            data = json.dumps(msg).encode() + b"\0"
            while data:
                n = os.write(self._to_child, data)
                data = data[n:]
        return mid

    def add_headers(self, url_part, headers):
        """Adds `headers` to the page's requests whose URL holds
        `url_part` (as a proxy in front of the server would)."""
        self.extra_headers[url_part] = headers
        self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})

    def call(self, method, params=None, timeout=30):
        """Sends one command and returns its result (raises on error)."""
        mid = self._send(method, params, self.session)
        deadline = time.monotonic() + timeout
        with self._cv:
            while mid not in self._answers:
                left = deadline - time.monotonic()
                if self._closed:
                    raise CdpError("chromium went away during %s (see %s)" %
                                   (method, self.log_path))
                if left <= 0:
                    raise CdpError("no answer to %s in %d s" %
                                   (method, timeout))
                self._cv.wait(left)
            ans = self._answers.pop(mid)
        if "error" in ans:
            raise CdpError("%s: %s" % (method, ans["error"]))
        return ans.get("result", {})

    def eval(self, expr, timeout=30):
        """The value of a JavaScript expression in the page (a promise is
        awaited)."""
        r = self.call("Runtime.evaluate",
                      {"expression": expr, "returnByValue": True,
                       "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError("%s: %s" % (expr[:120], d.get("exception", {})
                                       .get("description") or d.get("text")))
        return r.get("result", {}).get("value")

    def wait_for(self, expr, what, timeout=60):
        """Waits until `expr` is truthy in the page; returns its value.
        The condition is checked inside the page every 50 ms."""
        js = """new Promise((resolve, reject) => {
          const end = Date.now() + %d;
          const check = () => {
            let v;
            try { v = (%s); } catch (e) { v = undefined; }
            if (v) return resolve(v instanceof Node ? true : v);
            if (Date.now() > end) return resolve(null);
            setTimeout(check, 50);
          };
          check();
        })""" % (int(timeout * 1000), expr)
        v = self.eval(js, timeout=timeout + 10)
        if not v:
            seen = ""
            if self.debug_expr:
                try:
                    seen = self.eval(self.debug_expr)
                except CdpError as e:
                    seen = str(e)
            raise AssertionError("timed out (%d s) waiting for %s: %s\n"
                                 "page errors: %r\npage: %s" %
                                 (timeout, what, expr, self.errors, seen))
        return v

    def navigate(self, url, timeout=30):
        """Loads `url` and waits until that document has loaded."""
        r = self.call("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CdpError("loading %s: %s" % (url, r["errorText"]))
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.eval("location.href === %s && document.readyState "
                             "=== 'complete'" % json.dumps(url), timeout=10):
                    return
            except CdpError:
                pass  # the old document went away under the question
            if time.monotonic() > deadline:
                raise CdpError("%s did not load in %d s" % (url, timeout))
            time.sleep(0.05)

    def screenshot(self, path):
        """A PNG of the whole page (beyond the viewport too)."""
        r = self.call("Page.captureScreenshot",
                      {"format": "png", "captureBeyondViewport": True},
                      timeout=60)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def close(self):
        if self.proc.poll() is None:
            try:
                self.session = None
                self.call("Browser.close", timeout=10)
            except CdpError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
