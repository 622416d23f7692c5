"""Integration tests run against a real etcd + kube-apiserver (see mediagen_dev.controlplane), a real S3 server
(moto) and the fake Replicate over loopback HTTP, with the operator as its own process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mediagen_dev.chaos.chaos_stack import Stack
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate
from mediagen_dev.fault_proxy import FaultProxy
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.checks_fixtures import checks, checks_collection_finish
from tests.support.controlplane_fixtures import (
    control_plane,
    namespace,
    pytest_runtest_makereport,
)
from tests.support.controlplane_fixtures import pytest_collection_finish as controlplane_collection_finish
from tests.support.stack_fixtures import (
    BUCKET,
    api,
    crash_operator,
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
    "checks",
    "control_plane",
    "crash_operator",
    "custom_api",
    "fake_replicate",
    "mock_namespace",
    "mock_operator",
    "namespace",
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """Find (or build) the binaries the selected tests need before the first one runs (minutes the first time)."""
    controlplane_collection_finish(session)
    checks_collection_finish(session)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``integration`` (deselect with ``-m 'not integration'``)."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
