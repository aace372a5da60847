"""Rules that name no channel condition apply to every channel, and an approval lets its
requester through them, within its limits (issue 10, item 11): a rule with no channel
conditions blocked the action for everyone, an approval notwithstanding."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.access.conftest import HOSPITAL, SCHOOL, principal, purpose, user
from xueliang.access import context
from xueliang.access.policy import Action, ApprovalRequired, PurposeRequired, authorize, requirement

WHEN = {"start": "2026-01-01T00:00:00", "end": "2026-01-01T01:00:00"}


@pytest.fixture
def access_config() -> dict[str, Any]:
    return {
        "totp_required_roles": [],
        "rules": [
            # Every export needs an approval; every playback a purpose: no channel conditions.
            {"name": "every-export", "actions": ["media.download"], "require": "approval"},
            {"name": "every-playback", "actions": ["media.playback"]},
            {"name": "every-ptz", "actions": ["device.ptz"], "require": "approval"},
        ],
    }


async def _approve(client: httpx.AsyncClient, requester: dict[str, str], approver: dict[str, str],
                   channels: list[str], actions: list[str], **kw: Any) -> int:
    r = await client.post("/api/v1/approvals", json={"channel_ids": channels, "actions": actions,
                                                     "purpose": "刑事案件取证", **kw}, headers=requester)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    r = await client.post(f"/api/v1/approvals/{rid}/approve", json={}, headers=approver)
    assert r.status_code == 200, r.text
    return int(r.json()["grant_id"])


async def test_rule_without_channel_conditions_and_an_approval(client: httpx.AsyncClient, platform: Any) -> None:
    op = await user(platform, "duty", "operator")
    op2 = await user(platform, "duty2", "operator")
    sup = await user(platform, "leader", "supervisor")
    url = f"/api/v1/channels/{HOSPITAL}/download"
    # Without an approval: refused, on every channel (the rule names none).
    for ch in (HOSPITAL, SCHOOL):
        r = await client.post(f"/api/v1/channels/{ch}/download", json=WHEN, headers=op | purpose("取证"))
        assert r.status_code == 403 and r.json()["type"].endswith("approval-required"), r.text
    gid = await _approve(client, op, sup, [HOSPITAL], ["media.download"], max_uses=3)
    # With it: allowed (404: the camera has no device here, so nothing is downloaded).
    r = await client.post(url, json=WHEN, headers=op)
    assert r.status_code == 404, r.text
    # /access/check says so too.
    r = await client.get(f"/api/v1/access/check?action=media.download&channel_id={HOSPITAL}", headers=op)
    assert r.status_code == 200 and r.json()["requires"].get("approved") is True, r.text
    # Only for the channel approved.
    r = await client.post(f"/api/v1/channels/{SCHOOL}/download", json=WHEN, headers=op)
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required")
    # Another user's approval does not help.
    r = await client.post(url, json=WHEN, headers=op2 | purpose("取证"))
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required")
    # Used up: refused.
    book = platform.access.book
    spec = book.grants[gid]
    spec.uses = spec.max_uses
    book.put(spec)
    r = await client.post(url, json=WHEN, headers=op)
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required")
    # Expired: refused.
    gid2 = await _approve(client, op, sup, [HOSPITAL], ["media.download"])
    assert (await client.post(url, json=WHEN, headers=op)).status_code == 404
    spec = book.grants[gid2]
    spec.valid_until = time.time() - 1
    book.put(spec)
    r = await client.post(url, json=WHEN, headers=op)
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required")


async def test_routes_that_check_the_action_first(client: httpx.AsyncClient, platform: Any) -> None:
    """PTZ (PtzOperator) and the recordings query check the action before the channel is known:
    that check asked the rule without a channel, found no approval for it, and refused the
    approved user too."""
    op = await user(platform, "duty", "operator")
    op2 = await user(platform, "duty2", "operator")
    sup = await user(platform, "leader", "supervisor")
    ptz = f"/api/v1/channels/{HOSPITAL}/ptz"
    r = await client.post(ptz, json={"action": "stop"}, headers=op | purpose("巡查"))
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required"), r.text
    await _approve(client, op, sup, [HOSPITAL], ["device.ptz"])
    r = await client.post(ptz, json={"action": "stop"}, headers=op)
    assert r.status_code == 503, r.text  # authorized; signalling is off
    r = await client.post(f"/api/v1/channels/{SCHOOL}/ptz", json={"action": "stop"}, headers=op)
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required")
    r = await client.post(ptz, json={"action": "stop"}, headers=op2 | purpose("巡查"))
    assert r.status_code == 403 and r.json()["type"].endswith("approval-required")
    # Recordings: the purpose rule asks on the channel; an approval's purpose stands for it.
    records = f"/api/v1/channels/{HOSPITAL}/records?start=2026-01-01T00:00:00&end=2026-01-01T01:00:00"
    r = await client.get(records, headers=op)
    assert r.status_code == 403 and r.json()["type"].endswith("purpose-required"), r.text
    await _approve(client, op, sup, [HOSPITAL], ["media.playback"])
    assert (await client.get(records, headers=op)).status_code == 503
    assert (await client.get(records, headers=op2)).status_code == 403


async def test_no_channel_no_rule_and_no_use(client: httpx.AsyncClient, platform: Any) -> None:
    """Without a channel, a channel action's rules are left to the channel's check: nothing is
    asked and no use of a limited approval is taken; with the channel, everything is."""
    op_h = await user(platform, "duty", "operator")
    sup = await user(platform, "leader", "supervisor")
    op = await principal(platform, op_h)
    ch = await platform.registry.get_channel(HOSPITAL)
    ctx = context.RequestContext()
    tok = context.bind(ctx)
    try:
        authorize(op, Action.DOWNLOAD)
        authorize(op, Action.PLAYBACK)
        with pytest.raises(ApprovalRequired):
            authorize(op, Action.DOWNLOAD, ch)
        with pytest.raises(PurposeRequired):
            authorize(op, Action.PLAYBACK, ch)
    finally:
        context.unbind(tok)
    await _approve(client, op_h, sup, [HOSPITAL], ["media.download"], max_uses=1)
    op = await principal(platform, op_h)
    ctx = context.RequestContext()
    tok = context.bind(ctx)
    try:
        authorize(op, Action.DOWNLOAD)
        assert ctx.reserved_uses == []
        assert requirement(op, Action.DOWNLOAD, ch).get("approved") is True
        authorize(op, Action.DOWNLOAD, ch)  # the channel's check takes the use
        assert len(ctx.reserved_uses) == 1
    finally:
        context.unbind(tok)


def test_an_approval_rule_for_an_action_approvals_cannot_give_is_refused() -> None:
    """An approval rule on an action that is not a channel action could never be met: it would
    block that action for everyone. The configuration refuses it."""
    from pydantic import ValidationError

    from xueliang.config import PurposeRule

    with pytest.raises(ValidationError, match="approval"):
        PurposeRule(name="x", actions=["audit.read"], require="approval")
    PurposeRule(name="x", actions=["audit.read"])  # a purpose rule is fine
    PurposeRule(name="x", actions=["media.download"], require="approval")
