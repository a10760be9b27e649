"""TLS: `--tls-cert/--tls-key` serve h2 over TLS (ALPN h2) with a certificate made here."""

from __future__ import annotations

import datetime
import ipaddress
import time

import grpc
import pytest

from helpers import CALL_TIMEOUT

T = CALL_TIMEOUT


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert PEM bytes, cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_pem, folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls_gateway(start_gateway, certificate):
    _, cert, key = certificate
    gw = start_gateway("--tls-cert", str(cert), "--tls-key", str(key), memory=True)
    assert gw.tls, gw.log
    return gw


def secure_channel(gw, cert_pem, override: str | None = None):
    credentials = grpc.ssl_channel_credentials(root_certificates=cert_pem)
    options = [("grpc.ssl_target_name_override", override)] if override else []
    return grpc.secure_channel(gw.target, credentials, options=options)


@pytest.mark.parametrize("override", [None, "localhost"])
def test_tls_calls(protos, tls_gateway, certificate, override):
    pb = protos.pb
    with secure_channel(tls_gateway, certificate[0], override) as channel:
        stub = protos.rpc.ContextServicesStub(channel)
        answer = stub.StartService(pb.StartServiceRequest(customer_id="over-tls"), timeout=T)
        assert answer.service_id == 1
        assert answer.location == "/genesys/1/cs/services/1"
        task = stub.StartTask(pb.StartTaskRequest(service_id=1, extensions_json='{"big":12345678901234567890}'), timeout=T)
        assert task.task_id == 1
        queried = stub.QueryTask(pb.QueryTaskRequest(service_id=1, task_id=1), timeout=T).task
        assert queried.extensions_json == '{"big":12345678901234567890}'
        health = protos.health_rpc.HealthStub(channel).Check(protos.health.HealthCheckRequest(), timeout=T)
        assert health.status == protos.health.HealthCheckResponse.SERVING


def test_plaintext_client_against_tls_fails_cleanly(protos, tls_gateway, certificate):
    pb = protos.pb
    with tls_gateway.channel() as plain:
        began = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            protos.rpc.ContextServicesStub(plain).StartService(pb.StartServiceRequest(), timeout=3)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value
        assert time.monotonic() - began < 3
    # The gateway is unharmed: TLS clients still get through.
    with secure_channel(tls_gateway, certificate[0]) as channel:
        answer = protos.rpc.ContextServicesStub(channel).StartService(pb.StartServiceRequest(), timeout=T)
        assert answer.service_id >= 1
    assert tls_gateway.proc.poll() is None


def test_wrong_root_is_refused(protos, tls_gateway):
    # A client that does not trust the certificate gets UNAVAILABLE, not a call.
    other = grpc.ssl_channel_credentials()  # the system's roots: no self-signed certificate there
    with grpc.secure_channel(tls_gateway.target, other) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            protos.rpc.ContextServicesStub(channel).StartService(protos.pb.StartServiceRequest(), timeout=3)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("alpn", ["--http1.1", "--http2"])
def test_rest_and_health_over_tls_with_either_alpn(tls_gateway, certificate, alpn):
    """ALPN offers h2 and http/1.1 (issue 6): REST clients get the same port over either."""
    import json
    import subprocess

    _, cert, _ = certificate
    base = f"https://127.0.0.1:{tls_gateway.port}"
    out = subprocess.run(["curl", "-sS", "-i", alpn, "--cacert", str(cert), "--max-time", str(T), "-X", "POST",
                          f"{base}/genesys/1/cs/services/start", "-H", "content-type: application/json", "-d", "{}"],
                         capture_output=True, timeout=T + 5)
    assert out.returncode == 0, out.stderr.decode()
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n")[0].decode()
    assert status_line.startswith("HTTP/2 201" if alpn == "--http2" else "HTTP/1.1 201"), status_line
    assert "service_id" in json.loads(body)
    health = subprocess.run(["curl", "-sS", alpn, "--cacert", str(cert), "--max-time", str(T), f"{base}/healthz"],
                            capture_output=True, timeout=T + 5)
    assert json.loads(health.stdout) == {"status": "SERVING"}
