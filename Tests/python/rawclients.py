"""Clients that can misbehave on purpose, for the hardening tests: an HTTP/2 client on the `h2`
package (any header block, any frame, raw bytes when even h2 would refuse), and a raw-socket
HTTP/1.1 client (repeated headers, half requests, trickled bytes)."""

from __future__ import annotations

import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from helpers import CALL_TIMEOUT

SERVICE = "/genesys.cs.v1.ContextServices"


def grpc_frame(message: bytes, flag: int = 0) -> bytes:
    return struct.pack(">BI", flag, len(message)) + message


class StreamResult:
    def __init__(self):
        self.headers: list[tuple[str, str]] = []
        self.data = b""
        self.trailers: list[tuple[str, str]] = []
        self.reset: int | None = None
        self.ended = False

    @property
    def status(self) -> str | None:
        return dict(self.headers).get(":status")

    @property
    def grpc_status(self) -> int | None:
        for block in (self.trailers, self.headers):
            if "grpc-status" in dict(block):
                return int(dict(block)["grpc-status"])
        return None

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None

    def __repr__(self):
        return f"StreamResult(headers={self.headers}, trailers={self.trailers}, reset={self.reset}, data={self.data[:100]!r})"


class H2Client:
    """One HTTP/2 connection (h2c, prior knowledge). `goaway` holds the GOAWAY error code once
    one arrived; `closed` is true once the server closed the socket."""

    def __init__(self, port: int, timeout: float = CALL_TIMEOUT, validate: bool = True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                           validate_outbound_headers=validate, normalize_outbound_headers=validate,
                                           validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.flush()
        self.streams: dict[int, StreamResult] = {}
        self.goaway: int | None = None
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def request(self, headers: list[tuple[str, str]], body: bytes = b"", end: bool = True) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = StreamResult()
        self.conn.send_headers(sid, headers, end_stream=end and not body)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def grpc(self, method: str, message: bytes, metadata: list[tuple[str, str]] = (), flag: int = 0) -> int:
        headers = [(":method", "POST"), (":scheme", "http"), (":path", f"{SERVICE}/{method}"),
                   (":authority", "127.0.0.1"), ("content-type", "application/grpc"), ("te", "trailers")]
        return self.request(headers + list(metadata), grpc_frame(message, flag))

    def pump(self, timeout: float = 0.2) -> bool:
        """Reads what arrives within `timeout`; false once the server closed the connection."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except ConnectionError:
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            events = []
        for event in events:
            s = self.streams.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, h2.events.ResponseReceived) and s:
                s.headers = list(event.headers)
            elif isinstance(event, h2.events.TrailersReceived) and s:
                s.trailers = list(event.headers)
            elif isinstance(event, h2.events.DataReceived) and s:
                s.data += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and s:
                s.ended = True
            elif isinstance(event, h2.events.StreamReset) and s:
                s.reset = int(event.error_code)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = int(event.error_code)
        try:
            self.flush()
        except OSError:
            self.closed = True
        return True

    def rapid_reset(self, method: str, message: bytes, metadata: list[tuple[str, str]] = (), max_sent: int = 20_000,
                    seconds: float = 10.0) -> int:
        """"Rapid reset" with complete requests: each call sent whole and reset at once
        (CANCEL), 50 per write, until the server sends GOAWAY or closes the connection (or
        `max_sent` calls, or `seconds`). Returns how many were sent."""
        sent = 0
        began = time.monotonic()
        while not self.closed and self.goaway is None and sent < max_sent and time.monotonic() - began < seconds:
            try:
                for _ in range(50):
                    sid = self.grpc(method, message, metadata=metadata)
                    self.conn.reset_stream(sid, 0x8)  # CANCEL
                    sent += 1
                self.flush()
            except (OSError, h2.exceptions.ProtocolError):
                break  # the server closed the connection
            self.pump(0.001)
        return sent

    def wait(self, sid: int, timeout: float = CALL_TIMEOUT) -> StreamResult:
        deadline = time.monotonic() + timeout
        s = self.streams[sid]
        while not s.done and time.monotonic() < deadline and self.pump():
            pass
        return s

    def wait_closed(self, timeout: float = CALL_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pump():
            pass
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def http1(port: int, request: bytes, timeout: float = CALL_TIMEOUT) -> tuple[int, dict[str, str], bytes, bool]:
    """Sends raw bytes, reads one answer: (status, headers lower-cased, body, closed after)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_http1(sock)


def read_http1(sock: socket.socket) -> tuple[int, dict[str, str], bytes, bool]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {buf!r}")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    closed = False
    if headers.get("connection", "").lower() == "close":
        sock.settimeout(2)
        try:
            closed = sock.recv(1) == b""
        except (socket.timeout, ConnectionError):
            closed = False
    return status, headers, body, closed


# MARK: raw HTTP/2 frames (what h2 would refuse to send)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, RST_STREAM, SETTINGS, GOAWAY = 0x1, 0x3, 0x4, 0x7
END_STREAM, END_HEADERS = 0x1, 0x4


def h2_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    """RFC 7541 §5.1: `first` carries the pattern bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(s: bytes) -> bytes:
    return hpack_int(len(s), 7, 0) + s


def hpack_bomb(path: str, entry: int = 4000, references: int = 10_000) -> bytes:
    """A request header block that decodes to `entry` × `references` bytes: the pseudo-headers
    and content type, one literal added to the dynamic table (RFC 7541 §6.2.1), then
    one-byte references to it (§6.1, index 62: the newest dynamic entry)."""
    block = b"\x83\x86"  # :method POST, :scheme http (static table)
    block += hpack_int(4, 4, 0x00) + hpack_string(path.encode())  # :path, literal without indexing
    block += hpack_int(1, 4, 0x00) + hpack_string(b"127.0.0.1")  # :authority
    block += hpack_int(31, 4, 0x00) + hpack_string(b"application/grpc")  # content-type
    block += b"\x40" + hpack_string(b"x-bomb") + hpack_string(b"a" * entry)
    return block + b"\xbe" * references


class RawH2:
    """A bare HTTP/2 connection: preface and empty SETTINGS sent, then frames as given; `frames`
    collects what the server sends as (type, flags, stream, payload)."""

    def __init__(self, port: int, timeout: float = CALL_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(PREFACE + h2_frame(SETTINGS, 0, 0, b""))
        self.buf = b""
        self.frames: list[tuple[int, int, int, bytes]] = []
        self.closed = False
        self.write_failed = False

    def send(self, data: bytes):
        """Sends what it can: a server that closes mid-send stops the sending, not the reading
        (its GOAWAY is still waiting on the socket)."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.write_failed = True

    def pump(self, timeout: float = 0.2):
        if self.closed:
            return
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return
        except OSError:
            self.closed = True
            return
        if not data:
            self.closed = True
            return
        self.buf += data
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            kind, flags = self.buf[3], self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            self.frames.append((kind, flags, stream, self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]

    def resets(self) -> dict[int, int]:
        return {s: int.from_bytes(p[:4], "big") for k, _, s, p in self.frames if k == RST_STREAM}

    def goaway(self) -> int | None:
        codes = [int.from_bytes(p[4:8], "big") for k, _, _, p in self.frames if k == GOAWAY]
        return codes[-1] if codes else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
