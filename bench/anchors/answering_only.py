"""``xueliang serve`` with what follows a registration switched off: the SIP answers alone.

Kamailio, as bench/anchors/kamailio.cfg runs it, answers the storm and keeps each binding in
memory. xueliang does that too, and then, for every device, what the platform is for: its
row in the registry, an event in the log, its presence, a bus event that the health history
turns into an availability interval, the Catalog and DeviceInfo queries. This harness runs
the real server with ``Answers.apply`` (gb28181/answers.py: the registrar's events: rows,
presence, bus, queries) and the keepalive's column write made no-ops, so that
``storm_kamailio.py --target all`` can put the answering alone beside both. A measurement
aid only: such a server forgets every device it answers.

``XUELIANG_BENCH_SWITCH_OFF`` switches off one part instead, to see what each costs
(``bench/sip_storm.py --switch-off``):

* ``consequences`` (the default): all of the above;
* ``history``: the health history recorder (no availability intervals);
* ``writer``: the signalling writer's rows (no device rows, events, keepalive times).

    .venv/bin/python bench/anchors/answering_only.py serve   # what sip_storm.start_server runs
"""

from __future__ import annotations

import os
import sys
from typing import Any

from xueliang import cli
from xueliang.gb28181 import service
from xueliang.gb28181.answers import Answers
from xueliang.gb28181.persist import SignallingWriter
from xueliang.health.history import HistoryRecorder

PARTS = ("consequences", "history", "writer")


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


async def _nothing_async(*_args: Any, **_kwargs: Any) -> None:
    return None


class _AnswersAlone(Answers):
    """The answers with the registrar's events dropped (compiled ``Answers`` cannot be patched:
    the service builds this subclass instead)."""

    def apply(self, events: Any, wall: float) -> None:
        return None


def switch_off(part: str) -> None:
    if part == "consequences":
        service.Answers = _AnswersAlone  # type: ignore[misc]
        SignallingWriter.keepalive = _nothing  # type: ignore[method-assign]
    elif part == "history":  # never subscribes: the bus offers it nothing
        HistoryRecorder.start = _nothing_async  # type: ignore[method-assign]
        HistoryRecorder.stop = _nothing_async  # type: ignore[method-assign]
    elif part == "writer":
        for name in ("device_new", "device_state", "event", "keepalive", "device_offline", "device_info"):
            setattr(SignallingWriter, name, _nothing)
    else:
        raise SystemExit(f"XUELIANG_BENCH_SWITCH_OFF: {part!r} is not one of {', '.join(PARTS)}")


if __name__ == "__main__":
    switch_off(os.environ.get("XUELIANG_BENCH_SWITCH_OFF", "consequences"))
    sys.argv[0] = "xueliang"
    cli.main()
