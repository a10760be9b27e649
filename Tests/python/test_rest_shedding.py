"""REST through the gateway under overload and failure (issues 4 and 6): what gRPC clients get
as RESOURCE_EXHAUSTED and UNAVAILABLE, REST clients get as 429 and 503, each with
`Retry-After` and the contract's error shape, at once, with nothing sent to the core."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from helpers import CALL_TIMEOUT, free_port
from slow_upstream import SlowUpstream

START = "/genesys/1/cs/services/1/tasks/start"


def post(port: int, path: str, body: dict, timeout: float = CALL_TIMEOUT):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def starts_at_once(port: int, n: int) -> dict[int, tuple]:
    """n REST Start Tasks at once, each on its own connection, marked 1…n: marker → (status,
    headers, body, seconds)."""
    results: dict[int, tuple] = {}

    def one(k: int):
        begun = time.monotonic()
        status, headers, body = post(port, START, {"marker": k})
        results[k] = (status, headers, body, time.monotonic() - begun)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(1, n + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CALL_TIMEOUT + 5)
    return results


@pytest.fixture
def slow():
    upstream = SlowUpstream(delay=1.0)
    yield upstream
    upstream.close()


def test_a_full_queue_sheds_rest_calls_with_429_and_retry_after(start_gateway, slow):
    # The batcher's own shedding: admission control (on by default) would hold the surplus
    # unread instead (test_overload.py).
    gw = start_gateway("--max-queued", "8", "--threads", "1", "--no-admission", upstream=slow.address)
    assert post(gw.port, START, {"fast": True, "marker": 1000})[0] == 201  # warm: a connection to the core is up
    n = 60
    results = starts_at_once(gw.port, n)
    assert len(results) == n
    shed = {k: r for k, r in results.items() if r[0] == 429}
    ok = {k: r for k, r in results.items() if r[0] == 201}
    assert set(results) == set(shed) | set(ok), {k: r[:3] for k, r in results.items() if r[0] not in (201, 429)}
    assert shed, "nothing was shed with 60 calls at --max-queued 8 against a 1 s core"
    assert ok
    for k, (status, headers, body, took) in shed.items():
        assert headers.get("retry-after") == "1"
        error = json.loads(body)
        assert error["exception"] == "OverloadedException" and error["message"]
        assert took < 0.5, f"call {k} was refused only after {took:.2f} s"
    for k, (status, headers, body, took) in ok.items():
        assert json.loads(body) == {"task_id": k}  # each client got its own answer
        assert headers["location"] == f"/genesys/1/cs/service/1/tasks/{k}"
    # The core saw the accepted calls only, never a refused one.
    seen = {json.loads(b).get("marker") for m, _, b in list(slow.received) if m == "POST"} - {1000}
    assert seen == set(ok)


def test_no_core_is_503_with_retry_after(start_gateway):
    gw = start_gateway(upstream=f"127.0.0.1:{free_port()}")
    status, headers, body = post(gw.port, START, {})
    assert status == 503
    assert headers.get("retry-after") == "1"
    assert json.loads(body)["exception"] == "OverloadedException"


def test_rest_timeout_is_504(start_gateway, slow):
    gw = start_gateway("--rest-timeout-millis", "300", upstream=slow.address)
    begun = time.monotonic()
    status, headers, body = post(gw.port, START, {"marker": 5})
    assert status == 504
    assert json.loads(body)["exception"] == "GatewayTimeoutException"
    assert time.monotonic() - begun < 0.9


def test_sigterm_lets_a_rest_call_in_flight_finish(start_gateway, slow):
    """Drain on HTTP/1.1: the answer owed goes out (with Connection: close), then the gateway exits."""
    gw = start_gateway(upstream=slow.address)
    assert post(gw.port, START, {"fast": True})[0] == 201
    outcome = {}

    def call():
        outcome["answer"] = post(gw.port, START, {"marker": 7})

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.3)  # the call is with the (1 s) core
    assert gw.terminate() == 0, gw.log
    t.join(CALL_TIMEOUT)
    status, headers, body = outcome["answer"]
    assert status == 201 and json.loads(body) == {"task_id": 7}


def test_with_admission_rest_calls_over_the_queue_wait_their_turn_then_429_after_the_max_wait(start_gateway, slow):
    """Admission control on HTTP/1.1: at most --max-queued calls are in flight, the rest wait
    unread on their connections; one that waited --admission-max-wait-millis is refused 429
    with Retry-After when its turn comes, never sent to the core."""
    gw = start_gateway("--max-queued", "4", "--threads", "1", "--admission-max-wait-millis", "1500", upstream=slow.address)
    assert post(gw.port, START, {"fast": True, "marker": 1000})[0] == 201
    n = 24
    results = starts_at_once(gw.port, n)
    ok = {k: r for k, r in results.items() if r[0] == 201}
    refused = {k: r for k, r in results.items() if r[0] == 429}
    print(f"\n[REST admission] {len(ok)} created, {len(refused)} refused after waiting; "
          f"slowest refusal {max((r[3] for r in refused.values()), default=0):.2f} s")
    assert len(results) == n and set(results) == set(ok) | set(refused), {k: r[:3] for k, r in results.items()}
    # A 1 s core, 4 at a time: the first waves are served (4 in the first second, 4 more before
    # the 1.5 s wait is up); the rest waited 1.5 s and were refused at their turn.
    assert 4 <= len(ok) < n and refused, (len(ok), len(refused))
    for k, (status, headers, body, took) in refused.items():
        assert headers.get("retry-after") == "1"
        error = json.loads(body)
        assert error["exception"] == "OverloadedException" and "waited" in error["message"], error
        assert 1.4 <= took < 4.0, f"call {k} refused after {took:.2f} s"
    seen = {json.loads(b).get("marker") for m, _, b in list(slow.received) if m == "POST"} - {1000}
    assert seen == set(ok), "a refused call reached the core"
