"""Registry objects as the services take and return them (pydantic; no HTTP, no ORM)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xueliang.gb28181.ids import GbIdError, parse_gb_id
from xueliang.registry import vocab
from xueliang.registry.geojson import parse_boundary


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _gb(v: str) -> str:
    try:
        parse_gb_id(v)
    except GbIdError as exc:
        raise ValueError(str(exc)) from exc
    return v


class DivisionIn(_In):
    code: str = Field(min_length=2, max_length=20, pattern=r"^\d+$")
    name: str = Field(min_length=1, max_length=200)
    #: Grids only (13–20 digits): the county, township or village the grid lies in; its code
    #: begins the grid's. Default: the longest registered one whose code begins the grid's.
    parent_code: str | None = Field(default=None, pattern=r"^\d{6}(\d{3}){0,2}$")
    #: Grids only: the boundary, a GeoJSON Polygon or MultiPolygon (WGS-84).
    boundary: dict[str, Any] | None = None

    @field_validator("code")
    @classmethod
    def _level(cls, v: str) -> str:
        if vocab.division_level(v) == "invalid":
            raise ValueError("division code must have 2, 4, 6, 9, 12 or more digits")
        return v

    @model_validator(mode="after")
    def _grid(self) -> DivisionIn:
        is_grid = vocab.division_level(self.code) == "grid"
        if not is_grid and (self.parent_code is not None or self.boundary is not None):
            raise ValueError("parent_code and boundary are for grids (codes of 13 to 20 digits)")
        if self.parent_code is not None:
            vocab.grid_code(self.code, self.parent_code)
        if self.boundary is not None:
            self.boundary = parse_boundary(json.dumps(self.boundary))
        return self


class DivisionOut(_Out):
    code: str
    name: str
    level: str
    parent_code: str | None
    #: national (the shipped list), import (created from a channel list's row), local
    source: str = "local"
    #: retired by a later national list; kept so that old surveys still import
    historical: bool = False


class GridOut(_Out):
    code: str
    name: str
    parent_code: str | None
    #: GeoJSON geometry, or None when the city gave none
    boundary: dict[str, Any] | None

    @field_validator("boundary", mode="before")
    @classmethod
    def _geo(cls, v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v


class UnitIn(_In):
    name: str = Field(min_length=1, max_length=200)
    category: str | None = None
    head_contact: str | None = None
    address: str | None = None
    department: str | None = None
    division_code: str | None = None

    @field_validator("category")
    @classmethod
    def _cat(cls, v: str | None) -> str | None:
        return None if v is None else vocab.UNIT_CATEGORY.parse(v)


class UnitPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = None
    head_contact: str | None = None
    address: str | None = None
    department: str | None = None
    division_code: str | None = None

    _cat = field_validator("category")(UnitIn._cat.__func__)  # type: ignore[attr-defined]


class UnitOut(_Out):
    id: int
    name: str
    category: str | None
    head_contact: str | None
    address: str | None
    department: str | None
    division_code: str | None


class PlatformIn(_In):
    unit_id: int
    segment: str = ""
    built_on: str | None = None
    kind: Literal["platform", "none"] | None = None
    signal: Literal["digital", "analog"] | None = None
    installer: str | None = None
    installer_contact: str | None = None
    platform_maker: str | None = None
    platform_standard: bool | None = None
    platform_model: str | None = None
    sdk_available: bool | None = None
    camera_maker: str | None = None
    camera_models: str | None = None
    camera_count: int = Field(default=0, ge=0)
    camera_type: Literal["network", "analog"] | None = None
    camera_standard: bool | None = None
    recorder_maker: str | None = None
    recorder_models: str | None = None
    recorder_count: int = Field(default=0, ge=0)
    recorder_standard: bool | None = None
    network: Literal["none", "lan", "internet", "other"] | None = None
    uplink_mbps: float | None = Field(default=None, ge=0)
    storage_mode: Literal["server", "recorder", "other"] | None = None
    retention_days: int | None = Field(default=None, ge=0, le=3650)
    faults: str | None = None
    coverage: Literal["A", "B", "C"] | None = None
    public_camera_count: int | None = Field(default=None, ge=0)
    gb_id: str | None = None
    rtsp_url: str | None = None

    @field_validator("gb_id")
    @classmethod
    def _gbid(cls, v: str | None) -> str | None:
        return None if v is None else _gb(v)


class PlatformOut(_Out):
    id: int
    unit_id: int
    segment: str
    built_on: str | None
    kind: str | None
    signal: str | None
    installer: str | None
    installer_contact: str | None
    platform_maker: str | None
    platform_standard: bool | None
    platform_model: str | None
    sdk_available: bool | None
    camera_maker: str | None
    camera_models: str | None
    camera_count: int
    camera_type: str | None
    camera_standard: bool | None
    recorder_maker: str | None
    recorder_models: str | None
    recorder_count: int
    recorder_standard: bool | None
    network: str | None
    uplink_mbps: float | None
    storage_mode: str | None
    retention_days: int | None
    faults: str | None
    coverage: str | None
    public_camera_count: int | None
    gb_id: str | None
    rtsp_url: str | None


class DeviceIn(_In):
    id: str
    name: str = ""
    manufacturer: str | None = None
    model: str | None = None
    platform_id: int | None = None
    unit_id: int | None = None
    password: str | None = Field(default=None, min_length=1, max_length=128)
    admission: Literal["accepted", "pending", "rejected"] = "accepted"

    _gbid = field_validator("id")(_gb)


class DevicePatch(_In):
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    platform_id: int | None = None
    unit_id: int | None = None
    password: str | None = Field(default=None, min_length=1, max_length=128)
    admission: Literal["accepted", "pending", "rejected"] | None = None


class DeviceOut(_Out):
    id: str
    name: str
    type_code: str
    manufacturer: str | None
    model: str | None
    firmware: str | None
    platform_id: int | None
    unit_id: int | None
    admission: str
    transport: str | None
    remote_host: str | None
    remote_port: int | None
    online: bool
    registered_at: datetime | None
    last_keepalive: datetime | None
    expires_at: datetime | None
    channel_count: int
    gb_version: str | None
    #: platform: a lower platform (type 200, or it reports 215/216 groups: registry/platforms.py)
    kind: Literal["device", "platform"] = "device"


class ChannelFields(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    device_id: str | None = None
    unit_id: int | None = None
    division_code: str | None = None
    parent_id: str | None = None
    point_class: Literal[1, 2, 3] | None = None
    coverage: Literal["A", "B", "C"] | None = None
    tier: Literal["high", "building", "street"] | None = None
    ptz_type: int | None = Field(default=None, ge=0, le=9)
    longitude: float | None = None
    latitude: float | None = None
    address: str | None = Field(default=None, max_length=400)
    key_site: bool | None = None
    #: Fit for the residents of its village or compound to watch (the phone app).
    resident_visible: bool | None = None
    retention_days_required: int | None = Field(default=None, ge=1, le=3650)
    status: Literal["ON", "OFF", "VLOST", "DEFECT", "UNKNOWN"] | None = None
    manufacturer: str | None = None
    model: str | None = None
    resolution: str | None = None
    rtsp_url: str | None = Field(default=None, pattern=r"^rtsps?://")

    @model_validator(mode="after")
    def _coords(self) -> ChannelFields:
        if self.longitude is not None or self.latitude is not None:
            vocab.check_coordinates(self.longitude, self.latitude)
        return self


class ChannelIn(ChannelFields):
    id: str
    name: str = Field(min_length=1, max_length=200)

    _gbid = field_validator("id")(_gb)


class ChannelOut(_Out):
    id: str
    name: str
    kind: str
    device_id: str | None
    unit_id: int | None
    department: str | None
    division_code: str
    parent_id: str | None
    point_class: int | None
    coverage: str | None
    tier: str | None
    ptz_type: int | None
    longitude: float | None
    latitude: float | None
    address: str | None
    key_site: bool
    resident_visible: bool = False
    retention_days_required: int
    status: str
    networked: bool
    manufacturer: str | None
    model: str | None
    resolution: str | None
    rtsp_url: str | None


class ChannelFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    division: str | None = None
    department: str | None = None
    unit_id: int | None = None
    device_id: str | None = None
    point_class: int | None = None
    coverage: str | None = None
    tier: str | None = None
    status: str | None = None
    kind: str | None = "camera"
    key_site: bool | None = None
    networked: bool | None = None
    q: str | None = None
    #: Restrict to these channel ids (authorization scopes narrow listings through this).
    bbox: tuple[float, float, float, float] | None = None
