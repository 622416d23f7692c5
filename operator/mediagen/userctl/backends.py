"""Where generations are created and read: the Kubernetes API (a kubeconfig, :mod:`.kube_backend`) or the
HTTP gateway (a token, :class:`GatewayBackend`).

Both are blocking and small; the commands only see :class:`Backend`. The Kubernetes client is imported only
when it is used (it takes a second to import).
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from mediagen.userctl.errors import BackendError, UsageError
from mediagen.userctl.snapshot import Snapshot, from_gateway


class Backend(Protocol):
    """Create, read and list generations."""

    where: str
    """Where they live, for messages: ``namespace default`` or ``the gateway at URL``."""
    follow_flags: str
    """The command-line flags that reach the same place again (``-n team-a``, ``--gateway URL``)."""

    def create(self, spec: dict[str, Any], name: str | None) -> Snapshot:
        """Create one; ``name`` None lets the server pick one."""
        ...

    def get(self, name: str) -> Snapshot:
        """Read one."""
        ...

    def list(self) -> list[Snapshot]:
        """Every generation here, oldest first."""
        ...


class GatewayBackend:
    """Generations of the token's tenant, through the HTTP gateway."""

    def __init__(self, url: str, token: str | None, client: httpx.Client | None = None) -> None:
        if not token:
            raise UsageError("--gateway needs an API token: --token or MEDIAGEN_TOKEN")
        self._client = client or httpx.Client(base_url=url.rstrip("/"), timeout=30)
        self._client.headers["Authorization"] = f"Bearer {token}"
        self.where = f"the gateway at {url}"
        self.follow_flags = f" --gateway {url}"

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise BackendError(f"cannot reach {self.where}: {err}") from err
        if response.is_success:
            body: dict[str, Any] = response.json()
            return body
        raise BackendError(f"{self.where} answered HTTP {response.status_code}: {_problem(response)}")

    def create(self, spec: dict[str, Any], name: str | None) -> Snapshot:
        """``POST /generate``."""
        return from_gateway(self._request("POST", "/generate", json={**spec, **({"name": name} if name else {})}))

    def get(self, name: str) -> Snapshot:
        """``GET /status/{id}``."""
        return from_gateway(self._request("GET", f"/status/{name}"))

    def list(self) -> list[Snapshot]:
        """``GET /generations``, every page."""
        found: list[Snapshot] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = self._request("GET", "/generations", params=params)
            found.extend(from_gateway(item) for item in page.get("items", []))
            if not page.get("continue"):
                break
            params["continue"] = page["continue"]
        return sorted(found, key=lambda s: (s.created is None, s.created, s.name))


def _problem(response: httpx.Response) -> str:
    """An ``application/problem+json`` answer as one line: its detail and the fields it names."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:300]
    detail = str(problem.get("detail") or problem.get("title") or "")
    errors = problem.get("errors") or []
    named = "; ".join(f"{e.get('field', '')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
    return named or detail
