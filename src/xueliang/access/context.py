"""The request context: who asks, from where, with what stated purpose — and what was decided.

The HTTP middleware (api/security.py) binds one :class:`RequestContext` per request;
dependencies and :func:`xueliang.access.policy.authorize` fill it in; the middleware writes the
audit record from it when the response starts. Outside a request (CLI, tests, background tasks)
there is no context and authorization still works: it just cannot see a purpose.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

MAX_PURPOSE = 1000
MAX_CASE = 100


@dataclass(slots=True)
class RequestContext:
    ip: str = ""
    method: str = ""
    path: str = ""
    #: 使用事由 and 案件/工单号, as stated by the caller (X-Purpose / X-Case, URL-encoded).
    purpose: str | None = None
    case_ref: str | None = None
    #: Set by the authentication dependency.
    principal: Any = None
    #: The last action authorized (or refused) and its resource.
    action: str | None = None
    resource_type: str = ""
    resource_id: str = ""
    resource_department: str | None = None
    #: The action is one whose reads are audited too (media, audit, exports).
    sensitive: bool = False
    #: Which approval grant allowed the action.
    approval_id: int | None = None
    #: Why the request was refused, when it was.
    refused: str | None = None
    #: Uses of limited approval grants taken by this request: they stand if it succeeds and
    #: are given back if it fails (the access middleware settles them at the response).
    reserved_uses: list[Any] = field(default_factory=list)
    #: A route that writes its own audit record (login) sets this so the middleware does not.
    audited: bool = False
    #: Extra fields for the audit record (never secrets).
    detail: dict[str, Any] = field(default_factory=dict)
    #: A name for what happened, when a route knows better than the action (e.g.
    #: "grant.create", "approval.approve"); the audit record's action.
    event: str | None = None

    def describe(self, event: str, resource_type: str = "", resource_id: object = "", **detail: Any) -> None:
        self.event = event
        if resource_type:
            self.resource_type = resource_type
            self.resource_id = str(resource_id)
        self.detail.update(detail)

    def note(self, action: str, resource: Any, sensitive: bool) -> None:
        self.action = action
        self.sensitive = self.sensitive or sensitive
        if resource is not None:
            self.resource_type = str(getattr(resource, "__tablename__", "") or type(resource).__name__).rstrip("s")
            self.resource_id = str(getattr(resource, "id", "") or "")
            dept = getattr(resource, "department", None)
            self.resource_department = str(dept) if dept is not None else None


_current: ContextVar[RequestContext | None] = ContextVar("xueliang_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


def describe(event: str, resource_type: str = "", resource_id: object = "", **detail: Any) -> None:
    """Name what the current request did, for its audit record (nothing outside a request)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.describe(event, resource_type, resource_id, **detail)


def bind(ctx: RequestContext | None) -> Token[RequestContext | None]:
    return _current.set(ctx)


def unbind(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def clean_purpose(text: str | None, limit: int = MAX_PURPOSE) -> str | None:
    """Trim and bound a stated purpose; control characters become spaces."""
    if text is None:
        return None
    t = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).strip()
    return t[:limit] or None
