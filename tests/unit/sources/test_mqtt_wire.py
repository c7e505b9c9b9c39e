"""The MQTT 5 subscriber's packet handling, against a peer on a local socket that writes the
broker's side byte by byte (so that every packet arrives split at every possible place)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from ondo.sources import mqtt_wire
from ondo.sources.mqtt_wire import Connection, Message, MqttError

CONNACK_OK = b"\x20\x03\x00\x00\x00"  # session not present, success, no properties


def publish(topic: str, payload: bytes, packet_id: int | None) -> bytes:
    """A PUBLISH packet as a broker sends it (QoS 1 when packet_id is given)."""
    raw = topic.encode()
    body = len(raw).to_bytes(2, "big") + raw
    if packet_id is not None:
        body += packet_id.to_bytes(2, "big")
    body += b"\x00" + payload  # no properties
    first = 0x32 if packet_id is not None else 0x30
    return bytes([first]) + mqtt_wire._varint(len(body)) + body


Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def with_peer(peer: Peer, body: Callable[[int], Awaitable[None]]) -> None:
    done: list[asyncio.Future[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        finished = asyncio.get_running_loop().create_future()
        done.append(finished)
        try:
            await peer(reader, writer)
        finally:
            writer.close()
            finished.set_result(None)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await body(port)
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.gather(*done)


async def connect(port: int, keepalive: int = 30) -> Connection:
    return await Connection.open(
        "127.0.0.1",
        port,
        client_id="c1",
        username="u",
        password="p",
        clean_start=False,
        session_expiry=60,
        receive_maximum=100,
        keepalive=keepalive,
        tls=None,
        timeout=5.0,
        maximum_packet=1 << 20,
    )


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, await reader.readexactly(length)


async def dribble(writer: asyncio.StreamWriter, data: bytes) -> None:
    for i in range(len(data)):
        writer.write(data[i : i + 1])
        await writer.drain()
        await asyncio.sleep(0)


def test_connect_sends_credentials_and_messages_split_anywhere_are_read_whole() -> None:
    seen: dict[str, tuple[int, bytes] | bytes] = {}
    big = b"x" * 300  # a remaining length of two bytes
    sent = [
        publish("a/b", b'{"n": 1}', 7),
        publish("a/c", big, 8),
        publish("a/d", b"", None),
    ]

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first, connect_body = await read_packet(reader)
        seen["connect"] = (first, connect_body)
        await dribble(writer, CONNACK_OK + b"".join(sent))
        acks = await reader.readexactly(8)
        seen["acks"] = acks
        await reader.read()  # until the client closes

    async def body(port: int) -> None:
        conn = await connect(port)
        got: list[Message] = []
        while len(got) < 3:
            got += await conn.batch(10)
        assert got == [
            Message("a/b", b'{"n": 1}', 1, 7),
            Message("a/c", big, 1, 8),
            Message("a/d", b"", 0, 0),
        ]
        await conn.ack(got)
        await conn.close()

    asyncio.run(with_peer(peer, body))
    connect_packet = seen["connect"]
    assert isinstance(connect_packet, tuple)
    first, connect_body = connect_packet
    assert first == 0x10
    assert connect_body.startswith(b"\x00\x04MQTT\x05")
    assert connect_body[7] == 0x80 | 0x40  # user name and password, clean start off
    assert b"\x27\x00\x10\x00\x00" in connect_body  # Maximum Packet Size: 1 MiB
    assert connect_body.endswith(b"\x00\x02c1\x00\x01u\x00\x01p")
    assert seen["acks"] == b"\x40\x02\x00\x07\x40\x02\x00\x08"  # QoS 1 only, in order


def test_a_batch_holds_at_most_what_was_asked_in_order() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK + b"".join(publish("t", str(n).encode(), n + 1) for n in range(5)))
        await reader.read()

    async def body(port: int) -> None:
        conn = await connect(port)
        first = await conn.batch(2)
        rest: list[Message] = []
        while len(rest) < 3:
            rest += await conn.batch(10)
        assert [m.payload for m in first + rest] == [b"0", b"1", b"2", b"3", b"4"]
        assert len(first) == 2
        await conn.close()

    asyncio.run(with_peer(peer, body))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"\x20\x03\x00\x86\x00", "bad user name or password (reason code 0x86)"),
        (b"\x20\x03\x00\x84\x00", "unsupported protocol version"),
        (b"\x20\x02\x00\x01", "an MQTT 3.1.1 broker? ondo needs MQTT 5"),
        (b"\x90\x03\x00\x01\x00", "answered CONNECT with packet type 9"),
    ],
)
def test_a_refused_connect_says_why(answer: bytes, message: str) -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(answer)
        await reader.read()

    async def body(port: int) -> None:
        with pytest.raises(MqttError) as caught:
            await connect(port)
        assert message in str(caught.value)

    asyncio.run(with_peer(peer, body))


def test_subscribe_returns_the_reason_codes_while_messages_arrive_first() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK + publish("queued/while/away", b"1", 1))
        first, body = await read_packet(reader)
        assert first == 0x82
        assert body[3:] == b"\x00\x03a/b\x11\x00\x03c/d\x11"  # QoS 1, retain handling 1
        writer.write(b"\x90\x05" + body[:2] + b"\x00\x01\x87")  # SUBACK: granted 1, refused
        await reader.read()

    async def body(port: int) -> None:
        conn = await connect(port)
        assert await conn.subscribe(["a/b", "c/d"], 1) == [0x01, 0x87]
        assert [m.topic for m in await conn.batch(10)] == ["queued/while/away"]
        await conn.close()

    asyncio.run(with_peer(peer, body))


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (b"", "the broker closed the connection"),
        (b"\xe0\x02\x8e\x00", "session taken over"),
        (b"\x34\x05\x00\x01t\x00\x01", "QoS 2"),
    ],
)
def test_a_broken_connection_raises_saying_why(sent: bytes, message: str) -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK + sent)
        await writer.drain()
        writer.close()

    async def body(port: int) -> None:
        conn = await connect(port)
        with pytest.raises(MqttError, match=message):
            await conn.batch(10)
        await conn.close()

    asyncio.run(with_peer(peer, body))


def test_a_quiet_connection_is_pinged() -> None:
    pinged = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        first, _ = await read_packet(reader)
        assert first == 0xC0
        pinged.set()
        writer.write(b"\xd0\x00" + publish("t", b"after the ping", None))
        await reader.read()

    async def body(port: int) -> None:
        conn = await connect(port, keepalive=1)
        assert [m.payload for m in await conn.batch(10)] == [b"after the ping"]
        assert pinged.is_set()
        await conn.close()

    asyncio.run(with_peer(peer, body))
