"""``python -m mediagen_dev``: ``dev`` (everything locally), ``crd`` (regenerate) and ``controlplane``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def _controlplane(args: argparse.Namespace) -> int:
    from mediagen_dev.controlplane.cli import run_forever

    return run_forever(Path(args.kubeconfig) if args.kubeconfig else None)


def _dev(args: argparse.Namespace) -> int:
    from mediagen_dev.dev import DevOptions, run_dev

    defaults = DevOptions()
    return run_dev(
        DevOptions(
            examples=tuple(Path(p) for p in args.example) if args.example else defaults.examples,
            exit_after_example=args.exit_after_example,
            presigned=args.presigned,
            gateway_port=args.gateway_port,
            directory=Path(args.dir),
        )
    )


def _crd(args: argparse.Namespace) -> int:
    from mediagen_dev.generated import write_all

    for path in write_all():
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The developer command line."""
    parser = argparse.ArgumentParser(prog="python -m mediagen_dev", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser(
        "dev",
        help="everything locally: control plane, embedded S3, operator (mock unless a token is set), gateway",
        description="Everything locally until Ctrl-C: control plane, embedded S3 (public), operator, gateway.",
    )
    dev.add_argument("--example", action="append", metavar="FILE", help="manifest(s) to apply (default: a mock one)")
    dev.add_argument("--exit-after-example", action="store_true", help="stop once the example succeeded")
    dev.add_argument(
        "--presigned", action="store_true", help="keep the embedded bucket private: presigned URLs instead of public"
    )
    dev.add_argument(
        "--gateway-port", type=int, default=8000, metavar="PORT", help="gateway port if free, else any (8000)"
    )
    dev.add_argument("--dir", default=".dev", metavar="DIR", help="where the kubeconfig and logs go (.dev)")
    dev.set_defaults(func=_dev)

    crd = sub.add_parser("crd", help="rewrite every committed copy of the CRD and admission policy (make crd)")
    crd.set_defaults(func=_crd)

    cp = sub.add_parser("controlplane", help="run a local etcd + kube-apiserver with the CRD until Ctrl-C")
    cp.add_argument("--kubeconfig", metavar="PATH", help="where to write the admin kubeconfig (.dev/kubeconfig)")
    cp.set_defaults(func=_controlplane)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m mediagen_dev``."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
