"""Helpers shared by the media hub, RTP server, API and browser tests (no tests here).

* :func:`ps_clip` — a real H.264 clip (PyAV/x264) as frames;
* :class:`RtpPusher` — a thread sending that clip in a loop as PS over RTP, paced at 25 fps,
  over UDP or TCP (RFC 4571 or ``$``-prefixed), like a GB/T 28181 device;
* :class:`LiveServer` — a real uvicorn serving a Platform with media enabled, in a thread
  with its own event loop (``run()`` executes a coroutine there).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from _media_clips import encode
from tests.ports import free_port

from xueliang.media.frame import Codec, Frame
from xueliang.media.ps_mux import PsMuxer, PsTemplate
from xueliang.media.rtp import RtpPacketizer

T = TypeVar("T")
OPS_PASSWORD = "Relay-Tower-77"


def ps_clip(
    width: int = 320, height: int = 240, frames: int = 50, gop: int = 25, codec: Codec = Codec.H264
) -> tuple[Frame, ...]:
    return encode(codec, width, height, frames, gop)[0]


class RtpPusher:
    """Loop a clip as PS over RTP to ``port`` from a thread, paced at ``fps``.

    ``drop``: a function (packet index) → True to not send that packet (loss tests).
    ``tcp``: connect to the port and frame with RFC 4571 (``dollar``: the 4-byte ``$`` form).
    """

    def __init__(
        self,
        port: int,
        ssrc: int,
        frames: tuple[Frame, ...],
        *,
        host: str = "127.0.0.1",
        tcp: bool = False,
        dollar: bool = False,
        fps: float = 25.0,
        loops: int | None = None,
        drop: Callable[[int], bool] | None = None,
    ) -> None:
        self.addr = (host, port)
        self.ssrc = ssrc
        self.tcp = tcp
        self.dollar = dollar
        self.fps = fps
        self.loops = loops
        self.drop = drop
        muxer = PsMuxer()
        self.templates = [(PsTemplate(muxer.mux(f)), f) for f in frames]
        first, last = frames[0].dts, max(f.dts for f in frames)
        self.loop_ticks = last - first + 3600
        self.packetizer = RtpPacketizer(ssrc)
        self.sent_packets = 0
        self.dropped_packets = 0
        self.sent_frames = 0
        self.frame_sent_at: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"pusher {ssrc}")
        self.error: BaseException | None = None

    def start(self) -> RtpPusher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def wait(self, timeout: float = 30.0) -> None:
        self._thread.join(timeout)

    def _frame(self, sock: socket.socket, packets: list[bytes]) -> None:
        for p in packets:
            n = self.sent_packets + self.dropped_packets
            if self.drop is not None and self.drop(n):
                self.dropped_packets += 1
                continue
            self.sent_packets += 1
            if not self.tcp:
                sock.sendto(p, self.addr)
            elif self.dollar:
                sock.sendall(b"$\x00" + struct.pack("!H", len(p)) + p)
            else:
                sock.sendall(struct.pack("!H", len(p)) + p)

    def _run(self) -> None:
        try:
            if self.tcp:
                sock = socket.create_connection(self.addr, timeout=5)
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with sock:
                t0 = time.monotonic()
                i = 0
                loop = 0
                while not self._stop.is_set() and (self.loops is None or loop < self.loops):
                    delta = loop * self.loop_ticks
                    for tpl, f in self.templates:
                        if self._stop.is_set():
                            return
                        delay = t0 + i / self.fps - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        chunk = tpl.restamp(delta)
                        packets = self.packetizer.packetize(chunk, (f.dts + delta) & 0xFFFFFFFF)
                        self._frame(sock, packets)
                        self.frame_sent_at.append(time.monotonic())
                        self.sent_frames += 1
                        i += 1
                    loop += 1
        except BaseException as exc:
            self.error = exc


class LiveServer:
    """uvicorn + Platform (media on, SIP off) in a thread, with a maintainer ``ops`` (manages
    streams and RTP receivers, sees every channel; no second factor needed, unlike an
    administrator)."""

    def __init__(self, tmp: Path, **media: Any) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.media = {"rtp_port": 0, "rtp_tcp_port": 0, "idle_stop_seconds": 3.0, **media}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.platform: Any = None
        self.server: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="live-server")
        self._ready = threading.Event()
        self.error: BaseException | None = None

    def start(self) -> LiveServer:
        from xueliang.db.migrate import upgrade

        db = self.tmp / "media.db"
        upgrade(f"sqlite+aiosqlite:///{db}")
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"server did not start: {self.error!r}")
        if self.error is not None:
            raise RuntimeError(f"server did not start: {self.error!r}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    async def _serve(self) -> None:
        import uvicorn

        from xueliang.config import Settings
        from xueliang.server import build

        settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{self.tmp / 'media.db'}"},
            storage={"var_dir": self.tmp},
            secret_key="test-secret-0123456789abcdef",
            bootstrap_admin="root",
            bootstrap_password="Root-pass-1",
            # The administrator ``root`` logs in without a second factor here (stopping
            # someone else's stream is theirs alone).
            access={"totp_required_roles": [], "login_burst": 200},
            sip={"enabled": False},
            media=self.media,
            api={"port": self.port},
        )
        self.loop = asyncio.get_running_loop()
        self.platform, app = build(settings)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws="websockets",
            lifespan="on",
            access_log=False,
            # Live responses never end by themselves: without a bound, shutdown waits forever.
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        await self.platform.users.create("ops", OPS_PASSWORD, "maintainer")
        self._ready.set()
        await task

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        async def wrapper() -> T:
            return fn()

        return self.run(wrapper(), timeout)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self._thread.join(15)

    @property
    def hub(self) -> Any:
        return self.platform.media

    def token(self, user: str = "ops", password: str = "") -> str:
        import httpx

        r = httpx.post(
            f"{self.base}/api/v1/auth/login",
            json={"username": user, "password": password or OPS_PASSWORD},
        )
        assert r.status_code == 200 and "access_token" in r.json(), r.text
        return str(r.json()["access_token"])


def read_for(url: str, seconds: float, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET a live URL and keep what arrives for ``seconds``: (status, bytes)."""
    import httpx

    data = bytearray()
    with httpx.Client(timeout=15) as c, c.stream("GET", url, headers=headers) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, bytes(r.content)
        deadline = time.monotonic() + seconds
        for chunk in r.iter_raw():
            data += chunk
            if time.monotonic() >= deadline:
                break
    return 200, bytes(data)


def decode_file(path: Path) -> list[tuple[int, int, int]]:
    """(pts, width, height) of every decoded video frame of a file, in output order."""
    import av

    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            out.append((int(frame.pts or 0), frame.width, frame.height))
    return out


def packets_of(path: Path) -> list[tuple[int, int]]:
    """(dts, pts) of every video packet of a file, in decode order (demuxed, not decoded)."""
    import av

    out = []
    with av.open(str(path)) as container:
        for p in container.demux(video=0):
            if p.size:
                out.append((int(p.dts if p.dts is not None else -1), int(p.pts or 0)))
    return out


@contextlib.contextmanager
def pushing(*pushers: RtpPusher) -> Any:
    for p in pushers:
        p.start()
    try:
        yield pushers
    finally:
        for p in pushers:
            p.stop()
