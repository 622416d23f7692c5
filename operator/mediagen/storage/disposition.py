"""How stored outputs are served: inline for passive media, as a download for everything else.

Models can return any file, and a stored object is served from a domain of ours (an R2 public bucket, a custom
domain, a presigned URL). An HTML page or an SVG image opened there runs its scripts with that domain as its
origin. Passive media (raster images, video, audio) cannot run anything, so browsers may show them inline;
every other type is stored with ``Content-Disposition: attachment`` so that opening its link downloads it
instead of rendering it. The type itself is kept as it came (and recorded in the status), so a program that
fetches the file still learns what it is.
"""

from __future__ import annotations

from mediagen.storage.keys import bare_content_type

PASSIVE_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif", "image/avif"})
"""Exact types served inline, besides every ``video/*`` and ``audio/*``."""
PASSIVE_FAMILIES = ("video/", "audio/")


def is_passive(content_type: str) -> bool:
    """Whether a browser can show ``content_type`` inline without running anything of the file's."""
    bare = bare_content_type(content_type)
    return bare in PASSIVE_TYPES or bare.startswith(PASSIVE_FAMILIES)


def content_disposition(content_type: str, key: str) -> str | None:
    """The ``Content-Disposition`` an object of ``content_type`` at ``key`` is stored with: None (inline) for
    passive media, else ``attachment`` with the key's last segment as the file name.

    Keys only hold ``[A-Za-z0-9._/-]`` (see :mod:`mediagen.storage.keys`), so the name needs no quoting."""
    if is_passive(content_type):
        return None
    return f'attachment; filename="{key.rsplit("/", 1)[-1]}"'
