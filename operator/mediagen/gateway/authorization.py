"""Who may do what with MediaGenerations, for every Kubernetes identity the gateway serves: ServiceAccount tokens in
standalone mode and whoever kube-apiserver authenticated in aggregated mode. One SubjectAccessReview-backed check,
so the cluster's RBAC on ``mediagenerations`` governs kubectl and the gateway alike.

Decisions are cached for ``ttl`` seconds per (identity, verb, namespace, name), allowed and denied alike: a caller
repeating a request costs the API server one review per ``ttl``, and a revoked RoleBinding takes effect within it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from mediagen.api.types import GROUP, PLURAL
from mediagen.gateway.cluster import AccessRequest, Cluster, Decision

_CACHE_SIZE = 4096


class AccessDenied(Exception):
    """The identity may not do this: 403, with the message Kubernetes itself would give."""

    def __init__(self, request: AccessRequest, reason: str = "") -> None:
        target = f'resource "{PLURAL}" in API group "{GROUP}"'
        where = f' in the namespace "{request.namespace}"' if request.namespace else ""
        named = f' "{request.name}"' if request.name else ""
        message = f'{PLURAL}.{GROUP}{named} is forbidden: User "{request.user.username}" cannot {request.verb} {target}'
        self.message = message + where + (f": {reason}" if reason else "")
        super().__init__(self.message)
        self.request = request


class Authorizer:
    """SubjectAccessReviews on ``mediagenerations``, cached; see the module docstring."""

    def __init__(self, cluster: Cluster, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._cluster = cluster
        self._ttl = ttl
        self._clock = clock
        self._decisions: OrderedDict[AccessRequest, tuple[float, Decision]] = OrderedDict()
        self.reviews = 0
        """SubjectAccessReviews sent (for tests and metrics)."""

    async def decide(self, request: AccessRequest) -> Decision:
        """Whether ``request`` is allowed; ClusterError propagates when the API server cannot say."""
        now = self._clock()
        cached = self._decisions.get(request)
        if cached is not None and cached[0] > now:
            return cached[1]
        self.reviews += 1
        decision = await self._cluster.review_access(request)
        self._decisions[request] = (now + self._ttl, decision)
        self._decisions.move_to_end(request)
        while len(self._decisions) > _CACHE_SIZE:
            self._decisions.popitem(last=False)
        return decision

    async def require(self, request: AccessRequest) -> None:
        """Return if ``request`` is allowed; raise :class:`AccessDenied` otherwise."""
        decision = await self.decide(request)
        if not decision.allowed:
            raise AccessDenied(request, decision.reason)
