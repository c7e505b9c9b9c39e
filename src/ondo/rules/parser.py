"""Parse `on TYPE [from S] [about X] [where C] [window] [throttle] do ACTIONS` into a RuleSpec.

A hand-written recursive-descent parser: every error names the column and says how to fix it.
The grammar is written out in docs/rules.md.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ondo.actions.model import ACTION_KINDS, Action
from ondo.durations import accepted_forms, parse_duration
from ondo.errors import DurationError, RuleError, RuleTooLarge
from ondo.rules.compile import split_condition
from ondo.rules.conditions import (
    ORDERING,
    And,
    Check,
    Compare,
    Condition,
    Field,
    Literal,
    Node,
    Not,
    Or,
)
from ondo.rules.lexer import (
    END,
    JSON,
    NUMBER,
    OP,
    PUNCT,
    STRING,
    WORD,
    Token,
    syntax_error,
    tokenize,
)
from ondo.rules.limits import (
    MAX_ACTIONS,
    MAX_CONDITION_DEPTH,
    MAX_CONDITIONS,
    MAX_PATH_SEGMENTS,
    MAX_RULE_TEXT_BYTES,
)
from ondo.rules.model import (
    ATTRIBUTE_KEYS,
    CountWindow,
    RuleSpec,
    SustainWindow,
    Throttle,
    Window,
    check_pattern,
)

_SEGMENT = re.compile(r"[\w-]+")
_ATTRIBUTE = re.compile(r"[a-z0-9]+")
_CLAUSE_WORDS: Final = frozenset({"on", "from", "about", "where", "for", "at", "do"})
_CONDITION_WORDS: Final = frozenset(
    {"and", "or", "not", "in", "contains", "startswith", "endswith", "exists"}
)
_TEXT_TESTS: Final = ("contains", "startswith", "endswith")
_LITERAL_WORDS: Final[dict[str, Literal]] = {"true": True, "false": False, "null": None}
_FLIPPED: Final = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_WINDOW_HINT: Final = 'or a window such as "3 times within 1h", "for 10m", "at most once per 1h"'


def parse_rule(text: str) -> RuleSpec:
    """The RuleSpec for `text`; RuleSyntaxError or RuleError (with the column) when it is wrong,
    RuleTooLarge when it exceeds a bound of ondo.rules.limits."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_RULE_TEXT_BYTES:
        raise RuleTooLarge(
            f"the rule is {size} bytes long; at most {MAX_RULE_TEXT_BYTES} "
            "(MAX_RULE_TEXT_BYTES) are allowed; split it into several rules"
        )
    return _Parser(text).rule()


def parse_condition(text: str) -> Node:
    """The syntax tree of a where-condition alone (what follows "where" in a rule)."""
    parser = _Parser(text)
    condition = parser.condition()
    if parser.token.kind != END:
        raise syntax_error(
            f"unexpected {parser.token.describe()} after the condition", parser.token.column
        )
    return condition


