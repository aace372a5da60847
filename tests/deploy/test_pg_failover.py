"""PostgreSQL failover as docs/operations.md describes it, on real servers: a primary and a
streaming standby (synchronous), the platform's engine given both hosts with
``target_session_attrs=read-write``; the primary is killed, the standby promoted.

What it shows: the engine connects to the primary even with the standby listed first; while no
primary exists, the audit writer and the signalling writer keep their records in memory and
retry; after the promotion they write to the new primary by themselves, and the audit chain
verifies whole against the heads signed outside the database: nothing committed before the
failover and nothing appended during it is lost.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from tests.ports import free_port
from xueliang.access.audit import AuditLog, CheckpointKey, verify
from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade_async
from xueliang.db.tables import AuditRecord, Device, Event
from xueliang.gb28181.persist import SignallingWriter
from xueliang.gb28181.registrar import DeviceSession

BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []


class Server:
    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port

    def run(self, *args: str) -> str:
        p = subprocess.run([*AS_POSTGRES, f"{BINS[-1]}/{args[0]}", *args[1:]], capture_output=True, text=True,
                           timeout=120)
        if p.returncode != 0:
            raise AssertionError(f"{args[0]} failed: {p.stdout}{p.stderr}\n{self.log()}")
        return p.stdout

    def log(self) -> str:
        try:
            return (self.data / "log").read_text()[-2000:]
        except OSError:
            return ""

    def start(self, *settings: str) -> None:
        opts = " ".join([f"-p {self.port}", f"-k {self.data}", "-c listen_addresses=127.0.0.1", "-c fsync=off",
                         *(f"-c {s}" for s in settings)])
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w", "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([*AS_POSTGRES, f"{BINS[-1]}/pg_ctl", "-D", str(self.data), "-m", mode, "stop"],
                       capture_output=True, timeout=60)


@pytest.fixture
def pair() -> Iterator[tuple[Server, Server]]:
    if not BINS:
        pytest.fail("PostgreSQL server binaries not found (scripts/setup.sh installs postgresql)")
    root = Path(tempfile.mkdtemp(prefix="xueliang-failover-"))
    root.chmod(0o755)
    if AS_POSTGRES:
        shutil.chown(root, "postgres")
    primary, standby = Server(root / "a", free_port()), Server(root / "b", free_port())
    try:
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--locale=C.UTF-8")
        # Synchronous: a commit returns once the standby has it, so a failover loses no commit.
        primary.start("wal_level=replica", "max_wal_senders=4", "synchronous_commit=on",
                      "synchronous_standby_names='*'")
        primary.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                    "-D", str(standby.data), "-X", "stream", "-R")
        # Not synchronous_standby_names here: once promoted, with no standby of its own, it would
        # wait forever on every commit (docs/operations.md).
        standby.start("wal_level=replica", "max_wal_senders=4")
        yield primary, standby
    finally:
        primary.stop("immediate")
        standby.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def url(*servers: Server) -> str:
    hosts = "&".join(f"host=127.0.0.1:{s.port}" for s in servers)
    return f"postgresql+asyncpg://postgres@/postgres?{hosts}&target_session_attrs=read-write"


async def _until(what: str, fn: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await fn():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _device(n: int) -> DeviceSession:
    d = DeviceSession(f"3402000000132{n:07d}", admission="accepted", online=True, registered=True,
                      addr=("10.1.2.3", 5062))
    d.registered_wall = time.time()
    return d


@pytest.fixture
async def stopping() -> AsyncIterator[list[object]]:
    things: list[object] = []
    yield things
    for t in reversed(things):
        await t.stop()  # type: ignore[attr-defined]


async def test_audit_and_signalling_writers_ride_through_a_failover(
    pair: tuple[Server, Server], tmp_path: Path, stopping: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    primary, standby = pair
    await upgrade_async(url(primary))
    # The standby first: target_session_attrs=read-write passes over it to the primary.
    engine = create_engine(url(standby, primary), pool_size=4)
    sessions = session_factory(engine)

    async def where() -> tuple[int, bool]:
        async with sessions() as s:
            port, recovery = (await s.execute(text("SELECT inet_server_port(), pg_is_in_recovery()"))).one()
            return int(port), bool(recovery)

    assert await where() == (primary.port, False)

    key = CheckpointKey(b"failover-test-key-0123456789abcdef")
    heads = tmp_path / "heads.jsonl"
    audit = AuditLog(sessions, key, flush_seconds=0.05, checkpoint_file=heads)
    await audit.start()
    writer = SignallingWriter(sessions, interval=0.2)
    await writer.start()
    stopping += [audit, writer]

    async def count(model: type, where: object = None) -> int:
        async with sessions() as s:
            q = select(func.count()).select_from(model)
            return int(await s.scalar(q if where is None else q.where(where)) or 0)

    for i in range(50):
        audit.append("media.live", actor="duty", resource_type="channel", resource_id=f"c{i}")
    await audit.flush()
    for n in range(3):
        writer.device_new(_device(n))
        writer.event("device.online", _device(n).device_id, time.time(), {"reason": "registered"})
    await _until("the devices written", lambda: _eq(count(Device), 3))

    # The primary dies (no shutdown checkpoint, no goodbye to its clients).
    primary.stop("immediate")
    for burst in range(4):
        for i in range(5):
            audit.append("media.live", actor="duty", resource_type="channel", resource_id=f"during-{burst}-{i}")
        offline = _device(burst % 3)
        offline.online = False
        writer.device_state(offline)
        writer.event("device.offline", offline.device_id, time.time(), {"reason": "failover test", "n": burst})
        await asyncio.sleep(0.4)
    # Nothing could be written: both writers hold their records and keep trying.
    assert audit.written == 50 and audit.failures >= 1
    assert any("signalling flush failed; will retry" in r.getMessage() for r in caplog.records)

    standby.run("pg_ctl", "-D", str(standby.data), "-w", "promote")
    # Both writers get through to the new primary by themselves.
    await audit.flush(timeout=60)
    await _until("the events written", lambda: _eq(count(Event, Event.kind == "device.offline"), 4))
    assert await where() == (standby.port, False)
    assert await count(Event, Event.kind == "device.online") == 3
    async with sessions() as s:
        online = (await s.scalars(select(Device.online).order_by(Device.id))).all()
    assert online == [False, False, False]

    # Every record before and during the failover is there once, in one chain, and the chain
    # reaches the last head signed outside the database.
    await audit.stop()
    stopping.remove(audit)
    report = await verify(sessions, key, heads)
    assert report.ok, report.text()
    assert report.records == 70 and report.signed_seq == 70
    async with sessions() as s:
        ids = (await s.scalars(select(AuditRecord.resource_id).order_by(AuditRecord.seq))).all()
    assert ids == [f"c{i}" for i in range(50)] + [f"during-{b}-{i}" for b in range(4) for i in range(5)]
    await writer.stop()
    stopping.remove(writer)
    await engine.dispose()


async def _eq(got: object, want: int) -> bool:
    return await got == want  # type: ignore[misc]
