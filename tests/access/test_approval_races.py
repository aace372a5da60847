"""Approvals decided, withdrawn and used at the same time (issue 10: the class of item 6, a
read-modify-write on a single-use thing). On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.access.conftest import HOSPITAL, SCHOOL_KEY, principal, user
from xueliang.access import context
from xueliang.access.policy import Action, ApprovalRequired, authorize
from xueliang.db.tables import AccessGrant, ApprovalRequest

WHEN = {"start": "2026-01-01T00:00:00", "end": "2026-01-01T01:00:00"}


async def _request(client: httpx.AsyncClient, headers: dict[str, str], **kw: Any) -> int:
    r = await client.post("/api/v1/approvals", json={"channel_ids": [SCHOOL_KEY], "actions": ["media.download"],
                                                     "purpose": "刑事案件取证", **kw}, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_withdrawn_while_being_approved_leaves_no_grant(
    client: httpx.AsyncClient, platform: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requester withdraws after the decision is claimed but before its grant is recorded on
    the request: the withdrawal saw no grant to revoke, and the grant stayed in force for a
    request that says 'withdrawn'."""
    op_h = await user(platform, "duty", "operator")
    sup = await user(platform, "leader", "supervisor")
    rid = await _request(client, op_h)
    access = platform.access
    op = await principal(platform, op_h)
    real = access.grants.create
    withdrawn: list[Any] = []

    async def create(**kw: Any) -> Any:
        g = await real(**kw)
        withdrawn.append(await access.approvals.withdraw(op, rid))  # meanwhile
        return g

    monkeypatch.setattr(access.grants, "create", create)
    r = await client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=sup)
    assert r.status_code == 200, r.text
    assert withdrawn and withdrawn[0].status == "withdrawn"
    async with platform.sessions() as s:
        req = await s.get(ApprovalRequest, rid)
        grants = (await s.scalars(select(AccessGrant).where(AccessGrant.approval_id == rid))).all()
    assert req is not None and req.status == "withdrawn"
    assert grants and all(g.revoked_at is not None for g in grants)
    assert all(g.id not in access.book.grants for g in grants)
    ch = await platform.registry.get_channel(SCHOOL_KEY)
    tok = context.bind(context.RequestContext())
    try:
        with pytest.raises(ApprovalRequired):
            authorize(await principal(platform, op_h), Action.DOWNLOAD, ch)
    finally:
        context.unbind(tok)
    r = await client.post(f"/api/v1/channels/{SCHOOL_KEY}/download", json=WHEN, headers=op_h)
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required")


async def test_two_approvers_at_once_make_one_grant(client: httpx.AsyncClient, platform: Any) -> None:
    op_h = await user(platform, "duty", "operator")
    sups = [await user(platform, f"leader{i}", "supervisor") for i in range(6)]
    rid = await _request(client, op_h, max_uses=1)
    rs = await asyncio.gather(*(client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=h) for h in sups),
                              client.post(f"/api/v1/approvals/{rid}/refuse", json={}, headers=sups[0]))
    codes = sorted(r.status_code for r in rs)
    assert codes == [200] + [409] * 6, codes
    async with platform.sessions() as s:
        n = len((await s.scalars(select(AccessGrant).where(AccessGrant.approval_id == rid))).all())
    assert n == (1 if any(r.status_code == 200 and r.json()["status"] == "approved" for r in rs) else 0)


async def test_withdrawn_twice_at_once(client: httpx.AsyncClient, platform: Any) -> None:
    op_h = await user(platform, "duty", "operator")
    sup = await user(platform, "leader", "supervisor")
    rid = await _request(client, op_h)
    assert (await client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=sup)).status_code == 200
    rs = await asyncio.gather(*(client.post(f"/api/v1/approvals/{rid}/withdraw", headers=op_h) for _ in range(5)))
    assert sorted(r.status_code for r in rs) == [200] + [409] * 4
    assert (await client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=sup)).status_code == 409


async def test_single_use_approval_is_used_once_in_a_process(client: httpx.AsyncClient, platform: Any) -> None:
    """Many requests at once on a one-use approval: one is authorized (the use is taken when
    authorized, in one process), the others are refused."""
    op_h = await user(platform, "duty", "operator")
    sup = await user(platform, "leader", "supervisor")
    r = await client.post("/api/v1/approvals", json={"channel_ids": [HOSPITAL], "actions": ["device.ptz"],
                                                     "purpose": "追踪嫌疑车辆", "max_uses": 1}, headers=op_h)
    rid = r.json()["id"]
    assert (await client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=sup)).status_code == 200
    p = await principal(platform, op_h)
    ch = await platform.registry.get_channel(HOSPITAL)
    book = platform.access.book
    from xueliang.access.book import Rule

    saved = book.rules_for("device.ptz")
    book.set_rules([*book.rules, Rule(name="all-ptz", actions=frozenset({"device.ptz"}), classes=None,
                                      key_site=None, tiers=None, outside_department=False,
                                      require="approval", case_required=False)])
    try:
        ok = 0
        for _ in range(10):
            tok = context.bind(context.RequestContext())
            try:
                authorize(p, Action.PTZ, ch)
                ok += 1
            except ApprovalRequired:
                pass
            finally:
                context.unbind(tok)
        assert ok == 1
    finally:
        book.set_rules([r for r in book.rules if r.name != "all-ptz"])
        assert book.rules_for("device.ptz") == saved


async def test_a_reload_between_a_use_and_its_write_does_not_give_the_use_back(
    client: httpx.AsyncClient, platform: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uses are counted in memory and written in the background; grants are reloaded from the
    database every access.reload_seconds. A reload that read the count before the write made
    a one-use approval usable again."""
    op_h = await user(platform, "duty", "operator")
    sup = await user(platform, "leader", "supervisor")
    access = platform.access
    real = access.grants.record_use

    async def slow_write(grant_id: int, delta: int = 1) -> None:
        await asyncio.sleep(0.3)
        await real(grant_id, delta)

    monkeypatch.setattr(access.grants, "record_use", slow_write)
    rid = await _request(client, op_h, max_uses=1)
    assert (await client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=sup)).status_code == 200
    p = await principal(platform, op_h)
    ch = await platform.registry.get_channel(SCHOOL_KEY)

    def use() -> bool:
        ctx = context.RequestContext(purpose="取证")
        tok = context.bind(ctx)
        try:
            authorize(p, Action.DOWNLOAD, ch)
            return True
        except ApprovalRequired:
            return False
        finally:
            context.unbind(tok)

    assert use()  # the one use, not written yet
    await access.reload()  # reads 0 uses from the database
    assert not use(), "a reload gave the use back"
    for _ in range(100):  # written
        async with platform.sessions() as s:
            if await s.scalar(select(AccessGrant.uses).where(AccessGrant.approval_id == rid)) == 1:
                break
        await asyncio.sleep(0.02)
    await access.reload()
    assert not use()
    # A use given back (the action failed) is usable again, before and after its write.
    gid = next(g.id for g in access.book.grants.values() if g.approval_id == rid)
    access.book.release(access.book.grants[gid])
    await access.reload()
    assert use()
    await asyncio.sleep(0.7)
    await access.reload()
    assert not use()
