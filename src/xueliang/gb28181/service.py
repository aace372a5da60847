"""The signalling service (联): GB/T 28181 devices and lower platforms register, keep alive,
report catalogs, answer queries and take control commands.

It drives the asyncio :class:`SipEndpoint` with the sans-IO pieces (registrar, MANSCDP,
catalog assembly) and reports every state change on the event bus. Media sessions (INVITE)
plug in through :attr:`on_invite_request` and :meth:`send_in_dialog` (media issue).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang import _native
from xueliang.bus import Bus, BusEvent
from xueliang.config import SipConfig
from xueliang.db.engine import transient
from xueliang.db.tables import Channel, Device
from xueliang.errors import GatewayTimeout, Invalid, NotFound, Unavailable
from xueliang.gb28181 import manscdp
from xueliang.gb28181.answers import Answers
from xueliang.gb28181.catalog import CatalogAssembler, CatalogComplete, CatalogIncomplete
from xueliang.gb28181.catalog_queue import CatalogQueue, Kind
from xueliang.gb28181.credentials import (
    open_device_password,
    platform_password,
    seal_device_password,
)
from xueliang.gb28181.endpoint import Incoming, SipEndpoint, SipTimeout
from xueliang.gb28181.ids import is_valid_gb_id
from xueliang.gb28181.manscdp import CatalogItem, ManscdpError, ManscdpMessage, RecordItem
from xueliang.gb28181.persist import SignallingWriter
from xueliang.gb28181.registrar import (
    NOT_REGISTERED,
    DeviceSession,
    Registrar,
    RegistrarEvent,
    user_of,
)
from xueliang.gb28181.sip import (
    SipRequest,
    SipResponse,
    generate_call_id,
    generate_tag,
    make_request,
)
from xueliang.presence import MemoryPresence, Presence
from xueliang.sealing import Sealer

log = logging.getLogger("xueliang.signalling")
#: What was refused for not coming from the device it names (status API has the same counts).
REFUSED = Counter("xueliang_sip_refused_total", "SIP traffic refused for not coming from the device it names: "
                  "foreign_messages (not from its registered address), replayed_registers (a used nonce), "
                  "foreign_responses (an answer from elsewhere), foreign_subjects (another device's channel)",
                  ["kind"])
MANSCDP_TYPE = "Application/MANSCDP+xml"
#: Where finished catalogs go: (device ID, items) pairs, stored in that order.
CatalogSink = Callable[[list[tuple[str, list[CatalogItem]]]], Awaitable[Any]]
#: Items in one store of catalogs (one transaction); a bigger catalog goes alone.
_CATALOG_BATCH = 20_000
#: Seconds before catalogs are tried again while the database is unavailable, doubling to the most.
_CATALOG_RETRY_FIRST = 0.5
_CATALOG_RETRY_MAX = 30.0


@dataclass(slots=True)
class CatalogRun:
    """The outcome of the last catalog query of a device (kept for the API and operators)."""

    device_id: str
    sn: int
    expected: int
    received: int
    complete: bool
    at: float


class SignallingService:
    def __init__(self, cfg: SipConfig, sessions: async_sessionmaker[AsyncSession], bus: Bus, *,
                 nonce_secret: bytes | None = None, sealer: Sealer | None = None, var_dir: Path | None = None,
                 presence: Presence | None = None) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.bus = bus
        #: Who is online here, for the other nodes (the API routes device commands by it).
        self.presence: Presence = presence or MemoryPresence("local")
        self._presence_swept = 0.0
        #: Opens (and seals) the devices' own passwords stored in the registry.
        self.sealer = sealer
        #: The platform-wide device password: configured, or generated and kept in var_dir.
        self.password = platform_password(cfg.password, var_dir)
        self.registrar = Registrar(cfg.domain, self.password, admission=cfg.admission,
                                   keepalive_interval=cfg.keepalive_interval, keepalive_misses=cfg.keepalive_misses,
                                   ban_after=cfg.ban_after_failures, ban_seconds=cfg.ban_seconds,
                                   nonce_secret=nonce_secret)
        self.endpoint = SipEndpoint(cfg.host, cfg.port, self._on_request, rate_limit=cfg.rate_limit_per_address,
                                    burst=max(50.0, cfg.rate_limit_per_address),
                                    is_banned=self.registrar.is_banned,
                                    poll_interval=cfg.poll_ms / 1000)
        self.endpoint.layer.check_response_source = True
        self.writer = SignallingWriter(sessions)
        self.catalogs: CatalogAssembler[CatalogItem] = CatalogAssembler(timeout=15.0, max_items=1_000_000)
        #: REGISTER and keepalives, answered without a transaction, and the registrar's events
        #: applied (answers.py, compiled).
        self.answers = Answers(self.registrar, self.writer, bus, self.presence, self.endpoint,
                               self._queue_after, self.catalogs.cancel)
        self.endpoint.stateless = self.answers.stateless
        self.records: CatalogAssembler[RecordItem] = CatalogAssembler(
            timeout=15.0, key=lambda r: (r.device_id, r.start_time, r.end_time, r.file_path))
        self.catalog_runs: dict[str, CatalogRun] = {}
        self._sn = itertools.count(int(time.time()) % 100_000)
        self._waiters: dict[tuple[str, str, int], asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._catalog_sink: CatalogSink | None = None
        #: Finished catalogs waiting for the store (`_catalog_store`), in order of arrival.
        self._catalog_queue = CatalogQueue()
        #: Times the catalogs waiting were put back because the database was unavailable.
        self.catalog_store_retries = 0
        self._catalog_ready = asyncio.Event()
        self._catalog_task: asyncio.Task[None] | None = None
        #: Media sessions hook: INVITE/BYE/INFO/MESSAGE(MediaStatus) in dialogs (media issue).
        self.on_dialog_request: Callable[[Incoming], bool] | None = None
        self.subscriptions: dict[str, float] = {}
        #: Devices to query after registration. A storm of re-registrations (the platform
        #: restarted, a network came back) must not turn into a storm of queries: a bounded
        #: pool of workers drains this queue.
        self._after_queue: asyncio.Queue[str] = asyncio.Queue()
        self._after_pending: set[str] = set()
        self._after_workers: list[asyncio.Task[None]] = []
        self.after_registration_workers = 32
        self._exported: dict[str, int] = {}

    # ---- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        clear: list[tuple[str, str]] = []
        async with self.sessions() as s:
            for d in (await s.execute(select(Device.id, Device.password, Device.admission))).all():
                self.registrar.load(d[0], open_device_password(self.sealer, d[0], d[1]), d[2])
                if d[1] and self.sealer is not None and not self.sealer.is_sealed(d[1]):
                    clear.append((d[0], d[1]))
        if clear and self.sealer is not None:  # stored before sealing: seal them now
            async with self.sessions() as s, s.begin():
                for device_id, password in clear:
                    await s.execute(update(Device).where(Device.id == device_id, Device.password == password)
                                    .values(password=seal_device_password(self.sealer, device_id, password)))
            log.info("sealed the SIP passwords of %d devices stored in clear", len(clear))
        self.bus.listen(self._on_bus, "registry.device.changed", "registry.device.deleted")
        await self.writer.start()
        await self.endpoint.start()
        self._loop_task = asyncio.create_task(self._housekeeping(), name="signalling-housekeeping")
        self._catalog_task = asyncio.create_task(self._catalog_store(), name="catalog-store")
        self._after_workers = [asyncio.create_task(self._after_worker(), name=f"after-registration-{i}")
                               for i in range(self.after_registration_workers)]
        log.info("GB/T 28181 signalling on %s (udp+tcp), platform %s, realm %s; %s", self.endpoint.hostport,
                 self.cfg.id, self.cfg.domain, _native.describe())
        if _native.status == "stale":
            log.warning("%s", _native.describe())

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        pending = [*self._tasks, *self._after_workers, *([self._catalog_task] if self._catalog_task else [])]
        for t in pending:
            t.cancel()
        # Let them end before the writer and the database go: a task cancelled in the middle of
        # a database call and left pending held the event loop's close for ever (seen in CI).
        if pending:
            await asyncio.wait(pending, timeout=5.0)
        await self.endpoint.stop()
        await self.writer.stop()

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _on_bus(self, ev: BusEvent) -> None:
        """The registry changed a device (admission accepted, password set, deleted): mirror it."""
        if ev.kind == "registry.device.changed":
            self.registrar.load(ev.subject, open_device_password(self.sealer, ev.subject, ev.data.get("password")),
                                ev.data.get("admission", "accepted"))
        elif ev.kind == "registry.device.deleted":
            self.registrar.forget(ev.subject)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            try:
                self._apply(list(self.registrar.expire(now)), time.time())
                for inc in self.catalogs.expire(now):
                    self._catalog_incomplete(inc)
                for rec in self.records.expire(now):
                    fut = self._waiters.pop((rec.device_id, "RecordInfo", rec.sn), None)
                    if fut is not None and not fut.done():
                        fut.set_result(list(rec.items))
                await self._refresh_subscriptions(now)
                self._export_refusals()
                self._sweep_presence(now)
            except Exception:
                log.exception("signalling housekeeping failed")

    def _sweep_presence(self, now: float) -> None:
        """Last heard-from times into presence, every few seconds (not on each keepalive)."""
        if now - self._presence_swept < 5.0:
            return
        since, self._presence_swept = self._presence_swept, now
        offset = time.time() - now
        for s in self.registrar.devices.values():
            if s.online and s.last_seen > since:
                self.presence.seen(s.device_id, s.last_seen + offset)

    def _refusals(self) -> dict[str, int]:
        r = self.registrar
        return {"foreign_messages": r.foreign_messages, "replayed_registers": r.replayed_registers,
                "foreign_responses": self.endpoint.layer.foreign_responses, "foreign_subjects": r.foreign_subjects}

    def _export_refusals(self) -> None:
        """The sans-IO counters into Prometheus, once a second (nothing on the hot path)."""
        for kind, n in self._refusals().items():
            if n > self._exported.get(kind, 0):
                REFUSED.labels(kind).inc(n - self._exported.get(kind, 0))
                self._exported[kind] = n

    # ---- events ------------------------------------------------------------------------
    def _apply(self, events: list[RegistrarEvent], wall: float) -> None:
        self.answers.apply(events, wall)

    def _publish(self, kind: str, subject: str, wall: float, **data: Any) -> None:
        self.answers.publish(kind, subject, wall, data)

    def _queue_after(self, device_id: str) -> None:
        """A device registered afresh: queue its queries (once, however often it registers meanwhile)."""
        if device_id not in self._after_pending:
            self._after_pending.add(device_id)
            self._after_queue.put_nowait(device_id)

    async def _after_worker(self) -> None:
        while True:
            device_id = await self._after_queue.get()
            self._after_pending.discard(device_id)
            try:
                await self._after_registration(device_id)
            except Exception:
                log.exception("queries after the registration of %s failed", device_id)

    async def _after_registration(self, device_id: str) -> None:
        """A device (re)registered: learn what it is and what it has."""
        with contextlib.suppress(GatewayTimeout, Unavailable, NotFound):
            await self.query_catalog(device_id, wait=False)
        with contextlib.suppress(GatewayTimeout, Unavailable, NotFound):
            info = await self.device_info(device_id)
            # with the writer's next batch (after the row of a just-admitted device): a
            # transaction per device held the workers, and so the whole storm's queries, on
            # the database's lock
            self.writer.device_info(device_id, info.device_name, info.manufacturer, info.model, info.firmware)

    # ---- incoming requests -------------------------------------------------------------
    def _on_request(self, inc: Incoming) -> None:
        # REGISTER and keepalives never get here: the endpoint's stateless hook answers them.
        m = inc.request.method
        if m == "MESSAGE":
            self._on_message(inc)
        elif m == "NOTIFY":
            self._on_notify(inc)
        elif m in ("INVITE", "BYE", "INFO", "ACK", "CANCEL"):
            if self.on_dialog_request is None or not self.on_dialog_request(inc):
                if m != "ACK":
                    inc.respond(481 if m != "INVITE" else 488)
        elif m == "OPTIONS":
            inc.respond(200, headers=[("Allow", "REGISTER, MESSAGE, NOTIFY, INVITE, ACK, BYE, INFO, SUBSCRIBE, OPTIONS")])
        elif m == "SUBSCRIBE":
            inc.respond(489, "Bad Event")
        else:
            inc.respond(405, headers=[("Allow", "REGISTER, MESSAGE, NOTIFY, INVITE, ACK, BYE, INFO, OPTIONS")])

    def _sender(self, inc: Incoming) -> str:
        return user_of(inc.request.headers.get("From"))

    def _on_message(self, inc: Incoming) -> None:
        body = inc.request.body
        now = time.monotonic()
        device_id = self._sender(inc)
        session = self.registrar.touch(device_id, inc.addr, now, inc.transport, "MESSAGE")
        if session is None:
            if self.on_dialog_request is not None and self.on_dialog_request(inc):
                return  # MediaStatus inside a media dialog of a lower platform
            inc.respond(404, NOT_REGISTERED)
            return
        try:
            msg = manscdp.decode(body)
        except ManscdpError as exc:
            inc.respond(400, f"Bad Request ({exc})"[:120])
            return
        inc.respond(200)
        self._dispatch(msg, session, inc)

    def _dispatch(self, msg: ManscdpMessage, session: DeviceSession, inc: Incoming) -> None:
        now = time.monotonic()
        ct = msg.cmd_type
        if msg.root == "Response" and ct == "Catalog":
            items = CatalogItem.from_message(msg)
            done = self.catalogs.add(session.device_id, msg.sn, msg.sum_num or len(items), items, now)
            if done is not None:
                self._catalog_done(done)
        elif msg.root == "Response" and ct == "RecordInfo":
            items_r = RecordItem.from_message(msg)
            done_r = self.records.add(session.device_id, msg.sn, msg.sum_num or 0, items_r, now)
            if done_r is not None:
                fut = self._waiters.pop((session.device_id, "RecordInfo", msg.sn), None)
                if fut is not None and not fut.done():
                    fut.set_result(list(done_r.items))
        elif msg.root == "Response":
            fut = self._waiters.pop((session.device_id, ct, msg.sn), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif msg.root == "Notify" and ct == "Alarm":
            self._spawn(self._alarm(session.device_id, manscdp.Alarm.from_message(msg)))
            # GB/T 28181: the platform confirms an alarm with a Response.
            self._spawn(self._send_message(session, manscdp.encode_response_result("Alarm", msg.sn, msg.device_id, True)))
        elif msg.root == "Notify" and ct == "MobilePosition":
            pos = manscdp.MobilePosition.from_message(msg)
            if pos.longitude is not None and pos.latitude is not None:
                self._spawn(self._update_position(session.device_id, pos))
        elif msg.root == "Notify" and ct == "MediaStatus":
            if self.on_dialog_request is not None:
                self.on_dialog_request(inc)
        elif msg.root == "Notify" and ct == "Catalog":
            self._catalog_events(session.device_id, CatalogItem.from_message(msg))
        else:
            log.debug("unhandled %s %s from %s", msg.root, ct, session.device_id)

    def _on_notify(self, inc: Incoming) -> None:
        """Catalog subscription notifications (and MobilePosition/Alarm sent as NOTIFY)."""
        device_id = self._sender(inc)
        session = self.registrar.touch(device_id, inc.addr, time.monotonic(), inc.transport, "NOTIFY")
        if session is None:
            inc.respond(481, "Subscription does not exist")
            return
        try:
            msg = manscdp.decode(inc.request.body)
        except ManscdpError as exc:
            inc.respond(400, f"Bad Request ({exc})"[:120])
            return
        inc.respond(200)
        if msg.cmd_type == "Catalog":
            self._catalog_events(device_id, CatalogItem.from_message(msg))
        else:
            self._dispatch(msg, session, inc)

    # ---- catalog -----------------------------------------------------------------------
    def set_catalog_sink(self, sink: CatalogSink) -> None:
        """Where finished catalogs go (the registry upsert): called with (device ID, items)
        pairs, in order, as many as are waiting."""
        self._catalog_sink = sink

    def _catalog_done(self, done: CatalogComplete[CatalogItem]) -> None:
        self.catalog_runs[done.device_id] = CatalogRun(done.device_id, done.sn, len(done.items), len(done.items), True, time.time())
        self._queue_catalog(done.device_id, list(done.items), Kind.WHOLE)
        fut = self._waiters.pop((done.device_id, "Catalog", done.sn), None)
        if fut is not None and not fut.done():
            fut.set_result(list(done.items))

    def _catalog_incomplete(self, inc: CatalogIncomplete[CatalogItem]) -> None:
        log.warning("catalog of %s (SN %d) incomplete: %d of %d items (%s)", inc.device_id, inc.sn,
                    inc.received, inc.expected, inc.reason)
        self.catalog_runs[inc.device_id] = CatalogRun(inc.device_id, inc.sn, inc.expected, inc.received, False, time.time())
        self._publish("catalog.incomplete", inc.device_id, time.time(), sn=inc.sn, expected=inc.expected,
                      received=inc.received, missing=inc.missing_count, reason=inc.reason)
        if inc.items:
            self._queue_catalog(inc.device_id, list(inc.items), Kind.PARTIAL)
        fut = self._waiters.pop((inc.device_id, "Catalog", inc.sn), None)
        if fut is not None and not fut.done():
            fut.set_result(list(inc.items))

    def _catalog_events(self, device_id: str, items: list[CatalogItem]) -> None:
        changed: list[CatalogItem] = []
        for it in items:
            ev = (it.event or "").upper()
            if ev in ("ON", "OFF", "VLOST", "DEFECT"):
                it.status = ev
            changed.append(it)
            self._publish("catalog." + (ev.lower() or "update"), it.device_id, time.time(), device=device_id)
        if changed:
            self._queue_catalog(device_id, changed, Kind.CHANGE)

    def _queue_catalog(self, device_id: str, items: list[CatalogItem], kind: Kind = Kind.CHANGE) -> None:
        if self._catalog_sink is not None:
            self._catalog_queue.add(device_id, items, kind)
            self._catalog_ready.set()

    async def _catalog_store(self) -> None:
        """Finished catalogs into the registry, one after another in the order they came, as
        many in a batch as waited (up to ``_CATALOG_BATCH`` items): after a mass
        registration thousands of one-camera catalogs arrive within seconds."""
        queue = self._catalog_queue
        pause = _CATALOG_RETRY_FIRST
        while True:
            await self._catalog_ready.wait()
            self._catalog_ready.clear()
            while queue:
                batch = queue.take(_CATALOG_BATCH)
                unstored = await self._store_catalogs([(d, items) for d, items, _ in batch])
                if not unstored:
                    pause = _CATALOG_RETRY_FIRST
                    continue
                # The database is away (restarting, failing over, unreachable): the catalogs
                # wait at the head of the queue, in their order, and are tried again (within
                # the queue's bound, see catalog_queue.py). What was not stored is always the
                # batch's tail (_store_catalogs stops at the first catalog the database refuses).
                queue.put_back(batch[len(batch) - len(unstored):])
                self.catalog_store_retries += 1
                log.warning("the registry's database is unavailable: %d catalogs wait, tried again in %.1f s",
                            len(queue), pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, _CATALOG_RETRY_MAX)

    async def _store_catalogs(self, batch: list[tuple[str, list[CatalogItem]]]) -> list[tuple[str, list[CatalogItem]]]:
        """Store ``batch``; what is returned could not be stored because the database was
        unavailable (to be tried again). A catalog the database refuses for what it holds is
        logged and dropped: trying it again would fail again."""
        assert self._catalog_sink is not None
        try:
            # Channels reference their device: a device admitted moments ago must be written first.
            await self.writer.flush()
            await self._catalog_sink(batch)
            return []
        except Exception as exc:
            if transient(exc):
                return batch
            if len(batch) == 1:
                log.exception("storing the catalog of %s failed", batch[0][0])
                return []
        # One bad catalog must not cost the others theirs: each alone.
        for i, one in enumerate(batch):
            try:
                await self._catalog_sink([one])
            except Exception as exc:
                if transient(exc):
                    return batch[i:]
                log.exception("storing the catalog of %s failed", one[0])
        return []

    async def _owns(self, device_id: str, subject: str) -> bool:
        """Whether ``subject`` is the device itself or one of its channels: a device speaks for
        what it has, never for another device's cameras."""
        if subject == device_id:
            return True
        async with self.sessions() as s:
            owner = await s.scalar(select(Channel.device_id).where(Channel.id == subject))
        if owner == device_id:
            return True
        self.registrar.foreign_subjects += 1
        log.warning("device %s spoke for %s, which is not one of its channels: ignored", device_id, subject)
        return False

    async def _alarm(self, device_id: str, alarm: manscdp.Alarm) -> None:
        subject = alarm.device_id or device_id
        if await self._owns(device_id, subject):
            self._publish("alarm", subject, time.time(), device=device_id, priority=alarm.priority,
                          method=alarm.method, time=alarm.time, description=alarm.description,
                          longitude=alarm.longitude, latitude=alarm.latitude, alarm_type=alarm.alarm_type)

    async def _update_position(self, device_id: str, pos: manscdp.MobilePosition) -> None:
        subject = pos.device_id or device_id
        if pos.longitude is None or pos.latitude is None or not await self._owns(device_id, subject):
            return
        async with self.sessions() as s, s.begin():
            ch = await s.get(Channel, subject)
            if ch is not None:
                ch.longitude, ch.latitude = pos.longitude, pos.latitude
        self._publish("mobile_position", subject, time.time(), longitude=pos.longitude, latitude=pos.latitude,
                      speed=pos.speed, direction=pos.direction)

    async def query_catalog(self, device_id: str, *, wait: bool = True, timeout: float = 30.0) -> list[CatalogItem]:
        session = self._session(device_id)
        sn = next(self._sn)
        fut = self._waiter(device_id, "Catalog", sn) if wait else None
        await self._send_message(session, manscdp.encode_query("Catalog", sn, device_id))
        if fut is None:
            return []
        return list(await self._wait(fut, timeout, f"catalog of {device_id}"))

    # ---- queries and control -----------------------------------------------------------
    def _session(self, device_id: str) -> DeviceSession:
        s = self.registrar.devices.get(device_id)
        if s is None or s.admission == "":
            raise NotFound(f"device {device_id} is not known to signalling")
        if not s.online or s.addr is None:
            raise Unavailable(f"device {device_id} is offline")
        return s

    def _waiter(self, device_id: str, cmd: str, sn: int) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[(device_id, cmd, sn)] = fut
        return fut

    async def _wait(self, fut: asyncio.Future[Any], timeout: float, what: str) -> Any:
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError as exc:
            for k, v in list(self._waiters.items()):
                if v is fut:
                    del self._waiters[k]
            raise GatewayTimeout(f"no answer from the device for {what} within {timeout:.0f} s") from exc

    def make_request(self, method: str, session: DeviceSession, target: str | None = None,
                     headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> SipRequest:
        assert session.addr is not None
        host, port = session.addr
        h = f"[{host}]" if ":" in host else host
        target = target or session.device_id
        return make_request(
            method, f"sip:{target}@{h}:{port}", via=self.endpoint.via(session.transport),
            from_=f"<sip:{self.cfg.id}@{self.cfg.domain}>;tag={generate_tag()}",
            to=f"<sip:{target}@{self.cfg.domain}>", call_id=generate_call_id(self.cfg.host), cseq=1,
            contact=f"<sip:{self.cfg.id}@{self.endpoint.hostport}>", headers=headers or [], body=body)

    async def _send_message(self, session: DeviceSession, body: bytes, target: str | None = None) -> SipResponse:
        req = self.make_request("MESSAGE", session, target, [("Content-Type", MANSCDP_TYPE)], body)
        return await self._ask(session, req, "the request")

    async def _ask(self, session: DeviceSession, req: SipRequest, what: str) -> SipResponse:
        """Send ``req`` to the device and return its final answer: GatewayTimeout without one,
        Invalid when it refuses (3xx and above)."""
        assert session.addr is not None
        try:
            resp = await self.endpoint.request(req, session.addr, session.transport, timeout=self.cfg.request_timeout)
        except SipTimeout as exc:
            raise GatewayTimeout(f"device {session.device_id} did not answer {what}") from exc
        if resp.status >= 300:
            raise Invalid(f"device {session.device_id} refused {what}: {resp.status} {resp.reason}")
        return resp

    async def query(self, device_id: str, cmd_type: str, timeout: float | None = None, **fields: Any) -> ManscdpMessage:
        session = self._session(device_id)
        sn = next(self._sn)
        fut = self._waiter(device_id, cmd_type, sn)
        try:
            await self._send_message(session, manscdp.encode_query(cmd_type, sn, device_id, **fields))
        except Exception:
            self._waiters.pop((device_id, cmd_type, sn), None)
            raise
        msg: ManscdpMessage = await self._wait(fut, timeout or self.cfg.request_timeout, cmd_type)
        return msg

    async def device_info(self, device_id: str) -> manscdp.DeviceInfo:
        return manscdp.DeviceInfo.from_message(await self.query(device_id, "DeviceInfo"))

    async def device_status(self, device_id: str) -> manscdp.DeviceStatus:
        return manscdp.DeviceStatus.from_message(await self.query(device_id, "DeviceStatus"))

    async def record_info(self, device_id: str, channel_id: str, start: str, end: str, type_: str = "all",
                          timeout: float = 20.0) -> list[RecordItem]:
        session = self._session(device_id)
        sn = next(self._sn)
        fut = self._waiter(device_id, "RecordInfo", sn)
        body = manscdp.encode_query("RecordInfo", sn, channel_id, StartTime=start, EndTime=end, Secrecy=0, Type=type_)
        try:
            await self._send_message(session, body, channel_id)
        except Exception:
            self._waiters.pop((device_id, "RecordInfo", sn), None)
            raise
        items: list[RecordItem] = await self._wait(fut, timeout, "RecordInfo")
        return sorted(items, key=lambda r: r.start_time)

    async def control(self, device_id: str, target: str, *, wait_result: bool = False, **fields: Any) -> dict[str, Any]:
        """DeviceControl: PTZCmd, TeleBoot, RecordCmd, GuardCmd, AlarmCmd, IFameCmd..."""
        session = self._session(device_id)
        sn = next(self._sn)
        fut = self._waiter(device_id, "DeviceControl", sn) if wait_result else None
        resp = await self._send_message(session, manscdp.encode_control(sn, target, **fields), target)
        out: dict[str, Any] = {"ok": True, "sip_status": resp.status, "sn": sn}
        if fut is not None:
            try:
                msg: ManscdpMessage = await self._wait(fut, self.cfg.request_timeout, "DeviceControl")
                out["result"] = msg.get("Result")
                out["ok"] = (msg.get("Result") or "OK").upper() == "OK"
            except GatewayTimeout:
                out["result"] = None  # many devices never send the Response; the 200 is what we have
        return out

    async def subscribe_catalog(self, device_id: str, expires: int = 3600) -> dict[str, Any]:
        session = self._session(device_id)
        sn = next(self._sn)
        req = self.make_request("SUBSCRIBE", session, None,
                                [("Event", "Catalog"), ("Expires", str(expires)), ("Content-Type", MANSCDP_TYPE)],
                                manscdp.encode_query("Catalog", sn, device_id))
        await self._ask(session, req, "the subscription")
        self.subscriptions[device_id] = time.monotonic() + max(60, expires - 60)
        return {"ok": True, "expires": expires}

    async def _refresh_subscriptions(self, now: float) -> None:
        for device_id, due in list(self.subscriptions.items()):
            if due <= now:
                self.subscriptions.pop(device_id, None)
                with contextlib.suppress(Exception):
                    await self.subscribe_catalog(device_id)

    def device_for_channel(self, channel_id: str, device_id: str | None) -> DeviceSession:
        if device_id:
            return self._session(device_id)
        if channel_id in self.registrar.devices:
            return self._session(channel_id)
        raise NotFound(f"channel {channel_id} has no GB/T 28181 device")

    def status(self) -> dict[str, Any]:
        st = self.endpoint.stats
        return {
            "platform_id": self.cfg.id, "domain": self.cfg.domain, "listen": self.endpoint.hostport,
            "devices_known": len(self.registrar.devices), "devices_online": self.registrar.online_count(),
            "received": st.received, "sent": st.sent, "parse_errors": st.parse_errors,
            "rate_limited": st.rate_limited, "banned_drops": st.banned_drops, "by_method": st.by_method,
            # Messages in a registered device's name from another address (ignored), REGISTERs
            # played again with a used nonce (challenged), answers to our requests from
            # elsewhere than where we sent them (dropped), reports on another device's channels.
            **self._refusals(),
            "transactions": len(self.endpoint.layer),
            # finished catalogs not yet in the registry, and how often the database was away
            "catalogs_waiting": len(self._catalog_queue), "catalog_store_retries": self.catalog_store_retries,
            # ... the camera items they hold, and catalogs dropped to keep within the bound
            "catalog_items_waiting": self._catalog_queue.items, "catalogs_dropped": self._catalog_queue.dropped,
            # events not yet in the database, and those dropped when it was away too long
            "events_waiting": self.writer.backlog(), "events_dropped": self.writer.events_dropped,
        }


def valid_channel(channel_id: str) -> bool:
    return is_valid_gb_id(channel_id)
