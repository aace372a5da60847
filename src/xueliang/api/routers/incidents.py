"""The incident centre (受理·分流·督办·反馈) over HTTP: thin over incidents/service.py.

Every step is a POST, and so an audit record of its own (the request's), named here with
``context.describe``. The inbound route of the emergency systems takes no bearer token: its
requests are signed (incidents/signature.py, docs/api.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xueliang.access import context
from xueliang.access.policy import Action, Principal, authorize
from xueliang.access.resources import visible_channel
from xueliang.api.deps import PlatformDep, require
from xueliang.errors import Invalid, NotFound
from xueliang.incidents.inbound import CaseIn, explain, parse_inbound
from xueliang.incidents.service import IncidentService

router = APIRouter(tags=["incidents"])
A = Action
Reader = Annotated[Principal, Depends(require(A.INCIDENTS_READ))]
Creator = Annotated[Principal, Depends(require(A.INCIDENTS_CREATE))]
Manager = Annotated[Principal, Depends(require(A.INCIDENTS_MANAGE))]
Handler = Annotated[Principal, Depends(require(A.INCIDENTS_HANDLE))]
LinkManager = Annotated[Principal, Depends(require(A.INCIDENTS_LINKS))]
Agency = Annotated[Principal, Depends(require(A.INCIDENTS_JOINT))]
Priority = Literal["urgent", "high", "normal", "low"]
Radius = Annotated[float, Query(gt=0, le=5000)]


def _svc(platform: Any) -> IncidentService:
    svc: IncidentService = platform.incidents
    return svc


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(_In):
    note: str = Field(default="", max_length=4000)
    attachments: list[int] = Field(default_factory=list, max_length=50)


class Target(_In):
    department: str = Field(min_length=1, max_length=200)
    #: When the department must have fed back; default: by the case's priority.
    deadline: datetime | None = None


class DispatchIn(Step):
    departments: list[Target] = Field(min_length=1, max_length=20)


class ReassignIn(Step):
    department: str = Field(min_length=1, max_length=200)
    deadline: datetime | None = None


class MergeIn(Step):
    into: int


class RatingIn(_In):
    rating: int = Field(ge=1, le=5)
    note: str = Field(default="", max_length=400)


class FromAlarmIn(_In):
    category: str = Field(min_length=1, max_length=32)
    priority: Priority = "high"
    note: str = Field(default="", max_length=4000)


class SnapshotIn(_In):
    channel_id: str = Field(min_length=1, max_length=20)


class ClipIn(_In):
    channel_id: str = Field(min_length=1, max_length=20)
    #: [start, end) with a time zone, at most 10 minutes (incidents/clips.py).
    start: datetime
    end: datetime


class RuleIn(_In):
    name: str = Field(min_length=1, max_length=64)
    alarm_types: list[str] = Field(default_factory=list, max_length=50)
    division: str = Field(default="", max_length=20)
    category: str = Field(min_length=1, max_length=32)
    priority: Priority = "normal"
    enabled: bool = True


class LinkIn(_In):
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["110", "119", "120", "122"]
    key_id: str = Field(min_length=1, max_length=64)
    department: str = Field(min_length=1, max_length=200)
    webhook_url: str = Field(default="", max_length=1000)
    secret: str | None = Field(default=None, min_length=16, max_length=200)


class LinkPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    kind: Literal["110", "119", "120", "122"] | None = None
    key_id: str | None = Field(default=None, min_length=1, max_length=64)
    department: str | None = Field(default=None, min_length=1, max_length=200)
    webhook_url: str | None = Field(default=None, max_length=1000)
    enabled: bool | None = None
    #: A new secret (in the answer, this once); the old one stops working at once.
    rotate_secret: bool = False


# --------------------------------------------------------------------------- intake (受理)


@router.post("/incidents/inbound", status_code=201)
async def inbound(request: Request, platform: PlatformDep) -> Response:
    """A case pushed by an emergency system (110/119/120/122), signed with its key (docs/api.md).
    201 with the new case; 200 with the case made before when the reference was pushed already."""
    svc = _svc(platform)
    limit = svc.cfg.inbound_max_bytes
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Invalid(f"the body is larger than {limit} bytes")
    link = await svc.links.verify(request.headers.get("authorization"), request.method, request.url.path, body,
                                  window=svc.cfg.replay_window_seconds)
    try:
        case = parse_inbound(body)
    except ValidationError as exc:
        raise Invalid(f"the case does not match the schema: {explain(exc)}") from None
    out, made = await svc.take_in_inbound(link, case)
    context.describe("incident.inbound", "incident", out["id"], link=link.name, reference=case.reference,
                     created=made)
    return JSONResponse(_json(out), status_code=201 if made else 200)


@router.post("/incidents", status_code=201)
async def take_in(body: CaseIn, platform: PlatformDep, p: Creator) -> dict[str, Any]:
    """受理: a case from the hotline; its division found from its place."""
    out = await _svc(platform).take_in_hotline(p, body)
    context.describe("incident.receive", "incident", out["id"], source="hotline")
    return out


@router.post("/alarms/{event_id}/incident")
async def from_alarm(event_id: int, body: FromAlarmIn, platform: PlatformDep, p: Creator,
                     response: Response) -> dict[str, Any]:
    """One click from an alarm: a case at the alarm's camera (201), or the case the alarm
    already has (200)."""
    out, made = await _svc(platform).take_in_alarm(p, event_id, body.category, body.priority, body.note)
    response.status_code = 201 if made else 200
    context.describe("incident.receive", "incident", out["id"], source="alarm", alarm=event_id)
    return out


# --------------------------------------------------------------------------- reading


@router.get("/incidents")
async def list_incidents(platform: PlatformDep, p: Reader, status: str | None = None, category: str | None = None,
                         source: str | None = None, division: Annotated[str | None, Query(pattern=r"^[0-9]{2,20}$")] = None,
                         department: str | None = None, flagged: bool | None = None, overdue: bool | None = None,
                         since: datetime | None = None, until: datetime | None = None, before: int | None = None,
                         limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """The queue (the centre's), or a department's inbox: newest first, paged by ``before``."""
    return await _svc(platform).find(p, status=status, category=category, source=source, division=division,
                                     department=department, flagged=flagged, overdue=overdue, since=since,
                                     until=until, before=before, limit=limit)


@router.get("/incidents/statistics")
async def incident_statistics(platform: PlatformDep, p: Reader, since: datetime | None = None,
                              until: datetime | None = None,
                              level: Annotated[int, Query(ge=2, le=20)] = 6) -> dict[str, Any]:
    """Intake by source, category and division; closure rate (结案率); on-time rate; time to
    close; satisfaction; for the cases taken in from ``since`` until ``until`` (default: the last 30 days)."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    if since >= until:
        raise Invalid("since is before until")
    return await _svc(platform).stats(p, since, until, level)


@router.get("/incidents/inbox")
async def inbox(platform: PlatformDep, p: Handler,
                limit: Annotated[int, Query(ge=1, le=500)] = 200) -> dict[str, Any]:
    """The caller's department's inbox: its dispatches to work on or awaiting review, nearest
    deadline first, each with its case."""
    return await _svc(platform).inbox(p, limit)


@router.get("/incidents/departments")
async def dispatch_departments(platform: PlatformDep, p: Manager) -> dict[str, Any]:
    """The departments the platform knows (its users' and units'), for the dispatch dialog."""
    return {"items": await _svc(platform).departments(p)}


# --------------------------------------------------------------------------- rules and links


@router.get("/incidents/rules")
async def list_rules(platform: PlatformDep, _: Manager) -> list[dict[str, Any]]:
    return await _svc(platform).rules()


@router.post("/incidents/rules", status_code=201)
async def add_rule(body: RuleIn, platform: PlatformDep, p: Manager) -> dict[str, Any]:
    """A rule that opens a case from device alarms of these types in this division (自动立案)."""
    out = await _svc(platform).add_rule(p, **body.model_dump())
    context.describe("incident.rule.add", "incident_rule", out["id"], name=out["name"])
    return out


@router.delete("/incidents/rules/{rule_id}", status_code=204)
async def drop_rule(rule_id: int, platform: PlatformDep, p: Manager) -> Response:
    await _svc(platform).drop_rule(p, rule_id)
    context.describe("incident.rule.delete", "incident_rule", rule_id)
    return Response(status_code=204)


@router.get("/incidents/links")
async def list_links(platform: PlatformDep, _: LinkManager) -> list[dict[str, Any]]:
    return await _svc(platform).links.list()


@router.post("/incidents/links", status_code=201)
async def add_link(body: LinkIn, platform: PlatformDep, _: LinkManager) -> dict[str, Any]:
    """A linked emergency system; its secret is in this answer only (sealed at rest)."""
    out = await _svc(platform).links.create(**body.model_dump())
    context.describe("incident.link.add", "incident_link", out["id"], name=out["name"], kind=out["kind"])
    return out


@router.patch("/incidents/links/{link_id}")
async def change_link(link_id: int, body: LinkPatch, platform: PlatformDep, _: LinkManager) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude={"rotate_secret"})
    out = await _svc(platform).links.update(link_id, changes, rotate=body.rotate_secret)
    context.describe("incident.link.change", "incident_link", link_id, fields=sorted(changes),
                     rotated=body.rotate_secret)
    return out


