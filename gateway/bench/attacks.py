#!/usr/bin/env python3
"""The hardening attacks of issue 11 against the release gateway, one fresh gateway each: its
memory, what a well-behaved client experienced meanwhile, and what the attacker got. One
Markdown table on stdout. A benchmark, not a test: nothing is asserted (a failure of the run
itself shows in the row).

For each attack: `gateway serve --threads 1 --memory --log-level warning
--answer-stall-timeout-millis 3000` (+ the attack's own timeouts) pinned to --server-cpu with taskset; a warm-up; then

- RSS idle: VmRSS after the warm-up, the polite client connected;
- RSS peak: the highest VmRSS sampled every 20 ms while the attack runs;
- RSS after: VmRSS 5 s after the attack ended (its connections closed);
- polite: a grpcio client in a process of its own, on a connection of its own
  (grpc.use_local_subchannel_pool), StartService and StartTask alternately, one at a time,
  2 s deadline, from before the attack to its end: ok / calls and p99;
- attacker got: statuses, resets, GOAWAY codes, connections closed (and, for the overload,
  the flood's stored/s; out of descriptors, the gateway's CPU time over 3 s).

Attacks (the clients are the tests' own, imported from Tests/python):
  partial     256 streams × 4 MiB announced, pushed 6 s, never finished (test_memory_budgets)
  zero-window 60 QueryTasks of ~0.9 MB to a client with a zero window (test_answer_budgets)
  no-read     2 connections × 40 such QueryTasks, the socket never read
  big-headers ~100 KB header lists (limit 16 KiB) on many streams and connections
  hpack-bomb  20 bomb blocks (14 KB → 40 MB decoded) per connection, 2 connections a round
  rapid-reset complete StartTask requests each reset at once, until GOAWAY (test_resets)
  overload    gateway load --connections 64 --streams 256 --duration 8s, closed loop
  slow-conns  2,000 half-open, idle and trickling connections, held until closed
  no-fds      gateway under prlimit --nofile=256:256, 400 connections opened

  attacks.py [--binary B] [--only a,b,...] [--server-cpu 0] [--client-cpu 1] [--json PATH]
Run through attacks.sh (finds or builds the release binary, uses the venv). --json writes the
rows as JSON too: {"script": "attacks", "date", "command", "binary", "server_cpu", "seconds",
"rows": [{attack, label, attacker_got, rss_idle_kib, rss_peak_kib, rss_after_kib, polite_ok,
polite_calls, polite_failed, polite_p99_ms, cpu}], "failures": []} (a benchmark: nothing is
asserted, so failures stays empty; a failed run says so in attacker_got).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "python"))
sys.path.insert(0, str(HERE))

MIB = 1 << 20
SETTLE = 5.0           # RSS "after": this long after the attack ended
POLITE_TIMEOUT = 2.0   # the polite client's deadline
POLITE_PAUSE = 0.01    # between its calls
STALL = 3.0            # --answer-stall-timeout-millis of every gateway here
ATTACK_ALARM = 120     # no attack (setup and settling included) may take longer


# MARK: the polite client (a process of its own: no GIL shared with the attackers)


def polite_main(target: str, timeout: float):
    """Runs until stdin closes: StartService and StartTask alternately, one at a time. Prints
    "ready" after its first successful call, then at the end one JSON line."""
    import grpc
    from grpc_bench import load
    pb, pbg = load()
    times: list[float] = []
    ok = 0
    codes: dict[str, int] = {}
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        stub = pbg.ContextServicesStub(channel)
        deadline = time.monotonic() + 20
        sid = None
        while sid is None and time.monotonic() < deadline and not stop.is_set():
            try:
                sid = stub.StartService(pb.StartServiceRequest(customer_id="polite"), timeout=5).service_id
            except grpc.RpcError:
                time.sleep(0.1)
        print("ready" if sid else "not ready", flush=True)
        i = 0
        while sid and not stop.is_set():
            began = time.monotonic()
            try:
                if i % 2:
                    sid = stub.StartService(pb.StartServiceRequest(customer_id="polite"), timeout=timeout).service_id
                else:
                    stub.StartTask(pb.StartTaskRequest(service_id=sid, extensions_json='{"polite":true}'),
                                   timeout=timeout)
                ok += 1
            except grpc.RpcError as error:
                codes[error.code().name] = codes.get(error.code().name, 0) + 1
            times.append(time.monotonic() - began)
            i += 1
            time.sleep(POLITE_PAUSE)
    times.sort()
    p99 = round(times[min(len(times) - 1, int(0.99 * len(times)))] * 1000, 1) if times else None
    print(json.dumps({"calls": len(times), "ok": ok, "failed": codes, "p99_ms": p99,
                      "max_ms": round(times[-1] * 1000, 1) if times else None}), flush=True)


class Polite:
    def __init__(self, target: str):
        self.proc = subprocess.Popen([sys.executable, __file__, "polite", target, str(POLITE_TIMEOUT)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.finish()
            raise RuntimeError(f"the polite client did not start: {line!r}")

    def finish(self) -> dict:
        try:
            out, _ = self.proc.communicate(timeout=POLITE_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        return {"calls": 0, "ok": 0, "p99_ms": None, "failed": {}}


# MARK: the gateway process


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class BenchGateway:
    """`gateway serve` on two free ports, behind `prefix` (taskset, prlimit: both exec, so the
    process id is the gateway's). With --log-level warning it prints no listening line: ready
    once /healthz answers. The attributes RestClient needs are here too."""

    def __init__(self, binary: str, extra: list[str], prefix: list[str], log_path: Path):
        from helpers import free_port, wait_until
        self.port, self.core_port = free_port(), free_port()
        self.core_base = "/genesys/1/cs"
        self.log_path = log_path
        args = ["serve", "--listen", f"127.0.0.1:{self.port}", "--core-listen", f"127.0.0.1:{self.core_port}",
                "--threads", "1", "--memory", "--log-level", "warning", *extra]
        self.log_file = open(log_path, "w")
        self.proc = subprocess.Popen([*prefix, binary, *args], stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if not wait_until(self._healthy, timeout=30):
            self.kill()
            raise RuntimeError("the gateway did not start: " + self.log[-2000:])

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            return True  # let the caller see it failed
        from rawclients import http1
        try:
            return http1(self.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=1)[0] == 200
        except OSError:
            return False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.log_file.close()


class Ctx:
    """What an attack gets: the gateway, the generated classes, a gRPC stub (the main
    process's own channel, for setup) and the run's settings."""

    def __init__(self, gw: BenchGateway, pb, pbg, args):
        import grpc
        self.gw, self.pb, self.pbg, self.args = gw, pb, pbg, args
        self.channel = grpc.insecure_channel(gw.target)
        self.stub = pbg.ContextServicesStub(self.channel)

    def close(self):
        self.channel.close()


# MARK: the attacks: each (setup, attack) → what the attacker got, one short sentence


def warm(ctx: Ctx) -> int:
    """A service and a few tasks, so lazily built state (upstream connections, buffers) is in
    the idle figure."""
    pb = ctx.pb
    sid = ctx.stub.StartService(pb.StartServiceRequest(customer_id="warm"), timeout=10).service_id
    for _ in range(20):
        ctx.stub.StartTask(pb.StartTaskRequest(service_id=sid), timeout=10)
    return sid


def steady(client):
    """Makes an H2Client's flush non-blocking and lossless: what the socket does not take now
    waits in `client.pending` (in order) for the next flush. H2Client.flush is a sendall under
    whatever timeout pump() last set (5 ms in PartialFlood.push): once the gateway stops
    reading, it times out mid-frame, and the tests' flood loop ends there (after ~4 MiB)."""
    client.pending = b""

    def flush():
        client.pending += client.conn.data_to_send()
        if not client.pending or client.closed:
            return
        client.sock.settimeout(0)
        try:
            while client.pending:
                n = client.sock.send(client.pending[:1 << 20])
                client.pending = client.pending[n:]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            client.closed = True

    client.flush = flush
    return client


class SteadyFlood:
    """test_memory_budgets.PartialFlood, pushing for the whole time: its streams and chunks,
    the client made steady (above), new data only while little waits unsent, and never the
    last byte of a stream's announced message (a stream whose window let its whole message
    through would otherwise go on to a second one: INTERNAL, "more than one request message")."""

    def __init__(self, port: int, streams: int, announce: int):
        from test_memory_budgets import PartialFlood
        self.flood = PartialFlood(port, streams, announce)  # its headers are sent blocking: small
        self.client = steady(self.flood.client)
        self.left = {sid: announce - 1 for sid in self.flood.sids}  # body bytes a stream may still get

    def push(self, seconds: float):
        import h2.exceptions
        f, c = self.flood, self.client
        end = time.monotonic() + seconds
        while time.monotonic() < end and not c.closed:
            sent = 0
            if len(c.pending) < 256 * 1024:
                for sid in f.sids:
                    s = c.streams[sid]
                    if s.done or s.headers:
                        continue
                    try:
                        room = min(c.conn.local_flow_control_window(sid), len(f.chunk), self.left[sid])
                        if room > 0:
                            c.conn.send_data(sid, f.chunk[:room])
                            self.left[sid] -= room
                            sent += room
                    except (h2.exceptions.H2Error, KeyError):
                        continue
            f.pushed += sent
            c.flush()
            c.pump(0.005 if sent else 0.05)
        c.flush()

    @property
    def pushed(self) -> int:
        return self.flood.pushed

    def answered(self) -> dict[int, int]:
        return self.flood.answered()


def attack_partial(ctx: Ctx, _) -> str:
    flood = SteadyFlood(ctx.gw.port, streams=256, announce=4 * MIB - 64)
    try:
        flood.push(6.0)
        answered = flood.answered()
        goaway, closed = flood.client.goaway, flood.client.closed
        unsent = len(flood.client.pending)
    finally:
        flood.client.close()
    exhausted = sum(1 for v in answered.values() if v == 8)
    other = sorted(set(answered.values()) - {8})
    held = 256 - len(answered)
    return (f"pushed {(flood.pushed - unsent) / MIB:.0f} MiB in 6 s; {exhausted}/256 streams RESOURCE_EXHAUSTED, "
            f"{held} unanswered (held)" + (f", other answers {other}" if other else "") + (f"; GOAWAY {goaway:#x}" if goaway is not None else "")
            + ("; closed" if closed else "; not closed"))


def setup_big(ctx: Ctx):
    from test_answer_budgets import big_service
    warm(ctx)
    return big_service(ctx.stub, ctx.pb)  # (service id, the query, answer bytes)


def attack_zero_window(ctx: Ctx, big) -> str:
    import h2.settings
    from rawclients import H2Client
    _, query, size = big
    calls = 60
    client = H2Client(ctx.gw.port)
    try:
        client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        sids = [client.grpc("QueryTasks", query) for _ in range(calls)]
        began = time.monotonic()
        closed = client.wait_closed(timeout=STALL + 20)
        took = time.monotonic() - began
    finally:
        client.close()
    exhausted = sum(1 for s in sids if client.streams[s].grpc_status == 8)
    held = sum(1 for s in sids if client.streams[s].status == "200" and client.streams[s].grpc_status is None)
    goaway = f"GOAWAY {client.goaway:#x}" if client.goaway is not None else "no GOAWAY"
    return (f"{calls} × {size / 1e6:.2f} MB: {exhausted} RESOURCE_EXHAUSTED, {held} held; {goaway}, "
            + (f"closed after {took:.1f} s" if closed else "not closed"))


def attack_no_read(ctx: Ctx, big) -> str:
    from rawclients import H2Client
    _, query, size = big
    per, connections = 40, 2
    clients = [H2Client(ctx.gw.port) for _ in range(connections)]
    try:
        for c in clients:
            for _ in range(per):
                c.grpc("QueryTasks", query)  # sent; nothing read until the gateway gave up
        began = time.monotonic()
        time.sleep(STALL + 2)
        closed = [c.wait_closed(timeout=15) for c in clients]
        took = time.monotonic() - began
        goaways = sorted({f"{c.goaway:#x}" for c in clients if c.goaway is not None})
        statuses: dict[int, int] = {}
        for c in clients:
            for s in c.streams.values():
                statuses[s.grpc_status] = statuses.get(s.grpc_status, 0) + 1
    finally:
        for c in clients:
            c.close()
    answered = ", ".join(f"{n} {'unanswered' if k is None else 'grpc-status ' + str(k)}"
                         for k, n in sorted(statuses.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))
    return (f"{connections} × {per} × {size / 1e6:.2f} MB: closed {sum(closed)}/{connections} within {took:.1f} s, "
            f"GOAWAY {', '.join(goaways) or 'none'}; {answered}")


CONTINUATION = 0x9


def big_header_block(path: str) -> bytes:
    """A request header block of ~100 KB (7 fields of 14,000 bytes, literal, no Huffman: the
    test's own header list), built once: h2's encoder would Huffman-code every byte in Python."""
    from rawclients import hpack_int, hpack_string
    block = b"\x83\x86"  # :method POST, :scheme http
    block += hpack_int(4, 4, 0x00) + hpack_string(path.encode())
    block += hpack_int(1, 4, 0x00) + hpack_string(b"127.0.0.1")
    block += hpack_int(31, 4, 0x00) + hpack_string(b"application/grpc")
    block += b"\x00" + hpack_string(b"te") + hpack_string(b"trailers")
    for i in range(7):
        block += b"\x00" + hpack_string(f"x-pad-{i}".encode()) + hpack_string(b"v" * 14_000)
    return block


def headers_frames(stream: int, block: bytes, max_frame: int = 16_384) -> bytes:
    """HEADERS + CONTINUATION frames carrying `block`, END_STREAM on the request."""
    from rawclients import END_HEADERS, END_STREAM, HEADERS, h2_frame
    pieces = [block[i:i + max_frame] for i in range(0, len(block), max_frame)]
    out = b""
    for n, piece in enumerate(pieces):
        last = END_HEADERS if n == len(pieces) - 1 else 0
        out += h2_frame(HEADERS if n == 0 else CONTINUATION, last | (END_STREAM if n == 0 else 0), stream, piece)
    return out


def raw_rounds(port: int, seconds: float, connections: int, blocks: list[bytes]) -> tuple[int, int, int, dict, int]:
    """Rounds of `connections` RawH2 connections, each sent `blocks` (one per stream) at once,
    read until the gateway closes them (3 s at most), for `seconds`. (connections, streams
    sent, closed, GOAWAY codes → count, most resets on one connection)."""
    from rawclients import RawH2
    total = sent = closed = most_resets = 0
    goaways: dict[str, int] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conns = [RawH2(port) for _ in range(connections)]
        try:
            for c in conns:
                c.send(b"".join(blocks))  # may fail part way: the gateway closed mid-send
                c.closed = False  # what it sent before closing (its GOAWAY) is still to read
                sent += len(blocks)
            deadline = time.monotonic() + 3
            while not all(c.closed for c in conns) and time.monotonic() < deadline:
                for c in conns:
                    c.pump(0.02)
        finally:
            for c in conns:
                c.close()
        for c in conns:
            total += 1
            closed += c.closed
            g = c.goaway()
            key = "none" if g is None else f"{g:#x}"
            goaways[key] = goaways.get(key, 0) + 1
            most_resets = max(most_resets, len(c.resets()))
    return total, sent, closed, goaways, most_resets


def attack_big_headers(ctx: Ctx, _) -> str:
    from rawclients import SERVICE
    block = big_header_block(f"{SERVICE}/StartService")
    streams = 50
    frames = [headers_frames(1 + 2 * i, block) for i in range(streams)]
    total, sent, closed, goaways, resets = raw_rounds(ctx.gw.port, 5.0, 4, frames)
    return (f"{len(block) // 1000} KB lists, {streams} streams a connection: {total} connections, "
            f"≤ {resets} streams reset (0xb) each, GOAWAY {fmt_counts(goaways)}, closed {closed}/{total}")


def attack_hpack_bomb(ctx: Ctx, _) -> str:
    from rawclients import END_HEADERS, END_STREAM, HEADERS, SERVICE, h2_frame, hpack_bomb
    bomb = hpack_bomb(f"{SERVICE}/StartService")
    frames = [h2_frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, bomb) for i in range(20)]
    total, sent, closed, goaways, resets = raw_rounds(ctx.gw.port, 4.0, 2, frames)
    return (f"20 blocks ({len(bomb) // 1000} KB → {4000 * 10_000 / 1e6:.0f} MB) a connection, 2 at a time: "
            f"{total} connections, ≤ {resets} resets each, GOAWAY {fmt_counts(goaways)}, closed {closed}/{total}")


def fmt_counts(counts: dict) -> str:
    return ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items()))


