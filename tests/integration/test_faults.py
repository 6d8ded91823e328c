"""Issue "jobfs survives down, slow and hostile servers": the fault matrix.

Each case mounts for real against its own simulator, makes the server fail
in one way (refused, killed, cut mid-reply, slow, 5xx, garbage, huge, deep,
wrong types, hostile names, flapping) and checks what a shell user gets:
the errno as `cat`/`ls` print it, how long it took (the --timeout deadline
plus a margin), that the daemon is still alive, that data read before the
fault is still served (same bytes, with user.jobfs.stale saying why) and
that .jobfs/status tells the truth. Each case has a control twin that comes
out the other way: the same read when the server is healthy again, under the
cap, under the deadline, without --max-stale, ...

Timings: --timeout=2 and --ttl=0.2 keep the suite fast; jobfs's back-off
after a failed request is 1 s (man jobfs, CACHING).
"""
import base64
import json
import os
import re
import threading
import time
import urllib.request

import pytest

from conftest import RUNNING_JOB, RUN_OK, RUN_WAIT, SEED_JOB, read, run, status, wait_for, xattr

TIMEOUT = 2.0           # --timeout of most mounts, seconds
TTL = 0.2               # --ttl: short, so that the refetch during a fault really happens
BACKOFF = 1.0           # jobfs does not ask again for a failed unit within this (man: CACHING)
MARGIN = 1.5            # scheduling slack on a loaded 2-core machine (and under ASan)
BASE = ("--poll-interval=0", f"--ttl={TTL}", f"--timeout={TIMEOUT:g}")

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
STALE, FETCHED = "user.jobfs.stale", "user.jobfs.fetched"

REFUSED = "Connection refused"
RESET = "Connection reset by peer"
TIMEDOUT = "Connection timed out"
EIO_TEXT = "Input/output error"
EAGAIN_TEXT = "Resource temporarily unavailable"
BADMSG = "Bad message"
FBIG = "File too large"
NOENT = "No such file or directory"


# --------------------------------------------------------------------------
# helpers

class Cat:
    """One `cat` of a path: exit code, stdout bytes, stderr text, seconds taken."""

    def __init__(self, path, timeout=30):
        t0 = time.monotonic()
        r = run(["cat", path], text=False, timeout=timeout)
        self.secs = time.monotonic() - t0
        self.rc, self.out = r.returncode, r.stdout
        self.err = r.stderr.decode(errors="replace")

    @property
    def ok(self):
        return self.rc == 0

    def __repr__(self):
        return f"Cat(rc={self.rc}, out={self.out[:80]!r}, err={self.err.strip()!r}, secs={self.secs:.2f})"


def cat(path, timeout=30):
    return Cat(path, timeout)





