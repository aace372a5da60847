"""Registry at city scale: 1,000,000 channels in 20,000 units, on SQLite and PostgreSQL.

Prints `name: value unit` lines: bulk import rate, p50/p99 of filtered keyset page queries
(division + class + status, 100 per page, deep pages included), and whole-city statistics.

    .venv/bin/python bench/registry.py [--channels 1000000] [--backends sqlite,postgresql]

PostgreSQL comes from XUELIANG_TEST_PG_URL or scripts/pg.sh (started if needed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics as pystats
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, text

from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade_async
from xueliang.db.tables import Division, Unit
from xueliang.registry.channel_list import bulk_upsert_channels
from xueliang.registry.models import ChannelFilter
from xueliang.registry.service import RegistryService
from xueliang.registry.stats import statistics

ROOT = Path(__file__).resolve().parent.parent


def divisions() -> tuple[list[dict[str, object]], list[str]]:
    rows: list[dict[str, object]] = [
        {"code": "34", "name": "省", "level": "province", "parent_code": None},
        {"code": "3499", "name": "市", "level": "city", "parent_code": "34"},
    ]
    villages = []
    for c in range(1, 11):
        county = f"3499{c:02d}"
        rows.append({"code": county, "name": f"县{c}", "level": "county", "parent_code": "3499"})
        for t in range(1, 11):
            town = f"{county}{t:03d}"
            rows.append({"code": town, "name": f"镇{c}-{t}", "level": "township", "parent_code": county})
            for v in range(1, 11):
                village = f"{town}{v:03d}"
                rows.append({"code": village, "name": f"村{c}-{t}-{v}", "level": "village", "parent_code": town})
                villages.append(village)
    return rows, villages


def channel_rows(n: int, units: int, villages: list[str], rnd: random.Random) -> list[dict[str, object]]:
    per_unit = max(1, n // units)
    depts = ["教育局", "公安局", "交通局", "卫健委", "应急管理局", "住建局"]
    out = []
    for i in range(n):
        u = i // per_unit % units
        village = villages[u % len(villages)]
        out.append({
            "id": f"{village[:6]}00001310{i:06d}"[:20] if i < 1_000_000 else f"{village[:6]}0000132{i:07d}",
            "name": f"点位{i}", "kind": "camera", "unit_id": u + 1, "department": depts[u % len(depts)],
            "division_code": village, "point_class": rnd.choice((1, 2, 2, 3, 3, 3)),
            "coverage": rnd.choice("ABC"), "tier": rnd.choice(("high", "building", "street", "street")),
            "longitude": 117.0 + rnd.random(), "latitude": 31.5 + rnd.random(), "key_site": rnd.random() < 0.05,
            "retention_days_required": 30, "status": "ON" if rnd.random() < 0.9 else "OFF",
            "networked": rnd.random() < 0.8,
        })
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run(backend: str, url: str, n: int, units: int) -> None:
    rnd = random.Random(42)
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    div_rows, villages = divisions()
    async with sessions() as s, s.begin():
        await s.execute(insert(Division), div_rows)
        await s.execute(insert(Unit), [{"id": i + 1, "name": f"单位{i + 1}", "department": "教育局",
                                        "division_code": villages[i % len(villages)]} for i in range(units)])
    rows = channel_rows(n, units, villages, rnd)
    t0 = time.perf_counter()
    batch = 50_000
    for i in range(0, len(rows), batch):
        await bulk_upsert_channels(sessions, rows[i:i + batch])
    dt = time.perf_counter() - t0
    print(f"{backend}_import_rate: {n / dt:.0f} channels/s")
    print(f"{backend}_import_time: {dt:.1f} s")
    async with engine.connect() as c:
        await c.execute(text("ANALYZE"))
        await c.commit()
    reg = RegistryService(sessions)
    lat: list[float] = []
    deep: list[float] = []
    counties = sorted({v[:6] for v in villages})
    towns = sorted({v[:9] for v in villages})
    for _ in range(40):
        div = rnd.choice(counties + towns)
        f = ChannelFilter(division=div, point_class=rnd.choice((1, 2, 3)), status=rnd.choice(("ON", "OFF")))
        cursor = None
        for page in range(25):  # walks deep: page 25 of a filtered listing
            t = time.perf_counter()
            _, cursor = await reg.list_channels(f, cursor, 100)
            ms = (time.perf_counter() - t) * 1000
            lat.append(ms)
            if page >= 10:
                deep.append(ms)
            if cursor is None:
                break
    print(f"{backend}_page_p50: {pct(lat, 0.5):.1f} ms")
    print(f"{backend}_page_p99: {pct(lat, 0.99):.1f} ms")
    if deep:
        print(f"{backend}_deep_page_p99: {pct(deep, 0.99):.1f} ms")
    times = []
    for _ in range(3):
        t = time.perf_counter()
        st = await statistics(sessions)
        times.append(time.perf_counter() - t)
    assert st.points == n, st.points
    print(f"{backend}_city_statistics: {pystats.median(times) * 1000:.0f} ms")
    t = time.perf_counter()
    await statistics(sessions, division=counties[0])
    print(f"{backend}_county_statistics: {(time.perf_counter() - t) * 1000:.0f} ms")
    await engine.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=1_000_000)
    ap.add_argument("--units", type=int, default=20_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    a = ap.parse_args()
    print(f"channels: {a.channels} count")
    for backend in a.backends.split(","):
        if backend == "sqlite":
            tmp = tempfile.mkdtemp()
            await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", a.channels, a.units)
        else:
            base = os.environ.get("XUELIANG_TEST_PG_URL") or subprocess.check_output([str(ROOT / "scripts/pg.sh"), "start"], text=True).strip()  # noqa: ASYNC221
            import asyncpg
            from sqlalchemy.engine import make_url

            u = make_url(base)
            conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)
            await conn.execute("DROP DATABASE IF EXISTS xl_bench WITH (FORCE)")
            await conn.execute("CREATE DATABASE xl_bench")
            await conn.close()
            await run("postgresql", u.set(database="xl_bench").render_as_string(hide_password=False), a.channels, a.units)


if __name__ == "__main__":
    asyncio.run(main())
