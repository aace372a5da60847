"""Catalog (目录): the items of a catalog Response or Notify, and their encoders (the
Response split into parts, the subscription's Notify)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from xueliang.gb28181.manscdp.document import (
    _OFFLINE_WORDS,
    _ONLINE_WORDS,
    FieldValue,
    ManscdpError,
    ManscdpMessage,
    _Doc,
    _expect,
    _float_or_none,
    _header,
    _int_or_none,
    _s,
)

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


T = TypeVar("T")


def split_catalog(items: Sequence[T], per_message: int) -> list[list[T]]:
    """Chunks of at most ``per_message`` items, in order; no items gives one empty chunk
    (a device with nothing to list still answers once, with SumNum 0)."""
    if per_message < 1:
        raise ValueError(f"per_message must be at least 1, got {per_message}")
    if not items:
        return [[]]
    return [list(items[i : i + per_message]) for i in range(0, len(items), per_message)]
