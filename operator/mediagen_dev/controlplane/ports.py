"""Loopback port helpers."""

from __future__ import annotations

import contextlib
import socket


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    The kernel picks each port (bind to port 0). All sockets stay open until every port is
    chosen so the same port cannot be handed out twice; another process may still take one
    before the server binds it, which :meth:`ControlPlane.start` handles by retrying.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def is_port_free(port: int) -> bool:
    """Tell whether nothing listens on 127.0.0.1:``port``.

    SO_REUSEADDR makes connections lingering in TIME_WAIT after a server closed them not count,
    just as they do not stop the Go servers from binding the port again.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
