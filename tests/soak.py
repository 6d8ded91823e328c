#!/usr/bin/python3
"""Soak: 32 readers against a changing, faulty server, for a bounded time.

    tests/soak.py [--minutes 10] [--readers 32] [--jobfs build/jobfs]

Not part of CI. Prints the operations done, errors by kind, hangs (an
operation still running 5 s past the request deadline: must be 0), and the
daemon's RSS at start and end. Exit status 1 on a hang, a daemon death or a
sanitizer report. Cleans up after itself (the mount, the simulator, by pid).
"""
import argparse
import collections
import errno
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "integration"))
import conftest  # noqa: E402  (the suite's Sim and Mount: same cleanup rules)

TIMEOUT = 2.0           # --timeout given to jobfs
HANG_AFTER = TIMEOUT + 5.0
FAULTS = [dict(mode="delay", ms=3000), dict(mode="status", status=500), dict(mode="status", status=503),
          dict(mode="garbage"), dict(mode="truncate"), dict(mode="close"), dict(mode="cut"),
          dict(mode="deep"), dict(mode="none")]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = 0
        self.errors = collections.Counter()
        self.running = {}       # thread id -> (start, what)
        self.hangs = set()

    def begin(self, what):
        with self.lock:
            self.running[threading.get_ident()] = (time.monotonic(), what)

    def end(self, err=None):
        with self.lock:
            self.running.pop(threading.get_ident(), None)
            self.ops += 1
            if err:
                self.errors[err] += 1


def reader(m, jobs, stats, stop):
    rnd = random.Random(threading.get_ident())
    while not stop.is_set():
        job = rnd.choice(jobs)
        kind = rnd.choice(["cat", "ls", "stat", "walk"])
        path = m.p("jobs", job)
        stats.begin(f"{kind} {path}")
        err = None
        try:
            if kind == "ls":
                os.listdir(path)
            elif kind == "stat":
                os.stat(os.path.join(path, "state"))
            elif kind == "cat":
                with open(os.path.join(path, "state"), "rb") as f:
                    f.read()
            else:
                for root, _, files in os.walk(path):
                    for name in files:
                        with open(os.path.join(root, name), "rb") as f:
                            f.read()
        except OSError as e:
            err = errno.errorcode.get(e.errno, str(e.errno))
        stats.end(err)


def changer(sim, live, stop):
    rnd = random.Random(1)
    i = 0
    while not stop.is_set():
        job = rnd.choice(live)
        try:
            sim.append(job, "QmSoakNode", f"line {i}\n")
            sim.set_shard(job, "QmSoakNode", {"Status": f"tick {i}"})
        except OSError:
            pass        # the simulator is the one being faulted, not a failure
        i += 1
        stop.wait(0.1)


def faulter(sim, stop, log):
    rnd = random.Random(2)
    while not stop.is_set():
        fault = rnd.choice(FAULTS)
        try:
            sim.fault(**fault, count=rnd.randint(1, 20))
            log.append(fault["mode"])
        except OSError:
            pass
        stop.wait(rnd.uniform(0.5, 3.0))


def monitor(stats, stop):
    while not stop.is_set():
        now = time.monotonic()
        with stats.lock:
            for tid, (t0, what) in stats.running.items():
                if now - t0 > HANG_AFTER and tid not in stats.hangs:
                    stats.hangs.add(tid)
                    print(f"HANG: {what} running for {now - t0:.1f} s", flush=True)
        stop.wait(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--readers", type=int, default=32)
    ap.add_argument("--jobfs", default=str(HERE.parent / "build" / "jobfs"))
    a = ap.parse_args()
    conftest.JOBFS_BIN = os.path.abspath(a.jobfs)
    tmp = Path(tempfile.mkdtemp(prefix="jobfs-soak-"))
    sim = conftest.Sim(tmp, "--scenario", "seed", "--bulk-jobs", "200")
    m = None
    stop = threading.Event()
    threads = []
    stats = Stats()
    faults = []
    try:
        live = [f"50a50000-0000-4000-8000-{i:012d}" for i in range(20)]
        for job in live:
            sim.set_job(job, {"Nodes": {"QmSoakNode": {"Shards": {"0": {
                "NodeId": "QmSoakNode", "State": "Running",
                "RunOutput": {"stdout": "", "stdouttruncated": False, "stderr": "",
                              "stderrtruncated": False, "exitCode": 0, "runnerError": ""}}}}}})
        jobs = live + [f"00000000-0000-4000-8000-{i:012d}" for i in range(200)] + [conftest.SEED_JOB]
        m = conftest.Mount(tmp, sim, f"--timeout={TIMEOUT}", "--poll-interval=0.5", "--ttl=0.5")
        pid = m.proc.pid
        rss0 = rss_kib(pid)
        t_end = time.monotonic() + a.minutes * 60
        for _ in range(a.readers):
            threads.append(threading.Thread(target=reader, args=(m, jobs, stats, stop), daemon=True))
        threads.append(threading.Thread(target=changer, args=(sim, live, stop), daemon=True))
        threads.append(threading.Thread(target=faulter, args=(sim, stop, faults), daemon=True))
        threads.append(threading.Thread(target=monitor, args=(stats, stop), daemon=True))
        for t in threads:
            t.start()
        while time.monotonic() < t_end and m.alive():
            time.sleep(1)
        alive = m.alive()
        rss1 = rss_kib(pid) if alive else -1
        stop.set()
        sim.fault(mode="none")
        for t in threads:
            t.join(HANG_AFTER + 5)
        print(f"soak: {a.minutes} min, {a.readers} readers, {stats.ops} operations, "
              f"{len(faults)} faults injected")
        print(f"hangs: {len(stats.hangs)}")
        print("errors by kind: " + (", ".join(f"{k} {v}" for k, v in stats.errors.most_common())
                                    or "none"))
        print(f"daemon alive: {'yes' if alive else 'NO'}; RSS start {rss0} KiB, end {rss1} KiB")
        ok = alive and not stats.hangs
    finally:
        stop.set()
        if m:
            m.close()
            reports = m.sanitizer_report()
            if reports:
                print("sanitizer reports:\n" + "\n".join(reports))
                ok = False
        sim.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
