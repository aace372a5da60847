"""In-dialog requests of a media session count only from the device (issue 10, item 3).

A BYE needs the Call-ID and tags of our INVITE, which anyone on the camera network who saw it
knows. From any other address than the device's, it must not end the stream (nor a MediaStatus
end a recording); from the device, it does.
"""

from __future__ import annotations

import asyncio

from xueliang.bus import EventBus
from xueliang.config import SipConfig
from xueliang.gb28181.endpoint import Incoming
from xueliang.gb28181.invite import GbDialogs, GbMediaSessions, MediaSession, _Dialog
from xueliang.gb28181.manscdp import encode_media_status
from xueliang.gb28181.registrar import DeviceSession
from xueliang.gb28181.service import SignallingService
from xueliang.gb28181.sip import (
    Dialog,
    SipRequest,
    format_via,
    generate_branch,
    make_request,
    make_response,
)

DEV = "34020000001320000051"
CH = "34020000001310000051"
DEVICE = ("192.0.2.10", 5060)
ATTACKER = ("192.0.2.66", 5060)


def _session(gb: GbMediaSessions, dialogs: GbDialogs, sig: SignallingService) -> tuple[MediaSession, Dialog]:
    device = DeviceSession(DEV, admission="accepted", online=True, registered=True, addr=DEVICE)
    s = MediaSession(gb, "live/" + CH, "play", CH, "0100000051", "udp")
    invite = sig.make_request("INVITE", device, CH, [("Content-Type", "APPLICATION/SDP")], b"v=0\r\n")
    ok = make_response(invite, 200, to_tag="dev-tag", headers=[("Contact", f"<sip:{CH}@{DEVICE[0]}:{DEVICE[1]}>")])
    dialog = Dialog.from_response(invite, ok)
    dialogs.by_call[dialog.call_id] = _Dialog(device, dialog, "")
    s.call_id = dialog.call_id
    gb.by_call[dialog.call_id] = s
    gb.by_name[s.name] = s
    return s, dialog


def _in_dialog(d: Dialog, method: str, body: bytes = b"") -> SipRequest:
    return make_request(method, d.local_contact or f"sip:x@{DEVICE[0]}", via=format_via("UDP", DEVICE[0], DEVICE[1],
                        generate_branch()), from_=f"<{d.remote_uri}>;tag={d.remote_tag}",
                        to=f"<{d.local_uri}>;tag={d.local_tag}", call_id=d.call_id, cseq=20,
                        headers=[("Content-Type", "Application/MANSCDP+xml")] if body else [], body=body)


async def test_bye_and_media_status_from_another_address_end_nothing() -> None:
    sig = SignallingService(SipConfig(password="x-pass-1", admission="open"), None, EventBus())  # type: ignore[arg-type]
    dialogs = GbDialogs(sig)
    gb = GbMediaSessions(dialogs, domain="3402000000", platform_id="34020000002000000001")
    dialogs.on_end = gb.dialog_ended
    s, d = _session(gb, dialogs, sig)
    for method, body in (("BYE", b""), ("MESSAGE", encode_media_status(5, CH))):
        inc = Incoming(_in_dialog(d, method, body), ATTACKER, "udp", None, sig.endpoint)
        assert dialogs.on_dialog_request(inc)
        await asyncio.sleep(0.05)
        assert not s.closed and d.call_id in dialogs.by_call and gb.by_name[s.name] is s
    assert sig.registrar.foreign_messages == 2
    # the device itself hangs up: the stream ends, and no BYE goes back
    inc = Incoming(_in_dialog(d, "BYE"), DEVICE, "udp", None, sig.endpoint)
    assert dialogs.on_dialog_request(inc)
    for _ in range(20):
        if s.closed:
            break
        await asyncio.sleep(0.01)
    assert s.closed and s.name not in gb.by_name and s.ended_by_device
    assert d.call_id not in dialogs.by_call


async def test_a_device_hanging_up_on_a_media_node_elsewhere_is_said_on_the_bus() -> None:
    """In a cluster the dialog is on the signalling node, the stream on a media node."""
    bus = EventBus()
    heard = bus.subscribe("media")
    sig = SignallingService(SipConfig(password="x-pass-1", admission="open"), None, bus)  # type: ignore[arg-type]
    dialogs = GbDialogs(sig)
    device = DeviceSession(DEV, admission="accepted", online=True, registered=True, addr=DEVICE)
    invite = sig.make_request("INVITE", device, CH, [("Content-Type", "APPLICATION/SDP")], b"v=0\r\n")
    d = Dialog.from_response(invite, make_response(invite, 200, to_tag="t2"))
    dialogs.by_call[d.call_id] = _Dialog(device, d, "media-7")
    assert dialogs.on_dialog_request(Incoming(_in_dialog(d, "BYE"), ATTACKER, "udp", None, sig.endpoint))
    assert heard.queue.empty()  # not from the device: nothing
    assert dialogs.on_dialog_request(Incoming(_in_dialog(d, "BYE"), DEVICE, "udp", None, sig.endpoint))
    ev = heard.queue.get_nowait()
    assert (ev.kind, ev.subject, ev.data) == ("media.dialog.ended", d.call_id,
                                              {"owner": "media-7", "reason": "device hung up"})
    # the media node "media-7" died: what it still holds is hung up
    dialogs.by_call[d.call_id] = _Dialog(device, d, "media-7")
    assert dialogs.forget_owner({"media-8"}) == [d.call_id]
