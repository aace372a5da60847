"""Opt-in H.265 → H.264 transcoding as a stream of the hub, with a limit on concurrent ones."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest
from _media_clips import has_encoder
from test_hub_support import ps_clip

from xueliang.bus import EventBus
from xueliang.config import MediaConfig
from xueliang.errors import Unavailable
from xueliang.media.frame import Codec, Frame
from xueliang.media.hub import MediaHub
from xueliang.media.stream import Stream
from xueliang.media.transcode import PREFIX, TranscodeProvider

pytestmark = pytest.mark.skipif(not has_encoder(Codec.H265), reason="PyAV without libx265")


async def feed(stream: Stream, frames: tuple[Frame, ...], loops: int) -> None:
    span = max(f.dts for f in frames) - frames[0].dts + 3600
    for k in range(loops):
        for f in frames:
            stream.push_frame(
                Frame(f.codec, f.pts + k * span, f.dts + k * span, f.data, f.keyframe)
            )
            await asyncio.sleep(0.01)


@pytest.fixture
async def hub() -> Any:
    h = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0, max_transcodes=1), EventBus())
    h.set_provider(PREFIX, TranscodeProvider(1))
    await h.start()
    yield h
    await h.stop()


async def test_h265_is_transcoded_to_h264_once_and_limited(hub: MediaHub) -> None:
    clip = ps_clip(320, 240, codec=Codec.H265)
    src = hub.publish("test/hevc", kind="test")
    feeder = asyncio.create_task(feed(src, clip, 4))
    await src.wait_ready(5)
    assert src.codec is Codec.H265
    name = PREFIX + "test/hevc"
    out, again = await asyncio.gather(hub.acquire(name, timeout=10), hub.acquire(name, timeout=10))
    assert out is again and out.codec is Codec.H264 and (out.width, out.height) == (320, 240)
    assert src.readers == 1  # the transcoder reads the source like any viewer
    reader = out.reader("frames")
    got: list[Frame] = []
    async with asyncio.timeout(10):
        while len(got) < 40:
            got += await reader.get()
    dec = av.CodecContext.create("h264", "r")
    pictures = []
    for f in got:
        assert f.codec is Codec.H264
        pictures += dec.decode(av.Packet(f.data))
    assert len(pictures) >= 30 and pictures[0].width == 320

    other = hub.publish("test/hevc2", kind="test")
    feeder2 = asyncio.create_task(feed(other, clip, 1))
    await other.wait_ready(5)
    with pytest.raises(Unavailable, match="transcoding limit"):
        await hub.acquire(PREFIX + "test/hevc2", timeout=5)

    reader.close()
    await hub.close(name, "test")
    assert src.readers == 0 and hub.stream(name) is None
    provider = hub.provider_for(name)
    assert isinstance(provider, TranscodeProvider) and not provider.active
    # The slot is free again.
    out2 = await hub.acquire(PREFIX + "test/hevc2", timeout=10) if not other.ended else None
    assert out2 is None or out2.codec is Codec.H264
    feeder.cancel()
    feeder2.cancel()
