"""Lifecycle (README, "Lifecycle"): liveness and readiness, per-service health, and SIGTERM
under load: every call the gateway accepted finishes, and the process exits within the drain."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import grpc

from helpers import CALL_TIMEOUT, MarkedLoad, check_exactly_once, free_port, wait_until

T = CALL_TIMEOUT


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def health(protos, channel, service: str):
    stub = protos.health_rpc.HealthStub(channel)
    return stub.Check(protos.health.HealthCheckRequest(service=service), timeout=T).status


def test_liveness_readiness_and_per_service_health_once_started(protos, start_gateway):
    gw = start_gateway(memory=True)
    assert get(gw.port, "/healthz") == (200, '{"status":"SERVING"}')
    assert get(gw.port, "/readyz") == (200, '{"status":"READY"}')
    serving = protos.health.HealthCheckResponse.SERVING
    with gw.channel() as channel:
        for service in ["", "genesys.cs.v1.ContextServices", "grpc.reflection.v1.ServerReflection",
                        "grpc.reflection.v1alpha.ServerReflection"]:
            assert health(protos, channel, service) == serving, service
        try:
            health(protos, channel, "no.such.Service")
            raise AssertionError("an unknown service was answered")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND


def test_not_ready_without_a_core_while_reflection_still_serves(protos, start_gateway):
    gw = start_gateway(upstream=f"127.0.0.1:{free_port()}")
    assert get(gw.port, "/readyz") == (503, '{"status":"NO_CORE"}')
    assert get(gw.port, "/healthz") == (503, '{"status":"NOT_SERVING"}')
    with gw.channel() as channel:
        assert health(protos, channel, "") == protos.health.HealthCheckResponse.NOT_SERVING
        assert health(protos, channel, "grpc.reflection.v1.ServerReflection") == protos.health.HealthCheckResponse.SERVING


def tasks_of(core_rest, sid: int) -> list[dict]:
    r = core_rest.get(f"/services/{sid}/tasks")
    assert r.status == 200, r
    return r.json()


def test_sigterm_under_load_fails_no_accepted_call_and_exits_within_the_drain(protos, start_gateway, start_core, tmp_path):
    """StartTask from 8 threads without pause; SIGTERM mid-load. Calls the gateway accepted
    (sent before its GOAWAY) are answered; calls after it fail UNAVAILABLE without reaching the
    store (grpcio retries a refused stream, then finds the listener closed). The process exits
    0 within the drain. Checked against the store itself: every success stored once, nothing
    stored for a failure."""
    pb = protos.pb
    data = tmp_path / "cs.sqlite"
    drain_seconds = 4
    gw = start_gateway("--drain-timeout-millis", str(drain_seconds * 1000), data=data)
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(customer_id="drain"), timeout=T).service_id
        load = MarkedLoad(stub, pb, sid, threads=8)
        try:
            assert wait_until(lambda: load.count() >= 500, 20), "no load"
            signalled = time.monotonic()
            code = gw.terminate(timeout=drain_seconds + 5)
            exited = time.monotonic() - signalled
            at_exit = load.count()
        finally:
            load.finish()
    assert code == 0, gw.log
    assert exited < drain_seconds + 1, f"exited {exited:.2f} s after SIGTERM"
    assert "shutting down" in gw.log
    codes = {code for code, _ in load.failed.values()}
    assert codes <= {"UNAVAILABLE"}, codes
    assert load.count() == at_exit, "a call succeeded after the exit"
    core = start_core(data=data)
    check_exactly_once(load, tasks_of(core.rest, sid))
    print(f"\n[SIGTERM under load] {len(load.ok)} ok, {len(load.failed)} refused after the drain began, "
          f"exit {exited:.2f} s after the signal")


def test_a_drain_that_cannot_finish_ends_at_its_timeout(protos, start_gateway):
    """A client that never finishes its request keeps a stream open; the process still exits
    when the drain time is up."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    gw = start_gateway("--drain-timeout-millis", "1500", memory=True)
    with gw.channel() as channel:
        # ServerReflectionInfo is the one streaming method: a request stream that never ends.
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

        def requests():
            while True:
                yield reflection_pb2.ServerReflectionRequest(list_services="")
                time.sleep(0.5)

        answers = reflection.ServerReflectionInfo(requests(), timeout=30)
        next(answers)  # the stream is open
        signalled = time.monotonic()
        code = gw.terminate(timeout=10)
        exited = time.monotonic() - signalled
        assert code == 0, gw.log
        assert 1.0 < exited < 3.5, f"exited {exited:.2f} s after SIGTERM"
