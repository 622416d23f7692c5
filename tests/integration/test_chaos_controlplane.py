"""The control-plane scenario of ``make chaos`` at a small scale, on a control plane of its own (the session's is
shared by other tests): etcd and kube-apiserver restarted under a working operator, which must finish the work
without being restarted itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mediagen_dev.chaos import controlplane
from mediagen_dev.chaos.chaos_stack import Stack, install_api
from mediagen_dev.chaos.controlplane import Fault
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate
from mediagen_dev.fault_proxy import FaultProxy
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import BUCKET


@pytest.fixture(scope="module")
def own_plane(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A second control plane, to restart at will (``control_plane`` is requested so the binaries are found)."""
    with ControlPlane(workdir=tmp_path_factory.mktemp("own-plane")) as plane:
        install_api(plane)
        yield plane


@pytest.fixture
def stack(
    own_plane: ControlPlane, s3: EmbeddedS3, s3_proxy: FaultProxy, fake_replicate: FakeReplicate, tmp_path: Path
) -> Iterator[Stack]:
    chaos = Stack(own_plane, s3, s3_proxy, fake_replicate, tmp_path, bucket=BUCKET)
    yield chaos
    chaos.stop_operators()


def test_an_etcd_crash_is_ridden_out_without_an_operator_restart(stack: Stack) -> None:
    params = controlplane.Params(
        batch=3, prediction_seconds=4.0, faults=(Fault("etcd", graceful=False, downtime=3.0),), timeout=40
    )
    outcome = controlplane.run(stack, params)
    assert outcome.survived, outcome.notes
    assert outcome.headline == {"apiserver_restarts_survived": 0, "etcd_restarts_survived": 1}
    assert outcome.details["operator_restarts"] == 0


def test_a_kube_apiserver_crash_is_ridden_out_without_an_operator_restart(stack: Stack) -> None:
    # Resources whose status write failed while the API server was down must not be left behind: their workers
    # wait it out (a worker that ended would never be restarted, as kopf resumes its watch without a relist).
    params = controlplane.Params(
        batch=3, prediction_seconds=4.0, faults=(Fault("apiserver", graceful=False, downtime=3.0),), timeout=30
    )
    outcome = controlplane.run(stack, params)
    assert outcome.survived, outcome.notes
    assert outcome.headline == {"apiserver_restarts_survived": 1, "etcd_restarts_survived": 0}
    assert outcome.details["operator_restarts"] == 0
