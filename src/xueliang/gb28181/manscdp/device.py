"""The device itself: DeviceInfo (设备信息), DeviceStatus (设备状态) and the Keepalive (心跳)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from xueliang.gb28181.manscdp.document import (
    _OFFLINE_WORDS,
    _ONLINE_WORDS,
    ManscdpMessage,
    _Doc,
    _expect,
    _header,
    _int_or_none,
    _s,
)


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
