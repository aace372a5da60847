"""The grant rules of docs/access.md, written out plainly as a reference for the property tests.

Written from the document only (sections "Roles", "Scopes", "Purpose and approval", "Choices
where the issue is silent"), not from access/scope.py, grants.py or book.py, so that a test
comparing the two finds where the code and the document part ways. Slow and obvious on
purpose: no compilation, no merging, no SQL; one channel, one question.

Where the document leaves a question open, the oracle takes the answer that shows less
(deny when in doubt); each such choice is marked *choice* below.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: "Roles" table: role → actions.
READ = {"registry.read", "stats.read"}
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "administrator": frozenset({
        "registry.read", "registry.manage", "users.manage", "stats.read", "media.live",
        "media.playback", "media.download", "device.ptz", "device.control", "device.query",
        "signalling.manage", "audit.read", "metrics.read", "access.read", "access.manage",
        "access.approve", "media.manage", "health.read", "tickets.work", "tickets.manage",
        "maintenance.manage", "reports.read",
    }),
    "operator": frozenset(READ | {"media.live", "media.playback", "media.download",
                                  "device.ptz", "device.query", "device.control",
                                  "health.read", "tickets.manage", "reports.read"}),
    "department_user": frozenset(READ | {"media.live", "media.playback", "health.read"}),
    "maintainer": frozenset(READ | {"media.live", "device.query", "device.control",
                                    "signalling.manage", "health.read", "tickets.work"}),
    "supervisor": frozenset(READ | {"media.live", "media.playback", "media.download",
                                    "access.approve", "health.read", "reports.read"}),
    "auditor": frozenset(READ | {"audit.read", "access.read", "health.read", "reports.read"}),
    "resident": frozenset({"media.live"}),
    "system": frozenset(READ | {"metrics.read", "media.live"}),
}
#: "A grant gives channel actions only (live, playback, download, PTZ)".
CHANNEL_ACTIONS = frozenset({"media.live", "media.playback", "media.download", "device.ptz"})
UNRESTRICTED_ROLES = frozenset({"administrator", "auditor"})


@dataclass(frozen=True)
class Chan:
    id: str
    kind: str = "camera"
    division_code: str | None = None
    department: str | None = None
    point_class: int | None = None
    coverage: str | None = None
    tier: str | None = None
    key_site: bool = False
    parent_id: str | None = None
    #: Marked by an administrator as fit for residents to watch (issue 16, the phone app).
    resident_visible: bool = False


@dataclass(frozen=True)
class Filter:
    """A scope's or a grant's filter: "the same fields as a scope". Every field given must
    hold; within a field, any listed value will do."""

    divisions: Sequence[str] | None = None
    departments: Sequence[str] | None = None
    point_classes: Sequence[int] | None = None
    coverages: Sequence[str] | None = None
    tiers: Sequence[str] | None = None
    key_site: bool | None = None
    groups: Sequence[str] | None = None

    @classmethod
    def of(cls, d: dict[str, object] | None) -> Filter | None:
        return None if d is None else cls(**d)  # type: ignore[arg-type]

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__dataclass_fields__)


@dataclass(frozen=True)
class User:
    user_id: int
    role: str
    department: str | None = None
    division_code: str | None = None
    scope: Filter | None = None


@dataclass(frozen=True)
class Grant:
    """A sharing grant (kind ``share``) or an approval's grant (kind ``approval``)."""

    actions: frozenset[str]
    user_id: int | None = None
    department: str | None = None
    filter: Filter | None = None
    ids: frozenset[str] = frozenset()
    valid_from: float | None = None
    valid_until: float | None = None
    kind: str = "share"
    revoked: bool = False


@dataclass
class World:
    """The channels' group tree: group id → its parent group (catalog 215/216 groups)."""

    group_parent: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, channels: Iterable[Chan]) -> World:
        return cls({c.id: c.parent_id for c in channels if c.kind == "group"})

    def subtree(self, group: str) -> set[str]:
        """The group and every group below it."""
        out = {group}
        changed = True
        while changed:
            changed = False
            for g, parent in self.group_parent.items():
                if parent in out and g not in out:
                    out.add(g)
                    changed = True
        return out


