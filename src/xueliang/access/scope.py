"""Channel sets as scopes: one definition evaluated two ways that must agree.

A :class:`Selector` is a conjunction of optional conditions on a channel (division subtrees,
departments, point classes, coverage, tier, key site, catalog groups) — a user's base scope, or
what a sharing grant shares. A :class:`Clause` is a selector compiled for use: ``match(channel)``
in memory for single-resource checks (no database round trip), ``sql()`` as SQLAlchemy
conditions for listings. Division subtrees are the same ``[code, code + ":")`` string ranges in
both (the registry's ``subtree_bounds``; the database collation must be byte order — C — as
the registry already requires), so a listing never shows what a single check refuses and the
reverse (tests/access/test_scope_property.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

FIELDS = ("divisions", "departments", "point_classes", "coverages", "tiers", "key_site", "groups", "resident_visible")


#: Up to this many division subtrees in one clause are rendered as ranges.
RANGES_MAX = 4


#: A division code no channel has (MANSCDP drops U+FFFF, imports take digits): the scope of a
#: user whose own conditions contradict each other (a department and another department).
NOWHERE = "\uffff"


def subtree_range(code: str) -> tuple[str, str]:
    return code, code + ":"


@dataclass(frozen=True, slots=True)
class Selector:
    """Conditions on a channel; every condition given must hold (within one, any value)."""

    divisions: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    point_classes: tuple[int, ...] = ()
    coverages: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    key_site: bool | None = None
    #: 215/216 catalog groups: channels whose parent is the group or one of its sub-groups.
    groups: tuple[str, ...] = ()
    #: Cameras an administrator marked as fit for residents to watch (channels.resident_visible).
    resident_visible: bool | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.divisions or self.departments or self.point_classes or self.coverages
            or self.tiers or self.key_site is not None or self.groups or self.resident_visible is not None
        )

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Selector:
        if not d:
            return cls()
        unknown = set(d) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown scope fields {sorted(unknown)} (known: {', '.join(FIELDS)})")

        def strs(k: str) -> tuple[str, ...]:
            v = d.get(k) or ()
            if isinstance(v, str):
                v = (v,)
            return tuple(sorted({str(x) for x in v}))

        classes = d.get("point_classes") or ()
        if isinstance(classes, int):
            classes = (classes,)
        ks = d.get("key_site")
        rv = d.get("resident_visible")
        return cls(
            divisions=strs("divisions"),
            departments=strs("departments"),
            point_classes=tuple(sorted({int(x) for x in classes})),
            coverages=strs("coverages"),
            tiers=strs("tiers"),
            key_site=None if ks is None else bool(ks),
            groups=strs("groups"),
            resident_visible=None if rv is None else bool(rv),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in FIELDS:
            v = getattr(self, k)
            if v not in ((), None):
                out[k] = list(v) if isinstance(v, tuple) else v
        return out

    def narrowed(self, other: Selector) -> Selector:
        """Both selectors at once: a channel must meet both. A field given in both keeps what
        both allow (the inner of nested division subtrees); when nothing is left, the
        selector matches no channel (:data:`NOWHERE`)."""
        kw: dict[str, Any] = {}
        nothing = False
        for k in FIELDS:
            mine, theirs = getattr(self, k), getattr(other, k)
            if theirs in ((), None) or mine == theirs:
                kw[k] = mine
            elif mine in ((), None):
                kw[k] = theirs
            elif k in ("key_site", "resident_visible"):
                nothing = True
            else:
                if k == "divisions":  # subtrees either nest or are disjoint
                    both = {b if a <= b else a for a in mine for b in theirs
                            if a <= b < a + ":" or b <= a < b + ":"}
                else:
                    both = set(mine) & set(theirs)
                kw[k] = tuple(sorted(both))
                nothing = nothing or not both
        return Selector(divisions=(NOWHERE,)) if nothing else Selector(**kw)


def _merge_ranges(ranges: Iterable[tuple[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Sorted, non-overlapping [lo, hi) ranges as two parallel tuples (for bisect)."""
    los: list[str] = []
    his: list[str] = []
    for lo, hi in sorted(set(ranges)):
        if his and lo < his[-1]:
            if hi > his[-1]:
                his[-1] = hi
            continue
        los.append(lo)
        his.append(hi)
    return tuple(los), tuple(his)


