"""Issue 11: SLURM jobs as files, against a real slurmctld + slurmrestd.

A session fixture (conftest.py, slurmcluster.py) brings up a one-node cluster with
tests/slurm/cluster.sh (Debian 12's packages, installed if missing; root
needed) in a state directory of its own, and always takes it down again.
The tests submit real jobs with sbatch and look at them through the mount
with cat, grep -r, find, inotifywait and tail -f. Ground truth is what the
cluster says (GET /slurm/v0.0.38/job/ID, squeue) and the output files
slurmstepd wrote, never what jobfs printed before. Every test cancels the
jobs it submitted. The cluster's MinJobAge is 30 s, so that a finished job
leaving slurm/ can be seen without waiting 5 minutes; a test reads its own
jobs well within that.
"""
import errno
import json
import os
import re
import subprocess
import time

import pytest

from conftest import JOBFS_BIN, is_mounted, read, run, stop_process, wait_for
from slurmcluster import JOB_DONE, MIN_JOB_AGE

POLL = "--poll-interval=0.5"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
         "PREEMPTED", "BOOT_FAIL", "DEADLINE"}



@pytest.fixture
def jobs(cluster):
    """Ids this test submitted; all cancelled at the end, whatever happened."""
    ids = []
    yield ids
    cluster.scancel(*ids)


DEBUG_ARGS = os.environ.get("JOBFS_TEST_ARGS", "").split()    # e.g. -d, to debug a test


@pytest.fixture
def smount(cluster, mount_factory, monkeypatch):
    """Mounts jobfs on the cluster with its token in SLURM_JWT (the only way
    a token reaches jobfs besides a token file; token=False: none there)."""
    def make(*args, token=None):
        if token is False:
            monkeypatch.delenv("SLURM_JWT", raising=False)
        else:
            monkeypatch.setenv("SLURM_JWT", cluster.token if token is None else token)
        return mount_factory(None, f"--slurm-url={cluster.url}", POLL, *args, *DEBUG_ARGS)
    return make



def text(path):
    """A file's content, or None when it cannot be read (absent, or an error)."""
    try:
        return read(path).decode()
    except OSError:
        return None


def errno_of(path):
    try:
        read(path)
    except OSError as e:
        return e.errno
    return 0


def wait_text(path, want, timeout=JOB_DONE):
    return wait_for(lambda: text(path) == want, timeout=timeout, what=f"{path} to read {want!r}")


def submit(cluster, jobs, *args):
    jid = cluster.sbatch(*args)
    jobs.append(jid)
    return jid


def settle():
    """Time for a stray event to arrive after the change was seen (the twins' check)."""
    time.sleep(1.5)


# ---- jobs in each state ---------------------------------------------------------------------

def test_completed_job_files_match_the_cluster(cluster, jobs, smount):
    m = smount()
    jid = submit(cluster, jobs, "ok.sh")
    d = m.p("slurm", jid)
    wait_text(os.path.join(d, "state"), "COMPLETED\n")
    truth = cluster.job(jid)
    out_file = os.path.join(cluster.jobdir, f"slurm-{jid}.out")
    assert text(os.path.join(d, "exit_code")) == "0\n"
    assert not os.path.exists(os.path.join(d, "signal"))
    assert text(os.path.join(d, "reason")) == truth["state_reason"] + "\n"
    assert text(os.path.join(d, "name")) == "ok.sh\n"
    assert text(os.path.join(d, "user")) == truth["user_name"] + "\n"
    assert text(os.path.join(d, "partition")) == truth["partition"] + "\n"
    assert text(os.path.join(d, "nodes")) == truth["nodes"] + "\n"
    assert text(os.path.join(d, "work_dir")) == cluster.jobdir + "\n"
    for key in ("submit_time", "start_time", "end_time"):
        assert text(os.path.join(d, key)) == f"{truth[key]}\n", key
    assert text(os.path.join(d, "stdout_path")) == out_file + "\n"
    assert text(os.path.join(d, "stderr_path")) == out_file + "\n"
    # stdout: the file's exact bytes and a truthful size; stderr went into it
    assert read(os.path.join(d, "stdout")) == read(out_file)
    assert read(out_file) == f"hello from job {jid}\nsecond line\nto stderr\n".encode()
    assert os.stat(os.path.join(d, "stdout")).st_size == os.path.getsize(out_file)
    assert os.readlink(os.path.join(d, "stderr")) == "stdout"
    # job.json: the job object as the server sends it
    obj = json.loads(read(os.path.join(d, "job.json")))
    assert obj["job_id"] == int(jid) and obj["job_state"] == "COMPLETED"
    assert jid in os.listdir(m.p("slurm"))


