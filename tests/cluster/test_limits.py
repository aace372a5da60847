"""Rate limits shared by the nodes of a cluster: one budget per client, however many API nodes
it spreads its requests over; per node while Redis is away."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from tests.cluster.redis_server import RedisServer
from xueliang.access.ratelimit import TokenBuckets
from xueliang.cluster.redis_limits import RedisBuckets


async def test_two_nodes_share_one_budget(redis_server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    a_redis, b_redis = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    try:
        # the login limiter's shape: a burst of 5, then one try per 10 minutes
        a = RedisBuckets(a_redis, "login", 1 / 600, 5, prefix=prefix)
        b = RedisBuckets(b_redis, "login", 1 / 600, 5, prefix=prefix)
        got = [await (a if i % 2 else b).take("ip:203.0.113.9") for i in range(7)]
        assert got[:5] == [0.0] * 5
        assert all(w > 500 for w in got[5:])  # refused on either node, with the wait
        assert await a.take("ip:203.0.113.10") == 0.0  # another client has its own budget
        # what one process alone would have allowed: 5 on each node
        alone = TokenBuckets(1 / 600, 5)
        assert [alone.take_now("ip:x") for _ in range(5)] == [0.0] * 5
    finally:
        await a_redis.aclose()
        await b_redis.aclose()


async def test_redis_away_limits_per_node_and_never_blocks(own_redis: RedisServer) -> None:
    r = Redis.from_url(own_redis.url)
    try:
        lim = RedisBuckets(r, "api", 1.0, 3)
        assert await lim.take("ip:a") == 0.0
        own_redis.stop()
        got = [await lim.take("ip:a") for _ in range(4)]
        assert got[:3] == [0.0] * 3 and got[3] > 0  # the node's own bucket: still a limit
        assert lim.fell_back == 4
    finally:
        await r.aclose()
