"""Channels' recording plans (录像计划) in the database: a channel's own, else the defaults it
follows (recording/plans.py), and the changes told on the bus.

A change is published as ``recording.plan`` (subject: the channel); an operator's trigger of
event recording as ``recording.trigger``. The recorder, wherever the media hub runs, listens and
applies them at once (writer.py): no restart, and in a cluster the bus carries them to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import Bus
from xueliang.config import RecordingPlanSpec
from xueliang.db.tables import Channel, RecordingPlan
from xueliang.errors import Conflict, Invalid
from xueliang.recording.plans import Plan, Policy

PLAN_CHANGED = "recording.plan"
TRIGGER = "recording.trigger"


@dataclass(frozen=True, slots=True)
class Camera:
    """What a plan depends on, of a channel."""

    id: str
    point_class: int | None
    key_site: bool
    division_code: str
    device_id: str | None = None


def spec_of(row: RecordingPlan) -> RecordingPlanSpec:
    return RecordingPlanSpec(mode=row.mode, schedule=list(row.schedule or []),  # type: ignore[arg-type]
                             pre_seconds=row.pre_seconds, post_seconds=row.post_seconds)


class ChannelPlans:
    def __init__(self, policy: Policy, sessions: async_sessionmaker[AsyncSession], bus: Bus | None) -> None:
        self.policy = policy
        self.sessions = sessions
        self.bus = bus

    def _plan(self, cam: Camera, own: RecordingPlanSpec | None) -> Plan:
        return self.policy.plan(cam.id, cam.point_class, cam.key_site, cam.division_code, own)

    async def plan_of(self, channel: Any) -> Plan:
        """The plan of a channel (a registry row or anything with its fields)."""
        async with self.sessions() as s:
            row = await s.get(RecordingPlan, channel.id)
        return self._plan(_camera(channel), spec_of(row) if row is not None else None)

    async def set(self, channel: Any, spec: RecordingPlanSpec, by: str) -> tuple[Plan, Plan]:
        """Give the channel a plan of its own; (the plan before, the plan now)."""
        if getattr(channel, "kind", "camera") != "camera":
            raise Invalid(f"{channel.id} is a catalog group, not a camera: it has no video to record")
        before = await self.plan_of(channel)
        async with self.sessions() as s, s.begin():
            row = await s.get(RecordingPlan, channel.id)
            if row is None:
                row = RecordingPlan(channel_id=channel.id)
                s.add(row)
            row.mode, row.schedule = spec.mode, list(spec.schedule) or None
            row.pre_seconds, row.post_seconds, row.updated_by = spec.pre_seconds, spec.post_seconds, by
        now = self._plan(_camera(channel), spec)
        self._changed(channel.id, now, by)
        return before, now

    async def clear(self, channel: Any, by: str) -> tuple[Plan, Plan]:
        """The channel follows the defaults again; (the plan before, the plan now)."""
        before = await self.plan_of(channel)
        async with self.sessions() as s, s.begin():
            await s.execute(delete(RecordingPlan).where(RecordingPlan.channel_id == channel.id))
        now = self._plan(_camera(channel), None)
        self._changed(channel.id, now, by)
        return before, now

    def _changed(self, channel_id: str, plan: Plan, by: str) -> None:
        if self.bus is not None:
            self.bus.publish(PLAN_CHANGED, channel_id, mode=plan.mode, source=plan.source, by=by)

    async def trigger(self, channel: Any, by: str) -> Plan:
        """An operator's trigger of event recording: told to the recorder (Conflict unless the
        channel records on event)."""
        plan = await self.plan_of(channel)
        if plan.mode != "event":
            raise Conflict(f"channel {channel.id} does not record on event (its plan is {plan.mode}, "
                           f"from its {plan.source.replace('_', ' ')})")
        if self.bus is not None:
            self.bus.publish(TRIGGER, channel.id, by=by, cause="operator")
        return plan

    async def every_camera(self) -> list[tuple[Camera, Plan]]:
        """Every camera and its plan (what the recorder applies)."""
        async with self.sessions() as s:
            rows = (await s.execute(select(Channel.id, Channel.point_class, Channel.key_site, Channel.division_code,
                                           Channel.device_id).where(Channel.kind == "camera"))).all()
            own = {r.channel_id: spec_of(r) for r in (await s.scalars(select(RecordingPlan))).all()}
        cams = [Camera(cid, pc, bool(ks), div or "", dev) for cid, pc, ks, div, dev in rows]
        return [(c, self._plan(c, own.get(c.id))) for c in cams]


def _camera(channel: Any) -> Camera:
    return Camera(channel.id, channel.point_class, bool(channel.key_site), channel.division_code or "",
                  getattr(channel, "device_id", None))


def by_id(pairs: Iterable[tuple[Camera, Plan]]) -> dict[str, tuple[Camera, Plan]]:
    return {c.id: (c, p) for c, p in pairs}
