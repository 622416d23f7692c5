"""The aggregated API's TLS listener: serving certificate, and the proxy's client certificate handed to the app.

uvicorn does not pass the peer's certificate to the application, so the listener uses a protocol class of its own:
once a connection is made, its verified client certificate (if any) is put into each request's scope as ASGI's TLS
extension (``scope["extensions"]["tls"]["client_cert_chain"]``, https://asgi.readthedocs.io/en/latest/extensions.html).
The chain is verified by Python's ``ssl`` against the request-header CA only (``CERT_OPTIONAL``: a client without a
certificate gets through the handshake and a 401 from the app; one with a certificate of another CA fails it).
The plain-HTTP listener never sets the extension, so the aggregated routes cannot be reached through it.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol


def server_context(cert_file: str, key_file: str, client_ca_pem: str) -> ssl.SSLContext:
    """TLS for the aggregated API: our serving certificate; client certificates checked against the request-header
    CA when presented."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=client_ca_pem)
    return context


class ClientCertificateProtocol(H11Protocol):
    """uvicorn's h11 protocol, with the peer's verified certificate in every request's scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
        self.app = _with_tls_extension(self.app, chain)


def _with_tls_extension(app: ASGIApp, chain: list[str]) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            tls: dict[str, Any] = {"client_cert_chain": chain, "client_cert_name": None, "client_cert_error": None}
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": tls}}
        await app(scope, receive, send)

    return wrapped
