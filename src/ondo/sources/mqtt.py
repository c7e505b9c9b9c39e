"""The `mqtt` source: subscriptions on an MQTT broker, each message one CloudEvent.

```yaml
sources:
  fitbit:
    kind: mqtt
    url: mqtt://127.0.0.1:1883           # mqtts:// for TLS; mqtt://user:password@host:port
    topics:
      - topic: "fitbit/{subject}/bp"     # {subject} -> subject, {type} -> type, {x} -> $x
        type: health.blood_pressure      # the JSON payload becomes `data`
```

Delivery is at least once, from the broker to the bus: ondo subscribes with QoS 1 on a
persistent MQTT 5 session (clean start off, a session expiry), and acknowledges each message only
after its event was appended. Messages published while ondo was away (within the session's
expiry and the broker's queue limit) arrive when it reconnects; a message whose event was
appended but whose acknowledgement was lost in a crash arrives again and becomes a second event
with a new id, since MQTT gives a message no identity that outlives a session.

Messages arriving together are appended in one batch (`ctx.emit_many`), so the cost of a durable
append is shared. A payload that cannot become an event (not JSON, not UTF-8, too large) is a
`ctx.problem`: counted, shown by `ondo sources show`, acknowledged so that it does not come back.

The MQTT client is our own (`mqtt_wire`, MQTT 5 on asyncio streams): through aiomqtt/paho half
of the source's CPU went into the client, one message at a time; ours parses what arrived in bulk
and acknowledges a batch in one write (docs/sources/mqtt.md, Performance).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urlsplit

from ondo import boundedjson
from ondo.durations import parse_duration
from ondo.errors import DurationError, EventError, OndoError, PayloadTooLarge
from ondo.events import DEFAULT_MAX_EVENT_BYTES, CloudEvent, EventShape, format_time
from ondo.ids import uuid7, uuid7_many
from ondo.sources import mqtt_wire
from ondo.sources.base import Settings, SourceContext, Where, no_unknown_keys
from ondo.sources.http_subject import render_subject, template_problem
from ondo.sources.mqtt_topics import (
    TOPIC_EXTENSION,
    Attributes,
    TemplateError,
    TopicTemplate,
    attributes,
    overlap,
)

if TYPE_CHECKING:
    from ondo.backends.store.repositories.sources import StoredSource

KEYS = ("url", "client_id", "qos", "topics", "type_prefix", "payload", "session_expiry", "ca_file")
TOPIC_KEYS = ("topic", "type", "payload", "subject")
PAYLOADS = ("json", "text", "binary")
CONTENT_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "binary": "application/octet-stream",
}
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_SESSION_EXPIRY_S = 86400
MAX_SESSION_EXPIRY_S = 0xFFFFFFFE  # 0xFFFFFFFF would mean "never expires" to the broker
MAX_TOPICS = 1000
MAX_CLIENT_ID = 128
MAX_BATCH = 1000  # messages appended together at most
MAX_KNOWN_TOPICS = 10_000  # topics whose attributes are remembered (forgotten all at once)
# Unacknowledged messages the broker may send ahead (MQTT 5 Receive Maximum; Mosquitto's own
# default window is 20, which would cap a source at 20 messages per append).
RECEIVE_MAXIMUM = 2 * MAX_BATCH
CONNECT_TIMEOUT_S = 10.0
KEEPALIVE_S = 30
# Asked of the broker at CONNECT: a larger message is dropped by it (Mosquitto logs it) instead
# of being read into memory. Up to this size a message too large for an event (256 KiB by
# default) still arrives and is shown as a problem of the source.
MAXIMUM_PACKET = 4 * DEFAULT_MAX_EVENT_BYTES
STATE_CLIENT_ID = "client_id"
STATE_FILTERS = "filters"
PAYLOAD_LIMITS = boundedjson.JsonLimits(max_bytes=None)  # the broker bounded the size


class MqttKind:
    name = "mqtt"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        no_unknown_keys(settings, KEYS, at)
        url = _url(settings.get("url"), at)
        payload = _payload(settings.get("payload", "json"), ("payload",), at)
        type_prefix = _type_prefix(settings.get("type_prefix"), at)
        topics = _topics(settings.get("topics"), payload, at)
        return {
            "url": url,
            "client_id": _client_id(settings.get("client_id"), at),
            "qos": _qos(settings.get("qos", 1), at),
            "session_expiry": _session_expiry(settings.get("session_expiry"), at),
            "type_prefix": type_prefix,
            "payload": payload,
            "ca_file": _ca_file(settings.get("ca_file"), url, at),
            "topics": topics,
        }

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        spec = source.spec
        mapper = Mapper.from_spec(source.name, spec)
        client_id = spec["client_id"] or await _stable_client_id(ctx)
        conn = await _connect(spec, client_id)
        try:
            await _subscribe(conn, spec, mapper, ctx)
            where = urlsplit(spec["url"])
            ctx.connected(f"{where.scheme}://{where.hostname}:{_port(where)}, {_topics_n(mapper)}")
            await _pump(conn, mapper, ctx)
        finally:
            await conn.close()


KIND = MqttKind()


# --- validation ----------------------------------------------------------------------------


def _url(value: Any, at: Where) -> str:
    if not isinstance(value, str) or not value:
        raise at.error(("url",), "url is required: mqtt://host:port or mqtts://host:port")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise at.error(("url",), f"{exc}; write mqtt://host:port") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise at.error(("url",), f"scheme must be mqtt:// or mqtts://, got {parts.scheme!r}://")
    if not parts.hostname:
        raise at.error(("url",), "url names no host; write mqtt://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise at.error(("url",), "url takes no path, query or fragment: mqtt://host:port")
    if port == 0:
        raise at.error(("url",), "port 0 is not a port; leave it out for the default")
    return value


def _port(parts: SplitResult) -> int:
    return parts.port or DEFAULT_PORTS[parts.scheme]


def _client_id(value: Any, at: Where) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_CLIENT_ID
        or not value.isprintable()
        or " " in value
    ):
        raise at.error(
            ("client_id",),
            f"client_id is 1 to {MAX_CLIENT_ID} printable characters without spaces;"
            " leave it out for one derived from the source's name",
        )
    return value


def _qos(value: Any, at: Where) -> int:
    if value not in (0, 1) or isinstance(value, bool):
        raise at.error(
            ("qos",),
            f"qos must be 1 (at least once, the default) or 0 (at most once), got {value!r};"
            " QoS 2 would not make delivery exactly once, as an event appended before a crash"
            " is delivered again",
        )
    return int(value)


def _session_expiry(value: Any, at: Where) -> int:
    if value is None:
        return DEFAULT_SESSION_EXPIRY_S
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise DurationError(f"duration {value!r} is not understood")
        seconds = (
            float(value) if not isinstance(value, str) else parse_duration(value, bare_seconds=True)
        )
    except DurationError as exc:
        raise at.error(("session_expiry",), f"{exc} (0 ends the session on disconnect)") from None
    if not 0 <= seconds <= MAX_SESSION_EXPIRY_S:
        raise at.error(("session_expiry",), f"must be 0 to {MAX_SESSION_EXPIRY_S} seconds")
    return int(seconds)


def _type_prefix(value: Any, at: Where) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or not value.strip(".") or value != value.strip(". "):
        raise at.error(
            ("type_prefix",),
            "type_prefix is text such as `health` (joined with a dot: {type} = bp ->"
            " health.bp), without leading or trailing dots or spaces",
        )
    return value


def _payload(value: Any, path: tuple[str | int, ...], at: Where) -> str:
    if value not in PAYLOADS:
        raise at.error(
            path,
            f"payload must be json (into data), text (a UTF-8 string into data) or binary"
            f" (bytes into data_base64), got {value!r}",
        )
    return str(value)


def _ca_file(value: Any, url: str, at: Where) -> str | None:
    if value is None:
        return None
    if not url.startswith("mqtts:"):
        raise at.error(("ca_file",), "ca_file is for mqtts:// URLs (TLS)")
    if not isinstance(value, str) or not value:
        raise at.error(("ca_file",), "ca_file is the path of a PEM file of CA certificates")
    path = Path(value) if Path(value).is_absolute() else at.root / value
    if not path.is_file():
        raise at.error(("ca_file",), f"no such file: {path}")
    return str(path)


def _topics(value: Any, payload: str, at: Where) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise at.error(
            ("topics",),
            'topics is a non-empty list such as [{topic: "fitbit/{subject}/bp",'
            " type: health.blood_pressure}]",
        )
    if len(value) > MAX_TOPICS:
        raise at.error(("topics",), f"at most {MAX_TOPICS} topics per source")
    topics = [_topic(item, index, payload, at) for index, item in enumerate(value)]
    templates = [TopicTemplate.parse(t["topic"]) for t in topics]
    for i, a in enumerate(templates):
        for j in range(i):
            if overlap(a, templates[j]):
                raise at.error(
                    ("topics", i, "topic"),
                    f"{a.template!r} and topics[{j}] {templates[j].template!r} can match the"
                    " same topic, so which one names the event would be a guess; make them"
                    " distinct",
                )
    return topics


def _topic(item: Any, index: int, payload: str, at: Where) -> dict[str, Any]:
    path: tuple[str | int, ...] = ("topics", index)
    if isinstance(item, str):
        item = {"topic": item}
    if not isinstance(item, dict):
        raise at.error(path, 'each topic is a mapping: {topic: "a/{subject}/b", type: x.y}')
    for key in item:
        if key not in TOPIC_KEYS:
            raise at.error((*path, key), f"unknown key {key!r}; allowed: {', '.join(TOPIC_KEYS)}")
    text = item.get("topic")
    if not isinstance(text, str):
        raise at.error(
            (*path, "topic"), 'topic is required: a topic filter such as "a/{subject}/b"'
        )
    try:
        template = TopicTemplate.parse(text)
    except TemplateError as exc:
        raise at.error((*path, "topic"), str(exc)) from None
    type_ = item.get("type")
    if type_ is not None and (not isinstance(type_, str) or not type_.strip()):
        raise at.error((*path, "type"), "type is the events' type such as health.blood_pressure")
    if type_ is not None and "type" in template.fields:
        raise at.error(
            (*path, "type"), "the topic's {type} field already gives the type; remove one"
        )
    kind = _payload(item.get("payload", payload), (*path, "payload"), at)
    topic: dict[str, Any] = {"topic": text, "type": type_, "payload": kind}
    subject = _subject(item.get("subject"), template, kind, (*path, "subject"), at)
    if subject is not None:  # only when given: specs deployed before it stay equal
        topic["subject"] = subject
    return topic


def _subject(
    value: Any, template: TopicTemplate, payload: str, path: tuple[str | int, ...], at: Where
) -> str | None:
    """A `subject:` template (topic fields, `{payload.FIELD}`): the only way a message's
    payload can name its event's subject."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise at.error(path, 'subject must be a template such as "{device}" or "{payload.user}"')
    if "subject" in template.fields:
        raise at.error(path, "the topic's {subject} field already gives the subject; remove one")
    fields = tuple(f for f in template.fields if f != "type")
    why = template_problem(value, fields, "payload", "the topic")
    if why is None and payload != "json" and "{payload." in value:
        why = "takes {payload.FIELD} from a JSON payload only (this topic's payload is not json)"
    if why is not None:
        raise at.error(path, f"subject {value!r} {why}")
    return value


