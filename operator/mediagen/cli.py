"""The ``mediagen`` command: ``crd``, ``controlplane``, ``operator``, ``dev`` (and ``gateway``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO_ROOT / "crds"


def _crd(args: argparse.Namespace) -> int:
    from mediagen.api import crd, policy

    if args.write:
        directory = Path(args.write)
        directory.mkdir(parents=True, exist_ok=True)
        print(crd.write_crd(directory))
        print(policy.write_policy(directory))
    else:
        sys.stdout.write(crd.crd_yaml())
        sys.stdout.write("---\n")
        sys.stdout.write(policy.policy_yaml())
    return 0


def _controlplane(args: argparse.Namespace) -> int:
    from mediagen.controlplane.cli import run_forever

    return run_forever(Path(args.kubeconfig) if args.kubeconfig else None, sorted(CRDS_DIR.glob("*.yaml")))


def _operator(args: argparse.Namespace) -> int:
    from mediagen.operator.run import run_operator

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(Path(args.kubeconfig).resolve())
    return run_operator(namespace=args.namespace, liveness=args.liveness, verbose=args.verbose)


def _dev(args: argparse.Namespace) -> int:
    from mediagen.dev import run_dev

    return run_dev(
        examples=[Path(p) for p in args.example] if args.example else None,
        exit_after_example=args.exit_after_example,
    )


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="mediagen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    crd = sub.add_parser("crd", help="print the CRD and its admission policy as YAML (or write them)")
    crd.add_argument("--write", metavar="DIR", help="write the YAML files into DIR instead of printing")
    crd.set_defaults(func=_crd)

    cp = sub.add_parser("controlplane", help="run a local etcd + kube-apiserver with the CRD until Ctrl-C")
    cp.add_argument("--kubeconfig", metavar="PATH", help="where to write the admin kubeconfig (.dev/kubeconfig)")
    cp.set_defaults(func=_controlplane)

    op = sub.add_parser("operator", help="run the operator against a cluster (configured from the environment)")
    op.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig to use (default: in-cluster or KUBECONFIG)")
    op.add_argument("--namespace", metavar="NS", help="watch only this namespace (default: all)")
    op.add_argument("--liveness", metavar="URL", help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz")
    op.add_argument("--verbose", action="store_true", help="debug logging")
    op.set_defaults(func=_operator)

    dev = sub.add_parser(
        "dev", help="everything locally: control plane, embedded S3, operator (mock unless a token is set)"
    )
    dev.add_argument("--example", action="append", metavar="FILE", help="manifest(s) to apply (default: a mock one)")
    dev.add_argument("--exit-after-example", action="store_true", help="stop once the example succeeded")
    dev.set_defaults(func=_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mediagen`` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