def assert_fetched_iso(path):
    v = xattr(path, FETCHED)
    assert v is not None and ISO_UTC.fullmatch(v), f"{FETCHED} of {path}: {v!r}"
    when = time.mktime(time.strptime(v, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(when - time.time()) < 120, f"{FETCHED} {v} is not about now"
    return v


def assert_failed(c, text, deadline=TIMEOUT + MARGIN):
    assert not c.ok, f"expected {text!r}, got {c!r}"
    assert text in c.err, f"expected {text!r}, got {c!r}"
    assert c.secs < deadline, f"took {c.secs:.2f}s, more than {deadline}s: {c!r}"


def note(what, secs):
    """Timings go to stdout: shown by `pytest -s`, and with a failure."""
    print(f"timing: {what}: {secs:.2f}s")


def side_name(side):
    return "bacalhau" if side == "b" else "muse"


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


class Nowhere:
    """Endpoints where nothing listens."""

    def __init__(self):
        port = free_port()
        self.bacalhau_url = f"http://127.0.0.1:{port}"
        self.muse_url = f"http://127.0.0.1:{port}/api/"


def make_job(sim, job_id, state="Running", stdout="", node="QmFault1"):
    sim.set_job(job_id, {"Nodes": {node: {"Shards": {"0": {
        "NodeId": node, "State": state,
        "RunOutput": {"stdout": stdout, "stdouttruncated": False, "stderr": "",
                      "stderrtruncated": False, "exitCode": 0, "runnerError": ""}}}}}})


def muse_truth(sim, key, name="sw_example"):
    with urllib.request.urlopen(f"{sim.muse_url}software/muse/state/{name}/{key}/", timeout=10) as r:
        return json.loads(r.read())


def sim_down(sim, seconds, side="b"):
    port = sim.bport if side == "b" else sim.mport
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_sim/down",
                                 data=json.dumps({"seconds": seconds}).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def raw_fault(sim, body, paths, side="b", **kw):
    return sim.fault(side, mode="raw", body_b64=base64.b64encode(body).decode(), paths=paths, **kw)


class Target:
    """What a fault case reads on one API: a live file cached before the fault
    (and how to change it on the server), and a unit never fetched."""

    def __init__(self, sim, m, side, new_id):
        self.sim, self.m, self.side = sim, m, side
        if side == "b":
            self.node = next(iter(sim.job(RUNNING_JOB)["Nodes"]))
            self.dir = m.p("jobs", RUNNING_JOB)
            self.file = m.p("jobs", RUNNING_JOB, self.node, "0", "stdout")
            self.fault_paths = ["/states"]
            make_job(sim, new_id, stdout="new job\n")
            self.new = m.p("jobs", new_id, "state")
            self.new_truth = b"Running\n"
        else:
            self.dir = m.p("software", "sw_example", RUN_WAIT)
            self.file = m.p("software", "sw_example", RUN_WAIT, "slurm_state")
            self.fault_paths = ["/muse/state/"]
            sim.m("POST", "/_sim/runs", {"name": "sw_example", "key": new_id})
            self.new = m.p("software", "sw_example", new_id, "cr")
            self.new_truth = b"WAIT\n"

    def truth(self):
        """The file's content as the server holds it now."""
        if self.side == "b":
            return self.sim.job(RUNNING_JOB)["Nodes"][self.node]["Shards"]["0"]["RunOutput"]["stdout"].encode()
        return (muse_truth(self.sim, RUN_WAIT)["info"]["report"]["process"]["latest_state"] + "\n").encode()

    def change(self):
        """Changes the file on the server (the control API is never faulted)."""
        if self.side == "b":
            self.sim.append(RUNNING_JOB, self.node, "step 2\n")
        else:
            self.sim.set_run("sw_example", RUN_WAIT, latest_state="COMPLETING")


def wait_stale(path, text, old, timeout=TTL + TIMEOUT + MARGIN):
    """Reads path until jobfs serves it stale (a refetch failed): the old
    bytes, and user.jobfs.stale holding the error. While the failing refetch
    is still in flight past the 1 s a reader waits, the mark says so
    ("refetch pending N s"); nothing else may show. Every read is bounded."""
    seen = []

    def stale_now():
        c = cat(path)
        seen.append(c)
        assert c.ok, f"cached data must stay readable during the fault: {c!r}"
        assert c.secs < TIMEOUT + MARGIN, f"a stale read took {c.secs:.2f}s"
        assert c.out == old, "stale data must be the bytes read before the fault"
        value = xattr(path, STALE)
        assert value in (None, text) or value.startswith("refetch pending "), \
            f"{STALE} is {value!r}, expected {text!r}"
        return value == text

    wait_for(stale_now, timeout=timeout, interval=0.05, what=f"{path} to be served stale with {text!r}")
    return seen


def wait_fresh(path, want, timeout=BACKOFF + TTL + TIMEOUT + MARGIN):
    """Reads path until jobfs serves the server's current bytes, no longer stale."""
    def fresh_now():
        c = cat(path)
        return c.ok and c.out == want and xattr(path, STALE) is None
    wait_for(fresh_now, timeout=timeout, interval=0.05, what=f"{path} to be fresh again")


# --------------------------------------------------------------------------
# refused: nothing listens, or the server was killed

def test_refused_nothing_listens_fails_fast_and_status_says_so(mount_factory):
    m = mount_factory(Nowhere(), *BASE)
    assert status(m)["bacalhau"]["reachable"] == "unknown", "no request yet"
    for i in range(3):
        c = cat(m.p("jobs", f"refused-job-{i}", "state"))
        assert_failed(c, REFUSED, deadline=TIMEOUT)  # a refusal does not wait for the deadline
    r = run(["ls", m.p("software")])
    assert r.returncode != 0 and REFUSED in r.stderr, r.stderr
    assert m.alive()
    st = status(m)
    for side in ("bacalhau", "muse"):
        assert st[side]["reachable"] == "no", st[side]
        assert st[side]["last_error"].endswith(REFUSED), st[side]
        assert ISO_UTC.match(st[side]["last_error"]), st[side]
        assert st[side]["last_success"] == "never", st[side]
    assert st["bacalhau"]["requests"] == "3" and st["bacalhau"]["errors"] == "3", st["bacalhau"]
    assert int(st["muse"]["errors"]) >= 1


def test_refused_twin_listening_server_works(sim, mount_factory):
    m = mount_factory(sim, *BASE)
    for job in (SEED_JOB, RUNNING_JOB):
        c = cat(m.p("jobs", job, "state"))
        assert c.ok and c.secs < TIMEOUT, c
    assert run(["ls", m.p("software")]).returncode == 0
    st = status(m)
    for side in ("bacalhau", "muse"):
        assert st[side]["reachable"] == "yes", st[side]
        assert st[side]["last_error"] == "never", st[side]
        assert st[side]["errors"] == "0", st[side]
    assert st["bacalhau"]["requests"] == "2"


def test_killed_server_serves_stale_then_recovers(tmp_path, sim_factory, mount_factory):
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE)
    node = next(iter(sim.job(RUNNING_JOB)["Nodes"]))
    f = m.p("jobs", RUNNING_JOB, node, "0", "stdout")
    job = m.p("jobs", RUNNING_JOB)
    before = read(f)
    assert before == b"step 1\n"
    fetched = assert_fetched_iso(f)
    assert xattr(f, STALE) is None and xattr(job, STALE) is None, "fresh data is not stale"
    listing = sorted(os.listdir(job))
    bport, mport = sim.bport, sim.mport

    sim.close()  # the simulator this test started: killed after a first read
    (tmp_path / "sim-ports.json").unlink()

    # never fetched: the error, at once (not stale, nothing to serve)
    assert_failed(cat(m.p("jobs", SEED_JOB, "state")), REFUSED, deadline=TIMEOUT)
    # fetched before: same bytes, marked stale with the error, on files and dirs
    wait_stale(f, REFUSED, before)
    assert xattr(job, STALE) == REFUSED
    assert xattr(f, FETCHED) == fetched, "the data served is the one fetched before"
    assert sorted(os.listdir(job)) == listing, "the stale job dir still lists"
    assert m.alive()
    st = status(m)["bacalhau"]
    assert st["reachable"] == "no" and st["last_error"].endswith(REFUSED), st
    assert int(st["errors"]) >= 2, st

    # twin: the server is back on the same port; the data is fresh again
    sim2 = sim_factory("--scenario", "seed", "--bacalhau-port", str(bport), "--muse-port", str(mport))
    node2 = next(iter(sim2.job(RUNNING_JOB)["Nodes"]))
    sim2.append(RUNNING_JOB, node2, "after restart\n")
    want = sim2.job(RUNNING_JOB)["Nodes"][node2]["Shards"]["0"]["RunOutput"]["stdout"].encode()
    wait_fresh(f, want)
    assert xattr(job, STALE) is None
    c = cat(m.p("jobs", SEED_JOB, "state"))
    assert c.ok and c.out == b"Completed\n", c
    st = status(m)["bacalhau"]
    assert st["reachable"] == "yes", st
    assert m.alive()


# --------------------------------------------------------------------------
# the matrix: one fault, the errno, stale data, status; then healed

MATRIX = [
    # id, side, fault, what `cat` says
    ("close-no-reply", "b", {"mode": "close"}, RESET),
    ("cut-mid-reply", "b", {"mode": "cut"}, EIO_TEXT),
    ("http-500", "b", {"mode": "status", "status": 500, "body": "internal error\n"}, EIO_TEXT),
    ("http-503", "b", {"mode": "status", "status": 503, "body": "busy\n"}, EAGAIN_TEXT),
    ("garbage-json", "b", {"mode": "garbage"}, BADMSG),
    ("truncated-json", "b", {"mode": "truncate"}, BADMSG),
    ("deep-json", "b", {"mode": "deep"}, BADMSG),
    ("huge-64MiB", "b", {"mode": "huge"}, FBIG),
    ("slower-than-deadline", "b", {"mode": "delay", "ms": 5000}, TIMEDOUT),
    ("muse-close", "m", {"mode": "close"}, RESET),
    ("muse-garbage", "m", {"mode": "garbage"}, BADMSG),
    ("muse-503", "m", {"mode": "status", "status": 503,
                       "body": '{"error":"busy","more":[],"type":"Busy"}'}, EAGAIN_TEXT),
]


@pytest.mark.parametrize("side,spec,text", [c[1:] for c in MATRIX], ids=[c[0] for c in MATRIX])
def test_fault_matrix(sim, mount_factory, side, spec, text):
    m = mount_factory(sim, *BASE)
    t = Target(sim, m, side, "fa000000-0000-4000-8000-000000000001")
    before = read(t.file)
    assert before == t.truth()
    assert_fetched_iso(t.file)
    assert xattr(t.file, STALE) is None
    other = "muse" if side == "b" else "bacalhau"

    sim.fault(side, paths=t.fault_paths, **spec)
    t.change()
    # a unit never fetched fails with the errno, within the deadline
    c = cat(t.new)
    assert_failed(c, text)
    note(f"never-fetched {text}", c.secs)
    # a unit fetched before is served as it was, marked stale with the error
    seen = wait_stale(t.file, text, before)
    note("slowest stale read", max(x.secs for x in seen))
    assert xattr(t.dir, STALE) == text
    assert m.alive()
    st = status(m)
    assert st[side_name(side)]["reachable"] == "no", st
    assert st[side_name(side)]["last_error"].endswith(text), st
    assert int(st[side_name(side)]["errors"]) >= 2, st
    assert st[other]["errors"] == "0", "the other endpoint is not blamed"

    # twin: healed, the new data shows after the back-off, nothing stale
    sim.fault(side, mode="none")
    after = t.truth()
    assert after != before
    t_heal = time.monotonic()
    wait_fresh(t.file, after)
    note("fresh again after healing", time.monotonic() - t_heal)
    assert xattr(t.dir, STALE) is None
    wait_for(lambda: cat(t.new).out == t.new_truth, timeout=BACKOFF + MARGIN,
             what="the never-fetched unit to be readable")
    st = status(m)[side_name(side)]
    assert st["reachable"] == "yes", st
    errors = st["errors"]
    time.sleep(TTL + 0.05)  # settle: let the TTL pass so that the next read refetches
    assert cat(t.file).out == after
    assert status(m)[side_name(side)]["errors"] == errors, "a healthy refetch is no error"
    assert m.alive()


def test_slow_under_deadline_succeeds(sim, mount_factory):
    """Twin of slower-than-deadline: a 0.5 s delay with a 2 s deadline is fine."""
    m = mount_factory(sim, *BASE)
    t = Target(sim, m, "b", "fa000000-0000-4000-8000-000000000002")
    read(t.file)
    sim.fault(mode="delay", ms=500, paths=t.fault_paths)
    t.change()
    c = cat(t.new)
    assert c.ok and c.out == t.new_truth, c
    assert 0.45 <= c.secs < TIMEOUT, c
    time.sleep(TTL + 0.05)  # settle: let the TTL pass so that the next read refetches
    c = cat(t.file)
    assert c.ok and c.out == t.truth(), "the delayed reply is the fresh data"
    assert 0.45 <= c.secs < TIMEOUT, c
    assert xattr(t.file, STALE) is None
    st = status(m)["bacalhau"]
    assert st["reachable"] == "yes" and st["errors"] == "0", st


# --------------------------------------------------------------------------
# size and depth caps, with twins on the other side of the cap

def test_huge_reply_cap_is_max_reply(sim, mount_factory):
    """64 MiB: EFBIG under the default 16M cap; with --max-reply=128M the
    whole reply is read and then judged (a bare JSON string is not a states
    reply: EBADMSG), so it is the cap that refused it."""
    capped = mount_factory(sim, *BASE)
    roomy = mount_factory(sim, *BASE, "--max-reply=128M")
    sim.fault(mode="huge", paths=["/states"])
    assert_failed(cat(capped.p("jobs", SEED_JOB, "state")), FBIG)
    c = cat(roomy.p("jobs", SEED_JOB, "state"))
    assert_failed(c, BADMSG, deadline=TIMEOUT + 2 * MARGIN)
    assert capped.alive() and roomy.alive()


def test_reply_under_cap_reads_over_cap_efbig(sim, mount_factory):
    m = mount_factory(sim, *BASE, "--max-reply=64K")
    small, big = "5a000000-0000-4000-8000-000000000001", "b1900000-0000-4000-8000-000000000002"
    small_out = ("s" * 99 + "\n") * 600          # 60,000 bytes: the reply fits in 64 KiB
    make_job(sim, small, state="Completed", stdout=small_out)
    make_job(sim, big, state="Completed", stdout="b" * 70000)
    c = cat(m.p("jobs", small, "QmFault1", "0", "stdout"))
    assert c.ok and c.out == small_out.encode(), c
    assert_failed(cat(m.p("jobs", big, "state")), FBIG)
    assert m.alive()
    assert status(m)["bacalhau"]["last_error"].endswith(FBIG)


def nested(depth):
    v = 0
    for _ in range(depth):
        v = [v]
    return v


def test_nesting_cap(sim, mount_factory):
    """JSON nested deeper than 64 levels is EBADMSG; twin: 40 levels of an
    unknown field are ignored and the job is shown."""
    m = mount_factory(sim, *BASE)
    ok, deep = "dee90000-0000-4000-8000-000000000040", "dee90000-0000-4000-8000-000000000100"
    for job, depth in ((ok, 40), (deep, 100)):
        sim.set_job(job, {"Nodes": {"QmDeep": {"Shards": {"0": {"NodeId": "QmDeep", "State": "Completed"}}}},
                          "Extra": nested(depth)})
    c = cat(m.p("jobs", ok, "state"))
    assert c.ok and c.out == b"Completed\n", c
    assert_failed(cat(m.p("jobs", deep, "state")), BADMSG)
    sim.fault(mode="deep", depth=100000, paths=["/states"])
    assert_failed(cat(m.p("jobs", RUNNING_JOB, "state")), BADMSG)
    assert m.alive()


# --------------------------------------------------------------------------
# wrong types, field by field: the mount shows what it can

def test_wrong_types_bacalhau_field_by_field(sim, mount_factory):
    m = mount_factory(sim, *BASE)
    job = "7e000000-0000-4000-8000-000000000001"

    def shard(**fields):
        return {"Shards": {"0": fields}}
    sim.set_job(job, {
        "State": 3,                                   # job-level State not a string: summary from shards
        "Nodes": {
            "QmStateNum": shard(State=5, Status="ok"),  # a number is written as in the JSON
            "QmRunOutStr": shard(State="Running", RunOutput="oops"),
            "QmStdoutNum": shard(State="Running", RunOutput={"stdout": 42, "stderr": "e\n",
                                                             "exitCode": "0"}),
            "QmPubArray": shard(State="Completed", PublishedResults=["CID"],
                                VerificationResult="yes"),
            "QmShardsArray": {"Shards": [1, 2]},
            "QmShardNum": {"Shards": {"0": 7}},
            "QmNodeNull": None,
            "QmGood": shard(State="Running", RunOutput={"stdout": "fine\n"}),
        }})
    d = m.p("jobs", job)
    assert sorted(os.listdir(d)) == sorted(["QmStateNum", "QmRunOutStr", "QmStdoutNum", "QmPubArray",
                                            "QmGood", "state", "state.json"])
    assert read(os.path.join(d, "state")) == b"Running\n"
    assert read(os.path.join(d, "QmStateNum", "0", "state")) == b"5\n"
    assert read(os.path.join(d, "QmStateNum", "0", "status")) == b"ok\n"
    assert sorted(os.listdir(os.path.join(d, "QmRunOutStr", "0"))) == ["state"]
    assert sorted(os.listdir(os.path.join(d, "QmStdoutNum", "0"))) == ["exitCode", "state", "stderr"]
    assert read(os.path.join(d, "QmStdoutNum", "0", "stderr")) == b"e\n"
    assert read(os.path.join(d, "QmStdoutNum", "0", "exitCode")) == b"0\n"
    assert sorted(os.listdir(os.path.join(d, "QmPubArray", "0"))) == ["state"]
    assert read(os.path.join(d, "QmGood", "0", "stdout")) == b"fine\n"
    # Nodes as an array: the job is there, with what the reply has
    arr = "7e000000-0000-4000-8000-000000000002"
    sim.set_job(arr, {"Nodes": [{"Shards": {"0": {"State": "Running"}}}]})
    assert sorted(os.listdir(m.p("jobs", arr))) == ["state.json"]
    assert_failed(cat(m.p("jobs", arr, "state")), NOENT)
    # the state itself not an object: no job at all, EBADMSG (twin of the above)
    bad = "7e000000-0000-4000-8000-000000000003"
    sim.set_job(bad, "Running")
    assert_failed(cat(m.p("jobs", bad, "state")), BADMSG)
    # the mount still works
    assert cat(m.p("jobs", SEED_JOB, "state")).out == b"Completed\n"
    assert m.alive()


def test_wrong_types_muse_field_by_field(sim, mount_factory):
    m = mount_factory(sim, *BASE)
    odd, bad = "0dd00000-0000-4000-8000-000000000001", "bad00000-0000-4000-8000-000000000002"
    sim.m("POST", "/_sim/runs", {"name": "sw_example", "key": odd, "cr": "WAIT",
                                 "job_id": "abc", "latest_cr": ["x"], "latest_state": None,
                                 "jobname": {"a": 1}})
    d = m.p("software", "sw_example", odd)
    assert sorted(os.listdir(d)) == ["content.zip", "cr", "job_id", "msg", "name", "state.json", "url"]
    assert read(os.path.join(d, "cr")) == b"WAIT\n"
    assert read(os.path.join(d, "job_id")) == b"abc\n"
    # twin: cr, which every reply has, of the wrong type: the run cannot be shown
    sim.m("POST", "/_sim/runs", {"name": "sw_example", "key": bad, "cr": 5})
    assert_failed(cat(m.p("software", "sw_example", bad, "cr")), BADMSG)
    assert read(m.p("software", "sw_example", RUN_OK, "cr")) == b"OK\n"
    assert m.alive()


# --------------------------------------------------------------------------
# hostile names: left out, the rest shown

HOSTILE = ["..", ".", "a/b", "", "x" * 10000, "nul\x00x", "line\nbreak", "tab\tx", "del\x7f"]


def ls_a(path):
    return run(["ls", "-a1", path], check=True).stdout.split("\n")[:-1]


def test_hostile_node_and_shard_names(sim, mount_factory):
    m = mount_factory(sim, *BASE)
    job = "ba000000-0000-4000-8000-000000000001"
    shard = {"Shards": {"0": {"State": "Completed"}}}
    nodes = {name: shard for name in HOSTILE}
    nodes["ok-node"] = {"Shards": {"..": {"State": "Completed"}, "a/b": {"State": "Completed"},
                                   "": {"State": "Completed"}, "0": {"State": "Completed"}}}
    sim.set_job(job, {"Nodes": nodes})
    d = m.p("jobs", job)
    assert sorted(os.listdir(d)) == ["ok-node", "state", "state.json"]
    assert ls_a(d) == [".", "..", "ok-node", "state", "state.json"]
    assert ls_a(os.path.join(d, "ok-node")) == [".", "..", "0"]
    assert read(os.path.join(d, "ok-node", "0", "state")) == b"Completed\n"
    # invalid UTF-8, which the simulator's JSON cannot carry: raw bytes
    raw_job = "ba000000-0000-4000-8000-000000000002"
    body = (b'{"state":{"Nodes":{"\xff\xfebad":{"Shards":{"0":{"State":"Completed"}}},'
            b'"ok\xc3\xa9":{"Shards":{"\xc0\xaf":{"State":"Completed"},"0":{"State":"Completed",'
            b'"RunOutput":{"stdout":"bytes \xff kept\\n"}}}}}}}\n')
    raw_fault(sim, body, ["/states"], count=1)
    d = m.p("jobs", raw_job)
    assert sorted(os.listdir(d)) == ["ok\u00e9", "state", "state.json"]
    assert os.listdir(os.path.join(d, "ok\u00e9")) == ["0"]
    assert read(os.path.join(d, "ok\u00e9", "0", "stdout")) == b"bytes \xff kept\n"
    assert read(os.path.join(d, "state.json")) == body
    assert m.alive()


def test_hostile_names_in_listings(sim, mount_factory):
    m = mount_factory(sim, *BASE)
    ids = [{"Metadata": {"ID": name}} for name in HOSTILE] + [{"Metadata": {"ID": "good-listed"}}]
    body = json.dumps({"jobs": ids}).encode()
    body = body[:-2] + b',{"Metadata":{"ID":"\xff\xfe"}},{"ID":"\xed\xa0\x80"}]}\n'
    raw_fault(sim, body, ["/list"], count=1)
    jobs = ls_a(m.p("jobs"))
    names = [{"name": name} for name in HOSTILE] + [{"name": "sw_example"}]
    body = json.dumps(names).encode()[:-1] + b',{"name":"\xff"}]'
    raw_fault(sim, body, ["/software/list"], side="m", count=1)
    software = ls_a(m.p("software"))
    assert (jobs, software) == ([".", "..", "good-listed"], [".", "..", "sw_example"])
    assert read(m.p("software", "sw_example", RUN_OK, "cr")) == b"OK\n"
    assert m.alive()


# --------------------------------------------------------------------------
# a flapping server: errors are not cached past the back-off

def test_flapping_server_recovers_after_backoff(sim, mount_factory):
    m = mount_factory(sim, *BASE)
    t = Target(sim, m, "b", "f1a90000-0000-4000-8000-000000000001")
    old = read(t.file)
    for cycle in range(2):
        sim.fault(mode="status", status=500, count=1, paths=t.fault_paths)  # one failure
        t.change()
        wait_stale(t.file, EIO_TEXT, old)
        t_fail = time.monotonic()
        sim.reset()
        assert cat(t.file).out == old, "within the back-off: the old data, at once"
        assert sim.stats()["by_job"].get(RUNNING_JOB, 0) == 0, "no request within the back-off"
        new = t.truth()
        wait_fresh(t.file, new)
        took = time.monotonic() - t_fail
        note(f"flapping cycle {cycle}: fresh after the failure", took)
        assert 0.8 <= took <= BACKOFF + 0.7, f"cycle {cycle}: recovered {took:.2f}s after the failure"
        old = new
    # a never-fetched job: the error, the same error within the back-off, then the data
    sim.fault(mode="status", status=503, count=1, paths=t.fault_paths)
    sim.reset()
    assert_failed(cat(t.new), EAGAIN_TEXT)
    t_fail = time.monotonic()
    assert_failed(cat(t.new), EAGAIN_TEXT, deadline=0.5)
    wait_for(lambda: cat(t.new).out == t.new_truth, timeout=BACKOFF + MARGIN,
             what="the job after the back-off")
    took = time.monotonic() - t_fail
    note("flapping: never-fetched job readable after its failure", took)
    assert 0.8 <= took <= BACKOFF + 0.7, f"the error was cached for {took:.2f}s"
    assert sim.stats()["by_job"].get("f1a90000-0000-4000-8000-000000000001") == 2, \
        "one failed request, then one good one: no retries within the back-off"
    assert m.alive()


# --------------------------------------------------------------------------
# --max-stale

def test_max_stale_turns_stale_into_error(sim, mount_factory):
    max_stale = 1.5
    limited = mount_factory(sim, *BASE, f"--max-stale={max_stale:g}")
    forever = mount_factory(sim, *BASE)  # the twin: no limit
    node = next(iter(sim.job(RUNNING_JOB)["Nodes"]))
    rel = ("jobs", RUNNING_JOB, node, "0", "stdout")
    t_before = time.monotonic()
    old = read(limited.p(*rel))
    assert read(forever.p(*rel)) == old
    t_after = time.monotonic()
    sim.fault(mode="status", status=503, paths=["/states"])
    sim.append(RUNNING_JOB, node, "step 2\n")
    wait_stale(limited.p(*rel), EAGAIN_TEXT, old)
    wait_stale(forever.p(*rel), EAGAIN_TEXT, old)

    def limited_fails():
        c = cat(limited.p(*rel))
        if c.ok:
            assert c.out == old
            return None
        return c
    c = wait_for(limited_fails, timeout=max_stale + BACKOFF + MARGIN, interval=0.05,
                 what="--max-stale to expire")
    t_err = time.monotonic()
    note("--max-stale=1.5: error after the last fetch", t_err - t_before)
    assert_failed(c, EAGAIN_TEXT)
    assert t_err - t_before >= max_stale, f"stale data refused after {t_err - t_before:.2f}s"
    assert t_err - t_after <= max_stale + BACKOFF + 0.5, f"served stale for {t_err - t_after:.2f}s"
    # twin: without --max-stale the same data is still served, also well past the limit
    c = cat(forever.p(*rel))
    assert c.ok and c.out == old, c
    time.sleep(max(0.0, t_before + 2 * max_stale + 0.2 - time.monotonic()))  # settle: negative check
    c = cat(forever.p(*rel))
    assert c.ok and c.out == old and xattr(forever.p(*rel), STALE) == EAGAIN_TEXT, c
    assert_failed(cat(limited.p(*rel)), EAGAIN_TEXT)
    # healed: both fresh
    sim.fault(mode="none")
    new = sim.job(RUNNING_JOB)["Nodes"][node]["Shards"]["0"]["RunOutput"]["stdout"].encode()
    wait_fresh(limited.p(*rel), new)
    wait_fresh(forever.p(*rel), new)
    assert limited.alive() and forever.alive()


# --------------------------------------------------------------------------
# one stuck server does not stop the FUSE loop

def test_loop_answers_while_one_server_is_stuck(sim, mount_factory):
    timeout = 4.0
    m = mount_factory(sim, "--poll-interval=0", f"--ttl={TTL}", f"--timeout={timeout:g}")
    node = next(iter(sim.job(RUNNING_JOB)["Nodes"]))
    live = m.p("jobs", RUNNING_JOB, node, "0", "stdout")
    old = read(live)
    assert read(m.p("jobs", SEED_JOB, "state")) == b"Completed\n"   # terminal: never refetched
    assert read(m.p("software", "sw_example", RUN_OK, "cr")) == b"OK\n"
    new_job = "57c00000-0000-4000-8000-000000000001"
    make_job(sim, new_job)
    sim.fault(mode="delay", ms=30000, paths=["/states"])
    sim.reset()
    time.sleep(TTL + 0.05)  # settle: let the live job's TTL pass, so its read goes to the server
    results = {}

    def stuck(key, path):
        results[key] = cat(path, timeout=timeout + 10)
    threads = [threading.Thread(target=stuck, args=("new", m.p("jobs", new_job, "state"))),
               threading.Thread(target=stuck, args=("live", live))]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    wait_for(lambda: sim.stats()["by_job"].get(new_job) and sim.stats()["by_job"].get(RUNNING_JOB),
             timeout=timeout, what="both requests to reach the stuck server")
    # meanwhile, other paths answer at once
    for path, want in ((m.p("jobs", SEED_JOB, "state"), b"Completed\n"),
                       (m.p("software", "sw_example", RUN_OK, "cr"), b"OK\n"),
                       (m.p("jobs", SEED_JOB, "state.json"), None),
                       (m.p(".jobfs", "status"), None)):
        c = cat(path)
        note(f"read of {os.path.relpath(path, m.path)} while stuck", c.secs)
        assert c.ok and c.secs < 1.0, (path, c)
        if want is not None:
            assert c.out == want
    assert run(["ls", m.p("software")], timeout=5).returncode == 0
    assert b"reachable" in read(m.p(".jobfs", "status"))
    assert all(th.is_alive() for th in threads), "the stuck reads ended early: the twin proves nothing"
    for th in threads:
        th.join(timeout + MARGIN + 5)
    assert not any(th.is_alive() for th in threads), "a read hung past the deadline"
    took = time.monotonic() - t0
    note("stuck never-fetched read (timeout 4)", results["new"].secs)
    note("stuck stale read (timeout 4)", results["live"].secs)
    assert_failed(results["new"], TIMEDOUT, deadline=timeout + MARGIN)
    assert results["new"].secs >= timeout - 0.5, results["new"]
    c = results["live"]
    assert c.ok and c.out == old and c.secs < timeout + MARGIN, c
    assert took < timeout + MARGIN
    # the live job's refetch went out a few ms after the new job's: until its
    # own --timeout passes, its mark says "refetch pending 4 s"
    wait_for(lambda: xattr(live, STALE) == TIMEDOUT, timeout=MARGIN,
             what="the stale mark to name the timeout")
    assert m.alive()


# --------------------------------------------------------------------------
# the log: one line when an endpoint goes down, one when it is back

def log_lines(m, word):
    return [line for line in m.log().splitlines() if word in line]


def test_outage_logged_once_not_per_request(sim, mount_factory):
    m = mount_factory(sim, *BASE)
    node = next(iter(sim.job(RUNNING_JOB)["Nodes"]))
    live = m.p("jobs", RUNNING_JOB, node, "0", "stdout")
    old = read(live)
    jobs = [f"10900000-0000-4000-8000-00000000000{i}" for i in range(4)]
    for j in jobs:
        make_job(sim, j)
    assert not log_lines(m, "unreachable") and not log_lines(m, "is back")

    sim_down(sim, 2.0)
    for j in jobs:  # four requests, four failures
        assert_failed(cat(m.p("jobs", j, "state")), REFUSED, deadline=TIMEOUT)
    wait_stale(live, REFUSED, old)
    assert int(status(m)["bacalhau"]["errors"]) >= 5
    down = log_lines(m, "unreachable")
    assert len(down) == 1, down
    assert "bacalhau" in down[0] and REFUSED in down[0], down
    assert not log_lines(m, "is back")
    wait_fresh(live, old, timeout=2.0 + BACKOFF + MARGIN)   # the simulator listens again
    for j in jobs:
        wait_for(lambda: cat(m.p("jobs", j, "state")).ok, timeout=BACKOFF + MARGIN, what=f"job {j}")
    back = log_lines(m, "is back")
    assert len(back) == 1, back
    assert "bacalhau" in back[0]
    assert len(log_lines(m, "unreachable")) == 1
    assert not [line for line in m.log().splitlines() if "muse" in line and
                ("unreachable" in line or "is back" in line)], "muse was never down"
    # twin: a second outage is a second pair of lines
    sim.fault(mode="status", status=503, paths=["/states"])
    sim.append(RUNNING_JOB, node, "step 2\n")
    wait_stale(live, EAGAIN_TEXT, old)
    down = log_lines(m, "unreachable")
    assert len(down) == 2 and EAGAIN_TEXT in down[1], down
    sim.fault(mode="none")
    wait_fresh(live, old + b"step 2\n")
    assert len(log_lines(m, "is back")) == 2
    assert m.alive()
