from __future__ import annotations

import re
from pathlib import Path

import av
from _media_clips import decode_video, encode, ffprobe

from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Codec, Frame
from xueliang.media.hls import HlsPackager


def clip(n: int = 150) -> tuple[list[Frame], Fmp4Muxer]:
    frames, ps = encode(Codec.H264, frames=n)  # 25 fps, key frame every 25 frames (1 s)
    return list(frames), Fmp4Muxer(Codec.H264, ps)


def shifted(frames: list[Frame], ticks: int) -> list[Frame]:
    return [Frame(f.codec, f.pts + ticks, f.dts + ticks, f.data, f.keyframe) for f in frames]


def write_out(hls: HlsPackager, directory: Path) -> Path:
    for seg in hls.segments:
        (directory / f"seg{seg.sequence}.m4s").write_bytes(seg.data)
    for name in set(re.findall(r'URI="([^"]+)"', hls.playlist())):
        data = hls.resource(name)
        assert data is not None
        (directory / name).write_bytes(data)
    path = directory / "playlist.m3u8"
    path.write_text(hls.playlist())
    return path


def test_playlist_plays_and_segments_start_at_key_frames(tmp_path: Path) -> None:
    frames, muxer = clip()
    hls = HlsPackager(muxer, target_duration=2.0, window=6)
    completed = [s for f in frames if (s := hls.add(f)) is not None]
    last = hls.finish()
    assert last is not None
    completed.append(last)
    assert [s.sequence for s in completed] == [0, 1, 2]
    keys = {f.dts for f in frames if f.keyframe}
    assert all(s.keyframe_dts in keys for s in completed)
    assert [s.duration for s in completed] == [2.0, 2.0, 2.0]

    text = hls.playlist()
    assert text.splitlines()[:6] == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="init.mp4"',
    ]
    assert text.count("#EXTINF:2.000,") == 3 and "seg2.m4s" in text

    path = write_out(hls, tmp_path)
    assert ffprobe(path) == {
        "codec_name": "h264",
        "width": 320,
        "height": 240,
        "nb_read_frames": "150",
    }
    # each segment decodes on its own after the init segment: it starts with a key frame
    for seg in completed:
        one = tmp_path / f"alone{seg.sequence}.mp4"
        one.write_bytes(muxer.init_segment() + seg.data)
        with av.open(str(one)) as c:
            packets = [p for p in c.demux(video=0) if p.size]
        assert packets[0].is_keyframe
        assert len(decode_video(one)) == 50


def test_window_is_bounded(tmp_path: Path) -> None:
    frames, muxer = clip(50)
    hls = HlsPackager(muxer, target_duration=1.0, window=3)
    span = 50 * 3600
    for rep in range(12):  # 24 s of stream, 24 segments of 1 s
        for f in shifted(frames, rep * span):
            hls.add(f)
    assert [s.sequence for s in hls.segments] == [20, 21, 22]
    assert hls.media_sequence == 20
    assert "#EXT-X-MEDIA-SEQUENCE:20" in hls.playlist()
    assert hls.playlist().count("#EXTINF") == 3
    assert hls.segment(22) is not None
    assert hls.segment(18) is not None  # just left the playlist: still fetchable
    assert hls.segment(17) is None and hls.segment(23) is None
    assert hls.resource("seg5.m4s") is None and hls.resource("../x") is None
    assert len(hls._segments) == 5
    last = hls.finish()
    assert last is not None and last.sequence == 23
    assert hls.finish() is None
    assert "#EXT-X-MEDIA-SEQUENCE:21" in hls.playlist()
    assert hls.playlist().endswith("seg23.m4s\n#EXT-X-ENDLIST\n")
    path = write_out(hls, tmp_path)
    assert ffprobe(path)["nb_read_frames"] == "75"


def test_waits_for_key_frame_and_drops_oversized_segment() -> None:
    frames, muxer = clip(75)
    hls = HlsPackager(muxer, target_duration=1.0, window=3, max_segment_bytes=1)
    assert hls.add(frames[1]) is None and not hls._pending  # not a key frame: ignored
    for f in frames:
        assert hls.add(f) is None
    assert hls.segments == [] and not hls._pending  # never grew beyond the limit
    assert "#EXTINF" not in hls.playlist() and 'URI="init.mp4"' in hls.playlist()


def test_uri_prefix_and_query() -> None:
    frames, muxer = clip(50)
    hls = HlsPackager(
        muxer, target_duration=1.0, uri_prefix="/api/streams/7/hls/", uri_query="token=abc"
    )
    for f in frames:
        hls.add(f)
    text = hls.playlist()
    assert '#EXT-X-MAP:URI="/api/streams/7/hls/init.mp4?token=abc"' in text
    assert "\n/api/streams/7/hls/seg0.m4s?token=abc\n" in text
    viewer = hls.playlist(uri_prefix="", uri_query="token=xyz")
    assert "\nseg0.m4s?token=xyz\n" in viewer
    assert hls.playlist() == text


def test_parameter_set_change_starts_new_map_after_discontinuity(tmp_path: Path) -> None:
    frames, muxer = clip(50)
    other, ps_b = encode(Codec.H264, 352, 288, 50)
    hls = HlsPackager(muxer, target_duration=1.0, window=6)
    for f in frames:
        hls.add(f)
    closed = hls.set_parameter_sets(ps_b)
    assert closed is not None and closed.sequence == 1
    for f in shifted(list(other), 50 * 3600):
        hls.add(f)
    hls.finish()
    text = hls.playlist()
    lines = text.splitlines()
    assert lines.index("#EXT-X-DISCONTINUITY") < lines.index('#EXT-X-MAP:URI="init-1.mp4"')
    assert hls.init() == muxer.init_segment() != hls.init(0)
    assert [s.init_version for s in hls.segments] == [0, 0, 1, 1]
    # Each run decodes with its own init segment. (FFmpeg's HLS demuxer does not reload the
    # codec configuration on a map change, so the playlist as a whole is not probed here;
    # hls.js and Safari do reload it.)
    for version, first, size in ((0, 0, (320, 240)), (1, 2, (352, 288))):
        one = tmp_path / f"run{version}.mp4"
        init = hls.init(version)
        s0, s1 = hls.segment(first), hls.segment(first + 1)
        assert init is not None and s0 is not None and s1 is not None
        one.write_bytes(init + s0 + s1)
        info = ffprobe(one)
        assert (info["width"], info["height"], info["nb_read_frames"]) == (*size, "50")
