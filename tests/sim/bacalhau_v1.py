"""bacalhau_v1: Bacalhau as each release speaks it, for jobsim --bacalhau-version.

With --bacalhau-version=vX.Y.Z, jobsim's Bacalhau port is served from here
instead of by jobsim's v0.3 requester: the orchestrator API of v1.0.4 onwards
(GET /api/v1/orchestrator/jobs[/{id}[/executions|/history|/results]], the
agent endpoints), the legacy requester endpoints where the release still has
them (or their 410 and 404), and the v0.3 requester itself for v0.3.x and
v1.0.0-v1.0.3, all rendered from one job model (jobs, executions, history
events), so that one control API drives every version.

The wire facts (era by era: key names, list keys, pretty-printed JSON up to
v1.4, the two execution state numberings, error bodies and statuses, paging
tokens, auth) come from shared/api/bacalhau-v1.md and, for the v0.3 shapes,
shared/api/bacalhau.md.  The choices this file makes where those notes leave
one are in SPEC-bacalhau-v1.md next to it.

It uses jobsim's helpers (Go's JSON encoding, replies, the v0.3 decoder and
E1 encoder); jobsim imports this module only when a version is given.
"""

import base64
import hashlib
import json
import random
import re
import threading
import time
import uuid
from functools import partial
from urllib.parse import parse_qsl

import jobsim as sim

APPLICATION_JSON = "application/json"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
RUN_OUTPUT_MAX = 2048      # bytes of stdout/stderr a RunOutput keeps (MaxStdoutReturnLength)
HISTORY_PAGE = 100         # default history page size (v1.5+), and include=history's cap
GIT_COMMIT = "2b0ed139" + "0" * 32
DEPRECATED = ("This endpoint is deprecated. See the migration guide at "
              "https://docs.bacalhau.org/references/cli-reference/command-migration "
              "for more information")

# --------------------------------------------------------------------------
# Versions and eras (bacalhau-v1.md section 1)

ERA_STARTS = (((1, 0, 4), "A"), ((1, 2, 0), "B"), ((1, 2, 2), "C"), ((1, 4, 0), "D"),
              ((1, 5, 0), "E"), ((1, 5, 2), "F"), ((1, 7, 0), "G"), ((1, 8, 0), "H"))
SEMVER = re.compile(r"v(\d{1,4})\.(\d{1,4})\.(\d{1,4})")


class Version:
    """A release, vX.Y.Z, and what its wire format looks like."""

    def __init__(self, text):
        m = SEMVER.fullmatch(text or "")
        if not m:
            raise ValueError(f"not a version: {text!r} (want vX.Y.Z)")
        self.text = text
        self.t = tuple(int(p) for p in m.groups())
        self.era = "L"
        for start, era in ERA_STARTS:
            if self.t >= start:
                self.era = era

    def ge(self, *t):
        return self.t >= t

    def lt(self, *t):
        return self.t < t

    @property
    def orchestrator(self):     # the v1 orchestrator API exists
        return self.ge(1, 0, 4)

    @property
    def pretty(self):           # echo with Debug=true indents every reply
        return self.ge(1, 0, 4) and self.lt(1, 5, 0)

    @property
    def items_key(self):        # list bodies say "Items" from v1.4.0
        return self.ge(1, 4, 0)


# --------------------------------------------------------------------------
# Enums (bacalhau-v1.md section 4)

JOB_STATES = ("Undefined", "Pending", "Queued", "Running", "Completed", "Failed", "Stopped")
JOB_TERMINAL = ("Completed", "Failed", "Stopped")
EXEC_OLD = ("Undefined", "New", "AskForBid", "AskForBidAccepted", "AskForBidRejected",
            "BidAccepted", "BidRejected", "Completed", "Failed", "Cancelled")
EXEC_NEW = ("Undefined", "New", "AskForBid", "AskForBidAccepted", "AskForBidRejected",
            "BidAccepted", "Running", "Publishing", "BidRejected", "Completed", "Failed",
            "Cancelled")
EXEC_TERMINAL = ("Completed", "Failed", "Cancelled", "BidRejected", "AskForBidRejected")
DESIRED_STATES = ("Pending", "Running", "Stopped")


def job_state_name(state, v):
    if state == "Queued" and v.lt(1, 4, 0):
        return "Pending"        # Queued exists from v1.4.0
    return state


def exec_state_number(state, v):
    """ExecutionStateType as the version's integer (the numbering changed in v1.5.2)."""
    if v.ge(1, 5, 2):
        return EXEC_NEW.index(state)
    if state in ("Running", "Publishing"):
        state = "BidAccepted"   # compute-local states the old enum does not have
    return EXEC_OLD.index(state)


# --------------------------------------------------------------------------
# JSON as echo writes it

def go_escape(text):
    for char, escaped in sim.GO_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    if "\\b" in text or "\\f" in text:
        text = sim.ESCAPE_PAIR.sub(lambda m: sim.GO_SHORT_ESCAPES.get(m[0], m[0]), text)
    return text


def go_indent(value):
    """json.MarshalIndent(value, "", "  ") in Go: 2 spaces, ": " after keys."""
    return go_escape(json.dumps(value, ensure_ascii=False, indent=2, separators=(",", ": ")))


def echo_json(value, v):
    """What echo's c.JSON sends: json.Encoder output, so a trailing newline,
    indented while echo runs with Debug=true (v1.0.4-v1.4.x)."""
    return sim.utf8((go_indent(value) if v.pretty else sim.go_json(value)) + "\n")


def sorted_map(d):
    """Go marshals map keys sorted."""
    return {k: d[k] for k in sorted(d)} if d else {}


def cut_output(text, flag):
    """A RunOutput stream: at most 2048 bytes, and whether there was more.
    A cut through a UTF-8 sequence gives U+FFFD, as Go's encoder does."""
    data = text.encode()
    if len(data) <= RUN_OUTPUT_MAX:
        return text, flag
    return data[:RUN_OUTPUT_MAX].decode(errors="replace"), True


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def unb64url(text):
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode((text + pad).encode()).decode()


# --------------------------------------------------------------------------
# The job model: one per job, whatever version renders it

class Execution:
    __slots__ = ("id", "node", "eval_id", "state", "message", "desired", "desired_message",
                 "published", "run_output", "revision", "create_ns", "modify_ns")


class RunOutput:
    __slots__ = ("stdout", "stdout_truncated", "stderr", "stderr_truncated", "exit_code",
                 "error_msg")

    def __init__(self):
        self.stdout, self.stderr, self.error_msg = "", "", ""
        self.stdout_truncated = self.stderr_truncated = False
        self.exit_code = 0


class Event:
    __slots__ = ("seq", "type", "execution_id", "node_id", "topic", "message", "details",
                 "time_ns", "job_state", "exec_state", "revision")


class Job:
    __slots__ = ("id", "name", "namespace", "type", "state", "message", "revision", "version",
                 "create_ns", "modify_ns", "client_id", "labels", "executions", "history",
                 "requester")

    @property
    def terminal(self):
        return self.state in JOB_TERMINAL


EXEC_FIELDS = {"id", "node", "state", "message", "desired_state", "desired_message",
               "stdout", "stderr", "stdout_truncated", "stderr_truncated", "exit_code",
               "error_msg", "published", "create_ns", "modify_ns", "run_output"}
JOB_FIELDS = {"id", "name", "namespace", "type", "state", "message", "client_id", "labels",
              "executions", "create_ns", "modify_ns", "events"}
RUN_OUTPUT_FIELDS = {"stdout": str, "stderr": str, "stdout_truncated": bool,
                     "stderr_truncated": bool, "exit_code": int, "error_msg": str}


def _check(value, kind, name):
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise sim.ControlError(400, f'"{name}" must be an integer')
    if kind is not int and not isinstance(value, kind):
        raise sim.ControlError(400, f'"{name}" must be a {kind.__name__}')
    return value


