"""Catalog (目录) assembly and tree building, sans-IO.

A Catalog (or RecordInfo) response is split over several MESSAGEs sharing one SN, each with
``SumNum`` (the total) and a few items; some NVRs send one item per MESSAGE, out of order,
and resend parts. :class:`CatalogAssembler` collects parts by (device, SN) and reports a
:class:`CatalogComplete` once SumNum distinct items arrived, or a :class:`CatalogIncomplete`
from :meth:`CatalogAssembler.expire` when no part came for ``timeout`` seconds. The clock is
passed in (``now``, seconds, any monotonic origin).

:func:`build_tree` gives each catalog item its parent: business groups (215), virtual
organisations (216) and channels under devices, via ParentID and BusinessGroupID.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from xueliang.gb28181.manscdp import CatalogItem

__all__ = [
    "CatalogAssembler",
    "CatalogComplete",
    "CatalogIncomplete",
    "build_tree",
    "children_of",
]

ItemT = TypeVar("ItemT")


@dataclass(slots=True)
class CatalogComplete(Generic[ItemT]):
    """All SumNum items of (device_id, sn) arrived; ``items`` in arrival order, deduplicated."""

    device_id: str
    sn: int
    items: list[ItemT]


@dataclass(slots=True)
class CatalogIncomplete(Generic[ItemT]):
    """An assembly given up: ``reason`` is ``timeout`` (no part for ``timeout`` seconds),
    ``evicted`` (too many concurrent assemblies; the least recently updated goes) or
    ``overflow`` (more than ``max_items`` items; the extra ones were dropped)."""

    device_id: str
    sn: int
    items: list[ItemT]
    expected: int
    received: int
    missing_count: int
    reason: str = "timeout"


@dataclass(slots=True)
class _Assembly(Generic[ItemT]):
    device_id: str
    sn: int
    expected: int
    started: float
    last_update: float
    items: dict[Hashable, ItemT] = field(default_factory=dict)
    overflowed: bool = False
    parts: int = 0


def _default_key(item: Any) -> Hashable:
    """DeviceID of a :class:`CatalogItem`-like object or of a ``{"DeviceID": ...}`` mapping."""
    if isinstance(item, Mapping):
        key = item.get("DeviceID")
    else:
        key = getattr(item, "device_id", None)
    return key if isinstance(key, str) and key else None


class CatalogAssembler(Generic[ItemT]):
    """Collects catalog parts per (device_id, SN). Memory is bounded by ``max_assemblies``
    concurrent assemblies of at most ``max_items`` items each.

    ``key`` gives the identity used to drop resent items (default: DeviceID); an item whose
    key is None or empty is never considered a duplicate. Use another key (for instance
    ``(StartTime, EndTime, FilePath)``) to assemble RecordInfo responses the same way.
    """

    def __init__(
        self,
        *,
        timeout: float = 15.0,
        max_assemblies: int = 256,
        max_items: int = 100_000,
        key: Callable[[ItemT], Hashable] | None = None,
        remember_completed: int = 1024,
    ) -> None:
        if timeout <= 0 or max_assemblies < 1 or max_items < 1:
            raise ValueError("timeout, max_assemblies and max_items must be positive")
        self.timeout = timeout
        self.max_assemblies = max_assemblies
        self.max_items = max_items
        self._key: Callable[[ItemT], Hashable] = key if key is not None else _default_key
        self._open: OrderedDict[tuple[str, int], _Assembly[ItemT]] = OrderedDict()
        self._evicted: list[CatalogIncomplete[ItemT]] = []
        # Recently finished (device, SN): late resent parts for them are ignored.
        self._done: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._remember = max(0, remember_completed)
        self._anon = 0

    def __len__(self) -> int:
        """Number of assemblies in progress."""
        return len(self._open)

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`expire` will report something, if any."""
        if self._evicted:
            return float("-inf")
        if not self._open:
            return None
        return min(a.last_update for a in self._open.values()) + self.timeout

    def add(
        self, device_id: str, sn: int, sum_num: int, items: Iterable[ItemT], now: float
    ) -> CatalogComplete[ItemT] | None:
        """Add one part. Returns the whole catalog when SumNum distinct items have arrived.

        A part for a (device, SN) completed recently is ignored (a resend). SumNum 0 completes
        at once with no items. A later part's SumNum replaces the earlier one's.
        """
        k = (device_id, sn)
        if k in self._done:
            return None
        expected = max(0, sum_num)
        asm = self._open.get(k)
        if asm is None:
            if len(self._open) >= self.max_assemblies:
                self._evict_oldest()
            asm = _Assembly(device_id, sn, expected, now, now)
            self._open[k] = asm
        else:
            self._open.move_to_end(k)
            asm.expected = expected
            asm.last_update = now
        asm.parts += 1
        for item in items:
            key = self._key(item)
            if key is None or key == "":
                self._anon += 1
                key = ("__anonymous__", self._anon)
            if key in asm.items:
                continue
            if len(asm.items) >= self.max_items:
                asm.overflowed = True
                continue
            asm.items[key] = item
        if len(asm.items) >= asm.expected and not asm.overflowed:
            del self._open[k]
            self._remember_done(k)
            return CatalogComplete(device_id, sn, list(asm.items.values()))
        return None

    def expire(self, now: float) -> list[CatalogIncomplete[ItemT]]:
        """Give up assemblies with no part for ``timeout`` seconds (and report evicted ones)."""
        out = self._evicted
        self._evicted = []
        for k in [k for k, a in self._open.items() if now - a.last_update >= self.timeout]:
            asm = self._open.pop(k)
            self._remember_done(k)
            out.append(self._incomplete(asm, "overflow" if asm.overflowed else "timeout"))
        return out

    def cancel(self, device_id: str) -> int:
        """Drop every assembly of a device (e.g. it went offline); returns how many."""
        keys = [k for k in self._open if k[0] == device_id]
        for k in keys:
            del self._open[k]
        return len(keys)

    def _incomplete(self, asm: _Assembly[ItemT], reason: str) -> CatalogIncomplete[ItemT]:
        received = len(asm.items)
        return CatalogIncomplete(
            device_id=asm.device_id,
            sn=asm.sn,
            items=list(asm.items.values()),
            expected=asm.expected,
            received=received,
            missing_count=max(0, asm.expected - received),
            reason=reason,
        )

    def _evict_oldest(self) -> None:
        k, asm = self._open.popitem(last=False)
        self._remember_done(k)
        self._evicted.append(self._incomplete(asm, "evicted"))
        if len(self._evicted) > self.max_assemblies:
            del self._evicted[0]

    def _remember_done(self, k: tuple[str, int]) -> None:
        if self._remember == 0:
            return
        self._done[k] = None
        self._done.move_to_end(k)
        while len(self._done) > self._remember:
            self._done.popitem(last=False)


