"""``mediagen generate``, ``get`` and ``watch``: what each command does (their parsers: :mod:`.parser`)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import httpx
from rich.console import Console

from mediagen.userctl import display
from mediagen.userctl.backends import Backend, GatewayBackend
from mediagen.userctl.download import download, targets
from mediagen.userctl.errors import BackendError, UsageError
from mediagen.userctl.snapshot import Snapshot

POLL_SECONDS = 1.0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _stderr() -> Console:
    """Messages for people; never wrapped mid-URL when stderr is not a terminal."""
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def run(args: argparse.Namespace, prog: str, console: Console | None = None) -> int:
    """Run a parsed user command; returns the exit status. Errors are messages on stderr, never tracebacks."""
    out = console or Console(highlight=False, markup=False)
    err = _stderr()
    try:
        backend = _backend(args)
        command = {"generate": _generate, "get": _get, "watch": _watch}[args.user_command]
        return command(args, backend, out, prog)
    except UsageError as error:
        err.print(f"{prog}: {error}")
        return EXIT_USAGE
    except BackendError as error:
        err.print(f"{prog}: {error}")
        return EXIT_FAILED


def _backend(args: argparse.Namespace) -> Backend:
    """The gateway when ``--gateway`` (or MEDIAGEN_GATEWAY_URL) is given, else the kubeconfig's cluster."""
    if args.gateway:
        return GatewayBackend(args.gateway, args.token or os.environ.get("MEDIAGEN_TOKEN"))
    from mediagen.userctl.kube_backend import KubeBackend

    return KubeBackend(args.kubeconfig, args.namespace)


def _generate(args: argparse.Namespace, backend: Backend, out: Console, prog: str) -> int:
    from mediagen.userctl.inputs import build_spec, parse_inputs  # pydantic: only when creating

    spec = build_spec(args.model, args.deployment, parse_inputs(args.input), args.timeout)
    created = backend.create(spec, args.name)
    err = _stderr()
    err.print(f"created {created.name} in {backend.where}")
    if not (args.wait or args.output):
        display.write_plain(out, created.name)
        return 0
    try:
        final = _follow(backend, created.name, out)
    except KeyboardInterrupt:
        err.print(
            f"\nstopped waiting; {created.name} keeps running.\n"
            f"  follow it:      {prog} watch {created.name}{backend.follow_flags}\n"
            f"  get its output: {prog} get {created.name}{backend.follow_flags} -o FILE"
        )
        return EXIT_INTERRUPTED
    return _finish(final, args.output, out)


def _follow(backend: Backend, name: str, out: Console) -> Snapshot:
    """Show one generation live until its phase is final; returns the last snapshot."""
    shown = display.follower(out)
    try:
        while True:
            snapshot = backend.get(name)
            shown.update(snapshot)
            if snapshot.done:
                return snapshot
            time.sleep(POLL_SECONDS)
    finally:
        shown.close()


def _finish(snapshot: Snapshot, output: str | None, out: Console) -> int:
    """Report the outcome; save the outputs when asked. The exit status: 0 only if it Succeeded."""
    err = _stderr()
    if not snapshot.succeeded:
        why = f"{snapshot.reason}: {snapshot.message}" if snapshot.message else snapshot.reason
        err.print(f"{snapshot.name} {snapshot.phase}: {why}")
        return EXIT_FAILED
    if output is None:
        for item in snapshot.outputs:
            display.write_plain(out, item.url)
        return 0
    with httpx.Client(timeout=120, follow_redirects=True) as client:
        for item, path in zip(snapshot.outputs, targets(snapshot.outputs, Path(output), snapshot.name), strict=True):
            try:
                size = download(client, item.url, path)
            except httpx.HTTPError as error:
                err.print(f"cannot download {display.file_label(item.url)}: {error}")
                return EXIT_FAILED
            err.print(f"saved {path} ({size} bytes)")
    return 0


def _get(args: argparse.Namespace, backend: Backend, out: Console, prog: str) -> int:
    if args.name is None:
        if args.output:
            raise UsageError("-o needs a NAME")
        _print_table(backend.list(), out)
        return 0
    snapshot = backend.get(args.name)
    _print_table([snapshot], out)
    if args.output:
        if not snapshot.done:
            raise UsageError(f"{snapshot.name} is {snapshot.phase}; wait for it: {prog} watch {snapshot.name}")
        return _finish(snapshot, args.output, out)
    if snapshot.message:
        display.write_plain(out, snapshot.message)
    for item in snapshot.outputs:
        display.write_plain(out, item.url)
    return 0


def _print_table(snapshots: list[Snapshot], out: Console) -> None:
    now = display.utcnow()
    if out.is_terminal:
        out.print(display.table(snapshots, now))
    else:
        for row in display.plain_rows(snapshots, now):
            display.write_plain(out, row)


def _watch(args: argparse.Namespace, backend: Backend, out: Console, prog: str) -> int:
    if args.name is not None:
        try:
            return _finish(_follow(backend, args.name, out), None, out)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    shown = display.LiveTable(out)
    try:
        while True:
            shown.update(backend.list())
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        return 0
    finally:
        shown.close()
