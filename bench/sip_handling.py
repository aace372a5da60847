"""Where a registration storm's CPU goes in xueliang's own code, without the sockets.

bench/sip_storm.py measures the server as a process, kernel and all: about a third of its CPU is
system time (UDP send and receive on loopback, wake-ups), which no change to our code removes
and a profiler apportions badly. This script starts the real platform in this process (the
composition root, SQLite, the bus and every subscriber, media off, as ``sip_storm.py`` starts
it), replaces the SIP endpoint's UDP transport with an in-memory one, and drives the same
storm through ``SipEndpoint._datagram`` with ``sip_storm.py``'s own client: each device
REGISTERs, answers the 401 and sends a Keepalive (with ``--answer-queries``, then answers the
platform's Catalog and DeviceInfo queries too). Devices start at ``--rate`` a second in 5 ms
batches, as in the storm, so the database writer batches as it would.

Prints ``name: value unit`` lines: the process's CPU (every thread: the loop's and the database
driver's) from the first request until the storm is written, less what the idle platform spends
over that time and less the client's own work, which runs here too (``sip_handling_cpu_settled``),
per device, and the loop thread's share. With
``--profile N`` the storm runs under cProfile (the loop's thread only, CPU clock) and the N
functions with the most own time are printed to stderr: a map of the Python cost, not a
figure to compare (the profiler adds a constant per call). With ``--gc-off`` the garbage
collector is off from the first request to the figures: the difference is what it costs.
``sip_handling_gc_gen*`` count the collector's runs during the storm and their CPU, by generation.

    .venv/bin/python bench/sip_handling.py [--devices 10000] [--rate 4000] [--profile 30] [--gc-off]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

from sip_storm import Client, storm_settings  # bench/ is on sys.path when this script runs

SERVER: tuple[str, int] = ("127.0.0.1", 5060)  # only the client's request URI names it
CLIENT_HOST = "127.0.0.2"
SETTLE = 2.5  # seconds: the database writer batches every second


class _GcTimes:
    """The collector's runs during the storm, by generation: how many and their CPU time (the
    loop's thread, where the storm runs; the client's share is in it too)."""

    def __init__(self) -> None:
        self.by_generation = [[0, 0.0], [0, 0.0], [0, 0.0]]
        self._start = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            entry = self.by_generation[info["generation"]]
            entry[0] += 1
            entry[1] += time.thread_time() - self._start


class _Wire:
    """Both directions in memory: what the client sends waits for the server, and back."""

    def __init__(self) -> None:
        self.to_server: deque[tuple[bytes, tuple[str, int]]] = deque()
        self.to_client: deque[bytes] = deque()


class _ServerSide:
    """Stands in for the endpoint's asyncio DatagramTransport (it only ever calls sendto)."""

    def __init__(self, wire: _Wire) -> None:
        self.wire = wire

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.wire.to_client.append(data)

    def close(self) -> None:  # SipEndpoint.stop
        pass


class _ClientSide:
    def __init__(self, wire: _Wire, port: int) -> None:
        self.wire = wire
        self.addr = (CLIENT_HOST, port)

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.wire.to_server.append((data, self.addr))


def _settings(workdir: Path, password: str) -> Any:
    os.environ.update(storm_settings(password, workdir, 0))  # as sip_storm.py starts its server
    from xueliang.config import Settings

    return Settings()


@contextlib.asynccontextmanager
async def memory_platform(password: str) -> AsyncIterator[tuple[Any, Any, _Wire]]:
    """The platform as ``sip_storm.py`` starts its server, its SIP endpoint's socket in memory:
    (platform, settings, wire)."""
    from xueliang import heap
    from xueliang.app import Platform

    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp), password)
        platform = Platform(settings)
        await platform.start()
        heap.started()  # as the server does once everything has started
        try:
            assert platform.signalling is not None
            wire = _Wire()
            platform.signalling.endpoint._udp = _ServerSide(wire)
            yield platform, settings, wire
        finally:
            await platform.stop()


def memory_client(settings: Any, password: str, wire: _Wire, devices: int) -> Client:
    """``sip_storm.py``'s client of ``devices`` devices, its sockets the wire's other end."""
    client = Client(SERVER, devices, password=password, server_id=settings.sip.id, domain=settings.sip.domain,
                    centre=settings.sip.id[:8], first_seq=1, sockets=8, local_host=CLIENT_HOST)
    client.transports = [_ClientSide(wire, 40000 + k) for k in range(8)]  # type: ignore[misc]
    client.ports = [40000 + k for k in range(8)]
    return client


