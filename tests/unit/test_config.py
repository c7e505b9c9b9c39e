from __future__ import annotations

import ast
import asyncio
import math
from pathlib import Path

import pytest

import ondo
from ondo.config import Config, QueueSettings, from_environment, queue_settings, retention_overrides
from ondo.errors import ConfigError
from ondo.platform import Platform


def test_egress_allow_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONDO_EGRESS_ALLOW", "127.0.0.1:5432, [::1]:6379")
    assert from_environment().egress_allow == ("127.0.0.1:5432", "[::1]:6379")


def test_a_bad_egress_allow_entry_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONDO_EGRESS_ALLOW", "localhost:5432")
    with pytest.raises(ConfigError, match="ONDO_EGRESS_ALLOW: 'localhost:5432' is not an allowed"):
        from_environment()


def test_the_action_queue_settings_come_from_the_environment_and_bad_values_are_named() -> None:
    env = {"ONDO_ACTION_BACKOFF": "0.05", "ONDO_ACTION_MAX_ATTEMPTS": "5"}
    settings = queue_settings(env)
    assert (settings.backoff_s, settings.max_attempts, settings.destinations) == (0.05, 5, "all")
    assert queue_settings({}) == QueueSettings()
    with pytest.raises(ConfigError, match="ONDO_ACTION_BACKOFF must be a number, got 'soon'"):
        queue_settings({"ONDO_ACTION_BACKOFF": "soon"})
    with pytest.raises(ConfigError, match="ONDO_ACTION_WORKERS must be greater than 0"):
        queue_settings({"ONDO_ACTION_WORKERS": "0"})
    with pytest.raises(ConfigError, match="one of all, failed, none"):
        queue_settings({"ONDO_ACTION_DESTINATIONS": "some"})


def test_from_environment_reads_the_action_queue_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONDO_ACTION_MAX_ATTEMPTS", "7")
    assert from_environment().actions.max_attempts == 7


def test_the_platform_hands_the_queue_its_settings(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "data", actions=QueueSettings(max_attempts=7))
    platform = Platform(config)
    try:
        assert platform.actions.settings.max_attempts == 7
    finally:
        asyncio.run(platform.bus.close())
        asyncio.run(platform.store.close())


# Where the environment may be read: the configuration, the CLI and its HTTP client (which
# find the platform), and the bootstrap that runs inside a sandbox (it sets the function's own).
READS_ENVIRONMENT = {"config.py", "client.py", "credentials.py", "runtime/bootstrap.py"}


def test_only_the_configuration_reads_the_environment() -> None:
    root = Path(ondo.__file__).parent
    readers = set()
    for path in root.rglob("*.py"):
        name = path.relative_to(root).as_posix()
        if name.startswith("cli/") or name in READS_ENVIRONMENT:
            continue
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if _reads_environment(node):
                readers.add(f"{name}:{node.lineno}")
    assert readers == set(), "read the setting in ondo/config.py and pass it in"


def _reads_environment(node: ast.AST) -> bool:
    names = {"environ", "getenv", "environb"}
    if isinstance(node, ast.Attribute):
        return node.attr in names
    if isinstance(node, ast.ImportFrom) and node.module == "os":
        return bool({a.name for a in node.names} & names)
    return False


def test_retention_defaults_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    base = from_environment()
    assert (base.retention_events_s, base.retention_records_s, base.retention_jobs_s) == (
        7 * 86400.0,
        30 * 86400.0,
        7 * 86400.0,
    )
    monkeypatch.setenv("ONDO_RETENTION_EVENTS", "30s")
    monkeypatch.setenv("ONDO_RETENTION_RECORDS", "1h30m")
    monkeypatch.setenv("ONDO_RETENTION_JOBS", "forever")
    monkeypatch.setenv("ONDO_RETENTION_EVERY", "2s")
    config = from_environment()
    assert (config.retention_events_s, config.retention_records_s) == (30.0, 5400.0)
    assert config.retention_jobs_s == math.inf and config.retention_every_s == 2.0


def test_retention_flags_and_what_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert retention_overrides(["events=1d", "jobs=2w"]) == {
        "retention_events_s": 86400.0,
        "retention_jobs_s": 14 * 86400.0,
    }
    with pytest.raises(ConfigError, match="--retention 'logs=1d' must be KIND=DURATION"):
        retention_overrides(["logs=1d"])
    with pytest.raises(ConfigError, match="--retention events: a retention must be more than"):
        retention_overrides(["events=0s"])
    monkeypatch.setenv("ONDO_RETENTION_EVENTS", "a week")
    with pytest.raises(ConfigError, match="ONDO_RETENTION_EVENTS: duration 'a week' is not"):
        from_environment()
    monkeypatch.setenv("ONDO_RETENTION_EVENTS", "60d")  # longer than the decisions' 30 days
    with pytest.raises(ConfigError, match=r"retention of records .* at least that of events"):
        from_environment()
