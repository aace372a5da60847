from __future__ import annotations

import pytest
from _sip_samples import ALL, INVITE, MESSAGE, OK, REGISTER
from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.gb28181.sip import SipParseError, StreamFramer, parse_message

STREAM_MESSAGES = [REGISTER, MESSAGE, INVITE, OK]
# TCP peers send CRLF keep-alives between messages
STREAM = b"\r\n\r\n".join(STREAM_MESSAGES)


def drain(framer: StreamFramer) -> list[bytes]:
    out = []
    while (data := framer.next_message()) is not None:
        out.append(data)
    return out


def test_whole_stream_in_one_feed() -> None:
    framer = StreamFramer()
    framer.feed(STREAM)
    assert drain(framer) == STREAM_MESSAGES
    assert framer.keepalives == 3
    assert framer.buffered == 0


def test_byte_by_byte_gives_the_same_messages() -> None:
    framer = StreamFramer()
    out: list[bytes] = []
    for i in range(len(STREAM)):
        framer.feed(STREAM[i : i + 1])
        out.extend(drain(framer))
    assert out == STREAM_MESSAGES
    assert framer.keepalives == 3


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40))
def test_random_chunks_give_the_same_messages(sizes: list[int]) -> None:
    framer = StreamFramer()
    out: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(STREAM):
        size = sizes[i % len(sizes)]
        framer.feed(STREAM[pos : pos + size])
        pos += size
        i += 1
        out.extend(framer.messages())
    assert out == STREAM_MESSAGES
    for data in out:
        parse_message(data)


def test_compact_and_lowercase_content_length() -> None:
    body_len = str(len(MESSAGE.partition(b"\r\n\r\n")[2])).encode()
    compact = MESSAGE.replace(b"Content-Length: " + body_len, b"l: " + body_len)
    lower = MESSAGE.replace(b"Content-Length: " + body_len, b"CONTENT-length  :" + body_len)
    framer = StreamFramer()
    framer.feed(compact + lower + REGISTER)
    assert framer.messages() == [compact, lower, REGISTER]


def test_missing_content_length_means_empty_body_on_streams() -> None:
    no_length = REGISTER.replace(b"Content-Length: 0\r\n", b"")
    framer = StreamFramer()
    framer.feed(no_length + OK)
    assert framer.messages() == [no_length, OK]


def test_lf_only_stream() -> None:
    lf = REGISTER.replace(b"\r\n", b"\n")
    framer = StreamFramer()
    framer.feed(lf + lf)
    assert framer.messages() == [lf, lf]


def test_oversized_body_is_refused_and_skipped_without_buffering() -> None:
    framer = StreamFramer(max_body_size=1000)
    huge = INVITE.replace(b"Content-Length: ", b"Content-Length: 5000\r\nX-Old: ", 1)
    head = huge.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    framer.feed(head)
    with pytest.raises(SipParseError) as info:
        framer.next_message()
    assert info.value.status == 513
    # the 5000 body bytes arrive in pieces and are dropped, never held
    for _ in range(10):
        framer.feed(b"b" * 500)
        assert framer.buffered == 0
        assert framer.next_message() is None
    framer.feed(REGISTER)
    assert framer.next_message() == REGISTER


def test_oversized_header_block_is_refused_with_bounded_memory() -> None:
    framer = StreamFramer(max_header_size=2000)
    framer.feed(b"REGISTER sip:a SIP/2.0\r\n")
    errors = 0
    for _ in range(100):
        framer.feed(b"X-Junk: " + b"j" * 90 + b"\r\n")
        try:
            framer.next_message()
        except SipParseError as exc:
            assert exc.status == 513
            errors += 1
        assert framer.buffered <= 2100
    assert errors == 1
    framer.feed(b"\r\n" + REGISTER)  # end of the bad header block, then a good message
    assert framer.messages() == [REGISTER]


def test_bad_content_length_is_an_error_and_framer_recovers() -> None:
    bad = REGISTER.replace(b"Content-Length: 0", b"Content-Length: lots")
    framer = StreamFramer()
    framer.feed(bad + OK)
    with pytest.raises(SipParseError):
        framer.next_message()
    assert framer.next_message() == OK


def test_every_sample_frames_alone() -> None:
    for data in ALL.values():
        framer = StreamFramer()
        framer.feed(data)
        assert framer.messages() == [data]


def test_oversized_header_block_arriving_whole_skips_its_body_too() -> None:
    framer = StreamFramer(max_header_size=600)
    fat = MESSAGE.replace(b"User-Agent: IP Camera", b"User-Agent: " + b"x" * 700)
    framer.feed(fat + REGISTER)
    with pytest.raises(SipParseError) as info:
        framer.next_message()
    assert info.value.status == 513
    assert framer.next_message() == REGISTER
