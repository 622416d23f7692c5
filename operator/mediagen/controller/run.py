"""Run the operator in this process (``mediagen operator``)."""

from __future__ import annotations

import logging
import random

import kopf

from mediagen.controller.metrics import Metrics
from mediagen.controller.settings import Settings
from mediagen.logging_setup import configure_logging

PEERING_GROUP = "kopf.dev"
PEERING_VERSION = "v1"
_PATTERN_CHARS = frozenset("*?[],!")


def is_namespace_pattern(namespace: str) -> bool:
    """True for a kopf namespace pattern (glob, list, negation), False for one exact namespace name."""
    return any(char in _PATTERN_CHARS for char in namespace)


def ensure_peering_object(name: str, namespace: str | None, kubeconfig: str | None = None) -> None:
    """Create kopf's peering object ``name`` unless it exists: a ClusterKopfPeering, or a KopfPeering in ``namespace``.

    kopf never creates it, and with a mandatory peering an operator whose object is missing stays paused forever.
    Raises a RuntimeError that names the fix when the peering CRDs are not installed.
    """
    from kubernetes import client as k8s

    from mediagen.kube.client import load_api_client

    kind, plural = ("KopfPeering", "kopfpeerings") if namespace else ("ClusterKopfPeering", "clusterkopfpeerings")
    body = {"apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}", "kind": kind, "metadata": {"name": name}}
    try:
        with load_api_client(kubeconfig) as api_client:
            api = k8s.CustomObjectsApi(api_client)
            if namespace:
                api.create_namespaced_custom_object(PEERING_GROUP, PEERING_VERSION, namespace, plural, body)
            else:
                api.create_cluster_custom_object(PEERING_GROUP, PEERING_VERSION, plural, body)
    except k8s.ApiException as exc:
        if exc.status == 409:
            return  # another replica (or an earlier start) created it
        if exc.status == 404:
            raise RuntimeError(
                f"the {plural}.{PEERING_GROUP} CRD is not installed; install kopf's peering CRDs "
                "(Helm: peering.enabled=true) or run without --peering"
            ) from None
        raise RuntimeError(f"cannot create the {kind} {name!r}: HTTP {exc.status} {exc.reason}") from None


def run_operator(
    *,
    namespace: str | None = None,
    liveness: str | None = None,
    verbose: bool = False,
    peering: str | None = None,
    priority: int | None = None,
) -> int:
    """Run kopf with mediagen's handlers until SIGINT/SIGTERM.

    Without ``peering``: standalone, for exactly one replica. With ``peering``: kopf peering in the named
    ClusterKopfPeering (or KopfPeering in ``namespace``); the live peer with the highest priority works, the
    others pause. Peers with equal priorities all pause, so each process takes a random one unless given.
    """
    import mediagen.controller.kopf_handlers  # noqa: F401  (registers the handlers)

    settings = Settings()
    namespace = namespace or settings.namespace
    configure_logging(
        log_format=settings.log_format,
        level=settings.log_level,
        verbose=verbose,
        secrets=[
            secret.get_secret_value() if secret else None
            for secret in (settings.replicate_api_token, settings.r2_secret_access_key, settings.webhook_secret)
        ],
    )
    # One registry for the whole process: the HTTP endpoint serves it, the handlers' startup wires it in.
    metrics = Metrics(process_metrics=True)
    if settings.metrics_port:
        port = metrics.serve(settings.metrics_port)
        logging.getLogger(__name__).info("serving Prometheus metrics on port %d at /metrics", port)
    kopf_settings = kopf.OperatorSettings()
    # One exact namespace: kopf need not list namespaces nor watch CRDs (both cluster-wide), so a Role in that
    # namespace is all the operator needs. (Denied, kopf would retry each for about a minute before starting.)
    kopf_settings.scanning.disabled = namespace is not None and not is_namespace_pattern(namespace)
    if peering:
        if namespace and is_namespace_pattern(namespace):
            raise SystemExit("--peering needs one namespace or all of them, not a namespace pattern")
        ensure_peering_object(peering, namespace)
        priority = priority if priority is not None else random.randint(1, 2**31 - 1)
        logging.getLogger(__name__).info("peering in %r with priority %d", peering, priority)
    kopf.run(
        settings=kopf_settings,
        standalone=not peering,
        peering_name=peering or None,
        priority=priority if peering else None,
        clusterwide=namespace is None,
        namespaces=[namespace] if namespace else [],
        liveness_endpoint=liveness,
        memo=kopf.Memo(metrics=metrics, settings=settings),
    )
    return 0
