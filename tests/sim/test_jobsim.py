"""Tests of jobsim, the bundled simulators of the Bacalhau and muse APIs.

Each test starts its own simulator on ports the kernel picks and kills only
that process, by pid, even when the test fails.  Expected bytes are written
out here from the API notes (shared/api/*.md) and the seeds, not taken from
the simulator.

Run: /usr/bin/python3 -m pytest -q tests/sim/test_jobsim.py
"""

import base64
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zipfile

import pytest

JOBSIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jobsim.py")
DEADLINE = 10  # seconds: generous bound for anything that should take ~0.1 s

SEED_CLIENT = "ac13188e93c97a9c2e7cf8e86c7313156a73436036f30da1ececc2ce79f9ea51"
SEED_JOB = "9304c616-291f-41ad-b862-54e133c0149e"
RUNNING_JOB = "b2c3d4e5-0000-4000-8000-000000000002"
OK_KEY = "58ae6cea-df31-4059-9466-b817c337985d"
WAIT_KEY = "11111111-1111-4111-8111-111111111111"
NOK_KEY = "22222222-2222-4222-8222-222222222222"
TEXT_PLAIN = "text/plain; charset=utf-8"

# The seed (seeds/bacalhau-states-sdk.md) as Go's json.Encoder writes it.
SEED_STATES_BODY = (
    b'{"state":{"Nodes":{'
    b'"QmSyJ8VUd4YSPwZFJSJsHmmmmg7sd4BAc2yHY73nisJo86":{"Shards":{"0":{'
    b'"NodeId":"QmSyJ8VUd4YSPwZFJSJsHmmmmg7sd4BAc2yHY73nisJo86","State":"Cancelled",'
    b'"VerificationResult":{},"PublishedResults":{}}}},'
    b'"QmYgxZiySj3MRkwLSL4X2MF5F9f2PMhAE3LV49XkfNL1o3":{"Shards":{"0":{'
    b'"NodeId":"QmYgxZiySj3MRkwLSL4X2MF5F9f2PMhAE3LV49XkfNL1o3","State":"Cancelled",'
    b'"VerificationResult":{},"PublishedResults":{}}}},'
    b'"QmdZQ7ZbhnvWY1J12XYKGHApJ6aufKyLNSvf8jZBrBaAVL":{"Shards":{"0":{'
    b'"NodeId":"QmdZQ7ZbhnvWY1J12XYKGHApJ6aufKyLNSvf8jZBrBaAVL","State":"Completed",'
    b'"Status":"Got results proposal of length: 0",'
    b'"VerificationResult":{"Complete":true,"Result":true},'
    b'"PublishedResults":{"StorageSource":"IPFS",'
    b'"Name":"job-9304c616-291f-41ad-b862-54e133c0149e-shard-0-host-'
    b'QmdZQ7ZbhnvWY1J12XYKGHApJ6aufKyLNSvf8jZBrBaAVL",'
    b'"CID":"QmTVmC7JBD2ES2qGPqBNVWnX1KeEPNrPGb7rJ8cpFgtefe"},'
    b'"RunOutput":{"stdout":"Thu Nov 17 13:32:55 UTC 2022\\n","stdouttruncated":false,'
    b'"stderr":"","stderrtruncated":false,"exitCode":0,"runnerError":""}}}}}}}\n')

# The spec of bacalhau.md section 7, the same for every listed job.
LIST_SPEC = (
    b'"Spec":{"Engine":"Docker","Verifier":"Noop","Publisher":"Estuary",'
    b'"Docker":{"Image":"ubuntu","Entrypoint":["date"]},"Language":{"JobContext":{}},'
    b'"Wasm":{},"Resources":{"GPU":""},"Timeout":1800,'
    b'"outputs":[{"StorageSource":"IPFS","Name":"outputs","path":"/outputs"}],'
    b'"Sharding":{"BatchSize":1,"GlobPatternBasePath":"/inputs"},'
    b'"ExecutionPlan":{"ShardsTotal":1},"Deal":{"Concurrency":1}}')

# muse.md Example A; BASE is the simulator's own http://127.0.0.1:PORT/api/.
EXAMPLE_A_REPORT = (
    '{"request":{"cmd":"python /add.py 4 5","cmd_option":"","ordered_filename_list":[],'
    '"returned_type":"stdout","todownload":false,"sbatch_list":[],"module_list":[]},'
    '"rsrc":{"identity":"muse"},"process":{"jobname":"114-ws-sw_example","job_id":2459394,'
    '"latest_cr":"ENDED_OK","latest_state":"COMPLETED"},"name":"sw_example","cr":"OK"}')
EXAMPLE_A_STATE = (
    '{"info":{"report":' + EXAMPLE_A_REPORT + '},'
    '"msg":"End of job. You can now get results by GET BASEsoftware/muse/run/sw_example/'
    + OK_KEY + '/ request or ask for content (to investigate) by GET BASEsoftware/muse/'
    'content/sw_example/' + OK_KEY + '/ request.",'
    '"url":"BASEsoftware/muse/run/sw_example/' + OK_KEY + '/"}')


