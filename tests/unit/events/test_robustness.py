"""Property test: the CloudEvents parser at the API boundary (every content mode) refuses any
request it cannot take with one of its documented errors, a 4xx OndoError (EventError,
UnsupportedMediaType, PayloadTooLarge, InputLimitExceeded, …), never another exception, within
a bound of work (hypothesis' deadline; bodies reach 100,000 levels of nesting and 5,000 digits)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ondo.api.errors import status_of
from ondo.api.routes.events import decode_checked
from ondo.errors import OndoError
from tests.unit.huge import bounded, scalars

BOUNDED = bounded(300)
ATTRIBUTES = ["specversion", "id", "source", "type", "subject", "time", "data", "data_base64"]
ATTRIBUTES += ["datacontenttype", "dataschema", "ondohops", "ext", "Bad-Name", ""]
scalar = scalars(*["1.0", "2024-05-01T12:00:00Z", "application/json", "aGk=", "9" * 5000])
value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)
event = st.dictionaries(st.sampled_from(ATTRIBUTES), value, max_size=9)
valid = st.fixed_dictionaries(
    {"specversion": st.just("1.0"), "id": st.text(max_size=5), "source": st.just("s")},
    optional={"type": st.just("t"), "data": value, "time": scalar, "ondohops": scalar},
)


HEAD = '{"specversion":"1.0","id":"1","source":"s","type":"t","data":'


@dataclass(frozen=True)
class Body:
    """A request body: `start`, `middle` `times` times, then `end`."""

    start: str
    middle: str
    times: int
    end: str

    def build(self) -> bytes:
        return (self.start + self.middle * self.times + self.end).encode()


def _deep(depth: int, opener: str) -> Body:
    inner, closer = ('{"a":', "}") if opener == "{" else ("[", "]")
    return Body(HEAD, inner, depth, "1" + closer * depth + "}")


digits = st.builds(
    Body, st.just('{"specversion":"1.0","id":'), st.just("9"), st.integers(1, 6_000), st.just("}")
)
body = st.one_of(
    st.binary(max_size=64),
    st.one_of(event, valid, st.lists(st.one_of(event, valid), max_size=3), value).map(
        lambda doc: json.dumps(doc).encode()
    ),
    st.builds(_deep, st.integers(1, 100_000), st.sampled_from(["[", "{"])),
    digits,
)
CONTENT_TYPES = ["application/cloudevents+json", "application/cloudevents-batch+json"]
CONTENT_TYPES += ["application/json", "text/plain", "application/octet-stream", ""]
CONTENT_TYPES += ["application/json; charset=utf-8"]
HEADERS = {
    "content-type": st.sampled_from(CONTENT_TYPES),
    "ce-specversion": st.sampled_from(["1.0", "0.3", ""]),
    "ce-id": st.text(max_size=8),
    "ce-source": st.text(max_size=8),
    "ce-type": st.text(max_size=8),
    "ce-time": st.sampled_from(["2024-05-01T12:00:00Z", "2024-05-01T12:00:00", "x", ""]),
    "ce-ondohops": st.sampled_from(["1", "²", "-1", "99999999999", "9" * 5000]),
}
headers = st.fixed_dictionaries({}, optional=HEADERS)


@BOUNDED
@given(headers, body)
def test_any_request_is_decoded_or_refused_with_a_4xx_error(
    given_headers: dict[str, Any], given_body: bytes | Body
) -> None:
    raw = given_body.build() if isinstance(given_body, Body) else given_body
    try:
        events = decode_checked(given_headers, raw, 256 * 1024, 100)
    except OndoError as exc:
        assert 400 <= status_of(exc) < 500, exc
        return
    for decoded in events:
        assert decoded.encoded  # what is stored: always encodable
