"""contrib/bash-completion/jobfs, driven the way bash drives it.

The completion reads `jobfs --help` of the binary being completed, so these
tests check that it offers exactly the options --help shows (long forms, and
the mount forms after -o), completes values (a finite set, files, the mount
point's directories) and hands back what bash expects after its '=' word
break. A fake jobfs whose --help differs is the control twin: the completion
must follow it, not a list of its own. Nothing here mounts.
"""
import os
import re
import stat
import subprocess

import pytest

JOBFS_BIN = os.environ.get("JOBFS_BIN")
SRC = os.environ.get("JOBFS_SRC") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPLETION = os.path.join(SRC, "contrib", "bash-completion", "jobfs")

pytestmark = pytest.mark.skipif(not JOBFS_BIN, reason="JOBFS_BIN is not set")

# Sets up what bash sets before calling a completion function: the line up
# to the cursor, its words (split as bash does, at blanks and at its word
# break characters), and the index of the current word.
HARNESS = r'''
source "$1"
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
COMP_WORDS=()
rest=$COMP_LINE
while [[ -n $rest ]]; do
    rest=${rest#"${rest%%[![:space:]]*}"}
    [[ -z $rest ]] && break
    w=${rest%%[[:space:]]*}
    COMP_WORDS+=("$w")
    rest=${rest#"$w"}
done
[[ $COMP_LINE =~ [[:space:]]$ ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_jobfs
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(line, binary=None, cwd=None):
    """The completions bash would offer at the end of line (a list)."""
    binary = binary or JOBFS_BIN
    env = dict(os.environ, PATH=os.path.dirname(binary) + ":" + os.environ.get("PATH", ""))
    line = line.replace("jobfs", os.path.basename(binary), 1)
    r = subprocess.run(["bash", "-c", HARNESS, "harness", COMPLETION, line], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def help_options(binary=None):
    """{name: ARG or None} for every --long option in --help."""
    out = subprocess.run([binary or JOBFS_BIN, "--help"], capture_output=True, text=True,
                         timeout=20).stdout
    return {m.group(2): m.group(4) for m in
            re.finditer(r"^ +(-[a-zA-Z], )?--([a-z][a-z0-9-]*)(=(\S+))? ", out, re.M)}


def test_long_options_are_exactly_those_of_help():
    opts = help_options()
    assert len(opts) >= 10, opts
    want = sorted(f"--{n}=" if arg else f"--{n}" for n, arg in opts.items())
    assert sorted(complete("jobfs --")) == want


def test_short_options_too():
    got = complete("jobfs -")
    assert {"-f", "-d", "-o", "-h", "-V"} <= set(got)
    assert set(complete("jobfs --")) & {"-f", "-d", "-o"} == set()


def test_mount_options_are_those_of_help_plus_libfuse():
    opts = help_options()
    want = {(n.replace("-", "_") + ("=" if arg else "")) for n, arg in opts.items()
            if n not in ("help", "version")}
    got = set(complete("jobfs -o "))
    assert want <= got
    assert got - want == {"allow_other", "allow_root", "auto_unmount", "default_permissions",
                          "max_read="}


def test_prefix_filters():
    assert sorted(complete("jobfs --poll")) == ["--poll-budget=", "--poll-interval="]
    assert complete("jobfs --poll-i") == ["--poll-interval="]
    assert complete("jobfs -o allow_other,poll_i") == ["allow_other,poll_interval="]
    assert complete("jobfs --zzz") == []


def test_file_values(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "cb.pem").write_text("x")
    # bash breaks the word at '=': the completion hands back the part after it
    assert sorted(complete(f"jobfs --cacert={tmp_path}/c")) == [f"{tmp_path}/ca.pem",
                                                                 f"{tmp_path}/cb.pem"]
    assert complete(f"jobfs --cacert {tmp_path}/ca") == [f"{tmp_path}/ca.pem"]
    assert complete(f"jobfs -o ttl=2,cacert={tmp_path}/cb") == [f"{tmp_path}/cb.pem"]
    # control: a value that is not a file gets no file names
    assert complete(f"jobfs --ttl={tmp_path}/c") == []


def test_mount_point_is_a_directory(tmp_path):
    (tmp_path / "mntdir").mkdir()
    (tmp_path / "mntfile").write_text("x")
    assert complete(f"jobfs --ttl=2 {tmp_path}/mnt") == [f"{tmp_path}/mntdir"]


def fake_jobfs(tmp_path, extra_line):
    """A jobfs whose --help is the real one plus extra_line."""
    real = subprocess.run([JOBFS_BIN, "--help"], capture_output=True, text=True, timeout=20).stdout
    help_file = tmp_path / "help.txt"
    help_file.write_text(real.replace("    -f ", extra_line + "\n    -f ", 1))
    fake = tmp_path / "bin" / "jobfs"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ncat '{help_file}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return str(fake)


def test_follows_the_binary_and_finite_values(tmp_path):
    fake = fake_jobfs(tmp_path, "    --bacalhau-api=auto|v0|v1  which API the requester speaks")
    assert "--bacalhau-api=" in complete("jobfs --", binary=fake)
    assert sorted(complete("jobfs --bacalhau-api=", binary=fake)) == ["auto", "v0", "v1"]
    assert complete("jobfs --bacalhau-api=v", binary=fake) == ["v0", "v1"]
    assert complete("jobfs --bacalhau-api ", binary=fake) == ["auto", "v0", "v1"]
    assert complete("jobfs -o bacalhau_api=a", binary=fake) == ["auto"]
    # control twin: the real binary has no such option, so nothing is offered
    if "bacalhau-api" not in help_options():
        assert "--bacalhau-api=" not in complete("jobfs --")
        assert complete("jobfs --bacalhau-api=") == []
