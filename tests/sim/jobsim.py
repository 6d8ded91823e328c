#!/usr/bin/python3
"""jobsim: simulators of the Bacalhau v0.3 requester API and the muse "ws" API.

One process serves both APIs, each on its own port, for jobfs's integration
tests, benchmark and README demo.  The simulators copy the real servers, quirks
included: Bacalhau is a Go program (text/plain JSON in Go's encoding, a 500 for
an unknown job, Go's decoder error texts); muse is Django (error codes are a
guess, the error body shape is documented).  Tests steer the simulator through
/_sim/ endpoints: they create and change jobs and runs, inject faults, take the
API down for a while and read request counters.

The behaviour is specified in SPEC.md next to this file.  The API facts come
from shared/api/bacalhau.md and shared/api/muse.md.  Only the standard library
is used, so that it runs on a bare Debian 12 /usr/bin/python3.

It runs with nothing to install: what it shares with faultproxy.py (the fault
table, the replies faults make up, request bodies, the server that goes down)
is in faults.py next to it, and the Bacalhau v1 releases in bacalhau_v1.py.
Its sections, in order: JSON as the real servers write it; the E1 JobState in
Go's encoding; Go's JSON decoder (for its error texts); HTTP replies; Bacalhau
jobs, then its API and controls; muse runs, their folders as zip files, then
its API and controls; faults and counters; the HTTP server; the demo scenario;
main.
"""

import argparse
import base64
import binascii
import calendar
import copy
import functools
import heapq
import itertools
import json
import os
import re
import signal
import struct
import sys
import threading
import time
import traceback
import uuid
import zlib
from collections import namedtuple
from functools import partial
from urllib.parse import parse_qs, quote, unquote

import faults
from faults import CHUNK, ControlError, filler, utf8

TEXT_PLAIN = "text/plain; charset=utf-8"
APPLICATION_JSON = "application/json"
CONTROL_BODY_MAX = 1 << 30  # /_sim/ bodies may carry big stdout on purpose


# --------------------------------------------------------------------------
# JSON as the real servers write it

GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
              ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))
ESCAPE_PAIR = re.compile(r"\\.")  # one backslash escape, so "\\b" is not "\b"
GO_SHORT_ESCAPES = {"\\b": "\\u0008", "\\f": "\\u000c"}
COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def go_json(value):
    """Encode value as Go's encoding/json would (Go 1.19, Bacalhau v0.3).

    Compact, UTF-8, with <, >, &, U+2028 and U+2029 escaped.  Go writes \\b and
    \\f as \\u0008 and \\u000c where Python writes the short forms.  Key order is
    the caller's: Go sorts map keys and keeps struct fields in declaration order.
    """
    text = COMPACT.encode(value)
    for char, escaped in GO_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    if "\\b" in text or "\\f" in text:
        text = ESCAPE_PAIR.sub(lambda m: GO_SHORT_ESCAPES.get(m[0], m[0]), text)
    return text


def drf_json(value):
    """Encode value as Django REST framework's JSONRenderer: compact, UTF-8."""
    text = COMPACT.encode(value)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def go_time(ns):
    """A UTC time in Go's RFC3339Nano: trailing zeros of the fraction dropped."""
    seconds, fraction = divmod(ns, 10**9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fraction:
        text += f".{fraction:09d}".rstrip("0")
    return text + "Z"


def utc_ns(year, month, day, hour, minute, second, ns=0):
    return calendar.timegm((year, month, day, hour, minute, second)) * 10**9 + ns


# --------------------------------------------------------------------------
# The E1/E2 JobState, re-encoded the way Go marshals its structs
#
# A state that fits model.JobState (only known fields, right JSON types) is
# sent as Go would send it: struct fields in declaration order, omitempty
# fields dropped when zero, map keys sorted as strings.  Anything else is sent
# as stored, so that tests can inject odd shapes.

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
SHARD_KEY = re.compile(r"0|-?[1-9][0-9]*")


class NotE1(ValueError):
    """A stored state that does not fit Go's model.JobState."""


def _scalar(pytype, zero):
    def codec(value):
        if value is None:  # Go leaves the zero value when decoding null
            return zero
        if type(value) is not pytype:  # bool is an int subclass: compare types
            raise NotE1
        if pytype is int and not INT64_MIN <= value <= INT64_MAX:
            raise NotE1
        return value
    return codec


def _is_empty(value):
    """Go's omitempty test for the kinds used here (scalars, maps, pointers)."""
    return value in (None, False, 0, "") or value == {}


def _struct(*fields):
    """Codec of a Go struct; fields are (json name, codec, omitempty)."""
    names = {name for name, _, _ in fields}

    def codec(value):
        if value is None:
            value = {}
        if not isinstance(value, dict) or not value.keys() <= names:
            raise NotE1
        out = {}
        for name, field_codec, omitempty in fields:
            encoded = field_codec(value.get(name))
            if not (omitempty and _is_empty(encoded)):
                out[name] = encoded
        return out
    return codec


def _pointer(codec):
    """Codec of a Go pointer to a struct: null stays null."""
    return lambda value: None if value is None else codec(value)


def _map(key_ok, codec):
    """Codec of a Go map.  Go sorts keys as strings, even int keys ("10" < "2")."""
    def encode(value):
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(map(key_ok, value)):
            raise NotE1
        return {key: codec(value[key]) for key in sorted(value)}
    return encode


def _is_shard_key(key):
    return SHARD_KEY.fullmatch(key) is not None and INT64_MIN <= int(key) <= INT64_MAX


_str, _bool, _int = _scalar(str, ""), _scalar(bool, False), _scalar(int, 0)
RUN_COMMAND_RESULT = _struct(
    ("stdout", _str, False), ("stdouttruncated", _bool, False),
    ("stderr", _str, False), ("stderrtruncated", _bool, False),
    ("exitCode", _int, False), ("runnerError", _str, False))
STORAGE_SPEC = _struct(
    ("StorageSource", _str, True), ("Name", _str, True), ("CID", _str, True),
    ("URL", _str, True), ("SourcePath", _str, True), ("path", _str, True),
    ("Metadata", _map(lambda key: True, _str), True))
VERIFICATION_RESULT = _struct(("Complete", _bool, True), ("Result", _bool, True))
JOB_SHARD_STATE = _struct(
    ("NodeId", _str, True), ("ShardIndex", _int, True), ("State", _str, True),
    ("Status", _str, True), ("VerificationProposal", _str, True),
    ("VerificationResult", VERIFICATION_RESULT, False),
    ("PublishedResults", STORAGE_SPEC, False),
    ("RunOutput", _pointer(RUN_COMMAND_RESULT), True))
JOB_NODE_STATE = _struct(("Shards", _map(_is_shard_key, JOB_SHARD_STATE), True))
JOB_STATE = _struct(("Nodes", _map(lambda key: True, JOB_NODE_STATE), True))


def job_state_json(state):
    """The JSON text Bacalhau sends for a stored JobState."""
    try:
        return go_json(JOB_STATE(state))
    except NotE1:
        return go_json(state)


# --------------------------------------------------------------------------
# Go's json.Decoder, for its error texts
#
# Bacalhau answers a bad request body with 400 and the decoder's error text,
# and clients may show it, so the texts are Go's.  The decoder reads only the
# first JSON value of the body: bytes after it are ignored.

GO_MAX_DEPTH = 10000
WHITESPACE = " \t\r\n"
DIGITS = "0123456789"


def _quote_char(char):
    """Go's quoteChar: the byte that broke the syntax, as in its messages."""
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    if char.isprintable():
        return f"'{char}'"
    short = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
             "\t": "\\t", "\v": "\\v"}
    if char in short:
        return f"'{short[char]}'"
    return f"'\\x{ord(char):02x}'" if ord(char) < 0x80 else f"'\\u{ord(char):04x}'"


class GoSyntaxError(Exception):
    pass


