"""gRPC-Web on the gateway's port (issue 6), with a client written here from gRPC's
PROTOCOL-WEB.md: `application/grpc-web+proto` (binary) and `application/grpc-web-text+proto`
(base64), over HTTP/1.1 (http.client) and HTTP/2 (curl --http2-prior-knowledge). The answer is
HTTP 200 whose body holds the response message frame and then the trailer frame (flag 0x80,
`name:value\\r\\n` lines); errors travel in that trailer frame too.
"""

from __future__ import annotations

import base64
import http.client
import struct
import subprocess
import time
import urllib.parse

import pytest

from helpers import CALL_TIMEOUT
from slow_upstream import SlowUpstream

SERVICE = "/genesys.cs.v1.ContextServices"


def frame(message: bytes, flag: int = 0) -> bytes:
    return struct.pack(">BI", flag, len(message)) + message


class WebAnswer:
    def __init__(self, status: int, headers: dict, body: bytes, text: bool):
        self.status = status
        self.headers = headers
        self.raw = body
        self.messages: list[bytes] = []
        self.trailers: dict[str, str] = {}
        if status != 200 or not headers.get("content-type", "").startswith("application/grpc-web"):
            return
        data = base64.b64decode(body, validate=True) if text else body
        i = 0
        while i < len(data):
            flag, length = struct.unpack(">BI", data[i:i + 5])
            payload = data[i + 5:i + 5 + length]
            assert len(payload) == length, f"truncated frame in {data!r}"
            if flag & 0x80:
                assert not self.trailers, "two trailer frames"
                for line in payload.decode().split("\r\n"):
                    if line:
                        name, _, value = line.partition(":")
                        self.trailers[name.strip().lower()] = value.strip()
            else:
                assert not self.trailers, "a message after the trailers"
                self.messages.append(payload)
            i += 5 + length
        assert self.trailers, f"no trailer frame in {data!r}"

    @property
    def code(self) -> int:
        return int(self.trailers["grpc-status"])

    @property
    def message(self) -> str:
        return urllib.parse.unquote(self.trailers.get("grpc-message", ""))


def call_http1(port: int, path: str, body: bytes, text: bool = False, headers: dict | None = None,
               method: str = "POST", content_type: str | None = None) -> WebAnswer:
    send = {"Content-Type": content_type or ("application/grpc-web-text+proto" if text else "application/grpc-web+proto"),
            "X-Grpc-Web": "1", "Accept": "application/grpc-web-text" if text else "application/grpc-web"}
    send.update(headers or {})
    payload = base64.b64encode(body) if text else body
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CALL_TIMEOUT)
    try:
        conn.request(method, path, body=payload if method == "POST" else None, headers=send)
        response = conn.getresponse()
        return WebAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(), text)
    finally:
        conn.close()


def call_http2(port: int, path: str, body: bytes, text: bool = False, headers: dict | None = None) -> WebAnswer:
    send = {"Content-Type": "application/grpc-web-text" if text else "application/grpc-web", "X-Grpc-Web": "1"}
    send.update(headers or {})
    args = ["curl", "-sS", "-i", "--http2-prior-knowledge", "--max-time", str(CALL_TIMEOUT), "-X", "POST",
            f"http://127.0.0.1:{port}{path}", "--data-binary", "@-"]
    for k, v in send.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run(args, input=base64.b64encode(body) if text else body, capture_output=True,
                         timeout=CALL_TIMEOUT + 5)
    assert out.returncode == 0, out.stderr.decode()
    head, _, payload = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/2 "), lines[0]
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return WebAnswer(int(lines[0].split()[1]), fields, payload, text)


CALLERS = {"http1-binary": (call_http1, False), "http1-text": (call_http1, True),
           "http2-binary": (call_http2, False), "http2-text": (call_http2, True)}


