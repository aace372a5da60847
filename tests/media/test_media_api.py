"""The media API end to end against a real uvicorn: PS over RTP pushed to the shared port,
read back as fMP4 (HTTP and WebSocket), HTTP-FLV and HLS, checked by decoding with PyAV and
ffprobe; channel streams through the ``live/`` provider; snapshots; scopes; the player page
in headless Chromium."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from _media_clips import ffprobe, has_encoder
from test_hub_support import LiveServer, RtpPusher, decode_file, packets_of, ps_clip, read_for
from tests import browser as browser_launcher

from xueliang.media.frame import Codec
from xueliang.media.hub import MediaHub

UNIT_A, UNIT_B = "交警支队", "城管局"
DEVICE = "34020000001110000001"
CH_A = "34020000001310000001"  # department A
CH_B = "34020000001310000002"  # department B
_ssrcs = itertools.count(200000100)  # GB/T 28181 style: "0200000100"…


class FakeGbHandle:
    def __init__(self, pusher: RtpPusher, binding: Any) -> None:
        self.pusher = pusher
        self.binding = binding
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1
        self.binding.close()
        await asyncio.to_thread(self.pusher.stop)


class FakeGbProvider:
    """Stands in for the GB/T 28181 INVITE provider: binds an SSRC, and a 'device' streams."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, dict[str, Any]]] = []
        self.handles: list[FakeGbHandle] = []

    async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> FakeGbHandle:
        self.opened.append((name, params))
        ssrc = next(_ssrcs)
        stream = hub.publish(name, kind="gb28181", meta={"channel_id": params["channel_id"]})
        binding = hub.rtp.bind(ssrc, stream)
        pusher = RtpPusher(hub.rtp.udp_port, ssrc, ps_clip()).start()
        handle = FakeGbHandle(pusher, binding)
        self.handles.append(handle)
        return handle


async def two_departments(reg: Any) -> None:
    """One NVR with channel A (department A) and channel B (department B)."""
    from xueliang.registry.models import ChannelIn, DeviceIn, UnitIn

    ua = await reg.create_unit(UnitIn(name="支队", department=UNIT_A))
    ub = await reg.create_unit(UnitIn(name="城管", department=UNIT_B))
    await reg.create_device(DeviceIn(id=DEVICE, name="NVR"))
    for ch, unit in ((CH_A, ua.id), (CH_B, ub.id)):
        await reg.create_channel(ChannelIn(id=ch, name=f"cam {ch[-1]}", device_id=DEVICE, unit_id=unit))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = LiveServer(tmp_path_factory.mktemp("media-api")).start()
    srv.platform.live.gb = FakeGbProvider()
    reg = srv.platform.registry

    async def setup() -> None:
        await two_departments(reg)
        await srv.platform.users.create(
            "cgj", "Harbour-Lamp-42", "department_user", department=UNIT_B
        )

    srv.run(setup())
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token()}"}


@pytest.fixture(scope="module")
def root(server: LiveServer) -> dict[str, str]:
    """An administrator: may stop anyone's stream (media.manage)."""
    return {"Authorization": f"Bearer {server.token('root', 'Root-pass-1')}"}