class GoScanner:
    """Go's JSON scanner (encoding/json/scanner.go), one method per state
    with Go's state names, reduced to what the error texts need.

    step(c) takes one byte (as a Latin-1 character) and returns True when the
    first value ended before it.  A syntax error raises GoSyntaxError.
    """

    def __init__(self):
        self.stack = []  # Go's parseState: "key", "value" (in an object) or "array"
        self.step = self.begin_value
        self.literal = ""  # the literal being read (true, false, null)
        self.expect = ""   # the rest of it
        self.hex_left = 0  # digits still due in a \u escape

    def fail(self, c, context):
        raise GoSyntaxError(f"invalid character {_quote_char(c)} {context}")

    def push(self, c, kind, step):
        self.stack.append(kind)
        if len(self.stack) > GO_MAX_DEPTH:
            self.fail(c, "exceeded max depth")
        self.step = step

    def begin_value(self, c):
        if c in WHITESPACE:
            return
        if c == "{":
            self.push(c, "key", self.begin_string_or_empty)
        elif c == "[":
            self.push(c, "array", self.begin_value_or_empty)
        elif c == '"':
            self.step = self.in_string
        elif c == "-":
            self.step = self.neg
        elif c == "0":
            self.step = self.state0
        elif c in DIGITS:
            self.step = self.state1
        elif c in "tfn":
            self.literal = {"t": "true", "f": "false", "n": "null"}[c]
            self.expect = self.literal[1:]
            self.step = self.in_literal
        else:
            self.fail(c, "looking for beginning of value")

    def begin_value_or_empty(self, c):
        if c in WHITESPACE:
            return
        if c == "]":
            return self.end_value(c)
        return self.begin_value(c)

    def begin_string_or_empty(self, c):
        if c in WHITESPACE:
            return
        if c == "}":
            self.stack[-1] = "value"
            return self.end_value(c)
        return self.begin_string(c)

    def begin_string(self, c):
        if c in WHITESPACE:
            return
        if c != '"':
            self.fail(c, "looking for beginning of object key string")
        self.step = self.in_string

    def end_value(self, c):
        if not self.stack:
            return True
        if c in WHITESPACE:
            self.step = self.end_value
            return
        top = self.stack[-1]
        if top == "key" and c == ":":
            self.stack[-1], self.step = "value", self.begin_value
        elif top == "value" and c == ",":
            self.stack[-1], self.step = "key", self.begin_string
        elif top == "array" and c == ",":
            self.step = self.begin_value
        elif (top, c) in (("value", "}"), ("array", "]")):
            self.stack.pop()
            self.step = self.end_value
        else:
            self.fail(c, {"key": "after object key", "value": "after object key:value pair",
                          "array": "after array element"}[top])

    def in_string(self, c):
        if c == '"':
            self.step = self.end_value
        elif c == "\\":
            self.step = self.in_string_esc
        elif c < " ":
            self.fail(c, "in string literal")

    def in_string_esc(self, c):
        if c == "u":
            self.hex_left, self.step = 4, self.in_string_esc_u
        elif c in 'bfnrt\\/"':
            self.step = self.in_string
        else:
            self.fail(c, "in string escape code")

    def in_string_esc_u(self, c):
        if c not in "0123456789abcdefABCDEF":
            self.fail(c, "in \\u hexadecimal character escape")
        self.hex_left -= 1
        if not self.hex_left:
            self.step = self.in_string

    def neg(self, c):
        if c not in DIGITS:
            self.fail(c, "in numeric literal")
        self.step = self.state0 if c == "0" else self.state1

    def state1(self, c):  # in the integer part, after a non-zero digit
        if c not in DIGITS:
            return self.state0(c)

    def state0(self, c):  # after the integer part
        if c == ".":
            self.step = self.dot
        elif c in "eE":
            self.step = self.exp
        else:
            return self.end_value(c)

    def dot(self, c):
        if c not in DIGITS:
            self.fail(c, "after decimal point in numeric literal")
        self.step = self.dot0

    def dot0(self, c):  # in the fraction
        if c in "eE":
            self.step = self.exp
        elif c not in DIGITS:
            return self.end_value(c)

    def exp(self, c):
        if c in "+-":
            self.step = self.exp_sign
        else:
            self.exp_sign(c)

    def exp_sign(self, c):
        if c not in DIGITS:
            self.fail(c, "in exponent of numeric literal")
        self.step = self.exp0

    def exp0(self, c):
        if c not in DIGITS:
            return self.end_value(c)

    def in_literal(self, c):
        if c != self.expect[0]:
            self.fail(c, f"in literal {self.literal} (expecting {_quote_char(self.expect[0])})")
        self.expect = self.expect[1:]
        if not self.expect:
            self.step = self.end_value


def go_scan(text):
    """Find the end of the first JSON value in text, as Go's json.Decoder does.

    text is the body decoded as Latin-1, one character per byte, because Go
    scans bytes.  Returns (end, None) or (None, Go's error text).
    """
    scanner = GoScanner()
    try:
        for i, c in enumerate(text):
            if scanner.step(c):
                return i, None
    except GoSyntaxError as err:
        return None, str(err)
    try:
        if scanner.step(" "):  # the Decoder's test at EOF: a number may end there
            return len(text), None
    except GoSyntaxError:
        pass
    return None, ("unexpected EOF" if text.strip(WHITESPACE) else "EOF")


class GoNumber(str):
    """A JSON number with a fraction or exponent, kept as written: Go's error
    for it in an int field quotes the literal ("number 1.5")."""


def _go_kind(value):
    if isinstance(value, (GoNumber, int)) and not isinstance(value, bool):
        return "number"
    return {str: "string", bool: "bool", list: "array", dict: "object"}[type(value)]


def _field_error(value, go_type):
    """Go's description of a value that does not fit go_type, or None if it fits."""
    if value is None:  # null leaves the field as it is
        return None
    if go_type == "string":
        return None if type(value) is str else _go_kind(value)
    if go_type == "bool":
        return None if type(value) is bool else _go_kind(value)
    if go_type == "int":
        if type(value) is int and INT64_MIN <= value <= INT64_MAX:
            return None
        return f"number {value}" if _go_kind(value) == "number" else _go_kind(value)
    if not isinstance(value, list):  # a []T of string-like T
        return _go_kind(value)
    bad = next((v for v in value if v is not None and type(v) is not str), None)
    return None if bad is None else _go_kind(bad)


def go_decode(body, struct_name, fields):
    """Decode body into a Go struct as json.NewDecoder(body).Decode(&v) would.

    fields maps JSON names to Go type names.  Returns (values, None) or
    (None, Go's error text).
    """
    end, error = go_scan(body.decode("latin-1"))
    if error:
        return None, error
    try:
        value = json.loads(body[:end].decode("utf-8", "replace"), parse_float=GoNumber)
    except RecursionError:  # Python's nesting limit (~1000) is below Go's 10000
        return None, "exceeded max depth"
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        return None, (f"json: cannot unmarshal {_go_kind(value)} into Go value "
                      f"of type publicapi.{struct_name}")
    return _decode_fields(value, struct_name, fields)


def _decode_fields(value, struct_name, fields):
    decoded, first_error = {}, None
    for key, item in value.items():
        # Go matches keys to field names case-insensitively; casefold is exact
        # for these names (it also folds the Kelvin sign and long s, as Go does).
        name = key.casefold()
        if name not in fields:
            continue
        bad = _field_error(item, fields[name])
        if bad is None:
            if item is not None:
                decoded[name] = item
        elif first_error is None:  # Go reports the first mismatch only
            go_type = fields[name]
            shown = go_type.replace("[]", "", 1) if isinstance(item, list) else go_type
            first_error = (f"json: cannot unmarshal {bad} into Go struct field "
                           f"{struct_name}.{name} of type {shown}")
    return (None, first_error) if first_error else (decoded, None)


# --------------------------------------------------------------------------
# HTTP replies

class Body:
    """A reply body of known length, produced in chunks so that a big one
    (a 100,000-job list, a 64 MiB fault) is never held whole."""

    __slots__ = ("length", "_pieces")

    def __init__(self, length, pieces):
        self.length = length
        self._pieces = pieces  # callable -> iterable of bytes, length in all

    @classmethod
    def of(cls, data):
        return cls(len(data), lambda: (data,))

    def chunks(self, limit=None):
        """The body in writes of about CHUNK bytes, stopping after limit bytes."""
        left = self.length if limit is None else limit
        batch, size = [], 0
        for piece in self._pieces():
            if left <= 0:
                break
            piece = piece[:left]
            left -= len(piece)
            batch.append(piece)
            size += len(piece)
            if size >= CHUNK:
                yield b"".join(batch)
                batch, size = [], 0
        if batch:
            yield b"".join(batch)

    def head(self, length):
        return Body(length, lambda: self.chunks(length))


Reply = namedtuple("Reply", "status headers body")


def reply(status, content_type, data, headers=()):
    return Reply(status, [("Content-Type", content_type), *headers], Body.of(data))


def json_reply(status, value):
    """A /_sim/ reply."""
    return reply(status, APPLICATION_JSON, utf8(json.dumps(value, separators=(",", ":"))))


