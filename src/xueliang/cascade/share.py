"""What an upper platform is shown (共享目录): the share, and the upper as a principal.

A share is stored with the upper (``upper_platforms.share``, JSON) in this shape::

    {"all": true}
    {"divisions": ["3402"], "classes": [1], "departments": ["公安局"], "channels": ["3402...1310..."],
     "control": false,
     "business_group": {"id": "<20 digits, type 215>", "name": "市公安局"},
     "organisations": [{"id": "<type 216>", "name": "一类点", "parent_id": null,
                        "divisions": ["340201"], "departments": [], "channels": []}],
     "id_map": {"<our channel ID>": "<the upper's ID for it>"}}

Which channels: ``all``, or the channels meeting every filter given among ``divisions``
(subtrees), ``classes`` (point class I/II/III) and ``departments`` (as in a sharing grant:
access/scope.py's `Selector`, evaluated by the same `Clause` in memory and as SQL), plus the
explicit ``channels``. Only camera points are shared; 215/216 rows of our own registry are not
(the upper gets the tree below instead). Nothing given: nothing shared.

The tree the upper sees: an optional business group (215) at the top, virtual organisations
(216) under it or under each other, and each shared channel under the first organisation whose
``channels``, ``divisions`` or ``departments`` take it, else under the 215/216 group its lower
platform (or device) reported it under (that group and its ancestors are passed up, their top
under the business group: cascade/catalog.py), else under the business group, else directly
under our platform.

IDs: kept, or mapped one by one to the upper's numbering (``id_map``, one-to-one). The upper
only ever sees and names the mapped IDs; `UpperScope.local_id` turns its IDs back, and an ID
the upper names that is not shared is the same "not found" as one that does not exist.

``control``: DeviceControl (PTZ, record, guard, I-frame...) from the upper is forwarded only
when true. Viewing (live, playback, download) of shared channels is always allowed: sharing a
camera upward means exactly that.

The upper as a principal (`UpperPrincipal`): actor ``upper:<its SIP ID>``, role ``upper``,
its scope the share, every act audited under that actor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xueliang.access.scope import Clause, Selector
from xueliang.actions import Action

__all__ = ["BusinessGroup", "Organisation", "Share", "UpperPrincipal", "UpperScope"]

_GB = re.compile(r"^\d{20}$")
_DIVISION = re.compile(r"^\d{2,12}$")
#: Explicit channel lists and ID maps beyond this are refused (a share that big is "all" or a
#: division; a list of 100,000 IDs in a JSON column helps nobody).
MAX_LISTED = 20_000

#: What an upper may do on a shared channel without ``control``, and with it.
VIEW_ACTIONS = frozenset({Action.REGISTRY_READ, Action.LIVE_VIEW, Action.PLAYBACK, Action.DOWNLOAD,
                          Action.DEVICE_QUERY})
CONTROL_ACTIONS = frozenset({Action.PTZ, Action.DEVICE_CONTROL})


def _gb_ids(v: list[str], what: str) -> list[str]:
    for x in v:
        if not isinstance(x, str) or not _GB.match(x):
            raise ValueError(f"{what}: {str(x)[:40]!r} is not a 20-digit GB/T 28181 ID")
    return sorted(set(v))


def _divisions(v: list[str]) -> list[str]:
    for x in v:
        if not isinstance(x, str) or not _DIVISION.match(x):
            raise ValueError(f"divisions: {str(x)[:40]!r} is not a division code (2 to 12 digits)")
    return sorted(set(v))


class BusinessGroup(BaseModel):
    """业务分组 (type 215): the top of the tree the upper sees."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^\d{10}215\d{7}$", description="20 digits, type 215")
    name: str = Field(min_length=1, max_length=100)


class _Selection(BaseModel):
    """Which channels: by division subtree, department, or an explicit list (a share and each of
    its virtual organisations select alike)."""

    model_config = ConfigDict(extra="forbid")
    divisions: list[str] = Field(default_factory=list, max_length=1000)
    departments: list[str] = Field(default_factory=list, max_length=1000)
    channels: list[str] = Field(default_factory=list, max_length=MAX_LISTED)

    @field_validator("divisions")
    @classmethod
    def _div(cls, v: list[str]) -> list[str]:
        return _divisions(v)

    @field_validator("channels")
    @classmethod
    def _ch(cls, v: list[str]) -> list[str]:
        return _gb_ids(v, "channels")