def open_receiver(
    server: LiveServer, admin: dict[str, str], name: str, **body: Any
) -> dict[str, Any]:
    ssrc = next(_ssrcs)
    r = httpx.post(
        f"{server.base}/api/v1/media/rtp-receivers",
        json={"ssrc": f"{ssrc:010d}", "name": name, **body},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    info: dict[str, Any] = r.json()
    assert info["ssrc"] == ssrc and info["ip"] == "127.0.0.1"
    return info


def check_video(path: Path, *, min_frames: int) -> None:
    probe = ffprobe(path)
    assert (probe["codec_name"], probe["width"], probe["height"]) == ("h264", 320, 240)
    assert int(probe["nb_read_frames"]) >= min_frames
    dts = [d for d, _ in packets_of(path)]
    assert all(a < b for a, b in itertools.pairwise(dts)), "decode times strictly increase"
    frames = decode_file(path)
    assert len(frames) >= min_frames
    pts = [p for p, _, _ in frames]
    assert all(a < b for a, b in itertools.pairwise(pts)), "presentation times strictly increase"


def test_rtp_receiver_to_fmp4_and_flv(
    server: LiveServer, admin: dict[str, str], tmp_path: Path
) -> None:
    info = open_receiver(server, admin, "push/one")
    pusher = RtpPusher(info["udp_port"], info["ssrc"], ps_clip()).start()
    try:
        status, mp4 = read_for(f"{server.base}/api/v1/streams/rtp/push/one/live.mp4", 2.0, admin)
        assert status == 200
        (tmp_path / "live.mp4").write_bytes(mp4)
        check_video(tmp_path / "live.mp4", min_frames=40)

        status, flv = read_for(f"{server.base}/api/v1/streams/rtp/push/one/live.flv", 2.0, admin)
        assert status == 200 and flv[:3] == b"FLV"
        (tmp_path / "live.flv").write_bytes(flv)
        check_video(tmp_path / "live.flv", min_frames=40)

        listed = httpx.get(f"{server.base}/api/v1/streams", headers=admin).json()
        one = next(s for s in listed if s["name"] == "rtp/push/one")
        assert one["kind"] == "rtp" and one["codec"] == "h264" and one["width"] == 320
        assert one["bitrate"] > 0 and 15 < one["fps"] < 35 and one["lost"] == 0
        assert one["uptime"] > 3 and "jitter_ms" in one
    finally:
        pusher.stop()
    r = httpx.delete(f"{server.base}/api/v1/media/rtp-receivers/rtp/push/one", headers=admin)
    assert r.status_code == 204
    assert server.hub.stream("rtp/push/one") is None
    assert httpx.get(f"{server.base}/api/v1/streams/rtp/push/one", headers=admin).status_code == 404


def test_live_frames_go_straight_from_the_stream_to_the_connection_and_survive_a_stalled_client(
    server: LiveServer, admin: dict[str, str], tmp_path: Path
) -> None:
    """Under uvicorn the viewer's reader writes each fragment to the connection itself (no task
    wake-up per frame: api/live_send.py). A client that stops reading and comes back still gets a
    well-formed, decodable stream: the sink declines while the connection is full, and what
    follows is queued behind what was in flight, never interleaved."""
    import socket

    from xueliang.api.live_send import DirectWriter

    info = open_receiver(server, admin, "push/direct")
    pusher = RtpPusher(info["udp_port"], info["ssrc"], ps_clip(1280, 720, frames=50), fps=100).start()
    url = f"{server.base}/api/v1/streams/rtp/push/direct/live.mp4"
    try:
        status, _ = read_for(url, 0.5, admin)  # the stream is up
        assert status == 200
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(f"GET /api/v1/streams/rtp/push/direct/live.mp4 HTTP/1.1\r\nHost: t\r\n"
                     f"Authorization: {admin['Authorization']}\r\n\r\n".encode())
        raw = bytearray()
        while b"\r\n\r\n" not in raw:
            raw += sock.recv(65536)
        time.sleep(0.5)

        def sinks() -> list[Any]:
            stream = server.hub.stream("rtp/push/direct")
            return [r.sink for r in stream.output("fmp4").readers]

        assert any(isinstance(s, DirectWriter) for s in server.call(sinks))
        time.sleep(4.0)  # stalled: 400 frames of 1280 × 720 offered meanwhile, more than the kernel holds
        # the connection filled up: the sink declined, and the response's task took over
        assert sum(s.declined for s in server.call(sinks) if isinstance(s, DirectWriter)) > 0
        sock.settimeout(5)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            raw += sock.recv(1 << 20)
        sock.close()
    finally:
        pusher.stop()
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    data, pos = bytearray(), 0  # de-chunk what arrived (the last chunk may be cut off)
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            break
        size = int(body[pos:eol], 16)
        if eol + 4 + size > len(body):
            break
        data += body[eol + 2 : eol + 2 + size]
        assert body[eol + 2 + size : eol + 4 + size] == b"\r\n", "chunk framing intact"
        pos = eol + 4 + size
    boxes, at = [], 0  # ftyp moov, then moof mdat pairs: nothing interleaved or torn
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        boxes.append(bytes(data[at + 4 : at + 8]))
        assert size >= 8
        at += size
    assert boxes[:2] == [b"ftyp", b"moov"]
    assert all(b in (b"moof", b"mdat") for b in boxes[2:])
    assert all(a != b for a, b in itertools.pairwise(boxes[2:])), "moof and mdat alternate"
    whole = bytes(data[: sum(int.from_bytes(data[i : i + 4], "big") for i in _box_starts(data))])
    (tmp_path / "stalled.mp4").write_bytes(whole)
    frames = decode_file(tmp_path / "stalled.mp4")
    assert len(frames) >= 100
    assert all(a < b for a, b in itertools.pairwise(p for p, _, _ in frames)), "presentation times increase"
    httpx.delete(f"{server.base}/api/v1/media/rtp-receivers/rtp/push/direct", headers=admin)


def _box_starts(data: bytes | bytearray) -> list[int]:
    """Offsets of the top-level boxes that fit whole in ``data``."""
    starts, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        if at + size > len(data):
            break
        starts.append(at)
        at += size
    return starts


def test_hls_playlist_init_and_segment_decode(
    server: LiveServer, admin: dict[str, str], tmp_path: Path
) -> None:
    info = open_receiver(server, admin, "push/hls", transport="tcp")
    pusher = RtpPusher(info["tcp_port"], info["ssrc"], ps_clip(), tcp=True, dollar=True).start()
    try:
        base = f"{server.base}/api/v1/streams/rtp/push/hls/"
        token = httpx.post(base + "media-token", headers=admin).json()["token"]
        r = httpx.get(base + "live.m3u8", params={"token": token}, timeout=20)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        lines = r.text.splitlines()
        assert lines[0] == "#EXTM3U"
        init_uri = next(ln for ln in lines if ln.startswith("#EXT-X-MAP")).split('"')[1]
        seg_uri = next(ln for ln in lines if ln.startswith("hls/seg"))
        assert f"token={token}" in init_uri and f"token={token}" in seg_uri  # propagated
        init = httpx.get(base + init_uri)
        seg = httpx.get(base + seg_uri)
        assert init.status_code == seg.status_code == 200
        path = tmp_path / "hls.mp4"
        path.write_bytes(init.content + seg.content)
        frames = decode_file(path)
        assert len(frames) >= 25 and frames[0][1:] == (320, 240)
        assert httpx.get(base + "hls/seg99999.m4s", params={"token": token}).status_code == 404
    finally:
        pusher.stop()
        httpx.delete(f"{server.base}/api/v1/streams/rtp/push/hls", headers=admin)


def test_websocket_sends_meta_then_init_then_fragments(
    server: LiveServer, admin: dict[str, str], tmp_path: Path
) -> None:
    from websockets.sync.client import connect

    info = open_receiver(server, admin, "push/ws")
    pusher = RtpPusher(info["udp_port"], info["ssrc"], ps_clip()).start()
    try:
        base = f"{server.base}/api/v1/streams/rtp/push/ws/"
        token = httpx.post(base + "media-token", headers=admin).json()["token"]
        url = f"ws://127.0.0.1:{server.port}/api/v1/streams/rtp/push/ws/live.ws?token={token}"
        with connect(url, open_timeout=10) as ws:
            meta = json.loads(ws.recv(timeout=10))
            assert meta["codec"].startswith("avc1.") and meta["width"] == 320
            assert meta["mime"].startswith('video/mp4; codecs="avc1.')
            data = bytearray()
            first = ws.recv(timeout=10)
            assert isinstance(first, bytes) and first[4:8] == b"ftyp"
            data += first
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                msg = ws.recv(timeout=5)
                assert isinstance(msg, bytes) and msg[4:8] == b"moof"
                data += msg
        path = tmp_path / "ws.mp4"
        path.write_bytes(bytes(data))
        assert len(decode_file(path)) >= 30
        # Refused without a token, and with a login token in the URL: before the handshake.
        from websockets.exceptions import InvalidStatus

        for bad in (url.split("?")[0], url.split("?")[0] + f"?token={server.token()}"):
            with pytest.raises(InvalidStatus) as refused:
                connect(bad, open_timeout=10)
            assert refused.value.response.status_code == 401
    finally:
        pusher.stop()
        httpx.delete(f"{server.base}/api/v1/streams/rtp/push/ws", headers=admin)


def test_channel_live_through_the_provider_snapshot_and_media_token(
    server: LiveServer, admin: dict[str, str], tmp_path: Path
) -> None:
    base = f"{server.base}/api/v1/channels/{CH_A}/"
    r = httpx.get(base + "live.info", headers=admin, timeout=20)
    assert r.status_code == 200, r.text
    assert r.json()["codec"].startswith("avc1.") and (r.json()["width"], r.json()["height"]) == (
        320,
        240,
    )
    provider = server.platform.live.gb
    assert provider.opened[-1][0] == f"live/{CH_A}"
    assert provider.opened[-1][1]["device_id"] == DEVICE

    r = httpx.get(base + "snapshot.jpg", headers=admin, timeout=20)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    (tmp_path / "snap.jpg").write_bytes(r.content)
    with av.open(str(tmp_path / "snap.jpg")) as c:
        pic = next(c.decode(video=0))
    assert (pic.width, pic.height) == (320, 240)
    kept = server.tmp / "snapshots" / f"{CH_A}.jpg"
    assert kept.read_bytes() == r.content  # kept for image-quality diagnosis
    assert server.hub.snapshots.latest(CH_A).jpeg == r.content

    r = httpx.post(base + "media-token", headers=admin)
    assert r.status_code == 200
    body = r.json()
    assert body["expires_in"] > 0 and body["stream"] == f"live/{CH_A}"
    assert body["action"] == "media.live"
    status, flv = read_for(server.base + body["urls"]["flv"], 1.0)  # no header: token only
    assert status == 200 and flv[:3] == b"FLV"
    other = f"{server.base}/api/v1/channels/{CH_B}/live.flv?token={body['token']}"
    assert httpx.get(other).status_code == 401  # scoped to its channel
    assert httpx.get(f"{server.base}/api/v1/streams?token={body['token']}").status_code == 401
    # One stream for the channel, however many viewers.
    assert len([n for n, _ in provider.opened if n == f"live/{CH_A}"]) == 1


def test_department_user_is_refused_another_departments_channel(
    server: LiveServer, admin: dict[str, str]
) -> None:
    from websockets.sync.client import connect

    # Admin starts channel A so that it is also a running stream.
    assert (
        httpx.get(
            f"{server.base}/api/v1/channels/{CH_A}/live.info", headers=admin, timeout=20
        ).status_code
        == 200
    )
    cg = {"Authorization": f"Bearer {server.token('cgj', 'Harbour-Lamp-42')}"}
    # Out of scope answers exactly as a channel that does not exist.
    for path in ("snapshot.jpg", "live.mp4", "live.flv", "live.m3u8", "live.info", "hls/init.mp4"):
        r = httpx.get(f"{server.base}/api/v1/channels/{CH_A}/{path}", headers=cg, timeout=20)
        nope = httpx.get(f"{server.base}/api/v1/channels/34020000001320009999/{path}", headers=cg)
        assert r.status_code == nope.status_code == 404, (path, r.status_code)
        assert r.json()["detail"].replace(CH_A, "X") == nope.json()["detail"].replace("34020000001320009999", "X")
    assert (
        httpx.post(f"{server.base}/api/v1/channels/{CH_A}/media-token", headers=cg).status_code
        == 404
    )
    for path in ("live.flv", "live.mp4", "snapshot.jpg", ""):
        url = f"{server.base}/api/v1/streams/live/{CH_A}/{path}".rstrip("/")
        assert httpx.get(url, headers=cg, timeout=20).status_code == 404, path
    listed = httpx.get(f"{server.base}/api/v1/streams", headers=cg).json()
    assert isinstance(listed, list)
    assert f"live/{CH_A}" not in {s["name"] for s in listed}
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"ws://127.0.0.1:{server.port}/api/v1/channels/{CH_A}/live.ws",
            additional_headers=cg, open_timeout=10,
        )
    assert refused.value.response.status_code == 404  # refused before the handshake
    # Their own department's channel plays.
    r = httpx.get(f"{server.base}/api/v1/channels/{CH_B}/snapshot.jpg", headers=cg, timeout=20)
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    mine = httpx.get(f"{server.base}/api/v1/streams", headers=cg).json()
    assert f"live/{CH_B}" in {s["name"] for s in mine}
    assert all("viewers" not in s for s in mine)  # who watches is for stream managers
    # Managing streams and receivers is not theirs.
    assert httpx.delete(f"{server.base}/api/v1/streams/live/{CH_B}", headers=cg).status_code == 403
    r = httpx.post(f"{server.base}/api/v1/media/rtp-receivers", json={"ssrc": 5}, headers=cg)
    assert r.status_code == 403


