#!/usr/bin/python3
"""A mount smoke test with nothing but python3 and fuse3: for chroots and packages.

    tests/smoke_mount.py JOBFS_BINARY

Starts the bundled simulator (tests/sim/jobsim.py, seed scenario) on free
ports, mounts JOBFS_BINARY on a temp dir in the foreground, reads a Bacalhau
job's state and a muse run's cr through the mount, checks them against the
simulator's own answer, unmounts with fusermount3 -u and checks that jobfs
exited 0. Used by contrib/portability.sh (Debian 11 and 13 chroots) and
contrib/build-deb.sh (the installed /usr/bin/jobfs), where pytest may be
missing. Every wait has a deadline; only processes started here are
signalled, by pid. Prints one "N passed, M failed" line.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
JOBSIM = os.path.join(HERE, "sim", "jobsim.py")
SEED_JOB = "9304c616-291f-41ad-b862-54e133c0149e"
RUN = ("sw_example", "58ae6cea-df31-4059-9466-b817c337985d")


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def summary(job_state):
    """The job summary state as the README defines it, from the simulator's truth."""
    shards = [sh.get("State") for node in job_state.get("Nodes", {}).values()
              for sh in node.get("Shards", {}).values()]
    for s in ("Running", "Verifying", "Waiting", "Bidding", "Completed", "Error", "Cancelled"):
        if s in shards:
            return s
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2])
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="jobfs-smoke-")
    mnt = os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    ports_file = os.path.join(tmp, "ports.json")
    sim_log = open(os.path.join(tmp, "sim.log"), "w")
    jobfs_log = open(os.path.join(tmp, "jobfs.log"), "w")
    sim = subprocess.Popen([sys.executable, JOBSIM, "--scenario", "seed", "--ports-file", ports_file],
                           stdout=sim_log, stderr=subprocess.STDOUT)
    jobfs = None
    checks = []
    try:
        wait_for(lambda: os.path.exists(ports_file) or sim.poll() is not None, 30, "the simulator")
        assert sim.poll() is None, "simulator exited: " + open(sim_log.name).read()
        ports = json.load(open(ports_file))
        burl, murl = f"http://127.0.0.1:{ports['bacalhau']}", f"http://127.0.0.1:{ports['muse']}/api/"
        truth = json.load(urllib.request.urlopen(f"{burl}/_sim/jobs/{SEED_JOB}", timeout=10))["state"]
        jobfs = subprocess.Popen([binary, "-f", f"--bacalhau-url={burl}", f"--muse-url={murl}", mnt],
                                 stdout=jobfs_log, stderr=subprocess.STDOUT)
        wait_for(lambda: mounted(mnt) or jobfs.poll() is not None, 15, "the mount")
        assert jobfs.poll() is None, "jobfs exited: " + open(jobfs_log.name).read()
        state = open(os.path.join(mnt, "jobs", SEED_JOB, "state")).read()
        checks.append(("job state", state, summary(truth) + "\n"))
        cr = open(os.path.join(mnt, "software", *RUN, "cr")).read()
        checks.append(("run cr", cr, "OK\n"))
        checks.append(("listing", SEED_JOB in os.listdir(os.path.join(mnt, "jobs")), True))
        r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True, text=True, timeout=20)
        checks.append(("fusermount3 -u", r.returncode, 0))
        jobfs.wait(timeout=15)
        checks.append(("jobfs exit status", jobfs.returncode, 0))
    finally:
        if mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True, timeout=20)
        if jobfs:
            stop(jobfs)
        stop(sim)
        sim_log.close()
        jobfs_log.close()
    failed = [c for c in checks if c[1] != c[2]]
    for name, got, want in checks:
        print(f"   smoke: {name}: {'ok' if got == want else f'got {got!r}, want {want!r}'}")
    if failed:
        print(open(jobfs_log.name).read(), end="")
    print(f"smoke: {len(checks) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
