"""Every status code the gateway answers with, and gRPC health."""

from __future__ import annotations

import grpc
import pytest

from helpers import CALL_TIMEOUT, RestClient, free_port, trailing

T = CALL_TIMEOUT
MiB = 1 << 20


def attr(pb, value):
    return pb.BusinessAttribute(id=value) if isinstance(value, int) else pb.BusinessAttribute(name=value)


def fails(call, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=kw.pop("timeout", T), **kw)
    return caught.value


@pytest.fixture(scope="module")
def sid(pb, stub) -> int:
    return stub.StartService(pb.StartServiceRequest(), timeout=T).service_id


# MARK: INVALID_ARGUMENT


def test_session_id_of_33_characters(pb, stub, rest, sid):
    error = fails(stub.StartTask, pb.StartTaskRequest(
        service_id=sid, task_type=attr(pb, "t"), event=pb.EventFields(session_id="x" * 33)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "session_id" in error.details()
    assert trailing(error).get("cs-exception") == "ValidationException"
    # Refused before the core: nothing stored.
    assert rest.get(f"/services/{sid}/tasks").json() == []
    # 32 is the limit, not one less (String lengths count Unicode scalars: é is one).
    ok = stub.StartTask(pb.StartTaskRequest(service_id=sid, event=pb.EventFields(session_id="é" * 32)), timeout=T)
    assert rest.get(f"/services/{sid}/tasks/{ok.task_id}").json()["started"]["session_id"] == "é" * 32


def test_both_extension_forms(pb, stub, sid):
    request = pb.StartTaskRequest(service_id=sid, extensions_json='{"a":1}')
    request.extensions.update({"a": 1})
    error = fails(stub.StartTask, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "extensions" in error.details() and "extensions_json" in error.details()
    assert trailing(error).get("cs-exception") == "ValidationException"


@pytest.mark.parametrize("text,word", [
    ('{"a":1', "extensions_json"),          # not JSON
    ("[1,2]", "extensions_json"),           # not an object
    ('{"a":1,"a":2}', "extensions_json"),   # a key twice
    ('{"task_id":3}', "task_id"),           # names the resource
    ('{"session_id":"s"}', "session_id"),   # a standard field belongs in its own field
])
def test_bad_extensions_json(pb, stub, sid, text, word):
    error = fails(stub.StartTask, pb.StartTaskRequest(service_id=sid, extensions_json=text))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert word in error.details()


def test_missing_service_id(pb, stub):
    error = fails(stub.QueryService, pb.QueryServiceRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "service_id" in error.details()


# MARK: NOT_FOUND, FAILED_PRECONDITION


def test_unknown_service(pb, stub):
    error = fails(stub.QueryService, pb.QueryServiceRequest(service_id=987654321))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "There are no service found for : 987654321"
    assert trailing(error)["cs-exception"] == "NotFoundException"
    error = fails(stub.StartTask, pb.StartTaskRequest(service_id=987654321))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "There are no service found for : 987654321"


def test_unknown_task_and_state(pb, stub, sid):
    for call, request in [
        (stub.QueryTask, pb.QueryTaskRequest(service_id=sid, task_id=999)),
        (stub.QueryState, pb.QueryStateRequest(service_id=sid, state_id=999)),
        (stub.StartTask, pb.StartTaskRequest(service_id=sid, state_id=999)),
    ]:
        error = fails(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND, request
        assert trailing(error)["cs-exception"] == "NotFoundException"


def test_complete_twice(pb, stub, rest, sid):
    tid = stub.StartTask(pb.StartTaskRequest(service_id=sid), timeout=T).task_id
    stub.CompleteTask(pb.CompleteTaskRequest(service_id=sid, task_id=tid, disposition_desc="first"), timeout=T)
    error = fails(stub.CompleteTask, pb.CompleteTaskRequest(service_id=sid, task_id=tid, disposition_desc="second"))
    # GRPCStatus.swift: 409 ConflictException → FAILED_PRECONDITION.
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert trailing(error)["cs-exception"] == "ConflictException"
    assert error.details()
    # The first end event stands.
    assert rest.get(f"/services/{sid}/tasks/{tid}").json()["completed"]["disposition_desc"] == "first"

    other = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
    stub.CompleteService(pb.CompleteServiceRequest(service_id=other), timeout=T)
    error = fails(stub.CompleteService, pb.CompleteServiceRequest(service_id=other))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert trailing(error)["cs-exception"] == "ConflictException"


# MARK: UNAUTHENTICATED


@pytest.fixture(scope="module")
def auth_gateway(tmp_path_factory):
    from conftest import _launcher

    started = []
    yield _launcher(tmp_path_factory, started)("--auth-token", "s3cret")
    for gw in started:
        gw.kill()


def test_unauthenticated(protos, auth_gateway):
    pb = protos.pb
    with auth_gateway.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        error = fails(stub.StartService, pb.StartServiceRequest())
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert trailing(error)["cs-exception"] == "UnauthorizedException"

        error = fails(stub.StartService, pb.StartServiceRequest(), metadata=[("authorization", "Bearer wrong")])
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED

        good = [("authorization", "Bearer s3cret")]
        answer = stub.StartService(pb.StartServiceRequest(customer_id="c"), timeout=T, metadata=good)
        assert answer.service_id == 1
        queried = stub.QueryService(pb.QueryServiceRequest(service_id=1), timeout=T, metadata=good)
        assert queried.service.customer_id == "c"
        # Health needs no credentials.
        health = protos.health_rpc.HealthStub(channel).Check(protos.health.HealthCheckRequest(), timeout=T)
        assert health.status == protos.health.HealthCheckResponse.SERVING


# MARK: RESOURCE_EXHAUSTED


def sized_start_task(pb, sid: int, size: int):
    """A StartTaskRequest whose serialized size is exactly `size` bytes (a long extension)."""
    filler = size
    for _ in range(10):
        request = pb.StartTaskRequest(service_id=sid, extensions_json='{"x":"' + "a" * filler + '"}')
        have = request.ByteSize()
        if have == size:
            return request
        filler += size - have
    raise AssertionError(f"cannot make a request of {size} bytes")


def test_message_over_4_mib(pb, stub, rest, sid):
    request = sized_start_task(pb, sid, 4 * MiB + 1)
    error = fails(stub.StartTask, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(4 * MiB + 1) in error.details()
    # The connection is still good.
    assert stub.QueryService(pb.QueryServiceRequest(service_id=sid), timeout=T).service.service_id == sid


def test_message_of_4_mib_meets_the_core_limit(pb, stub, sid):
    # Within the gateway's limit, but its body is over the core's 1 MiB: 413 → RESOURCE_EXHAUSTED.
    request = sized_start_task(pb, sid, 4 * MiB)
    error = fails(stub.StartTask, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert trailing(error).get("cs-exception") == "PayloadTooLargeException"
    assert stub.QueryService(pb.QueryServiceRequest(service_id=sid), timeout=T).service.service_id == sid


def test_extensions_at_the_1_mib_body_limit(pb, stub, rest, sid):
    # StartTask with only extensions: the body is the extensions object itself.
    text = '{"x":"' + "a" * (MiB - 8) + '"}'
    assert len(text) == MiB
    answer = stub.StartTask(pb.StartTaskRequest(service_id=sid, extensions_json=text), timeout=T)
    assert rest.get(f"/services/{sid}/tasks/{answer.task_id}").json()["x"] == "a" * (MiB - 8)

    error = fails(stub.StartTask, pb.StartTaskRequest(service_id=sid, extensions_json=text[:-2] + 'a"}'))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert trailing(error)["cs-exception"] == "PayloadTooLargeException"


def test_body_over_1_mib_by_its_standard_fields(pb, stub, rest, sid):
    # Extensions under 1 MiB, the whole body over it: the core's limit, RESOURCE_EXHAUSTED; calls
    # in flight beside it on the same connection are unharmed.
    before = [stub.StartTask.future(pb.StartTaskRequest(service_id=sid), timeout=T) for _ in range(10)]
    big = stub.StartTask.future(pb.StartTaskRequest(
        service_id=sid, event=pb.EventFields(interaction_id="i" * 50),
        extensions_json='{"x":"' + "a" * (MiB - 18) + '"}'), timeout=T)
    after = [stub.StartTask.future(pb.StartTaskRequest(service_id=sid), timeout=T) for _ in range(10)]
    with pytest.raises(grpc.RpcError) as caught:
        big.result()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert trailing(caught.value)["cs-exception"] == "PayloadTooLargeException"
    assert len({f.result().task_id for f in before + after}) == 20


@pytest.fixture(scope="module")
def big_body_gateway(tmp_path_factory):
    from conftest import _launcher

    started = []
    yield _launcher(tmp_path_factory, started)("--max-body", str(8 * MiB), "--max-depth", "100", memory=True)
    for gw in started:
        gw.kill()


def nested(depth: int) -> str:
    """An extensions object whose deepest value sits at `depth` (the object itself is 1)."""
    return '{"d":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_core_limits_raised_for_rest(big_body_gateway):
    rest = RestClient(big_body_gateway)
    sid = rest.post("/services/start", {}).json()["service_id"]
    created = rest.post(f"/services/{sid}/tasks/start", '{"x":"' + "a" * (4 * MiB - 100) + '"}')
    assert created.status == 201, created
    created = rest.post(f"/services/{sid}/tasks/start", nested(80))
    assert created.status == 201, created


def test_message_of_4_mib_with_a_larger_core_limit(protos, big_body_gateway):
    pb = protos.pb
    with big_body_gateway.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        request = sized_start_task(pb, sid, 4 * MiB)
        assert stub.StartTask(request, timeout=T).task_id == 1


def test_deep_extensions_with_a_larger_core_limit(protos, big_body_gateway):
    pb = protos.pb
    with big_body_gateway.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        assert stub.StartTask(pb.StartTaskRequest(service_id=sid, extensions_json=nested(80)), timeout=T).task_id == 1


# MARK: UNIMPLEMENTED


def test_unknown_method(channel):
    nope = channel.unary_unary("/genesys.cs.v1.ContextServices/Nope")
    with pytest.raises(grpc.RpcError) as caught:
        nope(b"", timeout=T)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    watch = channel.unary_stream("/grpc.health.v1.Health/Watch")
    with pytest.raises(grpc.RpcError) as caught:
        list(watch(b"", timeout=T))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# MARK: UNAVAILABLE and health


def test_upstream_down(protos, start_gateway):
    pb = protos.pb
    gw = start_gateway(upstream=f"127.0.0.1:{free_port()}")
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        error = fails(stub.StartService, pb.StartServiceRequest())
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        error = fails(stub.QueryService, pb.QueryServiceRequest(service_id=1))
        assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_health_not_serving_when_upstream_down(protos, start_gateway):
    gw = start_gateway(upstream=f"127.0.0.1:{free_port()}")
    with gw.channel() as channel:
        health = protos.health_rpc.HealthStub(channel)
        for service in ("", "genesys.cs.v1.ContextServices"):
            answer = health.Check(protos.health.HealthCheckRequest(service=service), timeout=T)
            assert answer.status == protos.health.HealthCheckResponse.NOT_SERVING


def test_health_serving(protos, channel):
    health = protos.health_rpc.HealthStub(channel)
    for service in ("", "genesys.cs.v1.ContextServices"):
        answer = health.Check(protos.health.HealthCheckRequest(service=service), timeout=T)
        assert answer.status == protos.health.HealthCheckResponse.SERVING
    error = fails(health.Check, protos.health.HealthCheckRequest(service="no.such.Service"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
