"""Inputs the OpenAPI fuzzing found answered with 500; each is now a clear 4xx."""

from __future__ import annotations

from tests.functional.platform import RunningPlatform


def test_a_clock_moved_beyond_a_century_is_refused_and_time_still_renders(
    manual_platform: RunningPlatform,
) -> None:
    with manual_platform.client() as api:
        for seconds in ("1e308", "7.6e307", "Infinity", "NaN"):
            moved = api.post("/v1/clock/advance", content=f'{{"seconds": {seconds}}}')
            assert moved.status_code == 400, (seconds, moved.text)
        assert api.get("/v1/clock").status_code == 200  # was 500 forever after one such move


def test_nan_and_infinity_are_not_json(manual_platform: RunningPlatform) -> None:
    event = '{"specversion": "1.0", "id": "n1", "source": "s", "type": "t", "data": {"x": NaN}}'
    binary = {"ce-specversion": "1.0", "ce-id": "n2", "ce-source": "s", "ce-type": "t"}
    with manual_platform.client() as api:
        for response in (
            api.post("/v1/events", content=event),
            api.post("/v1/events", content='{"x": -Infinity}', headers=binary),
            api.post("/v1/rules/test", content='{"event": {"x": Infinity}}'),
        ):
            assert response.status_code == 400, response.text
            assert "is not a JSON number" in response.json()["error"]["message"]
        assert api.get("/v1/events").json()["events"] == []


def test_a_method_not_allowed_names_the_allowed_ones(manual_platform: RunningPlatform) -> None:
    with manual_platform.client() as api:
        refused = api.request("TRACE", "/v1/functions")
        assert refused.status_code == 405
        assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD"}
        assert refused.json()["error"]["code"] == "method_not_allowed"


def test_numbers_beyond_what_the_store_holds_are_refused(manual_platform: RunningPlatform) -> None:
    huge = "9" * 23
    hops = {"ce-specversion": "1.0", "ce-id": "h", "ce-source": "s", "ce-type": "t"}
    with manual_platform.client() as api:
        for response in (
            api.get(f"/v1/dlq/{huge}"),
            api.get("/v1/dlq/\N{SUPERSCRIPT TWO}"),  # a digit to str.isdigit, not to int()
            api.post(f"/v1/dlq/{huge}/retry"),
            api.post("/v1/dlq/retry", json={"ids": [int(huge)]}),
            api.post("/v1/functions/f/invoke", params={"version": huge}, json={}),
            api.post("/v1/functions/f/invoke", params={"version": "\N{SUPERSCRIPT TWO}"}),
            api.post("/v1/functions/f/rollback", json={"version": int(huge)}),
            api.post("/v1/events/replay", json={"since": f"{huge}d"}),
        ):
            assert response.status_code == 400, (response.request.url, response.text)
        # Not a hop count, so like any unknown text extension it is kept as text (was a 500).
        odd = api.post("/v1/events", headers={**hops, "ce-ondohops": b"\xb2"})  # latin-1 '²'
        assert odd.status_code == 202, odd.text
