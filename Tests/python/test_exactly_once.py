"""Exactly-once writes under retries (issue 13): idempotency keys from client to store, and the
gateway resending with keys after a broken upstream connection.

Real gateways and cores, the real grpcio client and urllib for REST; the kill tests use
`kill -9` on real core processes."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from helpers import CALL_TIMEOUT, MarkedLoad, check_exactly_once, trailing, wait_until

T = CALL_TIMEOUT


def rest(port: int, method: str, path: str, body=None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/genesys/1/cs{path}", data=data, method=method,
                                     headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=T) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def replayed_grpc(call) -> bool:
    return dict(call.trailing_metadata() or ()).get("idempotent-replayed") == "true"


def tasks_of(core_rest, sid: int, tenant: str | None = None) -> list[dict]:
    r = core_rest.get(f"/services/{sid}/tasks", tenant=tenant)
    assert r.status == 200, r
    return r.json()


# MARK: the same key, many times


def test_same_key_100_times_at_once_grpc_and_rest_one_task(protos, start_gateway):
    pb = protos.pb
    gw = start_gateway()
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        request = pb.StartTaskRequest(service_id=sid, extensions_json='{"once":true}')
        metadata = (("idempotency-key", "ivr-call-100"),)
        outcomes = []
        lock = threading.Lock()

        def via_grpc(_):
            try:
                answer, call = stub.StartTask.with_call(request, metadata=metadata, timeout=T)
                with lock:
                    outcomes.append(("ok", answer.task_id, replayed_grpc(call)))
            except grpc.RpcError as error:
                with lock:
                    outcomes.append((error.code().name, None, False))

        def via_rest(_):
            status, headers, text = rest(gw.port, "POST", f"/services/{sid}/tasks/start", {"once": True},
                                         {"Idempotency-Key": "ivr-call-100"})
            with lock:
                if status == 201:
                    outcomes.append(("ok", json.loads(text)["task_id"], headers.get("idempotent-replayed") == "true"))
                else:
                    outcomes.append((str(status), None, False))

        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(lambda i: via_grpc(i) if i % 2 == 0 else via_rest(i), range(100)))
        ok = [o for o in outcomes if o[0] == "ok"]
        others = {o[0] for o in outcomes if o[0] != "ok"}
        # Only "still being processed" may come back otherwise: 409 / ABORTED.
        assert others <= {"ABORTED", "409"}, outcomes
        assert ok, outcomes
        assert {task_id for _, task_id, _ in ok} == {1}
        assert sum(1 for *_, replay in ok if not replay) <= 1
        assert len(ok) - sum(1 for *_, replay in ok if replay) <= 1
        assert len(tasks_of(gw_rest(gw), sid)) == 1
        print(f"\n[same key x100] {len(ok)} ok ({sum(1 for *_, r in ok if r)} replays), "
              f"{len(outcomes) - len(ok)} in progress")


def gw_rest(gw):
    from helpers import RestClient
    return RestClient(gw)


def test_another_request_under_a_key_is_refused_and_tenants_have_their_own_keys(protos, start_gateway):
    pb = protos.pb
    gw = start_gateway()
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        key = (("idempotency-key", "k-422"),)
        stub.StartTask(pb.StartTaskRequest(service_id=sid, extensions_json='{"a":1}'), metadata=key, timeout=T)
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartTask(pb.StartTaskRequest(service_id=sid, extensions_json='{"a":2}'), metadata=key, timeout=T)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert trailing(caught.value).get("cs-exception") == "IdempotencyKeyMismatchException"
        status, _, text = rest(gw.port, "POST", f"/services/{sid}/tasks/start", {"a": 2}, {"Idempotency-Key": "k-422"})
        assert status == 422 and json.loads(text)["exception"] == "IdempotencyKeyMismatchException"
        # A malformed key: 400 / INVALID_ARGUMENT, nothing sent.
        with pytest.raises(grpc.RpcError) as bad:
            stub.StartTask(pb.StartTaskRequest(service_id=sid), metadata=(("idempotency-key", "x" * 300),), timeout=T)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Tenant b's "k-422" is its own key.
        other = stub.StartService(pb.StartServiceRequest(), metadata=(("contactcenterid", "b"),), timeout=T).service_id
        answer, call = stub.StartTask.with_call(pb.StartTaskRequest(service_id=other, extensions_json='{"a":2}'),
                                                metadata=key + (("contactcenterid", "b"),), timeout=T)
        assert answer.task_id == 1 and not replayed_grpc(call)
        assert len(tasks_of(gw_rest(gw), sid)) == 1


def test_a_key_expires_after_its_lifetime(protos, start_gateway):
    pb = protos.pb
    gw = start_gateway("--idempotency-key-seconds", "1")
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        key = (("idempotency-key", "short-lived"),)
        first = stub.StartTask(pb.StartTaskRequest(service_id=sid), metadata=key, timeout=T).task_id
        _, again = stub.StartTask.with_call(pb.StartTaskRequest(service_id=sid), metadata=key, timeout=T)
        assert replayed_grpc(again)
        time.sleep(1.3)
        answer, later = stub.StartTask.with_call(pb.StartTaskRequest(service_id=sid), metadata=key, timeout=T)
        assert not replayed_grpc(later)
        assert answer.task_id == first + 1


def test_the_stored_answer_survives_kill_9_of_the_core(protos, start_core, start_gateway, tmp_path):
    pb = protos.pb
    data = tmp_path / "cs.sqlite"
    core = start_core(data=data)
    port = core.core_port
    gw = start_gateway(upstream=core.address)
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        key = (("idempotency-key", "survives"),)
        first = stub.StartTask(pb.StartTaskRequest(service_id=sid, extensions_json='{"n":1}'), metadata=key, timeout=T)
        core.kill()
        start_core(data=data, port=port)
        deadline = time.monotonic() + 15
        while True:
            try:
                answer, call = stub.StartTask.with_call(pb.StartTaskRequest(service_id=sid, extensions_json='{"n":1}'),
                                                        metadata=key, timeout=T)
                break
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, error
                time.sleep(0.1)
        assert answer.task_id == first.task_id
        assert replayed_grpc(call)


# MARK: the gateway resends with keys after a broken connection


def test_single_core_killed_and_restarted_mid_load_every_call_exactly_once_or_failed(protos, start_core, start_gateway,
                                                                                    tmp_path):
    pb = protos.pb
    data = tmp_path / "cs.sqlite"
    core = start_core(data=data)
    port = core.core_port
    gw = start_gateway(upstream=core.address)
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        load = MarkedLoad(stub, pb, sid)
        try:
            assert wait_until(lambda: load.count() >= 300, 20)
            core.kill()  # SIGKILL mid-load; batches in flight lose their answers
            restarted = start_core(data=data, port=port)
            at_restart = load.count()
            assert wait_until(lambda: load.count() >= at_restart + 300, 20), "no calls after the restart"
        finally:
            load.finish()
        check_exactly_once(load, tasks_of(restarted.rest, sid))
        print(f"\n[exactly once, kill -9] {len(load.ok)} ok, {len(load.failed)} failed "
              f"({sorted({code for code, _ in load.failed.values()})})")


def test_one_of_two_postgres_cores_killed_every_call_exactly_once_or_failed(protos, start_core, start_gateway, pg_store):
    pb = protos.pb
    a, b = start_core(store=pg_store), start_core(store=pg_store)
    gw = start_gateway(upstream=f"{a.address},{b.address}")
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        load = MarkedLoad(stub, pb, sid)
        try:
            assert wait_until(lambda: load.count() >= 300, 20)
            a.kill()
            at_kill = load.count()
            assert wait_until(lambda: load.count() >= at_kill + 300, 20), "B did not carry on"
        finally:
            load.finish()
        check_exactly_once(load, tasks_of(b.rest, sid))
        print(f"\n[exactly once, one of two] {len(load.ok)} ok, {len(load.failed)} failed")
