"""The plain data the Kubernetes adapter (:mod:`mediagen.kube.client`) takes and gives: timeouts, list pages,
watch events, and the identities and answers of TokenReviews and SubjectAccessReviews."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AccessRequest", "Decision", "KubeTimeouts", "Page", "Review", "UserInfo", "WatchEvent"]


@dataclass(frozen=True)
class KubeTimeouts:
    """How long one call may take, in seconds: to connect, and to wait for each read of the answer."""

    connect: float = 5.0
    read: float = 15.0

    @property
    def backstop(self) -> float:
        """The whole call, however the transport behaves (a server that trickles bytes resets a read timeout)."""
        return self.connect + 2 * self.read


@dataclass
class Page:
    """One page of a list: the objects and the continue token of the next page ("" at the end)."""

    items: list[dict[str, Any]]
    continue_token: str = ""


@dataclass
class Review:
    """The outcome of a TokenReview."""

    authenticated: bool
    username: str = ""
    error: str = ""
    groups: list[str] = field(default_factory=list)
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)
    audiences: list[str] = field(default_factory=list)
    """The audiences the token was found valid for (a client that asked for some must check one is among them)."""


@dataclass(frozen=True)
class UserInfo:
    """A Kubernetes identity, as authentication (TokenReview, or kube-apiserver's front proxy) reported it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Sorted (key, values) pairs: hashable, so decisions can be cached by identity."""


@dataclass(frozen=True)
class AccessRequest:
    """May ``user`` perform ``verb`` on MediaGenerations in ``namespace`` (on the one named ``name``, if set)?"""

    user: UserInfo
    verb: str
    namespace: str
    name: str = ""


@dataclass(frozen=True)
class Decision:
    """The answer of a SubjectAccessReview."""

    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch: ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``, and the object."""

    type: str
    object: dict[str, Any]