class Store:
    """Every job, in creation order.  All changes go through here, under one
    lock, and each one moves the job's Revision and ModifyTime (a change to
    an execution or its history too: jobfs's change feed relies on it)."""

    def __init__(self, version):
        self.v = version
        self.lock = threading.RLock()
        self.jobs = {}
        self.last_ns = 0
        self.seed = {}
        # execution and evaluation ids from a fixed sequence: the same run of
        # control requests gives the same bytes (byte-exact tests)
        self.rng = random.Random(version.text)

    # ids and clocks
    def now_ns(self):
        # strictly increasing, and odd: a reader that goes through a double
        # (53 bits) cannot get the last digits of these 19-digit numbers right
        now = max(time.time_ns(), self.last_ns + 1)
        self.last_ns = now | 1
        return self.last_ns

    def job_id(self, raw=None):
        raw = raw or self.uuid()
        return raw if not self.v.orchestrator else "j-" + raw

    def node_id(self, n):
        if self.v.ge(1, 5, 0):
            return "n-%08x-7b2e-4c41-9c3a-2f0d9b1e6a%02x" % (0x1af42f75 + n, n)
        return "QmNode%040d" % n    # libp2p peer ids before v1.5

    def uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def exec_id(self):
        return "e-" + self.uuid()

    # reads
    def get(self, job_id):
        with self.lock:
            return self.jobs.get(job_id)

    def all(self):
        with self.lock:
            return list(self.jobs.values())

    def need(self, job_id):
        job = self.get(job_id)
        if job is None:
            raise sim.ControlError(404, f"no job {job_id}")
        return job

    # changes
    def touch(self, job, ns=None):
        job.revision += 1
        job.modify_ns = ns if ns is not None else self.now_ns()

    def event(self, job, kind, topic, message, execution=None, details=None, ns=None,
              job_state=None, exec_state=None):
        ev = Event()
        ev.seq = len(job.history) + 1
        ev.type = kind
        ev.execution_id = execution.id if execution else ""
        ev.node_id = execution.node if execution else ""
        ev.topic, ev.message = topic, message
        ev.details = dict(details or {})
        ev.time_ns = ns if ns is not None else self.now_ns()
        ev.job_state, ev.exec_state = job_state, exec_state
        ev.revision = job.revision
        job.history.append(ev)
        return ev

    def create(self, spec):
        unknown = set(spec) - JOB_FIELDS
        if unknown:
            raise sim.ControlError(400, f"unknown job fields: {sorted(unknown)}")
        with self.lock:
            job = Job()
            job.id = _check(spec.get("id") or self.job_id(), str, "id")
            if job.id in self.jobs:
                raise sim.ControlError(409, f"job {job.id} exists")
            job.name = _check(spec.get("name") or job.id, str, "name")
            job.namespace = _check(spec.get("namespace", "default"), str, "namespace")
            job.type = _check(spec.get("type", "batch"), str, "type")
            job.state = "Pending"
            job.message = ""
            job.client_id = _check(spec.get("client_id", sim.SEED_CLIENT_ID), str, "client_id")
            job.labels = _check(spec.get("labels", {}), dict, "labels")
            job.requester = self.node_id(0)
            job.version = 1
            job.revision = 1
            job.executions, job.history = [], []
            job.create_ns = _check(spec.get("create_ns") or self.now_ns(), int, "create_ns")
            job.modify_ns = job.create_ns
            self.jobs[job.id] = job
            if spec.get("events", True):
                self.event(job, "JobLevel", "Submission", "Job submitted", ns=job.create_ns,
                           job_state=(None, "Pending"))
            for ex in _check(spec.get("executions", []), list, "executions"):
                self.add_execution(job.id, ex)
            self.update(job.id, {k: spec[k] for k in ("state", "message") if k in spec},
                        ns=spec.get("modify_ns"))
            return job

    def update(self, job_id, fields, ns=None):
        unknown = set(fields) - {"state", "message", "name", "namespace", "labels"}
        if unknown:
            raise sim.ControlError(400, f"unknown job fields: {sorted(unknown)}")
        with self.lock:
            job = self.need(job_id)
            if not fields:
                return job
            old = job.state
            if "state" in fields:
                state = _check(fields["state"], str, "state")
                if state not in JOB_STATES[1:]:
                    raise sim.ControlError(400, f'"state" must be one of {JOB_STATES[1:]}')
                job.state = state
            for name in ("message", "name", "namespace"):
                if name in fields:
                    setattr(job, name, _check(fields[name], str, name))
            if "labels" in fields:
                job.labels = _check(fields["labels"], dict, "labels")
            self.touch(job, ns)
            if job.state != old:
                self.event(job, "JobLevel", "State Update", job.state,
                           details={"NewState": job.state}, ns=job.modify_ns,
                           job_state=(old, job.state))
            return job

    def add_execution(self, job_id, spec):
        unknown = set(spec) - EXEC_FIELDS
        if unknown:
            raise sim.ControlError(400, f"unknown execution fields: {sorted(unknown)}")
        with self.lock:
            job = self.need(job_id)
            ex = Execution()
            ex.id = _check(spec.get("id") or self.exec_id(), str, "id")
            if any(e.id == ex.id for e in job.executions):
                raise sim.ControlError(409, f"execution {ex.id} exists")
            ex.node = _check(spec.get("node") or self.node_id(1), str, "node")
            ex.eval_id = self.uuid()
            ex.state, ex.message = "New", ""
            ex.desired, ex.desired_message = "Running", ""
            ex.published, ex.run_output = None, None
            ex.revision = 1
            ex.create_ns = _check(spec.get("create_ns") or self.now_ns(), int, "create_ns")
            ex.modify_ns = ex.create_ns
            job.executions.append(ex)
            self.touch(job, ex.create_ns)
            self.event(job, "ExecutionLevel", "Scheduling",
                       "Requested execution on " + ex.node[:10], execution=ex,
                       details={"NodeID": ex.node}, ns=ex.create_ns, exec_state=(0, "New"))
            rest = {k: v for k, v in spec.items() if k not in ("id", "node", "create_ns")}
            if rest:
                self.change_execution(job_id, ex.id, rest)
            return job

    def find_execution(self, job, ref):
        if ref is None:
            if not job.executions:
                raise sim.ControlError(404, f"job {job.id} has no execution")
            return max(job.executions, key=lambda e: (e.create_ns, e.id))
        for ex in job.executions:
            if ex.id == ref or ex.id.startswith(ref):
                return ex
        raise sim.ControlError(404, f"no execution {ref} in job {job.id}")

    def change_execution(self, job_id, ref, fields):
        unknown = set(fields) - (EXEC_FIELDS - {"id", "node", "create_ns"})
        if unknown:
            raise sim.ControlError(400, f"unknown execution fields: {sorted(unknown)}")
        with self.lock:
            job = self.need(job_id)
            ex = self.find_execution(job, ref)
            old = ex.state
            if "state" in fields:
                state = _check(fields["state"], str, "state")
                if state not in EXEC_NEW[1:]:
                    raise sim.ControlError(400, f'"state" must be one of {EXEC_NEW[1:]}')
                ex.state = state
            if "desired_state" in fields:
                desired = _check(fields["desired_state"], str, "desired_state")
                if desired not in DESIRED_STATES:
                    raise sim.ControlError(400, f'"desired_state" must be one of {DESIRED_STATES}')
                ex.desired = desired
            for name, attr in (("message", "message"), ("desired_message", "desired_message")):
                if name in fields:
                    setattr(ex, attr, _check(fields[name], str, name))
            if "published" in fields:
                pub = fields["published"]
                if pub is not None and (not isinstance(pub, dict)
                                        or not isinstance(pub.get("Type", ""), str)):
                    raise sim.ControlError(400, '"published" must be {"Type":..,"Params":{..}}')
                ex.published = None if pub is None else {"Type": pub.get("Type", ""),
                                                         "Params": dict(pub.get("Params") or {})}
            if "run_output" in fields and fields["run_output"] is None:
                ex.run_output = None
            for name, kind in RUN_OUTPUT_FIELDS.items():
                if name in fields:
                    if ex.run_output is None:
                        ex.run_output = RunOutput()
                    setattr(ex.run_output, name, _check(fields[name], kind, name))
            ns = fields.get("modify_ns") or self.now_ns()
            ex.revision += 1
            ex.modify_ns = ns
            self.touch(job, ns)
            if ex.state != old:
                self.event(job, "ExecutionLevel", "Execution", exec_event_message(ex),
                           execution=ex, ns=ns, exec_state=(old, ex.state),
                           details={"IsError": "true"} if ex.state == "Failed" else None)
            return job

    def append(self, job_id, spec):
        with self.lock:
            job = self.need(job_id)
            ex = self.find_execution(job, spec.get("execution"))
            stream = spec.get("stream", "stdout")
            if stream not in ("stdout", "stderr"):
                raise sim.ControlError(400, '"stream" must be "stdout" or "stderr"')
            data = _check(spec.get("data", ""), str, "data")
            if ex.run_output is None:
                ex.run_output = RunOutput()
            setattr(ex.run_output, stream, getattr(ex.run_output, stream) + data)
            ex.revision += 1
            ex.modify_ns = self.now_ns()
            self.touch(job, ex.modify_ns)
            return job

    def add_event(self, job_id, spec):
        with self.lock:
            job = self.need(job_id)
            ex = self.find_execution(job, spec["execution"]) if spec.get("execution") else None
            self.touch(job)
            self.event(job, "ExecutionLevel" if ex else "JobLevel",
                       _check(spec.get("topic", "Custom"), str, "topic"),
                       _check(spec.get("message", ""), str, "message"), execution=ex,
                       details=_check(spec.get("details", {}), dict, "details"),
                       ns=job.modify_ns)
            return job

    def delete(self, job_id):
        with self.lock:
            return self.jobs.pop(job_id, None) is not None

    def bulk(self, count, state, prefix):
        """count jobs at once, each with one execution, in state (the 200-job
        polling tests); their ids are prefix + a counter."""
        ids = []
        with self.lock:
            start = len(self.jobs)
            for i in range(count):
                raw = "%s%07x-0000-4000-8000-%012d" % (prefix, start + i, i)
                job = self.create({"id": self.job_id(raw), "events": False})
                self.add_execution(job.id, execution_spec(state, self.node_id(1 + i % 3),
                                                          f"job {i}\n"))
                self.update(job.id, {"state": state})
                ids.append(job.id)
        return ids


