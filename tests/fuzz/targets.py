"""Coverage-guided fuzz targets (atheris, libFuzzer) for every parser that reads outside input.

    python -m tests.fuzz.targets <target> [libFuzzer flags] [corpus dirs or files]

Each target feeds one input to a parser and checks its contract: the parser returns a value or
raises the module's own error type (``SipParseError``, ``ManscdpError``, ``SdpError``,
``MansrtspError``, ``RtpError``, ``NalError``, ``SheetError``), never anything else; stream
parsers (SIP over TCP, RTP over TCP, PS) never raise at all and keep their buffers bounded;
where a serializer exists, what it writes parses back to the same value. Anything else escapes
the target, and libFuzzer reports it as a crash and writes the input to ``crash-<sha1>``.

Where a module wraps its parser in a last-resort ``except Exception`` (SIP, MANSCDP, SDP,
MANSRTSP), the target calls the parser under the net: an ``IndexError`` turned into "malformed
(IndexError)" is a bug too, just a quieter one.

The SIP and media modules are loaded as Python (``XUELIANG_PURE_PYTHON=1``): coverage instrumentation
only sees Python bytecode, not the mypyc build.
``sip_scan`` loads our C scans of SIP (sip/_sipscan.c) all the same, uninstrumented, and holds
them to the Python they stand in for.

``tests/fuzz/test_fuzz.py`` runs every target for a bounded number of runs in the suite;
``bench/fuzz.py`` runs them for longer. The corpus is ``tests/fuzz/corpus/<target>/``.
"""

from __future__ import annotations

import importlib
import os
import random
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

os.environ.setdefault("XUELIANG_PURE_PYTHON", "1")

import atheris

import xueliang  # noqa: F401  (its import guard goes into sys.meta_path before atheris's hook)

if TYPE_CHECKING:
    from xueliang import timetable
    from xueliang.gb28181 import manscdp, mansrtsp, sdp
    from xueliang.gb28181.cascade import invite
    from xueliang.gb28181.sip import digest, framing, message, uri
    from xueliang.gb28181.sip.errors import SipParseError
    from xueliang.maps import boundaries
    from xueliang.media import nal, ps, ps_rtp_in, rtp
    from xueliang.media.frame import Codec
    from xueliang.recording import mp4, playback
    from xueliang.registry import channel_list, spreadsheet, survey

#: What each target imports, instrumented for coverage (only that: instrumenting costs time at
#: start-up, and the suite starts every target).
_SIP = ["xueliang.gb28181.sip.errors"]
MODULES: dict[str, list[str]] = {
    "sip": [*_SIP, "xueliang.gb28181.sip.message"],
    "sip_uri": [*_SIP, "xueliang.gb28181.sip.uri"],
    "sip_digest": [*_SIP, "xueliang.gb28181.sip.digest"],
    "sip_stream": [*_SIP, "xueliang.gb28181.sip.framing", "xueliang.gb28181.sip.message"],
    "sip_scan": [*_SIP, "xueliang.gb28181.sip.message", "xueliang.gb28181.sip.digest", "xueliang.gb28181.sip.uri"],
    "manscdp": ["xueliang.gb28181.manscdp"],
    "sdp": ["xueliang.gb28181.sdp"],
    "mansrtsp": ["xueliang.gb28181.mansrtsp"],
    "rtp": ["xueliang.media.rtp"],
    "rtp_stream": ["xueliang.media.rtp"],
    "ps": ["xueliang.media.ps"],
    "ps_rtp_in": ["xueliang.media.rtp", "xueliang.media.ps", "xueliang.media.ps_rtp_in"],
    "nal": ["xueliang.media.nal", "xueliang.media.frame"],
    "sheet": ["xueliang.registry.spreadsheet", "xueliang.registry.survey",
              "xueliang.registry.channel_list"],
    "cascade_invite": [*_SIP, "xueliang.gb28181.sip.message", "xueliang.gb28181.sdp",
                       "xueliang.gb28181.cascade.invite"],
    "mp4": ["xueliang.recording.mp4"],
    "recording_stream": ["xueliang.recording.mp4", "xueliang.recording.playback"],
    "timetable": ["xueliang.timetable"],
    "boundaries": ["xueliang.maps.boundaries"],
}


