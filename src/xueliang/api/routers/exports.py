"""Evidence exports (证据导出) and evidence holds (证据锁定); thin over xueliang/evidence.

Exports: ``media.export`` on every channel of the export (each in the caller's scope; one out
of scope looks missing), and what the access rules ask of it (a purpose — the body's — or an
approval). An export is its requester's: another user's is answered as missing, by id, by file
name and in the listing, unless they hold ``exports.manage`` as well. Holds: ``evidence.hold``
to place and list them (every channel in scope), ``evidence.release`` to release one. All
audited (writes always; reads of exports by their path).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from xueliang.access import context
from xueliang.access.policy import Action, Principal, authorize
from xueliang.access.resources import visible_channel
from xueliang.api.deps import MediaCallerDep, PlatformDep, credential_of, require
from xueliang.errors import Unauthorized
from xueliang.evidence.export import describe as describe_export
from xueliang.recording.holds import describe as describe_hold

router = APIRouter(tags=["evidence"])

Exporter = Annotated[Principal, Depends(require(Action.EXPORT))]
HoldPlacer = Annotated[Principal, Depends(require(Action.EVIDENCE_HOLD))]
HoldReleaser = Annotated[Principal, Depends(require(Action.EVIDENCE_RELEASE))]


class ExportIn(BaseModel):
    channels: list[str] = Field(min_length=1, max_length=64)
    start: datetime
    end: datetime
    purpose: str = Field(min_length=2, max_length=1000)
    case_number: str = Field(min_length=1, max_length=100)
    #: Burn the requester and time into the pictures (a transcode).
    watermark: bool = False
    #: Place an evidence hold over the export's channels and range (the default).
    hold: bool = True


class HoldIn(BaseModel):
    case_number: str = Field(min_length=1, max_length=100)
    channels: list[str] = Field(min_length=1, max_length=64)
    start: datetime
    end: datetime
    reason: str = Field(min_length=2, max_length=1000)


class ReleaseIn(BaseModel):
    note: str = Field(default="", max_length=1000)


@router.get("/exports/public-key")
async def export_public_key(platform: PlatformDep) -> Response:
    """The platform's Ed25519 public key (PEM) that signs export manifests: open, to check
    exports offline (``xueliang export verify --key``, openssl)."""
    return Response(platform.exports.signer.public_pem, media_type="application/x-pem-file",
                    headers={"X-Key-SHA256": platform.exports.signer.key_id})


@router.post("/exports", status_code=201)
async def create_export(body: ExportIn, platform: PlatformDep, p: Exporter) -> dict[str, Any]:
    ctx = context.current()
    if ctx is not None:  # the body's purpose and case are the request's (the access rules ask for them)
        ctx.purpose = ctx.purpose or body.purpose
        ctx.case_ref = ctx.case_ref or body.case_number
    # One export is one use of an approval, however many of its channels the approval covers:
    # each channel's check takes a use; it is given back at once and taken once at the end.
    grants: dict[int, Any] = {}
    for cid in dict.fromkeys(body.channels):
        await visible_channel(platform.registry, p, Action.EXPORT, cid)
        if ctx is not None and ctx.reserved_uses and p.book is not None:
            for g in ctx.reserved_uses:
                p.book.release(g)
                grants[g.id] = g
            ctx.reserved_uses.clear()
    if ctx is not None and p.book is not None:
        for g in grants.values():
            p.book.use(g)
            ctx.reserved_uses.append(g)
    e = await platform.exports.create(p, body.channels, body.start, body.end, body.purpose, body.case_number,
                                      watermark=body.watermark,
                                      approval_id=ctx.approval_id if ctx is not None else None, hold=body.hold)
    context.describe("media.export", "export", e.id, channels=e.channel_ids, start=body.start.isoformat(),
                     end=body.end.isoformat(), hold_id=e.hold_id, watermark=e.watermark)
    return describe_export(e)


@router.get("/exports")
async def list_exports(platform: PlatformDep, p: Exporter,
                       everyone: Annotated[bool, Query(alias="all")] = False) -> list[dict[str, Any]]:
    """One's own exports, newest first; ``?all=true``: everyone's (with ``exports.manage``)."""
    return [describe_export(e) for e in await platform.exports.search(p, everyone=everyone)]


@router.get("/exports/{export_id}")
async def get_export(export_id: int, platform: PlatformDep, p: Exporter) -> dict[str, Any]:
    return describe_export(await platform.exports.get(p, export_id))


def _files_target(export_id: int) -> str:
    return f"export/{export_id}"


async def _file_reader(export_id: int, caller: MediaCallerDep) -> Principal:
    """A bearer token's principal, or a media token's of this export's files (``?token=``)."""
    if not caller.credential.opens(_files_target(export_id), Action.EXPORT.value):
        raise Unauthorized("this media token does not open this export's files")
    authorize(caller.principal, Action.EXPORT)
    return caller.principal


@router.post("/exports/{export_id}/media-token")
async def export_files_token(export_id: int, request: Request, platform: PlatformDep, p: Exporter) -> dict[str, Any]:
    """A short-lived token for ``?token=`` on this export's files only (plain links: the browser
    saves them and shows progress); one's own export (or anyone's with ``exports.manage``)."""
    e = await platform.exports.get(p, export_id)
    ttl = platform.settings.api.media_token_ttl
    token = platform.users.media_token(p, credential_of(request), _files_target(e.id), Action.EXPORT.value, ttl)
    return {"token": token, "expires_in": ttl, "action": Action.EXPORT.value}


@router.get("/exports/{export_id}/files/{name}")
async def export_file(export_id: int, name: str, platform: PlatformDep,
                      p: Annotated[Principal, Depends(_file_reader)]) -> FileResponse:
    path = await platform.exports.file(p, export_id, name)
    context.describe("media.export.file", "export", export_id, file=name)
    kind = {"mp4": "video/mp4", "json": "application/json", "pem": "application/x-pem-file"}.get(
        name.rsplit(".", 1)[-1], "application/octet-stream")
    return FileResponse(path, media_type=kind, filename=name)


@router.post("/holds", status_code=201)
async def place_hold(body: HoldIn, platform: PlatformDep, p: HoldPlacer) -> dict[str, Any]:
    for cid in dict.fromkeys(body.channels):
        await visible_channel(platform.registry, p, Action.EVIDENCE_HOLD, cid)
    h = await platform.holds.place(p, body.case_number, body.channels, body.start, body.end, body.reason)
    context.describe("evidence.hold", "hold", h.id, case=h.case_number, channels=h.channel_ids,
                     start=body.start.isoformat(), end=body.end.isoformat())
    return describe_hold(h)


@router.get("/holds")
async def list_holds(platform: PlatformDep, p: HoldPlacer, active: bool | None = None,
                     case_number: str | None = None) -> list[dict[str, Any]]:
    """Holds whose every channel is in the caller's scope, newest first."""
    return [describe_hold(h) for h in await platform.holds.search(p, active=active, case_number=case_number)]


@router.post("/holds/{hold_id}/release")
async def release_hold(hold_id: int, body: ReleaseIn, platform: PlatformDep, p: HoldReleaser) -> dict[str, Any]:
    context.describe("evidence.release", "hold", hold_id, note=body.note)
    h = await platform.holds.release(p, hold_id, body.note)
    context.describe("evidence.release", "hold", hold_id, case=h.case_number, channels=h.channel_ids)
    return describe_hold(h)
