"""Deterministic object keys and the content-type ↔ extension mapping they rely on.

A key is ``{prefix}/{namespace}/{name}/{uid}/{prediction_id}/{index}{ext}`` (docs/r2.md#idempotent-uploads): the same
resource, prediction and output index always give the same key, so a retried upload overwrites the same object
and ``immutable`` caching is safe. Keys only ever contain ``[A-Za-z0-9._/-]``.
"""

from __future__ import annotations

import mimetypes
import re

MAX_KEY_BYTES = 1024
"""R2's key length limit."""

DEFAULT_CONTENT_TYPE = "application/octet-stream"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXT_SAFE = re.compile(r"^\.[a-z0-9]{1,10}$")

# Explicit choices for the media we expect; the stdlib tables disagree across versions on several of these
# (``.jpe`` vs ``.jpg``, ``audio/x-wav``...).
_EXTENSIONS: dict[str, str] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/avif": ".avif",
    "image/svg+xml": ".svg",
    "image/tiff": ".tiff",
    "image/bmp": ".bmp",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/vnd.wave": ".wav",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/ogg": ".ogg",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/aac": ".aac",
    "audio/mp4": ".m4a",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "text/csv": ".csv",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "model/gltf-binary": ".glb",
    "model/gltf+json": ".gltf",
    "application/octet-stream": ".bin",
    "binary/octet-stream": ".bin",
}

# Only Python's built-in table: the module-level functions also read /etc/mime.types, which differs between
# hosts and would make keys depend on the container image.
_BUILTIN_TYPES = mimetypes.MimeTypes()


def bare_content_type(content_type: str) -> str:
    """``"Image/PNG; charset=x"`` → ``"image/png"``."""
    return content_type.split(";", 1)[0].strip().lower()


def extension_for(content_type_or_ext: str) -> str:
    """A safe extension (with the dot) for a content type, or for an extension given as ``".png"``.

    Unknown or unsafe input gives ``".bin"``."""
    value = content_type_or_ext.strip().lower()
    if value.startswith("."):
        return value if _EXT_SAFE.match(value) else ".bin"
    bare = bare_content_type(value)
    if bare in _EXTENSIONS:
        return _EXTENSIONS[bare]
    guessed = _BUILTIN_TYPES.guess_extension(bare, strict=False)
    if guessed and _EXT_SAFE.match(guessed.lower()):
        return guessed.lower()
    return ".bin"


def content_type_for_path(path: str) -> str | None:
    """The content type a URL path or file name implies (built-in table only), or ``None``."""
    guessed, _encoding = _BUILTIN_TYPES.guess_type(path, strict=False)
    return guessed


def _segment(value: str, what: str) -> str:
    cleaned = _UNSAFE.sub("-", value.strip())
    # "." and ".." are legal S3 keys but read like path traversal in every tool that maps keys to paths.
    if cleaned.strip(".") == "":
        raise ValueError(f"{what} must contain at least one letter, digit, '-' or '_' (got {value!r})")
    return cleaned


def _prefix_segments(prefix: str) -> list[str]:
    parts = [p for p in prefix.split("/") if p.strip()]
    return [_segment(p, "prefix segment") for p in parts]


def resource_prefix(prefix: str, namespace: str, name: str, uid: str) -> str:
    """The folder holding every output of one resource, ending in ``/`` (what ``delete_prefix`` gets).

    The trailing slash keeps one resource's prefix from matching another whose uid merely starts the same."""
    segments = [
        *_prefix_segments(prefix),
        _segment(namespace, "namespace"),
        _segment(name, "name"),
        _segment(uid, "uid"),
    ]
    return "/".join(segments) + "/"


def object_key(
    prefix: str,
    namespace: str,
    name: str,
    uid: str,
    prediction_id: str,
    index: int,
    content_type_or_ext: str,
) -> str:
    """The key of output ``index`` of ``prediction_id`` for one resource (docs/r2.md#idempotent-uploads).

    ``prediction_id`` may equally be a spec hash; ``content_type_or_ext`` picks the extension
    (``"image/png"`` or ``".png"``). Raises ``ValueError`` for a negative index, an empty segment or a key
    longer than R2 allows."""
    if index < 0:
        raise ValueError(f"index must be >= 0 (got {index})")
    key = (
        resource_prefix(prefix, namespace, name, uid)
        + _segment(prediction_id, "prediction_id")
        + f"/{index}{extension_for(content_type_or_ext)}"
    )
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    return key


def prediction_folder(key: str, namespace: str, name: str, uid: str) -> str | None:
    """The folder of one prediction's outputs that ``key`` (an :func:`object_key` of this resource) lies in, ending
    in ``/``: what ``delete_prefix`` gets to remove that prediction's outputs, under whatever keyPrefix they were
    stored. None when ``key`` is not an output key of this resource (it is never guessed at)."""
    parts = key.split("/")
    if len(parts) < 5 or not parts[-2] or not parts[-1]:
        return None
    try:
        own = [_segment(namespace, "namespace"), _segment(name, "name"), _segment(uid, "uid")]
    except ValueError:
        return None
    if parts[-5:-2] != own:
        return None
    return "/".join(parts[:-1]) + "/"
