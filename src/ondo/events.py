"""The CloudEvents 1.0 value type every part of ondo passes around, and its structured JSON form.

`CloudEvent.to_json_dict()` is the structured JSON form of the spec (attributes and extensions at
the top level, the payload under `data`, or `data_base64` for bytes); rule patterns match against
it. `CloudEvent.from_json_dict()` reads that form, checks it against the spec and names the
offending attribute when it is wrong.

Payloads: `data` is any JSON value (dict, list, str, int, float, bool) or `bytes` for binary
payloads; `None` means "no data" (a JSON `null` payload is read as no data, as the spec allows).
Only `id` and `time` are filled in when missing (a fresh UUIDv7, the current time); `specversion`,
`source` and `type` are required.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from ondo.errors import EventError, PayloadTooLarge
from ondo.ids import uuid7
from ondo.units import size_text

SPECVERSION = "1.0"
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
HOPS_EXTENSION = "ondohops"  # how many rule hops produced this event (loop protection)

CORE_ATTRIBUTES = frozenset(
    {"id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema"}
)
DATA_MEMBERS = frozenset({"data", "data_base64"})
_NAME = re.compile(r"[a-z0-9]{1,20}")
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
)
_INT32 = (-(2**31), 2**31 - 1)
# One encoder for every event: json.dumps with options builds a new JSONEncoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode_text: Callable[[str], str] = json.encoder.encode_basestring  # what _ENCODER does to a str

ExtensionValue = str | int | bool
JsonValue = Any  # dict | list | str | int | float | bool (None means "no data")


def new_event_id() -> str:
    return uuid7()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class CloudEvent:
    """One CloudEvents 1.0 event; constructing it checks every attribute (raises EventError)."""

    source: str
    type: str
    id: str = field(default_factory=new_event_id)
    specversion: str = SPECVERSION
    time: datetime = field(default_factory=utc_now)
    subject: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: JsonValue | bytes = field(default=None, hash=False)
    extensions: Mapping[str, ExtensionValue] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("id", "source", "type"):
            _require_text(name, getattr(self, name))
        if self.specversion != SPECVERSION:
            raise EventError(
                f"attribute 'specversion' must be {SPECVERSION!r}, got {self.specversion!r}; "
                "ondo accepts CloudEvents 1.0 only"
            )
        for name in ("subject", "datacontenttype", "dataschema"):
            if getattr(self, name) is not None:
                _require_text(name, getattr(self, name))
        if self.dataschema is not None and not urlsplit(self.dataschema).scheme:
            raise EventError(
                f"attribute 'dataschema' must be an absolute URI, got {self.dataschema!r}"
            )
        object.__setattr__(self, "time", _as_utc(self.time))
        object.__setattr__(self, "extensions", _checked_extensions(self.extensions))
        if isinstance(self.data, bytearray | memoryview):
            object.__setattr__(self, "data", bytes(self.data))

    @property
    def hops(self) -> int:
        """How many rule hops led to this event (the `ondohops` extension; 0 when absent)."""
        value = self.extensions.get(HOPS_EXTENSION, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def to_json_dict(self) -> dict[str, Any]:
        """The structured JSON form: attributes and extensions at the top level, then the data."""
        out: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": format_time(self.time),
        }
        for name in ("subject", "datacontenttype", "dataschema"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extensions)
        if isinstance(self.data, bytes):
            out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        elif self.data is not None:
            out["data"] = self.data
        return out

    @cached_property
    def encoded(self) -> bytes:
        """The structured JSON form as compact UTF-8 bytes (what is stored and measured)."""
        try:
            return _ENCODER.encode(self.to_json_dict()).encode()
        except (TypeError, ValueError) as exc:
            raise EventError(f"attribute 'data' is not a JSON value: {exc}") from None

    @property
    def size(self) -> int:
        return len(self.encoded)

    def check_size(self, limit: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        if self.size > limit:
            raise PayloadTooLarge(
                f"event {self.id!r} from {self.source!r} is {size_text(self.size)}"
                f" in its JSON form; the limit is {size_text(limit)}:"
                " send a reference to large data instead"
            )

    @classmethod
    def from_json_dict(cls, obj: Any) -> CloudEvent:
        """Read the structured JSON form, checking it against the spec; fills in id and time."""
        if not isinstance(obj, dict):
            raise EventError(f"an event must be a JSON object, got {_json_type(obj)}")
        for required in ("specversion", "source", "type"):
            if obj.get(required) is None:
                raise EventError(f"attribute {required!r} is required and missing")
        extensions: dict[str, ExtensionValue] = {}
        for name, value in obj.items():
            if name in CORE_ATTRIBUTES or name in DATA_MEMBERS or value is None:
                continue
            _check_name(name)
            extensions[name] = value
        return cls(
            id=obj["id"] if obj.get("id") is not None else new_event_id(),
            source=obj["source"],
            type=obj["type"],
            specversion=_text_or_error("specversion", obj["specversion"]),
            time=parse_time(obj["time"]) if obj.get("time") is not None else utc_now(),
            subject=obj.get("subject"),
            datacontenttype=obj.get("datacontenttype"),
            dataschema=obj.get("dataschema"),
            data=_data_of(obj),
            extensions=extensions,
        )

    @classmethod
    def decode(cls, raw: bytes | str) -> CloudEvent:
        """Read an event from its stored JSON form (see `encoded`). What was stored was checked
        when its CloudEvent was made, so it is read without checking again (a third of a read's
        cost); anything unexpected is read the checking way, which says what is wrong."""
        obj = json.loads(raw)
        try:
            return _stored(obj)
        except Exception:  # from_json_dict names the problem
            return cls.from_json_dict(obj)


_FIELDS = ("id", "source", "type", "specversion", "subject", "datacontenttype", "dataschema")


def _stored(obj: dict[str, Any]) -> CloudEvent:
    """A CloudEvent from the JSON form of one made earlier (as `encoded` writes it)."""
    fields: dict[str, Any] = {name: obj.get(name) for name in _FIELDS}
    time = datetime.fromisoformat(obj["time"])
    if time.tzinfo is not UTC or fields["specversion"] != SPECVERSION:
        raise EventError("not the stored form")
    if not all(isinstance(fields[name], str) and fields[name] for name in _REQUIRED):
        raise EventError("not the stored form")
    extensions = {k: v for k, v in obj.items() if k not in _STORED_MEMBERS}
    raw = obj.get("data_base64")
    data = base64.b64decode(raw, validate=True) if raw is not None else obj.get("data")
    return _unchecked(fields, time=time, data=data, extensions=extensions)


_STORED_MEMBERS = CORE_ATTRIBUTES | DATA_MEMBERS
_REQUIRED = ("id", "source", "type")


def _unchecked(fields: Mapping[str, Any], **more: Any) -> CloudEvent:
    """A CloudEvent made of attributes known to be valid, without __post_init__'s checks."""
    event = object.__new__(CloudEvent)
    event.__dict__.update(fields, **more)
    return event


