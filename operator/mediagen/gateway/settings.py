"""The gateway's configuration: one typed object, read once from the environment (``MEDIAGEN_GATEWAY_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
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
        description="Also accept Kubernetes ServiceAccount tokens (checked with TokenReview): a ServiceAccount is "
        "a tenant of its own namespace when its token carries one of token_review_audiences, the namespace is in "
        "token_review_namespaces and RBAC lets it create mediagenerations there (SubjectAccessReview). Needs the "
        "tokenreview ClusterRole.",
    )
    token_review_audiences: list[str] = Field(
        default_factory=list,
        description="Audiences a ServiceAccount token must carry (`kubectl create token SA --audience A`, or a "
        "projected token volume); required with token_review, so a pod's automounted token is not enough.",
    )
    token_review_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose ServiceAccounts may be tenants; required with token_review. '*' allows "
        "every namespace (RBAC alone decides).",
    )
    token_reviews_per_second: float = Field(
        default=1.0,
        gt=0,
        description="TokenReviews a client address may cause a second, on average (a known token is answered from "
        "the cache and does not count); beyond it, 429.",
    )
    token_reviews_burst: int = Field(default=20, ge=1, description="TokenReviews a client address may cause at once.")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body accepted (413 above). The Kubernetes object must fit etcd's 1.5 MiB.",
    )
    kube_timeout_seconds: float = Field(default=15.0, gt=0, description="Timeout of one Kubernetes API call.")
    kube_workers: int = Field(
        default=16, ge=1, le=256, description="Kubernetes API calls in flight at once (one connection each)."
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
    cookie_secure: bool = Field(
        default=True,
        description="Mark the gallery's session cookie Secure (browsers keep Secure cookies from http://localhost "
        "too). Turn off only to serve the gallery over plain HTTP on another host.",
    )
    session_key: SecretStr | None = Field(
        default=None,
        description="Key that signs the gallery's session cookies; replicas must share it. Unset: a random key "
        "per process (sessions end when it restarts).",
    )
    session_seconds: int = Field(default=3600, ge=60, le=86400, description="How long a gallery sign-in lasts.")
    aggregated_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Also serve the aggregated API (behind kube-apiserver, over mutual TLS) on this port; 0 picks a "
        "free one. Unset: standalone only.",
    )
    aggregated_host: str = Field(default="0.0.0.0", description="Address the aggregated API listens on.")
    tls_cert_file: str | None = Field(
        default=None, description="The aggregated API's serving certificate (PEM; the APIService's caBundle signs it)."
    )
    tls_key_file: str | None = Field(default=None, description="Its private key (PEM).")
    log_level: str = Field(default="INFO", description="Python log level.")
    log_format: str = Field(default="json", description="json or text.")

    @model_validator(mode="after")
    def _service_accounts_need_audiences_and_namespaces(self) -> GatewaySettings:
        if self.token_review and not self.token_review_audiences:
            raise ValueError('token_review needs token_review_audiences (e.g. ["mediagen-gateway"])')
        if self.token_review and not self.token_review_namespaces:
            raise ValueError('token_review needs token_review_namespaces (the allowed namespaces, or ["*"])')
        return self
