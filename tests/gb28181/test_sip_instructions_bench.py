"""bench/sip_instructions.py, run as its users run it (valgrind's callgrind, installed by
scripts/setup.sh): a count for every step of every device, and the bench refuses a run in which a
device was not answered or its interval not written."""

from __future__ import annotations

from tests.benches import figures

STEPS = ("challenge", "register", "keepalive", "written")


def test_sip_instructions_counts_each_step_of_every_device() -> None:
    got = figures("sip_instructions.py", "--devices", "40", timeout=600)
    per_step = []
    for step in STEPS:
        value, unit = got[f"sip_instructions_{step}"].split()
        assert unit == "kinstr/device" and float(value) > 1.0, (step, got)  # a step that ran our code
        per_step.append(float(value))
    total = float(got["sip_instructions_per_device"].split()[0])
    assert abs(total - sum(per_step)) < 0.25  # the four, rounded
    assert per_step[1] > per_step[2]  # an authenticated REGISTER does more than a Keepalive
