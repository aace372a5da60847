"""The detectors on the labelled set of real footage, and on any input at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xueliang.diagnosis import synth
from xueliang.diagnosis.detectors import Reference, diagnose
from xueliang.diagnosis.evaluate import OK, run
from xueliang.diagnosis.faults import CODES, Thresholds, severity
from xueliang.diagnosis.source import read_sample


@pytest.fixture(scope="module")
def scores(footage: Path):  # type: ignore[no-untyped-def]
    # every view, one window, each fault barely-to-plainly and plainly (bench/diagnosis.py runs more)
    return run(footage, windows=1, severities=(0.35, 1.0))


def test_no_healthy_picture_or_hard_negative_is_flagged(scores) -> None:  # type: ignore[no-untyped-def]
    assert scores.healthy[0] >= 4 and scores.healthy[1] == 0, scores.misses
    n, flagged = scores.hard_total()
    assert n >= 20  # night infrared, fog, heavy compression, rain, burnt-in clock on each view
    assert flagged / n <= 0.02, [m for m in scores.misses if m[1] == OK]


@pytest.mark.parametrize("code", CODES)
def test_each_fault_is_found_and_not_mistaken(scores, code: str) -> None:  # type: ignore[no-untyped-def]
    precision, recall = scores.precision_recall(code)
    assert scores.counts[code] >= 8
    # below the bench's figures (docs/performance.md), to catch a regression, not to tune to
    assert recall >= 0.75, [m for m in scores.misses if m[1] == code]
    assert precision >= 0.8, [m for m in scores.misses if code in m[4]]


def test_night_infrared_is_judged_by_the_night_profile_and_never_as_a_cast(footage: Path) -> None:
    clean = read_sample(footage / "vtest.avi", seconds=2.0, count=3, start=20.0)
    ref = Reference(read_sample(footage / "vtest.avi", seconds=0.0, count=1)[0])
    d = diagnose(synth.night_ir(clean, 0.5, np.random.default_rng(1)), ref)
    assert d.profile == "night" and d.scores["color_cast"] == 0.0 and not d.faults
    # the same picture with a real cast is one
    assert "color_cast" in diagnose(synth.color_cast(clean, 1.0, np.random.default_rng(1)), ref).faults


def test_a_frozen_picture_with_a_running_clock_is_frozen_and_a_live_one_is_not(footage: Path) -> None:
    clean = read_sample(footage / "vtest.avi", seconds=3.0, count=4, start=40.0)
    rng = np.random.default_rng(3)
    assert "frozen" in diagnose(synth.frozen(clean, 1.0, rng)).faults
    assert "frozen" not in diagnose(synth.clock(clean)).faults


def test_per_camera_thresholds_change_the_verdict(footage: Path) -> None:
    clean = read_sample(footage / "vtest.avi", seconds=2.0, count=3, start=30.0)
    ref = Reference(read_sample(footage / "vtest.avi", seconds=0.0, count=1)[0])
    blurred = synth.blur(clean, 0.0, np.random.default_rng(0))
    d = diagnose(blurred, ref)
    assert "blur" in d.faults
    lenient = Thresholds.merged({"day": {"blur": 1.0}, "night": {"blur": 1.0}})
    score = d.scores["blur"]
    assert ("blur" in diagnose(blurred, ref, lenient).faults) == (score >= 1.0)


def test_thresholds_refuse_unknown_codes_profiles_and_ranges() -> None:
    with pytest.raises(ValueError, match="unknown fault code 'blurr'"):
        Thresholds.merged({"day": {"blurr": 0.5}})
    with pytest.raises(ValueError, match="profile"):
        Thresholds.merged({"dusk": {"blur": 0.5}})
    with pytest.raises(ValueError, match="must be in"):
        Thresholds.merged({"night": {"noise": 0.0}})


@given(st.floats(0, 1), st.floats(0.05, 1))
def test_severity_grows_with_the_score(score: float, threshold: float) -> None:
    order = ["none", "minor", "major", "critical"]
    s1, s2 = severity(score, threshold), severity(min(1.0, score + 0.1), threshold)
    assert order.index(s2) >= order.index(s1)
    assert (s1 == "none") == (score < threshold)


def test_no_frames_is_a_signal_loss() -> None:
    d = diagnose([])
    assert d.faults == ["signal_loss"] and d.frames == 0


_frame = st.tuples(st.integers(1, 90), st.integers(1, 120)).flatmap(
    lambda hw: arrays(np.uint8, (hw[0], hw[1], 3), elements=st.integers(0, 255)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_frame, min_size=0, max_size=4), st.one_of(st.none(), _frame))
def test_any_frames_give_scores_in_range_and_never_raise(frames: list[np.ndarray], ref: np.ndarray | None) -> None:
    # frames of different sizes, tiny ones, a reference of another size: a camera changed its
    # resolution since it was calibrated
    d = diagnose(frames, Reference(ref) if ref is not None else None)
    assert set(d.scores) == set(CODES)
    assert all(0.0 <= v <= 1.0 for v in d.scores.values()), d.scores
    assert set(d.faults) <= set(CODES)
