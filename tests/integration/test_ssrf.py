"""The SSRF guard over real sockets and through the operator: a name is resolved once and the connection pinned to
the checked address while TLS still verifies the name; slow drips and oversized bodies end with a clear reason;
and the operator refuses outputs on hosts off the allow-list, on private addresses or behind a redirect elsewhere,
without ever sending the Replicate token to an output host."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s

from mediagen.transfer import Downloader, TransferError
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate, ModelScript, OutputFile
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, create, fresh_namespace, model_name, replicate_env, wait_phase

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 256


class Handler(http.server.BaseHTTPRequestHandler):
    """``/a.png`` serves a PNG, ``/drip`` a body of a few bytes a second, ``/redirect`` points off the allow-list."""

    seen: list[tuple[str, str | None]] = []  # noqa: RUF012 - shared on purpose: the test reads what the server saw

    def do_GET(self) -> None:
        Handler.seen.append((self.path, self.headers.get("Host")))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "https://evil.example/steal.png")
            self.end_headers()
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"x" * 10)
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _certificates(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``name`` only (not for 127.0.0.1)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssrf test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def _serve(server: http.server.ThreadingHTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An https server on 127.0.0.1 whose certificate names only ``media.test``."""
    ca, cert, key = _certificates(tmp_path, "media.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    Handler.seen.clear()
    for port in _serve(server):
        yield port, ca


@pytest.fixture
def plain_server() -> Iterator[int]:
    """An http server on 127.0.0.1."""
    Handler.seen.clear()
    yield from _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))


def to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def test_a_name_is_pinned_to_its_checked_address_and_tls_still_verifies_the_name(
    tls_server: tuple[int, Path],
) -> None:
    port, ca = tls_server
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca))) as client:
        downloader = Downloader(
            client, allowed_hosts=["media.test", "other.test"], allow_insecure_loopback=True, resolver=to_loopback
        )
        with downloader.open(f"https://media.test:{port}/a.png") as download:
            assert b"".join(download.chunks) == PNG
        assert Handler.seen == [("/a.png", f"media.test:{port}")]
        # The same address under a name its certificate does not cover: the pinned connection still checks it.
        with pytest.raises(TransferError) as info, downloader.open(f"https://other.test:{port}/a.png"):
            pass
        assert info.value.reason == "DownloadFailed" and "network error" in str(info.value)


def test_outside_tests_a_name_resolving_to_loopback_is_never_contacted(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    downloader = Downloader(httpx.Client(), allowed_hosts=["media.test"], resolver=to_loopback)
    with pytest.raises(TransferError) as info, downloader.open(f"https://media.test:{port}/a.png"):
        pass
    assert (info.value.reason, info.value.transient) == ("OutputURLRejected", False)
    assert "resolves to a private, loopback or link-local address (127.0.0.1)" in str(info.value)
    assert not Handler.seen


def test_a_slow_drip_over_a_real_socket_ends_with_download_too_slow(plain_server: int) -> None:
    downloader = Downloader(
        httpx.Client(), allow_insecure_loopback=True, min_bytes_per_second=1000, rate_window_seconds=1.0
    )
    began = time.monotonic()
    with pytest.raises(TransferError) as info, downloader.open(f"http://127.0.0.1:{plain_server}/drip") as download:
        for _ in download.chunks:
            pass
    assert (info.value.reason, info.value.transient) == ("DownloadTooSlow", True)
    assert time.monotonic() - began < 3.0  # not the 4 s the drip would take, let alone a stall timeout


# -- through the operator -----------------------------------------------------------------------------------


def test_the_operator_refuses_outputs_off_the_allow_list_private_or_redirected_elsewhere(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    plain_server: int,
) -> None:
    cases = {
        "off-list": ("https://attacker.example/steal.png", "host is not on the allow-list"),
        "metadata": ("http://169.254.169.254/latest/meta-data/", "only https is allowed"),
        "private": ("https://10.0.0.8/out.png", "private, loopback or link-local address"),
        "redirect": (f"http://127.0.0.1:{plain_server}/redirect", "evil.example/steal.png rejected"),
    }
    files_before = len(fake_replicate.requests_to("file"))
    for name, (url, _) in cases.items():
        model = model_name()
        fake_replicate.add_model(
            model, ModelScript(queue_seconds=0.1, processing_seconds=0.1, output="raw", raw_output=url)
        )
        create(control_plane, rep_namespace, name, {"model": model, "input": {"prompt": name}})
    ok_model = model_name()
    fake_replicate.add_model(ok_model, ModelScript(queue_seconds=0.1, processing_seconds=0.1))
    create(control_plane, rep_namespace, "fine", {"model": ok_model, "input": {"prompt": "fine"}})
    for name, (_, why) in cases.items():
        status = wait_phase(custom_api, rep_namespace, name, "Succeeded", "Failed", timeout=30)["status"]
        assert (status["phase"], status["reason"], status.get("retries", 0)) == ("Failed", "OutputURLRejected", 0)
        assert why in status["message"], status["message"]
    assert wait_phase(custom_api, rep_namespace, "fine", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"
    downloads = fake_replicate.requests_to("file")[files_before:]
    assert downloads and not any("authorization" in r.headers for r in downloads)
    assert [path for path, _ in Handler.seen] == ["/redirect"]  # the redirect target was never requested


def test_the_operator_refuses_an_oversized_output(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    api: None,
    s3: EmbeddedS3,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    namespace = fresh_namespace(control_plane, "ssrf")
    env = replicate_env(s3, fake_replicate, namespace, MEDIAGEN_MAX_OUTPUT_BYTES="4096")
    model = model_name()
    big = OutputFile("clip.mp4", "video/mp4", size=64 * 1024)
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.1, output="url", files=(big,)))
    with OperatorProcess(control_plane.kubeconfig, env, tmp_path / "operator.log") as operator:
        operator.wait_for_log(STARTED)
        create(control_plane, namespace, "huge", {"model": model, "input": {"prompt": "huge"}})
        status = wait_phase(custom_api, namespace, "huge", "Succeeded", "Failed", timeout=30)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "OutputTooLarge"), status
    assert "larger than the limit of 4096 bytes" in status["message"]


def test_addresses_in_the_operator_defaults_are_public_only() -> None:
    # The defaults a real deployment gets: replicate.delivery only, no loopback, no token to output hosts.
    policy = Downloader(httpx.Client()).policy
    assert policy.allowed_hosts == ("replicate.delivery", "*.replicate.delivery")
    assert (policy.allow_insecure_loopback, policy.token_hosts) == (False, ())
    assert not ipaddress.ip_address("169.254.169.254").is_global
