"""Issue 13: `wait` files. A read blocks until the job or run is final, then
gives its final state and a newline; waiting costs no FUSE worker thread;
Ctrl-C ends it; --wait-timeout bounds it; poll() says when it would not
block. Each behaviour with a twin that comes out the other way."""
import os
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import RUN_NOK, RUN_OK, RUN_WAIT, RUNNING_JOB, SEED_JOB, run, stop_process, wait_for

POLL = "--poll-interval=0.2"


def running_node(sim):
    return list(sim.job(RUNNING_JOB)["Nodes"])[0]


def start_cat(path):
    return subprocess.Popen(["cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(proc, within):
    try:
        proc.wait(timeout=within)
        return True
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.parametrize("finish", [True, False], ids=["finished", "still-running"])
def test_cat_wait_returns_when_the_job_is_final(sim, mount_factory, finish):
    m = mount_factory(sim, POLL)
    w = m.p("jobs", RUNNING_JOB, "wait")
    proc = start_cat(w)
    try:
        assert not finished(proc, 1.0), "a live job's wait returned"
        if finish:
            sim.set_shard(RUNNING_JOB, running_node(sim), {"State": "Completed"})
            assert finished(proc, 5), "wait did not return after the job finished"
            assert proc.returncode == 0
            assert proc.stdout.read() == b"Completed\n"
            # a final job answers at once, and the same
            t0 = time.monotonic()
            assert run(["cat", w]).stdout == "Completed\n"
            assert time.monotonic() - t0 < 0.5
        else:
            assert not finished(proc, 1.0), "wait returned while the job runs"
    finally:
        stop_process(proc)


def test_final_job_wait_answers_at_once(sim, mnt):
    t0 = time.monotonic()
    r = run(["cat", mnt.p("jobs", SEED_JOB, "wait")])
    assert r.returncode == 0 and r.stdout == "Completed\n"
    assert time.monotonic() - t0 < 1


@pytest.mark.parametrize("how", ["grep-r", "cat-wait"])
def test_a_sweep_over_a_live_job_does_not_block_on_wait(sim, mount_factory, how):
    """wait is found by name, never listed: grep -r, find and ls over a
    live job finish; the twin reads wait by name and blocks."""
    m = mount_factory(sim, POLL)
    job = m.p("jobs", RUNNING_JOB)
    if how == "grep-r":
        proc = subprocess.Popen(["grep", "-r", "-l", "Running", job],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    else:
        proc = start_cat(os.path.join(job, "wait"))
    try:
        if how == "grep-r":
            assert finished(proc, 5), "grep -r blocked on a live job"
            assert proc.returncode == 0 and b"/state" in proc.stdout.read()
            assert "wait" not in os.listdir(job)
            assert os.path.exists(os.path.join(job, "wait"))
            found = run(["find", job, "-name", "wait"], check=True).stdout
            assert found == "", found
        else:
            assert not finished(proc, 1.5), "a live job's wait answered"
    finally:
        stop_process(proc)


@pytest.mark.parametrize("cr,latest", [("OK", "ENDED_OK"), ("NOK", "ENDED_NOK")])
def test_muse_run_wait(sim, mount_factory, cr, latest):
    m = mount_factory(sim, POLL)
    proc = start_cat(m.p("software", "sw_example", RUN_WAIT, "wait"))
    try:
        assert not finished(proc, 1.0)
        sim.set_run("sw_example", RUN_WAIT, cr=cr, latest_cr=latest,
                    latest_state="COMPLETED" if cr == "OK" else "FAILED")
        assert finished(proc, 5)
        assert proc.stdout.read() == f"{latest}\n".encode()
    finally:
        stop_process(proc)
    # the seed's final runs answer at once
    assert run(["cat", m.p("software", "sw_example", RUN_OK, "wait")]).stdout == "ENDED_OK\n"
    assert run(["cat", m.p("software", "sw_example", RUN_NOK, "wait")]).stdout == "ENDED_NOK\n"


# python handles SIGINT itself (KeyboardInterrupt): its read ends only if
# the kernel interrupts the request, which it does for reads the reader waits
# for itself, not for background readahead (fs.c, op_init)
PY_READER = """import os, sys
try:
    os.read(os.open(sys.argv[1], os.O_RDONLY), 100)
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("reader", ["cat", "python"])
@pytest.mark.parametrize("sig", [True, False], ids=["ctrl-c", "no-signal"])
def test_ctrl_c_ends_a_wait(sim, mount_factory, sig, reader):
    m = mount_factory(sim, POLL)
    path = m.p("jobs", RUNNING_JOB, "wait")
    if reader == "cat":
        proc = start_cat(path)
    else:
        proc = subprocess.Popen([sys.executable, "-c", PY_READER, path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert not finished(proc, 1.0)
        if sig:
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            assert finished(proc, 0.5), "Ctrl-C did not end the wait within 0.5 s"
            print(f"timing: {reader} wait ended {time.monotonic() - t0:.3f} s after SIGINT")
            if reader == "python":
                assert proc.stdout.read() == b"interrupted\n"
        else:
            assert not finished(proc, 1.0)
    finally:
        stop_process(proc)
    assert m.alive()


@pytest.mark.parametrize("timeout", [1, None], ids=["wait-timeout-1", "no-timeout"])
def test_wait_timeout(sim, mount_factory, timeout):
    m = mount_factory(sim, POLL, *(["-o", f"wait_timeout={timeout}"] if timeout else []))
    proc = start_cat(m.p("jobs", RUNNING_JOB, "wait"))
    try:
        t0 = time.monotonic()
        if timeout:
            assert finished(proc, timeout + 2)
            took = time.monotonic() - t0
            assert proc.returncode != 0
            assert b"Connection timed out" in proc.stderr.read()
            assert took >= timeout - 0.1, took
        else:
            assert not finished(proc, 2.5)
    finally:
        stop_process(proc)


@pytest.mark.parametrize("final", [False, True], ids=["live", "final"])
def test_poll_on_wait(sim, mount_factory, final):
    m = mount_factory(sim, POLL)
    job = SEED_JOB if final else RUNNING_JOB
    fd = os.open(m.p("jobs", job, "wait"), os.O_RDONLY)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        if final:
            assert p.poll(1000), "a final job's wait is not readable"
            assert os.read(fd, 100) == b"Completed\n"
            return
        assert p.poll(500) == [], "a live job's wait is readable"
        sim.set_shard(RUNNING_JOB, running_node(sim), {"State": "Completed"})
        t0 = time.monotonic()
        ready = p.poll(5000)
        assert ready and ready[0][1] & select.POLLIN, "poll() did not wake when the job finished"
        print(f"timing: poll woke {time.monotonic() - t0:.2f} s after the change")
        assert os.read(fd, 100) == b"Completed\n"
    finally:
        os.close(fd)


@pytest.mark.parametrize("finish", [True, False], ids=["finished", "still-running"])
def test_two_pollers_of_one_wait_file_both_wake(sim, mount_factory, finish):
    """Each open file has its own poll handle: a second poller must not
    take the first one's place."""
    m = mount_factory(sim, POLL)
    path = m.p("jobs", RUNNING_JOB, "wait")
    fds = [os.open(path, os.O_RDONLY) for _ in range(2)]
    woke = {}

    def poller(i):
        p = select.poll()
        p.register(fds[i], select.POLLIN)
        t0 = time.monotonic()
        woke[i] = (bool(p.poll(4000)), time.monotonic() - t0)

    threads = []
    try:
        for i in range(2):
            threads.append(threading.Thread(target=poller, args=(i,)))
            threads[-1].start()
            time.sleep(0.5)     # the second poll comes after the first is parked
        if finish:
            sim.set_shard(RUNNING_JOB, running_node(sim), {"State": "Completed"})
        for t in threads:
            t.join(10)
        print(f"pollers: {woke}")
        if finish:
            assert woke[0][0] and woke[1][0], f"a poller was not woken: {woke}"
            assert max(w[1] for w in woke.values()) < 3.5
        else:
            assert not woke[0][0] and not woke[1][0], f"a live job woke a poller: {woke}"
    finally:
        for fd in fds:
            os.close(fd)


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith("Threads:")][0].split()[1])


@pytest.mark.parametrize("waiters", [1000, 0], ids=["1000-waiters", "no-waiters"])
def test_many_waiters_cost_no_threads(sim, mount_factory, waiters):
    """1,000 readers blocked in `wait` files of 1,000 live jobs: the daemon's
    thread count stays small (no worker per waiter) and a cat of another file
    keeps answering within 50 ms; then all of them end when their jobs do.
    The twin measures the same cats with nobody waiting. (1,000 jobs that
    change cost 1,000 fetches: the budget is raised so they come in seconds,
    not the 100 s that 10 a second would take.)"""
    m = mount_factory(sim, POLL, "--poll-budget=1000")
    node = running_node(sim)
    jobs = [f"7a170000-0000-4000-8000-{i:012d}" for i in range(waiters)]
    for job in jobs:
        sim.set_job(job, {"Nodes": {node: {"Shards": {"0": {"NodeId": node, "State": "Running"}}}}})
    results, errors = {}, []

    def waiter(job):
        try:
            with open(m.p("jobs", job, "wait"), "rb") as f:
                results[job] = f.read()
        except OSError as e:
            errors.append(e)
    threads = [threading.Thread(target=waiter, args=(j,), daemon=True) for j in jobs]
    for t in threads:
        t.start()
    if waiters:
        wait_for(lambda: f"waiting_reads: {waiters}" in open(m.p(".jobfs", "status")).read(),
                 timeout=60, what="every waiter parked")
    n_threads = threads_of(m.proc.pid)
    other = m.p("jobs", SEED_JOB, list(sim.job(SEED_JOB)["Nodes"])[0], "0", "state")
    worst = 0
    for _ in range(20):
        t0 = time.monotonic()
        assert run(["cat", other]).returncode == 0
        worst = max(worst, time.monotonic() - t0)
    print(f"timing: {waiters} waiters, jobfs threads {n_threads}, worst cat {worst * 1000:.1f} ms")
    assert worst < 0.05, f"a cat took {worst * 1000:.0f} ms"
    assert n_threads < 200, f"{n_threads} threads for {waiters} waiters"
    for job in jobs:
        sim.set_shard(job, node, {"State": "Completed"})
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert len(results) == waiters and all(v == b"Completed\n" for v in results.values())


def test_wait_keeps_waiting_while_the_server_is_down(sim, mount_factory):
    m = mount_factory(sim, POLL, "--timeout=1")
    proc = start_cat(m.p("jobs", RUNNING_JOB, "wait"))
    try:
        assert not finished(proc, 0.5)
        sim.fault("b", mode="status", status=503)
        wait_for(lambda: "reachable: no" in open(m.p(".jobfs", "status")).read(), timeout=10,
                 what="the outage in .jobfs/status")
        assert not finished(proc, 1.0), "a wait ended because the server is down"
        sim.fault("b", mode="none")
        sim.set_shard(RUNNING_JOB, running_node(sim), {"State": "Completed"})
        assert finished(proc, 10)
        assert proc.stdout.read() == b"Completed\n"
    finally:
        stop_process(proc)
