"""A small MQTT 5 subscriber on asyncio streams, for the `mqtt` source.

Why our own: through aiomqtt/paho a message cost ~175 µs of CPU (a properties object, several
recv calls and an event-loop wake-up per message), the source's largest cost. Here everything
that arrived is parsed from one buffer in bulk, and a batch's PUBACKs go out in one write after
its events were appended (bench/sources_mqtt.py measures the difference).

Only what a QoS 0/1 subscriber needs: CONNECT (username/password, keepalive, clean start,
session expiry, receive maximum), SUBSCRIBE/UNSUBSCRIBE, PUBLISH in, PUBACK out, PINGREQ and TLS
through asyncio's ssl. No topic aliases (we announce none, so the broker sends full topics).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import NamedTuple

READ_SIZE = 1 << 18
CLOSE_TIMEOUT_S = 2.0
PINGREQ = b"\xc0\x00"
# CONNACK / DISCONNECT reason codes worth a sentence (MQTT 5, 3.2.2.2)
REASONS = {
    0x01: "unacceptable protocol version (an MQTT 3.1.1 broker? ondo needs MQTT 5)",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x84: "unsupported protocol version (the broker must speak MQTT 5)",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8D: "keep alive timeout",
    0x8E: "session taken over (another client connected with the same client id)",
    0x8F: "topic filter invalid",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x9F: "connection rate exceeded",
}


class MqttError(ConnectionError):
    """The connection failed or the broker refused or broke it; the source reconnects."""


class Message(NamedTuple):
    """One PUBLISH received (a tuple: made per message, a third the cost of a dataclass)."""

    topic: str
    payload: bytes
    qos: int
    packet_id: int  # 0 for QoS 0


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def _reason(code: int) -> str:
    return f"{REASONS.get(code, 'refused')} (reason code 0x{code:02X})"


class Connection:
    """One MQTT 5 connection. Not safe for concurrent readers: one task reads (`batch`)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keepalive: int
    ) -> None:
        self._reader, self._writer, self._keepalive = reader, writer, keepalive
        self._buffer = bytearray()
        self._messages: list[Message] = []
        self._replies: dict[tuple[int, int], list[int]] = {}  # (packet type, id) -> codes
        self._next_id = 0
        self._heard = self._sent = time.monotonic()

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        client_id: str,
        username: str | None,
        password: str | None,
        clean_start: bool,
        session_expiry: int,
        receive_maximum: int,
        keepalive: int,
        tls: ssl.SSLContext | None,
        timeout: float,
        maximum_packet: int = 0,
    ) -> Connection:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, limit=READ_SIZE * 4
                )
        except TimeoutError:
            raise MqttError(f"connecting to {host}:{port} timed out after {timeout:g} s") from None
        except ConnectionRefusedError:
            raise MqttError(f"connecting to {host}:{port} was refused (no broker there?)") from None
        except OSError as exc:
            raise MqttError(f"connecting to {host}:{port}: {exc}") from None
        conn = cls(reader, writer, keepalive)
        flags = (0x02 if clean_start else 0) | (0x80 if username is not None else 0)
        flags |= 0x40 if password is not None else 0
        props = b"\x11" + session_expiry.to_bytes(4, "big")
        props += b"\x21" + receive_maximum.to_bytes(2, "big")
        if maximum_packet:  # the broker drops a larger message instead of sending it (3.1.2.11.4)
            props += b"\x27" + maximum_packet.to_bytes(4, "big")
        body = b"\x00\x04MQTT\x05" + bytes([flags]) + keepalive.to_bytes(2, "big")
        body += _varint(len(props)) + props + _text(client_id)
        if username is not None:
            body += _text(username)
        if password is not None:
            body += _text(password)
        try:
            async with asyncio.timeout(timeout):
                writer.write(_packet(0x10, body))
                first, packet = await conn._one_packet()
        except TimeoutError:
            writer.close()
            raise MqttError(f"{host}:{port} did not answer CONNECT within {timeout:g} s") from None
        except BaseException:
            writer.close()
            raise
        if first >> 4 != 2 or len(packet) < 2:
            writer.close()
            raise MqttError(f"{host}:{port} answered CONNECT with packet type {first >> 4}")
        if packet[1]:  # MQTT 5 success is 0; a 3.1.1-only broker answers 1
            writer.close()
            raise MqttError(f"{host}:{port} refused the connection: {_reason(packet[1])}")
        return conn

    async def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.write(b"\xe0\x00")  # DISCONNECT, normal: the session is kept
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):  # a TLS peer may not answer close_notify
                await self._writer.wait_closed()

    async def subscribe(self, filters: list[str], qos: int) -> list[int]:
        """Subscribes (retain handling 1: retained messages only for a new subscription);
        returns the broker's reason codes, one per filter (≥ 0x80 refused)."""
        body = b"".join(_text(f) + bytes([qos | 0x10]) for f in filters)
        return await self._request(0x82, 9, body)

    async def unsubscribe(self, filters: list[str]) -> list[int]:
        return await self._request(0xA2, 11, b"".join(_text(f) for f in filters))

    async def batch(self, most: int) -> list[Message]:
        """The messages received so far (at least one, at most `most`), in order."""
        while not self._messages:
            await self._read()
        taken, self._messages = self._messages[:most], self._messages[most:]
        return taken

    async def ack(self, messages: list[Message]) -> None:
        """PUBACKs for the QoS 1 messages, in the order received, as MQTT requires."""
        acks = b"".join(b"\x40\x02" + m.packet_id.to_bytes(2, "big") for m in messages if m.qos)
        if acks:
            self._write(acks)
            await self._writer.drain()

    async def _request(self, first: int, reply_type: int, payload: bytes) -> list[int]:
        self._next_id = self._next_id % 0xFFFF + 1
        key = (reply_type, self._next_id)
        self._write(_packet(first, self._next_id.to_bytes(2, "big") + b"\x00" + payload))
        while key not in self._replies:
            await self._read()
        return self._replies.pop(key)

    def _write(self, data: bytes) -> None:
        self._writer.write(data)
        self._sent = time.monotonic()

    async def _one_packet(self) -> tuple[int, bytes]:
        while True:
            found = _split(self._buffer, 0)
            if found is not None:
                first, start, end = found
                packet = bytes(self._buffer[start:end])
                del self._buffer[:end]
                return first, packet
            await self._fill()

    async def _fill(self) -> None:
        """Reads what arrived. The broker drops a client that sent nothing for 1.5 keepalives
        (QoS 0 messages are not acknowledged), so a PINGREQ goes out once we were silent for
        half of one; a broker silent for 1.5 keepalives is taken as gone."""
        half = self._keepalive / 2
        while True:
            now = time.monotonic()
            if now - self._sent >= half:
                self._write(PINGREQ)
            try:
                async with asyncio.timeout(max(0.01, half - (time.monotonic() - self._sent))):
                    data = await self._reader.read(READ_SIZE)
                break
            except TimeoutError:
                if time.monotonic() - self._heard > self._keepalive * 1.5:
                    raise MqttError("the broker stopped answering (keepalive)") from None
            except (OSError, ssl.SSLError) as exc:
                raise MqttError(f"the connection to the broker broke: {exc}") from None
        if not data:
            raise MqttError("the broker closed the connection")
        self._heard = time.monotonic()
        self._buffer += data

    async def _read(self) -> None:
        """Parses every complete packet buffered, reading first when there is none."""
        if _split(self._buffer, 0) is None:
            await self._fill()
        buf, pos, messages = self._buffer, 0, self._messages
        while (found := _split(buf, pos)) is not None:
            first, start, end = found
            kind = first >> 4
            if kind == 3:  # PUBLISH
                qos = (first >> 1) & 3
                n = int.from_bytes(buf[start : start + 2], "big")
                at = start + 2 + n
                topic = buf[start + 2 : at].decode("utf-8")
                packet_id = 0
                if qos:
                    if qos > 1:
                        raise MqttError("the broker sent a QoS 2 message to a QoS 1 subscription")
                    packet_id = int.from_bytes(buf[at : at + 2], "big")
                    at += 2
                length, at = _read_varint(buf, at)
                messages.append(Message(topic, bytes(buf[at + length : end]), qos, packet_id))
            elif kind in (9, 11):  # SUBACK, UNSUBACK
                packet_id = int.from_bytes(buf[start : start + 2], "big")
                length, at = _read_varint(buf, start + 2)
                self._replies[(kind, packet_id)] = list(buf[at + length : end])
            elif kind == 14:  # DISCONNECT
                code = buf[start] if end > start else 0
                raise MqttError(f"the broker disconnected: {_reason(code)}")
            elif kind != 13:  # PINGRESP is only a sign of life
                raise MqttError(f"the broker sent an unexpected packet (type {kind})")
            pos = end
        del buf[:pos]


def _read_varint(buf: bytearray, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 21:
            raise MqttError("the broker sent a malformed packet (length)")


def _split(buf: bytearray, pos: int) -> tuple[int, int, int] | None:
    """(first byte, body start, body end) of the complete packet at `pos`, or None."""
    size = len(buf)
    if size - pos < 2:
        return None
    value, shift, at = 0, 0, pos + 1
    while True:
        if at >= size:
            return None
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 21:
            raise MqttError("the broker sent a malformed packet (length)")
    end = at + value
    return (buf[pos], at, end) if end <= size else None