def attack_rapid_reset(ctx: Ctx, _) -> str:
    """Connections one after another for 4 s, each sending complete StartTask requests and
    resetting each at once (CANCEL), 50 per write, until the gateway sends GOAWAY and closes."""
    from helpers import RestClient
    from rawclients import H2Client
    tenant = [("contactcenterid", "rapid-reset")]
    victim = ctx.stub.StartService(ctx.pb.StartServiceRequest(customer_id="victim"), timeout=10,
                                   metadata=tenant).service_id
    message = ctx.pb.StartTaskRequest(service_id=victim, extensions_json='{"marker":"reset"}').SerializeToString()
    per_connection: list[int] = []
    goaways: dict[str, int] = {}
    closed = 0
    began = time.monotonic()
    while time.monotonic() - began < 4.0:
        attacker = H2Client(ctx.gw.port)
        try:
            sent = attacker.rapid_reset("StartTask", message, metadata=tenant, max_sent=50_000, seconds=10)
            attacker.wait_closed(5)
        finally:
            attacker.close()
        per_connection.append(sent)
        key = "none" if attacker.goaway is None else f"{attacker.goaway:#x}"
        goaways[key] = goaways.get(key, 0) + 1
        closed += attacker.closed
    took = time.monotonic() - began
    stored = RestClient(ctx.gw).get(f"/services/{victim}/tasks", tenant="rapid-reset")
    n = len(stored.json()) if stored.status == 200 else f"? ({stored.status})"
    per_connection.sort()
    return (f"{len(per_connection)} connections in {took:.1f} s, each reset {per_connection[0]}–{per_connection[-1]} "
            f"requests (median {per_connection[len(per_connection) // 2]}) before GOAWAY {fmt_counts(goaways)}; "
            f"closed {closed}/{len(per_connection)}; {n} of {sum(per_connection)} stored")


