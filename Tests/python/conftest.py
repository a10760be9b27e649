"""End-to-end tests of `gateway serve` with the real grpcio client.

Session start: the Python classes of proto/genesys/cs/v1/context_services.proto are made with
grpc_tools.protoc into a temporary folder (health comes from grpcio-health-checking). Each
gateway is the real executable (env GATEWAY_BIN, default .build/debug/gateway), started on
ports 127.0.0.1:0 and killed at the end of whatever fixture started it.
"""

from __future__ import annotations

import importlib
import signal
import sys
from pathlib import Path

import grpc
import pytest

from helpers import (CALL_TIMEOUT, PROTO_DIR, PROTO_FILE, TEST_ALARM, Gateway, RestClient,
                     gateway_binary)


# MARK: generated classes


class Protos:
    """The generated modules: `pb` (messages), `rpc` (stubs), `health`, `health_rpc`."""

    def __init__(self, pb, rpc, health, health_rpc):
        self.pb = pb
        self.rpc = rpc
        self.health = health
        self.health_rpc = health_rpc


@pytest.fixture(scope="session")
def protos(tmp_path_factory) -> Protos:
    from grpc_tools import protoc
    import grpc_tools

    out = tmp_path_factory.mktemp("stubs")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main([
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(PROTO_FILE),
    ])
    assert rc == 0, f"protoc failed with {rc}"
    sys.path.insert(0, str(out))
    pb = importlib.import_module("genesys.cs.v1.context_services_pb2")
    rpc = importlib.import_module("genesys.cs.v1.context_services_pb2_grpc")
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    return Protos(pb, rpc, health_pb2, health_pb2_grpc)


@pytest.fixture(scope="session")
def pb(protos):
    return protos.pb


def _launcher(tmp_path_factory, started: list[Gateway]):
    binary = gateway_binary()
    if not binary.exists():
        pytest.fail(f"{binary} does not exist: build it (swift build --product gateway) or set GATEWAY_BIN")

    def start(*extra: str, memory: bool = False, upstream: str | None = None, data=None,
              env: dict[str, str] | None = None) -> Gateway:
        args = ["--listen", "127.0.0.1:0", "--core-listen", "127.0.0.1:0", "--threads", "2"]
        if upstream is not None:
            args += ["--upstream", upstream]
        elif memory:
            args += ["--memory"]
        else:
            args += ["--data", str(data or tmp_path_factory.mktemp("data") / "cs.sqlite")]
        gw = Gateway(args + list(extra), env=env)
        started.append(gw)
        return gw

    return start


@pytest.fixture
def start_gateway(tmp_path_factory):
    """start_gateway(*extra_args, memory=False, upstream=None, data=None, env=None) → a Gateway of
    its own for this test (a fresh SQLite file unless data, memory or upstream; env: variables
    added to the environment), always killed when the test ends."""
    started: list[Gateway] = []
    yield _launcher(tmp_path_factory, started)
    for gw in started:
        gw.kill()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    """The shared gateway: embedded core on a fresh SQLite file."""
    started: list[Gateway] = []
    yield _launcher(tmp_path_factory, started)()
    for gw in started:
        gw.kill()


@pytest.fixture(scope="session")
def channel(gateway):
    ch = gateway.channel()
    grpc.channel_ready_future(ch).result(timeout=CALL_TIMEOUT)
    yield ch
    ch.close()


@pytest.fixture(scope="session")
def stub(protos, channel):
    return protos.rpc.ContextServicesStub(channel)


@pytest.fixture(scope="session")
def rest(gateway):
    return RestClient(gateway)


@pytest.fixture(autouse=True)
def _alarm():
    """No test may hang: a test still running after TEST_ALARM seconds fails."""
    def expired(signum, frame):
        raise TimeoutError(f"test still running after {TEST_ALARM} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_ALARM)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def start_core(tmp_path_factory):
    """start_core(*extra_args, data=None, port=0, memory=False, store=None) → a standalone
    `gateway core` process for this test (a fresh SQLite file unless data, memory or a
    PostgreSQL store URL), always killed when the test ends."""
    from helpers import Core

    started: list[Core] = []

    def start(*extra: str, data=None, port: int = 0, memory: bool = False, store: str | None = None) -> Core:
        binary = gateway_binary()
        if not binary.exists():
            pytest.fail(f"{binary} does not exist: build it (swift build --product gateway) or set GATEWAY_BIN")
        args = ["--listen", f"127.0.0.1:{port}", "--threads", "2"]
        if store is not None:
            args += ["--store", store]
            if "--store-timeout-millis" not in extra:
                # Generous on a loaded CI machine; the outage test sets its own.
                args += ["--store-timeout-millis", "10000"]
        elif memory:
            args += ["--memory"]
        else:
            args += ["--data", str(data or tmp_path_factory.mktemp("core") / "cs.sqlite")]
        core = Core(args + list(extra))
        started.append(core)
        return core

    yield start
    for core in started:
        core.kill()


# MARK: PostgreSQL (the cluster gateway/scripts/test.sh starts: gateway/scripts/pg-cluster.sh)


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The admin URL of the test cluster (CS_TEST_POSTGRES). CI always has one; elsewhere the
    PostgreSQL tests are skipped with the command that starts a cluster."""
    import os
    url = os.environ.get("CS_TEST_POSTGRES")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CS_TEST_POSTGRES is not set: gateway/scripts/test.sh starts the cluster")
        pytest.skip('no PostgreSQL: eval "$(bash gateway/scripts/pg-cluster.sh start)" first')
    return url


@pytest.fixture
def pg_store(pg_admin):
    """A fresh, empty database of the test cluster for this test: its --store URL. Dropped
    at the end."""
    import subprocess
    import uuid
    name = "cs_py_" + uuid.uuid4().hex
    subprocess.run(["psql", pg_admin, "-qc", f"CREATE DATABASE {name}"], check=True, timeout=30)
    yield pg_admin.replace("/postgres?", f"/{name}?")
    subprocess.run(["psql", pg_admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], timeout=30)
