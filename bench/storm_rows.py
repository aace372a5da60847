"""What a registration storm's rows cost the database itself, and the writer around them.

For each device of a storm the platform keeps three rows: its registry row (the signalling
writer's INSERT), a ``device.online`` event (the writer's) and an availability interval (the
state history's). This runs those statements, as the platform spells them, on a database made
by the platform's migrations, straight through Python's sqlite3 module in 4,000-row
transactions (the writer's one-second batches at 4,000 registrations a second): the part of a
storm no Python around it can take away. Then the signalling writer itself, end to end, over
the same devices. Prints `name: value unit` lines (CPU seconds of this process, per
``--devices``; the median of ``--rounds``):

- ``storm_rows_sqlite_devices_cpu_s``, ``..._events_cpu_s``, ``..._intervals_cpu_s`` and
  ``storm_rows_sqlite_cpu_s`` (the three), as the platform runs them on SQLite: multi-row
  statements (db/many.py); ``storm_rows_sqlite_executemany_cpu_s`` the three as one-row
  statements through sqlite3's ``executemany``, as before;
- ``storm_rows_writer_cpu_s``: the writer flushing the devices and their events (rows built,
  statements run: its thread and the database's), ``storm_rows_writer_main_thread_cpu_s``
  its event loop's share; ``..._executemany_...`` the same with one-row statements.

    .venv/bin/python bench/storm_rows.py [--devices 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.dialects import sqlite as sqlite_dialect

from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade
from xueliang.gb28181.persist import SignallingWriter, _Statements
from xueliang.gb28181.registrar import DeviceSession
from xueliang.gb28181.rows import event_rows, new_device_rows
from xueliang.health.history import _RawSql

BATCH = 4_000


def _devices(n: int, first: int) -> dict[str, DeviceSession]:
    out: dict[str, DeviceSession] = {}
    wall, mono = time.time(), time.monotonic()
    for i in range(n):
        did = f"3402000000132{first + i:07d}"
        s = DeviceSession(did, admission="accepted", online=True, registered=True, addr=("127.0.0.1", 5062 + i % 1000),
                          transport="udp", contact=f"<sip:{did}@127.0.0.1:5062>", call_id=f"c{i}", gb_version="2.0")
        s.registered_wall, s.last_seen = wall + i / 4000, mono + i / 4000
        out[did] = s
    return out


def _sqlite_round(db: Path, n: int, first: int, multi: bool) -> dict[str, float]:
    dialect = sqlite_dialect.dialect()
    st, hist = _Statements(dialect), _RawSql(dialect)
    devices = _devices(n, first)
    wall = time.time()
    now = st.enc.ts(wall)
    offset = wall - time.monotonic()
    ids = list(devices)
    rows = {
        "devices": (st.new_device.many, new_device_rows(devices, st.enc, offset, now)),
        "events": (st.event.many, event_rows([(wall + i / 4000, "device.online", d, {"reason": "registered"})
                                              for i, d in enumerate(ids)], st.enc)),
        # a device's first interval: no detail, no fault episode (the recorder's SQLite shape)
        "intervals": (hist.inserts[(False, False)], [(d, "device", "online", hist.ts(wall + i / 4000))
                                                      for i, d in enumerate(ids)]),
    }
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):  # as db/engine.py sets them
        conn.execute(f"PRAGMA {pragma}")
    spent: dict[str, float] = {}
    for name, (many, params) in rows.items():
        t = time.process_time()
        for k in range(0, len(params), BATCH):
            conn.execute("BEGIN")
            if multi:
                for sql, values in many.statements(params[k:k + BATCH]):
                    conn.execute(sql, values)
            else:
                conn.executemany(many.sql, params[k:k + BATCH])
            conn.execute("COMMIT")
        spent[name] = time.process_time() - t
    for table in ("devices", "events", "health_intervals"):  # every row written, none lost to a conflict
        count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if count != n:
            raise SystemExit(f"{table}: {count} rows written of {n}")
    conn.close()
    return spent


async def _writer_round(url: str, n: int, first: int, multi: bool) -> tuple[float, float]:
    """CPU of the process and of the loop's thread in the writer's flushes."""
    engine = create_engine(url)
    try:
        w = SignallingWriter(session_factory(engine))
        w.device_new(_devices(1, 9_000_000)["34020000001329000000"])
        await w.flush()  # the statements prepared, the connection open
        assert w._statements is not None
        for batch in (w._statements.new_device, w._statements.event):
            batch.many.multi_row = multi
        devices = list(_devices(n, first).values())
        p, t = time.process_time(), time.thread_time()
        for k in range(0, n, BATCH):
            for s in devices[k:k + BATCH]:
                w.device_new(s)
                w.device_state(s)
                w.event("device.online", s.device_id, s.registered_wall, {"reason": "registered"})
            await w.flush()
        spent = time.process_time() - p, time.thread_time() - t
        async with engine.connect() as conn:
            for table in ("devices", "events"):
                count = (await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar()
                if count != n + (table == "devices"):
                    raise SystemExit(f"the writer: {table}: {count} rows written of {n}")
        return spent
    finally:
        await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    n = args.devices
    sq: dict[bool, dict[str, list[float]]] = {m: {"devices": [], "events": [], "intervals": []} for m in (True, False)}
    wr: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="storm-rows-") as tmp:
        def fresh(name: str) -> str:
            """A new database made by the migrations: its URL."""
            url = f"sqlite+aiosqlite:///{Path(tmp) / name}.db"
            upgrade(url)
            return url

        for r in range(args.rounds):  # each round new devices, into tables that grow as a city's do
            for multi in (True, False):  # the two forms alternated, each on a database of its own
                fresh(f"a{r}{multi}")
                for name, cpu in _sqlite_round(Path(tmp) / f"a{r}{multi}.db", n, 0, multi).items():
                    sq[multi][name].append(cpu)
                wr[multi].append(asyncio.run(_writer_round(fresh(f"b{r}{multi}"), n, 0, multi)))
    for name, spent in sq[True].items():
        print(f"storm_rows_sqlite_{name}_cpu_s: {statistics.median(spent):.3f} s")
    for multi, suffix in ((True, ""), (False, "_executemany")):
        total = statistics.median([sum(x) for x in zip(*sq[multi].values(), strict=True)])
        print(f"storm_rows_sqlite{suffix}_cpu_s: {total:.3f} s")
    for multi, suffix in ((True, ""), (False, "_executemany")):
        print(f"storm_rows_writer{suffix}_cpu_s: {statistics.median([p for p, _ in wr[multi]]):.3f} s")
        print(f"storm_rows_writer{suffix}_main_thread_cpu_s: {statistics.median([t for _, t in wr[multi]]):.3f} s")


if __name__ == "__main__":
    main()