class Clause:
    """A compiled selector (plus, for grants, explicit channel ids). ``None`` fields are absent."""

    __slots__ = (
        "classes",
        "coverages",
        "departments",
        "grant_ids",
        "his",
        "id_grant_ids",
        "ids",
        "key_site",
        "los",
        "parents",
        "prefixes",
        "resident_visible",
        "tiers",
    )
    los: tuple[str, ...] | None
    his: tuple[str, ...] | None
    #: Many subtrees: prefix sets by length instead of ranges (see _set_divisions).
    prefixes: tuple[tuple[int, frozenset[str]], ...] | None
    departments: frozenset[str] | None
    classes: frozenset[int] | None
    coverages: frozenset[str] | None
    tiers: frozenset[str] | None
    key_site: bool | None
    resident_visible: bool | None
    parents: frozenset[str] | None
    ids: frozenset[str] | None
    id_grant_ids: tuple[int, ...]
    grant_ids: tuple[int, ...]

    def __init__(
        self,
        selector: Selector,
        *,
        parents: frozenset[str] | None = None,
        ids: frozenset[str] | None = None,
        id_grant_ids: tuple[int, ...] = (),
        grant_ids: tuple[int, ...] = (),
    ) -> None:
        s = selector
        self.los = self.his = self.prefixes = None
        if s.divisions:
            self._set_divisions(*_merge_ranges(subtree_range(d) for d in s.divisions))
        self.departments = frozenset(s.departments) if s.departments else None
        self.classes = frozenset(s.point_classes) if s.point_classes else None
        self.coverages = frozenset(s.coverages) if s.coverages else None
        self.tiers = frozenset(s.tiers) if s.tiers else None
        self.key_site = s.key_site
        self.resident_visible = s.resident_visible
        #: Expanded group membership (the groups and all their sub-groups), or None.
        self.parents = parents if s.groups else None
        #: Explicit channels (a grant's list) and the grants they come from (for SQL).
        self.ids = ids
        self.id_grant_ids = id_grant_ids
        self.grant_ids = grant_ids

    def _set_divisions(self, los: tuple[str, ...], his: tuple[str, ...]) -> None:
        """A few subtrees stay string ranges (an index seeks into them); many become
        ``substr(division_code, 1, n) IN (...)`` per code length, which costs one lookup per row
        instead of two comparisons per subtree (and plans faster). Memory mirrors the mode:
        ranges compare as ranges, prefixes as prefixes."""
        self.los, self.his = los, his
        self.prefixes = None
        if len(los) > RANGES_MAX and all(hi == lo + ":" for lo, hi in zip(los, his, strict=True)):
            by_len: dict[int, set[str]] = {}
            for lo in los:
                by_len.setdefault(len(lo), set()).add(lo)
            self.prefixes = tuple((n, frozenset(v)) for n, v in sorted(by_len.items()))

    def key(self) -> tuple[Any, ...]:
        """Everything but divisions: clauses equal on this merge by uniting their divisions."""
        return (
            self.departments, self.classes, self.coverages, self.tiers, self.key_site,
            self.resident_visible, self.parents, self.ids is not None,
        )

    def match(self, r: Any) -> bool:
        los = self.los
        if los is not None:
            dc = getattr(r, "division_code", None)
            if dc is None:
                return False
            if self.prefixes is not None:
                if not any(dc[:n] in codes for n, codes in self.prefixes):
                    return False
            else:
                i = bisect_right(los, dc) - 1
                if i < 0 or dc >= self.his[i]:  # type: ignore[index]
                    return False
        if self.departments is not None and getattr(r, "department", None) not in self.departments:
            return False
        if self.classes is not None and getattr(r, "point_class", None) not in self.classes:
            return False
        if self.coverages is not None and getattr(r, "coverage", None) not in self.coverages:
            return False
        if self.tiers is not None and getattr(r, "tier", None) not in self.tiers:
            return False
        if self.key_site is not None:
            ks = getattr(r, "key_site", None)
            if ks is None or bool(ks) != self.key_site:
                return False
        if self.resident_visible is not None:
            rv = getattr(r, "resident_visible", None)
            if rv is None or bool(rv) != self.resident_visible:
                return False
        if self.parents is not None and getattr(r, "parent_id", None) not in self.parents:
            return False
        return not (self.ids is not None and getattr(r, "id", None) not in self.ids)

    def sql(self, params: dict[str, Any]) -> str:
        """The clause as SQL over the ``channels`` table, values as named parameters added to
        ``params`` (rendered once per principal and reused: a SQLAlchemy expression tree of a
        hundred terms costs more to process per query than the query itself)."""

        def p(v: Any) -> str:
            name = f"xs{len(params)}"
            params[name] = v
            return ":" + name

        c: list[str] = []
        if self.prefixes is not None:
            sets = [
                f"substr(channels.division_code, 1, {int(n)}) IN ({', '.join(p(x) for x in sorted(codes))})"
                for n, codes in self.prefixes
            ]
            c.append(sets[0] if len(sets) == 1 else "(" + " OR ".join(sets) + ")")
        elif self.los is not None:
            assert self.his is not None
            ranges = [
                f"(channels.division_code >= {p(lo)} AND channels.division_code < {p(hi)})"
                for lo, hi in zip(self.los, self.his, strict=True)
            ]
            c.append(ranges[0] if len(ranges) == 1 else "(" + " OR ".join(ranges) + ")")
        if self.departments is not None:
            c.append(f"channels.department IN ({', '.join(p(d) for d in sorted(self.departments))})")
        if self.classes is not None:
            c.append(f"channels.point_class IN ({', '.join(str(int(x)) for x in sorted(self.classes))})")
        if self.coverages is not None:
            c.append(f"channels.coverage IN ({', '.join(p(x) for x in sorted(self.coverages))})")
        if self.tiers is not None:
            c.append(f"channels.tier IN ({', '.join(p(x) for x in sorted(self.tiers))})")
        if self.key_site is not None:
            c.append(f"channels.key_site = {p(self.key_site)}")
        if self.resident_visible is not None:
            c.append(f"channels.resident_visible = {p(self.resident_visible)}")
        if self.parents is not None:
            c.append(
                f"channels.parent_id IN ({', '.join(p(x) for x in sorted(self.parents))})"
                if self.parents else "1 = 0"
            )
        if self.ids is not None:
            if not self.ids:
                c.append("1 = 0")
            elif self.id_grant_ids:
                # A correlated probe of the channel_id index: cheaper per page than building
                # the whole id list for every query.
                grants = ", ".join(str(int(g)) for g in self.id_grant_ids)
                c.append(
                    "EXISTS (SELECT 1 FROM access_grant_channels AS agc WHERE "
                    f"agc.channel_id = channels.id AND agc.grant_id IN ({grants}))"
                )
            else:
                c.append(f"channels.id IN ({', '.join(p(x) for x in sorted(self.ids))})")
        if not c:
            return "1 = 1"
        return c[0] if len(c) == 1 else "(" + " AND ".join(c) + ")"


