"""pytest fixtures for tests against a real local control plane (etcd + kube-apiserver).

Wire them into a conftest.py by importing them (``pytest_plugins`` is only honoured in the root
conftest)::

    from tests.support.controlplane_fixtures import (
        control_plane,
        namespace,
        pytest_collection_finish,
        pytest_runtest_makereport,
    )

``pytest_collection_finish`` finds (or builds) the binaries before the first test runs: a first
build takes minutes and needs Go >= 1.26 unless ``KUBEBUILDER_ASSETS`` is set, and done there it
counts against no test's timeout. ``pytest_runtest_makereport`` attaches the servers' log tails
to the report of every failed test that used ``control_plane`` (or any other fixture holding a
``ControlPlane``), as a "control plane logs" section.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from mediagen_dev.controlplane import ControlPlane, ControlPlaneError, find_assets

_LOG_LINES = 60


_ASSETS = pytest.StashKey[Path | ControlPlaneError]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Find (or build) the binaries once collection is done, if any selected test needs them.

    A first build takes minutes; done here, it counts against no test's timeout. A failure is
    kept and reported by the ``control_plane`` fixture, so tests that don't need it still run.
    """
    if any("control_plane" in getattr(item, "fixturenames", ()) for item in session.items):
        try:
            session.config.stash[_ASSETS] = find_assets()
        except ControlPlaneError as exc:
            session.config.stash[_ASSETS] = exc


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[ControlPlane]:
    """One running control plane for the whole test session; stopped (and its temp dir removed) at the end.

    Its admin kubeconfig is ``control_plane.kubeconfig``; for a non-admin identity use
    ``control_plane.service_account_kubeconfig(namespace, name)``.
    """
    assets = pytestconfig.stash.get(_ASSETS, None)
    if isinstance(assets, ControlPlaneError):
        pytest.fail(f"could not start the local control plane: {assets}", pytrace=False)
    plane = ControlPlane(assets=assets, audit=True)
    try:
        plane.start()
    except ControlPlaneError as exc:
        pytest.fail(f"could not start the local control plane: {exc}", pytrace=False)
    print(f"\ncontrol plane ready in {plane.start_seconds:.1f} s at {plane.server} (workdir {plane.workdir})")
    try:
        yield plane
    finally:
        plane.stop()


def unique_namespace_name(label: str) -> str:
    """Return a fresh, valid namespace name derived from ``label`` (e.g. a test's name).

    Namespaces never finish deleting without a namespace controller, so each test gets its own.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40].strip("-") or "test"
    return f"{slug}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> str:
    """A new namespace, unique to this test, created in the session's control plane.

    It is not deleted afterwards: with no namespace controller it would only sit in Terminating.
    """
    name = unique_namespace_name(request.node.name)
    control_plane.create_namespace(name)
    return name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the log tails of every control plane a failed test used (as a fixture) to its report."""
    report = yield
    if report.failed:
        for fixture, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, ControlPlane):
                report.sections.append((f"control plane logs ({fixture})", value.logs_tail(_LOG_LINES)))
    return report
