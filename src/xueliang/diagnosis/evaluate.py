"""The labelled set and its scoring: precision, recall and the confusion matrix of the detectors.

Views of real footage from fixed cameras (scripts/footage.sh): OpenCV's vtest.avi (a street and
lawn with people walking), two low-texture crops of it (lawn, road), and tree.avi (leaves in wind
against a bright sky). Each view has a reference picture taken at its start, as an operator
would at acceptance; samples come from later windows. Every window gives a healthy sample, the
hard negatives (healthy, labelled ``ok``) and every fault at each severity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xueliang.diagnosis import synth
from xueliang.diagnosis.detectors import Image, Reference, diagnose
from xueliang.diagnosis.faults import CODES
from xueliang.diagnosis.source import read_sample

OK = "ok"
#: (file, crop as x0, y0, x1, y1 in source pixels or None, name)
VIEWS: tuple[tuple[str, tuple[int, int, int, int] | None, str], ...] = (
    ("vtest.avi", None, "street"),
    ("vtest.avi", (0, 300, 420, 576), "lawn"),
    ("vtest.avi", (300, 230, 768, 470), "road"),
    ("tree.avi", None, "tree"),
)


@dataclass(frozen=True, slots=True)
class Case:
    view: str
    label: str  # a fault code, or "ok"
    kind: str  # "healthy", the fault code, or the hard negative's name
    severity: float
    frames: list[Image]
    reference: Reference


def _crop(frames: Sequence[Image], box: tuple[int, int, int, int] | None) -> list[Image]:
    if box is None:
        return list(frames)
    x0, y0, x1, y1 = box
    return [np.ascontiguousarray(f[y0:y1, x0:x1]) for f in frames]


def cases(footage: Path, *, windows: int = 4, severities: Sequence[float] = (0.0, 0.35, 0.7, 1.0),
          seed: int = 7, frames: int = 4, seconds: float = 3.0) -> Iterator[Case]:
    rng = np.random.default_rng(seed)
    for name, box, view in VIEWS:
        path = footage / name
        ref_frames = _crop(read_sample(path, seconds=0.0, count=1, start=0.0), box)
        reference = Reference(ref_frames[0])
        length = 25.0 if name == "tree.avi" else 70.0
        for w in range(windows):
            start = 4.0 + (length - 4.0 - seconds) * w / max(1, windows - 1)
            clean = _crop(read_sample(path, seconds=seconds, count=frames, start=start), box)
            yield Case(view, OK, "healthy", 0.0, clean, reference)
            for hn, make in synth.HARD_NEGATIVES.items():
                yield Case(view, OK, hn, 0.5, make(clean, 0.5, rng), reference)
            for code, make in synth.FAULTS.items():
                for s in severities:
                    yield Case(view, code, code, s, make(clean, s, rng), reference)


@dataclass
class Scores:
    #: true label → predicted fault (or "none") → count
    matrix: dict[str, Counter[str]] = field(default_factory=dict)
    #: hard negative name → (samples, flagged)
    hard: dict[str, list[int]] = field(default_factory=dict)
    healthy: list[int] = field(default_factory=lambda: [0, 0])
    misses: list[tuple[str, str, str, float, list[str]]] = field(default_factory=list)
    #: samples per true label
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, case: Case, faults: list[str]) -> None:
        self.counts[case.label] += 1
        row = self.matrix.setdefault(case.label, Counter())
        for f in faults or ["none"]:
            row[f] += 1
        if case.label == OK:
            bucket = self.healthy if case.kind == "healthy" else self.hard.setdefault(case.kind, [0, 0])
            bucket[0] += 1
            bucket[1] += 1 if faults else 0
        if (case.label == OK and faults) or (case.label != OK and case.label not in faults):
            self.misses.append((case.view, case.label, case.kind, case.severity, faults))

    def precision_recall(self, code: str) -> tuple[float, float]:
        tp = self.matrix.get(code, Counter())[code]
        positives = self.counts[code]
        predicted = sum(row[code] for row in self.matrix.values())
        return (tp / predicted if predicted else 1.0), (tp / positives if positives else 1.0)

    def flagged(self, bucket: list[int]) -> float:
        return bucket[1] / bucket[0] if bucket[0] else 0.0

    def hard_total(self) -> list[int]:
        return [sum(v[0] for v in self.hard.values()), sum(v[1] for v in self.hard.values())]


def run(footage: Path, **kw: object) -> Scores:
    sc = Scores()
    for case in cases(footage, **kw):  # type: ignore[arg-type]
        d = diagnose(case.frames, case.reference)
        sc.add(case, d.faults)
    return sc


def table(sc: Scores) -> list[str]:
    """The confusion matrix as markdown rows (true label down, predicted fault across)."""
    cols = [*CODES, "none"]
    head = "| true \\ predicted | " + " | ".join(cols) + " | precision | recall |"
    lines = [head, "|" + "---|" * (len(cols) + 3)]
    for label in [*CODES, OK]:
        row = sc.matrix.get(label, Counter())
        pr = " | " if label == OK else "{:.2f} | {:.2f}".format(*sc.precision_recall(label))
        lines.append(f"| {label} | " + " | ".join(str(row[c]) if row[c] else "" for c in cols) + f" | {pr} |")
    return lines
