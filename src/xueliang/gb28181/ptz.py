"""PTZCmd (云台控制命令): the 8-byte front-end control command, carried as 16 hex characters.

Byte layout (GB/T 28181 appendix A.3):

    b1  0xA5
    b2  version << 4 | ((0xA + 0x5 + version) & 0xF)    → 0x0F for version 0
    b3  address, low 8 bits
    b4  command:
          0x00–0x3F  PTZ: bit0 right, bit1 left, bit2 down, bit3 up, bit4 zoom in, bit5 zoom out
          0x40–0x4F  focus/iris (FI): bit0 focus far, bit1 focus near, bit2 iris open, bit3 iris close
          0x81/0x82/0x83  set / call / delete preset (预置位)
          0x84/0x85  add / delete cruise point (巡航), 0x86 cruise speed, 0x87 dwell time, 0x88 start
          0x89  scan (扫描): b6 0 start, 1 set left edge, 2 set right edge; 0x8A scan speed
          0x8C/0x8D  auxiliary switch on / off
    b5  data 1: pan speed / focus speed / cruise group / scan group / aux number
    b6  data 2: tilt speed / iris speed / preset number / low 8 bits of a 12-bit value
    b7  data 3 (high nibble: zoom speed or the high 4 bits of a 12-bit value) | address high nibble
    b8  checksum: (b1 + ... + b7) mod 256

Stop = ``A50F0100000000B5``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PtzCommand",
    "PtzError",
    "decode",
    "encode",
]


class PtzError(ValueError):
    """A PTZCmd string is malformed (length, hex, header, checksum, contradictory bits)."""


# b4 command codes
RIGHT = 0x01
LEFT = 0x02
DOWN = 0x04
UP = 0x08
ZOOM_IN = 0x10
ZOOM_OUT = 0x20

FOCUS_FAR = 0x01
FOCUS_NEAR = 0x02
IRIS_OPEN = 0x04
IRIS_CLOSE = 0x08

PRESET_SET = 0x81
PRESET_CALL = 0x82
PRESET_DELETE = 0x83
CRUISE_ADD = 0x84
CRUISE_DELETE = 0x85
CRUISE_SPEED = 0x86
CRUISE_DWELL = 0x87
CRUISE_START = 0x88
SCAN = 0x89
SCAN_SPEED = 0x8A
AUX_ON = 0x8C
AUX_OFF = 0x8D

_KINDS: dict[int, str] = {
    PRESET_SET: "preset_set",
    PRESET_CALL: "preset_call",
    PRESET_DELETE: "preset_delete",
    CRUISE_ADD: "cruise_add",
    CRUISE_DELETE: "cruise_delete",
    CRUISE_SPEED: "cruise_speed",
    CRUISE_DWELL: "cruise_dwell",
    CRUISE_START: "cruise_start",
    SCAN: "scan",
    SCAN_SPEED: "scan_speed",
    AUX_ON: "aux_on",
    AUX_OFF: "aux_off",
}

_SCAN_ACTIONS = {0: "start", 1: "set_left", 2: "set_right"}


def _byte(name: str, v: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFF:
        raise PtzError(f"{name} must be an integer 0..255, got {v!r}")
    return v


def _nibble(name: str, v: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xF:
        raise PtzError(f"{name} must be an integer 0..15, got {v!r}")
    return v


def _direction(name: str, v: int) -> int:
    if v not in (-1, 0, 1) or isinstance(v, bool):
        raise PtzError(f"{name} must be -1, 0 or 1, got {v!r}")
    return v


def _check_code(code: int) -> None:
    if code <= 0x3F:
        if code & LEFT and code & RIGHT:
            raise PtzError("PTZ command sets both left and right")
        if code & UP and code & DOWN:
            raise PtzError("PTZ command sets both up and down")
        if code & ZOOM_IN and code & ZOOM_OUT:
            raise PtzError("PTZ command sets both zoom in and zoom out")
    elif 0x40 <= code <= 0x4F:
        if code & FOCUS_FAR and code & FOCUS_NEAR:
            raise PtzError("FI command sets both focus far and focus near")
        if code & IRIS_OPEN and code & IRIS_CLOSE:
            raise PtzError("FI command sets both iris open and iris close")
    elif code not in _KINDS:
        raise PtzError(f"unknown PTZ command byte 0x{code:02X}")


@dataclass(frozen=True, slots=True)
class PtzCommand:
    """One PTZCmd. Build with the class-method constructors; :meth:`encode` to 16 hex chars.

    ``code`` is b4, ``data1`` b5, ``data2`` b6, ``data3`` the high nibble of b7,
    ``address`` the 12-bit device address (b3 + low nibble of b7), ``version`` the high nibble of b2.
    """

    code: int
    data1: int = 0
    data2: int = 0
    data3: int = 0
    address: int = 1
    version: int = 0

    def __post_init__(self) -> None:
        _byte("command", self.code)
        _byte("data1", self.data1)
        _byte("data2", self.data2)
        _nibble("data3", self.data3)
        _nibble("version", self.version)
        if not isinstance(self.address, int) or not 0 <= self.address <= 0xFFF:
            raise PtzError(f"address must be an integer 0..4095, got {self.address!r}")
        _check_code(self.code)

    # ---- friendly constructors -------------------------------------------------------------

    @classmethod
    def move(
        cls,
        pan: int = 0,
        tilt: int = 0,
        zoom: int = 0,
        speed: int = 128,
        *,
        pan_speed: int | None = None,
        tilt_speed: int | None = None,
        zoom_speed: int | None = None,
        address: int = 1,
    ) -> PtzCommand:
        """Pan (-1 left, 1 right), tilt (-1 down, 1 up), zoom (-1 out/wide, 1 in/tele).

        ``speed`` (0..255) is used for pan and tilt; zoom speed (0..15) defaults to speed >> 4.
        Speeds of axes that do not move are sent as 0. ``move()`` with no direction is a stop.
        """
        _byte("speed", speed)
        code = 0
        if _direction("pan", pan) > 0:
            code |= RIGHT
        elif pan < 0:
            code |= LEFT
        if _direction("tilt", tilt) > 0:
            code |= UP
        elif tilt < 0:
            code |= DOWN
        if _direction("zoom", zoom) > 0:
            code |= ZOOM_IN
        elif zoom < 0:
            code |= ZOOM_OUT
        ps = speed if pan_speed is None else pan_speed
        ts = speed if tilt_speed is None else tilt_speed
        zs = (speed >> 4) if zoom_speed is None else zoom_speed
        return cls(
            code,
            ps if pan else 0,
            ts if tilt else 0,
            zs if zoom else 0,
            address=address,
        )

    @classmethod
    def stop(cls, *, address: int = 1) -> PtzCommand:
        """Stop all PTZ motion: ``A50F0100000000B5`` for address 1."""
        return cls(0, address=address)

    @classmethod
    def focus(cls, direction: int, speed: int = 128, *, address: int = 1) -> PtzCommand:
        """Focus: 1 far, -1 near, 0 stop focus/iris."""
        _byte("speed", speed)
        d = _direction("focus direction", direction)
        code = 0x40 | (FOCUS_FAR if d > 0 else FOCUS_NEAR if d < 0 else 0)
        return cls(code, speed if d else 0, 0, 0, address=address)

    @classmethod
    def iris(cls, direction: int, speed: int = 128, *, address: int = 1) -> PtzCommand:
        """Iris: 1 open (larger), -1 close (smaller), 0 stop focus/iris."""
        _byte("speed", speed)
        d = _direction("iris direction", direction)
        code = 0x40 | (IRIS_OPEN if d > 0 else IRIS_CLOSE if d < 0 else 0)
        return cls(code, 0, speed if d else 0, 0, address=address)

    @classmethod
    def fi_stop(cls, *, address: int = 1) -> PtzCommand:
        """Stop focus and iris (0x40)."""
        return cls(0x40, address=address)

    @classmethod
    def _preset(cls, code: int, n: int, address: int) -> PtzCommand:
        if not isinstance(n, int) or not 1 <= n <= 255:
            raise PtzError(f"preset number must be 1..255, got {n!r}")
        return cls(code, 0, n, 0, address=address)

    @classmethod
    def preset_set(cls, n: int, *, address: int = 1) -> PtzCommand:
        return cls._preset(PRESET_SET, n, address)

    @classmethod
    def preset_call(cls, n: int, *, address: int = 1) -> PtzCommand:
        return cls._preset(PRESET_CALL, n, address)

    @classmethod
    def preset_delete(cls, n: int, *, address: int = 1) -> PtzCommand:
        return cls._preset(PRESET_DELETE, n, address)

    @classmethod
    def cruise_add(cls, group: int, preset: int, *, address: int = 1) -> PtzCommand:
        """Add a preset to cruise group ``group`` (巡航点)."""
        return cls(CRUISE_ADD, _byte("group", group), _byte("preset", preset), address=address)

    @classmethod
    def cruise_delete(cls, group: int, preset: int = 0, *, address: int = 1) -> PtzCommand:
        """Delete a preset from a cruise group; preset 0 deletes the whole group."""
        return cls(CRUISE_DELETE, _byte("group", group), _byte("preset", preset), address=address)

    @classmethod
    def _twelve_bit(cls, code: int, group: int, value: int, address: int) -> PtzCommand:
        if not isinstance(value, int) or not 0 <= value <= 0xFFF:
            raise PtzError(f"value must be 0..4095, got {value!r}")
        return cls(code, _byte("group", group), value & 0xFF, value >> 8, address=address)

    @classmethod
    def cruise_speed(cls, group: int, speed: int, *, address: int = 1) -> PtzCommand:
        """Cruise speed, 12 bits (0..4095)."""
        return cls._twelve_bit(CRUISE_SPEED, group, speed, address)

    @classmethod
    def cruise_dwell(cls, group: int, seconds: int, *, address: int = 1) -> PtzCommand:
        """Cruise dwell time at each point, in seconds, 12 bits (0..4095)."""
        return cls._twelve_bit(CRUISE_DWELL, group, seconds, address)

    @classmethod
    def cruise_start(cls, group: int, *, address: int = 1) -> PtzCommand:
        """Start cruise group ``group``; a PTZ stop ends it."""
        return cls(CRUISE_START, _byte("group", group), 0, address=address)

    @classmethod
    def scan(cls, group: int, action: str = "start", *, address: int = 1) -> PtzCommand:
        """Auto scan: action ``start``, ``set_left`` or ``set_right`` (edges)."""
        for k, v in _SCAN_ACTIONS.items():
            if v == action:
                return cls(SCAN, _byte("group", group), k, address=address)
        raise PtzError(f"scan action must be start, set_left or set_right, got {action!r}")

    @classmethod
    def scan_speed(cls, group: int, speed: int, *, address: int = 1) -> PtzCommand:
        return cls._twelve_bit(SCAN_SPEED, group, speed, address)

    @classmethod
    def aux(cls, number: int, on: bool, *, address: int = 1) -> PtzCommand:
        """Auxiliary switch (辅助开关), e.g. wiper or light."""
        return cls(AUX_ON if on else AUX_OFF, _byte("aux number", number), 0, address=address)

    # ---- reading ---------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``ptz`` (includes stop), ``fi``, or the name of the preset/cruise/scan/aux command."""
        if self.code <= 0x3F:
            return "ptz"
        if self.code <= 0x4F:
            return "fi"
        return _KINDS[self.code]

    @property
    def is_stop(self) -> bool:
        """PTZ stop (0x00) or focus/iris stop (0x40)."""
        return self.code in (0x00, 0x40)

    @property
    def pan(self) -> int:
        """-1 left, 0 none, 1 right (PTZ commands only)."""
        if self.code > 0x3F:
            return 0
        return 1 if self.code & RIGHT else -1 if self.code & LEFT else 0

    @property
    def tilt(self) -> int:
        """-1 down, 0 none, 1 up."""
        if self.code > 0x3F:
            return 0
        return 1 if self.code & UP else -1 if self.code & DOWN else 0

    @property
    def zoom(self) -> int:
        """-1 out (wide), 0 none, 1 in (tele)."""
        if self.code > 0x3F:
            return 0
        return 1 if self.code & ZOOM_IN else -1 if self.code & ZOOM_OUT else 0

    @property
    def pan_speed(self) -> int:
        return self.data1 if self.code <= 0x3F else 0

    @property
    def tilt_speed(self) -> int:
        return self.data2 if self.code <= 0x3F else 0

    @property
    def zoom_speed(self) -> int:
        return self.data3 if self.code <= 0x3F else 0

    @property
    def focus_direction(self) -> int:
        """FI commands: 1 far, -1 near, 0 none."""
        if not 0x40 <= self.code <= 0x4F:
            return 0
        return 1 if self.code & FOCUS_FAR else -1 if self.code & FOCUS_NEAR else 0

    @property
    def iris_direction(self) -> int:
        """FI commands: 1 open, -1 close, 0 none."""
        if not 0x40 <= self.code <= 0x4F:
            return 0
        return 1 if self.code & IRIS_OPEN else -1 if self.code & IRIS_CLOSE else 0

    @property
    def preset(self) -> int | None:
        """Preset number for preset and cruise-point commands."""
        if self.code in (PRESET_SET, PRESET_CALL, PRESET_DELETE, CRUISE_ADD, CRUISE_DELETE):
            return self.data2
        return None

    @property
    def group(self) -> int | None:
        """Cruise or scan group number."""
        if CRUISE_ADD <= self.code <= SCAN_SPEED:
            return self.data1
        return None

    @property
    def value12(self) -> int:
        """12-bit value of speed/dwell commands: data3 << 8 | data2."""
        return self.data3 << 8 | self.data2

    @property
    def scan_action(self) -> str | None:
        if self.code != SCAN:
            return None
        return _SCAN_ACTIONS.get(self.data2, f"unknown({self.data2})")

    # ---- wire ------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        b = [
            0xA5,
            (self.version << 4) | ((0xA + 0x5 + self.version) & 0xF),
            self.address & 0xFF,
            self.code,
            self.data1,
            self.data2,
            (self.data3 << 4) | (self.address >> 8),
        ]
        b.append(sum(b) & 0xFF)
        return bytes(b)

    def encode(self) -> str:
        """16 uppercase hex characters."""
        return self.to_bytes().hex().upper()

    @classmethod
    def decode(cls, text: str | bytes) -> PtzCommand:
        return decode(text)


