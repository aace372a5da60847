"""The incident centre as one component: intake (受理), dispatch (分流), the departments' work and
feedback (反馈), review and closure (结案), supervision of overdue cases (督办), and who sees what.

Who sees what:
- the centre (``incidents.manage``) every case of its division subtree (everything without one);
- a department (``incidents.read`` without manage) the cases dispatched to it — live or done,
  not the ones it returned or that were moved away — and nothing else: another department's
  case answers exactly as a missing one, by id, in listings, statistics and attachments;
- a linked agency (``incidents.joint``) the cases its emergency system pushed (joint view).

Every step is a row of ``incident_steps`` with its note and attachments; people's steps are
audited by the API (the request's record names the step), the platform's own (rules, overdue
escalation) here. Deadlines live in the database and a scheduler job checks them, so they
survive restarts and run once in a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access.policy import Action, Principal, authorize_found, check_role, scope_conditions
from xueliang.access.resources import events_seen
from xueliang.bus import Bus, BusEvent
from xueliang.config import IncidentsConfig
from xueliang.db.tables import (
    Channel,
    Division,
    Event,
    Incident,
    IncidentAttachment,
    IncidentDispatch,
    IncidentLink,
    IncidentRule,
    IncidentStep,
    Unit,
    User,
)
from xueliang.errors import Forbidden, Invalid, NotFound, Unavailable
from xueliang.health.notify import Notifier
from xueliang.health.service import PHOTO_KINDS
from xueliang.incidents import clips, workflow
from xueliang.incidents.inbound import CaseIn, InboundCase
from xueliang.incidents.links import CHANNEL, EmergencyChannel, LinkService
from xueliang.incidents.nearby import cameras_near
from xueliang.incidents.place import Area, area_of, bbox, distance_m, locate
from xueliang.incidents.stats import statistics
from xueliang.objects import ObjectStore
from xueliang.scheduler import Scheduler
from xueliang.sealing import Sealer

log = logging.getLogger("xueliang.incidents")

#: Object keys of attachments.
ATTACHMENTS = "incidents/"
A = Action
_AREAS_TTL = 60.0
#: How far out of intake order two cases' ids may be (see find).
_ID_SLACK = timedelta(minutes=1)


def _now() -> datetime:
    return datetime.now(UTC)


def has_dispatch(*conds: Any) -> Any:
    """EXISTS a dispatch of the case (the outer query's) meeting ``conds``."""
    return (select(IncidentDispatch.id).where(IncidentDispatch.incident_id == Incident.id, *conds)
            .correlate(Incident).exists())


def case_out(i: Incident, *, reporter: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": i.id, "source": i.source, "category": i.category, "priority": i.priority, "status": i.status,
        "description": i.description, "longitude": i.longitude, "latitude": i.latitude, "address": i.address,
        "division_code": i.division_code, "division_basis": i.division_basis, "anonymous": i.anonymous,
        "alarm_event_id": i.alarm_event_id, "alarm_channel_id": i.alarm_channel_id, "link_id": i.link_id,
        "reference": i.external_ref if i.link_id is not None else None, "created_by": i.created_by,
        "created_at": i.created_at, "dispatched_at": i.dispatched_at, "closed_at": i.closed_at,
        "close_seconds": i.close_seconds, "flagged": i.flagged, "escalated_at": i.escalated_at,
        "merged_into": i.merged_into, "rating": i.rating, "rating_note": i.rating_note, "rated_at": i.rated_at,
        "updated_at": i.updated_at,
    }
    if reporter and not i.anonymous:
        out["reporter"] = {"name": i.reporter_name, "phone": i.reporter_phone}
    return out


def dispatch_out(d: IncidentDispatch, now: datetime | None = None) -> dict[str, Any]:
    now = now or _now()
    return {"id": d.id, "department": d.department, "status": d.status, "deadline": d.deadline,
            "dispatched_at": d.dispatched_at, "dispatched_by": d.dispatched_by,
            "acknowledged_at": d.acknowledged_at, "fed_back_at": d.fed_back_at, "feedback": d.feedback,
            "on_time": d.on_time, "escalated_at": d.escalated_at,
            "overdue": d.status in workflow.ACTIVE_DISPATCH and d.deadline < now}


def attachment_out(a: IncidentAttachment) -> dict[str, Any]:
    out = {"id": a.id, "kind": a.kind, "content_type": a.content_type, "size": a.size, "channel_id": a.channel_id,
           "at": a.at, "by": a.by}
    if a.kind == "clip":  # where it came from is in its key: incidents/<case>/clip-<source>-<token>.mp4
        out["source"] = a.key.rsplit("/", 1)[-1].split("-")[1]
    return out


class IncidentService:
    def __init__(self, cfg: IncidentsConfig, sessions: async_sessionmaker[AsyncSession], bus: Bus, *,
                 sealer: Sealer, objects: ObjectStore, notifier: Notifier, audit: Any = None,
                 media: Any = None, grants: Any = None) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.bus = bus
        self.objects = objects
        self.notifier = notifier
        self.audit = audit
        #: The media hub (where it runs here): snapshots of cameras for attachments.
        self.media = media
        #: Sharing grants (access/grants.py): the joint view opens the cameras near a case.
        self.grants = grants
        self.links = LinkService(sessions, sealer)
        self.channel = EmergencyChannel(self.links)
        notifier.channels[CHANNEL] = self.channel
        self._areas: tuple[float, list[Area]] = (0.0, [])
        self._consumer: asyncio.Task[None] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Rules open cases from alarms: the durable group ``incidents`` (each alarm once in a cluster)."""
        sub = self.bus.subscribe("alarm", group="incidents")

        async def consume() -> None:
            try:
                while True:
                    ev = await sub.get()
                    try:
                        await self.apply_rules(ev)
                    except Exception:
                        log.exception("incident rules on alarm %s failed", ev.subject)
            finally:
                sub.close()

        self._consumer = asyncio.create_task(consume(), name="incident-rules")

    async def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
        await self.channel.close()

    def add_jobs(self, scheduler: Scheduler) -> None:
        scheduler.add("incidents.deadlines", self.cfg.check_seconds, self._deadlines_job)

    async def _deadlines_job(self, done: str | None) -> str | None:
        await self.check_deadlines()
        return None

    # ---- who sees what -----------------------------------------------------------------------
    @staticmethod
    def is_centre(p: Principal) -> bool:
        return A.INCIDENTS_MANAGE in p.actions

    def visibility(self, p: Principal) -> list[Any]:
        """Conditions on ``incidents`` for what ``p`` may see (the role checked by the caller)."""
        if self.is_centre(p):
            if p.division_code:
                return [Incident.division_code >= p.division_code, Incident.division_code < p.division_code + ":"]
            return []
        if p.department:
            return [has_dispatch(IncidentDispatch.department == p.department,
                                 IncidentDispatch.status.in_(workflow.LIVE_DISPATCH))]
        return [false()]

    async def visible(self, p: Principal, incident_id: int, action: Action = A.INCIDENTS_READ) -> Incident:
        """The case if ``p`` may see it; else NotFound, exactly as for a case that does not exist."""
        check_role(p, action)
        async with self.sessions() as s:
            i = await s.scalar(select(Incident).where(Incident.id == incident_id, *self.visibility(p)))
        if i is None:
            raise NotFound(f"incident {incident_id} not found")
        return i

    # ---- intake (受理) -------------------------------------------------------------------------
    def _category(self, category: str) -> str:
        if category not in self.cfg.categories:
            raise Invalid(f"category must be one of {', '.join(self.cfg.categories)}")
        return category

    async def _areas_now(self) -> list[Area]:
        at, areas = self._areas
        if time.monotonic() - at < _AREAS_TTL and at:
            return areas
        async with self.sessions() as s:
            rows = (await s.execute(select(Division.code, Division.boundary)
                                    .where(Division.boundary.is_not(None)))).all()
        areas = [a for code, b in rows if b and (a := area_of(code, b)) is not None]
        self._areas = (time.monotonic(), areas)
        return areas

    async def place(self, lon: float, lat: float) -> tuple[str | None, str, float | None]:
        """(division code, basis, distance to the channel it came from): a boundary holding the
        point first; else the nearest camera's division within incidents.nearest_channel_metres."""
        code = locate(await self._areas_now(), lon, lat)
        if code is not None:
            return code, "boundary", None
        radius = self.cfg.nearest_channel_metres
        x0, y0, x1, y1 = bbox(lon, lat, radius)
        async with self.sessions() as s:
            rows = (await s.execute(select(Channel.division_code, Channel.longitude, Channel.latitude).where(
                Channel.latitude.between(y0, y1), Channel.longitude.between(x0, x1), Channel.division_code != "",
            ))).all()
        best: tuple[float, str] | None = None
        for dc, x, y in rows:
            if x is None or y is None:
                continue
            d = distance_m(lon, lat, x, y)
            if d <= radius and (best is None or d < best[0]):
                best = (d, dc)
        if best is None:
            return None, "none", None
        return best[1], "nearest_channel", round(best[0], 1)

    async def take_in(self, case: CaseIn, *, source: str, by: str, link: IncidentLink | None = None,
                      alarm: Event | None = None, alarm_channel: str | None = None,
                      reference: str | None = None) -> dict[str, Any]:
        """A new case, 受理 recorded as its first step. ``reference``: the case's own key where its
        source has one (a rule's, a phone report's), kept in ``external_ref``."""
        if source not in workflow.SOURCES:
            raise Invalid(f"source must be one of {', '.join(workflow.SOURCES)}")
        self._category(case.category)
        code: str | None
        if case.division_code:
            code, basis, dist = case.division_code, "given", None
        else:
            code, basis, dist = await self.place(case.longitude, case.latitude)
        now = _now()
        reporter = case.reporter
        ref = reference
        if isinstance(case, InboundCase):
            ref = case.reference
        async with self.sessions() as s, s.begin():
            i = Incident(
                source=source, category=case.category, priority=case.priority, status="received",
                description=case.description, longitude=case.longitude, latitude=case.latitude, address=case.address,
                division_code=code, division_basis=basis,
                reporter_name=reporter.name if reporter else None, reporter_phone=reporter.phone if reporter else None,
                anonymous=reporter is None or not (reporter.name or reporter.phone),
                alarm_event_id=alarm.id if alarm is not None else None, alarm_channel_id=alarm_channel,
                link_id=link.id if link is not None else None, external_ref=ref, created_by=by,
                created_at=now, flagged=False, updated_at=now)
            s.add(i)
            await s.flush()
            where = {"boundary": "the division boundary holding the place",
                     "nearest_channel": f"the nearest camera's division ({dist} m away): no boundary holds the place",
                     "given": "the division given", "none": "no division: no boundary or camera near the place"}[basis]
            when = (f"; reported at {case.reported_at.isoformat()}"
                    if isinstance(case, InboundCase) and case.reported_at is not None else "")
            s.add(IncidentStep(incident_id=i.id, at=now, step="receive", actor=by,
                               note=f"taken in from {source}; {where}{when}"))
            out = case_out(i)
        self.bus.publish("incident.received", str(out["id"]), source=source, category=out["category"],
                         division=code)
        if link is not None:
            await self._push(out, "received")
        return out

    async def take_in_hotline(self, p: Principal, case: CaseIn) -> dict[str, Any]:
        check_role(p, A.INCIDENTS_CREATE)
        return await self.take_in(case, source="hotline", by=p.username)

    async def take_in_inbound(self, link: IncidentLink, case: InboundCase) -> tuple[dict[str, Any], bool]:
        """A case pushed by an emergency system: (the case, made now); the same reference again
        answers with the case made the first time."""
        async def existing() -> Incident | None:
            async with self.sessions() as s:
                return await s.scalar(select(Incident).where(Incident.link_id == link.id,
                                                              Incident.external_ref == case.reference))

        found = await existing()
        if found is not None:
            return case_out(found), False
        try:
            return await self.take_in(case, source="emergency", by=f"link:{link.name}", link=link), True
        except IntegrityError:  # the same push twice at once: the first stands
            found = await existing()
            if found is None:
                raise
            return case_out(found), False

    async def take_in_alarm(self, p: Principal, event_id: int, category: str, priority: str,
                            note: str) -> tuple[dict[str, Any], bool]:
        """One click from an alarm the caller sees: a case at the alarm's camera (once per alarm)."""
        check_role(p, A.INCIDENTS_CREATE)
        async with self.sessions() as s:
            ev = await s.scalar(select(Event).where(Event.id == event_id, Event.kind == "alarm", *events_seen(p)))
            if ev is None:
                raise NotFound(f"alarm {event_id} not found")
            done = await s.scalar(select(Incident).where(Incident.alarm_event_id == event_id))
            if done is not None:
                return case_out(done), False
            ch = await s.get(Channel, ev.subject)
            if ch is None:
                ch = await s.scalar(select(Channel).where(Channel.device_id == ev.subject,
                                                          Channel.longitude.is_not(None)).limit(1))
        case = self._alarm_case(ev.subject, dict(ev.data or {}), ch, category, priority, note)
        try:
            return await self.take_in(case, source="alarm", by=p.username, alarm=ev,
                                      alarm_channel=ch.id if ch is not None else None), True
        except IntegrityError:
            async with self.sessions() as s:
                done = await s.scalar(select(Incident).where(Incident.alarm_event_id == event_id))
            if done is None:
                raise
            return case_out(done), False

    def _alarm_case(self, subject: str, data: dict[str, Any], ch: Channel | None, category: str, priority: str,
                    note: str) -> CaseIn:
        lon, lat = data.get("longitude"), data.get("latitude")
        if not isinstance(lon, int | float) or not isinstance(lat, int | float) or not (lon or lat):
            if ch is None or ch.longitude is None or ch.latitude is None:
                raise Invalid("the alarm's camera has no coordinates: enter the case by hand with its place")
            lon, lat = ch.longitude, ch.latitude
        what = " ".join(str(x) for x in (data.get("description"), data.get("alarm_type"), data.get("method"))
                        if x not in (None, "")) or "alarm"
        desc = f"device alarm on {subject}: {what}" + (f"\n{note}" if note.strip() else "")
        try:
            return CaseIn(category=category, description=desc[:4000], priority=priority,  # type: ignore[arg-type]
                          longitude=float(lon), latitude=float(lat),
                          address=ch.address if ch is not None else None,
                          division_code=ch.division_code if ch is not None and ch.division_code else None)
        except ValueError as exc:
            raise Invalid(f"the alarm does not make a case: {exc}") from None

    # ---- rules: cases opened from alarms (自动立案) ---------------------------------------------
    async def apply_rules(self, ev: BusEvent) -> int | None:
        """Open a case for an alarm that an enabled rule matches (the first rule by id); the same
        alarm again (the bus delivers at least once) opens nothing more."""
        if ev.kind != "alarm":
            return None
        async with self.sessions() as s:
            rules = (await s.scalars(select(IncidentRule).where(IncidentRule.enabled.is_(True))
                                     .order_by(IncidentRule.id))).all()
            if not rules:
                return None
            ch = await s.get(Channel, ev.subject)
        data = dict(ev.data)
        kinds = {str(data.get(k)) for k in ("alarm_type", "method") if data.get(k) not in (None, "")}
        division = ch.division_code if ch is not None else ""
        rule = next((r for r in rules if (not r.alarm_types or kinds & set(r.alarm_types))
                     and division.startswith(r.division or "")), None)
        if rule is None:
            return None
        key = f"alarm:{ev.subject}:{int(ev.at * 1000)}"
        async with self.sessions() as s:
            if await s.scalar(select(Incident.id).where(Incident.link_id.is_(None), Incident.external_ref == key)):
                return None
        try:
            case = self._alarm_case(ev.subject, data, ch, rule.category, rule.priority, f"rule {rule.name}")
        except Invalid as exc:
            log.warning("rule %s matched alarm %s but %s", rule.name, ev.subject, exc.detail)
            return None
        out = await self.take_in(case, source="rule", by="platform", alarm_channel=ch.id if ch else None,
                                 reference=key)
        self._audit("incident.receive", out["id"], {"rule": rule.name, "alarm": ev.subject})
        return int(out["id"])

    async def rules(self) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = (await s.scalars(select(IncidentRule).order_by(IncidentRule.id))).all()
        return [self._rule_out(r) for r in rows]

    @staticmethod
    def _rule_out(r: IncidentRule) -> dict[str, Any]:
        return {"id": r.id, "name": r.name, "alarm_types": r.alarm_types or [], "division": r.division,
                "category": r.category, "priority": r.priority, "enabled": r.enabled, "created_by": r.created_by,
                "created_at": r.created_at}

    async def add_rule(self, p: Principal, *, name: str, alarm_types: Sequence[str], division: str, category: str,
                       priority: str, enabled: bool = True) -> dict[str, Any]:
        check_role(p, A.INCIDENTS_MANAGE)
        self._category(category)
        if priority not in workflow.PRIORITIES:
            raise Invalid(f"priority must be one of {', '.join(workflow.PRIORITIES)}")
        if division and not division.isdigit():
            raise Invalid("division is a division code (digits)")
        try:
            async with self.sessions() as s, s.begin():
                r = IncidentRule(name=name.strip(), alarm_types=sorted({t.strip() for t in alarm_types if t.strip()}),
                                 division=division, category=category, priority=priority, enabled=enabled,
                                 created_by=p.username, created_at=_now())
                s.add(r)
                await s.flush()
                return self._rule_out(r)
        except IntegrityError:
            raise Invalid(f"a rule named {name!r} exists") from None

    async def drop_rule(self, p: Principal, rule_id: int) -> None:
        check_role(p, A.INCIDENTS_MANAGE)
        async with self.sessions() as s, s.begin():
            r = await s.get(IncidentRule, rule_id)
            if r is None:
                raise NotFound(f"rule {rule_id} not found")
            await s.delete(r)

    # ---- reading -----------------------------------------------------------------------------
    async def departments(self, p: Principal, limit: int = 2000) -> list[str]:
        """The departments a case may be dispatched to, as the platform knows them: those of its
        users (departments' staff, grid members) and of its units (主管部门), by name. The
        dispatch dialog offers them; any other name may still be typed."""
        check_role(p, A.INCIDENTS_MANAGE)
        names = (select(User.department.label("d")).where(User.department.is_not(None), User.department != "")
                 .union(select(Unit.department.label("d")).where(Unit.department.is_not(None), Unit.department != "")))
        async with self.sessions() as s:
            return list((await s.scalars(select(names.subquery().c.d).order_by("d").limit(limit))).all())

    async def find(self, p: Principal, *, status: str | None = None, category: str | None = None,
                   source: str | None = None, division: str | None = None, department: str | None = None,
                   flagged: bool | None = None, overdue: bool | None = None, since: datetime | None = None,
                   until: datetime | None = None, before: int | None = None, limit: int = 50) -> dict[str, Any]:
        """The queue: newest first, by ``before`` (the last id of the previous page)."""
        check_role(p, A.INCIDENTS_READ)
        stmt = select(Incident).where(*self.visibility(p))
        if status:
            stmt = stmt.where(Incident.status.in_(status.split(",")))
        if category:
            stmt = stmt.where(Incident.category == category)
        if source:
            stmt = stmt.where(Incident.source == source)
        if division:
            stmt = stmt.where(Incident.division_code >= division, Incident.division_code < division + ":")
        if department:
            stmt = stmt.where(has_dispatch(IncidentDispatch.department == department,
                                           IncidentDispatch.status.in_(workflow.LIVE_DISPATCH)))
        if flagged is not None:
            stmt = stmt.where(Incident.flagged if flagged else ~Incident.flagged)
        if overdue is not None:
            late = has_dispatch(IncidentDispatch.status.in_(workflow.ACTIVE_DISPATCH),
                                IncidentDispatch.deadline < _now())
            stmt = stmt.where(late if overdue else ~late)
        if since is not None:
            stmt = stmt.where(Incident.created_at >= since)
        if until is not None:
            stmt = stmt.where(Incident.created_at < until)
        if before is not None:
            stmt = stmt.where(Incident.id < before)
        async with self.sessions() as s:
            # A time range as a range of ids too, so that the newest-first scan starts and stops
            # there (a month of a year's cases, not the year). Ids follow intake: a case's time
            # and its id are set in one short transaction, so two cases a minute apart are in
            # id order; the bounds keep that minute of slack.
            if since is not None:
                lo = await s.scalar(select(Incident.id).where(Incident.created_at < since - _ID_SLACK)
                                    .order_by(Incident.created_at.desc()).limit(1))
                if lo is not None:
                    stmt = stmt.where(Incident.id > lo)
            if until is not None:
                hi = await s.scalar(select(Incident.id).where(Incident.created_at >= until + _ID_SLACK)
                                    .order_by(Incident.created_at).limit(1))
                if hi is not None:
                    stmt = stmt.where(Incident.id < hi)
            rows = list((await s.scalars(stmt.order_by(Incident.id.desc()).limit(limit))).all())
        return {"items": [case_out(i) for i in rows],
                "next_before": rows[-1].id if len(rows) == limit else None,
                # what a case may be about (incidents.categories), for the intake form
                "categories": self.cfg.categories}

    async def detail(self, p: Principal, incident_id: int) -> dict[str, Any]:
        i = await self.visible(p, incident_id)
        async with self.sessions() as s:
            ds = (await s.scalars(select(IncidentDispatch).where(IncidentDispatch.incident_id == i.id)
                                  .order_by(IncidentDispatch.id))).all()
            steps = (await s.scalars(select(IncidentStep).where(IncidentStep.incident_id == i.id)
                                     .order_by(IncidentStep.id))).all()
            atts = (await s.scalars(select(IncidentAttachment).where(IncidentAttachment.incident_id == i.id)
                                    .order_by(IncidentAttachment.id))).all()
            merged = (await s.scalars(select(Incident.id).where(Incident.merged_into == i.id)
                                      .order_by(Incident.id))).all()
        now = _now()
        centre = self.is_centre(p)
        # A department sees its own dispatches and the steps of the case that are not another
        # department's work.
        ds = [d for d in ds if centre or d.department == p.department]
        steps = [st for st in steps if centre or st.department in (None, p.department)]
        return {**case_out(i), "dispatches": [dispatch_out(d, now) for d in ds],
                "steps": [{"id": st.id, "at": st.at, "step": st.step, "actor": st.actor, "department": st.department,
                           "dispatch_id": st.dispatch_id, "note": st.note, "attachments": st.attachments or []}
                          for st in steps],
                "attachments": [attachment_out(a) for a in atts
                                if centre or a.department in (None, p.department)],
                "merged": list(merged) if centre else []}

    async def inbox(self, p: Principal, limit: int = 200) -> dict[str, Any]:
        """A department's inbox: its own dispatches still to be worked on (待签收, 处置中) or
        awaiting the centre's review (已反馈), the nearest deadline first, each with its case.
        Without a department, none (as its queue)."""
        check_role(p, A.INCIDENTS_HANDLE)
        if not p.department:
            return {"items": []}
        stmt = (select(IncidentDispatch, Incident).join(Incident, Incident.id == IncidentDispatch.incident_id)
                .where(IncidentDispatch.department == p.department,
                       IncidentDispatch.status.in_((*workflow.ACTIVE_DISPATCH, "fed_back")),
                       Incident.status.not_in(("closed", "merged")))
                .order_by(IncidentDispatch.deadline, IncidentDispatch.id).limit(limit))
        async with self.sessions() as s:
            rows = (await s.execute(stmt)).all()
        now = _now()
        return {"items": [{**case_out(i), "dispatch": dispatch_out(d, now)} for d, i in rows]}

    async def stats(self, p: Principal, since: datetime, until: datetime, level: int) -> dict[str, Any]:
        check_role(p, A.INCIDENTS_READ)
        dept = None if self.is_centre(p) else p.department
        return await statistics(self.sessions, self.visibility(p), since, until, level, department=dept)

    async def cameras(self, p: Principal, incident_id: int, radius: float, limit: int) -> dict[str, Any]:
        """Cameras near the case that ``p`` may watch (its own scope and grants), nearest first."""
        i = await self.visible(p, incident_id)
        if i.longitude is None or i.latitude is None:
            return {"items": [], "radius": radius}
        scope = scope_conditions(p, A.LIVE_VIEW)
        items = await cameras_near(self.sessions, i.longitude, i.latitude, radius, scope, limit)
        return {"items": items, "radius": radius, "longitude": i.longitude, "latitude": i.latitude}

    # ---- the centre's steps --------------------------------------------------------------------
    async def _locked(self, s: AsyncSession, p: Principal, incident_id: int) -> Incident:
        i = await s.scalar(select(Incident).where(Incident.id == incident_id, *self.visibility(p))
                           .with_for_update())
        if i is None:
            raise NotFound(f"incident {incident_id} not found")
        return i

    async def _check_attachments(self, s: AsyncSession, incident_id: int, ids: Sequence[int]) -> list[int]:
        ids = sorted(set(ids))
        if ids:
            found = set((await s.scalars(select(IncidentAttachment.id).where(
                IncidentAttachment.incident_id == incident_id, IncidentAttachment.id.in_(ids)))).all())
            if found != set(ids):
                raise Invalid(f"attachments {sorted(set(ids) - found)} are not this case's")
        return ids

    async def _settle(self, s: AsyncSession, i: Incident) -> None:
        states = (await s.scalars(select(IncidentDispatch.status).where(IncidentDispatch.incident_id == i.id))).all()
        i.status = workflow.case_state(i.status, states)
        i.updated_at = _now()

    async def dispatch(self, p: Principal, incident_id: int, targets: Sequence[tuple[str, datetime | None]],
                       note: str, attachments: Sequence[int] = ()) -> dict[str, Any]:
        """分流: to each department with its deadline (by default the priority's)."""
        check_role(p, A.INCIDENTS_MANAGE)
        if not targets:
            raise Invalid("name at least one department")
        names = [d.strip() for d, _ in targets]
        if any(not n for n in names) or len(set(names)) != len(names):
            raise Invalid("departments are named once each")
        now = _now()
        async with self.sessions() as s, s.begin():
            i = await self._locked(s, p, incident_id)
            if i.status in ("closed", "merged"):
                raise Invalid(f"incident {incident_id} is {i.status}")
            att = await self._check_attachments(s, i.id, attachments)
            live = set((await s.scalars(select(IncidentDispatch.department).where(
                IncidentDispatch.incident_id == i.id,
                IncidentDispatch.status.in_(("dispatched", "handling", "fed_back"))))).all())
            dup = [n for n in names if n in live]
            if dup:
                raise Invalid(f"already dispatched to {', '.join(dup)}")
            made = []
            for name, (_, deadline) in zip(names, targets, strict=True):
                due = deadline or now + timedelta(hours=self.cfg.deadline_hours[i.priority])
                if due.tzinfo is None:
                    due = due.replace(tzinfo=UTC)
                if due <= now:
                    raise Invalid("a deadline is in the future")
                d = IncidentDispatch(incident_id=i.id, department=name, status="dispatched", deadline=due,
                                     dispatched_at=now, dispatched_by=p.username)
                s.add(d)
                await s.flush()
                s.add(IncidentStep(incident_id=i.id, dispatch_id=d.id, at=now, step="dispatch", actor=p.username,
                                   department=name, note=note or None, attachments=att or None))
                made.append(d)
            i.dispatched_at = i.dispatched_at or now
            await self._settle(s, i)
            out = case_out(i)
            outs = [dispatch_out(d, now) for d in made]
        self.bus.publish("incident.dispatched", str(incident_id), departments=names)
        await self._push(out, "dispatched", dispatches=outs)
        return {**out, "dispatches": outs}

    async def department_step(self, p: Principal, incident_id: int, dispatch_id: int, step: str, note: str,
                              attachments: Sequence[int] = ()) -> dict[str, Any]:
        """A department's step on its own dispatch (acknowledge, feedback, return), or the
        centre's redo (退回重办) of a feedback."""
        centre_step = step not in workflow.DEPARTMENT_STEPS
        check_role(p, A.INCIDENTS_MANAGE if centre_step else A.INCIDENTS_HANDLE)
        if step in ("feedback", "return", "redo") and not note.strip():
            raise Invalid(f"{step} needs a note")
        now = _now()
        async with self.sessions() as s, s.begin():
            i = await self._locked(s, p, incident_id)
            d = await s.scalar(select(IncidentDispatch).where(IncidentDispatch.id == dispatch_id,
                                                              IncidentDispatch.incident_id == i.id))
            if d is None or (not centre_step and d.department != p.department):
                raise NotFound(f"dispatch {dispatch_id} not found")
            if i.status in ("closed", "merged"):
                raise Invalid(f"incident {incident_id} is {i.status}")
            att = await self._check_attachments(s, i.id, attachments)
            try:
                d.status = workflow.dispatch_step(step, d.status)
            except workflow.StepRefused as exc:
                raise Invalid(str(exc)) from None
            if step == "acknowledge":
                d.acknowledged_at = now
            elif step == "feedback":
                d.acknowledged_at = d.acknowledged_at or now
                d.fed_back_at, d.feedback, d.on_time = now, note, now <= d.deadline
            elif step == "redo":
                d.fed_back_at, d.on_time = None, None
            s.add(IncidentStep(incident_id=i.id, dispatch_id=d.id, at=now, step=step, actor=p.username,
                               department=d.department, note=note or None, attachments=att or None))
            await self._settle(s, i)
            out = case_out(i)
            dout = dispatch_out(d, now)
        self.bus.publish(f"incident.{step}", str(incident_id), department=dout["department"], status=out["status"])
        await self._push(out, step, dispatches=[dout])
        return {**out, "dispatch": dout}

    async def reassign(self, p: Principal, incident_id: int, dispatch_id: int, department: str,
                       deadline: datetime | None, note: str) -> dict[str, Any]:
        """改派: the dispatch moves to another department (a new dispatch, a new deadline)."""
        check_role(p, A.INCIDENTS_MANAGE)
        department = department.strip()
        if not department:
            raise Invalid("name the department")
        now = _now()
        async with self.sessions() as s, s.begin():
            i = await self._locked(s, p, incident_id)
            if i.status in ("closed", "merged"):
                raise Invalid(f"incident {incident_id} is {i.status}")
            d = await s.scalar(select(IncidentDispatch).where(IncidentDispatch.id == dispatch_id,
                                                              IncidentDispatch.incident_id == i.id))
            if d is None:
                raise NotFound(f"dispatch {dispatch_id} not found")
            if d.department == department:
                raise Invalid("reassign to another department")
            try:
                d.status = workflow.dispatch_step("reassign", d.status)
            except workflow.StepRefused as exc:
                raise Invalid(str(exc)) from None
            due = deadline or now + timedelta(hours=self.cfg.deadline_hours[i.priority])
            if due.tzinfo is None:
                due = due.replace(tzinfo=UTC)
            new = IncidentDispatch(incident_id=i.id, department=department, status="dispatched", deadline=due,
                                   dispatched_at=now, dispatched_by=p.username)
            s.add(new)
            await s.flush()
            s.add(IncidentStep(incident_id=i.id, dispatch_id=d.id, at=now, step="reassign", actor=p.username,
                               department=None, note=f"from {d.department} to {department}" + (f": {note}" if note else "")))
            await self._settle(s, i)
            out = case_out(i)
            dout = dispatch_out(new, now)
        await self._push(out, "reassigned", dispatches=[dout])
        return {**out, "dispatch": dout}

    async def close(self, p: Principal, incident_id: int, note: str, attachments: Sequence[int] = ()) -> dict[str, Any]:
        """结案: the centre reviewed the feedback (or settled the case itself) and closes it."""
        check_role(p, A.INCIDENTS_MANAGE)
        if not note.strip():
            raise Invalid("closing needs a note (the outcome)")
        now = _now()
        async with self.sessions() as s, s.begin():
            i = await self._locked(s, p, incident_id)
            try:
                workflow.may_close(i.status)
            except workflow.StepRefused as exc:
                raise Invalid(str(exc)) from None
            att = await self._check_attachments(s, i.id, attachments)
            for d in (await s.scalars(select(IncidentDispatch).where(IncidentDispatch.incident_id == i.id,
                                                                     IncidentDispatch.status == "fed_back"))).all():
                d.status = "done"
            i.status, i.closed_at, i.updated_at = "closed", now, now
            i.close_seconds = int((now - i.created_at).total_seconds())
            s.add(IncidentStep(incident_id=i.id, at=now, step="close", actor=p.username, note=note,
                               attachments=att or None))
            out = case_out(i)
        self.bus.publish("incident.closed", str(incident_id))
        await self._push(out, "closed", note=note)
        return out

    async def merge(self, p: Principal, incident_id: int, into: int, note: str) -> dict[str, Any]:
        """A duplicate joins another case: it is ``merged`` (its history stays), its live
        dispatches end, the other case lists it."""
        check_role(p, A.INCIDENTS_MANAGE)
        if into == incident_id:
            raise Invalid("a case is not merged into itself")
        now = _now()
        async with self.sessions() as s, s.begin():
            target = await self._locked(s, p, into)
            i = await self._locked(s, p, incident_id)
            if i.status in ("closed", "merged") or target.status == "merged":
                raise Invalid("only an open case is merged, into a case that is not merged itself")
            for d in (await s.scalars(select(IncidentDispatch).where(
                    IncidentDispatch.incident_id == i.id,
                    IncidentDispatch.status.in_(("dispatched", "handling", "fed_back"))))).all():
                d.status = "reassigned"
            i.status, i.merged_into, i.updated_at = "merged", target.id, now
            s.add(IncidentStep(incident_id=i.id, at=now, step="merge", actor=p.username,
                               note=f"merged into {target.id}" + (f": {note}" if note else "")))
            s.add(IncidentStep(incident_id=target.id, at=now, step="merge", actor=p.username,
                               note=f"{i.id} merged in" + (f": {note}" if note else "")))
            out = case_out(i)
        await self._push(out, "merged", into=into)
        return out

    async def supervise(self, p: Principal, incident_id: int, note: str) -> dict[str, Any]:
        """督办 by hand: the red flag, the supervisors told."""
        check_role(p, A.INCIDENTS_MANAGE)
        now = _now()
        async with self.sessions() as s, s.begin():
            i = await self._locked(s, p, incident_id)
            if i.status in ("closed", "merged"):
                raise Invalid(f"incident {incident_id} is {i.status}")
            i.flagged, i.escalated_at, i.updated_at = True, i.escalated_at or now, now
            step = IncidentStep(incident_id=i.id, at=now, step="supervise", actor=p.username, note=note or None)
            s.add(step)
            await s.flush()
            out = case_out(i)
            key = f"supervise-{step.id}"
        await self._tell_supervisors(out, key, f"supervised by {p.username}" + (f": {note}" if note else ""))
        return out

    async def rate(self, p: Principal, incident_id: int, rating: int, note: str) -> dict[str, Any]:
        """The reporter's rating of the outcome (回访), 1-5, once, on a closed case."""
        check_role(p, A.INCIDENTS_MANAGE)
        if not 1 <= rating <= 5:
            raise Invalid("rating is 1 to 5")
        now = _now()
        async with self.sessions() as s, s.begin():
            i = await self._locked(s, p, incident_id)
            if i.status != "closed":
                raise Invalid("a case is rated once it is closed")
            if i.rating is not None:
                raise Invalid("the case is rated already")
            i.rating, i.rating_note, i.rated_at, i.updated_at = rating, note[:400] or None, now, now
            s.add(IncidentStep(incident_id=i.id, at=now, step="rate", actor=p.username,
                               note=f"{rating}/5" + (f": {note}" if note else "")))
            return case_out(i)

    # ---- deadlines (督办) ---------------------------------------------------------------------
    async def check_deadlines(self, now: datetime | None = None) -> int:
        """Escalate every dispatch past its deadline, once: the red flag on its case, a step, an
        audit record, the supervisors told, the emergency system told."""
        now = now or _now()
        async with self.sessions() as s, s.begin():
            late = (await s.scalars(select(IncidentDispatch).where(
                IncidentDispatch.status.in_(workflow.ACTIVE_DISPATCH), IncidentDispatch.deadline < now,
                IncidentDispatch.escalated_at.is_(None)).with_for_update().limit(1000))).all()
            done: list[tuple[dict[str, Any], dict[str, Any]]] = []
            for d in late:
                i = await s.get(Incident, d.incident_id)
                if i is None:
                    continue
                d.escalated_at = now
                i.flagged, i.escalated_at, i.updated_at = True, i.escalated_at or now, now
                s.add(IncidentStep(incident_id=i.id, dispatch_id=d.id, at=now, step="escalate", actor="platform",
                                   department=d.department, note=f"{d.department} is past its deadline"))
                done.append((case_out(i), dispatch_out(d, now)))
        for case, late_d in done:
            self._audit("incident.escalate", case["id"], {"dispatch": late_d["id"], "department": late_d["department"]})
            self.bus.publish("incident.escalated", str(case["id"]), department=late_d["department"])
            await self._tell_supervisors(case, f"overdue-{late_d['id']}", f"{late_d['department']} is past its "
                                         f"deadline ({late_d['deadline']:%Y-%m-%d %H:%M} UTC)")
            await self._push(case, "escalated", dispatches=[late_d])
        return len(done)

    async def _tell_supervisors(self, case: dict[str, Any], key: str, why: str) -> None:
        subject = f"[xueliang] 督办 incident {case['id']} ({case['category']}): {why}"
        body = {"event": "supervise", "why": why, "incident": {k: case[k] for k in (
            "id", "category", "priority", "status", "division_code", "address", "created_at")}}
        base = f"incident-{case['id']}-{key}"
        msgs: list[dict[str, Any]] = [{"key": f"{base}-console", "channel": "console", "subject": subject,
                                       "body": body}]
        msgs += [{"key": f"{base}-email-{n}", "channel": "email", "target": addr, "subject": subject, "body": body}
                 for n, addr in enumerate(self.cfg.supervisor_emails)]
        if self.cfg.supervisor_webhook:
            msgs.append({"key": f"{base}-webhook", "channel": "webhook", "target": self.cfg.supervisor_webhook,
                         "subject": subject, "body": body})
        try:
            await self.notifier.queue(_jsonable(msgs))
        except Exception:  # a notification never stops a case
            log.exception("telling the supervisors of incident %s failed", case["id"])

    async def _push(self, case: dict[str, Any], event: str, **extra: Any) -> None:
        """Dispatch and status to the emergency system the case came from (signed, retried)."""
        if case.get("link_id") is None:
            return
        body = {"event": event, "reference": case["reference"], "incident": case["id"], "status": case["status"],
                "flagged": case["flagged"], "at": _now(), **extra}
        msg = {"key": f"incident-{case['id']}-{event}-{secrets.token_hex(6)}", "channel": CHANNEL,
               "target": f"link:{case['link_id']}", "subject": f"incident {case['id']} {event}", "body": body}
        try:
            await self.notifier.queue(_jsonable([msg]))
        except Exception:
            log.exception("queueing the push of incident %s failed", case["id"])

    def _audit(self, action: str, incident_id: int, detail: dict[str, Any]) -> None:
        if self.audit is not None:
            try:
                self.audit.append(action, "ok", actor="platform", role="system", resource_type="incident",
                                  resource_id=str(incident_id), detail=detail)
            except Exception:
                log.exception("auditing %s of incident %s failed", action, incident_id)

    # ---- attachments ---------------------------------------------------------------------------
    def _may_work(self, p: Principal, i: Incident, dispatched_to_me: bool) -> None:
        acts = p.actions
        if A.INCIDENTS_MANAGE in acts or A.INCIDENTS_CREATE in acts:
            return
        if A.INCIDENTS_HANDLE in acts and dispatched_to_me:
            return
        raise Forbidden("attaching to a case is for the centre and the departments handling it")

    async def _workable(self, p: Principal, incident_id: int) -> Incident:
        i = await self.visible(p, incident_id)
        async with self.sessions() as s:
            mine = p.department is not None and bool(await s.scalar(select(func.count()).where(
                IncidentDispatch.incident_id == i.id, IncidentDispatch.department == p.department,
                IncidentDispatch.status.in_(workflow.ACTIVE_DISPATCH))))
        self._may_work(p, i, mine)
        return i

    async def _keep(self, p: Principal, i: Incident, kind: str, data: bytes, content_type: str,
                    channel_id: str | None = None) -> dict[str, Any]:
        key = f"{ATTACHMENTS}{i.id}/{secrets.token_hex(8)}{'.png' if content_type == 'image/png' else '.jpg'}"
        await self.objects.put(key, data)
        async with self.sessions() as s, s.begin():
            a = IncidentAttachment(incident_id=i.id, kind=kind, key=key, content_type=content_type, size=len(data),
                                   channel_id=channel_id, at=_now(), by=p.username,
                                   department=None if self.is_centre(p) else p.department)
            s.add(a)
            await s.flush()
            return attachment_out(a)

    async def attach_photo(self, p: Principal, incident_id: int, data: bytes) -> dict[str, Any]:
        """A photo (JPEG or PNG, judged by its bytes, not its name)."""
        i = await self._workable(p, incident_id)
        if len(data) > self.cfg.attachment_max_bytes:
            raise Invalid(f"a photo is at most {self.cfg.attachment_max_bytes} bytes")
        ext = next((e for magic, e in PHOTO_KINDS.items() if data.startswith(magic)), None)
        if ext is None:
            raise Invalid("the photo must be a JPEG or PNG image")
        return await self._keep(p, i, "photo", data, "image/png" if ext == ".png" else "image/jpeg")

    async def attach_snapshot(self, p: Principal, incident_id: int, channel: Channel) -> dict[str, Any]:
        """A snapshot of a camera's live picture (the caller's live-view right on the camera was
        checked by the caller of this)."""
        i = await self._workable(p, incident_id)
        if self.media is None:
            raise Unavailable("snapshots are taken where the media hub runs (media.enabled)")
        stream = await self.media.acquire(f"live/{channel.id}", params={
            "channel_id": channel.id, "device_id": channel.device_id, "rtsp_url": channel.rtsp_url}, timeout=15.0)
        snap = await self.media.snapshots.take(stream)
        return await self._keep(p, i, "snapshot", snap.jpeg, "image/jpeg", channel.id)

    async def attach_clip(self, p: Principal, incident_id: int, channel: Channel, start: datetime, end: datetime,
                          var_dir: Path) -> dict[str, Any]:
        """A clip of a camera (incidents/clips.py: the platform's recording, else the device's),
        kept in the object store (the caller's download right on the camera was checked by the
        caller of this)."""
        i = await self._workable(p, incident_id)
        clips.check_range(start, end, _now())
        clip = await clips.make_clip(self.sessions, self.objects, self.media, channel, start, end, var_dir)
        try:
            key = f"{ATTACHMENTS}{i.id}/clip-{clip.source}-{secrets.token_hex(8)}.mp4"
            await self.objects.put_file(key, clip.path)
        finally:
            clip.path.unlink(missing_ok=True)
        async with self.sessions() as s, s.begin():
            a = IncidentAttachment(incident_id=i.id, kind="clip", key=key, content_type="video/mp4", size=clip.size,
                                   channel_id=channel.id, at=_now(), by=p.username,
                                   department=None if self.is_centre(p) else p.department)
            s.add(a)
            await s.flush()
            return {**attachment_out(a), "start": clip.start, "end": clip.end}

    async def attachment_row(self, p: Principal, incident_id: int, attachment_id: int) -> IncidentAttachment:
        """An attachment of a case ``p`` sees (a department's: its own and the centre's)."""
        i = await self.visible(p, incident_id)
        async with self.sessions() as s:
            a = await s.scalar(select(IncidentAttachment).where(IncidentAttachment.id == attachment_id,
                                                               IncidentAttachment.incident_id == i.id))
        if a is None or not (self.is_centre(p) or a.department in (None, p.department)):
            raise NotFound(f"attachment {attachment_id} not found")
        return a

    async def attachment(self, p: Principal, incident_id: int, attachment_id: int) -> tuple[bytes, str]:
        a = await self.attachment_row(p, incident_id, attachment_id)
        try:
            return await self.objects.get(a.key), a.content_type
        except NotFound:
            raise NotFound(f"attachment {attachment_id} not found") from None

    # ---- the joint-handling view (联合处置) ------------------------------------------------------
    def _joint(self, p: Principal) -> list[Any]:
        if not p.department:
            return [false()]
        return [Incident.link_id.in_(select(IncidentLink.id).where(IncidentLink.department == p.department))]

    async def joint_cases(self, p: Principal, before: int | None, limit: int) -> dict[str, Any]:
        check_role(p, A.INCIDENTS_JOINT)
        stmt = select(Incident).where(*self._joint(p))
        if before is not None:
            stmt = stmt.where(Incident.id < before)
        async with self.sessions() as s:
            rows = list((await s.scalars(stmt.order_by(Incident.id.desc()).limit(limit))).all())
        return {"items": [case_out(i) for i in rows], "next_before": rows[-1].id if len(rows) == limit else None}

    async def joint_case(self, p: Principal, incident_id: int) -> Incident:
        check_role(p, A.INCIDENTS_JOINT)
        async with self.sessions() as s:
            i = await s.scalar(select(Incident).where(Incident.id == incident_id, *self._joint(p)))
        if i is None:
            raise NotFound(f"incident {incident_id} not found")
        return i

    async def joint_cameras(self, p: Principal, incident_id: int, radius: float, purpose: str | None,
                            limit: int = 20) -> dict[str, Any]:
        """The cameras near the agency's own case, and live video of them for
        incidents.joint_hours: a sharing grant to the caller (kind ``joint``) carrying the stated
        purpose, so that every view is authorized, cut when the grant lapses, and audited."""
        i = await self.joint_case(p, incident_id)
        if not purpose:
            raise Invalid("state the purpose (X-Purpose): the joint view records why the cameras are opened")
        if i.longitude is None or i.latitude is None or i.status in ("closed", "merged"):
            return {"items": [], "radius": radius, "grant_id": None}
        items = await cameras_near(self.sessions, i.longitude, i.latitude, radius, (), limit)
        grant_id = None
        valid_until: datetime | None = None
        wanted = {c["id"] for c in items}
        if items and self.grants is not None:
            # The same cameras asked again while a grant for them lives: that grant, not another.
            for g_ in await self.grants.list(user_id=p.user_id, kind="joint"):
                if g_["state"] == "active" and str(g_["reason"]).startswith(f"incident {i.id} "):
                    _, have = await self.grants.get(g_["id"])
                    if wanted <= set(have):
                        return {"items": items, "radius": radius, "grant_id": g_["id"],
                                "valid_until": g_["valid_until"]}
            valid_until = _now() + timedelta(hours=self.cfg.joint_hours)
            g = await self.grants.create(
                user_id=p.user_id, channel_ids=sorted(wanted), actions=[A.LIVE_VIEW.value], valid_until=valid_until,
                reason=f"incident {i.id} (joint handling): {purpose}"[:400], created_by=p.username, kind="joint")
            grant_id = g.id
        return {"items": items, "radius": radius, "grant_id": grant_id, "valid_until": valid_until}

    async def in_scope_channel(self, p: Principal, registry: Any, channel_id: str) -> Channel:
        """The channel if ``p`` may watch it live; else NotFound, as for a missing one."""
        try:
            ch = await registry.get_channel(channel_id)
        except NotFound:
            ch = None
        authorize_found(p, A.LIVE_VIEW, ch, NotFound(f"channel {channel_id} not found"))
        assert ch is not None
        return ch  # type: ignore[no-any-return]


def _jsonable(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the outbox: times as ISO text (the body is JSON)."""
    import json

    return [{**m, "body": json.loads(json.dumps(m.get("body") or {}, default=str))} for m in msgs]