def _type(gb_id: str) -> str:
    return gb_id[10:13] if len(gb_id) == 20 else ""


def build_tree(items: Sequence[CatalogItem], root_id: str | None = None) -> dict[str, str | None]:
    """Parent of each item (by DeviceID), ``root_id`` (or None) for top-level items.

    * 215 business groups are top level.
    * 216 virtual organisations: the first ParentID that is a listed 215/216, else a listed
      BusinessGroupID, else the first ParentID that is not the item itself, else top level.
    * other items (channels, devices): the first ParentID that is listed, else the first
      ParentID (for instance the NVR that owns the channel), else a listed BusinessGroupID,
      else top level.

    A ParentID equal to ``root_id`` means top level. Cycles are broken by making the item that
    closes the cycle top level. Later duplicates of a DeviceID are ignored.
    """
    by_id: dict[str, CatalogItem] = {}
    for it in items:
        if it.device_id and it.device_id not in by_id:
            by_id[it.device_id] = it

    def listed(pid: str, me: str) -> bool:
        return pid in by_id and pid != me

    parent: dict[str, str | None] = {}
    for did, it in by_id.items():
        pids = [p for p in it.parent_ids if p and p != did]
        bg = it.business_group_id if it.business_group_id != did else ""
        t = _type(did)
        chosen: str | None = None
        if t == "215":
            chosen = None
        elif t == "216":
            chosen = next((p for p in pids if listed(p, did) and _type(p) in ("215", "216")), None)
            if chosen is None and bg and listed(bg, did):
                chosen = bg
            if chosen is None and pids:
                chosen = pids[0]
        else:
            chosen = next((p for p in pids if listed(p, did)), None)
            if chosen is None and pids:
                chosen = pids[0]
            if chosen is None and bg and listed(bg, did):
                chosen = bg
        if chosen is not None and chosen == root_id:
            chosen = None
        parent[did] = chosen if chosen is not None else root_id

    # Break cycles: walk up from each node; if we return to a node on the path, cut there.
    state: dict[str, int] = {}  # 1 = on current path, 2 = done
    for start in parent:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parent and state.get(node) is None:
            state[node] = 1
            path.append(node)
            nxt = parent[node]
            if nxt is not None and state.get(nxt) == 1:
                parent[node] = root_id if root_id != node else None
                break
            node = nxt
        for n in path:
            state[n] = 2
    return parent


def children_of(tree: Mapping[str, str | None]) -> dict[str | None, list[str]]:
    """Invert :func:`build_tree`: parent → children, in item order."""
    out: dict[str | None, list[str]] = {}
    for child, par in tree.items():
        out.setdefault(par, []).append(child)
    return out
