"""The incident centre at city scale, on PostgreSQL: a year of cases (1,000,000) and 100,000 cameras.

Synthetic data generated in SQL (generate_series): 100,000 cameras of 30 departments spread
over a 50 km square (10 counties × 20 townships); 1,000,000 cases over the last 365 days (six
sources, eight categories, four priorities; nine in ten closed, some rated, a few flagged) and
about 1,300,000 dispatches to the 30 departments. Prints `name: value unit` lines:

- ``queue_p50_ms`` / ``queue_p99_ms``: the centre's queue as the API runs it, filtered (random
  mixes of status, category, county, source, flagged, one month) and paged by keyset (first
  pages and deep ones);
- ``inbox_p50_ms`` / ``inbox_p99_ms``: a department's inbox (the cases dispatched to it);
- ``stats_year_centre_s`` / ``stats_year_department_s``: a year's statistics (intake by source,
  category and township, closure and on-time rates, time to close, satisfaction);
- ``nearby_{centre,department}_p50_ms`` / ``_p99_ms``: the case read, then the cameras within
  500 m of it among the 100,000, for the centre (unscoped) and a department user (its scope as SQL).

    .venv/bin/python bench/incidents.py [--cases 1000000] [--cameras 100000] [--queries 200]

PostgreSQL comes from XUELIANG_TEST_PG_URL or scripts/pg.sh (started if needed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics as pystats
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from xueliang.access.policy import Action, Principal, scope_conditions
from xueliang.bus import EventBus
from xueliang.config import HealthConfig, IncidentsConfig
from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade
from xueliang.health.notify import Notifier
from xueliang.incidents.nearby import cameras_near
from xueliang.incidents.service import IncidentService
from xueliang.objects.local import LocalObjects
from xueliang.sealing import Sealer

ROOT = Path(__file__).resolve().parents[1]
LON0, LAT0, SPAN = 117.0, 31.6, 0.5  # about 47 × 55 km
CATEGORIES = IncidentsConfig().categories
SOURCES = ["hotline", "alarm", "rule", "grid", "resident", "emergency"]


def pg_url() -> str:
    url = os.environ.get("XUELIANG_TEST_PG_URL")
    if url:
        return url
    out = subprocess.run([str(ROOT / "scripts" / "pg.sh"), "start"], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


async def admin(url: str, sql: str) -> None:
    u = make_url(url)
    conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, password=u.password, database=u.database)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def arr(xs: list[str]) -> str:
    return "ARRAY[" + ",".join(f"'{x}'" for x in xs) + "]"


async def fill(engine: Any, cases: int, cameras: int) -> None:
    division = ("'3401' || lpad((1 + (g % 10))::text, 2, '0') || lpad((1 + ((g / 10) % 20))::text, 3, '0') "
                "|| lpad((1 + ((g / 200) % 10))::text, 3, '0')")
    async with engine.begin() as c:
        await c.execute(text("INSERT INTO units (name, department, division_code, created_at, updated_at) "
                             "SELECT '单位' || g, '局' || (g % 30), '340101', now(), now() "
                             "FROM generate_series(1, 300) g"))
        await c.execute(text(f"""
            INSERT INTO channels (id, name, kind, unit_id, department, division_code, point_class, tier, status,
                                  longitude, latitude, key_site, retention_days_required, networked, created_at,
                                  updated_at)
            SELECT '3401000000131' || lpad(g::text, 7, '0'), 'cam' || g, 'camera', 1 + (g % 300), '局' || (g % 30),
                   {division}, 1 + (g % 3), (ARRAY['high','building','street'])[1 + (g % 3)], 'ON',
                   {LON0} + random() * {SPAN}, {LAT0} + random() * {SPAN}, false, 30, true, now(), now()
            FROM generate_series(1, {cameras}) g"""))
        t0 = time.perf_counter()
        # Every attribute drawn independently (random()), so that no mix of filters is empty or
        # full by an accident of the generator.
        rdiv = ("'3401' || lpad((1 + floor(random() * 10))::text, 2, '0') || lpad((1 + floor(random() * 20))::text, "
                "3, '0') || lpad((1 + floor(random() * 10))::text, 3, '0')")
        await c.execute(text(f"""
            INSERT INTO incidents (source, category, priority, status, description, longitude, latitude,
                                   division_code, division_basis, anonymous, created_by, created_at, updated_at,
                                   closed_at, close_seconds, flagged, rating, dispatched_at)
            SELECT src, cat, prio, st, '事件 ' || g, {LON0} + random() * {SPAN}, {LAT0} + random() * {SPAN},
                   {rdiv}, 'boundary', random() < 0.3, 'bench', t, t,
                   CASE WHEN st = 'closed' THEN t + h * interval '1 hour' END,
                   CASE WHEN st = 'closed' THEN h * 3600 END,
                   random() < 0.02, CASE WHEN st = 'closed' AND random() < 0.25 THEN 1 + floor(random() * 5) END,
                   t + interval '5 minutes'
            FROM (SELECT g, t, h,
                         ({arr(SOURCES)})[1 + floor(random() * 6)::int] AS src,
                         ({arr(CATEGORIES)})[1 + floor(random() * 8)::int] AS cat,
                         (ARRAY['urgent','high','normal','low'])[1 + floor(random() * 4)::int] AS prio,
                         CASE WHEN r < 0.06 THEN (ARRAY['received','dispatched','handling','fed_back'])[1 + floor(random() * 4)::int]
                              WHEN r < 0.07 THEN 'merged' ELSE 'closed' END AS st
                  FROM (SELECT g, random() AS r, floor(random() * 72)::int AS h,
                               now() - (({cases} - g)::float / {cases}) * interval '365 days' AS t
                        FROM generate_series(1, {cases}) g) s0) s"""))
        await c.execute(text("""
            INSERT INTO incident_dispatches (incident_id, department, status, deadline, dispatched_at, dispatched_by,
                                             fed_back_at, on_time)
            SELECT i.id, '局' || floor(random() * 30),
                   CASE WHEN i.status = 'closed' THEN 'done' WHEN i.status = 'merged' THEN 'reassigned'
                        WHEN i.status = 'received' THEN 'returned' ELSE i.status END,
                   i.created_at + interval '72 hours', i.created_at + interval '5 minutes', 'bench',
                   i.closed_at, CASE WHEN i.status = 'closed' THEN random() < 0.9 END
            FROM incidents i, generate_series(0, 1) k WHERE k = 0 OR i.id % 3 = 0"""))
        print(f"fill_cases_s: {time.perf_counter() - t0:.1f} s", flush=True)
    async with engine.connect() as c:
        await c.execution_options(isolation_level="AUTOCOMMIT")
        await c.execute(text("VACUUM ANALYZE"))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def run(url: str, a: argparse.Namespace) -> None:
    engine = create_engine(url, pool_size=4)
    sessions = session_factory(engine)
    if not a.keep:
        t0 = time.perf_counter()
        await fill(engine, a.cases, a.cameras)
        print(f"fill_total_s: {time.perf_counter() - t0:.1f} s", flush=True)
    async with engine.connect() as c:
        n = (await c.execute(text("SELECT count(*) FROM incidents"))).scalar_one()
        nd = (await c.execute(text("SELECT count(*) FROM incident_dispatches"))).scalar_one()
        nc = (await c.execute(text("SELECT count(*) FROM channels"))).scalar_one()
    print(f"cases: {n} count\ndispatches: {nd} count\ncameras: {nc} count", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        svc = IncidentService(IncidentsConfig(), sessions, EventBus(), sealer=Sealer(b"bench-secret-0123456789"),
                              objects=LocalObjects(Path(tmp)), notifier=Notifier(sessions, HealthConfig(), b"k"))
        centre = Principal(user_id=1, username="duty", role="operator")
        rnd = random.Random(7)
        now = datetime.now(UTC)
        counties = [f"3401{i:02d}" for i in range(1, 11)]
        times = []
        for q in range(a.queries):
            kw: dict[str, Any] = {}
            if rnd.random() < 0.6:
                kw["status"] = rnd.choice(["received,dispatched,handling,fed_back", "handling", "closed"])
            if rnd.random() < 0.5:
                kw["category"] = rnd.choice(CATEGORIES)
            if rnd.random() < 0.5:
                kw["division"] = rnd.choice(counties)
            if rnd.random() < 0.2:
                kw["source"] = rnd.choice(SOURCES)
            if rnd.random() < 0.1:
                kw["flagged"] = True
            if rnd.random() < 0.4:
                month = rnd.randrange(12)
                kw["since"] = now - timedelta(days=30 * (month + 1))
                kw["until"] = now - timedelta(days=30 * month)
            t0 = time.perf_counter()
            page = await svc.find(centre, limit=50, **kw)
            if q % 4 == 0 and page["next_before"]:  # a deeper page: five more
                for _ in range(5):
                    if not page["next_before"]:
                        break
                    page = await svc.find(centre, limit=50, before=page["next_before"], **kw)
            times.append((time.perf_counter() - t0) * 1000 / (6 if q % 4 == 0 else 1))
        print(f"queue_p50_ms: {pct(times, 50):.1f} ms\nqueue_p99_ms: {pct(times, 99):.1f} ms", flush=True)
        times = []
        for _ in range(a.queries):
            dept = Principal(user_id=2, username="d", role="department_user", department=f"局{rnd.randrange(30)}")
            kw = {"status": "dispatched,handling"} if rnd.random() < 0.5 else {}
            t0 = time.perf_counter()
            await svc.find(dept, limit=50, **kw)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"inbox_p50_ms: {pct(times, 50):.1f} ms\ninbox_p99_ms: {pct(times, 99):.1f} ms", flush=True)
        for who, p in (("centre", centre),
                       ("department", Principal(user_id=2, username="d", role="department_user", department="局3"))):
            t0 = time.perf_counter()
            st = await svc.stats(p, now - timedelta(days=365), now + timedelta(minutes=1), 9)
            print(f"stats_year_{who}_s: {time.perf_counter() - t0:.2f} s", flush=True)
            print(f"stats_year_{who}_intake: {st['intake']} count\nstats_year_{who}_closure_rate: "
                  f"{st['closure_rate']} %", flush=True)
        async with engine.connect() as c:
            ids = [r[0] for r in (await c.execute(text(
                "SELECT id FROM incidents TABLESAMPLE SYSTEM (1) LIMIT :n"), {"n": a.queries})).all()]
        for who in ("centre", "department"):
            times, found = [], []
            for cid in ids:
                dept = Principal(user_id=2, username="d", role="department_user", department=f"局{rnd.randrange(30)}")
                p = centre if who == "centre" else dept
                t0 = time.perf_counter()
                # the case as the centre sees it; its cameras as the caller may see them
                i = await svc.visible(centre, cid)
                assert i.longitude is not None and i.latitude is not None
                got = await cameras_near(sessions, i.longitude, i.latitude, 500.0, scope_conditions(p, Action.LIVE_VIEW))
                times.append((time.perf_counter() - t0) * 1000)
                found.append(len(got))
            print(f"nearby_{who}_p50_ms: {pct(times, 50):.1f} ms\nnearby_{who}_p99_ms: {pct(times, 99):.1f} ms\n"
                  f"nearby_{who}_cameras_mean: {pystats.mean(found):.1f} count", flush=True)
    await engine.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--cameras", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="reuse the database of the last run")
    a = ap.parse_args()
    base = pg_url()
    name = "xl_bench_incidents"
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    if not a.keep:
        await admin(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin(base, f"CREATE DATABASE {name}")
        await asyncio.to_thread(upgrade, url)
    print(f"python: {sys.version.split()[0]}", flush=True)
    await run(url, a)


if __name__ == "__main__":
    asyncio.run(main())
