"""Mobile position (移动设备位置): the MobilePosition notify, read and written."""

from __future__ import annotations

from dataclasses import dataclass

from xueliang.gb28181.manscdp.document import (
    ManscdpMessage,
    _Doc,
    _expect,
    _float_or_none,
    _header,
    _s,
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
