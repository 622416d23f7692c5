"""The operator's settings: one typed object, loaded once from the environment (and a ``.env`` file, as the old
service did) by :func:`mediagen.controller.run.run_operator`. The gateway has its own
(:class:`mediagen.gateway.settings.GatewaySettings`); ``mediagen_dev dev`` reads this one to decide what to start.

Secrets are ``SecretStr``: their values never appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediagen.controller.election import Timing

DEFAULT_REPLICATE_BASE_URL = "https://api.replicate.com"
# Replicate echoes the webhook URL back on every read of a prediction; its query string is how a crashed
# operator finds a prediction it created but never recorded. Nothing has to listen at this URL: the .invalid
# TLD never resolves, so Replicate's delivery attempts fail fast and cost nothing.
DEFAULT_WEBHOOK_URL = "https://mediagen.invalid/replicate-webhook"


class Settings(BaseSettings):
    """Everything the operator can be configured with (environment variables; see the README's Configuration)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # --- Replicate -------------------------------------------------------------------------------------
    replicate_api_token: SecretStr | None = Field(
        default=None, description="Replicate API token. Without one the mock generator is used."
    )
    replicate_base_url: str = Field(
        default=DEFAULT_REPLICATE_BASE_URL, description="Replicate API base URL, without /v1."
    )
    mock_replicate: bool = Field(
        default=False, description="Force the mock generator (placeholder images) even with a token."
    )
    mock_latency_seconds: float = Field(
        default=0.0, ge=0, description="How long each mock prediction runs before it succeeds."
    )
    webhook_url: str = Field(
        default=DEFAULT_WEBHOOK_URL,
        alias="MEDIAGEN_WEBHOOK_URL",
        description="HTTPS URL sent as each prediction's webhook; carries the crash-recovery marker. With "
        "MEDIAGEN_WEBHOOK_PORT set it must be the public URL that reaches the operator's receiver.",
    )
    webhook_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        alias="MEDIAGEN_WEBHOOK_PORT",
        description="Receive Replicate's completion webhooks on this port (POST /replicate-webhook), so finished "
        "predictions are copied at once and polling becomes a sparse safety net; 0 receives none.",
    )
    webhook_bind_address: str = Field(
        default="0.0.0.0", alias="MEDIAGEN_WEBHOOK_BIND_ADDRESS", description="Address the receiver listens on."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        alias="MEDIAGEN_WEBHOOK_SECRET",
        description="The account's webhook signing secret (whsec_...); fetched from Replicate at start when unset.",
    )
    webhook_poll_initial_seconds: float = Field(
        default=15.0,
        gt=0,
        alias="MEDIAGEN_WEBHOOK_POLL_INITIAL_SECONDS",
        description="First poll delay while webhooks are received (polling only catches lost deliveries then).",
    )
    webhook_poll_max_seconds: float = Field(
        default=60.0,
        gt=0,
        alias="MEDIAGEN_WEBHOOK_POLL_MAX_SECONDS",
        description="Longest delay between polls while webhooks are received.",
    )

    # --- Storage (Cloudflare R2 or any S3-compatible server) -------------------------------------------
    r2_account_id: str | None = Field(default=None, description="Cloudflare account id (builds the endpoint).")
    r2_access_key_id: SecretStr | None = Field(default=None, description="R2 access key id.")
    r2_secret_access_key: SecretStr | None = Field(default=None, description="R2 secret access key.")
    r2_bucket: str = Field(default="mediagen", description="Bucket the outputs are stored in.")
    r2_public_base_url: str | None = Field(
        default=None, description="Public or custom-domain base URL; without it URLs are presigned."
    )
    r2_endpoint_url: str | None = Field(
        default=None, description="Any S3-compatible endpoint; overrides the one built from the account id."
    )
    r2_presign_ttl_seconds: int = Field(
        default=7 * 86400, ge=60, le=7 * 86400, description="Lifetime of presigned URLs (at most 7 days)."
    )

    # --- Output downloads ------------------------------------------------------------------------------
    output_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["replicate.delivery", "*.replicate.delivery"],
        alias="MEDIAGEN_OUTPUT_ALLOWED_HOSTS",
        description="Hosts outputs may be downloaded from (exact names or *.suffix).",
    )
    allow_insecure_outputs: bool = Field(
        default=False,
        alias="MEDIAGEN_ALLOW_INSECURE_OUTPUTS",
        description="Allow http:// outputs on loopback hosts. For tests and local development only.",
    )
    max_output_bytes: int = Field(
        default=5 * 1024**3, alias="MEDIAGEN_MAX_OUTPUT_BYTES", description="Largest output accepted."
    )

    # --- Limits ----------------------------------------------------------------------------------------
    max_inflight: int = Field(
        default=200, ge=1, alias="MEDIAGEN_MAX_INFLIGHT", description="Predictions running at once."
    )
    replicate_creates_per_minute: float = Field(
        default=600.0,
        gt=0,
        alias="MEDIAGEN_REPLICATE_CREATES_PER_MINUTE",
        description="The account's allowance of prediction creates a minute (Replicate: 600). The create pace "
        "starts at it and never exceeds it; bursts are used while Replicate accepts them, and a 429 slows it.",
    )
    replicate_requests_per_minute: float = Field(
        default=3000.0,
        gt=0,
        alias="MEDIAGEN_REPLICATE_REQUESTS_PER_MINUTE",
        description="The account's allowance of every other request a minute (Replicate: 3000), paced the same way.",
    )
    replicate_requests_per_second: float | None = Field(
        default=None,
        gt=0,
        alias="MEDIAGEN_REPLICATE_RPS",
        description="Optional ceiling on all Replicate API requests (creates included) in any one second, as "
        "Replicate counts them; requests are spaced for 10% below it. Unset: only the allowances bound them.",
    )
    replicate_creates_per_second: float | None = Field(
        default=None,
        gt=0,
        alias="MEDIAGEN_REPLICATE_CREATE_RPS",
        description="Optional ceiling on prediction creates in any one second; spaced for 10% below it. Unset: "
        "only the allowance bounds them.",
    )
    max_concurrent_transfers: int = Field(
        default=4, ge=1, alias="MEDIAGEN_MAX_TRANSFERS", description="Output copies running at once."
    )
    poll_initial_seconds: float = Field(
        default=1.0, gt=0, alias="MEDIAGEN_POLL_INITIAL_SECONDS", description="First poll delay."
    )
    poll_max_seconds: float = Field(
        default=15.0, gt=0, alias="MEDIAGEN_POLL_MAX_SECONDS", description="Longest delay between polls."
    )
    progress_interval_seconds: float = Field(
        default=5.0,
        ge=0.5,
        alias="MEDIAGEN_PROGRESS_INTERVAL_SECONDS",
        description="At most one progress status write per resource per this many seconds.",
    )
    delete_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        alias="MEDIAGEN_DELETE_TIMEOUT_SECONDS",
        description="How long deletion keeps trying to cancel the remote prediction before letting go.",
    )

    # --- Operator --------------------------------------------------------------------------------------
    kube_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        alias="MEDIAGEN_KUBE_TIMEOUT_SECONDS",
        description="How long the operator waits for each read of a Kubernetes API answer (a call gives up after "
        "the connect timeout plus twice this).",
    )
    kube_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, alias="MEDIAGEN_KUBE_CONNECT_TIMEOUT_SECONDS", description="Connecting to the API server."
    )
    namespace: str | None = Field(
        default=None, alias="MEDIAGEN_NAMESPACE", description="Watch one namespace; unset watches all."
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        alias="MEDIAGEN_METRICS_PORT",
        description="Serve Prometheus metrics on this port (all interfaces, path /metrics); 0 serves none.",
    )
    log_format: str = Field(default="json", alias="MEDIAGEN_LOG_FORMAT", description="json or text.")

    # --- Several replicas: leader election on a Lease (see mediagen.controller.election) ------------------
    leader_election: bool = Field(
        default=False,
        alias="MEDIAGEN_LEADER_ELECTION",
        description="Act only while holding the Lease MEDIAGEN_LEASE_NAME; replicas without it stand by.",
    )
    lease_name: str = Field(
        default="mediagen-operator",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        alias="MEDIAGEN_LEASE_NAME",
        description="Name of the coordination.k8s.io Lease the replicas elect their leader with.",
    )
    lease_namespace: str | None = Field(
        default=None,
        alias="MEDIAGEN_LEASE_NAMESPACE",
        description="Namespace of the Lease; unset: the watched namespace, else the pod's own, else default.",
    )
    lease_duration_seconds: int = Field(
        default=10,
        ge=2,
        le=3600,
        alias="MEDIAGEN_LEASE_DURATION_SECONDS",
        description="How long a standby waits, from the leader's last renewal it saw, before taking over.",
    )
    lease_renew_deadline_seconds: float = Field(
        default=7.0,
        gt=0,
        alias="MEDIAGEN_LEASE_RENEW_DEADLINE_SECONDS",
        description="A leader that could not renew for this long exits; less than the lease duration.",
    )
    lease_retry_period_seconds: float = Field(
        default=2.0,
        gt=0,
        alias="MEDIAGEN_LEASE_RETRY_PERIOD_SECONDS",
        description="Seconds between renewals and between a standby's looks at the Lease; less than the deadline.",
    )
    pod_name: str | None = Field(
        default=None, alias="POD_NAME", description="This pod's name (downward API): the Lease holder's identity."
    )
    log_level: str = Field(default="INFO", alias="MEDIAGEN_LOG_LEVEL", description="Python log level.")

    @field_validator("replicate_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _lease_timing(self) -> Settings:
        self.lease_timing()  # raises a ValueError that names the variables, which pydantic reports
        return self

    def lease_timing(self) -> Timing:
        """The leader election's timing; a combination that cannot be safe raises a ValueError naming it."""
        try:
            return Timing(
                lease_duration=self.lease_duration_seconds,
                renew_deadline=self.lease_renew_deadline_seconds,
                retry_period=self.lease_retry_period_seconds,
            )
        except ValueError as err:
            raise ValueError(
                "MEDIAGEN_LEASE_DURATION_SECONDS > MEDIAGEN_LEASE_RENEW_DEADLINE_SECONDS > "
                f"MEDIAGEN_LEASE_RETRY_PERIOD_SECONDS is needed: {err}"
            ) from None

    @cached_property
    def use_mock(self) -> bool:
        """True when predictions are rendered locally instead of on Replicate."""
        token = self.replicate_api_token.get_secret_value() if self.replicate_api_token else ""
        return self.mock_replicate or not token

    @cached_property
    def storage_endpoint(self) -> str | None:
        """The S3 endpoint to use, or None when no storage is configured (then an embedded one is started)."""
        if self.r2_endpoint_url:
            return self.r2_endpoint_url
        if self.r2_account_id:
            return f"https://{self.r2_account_id}.r2.cloudflarestorage.com"
        return None
