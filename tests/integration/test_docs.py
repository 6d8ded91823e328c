"""Docs stay in sync: `jobfs --help`, the option parser and man/jobfs.1.

Like curl's tests/test1139.pl and systemd's tools/check-help.sh: the option
table in src/options.c drives both the parser and --help, and this file makes
sure the hand-written man page lists the same options (with their mount form
and their default) and an errno table that the code really produces.

Nothing here mounts on purpose. Every command is given either a mount point
that does not exist or an option that must be refused first; if a command
does mount by mistake, the test unmounts it (fusermount3 -u -z) and fails.

Environment: JOBFS_BIN (the binary; the tests skip without it) and JOBFS_SRC
(the source tree: meson.build, src/, man/; defaults to this checkout).
"""
import errno
import os
import re
import subprocess

import pytest

JOBFS_BIN = os.environ.get("JOBFS_BIN")
SRC = os.environ.get("JOBFS_SRC") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN = os.path.join(SRC, "man", "jobfs.1")
TIMEOUT = 20            # s per command: parsing must answer at once
NOWHERE = "/nonexistent/jobfs-docs-test"

pytestmark = pytest.mark.skipif(
    not JOBFS_BIN,
    reason="JOBFS_BIN is not set: point it at a built jobfs, e.g. JOBFS_BIN=build/jobfs")

# --help and --version are spelled on one line with -h/-V and are not in the
# option table: they have no mount form.
NO_MOUNT_FORM = {"help", "version"}


