"""The kustomize manifests (manifests/base, manifests/overlays/mock), built by the real kubectl's kustomize and
dry-run on the real API server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mediagen.controller.settings import Settings
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.helm import Helm, HelmError, find_helm, load_documents, to_yaml
from mediagen_dev.paths import REPO_ROOT

ROOT = REPO_ROOT
MANIFESTS = ROOT / "manifests"
NAMESPACE = "mediagen-system"
KUSTOMIZATIONS = {"base": MANIFESTS / "base", "mock": MANIFESTS / "overlays" / "mock"}


def kustomize(plane: ControlPlane, directory: Path) -> list[dict[str, Any]]:
    return load_documents(plane.kubectl("kustomize", str(directory)).stdout)


def find(objects: list[dict[str, Any]], kind: str, prefix: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(prefix)]
    assert len(matches) == 1, f"{kind} {prefix}*: {[m['metadata']['name'] for m in matches]}"
    return matches[0]


@pytest.fixture(scope="module")
def system_namespace(control_plane: ControlPlane) -> str:
    """mediagen-system, labelled like manifests/base/namespace.yaml (dry runs need the namespace to exist)."""
    namespace = yaml.safe_load((MANIFESTS / "base" / "namespace.yaml").read_text())
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(namespace))
    return NAMESPACE


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_api_server_accepts_every_object(
    control_plane: ControlPlane, api: None, system_namespace: str, kustomization: str
) -> None:
    objects = kustomize(control_plane, KUSTOMIZATIONS[kustomization])
    result = control_plane.kubectl(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts", "--field-manager=mediagen-manifests-test",
        "-f", "-", input=to_yaml(objects), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(objects), result.stdout
    # The namespace enforces the "restricted" Pod Security Standard; the server would warn about any pod template.
    assert "would violate PodSecurity" not in result.stderr, result.stderr


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_cluster_scoped_objects_have_no_namespace(control_plane: ControlPlane, kustomization: str) -> None:
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    for obj in kustomize(control_plane, KUSTOMIZATIONS[kustomization]):
        namespace = obj["metadata"].get("namespace")
        assert (namespace is None) == (obj["kind"] in cluster_scoped), f"{obj['kind']} {obj['metadata']['name']}"


def test_base_includes_the_gateways_generated_rbac(control_plane: ControlPlane) -> None:
    objects = kustomize(control_plane, KUSTOMIZATIONS["base"])
    rendered = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    for obj in load_documents((MANIFESTS / "base" / "gateway-rbac.yaml").read_text()):
        key = (obj["kind"], obj["metadata"]["name"])
        assert key in rendered, key
        assert rendered[key].get("rules") == obj.get("rules") and rendered[key].get("roleRef") == obj.get("roleRef")
    gateway = find(objects, "Deployment", "mediagen-gateway")["spec"]["template"]["spec"]
    assert gateway["serviceAccountName"] == "mediagen-gateway"


def test_base_operator_rbac_is_the_charts_cluster_wide_rbac(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        helm = Helm(find_helm(), tmp_path_factory.mktemp("helm-home"))
    except HelmError as exc:
        pytest.fail(str(exc), pytrace=False)
    chart = helm.template("mediagen", NAMESPACE, show_only=["templates/operator-rbac.yaml"])
    base = kustomize(control_plane, KUSTOMIZATIONS["base"])
    assert find(base, "ClusterRole", "mediagen-operator")["rules"] == find(chart, "ClusterRole", "mediagen")["rules"]
    binding = find(base, "ClusterRoleBinding", "mediagen-operator")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mediagen-operator", "namespace": NAMESPACE}]


def test_mock_overlay_is_self_contained(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = kustomize(control_plane, KUSTOMIZATIONS["mock"])
    config = find(objects, "ConfigMap", "mediagen-operator-")
    secret = find(objects, "Secret", "mediagen-r2-")
    store = find(objects, "Service", "mediagen-store")
    assert config["data"]["MOCK_REPLICATE"] == "true"
    assert (
        config["data"]["R2_ENDPOINT_URL"] == f"http://{store['metadata']['name']}:{store['spec']['ports'][0]['port']}"
    )
    operator = find(objects, "Deployment", "mediagen-operator")["spec"]["template"]["spec"]["containers"][0]
    assert operator["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in operator["env"] if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs["R2_ACCESS_KEY_ID"]["name"] == refs["R2_SECRET_ACCESS_KEY"]["name"] == secret["metadata"]["name"]
    assert refs["REPLICATE_API_TOKEN"]["optional"] is True  # no token: the mock generator
    for name, value in config["data"].items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.use_mock and settings.storage_endpoint == "http://mediagen-store:9000"
