"""The device simulator (设备模拟器): N virtual GB/T 28181 devices in one process.

``run_simulator`` is the entry point of ``xueliang simulate``; :class:`Simulator` is the same
thing as an object, for tests and the demo (``async with Simulator(...) as sim``).

All devices share one SIP endpoint (one UDP/TCP port, or ``endpoints`` of them) and one media
pump (one UDP socket for all RTP over UDP); requests are routed to a device by the Request-URI
user (the device or channel ID), or by Call-ID inside a dialog. IPCs (type 132, one type-131
channel) when ``channels == 1``, NVRs (type 118, ``channels`` type-131 channels) otherwise;
IDs are ``<centre code, 8><industry 00><type, 3><7-digit sequence>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from xueliang.gb28181.endpoint import Incoming, SipEndpoint
from xueliang.media.frame import Codec
from xueliang.sim.device import ChannelSpec, DeviceContext, Faults, VirtualChannel, VirtualDevice
from xueliang.sim.recordings import RecordingSchedule
from xueliang.sim.video import ClipLibrary, MediaPump

__all__ = [
    "DeviceSpec",
    "DeviceSpecLike",
    "Simulator",
    "make_id",
    "parse_server",
    "run_simulator",
    "start_endpoint",
]

log = logging.getLogger("xueliang.sim")

_DISTRICTS = ("东湖区", "西山区", "南河县", "北原县")
_TOWNS = ("城关镇", "新华街道", "河口镇", "柳林乡")
_SITES = (
    "第一中学",
    "人民医院",
    "汽车客运站",
    "中心小学",
    "农贸市场",
    "加油站",
    "体育馆",
    "自来水公司",
)
_PLACES = ("校门", "大门", "路口", "广场", "停车场", "北门", "出入口")
_CENTRE = (117.25, 31.85)


class DeviceSpecLike(Protocol):
    """Anything with an ``id`` and ``channels`` ((id, name) pairs or :class:`ChannelSpec`);
    ``name``, ``password`` and ``version`` are read when present (the demo city's
    ``DemoDevice`` fits)."""

    @property
    def id(self) -> str: ...

    @property
    def channels(self) -> Sequence[ChannelSpec | tuple[str, str]]: ...


class DeviceSpec:
    """An explicit device for ``device_specs``."""

    def __init__(
        self,
        id: str,
        channels: Sequence[ChannelSpec | tuple[str, str]],
        *,
        name: str = "",
        password: str | None = None,
        version: str | None = None,
    ) -> None:
        self.id = id
        self.channels = channels
        self.name = name
        self.password = password
        self.version = version


def make_id(centre_code: str, type_code: int | str, seq: int) -> str:
    """``<centre 8><industry 00><type 3><sequence 7>``: 20 digits."""
    if len(centre_code) != 8 or not centre_code.isdigit():
        raise ValueError(f"centre code must be 8 digits, got {centre_code!r}")
    if not 0 <= seq <= 9_999_999:
        raise ValueError(f"sequence out of range: {seq}")
    return f"{centre_code}00{int(type_code):03d}{seq:07d}"


def parse_server(server: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` (port 5060)."""
    server = server.strip()
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest.lstrip(":") or 5060)
    if server.count(":") == 1:
        host, _, port = server.partition(":")
        return host, int(port)
    return server, 5060


def _local_ip_towards(host: str) -> str:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


async def start_endpoint(host: str, handler: Callable[[Incoming], None]) -> SipEndpoint:
    """A started endpoint on an ephemeral port, UDP and TCP on the same number.

    The endpoint binds UDP on port 0 and then TCP on the number it got, which another
    process may hold on TCP: try again with a new number."""
    for attempt in range(20):
        ep = SipEndpoint(host, 0, handler, udp=True, tcp=True, user_agent="xueliang-sim/1.0")
        try:
            await ep.start()
        except OSError:
            await ep.stop()
            if attempt == 19:
                raise
            continue
        return ep
    raise AssertionError("unreachable")


def _uri_user(uri: str) -> str | None:
    at = uri.find("@")
    if at < 0:
        return None
    colon = uri.find(":")
    return uri[colon + 1 : at] if 0 <= colon < at else None


