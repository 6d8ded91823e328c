#!/usr/bin/python3
"""jobfs benchmark: how close jobfs comes to what the kernel page cache allows.

One command, stdlib only.  It starts its own simulators (tests/sim/jobsim.py),
mounts jobfs in the foreground on temporary directories, and measures, each as
a figure of this run compared with a baseline measured in the same run:

  1. warm open+read+close and stat() of a job file vs the same bytes on tmpfs
     (bench/loop.c, compiled into the work dir, times each round in-process);
  2. a cold `grep -r Completed MOUNT/jobs/` over N jobs vs a bash loop of
     `curl | jq` per job, and vs the ideal N x latency / pool size;
  3. HTTP requests per job: 20 parallel readers of a new live job within one
     TTL, and a terminal job read every 0.2 s for 10 TTLs;
  4. daemon RSS per cached job at 10,000 and 100,000 jobs, and `ls jobs/` time;
  5. remote change -> inotify event latency vs the poll interval;
  6. a good citizen: requests per second of 300 held idle live jobs (with a
     change feed and on the poll budget), 1,000 watched live jobs (requests
     per interval, event latency), a cold grep's median and worst of 5, a
     warm grep over 50,000 jobs, and peak RSS reading 2,000 x 1 MiB under
     --cache-bytes;
  7. SLURM, against a real one-node cluster (tests/slurm/cluster.sh, root):
     requests per poll interval with 200 held jobs (counted by
     tests/sim/faultproxy.py in front of slurmrestd), and a job's state
     change (scancel) -> IN_MODIFY of its state file.

It prints a table (metric, value, target, met?) and writes the same figures
as JSON (--json, default bench/results/latest.json).  `--compare OLD NEW`
prints two JSON runs side by side.  See bench/README.md.

Everything it starts is cleaned up on exit, on failure and on Ctrl-C: mounts
are detached with `fusermount3 -u -z` and only the processes it started are
signalled, by pid.  Every wait has a deadline.
"""
import argparse
import ctypes
import hashlib
import json
import os
import platform
import random
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
JOBSIM = os.path.join(REPO, "tests", "sim", "jobsim.py")
LOOP_C = os.path.join(HERE, "loop.c")
PYTHON = "/usr/bin/python3"

CLIENT = "b3e4c4c1ae7f0b5e1c1b0bec4e0c1b3b3e4c4c1ae7f0b5e1c1b0bec4e0c1b3b"  # the bench's client id
NODE = "QmBenchNode1111111111111111111111111111111111"
BULK_JOB_ID = "00000000-0000-4000-8000-%012d"  # jobsim --bulk-jobs ids
BULK_NODE = "QmBu1kNode111111111111111111111111111111111111"
TERMINAL = ("Completed", "Error", "Cancelled")

ENV_C = dict(os.environ, LC_ALL="C")  # grep, ls: byte semantics, no locale cost


class Failed(Exception):
    """A step could not measure what it should (the message says why)."""


# --------------------------------------------------------------------------
# Helpers