@pytest.mark.parametrize("transport", list(CALLERS))
def test_start_service_and_task(pb, gateway, rest, transport):
    call, text = CALLERS[transport]
    started = call(gateway.port, f"{SERVICE}/StartService", frame(pb.StartServiceRequest(customer_id="web").SerializeToString()),
                   text=text)
    assert started.status == 200
    assert started.headers["content-type"] == ("application/grpc-web-text+proto" if text else "application/grpc-web+proto")
    assert started.code == 0, started.trailers
    assert len(started.messages) == 1
    sid = pb.StartServiceResponse.FromString(started.messages[0]).service_id
    assert sid > 0

    request = pb.StartTaskRequest(service_id=sid, task_type=pb.BusinessAttribute(name="web task"),
                                  extensions_json='{"question3":"will be better with cable tv"}')
    task = call(gateway.port, f"{SERVICE}/StartTask", frame(request.SerializeToString()), text=text)
    assert task.code == 0, task.trailers
    answer = pb.StartTaskResponse.FromString(task.messages[0])
    assert answer.task_id == 1
    assert answer.location == f"/genesys/1/cs/service/{sid}/tasks/1"
    # It is in the core, as sent.
    stored = rest.get(f"/services/{sid}/tasks/1").json()
    assert stored["task_type"] == "web task" and stored["question3"] == "will be better with cable tv"


@pytest.mark.parametrize("transport", list(CALLERS))
def test_an_error_travels_in_the_trailer_frame(pb, gateway, transport):
    call, text = CALLERS[transport]
    answer = call(gateway.port, f"{SERVICE}/StartTask",
                  frame(pb.StartTaskRequest(service_id=987654321).SerializeToString()), text=text)
    assert answer.status == 200
    assert answer.messages == []
    assert answer.code == 5  # NOT_FOUND, from the core's 404
    assert answer.message == "There are no service found for : 987654321"
    assert answer.trailers["cs-exception"] == "NotFoundException"


def test_the_client_may_send_base64_in_padded_chunks(pb, gateway):
    """PROTOCOL-WEB.md: a text-mode body may be several base64 chunks, each padded."""
    message = frame(pb.StartServiceRequest(customer_id="chunks-of-base64").SerializeToString())
    body = base64.b64encode(message[:4]) + base64.b64encode(message[4:])
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=CALL_TIMEOUT)
    conn.request("POST", f"{SERVICE}/StartService", body=body,
                 headers={"Content-Type": "application/grpc-web-text"})
    response = conn.getresponse()
    answer = WebAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(), True)
    conn.close()
    assert answer.code == 0, answer.trailers


def test_malformed_calls_get_the_status_grpc_gives_them(pb, gateway):
    port = gateway.port
    good = pb.StartServiceRequest(customer_id="x").SerializeToString()

    def raw_text(body: bytes) -> WebAnswer:
        # A text-mode body sent as is, not through the helper's base64.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CALL_TIMEOUT)
        conn.request("POST", f"{SERVICE}/StartService", body=body, headers={"Content-Type": "application/grpc-web-text"})
        r = conn.getresponse()
        answer = WebAnswer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(), True)
        conn.close()
        return answer

    cases = [
        ("not base64", lambda: raw_text(b"!!not*base64"), 13),
        ("base64 cut short", lambda: raw_text(base64.b64encode(frame(good))[:-1]), 13),
        ("two messages", lambda: call_http1(port, f"{SERVICE}/StartService", frame(good) + frame(good)), 13),
        ("truncated frame", lambda: call_http1(port, f"{SERVICE}/StartService", frame(good)[:-2]), 13),
        ("no message", lambda: call_http1(port, f"{SERVICE}/StartService", b""), 13),
        ("compressed flag", lambda: call_http1(port, f"{SERVICE}/StartService", frame(good, flag=1)), 13),
        ("not protobuf", lambda: call_http1(port, f"{SERVICE}/StartService", frame(b"\xff\xff\xff")), 13),
        ("unknown method", lambda: call_http1(port, f"{SERVICE}/Nope", frame(good)), 12),
        ("bad grpc-timeout", lambda: call_http1(port, f"{SERVICE}/StartService", frame(good),
                                                headers={"grpc-timeout": "soon"}), 3),
        ("gzip", lambda: call_http1(port, f"{SERVICE}/StartService", frame(good), headers={"grpc-encoding": "gzip"}), 12),
        ("invalid field", lambda: call_http1(port, f"{SERVICE}/StartTask", frame(
            pb.StartTaskRequest(service_id=1, extensions_json="[1]").SerializeToString())), 3),
    ]
    for name, send, code in cases:
        answer = send()
        assert answer.status == 200, (name, answer.status, answer.raw)
        assert answer.code == code, (name, answer.trailers)
        assert answer.messages == [], name
    # Not gRPC-Web's business at all: plain HTTP errors.
    assert call_http1(port, f"{SERVICE}/StartService", frame(good), content_type="application/grpc-web+json").status == 415
    assert call_http1(port, f"{SERVICE}/StartService", b"", method="GET").status == 405


