"""Finished catalogs waiting for the registry, bounded while its database is away.

Catalogs are stored in the order they finished, as many in one transaction as waited. While
the database is away (restarting, failing over) they wait, and a city keeps sending them: every
fresh registration is answered with a Catalog query, every camera that goes on or off is
notified. So the wait is bounded by the camera items it holds. Past the bound, what goes first
is what the registry would not miss: a device's whole catalog that a later whole catalog of
the same device replaces (whole catalogs only add and update channels, so the later one leaves
the registry as both would; what is lost is the earlier one's status changes in the history).
Only if that is not enough do the oldest catalogs go, whatever they are, a tenth of the bound
at a time, counted and logged; their devices' next catalogs bring them back.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from enum import Enum

from xueliang.gb28181.manscdp import CatalogItem

log = logging.getLogger("xueliang.signalling")

#: Camera items waiting at most (a large city's cameras several times over).
MAX_WAITING_ITEMS = 1_000_000


class Kind(Enum):
    WHOLE = "whole"  # a query's answer, complete
    PARTIAL = "partial"  # a query's answer that never completed: what did arrive
    CHANGE = "change"  # cameras notified (added, on, off, deleted, updated)


Entry = tuple[str, list[CatalogItem], Kind]


class CatalogQueue:
    def __init__(self, max_items: int = MAX_WAITING_ITEMS) -> None:
        self.max_items = max_items
        self._entries: deque[Entry] = deque()
        #: Camera items in the entries waiting (not in a batch being stored).
        self.items = 0
        #: Catalogs dropped to keep within ``max_items``; ``superseded`` of them replaced by a later one.
        self.dropped = 0
        self.superseded = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, device_id: str, items: list[CatalogItem], kind: Kind) -> None:
        self._entries.append((device_id, items, kind))
        self.items += len(items)
        self._keep_within()

    def take(self, limit: int) -> list[Entry]:
        """The oldest entries, in order, up to ``limit`` items (at least one entry)."""
        entries = self._entries
        batch = [entries.popleft()]
        size = len(batch[0][1])
        while entries and size + len(entries[0][1]) <= limit:
            size += len(entries[0][1])
            batch.append(entries.popleft())
        self.items -= size
        return batch

    def put_back(self, batch: Iterable[Entry]) -> None:
        """Entries that could not be stored, back at the head, in their order."""
        back = list(batch)
        self._entries.extendleft(reversed(back))
        self.items += sum(len(items) for _, items, _ in back)
        self._keep_within()

    def _keep_within(self) -> None:
        if self.items <= self.max_items:
            return
        target = self.max_items - self.max_items // 10
        # A whole or partial catalog with a later whole catalog of its device waiting goes first.
        last_whole = {d: i for i, (d, _, kind) in enumerate(self._entries) if kind is Kind.WHOLE}
        kept: deque[Entry] = deque()
        superseded = 0
        for i, entry in enumerate(self._entries):
            d, items, kind = entry
            if self.items > target and kind is not Kind.CHANGE and last_whole.get(d, -1) > i:
                self.items -= len(items)
                superseded += 1
                continue
            kept.append(entry)
        self._entries = kept
        oldest = 0
        while self.items > target and len(kept) > 1:  # the newest stays, however big
            self.items -= len(kept.popleft()[1])
            oldest += 1
        if superseded or oldest:
            self.superseded += superseded
            self.dropped += superseded + oldest
            log.error("catalogs waiting for the registry's database passed %d camera items: dropped %d replaced by a "
                      "later catalog of their device and %d oldest (%d dropped in all); %d items wait",
                      self.max_items, superseded, oldest, self.dropped, self.items)
