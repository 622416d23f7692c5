"""Run the gateway in this process with uvicorn (``mediagen gateway``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket

import uvicorn

from mediagen.gateway.app import create_app
from mediagen.gateway.deps import build_deps
from mediagen.gateway.kube_cluster import KubernetesCluster
from mediagen.gateway.settings import GatewaySettings
from mediagen.kube.client import load_api_client

log = logging.getLogger("mediagen.gateway")

LISTENING = "mediagen gateway listening on"
"""The start-up log line, followed by the URL (tests and scripts wait for it)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON: time, level, logger, message (and the exception, if any)."""
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: GatewaySettings) -> None:
    """Root logging as configured; the chatty libraries at WARNING."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: GatewaySettings) -> int:
    """Serve until SIGINT/SIGTERM."""
    configure_logging(settings)
    cluster = KubernetesCluster(
        load_api_client(settings.kubeconfig), timeout=settings.kube_timeout_seconds, workers=settings.kube_workers
    )
    app = create_app(build_deps(settings, cluster))
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(app, log_config=None, server_header=False, timeout_graceful_shutdown=10)
    log.info(
        "%s http://%s:%d (tokens: secret %s/%s, cached %.0f s; ServiceAccount tokens: %s)",
        LISTENING,
        shown,
        port,
        settings.namespace,
        settings.token_secret,
        settings.token_cache_seconds,
        "accepted" if settings.token_review else "not accepted",
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        cluster.close()
        sock.close()
    return 0
