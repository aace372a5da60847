"""Token buckets shared in Redis: one budget per key for the whole cluster.

The same buckets as access/ratelimit.py's `TokenBuckets` (a burst, then a steady rate), kept in a
Redis hash per key and charged by one Lua script, atomically, on Redis's clock. When Redis cannot
be reached the node falls back to buckets of its own, so a Redis outage loosens the limit to one
budget per node but never stops logins or the API.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from xueliang.access.ratelimit import TokenBuckets

log = logging.getLogger("xueliang.cluster")

_TAKE = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 't', 'l')
local tokens = tonumber(b[1]) or burst
local last = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens), 'l', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.6f', wait)
"""


class RedisBuckets:
    def __init__(self, redis: Redis, name: str, rate: float, burst: float, *, prefix: str = "xueliang") -> None:
        self.redis = redis
        self.name = name
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        #: this node's own buckets, while Redis is away
        self.fallback = TokenBuckets(rate, burst)
        self.fell_back = 0

    async def take(self, key: str, cost: float = 1.0) -> float:
        try:
            wait = await self.redis.eval(_TAKE, 1, f"{self.prefix}:limit:{self.name}:{key}",
                                         repr(self.rate), repr(self.burst), repr(cost))
        except (RedisError, OSError) as exc:
            if self.fell_back == 0:
                log.warning("rate limits: Redis unavailable (%s); limiting per node until it is back", exc)
            self.fell_back += 1
            self.fallback.rate, self.fallback.burst = self.rate, self.burst
            return self.fallback.take_now(key, cost)
        return float(wait)
