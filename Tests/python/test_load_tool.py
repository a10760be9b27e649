"""`gateway load` against real gateways and cores: what it reports must be what the core stored.

Each test starts its own in-memory gateway (fresh, so service ids start at 1) and uses a tenant
of its own; runs last 1 to 2 s. The load tool's JSON report is read from stdout; the core is
then asked over REST what it holds for that tenant.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest

from helpers import RestClient, free_port, gateway_binary
from slow_upstream import SlowUpstream

#: A load run's own bound: its duration, the calls still in flight, start and exit.
RUN_TIMEOUT = 30

JOURNEY_CALLS = 33


def run_load(*args: str, quiet: bool = True) -> tuple[int, dict | None, str]:
    """Runs `gateway load --json …`; (exit status, the JSON report or None, stderr)."""
    command = [str(gateway_binary()), "load", "--json", *args]
    if quiet:
        command.append("--quiet")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, report, proc.stderr


def fresh_tenant() -> str:
    return "load-" + uuid.uuid4().hex[:12]


def check_latency(report: dict):
    lat = report["latency_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"], lat


def check_clean(report: dict, rc: int, stderr: str):
    assert rc == 0, stderr
    assert report["failed"] == 0 and report["errors"] == {}, report
    assert report["ok"] == report["requests"] > 0, report
    assert report["connections_lost"] == 0
    check_latency(report)


def stored_tasks(rest: RestClient, tenant: str, service_id: int) -> list[dict]:
    answer = rest.get(f"/services/{service_id}/tasks", tenant=tenant)
    assert answer.status == 200, answer
    return answer.json()


def stored_journeys(rest: RestClient, tenant: str, expected: int) -> list[dict]:
    """The services of a fresh gateway's only tenant: ids 1…expected exist, the next ones not."""
    services = []
    for sid in range(1, expected + 3):
        answer = rest.get(f"/services/{sid}?active_states=true&completed_states=true"
                          "&active_tasks=true&completed_tasks=true", tenant=tenant)
        if sid <= expected:
            assert answer.status == 200, (sid, answer)
            services.append(answer.json())
        else:
            assert answer.status == 404, (sid, answer)
    return services


def check_journeys(services: list[dict]):
    for service in services:
        assert "completed" in service, service["service_id"]
        assert service.get("active_states", []) == [] and len(service["completed_states"]) == 5
        assert service.get("active_tasks", []) == [] and len(service["completed_tasks"]) == 10
        # Each state holds the two tasks started in it, by the ids its answers gave.
        by_state: dict[int, int] = {}
        for task in service["completed_tasks"]:
            by_state[task["state_id"]] = by_state.get(task["state_id"], 0) + 1
        assert sorted(by_state) == sorted(s["state_id"] for s in service["completed_states"])
        assert set(by_state.values()) == {2}
        # The extensions arrive as sent.
        assert service["segment"] == "gold" and service["ivr"]["menu_path"][0] == "welcome"


def target_of(gw, transport: str) -> list[str]:
    if transport == "rest":
        return ["--rest", "--target", f"127.0.0.1:{gw.core_port}"]
    return ["--target", gw.target]


# MARK: counts against the core

@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_start_task_closed_loop(start_gateway, transport):
    gw = start_gateway(memory=True)
    tenant = fresh_tenant()
    rc, report, stderr = run_load(*target_of(gw, transport), "--tenant", tenant, "--duration", "1.5s",
                                  "--connections", "2", "--streams", "8", quiet=False)
    check_clean(report, rc, stderr)
    assert (report["scenario"], report["transport"], report["mode"]) == ("start-task", transport, "closed")
    assert report["ok_by_method"] == {"StartTask": report["ok"]}
    assert 1.4 < report["duration_s"] < 3
    tasks = stored_tasks(RestClient(gw), tenant, report["service_id"])
    assert len(tasks) == report["ok"]
    assert {t["task_type"] for t in tasks} == {"customer info"}
    # Not a terminal: one plain progress line per second on stderr.
    assert re.search(r"^\[1s\] [\d,]+ req/s +[\d,]+ calls", stderr, re.M), stderr


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_start_task_open_loop(start_gateway, transport):
    gw = start_gateway(memory=True)
    tenant = fresh_tenant()
    rc, report, stderr = run_load(*target_of(gw, transport), "--tenant", tenant, "--rate", "200", "--duration", "1.5s",
                                  "--connections", "2")
    check_clean(report, rc, stderr)
    assert report["mode"] == "open" and report["intended_rate"] == 200
    # The schedule decides how many start, not the answers: rate × duration exactly.
    assert report["requests"] == 300
    assert 150 < report["rate"] <= 210
    assert len(stored_tasks(RestClient(gw), tenant, report["service_id"])) == 300


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_journey_closed_loop(start_gateway, transport):
    gw = start_gateway(memory=True)
    tenant = fresh_tenant()
    rc, report, stderr = run_load(*target_of(gw, transport), "--tenant", tenant, "--scenario", "journey",
                                  "--duration", "1s", "--streams", "4")
    check_clean(report, rc, stderr)
    journeys = report["journeys_completed"]
    assert journeys > 0 and report["journeys_failed"] == 0
    # Journeys under way when the time is up finish: every call belongs to a whole journey.
    assert report["requests"] == JOURNEY_CALLS * journeys
    assert report["ok_by_method"] == {
        "StartService": journeys, "StartState": 5 * journeys, "StartTask": 10 * journeys,
        "CompleteTask": 10 * journeys, "CompleteState": 5 * journeys, "QueryService": journeys,
        "CompleteService": journeys,
    }
    assert report["journey_latency_us"]["p50"] > report["latency_us"]["p50"]
    check_journeys(stored_journeys(RestClient(gw), tenant, journeys))


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_journey_open_loop(start_gateway, transport):
    gw = start_gateway(memory=True)
    tenant = fresh_tenant()
    rc, report, stderr = run_load(*target_of(gw, transport), "--tenant", tenant, "--scenario", "journey",
                                  "--rate", "20", "--duration", "1s")
    check_clean(report, rc, stderr)
    assert report["journeys_completed"] == 20
    assert report["requests"] == 20 * JOURNEY_CALLS
    check_journeys(stored_journeys(RestClient(gw), tenant, 20))


