"""The camera resource survey (摸底调查): Form 1 and Form 2 in and out as spreadsheets.

Form 1, 社会视频监控资源摸底调查表, has one row per system or separately networked area
(segment) of a unit; it fills :class:`~xueliang.db.tables.Unit` and
:class:`~xueliang.db.tables.Platform`. Form 2, 摸底汇总表, is a department's summary; it is
kept as reported in :class:`~xueliang.db.tables.SurveySummary`, and can be computed from the
registry on export.

Imports are all-or-nothing: every row is checked, every problem is reported with its row
number (as in the file), column header, value and reason, and only a file without problems is
written, in one transaction. Exports write the forms' own layout and words, so that
export → import reports everything unchanged.

Choices where the survey spec is silent:

* Department: the ``department`` argument wins over a ``主管部门`` column, which wins over the
  title line ``主管部门：…``; a warning is given where they differ.
* A Form 1 row whose system columns are all empty registers the unit only (no platform).
* Segments are ``"1"``, ``"2"``, … in the order of the unit's system rows in the file.
  Platforms of a unit that the file does not mention are kept (with a warning), never deleted.
* A unit named on several rows: unit columns may be left empty on the later rows; different
  non-empty values are a problem.
* 系统建设时间 is normalised to ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.
* 摄像机型号数量: the text is kept in ``camera_models`` (``None`` when it is only a number),
  the count goes to ``camera_count``. A total (``共12台``) wins over the parts and must agree
  with them when both are given. ``路`` (recorder channels) and ``万`` (pixels) are not counts.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Platform, SurveySummary, Unit
from xueliang.registry import spreadsheet, vocab
from xueliang.registry.report import ImportReport

__all__ = [
    "FORM1_HEADERS",
    "FORM2_HEADERS",
    "Lookup",
    "clean_text",
    "export_summary",
    "export_survey",
    "header_key",
    "import_survey",
    "map_columns",
    "parse_built_on",
    "parse_count",
    "parse_network",
    "parse_platform_type",
    "parse_retention",
]

FORM1_TITLE = "社会视频监控资源摸底调查表"
FORM2_TITLE = "摸底汇总表"
DEPARTMENT = "主管部门"
CHUNK = 500
#: A count above this in one cell is a typing mistake, not a camera survey.
MAX_COUNT = 1_000_000


# ---- shared helpers (also used by channel_list) -----------------------------------------


def header_key(h: str) -> str:
    """A header as compared: width-folded (NFKC), no whitespace, upper case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", h)).upper()


def _fold(t: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", t)).lower()


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(v: str, max_len: int) -> str | None:
    """Stripped text or None when empty; ValueError when too long or holding control bytes."""
    t = v.strip()
    if not t:
        return None
    if _CONTROL.search(t):
        raise ValueError("contains control characters")
    if len(t) > max_len:
        raise ValueError(f"is {len(t)} characters long; at most {max_len} are allowed")
    return t


class Lookup:
    """Fast, width- and space-insensitive parsing for a :class:`vocab.Vocabulary`."""

    def __init__(self, voc: vocab.Vocabulary, extra: dict[str, str] | None = None) -> None:
        self.vocab = voc
        self.table: dict[str, str] = {}
        self.exact: dict[str, str] = {}
        for alias, value in {**voc.aliases, **(extra or {})}.items():
            self.table[_fold(alias)] = value
        for value, label in voc.labels.items():
            self.table[_fold(label)] = value
            self.table[_fold(value)] = value
            self.exact[label] = self.exact[value] = value

    def parse(self, text: str) -> str:
        hit = self.exact.get(text)
        if hit is None:
            hit = self.table.get(_fold(text))
        if hit is not None:
            return hit
        accepted = "、".join(self.vocab.labels.values())
        raise ValueError(f"is not a valid {self.vocab.name} (expected one of {accepted})")

    def parse_opt(self, text: str) -> str | None:
        return None if not text.strip() else self.parse(text)


@dataclass(slots=True)
class ColumnMap:
    #: known header -> column index
    index: dict[str, int]
    missing: list[str]


def map_columns(
    header: Sequence[str], known: Sequence[str], report: ImportReport, optional: Sequence[str] = ()
) -> ColumnMap:
    """Map the file's header cells to ``known`` headers; warn on unknown and repeated ones."""
    keys = {header_key(k): k for k in [*known, *optional]}
    index: dict[str, int] = {}
    for i, h in enumerate(header):
        if not h.strip():
            continue
        name = keys.get(header_key(h))
        if name is None:
            report.warn("this column is not part of the form and is ignored", column=h)
        elif name in index:
            report.warn(
                f"column appears twice; only the first (column {index[name] + 1}) is read", column=h
            )
        else:
            index[name] = i
    return ColumnMap(index, [k for k in known if k not in index])


def _read_sheet(data: bytes, filename: str, report: ImportReport) -> list[list[str]] | None:
    try:
        return spreadsheet.read_raw_rows(data, filename)
    except spreadsheet.SheetError as exc:
        report.add(str(exc))
        return None


# ---- value parsers ------------------------------------------------------------------------

_MEASURE = "台个只套部支颗枚"
_NOT_BEFORE = r"(?<![0-9A-Za-z\-_./])"
_NOT_AFTER = r"(?![0-9A-Za-z.\-_])"
_TOTAL_RE = re.compile(
    rf"(?:共计|总计|合计|总共|一共|共|总数|数量)\s*:?\s*(\d+)\s*[{_MEASURE}]?{_NOT_AFTER}"
)
_PART_RE = re.compile(
    rf"(?:[×*]|{_NOT_BEFORE}[xX])\s*(?P<a>\d+)(?:\s*[{_MEASURE}])?{_NOT_AFTER}"
    rf"|{_NOT_BEFORE}(?P<b>\d+)\s*[{_MEASURE}]"
)
_SEP_RE = re.compile(r"[;,、\n\r]+")
_BARE_INT = re.compile(r"^\d+(?:\.0+)?$")
_NOTHING = {"无", "没有", "-", "--", "—", "/", "0"}


def _count(n: str) -> int:
    v = int(n)
    if v > MAX_COUNT:
        raise ValueError(f"count {v} is implausibly large")
    return v


def parse_count(text: str) -> tuple[str | None, int]:
    """``摄像机型号数量`` / ``DVR/NVR型号数量``: (models text to keep, count).

    ``"DS-2CD3T46 12台"`` → 12, ``"×12"`` → 12, ``"12"`` → 12,
    ``"DS-2CD3T46 12台；DS-2DE4 3台"`` → 15, ``"球机8台，枪机4台，共12台"`` → 12.
    Digits inside model numbers (``DS-2CD3T46``), channels (``16路``) and pixels (``400万``) are
    not counts. ValueError when no count can be read.
    """
    raw = text.strip()
    if not raw:
        return None, 0
    t = unicodedata.normalize("NFKC", raw).replace("＊", "*")
    if _BARE_INT.match(t):
        return None, _count(t.split(".")[0])
    if t in _NOTHING:
        return raw, 0
    totals: list[int] = []
    part_sum = 0
    counted_parts = 0
    uncounted: list[str] = []
    for part in _SEP_RE.split(t):
        p = part.strip()
        if not p:
            continue
        tm = _TOTAL_RE.search(p)
        if tm:
            totals.append(_count(tm.group(1)))
            p = (p[: tm.start()] + " " + p[tm.end() :]).strip()
            if not p:
                continue
        found = [m.group("a") or m.group("b") for m in _PART_RE.finditer(p)]
        if found:
            part_sum += sum(_count(n) for n in found)
            counted_parts += 1
            continue
        if _BARE_INT.match(p):
            part_sum += _count(p.split(".")[0])
            counted_parts += 1
            continue
        tokens = p.split()
        if len(tokens) >= 2 and tokens[-1].isdigit():
            part_sum += _count(tokens[-1])
            counted_parts += 1
            continue
        uncounted.append(p)
    if len(totals) > 1:
        raise ValueError(f"gives {len(totals)} totals; give one")
    if totals:
        if counted_parts and part_sum != totals[0]:
            raise ValueError(f"the parts add up to {part_sum} but the total says {totals[0]}")
        return raw, totals[0]
    if uncounted:
        raise ValueError(
            f"no count for {uncounted[0]!r}: write the number with 台 (e.g. “DS-2CD3T46 12台”) or ×12"
        )
    return raw, part_sum


def count_text(models: str | None, count: int) -> str:
    """The form's text for (models, count), such that :func:`parse_count` gives them back."""
    if models is None:
        return str(count) if count else ""
    try:
        if parse_count(models)[1] == count:
            return models
    except ValueError:
        pass
    return f"{models} ×{count}"


def _excel_date(serial: int) -> dt.date:
    return dt.date(1899, 12, 30) + dt.timedelta(days=serial)


_YEAR_RE = re.compile(r"^(\d{4})\s*年?$")
_MONTH_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?$")
_DAY_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)


