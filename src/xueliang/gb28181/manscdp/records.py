"""Recordings (录像): RecordInfo (the files of a time range) and the MediaStatus notify that
ends a playback or download."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from xueliang.gb28181.manscdp.document import (
    FieldValue,
    ManscdpMessage,
    _Doc,
    _expect,
    _header,
    _int_or_none,
    _s,
)


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


def encode_media_status(
    sn: int, device_id: str, *, notify_type: int = 121, encoding: str = "GB2312"
) -> bytes:
    """MediaStatus ``<Notify>``: NotifyType 121 = playback/download reached its end."""
    doc = _Doc("Notify", encoding)
    _header(doc, "MediaStatus", sn, device_id)
    doc.add("NotifyType", notify_type)
    return doc.to_bytes()
