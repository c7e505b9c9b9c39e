"""kill -9 while 5,000 events are posted, with a rule consuming them: after a restart every
event answered 202 is dispatched, and its action runs exactly once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform
from tests.functional.test_events_kill import post_all

TALLY = """
def handler(event, context):
    return event["id"]
"""


def tallied(db_path: Path) -> Counter[str]:
    """Event id → how many succeeded invocations of `tally` ran for it."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT result FROM invocations WHERE function = 'tally' AND status = 'succeeded'"
        ).fetchall()
    return Counter(json.loads(r[0]) for r in rows)


@pytest.mark.embedded_only  # reads ondo.db; test_distributed_kill.py is the distributed one
def test_every_accepted_event_is_dispatched_once_across_kill_9(tmp_path: Path) -> None:
    app = write_app(tmp_path / "tallyapp", {"tally": {"concurrency": 8}}, {"tally/app.py": TALLY})
    (app / "ondo.yaml").write_text(
        (app / "ondo.yaml").read_text()
        + "rules:\n  - name: count-load\n    when: 'on load.t do invoke tally'\n"
    )
    platform = RunningPlatform(tmp_path / "data", apps=[app]).start()
    try:
        accepted, _failures = asyncio.run(post_all(platform))
        assert platform.proc is not None and platform.proc.returncode == -9
        platform.start()
        db = platform.data_dir / "ondo.db"
        deadline = time.monotonic() + 240
        counts = tallied(db)
        while not accepted <= set(counts) and time.monotonic() < deadline:
            time.sleep(0.5)
            counts = tallied(db)
        missing = accepted - set(counts)
        assert not missing, f"{len(missing)} accepted events never ran their action"
        time.sleep(1.0)  # let anything that would run twice show itself
        doubled = {k: n for k, n in tallied(db).items() if n > 1}
        assert doubled == {}
    finally:
        platform.stop()
        platform.kill()
