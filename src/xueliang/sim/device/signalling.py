"""A virtual device's signalling: REGISTER with digest and its refresh, the restart (a new
Call-ID, as after TeleBoot), keepalives, the platform's queries and controls answered
(Catalog, DeviceInfo, DeviceStatus, RecordInfo, PresetQuery, DeviceControl, DeviceConfig),
subscriptions and their NOTIFYs (catalog changes, alarms, mobile positions)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence

from xueliang.gb28181 import manscdp, ptz
from xueliang.gb28181.endpoint import Incoming
from xueliang.gb28181.manscdp import CatalogItem, ManscdpError, ManscdpMessage
from xueliang.gb28181.sip import (
    Dialog,
    SipParseError,
    SipRequest,
    generate_call_id,
    generate_tag,
    make_authorization,
    make_request,
)
from xueliang.sim.device.channel import ChannelSpec, PtzRecord
from xueliang.sim.device.core import (
    MANSCDP_CONTENT_TYPE,
    Subscription,
    _now_text,
    _parse_date,
    log,
)
from xueliang.sim.device.playback import Playback


class Signalling(Playback):
    """Registration, keepalives, queries and controls, subscriptions, alarms and positions. On
    :class:`Playback`, which answers RecordInfo."""

    # -- registration and keepalives -------------------------------------------------------

    def restart(self) -> None:
        """Reboot: drop streams and subscriptions, register again with a new Call-ID."""
        for call_id in list(self.calls):
            self._end_call(call_id)
        for call_id in list(self.subscriptions):
            self.ctx.calls.pop(call_id, None)
        self.subscriptions.clear()
        self.registered = False
        self.call_id = generate_call_id()
        self.call_ids.append(self.call_id)
        self._reg_tag = generate_tag()
        self._reg_cseq = 0
        self._refresh_at = 0.0
        self._wake.set()

    def _register_request(self, expires: int, authorization: str | None) -> SipRequest:
        self._reg_cseq += 1
        headers = [("Expires", str(expires)), *self._common_headers()]
        if authorization is not None:
            headers.insert(0, ("Authorization", authorization))
        user = f"sip:{self.id}@{self.ctx.domain}"
        return make_request(
            "REGISTER",
            self.server_uri,
            via=self._via(),
            from_=f"<{user}>;tag={self._reg_tag}",
            to=f"<{user}>",
            call_id=self.call_id,
            cseq=self._reg_cseq,
            contact=self.contact,
            headers=headers,
        )

    async def _register(self, expires: int) -> bool:
        """One registration (or refresh, or with ``expires`` 0 unregistration), with digest."""
        call_id = self.call_id
        resp = await self._send(self._register_request(expires, None))
        if resp is not None and resp.status in (401, 407):
            challenge = resp.headers.get("WWW-Authenticate") or resp.headers.get(
                "Proxy-Authenticate"
            )
            password = self.password + ("-wrong" if self.faults.wrong_password else "")
            try:
                auth = make_authorization(
                    username=self.id,
                    password=password,
                    challenge=challenge or "",
                    method="REGISTER",
                    uri=self.server_uri,
                )
            except SipParseError as exc:
                log.info("device %s: unusable challenge: %s", self.id, exc)
                auth = None
            if auth is not None:
                resp = await self._send(self._register_request(expires, auth))
        self.last_register_status = resp.status if resp is not None else None
        if call_id != self.call_id:
            return False  # restarted meanwhile: this answer is for the old registration
        if expires == 0:
            self.registered = False
            return resp is not None and resp.is_success
        if resp is None or not resp.is_success:
            self.registered = False
            self.register_failures += 1
            log.debug("device %s: register failed (%s)", self.id, self.last_register_status)
            return False
        granted = expires
        value = resp.headers.get("Expires")
        if value and value.strip().isdigit():
            granted = int(value.strip()) or expires
        self.granted_expires = granted
        now = time.monotonic()
        self._refresh_at = now + max(1.0, granted * 0.8)
        self.keepalive_misses = 0
        date = _parse_date(resp.headers.get("Date"))
        if date is not None:
            self.clock_offset = (date - dt.datetime.now()).total_seconds()
        if not self.registered:
            self.registered_at = now
        self.registered = True
        self.register_count += 1
        return True

    async def _keepalive(self) -> None:
        body = manscdp.encode_keepalive(self._next_sn(), self.id, encoding=self.encoding)
        self.keepalives_sent += 1
        status = await self.send_message(body)
        if status is not None and 200 <= status < 300:
            self.keepalives_answered += 1
            self.keepalive_misses = 0
        elif status is None:
            self.keepalive_misses += 1
            if self.keepalive_misses >= 3:
                log.info("device %s: 3 keepalives unanswered, registering again", self.id)
                self.registered = False
        else:
            log.info("device %s: keepalive answered %s, registering again", self.id, status)
            self.registered = False

    # -- queries and controls --------------------------------------------------------------

    def _on_message(self, inc: Incoming) -> None:
        req = inc.request
        if req.call_id in self.calls:
            inc.respond(200)  # e.g. a platform's answer inside a media dialog
            return
        try:
            msg = manscdp.decode(req.body)
        except ManscdpError as exc:
            inc.respond(400, f"Bad MANSCDP body ({exc.reason})"[:100])
            return
        inc.respond(200)
        self.messages_received.append(msg)
        if msg.root in ("Query", "Control"):
            self._spawn(self._answer(msg))

    async def _answer(self, msg: ManscdpMessage) -> None:
        if self.faults.answer_delay > 0:
            await asyncio.sleep(self.faults.answer_delay)
        bodies = self._respond_to(msg)
        if self.faults.no_answers or not bodies:
            return
        window = 8
        for i in range(0, len(bodies), window):
            results = await asyncio.gather(*(self.send_message(b) for b in bodies[i : i + window]))
            self.responses_sent += sum(1 for r in results if r is not None)

    def _respond_to(self, msg: ManscdpMessage) -> list[bytes]:
        """The Response bodies for a Query or Control (empty: none is due)."""
        cmd = msg.cmd_type
        sn = msg.sn
        target = msg.device_id or self.id
        enc = self.encoding
        if msg.root == "Query":
            if cmd == "Catalog":
                return self._catalog_bodies(sn, target)
            if cmd == "DeviceInfo":
                return [
                    manscdp.encode_device_info_response(
                        sn,
                        self.id,
                        device_name=self.name,
                        manufacturer=self.manufacturer,
                        model=self.model,
                        firmware=self.firmware,
                        channel=len(self.channels),
                        encoding=enc,
                    )
                ]
            if cmd == "DeviceStatus":
                return [
                    manscdp.encode_device_status_response(
                        sn,
                        target if self.owns(target) else self.id,
                        online=True,
                        status_ok=True,
                        encode=True,
                        record=any(c.recording for c in self.channels.values()),
                        device_time=_now_text(self.clock_offset),
                        alarm_status=[(c.id, c.duty_status) for c in self.channels.values()],
                        encoding=enc,
                    )
                ]
            if cmd == "RecordInfo":
                return self._record_bodies(msg, target)
            if cmd == "PresetQuery":
                return [self._preset_body(sn, target)]
            return [manscdp.encode_response_result(cmd, sn, target, False, encoding=enc)]
        # Control
        if cmd == "DeviceControl":
            return self._control(msg, target)
        if cmd == "DeviceConfig":
            return [manscdp.encode_response_result(cmd, sn, target, True, encoding=enc)]
        return [manscdp.encode_response_result(cmd, sn, target, False, encoding=enc)]

    def _catalog_bodies(self, sn: int, target: str) -> list[bytes]:
        if target in self.channels:
            channels = [self.channels[target]]
        else:
            channels = list(self.channels.values())
        items = [c.catalog_item(self.ctx.resolution) for c in channels]
        parts = manscdp.split_catalog(items, self.catalog_per_message)
        return [
            manscdp.encode_catalog_response(sn, self.id, len(items), part, encoding=self.encoding)
            for part in parts
        ]

    def _preset_body(self, sn: int, target: str) -> bytes:
        ch = self.channels.get(target) or self.channel()
        items = "".join(
            f"<Item><PresetID>{n}</PresetID><PresetName>Preset {n}</PresetName></Item>\r\n"
            for n in sorted(ch.ptz.presets)
        )
        text = (
            f'<?xml version="1.0" encoding="{self.encoding}"?>\r\n<Response>\r\n'
            f"<CmdType>PresetQuery</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{target}</DeviceID>\r\n"
            f'<PresetList Num="{len(ch.ptz.presets)}">\r\n{items}</PresetList>\r\n</Response>\r\n'
        )
        return text.encode("gb18030" if self.encoding.upper().startswith("GB") else "utf-8")

    def _control(self, msg: ManscdpMessage, target: str) -> list[bytes]:
        f = msg.fields
        ok = True
        channel = self.channels.get(target) or (self.channel() if self.channels else None)
        if "TeleBoot" in f:
            log.info("device %s: TeleBoot", self.id)
            asyncio.get_running_loop().call_later(0.2, self.restart)
            return []
        if "PTZCmd" in f and channel is not None:
            text = f["PTZCmd"]
            try:
                cmd: ptz.PtzCommand | None = ptz.decode(text)
            except ptz.PtzError:
                cmd = None
                ok = False
            channel.ptz_log.append(PtzRecord(time.time(), text, cmd))
            if cmd is not None:
                channel.ptz.apply(cmd)
        if "RecordCmd" in f and channel is not None:
            channel.recording = f["RecordCmd"].strip().lower() == "record"
        if "GuardCmd" in f and channel is not None:
            channel.guard = f["GuardCmd"].strip().lower() == "setguard"
        if "AlarmCmd" in f and channel is not None:
            channel.alarm = False
        if ("IFameCmd" in f or "IFrameCmd" in f) and channel is not None:
            for call in self.calls.values():
                if call.channel is channel:
                    call.session.force_keyframe()
        if "HomePosition" in f and channel is not None:
            channel.ptz.pan, channel.ptz.tilt, channel.ptz.zoom = 0.0, 0.0, 1.0
        return [
            manscdp.encode_response_result(
                "DeviceControl", msg.sn, target, ok, encoding=self.encoding
            )
        ]

    # -- subscriptions ---------------------------------------------------------------------

    def _on_subscribe(self, inc: Incoming) -> None:
        req = inc.request
        expires_text = (req.headers.get("Expires") or "3600").strip()
        expires = int(expires_text) if expires_text.isdigit() else 3600
        sub = self.subscriptions.get(req.call_id)
        if req.to_tag:
            if sub is None:
                inc.respond(481)
                return
            sub.dialog.receive_request(req)
            if expires == 0:
                self.subscriptions.pop(req.call_id, None)
                self.ctx.calls.pop(req.call_id, None)
            sub.expires_at = time.monotonic() + expires
            inc.respond(200, headers=[("Expires", str(expires))])
            return
        cmd_type = "Catalog"
        sn = 0
        if req.body:
            try:
                msg = manscdp.decode(req.body)
            except ManscdpError as exc:
                inc.respond(400, f"Bad MANSCDP body ({exc.reason})"[:100])
                return
            cmd_type, sn = msg.cmd_type, msg.sn
        else:
            event = (req.headers.get("Event") or "").split(";")[0].strip()
            cmd_type = event if event in ("Catalog", "Alarm", "MobilePosition") else "Catalog"
        tag = generate_tag()
        contact = self.contact
        body = manscdp.encode_response_result(cmd_type, sn, self.id, True, encoding=self.encoding)
        inc.respond(
            200,
            to_tag=tag,
            headers=[
                ("Contact", contact),
                ("Expires", str(expires)),
                ("Content-Type", MANSCDP_CONTENT_TYPE),
            ],
            body=body,
        )
        if expires == 0:
            return
        dialog = Dialog.from_request(req, tag, local_contact=contact)
        self.subscriptions[req.call_id] = Subscription(
            dialog,
            cmd_type,
            (req.headers.get("Event") or cmd_type).split(";")[0].strip(),
            time.monotonic() + expires,
            inc.addr,
            inc.transport,
        )
        self.ctx.calls[req.call_id] = self

    def _subscriptions_for(self, cmd_type: str) -> list[Subscription]:
        out = []
        for call_id, sub in list(self.subscriptions.items()):
            if not sub.active:
                del self.subscriptions[call_id]
                self.ctx.calls.pop(call_id, None)
            elif sub.cmd_type == cmd_type:
                out.append(sub)
        return out

    async def _notify(self, sub: Subscription, body: bytes) -> int | None:
        remaining = max(0, int(sub.expires_at - time.monotonic()))
        req = sub.dialog.create_request(
            "NOTIFY",
            via=self._via(),
            body=body,
            content_type=MANSCDP_CONTENT_TYPE,
            headers=[
                ("Event", sub.event),
                ("Subscription-State", f"active;expires={remaining}"),
                *self._common_headers(),
            ],
        )
        sub.notifies += 1
        resp = await self._send(req, sub.addr, sub.transport)
        return resp.status if resp is not None else None

    async def _notify_catalog(self, items: Sequence[CatalogItem]) -> int:
        subs = self._subscriptions_for("Catalog")
        if not subs:
            return 0
        body = manscdp.encode_catalog_notify(
            self._next_sn(), self.id, items, encoding=self.encoding
        )
        results = await asyncio.gather(*(self._notify(s, body) for s in subs))
        return sum(1 for r in results if r is not None and 200 <= r < 300)

    async def set_channel_status(self, channel_id: str, status: str) -> int:
        """Change a channel's status (ON, OFF, VLOST, DEFECT); NOTIFY catalog subscribers.
        Returns how many subscribers accepted the NOTIFY."""
        event = status.strip().upper()
        ch = self.channels[channel_id]
        ch.status = "ON" if event == "ON" else "OFF"
        item = CatalogItem(device_id=ch.id, event=event)
        return await self._notify_catalog([item])

    async def add_channel(self, spec: ChannelSpec) -> int:
        """Add a channel; NOTIFY catalog subscribers with an ADD carrying the full item."""
        ch = self._make_channel(spec)
        item = ch.catalog_item(self.ctx.resolution)
        item.event = "ADD"
        return await self._notify_catalog([item])

    async def remove_channel(self, channel_id: str) -> int:
        """Remove a channel; NOTIFY catalog subscribers with a DEL."""
        self.channels.pop(channel_id)
        if self.ctx.index.get(channel_id) is self:
            del self.ctx.index[channel_id]
        return await self._notify_catalog([CatalogItem(device_id=channel_id, event="DEL")])

    async def update_channel(self, channel_id: str, **changes: object) -> int:
        """Change catalog fields of a channel (name=..., address=...); NOTIFY an UPDATE."""
        ch = self.channels[channel_id]
        for key, value in changes.items():
            setattr(ch, key, value)
        item = ch.catalog_item(self.ctx.resolution)
        item.event = "UPDATE"
        return await self._notify_catalog([item])

    async def _deliver(self, cmd_type: str, body: bytes) -> int | None:
        subs = self._subscriptions_for(cmd_type)
        if subs:
            results = await asyncio.gather(*(self._notify(s, body) for s in subs))
            return next((r for r in results if r is not None), None)
        return await self.send_message(body)

    async def send_alarm(
        self,
        channel_id: str | None = None,
        priority: int = 1,
        method: int = 5,
        description: str = "",
        *,
        alarm_type: int | None = None,
    ) -> int | None:
        """An Alarm Notify (NOTIFY when the platform subscribed to alarms, else MESSAGE)."""
        ch = self.channel(channel_id)
        ch.alarm = True
        body = manscdp.encode_alarm_notify(
            self._next_sn(),
            ch.id,
            priority=priority,
            method=method,
            time=_now_text(self.clock_offset),
            description=description or None,
            longitude=ch.longitude,
            latitude=ch.latitude,
            alarm_type=alarm_type,
            encoding=self.encoding,
        )
        return await self._deliver("Alarm", body)

    async def send_position(
        self,
        longitude: float,
        latitude: float,
        *,
        speed: float | None = None,
        direction: float | None = None,
        altitude: float | None = None,
    ) -> int | None:
        """A MobilePosition Notify (NOTIFY when subscribed, else MESSAGE)."""
        body = manscdp.encode_mobile_position(
            self._next_sn(),
            self.id,
            time=_now_text(self.clock_offset),
            longitude=longitude,
            latitude=latitude,
            speed=speed,
            direction=direction,
            altitude=altitude,
            encoding=self.encoding,
        )
        for ch in self.channels.values():
            ch.longitude, ch.latitude = longitude, latitude
        return await self._deliver("MobilePosition", body)
