"""The scheduler: a job runs once even when several processes (here: engines) run it at once,
and resumes from its marker after a restart (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

from xueliang.db.engine import create_engine, session_factory
from xueliang.scheduler import Scheduler


async def test_a_job_runs_once_across_schedulers_and_resumes(db_url: str) -> None:
    engines = [create_engine(db_url) for _ in range(3)]
    runs: list[tuple[int, str | None]] = []
    gate = asyncio.Event()

    def make(i: int) -> Any:
        async def job(done: str | None) -> str | None:
            runs.append((i, done))
            await gate.wait()
            return str(int(done or "0") + 1)
        return job

    try:
        if engines[0].dialect.name == "postgresql":
            scheds = [Scheduler(e, session_factory(e)) for e in engines]  # three "processes"
        else:  # SQLite: one process by design; two runs of one scheduler at once
            one = Scheduler(engines[0], session_factory(engines[0]))
            scheds = [one, one, one]
        for i, sc in enumerate(scheds):
            if "rollup" not in sc.jobs:
                sc.add("rollup", 60, make(i))
        tasks = [asyncio.create_task(sc.run_once("rollup")) for sc in scheds]
        await asyncio.sleep(0.5)
        gate.set()
        ran = await asyncio.gather(*tasks)
        assert sum(ran) == 1 and len(runs) == 1
        assert runs[0][1] is None
        # A restart: a new scheduler takes the marker where the last run left it.
        fresh = Scheduler(engines[1], session_factory(engines[1]))
        fresh.add("rollup", 60, make(9))
        assert await fresh.run_once("rollup")
        assert runs[-1] == (9, "1")
        st = {j["name"]: j for j in await fresh.status()}
        assert st["rollup"]["done_until"] == "2"
    finally:
        for e in engines:
            await e.dispose()


async def test_a_failing_job_keeps_its_marker_and_the_others_run(db_url: str) -> None:
    e = create_engine(db_url)
    try:
        sc = Scheduler(e, session_factory(e), tick_seconds=0.05)
        seen: list[str] = []

        async def bad(done: str | None) -> str | None:
            raise RuntimeError("disk full")

        async def good(done: str | None) -> str | None:
            seen.append("good")
            return "x"

        sc.add("bad", 0.1, bad)
        sc.add("good", 0.1, good)
        await sc.start()
        await asyncio.sleep(0.5)
        await sc.stop()
        st = {j["name"]: j for j in await sc.status()}
        assert st["bad"]["last_error"] == "RuntimeError: disk full" and st["bad"]["done_until"] is None
        assert st["good"]["done_until"] == "x" and len(seen) >= 2
    finally:
        await e.dispose()
