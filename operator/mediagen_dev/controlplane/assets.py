"""Locating (and, on first use, building) the etcd, kube-apiserver and kubectl binaries."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mediagen_dev.build_scripts import run_build_script
from mediagen_dev.controlplane.errors import ControlPlaneError
from mediagen_dev.paths import REPO_ROOT

# Must match hack/build-controlplane.sh; a unit test checks that they do.
K8S_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"

BINARIES = ("etcd", "kube-apiserver", "kubectl")

BUILD_SCRIPT = REPO_ROOT / "hack" / "build-controlplane.sh"

# Exit codes of the build script.
_NO_GO = 3
_BUILD_FAILED = 4

_FIX_HINT = (
    "Install Go >= 1.26 (https://go.dev/dl/) so hack/build-controlplane.sh can build them, "
    "or set KUBEBUILDER_ASSETS to a folder holding etcd, kube-apiserver and kubectl "
    f"(Kubernetes {K8S_VERSION}, etcd {ETCD_VERSION})."
)


def cache_dir() -> Path:
    """Return the per-user binary cache: ``$MEDIAGEN_CACHE`` or ``~/.cache/mediagen``."""
    configured = os.environ.get("MEDIAGEN_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "mediagen"


def cached_assets_dir() -> Path:
    """Return the cache folder the build script fills with links to the three binaries."""
    return cache_dir() / f"assets-{K8S_VERSION}-{ETCD_VERSION}"


def _missing(folder: Path) -> list[str]:
    return [name for name in BINARIES if not os.access(folder / name, os.X_OK)]


def find_assets(build: bool = True) -> Path:
    """Return a folder holding executable ``etcd``, ``kube-apiserver`` and ``kubectl``.

    Looked up in this order:

    1. ``$KUBEBUILDER_ASSETS`` (the envtest convention); if set, it must be complete.
    2. The cache folder (:func:`cached_assets_dir`) if it holds all three.
    3. With ``build=True``: hack/build-controlplane.sh, which builds the missing binaries into the
       cache (minutes on the first run) and prints the folder.

    Raises:
        ControlPlaneError: the binaries are missing and cannot be built; the message names the
            fix and carries the tail of the build output.
    """
    env_assets = os.environ.get("KUBEBUILDER_ASSETS")
    if env_assets:
        folder = Path(env_assets).expanduser()
        if missing := _missing(folder):
            raise ControlPlaneError(
                f"KUBEBUILDER_ASSETS={env_assets} lacks executable {', '.join(missing)}; "
                "point it at a folder holding etcd, kube-apiserver and kubectl, or unset it "
                "to use (and build) the mediagen cache."
            )
        return folder.resolve()

    cached = cached_assets_dir()
    if not _missing(cached):
        return cached
    if not build:
        raise ControlPlaneError(f"etcd, kube-apiserver and kubectl were not found in {cached}. {_FIX_HINT}")
    return _run_build_script()


def _run_build_script() -> Path:
    if not BUILD_SCRIPT.is_file():
        raise ControlPlaneError(
            f"the control plane binaries are not cached and {BUILD_SCRIPT} does not exist "
            f"(not running from a checkout?). {_FIX_HINT}"
        )
    bash = shutil.which("bash")
    if bash is None:
        raise ControlPlaneError(f"bash is needed to run {BUILD_SCRIPT}. {_FIX_HINT}")

    # The script relays its progress live (a first build takes minutes) and prints the assets folder last.
    code, tail = run_build_script(bash, BUILD_SCRIPT)

    output = "\n".join(tail)
    if code == _NO_GO:
        raise ControlPlaneError(
            "the Go toolchain (go) was not found on PATH, and etcd, kube-apiserver and kubectl are not "
            f"in the cache {cached_assets_dir()}. {_FIX_HINT}\n--- build output ---\n{output}"
        )
    if code != 0:
        what = "building the control plane binaries failed" if code == _BUILD_FAILED else "the build failed"
        raise ControlPlaneError(
            f"{what} ({BUILD_SCRIPT} exited {code}). {_FIX_HINT}\n--- build output (tail) ---\n{output}"
        )

    lines = [line for line in tail if line.strip()]
    folder = Path(lines[-1].strip()) if lines else cached_assets_dir()
    if missing := _missing(folder):
        raise ControlPlaneError(
            f"{BUILD_SCRIPT} succeeded but {folder} lacks {', '.join(missing)}. {_FIX_HINT}\n{output}"
        )
    return folder
