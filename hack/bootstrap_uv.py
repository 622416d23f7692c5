"""Install one uv release from PyPI with the Python standard library alone (no pip, no venv).

hack/uv.sh falls back to this where ``python3 -m venv`` has no pip (Debian's python3 without python3-venv).
uv's wheels hold nothing but the ``uv`` and ``uvx`` binaries (under ``uv-<version>.data/scripts/``), so
"installing" is: pick the wheel built for this platform from the package index's simple API (PEP 691 JSON, or
the HTML page of PEP 503), check its sha256 against the digest the index publishes, and unpack the two binaries.

    python3 hack/bootstrap_uv.py 0.13.8 ~/.cache/mediagen/uv-0.13.8/bin

The index is ``PIP_INDEX_URL`` when set (a mirror), else ``https://pypi.org/simple``.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import platform
import re
import stat
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

_ANCHOR = re.compile(r'<a\s[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', re.IGNORECASE)

_MACHINES = {
    "x86_64": ("x86_64",),
    "amd64": ("x86_64",),
    "aarch64": ("aarch64", "arm64"),
    "arm64": ("aarch64", "arm64"),
}


def wheel_matches(filename: str, system: str, machine: str, musl: bool) -> bool:
    """Whether a uv wheel's file name is built for this operating system and processor."""
    name = filename.lower()
    arches = _MACHINES.get(machine.lower(), (machine.lower(),))
    if not name.endswith(".whl") or not any(arch in name for arch in arches):
        return False
    if system == "Linux":
        return ("musllinux" in name) if musl else ("manylinux" in name)
    if system == "Darwin":
        return "macosx" in name
    return False


def _is_musl() -> bool:
    return platform.libc_ver()[0] != "glibc" and any(Path("/lib").glob("ld-musl-*"))


def index_files(index: str) -> list[dict[str, str]]:
    """The files of project ``uv`` on a simple index: ``filename``, ``url`` and ``sha256`` each."""
    page = f"{index.rstrip('/')}/uv/"
    accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
    request = urllib.request.Request(page, headers={"Accept": accept})  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        kind = response.headers.get("Content-Type", "")
        body = response.read()
    if "json" in kind:
        return [
            {"filename": f["filename"], "url": urllib.parse.urljoin(page, f["url"]), "sha256": f["hashes"]["sha256"]}
            for f in json.loads(body)["files"]
            if "sha256" in f.get("hashes", {})
        ]
    files = []
    for href, text in _ANCHOR.findall(body.decode()):
        url, _, fragment = html.unescape(href).partition("#sha256=")
        if fragment:
            files.append({"filename": text.strip(), "url": urllib.parse.urljoin(page, url), "sha256": fragment})
    return files


def main(version: str, target: Path) -> int:
    """Download uv ``version`` for this machine and put ``uv`` and ``uvx`` into ``target``."""
    index = os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"
    system, machine, musl = platform.system(), platform.machine(), _is_musl()
    wheels = [
        f
        for f in index_files(index)
        if f["filename"].startswith(f"uv-{version}-") and wheel_matches(f["filename"], system, machine, musl)
    ]
    if not wheels:
        print(f"error: PyPI has no uv {version} wheel for {system} {machine}", file=sys.stderr)
        return 2
    wheel = wheels[0]
    print(f"downloading {wheel['filename']}", file=sys.stderr)
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as spool:
        with urllib.request.urlopen(wheel["url"], timeout=300) as response:  # noqa: S310
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                spool.write(chunk)
        if digest.hexdigest() != wheel["sha256"]:
            print(f"error: {wheel['filename']} does not match PyPI's sha256; not installed", file=sys.stderr)
            return 2
        spool.seek(0)
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(spool) as archive:
            for binary in ("uv", "uvx"):
                member = f"uv-{version}.data/scripts/{binary}"
                destination = target / binary
                destination.write_bytes(archive.read(member))
                destination.chmod(destination.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
