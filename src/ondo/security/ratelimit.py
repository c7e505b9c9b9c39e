"""Request rates: one token bucket per caller (a principal, or an address without a token).

A bucket holds up to `burst` tokens and gains `per_s` a second; a request takes one, and one
that finds the bucket empty is refused with the seconds until a token is back (the answer's
`Retry-After`). A limit of 0 lets everything through. Buckets live in this process only: each
node of a cluster limits what reaches it (docs/security.md, "Ingress limits").

The number of buckets is bounded (`max_keys`): a flood of addresses evicts the oldest bucket
rather than growing memory, at the price of handing an evicted caller a full bucket again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from ondo.config import RateLimit

DEFAULT_MAX_KEYS = 65536


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets by key, all with the same limit."""

    def __init__(
        self,
        limit: RateLimit,
        now: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self.limit = limit
        self._now = now
        self._max_keys = max_keys
        self._buckets: dict[Hashable, _Bucket] = {}

    def take(self, key: Hashable) -> int:
        """Take one token from `key`'s bucket: 0 when taken, else the whole seconds to wait."""
        if not self.limit.enabled:
            return 0
        bucket = self._refilled(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return self._wait(bucket)

    def _refilled(self, key: Hashable) -> _Bucket:
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                del self._buckets[next(iter(self._buckets))]  # the oldest: dicts keep order
            bucket = self._buckets[key] = _Bucket(self.limit.burst, now)
            return bucket
        elapsed = now - bucket.stamp
        if elapsed > 0:
            bucket.tokens = min(self.limit.burst, bucket.tokens + elapsed * self.limit.per_s)
            bucket.stamp = now
        return bucket

    def _wait(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1.0 - bucket.tokens) / self.limit.per_s))

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True)
class RateLimits:
    """The platform's three limiters: API calls by principal, API calls without a (valid)
    token by peer address, and http sources' routes by (namespace, source, peer address)."""

    principals: RateLimiter
    anonymous: RateLimiter
    sources: RateLimiter

    @classmethod
    def of(cls, principals: RateLimit, anonymous: RateLimit, sources: RateLimit) -> RateLimits:
        return cls(RateLimiter(principals), RateLimiter(anonymous), RateLimiter(sources))