def parse_built_on(text: str) -> str | None:
    """系统建设时间 → ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (also 2018年5月1日, 2018/5/1, Excel serials)."""
    t = unicodedata.normalize("NFKC", text).strip()
    if not t:
        return None
    if m := _YEAR_RE.match(t):
        y = int(m.group(1))
        out = f"{y:04d}"
    elif m := _MONTH_RE.match(t):
        y, mo = int(m.group(1)), int(m.group(2))
        if not 1 <= mo <= 12:
            raise ValueError("has no such month")
        out = f"{y:04d}-{mo:02d}"
    elif m := _DAY_RE.match(t):
        y = int(m.group(1))
        try:
            out = dt.date(y, int(m.group(2)), int(m.group(3))).isoformat()
        except ValueError as exc:
            raise ValueError(f"is not a real date ({exc})") from None
    elif t.isdigit() and 20000 <= int(t) <= 80000:
        d = _excel_date(int(t))
        y, out = d.year, d.isoformat()
    else:
        raise ValueError("is not a date or a year (e.g. 2018 or 2018-05-01)")
    if not 1950 <= y <= 2100:
        raise ValueError(f"year {y} is not plausible")
    return out


_KIND_WORDS = [
    ("无平台", "kind", "none"),
    ("有平台", "kind", "platform"),
    ("数字", "signal", "digital"),
    ("模拟", "signal", "analog"),
    ("无", "kind", "none"),
    ("有", "kind", "platform"),
    ("平台", "kind", "platform"),
    ("ip", "signal", "digital"),
    ("网络", "signal", "digital"),
]
KIND_LABELS = {"platform": "有平台", "none": "无平台"}
SIGNAL_LABELS = {"digital": "数字", "analog": "模拟"}


def parse_platform_type(text: str) -> tuple[str | None, str | None]:
    """平台类型 → (kind platform/none, signal digital/analog): 有平台/数字, 无平台, 模拟, 有平台 模拟…"""
    t = _fold(text)
    if not t:
        return None, None
    got: dict[str, str] = {}
    rest = t
    for word, slot, value in _KIND_WORDS:
        while word in rest:
            if got.get(slot, value) != value:
                raise ValueError(
                    "says both " + ("有平台 and 无平台" if slot == "kind" else "数字 and 模拟")
                )
            got[slot] = value
            rest = rest.replace(word, " ", 1)
    if re.sub(r"[\s/、,;+|()-]", "", rest):
        raise ValueError(
            "is not a platform type (expected 有平台 or 无平台, and 数字 or 模拟, e.g. 有平台/数字)"
        )
    return got.get("kind"), got.get("signal")


