"""The gateway's RBAC: the committed manifest is generated from mediagen.gateway.rbac, and it grants only
what the gateway uses."""

from __future__ import annotations

import pytest
import yaml

from mediagen.cli import main
from mediagen.gateway import rbac
from mediagen_dev.paths import MANIFESTS_DIR

MANIFEST = MANIFESTS_DIR / "base" / "gateway-rbac.yaml"


def test_the_committed_manifest_is_the_generated_one() -> None:
    assert MANIFEST.read_text() == rbac.manifests_yaml(), (
        "run: mediagen gateway rbac > manifests/base/gateway-rbac.yaml"
    )


def test_the_manifest_grants_exactly_gateway_rules() -> None:
    documents = list(yaml.safe_load_all(MANIFEST.read_text()))
    granted = [rule for doc in documents if doc["kind"] in ("Role", "ClusterRole") for rule in doc["rules"]]
    assert granted == [dict(rule) for rule in rbac.GATEWAY_RULES]
    bound = {(d["roleRef"]["kind"], d["roleRef"]["name"]) for d in documents if d["kind"].endswith("Binding")}
    roles = {(d["kind"], d["metadata"]["name"]) for d in documents if d["kind"] in ("Role", "ClusterRole")}
    assert bound == roles
    for doc in documents:
        for subject in doc.get("subjects", []):
            assert subject == {
                "kind": "ServiceAccount",
                "name": rbac.SERVICE_ACCOUNT,
                "namespace": rbac.DEFAULT_NAMESPACE,
            }


def test_least_privilege() -> None:
    for rule in rbac.GATEWAY_RULES:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert not {"delete", "deletecollection", "update", "watch", "escalate", "bind", "impersonate"} & set(
            rule["verbs"]
        )
        assert not any(r.endswith("/status") for r in rule["resources"])  # status is the operator's
    (secrets,) = [r for r in rbac.GATEWAY_RULES if "secrets" in r["resources"]]
    assert secrets["verbs"] == ["get"] and secrets["resourceNames"] == [rbac.TOKEN_SECRET]


def test_the_cli_prints_the_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "rbac"]) == 0
    assert capsys.readouterr().out == MANIFEST.read_text()
    assert main(["gateway", "rbac", "--namespace", "gw"]) == 0
    assert "namespace: gw\n" in capsys.readouterr().out
