"""Issue 13: muse results in every form (shared/api/muse.md sections 5 and 6).

Once a run's cr is OK, one GET run fills `stdout` (returned_type stdout),
`result` (the bytes of a stdout.txt or run.zip reply) or `download_url`
(todownload); `content.zip` is GET content, fetched when it is read. Every
expectation is the simulator's ground truth: the bytes it serves for the
same request, fetched here with urllib and compared with `cmp`; zip
listings are checked with the real `unzip -l`.

The tests of content.zip, and of reading a result refused over --max-reply,
need the core's lazy files (snap_add_lazy, backend fetch_file): without
them a lazy file reads as empty.
"""
import base64
import os
import re
import urllib.request

from conftest import read, run

NAME = "sw_example"
RUN_ZIP_MEMBERS = ["ws_command.sh", "cluster_script.sh", "__WS__cmd.txt", "cluster_stderr.txt",
                   "cluster_stdout.txt", "__WS__stdout.txt", "__WS__stderr.txt", "JOB_ID",
                   "__WS__report.txt"]
FBIG = "File too large"
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
BASE = ("--poll-interval=0",)  # these tests read; nothing needs to be watched


def key_of(n):
    return f"1e5e0000-0000-4000-8000-{n:012d}"


def make_run(sim, key, **fields):
    spec = {"name": NAME, "key": key, "cr": "OK", "job_id": 2460887, **fields}
    if "stdout_b64" not in fields:
        spec.setdefault("stdout", "59.0\n")
    return sim.m("POST", "/_sim/runs", spec)


def served(sim, action, key):
    """The bytes the simulator serves for GET software/muse/ACTION/NAME/KEY/."""
    url = f"{sim.muse_url}software/muse/{action}/{NAME}/{key}/"
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()



def cmp_with(tmp_path, path, data):
    """Runs the real cmp(1) between a mount file and the bytes expected."""
    want = tmp_path / "expected"
    want.write_bytes(data)
    return run(["cmp", str(want), path])


def zip_listing(path):
    """Member names as `unzip -l` prints them."""
    r = run(["unzip", "-l", path])
    assert r.returncode == 0, r
    names = []
    for line in r.stdout.splitlines():
        m = re.fullmatch(r"\s*\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+(\S+)", line)
        if m:
            names.append(m.group(1))
    return names


def cat_fails(path, text):
    r = run(["cat", path], text=False)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0 and text in err, (r.returncode, err, len(r.stdout))


def run_gets(sim, key):
    return sim.stats("m")["by_path"].get(f"/api/software/muse/run/{NAME}/{key}/", 0)


def content_gets(sim, key):
    return sim.stats("m")["by_path"].get(f"/api/software/muse/content/{NAME}/{key}/", 0)


# --------------------------------------------------------------------------
# result: stdout.txt and run.zip

def test_result_of_stdout_txt_is_the_file(sim_factory, mount_factory, tmp_path):
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE)
    txt, raw, twin = key_of(1), key_of(2), key_of(3)
    make_run(sim, txt, returned_type="stdout.txt")
    # bytes that are not UTF-8, and a text that is JSON: still the file's bytes
    make_run(sim, raw, returned_type="stdout.txt",
             stdout_b64=base64.b64encode(b"\xff\x00bin\r\n").decode())
    make_run(sim, twin, returned_type="stdout.txt", stdout='{"info":{"stdout":"x"}}')
    for key in (txt, raw, twin):
        d = m.p("software", NAME, key)
        truth = served(sim, "run", key)
        assert cmp_with(tmp_path, os.path.join(d, "result"), truth).returncode == 0, key
        assert os.stat(os.path.join(d, "result")).st_size == len(truth)
        assert not os.path.exists(os.path.join(d, "stdout"))
    assert read(m.p("software", NAME, txt, "result")) == b"59.0\n"
    assert read(m.p("software", NAME, raw, "result")) == b"\xff\x00bin\r\n"
    # control twin: returned_type stdout gives stdout, and no result
    plain = key_of(4)
    make_run(sim, plain, returned_type="stdout")
    d = m.p("software", NAME, plain)
    assert read(os.path.join(d, "stdout")) == b"59.0\n"
    assert not os.path.exists(os.path.join(d, "result"))


def test_result_of_run_zip_is_the_zip(sim_factory, mount_factory, tmp_path):
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE)
    key = key_of(10)
    make_run(sim, key, returned_type="run.zip")
    result = m.p("software", NAME, key, "result")
    truth = served(sim, "run", key)
    assert truth[:4] == b"PK\x03\x04"
    assert cmp_with(tmp_path, result, truth).returncode == 0
    assert os.stat(result).st_size == len(truth)
    assert zip_listing(result) == RUN_ZIP_MEMBERS
    assert run(["unzip", "-p", result, "JOB_ID"]).stdout == "2460887\n"
    assert cmp_with(tmp_path, result, truth[:-1] + b"\x01").returncode != 0  # cmp does compare
    # control twin: the same run while it waits has no result, and GET run is not asked
    wait = key_of(11)
    make_run(sim, wait, returned_type="run.zip", cr="WAIT")
    sim.reset("m")
    assert read(m.p("software", NAME, wait, "cr")) == b"WAIT\n"
    assert not os.path.exists(m.p("software", NAME, wait, "result"))
    assert run_gets(sim, wait) == 0


def test_result_without_content_type_follows_the_request(sim_factory, mount_factory, tmp_path):
    """No Content-Type: the report's returned_type says it is a file."""
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE)
    key = key_of(20)
    make_run(sim, key, returned_type="stdout.txt", result_content_type="",
             stdout='{"info":{"stdout":"not this"}}')
    d = m.p("software", NAME, key)
    assert cmp_with(tmp_path, os.path.join(d, "result"), served(sim, "run", key)).returncode == 0
    assert not os.path.exists(os.path.join(d, "stdout"))


