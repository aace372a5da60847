"""The daily rollup and the rates: seconds per state, unknown never online, filters, scope."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select, true

from xueliang.access.policy import Principal, scope_conditions
from xueliang.db.tables import DailyHealth, MaintenanceDuty, MaintenanceTeam, StateInterval
from xueliang.health.rates import RateFilter, rates
from xueliang.health.rollup import day_window, rollup_day, seconds_by_state
from xueliang.health.service import HealthService

DAY = date(2026, 11, 2)
START, END = day_window(DAY, 8.0)


@given(st.lists(st.tuples(st.sampled_from(["online", "fault", "offline", "unknown"]),
                          st.integers(-3600, 90000), st.integers(0, 90000)), max_size=8))
def test_seconds_always_add_up_to_the_day_and_uncovered_time_is_unknown(spans: list[tuple[str, int, int]]) -> None:
    # Non-overlapping intervals, as the history keeps them.
    ivs = []
    cursor = -7200
    for state, gap, length in spans:
        a = cursor + abs(gap) % 5000
        b = a + length
        ivs.append((state, START + timedelta(seconds=a), START + timedelta(seconds=b)))
        cursor = b
    out = seconds_by_state(ivs, START, END, END + timedelta(days=1))
    assert sum(out.values()) == 86400 or sum(out.values()) == 86400 + 0  # exactly a day
    covered_known = sum(
        max(0.0, (min(b, END) - max(a, START)).total_seconds()) for s, a, b in ivs if s != "unknown")
    assert abs(out["online_s"] + out["fault_s"] + out["offline_s"] - covered_known) <= len(ivs)


async def add_intervals(sessions: Any, rows: list[tuple[str, str, int, int | None]]) -> None:
    async with sessions() as s, s.begin():
        await s.execute(insert(StateInterval), [
            {"subject": subj, "subject_kind": "channel", "state": state, "start": START + timedelta(seconds=a),
             "end": START + timedelta(seconds=b) if b is not None else None, "detail": None, "since": None}
            for subj, state, a, b in rows])


async def test_rollup_and_rates_by_class_division_department_team(sessions, city) -> None:
    ch = city["channels"]  # 4 cameras: 2 of 甲局 (unit A), 2 of 乙局
    async with sessions() as s, s.begin():
        team = MaintenanceTeam(name="甲维保", company="甲公司", contacts=[])
        s.add(team)
        await s.flush()
        s.add(MaintenanceDuty(team_id=team.id, kind="unit", ref=str(city["unit_a"])))
        team_id = team.id
    await add_intervals(sessions, [
        (ch[0], "online", -1000, None),  # online all day
        (ch[1], "online", 0, 43200), (ch[1], "fault", 43200, 86400 + 10),  # half online, half VLOST
        (ch[2], "offline", -5, 21600),  # offline a quarter, then nothing known
        # ch[3]: no data at all: unknown, never online
    ])
    n = await rollup_day(sessions, DAY, 8.0, now=END + timedelta(hours=3))
    assert n == 4
    assert await rollup_day(sessions, DAY, 8.0, now=END + timedelta(hours=3)) == 4  # again: same rows
    async with sessions() as s:
        rows = {r.channel_id: r for r in (await s.scalars(select(DailyHealth))).all()}
    assert len(rows) == 4
    assert (rows[ch[0]].online_s, rows[ch[0]].unknown_s) == (86400, 0)
    assert (rows[ch[1]].online_s, rows[ch[1]].fault_s) == (43200, 43200)
    assert (rows[ch[2]].offline_s, rows[ch[2]].unknown_s) == (21600, 64800)
    assert rows[ch[3]].unknown_s == 86400 and rows[ch[3]].online_s == 0
    assert rows[ch[0]].team_id == team_id and rows[ch[2]].team_id is None

    f = RateFilter(DAY, DAY)
    out = await rates(sessions, f, scope=[], teams=None, group="department")
    assert out["total"]["availability"] == round(100 * (86400 + 86400) / (4 * 86400), 3)
    assert out["total"]["intact"] == round(100 * (86400 + 43200) / (4 * 86400), 3)
    by = {g["key"]: g for g in out["groups"]}
    assert by["甲局"]["availability"] == 100.0 and by["甲局"]["intact"] == 75.0
    assert by["乙局"]["availability"] == 0.0
    # A department user sees the rates of its own points only.
    dept = Principal(user_id=7, username="d", role="department_user", department="乙局")
    mine = await rates(sessions, f, scope=scope_conditions(dept), teams=None, group="department")
    assert [g["key"] for g in mine["groups"]] == ["乙局"] and mine["total"]["points"] == 2
    # The same scope said on the rows' own columns (no join), on both sources: the same answer.
    dims = HealthService.dims(dept)
    assert dims is not None and dims.departments == frozenset({"乙局"})
    for grp in ("department", "channel"):
        a = await rates(sessions, f, scope=scope_conditions(dept), teams=None, group=grp)
        b = await rates(sessions, f, scope=scope_conditions(dept), teams=None, group=grp, dims=dims)
        assert a == b
    # A team member: its team's points only; a member of no team: nothing.
    team_only = await rates(sessions, f, scope=[], teams=frozenset({team_id}))
    assert team_only["total"]["points"] == 2
    none = await rates(sessions, f, scope=[], teams=frozenset())
    assert none["total"]["points"] == 0 and none["note"] == "no data for this range"
    # Filters.
    assert (await rates(sessions, RateFilter(DAY, DAY, team_id=team_id), scope=[], teams=None))["total"]["points"] == 2
    assert (await rates(sessions, RateFilter(DAY, DAY, point_class=2), scope=[], teams=None))["total"]["points"] == 0
    div = await rates(sessions, RateFilter(DAY, DAY, division="340102000"), scope=[], teams=None)
    assert div["total"]["points"] == 2  # devices 0 and 3 (d % 3 == 0): cameras of device 0 only here
    # Group rows and channel rows agree, whatever the grouping.
    for grp in ("class", "division", "department", "unit", "team", "day"):
        by_groups = await rates(sessions, f, scope=[], teams=None, group=grp)
        # A scope only a join can say: the channel rows answer.
        by_channels = await rates(sessions, f, scope=[true()], teams=None, group=grp)
        assert by_groups["groups"] == by_channels["groups"] and by_groups["total"] == by_channels["total"]
    empty = await rates(sessions, RateFilter(DAY + timedelta(days=5), DAY + timedelta(days=9)), scope=[], teams=None)
    assert empty["note"] == "no data for this range" and empty["total"]["availability"] is None


async def test_picture_counts_stay_through_the_rollup(sessions, city) -> None:
    from xueliang.bus import BusEvent, EventBus
    from xueliang.health.history import HistoryRecorder

    rec = HistoryRecorder(sessions, EventBus())
    at = (START + timedelta(hours=3)).timestamp()
    ch = city["channels"][0]
    await rec._handle([BusEvent("stream.attempt", f"live/{ch}", {"ok": True, "channel_id": ch}, at),
                       BusEvent("stream.attempt", f"live/{ch}", {"ok": False, "channel_id": ch}, at + 1),
                       BusEvent("stream.attempt", f"playback/{ch}/x", {"ok": False, "channel_id": ch}, at + 2)])
    await rollup_day(sessions, DAY, 8.0, now=datetime.now(UTC))
    out = await rates(sessions, RateFilter(DAY, DAY, channel_id=ch), scope=[], teams=None)
    assert (out["total"]["attempts"], out["total"]["pictures"], out["total"]["picture_rate"]) == (2, 1, 50.0)
