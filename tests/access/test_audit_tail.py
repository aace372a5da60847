"""The audit tail cannot be cut undetected (issue 10, item 10). The adversary holds the database
(the SQLite file, or the owner's rights on PostgreSQL) but not the audit key nor the signed heads
kept outside it: the head is signed at every flush, so deleting the records written since the
last checkpoint, rewriting them, rolling the checkpoint table back or putting back an older copy
of the database is reported by `verify`; the checkpoint table is append-only in the database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.access.test_audit import _drop_guards
from xueliang.access.audit import FIELDS, AuditLog, CheckpointKey, record_hash, verify
from xueliang.db.engine import create_engine, is_sqlite, session_factory
from xueliang.db.tables import AuditCheckpoint, AuditRecord

KEY = CheckpointKey(b"t" * 32)


async def _write(log: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.append("auth.login", "failed", actor=f"guess{i}", ip="10.0.0.9")
    await asyncio.sleep(0)
    await log.flush()


@pytest.fixture
async def tail(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """150 records: a checkpoint at 100 (default interval: 5 minutes, so none after it), then 50
    more written by the writer as it runs. The heads file stands outside the data directory."""
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    log = AuditLog(sessions, KEY, checkpoint_file=tmp_path / "outside" / "heads.jsonl")
    await _write(log, 100)
    await log.checkpoint()
    await _write(log, 50, 100)
    rep = await verify(sessions, KEY, log.checkpoint_file)
    assert rep.ok and rep.records == 150, rep.text()
    yield sessions, log, db_url
    await log.stop()
    await engine.dispose()


async def _rehash_from(s: AsyncSession, first: int) -> None:
    rows = list((await s.scalars(select(AuditRecord).where(AuditRecord.seq >= first)
                                 .order_by(AuditRecord.seq))).all())
    prev = await s.scalar(select(AuditRecord.hash).where(AuditRecord.seq == first - 1))
    for r in rows:
        r.prev_hash = prev
        r.hash = prev = record_hash({c: getattr(r, c) for c in FIELDS})


@pytest.mark.parametrize("attack", ["cut", "rewrite", "cut_and_roll_back_checkpoints", "cut_then_forge_head"])
async def test_tail_after_the_last_checkpoint_cannot_be_cut(tail, attack: str) -> None:  # type: ignore[no-untyped-def]
    sessions, log, url = tail
    await _drop_guards(sessions, url)
    async with sessions() as s, s.begin():
        if attack == "cut":
            # A failed login at 120 and everything after it never happened.
            await s.execute(delete(AuditRecord).where(AuditRecord.seq > 120))
        elif attack == "rewrite":
            await s.execute(update(AuditRecord).where(AuditRecord.seq == 130).values(actor="someone-else"))
            await _rehash_from(s, 130)
        elif attack == "cut_and_roll_back_checkpoints":
            await s.execute(delete(AuditRecord).where(AuditRecord.seq > 60))
            await s.execute(delete(AuditCheckpoint))
        elif attack == "cut_then_forge_head":
            # Cut, then append look-alike records up to the old head so the length matches.
            await s.execute(delete(AuditRecord).where(AuditRecord.seq > 120))
    if attack == "cut_then_forge_head":
        forger = AuditLog(sessions, None)
        await _write(forger, 30, 500)
        await forger.stop()
    rep = await verify(sessions, KEY, log.checkpoint_file)
    assert not rep.ok, rep.text()
    first = {"cut": 121, "rewrite": 101, "cut_and_roll_back_checkpoints": 61, "cut_then_forge_head": 101}[attack]
    assert rep.first_bad == first, rep.text()
    if attack.startswith("cut") and attack != "cut_then_forge_head":
        assert "tail missing" in rep.text() and f"records {first}..150" in rep.text(), rep.text()
    if attack == "cut_and_roll_back_checkpoints":
        assert "checkpoint of record 100 (file line" in rep.text() and "missing from the database" in rep.text()


async def test_a_restored_older_copy_of_the_database_is_seen(tmp_path: Path) -> None:
    """SQLite: whoever holds the file puts back yesterday's copy (triggers and all)."""
    db = tmp_path / "a.db"
    from xueliang.db.migrate import upgrade_async

    url = f"sqlite+aiosqlite:///{db}"
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    log = AuditLog(sessions, KEY, checkpoint_file=tmp_path / "outside" / "heads.jsonl")
    await _write(log, 40)
    await log.checkpoint()
    await engine.dispose()  # the WAL is folded into the file
    shutil.copy(db, tmp_path / "copy.db")
    engine = create_engine(url)
    log.sessions = sessions = session_factory(engine)
    await _write(log, 25, 40)
    # The process dies here (no shutdown, so no last checkpoint): only the flushes' heads exist.
    assert log._task is not None
    log._task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await log._task
    await engine.dispose()
    shutil.copy(tmp_path / "copy.db", db)
    engine = create_engine(url)
    try:
        rep = await verify(session_factory(engine), KEY, log.checkpoint_file)
        assert not rep.ok and rep.first_bad == 41, rep.text()
        assert "tail missing" in rep.text() and "records 41..65" in rep.text()
    finally:
        await engine.dispose()


