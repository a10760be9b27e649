"""Settings (README, "Configuration") and start-up failures, on the real executable: `gateway
config check`, a settings file, environment variables and flags in their order, and every
refusal said in plain words naming the setting to change.

The key-by-key refusals are SettingsTableTests (Swift, over the whole table); here the same
rules are checked where an operator meets them: the exit code and the text of a start."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from helpers import ROOT, START_TIMEOUT, gateway_binary, http_get as get

EXAMPLE = ROOT / "gateway" / "gateway.example.json"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([str(gateway_binary()), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env} if env else None)


def settings_file(tmp_path, content: dict | str, name: str = "gateway.json") -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


# MARK: gateway config check


def test_config_check_accepts_the_example_and_the_deploy_files():
    for path in [EXAMPLE, *sorted((ROOT / "gateway" / "deploy").glob("*.json"))]:
        out = run("config", "check", str(path))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "valid" in out.stdout


def test_config_check_lists_every_problem_by_key_and_fails(tmp_path):
    path = settings_file(tmp_path, {
        "gateway": {"listen": "nowhere", "max-message-bytes": "4 MiB"},
        "store": {"sqlite-synchronous": "sometimes"},
        "tracing": {"exporter": "otlp"},  # no such section
    })
    out = run("config", "check", path)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "tracing.exporter" in text and "unknown key" in text, text
    # Unknown keys are reported first; once none remain, the values are.
    del_unknown = json.loads(open(path).read())
    del del_unknown["tracing"]
    path = settings_file(tmp_path, del_unknown)
    out = run("config", "check", path)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "gateway.listen" in text and "host:port" in text, text
    assert "gateway.max-message-bytes" in text and "integer" in text, text
    assert "store.sqlite-synchronous" in text and "full, normal, off" in text, text


def test_config_example_is_the_committed_file():
    out = run("config", "example")
    assert out.returncode == 0
    assert out.stdout == EXAMPLE.read_text()


# MARK: a start refused, naming the key


@pytest.mark.parametrize("where", ["file", "environment", "flag"])
def test_an_invalid_value_stops_the_start_naming_the_key(tmp_path, where):
    args, env = ["serve", "--listen", "127.0.0.1:0", "--core-listen", "127.0.0.1:0", "--memory"], None
    if where == "file":
        args += ["--config", settings_file(tmp_path, {"batcher": {"max-queued": 0}})]
    elif where == "environment":
        env = {"CS_BATCHER_MAX_QUEUED": "lots"}
    else:
        args += ["--max-queued", "-5"]
    began = time.monotonic()
    out = run(*args, env=env)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "batcher.max-queued" in text, text
    assert {"file": "file ", "environment": "CS_BATCHER_MAX_QUEUED", "flag": "--max-queued"}[where] in text, text
    assert "listening" not in text
    assert time.monotonic() - began < 10


def test_an_unknown_key_stops_the_start(tmp_path):
    path = settings_file(tmp_path, {"gateway": {"listen": "127.0.0.1:0", "max-mesage-bytes": 10}})
    out = run("serve", "--config", path, "--memory")
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "gateway.max-mesage-bytes" in text and "unknown key" in text and "gateway.max-message-bytes" in text, text


# MARK: precedence: flags > environment > file > defaults


@pytest.mark.parametrize("layers, winner", [
    ((), "/healthz"),
    (("file",), "/from-file"),
    (("file", "env"), "/from-env"),
    (("file", "env", "flag"), "/from-flag"),
    (("env", "flag"), "/from-flag"),
])
def test_flags_win_over_the_environment_which_wins_over_the_file(start_gateway, tmp_path, layers, winner):
    extra, env = [], {}
    if "file" in layers:
        extra += ["--config", settings_file(tmp_path, {"gateway": {"health-path": "/from-file"}})]
    if "env" in layers:
        env["CS_GATEWAY_HEALTH_PATH"] = "/from-env"
    if "flag" in layers:
        extra += ["--health-path", "/from-flag"]
    gw = start_gateway(*extra, memory=True, env=env)
    assert get(gw.port, winner) == (200, '{"status":"SERVING"}')
    for loser in {"/healthz", "/from-file", "/from-env", "/from-flag"} - {winner}:
        assert get(gw.port, loser) != (200, '{"status":"SERVING"}'), loser


def test_a_settings_file_runs_a_gateway(start_gateway, tmp_path):
    """Every key of a file reaches the process: a batch limit and the core's body limit."""
    path = settings_file(tmp_path, {"core": {"max-body": 64, "base-path": "/cs"}, "batcher": {"max-items": 4}})
    gw = start_gateway("--config", path, memory=True)
    assert gw.core_base == "/cs"
    body = json.dumps({"customer_id": "x" * 100}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{gw.port}/cs/services/start", data=body,
                                 headers={"content-type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=5)
    assert refused.value.code == 413


# MARK: start-up failures in plain words


def listening_socket() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


@pytest.mark.parametrize("command, flag, key", [
    ("serve", "--listen", "gateway.listen"),
    ("serve", "--core-listen", "core.listen"),
    ("core", "--listen", "core.listen"),
])
def test_a_port_in_use_is_said_with_the_setting_to_change(command, flag, key):
    taken, port = listening_socket()
    with taken:
        args = [command, "--memory", "--threads", "1"]
        if command == "serve":
            args += ["--listen", "127.0.0.1:0", "--core-listen", "127.0.0.1:0"]
        out = run(*args, flag, f"127.0.0.1:{port}")
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert f"cannot listen on 127.0.0.1:{port}" in text and "already in use" in text, text
    assert key in text and flag in text, text
    assert "IOError" not in text and "errno" not in text, text


def test_a_data_folder_that_cannot_be_created_is_said_plainly(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = run("core", "--listen", "127.0.0.1:0", "--data", str(blocker / "sub" / "cs.sqlite"))
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "cannot open the SQLite store" in text and "cannot be created" in text, text
    assert "store.sqlite-path" in text and "--data" in text, text
    assert "NSCocoaErrorDomain" not in text and "Code=" not in text, text


def self_signed(folder) -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost", "-days", "1"],
                   check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


@pytest.mark.parametrize("case, says, key", [
    ("missing certificate", "no such file", "gateway.tls-cert"),
    ("not a certificate", "is not a PEM certificate chain", "gateway.tls-cert"),
    ("not a key", "is not a PEM private key", "gateway.tls-key"),
    ("key of another certificate", "does not fit the certificate", "gateway.tls-key"),
    ("key alone", "go together", "gateway.tls-cert"),
])
def test_a_bad_tls_file_is_named(tmp_path, case, says, key):
    cert, pem_key = self_signed(tmp_path / "one")
    if case == "missing certificate":
        cert = str(tmp_path / "nowhere.pem")
    elif case == "not a certificate":
        cert = settings_file(tmp_path, "not a certificate\n", "bad-cert.pem")
    elif case == "not a key":
        pem_key = settings_file(tmp_path, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "bad-key.pem")
    elif case == "key of another certificate":
        _, pem_key = self_signed(tmp_path / "two")
    args = ["serve", "--listen", "127.0.0.1:0", "--core-listen", "127.0.0.1:0", "--memory", "--tls-key", pem_key]
    if case != "key alone":
        args += ["--tls-cert", cert]
    out = run(*args)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert says in text and key in text, text
    assert "listening" not in text, text


def test_a_bad_store_url_is_refused_naming_the_key():
    out = run("core", "--listen", "127.0.0.1:0", "--store", "mysql://u@db/x")
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "store.url (flag --store)" in text and "postgres://" in text, text
