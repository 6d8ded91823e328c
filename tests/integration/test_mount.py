"""Issue 3: both APIs mounted as lazily fetched, cached, read-only files.

Every expectation is computed from the simulator's ground truth (its control
API), not from what jobfs printed before.
"""
import concurrent.futures
import os
import stat
import time

import pytest

from conftest import RUNNING_JOB, RUN_NOK, RUN_OK, RUN_WAIT, SEED_JOB, read, run, wait_for

SHARD_TEXT = {"State": "state", "Status": "status", "VerificationProposal": "VerificationProposal"}
RUN_TEXT = {"exitCode": "exitCode", "runnerError": "runnerError",
            "stdouttruncated": "stdouttruncated", "stderrtruncated": "stderrtruncated"}
PUBLISHED = ["StorageSource", "Name", "CID", "URL", "SourcePath", "path"]


def text_of(v):
    """The file content jobfs promises for a JSON scalar."""
    if isinstance(v, bool):
        v = "true" if v else "false"
    v = str(v)
    return (v + "\n").encode() if v else b""


def expected_shard_files(shard):
    """File name -> bytes for one shard, from the server's JSON."""
    files = {}
    for key, name in SHARD_TEXT.items():
        if key in shard:
            files[name] = text_of(shard[key])
    ro = shard.get("RunOutput") or {}
    for key in ("stdout", "stderr"):
        if key in ro:
            files[key] = ro[key].encode()
    for key, name in RUN_TEXT.items():
        if key in ro:
            files[name] = text_of(ro[key])
    for key in PUBLISHED:
        if key in (shard.get("PublishedResults") or {}):
            files[key] = text_of(shard["PublishedResults"][key])
    for key in ("Complete", "Result"):
        if key in (shard.get("VerificationResult") or {}):
            files[key] = text_of(shard["VerificationResult"][key])
    return files



def test_seed_job_every_file_matches_server(sim, mnt):
    truth = sim.job(SEED_JOB)
    job = mnt.p("jobs", SEED_JOB)
    nodes = sorted(truth["Nodes"])
    assert len(nodes) == 3
    ls = run(["ls", "-A", job], check=True).stdout.split()
    assert sorted(ls) == sorted(nodes + ["state", "state.json"])
    for node in nodes:
        for idx, shard in truth["Nodes"][node]["Shards"].items():
            d = os.path.join(job, node, idx)
            want = expected_shard_files(shard)
            assert sorted(os.listdir(d)) == sorted(want), f"files of {node}/{idx}"
            for name, content in want.items():
                got = run(["cat", os.path.join(d, name)], check=True, text=False).stdout
                assert got == content, f"{node}/{idx}/{name}"
                assert os.stat(os.path.join(d, name)).st_size == len(content)
    # the seed: one Completed shard with its outputs, two Cancelled without
    states = sorted(read(os.path.join(job, n, "0", "state")) for n in nodes)
    assert states == [b"Cancelled\n", b"Cancelled\n", b"Completed\n"]
    done = [n for n in nodes if truth["Nodes"][n]["Shards"]["0"]["State"] == "Completed"][0]
    assert read(os.path.join(job, done, "0", "stdout")) == b"Thu Nov 17 13:32:55 UTC 2022\n"
    assert read(os.path.join(job, done, "0", "exitCode")) == b"0\n"
    assert read(os.path.join(job, done, "0", "CID")) == b"QmTVmC7JBD2ES2qGPqBNVWnX1KeEPNrPGb7rJ8cpFgtefe\n"
    cancelled = [n for n in nodes if n != done][0]
    assert not os.path.exists(os.path.join(job, cancelled, "0", "stdout")), "absent field = absent file"
    assert read(os.path.join(job, "state")) == b"Completed\n"


def test_state_json_is_the_reply_as_received(sim, mnt):
    import http.client, json
    c = http.client.HTTPConnection("127.0.0.1", sim.bport, timeout=10)
    c.request("POST", "/requester/states", body=json.dumps({"client_id": "", "job_id": SEED_JOB}))
    body = c.getresponse().read()
    c.close()
    assert read(mnt.p("jobs", SEED_JOB, "state.json")) == body


def test_running_job_summary_and_stdout(sim, mnt):
    assert read(mnt.p("jobs", RUNNING_JOB, "state")) == b"Running\n"
    node = list(sim.job(RUNNING_JOB)["Nodes"])[0]
    assert read(mnt.p("jobs", RUNNING_JOB, node, "0", "stdout")) == \
        sim.job(RUNNING_JOB)["Nodes"][node]["Shards"]["0"]["RunOutput"]["stdout"].encode()


