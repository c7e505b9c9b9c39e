"""One send per response: uvicorn writes a response's head and its body with two send calls.

Over loopback and on virtual machines each send costs the server a system call and the
receiving side a wake-up, and a small JSON answer is all head and body. The server's HTTP
protocol therefore hands uvicorn a transport that holds a write back until the next one, and
sends both as one buffer (a user-space TCP_CORK): a head and its body leave in one send. A
write that no other follows is sent at the loop's next turn; nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """Wraps a transport: `write` buffers until the loop's next turn; the rest is the same."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._pending:  # a head and its body: sent together, now
            self._pending.append(bytes(data))
            self._flush()
            return
        self._pending.append(bytes(data))
        self._loop.call_soon(self._flush)  # a lone write waits one turn of the loop at most

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        self._flush()  # what was written before close is sent before the FIN
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading, …
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a CoalescingTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # Duck-typed: it has every method uvicorn calls, the rest passes through.
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport)))
