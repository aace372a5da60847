"""`xueliang health diagnose SOURCE [--reference IMAGE] [--seconds N] --json` on real files."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
from typer.testing import CliRunner

from xueliang import cli
from xueliang.diagnosis import synth
from xueliang.diagnosis.faults import CODES
from xueliang.diagnosis.source import read_sample


def _write(path: Path, frames: list[np.ndarray], fps: int = 5, bit_rate: int = 2_000_000) -> None:
    """An MPEG-4 file of ``frames`` (each shown for 1/fps s), at a camera's bit rate for D1 (2 Mbit/s;
    at the encoder's default of 0.2 a live scene's still parts are all skipped blocks)."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=fps)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.bit_rate = bit_rate
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)


def _diagnose(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli.app, ["health", "diagnose", *args])
    return r.exit_code, r.output


def test_a_frozen_camera_file_is_diagnosed_frozen_as_json(footage: Path, tmp_path: Path) -> None:
    clean = read_sample(footage / "vtest.avi", seconds=4.0, count=5, start=10.0)
    frozen = synth.frozen([clean[0]] * 20, 1.0, np.random.default_rng(2))  # 4 s, the clock running
    # an encoder given one picture over and over sends it unchanged (skipped blocks) at a steady
    # quantiser; one whose rate control re-quantises it every frame is not found (docs/performance.md)
    _write(tmp_path / "frozen.mp4", frozen, bit_rate=200_000)
    _write(tmp_path / "live.mp4", synth.clock(read_sample(footage / "vtest.avi", seconds=4.0, count=20, start=10.0)))
    code, out = _diagnose(str(tmp_path / "frozen.mp4"), "--seconds", "3", "--json")
    assert code == 0, out
    d = json.loads(out)
    assert "frozen" in d["faults"] and set(d["scores"]) == set(CODES)
    code, out = _diagnose(str(tmp_path / "live.mp4"), "--seconds", "3", "--json")
    assert code == 0 and "frozen" not in json.loads(out)["faults"], out


def test_a_covered_lens_is_found_against_the_reference(footage: Path, tmp_path: Path) -> None:
    ref = read_sample(footage / "vtest.avi", seconds=0.0, count=1)[0]
    cv2.imwrite(str(tmp_path / "ref.png"), ref)
    clean = read_sample(footage / "vtest.avi", seconds=5.0, count=11, start=30.0)  # every 0.5 s
    _write(tmp_path / "covered.mp4", synth.occlusion(clean, 1.0, np.random.default_rng(5)), fps=2)
    _write(tmp_path / "fine.mp4", clean, fps=2)
    code, out = _diagnose(str(tmp_path / "covered.mp4"), "--reference", str(tmp_path / "ref.png"), "--json")
    assert code == 0 and json.loads(out)["faults"] == ["occlusion"], out
    code, out = _diagnose(str(tmp_path / "fine.mp4"), "--reference", str(tmp_path / "ref.png"), "--json")
    assert code == 0 and json.loads(out)["faults"] == [], out


def test_an_unreadable_source_or_reference_is_a_clear_error_and_status_2(footage: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("not a video")
    for args, said in (
        ([str(tmp_path / "missing.mp4")], "no such file"),
        ([str(tmp_path / "notes.mp4")], "cannot open"),
        (["rtsp://127.0.0.1:1/stream"], "cannot open"),
        ([str(footage / "vtest.avi"), "--reference", str(tmp_path / "notes.mp4")], "not a picture"),
        (["34020000001320000001"], "needs --token"),
    ):
        code, out = _diagnose(*args, "--json")
        assert code == 2 and said in out, (args, out)