def exec_event_message(ex):
    """The compute side's messages for an execution's state (HEAD events)."""
    return {"BidAccepted": "Running", "Running": "Running", "Completed": "Completed successfully",
            "Failed": "Failed: " + ex.message if ex.message else "Failed"}.get(ex.state, ex.state)


def execution_spec(job_state, node, stdout):
    """An execution that matches a job state, as the orchestrator sees it."""
    if job_state == "Completed":
        return {"node": node, "state": "Completed", "desired_state": "Stopped",
                "desired_message": "execution completed", "stdout": stdout, "exit_code": 0,
                "published": {"Type": "local"}}
    if job_state == "Failed":
        return {"node": node, "state": "Failed", "desired_state": "Stopped",
                "desired_message": "execution failed", "message": "boom", "error_msg": "boom"}
    if job_state == "Running":
        return {"node": node, "state": "BidAccepted", "desired_state": "Running"}
    return {"node": node}


# --------------------------------------------------------------------------
# v1 JSON shapes (bacalhau-v1.md section 3)

def task_json(v):
    engine = {"Type": "docker", "Params": {"Entrypoint": ["echo"], "Image": "ubuntu:latest",
                                           "Parameters": ["Hello from a YAML spec!"]}}
    if v.lt(1, 2, 0):   # no omitempty, ResourcesConfig
        return {"Name": "main", "Engine": engine, "Publisher": {"Type": "local", "Params": None},
                "Env": None, "Meta": None, "InputSources": None, "ResultPaths": None,
                "ResourcesConfig": {"CPU": "500m", "Memory": "512Mb", "Disk": "", "GPU": ""},
                "Network": {"Type": "None", "Domains": None},
                "Timeouts": {"ExecutionTimeout": 0}}
    return {"Name": "main", "Engine": engine, "Publisher": {"Type": "local"},
            "Resources": {"CPU": "500m", "Memory": "512Mb"}, "Network": {"Type": "None"},
            "Timeouts": {}}


def state_json(state_type, message, v):
    d = {"StateType": state_type}
    if v.lt(1, 2, 0) or message:
        d["Message"] = message
    return d


def job_json(job, v):
    meta = {"bacalhau.org/requester.id": job.requester}
    if v.ge(1, 5, 0):
        meta["bacalhau.org/orchestrator.id"] = job.requester
    return {"ID": job.id, "Name": job.name, "Namespace": job.namespace, "Type": job.type,
            "Priority": 0, "Count": 1, "Constraints": [], "Meta": sorted_map(meta),
            "Labels": sorted_map(job.labels), "Tasks": [task_json(v)],
            "State": state_json(job_state_name(job.state, v), job.message, v),
            "Version": job.version if v.ge(1, 8, 0) else 0, "Revision": job.revision,
            "CreateTime": job.create_ns, "ModifyTime": job.modify_ns}


def run_output_json(ro, v):
    stdout, stdout_cut = cut_output(ro.stdout, ro.stdout_truncated)
    stderr, stderr_cut = cut_output(ro.stderr, ro.stderr_truncated)
    if v.lt(1, 2, 0):
        return {"stdout": stdout, "stdouttruncated": stdout_cut, "stderr": stderr,
                "stderrtruncated": stderr_cut, "exitCode": ro.exit_code,
                "runnerError": ro.error_msg}
    return {"Stdout": stdout, "StdoutTruncated": stdout_cut, "stderr": stderr,
            "StderrTruncated": stderr_cut, "ExitCode": ro.exit_code, "ErrorMsg": ro.error_msg}


def spec_config_json(pub, v):
    params = pub["Params"] if pub else {}
    d = {"Type": pub["Type"] if pub else ""}
    if v.lt(1, 2, 0):
        d["Params"] = sorted_map(params) if params else None
    elif params:
        d["Params"] = sorted_map(params)
    return d


def execution_json(ex, job, v, with_job):
    d = {"ID": ex.id, "Namespace": job.namespace, "EvalID": ex.eval_id, "Name": "",
         "NodeID": ex.node, "JobID": job.id}
    if with_job:
        d["Job"] = job_json(job, v)
    if v.ge(1, 8, 0):
        d["JobVersion"] = job.version
    d["AllocatedResources"] = {"Tasks": {}}
    d["DesiredState"] = state_json(DESIRED_STATES.index(ex.desired), ex.desired_message, v)
    d["ComputeState"] = state_json(exec_state_number(ex.state, v), ex.message, v)
    if ex.published is None and v.lt(1, 5, 0):
        d["PublishedResult"] = None         # null until completion, up to v1.4
    else:
        d["PublishedResult"] = spec_config_json(ex.published, v)
    if ex.run_output is None:
        # null until completion up to v1.5.1; from v1.5.2 always an object
        d["RunOutput"] = run_output_json(RunOutput(), v) if v.ge(1, 5, 2) else None
    else:
        d["RunOutput"] = run_output_json(ex.run_output, v)
    d.update({"PreviousExecution": "", "NextExecution": "", "FollowupEvalID": ""})
    d.update({"Revision": ex.revision, "CreateTime": ex.create_ns, "ModifyTime": ex.modify_ns})
    return d


def executions_embed_job(v):
    """Executions carry the full job in v1.0.4-v1.2.1 and from v1.8.0."""
    return v.lt(1, 2, 2) or v.ge(1, 8, 0)


def state_change(change, v, job_level):
    if change is None:
        return None
    prev, new = change
    if job_level:
        prev = job_state_name(prev, v) if prev else "Undefined"
        new = job_state_name(new, v)
        zero = "Undefined"
    else:
        prev = exec_state_number(prev, v) if prev else 0
        new = exec_state_number(new, v)
        zero = 0
    if v.lt(1, 2, 0):
        return {"Previous": prev, "New": new}
    d = {}
    if prev != zero:
        d["Previous"] = prev
    if new != zero:
        d["New"] = new
    return d


def event_json(ev):
    d = {"Message": ev.message, "Topic": ev.topic, "Timestamp": sim.go_time(ev.time_ns)}
    if ev.details:
        d["Details"] = sorted_map(ev.details)
    return d


def history_json(ev, job, v):
    job_level = ev.type == "JobLevel"
    if v.ge(1, 5, 0):
        d = {"SeqNum": ev.seq, "Type": ev.type, "JobID": job.id}
        if v.ge(1, 8, 0):
            d["JobVersion"] = job.version
        if ev.execution_id:
            d["ExecutionID"] = ev.execution_id
        d["Event"] = event_json(ev)
        d["Time"] = sim.go_time(ev.time_ns)
        return d
    js = state_change(ev.job_state, v, True) if job_level else None
    es = state_change(ev.exec_state, v, False) if not job_level else None
    if v.lt(1, 2, 0):
        return {"Type": ev.type, "JobID": job.id, "NodeID": ev.node_id,
                "ExecutionID": ev.execution_id, "JobState": js, "ExecutionState": es,
                "NewRevision": ev.revision, "Comment": ev.message,
                "Time": sim.go_time(ev.time_ns)}
    d = {"Type": ev.type, "JobID": job.id}
    if ev.node_id:
        d["NodeID"] = ev.node_id
    if ev.execution_id:
        d["ExecutionID"] = ev.execution_id
    if js:
        d["JobState"] = js
    if es:
        d["ExecutionState"] = es
    d["NewRevision"] = ev.revision
    if ev.message:
        d["Comment"] = ev.message
    if v.ge(1, 3, 1):
        d["Event"] = event_json(ev)
    d["Time"] = sim.go_time(ev.time_ns)
    return d


