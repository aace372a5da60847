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
