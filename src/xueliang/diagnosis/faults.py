"""The picture faults (视频质量诊断), their thresholds and a diagnosis.

Codes are fixed: English in code and the API, Chinese in the console. A detector gives a score in
[0, 1]; the fault is present when the score reaches its threshold, and its severity grows with
the score above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

FAULTS: dict[str, str] = {
    "signal_loss": "信号丢失",
    "blur": "清晰度异常",
    "too_dark": "过暗",
    "too_bright": "过亮",
    "color_cast": "偏色",
    "noise": "噪声",
    "stripes": "条纹干扰",
    "frozen": "画面冻结",
    "occlusion": "遮挡",
    "scene_changed": "场景变换",
}
CODES: tuple[str, ...] = tuple(FAULTS)

Severity = Literal["none", "minor", "major", "critical"]

#: Default thresholds (the score at which a fault is present), tuned on the labelled set of
#: bench/diagnosis.py; a camera or a class may set its own.
DEFAULT_THRESHOLDS: dict[str, float] = dict.fromkeys(CODES, 0.5)


def severity(score: float, threshold: float) -> Severity:
    """Below the threshold none; above it, the rest of the range split in three."""
    if score < threshold:
        return "none"
    step = (1.0 - threshold) / 3 or 1.0
    if score < threshold + step:
        return "minor"
    return "major" if score < threshold + 2 * step else "critical"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Per-fault thresholds, by profile: a night picture (infrared grey, or dark) is judged by
    its own set. Unknown codes are refused, so a misspelt key does not silently do nothing."""

    day: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    night: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))

    def __post_init__(self) -> None:
        for profile in (self.day, self.night):
            for code, value in profile.items():
                if code not in FAULTS:
                    raise ValueError(f"unknown fault code {code!r} (known: {', '.join(CODES)})")
                if not 0.0 < value <= 1.0:
                    raise ValueError(f"threshold of {code} must be in (0, 1], not {value}")

    @classmethod
    def merged(cls, *layers: Mapping[str, Mapping[str, float]] | None) -> Thresholds:
        """Defaults, then each layer (class, then camera) over them: {"day": {...}, "night": {...}}."""
        day, night = dict(DEFAULT_THRESHOLDS), dict(DEFAULT_THRESHOLDS)
        for layer in layers:
            if not layer:
                continue
            unknown = set(layer) - {"day", "night"}
            if unknown:
                raise ValueError(f"unknown threshold profile(s) {sorted(unknown)} (day, night)")
            day.update(layer.get("day", {}))
            night.update(layer.get("night", {}))
        return cls(day, night)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What one sample of a camera showed."""

    scores: dict[str, float]
    faults: list[str]
    severities: dict[str, Severity]
    profile: Literal["day", "night"]
    frames: int

    def to_json(self) -> dict[str, object]:
        return {"faults": list(self.faults), "scores": {k: round(v, 4) for k, v in self.scores.items()},
                "severities": dict(self.severities), "profile": self.profile, "frames": self.frames}
