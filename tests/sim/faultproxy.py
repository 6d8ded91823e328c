#!/usr/bin/python3
"""faultproxy: an HTTP/1.1 reverse proxy in front of a real server, told to fail.

jobsim (jobsim.py) simulates an API and can fail on demand; a real server
(slurmrestd, for the SLURM tests) cannot be made slow, down, or to send
garbage or huge replies when a test asks. This proxy stands in front of one
and passes everything through unchanged until told otherwise:

    faultproxy.py --target http://127.0.0.1:6820 [--port 0] [--ports-file F]

Requests (method, path and query, headers in their order, body) go to the
target as they came, on one kept-alive upstream connection per client
connection; replies (status, reason, headers, body) come back as the target
sent them, streamed. Only the framing is the proxy's own, as in any proxy:
hop-by-hop headers (Connection, Keep-Alive, Transfer-Encoding, TE, Trailer,
Upgrade, Proxy-Connection and those Connection names) are not passed on, a
chunked request body goes upstream with a Content-Length, and a chunked reply
is chunked again. A target that cannot be reached gives a 502 from the proxy.

Control interface, JSON in and out, never forwarded, faulted or counted: the
path prefix /_proxy/ on the proxy's port, and the same on a control port of
its own (which stays up while the proxy's port is down):

  POST /_proxy/fault {"mode", "count"?, "paths"?, ...}  the next `count`
      proxied requests (default: until cleared) whose target (path and
      query, as sent) contains one of `paths` (default: any) get the fault;
      a new fault replaces the old one. Modes, with their parameters:
        none       clear the fault
        delay      ms: wait that long, then forward as usual
        status     status (500), body (""), content_type: answer that, not forwarded
        close      read the request, close the connection without a reply
        cut        forward; the real status and headers, the Content-Length of
                   the real body and its first half, then close
        garbage    200, `not json{{{`
        truncate   forward; status 200, the real headers, the first half of the
                   real body with a Content-Length that says so
        huge       size (64 MiB) bytes in all: prefix (""), one JSON string of
                   x's, suffix (""), streamed, never held; status (200)
        deep       depth (100000): that many `[` then as many `]`
        raw        body_b64: exactly these bytes, status (200)
      content_type defaults to --content-type (application/json: slurmrestd's).
  POST /_proxy/down {"seconds"?}  stop listening on the proxy's port (connects
      are refused, open connections are cut) for that long, or until
      POST /_proxy/up (then only the control port answers)
  POST /_proxy/up                 listen again
  GET  /_proxy/stats   {"requests", "connections", "faulted", "upstream_errors",
                        "by_path": {path without query: N}, "by_status": {"200": N}}
  POST /_proxy/reset   zeroes them

Once listening it writes {"port", "control", "pid", "target"} to --ports-file
(atomically) and prints the same JSON line on stdout. SIGTERM or SIGINT: exit 0.
Standard library only.
"""
import argparse
import base64
import binascii
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 << 10
BODY_MAX = 64 << 20             # a request body; larger ones get a 413
CONTROL_BODY_MAX = 1 << 20
REAL_BODY_MAX = 1 << 30         # cut and truncate hold the real reply whole
UPSTREAM_TIMEOUT = 300          # s: a request the target takes longer with fails (502)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade"}


# --------------------------------------------------------------------------
# Faults

def _int_in(lo, hi):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"an integer in {lo}..{hi}")
        return v
    return check


def _number_in(lo, hi):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ValueError(f"a number in {lo}..{hi}")
        return v
    return check


def _text(v):
    if not isinstance(v, str):
        raise ValueError("a string")
    return v


def _base64(v):
    try:
        return base64.b64decode(_text(v), validate=True)
    except binascii.Error:
        raise ValueError("base64") from None