def go_error(status, message, headers=()):
    """Go's http.Error: text/plain, nosniff, the message and a newline."""
    return reply(status, TEXT_PLAIN, utf8(message + "\n"),
                 [*headers, ("X-Content-Type-Options", "nosniff")])


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def control_json(body):
    """The JSON value of a /_sim/ request body ({} when empty)."""
    if not body.strip():
        return {}
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        raise ControlError(400, f"bad JSON: {err}") from None


def control_object(body, required=()):
    value = control_json(body)
    if not isinstance(value, dict):
        raise ControlError(400, "the body must be a JSON object")
    for name in required:
        if not isinstance(value.get(name), str) or not value[name]:
            raise ControlError(400, f'"{name}" must be a non-empty string')
    return value


# query: the raw query string; headers: the request's (an email.message.Message).
# Only the Bacalhau v1 simulator (bacalhau_v1.py) reads them.
Request = namedtuple("Request", "method path body host query headers", defaults=("", None))


# --------------------------------------------------------------------------
# Bacalhau: jobs

SEED_CLIENT_ID = "ac13188e93c97a9c2e7cf8e86c7313156a73436036f30da1ececc2ce79f9ea51"
SEED_JOB_ID = "9304c616-291f-41ad-b862-54e133c0149e"
SEED_WINNER = "QmdZQ7ZbhnvWY1J12XYKGHApJ6aufKyLNSvf8jZBrBaAVL"
SEED_LOSERS = ("QmSyJ8VUd4YSPwZFJSJsHmmmmg7sd4BAc2yHY73nisJo86",
               "QmYgxZiySj3MRkwLSL4X2MF5F9f2PMhAE3LV49XkfNL1o3")
RUNNING_JOB_ID = "b2c3d4e5-0000-4000-8000-000000000002"
RUNNING_NODE = "QmRunner1111111111111111111111111111111111111a"
BULK_JOB_ID = "00000000-0000-4000-8000-%012d"
BULK_NODE = "QmBu1kNode111111111111111111111111111111111111"
BULK_CREATED_NS = utc_ns(2023, 1, 1, 0, 0, 0)
SHORT_ID_LENGTH = 8  # Bacalhau's model.ShortIDLength: list accepts id prefixes of 8

# The v0.3.18 Job around each listed state (bacalhau.md section 7).  The spec
# is the same small one for every job; jobfs reads only Metadata and Status.
JOB_SPEC_JSON = go_json({
    "Engine": "Docker", "Verifier": "Noop", "Publisher": "Estuary",
    "Docker": {"Image": "ubuntu", "Entrypoint": ["date"]},
    "Language": {"JobContext": {}}, "Wasm": {}, "Resources": {"GPU": ""},
    "Timeout": 1800,
    "outputs": [{"StorageSource": "IPFS", "Name": "outputs", "path": "/outputs"}],
    "Sharding": {"BatchSize": 1, "GlobPatternBasePath": "/inputs"},
    "ExecutionPlan": {"ShardsTotal": 1}, "Deal": {"Concurrency": 1}})
REQUESTER_JSON = go_json({
    "RequesterNodeID": "QmXaXu9N5GNetatsvwnTfQqNtSeKAD6uCmarbh3LMRYAcF",
    # A libp2p RSA-2048 public key (protobuf-wrapped DER), as the requester sends.
    "RequesterPublicKey": (
        "CAASpgIwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDVRKPgCfY2fgfrkHkFjeWcqno+MDpm"
        "p8DgVaY672BqJl/dZFNU9lBg2P8Znh8OTtHPtXUoVmF39UbKBs9t6e7C9kbPPuawVUjLhRvyC/3ufEp6"
        "Rxg3VBLyJWpSU8Y3wXZSyzn2lUHvRQuUR2QgOhaGVB8ZOprJsoBdWnPgGmDGWUBDaJbr8dWnjHDJUZYZ"
        "z1Ho6Ekb0BRoA7LXtbMSfuq2RsaSUfc/nQY8jQZxn6JxwYSavuRi8rX01HwVdeqWeoSMZCfXqmbEprvh"
        "z1p7OFQx6nSLpu/d6Dg2BI+1ha0ZFsSmJMPTr6yPS/Xl5aOkuw5SeiHCsSJC5Rw7Hi3GK8V7AgMBAAE=")})