def test_requests_are_exact_across_connections(start_gateway):
    gw = start_gateway(memory=True)
    tenant = fresh_tenant()
    rc, report, stderr = run_load("--target", gw.target, "--tenant", tenant, "--requests", "101",
                                  "--connections", "3", "--threads", "2")
    check_clean(report, rc, stderr)
    assert report["requests"] == 101
    assert len(stored_tasks(RestClient(gw), tenant, report["service_id"])) == 101


def test_tenants_do_not_mix(start_gateway):
    gw = start_gateway(memory=True)
    tenant = fresh_tenant()
    rc, report, stderr = run_load("--target", gw.target, "--tenant", tenant, "--requests", "20")
    check_clean(report, rc, stderr)
    answer = RestClient(gw).get(f"/services/{report['service_id']}/tasks", tenant=fresh_tenant())
    assert answer.status == 404


# MARK: forced errors

@pytest.mark.parametrize("transport,code", [("grpc", "NOT_FOUND"), ("rest", "404")])
def test_missing_service_is_counted_under_its_code(start_gateway, transport, code):
    gw = start_gateway(memory=True)
    rc, report, _ = run_load(*target_of(gw, transport), "--tenant", fresh_tenant(), "--service-id", "999999",
                             "--duration", "1s", "--streams", "4")
    assert rc == 1
    assert report["ok"] == 0 and report["requests"] > 0
    assert report["errors"] == {code: report["requests"]}
    assert "999999" in report["error_messages"][code]


def test_expected_errors_do_not_fail_the_run(start_gateway):
    gw = start_gateway(memory=True)
    rc, report, stderr = run_load("--target", gw.target, "--service-id", "999999", "--requests", "10",
                                  "--expect-errors", "NOT_FOUND")
    assert rc == 0, stderr
    assert report["errors"] == {"NOT_FOUND": 10}


def test_core_down_is_unavailable(start_gateway):
    gw = start_gateway(upstream=f"127.0.0.1:{free_port()}")
    rc, report, _ = run_load("--target", gw.target, "--scenario", "journey", "--duration", "1s", "--streams", "4")
    assert rc == 1
    assert set(report["errors"]) == {"UNAVAILABLE"}
    # Each journey fails at its first call, and its other 32 are not made.
    assert report["journeys_completed"] == 0
    assert report["journeys_failed"] == report["requests"] == report["errors"]["UNAVAILABLE"] > 0
    assert report["ok_by_method"] == {}


def test_start_task_without_a_core_cannot_set_up(start_gateway):
    gw = start_gateway(upstream=f"127.0.0.1:{free_port()}")
    rc, report, stderr = run_load("--target", gw.target, "--duration", "1s")
    assert rc == 2 and report is None
    assert "StartService failed with UNAVAILABLE" in stderr


def test_deadline_is_sent_and_enforced(start_gateway):
    slow = SlowUpstream(delay=2.0)
    try:
        gw = start_gateway(upstream=slow.address)
        rc, report, _ = run_load("--target", gw.target, "--service-id", "1", "--requests", "4", "--streams", "4",
                                 "--timeout", "200ms")
        assert rc == 1
        assert report["errors"] == {"DEADLINE_EXCEEDED": 4}
        assert report["latency_us"]["max"] < 1_500_000  # not the upstream's 2 s

        rc, report, _ = run_load("--rest", "--target", slow.address, "--service-id", "1", "--requests", "2",
                                 "--streams", "2", "--timeout", "300ms")
        assert rc == 1
        assert report["errors"] == {"TIMEOUT": 2}
    finally:
        slow.close()


def test_unreachable_target_exits_2():
    rc, report, stderr = run_load("--target", f"127.0.0.1:{free_port()}", "--duration", "1s")
    assert rc == 2 and report is None
    assert "cannot connect" in stderr


def test_bad_options_are_refused():
    rc, _, stderr = run_load("--scenario", "nope")
    assert rc != 0 and "--scenario" in stderr
    rc, _, stderr = run_load("--rate", "0")
    assert rc != 0 and "rate" in stderr
