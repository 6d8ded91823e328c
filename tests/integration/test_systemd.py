"""The systemd units in contrib/systemd/, without systemd as PID 1.

What systemd would do with jobfs@.service is done by hand: its ExecStartPre=
and ExecStart= command lines are taken from the unit, with %f/%i and
$JOBFS_OPTIONS expanded as systemd does (from an EnvironmentFile= written
here), and run with NOTIFY_SOCKET naming a datagram socket this test reads,
as systemd's is. READY=1 must arrive once the mount is there, and STOPPING=1
when ExecStop= (fusermount3 -u) unmounts; the twin without NOTIFY_SOCKET
mounts all the same and the socket hears nothing. `systemd-analyze verify`
checks every unit file (its control: a unit with a bogus key does not pass).
"""
import os
import re
import shlex
import shutil
import socket
import subprocess
import time

import pytest

from conftest import JOBFS_BIN, SEED_JOB, is_mounted, run, stop_process, wait_for

SRC = os.environ.get("JOBFS_SRC") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = os.path.join(SRC, "contrib", "systemd")
SYSTEM_UNIT = os.path.join(UNITS, "jobfs@.service.in")
USER_UNIT = os.path.join(UNITS, "user", "jobfs@.service.in")
FUSERMOUNT3 = shutil.which("fusermount3") or "/usr/bin/fusermount3"


def sends_notifications():
    """Whether the binary calls sdnotify_send (main.c wiring)."""
    with open(JOBFS_BIN, "rb") as f:
        return b"READY=1" in f.read()


needs_wiring = pytest.mark.skipif(not os.path.exists(JOBFS_BIN) or not sends_notifications(),
                                  reason="jobfs does not send READY=1 yet (main.c must call "
                                         "sdnotify_send)")


def unit_text(path):
    """A unit file as meson configures it, for the binary under test."""
    with open(path) as f:
        text = f.read()
    return (text.replace("@bindir@", os.path.dirname(os.path.realpath(JOBFS_BIN)))
                .replace("@fusermount3@", FUSERMOUNT3))


def service_lines(text, key):
    """The values of key= in [Service], in order."""
    section, out = None, []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line.startswith(key + "="):
            out.append(line[len(key) + 1:])
    return out


def expand(cmdline, instance_path, env):
    """One Exec*= line as systemd runs it: prefix flags, %f and %i, $VAR split
    at whitespace, ${VAR} kept whole. Returns (ignore_failure, argv)."""
    ignore = cmdline.startswith("-")
    cmdline = cmdline.lstrip("-@:+!")
    escaped = subprocess.run(["systemd-escape", "--path", instance_path], capture_output=True,
                             text=True, check=True).stdout.strip()
    argv = []
    for word in shlex.split(cmdline):
        word = word.replace("%f", instance_path).replace("%i", escaped).replace("%I", instance_path)
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda g: env.get(g.group(1), ""),
                               word))
    return ignore, argv


def read_env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


class NotifySocket:
    """A datagram socket standing in for systemd's, at a path or '@'-abstract."""

    def __init__(self, name):
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name[1:] if name.startswith("@") else name)
        self.got = []       # (monotonic time, message, mounted at that time)

    def wait(self, text, mnt, timeout=15):
        deadline = time.monotonic() + timeout
        while not any(text in m for _, m, _ in self.got):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text} within {timeout} s; got {self.got}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.got.append((time.monotonic(), data.decode(), is_mounted(mnt)))
        return next(g for g in self.got if text in g[1])

    def close(self):
        self.sock.close()
        if not self.name.startswith("@") and os.path.exists(self.name):
            os.unlink(self.name)


