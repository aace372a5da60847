"""Control (控制): the platform's ``<Control>`` bodies, DeviceControl (PTZCmd, TeleBoot,
RecordCmd, GuardCmd, AlarmCmd, IFameCmd/IFrameCmd, DragZoom, HomePosition) and DeviceConfig.
Their answer is the bare Result
(:func:`~xueliang.gb28181.manscdp.document.encode_response_result`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from xueliang.gb28181.manscdp.document import (
    ConfigValue,
    FieldValue,
    ManscdpError,
    _Doc,
    _header,
    _local,
    _text,
    decode_tree,
)


def encode_control(
    sn: int,
    device_id: str,
    *,
    cmd_type: str = "DeviceControl",
    encoding: str = "GB2312",
    **fields: FieldValue | ConfigValue,
) -> bytes:
    """A ``<Control>``: PTZCmd="A50F01...", TeleBoot="Boot", RecordCmd="Record"/"StopRecord",
    GuardCmd="SetGuard"/"ResetGuard", AlarmCmd="ResetAlarm", IFameCmd="Send" (2016) or
    IFrameCmd="Send" (2022), DragZoomIn={...}, HomePosition={...}, Info={...}."""
    doc = _Doc("Control", encoding)
    _header(doc, cmd_type, sn, device_id)
    doc.add_all(fields)
    return doc.to_bytes()


#: DeviceConfig's configuration sections (GB/T 28181-2016 A.2.3.2; 2022 adds the rest).
CONFIG_SECTIONS = (
    "BasicParam", "VideoParamOpt", "SVACEncodeConfig", "SVACDecodeConfig",
    "VideoParamAttribute", "VideoRecordPlan", "VideoAlarmRecord", "PictureMask", "FrameMirror",
    "AlarmReport", "OSDConfig", "SnapShotConfig",
)
#: Bounds on one section (what a configuration needs, far below what would cost anything).
MAX_CONFIG_ELEMENTS = 256
MAX_CONFIG_DEPTH = 6
MAX_CONFIG_TEXT = 256
_HEADER = frozenset({"CmdType", "SN", "DeviceID"})


def config_sections(body: bytes | str) -> dict[str, ConfigValue]:
    """A DeviceConfig ``<Control>``'s sections as nested values :func:`encode_control` writes
    back the same (an element repeated becomes a list): ``{"VideoParamOpt": {"DownloadSpeed":
    "1/2/4", "Resolution": "5/6"}}``. Names are not checked against :data:`CONFIG_SECTIONS`
    (the caller decides what it forwards). Raises :class:`ManscdpError` for a body that is not
    a DeviceConfig ``<Control>``, a section with text instead of elements, an empty one, a
    section repeated, or one beyond the bounds above."""
    root = decode_tree(body)
    if _local(root.tag) != "Control":
        raise ManscdpError(f"a DeviceConfig is a <Control>, not <{_local(root.tag)[:40]}>")
    out: dict[str, ConfigValue] = {}
    count = [0]
    for child in root:
        name = _local(child.tag)
        if not name or name in _HEADER:
            continue
        if len(child) == 0:
            raise ManscdpError(f"<{name[:40]}> is not a configuration section (it holds no elements)")
        if name in out:
            raise ManscdpError(f"<{name[:40]}> is given twice")
        out[name] = _section(child, 1, count)
    return out


def _section(el: ET.Element, depth: int, count: list[int]) -> ConfigValue:
    if depth > MAX_CONFIG_DEPTH:
        raise ManscdpError(f"configuration nested deeper than {MAX_CONFIG_DEPTH}")
    values: dict[str, ConfigValue] = {}
    for child in el:
        name = _local(child.tag)
        if not name:
            continue
        count[0] += 1
        if count[0] > MAX_CONFIG_ELEMENTS:
            raise ManscdpError(f"more than {MAX_CONFIG_ELEMENTS} configuration elements")
        if len(child):
            value: ConfigValue = _section(child, depth + 1, count)
        else:
            value = _text(child)
            if len(value) > MAX_CONFIG_TEXT:
                raise ManscdpError(f"<{name[:40]}> is longer than {MAX_CONFIG_TEXT} characters")
        if name in values:  # repeated (<Item>...): kept in order
            prev = values[name]
            values[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            values[name] = value
    return values
