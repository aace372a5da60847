from __future__ import annotations

from pathlib import Path

import pytest

FOOTAGE = Path(__file__).resolve().parents[2] / "var" / "footage"


@pytest.fixture(scope="session")
def footage() -> Path:
    """The real footage scripts/footage.sh fetches (part of the test command's setup)."""
    missing = [f for f in ("vtest.avi", "tree.avi") if not (FOOTAGE / f).is_file()]
    if missing:
        pytest.fail(f"footage missing ({', '.join(missing)}): run scripts/footage.sh (make test does)")
    return FOOTAGE