class Sim:
    """One jobsim process and small HTTP helpers to talk to it."""

    def __init__(self, workdir, args):
        workdir.mkdir()
        self.ports_file = workdir / "ports.json"
        self.stdout_path, self.stderr_path = workdir / "stdout", workdir / "stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, JOBSIM, "--ports-file", str(self.ports_file), *args],
                stdout=out, stderr=err)
        deadline = time.monotonic() + DEADLINE
        while not self.ports_file.exists():
            if self.proc.poll() is not None:
                pytest.fail(f"jobsim exited {self.proc.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                pytest.fail("jobsim did not write its ports file in time")
            time.sleep(0.02)
        self.ports = json.loads(self.ports_file.read_text())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(DEADLINE)

    def stderr(self):
        return self.stderr_path.read_text()

    def connect(self, api):
        return http.client.HTTPConnection("127.0.0.1", self.ports[api], timeout=DEADLINE)

    def request(self, api, method, path, body=None, headers=None):
        """(status, headers, body) of one request on a fresh connection."""
        conn = self.connect(api)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def states(self, job_id, path="/requester/states", method="POST"):
        body = json.dumps({"client_id": SEED_CLIENT, "job_id": job_id})
        return self.request("bacalhau", method, path, body)

    def state_of(self, job_id):
        status, _, body = self.states(job_id)
        assert status == 200, body
        return json.loads(body)["state"]

    def list(self, query):
        status, _, body = self.request("bacalhau", "POST", "/requester/list", json.dumps(query))
        assert status == 200, body
        return json.loads(body)["jobs"]

    def listed_ids(self, query):
        return [job["Metadata"]["ID"] for job in self.list(query)]

    def muse(self, path):
        return self.request("muse", "GET", path)

    def control(self, api, method, path, value=None, expect=200):
        body = None if value is None else json.dumps(value)
        status, _, data = self.request(api, method, "/_sim/" + path, body)
        assert status == expect, data
        return json.loads(data)

    def base(self):
        return f"http://127.0.0.1:{self.ports['muse']}/api/"


@pytest.fixture
def start(tmp_path):
    """start(*args) runs a simulator; all are killed at teardown."""
    sims = []

    def _start(*args):
        sims.append(Sim(tmp_path / f"sim{len(sims)}", args))
        return sims[-1]
    yield _start
    for sim in sims:
        sim.stop()


@pytest.fixture
def sim(start):
    return start()


def wait_for(predicate, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------- start and stop

def test_announces_ports_on_stdout_and_in_ports_file(sim):
    assert set(sim.ports) == {"bacalhau", "muse", "pid"}
    assert sim.ports["pid"] == sim.proc.pid
    assert json.loads(sim.stdout_path.read_text()) == sim.ports
    assert not list(sim.ports_file.parent.glob("ports.json.tmp*"))


def test_sigterm_exits_zero_promptly(sim):
    sim.proc.send_signal(signal.SIGTERM)
    assert sim.proc.wait(DEADLINE) == 0
    assert sim.stderr() == ""


# ---------------------------------------------------------------- Bacalhau states

def test_states_of_seed_job_is_byte_exact(sim):
    status, headers, body = sim.states(SEED_JOB)
    assert status == 200
    assert body == SEED_STATES_BODY
    assert headers["Content-Type"] == TEXT_PLAIN
    assert headers["Content-Length"] == str(len(SEED_STATES_BODY))
    assert headers["X-Bacalhau-Client-ID"] == SEED_CLIENT
    assert headers["X-Bacalhau-Job-ID"] == SEED_JOB
    assert "Server" not in headers


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_states_takes_any_method(sim, method):
    assert sim.states(SEED_JOB, method=method)[2] == SEED_STATES_BODY


def test_states_of_running_job(sim):
    node = "QmRunner1111111111111111111111111111111111111a"
    shard = sim.state_of(RUNNING_JOB)["Nodes"][node]["Shards"]["0"]
    assert shard["State"] == "Running"
    assert shard["RunOutput"]["stdout"] == "step 1\n"


@pytest.mark.parametrize("body, message", [
    (b"", "EOF"),
    (b" \n", "EOF"),
    (b"x", "invalid character 'x' looking for beginning of value"),
    (b'{"job_id":', "unexpected EOF"),
    (b'{"job_id" 1}', "invalid character '1' after object key"),
    (b'{"job_id":1}',
     "json: cannot unmarshal number into Go struct field stateRequest.job_id of type string"),
    (b"[]", "json: cannot unmarshal array into Go value of type publicapi.stateRequest"),
])
def test_states_bad_body_is_400_with_go_decoder_text(sim, body, message):
    status, headers, data = sim.request("bacalhau", "POST", "/requester/states", body)
    assert (status, data) == (400, message.encode() + b"\n")
    assert headers["Content-Type"] == TEXT_PLAIN
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_states_decodes_like_go(sim):
    # Only the first JSON value counts, and field names match case-insensitively.
    body = json.dumps({"JOB_ID": SEED_JOB}) + " trailing junk"
    assert sim.request("bacalhau", "POST", "/requester/states", body)[2] == SEED_STATES_BODY


def test_states_of_unknown_job_is_500_text(sim):
    status, headers, body = sim.states("no-such-job")
    assert (status, body) == (500, b"Job not found. ID: no-such-job\n")
    assert headers["Content-Type"] == TEXT_PLAIN
    assert headers["X-Bacalhau-Job-ID"] == "no-such-job"


@pytest.mark.parametrize("era, served, missing", [
    ("e2", "/requester/states", "/states"),
    ("e1", "/states", "/requester/states"),
])
def test_era_decides_the_paths(start, era, served, missing):
    sim = start("--bacalhau-era", era)
    assert sim.states(SEED_JOB, path=served)[2] == SEED_STATES_BODY
    for path in (missing, served + "/", "/requester/healthz"):
        status, headers, body = sim.states(SEED_JOB, path=path)
        assert (status, body) == (404, b"404 page not found\n")
        assert headers["Content-Type"] == TEXT_PLAIN
        assert headers["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------- Bacalhau list

def test_list_filters_by_client_unless_return_all(sim):
    sim.control("bacalhau", "POST", "jobs", {"id": "other-job-0001", "client_id": "other"})
    ids = sim.listed_ids
    assert ids({"client_id": SEED_CLIENT}) == [SEED_JOB, RUNNING_JOB]
    assert ids({"client_id": "other"}) == ["other-job-0001"]
    assert ids({"client_id": "other", "return_all": True}) == [SEED_JOB, RUNNING_JOB,
                                                               "other-job-0001"]
    assert len(ids({})) == 3
    assert ids({"client_id": "nobody"}) == []


def test_list_sorts_and_limits(sim):
    new = "00aa0000-0000-4000-8000-000000000000"  # created last, first by id
    sim.control("bacalhau", "POST", "jobs", {"id": new})
    ids = sim.listed_ids
    assert ids({}) == [SEED_JOB, RUNNING_JOB, new]
    assert ids({"sort_by": "id"}) == [new, SEED_JOB, RUNNING_JOB]
    assert ids({"sort_by": "id", "sort_reverse": True}) == [RUNNING_JOB, SEED_JOB, new]
    assert ids({"sort_by": "created_at", "sort_reverse": True}) == [new, RUNNING_JOB, SEED_JOB]
    assert ids({"sort_by": "created_at", "max_jobs": 2, "sort_reverse": True}) == [
        RUNNING_JOB, SEED_JOB]
    assert ids({"sort_by": "nonsense", "sort_reverse": True}) == [SEED_JOB, RUNNING_JOB, new]
    assert ids({"include_tags": ["any-tag"]}) == []


def test_list_by_id_exact_or_short(sim):
    assert sim.listed_ids({"id": SEED_JOB}) == [SEED_JOB]
    assert sim.listed_ids({"id": SEED_JOB[:8]}) == [SEED_JOB]
    for ref in (SEED_JOB[:7], SEED_JOB[:9], "nope-nope-nope"):
        status, headers, body = sim.request("bacalhau", "POST", "/requester/list",
                                            json.dumps({"id": ref}))
        message = f"Job not found. ID: {ref}"
        assert status == 400
        assert headers["Content-Type"] == TEXT_PLAIN
        assert json.loads(body) == {"Code": "error-job-not-found", "Message": message,
                                    "Details": {"id": ref}, "Err": message}
        assert body.startswith(b'{"Code":') and body.endswith(b"}\n")


def test_list_job_has_v0318_shape(sim):
    status, headers, body = sim.request("bacalhau", "POST", "/requester/list",
                                        json.dumps({"id": SEED_JOB}))
    assert headers["Content-Type"] == TEXT_PLAIN
    assert body.startswith(
        b'{"jobs":[{"APIVersion":"V1beta1","Metadata":{"ID":"' + SEED_JOB.encode()
        + b'","CreatedAt":"2022-11-17T13:32:55.33837275Z","ClientID":"' + SEED_CLIENT.encode()
        + b'"},' + LIST_SPEC + b',"Status":{"JobState":' + SEED_STATES_BODY[9:-2]
        + b',"Requester":{"RequesterNodeID":"QmXaXu9N5GNetatsvwnTfQqNtSeKAD6uCmarbh3LMRYAcF",'
        b'"RequesterPublicKey":"CAASpgIw')
    assert body.endswith(b'"}}}]}\n')
    key = json.loads(body)["jobs"][0]["Status"]["Requester"]["RequesterPublicKey"]
    assert len(base64.b64decode(key)) == 299  # protobuf-wrapped RSA-2048 key


def test_bulk_jobs_list_quickly(start):
    sim = start("--bulk-jobs", "100000", "--client-id", "bulk")
    began = time.monotonic()
    status, headers, body = sim.request("bacalhau", "POST", "/requester/list",
                                        json.dumps({"client_id": "bulk"}))
    assert time.monotonic() - began < 8
    assert status == 200
    assert int(headers["Content-Length"]) == len(body)
    assert body.count(b'"APIVersion"') == 100000
    assert body.startswith(b'{"jobs":[{"APIVersion":"V1beta1","Metadata":{"ID":'
                           b'"00000000-0000-4000-8000-000000000000",'
                           b'"CreatedAt":"2023-01-01T00:00:00Z","ClientID":"bulk"}')
    last = body[body.rindex(b'{"APIVersion"'):-3]
    assert json.loads(last)["Metadata"]["ID"] == "00000000-0000-4000-8000-000000099999"
    state = sim.state_of("00000000-0000-4000-8000-000000000042")
    [node] = state["Nodes"].values()
    assert node["Shards"]["0"]["State"] == "Completed"
    assert node["Shards"]["0"]["RunOutput"]["stdout"] == "job 42\n"


# ---------------------------------------------------------------- muse API

def test_muse_software_list(sim):
    status, headers, body = sim.muse("/api/software/list/")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert body.startswith(
        b'[{"name":"sw_example","info":{"sw":{"desc":"software example (addition, in python '
        b'code)","shortname":"sw_example","urls":{"language":"https://www.python.org",'
        b'"sw_example documentation":"http://127.0.0.1/softwares/sw_example/home.html"},'
        b'"keywords":["addition","python","example"]}}}')
    assert [entry["name"] for entry in json.loads(body)] == ["sw_example", "sw_other"]
    assert sim.muse("/api/software/list")[2] == body


@pytest.mark.parametrize("slash", ["/", ""])
def test_muse_state_ok_is_example_a(sim, slash):
    status, headers, body = sim.muse(f"/api/software/muse/state/sw_example/{OK_KEY}{slash}")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert body.decode() == EXAMPLE_A_STATE.replace("BASE", sim.base())


def test_muse_state_wait_and_nok(sim):
    state_url = f"{sim.base()}software/muse/state/sw_example/{WAIT_KEY}/"
    wait = json.loads(sim.muse(f"/api/software/muse/state/sw_example/{WAIT_KEY}/")[2])
    assert wait["info"]["report"]["cr"] == "WAIT"
    assert wait["info"]["report"]["process"] == {
        "jobname": "115-ws-sw_example", "job_id": 2459395,
        "latest_cr": "IN_PROGRESS", "latest_state": "RUNNING"}
    assert wait["msg"] == f"Job is running. Send again GET {state_url} request to follow it."
    assert wait["url"] == state_url
    nok = json.loads(sim.muse(f"/api/software/muse/state/sw_example/{NOK_KEY}")[2])
    content_url = f"{sim.base()}software/muse/content/sw_example/{NOK_KEY}/"
    assert nok["info"]["report"]["process"]["latest_cr"] == "ENDED_NOK"
    assert nok["url"] == content_url and content_url in nok["msg"]


def test_muse_run_gives_stdout_only_when_ok(sim):
    status, _, body = sim.muse(f"/api/software/muse/run/sw_example/{OK_KEY}/")
    assert status == 200
    assert body.decode() == '{"info":{"stdout":"9.0\\n","report":' + EXAMPLE_A_REPORT + "}}"
    for key in (WAIT_KEY, NOK_KEY):
        status, headers, body = sim.muse(f"/api/software/muse/run/sw_example/{key}")
        assert (status, headers["Content-Type"]) == (400, "application/json")
        assert json.loads(body)["type"] == "NotReady"


@pytest.mark.parametrize("path, error", [
    (f"/api/software/muse/state/nosuch/{OK_KEY}/", "Unknown software 'nosuch'"),
    ("/api/software/muse/state/sw_example/nokey/",
     "Unknown key 'nokey' for software 'sw_example'"),
    (f"/api/software/muse/run/sw_other/{OK_KEY}/",
     f"Unknown key '{OK_KEY}' for software 'sw_other'"),
    ("/api/software/muse/states/sw_example/x/",
     "Unknown resource '/api/software/muse/states/sw_example/x/'"),
])
def test_muse_unknown_is_404_error_json(sim, path, error):
    status, headers, body = sim.muse(path)
    assert (status, headers["Content-Type"]) == (404, "application/json")
    value = json.loads(body)
    assert list(value) == ["error", "more", "type"]
    assert (value["error"], value["type"]) == (error, "NotFound")


def test_muse_outside_api_is_404_html(sim):
    status, headers, body = sim.muse("/software/list/")
    assert (status, headers["Content-Type"]) == (404, "text/html; charset=utf-8")
    assert b"<h1>Not Found</h1>" in body


# ---------------------------------------------------------------- muse results (muse.md 5, 6)

RESULT_KEY = "33333333-3333-4333-8333-333333333333"
RUN_ZIP_MEMBERS = ["ws_command.sh", "cluster_script.sh", "__WS__cmd.txt", "cluster_stderr.txt",
                   "cluster_stdout.txt", "__WS__stdout.txt", "__WS__stderr.txt", "JOB_ID",
                   "__WS__report.txt"]
CONTENT_MEMBERS = RUN_ZIP_MEMBERS[:-1]  # right after submission: no report yet
DOWNLOAD_KEY = re.compile(r"[0-9]{8}_[0-9]{6}_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                          r"[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def make_result_run(sim, **fields):
    spec = {"name": "sw_example", "key": RESULT_KEY, "cr": "OK", "job_id": 2460887,
            "stdout": "59.0\n", **fields}
    return sim.control("muse", "POST", "runs", spec)


def result_path(action, key=RESULT_KEY):
    return f"/api/software/muse/{action}/sw_example/{key}/"


def zip_of(body):
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None  # every member's CRC checks
    return archive


def test_muse_run_stdout_txt_is_the_exact_file(sim):
    make_result_run(sim, returned_type="stdout.txt")
    status, headers, body = sim.muse(result_path("run"))
    assert (status, body) == (200, b"59.0\n")
    assert headers["Content-Type"] == "text/plain"
    assert headers["Content-Disposition"] == 'attachment; filename="stdout.txt"'
    assert headers["Content-Length"] == "5"
    raw = b"\xff\x00bin\r\n"  # not UTF-8: the file keeps the bytes
    sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}",
                {"stdout_b64": base64.b64encode(raw).decode()})
    assert sim.muse(result_path("run"))[2] == raw
    # control twin: returned_type stdout is JSON, where the bytes become text
    sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}", {"returned_type": "stdout"})
    status, headers, body = sim.muse(result_path("run"))
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(body)["info"]["stdout"] == "\ufffd\x00bin\r\n"


def test_muse_run_zip_holds_the_run_folder(sim):
    made = make_result_run(sim, returned_type="run.zip")
    status, headers, body = sim.muse(result_path("run"))
    assert (status, headers["Content-Type"]) == (200, "application/zip")
    assert headers["Content-Disposition"] == 'attachment; filename="run.zip"'
    assert body[:4] == b"PK\x03\x04" and headers["Content-Length"] == str(len(body))
    archive = zip_of(body)
    assert archive.namelist() == RUN_ZIP_MEMBERS  # flat, in the docs' order
    assert archive.read("__WS__stdout.txt") == b"59.0\n"
    assert archive.read("JOB_ID") == b"2460887\n"
    assert archive.read("cluster_stdout.txt") == b"Submitted batch job 2460887\n"
    assert archive.read("cluster_stderr.txt") == b"" and archive.read("__WS__stderr.txt") == b""
    assert archive.read("ws_command.sh") == b"#!/bin/bash\ncd /WS\nPATH=/WS:$PATH\npython /add.py 4 5\n"
    script = archive.read("cluster_script.sh").decode()
    assert f"--job-name={made['jobname']} " in script and "echo $SLURM_JOB_ID > JOB_ID" in script
    assert re.fullmatch(r"cd (\S+/run); sbatch -e \1/__WS__stderr\.txt -o \1/__WS__stdout\.txt "
                        r"\1/cluster_script\.sh", archive.read("__WS__cmd.txt").decode())
    report = json.loads(archive.read("__WS__report.txt"))
    assert list(report) == ["request", "rsrc", "process", "name", "cr"]
    assert (report["cr"], report["request"]["returned_type"]) == ("OK", "run.zip")
    assert {i.date_time for i in archive.infolist()} == {(2021, 1, 19, 13, 6, 2)}
    assert sim.muse(result_path("run"))[2] == body  # fixed dates: the same bytes again


def test_muse_content_zip_any_time_report_once_written(sim):
    key = "77777777-7777-4777-8777-777777777777"
    sim.control("muse", "POST", "runs", {"name": "sw_example", "key": key, "stdout": "half\n"})
    status, headers, body = sim.muse(result_path("content", key))
    assert (status, headers["Content-Type"]) == (200, "application/zip")
    archive = zip_of(body)
    assert archive.namelist() == CONTENT_MEMBERS  # running, never polled: no report
    assert archive.read("__WS__stdout.txt") == b"half\n"
    state = json.loads(sim.muse(result_path("state", key))[2])
    archive = zip_of(sim.muse(result_path("content", key))[2])
    assert archive.namelist() == RUN_ZIP_MEMBERS  # twin: GET state wrote the report
    assert json.loads(archive.read("__WS__report.txt")) == state["info"]["report"]
    assert archive.read("__WS__report.txt") == utf8_json(state["info"]["report"])
    status, _, body = sim.muse(result_path("content", "88888888-8888-4888-8888-888888888888"))
    assert (status, json.loads(body)["type"]) == (404, "NotFound")
    # content requests are not counted per run (SPEC: by_job has state and run only)
    assert sim.control("muse", "GET", "stats")["by_job"] == {f"sw_example/{key}": 1}


def utf8_json(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("returned_type", ["stdout.txt", "run.zip"])
def test_muse_todownload_gives_a_download_key(sim, returned_type):
    make_result_run(sim, returned_type=returned_type)
    direct = sim.muse(result_path("run"))[2]
    sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}", {"todownload": "yes"})
    status, headers, body = sim.muse(result_path("run"))
    assert (status, headers["Content-Type"]) == (200, "application/json")
    reply = json.loads(body)
    assert list(reply) == ["msg", "url"]
    prefix = f"{sim.base()}download/?key="
    assert reply["url"].startswith(prefix)
    dkey = reply["url"][len(prefix):]
    assert DOWNLOAD_KEY.fullmatch(dkey), dkey
    assert reply["msg"] == (
        f"The response content can be downloaded at : {reply['url']} *** The resource to "
        f"download the response content is 'GET download' with 'key' option (key value : "
        f"{dkey}) *** Keep this key value in order to be able to download the response "
        f"content later on : key={dkey}")
    report = json.loads(sim.muse(result_path("state"))[2])["info"]["report"]
    assert report["request"]["todownload"] is True  # the report says it as a boolean
    status, headers, body = sim.muse(reply["url"][len(f"http://127.0.0.1:{sim.ports['muse']}"):])
    assert status == 200 and headers["Content-Disposition"].endswith(f'filename="{returned_type}"')
    if returned_type == "stdout.txt":
        assert body == direct
    else:  # the report inside now says todownload true: same members, other report
        assert zip_of(body).namelist() == RUN_ZIP_MEMBERS
        assert zip_of(body).read("JOB_ID") == zip_of(direct).read("JOB_ID")
    other = json.loads(sim.muse(result_path("run"))[2])["url"]
    assert other != reply["url"]  # every GET run makes a new download key


def test_muse_download_errors_and_stdout_ignores_todownload(sim):
    status, headers, body = sim.muse("/api/download/?key=20210119_130603_nosuch")
    assert (status, headers["Content-Type"]) == (404, "application/json")
    assert json.loads(body) == {"error": "Unknown download key '20210119_130603_nosuch'",
                                "more": [], "type": "NotFound"}
    status, _, body = sim.muse("/api/download/")
    assert (status, json.loads(body)["type"]) == (400, "BadRequest")
    make_result_run(sim, returned_type="stdout", todownload=True)
    status, _, body = sim.muse(result_path("run"))
    assert status == 200 and json.loads(body)["info"]["stdout"] == "59.0\n"
    # a download key of a run that is gone is unknown
    sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}", {"returned_type": "stdout.txt"})
    url = json.loads(sim.muse(result_path("run"))[2])["url"]
    path = url[len(f"http://127.0.0.1:{sim.ports['muse']}"):]
    assert sim.muse(path)[0] == 200
    sim.control("muse", "DELETE", f"runs/sw_example/{RESULT_KEY}")
    assert sim.muse(path)[0] == 404


def test_muse_result_size_makes_exact_bodies(sim):
    make_result_run(sim, returned_type="stdout.txt", result_size=100003)
    status, headers, body = sim.muse(result_path("run"))
    assert status == 200 and len(body) == 100003 == int(headers["Content-Length"])
    assert body == (b"59.0\n" * 20001)[:100003]  # the stdout, repeated
    for size in (5 << 20, 3000):
        sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}",
                    {"returned_type": "run.zip", "result_size": size})
        for action in ("run", "content"):
            status, headers, body = sim.muse(result_path(action))
            assert status == 200 and len(body) == size == int(headers["Content-Length"])
            archive = zip_of(body)
            assert archive.namelist()[-1] == "__sim__padding"
            assert archive.read("__WS__stdout.txt") == b"59.0\n"
            assert set(archive.read("__sim__padding")) <= {ord("z")}
    # twin: a size the zip cannot shrink to leaves it as it is, unpadded
    sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}", {"result_size": 10})
    body = sim.muse(result_path("run"))[2]
    assert len(body) > 10 and zip_of(body).namelist() == RUN_ZIP_MEMBERS
    sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}", {"result_size": None})
    assert zip_of(sim.muse(result_path("run"))[2]).namelist() == RUN_ZIP_MEMBERS


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_muse_big_result_is_streamed(sim):
    size = 256 << 20
    make_result_run(sim, returned_type="run.zip", result_size=size)
    before = peak_rss_kib(sim.proc.pid)
    conn = sim.connect("muse")
    conn.request("GET", result_path("run"))
    response = conn.getresponse()
    assert response.headers["Content-Length"] == str(size)
    got, tail = 0, b""
    while chunk := response.read(1 << 20):
        got += len(chunk)
        tail = (tail + chunk)[-22:]
    conn.close()
    assert got == size and tail[:4] == b"PK\x05\x06"  # the end record closes it
    assert peak_rss_kib(sim.proc.pid) - before < 64 << 10  # < 64 MiB for 256 MiB sent


