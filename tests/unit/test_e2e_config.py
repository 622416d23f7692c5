"""The e2e scenarios' configuration from MEDIAGEN_E2E_* (what hack/e2e.sh and hack/kind-e2e.sh set)."""

from __future__ import annotations

import pytest

from tests.e2e.cluster import E2EConfig


def test_without_a_kubeconfig_there_is_no_cluster() -> None:
    assert E2EConfig.from_env({}) is None
    assert E2EConfig.from_env({"MEDIAGEN_E2E_KUBECONFIG": ""}) is None


def test_values_are_read_and_defaulted() -> None:
    config = E2EConfig.from_env(
        {
            "MEDIAGEN_E2E_KUBECONFIG": "/tmp/kc",
            "MEDIAGEN_E2E_IMAGE": "mediagen:e2e",
            "MEDIAGEN_E2E_SCALE": "full",
            "MEDIAGEN_E2E_IMAGE_SIZE_BYTES": "625004032",
        }
    )
    assert config is not None
    assert (config.kubeconfig, config.kubectl, config.helm) == ("/tmp/kc", "kubectl", "helm")
    assert (config.image_repository, config.image_tag) == ("mediagen", "e2e")
    assert config.scale == "full"
    assert config.platform == "local-node"
    assert config.image_size_bytes == 625004032


def test_an_unknown_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="smoke or full"):
        E2EConfig.from_env({"MEDIAGEN_E2E_KUBECONFIG": "/tmp/kc", "MEDIAGEN_E2E_SCALE": "huge"})
