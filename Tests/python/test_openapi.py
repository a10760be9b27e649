"""The OpenAPI document of the REST API (gateway/openapi.json): served by the core and by the
gateway at {base}/openapi.json, and checked against both live servers by schemathesis (every
check, a bounded number of examples per operation, so the suite stays short). That the
document names every route of the route table and nothing else is a Swift test
(Tests/TaskCoreTests/OpenAPIDocumentTests.swift)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import CALL_TIMEOUT, ROOT

DOCUMENT = ROOT / "gateway" / "openapi.json"
BASE = "/genesys/1/cs"
TOKEN = "openapi-test-token"
#: Examples per operation and phase: enough to reach every status the document names for the
#: generated requests, few enough that one server's run stays well under a minute here.
MAX_EXAMPLES = int(os.environ.get("CS_SCHEMATHESIS_MAX_EXAMPLES", "10"))
RUN_TIMEOUT = 150


def fetch(url: str) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(url, timeout=CALL_TIMEOUT) as response:
        return response.status, dict(response.headers), response.read()


@pytest.fixture
def servers(start_gateway, start_core):
    """A gateway (REST on its port, embedded core) and a core alone, both requiring a token."""
    gateway = start_gateway("--auth-token", TOKEN, memory=True)
    core = start_core("--auth-token", TOKEN, memory=True)
    return {"gateway": f"http://127.0.0.1:{gateway.port}{BASE}",
            "core": f"http://127.0.0.1:{core.core_port}{core.core_base}"}


@pytest.mark.parametrize("server", ["gateway", "core"])
def test_the_document_is_served_without_credentials(servers, server):
    status, headers, body = fetch(servers[server] + "/openapi.json")
    assert status == 200
    assert headers["content-type"] == "application/json"
    expected = json.loads(DOCUMENT.read_text())
    if server == "gateway":
        # The core's own extensions are not served on the gateway's port.
        for path in ("/batch", "/store"):
            del expected["paths"][path]
    assert json.loads(body) == expected
    if server == "core":
        assert body == DOCUMENT.read_bytes().rstrip(b"\n")


@pytest.mark.parametrize("server", ["gateway", "core"])
def test_schemathesis_finds_the_server_true_to_the_document(servers, server, tmp_path):
    signal.alarm(RUN_TIMEOUT + 15)  # longer than the suite's per-test alarm: this is a whole run
    base = servers[server]
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", base + "/openapi.json",
               "--url", base, "--checks", "all", "--max-examples", str(MAX_EXAMPLES),
               "--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "10",
               # One worker: hypothesis describes strategies with ast.parse, which CPython 3.11
               # can fail when two threads parse at once (SystemError "AST constructor recursion").
               "--workers", "1",
               # The batch body is binary (application/x-cs-batch) and its layout is not a JSON
               # Schema: nothing valid can be generated for it. BatchHTTPTests covers it.
               "--exclude-path", "/batch"]
    started = time.monotonic()
    # In a scratch folder: hypothesis keeps its example database in the working directory.
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                         env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
                              "PYTHONPATH": str(Path(__file__).parent)})
    elapsed = time.monotonic() - started
    print(f"schemathesis against the {server}: {elapsed:.1f} s")
    assert run.returncode == 0, (run.stdout + run.stderr)[-12000:]