def test_muse_result_content_type_control(sim):
    make_result_run(sim, returned_type="stdout.txt", result_content_type="application/octet-stream")
    status, headers, body = sim.muse(result_path("run"))
    assert (status, headers["Content-Type"], body) == (200, "application/octet-stream", b"59.0\n")
    sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}", {"result_content_type": ""})
    status, headers, body = sim.muse(result_path("run"))
    assert (status, headers.get("Content-Type"), body) == (200, None, b"59.0\n")
    sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}", {"result_content_type": None})
    assert sim.muse(result_path("run"))[1]["Content-Type"] == "text/plain"


@pytest.mark.parametrize("fields", [
    {"todownload": "maybe"}, {"todownload": 1}, {"result_size": -1}, {"result_size": 1.5},
    {"result_size": (1 << 31) + 1}, {"result_content_type": 3}, {"stdout_b64": "***"},
    {"stdout": "a", "stdout_b64": "YQ=="}, {"request": [], "todownload": True},
])
def test_control_rejects_bad_result_fields(sim, fields):
    make_result_run(sim)
    sim.control("muse", "POST", f"runs/sw_example/{RESULT_KEY}", fields, expect=400)
    sim.control("muse", "POST", "runs", {"name": "sw_example", "key": "k", **fields}, expect=400)
    assert sim.control("muse", "GET", f"runs/sw_example/{RESULT_KEY}")["stdout"] == "59.0\n"


