"""`rules:` in ondo.yaml: the plan (create/update/unchanged/delete) and errors naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ondo.deploy.manifest import Manifest, parse_manifest
from ondo.deploy.rules import plan_rules
from ondo.errors import ConfigError
from tests.unit.rules_engine.conftest import Harness


def _manifest(tmp_path: Path, rules_yaml: str) -> Manifest:
    code = tmp_path / "app" / "hello"
    code.mkdir(parents=True, exist_ok=True)
    (code / "app.py").write_text("def handler(event, context):\n    return event\n")
    text = f"name: shop\nfunctions:\n  hello:\n    code: ./hello\nrules:\n{rules_yaml}"
    return parse_manifest(text, tmp_path / "app", "ondo.yaml")


RULES = """\
  - name: greet
    when: 'on user.created do invoke hello'
  - name: echo
    pattern: {"type": ["ping"]}
    actions: [{"kind": "emit", "target": "pong"}]
"""


def _changes(harness: Harness, manifest: Manifest) -> dict[str, str]:
    steps = plan_rules(harness.platform.rules.book, manifest, "default")
    for step in steps:
        harness.run(lambda step=step: step.apply(harness.platform.deploy_targets))  # type: ignore[misc]
    return {s.name: s.change for s in steps}


def test_plan_creates_then_leaves_unchanged_then_updates_and_deletes(
    harness: Harness, tmp_path: Path
) -> None:
    first = _manifest(tmp_path, RULES)
    # `greet` invokes a function of the same manifest: valid although not deployed yet
    steps = plan_rules(harness.platform.rules.book, first, "default")
    assert {s.name: s.change for s in steps} == {"greet": "create", "echo": "create"}

    emit_rules = """\
  - name: echo
    pattern: {"type": ["ping"]}
    actions: [{"kind": "emit", "target": "pong"}]
  - {name: shout, when: 'on ping do emit loud'}
"""
    assert _changes(harness, _manifest(tmp_path, emit_rules)) == {
        "echo": "create",
        "shout": "create",
    }
    assert _changes(harness, _manifest(tmp_path, emit_rules)) == {
        "echo": "unchanged",
        "shout": "unchanged",
    }
    changed = "  - {name: shout, when: 'on ping do emit louder'}\n"
    assert _changes(harness, _manifest(tmp_path, changed)) == {
        "shout": "update",
        "echo": "delete",
    }
    stored = harness.run(lambda: harness.platform.rules.book.get("default", "shout"))
    assert stored.text == "on ping do emit louder" and stored.app == "shop"


@pytest.mark.parametrize(
    ("rules_yaml", "line", "words"),
    [
        ("  - name: bad\n    when: 'on ping do dance'\n", 7, "dance"),
        ("  - name: gone\n    when: 'on ping do invoke nothere'\n", 7, "nothere"),
        ("  - name: copy\n    when: 'on ping do bcc bob'\n", 7, "acts on mail.received events"),
        ("  - name: who\n    when: 'on ping do notify bob'\n", 7, "no contact or group 'bob'"),
        ("  - name: odd\n    colour: blue\n", 7, "unknown key 'colour'"),
        ("  - {name: a, when: 'on x do emit y'}\n  - {name: a, when: 'on z do emit y'}\n", 7, "a"),
    ],
)
def test_errors_name_the_line_and_create_nothing(
    harness: Harness, tmp_path: Path, rules_yaml: str, line: int, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_rules(harness.platform.rules.book, _manifest(tmp_path, rules_yaml), "default")
    assert str(caught.value).startswith(f"ondo.yaml:{line} (rules.")
    assert words in str(caught.value)
    assert harness.platform.rules.book.stored_in("default") == []
