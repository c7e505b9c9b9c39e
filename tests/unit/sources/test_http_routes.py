"""The http kind's settings (validated with file-and-field errors), path templates and matching,
and HMAC signatures as webhook senders make them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from ondo.backends.store.repositories.functions import InvocationRecord
from ondo.errors import ConfigError
from ondo.events import CloudEvent
from ondo.sources.base import PlainWhere
from ondo.sources.http import KIND, route_of
from ondo.sources.http_hmac import signature, verified
from ondo.sources.http_routes import Hmac, HttpRoutes, PathError, RouteSet, compile_path
from ondo.sources.replay import ReplayGuard

AT = PlainWhere(Path("."), "sources.shop")


def validate(routes: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return KIND.validate({"routes": routes, **more}, AT)


def route_set(*routes: dict[str, Any]) -> RouteSet:
    stored = validate(list(routes))["routes"]

    async def emit(event: CloudEvent) -> bool:
        return True

    return RouteSet("default", "shop", [route_of(r) for r in stored], emit, lambda _: None)


def test_defaults_are_filled_in() -> None:
    settings = validate(
        [
            {"path": "/a", "function": "fn"},
            {"path": "/b", "event": "x.b", "id_header": "X-Id", "auth": "public"},
            {
                "method": "post",
                "path": "/hook",
                "event": "x.y",
                "auth": "hmac",
                "hmac": {"secret": "s"},
            },
        ]
    )
    assert settings == {
        "routes": [
            {"method": "ANY", "path": "/a", "function": "fn", "auth": "token"},
            {"method": "ANY", "path": "/b", "event": "x.b", "id_header": "X-Id", "auth": "public"},
            {
                "method": "POST",
                "path": "/hook",
                "event": "x.y",
                "auth": "hmac",
                "hmac": {
                    "secret": "s",
                    "header": "X-Hub-Signature-256",
                    "algorithm": "sha256",
                    "format": "sha256={hex}",
                },
            },
        ],
        "port": None,
        "host": "127.0.0.1",
    }


@pytest.mark.parametrize(
    ("routes", "more", "message"),
    [
        ([], {}, "sources.shop.routes: routes must be a non-empty list"),
        (["/a"], {}, "sources.shop.routes.0: a route is a mapping"),
        ([{"path": "/a"}], {}, "needs exactly one of `function: NAME` or `event: TYPE`"),
        ([{"path": "/a", "function": "f", "event": "e"}], {}, "exactly one of"),
        ([{"path": "a", "function": "f"}], {}, "routes.0.path: path 'a': must start with '/'"),
        ([{"path": "/{a}/{a}", "function": "f"}], {}, "parameter {a} appears twice"),
        ([{"path": "/{a+}/b", "function": "f"}], {}, "must be the last segment"),
        ([{"path": "/{a:float}", "function": "f"}], {}, "neither a literal nor a parameter"),
        ([{"path": "/a", "function": "Bad_Name"}], {}, "routes.0.function: function must name"),
        ([{"path": "/a", "event": "has space"}], {}, "routes.0.event: event must be an event type"),
        ([{"path": "/a", "function": "f", "method": "FETCH"}], {}, "routes.0.method"),
        ([{"path": "/a", "function": "f", "auth": "basic"}], {}, "routes.0.auth: auth must be"),
        ([{"path": "/a", "function": "f", "auth": "hmac"}], {}, "auth: hmac needs `hmac:"),
        ([{"path": "/a", "function": "f", "hmac": {"secret": "s"}}], {}, "need `auth: hmac`"),
        ([{"path": "/a", "function": "f", "colour": 1}], {}, "routes.0.colour: unknown key"),
        ([{"path": "/a", "function": "f", "id_header": "X-Id"}], {}, "applies to an `event:`"),
        ([{"path": "/a", "event": "e", "id_header": "X Id"}], {}, "routes.0.id_header: id_header"),
        ([{"path": "/a", "function": "f"}], {"port": 0}, "sources.shop.port: port must be"),
        ([{"path": "/a", "function": "f"}], {"host": "0.0.0.0"}, "set `port` too"),
        ([{"path": "/a", "function": "f"}], {"tls": True}, "unknown key 'tls'"),
        (
            [
                {"method": "GET", "path": "/o/{id}", "function": "f"},
                {"method": "GET", "path": "/o/{n}", "function": "g"},
            ],
            {},
            "routes.1.path: GET /o/{n} is the same route as routes[0]",
        ),
    ],
)
def test_bad_settings_name_the_field(routes: list[Any], more: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(routes, **more)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("hmac_settings", "message"),
    [
        ({}, "hmac.secret: secret must be"),
        ({"secret": "s", "algorithm": "md5"}, "hmac.algorithm"),
        ({"secret": "s", "format": "sha256="}, "hmac.format: format must contain exactly one"),
        ({"secret": "s", "format": "{hex}{hex}"}, "exactly one"),
        ({"secret": "s", "header": "X Sig"}, "hmac.header"),
        ({"secret": "s", "salt": "x"}, "hmac.salt: unknown key"),
        ({"secret": "s", "max_age": "5m"}, "hmac.max_age: max_age needs timestamp_header"),
        ({"secret": "s", "timestamp_header": "X T"}, "hmac.timestamp_header"),
        ({"secret": "s", "timestamp_header": "X-T", "max_age": "soon"}, "hmac.max_age: duration"),
        ({"secret": "s", "timestamp_header": "X-T", "max_age": "2d"}, "max_age must be 1s to 24h"),
    ],
)
def test_bad_hmac_settings_name_the_field(hmac_settings: dict[str, Any], message: str) -> None:
    route = {"path": "/a", "event": "e", "auth": "hmac", "hmac": hmac_settings}
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        validate([route])


def test_templates() -> None:
    assert compile_path("/").regex.fullmatch("/")
    literal = compile_path("/a/b")
    assert literal.literal and literal.regex.fullmatch("/a/b") and not literal.names
    one = compile_path("/orders/{id}/items/{item:int}")
    assert one.names == ("id", "item")
    hit = one.regex.fullmatch("/orders/x1/items/42")
    assert hit is not None and hit.groupdict() == {"id": "x1", "item": "42"}
    assert one.regex.fullmatch("/orders/x1/items/a") is None
    assert one.regex.fullmatch("/orders/x/y/items/1") is None
    for greedy in ("/files/{rest+}", "/files/{rest:path}"):
        found = compile_path(greedy).regex.fullmatch("/files/a/b/c.txt")
        assert found is not None and found["rest"] == "a/b/c.txt"
    with pytest.raises(PathError):
        compile_path("/a/{b")


def test_the_most_specific_route_wins_whatever_the_order() -> None:
    routes = route_set(
        {"path": "/{any+}", "function": "greedy"},
        {"method": "GET", "path": "/orders/{id}", "function": "param"},
        {"method": "ANY", "path": "/orders/{id}", "function": "anyparam"},
        {"method": "GET", "path": "/orders/new", "function": "literal"},
        {"method": "GET", "path": "/orders/{id}/{part}", "function": "two"},
        {"method": "GET", "path": "/orders/{id}/lines", "function": "one-literal"},
    )

    def target(method: str, path: str) -> tuple[str | None, dict[str, str]] | None:
        found = routes.match(method, path)
        return None if found is None else (found[0].function, found[1])

    assert target("GET", "/orders/new") == ("literal", {})
    assert target("GET", "/orders/7") == ("param", {"id": "7"})
    assert target("DELETE", "/orders/7") == ("anyparam", {"id": "7"})
    assert target("HEAD", "/orders/7") == ("param", {"id": "7"})
    assert target("GET", "/orders/7/lines") == ("one-literal", {"id": "7"})
    assert target("GET", "/orders/7/x") == ("two", {"id": "7", "part": "x"})
    assert target("POST", "/anything/else") == ("greedy", {"any": "anything/else"})
    assert route_set({"method": "GET", "path": "/a", "function": "f"}).match("POST", "/a") is None


def test_the_registry_deregisters_only_its_own_entry() -> None:
    async def nobody(token: str) -> None:
        return None

    async def no_invoke(function: str, payload: bytes, namespace: str) -> InvocationRecord:
        raise AssertionError("nothing is served in this test")

    registry = HttpRoutes(nobody, no_invoke, 1024)
    first, second = (
        route_set({"path": "/a", "function": "f"}),
        route_set({"path": "/b", "function": "f"}),
    )
    stop_first = registry.register(first)
    stop_second = registry.register(second)  # a redeploy: the new set replaces the old one
    stop_first()
    assert registry.get("default", "shop") is second
    stop_second()
    assert registry.get("default", "shop") is None


# --- HMAC -----------------------------------------------------------------------------------

BODY = b'{"zen": "Keep it logically awesome."}'


def github(secret: bytes, body: bytes) -> bytes:
    return b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()


def test_a_github_signature_is_verified() -> None:
    settings = Hmac(b"s3cret", b"x-hub-signature-256", "sha256", "sha256={hex}")
    good = github(b"s3cret", BODY)
    assert signature(settings, BODY) == good
    assert verified(settings, [(b"x-hub-signature-256", good)], BODY)
    assert verified(
        settings, [(b"x-hub-signature-256", good.upper().replace(b"SHA", b"sha"))], BODY
    )
    for bad in (
        github(b"other", BODY),
        github(b"s3cret", BODY + b" "),
        b"",
        good[:-1],
        b"sha1=" + good[7:],
    ):
        assert not verified(settings, [(b"x-hub-signature-256", bad)], BODY)
    assert not verified(settings, [], BODY)
    assert not verified(settings, [(b"x-hub-signature-256", good)] * 2, BODY)  # ambiguous
    assert not verified(settings, [(b"x-signature", good)], BODY)


def test_a_timestamped_signature_is_fresh_once() -> None:
    """With a timestamp header the sender signs TIMESTAMP.BODY: a request out of the window,
    with another timestamp than it signed, or seen before, is refused."""
    route = route_of(
        validate(
            [
                {
                    "path": "/hook",
                    "event": "x.y",
                    "auth": "hmac",
                    "hmac": {"secret": "s3cret", "timestamp_header": "X-Ondo-Timestamp"},
                }
            ]
        )["routes"][0]
    )
    settings = route.hmac
    assert settings is not None and settings.max_age_s == 300.0
    now = 1_800_000_000.0

    def signed(stamp: int, body: bytes = BODY) -> list[tuple[bytes, bytes]]:
        sig = github(b"s3cret", str(stamp).encode() + b"." + body)
        return [(b"x-hub-signature-256", sig), (b"x-ondo-timestamp", str(stamp).encode())]

    guard = ReplayGuard()
    assert verified(settings, signed(int(now) - 10), BODY, now, guard)
    assert not verified(settings, signed(int(now) - 10), BODY, now + 1, guard)  # a replay
    assert verified(settings, signed(int(now) - 9), BODY, now + 1, guard)  # a new request
    assert not verified(settings, signed(int(now) - 301), BODY, now, guard)  # too old
    assert not verified(settings, signed(int(now) + 301), BODY, now, guard)  # from the future
    moved = [signed(int(now))[0], (b"x-ondo-timestamp", str(int(now) - 1).encode())]
    assert not verified(settings, moved, BODY, now, guard)  # the timestamp is signed
    assert not verified(settings, signed(int(now))[:1], BODY, now, guard)  # no timestamp
    body_only = [(b"x-hub-signature-256", github(b"s3cret", BODY)), signed(int(now))[1]]
    assert not verified(settings, body_only, BODY, now, guard)
    # once its window is over a signature is forgotten (and refused as too old anyway)
    assert not verified(settings, signed(int(now) - 10), BODY, now + 400, guard)


def test_the_replay_guard_is_bounded() -> None:
    guard = ReplayGuard(max_entries=2)
    assert guard.first(b"a", 100.0, 0.0) and guard.first(b"b", 100.0, 0.0)
    assert not guard.first(b"a", 100.0, 1.0)
    assert guard.first(b"c", 100.0, 1.0)  # evicts the oldest, a
    assert guard.first(b"a", 100.0, 1.0)
    assert guard.first(b"b", 200.0, 150.0)  # every earlier entry's window is over


def test_base64_and_other_algorithms() -> None:
    settings = Hmac(b"k", b"x-shopify-hmac-sha256", "sha512", "{base64}")
    digest = hmac.new(b"k", BODY, hashlib.sha512).digest()
    good = base64.b64encode(digest)
    assert verified(settings, [(b"x-shopify-hmac-sha256", good)], BODY)
    assert not verified(settings, [(b"x-shopify-hmac-sha256", good.lower())], BODY)
