"""The server's transport sends a response's head and body as one buffer, and loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from ondo.api.coalesce import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_a_head_and_its_body_leave_in_one_send() -> None:
    async def scenario() -> list[bytes]:
        inner = RecordingTransport()
        outer = CoalescingTransport(inner)
        outer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert inner.sent == []  # held back until the body
        outer.write(b'{"ok":true}')
        await asyncio.sleep(0)
        return inner.sent

    assert asyncio.run(scenario()) == [b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}']


def test_a_lone_write_leaves_at_the_loops_next_turn_and_close_sends_what_is_held() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], bool]:
        inner = RecordingTransport()
        outer = CoalescingTransport(inner)
        outer.write(b"100 Continue")
        await asyncio.sleep(0)
        after_turn = list(inner.sent)
        outer.write(memoryview(b"last words"))
        outer.close()
        return after_turn, inner.sent, inner.closed

    after_turn, sent, closed = asyncio.run(scenario())
    assert after_turn == [b"100 Continue"]
    assert sent == [b"100 Continue", b"last words"] and closed


def test_other_calls_pass_through_and_nothing_is_written_after_close() -> None:
    async def scenario() -> tuple[Any, list[bytes]]:
        inner = RecordingTransport()
        outer = CoalescingTransport(inner)
        peer = outer.get_extra_info("peername")
        outer.write(b"late")
        inner.closed = True  # the connection went away before the loop's next turn
        await asyncio.sleep(0)
        return peer, inner.sent

    peer, sent = asyncio.run(scenario())
    assert peer == ("127.0.0.1", 1) and sent == []
