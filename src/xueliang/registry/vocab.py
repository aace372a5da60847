"""The registry's vocabularies, with the words the survey forms use for them.

Each vocabulary maps accepted spellings (Chinese, English, digits) to one canonical value, so
imports accept what people type and exports write the form's own words back.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vocabulary:
    name: str
    #: canonical value -> the form's word for it (used on export)
    labels: dict[str, str]
    #: extra accepted spellings -> canonical value
    aliases: dict[str, str]

    def parse(self, text: str) -> str:
        """Canonical value for ``text``; ValueError naming the accepted words otherwise."""
        t = text.strip()
        if t in self.labels:
            return t
        for value, label in self.labels.items():
            if t == label:
                return value
        low = t.lower()
        for alias, value in self.aliases.items():
            if low == alias.lower():
                return value
        accepted = "、".join(self.labels.values())
        raise ValueError(f"not a valid {self.name}: {text!r} (expected one of {accepted})")

    def label(self, value: str | None) -> str:
        return "" if value is None else self.labels.get(value, value)


UNIT_CATEGORY = Vocabulary(
    "unit category",
    {
        "government": "党政机关",
        "enterprise": "企事业单位",
        "public_service": "公共服务行业",
        "key_site": "重点场所",
        "shop": "个体商业门面",
        "residential": "居民住宅小区",
    },
    {},
)

POINT_CLASS = Vocabulary(
    "point class",
    {"1": "一类", "2": "二类", "3": "三类"},
    {
        "I": "1",
        "II": "2",
        "III": "3",
        "一类点位": "1",
        "二类点位": "2",
        "三类点位": "3",
        "一": "1",
        "二": "2",
        "三": "3",
    },
)

COVERAGE = Vocabulary(
    "coverage",
    {"A": "A", "B": "B", "C": "C"},
    {
        "a": "A",
        "b": "B",
        "c": "C",
        "A 行政公共区域": "A",
        "行政公共区域": "A",
        "B 单位内部": "B",
        "单位内部": "B",
        "C 单位内部及临街公共场所": "C",
        "单位内部及临街公共场所": "C",
    },
)
COVERAGE_LONG = {"A": "A 行政公共区域", "B": "B 单位内部", "C": "C 单位内部及临街公共场所"}

TIER = Vocabulary(
    "tier",
    {"high": "高空瞭望", "building": "建筑制高点", "street": "地面"},
    {"高点": "high", "制高点": "building", "低点": "street", "地面层": "street"},
)

PTZ_TYPE = Vocabulary(
    "camera type",
    {"1": "球机", "2": "半球", "3": "固定枪机", "4": "遥控枪机"},
    {"dome": "1", "half-dome": "2", "fixed": "3", "bullet": "3", "remote-bullet": "4", "枪机": "3"},
)

YES_NO = Vocabulary(
    "yes/no",
    {"yes": "是", "no": "否"},
    {
        "y": "yes",
        "n": "no",
        "true": "yes",
        "false": "no",
        "1": "yes",
        "0": "no",
        "有": "yes",
        "无": "no",
    },
)
SUPPORT = Vocabulary(
    "support", {"yes": "支持", "no": "不支持"}, {"是": "yes", "否": "no", "y": "yes", "n": "no"}
)
PROVIDE = Vocabulary(
    "SDK", {"yes": "提供", "no": "不提供"}, {"是": "yes", "否": "no", "能": "yes", "不能": "no"}
)
CAMERA_KIND = Vocabulary(
    "camera kind", {"network": "网络", "analog": "模拟"}, {"数字": "network", "ip": "network"}
)
NETWORK = Vocabulary(
    "network",
    {"none": "无", "lan": "内部局域网", "internet": "互联网", "other": "其他"},
    {"局域网": "lan", "专网": "other", "其它": "other"},
)
STORAGE = Vocabulary(
    "storage",
    {"server": "存储服务器", "recorder": "DVR/NVR", "other": "其他方式"},
    {"dvr": "recorder", "nvr": "recorder", "其他": "other", "其它": "other", "云存储": "other"},
)

#: Minimum retention (days) the rules demand: 30, or 90 at counter-terrorism key sites.
RETENTION_DAYS = 30
RETENTION_DAYS_KEY_SITE = 90

#: Generous box around China incl. the South China Sea islands (WGS-84).
CHINA_LON = (73.4, 135.1)
CHINA_LAT = (3.5, 53.6)


def check_coordinates(lon: float | None, lat: float | None) -> None:
    """ValueError when the point is not in China, naming a likely swap."""
    if lon is None and lat is None:
        return
    if lon is None or lat is None:
        raise ValueError("longitude and latitude must be given together")
    in_lon = CHINA_LON[0] <= lon <= CHINA_LON[1]
    in_lat = CHINA_LAT[0] <= lat <= CHINA_LAT[1]
    if in_lon and in_lat:
        return
    if CHINA_LON[0] <= lat <= CHINA_LON[1] and CHINA_LAT[0] <= lon <= CHINA_LAT[1]:
        raise ValueError(f"longitude {lon} and latitude {lat} look swapped")
    raise ValueError(f"point ({lon}, {lat}) is outside China")


def division_level(code: str) -> str:
    """GB/T 2260 level by code length: 2 province, 4 city, 6 county, 9 township, 12 village; longer is a grid."""
    n = len(code)
    if not code.isdigit() or n < 2:
        raise ValueError(f"not a division code: {code!r}")
    return {2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}.get(
        n, "grid" if n > 12 else "invalid"
    )


def parent_division(code: str) -> str | None:
    n = len(code)
    for size in (12, 9, 6, 4, 2):
        if size < n:
            return code[:size]
    return None


def subtree_bounds(code: str) -> tuple[str, str]:
    """[low, high) string range holding a division and everything below it: ':' sorts after '9'."""
    return code, code + ":"


def grid_code(text: str, parent: str) -> str:
    """The grid code of a cell, checked against its parent's code; ValueError saying why not."""
    t = unicodedata.normalize("NFKC", text).strip().lstrip("'")
    if not (t.isascii() and t.isdigit() and 13 <= len(t) <= 20):
        raise ValueError("a grid code has 13 to 20 digits")
    if parent and not t.startswith(parent):
        raise ValueError(f"a grid code begins with its parent division's code {parent}")
    return t