def _topics_n(mapper: Mapper) -> str:
    n = len(mapper.routes)
    return f"{n} topic" if n == 1 else f"{n} topics"


# --- messages to events --------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    template: TopicTemplate
    type: str | None
    payload: str
    subject: str | None = None  # a `subject:` template; else the topic's {subject}, if any


@dataclass(frozen=True)
class _Topic:
    """What every message on one topic shares: its route, attributes and event shape."""

    route: Route
    found: Attributes
    shape: EventShape


@dataclass(frozen=True)
class Mapper:
    """Turns (topic, payload) into an event, as the source's validated settings say."""

    source: str
    routes: tuple[Route, ...]
    type_prefix: str
    _known: dict[str, _Topic] = field(default_factory=dict, compare=False, repr=False)
    _stamp: list[tuple[float, datetime, str]] = field(
        default_factory=list, compare=False, repr=False
    )

    @classmethod
    def from_spec(cls, source: str, spec: Mapping[str, Any]) -> Mapper:
        routes = tuple(
            Route(TopicTemplate.parse(t["topic"]), t["type"], t["payload"], t.get("subject"))
            for t in spec["topics"]
        )
        return cls(source, routes, spec["type_prefix"])

    @property
    def filters(self) -> list[str]:
        return [route.template.filter for route in self.routes]

    def event(self, topic: str, payload: bytes, now: float, id: str | None = None) -> CloudEvent:
        """The event for one message, with `id` (else a new one); ValueError (or an OndoError)
        saying why there is none."""
        known = self._known.get(topic)
        if known is None:  # a topic's route, attributes and event shape are worked out once
            known = self._topic(topic)
            if len(self._known) >= MAX_KNOWN_TOPICS:
                self._known.clear()
            self._known[topic] = known
        data = _data(payload, known.route.payload) if payload else None
        route, found = known.route, known.found
        if data is None or route.subject is not None:  # no data, or a subject per message
            return CloudEvent(
                id=id or uuid7(),
                source=self.source,
                type=found.type,
                subject=_subject_of(route, found, data),
                time=datetime.fromtimestamp(now, UTC),
                datacontenttype=CONTENT_TYPES[route.payload] if data is not None else None,
                data=data,
                extensions=found.extensions,
            )
        _, when, when_text = self._time(now)
        return known.shape.event(id or uuid7(), when, when_text, data)

    def _time(self, now: float) -> tuple[float, datetime, str]:
        """`now` as a datetime and in text, made once for the messages of a batch."""
        if not self._stamp or self._stamp[0][0] != now:
            when = datetime.fromtimestamp(now, UTC)
            self._stamp[:] = [(now, when, format_time(when))]
        return self._stamp[0]

    def _topic(self, topic: str) -> _Topic:
        for route in self.routes:
            fields = route.template.match(topic)
            if fields is not None:
                found = attributes(fields, topic, route.type, self.type_prefix)
                shape = EventShape(
                    source=self.source,
                    type=found.type,
                    subject=found.subject,
                    datacontenttype=CONTENT_TYPES[route.payload],
                    extensions=found.extensions,
                )
                return _Topic(route, found, shape)
        raise ValueError("it matches none of the source's topics (a subscription left over?)")


