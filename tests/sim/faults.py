"""faults: what the two fault-injecting test servers share.

jobsim.py (the simulated APIs) and faultproxy.py (a proxy in front of a real
server) both take faults through a JSON control interface and serve HTTP/1.1
with keep-alive, standard library only. This module holds what they have in
common: the checks of control parameters, the fault table and its parsing,
the fault set on a port, the request counters, the replies a fault makes up
(status, garbage, raw, huge, deep), request bodies, and the server that can
stop listening and come back. Where the two differ on purpose, the difference
is a parameter or a method each one defines (see fault_params and Handler).

Both run as scripts (python3 tests/sim/jobsim.py), so this file, next to
them, is found by a plain `import faults`.
"""
import base64
import binascii
import itertools
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 << 10        # write unit for big bodies: few syscalls, little memory


# --------------------------------------------------------------------------
# Control parameters

class ControlError(Exception):
    """A bad control request (/_sim/, /_proxy/): answered with {"error": message}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def int_in(low, high):
    def check(value):
        if type(value) is not int or not low <= value <= high:  # bool is an int subclass
            raise ValueError(f"an integer in {low}..{high}")
        return value
    return check


def number_in(low, high):
    def check(value):
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not low <= value <= high):
            raise ValueError(f"a number in {low}..{high}")
        return value
    return check


def text(value):
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def base64_bytes(value):
    try:
        return base64.b64decode(text(value), validate=True)
    except binascii.Error:
        raise ValueError("base64") from None


def checked(name, check, value):
    """check(value), or a 400 that names the parameter."""
    try:
        return check(value)
    except ValueError as err:
        raise ControlError(400, f'"{name}" must be {err}') from None


DOWN_SECONDS = number_in(0.001, 3600)       # how long a port may be down


# --------------------------------------------------------------------------
# Faults

OWN_REPLIES = ("status", "garbage", "huge", "deep", "raw")     # never ask the real server
GARBAGE = b"not json{{{"


def fault_params(lowest_status, tailored):
    """The fault table: mode -> {parameter: (check, default)}, parameters in
    the order the control reply echoes them.

    lowest_status: the least status a "status" fault may answer with (jobsim:
    200; faultproxy: 100, a real server's every status).
    tailored: the made-up replies can be dressed as the real server's
    (faultproxy): huge and raw take a status, huge a prefix and a suffix
    around its string, and huge and deep a content_type, as status and raw
    always do.
    """
    content_type = {"content_type": (text, None)}
    reply_status = {"status": (int_in(200, 599), 200)} if tailored else {}
    return {
        "none": {}, "close": {}, "cut": {}, "garbage": {}, "truncate": {},
        "delay": {"ms": (number_in(0, 3600_000), 0)},
        "status": {"status": (int_in(lowest_status, 599), 500), "body": (text, ""), **content_type},
        "huge": {"size": (int_in(2, 1 << 40), 64 << 20), **reply_status,
                 **({"prefix": (text, ""), "suffix": (text, ""), **content_type}
                    if tailored else {})},
        "deep": {"depth": (int_in(0, 1 << 32), 100000), **(content_type if tailored else {})},
        "raw": {"body_b64": (base64_bytes, b""), **reply_status, **content_type},
    }


def parse_fault(spec, table):
    """The fault a control request asks for ({"mode", "count"?, "paths"?, ...}),
    checked against table (from fault_params), defaults filled in."""
    if not isinstance(spec, dict) or spec.get("mode") not in table:
        raise ControlError(400, f'"mode" must be one of {sorted(table)}')
    params = table[spec["mode"]]
    unknown = set(spec) - set(params) - {"mode", "count", "paths"}
    if unknown:
        raise ControlError(400, f"unknown parameters for {spec['mode']}: {sorted(unknown)}")
    fault = {"mode": spec["mode"]}
    for name, (check, default) in {"count": (int_in(1, 1 << 62), None), **params}.items():
        fault[name] = checked(name, check, spec[name]) if name in spec else default
    paths = spec.get("paths")
    if paths is not None and (not isinstance(paths, list)
                              or not all(isinstance(p, str) for p in paths)):
        raise ControlError(400, '"paths" must be a list of strings')
    fault["paths"] = paths
    if fault["mode"] == "huge":
        fixed = len(fault.get("prefix", "").encode()) + len(fault.get("suffix", "").encode())
        if fault["size"] < fixed + 2:
            raise ControlError(400, f'"size" must be at least {fixed + 2} with this prefix and suffix')
    return fault


def shown(fault):
    """The fault as the control reply echoes it (no raw bytes)."""
    return {k: v for k, v in fault.items() if k != "body_b64"}


class Faults:
    """The fault set on a port, for its next `count` matching requests.
    lock: the owner's, when it counts under the same lock (reentrant then)."""

    def __init__(self, lock=None):
        self.lock = threading.Lock() if lock is None else lock
        self.fault = None

    def set(self, fault):
        with self.lock:
            self.fault = None if fault["mode"] == "none" else fault

    def take(self, target):
        """The fault for this request (target: what the paths are looked for
        in), if any; counts it down."""
        with self.lock:
            fault = self.fault
            if fault is None or (fault["paths"] is not None
                                 and not any(p in target for p in fault["paths"])):
                return None
            if fault["count"] is not None:
                fault["count"] -= 1
                if fault["count"] == 0:
                    self.fault = None
            return fault


def delay(fault):
    time.sleep(fault["ms"] / 1000)


def filler(byte, count):
    """count copies of a one-byte string, in CHUNK pieces."""
    full, rest = divmod(count, CHUNK)
    yield from itertools.repeat(byte * CHUNK, full)
    if rest:
        yield byte * rest


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8(text):
    """UTF-8 bytes of text.  Lone surrogates (from JSON "\\ud800") become
    U+FFFD, as Go does; Python would refuse to encode them."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return LONE_SURROGATE.sub("\ufffd", text).encode()


def own_reply(fault, content_type):
    """The reply a fault of OWN_REPLIES makes up: (status, content type,
    length, pieces), pieces() giving the body in pieces, never held whole.

    content_type: the port's, unless the fault names one. Texts of the
    fault (a status body, a huge reply's prefix and suffix) go out as utf8()."""
    mode = fault["mode"]
    ctype = fault.get("content_type") or content_type
    if mode == "status":
        body = utf8(fault["body"])
        return fault["status"], ctype, len(body), lambda: (body,)
    if mode == "garbage":
        return 200, ctype, len(GARBAGE), lambda: (GARBAGE,)
    if mode == "raw":
        body = fault["body_b64"]
        return fault.get("status", 200), ctype, len(body), lambda: (body,)
    if mode == "huge":      # one JSON string, prefix and suffix around it: size bytes in all
        size = fault["size"]
        prefix, suffix = utf8(fault.get("prefix", "")), utf8(fault.get("suffix", ""))
        xs = size - len(prefix) - len(suffix) - 2
        return fault.get("status", 200), ctype, size, lambda: itertools.chain(
            (prefix + b'"',), filler(b"x", xs), (b'"' + suffix,))
    depth = fault["depth"]  # deep
    return 200, ctype, 2 * depth, lambda: itertools.chain(filler(b"[", depth),
                                                          filler(b"]", depth))


# --------------------------------------------------------------------------
# Counters

class Counters:
    """Request counters of a port: requests, connections, by path. A
    connection counts once it carries a counted request; after a reset, its
    next request counts it again. The lock is reentrant: a subclass counts
    more under it (its zero() adds its own counters)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.epoch = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.epoch += 1
            self.zero()

    def zero(self):
        self.requests = self.connections = 0
        self.by_path = {}

    def count(self, connection, path):
        """connection: the handler, which keeps the epoch it was counted in."""
        with self.lock:
            self.requests += 1
            if connection.counted_epoch != self.epoch:
                connection.counted_epoch = self.epoch
                self.connections += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1


# --------------------------------------------------------------------------
# HTTP

class BadRequest(Exception):
    """A request whose body cannot be read; the connection is closed."""


class TooLarge(Exception):
    """A request body over the limit."""


class Handler(BaseHTTPRequestHandler):
    """One client connection (HTTP/1.1 keep-alive). Any method goes to
    dispatch(). A subclass says how strict it is and how it answers: it
    defines content_length() (the Content-Length header as a number) and
    chunk_size(line) (a chunk's size line as a number), both raising
    BadRequest, and answer_too_large() and answer_bad_request(message)."""

    protocol_version = "HTTP/1.1"
    # http.server answers a malformed request line in HTTP/0.9, without a
    # status line; real servers answer "HTTP/1.1 400".
    default_request_version = "HTTP/1.1"
    # A reply is at least two writes (headers, body): with Nagle the second
    # waits for the client's delayed ACK, ~40 ms a request on a kept-alive
    # connection.
    disable_nagle_algorithm = True
    counted_epoch = None

    def __getattr__(self, name):
        # any method dispatches: do_GET, do_PUT, do_BREW...
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    def read_body(self, limit):
        """The request body (de-chunked), or None once an error was answered."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self.read_chunked(limit)
            length = self.content_length()
            if length > limit:
                raise TooLarge
            body = self.rfile.read(length)
            if len(body) < length:
                raise BadRequest("short body")
            return body
        except TooLarge:
            self.close_connection = True  # the rest of the body is not read
            self.answer_too_large()
        except BadRequest as err:
            self.answer_bad_request(str(err))
        return None

    def read_chunked(self, limit):
        body = bytearray()
        while True:
            size = self.chunk_size(self.rfile.readline(1024).split(b";")[0].strip())
            if size < 0 or len(body) + size > limit:
                raise TooLarge
            if size == 0:
                break
            body += self.rfile.read(size)
            if self.rfile.read(2) != b"\r\n":
                raise BadRequest("bad chunk")
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # trailers: dropped
        return bytes(body)


class Server(ThreadingHTTPServer):
    """A port that serves, keeps track of its open connections, and can stop
    listening (a server that is down) and listen again on the same port."""

    daemon_threads = True
    request_queue_size = 128
    # serve_forever's poll interval bounds how long going down takes to stop
    # accepting: 50 ms.
    POLL_INTERVAL = 0.05

    def __init__(self, address, handler, name):
        super().__init__(address, handler)
        self.name = name                # of the accepting thread: NAME-accept
        self.connections_lock = threading.Lock()
        self.open_connections = set()

    @property
    def port(self):
        return self.server_address[1]

    def start(self):
        threading.Thread(target=self.serve_forever, args=(self.POLL_INTERVAL,),
                         daemon=True, name=f"{self.name}-accept").start()

    def finish_request(self, request, client_address):
        with self.connections_lock:
            self.open_connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.connections_lock:
                self.open_connections.discard(request)

    def handle_error(self, request, client_address):
        # A client that goes away is normal here (faults, down); anything else
        # is a bug of the server, worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def close_listener(self):
        """Stops accepting and closes the listening socket: connects are refused."""
        self.shutdown()
        self.socket.close()

    def cut_connections(self, keep=None):
        """Cuts the open connections but keep (a socket), so that kept-alive
        clients notice the server went down."""
        with self.connections_lock:
            for connection in self.open_connections - {keep}:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def reopen(self):
        """Listens on the same port again (start() then serves it); OSError
        if the port cannot be had."""
        self.socket = socket.socket(self.address_family, self.socket_type)
        self.server_bind()
        self.server_activate()


# --------------------------------------------------------------------------
# Main

def exit_on_signals():
    """SIGTERM or SIGINT: exit 0."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))


def announce(ports_file, info):
    """Tell the starter where we listen: stdout, and atomically the ports file."""
    line = json.dumps(info)
    if ports_file:
        tmp = f"{ports_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, ports_file)
    print(line, flush=True)
