"""The upper's subscriptions to us (订阅): Catalog, Alarm, MobilePosition; sans-IO.

An upper subscribes with SUBSCRIBE (``Event: Catalog``, or ``presence`` with a MANSCDP Query
whose CmdType says what: Alarm, MobilePosition), ``Expires`` and a body; we answer 200 with
``Result OK`` and then send NOTIFY inside the dialog while it lasts: ADD/DEL/UPDATE/ON/OFF
items for the catalog, the alarm or position for the others (RFC 6665, GB/T 28181 §9.11).
It refreshes with a SUBSCRIBE in the dialog, ends it with ``Expires: 0`` (we send a last
NOTIFY with ``Subscription-State: terminated``), or lets it lapse. A NOTIFY answered 481 (the
upper restarted and forgot the dialog) ends it on our side too: the upper subscribes again.

A table of at most `max_per_kind` subscriptions of each kind: a flood of SUBSCRIBEs is refused
(503 with Retry-After) once it is full, never grows memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from xueliang.gb28181.sip import Dialog

__all__ = ["KINDS", "Subscription", "SubscriptionTable"]

#: What an upper may subscribe to, by the MANSCDP CmdType of its SUBSCRIBE.
KINDS = ("Catalog", "Alarm", "MobilePosition")


@dataclass(slots=True, eq=False)
class Subscription:
    kind: str  # Catalog / Alarm / MobilePosition
    dialog: Dialog
    expires_at: float
    sn: int  # the SN of the upper's SUBSCRIBE body: our NOTIFY bodies carry their own SN
    notifies_sent: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return self.dialog.id


class SubscriptionTable:
    def __init__(self, max_per_kind: int = 8) -> None:
        self.max_per_kind = max_per_kind
        self._subs: dict[tuple[str, str, str], Subscription] = {}

    def __len__(self) -> int:
        return len(self._subs)

    def __iter__(self) -> Iterator[Subscription]:
        return iter(list(self._subs.values()))

    def get(self, key: tuple[str, str, str]) -> Subscription | None:
        return self._subs.get(key)

    def full(self, kind: str) -> bool:
        return sum(1 for s in self._subs.values() if s.kind == kind) >= self.max_per_kind

    def add(self, sub: Subscription) -> None:
        self._subs[sub.key] = sub

    def remove(self, key: tuple[str, str, str]) -> Subscription | None:
        return self._subs.pop(key, None)

    def of_kind(self, kind: str) -> list[Subscription]:
        return [s for s in self._subs.values() if s.kind == kind]

    def expire(self, now: float) -> list[Subscription]:
        gone = [s for s in self._subs.values() if s.expires_at <= now]
        for s in gone:
            del self._subs[s.key]
        return gone

    def next_expiry(self) -> float | None:
        return min((s.expires_at for s in self._subs.values()), default=None)

    def clear(self) -> None:
        self._subs.clear()
