"""Sensitive use: a stated purpose (403 purpose-required until X-Purpose comes), approvals by a
second authorised person, and the ways approvals are refused (replay, expiry, another user,
the requester deciding, an approver outside the scope)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from sqlalchemy import select

from tests.access.conftest import HOSPITAL, LOOKOUT, SCHOOL, SCHOOL_KEY, principal, purpose, user
from xueliang.access import context
from xueliang.access.policy import Action, ApprovalRequired, PurposeRequired, authorize
from xueliang.db.tables import AuditRecord
from xueliang.errors import Forbidden

WHEN = {"start": "2026-01-01T00:00:00", "end": "2026-01-01T01:00:00"}


async def test_purpose_required_flow(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    op = await user(platform, "duty", "operator")
    # Class-I camera playback: 403 purpose-required, then the console retries with the purpose.
    r = await client.post(f"/api/v1/channels/{LOOKOUT}/playback", json=WHEN, headers=op)
    assert r.status_code == 403
    body = r.json()
    assert body["type"].endswith("purpose-required") and body["rule"] == "class-i-footage"
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.post(f"/api/v1/channels/{LOOKOUT}/playback", json=WHEN,
                          headers=op | purpose("调查交通事故", "JQ2026-0042"))
    assert r.status_code == 404, r.text  # authorized: the camera just has no device here
    # Not sensitive: an ordinary class-II camera needs no purpose.
    r = await client.post(f"/api/v1/channels/{HOSPITAL}/playback", json=WHEN, headers=op)
    assert r.status_code == 404
    # PTZ on a high lookout camera.
    r = await client.post(f"/api/v1/channels/{LOOKOUT}/ptz", json={"action": "stop"}, headers=op)
    assert r.status_code == 403 and r.json()["rule"] == "lookout-ptz"
    r = await client.post(f"/api/v1/channels/{LOOKOUT}/ptz", json={"action": "stop"}, headers=op | purpose("防汛巡查"))
    assert r.status_code == 503  # authorized; signalling is off
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        rows = (await s.execute(
            select(AuditRecord.action, AuditRecord.outcome, AuditRecord.purpose, AuditRecord.case_ref,
                   AuditRecord.resource_id, AuditRecord.resource_department)
            .where(AuditRecord.actor == "duty").order_by(AuditRecord.seq))).all()
    assert ("media.playback", "denied", None, None, LOOKOUT, "公安局") in rows
    assert ("media.playback", "failed", "调查交通事故", "JQ2026-0042", LOOKOUT, "公安局") in rows
    assert ("device.ptz", "error", "防汛巡查", None, LOOKOUT, "公安局") in rows  # 503: signalling off


async def test_purpose_via_context_and_media_token(platform) -> None:  # type: ignore[no-untyped-def]
    access = platform.access
    await access.ready()
    op = await user(platform, "duty", "operator")
    p = await principal(platform, op)
    ch = await platform.registry.get_channel(LOOKOUT)
    with pytest.raises(PurposeRequired):
        authorize(p, Action.PLAYBACK, ch)
    tok = context.bind(context.RequestContext(purpose="x"))
    try:
        with pytest.raises(PurposeRequired):  # a purpose of one character says nothing
            authorize(p, Action.PLAYBACK, ch)
    finally:
        context.unbind(tok)
    ctx = context.RequestContext(purpose="巡查", case_ref="A1")
    tok = context.bind(ctx)
    try:
        authorize(p, Action.PLAYBACK, ch)
        # A media token issued now carries the purpose to the player's URL.
        login = platform.users.issue(await platform.users.by_name("duty"))
        _, cred = await platform.users.authenticate(login)
        media = platform.users.media_token(p, cred, f"channel:{LOOKOUT}", Action.PLAYBACK.value, 60)
    finally:
        context.unbind(tok)
    ctx2 = context.RequestContext()
    tok = context.bind(ctx2)
    try:
        p2 = await platform.users.principal_for_token(media, query=True)
        authorize(p2, Action.PLAYBACK, ch)
        assert ctx2.purpose == "巡查" and ctx2.case_ref == "A1"
    finally:
        context.unbind(tok)
    # Viewing outside one's department through a sharing grant asks for a purpose too.
    await access.grants.create(department="教育局", channel_ids=[HOSPITAL], actions=["media.live"])
    edu = await principal(platform, await user(platform, "edu", "department_user", department="教育局"))
    with pytest.raises(PurposeRequired, match="outside-department"):
        authorize(edu, Action.LIVE_VIEW, await platform.registry.get_channel(HOSPITAL))
    authorize(edu, Action.LIVE_VIEW, await platform.registry.get_channel(SCHOOL))  # own: no purpose


async def test_approval_flow_and_replays(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    op = await user(platform, "duty", "operator")
    sup = await user(platform, "leader", "supervisor", department="教育局")
    other_sup = await user(platform, "leader2", "supervisor", department="卫健委")
    aud = await user(platform, "aud", "auditor")
    op2 = await user(platform, "duty2", "operator")
    # Export (download) of a key-site camera needs an approval: a purpose alone is not enough.
    url = f"/api/v1/channels/{SCHOOL_KEY}/download"
    r = await client.post(url, json=WHEN, headers=op | purpose("取证"))
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required"), r.text
    r = await client.post("/api/v1/approvals", json={
        "channel_ids": [SCHOOL_KEY], "actions": ["media.download"], "purpose": "刑事案件取证",
        "case": "XA-2026-7", "minutes": 30, "max_uses": 1}, headers=op)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    # Visible to the requester, to who may decide, and to auditors; not to others.
    assert [x["id"] for x in (await client.get("/api/v1/approvals", headers=op)).json()] == [rid]
    assert [x["id"] for x in (await client.get("/api/v1/approvals?box=todo", headers=sup)).json()] == [rid]
    assert (await client.get("/api/v1/approvals?box=todo", headers=other_sup)).json() == []
    assert (await client.get(f"/api/v1/approvals/{rid}", headers=aud)).status_code == 200
    assert (await client.get(f"/api/v1/approvals/{rid}", headers=op2)).status_code == 404
    assert (await client.get("/api/v1/approvals?box=all", headers=aud)).status_code == 200
    # The requester cannot decide; a supervisor of another department cannot either.
    assert (await client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=op)).status_code == 403
    assert (await client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=other_sup)).status_code == 403
    r = await client.post(f"/api/v1/approvals/{rid}/approve", json={"note": "同意"}, headers=sup)
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["grant_id"]
    # Replayed decisions are refused.
    assert (await client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=sup)).status_code == 409
    assert (await client.post(f"/api/v1/approvals/{rid}/refuse", json={}, headers=sup)).status_code == 409
    # Another operator cannot use it; the requester can, once (max_uses 1), without restating.
    assert (await client.post(url, json=WHEN, headers=op2 | purpose("取证"))).status_code == 403
    r = await client.post(url, json=WHEN, headers=op)
    assert r.status_code == 404, r.text  # authorized (but no device here: nothing was downloaded)
    grant = platform.access.book.grants[platform.access.book.approval_for(
        await principal(platform, op), "media.download", await platform.registry.get_channel(SCHOOL_KEY),
        time.time()).id]
    assert grant.uses == 0  # a failed action gives its use back
    r = await client.post(url, json=WHEN, headers=op)
    assert r.status_code == 404, r.text  # so it is still authorized
    # A use that succeeds stands (the middleware settles a request's uses at its response).
    from xueliang.access import context
    from xueliang.api.security import SecurityMiddleware

    ctx = context.RequestContext()
    p_op, key = await principal(platform, op), await platform.registry.get_channel(SCHOOL_KEY)
    bound = context.bind(ctx)
    try:
        authorize(p_op, Action.DOWNLOAD, key)
    finally:
        context.unbind(bound)
    assert grant.uses == 1 and ctx.reserved_uses == [grant]
    SecurityMiddleware(None, platform)._settle_uses(ctx, True)  # type: ignore[arg-type]
    assert grant.uses == 1
    from xueliang.db.tables import AccessGrant

    for _ in range(100):  # the count is persisted in the background: +1 -1 +1 -1 +1
        async with platform.sessions() as s:
            if await s.scalar(select(AccessGrant.uses).where(AccessGrant.id == grant.id)) == 1:
                break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the database does not hold one use")
    r = await client.post(url, json=WHEN, headers=op)
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required")
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        used = (await s.execute(select(AuditRecord.purpose, AuditRecord.detail).where(
            AuditRecord.actor == "duty", AuditRecord.action == "media.download", AuditRecord.status == 404))).all()
        decided = (await s.execute(select(AuditRecord.actor, AuditRecord.outcome).where(
            AuditRecord.action.in_(["approval.approve", "access.approve"])))).all()
    assert used and used[0][0].startswith("刑事案件取证") and json.loads(used[0][1])["approval_id"] == rid
    assert ("leader", "ok") in decided and ("duty", "denied") in decided
    # A refused request cannot be approved afterwards; an expired approval is refused.
    r2 = (await client.post("/api/v1/approvals", json={"channel_ids": [SCHOOL_KEY], "actions": ["media.download"],
                                                      "purpose": "再次取证"}, headers=op)).json()["id"]
    assert (await client.post(f"/api/v1/approvals/{r2}/refuse", json={"note": "no"}, headers=sup)).status_code == 200
    assert (await client.post(f"/api/v1/approvals/{r2}/approve", json={}, headers=sup)).status_code == 409
    r3 = (await client.post("/api/v1/approvals", json={"channel_ids": [SCHOOL_KEY], "actions": ["media.download"],
                                                      "purpose": "第三次"}, headers=op)).json()["id"]
    g = (await client.post(f"/api/v1/approvals/{r3}/approve", json={}, headers=sup)).json()["grant_id"]
    spec = platform.access.book.grants[g]
    spec.valid_until = time.time() - 1
    platform.access.book.put(spec)
    assert (await client.post(url, json=WHEN, headers=op)).status_code == 403
    # An approval does not change roles: a department user cannot ask for downloads.
    edu = await user(platform, "edu", "department_user", department="教育局")
    r = await client.post("/api/v1/approvals", json={"channel_ids": [SCHOOL_KEY], "actions": ["media.download"],
                                                     "purpose": "想下载"}, headers=edu)
    assert r.status_code == 403
    # A lapsed request cannot be decided.
    r4 = (await client.post("/api/v1/approvals", json={"channel_ids": [SCHOOL_KEY], "actions": ["media.download"],
                                                      "purpose": "过期"}, headers=op)).json()["id"]
    from sqlalchemy import update

    from xueliang.db.tables import ApprovalRequest

    async with platform.sessions() as s, s.begin():
        from datetime import UTC, datetime, timedelta

        await s.execute(update(ApprovalRequest).where(ApprovalRequest.id == r4)
                        .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    r = await client.post(f"/api/v1/approvals/{r4}/approve", json={}, headers=sup)
    assert r.status_code == 409 and "lapsed" in r.json()["detail"]


async def test_approval_opens_a_channel_outside_scope_for_its_time(platform) -> None:  # type: ignore[no-untyped-def]
    access = platform.access
    await access.ready()
    edu = await principal(platform, await user(platform, "edu", "department_user", department="教育局"))
    admin = await principal(platform, {"Authorization": "Bearer " + platform.users.issue(await platform.users.by_name("root"))})
    ch = await platform.registry.get_channel(HOSPITAL)
    with pytest.raises(Forbidden, match="outside your scope"):
        authorize(edu, Action.LIVE_VIEW, ch)
    req = await access.approvals.request(edu, [HOSPITAL], ["media.live"], "协查", minutes=5)
    await access.approvals.decide(admin, req.id, True)
    tok = context.bind(context.RequestContext())
    try:
        authorize(edu, Action.LIVE_VIEW, ch)  # the approval's purpose stands for the viewing
        with pytest.raises(Forbidden):
            authorize(edu, Action.PLAYBACK, ch)  # only what was approved
    finally:
        context.unbind(tok)
    await access.approvals.withdraw(edu, req.id)
    with pytest.raises(Forbidden):
        authorize(edu, Action.LIVE_VIEW, ch)
    with pytest.raises(ApprovalRequired):
        authorize(await principal(platform, await user(platform, "d", "operator")), Action.DOWNLOAD,
                  await platform.registry.get_channel(SCHOOL_KEY))
