"""`kubectl get mg` stays readable: a typical generation's line fits in 120 columns whether its URLs are public
(an R2 public bucket, or a custom domain) or presigned (~480 characters); the full URL is in `-o wide` and
`kubectl describe`. (`make dev`'s own public mode is checked by tests/e2e/test_dev.py.)

Real operators write the status (the mock generator, storing into moto), and the real kubectl prints it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.paths import EXAMPLES_DIR
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, fresh_namespace, operator_env, wait_until_watching

MAX_WIDTH = 120
# The shape of an R2 public bucket's r2.dev URL: the longest base URL a typical setup has.
R2_PUBLIC = "https://pub-0123456789abcdef0123456789abcdef.r2.dev"


@pytest.fixture(scope="module")
def public_operator(
    control_plane: ControlPlane, api: None, s3: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """A mock-mode operator whose URLs are public (``R2_PUBLIC_BASE_URL``); watches namespaces ``pub-*``."""
    log = tmp_path_factory.mktemp("operator") / "public-operator.log"
    env = operator_env(s3, MEDIAGEN_NAMESPACE="pub-*", REPLICATE_API_TOKEN="", R2_PUBLIC_BASE_URL=R2_PUBLIC)
    with OperatorProcess(control_plane.kubeconfig, env, log) as operator:
        operator.wait_for_log(STARTED)
        wait_until_watching(control_plane, "pub")
        yield operator


def _typical(plane: ControlPlane, namespace: str) -> str:
    """Apply the README's example and wait until it succeeded; its first output's URL."""
    plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR / "mock-image.yaml"))
    plane.kubectl("wait", "-n", namespace, "--for=condition=Succeeded", "mg/hello-mediagen", "--timeout=60s")
    return plane.kubectl("get", "mg", "-n", namespace, "hello-mediagen", "-o", "jsonpath={.status.url}").stdout


def _check(plane: ControlPlane, namespace: str, url: str) -> None:
    table = plane.kubectl("get", "mg", "-n", namespace).stdout.splitlines()
    assert len(table) == 2 and table[1].startswith("hello-mediagen "), table
    assert max(map(len, table)) <= MAX_WIDTH, "\n".join(table)
    assert plane.kubectl("get", "mg", "-n", namespace, "-o", "wide").stdout.splitlines()[1].endswith(url)
    assert url in plane.kubectl("describe", "mg", "-n", namespace, "hello-mediagen").stdout.replace("\n", "")


def test_presigned_urls(control_plane: ControlPlane, mock_namespace: str) -> None:
    url = _typical(control_plane, mock_namespace)
    assert "X-Amz-Signature=" in url and len(url) > 300
    _check(control_plane, mock_namespace, url)


def test_r2_public_urls(control_plane: ControlPlane, public_operator: OperatorProcess) -> None:
    namespace = fresh_namespace(control_plane, "pub")
    url = _typical(control_plane, namespace)
    assert url.startswith(f"{R2_PUBLIC}/{namespace}/hello-mediagen/") and "?" not in url
    _check(control_plane, namespace, url)
