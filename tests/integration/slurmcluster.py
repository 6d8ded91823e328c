"""The one-node SLURM cluster the SLURM tests share (test_slurm.py,
test_slurm_faults.py): tests/slurm/cluster.sh brings it up in a state
directory of this pytest process and always takes it down. conftest.py's
session fixture `cluster` is the only user of session(), so the files of
one run share one cluster.
"""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import SRC, run, wait_for

CLUSTER_SH = os.path.join(SRC, "tests", "slurm", "cluster.sh")
MIN_JOB_AGE = 30        # s; the cluster's MinJobAge: a finished job leaves within it
OTHER_CLUSTER_WAIT = 600        # s: CI or someone else may be running the SLURM tests
JOB_DONE = 60           # s: submit to a final state (about 1 s here; a loaded CI runner is slower)

SCRIPTS = {
    "held.sh": "#!/bin/sh\necho never runs: submitted held\n",
    "ok.sh": '#!/bin/sh\necho "hello from job $SLURM_JOB_ID"\necho second line\necho to stderr >&2\n',
    "fail.sh": "#!/bin/sh\necho about to fail\nexit 3\n",
    "sleep.sh": '#!/bin/sh\necho started\nsleep "${1:-300}"\n',
    "arr.sh": '#!/bin/sh\necho "array task $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID"\n'
              'exit "$SLURM_ARRAY_TASK_ID"\n',
    # one line a second for $1 seconds, then it ends
    "grow.sh": '#!/bin/sh\ni=1\nwhile [ "$i" -le "${1:-10}" ]; do echo "tick $i"; i=$((i + 1)); '
               'sleep 1; done\n',
}


class Cluster:
    """The running cluster: its env file, sbatch and REST with its token."""

    def __init__(self, state_dir):
        self.dir = state_dir
        env = {}
        with open(os.path.join(state_dir, "env")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                env[k] = v
        self.url = env["SLURM_URL"]
        self.token = env["SLURM_JWT"]
        self.user = env["SLURM_USER"]
        self.jobdir = env["SLURM_JOBDIR"]
        self.conf = env["SLURM_CONF"]
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        for name, text in SCRIPTS.items():
            path = os.path.join(self.jobdir, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)

    def sbatch(self, *args):
        """Submits a job from the job directory; returns its id (the array's for --array)."""
        r = run(["sbatch", "--parsable", *args], env=self.env, cwd=self.jobdir, timeout=30)
        assert r.returncode == 0, f"sbatch {' '.join(args)}: {r.stderr}"
        return r.stdout.strip().split(";")[0]

    def scancel(self, *ids):
        if ids:
            run(["scancel", *ids], env=self.env, timeout=30)

    def scontrol(self, *args):
        r = run(["scontrol", *args], env=self.env, timeout=30)
        assert r.returncode == 0, f"scontrol {' '.join(args)}: {r.stderr}"
        return r.stdout

    def rest(self, path):
        """GET /slurm/v0.0.38/PATH: (status, parsed body or None)."""
        req = urllib.request.Request(f"{self.url}/slurm/v0.0.38/{path}", headers={
            "X-SLURM-USER-NAME": self.user, "X-SLURM-USER-TOKEN": self.token})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body)
            except ValueError:
                return e.code, None

    def job(self, name):
        """The server's record of job NAME ("12" or "10_2"), or None once it is unknown."""
        status, body = self.rest(f"job/{name}")
        if status != 200:
            return None
        want = name.split("_")
        for j in body["jobs"]:
            if len(want) == 2 and j["array_job_id"] == int(want[0]) and j["array_task_id"] == int(want[1]):
                return j
            if len(want) == 1 and j["job_id"] == int(want[0]) and j["array_task_id"] is None:
                return j
        return None

    def wait_state(self, name, states, timeout=JOB_DONE):
        return wait_for(lambda: (self.job(name) or {}).get("job_state") in states and self.job(name),
                        timeout=timeout, what=f"job {name} in {states}")

    def rename(self, jid, name):
        self.scontrol("update", f"JobId={jid}", f"JobName={name}")


def other_clusters(own_dir):
    """slurmctld processes of this machine that are not ours (pgrep -a)."""
    r = subprocess.run(["pgrep", "-a", "slurmctld"], capture_output=True, text=True, timeout=10)
    found = []
    for line in r.stdout.splitlines():
        pid = line.split()[0]
        try:
            with open(f"/proc/{pid}/status") as f:
                zombie = any(s.startswith("State:") and "Z" in s.split()[1] for s in f)
        except OSError:
            continue        # gone meanwhile
        if not zombie and f"{own_dir}/" not in line:   # a zombie is a stopped one
            found.append(line)
    return found


def session():
    """Brings the cluster up, yields a Cluster, takes it down whatever happened."""
    def cannot(why):
        # CI sets JOBFS_REQUIRE_SLURM=1: there a cluster that does not come
        # up is a failure, not a skip
        (pytest.fail if os.environ.get("JOBFS_REQUIRE_SLURM") == "1" else pytest.skip)(why)

    if os.geteuid() != 0:
        cannot("the SLURM tests need root: slurmd runs jobs as their users "
               "(tests/slurm/cluster.sh up)")
    state = f"/tmp/jfs-slurm-{os.getpid()}"
    others = other_clusters(state)
    if others:
        # two clusters would each be slower on two cores; ports never collide
        print(f"waiting up to {OTHER_CLUSTER_WAIT} s for another cluster to go: {others}")
        deadline = time.monotonic() + OTHER_CLUSTER_WAIT
        while other_clusters(state) and time.monotonic() < deadline:
            time.sleep(2)
    env = dict(os.environ, JOBFS_SLURM_DIR=state, JOBFS_SLURM_MIN_JOB_AGE=str(MIN_JOB_AGE))
    try:
        try:
            r = subprocess.run([CLUSTER_SH, "up"], env=env, capture_output=True, text=True,
                               timeout=900, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            cannot(f"cannot bring up a SLURM cluster with tests/slurm/cluster.sh: {e}")
        if r.returncode != 0:
            cannot("cannot bring up a SLURM cluster with tests/slurm/cluster.sh: "
                   + (r.stderr.strip().splitlines() or ["no output"])[-1])
        yield Cluster(state)
    finally:
        subprocess.run([CLUSTER_SH, "down"], env=env, capture_output=True, timeout=300,
                       stdin=subprocess.DEVNULL)
