"""schemathesis against a real `ondo up`: generated requests for every operation of /openapi.json.

Bounded and reproducible (tests/functional/schemathesis.toml: a fixed seed, deterministic
generation, a few examples per operation, one worker). It fails on any 5xx, on a status, content
type or body the document does not declare, and on an operation that accepts a request without
its token.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.platform import RunningPlatform

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "ignored_auth",
        "unsupported_method",
        "missing_required_header",
    ]
)


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[RunningPlatform]:
    env = {"ONDO_CLOCK": "manual"}  # the clock operations answer only on a manual clock
    with RunningPlatform(tmp_path / "data", apps=[EXAMPLES / "hello"], env=env) as running:
        yield running


@pytest.mark.slow
def test_generated_requests_get_no_5xx_and_answers_match_the_document(
    fuzzed: RunningPlatform, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{fuzzed.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {fuzzed.token}",
        "--checks",
        CHECKS,
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, f"{run.stdout[-20000:]}\n{run.stderr[-3000:]}\n{fuzzed.log()}"
