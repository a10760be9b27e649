"""Issue 11, item 4, over real sockets: a call its client resets (RST_STREAM) or whose deadline
passes leaves the batcher's queue at once and is never sent to the core; a connection that
cancels calls faster than `--cancelled-calls-burst` / `--cancelled-calls-per-second` gets
GOAWAY ENHANCE_YOUR_CALM (0xb) and is closed, while other clients keep being served."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from helpers import CALL_TIMEOUT, PoliteClient, RestClient
from rawclients import H2Client
from slow_upstream import SlowUpstream

T = CALL_TIMEOUT
CANCEL = 0x8


@pytest.fixture
def slow():
    upstream = SlowUpstream(delay=1.5)
    yield upstream
    upstream.close()


def markers(slow) -> list:
    return [json.loads(body or b"{}").get("marker") for method, _, body in list(slow.received) if method == "POST"]


def test_calls_reset_while_queued_are_never_sent(protos, start_gateway, slow):
    pb = protos.pb
    # One event loop, one call in flight at a time toward a core answering in 1.5 s: whatever
    # arrives behind the blocker waits in the batcher's queue.
    gw = start_gateway("--threads", "1", "--batch-max-in-flight", "1", upstream=slow.address)
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        fast = pb.StartTaskRequest(service_id=1, extensions_json=json.dumps({"marker": 99_999, "fast": True}))
        assert stub.StartTask(fast, timeout=T).task_id == 99_999  # finds vendor mode (the stand-in's 404)
        slow.received.clear()
        blocker = stub.StartTask.future(pb.StartTaskRequest(service_id=1, extensions_json='{"marker": 5000}'), timeout=T)
        deadline = time.monotonic() + T
        while markers(slow) != [5000] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert markers(slow) == [5000], "the blocker never reached the core"

        client = H2Client(gw.port)
        try:
            sent_at = time.monotonic()
            sids = [client.grpc("StartTask", pb.StartTaskRequest(
                service_id=1, extensions_json=json.dumps({"marker": k})).SerializeToString()) for k in range(1, 101)]
            kept = client.grpc("StartTask", pb.StartTaskRequest(
                service_id=1, extensions_json=json.dumps({"marker": 1000})).SerializeToString())
            client.pump(0.03)
            for sid in sids:
                client.conn.reset_stream(sid, CANCEL)
            client.flush()
            reset_after = time.monotonic() - sent_at
            assert blocker.result(timeout=T).task_id == 5000
            answer = client.wait(kept, timeout=T)
            assert answer.grpc_status == 0, answer
            assert not client.closed and client.goaway is None, "100 cancels are within the default burst"
        finally:
            client.close()
        time.sleep(0.3)  # anything sent late would have arrived by now
        got = markers(slow)
        print(f"\n[reset while queued] 100 calls reset {reset_after * 1000:.0f} ms after sending; "
              f"the core received {got}")
        assert not set(got) & set(range(1, 101)), f"reset calls reached the core: {sorted(set(got) & set(range(1, 101)))}"
        assert got == [5000, 1000]
        # The event loop still serves.
        assert stub.StartTask(fast, timeout=T).task_id == 99_999


def test_calls_past_their_deadline_leave_the_queue_at_once(protos, start_gateway, slow):
    pb = protos.pb
    gw = start_gateway("--threads", "1", "--batch-max-in-flight", "1", upstream=slow.address)
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        fast = pb.StartTaskRequest(service_id=1, extensions_json=json.dumps({"marker": 99_999, "fast": True}))
        assert stub.StartTask(fast, timeout=T).task_id == 99_999
        slow.received.clear()
        blocker = stub.StartTask.future(pb.StartTaskRequest(service_id=1, extensions_json='{"marker": 5000}'), timeout=T)
        time.sleep(0.2)
        started = time.monotonic()
        late = [stub.StartTask.future(pb.StartTaskRequest(service_id=1, extensions_json=json.dumps({"marker": k})),
                                      timeout=0.3) for k in range(1, 21)]
        codes = []
        for f in late:
            try:
                f.result(timeout=T)
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code())
        took = time.monotonic() - started
        assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * 20, codes
        assert took < 1.0, f"deadline answers took {took:.2f} s"
        assert blocker.result(timeout=T).task_id == 5000
        time.sleep(0.3)
        assert markers(slow) == [5000], markers(slow)


def test_rapid_reset_of_complete_requests_gets_goaway_while_others_are_served(protos, start_gateway):
    pb = protos.pb
    burst, rate = 200, 50  # the defaults: --cancelled-calls-burst, --cancelled-calls-per-second
    gw = start_gateway(memory=True)
    rest = RestClient(gw)
    tenant = [("contactcenterid", "rapid-reset")]
    ch = gw.channel()
    stub = protos.rpc.ContextServicesStub(ch)
    sid = stub.StartService(pb.StartServiceRequest(customer_id="victim"), timeout=T, metadata=tenant).service_id

    # A well-behaved client on its own connection, calling throughout.
    polite = PoliteClient(gw, protos, timeout=2)
    time.sleep(0.2)

    attacker = H2Client(gw.port)
    message = pb.StartTaskRequest(service_id=sid, extensions_json='{"marker":"reset"}').SerializeToString()
    began = time.monotonic()
    try:
        sent = attacker.rapid_reset("StartTask", message, metadata=tenant, max_sent=20_000, seconds=10)
        attacker.wait_closed(5)
        took = time.monotonic() - began
    finally:
        attacker.close()
        time.sleep(0.5)
        polite.finish()
        ch.close()
    stored = rest.get(f"/services/{sid}/tasks", tenant="rapid-reset")
    assert stored.status == 200, stored
    results = polite.calls
    ok, worst = polite.ok, polite.slowest
    print(f"\n[rapid reset] {sent} complete requests reset in {took:.2f} s before GOAWAY {attacker.goaway}; "
          f"{len(stored.json())} tasks stored; polite client {ok}/{len(results)} OK, slowest {worst * 1000:.0f} ms")
    assert attacker.goaway == 0xB, f"expected GOAWAY ENHANCE_YOUR_CALM, got {attacker.goaway}"
    assert attacker.closed
    # The bound: burst + rate × time, plus what one read cycle (≤ 256 KiB of frames) holds.
    assert sent <= burst + rate * took + 5_000, sent
    assert len(stored.json()) <= burst + rate * took + 1_000, len(stored.json())
    assert results and ok == len(results), f"the polite client failed {len(results) - ok} of {len(results)} calls"
    assert worst < 1.0, f"a polite call took {worst:.2f} s"
