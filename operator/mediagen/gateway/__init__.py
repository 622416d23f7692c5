"""The HTTP gateway: MediaGenerations for clients that don't speak Kubernetes.

``POST /generate``, ``GET /status/{id}``, ``GET /generations``, cancel, ``GET /health-check``, probes,
``/metrics``, OpenAPI at ``/docs`` and a gallery at ``/``. Run it with ``mediagen gateway``. With
``aggregated_port`` the same application also serves the aggregated API (``gateway.mediagen.fleek.xyz``) to
kube-apiserver over mutual TLS, for every identity the cluster authenticates.

Modules: :mod:`.app` (``create_app``), :mod:`.settings`, :mod:`.deps`, :mod:`.routes`, :mod:`.auth`,
:mod:`.tokens` and :mod:`.sessions` (who is calling), :mod:`.authorization` (SubjectAccessReviews),
:mod:`.front_proxy`, :mod:`.tls` and :mod:`.apigroup` (the aggregated API), :mod:`.schemas` (bodies),
:mod:`.resources` (body <-> MediaGeneration), :mod:`.service` (what is done), :mod:`.cluster` (the Kubernetes
interface) with :mod:`.kube_cluster` (the real one; tests have one in memory), :mod:`.throttling` (per-token rates,
per-tenant quotas), :mod:`.problems` and :mod:`.kube_status` (errors), :mod:`.pages` (HTML), :mod:`.rbac`,
:mod:`.server`.
"""

from __future__ import annotations

from mediagen.gateway.app import create_app
from mediagen.gateway.deps import GatewayDeps, build_deps
from mediagen.gateway.settings import GatewaySettings

__all__ = ["GatewayDeps", "GatewaySettings", "build_deps", "create_app"]
