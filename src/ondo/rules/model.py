"""What a rule is once parsed: frozen, JSON-able values shared by the parser, engine and API."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from ondo.actions.model import ACTION_KINDS, Action
from ondo.errors import PatternError, PatternTooLarge, RuleError, RuleTooLarge
from ondo.patterns import compile as compile_pattern
from ondo.patterns.limits import check_tree
from ondo.rules.conditions import Condition
from ondo.rules.limits import MAX_ACTIONS

ATTRIBUTE_KEYS: Final = frozenset({"subject", "source", "type", "id", "time"})
_PER = re.compile(r"[a-z0-9]+|data(\.[^.\s]+)+")


@dataclass(frozen=True)
class CountWindow:
    """`N times within D [per FIELD]`: fire once when `count` matching events arrived within
    `within_s` seconds (counted separately for each value of `per`), then start counting anew."""

    count: int
    within_s: float
    per: str | None = None


@dataclass(frozen=True)
class SustainWindow:
    """`for D [per FIELD]`: fire when the condition has held for `for_s` seconds, i.e. no event
    matching `RuleSpec.base_pattern` (same `per` value) failed the condition in that time."""

    for_s: float
    per: str | None = None


@dataclass(frozen=True)
class Throttle:
    """`at most once per D [per FIELD]`: after firing, stay quiet for `per_s` seconds."""

    per_s: float
    per: str | None = None


Window: TypeAlias = CountWindow | SustainWindow


@dataclass(frozen=True)
class RuleSpec:
    """A rule: which events (pattern, then the residual CEL condition), how many or how long
    (window), how often at most (throttle), and what to do (actions).

    `base_pattern` is the pattern without the where-condition (type, source, subject only):
    with a SustainWindow, an event matching base_pattern but not pattern+condition cancels the
    timer. It equals `pattern` when the rule has no where-condition.
    """

    pattern: Mapping[str, Any]
    condition: str | None
    window: Window | None
    throttle: Throttle | None
    actions: tuple[Action, ...]
    text: str | None = None
    base_pattern: Mapping[str, Any] | None = None


def parse_rule(text: str) -> RuleSpec:
    """The RuleSpec for a rule written in the `on … where … do …` language."""
    from ondo.rules.parser import parse_rule as parse  # the parser builds on this module

    return parse(text)


def check_duration(seconds: float, where: str) -> float:
    """`seconds` if it is a finite positive duration; RuleError naming `where` otherwise."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise RuleError(f"{where} must be a duration of more than zero seconds, got {seconds}")
    return seconds


def check_per(per: str | None, where: str) -> str | None:
    """`per` if it names an attribute ("subject") or a data path ("data.x.y")."""
    if per is not None and not (isinstance(per, str) and _PER.fullmatch(per)):
        raise RuleError(
            f'{where} must be an attribute name such as "subject" or a data path such as '
            f'"data.patient.id", got {per!r}'
        )
    return per


# --- JSON form --------------------------------------------------------------------------


def rule_to_json(spec: RuleSpec) -> dict[str, Any]:
    """The JSON form of a rule; `rule_from_json` reads it back to an equal RuleSpec."""
    return {
        "pattern": _plain(spec.pattern),
        "base_pattern": None if spec.base_pattern is None else _plain(spec.base_pattern),
        "condition": spec.condition,
        "window": _window_to_json(spec.window),
        "throttle": None
        if spec.throttle is None
        else {"per_s": spec.throttle.per_s, "per": spec.throttle.per},
        "actions": [_action_to_json(action) for action in spec.actions],
        "text": spec.text,
    }


def _window_to_json(window: Window | None) -> dict[str, Any] | None:
    if isinstance(window, CountWindow):
        return {
            "kind": "count",
            "count": window.count,
            "within_s": window.within_s,
            "per": window.per,
        }
    if isinstance(window, SustainWindow):
        return {"kind": "sustain", "for_s": window.for_s, "per": window.per}
    return None


def _action_to_json(action: Action) -> dict[str, Any]:
    args = None if action.args is None else _plain(action.args)
    out = {"kind": action.kind, "target": action.target, "args": args, "cc": list(action.cc)}
    if action.saying is not None:  # only when given: rules stored before `saying` stay equal
        out["saying"] = action.saying
    return out


