"""RTSP sources: packet → Annex B frame conversion (MP4 files, avcC/hvcC), and a real RTSP
session (DESCRIBE/SETUP/PLAY, RTP/H.264 interleaved over TCP) against a tiny server written
here, pulled by PyAV into the hub."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import socket
import struct
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from _media_clips import encode, has_encoder

from xueliang.bus import EventBus
from xueliang.config import MediaConfig
from xueliang.errors import Unavailable
from xueliang.media.frame import Codec, Frame
from xueliang.media.hub import MediaHub
from xueliang.media.live import LiveProvider
from xueliang.media.nal import split_annexb
from xueliang.media.rtsp import PacketConverter, RtspProvider, redact_url


def write_mp4(path: Path, codec: Codec, frames: int = 50) -> None:
    """Encode a clip into an MP4 file (global header: avcC/hvcC, length-prefixed samples)."""
    import numpy as np

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264" if codec is Codec.H264 else "libx265", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        if codec is Codec.H265:
            s.options = {"x265-params": "log-level=error:keyint=25"}
        else:
            s.options = {"g": "25"}
        for i in range(frames):
            img = np.full((240, 320, 3), (i * 5) % 256, np.uint8)
            img[:, (i * 4) % 320 :] = 40
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)


@pytest.mark.parametrize("codec", [Codec.H264, Codec.H265])
def test_mp4_packets_become_annexb_frames_that_decode(codec: Codec, tmp_path: Path) -> None:
    if not has_encoder(codec):
        pytest.skip(f"no encoder for {codec}")
    path = tmp_path / "clip.mp4"
    write_mp4(path, codec)
    frames: list[Frame] = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        extradata = vs.codec_context.extradata
        assert extradata and extradata[0] == 1  # an avcC/hvcC record, not Annex B
        conv = PacketConverter(vs.codec_context.name, extradata, vs.time_base)
        assert conv.length_size == 4 and len(conv.parameter_sets) >= 2
        for p in c.demux(vs):
            f = conv.convert(bytes(p), p.pts, p.dts, bool(p.is_keyframe))
            if f is not None:
                frames.append(f)
    assert len(frames) == 50 and frames[0].keyframe
    for f in frames:
        assert f.data.startswith(b"\x00\x00\x00\x01")
    # Key frames carry their parameter sets (from the record) in band.
    first_types = {
        (n[0] >> 1) & 0x3F if codec is Codec.H265 else n[0] & 0x1F
        for n in split_annexb(frames[0].data)
    }
    assert first_types >= ({32, 33, 34} if codec is Codec.H265 else {7, 8})
    assert all(b.dts > a.dts for a, b in itertools.pairwise(frames))
    assert frames[1].dts - frames[0].dts == 3600  # 25 fps on the 90 kHz clock
    # A raw decoder reads the converted stream.
    dec = av.CodecContext.create("h264" if codec is Codec.H264 else "hevc", "r")
    pictures = []
    for f in frames:
        pictures += dec.decode(av.Packet(f.data))
    pictures += dec.decode(None)
    assert len(pictures) == 50 and pictures[0].width == 320


def test_redact_url() -> None:
    assert (
        redact_url("rtsp://admin:s3cret@10.0.0.2:554/h264") == "rtsp://admin:***@10.0.0.2:554/h264"
    )
    assert redact_url("rtsp://10.0.0.2/live") == "rtsp://10.0.0.2/live"


# ------------------------------------------------------------------- a tiny RTSP server


class TinyRtspServer:
    """Serves one H.264 clip (no B-frames) as RTP/H.264 (RFC 6184, FU-A) interleaved on the
    RTSP TCP connection, looping at 25 fps. Enough for FFmpeg's RTSP client."""

    def __init__(self, frames: tuple[Frame, ...], sps: bytes, pps: bytes) -> None:
        self.frames = frames
        self.sps, self.pps = sps, pps
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.url = f"rtsp://user:pw@127.0.0.1:{self.port}/live"
        self.requests: list[str] = []
        self.sessions = 0
        self.active = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        playing: threading.Thread | None = None
        stop = threading.Event()
        self.active += 1
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    if buf.startswith(b"$") and len(buf) >= 4:  # RTCP from the client
                        n = struct.unpack("!H", buf[2:4])[0]
                        if len(buf) < 4 + n:
                            break
                        buf = buf[4 + n :]
                        continue
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                if b"\r\n\r\n" not in buf:
                    continue
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                method, url, _ = lines[0].split(" ")
                headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
                length = int(headers.get("content-length", "0"))
                buf = buf[length:]
                self.requests.append(method)
                cseq = headers.get("cseq", "0")
                extra, body = "", b""
                if method == "OPTIONS":
                    extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"
                elif method == "DESCRIBE":
                    sprop = ",".join(base64.b64encode(x).decode() for x in (self.sps, self.pps))
                    body = (
                        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=tiny\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                        f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={sprop}\r\n"
                        "a=control:trackID=0\r\n"
                    ).encode()
                    extra = f"Content-Base: {url}/\r\nContent-Type: application/sdp\r\n"
                elif method == "SETUP":
                    extra = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 4242\r\n"
                elif method == "PLAY":
                    extra = "Session: 4242\r\nRange: npt=0.000-\r\n"
                elif method == "TEARDOWN":
                    stop.set()
                reply = (
                    f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
                )
                conn.sendall(reply.encode() + body)
                if method == "PLAY" and playing is None:
                    self.sessions += 1
                    playing = threading.Thread(target=self._play, args=(conn, stop), daemon=True)
                    playing.start()
                if method == "TEARDOWN":
                    return
        except OSError:
            return
        finally:
            stop.set()
            self.active -= 1
            with contextlib.suppress(OSError):
                conn.close()

    def _play(self, conn: socket.socket, stop: threading.Event) -> None:
        seq = 0
        t0 = time.monotonic()
        i = 0
        span = self.frames[-1].pts - self.frames[0].pts + 3600
        loop = 0
        try:
            while not stop.is_set():
                for f in self.frames:
                    if stop.is_set():
                        return
                    delay = t0 + i / 25 - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    ts = (f.pts + loop * span) & 0xFFFFFFFF
                    nals = [n for n in split_annexb(f.data) if n[0] & 0x1F not in (7, 8, 9)]
                    if f.keyframe:
                        nals = [self.sps, self.pps, *nals]
                    packets: list[bytes] = []
                    for k, nal in enumerate(nals):
                        last_nal = k == len(nals) - 1
                        if len(nal) <= 1400:
                            packets.append((last_nal, nal))  # type: ignore[arg-type]
                            continue
                        hdr, body = nal[0], nal[1:]
                        chunks = [body[j : j + 1400] for j in range(0, len(body), 1400)]
                        for c, chunk in enumerate(chunks):
                            s_bit = 0x80 if c == 0 else 0
                            e_bit = 0x40 if c == len(chunks) - 1 else 0
                            fu = bytes(((hdr & 0xE0) | 28, s_bit | e_bit | (hdr & 0x1F)))
                            packets.append((last_nal and e_bit, fu + chunk))  # type: ignore[arg-type]
                    out = bytearray()
                    for marker, payload in packets:  # type: ignore[misc]
                        rtp = struct.pack(
                            "!BBHII", 0x80, (0x80 if marker else 0) | 96, seq, ts, 0x1234
                        )
                        seq = (seq + 1) & 0xFFFF
                        out += b"$\x00" + struct.pack("!H", len(rtp) + len(payload)) + rtp + payload
                    conn.sendall(out)
                    i += 1
                loop += 1
        except OSError:
            return


