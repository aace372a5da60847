"""Access control at city scale: permission checks, scoped listings, audit append and verify.

Prints `name: value unit` lines:

- permission check cost for a department user with 50 grants (sharing by township, by class
  within a county, explicit channel lists, catalog groups, key sites), against random channel
  objects drawn from a 1,000,000-channel city;
- page latency of the channel listing for that user (scope as SQL) against an administrator's
  unscoped listing, over the same 1,000,000 channels, on SQLite and PostgreSQL;
- sustained audit append rate with the chain intact, on SQLite and PostgreSQL;
- ``audit verify`` time over 1,000,000 records.

    .venv/bin/python bench/access.py [--channels 1000000] [--audit 200000]
        [--verify 1000000] [--backends sqlite,postgresql]

PostgreSQL comes from XUELIANG_TEST_PG_URL or scripts/pg.sh (started if needed).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import statistics as pystats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from xueliang.access import context
from xueliang.access.audit import AuditLog, CheckpointKey, verify
from xueliang.access.book import GrantSpec, PolicyBook, Rule
from xueliang.access.policy import Action, Principal, authorize, in_scope, scope_conditions
from xueliang.access.scope import Selector
from xueliang.config import AccessConfig
from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade_async
from xueliang.db.tables import AccessGrant, AccessGrantChannel, Division, Unit
from xueliang.errors import Forbidden
from xueliang.registry.models import ChannelFilter
from xueliang.registry.service import RegistryService

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_registry", ROOT / "bench" / "registry.py")
assert _spec and _spec.loader
regbench = importlib.util.module_from_spec(_spec)
sys.modules["bench_registry"] = regbench
_spec.loader.exec_module(regbench)

DEPT = "教育局"


class Ch:
    __slots__ = ("coverage", "department", "division_code", "id", "key_site", "parent_id", "point_class", "tier")

    def __init__(self, row: dict[str, Any]) -> None:
        for k in self.__slots__:
            setattr(self, k, row.get(k))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def make_grants(villages: list[str], channel_ids: list[str], rnd: random.Random) -> list[dict[str, Any]]:
    """50 grants of the kinds a city gives a department."""
    towns = sorted({v[:9] for v in villages})
    counties = sorted({v[:6] for v in villages})
    grants: list[dict[str, Any]] = []
    for t in rnd.sample(towns, 20):  # a township's cameras shared for flood watch
        grants.append({"selector": {"divisions": [t]}, "actions": ["media.live"]})
    for c in rnd.sample(counties, 10):  # class I of a county
        grants.append({"selector": {"divisions": [c], "point_classes": [1]}, "actions": ["media.live", "media.playback"]})
    for _ in range(10):  # explicit lists of 100 cameras
        grants.append({"ids": rnd.sample(channel_ids, 100), "actions": ["media.live"]})
    for _ in range(5):  # street-level cameras of a township
        grants.append({"selector": {"divisions": [rnd.choice(towns)], "tiers": ["street"]}, "actions": ["media.live"]})
    for c in rnd.sample(counties, 5):  # key sites of a county, until the end of the event
        grants.append({"selector": {"divisions": [c], "key_site": True}, "actions": ["media.live"],
                       "until": time.time() + 86400})
    return grants


def book_of(grants: list[dict[str, Any]]) -> PolicyBook:
    book = PolicyBook([Rule.of(r) for r in AccessConfig().rules])
    specs = [
        GrantSpec(
            id=i + 1, kind="share", department=DEPT, user_id=None,
            selector=Selector.from_json(g.get("selector")),
            ids=frozenset(g["ids"]) if "ids" in g else None,
            actions=frozenset(g["actions"]), valid_from=0.0, valid_until=g.get("until"),
        )
        for i, g in enumerate(grants)
    ]
    book.replace(specs, {})
    return book


def bench_checks(rows: list[dict[str, Any]], grants: list[dict[str, Any]], n: int) -> None:
    book = book_of(grants)
    p = Principal(7, "edu", "department_user", DEPT, None, book=book)
    rnd = random.Random(1)
    sample = [Ch(r) for r in rnd.sample(rows, min(n, len(rows)))]
    allowed = sum(in_scope(p, c, Action.LIVE_VIEW) for c in sample)
    print(f"check_sample: {len(sample)} channels")
    print(f"check_allowed_share: {allowed / len(sample) * 100:.1f} %")
    ctx = context.RequestContext(purpose="巡查")  # checks run inside a request
    tok = context.bind(ctx)
    try:
        for label, action in (("live", Action.LIVE_VIEW), ("playback", Action.PLAYBACK)):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                for c in sample:
                    try:
                        authorize(p, action, c)
                    except Forbidden:
                        pass
                times.append((time.perf_counter() - t0) / len(sample) * 1e6)
            print(f"authorize_{label}_mean: {min(times):.2f} us")
        # the worst case: every grant evaluated (a channel matching none)
        miss = Ch({"id": "x", "division_code": "999999", "department": "x", "point_class": 3})
        t0 = time.perf_counter()
        for _ in range(20000):
            try:
                authorize(p, Action.LIVE_VIEW, miss)
            except Forbidden:
                pass
        print(f"authorize_miss_all_grants: {(time.perf_counter() - t0) / 20000 * 1e6:.2f} us")
        lat = []
        for c in sample[:20000]:
            t = time.perf_counter()
            try:
                authorize(p, Action.LIVE_VIEW, c)
            except Forbidden:
                pass
            lat.append((time.perf_counter() - t) * 1e6)
        print(f"authorize_p99: {pct(lat, 0.99):.2f} us")
    finally:
        context.unbind(tok)
    t0 = time.perf_counter()
    book._bump()
    book.scope_for(p)
    print(f"compile_50_grants: {(time.perf_counter() - t0) * 1000:.2f} ms")


async def bench_listing(backend: str, url: str, n: int, units: int) -> None:
    rnd = random.Random(42)
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    div_rows, villages = regbench.divisions()
    async with sessions() as s, s.begin():
        await s.execute(insert(Division), div_rows)
        await s.execute(insert(Unit), [{"id": i + 1, "name": f"单位{i + 1}", "department": "教育局",
                                        "division_code": villages[i % len(villages)]} for i in range(units)])
    rows = regbench.channel_rows(n, units, villages, rnd)
    t0 = time.perf_counter()
    from xueliang.registry.channel_list import bulk_upsert_channels

    for i in range(0, len(rows), 50_000):
        await bulk_upsert_channels(sessions, rows[i : i + 50_000])
    print(f"{backend}_channels_loaded: {n} channels in {time.perf_counter() - t0:.0f} s")
    if backend == "sqlite":
        bench_checks(rows, make_grants(villages, [r["id"] for r in rows], random.Random(3)), 200_000)
    grants = make_grants(villages, [r["id"] for r in rows], random.Random(3))
    async with sessions() as s, s.begin():
        for i, g in enumerate(grants):
            await s.execute(insert(AccessGrant).values(
                id=i + 1, kind="share", grantee_department=DEPT, selector=g.get("selector"),
                has_ids="ids" in g, actions=g["actions"], uses=0, reason="", created_by="bench"))
            if "ids" in g:
                await s.execute(insert(AccessGrantChannel), [{"grant_id": i + 1, "channel_id": c} for c in g["ids"]])
    async with engine.connect() as c:
        await c.execute(text("ANALYZE"))
        await c.commit()
    book = book_of(grants)
    admin = Principal(1, "root", "administrator", book=book)
    edu = Principal(7, "edu", "department_user", DEPT, None, book=book)
    reg = RegistryService(sessions)
    filters = [ChannelFilter(), ChannelFilter(status="ON"), ChannelFilter(point_class=1),
               ChannelFilter(division="349901")]
    # The two listings walk their pages in lockstep, so a busy machine slows both alike.
    result: dict[str, list[float]] = {"unscoped": [], "scoped": []}
    for rnd_ in range(3):
        for f in filters:
            cursors: dict[str, str | None] = {"unscoped": None, "scoped": None}
            for _page in range(25):
                for who, p in (("unscoped", admin), ("scoped", edu)):
                    t = time.perf_counter()
                    _, cursors[who] = await reg.list_channels(f, cursors[who], 100, extra=scope_conditions(p))
                    if rnd_:  # the first round warms caches
                        result[who].append((time.perf_counter() - t) * 1000)
                if cursors["unscoped"] is None or cursors["scoped"] is None:
                    break
    for who in ("unscoped", "scoped"):
        print(f"{backend}_{who}_page_p50: {pct(result[who], 0.5):.2f} ms")
        print(f"{backend}_{who}_page_p99: {pct(result[who], 0.99):.2f} ms")
    ratio = pystats.median(result["scoped"]) / pystats.median(result["unscoped"])
    print(f"{backend}_scoped_vs_unscoped_p50: {ratio:.2f} x")
    await engine.dispose()


async def bench_audit(backend: str, url: str, n: int, n_verify: int, tmp: Path) -> None:
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    key = CheckpointKey(os.urandom(32))
    log = AuditLog(sessions, key, checkpoint_seconds=0, checkpoint_file=tmp / f"{backend}-cp.jsonl")
    rnd = random.Random(5)
    users = [f"user{i}" for i in range(200)]
    # Sustained: producers append at full speed in slices, as requests would, while the writer
    # batches; the clock stops when the last record is in the database.
    t0 = time.perf_counter()
    for i in range(n):
        log.append("media.live", "ok", actor_id=i % 200, actor=users[i % 200], role="operator",
                   actor_department=DEPT, resource_type="channel", resource_id=f"3499010010013100{i % 10000:04d}",
                   resource_department="公安局", ip=f"10.0.{i % 250}.{rnd.randrange(250)}", purpose="巡查",
                   status=200, detail={"method": "GET", "path": "/api/v1/channels/x/live.mp4"})
        if i % 500 == 499:
            await asyncio.sleep(0)
    await log.flush(timeout=600)
    dt = time.perf_counter() - t0
    print(f"{backend}_audit_append_rate: {n / dt:.0f} records/s")
    await log.checkpoint()
    rep = await verify(sessions, key, log.checkpoint_file)
    assert rep.ok, rep.text()
    print(f"{backend}_audit_chain_intact: {int(rep.ok)} bool ({rep.records} records)")
    if n_verify > n:
        for i in range(n_verify - n):
            log.append("media.playback", "ok", actor=users[i % 200], resource_id=str(i), ip="10.9.9.9",
                       detail={"i": i})
            if i % 500 == 499:
                await asyncio.sleep(0)
        await log.flush(timeout=1200)
        await log.checkpoint()
    await log.stop()
    rep = await verify(sessions, key, log.checkpoint_file)
    assert rep.ok, rep.text()
    print(f"{backend}_audit_verify_records: {rep.records} records")
    print(f"{backend}_audit_verify_time: {rep.seconds:.1f} s")
    print(f"{backend}_audit_verify_rate: {rep.records / rep.seconds:.0f} records/s")
    await engine.dispose()


async def pg_database(name: str) -> str:
    base = os.environ.get("XUELIANG_TEST_PG_URL") or (await asyncio.to_thread(
        subprocess.check_output, [str(ROOT / "scripts/pg.sh"), "start"], text=True)).strip()
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(base)
    conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    return u.set(database=name).render_as_string(hide_password=False)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=1_000_000)
    ap.add_argument("--units", type=int, default=20_000)
    ap.add_argument("--audit", type=int, default=200_000)
    ap.add_argument("--verify", type=int, default=1_000_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--skip", default="", help="comma list of: listing, audit")
    a = ap.parse_args()
    skip = set(a.skip.split(","))
    tmp = Path(tempfile.mkdtemp())
    print(f"channels: {a.channels} count")
    print("grants: 50 count")
    for backend in a.backends.split(","):
        if "listing" not in skip:
            url = f"sqlite+aiosqlite:///{tmp}/ch.db" if backend == "sqlite" else await pg_database("xl_bench_access")
            await bench_listing(backend, url, a.channels, a.units)
        if "audit" not in skip:
            url = f"sqlite+aiosqlite:///{tmp}/audit.db" if backend == "sqlite" else await pg_database("xl_bench_audit")
            await bench_audit(backend, url, a.audit, a.verify, tmp)


if __name__ == "__main__":
    asyncio.run(main())
