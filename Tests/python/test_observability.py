"""Metrics and traces (README, "Metrics", "Tracing"), end to end with real processes: a scripted
run of known calls and errors over gRPC (grpcio) and REST, then the metrics endpoint must show
exactly those counts; a client's `traceparent` must appear in the gateway's and the core's log
line of that call (a batched gRPC StartTask; a single REST call sent on as a header); a
malformed one is replaced, never an error; and no metrics are served unless asked, and never on
the public port."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import grpc
import pytest

from helpers import CALL_TIMEOUT, wait_until

T = CALL_TIMEOUT
METRICS_RE = re.compile(r"address=http://127\.0\.0\.1:(\d+)/metrics .*metrics listening")
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


def http(method: str, url: str, body=None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    all_headers = dict(headers or {})
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=T) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def metrics_port(process) -> int:
    for line in process.lines:
        if m := METRICS_RE.search(line):
            return int(m.group(1))
    raise AssertionError("no 'metrics listening' line:\n" + process.log)


def scrape(port: int) -> dict:
    """{(name, frozenset(labels)): value} of the exposition, after checking its media type."""
    status, headers, body = http("GET", f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL_RE.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grpc_handled(samples, method, code, service="genesys.cs.v1.ContextServices"):
    return value(samples, "grpc_server_handled_total", grpc_service=service, grpc_method=method, grpc_code=code)


def call_lines(process, **expected) -> list[dict]:
    """The call log lines of a process (README, "Tracing") whose fields include `expected`."""
    found = []
    for line in process.lines:
        if not (line.endswith("] call failed") or line.endswith("] call")):
            continue
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if all(fields.get(k) == v for k, v in expected.items()):
            found.append(fields)
    return found


# MARK: metrics


def test_metrics_show_exactly_the_calls_made(protos, pb, start_gateway):
    gw = start_gateway("--metrics-listen", "127.0.0.1:0", memory=True)
    port = metrics_port(gw)
    before = scrape(port)
    assert grpc_handled(before, "StartTask", "OK") == 0

    channel = gw.channel()
    stub = protos.rpc.ContextServicesStub(channel)
    sid = stub.StartService(pb.StartServiceRequest(customer_id="c-1"), timeout=T).service_id
    for _ in range(3):
        stub.StartTask(pb.StartTaskRequest(service_id=sid, task_type=pb.BusinessAttribute(name="t")), timeout=T)
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as failed:
            stub.StartTask(pb.StartTaskRequest(service_id=999_999, task_type=pb.BusinessAttribute(name="t")), timeout=T)
        assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    unknown = channel.unary_unary("/genesys.cs.v1.ContextServices/NoSuchMethod",
                                  request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as failed:
        unknown(b"", timeout=T)
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    channel.close()

    base = f"http://127.0.0.1:{gw.port}/genesys/1/cs"
    for _ in range(2):
        assert http("POST", f"{base}/services/{sid}/tasks/start", {"task_type": "t"})[0] == 201
    assert http("GET", f"{base}/services/999999")[0] == 404
    assert http("GET", f"http://127.0.0.1:{gw.port}/healthz")[0] == 200

    s = scrape(port)
    assert grpc_handled(s, "StartService", "OK") == 1
    assert grpc_handled(s, "StartTask", "OK") == 3
    assert grpc_handled(s, "StartTask", "NOT_FOUND") == 2
    assert grpc_handled(s, "unknown", "UNIMPLEMENTED", service="unknown") == 1
    assert sum(v for (name, _), v in s.items() if name == "grpc_server_handled_total") == 7
    assert value(s, "grpc_server_handling_seconds_count", grpc_service="genesys.cs.v1.ContextServices",
                 grpc_method="StartTask") == 5
    assert value(s, "grpc_server_handling_seconds_bucket", grpc_service="genesys.cs.v1.ContextServices",
                 grpc_method="StartTask", le="+Inf") == 5

    assert value(s, "cs_gateway_http_requests_total", operation="StartTask", code="201") == 2
    assert value(s, "cs_gateway_http_requests_total", operation="QueryService", code="404") == 1
    assert value(s, "cs_gateway_http_requests_total", operation="health", code="200") == 1
    assert sum(v for (name, _), v in s.items() if name == "cs_gateway_http_requests_total") == 4

    # Every call that reached the core went in a batch: 1 + 3 + 2 gRPC, 2 + 1 REST.
    assert value(s, "cs_gateway_batch_items_sum") == 9
    assert value(s, "cs_gateway_batch_wait_seconds_count") == 9
    assert value(s, "cs_gateway_batch_items_count") == value(s, "cs_gateway_batches_total") >= 1
    assert value(s, "cs_gateway_queue_depth") == 0
    assert value(s, "cs_gateway_shed_total", reason="queue_full") == 0
    assert value(s, "cs_gateway_http2_connections_opened_total") == 1  # the one grpcio channel
    assert value(s, "cs_gateway_http2_streams_total") == 7
    assert value(s, "cs_gateway_upstream_connections") >= 1
    assert value(s, "cs_gateway_upstream_errors_total", kind="connect_failed") == 0

    # The embedded core, in the same exposition: each item by operation and status.
    assert value(s, "cs_core_batch_items_total", operation="StartService", code="201") == 1
    assert value(s, "cs_core_batch_items_total", operation="StartTask", code="201") == 5
    assert value(s, "cs_core_batch_items_total", operation="StartTask", code="404") == 2
    assert value(s, "cs_core_batch_items_total", operation="QueryService", code="404") == 1
    assert value(s, "cs_core_http_requests_total", operation="batch", code="200") == value(s, "cs_gateway_batches_total")
    assert value(s, "cs_core_store_commits_total") >= 1
    assert value(s, "cs_core_store_commit_writes_sum") == 8  # every write reached the store: 1 + 3 + 2 + 2


def test_a_standalone_core_counts_its_own_requests(start_core):
    core = start_core("--metrics-listen", "127.0.0.1:0", memory=True)
    port = metrics_port(core)
    base = f"http://127.0.0.1:{core.core_port}/genesys/1/cs"
    status, _, body = http("POST", f"{base}/services/start", {"customer_id": "c"})
    assert status == 201
    sid = json.loads(body)["service_id"]
    assert http("POST", f"{base}/services/{sid}/tasks/start", {"task_type": "t"})[0] == 201
    assert http("POST", f"{base}/services/{sid}/tasks/start", {"task_id": 5})[0] == 400
    assert http("GET", f"{base}/nowhere")[0] == 404
    s = scrape(port)
    assert value(s, "cs_core_http_requests_total", operation="StartService", code="201") == 1
    assert value(s, "cs_core_http_requests_total", operation="StartTask", code="201") == 1
    assert value(s, "cs_core_http_requests_total", operation="StartTask", code="400") == 1
    assert value(s, "cs_core_http_requests_total", operation="unknown", code="404") == 1
    assert value(s, "cs_core_http_request_duration_seconds_count", operation="StartTask") == 2
    assert value(s, "cs_core_store_commits_total") == 2
    assert value(s, "cs_core_store_duration_seconds_count", operation="write") == 2
    # Never the gateway's families in a core's exposition, never a tenant or id as a label.
    assert not any(name.startswith(("grpc_", "cs_gateway_")) for name, _ in s)
    assert not any(v.isdigit() and k not in ("code", "le") for _, labels in s for k, v in labels)


def test_no_metrics_unless_asked_and_never_on_the_public_port(start_gateway, start_core):
    gw = start_gateway(memory=True)
    assert not any(METRICS_RE.search(line) for line in gw.lines)
    assert http("GET", f"http://127.0.0.1:{gw.port}/metrics")[0] == 404
    assert http("GET", f"http://127.0.0.1:{gw.core_port}/metrics")[0] == 404

    with_metrics = start_gateway("--metrics-listen", "127.0.0.1:0", memory=True)
    port = metrics_port(with_metrics)
    assert port not in (with_metrics.port, with_metrics.core_port)
    status, _, body = http("GET", f"http://127.0.0.1:{with_metrics.port}/metrics")
    assert status == 404 and b"grpc_server_handled_total" not in body
    assert http("GET", f"http://127.0.0.1:{port}/metrics")[0] == 200
    assert http("GET", f"http://127.0.0.1:{port}/other")[0] == 404

    core = start_core(memory=True)
    assert not any(METRICS_RE.search(line) for line in core.lines)
    assert http("GET", f"http://127.0.0.1:{core.core_port}/metrics")[0] == 404


# MARK: traces


def test_traceparent_of_a_batched_grpc_call_is_in_both_processes_lines(protos, pb, start_gateway, start_core):
    core = start_core(memory=True)
    gw = start_gateway(upstream=core.address)
    channel = gw.channel()
    stub = protos.rpc.ContextServicesStub(channel)
    with pytest.raises(grpc.RpcError) as failed:
        stub.StartTask(pb.StartTaskRequest(service_id=424242, task_type=pb.BusinessAttribute(name="t")), timeout=T,
                       metadata=(("traceparent", TRACEPARENT), ("contactcenterid", "tenant-7")))
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    channel.close()

    assert wait_until(lambda: call_lines(gw, trace_id=CLIENT_TRACE) and call_lines(core, trace_id=CLIENT_TRACE), T)
    [at_gateway] = call_lines(gw, trace_id=CLIENT_TRACE)
    assert at_gateway["protocol"] == "grpc" and at_gateway["method"] == "StartTask"
    assert at_gateway["status"] == "NOT_FOUND" and at_gateway["tenant"] == "tenant-7"
    assert at_gateway["parent_span_id"] == CLIENT_SPAN
    assert at_gateway["request_id"] == at_gateway["span_id"] and at_gateway["span_id"] != CLIENT_SPAN
    assert float(at_gateway["duration_ms"]) >= 0
    assert at_gateway["exception"] == "NotFoundException"
    [at_core] = call_lines(core, trace_id=CLIENT_TRACE)
    assert at_core["protocol"] == "batch_item" and at_core["method"] == "StartTask" and at_core["status"] == "404"
    assert at_core["parent_span_id"] == at_gateway["request_id"]  # the gateway's span is the core's parent
    assert at_core["tenant"] == "tenant-7"
    assert at_core["span_id"] not in (CLIENT_SPAN, at_gateway["span_id"])
    for line in gw.lines + core.lines:
        assert "extensions" not in line and "task_type" not in line  # no body at notice or info


def test_traceparent_of_a_single_rest_call_goes_on_as_a_header(start_gateway, start_core):
    core = start_core(memory=True)
    gw = start_gateway("--no-batching", upstream=core.address)
    status, _, _ = http("POST", f"http://127.0.0.1:{gw.port}/genesys/1/cs/services/515151/tasks/start",
                        {"task_type": "t"}, headers={"traceparent": TRACEPARENT})
    assert status == 404
    assert wait_until(lambda: call_lines(gw, trace_id=CLIENT_TRACE) and call_lines(core, trace_id=CLIENT_TRACE), T)
    [at_gateway] = call_lines(gw, trace_id=CLIENT_TRACE)
    assert at_gateway["protocol"] == "rest" and at_gateway["method"] == "StartTask" and at_gateway["status"] == "404"
    assert at_gateway["parent_span_id"] == CLIENT_SPAN
    assert at_gateway["path"] == "/genesys/1/cs/services/515151/tasks/start"
    [at_core] = call_lines(core, trace_id=CLIENT_TRACE)
    assert at_core["protocol"] == "rest" and at_core["status"] == "404"  # a single call, not a batch item
    assert at_core["parent_span_id"] == at_gateway["request_id"]


def test_every_call_line_at_debug_carries_the_trace(protos, pb, start_gateway, start_core):
    core = start_core("--log-level", "debug", memory=True)
    gw = start_gateway("--log-level", "debug", upstream=core.address)
    channel = gw.channel()
    stub = protos.rpc.ContextServicesStub(channel)
    stub.StartService(pb.StartServiceRequest(customer_id="c"), timeout=T, metadata=(("traceparent", TRACEPARENT),))
    channel.close()
    assert wait_until(lambda: call_lines(gw, trace_id=CLIENT_TRACE) and call_lines(core, trace_id=CLIENT_TRACE), T)
    [at_gateway] = call_lines(gw, trace_id=CLIENT_TRACE)
    assert at_gateway["status"] == "OK" and at_gateway["method"] == "StartService"
    [at_core] = call_lines(core, trace_id=CLIENT_TRACE, protocol="batch_item")
    assert at_core["status"] == "201" and at_core["parent_span_id"] == at_gateway["request_id"]


@pytest.mark.parametrize("bad", [
    "garbage",
    f"00-{CLIENT_TRACE.upper()}-{CLIENT_SPAN}-01",
    f"00-{'0' * 32}-{CLIENT_SPAN}-01",
    f"ff-{CLIENT_TRACE}-{CLIENT_SPAN}-01",
    f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01-extra",
])
def test_a_malformed_traceparent_is_replaced_not_an_error(protos, pb, gateway, bad):
    stub = protos.rpc.ContextServicesStub(gateway.channel())
    # The call itself is untouched by it: it succeeds…
    sid = stub.StartService(pb.StartServiceRequest(customer_id="c"), timeout=T,
                            metadata=(("traceparent", bad),)).service_id
    assert sid > 0
    # …and a failing call's line carries a trace of the gateway's own, with no parent.
    marker = f"tenant-bad-{abs(hash(bad)) % 10_000}"
    with pytest.raises(grpc.RpcError) as failed:
        stub.StartTask(pb.StartTaskRequest(service_id=777_777, task_type=pb.BusinessAttribute(name="t")), timeout=T,
                       metadata=(("traceparent", bad), ("contactcenterid", marker)))
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    assert wait_until(lambda: len(call_lines(gateway, tenant=marker)) >= 2, T)  # the gateway's and its core's
    lines = call_lines(gateway, tenant=marker)
    at_gateway = next(line for line in lines if line["protocol"] == "grpc")
    at_core = next(line for line in lines if line["protocol"] == "batch_item")
    assert re.fullmatch(r"[0-9a-f]{32}", at_gateway["trace_id"]) and at_gateway["trace_id"] != CLIENT_TRACE
    assert "parent_span_id" not in at_gateway
    assert at_core["trace_id"] == at_gateway["trace_id"] and at_core["parent_span_id"] == at_gateway["request_id"]
    # REST too: a 4xx for the call's own reason, never for the header.
    status, _, _ = http("POST", f"http://127.0.0.1:{gateway.port}/genesys/1/cs/services/{sid}/tasks/start",
                        {"task_type": "t"}, headers={"traceparent": bad})
    assert status == 201


def test_traceparent_of_a_grpc_web_call_goes_on_like_rest(pb, start_gateway, start_core):
    core = start_core(memory=True)
    # debug: a gRPC-Web call's line carries its HTTP status (200; the gRPC status is in the
    # body's trailer frame), so it is never a failed call's notice line (README, "Tracing").
    gw = start_gateway("--log-level", "debug", upstream=core.address)
    message = pb.StartTaskRequest(service_id=626262, task_type=pb.BusinessAttribute(name="t")).SerializeToString()
    body = b"\x00" + len(message).to_bytes(4, "big") + message
    request = urllib.request.Request(f"http://127.0.0.1:{gw.port}/genesys.cs.v1.ContextServices/StartTask", data=body,
                                     method="POST", headers={"content-type": "application/grpc-web+proto",
                                                             "x-grpc-web": "1", "traceparent": TRACEPARENT})
    with urllib.request.urlopen(request, timeout=T) as response:
        assert response.status == 200
        assert b"grpc-status:5" in response.read()  # NOT_FOUND, in the trailer frame
    assert wait_until(lambda: call_lines(gw, trace_id=CLIENT_TRACE) and call_lines(core, trace_id=CLIENT_TRACE), T)
    [at_gateway] = call_lines(gw, trace_id=CLIENT_TRACE)
    assert at_gateway["method"] == "grpc_web" and at_gateway["status"] == "200"
    assert at_gateway["parent_span_id"] == CLIENT_SPAN
    [at_core] = call_lines(core, trace_id=CLIENT_TRACE)
    assert at_core["method"] == "StartTask" and at_core["parent_span_id"] == at_gateway["request_id"]
