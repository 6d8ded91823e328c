"""Issue 10: every Bacalhau release from v0.3 to v1.9 mounts the same tree.

Each test mounts jobfs for real against `jobsim.py --bacalhau-version=V`
(tests/sim/SPEC-bacalhau-v1.md) and checks what the issue must show, for
each of the eight releases: the state of a completed, a failed and a
running job, stdout bytes, exitCode, a new job listed, ENOENT for an
unknown id, the detected version in .jobfs/status, auth with an API key,
basic auth and none, 401 as EACCES; then a watched v1 job's IN_MODIFY and
IN_CREATE with a --no-notify twin, and the request count of 200 watched
live v1 jobs. Ground truth is what the simulator holds (its control API),
not what jobfs printed before.
"""
import errno
import os
import subprocess
import time

import pytest

from conftest import read, stop_process, wait_for

VERSIONS = ("v0.3.16", "v0.3.24", "v1.0.4", "v1.3.2", "v1.5.1", "v1.5.2", "v1.7.0", "v1.9.3")
V1 = VERSIONS[2:]
JOBS = "/api/v1/orchestrator/jobs"
POLL = "--poll-interval=0.2"
USERS = ("--bacalhau-auth", "users", "--bacalhau-api-key", "k-secret-1",
         "--bacalhau-user", "ann:pw-secret")
ERA = {"v1.0.4": "A", "v1.3.2": "C", "v1.5.1": "E", "v1.5.2": "F", "v1.7.0": "G", "v1.9.3": "H"}


def is_v1(version):
    return version in V1


def has_users(version):
    return version in ("v1.7.0", "v1.9.3")


# The job summary per API: v1's Job.State, v0.3.24's E4 job State, v0.3.16's
# summary of its shards (E1 has no job-level state).
def want_states(version):
    if version == "v0.3.16":
        return {"completed": b"Completed\n", "failed": b"Error\n", "running": b"Running\n"}
    if version == "v0.3.24":
        return {"completed": b"Completed\n", "failed": b"Error\n", "running": b"InProgress\n"}
    return {"completed": b"Completed\n", "failed": b"Failed\n", "running": b"Running\n"}



def errno_of(path):
    """The errno of reading path, or 0."""
    try:
        read(path)
        return 0
    except OSError as err:
        return err.errno


# ---- the simulator's control API -----------------------------------------------

def seed(sim):
    return sim.b("GET", "/_sim/seed")


def view(sim, job):
    return sim.b("GET", f"/_sim/jobs/{job}")


def node_of(sim, job, n=0):
    """The node of the job's newest (n=0) execution, as the simulator holds it."""
    execs = sorted(view(sim, job)["executions"], key=lambda e: (e["create_ns"], e["id"]),
                   reverse=True)
    return execs[n]["node"]


def unknown_id(version):
    raw = "00000000-dead-4000-8000-000000000000"
    return "j-" + raw if is_v1(version) else raw


def status_text(m):
    return read(m.p(".jobfs", "status")).decode()


@pytest.fixture
def v_sim(sim_factory):
    def make(version, *args):
        return sim_factory("--scenario", "seed", "--bacalhau-version", version, *args)
    return make


# ---- reading: the same tree for every release ------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_reads(v_sim, mount_factory, version):
    sim = v_sim(version)
    jobs = seed(sim)
    m = mount_factory(sim, "--poll-interval=0")
    for role, want in want_states(version).items():
        assert read(m.p("jobs", jobs[role], "state")) == want, role
    done = m.p("jobs", jobs["completed"], node_of(sim, jobs["completed"]), "0")
    assert read(os.path.join(done, "stdout")) == b"Hello from a YAML spec!\n"
    assert read(os.path.join(done, "exitCode")) == b"0\n"
    exit1 = m.p("jobs", jobs["exit1"], node_of(sim, jobs["exit1"]), "0")
    assert read(os.path.join(exit1, "exitCode")) == b"1\n"
    assert read(os.path.join(exit1, "stderr")) == b"boom\n"
    assert errno_of(m.p("jobs", unknown_id(version), "state")) == errno.ENOENT
    # control twin of ENOENT: the known id reads
    assert errno_of(m.p("jobs", jobs["completed"], "state")) == 0
    listed = set(os.listdir(m.p("jobs")))
    assert set(jobs.values()) <= listed
    new = sim.b("POST", "/_sim/jobs", {"state": "Running"})["id"]
    assert new not in listed
    wait_for(lambda: new in os.listdir(m.p("jobs")), timeout=10, what="the new job listed")
    assert m.alive()


