"""A Keepalive told apart and its device found by plain searches first (gb28181/answers.py): the
same answers as the regular expressions on every body, whatever its spelling."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.gb28181.answers import keepalive_device_id

KEEPALIVE = re.compile(rb"<\s*CmdType\s*>\s*Keepalive\s*<", re.I)
DEVICE_ID = re.compile(rb"<\s*DeviceID\s*>\s*(\d{20})\s*<", re.I)

PIECES = [
    b"<DeviceID>", b"<deviceid>", b"< DeviceID >", b"<DEVICEID>\n", b"</DeviceID>", b"DeviceID", b"<",
    b"34020000001320000001", b"3402000000132000000", b"340200000013200000012", b"00000000000000000000",
    b" ", b"\r\n", b"x", b"<CmdType>Keepalive</CmdType>", b"<cmdtype> keepalive <", b"<CmdType>Catalog</CmdType>",
    b"<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n", b"<SN>43</SN>", b"\xff\xfe",
]
bodies = st.one_of(st.lists(st.sampled_from(PIECES), max_size=14).map(b"".join), st.binary(max_size=200))


def reference_device_id(body: bytes) -> str:
    m = DEVICE_ID.search(body)
    return m.group(1).decode() if m else ""


@settings(max_examples=3000, deadline=None)
@given(bodies)
def test_the_device_of_a_keepalive_is_the_expressions_first_match(body: bytes) -> None:
    assert keepalive_device_id(body) == reference_device_id(body)


@settings(max_examples=2000, deadline=None)
@given(bodies, st.binary(max_size=420))
def test_a_keepalive_is_told_apart_as_the_expression_tells_it(body: bytes, padding: bytes) -> None:
    """The plain search for the usual spelling only ever finds what the expression finds in
    the first 400 bytes (the padding moves it across that edge)."""
    for b in (body, padding + body):
        plain = b.find(b"<CmdType>Keepalive<", 0, 400) >= 0
        assert (plain or KEEPALIVE.search(b[:400]) is not None) == (KEEPALIVE.search(b[:400]) is not None)


def test_the_usual_keepalive() -> None:
    body = (b'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
            b"<SN>43</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n")
    assert keepalive_device_id(body) == "34020000001320000001"
    assert keepalive_device_id(body.replace(b"<DeviceID>", b"<DeviceID> ")) == "34020000001320000001"
    # an earlier tag in another spelling wins, as the expression has it
    assert keepalive_device_id(b"<deviceid>11111111111111111111<" + body) == "11111111111111111111"
    assert keepalive_device_id(b"<Notify/>") == ""


def _keepalive_id_c() -> Any:
    from xueliang import _native

    name = "xueliang.gb28181.sip._sipscan"
    if not (_native._compiled(name) and _native._fresh((name,))):
        return None
    return importlib.import_module(name).keepalive_id


_C = _keepalive_id_c()
needs_c = pytest.mark.skipif(_C is None, reason="the _sipscan module is not built (or not from this source)")


@needs_c
@settings(max_examples=3000, deadline=None)
@given(bodies, st.binary(max_size=420))
def test_the_c_reads_a_keepalive_as_the_python_does(body: bytes, padding: bytes) -> None:
    """sip/_sipscan.c's keepalive_id gives a device only where answers.py's plain path gives the
    same one (a Keepalive in the first 400 bytes, the expression's first DeviceID); None leaves
    the body to the Python."""
    for b in (body, padding + body):
        got = _C(b)
        if got is not None:
            assert b.find(b"<CmdType>Keepalive<", 0, 400) >= 0 and KEEPALIVE.search(b[:400]) is not None
            assert got == keepalive_device_id(b) == reference_device_id(b), b


@needs_c
def test_the_c_reads_the_usual_keepalive() -> None:
    body = (b'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
            b"<SN>43</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n")
    assert _C(body) == "34020000001320000001"
    assert _C(body.replace(b"<DeviceID>", b"<DeviceID> ")) is None  # the expressions' to read
    assert _C(b"<deviceid>11111111111111111111<" + body) is None  # an earlier tag in another spelling
    assert _C(body.replace(b"Keepalive", b"Catalog")) is None
    assert _C(b" " * 390 + body) is None  # the CmdType beyond the first 400 bytes
    assert _C(body.replace(b"<DeviceID>34020000001320000001<", b"<DeviceID>3402000000132000000x<")) is None
    assert _C(b"") is None
    with pytest.raises(TypeError):
        _C("text")
    from xueliang.gb28181 import answers

    assert (answers._keepalive_id_c is not None) == (answers._native.extension("xueliang.gb28181.sip._sipscan") is not None)
