"""The in-memory book of what authorization needs beyond roles: active grants, catalog group
tree, sensitive-action rules — compiled per principal and cached, so a check never touches the
database (< 50 µs with 50 grants; bench/access.py).

The access service loads it from the database at start, after every change made through it,
and every ``access.reload_seconds`` (changes made by other processes, grants that lapse).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from xueliang.access.scope import Clause, Selector, base_selector, merge


class Principal(Protocol):
    """Whose grants and scope the book answers for (access/policy.py's Principal is one): the
    book needs no more of a principal, and imports nothing of the policy."""

    @property
    def user_id(self) -> int: ...

    @property
    def role(self) -> str: ...

    @property
    def department(self) -> str | None: ...

    @property
    def division_code(self) -> str | None: ...

    @property
    def scope(self) -> Selector | None: ...

#: Actions every grant implies on its channels: seeing them listed and counted.
IMPLIED = frozenset({"registry.read", "stats.read"})


@dataclass(slots=True)
class GrantSpec:
    id: int
    kind: str  # share / approval
    department: str | None
    user_id: int | None
    selector: Selector
    ids: frozenset[str] | None
    actions: frozenset[str]
    valid_from: float
    valid_until: float | None
    max_uses: int | None = None
    uses: int = 0
    approval_id: int | None = None
    #: The purpose of an approval grant (it stands for the purpose when one is not restated).
    reason: str = ""

    def in_window(self, now: float) -> bool:
        """Within its validity, whatever its uses (an open session stands on a use it took)."""
        return self.valid_from <= now and (self.valid_until is None or now < self.valid_until)

    def active(self, now: float) -> bool:
        return self.in_window(now) and (self.max_uses is None or self.uses < self.max_uses)


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled access.rules entry (config.PurposeRule)."""

    name: str
    actions: frozenset[str]
    classes: frozenset[int] | None
    key_site: bool | None
    tiers: frozenset[str] | None
    outside_department: bool
    require: str  # purpose / approval
    case_required: bool

    @property
    def channel_conditions(self) -> bool:
        return bool(self.classes or self.key_site is not None or self.tiers or self.outside_department)

    def applies(self, department: str | None, r: Any) -> bool:
        if r is None:
            return not self.channel_conditions
        if self.classes is not None and getattr(r, "point_class", None) not in self.classes:
            return False
        if self.key_site is not None and bool(getattr(r, "key_site", False)) != self.key_site:
            return False
        if self.tiers is not None and getattr(r, "tier", None) not in self.tiers:
            return False
        return not (
            self.outside_department
            and (department is None or getattr(r, "department", None) == department)
        )

    @classmethod
    def of(cls, spec: Any) -> Rule:
        return cls(
            name=spec.name,
            actions=frozenset(spec.actions),
            classes=frozenset(spec.point_classes) or None,
            key_site=spec.key_site,
            tiers=frozenset(spec.tiers) or None,
            outside_department=spec.outside_department,
            require=spec.require,
            case_required=spec.case_required,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "actions": sorted(self.actions),
            "point_classes": sorted(self.classes or ()),
            "key_site": self.key_site,
            "tiers": sorted(self.tiers or ()),
            "outside_department": self.outside_department,
            "require": self.require,
            "case_required": self.case_required,
        }


@dataclass(slots=True)
class CompiledScope:
    """What one principal may reach, ready to evaluate."""

    unrestricted: bool
    base: Clause | None
    #: Grant clauses (merged) by action.
    by_action: dict[str, tuple[Clause, ...]]
    #: Approval grants of this user (they satisfy "approval" rules), by id.
    approvals: tuple[GrantSpec, ...]
    #: Recompile after this time (the earliest grant start or end among the principal's).
    until: float
    version: int
    grant_ids: tuple[int, ...] = field(default=())
    #: SQL conditions per action, built once (building them costs more than the query).
    _sql: dict[str, list[Any]] = field(default_factory=dict)

    def match(self, action: str, r: Any) -> bool:
        if self.unrestricted:
            return True
        if self.base is not None and self.base.match(r):
            return True
        return any(cl.match(r) for cl in self.by_action.get(action, ()))

    def via(self, action: str, r: Any) -> str | None:
        """How ``r`` is reached: "role", "base", "grant:<ids>", or None."""
        if self.unrestricted:
            return "role"
        if self.base is not None and self.base.match(r):
            return "base"
        for cl in self.by_action.get(action, ()):
            if cl.match(r):
                return "grant:" + ",".join(str(g) for g in cl.grant_ids)
        return None

    def sql(self, action: str) -> list[Any]:
        cached = self._sql.get(action)
        if cached is None:
            cached = self._sql[action] = self._build_sql(action)
        return cached

    def _build_sql(self, action: str) -> list[Any]:
        from sqlalchemy import text

        if self.unrestricted:
            return []
        params: dict[str, Any] = {}
        parts = ([self.base.sql(params)] if self.base is not None else []) + [
            cl.sql(params) for cl in self.by_action.get(action, ())
        ]
        if not parts:
            return [text("1 = 0")]
        sql = parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
        return [text(sql).bindparams(**params)]


class PolicyBook:
    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.version = 0
        self.grants: dict[int, GrantSpec] = {}
        self._by_department: dict[str, list[GrantSpec]] = {}
        self._by_user: dict[int, list[GrantSpec]] = {}
        #: group id -> child group ids (215/216 catalog tree).
        self.group_children: dict[str, frozenset[str]] = {}
        self._cache: dict[tuple[Any, ...], CompiledScope] = {}
        self.set_rules(rules)
        #: Called with (grant id, +1 or -1) whenever an approval grant's use is taken or given
        #: back (persisted by the service, which calls :meth:`use_saved` once it is written).
        self.on_use: Any = None
        #: Uses taken (+1) and given back (-1) in this process, per grant: all of them, and
        #: those written to the database. A reload adds to the database's count what it does
        #: not hold yet: without this, a reload between a use and its write gave the use back.
        self._uses_local: dict[int, int] = {}
        self._uses_saved: dict[int, int] = {}

    # ---- loading ------------------------------------------------------------------------
    def set_rules(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        by: dict[str, list[Rule]] = {}
        for r in self.rules:
            for a in r.actions:
                by.setdefault(a, []).append(r)
        self._rules_by_action = {a: tuple(v) for a, v in by.items()}
        self._bump()

    def saved_uses(self) -> dict[int, int]:
        """Taken before grants are read from the database; given back to :meth:`replace`."""
        return dict(self._uses_saved)

    def use_saved(self, grant_id: int, delta: int) -> None:
        """A use (+1) or give-back (-1) of this process is now in the database."""
        self._uses_saved[grant_id] = self._uses_saved.get(grant_id, 0) + delta

    def replace(
        self, grants: Iterable[GrantSpec], groups: Mapping[str, Iterable[str]] | None = None,
        saved: Mapping[int, int] | None = None,
    ) -> None:
        """Grants as read from the database; ``saved``: :meth:`saved_uses` from before the read
        (the uses of this process that the read includes)."""
        self.grants = {g.id: g for g in grants}
        if saved is not None:
            for g in self.grants.values():
                if g.max_uses is not None:
                    g.uses += self._uses_local.get(g.id, 0) - saved.get(g.id, 0)
        if groups is not None:
            self.group_children = {k: frozenset(v) for k, v in groups.items()}
        self._index()
        self._bump()

    def put(self, g: GrantSpec) -> None:
        self.grants[g.id] = g
        self._index()
        self._bump()

    def drop(self, grant_id: int) -> None:
        if self.grants.pop(grant_id, None) is not None:
            self._index()
            self._bump()

    def _index(self) -> None:
        by_dept: dict[str, list[GrantSpec]] = {}
        by_user: dict[int, list[GrantSpec]] = {}
        for g in self.grants.values():
            if g.department is not None:
                by_dept.setdefault(g.department, []).append(g)
            if g.user_id is not None:
                by_user.setdefault(g.user_id, []).append(g)
        self._by_department = by_dept
        self._by_user = by_user

    def _bump(self) -> None:
        self.version += 1
        self._cache.clear()

    def expand_groups(self, groups: Iterable[str]) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(groups)
        while stack:
            g = stack.pop()
            if g in seen:
                continue
            seen.add(g)
            stack.extend(self.group_children.get(g, ()))
        return frozenset(seen)

    # ---- evaluation ---------------------------------------------------------------------
    def rules_for(self, action: str) -> tuple[Rule, ...]:
        return self._rules_by_action.get(action, ())

    def grants_of(self, p: Principal) -> list[GrantSpec]:
        out = list(self._by_user.get(p.user_id, ()))
        if p.department is not None:
            out += self._by_department.get(p.department, ())
        return out

    def clause(self, s: Selector, ids: frozenset[str] | None = None, grant: GrantSpec | None = None) -> Clause:
        gid = (grant.id,) if grant is not None else ()
        return Clause(
            s,
            parents=self.expand_groups(s.groups) if s.groups else None,
            ids=ids,
            id_grant_ids=gid if ids is not None else (),
            grant_ids=gid,
        )

    def scope_for(self, p: Principal, now: float | None = None) -> CompiledScope:
        now = time.time() if now is None else now
        key = (p.user_id, p.role, p.department, p.division_code, p.scope)
        c = self._cache.get(key)
        if c is not None and c.version == self.version and now < c.until:
            return c
        c = self._compile(p, now)
        self._cache[key] = c
        return c

    def _compile(self, p: Principal, now: float) -> CompiledScope:
        base_sel = base_selector(p.role, p.department, p.division_code, p.scope)
        until = float("inf")
        if base_sel is None:
            return CompiledScope(True, None, {}, self._approvals(p, now), until, self.version)
        base = self.clause(base_sel)
        per_action: dict[str, list[Clause]] = {}
        ids: list[int] = []
        for g in self.grants_of(p):
            if g.valid_until is not None and g.valid_until > now:
                until = min(until, g.valid_until)
            if g.valid_from > now:
                until = min(until, g.valid_from)
            if not g.active(now):
                continue
            ids.append(g.id)
            cl = self.clause(g.selector, g.ids, g)
            for a in g.actions | IMPLIED:
                per_action.setdefault(a, []).append(cl)
        by_action = {a: tuple(merge(v)) for a, v in per_action.items()}
        return CompiledScope(
            False, base, by_action, self._approvals(p, now), until, self.version, tuple(ids)
        )

    def _approvals(self, p: Principal, now: float) -> tuple[GrantSpec, ...]:
        return tuple(
            g for g in self._by_user.get(p.user_id, ()) if g.kind == "approval" and g.active(now)
        )

    def approval_for(self, p: Principal, action: str, r: Any, now: float) -> GrantSpec | None:
        cid = getattr(r, "id", None)
        for g in self.scope_for(p, now).approvals:
            if action in g.actions and g.active(now) and g.ids is not None and cid in g.ids:
                return g
        return None

    def use(self, g: GrantSpec) -> None:
        """Count one use of a limited approval grant (persisted by ``on_use``)."""
        if g.max_uses is None:
            return
        g.uses += 1
        if g.uses >= g.max_uses:
            self._bump()
        if self.on_use is not None:
            self._uses_local[g.id] = self._uses_local.get(g.id, 0) + 1
            self.on_use(g.id, 1)

    def release(self, g: GrantSpec) -> None:
        """Give back a use taken by an action that then failed (the device did not answer...)."""
        if g.max_uses is None or g.uses <= 0:
            return
        was_used_up = g.uses >= g.max_uses
        g.uses -= 1
        if was_used_up:
            self._bump()  # usable again: compiled scopes must see it
        if self.on_use is not None:
            self._uses_local[g.id] = self._uses_local.get(g.id, 0) - 1
            self.on_use(g.id, -1)
