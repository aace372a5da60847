"""Cascade catalog: an upper platform asks for a catalog of 100,000 shared channels (issue 15).

This process is the lower platform: a migrated database (SQLite in a temp dir, or
``--database URL``) with the channels, the upper's row with its share, and the running link
(cascade/links.py), as `xueliang serve` runs it. The upper is another process (this script
with ``--upper``): it answers our REGISTER, sends the Catalog query, answers every part 200 and
counts the items. The time is the upper's, from its query to the last part.

Prints ``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xueliang.cascade.links import CascadeLinks

ROOT = Path(__file__).resolve().parent.parent
UPPER_ID = "34000000002000000001"
LOCAL_ID = "34020100002000000001"
NVR = "34020100001180000001"


class _Stream:
    """The upper's end of a TCP connection, with the datagram socket's calls (one message each)."""

    def __init__(self, server: socket.socket) -> None:
        from xueliang.gb28181.sip import StreamFramer

        self.server = server
        self.conn: socket.socket | None = None
        self.framer = StreamFramer()
        self.ready: list[bytes] = []

    def settimeout(self, t: float) -> None:
        self.server.settimeout(t)

    def recvfrom(self, n: int) -> tuple[bytes, object]:
        if self.conn is None:
            self.conn, _ = self.server.accept()
            self.conn.settimeout(self.server.gettimeout())
        while not self.ready:
            data = self.conn.recv(1 << 20)
            if not data:
                raise ConnectionError("closed")
            self.framer.feed(data)
            self.ready.extend(self.framer.messages())
        return self.ready.pop(0), None

    def sendto(self, data: bytes, addr: object) -> None:
        assert self.conn is not None
        self.conn.sendall(data)


def upper(port_file: Path, expect: int, transport: str = "udp") -> None:
    """The upper platform: plain sockets, no xueliang code in the loop but the SIP parser."""
    from xueliang.gb28181 import manscdp
    from xueliang.gb28181.sip import make_response, parse_message

    sock: Any
    if transport == "tcp":
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port_file.write_text(str(server.getsockname()[1]))
        sock = _Stream(server)
    else:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        udp.bind(("127.0.0.1", 0))
        port_file.write_text(str(udp.getsockname()[1]))
        sock = udp
    items = parts = largest = 0
    ids: set[str] = set()
    sum_num: int | None = None
    started: float | None = None
    sock.settimeout(120)
    id_re = re.compile(rb"<DeviceID>(\d{20})</DeviceID>")
    while True:
        data, addr = sock.recvfrom(65536)
        msg = parse_message(data)
        if not hasattr(msg, "method"):
            continue
        if msg.method == "REGISTER":
            sock.sendto(make_response(msg, 200, to_tag="u", headers=[("Expires", "3600")]).serialize(), addr)
            if started is None:
                query = manscdp.encode_query("Catalog", 1, LOCAL_ID)
                head = (f"MESSAGE sip:{LOCAL_ID}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport.upper()} 127.0.0.1:{port_file.read_text()};"
                        f"branch=z9hG4bKbench1\r\nFrom: <sip:{UPPER_ID}@3400000000>;tag=b1\r\n"
                        f"To: <sip:{LOCAL_ID}@3400000000>\r\nCall-ID: bench-q\r\nCSeq: 1 MESSAGE\r\n"
                        f"Content-Type: Application/MANSCDP+xml\r\nContent-Length: {len(query)}\r\n\r\n")
                started = time.perf_counter()
                sock.sendto(head.encode() + query, addr)
            continue
        sock.sendto(make_response(msg, 200, to_tag="u").serialize(), addr)
        if msg.method != "MESSAGE" or b"<Response>" not in msg.body:
            continue
        parts += 1
        largest = max(largest, len(data))
        if sum_num is None:
            m = re.search(rb"<SumNum>(\d+)</SumNum>", msg.body)
            sum_num = int(m.group(1)) if m else 0
        found = id_re.findall(msg.body)[1:]  # the first DeviceID is the platform's, in the header
        items += len(found)
        ids.update(f.decode() for f in found)
        if sum_num is not None and items >= sum_num:
            break
    assert started is not None
    took = time.perf_counter() - started
    print(f"cascade_catalog_seconds: {took:.2f} s")
    print(f"cascade_catalog_items: {items} items")
    print(f"cascade_catalog_distinct: {len(ids)} items")
    print(f"cascade_catalog_sum_num: {sum_num} items")
    print(f"cascade_catalog_parts: {parts} messages")
    print(f"cascade_catalog_rate: {items / took:.0f} items/s")
    print(f"cascade_catalog_items_per_part: {items / max(parts, 1):.1f} items")
    print(f"cascade_catalog_largest_message: {largest} bytes")
    print(f"cascade_catalog_expected: {expect} items")
    print(f"cascade_catalog_upper_cpu: {time.process_time():.1f} s")


async def lower(database: str, channels: int, upper_port: int, transport: str,
                message: int) -> tuple[float, CascadeLinks]:
    from sqlalchemy import insert

    from xueliang.cascade.links import CascadeLinks
    from xueliang.cascade.share import Share
    from xueliang.cascade.uppers import UpperIn, UpperService
    from xueliang.db.engine import create_engine, session_factory
    from xueliang.db.migrate import upgrade_async
    from xueliang.db.tables import Channel, Device
    from xueliang.sealing import Sealer

    await upgrade_async(database)
    engine = create_engine(database)
    sessions = session_factory(engine)
    t0 = time.perf_counter()
    async with sessions() as s:
        s.add(Device(id=NVR, name="NVR", online=True))
        await s.commit()
    rows = [{"id": f"3402{i // 10000:02d}00001310{i % 1000000:06d}", "name": f"城区点位{i}号", "kind": "camera",
             "device_id": NVR, "division_code": f"3402{i // 10000:02d}", "department": "公安局",
             "point_class": 1 + i % 3, "status": "ON" if i % 7 else "OFF", "longitude": 117.2 + i * 1e-6,
             "latitude": 31.8, "address": "合肥市某区某路", "manufacturer": "海康威视", "model": "DS-2CD",
             "ptz_type": 1 + i % 3} for i in range(channels)]
    async with sessions() as s:
        for k in range(0, len(rows), 5000):
            await s.execute(insert(Channel), rows[k:k + 5000])
        await s.commit()
    seeded = time.perf_counter() - t0
    service = UpperService(sessions, Sealer(b"bench-secret-0123456789abcdef"))
    links = CascadeLinks(service, local_id=LOCAL_ID, sip_host="127.0.0.1", udp_message=message or 1300,
                         tcp_message=message or 60000)
    await links.start()
    await service.create(UpperIn(name="province", sip_id=UPPER_ID, host="127.0.0.1", port=upper_port,
                                 transport=transport, password="x", keepalive_interval=60,
                                 share=Share(divisions=["3402"])))
    await links.settled()
    return seeded, links


async def run_lower_until(proc: subprocess.Popen[str], *args: object) -> tuple[float, dict[str, object]]:
    seeded, links = await lower(*args)  # type: ignore[arg-type]
    cpu = time.process_time()
    await asyncio.to_thread(proc.wait)  # the upper exits once it has every item
    cpu = time.process_time() - cpu
    await asyncio.sleep(0.5)  # the last answers reach the link
    status = next(iter(links.drivers.values())).status()
    status["cpu"] = cpu
    await links.stop()
    return seeded, status


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=100_000)
    ap.add_argument("--database", default="")
    ap.add_argument("--upper", default="")
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    ap.add_argument("--message", type=int, default=0,
                    help="largest SIP message (sip.cascade_udp_message / cascade_tcp_message); 0: the default")
    a = ap.parse_args()
    if a.upper:
        upper(Path(a.upper), a.expect, a.transport)
        return
    tmp = Path(tempfile.mkdtemp())
    database = a.database or f"sqlite+aiosqlite:///{tmp / 'cascade.db'}"
    port_file = tmp / "upper.port"
    proc = subprocess.Popen([sys.executable, __file__, "--upper", str(port_file), "--expect", str(a.channels),
                             "--transport", a.transport],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        port = int(port_file.read_text())
        seeded, status = asyncio.run(asyncio.wait_for(
            run_lower_until(proc, database, a.channels, port, a.transport, a.message), 600))
        out = proc.stdout.read() if proc.stdout else ""
        print(f"cascade_catalog_channels: {a.channels} channels")
        limit = a.message or (60000 if a.transport == "tcp" else 1300)
        print(f"cascade_catalog_message_limit_{a.transport}: {limit} bytes")
        print(f"cascade_catalog_seed_seconds: {seeded:.1f} s")
        print(f"cascade_catalog_read_seconds: {status['last_catalog_read_seconds']:.2f} s")
        print(f"cascade_catalog_lower_seconds: {status['last_catalog_seconds']:.2f} s")
        print(f"cascade_catalog_lower_cpu: {status['cpu']:.1f} s")
        print(out, end="")
    finally:
        if proc.poll() is None:
            proc.kill()


if __name__ == "__main__":
    main()