def merge(clauses: Iterable[Clause]) -> list[Clause]:
    """Unite clauses that differ only in their divisions (A∧D1 ∨ A∧D2 = A∧(D1∨D2)), and
    explicit-id-only clauses into one id set, so a check costs O(shapes), not O(grants)."""
    out: list[Clause] = []
    groups: dict[tuple[Any, ...], list[Clause]] = {}
    for cl in clauses:
        if cl.los is None and cl.ids is None:
            out.append(cl)  # no division to unite on
            continue
        groups.setdefault(cl.key() + (cl.los is None,), []).append(cl)
    for members in groups.values():
        if len(members) == 1:
            out.append(members[0])
            continue
        first = members[0]
        m = Clause.__new__(Clause)
        for slot in Clause.__slots__:
            setattr(m, slot, getattr(first, slot))
        if first.los is not None:
            ranges = [
                (lo, hi)
                for cl in members
                for lo, hi in zip(cl.los or (), cl.his or (), strict=True)
            ]
            m._set_divisions(*_merge_ranges(ranges))
        if first.ids is not None and first.los is None:
            m.ids = frozenset().union(*(cl.ids or frozenset() for cl in members))
            m.id_grant_ids = tuple(sorted({g for cl in members for g in cl.id_grant_ids}))
        elif first.ids is not None:
            out.extend(members)  # ids and divisions both: keep apart (ids do not unite across)
            continue
        m.grant_ids = tuple(sorted({g for cl in members for g in cl.grant_ids}))
        out.append(m)
    return out


UNRESTRICTED_ROLES = frozenset({"administrator", "auditor"})


def base_selector(
    role: str, department: str | None, division_code: str | None, extra: Selector | None
) -> Selector | None:
    """A user's own scope: division subtree, department, and the user's extra narrowing;
    None = unrestricted (administrators, auditors, users with no scope at all)."""
    if role in UNRESTRICTED_ROLES:
        return None
    s = Selector(
        divisions=(division_code,) if division_code else (),
        departments=(department,) if department else (),
    )
    if extra is not None:
        s = s.narrowed(extra)
    if role == "resident":
        if not s.coverages:
            # Residents watch the public cameras (coverage A) of their own village or compound,
            s = replace(s, coverages=("A",))
        # and of those only the ones an administrator marked as fit for residents (whatever
        # else their stored scope says: a resident's scope never reaches another camera).
        s = replace(s, resident_visible=True)
    return None if s.empty else s
