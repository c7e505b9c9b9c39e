"""The rules engine's harness: its rule book validates rules as the platform wires it (the
real action kinds), which the `rules:` planner's error tests rely on."""

from __future__ import annotations

from tests.unit.rules_engine.conftest import harness

__all__ = ["harness"]