def platform_type_text(kind: str | None, signal: str | None) -> str:
    parts = [KIND_LABELS.get(kind or "", kind or ""), SIGNAL_LABELS.get(signal or "", signal or "")]
    return "/".join(p for p in parts if p)


_BW_RE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(gbps|gb|g|mbps|mb|m|兆|千兆|kbps|k)?(?![a-z])", re.IGNORECASE
)
_CELLULAR_RE = re.compile(r"(?<![0-9A-Za-z.])[2-5]G(?![0-9A-Za-z])")
_BW_WORDS = {"万兆": 10000.0, "千兆": 1000.0, "百兆": 100.0}
NETWORK_LOOKUP_EXTRA = {
    "公网": "internet",
    "因特网": "internet",
    "内网": "lan",
    "局域网": "lan",
    "视频专网": "other",
    "专线": "other",
    "vpn": "other",
}


def parse_network(text: str, lookup: Lookup) -> tuple[str | None, float | None]:
    """网络结构/出口带宽（M）: ``互联网/100``, ``内部局域网 50M``, ``无``, ``100``, ``互联网 千兆``."""
    t = unicodedata.normalize("NFKC", text).strip()
    if not t:
        return None, None
    mbps: float | None = None
    cellular = _CELLULAR_RE.search(t)
    if cellular:  # 4G/5G is a mobile network, not a bandwidth
        t = t[: cellular.start()] + " " + t[cellular.end() :]
    for word, value in _BW_WORDS.items():
        if word in t:
            mbps = value
            t = t.replace(word, " ", 1)
            break
    if mbps is None:
        found = list(_BW_RE.finditer(t))
        if len(found) > 1:
            raise ValueError("gives more than one bandwidth")
        if found:
            m = found[0]
            mbps = float(m.group(1))
            unit = (m.group(2) or "m").lower()
            if unit.startswith("g") or unit == "千兆":
                mbps *= 1000
            elif unit.startswith("k"):
                mbps /= 1000
            t = t[: m.start()] + " " + t[m.end() :]
    if mbps is not None and not (math.isfinite(mbps) and 0 <= mbps <= 1_000_000):
        raise ValueError("bandwidth is not plausible")
    word = re.sub(r"^[\s/、,;:|()]+|[\s/、,;:|()]+$", "", t)
    if word.lower() in ("出口带宽", "带宽"):
        word = ""
    network = lookup.parse(word) if word else ("other" if cellular else None)
    if network == "none" and mbps:
        raise ValueError("says 无 (no network) but gives a bandwidth")
    return network, mbps


def network_text(network: str | None, mbps: float | None, lookup: Lookup) -> str:
    word = lookup.vocab.label(network) if network else ""
    if mbps is None:
        return word
    num = str(int(mbps)) if float(mbps).is_integer() else repr(float(mbps))
    return f"{word}/{num}" if word else num


_RET_RE = re.compile(
    r"^(\d+(?:\.\d+)?)\s*(天|日|d|day|days|个月|月|周|星期|w|年|y)?\s*(以上|及以上|左右)?$",
    re.IGNORECASE,
)
_RET_FACTOR = {
    "": 1,
    "天": 1,
    "日": 1,
    "d": 1,
    "day": 1,
    "days": 1,
    "个月": 30,
    "月": 30,
    "周": 7,
    "星期": 7,
    "w": 7,
    "年": 365,
    "y": 365,
}


def parse_retention(text: str) -> int | None:
    """存储时长 → days: ``30天``, ``30``, ``3个月`` (90), ``2周``, ``1年``."""
    t = unicodedata.normalize("NFKC", text).strip()
    if not t:
        return None
    m = _RET_RE.match(t)
    if not m:
        raise ValueError("is not a duration (e.g. 30天, 30, 3个月)")
    days = round(float(m.group(1)) * _RET_FACTOR[(m.group(2) or "").lower()])
    if days > 3650:
        raise ValueError(f"{days} days is not plausible")
    return days


# ---- Form 1 -------------------------------------------------------------------------------

UNIT_CATEGORY = Lookup(
    vocab.UNIT_CATEGORY,
    {
        "党政": "government",
        "机关": "government",
        "事业单位": "enterprise",
        "企业": "enterprise",
        "企事业": "enterprise",
        "公共服务": "public_service",
        "商场": "public_service",
        "医院": "public_service",
        "学校": "public_service",
        "收费站": "public_service",
        "车站": "public_service",
        "港口": "public_service",
        "机场": "public_service",
        "公交": "public_service",
        "物流": "public_service",
        "加油站": "key_site",
        "宾馆": "key_site",
        "酒店": "key_site",
        "ktv": "key_site",
        "洗浴": "key_site",
        "体育场": "key_site",
        "影剧院": "key_site",
        "网吧": "key_site",
        "广场": "key_site",
        "公园": "key_site",
        "个体": "shop",
        "商业门面": "shop",
        "门面": "shop",
        "小区": "residential",
        "住宅小区": "residential",
    },
)
SUPPORT = Lookup(
    vocab.SUPPORT, {"均支持": "yes", "yes": "yes", "no": "no", "否": "no", "是": "yes"}
)
PROVIDE = Lookup(
    vocab.PROVIDE, {"可以": "yes", "可提供": "yes", "无法提供": "no", "yes": "yes", "no": "no"}
)
CAMERA_KIND = Lookup(
    vocab.CAMERA_KIND, {"网络摄像机": "network", "数字": "network", "模拟摄像机": "analog"}
)
NETWORK = Lookup(vocab.NETWORK, NETWORK_LOOKUP_EXTRA)
STORAGE = Lookup(
    vocab.STORAGE,
    {
        "服务器": "server",
        "硬盘录像机": "recorder",
        "录像机": "recorder",
        "dvr/nvr": "recorder",
        "nvr/dvr": "recorder",
    },
)
COVERAGE = Lookup(vocab.COVERAGE)

