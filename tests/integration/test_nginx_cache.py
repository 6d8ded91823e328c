"""contrib/nginx/jobfs-cache.conf with Debian's nginx, against the simulator.

nginx runs in the foreground from a temp prefix with the contrib file as it
is, except for what a deployment edits anyway: the upstream servers (the
simulator's ports), the listen ports (free ones) and the cache directory.
Plain HTTP clients stand in for the mounts: 20 of them poll the same 100 live
Bacalhau jobs (POST /requester/states, the body naming the job) once a
second, and the simulator's own counters say how many requests reached it:
about one per job per second through the cache, 20 without it (the control
twin, same clients, straight to the simulator). The other checks: each job
gets its own reply (the key holds the body), a change shows within about a
2 seconds (nginx counts validity in whole seconds), an outage is not hidden behind stale replies, credentials split the
cache, and muse GETs are cached the same way.

Figures are printed (pytest -s shows them). nginx is stopped by pid.
"""
import http.client
import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import RUN_NOK, RUN_OK, RUN_WAIT, SEED_CLIENT, stop_process, wait_for

SRC = os.environ.get("JOBFS_SRC") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(SRC, "contrib", "nginx", "jobfs-cache.conf")
NGINX = shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin:/bin")

pytestmark = pytest.mark.skipif(not NGINX, reason="nginx is not installed (apt-get install nginx-light)")

CLIENTS = 20
JOBS = 100
PERIOD = 1.0            # s between two polls of one client: jobfs's --poll-interval
STATES = "/requester/states"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx -p PREFIX in the foreground, with the contrib file adapted to ports."""

    def __init__(self, tmp_path, upstream):
        self.prefix = tmp_path / "nginx"
        for d in ("logs", "cache", "tmp"):
            (self.prefix / d).mkdir(parents=True)
        with open(CONF) as f:
            text = f.read()
        self.front = {}
        for name, port in upstream.items():
            text, n = re.subn(r"(upstream jobfs_%s\s*\{\s*server )[^;]+;" % name,
                              lambda m: f"{m.group(1)}127.0.0.1:{port};", text)
            assert n == 1, f"no upstream jobfs_{name} in {CONF}"
        for name, default in (("bacalhau", 11234), ("muse", 18000), ("slurm", 16820)):
            self.front[name] = free_port()
            text, n = re.subn(r"listen 127\.0\.0\.1:%d;" % default,
                              f"listen 127.0.0.1:{self.front[name]};", text)
            assert n == 1, f"no 'listen 127.0.0.1:{default};' in {CONF}"
        text, n = re.subn(r"proxy_cache_path \S+", f"proxy_cache_path {self.prefix}/cache", text)
        assert n == 1
        (self.prefix / "jobfs-cache.conf").write_text(text)
        tmp = self.prefix / "tmp"
        # as root, nginx's workers would be nobody, who cannot enter the test's
        # temp dir (0700): keep them as the user running the test
        user = "user root root;" if os.geteuid() == 0 else ""
        (self.prefix / "nginx.conf").write_text(f"""
