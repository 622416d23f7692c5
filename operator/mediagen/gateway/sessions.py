"""The gallery's sign-in sessions: a short-lived, signed value in the cookie, never the API token itself.

A session names the tenant and how it signed in: an API token by its id and a fingerprint of its stored hash (so a
revoked or re-minted token ends the session at once), or a ServiceAccount by its identity (re-authorized with a
SubjectAccessReview on every use, so removing its RBAC ends the session too). It expires after ``lifetime``
seconds. The value is ``<payload>.<signature>``: base64url JSON and its HMAC-SHA256 under the gateway's session
key. Nothing in it is secret, but nothing in it can be changed: a stolen cookie is worth ``lifetime`` seconds of
gallery access for one tenant, not the API token.

Replicas must share the key (``MEDIAGEN_GATEWAY_SESSION_KEY``; the Helm chart generates one into a Secret);
without one the gateway makes up a key at start, and sessions then end with the process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

_MAX_VALUE = 4096


@dataclass(frozen=True)
class Session:
    """Who signed in, until when (Unix seconds)."""

    namespace: str
    subject: str
    expires: int
    token_id: str = ""
    fingerprint: str = ""
    """The first 16 hex digits of the API token's stored SHA-256."""
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and opens session values under one key; see the module docstring."""

    def __init__(self, key: bytes | None, lifetime: float = 3600.0, *, clock: Callable[[], float] = time.time) -> None:
        self.ephemeral = key is None
        """True when the key was made up at start (sessions end with the process)."""
        self._key = key if key is not None else secrets.token_bytes(32)
        self.lifetime = lifetime
        self._clock = clock

    def expiry(self) -> int:
        """When a session issued now expires."""
        return int(self._clock() + self.lifetime)

    def issue(self, session: Session) -> str:
        """The cookie value of ``session``."""
        payload = _b64(json.dumps(asdict(session), separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._sign(payload)}"

    def open(self, value: str) -> Session | None:
        """The session in ``value`` if it is well-formed, signed with our key and not expired; else None."""
        if len(value) > _MAX_VALUE or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(**{**data, "groups": tuple(data.get("groups") or ())})
        except (ValueError, TypeError, binascii.Error):
            return None
        return session if session.expires > self._clock() else None

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


def fingerprint(stored_sha256: str) -> str:
    """What a session keeps of an API token's stored hash."""
    return stored_sha256[:16]
