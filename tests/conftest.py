from __future__ import annotations

from tests.functional import backends


def pytest_report_header() -> str:
    return f"ondo functional backend: {backends.configured()} (ONDO_TEST_BACKEND)"