UNIT_FIELDS = ("name", "head_contact", "category", "address")
FORM1_HEADERS = [
    "单位名称",
    "单位负责人及联系方式",
    "单位类别",
    "单位地址",
    "系统建设时间",
    "平台类型",
    "承建单位名称",
    "联系人名称及联系方式",
    "平台品牌/厂家",
    "平台是否支持GB28181/ONVIF",
    "平台型号",
    "能否提供SDK开发包",
    "摄像机品牌/厂家",
    "摄像机型号数量",
    "摄像机类型",
    "摄像机是否支持GB28181/ONVIF",
    "DVR/NVR品牌/厂家",
    "DVR/NVR型号数量",
    "DVR/NVR是否支持GB28181/ONVIF",
    "网络结构/出口带宽（M）",
    "存储方式",
    "存储时长",
    "系统目前的故障点",
    "覆盖范围",
]
_UNIT_HEADERS = FORM1_HEADERS[:4]
_UNIT_FIELD_HEADER = {
    "head_contact": "单位负责人及联系方式",
    "category": "单位类别",
    "address": "单位地址",
}


def _txt(n: int, name: str) -> Callable[[str], dict[str, Any]]:
    return lambda v: {name: clean_text(v, n)}


def _bool(lookup: Lookup, name: str) -> Callable[[str], dict[str, Any]]:
    def parse(v: str) -> dict[str, Any]:
        r = lookup.parse_opt(v)
        return {name: None if r is None else r == "yes"}

    return parse


def _enum(lookup: Lookup, name: str) -> Callable[[str], dict[str, Any]]:
    return lambda v: {name: lookup.parse_opt(v)}


def _counted(models: str, count: str) -> Callable[[str], dict[str, Any]]:
    def parse(v: str) -> dict[str, Any]:
        text, n = parse_count(v)
        if text is not None:
            text = clean_text(text, 400)
        return {models: text, count: n}

    return parse


def _kind(v: str) -> dict[str, Any]:
    k, s = parse_platform_type(v)
    return {"kind": k, "signal": s}


def _network(v: str) -> dict[str, Any]:
    n, mbps = parse_network(v, NETWORK)
    return {"network": n, "uplink_mbps": mbps}


FORM1_PARSERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "单位名称": _txt(200, "name"),
    "单位负责人及联系方式": _txt(200, "head_contact"),
    "单位类别": _enum(UNIT_CATEGORY, "category"),
    "单位地址": _txt(400, "address"),
    "系统建设时间": lambda v: {"built_on": parse_built_on(v)},
    "平台类型": _kind,
    "承建单位名称": _txt(200, "installer"),
    "联系人名称及联系方式": _txt(200, "installer_contact"),
    "平台品牌/厂家": _txt(200, "platform_maker"),
    "平台是否支持GB28181/ONVIF": _bool(SUPPORT, "platform_standard"),
    "平台型号": _txt(200, "platform_model"),
    "能否提供SDK开发包": _bool(PROVIDE, "sdk_available"),
    "摄像机品牌/厂家": _txt(200, "camera_maker"),
    "摄像机型号数量": _counted("camera_models", "camera_count"),
    "摄像机类型": _enum(CAMERA_KIND, "camera_type"),
    "摄像机是否支持GB28181/ONVIF": _bool(SUPPORT, "camera_standard"),
    "DVR/NVR品牌/厂家": _txt(200, "recorder_maker"),
    "DVR/NVR型号数量": _counted("recorder_models", "recorder_count"),
    "DVR/NVR是否支持GB28181/ONVIF": _bool(SUPPORT, "recorder_standard"),
    "网络结构/出口带宽（M）": _network,
    "存储方式": _enum(STORAGE, "storage_mode"),
    "存储时长": lambda v: {"retention_days": parse_retention(v)},
    "系统目前的故障点": _txt(4000, "faults"),
    "覆盖范围": _enum(COVERAGE, "coverage"),
}


def _bool_text(lookup: Lookup, v: bool | None) -> str:
    return "" if v is None else lookup.vocab.label("yes" if v else "no")


def form1_row(u: Unit, p: Platform | None) -> list[object]:
    """One Form 1 row in the form's own words."""
    head: list[object] = [
        u.name,
        u.head_contact or "",
        UNIT_CATEGORY.vocab.label(u.category),
        u.address or "",
    ]
    if p is None:
        return head + [""] * (len(FORM1_HEADERS) - 4)
    return head + [
        p.built_on or "",
        platform_type_text(p.kind, p.signal),
        p.installer or "",
        p.installer_contact or "",
        p.platform_maker or "",
        _bool_text(SUPPORT, p.platform_standard),
        p.platform_model or "",
        _bool_text(PROVIDE, p.sdk_available),
        p.camera_maker or "",
        count_text(p.camera_models, p.camera_count),
        CAMERA_KIND.vocab.label(p.camera_type),
        _bool_text(SUPPORT, p.camera_standard),
        p.recorder_maker or "",
        count_text(p.recorder_models, p.recorder_count),
        _bool_text(SUPPORT, p.recorder_standard),
        network_text(p.network, p.uplink_mbps, NETWORK),
        STORAGE.vocab.label(p.storage_mode),
        "" if p.retention_days is None else f"{p.retention_days}天",
        p.faults or "",
        vocab.COVERAGE_LONG.get(p.coverage or "", p.coverage or ""),
    ]


@dataclass(slots=True)
class _UnitIn:
    name: str
    first_row: int
    fields: dict[str, Any] = field(default_factory=dict)
    #: row of the value each field came from
    origin: dict[str, int] = field(default_factory=dict)
    department: str | None = None
    department_row: int = 0
    #: (row number, system fields or None for a unit-only row) in file order
    entries: list[tuple[int, dict[str, Any] | None]] = field(default_factory=list)


