"""`mount -t fuse.jobfs`, `umount` and fstab lines, with the real mount(8).

mount(8) hands a fuse.jobfs mount to mount.fuse3, which runs
`jobfs jobfs MOUNTPOINT -o OPTIONS` through /bin/sh *without the caller's
PATH* (seen with util-linux 2.38 and fuse3 3.14: the helper's environment
has no PATH), so the shell's default one applies: /usr/local/sbin,
/usr/local/bin, /usr/sbin, /usr/bin, /sbin, /bin. A jobfs in a temp dir on
PATH is never found that way. So unless `jobfs` there already is JOBFS_BIN
(the installed package: contrib/build-deb.sh --test), a symlink
/usr/local/bin/jobfs -> JOBFS_BIN is made for each test and removed after it;
if /usr/local/bin/jobfs is something else, the tests skip rather than touch
it. The real /etc/fstab is used by one test only: it is backed up, our line
added, and the original bytes written back in a finally (and checked).

Every mount point is unique (under the test's tmp_path), every wait has a
deadline, and a jobfs left behind (it goes to the background) is found by
its mount point in /proc/PID/cmdline and stopped by pid. Root only.
"""
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import JOBFS_BIN, RUN_OK, SEED_JOB, is_mounted, run, wait_for

LINK = "/usr/local/bin/jobfs"
# dash's search path when PATH is unset (what mount.fuse3's shell gets)
DEFAULT_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mount(8) and /etc/fstab need root"),
    pytest.mark.skipif(not shutil.which("mount.fuse3", path="/sbin:/usr/sbin"),
                       reason="mount.fuse3 (package fuse3) is missing"),
]


def resolved_jobfs():
    """What `jobfs` means to mount.fuse3's shell, or None."""
    for d in DEFAULT_PATH:
        p = os.path.join(d, "jobfs")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return os.path.realpath(p)
    return None


@pytest.fixture
def jobfs_on_path():
    binary = os.path.realpath(JOBFS_BIN)
    made = False
    if resolved_jobfs() != binary:
        if os.path.lexists(LINK):
            pytest.skip(f"{LINK} exists and is not {binary}: mount.fuse3 would run it")
        os.symlink(binary, LINK)
        made = True
    try:
        assert resolved_jobfs() == binary
        yield binary
    finally:
        if made and os.path.islink(LINK) and os.readlink(LINK) == binary:
            os.unlink(LINK)


