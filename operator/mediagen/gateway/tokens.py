"""API tokens: their format, their hash, and how they are stored in the token Secret. Pure functions.

A token reads ``mg_<id>_<secret>``: ``id`` is 12 hex digits and not secret (it names the Secret key, shows up in
logs and in the annotation of what a token created), ``secret`` is 40 hex digits (160 random bits). The Secret
holds, under the key ``<id>``, the JSON ``{"sha256": <hex digest of the whole token>, "namespace": <tenant>,
"description": ..., "createdAt": ...}``: a leaked Secret reveals no usable token. Tokens are random enough
that a plain SHA-256 is the right hash (a slow password hash would only cost CPU per request).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

PREFIX = "mg_"
TOKEN_PATTERN = re.compile(r"^mg_(?P<id>[0-9a-f]{12})_(?P<secret>[0-9a-f]{40})$")
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class TokenFormatError(ValueError):
    """A token record in the Secret cannot be used."""


@dataclass(frozen=True)
class TokenRecord:
    """What the Secret knows about one token."""

    id: str
    sha256: str
    namespace: str
    description: str = ""
    created_at: str = ""

    def matches(self, token: str) -> bool:
        """Whether ``token`` is this record's token; constant-time in the digest."""
        return hmac.compare_digest(hash_token(token), self.sha256)

    def encode(self) -> bytes:
        """The Secret value for this record."""
        record = {
            "sha256": self.sha256,
            "namespace": self.namespace,
            "description": self.description,
            "createdAt": self.created_at,
        }
        return json.dumps(record, sort_keys=True).encode()

    @classmethod
    def decode(cls, token_id: str, value: bytes) -> TokenRecord:
        """Parse the Secret value stored under ``token_id``; raises :class:`TokenFormatError`."""
        if not re.fullmatch(r"[0-9a-f]{12}", token_id):
            raise TokenFormatError(f"key {token_id!r} is not a token id")
        try:
            record = json.loads(value)
        except ValueError:
            raise TokenFormatError(f"token {token_id}: the value is not JSON") from None
        if not isinstance(record, dict):
            raise TokenFormatError(f"token {token_id}: the value is not a JSON object")
        digest, namespace = record.get("sha256"), record.get("namespace")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise TokenFormatError(f"token {token_id}: sha256 is not a hex SHA-256 digest")
        if not isinstance(namespace, str) or not NAMESPACE_PATTERN.match(namespace):
            raise TokenFormatError(f"token {token_id}: namespace is not a namespace name")
        return cls(
            id=token_id,
            sha256=digest,
            namespace=namespace,
            description=str(record.get("description") or ""),
            created_at=str(record.get("createdAt") or ""),
        )


def hash_token(token: str) -> str:
    """Hex SHA-256 of the whole token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str | None:
    """The id of a well-formed token, or None for anything else."""
    found = TOKEN_PATTERN.match(token)
    return found.group("id") if found else None


def mint(namespace: str, description: str = "", now: dt.datetime | None = None) -> tuple[str, TokenRecord]:
    """A new token for tenant ``namespace`` and the record to store. The token is shown once, never stored."""
    if not NAMESPACE_PATTERN.match(namespace):
        raise ValueError(f"{namespace!r} is not a valid namespace name")
    new_id = secrets.token_hex(6)
    token = f"{PREFIX}{new_id}_{secrets.token_hex(20)}"
    created = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = TokenRecord(
        id=new_id, sha256=hash_token(token), namespace=namespace, description=description, created_at=created
    )
    return token, record
