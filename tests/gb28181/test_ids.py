"""GB/T 28181 identifiers: parsing, validation, type helpers, domain and division codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xueliang.gb28181.ids import (
    GbId,
    GbIdError,
    division_code_of,
    domain_of,
    is_business_group,
    is_channel_type,
    is_device_type,
    is_group,
    is_platform,
    is_valid_gb_id,
    is_virtual_organisation,
    parse_gb_id,
    type_code_of,
)

SERVER = "34020000002000000001"
CAMERA = "34020000001320000001"


def test_parse_server_id_all_parts() -> None:
    gb = parse_gb_id(SERVER)
    assert gb.raw == SERVER
    assert gb.center_code == "34020000"
    assert (gb.province, gb.city, gb.county, gb.grassroots) == ("34", "02", "00", "00")
    assert gb.industry == "00"
    assert gb.type_code == 200
    assert gb.type_name == "centre signalling server"
    assert gb.known_type
    assert gb.network == 0
    assert gb.network_name == "video private network"
    assert gb.sequence == "000001"
    assert gb.sequence7 == "0000001"
    assert gb.domain == "3402000000"
    assert gb.division_code == "3402"
    assert str(gb) == SERVER


def test_parse_camera_with_network_digit() -> None:
    gb = parse_gb_id("44030612011327123456")
    assert gb.type_code == 132
    assert gb.type_name == "IPC"
    assert gb.network == 7
    assert gb.network_name == "Internet"
    assert gb.sequence == "123456"
    assert gb.sequence7 == "7123456"
    assert gb.industry == "01"


def test_parse_strips_whitespace() -> None:
    assert parse_gb_id(f"  {CAMERA}\r\n").raw == CAMERA


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("3402000000200000001", "20 digits, got 19"),
        ("340200000020000000011", "20 digits, got 21"),
        ("", "20 digits, got 0"),
        ("3402000000200000000A", "'A'"),
        ("34020000002000000０01", "digits only"),  # full-width zero
    ],
)
def test_parse_errors_are_clear(value: str, fragment: str) -> None:
    with pytest.raises(GbIdError) as ei:
        parse_gb_id(value)
    assert fragment in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(GbIdError, match="string"):
        parse_gb_id(34020000002000000001)  # type: ignore[arg-type]


def test_unknown_type_allowed_but_flagged() -> None:
    gb = parse_gb_id("34020000009990000001")
    assert gb.type_code == 999
    assert gb.type_name is None
    assert not gb.known_type
    with pytest.raises(GbIdError, match="unknown type code 999"):
        parse_gb_id("34020000009990000001", strict=True)


def test_is_valid_gb_id() -> None:
    assert is_valid_gb_id(SERVER)
    assert is_valid_gb_id("34020000009990000001")
    assert not is_valid_gb_id("34020000009990000001", require_known_type=True)
    assert not is_valid_gb_id("3402000000")
    assert not is_valid_gb_id("3402000000200000000x")
    assert not is_valid_gb_id(None)
    assert not is_valid_gb_id(34020000002000000001)


def test_domain_of() -> None:
    assert domain_of(SERVER) == "3402000000"
    assert domain_of(parse_gb_id(SERVER)) == "3402000000"
    assert domain_of("3402000000") == "3402000000"
    with pytest.raises(GbIdError):
        domain_of("34020")


def test_type_helpers() -> None:
    assert is_device_type("34020000001180000001")  # NVR
    assert is_device_type("34020000001110000001")  # DVR
    assert not is_device_type(CAMERA)
    assert is_channel_type(CAMERA)
    assert is_channel_type("34020000001310000001")
    assert is_channel_type("34020000001380000001")  # mobile
    assert is_channel_type("34020000001210000001")  # video checkpoint
    assert not is_channel_type(SERVER)
    assert is_group("34020000002150000001") and is_business_group("34020000002150000001")
    assert is_group("34020000002160000001") and is_virtual_organisation("34020000002160000001")
    assert not is_group(CAMERA)
    assert is_platform(SERVER)
    assert not is_platform(CAMERA)
    # invalid IDs are simply "not of that type"
    assert not is_channel_type("nope")
    assert type_code_of(CAMERA) == 132
    with pytest.raises(GbIdError):
        type_code_of("nope")


@pytest.mark.parametrize(
    ("gb_id", "division"),
    [
        ("34020000002000000001", "3402"),
        ("34000000002000000001", "34"),
        ("11010500001320000001", "110105"),
        ("44030612001320000001", "44030612"),
        ("34001000001320000001", "340010"),
        ("00000000001320000001", ""),
    ],
)
def test_division_code_of(gb_id: str, division: str) -> None:
    assert division_code_of(gb_id) == division


@given(st.text(alphabet="0123456789", min_size=20, max_size=20))
def test_any_twenty_digits_parse_and_parts_recompose(s: str) -> None:
    gb = parse_gb_id(s)
    assert isinstance(gb, GbId)
    parts = gb.center_code + gb.industry + f"{gb.type_code:03d}" + str(gb.network) + gb.sequence
    assert parts == s
    assert gb.center_code + gb.industry + s[10:13] + gb.sequence7 == s
    assert s.startswith(gb.division_code)
    assert is_valid_gb_id(s)


@given(st.text(max_size=30))
def test_garbage_only_raises_gbiderror(s: str) -> None:
    try:
        gb = parse_gb_id(s)
    except GbIdError:
        assert not is_valid_gb_id(s.strip())
    else:
        assert len(gb.raw) == 20 and gb.raw.isdigit()
