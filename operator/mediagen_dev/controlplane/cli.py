"""``run_forever``: a local control plane for development, up until Ctrl-C or SIGTERM.

``python -m mediagen_dev controlplane`` (operator/mediagen_dev/cli.py) calls :func:`run_forever`.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from mediagen_dev.controlplane.errors import ControlPlaneError
from mediagen_dev.controlplane.install import install_api
from mediagen_dev.controlplane.plane import ControlPlane

DEFAULT_KUBECONFIG_OUT = Path(".dev") / "kubeconfig"
_HEALTH_CHECK_INTERVAL = 1.0  # seconds between checks that both servers still run


def run_forever(kubeconfig_out: Path | None) -> int:
    """Start a control plane, install mediagen's API, and serve until SIGINT/SIGTERM; return the exit code.

    Installs the CRD and the admission policy (:func:`install_api`: both in force), copies the
    admin kubeconfig to ``kubeconfig_out`` (default ``./.dev/kubeconfig``), prints how to use
    it, then blocks. Returns 0 after a signal and a clean stop, 1 if the plane fails to start
    or a server dies (its log tail is printed to stderr).
    """
    out = (kubeconfig_out or DEFAULT_KUBECONFIG_OUT).absolute()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Abort whatever is in progress (a first build takes minutes); `finally` stops the plane.
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    plane = ControlPlane()
    try:
        print("starting etcd and kube-apiserver on 127.0.0.1...", file=sys.stderr, flush=True)
        plane.start()
        install_api(plane)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plane.kubeconfig, out)
        out.chmod(0o600)
        _print_usage(plane, out)
        while plane.running:
            time.sleep(_HEALTH_CHECK_INTERVAL)
        print(f"error: a server exited unexpectedly\n{plane.logs_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the control plane...", file=sys.stderr, flush=True)
        return 0
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and leak the servers.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        plane.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_usage(plane: ControlPlane, kubeconfig: Path) -> None:
    print(
        f"control plane ready in {plane.start_seconds:.1f} s: {plane.server}\n"
        "  installed:     the MediaGeneration CRD and its input admission policy\n"
        f"  kubeconfig:    {kubeconfig}  (admin, system:masters)\n"
        f"  kubectl:       {plane.kubectl_path}  (matches the server; the system kubectl may be too old)\n"
        f"  server logs:   {plane.workdir / 'logs'}\n"
        "\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        f"  alias kubectl={plane.kubectl_path}\n"
        "\n"
        "Press Ctrl-C to stop (all data is discarded).",
        flush=True,
    )
