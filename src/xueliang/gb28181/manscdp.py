"""MANSCDP (监控报警联网系统控制描述协议) XML bodies: a tolerant decoder and strict encoders.

Sans-IO: bytes in, :class:`ManscdpMessage` out; keyword arguments in, bytes out.

Decoding is liberal, because real devices are (each quirk has a test):

* the declared encoding may be wrong: GB2312 bodies really in GBK/GB18030 or UTF-8, UTF-8
  bodies really in GBK. GB2312/GBK are read as GB18030 (their superset). A body declared
  UTF-8 that is valid UTF-8 is read as UTF-8, otherwise as GB18030. A body declared GB* (or
  with no declaration) that is valid both ways is read the more plausible way (common
  Chinese characters score high, rare ones less, private-use and C1 control characters
  negative; UTF-8 on a tie). Other declared codecs (Latin-1, Big5...) are trusted when they
  decode. The last resort is GB18030 with replacement characters.
* stray bytes before ``<?xml`` and after the root's end tag, NUL bytes, a BOM and characters
  that XML forbids are dropped; a bare ``&`` is read as ``&amp;``.
* tag names are case-insensitive and normalised to the standard's spelling (``deviceid`` →
  ``DeviceID``); a namespace prefix is ignored; missing optional fields are fine.

Safety: a body with a DOCTYPE or ENTITY declaration is refused with :class:`ManscdpError`
(no entity expansion, no external entities); parsing is done by :mod:`defusedxml` on top of
that. :func:`decode` raises :class:`ManscdpError` and nothing else.

Encoding follows what devices do: ``<?xml version="1.0" encoding="GB2312"?>`` with the body
really encoded as GB18030 (a superset of GB2312 and GBK, so every character survives);
``encoding="UTF-8"`` gives UTF-8.
"""

from __future__ import annotations

import codecs
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

import defusedxml
import defusedxml.ElementTree as DET

__all__ = [
    "LIST_TAGS",
    "ROOTS",
    "Alarm",
    "CatalogItem",
    "DeviceInfo",
    "DeviceStatus",
    "FieldValue",
    "Keepalive",
    "ManscdpError",
    "ManscdpMessage",
    "MobilePosition",
    "RecordItem",
    "canonical_name",
    "decode",
    "encode_alarm_notify",
    "encode_catalog_notify",
    "encode_catalog_response",
    "encode_control",
    "encode_device_info_response",
    "encode_device_status_response",
    "encode_keepalive",
    "encode_media_status",
    "encode_mobile_position",
    "encode_query",
    "encode_record_info_response",
    "encode_response_result",
    "split_catalog",
]

MAX_BODY_BYTES = 8 * 1024 * 1024
"""Bodies larger than this are refused (a catalog of 10 000 channels is about 6 MB)."""

MAX_ITEMS = 100_000
"""At most this many list items are read from one body; the rest are ignored."""

_MAX_DEPTH = 16

ROOTS: tuple[str, ...] = ("Query", "Control", "Notify", "Response")

LIST_TAGS: frozenset[str] = frozenset({"DeviceList", "RecordList", "AlarmStatus", "PresetList"})
"""Containers whose children are read as :attr:`ManscdpMessage.items`."""

_KNOWN_NAMES = """
Query Control Notify Response
CmdType SN DeviceID SumNum DeviceList RecordList AlarmStatus PresetList Item Info Num
Name Manufacturer Model Owner CivilCode Block Address Parental ParentID SafetyWay RegisterWay
CertNum Certifiable ErrCode EndTime Secrecy IPAddress Port Password Status Longitude Latitude
PTZType PositionType RoomType UseType SupplyLightType DirectionType Resolution BusinessGroupID
DownloadSpeed SVCSpaceSupportMode SVCTimeSupportMode SSVCRatioSupportList MobileDeviceType
HorizontalFieldAngle VerticalFieldAngle MaxViewDistance GrassrootsCode PointType PointCommonName
MAC FunctionType EncodeType InstallTime ManagementUnit ContactInfo RecordSaveDays
IndustrialClassification SecurityLevelCode CapturePositionType StreamNumberList
Event Result Reason DeviceName DeviceType Firmware Channel MaxCamera MaxAlarm
Online Encode Record DeviceTime DutyStatus
FilePath StartTime EndTime Type RecorderID FileSize StreamNumber IndistinctQuery AlarmMethod
AlarmPriority AlarmTime AlarmDescription AlarmType AlarmTypeParam EventType StartAlarmPriority
EndAlarmPriority
PTZCmd TeleBoot RecordCmd GuardCmd AlarmCmd IFameCmd IFrameCmd DragZoomIn DragZoomOut
HomePosition PTZPreciseCtrl DeviceUpgrade FormatSDCard TargetTrack ControlPriority
Enabled ResetTime PresetIndex Length Width MidPointX MidPointY LengthX LengthY
Time Speed Direction Altitude Interval Expires NotifyType
PresetID PresetName BasicParam VideoParamOpt SVACEncodeConfig SVACDecodeConfig
ConfigType
"""

_CANON: dict[str, str] = {n.lower(): n for n in _KNOWN_NAMES.split()}
_CANON["alarmstatus"] = "AlarmStatus"  # the standard spells it "Alarmstatus"