def history_order(job, v):
    """Up to v1.4 job-level events come first, then execution-level ones, the
    two merged by Time; from v1.5 insertion order (SeqNum)."""
    if v.ge(1, 5, 0):
        return list(job.history)
    return sorted(job.history, key=lambda ev: (ev.time_ns, ev.type != "JobLevel", ev.seq))


def list_body(key_old, items, v, token=""):
    """NextToken first (an embedded base struct), then the era's list key."""
    return {"NextToken": token, ("Items" if v.items_key else key_old): items}


# --------------------------------------------------------------------------
# v0.3 shapes of the same jobs (bacalhau.md sections 2 and 3)

E1_SHARD_STATE = {"New": "Bidding", "AskForBid": "Bidding", "AskForBidAccepted": "Waiting",
                  "BidAccepted": "Running", "Running": "Running", "Publishing": "Verifying",
                  "Completed": "Completed", "Failed": "Error", "Cancelled": "Cancelled",
                  "BidRejected": "Cancelled", "AskForBidRejected": "Cancelled"}
E4_JOB_STATE = {"Pending": "New", "Queued": "Queued", "Running": "InProgress",
                "Completed": "Completed", "Failed": "Error", "Stopped": "Cancelled"}


def e4_exec_state(state, v):
    if state in ("Running", "Publishing"):
        return "ResultAccepted" if state == "Publishing" and v.lt(1, 0, 4) else "BidAccepted"
    return state if state != "Undefined" else "New"


def newest_per_node(job):
    newest = {}
    for ex in job.executions:
        cur = newest.get(ex.node)
        if cur is None or (ex.create_ns, ex.id) > (cur.create_ns, cur.id):
            newest[ex.node] = ex
    return newest


def storage_spec(pub):
    if not pub:
        return {}
    params = pub.get("Params", {})
    if pub["Type"] == "ipfs":
        return {"StorageSource": "IPFS", "CID": str(params.get("CID", ""))}
    if pub["Type"] in ("urlDownload", "local"):
        return {"StorageSource": "URLDownload", "URL": str(params.get("URL", ""))} \
            if params.get("URL") else {}
    return {}


def v0_run_output(ro):
    stdout, stdout_cut = cut_output(ro.stdout, ro.stdout_truncated)
    stderr, stderr_cut = cut_output(ro.stderr, ro.stderr_truncated)
    return sim.run_output(stdout, stderr, ro.exit_code) | {
        "stdouttruncated": stdout_cut, "stderrtruncated": stderr_cut, "runnerError": ro.error_msg}


def e1_state(job):
    """The E1 JobState: one shard "0" per node, from its newest execution."""
    nodes = {}
    for node, ex in newest_per_node(job).items():
        shard = {"NodeId": node, "State": E1_SHARD_STATE.get(ex.state, "Bidding")}
        if ex.message:
            shard["Status"] = ex.message
        done = ex.state == "Completed"
        shard["VerificationResult"] = {"Complete": True, "Result": True} if done else {}
        shard["PublishedResults"] = storage_spec(ex.published)
        if ex.run_output is not None:
            shard["RunOutput"] = v0_run_output(ex.run_output)
        nodes[node] = {"Shards": {"0": shard}}
    return {"Nodes": nodes}


def e4_state(job, v):
    execs = []
    for ex in sorted(job.executions, key=lambda e: (e.create_ns, e.id)):
        d = {"JobID": job.id, "NodeId": ex.node, "ComputeReference": ex.id,
             "State": e4_exec_state(ex.state, v)}
        if v.ge(0, 3, 29) and v.lt(1, 0, 4):
            d["AcceptedAskForBid"] = ex.state not in ("New", "AskForBid", "AskForBidRejected")
        if ex.message:
            d["Status"] = ex.message
        if v.lt(1, 0, 4):
            d["VerificationResult"] = {"Complete": True, "Result": True} \
                if ex.state == "Completed" else {}
        else:
            d["DesiredState"] = DESIRED_STATES.index(ex.desired)
        d["PublishedResults"] = storage_spec(ex.published)
        if ex.run_output is not None:
            d["RunOutput"] = v0_run_output(ex.run_output)
        d.update({"Version": ex.revision, "CreateTime": sim.go_time(ex.create_ns),
                  "UpdateTime": sim.go_time(ex.modify_ns)})
        execs.append(d)
    return {"JobID": job.id, "Executions": execs, "State": E4_JOB_STATE.get(job.state, "New"),
            "Version": job.revision, "CreateTime": sim.go_time(job.create_ns),
            "UpdateTime": sim.go_time(job.modify_ns), "TimeoutAt": GO_ZERO_TIME}


# --------------------------------------------------------------------------
# Queries as echo binds them: names case-insensitive, the first value wins

class BadParam(Exception):
    pass


class Query:
    def __init__(self, raw):
        self.values = {}
        for name, value in parse_qsl(raw or "", keep_blank_values=True):
            self.values.setdefault(name.lower(), value)

    def text(self, name, default=""):
        return self.values.get(name, default)

    def has(self, name):
        return name in self.values

    def uint(self, name, bits=32, default=0):
        text = self.values.get(name, "")
        if text == "":
            return default
        if not re.fullmatch(r"[0-9]+", text):
            raise BadParam(f'strconv.ParseUint: parsing "{text}": invalid syntax')
        if int(text) >= 1 << bits:
            raise BadParam(f'strconv.ParseUint: parsing "{text}": value out of range')
        return int(text)

    def int64(self, name):
        text = self.values.get(name, "")
        if text == "":
            return 0
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise BadParam(f'strconv.ParseInt: parsing "{text}": invalid syntax')
        return int(text)

    def bool(self, name):
        text = self.values.get(name, "")
        if text == "":
            return False
        if text in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if text in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        raise BadParam(f'strconv.ParseBool: parsing "{text}": invalid syntax')


class APIError(Exception):
    """An error reply, built by the API for its version."""

    def __init__(self, status, message, code="InternalError", component="APIServer",
                 legacy=None, hint=None, details=None, echo=True):
        super().__init__(message)
        self.status, self.message, self.code, self.component = status, message, code, component
        self.legacy, self.hint, self.details, self.echo = legacy, hint, details, echo


def not_found(job_ref, v):
    if v.lt(1, 5, 0):
        return APIError(500, "Internal Server Error", legacy=f"Job not found. ID: {job_ref}")
    return APIError(404, f"job not found: {job_ref}", code="NotFound", component="JobStore")


