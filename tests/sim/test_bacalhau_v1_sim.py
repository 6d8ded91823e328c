"""Tests of jobsim --bacalhau-version: each era of shared/api/bacalhau-v1.md.

Every test starts its own simulator (port 0) and kills only that process.
Expected bytes are written out from the API notes, not taken from the
simulator: agent/version per era, list keys, pretty-printing up to v1.4,
the two execution state numberings, RunOutput spellings, error bodies and
statuses, paging tokens, auth, the legacy endpoints.

Run: /usr/bin/python3 -m pytest -q tests/sim/test_bacalhau_v1_sim.py
"""

import base64
import http.client
import json
import os
import subprocess
import sys
import time

import pytest

JOBSIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jobsim.py")
DEADLINE = 10
VERSIONS = ("v0.3.16", "v0.3.24", "v1.0.4", "v1.3.2", "v1.5.1", "v1.5.2", "v1.7.0", "v1.9.3")
V1 = VERSIONS[2:]
JOBS = "/api/v1/orchestrator/jobs"
COMPLETED = "1efa8fb5-a3ce-4c15-8660-e6c5cd4fe981"


class Sim:
    def __init__(self, workdir, *args):
        workdir.mkdir(parents=True, exist_ok=True)
        ports = workdir / "ports.json"
        self.err_path = workdir / "stderr"
        with open(workdir / "stdout", "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, JOBSIM, "--ports-file", str(ports), *args],
                                         stdout=out, stderr=err)
        deadline = time.monotonic() + DEADLINE
        while not ports.exists():
            if self.proc.poll() is not None:
                pytest.fail(f"jobsim exited {self.proc.returncode}: {self.err_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail("jobsim did not start in time")
            time.sleep(0.02)
        self.port = json.loads(ports.read_text())["bacalhau"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(DEADLINE)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def json(self, path, headers=None):
        status, _, body = self.get(path, headers)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def control(self, method, path, body=None):
        status, _, data = self.request(method, "/_sim/" + path,
                                       None if body is None else json.dumps(body))
        assert status == 200, (path, status, data)
        return json.loads(data)

    def seed(self):
        return self.control("GET", "seed")


@pytest.fixture
def start(tmp_path):
    sims = []

    def make(version, *args):
        s = Sim(tmp_path / f"sim{len(sims)}", "--bacalhau-version", version, *args)
        sims.append(s)
        return s

    yield make
    for s in sims:
        s.stop()


def pretty(value):
    """Go's json.MarshalIndent(v, "", "  ") plus the Encoder's newline."""
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def compact(value):
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


# ---- agent/version, and era L ------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_agent_version_per_era(start, version):
    sim = start(version)
    status, headers, body = sim.get("/api/v1/agent/version")
    t = tuple(int(p) for p in version[1:].split("."))
    if t < (1, 0, 4):   # era L: Go's ServeMux
        assert status == 404
        assert body == b"404 page not found\n"
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        assert headers["X-Content-Type-Options"] == "nosniff"
        return
    assert status == 200 and headers["Content-Type"] == "application/json"
    major, minor = str(t[0]), str(t[1])
    if t < (1, 2, 0):
        want = {"major": major, "minor": minor, "gitversion": version}
    else:
        want = {"Major": major, "Minor": minor, "GitVersion": version}
    got = json.loads(body)
    assert list(got)[:3] == list(want) and all(got[k] == v for k, v in want.items())
    assert body == (pretty(got) if t < (1, 5, 0) else compact(got))
    # X-Bacalhau-Git-Version goes out from v1.2.1
    assert (headers.get("X-Bacalhau-Git-Version") == version) == (t >= (1, 2, 1))


def test_v0_version_endpoint(start):
    sim = start("v0.3.16")
    status, _, body = sim.request("POST", "/version", b'{"client_id":""}')
    assert status == 200
    assert json.loads(body)["build_version_info"]["gitversion"] == "v0.3.16"


# ---- job lists -------------------------------------------------------------------

@pytest.mark.parametrize("version, key", [("v1.0.4", "Jobs"), ("v1.3.2", "Jobs"),
                                          ("v1.5.1", "Items"), ("v1.9.3", "Items")])
def test_list_key_and_layout(start, version, key):
    sim = start(version)
    status, headers, body = sim.get(JOBS)
    assert status == 200 and headers["Content-Type"] == "application/json"
    got = json.loads(body)
    assert list(got) == ["NextToken", key]      # NextToken first: an embedded struct
    assert len(got[key]) == 5
    t = tuple(int(p) for p in version[1:].split("."))
    assert body == (pretty(got) if t < (1, 5, 0) else compact(got))
    if t < (1, 5, 0):
        assert body.startswith(b'{\n  "NextToken": "",\n  "' + key.encode() + b'": [\n    {\n')


def test_paging_tokens_v152(start):
    sim = start("v1.5.2")
    page = sim.json(JOBS + "?limit=2")
    assert page["NextToken"] == "Ok46Mjoy"      # base64url(":N:2:2"), no padding
    ids = [j["ID"] for j in page["Items"]]
    while page["NextToken"]:
        # the token overrides limit: limit=1 is ignored
        page = sim.json(JOBS + "?limit=1&next_token=" + page["NextToken"])
        ids += [j["ID"] for j in page["Items"]]
    assert sorted(ids) == sorted(sim.seed().values())
    assert len(ids) == 5
    # ordered by modified_at, newest first
    page = sim.json(JOBS + "?limit=2&order_by=modified_at&reverse=true")
    assert base64.urlsafe_b64decode(page["NextToken"] + "==") == b"modified_at:Y:2:2"
    times = [j["ModifyTime"] for j in sim.json(JOBS + "?order_by=modified_at&reverse=true")["Items"]]
    assert times == sorted(times, reverse=True)
    status, _, body = sim.get(JOBS + "?next_token=%21%21")
    assert status == 400 and b"invalid paging token" in body
    status, _, body = sim.get(JOBS + "?order_by=name")
    assert status == 500                        # v1.5+: any other order_by
    status, _, body = sim.get(JOBS + "?limit=abc")
    assert status == 400
    assert json.loads(body)["Message"] == (
        'code=400, message=strconv.ParseUint: parsing "abc": invalid syntax, '
        'internal=strconv.ParseUint: parsing "abc": invalid syntax')


def test_paging_before_v122_is_a_decimal_offset(start):
    sim = start("v1.0.4")
    page = sim.json(JOBS + "?limit=2&order_by=created_at")
    assert page["NextToken"] == "" and len(page["Jobs"]) == 2
    rest = sim.json(JOBS + "?limit=10&order_by=created_at&next_token=2")
    assert len(rest["Jobs"]) == 3
    assert {j["ID"] for j in page["Jobs"]} | {j["ID"] for j in rest["Jobs"]} == \
        set(sim.seed().values())
    status, _, _ = sim.get(JOBS + "?next_token=99")
    assert status == 500        # an offset past the end
    # v1.3.2: an unknown order_by is created_at, not an error
    sim2 = start("v1.3.2")
    assert sim2.get(JOBS + "?order_by=name")[0] == 200


def test_namespace_filter(start):
    sim = start("v1.9.3")
    other = sim.control("POST", "jobs", {"namespace": "other", "state": "Running"})["id"]
    assert [j["ID"] for j in sim.json(JOBS + "?namespace=other")["Items"]] == [other]
    assert len(sim.json(JOBS)["Items"]) == 6
    assert len(sim.json(JOBS + "?namespace=*")["Items"]) == 6
    assert other not in [j["ID"] for j in sim.json(JOBS + "?namespace=default")["Items"]]


# ---- one job ------------------------------------------------------------------------

def test_unknown_job_per_era(start):
    v104 = start("v1.0.4")
    status, _, body = v104.get(JOBS + "/j-nope")
    assert status == 500
    assert body == b'{\n  "error": "Job not found. ID: j-nope",\n  "message": "Internal Server Error"\n}\n'
    v151 = start("v1.5.1")
    status, _, body = v151.get(JOBS + "/j-nope")
    assert status == 404
    assert body == (b'{"Status":404,"Message":"job not found: j-nope","RequestID":"",'
                    b'"Code":"NotFound","Component":"JobStore"}\n')
    # RequestID echoes the request's X-Request-ID
    status, _, body = v151.get(JOBS + "/j-nope", {"X-Request-ID": "abc"})
    assert json.loads(body)["RequestID"] == "abc"


@pytest.mark.parametrize("version, resolves", [("v1.0.4", False), ("v1.3.2", True),
                                               ("v1.5.1", True), ("v1.9.3", True)])
def test_short_id(start, version, resolves):
    sim = start(version)
    status, _, body = sim.get(JOBS + "/j-1efa8fb5")
    if resolves:
        assert status == 200 and json.loads(body)["Job"]["ID"] == "j-" + COMPLETED
    else:
        assert status == 500 and b"Job not found" in body


def test_ambiguous_prefix(start):
    sim = start("v1.5.1")
    for suffix in ("aaaa", "bbbb"):
        sim.control("POST", "jobs", {"id": f"j-77777777-0000-4000-8000-00000000{suffix}"})
    status, _, body = sim.get(JOBS + "/j-7777")
    assert status == 500
    got = json.loads(body)
    assert got["Code"] == "MultipleJobsFound" and got["Hint"] == "Use full job ID"
    old = start("v1.3.2")
    for suffix in ("aaaa", "bbbb"):
        old.control("POST", "jobs", {"id": f"j-77777777-0000-4000-8000-00000000{suffix}"})
    status, _, body = old.get(JOBS + "/j-7777")
    assert status == 500 and json.loads(body)["error"].startswith("Multiple jobs found")


def test_name_lookup_from_v18(start):
    sim = start("v1.9.3")
    assert sim.json(JOBS + "/hello-bacalhau")["Job"]["ID"] == "j-" + COMPLETED
    old = start("v1.7.0")
    assert old.get(JOBS + "/hello-bacalhau")[0] == 404


def test_include_from_v122(start):
    sim = start("v1.3.2")
    got = sim.json(JOBS + "/j-" + COMPLETED + "?include=executions,history")
    assert list(got) == ["Job", "History", "Executions"]
    assert list(got["History"]) == ["NextToken", "History"]
    assert list(got["Executions"]) == ["NextToken", "Executions"]
    assert sim.json(JOBS + "/j-" + COMPLETED)["Job"]["ID"] == "j-" + COMPLETED
    v19 = start("v1.9.3")
    got = v19.json(JOBS + "/j-" + COMPLETED + "?include=history,executions")
    assert list(got["History"]) == ["NextToken", "Items"]
    # before v1.2.2 include is ignored
    v104 = start("v1.0.4")
    assert list(v104.json(JOBS + "/j-" + COMPLETED + "?include=executions")) == ["Job"]


# ---- executions: numbering, RunOutput, Job -----------------------------------------------

@pytest.mark.parametrize("version, completed, running", [
    ("v1.0.4", 7, 5), ("v1.5.1", 7, 5), ("v1.5.2", 9, 5), ("v1.9.3", 9, 5)])
def test_execution_state_numbers(start, version, completed, running):
    sim = start(version)
    seed = sim.seed()
    key = "Items" if version >= "v1.4" else "Executions"
    done = sim.json(f"{JOBS}/{seed['completed']}/executions")[key][0]
    assert done["ComputeState"]["StateType"] == completed
    assert done["DesiredState"]["StateType"] == 2
    live = sim.json(f"{JOBS}/{seed['running']}/executions")[key][0]
    assert live["ComputeState"]["StateType"] == running
    assert live["DesiredState"]["StateType"] == 1
    # the trap: v1.5.2's Completed (9) is v1.5.1's Cancelled
    failed = sim.json(f"{JOBS}/{seed['failed']}/executions")[key][0]
    assert failed["ComputeState"]["StateType"] == (10 if completed == 9 else 8)


def test_run_output_spellings(start):
    old = start("v1.0.4")
    ex = old.json(f"{JOBS}/j-{COMPLETED}/executions")["Executions"][0]
    assert list(ex["RunOutput"]) == ["stdout", "stdouttruncated", "stderr", "stderrtruncated",
                                     "exitCode", "runnerError"]
    assert ex["RunOutput"]["stdout"] == "Hello from a YAML spec!\n"
    new = start("v1.5.2")
    status, _, body = new.get(f"{JOBS}/j-{COMPLETED}/executions")
    assert (b'"RunOutput":{"Stdout":"Hello from a YAML spec!\\n","StdoutTruncated":false,'
            b'"stderr":"","StderrTruncated":false,"ExitCode":0,"ErrorMsg":""}') in body


@pytest.mark.parametrize("version, present", [("v1.5.1", False), ("v1.5.2", True)])
def test_run_output_of_a_running_execution(start, version, present):
    sim = start(version)
    ex = sim.json(f"{JOBS}/{sim.seed()['running']}/executions")["Items"][0]
    if present:
        assert ex["RunOutput"]["ExitCode"] == 0 and ex["RunOutput"]["Stdout"] == ""
        assert ex["PublishedResult"] == {"Type": ""}
    else:
        assert ex["RunOutput"] is None
        assert ex["PublishedResult"] == {"Type": ""}    # Normalize: v1.5+


def test_run_output_keeps_2048_bytes(start):
    sim = start("v1.9.3")
    job = sim.seed()["running"]
    sim.control("POST", f"jobs/{job}/append", {"data": "x" * 3000})
    ro = sim.json(f"{JOBS}/{job}/executions")["Items"][0]["RunOutput"]
    assert ro["Stdout"] == "x" * 2048 and ro["StdoutTruncated"] is True


@pytest.mark.parametrize("version, embedded", [("v1.0.4", True), ("v1.3.2", False),
                                               ("v1.7.0", False), ("v1.9.3", True)])
def test_executions_embed_the_job(start, version, embedded):
    sim = start(version)
    body = sim.json(f"{JOBS}/j-{COMPLETED}/executions")
    ex = (body.get("Items") or body.get("Executions"))[0]
    assert ("Job" in ex) == embedded


# ---- history ------------------------------------------------------------------------------

def test_history_shapes(start):
    a = start("v1.0.4").json(f"{JOBS}/j-{COMPLETED}/history")["History"]
    assert list(a[0]) == ["Type", "JobID", "NodeID", "ExecutionID", "JobState", "ExecutionState",
                          "NewRevision", "Comment", "Time"]
    c = start("v1.3.2").json(f"{JOBS}/j-{COMPLETED}/history")["History"]
    assert "Event" in c[0] and "SeqNum" not in c[0]
    e = start("v1.5.1").json(f"{JOBS}/j-{COMPLETED}/history")["Items"]
    assert list(e[0]) == ["SeqNum", "Type", "JobID", "Event", "Time"]
    assert [ev["SeqNum"] for ev in e] == list(range(1, len(e) + 1))
    assert e[0]["Event"] == {"Message": "Job submitted", "Topic": "Submission",
                             "Timestamp": "2025-03-01T16:11:20.101000001Z"}
    h = start("v1.9.3").json(f"{JOBS}/j-{COMPLETED}/history")["Items"]
    assert list(h[0]) == ["SeqNum", "Type", "JobID", "JobVersion", "Event", "Time"]


def test_history_paging_v15(start):
    sim = start("v1.5.2")
    seed = sim.seed()
    page = sim.json(f"{JOBS}/{seed['completed']}/history?limit=2")
    assert len(page["Items"]) == 2
    assert base64.urlsafe_b64decode(page["NextToken"] + "==") == b":N:2:3"
    seen = [ev["SeqNum"] for ev in page["Items"]]
    while page["NextToken"]:
        page = sim.json(f"{JOBS}/{seed['completed']}/history?limit=2&next_token={page['NextToken']}")
        seen += [ev["SeqNum"] for ev in page["Items"]]
    assert seen == list(range(1, len(seen) + 1))
    # a live job's token stays, with nothing new: an incremental feed
    live = sim.json(f"{JOBS}/{seed['running']}/history")
    assert live["NextToken"]
    again = sim.json(f"{JOBS}/{seed['running']}/history?next_token={live['NextToken']}")
    assert again == {"NextToken": live["NextToken"], "Items": []}
    # unknown full id: 200 and empty in v1.5-v1.7
    assert sim.json(f"{JOBS}/j-00000000-0000-4000-8000-000000000000/history") == \
        {"NextToken": "", "Items": []}


# ---- timestamps, revisions ------------------------------------------------------------------

def test_timestamps_are_int64_nanoseconds_above_2_53(start):
    sim = start("v1.9.3")
    status, _, body = sim.get(f"{JOBS}/j-{COMPLETED}")
    assert b'"CreateTime":1740845480101000001,' in body     # 19 digits, as sent
    job = json.loads(body)["Job"]
    assert job["CreateTime"] > 2 ** 53
    assert int(float(job["CreateTime"])) != job["CreateTime"]   # a double loses it


def test_revision_and_modify_time_move_on_every_change(start):
    sim = start("v1.9.3")
    job = sim.seed()["running"]

    def now():
        j = sim.json(f"{JOBS}/{job}")["Job"]
        return j["Revision"], j["ModifyTime"]

    before = now()
    steps = [("POST", f"jobs/{job}/append", {"data": "more\n"}),
             ("POST", f"jobs/{job}/executions", {"node": "n-extra"}),
             ("POST", f"jobs/{job}/history", {"topic": "Custom", "message": "hi"}),
             ("POST", f"jobs/{job}", {"state": "Completed"})]
    for method, path, body in steps:
        sim.control(method, path, body)
        after = now()
        assert after[0] > before[0] and after[1] > before[1], path
        before = after
    h = sim.json(f"{JOBS}/{job}/history")["Items"]
    assert [ev["Event"]["Topic"] for ev in h][-3:] == ["Scheduling", "Custom", "State Update"]


# ---- legacy endpoints ------------------------------------------------------------------------

def test_legacy_per_era(start):
    body = json.dumps({"client_id": "", "job_id": "j-" + COMPLETED}).encode()
    v13 = start("v1.3.2")
    for path in ("/api/v1/requester/states", "/requester/states"):
        status, headers, data = v13.request("POST", path, body)
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert json.loads(data)["state"]["Executions"][0]["State"] == "Completed"
    v15 = start("v1.5.2")
    status, headers, data = v15.request("POST", "/api/v1/requester/states", body)
    assert status == 410 and headers["Content-Type"] == "application/json"
    assert data == (b'"This endpoint is deprecated. See the migration guide at '
                    b'https://docs.bacalhau.org/references/cli-reference/command-migration '
                    b'for more information"\n')
    assert v15.request("GET", "/api/v1/requester/states")[0] == 405
    v17 = start("v1.7.0")
    status, _, data = v17.request("POST", "/api/v1/requester/states", body)
    assert status == 404
    assert json.loads(data)["Code"] == "InternalError"


def test_v0316_speaks_e1(start):
    sim = start("v0.3.16")
    job = sim.seed()["completed"]
    status, headers, data = sim.request("POST", "/states", json.dumps({"job_id": job}).encode())
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    state = json.loads(data)["state"]
    shard = next(iter(state["Nodes"].values()))["Shards"]["0"]
    assert list(shard) == ["NodeId", "State", "VerificationResult", "PublishedResults", "RunOutput"]
    assert shard["State"] == "Completed"
    assert shard["RunOutput"]["stdout"] == "Hello from a YAML spec!\n"
    assert sim.request("POST", "/requester/states", b"{}")[0] == 404
    status, _, data = sim.request("POST", "/states", b'{"job_id":"nope"}')
    assert status == 500 and data == b"Job not found. ID: nope\n"
    listed = json.loads(sim.request("POST", "/list", b'{"return_all":true}')[2])["jobs"]
    assert {j["Metadata"]["ID"] for j in listed} == set(sim.seed().values())


def test_v0324_speaks_e4(start):
    sim = start("v0.3.24")
    seed = sim.seed()
    status, _, data = sim.request("POST", "/requester/states",
                                  json.dumps({"job_id": seed["running"]}).encode())
    state = json.loads(data)["state"]
    assert list(state) == ["JobID", "Executions", "State", "Version", "CreateTime",
                           "UpdateTime", "TimeoutAt"]
    assert state["State"] == "InProgress" and state["TimeoutAt"] == "0001-01-01T00:00:00Z"
    assert sim.request("POST", "/states", b"{}")[0] == 404
    listed = json.loads(sim.request("POST", "/requester/list", b"{}")[2])["jobs"]
    assert {j["Job"]["Metadata"]["ID"] for j in listed} == set(seed.values())


# ---- errors --------------------------------------------------------------------------------

def test_unknown_route_per_era(start):
    assert start("v1.3.2").get("/api/v1/nothing")[2] == \
        b'{\n  "error": "code=404, message=Not Found",\n  "message": "Not Found"\n}\n'
    assert start("v1.5.1").get("/api/v1/nothing")[2] == \
        b'{"Status":404,"Message":"Not Found","RequestID":"","Code":"InternalError","Component":"APIServer"}\n'
    got = json.loads(start("v1.9.3").get("/api/v1/nothing")[2])
    assert got["Message"] == "The requested resource/URL was not found." and got["Code"] == "NotFound"


# ---- auth ------------------------------------------------------------------------------------

USERS = ("--bacalhau-auth", "users", "--bacalhau-api-key", "k-1", "--bacalhau-user", "ann:pw")


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_auth_users_v19(start):
    sim = start("v1.9.3", *USERS)
    status, _, body = sim.get(JOBS)
    assert status == 401
    assert body == (b'{"Status":401,"Message":"Request Unauthorized","RequestID":"","Code":"Unauthorized",'
                    b'"Component":"Authorizer","Hint":"Unauthorized principal. Event has been recorded.",'
                    b'"Details":{"reason":"Missing authorization header"}}\n')
    assert sim.get(JOBS, {"Authorization": "Bearer k-1"})[0] == 200
    assert sim.get(JOBS, basic("ann", "pw"))[0] == 200
    assert sim.get(JOBS, basic("ANN", "pw"))[0] == 200          # user names: any case
    assert sim.get(JOBS, {"Authorization": "Bearer k-2"})[0] == 401
    assert sim.get(JOBS, basic("ann", "PW"))[0] == 401
    assert sim.get("/api/v1/agent/version")[0] == 200           # open
    assert sim.get("/api/v1/agent/node")[0] == 401              # needs read:agent


def test_auth_users_v170_answers_500(start):
    sim = start("v1.7.0", *USERS)
    status, _, body = sim.get(JOBS)
    assert status == 500
    assert body == (b'{"Status":500,"Message":"missing authorization header","RequestID":"",'
                    b'"Code":"InternalError","Component":"APIServer"}\n')
    status, _, body = sim.get(JOBS, {"Authorization": "Bearer nope"})
    assert status == 500 and json.loads(body)["Message"] == "authentication failed: invalid API key"
    assert sim.get(JOBS, {"Authorization": "Bearer k-1"})[0] == 200


def test_auth_users_needs_v17(tmp_path):
    proc = subprocess.run([sys.executable, JOBSIM, "--bacalhau-version", "v1.5.2", *USERS],
                          capture_output=True, text=True, timeout=DEADLINE)
    assert proc.returncode != 0 and "v1.7.0" in proc.stderr


def test_auth_ns_anon_guards_the_list_only(start):
    sim = start("v1.5.1", "--bacalhau-auth", "ns-anon", "--bacalhau-token", "t-1")
    status, _, body = sim.get(JOBS)
    assert status == 403 and json.loads(body)["Message"] == "Access denied. "
    status, _, body = sim.get(JOBS, {"Authorization": "Bearer t-2"})
    assert status == 401 and json.loads(body)["Message"] == "Invalid token. "
    assert sim.get(JOBS, {"Authorization": "Bearer t-1"})[0] == 200
    assert sim.get(f"{JOBS}/j-{COMPLETED}")[0] == 200           # anonymous


def test_auth_switched_by_control(start):
    sim = start("v1.9.3")
    assert sim.get(JOBS)[0] == 200
    sim.control("POST", "auth", {"mode": "users", "api_keys": ["k"]})
    assert sim.get(JOBS)[0] == 401
    sim.control("POST", "auth", {"mode": "none"})
    assert sim.get(JOBS)[0] == 200


def test_old_client_version_header_is_refused_from_v14(start):
    sim = start("v1.5.2")
    status, _, body = sim.get(JOBS, {"X-Bacalhau-Git-Version": "v1.3.0"})
    assert status == 403
    assert json.loads(body) == {"Error": "Client version is outdated. Update your client",
                                "MinVersion": "1.4.0", "ClientVersion": "v1.3.0",
                                "ServerVersion": "v1.5.2"}
    assert sim.get(JOBS, {"X-Bacalhau-Git-Version": "v0.0.0-dev"})[0] == 200
    assert sim.get(JOBS, {"X-Bacalhau-Git-Version": "banana"})[0] == 400
    assert start("v1.3.2").get(JOBS, {"X-Bacalhau-Git-Version": "v1.0.0"})[0] == 200


# ---- controls and counters ----------------------------------------------------------------------

def test_control_api_and_stats(start):
    sim = start("v1.9.3")
    job = sim.control("POST", "jobs", {"name": "made", "state": "Running"})
    jid = job["id"]
    assert jid.startswith("j-") and job["revision"] >= 2
    job = sim.control("POST", f"jobs/{jid}/executions", {"node": "n-a", "state": "BidAccepted"})
    eid = job["executions"][0]["id"]
    sim.control("POST", f"jobs/{jid}/append", {"execution": eid, "data": "line\n"})
    sim.control("POST", f"jobs/{jid}/executions/{eid}",
                {"state": "Completed", "exit_code": 3, "published": {"Type": "ipfs",
                                                                     "Params": {"CID": "Qm1"}}})
    ex = sim.json(f"{JOBS}/{jid}/executions")["Items"][0]
    assert ex["ComputeState"]["StateType"] == 9
    assert ex["RunOutput"]["Stdout"] == "line\n" and ex["RunOutput"]["ExitCode"] == 3
    assert ex["PublishedResult"] == {"Type": "ipfs", "Params": {"CID": "Qm1"}}
    sim.control("POST", "reset")
    sim.get(f"{JOBS}/{jid}")
    sim.get(f"{JOBS}/{jid}/executions")
    sim.get(JOBS)
    st = sim.control("GET", "stats")
    assert st["by_job"] == {jid: 2}
    assert st["by_path"] == {f"{JOBS}/{jid}": 1, f"{JOBS}/{jid}/executions": 1, JOBS: 1}
    bulk = sim.control("POST", "bulk", {"count": 3, "state": "Running"})["ids"]
    assert len(bulk) == 3 and len(sim.json(JOBS)["Items"]) == 9
    status, _, _ = sim.request("POST", "/_sim/jobs", json.dumps({"bogus": 1}))
    assert status == 400