_CMD_TYPES = """
Catalog Keepalive DeviceInfo DeviceStatus RecordInfo Alarm MobilePosition DeviceControl
DeviceConfig ConfigDownload PresetQuery MediaStatus Broadcast HomePositionQuery
CruiseTrackListQuery CruiseTrackQuery PTZPosition SDCardStatus SnapShotConfig
UploadSnapShotFinished VideoUploadNotify DeviceUpgradeResult
"""
_CMD_CANON: dict[str, str] = {n.lower(): n for n in _CMD_TYPES.split()}


class ManscdpError(ValueError):
    """A MANSCDP body cannot be read (or a value cannot be encoded); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical_name(tag: str) -> str:
    """The standard spelling of a MANSCDP tag name (case-insensitive); unknown names unchanged."""
    return _CANON.get(tag.lower(), tag)


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ManscdpMessage:
    """One decoded MANSCDP body.

    ``fields`` holds the root's simple children (and, without overriding them, the simple
    children of nested non-list elements such as ``<Info>``). ``items`` holds the children of
    the first list container (DeviceList, RecordList, AlarmStatus, PresetList, or any element
    whose children are all ``<Item>``), each flattened: nested elements' children are added
    under their own names (``Info/PTZType`` → ``PTZType``); repeated ``ParentID`` are joined
    with ``/``. All text is stripped of XML whitespace.
    """

    root: str
    cmd_type: str
    sn: int
    device_id: str
    fields: dict[str, str] = field(default_factory=dict)
    items: list[dict[str, str]] = field(default_factory=list)
    list_name: str | None = None
    list_num: int | None = None
    sum_num: int | None = None
    encoding: str = "utf-8"
    """The codec the body was actually read with (``gb18030``, ``utf-8``, ...)."""

    def get(self, name: str, default: str | None = None) -> str | None:
        """A field by name, case-insensitively."""
        key = canonical_name(name)
        if key in self.fields:
            return self.fields[key]
        low = name.lower()
        for k, v in self.fields.items():
            if k.lower() == low:
                return v
        return default


_DTD_RE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_DTD_TEXT_RE = re.compile(r"<!\s*(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_XMLDECL_RE = re.compile(rb"<\?xml", re.IGNORECASE)
_FIRST_TAG_RE = re.compile(rb"<(!--|\?|[A-Za-z_][A-Za-z0-9_.:\-]*)")
_ENCODING_RE = re.compile(rb"""encoding\s*=\s*["']?\s*([A-Za-z0-9._:\-]{1,40})""", re.IGNORECASE)
_TEXT_DECL_RE = re.compile(r"^\s*<\?xml.*?\?>", re.IGNORECASE | re.DOTALL)
_ILLEGAL_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_BARE_AMP_RE = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});)")
_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")

_TEXT_CODECS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf_8": "utf-8",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
    "big5": "big5",
    "big5-hkscs": "big5hkscs",
    # Anything UTF-16/32 labelled but ASCII-compatible on the wire is mislabelled UTF-8.
    "utf-16": "utf-8",
    "utf-16le": "utf-8",
    "utf-16be": "utf-8",
}


def _codec_for_declared(name: str | None) -> str | None:
    if not name:
        return None
    n = name.strip().lower()
    if n.startswith(("gb", "euc-cn", "euccn", "cp936", "x-gbk", "x-gb")) or n == "936":
        return "gb18030"
    return _TEXT_CODECS.get(n)


def _plausibility(text: str) -> float:
    """Share of non-ASCII characters that look like real Chinese text (−1 … 1)."""
    n = 0
    score = 0.0
    for ch in text:
        o = ord(ch)
        if o < 0x80:
            continue
        n += 1
        if 0x80 <= o <= 0x9F or 0xE000 <= o <= 0xF8FF or o == 0xFFFD:
            score -= 1
        elif 0x3000 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF:
            try:
                ch.encode("gb2312")
            except UnicodeEncodeError:
                score += 0.5  # a rare character: possible, less likely
            else:
                score += 1
    return score / n if n else 1.0


def _bytes_to_text(data: bytes, declared: str | None) -> tuple[str, str]:
    """Decode with the declared codec, UTF-8 or GB18030, whichever reads; see module doc."""
    if data.isascii():
        return data.decode("ascii"), "utf-8"
    codec = _codec_for_declared(declared)
    if codec not in (None, "utf-8", "gb18030"):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            codec = None
    utf8: str | None = None
    try:
        utf8 = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if utf8 is not None and codec == "utf-8":
        return utf8, "utf-8"  # declared UTF-8 and valid UTF-8: trust it
    try:
        gb = data.decode("gb18030")
    except UnicodeDecodeError:
        if utf8 is not None:
            return utf8, "utf-8"
        return data.decode("gb18030", errors="replace"), "gb18030"
    if utf8 is None:
        return gb, "gb18030"
    # Declared GB* (or nothing) and both readings work: the more plausible one wins, and
    # UTF-8 on a tie (GB text that happens to be valid UTF-8 reads as Latin/Greek/... there).
    if _plausibility(gb) > _plausibility(utf8):
        return gb, "gb18030"
    return utf8, "utf-8"


