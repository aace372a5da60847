"""The fault detectors: frames in, scores out (sans-IO: no files, sockets or clocks here).

A sample is a few frames of one camera spread over some seconds (BGR, any size; they are
scaled to ``WIDTH`` for analysis). Most faults are judged against the camera's **reference**
(its picture when it was accepted): a fixed camera sees the same scene, so comparing with it
tells a fog or a sky (low texture, always) from a blur (texture lost), a green lawn from a
colour cast, and a moved camera from a passing crowd. Without a reference the detectors fall
back to absolute measures, which are weaker on such scenes.

Day and night: a picture in infrared grey (no chroma) or a dark one is judged by the night
profile of thresholds, and colour cast is not judged at all in infrared grey.

Every score is in [0, 1]; ``faults.Thresholds`` says where a fault starts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from xueliang.diagnosis.faults import CODES, Diagnosis, Severity, Thresholds, severity

Image = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

#: Analysis width (the height keeps the aspect ratio): enough for every fault here, and cheap.
WIDTH = 320
BLOCK = 16  # blocks of BLOCK × BLOCK analysis pixels
#: Width of the structure map (scene change): coarse enough that a crowd, rain or grain average out.
STRUCTURE = 80
#: Immerkær's noise operator, and the 4-neighbour Laplacian (fine detail, for blur).
_LAPLACE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_LAPLACE4 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi`` (either direction)."""
    return _clip((x - lo) / (hi - lo))


def scale(frame: Image) -> Image:
    h, w = frame.shape[:2]
    if w == WIDTH:
        return frame
    height = max(BLOCK, round(h * WIDTH / w / BLOCK) * BLOCK)
    return np.asarray(cv2.resize(frame, (WIDTH, height), interpolation=cv2.INTER_AREA), np.uint8)


@dataclass(frozen=True, slots=True)
class Features:
    """What the detectors need of one frame, computed once."""

    gray: Image
    mean: float
    p05: float
    p95: float
    saturated: float  # share of pixels ≥ 250
    flat: float  # share of pixels within ±3 of the median (after a light blur)
    chroma_mean: tuple[float, float]  # Lab a, b about neutral
    chroma_spread: float
    block_std: F32  # per block
    grad_energy: F32  # per block: mean gradient magnitude
    reblur: float  # Laplacian energy kept after a further blur (1: blurred already)
    noise: float  # noise sigma in the flat parts (Immerkær)
    lab_blocks: F32  # per block: mean L, a, b (a, b about neutral)
    structure: F32  # the picture at STRUCTURE width, each place against its surroundings' mean and contrast

    @property
    def grey(self) -> bool:
        """Infrared night picture: no colour at all."""
        return self.chroma_spread < 1.5 and abs(self.chroma_mean[0]) < 2.0 and abs(self.chroma_mean[1]) < 2.0

    @property
    def night(self) -> bool:
        return self.grey or self.mean < 50


def _blocks(a: F32, h: int, w: int) -> F32:
    return a[: h * BLOCK, : w * BLOCK].reshape(h, BLOCK, w, BLOCK).swapaxes(1, 2).reshape(h * w, BLOCK * BLOCK)


