"""RTP parsing/building, packetizing, RFC 4571 TCP framing and the per-SSRC receiver."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.media.rtp import (
    Rfc4571Deframer,
    RtpError,
    RtpPacket,
    RtpPacketizer,
    RtpReceiver,
    TimestampUnwrapper,
    be32,
    build_rtp,
    frame_rfc4571,
    parse_rtp,
)

# -- parse / build --------------------------------------------------------------------------


@given(st.binary(min_size=4, max_size=16), st.data())
def test_be32_reads_the_big_endian_word_at_its_offset(buf: bytes, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(buf) - 4))
    assert be32(buf, i) == int.from_bytes(buf[i : i + 4], "big")


@given(
    payload=st.binary(max_size=300),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload_type=st.integers(0, 127),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    extension=st.none() | st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=12)),
    padding=st.integers(0, 255),
)
def test_build_parse_roundtrip(
    payload: bytes,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload_type: int,
    marker: bool,
    csrcs: list[int],
    extension: tuple[int, bytes] | None,
    padding: int,
) -> None:
    if extension is not None:
        extension = (extension[0], extension[1] + bytes(-len(extension[1]) % 4))
    raw = build_rtp(
        payload,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload_type=payload_type,
        marker=marker,
        csrcs=csrcs,
        extension=extension,
        padding=padding,
    )
    for data in (raw, bytearray(raw), memoryview(raw)):
        p = parse_rtp(data)
        assert bytes(p.payload) == payload
        assert (p.version, p.sequence, p.timestamp, p.ssrc) == (2, sequence, timestamp, ssrc)
        assert (p.payload_type, p.marker, p.padding) == (payload_type, marker, padding > 0)
        assert p.csrc_count == len(csrcs) and list(p.csrcs) == csrcs
        assert p.extension is (extension is not None)
        if extension is not None:
            assert (p.extension_profile, p.extension_data) == extension
    assert isinstance(parse_rtp(raw).payload, bytes)
    assert isinstance(parse_rtp(memoryview(raw)).payload, memoryview)


def test_parse_known_bytes() -> None:
    raw = bytes.fromhex("80e0 0102 00000003 0bebc201") + b"PS"
    p = parse_rtp(raw)
    assert (p.marker, p.payload_type, p.sequence, p.timestamp, p.ssrc) == (
        True,
        96,
        0x0102,
        3,
        200000001,
    )
    assert p.payload == b"PS"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x80\x60\x00", "short"),
        (bytes.fromhex("40600001000000000000002a") + b"x", "version"),
        (bytes.fromhex("a0600001000000000000002a") + b"ab\x05", "padding"),
        (bytes.fromhex("a0600001000000000000002a") + b"ab\x00", "padding"),
        (bytes.fromhex("90600001000000000000002a") + b"\xbe\xde", "extension"),
        (bytes.fromhex("90600001000000000000002a") + b"\xbe\xde\x00\x02abcd", "extension"),
        (bytes.fromhex("83600001000000000000002a") + b"\x00" * 8, "CSRC"),
    ],
)
def test_parse_rejects(raw: bytes, reason: str) -> None:
    with pytest.raises(RtpError):
        parse_rtp(raw)


@settings(max_examples=500)
@given(st.binary(max_size=80))
def test_parse_fuzz_only_rtp_error(data: bytes) -> None:
    try:
        p = parse_rtp(data)
    except RtpError:
        return
    assert p.version == 2 and len(p.payload) <= len(data) - 12


@settings(max_examples=300)
@given(st.binary(min_size=12, max_size=60), st.integers(0, 59), st.integers(0, 255))
def test_parse_fuzz_mutated_valid_packet(tail: bytes, index: int, value: int) -> None:
    raw = bytearray(build_rtp(tail, sequence=1, timestamp=2, ssrc=3, padding=4))
    raw[index % len(raw)] = value
    try:
        p = parse_rtp(bytes(raw))
    except RtpError:
        return
    assert 12 + 4 * p.csrc_count + len(p.payload) <= len(raw)


# -- packetizer ----------------------------------------------------------------------------


def test_packetizer_splits_on_mtu_with_marker_on_last() -> None:
    pk = RtpPacketizer(0x1234, payload_type=96, mtu=100, sequence=65533)
    payload = bytes(range(256)) * 2
    packets = [parse_rtp(raw) for raw in pk.packetize(payload, 0x1_0000_0005)]
    assert len(packets) == 6  # 88 payload bytes per packet
    assert [p.sequence for p in packets] == [65533, 65534, 65535, 0, 1, 2]
    assert [p.marker for p in packets] == [False] * 5 + [True]
    assert {p.timestamp for p in packets} == {5}
    assert {p.ssrc for p in packets} == {0x1234}
    assert all(len(p.payload) <= 88 for p in packets)
    assert b"".join(bytes(p.payload) for p in packets) == payload
    assert pk.sequence == 3
    nxt = parse_rtp(pk.packetize(b"x", 9, marker=False)[0])
    assert nxt.sequence == 3 and not nxt.marker and nxt.payload == b"x"


def test_packetizer_rfc4571_framing() -> None:
    pk = RtpPacketizer(7, mtu=50, rfc4571=True)
    framed = pk.packetize(b"a" * 100, 1)
    deframer = Rfc4571Deframer()
    packets = deframer.feed(b"".join(framed))
    assert [len(p) for p in packets] == [50, 50, 12 + 100 - 2 * 38]
    assert b"".join(bytes(parse_rtp(p).payload) for p in packets) == b"a" * 100


def test_frame_rfc4571() -> None:
    assert frame_rfc4571(b"\x80" * 12) == b"\x00\x0c" + b"\x80" * 12
    with pytest.raises(ValueError):
        frame_rfc4571(bytes(70000))


# -- RFC 4571 deframer -----------------------------------------------------------------------


def _packets(n: int, ssrc: int = 0xCAFE, size: int = 40, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [
        build_rtp(
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, size))),
            sequence=i,
            timestamp=i * 3600,
            ssrc=ssrc,
            marker=i % 3 == 0,
        )
        for i in range(n)
    ]


def _interleaved(packet: bytes, channel: int = 0) -> bytes:
    return b"$" + bytes((channel,)) + len(packet).to_bytes(2, "big") + packet


def test_deframer_mixed_prefixes_fed_byte_by_byte() -> None:
    packets = _packets(30)
    stream = b"".join(
        _interleaved(p, i % 4) if i % 2 else frame_rfc4571(p) for i, p in enumerate(packets)
    )
    deframer = Rfc4571Deframer()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += deframer.feed(stream[i : i + 1])
        assert deframer.buffered <= 4 + 12 + 40
    assert out == packets
    assert deframer.resyncs == 0 and deframer.discarded == 0 and deframer.packets == 30


@given(st.lists(st.integers(1, 200), min_size=1, max_size=40), st.integers(0, 3))
def test_deframer_any_chunking(cuts: list[int], seed: int) -> None:
    packets = _packets(20, seed=seed)
    stream = b"".join(
        _interleaved(p) if seed % 2 and i % 3 == 0 else frame_rfc4571(p)
        for i, p in enumerate(packets)
    )
    deframer = Rfc4571Deframer()
    out: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out += deframer.feed(memoryview(stream)[pos : pos + step])
        pos += step
        i += 1
    assert out == packets


def test_deframer_passes_interleaved_rtcp() -> None:
    packets = _packets(6)
    sender_report = bytes.fromhex("80c80006 0000cafe") + bytes(20)
    stream = b"".join(_interleaved(p) for p in packets[:3])
    stream += _interleaved(sender_report, channel=1)
    stream += b"".join(_interleaved(p) for p in packets[3:])
    deframer = Rfc4571Deframer()
    assert deframer.feed(stream) == [*packets[:3], sender_report, *packets[3:]]
    assert deframer.resyncs == 0


def test_deframer_resyncs_after_garbage_using_ssrc() -> None:
    packets = _packets(20)
    garbage = bytes(random.Random(5).randrange(256) for _ in range(777))
    stream = b"".join(frame_rfc4571(p) for p in packets[:10]) + garbage
    stream += b"".join(frame_rfc4571(p) for p in packets[10:])
    deframer = Rfc4571Deframer()
    out: list[bytes] = []
    for i in range(0, len(stream), 97):
        out += deframer.feed(stream[i : i + 97])
    assert out[:10] == packets[:10]
    # Everything after the garbage is recovered, possibly after a bogus "packet" or two.
    assert out[-10:] == packets[10:]
    assert deframer.resyncs >= 1 and deframer.discarded > 0


def test_deframer_resyncs_without_known_ssrc() -> None:
    packets = _packets(10, ssrc=0x01020304)
    stream = b"\x13\x37garbage!" + b"".join(frame_rfc4571(p) for p in packets)
    out = Rfc4571Deframer().feed(stream)
    assert out == packets


def test_deframer_truncated_packet_mid_stream() -> None:
    """A connection that restarts mid-packet: the cut packet is lost, the rest recovered."""
    packets = _packets(12)
    framed = [frame_rfc4571(p) for p in packets]
    stream = b"".join(framed[:5]) + framed[5][:9] + b"".join(framed[6:])
    deframer = Rfc4571Deframer()
    out: list[bytes] = []
    for i in range(0, len(stream), 13):
        out += deframer.feed(stream[i : i + 13])
    valid = [p for p in out if p in packets]
    assert valid[:5] == packets[:5]
    assert packets[7:] == valid[-5:]


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.integers(1, 500))
def test_deframer_fuzz_random_input(data: bytes, step: int) -> None:
    deframer = Rfc4571Deframer(max_packet=1500)
    for i in range(0, len(data), step):
        for packet in deframer.feed(data[i : i + step]):
            assert 12 <= len(packet) <= 1500 and packet[0] & 0xC0 == 0x80
        assert deframer.buffered <= 1500 + 20


def test_deframer_memory_bounded_under_megabytes_of_garbage() -> None:
    rng = random.Random(42)
    deframer = Rfc4571Deframer(max_packet=2000)
    for packet in _packets(5):
        deframer.feed(frame_rfc4571(packet))
    highest = 0
    for _ in range(64):
        out = deframer.feed(rng.randbytes(32 * 1024))
        highest = max(highest, deframer.buffered)
        assert all(12 <= len(p) <= 2000 for p in out)
    assert highest <= 2000 + 20
    # and the stream is recovered afterwards
    good = _packets(6, seed=9)
    out = deframer.feed(b"".join(frame_rfc4571(p) for p in good))
    assert out[-5:] == good[-5:]


# -- receiver ------------------------------------------------------------------------------


def _pkt(seq: int, ts: int = 0, ssrc: int = 1, marker: bool = False) -> RtpPacket:
    """A packet whose payload is the unwrapped sequence number, to identify it later."""
    return parse_rtp(
        build_rtp(
            seq.to_bytes(8, "big"), sequence=seq & 0xFFFF, timestamp=ts, ssrc=ssrc, marker=marker
        )
    )


def _seqs(packets: list[RtpPacket]) -> list[int]:
    return [p.sequence for p in packets]


def test_receiver_in_order() -> None:
    rx = RtpReceiver()
    out: list[RtpPacket] = []
    for i in range(100):
        out += rx.push(_pkt(i, ts=i * 3600), now=i * 0.04)
    assert _seqs(out) == list(range(100))
    assert (rx.received, rx.lost, rx.duplicates, rx.reordered, rx.expected) == (100, 0, 0, 0, 100)
    assert rx.loss_fraction == 0.0
    assert rx.jitter == pytest.approx(0.0, abs=1e-6)
    assert rx.last_packet_at == pytest.approx(99 * 0.04)
    assert [p.ext_sequence for p in out] == list(range(100))


def test_receiver_reorders_within_window_and_drops_duplicates() -> None:
    order = list(range(200))
    rng = random.Random(3)
    for i in range(10, 200, 10):  # shuffle within blocks of 10 (the first packet sets the start)
        block = order[i : i + 10]
        rng.shuffle(block)
        order[i : i + 10] = block
    arrivals = []
    for s in order:
        arrivals.append(s)
        if s % 7 == 0:
            arrivals.append(s)  # duplicate
    rx = RtpReceiver(window=32, max_delay=10.0)
    out: list[RtpPacket] = []
    for k, s in enumerate(arrivals):
        out += rx.push(_pkt(s, ts=s * 100), now=k * 0.001)
    out += rx.flush()
    assert _seqs(out) == list(range(200))
    assert rx.duplicates == len(range(0, 200, 7))
    assert rx.lost == 0 and rx.reordered > 0
    assert rx.received == len(arrivals)


def test_receiver_gives_up_when_window_full() -> None:
    rx = RtpReceiver(window=8, max_delay=10.0)
    out: list[RtpPacket] = []
    for s in range(0, 5):
        out += rx.push(_pkt(s), 0.0)
    for s in range(6, 20):  # 5 never arrives
        out += rx.push(_pkt(s), 0.0)
    assert _seqs(out)[:5] == [0, 1, 2, 3, 4]
    assert 5 not in _seqs(out) and _seqs(out)[5] == 6
    assert rx.lost == 1 and rx.expected == 20
    assert rx.loss_fraction == pytest.approx(1 / 20)
    assert rx.buffered == 0
    # 5 arriving now is late, not delivered
    assert rx.push(_pkt(5), 0.1) == []
    assert rx.late == 1 and rx.duplicates == 0


def test_receiver_gives_up_after_max_delay_via_poll() -> None:
    rx = RtpReceiver(window=100, max_delay=0.05)
    assert _seqs(rx.push(_pkt(10), 0.0)) == [10]
    assert rx.push(_pkt(12), 0.01) == []
    assert rx.push(_pkt(13), 0.02) == []
    assert rx.poll(0.03) == []
    assert _seqs(rx.poll(0.07)) == [12, 13]
    assert rx.lost == 1


def test_receiver_sequence_wraparound() -> None:
    rx = RtpReceiver()
    seqs = [65530 + i for i in range(12)]
    arrive = seqs[:4] + [seqs[5], seqs[4]] + seqs[6:]  # a swap right at the wrap
    out: list[RtpPacket] = []
    for i, s in enumerate(arrive):
        out += rx.push(_pkt(s, ts=s), i * 0.01)
    assert _seqs(out) == [s & 0xFFFF for s in seqs]
    assert [p.ext_sequence for p in out] == seqs
    assert rx.expected == 12 and rx.lost == 0 and rx.reordered == 1


def test_receiver_timestamp_wraparound_unwraps() -> None:
    rx = RtpReceiver()
    out: list[RtpPacket] = []
    for i in range(10):
        ts = (0xFFFFFFFF - 3 * 3600 + i * 3600) & 0xFFFFFFFF
        out += rx.push(_pkt(i, ts=ts), i * 0.04)
    ext = [p.ext_timestamp for p in out]
    assert ext == sorted(ext) and ext[-1] - ext[0] == 9 * 3600
    assert ext[-1] > 0xFFFFFFFF
    assert rx.jitter == pytest.approx(0.0, abs=1e-6)


def test_receiver_jitter_matches_rfc3550() -> None:
    rng = random.Random(1)
    rx = RtpReceiver()
    expected = 0.0
    prev: tuple[float, int] | None = None
    for i in range(200):
        ts = i * 3600
        now = i * 0.04 + rng.uniform(0, 0.01)
        rx.push(_pkt(i, ts=ts), now)
        if prev is not None:
            d = abs((now - prev[0]) * 90000 - (ts - prev[1]))
            expected += (d - expected) / 16
        prev = (now, ts)
    assert rx.jitter == pytest.approx(expected)
    assert 0 < rx.jitter_seconds < 0.01


def test_receiver_sender_restart_after_probation() -> None:
    rx = RtpReceiver()
    out: list[RtpPacket] = []
    for s in range(10):
        out += rx.push(_pkt(s), 0.0)
    assert rx.push(_pkt(40000), 0.1) == []  # a wild jump: held on probation
    out += rx.push(_pkt(40001), 0.2)
    out += rx.push(_pkt(40002), 0.3)
    assert _seqs(out) == [*range(10), 40000, 40001, 40002]
    assert rx.restarts == 1 and rx.lost == 0 and rx.expected == 13


def test_receiver_ignores_a_single_stray_jump() -> None:
    rx = RtpReceiver()
    out: list[RtpPacket] = []
    for s in range(5):
        out += rx.push(_pkt(s), 0.0)
    out += rx.push(_pkt(30000), 0.0)
    for s in range(5, 8):
        out += rx.push(_pkt(s), 0.0)
    assert _seqs(out) == list(range(8)) and rx.restarts == 0


def test_receiver_ssrc_handling() -> None:
    fixed = RtpReceiver(ssrc=1)
    assert fixed.push(_pkt(0, ssrc=2), 0.0) == []
    assert fixed.foreign == 1 and fixed.received == 0
    follow = RtpReceiver()
    out = follow.push(_pkt(100, ssrc=1), 0.0) + follow.push(_pkt(102, ssrc=1), 0.0)
    out += follow.push(_pkt(7, ssrc=2), 0.0) + follow.push(_pkt(8, ssrc=2), 0.0)
    assert _seqs(out) == [100, 102, 7, 8]
    assert follow.ssrc == 2 and follow.ssrc_changes == 1 and follow.lost == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=300),
    st.randoms(use_true_random=False),
    st.integers(0, 0xFFFF),
)
def test_receiver_properties(actions: list[int], rnd: random.Random, start: int) -> None:
    """Whatever the loss/duplication/reordering: output strictly increasing, no duplicates,
    every delivered packet was sent, counters add up."""
    sent = list(range(start, start + len(actions)))
    arrivals: list[int] = []
    for s, action in zip(sent, actions, strict=True):
        if action == 0:
            continue  # lost
        arrivals.append(s)
        if action == 1:
            arrivals.append(s)  # duplicate
    for i in range(len(arrivals) - 1):
        if rnd.random() < 0.2:
            j = min(len(arrivals) - 1, i + rnd.randrange(1, 6))
            arrivals[i], arrivals[j] = arrivals[j], arrivals[i]
    rx = RtpReceiver(window=16, max_delay=1.0)
    out: list[RtpPacket] = []
    for k, s in enumerate(arrivals):
        out += rx.push(_pkt(s), k * 0.01)
        assert rx.buffered <= 16
    out += rx.flush()
    ext = [p.ext_sequence for p in out]
    assert ext == sorted(set(ext))
    original = [int.from_bytes(p.payload, "big") for p in out]
    assert set(original) <= set(sent)
    if out:
        assert [e - ext[0] for e in ext] == [o - original[0] for o in original]
    assert [p.sequence for p in out] == [o & 0xFFFF for o in original]
    assert rx.received == len(arrivals)
    if out:
        span = ext[-1] - ext[0] + 1
        assert span - len(out) <= rx.lost


def test_timestamp_unwrapper() -> None:
    u = TimestampUnwrapper(33)
    top = (1 << 33) - 10
    assert u.unwrap(top) == top
    assert u.unwrap(5) == top + 15
    assert u.unwrap((1 << 33) - 20) == top - 10  # small step back across the wrap
    assert u.unwrap(100) == (1 << 33) + 100


def test_deframer_follows_a_sender_that_restarts_with_a_new_ssrc() -> None:
    # A camera that reboots mid-connection comes back with another SSRC: the frames that carry
    # it are taken up (after a resync), the new SSRC is learnt, and it is the one that guides
    # the next resync: garbage then does not hide what follows.
    before, after = _packets(10, ssrc=0xAAAA0001), _packets(20, ssrc=0xBBBB0002, seed=1)
    garbage = bytes(random.Random(9).randrange(256) for _ in range(500))
    stream = b"".join(frame_rfc4571(p) for p in before + after[:10]) + garbage
    stream += b"".join(frame_rfc4571(p) for p in after[10:])
    deframer = Rfc4571Deframer()
    out: list[bytes] = []
    for i in range(0, len(stream), 61):
        out += deframer.feed(stream[i : i + 61])
    assert out[:10] == before
    assert after[1:10] == [p for p in out[10:] if p in after[:10]][-9:]  # the switch: a resync
    assert out[-10:] == after[10:]
    assert deframer.resyncs >= 2