def test_stop_stream_ends_readers_and_closes_the_source(
    server: LiveServer, admin: dict[str, str], root: dict[str, str]
) -> None:
    r = httpx.get(f"{server.base}/api/v1/channels/{CH_B}/live.info", headers=admin, timeout=20)
    assert r.status_code == 200
    handle = server.platform.live.gb.handles[-1]
    with (
        httpx.Client(timeout=10) as c,
        c.stream("GET", f"{server.base}/api/v1/channels/{CH_B}/live.flv", headers=admin) as resp,
    ):
        it = resp.iter_raw()
        assert next(it)[:3] == b"FLV"
        # A live stream is everyone's: a maintainer who may watch it may not stop it ...
        r = httpx.delete(f"{server.base}/api/v1/streams/live/{CH_B}", headers=admin)
        assert r.status_code == 403, r.text
        # ... an administrator may.
        r = httpx.delete(f"{server.base}/api/v1/streams/live/{CH_B}", headers=root)
        assert r.status_code == 204, r.text
        rest = b"".join(it)  # ends: the response finishes when the stream ends
        assert isinstance(rest, bytes)
    assert handle.closed == 1 and server.hub.stream(f"live/{CH_B}") is None
    assert (
        httpx.delete(f"{server.base}/api/v1/streams/live/{CH_B}", headers=root).status_code == 404
    )


