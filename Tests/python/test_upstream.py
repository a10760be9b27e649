"""What the gateway makes of its upstream's answers and failures, against a scripted stand-in
core (slow_upstream.py): the HTTP → gRPC table of GRPCStatus.swift end to end, broken
connections, and an upstream that comes back."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from helpers import CALL_TIMEOUT, free_port, trailing
from slow_upstream import SlowUpstream

T = CALL_TIMEOUT


@pytest.fixture(scope="module")
def stand_in():
    upstream = SlowUpstream(delay=0)
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def scripted(protos, stand_in, tmp_path_factory):
    from conftest import _launcher

    started = []
    gw = _launcher(tmp_path_factory, started)(upstream=stand_in.address)
    channel = gw.channel()
    yield protos.rpc.ContextServicesStub(channel)
    channel.close()
    for g in started:
        g.kill()


def scripted_call(pb, stub, **script):
    return stub.StartTask(pb.StartTaskRequest(service_id=1, extensions_json=json.dumps(script)), timeout=T)


@pytest.mark.parametrize("status,exception,code", [
    (400, "ValidationException", grpc.StatusCode.INVALID_ARGUMENT),
    (401, "UnauthorizedException", grpc.StatusCode.UNAUTHENTICATED),
    (403, "ForbiddenException", grpc.StatusCode.PERMISSION_DENIED),
    (404, "NotFoundException", grpc.StatusCode.NOT_FOUND),
    (405, "MethodNotAllowedException", grpc.StatusCode.UNIMPLEMENTED),
    (409, "ConflictException", grpc.StatusCode.FAILED_PRECONDITION),
    (409, "IdSpaceExhaustedException", grpc.StatusCode.FAILED_PRECONDITION),
    (413, "PayloadTooLargeException", grpc.StatusCode.RESOURCE_EXHAUSTED),
    (415, "UnsupportedMediaTypeException", grpc.StatusCode.INTERNAL),
    (429, "OverloadedException", grpc.StatusCode.RESOURCE_EXHAUSTED),
    (500, "InternalException", grpc.StatusCode.INTERNAL),
    (501, "NotImplementedException", grpc.StatusCode.UNIMPLEMENTED),
    (502, "BadGatewayException", grpc.StatusCode.UNAVAILABLE),
    (503, "OverloadedException", grpc.StatusCode.UNAVAILABLE),
    (504, "GatewayTimeoutException", grpc.StatusCode.DEADLINE_EXCEEDED),
    (418, "TeapotException", grpc.StatusCode.INTERNAL),
])
def test_http_status_table(pb, scripted, status, exception, code):
    with pytest.raises(grpc.RpcError) as caught:
        scripted_call(pb, scripted, fast=True, status=status, exception=exception, message=f"the core says {status} é")
    assert caught.value.code() == code
    # The core's message and exception survive (§7).
    assert caught.value.details() == f"the core says {status} é"
    assert trailing(caught.value)["cs-exception"] == exception


def test_error_body_outside_the_contract(pb, scripted):
    with pytest.raises(grpc.RpcError) as caught:
        scripted_call(pb, scripted, fast=True, status=502, raw="<html>bad gateway</html>")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "502" in caught.value.details()


def test_malformed_success_answer(pb, scripted):
    with pytest.raises(grpc.RpcError) as caught:
        scripted_call(pb, scripted, fast=True, status=201, raw="not json")
    assert caught.value.code() == grpc.StatusCode.INTERNAL


def test_connection_dropped_without_an_answer(pb, scripted, stand_in):
    began = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        scripted_call(pb, scripted, fast=True, drop=True)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - began < 2
    # The next call gets a new connection and its own answer.
    assert scripted_call(pb, scripted, fast=True, marker=41).task_id == 41


def test_upstream_that_comes_back(protos, start_gateway):
    pb, health = protos.pb, protos.health
    port = free_port()
    gw = start_gateway(upstream=f"127.0.0.1:{port}")
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        checker = protos.health_rpc.HealthStub(channel)
        assert checker.Check(health.HealthCheckRequest(), timeout=T).status == health.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as caught:
            scripted_call(pb, stub, fast=True)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        upstream = SlowUpstream(delay=0, port=port)
        try:
            assert checker.Check(health.HealthCheckRequest(), timeout=T).status == health.HealthCheckResponse.SERVING
            # The pool reconnects with capped, jittered backoff (50 ms doubling, at most 5 s):
            # until the current backoff ends, calls are refused fast with UNAVAILABLE rather
            # than queued. After a couple of failures that is well under 2 s.
            deadline = time.monotonic() + 2.0
            while True:
                try:
                    assert scripted_call(pb, stub, fast=True, marker=9).task_id == 9
                    break
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                    assert time.monotonic() < deadline, "no recovery within the backoff bound"
                    time.sleep(0.05)
        finally:
            upstream.close()