class BulkState:
    """The state of a --bulk-jobs job, built when asked for: 100,000 stored
    state dicts would cost about 200 MB."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def build(self):
        job_id = BULK_JOB_ID % self.index
        shard = {
            "NodeId": BULK_NODE, "State": "Completed",
            "VerificationResult": {"Complete": True, "Result": True},
            "PublishedResults": {"StorageSource": "IPFS",
                                 "Name": f"job-{job_id}-shard-0-host-{BULK_NODE}"},
            "RunOutput": run_output(stdout=f"job {self.index}\n")}
        return {"Nodes": {BULK_NODE: {"Shards": {"0": shard}}}}


def run_output(stdout="", stderr="", exit_code=0):
    return {"stdout": stdout, "stdouttruncated": False, "stderr": stderr,
            "stderrtruncated": False, "exitCode": exit_code, "runnerError": ""}


Job = namedtuple("Job", "id client_id created_ns state")


def stored_state(job):
    return job.state.build() if isinstance(job.state, BulkState) else job.state


def encoded_state(job):
    if isinstance(job.state, BulkState):  # built in Go's form: skip the slow re-encoding
        return go_json(job.state.build())
    return job_state_json(job.state)


class JobStore:
    """The requester's jobs.  A Job is never changed in place: an update
    stores a new one, so a reader (a list being streamed) sees one version."""

    def __init__(self, default_client_id):
        self.lock = threading.Lock()
        self.jobs = {}  # id -> Job, in creation order (the order list walks)
        self.default_client_id = default_client_id
        self.last_ns = 0

    def put(self, job_id, state, client_id=None, created_ns=None):
        """Create or replace a job.  A replaced job keeps its creation time."""
        with self.lock:
            old = self.jobs.get(job_id)
            if created_ns is None:
                created_ns = old.created_ns if old else self._now_ns()
            if client_id is None:
                client_id = old.client_id if old else self.default_client_id
            job = self.jobs[job_id] = Job(job_id, client_id, created_ns, state)
            return job

    def _now_ns(self):
        # Strictly increasing, so that sort_by created_at follows creation order.
        self.last_ns = max(time.time_ns(), self.last_ns + 1)
        return self.last_ns

    def add_bulk(self, count, client_id):
        with self.lock:
            self.jobs.update(
                (BULK_JOB_ID % i, Job(BULK_JOB_ID % i, client_id,
                                      BULK_CREATED_NS + i * 10**6, BulkState(i)))
                for i in range(count))

    def get(self, job_id):
        return self.jobs.get(job_id)

    def delete(self, job_id):
        with self.lock:
            return self.jobs.pop(job_id, None) is not None

    def find(self, ref):
        """list's lookup by id: exact, or by prefix for an 8-character id."""
        if len(ref) < SHORT_ID_LENGTH:
            return None
        with self.lock:
            job = self.jobs.get(ref)
            if job is None and len(ref) == SHORT_ID_LENGTH:
                job = next((j for j in self.jobs.values() if j.id.startswith(ref)), None)
            return job

    def select(self, client_id, return_all, include_tags, limit, sort_by, reverse):
        """list's selection, as Bacalhau's in-memory localdb makes it."""
        with self.lock:
            jobs = list(self.jobs.values())
        if include_tags:  # tags match Spec.Annotations, and our jobs have none
            return []
        if client_id and not return_all:
            jobs = [job for job in jobs if job.client_id == client_id]
        if limit > 0:
            # Go applies the limit while walking a map, before sorting: which
            # jobs come back is arbitrary there.  Creation order is one of the
            # orders Go may walk in, and it keeps tests deterministic.
            jobs = jobs[:limit]
        if sort_by == "created_at":
            jobs.sort(key=lambda job: (job.created_ns, job.id), reverse=reverse)
        elif sort_by == "id":
            jobs.sort(key=lambda job: job.id, reverse=reverse)
        return jobs

    def change_shard(self, job_id, node, shard, change):
        """Apply change(shard dict) to a copy of the job's state, creating the
        node and shard as Bacalhau's UpdateShardState does, and store it."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise KeyError(job_id)
            state = copy.deepcopy(stored_state(job))
            nodes = _e1_member(state, "Nodes")
            shards = _e1_member(nodes.setdefault(node, {}), "Shards")
            if shard not in shards:
                shards[shard] = {"NodeId": node}
                if _is_shard_key(shard):
                    shards[shard]["ShardIndex"] = int(shard)
            if not isinstance(shards[shard], dict):
                raise ControlError(409, "the shard is not an object")
            change(shards, shard)
            if not shards:
                del nodes[node]
            self.jobs[job_id] = job._replace(state=state)
            return self.jobs[job_id]


def _e1_member(container, name):
    if not isinstance(container, dict):
        raise ControlError(409, "the job's state is not an E1 JobState")
    member = container.setdefault(name, {})
    if not isinstance(member, dict):
        raise ControlError(409, f'"{name}" is not an object')
    return member


def merge_fields(target, fields):
    """Merge fields into target: null removes a key, RunOutput merges key by key."""
    for name, value in fields.items():
        old = target.get(name)
        if value is None:
            target.pop(name, None)
        elif name == "RunOutput" and isinstance(value, dict) and isinstance(old, dict):
            merge_fields(old, value)
        else:
            target[name] = copy.deepcopy(value)


def add_seed_jobs(jobs):
    nodes = {node: {"Shards": {"0": {"NodeId": node, "State": "Cancelled",
                                      "VerificationResult": {}, "PublishedResults": {}}}}
             for node in SEED_LOSERS}
    nodes[SEED_WINNER] = {"Shards": {"0": {
        "NodeId": SEED_WINNER, "State": "Completed",
        "Status": "Got results proposal of length: 0",
        "VerificationResult": {"Complete": True, "Result": True},
        "PublishedResults": {
            "StorageSource": "IPFS",
            "Name": f"job-{SEED_JOB_ID}-shard-0-host-{SEED_WINNER}",
            "CID": "QmTVmC7JBD2ES2qGPqBNVWnX1KeEPNrPGb7rJ8cpFgtefe"},
        "RunOutput": run_output(stdout="Thu Nov 17 13:32:55 UTC 2022\n")}}}
    jobs.put(SEED_JOB_ID, {"Nodes": nodes}, SEED_CLIENT_ID,
             utc_ns(2022, 11, 17, 13, 32, 55, 338372750))
    running = {"NodeId": RUNNING_NODE, "State": "Running", "VerificationResult": {},
               "PublishedResults": {}, "RunOutput": run_output(stdout="step 1\n")}
    jobs.put(RUNNING_JOB_ID, {"Nodes": {RUNNING_NODE: {"Shards": {"0": running}}}},
             SEED_CLIENT_ID, utc_ns(2022, 11, 17, 13, 45, 10, 123456789))


# --------------------------------------------------------------------------
# Bacalhau: the API and its controls

STATE_REQUEST = {"client_id": "string", "job_id": "string"}
LIST_REQUEST = {"id": "string", "client_id": "string",
                "include_tags": "[]model.IncludedTag",
                "exclude_tags": "[]model.ExcludedTag", "max_jobs": "int",
                "return_all": "bool", "sort_by": "string", "sort_reverse": "bool"}


def bacalhau_headers(client_id, job_id):
    # Go writes header names in canonical form (X-Bacalhau-Client-Id).
    return [("X-Bacalhau-Client-Id", client_id), ("X-Bacalhau-Job-Id", job_id)]


class BacalhauAPI:
    """The requester's states and list endpoints (E1 or E2 paths)."""

    name = "bacalhau"
    content_type = TEXT_PLAIN
    body_max = 10 << 20  # the requester's http.MaxBytesHandler

    def __init__(self, jobs, era):
        prefix = "/requester" if era == "e2" else ""
        self.jobs = jobs
        self.states_path = prefix + "/states"
        self.routes = {self.states_path: self.states, prefix + "/list": self.list_jobs}

    def handle(self, req):
        route = self.routes.get(req.path)
        return route(req) if route else go_error(404, "404 page not found")

    def too_large(self):
        return go_error(400, "http: request body too large")

    def job_key(self, req):
        """The job a states request asks for, for the by_job counters."""
        if req.path != self.states_path:
            return None
        query, _ = go_decode(req.body, "stateRequest", STATE_REQUEST)
        return query.get("job_id", "") if query is not None else None

    def states(self, req):
        query, error = go_decode(req.body, "stateRequest", STATE_REQUEST)
        if error:
            return go_error(400, error)
        job_id = query.get("job_id", "")
        headers = bacalhau_headers(query.get("client_id", ""), job_id)
        job = self.jobs.get(job_id)
        if job is None:
            return go_error(500, f"Job not found. ID: {job_id}", headers)
        body = utf8('{"state":' + encoded_state(job) + "}\n")
        return reply(200, TEXT_PLAIN, body, headers)

    def list_jobs(self, req):
        query, error = go_decode(req.body, "listRequest", LIST_REQUEST)
        if error:
            return go_error(400, error)
        ref = query.get("id", "")
        headers = bacalhau_headers(query.get("client_id", ""), ref)
        if ref:
            job = self.jobs.find(ref)
            if job is None:
                return go_error(400, job_not_found_json(ref), headers)
            jobs = [job]
        else:
            jobs = self.jobs.select(
                query.get("client_id", ""), query.get("return_all", False),
                query.get("include_tags"), query.get("max_jobs", 0),
                query.get("sort_by", ""), query.get("sort_reverse", False))
        return Reply(200, [("Content-Type", TEXT_PLAIN), *headers], job_list_body(jobs))

    def control(self, method, parts, body):
        """/_sim/jobs...; None when the path is not one of them."""
        if parts == ["jobs"] and method == "POST":
            spec = control_object(body, required=("id",))
            client_id = spec.get("client_id")
            if client_id is not None and not isinstance(client_id, str):
                raise ControlError(400, '"client_id" must be a string')
            return job_view(self.jobs.put(spec["id"], spec.get("state", {}), client_id))
        if len(parts) not in (2, 3) or parts[0] != "jobs":
            return None
        job_id = parts[1]
        if len(parts) == 2 and method == "GET":
            return job_view(self._job(job_id))
        if len(parts) == 2 and method == "DELETE":
            if not self.jobs.delete(job_id):
                raise ControlError(404, f"no job {job_id}")
            return json_reply(200, {"deleted": job_id})
        if len(parts) == 3 and method == "POST" and parts[2] in ("shard", "append"):
            spec = control_object(body, required=("node",))
            change = shard_change(spec) if parts[2] == "shard" else append_change(spec)
            shard = str(spec.get("shard", "0"))
            try:
                return job_view(self.jobs.change_shard(job_id, spec["node"], shard, change))
            except KeyError:
                raise ControlError(404, f"no job {job_id}") from None
        return None

    def _job(self, job_id):
        job = self.jobs.get(job_id)
        if job is None:
            raise ControlError(404, f"no job {job_id}")
        return job


def job_not_found_json(job_id):
    """bacerrors.ErrorToErrorResponse of a JobNotFound, as list sends it."""
    message = f"Job not found. ID: {job_id}"
    return go_json({"Code": "error-job-not-found", "Message": message,
                    "Details": {"id": job_id}, "Err": message})


def job_list_json(job):
    """One Job of a list reply, v0.3.18 shape."""
    metadata = go_json({"ID": job.id, "CreatedAt": go_time(job.created_ns),
                        "ClientID": job.client_id})
    return ('{"APIVersion":"V1beta1","Metadata":' + metadata + ',"Spec":' + JOB_SPEC_JSON
            + ',"Status":{"JobState":' + encoded_state(job)
            + ',"Requester":' + REQUESTER_JSON + "}}")


def job_list_body(jobs):
    """{"jobs":[...]} streamed in two passes (one to measure, one to send):
    100,000 jobs make ~160 MB of JSON that is never held whole.  Jobs are
    immutable, so both passes produce the same bytes."""
    def pieces():
        yield b'{"jobs":['
        for n, job in enumerate(jobs):
            yield utf8(("," if n else "") + job_list_json(job))
        yield b"]}\n"
    return Body(sum(map(len, pieces())), pieces)


def job_view(job):
    return json_reply(200, {"id": job.id, "client_id": job.client_id,
                            "created_at": go_time(job.created_ns),
                            "state": stored_state(job)})


def shard_change(spec):
    fields = spec.get("fields", {})
    if not isinstance(fields, dict):
        raise ControlError(400, '"fields" must be an object')
    if spec.get("delete"):
        return lambda shards, shard: shards.pop(shard)
    return lambda shards, shard: merge_fields(shards[shard], fields)


