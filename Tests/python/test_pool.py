"""Several task cores behind one gateway (`--upstream A,B`): calls spread over the cores,
and when one dies the others carry the load (ejection, backoff, probing: issue 4's pool)."""

from __future__ import annotations

import time
import grpc

from helpers import CALL_TIMEOUT, established_to

T = CALL_TIMEOUT


def task_count(core) -> int:
    return len(core.rest.get("/services/1/tasks").json())


def test_calls_spread_over_cores_and_survive_one_dying(protos, start_core, start_gateway, pg_store):
    """Two cores on one PostgreSQL database (cores behind one gateway must share a store:
    test_scale_out.py)."""
    pb = protos.pb
    a, b = start_core(store=pg_store), start_core(store=pg_store)
    assert a.rest.post("/services/start", {}).status == 201
    gw = start_gateway("--no-batching", upstream=f"{a.address},{b.address}")
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        futures = [stub.StartTask.future(pb.StartTaskRequest(service_id=1), timeout=T) for _ in range(400)]
        assert all(f.result(timeout=30) is not None for f in futures)
        assert task_count(b) == 400
        # Least outstanding over both cores: the gateway keeps connections to each.
        assert established_to(a.core_port) > 0 and established_to(b.core_port) > 0

        a.kill()
        # Calls lost with A (in flight when it died) fail UNAVAILABLE and are not resent;
        # after that, everything goes to B.
        outcomes = []
        began = time.monotonic()
        for _ in range(200):
            try:
                stub.StartTask(pb.StartTaskRequest(service_id=1), timeout=T)
                outcomes.append("OK")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                outcomes.append("UNAVAILABLE")
        assert time.monotonic() - began < 20
        assert outcomes[-50:] == ["OK"] * 50, outcomes
        assert task_count(b) == 400 + outcomes.count("OK")


def test_a_lone_core_back_is_used_as_soon_as_health_says_serving(protos, start_core, start_gateway, tmp_path):
    """Health and the pool agree: once Health/Check reaches the core again and says SERVING,
    the very next call goes through, whatever backoff the earlier failures had built up."""
    pb = protos.pb
    data = tmp_path / "cs.sqlite"
    core = start_core(data=data)
    port = core.core_port
    gw = start_gateway(upstream=core.address)
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        health = protos.health_rpc.HealthStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=CALL_TIMEOUT).service_id
        core.kill()
        # Enough failures for the longest backoffs (ejection, probes seconds apart).
        for _ in range(12):
            try:
                stub.StartTask(pb.StartTaskRequest(service_id=sid), timeout=CALL_TIMEOUT)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
            time.sleep(0.05)
        start_core(data=data, port=port)
        assert health.Check(protos.health.HealthCheckRequest(), timeout=CALL_TIMEOUT).status == \
            protos.health.HealthCheckResponse.SERVING
        # Every event loop of the gateway (--threads 2) gets its own check and its own call.
        for _ in range(4):
            health.Check(protos.health.HealthCheckRequest(), timeout=CALL_TIMEOUT)
            stub.StartTask(pb.StartTaskRequest(service_id=sid), timeout=CALL_TIMEOUT)
