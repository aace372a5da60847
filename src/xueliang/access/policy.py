"""Authorization: one function decides every request (`authorize`).

Roles grant actions. Scopes (division subtree, department) narrow what a user sees; the
access-control issue extends this with grants, point classes and approvals, behind the same
function.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from xueliang.errors import Forbidden


class Action(StrEnum):
    REGISTRY_READ = "registry.read"
    REGISTRY_MANAGE = "registry.manage"
    USERS_MANAGE = "users.manage"
    STATS_READ = "stats.read"
    LIVE_VIEW = "media.live"
    PLAYBACK = "media.playback"
    DOWNLOAD = "media.download"
    PTZ = "device.ptz"
    DEVICE_CONTROL = "device.control"
    DEVICE_QUERY = "device.query"
    SIGNALLING_MANAGE = "signalling.manage"
    AUDIT_READ = "audit.read"
    METRICS_READ = "metrics.read"


A = Action
ROLES: dict[str, frozenset[Action]] = {
    "administrator": frozenset(Action),
    "operator": frozenset({A.REGISTRY_READ, A.STATS_READ, A.LIVE_VIEW, A.PLAYBACK, A.DOWNLOAD, A.PTZ,
                          A.DEVICE_QUERY, A.DEVICE_CONTROL}),
    "department_user": frozenset({A.REGISTRY_READ, A.STATS_READ, A.LIVE_VIEW, A.PLAYBACK}),
    "maintainer": frozenset({A.REGISTRY_READ, A.STATS_READ, A.LIVE_VIEW, A.DEVICE_QUERY, A.DEVICE_CONTROL,
                            A.SIGNALLING_MANAGE}),
    "auditor": frozenset({A.REGISTRY_READ, A.STATS_READ, A.AUDIT_READ}),
    "resident": frozenset({A.LIVE_VIEW}),
    "system": frozenset({A.REGISTRY_READ, A.STATS_READ, A.METRICS_READ, A.LIVE_VIEW}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the user as authorization sees it."""

    user_id: int
    username: str
    role: str
    department: str | None = None
    division_code: str | None = None

    @property
    def unrestricted(self) -> bool:
        return self.role in ("administrator", "auditor") or (self.department is None and self.division_code is None)


def authorize(p: Principal, action: Action, resource: Any = None) -> None:
    """Raise Forbidden unless ``p`` may do ``action`` on ``resource`` (a channel-like object or None)."""
    allowed = ROLES.get(p.role, frozenset())
    if action not in allowed:
        raise Forbidden(f"role {p.role} may not {action.value}")
    if resource is not None and not in_scope(p, resource):
        raise Forbidden(f"{getattr(resource, 'id', 'resource')} is outside your scope")


def in_scope(p: Principal, resource: Any) -> bool:
    if p.unrestricted:
        return True
    if p.division_code and not str(getattr(resource, "division_code", "") or "").startswith(p.division_code):
        return False
    return not (p.department and getattr(resource, "department", None) != p.department)


def scope_conditions(p: Principal) -> list[Any]:
    """The same scope as SQL conditions on channels, so listings never show what `in_scope` refuses."""
    from xueliang.db.tables import Channel
    from xueliang.registry.vocab import subtree_bounds

    if p.unrestricted:
        return []
    c: list[Any] = []
    if p.division_code:
        lo, hi = subtree_bounds(p.division_code)
        c += [Channel.division_code >= lo, Channel.division_code < hi]
    if p.department:
        c.append(Channel.department == p.department)
    return c
