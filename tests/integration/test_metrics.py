"""Issue 12: .jobfs/metrics in the Prometheus text format, and secrets that
never show in argv, .jobfs/status or the log."""
import math
import os
import re

import pytest

from conftest import RUNNING_JOB, SEED_JOB, run, wait_for

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """A strict reader of the text exposition format 0.0.4: every family has
    HELP and TYPE before its samples, names and labels are well formed,
    values are floats, histograms have increasing buckets ending in +Inf
    whose count equals _count. Returns {(name, labels): value}."""
    assert text.endswith("\n"), "the last line must end in a newline"
    types, samples, seen_family = {}, {}, set()
    for line in text.splitlines():
        assert line == line.strip() and line, f"blank or padded line {line!r}"
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert NAME.match(name), line
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split()
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"{name} typed twice"
            types[name] = typ
            continue
        assert not line.startswith("#"), f"unknown comment {line!r}"
        m = SAMPLE.match(line)
        assert m, f"not a sample: {line!r}"
        name, _, labels, value = m.groups()
        base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert base in types, f"{name} has no TYPE before it"
        if types[base] == "counter":
            assert name.endswith("_total"), f"counter {name} without _total"
        pairs = tuple(LABEL.findall(labels or ""))
        if labels:
            assert ",".join(f'{k}="{v}"' for k, v in pairs) == labels, f"bad labels {labels!r}"
        v = float(value.replace("+Inf", "inf"))
        assert not math.isnan(v)
        samples[(name, pairs)] = v
        seen_family.add(base)
    for name, typ in types.items():
        assert name in seen_family, f"{name} has a TYPE and no sample"
        if typ != "histogram":
            continue
        series = {}
        for (n, pairs), v in samples.items():
            if n == name + "_bucket":
                rest = tuple(p for p in pairs if p[0] != "le")
                le = float(dict(pairs)["le"].replace("+Inf", "inf"))
                series.setdefault(rest, []).append((le, v))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), f"{name}{rest} buckets not cumulative"
            assert buckets[-1][0] == math.inf, f"{name}{rest} has no +Inf bucket"
            assert samples[(name + "_count", rest)] == buckets[-1][1]
    return samples


def metrics(m):
    with open(m.p(".jobfs", "metrics")) as f:
        return parse_prometheus(f.read())


def requests(s, backend):
    return sum(v for (n, pairs), v in s.items()
               if n == "jobfs_requests_total" and ("backend", backend) in pairs)


@pytest.mark.parametrize("read", [True, False], ids=["requests-made", "idle"])
def test_metrics_parse_and_move_with_requests(sim, mount_factory, read):
    m = mount_factory(sim, "--poll-interval=0")
    before = metrics(m)
    assert ("jobfs_cache_bytes_limit", ()) in before
    assert before[("jobfs_up", (("backend", "bacalhau"),))] == 0    # nothing asked yet
    if read:
        assert run(["cat", m.p("jobs", SEED_JOB, "state")]).stdout == "Completed\n"
    after = metrics(m)
    grew = requests(after, "bacalhau") - requests(before, "bacalhau")
    hist = after[("jobfs_request_duration_seconds_count", (("backend", "bacalhau"),))]
    if read:
        assert grew >= 1 and hist >= 1
        assert after[("jobfs_up", (("backend", "bacalhau"),))] == 1
        assert after[("jobfs_cache_cached_units", ())] >= 1
    else:
        assert grew == 0 and hist == 0
    assert "metrics" not in os.listdir(m.p()) and "metrics" in os.listdir(m.p(".jobfs"))


def test_metrics_count_errors_and_stale_reads(sim, mount_factory):
    m = mount_factory(sim, "--poll-interval=0", "--ttl=0.2", "--timeout=1")
    node = list(sim.job(RUNNING_JOB)["Nodes"])[0]
    f = m.p("jobs", RUNNING_JOB, node, "0", "state")
    assert run(["cat", f]).returncode == 0
    sim.fault("b", mode="status", status=503)

    def counted():
        assert run(["cat", f]).returncode == 0, "old data must stay readable"
        s = metrics(m)
        return s[("jobfs_requests_total", (("backend", "bacalhau"), ("outcome", "error")))] >= 1 \
            and s[("jobfs_stale_reads_total", ())] >= 1
    wait_for(counted, timeout=10, interval=0.3, what="an error and a stale read counted")
    assert metrics(m)[("jobfs_up", (("backend", "bacalhau"),))] == 0


@pytest.mark.parametrize("secret", [True, False], ids=["password-in-url", "no-password"])
def test_url_password_never_shown(sim, mount_factory, secret):
    """A URL's user:password@ is taken and blanked in the process's argv (as
    mysql does with -p); it never shows in /proc/PID/cmdline, .jobfs/status,
    .jobfs/metrics or the log (debug lines included). The twin without one
    shows the URL as given."""
    url = sim.bacalhau_url.replace("http://", "http://alice:s3cr3t-word@" if secret else "http://")
    m = mount_factory(None, f"--bacalhau-url={url}", f"--muse-url={sim.muse_url}", "-d",
                      "--poll-interval=0")
    assert run(["cat", m.p("jobs", SEED_JOB, "state")]).stdout == "Completed\n"
    with open(f"/proc/{m.proc.pid}/cmdline", "rb") as f:
        cmdline = f.read().decode()
    status = open(m.p(".jobfs", "status")).read()
    shown = open(m.p(".jobfs", "metrics")).read() + status + m.log()
    if secret:
        assert "s3cr3t-word" not in cmdline, cmdline
        assert "s3cr3t-word" not in shown
        assert "alice:" in cmdline and "@127.0.0.1" in cmdline   # blanked, not removed
        assert "***@127.0.0.1" in status
    else:
        assert url in cmdline
        assert url in status


@pytest.mark.parametrize("job", [SEED_JOB, RUNNING_JOB], ids=["read", "not-read"])
def test_debug_lines_name_the_job(sim, mount_factory, job):
    """Issue 12: with -d, a request's debug line carries its duration, status
    and job id, also for v0.3, whose POST /requester/states names the job
    only in its body. Twin: no line names a job that was never read."""
    m = mount_factory(sim, "-d", "--poll-interval=0")
    assert run(["cat", m.p("jobs", SEED_JOB, "state")]).stdout == "Completed\n"
    line = re.compile(r"POST \S+/states " + re.escape(job) + r": 200, \d+ bytes in \d+ ms")
    found = wait_for(lambda: [l for l in m.log().splitlines() if line.search(l)] or job == RUNNING_JOB,
                     timeout=5, what="the debug line of the read")
    if job == SEED_JOB:
        assert found
    else:
        assert not [l for l in m.log().splitlines() if job in l], "a job never read is in the log"