def test_health_check_over_grpc_web(protos, gateway):
    answer = call_http1(gateway.port, "/grpc.health.v1.Health/Check",
                        frame(protos.health.HealthCheckRequest().SerializeToString()))
    assert answer.code == 0
    assert protos.health.HealthCheckResponse.FromString(answer.messages[0]).status == \
        protos.health.HealthCheckResponse.SERVING


def test_deadline_exceeded_in_the_trailer_frame(pb, start_gateway):
    slow = SlowUpstream(delay=2.0)
    try:
        gw = start_gateway(upstream=slow.address)
        begun = time.monotonic()
        answer = call_http1(gw.port, f"{SERVICE}/StartTask", frame(pb.StartTaskRequest(service_id=1).SerializeToString()),
                            headers={"grpc-timeout": "300m"})
        took = time.monotonic() - begun
        assert answer.code == 4, answer.trailers  # DEADLINE_EXCEEDED
        assert took < 1.5, took
    finally:
        slow.close()


def test_cors(pb, start_gateway):
    gw = start_gateway("--cors-origin", "https://app.example", memory=True)
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-grpc-web,x-user-agent"}
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=CALL_TIMEOUT)
    conn.request("OPTIONS", f"{SERVICE}/StartService", headers=preflight)
    r = conn.getresponse()
    r.read()
    assert r.status == 204
    assert r.getheader("access-control-allow-origin") == "https://app.example"
    assert "POST" in r.getheader("access-control-allow-methods")
    assert r.getheader("access-control-allow-headers") == "content-type,x-grpc-web,x-user-agent"
    # An origin not configured: refused, with no CORS grant.
    conn.request("OPTIONS", f"{SERVICE}/StartService", headers={**preflight, "Origin": "https://evil.example"})
    r = conn.getresponse()
    body = r.read()
    assert r.status == 403 and r.getheader("access-control-allow-origin") is None
    assert b"ForbiddenException" in body
    conn.close()
    # The call itself: the browser may read grpc-status and the exception.
    answer = call_http1(gw.port, f"{SERVICE}/StartService", frame(pb.StartServiceRequest().SerializeToString()),
                        headers={"Origin": "https://app.example"})
    assert answer.code == 0
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert "grpc-status" in answer.headers["access-control-expose-headers"]
    # REST answers carry it too.
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=CALL_TIMEOUT)
    conn.request("GET", "/genesys/1/cs/services/1", headers={"Origin": "https://app.example"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200 and r.getheader("access-control-allow-origin") == "https://app.example"
    conn.close()


def test_no_cors_unless_configured(start_gateway):
    gw = start_gateway(memory=True)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=CALL_TIMEOUT)
    conn.request("OPTIONS", f"{SERVICE}/StartService",
                 headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    r = conn.getresponse()
    r.read()
    assert r.status == 403
    conn.close()
