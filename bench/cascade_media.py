"""Video up to upper platforms (级联上送): what relaying a camera to an upper costs, against one
more local viewer, and many upstream streams at once with their loss counted at the upper.

Prints ``name: value unit`` lines. In separate processes:

* **cameras** — bench/media.py's sender: N 720p25 H.264 cameras (~2 Mbit/s, GOP 2 s) as PS
  over RTP to the hub's shared UDP port, paced per frame;
* **this process** — the media hub (RTP in, PS demux, the outputs) and what is measured: its
  CPU (``time.process_time``) over a window of ``--seconds`` in three phases on the same
  cameras, repeated ``--rounds`` times: (1) the cameras alone; (2) one local viewer per camera
  (an fMP4 reader whose bytes go out on a TCP connection, as an HTTP viewer's would, less
  HTTP); (3) instead, one upper per camera (a ``ps`` reader sent as RTP with the upper's SSRC
  by `PsRtpSender`, UDP or ``--tcp`` where we connect to the upper);
* **uppers and viewers' far ends** — one process that receives everything: the viewers' TCP
  bytes, and the uppers' RTP, counting per SSRC the packets and the sequence-number gaps
  (loss), plus the kernel's UDP receive-buffer drops during the run.

The increments over the cameras alone (medians of the rounds) give the cost per camera of one
more viewer (2 − 1) and of one upper (3 − 1).

    python bench/cascade_media.py --streams 20 --seconds 10            # upper vs viewer
    python bench/cascade_media.py --streams 100 --seconds 20 --no-viewers [--tcp]  # 100 uppers
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import platform
import selectors
import socket
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import media as camera_bench  # noqa: E402  (bench/media.py: the clip and the camera sender)
from xueliang.config import MediaConfig  # noqa: E402
from xueliang.media.hub import MediaHub  # noqa: E402
from xueliang.media.ps_rtp_out import PsRtpSender  # noqa: E402

UPPER_SSRC = 200_000_000


# --------------------------------------------------------------------------- the far ends


def far_end_main(udp_port: Any, tcp_port: Any, rtp_tcp_port: Any, ready: Any, stop: Any, result: Any) -> None:
    """Receives the viewers' TCP bytes and the uppers' RTP (UDP, or TCP that we accept)."""
    sel = selectors.DefaultSelector()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # SO_RCVBUFFORCE (Linux 33; Python has no name for it): past rmem_max when allowed
        udp.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)
    except OSError:
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    sel.register(udp, selectors.EVENT_READ, "udp")
    listeners = []
    for kind, value in (("viewer", tcp_port), ("rtp-tcp", rtp_tcp_port)):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(512)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, kind)
        value.value = ls.getsockname()[1]
        listeners.append(ls)
    udp_port.value = udp.getsockname()[1]
    ready.set()
    last: dict[int, int] = {}
    packets: dict[int, int] = {}
    gaps: dict[int, int] = {}
    viewer_bytes = 0
    bufs: dict[socket.socket, bytearray] = {}

    def rtp(pkt: bytes | memoryview) -> None:
        seq = (pkt[2] << 8) | pkt[3]
        ssrc = int.from_bytes(pkt[8:12], "big")
        before = last.get(ssrc)
        if before is not None:
            gaps[ssrc] = gaps.get(ssrc, 0) + ((seq - before - 1) & 0xFFFF)
        last[ssrc] = seq
        packets[ssrc] = packets.get(ssrc, 0) + 1

    while not stop.is_set():
        for key, _ in sel.select(0.2):
            kind = key.data
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if kind == "udp":
                for _ in range(1024):
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        break
                    rtp(data)
            elif kind in ("viewer", "rtp-tcp"):
                conn, _ = sock.accept()
                conn.setblocking(False)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                sel.register(conn, selectors.EVENT_READ, "v" if kind == "viewer" else "t")
                bufs[conn] = bytearray()
            else:
                try:
                    data = sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(sock)
                    sock.close()
                    continue
                if kind == "v":
                    viewer_bytes += len(data)
                    continue
                buf = bufs[sock]
                buf += data
                pos = 0
                while len(buf) - pos >= 2:
                    (n,) = struct.unpack_from("!H", buf, pos)
                    if len(buf) - pos - 2 < n:
                        break
                    rtp(memoryview(buf)[pos + 2: pos + 2 + n])
                    pos += 2 + n
                del buf[:pos]
    result.put({"packets": sum(packets.values()), "gaps": sum(gaps.values()), "ssrcs": len(packets),
                "viewer_bytes": viewer_bytes})


def socket_drops(port: int) -> int:
    """Datagrams the kernel dropped on the UDP socket bound to ``port`` (its queue was full)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port:
            return int(f[-1])
    return 0


