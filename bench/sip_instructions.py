"""A registration storm's work in xueliang's own code, in instructions: the same count on a busy
machine, where CPU seconds of a storm spread by ±15 % between two runs of the same code.

The real platform runs in this process (the composition root, SQLite, the bus and every
subscriber, media off, as ``sip_storm.py`` starts its server) with the SIP endpoint's socket
replaced by memory, as in ``sip_handling.py``, under valgrind's callgrind. ``sip_storm.py``'s
client drives ``--devices`` devices through it a step at a time, and only the server's steps are
counted (the client's work in between is not):

* ``sip_instructions_challenge``: every device's first REGISTER answered 401;
* ``sip_instructions_register``: every device's authenticated REGISTER answered 200, with what
  the registrar's events start at once (the writer's queues, presence, the bus, the event log,
  the queries queued);
* ``sip_instructions_keepalive``: every device's Keepalive answered 200;
* ``sip_instructions_written``: then the signalling writer's flush of the rows and events and
  the state history's intervals, until both are written (all threads: the database's too).

Each is printed per device (thousands of instructions), and their sum
(``sip_instructions_per_device``). All devices take each step before the next, so the
writer's flush holds them all at once (a storm's are a second's worth each): per-row costs are
the same, per-batch costs weigh a little less. The kernel's UDP work and the event loop's
wake-ups are not in these counts (``sip_storm.py`` measures the whole process). Callgrind is
about 50× slower than the CPU; 10,000 devices take about two minutes.

    .venv/bin/python bench/sip_instructions.py [--devices 10000] [--keep DIR]

(``--keep DIR`` keeps each step's dump, ``DIR/<step>.callgrind``, for ``callgrind_annotate``.)

(``--inner`` is the measured process itself, run under valgrind by the outer one.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _callgrind import control, total  # bench/ is on sys.path when this script runs

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("challenge", "register", "keepalive", "written")


async def inner(n: int) -> int:
    from sip_handling import memory_client, memory_platform  # bench/ is on sys.path

    password = secrets.token_urlsafe(12)
    async with memory_platform(password) as (platform, settings, wire):
        sig, health = platform.signalling, platform.health
        assert health is not None
        ep = sig.endpoint
        client = memory_client(settings, password, wire, n)
        # Start-up jobs (yesterday's reports, rollups) run slowly under valgrind: until quiet.
        for _ in range(240):
            c = time.process_time()
            await asyncio.sleep(1.0)
            if time.process_time() - c < 0.05:
                break
        # The state history's batches are taken here, so that what is counted does not
        # depend on where its one-second wait falls (its task would take the same events).
        history = health.history
        assert history._task is not None
        history._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await history._task

        def serve() -> int:
            """The server answers all that waits for it (counted)."""
            handled = 0
            while wire.to_server:
                data, addr = wire.to_server.popleft()
                ep._datagram(data, addr, "udp")
                handled += 1
            return handled

        def answers() -> None:
            """The client reads its answers and sends its next requests (not counted)."""
            while wire.to_client:
                client.on_datagram(wire.to_client.popleft())

        for i in range(n):
            client.start_device(i)
        for step in STEPS:
            control("-i", "on")
            control("-z")
            if step == "written":
                await sig.writer.flush()
                while batch := history._drain():
                    await history._handle(batch)
            else:
                handled = serve()
                if handled != n:
                    raise SystemExit(f"{step}: {handled} requests of {n}")
            control(f"--dump={step}")
            control("-i", "off")
            answers()
        s = client.stats
        if s.keepalives != n:
            raise SystemExit(f"{s.keepalives} keepalives answered of {n}")
        if history.written < n:
            raise SystemExit(f"state history: {history.written} intervals written of {n}")
        return 0


def outer(n: int, keep: Path | None) -> int:
    with tempfile.TemporaryDirectory(prefix="sip-cg-") as tmp:
        out = Path(tmp) / "cg.out"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"),
                                                                         os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
             sys.executable, __file__, "--inner", "--devices", str(n)],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
            return done.returncode
        # one dump per step, in order: cg.out.1, cg.out.2, …
        dumps = sorted(Path(tmp).glob("cg.out.*"), key=lambda p: int(p.suffix[1:]))
        if len(dumps) != len(STEPS):
            raise SystemExit(f"{len(dumps)} callgrind dumps, {len(STEPS)} expected")
        per = {step: total(d) / n for step, d in zip(STEPS, dumps, strict=True)}
        if keep is not None:  # for callgrind_annotate: where each step's instructions go
            keep.mkdir(parents=True, exist_ok=True)
            for step, d in zip(STEPS, dumps, strict=True):
                shutil.copyfile(d, keep / f"{step}.callgrind")
    for step, count in per.items():
        print(f"sip_instructions_{step}: {count / 1e3:.1f} kinstr/device")
    print(f"sip_instructions_per_device: {sum(per.values()) / 1e3:.1f} kinstr/device")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="keep each step's callgrind dump in this directory")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        return asyncio.run(inner(args.devices))
    return outer(args.devices, args.keep)


if __name__ == "__main__":
    sys.exit(main())
