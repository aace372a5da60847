"""One scheduler for every periodic job: a job runs once even when several processes run.

Each job has a name, a period, and a progress marker (``done_until``, the job's own words: a
day, a week) kept in ``scheduler_jobs``. A run is given the marker and returns the new one, so a
job that missed runs (the platform was down) catches up from where it stopped, and a run done
twice does the same thing twice (jobs are idempotent).

Once in a cluster: on PostgreSQL a run holds the job's session-level advisory lock
(``pg_try_advisory_lock``) on a connection of its own; a process that does not get it skips
the run. On SQLite (one process by design) an in-process lock does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from xueliang.db.tables import SchedulerJob
from xueliang.db.upsert import insert_for

log = logging.getLogger("xueliang.scheduler")

#: A run: given the job's marker (None the first time), returns the new one.
Run = Callable[[str | None], Awaitable[str | None]]


@dataclass(slots=True)
class Job:
    name: str
    every: float
    run: Run
    #: Monotonic time of the next run in this process.
    next_at: float = 0.0
    runs: int = 0
    skipped: int = 0
    failures: int = 0
    last_error: str | None = field(default=None)


def lock_key(name: str) -> int:
    """A job's advisory lock key: 63 bits of SHA-256 of its name (stable across processes)."""
    return int.from_bytes(hashlib.sha256(b"xueliang-job:" + name.encode()).digest()[:8], "big") >> 1


class Scheduler:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], *,
                 tick_seconds: float = 1.0) -> None:
        self.engine = engine
        self.sessions = sessions
        self.tick_seconds = tick_seconds
        self.jobs: dict[str, Job] = {}
        self._local: dict[str, asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[bool]] = set()

    def add(self, name: str, every: float, run: Run) -> Job:
        if name in self.jobs:
            raise ValueError(f"job {name} exists")
        job = self.jobs[name] = Job(name, every, run)
        return job

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for t in list(self._running):
            t.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            now = time.monotonic()
            for job in self.jobs.values():
                if job.next_at <= now and not any(t.get_name() == f"job {job.name}" for t in self._running):
                    job.next_at = now + job.every
                    t = asyncio.create_task(self.run_once(job.name), name=f"job {job.name}")
                    self._running.add(t)
                    t.add_done_callback(self._running.discard)
            await asyncio.sleep(self.tick_seconds)

    async def run_once(self, name: str) -> bool:
        """Run job ``name`` now if no process runs it; True if it ran here."""
        job = self.jobs[name]
        async with self._lock(name) as held:
            if not held:
                job.skipped += 1
                return False
            done = await self._marker(name)
            try:
                new = await job.run(done)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                job.failures += 1
                job.last_error = f"{type(exc).__name__}: {exc}"[:400]
                log.exception("job %s failed (it runs again in %g s)", name, job.every)
                await self._save(name, done, job.last_error)
                return True
            job.runs += 1
            job.last_error = None
            await self._save(name, new, None)
            return True

    @contextlib.asynccontextmanager
    async def _lock(self, name: str):  # type: ignore[no-untyped-def]
        if self.engine.dialect.name != "postgresql":
            lock = self._local.setdefault(name, asyncio.Lock())
            if lock.locked():
                yield False
                return
            async with lock:
                yield True
            return
        key = lock_key(name)
        async with self.engine.connect() as conn:
            got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            await conn.commit()
            try:
                yield got
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()

    async def _marker(self, name: str) -> str | None:
        async with self.sessions() as s:
            return await s.scalar(select(SchedulerJob.done_until).where(SchedulerJob.name == name))

    async def _save(self, name: str, done: str | None, error: str | None) -> None:
        now = datetime.now(UTC)
        async with self.sessions() as s, s.begin():
            ins = insert_for(s, SchedulerJob.__table__)  # type: ignore[arg-type]
            await s.execute(ins.values(name=name, done_until=done, last_run_at=now, last_error=error, runs=1)
                            .on_conflict_do_update(index_elements=["name"], set_={
                                "done_until": done, "last_run_at": now, "last_error": error,
                                "runs": SchedulerJob.__table__.c.runs + 1}))

    async def status(self) -> list[dict[str, object]]:
        async with self.sessions() as s:
            rows = {r.name: r for r in (await s.scalars(select(SchedulerJob))).all()}
        return [{"name": j.name, "every": j.every, "done_until": rows[j.name].done_until if j.name in rows else None,
                 "last_run_at": rows[j.name].last_run_at if j.name in rows else None,
                 "last_error": rows[j.name].last_error if j.name in rows else None,
                 "runs_here": j.runs, "skipped_here": j.skipped} for j in self.jobs.values()]
