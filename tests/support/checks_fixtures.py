"""pytest fixtures for the real judges of GitOps health and alerts: kstatus, Argo CD's health code, promtool.

``checks_collection_finish`` finds (or builds) them once collection is done if a selected test needs them: a
first build takes minutes and, done there, counts against no test's timeout (call it from the conftest's
``pytest_collection_finish``).
"""

from __future__ import annotations

import pytest

from mediagen_dev.checks import Checks, ChecksError, find_checks

_CHECKS = pytest.StashKey[Checks | ChecksError]()


def checks_collection_finish(session: pytest.Session) -> None:
    """Find (or build) the tools if any selected test uses the ``checks`` fixture; a failure is kept for it."""
    if any("checks" in getattr(item, "fixturenames", ()) for item in session.items):
        try:
            session.config.stash[_CHECKS] = Checks(find_checks())
        except ChecksError as exc:
            session.config.stash[_CHECKS] = exc


@pytest.fixture(scope="session")
def checks(pytestconfig: pytest.Config) -> Checks:
    """kstatus, argocd-health and promtool, built from hack/tools/checks."""
    found = pytestconfig.stash.get(_CHECKS, None)
    if found is None:
        try:
            found = Checks(find_checks())
        except ChecksError as exc:
            found = exc
    if isinstance(found, ChecksError):
        pytest.fail(f"kstatus, argocd-health and promtool are not available: {found}", pytrace=False)
    return found
