"""Issue 9: the new core (one owner of freshness, a fetch lane per backend,
polling on a budget, a byte budget, parallel lookups), tried as a user would.

Real mounts against the simulator, driven with the real tools (grep -r, cat,
ls, inotifywait, Node's fs.watch). Each behaviour runs with a control twin
that comes out the other way. Every wait has a deadline; a fixed window is
used only to count what happens when nothing should ("nothing happens" or
"at most N requests"), never to wait for something. Timings and counts are
printed as `core: ...` lines (`pytest -s` shows them) for the notes.
"""
import http.client
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import (RUNNING_JOB, RUN_WAIT, SANITIZER, SEED_CLIENT, is_mounted, read, run, status, stop_process, wait_for, xattr)

MiB = 1024 * 1024
TIMEDOUT = "Connection timed out"
STALE = "user.jobfs.stale"


# --------------------------------------------------------------------------
# helpers

def note(what, value):
    """Measured figures for the notes: shown by `pytest -s`, and with a failure."""
    print(f"core: {what}: {value}", flush=True)





def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class RssSampler:
    """Samples a process's VmRSS every 20 ms on a thread; keeps the peak."""

    def __init__(self, pid):
        self.pid, self.peak, self.samples = pid, 0, 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag.wait(0.02):
            try:
                v = rss_kib(self.pid)
            except (OSError, AssertionError):
                return
            self.peak = max(self.peak, v)
            self.samples += 1

    def stop(self):
        self.stop_flag.set()
        self.thread.join(5)
        return self.peak


