"""Fault tickets (工单): opened when a point has been bad longer than the grace period, worked by
the point's maintenance team, verified by the platform.

    open → acknowledged → repairing → resolved (note, photo) → verified → closed
                 ↖——————————— reopened when the fault returns within health.reopen_seconds

One ticket per fault episode: the state history gives every bad interval the start of its
episode (a point flapping bad and good for less than health.episode_gap_seconds is one
episode), and a point has at most one active ticket. Overdue tickets (service level per point
class) are escalated once: the team's supervisor is told. A point with health.repeat_tickets
tickets within health.repeat_days is a repeat-fault point. Every step is a ticket step and an
audit record.

The checks (open, verify, escalate) are one scheduler job: in a cluster they run in one
process at a time, and new tickets are written in batches (a power cut of 10,000 devices is a
few INSERTs, not 10,000 transactions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.config import HealthConfig
from xueliang.db.tables import Channel, Device, StateInterval, Ticket, TicketStep
from xueliang.errors import Invalid, NotFound
from xueliang.health.states import BAD, ONLINE
from xueliang.health.teams import load_resolver

log = logging.getLogger("xueliang.health")

_IV: Table = StateInterval.__table__  # type: ignore[assignment]
_TK: Table = Ticket.__table__  # type: ignore[assignment]
ACTIVE = ("open", "acknowledged", "repairing")
#: step -> (states it may be taken from, state it leads to)
STEPS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("open",), "acknowledged"),
    "repair": (("open", "acknowledged"), "repairing"),
    "resolve": (("open", "acknowledged", "repairing"), "resolved"),
    "close": (("open", "acknowledged", "repairing", "resolved", "verified"), "closed"),
    "reopen": (("resolved", "verified", "closed"), "open"),
}
#: Steps a team member takes on its own team's tickets; the others are the duty centre's.
TEAM_STEPS = frozenset({"acknowledge", "repair", "resolve"})
#: Audit sink: (action, ticket id, actor or None for the platform, detail).
AuditSink = Callable[[str, int, Any, dict[str, Any]], None]
#: Notification sink: (event, ticket row as dict).
NotifySink = Callable[[str, dict[str, Any]], Any]


@dataclass(slots=True)
class CheckResult:
    opened: int = 0
    reopened: int = 0
    verified: int = 0
    escalated: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(d: datetime | None) -> datetime | None:
    return d if d is None or d.tzinfo is not None else d.replace(tzinfo=UTC)


def ticket_out(t: Any, now: datetime | None = None) -> dict[str, Any]:
    now = now or _now()
    d = {c: _aware(getattr(t, c)) if isinstance(getattr(t, c), datetime) else getattr(t, c) for c in _TK.c.keys()}
    ack_due, repair_due = d["ack_due"], d["repair_due"]
    d["overdue"] = bool((d["status"] == "open" and ack_due is not None and now > ack_due)
                        or (d["status"] in ACTIVE and repair_due is not None and now > repair_due))
    d["photo"] = bool(d["photo"])
    return d


class TicketService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cfg: HealthConfig, *,
                 audit: AuditSink | None = None, notify: NotifySink | None = None) -> None:
        self.sessions = sessions
        self.cfg = cfg
        self.audit = audit
        self.notify = notify

    # ---- the platform's checks -----------------------------------------------------------
    async def check(self, now: datetime | None = None) -> CheckResult:
        now = now or _now()
        r = CheckResult()
        await self._open_due(now, r)
        await self._verify(now, r)
        await self._escalate(now, r)
        return r

    async def _open_due(self, now: datetime, r: CheckResult) -> None:
        cfg = self.cfg
        due = now - timedelta(seconds=cfg.ticket_after_seconds)
        active = exists().where(_TK.c.channel_id == _IV.c.subject, _TK.c.status.in_(ACTIVE))
        async with self.sessions() as s:
            bad = (await s.execute(
                select(_IV.c.subject, _IV.c.state, _IV.c.detail, func.coalesce(_IV.c.since, _IV.c.start))
                .where(_IV.c.end.is_(None), _IV.c.subject_kind == "channel", _IV.c.state.in_(sorted(BAD)),
                       func.coalesce(_IV.c.since, _IV.c.start) <= due, ~active)
            )).all()
        if not bad:
            return
        for i in range(0, len(bad), 2000):
            await self._open_batch(list(bad[i:i + 2000]), now, r)

    async def _open_batch(self, bad: list[Any], now: datetime, r: CheckResult) -> None:
        cfg = self.cfg
        ids = [b[0] for b in bad]
        repeat_from = now - timedelta(days=cfg.repeat_days)
        reopen_from = now - timedelta(seconds=cfg.reopen_seconds)
        events: list[tuple[str, dict[str, Any]]] = []
        async with self.sessions() as s, s.begin():
            resolver = await load_resolver(s)
            chans = {row[0]: row for row in (await s.execute(
                select(Channel.id, Device.platform_id, Channel.unit_id, Channel.division_code, Channel.point_class)
                .outerjoin(Device, Device.id == Channel.device_id).where(Channel.id.in_(ids)))).all()}
            # The latest ticket of each point, and how many it had lately (repeat faults).
            latest: dict[str, Any] = {}
            counts: dict[str, int] = {}
            for t in (await s.scalars(select(Ticket).where(Ticket.channel_id.in_(ids), Ticket.opened_at >= min(
                    repeat_from, reopen_from - timedelta(days=1))).order_by(Ticket.opened_at))).all():
                latest[t.channel_id] = t
                if _aware(t.opened_at) >= repeat_from:  # type: ignore[operator]
                    counts[t.channel_id] = counts.get(t.channel_id, 0) + 1 + t.reopened
            new_rows: list[dict[str, Any]] = []
            for subject, state, detail, since in bad:
                ch = chans.get(subject)
                if ch is None:
                    continue  # a channel deleted from the registry
                since = _aware(since)
                prev = latest.get(subject)
                if prev is not None and prev.status in ("resolved", "verified", "closed") and prev.resolved_at \
                        and _aware(prev.resolved_at) >= reopen_from:  # type: ignore[operator]
                    # The fault came back soon after the repair: the same ticket, reopened.
                    resolved = _aware(prev.resolved_at)
                    assert resolved is not None and since is not None
                    if now - max(since, resolved) < timedelta(seconds=cfg.ticket_after_seconds):
                        continue
                    prev.status, prev.reopened, prev.updated_at = "open", prev.reopened + 1, now
                    prev.closed_at = prev.verified_at = None
                    lvl = cfg.level(prev.point_class)
                    prev.ack_due = now + timedelta(hours=lvl.acknowledge_hours)
                    prev.repair_due = now + timedelta(hours=lvl.repair_hours)
                    prev.repeat = prev.repeat or counts.get(subject, 0) + 1 >= cfg.repeat_tickets
                    s.add(TicketStep(ticket_id=prev.id, at=now, step="reopen", actor="platform",
                                     note=f"{state} again ({detail or state}) after the repair"))
                    r.reopened += 1
                    events.append(("reopened", ticket_out(prev, now)))
                    continue
                lvl = cfg.level(ch[4])
                new_rows.append({
                    "channel_id": subject, "team_id": resolver.team(ch[1], ch[2], ch[3]), "status": "open",
                    "kind": "offline" if state == "offline" else "fault", "detail": detail, "point_class": ch[4],
                    "fault_since": since, "opened_at": now, "opened_by": None,
                    "ack_due": now + timedelta(hours=lvl.acknowledge_hours),
                    "repair_due": now + timedelta(hours=lvl.repair_hours), "reopened": 0,
                    "repeat": counts.get(subject, 0) + 1 >= cfg.repeat_tickets, "updated_at": now,
                })
            if new_rows:
                await s.execute(_TK.insert(), new_rows)
                made = (await s.scalars(select(Ticket).where(Ticket.channel_id.in_([x["channel_id"] for x in new_rows]),
                                                             Ticket.opened_at == now))).all()
                s.add_all([TicketStep(ticket_id=t.id, at=now, step="open", actor="platform",
                                      note=f"{t.kind} since {t.fault_since:%Y-%m-%d %H:%M:%S} UTC") for t in made])
                r.opened += len(made)
                events += [("opened", ticket_out(t, now)) for t in made]
        for ev, row in events:
            self._audit("ticket.open" if ev == "opened" else "ticket.reopen", row["id"], None,
                        {"channel_id": row["channel_id"], "team_id": row["team_id"]})
            await self._notify(ev, row)

    async def _verify(self, now: datetime, r: CheckResult) -> None:
        good_since = now - timedelta(seconds=self.cfg.verify_seconds)
        async with self.sessions() as s, s.begin():
            rows = (await s.execute(
                select(Ticket, _IV.c.start).join(_IV, and_(_IV.c.subject == Ticket.channel_id, _IV.c.end.is_(None)))
                .where(Ticket.status == "resolved", _IV.c.state == ONLINE, _IV.c.start <= good_since,
                       Ticket.resolved_at <= good_since)
            )).all()
            done = []
            for t, _start in rows:
                t.status, t.verified_at, t.updated_at = "verified", now, now
                s.add(TicketStep(ticket_id=t.id, at=now, step="verify", actor="platform",
                                 note=f"online and good for {self.cfg.verify_seconds:g} s"))
                t.status, t.closed_at = "closed", now
                s.add(TicketStep(ticket_id=t.id, at=now, step="close", actor="platform", note="verified"))
                done.append(t.id)
        for tid in done:
            self._audit("ticket.verify", tid, None, {})
            self._audit("ticket.close", tid, None, {"verified": True})
        r.verified += len(done)

    async def _escalate(self, now: datetime, r: CheckResult) -> None:
        async with self.sessions() as s, s.begin():
            overdue = (await s.scalars(select(Ticket).where(
                Ticket.escalated_at.is_(None),
                ((Ticket.status == "open") & (Ticket.ack_due < now))
                | (Ticket.status.in_(ACTIVE) & (Ticket.repair_due < now)),
            ))).all()
            for t in overdue:
                t.escalated_at, t.updated_at = now, now
                s.add(TicketStep(ticket_id=t.id, at=now, step="escalate", actor="platform",
                                 note="service level breached"))
            out = [ticket_out(t, now) for t in overdue]
        for row in out:
            self._audit("ticket.escalate", row["id"], None, {"team_id": row["team_id"]})
            await self._notify("escalated", row)
        r.escalated += len(out)

    # ---- people's steps ---------------------------------------------------------------------
    async def open_by_hand(self, actor: Any, channel_id: str, note: str) -> dict[str, Any]:
        now = _now()
        async with self.sessions() as s, s.begin():
            ch = (await s.execute(select(Channel.id, Device.platform_id, Channel.unit_id, Channel.division_code,
                                         Channel.point_class).outerjoin(Device, Device.id == Channel.device_id)
                                  .where(Channel.id == channel_id))).first()
            if ch is None:
                raise NotFound(f"no channel {channel_id}")
            active = await s.scalar(select(Ticket.id).where(Ticket.channel_id == channel_id, Ticket.status.in_(ACTIVE)))
            if active is not None:
                raise Invalid(f"channel {channel_id} has an open ticket already: {active}")
            resolver = await load_resolver(s)
            lvl = self.cfg.level(ch[4])
            t = Ticket(channel_id=channel_id, team_id=resolver.team(ch[1], ch[2], ch[3]), status="open",
                       kind="manual", detail=note[:400], point_class=ch[4], fault_since=now, opened_at=now,
                       opened_by=actor.username, ack_due=now + timedelta(hours=lvl.acknowledge_hours),
                       repair_due=now + timedelta(hours=lvl.repair_hours), reopened=0, repeat=False, updated_at=now)
            s.add(t)
            await s.flush()
            s.add(TicketStep(ticket_id=t.id, at=now, step="open", actor=actor.username, note=note))
            out = ticket_out(t, now)
        self._audit("ticket.open", out["id"], actor, {"channel_id": channel_id, "by_hand": True})
        await self._notify("opened", out)
        return out

    async def step(self, actor: Any, ticket_id: int, step: str, note: str | None = None,
                   photo: str | None = None) -> dict[str, Any]:
        if step not in STEPS:
            raise Invalid(f"unknown step {step!r} (steps: {', '.join(STEPS)})")
        sources, target = STEPS[step]
        if step in ("resolve", "close", "reopen") and not (note and note.strip()):
            raise Invalid(f"{step} needs a note")
        now = _now()
        async with self.sessions() as s, s.begin():
            t = await s.get(Ticket, ticket_id, with_for_update=True)
            if t is None:
                raise NotFound(f"no ticket {ticket_id}")
            if t.status not in sources:
                raise Invalid(f"ticket {ticket_id} is {t.status}: {step} is for tickets that are {', '.join(sources)}")
            t.status, t.updated_at = target, now
            if step == "acknowledge":
                t.acknowledged_at = now
            elif step == "repair":
                t.repairing_at = now
                t.acknowledged_at = t.acknowledged_at or now
            elif step == "resolve":
                t.resolved_at, t.note = now, note
                t.acknowledged_at = t.acknowledged_at or now
                if photo is not None:
                    t.photo = photo
            elif step == "close":
                t.closed_at = now
            elif step == "reopen":
                t.reopened += 1
                t.closed_at = t.verified_at = None
            s.add(TicketStep(ticket_id=t.id, at=now, step=step, actor=actor.username, note=note))
            out = ticket_out(t, now)
        self._audit(f"ticket.{step}", ticket_id, actor, {"status": target})
        return out

    async def steps(self, ticket_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = (await s.scalars(select(TicketStep).where(TicketStep.ticket_id == ticket_id)
                                    .order_by(TicketStep.id))).all()
        return [{"at": _aware(r.at), "step": r.step, "actor": r.actor, "note": r.note} for r in rows]

    # ---- reading ---------------------------------------------------------------------------
    async def get(self, ticket_id: int) -> Ticket | None:
        async with self.sessions() as s:
            return await s.get(Ticket, ticket_id)

    async def find(self, *, scope: list[Any], teams: frozenset[int] | None, status: str | None = None,
                   channel_id: str | None = None, team_id: int | None = None, overdue: bool | None = None,
                   repeat: bool | None = None, after: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        now = _now()
        stmt = select(Ticket)
        if scope:
            stmt = stmt.join(Channel, Channel.id == Ticket.channel_id).where(*scope)
        if teams is not None:
            stmt = stmt.where(Ticket.team_id.in_(sorted(teams)))
        if status is not None:
            stmt = stmt.where(Ticket.status.in_(status.split(",")))
        if channel_id is not None:
            stmt = stmt.where(Ticket.channel_id == channel_id)
        if team_id is not None:
            stmt = stmt.where(Ticket.team_id == team_id)
        if repeat is not None:
            stmt = stmt.where(Ticket.repeat.is_(repeat))
        if overdue is not None:
            cond = ((Ticket.status == "open") & (Ticket.ack_due < now)) | (
                Ticket.status.in_(ACTIVE) & (Ticket.repair_due < now))
            stmt = stmt.where(cond if overdue else ~cond)
        if after is not None:
            stmt = stmt.where(Ticket.id < after)
        async with self.sessions() as s:
            rows = (await s.scalars(stmt.order_by(Ticket.id.desc()).limit(limit))).all()
        return [ticket_out(t, now) for t in rows]

    async def repeat_points(self, *, scope: list[Any], teams: frozenset[int] | None) -> list[dict[str, Any]]:
        since = _now() - timedelta(days=self.cfg.repeat_days)
        n = func.count(Ticket.id) + func.coalesce(func.sum(Ticket.reopened), 0)
        stmt = select(Ticket.channel_id, n, func.max(Ticket.opened_at)).where(Ticket.opened_at >= since)
        if scope:
            stmt = stmt.join(Channel, Channel.id == Ticket.channel_id).where(*scope)
        if teams is not None:
            stmt = stmt.where(Ticket.team_id.in_(sorted(teams)))
        stmt = stmt.group_by(Ticket.channel_id).having(n >= self.cfg.repeat_tickets).order_by(n.desc())
        async with self.sessions() as s:
            rows = (await s.execute(stmt.limit(1000))).all()
        return [{"channel_id": c, "tickets": int(k), "last_opened_at": _aware(at)} for c, k, at in rows]

    # ---- sinks -----------------------------------------------------------------------------
    def _audit(self, action: str, ticket_id: int, actor: Any, detail: dict[str, Any]) -> None:
        if self.audit is not None:
            try:
                self.audit(action, ticket_id, actor, detail)
            except Exception:
                log.exception("auditing %s of ticket %s failed", action, ticket_id)

    async def _notify(self, event: str, ticket: dict[str, Any]) -> None:
        if self.notify is None:
            return
        try:
            r = self.notify(event, ticket)
            if hasattr(r, "__await__"):
                await r
        except Exception:  # a notification never stops a ticket
            log.exception("notifying %s of ticket %s failed", event, ticket.get("id"))

