"""SIGTERM while an invocation runs: it finishes, its caller gets the answer, and the platform
exits cleanly; a restart resumes with everything deployed."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform

SLOW = """
import time

def handler(event, context):
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}
"""


def test_sigterm_lets_in_flight_invocations_finish(tmp_path: Path) -> None:
    app = write_app(tmp_path / "slowapp", {"slow": {"timeout": 10}}, {"slow/app.py": SLOW})
    platform = RunningPlatform(tmp_path / "data", apps=[app]).start()
    answers: list[Any] = []

    def call() -> None:
        with platform.client() as api:
            answers.append(api.post("/v1/functions/slow/invoke", json={"seconds": 1.5}))

    caller = threading.Thread(target=call)
    try:
        caller.start()
        time.sleep(0.5)
        # uvicorn re-raises the signal after its graceful shutdown, as daemons conventionally do.
        assert platform.stop(timeout=30) in (0, -signal.SIGTERM)
        assert "shutting down" in platform.log()
        caller.join(10)
        assert answers and answers[0].status_code == 200
        assert answers[0].json() == {"slept": 1.5}
        invocation_id = answers[0].headers["X-Ondo-Invocation-Id"]
        platform.start()
        with platform.client() as api:
            record = api.get(f"/v1/invocations/{invocation_id}").json()
            assert record["status"] == "succeeded"
            assert api.post("/v1/functions/slow/invoke", json={"seconds": 0}).status_code == 200
        refused = httpx.get(f"{platform.url}/v1/functions")
        assert refused.status_code == 401
    finally:
        platform.stop()
        platform.kill()
