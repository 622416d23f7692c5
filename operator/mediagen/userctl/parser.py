"""The command lines of ``mediagen generate|get|watch`` and of ``kubectl mediagen``: argparse only, so that
``--help`` and a mistyped flag answer at once (the commands import the clients when they run)."""

from __future__ import annotations

import argparse
import os

USER_COMMANDS = ("generate", "get", "watch")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], prog: str) -> None:
    """Add ``generate``, ``get`` and ``watch`` to a command line whose program is ``prog``."""
    gen = sub.add_parser(
        "generate",
        help="create a generation; with --wait, follow it live and download its outputs",
        description="Create a MediaGeneration. Example: "
        f"{prog} generate black-forest-labs/flux-schnell -i prompt='a fox' --wait -o fox.png",
    )
    gen.add_argument("model", nargs="?", help="the Replicate model, owner/name or owner/name:version")
    gen.add_argument("--deployment", metavar="OWNER/NAME", help="a Replicate deployment instead of a model")
    gen.add_argument(
        "-i", "--input", action="append", default=[], metavar="KEY=VALUE", help="a model input (repeatable); "
        "numbers, true/false and [lists] are converted, anything else is text",
    )  # fmt: skip
    gen.add_argument("--name", help="the generation's name (default: gen-<random>)")
    gen.add_argument("--timeout", type=int, metavar="SECONDS", help="spec.timeoutSeconds (default 3600)")
    gen.add_argument("--wait", action="store_true", help="follow it until it finishes (live progress)")
    gen.add_argument("-o", "--output", metavar="FILE|DIR", help="save the outputs here (implies --wait)")
    _add_target(gen)
    gen.set_defaults(user_command="generate")

    get = sub.add_parser("get", help="list generations, or show one (and save its outputs with -o)")
    get.add_argument("name", nargs="?", help="one generation (default: all in the namespace)")
    get.add_argument("-o", "--output", metavar="FILE|DIR", help="save the outputs of NAME here")
    _add_target(get)
    get.set_defaults(user_command="get")

    watch = sub.add_parser("watch", help="a live table of generations (or follow one until it finishes)")
    watch.add_argument("name", nargs="?", help="follow this one until it finishes (exit status: its outcome)")
    _add_target(watch)
    watch.set_defaults(user_command="watch")


def _add_target(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where (the kubeconfig by default, or the HTTP gateway)")
    where.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    where.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG, then ~/.kube/config)")
    where.add_argument(
        "--gateway", default=os.environ.get("MEDIAGEN_GATEWAY_URL"), metavar="URL",
        help="use the HTTP gateway at URL instead (MEDIAGEN_GATEWAY_URL)",
    )  # fmt: skip
    where.add_argument("--token", help="the gateway's API token (default: MEDIAGEN_TOKEN)")


def plugin_main(argv: list[str] | None = None) -> int:
    """``kubectl mediagen ...``: the user commands alone, as a kubectl plugin."""
    prog = "kubectl mediagen"
    parser = argparse.ArgumentParser(prog=prog, description="Create and follow MediaGenerations.")
    add_parsers(parser.add_subparsers(dest="command", required=True), prog)
    from mediagen.userctl.commands import run

    return run(parser.parse_args(argv), prog)
