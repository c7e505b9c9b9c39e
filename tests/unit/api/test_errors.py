"""Errors at the API boundary: one status table, one envelope, the same bytes every way in."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ondo import errors
from ondo.api.app import create_app
from ondo.api.errors import STATUSES, error_document, render, status_of
from ondo.api.invoke import InvokeFastPath
from ondo.config import Config
from ondo.platform import Platform
from ondo.security.tokens import ADMIN, Principal

ERROR_CLASSES = [
    cls
    for _name, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.OndoError) and cls.__module__ == errors.__name__
]

# What clients were answered before the statuses moved out of ondo.errors (and still are).
EXPECTED = {
    "OndoError": 500,
    "ConfigError": 400,
    "ConfigLimitExceeded": 400,
    "SourceKindUnavailable": 400,
    "ValidationError": 400,
    "InputLimitExceeded": 400,
    "DurationError": 400,
    "DataDirInUse": 409,
    "NotFound": 404,
    "Gone": 410,
    "Conflict": 409,
    "PayloadTooLarge": 413,
    "Unauthorized": 401,
    "Forbidden": 403,
    "PatternError": 400,
    "PatternTooLarge": 400,
    "DeployError": 400,
    "HandlerImportError": 400,
    "RequirementsError": 400,
    "UnsafeRequirements": 400,
    "NetworkUnavailable": 400,
    "ConcurrencyExhausted": 429,
    "RateLimited": 429,
    "RuntimeUnavailable": 503,
    "CodeUnavailable": 503,
    "EventError": 400,
    "UnsupportedMediaType": 415,
    "BusError": 503,
    "BusClosed": 503,
    "RuleSyntaxError": 400,
    "RuleError": 400,
    "RuleTooLarge": 400,
    "ActionNotAvailable": 400,
    "StoreError": 503,
    "StoreUnavailable": 503,
    "DuplicateKey": 409,
    "StoreConflict": 503,
    "ClientError": 502,
    "SecretsKeyMissing": 503,
    "SecretUnreadable": 500,
}


def test_every_error_class_has_a_deliberate_status() -> None:
    listed = [cls for cls, _status in STATUSES]
    assert sorted(c.__name__ for c in ERROR_CLASSES) == sorted(c.__name__ for c in listed)
    assert len(set(listed)) == len(listed)
    assert {cls.__name__: status_of(cls("x")) for cls in ERROR_CLASSES} == EXPECTED


def test_the_table_lists_the_most_specific_class_first() -> None:
    """A class after one of its bases could never be reached."""
    for i, (earlier, _status) in enumerate(STATUSES):
        for later, _ in STATUSES[i + 1 :]:
            assert not issubclass(later, earlier), f"{later.__name__} after {earlier.__name__}"


def test_the_domain_errors_know_nothing_of_http() -> None:
    assert [cls.__name__ for cls in ERROR_CLASSES if "status" in vars(cls)] == []


def test_an_error_class_defined_elsewhere_falls_back_to_its_base() -> None:
    class Special(errors.NotFound):
        pass

    assert status_of(Special("x")) == 404


def test_the_envelope() -> None:
    assert render(error_document("not_found", "no function 'ü'")) == (
        '{"error":{"code":"not_found","message":"no function \'ü\'"}}'.encode()
    )
    assert error_document("internal", "boom", 500) == {
        "error": {"code": "internal", "status": 500, "message": "boom"}
    }


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    built = Platform(Config(data_dir=tmp_path / "data", manual_clock=True))
    yield built
    asyncio.run(built.bus.close())
    asyncio.run(built.store.close())


def test_the_middlewares_and_the_app_answer_errors_alike(platform: Platform) -> None:
    asgi = InvokeFastPath(create_app(platform), platform)

    async def ask() -> list[httpx.Response]:
        token = (await platform.tokens.issue(Principal(ADMIN), platform.clock.now())).token
        auth = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://ondo") as client:
            return [
                await client.get("/v1/functions"),  # answered by the authentication middleware
                await client.post("/v1/functions/nope/invoke", content=b"{}", headers=auth),
                await client.post(  # a query string: not the fast path, the app answers
                    "/v1/functions/nope/invoke?mode=sync", content=b"{}", headers=auth
                ),
            ]

    anonymous, fast, slow = asyncio.run(ask())
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="ondo"'
    assert anonymous.content == render(
        error_document(
            "unauthorized",
            "missing bearer token: send 'Authorization: Bearer <token>'; the admin token is in"
            " <data-dir>/admin.token",
        )
    )
    assert fast.status_code == slow.status_code == 404
    assert fast.content == slow.content
    assert fast.json()["error"]["code"] == "not_found"
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