async def test_heads_are_signed_and_a_forged_or_missing_heads_file_is_reported(tail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sessions, log, _url = tail
    lines = [json.loads(x) for x in log.checkpoint_file.read_text().splitlines()]
    heads = [e for e in lines if e.get("kind") == "head"]
    assert heads and heads[-1]["seq"] == 150 and all(KEY.check(e["seq"], e["hash"], e["at"], e["signature"]) for e in heads)
    # A head line added without the key is refused, not believed.
    forged = dict(heads[-1], seq=151, signature="0" * 64)
    with open(log.checkpoint_file, "a") as f:
        f.write(json.dumps(forged) + "\n")
    rep = await verify(sessions, KEY, log.checkpoint_file)
    assert not rep.ok and "signature invalid" in rep.text() and rep.first_bad is None
    # No heads file where one is configured: said, since a cut tail would go unseen.
    rep = await verify(sessions, KEY, tmp_path / "nowhere.jsonl")
    assert not rep.ok and "no signed heads outside the database" in rep.text()


async def test_checkpoints_are_append_only_in_the_database(tail) -> None:  # type: ignore[no-untyped-def]
    sessions, _log, url = tail
    with pytest.raises(Exception, match="append-only"):
        async with sessions() as s, s.begin():
            await s.execute(update(AuditCheckpoint).values(seq=1))
    with pytest.raises(Exception, match="append-only"):
        async with sessions() as s, s.begin():
            await s.execute(delete(AuditCheckpoint))
    if not is_sqlite(url):
        for table in ("audit_records", "audit_checkpoints"):
            with pytest.raises(Exception, match="append-only"):
                async with sessions() as s, s.begin():
                    await s.execute(text(f"TRUNCATE {table}"))
    async with sessions() as s:
        assert len((await s.scalars(select(AuditCheckpoint))).all()) == 1


async def test_least_privilege_role_on_postgresql(db_url: str) -> None:
    """The service role of docs/operations.md (SELECT and INSERT on the audit tables) can append
    but cannot delete, update, truncate, or switch the triggers off."""
    if is_sqlite(db_url):
        pytest.skip("PostgreSQL roles")
    role = f"xl_app_{uuid.uuid4().hex[:8]}"
    admin = create_engine(db_url)
    grants = _grants_from_docs(role)
    async with admin.begin() as c:
        await c.execute(text(f"CREATE ROLE {role} LOGIN"))
        for sql in grants:
            await c.execute(text(sql))
    app = create_engine(make_url(db_url).set(username=role).render_as_string(hide_password=False))
    try:
        sessions: async_sessionmaker[AsyncSession] = session_factory(app)
        log = AuditLog(sessions, KEY)
        await _write(log, 5)
        await log.checkpoint()
        await log.stop()
        for sql in ("DELETE FROM audit_records", "UPDATE audit_records SET actor = 'x'", "TRUNCATE audit_records",
                    "DELETE FROM audit_checkpoints", "TRUNCATE audit_checkpoints",
                    "ALTER TABLE audit_records DISABLE TRIGGER ALL", "DROP TRIGGER audit_records_no_change ON audit_records"):
            with pytest.raises(Exception, match=r"permission denied|must be owner|append-only"):
                async with app.begin() as c:
                    await c.execute(text(sql))
        rep = await verify(sessions, KEY)
        assert rep.ok and rep.records == 5, rep.text()
    finally:
        await app.dispose()
        async with admin.begin() as c:
            await c.execute(text(f"DROP OWNED BY {role}"))
            await c.execute(text(f"DROP ROLE {role}"))
        await admin.dispose()


def _grants_from_docs(role: str) -> list[str]:
    """The GRANT statements of docs/operations.md's least-privilege role, for ``role``."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    block = doc.split("<!-- audit-role -->", 2)[1]
    sql = "\n".join(x for x in block.splitlines() if x.strip() and not x.strip().startswith(("```", "--")))
    return [s.strip().replace("xueliang_app", role) for s in sql.split(";")
            if s.strip().upper().startswith(("GRANT", "REVOKE"))]


def test_keys_and_heads_beside_a_sqlite_database_are_warned_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xueliang.access.audit import placement_warnings

    monkeypatch.delenv("XUELIANG_AUDIT_KEY", raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path}/var/xueliang.db"
    w = placement_warnings(url, tmp_path / "var" / "audit.key", tmp_path / "var" / "audit" / "checkpoints.jsonl")
    assert len(w) == 2 and "audit key" in w[0] and "signed audit heads" in w[1]
    assert placement_warnings(url, tmp_path / "etc" / "audit.key", tmp_path / "log" / "heads.jsonl") == []
    monkeypatch.setenv("XUELIANG_AUDIT_KEY", "ab" * 32)  # the key file is then not used
    assert len(placement_warnings(url, tmp_path / "var" / "audit.key", tmp_path / "log" / "h.jsonl")) == 0
    assert placement_warnings("postgresql+asyncpg://db/x", tmp_path / "var" / "k", tmp_path / "var" / "h") == []


async def test_cli_verify_and_restart_report_the_missing_tail(
    tail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from xueliang.cli import app

    sessions, log, url = tail
    monkeypatch.setenv("XUELIANG_DATABASE__URL", url)
    monkeypatch.setenv("XUELIANG_STORAGE__VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("XUELIANG_AUDIT_KEY", ("t" * 32).encode().hex())
    monkeypatch.setenv("XUELIANG_ACCESS__AUDIT_HEADS_FILE", str(log.checkpoint_file))
    runner = CliRunner()
    r = await asyncio.to_thread(runner.invoke, app, ["audit", "verify"])
    assert r.exit_code == 0 and "intact: 150 records" in r.output, r.output
    await _drop_guards(sessions, url)
    async with sessions() as s, s.begin():
        await s.execute(delete(AuditRecord).where(AuditRecord.seq > 140))
    r = await asyncio.to_thread(runner.invoke, app, ["audit", "verify"])
    assert r.exit_code == 1 and "first bad record: 141" in r.output and "tail missing" in r.output, r.output
    # A server started on the cut database says so at once, and goes on (a new chain after 140).
    restarted = AuditLog(sessions, KEY, checkpoint_file=log.checkpoint_file)
    with caplog.at_level("ERROR", logger="xueliang.audit"):
        await _write(restarted, 3, 1000)
    await restarted.stop()
    assert "AUDIT TAIL MISSING" in caplog.text and "ends at record 140, but record 150" in caplog.text
    rep = await verify(sessions, KEY, log.checkpoint_file)
    # Records 141..143 are new; 144..150 are still missing against the head signed at 150.
    assert not rep.ok and rep.first_bad == 144 and "tail missing" in rep.text(), rep.text()


async def test_records_added_after_the_last_signed_head_are_noticed(tail) -> None:  # type: ignore[no-untyped-def]
    """Appending look-alike records without the key keeps the chain whole, but they are past
    every signature: verify says so."""
    sessions, log, _url = tail
    rep = await verify(sessions, KEY, log.checkpoint_file)
    assert rep.ok and rep.signed_seq == 150 and "notice" not in rep.text()
    forger = AuditLog(sessions, None)
    await _write(forger, 4, 900)
    await forger.stop()
    rep = await verify(sessions, KEY, log.checkpoint_file)
    assert rep.ok and rep.signed_seq == 150 and rep.head_seq == 154
    assert "notice: records 151..154 come after the last signed head" in rep.text()
