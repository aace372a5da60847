"""The inspection plan over a real database (SQLite and PostgreSQL): every camera that can give a
picture is due once per interval of its class, whatever the ticks; the others never."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from xueliang.bus import EventBus
from xueliang.config import DiagnosisConfig
from xueliang.db.tables import Channel, Device
from xueliang.diagnosis.inspection import Inspector


async def test_each_camera_is_due_once_per_interval_of_its_class(sessions: Any) -> None:
    async with sessions() as s, s.begin():
        await s.execute(insert(Device), [{"id": "34020000001110000001", "name": "on", "online": True},
                                         {"id": "34020000001110000002", "name": "off", "online": False}])
        rows = []
        for i in range(60):
            rows.append({"id": f"340200000013200{i:05d}", "name": f"c{i}", "kind": "camera",
                         "device_id": "34020000001110000001", "point_class": (1, 2, None)[i % 3],
                         "status": "OFF" if i == 59 else "ON", "division_code": "340102"})
        rows.append({"id": "34020000001320009999", "name": "x", "kind": "camera", "device_id": "34020000001110000002",
                     "point_class": 1, "status": "ON", "division_code": "340102"})
        await s.execute(insert(Channel), rows)
    cfg = DiagnosisConfig(interval_seconds={1: 600, 2: 1200, 3: 1200})
    insp = Inspector(cfg, sessions, EventBus(), hub=None, objects=None)  # type: ignore[arg-type]
    start = 1_000_000.0
    seen: dict[str, int] = {}
    t = start
    # two hours in uneven ticks (a busy scheduler is late now and then)
    for step in [31.0, 29.5, 75.0, 5.0] * 300:
        if t + step > start + 7200:
            break
        for cid in await insp.due(t + step, t):
            seen[cid] = seen.get(cid, 0) + 1
        t += step
    span = t - start
    for i in range(59):
        cid = f"340200000013200{i:05d}"
        interval = 600 if i % 3 == 0 else 1200
        assert abs(seen.get(cid, 0) - span / interval) <= 1, (cid, seen.get(cid), span / interval)
    assert "34020000001320000059" not in seen  # its catalog says OFF
    assert "34020000001320009999" not in seen  # its device is offline
    # a pause longer than an interval: everything is due at once, once
    late = await insp.due(t + 5000, t)
    assert len(late) == 59 and len(set(late)) == 59