@pytest.mark.skipif(not has_encoder(Codec.H265), reason="PyAV without libx265")
def test_h265_passes_through_and_transcodes_on_request(
    server: LiveServer, admin: dict[str, str], tmp_path: Path
) -> None:
    info = open_receiver(server, admin, "push/hevc")
    pusher = RtpPusher(info["udp_port"], info["ssrc"], ps_clip(codec=Codec.H265)).start()
    base = f"{server.base}/api/v1/streams/rtp/push/hevc/"
    try:
        r = httpx.get(base + "live.info", headers=admin, timeout=20)
        assert r.status_code == 200 and r.json()["codec"].startswith("hvc1.")  # passed through
        r = httpx.get(base + "live.info?transcode=h264", headers=admin, timeout=20)
        assert r.status_code == 200 and r.json()["codec"].startswith("avc1."), r.text
        assert r.json()["stream"] == "transcode/h264/rtp/push/hevc"
        status, data = read_for(base + "live.flv?transcode=h264", 1.5, admin)
        assert status == 200
        (tmp_path / "t.flv").write_bytes(data)
        assert ffprobe(tmp_path / "t.flv")["codec_name"] == "h264"
        assert len(decode_file(tmp_path / "t.flv")) >= 10
    finally:
        pusher.stop()
        httpx.delete(base.rstrip("/"), headers=admin)
        httpx.delete(f"{server.base}/api/v1/streams/transcode/h264/rtp/push/hevc", headers=admin)


