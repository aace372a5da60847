"""Approval of sensitive use (安全使用审核): request, approve or refuse, withdraw. Visible to the
requester, to those who may decide, and to auditors."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from xueliang.access import context
from xueliang.access.approvals import describe
from xueliang.api.deps import AccessDep, Approver, PrincipalDep

router = APIRouter(tags=["approvals"])


class ApprovalIn(BaseModel):
    channel_ids: list[str] = Field(min_length=1, max_length=200)
    actions: list[str] = Field(min_length=1)
    purpose: str = Field(min_length=2, max_length=1000)
    case: str | None = Field(default=None, max_length=100)
    #: How long the approval should last, minutes (default access.approval_default_minutes).
    minutes: int | None = Field(default=None, ge=1)
    #: Limit the number of uses (e.g. 1 for one export).
    max_uses: int | None = Field(default=None, ge=1)


class DecisionIn(BaseModel):
    note: str = Field(default="", max_length=1000)
    #: Approve for less time than requested.
    minutes: int | None = Field(default=None, ge=1)


@router.post("/approvals", status_code=201)
async def request_approval(body: ApprovalIn, access: AccessDep, p: PrincipalDep) -> dict[str, Any]:
    r = await access.approvals.request(
        p, body.channel_ids, body.actions, body.purpose, body.case, body.minutes, body.max_uses
    )
    ctx = context.current()
    if ctx is not None:
        ctx.purpose = ctx.purpose or r.purpose
        ctx.case_ref = ctx.case_ref or r.case_ref
        ctx.describe("approval.request", "approval", r.id, channels=r.channel_ids, actions=r.actions,
                     minutes=r.minutes)
    return describe(r)


@router.get("/approvals")
async def list_approvals(
    access: AccessDep,
    p: PrincipalDep,
    box: Literal["mine", "todo", "decided", "all"] = "mine",
    status: str | None = None,
    limit: int = Query(default=200, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """``mine``: my requests; ``todo``: pending requests I may decide; ``decided``: what I
    decided; ``all``: everything (auditors, administrators)."""
    return [describe(r) for r in await access.approvals.search(p, box, status, limit)]


@router.get("/approvals/{request_id}")
async def get_approval(request_id: int, access: AccessDep, p: PrincipalDep) -> dict[str, Any]:
    return describe(await access.approvals.get(p, request_id))


@router.post("/approvals/{request_id}/approve")
async def approve(request_id: int, body: DecisionIn, access: AccessDep, p: Approver) -> dict[str, Any]:
    ctx = context.current()
    if ctx is not None:
        ctx.describe("approval.approve", "approval", request_id, note=body.note)
    r = await access.approvals.decide(p, request_id, True, body.note, body.minutes)
    if ctx is not None:
        ctx.detail.update(requester=r.requester, grant_id=r.grant_id, channels=r.channel_ids,
                          actions=r.actions)
    return describe(r)


@router.post("/approvals/{request_id}/refuse")
async def refuse(request_id: int, body: DecisionIn, access: AccessDep, p: Approver) -> dict[str, Any]:
    ctx = context.current()
    if ctx is not None:
        ctx.describe("approval.refuse", "approval", request_id, note=body.note)
    r = await access.approvals.decide(p, request_id, False, body.note)
    if ctx is not None:
        ctx.detail.update(requester=r.requester)
    return describe(r)


@router.post("/approvals/{request_id}/withdraw")
async def withdraw(request_id: int, access: AccessDep, p: PrincipalDep) -> dict[str, Any]:
    context.describe("approval.withdraw", "approval", request_id)
    return describe(await access.approvals.withdraw(p, request_id))
