"""Usable at all times at city scale, on PostgreSQL: 100,000 channels with a year of history.

Synthetic history (generated in SQL): 1,000 units (30 departments) in 200 townships of 10
counties, 100 cameras each in the villages of their township (classes by unit, a tenth class
III), 20 maintenance teams; a year of daily rows for every channel, and for the day
rolled up a few intervals per channel (online, an outage for a tenth of them, a VLOST for some,
and channels with no data at all). Prints `name: value unit` lines:

- ``rollup_day_s``: the daily rollup of one day for every channel (intervals → daily rows);
- ``availability_county_month_p50_ms`` / ``_p99_ms``: the availability query for one county
  over one month (random counties and months), as the API runs it, unscoped and for a
  department user (its scope on the rows' own columns);
- ``city_month_aggregates_s``: the aggregates a monthly city report needs (totals; by class,
  county, department, team; by day) over one month;
- ``monthly_city_report_xlsx_s`` / ``_pdf_s``: the whole monthly report (月分析), written;
- ``history_storm_10000_cpu_s``: the CPU the state history spends on 10,000 registrations
  (SQLite, in this process): what it adds to the registration storm.

    .venv/bin/python bench/health.py [--channels 100000] [--days 365] [--queries 200]

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
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from xueliang.access.policy import Principal, scope_conditions
from xueliang.config import HealthConfig
from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade
from xueliang.health.rates import RateFilter, rates
from xueliang.health.reports import generate
from xueliang.health.rollup import day_window, regroup_day, rollup_day
from xueliang.health.service import HealthService

ROOT = Path(__file__).resolve().parents[1]
COUNTIES = [f"3401{i:02d}" for i in range(1, 11)]
DEPARTMENTS = [f"局{i}" for i in range(30)]


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


async def fill(engine: Any, sessions: Any, channels: int, days: int, last: date) -> None:
    first = last - timedelta(days=days - 1)
    async with engine.begin() as c:
        await c.execute(text("""
            INSERT INTO units (name, department, division_code, created_at, updated_at)
            SELECT '单位' || g, '局' || (g % 30),
                   '3401' || lpad(((g % 10) + 1)::text, 2, '0') || lpad((((g / 10) % 20) + 1)::text, 3, '0'),
                   now(), now() FROM generate_series(0, 999) g"""))
        await c.execute(text("""
            INSERT INTO maintenance_teams (name, company, contacts, created_at)
            SELECT '维保' || g, '公司' || g, '[]', now() FROM generate_series(0, 19) g"""))
        await c.execute(text("""
            INSERT INTO maintenance_duties (team_id, kind, ref)
            SELECT (u.id % 20) + (SELECT min(id) FROM maintenance_teams), 'unit', u.id::text FROM units u"""))
        await c.execute(text("""
            INSERT INTO channels (id, name, kind, unit_id, department, division_code, point_class, coverage,
                                  key_site, retention_days_required, status, networked, created_at, updated_at)
            SELECT '3401000000131' || lpad(g::text, 7, '0'), 'cam' || g, 'camera', u.id, u.department,
                   u.division_code || lpad(((g / 1000) % 5 + 1)::text, 3, '0'),
                   CASE WHEN g % 10 = 0 THEN 3 ELSE (u.id % 3) + 1 END, 'A', false, 30,
                   'ON', true, now(), now()
            FROM generate_series(0, :n - 1) g
            JOIN units u ON u.id = (SELECT min(id) FROM units) + (g % 1000)"""), {"n": channels})
    t0 = time.perf_counter()
    # A year of daily rows, a day at a time (one transaction per day keeps memory flat).
    for i in range(days - 1):
        d = first + timedelta(days=i)
        async with engine.begin() as c:
            await c.execute(text("""
                INSERT INTO health_daily (day, channel_id, division_code, point_class, department, unit_id,
                    team_id, online_s, fault_s, offline_s, unknown_s, attempts, pictures, rolled)
                SELECT :d, ch.id, ch.division_code, ch.point_class, ch.department, ch.unit_id,
                       md.team_id, x.on_s, x.fault_s, 86400 - x.on_s - x.fault_s - x.unk_s, x.unk_s,
                       (abs(hashtext(ch.id || CAST(:d AS date)::text)) % 5), (abs(hashtext(ch.id || CAST(:d AS date)::text)) % 5) * 9 / 10, true
                FROM channels ch
                LEFT JOIN maintenance_duties md ON md.kind = 'unit' AND md.ref = ch.unit_id::text
                CROSS JOIN LATERAL (SELECT
                    CASE WHEN abs(hashtext(ch.id || 'x' || CAST(:d AS date)::text)) % 10 = 0 THEN 60000 ELSE 86400 END AS on_s,
                    0 AS fault_s, 0 AS unk_s) x0
                CROSS JOIN LATERAL (SELECT x0.on_s - CASE WHEN abs(hashtext(ch.id || 'v' || CAST(:d AS date)::text)) % 20 = 0
                                                          THEN 3600 ELSE 0 END AS on_s,
                                           CASE WHEN abs(hashtext(ch.id || 'v' || CAST(:d AS date)::text)) % 20 = 0
                                                THEN 3600 ELSE 0 END AS fault_s,
                                           0 AS unk_s) x
                """), {"d": d})
        async with sessions() as s, s.begin():
            await regroup_day(s, d)
    print(f"fill_daily_rows_s: {time.perf_counter() - t0:.1f} s", flush=True)
    # The day to roll up: intervals for every channel but 1 % (no data: unknown).
    start, _ = day_window(last, 8.0)
    async with engine.begin() as c:
        await c.execute(text("""
            INSERT INTO health_intervals (subject, subject_kind, state, detail, start, "end", since)
            SELECT ch.id, 'channel', 'online', NULL, CAST(:s AS timestamptz) - interval '3 days',
                   CAST(:s AS timestamptz) + ((abs(hashtext(ch.id)) % 80000) || ' seconds')::interval, NULL
            FROM channels ch WHERE abs(hashtext(ch.id)) % 100 <> 0"""), {"s": start})
        await c.execute(text("""
            INSERT INTO health_intervals (subject, subject_kind, state, detail, start, "end", since)
            SELECT i.subject, 'channel', CASE WHEN abs(hashtext(i.subject)) % 3 = 0 THEN 'fault' ELSE 'offline' END,
                   NULL, i."end", i."end" + interval '1 hour', i."end"
            FROM health_intervals i WHERE i.state = 'online'"""))
        await c.execute(text("""
            INSERT INTO health_intervals (subject, subject_kind, state, detail, start, "end", since)
            SELECT i.subject, 'channel', 'online', NULL, i."end", NULL, NULL
            FROM health_intervals i WHERE i.state IN ('fault', 'offline')"""))
        await c.execute(text("ANALYZE"))


async def history_cost(n: int = 10_000) -> None:
    """CPU the state history spends on a registration storm of ``n`` devices (SQLite, in this
    process): what history adds to bench/sip_storm.py's figure."""
    from xueliang.bus import BusEvent, EventBus
    from xueliang.health.history import HistoryRecorder

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/h.db"
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        rec = HistoryRecorder(session_factory(engine), EventBus())
        t = time.time()
        evs = [BusEvent("device.online", f"3402000000111{i:07d}", {}, t + i * 1e-4) for i in range(n)]
        c0 = time.process_time()
        for i in range(0, n, n // 3):  # a storm of 2.5 s in batches of a second
            await rec._handle(evs[i:i + n // 3])
        print(f"history_storm_{n}_cpu_s: {time.process_time() - c0:.3f} s")
        await engine.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="reuse the filled database of a previous run")
    a = ap.parse_args()
    await history_cost()
    base = pg_url()
    name = f"xl_bench_health_{a.channels}_{a.days}"
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    last = date(2026, 11, 30)
    if not a.keep:
        await admin(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin(base, f"CREATE DATABASE {name}")
        await asyncio.to_thread(upgrade, url)
    engine = create_engine(url, pool_size=4)
    sessions = session_factory(engine)
    if not a.keep:
        t0 = time.perf_counter()
        await fill(engine, sessions, a.channels, a.days, last)
        print(f"fill_total_s: {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"channels: {a.channels} count\ndays_of_history: {a.days} days")

    t0 = time.perf_counter()
    n = await rollup_day(sessions, last, 8.0)
    print(f"rollup_day_s: {time.perf_counter() - t0:.2f} s")
    print(f"rollup_rows: {n} rows")

    rnd = random.Random(7)
    months = [(date(2026, m, 1), date(2026, m + 1, 1) - timedelta(days=1)) for m in range(1, 11)]
    dept = Principal(user_id=1, username="d", role="department_user", department="局3")
    for label, scope, dims in (("", [], None), ("_department", scope_conditions(dept), HealthService.dims(dept))):
        times = []
        for _ in range(a.queries):
            start, end = rnd.choice(months)
            t0 = time.perf_counter()
            await rates(sessions, RateFilter(start, end, division=rnd.choice(COUNTIES)), scope=scope, teams=None,
                        dims=dims)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        print(f"availability_county_month{label}_p50_ms: {pystats.median(times):.1f} ms")
        print(f"availability_county_month{label}_p99_ms: {times[int(len(times) * 0.99) - 1]:.1f} ms")

    t0 = time.perf_counter()
    start, end = months[-1]
    for group in (None, "class", "division", "department", "team", "day"):
        await rates(sessions, RateFilter(start, end), scope=[], teams=None, group=group, division_digits=6)
    print(f"city_month_aggregates_s: {time.perf_counter() - t0:.2f} s")
    for fmt in ("xlsx", "pdf"):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            await generate(sessions, HealthConfig(), "monthly", date(2026, 10, 15), Path(tmp) / f"m.{fmt}")
            print(f"monthly_city_report_{fmt}_s: {time.perf_counter() - t0:.2f} s")
    await engine.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