def _subject_of(route: Route, found: Attributes, data: Any) -> str | None:
    """The topic's {subject}, or what the route's `subject:` template makes of the topic's
    fields and the payload (ValueError naming a missing field)."""
    if route.subject is None:
        return found.subject
    return render_subject(route.subject, found.extensions, data, "payload")


def _data(payload: bytes, kind: str) -> Any:
    if kind == "binary":
        return payload
    if kind == "text":
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"its payload is not UTF-8 text (byte {exc.start}); set payload: binary"
                " to take any bytes"
            ) from None
    try:
        return boundedjson.loads(payload, "its payload", PAYLOAD_LIMITS)
    except OndoError as exc:
        raise ValueError(f"{exc}; publish JSON, or set payload: text or binary") from None


# --- the connection ------------------------------------------------------------------------


async def _connect(spec: Mapping[str, Any], client_id: str) -> mqtt_wire.Connection:
    where = urlsplit(spec["url"])
    tls = None
    if where.scheme == "mqtts":
        tls = ssl.create_default_context(cafile=spec["ca_file"])
    return await mqtt_wire.Connection.open(
        where.hostname or "",
        _port(where),
        client_id=client_id,
        username=unquote(where.username) if where.username is not None else None,
        password=unquote(where.password) if where.password is not None else None,
        clean_start=spec["session_expiry"] == 0,  # keep the broker's session across runs
        session_expiry=spec["session_expiry"],
        receive_maximum=RECEIVE_MAXIMUM,
        keepalive=KEEPALIVE_S,
        tls=tls,
        timeout=CONNECT_TIMEOUT_S,
        maximum_packet=MAXIMUM_PACKET,
    )


