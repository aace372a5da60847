"""The steps of a case and of its dispatches (sans-IO: states in, state out, or a refusal).

A case:      received (受理) → dispatched (分流) → handling → fed_back (反馈) → closed (结案)
             merged: a duplicate joined to another case (its history stays)
A dispatch:  dispatched → handling (acknowledged) → fed_back → done (the case closed)
             returned (the department says it is not theirs), reassigned (the centre moved it),
             and from fed_back back to handling when the centre sends the feedback back (redo)

A case's state follows from its live dispatches: none → received; any not yet acknowledged
and none further → dispatched; any handling → handling; all fed back → fed_back.
"""

from __future__ import annotations

from collections.abc import Iterable

SOURCES = ("hotline", "alarm", "rule", "grid", "resident", "emergency")
PRIORITIES = ("urgent", "high", "normal", "low")
CASE_STATES = ("received", "dispatched", "handling", "fed_back", "closed", "merged")
OPEN_CASE = ("received", "dispatched", "handling", "fed_back")
#: Dispatches the department still works on or has finished (it sees the case through them).
LIVE_DISPATCH = ("dispatched", "handling", "fed_back", "done")
ACTIVE_DISPATCH = ("dispatched", "handling")

#: A dispatch's steps: (states it may be taken from, state it leads to).
DISPATCH_STEPS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("dispatched",), "handling"),  # 签收
    "feedback": (("dispatched", "handling"), "fed_back"),  # 反馈
    "return": (("dispatched", "handling"), "returned"),  # 退回: not this department's
    "reassign": (("dispatched", "handling", "fed_back"), "reassigned"),  # 改派
    "redo": (("fed_back",), "handling"),  # 退回重办: the centre sends the feedback back
}
#: Steps a department takes on its own dispatches; the others are the centre's.
DEPARTMENT_STEPS = frozenset({"acknowledge", "feedback", "return"})


class StepRefused(ValueError):
    """A step the case or dispatch is not in a state for."""


def dispatch_step(step: str, state: str) -> str:
    """The dispatch's state after ``step``; StepRefused when the state does not allow it."""
    if step not in DISPATCH_STEPS:
        raise StepRefused(f"unknown step {step!r} (steps: {', '.join(DISPATCH_STEPS)})")
    sources, target = DISPATCH_STEPS[step]
    if state not in sources:
        raise StepRefused(f"{step} is for dispatches that are {' or '.join(sources)}; this one is {state}")
    return target


def case_state(current: str, dispatches: Iterable[str]) -> str:
    """The case's state from its dispatches' (a closed or merged case stays as it is)."""
    if current in ("closed", "merged"):
        return current
    live = [d for d in dispatches if d in ("dispatched", "handling", "fed_back")]
    if not live:
        return "received"
    if all(d == "fed_back" for d in live):
        return "fed_back"
    if any(d == "handling" for d in live):
        return "handling"
    return "dispatched"


def may_close(current: str) -> None:
    """Review and close (结案): a case fed back, or one the centre settles itself (received)."""
    if current not in ("received", "fed_back"):
        raise StepRefused(f"a case is closed once its departments fed back (or before dispatch); this one is {current}")