def jobfs_pids(mnt):
    """Pids of the jobfs processes serving mnt (found by their argv)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"jobfs" and str(mnt).encode() in argv:
            pids.append(int(d))
    return pids


class Mountpoint:
    """A unique mount point; close() unmounts and stops its jobfs whatever happened."""

    def __init__(self, tmp_path, name="mnt"):
        self.path = tmp_path / name
        self.path.mkdir()

    def __str__(self):
        return str(self.path)

    def close(self):
        if is_mounted(self.path):
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=20)
        for pid in jobfs_pids(self.path):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            wait_for(lambda: not jobfs_pids(self.path), timeout=10, what="jobfs to exit")
        except AssertionError:
            for pid in jobfs_pids(self.path):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def mountpoints(tmp_path):
    made = []

    def make(name="mnt"):
        m = Mountpoint(tmp_path, name)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def opts(sim, *more):
    return ",".join([f"bacalhau_url={sim.bacalhau_url}", f"muse_url={sim.muse_url}", *more])


def mount_type(mnt):
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == str(mnt):
                return fields[0], fields[2]
    return None


def seed_state(sim):
    """The seed job's summary state from the simulator's truth (README rule)."""
    shards = [sh.get("State") for node in sim.job(SEED_JOB)["Nodes"].values()
              for sh in node["Shards"].values()]
    return next(s for s in ("Running", "Verifying", "Waiting", "Bidding", "Completed", "Error",
                            "Cancelled") if s in shards)


def assert_serves(mnt, sim):
    assert mount_type(mnt) == ("jobfs", "fuse.jobfs")
    with open(os.path.join(str(mnt), "jobs", SEED_JOB, "state")) as f:
        assert f.read() == seed_state(sim) + "\n"
    with open(os.path.join(str(mnt), "software", "sw_example", RUN_OK, "cr")) as f:
        assert f.read() == "OK\n"


def assert_unmounts(mnt):
    r = run(["umount", str(mnt)])
    assert r.returncode == 0, r.stderr
    assert not is_mounted(mnt)
    # the daemon notices and exits by itself
    wait_for(lambda: not jobfs_pids(mnt), timeout=15, what="jobfs to exit after umount")


def test_mount_t_fuse_jobfs(sim, jobfs_on_path, mountpoints):
    mnt = mountpoints()
    r = run(["mount", "-t", "fuse.jobfs", "jobfs", str(mnt), "-o", opts(sim, "ttl=2")])
    assert r.returncode == 0, r.stderr
    assert_serves(mnt, sim)
    assert len(jobfs_pids(mnt)) == 1
    assert_unmounts(mnt)


def test_mount_refuses_an_unknown_option(sim, jobfs_on_path, mountpoints):
    # control twin of the fstab-only options below: libfuse's judgement stands
    mnt = mountpoints()
    r = run(["mount", "-t", "fuse.jobfs", "jobfs", str(mnt), "-o", opts(sim, "no_such_option")])
    assert r.returncode != 0
    assert "no_such_option" in r.stderr, r.stderr
    assert not is_mounted(mnt)


FSTAB_ONLY = "noauto,_netdev,nofail,x-systemd.automount,x-systemd.idle-timeout=10min,relatime"


def test_mount_takes_fstab_only_options(sim, jobfs_on_path, mountpoints):
    mnt = mountpoints()
    r = run(["mount", "-t", "fuse.jobfs", "jobfs", str(mnt), "-o",
             opts(sim, "defaults", FSTAB_ONLY, "nosuid,nodev,ttl=2")])
    assert r.returncode == 0, r.stderr
    assert_serves(mnt, sim)
    assert_unmounts(mnt)


def test_mount_fuse_with_a_program_path(sim, mountpoints):
    # the older spelling names the program itself: no PATH lookup at all
    mnt = mountpoints()
    r = run(["mount", "-t", "fuse", f"{os.path.realpath(JOBFS_BIN)}#jobfs", str(mnt), "-o",
             opts(sim)])
    assert r.returncode == 0, r.stderr
    assert_serves(mnt, sim)
    assert_unmounts(mnt)


def fstab_line(sim, mnt, options):
    return f"jobfs  {mnt}  fuse.jobfs  {opts(sim, options)}  0  0\n"


def test_fstab_line_in_a_table_of_its_own(sim, jobfs_on_path, mountpoints, tmp_path):
    mnt = mountpoints()
    tab = tmp_path / "fstab"
    tab.write_text("# jobfs test\n" + fstab_line(sim, mnt, FSTAB_ONLY + ",ttl=2"))
    r = run(["mount", "--fstab", str(tab), str(mnt)])       # by its mount point
    assert r.returncode == 0, r.stderr
    assert_serves(mnt, sim)
    assert_unmounts(mnt)


def test_fstab_noauto_is_left_to_the_automounter(sim, jobfs_on_path, mountpoints, tmp_path):
    manual, auto = mountpoints("manual"), mountpoints("auto")
    tab = tmp_path / "fstab"
    tab.write_text(fstab_line(sim, manual, "noauto,_netdev") + fstab_line(sim, auto, "_netdev"))
    # `mount -a` (what boot does) mounts the auto line only
    r = run(["mount", "-a", "--fstab", str(tab)])
    assert r.returncode == 0, r.stderr
    wait_for(lambda: is_mounted(auto.path), timeout=10, what="the auto line")
    assert not is_mounted(manual.path)
    assert_serves(auto, sim)
    assert_unmounts(auto)


def test_real_etc_fstab(sim, jobfs_on_path, mountpoints):
    mnt = mountpoints(f"etc-fstab-{os.getpid()}-{time.monotonic_ns()}")
    with open("/etc/fstab", "rb") as f:
        original = f.read()
    st = os.stat("/etc/fstab")
    try:
        with open("/etc/fstab", "ab") as f:
            if original and not original.endswith(b"\n"):
                f.write(b"\n")
            f.write(fstab_line(sim, mnt, "noauto,_netdev,x-systemd.automount,ttl=2").encode())
        r = run(["mount", str(mnt)])
        assert r.returncode == 0, r.stderr
        assert_serves(mnt, sim)
        assert_unmounts(mnt)
    finally:
        with open("/etc/fstab", "wb") as f:
            f.write(original)
        os.chmod("/etc/fstab", st.st_mode & 0o7777)
        with open("/etc/fstab", "rb") as f:
            assert f.read() == original, "/etc/fstab was not restored"
