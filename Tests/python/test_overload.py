"""Issue 11, item 5, over real sockets: goodput under overload and fairness between
connections. A flood with more calls in flight than the gateway's queue holds (`gateway load`,
8 connections × 256 streams (the most a connection may have open), against `--max-queued 1024`) is served rather than refused: calls
beyond the admission limit wait unread, their connections served in turn, so the flood's calls
succeed, a well-behaved client on a connection of its own keeps succeeding within a second, and
the health check answers at once. The same flood without admission control (`--no-admission`)
overflows the queue: that is what the mechanism prevents."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request

from helpers import PoliteClient, gateway_binary

FLOOD = ["--connections", "8", "--streams", "256", "--duration", "4s"]
# One event loop: one batcher queue of 1,024 against 2,048 calls in flight.
QUEUE = ["--max-queued", "1024", "--threads", "1"]


def flood(gw) -> dict:
    proc = subprocess.run([str(gateway_binary()), "load", "--json", "--quiet", "--target", f"127.0.0.1:{gw.port}",
                           *FLOOD], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def health_probe(gw, out: list[float], stop: threading.Event):
    while not stop.is_set():
        began = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{gw.port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        out.append(time.monotonic() - began)
        time.sleep(0.1)


def run_overload(gw, protos) -> tuple[dict, PoliteClient, list[float]]:
    polite = PoliteClient(gw, protos, timeout=2.0, pause=0.01)
    probes: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=health_probe, args=(gw, probes, stop), daemon=True)
    prober.start()
    try:
        report = flood(gw)
    finally:
        stop.set()
        prober.join(10)
        polite.finish()
    return report, polite, probes


def test_a_flood_over_the_queue_is_served_in_turn_and_a_polite_client_keeps_succeeding(protos, start_gateway):
    # A long --admission-max-wait-millis: this is about waiting in turn; refusing calls that
    # waited too long is test_rest_shedding.py's and the unit tests'.
    gw = start_gateway(*QUEUE, "--admission-max-calls", "512", "--admission-max-wait-millis", "20000", memory=True)
    report, polite, probes = run_overload(gw, protos)
    print(f"\n[overload, admission on] flood: {report['ok']} ok, {report['failed']} failed {report['errors']}, "
          f"{report['rate']:.0f}/s, p99 {report['latency_us']['p99'] / 1000:.0f} ms; "
          f"polite {polite.ok}/{len(polite.calls)} ok, slowest {polite.slowest * 1000:.0f} ms; "
          f"health slowest {max(probes, default=0) * 1000:.0f} ms")
    assert report["ok"] > 0 and report["failed"] == 0, report["errors"]
    assert polite.calls and polite.ok == len(polite.calls), f"polite client: {polite.ok}/{len(polite.calls)} OK"
    assert polite.slowest < 1.0, f"a polite call took {polite.slowest:.2f} s"
    assert probes and max(probes) < 1.0, f"a health check took {max(probes):.2f} s"


def test_without_admission_the_same_flood_overflows_the_queue(protos, start_gateway):
    """The contrast: what admission control prevents (so the test above can fail)."""
    gw = start_gateway(*QUEUE, "--no-admission", memory=True)
    report, polite, _ = run_overload(gw, protos)
    print(f"\n[overload, admission off] flood: {report['ok']} ok, {report['failed']} failed {report['errors']}; "
          f"polite {polite.ok}/{len(polite.calls)} ok")
    assert report["failed"] > 0, report
    assert "RESOURCE_EXHAUSTED" in json.dumps(report["errors"]), report["errors"]