def test_every_media_route_needs_a_token(server: LiveServer) -> None:
    spec = httpx.get(f"{server.base}/api/v1/openapi.json").json()
    checked = 0
    for path, ops in spec["paths"].items():
        if not any(k in path for k in ("/live.", "/streams", "/media", "snapshot", "/hls/")):
            continue
        url = server.base + path.replace("{", "").replace("}", "")
        for method in ops:
            r = httpx.request(method.upper(), url)
            assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
    assert checked >= 20
    assert httpx.get(f"{server.base}/player").status_code == 200


@pytest.mark.browser
@pytest.mark.skipif(not browser_launcher.available(), reason=f"no {browser_launcher.CHROMIUM}")
@pytest.mark.parametrize("how", ["stream-websocket", "channel-http"])
async def test_player_page_plays_in_chromium(
    server: LiveServer, admin: dict[str, str], how: str
) -> None:
    """The player page under the real CSP: a pushed stream over WebSocket (login token in the
    URL), and a department user's channel over HTTP fetch (login token exchanged for a media
    token scoped to the channel)."""
    from playwright.async_api import async_playwright

    info = await asyncio.to_thread(open_receiver, server, admin, f"push/browser-{how}")
    pusher = RtpPusher(info["udp_port"], info["ssrc"], ps_clip()).start()
    if how == "stream-websocket":
        token = await asyncio.to_thread(server.token)
        url = f"{server.base}/player?stream=rtp/push/browser-{how}&token={token}"
        via = "websocket"
    else:
        token = await asyncio.to_thread(server.token, "cgj", "Harbour-Lamp-42")
        url = f"{server.base}/player?channel={CH_B}&token={token}&via=http"
        via = "fetch"
    try:
        async with async_playwright() as pw:
            browser = await browser_launcher.launch_async(pw)
            try:
                page = await browser.new_page()
                await page.goto(url)
                # Polled with evaluate (not wait_for_function: the page's CSP forbids eval).
                for _ in range(150):
                    if await page.evaluate("document.querySelector('video').videoWidth > 0"):
                        break
                    await page.wait_for_timeout(100)
                t1 = await page.evaluate("document.querySelector('video').currentTime")
                await page.wait_for_timeout(1500)
                t2 = await page.evaluate("document.querySelector('video').currentTime")
                state = await page.evaluate("window.xlPlayer")
                width = await page.evaluate("document.querySelector('video').videoWidth")
                assert state["via"] == via and state["error"] is None, state
                assert width == 320
                assert t2 > t1 + 0.5, (t1, t2)
            finally:
                await browser.close()
    finally:
        pusher.stop()
        await asyncio.to_thread(
            httpx.delete, f"{server.base}/api/v1/streams/rtp/push/browser-{how}", headers=admin
        )