def test_failed_job_exit_code_is_decoded(cluster, jobs, smount):
    m = smount()
    ok = submit(cluster, jobs, "ok.sh")
    bad = submit(cluster, jobs, "fail.sh")
    wait_text(m.p("slurm", bad, "state"), "FAILED\n")
    wait_text(m.p("slurm", ok, "state"), "COMPLETED\n")
    assert cluster.job(bad)["exit_code"] == 768      # what the server sends for `exit 3`
    assert text(m.p("slurm", bad, "exit_code")) == "3\n"
    assert text(m.p("slurm", bad, "reason")) == "NonZeroExitCode\n"
    assert not os.path.exists(m.p("slurm", bad, "signal"))
    assert read(m.p("slurm", bad, "stdout")) == b"about to fail\n"
    # scripted: grep finds the failed one and not its completed twin
    r = run(["grep", "-rlx", "--include=state", "FAILED", m.p("slurm")], timeout=60)
    assert m.p("slurm", bad, "state") in r.stdout.split()
    assert m.p("slurm", ok, "state") not in r.stdout.split()
    r = run(["find", m.p("slurm"), "-name", "exit_code", "-exec", "grep", "-lvx", "0", "{}", "+"],
            timeout=60)
    assert m.p("slurm", bad, "exit_code") in r.stdout.split()
    assert m.p("slurm", ok, "exit_code") not in r.stdout.split()


@pytest.mark.parametrize("notify", [True, False], ids=["notify", "no-notify"])
def test_cancelled_while_running(cluster, jobs, smount, watch_factory, notify):
    m = smount(*([] if notify else ["--no-notify"]))
    jid = submit(cluster, jobs, "--job-name=to-cancel", "sleep.sh", "300")
    state = m.p("slurm", jid, "state")
    wait_text(state, "RUNNING\n")
    assert not os.path.exists(m.p("slurm", jid, "exit_code"))     # not final: no exit code yet
    assert not os.path.exists(m.p("slurm", jid, "end_time"))      # a forecast, not shown
    w = watch_factory(state, events="modify")
    cluster.scancel(jid)
    wait_text(state, "CANCELLED\n")
    assert text(m.p("slurm", jid, "signal")) == "15\n"
    assert text(m.p("slurm", jid, "exit_code")) == "143\n"
    assert os.path.exists(m.p("slurm", jid, "end_time"))
    assert "CANCELLED" in text(m.p("slurm", jid, "stdout"))       # slurmstepd's line
    if notify:
        w.wait_line(lambda l: l == f"MODIFY {state}", timeout=10, what="IN_MODIFY on state")
    else:
        settle()
        assert w.lines() == []


def test_timeout(cluster, jobs, smount):
    m = smount()
    jid = submit(cluster, jobs, "--time=1", "--job-name=timeout", "sleep.sh", "600")
    wait_text(m.p("slurm", jid, "state"), "RUNNING\n")
    # SLURM checks time limits about once a minute: 66-90 s after the start
    wait_text(m.p("slurm", jid, "state"), "TIMEOUT\n", timeout=240)
    assert text(m.p("slurm", jid, "reason")) == "TimeLimit\n"
    assert text(m.p("slurm", jid, "signal")) == "15\n"
    assert text(m.p("slurm", jid, "exit_code")) == "143\n"
    assert "TIME LIMIT" in text(m.p("slurm", jid, "stdout"))


