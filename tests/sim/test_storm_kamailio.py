"""bench/anchors/storm_kamailio.py's xueliang side: the script that measures the issue 18 anchor
runs its storm against a real xueliang server (Kamailio itself is not installed by setup; its
side is the same storm against another process). It once failed at its first storm when
sip_storm.py's client gained options this script did not set."""

from __future__ import annotations

import pytest

from tests.benches import figures


@pytest.mark.serial
def test_the_anchor_script_storms_a_real_xueliang() -> None:
    out = figures("anchors/storm_kamailio.py", "--target", "xueliang", "--rounds", "1", "--devices", "300",
                  "--rate", "1000", timeout=240)
    assert out["storm_registered"] == "300 devices"
    assert out["storm_failures"] == "0 devices"
    assert out["storm_database_devices"] == "300 rows"  # the storm's settled figure includes its rows
    float(out["storm_server_cpu_settled_median"].split()[0])  # idle-corrected: a figure, of either sign
    assert float(out["storm_server_cpu_median"].split()[0]) > 0  # the server's own CPU, uncorrected


@pytest.mark.serial
def test_the_answering_only_server_answers_the_storm_and_keeps_no_device() -> None:
    """``--target answering`` (bench/anchors/answering_only.py): every device is answered, and
    the server's registry stays empty, which is what makes it the SIP answers alone."""
    out = figures("anchors/storm_kamailio.py", "--target", "answering", "--rounds", "1", "--devices", "300",
                  "--rate", "1000", timeout=240)
    assert out["answering_storm_registered"] == "300 devices"
    assert out["answering_storm_failures"] == "0 devices"
    assert float(out["answering_storm_server_cpu_median"].split()[0]) > 0
    assert out["answering_storm_database_devices"] == "0 rows"


@pytest.mark.serial
def test_a_part_switched_off_still_answers_every_device() -> None:
    """``sip_storm.py --switch-off history`` (one part of what follows a registration off, to
    see what it costs): the server still answers the whole storm."""
    out = figures("sip_storm.py", "--switch-off", "history", "--devices", "300", "--rate", "1000", timeout=240)
    assert out["storm_registered"] == "300 devices"
    assert out["storm_keepalives"] == "300 answered"
