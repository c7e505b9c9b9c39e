"""Small apps written to disk by tests: an ondo.yaml plus handler modules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml


def write_app(root: Path, functions: dict[str, dict[str, object]], code: dict[str, str]) -> Path:
    """`functions` goes into ondo.yaml; `code` maps 'fn/app.py' to source text."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ondo.yaml").write_text(yaml.safe_dump({"name": root.name, "functions": functions}))
    for rel, text in code.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root
