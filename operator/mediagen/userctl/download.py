"""Saving a generation's outputs to files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import httpx

from mediagen.storage.keys import extension_for
from mediagen.userctl.snapshot import Output


def targets(outputs: tuple[Output, ...], destination: Path, name: str) -> list[Path]:
    """Where each output goes. ``-o cat.png`` with one output: that file; with several: ``cat.png``,
    ``cat-1.png``, ...; an existing directory gets ``<name>-<index><ext>`` files."""
    if destination.is_dir():
        return [destination / f"{name}-{i}{extension_for(o.content_type or '.bin')}" for i, o in enumerate(outputs)]
    return [destination if i == 0 else destination.with_stem(f"{destination.stem}-{i}") for i in range(len(outputs))]


def download(client: httpx.Client, url: str, path: Path) -> int:
    """Stream ``url`` into ``path`` (written whole or not at all); returns the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    written = 0
    try:
        with os.fdopen(handle, "wb") as out, client.stream("GET", url) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                out.write(chunk)
                written += len(chunk)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return written
