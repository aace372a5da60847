"""Cutting a SIP byte stream (TCP, TLS) into messages by Content-Length (RFC 3261 §18.3).

    framer = StreamFramer()
    framer.feed(chunk)
    while True:
        try:
            data = framer.next_message()
        except SipParseError as exc:
            ...  # answer exc.status / close; the framer has skipped the bad message
            continue
        if data is None:
            break
        message = parse_message(data)

Memory is bounded: a header block longer than `max_header_size` or a declared body longer
than `max_body_size` raises `SipParseError` (513) once, and the offending bytes are then
discarded as they arrive, never buffered. CRLF keep-alives between messages are skipped and
counted (`keepalives`), so the adapter can answer a double-CRLF ping with a CRLF pong
(RFC 5626 §4.4.1).
"""

from __future__ import annotations

import re

from .errors import SipParseError
from .message import MAX_MESSAGE_SIZE

__all__ = ["StreamFramer"]

_DIGITS = frozenset(b"0123456789")
# A Content-Length line (full or compact name, any case) anywhere after the start line.
_CONTENT_LENGTH = re.compile(rb"\n[ \t]*(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I)


def _content_length(buf: bytearray, end: int) -> int:
    """Content-Length from the header block `buf[:end]`; 0 when absent (lenient)."""
    m = _CONTENT_LENGTH.search(buf, 0, end)
    if m is None:
        return 0
    value = m.group(1).strip(b" \t")
    if not value or len(value) > 10 or not _DIGITS.issuperset(value):
        raise SipParseError("Invalid Content-Length")
    return int(value)


class StreamFramer:
    """Incremental splitter of a SIP stream into complete message byte strings."""

    __slots__ = (
        "_body_needed",
        "_buf",
        "_discard_body",
        "_discard_head",
        "_head_len",
        "_newlines",
        "_scan_from",
        "_skip_length",
        "keepalives",
        "max_body_size",
        "max_header_size",
    )

    def __init__(
        self,
        max_header_size: int = MAX_MESSAGE_SIZE,
        max_body_size: int = MAX_MESSAGE_SIZE,
    ) -> None:
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self.keepalives = 0
        self._buf = bytearray()
        self._scan_from = 0  # where to resume the search for the end of the header block
        self._head_len = -1  # length of header block incl. blank line, once found
        self._body_needed = 0
        self._discard_head = False  # skipping an oversized header block up to its blank line
        self._discard_body = 0  # bytes of an oversized body still to skip
        self._newlines = 0  # LFs seen in the current run of keep-alive bytes
        self._skip_length: int | None = None  # Content-Length of the header block being skipped

    @property
    def buffered(self) -> int:
        """Bytes held, waiting for the rest of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        """Add received bytes; then call `next_message` until it returns None."""
        if self._discard_body:
            skip = min(self._discard_body, len(data))
            self._discard_body -= skip
            data = data[skip:]
        self._buf += data

    def messages(self) -> list[bytes]:
        """Every complete message buffered now; errors are skipped (see `next_message`)."""
        out: list[bytes] = []
        while True:
            try:
                data = self.next_message()
            except SipParseError:
                continue
            if data is None:
                return out
            out.append(data)

    def next_message(self) -> bytes | None:
        """The next complete message, or None when more bytes are needed.

        Raises `SipParseError` for an oversized header block or body, or a bad
        Content-Length; the framer skips the bad message and stays usable.
        """
        buf = self._buf
        while True:
            if self._discard_body:
                skip = min(self._discard_body, len(buf))
                del buf[:skip]
                self._discard_body -= skip
                if self._discard_body:
                    return None
            if self._discard_head:
                # Its body is skipped too, however the block arrives: note its Content-Length
                # on the way (from whole lines only; the line in progress is kept, if short).
                end = self._find_blank(buf, 0)
                if end < 0:
                    cut = buf.rfind(b"\n")
                    if cut > 0:
                        self._note_length(buf, cut)
                    if cut < 0 or len(buf) - cut > 128:
                        cut = max(0, len(buf) - 3)  # a tail that can hold a split blank line
                    del buf[:cut]
                    return None
                self._note_length(buf, end)
                del buf[:end]
                self._discard_head = False
                self._discard_body = self._skip_length or 0
                self._skip_length = None
                continue
            if self._head_len < 0:
                # Skip CRLF keep-alives between messages; each blank-line pair is one ping.
                skip = 0
                n = len(buf)
                while skip < n and buf[skip] in b"\r\n":
                    if buf[skip] == 10:
                        self._newlines += 1
                        if self._newlines == 2:
                            self.keepalives += 1
                            self._newlines = 0
                    skip += 1
                if skip:
                    del buf[:skip]
                    self._scan_from = 0
                if not buf:
                    return None
                self._newlines = 0
                end = self._find_blank(buf, self._scan_from)
                if end < 0:
                    if len(buf) > self.max_header_size:
                        self._reset_head()
                        self._discard_head = True
                        raise SipParseError("Message Too Large (header block)", 513)
                    self._scan_from = max(0, len(buf) - 3)
                    return None
                if end > self.max_header_size:
                    try:
                        body = _content_length(buf, end)
                    except SipParseError:
                        body = 0
                    del buf[:end]
                    self._reset_head()
                    self._discard_body = body  # skip its body too, so we stay in step
                    raise SipParseError("Message Too Large (header block)", 513)
                try:
                    length = _content_length(buf, end)
                except SipParseError:
                    del buf[:end]
                    self._reset_head()
                    raise
                if length > self.max_body_size:
                    del buf[:end]
                    self._reset_head()
                    self._discard_body = length
                    raise SipParseError("Message Too Large (body)", 513)
                self._head_len = end
                self._body_needed = length
            total = self._head_len + self._body_needed
            if len(buf) < total:
                return None
            message = bytes(buf[:total])
            del buf[:total]
            self._reset_head()
            return message

    def _note_length(self, buf: bytearray, end: int) -> None:
        """The first Content-Length of a skipped header block, as `_content_length` reads it
        (0 when malformed)."""
        if self._skip_length is None and _CONTENT_LENGTH.search(buf, 0, end) is not None:
            try:
                self._skip_length = _content_length(buf, end)
            except SipParseError:
                self._skip_length = 0

    def _reset_head(self) -> None:
        self._head_len = -1
        self._body_needed = 0
        self._scan_from = 0

    @staticmethod
    def _find_blank(buf: bytearray, start: int) -> int:
        """Index just past the first blank line (CRLF or LF style) from `start`, or -1."""
        crlf = buf.find(b"\n\r\n", start)
        lf = buf.find(b"\n\n", start)
        if crlf < 0 and lf < 0:
            return -1
        if lf < 0 or 0 <= crlf < lf:
            return crlf + 3
        return lf + 2