async def _stable_client_id(ctx: SourceContext) -> str:
    """One client id per source, kept in its state: the same on every run (so the broker keeps
    the session) and unlike another ondo's source of the same name on a shared broker."""
    saved = (await ctx.state()).get(STATE_CLIENT_ID)
    if saved:
        return saved
    made = f"ondo-{ctx.namespace}-{ctx.name}-{uuid.uuid4().hex[:8]}"
    await ctx.save_state(STATE_CLIENT_ID, made)
    return made


async def _subscribe(
    conn: mqtt_wire.Connection, spec: Mapping[str, Any], mapper: Mapper, ctx: SourceContext
) -> None:
    wanted = mapper.filters
    # The session outlives deploys: drop what an earlier version of the source subscribed to.
    before = json.loads((await ctx.state()).get(STATE_FILTERS, "[]"))
    stale = [f for f in before if f not in wanted]
    if stale:
        await conn.unsubscribe(stale)
    codes = await conn.subscribe(wanted, spec["qos"])
    refused = [
        f"{f} (reason code 0x{code:02X})"
        for f, code in zip(wanted, codes, strict=False)
        if code >= 0x80
    ]
    if refused:
        raise ConnectionRefusedError(f"the broker refused to subscribe to {', '.join(refused)}")
    if before != wanted:
        await ctx.save_state(STATE_FILTERS, json.dumps(wanted))