def encode(cmd: PtzCommand) -> str:
    return cmd.encode()


def decode(text: str | bytes) -> PtzCommand:
    """Parse a PTZCmd (16 hex chars, any case, surrounding whitespace ignored; or 8 raw bytes).

    Raises :class:`PtzError` on bad length, non-hex, wrong header, version nibble or checksum,
    an unknown command byte, or contradictory direction bits.
    """
    if isinstance(text, bytes | bytearray):
        if len(text) == 8:
            raw = bytes(text)
        else:
            try:
                text = bytes(text).decode("ascii")
            except UnicodeDecodeError:
                raise PtzError("PTZCmd must be 16 hex characters or 8 bytes") from None
    if isinstance(text, str):
        s = text.strip()
        if len(s) != 16:
            raise PtzError(f"PTZCmd must be 16 hex characters, got {len(s)}")
        try:
            raw = bytes.fromhex(s)
        except ValueError:
            raise PtzError(f"PTZCmd is not hexadecimal: {s!r}") from None
    if raw[0] != 0xA5:
        raise PtzError(f"PTZCmd must start with A5, got {raw[0]:02X}")
    version = raw[1] >> 4
    if raw[1] & 0xF != (0xA + 0x5 + version) & 0xF:
        raise PtzError(f"PTZCmd byte 2 check nibble is wrong: {raw[1]:02X}")
    if sum(raw[:7]) & 0xFF != raw[7]:
        raise PtzError(
            f"PTZCmd checksum mismatch: got {raw[7]:02X}, expected {sum(raw[:7]) & 0xFF:02X}"
        )
    address = raw[2] | ((raw[6] & 0xF) << 8)
    return PtzCommand(
        code=raw[3],
        data1=raw[4],
        data2=raw[5],
        data3=raw[6] >> 4,
        address=address,
        version=version,
    )
