"""``xueliang serve`` with what follows a registration switched off: the SIP answers alone.

Kamailio, as bench/anchors/kamailio.cfg runs it, answers the storm and keeps each binding in
memory. xueliang does that too, and then, for every device, what the platform is for: its
row in the registry, an event in the log, its presence, a bus event that the health history
turns into an availability interval, the Catalog and DeviceInfo queries. This harness runs
the real server with ``SignallingService._apply`` (the registrar's events: rows, presence,
bus, queries) and the keepalive's column write made no-ops, so that
``storm_kamailio.py --target all`` can put the answering alone beside both. A measurement
aid only: such a server forgets every device it answers.

    .venv/bin/python bench/anchors/answering_only.py serve   # what sip_storm.start_server runs
"""

from __future__ import annotations

import sys
from typing import Any

from xueliang import cli
from xueliang.gb28181.persist import SignallingWriter
from xueliang.gb28181.service import SignallingService


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


SignallingService._apply = _nothing  # type: ignore[method-assign]
SignallingWriter.keepalive = _nothing  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv[0] = "xueliang"
    cli.main()
