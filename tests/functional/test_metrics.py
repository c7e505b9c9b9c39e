"""Every series on /metrics is fed by real traffic, and README.md lists each of them."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.functional.platform import RunningPlatform, wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
OK = "def handler(event, context):\n    return {'ok': True}\n"
BAD = "def handler(event, context):\n    raise ValueError('bad')\n"
SLOW = "import time\n\ndef handler(event, context):\n    time.sleep(2)\n    return {}\n"


def write_app(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "metered",
        "functions": {
            "ok": {},
            "bad": {"async": {"retries": 0}},
            "slow": {"concurrency": 1},
        },
        "rules": [
            {"name": "ping", "when": "on test.ping do invoke ok"},
            {"name": "fail", "when": "on test.bad do invoke bad"},
            {"name": "quiet", "when": "on test.quiet at most once per 1h do invoke ok"},
        ],
        "sources": {  # one that emits (a public webhook), one that fails (nothing on port 1)
            "hook": {
                "kind": "http",
                "routes": [{"method": "POST", "path": "/ping", "event": "test.hooked"}],
            },
            "broken": {
                "kind": "mqtt",
                "url": "mqtt://127.0.0.1:1",
                "topics": [{"topic": "t/{subject}", "type": "t.x"}],
            },
        },
    }
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    for name, body in (("ok", OK), ("bad", BAD), ("slow", SLOW)):
        (root / name).mkdir(exist_ok=True)
        (root / name / "app.py").write_text(body)
    return root


def scrape(api: httpx.Client) -> dict[str, list[Any]]:
    """Family name -> its samples (counters under their `_total` name, as written)."""
    text = api.get("/metrics").text
    families: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.endswith("_created"):  # a counter's creation time, not a series of ours
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        families[name] = family.samples
    return families


def value(families: dict[str, list[Any]], name: str, **labels: str) -> float:
    """The sum of the samples called `name` with these labels."""
    return sum(
        s.value
        for s in families.get(name, [])
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def event(type_: str, n: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"{type_}-{n}", "source": "tests/metrics", "type": type_}


def test_every_series_is_fed_by_real_traffic_and_listed_in_the_readme(tmp_path: Path) -> None:
    env = {
        "ONDO_ACTION_MAX_ATTEMPTS": "2",
        "ONDO_ACTION_BACKOFF": "0.01",
        "ONDO_ACTION_DESTINATIONS": "none",  # so the only events are the test's own
        # retention deletes the events a second old, looking every 0.1 s
        "ONDO_RETENTION_EVENTS": "1s",
        "ONDO_RETENTION_RECORDS": "1s",
        "ONDO_RETENTION_EVERY": "100ms",
    }
    app = write_app(tmp_path / "metered")
    with RunningPlatform(tmp_path / "data", apps=[app], env=env) as p, p.client() as api:
        for async_call in range(3):  # concurrency 1: two of them wait in the queue
            answer = api.post("/v1/functions/slow/invoke?mode=async", json={"n": async_call})
            assert answer.status_code == 202
        backlog = wait_for(
            lambda: (
                (f := scrape(api))
                and value(f, "ondo_async_backlog", function="slow") >= 1
                and value(f, "ondo_action_jobs_oldest_pending_age_seconds") > 0
                and f
            )
        )
        assert value(backlog, "ondo_action_jobs", status="pending") >= 1
        batch = [event("test.ping", 1), event("test.bad", 1)]
        batch += [event("test.quiet", 1), event("test.quiet", 2)]
        assert api.post("/v1/events", json=batch).status_code == 202
        assert api.post("/v1/events", json=batch[:1]).json()["duplicates"] == ["test.ping-1"]
        assert api.post("/v1/functions/ok/invoke", json={}).status_code == 200
        assert api.post("/v1/functions/bad/invoke?mode=async", json={}).status_code == 202
        assert api.post("/http/default/hook/ping", json={}).status_code == 202
        families = wait_for(
            lambda: (
                (f := scrape(api))
                and value(f, "ondo_actions_dead_lettered_total") >= 2
                and value(f, "ondo_action_jobs", status="dead") >= 2
                and value(f, "ondo_async_backlog", function="slow") == 0
                and value(f, "ondo_rules_suppressed_total") >= 1
                and value(f, "ondo_action_jobs", status="pending") == 0
                and value(f, "ondo_action_jobs", status="running") == 0
                and value(f, "ondo_retention_pruned_rows_total", kind="events") >= 5
                and value(f, "ondo_source_errors_total", source="broken") >= 1
                and f
            )
        )
    assert value(families, "ondo_events_ingested_total", namespace="default") == 5
    assert value(families, "ondo_source_events_total", source="hook") == 1
    assert value(families, "ondo_source_connected", source="hook") == 1
    for name, samples in families.items():
        assert samples, f"{name} is declared but has no samples after real traffic"
        if name.endswith("_total"):
            fed = any(s.value > 0 for s in samples if s.name == name)
            assert fed, f"{name} was never incremented"
    listed = set(re.findall(r"`(ondo_[a-z_]+)", README.read_text()))
    missing = {name for name in families if name not in listed}
    assert not missing, f"README.md does not list: {sorted(missing)}"


def test_metrics_take_the_admins_token_or_the_scrape_token(tmp_path: Path) -> None:
    with RunningPlatform(tmp_path / "data") as p, p.client() as api:
        scrape_file = p.data_dir / "metrics.token"
        assert stat.S_IMODE(os.stat(scrape_file).st_mode) == 0o600
        assert str(scrape_file) in p.log()  # startup says where it is
        scrape_token = scrape_file.read_text().strip()
        url = f"{p.url}/metrics"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
        # Prometheus' `authorization: {credentials_file: …}` sends exactly this header
        scraped = httpx.get(url, headers={"Authorization": f"Bearer {scrape_token}"})
        assert scraped.status_code == 200 and "ondo_invocations_total" in scraped.text
        assert api.get("/metrics").status_code == 200  # the platform admin's token
        issued = api.post("/v1/tokens", json={"principal": "dev", "namespace": "default"})
        tenant = {"Authorization": f"Bearer {issued.json()['token']}"}
        assert httpx.get(url, headers=tenant).status_code == 404  # platform-wide, as /v1/status
        # the scrape token opens /metrics only
        assert (
            httpx.get(f"{p.url}/v1/functions", headers=scraped.request.headers).status_code == 401
        )
    with RunningPlatform(tmp_path / "data") as again:  # kept across restarts
        assert (again.data_dir / "metrics.token").read_text().strip() == scrape_token
