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
Standard library only. What it shares with jobsim (the fault table, the made-up
replies, request bodies, the server that goes down) is in faults.py, next to it.
"""
import argparse
import http.client
import json
import os
import re
import signal
import threading
import urllib.parse
from http.server import ThreadingHTTPServer

import faults
from faults import CHUNK, ControlError

BODY_MAX = 64 << 20             # a request body; larger ones get a 413
CONTROL_BODY_MAX = 1 << 20
REAL_BODY_MAX = 1 << 30         # cut and truncate hold the real reply whole
UPSTREAM_TIMEOUT = 300          # s: a request the target takes longer with fails (502)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade"}


# --------------------------------------------------------------------------
# Faults

# mode -> {parameter: (check, default)}: a status fault may answer with any
# status; the made-up replies can be dressed as the target's
FAULT_PARAMS = faults.fault_params(100, tailored=True)


class State(faults.Counters):
    """What the proxy's port and the control port share: the fault, the
    counters (requests, connections, by_path, and the proxy's own), and the
    proxy's server (for down and up), all under one lock."""

    def __init__(self, target, content_type):
        self.target = target
        self.content_type = content_type
        self.proxy = None
        self.down_timer = None
        super().__init__()
        self.faults = faults.Faults(self.lock)

    def set_fault(self, fault):
        self.faults.set(fault)

    def take_fault(self, target):
        """The fault for this request, if any; counts it down."""
        with self.lock:
            f = self.faults.take(target)
            if f is not None:
                self.faulted += 1
            return f

    def zero(self):
        super().zero()
        self.faulted = self.upstream_errors = 0
        self.by_status = {}

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
                fault = faults.parse_fault(control_json(body), FAULT_PARAMS)
                self.set_fault(fault)
                return 200, faults.shown(fault)
            if parts == ["down"] and method == "POST":
                spec = control_json(body) if body.strip() else {}
                if not isinstance(spec, dict) or set(spec) - {"seconds"}:
                    raise ControlError(400, 'down takes {"seconds": S} or nothing')
                seconds = spec.get("seconds")
                if seconds is not None:
                    seconds = faults.checked("seconds", faults.DOWN_SECONDS, seconds)
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

class Handler(faults.Handler):
    """One client connection (keep-alive), with its own upstream connection.
    Any method is forwarded."""

    upstream = None
    proxied = False     # the request being answered is not a control one

    def finish(self):
        try:
            super().finish()
        finally:
            self.drop_upstream()

    # request ----------------------------------------------------------------
    def content_length(self):
        """No Content-Length: no body. Spaces around the digits are allowed."""
        length = self.headers.get("Content-Length")
        if length is None:
            return 0
        if not re.fullmatch(r"[0-9]+", length.strip()):     # str.isdigit() takes "²"
            raise faults.BadRequest("bad Content-Length")
        return int(length)

    @staticmethod
    def chunk_size(size):
        """As Python's int() reads hex; a negative one is too large."""
        try:
            return int(size, 16)
        except ValueError:
            raise faults.BadRequest("bad chunk size") from None

    def answer_too_large(self):
        self.answer(413, "text/plain", b"faultproxy: request body too large\n")

    def answer_bad_request(self, message):
        self.close_connection = True
        self.answer(400, "text/plain", f"faultproxy: {message}\n".encode())

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
            faults.delay(fault)
        if mode == "close":
            self.close_connection = True
            return
        if mode in faults.OWN_REPLIES:
            self.stream(*faults.own_reply(fault, self.server.state.content_type))
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
    def answer(self, status, ctype, body):
        self.stream(status, ctype, len(body), lambda: (body,))

    def stream(self, status, ctype, length, pieces):
        """A reply of the proxy's own: pieces() gives the body (never held whole)."""
        headers = [("Content-Type", ctype), ("Content-Length", str(length))]
        if self.close_connection:
            headers.append(("Connection", "close"))
        self.start_reply(status, None, headers)
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            for piece in pieces():
                self.wfile.write(piece)
        except OSError:
            self.close_connection = True        # the client gave up (a size cap, say)


class ProxyServer(faults.Server):
    """The proxy's port: forwards, and can stop listening (down) and come back."""

    def __init__(self, address, state, target, verbose):
        super().__init__(address, Handler, "proxy")
        self.state, self.target, self.verbose = state, target, verbose
        self.listening = True
        self.updown = threading.Lock()

    def stop_listening(self, caller=None):
        """Closes the listening socket (connects are refused) and cuts the
        open connections, so that kept-alive clients notice; a caller on
        this port gets its reply, then its connection closes."""
        with self.updown:
            if not self.listening:
                return
            self.close_listener()
            self.listening = False
            if caller is not None and caller.server is self:
                caller.close_connection = True
            self.cut_connections(None if caller is None else caller.connection)

    def listen_again(self):
        with self.updown:
            if self.listening:
                return False
            self.reopen()
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


def main(argv=None):
    faults.exit_on_signals()
    args = parse_args(argv)
    state = State(args.target, args.content_type)
    proxy = ProxyServer((args.bind, args.port), state, args.target_addr, args.verbose)
    control = ControlServer((args.bind, args.control_port), state, args.verbose)
    state.proxy = proxy
    proxy.start()
    threading.Thread(target=control.serve_forever, daemon=True, name="control-accept").start()
    faults.announce(args.ports_file, {"port": proxy.port, "control": control.server_address[1],
                                      "pid": os.getpid(), "target": args.target})
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
