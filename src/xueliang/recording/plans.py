"""Recording plans (录像计划), sans-IO: which channels record, and how long their video is kept.

The programme asks that recordings be kept at least 30 days, and at least 90 days at key sites
(反恐重点目标). Retention is set per point class (一/二/三类点位) and for key sites; a setting
below these floors is refused when the configuration is read, naming the setting.

Class I points and key sites record continuously by default; other classes as configured
(``recording.continuous``, by default class I only). A point without a class counts as class III.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from xueliang.config import (  # the checks run when the configuration is read
    CLASSES,
    MIN_KEY_SITE_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    check_continuous,
    check_retention,
)

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


@dataclass(frozen=True, slots=True)
class Plan:
    channel_id: str
    continuous: bool
    retention_days: int


@dataclass(frozen=True, slots=True)
class Policy:
    """The configured defaults, checked: what a channel's plan derives from."""

    retention_by_class: Mapping[int, int]
    key_site_retention_days: int
    continuous_by_class: Mapping[int, bool]

    def __post_init__(self) -> None:
        check_retention(self.retention_by_class, self.key_site_retention_days)
        check_continuous(self.continuous_by_class)

    def plan(self, channel_id: str, point_class: int | None, key_site: bool) -> Plan:
        return Plan(channel_id,
                    records_continuously(point_class, key_site, self.continuous_by_class),
                    retention_days(point_class, key_site, self.retention_by_class,
                                   self.key_site_retention_days))


def expires_before(now: datetime, days: int) -> datetime:
    """Segments that ended before this are beyond a retention of ``days``."""
    return now - timedelta(days=days)
