"""Split rule text into tokens, each with its 1-based column, for the `on … do …` parser."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from ondo.errors import PatternTooLarge, RuleSyntaxError, RuleTooLarge
from ondo.patterns.limits import check_json_text

WORD: Final = "word"
NUMBER: Final = "number"
STRING: Final = "string"
OP: Final = "op"
PUNCT: Final = "punct"
JSON: Final = "json"
END: Final = "end"

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
# Words carry names, event types, globs, recipients, e-mail addresses, topics and durations.
# Letters and digits of any script (\w), so that `température > 30` reads as written.
_WORD_CHARS = r"\w.\-*/:@+~#%$"
_WORD = re.compile(rf"(?:[^\W\d]|[$*])[{_WORD_CHARS}]*")
_WORD_TAIL = re.compile(rf"[{_WORD_CHARS}]*")
_OPERATOR = re.compile(r"[=!<>&|]+")
_PUNCT = "()[],"
_VALID_OPERATORS: Final = frozenset({"==", "!=", "<", "<=", ">", ">="})
_OPERATOR_HINTS: Final = {
    "=": "==",
    "===": "==",
    "=>": ">=",
    "=<": "<=",
    "<>": "!=",
    "!==": "!=",
    "!": "not",
    "&": "and",
    "&&": "and",
    "|": "or",
    "||": "or",
}
_ESCAPES: Final = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}


@dataclass(frozen=True)
class Token:
    """One piece of rule text: its kind, its value (str, number or JSON) and where it starts."""

    kind: str
    value: Any
    column: int
    text: str

    def is_word(self, *words: str) -> bool:
        """True when this token is one of the given bare words (keywords are lower case)."""
        return self.kind == WORD and self.value in words

    def describe(self) -> str:
        """The token as a message shows it."""
        if self.kind == END:
            return "the end of the rule"
        return self.text if self.kind == STRING else f'"{self.text}"'


def syntax_error(message: str, column: int, hint: str | None = None) -> RuleSyntaxError:
    """A RuleSyntaxError whose message names the column and, when known, how to fix it."""
    text = f"{message} at column {column}"
    return RuleSyntaxError(f"{text} ({hint})" if hint else text)


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with an END token; raises RuleSyntaxError with a column."""
    tokens: list[Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            tokens.append(Token(END, None, pos + 1, ""))
            return tokens
        token, pos = _next_token(text, pos)
        tokens.append(token)


def _next_token(text: str, pos: int) -> tuple[Token, int]:
    char = text[pos]
    if char in "\"'":
        return _string(text, pos)
    if char == "{":
        return _json_object(text, pos)
    if char in _PUNCT:
        return Token(PUNCT, char, pos + 1, char), pos + 1
    if number := _NUMBER.match(text, pos):
        return _number_or_word(text, pos, number.end())
    if word := _WORD.match(text, pos):
        return Token(WORD, word.group(), pos + 1, word.group()), word.end()
    if operator := _OPERATOR.match(text, pos):
        return _operator(operator.group(), pos)
    raise syntax_error(
        f'unexpected character "{char}"',
        pos + 1,
        "put names with unusual characters in quotes",
    )


def _number_or_word(text: str, pos: int, end: int) -> tuple[Token, int]:
    """`140` is a number; `30d`, `1.5h` or `2fa-check` (digits then letters) are words."""
    tail_end = _WORD_TAIL.match(text, end)
    assert tail_end is not None
    if tail_end.end() > end:
        word = text[pos : tail_end.end()]
        return Token(WORD, word, pos + 1, word), tail_end.end()
    literal = text[pos:end]
    value: int | float = float(literal) if any(c in literal for c in ".eE") else int(literal)
    if not math.isfinite(value) or abs(value) > 1e300:
        raise syntax_error(f"the number {literal} is too large", pos + 1, "use a smaller number")
    return Token(NUMBER, value, pos + 1, literal), end


def _operator(operator: str, pos: int) -> tuple[Token, int]:
    if operator in _VALID_OPERATORS:
        return Token(OP, operator, pos + 1, operator), pos + len(operator)
    suggestion = _OPERATOR_HINTS.get(operator)
    hint = f'did you mean "{suggestion}"?' if suggestion else "use ==, !=, <, <=, > or >="
    raise syntax_error(f'unknown operator "{operator}"', pos + 1, hint)


def _string(text: str, pos: int) -> tuple[Token, int]:
    quote = text[pos]
    chars: list[str] = []
    index = pos + 1
    while index < len(text):
        char = text[index]
        if char == quote:
            value = "".join(chars)
            return Token(STRING, value, pos + 1, text[pos : index + 1]), index + 1
        if char == "\\":
            escaped, index = _escape(text, index)
            chars.append(escaped)
            continue
        chars.append(char)
        index += 1
    raise syntax_error("unterminated string", pos + 1, f"add the closing {quote}")


def _escape(text: str, index: int) -> tuple[str, int]:
    """The character a backslash escape stands for, and the index after it."""
    code = text[index + 1 : index + 2]
    if code in _ESCAPES:
        return _ESCAPES[code], index + 2
    if code == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[index + 2 : index + 6]):
        return chr(int(text[index + 2 : index + 6], 16)), index + 6
    raise syntax_error(
        f'unknown escape "\\{code}"', index + 1, "use \\\", \\', \\\\, \\n, \\t or \\uXXXX"
    )


def _json_object(text: str, pos: int) -> tuple[Token, int]:
    try:  # the decoder recurses: its nesting is bounded first
        check_json_text(text, "the JSON object", pos)
    except PatternTooLarge as exc:
        raise RuleTooLarge(f"{exc} (at column {pos + 1})") from None
    try:
        value, end = json.JSONDecoder().raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise syntax_error(
            f"invalid JSON ({exc.msg})", exc.pos + 1, "write arguments as a JSON object"
        ) from exc
    return Token(JSON, value, pos + 1, text[pos:end]), end
