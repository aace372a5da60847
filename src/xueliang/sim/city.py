"""A generated fictional city for the demo and the benchmarks: divisions, units of every
category, their systems, NVR devices and camera points with coordinates, classes and tiers.

Deterministic for a seed, so the demo looks the same on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Device, Division, Platform, Unit

#: A fictional city under a real province: 3499 is a city code no national list uses (Anhui's
#: cities are 3401–3418; tests/registry/test_divisions.py checks the shipped list has no 3499),
#: so the demo's divisions sit in the real tree beside the national list without colliding.
CITY = ("34", "安徽省", "3499", "雪亮市")
CENTER = (117.25, 31.85)  # somewhere plausible in East China; the city itself is fictional
COUNTIES = ["东湖区", "西山区", "南河县", "北原县"]
TOWNSHIPS = ["城关镇", "新华街道", "河口镇"]
VILLAGES = ["前进村", "和平社区", "柳树村"]
UNIT_NAMES = {
    "government": ["区政府", "公安分局", "街道办事处"],
    "enterprise": ["自来水公司", "供电所", "物流园"],
    "public_service": ["第一中学", "人民医院", "汽车客运站", "中心小学"],
    "key_site": ["加油站", "大酒店", "体育馆", "网吧"],
    "shop": ["便利店", "五金店"],
    "residential": ["阳光小区", "幸福家园"],
}
DEPARTMENTS = {
    "government": "政法委",
    "enterprise": "应急管理局",
    "public_service": "教育局",
    "key_site": "公安局",
    "shop": "市场监管局",
    "residential": "住建局",
}
PLACES = [
    "大门",
    "路口",
    "广场",
    "停车场",
    "北门",
    "操场",
    "河道",
    "桥头",
    "主干道",
    "出入口",
    "制高点",
    "楼顶",
]


@dataclass
class DemoDevice:
    id: str
    name: str
    unit_name: str
    channels: list[tuple[str, str]] = field(default_factory=list)  # (channel id, name)


@dataclass
class DemoCity:
    divisions: list[dict[str, object]]
    units: list[dict[str, object]]
    platforms: list[dict[str, object]]
    devices: list[DemoDevice]
    channels: list[dict[str, object]]


def generate(channels_per_unit: int = 4, seed: int = 7, counties: int = 4) -> DemoCity:
    rnd = random.Random(seed)
    prov, prov_name, city, city_name = CITY
    divisions: list[dict[str, object]] = [
        {"code": prov, "name": prov_name, "level": "province", "parent_code": None},
        {"code": city, "name": city_name, "level": "city", "parent_code": prov},
    ]
    units: list[dict[str, object]] = []
    platforms: list[dict[str, object]] = []
    devices: list[DemoDevice] = []
    channels: list[dict[str, object]] = []
    seq = 0
    for ci, cname in enumerate(COUNTIES[:counties], start=1):
        county = f"{city}{ci:02d}"
        divisions.append({"code": county, "name": cname, "level": "county", "parent_code": city})
        cx = CENTER[0] + (ci - 2.5) * 0.12
        cy = CENTER[1] + ((ci % 2) - 0.5) * 0.1
        for ti, tname in enumerate(TOWNSHIPS, start=1):
            town = f"{county}{ti:03d}"
            divisions.append(
                {
                    "code": town,
                    "name": f"{cname}{tname}",
                    "level": "township",
                    "parent_code": county,
                }
            )
            tx, ty = cx + (ti - 2) * 0.035, cy + rnd.uniform(-0.02, 0.02)
            for vi, vname in enumerate(VILLAGES, start=1):
                village = f"{town}{vi:03d}"
                divisions.append(
                    {
                        "code": village,
                        "name": f"{tname}{vname}",
                        "level": "village",
                        "parent_code": town,
                    }
                )
            for cat, names in UNIT_NAMES.items():
                name = f"{cname}{tname}{rnd.choice(names)}"
                if any(u["name"] == name for u in units):
                    continue
                unit_id = len(units) + 1
                village = f"{town}{rnd.randint(1, len(VILLAGES)):03d}"
                ux, uy = tx + rnd.uniform(-0.012, 0.012), ty + rnd.uniform(-0.012, 0.012)
                units.append(
                    {
                        "id": unit_id,
                        "name": name,
                        "category": cat,
                        "department": DEPARTMENTS[cat],
                        "division_code": village,
                        "address": f"{city_name}{cname}{tname}{rnd.randint(1, 300)}号",
                        "head_contact": f"负责人 139{rnd.randint(10000000, 99999999)}",
                    }
                )
                retention = rnd.choice([15, 30, 30, 60, 90, 90])
                std = rnd.random() > 0.2
                platforms.append(
                    {
                        "unit_id": unit_id,
                        "segment": "1",
                        "built_on": str(rnd.randint(2012, 2024)),
                        "kind": "platform" if cat in ("government", "public_service") else "none",
                        "signal": "digital",
                        "platform_maker": rnd.choice(["海康威视", "大华", "宇视", "天地伟业"]),
                        "platform_standard": std,
                        "platform_model": rnd.choice(["iVMS-8700", "DSS", "NVR4216", "DS-7816N"]),
                        "sdk_available": std,
                        "camera_maker": "海康威视",
                        "camera_models": f"DS-2CD3T46 {channels_per_unit}台",
                        "camera_count": channels_per_unit,
                        "camera_type": "network",
                        "camera_standard": std,
                        "recorder_maker": "海康威视",
                        "recorder_models": "DS-7816N 1台",
                        "recorder_count": 1,
                        "recorder_standard": std,
                        "network": rnd.choice(["lan", "internet", "other"]),
                        "uplink_mbps": float(rnd.choice([20, 50, 100])),
                        "storage_mode": "recorder",
                        "retention_days": retention,
                        "coverage": rnd.choice("ABC"),
                    }
                )
                seq += 1
                device_id = f"{county}00001180{seq:06d}"
                dev = DemoDevice(device_id, f"{name}NVR", name)
                devices.append(dev)
                for k in range(channels_per_unit):
                    seq += 1
                    tier = rnd.choices(["high", "building", "street"], weights=[1, 2, 6])[0]
                    cls = (
                        1
                        if cat == "government" and k == 0
                        else (2 if cat in ("public_service", "key_site", "enterprise") else 3)
                    )
                    key = cat == "key_site" and k == 0
                    ch_id = f"{county}00001310{seq:06d}"
                    ch_name = f"{name}{rnd.choice(PLACES)}{k + 1}"
                    dev.channels.append((ch_id, ch_name))
                    labelled = cls == 1 or rnd.random() > 0.1
                    channels.append(
                        {
                            "id": ch_id,
                            "name": ch_name,
                            "kind": "camera",
                            "device_id": device_id,
                            "unit_id": unit_id,
                            "department": DEPARTMENTS[cat],
                            "division_code": village,
                            "point_class": cls,
                            "coverage": rnd.choice("ABC"),
                            "tier": tier,
                            "ptz_type": 1 if tier == "high" else rnd.choice([1, 2, 3, 3]),
                            "longitude": round(ux + rnd.uniform(-0.004, 0.004), 6)
                            if labelled
                            else None,
                            "latitude": round(uy + rnd.uniform(-0.004, 0.004), 6)
                            if labelled
                            else None,
                            "address": f"{cname}{tname}{rnd.choice(PLACES)}",
                            "key_site": key,
                            "retention_days_required": 90 if key else 30,
                            "status": "UNKNOWN",
                            "manufacturer": "海康威视",
                            "model": "DS-2CD3T46",
                        }
                    )
    return DemoCity(divisions, units, platforms, devices, channels)


async def load(
    sessions: async_sessionmaker[AsyncSession], city: DemoCity, password: str | None = None
) -> None:
    """Insert the city into an empty registry in one transaction."""
    async with sessions() as s, s.begin():
        # the province is real: the national list has usually brought it already
        have = set((await s.scalars(select(Division.code).where(
            Division.code.in_([str(d["code"]) for d in city.divisions if len(str(d["code"])) <= 4])
        ))).all())
        await s.execute(insert(Division), [d for d in city.divisions if d["code"] not in have])
        await s.execute(insert(Unit), city.units)
        await s.execute(insert(Platform), city.platforms)
        units = {u["name"]: u["id"] for u in city.units}
        await s.execute(
            insert(Device),
            [
                {
                    "id": d.id,
                    "name": d.name,
                    "type_code": "118",
                    "unit_id": units[d.unit_name],
                    "manufacturer": "xueliang-sim",
                    "model": "SIM-NVR",
                    "password": password,
                    "admission": "accepted",
                    "channel_count": len(d.channels),
                }
                for d in city.devices
            ],
        )
        await s.execute(insert(Channel), city.channels)
