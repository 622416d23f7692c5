"""Where the checkout's files are. The tooling runs from a checkout only, so the paths are found from here."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout's root (``operator/mediagen_dev/paths.py`` → three levels up)."""
CRDS_DIR = REPO_ROOT / "crds"
CHART_DIR = REPO_ROOT / "charts" / "mediagen"
EXAMPLES_DIR = REPO_ROOT / "examples"
HACK_DIR = REPO_ROOT / "hack"
MANIFESTS_DIR = REPO_ROOT / "manifests"
BENCH_DIR = REPO_ROOT / "bench"