# mode -> {parameter: (check, default)}
FAULT_PARAMS = {
    "none": {}, "close": {}, "cut": {}, "garbage": {}, "truncate": {},
    "delay": {"ms": (_number_in(0, 3600_000), 0)},
    "status": {"status": (_int_in(100, 599), 500), "body": (_text, ""), "content_type": (_text, None)},
    "huge": {"size": (_int_in(2, 1 << 40), 64 << 20), "status": (_int_in(200, 599), 200),
             "prefix": (_text, ""), "suffix": (_text, ""), "content_type": (_text, None)},
    "deep": {"depth": (_int_in(0, 1 << 32), 100000), "content_type": (_text, None)},
    "raw": {"body_b64": (_base64, b""), "status": (_int_in(200, 599), 200),
            "content_type": (_text, None)},
}


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def parse_fault(spec):
    if not isinstance(spec, dict) or spec.get("mode") not in FAULT_PARAMS:
        raise ControlError(400, f'"mode" must be one of {sorted(FAULT_PARAMS)}')
    params = FAULT_PARAMS[spec["mode"]]
    unknown = set(spec) - set(params) - {"mode", "count", "paths"}
    if unknown:
        raise ControlError(400, f"unknown parameters for {spec['mode']}: {sorted(unknown)}")
    fault = {"mode": spec["mode"]}
    for name, (check, default) in {"count": (_int_in(1, 1 << 62), None), **params}.items():
        try:
            fault[name] = check(spec[name]) if name in spec else default
        except ValueError as err:
            raise ControlError(400, f'"{name}" must be {err}') from None
    paths = spec.get("paths")
    if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
        raise ControlError(400, '"paths" must be a list of strings')
    fault["paths"] = paths
    if fault["mode"] == "huge":
        fixed = len(fault["prefix"].encode()) + len(fault["suffix"].encode())
        if fault["size"] < fixed + 2:
            raise ControlError(400, f'"size" must be at least {fixed + 2} with this prefix and suffix')
    return fault


def shown(fault):
    """The fault as the control reply echoes it (no raw bytes)."""
    return {k: v for k, v in fault.items() if k != "body_b64"}


class State:
    """What the proxy's port and the control port share: the fault, the
    counters, and the proxy's server (for down and up)."""

    def __init__(self, target, content_type):
        self.target = target
        self.content_type = content_type
        self.lock = threading.Lock()
        self.fault = None
        self.proxy = None
        self.down_timer = None
        self.epoch = 0
        self.reset()

    def set_fault(self, fault):
        with self.lock:
            self.fault = None if fault["mode"] == "none" else fault

    def take_fault(self, target):
        """The fault for this request, if any; counts it down."""
        with self.lock:
            f = self.fault
            if f is None or (f["paths"] is not None and not any(p in target for p in f["paths"])):
                return None
            if f["count"] is not None:
                f["count"] -= 1
                if f["count"] == 0:
                    self.fault = None
            self.faulted += 1
            return f

    def reset(self):
        with self.lock:
            self.epoch += 1
            self.requests = self.connections = self.faulted = self.upstream_errors = 0
            self.by_path, self.by_status = {}, {}

    def count(self, handler, path):
        with self.lock:
            self.requests += 1
            if handler.counted_epoch != self.epoch:
                handler.counted_epoch = self.epoch
                self.connections += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1

    def count_status(self, status):
        with self.lock:
            key = str(status)
            self.by_status[key] = self.by_status.get(key, 0) + 1

    def count_upstream_error(self):
        with self.lock:
            self.upstream_errors += 1

    def stats(self):
        with self.lock:
            return {"requests": self.requests, "connections": self.connections,
                    "faulted": self.faulted, "upstream_errors": self.upstream_errors,
                    "by_path": dict(self.by_path), "by_status": dict(self.by_status)}

    def control(self, method, path, body, caller=None):
        """(status, JSON value) of a /_proxy/ request; caller is the handler
        that asked (its own connection is not cut by down)."""
        try:
            parts = path.split("?")[0].split("/")[2:]      # after "", "_proxy"
            if parts == ["stats"] and method == "GET":
                return 200, self.stats()
            if parts == ["reset"] and method == "POST":
                self.reset()
                return 200, self.stats()
            if parts == ["fault"] and method == "POST":
                fault = parse_fault(control_json(body))
                self.set_fault(fault)
                return 200, shown(fault)
            if parts == ["down"] and method == "POST":
                spec = control_json(body) if body.strip() else {}
                if not isinstance(spec, dict) or set(spec) - {"seconds"}:
                    raise ControlError(400, 'down takes {"seconds": S} or nothing')
                seconds = spec.get("seconds")
                if seconds is not None:
                    try:
                        seconds = _number_in(0.001, 3600)(seconds)
                    except ValueError as err:
                        raise ControlError(400, f'"seconds" must be {err}') from None
                self.go_down(seconds, caller)
                return 200, {"down": seconds}
            if parts == ["up"] and method == "POST":
                return 200, {"up": self.come_up()}
            raise ControlError(404, f"unknown control request {method} {path}")
        except ControlError as err:
            return err.status, {"error": str(err)}

    def go_down(self, seconds, caller=None):
        with self.lock:
            if self.down_timer is not None:
                self.down_timer.cancel()
                self.down_timer = None
            if seconds is not None:
                self.down_timer = threading.Timer(seconds, self.come_up)
                self.down_timer.daemon = True
        self.proxy.stop_listening(caller)
        with self.lock:
            if self.down_timer is not None:
                self.down_timer.start()

    def come_up(self):
        """Listens again (if down); whether it was down."""
        with self.lock:
            if self.down_timer is not None:
                self.down_timer.cancel()
                self.down_timer = None
        return self.proxy.listen_again()