class Control:
    """One kept-alive connection to a simulator port, for bulk control calls
    (thousands of jobs or runs in a second or two)."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        raw = r.read()
        assert r.status == 200, f"{method} {path}: {r.status} {raw[:200]!r}"
        return json.loads(raw) if raw.strip() else None

    def close(self):
        self.conn.close()


def shard(node, state, stdout=""):
    return {"NodeId": node, "State": state,
            "RunOutput": {"stdout": stdout, "stdouttruncated": False, "stderr": "",
                          "stderrtruncated": False, "exitCode": 0, "runnerError": ""}}


def job_state(nodes, state="Running", stdout=""):
    """A JobState with one shard 0 on each of nodes."""
    return {"Nodes": {n: {"Shards": {"0": shard(n, state, stdout)}} for n in nodes}}


def job_id(prefix, i):
    return f"{prefix}-0000-4000-8000-{i:012d}"


def wait_all(procs, timeout):
    """Waits for every process by the deadline; returns their (rc, out, err)."""
    deadline = time.monotonic() + timeout
    results = []
    for p in procs:
        out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        results.append((p.returncode, out, err))
    return results


def kill_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        try:
            p.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            pass


# --------------------------------------------------------------------------
# 1. an idle sweep costs at most the budget

SWEEP_JOBS = 300
WINDOW = 10.0           # seconds counted after the sweep (the issue says 30; 10 keeps the suite quick)
CHANGED = 5             # jobs changed on the server during the window
BUDGET = 10.0           # --poll-budget's default
INTERVAL = 1.0          # --poll-interval's default


@pytest.mark.parametrize("setup", ["feed", "no-feed", "no-feed-budget-1000"])
def test_idle_sweep_costs_at_most_the_budget(sim_factory, mount_factory, setup):
    """300 live jobs swept by `grep -r`, then left alone for WINDOW seconds
    while CHANGED of them change on the server. With the change feed (jobs
    listed by /requester/list, which carries their states) the server sees
    one list per interval at most and one states request per changed job;
    without it (the jobs belong to another client id, so the list does not
    name them and they are opened by path) at most --poll-budget per second.
    Twin: the same no-feed setup with --poll-budget=1000 goes well past 10/s,
    so the budget is what holds the rate."""
    sim = sim_factory("--scenario", "empty")
    feed = setup == "feed"
    budget = 1000.0 if setup.endswith("1000") else BUDGET
    ctl = Control(sim.bport)
    ids = [job_id("c0de0001", i) for i in range(SWEEP_JOBS)]
    try:
        for i, jid in enumerate(ids):
            # not listed without the feed: another client's jobs
            ctl.call("POST", "/_sim/jobs", {"id": jid, "client_id": SEED_CLIENT if feed else "someone-else",
                                            "state": job_state(["QmSweep1"], stdout=f"job {i}\n")})
    finally:
        ctl.close()
    m = mount_factory(sim, f"--client-id={SEED_CLIENT}", f"--poll-budget={budget:g}")
    t0 = time.monotonic()
    if feed:
        r = run(["grep", "-r", "-c", "job", m.p("jobs")], timeout=120)
    else:
        r = run(["grep", "-r", "-c", "job"] + [m.p("jobs", j) for j in ids], timeout=120)
    sweep = time.monotonic() - t0
    hits = [l for l in r.stdout.splitlines() if l.endswith("/stdout:1")]
    assert len(hits) == SWEEP_JOBS, r.stdout[-500:] + r.stderr[-500:]
    note(f"[{setup}] cold grep -r over {SWEEP_JOBS} jobs", f"{sweep:.2f}s")
    assert status(m)["bacalhau"]["change_feed"] == ("yes" if feed else "no")

    sim.reset()
    start = time.monotonic()
    time.sleep(2.0)     # part of the counted window: changes come in its middle
    changed = ids[-CHANGED:]      # the last listed: fetched last by the sweep
    for jid in changed:
        sim.set_shard(jid, "QmSweep1", {"State": "Verifying"})
    time.sleep(max(0.0, start + WINDOW - time.monotonic()))
    st = sim.stats()
    elapsed = time.monotonic() - start
    total = st["requests"]
    lists = st["by_path"].get("/requester/list", 0)
    states = st["by_path"].get("/requester/states", 0)
    per_changed = [st["by_job"].get(j, 0) for j in changed]
    unchanged = sum(v for j, v in st["by_job"].items() if j not in changed)
    s = status(m)["bacalhau"]
    note(f"[{setup}] requests in {elapsed:.1f}s after the sweep",
         f"{total} ({total / elapsed:.1f}/s): list {lists}, states {states} "
         f"(changed jobs {per_changed}, unchanged {unchanged}); "
         f"polls {s['polls']}, budget denied {s['poll_budget_denied']}")
    ceiling = BUDGET * elapsed + BUDGET + 2     # the rate plus one second's burst
    if setup == "no-feed-budget-1000":
        assert total > 3 * ceiling, f"{total} requests: the budget was not what held the rate"
        return
    assert total <= ceiling, f"{total} requests in {elapsed:.1f}s, budget {BUDGET}/s"
    if feed:
        assert lists <= elapsed / INTERVAL + 1, f"{lists} lists in {elapsed:.1f}s"
        assert unchanged == 0, f"{unchanged} states requests for jobs that did not change"
        assert per_changed == [1] * CHANGED, f"changed jobs fetched {per_changed} times"
    else:
        assert int(s["poll_budget_denied"]) > 0, "the budget never held a poll back"


# --------------------------------------------------------------------------
# 2. a stuck server delays no other backend

STUCK_MS = 30000        # the Bacalhau server answers after 30 s
STUCK_READERS = 40      # more than a lane's 32 workers
FRESH_WITHIN = 0.5
MUSE_TTL = 0.2


@pytest.mark.parametrize("stuck", [True, False], ids=["bacalhau-stuck", "bacalhau-healthy"])
def test_stuck_bacalhau_does_not_delay_muse(sim, mount_factory, watch_factory, stuck):
    """With the Bacalhau server stuck (every states and list request answered
    after 30 s, --timeout=60) and 40 readers waiting on it, a live muse run
    changed on the server is read fresh within 0.5 s, and a watched one's
    IN_MODIFY comes within the poll interval + 0.5 s. Twin: the same with a
    healthy Bacalhau server, whose 40 readers then finish at once, where in
    the stuck case they are all still waiting when the muse checks are done
    (the server really was stuck)."""
    m = mount_factory(sim, "--timeout=60", f"--ttl={MUSE_TTL}")
    run_dir = m.p("software", "sw_example", RUN_WAIT)
    f = os.path.join(run_dir, "slurm_state")
    assert read(f) == b"RUNNING\n"
    news = [job_id("5bcc0002", i) for i in range(STUCK_READERS)]
    for jid in news:
        sim.set_job(jid, job_state(["QmStuck1"]))
    if stuck:
        sim.fault("b", mode="delay", ms=STUCK_MS, paths=["/requester/states", "/requester/list"])
    sim.reset()
    readers = [subprocess.Popen(["cat", m.p("jobs", jid, "state")], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for jid in news]
    readers.append(subprocess.Popen(["ls", m.p("jobs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        # the Bacalhau lane is full: its server holds 32 requests or more
        wait_for(lambda: sim.stats()["by_path"].get("/requester/states", 0) >= 32, timeout=10,
                 what="the Bacalhau readers to reach the server")
        worst = 0.0
        for i in range(3):
            sim.set_run("sw_example", RUN_WAIT, latest_state=f"STEP{i}")
            t0 = time.monotonic()
            wait_for(lambda: read(f) == f"STEP{i}\n".encode(), timeout=10, interval=0.01,
                     what=f"the muse change {i}")
            worst = max(worst, time.monotonic() - t0)
        note(f"[{'stuck' if stuck else 'healthy'}] muse change read fresh, worst of 3", f"{worst:.2f}s")
        assert worst <= FRESH_WITHIN, f"the muse run was read fresh after {worst:.2f}s"

        w = watch_factory(f, events="modify")
        read(f)
        sim.set_run("sw_example", RUN_WAIT, latest_state="WATCHED")
        t0 = time.monotonic()
        w.wait_line(lambda l: l.startswith("MODIFY"), timeout=10, what="IN_MODIFY of the muse run")
        latency = time.monotonic() - t0
        note(f"[{'stuck' if stuck else 'healthy'}] muse IN_MODIFY after", f"{latency:.2f}s")
        assert latency <= INTERVAL + 0.5, f"IN_MODIFY came {latency:.2f}s after the change"

        if stuck:
            waiting = [p for p in readers if p.poll() is None]
            assert len(waiting) == len(readers), \
                f"{len(readers) - len(waiting)} Bacalhau readers finished: the server was not stuck"
        else:
            t0 = time.monotonic()
            results = wait_all(readers, timeout=10)
            note("[healthy] the 40 Bacalhau readers done", f"{time.monotonic() - t0:.2f}s after the muse checks")
            assert [r[0] for r in results] == [0] * len(readers), results[:3]
            assert all(r[1] == b"Running\n" for r in results[:-1]), results[:3]
    finally:
        kill_all(readers)


# --------------------------------------------------------------------------
# 3. first reads run in parallel

PARALLEL = 32


@pytest.mark.parametrize("delay_ms", [1000, 0], ids=["slow-server", "fast-server"])
def test_parallel_first_reads(sim_factory, mount_factory, delay_ms):
    """32 parallel `cat jobs/NEW_i/state` of 32 jobs never seen, on a server
    that answers each states request after 1 s: the whole batch is done
    within 3 s (one at a time it would take 32 s), each with its own job's
    state. Twin: on a server without the delay the same batch is done in
    well under 1 s, so the 1 s of the slow case is the server's."""
    sim = sim_factory("--scenario", "empty")
    states = ["Bidding", "Waiting", "Running", "Verifying"]
    ids = [job_id("9a7a0003", i) for i in range(PARALLEL)]
    for i, jid in enumerate(ids):
        sim.set_job(jid, job_state([f"QmPar{i:03d}"], state=states[i % len(states)]))
    m = mount_factory(sim, "--poll-interval=0")
    assert status(m)["cache"]["parallel_lookups"] == "yes"
    if delay_ms:
        sim.fault("b", mode="delay", ms=delay_ms, paths=["/requester/states"])
    sim.reset()
    t0 = time.monotonic()
    procs = [subprocess.Popen(["cat", m.p("jobs", jid, "state")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for jid in ids]
    try:
        results = wait_all(procs, timeout=60)
    finally:
        kill_all(procs)
    wall = time.monotonic() - t0
    note(f"[delay {delay_ms} ms] {PARALLEL} parallel first reads", f"{wall:.2f}s")
    assert [r[1] for r in results] == [f"{states[i % len(states)]}\n".encode() for i in range(PARALLEL)], \
        [(r[0], r[1], r[2][:80]) for r in results]
    assert sim.stats()["by_path"].get("/requester/states", 0) == PARALLEL
    if delay_ms:
        assert 1.0 <= wall <= 3.0, f"the batch took {wall:.2f}s"
    else:
        assert wall < 1.0, f"the batch took {wall:.2f}s without the delay"


# --------------------------------------------------------------------------
# 4. memory has a ceiling

def rss_meaningful():
    """False on a sanitizer build (conftest.SANITIZER): the VmRSS ceilings
    are checked by the plain pass, the cache's own byte count by every pass."""
    if SANITIZER:
        note("VmRSS not checked", f"{SANITIZER} sanitizer build: quarantine and shadow memory")
    return not SANITIZER


CACHE_BYTES = 256 * MiB
RSS_SLACK = 64 * MiB
RESULT = 1 * MiB
BATCH = 50              # files per `cat`


def make_result_runs(sim, keys, size):
    """Finished muse runs whose `result` (a stdout.txt) is size bytes; the
    simulator streams those bodies and never holds them, so 2,000 MiB of
    results cost it nothing."""
    ctl = Control(sim.mport)
    try:
        for k in keys:
            ctl.call("POST", "/_sim/runs", {"name": "sw_example", "key": k, "cr": "OK",
                                            "returned_type": "stdout.txt", "result_size": size})
    finally:
        ctl.close()


@pytest.mark.parametrize("runs", [2000, 100], ids=["2000-runs-over-budget", "100-runs-fit"])
def test_rss_stays_under_cache_bytes(sim_factory, mount_factory, runs):
    """Each of `runs` finished muse runs with a 1 MiB `result` is read once
    with cat (2,000 MiB in all), --cache-bytes=256M: the jobfs process's
    VmRSS, sampled every 20 ms during the reads, peaks at most 256 + 64 MiB,
    and .jobfs/status counts evictions. Twin: 100 runs (100 MiB) fit the
    same budget, and nothing is evicted. (The issue's case is 2,000 Bacalhau
    jobs with 1 MiB stdout; muse results are used so that the simulator
    streams them instead of holding 2 GiB.)"""
    sim = sim_factory("--scenario", "empty")
    keys = [job_id("3e3e0004", i) for i in range(runs)]
    t0 = time.monotonic()
    make_result_runs(sim, keys, RESULT)
    note(f"[{runs} runs] creating them", f"{time.monotonic() - t0:.2f}s")
    m = mount_factory(sim, f"--cache-bytes={CACHE_BYTES // MiB}M", "--poll-interval=0")
    base = rss_kib(m.proc.pid)
    sampler = RssSampler(m.proc.pid)
    t0 = time.monotonic()
    total = 0
    try:
        for i in range(0, runs, BATCH):
            files = [m.p("software", "sw_example", k, "result") for k in keys[i:i + BATCH]]
            r = run(["sh", "-c", 'cat "$@" | wc -c', "sh"] + files, timeout=120)
            assert r.returncode == 0 and not r.stderr, r.stderr[-500:]
            total += int(r.stdout)
    finally:
        peak = sampler.stop()
    secs = time.monotonic() - t0
    st = status(m)["cache"]
    note(f"[{runs} runs] read {total // MiB} MiB", f"{secs:.2f}s; VmRSS {base // 1024} MiB at start, "
         f"peak {peak // 1024} MiB ({sampler.samples} samples), now {rss_kib(m.proc.pid) // 1024} MiB; "
         f"cached {st['cached']}, bytes {int(st['bytes']) // MiB} MiB, evictions {st['evictions']}")
    assert total == runs * RESULT
    assert sampler.samples > 0
    if rss_meaningful():
        assert peak * 1024 <= CACHE_BYTES + RSS_SLACK, f"peak VmRSS {peak // 1024} MiB"
    assert int(st["bytes"]) <= CACHE_BYTES
    if runs * RESULT > CACHE_BYTES:
        assert int(st["evictions"]) > 0, "over the budget, yet nothing was evicted"
    else:
        assert int(st["evictions"]) == 0, "the workload fits, yet something was evicted"


HEAVY_NODES = 1000      # nodes per job: about 1.6 MiB of tree each, by .jobfs/status
HEAVY_BUDGET = 64 * MiB


@pytest.mark.parametrize("jobs", [200, 20], ids=["200-jobs-over-budget", "20-jobs-fit"])
def test_rss_node_heavy_jobs_under_cache_bytes(sim_factory, mount_factory, jobs):
    """Finished jobs of 1,000 nodes each (little content, many nodes: the
    nodes are what --cache-bytes has to bound here; man jobfs: "their files'
    contents, the replies kept as state.json, and the nodes that hold them")
    are read with `cat jobs/ID/state`, so the kernel holds the job directory
    and `state` but none of the 1,000 node directories: with
    --cache-bytes=64M, 200 of them (about 320 MiB of tree) keep .jobfs/status
    bytes within the budget and VmRSS within 64 + 64 MiB. Twin: 20 of them
    (about 38 MiB) fit, and nothing is evicted."""
    sim = sim_factory("--scenario", "empty")
    ids = [job_id("4ea70009", i) for i in range(jobs)]
    ctl = Control(sim.bport)
    try:
        for i, jid in enumerate(ids):
            ctl.call("POST", "/_sim/jobs", {"id": jid, "state": job_state(
                [f"QmHeavy{i:03d}x{j:04d}" for j in range(HEAVY_NODES)], state="Completed")})
    finally:
        ctl.close()
    m = mount_factory(sim, f"--cache-bytes={HEAVY_BUDGET // MiB}M", "--poll-interval=0")
    sampler = RssSampler(m.proc.pid)
    t0 = time.monotonic()
    try:
        for i in range(0, jobs, BATCH):
            r = run(["cat"] + [m.p("jobs", j, "state") for j in ids[i:i + BATCH]], timeout=120)
            assert r.returncode == 0 and r.stdout == "Completed\n" * len(ids[i:i + BATCH]), r.stderr[-500:]
    finally:
        peak = sampler.stop()
    st = status(m)["cache"]
    note(f"[{jobs} jobs x {HEAVY_NODES} nodes] read", f"{time.monotonic() - t0:.2f}s; peak VmRSS {peak // 1024} MiB; "
         f"cached {st['cached']}, bytes {int(st['bytes']) // MiB} MiB of {HEAVY_BUDGET // MiB}, "
         f"evictions {st['evictions']}")
    assert int(st["bytes"]) <= HEAVY_BUDGET, f"{int(st['bytes']) // MiB} MiB cached, budget {HEAVY_BUDGET // MiB}"
    if rss_meaningful():
        assert peak * 1024 <= HEAVY_BUDGET + RSS_SLACK, f"peak VmRSS {peak // 1024} MiB"
    if jobs == 20:
        assert int(st["evictions"]) == 0, "the workload fits, yet something was evicted"
    else:
        assert int(st["evictions"]) > 0, "over the budget, yet nothing was evicted"


CHURN_NODES = 100       # node ids per reply
CHURN_EVERY = 0.2       # s between changes on the server
CHURN_SECS = 15.0       # the issue says 60 s; 15 keeps the suite quick
CHURN_WARMUP = 3.0      # s before the RSS baseline: allocator arenas and pools filled


def churn_state(gen, grow):
    gens = range(gen + 1) if grow else [gen]
    return job_state([f"QmChurn{g:05d}n{j:03d}" for g in gens for j in range(CHURN_NODES)])


@pytest.mark.parametrize("mode", ["churn", "grow"])
def test_node_id_churn_keeps_rss_flat(sim_factory, mount_factory, watch_factory, mode):
    """A held, watched live job whose 100 node ids are all new in every reply
    (the server changes them every 0.2 s, the poller and `ls` refetch at
    about that rate) for 15 s: jobfs's VmRSS stays flat after a 3 s warm-up
    (within 4 MiB), `ls` of the job stays fast and shows the 100 nodes the
    server has now. Twin ("grow"): the server keeps the old ids and adds 100
    new ones each time, and then RSS does grow, by more than 4 MiB, with
    `ls` showing every node the server has: the measure sees growth."""
    sim = sim_factory("--scenario", "empty")
    grow = mode == "grow"
    jid = job_id("c4a40005", 0)
    sim.set_job(jid, churn_state(0, grow))
    m = mount_factory(sim, "--poll-interval=0.2", "--ttl=0.2")
    d = m.p("jobs", jid)
    assert len([n for n in os.listdir(d) if n.startswith("QmChurn")]) == CHURN_NODES
    w = watch_factory(d, events="create,delete")
    stop = threading.Event()
    gen = [0]

    def changer():
        ctl = Control(sim.bport)
        try:
            while not stop.wait(CHURN_EVERY):
                gen[0] += 1
                ctl.call("POST", "/_sim/jobs", {"id": jid, "state": churn_state(gen[0], grow)})
        finally:
            ctl.close()

    th = threading.Thread(target=changer, daemon=True)
    th.start()
    ls_times, base, t0 = [], None, time.monotonic()
    try:
        while time.monotonic() - t0 < CHURN_SECS:
            if base is None and time.monotonic() - t0 >= CHURN_WARMUP:
                base = rss_kib(m.proc.pid)
            t = time.monotonic()
            r = run(["ls", d], timeout=30)
            ls_times.append(time.monotonic() - t)
            assert r.returncode == 0, r.stderr
            time.sleep(0.3)     # the pace of a user's repeated ls, not a synchronisation
    finally:
        stop.set()
        th.join(10)
    gens = gen[0] + 1
    want = CHURN_NODES * (gens if grow else 1)
    count = lambda: len([n for n in os.listdir(d) if n.startswith("QmChurn")])
    wait_for(lambda: count() == want, timeout=10, what=f"ls to show the server's {want} nodes")
    end = rss_kib(m.proc.pid)
    events = w.lines()
    note(f"[{mode}] {gens} server states in {CHURN_SECS:g}s", f"VmRSS {base // 1024} MiB after warm-up, "
         f"{end // 1024} MiB at the end ({(end - base) / 1024:+.1f} MiB); ls first {ls_times[0]:.3f}s, "
         f"last {ls_times[-1]:.3f}s, worst {max(ls_times):.3f}s ({len(ls_times)} runs); "
         f"nodes now {count()}; events {len(events)}; "
         f"cache bytes {int(status(m)['cache']['bytes']) / MiB:.1f} MiB")
    assert any(l.startswith("CREATE") for l in events), "the watcher saw no new node"
    assert any(l.startswith("DELETE") for l in events) != grow, "DELETE events tell the modes apart"
    if grow:
        assert not rss_meaningful() or end - base > 4 * 1024, \
            f"RSS grew by {(end - base) / 1024:.1f} MiB only, with {want} nodes"
    else:
        assert not rss_meaningful() or end - base <= 4 * 1024, \
            f"RSS grew by {(end - base) / 1024:.1f} MiB under node-id churn"
        assert max(ls_times) < 1.0, f"ls took up to {max(ls_times):.2f}s"
        assert ls_times[-1] < max(0.1, 3 * ls_times[0]), f"ls went from {ls_times[0]:.3f}s to {ls_times[-1]:.3f}s"


# --------------------------------------------------------------------------
# 5. big jobs, --max-stale while a refetch is pending, signals

@pytest.mark.parametrize("nodes", [5000, 100001], ids=["5000-nodes", "over-the-100000-cap"])
def test_big_job_is_readable(sim_factory, mount_factory, nodes):
    """A job with 5,000 nodes is readable: `ls` shows the 5,000 node
    directories and `cat` of one shard's state works. Twin: a job with
    100,001 nodes is past the documented 100,000 entries of a directory and
    fails whole with E2BIG ("Argument list too long")."""
    sim = sim_factory("--scenario", "empty")
    jid = job_id("b1690006", nodes)
    names = [f"QmBig{j:06d}" for j in range(nodes)]
    # lean shards (8 MB for 100,001 nodes), and a reply cap above that: the
    # twin must meet the entry cap, not --max-reply
    sim.set_job(jid, {"Nodes": {n: {"Shards": {"0": {"NodeId": n, "State": "Running"}}} for n in names}})
    m = mount_factory(sim, "--poll-interval=0", "--max-reply=64M")
    t0 = time.monotonic()
    r = run(["ls", m.p("jobs", jid)], timeout=60)
    secs = time.monotonic() - t0
    c = run(["cat", m.p("jobs", jid, names[nodes // 2], "0", "state")], timeout=60)
    listed = [n for n in r.stdout.split() if n.startswith("QmBig")]
    note(f"[{nodes} nodes] first ls", f"{secs:.2f}s, rc {r.returncode}, {len(listed)} nodes "
         f"{r.stderr.strip()[-80:]!r}")
    if nodes <= 100000:
        assert r.returncode == 0, r.stderr
        assert listed == names
        assert c.returncode == 0 and c.stdout == "Running\n", c
        t0 = time.monotonic()
        assert run(["ls", m.p("jobs", jid)], timeout=60).returncode == 0
        note(f"[{nodes} nodes] warm ls", f"{time.monotonic() - t0:.3f}s")
    else:
        assert r.returncode != 0 and "Argument list too long" in r.stderr, r
        assert c.returncode != 0 and "Argument list too long" in c.stderr, c


MAX_STALE = 2.0
STALE_GRACE = 1.0        # s a reader waits for a refetch when it has data (man: CACHING)
PENDING_MS = 20000      # the refetch stays pending this long (--timeout is longer)
STALE_TTL = 0.2


@pytest.mark.parametrize("max_stale", [True, False], ids=["max-stale-2", "no-max-stale"])
def test_max_stale_holds_while_refetch_pending(sim, mount_factory, max_stale):
    """A live job's stdout is read, then its server stops answering (every
    states request delayed 20 s, --timeout=30, so the refetch stays pending
    rather than failing). With --max-stale=2 the old data is served while it
    is at most 2 s old, and then `cat` fails with ETIMEDOUT (by 3.5 s).
    Twin: without --max-stale the old data is still served well past 2 s,
    with user.jobfs.stale "refetch pending N s". Both: a `cat` waits 1 s at
    most for the pending refetch (man jobfs, CACHING: "the reader waits 1
    second at most for the new reply")."""
    m = mount_factory(sim, "--poll-interval=0", f"--ttl={STALE_TTL}", "--timeout=30",
                      *([f"--max-stale={MAX_STALE:g}"] if max_stale else []))
    node = next(iter(sim.job(RUNNING_JOB)["Nodes"]))
    f = m.p("jobs", RUNNING_JOB, node, "0", "stdout")
    old = read(f)
    assert old == b"step 1\n"
    fetched = time.monotonic()          # the fetch ended before this
    sim.fault("b", mode="delay", ms=PENDING_MS, paths=["/requester/states"])
    sim.append(RUNNING_JOB, node, "step 2\n")       # what the stuck server would say
    seen = []                           # (age when the cat ended, rc, out, err, secs, stale mark)
    limit = MAX_STALE + 2.5             # the reader's 1 s wait per access, and slack
    while time.monotonic() - fetched < limit:
        t = time.monotonic()
        c = run(["cat", f], text=False, timeout=40)
        mark = xattr(f, STALE) if c.returncode == 0 else None
        seen.append((time.monotonic() - fetched, c.returncode, c.stdout, c.stderr.decode(errors="replace"),
                     time.monotonic() - t, mark))
        if max_stale and c.returncode != 0:
            break
        time.sleep(0.1)
    for s in seen:
        note(f"[{'max-stale=2' if max_stale else 'no max-stale'}] cat at age {s[0]:.2f}s",
             f"rc {s[1]} in {s[4]:.2f}s, {s[2]!r} {s[3].strip()!r}, stale mark {s[5]!r}")
    ok = [s for s in seen if s[1] == 0]
    assert all(s[2] == old for s in ok), "data other than the old data while the server is stuck"
    if max_stale:
        fail = seen[-1]
        assert fail[1] != 0 and TIMEDOUT in fail[3], f"no ETIMEDOUT by age {fail[0]:.2f}s: {fail}"
        assert all(s[0] - s[4] <= MAX_STALE + 0.3 for s in ok), "old data served past --max-stale"
        assert fail[0] <= MAX_STALE + 1.5, f"ETIMEDOUT only at age {fail[0]:.2f}s"
    else:
        assert all(s[1] == 0 for s in seen), [s for s in seen if s[1] != 0][:1]
        assert seen[-1][0] > MAX_STALE + 1, "the twin did not read past the limit"
        marked = [s for s in ok if s[0] > 1.5]
        assert marked and all(s[5] and s[5].startswith("refetch pending") for s in marked), \
            "old data past the TTL without the stale mark"
    # man jobfs, CACHING: "the reader waits 1 second at most for the new reply"
    slow = [f"{s[4]:.2f}s" for s in seen if s[4] > STALE_GRACE + 0.5]
    assert not slow, f"a cat waited {', '.join(slow)} for a refetch pending on a stuck server"


@pytest.mark.parametrize("first", ["SIGUSR2", None], ids=["usr2-then-term", "term"])
def test_sigterm_unmounts(sim, mount_factory, first):
    """A stray SIGUSR2 (someone else's) leaves the mount working, and SIGTERM
    then unmounts: jobfs exits 0 and the mount is gone within 5 s. Twin:
    SIGTERM alone does the same."""
    m = mount_factory(sim, "--poll-interval=0.2")
    node = next(iter(sim.job(RUNNING_JOB)["Nodes"]))
    assert read(m.p("jobs", RUNNING_JOB, node, "0", "state")) == b"Running\n"
    if first:
        m.proc.send_signal(getattr(signal, first))
        wait_for(lambda: b"[cache]" in read(m.p(".jobfs", "status")), timeout=5, what="the mount to answer")
        assert m.alive() and is_mounted(m.path), f"{first} ended jobfs: {m.log()[-500:]}"
    t0 = time.monotonic()
    m.proc.send_signal(signal.SIGTERM)
    m.proc.wait(timeout=5)
    wait_for(lambda: not is_mounted(m.path), timeout=max(0.1, 5 - (time.monotonic() - t0)),
             what="the mount to go")
    note(f"[{first or 'SIGTERM'}] unmounted after SIGTERM", f"{time.monotonic() - t0:.2f}s")
    assert m.proc.returncode == 0, m.log()[-500:]


# --------------------------------------------------------------------------
# 6. a vanished node never comes back

HANDLE_NODES = 2000     # enough that one getdents call does not take them all
GONE = "QmZGone"        # sorts last: the half-consumed handle meets it after the removal


@pytest.mark.parametrize("listed_before", [True, False], ids=["ls-before", "no-ls-before"])
@pytest.mark.parametrize("removed", [True, False], ids=["node-removed", "node-kept"])
def test_vanished_node_not_listed_through_old_handle(sim_factory, mount_factory, watch_factory, removed,
                                                     listed_before):
    """Directory handles opened before a node vanished (an os.open'ed fd,
    listed afterwards, and an os.scandir iterator half consumed) are read
    after the node's IN_DELETE: the vanished name is not among their
    entries, and it is not stat-able for 1.5 s after (the old core handed
    it out again through READDIRPLUS, which re-created the dentry). Twin:
    the node is not removed (another node changes instead, so a refetch
    happens all the same): both handles list it and it is stat-able.
    Run with and without an `ls` of the job before the handles are opened:
    after one, the kernel serves the handles from its cached listing
    (cache_readdir, kept across opens while the names are the same)."""
    sim = sim_factory("--scenario", "empty")
    jid = job_id("da7a0007", 0)
    names = [f"QmHandle{j:05d}" for j in range(HANDLE_NODES)] + [GONE]
    sim.set_job(jid, job_state(names))
    m = mount_factory(sim, "--poll-interval=0.2", "--ttl=0.2")
    d = m.p("jobs", jid)
    gone = os.path.join(d, GONE)
    if listed_before:
        assert GONE in os.listdir(d)
    else:
        assert os.path.isdir(gone)
    w = watch_factory(d, events="delete,create")
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    it = os.scandir(d)
    try:
        first = next(it).name
        if removed:
            sim.set_shard(jid, GONE, {}, delete=True)
            w.wait_line(lambda l: l == f"DELETE,ISDIR {gone}", timeout=10, what="IN_DELETE of the node")
        else:
            sim.set_shard(jid, names[0], {}, delete=True)
            w.wait_line(lambda l: l == f"DELETE,ISDIR {os.path.join(d, names[0])}", timeout=10,
                        what="IN_DELETE of another node")
        t0 = time.monotonic()
        rest = [e.name for e in it]
        by_fd = os.listdir(fd)      # a dup of the handle, rewound: the same opendir
        note(f"[{'removed' if removed else 'kept'}, {'ls' if listed_before else 'no ls'} before] old handles read", f"scandir {1 + len(rest)} entries, "
             f"fd {len(by_fd)} entries, "
             f"{time.monotonic() - t0:.3f}s")
    finally:
        it.close()
        os.close(fd)
    assert len(rest) > 0
    statable = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:      # the old core's window: 1 to 1.5 s
        statable.append(os.path.exists(gone))
        time.sleep(0.05)
    if removed:
        wrong = [what for what, bad in [
            ("the half-consumed scandir listed it", GONE in rest or GONE == first),
            ("the old fd listed it", GONE in by_fd),
            (f"it was stat-able {sum(statable)} of {len(statable)} times in 1.5 s", any(statable)),
            ("a new listing shows it", GONE in os.listdir(d))] if bad]
        assert not wrong, "the vanished node: " + "; ".join(wrong)
        with pytest.raises(FileNotFoundError):
            os.stat(gone)
    else:
        assert GONE in rest and GONE in by_fd
        assert all(statable)


NODE_WATCH_JS = r"""
const fs = require('fs');
const w = fs.watch(process.argv[2], {recursive: true}, (type, name) => {
  process.stdout.write(JSON.stringify({type, name}) + '\n');
});
w.on('error', (e) => process.stdout.write(JSON.stringify({type: 'error', name: String(e)}) + '\n'));
// fs.watch has set its inotify watches by the time it returns
process.stdout.write('ready\n');
setTimeout(() => { w.close(); }, Number(process.argv[3]) * 1000);
"""

REMOVALS = 10


@pytest.mark.parametrize("notify", [True, False], ids=["notify", "no-notify"])
def test_node_recursive_fs_watch_sees_every_removal(sim_factory, mount_factory, tmp_path, notify):
    """Node's `fs.watch(dir, {recursive: true})` (v20: an inotify watch per
    file and directory, and a stat of the path after each event) on a job
    directory sees 10 of 10 node removals as 'rename' events (the old core:
    about one in three missed). Twin: with --no-notify it sees none, though
    the nodes are gone from `ls` all the same."""
    sim = sim_factory("--scenario", "empty")
    jid = job_id("d0de0008", 0)
    doomed = [f"QmGone{i:02d}" for i in range(REMOVALS)]
    sim.set_job(jid, job_state(doomed + ["QmStays"]))
    m = mount_factory(sim, "--poll-interval=0.2", "--ttl=0.2", *([] if notify else ["--no-notify"]))
    d = m.p("jobs", jid)
    assert set(doomed) <= set(os.listdir(d))
    script = tmp_path / "watch.js"
    script.write_text(NODE_WATCH_JS)
    out = tmp_path / "node-watch.out"
    with open(out, "w") as o:
        proc = subprocess.Popen(["node", str(script), d, "60"], stdout=o, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "ready" in out.read_text(), timeout=10, what="node's fs.watch")
        t0 = time.monotonic()
        for name in doomed:
            sim.set_shard(jid, name, {}, delete=True)
            wait_for(lambda: name not in os.listdir(d), timeout=10, what=f"{name} to go")
        if notify:
            wait_for(lambda: len(renamed(out, doomed)) == REMOVALS, timeout=5,
                     what="a 'rename' event for every removal")
        else:
            time.sleep(0.6)     # settle: a stray event would come by now
        seen = renamed(out, doomed)
        note(f"[{'notify' if notify else 'no-notify'}] node fs.watch removals seen",
             f"{len(seen)} of {REMOVALS} in {time.monotonic() - t0:.2f}s")
    finally:
        stop_process(proc)
    assert "error" not in out.read_text().split("ready", 1)[1]
    assert len(seen) == (REMOVALS if notify else 0), out.read_text()[-2000:]
    assert set(os.listdir(d)) & set(doomed) == set()


def renamed(out, names):
    """The names of `names` that got a 'rename' event after 'ready'."""
    text = out.read_text()
    if "ready" not in text:
        return set()
    seen = set()
    for line in text.split("ready", 1)[1].splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("type") == "rename" and ev.get("name") in names:
            seen.add(ev["name"])
    return seen


# --------------------------------------------------------------------------
# 7. a user's failed write

ALL_EVENTS = "access,modify,attrib,close_write,close_nowrite,open,create,delete,delete_self"


@pytest.mark.parametrize("who", ["user", "server"])
def test_user_write_fails(sim, mount_factory, watch_factory, who):
    """`echo x > state` by the mounting user (root here), default options
    (the kernel opens files by itself): `[ -w state ]` is false (access
    W_OK is EROFS), the open(O_WRONLY|O_CREAT|O_TRUNC) succeeds, the write
    fails with EROFS (bash: "write error: Read-only file system"; dash's echo
    says "I/O error" for any write error) and the content is unchanged.
    Measured on this core: a watcher of the file gets IN_OPEN, IN_MODIFY and
    IN_CLOSE_WRITE for that failed write (the open's O_TRUNC and the close of
    a file opened for writing), so the issue's "raises no event" does not
    hold; they are printed, not asserted. statvfs: no ST_RDONLY, size
    --cache-bytes (256 MiB). Twin: a change on the server raises IN_MODIFY
    on the same file and the new content is read."""
    m = mount_factory(sim, "--poll-interval=0.2")
    node = next(iter(sim.job(RUNNING_JOB)["Nodes"]))
    f = m.p("jobs", RUNNING_JOB, node, "0", "state")
    assert read(f) == b"Running\n"
    w = watch_factory(f, events=ALL_EVENTS)
    if who == "server":
        sim.set_shard(RUNNING_JOB, node, {"State": "Verifying"})
        w.wait_line(lambda l: l.startswith("MODIFY"), timeout=5, what="IN_MODIFY of the server's change")
        assert read(f) == b"Verifying\n"
        return
    t = run(["bash", "-c", f"[ -w '{f}' ]"])
    writable = os.access(f, os.W_OK)
    e = run(["bash", "-c", f"echo x > '{f}'"])
    time.sleep(0.6)     # settle: the window in which an event of the write would come
    events = [l.split()[0] for l in w.lines()]
    st = os.statvfs(m.path)
    note("[user] echo x > state", f"rc {e.returncode} {e.stderr.strip()[-60:]!r}; [ -w ] rc {t.returncode}; "
         f"events {events}; statvfs ST_RDONLY {bool(st.f_flag & os.ST_RDONLY)}, "
         f"size {st.f_blocks * st.f_frsize // MiB} MiB")
    assert t.returncode != 0 and not writable, "[ -w state ] is true"
    assert e.returncode != 0 and "Read-only file system" in e.stderr, e
    assert read(f) == b"Running\n"


@pytest.mark.parametrize("strict", [True, False], ids=["strict-writes", "kernel-opens"])
def test_strict_writes_refuse_at_open_without_events(sim, mount_factory, watch_factory, strict):
    """--strict-writes sends every open to jobfs, which refuses a write-open
    (EACCES): the shell cannot open, nothing is truncated, and a watcher sees
    no event at all. The twin, the default (the kernel opens files by itself,
    the fast path of BUGS in jobfs(1)), lets the open through and refuses the
    write: the watcher then sees IN_OPEN and IN_CLOSE_WRITE of that attempt."""
    m = mount_factory(sim, "--poll-interval=0", *(["--strict-writes"] if strict else []))
    node = next(iter(sim.job(RUNNING_JOB)["Nodes"]))
    f = m.p("jobs", RUNNING_JOB, node, "0", "state")
    assert read(f) == b"Running\n"
    w = watch_factory(f, events=ALL_EVENTS)
    e = run(["bash", "-c", f"echo x > '{f}'"])
    # reads after the attempt: they raise IN_OPEN/IN_ACCESS/IN_CLOSE_NOWRITE
    # of their own, so the check is on write events only
    time.sleep(0.6)     # settle: the window in which an event of the write would come
    events = [l.split()[0] for l in w.lines()]
    assert e.returncode != 0
    assert read(f) == b"Running\n"
    writes = [ev for ev in events if "MODIFY" in ev or "CLOSE_WRITE" in ev or ev == "OPEN"]
    if strict:
        assert "Permission denied" in e.stderr, e.stderr
        assert writes == [], events
    else:
        assert "Read-only file system" in e.stderr, e.stderr
        assert "CLOSE_WRITE,CLOSE" in events, events
