"""Stand-ins for what a piece under test needs of its surroundings, shared by the tests."""

from __future__ import annotations

from typing import Any


class NoCodecSource:
    """What an output (media/outputs.py) needs of its stream: no codec yet, and to be told of
    its readers."""

    codec = None
    audio_config = None
    parameter_sets = None

    def _readers_changed(self) -> None:
        return None

    def _reader_left(self, reader: Any) -> None:
        return None
