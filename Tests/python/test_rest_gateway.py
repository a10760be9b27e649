"""REST on the gateway's port (issue 6): every operation of CONTEXT-SERVICES.md §2 sent with
`curl` over HTTP/1.1 and over HTTP/2 (`--http2-prior-knowledge`) to the gateway answers
exactly what the same call answers straight from a core: status, headers and body.

Three fresh systems play the same script: a standalone core (the reference, HTTP/1.1), and
two gateways with embedded cores, one spoken to over HTTP/1.1, one over HTTP/2. Every body
carries its own timestamp, so the answers are byte-for-byte comparable.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from helpers import CALL_TIMEOUT

BASE = "/genesys/1/cs"
TS = "2017-04-27T10:18:00Z"

#: (method, path, body or None, extra headers): the script, in order. Bodies as text so
#: malformed ones can be sent too; the content type is application/json unless a header says.
SCRIPT: list[tuple[str, str, str | None, dict]] = [
    ("POST", "/services/start", json.dumps({"service_type": "sales", "customer_id": "c-42", "timestamp": TS,
                                             "channel": "ivr", "big": 2**60 + 1}), {}),
    ("POST", "/services/1/states/start", json.dumps({"state_type": "identify", "timestamp": TS}), {}),
    ("POST", "/services/1/states/start", json.dumps({"state_type": 7, "timestamp": TS}), {}),
    ("POST", "/services/1/tasks/start", json.dumps({"task_type": "customer info", "state_id": 1, "est_duration": 460,
                                                    "timestamp": TS, "question3": "will be better with cable tv"}), {}),
    ("POST", "/services/1/tasks/start", json.dumps({"task_type": 12, "timestamp": TS}), {}),
    ("POST", "/services/1/tasks/start", '{"task_type":"billing","state_id":2,"timestamp":"2017-04-27T10:19:00.5+02:00","x":1.50}', {}),
    ("GET", "/services/1/tasks/1", None, {}),
    ("GET", "/service/1/tasks/1", None, {}),  # the singular alias of Location
    ("POST", "/services/1/tasks/1/end", json.dumps({"disposition": "resolved", "timestamp": TS}), {}),
    ("POST", "/services/1/states/1/end", json.dumps({"timestamp": TS}), {}),
    ("GET", "/services/1", None, {}),
    ("GET", "/services/1?active_states=true&completed_states=true&active_tasks=true&completed_tasks=true", None, {}),
    ("GET", "/services/1/states/1?completed_tasks=true&active_tasks=true", None, {}),
    ("GET", "/services/1/tasks", None, {}),
    ("GET", "/services/1/tasks/active", None, {}),
    ("GET", "/services/1/tasks/completed", None, {}),
    ("GET", "/services/1/tasks?task_types=12,billing&state_id=2", None, {}),
    # Tenancy: another tenant sees nothing of tenant "" and has its own services.
    ("GET", "/services/1", None, {"ContactCenterId": "acme"}),
    ("POST", "/services/start", json.dumps({"timestamp": TS}), {"ContactCenterId": "acme"}),
    ("POST", "/services/start", json.dumps({"timestamp": TS}), {"ContactCenterId": "bad tenant"}),
    # Errors, each in the contract's shape.
    ("GET", "/services/99", None, {}),
    ("POST", "/services/99/tasks/start", json.dumps({"timestamp": TS}), {}),
    ("GET", "/services/1/tasks/99", None, {}),
    ("PUT", "/services/1", "{}", {}),
    ("GET", "/nothing/here", None, {}),
    ("POST", "/services/1/tasks/start", '{"task_type": ', {}),
    ("POST", "/services/1/tasks/start", '{"a":1,"a":2}', {}),
    ("POST", "/services/1/tasks/start", json.dumps({"state_id": "x", "timestamp": TS}), {}),
    ("POST", "/services/1/tasks/start", json.dumps({"timestamp": "yesterday"}), {}),
    ("POST", "/services/1/tasks/start", "task_type=1", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("POST", "/services/1/tasks/start", json.dumps({"pad": "x" * 70_000}), {}),
    ("POST", "/services/1/states/1/end", json.dumps({"timestamp": TS}), {}),  # already ended: 409
    ("POST", "/services/1/tasks/2/end", "", {}),  # no body at all: an event with no fields (nondeterministic time, 204)
    ("POST", "/services/1/end", json.dumps({"disposition": 4, "timestamp": TS}), {}),
    ("POST", "/services/1/tasks/start", json.dumps({"timestamp": TS}), {}),  # allowed on a completed service
    ("DELETE", "/services/1", None, {}),
    ("GET", "/services/1", None, {}),
    ("DELETE", "/services/1", None, {}),
    ("POST", "/services/start", json.dumps({"timestamp": TS}), {}),  # a deleted id is never reused
]

#: Headers that describe the connection, not the answer.
HOP = {"connection", "keep-alive", "date"}


def curl(url: str, method: str, body: str | None, headers: dict, http2: bool) -> tuple[int, dict, bytes]:
    args = ["curl", "-sS", "-i", "--max-time", str(CALL_TIMEOUT), "-X", method, url]
    args.append("--http2-prior-knowledge" if http2 else "--http1.1")
    send = dict(headers)
    if body is not None:
        send.setdefault("Content-Type", "application/json")
        args += ["--data-binary", "@-"]
    for k, v in send.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run(args, input=(body or "").encode(), capture_output=True, timeout=CALL_TIMEOUT + 5)
    assert out.returncode == 0, out.stderr.decode()
    raw = out.stdout
    head, _, payload = raw.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):  # an interim answer before the real one
        head, _, payload = payload.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return status, fields, payload


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    """(core alone, gateway for HTTP/1.1, gateway for HTTP/2), each fresh, killed at the end."""
    from conftest import _launcher
    from helpers import Core

    assert shutil.which("curl"), "curl is required (gateway/scripts/setup.sh installs it)"
    started = []
    launch = _launcher(tmp_path_factory, started)
    core = Core(["--listen", "127.0.0.1:0", "--threads", "2", "--memory", "--max-body", "65536"])
    gw1 = launch("--max-body", "65536", memory=True)
    gw2 = launch("--max-body", "65536", memory=True)
    yield core, gw1, gw2
    core.kill()
    for gw in started:
        gw.kill()


def test_every_rest_operation_answers_as_the_core_does_over_http1_and_http2(systems):
    core, gw1, gw2 = systems
    assert gw1.port and gw2.port
    for i, (method, path, body, headers) in enumerate(SCRIPT):
        want = curl(f"http://127.0.0.1:{core.core_port}{BASE}{path}", method, body, headers, http2=False)
        got1 = curl(f"http://127.0.0.1:{gw1.port}{BASE}{path}", method, body, headers, http2=False)
        got2 = curl(f"http://127.0.0.1:{gw2.port}{BASE}{path}", method, body, headers, http2=True)
        label = f"step {i}: {method} {path}"
        for name, got in (("HTTP/1.1", got1), ("HTTP/2", got2)):
            assert got[0] == want[0], f"{label} over {name}: status {got[0]}, the core said {want[0]} {want[2][:200]!r}"
            assert got[2] == want[2], f"{label} over {name}: body {got[2][:300]!r}, the core said {want[2][:300]!r}"
            strip = lambda h: {k: v for k, v in h.items() if k not in HOP}
            assert strip(got[1]) == strip(want[1]), f"{label} over {name}: headers differ"


def test_the_script_covers_every_operation_and_error(systems):
    """The comparison above means something only if the script hits every code path: replay
    it against a fresh core and look at what it answered."""
    from helpers import Core

    core = Core(["--listen", "127.0.0.1:0", "--threads", "1", "--memory", "--max-body", "65536"])
    try:
        seen = set()
        for method, path, body, headers in SCRIPT:
            status, fields, payload = curl(f"http://127.0.0.1:{core.core_port}{BASE}{path}", method, body, headers,
                                           http2=False)
            exception = json.loads(payload).get("exception") if status >= 400 else None
            seen.add((status, exception))
        assert {(201, None), (200, None), (204, None), (400, "ValidationException"), (404, "NotFoundException"),
                (405, "MethodNotAllowedException"), (409, "ConflictException"), (413, "PayloadTooLargeException"),
                (415, "UnsupportedMediaTypeException")} <= seen, seen
    finally:
        core.kill()


def test_health_path_follows_the_core(start_gateway, start_core, protos):
    import grpc

    core = start_core(memory=True)
    gw = start_gateway(upstream=core.address)
    url = f"http://127.0.0.1:{gw.port}/healthz"
    status, fields, body = curl(url, "GET", None, {}, http2=False)
    assert (status, json.loads(body)) == (200, {"status": "SERVING"})
    status, _, body = curl(url, "GET", None, {}, http2=True)
    assert (status, json.loads(body)) == (200, {"status": "SERVING"})
    core.kill()
    status, fields, body = curl(url, "GET", None, {}, http2=False)
    assert (status, json.loads(body)) == (503, {"status": "NOT_SERVING"})
    assert fields.get("retry-after") == "1"
    # The same state as grpc.health.v1.
    with gw.channel() as channel:
        health = protos.health_rpc.HealthStub(channel)
        answer = health.Check(protos.health.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        assert answer.status == protos.health.HealthCheckResponse.NOT_SERVING


def test_native_grpc_over_http1_is_refused_with_a_hint(start_gateway):
    gw = start_gateway(memory=True)
    status, _, body = curl(f"http://127.0.0.1:{gw.port}/genesys.cs.v1.ContextServices/StartTask", "POST", "\0\0\0\0\0",
                           {"Content-Type": "application/grpc"}, http2=False)
    assert status == 415
    assert "gRPC-Web" in json.loads(body)["message"]


def test_grpc_only_serves_no_rest(start_gateway):
    gw = start_gateway("--grpc-only", memory=True)
    status, _, _ = curl(f"http://127.0.0.1:{gw.port}{BASE}/services/1", "GET", None, {}, http2=True)
    assert status == 405  # not a gRPC call: refused as before REST came to the gateway
    status, _, _ = curl(f"http://127.0.0.1:{gw.port}{BASE}/services/start", "POST", "{}", {}, http2=True)
    assert status == 415
    out = subprocess.run(["curl", "-sS", "--http1.1", "--max-time", "5", f"http://127.0.0.1:{gw.port}{BASE}/services/1"],
                         capture_output=True)
    assert out.returncode != 0  # HTTP/1.1 is not spoken at all
