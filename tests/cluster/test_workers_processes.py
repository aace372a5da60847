"""Two worker processes: one writes the state history (it holds the lease in Redis), the other
waits; the writer killed, the other takes over within the lease's TTL and goes on writing
without a false outage of the devices it never heard of."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from tests.cluster.nodes import PW, SIP_PASSWORD
from tests.cluster.nodes import until as _until
from tests.cluster.redis_server import RedisServer
from tests.ports import free_port
from xueliang.db.tables import StateInterval
from xueliang.sim.simulator import Simulator


async def test_the_history_writer_moves_to_the_other_worker_when_it_dies(
        cluster: dict[str, Any], pg_db: str, redis_server: RedisServer) -> None:
    sip = free_port()
    cluster["start"]("sig1", "signalling", XUELIANG_SIP__PORT=str(sip), XUELIANG_SIP__ADMISSION="open")
    workers = {n: cluster["start"](n, "worker") for n in ("worker1", "worker2")}
    redis = Redis.from_url(redis_server.url)
    engine = create_async_engine(pg_db)

    async def leader() -> str | None:
        v = await redis.get("xueliang:lease:history")
        return v.decode().removeprefix(cluster["prefix"] + "-") if v else None

    async def intervals(subject: str) -> list[tuple[str, str | None, bool]]:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(StateInterval.state, StateInterval.detail, StateInterval.end)
                                       .where(StateInterval.subject == subject)
                                       .order_by(StateInterval.start))).all()
        return [(st, detail, end is None) for st, detail, end in rows]

    try:
        async with httpx.AsyncClient(base_url=cluster["url"], timeout=60) as c:
            r = await c.post("/api/v1/auth/login", json={"username": "root", "password": PW})
            assert r.status_code == 200, r.text
            first = await _until("a worker leading the history", leader, 60)
            assert first in workers
            sim = Simulator(f"127.0.0.1:{sip}", devices=2, channels=1, password=SIP_PASSWORD, video=False,
                            keepalive=1.0, retry_interval=0.5, summary_interval=0, register_rate=1000)
            async with sim:
                quiet, leaving = (d.id for d in sim.devices)
                await _until("both devices online in the history",
                             lambda: _all(intervals, [quiet, leaving], [("online", None, True)]), 60)
                workers[first].kill()
                other = "worker2" if first == "worker1" else "worker1"
                await _until("the other worker leading", lambda: _is(leader, other), 30)
                # A device leaves now: only the new writer can record it.
                await sim.power_off(leaving)
                await _until("the device's departure in the history",
                             lambda: _last_state(intervals, leaving, "offline"), 60)
                # The other, silent the whole time, is still online: one open interval, no
                # "not back after restart".
                assert await intervals(quiet) == [("online", None, True)]
    finally:
        await redis.aclose()
        await engine.dispose()


async def _all(intervals: Any, subjects: list[str], want: list[Any]) -> bool:
    for s in subjects:
        if await intervals(s) != want:
            return False
    return True


async def _is(fn: Any, want: str) -> bool:
    return bool(await fn() == want)


async def _last_state(intervals: Any, subject: str, state: str) -> bool:
    rows = await intervals(subject)
    return bool(rows) and rows[-1][0] == state and rows[-1][2]
