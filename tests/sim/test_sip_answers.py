"""bench/sip_answers.py: each piece of a registration timed on the real platform in one process.
Small counts; the script itself refuses to print a figure unless every repeated datagram was
answered with the status its kind should get (401 for the challenge, 200 for the others)."""

from __future__ import annotations

from pathlib import Path

from tests.benches import figures


def test_each_piece_is_timed_on_the_real_platform(tmp_path: Path) -> None:
    out = figures("sip_answers.py", "--devices", "300", "--repeat", "200", cwd=tmp_path)
    for name in ("sip_answer_challenge", "sip_answer_register", "sip_answer_keepalive",
                 "sip_fresh_registration_events", "sip_flush_per_device", "sip_flush_loop_per_device"):
        value, unit = out[name].split()
        assert unit == "us" and float(value) > 0, name
