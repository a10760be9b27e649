"""Scale-out (issue 10): several task cores on one PostgreSQL database behind one gateway, and
the refusal of cores whose stores differ.

Every test here runs real `gateway core` processes on a database of the test cluster that
gateway/scripts/test.sh starts (`pg_store`), a real `gateway serve --upstream A,B`, and the
real grpcio client; REST goes through the gateway's own port."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from helpers import (CALL_TIMEOUT, START_TIMEOUT, MarkedLoad, check_exactly_once, established_to, free_port,
                     gateway_binary, wait_until)

T = CALL_TIMEOUT


def store_id(core) -> str:
    r = core.rest.get("/store")
    assert r.status == 200, r
    return r.json()["store_id"]


def rest_start(port: int, sid: int, marker: str) -> tuple[int, int | None]:
    """Start Task over REST through the gateway: (status, task_id)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/genesys/1/cs/services/{sid}/tasks/start",
        data=json.dumps({"marker": marker}).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=T) as response:
            return response.status, json.loads(response.read())["task_id"]
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return 0, None


def stored_markers(core, sid: int) -> dict[int, str]:
    tasks = core.rest.get(f"/services/{sid}/tasks").json()
    return {t["task_id"]: t.get("marker") for t in tasks}


# MARK: the refusal


def test_cores_on_separate_sqlite_files_are_refused_with_both_stores_named(start_core):
    a, b = start_core(), start_core()
    ids = store_id(a), store_id(b)
    assert ids[0] != ids[1]
    proc = subprocess.run(
        [str(gateway_binary()), "serve", "--listen", "127.0.0.1:0", "--threads", "2",
         "--upstream", f"{a.address},{b.address}"],
        capture_output=True, text=True, timeout=START_TIMEOUT)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "gateway listening" not in out
    for text in (a.address, b.address, *ids):
        assert text in out, f"{text} not named in: {out}"
    assert "share one store" in out


def test_cores_of_one_postgres_database_are_accepted_and_report_one_store(start_core, start_gateway, pg_store):
    a, b = start_core(store=pg_store), start_core(store=pg_store)
    assert store_id(a) == store_id(b)
    assert a.rest.get("/store").json()["engine"] == "postgres"
    gw = start_gateway(upstream=f"{a.address},{b.address}")
    assert f"store_id={store_id(a)}" in gw.log


def test_a_core_whose_store_changes_is_ejected_loudly(protos, start_core, start_gateway, pg_store, tmp_path):
    """A core restarted on another store (here: a SQLite file) is never used again: its new
    connections are refused before any call goes on them."""
    pb = protos.pb
    a, b = start_core(store=pg_store), start_core(store=pg_store)
    gw = start_gateway("--no-batching", upstream=f"{a.address},{b.address}")
    port_b = b.core_port
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        b.kill()
        foreign = start_core(data=tmp_path / "other.sqlite", port=port_b)
        assert foreign.rest.post("/services/start", {}).status == 201  # service 1 exists there too
        # Concurrent waves: enough calls in flight that the pool opens connections to both.
        for wave in range(6):
            futures = [stub.StartTask.future(pb.StartTaskRequest(
                service_id=sid, extensions_json=json.dumps({"i": i})), timeout=T) for i in range(200)]
            for f in futures:
                try:
                    f.result(timeout=30)
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            if "serves another store" in gw.log:
                break
            time.sleep(0.5)
        assert wait_until(lambda: "serves another store" in gw.log, 10), gw.log[-3000:]
        assert foreign.rest.get("/services/1/tasks").json() == [], "a call reached the core of another store"
        assert established_to(port_b) == 0


# MARK: two cores, one database, thousands of concurrent starts


def test_two_cores_thousands_of_concurrent_starts_grpc_and_rest_ids_distinct_and_gap_free(
        protos, start_core, start_gateway, pg_store):
    pb = protos.pb
    a, b = start_core(store=pg_store), start_core(store=pg_store)
    gw = start_gateway(upstream=f"{a.address},{b.address}")
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sids = [stub.StartService(pb.StartServiceRequest(), timeout=T).service_id for _ in range(3)]
        assert sorted(sids) == [1, 2, 3]
        acked: dict[tuple[int, int], str] = {}
        lock = threading.Lock()

        def grpc_wave(wave: int):
            futures = []
            for i in range(250):
                sid = sids[i % 3]
                marker = f"g{wave}-{i}"
                futures.append((sid, marker, stub.StartTask.future(
                    pb.StartTaskRequest(service_id=sid, extensions_json=json.dumps({"marker": marker})), timeout=T)))
            for sid, marker, f in futures:
                task_id = f.result(timeout=30).task_id
                with lock:
                    assert (sid, task_id) not in acked
                    acked[(sid, task_id)] = marker

        def rest_worker(worker: int):
            for i in range(60):
                sid = sids[(worker + i) % 3]
                marker = f"r{worker}-{i}"
                status, task_id = rest_start(gw.port, sid, marker)
                assert status == 201, status
                with lock:
                    assert (sid, task_id) not in acked
                    acked[(sid, task_id)] = marker

        with ThreadPoolExecutor(max_workers=12) as pool:
            jobs = [pool.submit(grpc_wave, w) for w in range(8)] + [pool.submit(rest_worker, w) for w in range(12)]
            for job in jobs:
                job.result(timeout=60)
        total = 8 * 250 + 12 * 60
        assert len(acked) == total
        assert established_to(a.core_port) > 0 and established_to(b.core_port) > 0, "both cores carried calls"
        for sid in sids:
            stored = stored_markers(a, sid)
            ids = sorted(stored)
            assert ids == list(range(1, len(ids) + 1)), f"service {sid}: ids not gap-free"
            for task_id, marker in stored.items():
                assert acked.get((sid, task_id)) == marker, (sid, task_id, marker)
        assert sum(len(stored_markers(b, sid)) for sid in sids) == total