def features(frame: Image) -> Features:
    img = scale(frame)
    gray = np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), np.uint8)
    g = gray.astype(np.float32)
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    cdf = np.cumsum(hist) / gray.size
    p05, med, p95 = (float(np.searchsorted(cdf, q)) for q in (0.05, 0.5, 0.95))
    smooth = cv2.GaussianBlur(g, (3, 3), 0)
    flat = float(np.mean(np.abs(smooth - med) <= 3.0))
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    a, b = lab[:, 1] - 128.0, lab[:, 2] - 128.0
    ma, mb = float(a.mean()), float(b.mean())
    spread = float(np.mean(np.hypot(a - ma, b - mb)))
    small = cv2.resize(img, (img.shape[1] // BLOCK, img.shape[0] // BLOCK), interpolation=cv2.INTER_AREA)
    lab_blocks = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    lab_blocks[:, 1:] -= 128.0
    hb, wb = gray.shape[0] // BLOCK, gray.shape[1] // BLOCK
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    lap = cv2.filter2D(g, -1, _LAPLACE4)
    lap2 = cv2.filter2D(cv2.GaussianBlur(g, (0, 0), 1.0), -1, _LAPLACE4)
    e1 = float(np.mean(lap * lap)) + 1e-6
    reblur = float(np.mean(lap2 * lap2)) / e1
    n = np.abs(cv2.filter2D(g, -1, _LAPLACE))[1:-1, 1:-1]
    calm = (mag[1:-1, 1:-1] < np.percentile(mag, 50) + 1e-3)
    noise = float(np.sqrt(np.pi / 2) * np.mean(n[calm]) / 6.0) if calm.any() else 0.0
    return Features(
        structure=_structure(g),
        gray=gray, mean=float(g.mean()), p05=p05, p95=p95, saturated=float(np.mean(gray >= 250)), flat=flat,
        chroma_mean=(ma, mb), chroma_spread=spread, block_std=_blocks(g, hb, wb).std(axis=1),
        grad_energy=_blocks(mag, hb, wb).mean(axis=1), reblur=reblur, noise=noise,
        lab_blocks=lab_blocks,
    )


def _structure(g: F32) -> F32:
    """Where the edges and shapes are, whatever the light: each place's brightness against its
    surroundings, in units of their contrast (fog, night and exposure scale both alike)."""
    w = STRUCTURE
    h = g.shape[0] * w // g.shape[1]
    s = cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)
    m = cv2.GaussianBlur(s, (0, 0), 3.0)
    sd = np.sqrt(cv2.GaussianBlur((s - m) ** 2, (0, 0), 3.0)) + 2.0
    z = (s - m) / sd
    # bands across the whole picture (interference, stripes) are no part of the scene
    z -= np.median(z, axis=1, keepdims=True)
    z -= np.median(z, axis=0, keepdims=True)
    return np.asarray(z, np.float32)


class Reference:
    """A camera's reference picture (基准图), as features."""

    def __init__(self, frame: Image) -> None:
        self.features = features(frame)


# ---- the detectors ------------------------------------------------------------------------


def _signal_loss(fs: Sequence[Features], ref: Features | None) -> float:
    if not fs:
        return 1.0
    f = fs[-1]
    if f.p05 >= 235:
        return 0.0  # white all over: over-exposed (too_bright), not a lost signal
    uniform = _ramp(f.flat, 0.90, 0.97)
    if ref is not None and ref.flat > 0.6:
        # the camera's own scene is this flat (a wall, a sky): only a real blank is a loss
        uniform = min(uniform, _ramp(float(np.mean(f.block_std < 1.0)), 0.85, 0.98))
    return uniform


def _too_dark(f: Features) -> float:
    return min(_ramp(f.mean, 55.0, 35.0), _ramp(f.p95, 120.0, 70.0))


def _too_bright(f: Features, ref: Features | None) -> float:
    brighter = 0.0 if ref is None else min(_ramp(f.mean - ref.mean, 50.0, 80.0), _ramp(f.mean, 150.0, 180.0))
    return max(brighter, min(_ramp(f.mean, 165.0, 205.0), _ramp(f.saturated, 0.03, 0.2)), _ramp(f.p05, 170.0, 220.0))


def _color_cast(f: Features, ref: Features | None) -> float:
    if f.grey:
        return 0.0
    if ref is not None and not ref.grey and ref.lab_blocks.shape == f.lab_blocks.shape:
        # a fixed camera: each place's colour now ≈ k × its colour then + the cast (fog and dusk
        # change k, a cast adds the same offset everywhere)
        offs = []
        for c in (1, 2):
            x, y = ref.lab_blocks[:, c], f.lab_blocks[:, c]
            k = float(np.cov(x, y)[0, 1] / (np.var(x) + 1e-3))
            k = min(1.5, max(0.0, k))
            offs.append(float(np.median(y - k * x)))
        d = float(np.hypot(offs[0], offs[1]))
        return _ramp(d, 5.0, 12.0)
    ma, mb = f.chroma_mean
    d = float(np.hypot(ma, mb))
    k = d / (f.chroma_spread + 1.0)
    return min(_ramp(d, 10.0, 25.0), _ramp(k, 1.0, 2.0))


def _noise(f: Features, ref: Features | None) -> float:
    base = ref.noise if ref is not None else 1.5
    return _ramp(f.noise - base, 1.0, 2.6)


def _blur(f: Features, ref: Features | None) -> float:
    if ref is None:
        return _ramp(f.reblur, 0.15, 0.3)
    # the share of fine detail gone, against the reference (a fog or a sky keeps its own)
    lost = (f.reblur - ref.reblur) / max(1e-3, 1.0 - ref.reblur)
    return _ramp(lost, 0.04, 0.1)


def _z(x: F32) -> F32:
    return np.asarray((x - x.mean()) / (x.std() + 1e-3), np.float32)


def _periodic(x: F32) -> tuple[float, float]:
    """(share of the detrended profile's power in its strongest frequency, its amplitude)."""
    x = x - cv2.GaussianBlur(x.reshape(-1, 1), (1, 0), sigmaX=0, sigmaY=len(x) / 4).ravel()
    raw = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    spec = raw.copy()
    spec[:3] = 0.0  # slow trends (light falling across the picture)
    k = int(np.argmax(spec))
    if raw[k - 1] > raw[k]:
        # power falling from the slowest frequencies on: one edge or band (a gradient moving in
        # the scene), not a repeating pattern, which stands out as a peak
        return 0.0, float(np.std(x))
    return float(spec[max(0, k - 1): k + 2].sum()) / (float(spec.sum()) + 1e-6), float(np.std(x))


def _profile_stripes(img: F32, ref: F32 | None, axis: int) -> float:
    """Bands across the whole picture: the same periodic profile in both halves."""
    d = img - ref if ref is not None else img
    n = d.shape[axis]
    halves = (d[:, : n // 2], d[:, n // 2:]) if axis == 1 else (d[: n // 2], d[n // 2:])
    profiles = [np.median(h, axis=axis).astype(np.float32) for h in halves]
    agree = float(np.mean(_z(profiles[0]) * _z(profiles[1])))
    peak, amp = _periodic(np.asarray((profiles[0] + profiles[1]) / 2, np.float32))
    return min(_ramp(peak, 0.3, 0.55), _ramp(amp, 2.0, 5.0), _ramp(agree, 0.5, 0.8))


def _stripes(fs: Sequence[Features], ref: Features | None) -> float:
    """Bands against the reference's picture; and bands that roll (interference): what changed
    from one frame to the next is the same periodic profile across the picture, where the scene
    itself cancels out and a passing crowd is a small part."""
    f = fs[-1]
    g = f.gray.astype(np.float32)
    r = ref.gray.astype(np.float32) if ref is not None and ref.gray.shape == f.gray.shape else None
    if r is not None:  # the scene's own structure out, at the picture's exposure
        r = (r - r.mean()) / (r.std() + 1e-3) * g.std() + g.mean()
    still = max(_profile_stripes(g, r, 1), _profile_stripes(g, r, 0))
    rolling = []
    for a, b in itertools.pairwise(fs):
        if a.gray.shape != b.gray.shape:
            continue
        # only over a still scene (a fixed camera's; its structure is band-free): where the
        # scene itself moves, what changed is that movement
        if _corr(a.structure.ravel(), b.structure.ravel()) < 0.5:
            rolling.append(0.0)
            continue
        d = b.gray.astype(np.float32) - a.gray.astype(np.float32)
        rolling.append(max(_profile_stripes(d, None, 1), _profile_stripes(d, None, 0)))
    return max(still, float(np.median(rolling)) if rolling else 0.0)


def _frozen(fs: Sequence[Features]) -> float:
    """Frames that do not change outside a small part (a burnt-in clock): a live camera always
    changes somewhere, if only by its sensor's noise."""
    if len(fs) < 3:
        return 0.0
    # only where there is texture to change: a uniform cover or a black sky shows nothing either way
    textured = fs[-1].block_std >= 3.0
    if textured.mean() < 0.1:
        return 0.0
    shares = []
    for a, b in itertools.pairwise(fs):
        if a.gray.shape != b.gray.shape:
            shares.append(0.0)  # the resolution changed: the stream is alive
            continue
        d = cv2.absdiff(a.gray, b.gray).astype(np.float32)
        hb, wb = d.shape[0] // BLOCK, d.shape[1] // BLOCK
        blocks = _blocks(d, hb, wb).mean(axis=1)
        if blocks.shape != textured.shape:
            shares.append(0.0)
            continue
        # unchanged but for the encoder's rounding (a live camera's sensor noise alone moves more)
        shares.append(float(np.mean(blocks[textured] < 0.3)))
    # the median pair: one key frame re-encoding the frozen picture is not a change
    return _ramp(float(np.median(shares)), 0.6, 0.85)


def _scene_changed(f: Features, ref: Features, visible: npt.NDArray[np.bool_]) -> float:
    """The structure of the picture against the reference's, over the ``visible`` blocks (a
    covered part is an occlusion, not another scene): a fixed camera keeps its edges where they
    were by night and in fog, and a passing crowd moves few of them; a camera turned or zoomed
    keeps none."""
    a, b = f.structure, ref.structure
    if a.shape != b.shape:
        return 1.0  # another picture size: not the view the reference was taken of
    hb, wb = f.gray.shape[0] // BLOCK, f.gray.shape[1] // BLOCK
    mask = cv2.resize(visible.reshape(hb, wb).astype(np.uint8), (a.shape[1], a.shape[0]),
                      interpolation=cv2.INTER_NEAREST).astype(bool)
    if mask.mean() < 0.2:
        return 0.0
    return _ramp(_corr(a[mask], b[mask]), 0.5, 0.3)


def _corr(a: F32, b: F32) -> float:
    x, y = a - a.mean(), b - b.mean()
    return float((x * y).sum() / (np.sqrt((x * x).sum() * (y * y).sum()) + 1e-6))


def _covered(f: Features, ref: Features | None) -> npt.NDArray[np.bool_]:
    """Blocks flat now and not what the reference had there, beyond what changed everywhere (a
    blur keeps each place's colour, a cast or the dusk moves all places alike; a hand or a bag
    changes a part)."""
    flat_now = f.block_std < 3.0
    if ref is None or ref.lab_blocks.shape != f.lab_blocks.shape:
        return np.asarray(f.block_std < 2.0)
    delta = f.lab_blocks - ref.lab_blocks
    delta -= np.median(delta, axis=0)
    return np.asarray(flat_now & (np.hypot(*delta.T) > 12.0))


def _grown(covered: npt.NDArray[np.bool_], f: Features) -> npt.NDArray[np.bool_]:
    """``covered`` and the blocks next to it (its edges are neither scene nor cover)."""
    hb, wb = f.gray.shape[0] // BLOCK, f.gray.shape[1] // BLOCK
    grid = cv2.dilate(covered.reshape(hb, wb).astype(np.uint8), np.ones((3, 3), np.uint8))
    return np.asarray(grid.ravel().astype(bool))


def _occlusion(f: Features, ref: Features | None, covered: npt.NDArray[np.bool_]) -> float:
    share = float(covered.mean())
    if ref is None:
        return min(_ramp(share, 0.35, 0.6), _ramp(f.flat, 0.97, 0.85))
    return _ramp(share, 0.15, 0.3)


def diagnose(frames: Sequence[Image], reference: Reference | None = None,
             thresholds: Thresholds | None = None) -> Diagnosis:
    """Diagnose one sample. No frames at all is a signal loss."""
    th = thresholds or Thresholds()
    fs = [features(fr) for fr in frames]
    ref = reference.features if reference is not None else None
    scores = dict.fromkeys(CODES, 0.0)
    scores["signal_loss"] = _signal_loss(fs, ref)
    profile: Literal["day", "night"] = "night" if fs and fs[-1].night else "day"
    if fs and scores["signal_loss"] < 0.5:
        f = fs[-1]
        scores["too_dark"] = _too_dark(f)
        scores["too_bright"] = _too_bright(f, ref)
        covered = _covered(f, ref)
        if ref is not None:
            # what is still visible (around a cover, the cover's edges left out) is the
            # reference's scene, or another: a camera turned to the sky is not over-exposed, and
            # one turned to a blank wall is not covered
            scores["scene_changed"] = _scene_changed(f, ref, ~_grown(covered, f))
            if scores["scene_changed"] >= 0.5 and _too_bright(f, None) < 0.5:
                scores["too_bright"] = 0.0
    if fs and max(scores["signal_loss"], scores["too_dark"], scores["too_bright"]) < 0.5:
        # The first fault is the one to fix, and it hides others: a picture too dark or too
        # bright hides its texture and colour; one of another scene, or mostly covered, cannot
        # be compared with the reference; a blur hides the sensor noise that tells a live
        # picture from a frozen one.
        f = fs[-1]
        if scores["scene_changed"] < 0.5:
            scores["occlusion"] = _occlusion(f, ref, covered)
        if max(scores["scene_changed"], scores["occlusion"]) < 0.5:
            scores["stripes"] = _stripes(fs, ref)
            scores["color_cast"] = _color_cast(f, ref)
            scores["noise"] = _noise(f, ref)
            scores["blur"] = _blur(f, ref)
            if scores["blur"] < 0.5:
                scores["frozen"] = _frozen(fs)
    else:
        scores["scene_changed"] = 0.0  # not judged under a lost signal or a wrong exposure
    limits = th.night if profile == "night" else th.day
    sev: dict[str, Severity] = {k: severity(v, limits.get(k, 0.5)) for k, v in scores.items()}
    faults = [k for k in CODES if sev[k] != "none"]
    return Diagnosis(scores=scores, faults=faults, severities=sev, profile=profile, frames=len(fs))
