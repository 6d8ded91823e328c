"""Tests of faultproxy, the reverse proxy that makes a real server fail on demand.

Each test starts the proxy as a process of its own (killed by pid at the end,
whatever happens) in front of a small HTTP/1.1 server that runs in this
process and records what reaches it. No cluster and no jobfs are needed.
Every fault mode is checked against a control twin: the same request when
the fault does not apply (another path, the count used up, cleared).

Run: /usr/bin/python3 -m pytest -q tests/sim/test_faultproxy.py
"""
import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "faultproxy.py")
PYTHON = "/usr/bin/python3"
DEADLINE = 10           # s: a bound for anything that takes ~0.1 s
JOBS = b'{"jobs":[{"job_id":1,"job_state":"PENDING"},{"job_id":2,"job_state":"RUNNING"}]}'


def wait_for(pred, timeout=DEADLINE, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# the server behind the proxy

class Upstream(ThreadingHTTPServer):
    """Records each request (method, target, headers in order, body) and the
    connections they came on; answers by path."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), UpstreamHandler)
        self.seen, self.conns, self.lock = [], set(), threading.Lock()
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def last(self):
        with self.lock:
            return self.seen[-1] if self.seen else None

    def count(self):
        with self.lock:
            return len(self.seen)


class UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def log_message(self, *args):
        pass

    def dispatch(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with self.server.lock:
            self.server.seen.append({"method": self.command, "target": self.path,
                                     "headers": list(self.headers.items()), "body": body})
            self.server.conns.add(self.client_address)
        path = self.path.split("?")[0]
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            data = b"" if code in (204, 304) else f"status {code}\n".encode()
            self.reply(code, data, [("Content-Type", "text/plain")], reason="Reason Of Its Own")
        elif path.startswith("/big/"):
            self.reply(200, big(int(path.split("/")[2])), [("Content-Type", "application/octet-stream")])
        elif path == "/chunked":
            self.send_response_only(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"one ", b"two ", b"three\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/closing":
            self.close_connection = True
            self.reply(200, b"bye\n", [("Content-Type", "text/plain"), ("Connection", "close")])
        else:   # /jobs and anything else
            self.reply(200, JOBS, [("Content-Type", "application/json"), ("X-Upstream", "first"),
                                   ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])

    def reply(self, code, data, headers, reason=None):
        self.send_response_only(code, reason)
        for k, v in headers:
            self.send_header(k, v)
        if code not in (204, 304):
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def big(n):
    block = bytes(range(256)) * 4096        # 1 MiB that is not all one byte
    return (block * (n // len(block) + 1))[:n]


# --------------------------------------------------------------------------
# the proxy

class Proxy:
    def __init__(self, tmp_path, target):
        self.ports_file = tmp_path / "proxy-ports.json"
        self.out = open(tmp_path / "proxy.out", "w")
        self.proc = subprocess.Popen([PYTHON, PROXY, "--target", target, "--ports-file",
                                      str(self.ports_file)], stdout=self.out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.ports_file.exists() or self.proc.poll() is not None,
                     what="the proxy to listen")
            assert self.proc.poll() is None, (tmp_path / "proxy.out").read_text()
        except BaseException:
            self.close()
            raise
        self.info = json.loads(self.ports_file.read_text())
        self.port, self.cport = self.info["port"], self.info["control"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=DEADLINE)
        self.out.close()

    def conn(self, port=None):
        return http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=DEADLINE)

    def get(self, target, method="GET", body=None, headers=None):
        """(status, reason, headers, body) of one request on a new connection."""
        c = self.conn()
        try:
            c.request(method, target, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.reason, r.getheaders(), r.read()
        finally:
            c.close()

    def control(self, method, path, value=None, port=None):
        c = self.conn(port or self.cport)
        try:
            data = None if value is None else json.dumps(value).encode()
            c.request(method, path, body=data)
            r = c.getresponse()
            return r.status, json.loads(r.read())
        finally:
            c.close()

    def fault(self, **spec):
        status, value = self.control("POST", "/_proxy/fault", spec)
        assert status == 200, value
        return value

    def stats(self):
        return self.control("GET", "/_proxy/stats")[1]


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.shutdown()
    u.server_close()


@pytest.fixture
def proxy(tmp_path, upstream):
    p = Proxy(tmp_path, upstream.url)
    yield p
    p.close()


def header(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


# --------------------------------------------------------------------------
# passing through

def test_announces_ports_in_file_and_on_stdout(proxy, upstream, tmp_path):
    assert proxy.info["pid"] == proxy.proc.pid
    assert proxy.info["target"] == upstream.url
    assert proxy.port != proxy.cport
    wait_for(lambda: (tmp_path / "proxy.out").read_text().strip(), what="the stdout line")
    assert json.loads((tmp_path / "proxy.out").read_text().splitlines()[0]) == proxy.info


def test_request_reaches_the_server_unchanged(proxy, upstream):
    body = bytes(range(256)) + b"\r\n{not even json"
    c = proxy.conn()
    c.putrequest("PATCH", "/echo/a%20b/?x=1&y=%2F&z", skip_host=True, skip_accept_encoding=True)
    sent = [("Host", "example.invalid:1"), ("X-SLURM-USER-NAME", "root"), ("X-Dup", "1"),
            ("x-lower", "Mixed Case value"), ("X-Dup", "2"), ("Content-Type", "application/json")]
    for k, v in sent:
        c.putheader(k, v)
    c.putheader("Content-Length", str(len(body)))
    c.endheaders(body)
    r = c.getresponse()
    assert r.status == 200 and r.read() == JOBS
    c.close()
    got = upstream.last()
    assert got["method"] == "PATCH"
    assert got["target"] == "/echo/a%20b/?x=1&y=%2F&z"
    assert got["body"] == body
    assert got["headers"] == sent + [("Content-Length", str(len(body)))]
    # twin: a request without a body goes without a Content-Length
    for method in ("GET", "DELETE", "BREW"):
        assert proxy.get("/x?y", method=method)[0] == 200
        assert upstream.last()["method"] == method and upstream.last()["body"] == b""
        assert not header(upstream.last()["headers"], "Content-Length")


def test_reply_comes_back_unchanged(proxy):
    status, reason, headers, body = proxy.get("/jobs")
    assert (status, reason, body) == (200, "OK", JOBS)
    names = [k for k, _ in headers]
    assert names == ["Content-Type", "X-Upstream", "Set-Cookie", "Set-Cookie", "Content-Length"]
    assert header(headers, "Set-Cookie") == ["a=1", "b=2"]
    assert header(headers, "Content-Length") == [str(len(JOBS))]
    # statuses, reasons and bodies of any kind
    status, reason, headers, body = proxy.get("/status/500")
    assert (status, reason, body) == (500, "Reason Of Its Own", b"status 500\n")
    status, reason, headers, body = proxy.get("/status/304")
    assert (status, body) == (304, b"") and not header(headers, "Content-Length")
    status, _, headers, body = proxy.get("/jobs", method="HEAD")
    assert (status, body) == (200, b"") and header(headers, "Content-Length") == [str(len(JOBS))]


def test_chunked_both_ways(proxy, upstream):
    c = proxy.conn()
    c.request("POST", "/jobs", body=iter([b"part one, ", b"part two"]),
              headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    assert c.getresponse().read() == JOBS
    got = upstream.last()
    assert got["body"] == b"part one, part two"
    assert header(got["headers"], "Content-Length") == ["18"]
    assert not header(got["headers"], "Transfer-Encoding")     # hop-by-hop: the proxy's own
    c.request("GET", "/chunked")
    r = c.getresponse()
    assert r.chunked and r.read() == b"one two three\n"
    # twin: a Content-Length reply stays one, on the same connection
    c.request("GET", "/jobs")
    r = c.getresponse()
    assert not r.chunked and r.read() == JOBS
    c.close()


def test_big_reply_is_streamed_whole(proxy):
    n = 24 << 20
    c = proxy.conn()
    c.request("GET", f"/big/{n}")
    r = c.getresponse()
    h, got = hashlib.sha256(), 0
    while chunk := r.read(1 << 20):
        h.update(chunk)
        got += len(chunk)
    c.close()
    assert got == n and h.hexdigest() == hashlib.sha256(big(n)).hexdigest()


def test_keep_alive_one_connection_each_side(proxy, upstream):
    c = proxy.conn()
    for _ in range(3):
        c.request("GET", "/jobs?update_time=5")
        assert c.getresponse().read() == JOBS
    c.close()
    st = proxy.stats()
    assert st["requests"] == 3 and st["connections"] == 1
    assert len(upstream.conns) == 1
    # twin: three connections are counted as three
    for _ in range(3):
        proxy.get("/jobs")
    assert proxy.stats()["connections"] == 4


def test_upstream_that_closes_is_reopened(proxy, upstream):
    c = proxy.conn()
    for _ in range(3):
        c.request("GET", "/closing")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"bye\n"
    c.close()
    assert len(upstream.conns) == 3 and proxy.stats()["upstream_errors"] == 0


def test_unreachable_target_is_502(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()       # nothing listens there now
    p = Proxy(tmp_path, f"http://127.0.0.1:{port}")
    try:
        status, _, _, body = p.get("/jobs")
        assert status == 502 and body.startswith(b"faultproxy: upstream")
        assert p.stats()["upstream_errors"] == 1
    finally:
        p.close()


def test_stats_count_by_path_not_control(proxy):
    proxy.get("/slurm/v0.0.38/jobs")
    proxy.get("/slurm/v0.0.38/jobs?update_time=17")
    proxy.get("/slurm/v0.0.38/job/12")
    proxy.get("/status/304")
    proxy.control("GET", "/_proxy/stats", port=proxy.port)     # control on the proxy's port
    st = proxy.stats()
    assert st["by_path"] == {"/slurm/v0.0.38/jobs": 2, "/slurm/v0.0.38/job/12": 1, "/status/304": 1}
    assert st["requests"] == 4 and st["by_status"] == {"200": 3, "304": 1}
    assert proxy.control("POST", "/_proxy/reset")[1]["requests"] == 0
    assert proxy.stats() == {"requests": 0, "connections": 0, "faulted": 0, "upstream_errors": 0,
                             "by_path": {}, "by_status": {}}


# --------------------------------------------------------------------------
# faults: each mode, with its twin

def test_delay(proxy, upstream):
    proxy.fault(mode="delay", ms=700, paths=["/job/"])
    t0 = time.monotonic()
    assert proxy.get("/slurm/v0.0.38/job/1")[3] == JOBS        # answered normally, late
    slow = time.monotonic() - t0
    t0 = time.monotonic()
    assert proxy.get("/slurm/v0.0.38/jobs")[3] == JOBS         # twin: another path
    fast = time.monotonic() - t0
    assert slow >= 0.7 and fast < 0.5, (slow, fast)
    assert upstream.count() == 2


def test_status(proxy, upstream):
    proxy.fault(mode="status", status=503, body="busy\n")
    status, _, headers, body = proxy.get("/jobs")
    assert (status, body) == (503, b"busy\n")
    assert header(headers, "Content-Type") == ["application/json"]
    assert upstream.count() == 0, "a status fault is not forwarded"
    proxy.fault(mode="status", status=500, content_type="text/plain")
    status, _, headers, body = proxy.get("/jobs")
    assert (status, body) == (500, b"") and header(headers, "Content-Type") == ["text/plain"]
    proxy.fault(mode="none")
    assert proxy.get("/jobs")[:1] == (200,)                     # twin: cleared
    assert proxy.stats()["faulted"] == 2


@pytest.mark.parametrize("text", ["x\ud800", "x\ufffd"], ids=["lone-surrogate", "replacement"])
def test_status_body_is_utf8_as_go_sends_it(proxy, text):
    """A status fault's body from JSON "\\ud800" (a lone surrogate Python
    cannot encode) goes out as U+FFFD, as a Go server sends it, and the
    proxy goes on. Twin: U+FFFD itself, the same bytes."""
    proxy.fault(mode="status", status=500, body=text)
    status, _, _, body = proxy.get("/jobs")
    assert (status, body) == (500, "x\ufffd".encode())
    proxy.fault(mode="none")
    assert proxy.get("/jobs")[0] == 200


@pytest.mark.parametrize("length", ["\u00b2", " 2 "], ids=["superscript-two", "spaced-two"])
def test_content_length_is_ascii_digits(proxy, upstream, length):
    """A Content-Length of "\u00b2" (str.isdigit() says yes, int() says no)
    is a 400, and the proxy goes on. Twin: " 2 " is a length of 2, forwarded."""
    c = proxy.conn()
    try:
        c.putrequest("POST", "/jobs", skip_accept_encoding=True)
        c.putheader("Content-Length", length)
        c.endheaders(b"{}")
        r = c.getresponse()
        status = r.status
        r.read()
    finally:
        c.close()
    if length.strip() == "2":
        assert status == 200 and upstream.last()["body"] == b"{}"
    else:
        assert status == 400 and upstream.count() == 0
    assert proxy.get("/jobs")[0] == 200


def test_close(proxy, upstream):
    proxy.fault(mode="close", count=1)
    c = proxy.conn()
    c.request("GET", "/jobs")
    with pytest.raises(http.client.RemoteDisconnected):
        c.getresponse()
    c.close()
    assert upstream.count() == 0
    assert proxy.get("/jobs")[3] == JOBS                        # twin: the count is used up


def test_cut(proxy, upstream):
    proxy.fault(mode="cut", paths=["/jobs"])
    c = proxy.conn()
    c.request("GET", "/slurm/jobs")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == str(len(JOBS))
    with pytest.raises(http.client.IncompleteRead) as e:
        r.read()
    assert e.value.partial == JOBS[:len(JOBS) // 2]
    c.close()
    assert upstream.count() == 1, "cut forwards: the server saw the request"
    assert proxy.get("/slurm/job/1")[3] == JOBS                 # twin: a path it does not match


def test_garbage(proxy):
    proxy.fault(mode="garbage", count=1)
    assert proxy.get("/jobs")[0::3] == (200, b"not json{{{")
    assert proxy.get("/jobs")[3] == JOBS


def test_truncate(proxy, upstream):
    proxy.fault(mode="truncate", count=2)
    status, _, headers, body = proxy.get("/jobs")
    assert (status, body) == (200, JOBS[:len(JOBS) // 2])
    assert header(headers, "Content-Length") == [str(len(JOBS) // 2)]
    assert header(headers, "X-Upstream") == ["first"], "the real headers"
    status, _, _, body = proxy.get("/status/500")
    assert (status, body) == (200, b"statu"), "a 200 whatever the real status"
    assert proxy.get("/status/500")[0::3] == (500, b"status 500\n")      # twin: count used up


def test_huge_streams_exactly_size_bytes(proxy, upstream):
    size = 5 << 20
    prefix, suffix = '{"jobs":[{"job_id":1,"name":', "}]}"
    proxy.fault(mode="huge", size=size, prefix=prefix, suffix=suffix, paths=["/job/"], count=1)
    c = proxy.conn()
    c.request("GET", "/slurm/v0.0.38/job/1")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == str(size)
    body = r.read()
    c.close()
    assert len(body) == size
    assert body.startswith(prefix.encode() + b'"xxx') and body.endswith(b'xxx"' + suffix.encode())
    doc = json.loads(body)
    assert len(doc["jobs"][0]["name"]) == size - len(prefix) - len(suffix) - 2
    assert upstream.count() == 0
    # the default: one JSON string, and another status when asked
    proxy.fault(mode="huge", size=100, status=500, count=1)
    status, _, _, body = proxy.get("/jobs")
    assert status == 500 and body == b'"' + b"x" * 98 + b'"'
    assert proxy.get("/slurm/v0.0.38/job/1")[3] == JOBS         # twin


def test_huge_a_client_that_gives_up_does_not_stop_the_proxy(proxy):
    proxy.fault(mode="huge", size=1 << 30, count=1)
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=DEADLINE)
    s.sendall(b"GET /jobs HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    s.close()       # after a few bytes of 1 GiB
    assert proxy.get("/jobs")[3] == JOBS
    assert proxy.proc.poll() is None


def test_deep_and_raw(proxy):
    proxy.fault(mode="deep", depth=4, count=1)
    assert proxy.get("/jobs")[0::3] == (200, b"[[[[]]]]")
    raw = b'{"jobs":[{"job_id":1,"name":"\xff\xfe"}]}'
    proxy.fault(mode="raw", body_b64=base64.b64encode(raw).decode(), status=201, count=1)
    assert proxy.get("/jobs")[0::3] == (201, raw)
    assert proxy.get("/jobs")[0::3] == (200, JOBS)              # twin


def test_count_and_path_substrings(proxy, upstream):
    echoed = proxy.fault(mode="status", status=503, count=2, paths=["update_time", "/job/"])
    assert echoed == {"mode": "status", "count": 2, "status": 503, "body": "", "content_type": None,
                      "paths": ["update_time", "/job/"]}
    got = [proxy.get(t)[0] for t in ("/slurm/v0.0.38/jobs", "/slurm/v0.0.38/jobs?update_time=9",
                                     "/slurm/v0.0.38/ping", "/slurm/v0.0.38/job/4",
                                     "/slurm/v0.0.38/job/5")]
    assert got == [200, 503, 200, 503, 200]
    st = proxy.stats()
    assert st["faulted"] == 2 and st["requests"] == 5, "faulted requests are counted too"


def test_down_refuses_until_up(proxy):
    kept = proxy.conn()
    kept.request("GET", "/jobs")
    assert kept.getresponse().read() == JOBS
    assert proxy.control("POST", "/_proxy/down", {})[1] == {"down": None}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=DEADLINE)
    # the kept-alive connection was cut: its next request gets no reply
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        kept.request("GET", "/jobs")
        kept.getresponse()
    kept.close()
    assert proxy.stats()["requests"] == 1, "the control port answers meanwhile"
    assert proxy.control("POST", "/_proxy/up")[1] == {"up": True}
    assert proxy.get("/jobs")[3] == JOBS                        # twin: up again, same port
    assert proxy.control("POST", "/_proxy/up")[1] == {"up": False}


def test_down_for_seconds_comes_back_by_itself(proxy):
    # asked on the proxy's own port: answered, then that port is down
    status, value = proxy.control("POST", "/_proxy/down", {"seconds": 0.5}, port=proxy.port)
    assert (status, value) == (200, {"down": 0.5})
    t0 = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=DEADLINE)

    def answers():
        try:
            return proxy.get("/jobs")[3] == JOBS
        except ConnectionRefusedError:
            return False
    wait_for(answers, what="the port to listen again")
    assert time.monotonic() - t0 < 0.5 + 1.0


@pytest.mark.parametrize("spec,text", [
    ({"mode": "explode"}, '"mode" must be one of'),
    ({"mode": "delay", "ms": -1}, '"ms" must be'),
    ({"mode": "delay", "status": 500}, "unknown parameters"),
    ({"mode": "status", "count": 0}, '"count" must be'),
    ({"mode": "status", "paths": "/job/"}, '"paths" must be a list'),
    ({"mode": "raw", "body_b64": "%%%"}, '"body_b64" must be base64'),
    ({"mode": "huge", "size": 3, "prefix": "{}"}, '"size" must be at least 4'),
])
def test_bad_fault_is_400_and_changes_nothing(proxy, spec, text):
    proxy.fault(mode="garbage", paths=["/nothing-matches-this"])
    status, value = proxy.control("POST", "/_proxy/fault", spec)
    assert status == 400 and text in value["error"], value
    assert proxy.get("/jobs")[3] == JOBS


def test_control_errors(proxy):
    assert proxy.control("GET", "/_proxy/nope")[0] == 404
    assert proxy.control("POST", "/_proxy/down", {"minutes": 1})[0] == 400
    c = proxy.conn(proxy.cport)
    c.request("POST", "/_proxy/fault", body=b"{not json")
    r = c.getresponse()
    assert r.status == 400 and "JSON" in json.loads(r.read())["error"]
    c.request("GET", "/jobs")          # the control port does not forward
    r = c.getresponse()
    assert r.status == 404 and "only" in json.loads(r.read())["error"]
    c.close()
    assert proxy.stats()["requests"] == 0


def test_sigterm_exits_zero(proxy):
    proxy.proc.send_signal(signal.SIGTERM)
    assert proxy.proc.wait(timeout=DEADLINE) == 0
