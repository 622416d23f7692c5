"""The ``mediagen`` command: ``crd``, ``operator`` and ``gateway`` (what the image runs), and for people
``generate``, ``get`` and ``watch`` (also ``kubectl mediagen ...``).

The developer commands (``dev``, ``controlplane``) are ``python -m mediagen_dev``, outside the product."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _crd(args: argparse.Namespace) -> int:
    from mediagen.api import admission_policy, crd

    if args.write:
        directory = Path(args.write)
        directory.mkdir(parents=True, exist_ok=True)
        print(crd.write_crd(directory))
        print(admission_policy.write_policy(directory))
    else:
        sys.stdout.write(crd.crd_yaml())
        sys.stdout.write("---\n")
        sys.stdout.write(admission_policy.policy_yaml())
    return 0


def _operator(args: argparse.Namespace) -> int:
    from mediagen.controller.run import run_operator

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(Path(args.kubeconfig).resolve())
    return run_operator(
        namespace=args.namespace,
        liveness=args.liveness,
        verbose=args.verbose,
        leader_election=args.leader_election,
    )


def _gateway(args: argparse.Namespace) -> int:
    from mediagen.gateway.command import run

    return run(args)


def _user(args: argparse.Namespace) -> int:
    from mediagen.userctl.commands import run

    return run(args, "mediagen")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    from mediagen.userctl.parser import USER_COMMANDS, add_parsers

    parser = argparse.ArgumentParser(prog="mediagen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_parsers(sub, "mediagen")
    for name in USER_COMMANDS:
        sub.choices[name].set_defaults(func=_user)

    crd = sub.add_parser("crd", help="print the CRD and its admission policy as YAML (or write them)")
    crd.add_argument("--write", metavar="DIR", help="write the YAML files into DIR instead of printing")
    crd.set_defaults(func=_crd)

    op = sub.add_parser("operator", help="run the operator against a cluster (configured from the environment)")
    op.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig to use (default: in-cluster or KUBECONFIG)")
    op.add_argument("--namespace", metavar="NS", help="watch only this namespace (default: all)")
    op.add_argument("--liveness", metavar="URL", help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz")
    op.add_argument("--verbose", action="store_true", help="debug logging")
    op.add_argument(
        "--leader-election",
        action="store_true",
        help="for several replicas: act only while holding the Lease MEDIAGEN_LEASE_NAME (created if missing), "
        "stand by otherwise (also MEDIAGEN_LEADER_ELECTION=true; default: act alone, one replica)",
    )
    op.set_defaults(func=_operator)

    gw = sub.add_parser(
        "gateway", help="run the HTTP gateway (configured from MEDIAGEN_GATEWAY_*), or manage its tokens"
    )
    gw.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig to use (default: in-cluster or KUBECONFIG)")
    gw.add_argument("--host", metavar="ADDR", help="address to listen on (default 0.0.0.0)")
    gw.add_argument("--port", type=int, metavar="PORT", help="port to listen on (default 8000; 0 picks a free one)")
    gw.set_defaults(func=_gateway)
    gw_sub = gw.add_subparsers(dest="gateway_command")
    rbac = gw_sub.add_parser("rbac", help="print the gateway's ServiceAccount and least-privilege RBAC as YAML")
    rbac.add_argument("--namespace", metavar="NS", help="the gateway's namespace (default mediagen-system)")
    token = gw_sub.add_parser("token", help="mint, list or revoke API tokens (needs write access to the Secret)")
    token.add_argument("--secret-namespace", metavar="NS", help="namespace of the token Secret (the gateway's)")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="mint a token for a tenant namespace; prints it once")
    create.add_argument("--namespace", required=True, metavar="NS", help="the tenant's namespace")
    create.add_argument("--description", metavar="TEXT", help="who or what the token is for")
    token_sub.add_parser("list", help="list token ids, namespaces and descriptions")
    revoke = token_sub.add_parser("revoke", help="revoke a token by id (the part after mg_)")
    revoke.add_argument("id", help="the token id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mediagen`` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
