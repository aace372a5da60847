"""bench/storm_rows.py, run as its users run it: every figure given, and every row it times is
written (the bench exits non-zero when a table holds other than one row a device)."""

from __future__ import annotations

from tests.benches import figures


def test_storm_rows_bench_times_every_row_it_writes() -> None:
    got = figures("storm_rows.py", "--devices", "300", "--rounds", "1")
    names = [f"storm_rows_sqlite_{t}_cpu_s" for t in ("devices", "events", "intervals")]
    for name in [*names, "storm_rows_sqlite_cpu_s", "storm_rows_writer_cpu_s", "storm_rows_writer_main_thread_cpu_s"]:
        value, unit = got[name].split()
        assert unit == "s" and float(value) >= 0.0, (name, got[name])
    total = float(got["storm_rows_sqlite_cpu_s"].split()[0])
    assert abs(total - sum(float(got[n].split()[0]) for n in names)) < 0.0015  # the three, rounded
