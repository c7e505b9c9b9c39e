"""`ondo logs --follow` prints every finished invocation once, even one committed after a record
that finished later (group commits on PostgreSQL land out of finishing order)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from ondo.cli import invoke as invoke_cli


class Stop(Exception):
    pass


class Server:
    """What `GET /v1/functions/f/logs?after=` answers, as the store's commits go by."""

    def __init__(self, commits: list[list[dict[str, Any]]]) -> None:
        self.commits = commits  # what is committed before each poll
        self.stored: list[dict[str, Any]] = []
        self.polls: list[float] = []

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        if not self.commits:
            raise Stop
        self.stored += self.commits.pop(0)
        after = float(params["after"])
        self.polls.append(after)
        found = sorted((r for r in self.stored if r["finished_at"] > after), key=_finished)
        return {"invocations": found[: params["limit"]]}


def _finished(record: dict[str, Any]) -> float:
    return float(record["finished_at"])


def _record(rid: str, finished_at: float) -> dict[str, Any]:
    return {
        "id": rid, "finished_at": finished_at, "created_at": finished_at, "version": 1,
        "status": "succeeded", "duration_ms": 1.0, "cold": False, "logs": "", "error": None,
    }  # fmt: skip


def printed_ids(capsys: pytest.CaptureFixture[str]) -> list[str]:
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line)["id"] for line in lines if line.strip()]


def follow(server: Server, monkeypatch: pytest.MonkeyPatch, shown: list[dict[str, Any]]) -> None:
    monkeypatch.setattr(invoke_cli, "FOLLOW_POLL_S", 0.0)
    with pytest.raises(Stop):
        invoke_cli._follow(server, argparse.Namespace(name="f", json=True), shown)


def test_a_record_committed_after_a_later_one_is_still_printed_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    late, early_commit = _record("a", 9.5), _record("b", 10.0)
    server = Server([[early_commit], [late], [], [_record("c", 11.0)]])
    follow(server, monkeypatch, shown=[])
    assert printed_ids(capsys) == ["b", "a", "c"]


def test_a_full_page_of_printed_records_does_not_stop_the_follow(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(invoke_cli, "FOLLOW_PAGE", 3)
    burst = [_record(f"r{n}", 100.0 + n / 1000) for n in range(7)]
    server = Server([burst, [], [], []])
    follow(server, monkeypatch, shown=burst[:2])
    assert printed_ids(capsys) == [f"r{n}" for n in range(2, 7)]
    assert server.polls[1] > server.polls[0]  # the second page starts where the first ended
