"""Usable at all times (全时可用): rates against targets, state timelines, fault tickets and the
maintenance teams, thin over the health service (health/)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from xueliang.access import context
from xueliang.access.policy import Action
from xueliang.api.deps import (
    HealthReader,
    MaintenanceManager,
    PlatformDep,
    ReportReader,
    TicketManager,
    TicketWorker,
)
from xueliang.app import Platform
from xueliang.errors import Invalid, NotFound, Unavailable
from xueliang.health.history import timeline
from xueliang.health.rates import GROUPS, RateFilter, rates
from xueliang.health.rollup import local_today
from xueliang.health.service import HealthService
from xueliang.health.teams import TeamIn

router = APIRouter(tags=["health"])
#: Largest repair photo, bytes, and the kinds taken (by their first bytes, not their name).
PHOTO_MAX = 8 * 1024 * 1024


def health(platform: Platform) -> HealthService:
    h = platform.health
    if h is None:
        raise Unavailable("the health subsystem is not enabled (health.enabled = false)")
    return h


@router.get("/health/availability")
async def availability(
    platform: PlatformDep, p: HealthReader,
    division: str | None = None, point_class: Annotated[int | None, Query(alias="class", ge=1, le=3)] = None,
    department: str | None = None, unit: int | None = None, team: int | None = None,
    from_: Annotated[date | None, Query(alias="from")] = None, to: date | None = None,
    group: str | None = None, division_digits: Annotated[int, Query(ge=2, le=12)] = 6,
) -> dict[str, Any]:
    """Availability (在线率), intact (完好率) and picture (出图率) rates over a range of days
    (default: the last 7 complete days), of the points the caller may see, with the targets."""
    h = health(platform)
    if group is not None and group not in GROUPS:
        raise Invalid(f"group must be one of {', '.join(GROUPS)}")
    if division is not None and not (division.isascii() and division.isdigit()):
        raise Invalid("division is a division code (digits)")
    yesterday = local_today(h.cfg.utc_offset_hours) - timedelta(days=1)
    end = to or yesterday
    start = from_ or end - timedelta(days=6)
    if start > end:
        raise Invalid("from is after to")
    if (end - start).days > 800:
        raise Invalid("at most 800 days at once")
    scope, teams = await h.visibility(p)
    out = await rates(h.sessions, RateFilter(start, end, division, point_class, department, unit, team),
                      scope=scope, teams=teams, group=group, division_digits=division_digits, dims=h.dims(p))
    out["targets"] = {str(k): v for k, v in sorted(h.cfg.targets.items())}
    return out


@router.get("/health/repeat-points")
async def repeat_points(platform: PlatformDep, p: HealthReader) -> list[dict[str, Any]]:
    """Repeat-fault points (health.repeat_tickets tickets within health.repeat_days)."""
    h = health(platform)
    scope, teams = await h.visibility(p)
    return await h.tickets.repeat_points(scope=scope, teams=teams)


@router.get("/health/notifications")
async def notifications(platform: PlatformDep, p: HealthReader) -> list[dict[str, Any]]:
    h = health(platform)
    return await h.notifications(p)


@router.get("/channels/{channel_id}/timeline")
async def channel_timeline(channel_id: str, platform: PlatformDep, p: HealthReader,
                           days: Annotated[int, Query(ge=1, le=400)] = 30) -> dict[str, Any]:
    """A point's states over the last ``days`` (gaps are unknown), and its tickets."""
    h = health(platform)
    await h.visible_point(p, channel_id)
    end = datetime.now(UTC)
    start = end - timedelta(days=days)
    scope, teams = await h.visibility(p)
    tickets = await h.tickets.find(scope=scope, teams=teams, channel_id=channel_id, limit=200)
    return {"channel_id": channel_id, "from": start, "to": end,
            "intervals": await timeline(h.sessions, channel_id, start, end),
            "tickets": [t for t in tickets if t["opened_at"] >= start or t["status"] != "closed"]}