# --------------------------------------------------------------------------
# download_url

def test_download_url_when_todownload(sim_factory, mount_factory):
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE)
    key = key_of(30)
    make_run(sim, key, returned_type="stdout.txt", todownload="yes")
    d = m.p("software", NAME, key)
    line = read(os.path.join(d, "download_url")).decode()
    assert re.fullmatch(re.escape(f"{sim.muse_url}download/?key=") + r"\d{8}_\d{6}_" + UUID4 + "\n",
                        line), line
    assert not os.path.exists(os.path.join(d, "result"))
    assert not os.path.exists(os.path.join(d, "stdout"))
    with urllib.request.urlopen(line.strip(), timeout=10) as r:
        assert r.read() == b"59.0\n"  # the link serves the run's stdout.txt
    # a final run is not asked again: the link stays the one first given
    before = run_gets(sim, key)
    assert read(os.path.join(d, "download_url")).decode() == line
    assert run_gets(sim, key) == before == 1
    # control twin: todownload no gives the file itself
    twin = key_of(31)
    make_run(sim, twin, returned_type="stdout.txt", todownload="no")
    d = m.p("software", NAME, twin)
    assert read(os.path.join(d, "result")) == b"59.0\n"
    assert not os.path.exists(os.path.join(d, "download_url"))


# --------------------------------------------------------------------------
# content.zip (needs the core's lazy files)

def test_content_zip_lists_the_run_folder(sim_factory, mount_factory, tmp_path):
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE)
    done, waiting = key_of(40), key_of(41)
    make_run(sim, done, returned_type="run.zip")
    make_run(sim, waiting, cr="WAIT", stdout="half\n")
    for key in (done, waiting):
        d = m.p("software", NAME, key)
        sim.reset("m")
        assert "content.zip" in os.listdir(d)
        assert content_gets(sim, key) == 0, "listing the run fetched its content"
        zipped = os.path.join(d, "content.zip")
        # GET state has written the report by now (muse.md section 4)
        assert zip_listing(zipped) == RUN_ZIP_MEMBERS
        assert content_gets(sim, key) >= 1
        assert cmp_with(tmp_path, zipped, served(sim, "content", key)).returncode == 0
    assert run(["unzip", "-p", m.p("software", NAME, waiting, "content.zip"),
                "__WS__stdout.txt"]).stdout == "half\n"


# --------------------------------------------------------------------------
# --max-reply: refused whole, never cut

def test_result_under_max_reply_is_whole(sim_factory, mount_factory, tmp_path):
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE, "--max-reply=64K")
    key = key_of(50)
    make_run(sim, key, returned_type="run.zip", result_size=60000)
    result = m.p("software", NAME, key, "result")
    truth = served(sim, "run", key)
    assert len(truth) == 60000
    assert cmp_with(tmp_path, result, truth).returncode == 0
    assert zip_listing(result) == RUN_ZIP_MEMBERS + ["__sim__padding"]


def test_result_over_max_reply_keeps_the_run_final(sim_factory, mount_factory):
    """The state stays readable, result is listed, and the 100 kB reply is
    not asked again at every access."""
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE, "--max-reply=64K", "--ttl=0")
    key = key_of(51)
    make_run(sim, key, returned_type="run.zip", result_size=100000)
    d = m.p("software", NAME, key)
    assert read(os.path.join(d, "cr")) == b"OK\n"
    assert "result" in os.listdir(d)
    for _ in range(3):
        assert read(os.path.join(d, "state")) == b"ENDED_OK\n"
    assert run_gets(sim, key) == 1
    # control twin: a failure that is not the cap leaves the run live, so the
    # next access (--ttl=0: the lookup of cr already) asks again, for the zip
    flaky = key_of(52)
    make_run(sim, flaky, returned_type="run.zip")
    sim.fault("m", mode="status", status=503, paths=[f"/run/{NAME}/{flaky}/"], count=1)
    assert read(m.p("software", NAME, flaky, "cr")) == b"OK\n"
    assert read(m.p("software", NAME, flaky, "result"))[:4] == b"PK\x03\x04"
    assert run_gets(sim, flaky) >= 2


def test_result_over_max_reply_reads_efbig(sim_factory, mount_factory):
    """Needs the core's lazy files: the refused result is read through fetch_file."""
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE, "--max-reply=64K")
    big, small = key_of(53), key_of(54)
    make_run(sim, big, returned_type="stdout.txt", result_size=100000)
    make_run(sim, small, returned_type="stdout.txt", result_size=60000)
    cat_fails(m.p("software", NAME, big, "result"), FBIG)
    assert read(m.p("software", NAME, big, "cr")) == b"OK\n"
    # control twin: under the cap, the whole file
    assert read(m.p("software", NAME, small, "result")) == served(sim, "run", small)
    assert m.alive()


def test_content_zip_over_max_reply_is_efbig(sim_factory, mount_factory):
    """Needs the core's lazy files."""
    sim = sim_factory("--scenario", "seed")
    m = mount_factory(sim, *BASE, "--max-reply=64K")
    big, small = key_of(55), key_of(56)
    make_run(sim, big, cr="NOK", result_size=100000)
    make_run(sim, small, cr="NOK", result_size=60000)
    cat_fails(m.p("software", NAME, big, "content.zip"), FBIG)
    assert read(m.p("software", NAME, big, "cr")) == b"NOK\n"
    # control twin: under the cap, unzip lists it
    assert zip_listing(m.p("software", NAME, small, "content.zip")) == \
        RUN_ZIP_MEMBERS + ["__sim__padding"]
    assert m.alive()
