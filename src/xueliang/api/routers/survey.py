"""Survey forms and channel lists: all-or-nothing import with a report, export in the same layout."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from xueliang.api.deps import PlatformDep, RegistryManager, RegistryReader
from xueliang.errors import Forbidden, Invalid

router = APIRouter(tags=["survey"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _read(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise Invalid(f"file larger than the {limit // (1024 * 1024)} MB upload limit")
    return data


def _own_department(p: Any, department: str | None) -> str | None:
    """Scoped users export their own department's forms only (access issue)."""
    if p.unrestricted:
        return department
    if not p.department or (department is not None and department != p.department):
        raise Forbidden("you may export your own department's survey forms only")
    return str(p.department)


def _report(report: Any) -> JSONResponse:
    return JSONResponse(report.model_dump(), status_code=200 if report.ok else 422)


@router.post("/survey/import")
async def import_survey(
    platform: PlatformDep,
    _: RegistryManager,
    file: Annotated[UploadFile, File()],
    department: Annotated[str | None, Form()] = None,
    dry_run: Annotated[bool, Form()] = False,
) -> JSONResponse:
    """Form 1 (摸底调查表) or Form 2 (摸底汇总表). 200 with the report, or 422 with every problem."""
    from xueliang.registry import survey

    data = await _read(file, platform.settings.api.upload_max_bytes)
    rep = await survey.import_survey(
        platform.sessions, data, file.filename or "", department, dry_run=dry_run
    )
    return _report(rep)


@router.post("/channels/import")
async def import_channels(
    platform: PlatformDep,
    _: RegistryManager,
    file: Annotated[UploadFile, File()],
    dry_run: Annotated[bool, Form()] = False,
) -> JSONResponse:
    """Form 3 (点位清单)."""
    from xueliang.registry import channel_list

    data = await _read(file, platform.settings.api.upload_max_bytes)
    rep = await channel_list.import_channels(
        platform.sessions, data, file.filename or "", dry_run=dry_run
    )
    return _report(rep)


@router.post("/grids/import")
async def import_grids(
    platform: PlatformDep,
    _: RegistryManager,
    file: Annotated[UploadFile, File()],
    dry_run: Annotated[bool, Form()] = False,
) -> JSONResponse:
    """The city's grid list (网格): 网格编码, 网格名称, 所属区划代码, 边界 (GeoJSON)."""
    from xueliang.registry import grids

    data = await _read(file, platform.settings.api.upload_max_bytes)
    rep = await grids.import_grids(platform.sessions, data, file.filename or "", dry_run=dry_run)
    return _report(rep)


def _tmp(suffix: str) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix)
    import os

    os.close(fd)
    return Path(name)


def _file(path: Path, name: str) -> FileResponse:
    media = XLSX if name.endswith(".xlsx") else "text/csv; charset=utf-8"
    return FileResponse(
        path,
        media_type=media,
        filename=name,
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.get("/survey/export")
async def export_survey(
    platform: PlatformDep,
    p: RegistryReader,
    department: str | None = None,
    form: str = "survey",
    format: str = "xlsx",
) -> FileResponse:
    if format not in ("xlsx", "csv") or form not in ("survey", "summary"):
        raise Invalid("form must be survey or summary; format xlsx or csv")
    department = _own_department(p, department)
    from xueliang.registry import survey

    path = _tmp("." + format)
    if form == "survey":
        await survey.export_survey(platform.sessions, path, department)
    else:
        await survey.export_summary(platform.sessions, path, department)
    return _file(path, f"{form}.{format}")


@router.get("/channels.xlsx")
async def export_channels_xlsx(platform: PlatformDep, p: RegistryReader) -> FileResponse:
    from xueliang.registry import channel_list

    if not p.unrestricted:  # the export is the whole registry: not for scoped users
        raise Forbidden("the channel list export covers every channel: it is for users without a scope")

    path = _tmp(".xlsx")
    await channel_list.export_channels(platform.sessions, path)
    return _file(path, "channels.xlsx")