def _cut_to_document(data: bytes) -> tuple[bytes, str | None]:
    """Drop bytes before ``<?xml`` (or the first tag) and after the root's end tag."""
    m = _XMLDECL_RE.search(data)
    declared: str | None = None
    if m is not None:
        data = data[m.start() :]
        decl_end = data.find(b"?>")
        if decl_end > 0:
            em = _ENCODING_RE.search(data, 0, decl_end)
            if em is not None:
                declared = em.group(1).decode("ascii")
        pos = decl_end + 2 if decl_end > 0 else 5
    else:
        pos = 0
    root: bytes | None = None
    while True:
        tm = _FIRST_TAG_RE.search(data, pos)
        if tm is None:
            break
        tok = tm.group(1)
        if tok == b"!--":
            end = data.find(b"-->", tm.end())
            if end < 0:
                break
            pos = end + 3
        elif tok == b"?":
            end = data.find(b"?>", tm.end())
            if end < 0:
                break
            pos = end + 2
        else:
            root = tok
            if m is None:
                data = data[tm.start() :]
            break
    if root is None:
        raise ManscdpError("no XML root element found")
    lower = data.lower()
    close = lower.rfind(b"</" + root.lower())
    if close >= 0:
        gt = data.find(b">", close)
        if gt >= 0:
            data = data[: gt + 1]
    return data, declared


def _local(tag: object) -> str:
    if not isinstance(tag, str):  # comments / processing instructions
        return ""
    if "}" in tag:
        tag = tag.rsplit("}", 1)[1]
    if ":" in tag:
        tag = tag.rsplit(":", 1)[1]
    return canonical_name(tag)


def _text(el: ET.Element) -> str:
    return (el.text or "").strip(" \t\r\n")


def _flatten_into(out: dict[str, str], el: ET.Element, depth: int) -> None:
    """Add the simple descendants of ``el`` to ``out`` without overriding existing names."""
    if depth > _MAX_DEPTH:
        return
    for child in el:
        name = _local(child.tag)
        if not name:
            continue
        if len(child):
            _flatten_into(out, child, depth + 1)
            continue
        value = _text(child)
        if name in out:
            if name == "ParentID" and value:
                out[name] = f"{out[name]}/{value}" if out[name] else value
            continue
        out[name] = value


def _is_list(name: str, el: ET.Element) -> bool:
    if name in LIST_TAGS:
        return True
    kids = [c for c in el if isinstance(c.tag, str)]
    return bool(kids) and all(_local(c.tag) == "Item" for c in kids)


def _int_or_none(s: str | None) -> int | None:
    if s is None:
        return None
    s = s.strip()
    if not _INT_RE.fullmatch(s):
        return None
    return int(s)