def test_pending_then_released(cluster, jobs, smount, watch_factory):
    m = smount()
    jid = submit(cluster, jobs, "--hold", "--job-name=held", "ok.sh")
    d = m.p("slurm", jid)
    wait_text(os.path.join(d, "state"), "PENDING\n", timeout=10)
    assert text(os.path.join(d, "reason")) == "JobHeldUser\n"
    assert text(os.path.join(d, "nodes")) == ""
    for absent in ("start_time", "end_time", "exit_code", "signal", "stdout", "stderr"):
        assert not os.path.exists(os.path.join(d, absent)), absent
    assert os.path.exists(os.path.join(d, "submit_time"))
    # control twin: released, the same directory fills in
    w = watch_factory(d, events="create")
    cluster.scontrol("release", jid)
    wait_text(os.path.join(d, "state"), "COMPLETED\n")
    assert read(os.path.join(d, "stdout")).startswith(f"hello from job {jid}\n".encode())
    w.wait_line(lambda l: l == f"CREATE {d}/stdout", timeout=10, what="IN_CREATE of stdout")


def test_array_tasks(cluster, jobs, smount):
    m = smount()
    aid = submit(cluster, jobs, "--array=1-3", "arr.sh")
    tasks = [f"{aid}_{i}" for i in (1, 2, 3)]
    for t in tasks:
        cluster.wait_state(t, FINAL)
    wait_for(lambda: set(tasks) <= set(os.listdir(m.p("slurm"))), timeout=20,
             what="the tasks in ls slurm/")
    for i, t in enumerate(tasks, 1):
        truth = cluster.job(t)
        assert text(m.p("slurm", t, "exit_code")) == f"{i}\n"
        assert text(m.p("slurm", t, "state")) == "FAILED\n"
        out_file = os.path.join(cluster.jobdir, f"slurm-{aid}_{i}.out")
        assert text(m.p("slurm", t, "stdout_path")) == out_file + "\n"
        assert read(m.p("slurm", t, "stdout")) == read(out_file) == \
            f"array task {i} of job {aid}\n".encode()
        # a task's own job id is not a name of it (squeue calls it AID_I too)
        if str(truth["job_id"]) != aid:
            assert errno_of(m.p("slurm", str(truth["job_id"]), "state")) == errno.ENOENT
    # every task started: nothing is left under the array's own id
    assert aid not in os.listdir(m.p("slurm"))


def test_custom_output_pattern(cluster, jobs, smount):
    m = smount()
    os.makedirs(os.path.join(cluster.jobdir, "out"), exist_ok=True)
    jid = submit(cluster, jobs, "--job-name=custom-out",
                 f"--output={cluster.jobdir}/out/custom-%j-%x.log",
                 f"--error={cluster.jobdir}/out/custom-%j.err", "ok.sh")
    d = m.p("slurm", jid)
    wait_text(os.path.join(d, "state"), "COMPLETED\n")
    out_file = f"{cluster.jobdir}/out/custom-{jid}-custom-out.log"
    err_file = f"{cluster.jobdir}/out/custom-{jid}.err"
    assert os.path.exists(out_file) and os.path.exists(err_file)     # what slurmstepd wrote
    assert text(os.path.join(d, "stdout_path")) == out_file + "\n"
    assert text(os.path.join(d, "stderr_path")) == err_file + "\n"
    assert read(os.path.join(d, "stdout")) == read(out_file) == \
        f"hello from job {jid}\nsecond line\n".encode()
    assert read(os.path.join(d, "stderr")) == read(err_file) == b"to stderr\n"
    assert not os.path.islink(os.path.join(d, "stderr"))
    # grep -r sees each stream where it went
    r = run(["grep", "-rl", "to stderr", d], timeout=30)
    assert r.stdout.split() == [os.path.join(d, "stderr")]


