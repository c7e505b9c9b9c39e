"""Wildcard values: parsing (`*`, escapes), matching, and event-ruler's complexity measure.

Complexity follows event-ruler's MachineComplexityEvaluator: the most NFA states a worst-case
input value can keep alive at once in the byte machine of one field. Long runs of wildcards, or
repeated character sequences after a wildcard, keep many states alive and slow every event down.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

STAR = -1
MAX_COMPLEXITY = 10  # event-ruler's limit as applied by EventBridge
_MAX_SUBSETS = 4096  # bound on the worst-case search itself


def parse_wildcard(text: str) -> list[str | int]:
    """Tokens of a wildcard value (characters, or STAR); raises ValueError with the reason."""
    tokens: list[str | int] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            if index + 1 >= len(text) or text[index + 1] not in "*\\":
                raise ValueError(
                    f"backslash at position {index + 1} must escape '*' or '\\' (write \\* or \\\\)"
                )
            tokens.append(text[index + 1])
            index += 2
            continue
        if char == "*":
            if tokens and tokens[-1] == STAR:
                raise ValueError(f"consecutive wildcard characters '**' at position {index}")
            tokens.append(STAR)
        else:
            tokens.append(char)
        index += 1
    return tokens


class Glob:
    """Matches strings against wildcard tokens in linear passes of str.find, never backtracking.

    A regular expression such as `.*a.*a.*a.*b` takes time polynomial in the input's length
    with a high degree (seconds for an 800-character value); for patterns whose only special
    character is `*`, placing each literal piece at its leftmost possible position is exact.
    """

    __slots__ = ("first", "last", "middle", "starred")

    def __init__(self, tokens: Sequence[str | int]) -> None:
        pieces = [""]
        for token in tokens:
            if token == STAR:
                pieces.append("")
            else:
                pieces[-1] += str(token)
        self.starred = len(pieces) > 1
        self.first, self.last = pieces[0], pieces[-1]
        self.middle = tuple(piece for piece in pieces[1:-1] if piece)

    def match(self, value: str) -> bool:
        if not self.starred:
            return value == self.first
        end = len(value) - len(self.last)
        if end < len(self.first) or not value.startswith(self.first):
            return False
        if not value.endswith(self.last):
            return False
        position = len(self.first)
        for piece in self.middle:
            found = value.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True


def complexity(wildcards: Iterable[Sequence[str | int]]) -> int:
    """The most states that one input can keep alive at once across these wildcard values."""
    machines = [[*'"', *tokens, *'"'] for tokens in wildcards]
    if not machines:
        return 0
    alphabet = {t for tokens in machines for t in tokens if t != STAR}
    symbols: list[str | None] = [*sorted(alphabet, key=str), None]  # None: any other character
    start = _closure(machines, {(m, 0) for m in range(len(machines))})
    worst, seen, pending = 0, {start}, [start]
    while pending:
        active = pending.pop()
        worst = max(worst, _weight(machines, active))
        if worst > MAX_COMPLEXITY or len(seen) > _MAX_SUBSETS:
            return max(worst, MAX_COMPLEXITY + 1)
        for symbol in symbols:
            following = _step(machines, active, symbol)
            if following and following not in seen:
                seen.add(following)
                pending.append(following)
    return worst


def _weight(machines: list[list[str | int]], active: frozenset[tuple[int, int]]) -> int:
    """Live states: those that still lead to a match (every non-final position does)."""
    return sum(1 for m, pos in active if pos < len(machines[m]))


def _closure(
    machines: list[list[str | int]], states: set[tuple[int, int]]
) -> frozenset[tuple[int, int]]:
    """Add the states reachable by letting a wildcard match nothing."""
    result = set(states)
    pending = list(states)
    while pending:
        m, pos = pending.pop()
        tokens = machines[m]
        if pos < len(tokens) and tokens[pos] == STAR and (m, pos + 1) not in result:
            result.add((m, pos + 1))
            pending.append((m, pos + 1))
    return frozenset(result)


def _step(
    machines: list[list[str | int]], active: frozenset[tuple[int, int]], symbol: str | None
) -> frozenset[tuple[int, int]]:
    """States alive after reading one more character."""
    following: set[tuple[int, int]] = set()
    for m, pos in active:
        tokens = machines[m]
        if pos >= len(tokens):
            continue
        token = tokens[pos]
        if token == STAR:
            following.add((m, pos))
        elif symbol is not None and token == symbol:
            following.add((m, pos + 1))
    return _closure(machines, following)
