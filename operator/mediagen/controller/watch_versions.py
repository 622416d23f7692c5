"""Which watch events are news: stale versions are told apart without ordering resourceVersions.

resourceVersions are opaque strings: clients may compare them for equality only
(https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions). What a worker needs to know is
whether an event shows the object newer than the body it holds. A watch delivers an object's versions in order,
so that is easy for a body that came from the watch: every later event is newer. The bodies that come from
elsewhere (the answer to our own write, a re-read) are ahead of the watch until their own event arrives, and the
events before it are older; of those only a provably newer one is news: a higher ``metadata.generation`` (a
spec change) or a deletion that the held body does not show yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _meta(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _generation(meta: dict[str, Any]) -> int:
    try:
        return int(meta.get("generation") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass
class Versions:
    """What is known about the version of the body a worker holds."""

    resource_version: str
    generation: int
    deleting: bool
    ahead_of_watch: bool = False
    """The body came from our own write or read, and the watch has not delivered that version yet."""

    @classmethod
    def of(cls, body: dict[str, Any], *, ahead_of_watch: bool = False) -> Versions:
        """The versions of ``body``; ``ahead_of_watch`` when it did not come from the watch."""
        meta = _meta(body)
        return cls(
            resource_version=str(meta.get("resourceVersion") or ""),
            generation=_generation(meta),
            deleting=meta.get("deletionTimestamp") is not None,
            ahead_of_watch=ahead_of_watch,
        )

    def took(self, body: dict[str, Any]) -> None:
        """We hold ``body`` now, from a write or a read of our own."""
        taken = Versions.of(body, ahead_of_watch=True)
        self.resource_version, self.generation, self.deleting = taken.resource_version, taken.generation, taken.deleting
        self.ahead_of_watch = True

    def is_news(self, event: dict[str, Any]) -> bool:
        """Whether a watch event's body is newer than the one held; if so, it becomes the one held."""
        seen = Versions.of(event)
        if seen.resource_version and seen.resource_version == self.resource_version:
            self.ahead_of_watch = False  # the watch has caught up with what we hold
            return False
        if self.ahead_of_watch and not (seen.generation > self.generation or (seen.deleting and not self.deleting)):
            return False  # a version from before our own write or read
        self.resource_version, self.generation, self.deleting = seen.resource_version, seen.generation, seen.deleting
        self.ahead_of_watch = False
        return True