@router.get("/tickets")
async def list_tickets(platform: PlatformDep, p: HealthReader, status: str | None = None,
                       channel: str | None = None, team: int | None = None, overdue: bool | None = None,
                       repeat: bool | None = None, after: int | None = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Tickets of the points the caller may see (a team member: its teams'), newest first;
    ``status`` may list several (``open,acknowledged``); page with ``after`` (the last id)."""
    h = health(platform)
    scope, teams = await h.visibility(p)
    items = await h.tickets.find(scope=scope, teams=teams, status=status, channel_id=channel, team_id=team,
                                 overdue=overdue, repeat=repeat, after=after, limit=limit)
    return {"items": items, "next_after": items[-1]["id"] if len(items) == limit else None}


class TicketOpen(BaseModel):
    channel_id: str = Field(min_length=1, max_length=20)
    note: str = Field(min_length=1, max_length=2000)


@router.post("/tickets", status_code=201)
async def open_ticket(body: TicketOpen, platform: PlatformDep, p: TicketManager) -> dict[str, Any]:
    """A duty operator opens a ticket by hand (a fault the platform cannot see: a dirty lens...)."""
    h = health(platform)
    await h.visible_point(p, body.channel_id, Action.TICKETS_MANAGE)
    out = await h.tickets.open_by_hand(p, body.channel_id, body.note)
    context.describe("ticket.open", "ticket", out["id"], channel_id=body.channel_id)
    return out


@router.get("/tickets/{ticket_id}")
async def get_ticket(ticket_id: int, platform: PlatformDep, p: HealthReader) -> dict[str, Any]:
    from xueliang.health.tickets import ticket_out

    h = health(platform)
    t = await h.visible_ticket(p, ticket_id)
    return {**ticket_out(t), "steps": await h.tickets.steps(ticket_id)}


class StepBody(BaseModel):
    note: str | None = Field(default=None, max_length=4000)


async def _step(platform: Platform, p: Any, ticket_id: int, step: str, note: str | None, action: Action) -> dict[str, Any]:
    h = health(platform)
    await h.visible_ticket(p, ticket_id, action)
    out = await h.tickets.step(p, ticket_id, step, note)
    context.describe(f"ticket.{step}", "ticket", ticket_id, status=out["status"])
    return out


@router.post("/tickets/{ticket_id}/acknowledge")
async def acknowledge(ticket_id: int, platform: PlatformDep, p: TicketWorker, body: StepBody | None = None) -> dict[str, Any]:
    return await _step(platform, p, ticket_id, "acknowledge", body.note if body else None, Action.TICKETS_WORK)


@router.post("/tickets/{ticket_id}/repair")
async def repair(ticket_id: int, platform: PlatformDep, p: TicketWorker, body: StepBody | None = None) -> dict[str, Any]:
    return await _step(platform, p, ticket_id, "repair", body.note if body else None, Action.TICKETS_WORK)


@router.post("/tickets/{ticket_id}/resolve")
async def resolve(ticket_id: int, platform: PlatformDep, p: TicketWorker,
                  note: Annotated[str, Form(min_length=1, max_length=4000)],
                  photo: Annotated[UploadFile | None, File()] = None) -> dict[str, Any]:
    """Resolved by the team, with a note and optionally a photo (JPEG or PNG); the platform
    verifies it (online and good for health.verify_seconds) and closes it."""
    h = health(platform)
    await h.visible_ticket(p, ticket_id, Action.TICKETS_WORK)
    name = None
    if photo is not None:
        data = await photo.read(PHOTO_MAX + 1)
        if len(data) > PHOTO_MAX:
            raise Invalid(f"the photo is larger than {PHOTO_MAX // (1024 * 1024)} MB")
        name = await h.keep_photo(ticket_id, data)
    try:
        out = await h.tickets.step(p, ticket_id, "resolve", note, photo=name)
    except Exception:
        if name is not None:
            await h.drop_photo(name)
        raise
    context.describe("ticket.resolve", "ticket", ticket_id, photo=name is not None)
    return out


@router.get("/tickets/{ticket_id}/photo")
async def ticket_photo(ticket_id: int, platform: PlatformDep, p: HealthReader) -> Response:
    h = health(platform)
    t = await h.visible_ticket(p, ticket_id)
    if not t.photo:
        raise NotFound(f"ticket {ticket_id} has no photo")
    data = await h.photo(t.photo)
    return Response(data, media_type="image/png" if t.photo.endswith(".png") else "image/jpeg")


@router.post("/tickets/{ticket_id}/close")
async def close(ticket_id: int, body: StepBody, platform: PlatformDep, p: TicketManager) -> dict[str, Any]:
    return await _step(platform, p, ticket_id, "close", body.note, Action.TICKETS_MANAGE)


@router.post("/tickets/{ticket_id}/reopen")
async def reopen(ticket_id: int, body: StepBody, platform: PlatformDep, p: TicketManager) -> dict[str, Any]:
    return await _step(platform, p, ticket_id, "reopen", body.note, Action.TICKETS_MANAGE)


# ---- maintenance teams (运维单位)


@router.get("/maintenance/teams")
async def list_teams(platform: PlatformDep, _: TicketManager) -> list[dict[str, Any]]:
    return await health(platform).teams.list()


@router.post("/maintenance/teams", status_code=201)
async def create_team(body: TeamIn, platform: PlatformDep, _: MaintenanceManager) -> dict[str, Any]:
    out = await health(platform).teams.save(body)
    context.describe("maintenance.team.create", "maintenance_team", out["id"], name=out["name"])
    return out


@router.get("/maintenance/teams/{team_id}")
async def get_team(team_id: int, platform: PlatformDep, _: TicketManager) -> dict[str, Any]:
    return await health(platform).teams.get(team_id)


@router.put("/maintenance/teams/{team_id}")
async def update_team(team_id: int, body: TeamIn, platform: PlatformDep, _: MaintenanceManager) -> dict[str, Any]:
    out = await health(platform).teams.save(body, team_id)
    context.describe("maintenance.team.update", "maintenance_team", team_id, name=out["name"])
    return out


@router.delete("/maintenance/teams/{team_id}", status_code=204)
async def delete_team(team_id: int, platform: PlatformDep, _: MaintenanceManager) -> Response:
    await health(platform).teams.delete(team_id)
    context.describe("maintenance.team.delete", "maintenance_team", team_id)
    return Response(status_code=204)


# ---- reports (日统计、周通报、月分析)


@router.get("/reports")
async def list_reports(platform: PlatformDep, _: ReportReader) -> list[dict[str, Any]]:
    """The report archive: generated on a schedule (after each day, week and month) and on demand."""
    return await health(platform).reports()


class ReportAsk(BaseModel):
    kind: str = Field(pattern="^(daily|weekly|monthly)$")
    day: date = Field(alias="date")
    format: str = Field(default="xlsx", pattern="^(xlsx|pdf)$")


@router.post("/reports", status_code=201)
async def make_report(body: ReportAsk, platform: PlatformDep, p: ReportReader) -> dict[str, Any]:
    out = await health(platform).make_report(body.kind, body.day, body.format, p.username)
    context.describe("report.generate", "report", out["id"], kind=body.kind, format=body.format)
    return out


@router.get("/reports/{report_id}")
async def download_report(report_id: int, platform: PlatformDep, _: ReportReader) -> Response:
    body, name, size = await health(platform).report_file(report_id)
    media = "application/pdf" if name.endswith(".pdf") else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return StreamingResponse(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(size)})
