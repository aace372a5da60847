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
from xueliang.gb28181 import persist, service
from xueliang.gb28181.answers import Answers
from xueliang.gb28181.rows import Unwritten
from xueliang.health.history import HistoryRecorder

PARTS = ("consequences", "history", "writer")


async def _nothing_async(*_args: Any, **_kwargs: Any) -> None:
    return None


class _AnswersAlone(Answers):
    """The answers with the registrar's events dropped (compiled ``Answers`` cannot be patched:
    the service builds this subclass instead)."""

    def apply(self, events: Any, wall: float) -> None:
        return None


class _KeepalivesNothing(Unwritten):
    """The writer's backlog without keepalive times (compiled ``Unwritten`` cannot be patched:
    the writer builds this subclass instead)."""

    def keepalive(self, device_id: str, wall: float) -> None:
        return None


class _KeepsNothing(_KeepalivesNothing):
    """The writer's backlog that keeps nothing: no device rows, events, keepalive times."""

    def device_new(self, s: Any) -> None:
        return None

    def device_state(self, s: Any) -> None:
        return None

    def device_info(self, device_id: str, name: Any, manufacturer: Any, model: Any, firmware: Any) -> None:
        return None

    def device_offline(self, device_id: str) -> None:
        return None

    def event(self, kind: str, subject: str, wall: float, data: Any) -> None:
        return None


def switch_off(part: str) -> None:
    if part == "consequences":
        service.Answers = _AnswersAlone  # type: ignore[misc]
        persist.Unwritten = _KeepalivesNothing  # type: ignore[misc]
    elif part == "history":  # never subscribes: the bus offers it nothing
        HistoryRecorder.start = _nothing_async  # type: ignore[method-assign]
        HistoryRecorder.stop = _nothing_async  # type: ignore[method-assign]
    elif part == "writer":
        persist.Unwritten = _KeepsNothing  # type: ignore[misc]
    else:
        raise SystemExit(f"XUELIANG_BENCH_SWITCH_OFF: {part!r} is not one of {', '.join(PARTS)}")


if __name__ == "__main__":
    switch_off(os.environ.get("XUELIANG_BENCH_SWITCH_OFF", "consequences"))
    sys.argv[0] = "xueliang"
    cli.main()
