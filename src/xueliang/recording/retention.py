"""Retention: segments older than their channel's retention are deleted, files and rows.

A channel's retention comes from its plan (point class, key site; see
:mod:`xueliang.recording.plans`); a channel no longer in the registry keeps class III's. Runs as
a scheduler job (once in the cluster), in batches so the writer never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Recording
from xueliang.recording.plans import Policy, expires_before
from xueliang.scheduler.jobs import Scheduler

log = logging.getLogger("xueliang.recording")

BATCH = 500


class Retention:
    def __init__(self, policy: Policy, sessions: async_sessionmaker[AsyncSession], root: Path) -> None:
        self.policy = policy
        self.sessions = sessions
        self.root = root
        self.deleted = 0

    def add_jobs(self, scheduler: Scheduler, every: float) -> None:
        scheduler.add("recording.retention", every, self.run)

    async def run(self, done: str | None = None, *, now: datetime | None = None) -> str | None:
        """Delete what is beyond retention; returns the time it ran (the job's marker)."""
        now = now or datetime.now(UTC)
        async with self.sessions() as s:
            channels = (await s.scalars(select(Recording.channel_id).distinct())).all()
            classes = {cid: (pc, bool(ks)) for cid, pc, ks in (await s.execute(
                select(Channel.id, Channel.point_class, Channel.key_site).where(Channel.id.in_(channels)))).all()}
        deleted = 0
        for cid in channels:
            pc, ks = classes.get(cid, (None, False))
            cutoff = expires_before(now, self.policy.plan(cid, pc, ks).retention_days)
            while True:
                async with self.sessions() as s, s.begin():
                    rows = (await s.execute(
                        select(Recording.id, Recording.path).where(
                            Recording.channel_id == cid, Recording.state == "closed", Recording.tier == "local",
                            Recording.end < cutoff).order_by(Recording.start).limit(BATCH))).all()
                    if not rows:
                        break
                    await asyncio.to_thread(self._unlink, [p for _, p in rows])
                    await s.execute(delete(Recording).where(Recording.id.in_([i for i, _ in rows])))
                deleted += len(rows)
                if len(rows) < BATCH:
                    break
        if deleted:
            self.deleted += deleted
            log.info("retention: %d segments deleted", deleted)
        return now.isoformat()

    def _unlink(self, paths: list[str]) -> None:
        for p in paths:
            (self.root / p).unlink(missing_ok=True)