def test_unknown_id_is_enoent(cluster, jobs, smount):
    m = smount()
    jid = submit(cluster, jobs, "ok.sh")
    wait_text(m.p("slurm", jid, "state"), "COMPLETED\n")       # control: a real id works
    status, body = cluster.rest("job/999999")
    assert status == 500 and body["errors"][0]["error_number"] == 2017
    for name in ("999999", "abc", "007", f"{jid}_1"):
        r = run(["cat", m.p("slurm", name, "state")])
        assert r.returncode != 0 and "No such file or directory" in r.stderr, (name, r.stderr)
        assert name not in os.listdir(m.p("slurm"))
    r = run(["ls", m.p("slurm", "999999")])
    assert r.returncode != 0 and "No such file or directory" in r.stderr


def test_bad_token_is_eacces_logged_once(cluster, jobs, smount):
    jid = submit(cluster, jobs, "ok.sh")
    cluster.wait_state(jid, FINAL)
    good = smount()
    assert text(good.p("slurm", jid, "state")) == "COMPLETED\n"   # control twin
    # a well-formed token the cluster did not sign: slurmrestd answers 500, error -1
    bad = smount(token="eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDAsInN1biI6InJvb3QifQ.c2ln")
    for _ in range(3):
        r = run(["cat", bad.p("slurm", jid, "state")])
        assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr
        time.sleep(1.1)         # past the 1 s back-off: each is a request of its own
    log = bad.log()
    assert len(re.findall(r"refused the request for user", log)) == 1, log
    assert cluster.token not in log and "c2ln" not in log


def test_token_file(cluster, jobs, smount, tmp_path, monkeypatch):
    jid = submit(cluster, jobs, "ok.sh")
    cluster.wait_state(jid, FINAL)
    tok = tmp_path / "token"
    tok.write_text(f"SLURM_JWT={cluster.token}\n")       # as `scontrol token` prints it
    tok.chmod(0o600)
    m = smount(f"--slurm-token-file={tok}", token=False)
    assert text(m.p("slurm", jid, "state")) == "COMPLETED\n"
    # control twin: a file others may read is refused, and nothing is mounted
    tok.chmod(0o644)
    mnt = tmp_path / "refused"
    mnt.mkdir()
    monkeypatch.delenv("SLURM_JWT", raising=False)
    try:
        r = run([JOBFS_BIN, "-f", f"--slurm-url={cluster.url}", f"--slurm-token-file={tok}",
                 str(mnt)], timeout=20)
    finally:
        was = is_mounted(mnt)
        if was:
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True, timeout=20)
    assert not was and r.returncode != 0
    assert "chmod 600" in r.stderr and cluster.token not in r.stderr + r.stdout


# ---- changes ------------------------------------------------------------------------------------

def test_tail_f_follows_a_running_job(cluster, jobs, smount, tmp_path):
    m = smount()
    jid = submit(cluster, jobs, "--job-name=grow", "grow.sh", "6")
    f = m.p("slurm", jid, "stdout")
    wait_for(lambda: (text(f) or "").startswith("tick 1\n"), timeout=JOB_DONE, what="the first tick")
    out = tmp_path / "tail.out"
    with open(out, "w") as o:
        proc = subprocess.Popen(["tail", "-f", "-s", "0.3", f], stdout=o, stderr=subprocess.DEVNULL)
    try:
        want = "".join(f"tick {i}\n" for i in range(1, 7))
        wait_for(lambda: out.read_text() == want, timeout=30, what="tail -f to print every tick")
        wait_text(m.p("slurm", jid, "state"), "COMPLETED\n")
        assert read(f) == read(os.path.join(cluster.jobdir, f"slurm-{jid}.out")) == want.encode()
    finally:
        stop_process(proc)


@pytest.mark.parametrize("notify", [True, False], ids=["notify", "no-notify"])
def test_new_job_raises_in_create(cluster, jobs, smount, watch_factory, notify):
    m = smount(*([] if notify else ["--no-notify"]))
    os.listdir(m.p("slurm"))
    w = watch_factory(m.p("slurm"), events="create")
    jid = submit(cluster, jobs, "--hold", "ok.sh")
    wait_for(lambda: jid in os.listdir(m.p("slurm")), timeout=20, what="the new job in ls")
    if notify:
        w.wait_line(lambda l: l == f"CREATE,ISDIR {m.p('slurm')}/{jid}", timeout=10,
                    what="IN_CREATE in slurm/")
    else:
        settle()
        assert w.lines() == []