daemon off;
{user}
master_process on;
worker_processes 1;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {self.prefix}/jobfs-cache.conf;
}}
""")
        self.log = open(self.prefix / "logs" / "stderr.log", "w")
        self.proc = subprocess.Popen([NGINX, "-p", str(self.prefix), "-c",
                                      str(self.prefix / "nginx.conf"), "-e",
                                      str(self.prefix / "logs" / "error.log")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.proc.poll() is not None or all(
                self._listening(p) for p in self.front.values()), timeout=15, what="nginx")
            assert self.proc.poll() is None, self.errors()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _listening(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def errors(self):
        return (self.prefix / "logs" / "error.log").read_text() + \
            (self.prefix / "logs" / "stderr.log").read_text()

    def close(self):
        stop_process(self.proc)     # SIGTERM: nginx's master stops its workers
        self.log.close()


@pytest.fixture
def nginx(sim, tmp_path):
    n = Nginx(tmp_path, {"bacalhau": sim.bport, "muse": sim.mport, "slurm": free_port()})
    yield n
    n.close()


def job_ids():
    return [f"0000cafe-0000-4000-8000-{i:012d}" for i in range(JOBS)]


def make_jobs(sim):
    for j in job_ids():
        sim.set_job(j, {"Nodes": {"QmCache1": {"Shards": {"0": {
            "NodeId": "QmCache1", "State": "Running",
            "RunOutput": {"stdout": f"job {j}\n", "stdouttruncated": False, "stderr": "",
                          "stderrtruncated": False, "exitCode": 0, "runnerError": ""}}}}}})


def states_body(job_id):
    return json.dumps({"client_id": SEED_CLIENT, "job_id": job_id})


def post_states(conn, job_id, headers=None):
    conn.request("POST", STATES, body=states_body(job_id),
                 headers={"Content-Type": "application/json", **(headers or {})})
    r = conn.getresponse()
    return r.status, r.read(), r.getheader("X-Jobfs-Cache")


def poll(port, rounds, jobs, send):
    """CLIENTS threads, each on its own kept-alive connection, each sending
    send(conn, job) for every job once per PERIOD, rounds times. Returns
    (elapsed s, replies, failures)."""
    replies, failures, lock = [], [], threading.Lock()
    t0 = time.monotonic() + 0.2     # every client starts its rounds together

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            for k in range(rounds):
                delay = t0 + k * PERIOD - time.monotonic()
                if delay > 0:
                    time.sleep(delay)   # pacing, as a poller does; not synchronisation
                for j in jobs:
                    status, body, _ = send(conn, j)
                    with lock:
                        replies.append((j, status, body))
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                failures.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return time.monotonic() - t0, replies, failures


def per_job(sim, side="b"):
    return sim.stats(side)["by_job"]


def test_twenty_clients_one_request_per_job_per_second(sim, nginx):
    make_jobs(sim)
    jobs = job_ids()
    rounds = 3

    # through the cache
    sim.reset()
    elapsed, replies, failures = poll(nginx.front["bacalhau"], rounds, jobs, post_states)
    assert not failures, failures[:3]
    assert len(replies) == CLIENTS * JOBS * rounds
    assert all(status == 200 for _, status, _ in replies)
    # each job got its own reply: the key holds the body
    assert all(j.encode() in body for j, _, body in replies)
    counts = per_job(sim)
    cached = [counts.get(j, 0) for j in jobs]
    rate = max(cached) / elapsed
    print(f"\nnginx: {CLIENTS} clients x {JOBS} jobs x {rounds} polls in {elapsed:.2f} s: "
          f"the API saw {sum(cached)} requests, per job max {max(cached)} "
          f"min {min(cached)} = {rate:.2f} per job per second")
    # one fill, then at most one refresh per second of validity
    assert max(cached) <= math.ceil(elapsed / PERIOD) + 1, cached
    assert min(cached) >= 1

    # control twin: the same clients straight to the simulator
    sim.reset()
    direct_rounds = 2
    elapsed_d, replies_d, failures_d = poll(sim.bport, direct_rounds, jobs, post_states)
    assert not failures_d, failures_d[:3]
    counts = per_job(sim)
    direct = [counts.get(j, 0) for j in jobs]
    print(f"direct: {CLIENTS} clients x {JOBS} jobs x {direct_rounds} polls in {elapsed_d:.2f} s: "
          f"the API saw {sum(direct)} requests, {min(direct)} per job = "
          f"{min(direct) / direct_rounds:.0f} per job per poll period (cache: "
          f"{max(cached) / rounds:.2f})")
    assert min(direct) == CLIENTS * direct_rounds


def test_a_change_shows_within_a_second(sim, nginx):
    make_jobs(sim)
    j = job_ids()[0]
    conn = http.client.HTTPConnection("127.0.0.1", nginx.front["bacalhau"], timeout=10)
    try:
        assert b'"Running"' in post_states(conn, j)[1]
        assert post_states(conn, j)[2] == "HIT"
        sim.set_shard(j, "QmCache1", {"State": "Completed"})
        changed = time.monotonic()
        wait_for(lambda: b'"Completed"' in post_states(conn, j)[1], timeout=5, interval=0.05,
                 what="the change through the cache")
        seen = time.monotonic() - changed
        print(f"\nchange seen through the cache after {seen:.2f} s")
        # nginx keeps validity in whole seconds: a 1 s entry lives 1 to 2 s
        assert seen <= 2.0 + 0.5
    finally:
        conn.close()


def test_an_outage_is_not_hidden(sim, nginx):
    make_jobs(sim)
    j = job_ids()[1]
    conn = http.client.HTTPConnection("127.0.0.1", nginx.front["bacalhau"], timeout=10)
    try:
        assert post_states(conn, j)[0] == 200
        sim.fault(mode="status", status=503, body="busy", paths=[STATES])
        # twin: within the second, the cached reply stands
        status, _, cache = post_states(conn, j)
        assert (status, cache) == (200, "HIT")
        # past it, jobfs must see the server's answer, not a stale 200
        wait_for(lambda: post_states(conn, j)[0] == 503, timeout=5, interval=0.05,
                 what="the 503 through the cache")
    finally:
        conn.close()
        sim.fault(mode="none")


def test_a_body_too_large_for_the_key_is_refused(sim, nginx):
    conn = http.client.HTTPConnection("127.0.0.1", nginx.front["bacalhau"], timeout=10)
    try:
        conn.request("POST", STATES, body="x" * (17 << 10))
        r = conn.getresponse()
        r.read()
        assert r.status == 413
    finally:
        conn.close()


def get(conn, path, headers=None):
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read(), r.getheader("X-Jobfs-Cache")


def test_muse_gets_are_cached(sim, nginx):
    runs = [RUN_OK, RUN_WAIT, RUN_NOK]
    path = "/api/software/muse/state/sw_example/{}/".format
    sim.reset("m")
    rounds = 2
    elapsed, replies, failures = poll(nginx.front["muse"], rounds, runs,
                                      lambda c, k: get(c, path(k)))
    assert not failures, failures[:3]
    assert all(status == 200 and k.encode() in body for k, status, body in replies)
    counts = per_job(sim, "m")
    got = [counts.get(f"sw_example/{k}", 0) for k in runs]
    print(f"\nmuse through nginx: {CLIENTS} clients x {len(runs)} runs x {rounds} polls in "
          f"{elapsed:.2f} s: per run {got} requests")
    assert max(got) <= math.ceil(elapsed / PERIOD) + 1 and min(got) >= 1


def test_credentials_split_the_cache(sim, nginx):
    conn = http.client.HTTPConnection("127.0.0.1", nginx.front["muse"], timeout=10)
    path = f"/api/software/muse/state/sw_example/{RUN_OK}/"
    try:
        sim.reset("m")
        assert get(conn, path, {"Authorization": "Bearer alice"})[2] == "MISS"
        assert get(conn, path, {"Authorization": "Bearer bob"})[2] == "MISS"
        # twin: the same credentials again are served from the cache
        assert get(conn, path, {"Authorization": "Bearer alice"})[2] == "HIT"
        assert per_job(sim, "m").get(f"sw_example/{RUN_OK}") == 2
    finally:
        conn.close()


MOUNT_PERIOD = 1.2     # s: past the mounts' 1 s TTL, so that every round refetches


def cat_rounds(mounts, jobs, rounds):
    """Every mount reads every job's state once per MOUNT_PERIOD (one `cat`
    per mount per round, all mounts at once); returns the elapsed seconds."""
    t0 = time.monotonic()
    for k in range(rounds):
        delay = t0 + k * MOUNT_PERIOD - time.monotonic()
        if delay > 0:
            time.sleep(delay)   # pacing, as a watcher's loop does
        procs = [subprocess.Popen(["cat"] + [m.p("jobs", j, "state") for j in jobs],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for m in mounts]
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            assert out == b"Running\n" * len(jobs)
    return time.monotonic() - t0


@pytest.mark.parametrize("through", ["nginx", "direct"])
def test_twenty_mounts(sim, nginx, mount_factory, through):
    """The same with 20 real jobfs mounts (--ttl=0.5) reading 100 live jobs."""
    make_jobs(sim)
    jobs = job_ids()
    url = (f"http://127.0.0.1:{nginx.front['bacalhau']}" if through == "nginx"
           else sim.bacalhau_url)
    # a TTL under half the pacing: every round refetches, however long the
    # round before took (a slow round left fresh data for the next one at --ttl=1)
    mounts = [mount_factory(sim, f"--bacalhau-url={url}", "--poll-interval=0", "--ttl=0.5")
              for _ in range(CLIENTS)]
    sim.reset()
    rounds = 3
    elapsed = cat_rounds(mounts, jobs, rounds)
    counts = per_job(sim)
    got = [counts.get(j, 0) for j in jobs]
    print(f"\n{CLIENTS} mounts {through}: {JOBS} jobs x {rounds} reads in {elapsed:.2f} s: the API "
          f"saw {sum(got)} requests, per job {min(got)}..{max(got)} = "
          f"{max(got) / elapsed:.2f} per job per second")
    if through == "nginx":
        assert max(got) <= math.ceil(elapsed / PERIOD) + 1, got
    else:
        # each mount fetches each job in every round: its TTL has passed
        assert min(got) >= CLIENTS * rounds, got
