"""The platform's end of one worker's socket: length-prefixed frames over asyncio, bounded."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

FRAME = struct.Struct("<II")  # header length, body length (same layout as bootstrap.py)
MAX_REPLY_HEADER = 256 * 1024  # a Lambda-style error with a long stack trace fits easily
MAX_REPLY_BODY = 6 * 1024 * 1024  # the worker enforces this too; we never trust it


class WorkerGone(Exception):
    """The worker closed its socket or broke the protocol before answering."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def encode_frame(header: dict[str, Any], body: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return FRAME.pack(len(head), len(body)) + head + body


class WorkerChannel(asyncio.Protocol):
    """One request at a time; a reply is (header, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.pending: asyncio.Future[tuple[dict[str, Any], bytes]] | None = None
        self.closed_why: str | None = None
        self.protocol_error = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def request(
        self, header: dict[str, Any], body: bytes
    ) -> asyncio.Future[tuple[dict[str, Any], bytes]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[dict[str, Any], bytes]] = loop.create_future()
        if self.closed_why is not None or self.transport is None:
            future.set_exception(WorkerGone(self.closed_why or "not connected"))
            return future
        self.buffer.clear()
        self.pending = future
        self.transport.write(encode_frame(header, body))
        return future

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) < FRAME.size:
            return
        head_len, body_len = FRAME.unpack_from(self.buffer)
        if head_len > MAX_REPLY_HEADER or body_len > MAX_REPLY_BODY or self.pending is None:
            self._break("the worker sent a malformed or unexpected frame")
            return
        end = FRAME.size + head_len + body_len
        if len(self.buffer) < end:
            return
        if len(self.buffer) > end:
            self._break("the worker sent more than one reply")
            return
        try:
            header = json.loads(self.buffer[FRAME.size : FRAME.size + head_len])
        except ValueError:
            self._break("the worker sent a reply header that is not JSON")
            return
        if not isinstance(header, dict):
            self._break("the worker sent a reply header that is not an object")
            return
        body = bytes(self.buffer[FRAME.size + head_len : end])
        self.buffer.clear()
        pending, self.pending = self.pending, None
        if not pending.done():
            pending.set_result((header, body))

    def _break(self, why: str) -> None:
        self.closed_why = why
        self.protocol_error = True
        self.buffer.clear()
        if self.transport is not None:
            self.transport.abort()
        self._fail(why)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed_why is None:
            self.closed_why = "the worker closed its connection"
        self._fail(self.closed_why)

    def _fail(self, why: str) -> None:
        pending, self.pending = self.pending, None
        if pending is not None and not pending.done():
            pending.set_exception(WorkerGone(why))

    def close(self) -> None:
        if self.closed_why is None:
            self.closed_why = "closed by the platform"
        if self.transport is not None:
            self.transport.abort()


async def receive_hello(sock: socket.socket) -> int:
    """Wait for the worker's hello; return its pid as seen from here (SCM_CREDENTIALS)."""
    loop = asyncio.get_running_loop()
    fd = sock.fileno()
    while True:
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _resolve, readable)
        try:
            await readable
        finally:
            loop.remove_reader(fd)
        try:
            data, ancdata, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(12))
        except BlockingIOError:
            continue
        break
    if data != b"H":
        raise WorkerGone("the worker did not say hello (it exited or could not be forked)")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, _, _ = struct.unpack("3i", payload[:12])
            return int(pid)
    raise WorkerGone("the worker's hello carried no credentials")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
