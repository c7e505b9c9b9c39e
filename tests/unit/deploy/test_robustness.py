"""Property test: the manifest reader refuses any ondo.yaml it cannot take with ConfigError
(its limits with ConfigLimitExceeded, a ConfigError), never another exception, within a bound of
work (hypothesis' deadline; texts reach deep nesting, alias bombs and unknown tags)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ondo.deploy.manifest import parse_manifest
from ondo.errors import ConfigError
from tests.unit.huge import Repeat, bounded, build

BOUNDED = bounded(300)
PIECES = ["name: app\n", "functions:\n", "rules:\n", "  f:\n", "    code: .\n", "- ", ": ", "\n"]
PIECES += ["{", "}", "[", "]", ",", "&a ", "*a", "&b ", "*b", "!!python/object:os.system x"]
PIECES += ["? ", "'q'", '"s"', "1e400", "9" * 5000, "<<: *a\n", "!!binary aGk=", "\t", "#"]
PIECES += ["    handler: app.handler\n", "    timeout: 5\n", "  - when: on x do invoke f\n"]
piece = st.sampled_from(PIECES)
run = st.builds(Repeat, piece, st.integers(1, 3_000))


def _bomb(levels: int) -> str:
    lines = ['l0: &l0 ["x","x","x","x","x","x","x","x","x","x"]']
    for level in range(1, levels):
        refs = ",".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


text = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(piece, piece, run), max_size=20),
    st.integers(1, 9).map(_bomb),
)


@BOUNDED
@given(text)
def test_any_manifest_text_is_read_or_refused_with_a_config_error(given: str | list[Any]) -> None:
    text = given if isinstance(given, str) else "".join(build(given))
    with contextlib.suppress(ConfigError):
        parse_manifest(text, Path("/nonexistent-app"), "ondo.yaml")