def control_json(body):
    try:
        return json.loads(body)
    except ValueError:
        raise ControlError(400, "the body must be JSON") from None


# --------------------------------------------------------------------------
# HTTP

class BadRequest(Exception):
    pass


def filler(byte, count):
    """count copies of a one-byte string, in CHUNK pieces."""
    full, rest = divmod(count, CHUNK)
    block = byte * CHUNK
    for _ in range(full):
        yield block
    if rest:
        yield byte * rest


class Handler(BaseHTTPRequestHandler):
    """One client connection (keep-alive), with its own upstream connection."""

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"
    # a reply is at least two writes: without this the second waits for the
    # client's delayed ACK (~40 ms a request on a kept-alive connection)
    disable_nagle_algorithm = True
    counted_epoch = None
    upstream = None
    proxied = False     # the request being answered is not a control one

    def __getattr__(self, name):
        if name.startswith("do_"):      # any method is forwarded
            return self.dispatch
        raise AttributeError(name)

    def finish(self):
        try:
            super().finish()
        finally:
            self.drop_upstream()

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    # request ----------------------------------------------------------------
    def read_body(self, limit):
        """The request body (de-chunked), or None once an error was answered."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = bytearray()
                while True:
                    line = self.rfile.readline(1024)
                    size = line.split(b";")[0].strip()
                    try:
                        n = int(size, 16)
                    except ValueError:
                        raise BadRequest("bad chunk size") from None
                    if n < 0 or len(body) + n > limit:
                        raise OverflowError
                    if n == 0:
                        break
                    body += self.rfile.read(n)
                    if self.rfile.read(2) != b"\r\n":
                        raise BadRequest("bad chunk")
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass        # trailers: dropped
                return bytes(body)
            length = self.headers.get("Content-Length")
            if length is None:
                return b""
            if not length.strip().isdigit():
                raise BadRequest("bad Content-Length")
            if int(length) > limit:
                raise OverflowError
            body = self.rfile.read(int(length))
            if len(body) < int(length):
                raise BadRequest("short body")
            return body
        except OverflowError:
            self.close_connection = True
            self.answer(413, "text/plain", b"faultproxy: request body too large\n")
        except BadRequest as err:
            self.close_connection = True
            self.answer(400, "text/plain", f"faultproxy: {err}\n".encode())
        return None

    def dispatch(self):
        control = self.path.startswith("/_proxy/")
        self.proxied = not control
        body = self.read_body(CONTROL_BODY_MAX if control else BODY_MAX)
        if body is None:
            return
        if control:
            status, value = self.server.state.control(self.command, self.path, body, self)
            self.answer(status, "application/json", json.dumps(value).encode())
            return
        state = self.server.state
        state.count(self, urllib.parse.urlsplit(self.path).path)
        fault = state.take_fault(self.path)
        mode = fault["mode"] if fault else None
        if mode == "delay":
            time.sleep(fault["ms"] / 1000)
        if mode == "close":
            self.close_connection = True
            return
        if mode in ("status", "garbage", "huge", "deep", "raw"):
            self.fake(fault)
            return
        self.forward(body, mode)

    def forward_headers(self):
        """The request's headers as they came, hop-by-hop ones left out."""
        named = {t.strip().lower() for v in self.headers.get_all("Connection", [])
                 for t in v.split(",")}
        return [(k, v) for k, v in self.headers.items()
                if k.lower() not in HOP_BY_HOP and k.lower() not in named
                and k.lower() != "content-length"]

    def ask_upstream(self, body):
        """Sends the request to the target; its response (headers read).
        A kept-alive upstream connection that the target closed meanwhile is
        reopened once."""
        headers = self.forward_headers()
        send_length = body or "Content-Length" in self.headers or \
            "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        for attempt in (0, 1):
            fresh = self.upstream is None
            if fresh:
                host, port = self.server.target
                self.upstream = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
            try:
                conn = self.upstream
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                if send_length:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body if body else None)
                return conn.getresponse()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.drop_upstream()
                if fresh or attempt:
                    raise

    def drop_upstream(self):
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def forward(self, body, mode):
        state = self.server.state
        try:
            resp = self.ask_upstream(body)
        except (OSError, http.client.HTTPException) as err:
            state.count_upstream_error()
            self.drop_upstream()
            self.answer(502, "text/plain", f"faultproxy: upstream: {err}\n".encode())
            return
        try:
            if mode in ("cut", "truncate"):
                self.broken(resp, mode)
            else:
                self.relay(resp)
        except (OSError, http.client.HTTPException):
            # the target or the client went away mid-reply: this connection ends
            self.drop_upstream()
            self.close_connection = True
            return
        # read to its end: closing it makes the upstream connection ready for
        # the next request (read1 leaves a finished reply open)
        resp.close()
        if resp.will_close:
            self.drop_upstream()

    def reply_headers(self, resp):
        named = {t.strip().lower() for v in resp.msg.get_all("Connection", []) for t in v.split(",")}
        return [(k, v) for k, v in resp.msg.items()
                if k.lower() not in HOP_BY_HOP and k.lower() not in named]

    def start_reply(self, status, reason, headers):
        self.send_response_only(status, reason)
        for k, v in headers:
            self.send_header(k, v)
        if self.proxied:
            self.server.state.count_status(status)

    def relay(self, resp):
        """The target's reply as it is, streamed."""
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        headers = self.reply_headers(resp)
        has_length = any(k.lower() == "content-length" for k, _ in headers)
        chunked = not no_body and resp.chunked
        if chunked:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Transfer-Encoding", "chunked"))
        elif not no_body and not has_length:
            self.close_connection = True        # the body ends when the connection does
        if self.close_connection:
            headers.append(("Connection", "close"))
        self.start_reply(resp.status, resp.reason, headers)
        self.end_headers()
        if no_body:
            resp.read()
            return
        while True:
            data = resp.read1(CHUNK)
            if not data:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def broken(self, resp, mode):
        """cut: the real headers and half the body, then close. truncate: a
        200 with the first half of the body and a length that fits it."""
        data = resp.read(REAL_BODY_MAX)
        half = data[:len(data) // 2]
        headers = [(k, v) for k, v in self.reply_headers(resp) if k.lower() != "content-length"]
        if mode == "cut":
            self.start_reply(resp.status, resp.reason, headers + [("Content-Length", str(len(data)))])
            self.end_headers()
            self.wfile.write(half)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.close_connection:
            headers.append(("Connection", "close"))
        self.start_reply(200, None, headers + [("Content-Length", str(len(half)))])
        self.end_headers()
        self.wfile.write(half)

    # replies of the proxy's own ------------------------------------------------
    def fake(self, fault):
        mode = fault["mode"]
        ctype = fault.get("content_type") or self.server.state.content_type
        if mode == "status":
            self.answer(fault["status"], ctype, fault["body"].encode())
        elif mode == "garbage":
            self.answer(200, ctype, b"not json{{{")
        elif mode == "raw":
            self.answer(fault["status"], ctype, fault["body_b64"])
        elif mode == "huge":
            prefix, suffix = fault["prefix"].encode(), fault["suffix"].encode()
            xs = fault["size"] - len(prefix) - len(suffix) - 2
            self.stream(fault["status"], ctype, fault["size"],
                        [prefix + b'"', *filler(b"x", xs), b'"' + suffix])
        else:   # deep
            depth = fault["depth"]
            self.stream(200, ctype, 2 * depth, [*filler(b"[", depth), *filler(b"]", depth)])

    def answer(self, status, ctype, body):
        self.stream(status, ctype, len(body), [body])

    def stream(self, status, ctype, length, pieces):
        """A reply of the proxy's own: pieces may be a generator (never held whole)."""
        headers = [("Content-Type", ctype), ("Content-Length", str(length))]
        if self.close_connection:
            headers.append(("Connection", "close"))
        self.start_reply(status, None, headers)
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            for piece in pieces:
                self.wfile.write(piece)
        except OSError:
            self.close_connection = True        # the client gave up (a size cap, say)


class ProxyServer(ThreadingHTTPServer):
    """The proxy's port: forwards, and can stop listening (down) and come back."""

    daemon_threads = True
    request_queue_size = 128
    POLL_INTERVAL = 0.05        # serve_forever's: bounds how long down takes to stop accepting

    def __init__(self, address, state, target, verbose):
        super().__init__(address, Handler)
        self.state, self.target, self.verbose = state, target, verbose
        self.listening = True
        self.updown = threading.Lock()
        self.conn_lock = threading.Lock()
        self.open_connections = set()

    @property
    def port(self):
        return self.server_address[1]

    def start(self):
        threading.Thread(target=self.serve_forever, args=(self.POLL_INTERVAL,), daemon=True,
                         name="proxy-accept").start()

    def finish_request(self, request, client_address):
        with self.conn_lock:
            self.open_connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.conn_lock:
                self.open_connections.discard(request)

    def handle_error(self, request, client_address):
        # clients that go away are normal here (faults, down); anything else
        # is a bug of the proxy, worth a traceback
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def stop_listening(self, caller=None):
        """Closes the listening socket (connects are refused) and cuts the
        open connections, so that kept-alive clients notice; a caller on
        this port gets its reply, then its connection closes."""
        with self.updown:
            if not self.listening:
                return
            self.shutdown()
            self.socket.close()
            self.listening = False
            if caller is not None and caller.server is self:
                caller.close_connection = True
            with self.conn_lock:
                for c in list(self.open_connections):
                    if caller is not None and c is caller.connection:
                        continue
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def listen_again(self):
        with self.updown:
            if self.listening:
                return False
            self.socket = socket.socket(self.address_family, self.socket_type)
            self.server_bind()
            self.server_activate()
            self.listening = True
            self.start()
            return True


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, state, verbose):
        super().__init__(address, ControlHandler)
        self.state, self.verbose = state, verbose


