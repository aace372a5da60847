"""Authorization: one function decides every request (`authorize`).

Roles grant actions; API tokens may narrow them further. Scopes narrow which channels: the
user's own (division subtree, department, point classes, coverage, catalog groups) united with
the sharing grants to the user or their department, and approval grants (access/book.py).
Rules mark some actions on some channels sensitive: they need a stated purpose, sometimes a
second person's approval (access/approvals.py). Listings use :func:`scope_conditions`, the
same scope as SQL, so they never show what :func:`authorize` refuses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from xueliang.access import context
from xueliang.access.book import CompiledScope, PolicyBook
from xueliang.access.scope import Selector, base_selector
from xueliang.actions import (
    CHANNEL_ACTIONS as CHANNEL_ACTIONS,  # re-exported: the policy speaks of them
)
from xueliang.actions import Action as Action
from xueliang.errors import Forbidden

A = Action
ROLES: dict[str, frozenset[Action]] = {
    "administrator": frozenset(Action),
    "operator": frozenset(
        {
            A.REGISTRY_READ,
            A.STATS_READ,
            A.LIVE_VIEW,
            A.PLAYBACK,
            A.DOWNLOAD,
            A.PTZ,
            A.DEVICE_QUERY,
            A.DEVICE_CONTROL,
            A.HEALTH_READ,
            A.TICKETS_MANAGE,
            A.REPORTS_READ,
            A.INCIDENTS_READ,
            A.INCIDENTS_CREATE,
            A.INCIDENTS_MANAGE,
            A.RECORDING_TRIGGER,
            A.EXPORT,
            A.EVIDENCE_HOLD,
            A.RESIDENTS_MANAGE,
        }
    ),
    "department_user": frozenset(
        {A.REGISTRY_READ, A.STATS_READ, A.LIVE_VIEW, A.PLAYBACK, A.HEALTH_READ, A.INCIDENTS_READ,
         A.INCIDENTS_HANDLE}
    ),
    "maintainer": frozenset(
        {
            A.REGISTRY_READ,
            A.STATS_READ,
            A.LIVE_VIEW,
            A.DEVICE_QUERY,
            A.DEVICE_CONTROL,
            A.SIGNALLING_MANAGE,
            A.HEALTH_READ,
            A.TICKETS_WORK,
        }
    ),
    #: Leaders who approve sensitive use (审批人) within their own scope.
    "supervisor": frozenset(
        {A.REGISTRY_READ, A.STATS_READ, A.LIVE_VIEW, A.PLAYBACK, A.DOWNLOAD, A.APPROVE,
         A.HEALTH_READ, A.REPORTS_READ, A.INCIDENTS_READ, A.EXPORT, A.EVIDENCE_HOLD, A.EVIDENCE_RELEASE}
    ),
    "auditor": frozenset(
        {A.REGISTRY_READ, A.STATS_READ, A.AUDIT_READ, A.ACCESS_READ, A.HEALTH_READ, A.REPORTS_READ}
    ),
    #: Residents (居民) who joined with an invitation code: the resident-visible cameras of their
    #: village or compound (access/scope.py), and their own reports (the phone app).
    "resident": frozenset({A.LIVE_VIEW, A.INCIDENTS_REPORT}),
    #: Grid members (网格员): report from the phone app, their position, and the cases dispatched
    #: to their grid's department (acknowledge, feed back).
    "grid_member": frozenset({A.INCIDENTS_READ, A.INCIDENTS_HANDLE, A.INCIDENTS_REPORT, A.GRID_POSITION}),
    #: A linked emergency agency (110/119/120/122) in the joint-handling view: its own cases,
    #: and live video of the cameras near them while it handles them.
    "agency": frozenset({A.INCIDENTS_JOINT, A.LIVE_VIEW}),
    "system": frozenset({A.REGISTRY_READ, A.STATS_READ, A.METRICS_READ, A.LIVE_VIEW}),
}

#: Actions whose reads are audited too (a GET that authorizes one of these is recorded).
SENSITIVE = frozenset({A.LIVE_VIEW, A.PLAYBACK, A.DOWNLOAD, A.PTZ, A.AUDIT_READ, A.ACCESS_READ, A.EXPORT})

PROBLEM_BASE = "urn:xueliang:problem:"


class PurposeRequired(Forbidden):
    """A sensitive action without a stated purpose: retry with X-Purpose (and X-Case)."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, type=PROBLEM_BASE + "purpose-required", **extra)