# MARK: failures under load


def test_one_of_two_cores_killed_mid_load_the_other_carries_on_and_the_restarted_one_is_used_again(
        protos, start_core, start_gateway, pg_store):
    pb = protos.pb
    a, b = start_core(store=pg_store), start_core(store=pg_store)
    port_a = a.core_port
    gw = start_gateway(upstream=f"{a.address},{b.address}")
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        load = MarkedLoad(stub, pb, sid)
        try:
            assert wait_until(lambda: load.count() >= 300, 20), "no load before the kill"
            a.kill()  # SIGKILL, mid-load
            at_kill = load.count()
            assert wait_until(lambda: load.count() >= at_kill + 300, 20), "B did not carry on"
            restarted = start_core(store=pg_store, port=port_a)
            assert wait_until(lambda: established_to(port_a) > 0, 15), "the restarted core is not used again"
            at_restart = load.count()
            assert wait_until(lambda: load.count() >= at_restart + 300, 20)
        finally:
            load.finish()
        codes = {code for code, _ in load.failed.values()}
        assert codes <= {"UNAVAILABLE"}, list(load.failed.items())[:5]
        stored = restarted.rest.get(f"/services/{sid}/tasks").json()
        check_exactly_once(load, stored)
        ids = sorted(t["task_id"] for t in stored)
        assert ids == list(range(1, len(ids) + 1))
        print(f"\n[kill -9 one of two] {len(load.ok)} acknowledged, {len(load.failed)} UNAVAILABLE, "
              f"{len(stored)} stored")


def test_postgres_restarted_mid_load_calls_fail_fast_cores_reconnect_nothing_acknowledged_lost(
        protos, start_core, start_gateway, pg_store):
    cluster = os.environ.get("PG_CLUSTER_DIR")
    if not cluster:
        pytest.skip("PG_CLUSTER_DIR is not set (gateway/scripts/test.sh sets it)")
    pb = protos.pb
    core = start_core("--store-timeout-millis", "2000", store=pg_store)
    gw = start_gateway(upstream=core.address)
    with gw.channel() as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        sid = stub.StartService(pb.StartServiceRequest(), timeout=T).service_id
        load = MarkedLoad(stub, pb, sid)
        try:
            assert wait_until(lambda: load.count() >= 300, 20)
            # Down for 3 s: longer than the core's store timeout, so calls meet the outage.
            restart = subprocess.run(["bash", "gateway/scripts/pg-cluster.sh", "restart", cluster, "3"],
                                     capture_output=True, text=True, timeout=90)
            assert restart.returncode == 0, restart.stderr
            after = load.count()
            assert wait_until(lambda: load.count() >= after + 300, 30), "the core did not reconnect by itself"
        finally:
            load.finish()
        assert load.failed, "the outage went unnoticed: nothing to check"
        # 503 StoreUnavailableException (nothing applied) or, for a commit cut off, 500
        # OutcomeUnknownException: both through the gateway's status table.
        failures = list(load.failed.values())
        assert {code for code, _ in failures} <= {"UNAVAILABLE", "INTERNAL"}, failures[:10]
        slowest = max(seconds for _, seconds in failures)
        assert slowest < 4.0, f"a call failed only after {slowest:.1f} s"
        stored = stored_markers(core, sid)
        missing = [m for m, t in load.ok.items() if stored.get(t) != m]
        assert not missing, f"acknowledged but lost: {missing[:10]}"
        ids = sorted(stored)
        assert ids == list(range(1, len(ids) + 1))
        print(f"\n[pg restart] {len(load.ok)} acknowledged, failures {len(failures)} "
              f"(slowest {slowest:.2f} s), {len(stored)} stored")


# MARK: start-up failures, in plain words


@pytest.mark.parametrize("args, says", [
    (["--store", "postgres://u:secret@127.0.0.1:5432/db"], "CS_STORE_PASSWORD"),
    (["--store", "postgres://u@127.0.0.1:5432/db", "--store-password-file", "/nonexistent/pw"], "cannot read"),
    (["--store", "postgres://u@127.0.0.1:5432/db", "--memory"], "choose one store"),
    (["--data", "/proc/no-such-dir/cs.sqlite"], "cannot open the SQLite store"),
])
def test_store_settings_refused_in_plain_words(args, says):
    proc = subprocess.run([str(gateway_binary()), "core", "--listen", "127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=START_TIMEOUT)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert says in out, out
    assert "secret" not in out, "the password was echoed"


def test_unreachable_postgres_fails_the_start_quickly_naming_the_setting():
    port = free_port()
    began = time.monotonic()
    proc = subprocess.run([str(gateway_binary()), "core", "--listen", "127.0.0.1:0", "--store-timeout-millis", "1000",
                           "--store", f"postgres://postgres@127.0.0.1:{port}/taskcore?sslmode=disable"],
                          capture_output=True, text=True, timeout=START_TIMEOUT)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "cannot open the PostgreSQL store" in out and "--store" in out, out
    assert time.monotonic() - began < 15
