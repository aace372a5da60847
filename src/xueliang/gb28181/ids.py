"""GB/T 28181 identifiers (编码): the 20-digit device, channel, platform and user IDs.

Layout (GB/T 28181 appendix D):

    [0:8]   centre code (中心编码), GB/T 2260 administrative division:
            province [0:2], city [2:4], county [4:6], grassroots unit [6:8]
    [8:10]  industry code (行业编码)
    [10:13] type code (类型编码): 111 DVR, 131 camera, 200 centre server, 215 business group, ...
    [13]    network identifier (网络标识)
    [14:20] sequence number (序号)

Some documents read [13:20] as a 7-digit sequence with no network digit; both readings are
exposed (``network`` / ``sequence`` and ``sequence7``).

Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CHANNEL_TYPE_CODES",
    "DEVICE_TYPE_CODES",
    "GROUP_TYPE_CODES",
    "NETWORK_NAMES",
    "TYPE_NAMES",
    "GbId",
    "GbIdError",
    "division_code_of",
    "domain_of",
    "is_business_group",
    "is_channel_type",
    "is_device_type",
    "is_group",
    "is_platform",
    "is_valid_gb_id",
    "is_virtual_organisation",
    "parse_gb_id",
    "type_code_of",
]

TYPE_NAMES: dict[int, str] = {
    111: "DVR",
    112: "video server",
    113: "encoder",
    114: "decoder",
    115: "video matrix",
    116: "audio decoder",
    117: "alarm controller",
    118: "NVR",
    121: "video checkpoint",
    130: "HVR",
    131: "camera",
    132: "IPC",
    133: "monitor",
    134: "alarm input",
    135: "alarm output",
    136: "voice input",
    137: "voice output",
    138: "mobile device",
    200: "centre signalling server",
    201: "web server",
    202: "media distribution server",
    203: "proxy server",
    204: "security server",
    205: "alarm server",
    206: "database server",
    207: "GIS server",
    208: "management server",
    209: "access gateway",
    210: "media storage server",
    211: "signalling security routing gateway",
    215: "business group",
    216: "virtual organisation",
    300: "centre user",
    400: "end user",
}
"""Type code (类型编码) → English name."""

NETWORK_NAMES: dict[int, str] = {
    0: "video private network",
    1: "video private network",
    2: "industry private network",
    3: "political-legal network",
    4: "police mobile network",
    5: "police information network",
    6: "e-government extranet",
    7: "Internet",
    8: "leased line",
}
"""Network identifier digit (网络标识) → English name."""

DEVICE_TYPE_CODES: frozenset[int] = frozenset(range(111, 131))
"""Front-end main devices (前端主设备): 111–130 (DVR, NVR, encoder, checkpoint, HVR, ...)."""

CHANNEL_TYPE_CODES: frozenset[int] = frozenset(range(131, 200)) | {121}
"""Types that appear as media channels: front-end peripherals 131–199 and video checkpoints (121)."""

GROUP_TYPE_CODES: frozenset[int] = frozenset({215, 216})
"""Catalog tree nodes: 215 business group (业务分组), 216 virtual organisation (虚拟组织)."""

PLATFORM_TYPE_CODE = 200


class GbIdError(ValueError):
    """A string is not a 20-digit GB/T 28181 ID; the message says why."""


@dataclass(frozen=True, slots=True)
class GbId:
    """A parsed 20-digit GB/T 28181 ID. Build it with :func:`parse_gb_id`."""

    raw: str

    @property
    def center_code(self) -> str:
        """Centre code (中心编码), digits [0:8]."""
        return self.raw[0:8]

    @property
    def province(self) -> str:
        return self.raw[0:2]

    @property
    def city(self) -> str:
        return self.raw[2:4]

    @property
    def county(self) -> str:
        return self.raw[4:6]

    @property
    def grassroots(self) -> str:
        """Grassroots unit (基层接入单位), digits [6:8]."""
        return self.raw[6:8]

    @property
    def industry(self) -> str:
        """Industry code (行业编码), digits [8:10]."""
        return self.raw[8:10]

    @property
    def type_code(self) -> int:
        """Type code (类型编码), digits [10:13], as an integer (e.g. 131)."""
        return int(self.raw[10:13])

    @property
    def type_name(self) -> str | None:
        """English name of the type code, or None when the code is not in :data:`TYPE_NAMES`."""
        return TYPE_NAMES.get(self.type_code)

    @property
    def known_type(self) -> bool:
        """False when the type code is not a known one (allowed, but flagged)."""
        return self.type_code in TYPE_NAMES

    @property
    def network(self) -> int:
        """Network identifier (网络标识), digit [13]."""
        return int(self.raw[13])

    @property
    def network_name(self) -> str | None:
        return NETWORK_NAMES.get(self.network)

    @property
    def sequence(self) -> str:
        """Sequence number (序号), digits [14:20] (reading with a network digit)."""
        return self.raw[14:20]

    @property
    def sequence7(self) -> str:
        """Sequence number in the 7-digit reading, digits [13:20] (no network digit)."""
        return self.raw[13:20]

    @property
    def domain(self) -> str:
        """SIP domain/realm derived from this ID: the first 10 digits."""
        return self.raw[0:10]

    @property
    def division_code(self) -> str:
        """Meaningful GB/T 2260 prefix of the centre code; see :func:`division_code_of`."""
        return division_code_of(self.raw)

    def __str__(self) -> str:
        return self.raw


def _check(s: object) -> str:
    if not isinstance(s, str):
        raise GbIdError(f"GB/T 28181 ID must be a string, not {type(s).__name__}")
    if len(s) != 20:
        shown = s if len(s) <= 40 else s[:40] + "..."
        raise GbIdError(f"GB/T 28181 ID must have 20 digits, got {len(s)} characters: {shown!r}")
    if not (s.isascii() and s.isdigit()):
        bad = next(c for c in s if not ("0" <= c <= "9"))
        raise GbIdError(f"GB/T 28181 ID must be decimal digits only, found {bad!r} in {s!r}")
    return s


def parse_gb_id(s: str, *, strict: bool = False) -> GbId:
    """Parse a 20-digit ID. Surrounding whitespace is ignored.

    An unknown type code is accepted (see :attr:`GbId.known_type`) unless ``strict`` is true.
    Raises :class:`GbIdError` with a clear message otherwise.
    """
    if isinstance(s, str):
        s = s.strip()
    gb = GbId(_check(s))
    if strict and not gb.known_type:
        raise GbIdError(f"GB/T 28181 ID {s!r} has an unknown type code {s[10:13]}")
    return gb


def is_valid_gb_id(s: object, *, require_known_type: bool = False) -> bool:
    """True when ``s`` is exactly 20 decimal digits (and, optionally, of a known type)."""
    if not isinstance(s, str):
        return False
    try:
        gb = GbId(_check(s))
    except GbIdError:
        return False
    return gb.known_type or not require_known_type


def _as_id(gb_id: str | GbId) -> GbId:
    return gb_id if isinstance(gb_id, GbId) else parse_gb_id(gb_id)


def type_code_of(gb_id: str | GbId) -> int:
    """The 3-digit type code of an ID as an integer. Raises :class:`GbIdError`."""
    return _as_id(gb_id).type_code


def _type_or_none(gb_id: str | GbId) -> int | None:
    try:
        return _as_id(gb_id).type_code
    except GbIdError:
        return None


def is_device_type(gb_id: str | GbId) -> bool:
    """Front-end main device (111–130: DVR, encoder, NVR, checkpoint, HVR...). False if invalid."""
    return _type_or_none(gb_id) in DEVICE_TYPE_CODES


def is_channel_type(gb_id: str | GbId) -> bool:
    """Media channel type (131–199: camera, IPC, alarm in/out, ...; also 121). False if invalid."""
    return _type_or_none(gb_id) in CHANNEL_TYPE_CODES


def is_group(gb_id: str | GbId) -> bool:
    """Business group (215) or virtual organisation (216). False if invalid."""
    return _type_or_none(gb_id) in GROUP_TYPE_CODES


def is_business_group(gb_id: str | GbId) -> bool:
    """Business group (业务分组, 215)."""
    return _type_or_none(gb_id) == 215


def is_virtual_organisation(gb_id: str | GbId) -> bool:
    """Virtual organisation (虚拟组织, 216)."""
    return _type_or_none(gb_id) == 216


def is_platform(gb_id: str | GbId) -> bool:
    """Centre signalling server, i.e. a platform (200). False if invalid."""
    return _type_or_none(gb_id) == PLATFORM_TYPE_CODE


def domain_of(server_id: str | GbId) -> str:
    """SIP domain/realm of a server ID: its first 10 digits (34020000002000000001 → 3402000000).

    A 10-digit domain is returned as is. Raises :class:`GbIdError` for anything else.
    """
    s = server_id.raw if isinstance(server_id, GbId) else server_id
    if isinstance(s, str):
        s = s.strip()
        if len(s) == 10 and s.isascii() and s.isdigit():
            return s
    return _as_id(s).raw[:10]


def division_code_of(gb_id: str | GbId) -> str:
    """GB/T 2260 division code of an ID's centre code, trailing ``00`` pairs stripped.

    34020000... → ``3402``; 11010500... → ``110105``; 44030612... → ``44030612``.
    An all-zero centre code gives ``""``. Raises :class:`GbIdError` for an invalid ID.
    """
    code = _as_id(gb_id).center_code
    while code.endswith("00"):
        code = code[:-2]
    return code
