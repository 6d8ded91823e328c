"""Issue 11: what slurm/ does when slurmrestd is slow, down or sends bad replies.

A real one-node cluster (tests/slurm/cluster.sh, as in test_slurm.py) with
tests/sim/faultproxy.py in front of its slurmrestd: jobfs is mounted with
--slurm-url pointing at the proxy, which passes everything through until a
test tells it to fail in one way for the job requests (GET /job/ID). Each
case checks what a shell user gets: the errno of a job never fetched, the
time it took (the --timeout deadline plus a margin), a job read before the
fault served as it was (same bytes, user.jobfs.stale saying why) while the
cluster has changed it, .jobfs/status, and the daemon alive. Each has its
healthy twin: the same reads through the proxy before the fault work, and
once the fault is cleared the changed job shows its new data, unmarked, and
the never-fetched job reads. Every test cancels its jobs.

Held jobs are used throughout: they stay PENDING (live, so refetched after
the TTL) and never run. `scontrol update JobName=` changes one on the
cluster, bypassing the proxy.

Timings: --timeout=2, --ttl=0.2, --poll-interval=0 (only reads cause
requests); jobfs retries a failed unit after 1 s (man jobfs, CACHING).
"""
import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import PYTHON, SRC, run, status, stop_process, wait_for, xattr

FAULTPROXY = os.path.join(SRC, "tests", "sim", "faultproxy.py")

TIMEOUT = 2.0           # --timeout of the mounts
TTL = 0.2
BACKOFF = 1.0
MARGIN = 1.5            # scheduling slack on a loaded 2-core machine
BASE = ("--poll-interval=0", f"--ttl={TTL}", f"--timeout={TIMEOUT:g}")
JOB_PATHS = ["/job/"]   # GET /slurm/VERSION/job/ID; not /jobs (the list) nor /ping
STALE = "user.jobfs.stale"

TIMEDOUT = "Connection timed out"
REFUSED = "Connection refused"
RESET = "Connection reset by peer"
EIO_TEXT = "Input/output error"
EAGAIN_TEXT = "Resource temporarily unavailable"
BADMSG = "Bad message"
FBIG = "File too large"


# --------------------------------------------------------------------------
# the proxy (the cluster is conftest.py's)