class Organisation(_Selection):
    """虚拟组织 (type 216) and which shared channels go under it."""

    id: str = Field(pattern=r"^\d{10}216\d{7}$", description="20 digits, type 216")
    name: str = Field(min_length=1, max_length=100)
    parent_id: str | None = Field(default=None, description="another organisation, or null: the top")


class Share(_Selection):
    """The share of one upper (see the module docstring)."""

    all: bool = False
    classes: list[int] = Field(default_factory=list, max_length=3)
    control: bool = False
    business_group: BusinessGroup | None = None
    organisations: list[Organisation] = Field(default_factory=list, max_length=500)
    id_map: dict[str, str] = Field(default_factory=dict, max_length=MAX_LISTED)

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: list[int]) -> list[int]:
        if any(c not in (1, 2, 3) for c in v):
            raise ValueError("classes are 1, 2 or 3 (point class I, II, III)")
        return sorted(set(v))

    @field_validator("departments")
    @classmethod
    def _depts(cls, v: list[str]) -> list[str]:
        if any(not isinstance(d, str) or not d or len(d) > 200 for d in v):
            raise ValueError("departments are names of 1 to 200 characters")
        return sorted(set(v))

    @model_validator(mode="after")
    def _coherent(self) -> Share:
        _gb_ids(list(self.id_map), "id_map keys")
        _gb_ids(list(self.id_map.values()), "id_map values")
        if len(set(self.id_map.values())) != len(self.id_map):
            raise ValueError("id_map: two channels mapped to the same upper ID")
        groups = [o.id for o in self.organisations]
        if self.business_group is not None:
            groups.append(self.business_group.id)
        if len(set(groups)) != len(groups):
            raise ValueError("organisations: an ID used twice")
        known = set(groups)
        taken = set(self.id_map.values()) | (set(self.channels) - set(self.id_map))
        if known & taken:
            raise ValueError("organisations: an organisation has the ID of a shared channel")
        parents = {o.id: o.parent_id for o in self.organisations}
        for o in self.organisations:
            if o.parent_id is not None and o.parent_id not in known:
                raise ValueError(f"organisations: {o.id} has an unknown parent_id {o.parent_id}")
            seen, at = {o.id}, o.parent_id
            while at is not None and at in parents:  # the business group has no parent
                if at in seen:
                    raise ValueError(f"organisations: {o.id} is its own ancestor")
                seen.add(at)
                at = parents[at]
        return self

    @property
    def empty(self) -> bool:
        return not (self.all or self.divisions or self.classes or self.departments or self.channels)


@dataclass(frozen=True, slots=True)
class _Placement:
    group: str
    channels: frozenset[str]
    clause: Clause | None


