"""The gateway's configuration: one typed object, read once from the environment (``MEDIAGEN_GATEWAY_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediagen.gateway import rbac

# Where Kubernetes mounts the pod's own namespace; the token Secret lives beside the gateway.
_POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _own_namespace() -> str:
    try:
        return _POD_NAMESPACE_FILE.read_text().strip() or rbac.DEFAULT_NAMESPACE
    except OSError:
        return rbac.DEFAULT_NAMESPACE


class GatewaySettings(BaseSettings):
    """Everything ``mediagen gateway`` can be configured with. Every duration is in seconds."""

    model_config = SettingsConfigDict(env_prefix="MEDIAGEN_GATEWAY_", env_file=".env", extra="ignore")

    host: str = Field(default="0.0.0.0", description="Address to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port; 0 picks a free one (and logs it).")
    kubeconfig: str | None = Field(
        default=None, description="kubeconfig to use; unset means in-cluster, then KUBECONFIG / ~/.kube/config."
    )
    namespace: str = Field(
        default_factory=_own_namespace,
        description="The gateway's own namespace, where the token Secret lives (default: the pod's namespace).",
    )
    token_secret: str = Field(
        default=rbac.TOKEN_SECRET, description="Name of the Secret holding the hashed API tokens."
    )
    token_cache_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How long the token Secret is cached. A revoked token stops working within this time.",
    )
    token_refresh_seconds: float = Field(
        default=1.0,
        gt=0,
        description="An unknown token id re-reads the Secret at most this often (so new tokens work at once "
        "while a flood of bad tokens costs the API server at most one read per interval).",
    )
    token_review: bool = Field(
        default=False,
        description="Also accept Kubernetes ServiceAccount tokens (checked with TokenReview); a ServiceAccount "
        "is a tenant of its own namespace. Needs the tokenreview ClusterRole.",
    )
    token_review_audiences: list[str] = Field(
        default_factory=list, description="Audiences a ServiceAccount token must carry (empty: the API server's)."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body accepted (413 above). The Kubernetes object must fit etcd's 1.5 MiB.",
    )
    kube_timeout_seconds: float = Field(default=15.0, gt=0, description="Timeout of one Kubernetes API call.")
    kube_workers: int = Field(
        default=16, ge=1, le=256, description="Kubernetes API calls in flight at once (the client is blocking)."
    )
    gallery_size: int = Field(
        default=24,
        ge=1,
        le=100,
        description="Generations shown in the gallery (each is read whole, and may hold 64 KiB of input).",
    )
    rate_limit_per_second: float = Field(
        default=20.0,
        ge=0,
        description="Requests a second each token (or ServiceAccount) may make, on average; 0 turns the limit off. "
        "Beyond it: 429 with Retry-After.",
    )
    rate_limit_burst: int = Field(
        default=100, ge=1, description="Requests a token may make at once before the per-second rate applies."
    )
    max_inflight_per_tenant: int = Field(
        default=100,
        ge=0,
        description="Generations a tenant may have in flight (not yet Succeeded, Failed or Canceled); POST /generate "
        "beyond it answers 429 with Retry-After. 0 turns the quota off.",
    )
    inflight_cache_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How often, at most, the gateway lists a tenant's namespace to count its generations in flight.",
    )
    quota_retry_after_seconds: int = Field(
        default=10, ge=1, le=3600, description="Retry-After sent when a tenant is at its in-flight quota."
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Mark the gallery's session cookie Secure; unset means 'when the request came over https'.",
    )
    log_level: str = Field(default="INFO", description="Python log level.")
    log_format: str = Field(default="json", description="json or text.")
