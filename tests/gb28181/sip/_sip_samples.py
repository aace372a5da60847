"""Real-looking GB/T 28181 SIP messages, as devices and platforms send them."""

from __future__ import annotations

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

REGISTER_AUTH = (
    b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1796571839\r\n"
    b"From: <sip:34020000001320000001@3402000000>;tag=2043466181\r\n"
    b"To: <sip:34020000001320000001@3402000000>\r\n"
    b"Call-ID: 1011047669\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
    b'Authorization: Digest username="34020000001320000001", realm="3402000000", '
    b'nonce="44010b73623249f6916a6acf7c316b8e", uri="sip:34020000002000000001@3402000000", '
    b'response="9625d92bb6ed2f2e8d5b0e2a3a6c2f01", algorithm=MD5\r\n'
    b"Max-Forwards: 70\r\n"
    b"User-Agent: IP Camera\r\n"
    b"Expires: 3600\r\n"
    b"X-GB-Ver: 3.0\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

KEEPALIVE_BODY = (
    b'<?xml version="1.0" encoding="GB2312"?>\r\n'
    b"<Notify>\r\n"
    b"<CmdType>Keepalive</CmdType>\r\n"
    b"<SN>43</SN>\r\n"
    b"<DeviceID>34020000001320000001</DeviceID>\r\n"
    b"<Status>OK</Status>\r\n"
    b"</Notify>\r\n"
)

MESSAGE = (
    b"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK2066101355\r\n"
    b"From: <sip:34020000001320000001@3402000000>;tag=1618289416\r\n"
    b"To: <sip:34020000002000000001@3402000000>\r\n"
    b"Call-ID: 1477846254\r\n"
    b"CSeq: 20 MESSAGE\r\n"
    b"Content-Type: Application/MANSCDP+xml\r\n"
    b"Max-Forwards: 70\r\n"
    b"User-Agent: IP Camera\r\n"
    b"Content-Length: " + str(len(KEEPALIVE_BODY)).encode() + b"\r\n"
    b"\r\n" + KEEPALIVE_BODY
)

SDP = (
    b"v=0\r\n"
    b"o=34020000002000000001 0 0 IN IP4 192.168.1.10\r\n"
    b"s=Play\r\n"
    b"c=IN IP4 192.168.1.10\r\n"
    b"t=0 0\r\n"
    b"m=video 30000 RTP/AVP 96 97 98 99\r\n"
    b"a=recvonly\r\n"
    b"a=rtpmap:96 PS/90000\r\n"
    b"a=rtpmap:98 H264/90000\r\n"
    b"a=rtpmap:97 MPEG4/90000\r\n"
    b"a=rtpmap:99 H265/90000\r\n"
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
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n"
    b"\r\n" + SDP
)

UNAUTHORIZED = (
    b"SIP/2.0 401 Unauthorized\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport=5060;branch=z9hG4bK1371463273;"
    b"received=10.0.0.7\r\n"
    b"From: <sip:34020000001320000001@3402000000>;tag=2043466181\r\n"
    b"To: <sip:34020000001320000001@3402000000>;tag=99887766\r\n"
    b"Call-ID: 1011047669\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b'WWW-Authenticate: Digest realm="3402000000", nonce="44010b73623249f6916a6acf7c316b8e", '
    b"algorithm=MD5\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport=5060;branch=z9hG4bK1796571839\r\n"
    b"From: <sip:34020000001320000001@3402000000>;tag=2043466181\r\n"
    b"To: <sip:34020000001320000001@3402000000>;tag=99887766\r\n"
    b"Call-ID: 1011047669\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
    b"Expires: 3600\r\n"
    b"Date: 2024-05-09T10:11:12.345\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

ALL = {
    "register": REGISTER,
    "register_auth": REGISTER_AUTH,
    "message": MESSAGE,
    "invite": INVITE,
    "unauthorized": UNAUTHORIZED,
    "ok": OK,
}
