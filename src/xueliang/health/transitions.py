"""A point's changes of state, and the rows of its intervals: the state history's per-event work.

A storm of 10,000 registrations is 10,000 ``device.online`` events for the recorder
(history.py): a transition and an interval's row or two each. Interpreted, this was most of the
recorder's own cost (issue 18), so it is compiled with mypyc (src/xueliang/_native.py).
Nothing here does I/O: history.py takes the events from the bus and writes these rows.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from xueliang.db.stamps import Stamps
from xueliang.health.states import BAD


class Current(NamedTuple):
    """A subject's open interval, as the recorder knows it (a tuple of plain values: the
    garbage collector stops tracking it, which matters with 100,000 of them)."""

    state: str
    detail: str | None
    start: float
    #: Start of the fault episode (bad states only).
    since: float | None = None


class Transition(NamedTuple):
    subject: str
    kind: str  # channel / device
    state: str
    detail: str | None
    at: float
    since: float | None
    #: The subject had no open interval that this recorder knew of.
    first: bool = False


#: Builds a Current or Transition without the named tuple's own ``__new__`` (a Python function
#: call per tuple, two per event of a storm); the fields in their order.
_new: Final[Any] = tuple.__new__


class States:
    """Every subject's open interval as the recorder knows it, and its fault episodes."""

    def __init__(self, episode_gap: float) -> None:
        #: Good for less than this between two bad states: the same episode goes on.
        self.episode_gap = episode_gap
        self.current: dict[str, Current] = {}
        #: The last bad episode of a subject that is good now: (episode start, when it ended).
        self.last_bad: dict[str, tuple[float, float]] = {}

    def to(self, out: list[Transition], subject: str, kind: str, state: str, detail: str | None, at: float) -> None:
        """``subject`` is in ``state`` from ``at``: a transition onto ``out``, unless it says nothing
        new or is older than what is known."""
        cur = self.current.get(subject)
        if cur is not None:
            if at <= cur.start:
                return  # delivered again, or older than what we know: the later state stands
            if cur.state == state and cur.detail == detail:
                return
        since: float | None = None
        if state in BAD:
            if cur is not None and cur.state in BAD:
                since = cur.since if cur.since is not None else cur.start
            else:
                last = self.last_bad.get(subject)
                # Good for less than the gap: the same episode goes on (a flapping point).
                since = last[0] if last is not None and at - last[1] < self.episode_gap else at
        elif cur is not None and cur.state in BAD:
            self.last_bad[subject] = (cur.since if cur.since is not None else cur.start, at)
        self.current[subject] = _new(Current, (state, detail, at, since))
        out.append(_new(Transition, (subject, kind, state, detail, at, since, cur is None)))


# ``at`` holds the driver's time of each transition of ``r``, in order (the same length).


def rounds(out: list[Transition]) -> list[list[Transition]]:
    """Several transitions of one subject in a batch, in order: one statement each round."""
    by_round: list[list[Transition]] = []
    seen: dict[str, int] = {}
    for t in out:
        n = seen.get(t.subject, 0)
        seen[t.subject] = n + 1
        if n == len(by_round):
            by_round.append([])
        by_round[n].append(t)
    return by_round


def closing_rows(r: list[Transition], at: list[Any], exclusive: bool) -> list[tuple[Any, ...]]:
    """end, subject, start: the open interval of each subject closed. A subject the recorder had
    no open interval for has none when it is the only consumer (reconcile closed every one at
    start): nothing to close."""
    return [(at[i], r[i].subject, at[i]) for i in range(len(r)) if not (exclusive and r[i].first)]


def _since(t: Transition, a: Any, times: Stamps) -> Any:
    return a if t.since == t.at else (times.ts(t.since) if t.since is not None else None)


def insert_rows(r: list[Transition], at: list[Any], times: Stamps) -> list[tuple[Any, ...]]:
    """subject, kind, state, detail, start, since: every value a parameter."""
    out: list[tuple[Any, ...]] = []
    for i in range(len(r)):
        t, a = r[i], at[i]
        out.append((t.subject, t.kind, t.state, t.detail, a, _since(t, a, times)))
    return out


def shaped_rows(r: list[Transition], at: list[Any], times: Stamps) -> dict[tuple[bool, bool], list[tuple[Any, ...]]]:
    """The rows by shape, (detail given, episode start given): SQLite's inserts spell a missing
    one NULL rather than bind a None (history.py's ``_RawSql.inserts``)."""
    shapes: dict[tuple[bool, bool], list[tuple[Any, ...]]] = {}
    for i in range(len(r)):
        t, a = r[i], at[i]
        since = _since(t, a, times)
        row: tuple[Any, ...]
        if t.detail is None:
            key, row = (False, since is not None), ((t.subject, t.kind, t.state, a) if since is None
                                                    else (t.subject, t.kind, t.state, a, since))
        else:
            key, row = (True, since is not None), ((t.subject, t.kind, t.state, t.detail, a) if since is None
                                                   else (t.subject, t.kind, t.state, t.detail, a, since))
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = []
        shape.append(row)
    return shapes
