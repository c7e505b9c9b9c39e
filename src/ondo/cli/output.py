"""How the CLI prints: tables and local ISO 8601 times for people, JSON with RFC 3339 UTC for tools.

The API answers times as epoch seconds (`created_at`, `at`, …). A `--json` document converts every
such field to RFC 3339 UTC text, so a script never sees a raw epoch; people see their own time
zone. Event `time` attributes are already RFC 3339 and are only re-zoned for people.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from ondo.events import format_epoch

# Fields that hold epoch seconds in the API's answers.
_TIME_KEYS = frozenset({"at", "now", "due", "since"})
# Fields that map names to epoch seconds (a throttle's last firing per key).
_TIME_MAPS = frozenset({"last_fired"})
_RFC3339 = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def is_time_key(key: str) -> bool:
    return key in _TIME_KEYS or key.endswith("_at")


def local_time(epoch: float | None) -> str:
    """ISO 8601 in the user's time zone, to the second: what people read."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def localize(text: str) -> str:
    """Every RFC 3339 time inside `text` re-written in the user's time zone."""

    def one(match: re.Match[str]) -> str:
        raw = match.group(0).replace(" ", "T").replace("Z", "+00:00")
        try:
            return datetime.fromisoformat(raw).astimezone().isoformat(timespec="seconds")
        except ValueError:
            return match.group(0)

    return _RFC3339.sub(one, text)


def for_json(data: Any) -> Any:
    """`data` with every epoch-seconds time field turned into RFC 3339 UTC text."""
    if isinstance(data, dict):
        return {key: _field(key, value) for key, value in data.items()}
    if isinstance(data, list):
        return [for_json(item) for item in data]
    return data


def _field(key: str, value: Any) -> Any:
    if key in _TIME_MAPS and isinstance(value, dict):
        return {name: _field("at", when) for name, when in value.items()}
    return format_epoch(value) if _is_epoch(key, value) else for_json(value)


def _is_epoch(key: str, value: Any) -> bool:
    return is_time_key(key) and isinstance(value, int | float) and not isinstance(value, bool)


def print_json(data: Any, *, lines: bool = False) -> None:
    """One JSON document (indented), or one per line with `lines` (for streams)."""
    if lines:
        print(json.dumps(for_json(data), ensure_ascii=False, separators=(",", ":")), flush=True)
    else:
        print(json.dumps(for_json(data), indent=2, ensure_ascii=False))


Column = tuple[str, Callable[[dict[str, Any]], Any]]


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], empty: str) -> None:
    """Rows under a header, each column as wide as its widest cell; `empty` when no rows."""
    if not rows:
        print(empty)
        return
    cells = [[_cell(get(row)) for _, get in columns] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (h, _) in enumerate(columns)]
    print(_line([h for h, _ in columns], widths))
    for row_cells in cells:
        print(_line(row_cells, widths))


def listing(
    as_json: bool, key: str, rows: Sequence[dict[str, Any]], columns: Sequence[Column], empty: str
) -> None:
    """A list command's output: `{key: rows}` as JSON, or the table for people."""
    if as_json:
        print_json({key: rows})
    else:
        table(rows, columns, empty)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """`name: value` lines, names aligned; nested values as compact JSON."""
    shown = [(name, _cell(value)) for name, value in pairs]
    width = max((len(name) for name, _ in shown), default=0)
    for name, value in shown:
        print(f"{name + ':':<{width + 1}} {value}")


def document(doc: dict[str, Any], skip: Iterable[str] = ()) -> None:
    """A JSON object for people: one `name: value` line per field, times in local time."""
    left_out = set(skip)
    fields((key, _for_people(key, value)) for key, value in doc.items() if key not in left_out)


def _for_people(key: str, value: Any) -> Any:
    if _is_epoch(key, value):
        return local_time(value)
    if isinstance(value, str) and (key == "time" or is_time_key(key)):
        return localize(value)
    return value


def one_line(value: Any, limit: int = 80) -> str:
    """A value as compact JSON on one line, cut at `limit` characters."""
    text = _cell(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
