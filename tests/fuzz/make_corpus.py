"""Seed the fuzz corpus from the samples the tests already hold, and from the builders.

    python -m tests.fuzz.make_corpus OUT_DIR

writes OUT_DIR/<target>/<sha1> seed files: every string or bytes literal in tests/ that looks
like input for a target (real-device SIP messages, MANSCDP bodies in GB2312 and UTF-8, SDP,
MANSRTSP, digest headers), what the platform's own builders write, a few RTP/PS packets and
SPS NAL units from PyAV-encoded video, and survey and channel-list sheets (xlsx, csv UTF-8 and
GBK). ``bench/fuzz.py --seed`` then fuzzes from these and merges (``-merge=1``) into
``tests/fuzz/corpus``: the kept corpus is what survived the merge, not everything seeded here.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_SEED = 16 * 1024


def _literals() -> Iterable[bytes]:
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if "fuzz" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text("utf-8"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant):
                if isinstance(node.value, str):
                    yield node.value.encode("utf-8", "replace")
                elif isinstance(node.value, bytes):
                    yield node.value


def _classify(lit: bytes) -> list[str]:
    head = lit.lstrip(b"\r\n")[:40]
    out: list[str] = []
    if head.startswith(b"SIP/2.0 ") or head.split(b" ", 1)[0] in (
        b"REGISTER", b"MESSAGE", b"INVITE", b"ACK", b"BYE", b"INFO", b"NOTIFY", b"SUBSCRIBE",
        b"OPTIONS", b"CANCEL",
    ):
        out += ["sip", "sip_stream"]
        if head.startswith(b"INVITE "):
            out.append("cascade_invite")  # an upper's INVITE to our media dialogs
    if b"<?xml" in lit or b"<Query>" in lit or b"<Response>" in lit or b"<Notify>" in lit \
            or b"<Control>" in lit:
        out.append("manscdp")
    if b"v=0" in lit and b"m=" in lit:
        out.append("sdp")
    if b"RTSP/1.0" in lit:
        out.append("mansrtsp")
    if lit.startswith((b"sip:", b"sips:", b"<sip:", b'"')) or b"<sip:" in lit[:80] \
            or lit.startswith(b"SIP/2.0/"):
        out.append("sip_uri")
    if lit[:7].lower() == b"digest " or b'nonce="' in lit:
        out.append("sip_digest")
    return out


def _built() -> Iterable[tuple[str, bytes]]:
    from xueliang.gb28181 import manscdp, mansrtsp, sdp
    from xueliang.gb28181.sip import digest, message

    dev, plat = "34020000001320000001", "34020000002000000001"
    for enc in ("GB2312", "UTF-8"):
        yield "manscdp", manscdp.encode_catalog_response(1, dev, 2, [
            manscdp.CatalogItem(dev[:-1] + "2", name="东门口", civil_code="340102", parent_ids=[dev]),
            manscdp.CatalogItem(dev[:-1] + "3", name="学校北门 球机", ptz_type=1),
        ], encoding=enc)
        yield "manscdp", manscdp.encode_keepalive(7, dev, encoding=enc)
        yield "manscdp", manscdp.encode_query("RecordInfo", 3, dev, encoding=enc,
                                              StartTime="2024-01-01T00:00:00",
                                              EndTime="2024-01-01T01:00:00")
    yield "sdp", sdp.make_offer(plat, "192.0.2.1", 30000, "0200000001").encode()
    yield "sdp", sdp.make_offer(plat, "192.0.2.1", 30000, "1200000001", session="Playback",
                                transport="tcp-passive", channel_id=dev, start=1700000000,
                                end=1700003600).encode()
    yield "sdp", sdp.make_answer(dev, "192.0.2.9", 40000, "0200000001", setup="active").encode()
    for body in (mansrtsp.pause(1), mansrtsp.resume(2), mansrtsp.seek(3, 12.5),
                 mansrtsp.speed(4, -2.0), mansrtsp.teardown(5)):
        yield "mansrtsp", body.encode()
    challenge = digest.make_challenge("3402000000", "abc123", algorithm="MD5")
    yield "sip_digest", challenge.encode()
    req = message.make_request(
        "REGISTER", f"sip:{plat}@3402000000",
        via="SIP/2.0/UDP 192.0.2.5:5060;rport;branch=z9hG4bK1",
        from_=f"<sip:{dev}@3402000000>;tag=1", to=f"<sip:{dev}@3402000000>",
        call_id="1@192.0.2.5", cseq=1,
    )
    yield "sip", req.serialize()
    yield "sip_stream", b"\x05" + req.serialize() + b"\r\n\r\n" + req.serialize()


def _media() -> Iterable[tuple[str, bytes]]:
    from tests.media._media_clips import encode, has_encoder
    from xueliang.media import rtp
    from xueliang.media.frame import Codec
    from xueliang.media.ps_mux import PsMuxer

    for codec in (Codec.H264, Codec.H265):
        if not has_encoder(codec):
            continue
        frames, params = encode(codec, 64, 48, frames=4, gop=2, bframes=0)
        for ps_ in (params.sps, params.vps, params.pps):
            if ps_:
                yield "nal", ps_
        yield "nal", frames[0].data[:2000]
        muxer = PsMuxer(video=codec)
        packetizer = rtp.RtpPacketizer(200000001, mtu=400)
        payloads: list[bytes] = []
        packets: list[bytes] = []
        for f in frames[:3]:
            chunk = muxer.mux(f)
            payloads.append(chunk)
            packets += packetizer.packetize(chunk, f.pts & 0xFFFFFFFF)
        yield "rtp", packets[0]
        yield "rtp", packets[-1]
        yield "rtp_stream", b"\x03" + b"".join(rtp.frame_rfc4571(p) for p in packets[:6])
        yield "ps_rtp_in", b"".join(rtp.frame_rfc4571(p) for p in packets[:5])
        yield "ps", b"\xff\x05" + b"".join(payloads)[:6000]


def _sheets() -> Iterable[tuple[str, bytes]]:
    from tests.registry._sheets import csv_bytes, xlsx

    survey = [["主管部门：教育局"], ["序号", "单位名称", "平台类型", "摄像头数量", "存储天数"],
              ["1", "第一中学", "NVR", "海康 DS-2CD 共12台", "30天"]]
    channels = [["点位编码", "点位名称", "经度", "纬度", "点位类别"],
                ["34010200001320000001", "东门", "117.28", "31.86", "一类"]]
    yield "sheet", b"\x00" + (ROOT / "tests/registry/data/survey_gbk.csv").read_bytes()
    yield "sheet", b"\x00" + csv_bytes(survey, "gbk")
    yield "sheet", b"\x00" + csv_bytes(channels)
    yield "sheet", b"\x01" + xlsx(channels)
    yield "sheet", b"\x01" + xlsx(survey)


def main(out: Path) -> None:
    seeds: list[tuple[str, bytes]] = []
    for lit in _literals():
        if 4 <= len(lit) <= MAX_SEED:
            seeds += [(t, (b"\x07" + lit) if t == "sip_stream" else lit) for t in _classify(lit)]
    seeds += list(_built())
    seeds += list(_media())
    seeds += list(_sheets())
    for target, data in seeds:
        d = out / target
        d.mkdir(parents=True, exist_ok=True)
        (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
    counts: dict[str, int] = {}
    for target, _ in seeds:
        counts[target] = counts.get(target, 0) + 1
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