@pytest.fixture
async def hub() -> Any:
    h = MediaHub(
        MediaConfig(rtp_port=0, rtp_tcp_port=0, rtp_timeout=3), EventBus(), tick_interval=0.1
    )
    await h.start()
    yield h
    await h.stop()


def rtsp_clip() -> tuple[tuple[Frame, ...], bytes, bytes]:
    frames, ps = encode(Codec.H264, 320, 240, 50, 25, 0)  # no B-frames: RTP carries pts only
    assert ps.sps is not None and ps.pps is not None

    def strip(n: bytes) -> bytes:
        return (
            n[4:]
            if n.startswith(b"\x00\x00\x00\x01")
            else n[3:]
            if n.startswith(b"\x00\x00\x01")
            else n
        )

    return frames, strip(ps.sps), strip(ps.pps)


async def test_rtsp_camera_feeds_the_hub_through_the_live_provider(
    hub: MediaHub, tmp_path: Path
) -> None:
    frames, sps, pps = rtsp_clip()
    server = TinyRtspServer(frames, sps, pps)
    try:
        hub.set_provider("live/", LiveProvider(None))
        params = {"channel_id": "34020000001310000009", "rtsp_url": server.url}
        stream = await hub.acquire("live/34020000001310000009", params=params, timeout=15)
        assert stream.kind == "rtsp" and stream.meta["url"].endswith(
            f"127.0.0.1:{server.port}/live"
        )
        assert (
            "pw" not in stream.meta["url"] and stream.meta["channel_id"] == "34020000001310000009"
        )
        assert (stream.width, stream.height, stream.codec) == (320, 240, Codec.H264)
        reader = stream.reader("fmp4")
        data = bytearray()
        async with asyncio.timeout(10):
            while data.count(b"moof") < 40:
                data += b"".join(await reader.get())
        reader.close()
        path = tmp_path / "rtsp.mp4"
        path.write_bytes(bytes(data))
        with av.open(str(path)) as c:
            pictures = list(c.decode(video=0))
        assert len(pictures) >= 40 and pictures[0].width == 320
        assert server.requests[:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]
        await hub.close(stream.name, "test")
        for _ in range(50):
            if not server.active:
                break
            await asyncio.sleep(0.1)
        assert server.active == 0, "closing the stream ends the RTSP session"
    finally:
        server.close()


async def test_rtsp_unreachable_ends_with_a_clear_error(hub: MediaHub) -> None:
    hub.set_provider("cam/", RtspProvider(timeout=2))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The refusal comes at once; the long acquire timeout only keeps a loaded machine (a slow
    # thread start) from turning "cannot open" into a timeout.
    with pytest.raises(Unavailable, match="cannot open"):
        await hub.acquire("cam/x", params={"url": f"rtsp://127.0.0.1:{port}/nothing"}, timeout=30)
    assert hub.stream("cam/x") is None


async def test_live_provider_without_rtsp_or_gb_is_unavailable(hub: MediaHub) -> None:
    hub.set_provider("live/", LiveProvider(None))
    with pytest.raises(Unavailable, match="no source"):
        await hub.acquire("live/1", params={"channel_id": "1", "rtsp_url": None, "device_id": "d"})


def test_annexb_extradata_passes_through() -> None:
    sps, pps = b"\x67\x42\x00\x1e\xab", b"\x68\xce\x3c\x80"
    conv = PacketConverter(
        "h264", b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps, Fraction(1, 90000)
    )
    assert conv.length_size == 0 and conv.parameter_sets == [sps, pps]
    idr = b"\x00\x00\x00\x01\x65\x88\x84"
    f = conv.convert(idr, 9000, None, True)
    assert f is not None and f.pts == f.dts == 9000
    assert f.data == b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps + idr
    with_ps = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps + idr
    assert conv.convert(with_ps, 12600, 12600, True).data == with_ps  # type: ignore[union-attr]