def _float_or_none(s: str | None) -> float | None:
    if s is None:
        return None
    s = s.strip()
    if not s or len(s) > 64:
        return None
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _parse_tree(text: str) -> ET.Element:
    text = _TEXT_DECL_RE.sub("", text, count=1)
    text = _ILLEGAL_XML_RE.sub("", text)
    text = _BARE_AMP_RE.sub("&amp;", text)
    if _DTD_TEXT_RE.search(text):
        raise ManscdpError("DOCTYPE/ENTITY declarations are refused in MANSCDP bodies")
    try:
        root = DET.fromstring(
            text.encode("utf-8"), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as exc:
        raise ManscdpError(f"refused XML construct: {exc}") from exc
    except ET.ParseError as exc:
        raise ManscdpError(f"malformed XML: {exc}") from exc
    if not isinstance(root, ET.Element):
        raise ManscdpError("malformed XML: no root element")
    return root


def _decode(body: bytes | bytearray | memoryview | str) -> ManscdpMessage:
    forced: str | None = None
    if isinstance(body, str):
        data = body.encode("utf-8", errors="replace")
        forced = "utf-8"
    else:
        data = bytes(body)
    if len(data) > MAX_BODY_BYTES:
        raise ManscdpError(f"body too large: {len(data)} bytes (limit {MAX_BODY_BYTES})")
    data = data.replace(b"\x00", b"")
    if not data.strip():
        raise ManscdpError("empty body")
    if _DTD_RE.search(data):
        raise ManscdpError(
            "DOCTYPE/ENTITY declarations are refused in MANSCDP bodies "
            "(entity expansion and external entities are not allowed)"
        )
    data, declared = _cut_to_document(data)
    if forced is not None:
        text, encoding = data.decode("utf-8", errors="replace"), forced
    else:
        text, encoding = _bytes_to_text(data, declared)
    root = _parse_tree(text)

    root_name = _local(root.tag)
    if root_name not in ROOTS:
        raise ManscdpError(
            f"unknown root element <{root_name[:40]}>; expected Query, Control, Notify or Response"
        )
    fields: dict[str, str] = {}
    nested: list[ET.Element] = []
    items: list[dict[str, str]] = []
    list_name: str | None = None
    list_num: int | None = None
    for child in root:
        name = _local(child.tag)
        if not name:
            continue
        if _is_list(name, child):
            if list_name is None:
                list_name = name
                num_attr = next((v for k, v in child.attrib.items() if k.lower() == "num"), None)
                list_num = _int_or_none(num_attr)
            elif name != list_name:
                continue
            for it in child:
                if not isinstance(it.tag, str) or len(items) >= MAX_ITEMS:
                    continue
                d: dict[str, str] = {}
                _flatten_into(d, it, 1)
                items.append(d)
        elif len(child) == 0:
            fields.setdefault(name, _text(child))
        else:
            nested.append(child)
    for el in nested:
        _flatten_into(fields, el, 1)

    cmd_raw = fields.get("CmdType")
    if not cmd_raw:
        raise ManscdpError(f"<{root_name}> has no CmdType")
    cmd_type = _CMD_CANON.get(cmd_raw.lower(), cmd_raw)
    sn_raw = fields.get("SN", "")
    if sn_raw == "":
        sn = 0
    else:
        sn_val = _int_or_none(sn_raw)
        if sn_val is None or sn_val < 0:
            raise ManscdpError(f"SN is not a non-negative integer: {sn_raw[:40]!r}")
        sn = sn_val
    return ManscdpMessage(
        root=root_name,
        cmd_type=cmd_type,
        sn=sn,
        device_id=fields.get("DeviceID", ""),
        fields=fields,
        items=items,
        list_name=list_name,
        list_num=list_num,
        sum_num=_int_or_none(fields.get("SumNum")),
        encoding=encoding,
    )


def decode(body: bytes | bytearray | memoryview | str) -> ManscdpMessage:
    """Decode a MANSCDP body. Raises :class:`ManscdpError` (only) when it cannot be read."""
    try:
        return _decode(body)
    except ManscdpError:
        raise
    except Exception as exc:  # the contract: no other exception escapes, whatever the bytes
        raise ManscdpError(f"unreadable MANSCDP body: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# typed views
# --------------------------------------------------------------------------------------------


def _expect(msg: ManscdpMessage, cmd_type: str) -> None:
    if msg.cmd_type != cmd_type:
        raise ManscdpError(f"expected CmdType {cmd_type}, got {msg.cmd_type}")


def _s(d: Mapping[str, str], key: str) -> str:
    return d.get(key, "")


_ONLINE_WORDS = {"ON": True, "ONLINE": True, "OK": True, "1": True}
_OFFLINE_WORDS = {"OFF": False, "OFFLINE": False, "0": False, "ERROR": False}

_CATALOG_STR_FIELDS: tuple[tuple[str, str], ...] = (
    ("Name", "name"),
    ("Manufacturer", "manufacturer"),
    ("Model", "model"),
    ("Owner", "owner"),
    ("CivilCode", "civil_code"),
    ("Address", "address"),
    ("IPAddress", "ip_address"),
    ("Status", "status"),
    ("Resolution", "resolution"),
    ("BusinessGroupID", "business_group_id"),
)
_CATALOG_INT_FIELDS: tuple[tuple[str, str], ...] = (
    ("Parental", "parental"),
    ("SafetyWay", "safety_way"),
    ("RegisterWay", "register_way"),
    ("Secrecy", "secrecy"),
    ("Port", "port"),
    ("PTZType", "ptz_type"),
)
_CATALOG_KNOWN = frozenset(
    {"DeviceID", "ParentID", "Longitude", "Latitude", "Event"}
    | {k for k, _ in _CATALOG_STR_FIELDS}
    | {k for k, _ in _CATALOG_INT_FIELDS}
)
_INFO_FIELDS = frozenset(
    {
        "PTZType",
        "PositionType",
        "RoomType",
        "UseType",
        "SupplyLightType",
        "DirectionType",
        "Resolution",
        "BusinessGroupID",
        "DownloadSpeed",
        "SVCSpaceSupportMode",
        "SVCTimeSupportMode",
        "SSVCRatioSupportList",
        "MobileDeviceType",
        "HorizontalFieldAngle",
        "VerticalFieldAngle",
        "MaxViewDistance",
        "GrassrootsCode",
        "PointType",
        "PointCommonName",
        "MAC",
        "FunctionType",
        "EncodeType",
        "InstallTime",
        "ManagementUnit",
        "ContactInfo",
        "RecordSaveDays",
        "IndustrialClassification",
        "StreamNumberList",
    }
)
"""Catalog item fields that the encoder writes inside ``<Info>``."""


@dataclass(slots=True)
class CatalogItem:
    """One catalog entry (目录项): a device, channel, business group (215) or virtual organisation (216).

    Unknown and 2022 fields (SecurityLevelCode, RecordSaveDays, ...) are kept in ``extra``.
    ``event`` is set in catalog NOTIFY items (ON, OFF, VLOST, DEFECT, ADD, DEL, UPDATE).
    """

    device_id: str
    name: str = ""
    manufacturer: str = ""
    model: str = ""
    owner: str = ""
    civil_code: str = ""
    address: str = ""
    parental: int | None = None
    parent_ids: list[str] = field(default_factory=list)
    safety_way: int | None = None
    register_way: int | None = None
    secrecy: int | None = None
    ip_address: str = ""
    port: int | None = None
    status: str = ""
    longitude: float | None = None
    latitude: float | None = None
    ptz_type: int | None = None
    resolution: str = ""
    business_group_id: str = ""
    event: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def parent_id(self) -> str | None:
        """The first ParentID, if any."""
        return self.parent_ids[0] if self.parent_ids else None

    @property
    def online(self) -> bool | None:
        """Status read as ON/ONLINE/OK → True, OFF/OFFLINE → False, anything else None."""
        s = self.status.upper()
        if s in _ONLINE_WORDS:
            return True
        if s in _OFFLINE_WORDS:
            return False
        return None

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> CatalogItem:
        """Build from one flattened item of :attr:`ManscdpMessage.items`. Junk numbers → None."""
        item = cls(device_id=_s(d, "DeviceID"))
        for key, attr in _CATALOG_STR_FIELDS:
            setattr(item, attr, _s(d, key))
        for key, attr in _CATALOG_INT_FIELDS:
            setattr(item, attr, _int_or_none(d.get(key)))
        item.parent_ids = [p.strip() for p in _s(d, "ParentID").split("/") if p.strip()]
        item.longitude = _float_or_none(d.get("Longitude"))
        item.latitude = _float_or_none(d.get("Latitude"))
        ev = d.get("Event")
        item.event = ev.upper() if ev else None
        item.extra = {k: v for k, v in d.items() if k not in _CATALOG_KNOWN}
        return item

    @classmethod
    def from_message(cls, msg: ManscdpMessage) -> list[CatalogItem]:
        """All items of a Catalog Response or Notify."""
        _expect(msg, "Catalog")
        return [cls.from_dict(d) for d in msg.items]

    def to_fields(self) -> dict[str, FieldValue]:
        """The item as nested MANSCDP fields (``Info`` as a nested mapping), in standard order."""
        out: dict[str, FieldValue] = {"DeviceID": self.device_id}
        if self.event is not None:
            out["Event"] = self.event
        info: dict[str, FieldValue] = {}
        group = len(self.device_id) == 20 and self.device_id[10:13] in ("215", "216")
        order: list[tuple[str, FieldValue]] = [
            ("Name", self.name),
            ("Manufacturer", self.manufacturer),
            ("Model", self.model),
            ("Owner", self.owner),
            ("CivilCode", self.civil_code),
            ("Address", self.address),
            ("Parental", self.parental),
            ("ParentID", "/".join(self.parent_ids) if self.parent_ids else None),
            ("SafetyWay", self.safety_way),
            ("RegisterWay", self.register_way),
            ("Secrecy", self.secrecy),
            ("IPAddress", self.ip_address),
            ("Port", self.port),
            ("Status", self.status),
            ("Longitude", self.longitude),
            ("Latitude", self.latitude),
        ]
        for key, value in order:
            if value is not None and value != "":
                out[key] = value
        if self.business_group_id and group:
            out["BusinessGroupID"] = self.business_group_id
        if self.ptz_type is not None:
            info["PTZType"] = self.ptz_type
        if self.resolution:
            info["Resolution"] = self.resolution
        if self.business_group_id and not group:
            info["BusinessGroupID"] = self.business_group_id
        for k, v in self.extra.items():
            if k in out or k in info or k in _CATALOG_KNOWN:
                continue
            (info if k in _INFO_FIELDS else out)[k] = v
        if info:
            out["Info"] = info
        return out


@dataclass(slots=True)
class RecordItem:
    """One recording file (录像文件) of a RecordInfo response."""

    device_id: str
    name: str = ""
    file_path: str = ""
    address: str = ""
    start_time: str = ""
    end_time: str = ""
    secrecy: int | None = None
    type: str = ""
    recorder_id: str = ""
    file_size: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    _KEYS = (
        ("DeviceID", "device_id"),
        ("Name", "name"),
        ("FilePath", "file_path"),
        ("Address", "address"),
        ("StartTime", "start_time"),
        ("EndTime", "end_time"),
        ("Secrecy", "secrecy"),
        ("Type", "type"),
        ("RecorderID", "recorder_id"),
        ("FileSize", "file_size"),
    )

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> RecordItem:
        known = {k for k, _ in cls._KEYS}
        return cls(
            device_id=_s(d, "DeviceID"),
            name=_s(d, "Name"),
            file_path=_s(d, "FilePath"),
            address=_s(d, "Address"),
            start_time=_s(d, "StartTime"),
            end_time=_s(d, "EndTime"),
            secrecy=_int_or_none(d.get("Secrecy")),
            type=_s(d, "Type"),
            recorder_id=_s(d, "RecorderID"),
            file_size=_int_or_none(d.get("FileSize")),
            extra={k: v for k, v in d.items() if k not in known},
        )

    @classmethod
    def from_message(cls, msg: ManscdpMessage) -> list[RecordItem]:
        _expect(msg, "RecordInfo")
        return [cls.from_dict(d) for d in msg.items]

    def to_fields(self) -> dict[str, FieldValue]:
        out: dict[str, FieldValue] = {}
        for key, attr in self._KEYS:
            value = getattr(self, attr)
            if value is not None:
                out[key] = value
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out


@dataclass(slots=True)
class DeviceInfo:
    """DeviceInfo response (设备信息)."""

    device_id: str
    result: str = ""
    device_name: str = ""
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    channel: int | None = None
    max_camera: int | None = None
    max_alarm: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_message(cls, msg: ManscdpMessage) -> DeviceInfo:
        _expect(msg, "DeviceInfo")
        f = msg.fields
        known = {"CmdType", "SN", "DeviceID", "Result", "DeviceName", "Manufacturer", "Model"}
        known |= {"Firmware", "Channel", "MaxCamera", "MaxAlarm"}
        return cls(
            device_id=msg.device_id,
            result=_s(f, "Result"),
            device_name=_s(f, "DeviceName"),
            manufacturer=_s(f, "Manufacturer"),
            model=_s(f, "Model"),
            firmware=_s(f, "Firmware"),
            channel=_int_or_none(f.get("Channel")),
            max_camera=_int_or_none(f.get("MaxCamera")),
            max_alarm=_int_or_none(f.get("MaxAlarm")),
            extra={k: v for k, v in f.items() if k not in known},
        )


@dataclass(slots=True)
class DeviceStatus:
    """DeviceStatus response (设备状态). ``alarm_status`` holds the Alarmstatus items."""

    device_id: str
    result: str = ""
    online: str = ""
    status: str = ""
    encode: str = ""
    record: str = ""
    device_time: str = ""
    alarm_status: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_online(self) -> bool | None:
        s = self.online.upper()
        return _ONLINE_WORDS.get(s, _OFFLINE_WORDS.get(s))

    @property
    def is_ok(self) -> bool | None:
        s = self.status.upper()
        return _ONLINE_WORDS.get(s, _OFFLINE_WORDS.get(s))

    @classmethod
    def from_message(cls, msg: ManscdpMessage) -> DeviceStatus:
        _expect(msg, "DeviceStatus")
        f = msg.fields
        known = {"CmdType", "SN", "DeviceID", "Result", "Online", "Status", "Encode", "Record"}
        known.add("DeviceTime")
        return cls(
            device_id=msg.device_id,
            result=_s(f, "Result"),
            online=_s(f, "Online"),
            status=_s(f, "Status"),
            encode=_s(f, "Encode"),
            record=_s(f, "Record"),
            device_time=_s(f, "DeviceTime"),
            alarm_status=[dict(i) for i in msg.items] if msg.list_name == "AlarmStatus" else [],
            extra={k: v for k, v in f.items() if k not in known},
        )


@dataclass(slots=True)
class Alarm:
    """Alarm notification (报警通知)."""

    device_id: str
    priority: int | None = None
    method: int | None = None
    time: str = ""
    description: str = ""
    longitude: float | None = None
    latitude: float | None = None
    alarm_type: int | None = None
    event_type: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_message(cls, msg: ManscdpMessage) -> Alarm:
        _expect(msg, "Alarm")
        f = msg.fields
        known = {"CmdType", "SN", "DeviceID", "AlarmPriority", "AlarmMethod", "AlarmTime"}
        known |= {"AlarmDescription", "Longitude", "Latitude", "AlarmType", "EventType"}
        return cls(
            device_id=msg.device_id,
            priority=_int_or_none(f.get("AlarmPriority")),
            method=_int_or_none(f.get("AlarmMethod")),
            time=_s(f, "AlarmTime"),
            description=_s(f, "AlarmDescription"),
            longitude=_float_or_none(f.get("Longitude")),
            latitude=_float_or_none(f.get("Latitude")),
            alarm_type=_int_or_none(f.get("AlarmType")),
            event_type=_int_or_none(f.get("EventType")),
            extra={k: v for k, v in f.items() if k not in known},
        )


@dataclass(slots=True)
class MobilePosition:
    """Mobile device position notification (移动设备位置)."""

    device_id: str
    time: str = ""
    longitude: float | None = None
    latitude: float | None = None
    speed: float | None = None
    direction: float | None = None
    altitude: float | None = None

    @classmethod
    def from_message(cls, msg: ManscdpMessage) -> MobilePosition:
        _expect(msg, "MobilePosition")
        f = msg.fields
        return cls(
            device_id=msg.device_id,
            time=_s(f, "Time"),
            longitude=_float_or_none(f.get("Longitude")),
            latitude=_float_or_none(f.get("Latitude")),
            speed=_float_or_none(f.get("Speed")),
            direction=_float_or_none(f.get("Direction")),
            altitude=_float_or_none(f.get("Altitude")),
        )


@dataclass(slots=True)
class Keepalive:
    """Keepalive notification (心跳)."""

    device_id: str
    sn: int
    status: str = ""

    @property
    def ok(self) -> bool:
        """True for Status OK (or missing, which some devices do); False otherwise."""
        return self.status.upper() in ("", "OK", "ON", "ONLINE")

    @classmethod
    def from_message(cls, msg: ManscdpMessage) -> Keepalive:
        _expect(msg, "Keepalive")
        return cls(device_id=msg.device_id, sn=msg.sn, status=_s(msg.fields, "Status"))


# --------------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------------

FieldValue: TypeAlias = "str | int | float | Mapping[str, FieldValue] | None"
"""A MANSCDP field value: text, a number, None (element omitted) or nested elements."""

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _codec_for_encoding(encoding: str) -> str:
    codec = _codec_for_declared(encoding)
    if codec is None:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise ManscdpError(f"unknown encoding {encoding!r}") from None
        if codec not in ("utf-8", "latin-1", "iso8859-1", "cp1252", "big5", "ascii"):
            raise ManscdpError(f"unsupported encoding {encoding!r}")
    return codec


def _escape(s: str, attr: bool = False) -> str:
    s = _ILLEGAL_XML_RE.sub("", s)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    if attr:
        s = s.replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")
    return s


def _format_value(v: str | int | float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ManscdpError(f"cannot encode non-finite number {v!r}")
        return repr(v)
    return v


class _Doc:
    def __init__(self, root: str, encoding: str) -> None:
        self.encoding = encoding
        self.codec = _codec_for_encoding(encoding)
        self.parts: list[str] = [f'<?xml version="1.0" encoding="{encoding}"?>', f"<{root}>"]
        self.root = root

    def add(self, name: str, value: FieldValue) -> None:
        if value is None:
            return
        if not _NAME_RE.fullmatch(name):
            raise ManscdpError(f"invalid element name {name!r}")
        if isinstance(value, Mapping):
            self.parts.append(f"<{name}>")
            for k, v in value.items():
                self.add(k, v)
            self.parts.append(f"</{name}>")
        else:
            self.parts.append(f"<{name}>{_escape(_format_value(value))}</{name}>")

    def add_all(self, fields: Mapping[str, FieldValue]) -> None:
        for k, v in fields.items():
            self.add(k, v)

    def open(self, name: str, num: int) -> None:
        self.parts.append(f'<{name} Num="{num}">')

    def close(self, name: str) -> None:
        self.parts.append(f"</{name}>")

    def to_bytes(self) -> bytes:
        self.parts.append(f"</{self.root}>")
        return ("\r\n".join(self.parts) + "\r\n").encode(self.codec, errors="xmlcharrefreplace")


def _header(doc: _Doc, cmd_type: str, sn: int, device_id: str) -> None:
    if not isinstance(sn, int) or sn < 0:
        raise ManscdpError(f"SN must be a non-negative integer, got {sn!r}")
    doc.add("CmdType", cmd_type)
    doc.add("SN", sn)
    doc.add("DeviceID", device_id)


def encode_query(
    cmd_type: str, sn: int, device_id: str, *, encoding: str = "GB2312", **fields: FieldValue
) -> bytes:
    """A ``<Query>``: Catalog, DeviceInfo, DeviceStatus, RecordInfo (StartTime=..., EndTime=...,
    Type=...), PresetQuery, ConfigDownload... Extra fields follow DeviceID in the given order."""
    doc = _Doc("Query", encoding)
    _header(doc, cmd_type, sn, device_id)
    doc.add_all(fields)
    return doc.to_bytes()


def encode_control(
    sn: int,
    device_id: str,
    *,
    cmd_type: str = "DeviceControl",
    encoding: str = "GB2312",
    **fields: FieldValue,
) -> bytes:
    """A ``<Control>``: PTZCmd="A50F01...", TeleBoot="Boot", RecordCmd="Record"/"StopRecord",
    GuardCmd="SetGuard"/"ResetGuard", AlarmCmd="ResetAlarm", IFameCmd="Send" (2016) or
    IFrameCmd="Send" (2022), DragZoomIn={...}, HomePosition={...}, Info={...}."""
    doc = _Doc("Control", encoding)
    _header(doc, cmd_type, sn, device_id)
    doc.add_all(fields)
    return doc.to_bytes()


def encode_response_result(
    cmd_type: str, sn: int, device_id: str, ok: bool, *, encoding: str = "GB2312"
) -> bytes:
    """A ``<Response>`` carrying only ``<Result>OK</Result>`` or ``ERROR``."""
    doc = _Doc("Response", encoding)
    _header(doc, cmd_type, sn, device_id)
    doc.add("Result", "OK" if ok else "ERROR")
    return doc.to_bytes()


def _catalog_fields(item: CatalogItem | Mapping[str, FieldValue]) -> Mapping[str, FieldValue]:
    return item.to_fields() if isinstance(item, CatalogItem) else item


def encode_catalog_response(
    sn: int,
    device_id: str,
    sum_num: int,
    items: Sequence[CatalogItem | Mapping[str, FieldValue]],
    encoding: str = "GB2312",
) -> bytes:
    """One Catalog ``<Response>`` part: SumNum is the total, ``DeviceList Num`` = len(items)."""
    doc = _Doc("Response", encoding)
    _header(doc, "Catalog", sn, device_id)
    doc.add("SumNum", sum_num)
    doc.open("DeviceList", len(items))
    for it in items:
        doc.add("Item", _catalog_fields(it))
    doc.close("DeviceList")
    return doc.to_bytes()


_FULL_EVENTS = frozenset({"ADD", "UPDATE"})


def encode_catalog_notify(
    sn: int,
    device_id: str,
    items: Sequence[CatalogItem | Mapping[str, FieldValue]],
    *,
    sum_num: int | None = None,
    event: str | None = None,
    encoding: str = "GB2312",
) -> bytes:
    """A Catalog ``<Notify>`` (subscription update). Each item's Event is its own ``event`` or
    the ``event`` argument; ADD/UPDATE items carry the full item, others DeviceID and Event."""
    doc = _Doc("Notify", encoding)
    _header(doc, "Catalog", sn, device_id)
    doc.add("SumNum", len(items) if sum_num is None else sum_num)
    doc.open("DeviceList", len(items))
    for it in items:
        fields = dict(_catalog_fields(it))
        ev = fields.get("Event") or event
        if not isinstance(ev, str) or not ev:
            raise ManscdpError("catalog notify item without Event")
        ev = ev.upper()
        if ev in _FULL_EVENTS:
            out: dict[str, FieldValue] = {"DeviceID": fields.get("DeviceID"), "Event": ev}
            out.update((k, v) for k, v in fields.items() if k not in ("DeviceID", "Event"))
        else:
            out = {"DeviceID": fields.get("DeviceID"), "Event": ev}
        doc.add("Item", out)
    doc.close("DeviceList")
    return doc.to_bytes()


def encode_record_info_response(
    sn: int,
    device_id: str,
    sum_num: int,
    items: Sequence[RecordItem | Mapping[str, FieldValue]],
    *,
    name: str = "",
    encoding: str = "GB2312",
) -> bytes:
    """One RecordInfo ``<Response>`` part (split like Catalog), ``RecordList Num`` = len(items)."""
    doc = _Doc("Response", encoding)
    _header(doc, "RecordInfo", sn, device_id)
    doc.add("Name", name)
    doc.add("SumNum", sum_num)
    doc.open("RecordList", len(items))
    for it in items:
        doc.add("Item", it.to_fields() if isinstance(it, RecordItem) else it)
    doc.close("RecordList")
    return doc.to_bytes()


def encode_device_info_response(
    sn: int,
    device_id: str,
    *,
    device_name: str = "",
    manufacturer: str = "",
    model: str = "",
    firmware: str = "",
    channel: int | None = None,
    max_camera: int | None = None,
    max_alarm: int | None = None,
    ok: bool = True,
    encoding: str = "GB2312",
) -> bytes:
    doc = _Doc("Response", encoding)
    _header(doc, "DeviceInfo", sn, device_id)
    doc.add("DeviceName", device_name)
    doc.add("Result", "OK" if ok else "ERROR")
    doc.add("Manufacturer", manufacturer)
    doc.add("Model", model)
    doc.add("Firmware", firmware)
    doc.add("Channel", channel)
    doc.add("MaxCamera", max_camera)
    doc.add("MaxAlarm", max_alarm)
    return doc.to_bytes()


def encode_device_status_response(
    sn: int,
    device_id: str,
    *,
    online: bool = True,
    status_ok: bool = True,
    encode: bool | None = None,
    record: bool | None = None,
    device_time: str | None = None,
    alarm_status: Iterable[tuple[str, str]] = (),
    ok: bool = True,
    encoding: str = "GB2312",
) -> bytes:
    """DeviceStatus ``<Response>``; ``alarm_status`` is (DeviceID, DutyStatus) pairs
    (DutyStatus ONDUTY / OFFDUTY / ALARM), written as the standard's ``<Alarmstatus>``."""
    doc = _Doc("Response", encoding)
    _header(doc, "DeviceStatus", sn, device_id)
    doc.add("Result", "OK" if ok else "ERROR")
    doc.add("Online", "ONLINE" if online else "OFFLINE")
    doc.add("Status", "OK" if status_ok else "ERROR")
    if encode is not None:
        doc.add("Encode", "ON" if encode else "OFF")
    if record is not None:
        doc.add("Record", "ON" if record else "OFF")
    doc.add("DeviceTime", device_time)
    pairs = list(alarm_status)
    if pairs:
        doc.open("Alarmstatus", len(pairs))
        for did, duty in pairs:
            doc.add("Item", {"DeviceID": did, "DutyStatus": duty})
        doc.close("Alarmstatus")
    return doc.to_bytes()


def encode_keepalive(
    sn: int, device_id: str, *, status: str = "OK", encoding: str = "GB2312"
) -> bytes:
    doc = _Doc("Notify", encoding)
    _header(doc, "Keepalive", sn, device_id)
    doc.add("Status", status)
    return doc.to_bytes()


def encode_alarm_notify(
    sn: int,
    device_id: str,
    *,
    priority: int,
    method: int,
    time: str,
    description: str | None = None,
    longitude: float | None = None,
    latitude: float | None = None,
    alarm_type: int | None = None,
    event_type: int | None = None,
    encoding: str = "GB2312",
) -> bytes:
    """Alarm ``<Notify>``: priority 1–4, method 1 phone … 5 video, 6 fault, 7 other;
    ``time`` as ``yyyy-MM-ddTHH:mm:ss``; Info/AlarmType and AlarmTypeParam/EventType optional."""
    doc = _Doc("Notify", encoding)
    _header(doc, "Alarm", sn, device_id)
    doc.add("AlarmPriority", priority)
    doc.add("AlarmMethod", method)
    doc.add("AlarmTime", time)
    doc.add("AlarmDescription", description)
    doc.add("Longitude", longitude)
    doc.add("Latitude", latitude)
    if alarm_type is not None or event_type is not None:
        info: dict[str, FieldValue] = {"AlarmType": alarm_type}
        if event_type is not None:
            info["AlarmTypeParam"] = {"EventType": event_type}
        doc.add("Info", info)
    return doc.to_bytes()


def encode_mobile_position(
    sn: int,
    device_id: str,
    *,
    time: str,
    longitude: float,
    latitude: float,
    speed: float | None = None,
    direction: float | None = None,
    altitude: float | None = None,
    encoding: str = "GB2312",
) -> bytes:
    doc = _Doc("Notify", encoding)
    _header(doc, "MobilePosition", sn, device_id)
    doc.add("Time", time)
    doc.add("Longitude", longitude)
    doc.add("Latitude", latitude)
    doc.add("Speed", speed)
    doc.add("Direction", direction)
    doc.add("Altitude", altitude)
    return doc.to_bytes()


def encode_media_status(
    sn: int, device_id: str, *, notify_type: int = 121, encoding: str = "GB2312"
) -> bytes:
    """MediaStatus ``<Notify>``: NotifyType 121 = playback/download reached its end."""
    doc = _Doc("Notify", encoding)
    _header(doc, "MediaStatus", sn, device_id)
    doc.add("NotifyType", notify_type)
    return doc.to_bytes()


T = TypeVar("T")


def split_catalog(items: Sequence[T], per_message: int) -> list[list[T]]:
    """Chunks of at most ``per_message`` items, in order; no items gives one empty chunk
    (a device with nothing to list still answers once, with SumNum 0)."""
    if per_message < 1:
        raise ValueError(f"per_message must be at least 1, got {per_message}")
    if not items:
        return [[]]
    return [list(items[i : i + per_message]) for i in range(0, len(items), per_message)]