class EventShape:
    """Events that differ only in id, time and data (a source's messages on one topic): the
    attributes are checked once, here, and each event's JSON form is joined from parts encoded
    once, instead of checking and encoding every attribute of every event."""

    def __init__(
        self,
        *,
        source: str,
        type: str,
        subject: str | None = None,
        datacontenttype: str | None = None,
        extensions: Mapping[str, ExtensionValue] | None = None,
    ) -> None:
        example = CloudEvent(
            source=source,
            type=type,
            subject=subject,
            datacontenttype=datacontenttype,
            extensions=extensions or {},
        )  # raises EventError for what no event of this shape could carry
        self._fields = {
            name: value
            for name, value in example.__dict__.items()
            if name not in ("id", "time", "data", "encoded")
        }
        # to_json_dict's order: specversion, id, source, type, time, the rest, then the data
        parts = example.to_json_dict()
        middle = {k: parts.pop(k) for k in ("source", "type")}
        rest = {k: v for k, v in parts.items() if k not in ("specversion", "id", "time")}
        self._head = '{"specversion":' + _ENCODER.encode(SPECVERSION) + ',"id":'
        self._middle = "," + _ENCODER.encode(middle)[1:-1] + ',"time":"'
        self._tail = '",' + _ENCODER.encode(rest)[1:-1] if rest else '"'

    def event(self, id: str, time: datetime, time_text: str, data: JsonValue | bytes) -> CloudEvent:
        """The event with this shape; `time` is UTC and `time_text` its format_time(); `data`
        is not None. EventError when the data is not a JSON value."""
        if isinstance(data, bytes):
            encoded_data = ',"data_base64":"' + base64.b64encode(data).decode("ascii") + '"}'
        else:
            try:
                encoded_data = ',"data":' + _ENCODER.encode(data) + "}"
            except (TypeError, ValueError) as exc:
                raise EventError(f"attribute 'data' is not a JSON value: {exc}") from None
        text = f"{self._head}{_encode_text(id)}{self._middle}{time_text}{self._tail}"
        try:
            encoded = (text + encoded_data).encode()
        except UnicodeEncodeError as exc:  # a lone surrogate, as `encoded` refuses it
            raise EventError(f"attribute 'data' is not a JSON value: {exc}") from None
        return _unchecked(self._fields, id=id, time=time, data=data, encoded=encoded)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix; microseconds only when non-zero."""
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def format_epoch(seconds: float) -> str:
    """Epoch seconds as RFC 3339 in UTC to the millisecond: how ondo writes a time in text."""
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def parse_time(value: Any, attribute: str = "time") -> datetime:
    """An RFC 3339 timestamp (with `T` and an offset) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise EventError(
            f"attribute {attribute!r} must be an RFC 3339 string, got {_json_type(value)}"
        )
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise EventError(
            f"attribute {attribute!r} is not an RFC 3339 timestamp: {value!r} "
            "(expected like 2024-05-01T12:00:00Z or 2024-05-01T14:00:00.5+02:00)"
        )
    date, clock, fraction, offset = match.groups()
    fraction = (fraction or "")[:7]  # fromisoformat takes at most microseconds
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{date}T{clock}{fraction}{offset}").astimezone(UTC)
    except ValueError as exc:
        raise EventError(
            f"attribute {attribute!r} is not a valid time: {value!r} ({exc})"
        ) from None


