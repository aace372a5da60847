"""Picture diagnosis (视频质量诊断): a camera's diagnosis history, its latest snapshot and
reference picture, "diagnose now", calibration, and the city's faults by class and division;
thin over diagnosis/inspection.py.

Who may do what: the results are health data (health.read, the point in the caller's scope,
a maintainer's own teams' points only); the pictures are video, so they need media.live on the
camera as well; diagnosing now and calibrating are the duty operators' (tickets.manage).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import func, select

from xueliang.access.policy import Action, authorize_found
from xueliang.api.deps import HealthReader, PlatformDep, TicketManager
from xueliang.api.routers.health import health
from xueliang.app import Platform
from xueliang.db.tables import Channel, Device, Diagnosis, DiagnosisChannel
from xueliang.diagnosis.faults import CODES, FAULTS
from xueliang.diagnosis.inspection import REFERENCES, SNAPSHOTS, Inspector, result_json
from xueliang.errors import Forbidden, Invalid, NotFound, Unavailable
from xueliang.health.teams import channel_columns, load_resolver

router = APIRouter(tags=["diagnosis"])


def inspector(platform: Platform) -> Inspector:
    if platform.diagnosis is None:
        raise Unavailable("picture diagnosis runs where the media hub runs (media.enabled = false here)")
    return platform.diagnosis


@router.get("/diagnosis/faults")
async def city_faults(platform: PlatformDep, p: HealthReader,
                      limit: Annotated[int, Query(ge=0, le=5000)] = 500) -> dict[str, Any]:
    """The confirmed picture faults of the cameras the caller may see, by point class and by
    county (the division's first 6 digits), with the faulty cameras (worst first)."""
    h = health(platform)
    scope, teams = await h.visibility(p)
    latest = select(func.max(Diagnosis.id).label("id")).group_by(Diagnosis.channel_id).subquery()
    async with h.sessions() as s:
        stmt = (select(Diagnosis, Channel.name, Channel.point_class, Channel.division_code, *channel_columns()[1:])
                .join(latest, latest.c.id == Diagnosis.id).join(Channel, Channel.id == Diagnosis.channel_id)
                .outerjoin(Device, Device.id == Channel.device_id).where(*scope))
        rows = (await s.execute(stmt)).all()
        resolver = await load_resolver(s) if teams is not None else None
    by_class: dict[str, Counter[str]] = {}
    by_division: dict[str, Counter[str]] = {}
    faulty: list[dict[str, Any]] = []
    inspected = 0
    for d, name, pc, div, platform_id, unit_id, division in rows:
        if resolver is not None and teams is not None and resolver.team(platform_id, unit_id, division) not in teams:
            continue
        inspected += 1
        if not d.confirmed:
            continue
        cls = str(pc) if pc else "unclassified"
        county = (div or "")[:6] or "unknown"
        by_class.setdefault(cls, Counter()).update(d.confirmed)
        by_division.setdefault(county, Counter()).update(d.confirmed)
        faulty.append({"channel_id": d.channel_id, "name": name, "point_class": pc, "division_code": div,
                       "confirmed": list(d.confirmed), "at": d.at,
                       "worst": max((d.scores.get(f, 0.0) for f in d.confirmed), default=0.0)})
    faulty.sort(key=lambda x: (-len(x["confirmed"]), -x["worst"]))
    return {"inspected": inspected, "faulty": len(faulty), "names": FAULTS,
            "by_class": {k: dict(v) for k, v in sorted(by_class.items())},
            "by_division": {k: dict(v) for k, v in sorted(by_division.items())},
            "channels": faulty[:limit]}


async def latest_of(platform: Platform, p: Any, channel_id: str) -> dict[str, Any] | None:
    """The camera's latest diagnosis as it sits on the channel (GET /channels/{id}), for a
    caller who may read the point's health; None for anyone else, and before any inspection."""
    if platform.health is None:
        return None
    try:
        await platform.health.visible_point(p, channel_id)
    except (NotFound, Forbidden):
        return None
    async with platform.health.sessions() as s:
        row = await s.scalar(select(Diagnosis).where(Diagnosis.channel_id == channel_id)
                             .order_by(Diagnosis.at.desc(), Diagnosis.id.desc()).limit(1))
    if row is None:
        return None
    snapshot = f"/api/v1/channels/{channel_id}/diagnosis/snapshot.jpg" if row.picture else None
    return {**result_json(row), "snapshot": snapshot}


@router.get("/channels/{channel_id}/diagnoses")
async def channel_diagnoses(channel_id: str, platform: PlatformDep, p: HealthReader,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    """A camera's inspections, newest first, and its calibration."""
    h = health(platform)
    await h.visible_point(p, channel_id)
    async with h.sessions() as s:
        rows = (await s.scalars(select(Diagnosis).where(Diagnosis.channel_id == channel_id)
                                .order_by(Diagnosis.id.desc()).limit(limit))).all()
        cal = await s.get(DiagnosisChannel, channel_id)
    return {"channel_id": channel_id, "names": FAULTS, "items": [result_json(r) for r in rows],
            "reference_at": cal.reference_at if cal else None, "reference_by": cal.reference_by if cal else None,
            "thresholds": cal.thresholds if cal else None}


async def _picture(platform: Platform, p: Any, channel_id: str, key: str) -> Response:
    h = health(platform)
    ch = await h.visible_point(p, channel_id)
    # a picture of the camera is video: the caller must be allowed to watch it (rules included)
    authorize_found(p, Action.LIVE_VIEW, ch, NotFound(f"channel {channel_id} not found"))
    objects = platform.objects  # kept in the object store: any API node serves it
    if await objects.stat(key) is None:
        raise NotFound(f"channel {channel_id} has no such picture yet")
    return Response(await objects.get(key), media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


@router.get("/channels/{channel_id}/diagnosis/snapshot.jpg")
async def diagnosis_snapshot(channel_id: str, platform: PlatformDep, p: HealthReader) -> Response:
    """The picture of the latest inspection."""
    return await _picture(platform, p, channel_id, f"{SNAPSHOTS}{channel_id}.jpg")


@router.get("/channels/{channel_id}/diagnosis/reference.jpg")
async def diagnosis_reference(channel_id: str, platform: PlatformDep, p: HealthReader) -> Response:
    """The camera's reference picture (基准图)."""
    return await _picture(platform, p, channel_id, f"{REFERENCES}{channel_id}.jpg")


@router.post("/channels/{channel_id}/diagnose")
async def diagnose_now(channel_id: str, platform: PlatformDep, p: TicketManager) -> dict[str, Any]:
    """Inspect the camera now (a stream being watched is reused)."""
    await health(platform).visible_point(p, channel_id, Action.TICKETS_MANAGE)
    return await inspector(platform).inspect(channel_id, by=p.username)


@router.post("/channels/{channel_id}/diagnosis/reference")
async def take_reference(channel_id: str, platform: PlatformDep, p: TicketManager) -> dict[str, Any]:
    """Take the camera's picture now as its reference (when the point is accepted, or renewed)."""
    await health(platform).visible_point(p, channel_id, Action.TICKETS_MANAGE)
    return await inspector(platform).set_reference(channel_id, p.username)


@router.put("/channels/{channel_id}/diagnosis/thresholds")
async def set_thresholds(channel_id: str, body: dict[str, dict[str, float]], platform: PlatformDep,
                         p: TicketManager) -> dict[str, Any]:
    """The camera's own thresholds over its class's: {"day": {fault: score}, "night": {...}}."""
    await health(platform).visible_point(p, channel_id, Action.TICKETS_MANAGE)
    try:
        await inspector(platform).set_thresholds(channel_id, body)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return {"channel_id": channel_id, "thresholds": body, "codes": list(CODES)}
