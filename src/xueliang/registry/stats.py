"""Registry statistics for a division subtree or a department (覆盖、标注、联网、存储).

One pass over channels with conditional sums gives every count; a second groups by the
child divisions for the breakdown. Rates are fractions in [0, 1] (None when undefined).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Integer, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Division, Platform, Unit
from xueliang.registry import vocab
from xueliang.registry.models import ChannelFilter
from xueliang.registry.service import channel_conditions


class Rate(BaseModel):
    count: int
    total: int
    rate: float | None

    @classmethod
    def of(cls, count: int, total: int) -> Rate:
        return cls(count=count, total=total, rate=(count / total) if total else None)


class DivisionRow(BaseModel):
    code: str
    name: str | None
    points: int
    class1: int
    geo_labelled: int
    networked: int
    online: int


class DepartmentRow(BaseModel):
    department: str | None
    points: int
    class1: int
    geo_labelled: int
    networked: int
    online: int


class Statistics(BaseModel):
    division: str | None
    department: str | None
    points: int
    by_class: dict[str, int]
    by_coverage: dict[str, int]
    by_tier: dict[str, int]
    key_sites: int
    geo_labelling: Rate
    geo_labelling_class1: Rate
    networking: Rate
    online: Rate
    standard_compliance: Rate
    storage_compliance: Rate
    children: list[DivisionRow]
    by_department: list[DepartmentRow] = []


def _sum(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0)).cast(Integer)


async def statistics(
    sessions: async_sessionmaker[AsyncSession],
    division: str | None = None,
    department: str | None = None,
    extra: list[Any] | None = None,
) -> Statistics:
    f = ChannelFilter(division=division, department=department)
    where = [*channel_conditions(f), *(extra or [])]
    labelled = Channel.longitude.is_not(None) & Channel.latitude.is_not(None)
    c1 = Channel.point_class == 1
    # Storage: a point complies when its unit keeps recordings at least as long as the point requires.
    unit_retention = (
        select(Platform.unit_id, func.max(Platform.retention_days).label("days"))
        .group_by(Platform.unit_id)
        .subquery()
    )
    cols = [
        func.count(),
        _sum(Channel.point_class == 1),
        _sum(Channel.point_class == 2),
        _sum(Channel.point_class == 3),
        _sum(Channel.coverage == "A"),
        _sum(Channel.coverage == "B"),
        _sum(Channel.coverage == "C"),
        _sum(Channel.tier == "high"),
        _sum(Channel.tier == "building"),
        _sum(Channel.tier == "street"),
        _sum(Channel.key_site.is_(True)),
        _sum(labelled),
        _sum(c1 & labelled),
        _sum(Channel.networked.is_(True)),
        _sum(Channel.networked.is_(True) & (Channel.status == "ON")),
        _sum(unit_retention.c.days.is_not(None)),
        _sum(unit_retention.c.days >= Channel.retention_days_required),
    ]
    stmt = (
        select(*cols)
        .select_from(Channel)
        .outerjoin(unit_retention, unit_retention.c.unit_id == Channel.unit_id)
        .where(Channel.kind == "camera", *where)
    )
    child_len = _child_length(division)
    prefix = func.substr(Channel.division_code, 1, child_len)
    by_child = (
        select(
            prefix.label("code"),
            func.count(),
            _sum(c1),
            _sum(labelled),
            _sum(Channel.networked.is_(True)),
            _sum(Channel.networked.is_(True) & (Channel.status == "ON")),
        )
        .where(Channel.kind == "camera", *where)
        .group_by(prefix)
        .order_by(prefix)
    )
    async with sessions() as s:
        r = (await s.execute(stmt)).one()
        vals = [int(v or 0) for v in r]
        rows = (await s.execute(by_child)).all()
        codes = [row[0] for row in rows]
        names = (
            dict(
                (
                    await s.execute(
                        select(Division.code, Division.name).where(Division.code.in_(codes))
                    )
                ).all()
            )
            if codes
            else {}
        )
        std = await _standard_compliance(s, division, department)
        dept_rows = (await s.execute(
            select(Channel.department, func.count(), _sum(c1), _sum(labelled), _sum(Channel.networked.is_(True)),
                   _sum(Channel.networked.is_(True) & (Channel.status == "ON")))
            .where(Channel.kind == "camera", *where).group_by(Channel.department).order_by(Channel.department)
        )).all()
    total = vals[0]
    return Statistics(
        division=division,
        department=department,
        points=total,
        by_class={
            "1": vals[1],
            "2": vals[2],
            "3": vals[3],
            "unknown": total - vals[1] - vals[2] - vals[3],
        },
        by_coverage={
            "A": vals[4],
            "B": vals[5],
            "C": vals[6],
            "unknown": total - vals[4] - vals[5] - vals[6],
        },
        by_tier={
            "high": vals[7],
            "building": vals[8],
            "street": vals[9],
            "unknown": total - vals[7] - vals[8] - vals[9],
        },
        key_sites=vals[10],
        geo_labelling=Rate.of(vals[11], total),
        geo_labelling_class1=Rate.of(vals[12], vals[1]),
        networking=Rate.of(vals[13], total),
        online=Rate.of(vals[14], vals[13]),
        standard_compliance=std,
        storage_compliance=Rate.of(vals[16], vals[15]),
        by_department=[
            DepartmentRow(department=r[0], points=int(r[1]), class1=int(r[2] or 0), geo_labelled=int(r[3] or 0),
                          networked=int(r[4] or 0), online=int(r[5] or 0))
            for r in dept_rows
        ],
        children=[
            DivisionRow(
                code=row[0],
                name=names.get(row[0]),
                points=int(row[1]),
                class1=int(row[2] or 0),
                geo_labelled=int(row[3] or 0),
                networked=int(row[4] or 0),
                online=int(row[5] or 0),
            )
            for row in rows
        ],
    )


def _child_length(division: str | None) -> int:
    if not division:
        return 6
    n = len(division)
    for size in (4, 6, 9, 12):
        if size > n:
            return size
    return n + 3


async def _standard_compliance(
    s: AsyncSession, division: str | None, department: str | None
) -> Rate:
    """Cameras in surveyed systems that support GB/T 28181 or ONVIF (platform, recorder or camera)."""
    ok = (
        Platform.platform_standard.is_(True)
        | Platform.recorder_standard.is_(True)
        | Platform.camera_standard.is_(True)
    )
    stmt = select(
        func.coalesce(func.sum(Platform.camera_count), 0),
        func.coalesce(func.sum(case((ok, Platform.camera_count), else_=0)), 0),
    ).join(Unit, Unit.id == Platform.unit_id)
    if division:
        lo, hi = vocab.subtree_bounds(division)
        stmt = stmt.where(Unit.division_code >= lo, Unit.division_code < hi)
    if department is not None:
        stmt = stmt.where(Unit.department == department)
    total, good = (await s.execute(stmt)).one()
    return Rate.of(int(good or 0), int(total or 0))


def statistics_rows(st: Statistics) -> list[list[object]]:
    """The statistics as a two-column table (for xlsx export)."""

    def pct(r: Rate) -> str:
        return "" if r.rate is None else f"{r.rate * 100:.1f}%"

    rows: list[list[object]] = [
        ["行政区划", st.division or "全市"],
        ["主管部门", st.department or "全部"],
        ["点位总数", st.points],
        ["一类点位", st.by_class["1"]],
        ["二类点位", st.by_class["2"]],
        ["三类点位", st.by_class["3"]],
        ["A 行政公共区域", st.by_coverage["A"]],
        ["B 单位内部", st.by_coverage["B"]],
        ["C 单位内部及临街公共场所", st.by_coverage["C"]],
        ["高空瞭望", st.by_tier["high"]],
        ["建筑制高点", st.by_tier["building"]],
        ["地面", st.by_tier["street"]],
        ["重点部位", st.key_sites],
        ["地理标注率", pct(st.geo_labelling)],
        ["一类点位标注率", pct(st.geo_labelling_class1)],
        ["联网率", pct(st.networking)],
        ["在线率", pct(st.online)],
        ["标准符合率（GB28181/ONVIF）", pct(st.standard_compliance)],
        ["存储达标率", pct(st.storage_compliance)],
    ]
    return rows