def in_division(code: str | None, division: str) -> bool:
    """"Collation: division subtrees are string ranges [code, code + ':')"."""
    return code is not None and division <= code < division + ":"


def matches(f: Filter, c: Chan, world: World) -> bool:
    if f.divisions is not None and not any(in_division(c.division_code, d) for d in f.divisions):
        return False
    if f.departments is not None and c.department not in f.departments:
        return False
    if f.point_classes is not None and c.point_class not in f.point_classes:
        return False
    if f.coverages is not None and c.coverage not in f.coverages:
        return False
    if f.tiers is not None and c.tier not in f.tiers:
        return False
    # *choice*: key_site false narrows to channels that are not key sites (a filter field,
    # like the others), rather than meaning "no condition".
    if f.key_site is not None and bool(c.key_site) != f.key_site:
        return False
    if f.groups is not None:
        # "a group scope covers cameras whose parent_id is the group or any of its
        # sub-groups"
        under: set[str] = set()
        for g in f.groups:
            under |= world.subtree(g)
        if c.parent_id not in under:
            return False
    return True


def own_scope(u: User, c: Chan, world: World) -> bool:
    """"The conjunction of division subtree, department, and users.scope"; administrators
    and auditors, and a user with no scope at all, are unrestricted; residents see coverage A
    unless their scope names coverages."""
    if u.role in UNRESTRICTED_ROLES:
        return True
    scope = u.scope if u.scope is not None and not u.scope.empty else None
    if u.role == "resident" and (scope is None or scope.coverages is None):
        # *choice*: the coverage-A limit holds for a resident with no scope at all too
        # (a resident is never a city-level operator).
        if c.coverage != "A":
            return False
    if u.role == "resident" and not c.resident_visible:
        # "Residents see only their place's resident-visible cameras" (issue 16), whatever
        # their stored scope says.
        return False
    if u.division_code is not None and not in_division(c.division_code, u.division_code):
        return False
    # *choice*: a channel without a department is outside every department's scope.
    if u.department is not None and c.department != u.department:
        return False
    return scope is None or matches(scope, c, world)


def grant_applies(g: Grant, u: User, now: float) -> bool:
    """The grant is for this user (or their department) and active now."""
    if g.revoked:
        return False
    if g.user_id is not None:
        if g.user_id != u.user_id:
            return False
    elif g.department is None or g.department != u.department:
        return False
    if g.valid_from is not None and now < g.valid_from:
        return False
    return not (g.valid_until is not None and now >= g.valid_until)


def grant_covers(g: Grant, c: Chan, world: World) -> bool:
    """"by filter (the same fields as a scope) and/or explicit channel ids". *choice*: with
    both, the named channels that the filter matches (the narrower reading; the code agrees).
    A grant with neither covers nothing (the document has it refused at creation)."""
    f = g.filter if g.filter is not None and not g.filter.empty else None
    if f is None and not g.ids:
        return False
    return (not g.ids or c.id in g.ids) and (f is None or matches(f, c, world))


def visible(u: User, grants: Sequence[Grant], c: Chan, action: str, now: float,
            world: World) -> bool:
    """"Visible = own scope ∪ active grants for the action"; for listing (registry.read) any
    active grant will do: "each grant also makes its channels listable"."""
    if own_scope(u, c, world):
        return True
    for g in grants:
        if not grant_applies(g, u, now) or not grant_covers(g, c, world):
            continue
        if action == "registry.read" or action in g.actions:
            return True
    return False


def may(u: User, grants: Sequence[Grant], c: Chan, action: str, now: float, world: World) -> bool:
    """authorize(), with no sensitive-action rules: the role grants the action ("a grant never
    widens a role", "an approval never adds an action the requester's role lacks"), and the
    channel is visible for it."""
    return action in ROLE_ACTIONS.get(u.role, frozenset()) and visible(u, grants, c, action, now, world)
