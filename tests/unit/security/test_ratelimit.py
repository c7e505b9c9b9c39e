"""Token buckets: a burst, a refill at the rate, the wait to the next token, bounded keys."""

from __future__ import annotations

import pytest

from ondo.config import RateLimit, rate_limit, rate_overrides
from ondo.errors import ConfigError
from ondo.security.ratelimit import RateLimiter


class Now:
    """Time a test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_burst_passes_then_the_rate_refills() -> None:
    now = Now()
    limiter = RateLimiter(RateLimit(2.0, 3.0), now)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == 1  # empty: one token comes back within the second
    assert limiter.take("b") == 0  # another caller has its own bucket
    now.t += 0.5  # one token at 2/s
    assert limiter.take("a") == 0
    assert limiter.take("a") == 1
    now.t += 60  # refills to the burst, no further
    assert [limiter.take("a") for _ in range(4)] == [0, 0, 0, 1]


def test_the_wait_is_the_whole_seconds_until_a_token() -> None:
    now = Now()
    limiter = RateLimiter(RateLimit(0.1, 1.0), now)  # one every 10 s
    assert limiter.take("a") == 0
    assert limiter.take("a") == 10
    now.t += 4.5
    assert limiter.take("a") == 6
    assert limiter.take("a") == 6  # a refused request takes nothing


def test_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(rate_limit("0", "--rate-limit principal"), Now())
    assert all(limiter.take("a") == 0 for _ in range(10_000))
    assert len(limiter) == 0


def test_buckets_are_bounded_the_oldest_goes() -> None:
    limiter = RateLimiter(RateLimit(1.0, 1.0), Now(), max_keys=3)
    for key in ("a", "b", "c", "d"):
        assert limiter.take(key) == 0
    assert len(limiter) == 3
    assert limiter.take("a") == 0  # evicted: a fresh bucket
    assert limiter.take("d") == 1


@pytest.mark.parametrize(
    ("text", "limit"),
    [("500", RateLimit(500, 1000)), ("500:20", RateLimit(500, 20)), ("0.5:1", RateLimit(0.5, 1))],
)
def test_rate_limits_are_read_as_rate_and_burst(text: str, limit: RateLimit) -> None:
    assert rate_limit(text, "x") == limit


@pytest.mark.parametrize("text", ["fast", "-1", "10:0", "10:x", "inf", "nan", "5:"])
def test_bad_rate_limits_say_the_form(text: str) -> None:
    with pytest.raises(ConfigError, match=r"RATE or RATE:BURST.*or 0 for no limit"):
        rate_limit(text, "--rate-limit principal")


def test_rate_overrides_name_the_kinds() -> None:
    assert rate_overrides(["anonymous=5:10"]) == {"rate_anonymous": RateLimit(5, 10)}
    with pytest.raises(ConfigError, match="KIND one of principal, anonymous, source"):
        rate_overrides(["everyone=5"])
