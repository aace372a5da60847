"""The demo's simulated city: some faults on purpose, and alarms now and then."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from tests.waiting import until
from xueliang import demo_sim


class _Device:
    def __init__(self, device_id: str, registered: bool = True) -> None:
        self.id, self.registered = device_id, registered
        self.channels = {f"{device_id}-c1": object(), f"{device_id}-c2": object()}
        self.sent: list[dict[str, Any]] = []

    async def send_alarm(self, channel: str, **kw: Any) -> int:
        self.sent.append({"channel": channel, **kw})
        return 200


async def test_alarms_come_from_registered_cameras_that_still_speak() -> None:
    ok, silent, away = _Device("ok"), _Device("silent"), _Device("away", registered=False)
    task = asyncio.create_task(demo_sim._alarms(SimpleNamespace(devices=[ok, silent, away]), {"silent"},
                                                every=(0.001, 0.002)))
    # rounds every 1-2 ms; a loaded machine runs fewer in a given time, so wait for five
    await until(lambda: len(ok.sent) >= 5, every=0.01)
    task.cancel()
    assert len(ok.sent) >= 5 and not silent.sent and not away.sent
    texts = {a[2] for a in demo_sim._DEMO_ALARMS}
    assert all(a["channel"] in ok.channels and a["description"] in texts and 1 <= a["priority"] <= 4 for a in ok.sent)


def test_demo_specs_have_faults_on_purpose() -> None:
    devices = [SimpleNamespace(id=f"3499010000118{i:07d}", name=f"nvr{i}",
                               channels=[(f"3499010000131{i:05d}{j:02d}", f"c{j}") for j in range(8)]) for i in range(48)]
    specs, failing = demo_sim.demo_specs(devices)
    statuses = [c.status for s in specs for c in s.channels]
    assert len(specs) == 48 and len(failing) == 2
    assert statuses.count("ON") > 0.9 * len(statuses) and "OFF" in statuses and "VLOST" in statuses