def _as_utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise EventError(f"attribute 'time' must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise EventError("attribute 'time' must carry a UTC offset (naive datetimes are ambiguous)")
    return value.astimezone(UTC)


def _data_of(obj: dict[str, Any]) -> JsonValue | bytes:
    if "data_base64" not in obj or obj["data_base64"] is None:
        return obj.get("data")
    if obj.get("data") is not None:
        raise EventError("an event may carry 'data' or 'data_base64', not both")
    raw = obj["data_base64"]
    if not isinstance(raw, str):
        raise EventError(f"'data_base64' must be a base64 string, got {_json_type(raw)}")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise EventError("'data_base64' is not valid base64 (RFC 4648)") from None


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise EventError(
            f"attribute name {name!r} is invalid: CloudEvents attribute names are 1-20 "
            "lowercase letters or digits (a-z, 0-9)"
        )


def _checked_extensions(extensions: Mapping[str, Any]) -> dict[str, ExtensionValue]:
    checked: dict[str, ExtensionValue] = {}
    for name, value in extensions.items():
        if name in CORE_ATTRIBUTES or name in DATA_MEMBERS:
            raise EventError(f"extension {name!r} has the name of a core attribute; rename it")
        _check_name(name)
        if not _valid_extension_value(value):
            raise EventError(
                f"extension attribute {name!r} must be a string, a boolean or a 32-bit integer, "
                f"got {_json_type(value)} {value!r}"
            )
        checked[name] = value
    return checked


def _valid_extension_value(value: Any) -> bool:
    if isinstance(value, bool | str):
        return True
    return isinstance(value, int) and _INT32[0] <= value <= _INT32[1]


def _require_text(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise EventError(f"attribute {name!r} must be a string, got {_json_type(value)}")
    if not value:
        raise EventError(f"attribute {name!r} must be a non-empty string")


def _text_or_error(name: str, value: Any) -> str:
    _require_text(name, value)
    text: str = value
    return text


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)