def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_for(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def is_mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


def fs_type(path):
    best, kind = "", None
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            mnt = fields[1]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, fields[2]
    return kind


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failed(f"no VmRSS for pid {pid}")


def ctx_switches(pid):
    """Context switches of all threads of pid: a cheap count of daemon wake-ups."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def pctl(values, p):
    """Percentile by nearest rank on sorted values (p in 0..100)."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def shard_state(state, stdout="", stderr="", exit_code=0, extra=None):
    shard = {"NodeId": NODE, "State": state, "Status": f"bench {state.lower()}",
             "RunOutput": {"stdout": stdout, "stdouttruncated": False, "stderr": stderr,
                           "stderrtruncated": False, "exitCode": exit_code, "runnerError": ""}}
    if extra:
        shard.update(extra)
    return {"Nodes": {NODE: {"Shards": {"0": shard}}}}


# --------------------------------------------------------------------------
# Processes, simulators, mounts

class Bench:
    """Owns the work dir and everything started; cleanup() undoes it all."""

    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="jobfs-bench-")
        self.procs = []      # Popen objects we started, still to be stopped
        self.mounts = []     # mount points we made
        self.tmpfs = []      # tmpfs we mounted ourselves
        self.dirs = []       # dirs made outside the work dir (on /dev/shm)
        self.logs = []       # log files of the current step
        self.results = []
        self.details = {}
        self.loop = None
        self.cleaned = False

    # processes ---------------------------------------------------------
    def spawn(self, cmd, logname=None, **kw):
        if logname:
            path = os.path.join(self.work, logname)
            out = open(path, "ab")
            self.logs.append(path)
            kw.setdefault("stdout", out)
            kw.setdefault("stderr", subprocess.STDOUT)
        # A new session: Ctrl-C in the terminal reaches only us, and we stop
        # the children in order (unmount first).
        proc = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.procs.append(proc)
        if logname:
            out.close()
        return proc

    def stop(self, proc, timeout=10):
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log(f"pid {proc.pid} did not exit after SIGKILL")
        if proc in self.procs:
            self.procs.remove(proc)

    def run(self, cmd, timeout, stdout=subprocess.DEVNULL, env=None, count_output=False):
        """Runs cmd (its own process group, which we kill at the deadline).
        Returns (seconds, returncode, bytes, lines) where bytes/lines count
        stdout when count_output (stdout is then a pipe, never /dev/null:
        GNU grep stops at the first match when it writes to /dev/null)."""
        t0 = time.monotonic()
        proc = self.spawn(cmd, stdout=subprocess.PIPE if count_output else stdout,
                          stderr=subprocess.PIPE, env=env)
        nbytes = nlines = 0
        err = b""
        deadline = t0 + timeout
        try:
            streams = [s for s in (proc.stdout, proc.stderr) if s is not None]
            while streams:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failed(f"{cmd[0]} took longer than {timeout:g} s")
                ready, _, _ = select.select(streams, [], [], min(left, 1.0))
                for s in ready:
                    chunk = os.read(s.fileno(), 1 << 16)
                    if not chunk:
                        streams.remove(s)
                    elif s is proc.stdout:
                        nbytes += len(chunk)
                        nlines += chunk.count(b"\n")
                    elif len(err) < 4096:
                        err += chunk
            rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except (Failed, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raise Failed(f"{' '.join(map(str, cmd[:3]))}... took longer than {timeout:g} s")
        finally:
            for s in (proc.stdout, proc.stderr):
                if s is not None:
                    s.close()
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
            self.procs.remove(proc)
        seconds = time.monotonic() - t0
        if rc != 0 and err:
            log(f"{cmd[0]} exit {rc}: {err.decode(errors='replace').strip()[:500]}")
        return seconds, rc, nbytes, nlines

    # cleanup -----------------------------------------------------------
    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for path in reversed(self.mounts):
            self.unmount(path)
        for proc in list(reversed(self.procs)):
            self.stop(proc, timeout=5)
        for path in reversed(self.tmpfs):
            self.unmount(path)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        if self.args.keep:
            log(f"work dir kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def unmount(self, path):
        if is_mounted(path):
            cmd = ["fusermount3", "-u", "-z", path] if path in self.mounts else ["umount", "-l", path]
            try:
                subprocess.run(cmd, timeout=20, capture_output=True)
            except subprocess.TimeoutExpired:
                log(f"{cmd[0]} {path} timed out")
        for lst in (self.mounts, self.tmpfs):
            if path in lst:
                lst.remove(path)

    def tail_logs(self, n=15):
        for path in self.logs:
            try:
                with open(path, errors="replace") as f:
                    lines = f.read().splitlines()[-n:]
            except OSError:
                continue
            if lines:
                log(f"last lines of {os.path.basename(path)}:\n  " + "\n  ".join(lines))

    # results -----------------------------------------------------------
    def add(self, step, key, metric, value, unit="", target="", met=None, note=""):
        self.results.append({"step": step, "key": key, "metric": metric, "value": value,
                             "unit": unit, "target": target, "met": met, "note": note})


class Sim:
    """One jobsim process and its control API."""

    def __init__(self, bench, name, *args):
        self.bench = bench
        ports_file = os.path.join(bench.work, f"{name}-ports.json")
        cmd = [PYTHON, JOBSIM, "--ports-file", ports_file, *map(str, args)]
        self.proc = bench.spawn(cmd, logname=f"{name}.log")
        wait_for(lambda: os.path.exists(ports_file) or self.proc.poll() is not None,
                 timeout=180, what=f"simulator {name} to listen")
        if self.proc.poll() is not None:
            raise Failed(f"simulator {name} exited with {self.proc.returncode}")
        with open(ports_file) as f:
            ports = json.load(f)
        self.bport, self.mport = ports["bacalhau"], ports["muse"]
        self.bacalhau_url = f"http://127.0.0.1:{self.bport}"
        self.muse_url = f"http://127.0.0.1:{self.mport}/api/"

    def call(self, method, path, body=None, timeout=30, raw=False):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.bacalhau_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            out = r.read()
        if raw:
            return out
        return json.loads(out) if out.strip() else None

    def set_job(self, job_id, state, client_id=CLIENT):
        return self.call("POST", "/_sim/jobs", {"id": job_id, "client_id": client_id, "state": state})

    def set_shard(self, job_id, fields, node=NODE, shard="0"):
        return self.call("POST", f"/_sim/jobs/{job_id}/shard",
                         {"node": node, "shard": shard, "fields": fields})

    def stats(self):
        return self.call("GET", "/_sim/stats")

    def reset(self):
        return self.call("POST", "/_sim/reset")

    def close(self):
        self.bench.stop(self.proc)


class Mount:
    """jobfs -f on a fresh directory of the work dir, against a Sim."""

    def __init__(self, bench, sim, name, *opts):
        self.bench = bench
        self.path = os.path.join(bench.work, name)
        os.mkdir(self.path)
        cmd = [bench.args.jobfs, "-f", self.path, f"--bacalhau-url={sim.bacalhau_url}",
               f"--muse-url={sim.muse_url}", *opts, *bench.args.jobfs_arg]
        self.proc = bench.spawn(cmd, logname=f"{name}-jobfs.log")
        bench.mounts.append(self.path)
        wait_for(lambda: is_mounted(self.path) or self.proc.poll() is not None,
                 timeout=20, what=f"mount {name}")
        if self.proc.poll() is not None:
            raise Failed(f"jobfs exited with {self.proc.returncode} (options {' '.join(opts)})")
        self.pid = self.proc.pid

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def close(self):
        self.bench.unmount(self.path)
        self.bench.stop(self.proc)


# --------------------------------------------------------------------------
# inotify through ctypes (timestamps taken in this process, no tool start-up)

IN_MODIFY = 0x2
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC


class Inotify:
    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise Failed(f"inotify_init1: {os.strerror(ctypes.get_errno())}")

    def watch(self, path, mask):
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise Failed(f"inotify_add_watch {path}: {os.strerror(ctypes.get_errno())}")
        return wd

    def read(self, timeout):
        """Events [(wd, mask)] read within timeout, or [] at the deadline."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        try:
            buf = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        events, i = [], 0
        while i + 16 <= len(buf):
            wd, mask, _cookie, length = struct.unpack_from("iIII", buf, i)
            events.append((wd, mask))
            i += 16 + length
        return events

    def drain(self):
        while self.read(0):
            pass

    def close(self):
        os.close(self.fd)


# --------------------------------------------------------------------------
# Step 1: warm reads and stats vs tmpfs

def tmpfs_base(b):
    """A fresh directory on a tmpfs: --tmpfs, /dev/shm, or one we mount as root."""
    for base in ([b.args.tmpfs] if b.args.tmpfs else ["/dev/shm"]):
        if base and os.path.isdir(base) and fs_type(os.path.realpath(base)) == "tmpfs":
            d = tempfile.mkdtemp(prefix="jobfs-bench-", dir=base)
            b.dirs.append(d)
            return d
    if os.geteuid() == 0:
        d = os.path.join(b.work, "tmpfs")
        os.mkdir(d)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", d], check=True, timeout=20)
        b.tmpfs.append(d)
        return d
    raise Failed("no tmpfs: /dev/shm is not one and we are not root (use --tmpfs DIR)")


def loop(b, op, root, rel, rounds):
    """bench/loop.c on root/rel, run from root so both sides walk the same relative path."""
    cmd = [b.loop, op, str(rounds), rel]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=max(120, rounds * 0.01), cwd=root)
    if out.returncode != 0:
        raise Failed(f"loop {op} {root}/{rel}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def step1(b):
    a = b.args
    sim = Sim(b, "s1-sim", "--scenario", "empty", "--client-id", CLIENT, "--latency-ms", a.latency_ms)
    job = "be000001-0000-4000-8000-000000000001"
    sim.set_job(job, shard_state("Completed", stdout="hello from the benchmark\n"))
    m = Mount(b, sim, "s1-mnt", "--ttl=3600")
    rel = ("jobs", job, NODE, "0", a.file)
    relpath = os.path.join(*rel)
    path = m.p(*rel)
    data = read_file(path)  # the cold fetch; from now on the job is final and cached
    shm = tmpfs_base(b)
    tpath = os.path.join(shm, *rel)
    os.makedirs(os.path.dirname(tpath))
    with open(tpath, "wb") as f:
        f.write(data)
    sim.reset()
    detail = {"file": "/".join(rel), "bytes": len(data), "rounds": a.rounds, "repeats": a.repeats,
              "tmpfs_dir": shm}
    for op, label in (("read", "open+read+close"), ("stat", "stat")):
        runs = {"jobfs": [], "tmpfs": []}
        cs = []
        for _ in range(a.repeats):  # interleaved, so drift hits both sides alike
            c0 = ctx_switches(m.pid)
            runs["jobfs"].append(loop(b, op, m.path, relpath, a.rounds))
            cs.append((ctx_switches(m.pid) - c0) / (a.rounds + 101))
            runs["tmpfs"].append(loop(b, op, shm, relpath, a.rounds))
        jm = statistics.median(r["median_ns"] for r in runs["jobfs"])
        tm = statistics.median(r["median_ns"] for r in runs["tmpfs"])
        ratio = jm / tm
        # Diagnostic: the same from the file's own directory (a one-component
        # path), which separates the per-component cost of the path walk.
        near_j = loop(b, op, os.path.dirname(path), a.file, a.rounds)["median_ns"]
        near_t = loop(b, op, os.path.dirname(tpath), a.file, a.rounds)["median_ns"]
        detail[op] = {"jobfs": runs["jobfs"], "tmpfs": runs["tmpfs"],
                      "daemon_ctx_switches_per_round": statistics.median(cs),
                      "from_own_dir_ns": {"jobfs": near_j, "tmpfs": near_t}}
        b.add(1, f"1.{op}.jobfs_ns", f"warm {label}, jobfs median", jm, "ns")
        b.add(1, f"1.{op}.tmpfs_ns", f"warm {label}, tmpfs median", tm, "ns")
        b.add(1, f"1.{op}.ratio", f"warm {label}, jobfs/tmpfs", round(ratio, 2), "x",
              "<= 1.2", ratio <= 1.2,
              note=f"daemon wake-ups/round {statistics.median(cs):.2f}; from the file's dir "
                   f"{near_j}/{near_t} ns = {near_j / near_t:.2f}x")
    detail["requests_during_loops"] = sim.stats()["requests"]
    # The other design of BUGS in jobfs(1): --strict-writes sends every open
    # to the daemon (to refuse writes at open, raising no event)
    ms = Mount(b, sim, "s1-strict-mnt", "--ttl=3600", "--strict-writes")
    read_file(ms.p(*rel))
    strict = statistics.median(loop(b, "read", ms.path, relpath, a.rounds)["median_ns"]
                               for _ in range(a.repeats))
    fast = statistics.median(r["median_ns"] for r in detail["read"]["jobfs"])
    b.add(1, "1.read.strict_ns", "warm open+read+close, --strict-writes", strict, "ns",
          note=f"{strict / fast:.1f}x the default's {fast} ns: one OPEN round trip per open")
    detail["strict_writes_read_ns"] = strict
    ms.close()
    b.details["1"] = detail
    m.close()
    sim.close()


# --------------------------------------------------------------------------
# Step 2: cold grep -r over N jobs vs curl|jq vs ideal

def step2(b):
    a = b.args
    n = a.jobs
    lat = a.latency_ms / 1000
    sim = Sim(b, "s2-sim", "--scenario", "empty", "--bulk-jobs", n, "--client-id", CLIENT,
              "--latency-ms", a.latency_ms)
    m = Mount(b, sim, "s2-mnt", f"--client-id={CLIENT}")
    sim.reset()
    grep_s, rc, _, lines = b.run(["grep", "-r", "Completed", m.p("jobs") + "/"],
                                 timeout=max(300, n * 2), env=ENV_C, count_output=True)
    st = sim.stats()
    if rc not in (0, 1):
        raise Failed(f"grep -r exited with {rc}")
    if lines < n:
        raise Failed(f"grep -r found {lines} matching lines for {n} jobs")
    requests = st["requests"]
    states = st["by_path"].get("/requester/states", 0)
    # The same grep again, all cached: what the walk itself costs (FUSE, grep).
    c0 = ctx_switches(m.pid)
    warm_s, rc, _, _ = b.run(["grep", "-r", "Completed", m.p("jobs") + "/"],
                             timeout=max(300, n * 2), env=ENV_C, count_output=True)
    warm_wakeups = (ctx_switches(m.pid) - c0) / n

    ids = os.path.join(b.work, "s2-ids")
    with open(ids, "w") as f:
        f.writelines(BULK_JOB_ID % i + "\n" for i in range(n))
    script = os.path.join(b.work, "s2-curl.sh")
    out = os.path.join(b.work, "s2-curl.out")
    with open(script, "w") as f:
        f.write('while read -r id; do\n'
                f'  curl -s -X POST {sim.bacalhau_url}/requester/states '
                f'-d "{{\\"client_id\\":\\"{CLIENT}\\",\\"job_id\\":\\"$id\\"}}" | jq .\n'
                f'done < {ids} > {out}\n')
    sim.reset()
    curl_s, rc, _, _ = b.run(["bash", script], timeout=max(600, n * 3))
    curl_req = sim.stats()["requests"]
    with open(out, "rb") as f:
        curl_ok = f.read().count(b'"State": "Completed"')
    if rc != 0 or curl_ok < n:
        raise Failed(f"curl|jq loop: exit {rc}, {curl_ok} Completed shards for {n} jobs")

    ideal = n * lat / a.pool
    speedup = curl_s / grep_s
    vs_ideal = grep_s / ideal if ideal > 0 else None
    b.add(2, "2.grep_s", f"cold grep -r Completed over {n} jobs", round(grep_s, 3), "s")
    b.add(2, "2.grep_warm_s", f"warm grep -r (the same again, all cached)", round(warm_s, 3), "s",
          note=f"daemon wake-ups per job {warm_wakeups:.1f}")
    b.add(2, "2.curl_s", f"bash loop of curl|jq over {n} jobs", round(curl_s, 3), "s")
    b.add(2, "2.ideal_s", f"ideal: {n} x {a.latency_ms:g} ms / pool {a.pool}", round(ideal, 3), "s")
    b.add(2, "2.speedup", "grep speed-up over curl|jq", round(speedup, 1), "x", ">= 20", speedup >= 20)
    b.add(2, "2.vs_ideal", "grep time / ideal", None if vs_ideal is None else round(vs_ideal, 2), "x",
          "<= 2", None if vs_ideal is None else vs_ideal <= 2)
    b.add(2, "2.req_per_job", "HTTP requests per job during grep", round(requests / n, 3), "",
          note=f"{states} states, {requests - states} other; {st.get('connections')} connections")
    b.details["2"] = {"jobs": n, "latency_ms": a.latency_ms, "pool": a.pool, "grep_s": grep_s,
                      "grep_lines": lines, "grep_warm_s": warm_s, "curl_s": curl_s, "curl_requests": curl_req,
                      "ideal_s": ideal, "sim_stats_during_grep": st}
    m.close()
    sim.close()


# --------------------------------------------------------------------------
# Step 3: requests per job (20 readers of a new live job; terminal job over 10 TTLs)

def step3(b):
    a = b.args
    sim = Sim(b, "s3-sim", "--scenario", "empty", "--client-id", CLIENT, "--latency-ms", a.latency_ms)
    # (a) --poll-interval=0: only the readers cause requests.
    m = Mount(b, sim, "s3a-mnt", f"--ttl={a.live_ttl:g}", "--poll-interval=0")
    trials = []
    for t in range(a.trials):
        job = f"be000003-0000-4000-8000-{t:012d}"
        sim.set_job(job, shard_state("Running", stdout="step 1\n"))
        path = m.p("jobs", job, NODE, "0", "state")
        sim.reset()
        barrier = threading.Barrier(a.readers)
        outs, errs = [], []

        def reader():
            try:
                barrier.wait(timeout=30)
                r = subprocess.run(["cat", path], capture_output=True, timeout=30)
                outs.append(r.stdout if r.returncode == 0 else r.stderr)
            except Exception as e:  # recorded, the trial then fails
                errs.append(repr(e))
        threads = [threading.Thread(target=reader) for _ in range(a.readers)]
        t0 = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        elapsed = time.monotonic() - t0
        if errs or any(th.is_alive() for th in threads):
            raise Failed(f"readers failed: {errs[:3]}")
        bad = [o for o in outs if o != b"Running\n"]
        if bad:
            raise Failed(f"{len(bad)} readers read {bad[0]!r}")
        req = sim.stats()["by_job"].get(job, 0)
        trials.append({"job": job, "requests": req, "elapsed_s": elapsed,
                       "within_ttl": elapsed < a.live_ttl})
    worst = max(tr["requests"] for tr in trials)
    mean = statistics.mean(tr["requests"] for tr in trials)
    within = all(tr["within_ttl"] for tr in trials)
    b.add(3, "3a.req_per_job", f"requests per new live job, {a.readers} parallel cat",
          round(mean, 2), "", "1 per TTL", worst == 1 and within,
          note=f"worst {worst} of {a.trials} trials; slowest burst "
               f"{max(tr['elapsed_s'] for tr in trials) * 1000:.0f} ms, TTL {a.live_ttl:g} s")
    m.close()

    # (b) a terminal job read every 0.2 s for 10 TTLs of 0.2 s.
    ttl = 0.2
    m = Mount(b, sim, "s3b-mnt", f"--ttl={ttl:g}")
    job = "be000003-0000-4000-8000-100000000000"
    sim.set_job(job, shard_state("Completed", stdout="done\n"))
    path = m.p("jobs", job, NODE, "0", "state")
    sim.reset()
    first = read_file(path)
    if first != b"Completed\n":
        raise Failed(f"terminal job reads {first!r}")
    first_req = sim.stats()["by_job"].get(job, 0)
    sim.reset()
    reads = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10 * ttl:
        r = subprocess.run(["cat", path], capture_output=True, timeout=30)
        if r.stdout != b"Completed\n":
            raise Failed(f"terminal job reads {r.stdout!r} {r.stderr!r}")
        reads += 1
        time.sleep(ttl)
    later = sim.stats()["by_job"].get(job, 0)
    b.add(3, "3b.req_after_first", f"requests for a terminal job after the first, {reads} reads "
          f"over 10 TTLs", later, "", "0", later == 0, note=f"first read: {first_req} request(s)")
    b.details["3"] = {"live_trials": trials, "readers": a.readers, "live_ttl": a.live_ttl,
                      "terminal": {"ttl": ttl, "reads": reads, "first_requests": first_req,
                                   "later_requests": later}}
    m.close()
    sim.close()


# --------------------------------------------------------------------------
# Step 4: daemon RSS per cached job, ls jobs/ time

def content_bytes(root, jobs):
    """Average content bytes and entries (files and dirs, the job's own dir included) per job."""
    total = entries = 0
    for job in jobs:
        for d, dirs, files in os.walk(os.path.join(root, job)):
            entries += 1 + len(files)
            for f in files:
                total += os.stat(os.path.join(d, f)).st_size
    return total / len(jobs), entries / len(jobs)


def step4(b):
    a = b.args
    detail = {}
    for n in a.rss_jobs:
        # The list reply itself, straight from the simulator: the server's share of a cold ls.
        sim = Sim(b, f"s4-{n}-sim", "--scenario", "empty", "--bulk-jobs", n, "--client-id", CLIENT,
                  "--latency-ms", 0)
        t0 = time.monotonic()
        body = sim.call("POST", "/requester/list", {"client_id": CLIENT, "max_jobs": 0}, raw=True,
                        timeout=300)
        list_s = time.monotonic() - t0
        m = Mount(b, sim, f"s4-{n}-mnt", f"--client-id={CLIENT}", f"--cache-max={n * 2}")
        time.sleep(0.3)
        rss0 = rss_kib(m.pid)
        sim.reset()
        ls_cold, rc, _, entries = b.run(["ls", m.p("jobs") + "/"], timeout=600, env=ENV_C,
                                        count_output=True)
        if rc != 0 or entries != n:
            raise Failed(f"ls jobs/ listed {entries} entries (exit {rc}) for {n} jobs")
        ls_warm, rc, _, entries = b.run(["ls", m.p("jobs") + "/"], timeout=600, env=ENV_C,
                                        count_output=True)
        ls_stats = sim.stats()
        rss_ls = rss_kib(m.pid)
        grep_s, rc, nbytes, lines = b.run(["grep", "-r", ".", m.p("jobs")], timeout=max(600, n * 0.05),
                                          env=ENV_C, count_output=True)
        if rc != 0 or lines < n:
            raise Failed(f"grep -r . read {lines} lines for {n} jobs (exit {rc})")
        time.sleep(0.5)
        rss1 = rss_kib(m.pid)
        st = sim.stats()
        step = max(1, n // 50)
        sample = [BULK_JOB_ID % i for i in range(0, n, step)]
        content, entries_per_job = content_bytes(m.p("jobs"), sample)
        raw = (rss1 - rss0) / n
        beyond = raw - content / 1024
        tag = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        b.add(4, f"4.rss_raw.{n}", f"daemon RSS per cached job at {n} jobs", round(raw, 2), "KiB",
              note=f"RSS {rss0} -> {rss1} KiB ({rss_ls} after ls)")
        b.add(4, f"4.content.{n}", f"content per job at {n} jobs", round(content / 1024, 2), "KiB")
        b.add(4, f"4.rss_beyond.{n}", f"RSS per cached job beyond content, {tag}", round(beyond, 2),
              "KiB", "<= 4 KiB", beyond <= 4,
              note=f"{entries_per_job:.0f} files+dirs per job: {beyond * 1024 / entries_per_job:.0f} B each")
        big = n >= 100000
        b.add(4, f"4.ls_cold.{n}", f"ls jobs/ at {n} jobs, cold (first)", round(ls_cold, 3), "s",
              "< 2 s" if big else "", (ls_cold < 2) if big else None,
              note=f"server list reply alone {list_s:.2f} s, {len(body) / 1e6:.1f} MB; "
                   f"{ls_stats['requests']} requests during the two ls")
        b.add(4, f"4.ls_cold_jobfs.{n}", f"ls jobs/ at {n} jobs, cold, minus the server's reply time",
              round(max(0.0, ls_cold - list_s), 3), "s")
        b.add(4, f"4.ls_warm.{n}", f"ls jobs/ at {n} jobs, warm (second)", round(ls_warm, 3), "s",
              "< 2 s" if big else "", (ls_warm < 2) if big else None)
        detail[str(n)] = {"rss_before_kib": rss0, "rss_after_ls_kib": rss_ls, "rss_after_kib": rss1,
                          "content_bytes_per_job": content,
                          "entries_per_job": entries_per_job, "grep_s": grep_s, "grep_bytes": nbytes,
                          "grep_lines": lines, "ls_cold_s": ls_cold, "ls_warm_s": ls_warm,
                          "list_reply_s": list_s, "list_reply_bytes": len(body),
                          "sim_stats": {"requests": st["requests"], "by_path": st["by_path"],
                                        "connections": st.get("connections")}}
        m.close()
        sim.close()
    b.details["4"] = detail


# --------------------------------------------------------------------------
# Step 5: remote change -> inotify event latency

def step5(b):
    a = b.args
    poll = a.poll_interval
    sim = Sim(b, "s5-sim", "--scenario", "empty", "--client-id", CLIENT, "--latency-ms", a.latency_ms)
    job = "be000005-0000-4000-8000-000000000001"
    sim.set_job(job, shard_state("Running", stdout="step 1\n"))
    m = Mount(b, sim, "s5-mnt", f"--poll-interval={poll:g}")
    path = m.p("jobs", job, NODE, "0", "state")
    if read_file(path) != b"Running\n":
        raise Failed("live job does not read Running")
    ino = Inotify()
    try:
        ino.watch(path, IN_MODIFY)
        time.sleep(poll + 0.2)  # one quiet interval: the poller has the job
        ino.drain()
        rnd = random.Random(5)
        t_start = time.monotonic()
        lat, missed, wrong, misses = [], 0, 0, []
        for i in range(a.changes):
            # A random phase against the poll cycle, so the figures are not
            # all best or all worst case.
            time.sleep(rnd.uniform(0, poll) if poll > 0 else 0.05)
            ino.drain()
            value = "Waiting" if i % 2 == 0 else "Running"
            req0 = sim.stats()["by_job"].get(job, 0)
            sim.set_shard(job, {"State": value})
            t_change = time.monotonic()
            deadline = t_change + 3 * max(poll, 0.5) + 2
            got = None
            while got is None and time.monotonic() < deadline:
                for _wd, mask in ino.read(deadline - time.monotonic()):
                    if mask & IN_MODIFY:
                        got = time.monotonic()
                        break
            if got is None:
                missed += 1
                # What the simulator was asked and what jobfs shows now: a
                # change fetched without an event, or one never fetched.
                asked = sim.stats()["by_job"].get(job, 0) - req0
                misses.append({"change": i, "value": value, "at_s": round(t_change - t_start, 3),
                               "requests_since_change": asked,
                               "reads_now": read_file(path).decode(errors="replace")})
                continue
            lat.append(got - t_change)
            if read_file(path) != f"{value}\n".encode():
                wrong += 1
    finally:
        ino.close()
    if not lat:
        raise Failed(f"no inotify event for any of {a.changes} changes")
    p50, p95 = pctl(lat, 50) * 1000, pctl(lat, 95) * 1000
    target = poll * 1000 + 100
    b.add(5, "5.p50_ms", f"change -> IN_MODIFY p50 (poll {poll:g} s)", round(p50, 1), "ms")
    b.add(5, "5.p95_ms", f"change -> IN_MODIFY p95 (poll {poll:g} s)", round(p95, 1), "ms",
          f"<= {target:g} ms", p95 <= target and missed == 0,
          note=f"{len(lat)}/{a.changes} events, max {max(lat) * 1000:.0f} ms, {missed} missed, "
               f"{wrong} read back wrong")
    b.details["5"] = {"poll_interval": poll, "changes": a.changes, "latencies_s": lat,
                      "missed": missed, "misses": misses, "wrong_content": wrong}
    m.close()
    sim.close()


# --------------------------------------------------------------------------
# Step 6: a good citizen: requests of held idle jobs, 1,000 watched jobs,
# cold grep spread, warm grep at scale, RSS under the byte budget

def live_jobs(sim, n, prefix, client=CLIENT):
    ids = [f"{prefix}-0000-4000-8000-{i:012d}" for i in range(n)]
    for job in ids:
        sim.set_job(job, shard_state("Running", stdout="step 1\n"), client_id=client)
    return ids


def requests_in(sim, seconds):
    sim.reset()
    time.sleep(seconds)
    return sim.stats()


def step6a(b):
    """300 live jobs swept by grep -r, then idle: what the server sees."""
    a = b.args
    n, window, budget = a.idle_jobs, a.idle_window, 10
    out = {}
    for feed in (True, False):
        sim = Sim(b, f"s6a-{feed}-sim", "--scenario", "empty", "--latency-ms", a.latency_ms)
        # without a feed the jobs belong to another client: not in our list,
        # opened by path, polled on the budget
        ids = live_jobs(sim, n, "be00006a", client=CLIENT if feed else "someone-else")
        m = Mount(b, sim, f"s6a-{feed}-mnt", f"--client-id={CLIENT}")
        if feed:
            b.run(["grep", "-r", "-l", "Running", m.p("jobs") + "/"], timeout=300, env=ENV_C)
        else:
            for job in ids:
                read_file(m.p("jobs", job, NODE, "0", "state"))
        st = requests_in(sim, window)
        rate = st["requests"] / window
        out[feed] = {"requests": st["requests"], "by_path": st["by_path"]}
        if feed:
            b.add(6, "6a.idle_feed_rps", f"requests/s, {n} held idle live jobs, change feed",
                  round(rate, 2), "/s", f"<= 1 per poll", rate <= 1.5,
                  note=f"{st['by_path'].get('/requester/list', 0)} lists, "
                       f"{st['by_path'].get('/requester/states', 0)} states in {window:g} s")
        else:
            b.add(6, "6a.idle_budget_rps", f"requests/s, {n} held idle live jobs, no feed",
                  round(rate, 2), "/s", f"<= {budget} (budget)", rate <= budget * 1.1,
                  note=f"was {n}/s before the budget (every held job every interval)")
        m.close()
        sim.close()
    b.details["6a"] = out


def step6b(b):
    """1,000 watched live jobs: requests per interval, event latency."""
    a = b.args
    n, poll = a.watched_jobs, 1.0
    sim = Sim(b, "s6b-sim", "--scenario", "empty", "--latency-ms", a.latency_ms)
    ids = live_jobs(sim, n, "be00006b")
    m = Mount(b, sim, "s6b-mnt", f"--client-id={CLIENT}", f"--poll-interval={poll:g}")
    ino = Inotify()
    wds = {}
    try:
        for job in ids:
            path = m.p("jobs", job, NODE, "0", "state")
            read_file(path)
            wds[ino.watch(path, IN_MODIFY)] = job
        time.sleep(1.5)
        ino.drain()
        st = requests_in(sim, 10)
        per_interval = st["requests"] / (10 / poll)
        rnd = random.Random(6)
        lat, missed, now = [], 0, {}
        for _ in range(a.watched_changes):
            job = rnd.choice(ids)
            time.sleep(rnd.uniform(0, poll))
            ino.drain()
            # a change each time: the job's state flips (setting the state it
            # has would be no change, and no event to wait for)
            now[job] = "Waiting" if now.get(job, "Running") == "Running" else "Running"
            sim.set_shard(job, {"State": now[job]})
            t0 = time.monotonic()
            deadline = t0 + 5 * poll + 2
            got = None
            while got is None and time.monotonic() < deadline:
                for wd, mask in ino.read(deadline - time.monotonic()):
                    if mask & IN_MODIFY and wds.get(wd) == job:
                        got = time.monotonic()
                        break
            if got is None:
                missed += 1
            else:
                lat.append(got - t0)
    finally:
        ino.close()
    b.add(6, "6b.req_per_interval", f"requests per poll interval, {n} watched live jobs",
          round(per_interval, 2), "", "1 (the list)", per_interval <= 1.5,
          note=f"{st['by_path'].get('/requester/list', 0)} lists, "
               f"{st['by_path'].get('/requester/states', 0)} states in 10 s")
    if lat:
        p50, p95 = pctl(lat, 50) * 1000, pctl(lat, 95) * 1000
        b.add(6, "6b.p50_ms", f"change -> IN_MODIFY p50, {n} watched", round(p50, 1), "ms")
        b.add(6, "6b.p95_ms", f"change -> IN_MODIFY p95, {n} watched", round(p95, 1), "ms",
              f"<= {poll * 1000 + 500:g} ms", p95 <= poll * 1000 + 500 and missed == 0,
              note=f"{len(lat)}/{a.watched_changes} events, {missed} missed")
    b.details["6b"] = {"jobs": n, "stats": st, "latencies_s": lat, "missed": missed}
    m.close()
    sim.close()


def step6c(b):
    """Cold grep -r over 1,000 jobs, 5 times: median and worst."""
    a = b.args
    n = a.jobs
    sim = Sim(b, "s6c-sim", "--scenario", "empty", "--bulk-jobs", n, "--client-id", CLIENT,
              "--latency-ms", a.latency_ms)
    times = []
    for run in range(5):
        m = Mount(b, sim, f"s6c-{run}-mnt", f"--client-id={CLIENT}")
        t, rc, _, lines = b.run(["grep", "-r", "Completed", m.p("jobs") + "/"], timeout=300, env=ENV_C,
                                count_output=True)
        if rc != 0 or lines < n:
            raise Failed(f"cold grep {run}: exit {rc}, {lines} lines")
        times.append(t)
        m.close()
    med, worst = statistics.median(times), max(times)
    b.add(6, "6c.grep_median_s", f"cold grep -r over {n} jobs, median of 5", round(med, 3), "s")
    b.add(6, "6c.grep_worst_s", f"cold grep -r over {n} jobs, worst of 5", round(worst, 3), "s",
          "<= 1.3x median", worst <= 1.3 * med, note=" ".join(f"{x:.2f}" for x in times))
    b.details["6c"] = {"jobs": n, "times_s": times}
    sim.close()


def step6d(b):
    """Warm grep -r over 50,000 jobs (readahead is linear: 36.9 s before)."""
    a = b.args
    n = a.warm_jobs
    sim = Sim(b, "s6d-sim", "--scenario", "empty", "--bulk-jobs", n, "--client-id", CLIENT,
              "--latency-ms", 0)
    m = Mount(b, sim, "s6d-mnt", f"--client-id={CLIENT}", "--poll-interval=0",
              f"--cache-max={n * 2}", "--cache-bytes=2G")
    cold, rc, _, _ = b.run(["grep", "-r", "-l", "Completed", m.p("jobs") + "/"], timeout=1200,
                           env=ENV_C, count_output=True)
    warm, rc2, _, lines = b.run(["grep", "-r", "-l", "Completed", m.p("jobs") + "/"], timeout=1200,
                                env=ENV_C, count_output=True)
    if rc != 0 or rc2 != 0 or lines < n:
        raise Failed(f"grep over {n}: exit {rc}/{rc2}, {lines} lines")
    b.add(6, "6d.warm_grep_s", f"warm grep -r over {n} jobs", round(warm, 2), "s",
          note=f"cold {cold:.1f} s; 36.9 s before readahead kept a cursor")
    b.details["6d"] = {"jobs": n, "cold_s": cold, "warm_s": warm}
    m.close()
    sim.close()


def step6e(b):
    """RSS under --cache-bytes: N jobs with 1 MiB stdout, each read once."""
    a = b.args
    n, budget_mib = a.big_jobs, 128
    sim = Sim(b, "s6e-sim", "--scenario", "empty", "--latency-ms", 0)
    big = "x" * (1 << 20)
    ids = [f"be00006e-0000-4000-8000-{i:012d}" for i in range(n)]
    for job in ids:
        sim.set_job(job, shard_state("Completed", stdout=big))
    m = Mount(b, sim, "s6e-mnt", f"--client-id={CLIENT}", f"--cache-bytes={budget_mib}M",
              "--poll-interval=0")
    rss0, peak = rss_kib(m.pid), 0
    for job in ids:
        with open(m.p("jobs", job, NODE, "0", "stdout"), "rb") as f:
            while f.read(1 << 20):
                pass
        peak = max(peak, rss_kib(m.pid))
    limit = (budget_mib + 64) * 1024
    b.add(6, "6e.rss_peak_mib", f"peak RSS, {n} jobs x 1 MiB stdout, --cache-bytes={budget_mib}M",
          round(peak / 1024, 1), "MiB", f"<= {budget_mib + 64} MiB", peak <= limit,
          note=f"{n * 2} MiB read (stdout + state.json each); RSS at start {rss0 / 1024:.0f} MiB")
    b.details["6e"] = {"jobs": n, "rss_start_kib": rss0, "rss_peak_kib": peak}
    m.close()
    sim.close()


def step6(b):
    for part in (step6a, step6b, step6c, step6d, step6e):
        try:
            part(b)
        except Failed as e:
            b.results.append({"step": 6, "key": f"6.{part.__name__}.error", "error": str(e)})
            log(f"{part.__name__} failed: {e}")
            for path in list(reversed(b.mounts)):
                b.unmount(path)
            for proc in list(reversed(b.procs)):
                b.stop(proc, timeout=5)


# --------------------------------------------------------------------------
# Step 7: SLURM, against the real cluster: requests per poll interval with
# 200 held jobs, and a job's state change -> IN_MODIFY of its state file

CLUSTER_SH = os.path.join(REPO, "tests", "slurm", "cluster.sh")
FAULTPROXY = os.path.join(REPO, "tests", "sim", "faultproxy.py")
POLL_IDLE_MAX_S = 60    # the longest poll period of a job nobody reads (man jobfs)


def other_slurmctlds(own_dir):
    """Running slurmctld processes (pgrep -a) of clusters other than own_dir."""
    try:
        r = subprocess.run(["pgrep", "-a", "slurmctld"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in r.stdout.splitlines():
        try:
            with open(f"/proc/{line.split()[0]}/status") as f:
                if any(s.startswith("State:") and "Z" in s.split()[1] for s in f):
                    continue        # a zombie has stopped
        except OSError:
            continue
        if f"{own_dir}/" not in line:
            found.append(line)
    return found


class SlurmCluster:
    """A cluster of tests/slurm/cluster.sh in a state directory of its own."""

    def __init__(self, state_dir):
        self.dir = state_dir
        self.env = dict(os.environ, JOBFS_SLURM_DIR=state_dir)
        self.up_s = None

    def up(self):
        t0 = time.monotonic()
        r = subprocess.run([CLUSTER_SH, "up"], env=self.env, capture_output=True, text=True,
                           timeout=900, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise Failed("tests/slurm/cluster.sh up: " +
                         (r.stderr.strip().splitlines() or ["no output"])[-1])
        self.up_s = time.monotonic() - t0
        conf = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                conf[k] = v
        self.url, self.token, self.jobdir = conf["SLURM_URL"], conf["SLURM_JWT"], conf["SLURM_JOBDIR"]
        self.env["SLURM_CONF"] = conf["SLURM_CONF"]

    def cmd(self, *args, timeout=60):
        r = subprocess.run(list(args), env=self.env, cwd=getattr(self, "jobdir", None),
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise Failed(f"{' '.join(args[:2])}: {r.stderr.strip()[:300]}")
        return r.stdout

    def down(self):
        try:
            subprocess.run([CLUSTER_SH, "down"], env=self.env, capture_output=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            log(f"tests/slurm/cluster.sh down: {e}")


def step7_skip(b, why):
    b.add(7, "7.skipped", "SLURM against the real cluster: skipped", None, note=why)
    log(f"step 7 skipped: {why}")


def step7(b):
    a = b.args
    n, window, poll, changes = a.slurm_jobs, a.slurm_window, 1.0, a.slurm_changes
    if os.geteuid() != 0:
        return step7_skip(b, "needs root (slurmd runs jobs as their users; tests/slurm/cluster.sh)")
    if not shutil.which("slurmctld") or not shutil.which("sbatch"):
        return step7_skip(b, "Debian's slurm packages are not installed "
                             "(tests/slurm/cluster.sh up installs them)")
    state = f"/tmp/jfs-bench-slurm-{os.getpid()}"
    deadline = time.monotonic() + a.slurm_wait
    others = other_slurmctlds(state)
    if others:
        # a second cluster on two cores would time that one's tests and ours
        log(f"waiting up to {a.slurm_wait:g} s for another SLURM cluster to go: {others[0]}")
        while other_slurmctlds(state) and time.monotonic() < deadline:
            time.sleep(2)
        if other_slurmctlds(state):
            return step7_skip(b, f"another SLURM cluster still runs after {a.slurm_wait:g} s")
    cluster = SlurmCluster(state)
    ids = []
    try:
        try:
            cluster.up()
        except (Failed, OSError, subprocess.TimeoutExpired) as e:
            return step7_skip(b, f"no cluster: {e}")
        log(f"cluster up in {cluster.up_s:.1f} s; submitting {n} held jobs")
        script = os.path.join(cluster.jobdir, "bench-held.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\ntrue\n")
        os.chmod(script, 0o755)
        t0 = time.monotonic()
        for i in range(n):
            ids.append(cluster.cmd("sbatch", "--parsable", "--hold", f"--job-name=bench-{i}",
                                   script).strip())
        submit_s = time.monotonic() - t0
        proxy_ports = os.path.join(b.work, "s7-proxy-ports.json")
        proxy_proc = b.spawn([PYTHON, FAULTPROXY, "--target", cluster.url, "--ports-file", proxy_ports],
                             logname="s7-proxy.log")
        wait_for(lambda: os.path.exists(proxy_ports) or proxy_proc.poll() is not None, timeout=30,
                 what="the fault proxy to listen")
        if proxy_proc.poll() is not None:
            raise Failed(f"faultproxy exited with {proxy_proc.returncode}")
        with open(proxy_ports) as f:
            ports = json.load(f)
        control = f"http://127.0.0.1:{ports['control']}/_proxy/"

        def proxy(path, post=False):
            req = urllib.request.Request(control + path, data=b"" if post else None,
                                         method="POST" if post else "GET")
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())

        mnt = os.path.join(b.work, "s7-mnt")
        os.mkdir(mnt)
        cmd = [a.jobfs, "-f", mnt, f"--slurm-url=http://127.0.0.1:{ports['port']}",
               f"--poll-interval={poll:g}", *a.jobfs_arg]
        jobfs = b.spawn(cmd, logname="s7-jobfs.log", env=dict(os.environ, SLURM_JWT=cluster.token))
        b.mounts.append(mnt)
        wait_for(lambda: is_mounted(mnt) or jobfs.poll() is not None, timeout=20, what="the mount")
        if jobfs.poll() is not None:
            raise Failed(f"jobfs exited with {jobfs.returncode}")

        # slurm/ read once: every file of every job, as a grep -r does (wait
        # files are not listed, so it does not block on them)
        proxy("reset", post=True)
        grep_s, rc, _, lines = b.run(["grep", "-r", "-l", "PENDING",
                                      os.path.join(mnt, "slurm") + "/"],
                                     timeout=300, env=ENV_C, count_output=True)
        first = proxy("stats")
        if rc != 0 or lines < n:
            raise Failed(f"grep -r over slurm/ found {lines} PENDING jobs of {n} (exit {rc})")
        rnd = random.Random(7)
        picked = rnd.sample(ids, min(changes + 1, len(ids)))
        warm, timed = picked[0], picked[1:]
        ino = Inotify()
        try:
            wds = {}
            for jid in picked:
                path = os.path.join(mnt, "slurm", jid, "state")
                if read_file(path) != b"PENDING\n":
                    raise Failed(f"job {jid} does not read PENDING")
                wds[ino.watch(path, IN_MODIFY)] = jid

            def cancel(jid, limit):
                """scancel jid; (seconds from its return to IN_MODIFY of its
                state, or None past limit, the seconds scancel took)."""
                ino.drain()
                t_req = time.monotonic()
                cluster.cmd("scancel", jid)
                t_change = time.monotonic()
                end = t_change + limit
                while time.monotonic() < end:
                    for wd, mask in ino.read(end - time.monotonic()):
                        if mask & IN_MODIFY and wds.get(wd) == jid:
                            return time.monotonic() - t_change, t_change - t_req
                return None, t_change - t_req

            time.sleep(poll + 0.5)      # a quiet interval: the poller has them all
            ino.drain()

            # (a) idle, nobody reads: what the server sees per poll interval
            proxy("reset", post=True)
            time.sleep(window)
            idle = proxy("stats")
            lists = sum(v for k, v in idle["by_path"].items() if k.endswith("/jobs"))
            other = idle["requests"] - lists
            per_interval = idle["requests"] / (window / poll)
            b.add(7, "7.req_per_interval_idle", f"requests per poll interval, {n} held SLURM jobs, idle",
                  round(per_interval, 2), "", "<= 1 (the list)", per_interval <= 1.1 and other == 0,
                  note=f"{idle['requests']} in {window:g} s at --poll-interval={poll:g}: {lists} lists "
                       f"({idle['by_status'].get('304', 0)} were 304), {other} other; nobody read, so "
                       f"polled at a quarter of the idle time")

            # the first change after that idle time: seen at the idle rate
            # (man jobfs: within 60 s), then read, which makes the jobs hot
            warm_lat, _ = cancel(warm, POLL_IDLE_MAX_S + 5)
            if warm_lat is not None:
                read_file(os.path.join(mnt, "slurm", warm, "state"))

            # (b) one state change (scancel of a held job) after another, each
            # read back once seen: change -> IN_MODIFY, and the requests meanwhile
            proxy("reset", post=True)
            t_start = time.monotonic()
            lat, missed, wrong, cancel_s = [], 0, 0, []
            for jid in timed:
                time.sleep(rnd.uniform(0, poll))    # a random phase against the poll cycle
                got, took = cancel(jid, 3 * poll + 2)
                cancel_s.append(took)
                if got is None:
                    missed += 1
                    continue
                lat.append(got)
                if read_file(os.path.join(mnt, "slurm", jid, "state")) != b"CANCELLED\n":
                    wrong += 1
            busy_s = time.monotonic() - t_start
            busy = proxy("stats")
        finally:
            ino.close()
        if not lat:
            raise Failed(f"no IN_MODIFY for any of {len(timed)} cancelled jobs")
        lists = sum(v for k, v in busy["by_path"].items() if k.endswith("/jobs"))
        per_interval = busy["requests"] / (busy_s / poll)
        b.add(7, "7.req_per_interval", f"requests per poll interval, {n} SLURM jobs, watched, changing",
              round(per_interval, 2), "", "1 (the list)", per_interval <= 1.1 and busy["requests"] == lists,
              note=f"{busy['requests']} in {busy_s:.1f} s: {lists} lists "
                   f"({busy['by_status'].get('304', 0)} were 304), {busy['requests'] - lists} other; "
                   f"{len(timed)} jobs cancelled meanwhile")
        p50, p95 = pctl(lat, 50) * 1000, pctl(lat, 95) * 1000
        target = poll * 1000 + 500
        b.add(7, "7.p50_ms", f"SLURM state change -> IN_MODIFY p50 (poll {poll:g} s)", round(p50, 1), "ms")
        b.add(7, "7.p95_ms", f"SLURM state change -> IN_MODIFY p95 (poll {poll:g} s)", round(p95, 1), "ms",
              f"<= {target:g} ms", p95 <= target and missed == 0,
              note=f"{len(lat)}/{len(timed)} events, max {max(lat) * 1000:.0f} ms, {missed} missed, "
                   f"{wrong} read back wrong; from scancel's return ({statistics.median(cancel_s) * 1000:.0f}"
                   f" ms median)")
        b.add(7, "7.first_after_idle_ms", f"SLURM first change after {window:g} s idle -> IN_MODIFY",
              None if warm_lat is None else round(warm_lat * 1000, 1), "ms",
              f"<= {POLL_IDLE_MAX_S * 1000:g} ms", warm_lat is not None and warm_lat <= POLL_IDLE_MAX_S,
              note="an inotify watch alone keeps no job hot: polled at the idle rate until then")
        b.details["7"] = {"jobs": n, "cluster_up_s": cluster.up_s, "submit_s": submit_s,
                          "grep_s": grep_s, "first_read_stats": first, "window_s": window,
                          "poll_interval": poll, "idle_stats": idle, "first_after_idle_s": warm_lat,
                          "busy_s": busy_s, "busy_stats": busy, "latencies_s": lat,
                          "missed": missed, "wrong": wrong, "scancel_s": cancel_s}
        log(f"step 7: {n} jobs submitted in {submit_s:.1f} s; first grep {grep_s:.2f} s, "
            f"{first['requests']} requests")
    finally:
        for path in list(reversed(b.mounts)):
            b.unmount(path)
        for proc in list(reversed(b.procs)):
            b.stop(proc, timeout=5)
        if ids and getattr(cluster, "jobdir", None):
            try:
                subprocess.run(["scancel", *ids], env=cluster.env, capture_output=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as e:
                log(f"scancel: {e}")
        cluster.down()


STEPS = {1: step1, 2: step2, 3: step3, 4: step4, 5: step5, 6: step6, 7: step7}


# --------------------------------------------------------------------------
# Output

def machine(jobfs):
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def git(*args):
        try:
            r = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, timeout=10)
            return r.stdout.strip() if r.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            return None
    dirty = git("status", "--porcelain", "--", "src", "include", "meson.build")
    h = hashlib.sha256()
    with open(jobfs, "rb") as f:
        h.update(f.read())
    version = subprocess.run([jobfs, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    return {"nproc": os.cpu_count(), "model_name": model, "kernel": platform.release(),
            "python": platform.python_version(), "jobfs_commit": git("rev-parse", "HEAD"),
            "jobfs_tree_dirty": bool(dirty), "jobfs_binary": jobfs, "jobfs_sha256": h.hexdigest(),
            "jobfs_version": version, "hostname": platform.node()}


def fmt(v, unit):
    if v is None:
        return "-"
    if isinstance(v, float):
        s = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"
    else:
        s = f"{v:,}" if isinstance(v, int) else str(v)
    return f"{s} {unit}".strip() if unit not in ("", "x") else (s + ("x" if unit == "x" else ""))


def print_table(results, out=sys.stdout):
    rows = [("metric", "value", "target", "met?", "note")]
    for r in results:
        if r.get("error"):
            rows.append((f"step {r['step']}", "ERROR", "", "", r["error"]))
            continue
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        rows.append((r["metric"], fmt(r["value"], r["unit"]), r["target"], met, r["note"]))
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print(f"{row[0]:<{w[0]}}  {row[1]:>{w[1]}}  {row[2]:<{w[2]}}  {row[3]:<{w[3]}}  {row[4]}".rstrip(),
              file=out)
        if i == 0:
            print("-" * (sum(w) + 8 + 20), file=out)


def compare(old_path, new_path):
    with open(old_path) as f:
        old = json.load(f)
    with open(new_path) as f:
        new = json.load(f)
    for name, d in (("old", old), ("new", new)):
        mch = d.get("machine", {})
        print(f"{name}: {d.get('date')}  commit {str(mch.get('jobfs_commit'))[:12]}"
              f"{' (dirty)' if mch.get('jobfs_tree_dirty') else ''}  {mch.get('model_name')}, "
              f"{mch.get('nproc')} cpu, {mch.get('kernel')}")
    old["results"] = [r for r in old["results"] if not r.get("error")]
    new["results"] = [r for r in new["results"] if not r.get("error")]
    o = {r["key"]: r for r in old["results"]}
    rows = [("metric", "old", "new", "change", "target", "met old/new")]
    keys = list(o) + [r["key"] for r in new["results"] if r["key"] not in o]
    n = {r["key"]: r for r in new["results"]}
    for k in keys:
        ro, rn = o.get(k), n.get(k)
        r = rn or ro
        vo = ro["value"] if ro else None
        vn = rn["value"] if rn else None
        ch = ""
        if isinstance(vo, (int, float)) and isinstance(vn, (int, float)) and vo:
            ch = f"{(vn - vo) / abs(vo) * 100:+.1f}%"
        met = lambda x: "" if not x or x["met"] is None else ("yes" if x["met"] else "NO")
        rows.append((r["metric"], fmt(vo, r["unit"]), fmt(vn, r["unit"]), ch, r["target"],
                     f"{met(ro)}/{met(rn)}".strip("/")))
    w = [max(len(row[i]) for row in rows) for i in range(6)]
    for i, row in enumerate(rows):
        print("  ".join(f"{c:<{w[j]}}" if j in (0, 4) else f"{c:>{w[j]}}" for j, c in enumerate(row)))
        if i == 0:
            print("-" * (sum(w) + 10))


# --------------------------------------------------------------------------
# Main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobfs", default=os.path.join(REPO, "build", "jobfs"),
                   help="jobfs binary (default: build/jobfs of this repository)")
    p.add_argument("--only", help="steps to run, e.g. 1 or 2,3 (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 200 jobs, 2000 rounds, 10 changes, RSS at 2000 jobs, no 100k")
    p.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"),
                   help="where to write the figures (default bench/results/latest.json)")
    p.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"),
                   help="print two JSON results side by side and exit")
    p.add_argument("--latency-ms", type=float, default=5, help="simulator per-request latency (5)")
    p.add_argument("--pool", type=int, default=8, help="connection-pool size for the ideal (8)")
    p.add_argument("--poll-interval", type=float, default=1, help="jobfs --poll-interval in step 5 (1)")
    p.add_argument("--rounds", type=int, help="loop rounds per run in step 1 (10000)")
    p.add_argument("--repeats", type=int, default=3, help="loop runs per side in step 1 (3)")
    p.add_argument("--file", default="state", help="shard file read in step 1 (state)")
    p.add_argument("--jobs", type=int, help="jobs for the cold grep of step 2 (1000)")
    p.add_argument("--readers", type=int, default=20, help="parallel readers in step 3 (20)")
    p.add_argument("--trials", type=int, default=3, help="new live jobs tried in step 3 (3)")
    p.add_argument("--live-ttl", type=float, default=1, help="jobfs --ttl in step 3a (1)")
    p.add_argument("--rss-jobs", help="job counts of step 4 (10000,100000)")
    p.add_argument("--changes", type=int, help="remote changes in step 5 (50)")
    p.add_argument("--idle-jobs", type=int, help="held idle live jobs in step 6a (300)")
    p.add_argument("--idle-window", type=float, help="seconds counted in step 6a (20)")
    p.add_argument("--watched-jobs", type=int, help="watched live jobs in step 6b (1000)")
    p.add_argument("--watched-changes", type=int, help="changes timed in step 6b (30)")
    p.add_argument("--warm-jobs", type=int, help="jobs of the warm grep in step 6d (50000)")
    p.add_argument("--big-jobs", type=int, help="1 MiB jobs read in step 6e (2000)")
    p.add_argument("--slurm-jobs", type=int, help="held SLURM jobs in step 7 (200)")
    p.add_argument("--slurm-window", type=float, help="seconds of requests counted in step 7 (20)")
    p.add_argument("--slurm-changes", type=int, help="state changes timed in step 7 (20)")
    p.add_argument("--slurm-wait", type=float, default=600,
                   help="seconds step 7 waits for another SLURM cluster of the machine to go (600)")
    p.add_argument("--tmpfs", help="a tmpfs directory for step 1 (default /dev/shm)")
    p.add_argument("--jobfs-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for every jobfs mount, e.g. --jobfs-arg=-d (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs) after the run")
    a = p.parse_args(argv)
    q = a.quick
    a.rounds = a.rounds or (2000 if q else 10000)
    a.jobs = a.jobs or (200 if q else 1000)
    a.changes = a.changes or (10 if q else 50)
    a.rss_jobs = [int(x) for x in (a.rss_jobs or ("2000" if q else "10000,100000")).split(",")]
    a.idle_jobs = a.idle_jobs or (100 if q else 300)
    a.idle_window = a.idle_window or (5 if q else 20)
    a.watched_jobs = a.watched_jobs or (200 if q else 1000)
    a.watched_changes = a.watched_changes or (10 if q else 30)
    a.warm_jobs = a.warm_jobs or (5000 if q else 50000)
    a.big_jobs = a.big_jobs or (300 if q else 2000)
    a.slurm_jobs = a.slurm_jobs or (50 if q else 200)
    a.slurm_window = a.slurm_window or (5 if q else 20)
    a.slurm_changes = a.slurm_changes or (5 if q else 20)
    a.only = sorted({int(x) for x in a.only.split(",")}) if a.only else sorted(STEPS)
    if any(s not in STEPS for s in a.only):
        p.error("--only takes step numbers 1 to 7")
    if not a.compare:
        a.jobfs = os.path.abspath(a.jobfs)
        if not os.access(a.jobfs, os.X_OK):
            p.error(f"no jobfs binary at {a.jobfs} (build it, or give --jobfs)")
    return a


def main(argv=None):
    a = parse_args(argv)
    if a.compare:
        compare(*a.compare)
        return 0

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    # SIGINT too: a shell starts background jobs with SIGINT ignored.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    b = Bench(a)
    status = 0
    try:
        b.loop = os.path.join(b.work, "loop")
        subprocess.run(["cc", "-O2", "-Wall", "-o", b.loop, LOOP_C], check=True, timeout=60)
        info = machine(a.jobfs)
        log(f"work dir {b.work}; jobfs {a.jobfs} ({info['jobfs_version']}, commit "
            f"{str(info['jobfs_commit'])[:12]}{' dirty' if info['jobfs_tree_dirty'] else ''})")
        for n in a.only:
            log(f"step {n} ...")
            b.logs = []
            t0 = time.monotonic()
            try:
                STEPS[n](b)
            except (Failed, subprocess.SubprocessError, OSError, ValueError) as e:
                status = 1
                log(f"step {n} failed: {e}")
                if not isinstance(e, Failed):
                    traceback.print_exc()
                b.tail_logs()
                b.results.append({"step": n, "key": f"{n}.error", "error": str(e)})
                # Leave nothing of the failed step behind before the next one.
                for path in list(reversed(b.mounts)):
                    b.unmount(path)
                for proc in list(reversed(b.procs)):
                    b.stop(proc, timeout=5)
            log(f"step {n} done in {time.monotonic() - t0:.1f} s")
        print()
        print_table(b.results)
        out = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
               "params": {k: v for k, v in vars(a).items() if k not in ("compare",)},
               "results": b.results, "details": b.details}
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        os.replace(tmp, a.json)
        log(f"figures written to {a.json}")
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        b.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