class Simulator:
    """N virtual devices on one endpoint. ``await start()`` / ``await stop()``, or use as an
    async context manager. See the module docstring; arguments as :func:`run_simulator`."""

    def __init__(
        self,
        server: str,
        devices: int = 1,
        channels: int = 1,
        *,
        transport: str = "udp",
        password: str = "12345678",
        server_id: str = "34020000002000000001",
        domain: str | None = None,
        center_code: str = "34020000",
        keepalive: float = 60.0,
        expires: int = 3600,
        split_catalog: bool = False,
        catalog_per_message: int = 8,
        gbk: bool = False,
        h265: bool = False,
        bind: str = "127.0.0.1",
        announce: str | None = None,
        device_specs: Sequence[DeviceSpecLike] | None = None,
        gb_version: str = "2.0",
        register_rate: float = 200.0,
        retry_interval: float = 30.0,
        request_timeout: float = 8.0,
        video: bool = True,
        video_size: tuple[int, int] = (640, 360),
        video_bitrate: int | None = None,
        video_seconds: float = 4.0,
        labels: bool = True,
        first_seq: int = 1,
        endpoints: int = 1,
        summary_interval: float = 60.0,
        seed: int = 1,
    ) -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError("transport must be udp or tcp")
        self.server = parse_server(server)
        self.n_devices = devices
        self.n_channels = max(1, channels)
        self.transport = transport
        self.password = password
        self.server_id = server_id
        self.domain = domain or server_id[:10]
        self.center_code = center_code
        self.keepalive = keepalive
        self.expires = expires
        self.catalog_per_message = 1 if split_catalog else max(1, catalog_per_message)
        self.encoding = "GB2312" if gbk else "UTF-8"
        self.codec = Codec.H265 if h265 else Codec.H264
        self.bind = bind
        self.announce = announce
        self.device_specs = list(device_specs) if device_specs is not None else None
        self.gb_version = gb_version
        self.register_rate = max(1.0, register_rate)
        self.retry_interval = retry_interval
        self.request_timeout = request_timeout
        self.video = video
        self.video_size = video_size
        self.video_bitrate = video_bitrate
        self.video_seconds = video_seconds
        self.labels = labels
        self.first_seq = first_seq
        self.n_endpoints = max(1, endpoints)
        self.summary_interval = summary_interval
        self.rng = random.Random(seed)
        self.devices: list[VirtualDevice] = []
        self.endpoints: list[SipEndpoint] = []
        self.contexts: list[DeviceContext[VirtualDevice]] = []
        self.library: ClipLibrary | None = None
        self.media: MediaPump | None = None
        self.started = asyncio.Event()
        self._by_id: dict[str, VirtualDevice] = {}
        self._calls: dict[str, VirtualDevice] = {}
        self._summary: asyncio.Task[None] | None = None
        self._stopped = False

    # -- lookup ----------------------------------------------------------------------------

    def device(self, some_id: str) -> VirtualDevice:
        """A device by its own ID or by the ID of one of its channels."""
        return self._by_id[some_id]

    def channel(self, channel_id: str) -> VirtualChannel:
        return self._by_id[channel_id].channels[channel_id]

    @property
    def channel_ids(self) -> list[str]:
        return [c for d in self.devices for c in d.channels]

    @property
    def registered(self) -> int:
        return sum(1 for d in self.devices if d.registered)

    def stats(self) -> dict[str, int]:
        media = self.media
        return {
            "devices": len(self.devices),
            "registered": self.registered,
            "channels": sum(len(d.channels) for d in self.devices),
            "streams": len(media.sessions) if media is not None else 0,
            "keepalives_sent": sum(d.keepalives_sent for d in self.devices),
            "register_failures": sum(d.register_failures for d in self.devices),
            "responses_sent": sum(d.responses_sent for d in self.devices),
        }

    # -- faults ----------------------------------------------------------------------------

    def faults(self, device_id: str) -> Faults:
        return self.device(device_id).faults

    def set_fault(self, device_id: str, **changes: object) -> Faults:
        """E.g. ``set_fault(id, drop_keepalives=True)``, ``answer_delay=5``,
        ``wrong_password=True`` (applies at the next registration; with ``restart`` at once)."""
        faults = self.device(device_id).faults
        for key, value in changes.items():
            if not hasattr(faults, key):
                raise AttributeError(f"no fault {key!r}")
            setattr(faults, key, value)
        return faults

    def restart(self, device_id: str) -> None:
        """Reboot a device: registers again with a new Call-ID."""
        self.device(device_id).restart()

    async def power_off(self, device_id: str) -> None:
        await self.device(device_id).power_off()

    def power_on(self, device_id: str) -> None:
        """Power a device back on: it registers again, with a new Call-ID."""
        dev = self.device(device_id)
        dev.restart()
        dev.start()

    async def wait_registered(self, count: int | None = None, timeout: float = 30.0) -> bool:
        """Wait until ``count`` (default: all) devices are registered."""
        want = len(self.devices) if count is None else count
        deadline = time.monotonic() + timeout
        while self.registered < want:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    # -- life ------------------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _specs(self) -> list[tuple[str, str, list[ChannelSpec], str | None, str | None]]:
        """(device id, name, channels, password, version) for every device."""
        out: list[tuple[str, str, list[ChannelSpec], str | None, str | None]] = []
        rnd = random.Random(self.rng.random())
        if self.device_specs is not None:
            for i, spec in enumerate(self.device_specs):
                chans: list[ChannelSpec] = []
                for c in spec.channels:
                    if isinstance(c, ChannelSpec):
                        chans.append(c)
                    else:
                        # Only ID and name are known: report no coordinates, address or PTZ
                        # type, so the platform keeps what its registry already says.
                        chans.append(ChannelSpec(c[0], c[1], ptz_type=None))
                version = getattr(spec, "version", None) or self._version(i)
                out.append(
                    (
                        spec.id,
                        str(getattr(spec, "name", "") or ""),
                        chans,
                        getattr(spec, "password", None),
                        version,
                    )
                )
            return out
        nvr = self.n_channels > 1
        for i in range(self.n_devices):
            seq = self.first_seq + i
            district = _DISTRICTS[i % len(_DISTRICTS)]
            town = _TOWNS[(i // len(_DISTRICTS)) % len(_TOWNS)]
            site = _SITES[(i // (len(_DISTRICTS) * len(_TOWNS))) % len(_SITES)]
            place_name = f"{district}{town}{site}"
            dev_id = make_id(self.center_code, 118 if nvr else 132, seq)
            chans = []
            for k in range(self.n_channels):
                ch_seq = self.first_seq + i * self.n_channels + k if nvr else seq
                place = _PLACES[k % len(_PLACES)]
                lon, lat = self._coords(rnd, i)
                chans.append(
                    ChannelSpec(
                        make_id(self.center_code, 131, ch_seq),
                        f"{place_name}{place}{k + 1}",
                        address=f"{place_name}{place}",
                        longitude=lon,
                        latitude=lat,
                        ptz_type=1 if k % 4 == 0 else 3,
                        civil_code=self.center_code[:6],
                    )
                )
            out.append(
                (dev_id, f"{place_name}{'NVR' if nvr else 'IPC'}", chans, None, self._version(i))
            )
        return out

    def _version(self, i: int) -> str:
        if self.gb_version == "mixed":
            return "3.0" if i % 2 else "2.0"
        return self.gb_version

    @staticmethod
    def _coords(rnd: random.Random, i: int) -> tuple[float, float]:
        lon = _CENTRE[0] + ((i % 17) - 8) * 0.01 + rnd.uniform(-0.004, 0.004)
        lat = _CENTRE[1] + ((i % 13) - 6) * 0.01 + rnd.uniform(-0.004, 0.004)
        return round(lon, 6), round(lat, 6)

    async def start(self) -> None:
        host = self.server[0]
        contact_host = self.announce or self.bind
        if contact_host in ("0.0.0.0", "::", ""):
            contact_host = _local_ip_towards(host)
        if self.video:
            w, h = self.video_size
            self.library = ClipLibrary(
                codec=self.codec,
                width=w,
                height=h,
                seconds=self.video_seconds,
                bit_rate=self.video_bitrate,
                labels=self.labels,
            )
            await self.library.prepare()
            self.media = MediaPump(
                self.library, self.bind if self.bind not in ("", "0.0.0.0") else contact_host
            )
            await self.media.start()
        for _ in range(self.n_endpoints):
            ep = await start_endpoint(self.bind, self._route)
            self.endpoints.append(ep)
            lib = self.library
            w, h = (lib.width, lib.height) if lib is not None else self.video_size
            base = lib.base if lib is not None else None
            self.contexts.append(
                DeviceContext(
                    endpoint=ep,
                    server=self.server,
                    server_id=self.server_id,
                    domain=self.domain,
                    transport=self.transport,
                    contact_host=contact_host,
                    media=self.media,
                    calls=self._calls,
                    index=self._by_id,
                    request_timeout=self.request_timeout,
                    retry_interval=self.retry_interval,
                    recordings=RecordingSchedule(bitrate=base.bit_rate if base else 1_000_000),
                    resolution=f"{w}*{h}",
                    codec_f="5" if self.codec is Codec.H265 else "2",
                    bit_rate=base.bit_rate if base else 1_000_000,
                )
            )
        for i, (dev_id, name, chans, password, version) in enumerate(self._specs()):
            ctx = self.contexts[i % len(self.contexts)]
            dev = VirtualDevice(
                ctx,
                dev_id,
                chans,
                password=password or self.password,
                name=name,
                version=version or "2.0",
                keepalive_interval=self.keepalive,
                expires=self.expires,
                catalog_per_message=self.catalog_per_message,
                encoding=self.encoding,
                start_delay=i / self.register_rate,
                rng=random.Random(self.rng.random()),
            )
            self.devices.append(dev)
        for dev in self.devices:
            dev.start()
        if self.summary_interval > 0:
            self._summary = asyncio.create_task(self._log_summary(), name="sim-summary")
        log.info(
            "simulator: %d devices, %d channels, SIP on %s port %s (%s) → %s:%d",
            len(self.devices),
            sum(len(d.channels) for d in self.devices),
            contact_host,
            ",".join(str(e.port) for e in self.endpoints),
            self.transport,
            *self.server,
        )
        self.started.set()

    def add_device(
        self,
        device_id: str,
        channels: Sequence[ChannelSpec | tuple[str, str]],
        *,
        name: str = "",
        password: str | None = None,
    ) -> VirtualDevice:
        """Add and start one more device while running."""
        chans = [c if isinstance(c, ChannelSpec) else ChannelSpec(c[0], c[1]) for c in channels]
        ctx = self.contexts[len(self.devices) % len(self.contexts)]
        dev = VirtualDevice(
            ctx,
            device_id,
            chans,
            password=password or self.password,
            name=name,
            version=self._version(len(self.devices)),
            keepalive_interval=self.keepalive,
            expires=self.expires,
            catalog_per_message=self.catalog_per_message,
            encoding=self.encoding,
            rng=random.Random(self.rng.random()),
        )
        self.devices.append(dev)
        dev.start()
        return dev

    async def stop(self, unregister: bool = True) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._summary is not None:
            self._summary.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._summary
        # Unregister in batches so a large simulator does not flood the server at exit.
        batch = max(1, int(self.register_rate))
        for i in range(0, len(self.devices), batch):
            await asyncio.gather(
                *(d.stop(unregister=unregister) for d in self.devices[i : i + batch]),
                return_exceptions=True,
            )
        if self.media is not None:
            await self.media.stop()
        for ep in self.endpoints:
            await ep.stop()
        log.info("simulator stopped")

    async def _log_summary(self) -> None:
        while True:
            await asyncio.sleep(self.summary_interval)
            s = self.stats()
            log.info(
                "simulator: %d/%d devices registered, %d channels, %d streams, "
                "%d keepalives, %d register failures",
                s["registered"],
                s["devices"],
                s["channels"],
                s["streams"],
                s["keepalives_sent"],
                s["register_failures"],
            )

    # -- routing ---------------------------------------------------------------------------

    def _route(self, inc: Incoming) -> None:
        req = inc.request
        dev = self._calls.get(req.call_id)
        if dev is not None and (req.method in ("ACK", "BYE", "INFO", "CANCEL") or req.to_tag):
            dev.handle(inc)
            return
        user = _uri_user(req.uri)
        dev = self._by_id.get(user) if user else None
        if dev is None:
            to = req.headers.get("To") or ""
            to_user = _uri_user(to.split(">")[0].split("<")[-1])
            dev = self._by_id.get(to_user) if to_user else None
        if dev is None:
            if req.method != "ACK":
                inc.respond(404)
            return
        dev.handle(inc)


async def run_simulator(
    server: str,
    devices: int = 1,
    channels: int = 1,
    *,
    stop: asyncio.Event | None = None,
    **options: Any,
) -> Simulator:
    """Run simulated devices against ``server`` (``host:port``) until ``stop`` is set (or the
    task is cancelled); then unregister them all. Returns the stopped :class:`Simulator`.

    ``options`` are :class:`Simulator`'s keyword arguments (one signature serves both):
    ``devices`` IPCs (``channels == 1``) or NVRs with ``channels`` channels, or the devices of
    ``device_specs`` (objects with ``id``, ``channels`` as (id, name) pairs or ChannelSpec,
    optional ``name``/``password``). ``split_catalog`` answers catalogs one item per MESSAGE
    (else ``catalog_per_message``); ``gbk`` sends bodies declared GB2312 in GBK bytes (else
    UTF-8); ``h265`` streams H.265; ``gb_version`` 2.0, 3.0 or ``mixed``.
    """
    sim = Simulator(server, devices, channels, **options)
    await sim.start()
    try:
        if stop is None:
            await asyncio.Event().wait()
        else:
            await stop.wait()
    finally:
        await asyncio.shield(sim.stop())
    return sim
