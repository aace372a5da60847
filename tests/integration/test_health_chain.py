"""The whole chain on one platform: simulated GB/T 28181 devices register and report their
catalogs, the platform publishes what changes, the state history records it, one device loses
power, and after the grace period its cameras get a ticket each (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.integration.conftest import PASSWORD
from xueliang.app import Platform
from xueliang.config import Settings
from xueliang.db.tables import Channel, StateInterval, Ticket
from xueliang.sim.simulator import Simulator


async def wait_for(fn: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await fn()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


async def test_devices_online_then_a_power_cut_gives_intervals_and_tickets(db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database={"url": db_url}, storage={"var_dir": tmp_path}, secret_key="s" * 32,
        sip={"host": "127.0.0.1", "port": 0, "password": PASSWORD, "admission": "open",
             "keepalive_interval": 1.0, "keepalive_misses": 2},
        media={"enabled": False}, access={"totp_required_roles": []},
        health={"ticket_after_seconds": 1, "episode_gap_seconds": 0, "check_seconds": 0.5},
    )
    platform = Platform(settings)
    await platform.start(migrate=False)
    assert platform.signalling is not None and platform.health is not None
    sim = Simulator(f"127.0.0.1:{platform.signalling.endpoint.port}", devices=2, channels=2, password=PASSWORD,
                    video=False, keepalive=1)
    try:
        await sim.start()
        assert await sim.wait_registered(2, timeout=15)
        cams = list(sim.channel_ids)

        async def states() -> dict[str, str]:
            async with platform.sessions() as s:
                rows = (await s.execute(select(StateInterval.subject, StateInterval.state)
                                        .where(StateInterval.end.is_(None)))).all()
            return dict(rows)

        # Every camera online, from the catalog the platform asked for (no test publishes).
        await wait_for(lambda: _all(states, cams, "online"))
        dead = sim.devices[0]
        async with platform.sessions() as s:
            dead_cams = list((await s.scalars(select(Channel.id).where(Channel.device_id == dead.id))).all())
        await sim.power_off(dead.id)
        now = await wait_for(lambda: _some(states, dead.id, "offline"), timeout=30)
        assert now[dead.id] == "offline"
        offline = [c for c, st in now.items() if st == "offline" and c != dead.id]
        assert len(dead_cams) == 2 and set(offline) == set(dead_cams)

        async def tickets() -> list[Any]:
            async with platform.sessions() as s:
                return list((await s.scalars(select(Ticket))).all())

        got = await wait_for(tickets, timeout=30)
        await asyncio.sleep(1.5)  # more checks run: still one ticket per point
        got = await tickets()
        assert sorted(t.channel_id for t in got) == sorted(offline)
        assert all(t.kind == "offline" and t.status == "open" for t in got)
    finally:
        await sim.stop()
        await platform.stop()


async def _all(states: Any, cams: list[str], state: str) -> bool:
    s = await states()
    return all(s.get(c) == state for c in cams)


async def _some(states: Any, device: str, state: str) -> dict[str, str] | None:
    s = await states()
    return s if s.get(device) == state else None
