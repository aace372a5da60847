"""SIP passwords (issue 10, item 12): no working default, device passwords sealed at rest.

The adversaries: a device on the camera network trying the factory password, and someone who
holds a copy of the database.
"""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import EventBus
from xueliang.config import SipConfig
from xueliang.db.tables import Device
from xueliang.gb28181.registrar import Registrar
from xueliang.gb28181.service import SignallingService
from xueliang.gb28181.sip import format_via, generate_branch, make_authorization, make_request
from xueliang.registry.models import DeviceIn, DevicePatch
from xueliang.registry.service import RegistryService
from xueliang.sealing import Sealer

DEV = "34020000001320000041"
OTHER = "34020000001320000042"
ADDR = ("192.0.2.10", 5060)


def _login(r: Registrar, password: str, dev: str = DEV, now: float = 100.0) -> int:
    uri = f"sip:34020000002000000001@{r.realm}"

    def req(auth: str | None) -> object:
        headers = [("Expires", "3600")] + ([("Authorization", auth)] if auth else [])
        return make_request("REGISTER", uri, via=format_via("UDP", ADDR[0], ADDR[1], generate_branch()),
                            from_=f"<sip:{dev}@{r.realm}>;tag=1", to=f"<sip:{dev}@{r.realm}>", call_id="c-" + dev,
                            cseq=1, contact=f"<sip:{dev}@{ADDR[0]}:{ADDR[1]}>", headers=headers)

    challenge = r.register(req(None), ADDR, "udp", now, 1e9)  # type: ignore[arg-type]
    assert challenge.status == 401
    auth = make_authorization(username=dev, password=password, challenge=dict(challenge.headers)["WWW-Authenticate"],
                              method="REGISTER", uri=uri)
    return r.register(req(auth), ADDR, "udp", now, 1e9).status  # type: ignore[arg-type]


def test_no_password_works_out_of_the_box(tmp_path: Path) -> None:
    """The factory password of the old default, 12345678, opens nothing; unknown devices wait."""
    cfg = SipConfig()
    assert cfg.admission == "pending"
    svc = SignallingService(cfg, None, EventBus(), var_dir=tmp_path)  # type: ignore[arg-type]
    assert _login(svc.registrar, "12345678") == 403
    # the generated password is kept, private, and the same at the next start
    path = tmp_path / "sip_password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == svc.password and len(svc.password) >= 16
    again = SignallingService(SipConfig(), None, EventBus(), var_dir=tmp_path)  # type: ignore[arg-type]
    assert again.password == svc.password
    # a device given that password registers (admitted by an administrator first)
    svc.registrar.load(DEV, None, "accepted")
    assert _login(svc.registrar, svc.password) == 200


def test_a_configured_password_wins(tmp_path: Path) -> None:
    svc = SignallingService(SipConfig(password="site-pass-1", admission="open"), None, EventBus(),  # type: ignore[arg-type]
                            var_dir=tmp_path)
    assert svc.password == "site-pass-1" and not (tmp_path / "sip_password").exists()
    assert _login(svc.registrar, "site-pass-1") == 200


async def test_device_passwords_are_sealed_at_rest_and_still_register(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    sealer = Sealer(b"platform-secret-for-tests-0123456789")
    bus = EventBus()
    registry = RegistryService(sessions, bus, sealer=sealer)
    await registry.create_device(DeviceIn(id=DEV, password="own-pass-1"))
    async with sessions() as s:
        stored = await s.scalar(select(Device.password).where(Device.id == DEV))
    assert stored is not None and stored.startswith("v1:") and "own-pass-1" not in stored
    svc = SignallingService(SipConfig(host="127.0.0.1", port=0, password="platform-pw"), sessions, bus,
                            sealer=sealer, var_dir=tmp_path)
    await svc.start()
    try:
        assert _login(svc.registrar, "own-pass-1") == 200
        # a password set later reaches signalling sealed, and works there in clear
        await registry.update_device(DEV, DevicePatch(password="own-pass-2"))
        async with sessions() as s:
            stored2 = await s.scalar(select(Device.password).where(Device.id == DEV))
        assert stored2 is not None and stored2.startswith("v1:") and "own-pass-2" not in stored2
        assert _login(svc.registrar, "own-pass-2", now=200.0) == 200
        assert _login(svc.registrar, "own-pass-1", now=201.0) == 403
    finally:
        await svc.stop()


async def test_clear_passwords_keep_working_and_are_sealed_at_start(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    sealer = Sealer(b"platform-secret-for-tests-0123456789")
    async with sessions() as s, s.begin():
        s.add(Device(id=DEV, name="old", type_code="132", password="legacy-pass", admission="accepted"))
    svc = SignallingService(SipConfig(host="127.0.0.1", port=0, password="platform-pw"), sessions, EventBus(),
                            sealer=sealer, var_dir=tmp_path)
    await svc.start()
    try:
        assert _login(svc.registrar, "legacy-pass") == 200
        async with sessions() as s:
            stored = await s.scalar(select(Device.password).where(Device.id == DEV))
        assert stored is not None and stored.startswith("v1:") and "legacy-pass" not in stored
    finally:
        await svc.stop()


async def test_a_sealed_password_moved_to_another_device_opens_nothing(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    """Someone who can write the database copies a known device's sealed password onto another
    row: that device registers neither with the copied password nor with the platform's."""
    sealer = Sealer(b"platform-secret-for-tests-0123456789")
    registry = RegistryService(sessions, EventBus(), sealer=sealer)
    await registry.create_device(DeviceIn(id=DEV, password="own-pass-1"))
    await registry.create_device(DeviceIn(id=OTHER))
    async with sessions() as s, s.begin():
        sealed = await s.scalar(select(Device.password).where(Device.id == DEV))
        await s.execute(update(Device).where(Device.id == OTHER).values(password=sealed))
    svc = SignallingService(SipConfig(host="127.0.0.1", port=0, password="platform-pw"), sessions, EventBus(),
                            sealer=sealer, var_dir=tmp_path)
    await svc.start()
    try:
        assert _login(svc.registrar, "own-pass-1", dev=OTHER) == 403
        assert _login(svc.registrar, "platform-pw", dev=OTHER, now=101.0) == 403
        assert _login(svc.registrar, "own-pass-1", dev=DEV, now=102.0) == 200
    finally:
        await svc.stop()
