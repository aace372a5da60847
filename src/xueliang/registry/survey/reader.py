"""The survey's sheets: the forms' titles and headers, and how a file's columns are found.

A file is told to be Form 1 or Form 2 by its headers; its header row is matched to the form's
headers (width- and space-insensitive) into a column map; each Form 1 column turns its cell
into the fields it fills. :func:`header_key` and :func:`map_columns` serve the channel list
too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from xueliang.registry import spreadsheet
from xueliang.registry.report import ImportReport
from xueliang.registry.survey.cells import (
    CAMERA_KIND,
    COVERAGE,
    NETWORK,
    PROVIDE,
    STORAGE,
    SUPPORT,
    UNIT_CATEGORY,
    Lookup,
    clean_text,
    parse_built_on,
    parse_count,
    parse_network,
    parse_platform_type,
    parse_retention,
)

FORM1_TITLE = "社会视频监控资源摸底调查表"
FORM2_TITLE = "摸底汇总表"
DEPARTMENT = "主管部门"


def header_key(h: str) -> str:
    """A header as compared: width-folded (NFKC), no whitespace, upper case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", h)).upper()


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


def _detect_form(raw: list[list[str]]) -> int:
    for row in raw[:50]:
        keys = {header_key(c) for c in row if c}
        if header_key("单位名称") in keys and header_key("平台类型") in keys:
            return 1
        if header_key("所属单位名称") in keys and header_key("摄像头数量") in keys:
            return 2
    return 0


def _department_of(sheet: spreadsheet.Sheet) -> str | None:
    v = sheet.title_value(DEPARTMENT)
    if v:
        return v
    for line in sheet.title_lines:
        m = re.match(rf"^\s*{DEPARTMENT}\s*[:：]?\s*(\S.*)$", line)
        if m:
            return m.group(1).strip()
    return None


# ---- Form 1 columns -----------------------------------------------------------------------

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


# ---- Form 2 columns -----------------------------------------------------------------------

FORM2_HEADERS = ["所属单位名称", "摄像头数量", "平台数量", "DVR/NVR数量", "涉及公共区域摄像头数量"]
_FORM2_FIELDS = {
    "摄像头数量": "cameras",
    "平台数量": "platforms",
    "DVR/NVR数量": "recorders",
    "涉及公共区域摄像头数量": "public_cameras",
}
