"""A lease in Redis: ``<prefix>:lease:<name>`` holds the holder's node ID with a TTL. Taken with
SET NX PX; renewed and released only by its holder (a compare-and-set script), so a node that
stalled past its TTL cannot renew or drop what another has taken since."""

from __future__ import annotations

from redis.asyncio import Redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLease:
    def __init__(self, url: str, name: str, node: str, *, ttl: float = 15.0, prefix: str = "xueliang") -> None:
        self.key = f"{prefix}:lease:{name}"
        self.node = node
        self.ttl = ttl
        self.redis = Redis.from_url(url)

    @property
    def _ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    async def acquire(self) -> bool:
        if await self.redis.set(self.key, self.node, nx=True, px=self._ms):
            return True
        return await self.renew()  # already ours (a quick restart with the same node ID)

    async def renew(self) -> bool:
        return bool(await self.redis.eval(_RENEW, 1, self.key, self.node, self._ms))

    async def release(self) -> None:
        await self.redis.eval(_RELEASE, 1, self.key, self.node)

    async def holder(self) -> str | None:
        v = await self.redis.get(self.key)
        return v.decode() if isinstance(v, bytes) else v

    async def close(self) -> None:
        await self.redis.aclose()