@router.delete("/incidents/links/{link_id}", status_code=204)
async def drop_link(link_id: int, platform: PlatformDep, _: LinkManager) -> Response:
    await _svc(platform).links.delete(link_id)
    context.describe("incident.link.delete", "incident_link", link_id)
    return Response(status_code=204)


# --------------------------------------------------------------------------- the joint view


@router.get("/incidents/joint")
async def joint_cases(platform: PlatformDep, p: Agency, before: int | None = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """联合处置: the cases the caller's emergency system pushed, and only those."""
    return await _svc(platform).joint_cases(p, before, limit)


@router.get("/incidents/joint/{incident_id}")
async def joint_case(incident_id: int, platform: PlatformDep, p: Agency) -> dict[str, Any]:
    from xueliang.incidents.service import case_out

    return case_out(await _svc(platform).joint_case(p, incident_id))


@router.get("/incidents/joint/{incident_id}/cameras")
async def joint_cameras(incident_id: int, platform: PlatformDep, p: Agency, radius: Radius = 500.0,
                        limit: Annotated[int, Query(ge=1, le=50)] = 20) -> dict[str, Any]:
    """The cameras near the agency's own open case; their live video opens to the caller for
    ``incidents.joint_hours`` (a grant carrying the purpose stated in ``X-Purpose``)."""
    ctx = context.current()
    out = await _svc(platform).joint_cameras(p, incident_id, radius, ctx.purpose if ctx else None, limit)
    context.describe("incident.joint.cameras", "incident", incident_id, grant=out["grant_id"],
                     cameras=len(out["items"]))
    if ctx is not None:
        ctx.sensitive = True  # a GET that opens video: always in the audit, with its purpose
    return out


# --------------------------------------------------------------------------- one case


@router.get("/incidents/{incident_id}")
async def get_incident(incident_id: int, platform: PlatformDep, p: Reader) -> dict[str, Any]:
    """The case with its dispatches, steps and attachments (a department: its own part)."""
    return await _svc(platform).detail(p, incident_id)


@router.get("/incidents/{incident_id}/cameras")
async def incident_cameras(incident_id: int, platform: PlatformDep, p: Reader, radius: Radius = 500.0,
                           limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """视频就近: the cameras within ``radius`` metres that the caller may watch, nearest first."""
    return await _svc(platform).cameras(p, incident_id, radius, limit)


@router.post("/incidents/{incident_id}/attachments", status_code=201)
async def attach_photo(incident_id: int, platform: PlatformDep, p: Reader,
                       photo: Annotated[UploadFile, File()]) -> dict[str, Any]:
    """A photo (JPEG or PNG), by the centre or a department handling the case."""
    svc = _svc(platform)
    data = await photo.read(svc.cfg.attachment_max_bytes + 1)
    out = await svc.attach_photo(p, incident_id, data)
    context.describe("incident.attach", "incident", incident_id, attachment=out["id"], kind="photo")
    return out


@router.post("/incidents/{incident_id}/snapshots", status_code=201)
async def attach_snapshot(incident_id: int, body: SnapshotIn, platform: PlatformDep, p: Reader) -> dict[str, Any]:
    """A snapshot of a camera the caller may watch live, attached to the case."""
    svc = _svc(platform)
    await svc.visible(p, incident_id)  # the case first: a hidden case never tells about its cameras
    channel = await svc.in_scope_channel(p, platform.registry, body.channel_id)
    out = await svc.attach_snapshot(p, incident_id, channel)
    context.describe("incident.attach", "incident", incident_id, attachment=out["id"], kind="snapshot",
                     channel=channel.id)
    return out


@router.post("/incidents/{incident_id}/attachments/clip", status_code=201)
async def attach_clip(incident_id: int, body: ClipIn, platform: PlatformDep, p: Reader) -> dict[str, Any]:
    """A clip of a camera the caller may download from, [start, end) (at most 10 minutes):
    the platform's recording (a remux) when it has one there, else the device's (a GB/T 28181
    download); kept with the case, its ``source`` recorded."""
    svc = _svc(platform)
    authorize(p, A.DOWNLOAD)  # the role, before anything about the case or the camera
    await svc.visible(p, incident_id)  # the case first: a hidden case never tells about its cameras
    channel = await visible_channel(platform.registry, p, A.DOWNLOAD, body.channel_id)
    out = await svc.attach_clip(p, incident_id, channel, body.start, body.end, Path(platform.settings.storage.var_dir))
    context.describe("incident.attach", "incident", incident_id, attachment=out["id"], kind="clip",
                     channel=channel.id, source=out["source"], start=out["start"].isoformat(),
                     end=out["end"].isoformat(), bytes=out["size"])
    return out


@router.get("/incidents/{incident_id}/attachments/{attachment_id}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "video/mp4": {}}}})
async def get_attachment(incident_id: int, attachment_id: int, platform: PlatformDep, p: Reader) -> Response:
    svc = _svc(platform)
    a = await svc.attachment_row(p, incident_id, attachment_id)
    if a.content_type == "video/mp4":  # a clip: streamed from the store, never whole in memory
        info = await svc.objects.stat(a.key)
        if info is None:
            raise NotFound(f"attachment {attachment_id} not found")
        return StreamingResponse(await svc.objects.open(a.key), media_type=a.content_type, headers={
            "Cache-Control": "no-store", "Content-Length": str(info.size),
            "Content-Disposition": f'inline; filename="incident-{incident_id}-{attachment_id}.mp4"'})
    data, ctype = await svc.attachment(p, incident_id, attachment_id)
    return Response(data, media_type=ctype, headers={"Cache-Control": "no-store"})


# --------------------------------------------------------------------------- steps


@router.post("/incidents/{incident_id}/dispatch")
async def dispatch(incident_id: int, body: DispatchIn, platform: PlatformDep, p: Manager) -> dict[str, Any]:
    """分流: to one or more departments, each with a deadline."""
    out = await _svc(platform).dispatch(p, incident_id, [(t.department, t.deadline) for t in body.departments],
                                        body.note, body.attachments)
    context.describe("incident.dispatch", "incident", incident_id,
                     departments=[t.department for t in body.departments])
    return out


async def _dept_step(platform: Any, p: Principal, incident_id: int, dispatch_id: int, step: str,
                     body: Step) -> dict[str, Any]:
    out = await _svc(platform).department_step(p, incident_id, dispatch_id, step, body.note, body.attachments)
    context.describe(f"incident.{step}", "incident", incident_id, dispatch=dispatch_id)
    return out


@router.post("/incidents/{incident_id}/dispatches/{dispatch_id}/acknowledge")
async def acknowledge(incident_id: int, dispatch_id: int, body: Step, platform: PlatformDep,
                      p: Handler) -> dict[str, Any]:
    """签收: the department takes the case and handles it."""
    return await _dept_step(platform, p, incident_id, dispatch_id, "acknowledge", body)


@router.post("/incidents/{incident_id}/dispatches/{dispatch_id}/feedback")
async def feedback(incident_id: int, dispatch_id: int, body: Step, platform: PlatformDep,
                   p: Handler) -> dict[str, Any]:
    """反馈: what the department did (a note, attachments)."""
    return await _dept_step(platform, p, incident_id, dispatch_id, "feedback", body)


@router.post("/incidents/{incident_id}/dispatches/{dispatch_id}/return")
async def give_back(incident_id: int, dispatch_id: int, body: Step, platform: PlatformDep,
                    p: Handler) -> dict[str, Any]:
    """退回: not this department's case (the note says why); the centre dispatches again."""
    return await _dept_step(platform, p, incident_id, dispatch_id, "return", body)


@router.post("/incidents/{incident_id}/dispatches/{dispatch_id}/redo")
async def redo(incident_id: int, dispatch_id: int, body: Step, platform: PlatformDep, p: Manager) -> dict[str, Any]:
    """退回重办: the centre sends a department's feedback back."""
    return await _dept_step(platform, p, incident_id, dispatch_id, "redo", body)


@router.post("/incidents/{incident_id}/dispatches/{dispatch_id}/reassign")
async def reassign(incident_id: int, dispatch_id: int, body: ReassignIn, platform: PlatformDep,
                   p: Manager) -> dict[str, Any]:
    """改派: to another department, with a new deadline."""
    out = await _svc(platform).reassign(p, incident_id, dispatch_id, body.department, body.deadline, body.note)
    context.describe("incident.reassign", "incident", incident_id, dispatch=dispatch_id, department=body.department)
    return out


@router.post("/incidents/{incident_id}/close")
async def close(incident_id: int, body: Step, platform: PlatformDep, p: Manager) -> dict[str, Any]:
    """结案: reviewed by the centre and closed."""
    out = await _svc(platform).close(p, incident_id, body.note, body.attachments)
    context.describe("incident.close", "incident", incident_id)
    return out


@router.post("/incidents/{incident_id}/merge")
async def merge(incident_id: int, body: MergeIn, platform: PlatformDep, p: Manager) -> dict[str, Any]:
    """A duplicate joins another case."""
    out = await _svc(platform).merge(p, incident_id, body.into, body.note)
    context.describe("incident.merge", "incident", incident_id, into=body.into)
    return out


@router.post("/incidents/{incident_id}/supervise")
async def supervise(incident_id: int, body: Step, platform: PlatformDep, p: Manager) -> dict[str, Any]:
    """督办: the red flag, and the supervisors told."""
    out = await _svc(platform).supervise(p, incident_id, body.note)
    context.describe("incident.supervise", "incident", incident_id)
    return out


@router.post("/incidents/{incident_id}/rating")
async def rate(incident_id: int, body: RatingIn, platform: PlatformDep, p: Manager) -> dict[str, Any]:
    """The reporter's rating of the outcome (回访), 1-5."""
    out = await _svc(platform).rate(p, incident_id, body.rating, body.note)
    context.describe("incident.rate", "incident", incident_id, rating=body.rating)
    return out


def _json(d: dict[str, Any]) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(d)
