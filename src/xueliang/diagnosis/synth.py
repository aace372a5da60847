"""Faults synthesised on real footage, at graded severity, and the hard negatives beside them:
the labelled set behind the detectors' accuracy figures (bench/diagnosis.py) and their tests.

Each function takes a sample (a few BGR frames of one fixed camera, seconds apart) and returns
the sample as the faulty camera would give it. ``severity`` runs from 0 (barely) to 1 (plainly).
Nothing here reads files: the caller brings the frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Sample = list[Image]
Fault = Callable[[Sequence[Image], float, np.random.Generator], Sample]


def _u8(a: npt.NDArray[Any]) -> Image:
    return np.asarray(np.clip(a, 0, 255), np.uint8)


def clock(frames: Sequence[Image], start: int = 0) -> Sample:
    """A burnt-in clock (the OSD every camera has), a second on per frame."""
    out = []
    for i, f in enumerate(frames):
        g = f.copy()
        s = start + i
        text = f"2026-12-04 03:{(s // 60) % 60:02d}:{s % 60:02d}"
        scale = f.shape[1] / 640
        cv2.putText(g, text, (int(10 * scale), int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale,
                    (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
        out.append(g)
    return out


# ---- faults --------------------------------------------------------------------------------


def signal_loss(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    h, w = frames[0].shape[:2]
    kind = int(rng.integers(3))
    colour = [(0, 0, 0), (160, 40, 0), (16, 16, 16)][kind]  # black, blue, encoder grey
    out = []
    for _ in frames:
        f = np.zeros((h, w, 3), np.uint8)
        f[:] = colour
        if kind > 0:
            cv2.putText(f, "NO SIGNAL", (w // 3, h // 2), cv2.FONT_HERSHEY_SIMPLEX, w / 600, (255, 255, 255), 2)
        out.append(f)
    return out


def blur(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    sigma = frames[0].shape[1] / 768 * (3.0 + 5.0 * severity)
    return [np.asarray(cv2.GaussianBlur(f, (0, 0), sigma), np.uint8) for f in frames]


def too_dark(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    gain = 0.22 - 0.14 * severity
    return [_u8(f.astype(np.float32) * gain) for f in frames]


def too_bright(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    gain, lift = 1.9 + 1.0 * severity, 60 + 50 * severity
    return [_u8(f.astype(np.float32) * gain + lift) for f in frames]


def color_cast(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    ch = int(rng.integers(3))
    gains = np.ones(3, np.float32) * (0.85 - 0.2 * severity)
    gains[ch] = 1.25 + 0.4 * severity
    return [_u8(f.astype(np.float32) * gains) for f in frames]


def noise(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    sigma = 8.0 + 22.0 * severity
    out = []
    for f in frames:
        n = rng.normal(0.0, sigma, f.shape[:2])[..., None]  # snow is mostly luminance
        out.append(_u8(f.astype(np.float32) + n))
    return out


def stripes(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    h, w = frames[0].shape[:2]
    vertical = bool(rng.integers(2))
    n = w if vertical else h
    period = n / float(rng.uniform(6, 20))
    amp = 10.0 + 20.0 * severity
    out = []
    for i, f in enumerate(frames):
        phase = i * period / 3  # the bars roll
        wave = amp * np.sin(2 * np.pi * (np.arange(n) + phase) / period).astype(np.float32)
        band = wave[None, :, None] if vertical else wave[:, None, None]
        out.append(_u8(f.astype(np.float32) + band))
    return out


def frozen(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    # the encoder keeps sending one picture; its clock goes on
    return clock([frames[0]] * len(frames), start=int(rng.integers(3600)))


def occlusion(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    h, w = frames[0].shape[:2]
    share = 0.35 + 0.35 * severity
    corner = (int(rng.integers(2)) * w, int(rng.integers(2)) * h)
    r = np.sqrt(4 * share / np.pi)  # a quarter ellipse from a corner covers share of the picture
    axes = (int(w * r), int(h * r))
    dark = bool(rng.integers(2))
    colour = (20, 25, 30) if dark else (150, 160, 165)  # a hand, or a bag / tape
    out = []
    for f in frames:
        g = f.copy()
        cv2.ellipse(g, corner, axes, 0, 0, 360, colour, -1)
        out.append(g)
    return out


def scene_changed(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    """The camera turned or tilted: another part of the scene, at another zoom."""
    h, w = frames[0].shape[:2]
    zoom = 1.6 + 0.8 * severity
    cw, chh = int(w / zoom), int(h / zoom)
    x = int(rng.integers(0, w - cw + 1))
    y = int(rng.integers(0, h - chh + 1))
    flip = bool(rng.integers(2))
    out = []
    for f in frames:
        c = cv2.resize(f[y:y + chh, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
        out.append(np.asarray(cv2.flip(c, 1) if flip else c, np.uint8))
    return out


FAULTS: dict[str, Fault] = {
    "signal_loss": signal_loss, "blur": blur, "too_dark": too_dark, "too_bright": too_bright,
    "color_cast": color_cast, "noise": noise, "stripes": stripes, "frozen": frozen,
    "occlusion": occlusion, "scene_changed": scene_changed,
}


# ---- hard negatives: healthy pictures that look like faults ---------------------------------


def night_ir(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    """Infrared at night: grey, flatter, a little grainy; the reference stays the day picture."""
    out = []
    for f in frames:
        g = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.float32)
        g = 0.7 * g + 15 + rng.normal(0, 2.5, g.shape)
        out.append(np.asarray(cv2.cvtColor(_u8(g), cv2.COLOR_GRAY2BGR), np.uint8))
    return out


def fog(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    k = 0.35 + 0.2 * severity
    return [_u8(f.astype(np.float32) * (1 - k) + 200 * k) for f in frames]


def compression(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    q = int(12 - 8 * severity)
    return [np.asarray(cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR), np.uint8)
            for f in frames]


def rain(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    h, w = frames[0].shape[:2]
    out = []
    for f in frames:
        layer = np.zeros((h, w), np.float32)
        for _ in range(int(300 + 500 * severity)):
            x, y = int(rng.integers(w)), int(rng.integers(h))
            cv2.line(layer, (x, y), (x + 3, y + 18), 1.0, 1)
        layer = np.asarray(cv2.GaussianBlur(layer, (3, 3), 0), np.float32)
        out.append(_u8(f.astype(np.float32) * (1 - 0.35 * layer[..., None]) + 200 * 0.35 * layer[..., None]))
    return out


def with_clock(frames: Sequence[Image], severity: float, rng: np.random.Generator) -> Sample:
    return clock(frames, start=int(rng.integers(3600)))


HARD_NEGATIVES: dict[str, Fault] = {
    "night_ir": night_ir, "fog": fog, "compression": compression, "rain": rain, "clock": with_clock,
}
