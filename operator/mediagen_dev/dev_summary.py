"""What ``make dev`` prints once everything runs: copy-and-paste lines for kubectl, curl, the gallery and the CLI."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from mediagen_dev.paths import REPO_ROOT

EXAMPLE_MODEL = "black-forest-labs/flux-schnell"
EXAMPLE_PROMPT = "a corgi in a teacup, watercolor"


@dataclass(frozen=True)
class Summary:
    """Everything the summary shows."""

    kubeconfig: Path
    kubectl: Path
    listing: str
    first_name: str
    first_url: str
    gateway_url: str
    gateway_log: Path
    token: str
    tenant: str
    storage: str
    example: Path
    seconds: float


def _shown(path: Path) -> str:
    """A path relative to the checkout when it is inside it (shorter lines), else as is."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def summary_text(s: Summary) -> str:
    """The text: every command in it runs as printed (the dev test runs the curl lines)."""
    auth = shlex.quote(f"Authorization: Bearer {s.token}")
    body = shlex.quote(json.dumps({"model": EXAMPLE_MODEL, "input": {"prompt": EXAMPLE_PROMPT}}))
    prompt = shlex.quote(f"prompt={EXAMPLE_PROMPT}")
    return "\n".join(
        [
            "",
            s.listing.rstrip(),
            f"first output: {s.first_url}",
            "",
            f"mediagen is running (ready in {s.seconds:.0f} s); Ctrl-C stops everything.",
            "",
            "Kubernetes:",
            f"  export KUBECONFIG={s.kubeconfig}",
            f"  alias kubectl={s.kubectl}",
            f"  kubectl apply -f {_shown(s.example)} && kubectl get mg -w",
            "",
            f"HTTP gateway at {s.gateway_url} (log: {_shown(s.gateway_log)}); an API token for namespace {s.tenant}:",
            f"  {s.token}",
            f"  curl -sS -H {auth} -H 'Content-Type: application/json' -d {body} {s.gateway_url}/generate",
            f"  curl -sS -H {auth} {s.gateway_url}/status/{s.first_name}",
            f"gallery: {s.gateway_url}/ (sign in with the token)",
            "",
            "The CLI, with live progress (after the export above; also `kubectl mediagen`, from .venv/bin):",
            f"  uv run mediagen generate {EXAMPLE_MODEL} -i {prompt} --wait -o corgi.png",
            "  uv run mediagen watch",
            "",
            f"storage: {s.storage}",
            "",
        ]
    )


def print_summary(summary: Summary) -> None:
    """Print :func:`summary_text`."""
    print(summary_text(summary), flush=True)