@dataclass(frozen=True)
class _Operand:
    """One side of a comparison: a field, a literal or a list of literals."""

    field: Field | None
    value: Literal | tuple[Literal, ...]
    token: Token


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0  # parentheses and `not`s open around the token
        self.tests = 0  # tests read in the where-condition so far

    # --- token helpers -------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def accept(self, *words: str) -> Token | None:
        """Consume and return the token when it is one of `words` (or punctuation)."""
        token = self.token
        if token.is_word(*words) or (token.kind == PUNCT and token.value in words):
            return self.advance()
        return None

    def expect(self, word: str, context: str, hint: str | None = None) -> Token:
        token = self.accept(word)
        if token is None:
            hint = _lower_case_hint(self.token, (word, *_CLAUSE_WORDS)) or hint
            raise syntax_error(f'expected "{word}" {context}', self.token.column, hint)
        return token

    # --- rule ----------------------------------------------------------------------------

    def rule(self) -> RuleSpec:
        self.expect("on", "at the start of the rule", 'a rule reads "on TYPE … do ACTION"')
        base: dict[str, Any] = {"type": self.names("an event type", _type_matchers)}
        self.filters(base)
        condition = self.condition() if self.accept("where") else None
        window = self.window()
        throttle = self.throttle()
        context, hint = _before_do(condition is not None, window is not None, throttle is not None)
        do = self.expect("do", context, hint)
        if isinstance(window, SustainWindow) and condition is None:
            raise RuleError(
                f"the rule waits (for …) but has no where-condition to wait for; add "
                f'"where …" before the window (column {do.column})'
            )
        actions = self.actions()
        pattern, residual = split_condition(base, condition)
        check_pattern(base, 'the "on … from … about" part')
        check_pattern(pattern, "the where-condition")
        if residual is not None:
            Condition(residual)  # generated CEL always compiles; this keeps it so
        return RuleSpec(pattern, residual, window, throttle, actions, self.text, base)

    def filters(self, base: dict[str, Any]) -> None:
        """`from SOURCE` and `about SUBJECT`, each at most once, in either order."""
        while self.token.is_word("from", "about"):
            word = self.advance()
            key = "source" if word.value == "from" else "subject"
            if key in base:
                raise syntax_error(f'"{word.value}" given twice', word.column, "write it once")
            matchers = _source_matchers if key == "source" else _glob_matchers
            base[key] = self.names(f'a name after "{word.value}"', matchers)

    def names(self, what: str, matchers: Any) -> list[Any]:
        """NAME {or NAME}, each turned into pattern matchers by `matchers`."""
        result: list[Any] = []
        while True:
            token = self.token
            if token.kind not in (WORD, STRING) or token.is_word(*_CLAUSE_WORDS, "or"):
                raise syntax_error(f"expected {what}", token.column, f"found {token.describe()}")
            self.advance()
            result.extend(matchers(str(token.value)))
            if not self.accept("or"):
                return result

    # --- condition -----------------------------------------------------------------------

    def condition(self) -> Node:
        parts = [self.conjunction()]
        while self.accept("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Node:
        parts = [self.negation()]
        while self.accept("and"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def negation(self) -> Node:
        if self.token.is_word("not"):
            return Not(self.nested(self.negation))
        if self.token.kind == PUNCT and self.token.value == "(":
            inner = self.nested(self.condition)
            self.expect(")", "to close the parenthesis", "every ( needs a )")
            return inner
        return self.comparison()

    def nested(self, parse: Callable[[], Node]) -> Node:
        """Consume `not` or `(` and parse what it encloses, one level deeper (bounded, so that
        neither this parser nor what handles its tree can run out of stack)."""
        opening = self.advance()
        if self.depth >= MAX_CONDITION_DEPTH:
            raise RuleTooLarge(
                f"the condition nests more than {MAX_CONDITION_DEPTH} parentheses and `not`s "
                f"(MAX_CONDITION_DEPTH) at column {opening.column}; write it flatter"
            )
        self.depth += 1
        node = parse()
        self.depth -= 1
        return node

    def comparison(self) -> Node:
        self.tests += 1
        if self.tests > MAX_CONDITIONS:
            raise RuleTooLarge(
                f"the condition has more than {MAX_CONDITIONS} tests (MAX_CONDITIONS) at column "
                f"{self.token.column}; split it into several rules"
            )
        left = self.operand()
        token = self.token
        if token.kind == OP:
            self.advance()
            return _compare(left, token, self.operand())
        negated = token.is_word("not") and self.tokens[self.index + 1].is_word(
            "in", "exists", *_TEXT_TESTS
        )
        if negated:
            self.advance()
            return Not(self.word_test(left))
        if token.is_word("in", "exists", *_TEXT_TESTS):
            return self.word_test(left)
        raise syntax_error(
            f"expected an operator after {left.token.describe()}",
            token.column,
            "such as ==, !=, >, <, in, contains, startswith, endswith or exists",
        )

    def word_test(self, left: _Operand) -> Node:
        word = self.advance()
        if word.value == "exists":
            return Check(_field_of(left, word), "exists")
        right = self.operand()
        if word.value == "in":
            return _in(left, word, right)
        if not isinstance(right.value, str) or right.field is not None:
            raise RuleError(
                f'"{word.value}" needs text in quotes after it, got {right.token.describe()} '
                f'at column {right.token.column} (e.g. key {word.value} ".csv")'
            )
        return Check(_field_of(left, word), str(word.value), right.value)

    def operand(self) -> _Operand:
        token = self.token
        if token.kind in (NUMBER, STRING):
            return _Operand(None, self.advance().value, token)
        if token.kind == PUNCT and token.value == "[":
            return self.list_literal()
        if token.kind == WORD and token.value in _LITERAL_WORDS:
            return _Operand(None, _LITERAL_WORDS[self.advance().value], token)
        if token.kind == WORD and token.value not in _CONDITION_WORDS | _CLAUSE_WORDS:
            return _Operand(_field(self.advance()), None, token)
        raise syntax_error(
            f"expected a field name or a value, found {token.describe()}",
            token.column,
            'e.g. systolic > 140 or table == "marks"',
        )

    def list_literal(self) -> _Operand:
        opening = self.advance()
        items: list[Literal] = []
        while not self.accept("]"):
            if items:
                self.expect(",", "between list items", 'write lists like ["a", "b"]')
            nested = self.token.kind == PUNCT and self.token.value == "["
            item = None if nested else self.operand()  # a list in a list: refused, not recursed
            if item is None or item.field is not None or isinstance(item.value, tuple):
                token = self.token if item is None else item.token
                raise syntax_error(
                    f"a list holds only values, found {token.describe()}",
                    token.column,
                    'put text in quotes: ["a", "b"]',
                )
            items.append(item.value)
        return _Operand(None, tuple(items), opening)

    # --- windows and throttle ------------------------------------------------------------

    def window(self) -> Window | None:
        if self.token.kind == NUMBER:
            count = self.advance()
            if not isinstance(count.value, int) or count.value < 1:
                raise RuleError(
                    f"the count must be a whole number of at least 1, got {count.text} "
                    f"at column {count.column}"
                )
            if not self.accept("times", "time"):
                raise syntax_error(
                    f'expected "times" after {count.text}',
                    self.token.column,
                    f'e.g. "{count.text} times within 1h"',
                )
            self.expect("within", 'after "times"', f'e.g. "{count.text} times within 1h"')
            return CountWindow(count.value, self.duration(), self.per())
        if self.accept("for"):
            return SustainWindow(self.duration(), self.per())
        return None

    def throttle(self) -> Throttle | None:
        if not self.accept("at"):
            return None
        hint = 'write "at most once per 1h"'
        self.expect("most", 'after "at"', hint)
        self.expect("once", 'after "at most"', hint)
        if not self.accept("per", "every"):
            raise syntax_error('expected "per" after "at most once"', self.token.column, hint)
        return Throttle(self.duration(), self.per())

    def duration(self) -> float:
        token = self.advance()
        text = str(token.value) if token.kind == WORD else ""
        negative = text.startswith("-")
        try:
            seconds = parse_duration(text.removeprefix("-"))
        except DurationError:
            seconds = None
        if seconds is None:
            raise syntax_error(
                f"expected a duration, found {token.describe()}",
                token.column,
                f"write {accepted_forms()}",
            )
        if seconds <= 0 or negative:
            raise RuleError(
                f"the duration {token.text} at column {token.column} must be more than zero"
            )
        return seconds

    def per(self) -> str | None:
        if not self.accept("per"):
            return None
        token = self.advance()
        if token.kind != WORD or token.value in _CLAUSE_WORDS:
            raise syntax_error(
                f'expected a field after "per", found {token.describe()}',
                token.column,
                "e.g. per subject, per source or per patient.id",
            )
        name = str(token.value)
        if name in ATTRIBUTE_KEYS:
            return name
        if name.startswith("data."):
            return _field(Token(WORD, name[5:], token.column + 5, name[5:])).dotted
        return _field(token).dotted

    # --- actions -------------------------------------------------------------------------

    def actions(self) -> tuple[Action, ...]:
        actions = [self.action()]
        while separator := self.accept("and", ","):
            if len(actions) == MAX_ACTIONS:
                raise RuleTooLarge(
                    f"the rule has more than {MAX_ACTIONS} actions (MAX_ACTIONS) at column "
                    f"{separator.column}; split it into several rules"
                )
            actions.append(self.action(after=separator, previous=actions[-1]))
        if self.token.kind != END:
            raise syntax_error(
                f"unexpected {self.token.describe()} after the actions",
                self.token.column,
                'separate actions with "and" or ","',
            )
        return tuple(actions)

    def action(self, after: Token | None = None, previous: Action | None = None) -> Action:
        word = self.token
        if not word.is_word(*ACTION_KINDS):
            where = f'after "{after.text}"' if after is not None else 'after "do"'
            hint = _action_hint(word)
            if previous is not None and previous.kind == "notify":
                copied = ", ".join((*previous.cc, word.text))
                hint += f'; to copy several people write "notify {previous.target} cc {copied}"'
            raise syntax_error(
                f"expected an action {where}, found {word.describe()}", word.column, hint
            )
        kind = str(self.advance().value)
        if kind == "forward" and self.token.is_word("to") and self._target_follows():
            self.advance()  # `forward to archive@example.org` reads as English does
        target = self.target(kind)
        if kind == "emit" and "*" in target:
            raise syntax_error(
                f'cannot emit "{target}"', word.column, "an emitted event needs a type without *"
            )
        cc = self.cc_list() if kind == "notify" and self.accept("cc") else ()
        if kind in ("bcc", "forward"):  # further recipients: `bcc trent, carol@example.org`
            cc = self.more_targets(kind)
        saying = self.saying() if kind == "notify" and self.accept("saying") else None
        args = self.args() if self.accept("with") else None
        return Action(kind, target, args, cc, saying)

    def target(self, kind: str) -> str:
        token = self.token
        if token.kind not in (WORD, STRING) or token.is_word("and", "with", "cc", "saying"):
            raise syntax_error(
                f'expected what to {kind} after "{kind}", found {token.describe()}',
                token.column,
                f"e.g. {_ACTION_EXAMPLES[kind]}",
            )
        return str(self.advance().value)

    def cc_list(self) -> tuple[str, ...]:
        return (self.target("cc"), *self.more_targets("cc"))

    def more_targets(self, kind: str) -> tuple[str, ...]:
        """`, name, name`: the names after the first, up to a comma that starts an action."""
        recipients = []
        while self.token.kind == PUNCT and self.token.value == ",":
            following = self.tokens[self.index + 1]
            if following.is_word(*ACTION_KINDS):
                break  # the comma starts the next action
            self.advance()
            recipients.append(self.target(kind))
        return tuple(recipients)

    def _target_follows(self) -> bool:
        following = self.tokens[self.index + 1]
        return following.kind in (WORD, STRING) and not following.is_word(
            "and", "with", "cc", "saying"
        )

    def saying(self) -> str:
        token = self.advance()
        if token.kind != STRING:
            raise syntax_error(
                f'expected the message in quotes after "saying", found {token.describe()}',
                token.column,
                'e.g. saying "Blood pressure {data.systolic} for {subject}"',
            )
        return str(token.value)

    def args(self) -> dict[str, Any]:
        token = self.advance()
        if token.kind != JSON or not isinstance(token.value, dict):
            raise syntax_error(
                f'expected a JSON object after "with", found {token.describe()}',
                token.column,
                'e.g. with {"level": "high"}',
            )
        args: dict[str, Any] = token.value
        return args


def _lower_case_hint(token: Token, words: tuple[str, ...]) -> str | None:
    """For `On`, `DO`, `Invoke`: keywords are lower case."""
    text = str(token.value) if token.kind == WORD else ""
    if text.lower() in words and text not in words:
        return f'keywords are lower case: write "{text.lower()}"'
    return None


def _action_hint(word: Token) -> str:
    """ "did you mean" for a near miss of an action word, else the list of actions."""
    known = f"actions are {', '.join(ACTION_KINDS)}"
    cased = _lower_case_hint(word, ACTION_KINDS)
    if cased:
        return cased
    close = difflib.get_close_matches(str(word.value).lower(), ACTION_KINDS, n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"? The {known}' if close and word.kind == WORD else known


def _before_do(has_condition: bool, has_window: bool, has_throttle: bool) -> tuple[str, str]:
    """Where the parser stands when it expects "do", and what else could have come there."""
    if has_throttle:
        return "after the throttle", 'the actions come next, e.g. "do invoke notify-team"'
    if has_window:
        return "after the window", 'or a throttle such as "at most once per 1h"'
    if has_condition:
        return "after the condition", _WINDOW_HINT
    return "after the event type", 'or "from", "about", "where" or a window'


_ACTION_EXAMPLES: Final = {
    "invoke": "invoke ingest-csv",
    "emit": "emit alert.heat",
    "notify": "notify bob.mobile",
    "cc": "cc alice.family",
    "bcc": "bcc carol",
    "forward": "forward to archive@example.org",
    "webhook": 'webhook "https://example.com/hook"',
    "mqtt": "mqtt alerts/heat",
}


# --- building blocks (pure functions) ------------------------------------------------------


def _field(token: Token) -> Field:
    """The Field a word names: `$subject` is an attribute, anything else a path in data."""
    name = str(token.value)
    if name.startswith("$"):
        attribute = name[1:]
        if not _ATTRIBUTE.fullmatch(attribute) or attribute == "data":
            raise syntax_error(
                f'"{name}" is not an event attribute',
                token.column,
                "attributes are lower-case, like $subject or $source; payload fields are bare",
            )
        return Field((attribute,), token.column)
    segments = name.split(".")
    if len(segments) > MAX_PATH_SEGMENTS:
        raise RuleTooLarge(
            f"the field at column {token.column} has {len(segments)} segments; at most "
            f"{MAX_PATH_SEGMENTS} (MAX_PATH_SEGMENTS) are allowed"
        )
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise syntax_error(
            f'"{name}" is not a field name',
            token.column,
            "field names use letters, digits, _ and -, with dots between levels",
        )
    return Field(("data", *segments), token.column)


def _compare(left: _Operand, op: Token, right: _Operand) -> Node:
    if left.field is None and right.field is not None:
        left, right = right, left
        op = Token(OP, _FLIPPED[op.value], op.column, op.text)
    if left.field is None:
        raise RuleError(
            f"{left.token.text} {op.text} {right.token.text} at column {left.token.column} "
            "compares two values; one side must be a field"
        )
    if right.field is not None:
        return Compare(left.field, op.value, right.field)
    if isinstance(right.value, tuple):
        raise RuleError(
            f'a list can only follow "in", not "{op.text}" (column {right.token.column}); '
            f"write {left.field.name} in [...]"
        )
    if op.value in ORDERING and not _is_number(right.value):
        raise RuleError(
            f'field "{left.field.name}" is compared with {right.token.describe()} using '
            f'"{op.text}" at column {right.token.column}, but "{op.text}" compares numbers; '
            f"write a number, e.g. {left.field.name} {op.text} 140"
        )
    return Check(left.field, op.value, right.value)


def _in(left: _Operand, word: Token, right: _Operand) -> Node:
    if left.field is not None and right.field is not None:
        return Compare(left.field, "==", right.field)
    if left.field is None and right.field is not None and not isinstance(left.value, tuple):
        return Check(right.field, "==", left.value)  # "mark" in changed: any element is "mark"
    if left.field is not None and isinstance(right.value, tuple):
        if not right.value:
            raise RuleError(f"the list at column {right.token.column} is empty; name a value")
        return Check(left.field, "in", right.value)
    raise RuleError(
        f'"in" at column {word.column} needs a field and a list (status in ["new", "open"]) '
        f'or a value and a field ("mark" in changed)'
    )


def _field_of(operand: _Operand, word: Token) -> Field:
    if operand.field is None:
        raise RuleError(
            f'"{word.value}" at column {word.column} needs a field before it, '
            f"not {operand.token.describe()}"
        )
    return operand.field


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _glob_matchers(name: str) -> list[Any]:
    """Exact name, or for a glob: prefix (`health.*`), suffix (`*.created`) or wildcard."""
    if "*" not in name:
        return [name]
    stem = name.strip("*")
    if "*" not in stem and name == f"{stem}*":
        return [{"prefix": stem}]
    if "*" not in stem and name == f"*{stem}":
        return [{"suffix": stem}]
    return [{"wildcard": name.replace("\\", "\\\\")}]


def _type_matchers(name: str) -> list[Any]:
    return _glob_matchers(name)


def _source_matchers(name: str) -> list[Any]:
    """`from ftp` matches the source "ftp" and every source below it ("ftp/…")."""
    if "*" in name:
        return _glob_matchers(name)
    return [name, {"prefix": f"{name.rstrip('/')}/"}]
