"""A virtual device's channels (通道): what a channel is, its catalog item, and its simulated
PTZ head (pan, tilt, zoom, presets, the PTZCmd received)."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from xueliang.gb28181 import ptz
from xueliang.gb28181.manscdp import CatalogItem


@dataclass(slots=True)
class ChannelSpec:
    """What a channel is (for ``device_specs`` and :meth:`VirtualDevice.add_channel`)."""

    id: str
    name: str
    address: str = ""
    longitude: float | None = None
    latitude: float | None = None
    #: None: not reported (the platform keeps what its registry says).
    ptz_type: int | None = 3
    civil_code: str = ""
    manufacturer: str = "XUELIANG"
    model: str = "SIM-CAM"
    status: str = "ON"


@dataclass(slots=True)
class PtzRecord:
    """One PTZCmd received: when, the hex as sent, and its decoding (None if malformed)."""

    at: float
    hex: str
    command: ptz.PtzCommand | None

    @property
    def kind(self) -> str:
        return self.command.kind if self.command is not None else "invalid"


@dataclass(slots=True)
class PtzState:
    """The simulated head: pan/tilt in degrees, zoom factor, presets, last motion."""

    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 1.0
    focus: int = 0
    iris: int = 0
    moving: tuple[int, int, int] = (0, 0, 0)
    presets: dict[int, tuple[float, float, float]] = field(default_factory=dict)

    def apply(self, cmd: ptz.PtzCommand) -> None:
        kind = cmd.kind
        if kind == "ptz":
            self.moving = (cmd.pan, cmd.tilt, cmd.zoom)
            # Each command moves the head one step, proportional to its speed.
            self.pan = (self.pan + cmd.pan * (1 + cmd.pan_speed * 10 / 255)) % 360
            self.tilt = max(
                -90.0, min(90.0, self.tilt + cmd.tilt * (1 + cmd.tilt_speed * 10 / 255))
            )
            self.zoom = max(1.0, min(40.0, self.zoom + cmd.zoom * (0.5 + cmd.zoom_speed / 15)))
        elif kind == "fi":
            self.focus += cmd.focus_direction
            self.iris += cmd.iris_direction
        elif kind == "preset_set" and cmd.preset is not None:
            self.presets[cmd.preset] = (self.pan, self.tilt, self.zoom)
        elif kind == "preset_call" and cmd.preset in self.presets:
            self.pan, self.tilt, self.zoom = self.presets[cmd.preset]
            self.moving = (0, 0, 0)
        elif kind == "preset_delete" and cmd.preset is not None:
            self.presets.pop(cmd.preset, None)


@dataclass(slots=True)
class VirtualChannel:
    """One channel (通道) of a virtual device: catalog data and simulated state."""

    id: str
    name: str
    parent_id: str
    manufacturer: str = "XUELIANG"
    model: str = "SIM-CAM"
    owner: str = "Owner"
    civil_code: str = ""
    address: str = ""
    status: str = "ON"
    longitude: float | None = None
    latitude: float | None = None
    ptz_type: int | None = 3
    ip_address: str = ""
    port: int | None = None
    ptz: PtzState = field(default_factory=PtzState)
    ptz_log: collections.deque[PtzRecord] = field(
        default_factory=lambda: collections.deque(maxlen=200)
    )
    recording: bool = True
    guard: bool = False
    alarm: bool = False
    #: A picture fault the camera shows from its next stream on (for picture diagnosis):
    #: "covered" (most of the lens covered), "black" (no signal), "frozen" (the picture stops),
    #: "turned" (pointing elsewhere: a PTZ camera not back at its home preset).
    picture_fault: str | None = None

    def catalog_item(self, resolution: str = "") -> CatalogItem:
        return CatalogItem(
            device_id=self.id,
            name=self.name,
            manufacturer=self.manufacturer,
            model=self.model,
            owner=self.owner,
            civil_code=self.civil_code,
            address=self.address,
            parental=0,
            parent_ids=[self.parent_id],
            safety_way=0,
            register_way=1,
            secrecy=0,
            ip_address=self.ip_address,
            port=self.port,
            status=self.status,
            longitude=self.longitude,
            latitude=self.latitude,
            ptz_type=self.ptz_type,
            resolution=resolution,
        )

    @property
    def last_ptz(self) -> PtzRecord | None:
        return self.ptz_log[-1] if self.ptz_log else None

    @property
    def duty_status(self) -> str:
        return "ALARM" if self.alarm else "ONDUTY" if self.guard else "OFFDUTY"