class ApprovalRequired(Forbidden):
    """A sensitive action that needs a second person's approval: POST /api/v1/approvals."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, type=PROBLEM_BASE + "approval-required", **extra)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the user (or system, through an API token) as authorization sees it."""

    user_id: int
    username: str
    role: str
    department: str | None = None
    division_code: str | None = None
    #: Further narrowing of the own scope (point classes, groups, coverage).
    scope: Selector | None = None
    #: An API token's scopes: the actions are the role's within these.
    token_scopes: frozenset[str] | None = None
    token_id: int | None = None
    #: Grants and rules (None: only the own scope counts, no rules — e.g. bare unit tests).
    book: PolicyBook | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def unrestricted(self) -> bool:
        return base_selector(self.role, self.department, self.division_code, self.scope) is None

    @property
    def actions(self) -> frozenset[Action]:
        allowed = ROLES.get(self.role, frozenset())
        if self.token_scopes is not None:
            allowed = frozenset(a for a in allowed if a.value in self.token_scopes)
        return allowed


def _standalone_book() -> PolicyBook:
    global _EMPTY_BOOK
    if _EMPTY_BOOK is None:
        _EMPTY_BOOK = PolicyBook()
    return _EMPTY_BOOK


_EMPTY_BOOK: PolicyBook | None = None


def compiled(p: Principal, now: float | None = None) -> CompiledScope:
    return (p.book or _standalone_book()).scope_for(p, now)


def authorize(p: Principal, action: Action, resource: Any = None) -> None:
    """Raise Forbidden unless ``p`` may do ``action`` on ``resource`` (a channel-like object or None).

    Checks, in order: the role (and API token scopes) allow the action; the resource is in the
    principal's scope (own scope or a grant for this action); the sensitive-action rules are
    met (a stated purpose in the request context; an approval grant when a rule demands one).
    """
    ctx = context.current()
    if ctx is not None:
        ctx.note(action.value, resource, action in SENSITIVE)
    check_role(p, action, ctx)
    book = p.book
    now = time.time()
    if resource is not None and not (book or _standalone_book()).scope_for(p, now).match(action.value, resource):
        _refuse(ctx, f"{getattr(resource, 'id', 'resource')} is outside your scope")
    if book is None:
        return
    rules = book.rules_for(action.value)
    # Rules on channel actions are decided on the channel: a check made before the channel is
    # known (a route's declared action) cannot tell whether one applies, nor find the approval
    # that meets it, so it leaves them to the channel's own check (every route that acts on a
    # channel makes one). Asked here, a rule without channel conditions refused everyone.
    if rules and (resource is not None or action not in CHANNEL_ACTIONS):
        _check_rules(p, book, rules, action, resource, ctx, now)


def check_role(p: Principal, action: Action, ctx: context.RequestContext | None = None) -> None:
    """The role (and API token scopes) allow ``action``: the part of :func:`authorize` that
    does not depend on any resource."""
    role_actions = ROLES.get(p.role)
    if role_actions is None or action not in role_actions:
        _refuse(ctx, f"role {p.role} may not {action.value}")
    if p.token_scopes is not None and action.value not in p.token_scopes:
        _refuse(ctx, f"this API token is not scoped for {action.value}")