def _department_of(sheet: spreadsheet.Sheet) -> str | None:
    v = sheet.title_value(DEPARTMENT)
    if v:
        return v
    for line in sheet.title_lines:
        m = re.match(rf"^\s*{DEPARTMENT}\s*[:：]?\s*(\S.*)$", line)
        if m:
            return m.group(1).strip()
    return None


def _choose_department(argument: str | None, title: str | None, report: ImportReport) -> str | None:
    arg = (argument or "").strip() or None
    if arg and title and arg != title:
        report.warn(
            f"the file's title says {DEPARTMENT} {title!r}; {arg!r} as given to the import is used",
            column=DEPARTMENT,
            value=title,
        )
    return arg or title


async def import_survey(
    sessions: async_sessionmaker[AsyncSession],
    data: bytes,
    filename: str = "",
    department: str | None = None,
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Import Form 1 (摸底调查表) or Form 2 (摸底汇总表), told apart by their headers.

    Form 1 has 单位名称 and 平台类型; Form 2 has 所属单位名称 and 摄像头数量. The department comes
    from ``department`` (which wins, with a warning when the file says otherwise), else a
    ``主管部门`` column, else the title line ``主管部门：…``. Nothing is written when there is any
    problem, or with ``dry_run``; the report says what would have been created/updated.
    """
    report = ImportReport(file=filename)
    raw = _read_sheet(data, filename, report)
    if raw is None:
        return report
    form = _detect_form(raw)
    if form == 1:
        report.form = "survey"
        return await _import_form1(sessions, raw, department, dry_run, report)
    if form == 2:
        report.form = "summary"
        return await _import_form2(sessions, raw, department, dry_run, report)
    report.add(
        "this is neither a survey form (headers 单位名称 and 平台类型) nor a summary "
        "(headers 所属单位名称 and 摄像头数量) in the first 50 rows"
    )
    return report


def _detect_form(raw: list[list[str]]) -> int:
    for row in raw[:50]:
        keys = {header_key(c) for c in row if c}
        if header_key("单位名称") in keys and header_key("平台类型") in keys:
            return 1
        if header_key("所属单位名称") in keys and header_key("摄像头数量") in keys:
            return 2
    return 0


def _find(
    raw: list[list[str]], required: str, known: Sequence[str], report: ImportReport
) -> spreadsheet.Sheet | None:
    try:
        return spreadsheet.find_sheet(raw, required, known)
    except spreadsheet.SheetError as exc:
        report.add(str(exc))
        return None


def _cell(cells: list[str], i: int) -> str:
    return cells[i] if i < len(cells) else ""


async def _import_form1(
    sessions: async_sessionmaker[AsyncSession],
    raw: list[list[str]],
    department: str | None,
    dry_run: bool,
    report: ImportReport,
) -> ImportReport:
    sheet = _find(raw, "单位名称", FORM1_HEADERS, report)
    if sheet is None:
        return report
    cols = map_columns(sheet.header, FORM1_HEADERS, report, optional=[DEPARTMENT])
    if cols.missing:
        report.warn(
            "the form has no column "
            + "、".join(cols.missing)
            + "; those fields are left as they are"
        )
    dept_col = cols.index.pop(DEPARTMENT, None)
    file_dept = _department_of(sheet)
    arg = (department or "").strip() or None
    dept_default = _choose_department(arg, file_dept, report)
    if dept_default is not None and len(dept_default) > 200:
        report.add(
            f"{DEPARTMENT} is longer than 200 characters",
            column=DEPARTMENT,
            value=dept_default[:50],
        )
    report.rows = len(sheet.rows)
    if not sheet.rows:
        report.add("the form has a header row but no data rows")
        return report
    if dept_default is None and dept_col is None:
        report.add(
            f"no {DEPARTMENT}: the file has no title line “{DEPARTMENT}：…” and none was given to the import",
            column=DEPARTMENT,
        )
    unit_cols = [(h, i) for h, i in cols.index.items() if h in _UNIT_HEADERS]
    system_cols = [(h, i) for h, i in cols.index.items() if h not in _UNIT_HEADERS]
    units: dict[str, _UnitIn] = {}
    dept_warned = False
    for rowno, cells in sheet.rows:
        unit_vals: dict[str, Any] = {}
        bad = False
        for h, i in unit_cols:
            v = _cell(cells, i)
            try:
                unit_vals.update(FORM1_PARSERS[h](v))
            except ValueError as exc:
                report.add(f"{h} {exc}", rowno, h, v)
                bad = True
        sys_vals: dict[str, Any] = {}
        any_system = False
        for h, i in system_cols:
            v = _cell(cells, i)
            if v.strip():
                any_system = True
            try:
                sys_vals.update(FORM1_PARSERS[h](v))
            except ValueError as exc:
                report.add(f"{h} {exc}", rowno, h, v)
        row_dept = dept_default
        if dept_col is not None:
            cell = _cell(cells, dept_col).strip()
            if cell:
                if len(cell) > 200:
                    report.add(
                        f"{DEPARTMENT} is longer than 200 characters", rowno, DEPARTMENT, cell[:50]
                    )
                if arg and cell != arg and not dept_warned:
                    report.warn(
                        f"the file's {DEPARTMENT} column says {cell!r}; {arg!r} as given is used",
                        rowno,
                        DEPARTMENT,
                        cell,
                    )
                    dept_warned = True
                row_dept = arg or cell
        name = unit_vals.get("name")
        if name is None:
            if not bad:
                report.add(
                    "单位名称 is required", rowno, "单位名称", _cell(cells, cols.index["单位名称"])
                )
            continue
        if row_dept is None and dept_col is not None:
            report.add(
                f"no {DEPARTMENT} on this row, in the title line “{DEPARTMENT}：…”, or given to the import",
                rowno,
                DEPARTMENT,
            )
        u = units.get(name)
        if u is None:
            u = units[name] = _UnitIn(name, rowno)
        for k, v in unit_vals.items():
            if k == "name":
                continue
            if k not in u.fields or (u.fields[k] is None and v is not None):
                u.fields[k] = v
                u.origin[k] = rowno
            elif v is not None and u.fields[k] != v:
                h = _UNIT_FIELD_HEADER[k]
                report.add(
                    f"{h} of unit {name!r} differs from row {u.origin[k]}",
                    rowno,
                    h,
                    _cell(cells, cols.index[h]),
                )
        if row_dept is not None:
            if u.department is None:
                u.department, u.department_row = row_dept, rowno
            elif u.department != row_dept:
                report.add(
                    f"unit {name!r} is under {u.department!r} on row {u.department_row}",
                    rowno,
                    DEPARTMENT,
                    row_dept,
                )
        u.entries.append((rowno, sys_vals if any_system else None))
    if not report.ok:
        return report
    try:
        await _write_form1(sessions, list(units.values()), dry_run, report)
    except (IntegrityError, DataError) as exc:
        report.add(
            f"the database refused the import ({type(exc.orig).__name__}); nothing was written"
        )
    return report


async def _in_chunks(
    s: AsyncSession, stmt_of: Callable[[list[Any]], Any], keys: Sequence[Any]
) -> list[Any]:
    out: list[Any] = []
    keys = list(keys)
    for i in range(0, len(keys), CHUNK):
        out.extend((await s.execute(stmt_of(keys[i : i + CHUNK]))).all())
    return out


def _segment_key(seg: str) -> tuple[int, int, str]:
    return (0, int(seg), "") if seg.isdigit() else (1, 0, seg)


class _DryRun(Exception):
    """Raised inside a transaction to roll a dry run back."""


async def _write_form1(
    sessions: async_sessionmaker[AsyncSession],
    units: list[_UnitIn],
    dry_run: bool,
    report: ImportReport,
) -> None:
    try:
        async with sessions() as s, s.begin():
            await _apply_form1(s, units, report)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass


async def _apply_form1(s: AsyncSession, units: list[_UnitIn], report: ImportReport) -> None:
    existing: dict[str, Unit] = {
        r[0].name: r[0]
        for r in await _in_chunks(
            s, lambda ks: select(Unit).where(Unit.name.in_(ks)), [u.name for u in units]
        )
    }
    plats: dict[int, dict[str, Platform]] = {}
    for (p,) in await _in_chunks(
        s,
        lambda ks: select(Platform).where(Platform.unit_id.in_(ks)),
        [u.id for u in existing.values()],
    ):
        plats.setdefault(p.unit_id, {})[p.segment] = p
    moved: list[tuple[int, str | None]] = []
    pending: list[tuple[Unit, str, dict[str, Any]]] = []
    for u in units:
        row = existing.get(u.name)
        created = row is None
        unit_changed = False
        if row is None:
            row = Unit(name=u.name, department=u.department, **u.fields)
            report.new_units.append(u.name)
            s.add(row)
        else:
            for k, v in [*u.fields.items(), ("department", u.department)]:
                if getattr(row, k) != v:
                    if k == "department":
                        report.warn(
                            f"unit {u.name!r} moves from {DEPARTMENT} {row.department!r} to {v!r}",
                            u.department_row,
                            DEPARTMENT,
                            v,
                        )
                        moved.append((row.id, v))
                    setattr(row, k, v)
                    unit_changed = True
        known = {} if created else plats.get(row.id, {})
        n = 0
        for i, (_rowno, values) in enumerate(u.entries):
            first = i == 0
            if values is None:
                _count_row(report, created, unit_changed and first)
                continue
            n += 1
            p = known.get(str(n))
            if p is None:
                pending.append((row, str(n), values))
                report.created += 1
                continue
            changed = unit_changed and first
            for k, v in values.items():
                if getattr(p, k) != v:
                    setattr(p, k, v)
                    changed = True
            _count_row(report, False, changed)
        extra = sorted(set(known) - {str(i) for i in range(1, n + 1)}, key=_segment_key)
        if extra:
            report.warn(
                f"unit {u.name!r} has {len(extra)} more system(s) in the registry than rows in "
                f"this file (segments {', '.join(extra)}); they are kept",
                u.first_row,
            )
    await s.flush()
    s.add_all(Platform(unit_id=unit.id, segment=seg, **values) for unit, seg, values in pending)
    for unit_id, dept in moved:
        await s.execute(update(Channel).where(Channel.unit_id == unit_id).values(department=dept))


def _count_row(report: ImportReport, created: bool, changed: bool) -> None:
    if created:
        report.created += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


# ---- Form 2 -------------------------------------------------------------------------------

FORM2_HEADERS = ["所属单位名称", "摄像头数量", "平台数量", "DVR/NVR数量", "涉及公共区域摄像头数量"]
_FORM2_FIELDS = {
    "摄像头数量": "cameras",
    "平台数量": "platforms",
    "DVR/NVR数量": "recorders",
    "涉及公共区域摄像头数量": "public_cameras",
}
_TOTAL_WORDS = {"合计", "总计", "小计", "合计:", "总计:"}
_INT_RE = re.compile(rf"^(\d+)(?:\.0+)?\s*[{_MEASURE}]?$")


def _int_cell(v: str) -> int:
    t = unicodedata.normalize("NFKC", v).strip()
    if not t:
        return 0
    m = _INT_RE.match(t)
    if not m:
        raise ValueError("is not a whole number")
    return _count(m.group(1))


async def _import_form2(
    sessions: async_sessionmaker[AsyncSession],
    raw: list[list[str]],
    department: str | None,
    dry_run: bool,
    report: ImportReport,
) -> ImportReport:
    sheet = _find(raw, "所属单位名称", FORM2_HEADERS, report)
    if sheet is None:
        return report
    cols = map_columns(sheet.header, FORM2_HEADERS, report, optional=[DEPARTMENT])
    if cols.missing:
        report.add("the summary has no column " + "、".join(cols.missing))
        return report
    dept_col = cols.index.pop(DEPARTMENT, None)
    arg = (department or "").strip() or None
    dept_default = _choose_department(arg, _department_of(sheet), report)
    filled_by = sheet.title_value("填表人", "填报人")
    phone = sheet.title_value("联系电话")
    for label, val, n in (("填表人", filled_by, 100), ("联系电话", phone, 64)):
        if val is not None and len(val) > n:
            report.add(f"{label} is longer than {n} characters", column=label, value=val[:50])
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    first_row: dict[tuple[str, str], int] = {}
    totals: dict[str | None, tuple[int, dict[str, int]]] = {}
    sums: dict[str, dict[str, int]] = {}
    ucol = cols.index["所属单位名称"]
    for rowno, cells in sheet.rows:
        numbers: dict[str, int] = {}
        for h, f in _FORM2_FIELDS.items():
            v = _cell(cells, cols.index[h])
            try:
                numbers[f] = _int_cell(v)
            except ValueError as exc:
                report.add(f"{h} {exc}", rowno, h, v)
        dept = dept_default
        if dept_col is not None and _cell(cells, dept_col).strip():
            dept = arg or _cell(cells, dept_col).strip()
        if any(header_key(c) in _TOTAL_WORDS for c in cells[: ucol + 1]):
            if dept in totals:
                report.warn(
                    "a second 合计 row"
                    + (f" for {dept}" if dept else "")
                    + "; the last one is checked",
                    rowno,
                )
            totals[dept] = (rowno, numbers)
            continue
        v = _cell(cells, ucol)
        try:
            name = clean_text(v, 200)
        except ValueError as exc:
            report.add(f"所属单位名称 {exc}", rowno, "所属单位名称", v)
            continue
        if name is None:
            report.add("所属单位名称 is required", rowno, "所属单位名称", v)
            continue
        if dept is None:
            report.add(
                f"no {DEPARTMENT}: the file has no title line “{DEPARTMENT}：…” and none was given",
                rowno,
                DEPARTMENT,
            )
            continue
        if len(dept) > 200:
            report.add(f"{DEPARTMENT} is longer than 200 characters", rowno, DEPARTMENT, dept[:50])
            continue
        key = (dept, name)
        if key in rows:
            report.add(
                f"unit {name!r} is listed twice (rows {first_row[key]} and {rowno})",
                rowno,
                "所属单位名称",
                name,
            )
            continue
        rows[key] = {**numbers, "filled_by": filled_by, "phone": phone}
        first_row[key] = rowno
        agg = sums.setdefault(dept, dict.fromkeys(_FORM2_FIELDS.values(), 0))
        for f, n in numbers.items():
            agg[f] += n
    report.rows = len(rows)
    if not rows and report.ok:
        report.add("the summary has no unit rows")
    if report.ok:
        for dept, (rowno, got) in totals.items():
            if dept is not None and dept in sums:
                want = sums[dept]
            else:
                want = {f: sum(a[f] for a in sums.values()) for f in _FORM2_FIELDS.values()}
            for h, f in _FORM2_FIELDS.items():
                if got[f] != want[f]:
                    report.warn(
                        f"合计 says {got[f]} but the rows add up to {want[f]}",
                        rowno,
                        h,
                        str(got[f]),
                    )
    if not report.ok:
        return report
    try:
        await _write_form2(sessions, rows, dry_run, report)
    except (IntegrityError, DataError) as exc:
        report.add(
            f"the database refused the import ({type(exc.orig).__name__}); nothing was written"
        )
    return report


async def _write_form2(
    sessions: async_sessionmaker[AsyncSession],
    rows: dict[tuple[str, str], dict[str, Any]],
    dry_run: bool,
    report: ImportReport,
) -> None:
    departments = sorted({d for d, _ in rows})
    try:
        async with sessions() as s, s.begin():
            existing: dict[tuple[str, str], SurveySummary] = {
                (r[0].department, r[0].unit_name): r[0]
                for r in await _in_chunks(
                    s,
                    lambda ks: select(SurveySummary).where(SurveySummary.department.in_(ks)),
                    departments,
                )
            }
            for key, values in rows.items():
                row = existing.get(key)
                if row is None:
                    report.created += 1
                    s.add(SurveySummary(department=key[0], unit_name=key[1], **values))
                    continue
                changed = False
                for k, v in values.items():
                    if getattr(row, k) != v:
                        setattr(row, k, v)
                        changed = True
                _count_row(report, False, changed)
            stale = sorted(k[1] for k in set(existing) - set(rows))
            if stale:
                report.warn(
                    f"{len(stale)} unit(s) of the stored summary are not in this file and are kept: "
                    + "、".join(stale[:10])
                    + ("…" if len(stale) > 10 else "")
                )
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass


# ---- export -------------------------------------------------------------------------------


async def _units_and_platforms(
    s: AsyncSession, department: str | None
) -> tuple[list[Unit], dict[int, list[Platform]]]:
    stmt = select(Unit).order_by(Unit.id)
    if department is not None:
        stmt = stmt.where(Unit.department == department)
    units = list((await s.scalars(stmt)).all())
    plats: dict[int, list[Platform]] = {}
    for (p,) in await _in_chunks(
        s, lambda ks: select(Platform).where(Platform.unit_id.in_(ks)), [u.id for u in units]
    ):
        plats.setdefault(p.unit_id, []).append(p)
    for ps in plats.values():
        ps.sort(key=lambda p: (_segment_key(p.segment), p.id))
    return units, plats


async def export_survey(
    sessions: async_sessionmaker[AsyncSession], path: Path, department: str | None = None
) -> int:
    """Write Form 1 (xlsx, or csv by the extension); returns the number of data rows.

    With a department: that department's units under the title line ``主管部门：X``. Without
    one: every unit; when they all share one department it is the title line, otherwise each row
    carries it in an extra last column ``主管部门`` (which the import reads back). A unit without
    systems is written as one row with the system columns empty.
    """
    async with sessions() as s:
        units, plats = await _units_and_platforms(s, department)
    rows: list[list[object]] = []
    depts = {u.department for u in units}
    per_row = department is None and len(depts) > 1
    for u in units:
        systems: list[Platform | None] = [*plats.get(u.id, [])] or [None]
        for p in systems:
            r = form1_row(u, p)
            if per_row:
                r.append(u.department or "")
            rows.append(r)
    title = (
        department if department is not None else (next(iter(depts)) if len(depts) == 1 else None)
    )
    titles = [FORM1_TITLE] + ([f"{DEPARTMENT}：{title}"] if title else [])
    header = FORM1_HEADERS + ([DEPARTMENT] if per_row else [])
    spreadsheet.write_table(Path(path), titles, header, rows, sheet_title=FORM1_TITLE)
    return len(rows)


@dataclass(slots=True)
class _Summary:
    department: str
    rows: list[list[object]]
    total: list[object]
    filled_by: str
    phone: str

    def footer(self) -> list[str]:
        return [f"填表人：{self.filled_by}", f"联系电话：{self.phone}"]


async def _summaries(s: AsyncSession, department: str | None) -> list[_Summary]:
    units, plats = await _units_and_platforms(s, department)
    stmt = select(SurveySummary.department, SurveySummary.filled_by, SurveySummary.phone)
    footers: dict[str, tuple[str, str]] = {}
    for d, f, ph in (await s.execute(stmt)).all():
        if f or ph:
            footers.setdefault(d, (f or "", ph or ""))
    by_dept: dict[str, list[tuple[str, int, int, int, int]]] = {}
    for u in units:
        if u.department is None:
            continue
        ps = plats.get(u.id, [])
        cameras = sum(p.camera_count for p in ps)
        platforms = sum(1 for p in ps if p.kind == "platform")
        recorders = sum(p.recorder_count for p in ps)
        public = sum(
            p.public_camera_count
            if p.public_camera_count is not None
            else (p.camera_count if p.coverage in ("A", "C") else 0)
            for p in ps
        )
        by_dept.setdefault(u.department, []).append((u.name, cameras, platforms, recorders, public))
    if department is not None:
        by_dept.setdefault(department, [])
    out = []
    for d in sorted(by_dept):
        rows = by_dept[d]
        total: list[object] = [
            "合计",
            sum(r[1] for r in rows),
            sum(r[2] for r in rows),
            sum(r[3] for r in rows),
            sum(r[4] for r in rows),
        ]
        f, ph = footers.get(d, ("", ""))
        out.append(_Summary(d, [list(r) for r in rows], total, f, ph))
    return out


async def export_summary(
    sessions: async_sessionmaker[AsyncSession], path: Path, department: str | None = None
) -> int:
    """Write Form 2 computed from the registry; returns the number of unit rows.

    Per unit: cameras = Σ camera_count, platforms = systems of kind platform (有平台),
    recorders = Σ recorder_count, public-area cameras = Σ public_camera_count where set, else
    camera_count of systems covering A or C. A 合计 row and the footer lines 填表人/联系电话
    (taken from the department's last imported summary, else blank) follow.

    Without a department: an xlsx has one sheet per department (named after it); a csv has
    every department's rows with a first column 主管部门 and one 合计 row per department.
    Units with no department are left out.
    """
    path = Path(path)
    async with sessions() as s:
        sums = await _summaries(s, department)
    if department is not None:
        one = sums[0]
        spreadsheet.write_table(
            path,
            [FORM2_TITLE, f"{DEPARTMENT}：{one.department}"],
            FORM2_HEADERS,
            [*one.rows, one.total],
            one.footer(),
            sheet_title=FORM2_TITLE,
        )
        return len(one.rows)
    if path.suffix.lower() == ".csv":
        rows: list[list[object]] = []
        for sm in sums:
            rows += [[sm.department, *r] for r in sm.rows] + [[sm.department, *sm.total]]
        footer = sums[0].footer() if len(sums) == 1 else []
        spreadsheet.write_csv(path, [FORM2_TITLE], [DEPARTMENT, *FORM2_HEADERS], rows, footer)
        return sum(len(sm.rows) for sm in sums)
    _write_summary_workbook(path, sums)
    return sum(len(sm.rows) for sm in sums)


def _sheet_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "Sheet"
    out, n = base, 1
    while out in used:
        n += 1
        out = f"{base[: 31 - len(str(n)) - 1]}~{n}"
    used.add(out)
    return out


def _write_summary_workbook(path: Path | io.BytesIO, sums: Iterable[_Summary]) -> None:
    import openpyxl
    from openpyxl.styles import Font

    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    used: set[str] = set()
    for sm in sums:
        ws = wb.create_sheet(_sheet_name(sm.department, used))
        ws.append(spreadsheet.safe_row([FORM2_TITLE], xlsx=True))
        ws.append(spreadsheet.safe_row([f"{DEPARTMENT}：{sm.department}"], xlsx=True))
        ws.append(spreadsheet.safe_row(FORM2_HEADERS, xlsx=True))
        for c in ws[ws.max_row]:
            c.font = Font(bold=True)
        for r in [*sm.rows, sm.total]:
            ws.append(spreadsheet.safe_row(r, xlsx=True))
        for line in sm.footer():
            ws.append(spreadsheet.safe_row([line], xlsx=True))
        ws.column_dimensions["A"].width = 30
    if not wb.worksheets:
        ws = wb.create_sheet(FORM2_TITLE)
        ws.append([FORM2_TITLE])
        ws.append(FORM2_HEADERS)
    wb.save(path)
