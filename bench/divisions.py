"""Loading the national division list on SQLite and PostgreSQL.

Prints `name: value unit` lines: the first load of the shipped list into a fresh database
(what `xueliang db upgrade` does once, ~44,700 rows), a second load of the same list (nothing
changes: what `xueliang divisions load` costs when run again), a newer list that retires a
province's counties and townships, the villages of one city, and the console tree's first
question (`in_use` divisions) against the loaded list.

    .venv/bin/python bench/divisions.py [--backends sqlite,postgresql] [--runs 3] [--all-villages]

PostgreSQL comes from XUELIANG_TEST_PG_URL or scripts/pg.sh (started if needed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics as pystats
import subprocess
import tempfile
import time
from pathlib import Path

from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade_async
from xueliang.registry import divisions as dv
from xueliang.registry.service import RegistryService

ROOT = Path(__file__).resolve().parent.parent


async def once(url: str) -> dict[str, float]:
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    lst = dv.shipped()
    out: dict[str, float] = {}
    try:
        t = time.perf_counter()
        rep = await dv.ensure_national(sessions)
        out["divisions_load"] = time.perf_counter() - t
        assert rep is not None and rep.added == lst.manifest["rows"]["divisions.csv.gz"]
        t = time.perf_counter()
        again = await dv.load_list(sessions, lst.rows(), version=lst.version, source=lst.source)
        out["divisions_reload"] = time.perf_counter() - t
        assert again.added == again.retired == 0
        t = time.perf_counter()
        newer = [(c, n) for c, n in lst.rows() if not (c.startswith("15") and len(c) > 4)]
        rep2 = await dv.load_list(sessions, newer, version="bench", source="bench")
        out["divisions_retire"] = time.perf_counter() - t
        out["retired_rows"] = rep2.retired
        t = time.perf_counter()
        v = await dv.load_villages(sessions, "4201")  # 武汉市
        out["villages_load"] = time.perf_counter() - t
        out["village_rows"] = v.added
        reg = RegistryService(sessions)
        t = time.perf_counter()
        await reg.list_divisions(limit=1000, in_use=True)
        out["tree_roots"] = (time.perf_counter() - t) * 1000
    finally:
        await engine.dispose()
    return out


async def all_villages(url: str, db: Path | None) -> None:
    """Why villages are loaded per city: every village of the country at once."""
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        await dv.ensure_national(sessions)
        before = db.stat().st_size if db else 0
        lst = dv.shipped()
        t = time.perf_counter()
        rep = await dv.load_list(sessions, lst.villages(""), version=lst.version, source="bench",
                                 levels=(dv.VILLAGE_LEVEL,), record=False)
        print(f"all_villages_load: {time.perf_counter() - t:.1f} s ({rep.added} villages)")
        if db:
            print(f"sqlite_size_without_villages: {before / 1e6:.0f} MB")
            print(f"sqlite_size_with_all_villages: {db.stat().st_size / 1e6:.0f} MB")
    finally:
        await engine.dispose()


async def pg_url(run: int) -> str:
    base = os.environ.get("XUELIANG_TEST_PG_URL") or subprocess.check_output(  # noqa: ASYNC221
        [str(ROOT / "scripts/pg.sh"), "start"], text=True
    ).strip()
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(base)
    conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)
    name = f"xl_bench_div{run}"
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    return u.set(database=name).render_as_string(hide_password=False)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--all-villages", action="store_true", help="also load every village of the country (SQLite)")
    a = ap.parse_args()
    lst = dv.shipped()
    print(f"division_list: {lst.manifest['rows']['divisions.csv.gz']} rows ({lst.version})")
    worst = 0.0
    for backend in a.backends.split(","):
        runs = []
        for i in range(a.runs):
            url = (
                f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db" if backend == "sqlite" else await pg_url(i)
            )
            runs.append(await once(url))
        med = {k: pystats.median(r[k] for r in runs) for k in runs[0]}
        print(f"{backend}_divisions_load: {med['divisions_load']:.2f} s")
        print(f"{backend}_divisions_reload: {med['divisions_reload']:.2f} s")
        print(f"{backend}_divisions_retire: {med['divisions_retire']:.2f} s ({med['retired_rows']:.0f} rows marked historical)")
        print(f"{backend}_villages_load: {med['villages_load']:.2f} s ({med['village_rows']:.0f} villages of 4201)")
        print(f"{backend}_tree_roots: {med['tree_roots']:.1f} ms")
        worst = max(worst, med["divisions_load"])
    print(f"divisions_load: {worst:.2f} s")  # the first load, on the slower backend
    if a.all_villages:
        db = Path(tempfile.mkdtemp()) / "villages.db"
        await all_villages(f"sqlite+aiosqlite:///{db}", db)


if __name__ == "__main__":
    asyncio.run(main())