@pytest.mark.parametrize("version", V1)
def test_v1_files(v_sim, mount_factory, version):
    sim = v_sim(version)
    jobs = seed(sim)
    m = mount_factory(sim, "--poll-interval=0")
    job = m.p("jobs", jobs["completed"])
    assert read(os.path.join(job, "name")) == b"hello-bacalhau\n"
    assert read(os.path.join(job, "namespace")) == b"default\n"
    assert read(os.path.join(job, "type")) == b"batch\n"
    # 1740845480101000001 ns: through a double it would end in ...0999936
    assert read(os.path.join(job, "created")) == b"2025-03-01T16:11:20.101000001Z\n"
    history = read(os.path.join(job, "history")).decode().splitlines()
    assert len(history) == len(view(sim, jobs["completed"])["history"])
    assert all(line.count("\t") == 2 for line in history)
    if version >= "v1.3.1":
        assert history[0].split("\t")[1:] == ["Submission", "Job submitted"]
    node = node_of(sim, jobs["completed"])
    ex = os.path.join(job, node, "0")
    assert read(os.path.join(ex, "state")) == b"Completed\n"
    assert read(os.path.join(ex, "desired_state")) == b"Stopped\n"
    assert read(os.path.join(ex, "result_type")) == b"urlDownload\n"
    assert read(os.path.join(ex, "URL")).startswith(b"http://127.0.0.1:6001/e-")
    # a failed execution: the reason is in message and runnerError, no exit code
    failed = m.p("jobs", jobs["failed"], node_of(sim, jobs["failed"]), "0")
    assert read(os.path.join(failed, "state")) == b"Failed\n"
    assert b"executable file not found" in read(os.path.join(failed, "message"))
    assert b"executable file not found" in read(os.path.join(failed, "runnerError"))
    assert not os.path.exists(os.path.join(failed, "exitCode"))
    # a running one has no exit code either (v1.5.2+ sends 0 while it runs)
    running = m.p("jobs", jobs["running"], node_of(sim, jobs["running"]), "0")
    assert read(os.path.join(running, "state")) == b"BidAccepted\n"
    assert not os.path.exists(os.path.join(running, "exitCode"))
    # two executions on one node: 0 is the newer
    retried = m.p("jobs", jobs["retried"], node_of(sim, jobs["retried"]))
    assert sorted(os.listdir(retried)) == ["0", "1"]
    assert read(os.path.join(retried, "0", "stdout")) == b"second try\n"
    assert read(os.path.join(retried, "1", "state")) == b"Failed\n"
    assert read(os.path.join(retried, "0", "CID")) == b"QmTVmC7JBD2ES2qGPqBNVWnX1KeEPNrPGb7rJ8cpFgtefe\n"
    # read through the orchestrator API, never the legacy one
    paths = sim.stats()["by_path"]
    assert not [p for p in paths if "requester" in p], paths
    assert paths.get("/api/v1/agent/version") == 1


def test_short_id_reads_the_job(v_sim, mount_factory):
    sim = v_sim("v1.9.3")
    full = seed(sim)["completed"]
    m = mount_factory(sim, "--poll-interval=0")
    assert read(m.p("jobs", "j-1efa8fb5", "state")) == b"Completed\n"
    assert read(m.p("jobs", "hello-bacalhau", "name")) == b"hello-bacalhau\n"     # v1.8+: names
    # two jobs share this prefix: ambiguous is ENOENT; the full id reads
    for suffix in ("aaaa", "bbbb"):
        sim.b("POST", "/_sim/jobs", {"id": f"j-77777777-0000-4000-8000-00000000{suffix}"})
    assert errno_of(m.p("jobs", "j-7777", "state")) == errno.ENOENT
    assert errno_of(m.p("jobs", "j-77777777-0000-4000-8000-00000000aaaa", "state")) == 0
    assert full in os.listdir(m.p("jobs"))


