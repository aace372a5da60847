"""PTZCmd: byte layout, known vectors, friendly constructors, strict decoding, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xueliang.gb28181 import ptz
from xueliang.gb28181.ptz import PtzCommand, PtzError


def _checksum(hex7: str) -> str:
    return f"{sum(bytes.fromhex(hex7)) & 0xFF:02X}"


def test_stop_known_vector() -> None:
    assert PtzCommand.stop().encode() == "A50F0100000000B5"
    cmd = ptz.decode("A50F0100000000B5")
    assert cmd == PtzCommand.stop()
    assert cmd.is_stop and cmd.kind == "ptz"
    assert (cmd.pan, cmd.tilt, cmd.zoom) == (0, 0, 0)
    assert PtzCommand.move() == PtzCommand.stop()


def test_left_with_speed_vector() -> None:
    # A5 0F 01 02 1F 00 00 -> checksum D6 (a vector seen in open implementations)
    assert PtzCommand.move(pan=-1, speed=0x1F).encode() == "A50F01021F0000D6"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"pan": 1}, 0x01),
        ({"pan": -1}, 0x02),
        ({"tilt": -1}, 0x04),
        ({"tilt": 1}, 0x08),
        ({"zoom": 1}, 0x10),
        ({"zoom": -1}, 0x20),
        ({"pan": 1, "tilt": 1}, 0x09),
        ({"pan": -1, "tilt": -1, "zoom": 1}, 0x16),
    ],
)
def test_direction_bits(kwargs: dict[str, int], code: int) -> None:
    raw = bytes.fromhex(PtzCommand.move(speed=0x40, **kwargs).encode())
    assert raw[0] == 0xA5 and raw[1] == 0x0F and raw[2] == 0x01
    assert raw[3] == code
    assert raw[7] == sum(raw[:7]) & 0xFF


def test_speeds_and_zoom_nibble() -> None:
    cmd = PtzCommand.move(pan=1, tilt=-1, zoom=-1, pan_speed=0x11, tilt_speed=0x22, zoom_speed=0xA)
    raw = bytes.fromhex(cmd.encode())
    assert raw[3] == 0x01 | 0x04 | 0x20
    assert (raw[4], raw[5]) == (0x11, 0x22)
    assert raw[6] == 0xA0  # zoom speed << 4 | address high nibble (0 for address 1)
    back = ptz.decode(cmd.encode())
    assert (back.pan, back.tilt, back.zoom) == (1, -1, -1)
    assert (back.pan_speed, back.tilt_speed, back.zoom_speed) == (0x11, 0x22, 0xA)
    # speeds of axes that do not move are 0; zoom speed defaults to speed >> 4
    only_pan = bytes.fromhex(PtzCommand.move(pan=1, speed=0xFF).encode())
    assert (only_pan[4], only_pan[5], only_pan[6]) == (0xFF, 0, 0)
    only_zoom = bytes.fromhex(PtzCommand.move(zoom=1, speed=0xFF).encode())
    assert only_zoom[6] == 0xF0


def test_preset_vectors() -> None:
    body = "A50F01820005"
    assert PtzCommand.preset_call(5).encode() == body + "00" + _checksum(body + "00")
    assert PtzCommand.preset_call(5).encode() == "A50F01820005003C"
    assert PtzCommand.preset_set(255).encode()[6:12] == "8100FF"
    assert PtzCommand.preset_delete(1).encode()[6:12] == "830001"
    cmd = ptz.decode("A50F01820005003C")
    assert cmd.kind == "preset_call" and cmd.preset == 5
    for bad in (0, 256, -1):
        with pytest.raises(PtzError, match="preset number"):
            PtzCommand.preset_call(bad)


def test_focus_and_iris_bytes() -> None:
    far = bytes.fromhex(PtzCommand.focus(1, speed=0x30).encode())
    assert (far[3], far[4], far[5]) == (0x41, 0x30, 0x00)
    near = bytes.fromhex(PtzCommand.focus(-1, speed=0x30).encode())
    assert near[3] == 0x42
    iris_open = bytes.fromhex(PtzCommand.iris(1, speed=0x50).encode())
    assert (iris_open[3], iris_open[4], iris_open[5]) == (0x44, 0x00, 0x50)
    iris_close = bytes.fromhex(PtzCommand.iris(-1).encode())
    assert iris_close[3] == 0x48
    assert PtzCommand.fi_stop().encode()[6:8] == "40"
    cmd = ptz.decode(PtzCommand.iris(-1).encode())
    assert cmd.kind == "fi" and cmd.iris_direction == -1 and cmd.focus_direction == 0
    assert ptz.decode(PtzCommand.fi_stop().encode()).is_stop


def test_cruise_scan_aux() -> None:
    assert PtzCommand.cruise_add(2, 7).encode()[6:14] == "84020700"
    assert PtzCommand.cruise_delete(2).encode()[6:14] == "85020000"
    speed = bytes.fromhex(PtzCommand.cruise_speed(3, 0xABC).encode())
    assert (speed[3], speed[4], speed[5], speed[6] >> 4) == (0x86, 3, 0xBC, 0xA)
    assert ptz.decode(PtzCommand.cruise_speed(3, 0xABC).encode()).value12 == 0xABC
    assert ptz.decode(PtzCommand.cruise_dwell(1, 30).encode()).kind == "cruise_dwell"
    assert PtzCommand.cruise_start(4).encode()[6:14] == "88040000"
    assert PtzCommand.scan(1).encode()[6:14] == "89010000"
    assert ptz.decode(PtzCommand.scan(1, "set_right").encode()).scan_action == "set_right"
    assert ptz.decode(PtzCommand.scan_speed(1, 100).encode()).kind == "scan_speed"
    assert PtzCommand.aux(1, True).encode()[6:8] == "8C"
    assert PtzCommand.aux(1, False).encode()[6:8] == "8D"
    with pytest.raises(PtzError):
        PtzCommand.cruise_speed(1, 4096)
    with pytest.raises(PtzError):
        PtzCommand.scan(1, "sideways")


def test_address_and_version() -> None:
    raw = bytes.fromhex(PtzCommand.stop(address=0x123).encode())
    assert raw[2] == 0x23 and raw[6] & 0x0F == 0x1
    assert ptz.decode(raw.hex()).address == 0x123
    v1 = PtzCommand(0, version=1).encode()
    assert v1[2:4] == "10"  # 1 << 4 | (0xA + 0x5 + 1) & 0xF
    assert ptz.decode(v1).version == 1
    with pytest.raises(PtzError, match="address"):
        PtzCommand.stop(address=0x1000)


def test_decode_is_liberal_about_case_and_whitespace() -> None:
    assert ptz.decode("  a50f0100000000b5\r\n") == PtzCommand.stop()
    assert ptz.decode(bytes.fromhex("A50F0100000000B5")) == PtzCommand.stop()
    assert ptz.decode(b"A50F0100000000B5") == PtzCommand.stop()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A50F0100000000", "16 hex"),
        ("A50F0100000000B500", "16 hex"),
        ("A50F01000000ZZB5", "not hexadecimal"),
        ("A60F0100000000B6", "start with A5"),
        ("A50E0100000000B4", "check nibble"),
        ("A50F0100000000B6", "checksum"),
        ("A50F01030000" + "00" + _checksum("A50F0103000000"), "left and right"),
        ("A50F010C0000" + "00" + _checksum("A50F010C000000"), "up and down"),
        ("A50F01300000" + "00" + _checksum("A50F0130000000"), "zoom in and zoom out"),
        ("A50F01430000" + "00" + _checksum("A50F0143000000"), "focus far and focus near"),
        ("A50F01FF0000" + "00" + _checksum("A50F01FF000000"), "unknown PTZ command"),
    ],
)
def test_decode_errors(text: str, fragment: str) -> None:
    with pytest.raises(PtzError, match=fragment):
        ptz.decode(text)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(PtzError):
        PtzCommand.move(pan=2)
    with pytest.raises(PtzError):
        PtzCommand.move(speed=256)
    with pytest.raises(PtzError):
        PtzCommand.focus(1, speed=-1)


_dir = st.sampled_from([-1, 0, 1])
_byte = st.integers(0, 255)
_addr = st.integers(0, 0xFFF)

valid_commands = st.one_of(
    st.builds(
        PtzCommand.move,
        _dir,
        _dir,
        _dir,
        _byte,
        pan_speed=_byte,
        tilt_speed=_byte,
        zoom_speed=st.integers(0, 15),
        address=_addr,
    ),
    st.builds(PtzCommand.focus, _dir, _byte, address=_addr),
    st.builds(PtzCommand.iris, _dir, _byte, address=_addr),
    st.builds(PtzCommand.preset_set, st.integers(1, 255), address=_addr),
    st.builds(PtzCommand.preset_call, st.integers(1, 255), address=_addr),
    st.builds(PtzCommand.preset_delete, st.integers(1, 255), address=_addr),
    st.builds(PtzCommand.cruise_add, _byte, _byte, address=_addr),
    st.builds(PtzCommand.cruise_delete, _byte, _byte, address=_addr),
    st.builds(PtzCommand.cruise_speed, _byte, st.integers(0, 4095), address=_addr),
    st.builds(PtzCommand.cruise_dwell, _byte, st.integers(0, 4095), address=_addr),
    st.builds(PtzCommand.cruise_start, _byte, address=_addr),
    st.builds(
        PtzCommand.scan, _byte, st.sampled_from(["start", "set_left", "set_right"]), address=_addr
    ),
    st.builds(PtzCommand.scan_speed, _byte, st.integers(0, 4095), address=_addr),
    st.builds(PtzCommand.aux, _byte, st.booleans(), address=_addr),
    st.builds(
        PtzCommand,
        code=st.integers(0, 0x3F).filter(lambda c: c & 3 != 3 and c & 12 != 12 and c & 48 != 48),
        data1=_byte,
        data2=_byte,
        data3=st.integers(0, 15),
        address=_addr,
        version=st.integers(0, 15),
    ),
)


@given(valid_commands)
def test_round_trip_all_valid_commands(cmd: PtzCommand) -> None:
    text = cmd.encode()
    assert len(text) == 16 and text == text.upper()
    raw = bytes.fromhex(text)
    assert raw[0] == 0xA5 and raw[7] == sum(raw[:7]) & 0xFF
    assert ptz.decode(text) == cmd
    assert ptz.decode(text.lower()) == cmd


@given(st.binary(min_size=8, max_size=8))
def test_decode_random_bytes_only_ptzerror(raw: bytes) -> None:
    try:
        cmd = ptz.decode(raw.hex())
    except PtzError:
        return
    assert cmd.encode() == raw.hex().upper()


@given(st.text(max_size=20))
def test_decode_random_text_only_ptzerror(text: str) -> None:
    try:
        cmd = ptz.decode(text)
    except PtzError:
        return
    assert cmd.encode() == text.strip().upper()
