"""Media hub under load: N streams of PS over RTP in, V viewers per stream out.

Prints ``name: value unit`` lines. What it does, in separate processes:

* **server** — ``xueliang serve`` (temporary SQLite database, SIP off, a bootstrap admin),
  the process whose CPU (utime + stime from ``/proc/<pid>/stat`` over the measurement
  window) and RSS are reported;
* **sender** — N GB/T 28181-like cameras: one 720p25 H.264 clip (~2 Mbit/s, GOP 2 s) encoded
  once with PyAV and muxed once into PS; per frame only the PS timestamps are re-stamped, a
  send time is written into an SEI NAL unit of the frame, and the frame is packetised with
  the stream's own SSRC and sent — over UDP to the shared port (default) or over one TCP
  connection per stream (``--tcp``, RFC 4571; a frame's packets in one write, or one write
  each with ``--tcp-writes packet``). Streams are paced per frame (25 fps) and
  staggered, each on its own receiver from ``POST /api/v1/media/rtp-receivers``;
* **viewers** (this process) — V HTTP-FLV (or ``--fmp4``) readers per stream. Each reader
  finds the SEI stamps in what it receives: latency = arrival − send time of the frame
  (the stamp is written just before the frame's packets go out, so this is the server's
  added delay plus loopback and this process's own scheduling).

Also reported: loss (server's RTP counters and the kernel's UDP receive-buffer drops), the
first-frame time of a viewer joining a running stream (request sent → its first key frame
complete), and the in/out rates.

    python bench/media.py --streams 50 --viewers 1 --seconds 20 [--tcp] [--fmp4] [--profile F]

The same load against ZLMediaKit (issue 18's anchor; see bench/anchors/README.md):
``--target zlm --zlm-bin PATH/MediaServer`` starts MediaServer with bench/anchors/zlm.ini
(its single-port RTP proxy; the stream id is the SSRC in hex, the app ``rtp``) and reads
``/rtp/<id>.live.flv`` or ``.live.mp4``; ``--target both --rounds N`` alternates xueliang and
ZLMediaKit N times in one run and prints each run and the medians, with the load average.
``--zlm-on-demand`` lets ZLMediaKit mux a format only for watched streams (as xueliang does),
``--zlm-threads 1`` gives it one event-poller thread. Its single port keeps one SSRC per source
address, so with ZLMediaKit as a target every camera sends from its own UDP socket, for both
servers (``--socket-per-camera``). ZLMediaKit's CPU is its whole process (every thread); it
reports no RTP sequence gaps here, so its loss is the kernel's UDP drops and the frames its
viewers saw.

``--servers 2`` runs two xueliang servers side by side (a media process per core, each with
its own RTP ports and database; stream i goes to server i mod 2, its viewers too) and reports
their CPU, RSS and counters summed: issue 18's "two media processes on two cores". No API
process sits in front: viewers read from the server holding their stream, as a cluster's
viewers read from the media node holding it (bench/cluster_relay.py drives that cluster).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import fractions
import heapq
import itertools
import json
import multiprocessing as mp
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _process import free_port
from _process import stop as stop_process  # bench/_process.py (this folder is on sys.path)

WIDTH, HEIGHT, FPS, GOP, BITRATE, CLIP_SECONDS = 1280, 720, 25, 50, 2_000_000, 4
STAMP_UUID = b"xueliang-bench!!"  # 16 bytes, no zero byte: no emulation prevention needed
SSRC_BASE = 300_000_000
ZLM_INI = Path(__file__).resolve().parent / "anchors" / "zlm.ini"
ZLM_SECRET = "xueliang-bench-anchor-0123456789"


# --------------------------------------------------------------------------- the clip


def encode_clip() -> list[tuple[int, int, bytes, bool]]:
    """(pts, dts, Annex B data with an SEI stamp slot, key frame) on the 90 kHz clock."""
    import av
    import numpy as np

    ctx: Any = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = WIDTH, HEIGHT
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, FPS)
    ctx.framerate = FPS
    ctx.gop_size = GOP
    ctx.bit_rate = BITRATE
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "scenecut=0"}
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    noise = rng.integers(0, 48, (HEIGHT, WIDTH), dtype=np.uint8)
    packets: list[Any] = []
    for i in range(FPS * CLIP_SECONDS):
        y = ((xx + 3 * i) ^ (yy - 2 * i)).astype(np.uint8) // 2 + np.roll(noise, i * 7, axis=1)
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(np.ascontiguousarray(y))
        frame.planes[1].update(np.full((HEIGHT // 2, WIDTH // 2), (i * 3) % 256, np.uint8))
        frame.planes[2].update(np.full((HEIGHT // 2, WIDTH // 2), 128, np.uint8))
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    out = []
    for p in packets:
        data = _with_sei(bytes(p))
        out.append(
            (
                p.pts * 3600,
                (p.dts if p.dts is not None else p.pts) * 3600,
                data,
                bool(p.is_keyframe),
            )
        )
    return out


def _with_sei(au: bytes) -> bytes:
    """Insert an SEI user_data_unregistered (UUID + 16 hex digits) before the first slice."""
    sei = b"\x00\x00\x00\x01\x06\x05\x20" + STAMP_UUID + b"0" * 16 + b"\x80"
    pos = 0
    while True:
        i = au.find(b"\x00\x00\x01", pos)
        if i < 0:
            return au + sei
        t = au[i + 3] & 0x1F
        if t in (1, 5):
            start = i - 1 if i > 0 and au[i - 1] == 0 else i
            return au[:start] + sei + au[start:]
        pos = i + 3


# --------------------------------------------------------------------------- the sender


def sender_main(
    clip: list[tuple[int, int, bytes, bool]],
    ports: list[int],
    streams: int,
    tcp: bool,
    go: Any,
    stop: Any,
    sent: Any,
    late: Any,
    bursts: Any,
    udp_sockets: int = 4,
    tcp_per_packet: bool = False,
) -> None:
    """Cameras: one process sending every stream, paced per frame, staggered.

    Over UDP the streams share ``udp_sockets`` source sockets (stream i on socket i % n); with
    one per stream each camera has its own source port, as real cameras have their own address
    (ZLMediaKit's single RTP port keeps one SSRC per source address and drops the others).
    Over TCP a frame's packets go in one write, or (``tcp_per_packet``) one write each, as
    many cameras' RTP stacks do.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from xueliang.media.frame import Codec, Frame
    from xueliang.media.ps_mux import PsMuxer, PsTemplate
    from xueliang.media.rtp import RtpPacketizer

    muxer = PsMuxer()
    templates = []
    for pts, dts, data, key in clip:
        chunk = muxer.mux(Frame(Codec.H264, pts, dts, data, key))
        templates.append((PsTemplate(chunk), chunk.find(STAMP_UUID) + 16, dts))
    span = max(t[2] for t in templates) - templates[0][2] + 3600
    packetizers = [RtpPacketizer(SSRC_BASE + i, mtu=1400, rfc4571=tcp) for i in range(streams)]
    bases = [(i * 7919 * 3600) & 0xFFFFFFFF for i in range(streams)]
    socks: list[socket.socket] = []
    if tcp:
        for _ in range(streams):
            s = socket.create_connection(("127.0.0.1", ports[0]))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            socks.append(s)
    else:
        for _ in range(udp_sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            socks.append(s)
    ends = array.array("q")
    go.wait()
    t0 = time.monotonic() + 0.1
    n = len(templates)
    # (due time, stream, frame number)
    heap = [(t0 + i / streams / FPS, i, 0) for i in range(streams)]
    heapq.heapify(heap)
    # A camera paces itself: when this process falls behind (it was not scheduled), a stream
    # resumes at 25 fps from now instead of bursting its backlog out at loopback speed.
    origin = [t0 + i / streams / FPS for i in range(streams)]
    addrs = [("127.0.0.1", p) for p in ports]  # one shared port, or one per stream
    while heap and not stop.is_set():
        due, i, k = heapq.heappop(heap)
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif -delay > late[0]:
            late[0] = -delay  # the sender itself fell behind (its CPU, not the server's)
        if -delay > 0.02:
            late[1] += 1
        if -delay > 1 / FPS:
            origin[i] += -delay  # drop the debt: no catch-up burst
        tpl, stamp_at, dts = templates[k % n]
        delta = (k // n) * span + bases[i]
        chunk = bytearray(tpl.restamp(delta))
        stamp = time.monotonic_ns()
        chunk[stamp_at : stamp_at + 16] = b"%016x" % stamp
        packets = packetizers[i].packetize(chunk, (dts + delta) & 0xFFFFFFFF)
        if tcp and tcp_per_packet:
            for p in packets:
                socks[i].sendall(p)
        elif tcp:
            socks[i].sendall(b"".join(packets))
        else:
            s = socks[i % len(socks)]
            for p in packets:
                try:
                    s.sendto(p, addrs[i % len(addrs)])
                except BlockingIOError:
                    pass
        sent[i] += len(packets)
        ends.append(stamp)
        ends.append(time.monotonic_ns())  # the frame's last packet is out
        heapq.heappush(heap, (origin[i] + (k + 1) / FPS, i, k + 1))
    for s in socks:
        s.close()
    bursts.put(ends.tobytes())


# --------------------------------------------------------------------------- viewers


class Dechunker:
    """HTTP/1.1 chunked transfer coding → body bytes (incremental); identity when not chunked."""

    def __init__(self, chunked: bool = True) -> None:
        self.chunked = chunked
        self.buf = b""
        self.remaining = 0
        self.skip_crlf = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if not self.chunked:
            return data
        self.buf += data
        out = []
        while self.buf:
            if self.remaining:
                take = self.buf[: self.remaining]
                out.append(take)
                self.remaining -= len(take)
                self.buf = self.buf[len(take) :]
                if self.remaining == 0:
                    self.skip_crlf = True
                continue
            if self.skip_crlf:
                if len(self.buf) < 2:
                    break
                self.buf = self.buf[2:]
                self.skip_crlf = False
                continue
            i = self.buf.find(b"\r\n")
            if i < 0:
                break
            size = int(self.buf[:i].split(b";")[0], 16)
            self.buf = self.buf[i + 2 :]
            if size == 0:
                self.done = True
                break
            self.remaining = size
        return b"".join(out)


async def http_get(
    port: int, path: str, token: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    if status != b"200":
        raise RuntimeError(f"GET {path}: {head[:200]!r}")
    return reader, writer, head


class Viewer:
    def __init__(self, latencies: list[tuple[int, int]]) -> None:
        self.latencies = latencies  # (send stamp, arrival), ns
        self.bytes = 0
        self.recording = False
        self.tail = b""

    async def run(self, port: int, path: str, token: str) -> None:
        reader, writer, head = await http_get(port, path, token)
        de = Dechunker(b"chunked" in head.lower())
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    return
                now = time.monotonic_ns()
                body = de.feed(data)
                self.bytes += len(body)
                if self.recording:
                    self._stamps(body, now)
                else:
                    self.tail = body[-40:]
        finally:
            writer.close()

    def _stamps(self, body: bytes, now: int) -> None:
        data = self.tail + body
        pos = data.find(STAMP_UUID)
        while pos >= 0:
            raw = data[pos + 16 : pos + 32]
            if len(raw) < 16:
                break
            with contextlib.suppress(ValueError):
                self.latencies.append((int(raw, 16), now))
            pos = data.find(STAMP_UUID, pos + 32)
        self.tail = data[-40:]


async def loop_lag(out: list[float]) -> None:
    """This (viewer) process's own event-loop lateness: [max seconds, times over 20 ms]."""
    while True:
        t = time.monotonic()
        await asyncio.sleep(0.01)
        lag = time.monotonic() - t - 0.01
        out[0] = max(out[0], lag)
        if lag > 0.02:
            out[1] += 1


#: Request sent → response headers, ms, of each join :func:`first_frame_ms` timed (where a slow
#: join waits: before the server answered, or after).
HEADER_TIMES: list[float] = []


async def first_frame_ms(port: int, path: str, token: str, fmp4: bool) -> float:
    """Request sent → the first (key) frame complete, for a viewer joining now."""
    t0 = time.perf_counter()
    reader, writer, head = await http_get(port, path, token)
    HEADER_TIMES.append((time.perf_counter() - t0) * 1000)
    de = Dechunker(b"chunked" in head.lower())
    body = b""
    try:
        while True:
            data = await reader.read(262144)
            if not data:
                raise RuntimeError("stream ended")
            body += de.feed(data)
            if fmp4:
                pos, seen = 0, []
                while pos + 8 <= len(body):
                    size, kind = struct.unpack_from(">I4s", body, pos)
                    if pos + size > len(body):
                        break
                    seen.append(kind)
                    pos += size
                if b"mdat" in seen:
                    return (time.perf_counter() - t0) * 1000
            else:
                pos = 13
                while pos + 11 <= len(body):
                    kind = body[pos]
                    size = int.from_bytes(body[pos + 1 : pos + 4], "big")
                    if pos + 11 + size + 4 > len(body):
                        break
                    if kind == 9 and body[pos + 11] >> 4 == 1 and body[pos + 12] == 1:
                        return (time.perf_counter() - t0) * 1000
                    pos += 11 + size + 4
    finally:
        writer.close()


# --------------------------------------------------------------------------- server


def cpu_split(pid: int) -> tuple[int, int]:
    """(user, system) clock ticks of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # utime, stime (fields 14, 15)


def cpu_ticks(pid: int) -> int:
    return sum(cpu_split(pid))


def cpu_split_all(pids: list[int]) -> tuple[int, int]:
    """(user, system) clock ticks of these processes together."""
    user = system = 0
    for pid in pids:
        u, s = cpu_split(pid)
        user, system = user + u, system + s
    return user, system


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


#: The phases of a run, named by the mark that ends them (``udp_drops_by_phase``).
_PHASE = {"ready": "starting", "warm": "warmup", "window": "window", "joins": "joins"}


def udp_errors() -> tuple[int, int]:
    lines = [
        ln.split()
        for ln in Path("/proc/net/snmp").read_text().splitlines()
        if ln.startswith("Udp:")
    ]
    head, vals = lines[0], lines[1]
    row = dict(zip(head[1:], map(int, vals[1:]), strict=True))
    return row.get("InErrors", 0), row.get("RcvbufErrors", 0)


def server_env(tmp: Path, api_port: int) -> dict[str, str]:
    """A throw-away server's settings: SQLite under ``tmp``, the bench's administrator (login())."""
    return {
        **os.environ,
        "XUELIANG_DATABASE__URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        "XUELIANG_STORAGE__VAR_DIR": str(tmp),
        "XUELIANG_BOOTSTRAP_ADMIN": "bench",
        "XUELIANG_BOOTSTRAP_PASSWORD": "Bench-pass-2024",
        "XUELIANG_SECRET_KEY": "bench-secret-0123456789abcdef0123",
        "XUELIANG_API__PORT": str(api_port),
        "XUELIANG_LOG_LEVEL": "warning",
        # The bench opens a receiver and the viewers of every stream from one address within
        # seconds; the per-address API limit (300 at once) is for people, and at 300 streams
        # it refused viewers, whose streams then went unwatched and cost nothing.
        "XUELIANG_ACCESS__API_BURST": os.environ.get("XUELIANG_ACCESS__API_BURST", "5000"),
    }


def start_server(
    tmp: Path, api_port: int, rtp_port: int, profile: str | None, port_range: tuple[int, int] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **server_env(tmp, api_port),
        "XUELIANG_SIP__ENABLED": "false",
        "XUELIANG_MEDIA__RTP_PORT": str(rtp_port),
        "XUELIANG_MEDIA__RTP_TCP_PORT": str(rtp_port),
        "XUELIANG_MEDIA__IDLE_STOP_SECONDS": "600",
    }
    if port_range is not None:
        env["XUELIANG_MEDIA__RTP_PORT_RANGE"] = f"[{port_range[0]}, {port_range[1]}]"
    script = Path(sys.executable).with_name("xueliang")
    exe = [str(script), "serve"]
    if not script.exists():
        exe = [sys.executable, "-c", "from xueliang.cli import main; main()", "serve"]
    if os.environ.get("BENCH_SERVER_WRAPPER"):  # experiments: a script that runs the server
        exe = [sys.executable, os.environ["BENCH_SERVER_WRAPPER"], "serve"]
    if profile:
        code = (
            "import cProfile\nfrom xueliang.cli import main\np = cProfile.Profile()\n"
            f"p.enable()\ntry:\n    main()\nfinally:\n    p.disable()\n    p.dump_stats({profile!r})\n"
        )
        exe = [sys.executable, "-c", code, "serve"]
    return subprocess.Popen(exe, env=env, cwd=tmp)


def wait_http(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("server did not start")


# --------------------------------------------------------------------------- main


async def login(api: httpx.AsyncClient) -> str:
    """The bootstrap administrator's token (enrolling its TOTP second factor if asked)."""
    r = await api.post(
        "/api/v1/auth/login", json={"username": "bench", "password": "Bench-pass-2024"}
    )
    body = r.json()
    if r.status_code == 200 and body.get("totp_setup_required"):
        from xueliang.access.totp import code_at

        r = await api.post(
            "/api/v1/auth/totp/enroll",
            json={"setup_token": body["setup_token"], "code": code_at(body["secret"])},
        )
        body = r.json()
    if r.status_code != 200 or "access_token" not in body:
        raise RuntimeError(f"login: {r.status_code} {r.text}")
    return str(body["access_token"])


def start_zlm(
    tmp: Path, exe: str, http_port: int, rtp_port: int, on_demand: bool, threads: int = 0
) -> subprocess.Popen[bytes]:
    """ZLMediaKit's MediaServer with bench/anchors/zlm.ini (ports, API secret, demand filled in).

    ``on_demand``: FLV and fMP4 muxed only for a stream someone watches in that format (what
    xueliang does); otherwise both formats for every stream (ZLMediaKit's default).
    """
    conf = tmp / "zlm.ini"
    conf.write_text(
        ZLM_INI.read_text().format(
            http_port=http_port, rtp_port=rtp_port, secret=ZLM_SECRET, demand=int(on_demand)
        )
    )
    # -l 3: warnings and errors only; the log goes to MediaServer's own log directory
    cmd = [exe, "-c", str(conf), "-l", "3"]
    if threads:
        cmd += ["-t", str(threads)]  # event-poller threads (default: one per core)
    return subprocess.Popen(
        cmd,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_zlm(base: str, proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"MediaServer exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.get(f"{base}/index/api/getServerConfig", params={"secret": ZLM_SECRET}, timeout=1)
            if r.status_code == 200 and r.json().get("code") == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("MediaServer did not start")


def zlm_stream(i: int) -> str:
    """ZLMediaKit's stream id for stream ``i`` on the single RTP port: the SSRC, 8 hex digits."""
    return f"{SSRC_BASE + i:08X}"


async def zlm_ready(api: httpx.AsyncClient, streams: int) -> int:
    r = await api.get("/index/api/getMediaList", params={"secret": ZLM_SECRET, "app": "rtp"})
    names = {m["stream"] for m in r.json().get("data") or []}
    return sum(1 for i in range(streams) if zlm_stream(i) in names)


async def run(
    args: argparse.Namespace, target: str, clip: list[tuple[int, int, bytes, bool]]
) -> dict[str, Any]:
    clip_bits = sum(len(c[2]) for c in clip) * 8 / CLIP_SECONDS
    zlm = target == "zlm"
    # xueliang: ``--servers`` processes side by side (a media process per core), stream i on
    # server i mod N, each with its own ports and database; the figures are their sums.
    n_srv = 1 if zlm else args.servers
    api_ports = [free_port() for _ in range(n_srv)]
    rtp_ports = [free_port() for _ in range(n_srv)]
    api_port, rtp_port = api_ports[0], rtp_ports[0]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        port_range = (args.dedicated, args.dedicated + args.streams + 50) if args.dedicated else None
        procs: list[subprocess.Popen[bytes]] = []
        if zlm and args.zlm_bin:
            procs.append(start_zlm(
                tmp, args.zlm_bin, api_port, rtp_port, args.zlm_on_demand, args.zlm_threads
            ))
        elif zlm:  # a MediaServer started by hand with bench/anchors/zlm.ini
            api_port, rtp_port = args.zlm_http_port, args.zlm_rtp_port
            api_ports, rtp_ports = [api_port], [rtp_port]
        else:
            for k in range(n_srv):
                (tmp / f"s{k}").mkdir()
                procs.append(start_server(tmp / f"s{k}", api_ports[k], rtp_ports[k], args.profile, port_range))
        proc = procs[0] if procs else None
        server_pids = [p.pid for p in procs] if procs else [args.zlm_pid]
        base = f"http://127.0.0.1:{api_port}"
        ctx = mp.get_context("spawn")
        go, stop = ctx.Event(), ctx.Event()
        sent = ctx.Array("q", args.streams, lock=False)
        late = ctx.Array("d", 2, lock=False)
        bursts = ctx.Queue()
        sender: Any = None
        viewers: list[asyncio.Task[None]] = []
        try:
            if zlm:
                wait_zlm(base, proc)
            else:
                for k, p in enumerate(procs):
                    wait_http(f"http://127.0.0.1:{api_ports[k]}", p)
            async with contextlib.AsyncExitStack() as clients:
                apis = [await clients.enter_async_context(httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", timeout=30)) for port in api_ports]
                api = apis[0]
                ports: list[int] = []
                tokens = [""] * len(apis)
                if zlm:
                    ports = [rtp_port]  # the single-port RTP proxy, UDP and TCP
                else:
                    for k, a in enumerate(apis):
                        tokens[k] = await login(a)
                        a.headers["Authorization"] = f"Bearer {tokens[k]}"
                    transport = "tcp" if args.tcp else "udp"
                    for i in range(args.streams):
                        r = await apis[i % n_srv].post(
                            "/api/v1/media/rtp-receivers",
                            json={"ssrc": SSRC_BASE + i, "transport": transport, "name": f"bench/{i}",
                                  "dedicated": bool(args.dedicated) and not args.tcp},
                        )
                        r.raise_for_status()
                        ports.append(int(r.json()["udp_port"]))  # the shared port unless dedicated
                sender = ctx.Process(
                    target=sender_main,
                    args=(
                        clip, ports, args.streams, args.tcp, go, stop, sent, late, bursts,
                        args.streams if args.socket_per_camera else 4,
                        args.tcp_writes == "packet",
                    ),
                    daemon=True,
                )
                sender.start()
                await asyncio.sleep(1.0)  # TCP connections up, sockets ready
                udp0 = udp_errors()
                phases = {"start": udp0[1]}
                go.set()
                deadline = time.monotonic() + 30
                while True:
                    if zlm:
                        ready = await zlm_ready(api, args.streams)
                    else:
                        ready = 0
                        for a in apis:
                            listed = (await a.get("/api/v1/streams")).json()
                            ready += sum(
                                1 for s in listed if s["name"].startswith("rtp/bench/") and s["ready"]
                            )
                    if ready == args.streams:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"only {ready}/{args.streams} streams became ready")
                    await asyncio.sleep(0.2)

                phases["ready"] = udp_errors()[1]
                ext = "mp4" if args.fmp4 else "flv"

                def path_of(i: int) -> str:
                    if zlm:
                        return f"/rtp/{zlm_stream(i)}.live.{ext}"
                    return f"/api/v1/streams/rtp/bench/{i}/live.{ext}"

                latencies: list[tuple[int, int]] = []
                vs = [Viewer(latencies) for _ in range(args.streams * args.viewers)]
                for n, v in enumerate(vs):
                    k = n % args.streams % n_srv
                    viewers.append(asyncio.create_task(v.run(api_ports[k], path_of(n % args.streams), tokens[k])))
                await asyncio.sleep(args.warmup)

                phases["warm"] = udp_errors()[1]
                packets0 = sum(sent)
                bytes0 = sum(v.bytes for v in vs)
                for v in vs:
                    v.recording = True
                lag = [0.0, 0]
                monitor = asyncio.create_task(loop_lag(lag))
                late[0], late[1] = 0.0, 0
                load = os.getloadavg()
                me0 = os.times()
                sender0 = cpu_ticks(sender.pid)
                t0, (u0, s0) = time.monotonic(), cpu_split_all(server_pids)
                await asyncio.sleep(args.seconds)
                t1, (u1, s1) = time.monotonic(), cpu_split_all(server_pids)
                c0, c1 = u0 + s0, u1 + s1
                me1 = os.times()
                sender1 = cpu_ticks(sender.pid)
                monitor.cancel()
                sender_late = (late[0], int(late[1]))
                for v in vs:
                    v.recording = False
                packets1 = sum(sent)
                bytes1 = sum(v.bytes for v in vs)
                rss = sum(rss_mb(pid) for pid in server_pids)
                phases["window"] = udp_errors()[1]
                dead = [t for t in viewers if t.done()]

                joins = []
                HEADER_TIMES.clear()
                for j in range(min(args.join_samples, args.streams)):
                    i = (j * 7) % args.streams
                    joins.append(
                        await first_frame_ms(api_ports[i % n_srv], path_of(i), tokens[i % n_srv], args.fmp4)
                    )
                    await asyncio.sleep(0.05)

                phases["joins"] = udp_errors()[1]
                stop.set()
                ends = array.array("q")
                ends.frombytes(await asyncio.to_thread(bursts.get, True, 30))
                await asyncio.sleep(0.5)
                udp1 = udp_errors()
                received: int | None = None
                lost: int | None = None
                cuts: int | None = None
                status: dict[str, Any] = {}
                if not zlm:
                    bench = []
                    for a in apis:
                        listed = (await a.get("/api/v1/streams")).json()
                        bench += [s for s in listed if s["name"].startswith("rtp/bench/")]
                    received = sum(s["packets"] for s in bench)
                    lost = sum(s["lost"] for s in bench)
                    cuts = sum(v.get("cuts", 0) for s in bench for v in s["viewers"])
                    each = [(await a.get("/api/v1/media/status")).json() for a in apis]
                    status = {"loop_lag_max": max(e.get("loop_lag_max") or 0 for e in each),
                              "loop_lags_over_50ms": sum(e.get("loop_lags_over_50ms") or 0 for e in each)}
                    for i in range(args.streams):  # ends the viewers' responses: a quick shutdown
                        await apis[i % n_srv].delete(f"/api/v1/media/rtp-receivers/rtp/bench/{i}")
        finally:
            stop.set()
            for t in viewers:
                t.cancel()
            if sender is not None:
                sender.join(5)
            for p in procs:
                stop_process(p)
    hz = os.sysconf("SC_CLK_TCK")
    window = t1 - t0
    total_sent = sum(sent)
    burst_end = dict(zip(ends[0::2], ends[1::2], strict=True))
    added = sorted((t - burst_end[s]) / 1e6 for s, t in latencies if s in burst_end)
    total = sorted((t - s) / 1e6 for s, t in latencies)
    return {
        "target": target,
        "load": load,
        "clip_bitrate": clip_bits / 1e6,
        "cpu": (c1 - c0) / hz / window * 100,
        "cpu_system": (s1 - s0) / hz / window * 100,  # the kernel's share (syscalls, loopback)
        "rss": rss,
        "window": window,
        "sent": total_sent,
        "received": received,
        "lost": lost,
        "missing": None if received is None else max(total_sent - received, 0),
        "udp_errors": (udp1[0] - udp0[0], udp1[1] - udp0[1]),
        "in_mbit": (packets1 - packets0) * 1400 * 8 / window / 1e6,
        "out_mbit": (bytes1 - bytes0) * 8 / window / 1e6,
        "latency": added,
        "latency_from_stamp": total,
        "joins": joins,
        "join_headers": list(HEADER_TIMES),
        "dead_viewers": len(dead),
        "cuts": cuts,
        "udp_drops_by_phase": phases,
        "loop_lag_max": status.get("loop_lag_max"),
        "bench_lag": lag,
        "sender_late": sender_late,
        "viewer_cpu": (me1.user + me1.system - me0.user - me0.system) / window * 100,
        "sender_cpu": (sender1 - sender0) / hz / window * 100,
        "loop_lags": status.get("loop_lags_over_50ms"),
    }


def report(args: argparse.Namespace, res: dict[str, Any], tag: str) -> None:
    """One run's ``name: value unit`` lines; ZLMediaKit's names start with ``zlm_``."""
    pre = "zlm_" if res["target"] == "zlm" else ""
    lat = res["latency"]

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    print(f"{pre}media_clip_bitrate: {res['clip_bitrate']:.2f} Mbit/s")
    print(f"{pre}media_cpu_percent_{tag}: {res['cpu']:.1f} %")
    print(f"{pre}media_cpu_system_percent_{tag}: {res['cpu_system']:.1f} %")
    print(f"{pre}media_load_average_{tag}: {res['load'][0]:.2f} {res['load'][1]:.2f} {res['load'][2]:.2f} (1/5/15 min)")
    print(f"{pre}media_rss_{tag}: {res['rss']:.0f} MB")
    print(f"{pre}media_in_rate_{tag}: {res['in_mbit']:.0f} Mbit/s")
    print(f"{pre}media_out_rate_{tag}: {res['out_mbit']:.0f} Mbit/s")
    if res["lost"] is not None and res["missing"] is not None:
        # Packets sent but not received (the server's sequence-gap count says the same for UDP).
        loss = max(res["lost"], res["missing"]) / res["sent"] * 100 if res["sent"] else float("nan")
        print(f"{pre}media_loss_percent_{tag}: {loss:.3f} %")
        print(f"{pre}media_rtp_lost_packets_{tag}: {res['lost']} packets")
    print(f"{pre}media_udp_receive_errors_{tag}: {res['udp_errors'][1]} packets")
    # the same counter by phase: which part of the run the kernel dropped datagrams in (the
    # streams starting, the warm-up while the viewers join, the window, the sample joins)
    marks = list((res.get("udp_drops_by_phase") or {}).items())
    for (_, before), (end, after) in itertools.pairwise(marks):
        print(f"{pre}media_udp_receive_errors_{_PHASE.get(end, end)}_{tag}: {after - before} packets")
    print(f"{pre}media_latency_p50_{tag}: {pct(0.5):.1f} ms")
    print(f"{pre}media_latency_p95_{tag}: {pct(0.95):.1f} ms")
    print(f"{pre}media_latency_p99_{tag}: {pct(0.99):.1f} ms")
    print(f"{pre}media_latency_samples_{tag}: {len(lat)} frames")
    whole = res["latency_from_stamp"]
    if whole:
        print(f"{pre}bench_latency_with_send_burst_p99_{tag}: {whole[int(0.99 * len(whole))]:.1f} ms")
    joins = res["joins"]
    if joins:
        print(f"{pre}media_first_frame_p50_{tag}: {statistics.median(joins):.0f} ms")
        print(f"{pre}media_first_frame_max_{tag}: {max(joins):.0f} ms")
        heads = res["join_headers"]
        print(f"{pre}media_first_headers_max_{tag}: {max(heads):.0f} ms (the same joins: request → response headers)")
    if res["cuts"] is not None:
        print(f"{pre}media_reader_cuts_{tag}: {res['cuts']} cuts")
    if res.get("loop_lag_max") is not None:
        print(f"{pre}media_server_loop_lag_max_{tag}: {res['loop_lag_max'] * 1000:.0f} ms")
        print(f"{pre}media_server_loop_lags_over_50ms_{tag}: {res['loop_lags']} times")
    print(f"{pre}bench_viewer_cpu_percent_{tag}: {res['viewer_cpu']:.1f} %")
    print(f"{pre}bench_viewer_loop_lag_max_{tag}: {res['bench_lag'][0] * 1000:.0f} ms")
    print(f"{pre}bench_viewer_loop_lags_over_20ms_{tag}: {res['bench_lag'][1]} times")
    print(f"{pre}bench_sender_cpu_percent_{tag}: {res['sender_cpu']:.1f} %")
    print(f"{pre}bench_sender_late_max_{tag}: {res['sender_late'][0] * 1000:.0f} ms")
    print(f"{pre}bench_sender_late_over_20ms_{tag}: {res['sender_late'][1]} frames")
    if res["dead_viewers"]:
        print(f"{pre}media_dead_viewers_{tag}: {res['dead_viewers']} viewers")
    if args.json:
        print(json.dumps({k: v for k, v in res.items() if not k.startswith("latency")}))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--streams", type=int, default=50)
    ap.add_argument("--servers", type=int, default=1,
                    help="xueliang server processes side by side, streams spread over them")
    ap.add_argument("--viewers", type=int, default=1, help="viewers per stream")
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument(
        "--tcp", action="store_true", help="RTP over TCP (RFC 4571), one connection per stream"
    )
    ap.add_argument("--tcp-writes", choices=["frame", "packet"], default="frame",
                    help="over TCP, one write per frame (default) or per RTP packet")
    ap.add_argument("--fmp4", action="store_true", help="fMP4 viewers instead of HTTP-FLV")
    ap.add_argument("--dedicated", type=int, default=0, metavar="FIRST_PORT",
                    help="a UDP port per stream from FIRST_PORT on (media.rtp_port_range) instead of the shared one")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the server into FILE (pstats)")
    ap.add_argument("--join-samples", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    ap.add_argument("--target", choices=("xueliang", "zlm", "both"), default="xueliang",
                    help="the server under load; both: alternate xueliang and ZLMediaKit")
    ap.add_argument("--rounds", type=int, default=1, help="runs per target (alternated)")
    ap.add_argument(
        "--socket-per-camera",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="over UDP, one source socket per stream instead of 4 shared ones"
        " (default: on when ZLMediaKit is a target, which needs it; then for both targets)",
    )
    ap.add_argument("--zlm-bin", metavar="PATH",
                    help="ZLMediaKit's MediaServer executable: started per run with bench/anchors/zlm.ini")
    ap.add_argument("--zlm-http-port", type=int, default=0,
                    help="without --zlm-bin: the HTTP port of a MediaServer already running")
    ap.add_argument("--zlm-rtp-port", type=int, default=0, help="... and its rtp_proxy.port")
    ap.add_argument(
        "--zlm-threads", type=int, default=0, help="MediaServer -t (default: one per core)"
    )
    ap.add_argument(
        "--zlm-on-demand",
        action="store_true",
        help="ZLMediaKit muxes FLV / fMP4 only for streams watched in that format, as xueliang"
        " does (rtmp_demand=1, fmp4_demand=1); default: both formats for every stream",
    )
    ap.add_argument("--zlm-pid", type=int, default=0, help="... and its process id (for its CPU)")
    args = ap.parse_args()
    targets = ["xueliang", "zlm"] if args.target == "both" else [args.target]
    if "zlm" in targets and not args.zlm_bin and not (
        args.zlm_http_port and args.zlm_rtp_port and args.zlm_pid
    ):
        ap.error("--target zlm needs --zlm-bin, or --zlm-http-port, --zlm-rtp-port and --zlm-pid")
    if "zlm" in targets and args.dedicated:
        ap.error("--dedicated is xueliang's option (ZLMediaKit runs its single RTP port here)")
    if args.socket_per_camera is None:
        args.socket_per_camera = "zlm" in targets
    if "zlm" in targets and not args.socket_per_camera and not args.tcp:
        ap.error("ZLMediaKit's single RTP port needs --socket-per-camera over UDP")
    tag = f"{args.streams}x{args.viewers}_{'fmp4' if args.fmp4 else 'flv'}"
    if args.servers > 1:
        tag += f"_{args.servers}servers"
    if args.tcp:
        tag += "_tcp" if args.tcp_writes == "frame" else "_tcp_perpacket"
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.python_implementation()} {platform.python_version()}"
    )
    clip = encode_clip()
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in targets}
    for r in range(args.rounds):
        order = targets if r % 2 == 0 else targets[::-1]  # alternate who goes first
        for target in order:
            if len(targets) > 1 or args.rounds > 1:
                print(f"# round {r + 1}/{args.rounds}: {target}", flush=True)
            res = asyncio.run(run(args, target, clip))
            results[target].append(res)
            report(args, res, tag)
            sys.stdout.flush()
    if len(targets) > 1 or args.rounds > 1:
        medians: dict[str, float] = {}
        for target, runs in results.items():
            pre = "zlm_" if target == "zlm" else ""
            cpus = [x["cpu"] for x in runs]
            medians[target] = statistics.median(cpus)
            every = ", ".join(f"{c:.1f} (load {x['load'][0]:.2f})" for c, x in zip(cpus, runs, strict=True))
            print(f"{pre}media_cpu_percent_median_{tag}: {medians[target]:.1f} % [{every}]")
            # the sender falls behind on a busy machine: CPU per input rate compares like with like
            per_in = [x["cpu"] / x["in_mbit"] * 100 for x in runs if x["in_mbit"] > 0]
            if per_in:
                print(
                    f"{pre}media_cpu_percent_per_100mbit_in_median_{tag}:"
                    f" {statistics.median(per_in):.1f} % [{', '.join(f'{v:.1f}' for v in per_in)}]"
                )
            samples = [len(x["latency"]) for x in runs]
            print(f"{pre}media_latency_samples_median_{tag}: {statistics.median(samples):.0f} frames")
            udp = [x["udp_errors"][1] for x in runs]
            print(f"{pre}media_udp_receive_errors_median_{tag}: {statistics.median(udp):.0f} packets")
        if len(medians) == 2 and medians["zlm"] > 0:
            print(f"anchor_cpu_ratio_xueliang_to_zlm_{tag}: {medians['xueliang'] / medians['zlm']:.2f} x")


if __name__ == "__main__":
    main()
