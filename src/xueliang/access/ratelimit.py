"""Token buckets per key (client address, user): a burst, then a steady rate.

`Limiter` is the interface; `TokenBuckets` keeps the buckets in this process. In a cluster the
buckets are shared in Redis (cluster/redis_limits.py), so that N API nodes do not allow N times
the rate (a password guesser spreading its tries over them).
"""

from __future__ import annotations

import time
from typing import Protocol

from xueliang.errors import DomainError


class RateLimited(DomainError):
    status = 429
    title = "Too many requests"


class Limiter(Protocol):
    rate: float
    burst: float

    async def take(self, key: str, cost: float = 1.0) -> float:
        """0 if allowed (and charged), else the seconds until it would be."""
        ...


class TokenBuckets:
    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._b: dict[str, tuple[float, float]] = {}

    async def take(self, key: str, cost: float = 1.0) -> float:
        return self.take_now(key, cost)

    def take_now(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """0 if allowed (and charged), else the seconds until it would be."""
        now = time.monotonic() if now is None else now
        tokens, last = self._b.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._b[key] = (tokens - cost, now)
            if len(self._b) > self.max_keys:
                self._prune(now)
            return 0.0
        self._b[key] = (tokens, now)
        return (cost - tokens) / self.rate

    def _prune(self, now: float) -> None:
        # Buckets that have refilled are the same as absent ones.
        full = [k for k, (t, last) in self._b.items() if t + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._b[k]
        if len(self._b) > self.max_keys:  # still too many: forget the oldest half
            for k, _ in sorted(self._b.items(), key=lambda kv: kv[1][1])[: len(self._b) // 2]:
                del self._b[k]
