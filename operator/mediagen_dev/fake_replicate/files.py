"""Output files the fake serves: real small PNGs, and large deterministic byte streams.

Large outputs (a 50 MB video) are never held in memory: bytes are produced chunk by chunk from a seed, so
the server streams them and a test can compute the same digest with :func:`expected_sha256`.
"""

from __future__ import annotations

import functools
import hashlib
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK_SIZE = 64 * 1024
_BLOCK_SIZE = 1024 * 1024

# Leading bytes that make generated files sniff as their content type; the rest is seeded noise.
_MAGIC: dict[str, bytes] = {
    "video/mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
    "image/webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "audio/wav": b"RIFF\x00\x00\x00\x00WAVEfmt ",
}


@dataclass(frozen=True)
class OutputFile:
    """One output file of a scripted model.

    ``size=None`` with ``content_type="image/png"`` serves a real ``width`` by ``height`` PNG; otherwise the
    file is exactly ``size`` bytes (default 1024) generated from ``seed``."""

    name: str = "out-0.png"
    content_type: str = "image/png"
    size: int | None = None
    seed: int = 0
    width: int = 8
    height: int = 8
    bytes_per_second: float | None = None
    """Serve no faster than this (None: as fast as loopback goes)."""

    @property
    def is_png(self) -> bool:
        """True when the fake renders a real PNG rather than seeded bytes."""
        return self.content_type == "image/png" and self.size is None

    @property
    def length(self) -> int:
        """The exact number of bytes served."""
        if self.is_png:
            return len(png_bytes(self.width, self.height, self.seed))
        return self.size if self.size is not None else 1024

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the file's bytes in chunks of at most ``chunk_size``."""
        if self.is_png:
            data = png_bytes(self.width, self.height, self.seed)
            for start in range(0, len(data), chunk_size):
                yield data[start : start + chunk_size]
            return
        yield from _seeded_stream(self.length, self.seed, self.content_type, chunk_size)

    def read_all(self) -> bytes:
        """The whole file; only sensible for small files (``data:`` URIs, tests)."""
        return b"".join(self.iter_chunks())


def expected_sha256(file: OutputFile) -> str:
    """Hex SHA-256 of what the fake serves for ``file``, computed by streaming (cached per spec)."""
    return _sha256_cached(file)


@functools.lru_cache(maxsize=64)
def _sha256_cached(file: OutputFile) -> str:
    digest = hashlib.sha256()
    for chunk in file.iter_chunks(_BLOCK_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _noise_block(seed: int) -> bytes:
    return random.Random(seed).randbytes(_BLOCK_SIZE)


def _seeded_stream(size: int, seed: int, content_type: str, chunk_size: int) -> Iterator[bytes]:
    """Bytes ``[0, size)``: magic header, then 1 MiB noise blocks each stamped with its index.

    The stamp keeps blocks distinct, so a download that repeats or skips a block fails a digest check."""
    block = _noise_block(seed)
    magic = _MAGIC.get(content_type, b"")
    position = 0
    while position < size:
        index, offset = divmod(position, _BLOCK_SIZE)
        take = min(chunk_size, size - position, _BLOCK_SIZE - offset)
        piece = bytearray(block[offset : offset + take])
        head = (magic if index == 0 else b"") + struct.pack(">Q", index)
        for i in range(offset, min(len(head), offset + take)):
            piece[i - offset] = head[i]
        position += take
        yield bytes(piece)


@functools.lru_cache(maxsize=32)
def png_bytes(width: int = 8, height: int = 8, seed: int = 0) -> bytes:
    """A valid RGB PNG of a seeded colour gradient (decodable by any image library)."""
    rng = random.Random(seed)
    base = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type "None" for each scanline
        for x in range(width):
            rows += bytes(((base[0] + 16 * x) % 256, (base[1] + 16 * y) % 256, base[2]))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b"")
    )
