"""Every bound on a rule, in one place (docs/rules.md lists them with their values).

A rule is user input that the platform keeps running against every event, so whatever grows with
it is bounded and checked once, when the rule is defined, never per event: the parser, the
pattern compiler, the Matcher and the CEL evaluator all recurse or cost more than linearly in
some part of a rule. A rule past a bound is refused with RuleTooLarge, whose message names the
bound (and 400 from the API), before anything is stored.

The bounds of the pattern a rule compiles to live with the pattern compiler (ondo.patterns
cannot import from here) and are re-exported below.
"""

from __future__ import annotations

from typing import Final

from ondo.patterns.limits import (
    MAX_ALTERNATIVES,
    MAX_PATH_SEGMENTS,
    MAX_PATTERN_DEPTH,
    MAX_PATTERN_SIZE,
    MAX_PATTERN_STATES,
)
from ondo.patterns.wildcards import MAX_COMPLEXITY as MAX_WILDCARD_COMPLEXITY

__all__ = [
    "ALL",
    "MAX_ACTIONS",
    "MAX_ALTERNATIVES",
    "MAX_CEL_BYTES",
    "MAX_CEL_DEPTH",
    "MAX_CONDITIONS",
    "MAX_CONDITION_DEPTH",
    "MAX_PATH_SEGMENTS",
    "MAX_PATTERN_DEPTH",
    "MAX_PATTERN_SIZE",
    "MAX_PATTERN_STATES",
    "MAX_RULE_TEXT_BYTES",
    "MAX_WILDCARD_COMPLEXITY",
]

MAX_RULE_TEXT_BYTES: Final = 16_384  # a rule written as text, in UTF-8
MAX_CONDITION_DEPTH: Final = 10  # parentheses and `not`s nested in a where-condition
MAX_CONDITIONS: Final = 64  # tests (==, >, in, contains, exists, …) in one where-condition
MAX_ACTIONS: Final = 32  # actions after `do`: each firing enqueues one job per action
MAX_CEL_BYTES: Final = 16_384  # a condition's CEL source, given or generated, in UTF-8
# Depth of a CEL condition's syntax tree. cel-python evaluates by recursion, about five Python
# frames per level (one parenthesis is ten levels): 128 levels stay well inside the recursion
# limit wherever a condition is evaluated (dispatcher, API request, test).
MAX_CEL_DEPTH: Final = 128

ALL: Final = {
    "MAX_RULE_TEXT_BYTES": MAX_RULE_TEXT_BYTES,
    "MAX_CONDITION_DEPTH": MAX_CONDITION_DEPTH,
    "MAX_CONDITIONS": MAX_CONDITIONS,
    "MAX_ACTIONS": MAX_ACTIONS,
    "MAX_CEL_BYTES": MAX_CEL_BYTES,
    "MAX_CEL_DEPTH": MAX_CEL_DEPTH,
    "MAX_PATH_SEGMENTS": MAX_PATH_SEGMENTS,
    "MAX_PATTERN_DEPTH": MAX_PATTERN_DEPTH,
    "MAX_PATTERN_SIZE": MAX_PATTERN_SIZE,
    "MAX_ALTERNATIVES": MAX_ALTERNATIVES,
    "MAX_PATTERN_STATES": MAX_PATTERN_STATES,
    "MAX_WILDCARD_COMPLEXITY": MAX_WILDCARD_COMPLEXITY,
}
