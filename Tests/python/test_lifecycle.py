"""Lifecycle (README, "Lifecycle"): liveness and readiness, per-service health, and SIGTERM
under load: every call the gateway accepted finishes, and the process exits within the drain."""

from __future__ import annotations

import time

import grpc

from helpers import CALL_TIMEOUT, MarkedLoad, check_exactly_once, free_port, http_get as get, wait_until

T = CALL_TIMEOUT


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


def test_sigterm_under_the_load_tool_answers_every_stream_in_flight(start_gateway, start_core, tmp_path):
    """`gateway load` with 4 connections × 32 streams in flight (StartTask, closed loop):
    SIGTERM mid-run. Every call the tool counts as answered is stored and nothing else is
    (calls it could not start after the GOAWAY count as UNAVAILABLE), and the gateway exits
    0 within the drain."""
    import json
    import subprocess

    from helpers import gateway_binary

    data = tmp_path / "cs.sqlite"
    drain_seconds = 4
    gw = start_gateway("--drain-timeout-millis", str(drain_seconds * 1000), data=data)
    load = subprocess.Popen([str(gateway_binary()), "load", "--json", "--quiet", "--target", gw.target,
                             "--connections", "4", "--streams", "32", "--duration", "5s", "--tenant", "drain"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        signalled = time.monotonic()
        code = gw.terminate(timeout=drain_seconds + 5)
        exited = time.monotonic() - signalled
        out, err = load.communicate(timeout=30)
    finally:
        if load.poll() is None:
            load.kill()
    assert code == 0, gw.log
    assert exited < drain_seconds + 1, f"exited {exited:.2f} s after SIGTERM"
    report = json.loads(out)
    assert report["ok"] > 500, report
    assert set(report["errors"]) <= {"UNAVAILABLE"}, report
    core = start_core(data=data)
    stored = core.rest.get(f"/services/{report['service_id']}/tasks", tenant="drain")
    assert stored.status == 200, stored
    assert len(stored.json()) == report["ok"], (len(stored.json()), report)
    print(f"\n[SIGTERM under gateway load] {report['ok']} ok, {report['errors']} not started, "
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


def test_the_core_alone_stops_on_sigterm_within_its_drain(start_core):
    import signal
    core = start_core("--drain-timeout-millis", "2000")
    assert core.rest.post("/services/start", {"customer_id": "c"}).status == 201
    signalled = time.monotonic()
    core.proc.send_signal(signal.SIGTERM)
    assert core.proc.wait(10) == 0, core.log
    assert time.monotonic() - signalled < 3
    core._reader.join(2)
    assert "shutting down" in core.log