def jobfs(*args):
    """Runs the binary with a deadline; returns the CompletedProcess."""
    return subprocess.run([JOBFS_BIN, *args], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def mounted(path):
    """Whether path is a mount point now (from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # field 5 is the mount point, with space, tab, newline and '\' octal-escaped
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if mp == path:
                return True
    return False


def run_unmounting(mountpoint, *args):
    """Runs jobfs with a real mount point that it must not mount; cleans up if it did."""
    try:
        r = jobfs(*args)
    finally:
        was_mounted = mounted(mountpoint)
        if was_mounted:
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True,
                           timeout=TIMEOUT)
    assert not was_mounted, f"jobfs {' '.join(args)} mounted {mountpoint}"
    return r


def one_line(stderr):
    lines = stderr.strip("\n").splitlines()
    assert len(lines) == 1, f"want one line on stderr, got {len(lines)}: {stderr!r}"
    return lines[0]


# ---- parsing the sources of truth -------------------------------------------

def help_text():
    r = jobfs("--help")
    assert r.returncode == 0, r.stderr
    return r.stdout


def help_options():
    """{name: (takes_value, help line)} for every --long option in --help."""
    opts = {}
    for line in help_text().splitlines():
        for m in re.finditer(r"--([a-z][a-z0-9-]*)(=\S+)?", line):
            opts[m.group(1)] = (bool(m.group(2)), line.strip())
    return opts


def collected_options():
    """help_options() for parametrize, at collection time: {} when the binary is
    missing or broken (then the module is skipped, or test_help_lists_options
    fails with the reason)."""
    if not JOBFS_BIN:
        return {}
    try:
        return help_options()
    except (OSError, subprocess.SubprocessError, AssertionError):
        return {}


def value_options():
    return sorted(n for n, (has_value, _) in collected_options().items()
                  if has_value and n not in NO_MOUNT_FORM)


def flag_options():
    return sorted(n for n, (has_value, _) in collected_options().items()
                  if not has_value and n not in NO_MOUNT_FORM)


def man_source():
    with open(MAN, encoding="utf-8") as f:
        return f.read()


def man_section(name):
    """The roff source of one .SH section (up to the next .SH)."""
    m = re.search(r'^\.SH\s+"?' + re.escape(name) + r'"?\s*$(.*?)(?=^\.SH\s|\Z)',
                  man_source(), re.M | re.S)
    assert m, f"man/jobfs.1 has no .SH {name} section"
    return m.group(1)


def plain(roff):
    """Roff source to roughly what man prints: escapes resolved, requests dropped."""
    out = []
    for line in roff.splitlines():
        if line.startswith(".\\\""):
            continue
        if line.startswith("."):
            parts = line.split(None, 1)
            line = parts[1] if len(parts) > 1 else ""
            line = line.replace('"', "")
        out.append(line)
    text = "\n".join(out)
    text = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", text)   # font changes
    text = text.replace("\\-", "-").replace("\\~", " ").replace("\\&", "").replace("\\e", "\\")
    return text


def man_options():
    """Long option names in the OPTIONS section, written \\-\\-name or --name."""
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", plain(man_section("OPTIONS"))))


def man_option_entries():
    """{name: plain text of its .TP entry} for each option tag in OPTIONS."""
    entries = {}
    for chunk in re.split(r"^\.TP[^\n]*\n", man_section("OPTIONS"), flags=re.M)[1:]:
        tag, _, body = chunk.partition("\n")
        for name in re.findall(r"--([a-z][a-z0-9-]*)", tag.replace("\\-", "-")):
            entries[name] = plain(tag + "\n" + body)
    return entries


def meson_version():
    with open(os.path.join(SRC, "meson.build")) as f:
        m = re.search(r"project\s*\((.*?)\)", f.read(), re.S)
    assert m, "no project() in meson.build"
    v = re.search(r"version\s*:\s*'([^']+)'", m.group(1))
    assert v, "no version in meson.build's project()"
    return v.group(1)


def source_errnos():
    """Every E-constant named in src/*.c."""
    names = set()
    src = os.path.join(SRC, "src")
    for fn in os.listdir(src):
        if fn.endswith(".c"):
            with open(os.path.join(src, fn)) as f:
                names |= set(re.findall(r"\b(E[A-Z0-9]+)\b", f.read()))
    return names


def man_errnos():
    """Errno names mentioned in the ERRORS section."""
    words = set(re.findall(r"\b(E[A-Z0-9]{2,})\b", man_section("ERRORS")))
    return {w for w in words if hasattr(errno, w)}


def http_table_errnos():
    """The errnos returned by http_curl_errno and http_status_errno (src/http.c)."""
    with open(os.path.join(SRC, "src", "http.c")) as f:
        code = f.read()
    names = set()
    for fn in ("http_curl_errno", "http_status_errno"):
        m = re.search(r"^\w[^\n]*\b" + fn + r"\([^)]*\)\s*\{(.*?)^\}", code, re.M | re.S)
        assert m, f"no function {fn} in src/http.c"
        names |= set(re.findall(r"-\s*(E[A-Z0-9]+)\b", m.group(1)))
    assert names, "found no errno in the http.c tables"
    return names


# ---- (a) --help and the man page list the same options ----------------------

def test_help_lists_options():
    opts = help_options()
    assert {"help", "version"} <= set(opts)
    assert len(opts) > len(NO_MOUNT_FORM), "no option found in --help"


def test_man_options_match_help():
    in_help, in_man = set(help_options()), man_options()
    assert in_help - in_man == set(), "in --help but not in man/jobfs.1 OPTIONS"
    assert in_man - in_help == set(), "in man/jobfs.1 OPTIONS but not in --help"


def test_man_shows_mount_form_and_default():
    entries = man_option_entries()
    for name, (has_value, line) in help_options().items():
        if name in NO_MOUNT_FORM:
            continue
        assert name in entries, f"--{name} has no .TP entry in man/jobfs.1 OPTIONS"
        mount = name.replace("-", "_")
        assert re.search(r"-o\s+" + re.escape(mount) + (r"=" if has_value else r"\b"),
                         entries[name]), f"man entry of --{name} lacks '-o {mount}'"
        m = re.search(r"\(default:?\s+([^)]+)\)", line)
        if m:
            assert m.group(1) in entries[name], \
                f"--help says --{name} defaults to {m.group(1)!r}; the man page does not"


# ---- (b) every documented option is known to the parser ---------------------

@pytest.mark.parametrize("name", value_options())
def test_parser_knows_value_option(name):
    r = jobfs(f"--{name}=x", NOWHERE)
    assert r.returncode == 2
    assert "unknown option" not in r.stderr, r.stderr
    # the positive proof: an empty value is judged by jobfs, naming the option
    r = jobfs(f"--{name}=", NOWHERE)
    assert r.returncode == 2
    assert "unknown option" not in r.stderr and name in r.stderr and "needs a value" in r.stderr, \
        r.stderr


@pytest.mark.parametrize("name", value_options())
def test_parser_knows_value_mount_option(name):
    mount = name.replace("-", "_")
    r = jobfs("-o", f"{mount}=x", NOWHERE)
    assert r.returncode == 2
    assert "unknown option" not in r.stderr, r.stderr
    # an -o option jobfs did not know would go to libfuse unjudged
    r = jobfs("-o", f"{mount}=", NOWHERE)
    assert r.returncode == 2
    assert name in r.stderr and "needs a value" in r.stderr, r.stderr


@pytest.mark.parametrize("name", flag_options())
def test_parser_knows_flag(name):
    r = jobfs(f"--{name}", NOWHERE)
    assert r.returncode == 2
    assert "unknown option" not in r.stderr, r.stderr
    # the flag itself was fine: the one complaint is about the mount point
    assert NOWHERE in r.stderr and name not in r.stderr, r.stderr
    mount = name.replace("-", "_")
    r = jobfs("-o", mount, NOWHERE)
    assert r.returncode == 2
    assert "unknown option" not in r.stderr, r.stderr
    assert NOWHERE in r.stderr and name not in r.stderr, r.stderr
    r = jobfs("-o", f"{mount}=x", NOWHERE)
    assert r.returncode == 2
    assert name in r.stderr and "takes no value" in r.stderr, r.stderr


def test_parser_accepts_underscore_in_value():
    r = jobfs("--client-id=my_id", NOWHERE)
    assert "unknown option" not in r.stderr, r.stderr


# ---- (c) an unknown option ---------------------------------------------------

@pytest.mark.parametrize("arg", ["--no-such-option", "--no-such-option=1", "--ttl_", "-Z"])
def test_unknown_option(tmp_path, arg):
    r = run_unmounting(tmp_path, arg, str(tmp_path))
    assert r.returncode == 2
    assert "unknown option" in one_line(r.stderr)
    assert r.stdout == ""


def test_unknown_mount_option_goes_to_libfuse(tmp_path):
    # not ours: passed on to libfuse, which refuses it before anything is mounted
    r = run_unmounting(tmp_path, "-o", "no_such_option", str(tmp_path))
    assert r.returncode == 2
    assert "no_such_option" in r.stderr, r.stderr


# ---- (d) --help and --version --------------------------------------------------

@pytest.mark.parametrize("arg", ["--help", "-h"])
def test_help(arg):
    r = jobfs(arg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: jobfs"), r.stdout
    assert "jobfs(1)" in r.stdout
    assert r.stderr == ""


@pytest.mark.parametrize("arg", ["-V", "--version"])
def test_version(arg):
    r = jobfs(arg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["jobfs", meson_version()], r.stdout


def test_man_page_version():
    th = re.search(r"^\.TH\s+(.*)$", man_source(), re.M)
    assert th, "man/jobfs.1 has no .TH line"
    assert f"jobfs {meson_version()}" in th.group(1), \
        f".TH does not name jobfs {meson_version()} (meson.build): {th.group(1)}"


# ---- (e) bad values: one line, exit 2, nothing mounted -----------------------

@pytest.mark.parametrize("args, what", [
    (["--bacalhau-url=ftp://x"], "URL"),
    (["--muse-url=ftp://x"], "URL"),
    (["-o", "bacalhau_url=ftp://x"], "URL"),
    (["--ttl=abc"], "abc"),
    (["-o", "ttl=abc"], "abc"),
    (["--ttl", "abc"], "abc"),
    (["--timeout=0"], "timeout"),
    (["--max-reply=12Q"], "max-reply"),
    (["--slurm-url=ftp://x"], "URL"),
    (["--slurm-api=v0.0.39"], "slurm-api"),
    (["-o", "slurm_api=latest"], "slurm-api"),
])
def test_bad_value(tmp_path, args, what):
    r = run_unmounting(tmp_path, *args, str(tmp_path))
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert what in line and "unknown option" not in line, line
    assert r.stdout == ""


# ---- (f) the ERRORS section names errnos the code produces --------------------

def test_man_errors_exist_in_source():
    in_man = man_errnos()
    assert {"ENOENT", "ETIMEDOUT", "EIO", "EROFS"} <= in_man, in_man
    missing = in_man - source_errnos()
    assert not missing, f"man/jobfs.1 ERRORS names errnos no src/*.c uses: {sorted(missing)}"


def test_http_errno_table_is_documented():
    missing = http_table_errnos() - man_errnos()
    assert not missing, \
        f"src/http.c maps to errnos that man/jobfs.1 ERRORS does not explain: {sorted(missing)}"