# ---------------------------------------------------------------- Bacalhau control

def test_control_creates_reads_and_deletes_jobs(sim):
    state = {"Nodes": {"QmA": {"Shards": {"0": {"NodeId": "QmA", "State": "Waiting"}}}}}
    made = sim.control("bacalhau", "POST", "jobs", {"id": "job-1", "state": state})
    assert (made["client_id"], made["state"]) == (SEED_CLIENT, state)
    assert sim.control("bacalhau", "GET", "jobs/job-1")["state"] == state
    assert sim.states("job-1")[2] == (b'{"state":{"Nodes":{"QmA":{"Shards":{"0":{"NodeId":"QmA",'
                                      b'"State":"Waiting","VerificationResult":{},'
                                      b'"PublishedResults":{}}}}}}}\n')
    sim.control("bacalhau", "DELETE", "jobs/job-1")
    assert sim.states("job-1")[0] == 500
    sim.control("bacalhau", "GET", "jobs/job-1", expect=404)
    sim.control("bacalhau", "POST", "jobs", {"id": "job-2"})
    assert sim.states("job-2")[2] == b'{"state":{}}\n'


def test_go_encoding_of_states(sim):
    shard = {"RunOutput": {"stdout": "<a&b> \u00e9\u2028\b"}, "State": "Running",
             "NodeId": "QmB", "ShardIndex": 10, "Status": ""}
    state = {"Nodes": {"QmB": {"Shards": {"2": {"ShardIndex": 2}, "10": shard}},
                       "QmA": {"Shards": {}}}}
    sim.control("bacalhau", "POST", "jobs", {"id": "job-go", "state": state})
    assert sim.states("job-go")[2] == (
        '{"state":{"Nodes":{"QmA":{},"QmB":{"Shards":{'
        '"10":{"NodeId":"QmB","ShardIndex":10,"State":"Running","VerificationResult":{},'
        '"PublishedResults":{},"RunOutput":{"stdout":"\\u003ca\\u0026b\\u003e \u00e9\\u2028'
        '\\u0008","stdouttruncated":false,"stderr":"","stderrtruncated":false,"exitCode":0,'
        '"runnerError":""}},'
        '"2":{"ShardIndex":2,"VerificationResult":{},"PublishedResults":{}}}}}}}\n').encode()