def test_short_id_is_a_link_to_the_full_id(v_sim, mount_factory):
    """The core makes a name the server resolved a symlink (backend_item.name)."""
    sim = v_sim("v1.9.3")
    full = seed(sim)["completed"]
    m = mount_factory(sim, "--poll-interval=0")
    read(m.p("jobs", "j-1efa8fb5", "state"))
    assert os.path.islink(m.p("jobs", "j-1efa8fb5"))
    assert os.path.realpath(m.p("jobs", "j-1efa8fb5")) == m.p("jobs", full)


@pytest.mark.parametrize("version", VERSIONS)
def test_status_shows_the_detected_version(v_sim, mount_factory, version):
    sim = v_sim(version)
    m = mount_factory(sim, "--poll-interval=0")
    read(m.p("jobs", seed(sim)["completed"], "state"))
    text = status_text(m)
    if is_v1(version):
        assert f"api: v1 ({version}, era {ERA[version]})" in text, text
    else:
        assert f"api: v0 ({version}, era L)" in text, text
    assert "auth: none" in text


@pytest.mark.parametrize("forced, version, works", [
    ("v1", "v1.3.2", True), ("v0", "v1.3.2", True), ("v0", "v1.5.2", False), ("v0", "v0.3.24", True)])
def test_forced_api(v_sim, mount_factory, forced, version, works):
    sim = v_sim(version)
    job = seed(sim)["completed"]
    m = mount_factory(sim, "--poll-interval=0", f"--bacalhau-api={forced}")
    # v1.3.2 still serves the v0.3 states endpoint; v1.5.2 answers it 410 Gone
    assert errno_of(m.p("jobs", job, "state")) == (0 if works else errno.ENOENT)
    paths = sim.stats()["by_path"]
    assert ("/api/v1/agent/version" in paths) == (forced == "v1")
    if forced == "v0" and not works:
        assert "410 Gone" in m.log()


# ---- auth ------------------------------------------------------------------------

