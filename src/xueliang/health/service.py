"""The health subsystem of a platform (全时可用): state history, rates, maintenance teams, fault
tickets and their notifications, as one component; its periodic work is scheduler jobs.

Who sees what: rates, timelines and tickets of the points in the caller's channel scope; a
member of a maintenance team (one who may work tickets but not manage them) only of the points
and tickets of the teams they belong to.
"""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang import heap
from xueliang.access.policy import (
    Action,
    Principal,
    check_role,
    compiled,
    in_scope,
    scope_conditions,
)
from xueliang.bus import Bus
from xueliang.config import HealthConfig
from xueliang.db.tables import Channel, MaintenanceTeam, Report, SchedulerJob, StateInterval, Ticket
from xueliang.errors import Invalid, NotFound
from xueliang.health.history import HistoryRecorder
from xueliang.health.notify import Notifier
from xueliang.health.rates import DimScope
from xueliang.health.reports import KINDS, generate, period
from xueliang.health.rollup import local_today, rollup_day
from xueliang.health.teams import MaintenanceService
from xueliang.health.tickets import TicketService
from xueliang.objects import ObjectStore
from xueliang.scheduler import Scheduler

log = logging.getLogger("xueliang.health")

#: Object keys: generated reports, and the photos teams attach when they resolve a ticket.
REPORTS = "reports/"
PHOTOS = "tickets/"
PHOTO_KINDS = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png"}


