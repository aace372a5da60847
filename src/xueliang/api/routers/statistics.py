"""Registry statistics, as JSON or xlsx."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from xueliang.access.policy import scope_conditions
from xueliang.api.deps import PlatformDep, StatsReader
from xueliang.registry.spreadsheet import write_xlsx
from xueliang.registry.stats import Statistics, statistics, statistics_rows

router = APIRouter(tags=["statistics"])


@router.get("/statistics", response_model=Statistics)
async def get_statistics(
    platform: PlatformDep, p: StatsReader, division: str | None = None, department: str | None = None
) -> Any:
    return await statistics(platform.sessions, division, department, scope_conditions(p))


@router.get("/statistics.xlsx", response_class=StreamingResponse)
async def export_statistics(
    platform: PlatformDep, p: StatsReader, division: str | None = None, department: str | None = None
) -> StreamingResponse:
    st = await statistics(platform.sessions, division, department, scope_conditions(p))
    buf = io.BytesIO()
    rows = statistics_rows(st) + [[""], ["下级区划", "点位", "一类", "已标注", "已联网", "在线"]]
    rows += [
        [f"{c.code} {c.name or ''}", c.points, c.class1, c.geo_labelled, c.networked, c.online]
        for c in st.children
    ]
    write_xlsx(buf, ["视频监控资源统计"], ["指标", "数值"], rows, sheet_title="统计")
    buf.seek(0)
    return StreamingResponse(
        buf,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="statistics.xlsx"'},
    )
