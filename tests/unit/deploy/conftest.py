"""The rules engine's harness fixture: planning `rules:` needs a platform with its rule book."""

from __future__ import annotations

from tests.unit.rules_engine.conftest import harness

__all__ = ["harness"]