@pytest.mark.parametrize("state, sent", [
    ({"Nodes": {"QmB": 1, "QmA": []}}, b'{"Nodes":{"QmB":1,"QmA":[]}}'),
    ({"Zebra": 1, "Nodes": {}}, b'{"Zebra":1,"Nodes":{}}'),
    ([1, "<"], b'[1,"\\u003c"]'),
    ({"Nodes": {"Q": {"Shards": {"01": {}}}}}, b'{"Nodes":{"Q":{"Shards":{"01":{}}}}}'),
    ({"Nodes": {"Q": {"Shards": {"0": {"ShardIndex": 1.5}}}}},
     b'{"Nodes":{"Q":{"Shards":{"0":{"ShardIndex":1.5}}}}}'),
])
def test_odd_states_are_sent_as_stored(sim, state, sent):
    sim.control("bacalhau", "POST", "jobs", {"id": "odd", "state": state})
    assert sim.states("odd")[2] == b'{"state":' + sent + b"}\n"


def test_control_merges_and_deletes_shards(sim):
    sim.control("bacalhau", "POST", "jobs", {"id": "job-m", "state": {}})

    def merge(node, shard, fields):
        return sim.control("bacalhau", "POST", "jobs/job-m/shard",
                           {"node": node, "shard": shard, "fields": fields})
    merge("QmA", "0", {"State": "Running", "RunOutput": {"stdout": "a", "exitCode": 3}})
    merge("QmA", "0", {"Status": "busy", "RunOutput": {"stdout": "b", "exitCode": None}})
    state = merge("QmA", "1", {"State": "Bidding"})["state"]
    assert state == {"Nodes": {"QmA": {"Shards": {
        "0": {"NodeId": "QmA", "ShardIndex": 0, "State": "Running", "Status": "busy",
              "RunOutput": {"stdout": "b"}},
        "1": {"NodeId": "QmA", "ShardIndex": 1, "State": "Bidding"}}}}}
    merge("QmA", "0", {"Status": None})
    sim.control("bacalhau", "POST", "jobs/job-m/shard", {"node": "QmA", "shard": "1",
                                                         "delete": True})
    shard = sim.state_of("job-m")["Nodes"]["QmA"]["Shards"]
    assert list(shard) == ["0"] and "Status" not in shard["0"]
    state = sim.control("bacalhau", "POST", "jobs/job-m/shard",
                        {"node": "QmA", "shard": "0", "delete": True})["state"]
    assert state == {"Nodes": {}}