UUID_RE = re.compile(r"(?:[a-z]-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --------------------------------------------------------------------------
# Auth (bacalhau-v1.md section 6)

AUTH_MODES = ("none", "users", "ns-anon")
OPEN_PATHS = ("/api/v1/agent/alive", "/api/v1/agent/version", "/api/v1/agent/authconfig",
              "/api/v1/version")


class Auth:
    def __init__(self):
        self.lock = threading.Lock()
        self.mode = "none"
        self.api_keys, self.users, self.tokens = set(), {}, set()

    def configure(self, spec, v):
        mode = spec.get("mode", "none")
        if mode not in AUTH_MODES:
            raise sim.ControlError(400, f'"mode" must be one of {AUTH_MODES}')
        if mode == "users" and v.lt(1, 7, 0):
            raise sim.ControlError(409, "API keys and users exist from v1.7.0")
        if mode == "ns-anon" and v.lt(1, 2, 1):
            raise sim.ControlError(409, "the authz middleware exists from v1.2.1")
        users = spec.get("users", {})
        if not isinstance(users, dict) or not all(isinstance(p, str) for p in users.values()):
            raise sim.ControlError(400, '"users" must map names to passwords')
        with self.lock:
            self.mode = mode
            self.api_keys = set(spec.get("api_keys", []))
            self.users = {name.lower(): pw for name, pw in users.items()}
            self.tokens = set(spec.get("tokens", []))
        return self.view()

    def view(self):
        return {"mode": self.mode, "api_keys": len(self.api_keys), "users": sorted(self.users),
                "tokens": len(self.tokens)}

    def reason(self, req, path):
        """Why this request is refused (status, reason), or None."""
        with self.lock:
            mode, keys, users, tokens = self.mode, self.api_keys, self.users, self.tokens
        header = req.headers.get("Authorization") if req.headers is not None else None
        if mode == "users":
            if path in OPEN_PATHS or path.startswith("/api/v1/auth"):
                return None
            if not header:
                return 401, "missing authorization header"
            if header.startswith("Bearer "):
                return None if header[7:] in keys else (401, "authentication failed: invalid API key")
            if header.startswith("Basic "):
                try:
                    name, _, pw = base64.b64decode(header[6:], validate=True).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    return 401, "authentication failed: failed to decode basic auth credentials"
                ok = users.get(name.lower()) == pw and name.lower() in users
                return None if ok else (401, "authentication failed: invalid basic auth credentials")
            return 401, "authentication failed"
        if mode == "ns-anon" and path == "/api/v1/orchestrator/jobs" and req.method == "GET":
            if not header:
                return 403, "Access denied. "
            if not header.startswith("Bearer ") or header[7:] not in tokens:
                return 401, "Invalid token. "
        return None


# --------------------------------------------------------------------------
# The API

class BacalhauV1API:
    """One Bacalhau release on jobsim's Bacalhau port (see the module docstring)."""

    name = "bacalhau"
    body_max = 10 << 20

    def __init__(self, version, scenario, bulk=0):
        self.v = Version(version)
        self.store = Store(self.v)
        self.auth = Auth()
        self.content_type = APPLICATION_JSON if self.v.ge(1, 0, 4) else sim.TEXT_PLAIN
        if scenario in ("seed", "demo"):
            add_seed_jobs(self.store)
        if bulk:
            self.store.bulk(bulk, "Completed", "b")

    # ---- jobsim's API interface

    def too_large(self):
        if self.v.orchestrator:
            return self.error_reply(APIError(413, "Request Entity Too Large"), None)
        return sim.go_error(400, "http: request body too large")

    def job_key(self, req):
        m = re.match(r"/api/v1/orchestrator/jobs/([^/]+)", req.path)
        if m:
            return m.group(1)
        if req.path.endswith("/states"):
            query, _ = sim.go_decode(req.body, "stateRequest", sim.STATE_REQUEST)
            return query.get("job_id", "") if query is not None else None
        return None

    def handle(self, req):
        if not self.v.orchestrator:
            return self.handle_mux(req)
        try:
            return self.handle_echo(req)
        except APIError as err:
            return self.error_reply(err, req)
        except BadParam as err:
            text = str(err)
            return self.error_reply(APIError(
                400, f"code=400, message={text}, internal={text}",
                legacy=f"code=400, message=code=400, message={text}, internal={text}"), req)

    # ---- replies

    def headers(self, req):
        out = []
        if self.v.ge(1, 2, 1):
            out += [("X-Bacalhau-Arch", "amd64"), ("X-Bacalhau-Build-Date", "2025-01-01T00:00:00Z"),
                    ("X-Bacalhau-Build-Os", "linux"), ("X-Bacalhau-Git-Commit", GIT_COMMIT),
                    ("X-Bacalhau-Git-Version", self.v.text)]
        out.append(("X-Request-Id", str(uuid.uuid4())))
        return out

    def ok(self, req, value, status=200):
        return sim.reply(status, APPLICATION_JSON, echo_json(value, self.v), self.headers(req))

    def error_reply(self, err, req):
        if self.v.lt(1, 5, 0):
            legacy = err.legacy if err.legacy is not None \
                else f"code={err.status}, message={err.message}"
            body = {"error": legacy, "message": err.message}
        else:
            request_id = ""
            if req is not None and req.headers is not None:
                request_id = req.headers.get("X-Request-ID") or ""
            body = {"Status": err.status, "Message": err.message, "RequestID": request_id,
                    "Code": err.code, "Component": err.component}
            if self.v.ge(1, 5, 1):
                if err.hint:
                    body["Hint"] = err.hint
                if err.details:
                    body["Details"] = err.details
        headers = self.headers(req) if req is not None else []
        return sim.reply(err.status, APPLICATION_JSON, echo_json(body, self.v), headers)

    def route_not_found(self):
        if self.v.ge(1, 8, 0):
            return APIError(404, "The requested resource/URL was not found.", code="NotFound",
                            hint="Check the URL and the method of the request",
                            details={"cli_usage": "bacalhau --help"})
        return APIError(404, "Not Found")

    # ---- echo routes (v1.0.4+)

    def handle_echo(self, req):
        path = req.path
        if self.v.ge(1, 4, 0):
            refused = self.check_client_version(req)
            if refused:
                return refused
        refused = self.auth.reason(req, path)
        if refused:
            raise self.auth_error(*refused)
        if path in ("/", "/version", "/livez") and self.v.ge(1, 7, 0):
            target = {"/": "/api/v1/agent/node", "/version": "/api/v1/agent/version",
                      "/livez": "/api/v1/agent/alive"}[path]
            return sim.reply(301, "text/html; charset=utf-8",
                             f'<a href="{target}">Moved Permanently</a>.\n\n'.encode(),
                             [("Location", target)])
        legacy = re.fullmatch(r"(?:/api/v1)?/requester/([a-z_/]+)", path)
        if legacy:
            return self.legacy_echo(req, legacy.group(1))
        if path.startswith("/api/v1/agent/"):
            return self.agent(req, path[len("/api/v1/agent/"):])
        if path == "/api/v1/orchestrator/jobs":
            self.need_get(req)
            return self.list_jobs(req, Query(req.query))
        m = re.fullmatch(r"/api/v1/orchestrator/jobs/([^/]+)(/[a-z]+)?", path)
        if m:
            self.need_get(req)
            sub = m.group(2) or ""
            if sub in ("", "/executions", "/history", "/results"):
                return getattr(self, "job_" + (sub[1:] or "get"))(req, m.group(1), Query(req.query))
        raise self.route_not_found()

    def need_get(self, req):
        if req.method != "GET":
            raise APIError(405, "Method Not Allowed")

    def check_client_version(self, req):
        """v1.4.0+ refuses clients that say they are older (jobfs never says),
        with a body of its own shape; None when the request may go on."""
        sent = req.headers.get("X-Bacalhau-Git-Version") if req.headers is not None else None
        if sent is None:
            return None
        m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(-.*)?", sent)
        if not m:
            return self.ok(req, {"Error": f"Invalid client version {sent}"}, status=400)
        t = tuple(int(p) for p in m.groups()[:3])
        if t != (0, 0, 0) and t < (1, 4, 0):
            return self.ok(req, {"Error": "Client version is outdated. Update your client",
                                 "MinVersion": "1.4.0", "ClientVersion": sent,
                                 "ServerVersion": self.v.text}, status=403)
        return None

    def auth_error(self, status, reason):
        if self.auth.mode == "users":
            if self.v.lt(1, 8, 0):    # v1.7.0: the authorizer's errors become 500s
                return APIError(500, reason)
            return APIError(401, "Request Unauthorized", code="Unauthorized",
                            component="Authorizer",
                            hint="Unauthorized principal. Event has been recorded.",
                            details={"reason": reason[:1].upper() + reason[1:]})
        if self.v.ge(1, 8, 0):
            message = "Request Forbidden" if status == 403 else "Request Unauthorized"
            return APIError(status, message, code="Forbidden" if status == 403 else "Unauthorized",
                            component="Authorizer", details={"reason": reason.strip()})
        return APIError(status, reason)

    def agent(self, req, what):
        self.need_get(req)
        v = self.v
        if what == "alive":
            return self.ok(req, {"Status": "OK"})
        if what == "version":
            major, minor = str(v.t[0]), str(v.t[1])
            if v.lt(1, 2, 0):
                return self.ok(req, {"major": major, "minor": minor, "gitversion": v.text,
                                     "gitcommit": GIT_COMMIT, "builddate": "2025-01-01T00:00:00Z",
                                     "goos": "linux", "goarch": "amd64"})
            return self.ok(req, {"Major": major, "Minor": minor, "GitVersion": v.text,
                                 "GitCommit": GIT_COMMIT, "BuildDate": "2025-01-01T00:00:00Z",
                                 "GOOS": "linux", "GOARCH": "amd64"})
        if what == "node":
            node = {}
            if v.lt(1, 4, 0):
                node["PeerInfo"] = {"ID": self.store.node_id(0), "Addrs": []}
            if v.ge(1, 3, 0):
                node["NodeID"] = self.store.node_id(0)
            node.update({"NodeType": "Requester", "Labels": {}})
            if v.ge(1, 5, 2):
                node["SupportedProtocols"] = ["bprotocol/v2", "ncl/v1"] if v.ge(1, 7, 0) \
                    else ["bprotocol/v2"]
            return self.ok(req, node)
        raise self.route_not_found()

    # ---- jobs

    def resolve(self, ref, query):
        """GET /jobs/{id}'s lookup: a job, or an APIError, as the era does it."""
        v, jobs = self.v, self.store.all()
        if v.ge(1, 8, 0):   # a name first, in the namespace asked for
            ns = query.text("namespace") or "default"
            named = [j for j in jobs if j.name == ref and j.namespace == ns]
            if named:
                return named[0]
        exact = self.store.get(ref)
        if exact is not None:
            return exact
        if v.lt(1, 1, 0):
            raise not_found(ref, v)
        if v.lt(1, 2, 2):
            core = ref[2:] if ref.startswith("j-") else ref
            if len(core) > 8:   # ShortID(id) != id: no prefix search
                raise not_found(ref, v)
        elif UUID_RE.fullmatch(ref):
            raise not_found(ref, v)
        matches = [j for j in jobs if j.id.startswith(ref)]
        if not matches:
            raise not_found(ref, v)
        if len(matches) > 1:
            if v.lt(1, 5, 0):
                raise APIError(500, "Internal Server Error",
                               legacy=f"Multiple jobs found for jobID prefix: {ref}")
            raise APIError(500, f"multiple jobs found for id prefix: {ref}",
                           code="MultipleJobsFound", component="JobStore",
                           hint="Use full job ID")
        return matches[0]

    def job_get(self, req, ref, query):
        with self.store.lock:
            job = self.resolve(ref, query)
            body = {"Job": job_json(job, self.v)}
            if self.v.ge(1, 2, 2):
                include = {w.strip() for w in query.text("include").split(",")}
                if "history" in include:
                    items = [history_json(ev, job, self.v) for ev in history_order(job, self.v)]
                    if self.v.ge(1, 5, 0):
                        items = items[:HISTORY_PAGE]
                    body["History"] = list_body("History", items, self.v)
                if "executions" in include:
                    execs = self.sorted_executions(job, "", False)
                    body["Executions"] = list_body(
                        "Executions", [execution_json(ex, job, self.v, executions_embed_job(self.v))
                                       for ex in execs], self.v)
        return self.ok(req, body)

    def sub_resource_job(self, ref, query, what):
        """The job of /executions, /history, /results, or the era's error."""
        try:
            return self.resolve(ref, query)
        except APIError:
            v = self.v
            if v.lt(1, 5, 0):
                raise APIError(500, "Internal Server Error", legacy="bucket not found") from None
            if v.ge(1, 8, 0) or what == "results":
                raise not_found(ref, v) from None
            if what == "history":
                return None
            raise APIError(404, "bucket not found", code="BoltDBBucketNotFound",
                           component="BoltDB") from None

    def sorted_executions(self, job, order_by, reverse):
        v = self.v
        if v.lt(1, 5, 0):
            keys = {"": "modify", "modify_time": "modify", "create_time": "create", "id": "id",
                    "state": "state"}
            if order_by not in keys:
                raise APIError(400, "invalid order_by: " + order_by)
        else:
            keys = {"": "create", "create_time": "create", "created_at": "create",
                    "modify_time": "modify", "modified_at": "modify"}
            if order_by not in keys and v.lt(1, 8, 0):
                raise APIError(500, "Internal server error", component="Unknown")
        key = keys.get(order_by)
        execs = list(job.executions)
        sort_key = {"create": lambda e: (e.create_ns, e.id), "modify": lambda e: (e.modify_ns, e.id),
                    "id": lambda e: e.id, "state": lambda e: exec_state_number(e.state, v)}.get(key)
        if sort_key:
            execs.sort(key=sort_key, reverse=reverse)
        return execs

    def job_executions(self, req, ref, query):
        limit = query.uint("limit")
        reverse = query.bool("reverse")
        with self.store.lock:
            job = self.sub_resource_job(ref, query, "executions")
            execs = self.sorted_executions(job, query.text("order_by"), reverse)
            if limit:
                execs = execs[:limit]
            items = [execution_json(ex, job, self.v, executions_embed_job(self.v)) for ex in execs]
        return self.ok(req, list_body("Executions", items, self.v))

    def job_history(self, req, ref, query):
        v = self.v
        since = query.int64("since")
        if since < 0:
            raise APIError(400, "Key: 'ListJobHistoryRequest.Since' Error:Field validation for "
                                "'Since' failed on the 'gte' tag")
        event_type = query.text("event_type") or "all"
        if event_type not in ("all", "job", "execution"):
            raise APIError(400, "Key: 'ListJobHistoryRequest.EventType' Error:Field validation "
                                "for 'EventType' failed on the 'oneof' tag")
        limit = query.uint("limit") if v.ge(1, 5, 0) else 0
        with self.store.lock:
            job = self.sub_resource_job(ref, query, "history")
            if job is None:
                return self.ok(req, list_body("History", [], v))
            events = history_order(job, v)
            events = [ev for ev in events if ev.time_ns >= since * 10**9]
            if event_type != "all":
                want = "JobLevel" if event_type == "job" else "ExecutionLevel"
                events = [ev for ev in events if ev.type == want]
            exec_ref = query.text("execution_id")
            if exec_ref:
                events = [ev for ev in events if ev.execution_id.startswith(exec_ref)]
            node_ref = query.text("node_id") if v.lt(1, 5, 0) else ""
            if node_ref:
                events = [ev for ev in events if ev.node_id.startswith(node_ref)]
            token = ""
            if v.ge(1, 5, 0):
                events, token = self.history_page(job, events, limit, query.text("next_token"),
                                                  exec_ref)
            items = [history_json(ev, job, v) for ev in events]
        return self.ok(req, list_body("History", items, v, token))

    def history_page(self, job, events, limit, token, exec_ref):
        """v1.5+ history paging: ":N:<limit>:<next SeqNum>", present while more
        items exist or while the job (or the execution asked for) is live."""
        start = 1
        if token:
            try:
                parts = unb64url(token).split(":")
                if len(parts) != 4:
                    raise ValueError
                start = int(parts[3])
            except (ValueError, UnicodeDecodeError, base64.binascii.Error):
                raise APIError(400, f"invalid next token: {token}", code="BadRequest",
                               component="JobStore") from None
        page = limit or HISTORY_PAGE
        events = [ev for ev in events if ev.seq >= start]
        more = len(events) > page
        events = events[:page]
        live = not job.terminal
        if exec_ref:
            ex = next((e for e in job.executions if e.id.startswith(exec_ref)), None)
            live = ex is not None and ex.state not in EXEC_TERMINAL
        if more or live:
            next_seq = events[-1].seq + 1 if events else start
            return events, b64url(f":N:{limit}:{next_seq}")
        return events, ""

    def job_results(self, req, ref, query):
        with self.store.lock:
            job = self.sub_resource_job(ref, query, "results")
            if job.type not in ("batch", "ops") and self.v.ge(1, 2, 0):
                raise APIError(500, "Internal server error", component="Unknown",
                               legacy=f"job type {job.type} does not support results")
            items = [spec_config_json(ex.published, self.v) for ex in job.executions
                     if ex.state == "Completed"
                     and not (self.v.ge(1, 5, 0) and not (ex.published or {}).get("Type"))]
        return self.ok(req, list_body("Results", items, self.v))

    def list_jobs(self, req, query):
        v = self.v
        limit = query.uint("limit")
        reverse = query.bool("reverse")
        order_by = query.text("order_by")
        namespace = query.text("namespace")
        token = query.text("next_token")
        jobs = [j for j in self.store.all() if namespace in ("", "*") or j.namespace == namespace]
        if v.lt(1, 2, 2):
            offset = 0
            if token:
                if not re.fullmatch(r"[0-9]+", token):
                    raise BadParam(f'strconv.ParseUint: parsing "{token}": invalid syntax')
                offset = int(token)
            if order_by == "created_at":
                jobs.sort(key=lambda j: j.create_ns, reverse=reverse)
            elif order_by == "id":
                jobs.sort(key=lambda j: j.id, reverse=reverse)
            else:   # Go map order: any; a fixed shuffle keeps tests repeatable
                jobs.sort(key=lambda j: hashlib.sha1(j.id.encode()).digest())
            if offset > len(jobs):
                raise APIError(500, "Internal Server Error",
                               legacy="runtime error: slice bounds out of range")
            page = jobs[offset:offset + limit] if limit else jobs[offset:]
            with self.store.lock:
                items = [job_json(j, v) for j in page]
            return self.ok(req, list_body("Jobs", items, v))
        offset = 0
        if token:
            try:
                text = unb64url(token)
            except (ValueError, UnicodeDecodeError, base64.binascii.Error):
                text = None
            parts = text.split(":") if text is not None else []
            if len(parts) != 4 or parts[1] not in ("Y", "N") or not parts[2].isdigit() \
                    or not parts[3].isdigit():
                raise APIError(400, f"failed to decode paging token: invalid paging token: {token}",
                               legacy=f"failed to decode paging token: invalid paging token: {token}")
            order_by, reverse, limit, offset = parts[0], parts[1] == "Y", int(parts[2]), int(parts[3])
        if v.ge(1, 5, 0) and order_by not in ("", "created_at", "modified_at"):
            raise APIError(500, f"unsupported order_by field: {order_by}", component="JobStore")
        if order_by == "modified_at":
            jobs.sort(key=lambda j: (j.modify_ns, j.id), reverse=reverse)
        else:
            jobs.sort(key=lambda j: (j.create_ns, j.id), reverse=reverse)
        page = jobs[offset:offset + limit] if limit else jobs[offset:]
        next_token = ""
        if limit and offset + limit < len(jobs):
            next_token = b64url(f"{order_by}:{'Y' if reverse else 'N'}:{limit}:{offset + limit}")
        with self.store.lock:
            items = [job_json(j, v) for j in page]
        return self.ok(req, list_body("Jobs", items, v, next_token))

    # ---- the legacy requester API

    def legacy_echo(self, req, what):
        """/requester/* and /api/v1/requester/* on an echo server: working
        up to v1.4 (the E4 shapes), 410 in v1.5-v1.6, gone from v1.7."""
        v = self.v
        if v.ge(1, 7, 0):
            raise self.route_not_found()
        if v.ge(1, 5, 0):
            posts = ("list", "states", "results", "events", "submit", "cancel", "debug")
            gets = ("nodes", "websocket/events")
            if what not in posts + gets:
                raise self.route_not_found()
            if req.method != ("POST" if what in posts else "GET"):
                raise APIError(405, "Method Not Allowed")
            return sim.reply(410, APPLICATION_JSON, sim.utf8(sim.go_json(DEPRECATED) + "\n"),
                             self.headers(req))
        if what == "states":
            return self.legacy_states(req, echo=True)
        if what == "list":
            return self.legacy_list(req, echo=True)
        raise self.route_not_found()

    def handle_mux(self, req):
        """v0.3.x and v1.0.0-v1.0.3: Go's ServeMux, exact paths, any method."""
        v = self.v
        if v.lt(0, 3, 17):
            prefixes = ("",)
        elif v.lt(1, 0, 0):
            prefixes = ("/requester",)
        else:
            prefixes = ("/requester", "/api/v1/requester")
        for prefix in prefixes:
            if req.path == prefix + "/states":
                return self.legacy_states(req, echo=False)
            if req.path == prefix + "/list":
                return self.legacy_list(req, echo=False)
        if req.path == ("/api/v1/version" if v.ge(1, 0, 0) else "/version"):
            query, error = sim.go_decode(req.body, "versionRequest", {"client_id": "string"})
            if error:
                return sim.go_error(400, error)
            info = {"major": str(v.t[0]), "minor": str(v.t[1]), "gitversion": v.text,
                    "gitcommit": GIT_COMMIT, "builddate": "2023-01-01T00:00:00Z",
                    "goos": "linux", "goarch": "amd64"}
            return sim.reply(200, sim.TEXT_PLAIN,
                             sim.utf8(sim.go_json({"build_version_info": info}) + "\n"))
        return sim.go_error(404, "404 page not found")

    def v0_state(self, job):
        return e1_state(job) if self.v.lt(0, 3, 20) else e4_state(job, self.v)

    def legacy_states(self, req, echo):
        query, error = sim.go_decode(req.body, "stateRequest", sim.STATE_REQUEST)
        if error:
            if echo:
                return self.error_reply(APIError(400, error), req)
            return sim.go_error(400, error)
        job_id = query.get("job_id", "")
        headers = sim.bacalhau_headers(query.get("client_id", ""), job_id)
        with self.store.lock:
            job = self.store.get(job_id)
            state = self.v0_state(job) if job is not None else None
        if job is None:
            if echo:
                return self.error_reply(not_found(job_id, self.v), req)
            return sim.go_error(500, f"Job not found. ID: {job_id}", headers)
        if self.v.lt(0, 3, 20):
            text = '{"state":' + sim.job_state_json(state) + "}\n"
        else:
            text = sim.go_json({"state": state}) + "\n"
        if echo:
            return sim.reply(200, APPLICATION_JSON,
                             echo_json({"state": json.loads(text)["state"]}, self.v),
                             headers + self.headers(req))
        return sim.reply(200, sim.TEXT_PLAIN, sim.utf8(text), headers)

    def legacy_list(self, req, echo):
        query, error = sim.go_decode(req.body, "listRequest", sim.LIST_REQUEST)
        if error:
            return self.error_reply(APIError(400, error), req) if echo else sim.go_error(400, error)
        ref = query.get("id", "")
        client_id = query.get("client_id", "")
        with self.store.lock:
            jobs = self.store.all()
            if ref:
                hit = self.store.get(ref)
                if hit is None and len(ref) == sim.SHORT_ID_LENGTH:
                    hit = next((j for j in jobs if j.id.startswith(ref)), None)
                if hit is None:
                    if echo:
                        return self.error_reply(not_found(ref, self.v), req)
                    return sim.go_error(400, sim.job_not_found_json(ref))
                jobs = [hit]
            elif client_id and not query.get("return_all", False):
                jobs = [j for j in jobs if j.client_id == client_id]
            limit = query.get("max_jobs", 0)
            if limit > 0:
                jobs = jobs[:limit]
            if query.get("sort_by") == "created_at":
                jobs.sort(key=lambda j: (j.create_ns, j.id), reverse=query.get("sort_reverse", False))
            elif query.get("sort_by") == "id":
                jobs.sort(key=lambda j: j.id, reverse=query.get("sort_reverse", False))
            if self.v.lt(0, 3, 20):
                body = sim.job_list_body([sim.Job(j.id, j.client_id, j.create_ns, e1_state(j))
                                          for j in jobs])
                return sim.Reply(200, [("Content-Type", sim.TEXT_PLAIN)], body)
            items = [{"Job": {"APIVersion": "V1beta1",
                              "Metadata": {"ID": j.id, "CreatedAt": sim.go_time(j.create_ns),
                                           "ClientID": j.client_id,
                                           "Requester": {"RequesterNodeID": j.requester}},
                              "Spec": json.loads(sim.JOB_SPEC_JSON)},
                      "State": e4_state(j, self.v)} for j in jobs]
        if echo:
            return sim.reply(200, APPLICATION_JSON, echo_json({"jobs": items}, self.v),
                             self.headers(req))
        return sim.reply(200, sim.TEXT_PLAIN, sim.utf8(sim.go_json({"jobs": items}) + "\n"))

    # ---- controls: /_sim/...

    def control(self, method, parts, body):
        store = self.store
        if parts == ["version"] and method == "GET":
            return sim.json_reply(200, {"version": self.v.text, "era": self.v.era,
                                        "orchestrator": self.v.orchestrator})
        if parts == ["seed"] and method == "GET":
            return sim.json_reply(200, store.seed)
        if parts == ["auth"] and method == "POST":
            return sim.json_reply(200, self.auth.configure(sim.control_object(body), self.v))
        if parts == ["bulk"] and method == "POST":
            spec = sim.control_object(body)
            count = _check(spec.get("count", 1), int, "count")
            state = spec.get("state", "Running")
            if state not in JOB_STATES[1:] or not 0 < count <= 100000:
                raise sim.ControlError(400, '"state" or "count" out of range')
            return sim.json_reply(200, {"ids": store.bulk(count, state,
                                                          str(spec.get("prefix", "a"))[:1])})
        if parts == ["jobs"]:
            if method == "GET":
                return sim.json_reply(200, {"jobs": [j.id for j in store.all()]})
            if method == "POST":
                return self.view(store.create(sim.control_object(body)))
        if len(parts) < 2 or parts[0] != "jobs":
            return None
        job_id, rest = parts[1], parts[2:]
        if not rest:
            if method == "GET":
                return self.view(store.need(job_id))
            if method == "DELETE":
                if not store.delete(job_id):
                    raise sim.ControlError(404, f"no job {job_id}")
                return sim.json_reply(200, {"deleted": job_id})
            if method == "POST":
                return self.view(store.update(job_id, sim.control_object(body)))
        if method != "POST":
            return None
        if rest == ["executions"]:
            return self.view(store.add_execution(job_id, sim.control_object(body)))
        if len(rest) == 2 and rest[0] == "executions":
            return self.view(store.change_execution(job_id, rest[1], sim.control_object(body)))
        if rest == ["append"]:
            return self.view(store.append(job_id, sim.control_object(body)))
        if rest == ["history"]:
            return self.view(store.add_event(job_id, sim.control_object(body)))
        return None

    def view(self, job):
        with self.store.lock:
            execs = []
            for ex in job.executions:
                d = {"id": ex.id, "node": ex.node, "state": ex.state, "message": ex.message,
                     "desired_state": ex.desired, "published": ex.published,
                     "revision": ex.revision, "create_ns": ex.create_ns,
                     "modify_ns": ex.modify_ns, "run_output": None}
                if ex.run_output is not None:
                    d["run_output"] = {name: getattr(ex.run_output, name)
                                       for name in RUN_OUTPUT_FIELDS}
                execs.append(d)
            return sim.json_reply(200, {
                "id": job.id, "name": job.name, "namespace": job.namespace, "type": job.type,
                "state": job.state, "message": job.message, "revision": job.revision,
                "create_ns": job.create_ns, "modify_ns": job.modify_ns,
                "client_id": job.client_id, "executions": execs,
                "history": [{"seq": ev.seq, "type": ev.type, "topic": ev.topic,
                             "message": ev.message, "execution_id": ev.execution_id,
                             "time_ns": ev.time_ns} for ev in job.history]})

    # ---- the demo: jobs that move on their own

    def start_demo(self):
        sched = sim.Scheduler()
        store = self.store

        def demo_job(number, fails):
            job = store.create({"id": store.job_id("de300000-0000-4000-8000-%012d" % number),
                                "name": f"demo-{number}"})
            node = store.node_id(1 + number % 3)
            store.add_execution(job.id, {"node": node})
            change = partial(store.change_execution, job.id, None)
            sched.at(2, partial(change, {"state": "AskForBidAccepted"}))
            sched.at(3, partial(change, {"state": "BidAccepted"}))
            sched.at(3, partial(store.update, job.id, {"state": "Running"}))
            if fails:
                sched.at(8, partial(change, {"state": "Failed", "message": "exit status 1",
                                             "desired_state": "Stopped", "error_msg": "boom"}))
                sched.at(8, partial(store.update, job.id, {"state": "Failed"}))
                return
            lines = "".join(f"step {i}\n" for i in range(1, 11))
            sched.at(20, partial(change, {"state": "Completed", "desired_state": "Stopped",
                                          "stdout": lines, "exit_code": 0,
                                          "published": {"Type": "ipfs", "Params": {
                                              "CID": "QmYKjw9ex3Tzd4Q4zd7nEFeMjfyLhk4qYJbHa3ffUZwM1f"}}}))
            sched.at(20, partial(store.update, job.id, {"state": "Completed"}))

        demo_job(1, False)
        demo_job(2, True)

        def new_job(number):
            demo_job(number, False)
            sched.at(sim.DEMO_NEW_JOB_EVERY, partial(new_job, number + 1))
        sched.at(sim.DEMO_NEW_JOB_EVERY, partial(new_job, 3))


# --------------------------------------------------------------------------
# The seed: one job in each state jobfs shows

SEED_UUIDS = {"completed": "1efa8fb5-a3ce-4c15-8660-e6c5cd4fe981",
              "exit1": "2c0ffee0-1111-4111-8111-000000000001",
              "failed": "3fa11ed0-2222-4222-8222-000000000002",
              "running": "4a11ce00-3333-4333-8333-000000000003",
              "retried": "5e7e7e70-4444-4444-8444-000000000004"}
SEED_T0 = 1740845480101000001   # 2025-03-01T16:11:20.101000001Z: 19 digits, odd
SEED_STDOUT = "Hello from a YAML spec!\n"


def add_seed_jobs(store):
    t = iter(range(SEED_T0, SEED_T0 + 10**12, 987654321))

    def at():
        return next(t)

    def job(role, name, **spec):
        j = store.create({"id": store.job_id(SEED_UUIDS[role]), "name": name, "create_ns": at(),
                          **spec})
        store.seed[role] = j.id
        return j

    def execute(j, node, **fields):
        store.add_execution(j.id, {"node": node, "create_ns": at()})
        ex = j.executions[-1]
        store.change_execution(j.id, ex.id, {"state": "AskForBidAccepted", "modify_ns": at()})
        store.change_execution(j.id, ex.id, {"state": "BidAccepted", "modify_ns": at()})
        if fields:
            store.change_execution(j.id, ex.id, {"modify_ns": at(), **fields})
        return ex

    node_a, node_b = store.node_id(1), store.node_id(2)
    url = "http://127.0.0.1:6001/%s.tar.gz"

    j = job("completed", "hello-bacalhau")
    store.update(j.id, {"state": "Running"}, ns=at())
    ex = execute(j, node_a)
    store.change_execution(j.id, ex.id, {
        "state": "Completed", "desired_state": "Stopped", "desired_message": "execution completed",
        "stdout": SEED_STDOUT, "exit_code": 0, "modify_ns": at(),
        "published": {"Type": "urlDownload", "Params": {"URL": url % ex.id}}})
    store.update(j.id, {"state": "Completed"}, ns=at())

    j = job("exit1", "exit-one")
    store.update(j.id, {"state": "Running"}, ns=at())
    execute(j, node_a, state="Completed", desired_state="Stopped", stderr="boom\n", exit_code=1,
            published={"Type": ""})
    store.update(j.id, {"state": "Completed"}, ns=at())

    j = job("failed", "fails")
    store.update(j.id, {"state": "Running"}, ns=at())
    execute(j, node_b, state="Failed", desired_state="Stopped", desired_message="execution failed",
            message='exec: "nosuchcmd": executable file not found in $PATH',
            error_msg='exec: "nosuchcmd": executable file not found in $PATH')
    store.update(j.id, {"state": "Failed", "message": "job failed: 1 of 1 executions failed"},
                 ns=at())

    j = job("running", "still-running")
    store.update(j.id, {"state": "Running"}, ns=at())
    execute(j, node_b)

    j = job("retried", "retried")
    store.update(j.id, {"state": "Running"}, ns=at())
    execute(j, node_a, state="Failed", desired_state="Stopped", message="exit status 137",
            error_msg="exit status 137")
    execute(j, node_a, state="Completed", desired_state="Stopped", stdout="second try\n",
            exit_code=0, published={"Type": "ipfs", "Params": {
                "CID": "QmTVmC7JBD2ES2qGPqBNVWnX1KeEPNrPGb7rJ8cpFgtefe"}})
    store.update(j.id, {"state": "Completed"}, ns=at())


# --------------------------------------------------------------------------
# jobsim's hooks

def add_arguments(parser):
    parser.add_argument("--bacalhau-version", metavar="vX.Y.Z",
                        help="speak this Bacalhau release (v0.3.x to v1.9.x, see "
                             "SPEC-bacalhau-v1.md); default: jobsim's own v0.3 requester")
    parser.add_argument("--bacalhau-auth", choices=AUTH_MODES, default="none",
                        help="with --bacalhau-version: users (v1.7+: API keys, basic auth) "
                             "or ns-anon (v1.2.1+: the job list needs a token)")
    parser.add_argument("--bacalhau-api-key", action="append", default=[], metavar="KEY")
    parser.add_argument("--bacalhau-user", action="append", default=[], metavar="USER:PASSWORD")
    parser.add_argument("--bacalhau-token", action="append", default=[], metavar="TOKEN")


def make_api(args):
    try:
        api = BacalhauV1API(args.bacalhau_version, args.scenario, args.bulk_jobs)
    except ValueError as err:
        raise SystemExit(f"jobsim: {err}") from None
    if args.bacalhau_auth != "none" or args.bacalhau_api_key or args.bacalhau_user:
        users = dict(u.partition(":")[::2] for u in args.bacalhau_user)
        try:
            api.auth.configure({"mode": args.bacalhau_auth, "api_keys": args.bacalhau_api_key,
                                "users": users, "tokens": args.bacalhau_token}, api.v)
        except sim.ControlError as err:
            raise SystemExit(f"jobsim: {err}") from None
    return api
