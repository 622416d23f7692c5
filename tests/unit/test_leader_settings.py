"""Leader election's settings: what a replica reads from its environment, and the clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mediagen.controller.election import Timing
from mediagen.controller.run import lease_namespace
from mediagen.controller.settings import Settings
from mediagen.controller.standby import Endpoint, liveness_endpoint


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_defaults_are_client_gos_shape_made_quicker(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(monkeypatch)
    assert loaded.leader_election is False and loaded.lease_name == "mediagen-operator"
    assert loaded.lease_timing() == Timing(lease_duration=10, renew_deadline=7, retry_period=2)


def test_the_environment_sets_every_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(
        monkeypatch,
        MEDIAGEN_LEADER_ELECTION="true",
        MEDIAGEN_LEASE_NAME="my-release-operator",
        MEDIAGEN_LEASE_NAMESPACE="ops",
        MEDIAGEN_LEASE_DURATION_SECONDS="15",
        MEDIAGEN_LEASE_RENEW_DEADLINE_SECONDS="10",
        MEDIAGEN_LEASE_RETRY_PERIOD_SECONDS="2.5",
        POD_NAME="my-release-operator-7d9f-abcde",
    )
    assert loaded.leader_election and loaded.lease_name == "my-release-operator" and loaded.lease_namespace == "ops"
    assert loaded.lease_timing() == Timing(lease_duration=15, renew_deadline=10, retry_period=2.5)
    assert loaded.pod_name == "my-release-operator-7d9f-abcde"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        (
            {"MEDIAGEN_LEASE_RENEW_DEADLINE_SECONDS": "10"},
            "the lease duration (10 s) must be longer than the renew deadline (10 s)",
        ),
        (
            {"MEDIAGEN_LEASE_RETRY_PERIOD_SECONDS": "8"},
            "the renew deadline (7 s) must be longer than the retry period (8 s)",
        ),
        ({"MEDIAGEN_LEASE_DURATION_SECONDS": "1"}, "MEDIAGEN_LEASE_DURATION_SECONDS"),
        ({"MEDIAGEN_LEASE_DURATION_SECONDS": "9.5"}, "MEDIAGEN_LEASE_DURATION_SECONDS"),
        ({"MEDIAGEN_LEASE_RETRY_PERIOD_SECONDS": "0"}, "MEDIAGEN_LEASE_RETRY_PERIOD_SECONDS"),
        ({"MEDIAGEN_LEASE_NAME": "Not_A_Name"}, "MEDIAGEN_LEASE_NAME"),
        ({"MEDIAGEN_LEADER_ELECTION": "perhaps"}, "MEDIAGEN_LEADER_ELECTION"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(monkeypatch, **env)
    assert words in str(caught.value)
    if "must be longer" in words:
        assert "MEDIAGEN_LEASE_DURATION_SECONDS > MEDIAGEN_LEASE_RENEW_DEADLINE_SECONDS" in str(caught.value)


def test_the_lease_lives_where_configured_else_beside_the_watched_namespace_else_in_the_pods(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pod_namespace = tmp_path / "namespace"
    pod_namespace.write_text("mediagen-system\n")
    missing = tmp_path / "none"
    assert lease_namespace(settings(monkeypatch, MEDIAGEN_LEASE_NAMESPACE="ops"), "team-a", pod_namespace) == "ops"
    monkeypatch.delenv("MEDIAGEN_LEASE_NAMESPACE")
    plain = settings(monkeypatch)
    assert lease_namespace(plain, "team-a", pod_namespace) == "team-a"
    assert lease_namespace(plain, "team-*", pod_namespace) == "mediagen-system"  # a pattern names no one namespace
    assert lease_namespace(plain, None, pod_namespace) == "mediagen-system"
    assert lease_namespace(plain, None, missing) == "default"  # outside a cluster


def test_the_standby_listens_where_the_liveness_url_says() -> None:
    assert liveness_endpoint("http://0.0.0.0:8080/healthz") == Endpoint("0.0.0.0", 8080, "/healthz")
    assert liveness_endpoint("http://127.0.0.1:9") == Endpoint("127.0.0.1", 9, "/")
    for bad in ("https://0.0.0.0:8080/healthz", "http://0.0.0.0/healthz", "0.0.0.0:8080", ""):
        with pytest.raises(ValueError, match="liveness URL must look like http://HOST:PORT/PATH"):
            liveness_endpoint(bad)