class UpperScope:
    """A share compiled: which channels (in memory and as SQL), where they sit, their IDs."""

    def __init__(self, share: Share, platform_id: str) -> None:
        self.share = share
        self.platform_id = platform_id
        self.all = share.all
        selector = Selector(divisions=tuple(share.divisions), departments=tuple(share.departments),
                            point_classes=tuple(share.classes))
        self._clause = None if share.all or selector.empty else Clause(selector)
        self._ids = frozenset(share.channels)
        self._up = dict(share.id_map)
        self._down = {v: k for k, v in share.id_map.items()}
        bg = share.business_group
        self.business_group = bg.id if bg is not None else None
        self._placements = [
            _Placement(o.id, frozenset(o.channels),
                       Clause(Selector(divisions=tuple(o.divisions), departments=tuple(o.departments)))
                       if (o.divisions or o.departments) else None)
            for o in share.organisations
        ]
        self._groups = {o.id for o in share.organisations} | ({bg.id} if bg is not None else set())

    # -- which channels ----------------------------------------------------------------------

    def match(self, channel: Any) -> bool:
        """Is this channel row (id, kind, division_code, department, point_class) shared?"""
        if getattr(channel, "kind", "camera") != "camera":
            return False
        if self.all:
            return True
        if getattr(channel, "id", None) in self._ids:
            return True
        return self._clause is not None and self._clause.match(channel)

    def sql(self, params: dict[str, Any]) -> str:
        """The same as SQL over ``channels`` (named parameters added to ``params``)."""
        if self.all:
            return "channels.kind = 'camera'"
        parts: list[str] = []
        if self._clause is not None:
            parts.append(self._clause.sql(params))
        if self._ids:
            names = []
            for cid in sorted(self._ids):
                name = f"cs{len(params)}"
                params[name] = cid
                names.append(":" + name)
            parts.append(f"channels.id IN ({', '.join(names)})")
        if not parts:
            return "1 = 0"
        either = parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
        return f"channels.kind = 'camera' AND {either}"

    def may(self, action: Action) -> bool:
        """The upper's "role": view always, control only when the share says so."""
        return action in VIEW_ACTIONS or (self.share.control and action in CONTROL_ACTIONS)

    # -- IDs and the tree ----------------------------------------------------------------------

    def upper_id(self, local_id: str) -> str:
        return self._up.get(local_id, local_id)

    def local_id(self, upper_id: str) -> str | None:
        """Our channel ID for an ID the upper named; None for a group, ours, or a local ID the
        upper must not know (a mapped channel named by its local ID)."""
        if upper_id in self._down:
            return self._down[upper_id]
        if upper_id in self._up or upper_id in self._groups or upper_id == self.platform_id:
            return None
        return upper_id

    def is_group(self, upper_id: str) -> bool:
        return upper_id in self._groups

    def parent_of(self, channel: Any) -> str:
        """The 215/216 group (or our platform) a shared channel sits under, for the upper."""
        return self.placement_of(channel) or self.top

    def placement_of(self, channel: Any) -> str | None:
        """The share's organisation that takes this channel, or None."""
        cid = getattr(channel, "id", "")
        for p in self._placements:
            if cid in p.channels or (p.clause is not None and p.clause.match(channel)):
                return p.group
        return None

    @property
    def top(self) -> str:
        """Where what has no other place sits: the business group, else our platform."""
        return self.business_group or self.platform_id

    def reserved(self, upper_id: str) -> bool:
        """Is this ID already taken in the upper's view (our platform, the share's groups, a
        mapped channel's either number)? A lower platform's group with it is not passed up."""
        return upper_id == self.platform_id or upper_id in self._groups or upper_id in self._up \
            or upper_id in self._down

    def group_items(self) -> list[dict[str, Any]]:
        """The 215/216 entries of the tree, parents before children."""
        out: list[dict[str, Any]] = []
        bg = self.share.business_group
        if bg is not None:
            out.append({"id": bg.id, "name": bg.name, "parent_id": self.platform_id, "business_group": bg.id})
        orgs = {o.id: o for o in self.share.organisations}
        done: set[str] = set()

        def add(o: Organisation) -> None:
            if o.id in done:
                return
            if o.parent_id is not None and o.parent_id in orgs:
                add(orgs[o.parent_id])
            done.add(o.id)
            parent = o.parent_id or self.business_group or self.platform_id
            out.append({"id": o.id, "name": o.name, "parent_id": parent, "business_group": self.business_group})

        for o in self.share.organisations:
            add(o)
        return out


@dataclass(frozen=True, slots=True)
class UpperPrincipal:
    """The upper platform as the access model sees it: who (for the audit) and what (its scope)."""

    upper_id: int
    sip_id: str
    name: str
    scope: UpperScope

    @property
    def actor(self) -> str:
        return f"upper:{self.sip_id}"

    role = "upper"

    def audit_fields(self) -> dict[str, Any]:
        return {"actor": self.actor, "role": self.role, "actor_department": None}


def share_of(value: Mapping[str, Any] | None) -> Share:
    """The stored JSON as a Share (None or empty: nothing shared)."""
    return Share.model_validate(value or {})


def described(share: Share) -> dict[str, Any]:
    """The share as stored and answered: only what was given (no empty lists)."""
    return share.model_dump(exclude_defaults=True)