def attack_overload(ctx: Ctx, _) -> str:
    command = [ctx.args.binary, "load", "--json", "--quiet", "--target", ctx.gw.target,
               "--connections", "64", "--streams", "256", "--duration", "8s"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    if not proc.stdout.strip():
        return f"gateway load failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"
    r = json.loads(proc.stdout)
    errors = fmt_counts(r.get("errors", {})) or "none"
    messages = r.get("error_messages", {})
    if messages:
        errors += ": " + "; ".join(f"{v[:90]}" for v in list(messages.values())[:1])
    return (f"64 × 256 streams, 8 s: {r['ok']} ok ({r['ok'] / r['duration_s']:.0f} stored/s), {r['failed']} failed "
            f"({errors}), flood p99 {r['latency_us']['p99'] / 1000:.0f} ms, {r['connections_lost']} connections lost")


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SLOW_CONNS = {
    # kind: (bytes sent at once, bytes trickled one per 0.2 s)
    "half preface": (PREFACE[:10], b""),
    "preface only": (PREFACE, b""),
    "idle h2": (PREFACE + EMPTY_SETTINGS, b""),
    "trickled head": (b"G", b"ET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200),
}
SLOW_ARGS = ["--handshake-timeout-millis", "1000", "--request-head-timeout-millis", "1000",
             "--idle-timeout-seconds", "2"]


async def slow_connections(port: int, per_kind: int, limit: float) -> dict[str, list[float | None]]:
    results: dict[str, list[float | None]] = {k: [] for k in SLOW_CONNS}

    async def one(kind: str, gate: asyncio.Semaphore):
        first, trickle = SLOW_CONNS[kind]
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            except (OSError, asyncio.TimeoutError):
                results[kind].append(-1.0)  # could not connect
                return
        start = time.monotonic()
        took = None
        try:
            if first:
                writer.write(first)
            i = 0
            while time.monotonic() - start < limit:
                try:
                    data = await asyncio.wait_for(reader.read(65536), 0.2 if trickle else limit)
                    if not data:
                        took = time.monotonic() - start
                        break
                except asyncio.TimeoutError:
                    pass
                if i < len(trickle):
                    writer.write(trickle[i:i + 1])
                    i += 1
        except OSError:
            took = time.monotonic() - start
        finally:
            writer.close()
        results[kind].append(took)

    gate = asyncio.Semaphore(200)  # connects in flight at once
    await asyncio.gather(*(one(kind, gate) for _ in range(per_kind) for kind in SLOW_CONNS))
    return results


def attack_slow_conns(ctx: Ctx, _) -> str:
    per_kind = 500
    most = [0]
    stop = threading.Event()

    def count_fds():  # the gateway's descriptors: how many of the connections it held at once
        while not stop.is_set():
            try:
                most[0] = max(most[0], len(os.listdir(f"/proc/{ctx.gw.pid}/fd")))
            except OSError:
                return
            time.sleep(0.05)

    base = len(os.listdir(f"/proc/{ctx.gw.pid}/fd"))
    counter = threading.Thread(target=count_fds, daemon=True)
    counter.start()
    try:
        results = asyncio.run(slow_connections(ctx.gw.port, per_kind, limit=15.0))
    finally:
        stop.set()
        counter.join(5)
    parts = []
    total_closed = 0
    for kind, times in results.items():
        closed = [t for t in times if t is not None and t >= 0]
        failed = sum(1 for t in times if t is not None and t < 0)
        total_closed += len(closed)
        parts.append(f"{kind} {len(closed)}/{len(times)}" + (f" in ≤ {max(closed):.1f} s" if closed else "")
                     + (f" ({failed} not connected)" if failed else ""))
    return (f"{total_closed}/{per_kind * len(SLOW_CONNS)} closed by the gateway (at most {most[0] - base} open at once): "
            + "; ".join(parts))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def attack_no_fds(ctx: Ctx, _) -> str:
    from rawclients import http1
    pid = ctx.gw.pid
    held = []
    cpu0 = cpu_seconds(pid)
    time.sleep(3)
    baseline = cpu_seconds(pid) - cpu0  # the polite client's calls alone
    try:
        for _ in range(400):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", ctx.gw.port))  # non-blocking: a full backlog does not stall us
            held.append(s)
        time.sleep(0.5)  # let the accepts fail
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        cpu0 = cpu_seconds(pid)
        time.sleep(3)
        spent = cpu_seconds(pid) - cpu0
    finally:
        for s in held:
            s.close()
    # Clients left: the listener accepts again (it retries every 500 ms).
    began = time.monotonic()
    again = None
    while time.monotonic() - began < 10:
        try:
            if http1(ctx.gw.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=2)[0] == 200:
                again = time.monotonic() - began
                break
        except OSError:
            time.sleep(0.2)
    logged = ctx.gw.log.count("cannot accept connections")
    return (f"400 connections, gateway at {fds}/256 fds: {spent:.2f} CPU-s in 3 s (3 s before them: {baseline:.2f}); "
            f"accept failure logged {logged}×; "
            + (f"/healthz 200 {again:.1f} s after they closed" if again is not None else "/healthz not answered after they closed"))


ATTACKS = [
    # (key, table label, setup, attack, gateway options, prefix before taskset)
    ("partial", "1. partial messages: 256 streams × 4 MiB announced, pushed 6 s", warm, attack_partial, [], []),
    ("zero-window", "2a. answers to a zero-window client: 60 QueryTasks of ~0.9 MB", setup_big, attack_zero_window,
     [], []),
    ("no-read", "2b. answers to a client that never reads: 2 × 40 QueryTasks", setup_big, attack_no_read, [], []),
    ("big-headers", "3a. header lists of ~100 KB (limit 16 KiB), 4 connections at a time, 5 s", warm,
     attack_big_headers, [], []),
    ("hpack-bomb", "3b. HPACK bombs: 20 blocks × 2 connections a round, 4 s", warm, attack_hpack_bomb, [], []),
    ("rapid-reset", "4. rapid reset of complete StartTask requests until GOAWAY, new connections for 4 s", warm,
     attack_rapid_reset, [], []),
    ("overload", "5. overload: gateway load -c 64 -s 256, 8 s closed loop", warm, attack_overload, [], []),
    ("slow-conns", "6. 2,000 half-open / idle / trickling connections (timeouts 1 s, idle 2 s)", warm,
     attack_slow_conns, SLOW_ARGS, []),
    ("no-fds", "7. out of descriptors: --nofile 256, 400 connections", warm, attack_no_fds, [],
     ["prlimit", "--nofile=256:256"]),
]


def mib(kib) -> str:
    return "?" if kib is None else f"{kib / 1024:.0f}"


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (/proc/stat, every CPU)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and its waited-for children (the polite client, gateway load)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


OTHERS: dict[str, str] = {}  # attack key → how busy the CPUs were meanwhile, and with what


def run_one(args, work: Path, pb, pbg, key, label, setup, attack, extra, prefix) -> tuple[str, dict]:
    gw = ctx = polite = sampler = None
    idle = peak = after = None
    result: dict = {}
    got = "?"

    def expired(signum, frame):
        raise TimeoutError(f"still running after {ATTACK_ALARM} s")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(ATTACK_ALARM)
    try:
        gw = BenchGateway(args.binary, ["--answer-stall-timeout-millis", str(int(STALL * 1000)), *extra],
                          [*prefix, "taskset", "-c", str(args.server_cpu)], work / f"{key}.log")
        ctx = Ctx(gw, pb, pbg, args)
        prepared = setup(ctx)
        polite = Polite(gw.target)
        time.sleep(0.5)
        idle = rss_kib(gw.pid)
        from test_answer_budgets import Sampler
        sampler = Sampler(gw.pid)
        marks = (time.monotonic(), busy_seconds(), own_seconds(), cpu_seconds(gw.pid))
        try:
            got = attack(ctx, prepared)
        finally:
            peak = sampler.finish()
            result = polite.finish()
            polite = None
            wall = time.monotonic() - marks[0]
            gw_cpu = cpu_seconds(gw.pid) - marks[3]
            busy = busy_seconds() - marks[1]
            clients = own_seconds() - marks[2]
            OTHERS[key] = (f"{key} {wall:.0f} s: busy {busy / wall:.1f}, gateway {gw_cpu / wall:.1f}, "
                           f"clients {clients / wall:.1f}")
        time.sleep(SETTLE)
        if gw.proc.poll() is None:
            after = rss_kib(gw.pid)
        else:
            got += f"; the gateway EXITED ({gw.proc.returncode})"
    except Exception as error:  # noqa: BLE001 (a benchmark row says what failed)
        traceback.print_exc(file=sys.stderr)
        got = f"{got}; FAILED: {type(error).__name__}: {str(error)[:200]}"
    finally:
        signal.alarm(0)
        if sampler and peak is None:
            peak = sampler.finish()
        if polite:
            result = polite.finish()
        if ctx:
            ctx.close()
        if gw:
            if gw.proc.poll() is not None and gw.proc.returncode not in (0, -9):
                got += f"; gateway exit {gw.proc.returncode}"
            gw.kill()
            tail = [line for line in gw.log.splitlines() if line.strip()][-3:]
            if tail:
                print(f"[{key}] gateway log tail:\n  " + "\n  ".join(tail), file=sys.stderr)
    failed = result.get("failed") or {}
    ok_calls = f"{result.get('ok', 0)} / {result.get('calls', 0)}"
    if failed:
        ok_calls += " (" + fmt_counts(failed) + ")"
    p99 = result.get("p99_ms")
    row = (f"| {label} | {got.replace('|', '/')} | {mib(idle)} / {mib(peak)} / {mib(after)} | {ok_calls} | "
           f"{'?' if p99 is None else f'{p99:.0f}'} |")
    print(f"[{key}] done: {row}", file=sys.stderr, flush=True)
    record = {"attack": key, "label": label, "attacker_got": got, "rss_idle_kib": idle, "rss_peak_kib": peak,
              "rss_after_kib": after, "polite_ok": result.get("ok", 0), "polite_calls": result.get("calls", 0),
              "polite_failed": failed, "polite_p99_ms": p99, "cpu": OTHERS.get(key)}
    return row, record


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / ".build-bench" / "release" / "gateway"))
    parser.add_argument("--only", default="", help="comma-separated keys: " + ",".join(a[0] for a in ATTACKS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=None,
                        help="pin this process (and so the clients) here; attacks.sh uses taskset instead")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this path")
    args = parser.parse_args()
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary}: not an executable (attacks.sh builds it)")
    keys = [a[0] for a in ATTACKS]
    unknown = [k for k in args.only.split(",") if k and k not in keys]
    if unknown:
        sys.exit(f"unknown attacks {unknown}: choose from {','.join(keys)}")
    chosen = [a for a in ATTACKS if not args.only or a[0] in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="cs-attacks.") as tmp:
        work = Path(tmp)
        if not os.environ.get("BENCH_STUBS"):
            os.environ["BENCH_STUBS"] = str(work / "stubs")
            import grpc_bench
            grpc_bench.stubs(os.environ["BENCH_STUBS"])
        from grpc_bench import load
        pb, pbg = load()
        began = time.monotonic()
        results = [run_one(args, work, pb, pbg, *a) for a in chosen]
        rows = [row for row, _ in results]
        took = time.monotonic() - began
    command = os.environ.get("BENCH_COMMAND") or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    print(f"`{command}` — {time.strftime('%Y-%m-%d', time.gmtime())}, "
          f"{Path(args.binary).name} (release) `serve --threads 1 --memory --log-level warning` on CPU "
          f"{args.server_cpu}, clients on CPU(s) {sorted(os.sched_getaffinity(0))}; a fresh gateway per attack; "
          f"{took:.0f} s in all\n")
    print("| attack | attacker got | RSS idle / peak / after (MiB) | polite ok / calls | polite p99 ms |")
    print("|---|---|--:|--:|--:|")
    for row in rows:
        print(row)
    print(f"\nCPUs in use during each attack, of {os.cpu_count()} (busy: the whole machine, softirq included; "
          "clients: this script, the polite client, gateway load; the rest of busy is other processes and "
          "the kernel's loopback work): " + "; ".join(OTHERS.values()) + ".")
    if args.json:
        doc = {"script": "attacks", "date": time.strftime('%Y-%m-%d', time.gmtime()), "command": command,
               "binary": args.binary, "server_cpu": args.server_cpu, "seconds": round(took, 1),
               "rows": [record for _, record in results], "failures": []}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, args.json)
        print(f"attacks: results as JSON: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "polite":
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        polite_main(sys.argv[2], float(sys.argv[3]))
    else:
        main()