def test_inotifywait_recursive_sees_state_and_output(cluster, jobs, smount, watch_factory):
    m = smount()
    jid = submit(cluster, jobs, "--hold", "--job-name=grow", "grow.sh", "3")
    d = m.p("slurm", jid)
    wait_text(os.path.join(d, "state"), "PENDING\n", timeout=10)
    w = watch_factory(d, events="modify,create", recursive=True)
    cluster.scontrol("release", jid)
    wait_text(os.path.join(d, "state"), "COMPLETED\n")
    w.wait_line(lambda l: l == f"MODIFY {d}/state", timeout=10, what="IN_MODIFY of state")
    w.wait_line(lambda l: l == f"CREATE {d}/stdout", timeout=10, what="IN_CREATE of stdout")


def test_finished_job_ages_out_with_in_delete(cluster, jobs, smount, watch_factory):
    m = smount()
    jid = submit(cluster, jobs, "ok.sh")
    wait_text(m.p("slurm", jid, "state"), "COMPLETED\n")
    w = watch_factory(m.p("slurm"), events="delete")
    # slurmctld forgets it MinJobAge after its end (without slurmdbd)
    wait_for(lambda: cluster.job(jid) is None, timeout=MIN_JOB_AGE + 90,
             what="slurmctld to purge the job")
    w.wait_line(lambda l: l == f"DELETE,ISDIR {m.p('slurm')}/{jid}", timeout=20, what="IN_DELETE")
    assert jid not in os.listdir(m.p("slurm"))
    # and now it is exactly an unknown id
    assert errno_of(m.p("slurm", jid, "state")) == errno.ENOENT


def test_one_request_per_poll(cluster, jobs, smount):
    """The listing is the change feed: each poll costs one GET /jobs (a 304
    when slurmctld saw no change, a 200 of every job otherwise) and nothing
    else while the jobs do not change; no full resync in between."""
    m = smount()
    for _ in range(3):
        submit(cluster, jobs, "--hold", "ok.sh")
    os.listdir(m.p("slurm"))
    status = m.p(".jobfs", "status")

    def counts():
        s = text(status) or ""
        section = s[s.index("[slurm]"):] if "[slurm]" in s else ""
        got = re.search(r"lists: (\d+) full, (\d+) changed, (\d+) unchanged", section)
        req = re.search(r"^requests: (\d+)", section, re.M)
        if not got or not req:
            return None
        return [int(x) for x in got.groups()] + [int(req.group(1))]
    wait_for(lambda: (counts() or [0, 0, 0, 0])[1] + (counts() or [0, 0, 0, 0])[2] > 0,
             timeout=20, what="a first incremental list")
    before = counts()
    time.sleep(3)
    after = counts()
    lists = sum(after[:3]) - sum(before[:3])
    requests = after[3] - before[3]
    print(f"timing: 3 s of polls at 0.5 s: {lists} lists ({after[2] - before[2]} were 304), "
          f"{requests} requests")
    assert after[0] == before[0], "a full list within 3 s"
    assert requests == lists, "a request other than the listing (a job fetched)"
    assert 2 <= lists <= 3 / 0.5 + 2, lists
    s = text(status)
    assert "api: v0.0.38 (detected)" in s and cluster.token not in s


@pytest.mark.parametrize("api", ["v0.0.37", "v0.0.36"])
def test_older_api_versions(cluster, jobs, smount, api):
    m = smount(f"--slurm-api={api}")
    jid = submit(cluster, jobs, "fail.sh")
    wait_text(m.p("slurm", jid, "state"), "FAILED\n")
    assert text(m.p("slurm", jid, "exit_code")) == "3\n"
    # v0.0.36 sends an empty user_name: the local name of user_id is shown
    assert text(m.p("slurm", jid, "user")) == cluster.user + "\n"
    assert read(m.p("slurm", jid, "stdout")) == b"about to fail\n"
    assert f"api: {api} (--slurm-api)" in text(m.p(".jobfs", "status"))
