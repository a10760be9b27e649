"""Issue 11, item 1, over real sockets: request bytes buffered for messages not yet complete
are bounded per connection (`--max-buffered-request-bytes-per-connection`, default 32 MiB:
manual HTTP/2 window updates, the connection window inside it) and per process
(`--max-buffered-request-bytes`, default 256 MiB). A client announcing big messages on many
streams and never finishing them gets RESOURCE_EXHAUSTED on the streams over the budget or is
held back by flow control; the gateway's RSS stays within the budget plus a margin; other
connections are served meanwhile."""

from __future__ import annotations

import struct
import threading
import time

import grpc
import pytest
import h2.exceptions

from helpers import CALL_TIMEOUT, PoliteClient, wait_until
from rawclients import SERVICE, H2Client

T = CALL_TIMEOUT
MIB = 1 << 20


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def grpc_headers(method: str) -> list[tuple[str, str]]:
    return [(":method", "POST"), (":scheme", "http"), (":path", f"{SERVICE}/{method}"), (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"), ("te", "trailers")]


class PartialFlood:
    """One connection: `streams` streams, each announcing a message of `announce` bytes and
    sending its body as fast as the gateway's windows allow, never finishing it."""

    def __init__(self, port: int, streams: int, announce: int):
        self.client = H2Client(port)
        self.client.conn.update_settings({})  # nothing special: the gateway's windows rule
        self.sids = []
        self.pushed = 0
        self.announce = announce
        self.sent: dict[int, int] = {}  # per stream: never the message's last byte
        chunk = b"\0" * 16_384
        self.chunk = chunk
        for _ in range(streams):
            sid = self.client.request(grpc_headers("StartService"), end=False)
            self.client.conn.send_data(sid, struct.pack(">BI", 0, announce))
            self.sids.append(sid)
        self.client.flush()

    def push(self, seconds: float):
        c = self.client
        end = time.monotonic() + seconds
        while time.monotonic() < end and not c.closed:
            sent = 0
            for sid in self.sids:
                s = c.streams[sid]
                if s.done or s.headers:
                    continue  # answered (RESOURCE_EXHAUSTED) or reset
                try:
                    room = min(c.conn.local_flow_control_window(sid), len(self.chunk),
                               self.announce - 1 - self.sent.get(sid, 0))
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                    continue
                if room <= 0:
                    continue
                self.sent[sid] = self.sent.get(sid, 0) + room
                try:
                    c.conn.send_data(sid, self.chunk[:room])
                except h2.exceptions.H2Error:
                    continue
                sent += room
            self.pushed += sent
            try:
                # Blocking: pump() left a 5 ms timeout on the socket, under which sendall gave up
                # as soon as the gateway stopped reading, ending the flood after ~4 MiB.
                c.sock.settimeout(T)
                c.flush()
            except OSError:
                break
            c.pump(0.005 if sent else 0.05)

    def answered(self) -> dict[int, int]:
        """grpc-status of each stream the gateway answered (RST_STREAM alone: -code)."""
        out = {}
        for sid in self.sids:
            s = self.client.streams[sid]
            if s.grpc_status is not None:
                out[sid] = s.grpc_status
            elif s.reset is not None:
                out[sid] = -s.reset
        return out


def test_partial_messages_on_many_streams_stay_within_the_connection_budget(protos, start_gateway):
    pb = protos.pb
    budget = 32 * MIB  # --max-buffered-request-bytes-per-connection default
    gw = start_gateway(memory=True)
    pid = gw.proc.pid
    ch = gw.channel()
    stub = protos.rpc.ContextServicesStub(ch)
    assert stub.StartService(pb.StartServiceRequest(customer_id="warm"), timeout=T).service_id >= 1
    time.sleep(0.3)
    before = rss_kib(pid)

    stop = threading.Event()
    peak = [before]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    client = PoliteClient(gw, protos, timeout=3, pause=0.02)
    flood = PartialFlood(gw.port, streams=256, announce=4 * MIB - 64)
    try:
        flood.push(6.0)
        answered = flood.answered()
        during = peak[0]
    finally:
        flood.client.close()
        time.sleep(1.0)
        stop.set()
        sampler.join(10)
        client.finish()
        ch.close()
    after = rss_kib(pid)
    polite = client.calls
    ok, worst = client.ok, client.slowest
    exhausted = sum(1 for v in answered.values() if v == 8)
    print(f"\n[partial flood] 256 streams × 4 MiB announced: pushed {flood.pushed / MIB:.1f} MiB in 6 s; "
          f"{exhausted} streams RESOURCE_EXHAUSTED, other answers {sorted(set(answered.values()) - {8})}; "
          f"RSS {before / 1024:.0f} MiB before, peak {during / 1024:.0f}, after {after / 1024:.0f}; "
          f"polite client {ok}/{len(polite)} OK, slowest {worst * 1000:.0f} ms")
    growth = (during - before) * 1024
    # Margin: buffers grow by doubling (up to 2× the bytes held) plus nghttp2's and NIO's own.
    assert growth < 2 * budget + 32 * MIB, f"RSS grew {growth / MIB:.0f} MiB under a {budget / MIB:.0f} MiB budget"
    # What the client could push: the budget, plus what the streams answered over it let through.
    assert exhausted > 0 or flood.pushed <= budget + 64 * 16_384, (flood.pushed, answered)
    assert set(answered.values()) <= {8}, answered
    assert polite and ok == len(polite), f"polite client: {ok}/{len(polite)} OK"
    assert worst < 1.0, f"a polite call took {worst:.2f} s"
    # Back near idle: MallocTuning keeps at most 16 MiB at the top of each arena and trims
    # after spikes (releaseAfterSpikes, every 2 s).
    assert wait_until(lambda: (rss_kib(pid) - before) * 1024 < 24 * MIB, timeout=8), \
        f"RSS after the flood: {rss_kib(pid) / 1024:.0f} MiB, before {before / 1024:.0f}"


def test_a_message_larger_than_the_stream_window_still_arrives(protos, start_gateway):
    """Manual window updates must still let a 3 MiB message (three initial windows) through."""
    pb = protos.pb
    gw = start_gateway(memory=True)
    client = H2Client(gw.port)
    try:
        big = pb.StartServiceRequest(customer_id="x" * 100, extensions_json='{"pad":"' + "p" * (3 * MIB) + '"}')
        message = big.SerializeToString()
        sid = client.request(grpc_headers("StartService"), end=False)
        body = struct.pack(">BI", 0, len(message)) + message
        deadline = time.monotonic() + T
        while body and time.monotonic() < deadline:
            room = min(client.conn.local_flow_control_window(sid), 16_384, len(body))
            if room > 0:
                client.conn.send_data(sid, body[:room], end_stream=room == len(body))
                body = body[room:]
                client.flush()
            else:
                client.pump(0.05)
        answer = client.wait(sid)
        # The core's body limit (1 MiB) refuses it after decoding: the message arrived whole
        # (a budget refusal would say OverloadedException).
        assert dict(answer.headers).get("cs-exception") == "PayloadTooLargeException", answer
    finally:
        client.close()


def test_the_process_budget_refuses_partial_bytes_over_it(protos, start_gateway):
    pb = protos.pb
    gw = start_gateway("--max-buffered-request-bytes", str(8 * MIB), memory=True)
    flood = PartialFlood(gw.port, streams=16, announce=4 * MIB - 64)
    try:
        flood.push(3.0)
        answered = flood.answered()
        print(f"\n[process budget 8 MiB] pushed {flood.pushed / MIB:.1f} MiB; answers {answered}")
        assert 8 in answered.values(), answered
        assert flood.pushed < 8 * MIB + 16 * MIB + 16 * 16_384  # budget + what over-budget streams let through
        # Another connection is served once the flood's streams are gone.
    finally:
        flood.client.close()
    time.sleep(0.3)
    # The flood's bytes went back to the process budget with its connection: a new call is
    # not refused for buffering. (Its outcome otherwise is the core's: in this test a first
    # upstream connection made right after the flood was seen failing UNAVAILABLE; not
    # explained yet, so not asserted here.)
    client = H2Client(gw.port)
    try:
        answer = client.wait(client.grpc("StartService", pb.StartServiceRequest(customer_id="after").SerializeToString()))
        assert answer.grpc_status not in (None, 8), answer
    finally:
        client.close()