def append_change(spec):
    stream, data = spec.get("stream"), spec.get("data")
    if stream not in ("stdout", "stderr") or not isinstance(data, str):
        raise ControlError(400, '"stream" must be stdout or stderr and "data" a string')

    def change(shards, shard):
        output = shards[shard].get("RunOutput")
        if not isinstance(output, dict):
            output = shards[shard]["RunOutput"] = {}
        old = output.get(stream)
        output[stream] = (old if isinstance(old, str) else "") + data
    return change


# --------------------------------------------------------------------------
# muse: runs

CR_PROCESS = {"WAIT": ("IN_PROGRESS", "RUNNING"), "OK": ("ENDED_OK", "COMPLETED"),
              "NOK": ("ENDED_NOK", "FAILED")}  # cr -> (latest_cr, latest_state)
# "request" comes before the fields that change it (returned_type, todownload)
RUN_FIELDS = ("cr", "latest_cr", "latest_state", "job_id", "jobname", "stdout",
              "stdout_b64", "request", "returned_type", "todownload", "rsrc",
              "result_size", "result_content_type")
EXAMPLE_REQUEST = {"cmd": "python /add.py 4 5", "cmd_option": "",
                   "ordered_filename_list": [], "returned_type": "stdout",
                   "todownload": False, "sbatch_list": [], "module_list": []}
SW_EXAMPLE = {"name": "sw_example", "info": {"sw": {
    "desc": "software example (addition, in python code)", "shortname": "sw_example",
    "urls": {"language": "https://www.python.org",
             "sw_example documentation": "http://127.0.0.1/softwares/sw_example/home.html"},
    "keywords": ["addition", "python", "example"]}}}
ZIP_DATE = (2021, 1, 19, 13, 6, 2)  # zip member dates are fixed: equal runs, equal bytes
RESULT_SIZE_MAX = 1 << 31  # result_size: the zips stay below 4 GiB, so no zip64
RUN_FOLDER_NS = uuid.UUID("6f1a2c3e-5b4d-4e6f-8a9b-0c1d2e3f4a5b")  # run folder names


class RunStore:
    """muse's software list, runs, run reports and download keys.  A run
    record is replaced, never changed in place, so a reader always sees one
    version."""

    def __init__(self, software):
        self.lock = threading.Lock()
        self.software = list(software)
        self.runs = {}  # (name, key) -> record
        self.reports = {}  # (name, key) -> __WS__report.txt, once written
        self.downloads = {}  # download key -> (name, key)
        self.job_ids = itertools.count(2459397)  # after the seed's SLURM job ids
        self.request_ids = itertools.count(117)  # after the seed's 114-116-ws-...

    def put(self, name, key, fields):
        """Create or replace a run; what fields leave out gets a default.  A
        replaced run is a new submission: its folder has no report yet."""
        with self.lock:
            record = {"cr": "WAIT", "job_id": next(self.job_ids),
                      "jobname": f"{next(self.request_ids)}-ws-{name}", "stdout": "",
                      "request": copy.deepcopy(EXAMPLE_REQUEST), "rsrc": {"identity": "muse"}}
            record["latest_cr"], record["latest_state"] = CR_PROCESS["WAIT"]
            self.runs[name, key] = apply_run_fields(record, fields)
            self.reports.pop((name, key), None)
            if name not in self.software:
                self.software.append(name)
            return self.runs[name, key]

    def update(self, name, key, fields):
        with self.lock:
            if (name, key) not in self.runs:
                raise ControlError(404, f"no run {name}/{key}")
            self.runs[name, key] = apply_run_fields(dict(self.runs[name, key]), fields)
            return self.runs[name, key]

    def get(self, name, key):
        return self.runs.get((name, key))

    def delete(self, name, key):
        with self.lock:
            self.reports.pop((name, key), None)
            return self.runs.pop((name, key), None) is not None

    def set_software(self, names):
        with self.lock:
            self.software = list(names)

    def software_names(self):
        with self.lock:
            return list(self.software)

    def write_report(self, name, key, text):
        with self.lock:
            if (name, key) in self.runs:
                self.reports[name, key] = text

    def report_text(self, name, key):
        with self.lock:
            return self.reports.get((name, key))

    def new_download(self, name, key):
        """A download key, YYYYMMDD_HHMMSS_<uuid4> (muse.md section 5)."""
        dkey = time.strftime("%Y%m%d_%H%M%S_", time.gmtime()) + str(uuid.uuid4())
        with self.lock:
            self.downloads[dkey] = (name, key)
        return dkey

    def download(self, dkey):
        with self.lock:
            return self.downloads.get(dkey)


def _todownload(value):
    """The POST's 'yes'/'no', or the report's boolean."""
    if isinstance(value, bool):
        return value
    if value in ("yes", "no"):
        return value == "yes"
    raise ControlError(400, '"todownload" must be true, false, "yes" or "no"')


def _run_field(record, name, value):
    """Checks and sets one control field of a run record."""
    if name in ("returned_type", "todownload"):
        if not isinstance(record["request"], dict):
            raise ControlError(400, f'"{name}" needs "request" to be an object')
        value = _todownload(value) if name == "todownload" else value
        record["request"] = {**record["request"], name: value}
    elif name == "stdout_b64":
        try:
            data = base64.b64decode(faults.text(value), validate=True)
        except (ValueError, binascii.Error):
            raise ControlError(400, '"stdout_b64" must be base64') from None
        record["stdout_b64"] = value
        record["stdout"] = data.decode("utf-8", "replace")
    elif name == "stdout":
        record.pop("stdout_b64", None)
        record["stdout"] = copy.deepcopy(value)
    elif name == "result_size":
        if value is not None and (type(value) is not int or not 0 <= value <= RESULT_SIZE_MAX):
            raise ControlError(400, f'"result_size" must be null or 0..{RESULT_SIZE_MAX}')
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value
    elif name == "result_content_type":
        if value is not None and not isinstance(value, str):
            raise ControlError(400, '"result_content_type" must be null or a string')
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value
    else:
        record[name] = copy.deepcopy(value)


def apply_run_fields(record, fields):
    """Set a run's fields.  A new cr brings its latest_cr and latest_state
    unless they are given too, so that a test can say just "cr": "OK"."""
    unknown = set(fields) - set(RUN_FIELDS) - {"name", "key"}
    if unknown:
        raise ControlError(400, f"unknown run fields: {sorted(unknown)}")
    if "stdout" in fields and "stdout_b64" in fields:
        raise ControlError(400, 'give "stdout" or "stdout_b64", not both')
    if "cr" in fields:
        cr = fields["cr"]
        known = isinstance(cr, str) and cr in CR_PROCESS  # tests may set odd values
        record["latest_cr"], record["latest_state"] = CR_PROCESS[cr] if known else ("", "")
    for name in RUN_FIELDS:
        if name in fields:
            _run_field(record, name, fields[name])
    return record


def stdout_bytes(run):
    """The run's stdout as its file holds it: stdout_b64 when set, else stdout
    in UTF-8 (the JSON reply carries it as text)."""
    if "stdout_b64" in run:
        return base64.b64decode(run["stdout_b64"])
    return utf8(str(run["stdout"]))


def add_seed_runs(runs):
    runs.set_software(["sw_example", "sw_other"])
    seed = (("58ae6cea-df31-4059-9466-b817c337985d", "OK", 2459394, 114, "9.0\n"),
            ("11111111-1111-4111-8111-111111111111", "WAIT", 2459395, 115, ""),
            ("22222222-2222-4222-8222-222222222222", "NOK", 2459396, 116, ""))
    for key, cr, job_id, request_id, stdout in seed:
        runs.put("sw_example", key, {"cr": cr, "job_id": job_id, "stdout": stdout,
                                     "jobname": f"{request_id}-ws-sw_example"})


# --------------------------------------------------------------------------
# muse: run folders as zip files
#
# The zips are written here, not with zipfile, so that one of any size is
# streamed: every member is stored (no compression), so the size is known
# before the first byte, and a big padding member is generated chunk by chunk.

ZIP_DOS_TIME = (ZIP_DATE[3] << 11) | (ZIP_DATE[4] << 5) | (ZIP_DATE[5] // 2)
ZIP_DOS_DATE = ((ZIP_DATE[0] - 1980) << 9) | (ZIP_DATE[1] << 5) | ZIP_DATE[2]
ZIP_LOCAL, ZIP_CENTRAL, ZIP_END = 30, 46, 22  # fixed header sizes, names not counted
ZIP_PADDING = "__sim__padding"  # the member that makes a zip result_size bytes


def _zip_local(name, crc, size):
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, ZIP_DOS_TIME, ZIP_DOS_DATE,
                       crc, size, size, len(name), 0) + name


