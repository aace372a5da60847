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
    float(out["storm_server_cpu_settled_median"].split()[0])  # idle-corrected: a figure, of either sign
    assert float(out["storm_server_cpu_median"].split()[0]) > 0  # the server's own CPU, uncorrected
