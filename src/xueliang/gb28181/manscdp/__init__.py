"""MANSCDP (监控报警联网系统控制描述协议) XML bodies: a tolerant decoder and strict encoders.

Sans-IO: bytes in, :class:`ManscdpMessage` out; keyword arguments in, bytes out.

One command family a module:

* :mod:`.document`: the document both ways, what every family shares: :func:`decode` (the
  encodings real devices get wrong, the quirks, the safety of the parser, the size limits),
  :class:`ManscdpError`, the standard's names, the writer, any ``<Query>`` and the bare
  ``<Result>`` answer;
* :mod:`.catalog`: catalog items, Response parts and the subscription's Notify;
* :mod:`.device`: DeviceInfo, DeviceStatus and the Keepalive;
* :mod:`.records`: RecordInfo and the MediaStatus that ends a playback or download;
* :mod:`.alarm`: the Alarm notify;
* :mod:`.position`: the MobilePosition notify;
* :mod:`.control`: ``<Control>`` bodies (DeviceControl with PTZCmd, DeviceConfig).

This package re-exports every public name the module had.
"""

from __future__ import annotations

from xueliang.gb28181.manscdp.alarm import Alarm, encode_alarm_notify
from xueliang.gb28181.manscdp.catalog import (
    CatalogItem,
    encode_catalog_notify,
    encode_catalog_response,
    split_catalog,
)
from xueliang.gb28181.manscdp.control import CONFIG_SECTIONS, config_sections, encode_control
from xueliang.gb28181.manscdp.device import (
    DeviceInfo,
    DeviceStatus,
    Keepalive,
    encode_device_info_response,
    encode_device_status_response,
    encode_keepalive,
)
from xueliang.gb28181.manscdp.document import (
    LIST_TAGS,
    MAX_BODY_BYTES,
    MAX_ITEMS,
    ROOTS,
    FieldValue,
    ManscdpError,
    ManscdpMessage,
    canonical_name,
    decode,
    encode_query,
    encode_response_result,
)
from xueliang.gb28181.manscdp.position import MobilePosition, encode_mobile_position
from xueliang.gb28181.manscdp.records import (
    RecordItem,
    encode_media_status,
    encode_record_info_response,
)

__all__ = [
    "CONFIG_SECTIONS",
    "LIST_TAGS",
    "MAX_BODY_BYTES",
    "MAX_ITEMS",
    "ROOTS",
    "Alarm",
    "CatalogItem",
    "DeviceInfo",
    "DeviceStatus",
    "FieldValue",
    "Keepalive",
    "ManscdpError",
    "ManscdpMessage",
    "MobilePosition",
    "RecordItem",
    "canonical_name",
    "config_sections",
    "decode",
    "encode_alarm_notify",
    "encode_catalog_notify",
    "encode_catalog_response",
    "encode_control",
    "encode_device_info_response",
    "encode_device_status_response",
    "encode_keepalive",
    "encode_media_status",
    "encode_mobile_position",
    "encode_query",
    "encode_record_info_response",
    "encode_response_result",
    "split_catalog",
]