def run_truth(sim, key):
    """The state reply of a muse run, straight from the server."""
    import json, urllib.request
    with urllib.request.urlopen(f"{sim.muse_url}software/muse/state/sw_example/{key}/", timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("key,cr,final", [(RUN_OK, "OK", True), (RUN_WAIT, "WAIT", False),
                                          (RUN_NOK, "NOK", True)])
def test_muse_run_files(sim, mnt, key, cr, final):
    truth = run_truth(sim, key)
    rep = truth["info"]["report"]
    d = mnt.p("software", "sw_example", key)
    assert read(os.path.join(d, "cr")) == f"{cr}\n".encode()
    assert read(os.path.join(d, "state")) == text_of(rep["process"]["latest_cr"])
    assert read(os.path.join(d, "slurm_state")) == text_of(rep["process"]["latest_state"])
    assert read(os.path.join(d, "job_id")) == text_of(rep["process"]["job_id"])
    assert read(os.path.join(d, "jobname")) == text_of(rep["process"]["jobname"])
    assert read(os.path.join(d, "name")) == b"sw_example\n"
    assert read(os.path.join(d, "msg")) == text_of(truth["msg"])
    assert read(os.path.join(d, "url")) == text_of(truth["url"])
    has_stdout = os.path.exists(os.path.join(d, "stdout"))
    assert has_stdout == (cr == "OK"), "stdout exists exactly once the run is OK"
    if cr == "OK":
        assert read(os.path.join(d, "stdout")) == b"9.0\n"


def test_muse_stdout_fetched_only_when_ok(sim, mnt):
    sim.reset("m")
    read(mnt.p("software", "sw_example", RUN_WAIT, "cr"))
    assert not any("/run/" in p for p in sim.stats("m")["by_path"]), "GET run before cr OK"
    read(mnt.p("software", "sw_example", RUN_OK, "stdout"))
    assert any("/run/" in p for p in sim.stats("m")["by_path"])


def test_unknown_ids_are_enoent(mnt):
    for path in [("jobs", "no-such-job", "state"), ("jobs", "no-such-job"),
                 ("software", "sw_example", "00000000-dead-4bee-8000-000000000000", "cr"),
                 ("software", "no_such_software"),
                 ("software", "no_such_software", RUN_OK, "cr")]:
        r = run(["cat", mnt.p(*path)])
        assert r.returncode != 0
        assert "No such file or directory" in r.stderr, (path, r.stderr)
    # the control twin: a known id is there
    assert run(["cat", mnt.p("jobs", SEED_JOB, "state")]).returncode == 0


def test_e1_fallback_to_legacy_states_path(sim_factory, mount_factory):
    sim = sim_factory("--scenario", "seed", "--bacalhau-era", "e1")
    m = mount_factory(sim, "--poll-interval=0")
    assert read(m.p("jobs", SEED_JOB, "state")) == b"Completed\n"
    read(m.p("jobs", RUNNING_JOB, "state"))
    by_path = sim.stats()["by_path"]
    assert by_path.get("/requester/states") == 1, "tried the v0.3.17+ path once, then remembered"
    assert by_path.get("/states") == 2


def test_e2_server_never_sees_legacy_path(sim, mnt):
    read(mnt.p("jobs", SEED_JOB, "state"))
    assert "/states" not in sim.stats()["by_path"]


def test_ls_jobs_merges_list_and_opened(sim, mnt):
    other = "c0ffee00-0000-4000-8000-000000000003"
    sim.set_job(other, {"Nodes": {}}, client_id="someone-else")
    # opened by path before any listing, with a client id the list filter drops
    assert os.path.isdir(mnt.p("jobs", other))
    names = set(run(["ls", mnt.p("jobs")], check=True).stdout.split())
    assert {SEED_JOB, RUNNING_JOB, other} <= names


def test_ls_software_from_list(sim, mnt):
    names = run(["ls", mnt.p("software")], check=True).stdout.split()
    assert names == ["sw_example", "sw_other"]
    sim.set_run("sw_example", RUN_OK)  # no-op merge keeps it
    assert RUN_WAIT not in run(["ls", mnt.p("software", "sw_example")]).stdout
    read(mnt.p("software", "sw_example", RUN_WAIT, "cr"))
    assert RUN_WAIT in run(["ls", mnt.p("software", "sw_example")]).stdout.split()


def test_grep_and_find_over_the_tree(sim, mnt):
    read(mnt.p("jobs", SEED_JOB, "state"))
    read(mnt.p("jobs", RUNNING_JOB, "state"))
    r = run(["grep", "-r", "-l", "-x", "Completed", mnt.p("jobs")], check=True)
    hits = sorted(os.path.relpath(p, mnt.p("jobs")) for p in r.stdout.split())
    truth = sim.job(SEED_JOB)["Nodes"]
    done = [n for n in truth if truth[n]["Shards"]["0"]["State"] == "Completed"]
    assert hits == sorted([f"{SEED_JOB}/state"] + [f"{SEED_JOB}/{n}/0/state" for n in done])
    r = run(["find", mnt.p("jobs"), "-name", "CID", "-type", "f"], check=True)
    assert [os.path.relpath(p, mnt.p("jobs")) for p in r.stdout.split()] == [f"{SEED_JOB}/{done[0]}/0/CID"]
    r = run(["find", mnt.p("software", "sw_example"), "-name", "cr"], check=True)
    assert r.stdout == ""  # nothing opened yet under software/sw_example
    read(mnt.p("software", "sw_example", RUN_OK, "cr"))
    r = run(["grep", "-r", "9.0", mnt.p("software")], check=True)
    assert f"{RUN_OK}/stdout:9.0" in r.stdout


def test_change_visible_after_ttl_not_before(sim, mount_factory):
    m = mount_factory(sim, "--poll-interval=0", "--ttl=2")
    node = list(sim.job(RUNNING_JOB)["Nodes"])[0]
    f = m.p("jobs", RUNNING_JOB, node, "0", "state")
    assert read(f) == b"Running\n"
    t0 = time.monotonic()
    sim.set_shard(RUNNING_JOB, node, {"State": "Completed"})
    # control twin: within the TTL the old value is still served
    assert read(f) == b"Running\n"
    assert time.monotonic() - t0 < 1.5, "the machine was too slow to check 'before the TTL'"
    wait_for(lambda: read(f) == b"Completed\n", timeout=6, what="the new state after the TTL")
    assert time.monotonic() - t0 >= 1.9
    assert read(m.p("jobs", RUNNING_JOB, "state")) == b"Completed\n"


def test_parallel_readers_share_one_request(sim, mnt):
    job = "d00d0000-0000-4000-8000-000000000004"
    sim.set_job(job, {"Nodes": {"QmPar": {"Shards": {"0": {"NodeId": "QmPar", "State": "Running"}}}}})
    sim.fault(mode="delay", ms=300, paths=["states"])
    sim.reset()
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        outs = list(ex.map(lambda _: run(["cat", mnt.p("jobs", job, "state")]).stdout, range(16)))
    assert outs == ["Running\n"] * 16
    assert sim.stats()["by_job"].get(job) == 1


def test_terminal_job_not_refetched(sim, mount_factory):
    m = mount_factory(sim, "--poll-interval=0", "--ttl=0.2")
    read(m.p("jobs", SEED_JOB, "state"))
    sim.reset()
    for _ in range(5):
        time.sleep(0.25)
        read(m.p("jobs", SEED_JOB, "state"))
        run(["ls", "-lR", m.p("jobs", SEED_JOB)], check=True)
    assert sim.stats()["by_job"].get(SEED_JOB, 0) == 0
    # control twin: a live job is refetched once its TTL passed
    read(m.p("jobs", RUNNING_JOB, "state"))
    time.sleep(0.3)
    read(m.p("jobs", RUNNING_JOB, "state"))
    assert sim.stats()["by_job"].get(RUNNING_JOB, 0) == 2


def test_metadata_is_truthful(sim, mnt):
    f = mnt.p("jobs", SEED_JOB, "state")
    st = os.stat(f)
    assert stat.S_IMODE(st.st_mode) == 0o444 and stat.S_ISREG(st.st_mode)
    assert st.st_size == len(b"Completed\n")
    assert st.st_uid == os.getuid() and st.st_gid == os.getgid()
    d = os.stat(mnt.p("jobs", SEED_JOB))
    assert stat.S_IMODE(d.st_mode) == 0o555 and stat.S_ISDIR(d.st_mode)
    assert abs(st.st_mtime - time.time()) < 60
    # inode numbers are stable for a path while mounted
    ino = st.st_ino
    run(["ls", "-R", mnt.p("jobs")], check=True)
    assert os.stat(f).st_ino == ino
    inos = {os.stat(mnt.p("jobs", SEED_JOB, n)).st_ino for n in os.listdir(mnt.p("jobs", SEED_JOB))}
    assert len(inos) == len(os.listdir(mnt.p("jobs", SEED_JOB)))


def test_mtime_is_when_value_was_first_seen(sim, mount_factory):
    m = mount_factory(sim, "--poll-interval=0", "--ttl=0.2")
    node = list(sim.job(RUNNING_JOB)["Nodes"])[0]
    state = m.p("jobs", RUNNING_JOB, node, "0", "state")
    stdout = m.p("jobs", RUNNING_JOB, node, "0", "stdout")
    t_state = os.stat(state).st_mtime
    time.sleep(0.5)
    sim.append(RUNNING_JOB, node, "step 2\n")
    wait_for(lambda: read(stdout).endswith(b"step 2\n"), timeout=5, what="new stdout")
    assert os.stat(stdout).st_mtime > t_state
    assert os.stat(state).st_mtime == t_state, "an unchanged value keeps its mtime"
    r = run(["find", m.p("jobs", RUNNING_JOB), "-type", "f", "-newer", state], check=True)
    # the reply changed, so state.json did too; nothing else did
    assert sorted(r.stdout.split()) == sorted([stdout, m.p("jobs", RUNNING_JOB, "state.json")])


def test_writes_are_refused(sim, mnt):
    f = mnt.p("jobs", SEED_JOB, "state")
    read(f)
    # with kernel-side opens (FUSE_CAP_NO_OPEN_SUPPORT) a write is refused at
    # write time (EROFS), else at open (EACCES)
    denied = ("Permission denied", "Read-only file system")
    cases = [
        (["bash", "-c", f"echo x >> '{f}'"], denied),
        (["truncate", "-s0", f], denied),
        (["touch", f], None),
        (["mkdir", mnt.p("jobs", SEED_JOB, "x")], ("Read-only file system",)),
        (["rm", "-f", f], ("Read-only file system",)),
        (["mv", f, mnt.p("jobs", SEED_JOB, "y")], ("Read-only file system",)),
        (["chmod", "644", f], ("Read-only file system",)),
        (["bash", "-c", f"echo x > '{mnt.p('jobs', SEED_JOB, 'new')}'"], denied),
        (["ln", "-s", "x", mnt.p("jobs", "lnk")], ("Read-only file system",)),
    ]
    for cmd, msgs in cases:
        r = run(cmd)
        assert r.returncode != 0, cmd
        if msgs:
            assert any(m in r.stderr for m in msgs), (cmd, r.stderr)
    assert read(f) == b"Completed\n"


def test_hostile_names_never_become_entries(sim, mnt):
    job = "bad00000-0000-4000-8000-000000000005"
    shard = {"Shards": {"0": {"State": "Running"}}}
    sim.set_job(job, {"Nodes": {"..": shard, ".": shard, "a/b": shard, "": shard,
                                "x" * 300: shard, "ok-node": shard}})
    names = os.listdir(mnt.p("jobs", job))
    assert sorted(names) == ["ok-node", "state", "state.json"]
    assert mnt.alive()


def test_bad_command_lines_exit_2(tmp_path):
    from conftest import JOBFS_BIN
    d = tmp_path / "m"
    d.mkdir()
    for args in (["--bacalhau-url=ftp://x"], ["--ttl=-1"], ["--nope"], [], ["--timeout=0"]):
        r = run([JOBFS_BIN, *args, *([str(d)] if args else [])])
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    with open("/proc/mounts") as f:
        assert str(d) not in f.read()


def test_server_down_gives_clear_error_fast(tmp_path, mount_factory):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now

    class Nowhere:
        bacalhau_url = f"http://127.0.0.1:{port}"
        muse_url = f"http://127.0.0.1:{port}/api/"
    m = mount_factory(Nowhere, "--poll-interval=0", "--timeout=3")
    t0 = time.monotonic()
    r = run(["cat", m.p("jobs", "some-job", "state")])
    assert r.returncode != 0 and "Connection refused" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 3
    r = run(["ls", m.p("software")])
    assert r.returncode != 0 and "Connection refused" in r.stderr
    assert run(["ls", m.p("jobs")]).returncode == 0, "jobs/ still lists what is known"
    assert m.alive()


@pytest.mark.parametrize("cache_max", [50, 1000])
def test_cache_max_bounds_cached_jobs_even_while_held(sim_factory, mount_factory, cache_max):
    """--cache-max holds whatever the kernel holds: a sweep keeps every job it
    walked in the kernel's caches, and jobfs drops the contents past the cap
    (refetched when read again). The twin, with room for all, drops nothing."""
    if os.geteuid() != 0:
        pytest.skip("dropping the kernel's page cache needs root")
    sim = sim_factory("--scenario", "empty", "--bulk-jobs", "300", "--client-id", "bulk")
    m = mount_factory(sim, "--poll-interval=0", f"--cache-max={cache_max}", "--client-id=bulk")

    def cached():
        with open(m.p(".jobfs", "status")) as f:
            return int([l for l in f.read().splitlines() if l.startswith("cached:")][0].split()[1])
    r = run(["grep", "-r", "-l", "-x", "Completed", m.p("jobs")], check=True)
    assert len(r.stdout.split()) == 600          # job state + shard state, 300 jobs
    if cache_max == 50:
        assert cached() <= 50, "held jobs past --cache-max keep their contents"
    else:
        assert cached() == 300
    # the kernel forgets its copies too; a job read again is refetched only
    # if jobfs dropped it
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    sim.reset()
    assert read(m.p("jobs", "00000000-0000-4000-8000-000000000007", "state")) == b"Completed\n"
    assert sim.stats()["by_job"].get("00000000-0000-4000-8000-000000000007", 0) == \
        (1 if cache_max == 50 else 0)
    assert len(os.listdir(m.p("jobs"))) == 300


def status_value(m, key):
    with open(m.p(".jobfs", "status")) as f:
        return int([l for l in f.read().splitlines() if l.startswith(key + ":")][0].split()[1])


def test_unknown_names_leave_nothing_behind(sim, mnt):
    units = status_value(mnt, "units")
    for i in range(300):
        assert run(["stat", mnt.p("jobs", f"no-such-job-{i}")]).returncode != 0
    assert status_value(mnt, "units") == units, "a unit kept per unknown name"
    # control twin: a real job opened by path does get its unit
    read(mnt.p("jobs", SEED_JOB, "state"))
    assert status_value(mnt, "units") == units + 1


def test_big_software_list_does_not_stall_the_mount(sim, mnt):
    base = [f"sw{i:06d}" for i in range(50000)]
    names = base + ["sw_example"]
    sim.m("POST", "/_sim/software", {"names": names})
    t0 = time.monotonic()
    assert len(os.listdir(mnt.p("software"))) == len(names)
    took = time.monotonic() - t0
    # the list is replaced: every old name checked against the new one, linearly
    sim.m("POST", "/_sim/software", {"names": base[::2] + ["sw_example"]})
    time.sleep(1.1)     # past the TTL: the next listing refreshes (in the background)
    os.listdir(mnt.p("software"))
    # while the new list is merged, the mount keeps answering
    worst, deadline = 0.0, time.monotonic() + 3
    while time.monotonic() < deadline:
        t1 = time.monotonic()
        read(mnt.p(".jobfs", "status"))
        worst = max(worst, time.monotonic() - t1)
        time.sleep(0.01)
    assert worst < 0.5, f"the mount stalled {worst:.2f}s behind a listing"
    wait_for(lambda: len(os.listdir(mnt.p("software"))) == len(base[::2]) + 1, timeout=10,
             what="the shorter list")
    assert took < 10, f"listing 50,001 names took {took:.1f}s"


@pytest.mark.parametrize("with_slurm", [True, False], ids=["slurm", "no-slurm"])
def test_muse_run_links_to_its_slurm_job(sim, mount_factory, monkeypatch, with_slurm):
    """With a SLURM endpoint mounted, a muse run's directory has `slurm`, a
    symlink to the SLURM job that runs it (process.job_id); without, none."""
    import socket
    args = ["--poll-interval=0"]
    if with_slurm:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()       # nothing listens: the link is made from the muse reply alone
        monkeypatch.setenv("SLURM_JWT", "not-a-real-token")
        args.append(f"--slurm-url=http://127.0.0.1:{port}")
    m = mount_factory(sim, *args)
    link = m.p("software", "sw_example", RUN_OK, "slurm")
    if with_slurm:
        assert os.readlink(link) == "../../../slurm/2459394"
        assert os.path.islink(link)
    else:
        assert not os.path.lexists(link)
    assert read(m.p("software", "sw_example", RUN_OK, "job_id")) == b"2459394\n"