class HealthService:
    def __init__(self, cfg: HealthConfig, sessions: async_sessionmaker[AsyncSession], bus: Bus, *,
                 objects: ObjectStore, audit: Any = None, webhook_secret: bytes = b"") -> None:
        self.cfg = cfg
        #: Where generated reports are kept (under ``reports/``), so that any API node of a
        #: cluster serves what the worker made.
        self.objects = objects
        self.sessions = sessions
        self.history = HistoryRecorder(sessions, bus, episode_gap=cfg.episode_gap_seconds,
                                       restart_grace=cfg.restart_grace_seconds, utc_offset_hours=cfg.utc_offset_hours)
        self.teams = MaintenanceService(sessions)
        self.notifier = Notifier(sessions, cfg, (cfg.webhook_secret.encode() or webhook_secret))
        self._audit_log = audit
        self.tickets = TicketService(sessions, cfg, audit=self._audit, notify=self._notify)
        #: Report formats whose libraries' heap is frozen (heap.py).
        self._formats_frozen: set[str] = set()

    async def start(self) -> None:
        await self.history.start()

    async def stop(self) -> None:
        await self.history.stop()
        await self.notifier.close()

    # ---- jobs ----------------------------------------------------------------------------
    def add_jobs(self, scheduler: Scheduler) -> None:
        cfg = self.cfg
        scheduler.add("tickets.check", cfg.check_seconds, self._check_tickets)
        scheduler.add("health.rollup", 300.0, self.rollup_due)
        scheduler.add("notify.dispatch", 2.0, self._dispatch)
        scheduler.add("health.retention", 6 * 3600.0, self._retention)
        for kind in KINDS:
            scheduler.add(f"reports.{kind}", 600.0, self._scheduled_report(kind))

    def _scheduled_report(self, kind: str) -> Any:
        async def run(done: str | None) -> str | None:
            """The last complete period's report (both formats), once its days are rolled up."""
            today = local_today(self.cfg.utc_offset_hours)
            start, _end = period(kind, today)
            last_start, last_end = period(kind, start - timedelta(days=1))
            if done is not None and done >= last_start.isoformat():
                return done
            async with self.sessions() as s:
                rolled = await s.scalar(select(SchedulerJob.done_until).where(SchedulerJob.name == "health.rollup"))
            if rolled is None or rolled < last_end.isoformat():
                return done  # not rolled up yet: the next run tries again
            for fmt in ("xlsx", "pdf"):
                await self.make_report(kind, last_start, fmt, "scheduler")
            return last_start.isoformat()

        return run

    async def make_report(self, kind: str, day: date, fmt: str, by: str) -> dict[str, Any]:
        """Generate a report now and keep it in the archive (the same period again replaces it)."""
        start, end = period(kind, day)
        name = f"{kind}-{start.isoformat()}.{fmt}"
        with tempfile.TemporaryDirectory(prefix="xueliang-report-") as tmp:
            path = Path(tmp) / name
            data = await generate(self.sessions, self.cfg, kind, day, path)
            await self.objects.put_file(REPORTS + name, path)
        if fmt not in self._formats_frozen:
            # the first report of a format imported its libraries (openpyxl; matplotlib and fpdf)
            # and filled their caches: long-lived, so out of the collector's full collections
            self._formats_frozen.add(fmt)
            heap.freeze()
        async with self.sessions() as s, s.begin():
            row = await s.scalar(select(Report).where(Report.kind == kind, Report.period_start == start, Report.fmt == fmt))
            if row is None:
                row = Report(kind=kind, period_start=start, period_end=end, fmt=fmt, path=name)
                s.add(row)
            row.created_at, row.created_by, row.path = datetime.now(UTC), by, name
            await s.flush()
            out = self._report_out(row)
        out["empty"] = data.empty
        return out

    @staticmethod
    def _report_out(r: Report) -> dict[str, Any]:
        return {"id": r.id, "kind": r.kind, "from": r.period_start, "to": r.period_end, "format": r.fmt,
                "created_at": r.created_at, "created_by": r.created_by}

    async def reports(self, limit: int = 200) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = (await s.scalars(select(Report).order_by(Report.period_start.desc(), Report.id.desc())
                                    .limit(limit))).all()
        return [self._report_out(r) for r in rows]

    async def report_file(self, report_id: int) -> tuple[AsyncIterator[bytes], str, int]:
        """The report's bytes (streamed from the object store), its download name and size."""
        async with self.sessions() as s:
            r = await s.get(Report, report_id)
        missing = NotFound(f"report {report_id} not found")
        if r is None:
            raise missing
        key = REPORTS + Path(r.path).name
        info = await self.objects.stat(key)
        if info is None:
            raise missing
        return await self.objects.open(key), f"{r.kind}-{r.period_start.isoformat()}.{r.fmt}", info.size

    # ---- ticket photos ---------------------------------------------------------------------
    async def keep_photo(self, ticket_id: int, data: bytes) -> str:
        """Keep a resolution photo (JPEG or PNG, by its bytes, not its name); its name."""
        ext = next((e for magic, e in PHOTO_KINDS.items() if data.startswith(magic)), None)
        if ext is None:
            raise Invalid("the photo must be a JPEG or PNG image")
        name = f"{ticket_id}-{secrets.token_hex(8)}{ext}"
        await self.objects.put(PHOTOS + name, data)
        return name

    async def drop_photo(self, name: str) -> None:
        await self.objects.delete(PHOTOS + Path(name).name)

    async def photo(self, name: str) -> bytes:
        try:
            return await self.objects.get(PHOTOS + Path(name).name)
        except NotFound:
            raise NotFound("the ticket's photo is missing") from None

    async def _check_tickets(self, done: str | None) -> str | None:
        await self.tickets.check()
        return None

    async def _dispatch(self, done: str | None) -> str | None:
        await self.notifier.dispatch()
        return None

    async def rollup_due(self, done: str | None) -> str | None:
        """Roll up every complete local day after ``done`` (the first time: from the first day
        with history); returns the last day rolled up."""
        yesterday = local_today(self.cfg.utc_offset_hours) - timedelta(days=1)
        if done is not None:
            day = date.fromisoformat(done) + timedelta(days=1)
        else:
            async with self.sessions() as s:
                first = await s.scalar(select(func.min(StateInterval.start)))
            if first is None:
                return yesterday.isoformat()
            day = (first + timedelta(hours=self.cfg.utc_offset_hours)).date()
        last = done
        while day <= yesterday:
            await rollup_day(self.sessions, day, self.cfg.utc_offset_hours)
            last = day.isoformat()
            day += timedelta(days=1)
        return last

    async def _retention(self, done: str | None) -> str | None:
        days = self.cfg.interval_retention_days
        if days:
            cutoff = local_today(self.cfg.utc_offset_hours) - timedelta(days=days)
            edge = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
            async with self.sessions() as s, s.begin():
                await s.execute(delete(StateInterval).where(StateInterval.end.is_not(None), StateInterval.end < edge))
        return None

    # ---- who sees what --------------------------------------------------------------------
    async def visibility(self, p: Principal) -> tuple[list[Any], frozenset[int] | None]:
        """The caller's channel scope (SQL over channels) and, for a team member, their teams."""
        scope = scope_conditions(p, Action.STATS_READ)
        teams: frozenset[int] | None = None
        acts = p.actions
        if Action.TICKETS_WORK in acts and Action.TICKETS_MANAGE not in acts:
            teams = await self.teams.teams_of_user(p.user_id)
        return scope, teams

    @staticmethod
    def dims(p: Principal) -> DimScope | None:
        """The caller's scope on the daily rows' own columns, when it can be said that way (an
        own scope of division subtrees, departments and classes, and no sharing grants); None
        when only a join to the channels can express it."""
        c = compiled(p)
        if c.unrestricted:
            return None
        if c.by_action.get(Action.STATS_READ.value) or c.base is None:
            return None
        b = c.base
        if (b.coverages is not None or b.tiers is not None or b.key_site is not None or b.parents is not None
                or b.ids is not None):
            return None
        ranges = tuple(zip(b.los, b.his, strict=True)) if b.los is not None and b.his is not None else None
        return DimScope(ranges=ranges, departments=b.departments, classes=b.classes)

    async def visible_point(self, p: Principal, channel_id: str, action: Action = Action.HEALTH_READ) -> Channel:
        """The channel if ``p`` may see its health; else NotFound, as for a missing one."""
        check_role(p, action)
        missing = NotFound(f"channel {channel_id} not found")
        async with self.sessions() as s:
            ch = await s.get(Channel, channel_id)
        if ch is None or not in_scope(p, ch, Action.STATS_READ):
            raise missing
        _, teams = await self.visibility(p)
        if teams is not None and await self.teams.team_of_channel(channel_id) not in teams:
            raise missing
        return ch

    async def visible_ticket(self, p: Principal, ticket_id: int, action: Action = Action.HEALTH_READ) -> Ticket:
        """The ticket if ``p`` may see it (its point in scope; a team member: its team's)."""
        check_role(p, action)
        missing = NotFound(f"ticket {ticket_id} not found")
        t = await self.tickets.get(ticket_id)
        if t is None:
            raise missing
        async with self.sessions() as s:
            ch = await s.get(Channel, t.channel_id)
        if ch is None or not in_scope(p, ch, Action.STATS_READ):
            raise missing
        _, teams = await self.visibility(p)
        if teams is not None and t.team_id not in teams:
            raise missing
        return t

    async def notifications(self, p: Principal, limit: int = 100) -> list[dict[str, Any]]:
        """In-console notifications: a team member's teams', everyone's for the duty centre."""
        from xueliang.db.tables import Notification

        _, teams = await self.visibility(p)
        stmt = select(Notification).where(Notification.channel == "console")
        if teams is not None:
            stmt = stmt.where(Notification.team_id.in_(sorted(teams)))
        elif Action.TICKETS_MANAGE not in p.actions:
            stmt = stmt.where(Notification.id < 0)  # neither a team nor the duty centre
        async with self.sessions() as s:
            rows = (await s.scalars(stmt.order_by(Notification.id.desc()).limit(limit))).all()
        return [{"id": n.id, "at": n.created_at, "subject": n.subject, "team_id": n.team_id, "body": n.body}
                for n in rows]

    # ---- sinks ---------------------------------------------------------------------------
    def _audit(self, action: str, ticket_id: int, actor: Any, detail: dict[str, Any]) -> None:
        # People's steps are audited by the API (the request record names the step); the
        # platform's own steps are recorded here.
        if actor is None and self._audit_log is not None:
            self._audit_log.append(action, "ok", actor="platform", role="system", resource_type="ticket",
                                   resource_id=str(ticket_id), detail=detail)

    async def _notify(self, event: str, t: dict[str, Any]) -> None:
        team = None
        if t.get("team_id") is not None:
            async with self.sessions() as s:
                team = await s.get(MaintenanceTeam, t["team_id"])
        subject = f"[xueliang] ticket {t['id']} {event}: point {t['channel_id']} ({t['kind']})"
        body = json.loads(json.dumps({"event": event, "ticket": {k: v for k, v in t.items() if k != "note"}},
                                     default=str))
        base = f"ticket-{t['id']}-{event}-{t.get('reopened', 0)}"
        msgs: list[dict[str, Any]] = [{"key": f"{base}-console", "channel": "console", "team_id": t.get("team_id"),
                                       "subject": subject, "body": body}]
        if team is not None:
            if team.email and event != "escalated":
                msgs.append({"key": f"{base}-email", "channel": "email", "target": team.email,
                             "team_id": team.id, "subject": subject, "body": body})
            if team.supervisor_email and event == "escalated":
                msgs.append({"key": f"{base}-supervisor", "channel": "email", "target": team.supervisor_email,
                             "team_id": team.id, "subject": subject, "body": body})
            if team.webhook_url:
                msgs.append({"key": f"{base}-webhook", "channel": "webhook", "target": team.webhook_url,
                             "team_id": team.id, "subject": subject, "body": body})
        await self.notifier.queue(msgs)
