"""Integration tests run against a real etcd + kube-apiserver (see mediagen.controlplane), a real S3 server
(moto) and the fake Replicate over loopback HTTP, with the operator as its own process."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediagen.testing.pytest_controlplane import (
    control_plane,
    namespace,
    pytest_collection_finish,
    pytest_runtest_makereport,
)
from mediagen.testing.pytest_stack import (
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``integration`` (deselect with ``-m 'not integration'``)."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
