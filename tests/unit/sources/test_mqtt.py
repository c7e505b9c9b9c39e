"""The mqtt kind's settings, topic templates and message-to-event mapping (no broker needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ondo.deploy.manifest import read_manifest
from ondo.errors import ConfigError
from ondo.sources.base import PlainWhere
from ondo.sources.mqtt import KIND, Mapper
from ondo.sources.mqtt_topics import TemplateError, TopicTemplate, overlap

WHERE = PlainWhere(Path("/app"), "sources.fitbit")
BP = {"topic": "fitbit/{subject}/bp", "type": "health.blood_pressure"}


def valid(**settings: Any) -> dict[str, Any]:
    return KIND.validate({"url": "mqtt://127.0.0.1:1883", "topics": [BP], **settings}, WHERE)


def refused(**settings: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        valid(**settings)
    return str(caught.value)


def test_defaults_are_filled_in() -> None:
    assert valid() == {
        "url": "mqtt://127.0.0.1:1883",
        "client_id": None,
        "qos": 1,
        "session_expiry": 86400,
        "type_prefix": "",
        "payload": "json",
        "ca_file": None,
        "topics": [
            {"topic": "fitbit/{subject}/bp", "type": "health.blood_pressure", "payload": "json"}
        ],
    }


def test_settings_are_taken_as_written() -> None:
    spec = valid(
        url="mqtts://dev:p%40ss@broker.example",
        client_id="gateway-1",
        qos=0,
        session_expiry="2h",
        type_prefix="home",
        payload="text",
        topics=["home/{room}/{type}", {"topic": "raw/#", "payload": "binary"}],
    )
    assert (spec["qos"], spec["session_expiry"], spec["client_id"]) == (0, 7200, "gateway-1")
    assert spec["topics"] == [
        {"topic": "home/{room}/{type}", "type": None, "payload": "text"},
        {"topic": "raw/#", "type": None, "payload": "binary"},
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": None}, "sources.fitbit.url: url is required"),
        ({"url": "http://b:1883"}, "scheme must be mqtt:// or mqtts://, got 'http'://"),
        ({"url": "mqtt://:1883"}, "url names no host"),
        ({"url": "mqtt://b:99999"}, "sources.fitbit.url: Port out of range"),
        ({"url": "mqtt://b:1883/x"}, "url takes no path, query or fragment"),
        ({"qos": 2}, "sources.fitbit.qos: qos must be 1"),
        ({"qos": True}, "qos must be 1"),
        ({"session_expiry": "soon"}, "session_expiry: duration 'soon' is not understood"),
        ({"session_expiry": -1}, "must be 0 to 4294967294 seconds"),
        ({"client_id": "has space"}, "client_id is 1 to 128 printable characters"),
        ({"type_prefix": "home."}, "without leading or trailing dots"),
        ({"payload": "xml"}, "payload must be json (into data), text"),
        ({"ca_file": "ca.pem"}, "ca_file is for mqtts:// URLs"),
        ({"retain": True}, "unknown key 'retain'; allowed here: kind, url"),
        ({"topics": []}, "sources.fitbit.topics: topics is a non-empty list"),
        ({"topics": [{"type": "x"}]}, "sources.fitbit.topics.0.topic: topic is required"),
        ({"topics": [{"topic": "a", "qos": 1}]}, "topics.0.qos: unknown key 'qos'"),
        ({"topics": [{"topic": "a/{type}", "type": "x"}]}, "{type} field already gives the type"),
        ({"topics": [{"topic": "a", "payload": "csv"}]}, "topics.0.payload: payload must be"),
        ({"topics": ["a/b-{subject}"]}, "a field is a whole topic level"),
        ({"topics": ["a/#/b"]}, "`#` matches the rest of a topic"),
        ({"topics": ["a/b+"]}, "wildcards only as a whole level"),
        ({"topics": ["a/{Room}"]}, "field {Room}: a name is a lower-case letter"),
        ({"topics": ["a/{id}"]}, "would overwrite the event's own 'id' attribute"),
        ({"topics": ["{x}/{x}"]}, "field {x} appears twice"),
        ({"topics": [""]}, "a topic cannot be empty"),
        (
            {"topics": ["fitbit/{subject}/bp", "fitbit/alice/{type}"]},
            "topics.1.topic: 'fitbit/alice/{type}' and topics[0] 'fitbit/{subject}/bp' can match",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_field(settings: dict[str, Any], message: str) -> None:
    assert message in refused(**settings)


def test_an_error_in_ondo_yaml_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "ondo.yaml").write_text(
        "name: iot\n"
        "sources:\n"
        "  fitbit:\n"
        "    kind: mqtt\n"
        "    url: mqtt://127.0.0.1:1883\n"
        "    topics:\n"
        '      - topic: "fitbit/{subject}/bp"\n'
        '      - topic: "fitbit/x-{subject}"\n'
    )
    with pytest.raises(ConfigError, match=r"ondo.yaml:8 \(sources.fitbit.topics.1.topic\)"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("a/+/c", "a/b/c", True),
        ("a/{x}/c", "a/b/{y}", True),
        ("a/b", "a/c", False),
        ("a/+", "a/+/c", False),
        ("a/#", "a", True),
        ("a/#", "b/#", False),
        ("#", "x/y/z", True),
        ("+/b", "$SYS/b", False),
        ("#", "$SYS/x", False),
        ("$SYS/#", "$SYS/broker", True),
    ],
)
def test_overlap_is_whether_one_topic_can_match_both(a: str, b: str, expected: bool) -> None:
    left, right = TopicTemplate.parse(a), TopicTemplate.parse(b)
    assert overlap(left, right) is expected
    assert overlap(right, left) is expected


def test_a_template_is_a_filter_that_captures_its_fields() -> None:
    template = TopicTemplate.parse("home/{room}/+/{subject}/#")
    assert template.filter == "home/+/+/+/#"
    assert template.fields == ("room", "subject")
    assert template.match("home/kitchen/x/bob/t/1") == {"room": "kitchen", "subject": "bob"}
    assert template.match("home/kitchen/x/bob") == {"room": "kitchen", "subject": "bob"}
    assert template.match("home/kitchen/x") is None
    assert TopicTemplate.parse("a/{x}").match("a/b/c") is None
    assert TopicTemplate.parse("#").match("$SYS/load") is None
    with pytest.raises(TemplateError):
        TopicTemplate.parse("a\x00b")


def mapper(**settings: Any) -> Mapper:
    return Mapper.from_spec("fitbit", valid(**settings))


def test_a_message_becomes_an_event() -> None:
    event = mapper().event("fitbit/alice/bp", b'{"systolic": 150}', 1_700_000_000.0)
    assert event.to_json_dict() == {
        "specversion": "1.0",
        "id": event.id,
        "source": "fitbit",
        "type": "health.blood_pressure",
        "subject": "alice",
        "time": "2023-11-14T22:13:20Z",
        "datacontenttype": "application/json",
        "mqtttopic": "fitbit/alice/bp",
        "data": {"systolic": 150},
    }


def test_type_and_other_fields_come_from_the_topic() -> None:
    m = mapper(type_prefix="home", topics=["home/{room}/{subject}/{type}", "raw/{type}", "misc/#"])
    event = m.event("home/kitchen/bob/temperature", b"21.5", 0.0)
    assert (event.type, event.subject, event.data) == ("home.temperature", "bob", 21.5)
    assert event.extensions == {"room": "kitchen", "mqtttopic": "home/kitchen/bob/temperature"}
    assert m.event("misc/x", b"1", 0.0).type == "mqtt.message"
    assert m.event("misc/x", b"", 0.0).data is None  # an empty payload: an event without data


@pytest.mark.parametrize(
    ("topic", "payload", "payload_kind", "message"),
    [
        ("fitbit/alice/bp", b"{nope", "json", "its payload is not valid JSON"),
        ("fitbit/alice/bp", b"NaN", "json", "not a JSON number"),
        ("fitbit/alice/bp", b"[" * 200 + b"]" * 200, "json", "deeper"),
        ("fitbit/alice/bp", b"\xff\xfe\x00x", "text", "not UTF-8 text (byte 0)"),
        ("fitbit//bp", b"1", "json", "its topic level for {subject} is empty"),
        ("other/topic", b"1", "json", "matches none of the source's topics"),
    ],
)
def test_a_message_that_cannot_be_an_event_says_why(
    topic: str, payload: bytes, payload_kind: str, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        mapper(payload=payload_kind).event(topic, payload, 0.0)
    assert message in str(caught.value)


def test_payload_modes() -> None:
    text = mapper(payload="text").event("fitbit/a/bp", "héllo".encode(), 0.0)
    assert (text.data, text.datacontenttype) == ("héllo", "text/plain; charset=utf-8")
    binary = mapper(payload="binary").event("fitbit/a/bp", b"\x00\xff", 0.0)
    assert binary.to_json_dict()["data_base64"] == "AP8="


def test_a_payload_never_names_its_own_subject_unless_configured() -> None:
    forged = b'{"subject": "bob", "systolic": 150}'
    assert mapper().event("fitbit/alice/bp", forged, 0.0).subject == "alice"  # the topic's
    unnamed = mapper(topics=[{"topic": "ward/{bed}/bp", "type": "health.bp"}])
    assert unnamed.event("ward/7/bp", forged, 0.0).subject is None
    from_payload = mapper(
        topics=[{"topic": "ward/{bed}/bp", "type": "health.bp", "subject": "{payload.patient}"}]
    )
    event = from_payload.event("ward/7/bp", b'{"patient": "carol", "subject": "bob"}', 0.0)
    assert event.subject == "carol"
    by_field = mapper(topics=[{"topic": "ward/{bed}/bp", "subject": "bed-{bed}"}])
    assert by_field.event("ward/7/bp", forged, 0.0).subject == "bed-7"
    with pytest.raises(ValueError, match="the JSON payload has no patient field"):
        from_payload.event("ward/7/bp", b'{"subject": "bob"}', 0.0)


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ({"topic": "f/{subject}/bp", "subject": "{payload.u}"}, "already gives the subject"),
        ({"topic": "f/{bed}", "subject": "{room}"}, "{room} is neither a parameter of the topic"),
        ({"topic": "f/{bed}", "subject": "fixed"}, "must contain {PARAMETER} or {payload.FIELD}"),
        ({"topic": "f/{bed}", "subject": 7}, "subject must be a template"),
        ({"topic": "f/x", "payload": "text", "subject": "{payload.u}"}, "JSON payload only"),
    ],
)
def test_subject_templates_are_checked_at_deploy(topic: dict[str, Any], message: str) -> None:
    assert message in refused(topics=[topic])