async def run(args: argparse.Namespace) -> int:
    password = secrets.token_urlsafe(12)
    async with memory_platform(password) as (platform, settings, wire):
        sig = platform.signalling
        ep = sig.endpoint
        client = memory_client(settings, password, wire, args.devices)
        client.answer_queries = args.answer_queries
        await asyncio.sleep(3.0)  # start-up jobs done
        c, t = time.process_time(), time.monotonic()
        await asyncio.sleep(2.0)
        idle = (time.process_time() - c) / (time.monotonic() - t)

        client_cpu = 0.0  # the client's own work runs here too: counted, then taken out

        def pump() -> None:
            # the server handles what is queued; its answers reach the client, whose next
            # requests are handled in the same pass, as a busy socket would deliver them
            nonlocal client_cpu
            while wire.to_server or wire.to_client:
                while wire.to_server:
                    data, addr = wire.to_server.popleft()
                    ep._datagram(data, addr, "udp")
                c0 = time.thread_time()
                while wire.to_client:
                    client.on_datagram(wire.to_client.popleft())
                client_cpu += time.thread_time() - c0

        if args.gc_off:
            gc.disable()  # what the collector costs the storm: the figure without it
        collections = _GcTimes()
        gc.callbacks.append(collections.callback)
        prof = cProfile.Profile(time.thread_time) if args.profile else None
        cpu0, loop0, t0 = time.process_time(), time.thread_time(), time.monotonic()
        if prof:
            prof.enable()
        started = 0
        while started < args.devices:
            due = min(args.devices, int((time.monotonic() - t0) * args.rate) + 1)
            c0 = time.thread_time()
            while started < due:
                client.start_device(started)
                started += 1
            client_cpu += time.thread_time() - c0
            pump()
            await asyncio.sleep(0.005)
        pump()
        if args.answer_queries:
            # the devices answer the queries that follow a registration (as sip_storm.py's
            # --answer-queries): keep the wire moving until every answer is taken
            deadline = time.monotonic() + 300
            while not client.replied.is_set() and time.monotonic() < deadline:
                pump()
                await asyncio.sleep(0.005)
            pump()
        loop1 = time.thread_time()
        gc.callbacks.remove(collections.callback)
        if prof:
            prof.disable()
        await asyncio.sleep(SETTLE)
        cpu2, t2 = time.process_time(), time.monotonic()
        s = client.stats
        print(f"sip_handling_devices: {args.devices} devices")
        print(f"sip_handling_registered: {s.registered} devices")
        print(f"sip_handling_keepalives: {s.keepalives} answered")
        settled = cpu2 - cpu0 - idle * (t2 - t0) - client_cpu
        print(f"sip_handling_cpu_settled: {settled:.3f} s")
        print(f"sip_handling_cpu_per_device: {settled / args.devices * 1e6:.1f} us")
        print(f"sip_handling_loop_thread_cpu: {loop1 - loop0 - client_cpu:.3f} s")
        print(f"sip_handling_client_cpu: {client_cpu:.3f} s")
        for gen, (count, seconds) in enumerate(collections.by_generation):
            print(f"sip_handling_gc_gen{gen}_collections: {count} collections")
            print(f"sip_handling_gc_gen{gen}_cpu: {seconds * 1000:.1f} ms")
        if args.answer_queries:
            print(f"sip_handling_query_replies_acked: {s.replies_acked} messages")
        if prof:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.profile)
            print(out.getvalue(), file=sys.stderr)
        return 0 if s.keepalives == args.devices else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=4000.0, help="devices started per second")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    p.add_argument("--gc-off", action="store_true",
                   help="the garbage collector off during the storm (to see what it costs)")
    p.add_argument("--answer-queries", action="store_true",
                   help="the devices answer the Catalog and DeviceInfo queries that follow a registration")
    return run_loop(run(p.parse_args()))


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """``main`` on uvloop, as the server runs, or asyncio's loop where uvloop is missing."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


if __name__ == "__main__":
    raise SystemExit(main())
