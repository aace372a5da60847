"""Recording plans (录像计划), sans-IO: which channels record, and how long their video is kept.

The programme asks that recordings be kept at least 30 days, and at least 90 days at key sites
(反恐重点目标). Retention is set per point class (一/二/三类点位) and for key sites; a setting
below these floors is refused when the configuration is read, naming the setting.

Class I points and key sites record continuously by default; other classes as configured
(``recording.continuous``, by default class I only). A point without a class counts as class III.
A channel may have a plan of its own (continuous, scheduled by a weekly timetable, on event, or
off); without one it follows the defaults by key site, class and division (:class:`Policy`),
and its plan says which it follows (``source``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from xueliang.config import (  # the checks run when the configuration is read
    CLASSES,
    MIN_KEY_SITE_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    RecordingConfig,
    RecordingPlanSpec,
    check_continuous,
    check_retention,
)
from xueliang.timetable import Timetable, parse_timetable

#: The class of a point without one.
DEFAULT_CLASS = 3


def retention_days(point_class: int | None, key_site: bool, by_class: Mapping[int, int],
                   key_site_days: int) -> int:
    """Days a channel's recordings are kept: its class's setting, never below the floors."""
    cls = point_class if point_class in CLASSES else DEFAULT_CLASS
    days = max(by_class.get(cls, MIN_RETENTION_DAYS), MIN_RETENTION_DAYS)
    if key_site:
        days = max(days, key_site_days, MIN_KEY_SITE_RETENTION_DAYS)
    return days


def records_continuously(point_class: int | None, key_site: bool, continuous: Mapping[int, bool]) -> bool:
    """Whether a channel records continuously: key sites always, class I unless configured off,
    other classes as configured."""
    if key_site:
        return True
    cls = point_class if point_class in CLASSES else DEFAULT_CLASS
    return continuous.get(cls, cls == 1)


#: The timetable of a plan that has none.
NO_TIMETABLE = Timetable(())
#: Where a channel's plan comes from.
SOURCES = ("channel", "key_site", "class", "division")


@dataclass(frozen=True, slots=True)
class Plan:
    """A channel's recording plan, as the recorder applies it."""

    channel_id: str
    mode: str
    retention_days: int
    source: str = "class"
    timetable: Timetable = NO_TIMETABLE
    #: Event plans: seconds before a trigger kept in memory, and recorded after the last one.
    pre_seconds: float = 0.0
    post_seconds: float = 0.0

    @property
    def continuous(self) -> bool:
        return self.mode == "continuous"

    def records_at(self, local: datetime) -> bool:
        """Whether the plan writes all the time at ``local`` (the platform's time): continuous,
        or scheduled inside a window. An event plan keeps the stream open without writing."""
        return self.mode == "continuous" or (self.mode == "scheduled" and self.timetable.on(local))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel_id": self.channel_id, "mode": self.mode, "source": self.source,
                               "retention_days": self.retention_days}
        if self.mode == "scheduled":
            out["schedule"] = self.timetable.as_list()
        if self.mode == "event":
            out["pre_seconds"], out["post_seconds"] = self.pre_seconds, self.post_seconds
        return out


def division_plan(code: str, by_division: Mapping[str, RecordingPlanSpec]) -> RecordingPlanSpec | None:
    """The plan of the longest configured division prefix of ``code`` (None: none matches)."""
    best: str | None = None
    for prefix in by_division:
        if code.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return None if best is None else by_division[best]


@dataclass(frozen=True, slots=True)
class Policy:
    """The configured defaults, checked: what a channel's plan derives from.

    Precedence: the channel's own plan; then continuous recording where the programme asks it
    (key sites, the continuous classes: class I by default); then the division's plan; then the
    class's (``recording.class_plans``); else off.
    """

    retention_by_class: Mapping[int, int]
    key_site_retention_days: int
    continuous_by_class: Mapping[int, bool]
    class_plans: Mapping[int, RecordingPlanSpec] = field(default_factory=dict)
    division_plans: Mapping[str, RecordingPlanSpec] = field(default_factory=dict)
    pre_seconds: float = 10.0
    post_seconds: float = 30.0

    def __post_init__(self) -> None:
        check_retention(self.retention_by_class, self.key_site_retention_days)
        check_continuous(self.continuous_by_class)

    @classmethod
    def from_config(cls, cfg: RecordingConfig) -> Policy:
        return cls(cfg.retention_days, cfg.key_site_retention_days, cfg.continuous, cfg.class_plans,
                   cfg.division_plans, cfg.pre_seconds, cfg.post_seconds)

    def plan(self, channel_id: str, point_class: int | None, key_site: bool, division_code: str = "",
             own: RecordingPlanSpec | None = None) -> Plan:
        days = retention_days(point_class, key_site, self.retention_by_class, self.key_site_retention_days)
        if own is not None:
            return self._of(channel_id, own, days, "channel")
        if records_continuously(point_class, key_site, self.continuous_by_class):
            return Plan(channel_id, "continuous", days, "key_site" if key_site else "class")
        spec = division_plan(division_code or "", self.division_plans)
        if spec is not None:
            return self._of(channel_id, spec, days, "division")
        cls = point_class if point_class in CLASSES else DEFAULT_CLASS
        spec = self.class_plans.get(cls)
        if spec is not None:
            return self._of(channel_id, spec, days, "class")
        return Plan(channel_id, "off", days, "class")

    def _of(self, channel_id: str, spec: RecordingPlanSpec, days: int, source: str) -> Plan:
        if spec.mode == "scheduled":
            return Plan(channel_id, "scheduled", days, source, parse_timetable(spec.schedule))
        if spec.mode == "event":
            return Plan(channel_id, "event", days, source,
                        pre_seconds=self.pre_seconds if spec.pre_seconds is None else spec.pre_seconds,
                        post_seconds=self.post_seconds if spec.post_seconds is None else spec.post_seconds)
        return Plan(channel_id, spec.mode, days, source)


def expires_before(now: datetime, days: int) -> datetime:
    """Segments that ended before this are beyond a retention of ``days``."""
    return now - timedelta(days=days)
