"""What the state history adds to a registration storm, in instructions (repeatable on a busy
machine, where CPU seconds are not): 10,000 ``device.online`` events published on the
in-process bus at 4,000/s, as signalling publishes them, and written by the recorder to SQLite,
counted by valgrind's callgrind in all threads of this process (about 50× slower than native).

Run once without the recorder (the publishing alone) and once with it; the difference is the
history's. Prints `name: value unit` lines:

- ``history_storm_10000_publish_minstr``: publishing alone (no subscriber);
- ``history_storm_10000_with_history_minstr``: the same with the recorder subscribed and writing;
- ``history_storm_10000_minstr``: the difference: what the history adds.

    .venv/bin/python bench/history_instructions.py [--devices 10000]

(``--inner off|history`` is the measured process itself, run under valgrind by the outer one.)
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from _callgrind import control, total  # bench/ is on sys.path when this script runs

ROOT = Path(__file__).resolve().parent.parent


async def inner(mode: str, n: int) -> None:
    from xueliang.bus import EventBus
    from xueliang.db.engine import create_engine, session_factory
    from xueliang.db.migrate import upgrade
    from xueliang.health.history import HistoryRecorder

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/h.db"
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        bus = EventBus()
        rec = HistoryRecorder(session_factory(engine), bus)
        if mode == "history":
            await rec.start()
        await asyncio.sleep(0.3)
        control("-i", "on")
        control("-z")
        for i in range(n):
            bus.publish("device.online", f"3402000000111{i:07d}", reason="registered")
            if i % 20 == 19:
                await asyncio.sleep(0.005)  # 4,000 a second
        if mode == "history":
            await rec.drained(timeout=600)
        control("-d")
        control("-i", "off")
        if mode == "history":
            assert rec.written == n, rec.written
            await rec.stop()
        await engine.dispose()


def outer(n: int) -> int:
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="history-cg-") as tmp:
        for mode in ("off", "history"):
            out = Path(tmp) / f"{mode}.out"
            subprocess.run(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                 sys.executable, __file__, "--inner", mode, "--devices", str(n)],
                check=True, capture_output=True, cwd=ROOT,
            )
            counts[mode] = total(Path(f"{out}.1"))
    print(f"history_storm_{n}_publish_minstr: {counts['off'] / 1e6:.1f} Minstr")
    print(f"history_storm_{n}_with_history_minstr: {counts['history'] / 1e6:.1f} Minstr")
    print(f"history_storm_{n}_minstr: {(counts['history'] - counts['off']) / 1e6:.1f} Minstr")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--inner", choices=("off", "history"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        asyncio.run(inner(args.inner, args.devices))
        return 0
    return outer(args.devices)


if __name__ == "__main__":
    sys.exit(main())
