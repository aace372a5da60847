"""A virtual device's recordings (设备录像) as the platform asks for them: RecordInfo answers
from the fake schedule (:mod:`xueliang.sim.recordings`), playback and download control over
INFO (MANSRTSP: pause, resume, seek, speed), and the end of a range (MediaStatus 121 in the
dialog, then waiting for the BYE)."""

from __future__ import annotations

import asyncio
import datetime as dt

from xueliang.gb28181 import manscdp
from xueliang.gb28181.endpoint import Incoming
from xueliang.gb28181.manscdp import ManscdpMessage
from xueliang.gb28181.mansrtsp import MansrtspError, parse_mansrtsp
from xueliang.sim.device.channel import VirtualChannel
from xueliang.sim.device.core import MANSCDP_CONTENT_TYPE, DeviceCore
from xueliang.sim.recordings import parse_gb_time


class Playback(DeviceCore):
    """RecordInfo, playback and download control, the end of a range."""

    def _record_bodies(self, msg: ManscdpMessage, target: str) -> list[bytes]:
        if target in self.channels:
            ch: VirtualChannel | None = self.channels[target]
        elif target == self.id and self.kind == "IPC":
            ch = self.channel()
        else:
            ch = None
        files = []
        name = ""
        if ch is not None:
            name = ch.name
            files = self.ctx.recordings.files(
                ch.id,
                parse_gb_time(msg.get("StartTime")),
                parse_gb_time(msg.get("EndTime")),
                now=dt.datetime.now().replace(microsecond=0),
                name=ch.name,
                address=ch.address,
                recorder_id=self.id,
                record_type=(msg.get("Type") or "all").lower(),
            )
        parts = manscdp.split_catalog(files, self.catalog_per_message)
        return [
            manscdp.encode_record_info_response(
                msg.sn, target, len(files), part, name=name, encoding=self.encoding
            )
            for part in parts
        ]

    def _on_info(self, inc: Incoming) -> None:
        call = self._in_call(inc)
        if call is None:
            return
        try:
            cmd = parse_mansrtsp(inc.request.body)
        except MansrtspError as exc:
            inc.respond(400, f"Bad MANSRTSP ({exc})"[:100])
            return
        inc.respond(200)
        s = call.session
        if cmd.method == "PAUSE":
            s.pause()
        elif cmd.method == "TEARDOWN":
            media = self.ctx.media
            if media is not None:
                media.close(s)
        else:
            if cmd.scale is not None:
                s.set_rate(cmd.scale)
            if cmd.range_start is not None:
                s.seek(cmd.range_start)
            s.resume()

    async def _media_end(self, call_id: str) -> None:
        """Playback/download reached its end: MediaStatus 121 in the dialog, then wait for BYE."""
        call = self.calls.get(call_id)
        if call is None:
            return
        call.ended = True
        body = manscdp.encode_media_status(
            self._next_sn(), call.channel.id, notify_type=121, encoding=self.encoding
        )
        req = call.dialog.create_request(
            "MESSAGE",
            via=self._via(),
            body=body,
            content_type=MANSCDP_CONTENT_TYPE,
            headers=self._common_headers(),
        )
        await self._send(req, call.addr, call.transport)
        loop = asyncio.get_running_loop()
        call.bye_timer = loop.call_later(60.0, lambda: self._spawn(self.hang_up(call_id)))