def authorize_found(p: Principal, action: Action, resource: Any, missing: Exception) -> None:
    """:func:`authorize` for a resource looked up by an ID the caller chose: one outside the
    caller's scope is answered with ``missing`` (the same NotFound as an ID that does not
    exist), so that answers never tell which IDs exist. The role is checked first, before
    anything about the resource, for the same reason."""
    ctx = context.current()
    if ctx is not None:
        ctx.note(action.value, resource, action in SENSITIVE)
    check_role(p, action, ctx)
    if resource is None or not compiled(p).match(action.value, resource):
        if ctx is not None:  # the audit keeps the true reason; the caller sees "not found"
            ctx.refused = "not found" if resource is None else f"{getattr(resource, 'id', 'resource')} is outside your scope"
        raise missing
    authorize(p, action, resource)


def _refuse(
    ctx: context.RequestContext | None, why: str, exc: type[Forbidden] = Forbidden, **extra: Any
) -> NoReturn:
    if ctx is not None:
        ctx.refused = why
    raise exc(why, **extra)


def _check_rules(
    p: Principal, book: PolicyBook, rules: tuple[Any, ...], action: Action, resource: Any,
    ctx: context.RequestContext | None, now: float,
) -> None:
    need_purpose = need_case = False
    approval_rule = None
    purpose_rule = None
    for r in rules:
        if r.applies(p.department, resource):
            if r.require == "approval":
                approval_rule = approval_rule or r
            need_purpose = True
            purpose_rule = purpose_rule or r
            need_case = need_case or r.case_required
    if not need_purpose:
        return
    rid = getattr(resource, "id", None)
    purpose = ctx.purpose if ctx is not None else None
    has_purpose = purpose is not None and len(purpose) >= 2
    grant = None
    if approval_rule is not None or not has_purpose:
        grant = book.approval_for(p, action.value, resource, now) if resource is not None else None
    if approval_rule is not None and grant is None:
        _refuse(
            ctx,
            f"{action.value} on {rid or 'this resource'} needs an approved request "
            f"(rule {approval_rule.name}): POST /api/v1/approvals",
            ApprovalRequired,
            rule=approval_rule.name,
            action=action.value,
            channel_id=rid,
        )
    if grant is not None:
        # An approval covers the action; its purpose stands when none is restated.
        if ctx is not None:
            ctx.approval_id = grant.approval_id
            if not has_purpose and grant.reason:
                ctx.purpose = grant.reason
                ctx.detail["purpose_from_approval"] = True
        book.use(grant)  # taken now, so that two requests cannot share the last use
        if ctx is not None:
            ctx.reserved_uses.append(grant)
        return
    case = ctx.case_ref if ctx is not None else None
    if not has_purpose or (need_case and not case):
        assert purpose_rule is not None
        what = "a purpose and a case number" if need_case else "a purpose"
        _refuse(
            ctx,
            f"{action.value} on {rid or 'this resource'} is sensitive (rule {purpose_rule.name}): "
            f"state {what} (headers X-Purpose and X-Case, URL-encoded)",
            PurposeRequired,
            rule=purpose_rule.name,
            action=action.value,
            channel_id=rid,
            case_required=need_case,
        )


def requirement(p: Principal, action: Action, resource: Any) -> dict[str, Any]:
    """What ``authorize`` would ask for, without asking (for the console and /access/check)."""
    book = p.book
    out: dict[str, Any] = {"purpose": False, "case": False, "approval": False, "rules": []}
    if book is None:
        return out
    for r in book.rules_for(action.value):
        if r.applies(p.department, resource):
            out["rules"].append(r.name)
            out["purpose"] = True
            out["case"] = out["case"] or r.case_required
            out["approval"] = out["approval"] or r.require == "approval"
    if out["approval"] and book.approval_for(p, action.value, resource, time.time()) is not None:
        out["approved"] = True
    return out


def in_scope(p: Principal, resource: Any, action: Action = Action.REGISTRY_READ) -> bool:
    """Is ``resource`` within what ``p`` may reach for ``action`` (scope only: no role, no rules)."""
    return compiled(p).match(action.value, resource)


def scope_conditions(p: Principal, action: Action = Action.REGISTRY_READ) -> list[Any]:
    """The same scope as SQL conditions on channels, so listings never show what `in_scope` refuses."""
    return compiled(p).sql(action.value)