async def _pump(conn: mqtt_wire.Connection, mapper: Mapper, ctx: SourceContext) -> None:
    """Read messages, append their events in batches, then acknowledge them; returns never (a
    lost connection raises MqttError, and the supervisor reconnects).

    Two stages, so that reading and making events overlaps the append: a reader task turns
    what arrives into events and gathers them (up to MAX_BATCH) while the current batch is being
    appended; one batch is appended at a time, in the order received, and acknowledged after.
    """
    pipe = _Pipe()
    reader = asyncio.create_task(_read(conn, mapper, ctx, pipe))
    try:
        while True:
            batch, events = await pipe.take()
            if not batch:  # the reader stopped: its error ends the run
                await reader
                raise mqtt_wire.MqttError("the MQTT reader stopped")
            await _append(events, ctx)
            await conn.ack(batch)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


class _Pipe:
    """Messages read and their events, waiting for the appender; at most MAX_BATCH."""

    def __init__(self) -> None:
        self.messages: list[mqtt_wire.Message] = []
        self.events: list[CloudEvent] = []
        self.ready = asyncio.Event()  # something to take, or the reader stopped
        self.room = asyncio.Event()  # fewer than MAX_BATCH messages waiting
        self.room.set()
        self.stopped = False

    def put(self, messages: list[mqtt_wire.Message], events: list[CloudEvent]) -> None:
        self.messages += messages
        self.events += events
        self.ready.set()
        if len(self.messages) >= MAX_BATCH:
            self.room.clear()

    async def take(self) -> tuple[list[mqtt_wire.Message], list[CloudEvent]]:
        await self.ready.wait()
        taken = self.messages, self.events
        self.messages, self.events = [], []
        if not self.stopped:
            self.ready.clear()
        self.room.set()
        return taken


async def _read(
    conn: mqtt_wire.Connection, mapper: Mapper, ctx: SourceContext, pipe: _Pipe
) -> None:
    try:
        while True:
            await pipe.room.wait()
            messages = await conn.batch(MAX_BATCH - len(pipe.messages))
            pipe.put(messages, _events(messages, mapper, ctx))
    finally:
        pipe.stopped = True
        pipe.ready.set()  # the appender takes what is left, then finds nothing: our error


def _events(
    messages: Sequence[mqtt_wire.Message], mapper: Mapper, ctx: SourceContext
) -> list[CloudEvent]:
    now = ctx.clock.now()
    events: list[CloudEvent] = []
    for message, id in zip(messages, uuid7_many(len(messages)), strict=True):
        try:
            event = mapper.event(message.topic, message.payload, now, id)
        except (ValueError, OndoError) as exc:
            ctx.problem(f"message on topic {message.topic!r} was not made an event: {exc}")
            continue
        event.encoded  # noqa: B018 -- its JSON form, made here while the previous batch appends
        events.append(event)
    return events


async def _append(events: list[CloudEvent], ctx: SourceContext) -> None:
    try:
        await ctx.emit_many(events)
    except (EventError, PayloadTooLarge):  # one bad event refuses the batch: find it
        for event in events:
            try:
                await ctx.emit(event)
            except (EventError, PayloadTooLarge) as exc:
                where = event.extensions.get(TOPIC_EXTENSION)
                ctx.problem(f"message on topic {where!r} was not made an event: {exc}")
