"""Deadlines, cancellation and graceful shutdown, against a slow stand-in core
(slow_upstream.py: every POST answered after 2 s)."""

from __future__ import annotations

import json
import signal
import socket
import time

import grpc
import pytest

from helpers import CALL_TIMEOUT
from slow_upstream import SlowUpstream

T = CALL_TIMEOUT
DELAY = 2.0


@pytest.fixture
def slow():
    upstream = SlowUpstream(delay=DELAY)
    yield upstream
    upstream.close()


@pytest.fixture
def slow_gateway(start_gateway, slow):
    return start_gateway(upstream=slow.address)


def marked(pb, marker: int, fast: bool = False):
    extensions = {"marker": marker, **({"fast": True} if fast else {})}
    return pb.StartTaskRequest(service_id=1, task_type=pb.BusinessAttribute(name="slow"),
                               extensions_json=json.dumps(extensions))


def wait_until(predicate, timeout: float = 5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_deadline_exceeded_on_a_slow_upstream(protos, slow_gateway, slow):
    pb = protos.pb
    with slow_gateway.channel() as channel:
        grpc.channel_ready_future(channel).result(timeout=T)
        stub = protos.rpc.ContextServicesStub(channel)
        began = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartTask(marked(pb, 1), timeout=0.3)
        elapsed = time.monotonic() - began
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert elapsed < 1.0, f"returned after {elapsed:.2f} s"
        # The call did reach the core (it was sent before its deadline).
        assert wait_until(lambda: len(slow.received) == 1, 2)
        assert json.loads(slow.received[0][2]) == {"task_type": "slow", "marker": 1}


def test_generous_timeout_succeeds(pb, stub):
    began = time.monotonic()
    answer = stub.StartService(pb.StartServiceRequest(), timeout=30)
    assert answer.service_id >= 1
    assert time.monotonic() - began < 2


def test_generous_timeout_outlasts_a_slow_upstream(protos, slow_gateway):
    pb = protos.pb
    with slow_gateway.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        began = time.monotonic()
        answer = stub.StartTask(marked(pb, 3), timeout=DELAY + 3)
        assert answer.task_id == 3
        assert answer.location == "/genesys/1/cs/service/1/tasks/3"
        assert DELAY - 0.1 <= time.monotonic() - began < DELAY + 1.5


def test_cancel_then_the_channel_still_works(protos, slow_gateway, slow):
    pb = protos.pb
    with slow_gateway.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        future = stub.StartTask.future(marked(pb, 7), timeout=T)
        assert wait_until(lambda: len(slow.received) == 1), "the call never reached the core"
        assert future.cancel()
        assert future.cancelled()
        with pytest.raises(grpc.FutureCancelledError):
            future.result(timeout=1)

        # The connection is fine at once (health does not wait for the core) ...
        health = protos.health_rpc.HealthStub(channel).Check(protos.health.HealthCheckRequest(), timeout=1)
        assert health.status == protos.health.HealthCheckResponse.SERVING
        # ... and the next call gets its own answer, not the cancelled call's (the core answers
        # it at once, but after the cancelled one: the gateway pipelines on one connection).
        answer = stub.StartTask(marked(pb, 8, fast=True), timeout=DELAY + 3)
        assert answer.task_id == 8
        assert [json.loads(body)["marker"] for _, _, body in slow.received] == [7, 8]


def test_a_call_whose_deadline_passes_while_its_connection_is_being_opened_is_never_sent(protos, start_gateway):
    """A call waits in the pool only while a connection to the core is being opened. Here the
    core's accept queue is full, so the gateway's SYN is dropped and its connect completes only
    on the SYN's retransmission (1 s later, once a test thread has emptied the queue). A call
    with a 0.3 s deadline must leave the pool's queue when its deadline passes: the connection
    that finally opens carries no request of it (before, the call was sent on it anyway, and
    created a task its client had been told timed out)."""
    pb = protos.pb
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # the queue's one place, taken
    gw = start_gateway("--threads", "1", "--no-batching", upstream=f"127.0.0.1:{port}")
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartTask(marked(pb, 1), timeout=0.3)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        queued, _ = listener.accept()  # the filler: the retransmitted SYN finds room now
        listener.settimeout(3)
        upstream, _ = listener.accept()
        upstream.settimeout(1.5)
        seen = b""
        try:
            while chunk := upstream.recv(65536):
                seen += chunk
                if seen.endswith(b"\r\n\r\n") and seen.startswith(b"GET"):
                    # The gateway's store handshake (GET {base}/store) comes first: a vendor
                    # core's 404 lets calls follow on this connection.
                    upstream.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        except TimeoutError:
            pass
        assert b"POST" not in seen, f"the expired call was sent: {seen[:200]!r}"
        for s in (upstream, queued, filler, listener):
            s.close()


def test_sigterm_lets_the_call_in_flight_finish(protos, slow_gateway, slow):
    pb = protos.pb
    channel = slow_gateway.channel()
    try:
        stub = protos.rpc.ContextServicesStub(channel)
        future = stub.StartTask.future(marked(pb, 5), timeout=T)
        assert wait_until(lambda: len(slow.received) == 1), "the call never reached the core"
        signalled = time.monotonic()
        slow_gateway.proc.send_signal(signal.SIGTERM)

        # The in-flight call completes with its answer (not UNAVAILABLE).
        answer = future.result(timeout=DELAY + 3)
        assert answer.task_id == 5

        # The listener is closed: a new connection is refused.
        with slow_gateway.channel() as late:
            with pytest.raises(grpc.RpcError) as caught:
                protos.rpc.ContextServicesStub(late).StartTask(marked(pb, 6), timeout=2)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        code = slow_gateway.proc.wait(timeout=5)
        exited = time.monotonic() - signalled
        assert code == 0, slow_gateway.log
        assert exited < DELAY + 3, f"exited {exited:.2f} s after SIGTERM"
        assert "shutting down" in slow_gateway.log
        assert len(slow.received) == 1
    finally:
        channel.close()


def test_sigterm_when_idle_exits_0_and_keeps_the_data(protos, start_gateway, tmp_path):
    pb = protos.pb
    data = tmp_path / "cs.sqlite"
    first = start_gateway(data=data)
    with first.channel() as channel:
        sid = protos.rpc.ContextServicesStub(channel).StartService(
            pb.StartServiceRequest(customer_id="kept"), timeout=T).service_id
    began = time.monotonic()
    assert first.terminate(timeout=5) == 0, first.log
    assert time.monotonic() - began < 3

    second = start_gateway(data=data)
    with second.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        assert stub.QueryService(pb.QueryServiceRequest(service_id=sid), timeout=T).service.customer_id == "kept"
