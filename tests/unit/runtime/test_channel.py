"""The platform's end of a worker socket, against a real socket driven by the test."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct

import pytest

from ondo.runtime.channel import MAX_REPLY_BODY, WorkerChannel, WorkerGone


def _pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    return ours, theirs


def _hello(sock: socket.socket) -> None:
    creds = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
    sock.sendmsg([b"H"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])


async def _greeted() -> tuple[WorkerChannel, socket.socket]:
    """A channel whose worker (the returned socket) has said hello."""
    ours, theirs = _pair()
    channel = WorkerChannel(ours)
    _hello(theirs)
    await channel.hello
    return channel, theirs


def _frame(header: object, body: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<II", len(head), len(body)) + head + body


def _read_request(sock: socket.socket) -> tuple[dict[str, object], bytes]:
    # MSG_WAITALL: under load a frame may arrive in pieces, and a short read is not a frame.
    head_len, body_len = struct.unpack("<II", sock.recv(8, socket.MSG_WAITALL))
    head = sock.recv(head_len, socket.MSG_WAITALL)
    body = sock.recv(body_len, socket.MSG_WAITALL) if body_len else b""
    return json.loads(head), body


def test_hello_gives_the_pid_and_a_reply_may_arrive_in_pieces() -> None:
    async def scenario() -> None:
        ours, theirs = _pair()
        channel = WorkerChannel(ours)
        _hello(theirs)
        assert await channel.hello == os.getpid()
        reply = channel.request({"id": "r1"}, b'{"x": 1}')
        header, body = await asyncio.to_thread(_read_request, theirs)
        assert header == {"id": "r1"} and body == b'{"x": 1}'
        frame = _frame({"status": "succeeded"}, b'"result"')
        for start in range(0, len(frame), 5):
            theirs.send(frame[start : start + 5])
            await asyncio.sleep(0)
        assert await reply == ({"status": "succeeded"}, b'"result"')
        channel.close()
        theirs.close()

    asyncio.run(scenario())


def test_a_large_request_is_written_completely() -> None:
    async def scenario() -> None:
        channel, theirs = await _greeted()
        event = b"x" * (5 * 1024 * 1024)
        channel.request({"id": "big"}, event)
        _, body = await asyncio.to_thread(_read_request, theirs)
        assert body == event
        channel.close()
        theirs.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "bad",
    [
        struct.pack("<II", 5, 0) + b"nojsn",
        struct.pack("<II", 2, 0) + b"[]",
        struct.pack("<II", 10, MAX_REPLY_BODY + 1),
        _frame({"status": "succeeded"}) + b"extra",
    ],
    ids=["not-json", "not-an-object", "oversized", "trailing-data"],
)
def test_garbage_from_the_worker_is_a_protocol_error(bad: bytes) -> None:
    async def scenario() -> None:
        channel, theirs = await _greeted()
        reply = channel.request({"id": "r"}, b"{}")
        theirs.sendall(bad)
        with pytest.raises(WorkerGone):
            await reply
        assert channel.protocol_error is True
        theirs.close()

    asyncio.run(scenario())


def test_closing_the_socket_fails_the_pending_request_without_protocol_error() -> None:
    async def scenario() -> None:
        channel, theirs = await _greeted()
        reply = channel.request({"id": "r"}, b"{}")
        theirs.close()
        with pytest.raises(WorkerGone, match="closed"):
            await reply
        assert channel.protocol_error is False
        with pytest.raises(WorkerGone):
            await channel.request({"id": "again"}, b"{}")

    asyncio.run(scenario())


def test_a_missing_hello_fails_the_hello() -> None:
    async def scenario() -> None:
        ours, theirs = _pair()
        channel = WorkerChannel(ours)
        theirs.close()
        with pytest.raises(WorkerGone, match="hello"):
            await channel.hello

    asyncio.run(scenario())


def test_spinning_takes_a_prompt_reply_and_gives_up_on_a_late_one() -> None:
    """`spin` returns with the reply when the worker answers within the budget, and within
    about the budget (the reply still pending, for the event loop) when it does not."""

    def answer(sock: socket.socket) -> None:
        _read_request(sock)
        sock.send(_frame({"status": "succeeded"}, b"1"))

    async def scenario() -> None:
        channel, theirs = await _greeted()
        answering = asyncio.get_running_loop().run_in_executor(None, answer, theirs)
        reply = channel.request({"id": "fast"}, b"{}")
        channel.spin(5.0)  # the peer answers at once: spin returns as soon as it has
        assert reply.done() and reply.result() == ({"status": "succeeded"}, b"1")
        await answering

        late = channel.request({"id": "late"}, b"{}")
        channel.spin(0.01)  # returning at all is the point: it gave up on the late reply
        assert not late.done()
        _read_request(theirs)
        theirs.send(_frame({"status": "succeeded"}, b"2"))
        assert await late == ({"status": "succeeded"}, b"2")  # the loop takes it from here
        channel.close()
        theirs.close()

    asyncio.run(scenario())