def start_unit(unit_path, sim, tmp_path, notify):
    """Runs the unit's ExecStartPre= and ExecStart= lines; returns (proc, mnt, stop argv)."""
    text = unit_text(unit_path)
    mnt = str(tmp_path / "units" / "jobs")      # made by the unit's ExecStartPre mkdir -p
    conf = tmp_path / "jobfs.conf"
    conf.write_text("# as /etc/jobfs/INSTANCE.conf\n"
                    f"JOBFS_OPTIONS=--bacalhau-url={sim.bacalhau_url} --muse-url={sim.muse_url}"
                    " --ttl=2\n")
    env_files = service_lines(text, "EnvironmentFile")
    assert env_files and env_files[0].startswith("-"), "the options file must be optional"
    env = read_env_file(conf)
    for line in service_lines(text, "ExecStartPre"):
        ignore, argv = expand(line, mnt, env)
        r = run(argv)
        assert ignore or r.returncode == 0, (argv, r.stderr)
    [start] = service_lines(text, "ExecStart")
    _, argv = expand(start, mnt, env)
    assert "-f" in argv, "Type=notify needs jobfs in the foreground (-f): it is the main pid"
    penv = dict(os.environ)
    penv.pop("NOTIFY_SOCKET", None)
    if notify:
        penv["NOTIFY_SOCKET"] = notify.name
    log = open(tmp_path / "unit-jobfs.log", "w")
    proc = subprocess.Popen(argv, env=penv, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    [stop] = service_lines(text, "ExecStop")
    return proc, mnt, expand(stop, mnt, env)[1]


@pytest.fixture
def unit_runs():
    started = []
    yield started
    for proc, mnt in started:
        if is_mounted(mnt):
            subprocess.run([FUSERMOUNT3, "-u", "-z", mnt], capture_output=True, timeout=20)
        stop_process(proc)


@needs_wiring
@pytest.mark.parametrize("unit", [SYSTEM_UNIT, USER_UNIT], ids=["system", "user"])
@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_unit_sends_ready_then_stopping(sim, tmp_path, unit_runs, unit, kind):
    name = str(tmp_path / "notify") if kind == "path" else f"@jobfs-test-{os.getpid()}-{kind}"
    notify = NotifySocket(name)
    try:
        proc, mnt, stop = start_unit(unit, sim, tmp_path, notify)
        unit_runs.append((proc, mnt))
        _, msg, mounted_then = notify.wait("READY=1", mnt)
        assert mounted_then, "READY=1 came before the mount was there"
        with open(os.path.join(mnt, "jobs", SEED_JOB, "state")) as f:
            assert f.read().endswith("\n")
        r = run(stop)
        assert r.returncode == 0, r.stderr
        notify.wait("STOPPING=1", mnt)
        proc.wait(timeout=15)
        assert proc.returncode == 0
        assert not is_mounted(mnt)
        assert [m for _, m, _ in notify.got].count("READY=1") == 1
    finally:
        notify.close()


@needs_wiring
def test_no_notify_socket_no_message(sim, tmp_path, unit_runs):
    # control twin: the same command line without NOTIFY_SOCKET mounts and
    # sends nothing (our socket exists, but nobody told jobfs about it)
    notify = NotifySocket(str(tmp_path / "notify"))
    try:
        proc, mnt, stop = start_unit(SYSTEM_UNIT, sim, tmp_path, None)
        unit_runs.append((proc, mnt))
        wait_for(lambda: is_mounted(mnt) or proc.poll() is not None, timeout=15, what="the mount")
        assert is_mounted(mnt)
        with open(os.path.join(mnt, "jobs", SEED_JOB, "state")) as f:
            f.read()
        assert run(stop).returncode == 0
        proc.wait(timeout=15)
        notify.sock.settimeout(0.2)
        with pytest.raises(socket.timeout):
            notify.sock.recv(4096)
    finally:
        notify.close()


def test_unit_start_clears_a_dead_mount(sim, tmp_path, unit_runs):
    """Restart=on-failure after a crash: ExecStartPre's fusermount3 -u -z
    removes the dead mount, so the new jobfs can mount again."""
    text = unit_text(SYSTEM_UNIT)
    assert "on-failure" in service_lines(text, "Restart")
    pre = service_lines(text, "ExecStartPre")
    assert any("fusermount3" in p and "-u" in p for p in pre)
    mnt = tmp_path / "units" / "jobs"
    mnt.mkdir(parents=True)
    log = open(tmp_path / "crashed.log", "w")
    crashed = subprocess.Popen([JOBFS_BIN, "-f", f"--bacalhau-url={sim.bacalhau_url}", str(mnt)],
                               stdout=log, stderr=subprocess.STDOUT)
    log.close()
    unit_runs.append((crashed, str(mnt)))
    wait_for(lambda: is_mounted(mnt), timeout=15, what="the first mount")
    crashed.kill()      # SIGKILL: the mount stays, dead
    crashed.wait(timeout=10)
    with pytest.raises(OSError):
        os.listdir(mnt)     # ENOTCONN
    proc, mntp, stop = start_unit(SYSTEM_UNIT, sim, tmp_path, None)
    unit_runs.append((proc, mntp))
    wait_for(lambda: (is_mounted(mntp) and os.path.isdir(os.path.join(mntp, "jobs")))
             or proc.poll() is not None, timeout=15, what="the new mount")
    assert proc.poll() is None, open(tmp_path / "unit-jobfs.log").read()
    assert run(stop).returncode == 0
    proc.wait(timeout=15)


def unit_copies(tmp_path):
    """The unit files under names systemd-analyze accepts (instances named)."""
    d = tmp_path / "units-verify"
    (d / "user").mkdir(parents=True)
    out = []
    for src, dst in ((SYSTEM_UNIT, d / "jobfs@mnt-jobs.service"),
                     (USER_UNIT, d / "user" / "jobfs@home-u-jobs.service")):
        dst.write_text(unit_text(src))
        out.append(dst)
    for name in ("mnt-jobs.mount", "mnt-jobs.automount"):
        shutil.copy(os.path.join(UNITS, name), d / name)
        out.append(d / name)
    return out


def analyze(paths, tmp_path, user=False):
    env = dict(os.environ)
    if user:
        rt = tmp_path / "runtime"
        rt.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(rt)
    cmd = ["systemd-analyze", "verify", "--man=no"] + (["--user"] if user else []) + \
        [str(p) for p in paths]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is missing")
def test_systemd_analyze_verify(tmp_path):
    system, user, mount, automount = unit_copies(tmp_path)
    r = analyze([system, mount, automount], tmp_path)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    r = analyze([user], tmp_path, user=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # control twin: systemd-analyze does speak up about a broken unit
    bad = tmp_path / "units-verify" / "jobfs@bad.service"
    bad.write_text(unit_text(SYSTEM_UNIT).replace("[Service]", "[Service]\nNoSuchKey=1"))
    r = analyze([bad], tmp_path)
    assert "NoSuchKey" in r.stderr