def test_control_appends_output(sim):
    for data in ("one\n", "two\n"):
        sim.control("bacalhau", "POST", f"jobs/{RUNNING_JOB}/append",
                    {"node": "QmRunner1111111111111111111111111111111111111a", "shard": "0",
                     "stream": "stdout", "data": data})
    sim.control("bacalhau", "POST", f"jobs/{RUNNING_JOB}/append",
                {"node": "QmNew", "stream": "stderr", "data": "err"})
    nodes = sim.state_of(RUNNING_JOB)["Nodes"]
    assert nodes["QmRunner1111111111111111111111111111111111111a"]["Shards"]["0"][
        "RunOutput"]["stdout"] == "step 1\none\ntwo\n"
    assert nodes["QmNew"]["Shards"]["0"]["RunOutput"]["stderr"] == "err"


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "jobs", b"{", 400),
    ("POST", "jobs", b'{"state":{}}', 400),
    ("POST", "jobs/nosuch/shard", b'{"node":"Q"}', 404),
    ("POST", f"jobs/{SEED_JOB}/append", b'{"node":"Q","stream":"stdin","data":""}', 400),
    ("GET", "nosuch", None, 404),
    ("POST", "fault", b'{"mode":"explode"}', 400),
    ("POST", "fault", b'{"mode":"status","status":"500"}', 400),
    ("POST", "fault", b'{"mode":"close","ms":5}', 400),
    ("POST", "down", b'{"seconds":0}', 400),
])
def test_control_rejects_bad_requests(sim, method, path, body, status):
    got, headers, data = sim.request("bacalhau", method, "/_sim/" + path, body)
    assert (got, headers["Content-Type"]) == (status, "application/json")
    assert "error" in json.loads(data)


