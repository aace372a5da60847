"""A MANSCDP body as a document: the tolerant reader, the strict writer, and what both share
(the errors, the size limits, the standard's names).

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

Safety: a body with a DOCTYPE, ENTITY or other markup declaration is refused with
:class:`ManscdpError` before any parser sees it: the text checked is the text parsed, so there
is no entity to expand and nothing external to fetch. :func:`decode` raises
:class:`ManscdpError` and nothing else.

Encoding follows what devices do: ``<?xml version="1.0" encoding="GB2312"?>`` with the body
really encoded as GB18030 (a superset of GB2312 and GBK, so every character survives);
``encoding="UTF-8"`` gives UTF-8. The generic requests are here: any ``<Query>`` and the
bare ``<Result>`` answer; each command family's own bodies are in its module.
"""

from __future__ import annotations

import codecs
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

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


#: Tag -> its local, canonical name: a catalog repeats the same twenty tags in every item.
#: Bounded, as the tags come from devices.
_LOCAL: dict[str, str] = {}
_LOCAL_MAX = 4096


def _local(tag: object) -> str:
    if not isinstance(tag, str):  # comments / processing instructions
        return ""
    name = _LOCAL.get(tag)
    if name is not None:
        return name
    name = tag
    if "}" in name:
        name = name.rsplit("}", 1)[1]
    if ":" in name:
        name = name.rsplit(":", 1)[1]
    name = canonical_name(name)
    if len(_LOCAL) < _LOCAL_MAX:
        _LOCAL[tag] = name
    return name


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
        # The C parser (expat, the tree built in C): with no DTD there is nothing to expand
        # and nothing external to fetch. defusedxml's parser (the pure-Python one, under its
        # checks) was some 40 % of the cost of reading a catalog (bench/sip_parse.py).
        parser = ET.XMLParser()
        parser.feed(text.encode("utf-8"))
        root = parser.close()
    except ET.ParseError as exc:
        raise ManscdpError(f"malformed XML: {exc}") from exc
    if not isinstance(root, ET.Element):
        raise ManscdpError("malformed XML: no root element")
    return root


def _decode(body: bytes | bytearray | memoryview | str) -> ManscdpMessage:
    root, encoding = _root_of(body)
    return _message(root, encoding)


def decode_tree(body: bytes | bytearray | memoryview | str) -> ET.Element:
    """The body's root element, read with the same limits and refusals as :func:`decode`, for
    the messages whose nesting matters (DeviceConfig's sections). Raises :class:`ManscdpError`."""
    try:
        return _root_of(body)[0]
    except ManscdpError:
        raise
    except Exception as exc:  # as decode: no other exception escapes, whatever the bytes
        raise ManscdpError(f"unreadable MANSCDP body: {type(exc).__name__}: {exc}") from exc


def _root_of(body: bytes | bytearray | memoryview | str) -> tuple[ET.Element, str]:
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
    return _parse_tree(text), encoding


def _message(root: ET.Element, encoding: str) -> ManscdpMessage:
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
# what the typed views of every family share
# --------------------------------------------------------------------------------------------


def _expect(msg: ManscdpMessage, cmd_type: str) -> None:
    if msg.cmd_type != cmd_type:
        raise ManscdpError(f"expected CmdType {cmd_type}, got {msg.cmd_type}")


def _s(d: Mapping[str, str], key: str) -> str:
    return d.get(key, "")


_ONLINE_WORDS = {"ON": True, "ONLINE": True, "OK": True, "1": True}
_OFFLINE_WORDS = {"OFF": False, "OFFLINE": False, "0": False, "ERROR": False}


# --------------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------------

FieldValue: TypeAlias = "str | int | float | Mapping[str, FieldValue] | None"
"""A MANSCDP field value: text, a number, None (element omitted) or nested elements."""
ConfigValue: TypeAlias = "str | Mapping[str, ConfigValue] | list[ConfigValue]"
"""A DeviceConfig section's value as read (control.config_sections): text, nested elements, or
a list (the element repeated, e.g. the ``<Item>`` of SVACEncodeConfig's ROIParam)."""

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

    def add(self, name: str, value: FieldValue | ConfigValue) -> None:
        if value is None:
            return
        if not _NAME_RE.fullmatch(name):
            raise ManscdpError(f"invalid element name {name!r}")
        if isinstance(value, list):
            for item in value:
                self.add(name, item)
        elif isinstance(value, Mapping):
            self.parts.append(f"<{name}>")
            for k, v in value.items():
                self.add(k, v)
            self.parts.append(f"</{name}>")
        else:
            self.parts.append(f"<{name}>{_escape(_format_value(value))}</{name}>")

    def add_all(self, fields: Mapping[str, FieldValue | ConfigValue]) -> None:
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


def encode_response_result(
    cmd_type: str, sn: int, device_id: str, ok: bool, *, encoding: str = "GB2312"
) -> bytes:
    """A ``<Response>`` carrying only ``<Result>OK</Result>`` or ``ERROR``."""
    doc = _Doc("Response", encoding)
    _header(doc, cmd_type, sn, device_id)
    doc.add("Result", "OK" if ok else "ERROR")
    return doc.to_bytes()
