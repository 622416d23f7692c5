"""The aggregated API's group: ``gateway.mediagen.fleek.xyz/v1alpha1``, served by the gateway behind kube-apiserver.

A group of its own, next to the CRD's ``mediagen.fleek.xyz``: an APIService for the CRD's group would compete with
the one kube-apiserver registers for the CRD itself. ``gateway.`` says what serves it (the same prefix as the
gateway's annotations), and the domain says whose it is.
"""

from __future__ import annotations

from typing import Final

API_GROUP: Final = "gateway.mediagen.fleek.xyz"
API_VERSION: Final = "v1alpha1"
GROUP_VERSION: Final = f"{API_GROUP}/{API_VERSION}"
PREFIX: Final = f"/apis/{GROUP_VERSION}"
APISERVICE_NAME: Final = f"{API_VERSION}.{API_GROUP}"
KIND: Final = "Generation"
LIST_KIND: Final = "GenerationList"


def is_aggregated_path(path: str) -> bool:
    """Whether ``path`` belongs to the aggregated API (errors there are Kubernetes ``Status`` objects)."""
    return path == "/apis" or path.startswith(("/apis/", "/openapi/"))
