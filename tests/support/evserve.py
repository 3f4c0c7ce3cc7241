"""Starting and stopping `evrun serve ... --http 127.0.0.1:0` for the
Python tests of the HTTP API (tests/server) and of the console
(tests/console): the child, and the port it says it listens on."""

import re
import select
import signal
import subprocess
import time


def start(args, cwd=None, env=None, timeout=20):
    """Runs `args` (an `evrun serve` command line with --http
    127.0.0.1:0) and waits for the line naming its address on stderr.
    Returns (process, port); raises AssertionError, with the process
    stopped, when no address comes within `timeout` seconds."""
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    port = None
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline and port is None:
        r, _, _ = select.select([proc.stderr], [], [], 0.5)
        if r:
            line = proc.stderr.readline()
            m = re.search(rb"http://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
            elif not line:
                break
    if port is None:
        stop(proc)
        raise AssertionError("evrun serve did not start: %r" % line)
    return proc, port


def stop(proc):
    """Stops it with SIGTERM (a failure if it does not stop within 20
    seconds) and returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("evrun serve did not stop on SIGTERM")
    proc.stderr.close()
    return proc.returncode