def test_rtsp_camera_added_by_url_plays(server: LiveServer, admin: dict[str, str], tmp_path: Path) -> None:
    """A camera without GB/T 28181: registered with an RTSP URL, it plays at the channel's URLs."""
    from test_rtsp import TinyRtspServer, rtsp_clip

    from xueliang.registry.models import ChannelIn

    frames, sps, pps = rtsp_clip()
    camera = TinyRtspServer(frames, sps, pps)
    try:
        cid = "34020000001310000777"
        server.run(server.platform.registry.create_channel(ChannelIn(id=cid, name="RTSP 枪机", rtsp_url=camera.url)))
        status, data = read_for(f"{server.base}/api/v1/channels/{cid}/live.mp4", 3.0, headers=admin)
        assert status == 200, data[:300]
        (tmp_path / "rtsp.mp4").write_bytes(data)
        check_video(tmp_path / "rtsp.mp4", min_frames=25)
        assert "DESCRIBE" in camera.requests and "PLAY" in camera.requests
        info = httpx.get(f"{server.base}/api/v1/channels/{cid}/live.info", headers=admin, timeout=20).json()
        assert info["codec"].startswith("avc1.") and info["width"] == 320
    finally:
        camera.close()


def test_a_port_of_its_own_needs_a_range(server: LiveServer, admin: dict[str, str]) -> None:
    r = httpx.post(f"{server.base}/api/v1/media/rtp-receivers",
                   json={"ssrc": 77, "name": "push/own", "dedicated": True}, headers=admin)
    assert r.status_code == 503 and "port range" in r.text
    assert server.hub.stream("push/own") is None  # nothing left half-open