def test_control_on_odd_state_is_refused(sim):
    sim.control("bacalhau", "POST", "jobs", {"id": "odd", "state": [1]})
    sim.control("bacalhau", "POST", "jobs/odd/shard", {"node": "Q", "fields": {}}, expect=409)


# ---------------------------------------------------------------- muse control

def test_control_runs(sim):
    key = "99999999-9999-4999-8999-999999999999"
    made = sim.control("muse", "POST", "runs", {"name": "sw_new", "key": key})
    assert (made["cr"], made["latest_cr"], made["latest_state"]) == ("WAIT", "IN_PROGRESS",
                                                                     "RUNNING")
    assert made["rsrc"] == {"identity": "muse"} and made["request"]["returned_type"] == "stdout"
    assert "sw_new" in [e["name"] for e in json.loads(sim.muse("/api/software/list")[2])]
    assert sim.muse(f"/api/software/muse/run/sw_new/{key}")[0] == 400
    sim.control("muse", "POST", f"runs/sw_new/{key}", {"cr": "OK", "stdout": "42\n"})
    report = json.loads(sim.muse(f"/api/software/muse/state/sw_new/{key}")[2])["info"]["report"]
    assert report["process"]["latest_cr"] == "ENDED_OK"
    assert report["process"]["latest_state"] == "COMPLETED"
    assert report["process"]["job_id"] == made["job_id"]
    assert json.loads(sim.muse(f"/api/software/muse/run/sw_new/{key}")[2])["info"][
        "stdout"] == "42\n"
    assert sim.control("muse", "GET", f"runs/sw_new/{key}")["stdout"] == "42\n"
    sim.control("muse", "DELETE", f"runs/sw_new/{key}")
    assert sim.muse(f"/api/software/muse/state/sw_new/{key}")[0] == 404
    sim.control("muse", "POST", f"runs/sw_new/{key}", {"cr": "OK"}, expect=404)
    sim.control("muse", "POST", "runs", {"name": "sw_new", "key": key, "bogus": 1}, expect=400)


def test_control_software_list(sim):
    sim.control("muse", "POST", "software", {"names": ["a", "b"]})
    assert [e["name"] for e in json.loads(sim.muse("/api/software/list")[2])] == ["a", "b"]
    status, _, body = sim.muse(f"/api/software/muse/state/sw_example/{OK_KEY}/")
    assert (status, json.loads(body)["error"]) == (404, "Unknown software 'sw_example'")


# ---------------------------------------------------------------- faults

def set_fault(sim, api, **fault):
    sim.control(api, "POST", "fault", fault)


def test_fault_status_counts_down_and_matches_paths(sim):
    set_fault(sim, "bacalhau", mode="status", status=503, body="busy", count=2,
              paths=["/states"])
    assert sim.request("bacalhau", "POST", "/requester/list", b"{}")[0] == 200
    for _ in range(2):
        status, headers, body = sim.states(SEED_JOB)
        assert (status, headers["Content-Type"], body) == (503, TEXT_PLAIN, b"busy")
    assert sim.states(SEED_JOB)[2] == SEED_STATES_BODY


def test_fault_lasts_until_cleared_and_spares_control(sim):
    set_fault(sim, "muse", mode="garbage")
    for _ in range(3):
        status, headers, body = sim.muse("/api/software/list")
        assert (status, headers["Content-Type"], body) == (200, "application/json",
                                                           b"not json{{{")
    assert sim.control("muse", "GET", "stats")["requests"] == 3
    assert sim.states(SEED_JOB)[2] == SEED_STATES_BODY  # the other port is not faulted
    set_fault(sim, "muse", mode="none")
    assert sim.muse("/api/software/list")[0] == 200


def test_fault_close_answers_nothing(sim):
    set_fault(sim, "bacalhau", mode="close", count=1)
    with pytest.raises(http.client.RemoteDisconnected):
        sim.states(SEED_JOB)
    assert sim.states(SEED_JOB)[2] == SEED_STATES_BODY