def _zip_central(name, crc, size, offset):
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, ZIP_DOS_TIME,
                       ZIP_DOS_DATE, crc, size, size, len(name), 0, 0, 0, 0, 0, offset) + name


@functools.lru_cache(maxsize=8)
def _filler_crc(byte, count):
    crc = 0
    for piece in filler(byte, count):
        crc = zlib.crc32(piece, crc)
    return crc


def zip_body(members, size=None):
    """A Body holding a stored zip of members [(name, bytes)], in that order.
    With size, a padding member of "z" bytes makes it exactly size bytes
    long, when size leaves room for the padding member's headers."""
    entries = [(name.encode(), data, zlib.crc32(data)) for name, data in members]
    natural = sum(ZIP_LOCAL + ZIP_CENTRAL + 2 * len(n) + len(d) for n, d, _ in entries) + ZIP_END
    pad_name = ZIP_PADDING.encode()
    pad = None
    if size is not None:
        room = size - natural - ZIP_LOCAL - ZIP_CENTRAL - 2 * len(pad_name)
        if room >= 0:
            pad = room
    head, central, offset = [], [], 0
    for name, data, crc in entries:
        local = _zip_local(name, crc, len(data))
        head.append(local + data)
        central.append(_zip_central(name, crc, len(data), offset))
        offset += len(local) + len(data)
    head = b"".join(head)
    pad_crc = 0
    if pad is not None:
        pad_crc = _filler_crc(b"z", pad)
        head += _zip_local(pad_name, pad_crc, pad)
        central.append(_zip_central(pad_name, pad_crc, pad, offset))
        offset += ZIP_LOCAL + len(pad_name) + pad
    central = b"".join(central)
    count = len(entries) + (pad is not None)
    tail = central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count,
                                 len(central), offset, 0)
    length = len(head) + (pad or 0) + len(tail)
    if pad is None:
        return Body.of(head + tail)
    return Body(length, lambda: itertools.chain((head,), filler(b"z", pad), (tail,)))


def run_folder(name, key, run, report_text):
    """The members of a run folder, in the order of the docs' example zips
    (muse.md sections 5 and 6); __WS__report.txt once the report is written."""
    request = run["request"] if isinstance(run["request"], dict) else {}
    cmd = request.get("cmd", "")
    folder = f"/scratch/ws/requests/user_{uuid.uuid5(RUN_FOLDER_NS, f'{name}/{key}')}/run"
    members = [
        ("ws_command.sh", f"#!/bin/bash\ncd /WS\nPATH=/WS:$PATH\n{cmd}\n"),
        ("cluster_script.sh",
         f"#!/bin/bash\n#SBATCH --job-name={run['jobname']} --account=record --nodes=1 "
         f"--ntasks-per-node=1 --partition=defq --time=4:00:00\n"
         f"module load singularity/3.5\necho $SLURM_JOB_ID > JOB_ID\n"
         f"singularity exec --no-home --bind $PWD:/WS {name}.simg /WS/ws_command.sh\n"),
        ("__WS__cmd.txt", f"cd {folder}; sbatch -e {folder}/__WS__stderr.txt "
                          f"-o {folder}/__WS__stdout.txt {folder}/cluster_script.sh"),
        ("cluster_stderr.txt", ""),
        ("cluster_stdout.txt", f"Submitted batch job {run['job_id']}\n"),
        ("__WS__stdout.txt", stdout_bytes(run)),
        ("__WS__stderr.txt", ""),
        ("JOB_ID", f"{run['job_id']}\n"),
    ]
    if report_text is not None:
        members.append(("__WS__report.txt", report_text))
    return [(m, data if isinstance(data, bytes) else utf8(str(data))) for m, data in members]


