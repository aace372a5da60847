"""A Keepalive told apart and its device found by plain searches first (gb28181/answers.py): the
same answers as the regular expressions on every body, whatever its spelling."""

from __future__ import annotations

import re

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
