"""What the platform asks of a device through GB/T 28181, as plain data.

`DeviceCommands` is the interface the API uses. `LocalCommands` runs them on this process's
signalling; in a cluster an API node uses the remote implementation (cluster/remote.py), which
sends the same calls to the signalling node serving the device and gets the same data back. So
the answers are JSON-ready dicts, shaped here once for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from xueliang.gb28181.service import SignallingService

Control = Literal["teleboot", "record_start", "record_stop", "guard_set", "guard_reset", "alarm_reset", "iframe"]

#: DeviceControl fields of each command, and whether the device answers with a result.
_CONTROL: dict[str, tuple[dict[str, Any], bool]] = {
    "teleboot": ({"TeleBoot": "Boot"}, False), "record_start": ({"RecordCmd": "Record"}, True),
    "record_stop": ({"RecordCmd": "StopRecord"}, True), "guard_set": ({"GuardCmd": "SetGuard"}, True),
    "guard_reset": ({"GuardCmd": "ResetGuard"}, True), "alarm_reset": ({"AlarmCmd": "ResetAlarm"}, True),
}


class DeviceCommands(Protocol):
    async def status(self) -> dict[str, Any]: ...

    async def query_catalog(self, device_id: str, wait: bool) -> dict[str, Any]: ...

    async def device_info(self, device_id: str) -> dict[str, Any]: ...

    async def device_status(self, device_id: str) -> dict[str, Any]: ...

    async def control(self, device_id: str, target: str, command: str) -> dict[str, Any]: ...

    async def ptz(self, device_id: str, channel_id: str, ptz_cmd: str) -> dict[str, Any]: ...

    async def subscribe_catalog(self, device_id: str, expires: int) -> dict[str, Any]: ...

    async def record_info(self, device_id: str, channel_id: str, start: str, end: str,
                          type_: str) -> list[dict[str, Any]]: ...


class LocalCommands:
    """The commands, on the signalling of this process."""

    def __init__(self, signalling: SignallingService) -> None:
        self.sig = signalling

    async def status(self) -> dict[str, Any]:
        return self.sig.status()

    async def query_catalog(self, device_id: str, wait: bool) -> dict[str, Any]:
        items = await self.sig.query_catalog(device_id, wait=wait)
        run = self.sig.catalog_runs.get(device_id)
        return {"device_id": device_id, "items": len(items),
                "complete": None if run is None else run.complete,
                "expected": None if run is None else run.expected}

    async def device_info(self, device_id: str) -> dict[str, Any]:
        i = await self.sig.device_info(device_id)
        return {"device_id": i.device_id, "result": i.result, "name": i.device_name,
                "manufacturer": i.manufacturer, "model": i.model, "firmware": i.firmware, "channels": i.channel}

    async def device_status(self, device_id: str) -> dict[str, Any]:
        st = await self.sig.device_status(device_id)
        return {"device_id": st.device_id, "result": st.result, "online": st.online, "status": st.status,
                "encode": st.encode, "record": st.record, "device_time": st.device_time,
                "alarms": st.alarm_status}

    async def control(self, device_id: str, target: str, command: str) -> dict[str, Any]:
        if command == "iframe":
            s = self.sig.registrar.devices.get(device_id)
            # 2016 devices know the misspelt element of that edition; 2022 (3.0) the corrected one
            name = "IFrameCmd" if s is not None and s.gb_version.startswith("3") else "IFameCmd"
            send: dict[str, Any] = {name: "Send"}
            return dict(await self.sig.control(device_id, target, **send))
        fields, wait = _CONTROL[command]
        return dict(await self.sig.control(device_id, target, wait_result=wait, **fields))

    async def ptz(self, device_id: str, channel_id: str, ptz_cmd: str) -> dict[str, Any]:
        return dict(await self.sig.control(device_id, channel_id, PTZCmd=ptz_cmd))

    async def subscribe_catalog(self, device_id: str, expires: int) -> dict[str, Any]:
        return dict(await self.sig.subscribe_catalog(device_id, expires))

    async def record_info(self, device_id: str, channel_id: str, start: str, end: str,
                          type_: str) -> list[dict[str, Any]]:
        items = await self.sig.record_info(device_id, channel_id, start, end, type_)
        return [{"name": r.name, "start": r.start_time, "end": r.end_time, "type": r.type,
                 "file_path": r.file_path, "size": r.file_size, "secrecy": r.secrecy} for r in items]
