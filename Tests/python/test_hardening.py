"""Hardening (issue 11) over real sockets: each attack at a scale CI affords, the bound it must
meet, and a well-behaved client on another connection that keeps succeeding."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import grpc
import pytest

from helpers import CALL_TIMEOUT, trailing
from rawclients import (END_HEADERS, END_STREAM, HEADERS, SERVICE, H2Client, RawH2, grpc_frame, h2_frame, hpack_bomb,
                        http1)

T = CALL_TIMEOUT
BASE = "/genesys/1/cs"


def tenant(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def web_trailers(body: bytes) -> dict[str, str]:
    """The trailer frame of a gRPC-Web answer body."""
    i = 0
    while i < len(body):
        flag, length = body[i], int.from_bytes(body[i + 1:i + 5], "big")
        payload = body[i + 5:i + 5 + length]
        if flag & 0x80:
            return {k.strip().lower(): v.strip() for k, _, v in
                    (line.partition(":") for line in payload.decode().split("\r\n") if line)}
        i += 5 + length
    raise AssertionError(f"no trailer frame in {body!r}")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (proc(5): fields 14 and 15, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# MARK: 9. the compressed-flag byte


@pytest.mark.parametrize("flag", [0x02, 0x80, 0xFF])
def test_a_compressed_flag_other_than_0_or_1_is_malformed(pb, stub, gateway, flag):
    good = pb.StartServiceRequest(customer_id="flag").SerializeToString()
    client = H2Client(gateway.port)
    try:
        s = client.wait(client.grpc("StartService", good, flag=flag))
        assert s.grpc_status == 13, s  # INTERNAL, like the other framing errors
        assert "compressed flag" in dict(s.headers).get("grpc-message", ""), s
        # The connection still serves a well-formed call.
        ok = client.wait(client.grpc("StartService", good))
        assert ok.grpc_status == 0, ok
    finally:
        client.close()
    # gRPC-Web shares the reader.
    body = grpc_frame(good, flag)
    status, _, answer, _ = http1(gateway.port, (
        f"POST {'/genesys.cs.v1.ContextServices/StartService'} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/grpc-web+proto\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    assert status == 200 and web_trailers(answer)["grpc-status"] == "13", answer
    assert stub.StartService(pb.StartServiceRequest(customer_id="after"), timeout=T).service_id >= 1


# MARK: 8. a tenant (or credentials) named twice


def task_ids(rest_port: int, sid: int, who: str) -> list[int]:
    status, _, body, _ = http1(rest_port, (f"GET {BASE}/services/{sid}/tasks HTTP/1.1\r\nHost: x\r\n"
                                           f"ContactCenterId: {who}\r\nConnection: close\r\n\r\n").encode())
    assert status == 200, body
    return [t["task_id"] for t in json.loads(body)]


def test_grpc_metadata_naming_two_tenants_is_refused(pb, stub, gateway):
    a, b = tenant("A"), tenant("B")
    sid = stub.StartService(pb.StartServiceRequest(customer_id="of-a"), timeout=T,
                            metadata=[("contactcenterid", a)]).service_id
    for metadata in ([("contactcenterid", b), ("contactcenterid", a)], [("contactcenterid", a), ("contactcenterid", a)],
                     [("contactcenterid", a), ("authorization", "Bearer x"), ("authorization", "Bearer y")]):
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartTask(pb.StartTaskRequest(service_id=sid), timeout=T, metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, metadata
        assert trailing(caught.value)["cs-exception"] == "ValidationException"
    # Nothing was started, on either tenant.
    assert task_ids(gateway.core_port, sid, a) == []
    assert stub.StartTask(pb.StartTaskRequest(service_id=sid), timeout=T, metadata=[("contactcenterid", a)]).task_id == 1


def test_rest_naming_two_tenants_is_refused_on_every_transport(pb, stub, gateway):
    a, b = tenant("A"), tenant("B")
    sid = stub.StartService(pb.StartServiceRequest(customer_id="of-a"), timeout=T,
                            metadata=[("contactcenterid", a)]).service_id
    path = f"{BASE}/services/{sid}/tasks/start"
    body = b'{"task_type":"x"}'
    # HTTP/1.1, gateway and core, names in any case.
    for port in (gateway.port, gateway.core_port):
        for first, second in (("ContactCenterId", "contactcenterid"), ("CONTACTCENTERID", "ContactCenterId"),
                              ("Authorization", "authorization")):
            values = (b, a) if "ontact" in first.lower() or "CONTACT" in first else ("Bearer x", "Bearer y")
            request = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContactCenterId: {a}\r\n" if "uth" in first else
                       f"POST {path} HTTP/1.1\r\nHost: x\r\n")
            request += (f"{first}: {values[0]}\r\n{second}: {values[1]}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            status, _, answer, _ = http1(port, request.encode() + body)
            assert status == 400, (port, first, answer)
            assert json.loads(answer)["exception"] == "ValidationException", answer
            assert "at most once" in json.loads(answer)["message"]
    # HTTP/2 REST on the gateway.
    client = H2Client(gateway.port)
    try:
        s = client.wait(client.request([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
                                        ("content-type", "application/json"), ("contactcenterid", b),
                                        ("contactcenterid", a)], body))
        assert s.status == "400", s
        assert json.loads(s.data)["exception"] == "ValidationException"
        # gRPC-Web over HTTP/2.
        msg = grpc_frame(pb.StartTaskRequest(service_id=sid).SerializeToString())
        s = client.wait(client.request([(":method", "POST"), (":scheme", "http"),
                                        (":path", "/genesys.cs.v1.ContextServices/StartTask"), (":authority", "x"),
                                        ("content-type", "application/grpc-web+proto"), ("contactcenterid", b),
                                        ("contactcenterid", a)], msg))
        assert s.status == "200" and web_trailers(s.data)["grpc-status"] == "3", s
    finally:
        client.close()
    # gRPC-Web over HTTP/1.1.
    msg = grpc_frame(pb.StartTaskRequest(service_id=sid).SerializeToString())
    status, _, answer, _ = http1(gateway.port, (
        f"POST /genesys.cs.v1.ContextServices/StartTask HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/grpc-web+proto\r\nContactCenterId: {b}\r\ncontactcenterid: {a}\r\n"
        f"Content-Length: {len(msg)}\r\n\r\n").encode() + msg)
    assert status == 200 and web_trailers(answer)["grpc-status"] == "3", answer
    # Nothing changed; one tenant header still works.
    assert task_ids(gateway.core_port, sid, a) == []
    status, _, answer, _ = http1(gateway.port, (f"POST {path} HTTP/1.1\r\nHost: x\r\nContactCenterId: {a}\r\n"
                                                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                                                ).encode() + body)
    assert status == 201, answer


# MARK: 3. header limits enforced as limits

LIMIT = 16 * 1024


def grpc_headers(method: str = "StartService") -> list[tuple[str, str]]:
    return [(":method", "POST"), (":scheme", "http"), (":path", f"{SERVICE}/{method}"), (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"), ("te", "trailers")]


def test_a_header_list_over_the_advertised_size_resets_its_stream(pb, gateway):
    good = grpc_frame(pb.StartServiceRequest(customer_id="h").SerializeToString())
    client = H2Client(gateway.port)
    try:
        # ~100 KB of metadata, in HEADERS + CONTINUATION frames.
        pad = [(f"x-pad-{i}", "v" * 14_000) for i in range(7)]
        s = client.wait(client.request(grpc_headers() + pad, good))
        assert s.reset == 0xB, s  # ENHANCE_YOUR_CALM: gRPC clients say RESOURCE_EXHAUSTED
        # Just over the limit by the RFC 9113 §10.5.1 count (name + value + 32 per field).
        base = sum(len(n) + len(v) + 32 for n, v in grpc_headers())
        over = [("x-pad", "v" * (LIMIT - base - 32 - len("x-pad") + 1))]
        assert client.wait(client.request(grpc_headers() + over, good)).reset == 0xB
        at = [("x-pad", "v" * (LIMIT - base - 32 - len("x-pad")))]
        assert client.wait(client.request(grpc_headers() + at, good)).grpc_status == 0
        # Too many fields, each tiny.
        s = client.wait(client.request(grpc_headers() + [(f"x{i}", "") for i in range(300)], good))
        assert s.reset == 0xB, s
        # Plain HTTP on HTTP/2 too.
        s = client.wait(client.request([(":method", "GET"), (":scheme", "http"), (":path", "/healthz"),
                                        (":authority", "x")] + pad))
        assert s.reset == 0xB, s
        # The connection still serves.
        assert client.wait(client.request(grpc_headers(), good)).grpc_status == 0
        assert client.goaway is None and not client.closed
    finally:
        client.close()


def test_grpcio_metadata_over_the_limit_fails_and_the_next_call_succeeds(pb, stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.StartService(pb.StartServiceRequest(customer_id="big"), timeout=T, metadata=[("x-big", "v" * 40_000)])
    # grpcio may refuse before sending (the peer's SETTINGS) or get our reset: either way no call.
    assert caught.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL), caught.value
    assert stub.StartService(pb.StartServiceRequest(customer_id="small"), timeout=T).service_id >= 1


def test_an_hpack_bomb_is_cut_short_and_a_repeat_offender_gets_goaway(pb, stub, start_gateway):
    gw = start_gateway(memory=True)
    pid = gw.proc.pid
    before = rss_kib(pid)
    path = f"{SERVICE}/StartService"
    # One bomb block (14 KB encoded, 40 MB decoded): its stream is reset, the connection lives.
    single = RawH2(gw.port)
    single.send(h2_frame(HEADERS, END_HEADERS | END_STREAM, 1, hpack_bomb(path)))
    deadline = time.monotonic() + T
    while 1 not in single.resets() and not single.closed and time.monotonic() < deadline:
        single.pump()
    assert single.resets().get(1) == 0xB, single.frames
    assert single.goaway() is None
    single.close()

    # Four connections bombing at once, 40 blocks each (1.6 GB decoded if taken whole).
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    attackers = [RawH2(gw.port) for _ in range(4)]
    try:
        for a in attackers:
            a.send(b"".join(h2_frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, hpack_bomb(path)) for i in range(40)))
        deadline = time.monotonic() + T
        while not all(a.closed for a in attackers) and time.monotonic() < deadline:
            for a in attackers:
                a.pump(0.05)
        # A well-behaved client on its own connection is served meanwhile.
        ok = gw.channel()
        try:
            svc = type(stub)(ok)
            assert svc.StartService(pb.StartServiceRequest(customer_id="ok"), timeout=T).service_id >= 1
        finally:
            ok.close()
    finally:
        stop.set()
        sampler.join(2)
        for a in attackers:
            a.close()
    for a in attackers:
        assert a.closed, "the offender's connection is closed"
        assert a.goaway() == 0xB, a.frames[-3:]  # GOAWAY ENHANCE_YOUR_CALM
        assert len(a.resets()) <= 5, a.resets()  # refused blocks tolerated: 4, the 5th ends it
    growth_mib = (peak[0] - before) / 1024
    print(f"HPACK bomb: RSS {before / 1024:.0f} MiB before, peak {peak[0] / 1024:.0f} MiB (+{growth_mib:.0f} MiB)")
    assert growth_mib < 64, f"RSS grew by {growth_mib:.0f} MiB under the HPACK bomb"


@pytest.mark.parametrize("server", ["gateway", "core"])
def test_http1_head_over_the_limit_is_431_then_close(gateway, server):
    port = gateway.port if server == "gateway" else gateway.core_port
    for extra in ("X-Pad: " + "v" * 20_000 + "\r\n", "".join(f"X-{i}: 1\r\n" for i in range(300))):
        status, headers, body, closed = http1(port, (f"GET {BASE}/services/1 HTTP/1.1\r\nHost: x\r\n{extra}\r\n").encode())
        assert status == 431, body
        assert json.loads(body) == {"message": f"request header fields larger than {LIMIT} bytes",
                                    "exception": "RequestHeaderFieldsTooLargeException"}
        assert headers.get("connection") == "close" and closed
    # A head within the limit is served on the same port.
    status, _, _, _ = http1(port, f"GET {BASE}/services/999999 HTTP/1.1\r\nHost: x\r\nX-Pad: {'v' * 8000}\r\n\r\n".encode())
    assert status == 404


# MARK: 7. EMFILE: the acceptor pauses instead of spinning


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def set_fd_limit(pid: int, limit: int):
    import resource
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))


def healthz(port: int, timeout: float = 5.0) -> int:
    status, _, _, _ = http1(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=timeout)
    return status


@pytest.mark.parametrize("listener", ["gateway", "core"])
def test_out_of_descriptors_the_listener_pauses_instead_of_spinning(pb, stub, start_gateway, listener):
    gw = start_gateway(memory=True)
    pid = gw.proc.pid
    port = gw.port if listener == "gateway" else gw.core_port
    # Warm up: the upstream pool's connections are open before the limit is set.
    ok = gw.channel()
    svc = type(stub)(ok)
    assert svc.StartService(pb.StartServiceRequest(customer_id="warm"), timeout=T).service_id >= 1
    set_fd_limit(pid, open_fds(pid) + 8)
    held = []
    try:
        for _ in range(40):  # 32 more than the process can accept
            held.append(__import__("socket").create_connection(("127.0.0.1", port), timeout=T))
        time.sleep(0.5)  # let the accepts fail
        cpu0 = cpu_seconds(pid)
        time.sleep(3)
        spent = cpu_seconds(pid) - cpu0
        print(f"EMFILE on the {listener} listener: {spent:.2f} CPU-s in 3 s with {len(held)} connections held")
        assert spent < 0.5, f"{spent:.2f} CPU-s in 3 s: the accept loop spins"
        # The connection accepted before the limit keeps being served.
        assert svc.StartService(pb.StartServiceRequest(customer_id="held"), timeout=T).service_id >= 1
        # Some clients leave: the listener accepts again.
        for s in held[:36]:
            s.close()
        del held[:36]
        deadline = time.monotonic() + T
        status = None
        while time.monotonic() < deadline:
            try:
                status = healthz(gw.port) if listener == "gateway" else http1(
                    port, f"GET {BASE}/services/999999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(), timeout=2)[0]
                break
            except OSError:
                time.sleep(0.2)
        assert status == (200 if listener == "gateway" else 404), status
        reports = sum("cannot accept connections" in line for line in gw.lines)
        assert 1 <= reports <= 2, f"accept failures logged {reports} times: once per interval"
    finally:
        for s in held:
            s.close()
        ok.close()


def test_connections_over_the_limit_are_closed_and_calls_keep_succeeding(pb, stub, start_gateway):
    """--max-connections (default: the descriptor limit minus 128): a connection accepted beyond
    it is closed at once, so descriptors stay for upstream connections and libdispatch (which
    crashed the process when its /proc read failed with EMFILE); calls on the connections
    already held keep succeeding, from several threads, and after some clients leave, new
    connections are accepted again."""
    import socket
    import threading
    gw = start_gateway("--max-connections", "24", memory=True)
    ok = gw.channel()
    svc = type(stub)(ok)
    assert svc.StartService(pb.StartServiceRequest(customer_id="warm"), timeout=T).service_id >= 1
    held = [socket.create_connection(("127.0.0.1", gw.port), timeout=T) for _ in range(40)]
    try:
        time.sleep(0.5)
        closed = 0
        for s in held:
            s.settimeout(0.2)
            try:
                closed += s.recv(1) == b""
            except socket.timeout:
                pass
            except ConnectionError:
                closed += 1
        results = {"ok": 0, "failed": 0}

        def calls():
            for _ in range(50):
                try:
                    svc.StartService(pb.StartServiceRequest(customer_id="busy"), timeout=T)
                    results["ok"] += 1
                except grpc.RpcError:
                    results["failed"] += 1

        threads = [threading.Thread(target=calls) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        print(f"\n[connection limit 24] 41 connections: {closed} closed by the gateway; calls {results}")
        # 24 slots: the channel's connection (and the launcher's readiness probe, if its
        # keep-alive connection is still open), the rest for the first of the 40.
        assert 40 - 23 <= closed <= 40 - 22, closed
        assert results == {"ok": 400, "failed": 0}, results
        assert sum("connection limit reached" in line for line in gw.lines) == 1
        for s in held:
            s.close()
        held.clear()
        time.sleep(0.3)
        assert healthz(gw.port) == 200  # a new connection is accepted again
    finally:
        for s in held:
            s.close()
        ok.close()


# MARK: 6. deadlines for idle, half-open and slow connections


def closed_after(sock, limit: float, trickle: bytes = b"", every: float = 0.2) -> float | None:
    """Seconds until the server closed `sock` (None if still open after `limit`), sending one
    byte of `trickle` every `every` seconds meanwhile."""
    start = time.monotonic()
    sock.settimeout(every)
    i = 0
    while time.monotonic() - start < limit:
        try:
            data = sock.recv(65536)
            if not data:
                return time.monotonic() - start
        except __import__("socket").timeout:
            pass
        except OSError:
            return time.monotonic() - start
        if i < len(trickle):
            try:
                sock.sendall(trickle[i:i + 1])
            except OSError:
                return time.monotonic() - start
            i += 1
    return None


def test_half_open_slow_and_idle_connections_are_closed(pb, stub, start_gateway):
    import socket
    gw = start_gateway("--handshake-timeout-millis", "1000", "--request-head-timeout-millis", "1000",
                       "--request-body-timeout-millis", "1500", "--idle-timeout-seconds", "2", memory=True)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    settings = h2_frame(0x4, 0, 0, b"")
    head = f"POST {BASE}/services/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
    cases = {
        # name: (port, bytes sent at once, bytes trickled, expected close in seconds)
        "nothing": (gw.port, b"", b"", 1.0),
        "half a preface": (gw.port, preface[:10], b"", 1.0),
        "preface, no SETTINGS": (gw.port, preface, b"", 1.0),
        "preface and SETTINGS, then idle": (gw.port, preface + settings, b"", 2.0),
        "half an HTTP/1.1 head": (gw.port, head, b"", 1.0),
        "a head trickled a byte per 0.2 s": (gw.port, b"G", b"ET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100, 1.0),
        "a body trickled": (gw.port, head + b"Content-Length: 1000\r\n\r\n", b"{" + b" " * 200, 1.5),
        "HTTP/1.1 idle after an answer": (gw.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"", 2.0),
        "core: half a head": (gw.core_port, head, b"", 1.0),
        "core: idle after an answer": (gw.core_port, f"GET {BASE}/services/9 HTTP/1.1\r\nHost: x\r\n\r\n".encode(), b"", 2.0),
    }
    results: dict[str, float | None] = {}

    def run(name):
        port, first, trickle, _ = cases[name]
        with socket.create_connection(("127.0.0.1", port), timeout=T) as s:
            if first:
                s.sendall(first)
            results[name] = closed_after(s, 6.0, trickle)

    threads = [threading.Thread(target=run, args=(n,)) for n in cases]
    for t in threads:
        t.start()
    # Meanwhile a well-behaved client, calling every 0.4 s for 3 s on one connection, is served
    # throughout (and not closed as idle: its streams come and go).
    ch = gw.channel()
    svc = type(stub)(ch)
    for _ in range(8):
        assert svc.StartService(pb.StartServiceRequest(customer_id="ok"), timeout=T).service_id >= 1
        time.sleep(0.4)
    for t in threads:
        t.join(10)
    ch.close()
    print({k: (round(v, 2) if v else v) for k, v in results.items()})
    for name, (_, _, _, expected) in cases.items():
        took = results.get(name)
        assert took is not None, f"{name}: still open after 6 s"
        assert expected - 0.3 <= took <= expected + 1.5, f"{name}: closed after {took:.2f} s, expected {expected} s"


def test_an_idle_http2_connection_gets_goaway_before_close(start_gateway):
    gw = start_gateway("--idle-timeout-seconds", "1", memory=True)
    client = H2Client(gw.port)
    try:
        assert client.wait_closed(5)
        assert client.goaway == 0, client.goaway  # NO_ERROR
    finally:
        client.close()
