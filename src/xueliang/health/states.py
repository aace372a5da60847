"""The states a point can be in, and how a channel's state follows from what is known.

Four states, exclusive: ``online`` (reachable, picture good), ``fault`` (reachable, picture
bad: VLOST, DEFECT, and later the picture faults of video quality diagnosis), ``offline``
(not reachable), ``unknown`` (nothing known: the platform was down, or never heard of it).
Availability (在线率) counts online and fault; the intact rate (完好率) online only; unknown
counts as neither, never as online.
"""

from __future__ import annotations

from typing import Final

ONLINE: Final = "online"
FAULT: Final = "fault"
OFFLINE: Final = "offline"
UNKNOWN: Final = "unknown"
STATES: Final = (ONLINE, FAULT, OFFLINE, UNKNOWN)
#: States that open a fault episode (and, after the grace period, a ticket).
BAD: Final = frozenset({FAULT, OFFLINE})


def channel_state(device_online: bool | None, status: str | None,
                  picture: str | None = None) -> tuple[str, str | None]:
    """A channel's state from its device's (None: not known), its catalog status (ON, OFF,
    VLOST, DEFECT, UNKNOWN) and the picture faults diagnosis confirmed (their detail, or None):
    (state, detail).

    A device that is offline takes its channels with it. A channel whose catalog says nothing
    (UNKNOWN, no Status element) of an online device is online: the device answers for it,
    unless its picture is faulty. The catalog's word on a fault comes before the picture's.
    """
    s = (status or "").upper()
    if device_online is False:
        return OFFLINE, "device offline"
    if s == "OFF":
        return OFFLINE, "channel off"
    if s in ("VLOST", "DEFECT"):
        return FAULT, s.lower()
    if device_online is None:
        return UNKNOWN, None
    return (FAULT, picture) if picture is not None else (ONLINE, None)
