"""Events over HTTP and the CLI on a real `ondo up`: ingest modes, errors, tail, replay."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from tests.functional.platform import REPO, RunningPlatform

STRUCTURED = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """One platform with no apps for the module; each test uses its own ids and types."""
    with RunningPlatform(tmp_path_factory.mktemp("events") / "data") as running:
        yield running


def event(n: int | str, type: str = "order.created", **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e{n}" if isinstance(n, int) else n,
        "source": "/shop",
        "type": type,
        "data": {"n": n},
        **extra,
    }


def error_of(response: httpx.Response) -> tuple[str, str]:
    error = response.json()["error"]
    return error["code"], error["message"]


def test_structured_event_is_stored_and_a_duplicate_is_reported(bare: RunningPlatform) -> None:
    with bare.client() as api:
        body = json.dumps(event("st1", region="eu"))
        first = api.post("/v1/events", content=body, headers=STRUCTURED)
        assert first.status_code == 202, first.text
        (seq,) = first.json()["seqs"]
        assert first.json() == {"ids": ["st1"], "seqs": [seq], "duplicates": []}
        again = api.post("/v1/events", json=event("st1"))  # plain application/json: structured
        assert again.status_code == 202
        assert again.json() == {"ids": ["st1"], "seqs": [seq], "duplicates": ["st1"]}
        stored = api.get("/v1/events/st1").json()
        assert stored["seq"] == seq and stored["namespace"] == "default"
        assert stored["event"]["data"] == {"n": "st1"} and stored["event"]["region"] == "eu"
        assert stored["event"]["time"].endswith("Z")
        missing = api.get("/v1/events/nope")
        assert missing.status_code == 404 and "'nope'" in error_of(missing)[1]


def test_id_and_time_are_filled_in_when_missing(bare: RunningPlatform) -> None:
    with bare.client() as api:
        sent = {"specversion": "1.0", "source": "/filled", "type": "filled.t"}
        answer = api.post("/v1/events", json=sent)
        assert answer.status_code == 202
        (event_id,) = answer.json()["ids"]
        assert len(event_id) == 36
        assert api.get(f"/v1/events/{event_id}").json()["event"]["time"]


def test_batch_is_accepted_in_order_or_refused_whole(bare: RunningPlatform) -> None:
    with bare.client() as api:
        batch = [event("ba1"), event("ba2", type="order.paid"), event("ba3")]
        answer = api.post("/v1/events", content=json.dumps(batch), headers=BATCH)
        assert answer.status_code == 202, answer.text
        assert answer.json()["ids"] == ["ba1", "ba2", "ba3"]
        first = answer.json()["seqs"][0]
        assert answer.json()["seqs"] == [first, first + 1, first + 2]

        bad = [event("ba4"), {"specversion": "1.0", "id": "ba5", "source": "/shop"}, event(6)]
        refused = api.post("/v1/events", content=json.dumps(bad), headers=BATCH)
        assert refused.status_code == 400
        code, message = error_of(refused)
        assert code == "invalid_event" and "event [1]" in message and "'type'" in message
        assert api.get("/v1/events/ba4").status_code == 404

        empty = api.post("/v1/events", content=b"[]", headers=BATCH)
        assert empty.status_code == 400 and "empty" in error_of(empty)[1]
        not_a_list = api.post("/v1/events", content=json.dumps(event(7)), headers=BATCH)
        assert not_a_list.status_code == 400 and "JSON array" in error_of(not_a_list)[1]


def test_binary_mode_from_the_cloudevents_sdk(bare: RunningPlatform) -> None:
    sdk_event = SdkEvent(
        attributes={
            "type": "sensor.read",
            "source": "/sensors/7",
            "id": "b1",
            "subject": "temp",
            "datacontenttype": "application/json",
            "ondohops": 2,
            "site": "north",
        },
        data={"celsius": 21.5},
    )
    message = to_binary_event(sdk_event)
    with bare.client() as api:
        answer = api.post("/v1/events", headers=message.headers, content=message.body)
        assert answer.status_code == 202, answer.text
        stored = api.get("/v1/events/b1").json()["event"]
        assert stored["data"] == {"celsius": 21.5}
        assert stored["subject"] == "temp" and stored["site"] == "north"
        assert stored["ondohops"] == 2
        assert stored["time"] == sdk_event.get_time().isoformat().replace("+00:00", "Z")

        raw = api.post(
            "/v1/events",
            headers={
                "ce-specversion": "1.0",
                "ce-id": "b2",
                "ce-source": "/cam",
                "ce-type": "image.taken",
                "content-type": "application/octet-stream",
            },
            content=b"\x89PNG\x00\xff",
        )
        assert raw.status_code == 202, raw.text
        assert api.get("/v1/events/b2").json()["event"]["data_base64"] == "iVBORwD/"

        broken = api.post(
            "/v1/events",
            headers={"ce-specversion": "1.0", "ce-id": "b3", "ce-source": "/s", "ce-type": "t"},
            content=b"{not json",
        )
        assert broken.status_code == 400 and "'data'" in error_of(broken)[1]
        no_type = api.post(
            "/v1/events",
            headers={"ce-specversion": "1.0", "ce-id": "b4", "ce-source": "/s"},
            content=b"{}",
        )
        assert no_type.status_code == 400 and "'type'" in error_of(no_type)[1]
        bad_time = api.post(
            "/v1/events",
            headers={"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t", "ce-time": "x"},
        )
        assert bad_time.status_code == 400 and "'time'" in error_of(bad_time)[1]


@pytest.mark.parametrize(
    ("body", "headers", "status", "fragment"),
    [
        (b"{oops", STRUCTURED, 400, "not valid JSON"),
        (b"", STRUCTURED, 400, "empty"),
        (json.dumps(event(1, specversion="0.3")).encode(), STRUCTURED, 400, "'specversion'"),
        (json.dumps(event(1, time="yesterday")).encode(), STRUCTURED, 400, "'time'"),
        (json.dumps(event(1, Bad="x")).encode(), STRUCTURED, 400, "'Bad'"),
        (b"hello", {"Content-Type": "text/plain"}, 415, "text/plain"),
        (json.dumps(event(1, data="x" * 300_000)).encode(), STRUCTURED, 413, "limit is 256 KiB"),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(
    bare: RunningPlatform, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    with bare.client() as api:
        last = api.get("/v1/events", params={"limit": 1}).json()["next"]
        answer = api.post("/v1/events", content=body, headers=headers)
        assert answer.status_code == status, answer.text
        assert fragment in error_of(answer)[1]
        assert api.get("/v1/events", params={"limit": 1}).json()["next"] == last


def test_events_need_a_token(bare: RunningPlatform) -> None:
    answer = httpx.post(f"{bare.url}/v1/events", json=event("tok1"))
    assert answer.status_code == 401


def test_emit_tail_and_show_through_the_cli(bare: RunningPlatform) -> None:
    emitted = bare.cli(
        "emit", "cli.order", "--source", "/cli", "--subject", "o-1", "--data", '{"total": 3}'
    )
    assert emitted.returncode == 0, emitted.stderr
    event_id = emitted.stdout.strip()
    assert len(event_id) == 36
    assert bare.cli("emit", "cli.user", "--ext", "tier=gold").returncode == 0

    tail = bare.cli("events", "tail", "--type", "cli.*")
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert len(lines) == 2
    assert "cli.order /cli [o-1]" in lines[0] and event_id in lines[0]
    assert '{"total":3}' in lines[0]
    assert "cli.user ondo.cli" in lines[1]
    only_orders = bare.cli("events", "tail", "--type", "cli.o*", "--json")
    (line,) = only_orders.stdout.splitlines()
    assert json.loads(line)["event"]["data"] == {"total": 3}

    shown = bare.cli("events", "show", event_id, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["event"]["subject"] == "o-1"
    bad = bare.cli("emit", "x", "--data", "{nope")
    assert bad.returncode == 1 and "--data is not valid JSON" in bad.stderr


def test_long_poll_returns_when_a_matching_event_arrives(bare: RunningPlatform) -> None:
    with bare.client() as api:
        (last,) = api.post("/v1/events", json=event("lp1", type="lp.other")).json()["seqs"]
        result: dict[str, Any] = {}

        def poll() -> None:
            params = {"after": last, "type": "lp.paid", "wait": 30}
            result.update(api.get("/v1/events", params=params).json())

        poller = threading.Thread(target=poll)
        poller.start()
        api.post("/v1/events", json=event("lp2", type="lp.other"))  # the poll keeps waiting
        (paid,) = api.post("/v1/events", json=event("lp3", type="lp.paid")).json()["seqs"]
        poller.join(60)
        assert [s["event"]["id"] for s in result["events"]] == ["lp3"]
        assert result["next"] == paid == last + 2
        quick = api.get("/v1/events", params={"after": paid, "type": "lp.*", "wait": 0}).json()
        assert quick == {"events": [], "next": paid}


def test_tail_follow_prints_new_events(bare: RunningPlatform) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "ondo", "events", "tail", "--follow", "--type", "follow.ping"],
        env={**bare.env, "ONDO_TOKEN": bare.token},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    ) as follower:
        try:
            with bare.client() as api:
                # e1 shows up either in the first page or as a new event: no race either way.
                api.post("/v1/events", json=event("fo1", type="follow.ping"))
                assert follower.stdout is not None
                assert "fo1" in follower.stdout.readline()
                api.post("/v1/events", json=event("fo2", type="follow.pong"))
                api.post("/v1/events", json=event("fo3", type="follow.ping"))
                assert "fo3" in follower.stdout.readline()
        finally:
            follower.kill()


def test_replay_lists_the_events_since_a_time(bare: RunningPlatform) -> None:
    with bare.client() as api:
        rule = {"name": "replayed", "text": "on re.x do emit re.seen"}
        assert api.post("/v1/rules", json=rule).status_code in (200, 201)
        batch = [event("re1", type="re.x"), event("re2", type="re.y")]
        api.post("/v1/events", content=json.dumps(batch), headers=BATCH)
        replay = {"since": "1h", "type": "re.?", "rule": "replayed"}
        answer = api.post("/v1/events/replay", json=replay)
        assert answer.status_code == 200, answer.text
        assert [e["id"] for e in answer.json()["events"]] == ["re1", "re2"]
        assert answer.json()["dispatched"] == 2  # handed to the rules dispatcher
        future = api.post("/v1/events/replay", json={"since": "2999-01-01T00:00:00Z"})
        assert future.json()["events"] == []
        bad = api.post("/v1/events/replay", json={"since": "last tuesday"})
        assert bad.status_code == 400 and "15m" in error_of(bad)[1]
    out = bare.cli("events", "replay", "--since", "10m", "--type", "re.?")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("2 event(s) since")