def test_fault_cut_sends_half_the_body(sim):
    set_fault(sim, "bacalhau", mode="cut", count=1)
    conn = sim.connect("bacalhau")
    conn.request("POST", "/requester/states", json.dumps({"job_id": SEED_JOB}))
    response = conn.getresponse()
    assert response.headers["Content-Length"] == str(len(SEED_STATES_BODY))
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert caught.value.partial == SEED_STATES_BODY[:len(SEED_STATES_BODY) // 2]
    conn.close()


def test_fault_truncate_sends_a_valid_short_reply(sim):
    set_fault(sim, "bacalhau", mode="truncate", count=2)
    status, _, body = sim.states(SEED_JOB)
    assert (status, body) == (200, SEED_STATES_BODY[:len(SEED_STATES_BODY) // 2])
    error = b"Job not found. ID: no-such-job\n"
    status, _, body = sim.states("no-such-job")  # even an error comes as a 200
    assert (status, body) == (200, error[:len(error) // 2])


@pytest.mark.parametrize("fault, body", [
    ({"mode": "huge", "size": 200000}, b'"' + b"x" * 199998 + b'"'),
    ({"mode": "deep", "depth": 70000}, b"[" * 70000 + b"]" * 70000),
    ({"mode": "raw", "body_b64": base64.b64encode(b"\xff\x00{").decode(),
      "content_type": "application/octet-stream"}, b"\xff\x00{"),
], ids=["huge", "deep", "raw"])
def test_fault_bodies(sim, fault, body):
    set_fault(sim, "bacalhau", **fault)
    status, headers, data = sim.states(SEED_JOB)
    assert (status, data) == (200, body)
    assert headers["Content-Length"] == str(len(body))


def test_fault_huge_is_streamed(sim):
    set_fault(sim, "bacalhau", mode="huge")  # 64 MiB
    conn = sim.connect("bacalhau")
    conn.request("POST", "/requester/states", b"{}")
    response = conn.getresponse()
    assert response.headers["Content-Length"] == str(64 << 20)
    size = 0
    while chunk := response.read(1 << 20):
        size += len(chunk)
    assert size == 64 << 20
    conn.close()


def test_fault_delay_and_latency(start):
    sim = start("--latency-ms", "300")
    began = time.monotonic()
    sim.control("bacalhau", "GET", "stats")
    assert time.monotonic() - began < 0.3  # control requests are never delayed
    began = time.monotonic()
    assert sim.states(SEED_JOB)[2] == SEED_STATES_BODY
    assert time.monotonic() - began >= 0.3
    set_fault(sim, "bacalhau", mode="delay", ms=400, count=1)
    began = time.monotonic()
    assert sim.states(SEED_JOB)[2] == SEED_STATES_BODY
    assert time.monotonic() - began >= 0.7


def test_down_refuses_connections_then_comes_back(sim):
    kept = sim.connect("bacalhau")  # open connections are cut too
    kept.request("POST", "/requester/states", json.dumps({"job_id": SEED_JOB}))
    kept.getresponse().read()
    assert sim.control("bacalhau", "POST", "down", {"seconds": 1}) == {"down": 1}
    began = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", sim.ports["bacalhau"]), timeout=DEADLINE)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        kept.request("POST", "/requester/states", json.dumps({"job_id": SEED_JOB}))
        kept.getresponse().read()
    assert sim.muse("/api/software/list")[0] == 200  # the other port stays up

    def answers():
        try:
            return sim.states(SEED_JOB)[2] == SEED_STATES_BODY
        except ConnectionRefusedError:
            return False
    wait_for(answers, "the port to come back")
    assert time.monotonic() - began >= 0.9


# ---------------------------------------------------------------- stats, keep-alive

def test_stats_count_api_requests(sim):
    sim.states(SEED_JOB)
    sim.states("no-such-job")
    sim.request("bacalhau", "POST", "/requester/states", b"x")
    sim.request("bacalhau", "GET", "/nowhere")
    sim.muse(f"/api/software/muse/state/sw_example/{OK_KEY}/")
    sim.muse(f"/api/software/muse/run/sw_example/{OK_KEY}")
    assert sim.control("bacalhau", "GET", "stats") == {
        "requests": 4, "connections": 4,
        "by_path": {"/requester/states": 3, "/nowhere": 1},
        "by_job": {SEED_JOB: 1, "no-such-job": 1}}
    assert sim.control("muse", "GET", "stats") == {
        "requests": 2, "connections": 2,
        "by_path": {f"/api/software/muse/state/sw_example/{OK_KEY}/": 1,
                    f"/api/software/muse/run/sw_example/{OK_KEY}": 1},
        "by_job": {f"sw_example/{OK_KEY}": 2}}
    sim.control("bacalhau", "POST", "reset")
    assert sim.control("bacalhau", "GET", "stats") == {
        "requests": 0, "connections": 0, "by_path": {}, "by_job": {}}


def test_keep_alive_two_requests_one_connection(sim):
    conn = sim.connect("bacalhau")
    for _ in range(2):
        conn.request("POST", "/requester/states", json.dumps({"job_id": SEED_JOB}))
        assert conn.getresponse().read() == SEED_STATES_BODY
    port = conn.sock.getsockname()[1]
    conn.request("POST", "/requester/states", b"bad")  # errors keep the connection too
    assert conn.getresponse().read().startswith(b"invalid character")
    assert conn.sock.getsockname()[1] == port
    conn.close()
    stats = sim.control("bacalhau", "GET", "stats")
    assert (stats["requests"], stats["connections"]) == (3, 1)


# ---------------------------------------------------------------- robustness

def raw_exchange(sim, api, data):
    """Send raw bytes, return all the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", sim.ports[api]), timeout=DEADLINE) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_bad_requests_leave_the_server_up(sim):
    for line in (b"\x00\xff\r\n\r\n", b"GET / HTTX/1.1\r\n\r\n", b"A B C D\r\n\r\n"):
        assert raw_exchange(sim, "bacalhau", line).startswith(b"HTTP/1.1 400")
    assert raw_exchange(sim, "bacalhau", b"POST /requester/states HTTP/1.1\r\n"
                        b"Content-Length: -5\r\nConnection: close\r\n\r\n").startswith(
                            b"HTTP/1.1 400")
    big = raw_exchange(sim, "bacalhau", b"POST /requester/states HTTP/1.1\r\n"
                       b"Content-Length: 20000000\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 400") and big.endswith(b"http: request body too large\n")
    assert sim.states(SEED_JOB)[2] == SEED_STATES_BODY
    assert sim.stderr() == ""


def test_chunked_request_body(sim):
    body = json.dumps({"job_id": SEED_JOB}).encode()
    reply = raw_exchange(sim, "bacalhau", b"POST /requester/states HTTP/1.1\r\nHost: x\r\n"
                         b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                         + b"%x\r\n" % 10 + body[:10] + b"\r\n"
                         + b"%x\r\n" % (len(body) - 10) + body[10:] + b"\r\n0\r\n\r\n")
    assert reply.endswith(b"\r\n\r\n" + SEED_STATES_BODY)


def test_head_sends_headers_only(sim):
    status, headers, body = sim.request("bacalhau", "HEAD", "/requester/states",
                                        json.dumps({"job_id": SEED_JOB}))
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(len(SEED_STATES_BODY))


# ---------------------------------------------------------------- scenarios

def test_empty_scenario(start):
    sim = start("--scenario", "empty")
    assert sim.states(SEED_JOB)[0] == 500
    assert sim.list({}) == []
    assert [e["name"] for e in json.loads(sim.muse("/api/software/list")[2])] == ["sw_example"]
    assert sim.muse(f"/api/software/muse/state/sw_example/{OK_KEY}/")[0] == 404


def test_demo_scenario_moves_on_its_own(start):
    sim = start("--scenario", "demo")
    job = "de300000-0000-4000-8000-000000000001"
    assert sim.states(SEED_JOB)[2] == SEED_STATES_BODY

    def states():
        return {shard["State"] for node in sim.state_of(job)["Nodes"].values()
                for shard in node["Shards"].values()}
    assert states() == {"Bidding"}
    wait_for(lambda: "Waiting" in states(), "the demo job to leave Bidding", deadline=6)
    run = json.loads(sim.muse("/api/software/muse/state/sw_example/"
                              "33333333-3333-4333-8333-333333333333/")[2])
    assert run["info"]["report"]["cr"] == "WAIT"
