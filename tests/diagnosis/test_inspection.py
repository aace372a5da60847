"""Inspections end to end: simulated cameras over GB/T 28181, sampled through the media hub,
diagnosed; a fault confirmed twice reaches the state history (and so the tickets), and clears."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.test_live_chain import Live, _live
from xueliang.diagnosis.inspection import muted, slot

pytestmark = pytest.mark.slow


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async for x in _live(tmp_path, {}):
        yield x


async def _diagnose(c, ch: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    r = await c.post(f"/api/v1/channels/{ch}/diagnose", timeout=40)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_a_covered_camera_is_confirmed_faulty_on_two_samples_and_clears(live: Live) -> None:
    async with live.client(timeout=40) as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][0]["id"]
        r = await c.post(f"/api/v1/channels/{ch}/diagnosis/reference")
        assert r.status_code == 200, r.text
        ok = await _diagnose(c, ch)
        assert ok["picture"] and ok["frames"] >= 2 and ok["faults"] == [] and ok["confirmed"] == [], ok
        # the stream the inspection opened is closed again (no one was watching)
        for _ in range(50):
            if live.platform.media.stream(f"live/{ch}") is None:
                break
            await asyncio.sleep(0.1)
        assert live.platform.media.stream(f"live/{ch}") is None

        live.sim.channel(ch).picture_fault = "covered"
        seen = []
        for _ in range(6):  # the simulator switches to the covered picture at its clip's next loop
            d = await _diagnose(c, ch)
            seen.append(d["faults"])
            if d["confirmed"] == ["occlusion"]:
                break
        assert d["confirmed"] == ["occlusion"], seen
        assert seen.count(["occlusion"]) >= 2  # confirmed on the second sample showing it, not the first
        state = None
        for _ in range(60):  # the history takes events in batches of a second
            state = live.platform.health.history.state_of(ch)
            if state is not None and state.state == "fault":
                break
            await asyncio.sleep(0.1)
        assert state is not None and state.state == "fault" and state.detail == "picture: occlusion", state

        listing = (await c.get("/api/v1/diagnosis/faults")).json()
        assert listing["faulty"] == 1 and listing["channels"][0]["channel_id"] == ch
        assert listing["by_class"] and sum(v.get("occlusion", 0) for v in listing["by_class"].values()) == 1

        live.sim.channel(ch).picture_fault = None
        for _ in range(6):
            d = await _diagnose(c, ch)
            if d["confirmed"] == []:
                break
        assert d["confirmed"] == [], d
        for _ in range(60):
            state = live.platform.health.history.state_of(ch)
            if state is not None and state.state == "online":
                break
            await asyncio.sleep(0.1)
        assert state is not None and state.state == "online", state
        bad = await c.put(f"/api/v1/channels/{ch}/diagnosis/thresholds", json={"day": {"blurr": 0.5}})
        assert bad.status_code == 422 and "blurr" in bad.text
        good = await c.put(f"/api/v1/channels/{ch}/diagnosis/thresholds", json={"night": {"noise": 0.8}})
        assert good.status_code == 200, good.text
        hist = (await c.get(f"/api/v1/channels/{ch}/diagnoses")).json()
        assert hist["reference_at"] and len(hist["items"]) >= 4 and hist["thresholds"] == {"night": {"noise": 0.8}}
        snap = await c.get(f"/api/v1/channels/{ch}/diagnosis/snapshot.jpg")
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"


async def test_an_inspection_reuses_a_watched_stream_and_leaves_it_open(live: Live) -> None:
    async with live.client(timeout=40) as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][1]["id"]
        async with c.stream("GET", f"/api/v1/channels/{ch}/live.flv") as viewer:
            assert viewer.status_code == 200
            stream = live.platform.media.stream(f"live/{ch}")
            assert stream is not None
            d = await _diagnose(c, ch)
            assert d["picture"], d
            # the same stream, still open, for its viewer
            assert live.platform.media.stream(f"live/{ch}") is stream and not stream.ended


def test_the_plan_spreads_cameras_over_the_interval_and_keeps_mute_windows() -> None:
    moments = [slot(f"3402000000132{i:07d}", 3600.0) for i in range(2000)]
    assert all(0 <= m < 3600 for m in moments)
    per_quarter = [sum(1 for m in moments if q * 900 <= m < (q + 1) * 900) for q in range(4)]
    assert min(per_quarter) > 400, per_quarter  # 500 each if even
    assert slot("34020000001320000001", 3600.0) == slot("34020000001320000001", 3600.0)
    night = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
    assert muted(["23:00-01:00"], night) and muted(["23:00-01:00"], night.replace(hour=0, minute=59))
    assert not muted(["23:00-01:00"], night.replace(hour=1, minute=0))
    assert not muted([], night) and muted(["02:00-04:00", "23:15-23:45"], night)


async def test_the_command_diagnoses_a_channel_of_the_running_platform(live: Live) -> None:
    from typer.testing import CliRunner

    from xueliang import cli

    async with live.client() as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][2]["id"]
    token = live.headers["Authorization"].removeprefix("Bearer ")

    def run(*extra: str) -> tuple[int, str]:
        r = CliRunner().invoke(cli.app, ["health", "diagnose", ch, "--api", live.base, "--seconds", "2", "--json", *extra])
        return r.exit_code, r.output

    code, out = await asyncio.to_thread(run, "--token", token)
    assert code == 0, out
    d = json.loads(out)
    assert d["frames"] >= 2 and "signal_loss" not in d["faults"], d
    # a token that is not one: the platform refuses the stream, and the command says it cannot read it
    code, out = await asyncio.to_thread(run, "--token", "not-a-token")
    assert code == 2 and "cannot open" in out, out


async def test_a_ptz_camera_left_away_from_its_home_preset_is_told(live: Live) -> None:
    from sqlalchemy import update

    from xueliang.db.tables import Channel

    async with live.client(timeout=40) as c:
        items = (await c.get("/api/v1/channels")).json()["items"]
        ch, fixed = items[3]["id"], items[2]["id"]
        async with live.platform.sessions() as s, s.begin():
            await s.execute(update(Channel).where(Channel.id == ch).values(ptz_type=1))  # a dome
            await s.execute(update(Channel).where(Channel.id == fixed).values(ptz_type=3))  # a box camera
        for cam in (ch, fixed):
            r = await c.post(f"/api/v1/channels/{cam}/diagnosis/reference")
            assert r.status_code == 200, r.text
        home = await _diagnose(c, ch)
        assert home["home_preset"] is True and home["faults"] == [], home
        assert (await _diagnose(c, fixed))["home_preset"] is None  # a fixed camera has no preset
        live.sim.channel(ch).picture_fault = "turned"
        seen = []
        for _ in range(6):  # the turned picture comes at the simulated clip's next loop
            d = await _diagnose(c, ch)
            seen.append(d["faults"])
            if "scene_changed" in d["faults"]:
                break
        assert "scene_changed" in d["faults"] and d["home_preset"] is False, seen


async def test_a_camera_takes_its_reference_at_its_first_healthy_inspection_and_keeps_it(live: Live) -> None:
    async with live.client(timeout=40) as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][0]["id"]

        async def until(want: str, *, gone: bool = False) -> dict:  # type: ignore[type-arg]
            seen = []
            for _ in range(6):  # the simulator changes the picture at its clip's next loop
                d = await _diagnose(c, ch)
                seen.append(d["faults"])
                if (want not in d["faults"]) if gone else (want in d["faults"]):
                    return d
            raise AssertionError(seen)

        async def calibration() -> dict:  # type: ignore[type-arg]
            return (await c.get(f"/api/v1/channels/{ch}/diagnoses")).json()  # type: ignore[no-any-return]

        # a lens covered from the start: a faulty picture is never taken as the reference
        live.sim.channel(ch).picture_fault = "covered"
        await until("occlusion")
        assert (await calibration())["reference_at"] is None
        assert (await c.get(f"/api/v1/channels/{ch}/diagnosis/reference.jpg")).status_code == 404
        # uncovered: its first healthy picture becomes the reference, by acceptance
        live.sim.channel(ch).picture_fault = None
        healthy = await until("occlusion", gone=True)
        assert healthy["faults"] == [], healthy
        cal = await calibration()
        assert cal["reference_by"] == "acceptance" and cal["reference_at"], cal
        ref = await c.get(f"/api/v1/channels/{ch}/diagnosis/reference.jpg")
        assert ref.status_code == 200 and ref.content[:2] == b"\xff\xd8"
        # and it is what later pictures are held against: the camera turned is a changed scene,
        # and the reference is not renewed by later inspections
        live.sim.channel(ch).picture_fault = "turned"
        await until("scene_changed")
        await _diagnose(c, ch)
        assert (await calibration())["reference_at"] == cal["reference_at"]
        latest = (await c.get(f"/api/v1/channels/{ch}")).json()["diagnosis"]
        assert "scene_changed" in latest["confirmed"] and latest["snapshot"], latest
