"""The pieces the tests share: the gateway process, the core's REST client, small helpers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
PROTO_FILE = PROTO_DIR / "genesys" / "cs" / "v1" / "context_services.proto"

#: Every blocking wait of the suite is bounded by one of these.
CALL_TIMEOUT = 10.0      # one RPC or REST call
START_TIMEOUT = 30.0     # a gateway printing its listening lines
STOP_TIMEOUT = 10.0      # a gateway exiting after SIGTERM
TEST_ALARM = 45          # a whole test, whatever it waits on


def gateway_binary() -> Path:
    path = Path(os.environ.get("GATEWAY_BIN", ".build/debug/gateway"))
    if not path.is_absolute():
        path = ROOT / path
    return path


# MARK: the gateway process

LISTEN_RE = re.compile(r"address=(https?)://127\.0\.0\.1:(\d+) .*gateway listening")
CORE_RE = re.compile(r"address=http://127\.0\.0\.1:(\d+)(\S*) .*task core listening")


class Gateway:
    """One `gateway serve` process; its output is collected by a thread."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None):
        self.args = args
        self.lines: list[str] = []
        self.port: int | None = None
        self.core_port: int | None = None
        self.core_base = "/genesys/1/cs"
        self.tls = False
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [str(gateway_binary()), "serve", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace", env={**os.environ, **env} if env else None,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.embedded = "--upstream" not in args
        if not self._ready.wait(START_TIMEOUT) or self.port is None:
            self.kill()
            raise RuntimeError("the gateway did not start:\n" + self.log)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if m := CORE_RE.search(line):
                self.core_port = int(m.group(1))
                self.core_base = m.group(2)
            if m := LISTEN_RE.search(line):
                self.tls = m.group(1) == "https"
                self.port = int(m.group(2))
                self._ready.set()
        self._ready.set()  # exited before listening

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self, **options) -> grpc.Channel:
        return grpc.insecure_channel(self.target, options=list(options.items()))

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then the exit code (None if it did not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(2)


# MARK: the core's REST API


class RestResponse:
    def __init__(self, status: int, headers, text: str):
        self.status = status
        self.headers = headers
        self.text = text

    def json(self):
        return json.loads(self.text) if self.text else None

    def __repr__(self):
        return f"RestResponse({self.status}, {self.text[:200]!r})"


class RestClient:
    """Calls the embedded core directly (urllib), answers of every status returned as is."""

    def __init__(self, gateway: Gateway):
        assert gateway.core_port, "the gateway has no embedded core"
        self.base = f"http://127.0.0.1:{gateway.core_port}{gateway.core_base}"

    def call(self, method: str, path: str, body=None, tenant: str | None = None,
             headers: dict | None = None) -> RestResponse:
        data = None
        all_headers = dict(headers or {})
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        if tenant is not None:
            all_headers["ContactCenterId"] = tenant
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=CALL_TIMEOUT) as response:
                return RestResponse(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as error:
            return RestResponse(error.code, error.headers, error.read().decode())

    def get(self, path: str, **kw) -> RestResponse:
        return self.call("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> RestResponse:
        return self.call("POST", path, body=body, **kw)


# MARK: helpers


def http_get(port: int, path: str) -> tuple[int, str]:
    """GET on 127.0.0.1: (status, body), error statuses included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def established_to(port: int) -> int:
    """Established TCP connections to 127.0.0.1:port on this machine (/proc/net/tcp): how a
    test sees that a gateway keeps connections to a core."""
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "01" and int(local.split(":")[1], 16) == port:
                count += 1
    return count


def trailing(error: grpc.RpcError) -> dict:
    return {k: v for k, v in (error.trailing_metadata() or ())}


# MARK: a standalone core process


class Core:
    """One `gateway core` process (the task core alone), for tests whose gateway runs with
    `--upstream`. `rest` is a RestClient of it; `address` is host:port for `--upstream`."""

    def __init__(self, args: list[str]):
        self.args = args
        self.lines: list[str] = []
        self.core_port: int | None = None
        self.core_base = "/genesys/1/cs"
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [str(gateway_binary()), "core", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace",
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(START_TIMEOUT) or self.core_port is None:
            self.kill()
            raise RuntimeError("the core did not start:\n" + self.log)
        self.rest = RestClient(self)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if m := CORE_RE.search(line):
                self.core_port = int(m.group(1))
                self.core_base = m.group(2)
                self._ready.set()
        self._ready.set()  # exited before listening

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.core_port}"

    def kill(self, sig: int = signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(2)


# MARK: load with markers


def wait_until(predicate, timeout: float) -> bool:
    """Polls predicate every 50 ms for at most timeout seconds; its last value."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class MarkedLoad:
    """StartTask calls on one service from a few threads until `finish()`, each carrying its
    own marker extension, so what a test stored can be matched call by call: `ok` maps a
    marker to its task id, `failed` a marker to (status code name, seconds the call took).
    No client keys: the gateway makes its own."""

    def __init__(self, stub, pb, sid: int, threads: int = 6, timeout: float = CALL_TIMEOUT):
        self.stub, self.pb, self.sid, self.timeout = stub, pb, sid, timeout
        self.ok: dict[str, int] = {}
        self.failed: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, n: int):
        import time
        i = 0
        while not self.stop.is_set():
            marker = f"{n}-{i}"
            i += 1
            began = time.monotonic()
            try:
                r = self.stub.StartTask(self.pb.StartTaskRequest(service_id=self.sid,
                                                                 extensions_json=json.dumps({"marker": marker})),
                                        timeout=self.timeout)
                with self.lock:
                    self.ok[marker] = r.task_id
            except grpc.RpcError as error:
                with self.lock:
                    self.failed[marker] = (error.code().name, time.monotonic() - began)
                time.sleep(0.01)

    def count(self) -> int:
        with self.lock:
            return len(self.ok)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def check_exactly_once(load: MarkedLoad, stored: list[dict]):
    """Every success stored once, with its own marker and id; nothing stored for a failure;
    as many stored as succeeded."""
    by_marker: dict[str, list[int]] = {}
    for task in stored:
        by_marker.setdefault(task.get("marker"), []).append(task["task_id"])
    twice = {m: ids for m, ids in by_marker.items() if len(ids) > 1}
    assert not twice, f"stored more than once: {list(twice.items())[:5]}"
    missing = [m for m, tid in load.ok.items() if by_marker.get(m) != [tid]]
    assert not missing, f"acknowledged but not stored as answered: {missing[:5]}"
    stored_but_failed = [m for m in load.failed if m in by_marker]
    assert not stored_but_failed, f"stored, yet answered with an error: {stored_but_failed[:5]}"
    assert len(stored) == len(load.ok)


class PoliteClient:
    """A well-behaved client on a connection of its own (its own subchannel pool), calling
    StartService until `finish()` while a test attacks the gateway on another connection:
    `calls` holds (succeeded, seconds) per call."""

    def __init__(self, gw, protos, timeout: float, pause: float = 0.0):
        self.gw, self.protos, self.timeout, self.pause = gw, protos, timeout, pause
        self.calls: list[tuple[bool, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import time
        pb = self.protos.pb
        with self.gw.channel(**{"grpc.use_local_subchannel_pool": 1}) as own:
            stub = self.protos.rpc.ContextServicesStub(own)
            while not self.stop.is_set():
                began = time.monotonic()
                try:
                    stub.StartService(pb.StartServiceRequest(customer_id="polite"), timeout=self.timeout)
                    self.calls.append((True, time.monotonic() - began))
                except grpc.RpcError:
                    self.calls.append((False, time.monotonic() - began))
                if self.pause:
                    time.sleep(self.pause)

    @property
    def ok(self) -> int:
        return sum(1 for good, _ in self.calls if good)

    @property
    def slowest(self) -> float:
        return max((t for _, t in self.calls), default=0)

    def finish(self):
        self.stop.set()
        self.thread.join(10)
