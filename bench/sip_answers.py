"""What each part of a registration costs xueliang's own code, piece by piece, in process.

``bench/sip_handling.py`` gives a storm's whole cost; this script takes it apart, on the real
platform (the composition root, SQLite, every subscriber, media off, as ``sip_storm.py`` starts
its server) with the SIP endpoint's socket replaced by memory:

* ``sip_answer_challenge``, ``sip_answer_register``, ``sip_answer_keepalive``: one datagram
  through ``SipEndpoint._datagram`` to its answer, repeated on one registered device (a REGISTER
  without credentials answered 401; the same authenticated REGISTER again, a refresh answered
  200; a Keepalive answered 200). The best of five rounds of ``--repeat``, loop thread CPU.
* ``sip_fresh_registration_events``: ``SignallingService._apply`` of a new device's
  ``Registered`` and ``Online`` (the writer's queues, presence, the bus, the event log, the
  queries that follow queued), per device over ``--devices`` new ones.
* ``sip_flush_per_device`` and ``sip_flush_loop_per_device``: the signalling writer's flush of
  those devices' rows and events to SQLite, all threads and the event loop's thread alone.

Prints ``name: value unit`` lines.

    .venv/bin/python bench/sip_answers.py [--devices 10000] [--repeat 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

import sip_handling  # bench/ is on sys.path when this script runs
from sip_storm import Client


async def run(args: argparse.Namespace) -> int:
    from xueliang import heap
    from xueliang.app import Platform
    from xueliang.gb28181.registrar import DeviceSession, Online, Registered

    password = secrets.token_urlsafe(12)
    with tempfile.TemporaryDirectory() as tmp:
        settings = sip_handling._settings(Path(tmp), password)
        platform = Platform(settings)
        await platform.start()
        heap.started()
        try:
            sig = platform.signalling
            assert sig is not None
            ep = sig.endpoint
            wire = sip_handling._Wire()
            ep._udp = sip_handling._ServerSide(wire)  # type: ignore[assignment]
            client = Client(sip_handling.SERVER, 1, password=password, server_id=settings.sip.id,
                            domain=settings.sip.domain, centre=settings.sip.id[:8], first_seq=1, sockets=1,
                            local_host=sip_handling.CLIENT_HOST)
            client.transports = [sip_handling._ClientSide(wire, 40000)]  # type: ignore[list-item]
            client.ports = [40000]
            addr = (sip_handling.CLIENT_HOST, 40000)

            def answer(data: bytes, want: bytes) -> bytes:
                ep._datagram(data, addr, "udp")
                got = wire.to_client.popleft()
                if not got.startswith(want):
                    raise SystemExit(f"expected {want!r}, got {got[:60]!r}")
                return got

            challenge = client._register(0)
            header = re.search(rb"WWW-Authenticate:([^\r\n]*)", answer(challenge, b"SIP/2.0 401 "))
            assert header is not None
            register = client._register(0, client._authorization(0, header.group(1)))
            answer(register, b"SIP/2.0 200 ")
            keepalive = client._keepalive(0)
            answer(keepalive, b"SIP/2.0 200 ")
            await asyncio.sleep(1.5)  # the first registration's writes and queries out of the way

            for name, data, want in (("challenge", challenge, b"SIP/2.0 401 "), ("register", register, b"SIP/2.0 200 "),
                                     ("keepalive", keepalive, b"SIP/2.0 200 ")):
                best = float("inf")
                for _ in range(5):
                    wire.to_client.clear()
                    t = time.thread_time()
                    for _ in range(args.repeat):
                        ep._datagram(data, addr, "udp")
                    best = min(best, (time.thread_time() - t) / args.repeat)
                    if len(wire.to_client) != args.repeat or not wire.to_client[-1].startswith(want):
                        raise SystemExit(f"{name}: {len(wire.to_client)} answers, last {wire.to_client[-1][:40]!r}")
                    wire.to_client.clear()
                    await asyncio.sleep(0.05)
                print(f"sip_answer_{name}: {best * 1e6:.2f} us")

            # A storm's new devices: their events, then the writer's flush of them.
            for w in sig._after_workers:
                w.cancel()  # the queries they would send go to no one here
            events = []
            for i in range(args.devices):
                s = DeviceSession(f"3402000000132{i:07d}", admission="accepted", online=True, registered=True,
                                  addr=("127.0.0.2", 40000 + i % 8), contact="<sip:x@127.0.0.2>",
                                  registered_wall=time.time(), last_seen=time.monotonic())
                events.append([Registered(s, True, True), Online(s.device_id, "registered")])
            await sig.writer.flush()
            t = time.thread_time()
            for evs in events:
                sig._apply(list(evs), time.time())
            print(f"sip_fresh_registration_events: {(time.thread_time() - t) / args.devices * 1e6:.2f} us")
            cpu, loop = time.process_time(), time.thread_time()
            await sig.writer.flush()
            print(f"sip_flush_per_device: {(time.process_time() - cpu) / args.devices * 1e6:.2f} us")
            print(f"sip_flush_loop_per_device: {(time.thread_time() - loop) / args.devices * 1e6:.2f} us")
            return 0
        finally:
            await platform.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=20_000)
    return sip_handling.run_loop(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
