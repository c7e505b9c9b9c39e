from __future__ import annotations

import pytest

from ondo.config import from_environment
from ondo.errors import ConfigError


def test_egress_allow_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONDO_EGRESS_ALLOW", "127.0.0.1:5432, [::1]:6379")
    assert from_environment().egress_allow == ("127.0.0.1:5432", "[::1]:6379")


def test_a_bad_egress_allow_entry_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONDO_EGRESS_ALLOW", "localhost:5432")
    with pytest.raises(ConfigError, match="ONDO_EGRESS_ALLOW: 'localhost:5432' is not an allowed"):
        from_environment()
