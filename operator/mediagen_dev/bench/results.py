"""``bench/results.json``: the machine a run was made on, and what each benchmark measured."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import kopf

from mediagen_dev.controlplane import ETCD_VERSION, K8S_VERSION
from mediagen_dev.paths import REPO_ROOT

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results.json"


def _proc_field(path: str, name: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return result.stdout.strip()


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, load and the versions of what ran."""
    mem_kib = _proc_field("/proc/meminfo", "MemTotal").split()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "memory_gib": round(int(mem_kib[0]) / 1024**2, 1) if mem_kib else None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "kopf": getattr(kopf, "__version__", ""),
        "kube_apiserver": K8S_VERSION,
        "etcd": ETCD_VERSION,
        "git_commit": _git_commit(),
    }


def load(path: Path) -> dict[str, Any]:
    """The results in ``path``, or an empty dict."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def write(path: Path, results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON (keys in a stable order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
