"""MANSRTSP: playback control bodies sent in SIP INFO (``Content-Type: Application/MANSRTSP``).

    PLAY RTSP/1.0\\r\\nCSeq: N\\r\\nRange: npt=now-\\r\\n       resume
    PAUSE RTSP/1.0\\r\\nCSeq: N\\r\\nPauseTime: now\\r\\n       pause
    PLAY RTSP/1.0\\r\\nCSeq: N\\r\\nRange: npt=<seconds>-\\r\\n seek (seconds from the start)
    PLAY RTSP/1.0\\r\\nCSeq: N\\r\\nScale: 2.0\\r\\n            speed (0.25–4; negative = reverse)
    TEARDOWN RTSP/1.0\\r\\nCSeq: N\\r\\n                      stop

Sans-IO: build strings, parse strings or bytes into :class:`MansrtspRequest`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = [
    "MansrtspError",
    "MansrtspRequest",
    "parse_mansrtsp",
    "pause",
    "play",
    "resume",
    "seek",
    "speed",
    "teardown",
]

MIN_SCALE = 0.25
MAX_SCALE = 4.0
MAX_BODY_CHARS = 4096
METHODS = frozenset({"PLAY", "PAUSE", "TEARDOWN"})


class MansrtspError(ValueError):
    """A MANSRTSP body cannot be built or parsed; the message says why."""


def _check_cseq(cseq: int) -> int:
    if not isinstance(cseq, int) or isinstance(cseq, bool) or not 0 <= cseq <= 0xFFFFFFFF:
        raise MansrtspError(f"CSeq must be an integer 0..4294967295, got {cseq!r}")
    return cseq


def _fmt_seconds(seconds: float) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise MansrtspError(f"seek position must be a number, got {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise MansrtspError(f"seek position must be finite and >= 0, got {seconds!r}")
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _fmt_scale(scale: float) -> str:
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        raise MansrtspError(f"scale must be a finite number, got {scale!r}")
    if not MIN_SCALE <= abs(scale) <= MAX_SCALE:
        raise MansrtspError(f"scale must be 0.25..4 in absolute value, got {scale!r}")
    return repr(float(scale))


def play(cseq: int, *, seek_seconds: float | None = None, scale: float | None = None) -> str:
    """A PLAY body: resume from now (default), from ``seek_seconds``, and/or with ``scale``."""
    lines = ["PLAY RTSP/1.0", f"CSeq: {_check_cseq(cseq)}"]
    if scale is not None:
        lines.append(f"Scale: {_fmt_scale(scale)}")
    if seek_seconds is not None:
        lines.append(f"Range: npt={_fmt_seconds(seek_seconds)}-")
    elif scale is None:
        lines.append("Range: npt=now-")
    return "\r\n".join(lines) + "\r\n"


def resume(cseq: int) -> str:
    """``PLAY`` with ``Range: npt=now-``."""
    return play(cseq)


def pause(cseq: int) -> str:
    """``PAUSE`` with ``PauseTime: now``."""
    return f"PAUSE RTSP/1.0\r\nCSeq: {_check_cseq(cseq)}\r\nPauseTime: now\r\n"


def seek(cseq: int, seconds: float) -> str:
    """``PLAY`` with ``Range: npt=<seconds>-`` (seconds from the start of the recording)."""
    return play(cseq, seek_seconds=seconds)


def speed(cseq: int, scale: float) -> str:
    """``PLAY`` with ``Scale: <scale>`` (0.25..4, negative plays backwards)."""
    return play(cseq, scale=scale)


def teardown(cseq: int) -> str:
    return f"TEARDOWN RTSP/1.0\r\nCSeq: {_check_cseq(cseq)}\r\n"


@dataclass(slots=True)
class MansrtspRequest:
    """A parsed MANSRTSP body.

    ``range_now`` is true for ``npt=now-``; otherwise ``range_start`` (and maybe
    ``range_end``) are seconds. ``pause_time`` is ``"now"`` or a number of seconds as text.
    """

    method: str
    cseq: int
    range_now: bool = False
    range_start: float | None = None
    range_end: float | None = None
    scale: float | None = None
    pause_time: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str:
        """``pause``, ``teardown``, ``seek`` (a start position), ``speed`` (a scale only),
        ``resume`` (npt=now- or a bare PLAY), or the method in lower case."""
        if self.method == "PAUSE":
            return "pause"
        if self.method == "TEARDOWN":
            return "teardown"
        if self.method == "PLAY":
            if self.range_start is not None:
                return "seek"
            if self.scale is not None and not self.range_now:
                return "speed"
            return "resume"
        return self.method.lower()


_REQUEST_LINE_RE = re.compile(r"([A-Za-z_]+)(?:\s+(\S+))?\s*")
_NPT_RE = re.compile(
    r"npt\s*=\s*(now|[0-9]{1,12}(?:\.[0-9]{1,9})?)\s*-\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)?",
    re.IGNORECASE,
)


def parse_mansrtsp(body: str | bytes) -> MansrtspRequest:
    """Parse a MANSRTSP body (CRLF or LF, header names any case). Raises :class:`MansrtspError`."""
    try:
        return _parse(body)
    except MansrtspError:
        raise
    except Exception as exc:  # the contract: only MansrtspError escapes
        raise MansrtspError(f"unreadable MANSRTSP body: {type(exc).__name__}: {exc}") from exc


def _parse(body: str | bytes) -> MansrtspRequest:
    if isinstance(body, bytes | bytearray | memoryview):
        body = bytes(body).decode("utf-8", errors="replace")
    if len(body) > MAX_BODY_CHARS:
        raise MansrtspError(f"MANSRTSP body too long ({len(body)} characters)")
    lines = [ln.strip() for ln in body.replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise MansrtspError("empty MANSRTSP body")
    m = _REQUEST_LINE_RE.fullmatch(lines[0])
    if m is None:
        raise MansrtspError(f"malformed request line: {lines[0][:60]!r}")
    method = m.group(1).upper()
    version = m.group(2)
    if version is not None and not version.upper().startswith(("RTSP/", "MANSRTSP/")):
        raise MansrtspError(f"unknown protocol version in request line: {lines[0][:60]!r}")
    if method not in METHODS:
        raise MansrtspError(f"unsupported MANSRTSP method {method[:20]!r}")
    headers: dict[str, str] = {}
    for ln in lines[1:]:
        name, sep, value = ln.partition(":")
        if not sep or not name.strip():
            raise MansrtspError(f"malformed header line: {ln[:60]!r}")
        headers.setdefault(name.strip().lower(), value.strip())
    cseq_s = headers.get("cseq")
    if cseq_s is None:
        raise MansrtspError("missing CSeq")
    if not (cseq_s.isascii() and cseq_s.isdigit()) or len(cseq_s) > 10:
        raise MansrtspError(f"invalid CSeq {cseq_s[:20]!r}")
    req = MansrtspRequest(method=method, cseq=int(cseq_s), headers=headers)
    rng = headers.get("range")
    if rng is not None:
        rm = _NPT_RE.fullmatch(rng)
        if rm is None:
            raise MansrtspError(f"unsupported Range {rng[:60]!r} (expected npt=now- or npt=<s>-)")
        if rm.group(1).lower() == "now":
            req.range_now = True
        else:
            req.range_start = float(rm.group(1))
        if rm.group(2):
            req.range_end = float(rm.group(2))
    sc = headers.get("scale")
    if sc is not None:
        try:
            scale = float(sc)
        except ValueError:
            raise MansrtspError(f"invalid Scale {sc[:20]!r}") from None
        if not math.isfinite(scale) or scale == 0:
            raise MansrtspError(f"invalid Scale {sc[:20]!r}")
        req.scale = scale
    pt = headers.get("pausetime")
    if pt is not None:
        req.pause_time = pt.lower() if pt.lower() == "now" else pt
    return req
