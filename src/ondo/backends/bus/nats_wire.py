"""How events sit in the JetStream stream: subjects, headers, message ids, and pulls by hand.

Subject of an event: `{cluster}.ev.{namespace}.{h(id)}.{h(source)}`, where `h` is 8 hex digits
of BLAKE2b and the namespace is itself when it is made of letters, digits, '-' and '_'
(otherwise `~` and 16 hex digits of its hash, so it cannot meet a plain name). The stream
listens on `{cluster}.ev.>`.

Headers: `Nats-Msg-Id` (JetStream deduplication: a hash of namespace, source and id),
`Ondo-Received-At` (seconds since the epoch by the bus's clock) and `Ondo-Namespace`
(percent-encoded).

Pulls: nats-py's `fetch` long-polls when nothing is there; the bus wants "what is there now",
so `Cursor.pull` asks the consumer for a batch with `no_wait` and reads until the batch is full
or the server says there is no more (status 404 or 408).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from ondo.backends.bus.base import DEFAULT_NAMESPACE, StoredEvent
from ondo.errors import BusError
from ondo.events import CloudEvent

MSG_ID = "Nats-Msg-Id"
RECEIVED_AT = "Ondo-Received-At"
NAMESPACE = "Ondo-Namespace"
STATUS = "Status"
END_OF_BATCH = ("404", "408")  # no messages now / the no_wait batch was not filled
CURSOR_GONE = ("409", "503")  # consumer deleted or never there (e.g. NATS restarted)

_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _digest(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


def namespace_token(namespace: str) -> str:
    if _PLAIN_TOKEN.fullmatch(namespace):
        return namespace
    return "~" + _digest(namespace, 8)


def event_subject(root: str, namespace: str, id: str, source: str) -> str:
    return f"{root}.{namespace_token(namespace)}.{_digest(id, 4)}.{_digest(source, 4)}"


def id_filter(root: str, id: str, namespace: str | None) -> str:
    token = "*" if namespace is None else namespace_token(namespace)
    return f"{root}.{token}.{_digest(id, 4)}.*"


def namespace_filter(root: str, namespace: str | None) -> str:
    return f"{root}.>" if namespace is None else f"{root}.{namespace_token(namespace)}.>"


def headers(event: CloudEvent, namespace: str, received_at: float) -> dict[str, str]:
    key = json.dumps([namespace, event.source, event.id], ensure_ascii=False)
    return {
        MSG_ID: _digest(key, 16),
        RECEIVED_AT: repr(received_at),
        NAMESPACE: quote(namespace, safe=""),
    }


def stored_event(seq: int, msg: Msg, fallback_time: float) -> StoredEvent:
    hdrs = msg.headers or {}
    try:
        event = CloudEvent.decode(msg.data)
        received_at = float(hdrs.get(RECEIVED_AT, fallback_time))
    except ValueError as exc:
        raise BusError(
            f"message {seq} on {msg.subject!r} is not an ondo event ({exc}): "
            "only ondo may publish to its stream's subjects"
        ) from exc
    return StoredEvent(seq, event, received_at, unquote(hdrs.get(NAMESPACE, DEFAULT_NAMESPACE)))


def status_of(msg: Msg) -> str | None:
    return msg.headers.get(STATUS) if msg.headers else None


class CursorGone(Exception):
    """The cursor's consumer no longer exists on the server (deleted, expired, NATS restarted)."""


@dataclass
class Cursor:
    """An ephemeral pull consumer (no acks) and the inbox its batches come back to.

    Messages are taken by a subscription callback (no timer per message, as `next_msg` has);
    one pull at a time per cursor.
    """

    nc: Client
    stream: str
    name: str
    next_seq: int
    timeout_s: float
    inbox: Subscription | None = field(default=None, repr=False)
    _found: list[Msg] = field(default_factory=list, repr=False)
    _wanted: int = 0
    _done: asyncio.Future[None] | None = field(default=None, repr=False)

    async def pull(self, batch: int) -> list[Msg]:
        """Up to `batch` messages available now, in stream order (no waiting for new ones)."""
        if self.inbox is None:
            self.inbox = await self.nc.subscribe(self.nc.new_inbox(), cb=self._receive)
        self._found, self._wanted = [], batch
        self._done = done = asyncio.get_running_loop().create_future()
        request = json.dumps({"batch": batch, "no_wait": True}).encode()
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.name}"
        try:
            await self.nc.publish(subject, request, reply=self.inbox.subject)
            async with asyncio.timeout(self.timeout_s):
                await done
        finally:
            self._done = None
        found, self._found = self._found, []
        if found:
            self.next_seq = found[-1].metadata.sequence.stream + 1
        return found

    async def _receive(self, msg: Msg) -> None:
        done = self._done
        if done is None or done.done():
            return  # the answer to a pull that timed out
        status = status_of(msg)
        if status is None:
            self._found.append(msg)
            if len(self._found) >= self._wanted:
                done.set_result(None)
        elif status in END_OF_BATCH:
            done.set_result(None)
        elif status in CURSOR_GONE:
            done.set_exception(CursorGone(status))
        elif status != "100":  # 100: an idle heartbeat
            done.set_exception(
                BusError(f"JetStream answered a pull on {self.stream} with status {status}")
            )

    async def close(self) -> None:
        if self.inbox is not None:
            with contextlib.suppress(NatsError):
                await self.inbox.unsubscribe()
            self.inbox = None
