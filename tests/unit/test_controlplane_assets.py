"""Finding the control plane binaries, the test PKI, kubeconfigs, and start-up failures (no real servers)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mediagen_dev.controlplane import ETCD_VERSION, K8S_VERSION, ControlPlane, ControlPlaneError, find_assets
from mediagen_dev.controlplane.assets import BINARIES, BUILD_SCRIPT, cached_assets_dir
from mediagen_dev.controlplane.certs import CertificateAuthority, admin_client_cert, service_account_signing_key
from mediagen_dev.controlplane.kubeconfig import write_kubeconfig
from tests.support.controlplane_fixtures import unique_namespace_name


def _fake_assets(folder: Path, script: str = "#!/bin/sh\nexit 0\n", skip: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in BINARIES:
        if name != skip:
            path = folder / name
            path.write_text(script)
            path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MEDIAGEN_CACHE", str(cache))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    return cache


def test_kubebuilder_assets_is_honoured_first(
    tmp_path: Path, empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_assets(cached_assets_dir())
    assets = _fake_assets(tmp_path / "envtest")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    assert find_assets() == assets.resolve()


def test_incomplete_kubebuilder_assets_names_the_missing_binary(
    tmp_path: Path, empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(_fake_assets(tmp_path / "envtest", skip="kubectl")))
    with pytest.raises(ControlPlaneError, match="kubectl"):
        find_assets()


def test_cached_binaries_are_used_without_building(empty_cache: Path) -> None:
    assets = _fake_assets(cached_assets_dir())
    assert assets.is_relative_to(empty_cache)
    assert find_assets(build=False) == assets


def test_no_binaries_and_no_build_explains_the_fix(empty_cache: Path) -> None:
    with pytest.raises(ControlPlaneError, match="KUBEBUILDER_ASSETS"):
        find_assets(build=False)


def test_missing_go_toolchain_names_go_and_kubebuilder_assets(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    monkeypatch.setenv("PATH", os.pathsep.join(d for d in dirs if d and not (Path(d) / "go").exists()))
    with pytest.raises(ControlPlaneError) as caught:
        find_assets()
    message = str(caught.value)
    assert "Go" in message
    assert "KUBEBUILDER_ASSETS" in message
    assert "go >= 1.26" in message  # the build script's own output is carried along
    assert not cached_assets_dir().exists()


def test_versions_match_the_build_script() -> None:
    script = BUILD_SCRIPT.read_text()
    assert re.search(rf"^K8S_VERSION={re.escape(K8S_VERSION)}$", script, re.MULTILINE)
    assert re.search(rf"^ETCD_VERSION={re.escape(ETCD_VERSION)}$", script, re.MULTILINE)


def test_admin_client_certificate_is_a_system_masters_client_of_the_ca() -> None:
    ca = CertificateAuthority.create()
    admin = admin_client_cert(ca)
    cert = admin.certificate

    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca.certificate)
    key = serialization.load_pem_private_key(admin.key_pem, password=None)
    assert key.public_key() == cert.public_key()


def test_service_account_signing_key_halves_match() -> None:
    signer = service_account_signing_key()
    private = serialization.load_pem_private_key(signer.private_pem, password=None)
    assert private.public_key() == serialization.load_pem_public_key(signer.public_pem)


def test_kubeconfig_embeds_credentials_verifies_tls_and_is_private(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "kc", server="https://127.0.0.1:6443", ca_pem=b"CA", user="sa", token="t", namespace="ns"
    )
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert cluster["certificate-authority-data"] == "Q0E="
    assert "insecure-skip-tls-verify" not in cluster
    assert config["users"][0]["user"] == {"token": "t"}
    assert config["contexts"][0]["context"]["namespace"] == "ns"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_server_that_dies_at_startup_fails_fast_with_its_log(tmp_path: Path) -> None:
    assets = _fake_assets(tmp_path / "assets", script="#!/bin/sh\necho 'fatal: disk on fire' >&2\nexit 7\n")
    plane = ControlPlane(assets=assets)
    with pytest.raises(ControlPlaneError, match="disk on fire") as caught:
        plane.start(timeout=10)
    assert "etcd exited with status 7" in str(caught.value)
    assert not plane.running
    assert not plane.workdir.exists()


@pytest.mark.parametrize("label", ["test_x[a-B]", "Ünïcode / spaces", "-" * 100, ""])
def test_unique_namespace_names_are_valid_dns_labels(label: str) -> None:
    name = unique_namespace_name(label)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert len(name) <= 63
    assert unique_namespace_name(label) != name
