"""Who is calling through kube-apiserver's aggregation layer (the aggregated API, see :mod:`.routes.aggregated`).

kube-apiserver authenticates the caller, then proxies the request over mutual TLS with its proxy client certificate
and names the caller in headers (``X-Remote-User``, ``X-Remote-Group``, ``X-Remote-Extra-<key>``,
``X-Remote-Uid``). Those headers are trusted only on a connection whose client certificate was issued by the
request-header CA and carries one of the allowed names, exactly as kube-apiserver publishes them in
``kube-system/extension-apiserver-authentication``: anyone else who reaches the gateway could write them. The TLS
layer (:mod:`.tls`) verifies the chain; here the name is checked and the headers are read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID

from mediagen.gateway.cluster import UserInfo

log = logging.getLogger(__name__)

AUTHENTICATION_CONFIGMAP = "extension-apiserver-authentication"
AUTHENTICATION_NAMESPACE = "kube-system"


class Unauthenticated(Exception):
    """The request did not come from kube-apiserver's proxy, or named nobody: 401."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RequestHeaderAuthentication:
    """How kube-apiserver names the caller to aggregated APIs; from :func:`parse_authentication_configmap`."""

    client_ca_pem: str
    allowed_names: tuple[str, ...]
    """Common names the proxy's certificate may carry; empty: any certificate of the CA."""
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)
    uid_headers: tuple[str, ...] = ()

    def authenticate(self, scope: Mapping[str, Any], headers: Iterable[tuple[bytes, bytes]]) -> UserInfo:
        """The caller of an ASGI request, or :class:`Unauthenticated`."""
        chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain") or []
        if not chain:
            raise Unauthenticated("the aggregated API answers kube-apiserver only (no proxy client certificate)")
        names = _common_names(str(chain[0]))
        if self.allowed_names and not set(names) & set(self.allowed_names):
            log.warning("refused a client certificate for %s: not among %s", names, self.allowed_names)
            raise Unauthenticated("the client certificate is not kube-apiserver's proxy certificate")
        values = _header_values(headers)
        username = _first(values, self.username_headers)
        if not username:
            raise Unauthenticated("kube-apiserver named no user")
        extra: dict[str, list[str]] = {}
        for name, found in values.items():
            for prefix in self.extra_prefixes:
                if name.startswith(prefix.lower()):
                    extra.setdefault(unquote(name[len(prefix) :]), []).extend(found)
        return UserInfo(
            username=username,
            uid=_first(values, self.uid_headers),
            groups=tuple(group for header in self.group_headers for group in values.get(header.lower(), [])),
            extra=tuple(sorted((key, tuple(found)) for key, found in extra.items())),
        )


def parse_authentication_configmap(data: Mapping[str, str]) -> RequestHeaderAuthentication:
    """The request-header settings kube-apiserver publishes in ``extension-apiserver-authentication``.

    Raises ValueError when the aggregation layer is not configured (no request-header CA)."""
    ca = data.get("requestheader-client-ca-file") or ""
    if "BEGIN CERTIFICATE" not in ca:
        raise ValueError(
            f"{AUTHENTICATION_NAMESPACE}/{AUTHENTICATION_CONFIGMAP} has no requestheader-client-ca-file: "
            "kube-apiserver runs without --requestheader-client-ca-file (the aggregation layer is off)"
        )

    def names(key: str, default: Sequence[str]) -> tuple[str, ...]:
        raw = data.get(key)
        return tuple(str(item) for item in json.loads(raw)) if raw else tuple(default)

    return RequestHeaderAuthentication(
        client_ca_pem=ca,
        allowed_names=names("requestheader-allowed-names", ()),
        username_headers=names("requestheader-username-headers", ("X-Remote-User",)),
        group_headers=names("requestheader-group-headers", ("X-Remote-Group",)),
        extra_prefixes=names("requestheader-extra-headers-prefix", ("X-Remote-Extra-",)),
        uid_headers=names("requestheader-uid-headers", ()),
    )


def _common_names(pem: str) -> list[str]:
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return []
    return [str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _header_values(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return values


def _first(values: Mapping[str, list[str]], headers: Sequence[str]) -> str:
    return next((value for header in headers for value in values.get(header.lower(), []) if value), "")
