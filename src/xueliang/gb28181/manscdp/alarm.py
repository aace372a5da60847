"""Alarms (报警): the Alarm notify, read and written."""

from __future__ import annotations

from dataclasses import dataclass, field

from xueliang.gb28181.manscdp.document import (
    FieldValue,
    ManscdpMessage,
    _Doc,
    _expect,
    _float_or_none,
    _header,
    _int_or_none,
    _s,
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