class Proxy:
    """faultproxy.py in front of the cluster's slurmrestd; its control port."""

    def __init__(self, tmp_path, target):
        ports_file = tmp_path / "proxy-ports.json"
        self.log = open(tmp_path / "proxy.log", "w")
        self.proc = subprocess.Popen([PYTHON, FAULTPROXY, "--target", target, "--ports-file",
                                      str(ports_file)], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: ports_file.exists() or self.proc.poll() is not None, timeout=20,
                     what="the fault proxy to listen")
            assert self.proc.poll() is None, (tmp_path / "proxy.log").read_text()
        except BaseException:
            self.close()
            raise
        ports = json.loads(ports_file.read_text())
        self.url = f"http://127.0.0.1:{ports['port']}"
        self.control_url = f"http://127.0.0.1:{ports['control']}/_proxy/"

    def call(self, path, value=None):
        data = None if value is None else json.dumps(value).encode()
        req = urllib.request.Request(self.control_url + path, data=data,
                                     method="GET" if path == "stats" else "POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def fault(self, **spec):
        return self.call("fault", spec)

    def clear(self):
        return self.call("fault", {"mode": "none"})

    def stats(self):
        return self.call("stats")

    def close(self):
        stop_process(self.proc)
        self.log.close()


@pytest.fixture
def proxy(cluster, tmp_path):
    p = Proxy(tmp_path, cluster.url)
    yield p
    p.close()


@pytest.fixture
def jobs(cluster):
    ids = []
    yield ids
    cluster.scancel(*ids)


@pytest.fixture
def pmount(cluster, proxy, mount_factory, monkeypatch):
    """jobfs on the cluster through the proxy, the token in SLURM_JWT."""
    monkeypatch.setenv("SLURM_JWT", cluster.token)

    def make(*args):
        return mount_factory(None, f"--slurm-url={proxy.url}", *BASE, *args)
    return make


# --------------------------------------------------------------------------
# reading

class Cat:
    def __init__(self, path):
        t0 = time.monotonic()
        r = run(["cat", path], text=False, timeout=30)
        self.secs = time.monotonic() - t0
        self.rc, self.out, self.err = r.returncode, r.stdout, r.stderr.decode(errors="replace")

    @property
    def ok(self):
        return self.rc == 0

    def __repr__(self):
        return f"Cat(rc={self.rc}, out={self.out[:60]!r}, err={self.err.strip()!r}, secs={self.secs:.2f})"




def assert_failed(c, text, deadline=TIMEOUT + MARGIN):
    assert not c.ok and text in c.err, f"expected {text!r}, got {c!r}"
    assert c.secs < deadline, f"took {c.secs:.2f}s, more than {deadline}s: {c!r}"


def note(what, secs):
    print(f"timing: {what}: {secs:.2f}s")


def wait_stale(path, text, old, timeout=TTL + TIMEOUT + MARGIN + 1):
    """Reads path until it is served stale with text: the old bytes all
    along, each read bounded; a refetch still in flight may say so."""
    seen = []

    def stale_now():
        c = Cat(path)
        seen.append(c)
        assert c.ok and c.out == old, f"cached data must stay readable, as it was: {c!r}"
        assert c.secs < TIMEOUT + MARGIN, f"a stale read took {c.secs:.2f}s"
        value = xattr(path, STALE)
        assert value in (None, text) or value.startswith("refetch pending "), value
        return value == text
    wait_for(stale_now, timeout=timeout, interval=0.05, what=f"{path} served stale with {text!r}")
    return seen


def wait_fresh(path, want, timeout=BACKOFF + TTL + TIMEOUT + MARGIN + 1):
    def fresh_now():
        c = Cat(path)
        return c.ok and c.out == want and xattr(path, STALE) is None
    wait_for(fresh_now, timeout=timeout, interval=0.05, what=f"{path} to read {want!r}, fresh")


class Case:
    """Two held jobs: `old`, read through the proxy before the fault (the
    healthy twin), and `new`, never fetched until the fault is on."""

    def __init__(self, cluster, jobs, m):
        self.cluster, self.m = cluster, m
        self.old = cluster.sbatch("--hold", "--job-name=before", "held.sh")
        jobs.append(self.old)
        self.new = cluster.sbatch("--hold", "--job-name=newcomer", "held.sh")
        jobs.append(self.new)
        self.old_name = m.p("slurm", self.old, "name")
        self.new_state = m.p("slurm", self.new, "state")
        c = Cat(self.old_name)
        assert c.ok and c.out == b"before\n", c     # healthy: through the proxy, no fault
        assert xattr(self.old_name, STALE) is None
        assert Cat(m.p("slurm", self.old, "state")).out == b"PENDING\n"

    def during(self, text, deadline=TIMEOUT + MARGIN):
        """The fault is on: the cluster changes the old job; the new one fails."""
        self.cluster.rename(self.old, "after")
        c = Cat(self.new_state)
        assert_failed(c, text, deadline)
        note(f"never-fetched job, {text}", c.secs)
        seen = wait_stale(self.old_name, text, b"before\n")
        note("slowest stale read", max(x.secs for x in seen))
        assert xattr(self.m.p("slurm", self.old), STALE) == text
        st = status(self.m)["slurm"]
        assert st["reachable"] == "no" and st["last_error"].endswith(text), st
        assert self.m.alive()

    def healed(self):
        """The fault is gone: fresh data, no mark, the new job readable."""
        t0 = time.monotonic()
        wait_fresh(self.old_name, b"after\n")
        note("fresh again after healing", time.monotonic() - t0)
        assert xattr(self.m.p("slurm", self.old), STALE) is None
        wait_for(lambda: Cat(self.new_state).out == b"PENDING\n", timeout=BACKOFF + MARGIN,
                 what="the never-fetched job to read")
        assert Cat(self.m.p("slurm", self.new, "name")).out == b"newcomer\n"
        assert status(self.m)["slurm"]["reachable"] == "yes"
        assert self.m.alive()


# --------------------------------------------------------------------------
# the matrix: one fault on GET /job/ID, its errno, stale data, then healed

MB = 1 << 20
MATRIX = [
    # id, fault, what `cat` says, extra mount options
    ("slow", {"mode": "delay", "ms": 6000}, TIMEDOUT, ()),
    ("http-503", {"mode": "status", "status": 503,
                  "body": '{"meta":{},"errors":[{"error":"busy"}]}'}, EAGAIN_TEXT, ()),
    ("garbage", {"mode": "garbage"}, BADMSG, ()),
    ("truncated", {"mode": "truncate"}, BADMSG, ()),
    ("cut", {"mode": "cut"}, EIO_TEXT, ()),
    ("closed", {"mode": "close"}, RESET, ()),
    # an error reply over --max-reply: refused whole
    ("huge-error-reply", {"mode": "huge", "status": 500, "size": 32 * MB}, FBIG, ("--max-reply=1M",)),
    # one job object over the 8 MiB a job may take (slurm_split.h)
    ("huge-job-object", {"mode": "huge", "size": 24 * MB, "prefix": '{"jobs":[{"job_id":1,"name":',
                         "suffix": "}]}"}, FBIG, ()),
]


@pytest.mark.parametrize("spec,text,opts", [c[1:] for c in MATRIX], ids=[c[0] for c in MATRIX])
def test_fault_on_job_requests(cluster, jobs, proxy, pmount, spec, text, opts):
    m = pmount(*opts)
    case = Case(cluster, jobs, m)
    proxy.fault(paths=JOB_PATHS, **spec)
    case.during(text)
    faulted = proxy.stats()["faulted"]
    assert faulted >= 2, "the new job's request and the old job's refetch"
    proxy.clear()
    case.healed()
    # the fault was on /job/ only: nothing else was asked meanwhile
    assert set(proxy.stats()["by_path"]) <= {"/slurm/v0.0.38/ping", *(
        f"/slurm/v0.0.38/job/{j}" for j in (case.old, case.new))}


def test_proxy_down_is_econnrefused(cluster, jobs, proxy, pmount):
    m = pmount()
    case = Case(cluster, jobs, m)
    proxy.call("down", {})          # until told: connects are refused, open connections cut
    try:
        case.during(REFUSED, deadline=TIMEOUT)      # a refusal does not wait for the deadline
    finally:
        assert proxy.call("up") == {"up": True}
    case.healed()


def test_huge_200_reply_over_max_reply_is_efbig(cluster, jobs, proxy, pmount):
    m = pmount("--max-reply=1M")
    case = Case(cluster, jobs, m)
    proxy.fault(paths=JOB_PATHS, mode="huge", size=4 * MB)
    try:
        assert_failed(Cat(case.new_state), FBIG)
    finally:
        proxy.clear()


def test_list_fault_keeps_the_listing(cluster, jobs, proxy, pmount):
    """GET /jobs failing: ls shows the names it had; twin: healed, the new job is listed."""
    m = pmount()
    old = cluster.sbatch("--hold", "held.sh")
    jobs.append(old)
    assert old in os.listdir(m.p("slurm"))
    proxy.fault(mode="status", status=503, paths=["/jobs"])
    new = cluster.sbatch("--hold", "held.sh")
    jobs.append(new)

    def listed_stale():
        c = run(["ls", m.p("slurm")], timeout=30)
        names = c.stdout.split()
        assert c.returncode == 0 and old in names and new not in names, c
        return proxy.stats()["faulted"] >= 1
    # the kernel may answer an ls from its own cache: ls until one reaches the server
    wait_for(listed_stale, timeout=TTL + TIMEOUT + MARGIN, interval=0.1,
             what="a list request to meet the fault")
    assert listed_stale(), "the listing after the failed list request"
    assert m.alive()
    proxy.clear()
    wait_for(lambda: new in os.listdir(m.p("slurm")), timeout=BACKOFF + TTL + TIMEOUT + MARGIN,
             what="the new job to be listed once healed")
    assert Cat(m.p("slurm", new, "state")).out == b"PENDING\n"