def _load(name: str) -> None:
    """Import what target ``name`` needs under atheris's coverage instrumentation."""
    g = globals()
    with atheris.instrument_imports(include=["xueliang"]):
        for module in MODULES[name]:
            mod = importlib.import_module(module)
            g[module.rsplit(".", 1)[1]] = mod
    if "xueliang.gb28181.sip.errors" in sys.modules:
        g["SipParseError"] = sys.modules["xueliang.gb28181.sip.errors"].SipParseError
    if "xueliang.media.frame" in sys.modules:
        g["Codec"] = sys.modules["xueliang.media.frame"].Codec


class ContractBroken(AssertionError):
    """The parser answered in a way its contract does not allow."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise ContractBroken(what)


def _text(data: bytes) -> str:
    """Bytes as the SIP stack sees them (it decodes UTF-8 with surrogateescape)."""
    return data.decode("utf-8", "surrogateescape")


def _chunks(data: bytes, seed: int) -> list[bytes]:
    """Cut ``data`` into pieces whose sizes follow from ``seed`` (1..~64 bytes, varying)."""
    out: list[bytes] = []
    pos = 0
    step = seed or 1
    while pos < len(data):
        size = 1 + (step * 2654435761 >> 7) % 64
        out.append(data[pos : pos + size])
        pos += size
        step += 1
    return out


# -- SIP --------------------------------------------------------------------------------------


def _sip_view(m: message.SipRequest | message.SipResponse) -> tuple[Any, ...]:
    start = (m.method, m.uri) if isinstance(m, message.SipRequest) else (m.status, m.reason)
    headers = [(k, v) for k, _, v in m.headers._items if k != "content-length"]
    return (*start, headers, bytes(m.body))


def sip_message(data: bytes) -> None:
    """One datagram: SipParseError or a message whose helpers answer or raise SipParseError,
    and whose serialisation parses back to the same message."""
    try:
        m = message._parse(data)
    except SipParseError:
        return
    for helper in ("call_id", "cseq", "from_tag", "to_tag", "top_via", "branch",
                   "content_length", "expires", "content_type"):
        try:
            getattr(m, helper)
        except SipParseError:
            pass
    for name in ("Via", "Contact", "Route", "Record-Route"):
        m.headers.get_all(name)
    again = message._parse(m.serialize())
    _check(_sip_view(again) == _sip_view(m), "serialize() does not parse back to the message")


def sip_uri(data: bytes) -> None:
    """URI, name-addr, Via and parameter parsers: SipParseError or a value whose str()
    parses back to an equal value (uri.py's own promise)."""
    text = _text(data)
    for parse in (uri.parse_uri, uri.parse_name_addr, uri.parse_via):
        try:
            value = parse(text)
        except SipParseError:
            continue
        try:
            again = parse(str(value))
        except SipParseError as exc:
            raise ContractBroken(f"{parse.__name__}: str() of a parsed value does not parse: {exc}") from exc
        _check(again == value, f"{parse.__name__}: str() does not parse back to an equal value")
    uri.split_header_list(text)
    uri.parse_params(text)
    uri.header_param(text, "tag")
    try:
        uri.stamp_via(text, "192.0.2.1", 5060)
    except SipParseError:
        pass


def sip_digest(data: bytes) -> None:
    """Authorization and WWW-Authenticate values: SipParseError or credentials that verify
    (to True or False, never an exception); the one-call fast path of the parameter parser
    agrees with the checked loop."""
    text = _text(data)
    try:
        creds = digest.parse_authorization(text)
    except SipParseError:
        pass
    else:
        digest.verify(creds, "REGISTER", "password")
        digest.verify_ha1(creds, "REGISTER", "0" * 32, b"body")
        digest.NonceFactory(b"k" * 32).check(creds.nonce, 1_000.0, context="34020000001320000001")
    try:
        digest.parse_challenge(text)
    except SipParseError:
        pass
    try:
        _, params = digest._parse_auth_params(text)
    except SipParseError:
        return
    stripped = text.strip(" \t")
    head = stripped.split(None, 1)
    rest = head[1] if len(head) > 1 else ""
    if head and "=" in head[0]:
        rest = stripped
    try:
        checked = digest._checked_params(rest)
    except SipParseError:
        raise ContractBroken("the fast path accepted what the checked parser refuses") from None
    _check(checked == params, "the fast path and the checked parser disagree")


def sip_stream(data: bytes) -> None:
    """SIP over TCP: whatever the bytes and however they are cut, the framer never raises
    anything but SipParseError, stays bounded, and frames the same messages."""
    if not data:
        return
    seed, stream = data[0], data[1:]
    limits = {"max_header_size": 512, "max_body_size": 1024}

    def run(pieces: list[bytes]) -> list[bytes | str]:
        framer = framing.StreamFramer(**limits)
        out: list[bytes | str] = []
        for piece in pieces:
            framer.feed(piece)
            while True:
                try:
                    got = framer.next_message()
                except SipParseError as exc:
                    out.append(f"error {exc.status}")
                    continue
                if got is None:
                    break
                out.append(got)
            _check(framer.buffered <= 512 + 1024 + len(piece) + 4,
                   f"the framer holds {framer.buffered} bytes")
        return out

    whole = run([stream])
    cut = run(_chunks(stream, seed))
    _check(whole == cut, "the framer's output depends on how the stream is cut")
    for got in whole:
        if isinstance(got, bytes):
            try:
                message._parse(got)
            except SipParseError:
                pass


_SIPSCAN: list[Any] = []  # [the C module or None, its header scanner], once loaded


def _sipscan() -> tuple[Any, Any]:
    """The SIP scans in C (sip/_sipscan.c), loaded though the SIP modules run as Python here
    (XUELIANG_PURE_PYTHON only keeps ``_native.extension`` from handing it out); None when it is
    not built, or not from the source on disk."""
    if not _SIPSCAN:
        from xueliang import _native

        name = "xueliang.gb28181.sip._sipscan"
        mod = importlib.import_module(name) if _native._compiled(name) and _native._fresh((name,)) else None
        _SIPSCAN[:] = [mod, None if mod is None else mod.HeadScanner(message._EXACT, message._key_and_name).scan]
    return _SIPSCAN[0], _SIPSCAN[1]


def _sip_outcome(data: bytes, scan: Any) -> tuple[Any, ...]:
    try:
        m = message._parse_with(data, scan)
    except SipParseError as exc:
        return ("error", exc.reason, exc.status)
    start = (m.method, m.uri) if isinstance(m, message.SipRequest) else (m.status, m.reason)
    return (type(m).__name__, start, m.headers._items, m.headers._index(), m.body)


def sip_scan(data: bytes) -> None:
    """The C scans against the Python they stand in for (a pass-through when not built): a
    datagram parses to the same message or the same SipParseError with either header reader;
    the parameter list of any text (and of each header of that message) reads the same, or
    the C leaves it to the regexes (None)."""
    mod, scan = _sipscan()
    if mod is None:
        return
    got = _sip_outcome(data, scan)
    _check(got == _sip_outcome(data, None), "the C header scan and the Python loop disagree")
    texts = [_text(data)]
    if got[0] != "error":
        texts += [value for _, _, value in got[2]]
    port = int.from_bytes(data[:3], "big") - (1 << 23) if data else 5060
    for text in texts:  # each as a Via stamped with the message's first line as the source host
        stamped = mod.stamp_via(text, texts[0][:20], port)
        if not (text.isascii() and texts[0][:20].isascii()):
            _check(stamped is False, "the C stamped a Via that is not ASCII")
        else:
            _check(stamped == uri._stamp_via_fast_py(text, texts[0][:20], port),
                   "the C and the Python stamp a Via differently")
    for text in texts:
        fast = mod.parse_auth_params(text)
        if fast is None:
            continue
        try:
            want = digest._parse_auth_params_py(text)
        except SipParseError as exc:
            raise ContractBroken(f"the C read a parameter list the regexes refuse: {exc}") from None
        _check(fast == want and list(fast[1].items()) == list(want[1].items()),
               "the C and the regexes read a parameter list differently")


# -- MANSCDP, SDP, MANSRTSP ------------------------------------------------------------------


def _catalog_round_trip(msg: manscdp.ManscdpMessage, items: list[manscdp.CatalogItem]) -> None:
    try:
        # UTF-8: declared and valid, so read back as such; whether GB2312-declared bytes are
        # GBK or UTF-8 is a guess from the whole body (manscdp's doc), not a round trip.
        body = manscdp.encode_catalog_response(
            msg.sn, msg.device_id or "34020000001320000001", len(items), items, encoding="UTF-8"
        )
    except manscdp.ManscdpError:
        return  # a value the encoder refuses (it says so)
    again = manscdp.CatalogItem.from_message(manscdp.decode(body))
    _check(again == items, "a catalog does not survive encode → decode")


def manscdp_body(data: bytes) -> None:
    """A MANSCDP body in any encoding: ManscdpError or a message whose typed readers answer
    or raise ManscdpError; a catalog encodes and decodes back to the same items."""
    try:
        msg = manscdp.document._decode(data)
    except manscdp.ManscdpError:
        return
    readers: list[Callable[[manscdp.ManscdpMessage], object]] = [
        manscdp.DeviceInfo.from_message,
        manscdp.DeviceStatus.from_message,
        manscdp.Alarm.from_message,
        manscdp.MobilePosition.from_message,
        manscdp.Keepalive.from_message,
    ]
    for read in readers:
        try:
            read(msg)
        except manscdp.ManscdpError:
            pass
    for item in msg.items:
        try:
            manscdp.RecordItem.from_dict(item)
        except manscdp.ManscdpError:
            pass
    try:
        items = manscdp.CatalogItem.from_message(msg)
    except manscdp.ManscdpError:
        return
    _catalog_round_trip(msg, items)


def sdp_body(data: bytes) -> None:
    """An SDP: SdpError or a description whose properties answer; the simulator's answer to
    it (when it can make one) parses back with the same SSRC, session and time range."""
    try:
        offer = sdp._parse(data)
    except sdp.SdpError:
        return
    for prop in ("video", "media_port", "media_address", "protocol", "is_tcp", "payload_types",
                 "rtpmap", "setup", "connection", "media_direction", "ssrc_int", "transport"):
        try:
            getattr(offer, prop)
        except sdp.SdpError:
            pass
    try:
        answer = sdp.answer_offer(offer, "34020000001320000001", "192.0.2.7", 30000)
    except sdp.SdpError:
        return
    back = sdp._parse(answer)
    _check(back.ssrc == offer.ssrc, "the answer does not carry the offer's SSRC")
    _check((back.start_time, back.end_time) == (offer.start_time, offer.end_time),
           "the answer does not carry the offer's time range")
    _check(back.is_tcp == offer.is_tcp, "the answer changes the transport")


def mansrtsp_body(data: bytes) -> None:
    """A MANSRTSP body: MansrtspError or a request that the builders write back to the same
    action."""
    try:
        req = mansrtsp._parse(data)
    except mansrtsp.MansrtspError:
        return
    action = req.action
    try:
        if action == "pause":
            body = mansrtsp.pause(req.cseq)
        elif action == "teardown":
            body = mansrtsp.teardown(req.cseq)
        elif action == "seek":
            assert req.range_start is not None
            body = mansrtsp.play(req.cseq, seek_seconds=req.range_start, scale=req.scale)
        elif action == "speed":
            assert req.scale is not None
            body = mansrtsp.speed(req.cseq, req.scale)
        elif req.scale is not None:
            return  # resume at a speed (npt=now- with Scale): no builder writes that
        else:
            body = mansrtsp.resume(req.cseq)
    except mansrtsp.MansrtspError:
        return  # a value the builders refuse (a scale out of range, say)
    back = mansrtsp._parse(body)
    _check((back.action, back.cseq) == (action, req.cseq), "rebuilt request differs")
    if action in ("seek", "speed"):
        _check(back.scale == req.scale, "rebuilt scale differs")
    if action == "seek":
        _check(back.range_start == req.range_start, "rebuilt seek position differs")


# -- RTP, PS, NAL -----------------------------------------------------------------------------


def _rtp_view(p: rtp.RtpPacket) -> tuple[Any, ...]:
    return (p.marker, p.payload_type, p.sequence, p.timestamp, p.ssrc, p.csrcs,
            p.extension, p.extension_profile, bytes(p.extension_data), bytes(p.payload))


def rtp_packet(data: bytes) -> None:
    """One datagram: RtpError or a packet that build_rtp writes back (byte for byte when it
    has no padding); a memoryview parses like bytes; the receiver takes any packet."""
    try:
        p = rtp.parse_rtp(data)
    except rtp.RtpError:
        return
    _check(_rtp_view(rtp.parse_rtp(memoryview(data))) == _rtp_view(p), "memoryview parse differs")
    _check(_rtp_view(rtp.parse_rtp(bytearray(data))) == _rtp_view(p), "bytearray parse differs")
    built = rtp.build_rtp(
        p.payload, sequence=p.sequence, timestamp=p.timestamp, ssrc=p.ssrc,
        payload_type=p.payload_type, marker=p.marker, csrcs=p.csrcs,
        extension=(p.extension_profile, p.extension_data) if p.extension else None,
        padding=len(data) - 12 - 4 * p.csrc_count
        - (4 + len(p.extension_data) if p.extension else 0) - len(p.payload),
    )
    _check(_rtp_view(rtp.parse_rtp(built)) == _rtp_view(p), "build_rtp(parse_rtp(x)) differs")
    if not p.padding:
        _check(built == data, "build_rtp(parse_rtp(x)) != x")


def rtp_stream(data: bytes) -> None:
    """RTP over TCP (RFC 4571 and $-interleaved) into the receiver: never raises, holds at
    most max_packet + 20 bytes, every packet out is whole; the receiver stays bounded."""
    if not data:
        return
    seed, stream = data[0], data[1:]
    deframer = rtp.Rfc4571Deframer(max_packet=1500)
    receiver = rtp.RtpReceiver(window=8, max_delay=0.05)
    now = 0.0
    for piece in _chunks(stream, seed):
        packets = deframer.feed(piece)
        _check(deframer.buffered <= 1500 + 20, f"the deframer holds {deframer.buffered} bytes")
        for raw in packets:
            _check(12 <= len(raw) <= 1500, f"a {len(raw)}-byte packet came out")
            try:
                packet = rtp.parse_rtp(raw)
            except rtp.RtpError:
                continue
            now += 0.01
            receiver.push(packet, now)
            _check(receiver.buffered <= 8 + 1, f"the receiver holds {receiver.buffered} packets")
        receiver.poll(now + 1.0)
    receiver.flush()


def ps_stream(data: bytes) -> None:
    """RTP payloads of a program stream: the demuxer never raises and its buffer stays within
    max_frame_size (plus one PES header)."""
    if len(data) < 2:
        return
    demuxer = ps.PsDemuxer(max_frame_size=4096)
    seq = 0
    ts = 0
    flags = data[0]
    for i, piece in enumerate(_chunks(data[1:], data[1])):
        bit = (flags >> (i % 8)) & 1
        if bit and i % 3 == 0:
            ts += 3600
        seq += 2 if (bit and i % 5 == 4) else 1  # now and then a lost packet
        for frame in demuxer.feed(piece, ts & 0xFFFFFFFF, bool(bit), seq & 0xFFFF):
            _check(len(frame.data) <= 4096 + 64, f"a {len(frame.data)}-byte frame came out")
        _check(demuxer.buffered <= 2 * 4096 + 512, f"the demuxer holds {demuxer.buffered} bytes")
    demuxer.flush()


def ps_rtp_datagrams(data: bytes) -> None:
    """Datagrams into a stream's PsRtpInput (RFC 4571-framed in the input, so each datagram has
    its own length): each gives frames or a refusal (None), never an error; the reorder buffer
    and the demuxer stay bounded."""
    inp = ps_rtp_in.PsRtpInput(window=8, max_delay=0.05, max_frame_size=4096)
    datagrams = rtp.Rfc4571Deframer(max_packet=1500).feed(data)
    now = 0.0
    for d in datagrams:
        now += 0.01
        frames = inp.feed(d, now)
        _check(frames is None or isinstance(frames, list), f"feed gave {type(frames).__name__}")
        for frame in frames or ():
            _check(len(frame.data) <= 4096 + 64, f"a {len(frame.data)}-byte frame came out")
        _check(inp.receiver.buffered <= 8 + 1, f"the receiver holds {inp.receiver.buffered} packets")
        _check(inp.demuxer.buffered <= 2 * 4096 + 512, f"the demuxer holds {inp.demuxer.buffered} bytes")
    inp.poll(now + 1.0)


def nal_units(data: bytes) -> None:
    """SPS parsers raise NalError only; the Annex B helpers never raise; a split gives no
    empty NAL unit."""
    for parse in (nal.parse_h264_sps, nal.parse_h265_sps):
        try:
            parse(data)
        except nal.NalError:
            pass
    for codec in (Codec.H264, Codec.H265):
        try:
            nal.parse_sps(codec, data)
        except nal.NalError:
            pass
        nal.inspect_access_unit(codec, data)
        nal.is_keyframe(codec, data)
        nal.extract_parameter_sets(codec, data)
    nal.guess_video_codec(data)
    units = nal.split_annexb(data)
    _check(all(units), "split_annexb gave an empty NAL unit")
    nal.annexb_to_length_prefixed(data)
    try:
        nal.length_prefixed_to_annexb(data)
    except nal.NalError:
        pass


# -- spreadsheets -----------------------------------------------------------------------------


class _ReachedTheDatabase(Exception):
    """The import parsed the whole file and went on to the database (fine for the fuzzer)."""


def _no_database() -> Any:
    raise _ReachedTheDatabase


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never really suspends (the database is never reached)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    except _ReachedTheDatabase:
        return None
    finally:
        coro.close()
    raise ContractBroken("the import suspended without reaching the database")


def sheet(data: bytes) -> None:
    """A survey or channel-list file (xlsx, or csv in UTF-8/GBK): SheetError or rows; the
    imports never raise for a bad file (their report says what is wrong)."""
    if not data:
        return
    name = ("survey.csv", "channels.xlsx", "")[data[0] % 3]
    body = data[1:]
    try:
        raw = spreadsheet.read_raw_rows(body, name)
    except spreadsheet.SheetError:
        pass
    else:
        for required, known in (("单位名称", survey.FORM1_HEADERS),
                                ("点位编码", channel_list.CHANNEL_HEADERS)):
            try:
                spreadsheet.find_sheet(raw, required, known)
            except spreadsheet.SheetError:
                pass
    _run(survey.import_survey(_no_database, body, name, dry_run=True))  # type: ignore[arg-type]
    _run(channel_list.import_channels(_no_database, body, name, dry_run=True))  # type: ignore[arg-type]


def cascade_invite(data: bytes) -> None:
    """An upper platform's INVITE (whole SIP message) to our media dialogs: the dialogs never
    raise; every answer is a response to that request; when they accept, our SDP answer parses
    back with the upper's SSRC, session and the TCP role opposite to its own."""
    try:
        m = message._parse(data)
    except SipParseError:
        return
    if not isinstance(m, message.SipRequest):
        return
    d = invite.UpstreamDialogs(local_id="34020100002000000001", contact_host="192.0.2.7",
                               contact_port=5060, media_host="192.0.2.8", rng=random.Random(0))
    out = d.receive(m, 0.0, "192.0.2.1")
    for o in out:
        if isinstance(o, invite.MediaRequested):
            out += d.accept(o.call_id, 30000, 0.0)
            offer = o.offer
            for a in out:
                if isinstance(a, invite.Reply) and a.response.status == 200:
                    back = sdp._parse(a.response.body)
                    _check(back.ssrc == offer.ssrc, "the answer does not carry the upper's SSRC")
                    _check(back.transport == {"udp": "udp", "tcp-active": "tcp-active",
                                              "tcp-passive": "tcp-passive"}[offer.transport],
                           "the answer's TCP role is not ours")
    for o in out:
        if isinstance(o, invite.Reply):
            again = message._parse(o.response.serialize())
            _check(isinstance(again, message.SipResponse), "a reply is not a response")
            _check(again.call_id == m.call_id, "a reply to another call")
    d.tick(1000.0)


def mp4_boxes(data: bytes) -> None:
    """A recorded segment read back (recording/mp4.py): the init and every moof parse or raise
    Mp4Error; a moof that parses re-times to the same size and parses back with its decode
    times moved."""
    try:
        mp4.parse_init(data)
    except mp4.Mp4Error:
        pass
    for kind, p, e in mp4.boxes(data):
        _check(p <= e <= len(data), "a box beyond the data")
        if kind != b"moof":
            continue
        try:
            before = mp4.parse_moof(data, p, e)
        except mp4.Mp4Error:
            continue
        start = p - (16 if int.from_bytes(data[p - 16:p - 12], "big") == 1 and p >= 16
                     and data[p - 12:p - 8] == b"moof" else 8)
        try:
            out = mp4.retimed_moof(data[start:e], {t.track_id: 7 for t in before.trafs}, 3)
        except mp4.Mp4Error:
            continue
        _check(len(out) == e - start, "a re-timed moof changed size")
        after = mp4.parse_moof(out, p - start, len(out))
        _check(after.sequence == 3 or after.mfhd_at is None, "the sequence number was not set")
        if len({t.track_id for t in before.trafs}) == len(before.trafs):
            _check([t.decode_time for t in after.trafs] == [(t.decode_time or 0) + 7 for t in before.trafs],
                   "decode times not moved by 7")


def timetable_json(data: bytes) -> None:
    """A recording plan's weekly timetable as JSON, and clock times: TimetableError or a
    timetable that writes back to itself, answers whether a moment is on and when that changes."""
    import json
    from datetime import UTC, datetime, timedelta

    try:
        timetable.parse_clock(data.decode("utf-8", "replace"), end=bool(data[:1] == b"e"))
    except timetable.TimetableError:
        pass
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return
    try:
        table = timetable.parse_timetable(obj)
    except timetable.TimetableError:
        return
    _check(timetable.parse_timetable(table.as_list()) == table, "a timetable did not read back the same")
    t = datetime(2026, 12, 7, tzinfo=UTC) + timedelta(minutes=len(data) * 37 % timetable.WEEK)
    nxt = table.next_change(t)
    _check(nxt is None or (nxt > t and table.on(nxt) != table.on(t)), "next_change is not a change")


def recording_stream(data: bytes) -> None:
    """A segment read as a stream, as playback reads one wherever it lives
    (recording/playback.py): however the store cuts it into chunks (the first byte picks the
    cuts), the top-level boxes are those the whole-buffer walker finds, and the frames come out
    or none do; nothing raises."""
    seed, body = (data[0], data[1:]) if data else (0, b"")
    pieces = _chunks(body, seed)

    async def chunks() -> Any:
        for c in pieces:
            yield c

    async def read() -> list[tuple[bytes, bytes]]:
        got = [b async for b in playback.top_boxes(chunks())]
        async for _ in playback.segment_frames(chunks()):
            pass
        return got

    whole: list[tuple[bytes, bytes]] = []
    pos = 0
    for kind, _, end in mp4.boxes(body):
        whole.append((kind, body[pos:end]))
        pos = end
    _check(_run(read()) == whole, "the streamed boxes differ from the whole buffer's")


def division_boundaries(data: bytes) -> None:
    """A GeoJSON file of division boundaries (maps/boundaries.py): never raises; every feature
    read, each a (Multi)Polygon the registry can keep, or none with the problems named."""
    found, report = boundaries.parse(data)
    _check(report.ok == bool(found), "a report that is not ok, with boundaries (or ok without)")
    _check(report.ok or bool(report.problems), "refused without a reason")
    for b in found:
        _check(b.geometry["type"] in ("Polygon", "MultiPolygon") and b.code.isdigit(), "a boundary that is not one")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sip": sip_message,
    "sip_uri": sip_uri,
    "sip_digest": sip_digest,
    "sip_stream": sip_stream,
    "sip_scan": sip_scan,
    "manscdp": manscdp_body,
    "sdp": sdp_body,
    "mansrtsp": mansrtsp_body,
    "rtp": rtp_packet,
    "rtp_stream": rtp_stream,
    "ps": ps_stream,
    "ps_rtp_in": ps_rtp_datagrams,
    "nal": nal_units,
    "sheet": sheet,
    "cascade_invite": cascade_invite,
    "mp4": mp4_boxes,
    "timetable": timetable_json,
    "recording_stream": recording_stream,
    "boundaries": division_boundaries,
}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.targets {{{','.join(TARGETS)}}} [libFuzzer args]")
    target = TARGETS[argv[1]]
    _load(argv[1])
    sys.setrecursionlimit(2000)
    # libFuzzer runs argv[0] again for -merge=1 (through the shell): make that this module.
    atheris.Setup([f"{sys.executable} -m tests.fuzz.targets {argv[1]}", *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
