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
from xueliang.errors import NotFound, Unavailable
from xueliang.objects import ObjectStore
from xueliang.recording.holds import held_spans, not_held
from xueliang.recording.plans import Policy, expires_before
from xueliang.scheduler.jobs import Scheduler

log = logging.getLogger("xueliang.recording")

BATCH = 500


class Retention:
    def __init__(self, policy: Policy, sessions: async_sessionmaker[AsyncSession], root: Path,
                 objects: ObjectStore | None = None) -> None:
        self.policy = policy
        self.sessions = sessions
        self.root = root
        #: Where older segments live (recording/tiers.py): theirs are deleted there.
        self.objects = objects
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
            held = await held_spans(s)  # evidence holds: never deleted while they stand
        deleted = 0
        for cid in channels:
            pc, ks = classes.get(cid, (None, False))
            cutoff = expires_before(now, self.policy.plan(cid, pc, ks).retention_days)
            while True:
                async with self.sessions() as s, s.begin():
                    rows = (await s.execute(
                        select(Recording.id, Recording.path, Recording.tier, Recording.object_key).where(
                            Recording.channel_id == cid, Recording.state == "closed",
                            Recording.tier.in_(self._tiers()),
                            Recording.end < cutoff, *not_held(held.get(cid, ()))).order_by(Recording.start).limit(BATCH))).all()
                    if not rows:
                        break
                    await asyncio.to_thread(self._unlink, [p for _, p, tier, _ in rows if tier == "local"])
                    # an object that could not be deleted keeps its row, for the next run
                    kept = await self._delete_objects([(i, k) for i, _, tier, k in rows if tier == "object"])
                    gone = [i for i, *_ in rows if i not in kept]
                    await s.execute(delete(Recording).where(Recording.id.in_(gone)))
                deleted += len(gone)
                if len(rows) < BATCH or kept:
                    break
        if deleted:
            self.deleted += deleted
            log.info("retention: %d segments deleted", deleted)
        return now.isoformat()

    def _tiers(self) -> tuple[str, ...]:
        return ("local", "object") if self.objects is not None else ("local",)

    async def _delete_objects(self, rows: list[tuple[int, str | None]]) -> set[int]:
        """Delete the objects of moved segments; the ids of those that failed."""
        failed: set[int] = set()
        if self.objects is None:
            return failed
        for rid, key in rows:
            if not key:
                continue
            try:
                await self.objects.delete(key)
            except NotFound:
                pass
            except Unavailable as e:
                log.warning("retention: segment object %s stays for now: %s", key, e)
                failed.add(rid)
        return failed

    def _unlink(self, paths: list[str]) -> None:
        for p in paths:
            (self.root / p).unlink(missing_ok=True)
