"""Control (控制): the platform's ``<Control>`` bodies, DeviceControl (PTZCmd, TeleBoot,
RecordCmd, GuardCmd, AlarmCmd, IFameCmd/IFrameCmd, DragZoom, HomePosition) and DeviceConfig.
Their answer is the bare Result
(:func:`~xueliang.gb28181.manscdp.document.encode_response_result`)."""

from __future__ import annotations

from xueliang.gb28181.manscdp.document import FieldValue, _Doc, _header


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
