"""Async invocations with Lambda's semantics: retries with backoff, maximum event age, the DLQ
and the on-failure destination; on a manual clock, so every wait is exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.functional.platform import RunningPlatform, wait_for

FAILING = "def handler(event, context):\n    raise RuntimeError('no luck: ' + str(event))\n"
CATCHER = "def handler(event, context):\n    return {'caught': event}\n"


def write_app(root: Path, async_settings: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "retrying",
        "functions": {"flaky": {"async": async_settings}, "catcher": {}},
    }
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    for name, body in (("flaky", FAILING), ("catcher", CATCHER)):
        (root / name).mkdir(exist_ok=True)
        (root / name / "app.py").write_text(body)
    return root


def submit(api: httpx.Client, payload: Any) -> str:
    answer = api.post("/v1/functions/flaky/invoke?mode=async", json=payload)
    assert answer.status_code == 202, answer.text
    invocation_id: str = answer.json()["id"]
    return invocation_id


def job_after(api: httpx.Client, job_id: int, attempts: int, status: str) -> dict[str, Any]:
    """The job once its attempt `attempts` has been settled (`pending` again, or `dead`)."""
    return wait_for(
        lambda: (
            (job := api.get(f"/v1/dlq/{job_id}").json()).get("attempts") == attempts
            and job["status"] == status
            and job
        )
    )


def advance(api: httpx.Client, seconds: float) -> None:
    api.post("/v1/clock/advance", json={"seconds": seconds}).raise_for_status()


def test_a_failing_async_invocation_is_retried_twice_with_backoff_then_sent_on(
    tmp_path: Path, manual_platform: RunningPlatform
) -> None:
    app = write_app(tmp_path / "retrying", {"retries": 2, "on_failure": "invoke catcher"})
    assert manual_platform.cli("deploy", str(app)).returncode == 0
    with manual_platform.client() as api:
        invocation_id = submit(api, {"n": 1})
        # Attempt 1 fails now; the retry waits 0.5-1 s (ONDO_ACTION_BACKOFF 1, equal jitter).
        job = job_after(api, 1, 1, "pending")
        assert 0.5 <= job["next_attempt_at"] - job["updated_at"] <= 1.0
        record = api.get(f"/v1/invocations/{invocation_id}").json()
        assert (record["status"], record["attempt"], record["mode"]) == ("failed", 1, "async")
        advance(api, 1.0)
        job = job_after(api, 1, 2, "pending")  # attempt 2 failed; then 1-2 s (doubled)
        assert 1.0 <= job["next_attempt_at"] - job["updated_at"] <= 2.0
        assert api.get(f"/v1/invocations/{invocation_id}").json()["attempt"] == 2
        advance(api, 2.0)
        job = job_after(api, 1, 3, "dead")  # no third retry: retries 2 = three attempts
        assert job["invocation_ids"] == [invocation_id]
        dead = api.get("/v1/dlq").json()["dead_letters"]
        assert [d["id"] for d in dead] == [1]
        record = api.get(f"/v1/invocations/{invocation_id}").json()
        assert (record["status"], record["attempt"]) == ("failed", 3)
        assert "no luck" in record["error"]["errorMessage"]
        caught = wait_for(
            lambda: [
                r
                for r in api.get("/v1/functions/catcher/invocations").json()["invocations"]
                if r["status"] == "succeeded"
            ]
        )
    sent = caught[0]["result"]["caught"]
    assert sent["requestContext"]["requestId"] == invocation_id
    assert sent["requestContext"]["condition"] == "RetriesExhausted"
    assert sent["requestContext"]["approximateInvokeCount"] == 3
    assert sent["requestPayload"] == {"n": 1}
    assert caught[0]["trigger"] == "on_failure:flaky"


def test_an_async_event_older_than_max_event_age_is_not_tried_again(
    tmp_path: Path, manual_platform: RunningPlatform
) -> None:
    settings = {"retries": 2, "max_event_age": "60s", "on_failure": "emit flaky.gave-up"}
    app = write_app(tmp_path / "retrying", settings)
    assert manual_platform.cli("deploy", str(app)).returncode == 0
    with manual_platform.client() as api:
        invocation_id = submit(api, {"n": 2})
        job_after(api, 1, 1, "pending")
        advance(api, 61.0)  # the retry falls due, but the event is now 61 s old
        job = job_after(api, 1, 2, "dead")
        assert "over the limit of 60 s (async.max_event_age of flaky)" in job["last_error"]["error"]
        # The attempt that was too old never ran: the record is still attempt 1's.
        assert api.get(f"/v1/invocations/{invocation_id}").json()["attempt"] == 1
        events = wait_for(
            lambda: api.get("/v1/events", params={"type": "flaky.gave-up"}).json()["events"]
        )
    event = events[0]["event"] if "event" in events[0] else events[0]
    assert event["source"] == "ondo/functions/flaky"
    assert event["data"]["requestContext"]["condition"] == "EventAgeExceeded"
    assert event["data"]["requestPayload"] == {"n": 2}


def test_retries_zero_dead_letters_after_the_first_failure(
    tmp_path: Path, manual_platform: RunningPlatform
) -> None:
    app = write_app(tmp_path / "retrying", {"retries": 0})
    assert manual_platform.cli("deploy", str(app)).returncode == 0
    with manual_platform.client() as api:
        submit(api, {"n": 3})
        job = job_after(api, 1, 1, "dead")
    assert job["max_attempts"] == 1


def test_async_settings_out_of_range_are_refused_with_file_and_line(
    tmp_path: Path, manual_platform: RunningPlatform
) -> None:
    for settings, message in (
        ({"retries": 3}, "(functions.flaky.async.retries): must be between 0 and 2, got 3"),
        ({"max_event_age": "7h"}, "must be between 60s and 6h, got 25200 s"),
        ({"max_event_age": "soon"}, "duration 'soon' is not understood; write a number"),
        ({"on_failure": "page bob"}, "must be `invoke FUNCTION` or `emit EVENT-TYPE`"),
        ({"on_failure": "invoke nobody"}, "function 'nobody' does not exist"),
        ({"retry": 1}, "unknown key 'retry'; allowed here: retries, max_event_age, on_failure"),
    ):
        app = write_app(tmp_path / "retrying", settings)
        out = manual_platform.cli("deploy", str(app))
        assert out.returncode == 1, settings
        assert "ondo.yaml:" in out.stderr and message in out.stderr, out.stderr


SLOW = (
    "import time\n\ndef handler(event, context):\n    time.sleep(event['sleep'])\n    return {}\n"
)


def test_an_async_invocation_given_up_before_it_ran_ends_failed(
    tmp_path: Path, manual_platform: RunningPlatform
) -> None:
    app = tmp_path / "slowly"
    (app / "slow").mkdir(parents=True)
    (app / "slow" / "app.py").write_text(SLOW)
    manifest = {"name": "slowly", "functions": {"slow": {"concurrency": 1}}}
    (app / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    assert manual_platform.cli("deploy", str(app)).returncode == 0
    with manual_platform.client() as api:
        first = api.post("/v1/functions/slow/invoke?mode=async", json={"sleep": 10}).json()["id"]
        # Concurrency 1: the second waits in the queue while the first runs.
        second = api.post("/v1/functions/slow/invoke?mode=async", json={"sleep": 0}).json()["id"]
        wait_for(lambda: api.get(f"/v1/invocations/{first}").json()["status"] == "running")
        assert api.get(f"/v1/invocations/{second}").json()["status"] == "queued"
        assert api.delete("/v1/functions/slow").status_code == 200
        ended = wait_for(
            lambda: (r := api.get(f"/v1/invocations/{second}").json())["status"] != "queued" and r
        )
    assert ended["status"] == "failed" and ended["error"]["errorType"] == "Ondo.NotRun"
    assert "function 'slow' does not exist" in ended["error"]["errorMessage"]
