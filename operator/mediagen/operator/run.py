"""Run the operator in this process (``mediagen operator``)."""

from __future__ import annotations

import logging

import kopf

from mediagen.settings import Settings


def run_operator(*, namespace: str | None = None, liveness: str | None = None, verbose: bool = False) -> int:
    """Run kopf with mediagen's handlers until SIGINT/SIGTERM. Standalone: one active replica."""
    import mediagen.operator.handlers  # noqa: F401  (registers the handlers)

    settings = Settings()
    namespace = namespace or settings.namespace
    log_format = kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=verbose, log_format=log_format)
    logging.getLogger().setLevel(logging.DEBUG if verbose else settings.log_level.upper())
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    kopf.run(
        standalone=True,
        clusterwide=namespace is None,
        namespaces=[namespace] if namespace else [],
        liveness_endpoint=liveness,
    )
    return 0