def mount_with(monkeypatch, mount_factory, sim, creds, *args):
    for var in ("BACALHAU_API_KEY", "BACALHAU_API_USERNAME", "BACALHAU_API_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    for var, value in creds.items():
        monkeypatch.setenv(var, value)
    return mount_factory(sim, "--poll-interval=0", *args)


CREDS = {"none": {}, "key": {"BACALHAU_API_KEY": "k-secret-1"},
         "basic": {"BACALHAU_API_USERNAME": "ann", "BACALHAU_API_PASSWORD": "pw-secret"},
         "wrong": {"BACALHAU_API_KEY": "k-wrong"}}


@pytest.mark.parametrize("mode", ["none", "key", "basic", "wrong"])
@pytest.mark.parametrize("version", VERSIONS)
def test_auth(v_sim, mount_factory, monkeypatch, version, mode):
    sim = v_sim(version, *(USERS if has_users(version) else ()))
    job = seed(sim)["completed"]
    m = mount_with(monkeypatch, mount_factory, sim, CREDS[mode])
    # releases before v1.7 ignore credentials; from v1.7 they must be right
    refused = has_users(version) and mode in ("none", "wrong")
    for _ in range(3):
        assert errno_of(m.p("jobs", job, "state")) == (errno.EACCES if refused else 0)
    if refused:
        assert m.log().count("refuses access") == 1, m.log()
    text = status_text(m)
    assert "k-secret-1" not in text and "pw-secret" not in text and "k-wrong" not in text
    assert "k-secret-1" not in m.log() and "pw-secret" not in m.log()
    assert "k-secret-1" not in " ".join(m.proc.args)     # never on the command line


@pytest.mark.parametrize("mode, kind", [("none", "none"), ("key", "api-key"), ("basic", "basic")])
def test_status_shows_the_kind_of_credentials(v_sim, mount_factory, monkeypatch, mode, kind):
    sim = v_sim("v1.9.3", *USERS)
    m = mount_with(monkeypatch, mount_factory, sim, CREDS[mode])
    read(m.p("jobs", seed(sim)["completed"], "state") if mode != "none" else m.p(".jobfs", "status"))
    text = status_text(m)
    assert f"auth: {kind}" in text, text
    assert "k-secret-1" not in text and "pw-secret" not in text


@pytest.mark.parametrize("version", VERSIONS)
def test_401_is_eacces(v_sim, mount_factory, version):
    sim = v_sim(version)
    jobs = seed(sim)
    m = mount_factory(sim, "--poll-interval=0")
    sim.fault(mode="status", status=401, paths=["/states", "/orchestrator/jobs/"])
    assert errno_of(m.p("jobs", jobs["completed"], "state")) == errno.EACCES
    # twin: the same job once the server lets us in
    sim.fault(mode="none")
    wait_for(lambda: errno_of(m.p("jobs", jobs["completed"], "state")) == 0, timeout=10,
             what="access once the 401s stop")


@pytest.mark.parametrize("poll", ["0.5", "0"], ids=["feed", "no-feed"])
def test_reads_past_the_ttl_ride_on_the_feed(v_sim, mount_factory, poll):
    """A live job read every 0.3 s for 4 s at --ttl=1 while the change feed is
    polled every 0.5 s: each listing that shows it unchanged counts as a fetch,
    so the reads cost the job no request after the first. Twin: no polling, no
    feed to vouch for it, and reads past the TTL fetch it again."""
    sim = v_sim("v1.9.3", "--scenario", "empty")
    jid = sim.b("POST", "/_sim/jobs", {"state": "Running"})["id"]
    m = mount_factory(sim, f"--poll-interval={poll}", "--ttl=1")
    f = m.p("jobs", jid, "state")
    assert read(f) == b"Running\n"
    time.sleep(1.0)                     # settle: the feed's first listings
    sim.reset()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 4.0:
        assert read(f) == b"Running\n"
        time.sleep(0.3)                 # the pace of a script's loop
    st = sim.stats()
    fetched = st["by_job"].get(jid, 0)
    print(f"\n--poll-interval={poll}: {fetched} job requests, {st['by_path'].get(JOBS, 0)} lists in 4 s")
    if poll == "0":
        assert fetched >= 3, st
    else:
        assert fetched == 0, st
        assert st["by_path"].get(JOBS, 0) >= 4, st


@pytest.mark.parametrize("events", [1200, 40], ids=["past-the-cap", "under-the-cap"])
def test_long_history_is_read_in_pages(v_sim, mount_factory, events):
    """From v1.5, include=history stops at 100 events: a job with 1,200 more
    is read through /history pages of 1,000, the second asked for with the
    first's next_token, and `history` has every event the server holds, in
    order. Twin: 40 events come whole with the job, with no /history request."""
    sim = v_sim("v1.9.3", "--scenario", "empty")
    jid = sim.b("POST", "/_sim/jobs", {"state": "Completed"})["id"]
    for i in range(events):
        sim.b("POST", f"/_sim/jobs/{jid}/history", {"topic": "Test", "message": f"event {i}"})
    held = len(view(sim, jid)["history"])
    sim.reset()
    m = mount_factory(sim, "--poll-interval=0")
    lines = read(m.p("jobs", jid, "history")).decode().splitlines()
    pages = sim.stats()["by_path"].get(f"{JOBS}/{jid}/history", 0)
    print(f"\n{held} events: {len(lines)} lines, {pages} /history requests")
    assert len(lines) == held
    assert [l.split("\t")[2] for l in lines if "\tTest\t" in l] == [f"event {i}" for i in range(events)]
    if events > 1000:
        assert pages == 2, sim.stats()["by_path"]
    else:
        assert pages == 0, sim.stats()["by_path"]


@pytest.mark.parametrize("version", ["v1.3.2", "v1.5.2"])
def test_token_file_for_a_guarded_list(v_sim, mount_factory, monkeypatch, tmp_path, version):
    sim = v_sim(version, "--bacalhau-auth", "ns-anon", "--bacalhau-token", "t-secret-9")
    jobs = seed(sim)
    token = tmp_path / "token"
    token.write_text("t-secret-9\n")
    token.chmod(0o600)
    m = mount_with(monkeypatch, mount_factory, sim, {}, f"--bacalhau-token-file={token}")
    wait_for(lambda: set(jobs.values()) <= set(os.listdir(m.p("jobs"))), timeout=10,
             what="the guarded list")
    assert "t-secret-9" not in status_text(m)
    # twin: anonymous, the list is refused (403) but a job by its path reads
    anon = mount_with(monkeypatch, mount_factory, sim, {})
    assert read(anon.p("jobs", jobs["completed"], "state")) == b"Completed\n"
    assert jobs["running"] not in os.listdir(anon.p("jobs"))


def test_token_file_open_to_others_is_refused(v_sim, mount_factory, tmp_path):
    sim = v_sim("v1.9.3")
    token = tmp_path / "token"
    token.write_text("t-secret-9\n")
    token.chmod(0o644)
    with pytest.raises(AssertionError, match="exited with 1"):
        mount_factory(sim, f"--bacalhau-token-file={token}", name="refused")
    log = (tmp_path / "refused-jobfs.log").read_text()
    assert "chmod 600" in log and "t-secret-9" not in log
    # twin: 0600 mounts
    token.chmod(0o600)
    m = mount_factory(sim, f"--bacalhau-token-file={token}", "--poll-interval=0")
    assert m.alive()


# ---- outage: detection again when the server is back --------------------------------

def test_detection_is_redone_after_an_outage(sim_factory, mount_factory):
    old = sim_factory("--scenario", "seed", "--bacalhau-version", "v1.3.2")
    job = seed(old)["running"]
    m = mount_factory(old, "--poll-interval=0", "--ttl=0")
    assert read(m.p("jobs", job, "state")) == b"Running\n"
    bport, mport = old.bport, old.mport
    old.close()
    old.ports_file.unlink()     # the next simulator writes its own
    wait_for(lambda: errno_of(m.p("jobs", job, "state")) in (0, errno.ECONNREFUSED), timeout=10,
             what="the outage")
    # the server comes back upgraded: same port, another release
    new = sim_factory("--scenario", "seed", "--bacalhau-version", "v1.9.3",
                      "--bacalhau-port", str(bport), "--muse-port", str(mport))
    new.b("POST", f"/_sim/jobs/{job}/executions/{view(new, job)['executions'][0]['id']}",
          {"state": "Running"})
    node = node_of(new, job)
    wait_for(lambda: errno_of(m.p("jobs", job, node, "0", "state")) == 0 and
             read(m.p("jobs", job, node, "0", "state")) == b"Running\n", timeout=15,
             what="the new numbering (6 = Running) read after the outage")
    assert new.stats()["by_path"].get("/api/v1/agent/version") == 1


# ---- change notification ------------------------------------------------------------

@pytest.mark.parametrize("notify", [True, False], ids=["notify", "no-notify"])
@pytest.mark.parametrize("version", ["v1.0.4", "v1.9.3"])
def test_watched_v1_job_state_change(v_sim, mount_factory, watch_factory, version, notify):
    sim = v_sim(version)
    job = seed(sim)["running"]
    m = mount_factory(sim, POLL, *([] if notify else ["--no-notify"]))
    node = node_of(sim, job)
    f = m.p("jobs", job, node, "0", "state")
    assert read(f) == b"BidAccepted\n"
    w = watch_factory(f, events="modify,close_write")
    eid = view(sim, job)["executions"][0]["id"]
    sim.b("POST", f"/_sim/jobs/{job}/executions/{eid}", {"state": "Completed", "stdout": "done\n",
                                                         "exit_code": 0})
    wait_for(lambda: read(f) == b"Completed\n", timeout=5, what="the new state")
    if notify:
        w.wait_line(lambda l: l.startswith("MODIFY"), what="IN_MODIFY")
    else:
        time.sleep(0.6)     # a stray event's time to arrive, after the change was seen
        assert w.lines() == []


@pytest.mark.parametrize("notify", [True, False], ids=["notify", "no-notify"])
def test_watched_v1_job_new_execution(v_sim, mount_factory, watch_factory, notify):
    sim = v_sim("v1.9.3")
    job = seed(sim)["running"]
    m = mount_factory(sim, POLL, *([] if notify else ["--no-notify"]))
    d = m.p("jobs", job)
    before = os.listdir(d)
    w = watch_factory(d, events="create,delete")
    sim.b("POST", f"/_sim/jobs/{job}/executions", {"node": "n-newcomer", "state": "AskForBid"})
    assert "n-newcomer" not in before
    wait_for(lambda: "n-newcomer" in os.listdir(d), timeout=5, what="the new execution's node")
    if notify:
        w.wait_line(lambda l: l == f"CREATE,ISDIR {d}/n-newcomer", what="IN_CREATE")
    else:
        time.sleep(0.6)
        assert w.lines() == []


def test_200_watched_live_jobs_cost_one_list_per_poll(v_sim, mount_factory, tmp_path):
    """The change feed: per poll interval one list request, and one request per
    job that changed; the 197 that did not change cost nothing."""
    interval = 0.5
    sim = v_sim("v1.9.3", "--scenario", "empty")
    ids = sim.b("POST", "/_sim/bulk", {"count": 200, "state": "Running"})["ids"]
    m = mount_factory(sim, f"--poll-interval={interval}", "--ttl=60")
    wait_for(lambda: set(ids) <= set(os.listdir(m.p("jobs"))), timeout=20, what="200 jobs listed")
    files = [m.p("jobs", j, "state") for j in ids]
    for f in files:
        assert read(f) == b"Running\n"
    out = open(tmp_path / "w200.out", "w")
    err = open(tmp_path / "w200.err", "w")
    watcher = subprocess.Popen(["inotifywait", "-m", "-e", "modify", "--format", "%w", *files],
                               stdout=out, stderr=err)
    try:
        wait_for(lambda: "Watches established" in (tmp_path / "w200.err").read_text(), timeout=20,
                 what="200 watches")
        time.sleep(2 * interval)        # let polling settle before counting
        sim.reset()
        t0 = time.monotonic()
        changed = ids[:3]
        for j in changed:
            sim.b("POST", f"/_sim/jobs/{j}", {"state": "Completed"})
        wait_for(lambda: all(f"{m.p('jobs', j, 'state')}" in (tmp_path / "w200.out").read_text()
                             for j in changed), timeout=10, what="IN_MODIFY on the 3 changed jobs")
        time.sleep(max(0.0, 5.0 - (time.monotonic() - t0)))    # a 5 s window
        window = time.monotonic() - t0
        st = sim.stats()
    finally:
        stop_process(watcher)
        out.close()
        err.close()
    lists = st["by_path"].get(JOBS, 0)
    per_job = {j: st["by_job"].get(j, 0) for j in ids}
    polls = window / interval
    print(f"\n200 watched live jobs, {window:.1f} s at {interval} s: {st['requests']} requests, "
          f"{lists} lists, changed {[per_job[j] for j in changed]}, "
          f"unchanged {sum(per_job[j] for j in ids[3:])}")
    assert lists <= polls + 2, st
    assert all(1 <= per_job[j] <= 2 for j in changed), per_job
    assert sum(per_job[j] for j in ids[3:]) == 0, "unchanged jobs were fetched"
    assert st["requests"] <= lists + 6, st
