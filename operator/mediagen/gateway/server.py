"""Run the gateway in this process with uvicorn (``mediagen gateway``).

One application, one or two listeners: plain HTTP for the standalone API, and with ``aggregated_port`` a TLS
listener for the aggregated API, which kube-apiserver reaches with its proxy client certificate (:mod:`.tls`).
The request-header settings are read once at start from ``kube-system/extension-apiserver-authentication``
(a rotated front-proxy CA is picked up on restart).
"""

from __future__ import annotations

import asyncio
import ctypes
import datetime as dt
import json
import logging
import socket
import ssl

import uvicorn
from fastapi import FastAPI

from mediagen.gateway import tls
from mediagen.gateway.app import create_app
from mediagen.gateway.deps import build_deps
from mediagen.gateway.front_proxy import (
    AUTHENTICATION_CONFIGMAP,
    AUTHENTICATION_NAMESPACE,
    RequestHeaderAuthentication,
    parse_authentication_configmap,
)
from mediagen.gateway.kube_cluster import KubernetesCluster
from mediagen.gateway.settings import GatewaySettings
from mediagen.kube.client import load_api_client

log = logging.getLogger("mediagen.gateway")

LISTENING = "mediagen gateway listening on"
"""The start-up log line, followed by the URL (tests and scripts wait for it)."""
AGGREGATED_LISTENING = "mediagen gateway serving the aggregated API on"
"""The start-up log line of the aggregated API's listener, followed by its URL."""


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
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on connections of a socket that says it is TCP, and
    # without it every answer waited ~40 ms (uvicorn writes headers and body apart; Nagle meets delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(scheme: str, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024


def keep_large_buffers_out_of_the_heap() -> bool:
    """Make glibc serve every allocation of 128 KiB or more with its own mapping, given back when freed.

    By default glibc raises that threshold each time such a block is freed (up to 32 MiB), after which the
    multi-megabyte buffers of a listing (the API server's answer, the JSON the gateway sends) come from the heap
    and its per-thread arenas, which keep them: among 2,000 maximum-size generations the gateway's RSS grew by
    ~30 MiB that was never used again. Setting the threshold once turns the adjustment off, as
    ``MALLOC_MMAP_THRESHOLD_`` would. Returns False where there is no glibc."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


def serve(settings: GatewaySettings) -> int:
    """Serve until SIGINT/SIGTERM."""
    keep_large_buffers_out_of_the_heap()
    configure_logging(settings)
    cluster = KubernetesCluster(
        load_api_client(settings.kubeconfig), timeout=settings.kube_timeout_seconds, workers=settings.kube_workers
    )
    asyncio.run(_serve_then_close(settings, cluster))
    return 0


async def _serve_then_close(settings: GatewaySettings, cluster: KubernetesCluster) -> None:
    try:
        await _serve(settings, cluster)
    finally:
        await cluster.aclose()  # its connections belong to this event loop


async def _serve(settings: GatewaySettings, cluster: KubernetesCluster) -> None:
    front_proxy: RequestHeaderAuthentication | None = None
    if settings.aggregated_port is not None:
        data = await cluster.read_configmap(AUTHENTICATION_NAMESPACE, AUTHENTICATION_CONFIGMAP)
        front_proxy = parse_authentication_configmap(data)
    app = create_app(build_deps(settings, cluster, front_proxy=front_proxy))
    sock = bind(settings.host, settings.port)
    listeners = [(uvicorn.Server(_config(app)), sock)]
    log.info(
        "%s %s (tokens: secret %s/%s, cached %.0f s; ServiceAccount tokens: %s)",
        LISTENING,
        _url("http", sock),
        settings.namespace,
        settings.token_secret,
        settings.token_cache_seconds,
        "accepted" if settings.token_review else "not accepted",
    )
    if front_proxy is not None and settings.aggregated_port is not None:
        assert settings.tls_cert_file and settings.tls_key_file  # the settings' validator says so
        context = tls.server_context(settings.tls_cert_file, settings.tls_key_file, front_proxy.client_ca_pem)
        tls_sock = bind(settings.aggregated_host, settings.aggregated_port)
        listeners.append((uvicorn.Server(_config(app, context)), tls_sock))
        log.info(
            "%s %s (proxy certificate names: %s)",
            AGGREGATED_LISTENING,
            _url("https", tls_sock),
            ", ".join(front_proxy.allowed_names) or "any of the request-header CA",
        )
    try:
        # Each server handles SIGINT/SIGTERM; the one that saw the signal re-raises it to the other on its way out.
        await asyncio.gather(*(server.serve(sockets=[s]) for server, s in listeners))
    finally:
        for _, s in listeners:
            s.close()


def _config(app: FastAPI, context: ssl.SSLContext | None = None) -> uvicorn.Config:
    if context is None:
        return uvicorn.Config(app, log_config=None, server_header=False, timeout_graceful_shutdown=10)
    return uvicorn.Config(
        app,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
        http=tls.ClientCertificateProtocol,
        ssl_context_factory=lambda _config, _default: context,
    )
