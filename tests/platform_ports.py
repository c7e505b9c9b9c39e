"""Ports for tests: one nothing listens on (connections to it are refused)."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago; nothing of the test listens there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
