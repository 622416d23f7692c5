"""HTTP to the Kubernetes API on the event loop (aiohttp), for :class:`mediagen.kube.client.KubeClient`.

The official client's loaders still read the configuration (:func:`load_configuration`): a kubeconfig with client
certificates, tokens or exec plugins, or the in-cluster ServiceAccount. This module turns what they found into TLS
settings and an ``Authorization`` header, and makes the calls itself: no thread per call, no thread hop per answer,
the body parsed once. A token that rotates (the projected ServiceAccount token the kubelet rewrites, an exec
plugin's expiring one) is asked of the loader's refresh hook again every :data:`AUTH_REFRESH_SECONDS` and after
every 401; the hook re-reads the file (or runs the plugin) in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import aiohttp
from kubernetes import client as k8s
from kubernetes import config as k8s_config

__all__ = [
    "AUTH_REFRESH_SECONDS",
    "JSON",
    "AiohttpTransport",
    "Answer",
    "Transport",
    "TransportError",
    "load_configuration",
    "ssl_context",
]

AUTH_REFRESH_SECONDS = 30.0
"""How often the credentials are asked for again. The in-cluster loader re-reads the token file once a minute at
most; the kubelet rotates a projected token at 80% of its lifetime (an hour or more), the old one staying valid."""
JSON = "application/json"


def load_configuration(kubeconfig: str | None = None) -> k8s.Configuration:
    """The API server and credentials from a kubeconfig file, the in-cluster ServiceAccount, or ~/.kube/config."""
    configuration = k8s.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


def ssl_context(configuration: k8s.Configuration) -> ssl.SSLContext | None:
    """TLS as the configuration says: its CA (else the system's), its client certificate, verification on unless
    the kubeconfig says ``insecure-skip-tls-verify``. None for a plain-http server."""
    if not str(configuration.host).startswith("https:"):
        return None
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif configuration.assert_hostname is False:
        context.check_hostname = False
    return context


class TransportError(Exception):
    """The server could not be reached or did not answer in time; the message says which."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status, reason phrase and whole body."""

    status: int
    body: bytes
    reason: str = ""


class Transport(Protocol):
    """One HTTP request to the API server, answered in full (or :class:`TransportError`)."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: bytes | None = None,
        content_type: str = JSON,
        accept: str = JSON,
        connect_timeout: float,
        read_timeout: float,
    ) -> Answer:
        """Send ``method path?query`` with ``body`` and read the whole answer (``accept``: the media type asked
        for, e.g. a metadata-only list)."""
        ...

    def stream_lines(
        self,
        path: str,
        *,
        query: Mapping[str, str | int],
        connect_timeout: float,
        read_timeout: float,
    ) -> AsyncIterator[Answer]:
        """GET ``path?query`` and yield its body line by line as it comes (a watch), each as an :class:`Answer`
        of the response's status; an error status yields one answer with the whole body and ends."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


class AiohttpTransport:
    """:class:`Transport` on an aiohttp session of its own, opened in the first call's event loop.

    ``connections`` caps the calls in flight at once (more wait for a connection)."""

    def __init__(
        self,
        configuration: k8s.Configuration,
        *,
        connections: int = 32,
        user_agent: str = "mediagen",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configuration = configuration
        self.base_url = str(configuration.host).rstrip("/")
        self._ssl = ssl_context(configuration)
        self._server_name: str | None = getattr(configuration, "tls_server_name", None) or None
        self._proxy: str | None = configuration.proxy or None
        self._connections = connections
        self._user_agent = user_agent
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._auth: str | None = None
        self._auth_until = float("-inf")
        self._auth_refresh: asyncio.Future[str | None] | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: bytes | None = None,
        content_type: str = JSON,
        accept: str = JSON,
        connect_timeout: float,
        read_timeout: float,
    ) -> Answer:
        session = self._session_for_this_loop()
        headers = await self._headers(accept)
        if body is not None:
            headers["Content-Type"] = content_type
        url = f"{self.base_url}{path}?{urlencode(query)}" if query else f"{self.base_url}{path}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        try:
            async with session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=timeout,
                ssl=self._ssl if self._ssl is not None else True,
                server_hostname=self._server_name,
                proxy=self._proxy,
            ) as response:
                data = await response.read()
        except TimeoutError:
            raise TransportError(f"the Kubernetes API did not answer within {read_timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as err:
            raise TransportError(f"the Kubernetes API is unreachable: {type(err).__name__}") from None
        self._note(response.status)
        return Answer(status=response.status, body=data, reason=response.reason or "")

    async def stream_lines(
        self,
        path: str,
        *,
        query: Mapping[str, str | int],
        connect_timeout: float,
        read_timeout: float,
    ) -> AsyncIterator[Answer]:
        session = self._session_for_this_loop()
        headers = await self._headers()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        try:
            async with session.get(
                f"{self.base_url}{path}?{urlencode(query)}",
                headers=headers,
                timeout=timeout,
                ssl=self._ssl if self._ssl is not None else True,
                server_hostname=self._server_name,
                proxy=self._proxy,
            ) as response:
                self._note(response.status)
                reason = response.reason or ""
                if response.status >= 400:
                    yield Answer(status=response.status, body=await response.read(), reason=reason)
                    return
                # Lines split here, not by aiohttp's readline: that refuses lines over 64 KiB, and an object
                # (its status, its managedFields) can be larger.
                pending = b""
                async for chunk in response.content.iter_any():
                    pending += chunk
                    if b"\n" not in chunk:
                        continue
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield Answer(status=response.status, body=line, reason=reason)
                if pending.strip():
                    yield Answer(status=response.status, body=pending, reason=reason)
        except TimeoutError:
            raise TransportError(f"the Kubernetes API sent nothing for {read_timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as err:
            raise TransportError(f"the Kubernetes API is unreachable: {type(err).__name__}") from None

    async def _headers(self, accept: str = JSON) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": self._user_agent}
        authorization = await self._authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    def _note(self, status: int) -> None:
        if status == 401:
            self._auth_until = float("-inf")  # a rotated token: ask for the current one before the next call

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            # A session belongs to the loop it was made in; a client outliving its loop (tests) starts afresh.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300),
                auto_decompress=True,
                trust_env=False,
            )
            self._loop = loop
        return self._session

    async def _authorization(self) -> str | None:
        if self._clock() < self._auth_until:
            return self._auth
        if self._auth_refresh is None or self._auth_refresh.get_loop() is not asyncio.get_running_loop():
            # One refresh for every caller that needs it; the loader's hook may read a file or run a plugin.
            self._auth_refresh = asyncio.ensure_future(asyncio.to_thread(authorization_header, self.configuration))
        refresh = self._auth_refresh
        try:
            header = await asyncio.shield(refresh)
        except (k8s_config.ConfigException, OSError, ValueError) as err:
            # The type only: the loader's message may quote the credentials it could not use.
            raise TransportError(f"the Kubernetes credentials could not be loaded: {type(err).__name__}") from None
        finally:
            if refresh.done() and self._auth_refresh is refresh:
                self._auth_refresh = None
        self._auth, self._auth_until = header, self._clock() + AUTH_REFRESH_SECONDS
        return header


def authorization_header(configuration: k8s.Configuration) -> str | None:
    """The ``Authorization`` header the configuration's credentials give now (its refresh hook runs first)."""
    bearer = configuration.auth_settings().get("BearerToken")
    if bearer and bearer.get("value"):
        return str(bearer["value"])
    if configuration.username or configuration.password:
        return str(configuration.get_basic_auth_token())
    return None
