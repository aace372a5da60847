"""SIP core micro-benchmarks: prints `name: value unit` lines.

    .venv/bin/python bench/sip_parse.py

`manscdp_decode_*`: MANSCDP bodies as devices send them after a registration (a DeviceInfo
answer, a one-camera Catalog) and as an NVR or lower platform does (20 cameras a MESSAGE).

`sip_register_storm_per_device` is the Python cost of one device's whole registration in
the sans-IO core (REGISTER -> 401 -> REGISTER with Authorization -> 200: parse, transaction
layer, digest, nonce, serialise), which bounds a 10,000-device storm.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from xueliang.gb28181 import manscdp
from xueliang.gb28181.sip import (
    NonceFactory,
    RequestReceived,
    SipRequest,
    StreamFramer,
    TransactionLayer,
    make_authorization,
    make_challenge,
    make_response,
    parse_authorization,
    parse_message,
    verify,
)

REGISTER = (
    b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1371463273\r\n"
    b"From: <sip:34020000001320000001@3402000000>;tag=2043466181\r\n"
    b"To: <sip:34020000001320000001@3402000000>\r\n"
    b"Call-ID: 1011047669\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
    b"Max-Forwards: 70\r\n"
    b"User-Agent: IP Camera\r\n"
    b"Expires: 3600\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

SDP = (
    b"v=0\r\no=34020000002000000001 0 0 IN IP4 192.168.1.10\r\ns=Play\r\n"
    b"c=IN IP4 192.168.1.10\r\nt=0 0\r\nm=video 30000 RTP/AVP 96 97 98\r\na=recvonly\r\n"
    b"a=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\na=rtpmap:97 MPEG4/90000\r\n"
    b"y=0200000001\r\n"
)
INVITE = (
    b"INVITE sip:34020000001320000001@192.168.1.64:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.10:5060;rport;branch=z9hG4bK8c1a2b3d4e5f\r\n"
    b"From: <sip:34020000002000000001@3402000000>;tag=598316730\r\n"
    b"To: <sip:34020000001320000001@3402000000>\r\n"
    b"Call-ID: 9f2b6d1e0a4c@192.168.1.10\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:34020000002000000001@192.168.1.10:5060>\r\n"
    b"Subject: 34020000001320000001:0200000001,34020000002000000001:0\r\n"
    b"Content-Type: APPLICATION/SDP\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

_ITEM = (
    "<Item><DeviceID>3402000000131{n:07d}</DeviceID><Name>东门广场球机 {n}</Name><Manufacturer>Hikvision</Manufacturer>"
    "<Model>DS-2DE4425IW</Model><Owner>Owner</Owner><CivilCode>340200</CivilCode><Address>东门广场</Address>"
    "<Parental>0</Parental><ParentID>34020000001180000001</ParentID><SafetyWay>0</SafetyWay>"
    "<RegisterWay>1</RegisterWay><Secrecy>0</Secrecy><Status>ON</Status><Longitude>118.38</Longitude>"
    "<Latitude>31.33</Latitude><Info><PTZType>1</PTZType></Info></Item>\r\n"
)


def _catalog(n: int) -> bytes:
    items = "".join(_ITEM.format(n=i) for i in range(n))
    return (
        '<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>17</SN>\r\n'
        f"<DeviceID>34020000001180000001</DeviceID>\r\n<SumNum>{n}</SumNum>\r\n<DeviceList Num=\"{n}\">\r\n"
        f"{items}</DeviceList>\r\n</Response>\r\n"
    ).encode("gb18030")


DEVICE_INFO = (
    b'<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>DeviceInfo</CmdType>\r\n<SN>18</SN>\r\n'
    b"<DeviceID>34020000001320000001</DeviceID>\r\n<DeviceName>IP CAMERA</DeviceName>\r\n<Result>OK</Result>\r\n"
    b"<Manufacturer>Hikvision</Manufacturer>\r\n<Model>DS-2CD2T47G2</Model>\r\n<Firmware>V5.7.3</Firmware>\r\n"
    b"<Channel>1</Channel>\r\n</Response>\r\n"
)

REALM = "3402000000"
PASSWORD = "12345678"
URI = "sip:34020000002000000001@3402000000"


def bench(name: str, fn: Callable[[], object], iterations: int, scale: float = 1.0) -> None:
    for _ in range(min(iterations, 1000)):  # warm up
        fn()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, (time.perf_counter() - start) / iterations)
    print(f"{name}: {best * 1e6 * scale:.2f} us")


def main() -> None:
    register = parse_message(REGISTER)
    assert isinstance(register, SipRequest)
    bench("sip_parse_register", lambda: parse_message(REGISTER), 20_000)
    bench("sip_parse_invite_sdp", lambda: parse_message(INVITE), 20_000)

    challenge = make_challenge(REALM, "0000000a4b2c1d9e8f7a6b5c4d3e2f1a")
    headers = [("WWW-Authenticate", challenge)]
    bench(
        "sip_serialize_response",
        lambda: make_response(register, 401, to_tag="8842", headers=headers).serialize(),
        20_000,
    )
    bench("sip_serialize_register", register.serialize, 20_000)

    auth = make_authorization(
        username="34020000001320000001",
        password=PASSWORD,
        challenge=challenge,
        method="REGISTER",
        uri=URI,
    )
    creds = parse_authorization(auth)
    bench("digest_parse_authorization", lambda: parse_authorization(auth), 20_000)
    bench("digest_verify", lambda: verify(creds, "REGISTER", PASSWORD), 20_000)
    nonces = NonceFactory(b"bench-secret")
    nonce = nonces.issue(1000.0)
    bench("nonce_issue", lambda: nonces.issue(1000.0), 20_000)
    bench("nonce_check", lambda: nonces.check(nonce, 1010.0), 20_000)

    catalog_1, catalog_20 = _catalog(1), _catalog(20)
    assert len(manscdp.decode(catalog_20).items) == 20
    bench("manscdp_decode_deviceinfo", lambda: manscdp.decode(DEVICE_INFO), 5_000)
    bench("manscdp_decode_catalog_1", lambda: manscdp.decode(catalog_1), 5_000)
    bench("manscdp_decode_catalog_20", lambda: manscdp.decode(catalog_20), 1_000)

    stream = REGISTER * 20

    def frame() -> None:
        framer = StreamFramer()
        framer.feed(stream)
        while framer.next_message() is not None:
            pass

    bench("tcp_frame_register", frame, 2_000, scale=1 / 20)

    # One device's whole registration through the sans-IO core.
    devices = 10_000
    first = [
        REGISTER.replace(b"z9hG4bK1371463273", b"z9hG4bKa%08d" % i)
        .replace(b"1011047669", b"c%08d" % i)
        .replace(b"34020000001320000001", b"340200000013%08d" % i)
        for i in range(devices)
    ]
    second = []
    for i, data in enumerate(first):
        device_id = f"340200000013{i:08d}"
        authorization = make_authorization(
            username=device_id,
            password=PASSWORD,
            challenge=make_challenge(REALM, nonces.issue(1000.0)),
            method="REGISTER",
            uri=URI,
        )
        second.append(
            data.replace(b"z9hG4bKa", b"z9hG4bKb")
            .replace(b"CSeq: 1 ", b"CSeq: 2 ")
            .replace(b"Expires:", b"Authorization: " + authorization.encode() + b"\r\nExpires:")
        )

    def storm() -> float:
        layer = TransactionLayer()
        addr = ("192.168.1.64", 5060)
        start = time.perf_counter()
        now = 1000.0
        for data in first:
            for event in layer.receive(parse_message(data), addr, now):
                if isinstance(event, RequestReceived) and event.transaction is not None:
                    answer = make_response(
                        event.request,
                        401,
                        to_tag="1",
                        headers=[("WWW-Authenticate", make_challenge(REALM, nonces.issue(now)))],
                    )
                    layer.respond(event.transaction, answer, now)
        for data in second:
            for event in layer.receive(parse_message(data), addr, now):
                if isinstance(event, RequestReceived) and event.transaction is not None:
                    request = event.request
                    value = request.headers.get("Authorization") or ""
                    got = parse_authorization(value)
                    ok = nonces.check(got.nonce, now) and verify(got, "REGISTER", PASSWORD)
                    answer = make_response(
                        request,
                        200 if ok else 403,
                        to_tag="1",
                        headers=[
                            ("Date", "2024-05-09T10:11:12.345"),
                            ("Contact", request.headers.get("Contact") or ""),
                            ("Expires", "3600"),
                        ],
                    )
                    layer.respond(event.transaction, answer, now)
        elapsed = time.perf_counter() - start
        assert layer.server_transactions == 2 * devices
        layer.handle_timer(now + 60)
        assert len(layer) == 0
        return elapsed

    best = min(storm() for _ in range(3))
    print(f"sip_register_storm_per_device: {best / devices * 1e6:.2f} us")
    print(f"sip_register_storm_10000_devices: {best:.3f} s")


if __name__ == "__main__":
    main()