class ControlHandler(Handler):
    """The control port: /_proxy/ only."""

    def dispatch(self):
        if not self.path.startswith("/_proxy/"):
            body = self.read_body(CONTROL_BODY_MAX)
            if body is not None:
                self.answer(404, "application/json",
                            json.dumps({"error": "the control port serves /_proxy/ only"}).encode())
            return
        super().dispatch()


# --------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="the real server, http://HOST:PORT")
    p.add_argument("--port", type=int, default=0, help="the proxy's port (0: the kernel picks)")
    p.add_argument("--control-port", type=int, default=0, help="the control port (0: the kernel picks)")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--ports-file", help='write {"port","control","pid","target"} here once listening')
    p.add_argument("--content-type", default="application/json",
                   help="of the proxy's own fault replies (default application/json)")
    p.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = p.parse_args(argv)
    u = urllib.parse.urlsplit(args.target)
    if u.scheme != "http" or not u.hostname or u.path not in ("", "/") or u.query:
        p.error("--target must be http://HOST[:PORT]")
    args.target_addr = (u.hostname, u.port or 80)
    return args


def announce(ports_file, info):
    text = json.dumps(info)
    if ports_file:
        tmp = f"{ports_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, ports_file)
    print(text, flush=True)


def main(argv=None):
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))
    args = parse_args(argv)
    state = State(args.target, args.content_type)
    proxy = ProxyServer((args.bind, args.port), state, args.target_addr, args.verbose)
    control = ControlServer((args.bind, args.control_port), state, args.verbose)
    state.proxy = proxy
    proxy.start()
    threading.Thread(target=control.serve_forever, daemon=True, name="control-accept").start()
    announce(args.ports_file, {"port": proxy.port, "control": control.server_address[1],
                               "pid": os.getpid(), "target": args.target})
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