# --------------------------------------------------------------------------- the run


async def measure(seconds: float) -> tuple[float, float]:
    """CPU of this process over ``seconds``, in cores: (user, system). On loopback the system
    part includes the receiving side's network stack, which runs in the sender's system call."""
    c0, t0 = os.times(), time.monotonic()
    await asyncio.sleep(seconds)
    c1, dt = os.times(), time.monotonic() - t0
    return (c1.user - c0.user) / dt, (c1.system - c0.system) / dt


async def viewer(reader: Any, writer: asyncio.StreamWriter) -> None:
    """A local viewer's fMP4 bytes onto its connection (what an HTTP response would send)."""
    try:
        while True:
            chunks = await reader.get()
            if not chunks:
                return
            writer.write(b"".join(chunks))
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()
    finally:
        reader.close()
        writer.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.streams
    clip = camera_bench.encode_clip()
    ctx = mp.get_context("fork")
    ports = [ctx.Value("i", 0) for _ in range(3)]
    ready, stop, result = ctx.Event(), ctx.Event(), ctx.Queue()
    far = ctx.Process(target=far_end_main, args=(*ports, ready, stop, result), daemon=True)
    far.start()
    ready.wait(10)
    udp_port, view_port, rtp_tcp_port = (p.value for p in ports)

    hub = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0, host="127.0.0.1", announce_ip="127.0.0.1",
                               idle_stop_seconds=3600, rtp_timeout=60), tick_interval=0.5)
    await hub.start()
    if hub.rtp._udp is not None:
        # The cameras' side is not what is measured: give the shared port the queue the hub asks
        # for (rtp_server.py looks SO_RCVBUFFORCE up by a name Python does not define, so it
        # gets only net.core.rmem_max; see docs/performance.md).
        with contextlib.suppress(OSError):
            hub.rtp._udp.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)
    names = [f"live/cam{i}" for i in range(n)]
    for i, name in enumerate(names):
        hub.open_rtp_receiver(name, camera_bench.SSRC_BASE + i)
    sent = ctx.Array("l", n)
    late = ctx.Array("d", 2)
    go, cam_stop, bursts = ctx.Event(), ctx.Event(), ctx.Queue()
    cams = ctx.Process(target=camera_bench.sender_main,
                       args=(clip, [hub.rtp.udp_port], n, False, go, cam_stop, sent, late, bursts), daemon=True)
    cams.start()
    go.set()
    out: dict[str, Any] = {"cameras": [], "viewers": [], "uppers": []}
    senders: list[PsRtpSender] = []
    drops = 0
    try:
        streams = [await hub.acquire(name, timeout=30) for name in names]
        await asyncio.sleep(2.0)  # every camera past its first GOP
        for k in range(args.rounds):
            # One phase at a time, each round in the same order: the machine's drift (other work
            # on the shared cores) falls on every phase alike, and the medians are compared.
            out["cameras"].append(await measure(args.seconds))
            if not args.no_viewers:
                tasks = []
                for s in streams:
                    _, writer = await asyncio.open_connection("127.0.0.1", view_port)
                    tasks.append(asyncio.create_task(viewer(s.reader("fmp4"), writer)))
                await asyncio.sleep(1.0)
                out["viewers"].append(await measure(args.seconds))
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            group = []
            for i, s in enumerate(streams):
                transport = "tcp-active" if args.tcp else "udp"
                sender = PsRtpSender(s.reader("ps", info={"upper": "bench"}), ssrc=UPPER_SSRC + k * 1000 + i,
                                     transport=transport, host="127.0.0.1",
                                     port=rtp_tcp_port if args.tcp else udp_port, bind_host="127.0.0.1")
                await sender.open()
                sender.start()
                group.append(sender)
            await asyncio.sleep(1.0)
            errors0 = camera_bench.udp_errors()
            out["uppers"].append(await measure(args.seconds))
            drops += camera_bench.udp_errors()[1] - errors0[1]
            for x in group:
                x.close()
            senders += group
            await asyncio.sleep(0.5)
        out["udp_rcvbuf_drops"] = drops
        out["receiver_socket_drops"] = socket_drops(udp_port)
        out["hub_socket_drops"] = socket_drops(hub.rtp.udp_port)
        out["sent_packets"] = sum(x.packets for x in senders)
        out["dropped_frames"] = sum(x.dropped_frames for x in senders)
        out["camera_lost"] = sum(s.lost for s in streams)
        out["cut_readers"] = sum(s.cuts for s in streams)
    finally:
        cam_stop.set()
        for x in senders:
            x.close()
        await asyncio.sleep(0.5)
        stop.set()
        got = result.get(timeout=10)
        out.update({f"upper_{k}": v for k, v in got.items()})
        cams.join(5)
        far.join(5)
        await hub.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--tcp", action="store_true", help="uppers by TCP (we connect), RFC 4571")
    ap.add_argument("--no-viewers", action="store_true", help="skip the local-viewer phase")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the phases (medians reported)")
    args = ap.parse_args()
    r = asyncio.run(run(args))
    n = args.streams
    kind = "tcp" if args.tcp else "udp"
    print(f"machine: {platform.processor() or platform.machine()} x{os.cpu_count()} (shared)")
    print(f"streams: {n} cameras")
    print(f"rounds: {args.rounds} x {args.seconds:g} s per phase")

    def total(phase: str) -> float:
        return statistics.median(u + s for u, s in r[phase])

    def part(phase: str, i: int) -> float:
        return statistics.median(x[i] for x in r[phase])

    base = total("cameras")
    print(f"cpu_cameras: {base * 100:.1f} %")
    print(f"cpu_with_one_upper_each_{kind}: {total('uppers') * 100:.1f} %")
    upper_cost = (total("uppers") - base) / n
    print(f"cost_per_upper_{kind}: {upper_cost * 1000:.2f} ms_cpu_per_s")
    print(f"cost_per_upper_{kind}_user: {(part('uppers', 0) - part('cameras', 0)) / n * 1000:.2f} ms_cpu_per_s")
    print(f"cost_per_upper_{kind}_system: {(part('uppers', 1) - part('cameras', 1)) / n * 1000:.2f} ms_cpu_per_s")
    if r["viewers"]:
        viewer_cost = (total("viewers") - base) / n
        print(f"cpu_with_one_viewer_each: {total('viewers') * 100:.1f} %")
        print(f"cost_per_local_viewer: {viewer_cost * 1000:.2f} ms_cpu_per_s")
        print(f"cost_per_local_viewer_user: {(part('viewers', 0) - part('cameras', 0)) / n * 1000:.2f} ms_cpu_per_s")
        print(f"cost_per_local_viewer_system: {(part('viewers', 1) - part('cameras', 1)) / n * 1000:.2f} "
              "ms_cpu_per_s")
        if viewer_cost > 0:
            print(f"upper_over_viewer: {upper_cost / viewer_cost:.2f} ratio")
        each = [(sum(u) - sum(c)) / (sum(v) - sum(c))
                for c, v, u in zip(r["cameras"], r["viewers"], r["uppers"], strict=True) if sum(v) > sum(c)]
        if each:
            print(f"upper_over_viewer_per_round: {' '.join(f'{x:.2f}' for x in each)} ratio")
    print(f"upper_streams_received: {r['upper_ssrcs']} streams")
    print(f"upper_packets_sent: {r['sent_packets']} packets")
    print(f"upper_packets_received: {r['upper_packets']} packets")
    print(f"upper_sequence_gaps: {r['upper_gaps']} packets")
    print(f"upper_frames_dropped_by_sender: {r['dropped_frames']} frames")
    print(f"udp_rcvbuf_drops: {r['udp_rcvbuf_drops']} datagrams")
    print(f"upper_receiver_socket_drops: {r['receiver_socket_drops']} datagrams")
    print(f"hub_camera_socket_drops: {r['hub_socket_drops']} datagrams")
    print(f"camera_rtp_lost: {r['camera_lost']} packets")
    print(f"readers_cut: {r['cut_readers']} times")


if __name__ == "__main__":
    main()
