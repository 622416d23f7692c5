"""Integration tests run against a real etcd + kube-apiserver (see mediagen.controlplane), a real S3 server
(moto) and the fake Replicate over loopback HTTP, with the operator as its own process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mediagen.chaos.stack import Stack
from mediagen.controlplane import ControlPlane
from mediagen.storage.embedded import EmbeddedS3
from mediagen.testing.fake_replicate import FakeReplicate
from mediagen.testing.fault_proxy import FaultProxy
from mediagen.testing.pytest_controlplane import (
    control_plane,
    namespace,
    pytest_collection_finish,
    pytest_runtest_makereport,
)
from mediagen.testing.pytest_stack import (
    BUCKET,
    api,
    custom_api,
    fake_replicate,
    mock_namespace,
    mock_operator,
    rep_namespace,
    replicate_operator,
    s3,
    s3_proxy,
)

__all__ = [
    "api",
    "control_plane",
    "custom_api",
    "fake_replicate",
    "mock_namespace",
    "mock_operator",
    "namespace",
    "pytest_collection_finish",
    "pytest_runtest_makereport",
    "rep_namespace",
    "replicate_operator",
    "s3",
    "s3_proxy",
]

_HERE = Path(__file__).parent


@pytest.fixture
def stack(
    control_plane: ControlPlane,
    api: None,
    s3: EmbeddedS3,
    s3_proxy: FaultProxy,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> Iterator[Stack]:
    """The chaos scenarios' view of the session's parts; operators it starts are stopped afterwards."""
    chaos = Stack(control_plane, s3, s3_proxy, fake_replicate, tmp_path, bucket=BUCKET)
    yield chaos
    chaos.stop_operators()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``integration`` (deselect with ``-m 'not integration'``)."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
