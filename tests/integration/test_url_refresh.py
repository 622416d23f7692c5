"""A real operator signs presigned URLs again before they expire: one status write, fresh URLs that work.

The lifetime is the shortest the settings allow (60 s), so the re-sign is due 45 s after the generation
succeeded (a quarter of the lifetime before expiry); the API server's audit log counts the writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client as k8s

from mediagen_dev.bench import audit
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.paths import EXAMPLES_DIR
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, fresh_namespace, operator_env, wait_for, wait_until_watching

LIFETIME = 60


@pytest.fixture(scope="module")
def short_lived_operator(
    control_plane: ControlPlane, api: None, s3: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """A mock-mode operator signing URLs for 60 s; watches namespaces ``sign-*``."""
    log = tmp_path_factory.mktemp("operator") / "short-lived-urls.log"
    env = operator_env(s3, MEDIAGEN_NAMESPACE="sign-*", REPLICATE_API_TOKEN="", R2_PRESIGN_TTL_SECONDS=str(LIFETIME))
    with OperatorProcess(control_plane.kubeconfig, env, log) as operator:
        operator.wait_for_log(STARTED)
        wait_until_watching(control_plane, "sign")
        yield operator


def _expiry(body: dict[str, object]) -> dt.datetime:
    status = body["status"]
    assert isinstance(status, dict)
    return dt.datetime.fromisoformat(str(status["urlExpiresAt"]).replace("Z", "+00:00"))


@pytest.mark.timeout(240)
def test_urls_are_signed_again_before_they_expire(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, short_lived_operator: OperatorProcess
) -> None:
    namespace = fresh_namespace(control_plane, "sign")
    control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "mock-image.yaml"))
    first = wait_for(custom_api, namespace, "hello-mediagen", lambda b: (b.get("status") or {}).get("urlExpiresAt"))
    writes_before = len(audit.writes(control_plane, namespace))

    second = wait_for(
        custom_api,
        namespace,
        "hello-mediagen",
        lambda b: b["status"]["urlExpiresAt"] != first["status"]["urlExpiresAt"],
        timeout=LIFETIME * 2,
    )
    assert second["status"]["phase"] == "Succeeded"
    assert second["status"]["url"] == second["status"]["outputs"][0]["url"] != first["status"]["url"]
    moved = (_expiry(second) - _expiry(first)).total_seconds()
    assert LIFETIME * 0.75 - 2 <= moved <= LIFETIME, moved  # re-signed a quarter of the lifetime early, not before
    refreshed = audit.writes(control_plane, namespace)[writes_before:]
    assert [w.kind for w in refreshed] == ["patch status"], refreshed  # one write, nothing else
    assert httpx.get(second["status"]["url"], trust_env=False).status_code == 200