def cycled(data, count):
    """count bytes of data repeated, in CHUNK pieces ("x" when data is empty)."""
    data = data or b"x"
    block = data * (CHUNK // len(data) + 1)
    full, rest = divmod(count, len(block))
    yield from itertools.repeat(block, full)
    yield block[:rest]


# --------------------------------------------------------------------------
# muse: the API and its controls

DJANGO_404_HTML = (b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n'
                   b'</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was '
                   b'not found on this server.</p>\n</body>\n</html>\n')
MUSE_ACTIONS = ("state", "run", "content")
# The file replies as Django's FileResponse(as_attachment=True) sends them:
# the type guessed from the file name, without a charset (a guess: the docs
# show no headers).
FILE_TYPES = {"stdout.txt": "text/plain", "run.zip": "application/zip",
              "content.zip": "application/zip"}


def muse_error(status, error, kind, more=()):
    """The documented error body {"error", "more", "type"}."""
    return reply(status, APPLICATION_JSON,
                 utf8(drf_json({"error": error, "more": list(more), "type": kind})))


def muse_route(path):
    """(action, name, key) for a path under /api/software/muse/, else None."""
    parts = path.split("/")[2:]  # after "", "api"
    if parts and parts[-1] == "":
        parts.pop()  # the trailing slash is optional (Django's APPEND_SLASH)
    if (len(parts) == 5 and parts[:2] == ["software", "muse"]
            and parts[2] in MUSE_ACTIONS and parts[3] and parts[4]):
        return tuple(parts[2:])
    return None


def file_reply(filename, body, run):
    """A file as an attachment; result_content_type overrides the type ("":
    no Content-Type header at all)."""
    ctype = run.get("result_content_type", FILE_TYPES[filename])
    headers = [("Content-Type", ctype)] if ctype else []
    headers.append(("Content-Disposition", f'attachment; filename="{filename}"'))
    return Reply(200, headers, body)


class MuseAPI:
    """The ws endpoints jobfs uses, under /api/."""

    name = "muse"
    content_type = APPLICATION_JSON
    body_max = 10 << 20

    def __init__(self, runs):
        self.runs = runs

    def handle(self, req):
        if not req.path.startswith("/api/"):
            return reply(404, "text/html; charset=utf-8", DJANGO_404_HTML)
        if req.method in ("GET", "HEAD"):
            if req.path in ("/api/software/list", "/api/software/list/"):
                entries = [SW_EXAMPLE if name == "sw_example" else software_entry(name)
                           for name in self.runs.software_names()]
                return reply(200, APPLICATION_JSON, utf8(drf_json(entries)))
            if req.path in ("/api/download", "/api/download/"):
                return self.download(req)
            route = muse_route(req.path)
            if route:
                return self.run_action(req, *route)
        return muse_error(404, f"Unknown resource '{req.path}'", "NotFound")

    def too_large(self):
        return muse_error(413, "Request body too large", "RequestTooLarge")

    def job_key(self, req):
        route = muse_route(req.path)
        return f"{route[1]}/{route[2]}" if route and route[0] != "content" else None

    def run_action(self, req, action, name, key):
        if name not in self.runs.software_names():
            return muse_error(404, f"Unknown software '{name}'", "NotFound",
                              ["GET software/list gives the available software"])
        run = self.runs.get(name, key)
        if run is None:
            return muse_error(404, f"Unknown key '{key}' for software '{name}'", "NotFound")
        urls = RunURLs(f"http://{req.host}/api/", name, key)
        if action == "content":
            return file_reply("content.zip", self.folder_zip(name, key, run), run)
        # state and run (re)write the run folder's report (muse.md section 4)
        run_report = report(name, run)
        self.runs.write_report(name, key, drf_json(run_report))
        if action == "state":
            msg, url = next_step(run["cr"], urls)
            return reply(200, APPLICATION_JSON, utf8(drf_json(
                {"info": {"report": run_report}, "msg": msg, "url": url})))
        return self.results(req, name, key, run, run_report, urls)

    def folder_zip(self, name, key, run):
        members = run_folder(name, key, run, self.runs.report_text(name, key))
        return zip_body(members, run.get("result_size"))

    def result_file(self, name, key, run):
        """(file name, Body) of a stdout.txt or run.zip result, else None."""
        request = run["request"] if isinstance(run["request"], dict) else {}
        returned_type = request.get("returned_type", "stdout")
        if returned_type == "run.zip":
            return returned_type, self.folder_zip(name, key, run)
        if returned_type == "stdout.txt":
            data = stdout_bytes(run)
            size = run.get("result_size")
            body = Body.of(data) if size is None else Body(size, partial(cycled, data, size))
            return returned_type, body
        return None

    def results(self, req, name, key, run, run_report, urls):
        """GET software/muse/run: what the POST's returned_type and todownload
        asked for (muse.md section 5)."""
        if run["cr"] != "OK":
            hint = (f"GET {urls.content} to investigate" if run["cr"] == "NOK"
                    else f"GET {urls.state} to follow the job")
            return muse_error(400, f"Results not available: cr is '{run['cr']}'",
                              "NotReady", [hint])
        result = self.result_file(name, key, run)
        if result is None:  # stdout, whatever todownload says
            return reply(200, APPLICATION_JSON, utf8(drf_json(
                {"info": {"stdout": run["stdout"], "report": run_report}})))
        if run["request"].get("todownload") is True:
            dkey = self.runs.new_download(name, key)
            url = f"http://{req.host}/api/download/?key={dkey}"
            msg = (f"The response content can be downloaded at : {url} *** The resource to "
                   f"download the response content is 'GET download' with 'key' option "
                   f"(key value : {dkey}) *** Keep this key value in order to be able to "
                   f"download the response content later on : key={dkey}")
            return reply(200, APPLICATION_JSON, utf8(drf_json({"msg": msg, "url": url})))
        return file_reply(*result, run)

    def download(self, req):
        """GET download/?key=DKEY: the result file, as the run holds it now."""
        dkeys = parse_qs(req.query).get("key")
        if not dkeys or not dkeys[0]:
            return muse_error(400, "The 'key' parameter is missing", "BadRequest",
                              ["GET download/?key=<download key>"])
        where = self.runs.download(dkeys[0])
        run = where and self.runs.get(*where)
        result = run and self.result_file(*where, run)
        if not result:
            return muse_error(404, f"Unknown download key '{dkeys[0]}'", "NotFound")
        return file_reply(*result, run)

    def control(self, method, parts, body):
        """/_sim/runs... and /_sim/software; None when the path is not one of them."""
        if parts == ["runs"] and method == "POST":
            spec = control_object(body, required=("name", "key"))
            name, key = spec["name"], spec["key"]
            return run_view(name, key, self.runs.put(name, key, spec))
        if parts == ["software"] and method == "POST":
            names = control_object(body).get("names")
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ControlError(400, '"names" must be a list of strings')
            self.runs.set_software(names)
            return json_reply(200, {"names": names})
        if len(parts) != 3 or parts[0] != "runs":
            return None
        name, key = parts[1], parts[2]
        run = self.runs.get(name, key)
        if method == "POST":
            return run_view(name, key, self.runs.update(name, key, control_object(body)))
        if method == "GET" and run is not None:
            return run_view(name, key, run)
        if method == "DELETE" and self.runs.delete(name, key):
            return json_reply(200, {"deleted": f"{name}/{key}"})
        raise ControlError(404, f"no run {name}/{key}")


def run_view(name, key, run):
    return json_reply(200, {"name": name, "key": key, **run})


def software_entry(name):
    return {"name": name, "info": {"sw": {"desc": f"software {name}", "shortname": name,
                                          "urls": {}, "keywords": []}}}


def report(name, run):
    """The run report; key order as in __WS__report.txt (muse.md section 4)."""
    return {"request": run["request"], "rsrc": run["rsrc"],
            "process": {"jobname": run["jobname"], "job_id": run["job_id"],
                        "latest_cr": run["latest_cr"], "latest_state": run["latest_state"]},
            "name": name, "cr": run["cr"]}


class RunURLs:
    def __init__(self, base, name, key):
        tail = f"{quote(name, safe='')}/{quote(key, safe='')}/"
        self.state = f"{base}software/muse/state/{tail}"
        self.run = f"{base}software/muse/run/{tail}"
        self.content = f"{base}software/muse/content/{tail}"


def next_step(cr, urls):
    """msg and url of a state reply: where the client goes next."""
    if cr == "OK":  # muse.md Example A, word for word
        return (f"End of job. You can now get results by GET {urls.run} request or ask "
                f"for content (to investigate) by GET {urls.content} request.", urls.run)
    if cr == "NOK":
        return (f"Job ended with errors. You can ask for content (to investigate) by "
                f"GET {urls.content} request.", urls.content)
    return f"Job is running. Send again GET {urls.state} request to follow it.", urls.state


# --------------------------------------------------------------------------
# Faults and counters

# mode -> {parameter: (check, default)}: a status fault answers 200..599 (a
# client of the API never sees a 1xx); the made-up replies are the API's own
FAULT_PARAMS = faults.fault_params(200, tailored=False)


def fault_reply(fault, real, content_type):
    """What a fault sends: (reply, cut) or None to close without answering.

    real() computes the true reply; only delay, cut and truncate need it.
    cut means: send the headers and half the body, then close.
    """
    mode = fault["mode"]
    if mode == "close":
        return None
    if mode == "delay":
        faults.delay(fault)
        return real(), False
    if mode == "cut":
        return real(), True
    if mode == "truncate":
        true = real()
        return true._replace(status=200, body=true.body.head(true.body.length // 2)), False
    status, ctype, length, pieces = faults.own_reply(fault, content_type)
    return Reply(status, [("Content-Type", ctype)], Body(length, pieces)), False


class Stats(faults.Counters):
    """API request counters of one port (faults.Counters), and by job."""

    def zero(self):
        super().zero()
        self.by_job = {}

    def count(self, connection, path, job_key):
        with self.lock:
            super().count(connection, path)
            if job_key is not None:
                self.by_job[job_key] = self.by_job.get(job_key, 0) + 1

    def snapshot(self):
        with self.lock:
            return {"requests": self.requests, "connections": self.connections,
                    "by_path": dict(self.by_path), "by_job": dict(self.by_job)}


# --------------------------------------------------------------------------
# HTTP server

class Handler(faults.Handler):
    """One client connection (HTTP/1.1 keep-alive): reads each request,
    counts it, applies latency and faults, and answers from the port's API.
    Go's mux and the control API take any method."""

    def dispatch(self):
        raw_path, _, query = self.path.partition("?")
        path = unquote(raw_path)
        control = path.startswith("/_sim/")
        body = self.read_body(CONTROL_BODY_MAX if control else self.server.api.body_max)
        if body is None:
            return
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        req = Request(self.command, path, body, host, query, self.headers)
        if control:
            self.send_reply(self.server.control(req, self))
        else:
            self.serve_api(req)

    def serve_api(self, req):
        server = self.server
        server.stats.count(self, req.path, server.api.job_key(req))
        if server.latency:
            time.sleep(server.latency)
        fault = server.faults.take(req.path)
        if fault is None:
            self.send_reply(server.api.handle(req))
            return
        faulty = fault_reply(fault, lambda: server.api.handle(req), server.api.content_type)
        if faulty is None:
            self.close_connection = True
        else:
            self.send_reply(*faulty)

    def content_length(self):
        """None or empty: 0; only ASCII digits."""
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if not length.isascii() or not length.isdigit():
            raise faults.BadRequest("bad Content-Length")
        return int(length)

    @staticmethod
    def chunk_size(size):
        """1 to 16 hex digits."""
        if not re.fullmatch(rb"[0-9a-fA-F]{1,16}", size):
            raise faults.BadRequest("bad chunk size")
        return int(size, 16)

    def answer_too_large(self):
        self.send_reply(self.server.api.too_large())

    def answer_bad_request(self, message):
        self.send_error(400, message)

    def send_reply(self, answer, cut=False):
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, header_value(value))
        self.send_header("Content-Length", str(answer.body.length))
        if self.close_connection and not cut:  # a cut connection breaks unannounced
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            for chunk in answer.body.chunks(answer.body.length // 2 if cut else None):
                self.wfile.write(chunk)
        if cut:
            self.close_connection = True

    def send_response(self, code, message=None):
        # Neither Go's net/http nor the simulated Django sends a Server header.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())


def header_value(value):
    """A header value as Go writes it: newlines become spaces, and the text
    goes out as UTF-8 (http.server would encode Latin-1 and fail on others)."""
    return value.replace("\r", " ").replace("\n", " ").encode().decode("latin-1")


class SimServer(faults.Server):
    """One port: an API (Bacalhau or muse), its faults, counters and controls."""

    def __init__(self, address, api, latency, verbose):
        super().__init__(address, Handler, api.name)
        self.api, self.latency, self.verbose = api, latency, verbose
        self.stats, self.faults = Stats(), faults.Faults()

    def control(self, req, handler):
        parts = req.path.split("/")[2:]  # after "", "_sim"
        try:
            if parts == ["stats"] and req.method == "GET":
                return json_reply(200, self.stats.snapshot())
            if parts == ["reset"] and req.method == "POST":
                self.stats.reset()
                return json_reply(200, self.stats.snapshot())
            if parts == ["fault"] and req.method == "POST":
                fault = faults.parse_fault(control_json(req.body), FAULT_PARAMS)
                answer = json_reply(200, faults.shown(fault))
                self.faults.set(fault)
                return answer
            if parts == ["down"] and req.method == "POST":
                return self.go_down(control_object(req.body), handler)
            answer = self.api.control(req.method, parts, req.body)
            if answer is None:
                raise ControlError(404, f"unknown control request {req.method} {req.path}")
            return answer
        except ControlError as err:
            return json_reply(err.status, {"error": str(err)})

    def go_down(self, spec, handler):
        """Refuse connections for a while, as a server that is down.

        The listening socket is closed before the reply is sent, so a client
        that connects after the reply is refused; open connections are cut
        too, or a kept-alive client would not notice.
        """
        seconds = faults.checked("seconds", faults.DOWN_SECONDS, spec.get("seconds"))
        self.close_listener()
        self.cut_connections(handler.connection)
        timer = threading.Timer(seconds, self.come_back)
        timer.daemon = True
        timer.start()
        handler.close_connection = True  # this one closes after the reply
        return json_reply(200, {"down": seconds})

    def come_back(self):
        try:
            self.reopen()
        except OSError as err:
            print(f"jobsim: cannot listen again on port {self.port}: {err}", file=sys.stderr)
            return
        self.start()


# --------------------------------------------------------------------------
# The demo scenario: jobs and runs that change on their own

DEMO_JOB_ID = "de300000-0000-4000-8000-%012d"
DEMO_NODES = ("QmDemoNodeA11111111111111111111111111111111111",
              "QmDemoNodeB22222222222222222222222222222222222",
              "QmDemoNodeC33333333333333333333333333333333333")
DEMO_CID = "QmYKjw9ex3Tzd4Q4zd7nEFeMjfyLhk4qYJbHa3ffUZwM1f"
DEMO_NEW_JOB_EVERY = 30  # seconds


class Scheduler:
    """Runs actions at given delays, in order, on one daemon thread."""

    def __init__(self):
        self.cond = threading.Condition()
        self.queue = []
        self.sequence = itertools.count()  # keeps heap order for equal times
        threading.Thread(target=self._run, daemon=True, name="demo").start()

    def at(self, delay, action):
        with self.cond:
            heapq.heappush(self.queue, (time.monotonic() + delay, next(self.sequence), action))
            self.cond.notify()

    def _run(self):
        while True:
            with self.cond:
                while not self.queue or self.queue[0][0] > time.monotonic():
                    self.cond.wait(self.queue[0][0] - time.monotonic() if self.queue else None)
                _, _, action = heapq.heappop(self.queue)
            try:
                action()
            except (KeyError, ControlError):
                pass  # a test deleted or reshaped the job or run: its demo stops
            except Exception:
                traceback.print_exc()


def demo_job(sched, jobs, job_id, fails):
    """A job that bids, runs and completes in ~28 s (or fails after ~8 s).

    Node A wins the bid; B, and C which appears mid-way, end Cancelled.
    """
    a, b, c = DEMO_NODES
    jobs.put(job_id, {})
    shard = partial(jobs.change_shard, job_id)

    def set_fields(node, **fields):
        return partial(shard, node, "0", shard_change({"fields": fields}))

    def say(text):
        return partial(shard, a, "0", append_change({"stream": "stdout", "data": text}))

    set_fields(a, State="Bidding")()
    set_fields(b, State="Bidding")()
    sched.at(2, set_fields(a, State="Waiting"))
    sched.at(4, set_fields(a, State="Running", RunOutput=run_output()))
    if fails:
        sched.at(5, set_fields(b, State="Cancelled"))
        sched.at(6, say("starting\n"))
        sched.at(8, set_fields(a, State="Error", Status="exit status 1",
                               RunOutput={"stderr": "boom\n", "exitCode": 1}))
        return
    for step in range(1, 11):  # a line every 2 s for 20 s
        sched.at(4 + 2 * step, say(f"step {step}\n"))
    sched.at(10, set_fields(c, State="Bidding"))
    sched.at(25, set_fields(a, State="Verifying", Status="Got results proposal of length: 0"))
    sched.at(28, set_fields(a, State="Completed",
                            VerificationResult={"Complete": True, "Result": True},
                            PublishedResults={"StorageSource": "IPFS", "CID": DEMO_CID,
                                              "Name": f"job-{job_id}-shard-0-host-{a}"}))
    for loser in (b, c):
        sched.at(28, set_fields(loser, State="Cancelled"))


def demo_run(sched, runs, key, ok):
    """A muse run that waits, then ends OK after 20 s or NOK after 15 s."""
    runs.put("sw_example", key, {"cr": "WAIT", "latest_state": "PENDING",
                                 "request": {**EXAMPLE_REQUEST, "cmd": "python /add.py 30 40"}})
    sched.at(3, partial(runs.update, "sw_example", key, {"latest_state": "RUNNING"}))
    if ok:
        sched.at(20, partial(runs.update, "sw_example", key, {"cr": "OK", "stdout": "70.0\n"}))
    else:
        sched.at(15, partial(runs.update, "sw_example", key, {"cr": "NOK"}))


def start_demo(jobs, runs):
    sched = Scheduler()
    demo_job(sched, jobs, DEMO_JOB_ID % 1, fails=False)
    demo_job(sched, jobs, DEMO_JOB_ID % 2, fails=True)
    demo_run(sched, runs, "33333333-3333-4333-8333-333333333333", ok=True)
    demo_run(sched, runs, "44444444-4444-4444-8444-444444444444", ok=False)

    def new_job(number):
        demo_job(sched, jobs, DEMO_JOB_ID % number, fails=False)
        sched.at(DEMO_NEW_JOB_EVERY, partial(new_job, number + 1))
    sched.at(DEMO_NEW_JOB_EVERY, partial(new_job, 3))


# --------------------------------------------------------------------------
# Main

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bacalhau-port", type=int, default=0)
    parser.add_argument("--muse-port", type=int, default=0)
    parser.add_argument("--ports-file", help='write {"bacalhau","muse","pid"} here once listening')
    parser.add_argument("--scenario", choices=("seed", "demo", "empty"), default="seed")
    parser.add_argument("--bulk-jobs", type=int, default=0, metavar="N",
                        help="add N completed Bacalhau jobs")
    parser.add_argument("--client-id", help="client id of bulk, demo and control-made "
                                            "jobs (default: the seed's)")
    parser.add_argument("--bacalhau-era", choices=("e1", "e2"), default="e2",
                        help="e1: /states and /list; e2: /requester/states and /requester/list")
    parser.add_argument("--latency-ms", type=float, default=0,
                        help="delay of every API answer")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    bacalhau_v1_module().add_arguments(parser)
    args = parser.parse_args(argv)
    if args.bulk_jobs < 0 or args.latency_ms < 0:
        parser.error("--bulk-jobs and --latency-ms must not be negative")
    return args


def bacalhau_v1_module():
    """The Bacalhau v1 simulator (bacalhau_v1.py, next to this file).  It
    imports this module as `jobsim`: when this file runs as a script, that
    name must be this very module, not a second copy."""
    sys.modules.setdefault("jobsim", sys.modules[__name__])
    import bacalhau_v1
    return bacalhau_v1


def build_stores(args):
    client_id = args.client_id or SEED_CLIENT_ID
    jobs, runs = JobStore(client_id), RunStore(["sw_example"])
    if args.scenario != "empty":
        add_seed_jobs(jobs)
        add_seed_runs(runs)
    jobs.add_bulk(args.bulk_jobs, client_id)
    return jobs, runs


def main(argv=None):
    faults.exit_on_signals()
    args = parse_args(argv)
    jobs, runs = build_stores(args)
    latency = args.latency_ms / 1000
    if args.bacalhau_version:
        bacalhau_api = bacalhau_v1_module().make_api(args)
    else:
        bacalhau_api = BacalhauAPI(jobs, args.bacalhau_era)
    bacalhau = SimServer((args.bind, args.bacalhau_port), bacalhau_api, latency, args.verbose)
    muse = SimServer((args.bind, args.muse_port), MuseAPI(runs), latency, args.verbose)
    bacalhau.start()
    muse.start()
    faults.announce(args.ports_file, {"bacalhau": bacalhau.port, "muse": muse.port,
                                      "pid": os.getpid()})
    if args.scenario == "demo":
        start_demo(jobs, runs)
        if args.bacalhau_version:
            bacalhau_api.start_demo()
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
