"""Minting, listing and revoking API tokens: writes to the token Secret, with an administrator's credentials.

The gateway itself can only read that Secret. Writes are JSON merge patches of single keys, so two
administrators minting at once cannot overwrite each other's tokens.
"""

from __future__ import annotations

import base64
import logging

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from mediagen.gateway import rbac
from mediagen.gateway.tokens import TokenFormatError, TokenRecord, mint
from mediagen.kube.client import MERGE_PATCH

log = logging.getLogger(__name__)


class TokenAdmin:
    """Token operations on Secret ``namespace/secret``."""

    def __init__(self, api_client: k8s.ApiClient, namespace: str, secret: str = rbac.TOKEN_SECRET) -> None:
        self._core = k8s.CoreV1Api(api_client)
        self.namespace = namespace
        self.secret = secret

    def create(self, tenant_namespace: str, description: str = "") -> tuple[str, TokenRecord]:
        """Mint a token for ``tenant_namespace``; returns the token (show it once) and what was stored."""
        existing = {r.id for r in self.list()}
        token, record = mint(tenant_namespace, description)
        while record.id in existing:  # 48-bit ids: practically never, but a collision would shadow a token
            token, record = mint(tenant_namespace, description)
        value = base64.b64encode(record.encode()).decode()
        try:
            self._core.patch_namespaced_secret(
                self.secret, self.namespace, {"data": {record.id: value}}, _content_type=MERGE_PATCH
            )
        except ApiException as err:
            if err.status != 404:
                raise
            self._create_secret({record.id: value})
        return token, record

    def _create_secret(self, data: dict[str, str]) -> None:
        body = k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(
                name=self.secret,
                namespace=self.namespace,
                labels={"app.kubernetes.io/name": "mediagen", "app.kubernetes.io/component": "gateway"},
            ),
            type="Opaque",
            data=data,
        )
        try:
            self._core.create_namespaced_secret(self.namespace, body)
        except ApiException as err:
            if err.status != 409:
                raise
            # Created by someone else in between: add our key to theirs.
            self._core.patch_namespaced_secret(self.secret, self.namespace, {"data": data}, _content_type=MERGE_PATCH)

    def list(self) -> list[TokenRecord]:
        """Every valid token record (never the tokens themselves: they are not stored)."""
        try:
            secret = self._core.read_namespaced_secret(self.secret, self.namespace)
        except ApiException as err:
            if err.status == 404:
                return []
            raise
        records = []
        for key, value in sorted((secret.data or {}).items()):
            try:
                records.append(TokenRecord.decode(key, base64.b64decode(value or "")))
            except (TokenFormatError, ValueError) as err:
                log.warning("ignoring %s: %s", key, err)
        return records

    def revoke(self, token_id: str) -> bool:
        """Remove token ``token_id``; False if there was no such token. Effective within the gateway's cache TTL."""
        if token_id not in {r.id for r in self.list()}:
            return False
        self._core.patch_namespaced_secret(
            self.secret, self.namespace, {"data": {token_id: None}}, _content_type=MERGE_PATCH
        )
        return True
