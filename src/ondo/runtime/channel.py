"""The platform's end of one worker's socket: length-prefixed frames, bounded, on the event loop.

Driven by add_reader/add_writer directly (no transport objects): a warm invocation is one
send and one or two recv calls. The first message is the worker's hello, which carries its
pid through SCM_CREDENTIALS (translated by the kernel into our pid namespace).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

FRAME = struct.Struct("<II")  # header length, body length (same layout as bootstrap.py)
MAX_REPLY_HEADER = 256 * 1024  # a Lambda-style error with a long stack trace fits easily
MAX_REPLY_BODY = 6 * 1024 * 1024  # the worker enforces this too; we never trust it
RECV_CHUNK = 256 * 1024

Reply = tuple[dict[str, Any], bytes]

# One receive buffer per thread, reused: `recv(RECV_CHUNK)` would allocate RECV_CHUNK bytes per
# call, which malloc serves with mmap and munmap, and a munmap in a process with threads costs a
# TLB shootdown on every CPU they ran on (measured: a third of a warm round trip).
_scratch = threading.local()


def _receive_buffer() -> memoryview:
    view: memoryview | None = getattr(_scratch, "view", None)
    if view is None:
        view = _scratch.view = memoryview(bytearray(RECV_CHUNK))
    return view


class WorkerGone(Exception):
    """The worker closed its socket or broke the protocol before answering."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def encode_frame(header: dict[str, Any], body: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return FRAME.pack(len(head), len(body)) + head + body


class WorkerChannel:
    """One request at a time; `hello` resolves to the worker's pid, `request` to its reply."""

    def __init__(self, sock: socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        self.sock = sock
        self.fd = sock.fileno()
        self.buffer = bytearray()
        self.outgoing = memoryview(b"")
        self.pending: asyncio.Future[Any] = self.loop.create_future()  # the hello first
        self.greeted = False
        self.closed_why: str | None = None
        self.protocol_error = False
        self.on_close: Callable[[], None] | None = None  # told when the socket closes
        sock.setblocking(False)
        self.loop.add_reader(self.fd, self._on_readable)

    @property
    def hello(self) -> asyncio.Future[int]:
        return self.pending

    def request(self, header: dict[str, Any], body: bytes) -> asyncio.Future[Reply]:
        future: asyncio.Future[Reply] = self.loop.create_future()
        if self.closed_why is not None:
            future.set_exception(WorkerGone(self.closed_why))
            return future
        self.buffer.clear()
        self.pending = future
        self._send(encode_frame(header, body))
        return future

    def spin(self, budget_s: float) -> None:
        """Poll for the pending reply for up to `budget_s` (non-blocking reads), leaving what
        is not there by then to the event loop. For replies due in microseconds: waking a loop
        asleep in epoll costs more than the poll (see pool.SPIN_BUDGET_S)."""
        deadline = time.perf_counter() + budget_s
        while not self.pending.done() and self.closed_why is None and not self.outgoing:
            self._on_readable()
            if time.perf_counter() >= deadline:
                return

    def _send(self, data: bytes) -> None:
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._close(f"the worker's socket failed: {exc.strerror}")
            return
        if sent < len(data):
            self.outgoing = memoryview(data)[sent:]
            self.loop.add_writer(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        try:
            sent = self.sock.send(self.outgoing)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(f"the worker's socket failed: {exc.strerror}")
            return
        self.outgoing = self.outgoing[sent:]
        if not self.outgoing:
            self.loop.remove_writer(self.fd)

    def _on_readable(self) -> None:
        if not self.greeted:
            self._read_hello()
            return
        scratch = _receive_buffer()
        try:
            size = self.sock.recv_into(scratch)
        except BlockingIOError:
            return
        except ConnectionResetError:
            size = 0
        except OSError as exc:
            self._close(f"the worker's socket failed: {exc.strerror}")
            return
        if not size:
            self._close("the worker closed its connection")
            return
        self.buffer += scratch[:size]
        self._parse()

    def _read_hello(self) -> None:
        try:
            data, ancdata, _, _ = self.sock.recvmsg(16, socket.CMSG_SPACE(12))
        except BlockingIOError:
            return
        except OSError:
            data, ancdata = b"", []
        pid = credentials_pid(ancdata) if data == b"H" else None
        if pid is None:
            self._close("the worker did not say hello (it exited or could not be forked)")
            return
        self.greeted = True
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
        self._resolve(pid)

    def _parse(self) -> None:
        if self.pending.done():  # even a partial frame: nothing may arrive between requests
            self._break("data nobody asked for")
            return
        if len(self.buffer) < FRAME.size:
            return
        head_len, body_len = FRAME.unpack_from(self.buffer)
        if head_len > MAX_REPLY_HEADER or body_len > MAX_REPLY_BODY:
            self._break(f"a frame of {head_len} + {body_len} bytes, more than allowed")
            return
        end = FRAME.size + head_len + body_len
        if len(self.buffer) < end:
            return
        if len(self.buffer) > end:
            self._break("data nobody asked for")
            return
        header = _header(self.buffer[FRAME.size : FRAME.size + head_len])
        if header is None:
            self._break("a reply header that is not a UTF-8 JSON object")
            return
        body = bytes(self.buffer[FRAME.size + head_len : end])
        self.buffer.clear()
        self._resolve((header, body))

    def _resolve(self, value: Any) -> None:
        if not self.pending.done():
            self.pending.set_result(value)

    def violated(self, why: str) -> None:
        """The worker broke the protocol in what it sent (found by the reader of a reply)."""
        self._break(why)

    def _break(self, why: str) -> None:
        self.protocol_error = True
        self._close(why)

    def _close(self, why: str) -> None:
        first = self.closed_why is None
        if first:
            self.closed_why = why
            self.loop.remove_reader(self.fd)
            self.loop.remove_writer(self.fd)
            self.sock.close()
        self.buffer.clear()
        if not self.pending.done():
            self.pending.set_exception(WorkerGone(self.closed_why or why))
        if first and self.on_close is not None:
            self.on_close()

    def close(self, why: str = "closed by the platform") -> None:
        self._close(why)


def _header(data: bytearray) -> dict[str, Any] | None:
    """A frame's header, or None if it is not a UTF-8 JSON object (json.loads alone would also
    take UTF-16 and 32, and lets RecursionError out for deeply nested arrays)."""
    try:
        header = json.loads(data.decode())
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return header if isinstance(header, dict) else None


def encodable(text: str) -> str:
    """Text from a sandbox as the API can always answer it: a lone surrogate (JSON lets a
    `\\ud800` escape through) would make every UTF-8 encoding of it fail."""
    return text.encode("utf-8", "replace").decode()


def credentials_pid(ancdata: list[Any]) -> int | None:
    """The sender's pid from SCM_CREDENTIALS ancillary data (None if there is none or it is
    not a pid: 0 written to cgroup.procs would move the platform itself)."""
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
            pid = int(struct.unpack("3i", payload[:12])[0])
            return pid if pid > 0 else None
    return None
