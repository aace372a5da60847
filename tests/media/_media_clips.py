"""Real encoded clips for the muxer tests (PyAV, libx264/libx265), as Annex B ``Frame`` s."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np

from xueliang.media._bitstream import parameter_sets_from_annexb
from xueliang.media.frame import Codec, Frame, ParameterSets

#: Stream clocks in the field run for hours: start far from zero to prove rebasing.
T0 = 90000 * 3600 * 5

ENCODERS = {Codec.H264: "libx264", Codec.H265: "libx265"}


def has_encoder(codec: Codec) -> bool:
    try:
        av.codec.Codec(ENCODERS[codec], "w")
    except Exception:
        return False
    return True


def _picture(i: int, width: int, height: int) -> np.ndarray[Any, Any]:
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (x + i * 7) % 256
    img[..., 1] = (y * 2 + i * 3) % 256
    img[..., 2] = ((x ^ y) + i * 11) % 256
    return img


@cache
def encode(
    codec: Codec = Codec.H264,
    width: int = 320,
    height: int = 240,
    frames: int = 60,
    gop: int = 25,
    bframes: int = 2,
    bit_rate: int = 0,
) -> tuple[tuple[Frame, ...], ParameterSets]:
    """Encode ``frames`` pictures at 25 fps; returns Annex B frames (90 kHz) and their VPS/SPS/PPS."""
    cc: Any = av.CodecContext.create(ENCODERS[codec], "w")
    cc.width, cc.height = width, height
    cc.pix_fmt = "yuv420p"
    cc.time_base = Fraction(1, 25)
    cc.framerate = Fraction(25, 1)
    cc.gop_size = gop
    if bit_rate:
        cc.bit_rate = bit_rate
    if codec is Codec.H265:
        cc.options = {
            "x265-params": f"log-level=error:keyint={gop}:min-keyint={gop}:bframes={bframes}:scenecut=0"
        }
    else:
        cc.options = {"bf": str(bframes), "sc_threshold": "0", "preset": "veryfast"}
    packets: list[Any] = []
    for i in range(frames):
        vf = av.VideoFrame.from_ndarray(_picture(i, width, height), format="rgb24")
        vf = vf.reformat(format="yuv420p")
        vf.pts = i
        packets += cc.encode(vf)
    packets += cc.encode(None)
    out = []
    ps = ParameterSets()
    for p in packets:
        data = bytes(p)
        if p.is_keyframe:
            parameter_sets_from_annexb(codec, data, ps)
        # +2 frames so dts never goes below T0 (the encoder starts dts at -2 with B-frames)
        out.append(
            Frame(codec, T0 + (p.pts + 2) * 3600, T0 + (p.dts + 2) * 3600, data, p.is_keyframe)
        )
    return tuple(out), ps


def ffprobe(path: Path, *extra: str) -> dict[str, Any]:
    """ffprobe's view of the first video stream (codec, size, frames actually read)."""
    exe = shutil.which("ffprobe")
    assert exe, "ffprobe missing"
    cmd = [
        exe,
        "-v",
        "error",
        *extra,
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,width,height,nb_read_frames",
        "-of",
        "json",
        str(path),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    assert res.stderr.strip() == "", res.stderr
    streams: list[dict[str, Any]] = json.loads(res.stdout)["streams"]
    assert len(streams) == 1
    return streams[0]


def decode_video(path: Path) -> list[int]:
    """Decode the first video stream with PyAV; returns the presentation times in order."""
    pts: list[int] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.pts is not None
            pts.append(frame.pts)
    return pts
