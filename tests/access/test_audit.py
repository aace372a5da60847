"""The audit chain: append, verify, and detection of changed, removed, reordered, rewritten and
truncated records and forged checkpoints; the CLI; what gets recorded (requests, bus live-view
sessions); queries, exports and the transparency report."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.access.conftest import LOOKOUT, SCHOOL, purpose, user
from xueliang.access.audit import AuditLog, CheckpointKey, record_hash, verify
from xueliang.db.engine import create_engine, is_sqlite, session_factory
from xueliang.db.tables import AuditCheckpoint, AuditRecord


async def _drop_guards(sessions: async_sessionmaker[AsyncSession], url: str) -> None:
    """What an attacker with database rights does first: drop the append-only triggers."""
    async with sessions() as s, s.begin():
        if is_sqlite(url):
            for t in ("records", "checkpoints"):
                await s.execute(text(f"DROP TRIGGER audit_{t}_no_update"))
                await s.execute(text(f"DROP TRIGGER audit_{t}_no_delete"))
        else:
            for t in ("records", "checkpoints"):
                await s.execute(text(f"DROP TRIGGER audit_{t}_no_change ON audit_{t}"))


@pytest.fixture
async def chain(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    key = CheckpointKey(b"k" * 32)
    log = AuditLog(sessions, key, batch_max=64, flush_seconds=0.01, checkpoint_seconds=0,
                   checkpoint_file=tmp_path / "cp.jsonl")
    for i in range(300):
        log.append("media.live", "ok", actor=f"u{i % 7}", resource_id=f"C{i % 11}", ip="10.0.0.1",
                   purpose="巡查" if i % 3 else None, detail={"i": i, "x": [1, "二"]})
        if i == 149:
            await log.checkpoint()  # writes what is pending, then signs record 150
    await log.flush()
    await log.checkpoint()
    await log.stop()
    yield sessions, key, log, db_url
    await engine.dispose()


async def test_intact_chain_verifies(chain) -> None:  # type: ignore[no-untyped-def]
    sessions, key, log, _ = chain
    rep = await verify(sessions, key, log.checkpoint_file)
    assert rep.ok, rep.text()
    assert rep.records == 300 and rep.head_seq == 300 and rep.checkpoints == 2  # each in the db and in the file
    async with sessions() as s:
        rows = list((await s.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all())
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert all(record_hash({c: getattr(r, c) for c in ("seq", "at", "actor_id", "actor", "role",
               "actor_department", "action", "resource_type", "resource_id", "resource_department",
               "ip", "purpose", "case_ref", "outcome", "status", "detail", "prev_hash")}) == r.hash for r in rows)


async def test_append_only_in_the_database(chain) -> None:  # type: ignore[no-untyped-def]
    sessions, *_ = chain
    with pytest.raises(Exception, match="append-only"):
        async with sessions() as s, s.begin():
            await s.execute(update(AuditRecord).where(AuditRecord.seq == 5).values(actor="x"))


@pytest.mark.parametrize("attack", ["change", "remove", "reorder", "rewrite", "truncate", "forge"])
async def test_tampering_is_detected(chain, attack: str) -> None:  # type: ignore[no-untyped-def]
    sessions, key, log, url = chain
    await _drop_guards(sessions, url)
    async with sessions() as s, s.begin():
        if attack == "change":
            await s.execute(update(AuditRecord).where(AuditRecord.seq == 77).values(purpose="改过的"))
        elif attack == "remove":
            await s.execute(AuditRecord.__table__.delete().where(AuditRecord.seq == 120))
        elif attack == "reorder":
            await s.execute(update(AuditRecord).where(AuditRecord.seq == 200).values(seq=-1))
            await s.execute(update(AuditRecord).where(AuditRecord.seq == 201).values(seq=200))
            await s.execute(update(AuditRecord).where(AuditRecord.seq == -1).values(seq=201))
        elif attack == "rewrite":
            # Change record 100 and recompute every hash after it: only the checkpoints notice.
            rows = list((await s.scalars(select(AuditRecord).where(AuditRecord.seq >= 100)
                                          .order_by(AuditRecord.seq))).all())
            prev = (await s.scalar(select(AuditRecord.hash).where(AuditRecord.seq == 99)))
            for r in rows:
                if r.seq == 100:
                    r.actor = "someone-else"
                r.prev_hash = prev
                d = {c: getattr(r, c) for c in ("seq", "at", "actor_id", "actor", "role", "actor_department",
                     "action", "resource_type", "resource_id", "resource_department", "ip", "purpose",
                     "case_ref", "outcome", "status", "detail", "prev_hash")}
                r.hash = prev = record_hash(d)
        elif attack == "truncate":
            await s.execute(AuditRecord.__table__.delete().where(AuditRecord.seq > 280))
        elif attack == "forge":
            # Cut the end and forge a checkpoint to match, without the key; and drop the
            # database's real checkpoints (the file outside the database still has them).
            await s.execute(AuditRecord.__table__.delete().where(AuditRecord.seq > 280))
            await s.execute(AuditCheckpoint.__table__.delete())
            h = await s.scalar(select(AuditRecord.hash).where(AuditRecord.seq == 280))
            fake = CheckpointKey(b"x" * 32)
            s.add(AuditCheckpoint(seq=280, hash=h, at=log_time(), key_id=key.key_id,
                                  signature=fake.sign(280, h, "2026-01-01T00:00:00.000000Z")))
    rep = await verify(sessions, key, log.checkpoint_file)
    assert not rep.ok
    expected_first = {"change": 77, "remove": 120, "reorder": 200, "rewrite": 1, "truncate": 281, "forge": 281}
    assert rep.first_bad == expected_first[attack], rep.text()
    assert f"{expected_first[attack]}" in rep.text()
    if attack == "rewrite":
        assert "records 1..150 were rewritten" in rep.text()


def log_time():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)


async def test_cli_verify_names_the_first_bad_record(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from xueliang.cli import app

    monkeypatch.setenv("XUELIANG_DATABASE__URL", db_url)
    monkeypatch.setenv("XUELIANG_STORAGE__VAR_DIR", str(tmp_path))
    monkeypatch.setenv("XUELIANG_AUDIT_KEY", "ab" * 32)
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    log = AuditLog(sessions, CheckpointKey(bytes.fromhex("ab" * 32)))
    for i in range(50):
        log.append("device.ptz", "ok", actor="op", resource_id=str(i))
    await log.flush()
    await log.stop()
    runner = CliRunner()
    r = await _in_thread(runner.invoke, app, ["audit", "checkpoint"])
    assert r.exit_code == 0 and "record 50" in r.output, r.output
    r = await _in_thread(runner.invoke, app, ["audit", "verify"])
    assert r.exit_code == 0 and "intact: 50 records" in r.output, r.output
    await _drop_guards(sessions, db_url)
    async with sessions() as s, s.begin():
        await s.execute(update(AuditRecord).where(AuditRecord.seq == 33).values(outcome="denied"))
    r = await _in_thread(runner.invoke, app, ["audit", "verify"])
    assert r.exit_code == 1 and "first bad record: 33" in r.output, r.output
    await engine.dispose()


async def _in_thread(fn, *a):  # type: ignore[no-untyped-def]
    import asyncio

    return await asyncio.to_thread(fn, *a)


# Viewing sessions are recorded by real readers of real streams: tests/media/test_media_access.py.
async def test_requests_are_recorded(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    admin = {"Authorization": f"Bearer {platform.users.issue(await platform.users.by_name('root'))}"}
    op = await user(platform, "duty", "operator", department="公安局")
    r = await client.post("/api/v1/auth/login", json={"username": "duty", "password": "wrong"})
    assert r.status_code == 401
    await client.patch(f"/api/v1/channels/{SCHOOL}", json={"name": "新校门"}, headers=admin | {"X-Forwarded-For": "1.2.3.4"})
    assert (await client.get(f"/api/v1/channels/{LOOKOUT}", headers=op)).status_code == 200  # not recorded
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        rows = (await s.execute(select(AuditRecord.action, AuditRecord.outcome, AuditRecord.actor,
                                       AuditRecord.resource_id, AuditRecord.ip, AuditRecord.detail)
                                .order_by(AuditRecord.seq))).all()
    acts = [(a, o, who) for a, o, who, *_ in rows]
    assert ("auth.login", "failed", "duty") in acts
    assert ("registry.manage", "ok", "root") in acts
    assert not any(a == "registry.read" for a, *_ in acts)
    patch = next(r for r in rows if r[0] == "registry.manage")
    d = json.loads(patch[5])
    assert d["route"].endswith("/channels/{channel_id}") and d["method"] == "PATCH"


async def test_queries_exports_and_transparency(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    aud = await user(platform, "aud", "auditor")
    op = await user(platform, "duty", "operator", department="公安局")
    edu = await user(platform, "edu", "department_user", department="教育局")
    log = platform.access.audit
    for who, dept, cam, cam_dept, n in [("duty", "公安局", SCHOOL, "教育局", 3), ("edu", "教育局", SCHOOL, "教育局", 2),
                                        ("duty", "公安局", LOOKOUT, "公安局", 1)]:
        for _ in range(n):
            log.append("media.live", "ok", actor=who, actor_department=dept, resource_type="channel",
                       resource_id=cam, resource_department=cam_dept)
    log.append("media.live", "denied", actor="edu", actor_department="教育局", resource_id=LOOKOUT,
               resource_department="公安局")
    r = await client.get("/api/v1/audit/records", params={"actor": "duty", "limit": 2}, headers=aud)
    assert r.status_code == 200 and len(r.json()["items"]) == 2 and r.json()["next_before"]
    r2 = await client.get("/api/v1/audit/records", params={"actor": "duty", "before": r.json()["next_before"]},
                          headers=aud)
    assert len(r2.json()["items"]) == 2
    r = await client.get("/api/v1/audit/records", params={"channel": LOOKOUT, "outcome": "denied"}, headers=aud)
    assert [i["actor"] for i in r.json()["items"]] == ["edu"]
    r = await client.get("/api/v1/audit/records", params={"department": "教育局", "action": "media.*"}, headers=aud)
    assert len(r.json()["items"]) == 6  # 5 views of its camera (by anyone) + edu's refusal
    r = await client.get("/api/v1/audit/records.csv", params={"actor": "edu"}, headers=aud)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert table[0][0] == "seq" and len(table) == 4 and table[1][3] == "edu"
    r = await client.get("/api/v1/audit/records.xlsx", headers=aud)
    assert r.status_code == 200 and r.content[:2] == b"PK"
    r = await client.get("/api/v1/audit/transparency", params={"by": "channel"}, headers=aud)
    items = {i["channel"]: i for i in r.json()["items"]}
    assert items[SCHOOL]["views"] == 5 and [v["user"] for v in items[SCHOOL]["viewers"]] == ["duty", "edu"]
    r = await client.get("/api/v1/audit/transparency", params={"by": "department"}, headers=aud)
    assert {i["department"]: i["views"] for i in r.json()["items"]} == {"教育局": 5, "公安局": 1}
    # A department sees who viewed its own cameras, not others'.
    r = await client.get("/api/v1/audit/transparency", params={"by": "channel"}, headers=edu)
    assert [i["channel"] for i in r.json()["items"]] == [SCHOOL]
    assert (await client.get("/api/v1/audit/records", headers=edu)).status_code == 403
    r = await client.get("/api/v1/audit/verify", headers=aud)
    assert r.status_code == 200 and r.json()["ok"] is True
    r = await client.post("/api/v1/audit/checkpoints", headers=aud)
    assert r.status_code == 201 and r.json()["seq"] > 0
    # Reading the audit is itself audited.
    await log.flush()
    async with platform.sessions() as s:
        n = await s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.actor == "aud", AuditRecord.action.like("audit.%")))
    assert n and n >= 3
    _ = op, purpose
