"""EventBridge-compatible event patterns: compile one, match many with the indexed Matcher.

compile(pattern) -> CompiledPattern      pattern: dict or JSON text; invalid -> PatternError
CompiledPattern.matches(event) -> bool
explain(pattern, event) -> str | None    None when it matches, else why not
Matcher: add(rule_id, pattern), remove(rule_id), matching(event) -> set[str], len()
"""

from __future__ import annotations

from ondo.errors import PatternError
from ondo.patterns.matcher import Matcher
from ondo.patterns.pattern import CompiledPattern, explain
from ondo.patterns.pattern import compile_pattern as compile

__all__ = ["CompiledPattern", "Matcher", "PatternError", "compile", "explain"]
