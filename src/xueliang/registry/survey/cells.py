"""A survey cell's vocabulary both ways: what a form's cell may say, and what we write in it.

Each parser reads one column's text the way people fill the forms in (widths, spaces, units,
the usual words); each ``*_text`` writes a value back so that its parser gives the same value
again. A parser raises ValueError, saying what is wrong, for a cell it cannot read.
:func:`clean_text` and :class:`Lookup` serve the channel list too.

Choices where the survey spec is silent:

* 系统建设时间 is normalised to ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.
* 摄像机型号数量: the text is kept in ``camera_models`` (``None`` when it is only a number),
  the count goes to ``camera_count``. A total (``共12台``) wins over the parts and must agree
  with them when both are given. ``路`` (recorder channels) and ``万`` (pixels) are not counts.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata

from xueliang.registry import vocab

#: A count above this in one cell is a typing mistake, not a camera survey.
MAX_COUNT = 1_000_000


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


# ---- value parsers and their texts --------------------------------------------------------

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


# ---- the forms' word lists ----------------------------------------------------------------

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


def _bool_text(lookup: Lookup, v: bool | None) -> str:
    return "" if v is None else lookup.vocab.label("yes" if v else "no")


# ---- Form 2's counts ----------------------------------------------------------------------

_INT_RE = re.compile(rf"^(\d+)(?:\.0+)?\s*[{_MEASURE}]?$")


def _int_cell(v: str) -> int:
    t = unicodedata.normalize("NFKC", v).strip()
    if not t:
        return 0
    m = _INT_RE.match(t)
    if not m:
        raise ValueError("is not a whole number")
    return _count(m.group(1))