def _plain(value: Any) -> Any:
    """Mappings and tuples turned into dicts and lists, for json.dumps and equality."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def rule_from_json(obj: Mapping[str, Any]) -> RuleSpec:
    """The RuleSpec for a rule's JSON form; `{"text": "on …"}` alone is parsed as a rule.

    A missing base_pattern means the same as the pattern. Raises RuleError naming the field."""
    if not isinstance(obj, Mapping):
        raise RuleError(f"a rule must be a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - _JSON_FIELDS)
    if unknown:
        raise RuleError(f"unknown rule field {unknown[0]!r}; expected {', '.join(_JSON_ORDER)}")
    for key, value in obj.items():  # before anything below recurses over them
        try:
            check_tree(value, key)
        except PatternTooLarge as exc:
            raise RuleTooLarge(str(exc)) from None
    text = _optional_str(obj.get("text"), "text")
    if "pattern" not in obj and text is not None:
        return parse_rule(text)
    pattern = _pattern(obj.get("pattern"), "pattern")
    base = obj.get("base_pattern")
    return RuleSpec(
        pattern=pattern,
        condition=_condition(obj.get("condition")),
        window=_window_from_json(obj.get("window")),
        throttle=_throttle_from_json(obj.get("throttle")),
        actions=_actions_from_json(obj.get("actions")),
        text=text,
        base_pattern=pattern if base is None else _pattern(base, "base_pattern"),
    )


_JSON_ORDER: Final = (
    "pattern",
    "base_pattern",
    "condition",
    "window",
    "throttle",
    "actions",
    "text",
)
_JSON_FIELDS: Final = frozenset(_JSON_ORDER)


def _pattern(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise RuleError(f'{where} must be a non-empty EventBridge pattern, e.g. {{"type": ["x"]}}')
    pattern: dict[str, Any] = _plain(value)
    check_pattern(pattern, where)
    return pattern


def check_pattern(pattern: Mapping[str, Any], where: str) -> None:
    """RuleError naming `where` when ondo.patterns refuses the pattern."""
    try:
        compile_pattern(pattern)
    except PatternTooLarge as exc:
        raise RuleTooLarge(f"{where}: {exc}") from exc
    except PatternError as exc:
        raise RuleError(f"{where}: {exc}") from exc


def _condition(value: Any) -> str | None:
    text = _optional_str(value, "condition")
    if text is None or not text.strip():
        return None
    try:
        Condition(text)
    except RuleError as exc:
        raise type(exc)(f"condition: {exc}") from exc
    return text


def _window_from_json(value: Any) -> Window | None:
    if value is None:
        return None
    window = _object(value, "window")
    kind = window.get("kind", "count" if "count" in window else "sustain")
    if kind == "count":
        _only(window, {"kind", "count", "within_s", "per"}, "window")
        count = window.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise RuleError(f"window.count must be a whole number of at least 1, got {count!r}")
        within = check_duration(
            _number(window.get("within_s"), "window.within_s"), "window.within_s"
        )
        return CountWindow(count, within, check_per(window.get("per"), "window.per"))
    if kind == "sustain":
        _only(window, {"kind", "for_s", "per"}, "window")
        for_s = check_duration(_number(window.get("for_s"), "window.for_s"), "window.for_s")
        return SustainWindow(for_s, check_per(window.get("per"), "window.per"))
    raise RuleError(f'window.kind must be "count" or "sustain", got {kind!r}')


def _throttle_from_json(value: Any) -> Throttle | None:
    if value is None:
        return None
    throttle = _object(value, "throttle")
    _only(throttle, {"per_s", "per"}, "throttle")
    per_s = check_duration(_number(throttle.get("per_s"), "throttle.per_s"), "throttle.per_s")
    return Throttle(per_s, check_per(throttle.get("per"), "throttle.per"))


def _actions_from_json(value: Any) -> tuple[Action, ...]:
    if not isinstance(value, list) or not value:
        raise RuleError("actions must be a non-empty list of actions")
    if len(value) > MAX_ACTIONS:
        raise RuleTooLarge(
            f"the rule has {len(value)} actions; at most {MAX_ACTIONS} (MAX_ACTIONS) are allowed"
        )
    return tuple(_action_from_json(item, f"actions[{i}]") for i, item in enumerate(value))


def _action_from_json(value: Any, where: str) -> Action:
    action = _object(value, where)
    _only(action, {"kind", "target", "args", "cc", "saying"}, where)
    kind = action.get("kind")
    if kind not in ACTION_KINDS:
        raise RuleError(f"{where}.kind must be one of {', '.join(ACTION_KINDS)}, got {kind!r}")
    target = action.get("target")
    if not isinstance(target, str) or not target:
        raise RuleError(f"{where}.target must be a non-empty string, got {target!r}")
    args = action.get("args")
    if args is not None and not isinstance(args, Mapping):
        raise RuleError(f"{where}.args must be a JSON object or null")
    cc = action.get("cc", [])
    if not isinstance(cc, list | tuple) or not all(isinstance(c, str) and c for c in cc):
        raise RuleError(f"{where}.cc must be a list of recipient names")
    saying = action.get("saying")
    if saying is not None and (kind != "notify" or not isinstance(saying, str)):
        raise RuleError(f"{where}.saying must be the text of a notification (notify only)")
    return Action(kind, target, None if args is None else _plain(args), tuple(cc), saying)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RuleError(f"{where} must be a JSON object or null, got {value!r}")
    return value


def _only(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise RuleError(
            f"{where}: unknown field {unknown[0]!r}; expected {', '.join(sorted(allowed))}"
        )


def _number(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RuleError(f"{where} must be a number of seconds, got {value!r}")
    return float(value)


def _optional_str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise RuleError(f"{where} must be a string or null, got {value!r}")
    return value
