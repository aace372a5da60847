"""Scheduled recording: the weekly timetable (across midnight, across the week's end), its
parser's contract, and the recorder starting and stopping channels as it says, on an injected
clock, in the platform's time zone (UTC+8 here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import EventBus
from xueliang.config import MediaConfig, RecordingConfig, RecordingPlanSpec
from xueliang.db.tables import Channel
from xueliang.media.hub import MediaHub
from xueliang.recording.writer import Recorder
from xueliang.timetable import (
    DAY,
    WEEK,
    TimetableError,
    minute_of_week,
    parse_clock,
    parse_timetable,
)

CST = timezone(timedelta(hours=8))
# 2026-12-04 is a Friday; 12-06 a Sunday, 12-07 a Monday
FRI = datetime(2026, 12, 4, tzinfo=CST)


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """Platform time: ``day`` days after Friday 2026-12-04, hh:mm."""
    return FRI + timedelta(days=day, hours=hh, minutes=mm)


FRIDAY_NIGHT = parse_timetable([{"days": [5], "start": "22:00", "end": "06:00"}])
SUNDAY_NIGHT = parse_timetable([{"days": [7], "start": "22:00", "end": "02:00"}])


@pytest.mark.parametrize(("t", "on"), [
    (at(0, 21, 59), False), (at(0, 22), True), (at(0, 23, 59), True), (at(1, 0), True),  # across midnight
    (at(1, 5, 59), True), (at(1, 6), False), (at(1, 22), False),  # Saturday night: not in the window
])
def test_a_window_across_midnight_runs_into_the_next_day(t: datetime, on: bool) -> None:
    assert FRIDAY_NIGHT.on(t) is on


@pytest.mark.parametrize(("t", "on"), [
    (at(2, 21, 59), False), (at(2, 22), True), (at(3, 0), True), (at(3, 1, 59), True), (at(3, 2), False),
    (at(-4, 1), True),  # Monday 1:00 of this week: last Sunday's window
])
def test_a_sunday_night_window_runs_into_monday_of_the_next_week(t: datetime, on: bool) -> None:
    assert SUNDAY_NIGHT.on(t) is on


def test_the_next_change_crosses_midnight_and_the_week() -> None:
    assert FRIDAY_NIGHT.next_change(at(0, 12)) == at(0, 22)
    assert FRIDAY_NIGHT.next_change(at(0, 23)) == at(1, 6)
    assert FRIDAY_NIGHT.next_change(at(1, 7)) == at(7, 22)  # next Friday
    assert SUNDAY_NIGHT.next_change(at(3, 1)) == at(3, 2)  # Monday 02:00
    assert SUNDAY_NIGHT.next_change(at(3, 3)) == at(9, 22)  # the Sunday after
    always = parse_timetable([{"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "24:00"}])
    assert always.on(at(0, 3)) and always.next_change(at(0, 3)) is None
    # Sunday 12:00 to Monday 12:00 joined with Monday's window: on across Sunday midnight
    joined = parse_timetable([{"days": [7], "start": "12:00", "end": "24:00"},
                              {"days": [1], "start": "00:00", "end": "12:00"}])
    assert joined.on(at(3, 0)) and joined.next_change(at(2, 13)) == at(3, 12)


@pytest.mark.parametrize("text", ["8:00", "24:01", "23:60", "ab:cd", "12-00", "", "１２:００", "12:0", None, 1200])
def test_bad_clock_times_are_refused(text: object) -> None:
    with pytest.raises(TimetableError):
        parse_clock(text)
    assert parse_clock("24:00", end=True) == DAY
    with pytest.raises(TimetableError, match="24:00"):
        parse_clock("24:00")


@given(st.integers(0, 23), st.integers(0, 59))
def test_every_clock_time_reads_back(h: int, m: int) -> None:
    assert parse_clock(f"{h:02d}:{m:02d}") == h * 60 + m


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-10, 30) | st.text(max_size=6),
                       lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(
                           ["days", "start", "end", "x"]), c, max_size=4), max_leaves=12)


@given(JSONISH)
@settings(max_examples=300)
def test_any_input_is_a_timetable_or_a_timetable_error(obj: object) -> None:
    try:
        table = parse_timetable(obj)
    except TimetableError as e:
        assert str(e)
        return
    assert parse_timetable(table.as_list()) == table  # what it writes reads back the same


CLOCKS = st.integers(0, 24 * 60 - 1).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")
WINDOWS = st.fixed_dictionaries({"days": st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True),
                                 "start": CLOCKS, "end": CLOCKS}).filter(lambda w: w["start"] != w["end"])


@given(st.lists(WINDOWS, min_size=1, max_size=4), st.integers(0, WEEK * 60 - 1))
@settings(max_examples=200)
def test_the_state_holds_until_the_next_change_and_flips_there(windows: list[dict[str, object]], second: int) -> None:
    table = parse_timetable(windows)
    t = datetime(2026, 11, 30, tzinfo=CST) + timedelta(seconds=second)  # a Monday
    nxt = table.next_change(t)
    if nxt is None:
        assert all(table.on(t + timedelta(hours=h)) == table.on(t) for h in range(0, 24 * 7, 5))
        return
    assert t < nxt <= t + timedelta(days=7)
    assert minute_of_week(nxt) == int(minute_of_week(nxt))  # on a minute
    for k in range(1, 8):  # the state does not change before it
        probe = t + (nxt - t) * k / 8
        assert table.on(probe) == table.on(t)
    assert table.on(nxt) != table.on(t)
    assert table.on(nxt - timedelta(seconds=1)) == table.on(t) or nxt - timedelta(seconds=1) <= t


# ---- the recorder follows the timetable ---------------------------------------------------------

DAYTIME, NIGHTS, WEEKEND = "34020000001320000001", "34020000001320000002", "34020000001320000003"


@pytest.fixture
async def recorder(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Recorder]:
    bus = EventBus()
    hub = MediaHub(MediaConfig(), bus)  # no source: a channel's task waits for its stream
    rec = Recorder(RecordingConfig(enabled=True), sessions, hub, tmp_path / "recordings", bus=bus,
                   utc_offset_hours=8)
    async with sessions() as s, s.begin():
        for cid in (DAYTIME, NIGHTS, WEEKEND):
            s.add(Channel(id=cid, name=cid, point_class=2, division_code="340102"))
    plans = {
        DAYTIME: [{"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"}],
        NIGHTS: [{"days": [5], "start": "22:00", "end": "06:00"}],
        WEEKEND: [{"days": [7], "start": "20:00", "end": "08:00"}],  # Sunday evening to Monday morning
    }
    for cid, table in plans.items():
        ch = await _channel(sessions, cid)
        await rec.plans.set(ch, RecordingPlanSpec(mode="scheduled", schedule=table), "test")
    yield rec
    await rec.stop()


async def _channel(sessions: async_sessionmaker[AsyncSession], cid: str) -> Channel:
    async with sessions() as s:
        ch = await s.get(Channel, cid)
    assert ch is not None
    return ch


@pytest.mark.parametrize(("when", "recording", "next_edge"), [
    (at(0, 7, 59), [], at(0, 8)),  # Friday before work
    (at(0, 8), [DAYTIME], at(0, 18)),
    (at(0, 18), [], at(0, 22)),
    (at(0, 23, 30), [NIGHTS], at(1, 6)),  # Friday night, across midnight
    (at(1, 5, 59), [NIGHTS], at(1, 6)),
    (at(1, 6), [], at(2, 20)),  # Saturday: nothing until Sunday evening
    (at(2, 23), [WEEKEND], at(3, 8)),  # Sunday night into Monday: across the week's end
    (at(3, 7, 59), [WEEKEND], at(3, 8)),
    (at(3, 8), [DAYTIME], at(3, 18)),  # Monday 08:00: one stops, the other starts
])
async def test_the_recorder_starts_and_stops_channels_as_the_timetable_says(
        recorder: Recorder, when: datetime, recording: list[str], next_edge: datetime) -> None:
    await recorder.apply_plans(now=when.astimezone(UTC))
    assert recorder.recording == sorted(recording)
    assert all(recorder.doing(c) == ("continuous",) for c in recording)
    assert recorder.next_change == next_edge.astimezone(UTC)


async def test_a_day_on_the_injected_clock(recorder: Recorder) -> None:
    """Minute by minute through Sunday to Monday noon: each channel records exactly inside its
    windows, and the recorder's next edge is where the set changes."""
    t = at(2, 19, 0).astimezone(UTC)
    seen: list[tuple[datetime, list[str]]] = []
    while t < at(3, 12).astimezone(UTC):
        await recorder.apply_plans(now=t)
        if not seen or seen[-1][1] != recorder.recording:
            seen.append((t, recorder.recording))
        t += timedelta(minutes=15)
    assert [(when.astimezone(CST), chans) for when, chans in seen] == [
        (at(2, 19), []), (at(2, 20), [WEEKEND]), (at(3, 8), [DAYTIME])]
