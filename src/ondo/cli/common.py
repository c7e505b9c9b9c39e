"""What every CLI command shares: the client, reading --data, the --json flag."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ondo.client import Client
from ondo.errors import ValidationError


def client_of(args: argparse.Namespace) -> Client:
    data_dir = Path(args.data_dir) if args.data_dir else None
    return Client(args.url, args.token, data_dir, cacert=args.cacert)


def add_json_flag(parser: argparse.ArgumentParser, document: str) -> None:
    """`--json`: print `document` (a JSON description) instead of the table for people."""
    parser.add_argument(
        "--json", action="store_true", help=f"print JSON instead of a table: {document}"
    )


def read_data(raw: str | None, what: str = "--data") -> bytes:
    """--data JSON, --data @FILE or --data @- (stdin); validated as JSON."""
    if raw is None:
        return b"{}"
    if raw.startswith("@"):
        name = raw[1:]
        try:
            text = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            raise ValidationError(f"{what}: cannot read {name}: {exc.strerror}") from None
    else:
        text = raw.encode()
    try:
        json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc}") from None
    return text


def result_of(data: Any) -> None:
    """A function's result or a raw document, indented JSON (what `ondo invoke` prints)."""
    print(json.dumps(data, indent=2, ensure_ascii=False))
