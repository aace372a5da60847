"""The audit log for auditors: query by person, camera, department, time; export; the
transparency report; verification and checkpoints."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from xueliang.access import audit as auditlog
from xueliang.access.policy import Action
from xueliang.api.deps import AccessDep, AuditReader, PlatformDep, PrincipalDep
from xueliang.db.tables import AuditCheckpoint
from xueliang.errors import Forbidden

router = APIRouter(tags=["audit"])


async def _query(
    actor: str | None = None,
    actor_id: int | None = None,
    channel: str | None = None,
    department: str | None = Query(default=None, description="the person's department or the camera's"),
    action: str | None = Query(default=None, description="exact, or a prefix ending in *"),
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> auditlog.AuditQuery:
    """The search the listing and the exports share."""
    return auditlog.AuditQuery(actor, actor_id, channel, department, action, outcome, since, until)


AuditSearch = Annotated[auditlog.AuditQuery, Depends(_query)]


@router.get("/audit/records")
async def records(
    platform: PlatformDep,
    access: AccessDep,
    _: AuditReader,
    q: AuditSearch,
    before: int | None = Query(default=None, description="seq cursor: records older than this"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Newest first."""
    await access.audit.flush()
    rows, nxt = await auditlog.query(platform.sessions, q, before, limit)
    return {"items": [auditlog.as_dict(r) for r in rows], "next_before": nxt}


async def _csv(platform: Any, q: auditlog.AuditQuery) -> AsyncIterator[bytes]:
    yield ("\ufeff" + auditlog.csv_line(auditlog.EXPORT_COLUMNS)).encode()
    async for r in auditlog.stream_records(platform.sessions, q):
        d = auditlog.as_dict(r)
        yield auditlog.csv_line(d[c] for c in auditlog.EXPORT_COLUMNS).encode()


@router.get("/audit/records.{fmt}")
async def export(
    fmt: Literal["csv", "xlsx"], platform: PlatformDep, access: AccessDep, _: AuditReader, q: AuditSearch
) -> StreamingResponse:
    """Export matching records (oldest first, with their hashes) as CSV or Excel."""
    await access.audit.flush()
    name = f"audit-{datetime.now():%Y%m%d-%H%M%S}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        return StreamingResponse(_csv(platform, q), media_type="text/csv; charset=utf-8", headers=headers)
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("audit")
    ws.append(auditlog.EXPORT_COLUMNS)
    n = 0
    async for r in auditlog.stream_records(platform.sessions, q, max_rows=1_048_000):
        ws.append(auditlog.xlsx_row(auditlog.as_dict(r)))
        n += 1
    buf = io.BytesIO()
    wb.save(buf)
    return StreamingResponse(
        iter([buf.getvalue()]),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
    )


@router.get("/audit/transparency")
async def transparency(
    platform: PlatformDep,
    access: AccessDep,
    p: PrincipalDep,
    by: Literal["channel", "department"] = "channel",
    key: str | None = Query(default=None, description="one camera id or one department"),
    since: datetime | None = None,
    until: datetime | None = None,
    top: int = Query(default=100, ge=1, le=10_000),
) -> dict[str, Any]:
    """How often each camera (or each owning department's cameras) was viewed, and by whom.
    Auditors see all; a department sees its own cameras."""
    owner = None
    if Action.AUDIT_READ not in p.actions:
        if not p.department:
            raise Forbidden("the transparency report is for auditors and for the department owning the cameras")
        owner = p.department
        if by == "department":
            key = owner
    await access.audit.flush()
    items = await auditlog.transparency(platform.sessions, by, key, since, until, top, owner_department=owner)
    ctx_mark(p)
    return {"by": by, "since": since, "until": until, "items": items}


def ctx_mark(p: Any) -> None:
    from xueliang.access import context

    ctx = context.current()
    if ctx is not None:
        ctx.sensitive = True
        ctx.event = "audit.transparency"


@router.get("/audit/verify")
async def verify(platform: PlatformDep, access: AccessDep, _: AuditReader) -> dict[str, Any]:
    """Walk the whole chain now and report (the CLI ``xueliang audit verify`` does the same)."""
    await access.audit.flush()
    rep = await auditlog.verify(platform.sessions, access.audit.key, access.audit.checkpoint_file)
    return rep.as_dict()


@router.get("/audit/checkpoints")
async def checkpoints(platform: PlatformDep, _: AuditReader, limit: int = Query(default=100, ge=1, le=1000)) -> list[dict[str, Any]]:
    from sqlalchemy import select

    async with platform.sessions() as s:
        rows = (await s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(limit))).all()
    return [{"id": c.id, "seq": c.seq, "hash": c.hash, "at": auditlog.at_text(c.at), "key_id": c.key_id,
             "signature": c.signature} for c in rows]


@router.post("/audit/checkpoints", status_code=201)
async def checkpoint(access: AccessDep, _: AuditReader) -> dict[str, Any]:
    """Sign the chain's head now."""
    return await access.audit.checkpoint()
