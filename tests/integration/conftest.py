"""Fixtures for the integration suite: real simulators, real mounts, real tools.

Every fixture cleans up after itself even when a test fails: the mount is
detached with `fusermount3 -u -z`, and only the processes this suite started
are signalled, by pid. Every wait is bounded by a deadline.
"""
import errno
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

SRC = os.environ.get("JOBFS_SRC", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
JOBFS_BIN = os.environ.get("JOBFS_BIN", os.path.join(SRC, "build", "jobfs"))
JOBSIM = os.path.join(SRC, "tests", "sim", "jobsim.py")
PYTHON = "/usr/bin/python3"

SEED_JOB = "9304c616-291f-41ad-b862-54e133c0149e"
SEED_CLIENT = "ac13188e93c97a9c2e7cf8e86c7313156a73436036f30da1ececc2ce79f9ea51"
RUNNING_JOB = "b2c3d4e5-0000-4000-8000-000000000002"
RUN_OK = "58ae6cea-df31-4059-9466-b817c337985d"
RUN_WAIT = "11111111-1111-4111-8111-111111111111"
RUN_NOK = "22222222-2222-4222-8222-222222222222"



def _sanitizer(binary):
    """"address" or "thread" when binary links that sanitizer's runtime, else
    None. Their allocators keep freed blocks in a quarantine (256 MiB by
    default under ASan) and add shadow memory, so a VmRSS ceiling measured on
    such a build says nothing about jobfs: the RSS checks run on plain builds."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for lib, name in (("libasan", "address"), ("libtsan", "thread")):
        if lib in out:
            return name
    return None


SANITIZER = _sanitizer(JOBFS_BIN)

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    """Polls pred() until it returns a true value; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def xattr(path, name):
    """The attribute's value as text, or None when it is absent (ENODATA)."""
    try:
        return os.getxattr(path, name).decode()
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise


def status(m):
    """.jobfs/status of a mount as {section: {key: value}}."""
    sections, cur = {}, None
    for line in read(m.p(".jobfs", "status")).decode().splitlines():
        if line.startswith("[") and line.endswith("]"):
            cur = sections.setdefault(line[1:-1], {})
        elif cur is not None and ": " in line:
            key, value = line.split(": ", 1)
            cur[key] = value
    return sections


def run(cmd, timeout=20, check=False, **kw):
    """Runs a real tool with a deadline; returns the CompletedProcess."""
    kw.setdefault("capture_output", True)
    return subprocess.run(cmd, timeout=timeout, check=check, text=kw.pop("text", True), **kw)


def stop_process(proc, timeout=10):
    """Terminates a process this suite started (by pid), killing it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class Sim:
    """One jobsim process (both APIs) and its control interface."""

    def __init__(self, tmp_path, *args):
        self.ports_file = tmp_path / "sim-ports.json"
        self.log = open(tmp_path / "sim.log", "w")
        self.proc = subprocess.Popen([PYTHON, JOBSIM, "--ports-file", str(self.ports_file), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.ports_file.exists() or self.proc.poll() is not None,
                     timeout=30, what="the simulator to listen")
            if self.proc.poll() is not None:
                raise AssertionError("simulator exited: " + (tmp_path / "sim.log").read_text())
            ports = json.loads(self.ports_file.read_text())
        except BaseException:
            self.close()
            raise
        self.bport, self.mport = ports["bacalhau"], ports["muse"]
        self.bacalhau_url = f"http://127.0.0.1:{self.bport}"
        self.muse_url = f"http://127.0.0.1:{self.mport}/api/"

    def close(self):
        stop_process(self.proc)
        self.log.close()

    def _call(self, port, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw.strip() else None

    # Bacalhau side
    def b(self, method, path, body=None):
        return self._call(self.bport, method, path, body)

    def job(self, job_id):
        return self.b("GET", f"/_sim/jobs/{job_id}")["state"]

    def set_job(self, job_id, state, client_id=SEED_CLIENT):
        return self.b("POST", "/_sim/jobs", {"id": job_id, "client_id": client_id, "state": state})

    def set_shard(self, job_id, node, fields, shard="0", delete=False):
        return self.b("POST", f"/_sim/jobs/{job_id}/shard",
                      {"node": node, "shard": shard, "fields": fields, "delete": delete})

    def append(self, job_id, node, data, stream="stdout", shard="0"):
        return self.b("POST", f"/_sim/jobs/{job_id}/append",
                      {"node": node, "shard": shard, "stream": stream, "data": data})

    def delete_job(self, job_id):
        return self.b("DELETE", f"/_sim/jobs/{job_id}")

    # muse side
    def m(self, method, path, body=None):
        return self._call(self.mport, method, path, body)

    def set_run(self, name, key, **fields):
        return self.m("POST", f"/_sim/runs/{name}/{key}", fields)

    # both
    def stats(self, side="b"):
        return (self.b if side == "b" else self.m)("GET", "/_sim/stats")

    def reset(self, side="b"):
        return (self.b if side == "b" else self.m)("POST", "/_sim/reset")

    def fault(self, side="b", **spec):
        return (self.b if side == "b" else self.m)("POST", "/_sim/fault", spec)


def is_mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


class Mount:
    """jobfs running in the foreground on a temp dir, against a Sim."""

    def __init__(self, tmp_path, sim, *args, name="mnt"):
        self.path = tmp_path / name
        self.path.mkdir()
        self.stderr_path = tmp_path / f"{name}-jobfs.log"
        self.stderr = open(self.stderr_path, "w")
        cmd = [JOBFS_BIN, "-f", str(self.path)]
        if sim is not None:
            cmd += [f"--bacalhau-url={sim.bacalhau_url}", f"--muse-url={sim.muse_url}"]
        cmd += list(args)
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        self.proc = subprocess.Popen(cmd, stdout=self.stderr, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for(lambda: is_mounted(self.path) or self.proc.poll() is not None,
                     timeout=15, what="the mount")
            if self.proc.poll() is not None:
                raise AssertionError(f"jobfs exited with {self.proc.returncode}: {self.log()}")
        except BaseException:
            self.close()
            raise

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def log(self):
        self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self):
        if is_mounted(self.path):
            # libfuse 3.14 keeps an INTERRUPT that came after its request was
            # answered (a Ctrl-C racing the reply) on se->interrupts until the
            # next request arrives; fuse_session_destroy never frees that
            # list, and LeakSanitizer reports its 128 bytes. One STATFS lets
            # it go. A stuck mount fails its test anyway: 5 s at most here.
            try:
                subprocess.run(["stat", "-f", str(self.path)], timeout=5, capture_output=True)
            except subprocess.TimeoutExpired:
                pass
            subprocess.run(["fusermount3", "-u", "-z", str(self.path)], timeout=20,
                           capture_output=True)
        stop_process(self.proc)
        self.stderr.close()

    def alive(self):
        return self.proc.poll() is None

    def sanitizer_report(self):
        text = self.stderr_path.read_text(errors="replace")
        return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKS)]


@pytest.fixture
def sim_factory(tmp_path):
    sims = []

    def make(*args):
        s = Sim(tmp_path, *args)
        sims.append(s)
        return s

    yield make
    for s in sims:
        s.close()


@pytest.fixture
def sim(sim_factory):
    return sim_factory("--scenario", "seed")


@pytest.fixture
def mount_factory(tmp_path):
    mounts = []

    def make(sim, *args, name=None):
        m = Mount(tmp_path, sim, *args, name=name or f"mnt{len(mounts)}")
        mounts.append(m)
        return m

    yield make
    reports = []
    for m in mounts:
        m.close()
        reports += m.sanitizer_report()
    assert not reports, "sanitizer reports in jobfs output:\n" + "\n".join(reports)


@pytest.fixture
def mnt(sim, mount_factory):
    """The seed simulator mounted with polling off (tests of issue 3 control time themselves)."""
    return mount_factory(sim, "--poll-interval=0")


class Watch:
    """inotifywait -m on a path, its events collected as 'EVENTS name' lines."""

    def __init__(self, tmp_path, path, events="modify,close_write,attrib,create,delete",
                 recursive=False, name="watch"):
        self.out_path = tmp_path / f"{name}.out"
        self.err_path = tmp_path / f"{name}.err"
        self.out = open(self.out_path, "w")
        self.err = open(self.err_path, "w")
        cmd = ["inotifywait", "-m", "-e", events, "--format", "%e %w%f"]
        if recursive:
            cmd.append("-r")
        self.proc = subprocess.Popen(cmd + [str(path)], stdout=self.out, stderr=self.err)
        try:
            wait_for(lambda: "Watches established" in self.err_path.read_text()
                     or self.proc.poll() is not None, timeout=10, what="inotifywait to start")
            if self.proc.poll() is not None:
                raise AssertionError("inotifywait failed: " + self.err_path.read_text())
        except BaseException:
            self.close()
            raise

    def lines(self):
        self.out.flush()
        return self.out_path.read_text().splitlines()

    def wait_line(self, pred, timeout=10, what="an event"):
        try:
            return wait_for(lambda: [l for l in self.lines() if pred(l)], timeout=timeout, what=what)
        except AssertionError as e:
            seen = self.lines()
            raise AssertionError(f"{e}; inotifywait printed {len(seen)} lines: {seen[-20:]}") from None

    def close(self):
        stop_process(self.proc, timeout=5)
        self.out.close()
        self.err.close()


@pytest.fixture
def watch_factory(tmp_path):
    watches = []

    def make(path, **kw):
        w = Watch(tmp_path, path, name=f"watch{len(watches)}", **kw)
        watches.append(w)
        return w

    yield make
    for w in watches:
        w.close()


@pytest.fixture(scope="session")
def cluster():
    """The SLURM cluster of this run (slurmcluster.py), shared by its files."""
    import slurmcluster
    yield from slurmcluster.session()
