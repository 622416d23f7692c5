"""``mediagen gateway``: serve, or manage API tokens (``token create|list|revoke``), or print the RBAC."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def run(args: argparse.Namespace) -> int:
    """Dispatch the parsed ``mediagen gateway ...`` command line."""
    from mediagen.gateway import rbac
    from mediagen.gateway.settings import GatewaySettings

    overrides: dict[str, Any] = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "kubeconfig": getattr(args, "kubeconfig", None),
    }
    settings = GatewaySettings(**{k: v for k, v in overrides.items() if v is not None})
    command = getattr(args, "gateway_command", None)
    if command == "rbac":
        sys.stdout.write(rbac.manifests_yaml(args.namespace or rbac.DEFAULT_NAMESPACE))
        return 0
    if command == "token":
        return _token(args, settings)
    from mediagen.gateway.server import serve

    return serve(settings)


def _token(args: argparse.Namespace, settings: Any) -> int:
    from mediagen.gateway.token_admin import TokenAdmin
    from mediagen.kube.client import load_api_client

    admin = TokenAdmin(
        load_api_client(settings.kubeconfig), args.secret_namespace or settings.namespace, settings.token_secret
    )
    where = f"secret {admin.namespace}/{admin.secret}"
    action = args.token_command
    if action == "create":
        token, record = admin.create(args.namespace, args.description or "")
        print(
            f"token {record.id} for namespace {record.namespace} stored (hashed) in {where}; "
            "this is the only time it is shown:",
            file=sys.stderr,
        )
        print(token)
        return 0
    if action == "list":
        for record in admin.list():
            print(f"{record.id}\t{record.namespace}\t{record.created_at}\t{record.description}")
        return 0
    if admin.revoke(args.id):
        print(f"token {args.id} revoked in {where}; it stops working within the gateway's cache TTL", file=sys.stderr)
        return 0
    print(f"no token {args.id} in {where}", file=sys.stderr)
    return 1
